//! Evaluation of the expression tree: operators, control flow and names. Methods are in `methods`.
use super::methods;
use super::parser::{BinOp, Expr};
use super::value::RValue;
use super::{Context, RubyError};
use crate::event::Map;
use std::cmp::Ordering;

pub struct Eval<'c> {
    ctx: &'c dyn Context,
    locals: Vec<(String, RValue)>,
}

pub fn err<T>(msg: impl Into<String>) -> Result<T, RubyError> {
    Err(RubyError(msg.into()))
}

impl<'c> Eval<'c> {
    pub fn new(ctx: &'c dyn Context) -> Self {
        Eval { ctx, locals: Vec::new() }
    }

    pub fn run(&mut self, e: &Expr) -> Result<RValue, RubyError> {
        self.eval(e)
    }

    fn set_local(&mut self, name: &str, v: RValue) {
        match self.locals.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = v,
            None => self.locals.push((name.to_string(), v)),
        }
    }

    fn eval(&mut self, e: &Expr) -> Result<RValue, RubyError> {
        Ok(match e {
            Expr::Nil => RValue::Nil,
            Expr::Bool(b) => RValue::Bool(*b),
            Expr::Int(i) => RValue::Int(*i),
            Expr::Float(f) => RValue::Float(*f),
            Expr::Str(s) => RValue::Str(s.clone()),
            Expr::Sym(s) => RValue::Sym(s.clone()),
            Expr::Interp(parts) => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        Expr::Str(s) => out.push_str(s),
                        p => {
                            let v = self.eval(p)?;
                            // Fluentd's special values replace the whole string, wherever they appear.
                            if matches!(v, RValue::UseNil | RValue::UseDefault) {
                                return Ok(v);
                            }
                            v.write_to_s(&mut out);
                        }
                    }
                }
                RValue::Str(out)
            }
            Expr::Regex(_) => return err("a regexp is only supported as an argument or with =~ and !~"),
            Expr::Array(items) => RValue::Array(items.iter().map(|i| self.eval(i)).collect::<Result<_, _>>()?),
            Expr::Hash(entries) => {
                let mut h: Vec<(RValue, RValue)> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let k = self.eval(k)?;
                    let v = self.eval(v)?;
                    methods::hash_set(&mut h, k, v);
                }
                RValue::Hash(h)
            }
            Expr::Range(a, b, excl) => match (self.eval(a)?, self.eval(b)?) {
                (RValue::Int(a), RValue::Int(b)) => RValue::Range(a, b, *excl),
                (a, b) => return err(format!("bad value for range: {}..{}", a.inspect(), b.inspect())),
            },
            Expr::Var(name) => self.var(name)?,
            Expr::Assign(name, v) => {
                let v = self.eval(v)?;
                self.set_local(name, v.clone());
                v
            }
            Expr::Const(c) => return err(format!("{c} cannot be used as a value")),
            Expr::Call { recv, name, args, block, safe } => {
                if let Expr::Const(c) = recv.as_ref() {
                    let args = self.args(args)?;
                    return self.const_call(c, name, args, block.as_deref());
                }
                let r = self.eval(recv)?;
                if *safe && matches!(r, RValue::Nil) {
                    return Ok(RValue::Nil);
                }
                if name == "fetch" {
                    return self.fetch(r, args, block.as_deref());
                }
                let args = self.args(args)?;
                methods::call(r, name, args)?
            }
            Expr::Index(recv, args) => {
                if let (Expr::Var(v), [key]) = (recv.as_ref(), args.as_slice()) {
                    if v == "record" && !self.locals.iter().any(|(n, _)| n == "record") {
                        if let RValue::Str(k) = self.eval(key)? {
                            if let Some(found) = self.ctx.record_key(&k) {
                                return Ok(found.unwrap_or(RValue::Nil));
                            }
                        }
                    }
                }
                if let Expr::Const("ENV") = recv.as_ref() {
                    let args = self.args(args)?;
                    return self.const_call("ENV", "[]", args, None);
                }
                let r = self.eval(recv)?;
                let args = self.args(args)?;
                methods::call(r, "[]", args)?
            }
            Expr::Not(x) => RValue::Bool(!self.eval(x)?.truthy()),
            Expr::Neg(x) => match self.eval(x)? {
                RValue::Int(i) => RValue::Int(i.checked_neg().ok_or_else(|| RubyError("integer overflow".into()))?),
                RValue::Float(f) => RValue::Float(-f),
                v => return err(format!("undefined method '-@' for {}", v.class_name())),
            },
            Expr::And(a, b) => {
                let a = self.eval(a)?;
                if a.truthy() {
                    self.eval(b)?
                } else {
                    a
                }
            }
            Expr::Or(a, b) => {
                let a = self.eval(a)?;
                if a.truthy() {
                    a
                } else {
                    self.eval(b)?
                }
            }
            Expr::Bin(op, a, b) => {
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                binop(*op, a, b)?
            }
            Expr::Match { lhs, rhs, negate, names } => self.regex_match(lhs, rhs, *negate, names)?,
            Expr::If(c, a, b) => {
                if self.eval(c)?.truthy() {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            Expr::Seq(list) => {
                let mut last = RValue::Nil;
                for x in list {
                    last = self.eval(x)?;
                }
                last
            }
        })
    }

    fn args(&mut self, args: &[Expr]) -> Result<Vec<Arg>, RubyError> {
        args.iter()
            .map(|a| match a {
                Expr::Regex(r) => Ok(Arg::Regex(r.clone())),
                a => self.eval(a).map(Arg::Val),
            })
            .collect()
    }

    fn var(&mut self, name: &str) -> Result<RValue, RubyError> {
        if let Some((_, v)) = self.locals.iter().find(|(n, _)| n == name) {
            return Ok(v.clone());
        }
        match self.ctx.get(name) {
            Some(v) => Ok(v),
            // A local named by a capture group or an assignment not reached: Ruby gives nil.
            None => Ok(RValue::Nil),
        }
    }

    /// `fetch(key)`, `fetch(key, default)`, `fetch(key) { default }` on ENV, a Hash or an Array.
    fn fetch(&mut self, recv: RValue, args: &[Expr], block: Option<&Expr>) -> Result<RValue, RubyError> {
        if args.is_empty() || args.len() > 2 {
            return err(format!("wrong number of arguments (given {}, expected 1..2)", args.len()));
        }
        let key = self.eval(&args[0])?;
        let found = match (&recv, &key) {
            (RValue::Hash(h), k) => methods::hash_get(h, k).cloned(),
            (RValue::Array(a), RValue::Int(i)) => methods::array_at(a, *i).cloned(),
            (RValue::Array(_), k) => return err(format!("no implicit conversion of {} into Integer", k.class_name())),
            (r, _) => return err(format!("undefined method 'fetch' for {}", r.class_name())),
        };
        self.fetch_default(found, &key, args, block)
    }

    fn fetch_default(
        &mut self,
        found: Option<RValue>,
        key: &RValue,
        args: &[Expr],
        block: Option<&Expr>,
    ) -> Result<RValue, RubyError> {
        if let Some(v) = found {
            return Ok(v);
        }
        if let Some(b) = block {
            return self.eval(b);
        }
        if let Some(d) = args.get(1) {
            return self.eval(d);
        }
        match key {
            RValue::Int(i) => err(format!("index {i} outside of array bounds")),
            k => err(format!("key not found: {}", k.inspect())),
        }
    }

    fn const_call(&mut self, c: &str, name: &str, args: Vec<Arg>, block: Option<&Expr>) -> Result<RValue, RubyError> {
        let vals = || -> Result<Vec<RValue>, RubyError> { args.iter().map(Arg::value).collect() };
        Ok(match (c, name) {
            ("ENV", "[]") => {
                let [Arg::Val(RValue::Str(k))] = args.as_slice() else {
                    return err("ENV[] takes one string");
                };
                match std::env::var(k) {
                    Ok(v) => RValue::Str(v),
                    Err(_) => {
                        super::note_unset_env(k);
                        RValue::Nil
                    }
                }
            }
            ("ENV", "key?" | "has_key?" | "include?") => {
                let [Arg::Val(RValue::Str(k))] = args.as_slice() else {
                    return err(format!("ENV.{name} takes one string"));
                };
                RValue::Bool(std::env::var_os(k).is_some())
            }
            ("ENV", "fetch") => {
                let Some(Arg::Val(RValue::Str(k))) = args.first() else {
                    return err("ENV.fetch takes a string name");
                };
                if args.len() > 2 {
                    return err(format!("wrong number of arguments (given {}, expected 1..2)", args.len()));
                }
                if let Ok(v) = std::env::var(k) {
                    return Ok(RValue::Str(v));
                }
                if let Some(b) = block {
                    return self.eval(b);
                }
                match args.get(1) {
                    Some(d) => d.value()?,
                    None => return err(format!("key not found: {:?} (environment variable not set)", k)),
                }
            }
            ("File", "join") => RValue::Str(methods::file_join(&vals()?)?),
            ("File", "basename") => match vals()?.as_slice() {
                [RValue::Str(p)] => RValue::Str(methods::basename(p)),
                _ => return err("File.basename takes one string"),
            },
            ("File", "dirname") => match vals()?.as_slice() {
                [RValue::Str(p)] => RValue::Str(methods::dirname(p)),
                _ => return err("File.dirname takes one string"),
            },
            ("Socket", "gethostname") => RValue::Str(crate::util::hostname()),
            ("Hash", "new") => {
                if !args.is_empty() {
                    return err("Hash.new with a default value is not supported");
                }
                RValue::Hash(Vec::new())
            }
            ("Time", "now") => RValue::Time(super::RTime { t: crate::event::EventTime::now(), utc: false }),
            ("Time", "at") => match vals()?.as_slice() {
                [RValue::Int(i)] => RValue::Time(super::RTime { t: crate::event::EventTime::new(*i, 0), utc: false }),
                [RValue::Float(f)] => {
                    RValue::Time(super::RTime { t: crate::event::EventTime::from_f64(*f), utc: false })
                }
                [RValue::Time(t)] => RValue::Time(*t),
                _ => return err("Time.at takes a number"),
            },
            _ => return err(format!("undefined method '{name}' for {c}")),
        })
    }

    fn regex_match(&mut self, lhs: &Expr, rhs: &Expr, negate: bool, names: &[String]) -> Result<RValue, RubyError> {
        let (re, text) = match (lhs, rhs) {
            (Expr::Regex(r), other) | (other, Expr::Regex(r)) => (r.clone(), self.eval(other)?),
            _ => return err("=~ needs a regexp literal on one side"),
        };
        let text = match text {
            RValue::Str(s) => s,
            RValue::Sym(s) => s,
            RValue::Nil => {
                for n in names {
                    self.set_local(n, RValue::Nil);
                }
                return Ok(if negate { RValue::Bool(true) } else { RValue::Nil });
            }
            other => return err(format!("wrong argument type {} (expected Regexp)", other.class_name())),
        };
        let m = methods::regex_find(&re, &text, 0);
        if !names.is_empty() {
            let mut caps = Map::new();
            if m.is_some() {
                re.captures_into(&text, &mut re.slots(), &mut caps);
            }
            for n in names {
                let v = caps.get(n).map(RValue::from_value).unwrap_or(RValue::Nil);
                self.set_local(n, v);
            }
        }
        Ok(match (m, negate) {
            (Some(start), false) => RValue::Int(text[..start].chars().count() as i64),
            (None, false) => RValue::Nil,
            (found, true) => RValue::Bool(found.is_none()),
        })
    }
}

/// A method argument: a value, or a regexp literal (only ever an argument, never a stored value).
#[derive(Clone)]
pub enum Arg {
    Val(RValue),
    Regex(std::sync::Arc<super::regexp::RubyRegex>),
}

impl Arg {
    pub fn value(&self) -> Result<RValue, RubyError> {
        match self {
            Arg::Val(v) => Ok(v.clone()),
            Arg::Regex(r) => err(format!("the regexp /{}/ cannot be used as a value here", r.source())),
        }
    }
}

fn binop(op: BinOp, a: RValue, b: RValue) -> Result<RValue, RubyError> {
    Ok(match op {
        BinOp::Eq => RValue::Bool(methods::equal(&a, &b)),
        BinOp::Ne => RValue::Bool(!methods::equal(&a, &b)),
        BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
            let Some(ord) = compare(&a, &b) else {
                return err(format!("comparison of {} with {} failed", a.class_name(), b.inspect()));
            };
            RValue::Bool(match op {
                BinOp::Lt => ord == Ordering::Less,
                BinOp::Gt => ord == Ordering::Greater,
                BinOp::Le => ord != Ordering::Greater,
                _ => ord != Ordering::Less,
            })
        }
        BinOp::Add => match (a, b) {
            (RValue::Int(x), RValue::Int(y)) => {
                RValue::Int(x.checked_add(y).ok_or_else(|| RubyError("integer overflow".into()))?)
            }
            (RValue::Int(x), RValue::Float(y)) => RValue::Float(x as f64 + y),
            (RValue::Float(x), RValue::Int(y)) => RValue::Float(x + y as f64),
            (RValue::Float(x), RValue::Float(y)) => RValue::Float(x + y),
            (RValue::Str(x), RValue::Str(y)) => RValue::Str(x + &y),
            (RValue::Array(mut x), RValue::Array(y)) => {
                x.extend(y);
                RValue::Array(x)
            }
            (RValue::Str(_), y) => return err(format!("no implicit conversion of {} into String", y.class_name())),
            (x @ (RValue::Int(_) | RValue::Float(_)), y) => {
                return err(format!("{} can't be coerced into {}", y.class_name(), x.class_name()))
            }
            (x, _) => return err(format!("undefined method '+' for {}", x.class_name())),
        },
        BinOp::Sub => match (a, b) {
            (RValue::Int(x), RValue::Int(y)) => {
                RValue::Int(x.checked_sub(y).ok_or_else(|| RubyError("integer overflow".into()))?)
            }
            (RValue::Int(x), RValue::Float(y)) => RValue::Float(x as f64 - y),
            (RValue::Float(x), RValue::Int(y)) => RValue::Float(x - y as f64),
            (RValue::Float(x), RValue::Float(y)) => RValue::Float(x - y),
            (x, _) => return err(format!("undefined method '-' for {}", x.class_name())),
        },
    })
}

/// Ruby's `<=>` for numbers and strings; None where Ruby raises.
pub fn compare(a: &RValue, b: &RValue) -> Option<Ordering> {
    match (a, b) {
        (RValue::Int(x), RValue::Int(y)) => Some(x.cmp(y)),
        (RValue::Int(x), RValue::Float(y)) => (*x as f64).partial_cmp(y),
        (RValue::Float(x), RValue::Int(y)) => x.partial_cmp(&(*y as f64)),
        (RValue::Float(x), RValue::Float(y)) => x.partial_cmp(y),
        (RValue::Str(x), RValue::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (RValue::Time(x), RValue::Time(y)) => Some(x.t.as_nanos().cmp(&y.t.as_nanos())),
        _ => None,
    }
}
