//! `rewardbench render`: the exact text a chat template produces, for debugging what a model reads.

use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgAction, Args};

use crate::template::{ChatTemplate, JinjaTemplate, Message};
use crate::tokenize::{EncodeOptions, Encoder, TokenizerConfig};

/// Flags of `rewardbench render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// JSON file holding a list of {"role", "content"} messages, rendered as given.
    #[arg(long)]
    pub messages: PathBuf,
    /// tokenizer_config.json whose chat template (and special tokens) to use.
    #[arg(long = "tokenizer_config", alias = "tokenizer-config")]
    pub tokenizer_config: Option<PathBuf>,
    /// A named fastchat template instead (used when no tokenizer config is given).
    #[arg(long = "chat_template", alias = "chat-template")]
    pub chat_template: Option<String>,
    /// Append the generation prompt (Jinja templates only).
    #[arg(long = "add_generation_prompt", alias = "add-generation-prompt", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = crate::cli::parse_bool, action = ArgAction::Set)]
    pub add_generation_prompt: bool,
    /// Also print the token ids (needs --tokenizer).
    #[arg(long = "show_tokens", alias = "show-tokens", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = crate::cli::parse_bool, action = ArgAction::Set)]
    pub show_tokens: bool,
    /// Tokenizer folder (tokenizer.json) for --show_tokens.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
}

/// Renders and prints; nothing is added to the rendered text.
pub fn run(args: &RenderArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.messages)
        .with_context(|| format!("reading {}", args.messages.display()))?;
    let messages: Vec<Message> = serde_json::from_str::<Vec<serde_json::Value>>(&text)
        .with_context(|| {
            format!(
                "{}: expected a JSON list of messages",
                args.messages.display()
            )
        })?
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let field = |k: &str| {
                m.get(k)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .with_context(|| {
                        format!(
                            "{}: message {i}: `{k}` is missing or not a string",
                            args.messages.display()
                        )
                    })
            };
            Ok(Message {
                role: field("role")?,
                content: field("content")?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let (rendered, cfg_dir) = match &args.tokenizer_config {
        Some(path) => {
            let dir = path.parent().map(PathBuf::from).unwrap_or_default();
            let cfg = TokenizerConfig::load_file(path)?;
            let src = cfg
                .chat_template
                .clone()
                .with_context(|| format!("{} has no chat_template", path.display()))?;
            let t = JinjaTemplate::new(
                &src,
                cfg.special.clone(),
                &path.display().to_string(),
                &cfg.chat_template_file,
            )?;
            (t.render(&messages, args.add_generation_prompt)?, Some(dir))
        }
        None => {
            let name = args
                .chat_template
                .as_deref()
                .context("give --tokenizer_config PATH or --chat_template NAME")?;
            let t = ChatTemplate::select(None, Some(name), std::path::Path::new("-"))?;
            (t.render(&messages)?, None)
        }
    };
    print!("{rendered}");
    if args.show_tokens {
        let dir = args
            .tokenizer
            .clone()
            .or(cfg_dir)
            .context("--show_tokens needs --tokenizer DIR")?;
        let cfg = TokenizerConfig::load(&dir)?;
        let enc = Encoder::load(&dir, &cfg, EncodeOptions::default())?
            .encode(&rendered, "the rendered text")?;
        println!();
        println!("{}", serde_json::to_string(&enc.ids)?);
    }
    Ok(())
}
