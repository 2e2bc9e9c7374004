//! RewardBench's row rules: a sample's roles by position, then the prompt alone and the
//! prompt with each completion, rendered with the chat template; an instruction row's
//! conversation is rendered whole, as given.

use crate::data::{Message, Prompt, Sample};
use crate::template::{ChatTemplate, TemplateError};

/// Rendered texts of one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The rendered prompt (instruction data: the first message's content, as the reference
    /// records it).
    pub prompt: String,
    /// The prompt with each chosen completion (instruction data: the whole conversation).
    pub chosen: Vec<String>,
    /// The prompt with each rejected completion.
    pub rejected: Vec<String>,
}

/// The earlier name of [`Rendered`].
pub type RenderedPair = Rendered;

impl Rendered {
    /// Every text to score: the chosen ones, then the rejected ones.
    pub fn texts(&self) -> impl Iterator<Item = &String> {
        self.chosen.iter().chain(&self.rejected)
    }
}

/// Renders a sample as the reference does. A preference sample: roles by position, the
/// prompt alone, then the prompt with each completion. A conversation (instruction data):
/// the messages as given, whole.
pub fn render(template: &ChatTemplate, sample: &Sample) -> Result<Rendered, TemplateError> {
    let messages: Vec<Message> = match &sample.prompt {
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
        Prompt::Conversation(list) => {
            return Ok(Rendered {
                prompt: list.first().map(|m| m.content.clone()).unwrap_or_default(),
                chosen: vec![template.render(list)?],
                rejected: Vec::new(),
            })
        }
    };
    let with = |answer: &String| {
        let mut m = messages.clone();
        m.push(Message::new("assistant", answer));
        template.render(&m)
    };
    Ok(Rendered {
        prompt: template.render(&messages)?,
        chosen: sample.chosen.iter().map(with).collect::<Result<_, _>>()?,
        rejected: sample.rejected.iter().map(with).collect::<Result<_, _>>()?,
    })
}

impl ChatTemplate {
    /// Renders a sample as the reference does (see [`render`]). Defined here, not in
    /// `template`, so that the template engine does not depend on the row types.
    pub fn render_pair(&self, sample: &Sample) -> Result<Rendered, TemplateError> {
        render(self, sample)
    }
}
