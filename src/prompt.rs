//! RewardBench's row rules: a preference row's roles by position, then the prompt alone and
//! the prompt with each answer, rendered with the chat template.

use crate::data::{Message, Pair, Prompt};
pub use crate::template::RenderedPair;
use crate::template::{ChatTemplate, TemplateError};

/// Renders a preference row as the reference does: roles by position, the prompt alone,
/// then the prompt with each answer.
pub fn render_pair(template: &ChatTemplate, pair: &Pair) -> Result<RenderedPair, TemplateError> {
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
        template.render(&m)
    };
    Ok(RenderedPair {
        prompt: template.render(&messages)?,
        text_chosen: with(&pair.chosen)?,
        text_rejected: with(&pair.rejected)?,
    })
}

impl ChatTemplate {
    /// Renders a preference row as the reference does (see [`render_pair`]). Defined here, not
    /// in `template`, so that the template engine does not depend on the row types.
    pub fn render_pair(&self, pair: &Pair) -> Result<RenderedPair, TemplateError> {
        render_pair(self, pair)
    }
}
