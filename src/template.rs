//! Chat templates: the tokenizer's Jinja template (rendered as transformers renders it) or
//! a named fastchat conversation template, and RewardBench's rules for turning a row into
//! the rendered prompt, chosen and rejected texts.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error as JinjaError, ErrorKind};

pub use crate::data::Message;
use crate::data::{Pair, Prompt};
use crate::pyjson::PyJson;

mod pycompat;

/// Errors of the templating stage.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("no chat template: the tokenizer at {tokenizer} has none and --chat_template was not given (try --chat_template tulu, or raw)")]
    Missing { tokenizer: String },
    #[error("unknown --chat_template `{name}`; known: {known}")]
    UnknownName { name: String, known: String },
    #[error("{file}: chat_template is not valid: {message}")]
    Invalid { file: String, message: String },
    #[error("chat template of {model} failed: {message}")]
    Render { model: String, message: String },
    #[error("the prompt must end with a user turn (an odd number of messages; roles go by position), but it has {len} messages")]
    PromptNotUserLast { len: usize },
    #[error("the prompt is an empty message list")]
    EmptyPrompt,
}

/// Steps a template may take (minijinja fuel), bounding runaway templates.
const TEMPLATE_FUEL: u64 = 50_000_000;
/// Largest rendered text accepted, in bytes.
const MAX_RENDERED_BYTES: usize = 64 << 20;

/// A chat template able to render a list of messages.
pub enum ChatTemplate {
    /// The tokenizer's own Jinja template.
    Jinja(Box<JinjaTemplate>),
    /// A fastchat conversation template, by name.
    Named(&'static Conv),
}

impl ChatTemplate {
    /// The reference's precedence: the tokenizer's template wins over `--chat_template`.
    pub fn select(
        tokenizer_template: Option<JinjaTemplate>,
        named: Option<&str>,
        tokenizer_path: &Path,
    ) -> Result<Self, TemplateError> {
        if let Some(t) = tokenizer_template {
            return Ok(Self::Jinja(Box::new(t)));
        }
        match named {
            Some(name) => Ok(Self::Named(Conv::by_name(name)?)),
            None => Err(TemplateError::Missing {
                tokenizer: tokenizer_path.display().to_string(),
            }),
        }
    }

    /// Name recorded in the summary: `tokenizer` for the Jinja template, else the fastchat name.
    pub fn label(&self) -> &str {
        match self {
            Self::Jinja(_) => "tokenizer",
            Self::Named(c) => c.name,
        }
    }

    /// True for the fastchat path (the reference then appends EOS on Llama-family tokenizers).
    pub fn is_named(&self) -> bool {
        matches!(self, Self::Named(_))
    }

    /// Renders `messages` without a generation prompt.
    pub fn render(&self, messages: &[Message]) -> Result<String, TemplateError> {
        match self {
            Self::Jinja(t) => t.render(messages, false),
            Self::Named(c) => Ok(c.render(messages)),
        }
    }

    /// Renders a preference row as the reference does: roles by position, the prompt alone,
    /// then the prompt with each answer.
    pub fn render_pair(&self, pair: &Pair) -> Result<RenderedPair, TemplateError> {
        let messages: Vec<Message> = match &pair.prompt {
            Prompt::Text(p) => vec![Message::new("user", p)],
            Prompt::Messages(list) => {
                if list.is_empty() {
                    return Err(TemplateError::EmptyPrompt);
                }
                if list.len() % 2 == 0 {
                    return Err(TemplateError::PromptNotUserLast { len: list.len() });
                }
                list.iter()
                    .enumerate()
                    .map(|(i, m)| {
                        Message::new(if i % 2 == 0 { "user" } else { "assistant" }, &m.content)
                    })
                    .collect()
            }
        };
        let with = |answer: &str| {
            let mut m = messages.clone();
            m.push(Message::new("assistant", answer));
            self.render(&m)
        };
        Ok(RenderedPair {
            prompt: self.render(&messages)?,
            text_chosen: with(&pair.chosen)?,
            text_rejected: with(&pair.rejected)?,
        })
    }
}

/// Rendered texts of one preference row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPair {
    pub prompt: String,
    pub text_chosen: String,
    pub text_rejected: String,
}

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

/// A calendar date (`YYYY-MM-DD`), for pinning `strftime_now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    /// Days since 1970-01-01.
    days: i64,
}

impl std::str::FromStr for Date {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_ymd(s)
            .map(|days| Self { days })
            .ok_or_else(|| format!("`{s}` is not a date of the form YYYY-MM-DD"))
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = civil(self.days);
        write!(f, "{y:04}-{m:02}-{d:02}")
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

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Days since 1970-01-01 of `YYYY-MM-DD`.
fn parse_ymd(s: &str) -> Option<i64> {
    let mut it = s.trim().split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// (year, month, day) of days since 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A small `strftime` over UTC for the codes chat templates use.
fn strftime_utc(fmt: &str, unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('-') if chars.clone().next() == Some('d') => {
                chars.next();
                out.push_str(&d.to_string());
            }
            Some('B') => out.push_str(MONTHS[(m - 1) as usize]),
            Some('b') => out.push_str(&MONTHS[(m - 1) as usize][..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('H') => out.push_str(&format!("{:02}", secs / 3600)),
            Some('M') => out.push_str(&format!("{:02}", secs / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", secs % 60)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// fastchat separator styles used by RewardBench's templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    NoColonSingle,
    AddNewLineSingle,
    AddColonSpaceSingle,
    AddColonTwo,
    ChatMl,
    Llama2,
    Robin,
}

/// A fastchat conversation template (fastchat 0.2.36 plus RewardBench's registrations).
#[derive(Debug)]
pub struct Conv {
    pub name: &'static str,
    pub system_template: &'static str,
    pub system_message: &'static str,
    pub roles: [&'static str; 2],
    pub style: Style,
    pub sep: &'static str,
    pub sep2: &'static str,
}

const VICUNA_SYSTEM: &str = "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";
const ROBIN_SYSTEM: &str = "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";

/// The named templates, as RewardBench registers and uses them (reference §6.3).
pub static CONVS: &[Conv] = &[
    Conv {
        name: "raw",
        system_template: "{system_message}",
        system_message: "",
        roles: ["", ""],
        style: Style::NoColonSingle,
        sep: "",
        sep2: "",
    },
    Conv {
        name: "tulu",
        system_template: "{system_message}",
        system_message: "",
        roles: ["<|user|>", "<|assistant|>"],
        style: Style::AddNewLineSingle,
        sep: "\n",
        sep2: "",
    },
    Conv {
        name: "zephyr",
        system_template: "<|system|>\n{system_message}",
        system_message: "",
        roles: ["<|user|>", "<|assistant|>"],
        style: Style::ChatMl,
        sep: "</s>",
        sep2: "",
    },
    Conv {
        name: "llama-2",
        system_template: "[INST] <<SYS>>\n{system_message}\n<</SYS>>\n\n",
        system_message: "",
        roles: ["[INST]", "[/INST]"],
        style: Style::Llama2,
        sep: " ",
        sep2: " </s><s>",
    },
    Conv {
        name: "mistral",
        system_template: "[INST] {system_message}\n",
        system_message: "",
        roles: ["[INST]", "[/INST]"],
        style: Style::Llama2,
        sep: " ",
        sep2: "</s>",
    },
    Conv {
        name: "oasst_pythia",
        system_template: "{system_message}",
        system_message: "",
        roles: ["<|prompter|>", "<|assistant|>"],
        style: Style::NoColonSingle,
        sep: "<|endoftext|>",
        sep2: "",
    },
    Conv {
        name: "openbmb",
        system_template: "{system_message}",
        system_message: "",
        roles: ["User: ", "Assistant: "],
        style: Style::NoColonSingle,
        sep: "\n\n",
        sep2: "",
    },
    Conv {
        name: "pku-align",
        system_template: "{system_message}",
        system_message: "BEGINNING OF CONVERSATION:",
        roles: ["USER", "ASSISTANT"],
        style: Style::AddColonSpaceSingle,
        sep: " ",
        sep2: "",
    },
    Conv {
        name: "Ziya",
        system_template: "{system_message}",
        system_message: "",
        roles: ["Human", "Assistant"],
        style: Style::AddColonSpaceSingle,
        sep: "\n\n",
        sep2: "",
    },
    Conv {
        name: "Robin",
        system_template: "{system_message}",
        system_message: ROBIN_SYSTEM,
        roles: ["###Human", "###Assistant"],
        style: Style::Robin,
        sep: "\n",
        sep2: "",
    },
    Conv {
        name: "Yi-34b-chat",
        system_template: "{system_message}",
        system_message: "",
        roles: ["<|im_start|>user", "<|im_start|>assistant"],
        style: Style::ChatMl,
        sep: "<|im_end|>",
        sep2: "",
    },
    // Not in fastchat 0.2.36 (RewardBench raises KeyError for it): the standard ChatML
    // layout without a default system prompt, fastchat's CHATML style; same bytes as Yi-34b-chat.
    Conv {
        name: "chatml",
        system_template: "{system_message}",
        system_message: "",
        roles: ["<|im_start|>user", "<|im_start|>assistant"],
        style: Style::ChatMl,
        sep: "<|im_end|>",
        sep2: "",
    },
    Conv {
        name: "vicuna_v1.1",
        system_template: "{system_message}",
        system_message: VICUNA_SYSTEM,
        roles: ["USER", "ASSISTANT"],
        style: Style::AddColonTwo,
        sep: " ",
        sep2: "</s>",
    },
];

impl Conv {
    /// Looks a template up by its fastchat name.
    pub fn by_name(name: &str) -> Result<&'static Conv, TemplateError> {
        CONVS
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| TemplateError::UnknownName {
                name: name.to_string(),
                known: CONVS.iter().map(|c| c.name).collect::<Vec<_>>().join(", "),
            })
    }

    /// fastchat's `get_prompt()`; roles go by position, an empty message is a bare role slot.
    pub fn render(&self, messages: &[Message]) -> String {
        let system = self
            .system_template
            .replace("{system_message}", self.system_message);
        let seps = [self.sep, self.sep2];
        let mut ret = match self.style {
            Style::NoColonSingle => system.clone(),
            Style::AddNewLineSingle | Style::ChatMl if system.is_empty() => String::new(),
            Style::AddNewLineSingle => format!("{system}{}", self.sep),
            Style::ChatMl => format!("{system}{}\n", self.sep),
            Style::AddColonSpaceSingle | Style::AddColonTwo | Style::Robin => {
                format!("{system}{}", self.sep)
            }
            Style::Llama2 if !self.system_message.is_empty() => system.clone(),
            Style::Llama2 => "[INST] ".to_string(),
        };
        for (i, m) in messages.iter().enumerate() {
            let role = self.roles[i % 2];
            let msg = m.content.as_str();
            let filled = !msg.is_empty();
            match self.style {
                Style::NoColonSingle if filled => ret += &format!("{role}{msg}{}", self.sep),
                Style::NoColonSingle => ret += role,
                Style::AddNewLineSingle if filled => ret += &format!("{role}\n{msg}{}", self.sep),
                Style::AddNewLineSingle => ret += &format!("{role}\n"),
                Style::AddColonSpaceSingle if filled => {
                    ret += &format!("{role}: {msg}{}", self.sep)
                }
                Style::AddColonSpaceSingle => ret += &format!("{role}: "),
                Style::AddColonTwo if filled => ret += &format!("{role}: {msg}{}", seps[i % 2]),
                Style::AddColonTwo => ret += &format!("{role}:"),
                Style::ChatMl if filled => ret += &format!("{role}\n{msg}{}\n", self.sep),
                Style::ChatMl => ret += &format!("{role}\n"),
                Style::Robin if filled => ret += &format!("{role}:\n{msg}{}", self.sep),
                Style::Robin => ret += &format!("{role}:\n"),
                Style::Llama2 if filled && i == 0 => ret += &format!("{msg} "),
                Style::Llama2 if filled => ret += &format!("{role} {msg}{}", seps[i % 2]),
                Style::Llama2 => ret += role,
            }
        }
        ret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(name: &str) -> (String, String) {
        let c = Conv::by_name(name).unwrap();
        let p = c.render(&[Message::new("user", "P")]);
        let full = c.render(&[Message::new("user", "P"), Message::new("assistant", "R")]);
        (p, full)
    }

    #[test]
    fn named_templates_match_reference_table() {
        // Reference §6.3, rendered by fastchat 0.2.36.
        let cases: &[(&str, &str, &str)] = &[
            ("raw", "P", "PR"),
            ("tulu", "<|user|>\nP\n", "<|user|>\nP\n<|assistant|>\nR\n"),
            (
                "zephyr",
                "<|system|>\n</s>\n<|user|>\nP</s>\n",
                "<|system|>\n</s>\n<|user|>\nP</s>\n<|assistant|>\nR</s>\n",
            ),
            ("llama-2", "[INST] P ", "[INST] P [/INST] R </s><s>"),
            ("mistral", "[INST] P ", "[INST] P [/INST] R</s>"),
            (
                "oasst_pythia",
                "<|prompter|>P<|endoftext|>",
                "<|prompter|>P<|endoftext|><|assistant|>R<|endoftext|>",
            ),
            (
                "pku-align",
                "BEGINNING OF CONVERSATION: USER: P ",
                "BEGINNING OF CONVERSATION: USER: P ASSISTANT: R ",
            ),
            ("openbmb", "User: P\n\n", "User: P\n\nAssistant: R\n\n"),
            (
                "Ziya",
                "\n\nHuman: P\n\n",
                "\n\nHuman: P\n\nAssistant: R\n\n",
            ),
            (
                "Yi-34b-chat",
                "<|im_start|>user\nP<|im_end|>\n",
                "<|im_start|>user\nP<|im_end|>\n<|im_start|>assistant\nR<|im_end|>\n",
            ),
            (
                "chatml",
                "<|im_start|>user\nP<|im_end|>\n",
                "<|im_start|>user\nP<|im_end|>\n<|im_start|>assistant\nR<|im_end|>\n",
            ),
        ];
        for (name, p, full) in cases {
            assert_eq!(
                single(name),
                (p.to_string(), full.to_string()),
                "template {name}"
            );
        }
        let (p, full) = single("vicuna_v1.1");
        assert_eq!(p, format!("{VICUNA_SYSTEM} USER: P "));
        assert_eq!(full, format!("{VICUNA_SYSTEM} USER: P ASSISTANT: R</s>"));
        let (p, full) = single("Robin");
        assert_eq!(p, format!("{ROBIN_SYSTEM}\n###Human:\nP\n"));
        assert_eq!(
            full,
            format!("{ROBIN_SYSTEM}\n###Human:\nP\n###Assistant:\nR\n")
        );
    }

    #[test]
    fn named_multi_turn_and_empty_slot() {
        let c = Conv::by_name("llama-2").unwrap();
        let msgs = [
            Message::new("user", "P1"),
            Message::new("assistant", "A1"),
            Message::new("user", "P2"),
            Message::new("assistant", "R"),
        ];
        assert_eq!(
            c.render(&msgs),
            "[INST] P1 [/INST] A1 </s><s>[INST] P2 [/INST] R </s><s>"
        );
        let tulu = Conv::by_name("tulu").unwrap();
        assert_eq!(
            tulu.render(&[Message::new("user", "P"), Message::new("assistant", "")]),
            "<|user|>\nP\n<|assistant|>\n"
        );
    }

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

    #[test]
    fn strftime_pinned() {
        let days = parse_ymd("2025-07-10").unwrap();
        assert_eq!(
            strftime_utc("%d %B %Y, %a %b %-d", days * 86_400),
            "10 July 2025, Thu Jul 10"
        );
    }
}
