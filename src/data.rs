//! Datasets: local JSON / JSONL preference rows in the three shapes RewardBench accepts.
//!
//! * core set: `prompt` string, `chosen` / `rejected` strings;
//! * pref sets: `prompt` a list of messages, `chosen` / `rejected` strings;
//! * conversations: `chosen` / `rejected` message lists, the prompt being all but the last.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::template::Message;

/// Errors of the data stage; each names the file and, where there is one, the line and field.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read dataset {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {place}: invalid JSON: {message}")]
    Json {
        path: PathBuf,
        place: String,
        message: String,
    },
    #[error("{path}: {place}: not valid UTF-8")]
    Utf8 { path: PathBuf, place: String },
    #[error("{path}: {place}: field `{field}`: {problem}")]
    Field {
        path: PathBuf,
        place: String,
        field: String,
        problem: String,
    },
    #[error("{path}: {place}: {problem}")]
    Row {
        path: PathBuf,
        place: String,
        problem: String,
    },
    #[error("{path}: the dataset has no rows")]
    Empty { path: PathBuf },
    #[error(
        "dataset `{name}` is not a local file; reading datasets from the Hugging Face hub (including the \
         default allenai/reward-bench core set) is not available in this build yet: pass a local .json/.jsonl \
         file with --dataset PATH --load_json"
    )]
    NotLocal { name: String },
}

/// The prompt of a preference row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    Text(String),
    Messages(Vec<Message>),
}

/// One preference row.
#[derive(Debug, Clone)]
pub struct Pair {
    pub prompt: Prompt,
    pub chosen: String,
    pub rejected: String,
    /// Every other column, in file order (the original `chosen`/`rejected` as strings).
    pub metadata: Map<String, Value>,
    /// Where the row came from, for messages (e.g. `line 7`).
    pub place: String,
}

/// A loaded preference dataset.
#[derive(Debug)]
pub struct Dataset {
    pub path: PathBuf,
    pub rows: Vec<Pair>,
}

/// True for a name that reads as a hub dataset id (`org/name`) rather than a local file.
pub fn looks_like_hub_id(name: &str) -> bool {
    let p = Path::new(name);
    !p.exists()
        && !name.starts_with('.')
        && !name.starts_with('/')
        && name.matches('/').count() == 1
        && p.extension().is_none()
}

impl Dataset {
    /// Loads a local JSON (array of objects, or JSON lines) or JSONL file.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let objects = parse_objects(path, &bytes)?;
        let mut rows = Vec::with_capacity(objects.len());
        for (place, value) in objects {
            rows.push(Pair::from_json(path, place, value)?);
        }
        if rows.is_empty() {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            rows,
        })
    }
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

impl Pair {
    fn from_json(path: &Path, place: String, value: Value) -> Result<Self, DataError> {
        let field_err = |field: &str, problem: String| DataError::Field {
            path: path.to_path_buf(),
            place: place.clone(),
            field: field.to_string(),
            problem,
        };
        let Value::Object(obj) = value else {
            return Err(DataError::Row {
                path: path.to_path_buf(),
                place: place.clone(),
                problem: format!("expected a JSON object, found {}", kind(&value)),
            });
        };
        // The reference renames `question`, else `input`, to `prompt`.
        let obj = if obj.contains_key("prompt") {
            obj
        } else if obj.contains_key("question") {
            rename(obj, "question", "prompt")
        } else if obj.contains_key("input") {
            rename(obj, "input", "prompt")
        } else {
            obj
        };
        for field in ["chosen", "rejected"] {
            if !obj.contains_key(field) {
                let problem = if obj.contains_key("messages") {
                    "is missing (rows with `messages` and no `chosen`/`rejected` are instruction data, which this build does not score yet)".to_string()
                } else {
                    "is missing (a preference row needs `prompt`, `chosen` and `rejected`)"
                        .to_string()
                };
                return Err(field_err(field, problem));
            }
        }

        let mut prompt = None;
        let mut answers: [String; 2] = Default::default();
        for (slot, field) in ["chosen", "rejected"].into_iter().enumerate() {
            match &obj[field] {
                Value::String(s) => answers[slot] = s.clone(),
                Value::Array(list) => {
                    let msgs = messages(list).map_err(|p| field_err(field, p))?;
                    let Some((last, head)) = msgs.split_last() else {
                        return Err(field_err(field, "is an empty message list".into()));
                    };
                    answers[slot] = last.content.clone();
                    if slot == 0 {
                        prompt = Some(Prompt::Messages(head.to_vec()));
                    }
                }
                other => {
                    return Err(field_err(
                        field,
                        format!(
                            "expected a string or a list of messages, found {}",
                            kind(other)
                        ),
                    ))
                }
            }
        }
        let conversation = prompt.is_some();
        if !conversation {
            prompt = Some(match obj.get("prompt") {
                Some(Value::String(s)) => Prompt::Text(s.clone()),
                Some(Value::Array(list)) => {
                    Prompt::Messages(messages(list).map_err(|p| field_err("prompt", p))?)
                }
                Some(other) => {
                    return Err(field_err(
                        "prompt",
                        format!(
                            "expected a string or a list of messages, found {}",
                            kind(other)
                        ),
                    ))
                }
                None => return Err(field_err("prompt", "is missing".into())),
            });
        }
        let [chosen, rejected] = answers;
        let mut metadata = Map::new();
        for (k, v) in obj {
            match k.as_str() {
                "prompt" => {}
                "chosen" => {
                    metadata.insert(k, Value::String(chosen.clone()));
                }
                "rejected" => {
                    metadata.insert(k, Value::String(rejected.clone()));
                }
                _ => {
                    metadata.insert(k, v);
                }
            }
        }
        Ok(Self {
            prompt: prompt.unwrap_or(Prompt::Text(String::new())),
            chosen,
            rejected,
            metadata,
            place,
        })
    }

    /// The `subset` column, if the row has one.
    pub fn subset(&self) -> Option<&str> {
        self.metadata.get("subset").and_then(Value::as_str)
    }
}

fn rename(obj: Map<String, Value>, from: &str, to: &str) -> Map<String, Value> {
    obj.into_iter()
        .map(|(k, v)| {
            if k == from {
                (to.to_string(), v)
            } else {
                (k, v)
            }
        })
        .collect()
}

fn messages(list: &[Value]) -> Result<Vec<Message>, String> {
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            let content = match m.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(format!(
                        "message {i}: `content` is {}, expected a string",
                        kind(other)
                    ))
                }
                None if m.is_object() => return Err(format!("message {i} has no `content`")),
                None => {
                    return Err(format!(
                        "message {i} is {}, expected an object with `role` and `content`",
                        kind(m)
                    ))
                }
            };
            let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
            Ok(Message::new(role, &content))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(text: &str, ext: &str) -> Result<Dataset, DataError> {
        let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        Dataset::load(f.path())
    }

    #[test]
    fn three_shapes() {
        let d = load(
            concat!(
                r#"{"prompt": "P", "chosen": "a", "rejected": "b", "subset": "s", "id": 1}"#, "\n",
                r#"{"prompt": [{"role": "system", "content": "S"}], "chosen": "a", "rejected": "b"}"#, "\n",
                r#"{"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "B"}], "id": 3}"#, "\n",
            ),
            ".jsonl",
        )
        .unwrap();
        assert_eq!(d.rows.len(), 3);
        assert_eq!(d.rows[0].prompt, Prompt::Text("P".into()));
        assert_eq!(
            d.rows[0].metadata.keys().collect::<Vec<_>>(),
            ["chosen", "rejected", "subset", "id"]
        );
        assert_eq!(
            d.rows[1].prompt,
            Prompt::Messages(vec![Message::new("system", "S")])
        );
        assert_eq!(
            d.rows[2].prompt,
            Prompt::Messages(vec![Message::new("user", "Q")])
        );
        assert_eq!(
            (d.rows[2].chosen.as_str(), d.rows[2].rejected.as_str()),
            ("A", "B")
        );
        assert_eq!(d.rows[2].metadata["chosen"], "A");
    }

    #[test]
    fn json_array_and_question_rename() {
        let d = load(
            r#"[{"question": "Q", "chosen": "a", "rejected": "b"}]"#,
            ".json",
        )
        .unwrap();
        assert_eq!(d.rows[0].prompt, Prompt::Text("Q".into()));
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = load(
            "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{oops\n",
            ".jsonl",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2") && e.contains("invalid JSON"), "{e}");
        let e = load("{\"prompt\": \"p\", \"rejected\": \"b\"}\n", ".jsonl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("`chosen`"), "{e}");
        let e = load(
            "{\"prompt\": \"p\", \"chosen\": 3, \"rejected\": \"b\"}\n",
            ".jsonl",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`chosen`") && e.contains("a number"), "{e}");
        let e = load("\n\n", ".jsonl").unwrap_err().to_string();
        assert!(e.contains("no rows"), "{e}");
        let e = load(
            "{\"prompt\": \"p\", \"chosen\": \"\u{0}\", \"rejected\": \"b\"}\n\u{ff}",
            ".jsonl",
        );
        assert!(e.is_err());
    }
}
