//! Command-line flags: RewardBench's names and defaults (`--flag_name` and `--flag-name`,
//! booleans as a bare `--flag` or `--flag true|false`), plus this evaluator's own. Defaults
//! come from [`RunConfig::default`].

pub mod compare;
pub mod gen;
pub mod head;
pub mod leaderboard;
pub mod merge;
pub mod pairwise;
pub mod publish;
pub mod render;
pub mod report;
pub mod rescore;
pub mod resolve;
pub mod sweep;

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use rewardbench::config::{RefFree, RunConfig};

/// The one source of defaults.
fn defaults() -> RunConfig {
    RunConfig::default()
}

/// HfArgumentParser's boolean spellings.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "t" | "y" | "1" => Ok(true),
        "false" | "no" | "f" | "n" | "0" => Ok(false),
        _ => Err(format!("`{s}` is not a boolean (true/false, yes/no, 1/0)")),
    }
}

/// Execution provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
    Tensorrt,
    Auto,
}

impl From<DeviceArg> for rewardbench::backend::Device {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Cpu => Self::Cpu,
            DeviceArg::Cuda => Self::Cuda,
            DeviceArg::Tensorrt => Self::TensorRt,
            DeviceArg::Auto => Self::Auto,
        }
    }
}

/// How texts are grouped into model calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BatchingArg {
    /// Unique texts sorted by length, right-padded: fast, and scores do not depend on the batch.
    Sorted,
    /// RewardBench's exact batches: dataset order, left padding, chosen and rejected apart.
    Reference,
}

/// Reference-free DPO reduction (`--ref_free_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RefFreeArg {
    /// Sum over the response tokens.
    Sum,
    /// Sum divided by the number of response tokens.
    Avg,
    /// Minus the L2 norm of the per-token log-probs.
    Norm,
}

impl From<RefFreeArg> for RefFree {
    fn from(r: RefFreeArg) -> Self {
        match r {
            RefFreeArg::Sum => Self::Sum,
            RefFreeArg::Avg => Self::Avg,
            RefFreeArg::Norm => Self::Norm,
        }
    }
}

/// Score a reward model on preference data with ONNX Runtime (RewardBench's evaluation, in Rust).
#[derive(Debug, Parser)]
#[command(
    name = "rewardbench",
    version,
    about,
    max_term_width = 100,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub eval: EvalArgs,
}

/// The flags of an evaluation (plain `rewardbench` and `rewardbench v2`).
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Model folder: model.onnx (or onnx/model.onnx), tokenizer.json, tokenizer_config.json, config.json.
    #[arg(help_heading = "Model", long)]
    pub model: Option<PathBuf>,
    /// Tokenizer folder (default: the model folder).
    #[arg(help_heading = "Model", long)]
    pub tokenizer: Option<PathBuf>,
    /// Dataset: a hub id (org/name[@revision]), or a local .json / .jsonl / .parquet / .csv file or folder [default: allenai/reward-bench; v2: allenai/reward-bench-2].
    #[arg(help_heading = "Data and templates", long)]
    pub dataset: Option<String>,
    /// Read --dataset as a local JSON / JSONL file (local files are read either way).
    #[arg(help_heading = "Data and templates", long = "load_json", alias = "load-json", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub load_json: bool,
    /// Dataset split (hub datasets and local folders; default: all splits, concatenated; the core set: filtered; v2: test).
    #[arg(help_heading = "Data and templates", long)]
    pub split: Option<String>,
    /// fastchat conversation template, used only when the tokenizer has no chat template.
    #[arg(
        help_heading = "Data and templates",
        long = "chat_template",
        alias = "chat-template"
    )]
    pub chat_template: Option<String>,
    /// Date that templates' `strftime_now` reports, YYYY-MM-DD (default: today), for reproducible runs.
    #[arg(help_heading = "Data and templates", long)]
    pub date: Option<rewardbench::template::Date>,
    /// Rows per model call (each call holds at most this many texts).
    #[arg(help_heading = "Batching and device", long = "batch_size", alias = "batch-size", default_value_t = defaults().batch.batch_size as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Output folder [default: results/{benchmark}/: eval-set, pref-sets, rb2 or the dataset's name; -debug with --debug].
    #[arg(
        help_heading = "Output, resume and shards",
        long = "output_dir",
        alias = "output-dir"
    )]
    pub output_dir: Option<PathBuf>,
    /// Token limit: v1 applies it only with --force_truncation (as RewardBench); v2 truncates every text to it, as run_v2 [default: 512; v2: 2048].
    #[arg(help_heading = "Data and templates", long = "max_length", alias = "max-length", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_length: Option<u32>,
    /// Truncate texts longer than --max_length, keeping their last tokens.
    #[arg(help_heading = "Data and templates", long = "force_truncation", alias = "force-truncation", num_args = 0..=1, default_missing_value = "true", default_value_t = defaults().tokenize.force_truncation, value_parser = parse_bool, action = ArgAction::Set)]
    pub force_truncation: bool,
    /// Score only the first 10 rows.
    #[arg(help_heading = "Data and templates", long, num_args = 0..=1, default_missing_value = "true", default_value_t = defaults().data.debug, value_parser = parse_bool, action = ArgAction::Set)]
    pub debug: bool,
    /// Also write {name}_all.jsonl with the chosen/rejected score of every row.
    #[arg(help_heading = "Output, resume and shards", long = "save_all", alias = "save-all", num_args = 0..=1, default_missing_value = "true", default_value_t = defaults().output.save_all, value_parser = parse_bool, action = ArgAction::Set)]
    pub save_all: bool,
    /// Reference model folder for DPO (implicit reward) evaluation; --model is then the policy.
    #[arg(help_heading = "Model", long = "ref_model", alias = "ref-model")]
    pub ref_model: Option<String>,
    /// Reference-free DPO scoring of --model (without --ref_model): sum, avg or norm of the answer's log-probs.
    #[arg(
        help_heading = "Model",
        long = "ref_free_type",
        alias = "ref-free-type",
        value_enum
    )]
    pub ref_free_type: Option<RefFreeArg>,
    /// Score --model as a pairwise preference model (export/export_pairwise.py; default: the kind its pairwise.json names).
    #[arg(help_heading = "Model", long, value_enum)]
    pub pairwise: Option<pairwise::PairwiseArg>,

    // --- RewardBench flags with no effect on an ONNX export (precision and attention are fixed at export).
    /// Accepted for compatibility; no effect (an ONNX export has its precision fixed).
    #[arg(help_heading = "RewardBench flags accepted with no effect (a note says why)", long = "not_quantized", alias = "not-quantized", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub not_quantized: bool,
    /// Accepted for compatibility; no effect (an ONNX export has its precision fixed).
    #[arg(
        help_heading = "RewardBench flags accepted with no effect (a note says why)",
        long = "torch_dtype",
        alias = "torch-dtype"
    )]
    pub torch_dtype: Option<String>,
    /// Accepted for compatibility; no effect (attention is part of the exported graph).
    #[arg(
        help_heading = "RewardBench flags accepted with no effect (a note says why)",
        long = "attn_implementation",
        alias = "attn-implementation"
    )]
    pub attn_implementation: Option<String>,
    /// Accepted for compatibility; no effect (no Python code is run).
    #[arg(help_heading = "RewardBench flags accepted with no effect (a note says why)", long = "trust_remote_code", alias = "trust-remote-code", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub trust_remote_code: bool,
    /// Model and tokenizer revision on the hub (branch, tag or commit).
    #[arg(help_heading = "Model", long)]
    pub revision: Option<String>,
    /// Evaluate the prior preference sets (allenai/pref-test-sets) instead of --dataset.
    #[arg(help_heading = "Data and templates", long = "pref_sets", alias = "pref-sets", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub pref_sets: bool,
    /// Rows with `messages` are instruction data (scored, not ranked) even if they have chosen/rejected.
    #[arg(help_heading = "Data and templates", long = "prioritize_scoring", alias = "prioritize-scoring", num_args = 0..=1, default_missing_value = "true", default_value_t = defaults().data.prioritize_scoring, value_parser = parse_bool, action = ArgAction::Set)]
    pub prioritize_scoring: bool,

    // --- Publishing to the hub (after the results are written), then RewardBench's logging
    // flags that are accepted with a note.
    /// Upload the summary and per-example outputs as a hub dataset (see --hub_results_repo), with HF_TOKEN.
    #[arg(help_heading = "Publishing to the hub", long = "push_results_to_hub", alias = "push-results-to-hub", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub push_results_to_hub: bool,
    /// Add the scores to the model repo's card (model-index results; --model must be a hub id), with HF_TOKEN.
    #[arg(help_heading = "Publishing to the hub", long = "upload_model_metadata_to_hf", alias = "upload-model-metadata-to-hf", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub upload_model_metadata_to_hf: bool,
    #[command(flatten, next_help_heading = "Publishing to the hub")]
    pub hub: publish::HubTarget,
    /// Accepted; no effect: results are always written to --output_dir.
    #[arg(help_heading = "RewardBench flags accepted with no effect (a note says why)", long = "do_not_save", alias = "do-not-save", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub do_not_save: bool,
    /// Accepted; no effect: W&B is not read (pass --model and --revision).
    #[arg(
        help_heading = "RewardBench flags accepted with no effect (a note says why)",
        long = "wandb_run",
        alias = "wandb-run"
    )]
    pub wandb_run: Option<String>,
    /// Accepted; no effect: no /output/metrics.json is written.
    #[arg(help_heading = "RewardBench flags accepted with no effect (a note says why)", long = "disable_beaker_save", alias = "disable-beaker-save", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub disable_beaker_save: bool,
    /// Accepted; no effect (run_v2's 8-bit loading: an ONNX export's precision is fixed).
    #[arg(help_heading = "RewardBench flags accepted with no effect (a note says why)", long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub quantized: bool,

    // --- This evaluator's own flags.
    /// How texts are grouped into model calls.
    #[arg(
        help_heading = "Batching and device",
        long,
        value_enum,
        default_value = "sorted"
    )]
    pub batching: BatchingArg,
    /// Cap on padded tokens per model call (rows x longest row; sorted batching). 0: no cap [default: 4096 on CPU, 16384 with --device cuda/tensorrt].
    #[arg(
        help_heading = "Batching and device",
        long = "max_batch_tokens",
        alias = "max-batch-tokens"
    )]
    pub max_batch_tokens: Option<usize>,
    /// Cap on an eager-attention graph's score buffers per call, in MiB (heads x rows x longest row squared x 32 bytes; heads from config.json; sorted batching). 0: no cap [default: 1024 on CPU, 4096 with --device cuda/tensorrt].
    #[arg(
        help_heading = "Batching and device",
        long = "max_attention_mb",
        alias = "max-attention-mb"
    )]
    pub max_attention_mb: Option<usize>,
    /// Packed exports (--attention gqa): compute a prompt once for its answers (sorted batching).
    #[arg(help_heading = "Batching and device", long = "share_prefixes", alias = "share-prefixes", num_args = 0..=1, default_missing_value = "true", default_value_t = defaults().batch.share_prefixes, value_parser = parse_bool, action = ArgAction::Set)]
    pub share_prefixes: bool,
    /// Where the model runs: cpu, cuda, tensorrt, or auto (CUDA if available, else CPU, and says so).
    #[arg(
        help_heading = "Batching and device",
        long,
        value_enum,
        default_value = "cpu"
    )]
    pub device: DeviceArg,
    /// GPU index for cuda / tensorrt.
    #[arg(help_heading = "Batching and device", long = "device_id", alias = "device-id", default_value_t = defaults().device.device_id)]
    pub device_id: i32,
    /// TensorRT: build fp16 engines.
    #[arg(help_heading = "Batching and device", long, num_args = 0..=1, default_missing_value = "true", default_value_t = defaults().device.fp16, value_parser = parse_bool, action = ArgAction::Set)]
    pub fp16: bool,
    /// TensorRT: engine and timing cache folder, kept between runs (default: ~/.cache/rewardbench/tensorrt).
    #[arg(
        help_heading = "Batching and device",
        long = "trt_cache",
        alias = "trt-cache"
    )]
    pub trt_cache: Option<PathBuf>,
    /// ONNX Runtime intra-op threads (default: the cores available to this process).
    #[arg(help_heading = "Batching and device", long, default_value_t = defaults().device.threads)]
    pub threads: usize,
    /// Path of libonnxruntime.so (default: ORT_DYLIB_PATH, then .ort/lib, then a pip-installed onnxruntime).
    #[arg(
        help_heading = "Batching and device",
        long = "ort_lib",
        alias = "ort-lib"
    )]
    pub ort_lib: Option<PathBuf>,
    /// Keep a score store ({output_dir}/{name}.store.jsonl; with reference batching or DPO the call-keyed {name}.cache.jsonl): a re-run after a crash, kill or
    /// Ctrl-C computes only what is missing.
    #[arg(help_heading = "Output, resume and shards", long, num_args = 0..=1, default_missing_value = "true", default_value_t = defaults().output.cache, value_parser = parse_bool, action = ArgAction::Set)]
    pub cache: bool,
    /// Discard an existing resume cache and start afresh.
    #[arg(help_heading = "Output, resume and shards", long, num_args = 0..=1, default_missing_value = "true", default_value_t = defaults().output.overwrite, value_parser = parse_bool, action = ArgAction::Set)]
    pub overwrite: bool,
    /// No progress lines on stderr.
    #[arg(help_heading = "Output, resume and shards", long, short, num_args = 0..=1, default_missing_value = "true", default_value_t = defaults().output.quiet, value_parser = parse_bool, action = ArgAction::Set)]
    pub quiet: bool,
    /// Print the plan (texts, tokens, calls, padding, what the store holds) and a time estimate from a few measured calls; score nothing, write no file.
    #[arg(help_heading = "Output, resume and shards", long = "dry_run", alias = "dry-run", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub dry_run: bool,
    /// Score only shard I of N of the rows (0 <= I < N): its store and manifest go to
    /// {output_dir}/shards/; `rewardbench merge {output_dir}` writes the results once all N are done.
    #[arg(help_heading = "Output, resume and shards", long)]
    pub shard: Option<rewardbench::shard::Shard>,
    #[command(
        flatten,
        next_help_heading = "Reward head (per-token exports, custom heads)"
    )]
    pub head: head::HeadArgs,
    /// A model registry (TOML, the layout of the built-in models.toml): its entries replace the built-in ones of the same id.
    #[arg(help_heading = "Model", long = "model_config", alias = "model-config")]
    pub model_config: Option<PathBuf>,
}

/// `--score_dtype`: the format scores are rounded to before they are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScoreDtypeArg {
    F32,
    Bf16,
    F16,
}

/// `--truncation_side`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TruncationSideArg {
    /// The tokenizer's own (`truncation_side` in tokenizer_config.json, else right), as run_v2.
    Tokenizer,
    Left,
    Right,
}

/// `rewardbench v2`: RewardBench 2 as scripts/run_v2.py scores it.
#[derive(Debug, clap::Args)]
pub struct V2Args {
    #[command(flatten)]
    pub eval: EvalArgs,
    /// Round every score to this format before comparing (f16 / bf16 reproduce the tie rate of upstream's GPU runs).
    #[arg(
        help_heading = "RewardBench 2",
        long = "score_dtype",
        alias = "score-dtype",
        value_enum,
        default_value = "f32"
    )]
    pub score_dtype: ScoreDtypeArg,
    /// Which end of a text longer than --max_length is cut.
    #[arg(
        help_heading = "RewardBench 2",
        long = "truncation_side",
        alias = "truncation-side",
        value_enum,
        default_value = "tokenizer"
    )]
    pub truncation_side: TruncationSideArg,
}

/// Subcommands beside the evaluation itself.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print exactly the text a chat template renders for a list of messages.
    Render(render::RenderArgs),
    /// Build a leaderboard (CSV and Markdown) from summary JSON files of many models.
    Leaderboard(leaderboard::LeaderboardArgs),
    /// Write one self-contained HTML page (tables, charts) from the results of many runs.
    Report(report::ReportArgs),
    /// Recompute subset scores, Score and CIs from per-item score files (upstream's eval-set-scores/, v1 or v2) and say how they differ from the file's own.
    Rescore(rescore::RescoreArgs),
    /// Write a sharded run's results from its finished shards (`--shard i/n`), as the single run would.
    Merge(merge::MergeArgs),
    /// Paired tests of two runs on the same rows (McNemar, permutation; Holm and Šidák across subsets).
    Compare(compare::CompareArgs),
    /// Generative judges (LLM-as-judge) over an OpenAI-compatible or Anthropic API (as rewardbench-gen).
    Gen(Box<gen::GenArgs>),
    /// Many models x benchmarks x shards as one Slurm job array: submit, --status, --resubmit_failed, --collect.
    Sweep(sweep::SweepArgs),
    /// RewardBench 2: best-of-N with 1/k tie credit, the Ties composite, the six-way Score (as scripts/run_v2.py).
    V2(Box<V2Args>),
    /// Publish earlier results to the hub: a results folder or one run's summary, as a dataset (and model cards).
    Publish(publish::PublishArgs),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag of RewardBench's `rewardbench` CLI (`Args`), scripts/run_rm.py,
    /// scripts/run_dpo.py and scripts/run_v2.py, with a value where it takes one.
    /// A flag and its sample value (`None`: a boolean).
    pub(crate) type Flag = (&'static str, Option<&'static str>);

    pub(crate) const UPSTREAM_FLAGS: &[(&str, &[Flag])] = &[
        (
            "rewardbench",
            &[
                ("--dataset", Some("d.jsonl")),
                ("--split", Some("test")),
                ("--model", Some("m")),
                ("--revision", Some("main")),
                ("--ref_model", Some("r")),
                ("--tokenizer", Some("t")),
                ("--chat_template", Some("tulu")),
                ("--not_quantized", None),
                ("--prioritize_scoring", None),
                ("--push_results_to_hub", None),
                ("--upload_model_metadata_to_hf", None),
                ("--hf_entity", Some("me")),
                ("--hf_name", Some("results")),
                ("--wandb_run", Some("org/project/run")),
                ("--batch_size", Some("8")),
                ("--max_length", Some("512")),
                ("--torch_dtype", Some("bfloat16")),
                ("--attn_implementation", Some("sdpa")),
                ("--load_json", None),
                ("--trust_remote_code", None),
                ("--debug", None),
                ("--output_dir", Some("results/")),
                ("--save_all", None),
                ("--force_truncation", None),
            ],
        ),
        (
            "run_rm.py",
            &[
                ("--model", Some("m")),
                ("--tokenizer", Some("t")),
                ("--chat_template", Some("tulu")),
                ("--trust_remote_code", None),
                ("--do_not_save", None),
                ("--batch_size", Some("64")),
                ("--max_length", Some("2048")),
                ("--pref_sets", None),
                ("--debug", None),
                ("--disable_beaker_save", None),
                ("--not_quantized", None),
                ("--torch_dtype", Some("float16")),
                ("--attn_implementation", Some("eager")),
            ],
        ),
        (
            "run_dpo.py",
            &[
                ("--model", Some("m")),
                ("--ref_model", Some("r")),
                ("--ref_free_type", Some("avg")),
                ("--tokenizer", Some("t")),
                ("--chat_template", Some("tulu")),
                ("--do_not_save", None),
                ("--pref_sets", None),
                ("--trust_remote_code", None),
                ("--debug", None),
                ("--disable_beaker_save", None),
                ("--not_quantized", None),
                ("--batch_size", Some("6")),
                ("--torch_dtype", Some("float16")),
            ],
        ),
        (
            "run_v2.py",
            &[
                ("--model", Some("m")),
                ("--revision", Some("v1")),
                ("--dataset", Some("allenai/reward-bench-2")),
                ("--tokenizer", Some("t")),
                ("--chat_template", Some("tulu")),
                ("--trust_remote_code", None),
                ("--do_not_save", None),
                ("--batch_size", Some("64")),
                ("--max_length", Some("2048")),
                ("--debug", None),
                ("--disable_beaker_save", None),
                ("--quantized", None),
                ("--torch_dtype", Some("float16")),
                ("--attn_implementation", Some("flash_attention_2")),
            ],
        ),
    ];

    /// Each upstream flag parses (`--flag_name`, `--flag-name`, `--flag=value`, a bare or
    /// valued boolean) where its script's command lines go: `rewardbench` for the CLI,
    /// run_rm.py and run_dpo.py, `rewardbench v2` for run_v2.py.
    #[test]
    fn every_upstream_flag_parses() {
        for (script, flags) in UPSTREAM_FLAGS {
            let sub: &[&str] = if *script == "run_v2.py" { &["v2"] } else { &[] };
            for (flag, value) in *flags {
                let dashed = format!("--{}", flag[2..].replace('_', "-"));
                let mut forms: Vec<Vec<String>> = Vec::new();
                for f in [flag.to_string(), dashed] {
                    match value {
                        Some(v) => {
                            forms.push(vec![f.clone(), v.to_string()]);
                            forms.push(vec![format!("{f}={v}")]);
                        }
                        None => {
                            forms.push(vec![f.clone()]);
                            forms.push(vec![f.clone(), "True".into()]);
                            forms.push(vec![format!("{f}=false")]);
                        }
                    }
                }
                for form in forms {
                    let mut argv = vec!["rewardbench".to_string()];
                    argv.extend(sub.iter().map(|s| s.to_string()));
                    if *flag != "--model" {
                        argv.extend(["--model".to_string(), "m".to_string()]);
                    }
                    argv.extend(form);
                    if let Err(e) = Args::try_parse_from(&argv) {
                        panic!("{script}: {argv:?}: {e}");
                    }
                }
            }
        }
    }

    #[test]
    fn hf_style_booleans_and_aliases() {
        let a = Args::try_parse_from([
            "rewardbench",
            "--model",
            "m",
            "--load_json",
            "--debug",
            "false",
            "--batch-size",
            "3",
            "--force-truncation",
            "YES",
        ])
        .unwrap();
        let a = a.eval;
        assert!(a.load_json && !a.debug && a.force_truncation);
        assert_eq!(a.batch_size, 3);
        assert_eq!(a.dataset, None);
        assert!(Args::try_parse_from(["rewardbench", "--debug", "maybe"]).is_err());
        assert!(Args::try_parse_from(["rewardbench", "--batch_size", "0"]).is_err());
    }

    /// `--help` lists every evaluation flag under a heading, the no-op flags apart.
    #[test]
    fn help_is_grouped() {
        use clap::CommandFactory;
        let cmd = Args::command();
        let loose: Vec<String> = cmd
            .get_arguments()
            .filter(|a| a.get_long().is_some_and(|l| l != "help" && l != "version"))
            .filter(|a| a.get_help_heading().is_none())
            .map(|a| a.get_id().to_string())
            .collect();
        assert!(loose.is_empty(), "flags without a heading: {loose:?}");
        let heading = |flag: &str| {
            cmd.get_arguments()
                .find(|a| a.get_long() == Some(flag))
                .and_then(|a| a.get_help_heading())
                .unwrap_or_default()
                .to_string()
        };
        for f in [
            "wandb_run",
            "not_quantized",
            "trust_remote_code",
            "quantized",
        ] {
            assert!(heading(f).contains("no effect"), "{f}: {}", heading(f));
        }
        assert_eq!(heading("hf_entity"), "Publishing to the hub");
        assert_eq!(heading("pooling"), heading("score_column"));
    }
}
