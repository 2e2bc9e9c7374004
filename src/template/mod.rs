//! Chat templates: the tokenizer's Jinja template (rendered as transformers renders it) or
//! a named fastchat conversation template. RewardBench's rules for turning a row into the
//! rendered prompt, chosen and rejected texts are in the `prompt` module. Also the one HTML
//! page renderer ([`page`], the `rewardbench report` page), so minijinja stays in this module.

use std::path::Path;

pub use crate::data::Message;

mod clock;
mod fastchat;
mod jinja;
mod page;
mod pycompat;

pub use clock::Date;
pub use fastchat::{Conv, Style, CONVS};
pub use jinja::{JinjaOptions, JinjaTemplate};
pub use page::page;

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
    #[error("page template {name}: {message}")]
    Page { name: String, message: String },
}

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
}
