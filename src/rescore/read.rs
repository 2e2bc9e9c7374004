//! Reading per-item files: Python's JSON (bare NaN and Infinity), the v1 and v2 column
//! dicts, each cell checked and named by row and column.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::{PerItemFile, RescoreError, Rows, Shape, V1Row, V2Row, V1_COLUMNS, V2_COLUMNS};
use crate::data::bon::{is_ties, TiesId};

/// Strings standing for Python's `NaN`, `Infinity`, `-Infinity` (json.dumps writes them bare;
/// JSON has no such numbers). A NUL cannot occur unescaped in JSON text, so no real string
/// reads as one of these in a numeric column by accident.
const NAN: &str = "\u{0}NaN";
const INF: &str = "\u{0}Infinity";
const NEG_INF: &str = "\u{0}-Infinity";

/// Python's JSON: bare `NaN`, `Infinity` and `-Infinity` outside strings become the string
/// sentinels above; everything else is kept. `None` when there is none (the common case).
pub(super) fn python_constants(text: &str) -> Option<String> {
    if !text.contains("NaN") && !text.contains("Infinity") {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    let mut changed = false;
    while let Some(c) = rest.chars().next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else {
            let token = [("NaN", NAN), ("Infinity", INF), ("-Infinity", NEG_INF)]
                .into_iter()
                .find(|(t, _)| rest.starts_with(t));
            if let Some((t, sentinel)) = token {
                out.push_str(&serde_json::to_string(sentinel).unwrap_or_default());
                rest = &rest[t.len()..];
                changed = true;
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    changed.then_some(out)
}

/// Parses JSON as Python's `json.load` does (bare NaN / Infinity accepted).
pub fn parse_python_json(text: &str) -> Result<Value, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(e) => match python_constants(text) {
            Some(t) => serde_json::from_str(&t),
            None => Err(e),
        },
    }
}

/// Reads and parses one per-item file.
pub fn read(path: &Path) -> Result<PerItemFile, RescoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| RescoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let v = parse_python_json(&text).map_err(|source| RescoreError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &v)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A number, or one of the NaN / ±Infinity sentinels.
pub(super) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s == NAN => Some(f64::NAN),
        Value::String(s) if s == INF => Some(f64::INFINITY),
        Value::String(s) if s == NEG_INF => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// The columns of a file, checked: every list has the reference column's length.
struct Columns<'a> {
    path: &'a Path,
    obj: &'a Map<String, Value>,
    n: usize,
}

impl<'a> Columns<'a> {
    fn new(
        path: &'a Path,
        obj: &'a Map<String, Value>,
        shape: Shape,
    ) -> Result<Self, RescoreError> {
        let names: &[&'static str] = match shape {
            Shape::V1 => &V1_COLUMNS,
            Shape::V2 => &V2_COLUMNS,
        };
        let mut n = None;
        for &name in names {
            let Some(v) = obj.get(name) else {
                return Err(RescoreError::MissingColumn {
                    path: path.to_path_buf(),
                    shape,
                    column: name,
                });
            };
            let Value::Array(a) = v else {
                return Err(RescoreError::NotAList {
                    path: path.to_path_buf(),
                    column: name.to_string(),
                    found: kind(v),
                });
            };
            n.get_or_insert(a.len());
        }
        let reference = names[0];
        let n = n.unwrap_or(0);
        // Required columns first (their problems are the likelier), then the file's others.
        let order = names
            .iter()
            .map(|s| (*s, &obj[*s]))
            .chain(obj.iter().map(|(k, v)| (k.as_str(), v)));
        for (name, v) in order {
            if let Value::Array(a) = v {
                if a.len() != n {
                    return Err(RescoreError::Ragged {
                        path: path.to_path_buf(),
                        column: name.to_string(),
                        len: a.len(),
                        reference,
                        expected: n,
                    });
                }
            }
        }
        if let Some(v) = obj.get("results").filter(|v| !v.is_array()) {
            return Err(RescoreError::NotAList {
                path: path.to_path_buf(),
                column: "results".into(),
                found: kind(v),
            });
        }
        Ok(Self { path, obj, n })
    }

    fn cell(&self, column: &str, row: usize) -> Option<&'a Value> {
        self.obj.get(column)?.as_array()?.get(row)
    }

    fn err(&self, row: usize, column: &'static str, problem: String) -> RescoreError {
        RescoreError::Cell {
            path: self.path.to_path_buf(),
            row,
            column,
            problem,
        }
    }

    fn subset(&self, row: usize) -> Result<String, RescoreError> {
        match self.cell("subset", row) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.err(
                row,
                "subset",
                format!("expected a string, found {}", kind(v)),
            )),
            None => Err(self.err(row, "subset", "missing".into())),
        }
    }

    fn id(&self, row: usize) -> Result<Option<String>, RescoreError> {
        match self.cell("id", row) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(v) => Err(self.err(
                row,
                "id",
                format!("expected a string or an integer, found {}", kind(v)),
            )),
        }
    }

    /// The `results` cell: a number or a boolean; null (or no column) is `None`.
    fn result(&self, row: usize) -> Result<Option<f64>, RescoreError> {
        match self.cell("results", row) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(f64::from(u8::from(*b)))),
            Some(v) => number(v).map(Some).ok_or_else(|| {
                self.err(
                    row,
                    "results",
                    format!("expected a number or null, found {}", kind(v)),
                )
            }),
        }
    }

    /// A v1 score cell: a float, or a list of floats (a model's labels).
    fn v1_score(&self, row: usize, column: &'static str) -> Result<Vec<f64>, RescoreError> {
        let v = self
            .cell(column, row)
            .ok_or_else(|| self.err(row, column, "missing".into()))?;
        if let Some(x) = number(v) {
            return Ok(vec![x]);
        }
        let Value::Array(a) = v else {
            return Err(self.err(
                row,
                column,
                format!("expected a number or a list of numbers, found {}", kind(v)),
            ));
        };
        if a.is_empty() {
            return Err(self.err(row, column, "an empty list of scores".into()));
        }
        a.iter()
            .map(|x| {
                number(x).ok_or_else(|| {
                    self.err(
                        row,
                        column,
                        format!("expected a list of numbers, found {} in it", kind(x)),
                    )
                })
            })
            .collect()
    }

    /// A v2 `scores` cell: one element per completion, each `x` or `[x]`.
    fn v2_scores(&self, row: usize) -> Result<Vec<f64>, RescoreError> {
        let column = "scores";
        let v = self
            .cell(column, row)
            .ok_or_else(|| self.err(row, column, "missing".into()))?;
        let Value::Array(a) = v else {
            return Err(self.err(
                row,
                column,
                format!(
                    "expected a list (one score per completion), found {}",
                    kind(v)
                ),
            ));
        };
        if a.is_empty() {
            return Err(self.err(row, column, "no scores".into()));
        }
        a.iter()
            .enumerate()
            .map(|(k, x)| {
                if let Some(s) = number(x) {
                    return Ok(s);
                }
                match x {
                    Value::Array(inner) if inner.len() == 1 => number(&inner[0]).ok_or_else(|| {
                        self.err(
                            row,
                            column,
                            format!("completion {k}: expected [x], found [{}]", kind(&inner[0])),
                        )
                    }),
                    Value::Array(inner) => Err(self.err(
                        row,
                        column,
                        format!(
                            "completion {k} has {} values; RewardBench 2 compares one score per completion (upstream #240)",
                            inner.len()
                        ),
                    )),
                    other => Err(self.err(
                        row,
                        column,
                        format!("completion {k}: expected x or [x], found {}", kind(other)),
                    )),
                }
            })
            .collect()
    }

    fn num_correct(&self, row: usize) -> Result<usize, RescoreError> {
        let column = "num_correct";
        let v = self
            .cell(column, row)
            .ok_or_else(|| self.err(row, column, "missing".into()))?;
        v.as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e15)
                    .map(|f| f as u64)
            })
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                self.err(
                    row,
                    column,
                    format!("expected a non-negative integer, found {v}"),
                )
            })
    }
}

fn scalar(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Which shape a column dict is: `scores` (or `num_correct`) says v2, `scores_chosen`,
/// `scores_rejected` or `text_chosen` v1.
fn detect(obj: &Map<String, Value>) -> Option<Shape> {
    let has = |k: &str| obj.contains_key(k);
    if has("scores") {
        Some(Shape::V2)
    } else if has("scores_chosen") || has("scores_rejected") || has("text_chosen") {
        Some(Shape::V1)
    } else if has("num_correct") {
        Some(Shape::V2)
    } else {
        None
    }
}

/// Reads a column dict (`v`, read from `path`) into rows. Pure: `path` only names the file.
pub fn parse(path: &Path, v: &Value) -> Result<PerItemFile, RescoreError> {
    let Value::Object(obj) = v else {
        return Err(RescoreError::NotColumns {
            path: path.to_path_buf(),
            found: kind(v),
        });
    };
    let shape = detect(obj).ok_or_else(|| RescoreError::UnknownShape {
        path: path.to_path_buf(),
        columns: obj.keys().cloned().collect(),
    })?;
    let cols = Columns::new(path, obj, shape)?;
    if cols.n == 0 {
        return Err(RescoreError::Empty {
            path: path.to_path_buf(),
        });
    }
    let rows = match shape {
        Shape::V1 => Rows::V1(
            (0..cols.n)
                .map(|i| {
                    Ok(V1Row {
                        subset: cols.subset(i)?,
                        id: cols.id(i)?,
                        chosen: cols.v1_score(i, "scores_chosen")?,
                        rejected: cols.v1_score(i, "scores_rejected")?,
                        result: cols.result(i)?,
                    })
                })
                .collect::<Result<_, RescoreError>>()?,
        ),
        Shape::V2 => Rows::V2(
            (0..cols.n)
                .map(|i| {
                    let row = V2Row {
                        subset: cols.subset(i)?,
                        id: cols.id(i)?,
                        scores: cols.v2_scores(i)?,
                        num_correct: cols.num_correct(i)?,
                        result: cols.result(i)?,
                    };
                    if is_ties(&row.subset) && row.id.as_deref().and_then(TiesId::parse).is_none() {
                        return Err(RescoreError::BadTiesId {
                            path: path.to_path_buf(),
                            row: i,
                            subset: row.subset,
                            id: row.id,
                        });
                    }
                    Ok(row)
                })
                .collect::<Result<_, RescoreError>>()?,
        ),
    };
    let keys: Vec<(&str, Option<&str>)> = match &rows {
        Rows::V1(r) => r
            .iter()
            .map(|r| (r.subset.as_str(), r.id.as_deref()))
            .collect(),
        Rows::V2(r) => r
            .iter()
            .map(|r| (r.subset.as_str(), r.id.as_deref()))
            .collect(),
    };
    let warnings = duplicate_keys(path, &keys).into_iter().collect();
    Ok(PerItemFile {
        path: path.to_path_buf(),
        model: scalar(obj, "model"),
        model_type: scalar(obj, "model_type"),
        chat_template: scalar(obj, "chat_template"),
        has_results: obj.contains_key("results"),
        rows,
        warnings,
    })
}

/// A warning when some `(subset, id)` key occurs more than once (upstream issue #273).
fn duplicate_keys(path: &Path, keys: &[(&str, Option<&str>)]) -> Option<String> {
    let mut first: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut repeats = 0usize;
    let mut example = None;
    for (i, (subset, id)) in keys.iter().enumerate() {
        let Some(id) = id else { continue };
        match first.get(&(*subset, *id)) {
            Some(&j) => {
                repeats += 1;
                example.get_or_insert((*subset, *id, j, i));
            }
            None => {
                first.insert((*subset, *id), i);
            }
        }
    }
    let (subset, id, j, i) = example?;
    Some(format!(
        "{}: {repeats} row(s) repeat a (subset, id) key seen before (first: subset `{subset}`, id `{id}` at rows {j} and {i}); each row is scored as it stands, but join such a file with others by (subset, position), not by id (upstream issue #273)",
        path.display()
    ))
}
