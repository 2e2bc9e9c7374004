//! `--save_token_rewards`: `{name}_token_rewards.jsonl`, the head of a per-token export at
//! every position of every text, for analysis (upstream's `analysis/get_per_token_reward.py`).
//!
//! One line per text of each row, rows in dataset order, a row's chosen completions first:
//! `index` (the row), `id` and `subset` (the row's, or null), `side` (`chosen`, `rejected`, or
//! `instruction` for instruction data), `completion` (its place among that side's
//! completions, from 0), `input_ids` (the text's tokens, as the model read them), `pooled_at`
//! (the position the score was read at; null when the rule read a padding column of
//! RewardBench's left-padded batches, `--batching reference`), `score` (the text's score as
//! in `{name}_outputs.jsonl`) and `rewards`: one entry per token, the head's output there
//! after `--score_column` / `--score_transform` (a number when that is one number, else the
//! list of labels), before `--score_dtype` rounding; null where the attention mask is 0 (a
//! masked double BOS attends to nothing, so its value depends on the batch's padding). So
//! `rewards[pooled_at]` is the score.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{score_value, write_atomic, ReportError};
use crate::pyjson::PyJson;
use crate::scorer::pooling::TokenRow;
use crate::scorer::rm::Evaluation;

/// Where `--save_token_rewards` writes for the model named `name`.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}_token_rewards.jsonl"))
}

/// Writes the file from each sequence's [`TokenRow`] (already through the score's column and
/// transform); a text without one (another shard's) is left out.
pub fn write(
    ev: &Evaluation,
    tokens: &[Option<TokenRow>],
    dir: &Path,
) -> Result<PathBuf, ReportError> {
    let name = ev.prepared.model.name();
    let out = path(dir, &name);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|source| ReportError::NotWritable {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let py = PyJson::python_default();
    let instructions = ev.prepared.rendered.iter().all(|r| r.rejected.is_empty());
    let mut text = String::new();
    for (i, ((row, r), seqs)) in ev
        .prepared
        .dataset
        .rows
        .iter()
        .zip(&ev.rows)
        .zip(&ev.prepared.seq_of)
        .enumerate()
    {
        let n_chosen = r.outcome.chosen.len();
        for (k, &s) in seqs.iter().enumerate() {
            let Some(t) = tokens.get(s).and_then(Option::as_ref) else {
                continue;
            };
            let (side, completion, score) = match (instructions, k < n_chosen) {
                (true, _) => ("instruction", k, r.outcome.chosen.get(k)),
                (false, true) => ("chosen", k, r.outcome.chosen.get(k)),
                (false, false) => (
                    "rejected",
                    k - n_chosen,
                    r.outcome.rejected.get(k - n_chosen),
                ),
            };
            let mut m = Map::new();
            m.insert("index".into(), json!(i));
            m.insert(
                "id".into(),
                row.metadata.get("id").cloned().unwrap_or(Value::Null),
            );
            m.insert("subset".into(), json!(row.subset()));
            m.insert("side".into(), json!(side));
            m.insert("completion".into(), json!(completion));
            m.insert("input_ids".into(), json!(ev.prepared.seqs[s].ids));
            m.insert("pooled_at".into(), json!(t.pooled_at));
            m.insert(
                "score".into(),
                score.map_or(Value::Null, |v| score_value(v)),
            );
            let mask = &ev.prepared.seqs[s].mask;
            let rewards = t.values.iter().zip(mask).map(|(v, &m)| match m {
                0 => Value::Null,
                _ => score_value(v),
            });
            m.insert("rewards".into(), Value::Array(rewards.collect()));
            text.push_str(&py.dumps(&Value::Object(m)));
            text.push('\n');
        }
    }
    write_atomic(&out, text.as_bytes())?;
    Ok(out)
}
