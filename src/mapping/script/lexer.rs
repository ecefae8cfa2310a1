//! Tokens of a mapping script, with the line and column each starts at.
//!
//! The lexer knows the parts of Groovy's surface that mapping scripts use:
//! both quote styles, triple-quoted strings, slashy strings (regexes
//! without doubled backslashes), numeric suffixes, `//` and `/* */`
//! comments, and newlines, which end statements.

use super::error::{Pos, ScriptError};

/// A number literal's type, from its suffix or its shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// `42`, `42I`
    Int(i32),
    /// `42L`, or an integer too large for an int
    Long(i64),
    /// `1.5F`
    Float(f32),
    /// `1.5D`
    Double(f64),
    /// `1.5`: a BigDecimal in Groovy, which no Avro type takes
    Decimal,
}

/// A piece of a GString.
#[derive(Debug, Clone, PartialEq)]
pub enum StrPart {
    /// Literal text.
    Text(String),
    /// `$name` or `${name}`.
    Name(String),
}

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A name: keyword, function, method or variable.
    Ident(String),
    /// Any string literal, escapes resolved.
    Str(String),
    /// A double-quoted GString with `$name` or `${name}` in it: its text
    /// and names in order. Only a helper's or a loop's parameter can be
    /// interpolated, once the script is expanded.
    Interpolated(Vec<StrPart>),
    /// A slashy regex with `$` interpolation, which is not supported.
    InterpolatedRegex,
    /// A number literal.
    Num(Number),
    /// One of `{ } ( ) [ ] , . = ; ! - + * < > & | ? :`; pairs like `==` are
    /// reported by their first character, which is enough to refuse them.
    Punct(char),
    /// End of a line outside brackets.
    Newline,
    /// End of input.
    Eof,
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Its first character.
    pub pos: Pos,
}

struct Lexer<'s> {
    src: &'s [u8],
    text: &'s str,
    i: usize,
    line: u32,
    line_start: usize,
}

/// Splits `text` into tokens, ending with [`Tok::Eof`].
///
/// # Errors
/// [`ScriptError`] at the first character that starts no token, or an
/// unterminated string or comment.
pub fn tokenize(text: &str) -> Result<Vec<Token>, ScriptError> {
    let mut lx = Lexer { src: text.as_bytes(), text, i: 0, line: 1, line_start: 0 };
    let mut out = Vec::new();
    if text.starts_with("#!") {
        lx.skip_line();
    }
    loop {
        lx.skip_blanks()?;
        let pos = lx.pos();
        let Some(&c) = lx.src.get(lx.i) else {
            out.push(Token { tok: Tok::Eof, pos });
            return Ok(out);
        };
        let tok = match c {
            b'\n' => {
                lx.newline();
                Tok::Newline
            }
            b'\'' | b'"' => lx.quoted(c)?,
            b'/' => lx.slashy()?,
            b'0'..=b'9' => lx.number()?,
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => lx.ident(),
            b'{' | b'}' | b'(' | b')' | b'[' | b']' | b',' | b'.' | b'=' | b';' | b'!' | b'-' | b'+' | b'*' | b'<'
            | b'>' | b'&' | b'|' | b'?' | b':' | b'%' => {
                lx.i += 1;
                Tok::Punct(c as char)
            }
            _ => return Err(ScriptError::new(pos, format!("unexpected character {:?}", lx.char_at(lx.i)))),
        };
        out.push(Token { tok, pos });
    }
}

impl Lexer<'_> {
    fn pos(&self) -> Pos {
        let col = self.text[self.line_start..self.i].chars().count() as u32 + 1;
        Pos { line: self.line, col }
    }

    fn char_at(&self, i: usize) -> char {
        self.text[i..].chars().next().unwrap_or('\0')
    }

    fn newline(&mut self) {
        self.i += 1;
        self.line += 1;
        self.line_start = self.i;
    }

    fn skip_line(&mut self) {
        while self.i < self.src.len() && self.src[self.i] != b'\n' {
            self.i += 1;
        }
    }

    /// Spaces, tabs, comments and escaped line ends; not newlines.
    fn skip_blanks(&mut self) -> Result<(), ScriptError> {
        loop {
            match (self.src.get(self.i), self.src.get(self.i + 1)) {
                (Some(b' ' | b'\t' | b'\r' | b'\x0c'), _) => self.i += 1,
                (Some(b'\\'), Some(b'\n')) => {
                    self.i += 1;
                    self.newline();
                }
                (Some(b'/'), Some(b'/')) => self.skip_line(),
                (Some(b'/'), Some(b'*')) => {
                    let start = self.pos();
                    self.i += 2;
                    loop {
                        match (self.src.get(self.i), self.src.get(self.i + 1)) {
                            (Some(b'*'), Some(b'/')) => {
                                self.i += 2;
                                break;
                            }
                            (Some(b'\n'), _) => self.newline(),
                            (Some(_), _) => self.i += 1,
                            (None, _) => return Err(ScriptError::new(start, "unterminated /* comment")),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn ident(&mut self) -> Tok {
        let start = self.i;
        while let Some(&c) = self.src.get(self.i) {
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
                self.i += 1;
            } else {
                break;
            }
        }
        Tok::Ident(self.text[start..self.i].to_owned())
    }

    /// `'...'`, `"..."`, `'''...'''` and `"""..."""`.
    fn quoted(&mut self, q: u8) -> Result<Tok, ScriptError> {
        let start = self.pos();
        let triple = self.src.get(self.i + 1) == Some(&q) && self.src.get(self.i + 2) == Some(&q);
        self.i += if triple { 3 } else { 1 };
        let mut s = String::new();
        let mut parts = Vec::new();
        loop {
            let Some(&c) = self.src.get(self.i) else {
                return Err(ScriptError::new(start, "unterminated string"));
            };
            if c == q && (!triple || (self.src.get(self.i + 1) == Some(&q) && self.src.get(self.i + 2) == Some(&q))) {
                self.i += if triple { 3 } else { 1 };
                break;
            }
            match c {
                b'\n' if !triple => {
                    return Err(ScriptError::new(start, "unterminated string (it reaches the end of the line)"))
                }
                b'\n' => {
                    s.push('\n');
                    self.newline();
                }
                b'\\' => {
                    self.i += 1;
                    if self.i == self.src.len() {
                        // Found by fuzz/mapping_language: a backslash as the
                        // last byte stepped past the end.
                        return Err(ScriptError::new(start, "unterminated string"));
                    }
                    let esc = self.char_at(self.i);
                    self.i += esc.len_utf8();
                    match esc {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'r' => s.push('\r'),
                        'b' => s.push('\u{8}'),
                        'f' => s.push('\u{c}'),
                        '0' => s.push('\0'),
                        'u' => {
                            let hex = self.text.get(self.i..self.i + 4).unwrap_or("");
                            let ch = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                            let Some(ch) = ch else {
                                return Err(ScriptError::new(self.pos(), "invalid \\u escape"));
                            };
                            s.push(ch);
                            self.i += 4;
                        }
                        '\n' => {
                            self.i -= 1;
                            self.newline();
                        }
                        '\\' | '\'' | '"' | '$' | '/' => s.push(esc),
                        other => {
                            return Err(ScriptError::new(
                                self.pos(),
                                format!("invalid escape \\{other} in a quoted string (a regex is easier to write between slashes: /\\d+/)"),
                            ))
                        }
                    }
                }
                b'$' if q == b'"' => {
                    self.i += 1;
                    let braced = self.src.get(self.i) == Some(&b'{');
                    let start_name = self.i + usize::from(braced);
                    let mut end = start_name;
                    while self.src.get(end).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                        end += 1;
                    }
                    let closed = !braced || self.src.get(end) == Some(&b'}');
                    if end == start_name || !closed || self.src[start_name].is_ascii_digit() {
                        return Err(ScriptError::new(
                            self.pos(),
                            "`$` in a double-quoted string must name a parameter ($name or ${name}); write \\$ for a dollar sign",
                        ));
                    }
                    parts.push(StrPart::Text(std::mem::take(&mut s)));
                    parts.push(StrPart::Name(self.text[start_name..end].to_owned()));
                    self.i = end + usize::from(braced);
                }
                _ => {
                    let ch = self.char_at(self.i);
                    s.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
        if parts.is_empty() {
            return Ok(Tok::Str(s));
        }
        parts.push(StrPart::Text(s));
        parts.retain(|p| !matches!(p, StrPart::Text(t) if t.is_empty()));
        Ok(Tok::Interpolated(parts))
    }

    /// `/regex/`: only `\/` is an escape, every other backslash stays.
    fn slashy(&mut self) -> Result<Tok, ScriptError> {
        let start = self.pos();
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.src.get(self.i) {
                None => return Err(ScriptError::new(start, "unterminated /slashy/ string")),
                Some(b'/') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') if self.src.get(self.i + 1) == Some(&b'/') => {
                    s.push('/');
                    self.i += 2;
                }
                Some(b'\n') => {
                    s.push('\n');
                    self.newline();
                }
                Some(b'$') if self.src.get(self.i + 1).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'{') => {
                    return Ok(self.skip_to_slash(Tok::InterpolatedRegex));
                }
                Some(_) => {
                    let ch = self.char_at(self.i);
                    s.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
        Ok(Tok::Str(s))
    }

    fn skip_to_slash(&mut self, tok: Tok) -> Tok {
        while let Some(&c) = self.src.get(self.i) {
            self.i += 1;
            if c == b'/' {
                break;
            }
        }
        tok
    }

    fn number(&mut self) -> Result<Tok, ScriptError> {
        let pos = self.pos();
        let start = self.i;
        let digits = |lx: &mut Self| {
            while lx.src.get(lx.i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
                lx.i += 1;
            }
        };
        digits(self);
        let mut fraction = false;
        if self.src.get(self.i) == Some(&b'.') && self.src.get(self.i + 1).is_some_and(u8::is_ascii_digit) {
            fraction = true;
            self.i += 1;
            digits(self);
        }
        if matches!(self.src.get(self.i), Some(b'e' | b'E')) {
            fraction = true;
            self.i += 1;
            if matches!(self.src.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            digits(self);
        }
        let text: String = self.text[start..self.i].chars().filter(|c| *c != '_').collect();
        let suffix = self.src.get(self.i).copied().filter(u8::is_ascii_alphabetic);
        if suffix.is_some() {
            self.i += 1;
        }
        let bad = |what: &str| ScriptError::new(pos, format!("invalid {what} literal {text}"));
        let n = match suffix.map(|c| c.to_ascii_lowercase()) {
            None if fraction => Number::Decimal,
            None => match text.parse::<i32>() {
                Ok(n) => Number::Int(n),
                Err(_) => Number::Long(text.parse().map_err(|_| bad("integer"))?),
            },
            Some(b'i') if !fraction => Number::Int(text.parse().map_err(|_| bad("int"))?),
            Some(b'l') if !fraction => Number::Long(text.parse().map_err(|_| bad("long"))?),
            Some(b'f') => Number::Float(text.parse().map_err(|_| bad("float"))?),
            Some(b'd') => Number::Double(text.parse().map_err(|_| bad("double"))?),
            Some(b'g') => Number::Decimal,
            Some(other) => {
                return Err(ScriptError::new(pos, format!("unknown number suffix {:?} on {text}", other as char)))
            }
        };
        Ok(Tok::Num(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn strings_in_every_style() {
        assert_eq!(
            toks(r#"'a\'b' "c" '''x'y''' """q"q""" /^\/p\/(\d+)$/"#),
            vec![
                Tok::Str("a'b".into()),
                Tok::Str("c".into()),
                Tok::Str("x'y".into()),
                Tok::Str("q\"q".into()),
                Tok::Str(r"^/p/(\d+)$".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks(r#""hi $name, ${x}!" "\$5""#),
            vec![
                Tok::Interpolated(vec![
                    StrPart::Text("hi ".into()),
                    StrPart::Name("name".into()),
                    StrPart::Text(", ".into()),
                    StrPart::Name("x".into()),
                    StrPart::Text("!".into()),
                ]),
                Tok::Str("$5".into()),
                Tok::Eof
            ]
        );
        assert!(tokenize(r#""a $ b""#).is_err());
        assert!(tokenize("'open").is_err());
    }

    #[test]
    fn numbers_with_suffixes() {
        assert_eq!(
            toks("42 42L 42I 1.5F 42.0D 1.5 3000000000"),
            vec![
                Tok::Num(Number::Int(42)),
                Tok::Num(Number::Long(42)),
                Tok::Num(Number::Int(42)),
                Tok::Num(Number::Float(1.5)),
                Tok::Num(Number::Double(42.0)),
                Tok::Num(Number::Decimal),
                Tok::Num(Number::Long(3_000_000_000)),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_and_positions() {
        let t = tokenize("// c\n/* a\n b */\tmap x // d\n").unwrap();
        assert_eq!(t[0].tok, Tok::Newline);
        assert_eq!(t[1].tok, Tok::Ident("map".into()));
        assert_eq!((t[1].pos.line, t[1].pos.col), (3, 7));
        assert_eq!(t[2].pos.col, 11);
        assert_eq!(t[3].tok, Tok::Newline);
    }
}
