//! From tokens to the syntax tree.
//!
//! Groovy lets a script drop parentheses (`map location() onto 'f'` is
//! `map(location()).onto('f')`), chain methods across lines, and write
//! command chains (`location() equalTo 'x'`). The parser accepts those
//! forms of the mapping language and names everything else that is Groovy
//! (loops, functions, operators) in its error, so a script never half works.

use super::error::{Pos, ScriptError};
use super::lexer::{tokenize, Number, Tok, Token};
use super::syntax::{Block, Expr, ExprKind, Stmt, Then};

/// Words that end an expression in the statement forms.
const STOP_WORDS: &[&str] = &["onto", "apply", "exit", "stop", "to", "against"];

/// Groovy statements that are not part of the mapping language.
const GROOVY_ONLY: &[&str] = &[
    "for",
    "while",
    "do",
    "if",
    "else",
    "switch",
    "case",
    "try",
    "catch",
    "finally",
    "throw",
    "return",
    "class",
    "interface",
    "enum",
    "import",
    "package",
    "new",
    "println",
    "print",
    "assert",
    "static",
    "final",
    "void",
    "String",
    "int",
    "long",
    "boolean",
    "double",
    "float",
    "var",
    "break",
    "continue",
];

/// Parses a whole script.
///
/// # Errors
/// [`ScriptError`] at the first token that does not fit.
pub fn parse(text: &str) -> Result<Block, ScriptError> {
    let mut p = Parser { toks: tokenize(text)?, i: 0 };
    let block = p.block_body()?;
    match &p.peek().tok {
        Tok::Eof => Ok(block),
        _ => Err(p.unexpected("a statement")),
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Str(_) => "a string".into(),
        Tok::Interpolated => "a string with $ interpolation".into(),
        Tok::Num(_) => "a number".into(),
        Tok::Punct(c) => format!("`{c}`"),
        Tok::Newline => "the end of the line".into(),
        Tok::Eof => "the end of the script".into(),
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.i]
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].tok
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn pos(&self) -> Pos {
        self.peek().pos
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek().tok == Tok::Punct(c)
    }

    fn is_ident(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s == word)
    }

    fn eat_punct(&mut self, c: char) -> bool {
        let yes = self.is_punct(c);
        if yes {
            self.next();
        }
        yes
    }

    fn skip_newlines(&mut self) {
        while matches!(self.peek().tok, Tok::Newline) {
            self.next();
        }
    }

    fn unexpected(&self, wanted: &str) -> ScriptError {
        let t = self.peek();
        ScriptError::new(t.pos, format!("expected {wanted}, found {}", describe(&t.tok)))
    }

    /// The keyword of a statement form (`onto`, `to`, `against`), written
    /// Groovy's way or as a method call (`.onto(...)`).
    fn expect_word(&mut self, word: &str, wanted: &str) -> Result<(), ScriptError> {
        self.eat_punct('.');
        if !self.is_ident(word) {
            return Err(self.unexpected(wanted));
        }
        self.next();
        Ok(())
    }

    fn expect_punct(&mut self, c: char) -> Result<(), ScriptError> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{c}`")))
        }
    }

    /// Statements up to a `}` or the end (neither consumed).
    fn block_body(&mut self) -> Result<Block, ScriptError> {
        let mut block = Vec::new();
        loop {
            while matches!(self.peek().tok, Tok::Newline | Tok::Punct(';')) {
                self.next();
            }
            if matches!(self.peek().tok, Tok::Eof | Tok::Punct('}')) {
                return Ok(block);
            }
            self.statement(&mut block)?;
            if !matches!(self.peek().tok, Tok::Newline | Tok::Punct(';') | Tok::Punct('}') | Tok::Eof) {
                return Err(self.unexpected("the end of the statement"));
            }
        }
    }

    /// `{ statements }`
    fn closure_block(&mut self) -> Result<Block, ScriptError> {
        self.expect_punct('{')?;
        if matches!(self.peek().tok, Tok::Ident(_))
            && matches!(self.peek_at(1), Tok::Punct('-'))
            && matches!(self.peek_at(2), Tok::Punct('>'))
        {
            return Err(ScriptError::new(
                self.pos(),
                "closure parameters are Groovy, not part of the mapping language",
            ));
        }
        let body = self.block_body()?;
        self.expect_punct('}')?;
        Ok(body)
    }

    fn statement(&mut self, out: &mut Block) -> Result<(), ScriptError> {
        let pos = self.pos();
        let word = match &self.peek().tok {
            Tok::Ident(w) => w.clone(),
            _ => {
                out.push(Stmt::Expr(self.expr()?));
                return Ok(());
            }
        };
        if let Some(groovy) = GROOVY_ONLY.iter().find(|g| **g == word) {
            return Err(ScriptError::new(
                pos,
                format!("`{groovy}` is Groovy, not part of the mapping language (map, when, section, def, exit, stop)"),
            ));
        }
        match word.as_str() {
            "mapping" if matches!(self.peek_at(1), Tok::Punct('{')) => {
                self.next();
                out.extend(self.closure_block()?);
            }
            "map" => {
                self.next();
                let value = self.value_or_closure()?;
                self.expect_word("onto", "`onto 'field'`")?;
                let parens = self.eat_punct('(');
                let field_pos = self.pos();
                let field = match self.next().tok {
                    Tok::Str(s) => s,
                    _ => return Err(ScriptError::new(field_pos, "the field after `onto` must be a quoted name")),
                };
                if parens {
                    self.expect_punct(')')?;
                }
                out.push(Stmt::Map { value, field, field_pos });
            }
            "when" => {
                self.next();
                let cond = self.value_or_closure()?;
                self.eat_punct('.');
                let then = if self.is_punct('{') {
                    Then::Apply(self.closure_block()?)
                } else if self.is_ident("apply") {
                    self.next();
                    let parens = self.eat_punct('(');
                    self.skip_newlines();
                    let body = self.closure_block()?;
                    if parens {
                        self.expect_punct(')')?;
                    }
                    Then::Apply(body)
                } else if self.is_ident("exit") {
                    Then::Exit(self.exit_or_stop()?)
                } else if self.is_ident("stop") {
                    Then::Stop(self.exit_or_stop()?)
                } else {
                    return Err(self.unexpected("`apply { ... }`, `exit()` or `stop()` after the condition"));
                };
                out.push(Stmt::When { cond, then });
            }
            "section" if matches!(self.peek_at(1), Tok::Punct('{')) => {
                self.next();
                out.push(Stmt::Section(self.closure_block()?));
            }
            "exit" => out.push(Stmt::Exit(self.exit_or_stop()?)),
            "stop" => out.push(Stmt::Stop(self.exit_or_stop()?)),
            "def" => {
                self.next();
                let name_pos = self.pos();
                let Tok::Ident(name) = self.next().tok else {
                    return Err(ScriptError::new(name_pos, "expected a variable name after `def`"));
                };
                if self.is_punct('(') {
                    return Err(ScriptError::new(
                        name_pos,
                        format!("`def {name}(...)` defines a function: Groovy, not part of the mapping language"),
                    ));
                }
                if !self.eat_punct('=') {
                    return Err(self.unexpected("`=` after the variable name"));
                }
                self.skip_newlines();
                let value = self.value_or_closure()?;
                out.push(Stmt::Def { name, pos: name_pos, value });
            }
            _ => {
                let e = self.expr()?;
                if self.is_punct('=') {
                    return Err(ScriptError::new(
                        self.pos(),
                        "assignment is Groovy; bind values with `def name = ...`",
                    ));
                }
                out.push(Stmt::Expr(e));
            }
        }
        Ok(())
    }

    /// `exit()` / `stop()`, parentheses optional.
    fn exit_or_stop(&mut self) -> Result<Pos, ScriptError> {
        let pos = self.next().pos;
        if self.eat_punct('(') {
            self.expect_punct(')')?;
        }
        Ok(pos)
    }

    fn value_or_closure(&mut self) -> Result<Expr, ScriptError> {
        if self.is_punct('{') {
            let pos = self.pos();
            let closure = Expr { kind: ExprKind::Closure(self.closure_block()?), pos };
            return self.methods_after(closure);
        }
        self.expr()
    }

    /// An expression, including prefix forms and command chains.
    fn expr(&mut self) -> Result<Expr, ScriptError> {
        let pos = self.pos();
        let kind = if self.is_ident("not") && matches!(self.peek_at(1), Tok::Punct('(')) {
            // `not(x).and(y)` negates x only, as a call would.
            self.next();
            let mut args = self.args()?;
            if args.len() != 1 {
                return Err(ScriptError::new(pos, "not() takes one condition"));
            }
            ExprKind::Not(Box::new(args.remove(0)))
        } else if self.is_ident("not") && !matches!(self.peek_at(1), Tok::Punct('.')) {
            self.next();
            ExprKind::Not(Box::new(self.expr()?))
        } else if self.is_ident("parse") && !matches!(self.peek_at(1), Tok::Punct('.')) {
            self.next();
            let input = self.postfix()?;
            self.expect_word("to", "`to <type>` after the value to parse")?;
            let parens = self.eat_punct('(');
            let target_pos = self.pos();
            let Tok::Ident(target) = self.next().tok else {
                return Err(ScriptError::new(
                    target_pos,
                    "expected a type (int32, int64, fp32, fp64, bool, uri) after `to`",
                ));
            };
            if parens {
                self.expect_punct(')')?;
            }
            ExprKind::Parse { input: Box::new(input), target }
        } else if self.is_ident("match") && !matches!(self.peek_at(1), Tok::Punct('.')) {
            self.next();
            let regex = self.postfix()?;
            self.expect_word("against", "`against <value>` after the regular expression")?;
            let parens = self.eat_punct('(');
            let input = if parens { self.expr()? } else { self.postfix()? };
            if parens {
                self.expect_punct(')')?;
            }
            ExprKind::Match { regex: Box::new(regex), input: Box::new(input) }
        } else {
            return self.command_chain();
        };
        let e = Expr { kind, pos };
        self.methods_after(e)
    }

    /// `a b c`: Groovy's command chain, `a.b(c)`.
    fn command_chain(&mut self) -> Result<Expr, ScriptError> {
        let mut e = self.postfix()?;
        while let Tok::Ident(name) = &self.peek().tok {
            if STOP_WORDS.contains(&name.as_str()) {
                break;
            }
            let name = name.clone();
            let pos = self.pos();
            self.next();
            let starts_value = matches!(
                self.peek().tok,
                Tok::Str(_) | Tok::Num(_) | Tok::Ident(_) | Tok::Punct('(') | Tok::Punct('-') | Tok::Punct('{')
            );
            let args = if starts_value && !self.is_stop_word() { vec![self.postfix()?] } else { Vec::new() };
            e = Expr { kind: ExprKind::Method { recv: Box::new(e), name, args }, pos };
        }
        Ok(e)
    }

    fn is_stop_word(&self) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if STOP_WORDS.contains(&s.as_str()))
    }

    /// A primary followed by `.method(...)` calls, also across lines.
    fn postfix(&mut self) -> Result<Expr, ScriptError> {
        let e = self.primary()?;
        self.methods_after(e)
    }

    fn methods_after(&mut self, mut e: Expr) -> Result<Expr, ScriptError> {
        loop {
            // A line that starts with `.` continues the chain.
            let mut ahead = 0;
            while matches!(self.peek_at(ahead), Tok::Newline) {
                ahead += 1;
            }
            if !matches!(self.peek_at(ahead), Tok::Punct('.')) {
                break;
            }
            if let Tok::Ident(next) = self.peek_at(ahead + 1) {
                if STOP_WORDS.contains(&next.as_str()) {
                    break;
                }
            }
            for _ in 0..=ahead {
                self.next();
            }
            self.skip_newlines();
            let pos = self.pos();
            let Tok::Ident(name) = self.next().tok else {
                return Err(ScriptError::new(pos, "expected a method name after `.`"));
            };
            let args = if self.is_punct('(') { self.args()? } else { Vec::new() };
            e = Expr { kind: ExprKind::Method { recv: Box::new(e), name, args }, pos };
        }
        if self.is_punct('?') || self.is_punct('[') {
            return Err(ScriptError::new(
                self.pos(),
                format!("{} is Groovy, not part of the mapping language", describe(&self.peek().tok)),
            ));
        }
        Ok(e)
    }

    fn args(&mut self) -> Result<Vec<Expr>, ScriptError> {
        self.expect_punct('(')?;
        let mut args = Vec::new();
        self.skip_newlines();
        if self.eat_punct(')') {
            return Ok(args);
        }
        loop {
            self.skip_newlines();
            args.push(self.value_or_closure()?);
            self.skip_newlines();
            if self.eat_punct(')') {
                return Ok(args);
            }
            self.expect_punct(',')?;
        }
    }

    fn primary(&mut self) -> Result<Expr, ScriptError> {
        let t = self.peek().clone();
        let pos = t.pos;
        let kind = match t.tok {
            Tok::Str(s) => {
                self.next();
                ExprKind::Str(s)
            }
            Tok::Num(n) => {
                self.next();
                ExprKind::Num(n)
            }
            Tok::Punct('-') if matches!(self.peek_at(1), Tok::Num(_)) => {
                self.next();
                let Tok::Num(n) = self.next().tok else { unreachable!("checked above") };
                ExprKind::Num(match n {
                    Number::Int(v) => Number::Int(-v),
                    Number::Long(v) => Number::Long(-v),
                    Number::Float(v) => Number::Float(-v),
                    Number::Double(v) => Number::Double(-v),
                    Number::Decimal => Number::Decimal,
                })
            }
            Tok::Punct('(') => {
                self.next();
                self.skip_newlines();
                let e = self.expr()?;
                self.skip_newlines();
                self.expect_punct(')')?;
                return Ok(e);
            }
            Tok::Punct('{') => ExprKind::Closure(self.closure_block()?),
            Tok::Ident(name) => {
                self.next();
                match name.as_str() {
                    "true" => ExprKind::Bool(true),
                    "false" => ExprKind::Bool(false),
                    _ if self.is_punct('(') => ExprKind::Call { name, args: self.args()? },
                    _ => ExprKind::Var(name),
                }
            }
            Tok::Interpolated => {
                return Err(ScriptError::new(
                    pos,
                    "$ interpolation in a double-quoted string is Groovy; use single quotes",
                ))
            }
            Tok::Punct('!') => {
                return Err(ScriptError::new(
                    pos,
                    "`!` is Groovy's negation; the mapping language writes `not <condition>`",
                ))
            }
            Tok::Punct('[') => {
                return Err(ScriptError::new(pos, "list literals are Groovy, not part of the mapping language"))
            }
            ref other => return Err(ScriptError::new(pos, format!("expected a value, found {}", describe(other)))),
        };
        Ok(Expr { kind, pos })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Stmt {
        let mut b = parse(src).unwrap();
        assert_eq!(b.len(), 1, "{b:?}");
        b.remove(0)
    }

    fn method(e: &Expr) -> (&Expr, &str, &[Expr]) {
        match &e.kind {
            ExprKind::Method { recv, name, args } => (recv, name, args),
            other => panic!("not a method: {other:?}"),
        }
    }

    #[test]
    fn map_forms() {
        let Stmt::Map { value, field, field_pos } = one("mapping {\n  map location() onto 'loc'\n}") else { panic!() };
        assert_eq!(field, "loc");
        assert_eq!((field_pos.line, field_pos.col), (2, 23));
        assert!(matches!(value.kind, ExprKind::Call { ref name, .. } if name == "location"));
        assert!(matches!(
            one("map { parse cookie('x') to int32 } onto 'f'"),
            Stmt::Map { value: Expr { kind: ExprKind::Closure(_), .. }, .. }
        ));
        assert!(matches!(one("map(location()).onto('f')"), Stmt::Map { .. }));
    }

    #[test]
    fn command_chains_and_property_calls() {
        let Stmt::When { cond, then } = one("when { location() equalTo 'x' } apply { stop() }") else { panic!() };
        let ExprKind::Closure(body) = &cond.kind else { panic!() };
        let Stmt::Expr(e) = &body[0] else { panic!() };
        let (_, name, args) = method(e);
        assert_eq!((name, args.len()), ("equalTo", 1));
        assert!(matches!(then, Then::Apply(ref b) if matches!(b[..], [Stmt::Stop(_)])));

        let Stmt::When { cond, then } = one("when referer().isAbsent stop()") else { panic!() };
        assert_eq!(method(&cond).1, "isAbsent");
        assert!(matches!(then, Then::Stop(_)));
        let Stmt::Expr(e) = one("matcher.matches") else { panic!() };
        assert_eq!(method(&e).1, "matches");
    }

    #[test]
    fn chains_split_over_lines() {
        let Stmt::Map { value, .. } =
            one("map digest('SHA-256')\n\t.add(partyId())\n\t.result()\n  .toHexLower() onto 'h'")
        else {
            panic!()
        };
        assert_eq!(method(&value).1, "toHexLower");
    }

    #[test]
    fn parse_match_not_and_defs() {
        let b = parse("def u = parse location() to uri\ndef m = match /^\\/p\\/(\\d+)$/ against u.path()\nwhen not m.matches() exit()").unwrap();
        assert_eq!(b.len(), 3);
        let Stmt::Def { value, .. } = &b[1] else { panic!() };
        let ExprKind::Match { regex, .. } = &value.kind else { panic!() };
        assert_eq!(regex.kind, ExprKind::Str(r"^/p/(\d+)$".into()));
        let Stmt::When { cond, then: Then::Exit(_) } = &b[2] else { panic!() };
        assert!(matches!(cond.kind, ExprKind::Not(_)));
    }

    #[test]
    fn groovy_beyond_the_language_is_named() {
        let e = parse("mapping {\n  for (i in 1..3) {}\n}").unwrap_err();
        assert_eq!(e.pos.line, 2);
        assert!(e.message.contains("`for` is Groovy"), "{e}");
        let e = parse("def helper(x) { x }").unwrap_err();
        assert!(e.message.contains("defines a function"), "{e}");
        let e = parse("map \"a $b\" onto 'x'").unwrap_err();
        assert!(e.message.contains("interpolation"), "{e}");
        let e = parse("when !corrupt() exit()").unwrap_err();
        assert!(e.message.contains("not <condition>"), "{e}");
    }
}
