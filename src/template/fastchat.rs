//! fastchat conversation templates: the separator styles and the named templates
//! RewardBench registers, rendered as fastchat's `get_prompt()` does.

use super::TemplateError;
use crate::data::Message;

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
}
