//! "Mincode": the tag's compact, URL-friendly encoding of JSON, used for
//! custom event parameters (query parameter `u`).
//!
//! A value is a type character followed by its payload: `s<text>!` string,
//! `d<base 36>!` integer, `j<json number>!` other number, `t` `f` `n` for
//! true, false and null, `a ... .` array, `( ... )` object and `o` empty
//! object. Inside an object every value's type character is followed by the
//! property name and `!`. In names and strings `~` escapes `!` and `~`.

use serde_json::{Map, Number, Value};

/// Why a mincode text could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MincodeError {
    /// Byte offset of the problem.
    pub at: usize,
}

impl std::fmt::Display for MincodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid mincode at byte {}", self.at)
    }
}

impl std::error::Error for MincodeError {}

/// Nesting limit, so a hostile parameter cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Decodes the mincode value at the start of `text`. What follows a
/// complete value is ignored, as the original's reader does.
///
/// # Errors
/// [`MincodeError`] with the offset of the first problem.
pub fn decode(text: &str) -> Result<Value, MincodeError> {
    Parser { s: text.as_bytes(), pos: 0 }.value(0)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self) -> MincodeError {
        MincodeError { at: self.pos }
    }

    fn next(&mut self) -> Result<u8, MincodeError> {
        let b = *self.s.get(self.pos).ok_or(self.err())?;
        self.pos += 1;
        Ok(b)
    }

    /// Text up to an unescaped `!`, unescaping `~x` to `x`.
    fn text(&mut self) -> Result<String, MincodeError> {
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b'!' => break,
                b'~' => out.push(self.next()?),
                b => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.err())
    }

    fn value(&mut self, depth: usize) -> Result<Value, MincodeError> {
        let kind = self.next()?;
        self.payload(kind, depth)
    }

    fn payload(&mut self, kind: u8, depth: usize) -> Result<Value, MincodeError> {
        if depth > MAX_DEPTH {
            return Err(self.err());
        }
        Ok(match kind {
            b's' => Value::String(self.text()?),
            b'd' => {
                let digits = self.text()?;
                match i64::from_str_radix(&digits, 36) {
                    Ok(n) => Value::Number(n.into()),
                    Err(_) => big_base36(&digits).ok_or(self.err())?,
                }
            }
            b'j' => {
                let t = self.text()?;
                Value::Number(t.parse::<Number>().map_err(|_| self.err())?)
            }
            b't' => Value::Bool(true),
            b'f' => Value::Bool(false),
            b'n' => Value::Null,
            b'o' => Value::Object(Map::new()),
            b'a' => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        b'.' => break,
                        k => items.push(self.payload(k, depth + 1)?),
                    }
                }
                Value::Array(items)
            }
            b'(' => {
                let mut map = Map::new();
                loop {
                    match self.next()? {
                        b')' => break,
                        k => {
                            let name = self.text()?;
                            let v = self.payload(k, depth + 1)?;
                            map.insert(name, v);
                        }
                    }
                }
                Value::Object(map)
            }
            _ => {
                self.pos -= 1;
                return Err(self.err());
            }
        })
    }
}

/// Integers beyond 64 bits (the original decodes into a BigInteger); kept
/// as the nearest double, which is what JSON consumers see anyway.
fn big_base36(digits: &str) -> Option<Value> {
    let (neg, body) = match digits.as_bytes().first()? {
        b'-' => (true, &digits[1..]),
        b'+' => (false, &digits[1..]),
        _ => (false, digits),
    };
    if body.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in body.chars() {
        v = v * 36.0 + f64::from(c.to_digit(36)?);
    }
    Number::from_f64(if neg { -v } else { v }).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_documented_examples() {
        assert_eq!(decode("d16!").unwrap(), json!(42));
        assert_eq!(
            decode("(sname!John Doe!dage!16!achildren!sMary!sBill!.)").unwrap(),
            json!({"name": "John Doe", "age": 42, "children": ["Mary", "Bill"]})
        );
    }

    #[test]
    fn decodes_every_kind_of_value() {
        let cases = [
            ("t", json!(true)),
            ("f", json!(false)),
            ("n", json!(null)),
            ("o", json!({})),
            ("a.", json!([])),
            ("()", json!({})),
            ("d-a!", json!(-10)),
            ("j3.25!", json!(3.25)),
            ("j-1e3!", json!(-1000.0)),
            ("sHello~!~~World!", json!("Hello!~World")),
            ("s!", json!("")),
            ("(s~!odd~~name!v!)", json!({"!odd~name": "v"})),
            ("annt.", json!([null, null, true])),
            ("(anested!(tdeep!).)", json!({"nested": [{"deep": true}]})),
            ("s2012-12-21T00:00:00.000Z!", json!("2012-12-21T00:00:00.000Z")),
            ("sünïcødé 😀!", json!("ünïcødé 😀")),
        ];
        for (code, expected) in cases {
            assert_eq!(decode(code), Ok(expected), "{code}");
        }
    }

    #[test]
    fn rejects_truncated_and_unknown_input() {
        for bad in ["", "s", "d16", "(sname!x!", "a", "x", "jabc!", "(", "d!"] {
            assert!(decode(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn reads_the_first_value_and_ignores_what_follows() {
        assert_eq!(decode("sText!trailing").unwrap(), Value::String("Text".into()));
        assert_eq!(decode("tt").unwrap(), Value::Bool(true));
        assert_eq!(decode("(sa!x!)junk(").unwrap(), serde_json::json!({"a": "x"}));
    }

    #[test]
    fn bounds_nesting() {
        let deep = "a".repeat(MAX_DEPTH + 5) + &".".repeat(MAX_DEPTH + 5);
        assert!(decode(&deep).is_err());
        let ok = "a".repeat(10) + &".".repeat(10);
        assert!(decode(&ok).is_ok());
    }
}
