use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;

use rewardbench::batch::Batching;
use rewardbench::cli::{Args, BatchingArg, Command};
use rewardbench::eval::{self, EvalConfig};
use rewardbench::report::{self, RunInfo};

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
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
    let Some(model) = args.model.clone() else {
        bail!("--model is required (a folder with model.onnx and the tokenizer files)");
    };
    if let Some(r) = &args.ref_model {
        bail!(
            "--ref_model {r}: DPO (implicit reward) evaluation is not available in this build yet"
        );
    }
    if args.revision.is_some() {
        bail!("--revision applies to hub models, which this build cannot download yet; pass a local model folder");
    }
    if rewardbench::data::looks_like_hub_id(&args.dataset) {
        return Err(rewardbench::data::DataError::NotLocal {
            name: args.dataset.clone(),
        }
        .into());
    }
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
    if args.split.is_some() {
        eprintln!("note: --split is ignored for a local file (it is one split)");
    }

    let cfg = EvalConfig {
        model: model.clone(),
        tokenizer: args.tokenizer.clone(),
        dataset: args.dataset.clone().into(),
        chat_template: args.chat_template.clone(),
        batch_size: args.batch_size as usize,
        max_length: args.max_length as usize,
        force_truncation: args.force_truncation,
        debug: args.debug,
        batching: match args.batching {
            BatchingArg::Sorted => Batching::Sorted,
            BatchingArg::Reference => Batching::Reference,
        },
        max_batch_tokens: args.max_batch_tokens,
        threads: args.threads,
        ort_lib: args.ort_lib.clone(),
        device: args.device.into(),
        device_id: args.device_id,
        fp16: args.fp16,
        trt_cache: args.trt_cache.clone().or_else(default_trt_cache),
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
        dataset: args.dataset.clone(),
        batch_size: cfg.batch_size,
    };

    // Fail on an unwritable output folder before any compute.
    report::check_writable(&args.output_dir)?;
    let prepared = eval::prepare(&cfg)?;
    for w in &prepared.warnings {
        eprintln!("warning: {w}");
    }
    let name = prepared.model.name();
    let ev = eval::run(prepared, &cfg)?;
    let ties = report::ties(&ev);
    if ties > 0 {
        eprintln!("warning: {ties} row(s) scored chosen == rejected; a tie counts as wrong (as in RewardBench)");
    }
    let written = report::write(&ev, &info, &args.output_dir, &name)?;
    if args.save_all {
        let path = args.output_dir.join(format!("{name}_all.jsonl"));
        let lines: String = ev
            .rows
            .iter()
            .map(|r| {
                let v = serde_json::json!({
                    "chosen": r.score_chosen.iter().map(|x| f64::from(*x)).collect::<Vec<_>>(),
                    "rejected": r.score_rejected.iter().map(|x| f64::from(*x)).collect::<Vec<_>>(),
                });
                format!(
                    "{}\n",
                    rewardbench::pyjson::PyJson::python_default().dumps(&v)
                )
            })
            .collect();
        std::fs::write(&path, lines).with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{}", report::table(&ev, &info));
    eprintln!(
        "wrote {}, {}, {}",
        written.summary.display(),
        written.outputs.display(),
        written.csv.display()
    );
    Ok(())
}
