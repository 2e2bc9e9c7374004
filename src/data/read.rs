//! Raw rows: one file read by extension (JSON array, lines or columns, JSONL, CSV, parquet,
//! each also gzip-compressed), or a folder's splits with the pref-set rules, as (place, JSON
//! object) pairs.

use std::io::Read;
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

/// The split names of a local folder, in the order a run reads them (empty for a file).
pub fn local_split_names(dir: &Path) -> Vec<String> {
    if !dir.is_dir() {
        return Vec::new();
    }
    let mut listing = Vec::new();
    list_data_dir(dir, "", &mut listing);
    listing.sort();
    let readme = std::fs::read_to_string(dir.join("README.md")).ok();
    split_files(&listing, readme.as_deref())
        .into_iter()
        .filter(|(_, files)| !files.is_empty())
        .map(|(split, _)| split)
        .collect()
}

/// Compressed formats recognised by extension or leading bytes, and not read.
const COMPRESSED: &[(&str, &[u8])] = &[
    ("bz2", b"BZh"),
    ("xz", b"\xfd7zXZ\x00"),
    ("zst", b"\x28\xb5\x2f\xfd"),
    ("zip", b"PK\x03\x04"),
    ("7z", b"7z\xbc\xaf\x27\x1c"),
];
const GZIP_MAGIC: &[u8] = b"\x1f\x8b";

fn lower_ext(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default()
}

/// The bytes of `path`, gunzipped when they are gzip data (whatever the name says).
fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !bytes.starts_with(GZIP_MAGIC) {
        if let Some((format, _)) = COMPRESSED
            .iter()
            .find(|(ext, magic)| bytes.starts_with(magic) || lower_ext(path) == *ext)
        {
            return Err(DataError::Compressed {
                path: path.to_path_buf(),
                format: format.to_string(),
            });
        }
        return Ok(bytes);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(out)
}

/// Reads one file by extension (`name.jsonl.gz`: by the one before `.gz`); `label` (the
/// repo-relative name, or empty for a single file) prefixes each row's place.
fn read_file(path: &Path, label: &str) -> Result<Vec<RawRow>, DataError> {
    let mut ext = lower_ext(path);
    let gz = ext == "gz";
    if gz {
        ext = path
            .file_stem()
            .map(|s| lower_ext(Path::new(s)))
            .unwrap_or_default();
    }
    let placed = |p: String| {
        if label.is_empty() {
            p
        } else {
            format!("{label} {p}")
        }
    };
    let values: Vec<(String, Value)> = match ext.as_str() {
        "parquet" if gz => {
            return Err(DataError::Compressed {
                path: path.to_path_buf(),
                format: "gzip (parquet compresses its own columns; unpack it)".into(),
            })
        }
        "parquet" => parquet_rows::read_rows(path)?
            .into_iter()
            .enumerate()
            .map(|(i, m)| (format!("row {}", i + 1), Value::Object(m)))
            .collect(),
        "csv" => read_csv(path, &read_bytes(path)?)?,
        other => parse_objects(path, &read_bytes(path)?, other == "json")?,
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
fn read_csv(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Value)>, DataError> {
    let err = |e: csv::Error| DataError::Csv {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    check_encoding(path, bytes)?;
    let mut r = csv::Reader::from_reader(bytes);
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

/// UTF-16 or UTF-32 text (a byte-order mark says so) is refused with a message.
fn check_encoding(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let encoding =
        if bytes.starts_with(b"\xff\xfe\x00\x00") || bytes.starts_with(b"\x00\x00\xfe\xff") {
            "UTF-32"
        } else if bytes.starts_with(b"\xff\xfe") || bytes.starts_with(b"\xfe\xff") {
            "UTF-16"
        } else {
            return Ok(());
        };
    Err(DataError::Encoding {
        path: path.to_path_buf(),
        encoding: encoding.into(),
    })
}

/// The rows of a JSON object of columns, as `datasets` builds a table from a dict of lists
/// (`{"prompt": [...], "chosen": [...], ...}`, every list of one length), or as pandas
/// writes columns (`{"prompt": {"0": ..., "1": ...}, ...}`, `to_json`'s default). `None`
/// for any other object (a single row).
fn columns_to_rows(obj: &Map<String, Value>) -> Option<Vec<Value>> {
    // A cell that is a message ({"role", ...}) means the lists are a row's conversations.
    let message = |v: &Value| v.as_object().is_some_and(|m| m.contains_key("role"));
    if obj.is_empty() {
        return None;
    }
    if obj.values().all(Value::is_array) {
        let n = obj.values().next()?.as_array()?.len();
        let same = obj
            .values()
            .all(|v| v.as_array().is_some_and(|a| a.len() == n));
        let cells_are_messages = obj
            .values()
            .any(|v| v.as_array().is_some_and(|a| a.iter().any(message)));
        if n == 0 || !same || cells_are_messages {
            return None;
        }
        return Some(
            (0..n)
                .map(|i| {
                    Value::Object(obj.iter().map(|(k, v)| (k.clone(), v[i].clone())).collect())
                })
                .collect(),
        );
    }
    // pandas: every column an object keyed "0", "1", ... with the same keys.
    let first = obj.values().next()?.as_object()?;
    let mut index: Vec<(u64, &String)> = first
        .keys()
        .map(|k| k.parse::<u64>().ok().map(|i| (i, k)))
        .collect::<Option<_>>()?;
    if index.is_empty() {
        return None;
    }
    index.sort();
    let same = obj.values().all(|v| {
        v.as_object().is_some_and(|m| {
            m.len() == first.len() && index.iter().all(|(_, k)| m.contains_key(*k))
        })
    });
    if !same {
        return None;
    }
    Some(
        index
            .iter()
            .map(|(_, k)| {
                Value::Object(
                    obj.iter()
                        .map(|(c, v)| (c.clone(), v[k.as_str()].clone()))
                        .collect(),
                )
            })
            .collect(),
    )
}

/// Splits a file into (place, JSON value): a top-level array; for a `.json` file (`json`) a
/// top-level object of columns, or one object over several lines; else one value per
/// non-blank line. A UTF-8 byte-order mark is skipped.
fn parse_objects(path: &Path, bytes: &[u8], json: bool) -> Result<Vec<(String, Value)>, DataError> {
    check_encoding(path, bytes)?;
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if json && first == Some(&b'{') {
        if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(bytes) {
            let rows = match columns_to_rows(&obj) {
                Some(rows) => rows,
                None => vec![Value::Object(obj)],
            };
            return Ok(rows
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("row {}", i + 1), v))
                .collect());
        }
    }
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
