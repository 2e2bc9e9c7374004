//! RewardBench 2's reports of best-of-N rows: the summary JSON (run_v2's keys, sorted as it
//! writes them, then ours), per-prompt JSONL, the per-item column dict run_v2 writes to
//! `eval-set-scores/`, per-completion CSV, and the stdout table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{rb2_order, run_record, write_atomic, ReportError, RunInfo};
use crate::config::RunConfig;
use crate::pyjson::PyJson;
use crate::scorer::rm::Evaluation;
use crate::scoring::bon::{BonRow, Card, Intervals};
use crate::scoring::Interval;

/// Each prompt row's scores for the scorecard: each completion's first label, chosen first.
pub fn bon_rows(ev: &Evaluation) -> Vec<BonRow> {
    ev.prepared
        .dataset
        .rows
        .iter()
        .zip(&ev.rows)
        .map(|(row, r)| BonRow {
            subset: row.subset().map(str::to_string),
            id: row.id_text(),
            scores: completion_scores(r),
            num_correct: row.num_correct(),
        })
        .collect()
}

fn completion_scores(r: &crate::scorer::rm::RowResult) -> Vec<f64> {
    r.outcome
        .chosen
        .iter()
        .chain(&r.outcome.rejected)
        .map(|s| s.first().map_or(f64::NAN, |&x| f64::from(x)))
        .collect()
}

fn pair(iv: &Interval) -> Value {
    json!([iv.low, iv.high])
}

/// The summary's `confidence_intervals` of a RewardBench 2 scorecard.
pub fn intervals_json(iv: &Intervals) -> Value {
    let mut ci = Map::new();
    ci.insert(
        "method".into(),
        json!("percentile bootstrap: prompts resampled with replacement within each subset; Ties by prompt id (ref and tied together)"),
    );
    ci.insert("level".into(), json!(iv.level));
    ci.insert("resamples".into(), json!(iv.resamples));
    ci.insert("seed".into(), json!(iv.seed));
    ci.insert(
        "subsets".into(),
        Value::Object(
            iv.subsets
                .iter()
                .map(|(k, v)| (k.clone(), pair(v)))
                .collect(),
        ),
    );
    ci.insert("Score".into(), iv.score.as_ref().map_or(Value::Null, pair));
    Value::Object(ci)
}

/// run_v2's `model_type`: the registry entry's, else the default's.
fn model_type(info: &RunInfo) -> &str {
    info.model_type
        .as_deref()
        .unwrap_or(crate::registry::DEFAULT_MODEL_TYPE)
}

/// The summary: run_v2's keys (`model`, `model_type`, `chat_template`, one float per subset)
/// and `Score`, then this evaluator's provenance; keys sorted, as run_v2's `sort_keys=True`.
pub fn summary(ev: &Evaluation, card: &Card, info: &RunInfo, cfg: &RunConfig) -> Value {
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    m.insert("model".into(), json!(info.model));
    m.insert("model_type".into(), json!(model_type(info)));
    m.insert("chat_template".into(), json!(ev.prepared.template_label));
    if info.debug {
        m.insert("debug".into(), json!(true));
    }
    for (k, v) in &card.subsets {
        m.insert(k.clone(), json!(v));
    }
    m.insert("Score".into(), json!(card.score));
    m.insert(
        "confidence_intervals".into(),
        intervals_json(&card.intervals),
    );
    m.insert("subset_counts".into(), json!(card.counts));
    m.extend(super::length::of_best_of_n(ev, card));
    if let Some(t) = &card.ties {
        m.insert(
            "ties_composite".into(),
            json!({
                "ref_accuracy": t.ref_accuracy,
                "tied_accuracy": t.tied_accuracy,
                "correctness_preferred": t.correctness_preferred,
                "correctness_preferred_hard": t.correctness_preferred_hard,
                "margin_score": t.margin_score,
            }),
        );
    }
    m.insert(
        "dataset".into(),
        json!({
            "name": info.dataset,
            "revision": cfg.data.spec.commit(),
            "split": cfg.data.spec.effective_split(),
            "prompts": ev.rows.len(),
        }),
    );
    m.insert(
        "truncation".into(),
        match ev.prepared.truncation {
            Some(t) => json!({
                "max_length": t.max_length,
                "side": t.side.label(),
                "truncated_texts": ev.prepared.truncated,
            }),
            None => Value::Null,
        },
    );
    m.insert("score_dtype".into(), json!(cfg.scoring.score_dtype.label()));
    if let Some(h) = &ev.stats.reward_head {
        m.insert("reward_head".into(), h.clone());
    }
    if let Some(c) = &info.model_config {
        m.insert("model_config".into(), c.clone());
    }
    m.insert("tokenizer".into(), json!(info.tokenizer));
    m.insert(
        "evaluator".into(),
        json!({
            "name": "rewardbench-rs",
            "version": env!("CARGO_PKG_VERSION"),
            "onnxruntime_version": ev.onnxruntime_version,
            "execution_provider": ev.device,
            "onnx_model": super::json::onnx_in_model(ev),
            "batching": ev.batching.label(),
            "batch_size": info.batch_size,
            "model_calls": ev.stats.model_calls,
        }),
    );
    Value::Object(m.into_iter().collect())
}

/// One line per prompt row, dataset order: `id`, `subset`, `num_correct`, `scores` (one per
/// completion, chosen first), `results` (null for Ties), `texts`, `sample_hash`.
pub fn outputs_jsonl(ev: &Evaluation, card: &Card) -> String {
    let py = PyJson::python_default();
    let mut out = String::new();
    for (((row, r), rendered), result) in ev
        .prepared
        .dataset
        .rows
        .iter()
        .zip(&ev.rows)
        .zip(&ev.prepared.rendered)
        .zip(&card.results)
    {
        let mut m = Map::new();
        m.insert(
            "id".into(),
            row.metadata.get("id").cloned().unwrap_or(Value::Null),
        );
        m.insert("subset".into(), json!(row.subset()));
        m.insert("num_correct".into(), json!(row.num_correct()));
        m.insert("scores".into(), json!(completion_scores(r)));
        m.insert("results".into(), json!(result));
        m.insert("texts".into(), json!(rendered.texts().collect::<Vec<_>>()));
        m.insert("sample_hash".into(), json!(row.content_hash()));
        out.push_str(&py.dumps(&Value::Object(m)));
        out.push('\n');
    }
    out
}

/// run_v2's per-item file (`eval-set-scores/{model}.json`): the columns `text`, `scores`
/// (each `[x]`), `results`, `subset`, `id`, `num_correct` as lists, plus `model`,
/// `model_type`, `chat_template`. Ties rows get `results` null (upstream leaves them the
/// re-roll credit by a case bug; the Ties score is the composite).
pub fn per_item_json(ev: &Evaluation, card: &Card, info: &RunInfo) -> Value {
    let rows = &ev.prepared.dataset.rows;
    let col = |f: &dyn Fn(usize) -> Value| Value::Array((0..rows.len()).map(f).collect());
    let mut m = Map::new();
    m.insert(
        "text".into(),
        col(&|i| json!(ev.prepared.rendered[i].texts().collect::<Vec<_>>())),
    );
    m.insert(
        "scores".into(),
        col(&|i| {
            json!(completion_scores(&ev.rows[i])
                .iter()
                .map(|s| vec![*s])
                .collect::<Vec<_>>())
        }),
    );
    m.insert("results".into(), col(&|i| json!(card.results[i])));
    m.insert("subset".into(), col(&|i| json!(rows[i].subset())));
    m.insert(
        "id".into(),
        col(&|i| rows[i].metadata.get("id").cloned().unwrap_or(Value::Null)),
    );
    m.insert("num_correct".into(), col(&|i| json!(rows[i].num_correct())));
    m.insert("model".into(), json!(info.model));
    m.insert("model_type".into(), json!(model_type(info)));
    m.insert("chat_template".into(), json!(ev.prepared.template_label));
    Value::Object(m)
}

/// One CSV row per completion: `index,id,subset,completion,correct,score,tokens,truncated`.
pub fn scores_csv(ev: &Evaluation) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "index",
        "id",
        "subset",
        "completion",
        "correct",
        "score",
        "tokens",
        "truncated",
    ])?;
    let p = &ev.prepared;
    for (i, ((row, r), seqs)) in p
        .dataset
        .rows
        .iter()
        .zip(&ev.rows)
        .zip(&p.seq_of)
        .enumerate()
    {
        let id = row.id_text().unwrap_or_default();
        let subset = row.subset().unwrap_or_default();
        let nc = row.num_correct();
        for (k, (score, &s)) in completion_scores(r).iter().zip(seqs).enumerate() {
            let seq = &p.seqs[s];
            w.write_record([
                i.to_string(),
                id.clone(),
                subset.to_string(),
                k.to_string(),
                u8::from(k < nc).to_string(),
                crate::pyjson::py_float(*score),
                seq.ids.len().to_string(),
                u8::from(seq.truncated).to_string(),
            ])?;
        }
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The stdout table: each subset's score with its interval, then the Score.
pub fn table(ev: &Evaluation, card: &Card, info: &RunInfo) -> String {
    let iv = &card.intervals;
    let width = card
        .subsets
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(24);
    let ci = |i: Option<&Interval>| {
        i.map_or(String::new(), |i| format!("[{:.4}, {:.4}]", i.low, i.high))
    };
    let mut s = format!(
        "model: {}\ndataset: {} (RewardBench 2 scoring: best-of-N, 1/k tie credit, Ties composite)\n",
        info.model, info.dataset
    );
    s.push_str(&format!(
        "{:<width$} {:>6} {:>9}  {:.0}% CI\n",
        "subset",
        "n",
        "score",
        iv.level * 100.0
    ));
    let mut line = |label: &str, n: String, v: f64, i: Option<&Interval>| {
        s.push_str(format!("{label:<width$} {n:>6} {v:>9.4}  {}", ci(i)).trim_end());
        s.push('\n');
    };
    for name in rb2_order(card.subsets.keys()) {
        let n = card.counts.get(name).copied().unwrap_or(0).to_string();
        line(name, n, card.subsets[name], iv.subsets.get(name));
    }
    match card.score {
        Some(score) => line(
            "[Score] mean of 6 subsets",
            String::new(),
            score,
            iv.score.as_ref(),
        ),
        None => s.push_str(
            "[Score] needs all six subsets (Factuality, Precise IF, Math, Safety, Focus, Ties)\n",
        ),
    }
    if let Some(t) = ev.prepared.truncation.filter(|t| t.cut) {
        s.push_str(&format!(
            "truncated {} text(s) at {} tokens ({} side)\n",
            ev.prepared.truncated,
            t.max_length,
            t.side.label()
        ));
    }
    s.push_str(&super::length::block(&super::length::of_best_of_n(
        ev, card,
    )));
    s
}

/// Paths of the written files.
#[derive(Debug, Clone)]
pub struct Written {
    pub summary: PathBuf,
    pub outputs: PathBuf,
    pub per_item: PathBuf,
    pub csv: PathBuf,
    pub run: PathBuf,
}

impl Written {
    pub fn all(&self) -> Vec<PathBuf> {
        vec![
            self.summary.clone(),
            self.outputs.clone(),
            self.per_item.clone(),
            self.csv.clone(),
            self.run.clone(),
        ]
    }
}

/// Writes `{dir}/{name}_outputs.jsonl`, `{dir}/eval-set-scores/{name}.json`,
/// `{dir}/{name}_scores.csv`, `{dir}/{name}_run.json`, then `{dir}/{name}.json` (the summary
/// last: a folder with a summary holds a finished run). Each file is written atomically.
pub fn write(
    ev: &Evaluation,
    card: &Card,
    info: &RunInfo,
    cfg: &RunConfig,
    dir: &Path,
    name: &str,
) -> Result<Written, ReportError> {
    let paths = Written {
        summary: dir.join(format!("{name}.json")),
        outputs: dir.join(format!("{name}_outputs.jsonl")),
        per_item: dir.join("eval-set-scores").join(format!("{name}.json")),
        csv: dir.join(format!("{name}_scores.csv")),
        run: dir.join(format!("{name}_run.json")),
    };
    for p in [&paths.summary, &paths.per_item] {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ReportError::NotWritable {
                path: parent.to_path_buf(),
                source,
            })?;
        }
    }
    write_atomic(&paths.outputs, outputs_jsonl(ev, card).as_bytes())?;
    let per_item = PyJson::python_default().dumps(&per_item_json(ev, card, info));
    write_atomic(&paths.per_item, per_item.as_bytes())?;
    let csv = scores_csv(ev).map_err(|e| ReportError::Write {
        path: paths.csv.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    write_atomic(&paths.csv, &csv)?;
    // v1's record counts pairs; a best-of-N run counts prompts and texts.
    let mut record = run_record(ev);
    if let Some(obj) = record.as_object_mut() {
        let per_s = obj.remove("pairs_per_second").unwrap_or(Value::Null);
        obj.insert("prompts_per_second".into(), per_s);
        let st = &ev.stats;
        let texts = ev.prepared.seq_of.iter().map(Vec::len).sum::<usize>();
        obj.insert(
            "texts_per_second".into(),
            json!(if st.total_seconds > 0.0 {
                texts as f64 / st.total_seconds
            } else {
                0.0
            }),
        );
    }
    super::write_run_record(&paths.run, &record, ev)?;
    let py = PyJson::save_to_hub();
    let mut summary = py.dumps(&summary(ev, card, info, cfg));
    summary.push('\n');
    write_atomic(&paths.summary, summary.as_bytes())?;
    Ok(paths)
}
