//! Per-example scores as CSV (pairs: `index,id,subset,...,result`; instructions: `index,id,score`).

use serde_json::Value;

use super::{completions_value, score_value};
use crate::scorer::rm::Evaluation;

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
    let fmt = |s: &[Vec<f32>]| match s {
        [one] => match one.as_slice() {
            [x] => crate::pyjson::py_float(f64::from(*x)),
            xs => score_value(xs).to_string(),
        },
        many => completions_value(many).to_string(),
    };
    for (i, (row, r)) in ev.prepared.dataset.rows.iter().zip(&ev.rows).enumerate() {
        w.write_record([
            i.to_string(),
            cell(row.metadata.get("id")),
            cell(row.metadata.get("subset")),
            fmt(&r.outcome.chosen),
            fmt(&r.outcome.rejected),
            u8::from(r.correct).to_string(),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Instruction data: `index,id,score` per row.
pub fn instruction_scores_csv(ev: &Evaluation) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["index", "id", "score"])?;
    for (i, (row, r)) in ev.prepared.dataset.rows.iter().zip(&ev.rows).enumerate() {
        let score = match r.score_chosen() {
            [x] => crate::pyjson::py_float(f64::from(*x)),
            xs => score_value(xs).to_string(),
        };
        w.write_record([i.to_string(), cell(row.metadata.get("id")), score])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}
