//! Parquet files as rows of JSON objects (the `parquet` crate's row API, no Arrow).
//!
//! Hub datasets are stored as parquet shards; each row becomes a `serde_json` map with the
//! columns in schema order, so parquet and JSON rows go through the same loader.

use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Map, Number, Value};

/// Errors reading a parquet file.
#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    #[error("cannot open parquet file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a readable parquet file: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: row {row}: {message}")]
    Row {
        path: PathBuf,
        row: usize,
        message: String,
    },
}

/// Reads every row of `path`, in file order, as a JSON object.
pub fn read_rows(path: &Path) -> Result<Vec<Map<String, Value>>, ParquetError> {
    read_rows_limit(path, usize::MAX)
}

/// Reads at most `limit` rows of `path`.
pub fn read_rows_limit(path: &Path, limit: usize) -> Result<Vec<Map<String, Value>>, ParquetError> {
    let file = std::fs::File::open(path).map_err(|source| ParquetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(file).map_err(|e| ParquetError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let total = usize::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
    let mut out = Vec::with_capacity(total.min(limit));
    let iter = reader
        .get_row_iter(None)
        .map_err(|e| ParquetError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    for (i, row) in iter.take(limit).enumerate() {
        let row = row.map_err(|e| ParquetError::Row {
            path: path.to_path_buf(),
            row: i + 1,
            message: e.to_string(),
        })?;
        out.push(
            row.get_column_iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        );
    }
    Ok(out)
}

/// A parquet value as JSON: lists become arrays, structs objects, bytes UTF-8 text when
/// valid (else a list of byte values), dates and times their ISO text.
pub fn to_json(f: &Field) -> Value {
    let num = |x: f64| Number::from_f64(x).map_or(Value::Null, Value::Number);
    match f {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(n) => Value::from(*n),
        Field::Short(n) => Value::from(*n),
        Field::Int(n) => Value::from(*n),
        Field::Long(n) => Value::from(*n),
        Field::UByte(n) => Value::from(*n),
        Field::UShort(n) => Value::from(*n),
        Field::UInt(n) => Value::from(*n),
        Field::ULong(n) => Value::from(*n),
        Field::Float16(n) => num(f64::from(*n)),
        Field::Float(n) => num(f64::from(*n)),
        Field::Double(n) => num(*n),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => Value::Array(b.data().iter().map(|x| Value::from(*x)).collect()),
        },
        Field::Group(row) => Value::Object(
            row.get_column_iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
        Field::ListInternal(list) => Value::Array(list.elements().iter().map(to_json).collect()),
        Field::MapInternal(map) => Value::Object(
            map.entries()
                .iter()
                .map(|(k, v)| {
                    let key = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        // Decimals, dates and times: their display text.
        other => Value::String(other.to_string()),
    }
}
