//! Row shapes: a JSON object as a preference [`Pair`] (the three shapes RewardBench accepts)
//! or an [`InstructionRow`], with errors naming the field.

use std::path::Path;

use serde_json::{Map, Value};

use super::{DataError, InstructionRow, Message, Pair, Prompt};

impl InstructionRow {
    pub(super) fn from_json(
        path: &Path,
        place: String,
        obj: Map<String, Value>,
    ) -> Result<Self, DataError> {
        let field_err = |problem: String| DataError::Field {
            path: path.to_path_buf(),
            place: place.clone(),
            field: "messages".into(),
            problem,
        };
        let messages = match obj.get("messages") {
            Some(Value::Array(list)) => messages(list).map_err(field_err)?,
            Some(other) => {
                return Err(field_err(format!(
                    "expected a list of messages, found {}",
                    kind(other)
                )))
            }
            None => return Err(field_err("is missing".into())),
        };
        let Some(first) = messages.first() else {
            return Err(field_err("is an empty message list".into()));
        };
        let prompt = first.content.clone();
        let metadata = obj.into_iter().filter(|(k, _)| k != "prompt").collect();
        Ok(Self {
            messages,
            prompt,
            metadata,
            place,
        })
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
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
    pub(super) fn from_json(path: &Path, place: String, value: Value) -> Result<Self, DataError> {
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
                    "is missing (rows with `messages` and no `chosen`/`rejected` are instruction data; they must all be so)".to_string()
                } else {
                    "is missing (a preference row needs `prompt`, `chosen` and `rejected`)"
                        .to_string()
                };
                return Err(field_err(field, problem));
            }
        }

        let mut prompt = None;
        let mut answers: [Vec<String>; 2] = Default::default();
        let mut listed = [false; 2];
        for (slot, field) in ["chosen", "rejected"].into_iter().enumerate() {
            match &obj[field] {
                Value::String(s) => answers[slot] = vec![s.clone()],
                Value::Array(list) if list.is_empty() => {
                    return Err(field_err(field, "is an empty list".into()));
                }
                // A list of strings: best-of-N completions (RewardBench 2's rows).
                Value::Array(list) if list[0].is_string() => {
                    answers[slot] = completions(list).map_err(|p| field_err(field, p))?;
                    listed[slot] = true;
                }
                Value::Array(list) => {
                    let msgs = messages(list).map_err(|p| field_err(field, p))?;
                    let Some((last, head)) = msgs.split_last() else {
                        return Err(field_err(field, "is an empty message list".into()));
                    };
                    answers[slot] = vec![last.content.clone()];
                    if slot == 0 {
                        prompt = Some(Prompt::Messages(head.to_vec()));
                    }
                }
                other => {
                    return Err(field_err(
                        field,
                        format!(
                            "expected a string, a list of completions (strings) or a list of messages, found {}",
                            kind(other)
                        ),
                    ))
                }
            }
        }
        let conversation = prompt.is_some();
        if conversation && listed[1] {
            return Err(field_err(
                "rejected",
                "is a list of completions but `chosen` is a conversation (a list of messages)"
                    .into(),
            ));
        }
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
            match (k.as_str(), listed) {
                ("prompt", _) => {}
                // Best-of-N rows keep their lists as they are.
                ("chosen" | "rejected", [true, _] | [_, true]) => {
                    metadata.insert(k, v);
                }
                ("chosen", _) => {
                    metadata.insert(k, Value::String(chosen[0].clone()));
                }
                ("rejected", _) => {
                    metadata.insert(k, Value::String(rejected[0].clone()));
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

/// A list of completions: every element a string.
fn completions(list: &[Value]) -> Result<Vec<String>, String> {
    list.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!(
                "completion {i} is {}, expected a string (a list of completions holds strings only)",
                kind(other)
            )),
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
