//! The Jinja engine as transformers sets it up: trim/lstrip blocks, Python methods, a Python
//! `tojson`, `raise_exception`, `strftime_now`, `{% generation %}` tags, and step and size limits.

use std::collections::BTreeMap;

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error as JinjaError, ErrorKind};

use super::clock::{now_unix, strftime_utc, Date};
use super::{pycompat, TemplateError};
use crate::data::Message;
use crate::pyjson::PyJson;

/// Steps a template may take (minijinja fuel), bounding runaway templates.
const TEMPLATE_FUEL: u64 = 50_000_000;
/// Largest rendered text accepted, in bytes.
const MAX_RENDERED_BYTES: usize = 64 << 20;

/// How a Jinja template is compiled and what `strftime_now` reports.
#[derive(Debug, Clone, Copy)]
pub struct JinjaOptions {
    /// `trim_blocks` and `lstrip_blocks` (transformers turns both on).
    pub trim_blocks: bool,
    /// The date `strftime_now` reports (midnight UTC); `None` is the current time.
    pub date: Option<Date>,
}

impl Default for JinjaOptions {
    fn default() -> Self {
        Self {
            trim_blocks: true,
            date: None,
        }
    }
}

/// A Jinja chat template with the variables transformers passes to it.
pub struct JinjaTemplate {
    env: Environment<'static>,
    /// Special tokens and other fixed variables (`bos_token`, `additional_special_tokens`, ...).
    globals: serde_json::Map<String, serde_json::Value>,
    model: String,
}

impl JinjaTemplate {
    /// Compiles `source` the way transformers does (see [`JinjaTemplate::with_options`]),
    /// with the current date for `strftime_now`.
    pub fn new(
        source: &str,
        special: BTreeMap<String, String>,
        model: &str,
        file: &str,
    ) -> Result<Self, TemplateError> {
        Self::with_options(source, special, model, file, JinjaOptions::default())
    }

    /// Compiles `source` as transformers' sandboxed environment does: trim_blocks,
    /// lstrip_blocks, loop controls, Python string/dict methods and printing,
    /// `raise_exception`, a Python `tojson`, `strftime_now`, `{% generation %}` accepted.
    pub fn with_options(
        source: &str,
        special: BTreeMap<String, String>,
        model: &str,
        file: &str,
        opts: JinjaOptions,
    ) -> Result<Self, TemplateError> {
        let invalid = |message: String| TemplateError::Invalid {
            file: file.to_string(),
            message,
        };
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(opts.trim_blocks)
            .lstrip_blocks(opts.trim_blocks)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_fuel(Some(TEMPLATE_FUEL));
        pycompat::install(&mut env);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<Value, JinjaError> {
                Err(JinjaError::new(
                    ErrorKind::InvalidOperation,
                    format!("{RAISED}{msg}"),
                ))
            },
        );
        let pinned = opts.date.map(|d| d.days * 86_400);
        env.add_function("strftime_now", move |fmt: String| -> String {
            strftime_utc(&fmt, pinned.unwrap_or_else(now_unix))
        });
        env.add_filter("tojson", tojson);
        env.add_template_owned("chat_template", strip_generation_tags(source))
            .map_err(|e| invalid(format!("{e:#}")))?;
        Ok(Self {
            env,
            globals: special
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
            model: model.to_string(),
        })
    }

    /// Adds a variable every rendering sees.
    pub fn with_global(mut self, name: &str, value: serde_json::Value) -> Self {
        self.globals.insert(name.to_string(), value);
        self
    }

    /// Passes `additional_special_tokens` as transformers does (only when there are some).
    pub fn with_additional_special_tokens(self, tokens: &[String]) -> Self {
        if tokens.is_empty() {
            return self;
        }
        self.with_global("additional_special_tokens", serde_json::json!(tokens))
    }

    /// Renders `messages` as `tokenizer.apply_chat_template(messages, tokenize=False)` does.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let messages = serde_json::to_value(messages).map_err(|e| TemplateError::Render {
            model: self.model.clone(),
            message: e.to_string(),
        })?;
        self.render_json(&messages, add_generation_prompt, &serde_json::Map::new())
    }

    /// Renders with arbitrary JSON messages and extra variables (`tools`, `documents`,
    /// `enable_thinking`, ...), which override the special tokens, as transformers' kwargs do.
    pub fn render_json(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, TemplateError> {
        let mut ctx = self.globals.clone();
        // apply_chat_template always passes these two, as None when unused.
        ctx.insert("tools".into(), serde_json::Value::Null);
        ctx.insert("documents".into(), serde_json::Value::Null);
        ctx.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        ctx.insert("messages".into(), messages.clone());
        ctx.insert(
            "add_generation_prompt".into(),
            serde_json::Value::Bool(add_generation_prompt),
        );
        self.render_context(ctx)
    }

    /// Renders with exactly the given variables.
    pub fn render_context(
        &self,
        ctx: serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, TemplateError> {
        self.render_values(
            ctx.into_iter()
                .map(|(k, v)| (k, pycompat::from_json(v)))
                .collect(),
        )
    }

    /// Renders with exactly the given template values (which may hold functions).
    pub fn render_values(&self, ctx: BTreeMap<String, Value>) -> Result<String, TemplateError> {
        let err = |e: JinjaError| TemplateError::Render {
            model: self.model.clone(),
            message: jinja_message(&e),
        };
        let tmpl = self.env.get_template("chat_template").map_err(err)?;
        let mut out = LimitedWriter(Vec::new());
        match tmpl.render_captured_to(ctx, &mut out) {
            Ok(_) => {}
            Err(_) if out.0.len() > MAX_RENDERED_BYTES => {
                return Err(TemplateError::Render {
                    model: self.model.clone(),
                    message: format!(
                        "the rendered text grew over the {MAX_RENDERED_BYTES}-byte limit"
                    ),
                })
            }
            Err(e) => return Err(err(e)),
        }
        String::from_utf8(out.0).map_err(|e| TemplateError::Render {
            model: self.model.clone(),
            message: e.to_string(),
        })
    }
}

/// Collects rendered bytes and fails the rendering once they pass [`MAX_RENDERED_BYTES`].
struct LimitedWriter(Vec<u8>);

impl std::io::Write for LimitedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        if self.0.len() > MAX_RENDERED_BYTES {
            return Err(std::io::Error::other("rendered text too large"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Marks the errors a template raises itself, to tell them from engine errors.
const RAISED: &str = "\u{1}raise_exception\u{1}";

fn jinja_message(e: &JinjaError) -> String {
    match e.kind() {
        ErrorKind::InvalidOperation if e.detail().is_some_and(|d| d.starts_with(RAISED)) => {
            let msg = e.detail().unwrap_or_default().trim_start_matches(RAISED);
            format!("the template raised an exception: {msg}")
        }
        ErrorKind::OutOfFuel => "the template ran too long (stopped after its step budget)".into(),
        // e.g. "undefined value (in chat_template:3)"
        _ => e.to_string(),
    }
}

/// Removes `{% generation %}` / `{% endgeneration %}` markers (transformers' assistant-mask tags).
fn strip_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        // The closing `%}` starts after the opening `{%` (`{%}` is not a whole tag).
        let Some(end_rel) = rest[start + 2..].find("%}") else {
            break;
        };
        let end = start + 2 + end_rel + 2;
        let inner = rest[start + 2..end - 2]
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        out.push_str(&rest[..start]);
        if inner != "generation" && inner != "endgeneration" {
            out.push_str(&rest[start..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)`, no HTML escaping.
fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, JinjaError> {
    if value.is_undefined() {
        return Err(JinjaError::new(
            ErrorKind::InvalidOperation,
            "tojson: Object of type Undefined is not JSON serializable",
        ));
    }
    let indent: Option<Value> = kwargs.get("indent")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => Some(" ".repeat(usize::try_from(v).unwrap_or(0))),
        },
    };
    let (item_sep, key_sep) = match separators {
        Some(s) if s.len() == 2 => (s[0].clone(), s[1].clone()),
        _ => (
            if indent.is_some() { "," } else { ", " }.to_string(),
            ": ".to_string(),
        ),
    };
    let json: serde_json::Value = serde_json::to_value(&value)
        .map_err(|e| JinjaError::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    let opts = PyJson {
        indent,
        item_sep,
        key_sep,
        ensure_ascii: ensure_ascii.unwrap_or(false),
        sort_keys: sort_keys.unwrap_or(false),
    };
    Ok(Value::from_safe_string(opts.dumps(&json)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jinja(src: &str) -> JinjaTemplate {
        let mut special = BTreeMap::new();
        special.insert("bos_token".to_string(), "<s>".to_string());
        special.insert("eos_token".to_string(), "</s>".to_string());
        JinjaTemplate::new(src, special, "m", "t").unwrap()
    }

    #[test]
    fn jinja_trims_blocks_and_passes_special_tokens() {
        let t = jinja("{{ bos_token }}{% for m in messages %}\n  {% if m.role == 'user' %}\n<|{{ m.role }}|>{{ m.content.strip() }}{{ eos_token }}\n  {% else %}\nA:{{ m.content }}\n  {% endif %}\n{% endfor %}");
        let out = t
            .render(
                &[
                    Message::new("user", " hi "),
                    Message::new("assistant", "yo"),
                ],
                false,
            )
            .unwrap();
        assert_eq!(out, "<s><|user|>hi</s>\nA:yo\n");
    }

    #[test]
    fn jinja_raise_exception_names_model() {
        let t = jinja("{{ raise_exception('roles must alternate') }}");
        let e = t.render(&[], false).unwrap_err().to_string();
        assert!(
            e.contains("roles must alternate") && e.contains("of m"),
            "{e}"
        );
    }

    #[test]
    fn jinja_runaway_is_stopped() {
        let t = jinja(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        );
        let e = t.render(&[], false).unwrap_err().to_string();
        assert!(e.contains("too long") || e.contains("limit"), "{e}");
    }

    #[test]
    fn tojson_is_python_compatible() {
        let t = jinja("{{ messages[0] | tojson }}|{{ {'b': 1, 'a': [1.5, '<é>']} | tojson(indent=2, sort_keys=true) }}");
        let out = t
            .render(&[Message::new("user", "<a & 'b'>")], false)
            .unwrap();
        assert_eq!(
            out,
            "{\"role\": \"user\", \"content\": \"<a & 'b'>\"}|{\n  \"a\": [\n    1.5,\n    \"<é>\"\n  ],\n  \"b\": 1\n}"
        );
    }

    #[test]
    fn generation_tags_are_accepted() {
        let t = jinja("{% for m in messages %}{% generation %}{{ m.content }}{%- endgeneration %}{% endfor %}");
        assert_eq!(t.render(&[Message::new("user", "x")], false).unwrap(), "x");
    }

    #[test]
    fn overlapping_tag_markers_do_not_panic() {
        // Found by `make fuzz`: `{%}` once made the tag scanner slice backwards.
        assert_eq!(strip_generation_tags("a{%}b"), "a{%}b");
        assert_eq!(strip_generation_tags("{%}"), "{%}");
        assert_eq!(
            strip_generation_tags("a{% generation %}b{%- endgeneration -%}"),
            "ab"
        );
        let special = BTreeMap::new();
        assert!(JinjaTemplate::new("{%}\n{ eos_", special, "m", "t").is_err());
    }
}
