//! Raw rows: one file read by extension (JSON array or lines, JSONL, CSV, parquet), or a
//! folder's splits with the pref-set rules, as (place, JSON object) pairs.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::parquet as parquet_rows;
use super::rows::kind;
use super::splits::{list_data_dir, select_splits, split_files};
use super::{DataError, DatasetSpec, Source, PREF_SETS_DROPPED};

pub(super) type RawRow = (String, Map<String, Value>);

/// The rows of a local spec, with the pref-set rules applied; also the path errors name.
pub(super) fn read_rows(spec: &DatasetSpec) -> Result<(PathBuf, Vec<RawRow>), DataError> {
    let Source::Local(path) = &spec.source else {
        return Err(DataError::Io {
            path: spec.location(),
            source: std::io::Error::other("a hub dataset must be resolved before it is read"),
        });
    };
    if path.is_file() {
        return Ok((path.clone(), read_file(path, "")?));
    }
    if !path.is_dir() {
        return Err(DataError::Io {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        });
    }
    let mut listing = Vec::new();
    list_data_dir(path, "", &mut listing);
    listing.sort();
    let readme = std::fs::read_to_string(path.join("README.md")).ok();
    let splits = split_files(&listing, readme.as_deref());
    let wanted = select_splits(path, splits, spec.effective_split().as_deref())?;
    let pref = spec.is_pref_sets();
    let explicit = spec.split.is_some();
    let mut rows = Vec::new();
    for (split, files) in wanted {
        if pref && !explicit && PREF_SETS_DROPPED.contains(&split.as_str()) {
            continue;
        }
        for f in files {
            for (place, mut obj) in read_file(&path.join(&f), &f)? {
                if pref {
                    // The reference's pref-set loader: the split becomes the subset.
                    if let Some(inner) = obj.remove("subset") {
                        obj.insert("subsubset".into(), inner);
                    }
                    obj.insert("subset".into(), Value::String(split.clone()));
                }
                rows.push((place, obj));
            }
        }
    }
    Ok((path.clone(), rows))
}

/// Reads one file by extension; `label` (the repo-relative name, or empty for a single file)
/// prefixes each row's place.
fn read_file(path: &Path, label: &str) -> Result<Vec<RawRow>, DataError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let placed = |p: String| {
        if label.is_empty() {
            p
        } else {
            format!("{label} {p}")
        }
    };
    let values: Vec<(String, Value)> = match ext.as_str() {
        "parquet" => parquet_rows::read_rows(path)?
            .into_iter()
            .enumerate()
            .map(|(i, m)| (format!("row {}", i + 1), Value::Object(m)))
            .collect(),
        "csv" => read_csv(path)?,
        _ => {
            let bytes = std::fs::read(path).map_err(|source| DataError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            parse_objects(path, &bytes)?
        }
    };
    values
        .into_iter()
        .map(|(place, v)| match v {
            Value::Object(m) => Ok((placed(place), m)),
            other => Err(DataError::Row {
                path: path.to_path_buf(),
                place: placed(place),
                problem: format!("expected a JSON object, found {}", kind(&other)),
            }),
        })
        .collect()
}

/// CSV rows as objects; a column whose cells all parse as integers (or numbers) holds numbers,
/// as pandas would type it; empty cells are null.
fn read_csv(path: &Path) -> Result<Vec<(String, Value)>, DataError> {
    let err = |e: csv::Error| DataError::Csv {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut r = csv::Reader::from_path(path).map_err(err)?;
    let headers: Vec<String> = r.headers().map_err(err)?.iter().map(String::from).collect();
    let mut cells: Vec<(u64, Vec<String>)> = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(err)?;
        let line = rec.position().map_or(0, |p| p.line());
        cells.push((line, rec.iter().map(String::from).collect()));
    }
    let typed: Vec<fn(&str) -> Option<Value>> = (0..headers.len())
        .map(|c| {
            let col = cells
                .iter()
                .filter_map(|(_, row)| row.get(c))
                .filter(|s| !s.is_empty());
            let ints = col.clone().all(|s| s.parse::<i64>().is_ok());
            let floats = col.clone().all(|s| s.parse::<f64>().is_ok());
            let any = col.count() > 0;
            let f: fn(&str) -> Option<Value> = if any && ints {
                |s| s.parse::<i64>().ok().map(Value::from)
            } else if any && floats {
                |s| s.parse::<f64>().ok().map(Value::from)
            } else {
                |s| Some(Value::String(s.to_string()))
            };
            f
        })
        .collect();
    Ok(cells
        .into_iter()
        .map(|(line, row)| {
            let obj: Map<String, Value> = headers
                .iter()
                .enumerate()
                .map(|(c, h)| {
                    let cell = row.get(c).map(String::as_str).unwrap_or("");
                    let v = if cell.is_empty() {
                        Value::Null
                    } else {
                        typed[c](cell).unwrap_or(Value::Null)
                    };
                    (h.clone(), v)
                })
                .collect();
            (format!("line {line}"), Value::Object(obj))
        })
        .collect())
}

/// Splits a file into (place, JSON value): a top-level array, else one value per non-blank line.
fn parse_objects(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Value)>, DataError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let text = std::str::from_utf8(bytes).map_err(|e| DataError::Utf8 {
            path: path.to_path_buf(),
            place: format!("byte {}", e.valid_up_to()),
        })?;
        let values: Vec<Value> = serde_json::from_str(text).map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            place: format!("line {}, column {}", e.line(), e.column()),
            message: e.to_string(),
        })?;
        return Ok(values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("row {}", i + 1), v))
            .collect());
    }
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let place = format!("line {}", i + 1);
        let line = std::str::from_utf8(line).map_err(|_| DataError::Utf8 {
            path: path.to_path_buf(),
            place: place.clone(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            place: format!("{place}, column {}", e.column()),
            message: e.to_string(),
        })?;
        out.push((place, v));
    }
    Ok(out)
}
