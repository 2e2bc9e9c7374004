//! Best-of-N rows (RewardBench 2's columns `total_completions`, `num_correct`,
//! `num_incorrect`, Ties ids `ref:N` / `tied:N`): the checks its scoring relies on, each
//! failure naming the file, row and field.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{DataError, Sample};

/// True for the Ties subset, matched as run_v2 matches it (`subset.lower() == "ties"`).
pub fn is_ties(subset: &str) -> bool {
    subset.eq_ignore_ascii_case("ties")
}

/// A Ties id: `ref:N` is the prompt with one correct answer, `tied:N` the one with several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TiesId {
    pub is_ref: bool,
    pub n: i64,
}

impl TiesId {
    /// Parses `ref:N` / `tied:N` (N an integer), as upstream splits it.
    pub fn parse(id: &str) -> Option<Self> {
        let (kind, n) = id.split_once(':')?;
        let n = n.trim().parse().ok()?;
        match kind {
            "ref" => Some(Self { is_ref: true, n }),
            "tied" => Some(Self { is_ref: false, n }),
            _ => None,
        }
    }
}

impl Sample {
    /// True when `chosen` or `rejected` was a list of completions (a best-of-N row).
    pub fn is_best_of_n(&self) -> bool {
        ["chosen", "rejected"]
            .iter()
            .any(|k| self.metadata.get(*k).is_some_and(Value::is_array))
    }

    /// `num_correct`: the column when present (checked by [`check`]), else the chosen count.
    pub fn num_correct(&self) -> usize {
        self.metadata
            .get("num_correct")
            .and_then(Value::as_u64)
            .map_or(self.chosen.len(), |n| n as usize)
    }

    /// The `id` column as text (a number as its digits), if there is one.
    pub fn id_text(&self) -> Option<String> {
        match self.metadata.get("id")? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// Checks best-of-N rows: `total_completions` = chosen + rejected, `num_correct` = the chosen
/// count (at least 1), `num_incorrect` = the rejected count; in the Ties subset every id is
/// `ref:N` or `tied:N`, a tied row has at least two correct answers, and every tied prompt
/// has its ref row.
pub fn check(path: &Path, rows: &[Sample]) -> Result<(), DataError> {
    let field = |row: &Sample, field: &str, problem: String| DataError::Field {
        path: path.to_path_buf(),
        place: row.place.clone(),
        field: field.to_string(),
        problem,
    };
    let count = |row: &Sample, name: &str| -> Result<Option<usize>, DataError> {
        match row.metadata.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .map(|n| Some(n as usize))
                .ok_or_else(|| {
                    field(
                        row,
                        name,
                        format!("expected a non-negative integer, found {v}"),
                    )
                }),
        }
    };
    let mut refs: BTreeMap<i64, ()> = BTreeMap::new();
    let mut tied: Vec<(i64, &Sample)> = Vec::new();
    for row in rows {
        let (c, r) = (row.chosen.len(), row.rejected.len());
        if let Some(total) = count(row, "total_completions")? {
            if total != c + r {
                return Err(field(
                    row,
                    "total_completions",
                    format!(
                        "is {total} but the row has {c} chosen + {r} rejected = {} completions",
                        c + r
                    ),
                ));
            }
        }
        if let Some(n) = count(row, "num_correct")? {
            if n == 0 || n > c + r {
                return Err(field(
                    row,
                    "num_correct",
                    format!("is {n}, out of range 1..={} (the row's completions)", c + r),
                ));
            }
            if n != c {
                return Err(field(
                    row,
                    "num_correct",
                    format!("is {n} but `chosen` holds {c} completion(s) (the correct answers)"),
                ));
            }
        }
        if let Some(n) = count(row, "num_incorrect")? {
            if n != r {
                return Err(field(
                    row,
                    "num_incorrect",
                    format!("is {n} but `rejected` holds {r} completion(s)"),
                ));
            }
        }
        if !row.subset().is_some_and(is_ties) {
            continue;
        }
        let id = row.id_text().unwrap_or_default();
        let Some(tid) = TiesId::parse(&id) else {
            return Err(field(
                row,
                "id",
                format!(
                    "`{id}` is not `ref:N` or `tied:N` (N an integer), as the Ties subset needs"
                ),
            ));
        };
        if tid.is_ref {
            refs.insert(tid.n, ());
        } else {
            if c < 2 {
                return Err(field(
                    row,
                    "chosen",
                    format!("a tied row needs at least two correct answers; `{id}` has {c}"),
                ));
            }
            tied.push((tid.n, row));
        }
    }
    if let Some((n, row)) = tied.into_iter().find(|(n, _)| !refs.contains_key(n)) {
        return Err(DataError::Row {
            path: path.to_path_buf(),
            place: row.place.clone(),
            problem: format!("Ties prompt {n} has a `tied:{n}` row but no `ref:{n}` row"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_ids() {
        assert_eq!(TiesId::parse("ref:3"), Some(TiesId { is_ref: true, n: 3 }));
        assert_eq!(
            TiesId::parse("tied:12"),
            Some(TiesId {
                is_ref: false,
                n: 12
            })
        );
        assert_eq!(TiesId::parse("tie:1"), None);
        assert_eq!(TiesId::parse("ref:x"), None);
        assert_eq!(TiesId::parse("7"), None);
        assert!(is_ties("Ties") && is_ties("ties") && !is_ties("Focus"));
    }
}
