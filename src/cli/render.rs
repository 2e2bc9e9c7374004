//! `rewardbench render`: the exact text a chat template produces, for debugging what a model reads.

use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgAction, Args};

use rewardbench::template::{ChatTemplate, Date, JinjaOptions, JinjaTemplate, Message};
use rewardbench::tokenize::{EncodeOptions, Encoder, TokenizerConfig};

/// Flags of `rewardbench render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// JSON file holding a list of {"role", "content"} messages, rendered as given.
    #[arg(long)]
    pub messages: PathBuf,
    /// tokenizer_config.json whose chat template (and special tokens) to use, or the folder holding it.
    #[arg(long = "tokenizer_config", alias = "tokenizer-config")]
    pub tokenizer_config: Option<PathBuf>,
    /// A named fastchat template instead (used when no tokenizer config is given).
    #[arg(long = "chat_template", alias = "chat-template")]
    pub chat_template: Option<String>,
    /// Append the generation prompt (Jinja templates only).
    #[arg(long = "add_generation_prompt", alias = "add-generation-prompt", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = super::parse_bool, action = ArgAction::Set)]
    pub add_generation_prompt: bool,
    /// Also print the token ids (needs --tokenizer).
    #[arg(long = "show_tokens", alias = "show-tokens", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = super::parse_bool, action = ArgAction::Set)]
    pub show_tokens: bool,
    /// Tokenizer folder (tokenizer.json) for --show_tokens.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Date that `strftime_now` reports, YYYY-MM-DD (default: today).
    #[arg(long)]
    pub date: Option<Date>,
}

/// Renders and prints; nothing is added to the rendered text.
pub fn run(args: &RenderArgs) -> anyhow::Result<()> {
    let path = args.messages.display().to_string();
    let text =
        std::fs::read_to_string(&args.messages).with_context(|| format!("reading {path}"))?;
    let list: Vec<serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{path}: expected a JSON list of messages"))?;
    for (i, m) in list.iter().enumerate() {
        for k in ["role", "content"] {
            if m.get(k).is_none() {
                anyhow::bail!("{path}: message {i}: `{k}` is missing");
            }
        }
    }
    let (rendered, cfg_dir) = match &args.tokenizer_config {
        Some(given) => {
            // A model or tokenizer folder is read as its tokenizer_config.json.
            let cfg_path = &if given.is_dir() {
                let file = given.join("tokenizer_config.json");
                if !file.is_file() {
                    anyhow::bail!(
                        "{} has no tokenizer_config.json: --tokenizer_config takes that file or the folder holding it",
                        given.display()
                    );
                }
                file
            } else {
                given.clone()
            };
            let dir = cfg_path.parent().map(PathBuf::from).unwrap_or_default();
            let cfg = TokenizerConfig::load_file(cfg_path)?;
            let src = cfg
                .chat_template
                .clone()
                .with_context(|| format!("{} has no chat_template", cfg_path.display()))?;
            let opts = JinjaOptions {
                date: args.date,
                ..JinjaOptions::default()
            };
            let t = JinjaTemplate::with_options(
                &src,
                cfg.special.clone(),
                &cfg_path.display().to_string(),
                &cfg.chat_template_file,
                opts,
            )?
            .with_additional_special_tokens(&cfg.additional_special_tokens);
            // Messages go to the template as given (extra fields such as tool_calls included).
            let messages = serde_json::Value::Array(list);
            let out = t.render_json(
                &messages,
                args.add_generation_prompt,
                &serde_json::Map::new(),
            )?;
            (out, Some(dir))
        }
        None => {
            let name = args
                .chat_template
                .as_deref()
                .context("give --tokenizer_config PATH or --chat_template NAME")?;
            // fastchat templates take roles by position, as RewardBench builds them.
            let messages = list
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let content = m["content"].as_str().with_context(|| {
                        format!("{path}: message {i}: `content` is not a string")
                    })?;
                    Ok(Message::new(
                        if i % 2 == 0 { "user" } else { "assistant" },
                        content,
                    ))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
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
        // The reference appends EOS on the fastchat path for Llama-family tokenizers.
        let opts = EncodeOptions {
            append_eos: args.tokenizer_config.is_none() && Encoder::is_llama_family(&cfg),
            ..EncodeOptions::default()
        };
        let enc = Encoder::load(&dir, &cfg, opts)?.encode(&rendered, "the rendered text")?;
        println!();
        println!("{}", serde_json::to_string(&enc.ids)?);
    }
    Ok(())
}
