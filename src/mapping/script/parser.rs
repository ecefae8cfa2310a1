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
/// Every statement that does not parse, each at its first token that does
/// not fit: after an error the parser goes on at the next statement.
pub fn parse(text: &str) -> Result<Block, Vec<ScriptError>> {
    let mut p = Parser { toks: tokenize(text).map_err(|e| vec![e])?, i: 0, errors: Vec::new() };
    let block = p.block_body();
    if !matches!(p.peek().tok, Tok::Eof) {
        p.errors.push(p.unexpected("a statement"));
    }
    if p.errors.is_empty() {
        Ok(block)
    } else {
        Err(p.errors)
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    /// Statements refused so far.
    errors: Vec<ScriptError>,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Str(_) => "a string".into(),
        Tok::Interpolated(_) => "a string with $ interpolation".into(),
        Tok::InterpolatedRegex => "a regex with $ interpolation".into(),
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

    /// Statements up to a `}` or the end (neither consumed). A statement
    /// that does not parse is recorded and skipped.
    fn block_body(&mut self) -> Block {
        let mut block = Vec::new();
        loop {
            while matches!(self.peek().tok, Tok::Newline | Tok::Punct(';')) {
                self.next();
            }
            if matches!(self.peek().tok, Tok::Eof | Tok::Punct('}')) {
                return block;
            }
            let parsed = self.statement(&mut block).and_then(|()| {
                if matches!(self.peek().tok, Tok::Newline | Tok::Punct(';') | Tok::Punct('}') | Tok::Eof) {
                    Ok(())
                } else {
                    Err(self.unexpected("the end of the statement"))
                }
            });
            if let Err(e) = parsed {
                self.errors.push(e);
                self.skip_statement();
            }
        }
    }

    /// Skips to the end of the statement an error left: the next line or
    /// `;` outside brackets, or the `}` that closes the enclosing block.
    fn skip_statement(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.peek().tok {
                Tok::Eof => return,
                Tok::Newline | Tok::Punct(';') | Tok::Punct('}') if depth == 0 => return,
                Tok::Punct('{' | '(' | '[') => depth += 1,
                // A stray `)` or `]` is part of the bad statement.
                Tok::Punct('}' | ')' | ']') => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.next();
        }
    }

    /// `{ statements }`, for `when` and `section` bodies.
    fn closure_block(&mut self) -> Result<Block, ScriptError> {
        let pos = self.pos();
        let (params, body) = self.closure_or_helper()?;
        if !params.is_empty() {
            return Err(ScriptError::new(pos, "this block takes no parameters (only a helper or `.each` does)"));
        }
        Ok(body)
    }

    /// `{ statements }` or `{ a, b -> statements }`: the parameters and the body.
    fn closure_or_helper(&mut self) -> Result<(Vec<String>, Block), ScriptError> {
        self.expect_punct('{')?;
        let params = self.parameters();
        let body = self.block_body();
        self.expect_punct('}')?;
        Ok((params, body))
    }

    /// `a, b ->` at the start of a closure, if there.
    fn parameters(&mut self) -> Vec<String> {
        let mut ahead = 0;
        let mut names = Vec::new();
        while let Tok::Ident(name) = self.peek_at(ahead) {
            names.push(name.clone());
            match self.peek_at(ahead + 1) {
                Tok::Punct(',') => ahead += 2,
                Tok::Punct('-') if matches!(self.peek_at(ahead + 2), Tok::Punct('>')) => {
                    for _ in 0..ahead + 3 {
                        self.next();
                    }
                    return names;
                }
                _ => break,
            }
        }
        Vec::new()
    }

    /// A closure as a value: plain, or a helper with parameters.
    fn closure_value(&mut self) -> Result<Expr, ScriptError> {
        let pos = self.pos();
        let (params, body) = self.closure_or_helper()?;
        let kind = if params.is_empty() { ExprKind::Closure(body) } else { ExprKind::Lambda { params, body } };
        Ok(Expr { kind, pos })
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
                // Peeked first: a line end left unconsumed ends the statement
                // for error recovery.
                let stmt = match self.peek().tok.clone() {
                    Tok::Str(field) => Stmt::Map { value, field, field_pos },
                    Tok::Ident(param) => Stmt::MapOntoParam { value, param, pos: field_pos },
                    _ => {
                        return Err(ScriptError::new(
                            field_pos,
                            "the field after `onto` must be a quoted name or a helper's parameter",
                        ))
                    }
                };
                self.next();
                if parens {
                    self.expect_punct(')')?;
                }
                out.push(stmt);
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
                let Tok::Ident(name) = self.peek().tok.clone() else {
                    return Err(ScriptError::new(name_pos, "expected a variable name after `def`"));
                };
                self.next();
                if self.is_punct('(') {
                    return Err(ScriptError::new(
                        name_pos,
                        format!("`def {name}(...)` defines a function: Groovy, not part of the mapping language"),
                    ));
                }
                if !self.eat_punct('=') {
                    if matches!(self.peek().tok, Tok::Newline | Tok::Punct(';') | Tok::Punct('}') | Tok::Eof) {
                        out.push(Stmt::Declare { name, pos: name_pos });
                        return Ok(());
                    }
                    return Err(self.unexpected("`=` after the variable name"));
                }
                self.skip_newlines();
                let value = self.value_or_closure()?;
                out.push(Stmt::Def { name, pos: name_pos, value });
            }
            // `helper 'a', 'b'`: Groovy's call without parentheses.
            _ if !matches!(word.as_str(), "match" | "parse" | "not")
                && matches!(self.peek_at(1), Tok::Str(_) | Tok::Num(_) | Tok::Interpolated(_)) =>
            {
                self.next();
                let mut args = vec![self.value_or_closure()?];
                while self.eat_punct(',') {
                    self.skip_newlines();
                    args.push(self.value_or_closure()?);
                }
                out.push(Stmt::Expr(Expr { kind: ExprKind::Call { name: word, args }, pos }));
            }
            _ => {
                let e = self.expr()?;
                if self.is_punct('=') {
                    let ExprKind::Var(name) = e.kind else {
                        return Err(ScriptError::new(
                            self.pos(),
                            "only a name declared with `def` can be assigned (`def x` ... `x = ...`)",
                        ));
                    };
                    self.next();
                    self.skip_newlines();
                    let value = self.value_or_closure()?;
                    out.push(Stmt::Assign { name, pos: e.pos, value });
                    return Ok(());
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
            let closure = self.closure_value()?;
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
            let Tok::Ident(target) = self.peek().tok.clone() else {
                return Err(ScriptError::new(
                    target_pos,
                    "expected a type (int32, int64, fp32, fp64, bool, uri) after `to`",
                ));
            };
            self.next();
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
            let mut args = if self.is_punct('(') { self.args()? } else { Vec::new() };
            // `list.each { x -> ... }`: Groovy's trailing closure argument.
            if name == "each" && self.is_punct('{') {
                args.push(self.closure_value()?);
            }
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
            Tok::Punct('{') => return self.closure_value(),
            Tok::Ident(name) => {
                self.next();
                match name.as_str() {
                    "true" => ExprKind::Bool(true),
                    "false" => ExprKind::Bool(false),
                    _ if self.is_punct('(') => ExprKind::Call { name, args: self.args()? },
                    _ => ExprKind::Var(name),
                }
            }
            Tok::Interpolated(parts) => {
                self.next();
                ExprKind::Template(parts)
            }
            Tok::InterpolatedRegex => {
                return Err(ScriptError::new(
                    pos,
                    "$ interpolation in a /regex/ is Groovy, not part of the mapping language",
                ))
            }
            Tok::Punct('!') => {
                return Err(ScriptError::new(
                    pos,
                    "`!` is Groovy's negation; the mapping language writes `not <condition>`",
                ))
            }
            Tok::Punct('[') => {
                self.next();
                let mut items = Vec::new();
                loop {
                    self.skip_newlines();
                    if self.eat_punct(']') {
                        break;
                    }
                    items.push(self.value_or_closure()?);
                    self.skip_newlines();
                    if !self.eat_punct(',') {
                        self.skip_newlines();
                        self.expect_punct(']')?;
                        break;
                    }
                }
                ExprKind::List(items)
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
        let mut b = parse(src).unwrap_or_else(|e| panic!("{e:?}"));
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
        let first = |src: &str| parse(src).unwrap_err().remove(0);
        let e = first("mapping {\n  for (i in 1..3) {}\n}");
        assert_eq!(e.pos.line, 2);
        assert!(e.message.contains("`for` is Groovy"), "{e}");
        let e = first("def helper(x) { x }");
        assert!(e.message.contains("defines a function"), "{e}");
        let e = first("map /a$b/ onto 'x'");
        assert!(e.message.contains("interpolation"), "{e}");
        let e = first("when !corrupt() exit()");
        assert!(e.message.contains("not <condition>"), "{e}");
    }

    #[test]
    fn every_refused_statement_is_reported_in_one_run() {
        let errors = parse(
            "mapping {\n  for (i in 1..3) { x }\n  map location() onto 'a'\n  while (true) {}\n  when !x exit()\n}",
        )
        .unwrap_err();
        let lines: Vec<u32> = errors.iter().map(|e| e.pos.line).collect();
        assert_eq!(lines, [2, 4, 5], "{errors:?}");
        // A statement cut short at the line's end does not take the next line with it.
        let errors = parse("map location() onto\nmap 1 onto 2\nmap location() onto 'ok'").unwrap_err();
        assert_eq!(errors.iter().map(|e| e.pos.line).collect::<Vec<_>>(), [1, 2], "{errors:?}");
    }

    #[test]
    fn helpers_lists_declarations_and_assignments_parse() {
        let b = parse(
            "def flag = { name -> parse eventParameters().value(name) to boolean }\n\
             def x\n\
             when location().isPresent() apply { x = location() }\n\
             ['a', 'b'].each { f -> map \"p-$f\" onto f }",
        )
        .unwrap();
        assert!(
            matches!(&b[0], Stmt::Def { value: Expr { kind: ExprKind::Lambda { params, .. }, .. }, .. } if params == &["name"])
        );
        assert!(matches!(&b[1], Stmt::Declare { name, .. } if name == "x"));
        let Stmt::When { then: Then::Apply(body), .. } = &b[2] else { panic!() };
        assert!(matches!(&body[0], Stmt::Assign { name, .. } if name == "x"));
        let Stmt::Expr(each) = &b[3] else { panic!() };
        let (recv, name, args) = method(each);
        assert!(matches!(&recv.kind, ExprKind::List(items) if items.len() == 2));
        assert_eq!((name, args.len()), ("each", 1));
    }
}
