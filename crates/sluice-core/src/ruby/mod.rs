//! Ruby as Fluentd configurations write it.
//!
//! * [`regexp`]: Ruby (Onigmo) regular expressions translated for Rust's regex engines.
//! * [`text`]: Ruby's lenient `String#to_i`, `#to_f`, `#split` and `#scrub`.
//! * [`print`](mod@print): values as Ruby prints them: `Float#to_s`, `to_s` and `inspect`.
//! * A small, safe evaluator of the Ruby expressions real configurations use, for `"#{...}"` in
//!   parameter values ([`eval_config_code`]) and `record_transformer`'s `enable_ruby` ([`Program`]):
//!   `lexer` → `parser` (which refuses anything outside the subset, so that is a configuration
//!   error) → `eval` with the methods of `methods` on the [`value::RValue`]s. No I/O, no loops:
//!   an expression can only compute a value from its inputs.
mod eval;
mod lexer;
mod methods;
mod parser;
pub mod print;
pub mod regexp;
pub mod text;
pub mod value;

pub use value::{RTime, RValue};

/// A construct outside the subset (or an incomplete expression): found when the expression is parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what}")]
pub struct SyntaxError {
    what: String,
}

impl SyntaxError {
    pub fn new(construct: impl Into<String>) -> Self {
        SyntaxError { what: format!("{} is not supported by sluice's Ruby subset", construct.into()) }
    }

    pub fn unclosed(what: &str) -> Self {
        SyntaxError { what: format!("incomplete {what}") }
    }
}

/// An error raised while evaluating (Ruby's NoMethodError, TypeError, KeyError, ...).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct RubyError(pub String);

/// What the names an expression may use (beyond its own locals) are bound to.
pub trait Context {
    fn get(&self, name: &str) -> Option<RValue>;
    /// `record["key"]` without converting the whole record: `Some(None)` when the key is absent,
    /// `None` when this context has no record.
    fn record_key(&self, _key: &str) -> Option<Option<RValue>> {
        None
    }
}

/// A parsed expression, checked against the subset and the names its context provides.
#[derive(Debug, Clone)]
pub struct Program {
    expr: parser::Expr,
}

impl Program {
    /// Ruby code, e.g. `record["a"].downcase`.
    pub fn parse(code: &str, names: &[&str]) -> Result<Program, SyntaxError> {
        Ok(Program { expr: parser::parse(code, names)? })
    }

    /// The body of a double-quoted string (no quotes), e.g. `a #{tag} b`.
    pub fn parse_interpolated(body: &str, names: &[&str]) -> Result<Program, SyntaxError> {
        let (pieces, _) = lexer::double_quoted(body, 0, 0)?;
        let code: Vec<lexer::Tok> = vec![lexer::Tok::DStr(pieces)];
        Ok(Program { expr: parser::parse_tokens(code, names)? })
    }

    pub fn eval(&self, ctx: &dyn Context) -> Result<RValue, RubyError> {
        eval::Eval::new(ctx).run(&self.expr)
    }
}

/// The names Fluentd's `"#{...}"` code sees besides its own locals.
const CONFIG_NAMES: &[&str] = &["hostname", "worker_id", "use_nil", "use_default"];

struct ConfigContext;

impl Context for ConfigContext {
    fn get(&self, name: &str) -> Option<RValue> {
        Some(match name {
            "hostname" => RValue::Str(crate::util::hostname()),
            // sluice runs one worker, Fluentd's worker 0.
            "worker_id" => RValue::str("0"),
            "use_nil" => RValue::UseNil,
            "use_default" => RValue::UseDefault,
            _ => return None,
        })
    }
}

thread_local! {
    /// While configuration code runs: the environment variables `ENV[...]` found unset, so the
    /// configuration layer can say which variable left a value empty. `None` outside configuration code
    /// (record_transformer's runtime calls record nothing).
    static UNSET_ENV: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

pub(crate) fn note_unset_env(name: &str) {
    UNSET_ENV.with(|u| {
        if let Some(names) = u.borrow_mut().as_mut() {
            names.push(name.to_string());
        }
    });
}

/// Evaluate the code of one `"#{...}"` in a configuration value. The error quotes the expression
/// and says what is missing (a construct outside the subset, or what Ruby raised). The second value
/// names the environment variables that `ENV[...]` found unset.
pub fn eval_config_code(code: &str) -> (Result<RValue, String>, Vec<String>) {
    let quoted = format!("#{{{code}}}");
    let prog = match Program::parse(code, CONFIG_NAMES) {
        Ok(p) => p,
        Err(e) => return (Err(format!("embedded Ruby '{quoted}': {e}")), Vec::new()),
    };
    UNSET_ENV.with(|u| *u.borrow_mut() = Some(Vec::new()));
    let result = prog.eval(&ConfigContext).map_err(|e| format!("embedded Ruby '{quoted}' failed: {e}"));
    let unset = UNSET_ENV.with(|u| u.borrow_mut().take()).unwrap_or_default();
    (result, unset)
}

#[cfg(test)]
mod tests;
