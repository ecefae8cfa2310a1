//! Request headers and cookies as mapping values.
//!
//! `header('Name')` is every instance of the header, each split into list
//! items the way HTTP lists are written: commas separate items except
//! inside quoted strings, quotes are removed and `\` escapes the next
//! character, runs of spaces and tabs outside quotes become one space,
//! leading and trailing blanks and empty items are dropped.

/// Appends the items of one header value to `out`.
pub fn split_list(value: &str, out: &mut Vec<String>) {
    let mut chars = value.chars().peekable();
    loop {
        let mut item = String::new();
        let mut pending_space = false;
        let mut ended = true;
        while let Some(c) = chars.next() {
            match c {
                ',' => {
                    ended = false;
                    break;
                }
                ' ' | '\t' => pending_space = !item.is_empty(),
                '"' => {
                    if pending_space {
                        item.push(' ');
                        pending_space = false;
                    }
                    while let Some(q) = chars.next() {
                        match q {
                            '"' => break,
                            '\\' => item.extend(chars.next()),
                            other => item.push(other),
                        }
                    }
                }
                other => {
                    if pending_space {
                        item.push(' ');
                        pending_space = false;
                    }
                    item.push(other);
                }
            }
        }
        if !item.is_empty() {
            out.push(item);
        }
        if ended {
            return;
        }
    }
}

/// The value of the cookie `name` from the `Cookie` headers, quotes removed.
pub fn cookie<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k.trim() == name).then(|| {
                let v = v.trim();
                v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &str) -> Vec<String> {
        let mut out = Vec::new();
        split_list(v, &mut out);
        out
    }

    #[test]
    fn list_items_by_the_http_rules() {
        let cases: &[(&str, &[&str])] = &[
            ("a,b,c", &["a", "b", "c"]),
            ("", &[]),
            (",a", &["a"]),
            ("a,,b", &["a", "b"]),
            (" a , b , c ", &["a", "b", "c"]),
            ("a,\t \tb, \t c", &["a", "b", "c"]),
            ("  ,  ,  ", &[]),
            ("foo    bar", &["foo bar"]),
            ("foo\t \tbar", &["foo bar"]),
            ("\"\",a", &["a"]),
            ("\"foo\" bar", &["foo bar"]),
            ("foo \"bar\" baz", &["foo bar baz"]),
            ("\"foo\"bar", &["foobar"]),
            ("foo\"bar\"baz", &["foobarbaz"]),
            ("\"foo,bar\"", &["foo,bar"]),
            ("\"  foo \t bar  \"", &["  foo \t bar  "]),
            ("\"foo\\\"bar\"", &["foo\"bar"]),
            ("\"foo\\\\bar\"", &["foo\\bar"]),
            ("\"foo\\", &["foo"]),
            ("\"foo", &["foo"]),
        ];
        for (input, want) in cases {
            assert_eq!(list(input), *want, "{input:?}");
        }
        let mut all = Vec::new();
        for v in [
            "first",
            "second, third ,fourth,fifth",
            "\"sixth,still_sixth\", seventh,",
            "\" eighth,\\\"still eighth \"",
            "ninth  still ninth",
            "last",
        ] {
            split_list(v, &mut all);
        }
        assert_eq!(
            all,
            [
                "first",
                "second",
                "third",
                "fourth",
                "fifth",
                "sixth,still_sixth",
                "seventh",
                " eighth,\"still eighth ",
                "ninth still ninth",
                "last"
            ]
        );
    }

    #[test]
    fn cookies() {
        let h = [
            httparse::Header { name: "Cookie", value: b"a=1; custom_cookie=custom_cookie_value;" },
            httparse::Header { name: "cookie", value: b"q=\"quoted\"" },
        ];
        assert_eq!(cookie(&h, "custom_cookie"), Some("custom_cookie_value"));
        assert_eq!(cookie(&h, "q"), Some("quoted"));
        assert_eq!(cookie(&h, "missing"), None);
    }
}
