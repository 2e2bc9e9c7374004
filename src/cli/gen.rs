//! `rewardbench gen` (also run as `rewardbench-gen`): RewardBench's LLM-as-judge over any
//! OpenAI-compatible or Anthropic API; flags as upstream's `run_generative.py`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgAction, Args, Parser};
use rewardbench::data::{self, Dataset, DatasetSpec, Prompt, Source};
use rewardbench::hub::Hub;
use rewardbench::judge::client::{Client, ClientConfig};
use rewardbench::judge::route::{self, Provider};
use rewardbench::report::judge::{self as report, JudgeInfo};
use rewardbench::run::observer::{Observer, Stderr};
use rewardbench::scorer::judge::parse::Modifier;
use rewardbench::scorer::judge::run::{self as judging, Judge, JudgeSettings};
use rewardbench::scorer::judge::store::AnswerStore;

use super::parse_bool;

/// `rewardbench-gen`: the same flags, as its own command.
#[derive(Debug, Parser)]
#[command(
    name = "rewardbench-gen",
    version,
    about = "RewardBench's generative judges (LLM-as-judge) over an API",
    max_term_width = 100
)]
pub struct GenCli {
    #[command(flatten)]
    pub args: GenArgs,
}

/// Flags of `rewardbench gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Judge model(s); an odd number > 1 is an ensemble judged by majority (PoLL).
    #[arg(long, required = true, num_args = 1..)]
    pub model: Vec<String>,
    /// Dataset: hub id or local file/folder [default: allenai/reward-bench]; rows whose chosen/rejected are lists get RewardBench 2's protocol.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Dataset split (the core set: filtered).
    #[arg(long)]
    pub split: Option<String>,
    /// The prior preference sets (allenai/pref-test-sets) instead of --dataset.
    #[arg(long = "pref_sets", alias = "pref-sets", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub pref_sets: bool,
    /// Rate each answer 1-10 instead of comparing them (RB2's Ties is always rated).
    #[arg(long = "score_w_ratings", alias = "score-w-ratings", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub score_w_ratings: bool,
    /// Concurrent judge calls.
    #[arg(long = "num_threads", alias = "num-threads", default_value_t = 10)]
    pub num_threads: usize,
    /// Seed of the answer placement (upstream's is unseeded).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// v1: judge every pair in both orders (score = mean of the two); reports position consistency.
    #[arg(long = "both_orders", alias = "both-orders", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub both_orders: bool,
    /// Only the first 10 rows.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub debug: bool,
    /// Output folder [default: results/{benchmark}/, as for reward models].
    #[arg(long = "output_dir", alias = "output-dir")]
    pub output_dir: Option<PathBuf>,
    /// API: openai, anthropic, gemini, together, openai-compatible (default: from the model name, or --base_url).
    #[arg(long)]
    pub api: Option<String>,
    /// Base URL of an OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama), e.g. http://localhost:8000/v1.
    #[arg(long = "base_url", alias = "base-url")]
    pub base_url: Option<String>,
    /// Cap on request starts per second, all threads together.
    #[arg(long = "max_rps", alias = "max-rps")]
    pub max_rps: Option<f64>,
    /// Seconds one call may take.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Attempts per call (retries on 429, 5xx, timeouts, dropped connections).
    #[arg(long = "max_attempts", alias = "max-attempts", default_value_t = 10)]
    pub max_attempts: u32,
    /// Discard the answer store ({name}.judge-cache.jsonl) and ask again.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub overwrite: bool,
    /// Print the plan (rows, judge calls, what the answer store already holds, prompt size)
    /// and exit: nothing is asked, no file or folder is written.
    #[arg(long = "dry_run", alias = "dry-run", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub dry_run: bool,
    /// No progress lines.
    #[arg(long, short, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub quiet: bool,
    /// Judge only shard I of N of the rows (0 <= I < N): its answers, partial outputs and
    /// manifest go to {output_dir}/shards/; `rewardbench merge {output_dir}` writes the results.
    #[arg(long)]
    pub shard: Option<rewardbench::shard::Shard>,
    /// Upload the summary and per-example outputs as a hub dataset (see --hub_results_repo), with HF_TOKEN.
    #[arg(long = "push_results_to_hub", alias = "push-results-to-hub", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub push_results_to_hub: bool,
    #[command(flatten)]
    pub hub: super::publish::HubTarget,

    // --- upstream flags that mean nothing for an API judge.
    /// Accepted (fastchat template of a local vLLM judge; serve it yourself and pass --base_url).
    #[arg(long = "chat_template", alias = "chat-template")]
    pub chat_template: Option<String>,
    /// Accepted (no local vLLM here: use --base_url).
    #[arg(long = "force_local", alias = "force-local", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub force_local: bool,
    /// Accepted (vLLM setting).
    #[arg(long = "num_gpus", alias = "num-gpus")]
    pub num_gpus: Option<u32>,
    /// Accepted (vLLM setting).
    #[arg(long = "vllm_gpu_util", alias = "vllm-gpu-util")]
    pub vllm_gpu_util: Option<f64>,
    /// Accepted (no Python code runs).
    #[arg(long = "trust_remote_code", alias = "trust-remote-code", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub trust_remote_code: bool,
    /// Accepted (results are written to --output_dir; publish with --push_results_to_hub).
    #[arg(long = "do_not_save", alias = "do-not-save", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub do_not_save: bool,
    /// Accepted (no /output/metrics.json is written).
    #[arg(long = "disable_beaker_save", alias = "disable-beaker-save", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub disable_beaker_save: bool,
}

/// Upstream's result name: `openai/`, `anthropic/`, `google/` before a listed API model;
/// `PoLL/a_b_c` for an ensemble; otherwise the model as given.
pub fn result_name(models: &[String]) -> String {
    if models.len() > 1 {
        return format!("PoLL/{}", models.join("_"));
    }
    let m = &models[0];
    let listed = |l: &[&str]| l.contains(&m.as_str());
    if listed(route::OPENAI_MODEL_LIST) {
        format!("openai/{m}")
    } else if listed(route::ANTHROPIC_MODEL_LIST) {
        format!("anthropic/{m}")
    } else if listed(route::GEMINI_MODEL_LIST) {
        format!("google/{m}")
    } else {
        file_name(m)
    }
}

/// A model name as a path inside the output folder: `org/name` stays a subfolder (as
/// upstream), a local path (`/models/x`, `./x`, anything with `..`) becomes its last part.
fn file_name(m: &str) -> String {
    let p = std::path::Path::new(m);
    let plain = p
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if plain && p.components().count() <= 2 && !m.ends_with('/') {
        return m.to_string();
    }
    p.components()
        .rev()
        .find_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .unwrap_or_else(|| "judge".to_string())
}

fn notes(a: &GenArgs, obs: &mut dyn Observer) {
    let mut ignored = Vec::new();
    if a.chat_template.is_some() {
        ignored.push("--chat_template");
    }
    if a.force_local {
        ignored.push("--force_local");
    }
    if a.num_gpus.is_some() {
        ignored.push("--num_gpus");
    }
    if a.vllm_gpu_util.is_some() {
        ignored.push("--vllm_gpu_util");
    }
    if a.trust_remote_code {
        ignored.push("--trust_remote_code");
    }
    if !ignored.is_empty() {
        obs.note(&format!(
            "{} have no effect: judges are called over HTTP; serve a local model with vLLM, SGLang, llama.cpp or Ollama and pass --base_url",
            ignored.join(", ")
        ));
    }
    if a.do_not_save || a.disable_beaker_save {
        obs.note("--do_not_save / --disable_beaker_save: accepted, no effect: results are written to --output_dir (publish with --push_results_to_hub)");
    }
}

/// What a sharded run's shards left, for `merge`.
pub struct Merging<'a> {
    /// The shards' answer stores.
    pub stores: &'a [PathBuf],
    /// The shards' dataset digest: the rows read now must be the same.
    pub dataset: &'a str,
    /// The base-URL variables the shards routed the judges with.
    pub env: &'a std::collections::BTreeMap<String, String>,
}

/// The variables judge routing reads besides keys.
const ROUTE_VARS: [&str; 2] = ["OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"];

/// Runs a judge evaluation; prints the table.
pub fn run(a: &GenArgs) -> anyhow::Result<()> {
    run_with(a, None).map(|_| ())
}

/// The judges' settings a shard's manifest fingerprints: shards of one run share them.
fn fingerprint(judges: &[Judge], info: &JudgeInfo, a: &GenArgs) -> String {
    let mut d = rewardbench::digest::Digest::default();
    d.field("name", info.name.as_bytes());
    for j in judges {
        d.field(
            "judge",
            format!(
                "{}|{}|{}",
                j.endpoint.provider.name(),
                j.endpoint.base_url,
                j.model
            )
            .as_bytes(),
        );
    }
    d.field(
        "settings",
        format!(
            "{}|{}|{}|{}|{}",
            info.protocol, a.seed, a.score_w_ratings, a.both_orders, a.debug
        )
        .as_bytes(),
    );
    d.hex()
}

/// The command line as `merge` parses it again: `gen` and its flags, without `--shard`.
fn gen_argv() -> Vec<String> {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) != Some("gen") {
        argv.insert(0, "gen".into()); // called as rewardbench-gen
    }
    rewardbench::shard::without_shard(&argv)
}

/// Runs a judge evaluation (a shard of one, or a merge of its shards); prints the table
/// and returns the files written.
pub fn run_with(a: &GenArgs, merging: Option<Merging>) -> anyhow::Result<Vec<PathBuf>> {
    let mut obs = Stderr;
    notes(a, &mut obs);
    if a.shard.is_some() && a.push_results_to_hub {
        anyhow::bail!("--shard with --push_results_to_hub: a shard has no results to publish; merge the shards, then `rewardbench publish {{output_dir}}`");
    }
    // Judges have no model card here (upstream's judge scripts upload results only).
    let publish = super::publish::for_run(
        a.push_results_to_hub,
        &a.hub,
        false,
        None,
        None,
        a,
        &mut obs,
    )?;
    let name = if a.pref_sets {
        data::PREF_SETS.to_string()
    } else {
        a.dataset
            .clone()
            .unwrap_or_else(|| data::CORE_SET.to_string())
    };
    let out = a.output_dir.clone().unwrap_or_else(|| {
        rewardbench::config::RunConfig::default()
            .output
            .dir
            .join(data::results_folder(&name, a.pref_sets, a.debug))
    });
    let spec = DatasetSpec::parse(&name, a.split.as_deref());
    let spec = match &spec.source {
        Source::Hub { .. } => {
            let (sink, warnings) = super::resolve::notices(a.quiet);
            let spec = data::resolve(&spec, &Hub::from_env()?.with_notices(sink));
            super::resolve::drain(&warnings, &mut obs);
            spec?
        }
        Source::Local(_) => spec,
    };
    let mut dataset = Dataset::open(&spec)?;
    if a.debug {
        dataset.rows.truncate(rewardbench::config::DEBUG_ROWS);
    }
    // Upstream loads v1 rows with max_turns=4: longer conversations are left out.
    let before = dataset.rows.len();
    dataset
        .rows
        .retain(|r| r.is_best_of_n() || !matches!(&r.prompt, Prompt::Messages(m) if m.len() > 3));
    if dataset.rows.len() < before {
        obs.note(&format!(
            "{} row(s) with more than two turns left out (as upstream's max_turns=4)",
            before - dataset.rows.len()
        ));
    }
    let api: Option<Provider> = a
        .api
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: route::RouteError| anyhow::anyhow!(e))?;
    // A merge routes as its shards did and calls nothing, so it needs no key.
    let env = |k: &str| match &merging {
        Some(_) if k.ends_with("_API_KEY") => {
            Some(std::env::var(k).unwrap_or_else(|_| "unused-by-merge".into()))
        }
        Some(m) => m.env.get(k).cloned(),
        None => std::env::var(k).ok(),
    };
    let ensemble = a.model.len() > 1;
    let judges = a
        .model
        .iter()
        .map(|m| {
            let endpoint = route::route(m, api, a.base_url.as_deref(), env)?;
            Ok(Judge {
                model: m.clone(),
                endpoint,
                modifier: if ensemble { None } else { Modifier::of(m) },
            })
        })
        .collect::<Result<Vec<_>, route::RouteError>>()?;
    let rb2 = dataset.is_best_of_n();
    let protocol = match (rb2, a.score_w_ratings, a.both_orders) {
        (true, true, _) => "RB2 ratings (Ties: ratings)".to_string(),
        (true, false, _) => "RB2 4-way (Ties: ratings)".to_string(),
        (false, true, _) => "ratings".to_string(),
        (false, false, true) => "pairwise, both orders".to_string(),
        (false, false, false) => "pairwise".to_string(),
    };
    if rb2 && a.both_orders {
        obs.note(
            "--both_orders applies to v1 pairwise judging; RB2's 4-way keeps one seeded placement",
        );
    }
    let info = JudgeInfo {
        name: result_name(&a.model),
        judges: a.model.clone(),
        dataset: name,
        protocol: if ensemble {
            format!("{protocol}, ensemble of {}", a.model.len())
        } else {
            protocol
        },
        seed: a.seed,
    };
    if !a.dry_run {
        rewardbench::report::check_writable(&out)?;
    }
    // Shards: each row's key (subset, id, content), balanced by characters.
    let keys: Vec<String> = dataset
        .rows
        .iter()
        .map(rewardbench::shard::sample_key)
        .collect();
    let digest = rewardbench::shard::dataset_digest(&keys);
    let mine = a.shard.map(|sh| {
        let weights: Vec<usize> = dataset
            .rows
            .iter()
            .map(|r| r.chosen.iter().chain(&r.rejected).map(String::len).sum())
            .collect();
        rewardbench::shard::assign(&keys, &weights, sh.count)
            .into_iter()
            .map(|s| s == sh.index)
            .collect::<Vec<bool>>()
    });
    let store_path = match a.shard {
        Some(sh) => rewardbench::shard::shard_file(&out, &info.name, sh, ".judge-cache.jsonl"),
        None => out.join(format!("{}.judge-cache.jsonl", info.name)),
    };
    let settings = JudgeSettings {
        ratings: a.score_w_ratings,
        seed: a.seed,
        both_orders: a.both_orders && !rb2,
        threads: a.num_threads.max(1),
        rows: mine.clone(),
        answers_only: merging.is_some(),
    };
    if a.dry_run && merging.is_none() {
        let answered = match a.overwrite {
            true => Default::default(),
            false => AnswerStore::answered_keys(&store_path)?,
        };
        let plan = judging::plan(&dataset, &judges, &settings, |k| answered.contains(k))?;
        print!("{}", plan_text(&plan, &judges, a, &store_path));
        return Ok(Vec::new());
    }
    if a.overwrite {
        let _ = std::fs::remove_file(&store_path);
    }
    let mut store = AnswerStore::open(&store_path)?;
    if let Some(m) = &merging {
        if m.dataset != digest {
            anyhow::bail!(
                "merge: {} no longer holds the rows its shards judged (the file changed since); run the shards again",
                dataset.path.display()
            );
        }
        // The single run's answer store: every shard's answers.
        for s in m.stores {
            store.absorb(s)?;
        }
    }
    let client = Client::new(ClientConfig {
        call_timeout: std::time::Duration::from_secs(a.timeout.max(1)),
        max_attempts: a.max_attempts.max(1),
        max_rps: a.max_rps,
        seed: a.seed,
        ..ClientConfig::default()
    })?;
    let verdicts = judging::judge(&dataset, &judges, &settings, &client, &store, a.quiet)?;
    if let (Some(sh), Some(mine)) = (a.shard, &mine) {
        let rows: Vec<_> = dataset
            .rows
            .iter()
            .zip(mine)
            .filter(|(_, m)| **m)
            .map(|(r, _)| r.clone())
            .collect();
        let part = Dataset {
            path: dataset.path.clone(),
            rows,
        };
        let outputs = rewardbench::shard::shard_file(&out, &info.name, sh, "_outputs.jsonl");
        rewardbench::report::write_file(
            &outputs,
            report::outputs_jsonl(&part, &verdicts).as_bytes(),
        )?;
        let manifest = rewardbench::shard::Manifest {
            fingerprint: fingerprint(&judges, &info, a),
            dataset: digest,
            samples: part.rows.len(),
            texts: store.len(),
            execution_provider: "api".into(),
            env: ROUTE_VARS
                .iter()
                .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
                .collect(),
            ..rewardbench::shard::Manifest::new(&info.name, sh, &store_path, gen_argv())
        };
        let (path, text) = manifest.file(&out);
        rewardbench::report::write_file(&path, text.as_bytes())?;
        println!(
            "{}: {} done: {} of {} rows judged (answers {}); once all {} shards are done: rewardbench merge {}",
            info.name,
            sh.label(),
            part.rows.len(),
            dataset.rows.len(),
            store_path.display(),
            sh.count,
            out.display()
        );
        let written = vec![store_path, outputs, path];
        let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        eprintln!("wrote {}", files.join(", "));
        return Ok(written);
    }
    let card = report::card(&dataset, &verdicts).context("scoring the judgements")?;
    let written = report::write(&dataset, &verdicts, &card, &info, &out)?;
    print!("{}", report::table(&card, &info));
    let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    eprintln!("wrote {}", files.join(", "));
    // Local files first: a failed upload leaves them as they are. The summary is written first.
    if let Some(p) = &publish {
        super::publish::after_run(p, &out, written.first().map(|p| p.as_path()))?;
    }
    Ok(written)
}

/// `--dry_run`'s lines: what would be asked, and the one bound on time a client can know.
fn plan_text(
    plan: &judging::CallPlan,
    judges: &[Judge],
    a: &GenArgs,
    store: &std::path::Path,
) -> String {
    let todo = plan.calls - plan.answered;
    let per_judge = if judges.len() > 1 {
        let each: Vec<String> = judges
            .iter()
            .zip(&plan.per_judge)
            .map(|(j, n)| format!("{} {n}", j.model))
            .collect();
        format!(" ({})", each.join(", "))
    } else {
        String::new()
    };
    let mut out = format!(
        "plan: {} rows, {} judge calls{per_judge}; {} already answered in {}, {todo} to ask\n",
        plan.rows,
        plan.calls,
        plan.answered,
        store.display()
    );
    if todo > 0 {
        out += &format!(
            "prompts to send: {} characters (about {} tokens at 4 characters a token; the judge's tokenizer decides)\n",
            plan.prompt_chars,
            plan.prompt_chars.div_ceil(4)
        );
        out += &match a.max_rps.filter(|r| *r > 0.0) {
            Some(rps) => format!(
                "estimate: at least {:.0} s at --max_rps {rps} ({todo} calls, {} at a time); the server's speed decides the rest\n",
                todo as f64 / rps,
                a.num_threads.max(1)
            ),
            None => format!(
                "estimate: none before a call is made: the time is the server's ({todo} calls, {} at a time)\n",
                a.num_threads.max(1)
            ),
        };
    }
    out + "dry run: nothing asked, no file written\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_names_stay_inside_the_output_folder() {
        let n = |m: &[&str]| result_name(&m.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(n(&["gpt-4o-2024-08-06"]), "openai/gpt-4o-2024-08-06");
        assert_eq!(n(&["Qwen/Qwen2.5-7B-Instruct"]), "Qwen/Qwen2.5-7B-Instruct");
        assert_eq!(n(&["/work/models/tiny-judge"]), "tiny-judge");
        assert_eq!(n(&["./models/judge/"]), "judge");
        assert_eq!(n(&["../x/../y"]), "y");
        assert_eq!(n(&["a/b/c"]), "c");
        assert_eq!(n(&["a", "b", "c"]), "PoLL/a_b_c");
    }
}
