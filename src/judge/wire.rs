//! The two wire formats: a [`ChatRequest`] as an OpenAI chat-completions or Anthropic messages
//! body, and the answer read back from a 2xx response.

use serde_json::{json, Map, Value};

use super::client::{short, Api, CallError, ChatAnswer, ChatRequest, Usage};

/// The JSON body of `req` in `api`'s wire format.
pub fn request_body(api: Api, req: &ChatRequest) -> Result<Value, CallError> {
    if let Some(t) = req.temperature {
        if !t.is_finite() {
            return Err(CallError::Invalid(format!("temperature {t}")));
        }
    }
    let system = req.system.as_deref().filter(|s| !s.is_empty());
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    match api {
        Api::OpenAi => {
            let mut messages = Vec::new();
            if let Some(s) = system {
                messages.push(json!({"role": "system", "content": s}));
            }
            messages.push(json!({"role": "user", "content": req.user}));
            body.insert("messages".into(), Value::Array(messages));
            if let Some(t) = req.temperature {
                body.insert("temperature".into(), json!(t));
            }
            if let Some(n) = req.max_tokens {
                body.insert("max_tokens".into(), json!(n));
            }
            if !req.stop.is_empty() {
                body.insert("stop".into(), json!(req.stop));
            }
            if let Some(seed) = req.seed {
                body.insert("seed".into(), json!(seed));
            }
        }
        Api::Anthropic => {
            let Some(n) = req.max_tokens else {
                return Err(CallError::Invalid(format!(
                    "the Anthropic API needs max_tokens (model {})",
                    req.model
                )));
            };
            body.insert("max_tokens".into(), json!(n));
            if let Some(s) = system {
                body.insert("system".into(), json!(s));
            }
            body.insert(
                "messages".into(),
                json!([{"role": "user", "content": req.user}]),
            );
            if let Some(t) = req.temperature {
                body.insert("temperature".into(), json!(t));
            }
            if !req.stop.is_empty() {
                body.insert("stop_sequences".into(), json!(req.stop));
            }
        }
    }
    Ok(Value::Object(body))
}

/// The answer in a 2xx body, or (missing field, what was there).
pub fn parse_answer(api: Api, v: &Value) -> Result<ChatAnswer, (String, String)> {
    let model = v.get("model").and_then(Value::as_str).map(str::to_string);
    let (text, finish_reason, usage) = match api {
        Api::OpenAi => {
            let field = "choices[0].message.content";
            let missing = |detail: String| (field.to_string(), detail);
            let Some(choices) = v.get("choices").and_then(Value::as_array) else {
                let detail = match v.get("error") {
                    Some(e) => format!("error: {}", short(&e.to_string())),
                    None => "no choices array".to_string(),
                };
                return Err(missing(detail));
            };
            let Some(choice) = choices.first() else {
                return Err(missing("choices is empty".into()));
            };
            let message = choice.get("message");
            let content = message.and_then(|m| m.get("content"));
            let text = match content {
                Some(Value::String(s)) => s.clone(),
                _ => {
                    let refusal = message
                        .and_then(|m| m.get("refusal"))
                        .and_then(Value::as_str);
                    let detail = match (refusal, content) {
                        (Some(r), _) => format!("refusal: {}", short(r)),
                        (None, None) => "no content".into(),
                        (None, Some(c)) => format!("content is {}", json_type(c)),
                    };
                    return Err(missing(detail));
                }
            };
            let finish = choice
                .get("finish_reason")
                .and_then(Value::as_str)
                .map(str::to_string);
            let usage = v.get("usage").and_then(|u| {
                Some(Usage {
                    input_tokens: u.get("prompt_tokens")?.as_u64()?,
                    output_tokens: u.get("completion_tokens")?.as_u64()?,
                })
            });
            (text, finish, usage)
        }
        Api::Anthropic => {
            let Some(blocks) = v.get("content").and_then(Value::as_array) else {
                let detail = match v.get("error") {
                    Some(e) => format!("error: {}", short(&e.to_string())),
                    None => "no content array".to_string(),
                };
                return Err(("content".into(), detail));
            };
            let mut text = String::new();
            for (i, block) in blocks.iter().enumerate() {
                if block.get("type").and_then(Value::as_str) != Some("text") {
                    continue;
                }
                match block.get("text").and_then(Value::as_str) {
                    Some(t) => text.push_str(t),
                    None => {
                        return Err((
                            format!("content[{i}].text"),
                            "a text block without text".into(),
                        ))
                    }
                }
            }
            let finish = v
                .get("stop_reason")
                .and_then(Value::as_str)
                .map(str::to_string);
            let usage = v.get("usage").and_then(|u| {
                Some(Usage {
                    input_tokens: u.get("input_tokens")?.as_u64()?,
                    output_tokens: u.get("output_tokens")?.as_u64()?,
                })
            });
            (text, finish, usage)
        }
    };
    Ok(ChatAnswer {
        text,
        attempts: 0,
        model,
        finish_reason,
        usage,
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            system: Some("sys".into()),
            user: "hi".into(),
            temperature: Some(0.0),
            max_tokens: Some(7),
            stop: vec!["\n\nHuman:".into()],
            seed: Some(3),
        }
    }

    #[test]
    fn openai_body() {
        let b = request_body(Api::OpenAi, &req()).unwrap();
        assert_eq!(
            b.to_string(),
            r#"{"model":"m","messages":[{"role":"system","content":"sys"},{"role":"user","content":"hi"}],"temperature":0.0,"max_tokens":7,"stop":["\n\nHuman:"],"seed":3}"#
        );
        let bare = ChatRequest {
            model: "m".into(),
            system: Some(String::new()),
            user: "hi".into(),
            ..Default::default()
        };
        assert_eq!(
            request_body(Api::OpenAi, &bare).unwrap().to_string(),
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
        );
    }

    #[test]
    fn anthropic_body() {
        let b = request_body(Api::Anthropic, &req()).unwrap();
        assert_eq!(
            b.to_string(),
            r#"{"model":"m","max_tokens":7,"system":"sys","messages":[{"role":"user","content":"hi"}],"temperature":0.0,"stop_sequences":["\n\nHuman:"]}"#
        );
        let no_max = ChatRequest {
            max_tokens: None,
            ..req()
        };
        let e = request_body(Api::Anthropic, &no_max).unwrap_err();
        assert!(e.to_string().contains("max_tokens"), "{e}");
        let nan = ChatRequest {
            temperature: Some(f64::NAN),
            ..req()
        };
        assert!(matches!(
            request_body(Api::OpenAi, &nan),
            Err(CallError::Invalid(_))
        ));
    }

    #[test]
    fn parses_openai_answers() {
        let v: Value = serde_json::from_str(
            r#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-2024-08-06",
            "choices":[{"index":0,"message":{"role":"assistant","content":"[[A]]","refusal":null},
            "finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#,
        )
        .unwrap();
        let a = parse_answer(Api::OpenAi, &v).unwrap();
        assert_eq!(a.text, "[[A]]");
        assert_eq!(a.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(a.finish_reason.as_deref(), Some("stop"));
        assert_eq!(
            a.usage,
            Some(Usage {
                input_tokens: 5,
                output_tokens: 2
            })
        );
        for (body, detail) in [
            (r#"{"choices":[]}"#, "choices is empty"),
            (r#"{"object":"x"}"#, "no choices array"),
            (
                r#"{"choices":[{"message":{"content":null}}]}"#,
                "content is null",
            ),
            (
                r#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#,
                "refusal: no",
            ),
            (r#"{"error":{"message":"boom"}}"#, "error: "),
        ] {
            let (field, d) =
                parse_answer(Api::OpenAi, &serde_json::from_str(body).unwrap()).unwrap_err();
            assert_eq!(field, "choices[0].message.content");
            assert!(d.starts_with(detail), "{body}: {d}");
        }
    }

    #[test]
    fn parses_anthropic_answers() {
        let v: Value = serde_json::from_str(
            r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-sonnet-20240620",
            "content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"The answer "},
            {"type":"text","text":"is [[B]]"}],"stop_reason":"end_turn","stop_sequence":null,
            "usage":{"input_tokens":9,"output_tokens":4}}"#,
        )
        .unwrap();
        let a = parse_answer(Api::Anthropic, &v).unwrap();
        assert_eq!(a.text, "The answer is [[B]]");
        assert_eq!(a.finish_reason.as_deref(), Some("end_turn"));
        assert_eq!(a.usage.unwrap().output_tokens, 4);
        let empty = parse_answer(Api::Anthropic, &json!({"content": []})).unwrap();
        assert_eq!(empty.text, "");
        let (field, _) = parse_answer(Api::Anthropic, &json!({"type": "message"})).unwrap_err();
        assert_eq!(field, "content");
        let (field, _) =
            parse_answer(Api::Anthropic, &json!({"content": [{"type": "text"}]})).unwrap_err();
        assert_eq!(field, "content[0].text");
    }
}
