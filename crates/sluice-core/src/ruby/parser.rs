//! Tokens → expression tree, refusing at parse time every construct outside the subset, so an
//! unsupported expression is a configuration error and never a surprise at run time.
use super::lexer::{self, StrPiece, Tok};
use super::methods;
use super::regexp::{split_literal, RubyRegex};
use super::SyntaxError;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum Expr {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A double-quoted string with `#{...}`: pieces joined with `to_s`.
    Interp(Vec<Expr>),
    Sym(String),
    Regex(Arc<RubyRegex>),
    Array(Vec<Expr>),
    Hash(Vec<(Expr, Expr)>),
    Range(Box<Expr>, Box<Expr>, bool),
    /// A local variable or a name the context provides (`record`, `tag`, `hostname`, ...).
    Var(String),
    Assign(String, Box<Expr>),
    /// `ENV`, `File`, `Socket`, `Hash`, `Time`.
    Const(&'static str),
    /// `recv.name(args) { block }`; `safe` for `&.` (nil stays nil).
    Call {
        recv: Box<Expr>,
        name: String,
        args: Vec<Expr>,
        block: Option<Box<Expr>>,
        safe: bool,
    },
    Index(Box<Expr>, Vec<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `a =~ b` / `a !~ b`; `names` are the locals a regexp literal on the left assigns.
    Match {
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        negate: bool,
        names: Vec<String>,
    },
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Seq(Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
}

/// Constants of the subset and the class methods each one offers.
const CONSTS: &[(&str, &[&str])] = &[
    ("ENV", &["[]", "fetch", "key?", "has_key?", "include?"]),
    ("File", &["join", "basename", "dirname"]),
    ("Socket", &["gethostname"]),
    ("Hash", &["new"]),
    ("Time", &["now", "at"]),
];

/// Nesting deeper than this is refused rather than risking the stack on hostile input.
const MAX_DEPTH: usize = 64;

pub fn parse(code: &str, names: &[&str]) -> Result<Expr, SyntaxError> {
    parse_tokens(lexer::lex(code)?, names)
}

pub fn parse_tokens(toks: Vec<Tok>, names: &[&str]) -> Result<Expr, SyntaxError> {
    let mut p = Parser { toks, pos: 0, names, locals: Vec::new(), depth: 0 };
    let e = p.stmts(&[])?;
    if let Some(t) = p.peek() {
        return Err(SyntaxError::new(format!("the token {}", show(t))));
    }
    Ok(e)
}

struct Parser<'n> {
    toks: Vec<Tok>,
    pos: usize,
    names: &'n [&'n str],
    /// Locals assigned so far (Ruby knows a local from its first assignment on).
    locals: Vec<String>,
    depth: usize,
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Punct("@") => "'@' (instance variables)".into(),
        Tok::Punct("$") => "'$' (global variables)".into(),
        Tok::Punct(p) => format!("'{p}'"),
        Tok::Ident(w) | Tok::Const(w) => format!("'{w}'"),
        Tok::Newline => "a line break".into(),
        Tok::Int(i) => format!("the number {i}"),
        Tok::Float(f) => format!("the number {f}"),
        Tok::DStr(_) | Tok::SStr(_) => "a string".into(),
        Tok::Sym(s) => format!(":{s}"),
        Tok::Regex(r, f) => format!("/{r}/{f}"),
    }
}

/// Whether a token can start an operand (for "arguments without parentheses").
fn starts_operand(t: Option<&Tok>) -> bool {
    matches!(
        t,
        Some(Tok::Int(_) | Tok::Float(_) | Tok::DStr(_) | Tok::SStr(_) | Tok::Sym(_) | Tok::Regex(..) | Tok::Const(_))
    ) || matches!(t, Some(Tok::Ident(w)) if !is_keyword(w))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n)
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    fn is_kw(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w == k)
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_kw(&mut self, k: &str) -> bool {
        if self.is_kw(k) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, p: &str) -> Result<(), SyntaxError> {
        if self.eat_punct(p) {
            return Ok(());
        }
        Err(match self.peek() {
            Some(t) => SyntaxError::new(format!("the token {} where '{p}' was expected", show(t))),
            None => SyntaxError::unclosed(&format!("an expression: '{p}' is missing")),
        })
    }

    fn skip_newlines(&mut self) {
        while matches!(self.peek(), Some(Tok::Newline) | Some(Tok::Punct(";"))) {
            self.pos += 1;
        }
    }

    fn skip_line_breaks(&mut self) {
        while matches!(self.peek(), Some(Tok::Newline)) {
            self.pos += 1;
        }
    }

    fn deeper(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SyntaxError::new(format!("expressions nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// Statements up to the end or one of the keywords `until`.
    fn stmts(&mut self, until: &[&str]) -> Result<Expr, SyntaxError> {
        let mut list = Vec::new();
        loop {
            self.skip_newlines();
            match self.peek() {
                None => break,
                Some(Tok::Ident(w)) if until.contains(&w.as_str()) => break,
                Some(Tok::Punct(")")) | Some(Tok::Punct("}")) => break,
                _ => {}
            }
            list.push(self.stmt()?);
            match self.peek() {
                None | Some(Tok::Newline) | Some(Tok::Punct(";")) => {}
                Some(Tok::Ident(w)) if until.contains(&w.as_str()) => {}
                Some(Tok::Punct(")")) | Some(Tok::Punct("}")) => {}
                Some(t) => return Err(SyntaxError::new(format!("the token {}", show(t)))),
            }
        }
        Ok(if list.len() == 1 { list.pop().unwrap_or(Expr::Nil) } else { Expr::Seq(list) })
    }

    /// An expression with optional `if`/`unless` modifiers.
    fn stmt(&mut self) -> Result<Expr, SyntaxError> {
        let mut e = self.expr()?;
        loop {
            if self.eat_kw("if") {
                let c = self.expr()?;
                e = Expr::If(Box::new(c), Box::new(e), Box::new(Expr::Nil));
            } else if self.eat_kw("unless") {
                let c = self.expr()?;
                e = Expr::If(Box::new(c), Box::new(Expr::Nil), Box::new(e));
            } else {
                return Ok(e);
            }
        }
    }

    /// `and` / `or` / `not`: the low-precedence keywords.
    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        self.deeper()?;
        let mut e = self.not_kw()?;
        loop {
            if self.eat_kw("and") {
                self.skip_line_breaks();
                e = Expr::And(Box::new(e), Box::new(self.not_kw()?));
            } else if self.eat_kw("or") {
                self.skip_line_breaks();
                e = Expr::Or(Box::new(e), Box::new(self.not_kw()?));
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(e)
    }

    fn not_kw(&mut self) -> Result<Expr, SyntaxError> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.not_kw()?)));
        }
        self.assignment()
    }

    fn assignment(&mut self) -> Result<Expr, SyntaxError> {
        if let (Some(Tok::Ident(name)), Some(Tok::Punct("="))) = (self.peek(), self.peek_at(1)) {
            let name = name.clone();
            if is_keyword(&name) || self.names.contains(&name.as_str()) {
                return Err(SyntaxError::new(format!("assigning to '{name}'")));
            }
            self.pos += 2;
            self.skip_line_breaks();
            let v = self.assignment()?;
            if !self.locals.contains(&name) {
                self.locals.push(name.clone());
            }
            return Ok(Expr::Assign(name, Box::new(v)));
        }
        if let (Some(Tok::Ident(_)), Some(Tok::Punct(op @ ("+" | "-" | "|" | "&" | "*")))) =
            (self.peek(), self.peek_at(1))
        {
            if matches!(self.peek_at(2), Some(Tok::Punct("="))) {
                return Err(SyntaxError::new(format!("the operator '{op}='")));
            }
        }
        self.ternary()
    }

    fn ternary(&mut self) -> Result<Expr, SyntaxError> {
        let c = self.range()?;
        if !self.eat_punct("?") {
            return Ok(c);
        }
        self.skip_line_breaks();
        let a = self.ternary()?;
        self.skip_line_breaks();
        // `x ? a :b` lexes `:b` as a symbol: Ruby reads it as `: b`.
        let b = if let Some(Tok::Sym(s)) = self.peek() {
            let s = s.clone();
            self.pos += 1;
            self.var(s)?
        } else {
            self.expect_punct(":")?;
            self.skip_line_breaks();
            self.ternary()?
        };
        Ok(Expr::If(Box::new(c), Box::new(a), Box::new(b)))
    }

    fn range(&mut self) -> Result<Expr, SyntaxError> {
        let a = self.or()?;
        for (op, excl) in [("..", false), ("...", true)] {
            if self.eat_punct(op) {
                let b = self.or()?;
                return Ok(Expr::Range(Box::new(a), Box::new(b), excl));
            }
        }
        Ok(a)
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut e = self.and()?;
        while self.eat_punct("||") {
            self.skip_line_breaks();
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut e = self.equality()?;
        while self.eat_punct("&&") {
            self.skip_line_breaks();
            e = Expr::And(Box::new(e), Box::new(self.equality()?));
        }
        Ok(e)
    }

    fn equality(&mut self) -> Result<Expr, SyntaxError> {
        let lhs = self.comparison()?;
        let op = match self.peek() {
            Some(Tok::Punct(p @ ("==" | "!=" | "=~" | "!~"))) => *p,
            _ => return Ok(lhs),
        };
        self.pos += 1;
        self.skip_line_breaks();
        let rhs = self.comparison()?;
        Ok(match op {
            "==" => Expr::Bin(BinOp::Eq, Box::new(lhs), Box::new(rhs)),
            "!=" => Expr::Bin(BinOp::Ne, Box::new(lhs), Box::new(rhs)),
            _ => {
                // Ruby assigns named captures to locals only for a regexp literal on the left.
                let names: Vec<String> = match &lhs {
                    Expr::Regex(r) if op == "=~" => r.names().map(str::to_string).collect(),
                    _ => Vec::new(),
                };
                for n in &names {
                    if !self.locals.contains(n) {
                        self.locals.push(n.clone());
                    }
                }
                Expr::Match { lhs: Box::new(lhs), rhs: Box::new(rhs), negate: op == "!~", names }
            }
        })
    }

    fn comparison(&mut self) -> Result<Expr, SyntaxError> {
        let mut e = self.additive()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Punct("<")) => BinOp::Lt,
                Some(Tok::Punct(">")) => BinOp::Gt,
                Some(Tok::Punct("<=")) => BinOp::Le,
                Some(Tok::Punct(">=")) => BinOp::Ge,
                _ => return Ok(e),
            };
            self.pos += 1;
            self.skip_line_breaks();
            e = Expr::Bin(op, Box::new(e), Box::new(self.additive()?));
        }
    }

    fn additive(&mut self) -> Result<Expr, SyntaxError> {
        let mut e = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Punct("+")) => BinOp::Add,
                Some(Tok::Punct("-")) => BinOp::Sub,
                Some(Tok::Punct(p @ ("*" | "/" | "%" | "|" | "&" | "^" | "<<" | ">>" | "**"))) => {
                    return Err(SyntaxError::new(format!("the operator '{p}'")));
                }
                _ => return Ok(e),
            };
            self.pos += 1;
            self.skip_line_breaks();
            e = Expr::Bin(op, Box::new(e), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        if self.eat_punct("!") {
            self.deeper()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        if self.eat_punct("-") {
            self.deeper()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(match e {
                Expr::Int(i) => Expr::Int(-i),
                Expr::Float(f) => Expr::Float(-f),
                e => Expr::Neg(Box::new(e)),
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, SyntaxError> {
        let mut e = self.primary()?;
        loop {
            if self.is_punct(".") || self.is_punct("&.") {
                let safe = self.is_punct("&.");
                self.pos += 1;
                self.skip_line_breaks();
                let name = match self.peek() {
                    Some(Tok::Ident(n)) => n.clone(),
                    Some(t) => return Err(SyntaxError::new(format!("the token {} after '.'", show(t)))),
                    None => return Err(SyntaxError::unclosed("a method call: the name after '.' is missing")),
                };
                self.pos += 1;
                e = self.call(e, name, safe)?;
            } else if self.is_punct("::") {
                return Err(SyntaxError::new("the scope operator '::'"));
            } else if self.is_punct("[") {
                self.pos += 1;
                let args = self.list("]")?;
                if args.is_empty() || args.len() > 2 {
                    return Err(SyntaxError::new("'[]' with other than one or two arguments"));
                }
                if let Expr::Const(c) = e {
                    if c != "ENV" {
                        return Err(SyntaxError::new(format!("{c}[]")));
                    }
                }
                e = Expr::Index(Box::new(e), args);
            } else {
                return Ok(e);
            }
        }
    }

    fn call(&mut self, recv: Expr, name: String, safe: bool) -> Result<Expr, SyntaxError> {
        match &recv {
            Expr::Const(c) => {
                let ok = CONSTS.iter().any(|(k, ms)| k == c && ms.contains(&name.as_str()));
                if !ok {
                    return Err(SyntaxError::new(format!("the method {c}.{name}")));
                }
            }
            _ => {
                if !methods::is_known(&name) {
                    return Err(SyntaxError::new(format!("the method '{name}'")));
                }
            }
        }
        let args = if self.eat_punct("(") {
            self.list(")")?
        } else if starts_operand(self.peek()) {
            return Err(SyntaxError::new(format!("method arguments without parentheses (write {name}(...))")));
        } else {
            Vec::new()
        };
        let block = if self.is_punct("{") {
            if name != "fetch" {
                return Err(SyntaxError::new(format!("a block given to '{name}'")));
            }
            self.pos += 1;
            if self.is_punct("|") {
                return Err(SyntaxError::new("block parameters (|x|)"));
            }
            let body = self.stmts(&[])?;
            self.expect_punct("}")?;
            Some(Box::new(body))
        } else if self.is_kw("do") {
            return Err(SyntaxError::new("do ... end blocks"));
        } else {
            None
        };
        Ok(Expr::Call { recv: Box::new(recv), name, args, block, safe })
    }

    /// Comma-separated expressions up to `close` (already past the opening bracket).
    fn list(&mut self, close: &str) -> Result<Vec<Expr>, SyntaxError> {
        let mut items = Vec::new();
        self.skip_line_breaks();
        if self.eat_punct(close) {
            return Ok(items);
        }
        loop {
            self.skip_line_breaks();
            if self.is_punct("*") || self.is_punct("&") {
                return Err(SyntaxError::new("splat and block arguments (*a, &b)"));
            }
            items.push(self.stmt()?);
            self.skip_line_breaks();
            if self.eat_punct(",") {
                self.skip_line_breaks();
                if self.eat_punct(close) {
                    return Ok(items);
                }
                continue;
            }
            self.expect_punct(close)?;
            return Ok(items);
        }
    }

    fn var(&mut self, name: String) -> Result<Expr, SyntaxError> {
        if self.locals.contains(&name) || self.names.contains(&name.as_str()) {
            return Ok(Expr::Var(name));
        }
        Err(SyntaxError::new(format!("the name '{name}' (not a local variable nor one sluice provides here)")))
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let Some(t) = self.peek().cloned() else {
            return Err(SyntaxError::unclosed("an expression: an operand is missing"));
        };
        self.pos += 1;
        Ok(match t {
            Tok::Int(i) => Expr::Int(i),
            Tok::Float(f) => Expr::Float(f),
            Tok::SStr(s) => Expr::Str(s),
            Tok::DStr(pieces) => self.interp(pieces)?,
            Tok::Sym(s) => Expr::Sym(s),
            Tok::Regex(src, flags) => {
                let literal = format!("/{src}/{flags}");
                let (s, f) =
                    split_literal(&literal).map_err(|e| SyntaxError::new(format!("the regexp {literal}: {e}")))?;
                let re = RubyRegex::new(s, f).map_err(|e| SyntaxError::new(format!("the regexp {literal}: {e}")))?;
                Expr::Regex(Arc::new(re))
            }
            Tok::Punct("(") => {
                self.deeper()?;
                let e = self.stmts(&[])?;
                self.expect_punct(")")?;
                self.depth -= 1;
                e
            }
            Tok::Punct("[") => {
                self.deeper()?;
                let items = self.list("]")?;
                self.depth -= 1;
                Expr::Array(items)
            }
            Tok::Punct("{") => {
                self.deeper()?;
                let h = self.hash_literal()?;
                self.depth -= 1;
                h
            }
            Tok::Const(c) => match CONSTS.iter().find(|(k, _)| *k == c) {
                Some((k, _)) => {
                    if !(self.is_punct(".") || (*k == "ENV" && self.is_punct("["))) {
                        return Err(SyntaxError::new(format!("the constant {c} used on its own")));
                    }
                    Expr::Const(k)
                }
                None => return Err(SyntaxError::new(format!("the constant {c}"))),
            },
            Tok::Ident(w) => match w.as_str() {
                "nil" => Expr::Nil,
                "true" => Expr::Bool(true),
                "false" => Expr::Bool(false),
                "if" => self.if_expr(false)?,
                "unless" => self.if_expr(true)?,
                k if is_keyword(k) => return Err(SyntaxError::new(format!("'{k}'"))),
                _ => {
                    if self.is_punct("(") {
                        return Err(SyntaxError::new(format!("the function call {w}(...)")));
                    }
                    self.var(w)?
                }
            },
            t @ Tok::Punct(_) => return Err(SyntaxError::new(format!("the token {}", show(&t)))),
            Tok::Newline => return Err(SyntaxError::unclosed("an expression: an operand is missing")),
        })
    }

    fn interp(&mut self, pieces: Vec<StrPiece>) -> Result<Expr, SyntaxError> {
        let mut parts = Vec::with_capacity(pieces.len());
        for p in pieces {
            match p {
                StrPiece::Lit(s) => parts.push(Expr::Str(s)),
                StrPiece::Code(code) => {
                    self.deeper()?;
                    let toks = lexer::lex(&code)?;
                    let mut sub = Parser {
                        toks,
                        pos: 0,
                        names: self.names,
                        locals: std::mem::take(&mut self.locals),
                        depth: self.depth,
                    };
                    let e = sub.stmts(&[])?;
                    if let Some(t) = sub.peek() {
                        return Err(SyntaxError::new(format!("the token {}", show(t))));
                    }
                    self.locals = sub.locals;
                    self.depth -= 1;
                    parts.push(e);
                }
            }
        }
        Ok(match parts.as_slice() {
            [] => Expr::Str(String::new()),
            [Expr::Str(_)] => parts.pop().unwrap_or(Expr::Nil),
            _ => Expr::Interp(parts),
        })
    }

    fn hash_literal(&mut self) -> Result<Expr, SyntaxError> {
        let mut entries = Vec::new();
        loop {
            self.skip_line_breaks();
            if self.eat_punct("}") {
                return Ok(Expr::Hash(entries));
            }
            // `key: value` is a symbol key.
            let key = if let (Some(Tok::Ident(k)), Some(Tok::Punct(":"))) = (self.peek(), self.peek_at(1)) {
                let k = k.clone();
                self.pos += 2;
                Expr::Sym(k)
            } else {
                let k = self.ternary()?;
                self.skip_line_breaks();
                self.expect_punct("=>")?;
                k
            };
            self.skip_line_breaks();
            let v = self.ternary()?;
            entries.push((key, v));
            self.skip_line_breaks();
            if !self.eat_punct(",") {
                self.expect_punct("}")?;
                return Ok(Expr::Hash(entries));
            }
        }
    }

    /// `if c [then] a [elsif c2 [then] b] [else d] end` (already past `if`/`unless`).
    fn if_expr(&mut self, unless: bool) -> Result<Expr, SyntaxError> {
        self.deeper()?;
        let cond = self.expr()?;
        self.eat_kw("then");
        let then = self.stmts(&["elsif", "else", "end"])?;
        let other = if !unless && self.eat_kw("elsif") {
            self.if_expr(false)?
        } else {
            let e = if self.eat_kw("else") { self.stmts(&["end"])? } else { Expr::Nil };
            if !self.eat_kw("end") {
                return Err(SyntaxError::unclosed("an if expression: 'end' is missing"));
            }
            e
        };
        self.depth -= 1;
        Ok(if unless {
            Expr::If(Box::new(cond), Box::new(other), Box::new(then))
        } else {
            Expr::If(Box::new(cond), Box::new(then), Box::new(other))
        })
    }
}

fn is_keyword(w: &str) -> bool {
    matches!(
        w,
        "if" | "unless"
            | "then"
            | "else"
            | "elsif"
            | "end"
            | "and"
            | "or"
            | "not"
            | "nil"
            | "true"
            | "false"
            | "self"
            | "def"
            | "class"
            | "module"
            | "do"
            | "while"
            | "until"
            | "for"
            | "case"
            | "when"
            | "begin"
            | "rescue"
            | "ensure"
            | "return"
            | "yield"
            | "lambda"
            | "proc"
            | "loop"
            | "defined"
            | "super"
            | "require"
            | "eval"
            | "system"
            | "exec"
            | "open"
            | "puts"
            | "print"
    )
}
