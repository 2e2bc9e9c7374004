use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;

use rewardbench::batch::Batching;
use rewardbench::cli::{Args, BatchingArg, Command};
use rewardbench::eval::{self, EvalConfig};
use rewardbench::report::{self, RunInfo};

/// The error and its causes, leaving out a cause whose text the message already holds.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// `$XDG_CACHE_HOME/rewardbench/tensorrt`, else `~/.cache/rewardbench/tensorrt`.
fn default_trt_cache() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("rewardbench/tensorrt"))
}

fn run(args: Args) -> anyhow::Result<()> {
    if let Some(Command::Render(r)) = &args.command {
        return rewardbench::render::run(r);
    }
    if let Some(Command::Leaderboard(l)) = &args.command {
        print!("{}", rewardbench::leaderboard::run(l)?);
        return Ok(());
    }
    let Some(model) = args.model.clone() else {
        bail!("--model is required (a folder with model.onnx and the tokenizer files)");
    };
    // Hub ids become folders in the hub cache (HF_HOME / HF_HUB_CACHE, HF_ENDPOINT,
    // HF_TOKEN, HF_HUB_OFFLINE); local paths are used as they are.
    let hub = std::cell::OnceCell::new();
    let get_hub = || -> Result<rewardbench::hub::Hub, rewardbench::hub::HubError> {
        if let Some(h) = hub.get() {
            return Ok(Clone::clone(h));
        }
        let h = rewardbench::hub::Hub::from_env()?;
        Ok(hub.get_or_init(|| h).clone())
    };
    let model_dir = rewardbench::model::resolve(&model, args.revision.as_deref(), true, &get_hub)?;
    let tokenizer_dir = match &args.tokenizer {
        Some(t) => Some(rewardbench::model::resolve(
            t,
            args.revision.as_deref(),
            false,
            &get_hub,
        )?),
        None => None,
    };
    // A wrong --model is reported before the dataset is read (or downloaded).
    rewardbench::model::ModelFiles::locate(&model_dir)?;
    if let Some(r) = &args.ref_model {
        rewardbench::model::ModelFiles::locate(std::path::Path::new(r))?;
    }
    let dataset_name = if args.pref_sets {
        rewardbench::data::PREF_SETS.to_string()
    } else {
        args.dataset.clone()
    };
    let spec = rewardbench::data::DatasetSpec::parse(&dataset_name, args.split.as_deref());
    let spec = match &spec.source {
        rewardbench::data::Source::Hub { .. } => rewardbench::data::resolve(&spec, &get_hub()?)?,
        rewardbench::data::Source::Local(p) => {
            if args.split.is_some() && p.is_file() {
                eprintln!("note: --split is ignored for a local file (it is one split)");
            }
            spec
        }
    };
    let mut ignored = Vec::new();
    if args.not_quantized {
        ignored.push("--not_quantized");
    }
    if args.torch_dtype.is_some() {
        ignored.push("--torch_dtype");
    }
    if args.attn_implementation.is_some() {
        ignored.push("--attn_implementation");
    }
    if args.trust_remote_code {
        ignored.push("--trust_remote_code");
    }
    if !ignored.is_empty() {
        eprintln!(
            "note: {} have no effect here: precision and attention are fixed when the model is exported to ONNX",
            ignored.join(", ")
        );
    }

    let cfg = EvalConfig {
        model: model_dir.clone(),
        tokenizer: tokenizer_dir.clone(),
        dataset: spec.to_path(),
        chat_template: args.chat_template.clone(),
        date: args.date,
        batch_size: args.batch_size as usize,
        max_length: args.max_length as usize,
        force_truncation: args.force_truncation,
        debug: args.debug,
        batching: match args.batching {
            BatchingArg::Sorted => Batching::Sorted,
            BatchingArg::Reference => Batching::Reference,
        },
        max_batch_tokens: args.max_batch_tokens,
        share_prefixes: args.share_prefixes,
        threads: args.threads,
        ort_lib: args.ort_lib.clone(),
        device: args.device.into(),
        device_id: args.device_id,
        fp16: args.fp16,
        trt_cache: args.trt_cache.clone().or_else(default_trt_cache),
        cache: None,
        overwrite: args.overwrite,
        quiet: args.quiet,
    };
    let info = RunInfo {
        model: model.display().to_string(),
        tokenizer: args
            .tokenizer
            .as_ref()
            .unwrap_or(&model)
            .display()
            .to_string(),
        dataset: dataset_name.clone(),
        batch_size: cfg.batch_size,
        ref_model: args.ref_model.clone(),
    };

    // Fail on an unwritable output folder before any compute.
    report::check_writable(&args.output_dir)?;
    if let Some(mode) =
        rewardbench::dpo::mode_from_flags(args.ref_model.as_deref(), args.ref_free_type)
    {
        return run_dpo(&args, &cfg, &info, &mode);
    }
    if let rewardbench::data::Loaded::Instructions(set) =
        rewardbench::data::load(&spec, args.prioritize_scoring)?
    {
        return run_instructions(&args, &cfg, set);
    }
    let prepared = eval::prepare(&cfg)?;
    for w in &prepared.warnings {
        eprintln!("warning: {w}");
    }
    let name = prepared.model.name();
    // A hub model's name (`org/name`) is a subfolder of the output folder.
    if let Some(parent) = args.output_dir.join(&name).parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut cfg = cfg;
    if args.cache {
        cfg.cache = Some(args.output_dir.join(format!("{name}.cache.jsonl")));
    }
    let handler = ctrlc::set_handler(|| {
        if eval::INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130); // a second Ctrl-C: stop at once
        }
        eprintln!(
            "\ninterrupt: stopping after the model call in flight (Ctrl-C again to stop now)"
        );
    });
    if let Err(e) = handler {
        eprintln!("note: no Ctrl-C handler ({e}); an interrupted run still resumes from its cache");
    }
    let ev = match eval::run(prepared, &cfg) {
        Err(e @ eval::EvalError::Interrupted { .. }) => {
            eprintln!("error: {e}");
            std::process::exit(130);
        }
        other => other?,
    };
    let ties = report::ties(&ev);
    if ties > 0 {
        eprintln!("warning: {ties} row(s) scored chosen == rejected; a tie counts as wrong (as in RewardBench)");
    }
    let written = report::write(&ev, &info, &args.output_dir, &name)?;
    if args.save_all {
        report::write_all_scores(&ev, &args.output_dir, &name, report::AllScores::Pairs)?;
    }
    print!("{}", report::table(&ev, &info));
    eprintln!(
        "wrote {}, {}, {}, {}",
        written.summary.display(),
        written.outputs.display(),
        written.csv.display(),
        written.run.display()
    );
    Ok(())
}

/// DPO (implicit reward) evaluation: `--ref_model`, or `--ref_free_type` alone.
fn run_dpo(
    args: &Args,
    cfg: &EvalConfig,
    info: &RunInfo,
    mode: &rewardbench::dpo::DpoMode,
) -> anyhow::Result<()> {
    if let (Some(_), Some(t)) = (&args.ref_model, args.ref_free_type) {
        eprintln!("note: --ref_free_type {t:?} is ignored: with --ref_model the reward is policy sum - reference sum");
    }
    let ev = rewardbench::dpo::evaluate(cfg, mode)?;
    for w in &ev.prepared.warnings {
        eprintln!("warning: {w}");
    }
    let ties = report::ties(&ev);
    if ties > 0 {
        eprintln!("warning: {ties} row(s) scored chosen == rejected; a tie counts as wrong (as in RewardBench)");
    }
    let name = ev.prepared.model.name();
    let written = report::write(&ev, info, &args.output_dir, &name)?;
    print!("{}", report::table(&ev, info));
    eprintln!(
        "wrote {}, {}, {}",
        written.summary.display(),
        written.outputs.display(),
        written.csv.display()
    );
    Ok(())
}

/// Instruction data (`messages`, no pairs): every row scored, scores written, no accuracy.
fn run_instructions(
    args: &Args,
    cfg: &EvalConfig,
    set: rewardbench::data::InstructionSet,
) -> anyhow::Result<()> {
    let rows = set.rows.len();
    let ev = eval::score_instructions(cfg, set)?;
    for w in &ev.prepared.warnings {
        eprintln!("warning: {w}");
    }
    let name = ev.prepared.model.name();
    let (outputs, csv) = report::write_instructions(&ev, &args.output_dir, &name)?;
    if args.save_all {
        report::write_all_scores(&ev, &args.output_dir, &name, report::AllScores::Single)?;
    }
    println!(
        "instruction data: scored {} of {rows} rows (no accuracy: rows have no chosen/rejected)",
        ev.rows.len()
    );
    eprintln!("wrote {}, {}", outputs.display(), csv.display());
    Ok(())
}
