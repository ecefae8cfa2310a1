//! Regular expressions of `match ... against`, compiled with the `regex`
//! crate and anchored at both ends: the original matched whole strings
//! (Java's `Matcher.matches()`). Java features the crate lacks
//! (look-around, backreferences, possessive quantifiers) are refused at
//! startup with the crate's explanation; `docs/compatibility.md` lists them.

use regex::Regex;

/// Compiles `pattern` for whole-string matching.
///
/// # Errors
/// A message for the script author when the pattern cannot be used.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!(r"\A(?:{pattern})\z")).map_err(|e| {
        let detail = match e {
            regex::Error::Syntax(s) => s,
            other => other.to_string(),
        };
        format!("this regular expression cannot be used (Java regex features such as look-around and backreferences are not supported):\n{detail}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_string_matches_only() {
        let re = compile(r"/foo/([a-z]+)").unwrap();
        assert!(re.is_match("/foo/bar"));
        assert!(!re.is_match("/foo/bar/"), "Java's matches() needs the whole string");
        assert!(compile("a|ab").unwrap().is_match("ab"), "alternation is still searched as a whole");
        assert!(compile(r"(?<name>x)").unwrap().capture_names().flatten().any(|n| n == "name"));
        let e = compile(r"foo(?=bar)").unwrap_err();
        assert!(e.contains("look-around"), "{e}");
    }
}
