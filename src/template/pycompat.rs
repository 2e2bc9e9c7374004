//! Python behaviour that transformers' Jinja (jinja2 on CPython) has and minijinja lacks:
//! values print as Python's `str()` (containers as their `repr`), and the filters whose
//! jinja2 arguments or results differ (`indent`, `int`, `float`, `default`, `sort`, `string`).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use minijinja::value::{
    from_args, Enumerator, Kwargs, Object, ObjectRepr, Rest, Value, ValueKind, ValueOrKwargs,
};
use minijinja::{Environment, Error, ErrorKind, State};

use crate::pyjson::py_float;

/// Installs the Python-compatible methods, printing and filters on `env`.
pub fn install(env: &mut Environment<'static>) {
    env.set_unknown_method_callback(
        |state, value, method, args| match (value.as_str(), method) {
            (Some(s), "rsplit") => rsplit(s, args),
            _ => minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args),
        },
    );
    env.set_formatter(|out, _state, value| {
        if !value.is_undefined() {
            out.write_str(&py_str(value))?;
        }
        Ok(())
    });
    env.add_filter("string", |value: &Value| Value::from(py_str(value)));
    // Also what `str % args` calls (third_party/minijinja patch).
    env.add_filter("format", format);
    env.add_filter("indent", indent);
    env.add_filter("int", int);
    env.add_filter("float", float);
    env.add_filter("default", default);
    env.add_filter("d", default);
    env.add_filter("sort", sort);
    env.add_filter("center", center);
    env.add_filter("wordcount", |s: &Value| {
        let text = py_str(s);
        let mut count = 0;
        let mut in_word = false;
        for c in text.chars() {
            let w = c.is_alphanumeric() || c == '_';
            count += usize::from(w && !in_word);
            in_word = w;
        }
        count
    });
    // jinja2 returns generators from these: always true in an `if`, iterable once,
    // without a length.
    env.add_filter("select", generator(minijinja::filters::select));
    env.add_filter("selectattr", generator(minijinja::filters::selectattr));
    env.add_filter("reject", generator(minijinja::filters::reject));
    env.add_filter("rejectattr", generator(minijinja::filters::rejectattr));
    env.add_filter("map", generator(minijinja::filters::map));
    env.add_filter("items", generator(minijinja::filters::items));
}

/// A Python generator: consumed item by item (once), always true, no length, not sliceable.
#[derive(Debug)]
struct PyGenerator(Mutex<std::vec::IntoIter<Value>>);

/// Takes the generator's items one at a time; knows how many are left (for `loop.last`).
struct Drain(Arc<PyGenerator>);

impl Iterator for Drain {
    type Item = Value;
    fn next(&mut self) -> Option<Value> {
        self.0 .0.lock().ok()?.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.0 .0.lock().map_or(0, |items| items.len());
        (n, Some(n))
    }
}

impl Object for PyGenerator {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Iter(Box::new(Drain(self.clone())))
    }

    /// No `length` (its iterator still knows its size, for `loop.last`).
    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        None
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<generator object>")
    }
}

/// Wraps a list-returning builtin filter so that it returns a Python-like generator.
fn generator<F, Rv, Args>(
    f: F,
) -> impl Fn(&mut State, Rest<ValueOrKwargs>) -> Result<Value, Error> + Send + Sync + 'static
where
    F: minijinja::functions::Function<Rv, Args>,
    Rv: minijinja::value::FunctionResult,
    Args: for<'a> minijinja::value::FunctionArgs<'a>,
{
    let inner = Value::from_function(f);
    move |state: &mut State, args: Rest<ValueOrKwargs>| {
        let items: Vec<Value> = inner
            .call(state, &args.into_values())?
            .try_iter()?
            .collect();
        Ok(Value::from_object(PyGenerator(Mutex::new(
            items.into_iter(),
        ))))
    }
}

/// `|format` and `str % args`: printf-style, with values other than numbers, booleans and
/// strings formatted as Python's `str()` (`None`, `[1, 'a']`).
fn format(state: &mut State, fmt: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args
        .0
        .into_iter()
        .map(|arg| match arg.kind() {
            ValueKind::Number | ValueKind::Bool | ValueKind::String => arg,
            _ if arg.downcast_object_ref::<Kwargs>().is_some() => arg,
            _ => Value::from(py_str(&arg)).into(),
        })
        .collect();
    minijinja::filters::format(state, fmt, Rest(args))
}

/// A JSON value as a template value (maps keep their order, as Python dicts do).
pub fn from_json(v: serde_json::Value) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// Python's `str(value)`.
pub fn py_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        _ => {
            let mut out = String::new();
            py_repr(value, &mut out);
            out
        }
    }
}

/// Python's `repr(value)` for the values templates hold.
fn py_repr(value: &Value, out: &mut String) {
    match value.kind() {
        ValueKind::Undefined => out.push_str("Undefined"),
        ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number if !value.is_integer() => {
            let f = f64::try_from(value.clone()).unwrap_or(f64::NAN);
            out.push_str(&py_float_str(f));
        }
        ValueKind::String => {
            let _ = write!(out, "{value:?}");
        }
        ValueKind::Seq if value.is_tuple() => {
            out.push('(');
            let mut n = 0;
            if let Ok(items) = value.try_iter() {
                for item in items {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    py_repr(&item, out);
                    n += 1;
                }
            }
            out.push_str(if n == 1 { ",)" } else { ")" });
        }
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            if let Ok(items) = value.try_iter() {
                for (i, item) in items.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    py_repr(&item, out);
                }
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            if let Ok(keys) = value.try_iter() {
                for (i, key) in keys.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    py_repr(&key, out);
                    out.push_str(": ");
                    py_repr(&value.get_item(&key).unwrap_or_default(), out);
                }
            }
            out.push('}');
        }
        _ => {
            let _ = write!(out, "{value}");
        }
    }
}

/// Python's `str(float)`: `repr` without JSON's spellings of the non-finite values.
fn py_float_str(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        py_float(f)
    }
}

/// Python's `str.rsplit(sep=None, maxsplit=-1)`.
fn rsplit(s: &str, args: &[Value]) -> Result<Value, Error> {
    let (sep, maxsplit, kwargs): (Option<Value>, Option<i64>, Kwargs) = from_args(args)?;
    let sep = match sep {
        Some(v) => Some(v),
        None => kwargs.get::<Option<Value>>("sep")?,
    };
    let maxsplit = match maxsplit {
        Some(m) => m,
        None => kwargs.get::<Option<i64>>("maxsplit")?.unwrap_or(-1),
    };
    kwargs.assert_all_used()?;
    let limit = usize::try_from(maxsplit).ok();
    let parts: Vec<Value> = match sep.as_ref().and_then(Value::as_str) {
        Some("") => return Err(Error::new(ErrorKind::InvalidOperation, "empty separator")),
        Some(sep) => {
            let mut parts: Vec<&str> = match limit {
                Some(n) => s.rsplitn(n + 1, sep).collect(),
                None => s.rsplit(sep).collect(),
            };
            parts.reverse();
            parts.into_iter().map(Value::from).collect()
        }
        None => {
            // Whitespace runs; leftover text keeps its inner spacing.
            let mut parts = Vec::new();
            let mut rest = s.trim_end();
            while !rest.is_empty() {
                if limit.is_some_and(|n| parts.len() == n) {
                    parts.push(rest);
                    break;
                }
                match rest.rfind(char::is_whitespace) {
                    Some(i) => {
                        let ws = rest[i..].chars().next().map_or(1, char::len_utf8);
                        parts.push(&rest[i + ws..]);
                        rest = rest[..i].trim_end();
                    }
                    None => {
                        parts.push(rest);
                        rest = "";
                    }
                }
            }
            parts.reverse();
            parts.into_iter().map(Value::from).collect()
        }
    };
    Ok(Value::from(parts))
}

/// Python's `str.center(width)` (CPython's padding split).
fn center(value: &Value, width: Option<usize>) -> Value {
    let s = py_str(value);
    let width = width.unwrap_or(80);
    let len = s.chars().count();
    if len >= width {
        return Value::from(s);
    }
    let marg = width - len;
    let left = marg / 2 + (marg & width & 1);
    Value::from(format!(
        "{}{s}{}",
        " ".repeat(left),
        " ".repeat(marg - left)
    ))
}

/// Python's `str.splitlines()` (without the line ends).
fn py_splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{b}'
                | '\u{c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        lines.push(&s[start..i]);
        let mut end = i + c.len_utf8();
        if c == '\r' {
            if let Some(&(j, '\n')) = chars.peek() {
                chars.next();
                end = j + 1;
            }
        }
        start = end;
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// jinja2's `indent(s, width=4, first=False, blank=False)`, quirks included (a trailing
/// newline survives; `width` may be a string).
fn indent(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (width, first, blank, kwargs): (Option<Value>, Option<bool>, Option<bool>, Kwargs) =
        from_args(&args)?;
    let width = match width {
        Some(w) => Some(w),
        None => kwargs.get::<Option<Value>>("width")?,
    };
    let first = match first {
        Some(f) => f,
        None => kwargs.get::<Option<bool>>("first")?.unwrap_or(false),
    };
    let blank = match blank {
        Some(b) => b,
        None => kwargs.get::<Option<bool>>("blank")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let indention = match &width {
        None => "    ".to_string(),
        Some(w) => match w.as_str() {
            Some(s) => s.to_string(),
            None => " ".repeat(usize::try_from(w.clone()).map_err(|_| {
                Error::new(ErrorKind::InvalidOperation, "indent width must be a number")
            })?),
        },
    };
    let s = format!("{}\n", py_str(value));
    let lines = py_splitlines(&s);
    let mut rv = if blank {
        lines.join(&format!("\n{indention}"))
    } else {
        let mut it = lines.into_iter();
        let mut rv = it.next().unwrap_or_default().to_string();
        let rest: Vec<String> = it
            .map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("{indention}{l}")
                }
            })
            .collect();
        if !rest.is_empty() {
            rv.push('\n');
            rv.push_str(&rest.join("\n"));
        }
        rv
    };
    if first {
        rv.insert_str(0, &indention);
    }
    Ok(Value::from(rv))
}

/// Python's `int(s, base)` on a string: surrounding whitespace and `_` between digits allowed.
fn parse_py_int(s: &str, base: u32) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let prefix = match base {
        2 => Some("0b"),
        8 => Some("0o"),
        16 => Some("0x"),
        _ => None,
    };
    let digits = match prefix {
        Some(p) if digits.len() > 2 && digits[..2].eq_ignore_ascii_case(p) => &digits[2..],
        _ => digits,
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let v = i64::from_str_radix(&digits.replace('_', ""), base).ok()?;
    Some(if neg { -v } else { v })
}

/// Python's `float(s)` on a string.
fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim().replace('_', "");
    match t.to_ascii_lowercase().trim_start_matches(['+', '-']) {
        "inf" | "infinity" | "nan" => t.parse().ok(),
        x if x
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
            && !x.is_empty() =>
        {
            t.parse().ok()
        }
        _ => None,
    }
}

/// jinja2's `int(value, default=0, base=10)`: never fails, falls back to `default`.
fn int(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (default, base, kwargs): (Option<Value>, Option<u32>, Kwargs) = from_args(&args)?;
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0)),
    };
    let base = match base {
        Some(b) => b,
        None => kwargs.get::<Option<u32>>("base")?.unwrap_or(10),
    };
    kwargs.assert_all_used()?;
    Ok(match value.kind() {
        ValueKind::Bool => Value::from(i64::from(value.is_true())),
        ValueKind::Number if value.is_integer() => value.clone(),
        ValueKind::Number => f64::try_from(value.clone())
            .ok()
            .filter(|f| f.is_finite())
            .map_or(default, |f| Value::from(f.trunc() as i64)),
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            match parse_py_int(s, base) {
                Some(i) => Value::from(i),
                None => parse_py_float(s)
                    .filter(|f| f.is_finite())
                    .map_or(default, |f| Value::from(f.trunc() as i64)),
            }
        }
        _ => default,
    })
}

/// jinja2's `float(value, default=0.0)`.
fn float(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (default, kwargs): (Option<Value>, Kwargs) = from_args(&args)?;
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0.0)),
    };
    kwargs.assert_all_used()?;
    Ok(match value.kind() {
        ValueKind::Bool => Value::from(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(value.clone()).map_or(default, Value::from),
        ValueKind::String => {
            parse_py_float(value.as_str().unwrap_or_default()).map_or(default, Value::from)
        }
        _ => default,
    })
}

/// jinja2's `default(value, default_value='', boolean=False)`.
fn default(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (other, boolean, kwargs): (Option<Value>, Option<bool>, Kwargs) = from_args(&args)?;
    let other = match other {
        Some(o) => o,
        None => kwargs
            .get::<Option<Value>>("default_value")?
            .unwrap_or(Value::from("")),
    };
    let boolean = match boolean {
        Some(b) => b,
        None => kwargs.get::<Option<bool>>("boolean")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    Ok(if value.is_undefined() || (boolean && !value.is_true()) {
        other
    } else {
        value.clone()
    })
}

/// jinja2's `sort(value, reverse=False, case_sensitive=False, attribute=None)`, positional
/// arguments included, on minijinja's (stable, Python-ordered) sort.
fn sort(state: &State, value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (reverse, case_sensitive, attribute, kwargs): (
        Option<Value>,
        Option<Value>,
        Option<Value>,
        Kwargs,
    ) = from_args(&args)?;
    let mut named: Vec<(&str, Value)> = Vec::new();
    for (name, positional) in [
        ("reverse", reverse),
        ("case_sensitive", case_sensitive),
        ("attribute", attribute),
    ] {
        if let Some(v) = positional.or(kwargs.get::<Option<Value>>(name)?) {
            named.push((name, v));
        }
    }
    kwargs.assert_all_used()?;
    minijinja::filters::sort(state, value, Kwargs::from_iter(named))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitlines_like_python() {
        assert_eq!(py_splitlines("a\r\nb\rc\n\nd\n"), ["a", "b", "c", "", "d"]);
        assert_eq!(py_splitlines(""), Vec::<&str>::new());
    }

    #[test]
    fn rsplit_and_center_like_python() {
        let r = |s: &str, args: &[Value]| rsplit(s, args).unwrap().to_string();
        assert_eq!(r(" a  b c ", &[]), "['a', 'b', 'c']");
        assert_eq!(
            r(" a  b c ", &[Value::from(()), Value::from(1)]),
            "[' a  b', 'c']"
        );
        assert_eq!(
            r("a,b,c", &[Value::from(","), Value::from(1)]),
            "['a,b', 'c']"
        );
        assert_eq!(center(&Value::from("ab"), Some(5)).to_string(), "  ab ");
        assert_eq!(center(&Value::from("abc"), Some(6)).to_string(), " abc  ");
    }

    #[test]
    fn floats_print_like_python() {
        assert_eq!(py_str(&Value::from(1e16)), "1e+16");
        assert_eq!(py_str(&Value::from(0.5)), "0.5");
        assert_eq!(py_str(&Value::from(2.0)), "2.0");
        assert_eq!(py_str(&Value::from(f64::NEG_INFINITY)), "-inf");
    }
}
