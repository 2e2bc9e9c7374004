//! Reports: the summary JSON, per-example JSONL and CSV (each written atomically), and the
//! stdout table.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::eval::{Evaluation, RowResult};
use crate::pyjson::PyJson;
use crate::scoring::{self, Bootstrap, Interval, Tally};
use crate::template::RenderedPair;

/// Errors writing results.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("output folder {path} cannot be written: {source}")]
    NotWritable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Run settings recorded in the summary.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `--model` as given.
    pub model: String,
    /// `--tokenizer` as given, else the model.
    pub tokenizer: String,
    pub dataset: String,
    pub batch_size: usize,
    /// `--ref_model` as given (DPO), else none.
    pub ref_model: Option<String>,
}

/// Checks, before any compute, that `dir` can be created and written.
pub fn check_writable(dir: &Path) -> Result<(), ReportError> {
    let err = |source| ReportError::NotWritable {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let probe = dir.join(format!(".rewardbench-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(err)?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Writes `bytes` to a temporary name beside `path`, then renames it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)
}

fn score_value(s: &[f32]) -> Value {
    match s {
        [x] => json!(f64::from(*x)),
        xs => Value::Array(xs.iter().map(|x| json!(f64::from(*x))).collect()),
    }
}

/// Per-subset tallies (rows without a `subset` column count under no subset).
pub fn tallies(ev: &Evaluation) -> BTreeMap<String, Tally> {
    scoring::per_subset(
        ev.prepared
            .dataset
            .rows
            .iter()
            .zip(&ev.rows)
            .filter_map(|(row, r)| row.subset().map(|s| (s, r.correct))),
    )
}

/// Overall accuracy: correct / rows.
pub fn accuracy(ev: &Evaluation) -> f64 {
    let correct = ev.rows.iter().filter(|r| r.correct).count();
    correct as f64 / ev.rows.len().max(1) as f64
}

/// Rows whose chosen and rejected scores are equal (counted wrong).
pub fn ties(ev: &Evaluation) -> usize {
    ev.rows
        .iter()
        .filter(|r| r.score_chosen == r.score_rejected)
        .count()
}

/// The summary JSON: RewardBench's keys first, then ours.
pub fn summary(ev: &Evaluation, info: &RunInfo) -> Value {
    let t = tallies(ev);
    let acc: BTreeMap<String, f64> = t.iter().map(|(k, v)| (k.clone(), v.accuracy())).collect();
    let mut m = Map::new();
    m.insert("accuracy".into(), json!(accuracy(ev)));
    m.insert("num_prompts".into(), json!(ev.rows.len()));
    m.insert("model".into(), json!(info.model));
    m.insert("ref_model".into(), json!(info.ref_model));
    m.insert("tokenizer".into(), json!(info.tokenizer));
    m.insert("chat_template".into(), json!(ev.prepared.template_label));
    m.insert(
        "extra_results".into(),
        if acc.is_empty() {
            Value::Null
        } else {
            json!(acc)
        },
    );
    let sections = scoring::sections(&acc);
    if !sections.is_empty() {
        let s: Map<String, Value> = sections
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        m.insert("section_scores".into(), Value::Object(s));
    }
    if let Some(scores) = leaderboard_scores(&acc) {
        m.insert("leaderboard".into(), scores);
    }
    m.insert(
        "confidence_intervals".into(),
        intervals_json(&bootstrap(ev)),
    );
    m.insert(
        "subset_counts".into(),
        json!(t
            .iter()
            .map(|(k, v)| (k.clone(), v.n))
            .collect::<BTreeMap<_, _>>()),
    );
    m.insert("ties".into(), json!(ties(ev)));
    m.insert("dataset".into(), json!(info.dataset));
    let st = &ev.stats;
    m.insert(
        "evaluator".into(),
        json!({
            "name": "rewardbench-rs",
            "version": env!("CARGO_PKG_VERSION"),
            "onnxruntime_version": ev.onnxruntime_version,
            "onnxruntime_library": ev.onnxruntime_library.display().to_string(),
            "execution_provider": ev.device,
            "onnx_model": ev.prepared.model.onnx.display().to_string(),
            "batching": ev.batching.label(),
            "batch_size": info.batch_size,
            "model_calls": st.model_calls,
            "padding_ratio": if st.computed_tokens > 0 { st.pad_tokens as f64 / st.computed_tokens as f64 } else { 0.0 },
        }),
    );
    Value::Object(m)
}

/// Throughput and timings of this run (`{name}_run.json`). Kept out of the summary so the
/// summary is reproducible byte for byte, whether or not the run was resumed.
pub fn run_record(ev: &Evaluation) -> Value {
    let st = &ev.stats;
    json!({
        "pairs_per_second": if st.total_seconds > 0.0 { ev.rows.len() as f64 / st.total_seconds } else { 0.0 },
        "rows": ev.rows.len(),
        "model_calls": st.model_calls,
        "reused_calls": st.reused_calls,
        "padding_ratio": if st.computed_tokens > 0 { st.pad_tokens as f64 / st.computed_tokens as f64 } else { 0.0 },
        "pad_tokens": st.pad_tokens,
        "computed_tokens": st.computed_tokens,
        "shared_prefix_tokens": st.shared_tokens,
        "execution_provider": ev.device,
        "timings": {
            "prepare_seconds": st.prepare_seconds,
            "wait_seconds": st.wait_seconds,
            "ort_seconds": st.ort_seconds,
            "total_seconds": st.total_seconds,
        },
    })
}

/// One JSONL line per row, keys in RewardBench's order, written as Python's `json.dump` does.
pub fn outputs_jsonl(ev: &Evaluation) -> String {
    jsonl_rows(ev, |rendered, r| {
        let mut m = Map::new();
        m.insert("prompt".into(), json!(rendered.prompt));
        m.insert("results".into(), json!(u8::from(r.correct)));
        m.insert("scores_chosen".into(), score_value(&r.score_chosen));
        m.insert("scores_rejected".into(), score_value(&r.score_rejected));
        m.insert("text_chosen".into(), json!(rendered.text_chosen));
        m.insert("text_rejected".into(), json!(rendered.text_rejected));
        m
    })
}

/// One line per row: `fields` gives the leading keys, then the row's other columns follow (a
/// column never overrides a leading key), written as Python's `json.dump` does.
fn jsonl_rows(
    ev: &Evaluation,
    fields: impl Fn(&RenderedPair, &RowResult) -> Map<String, Value>,
) -> String {
    let py = PyJson::python_default();
    let mut out = String::new();
    for ((row, r), rendered) in ev
        .prepared
        .dataset
        .rows
        .iter()
        .zip(&ev.rows)
        .zip(&ev.prepared.rendered)
    {
        let mut m = fields(rendered, r);
        for (k, v) in &row.metadata {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        out.push_str(&py.dumps(&Value::Object(m)));
        out.push('\n');
    }
    out
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Per-example scores as CSV.
pub fn scores_csv(ev: &Evaluation) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "index",
        "id",
        "subset",
        "score_chosen",
        "score_rejected",
        "result",
    ])?;
    let fmt = |s: &[f32]| match s {
        [x] => crate::pyjson::py_float(f64::from(*x)),
        xs => score_value(xs).to_string(),
    };
    for (i, (row, r)) in ev.prepared.dataset.rows.iter().zip(&ev.rows).enumerate() {
        w.write_record([
            i.to_string(),
            cell(row.metadata.get("id")),
            cell(row.metadata.get("subset")),
            fmt(&r.score_chosen),
            fmt(&r.score_rejected),
            u8::from(r.correct).to_string(),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Paths of the written files.
#[derive(Debug, Clone)]
pub struct Written {
    pub summary: PathBuf,
    pub outputs: PathBuf,
    pub csv: PathBuf,
    pub run: PathBuf,
}

/// Writes `{dir}/{name}_outputs.jsonl`, `{dir}/{name}_scores.csv`, then `{dir}/{name}.json`.
pub fn write(
    ev: &Evaluation,
    info: &RunInfo,
    dir: &Path,
    name: &str,
) -> Result<Written, ReportError> {
    // A hub model's name (`org/name`) makes a subfolder, as in RewardBench.
    let sub = dir.join(name);
    let parent = sub.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(|source| ReportError::NotWritable {
        path: parent.to_path_buf(),
        source,
    })?;
    let paths = Written {
        summary: dir.join(format!("{name}.json")),
        outputs: dir.join(format!("{name}_outputs.jsonl")),
        csv: dir.join(format!("{name}_scores.csv")),
        run: dir.join(format!("{name}_run.json")),
    };
    write_atomic(&paths.outputs, outputs_jsonl(ev).as_bytes())?;
    let csv = scores_csv(ev).map_err(|e| ReportError::Write {
        path: paths.csv.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    write_atomic(&paths.csv, &csv)?;
    let mut summary = serde_json::to_string_pretty(&summary(ev, info)).unwrap_or_default();
    summary.push('\n');
    write_atomic(&paths.summary, summary.as_bytes())?;
    let mut run = serde_json::to_string_pretty(&run_record(ev)).unwrap_or_default();
    run.push('\n');
    write_atomic(&paths.run, run.as_bytes())?;
    Ok(paths)
}

/// What `--save_all` writes per row.
#[derive(Debug, Clone, Copy)]
pub enum AllScores {
    /// `{"chosen": [...], "rejected": [...]}`
    Pairs,
    /// `{"score": [...]}` (instruction data)
    Single,
}

/// `--save_all`: `{dir}/{name}_all.jsonl`, one line of scores per row.
pub fn write_all_scores(
    ev: &Evaluation,
    dir: &Path,
    name: &str,
    kind: AllScores,
) -> Result<PathBuf, ReportError> {
    let py = PyJson::python_default();
    let list = |s: &[f32]| s.iter().map(|x| f64::from(*x)).collect::<Vec<_>>();
    let lines: String = ev
        .rows
        .iter()
        .map(|r| {
            let v = match kind {
                AllScores::Pairs => {
                    json!({"chosen": list(&r.score_chosen), "rejected": list(&r.score_rejected)})
                }
                AllScores::Single => json!({"score": list(&r.score_chosen)}),
            };
            format!("{}\n", py.dumps(&v))
        })
        .collect();
    let path = dir.join(format!("{name}_all.jsonl"));
    write_atomic(&path, lines.as_bytes())?;
    Ok(path)
}

/// The stdout table: per-subset accuracy, sections, the leaderboard Scores, overall; each
/// with its 95 % bootstrap interval.
pub fn table(ev: &Evaluation, info: &RunInfo) -> String {
    let t = tallies(ev);
    let acc: BTreeMap<String, f64> = t.iter().map(|(k, v)| (k.clone(), v.accuracy())).collect();
    let b = bootstrap(ev);
    let width = t.keys().map(String::len).max().unwrap_or(0).max(30);
    let ci = |iv: Option<&Interval>| {
        iv.map_or(String::new(), |iv| {
            format!("[{:.4}, {:.4}]", iv.low, iv.high)
        })
    };
    let mut s = String::new();
    s.push_str(&format!(
        "model: {}\ndataset: {}\n",
        info.model, info.dataset
    ));
    s.push_str(&format!(
        "{:<width$} {:>6} {:>9}  {:.0}% CI\n",
        "subset",
        "n",
        "accuracy",
        b.level * 100.0
    ));
    let mut line = |label: String, n: String, v: f64, iv: Option<&Interval>| {
        s.push_str(format!("{label:<width$} {n:>6} {v:>9.4}  {}", ci(iv)).trim_end());
        s.push('\n');
    };
    for (name, tally) in &t {
        line(
            name.clone(),
            tally.n.to_string(),
            tally.accuracy(),
            b.subsets.get(name),
        );
    }
    let sections = scoring::sections(&acc);
    for (section, score) in &sections {
        let iv = b
            .sections
            .iter()
            .find(|(n, _)| n == section)
            .map(|(_, iv)| iv);
        line(format!("[section] {section}"), String::new(), *score, iv);
    }
    if let Some(p) = scoring::prior_sets(&acc) {
        line("[Prior Sets]".into(), String::new(), p, None);
    }
    if let Some(score) = scoring::leaderboard_score(&sections) {
        line(
            "[Score] mean of 4 sections".into(),
            String::new(),
            score,
            b.score.as_ref(),
        );
        if let Some(paper) =
            scoring::prior_sets(&acc).and_then(|p| scoring::paper_score(&sections, Some(p)))
        {
            line(
                "[Score] paper (2,2,2,2,1 w/ Prior)".into(),
                String::new(),
                paper,
                b.paper_score.as_ref(),
            );
        }
    }
    line(
        "overall".into(),
        ev.rows.len().to_string(),
        accuracy(ev),
        Some(&b.accuracy),
    );
    s
}

/// Each row's verdict, grouped by subset (rows without one under `""`).
pub fn verdicts(ev: &Evaluation) -> BTreeMap<String, Vec<bool>> {
    let mut out: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    for (row, r) in ev.prepared.dataset.rows.iter().zip(&ev.rows) {
        out.entry(row.subset().unwrap_or("").to_string())
            .or_default()
            .push(r.correct);
    }
    out
}

/// 95 % percentile-bootstrap intervals of this run (1000 resamples, fixed seed).
pub fn bootstrap(ev: &Evaluation) -> Bootstrap {
    scoring::bootstrap(
        &verdicts(ev),
        scoring::BOOTSTRAP_RESAMPLES,
        scoring::BOOTSTRAP_SEED,
        scoring::BOOTSTRAP_LEVEL,
    )
}

/// The summary's `leaderboard` object: `Score` (mean of the four sections, when all four
/// are present), `Prior Sets` (when any prior set is present) and `Score (paper)` (weights
/// 2,2,2,2,1 with Prior Sets, when both exist). `None` when there is nothing to show.
pub fn leaderboard_scores(acc: &BTreeMap<String, f64>) -> Option<Value> {
    let sections = scoring::sections(acc);
    let prior = scoring::prior_sets(acc);
    let mut m = Map::new();
    if let Some(s) = scoring::leaderboard_score(&sections) {
        m.insert("Score".into(), json!(s));
    }
    if let Some(p) = prior {
        m.insert("Prior Sets".into(), json!(p));
        if let Some(s) = scoring::paper_score(&sections, Some(p)) {
            m.insert("Score (paper)".into(), json!(s));
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

fn pair(iv: &Interval) -> Value {
    json!([iv.low, iv.high])
}

/// The summary's `confidence_intervals` object.
pub fn intervals_json(b: &Bootstrap) -> Value {
    let mut m = Map::new();
    m.insert(
        "method".into(),
        json!("percentile bootstrap: prompts resampled with replacement within each subset"),
    );
    m.insert("level".into(), json!(b.level));
    m.insert("resamples".into(), json!(b.resamples));
    m.insert("seed".into(), json!(b.seed));
    m.insert("accuracy".into(), pair(&b.accuracy));
    m.insert(
        "subsets".into(),
        Value::Object(
            b.subsets
                .iter()
                .map(|(k, v)| (k.clone(), pair(v)))
                .collect(),
        ),
    );
    if !b.sections.is_empty() {
        m.insert(
            "sections".into(),
            Value::Object(
                b.sections
                    .iter()
                    .map(|(k, v)| (k.to_string(), pair(v)))
                    .collect(),
            ),
        );
    }
    if let Some(iv) = &b.score {
        m.insert("Score".into(), pair(iv));
    }
    if let Some(iv) = &b.paper_score {
        m.insert("Score (paper)".into(), pair(iv));
    }
    Value::Object(m)
}

/// Instruction data (no pairs): one JSONL line per row with the reference's keys `prompt`,
/// `results` (the raw score), `text`, then the row's other columns.
pub fn instruction_outputs_jsonl(ev: &Evaluation) -> String {
    jsonl_rows(ev, |rendered, r| {
        let mut m = Map::new();
        m.insert("prompt".into(), json!(rendered.prompt));
        m.insert("results".into(), score_value(&r.score_chosen));
        m.insert("text".into(), json!(rendered.text_chosen));
        m
    })
}

/// Instruction data: `index,id,score` per row.
pub fn instruction_scores_csv(ev: &Evaluation) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["index", "id", "score"])?;
    for (i, (row, r)) in ev.prepared.dataset.rows.iter().zip(&ev.rows).enumerate() {
        let score = match r.score_chosen.as_slice() {
            [x] => crate::pyjson::py_float(f64::from(*x)),
            xs => score_value(xs).to_string(),
        };
        w.write_record([i.to_string(), cell(row.metadata.get("id")), score])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Writes `{dir}/{name}_outputs.jsonl` and `{dir}/{name}_scores.csv` for instruction data
/// (no summary JSON: there is no accuracy, as in RewardBench). Returns the two paths.
pub fn write_instructions(
    ev: &Evaluation,
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, PathBuf), ReportError> {
    let sub = dir.join(name);
    let parent = sub.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(|source| ReportError::NotWritable {
        path: parent.to_path_buf(),
        source,
    })?;
    let outputs = dir.join(format!("{name}_outputs.jsonl"));
    let csv_path = dir.join(format!("{name}_scores.csv"));
    write_atomic(&outputs, instruction_outputs_jsonl(ev).as_bytes())?;
    let csv = instruction_scores_csv(ev).map_err(|e| ReportError::Write {
        path: csv_path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    write_atomic(&csv_path, &csv)?;
    Ok((outputs, csv_path))
}
