//! Flags to a [`RunConfig`]: hub ids become snapshot folders, the dataset a typed spec, and
//! flags that have no effect here are named in a note (ripgrep's low-level to high-level args).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::bail;
use rewardbench::batch::Batching;
use rewardbench::config::{
    BatchConfig, CutSide, DataConfig, DeviceConfig, DpoMode, ModelConfig, OutputConfig, RunConfig,
    ScorerKind, ScoringConfig, TemplateConfig, TokenizeConfig,
};
use rewardbench::data::{self, DatasetSpec, Source};
use rewardbench::hub::{Hub, HubError, HubNotice, NoticeSink};
use rewardbench::model::{self, ModelFiles};
use rewardbench::registry::{self, Bench, Given, Profile, Registry};
use rewardbench::report::RunInfo;
use rewardbench::run::observer::Observer;
use rewardbench::scoring::ScoreDtype;

use super::{BatchingArg, EvalArgs, ScoreDtypeArg, TruncationSideArg, V2Args};

/// A run, ready: its configuration and the names its summary records.
pub struct Resolved {
    pub config: RunConfig,
    pub info: RunInfo,
    /// What to publish after the run (`--push_results_to_hub`, `--upload_model_metadata_to_hf`).
    pub publish: Option<super::publish::Publish>,
}

/// `$XDG_CACHE_HOME/rewardbench/tensorrt`, else `~/.cache/rewardbench/tensorrt`.
fn default_trt_cache() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("rewardbench/tensorrt"))
}

/// The DPO mode the flags ask for: `--ref_model` wins; `--ref_free_type` alone is
/// reference-free; neither is not DPO.
fn scorer(args: &EvalArgs, ref_dir: Option<PathBuf>, obs: &mut dyn Observer) -> ScorerKind {
    match (ref_dir, args.ref_free_type) {
        (Some(r), t) => {
            if let Some(t) = t {
                obs.note(&format!(
                    "--ref_free_type {} is ignored: with --ref_model the reward is policy sum - reference sum",
                    rewardbench::config::RefFree::from(t).label()
                ));
            }
            ScorerKind::Dpo(DpoMode::Reference(r))
        }
        (None, Some(t)) => ScorerKind::Dpo(DpoMode::RefFree(t.into())),
        (None, None) => ScorerKind::Classifier,
    }
}

/// RewardBench flags accepted for compatibility that change nothing here: each group gets one
/// note, `FLAGS: accepted, ignored because REASON`.
fn ignored_flags(args: &EvalArgs, obs: &mut dyn Observer) {
    let groups: [(&[(bool, &str)], &str); 5] = [
        (
            &[
                (args.not_quantized, "--not_quantized"),
                (args.quantized, "--quantized"),
                (args.torch_dtype.is_some(), "--torch_dtype"),
            ],
            "an ONNX export's precision is fixed when it is exported (export/quantize.py makes fp16 and int8 copies)",
        ),
        (
            &[(args.attn_implementation.is_some(), "--attn_implementation")],
            "attention is part of the exported ONNX graph (export/export_rm.py --attention)",
        ),
        (
            &[(args.trust_remote_code, "--trust_remote_code")],
            "no Python code from the model repo is run here: the ONNX export holds the whole model and tokenizer.json the tokenizer",
        ),
        (
            &[
                (args.do_not_save, "--do_not_save"),
                (args.disable_beaker_save, "--disable_beaker_save"),
            ],
            "results are always written to --output_dir, no /output/metrics.json is written, and only --push_results_to_hub uploads",
        ),
        (
            &[(args.wandb_run.is_some(), "--wandb_run")],
            "W&B is not read: pass the run's model as --model (and --revision)",
        ),
    ];
    for (flags, reason) in groups {
        let on: Vec<&str> = flags
            .iter()
            .filter_map(|(set, f)| set.then_some(*f))
            .collect();
        if !on.is_empty() {
            obs.note(&format!(
                "{}: accepted, ignored because {reason}",
                on.join(", ")
            ));
        }
    }
}

/// Hub notices: progress lines on stderr at once (not with `--quiet`); warnings kept for
/// the observer (see [`drain`]).
pub(super) fn notices(quiet: bool) -> (NoticeSink, Arc<Mutex<Vec<String>>>) {
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&warnings);
    let sink: NoticeSink = Arc::new(move |n: &HubNotice| {
        if n.is_warning() {
            if let Ok(mut w) = kept.lock() {
                w.push(n.to_string());
            }
        } else if !quiet {
            eprintln!("{n}");
        }
    });
    (sink, warnings)
}

/// Passes the hub's warnings so far to `obs`.
pub(super) fn drain(warnings: &Mutex<Vec<String>>, obs: &mut dyn Observer) {
    if let Ok(mut w) = warnings.lock() {
        for m in w.drain(..) {
            obs.warn(&m);
        }
    }
}

/// `--tokenizer` or `--ref_model` given as a file: the folder is wanted.
fn folder_flag(path: &Path) -> anyhow::Result<()> {
    if path.is_file() {
        return Err(model::ModelError::File {
            path: path.to_path_buf(),
        }
        .into());
    }
    Ok(())
}

/// Says so when `max_length` (the limit texts are truncated to) is more than the model's
/// positions: a text between the two still fails.
fn check_max_length(files: &ModelFiles, max_length: usize, what: &str, obs: &mut dyn Observer) {
    if let Some(max) = files.max_positions().filter(|&m| max_length > m) {
        obs.warn(&format!(
            "{what} {max_length} is more than the {max} positions of {} (config.json): a text truncated to {max_length} tokens can still be too long for the model, and such a row fails; pass --max_length {max} or less",
            files.dir.display()
        ));
    }
}

/// Pref-set split names (`allenai/pref-test-sets`).
const PREF_SET_SPLITS: &[&str] = &[
    "anthropic_harmless",
    "anthropic_helpful",
    "anthropic_hhh",
    "mtbench_gpt4",
    "mtbench_human",
    "shp",
    "summarize",
    "pku_better",
    "pku_safer",
];

/// A local folder read without the flag its layout calls for: a copy of the core set
/// (splits `raw` and `filtered`) without `--split` (raw's rows repeat filtered's), or of the
/// pref sets without `--pref_sets`.
fn local_copy_hints(dir: &Path, args: &EvalArgs, obs: &mut dyn Observer) {
    if args.split.is_some() || !dir.is_dir() {
        return;
    }
    // A hub-cache snapshot of either gets its rules already.
    if DatasetSpec::parse(&dir.to_string_lossy(), None)
        .repo_id()
        .is_some()
    {
        return;
    }
    let splits = data::local_split_names(dir);
    if splits.iter().any(|s| s == "filtered") && splits.iter().any(|s| s == "raw") {
        obs.warn(&format!(
            "{} looks like a local copy of the RewardBench core set (splits {}): without --split every split is read, and `raw` repeats `filtered`'s rows; RewardBench scores split `filtered`: add --split filtered",
            dir.display(),
            splits.join(", ")
        ));
    }
    let pref = splits
        .iter()
        .filter(|s| PREF_SET_SPLITS.contains(&s.as_str()))
        .count();
    if !args.pref_sets && pref >= 2 {
        obs.note(&format!(
            "{} looks like a local copy of the prior preference sets (splits {}): add --pref_sets to read it with RewardBench's rules (each split a subset, pku_* left out)",
            dir.display(),
            splits.join(", ")
        ));
    }
}

/// The registry: the built-in one, with `--model_config FILE`'s entries over it.
fn load_registry(args: &EvalArgs) -> anyhow::Result<Registry> {
    let reg = Registry::built_in()?;
    Ok(match &args.model_config {
        Some(f) => reg.merged(Registry::load(f)?),
        None => reg,
    })
}

/// Fills in what the model's registry entry and `rewardbench.json` give and the flags did
/// not (flags > rewardbench.json > registry > defaults), and records it for the summary.
fn finish(
    r: &mut Resolved,
    profile: Option<Profile>,
    given: Given,
    bench: Bench,
    obs: &mut dyn Observer,
) -> anyhow::Result<()> {
    let Some(mut p) = profile else {
        return Ok(());
    };
    for n in p.apply(&mut r.config, given, bench)? {
        obs.note(&n);
    }
    r.info.model_type = Some(p.model_type().to_string());
    r.info.model_config = Some(p.summary());
    Ok(())
}

/// For an error about the reward head: where the model's head settings came from, when a
/// registry entry or `rewardbench.json` gave any (a message prefix).
pub fn head_context(info: &RunInfo) -> Option<String> {
    let c = info.model_config.as_ref()?;
    let head = ["pooling", "score_output", "score_column", "score_transform"];
    let given: Vec<String> = head
        .iter()
        .filter_map(|k| {
            let s = c["settings"].get(*k)?;
            (s["source"] != "flag").then(|| {
                format!(
                    "{k} = {} ({})",
                    s["value"],
                    s["source"].as_str().unwrap_or("")
                )
            })
        })
        .collect();
    if given.is_empty() {
        return None;
    }
    let mut from = Vec::new();
    if let Some(f) = c["folder_file"].as_str() {
        from.push(f.to_string());
    }
    if let (Some(e), Some(r)) = (c["entry"].as_str(), c["registry"].as_str()) {
        from.push(format!("registry entry `{e}` in {r}"));
    }
    Some(format!(
        "{} from {} (the flags --pooling, --score_output, --score_column, --score_transform override them)",
        given.join(", "),
        from.join(" and ")
    ))
}

/// Resolves the flags of an evaluation. Hub ids become folders in the hub cache (HF_HOME /
/// HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE); local paths are used as they are.
/// The model's registry entry (or its folder's `rewardbench.json`) fills in the settings
/// the flags do not give.
pub fn resolve(args: &EvalArgs, obs: &mut dyn Observer) -> anyhow::Result<Resolved> {
    let (mut r, profile) = resolve_for(args, obs, Bench::V1)?;
    let given = Given {
        truncation: args.force_truncation,
        ..super::head::given(&args.head)
    };
    finish(&mut r, profile, given, Bench::V1, obs)?;
    Ok(r)
}

/// [`resolve`] before the model's registry settings are applied, with them.
fn resolve_for(
    args: &EvalArgs,
    obs: &mut dyn Observer,
    bench: Bench,
) -> anyhow::Result<(Resolved, Option<Profile>)> {
    let Some(model) = args.model.clone() else {
        bail!("--model is required (a folder with model.onnx and the tokenizer files)");
    };
    // Publishing settings are checked before anything is downloaded or computed.
    // A hub model (not a local path) has a card that --upload_model_metadata_to_hf can update.
    let model_text = model.to_string_lossy();
    let model_repo =
        (!model.exists() && rewardbench::hub::is_repo_id(&model_text) && model_text.contains('/'))
            .then(|| model_text.to_string());
    if args.shard.is_some() && (args.push_results_to_hub || args.upload_model_metadata_to_hf) {
        bail!("--shard with --push_results_to_hub / --upload_model_metadata_to_hf: a shard has no results to publish; merge the shards, then `rewardbench publish {{output_dir}}`");
    }
    let publish = super::publish::for_run(
        args.push_results_to_hub,
        &args.hub,
        args.upload_model_metadata_to_hf,
        model_repo,
        args.revision.as_deref(),
        args,
        obs,
    )?;
    let hub = std::cell::OnceCell::new();
    let (sink, hub_warnings) = notices(args.quiet);
    let get_hub = || -> Result<Hub, HubError> {
        if let Some(h) = hub.get() {
            return Ok(Clone::clone(h));
        }
        let h = Hub::from_env()?.with_notices(Arc::clone(&sink));
        Ok(hub.get_or_init(|| h).clone())
    };
    let reg = load_registry(args)?;
    let dpo = args.ref_model.is_some() || args.ref_free_type.is_some();
    if !dpo {
        reg.check_supported(&model_text, bench)?;
    }
    let device: rewardbench::backend::Device = args.device.into();
    let model_dir = model::resolve(&model, args.revision.as_deref(), Some(device), &get_hub);
    drain(&hub_warnings, obs);
    let model_dir = model_dir?;
    let tokenizer_dir = match &args.tokenizer {
        Some(t) => {
            folder_flag(t)?;
            let dir = model::resolve(t, args.revision.as_deref(), None, &get_hub);
            drain(&hub_warnings, obs);
            Some(dir?)
        }
        None => None,
    };
    // A wrong --model is reported before the dataset is read (or downloaded).
    let files = ModelFiles::locate(&model_dir, device)?;
    if let Some(note) = &files.note {
        obs.note(note);
    }
    for note in [files.precision_note(device), files.memory_note()]
        .into_iter()
        .flatten()
    {
        obs.note(&note);
    }
    // So is a model the registry refuses (as named by its config.json); DPO models have no
    // registry entries (upstream's DPO_MODEL_CONFIG is another table).
    let profile = if dpo {
        None
    } else {
        registry::profile(&reg, &model_text, &model_dir, bench)?
    };
    if args.force_truncation {
        check_max_length(
            &files,
            args.max_length
                .map_or(RunConfig::default().tokenize.max_length, |m| m as usize),
            "--force_truncation --max_length",
            obs,
        );
    }
    let ref_dir = match &args.ref_model {
        Some(r) => {
            let r = Path::new(r);
            folder_flag(r)?;
            let dir = model::resolve(r, None, Some(device), &get_hub);
            drain(&hub_warnings, obs);
            let dir = dir?;
            ModelFiles::locate(&dir, device)?;
            Some(dir)
        }
        None => None,
    };
    // --pref_sets reads allenai/pref-test-sets, or --dataset (a local copy, another id) with
    // the pref-set rules.
    let dataset_name = match (&args.dataset, args.pref_sets) {
        (Some(d), _) => d.clone(),
        (None, true) => data::PREF_SETS.to_string(),
        (None, false) => data::CORE_SET.to_string(),
    };
    let mut spec = DatasetSpec::parse(&dataset_name, args.split.as_deref());
    spec.pref_sets = args.pref_sets;
    let spec = match &spec.source {
        Source::Hub { .. } => {
            let resolved = get_hub()
                .map_err(|source| data::DataError::Hub {
                    name: dataset_name.clone(),
                    source: Box::new(source),
                })
                .and_then(|h| data::resolve(&spec, &h));
            drain(&hub_warnings, obs);
            resolved?
        }
        Source::Local(p) => {
            if args.split.is_some() && p.is_file() {
                obs.note("--split is ignored for a local file (it is one split)");
            }
            local_copy_hints(p, args, obs);
            spec
        }
    };
    ignored_flags(args, obs);
    if args.debug {
        obs.note(&format!(
            "--debug: only the first {} rows are scored; the summary says \"debug\": true, and leaderboards of a folder leave the run out",
            rewardbench::config::DEBUG_ROWS
        ));
    }
    let head = super::head::resolve(
        &args.head,
        args.ref_model.is_some() || args.ref_free_type.is_some(),
        args.shard.is_some(),
    )?;
    let gpu = device.wants_gpu();
    let config = RunConfig {
        model: ModelConfig {
            dir: model_dir,
            tokenizer: tokenizer_dir,
            scorer: scorer(args, ref_dir, obs),
        },
        data: DataConfig {
            spec,
            debug: args.debug,
            prioritize_scoring: args.prioritize_scoring,
        },
        template: TemplateConfig {
            chat_template: args.chat_template.clone(),
            date: args.date,
        },
        tokenize: TokenizeConfig {
            max_length: args
                .max_length
                .map_or(RunConfig::default().tokenize.max_length, |m| m as usize),
            force_truncation: args.force_truncation,
            ..TokenizeConfig::default()
        },
        scoring: ScoringConfig::default(),
        head,
        batch: BatchConfig {
            batching: match args.batching {
                BatchingArg::Sorted => Batching::Sorted,
                BatchingArg::Reference => Batching::Reference,
            },
            batch_size: args.batch_size as usize,
            max_batch_tokens: args.max_batch_tokens.unwrap_or(if gpu {
                rewardbench::config::MAX_BATCH_TOKENS_GPU
            } else {
                rewardbench::config::MAX_BATCH_TOKENS_CPU
            }),
            max_attention_mb: args.max_attention_mb.unwrap_or(if gpu {
                rewardbench::config::MAX_ATTENTION_MB_GPU
            } else {
                rewardbench::config::MAX_ATTENTION_MB_CPU
            }),
            share_prefixes: args.share_prefixes,
        },
        device: DeviceConfig {
            device: args.device.into(),
            device_id: args.device_id,
            fp16: args.fp16,
            trt_cache: args.trt_cache.clone().or_else(default_trt_cache),
            threads: args.threads,
            ort_lib: args.ort_lib.clone(),
        },
        output: OutputConfig {
            dir: args.output_dir.clone().unwrap_or_else(|| {
                rewardbench::config::RunConfig::default()
                    .output
                    .dir
                    .join(data::results_folder(
                        &dataset_name,
                        args.pref_sets,
                        args.debug,
                    ))
            }),
            cache: args.cache,
            overwrite: args.overwrite,
            save_all: args.save_all,
            quiet: args.quiet,
            shard: args.shard,
            name: None,
            dry_run: args.dry_run,
        },
    };
    // A pairwise model (--pairwise, or the export's pairwise.json).
    let from_registry = profile
        .as_ref()
        .and_then(|p| p.pairwise().map(|k| (k, p.describe())));
    let mut config = super::pairwise::apply(args, config, from_registry, obs)?;
    if config.output.shard.is_some() && config.batch.batching == Batching::Reference {
        bail!("--shard needs --batching sorted: --batching reference makes a text's score depend on its batch, so shards could not merge into the single run's numbers");
    }
    let info = RunInfo {
        model: rewardbench::model::display_path(&model),
        tokenizer: rewardbench::model::display_path(args.tokenizer.as_ref().unwrap_or(&model)),
        dataset: dataset_name,
        batch_size: config.batch.batch_size,
        ref_model: args
            .ref_model
            .as_ref()
            .map(|r| rewardbench::model::display_path(Path::new(r))),
        ref_free_type: match (&args.ref_model, args.ref_free_type) {
            (None, Some(t)) => Some(rewardbench::config::RefFree::from(t).label().to_string()),
            _ => None,
        },
        argv: std::env::args().skip(1).collect(),
        debug: args.debug,
        // run_dpo's names; a classifier's comes from its registry profile (finish)
        model_type: match (dpo, &args.ref_model) {
            (true, Some(_)) => Some("DPO".to_string()),
            (true, None) => Some("DPO Ref. Free".to_string()),
            (false, _) => None,
        },
        model_config: None,
    };
    // Another model of the same folder name with results here: this run's files get a name
    // of their own.
    config.output.name = rewardbench::report::free_name(&config.output.dir, &files, &info.model);
    if let Some(n) = &config.output.name {
        obs.note(&format!(
            "{} already holds results of another model named {}; this run's files are named {n}",
            config.output.dir.display(),
            files.base_name()
        ));
    }
    Ok((
        Resolved {
            config,
            info,
            publish,
        },
        profile,
    ))
}

/// Resolves `rewardbench v2`: run_v2's defaults (allenai/reward-bench-2, split test,
/// --max_length 2048, every text truncated on the tokenizer's side) and RewardBench 2's
/// scoring for every row.
pub fn resolve_v2(v: &V2Args, obs: &mut dyn Observer) -> anyhow::Result<Resolved> {
    let a = &v.eval;
    if a.ref_model.is_some() || a.ref_free_type.is_some() {
        bail!("rewardbench v2 scores sequence classifiers (as run_v2); --ref_model / --ref_free_type (DPO) are for plain `rewardbench`");
    }
    if a.pref_sets {
        bail!("--pref_sets is a RewardBench v1 dataset; `rewardbench v2` reads --dataset (default {})", data::RB2);
    }
    let mut args = a.clone();
    if args.dataset.is_none() {
        args.dataset = Some(data::RB2.to_string());
        if args.split.is_none() {
            args.split = Some("test".to_string());
        }
    }
    if args.force_truncation {
        obs.note("--force_truncation has no effect with v2: every text is truncated at --max_length, as run_v2 does");
        args.force_truncation = false;
    }
    if args.save_all {
        obs.note("--save_all has no effect with v2: every completion's score is in {name}_outputs.jsonl and {name}_scores.csv");
        args.save_all = false;
    }
    let (mut r, profile) = resolve_for(&args, obs, Bench::V2)?;
    super::pairwise::refuse_v2(&r.config)?;
    // run_v2 names a model at a revision `{model}-{revision}`.
    if let Some(rev) = &a.revision {
        r.info.model = format!("{}-{rev}", r.info.model);
    }
    r.config.tokenize.max_length = a
        .max_length
        .map_or(rewardbench::config::V2_MAX_LENGTH, |m| m as usize);
    let files = ModelFiles::locate(&r.config.model.dir, r.config.device.device)?;
    let what = match a.max_length {
        Some(_) => "--max_length",
        None => "--max_length (v2's default)",
    };
    check_max_length(&files, r.config.tokenize.max_length, what, obs);
    r.config.tokenize.cut = Some(match v.truncation_side {
        TruncationSideArg::Tokenizer => CutSide::Tokenizer,
        TruncationSideArg::Left => CutSide::Left,
        TruncationSideArg::Right => CutSide::Right,
    });
    r.config.scoring = ScoringConfig {
        score_dtype: match v.score_dtype {
            ScoreDtypeArg::F32 => ScoreDtype::F32,
            ScoreDtypeArg::Bf16 => ScoreDtype::Bf16,
            ScoreDtypeArg::F16 => ScoreDtype::F16,
        },
        best_of_n: true,
    };
    let given = Given {
        truncation: a.max_length.is_some(),
        ..super::head::given(&a.head)
    };
    finish(&mut r, profile, given, Bench::V2, obs)?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::super::Args;
    use super::*;
    use clap::Parser;
    use rewardbench::run::observer::Collect;

    /// The CLI's defaults are `RunConfig::default()`'s, field by field.
    #[test]
    fn cli_defaults_are_the_config_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.onnx"), b"").unwrap();
        let data = dir.path().join("rows.jsonl");
        std::fs::write(&data, b"").unwrap();
        let args = Args::try_parse_from([
            "rewardbench",
            "--model",
            dir.path().to_str().unwrap(),
            "--dataset",
            data.to_str().unwrap(),
        ])
        .unwrap();
        let mut obs = Collect::default();
        let mut got = resolve(&args.eval, &mut obs).unwrap().config;
        let want = RunConfig::default();
        // Without --output_dir, results go to a folder of the dataset's name below the default.
        assert_eq!(got.output.dir, want.output.dir.join("rows"));
        got.output.dir = want.output.dir.clone();
        let debug = |c: &RunConfig| {
            format!(
                "{:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                c.template,
                c.tokenize,
                c.head,
                c.batch,
                (
                    c.device.device,
                    c.device.device_id,
                    c.device.fp16,
                    c.device.threads,
                    &c.device.ort_lib
                ),
                (c.data.debug, c.data.prioritize_scoring),
                c.output
            )
        };
        assert_eq!(debug(&got), debug(&want));
        assert_eq!(got.model.scorer, ScorerKind::Classifier);
        assert!(obs.notes.is_empty() && obs.warnings.is_empty());
        // The default dataset is the core set.
        assert!(matches!(
            DatasetSpec::parse(data::CORE_SET, None).source,
            Source::Hub { ref repo, .. } if *repo == want_repo(&want)
        ));
    }

    /// Every upstream flag that changes nothing here gets a note `FLAG...: accepted, ignored
    /// because ...` (never silence, never a parse error).
    #[test]
    fn every_no_op_upstream_flag_gets_a_note() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.onnx"), b"").unwrap();
        let data = dir.path().join("rows.jsonl");
        std::fs::write(&data, b"").unwrap();
        let no_ops = [
            "--not_quantized",
            "--quantized",
            "--torch_dtype",
            "--attn_implementation",
            "--trust_remote_code",
            "--do_not_save",
            "--disable_beaker_save",
            "--wandb_run",
            "--hf_entity",
            "--hf_name",
        ];
        for (script, flags) in super::super::tests::UPSTREAM_FLAGS {
            for (flag, value) in *flags {
                if !no_ops.contains(flag) {
                    continue;
                }
                let mut argv = vec![
                    "rewardbench",
                    "--model",
                    dir.path().to_str().unwrap(),
                    "--dataset",
                    data.to_str().unwrap(),
                    flag,
                ];
                argv.extend(value.iter());
                let args = Args::try_parse_from(&argv).unwrap();
                let mut obs = Collect::default();
                resolve(&args.eval, &mut obs).unwrap();
                let note = obs.notes.iter().find(|n| n.contains(flag));
                assert!(
                    note.is_some_and(|n| n.contains(": accepted, ignored because ")),
                    "{script} {flag}: {:?}",
                    obs.notes
                );
            }
        }
    }

    fn want_repo(c: &RunConfig) -> String {
        match &c.data.spec.source {
            Source::Hub { repo, .. } => repo.clone(),
            Source::Local(p) => p.display().to_string(),
        }
    }
}
