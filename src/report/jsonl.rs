//! Per-example JSONL, keys in RewardBench's order, written as Python's `json.dump` does.

use serde_json::{json, Map, Value};

use super::{completions_value, score_value, texts_value};
use crate::prompt::Rendered;
use crate::pyjson::PyJson;
use crate::scorer::rm::{Evaluation, RowResult};

/// One JSONL line per row, keys in RewardBench's order, written as Python's `json.dump` does.
pub fn outputs_jsonl(ev: &Evaluation) -> String {
    outputs_jsonl_of(ev, None)
}

/// [`outputs_jsonl`] of the rows `keep` selects (all when `None`): a shard's partial view.
pub fn outputs_jsonl_of(ev: &Evaluation, keep: Option<&[bool]>) -> String {
    jsonl_rows(ev, keep, |rendered, r| {
        let mut m = Map::new();
        m.insert("prompt".into(), json!(rendered.prompt));
        m.insert("results".into(), json!(u8::from(r.correct)));
        m.insert("scores_chosen".into(), completions_value(&r.outcome.chosen));
        m.insert(
            "scores_rejected".into(),
            completions_value(&r.outcome.rejected),
        );
        m.insert("text_chosen".into(), texts_value(&rendered.chosen));
        m.insert("text_rejected".into(), texts_value(&rendered.rejected));
        m
    })
}

/// One line per row: `fields` gives the leading keys, then the row's other columns follow (a
/// column never overrides a leading key), then `sample_hash` (the row's content hash),
/// written as Python's `json.dump` does.
fn jsonl_rows(
    ev: &Evaluation,
    keep: Option<&[bool]>,
    fields: impl Fn(&Rendered, &RowResult) -> Map<String, Value>,
) -> String {
    let py = PyJson::python_default();
    let mut out = String::new();
    for (i, ((row, r), rendered)) in ev
        .prepared
        .dataset
        .rows
        .iter()
        .zip(&ev.rows)
        .zip(&ev.prepared.rendered)
        .enumerate()
    {
        if keep.is_some_and(|k| !k.get(i).copied().unwrap_or(false)) {
            continue;
        }
        let mut m = fields(rendered, r);
        for (k, v) in &row.metadata {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        m.insert("sample_hash".into(), json!(row.content_hash()));
        out.push_str(&py.dumps(&Value::Object(m)));
        out.push('\n');
    }
    out
}

/// Instruction data (no pairs): one JSONL line per row with the reference's keys `prompt`,
/// `results` (the raw score), `text`, then the row's other columns.
pub fn instruction_outputs_jsonl(ev: &Evaluation) -> String {
    jsonl_rows(ev, None, |rendered, r| {
        let mut m = Map::new();
        m.insert("prompt".into(), json!(rendered.prompt));
        m.insert("results".into(), score_value(r.score_chosen()));
        m.insert("text".into(), texts_value(&rendered.chosen));
        m
    })
}
