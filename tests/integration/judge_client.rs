//! The judges' HTTP client against the stand-in chat server (tests/util/judge_server.rs):
//! both wire formats, retries (429 with Retry-After, 5xx, dropped connections, cut-off bodies,
//! timeouts), final statuses, attempt counts, the rate limit, many threads on one client,
//! routing from the environment, and the API key kept out of everything but its header.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rewardbench::judge::client::{
    parse_http_date, Api, CallError, ChatRequest, Client, ClientConfig, Secret, TransportKind,
};
use rewardbench::judge::route::{route, settings, Endpoint, Provider};
use serde_json::json;

use crate::util::judge_server::{
    http_date, openai_quota_body, JudgeServer, Reply, Request, WireApi,
};

const KEY: &str = "sk-test-7f3a9c2e51d84b06-DO-NOT-LEAK";

fn never() -> bool {
    false
}

/// Tiny backoff, short timeouts, no Ctrl-C flag.
fn fast() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(2),
        call_timeout: Duration::from_secs(3),
        max_attempts: 4,
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(4),
        max_retry_after: Duration::from_secs(5),
        cancelled: never,
        ..ClientConfig::default()
    }
}

fn client(cfg: ClientConfig) -> Client {
    Client::new(cfg).expect("client")
}

fn endpoint(server: &JudgeServer, api: Api) -> Endpoint {
    match api {
        Api::OpenAi => Endpoint {
            api,
            base_url: server.openai_base(),
            key: Some(Secret::new(KEY)),
            provider: Provider::OpenAi,
        },
        Api::Anthropic => Endpoint {
            api,
            base_url: server.url.clone(),
            key: Some(Secret::new(KEY)),
            provider: Provider::Anthropic,
        },
    }
}

fn ask(model: &str, user: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        system: Some("You are an impartial judge.".into()),
        user: user.into(),
        temperature: Some(0.0),
        max_tokens: Some(1024),
        stop: Vec::new(),
        seed: None,
    }
}

/// A deterministic judge: the answer marked "(good)" wins.
fn verdict(user: &str) -> String {
    let a = user.find("(good)");
    let b = user.find("[The Start of Assistant B's Answer]");
    match (a, b) {
        (Some(a), Some(b)) if a < b => "Assistant A is accurate. [[A]]".into(),
        (Some(_), Some(_)) => "Assistant B is accurate. [[B]]".into(),
        _ => "I cannot tell. [[C]]".into(),
    }
}

fn judge(r: &Request) -> Reply {
    Reply::text(verdict(&r.user))
}

fn pair(tag: &str, good_first: bool) -> String {
    let (a, b) = if good_first {
        ("4 (good)", "5")
    } else {
        ("5", "4 (good)")
    };
    format!(
        "[User Question]\n{tag}: what is 2+2?\n\n[The Start of Assistant A's Answer]\n{a}\n[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{b}\n[The End of Assistant B's Answer]"
    )
}

/// Display, Debug, pretty Debug and the source chain of `e`.
fn all_text(e: &CallError) -> String {
    let mut out = format!("{e}\n{e:?}\n{e:#?}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(&format!("\n{s}\n{s:?}"));
        source = s.source();
    }
    out
}

#[test]
fn judge_openai_wire_format() {
    let server = JudgeServer::start(judge);
    let c = client(fast());
    let s = settings(Provider::OpenAi, "gpt-4o-2024-08-06");
    let req = ChatRequest {
        temperature: s.temperature,
        max_tokens: s.max_tokens,
        stop: vec!["<|end|>".into()],
        seed: Some(7),
        ..ask("gpt-4o-2024-08-06", &pair("wire", true))
    };
    let a = c.chat(&endpoint(&server, Api::OpenAi), &req).unwrap();
    assert_eq!(a.text, "Assistant A is accurate. [[A]]");
    assert_eq!(a.attempts, 1);
    assert_eq!(a.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(a.finish_reason.as_deref(), Some("stop"));
    assert_eq!(a.usage.unwrap().output_tokens, 5);

    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(r.api, Some(WireApi::OpenAi));
    assert_eq!(
        r.json,
        json!({
            "model": "gpt-4o-2024-08-06",
            "messages": [
                {"role": "system", "content": "You are an impartial judge."},
                {"role": "user", "content": pair("wire", true)}
            ],
            "temperature": 0.0,
            "max_tokens": 2048,
            "stop": ["<|end|>"],
            "seed": 7
        })
    );
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(r.header("x-api-key"), None);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert!(r.header("user-agent").unwrap().starts_with("rewardbench/"));

    // No system prompt, no optional fields: only model and the user message.
    let bare = ChatRequest {
        model: "local".into(),
        user: "hi".into(),
        ..ChatRequest::default()
    };
    c.chat(&endpoint(&server, Api::OpenAi), &bare).unwrap();
    assert_eq!(
        server.requests()[1].json,
        json!({"model": "local", "messages": [{"role": "user", "content": "hi"}]})
    );
}

#[test]
fn judge_anthropic_wire_format() {
    let server = JudgeServer::start(|r: &Request| {
        if r.user.contains("blocks") {
            Reply::json(
                200,
                json!({
                    "id": "msg_01Blocks", "type": "message", "role": "assistant", "model": r.model,
                    "content": [
                        {"type": "thinking", "thinking": "Compare both.", "signature": "sig"},
                        {"type": "text", "text": "B is wrong. "},
                        {"type": "text", "text": "[[A]]"}
                    ],
                    "stop_reason": "end_turn", "stop_sequence": null,
                    "usage": {"input_tokens": 12, "output_tokens": 6}
                }),
            )
        } else {
            // A verdict, then a turn the stop sequence must cut.
            Reply::text(format!(" {}\n\nHuman: and now?", verdict(&r.user)))
        }
    });
    let c = client(fast());
    let s = settings(Provider::Anthropic, "claude-3-5-sonnet-20240620");
    let req = ChatRequest {
        temperature: s.temperature,
        max_tokens: s.max_tokens,
        stop: s.stop.clone(),
        seed: Some(1),
        ..ask("claude-3-5-sonnet-20240620", &pair("anthropic", false))
    };
    let a = c.chat(&endpoint(&server, Api::Anthropic), &req).unwrap();
    assert_eq!(a.text, " Assistant B is accurate. [[B]]");
    assert!(
        s.strip,
        "upstream strips Anthropic answers (the caller's job)"
    );
    assert_eq!(a.finish_reason.as_deref(), Some("stop_sequence"));
    let r = &server.requests()[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.api, Some(WireApi::Anthropic));
    assert_eq!(
        r.json,
        json!({
            "model": "claude-3-5-sonnet-20240620",
            "max_tokens": 1024,
            "system": "You are an impartial judge.",
            "messages": [{"role": "user", "content": pair("anthropic", false)}],
            "temperature": 0.0,
            "stop_sequences": ["\n\nHuman:"]
        }),
        "system apart, no seed"
    );
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("authorization"), None);

    let a = c
        .chat(
            &endpoint(&server, Api::Anthropic),
            &ask("claude-2", "blocks"),
        )
        .unwrap();
    assert_eq!(
        a.text, "B is wrong. [[A]]",
        "text blocks joined, others skipped"
    );
    assert_eq!(a.usage.unwrap().input_tokens, 12);

    // max_tokens is required: refused before sending.
    let e = c
        .chat(
            &endpoint(&server, Api::Anthropic),
            &ChatRequest {
                max_tokens: None,
                ..ask("claude-2", "x")
            },
        )
        .unwrap_err();
    assert!(matches!(e, CallError::Invalid(_)), "{e}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn judge_retry_after_is_honoured() {
    // The first 2 calls for a prompt get 429 with Retry-After: 1 (seconds).
    let server = JudgeServer::start(|r: &Request| {
        if r.user.contains("seconds") && r.attempt <= 2 {
            Reply::rate_limited("1")
        } else if r.user.contains("date") && r.attempt == 1 {
            Reply::rate_limited(&http_date(SystemTime::now() + Duration::from_secs(2)))
        } else if r.user.contains("millis") && r.attempt == 1 {
            Reply::Raw {
                status: 429,
                headers: vec![
                    ("retry-after-ms".into(), "300".into()),
                    ("retry-after".into(), "1".into()),
                ],
                body: "{}".into(),
            }
        } else {
            judge(r)
        }
    });
    let c = client(fast());
    for api in [Api::OpenAi, Api::Anthropic] {
        let prompt = format!("seconds {api}");
        let t = Instant::now();
        let a = c.chat(&endpoint(&server, api), &ask("m", &prompt)).unwrap();
        let waited = t.elapsed();
        assert_eq!(a.attempts, 3);
        let seen = server.requests_for(&prompt);
        assert_eq!(seen.len(), 3);
        for w in seen.windows(2) {
            let gap = w[1].at - w[0].at;
            assert!(gap >= Duration::from_millis(950), "{api}: {gap:?}");
        }
        assert!(waited >= Duration::from_millis(1950), "{waited:?}");
        assert!(waited < Duration::from_secs(4), "{waited:?}");
    }

    // An HTTP date 2 s ahead: between 1 and 2 s at one-second resolution.
    let a = c
        .chat(&endpoint(&server, Api::OpenAi), &ask("m", "date"))
        .unwrap();
    assert_eq!(a.attempts, 2);
    let seen = server.requests_for("date");
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_millis(3000),
        "{gap:?}"
    );

    // OpenAI's retry-after-ms wins over Retry-After.
    let a = c
        .chat(&endpoint(&server, Api::OpenAi), &ask("m", "millis"))
        .unwrap();
    assert_eq!(a.attempts, 2);
    let seen = server.requests_for("millis");
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(290) && gap < Duration::from_millis(900),
        "{gap:?}"
    );

    // A Retry-After past max_retry_after is cut to it.
    let capped = client(ClientConfig {
        max_retry_after: Duration::from_millis(100),
        ..fast()
    });
    let t = Instant::now();
    let a = capped
        .chat(
            &endpoint(&server, Api::Anthropic),
            &ask("m", "seconds capped"),
        )
        .unwrap();
    assert_eq!(a.attempts, 3);
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn judge_retries_transient_faults() {
    let fault = |r: &Request| -> Option<Reply> {
        let name = r.user.split(' ').next().unwrap_or("");
        Some(match name {
            "s500" => Reply::status(500),
            "s502" => Reply::status(502),
            "s503" => Reply::status(503),
            "s529" => Reply::status(529),
            "s408" => Reply::status(408),
            "drop" => Reply::Drop,
            "cutoff" => Reply::CutOff(verdict(&r.user)),
            "short" => Reply::ShortBody(verdict(&r.user)),
            "notjson" => Reply::Raw {
                status: 200,
                headers: vec![("Content-Type".into(), "text/html".into())],
                body: "<html>upstream connect error</html>".into(),
            },
            "slow" => Reply::slow(Duration::from_millis(1500), judge(r)),
            _ => return None,
        })
    };
    let server = JudgeServer::start(move |r: &Request| match fault(r) {
        Some(f) if r.attempt == 1 => f,
        _ => judge(r),
    });
    let c = client(ClientConfig {
        call_timeout: Duration::from_millis(400),
        ..fast()
    });
    for api in [Api::OpenAi, Api::Anthropic] {
        for name in [
            "s500", "s502", "s503", "s529", "s408", "drop", "cutoff", "short", "notjson", "slow",
        ] {
            let prompt = format!("{name} {api} {}", pair(name, true));
            let a = c
                .chat(&endpoint(&server, api), &ask("m", &prompt))
                .unwrap_or_else(|e| panic!("{name} {api}: {e}"));
            assert_eq!(a.text, "Assistant A is accurate. [[A]]", "{name} {api}");
            assert_eq!(a.attempts, 2, "{name} {api}");
            assert_eq!(server.requests_for(&prompt).len(), 2, "{name} {api}");
        }
    }
}

#[test]
fn judge_final_statuses_are_not_retried() {
    let server = JudgeServer::start(|r: &Request| {
        let status: u16 = r.user.parse().unwrap_or(200);
        match r.user.as_str() {
            "quota" => Reply::Error {
                status: 429,
                retry_after: None,
                body: Some(openai_quota_body()),
            },
            _ => Reply::status(status),
        }
    });
    let c = client(fast());
    for (api, user, status, needle, persistent) in [
        (
            Api::OpenAi,
            "400",
            400,
            "unsupported_value: Unsupported value: 'temperature'",
            false,
        ),
        (
            Api::OpenAi,
            "401",
            401,
            "invalid_api_key: Incorrect API key provided",
            true,
        ),
        (
            Api::OpenAi,
            "403",
            403,
            "does not have access to model `m`",
            true,
        ),
        (
            Api::OpenAi,
            "404",
            404,
            "model_not_found: The model `m` does not exist",
            true,
        ),
        (Api::OpenAi, "422", 422, "Invalid request.", false),
        (
            Api::OpenAi,
            "quota",
            429,
            "insufficient_quota: You exceeded your current quota",
            true,
        ),
        (
            Api::Anthropic,
            "400",
            400,
            "invalid_request_error: max_tokens: Field required",
            false,
        ),
        (
            Api::Anthropic,
            "401",
            401,
            "authentication_error: invalid x-api-key",
            true,
        ),
        (
            Api::Anthropic,
            "404",
            404,
            "not_found_error: model: m",
            true,
        ),
        (Api::Anthropic, "413", 413, "request_too_large", false),
    ] {
        let before = server.requests().len();
        let e = c
            .chat(&endpoint(&server, api), &ask("m", user))
            .unwrap_err();
        assert_eq!(
            server.requests().len(),
            before + 1,
            "{api} {user}: one request"
        );
        let CallError::Status {
            status: s,
            message,
            url,
        } = &e
        else {
            panic!("{api} {user}: {e:?}");
        };
        assert_eq!(*s, status);
        assert!(message.contains(needle), "{api} {user}: {message}");
        assert!(url.ends_with(if api == Api::OpenAi {
            "/v1/chat/completions"
        } else {
            "/v1/messages"
        }));
        assert_eq!(e.status(), Some(status));
        assert_eq!(e.is_persistent(), persistent, "{api} {user}");
        let text = e.to_string();
        assert!(text.contains(&format!("HTTP {status}")), "{text}");
    }
}

#[test]
fn judge_gives_up_after_max_attempts() {
    let server = JudgeServer::start(|r: &Request| match r.user.as_str() {
        "down" => Reply::status(503),
        "empty" => Reply::json(
            200,
            json!({"id": "x", "object": "chat.completion", "choices": []}),
        ),
        "refusal" => Reply::json(
            200,
            json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                "refusal": "I can't help with that."}, "finish_reason": "stop"}]}),
        ),
        "nocontent" => Reply::json(200, json!({"id": "msg", "type": "message"})),
        _ => Reply::slow(Duration::from_secs(2), judge(r)),
    });
    let c = client(ClientConfig {
        max_attempts: 3,
        call_timeout: Duration::from_millis(300),
        ..fast()
    });
    let e = c
        .chat(&endpoint(&server, Api::OpenAi), &ask("m", "down"))
        .unwrap_err();
    let CallError::Exhausted { attempts, last } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*attempts, 3);
    assert!(
        matches!(**last, CallError::Status { status: 503, .. }),
        "{last:?}"
    );
    assert_eq!(server.requests_for("down").len(), 3);
    assert_eq!(e.status(), Some(503));
    assert!(!e.is_persistent());
    let text = e.to_string();
    assert!(
        text.contains("gave up after 3 attempts") && text.contains("HTTP 503"),
        "{text}"
    );
    assert!(
        text.contains("server_error") || text.contains("overloaded"),
        "{text}"
    );

    // Timeouts: each attempt cut at call_timeout.
    let t = Instant::now();
    let e = c
        .chat(&endpoint(&server, Api::Anthropic), &ask("m", "hang"))
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_millis(1800),
        "{:?}",
        t.elapsed()
    );
    let CallError::Exhausted { attempts: 3, last } = &e else {
        panic!("{e:?}")
    };
    assert!(
        matches!(
            **last,
            CallError::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{last:?}"
    );

    // A 2xx without the answer names the field, and is not retried.
    for (api, user, field, detail) in [
        (
            Api::OpenAi,
            "empty",
            "choices[0].message.content",
            "choices is empty",
        ),
        (
            Api::OpenAi,
            "refusal",
            "choices[0].message.content",
            "refusal: I can't help",
        ),
        (Api::Anthropic, "nocontent", "content", "no content array"),
    ] {
        let e = c
            .chat(&endpoint(&server, api), &ask("m", user))
            .unwrap_err();
        let CallError::InvalidResponse {
            field: f,
            detail: d,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(f, field);
        assert!(d.starts_with(detail), "{d}");
        assert!(e.to_string().contains(field));
        assert_eq!(server.requests_for(user).len(), 1);
    }

    // Nothing listening: connection errors, retried, then given up.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = Endpoint {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        ..endpoint(&server, Api::OpenAi)
    };
    let e = c.chat(&dead, &ask("m", "x")).unwrap_err();
    let CallError::Exhausted { attempts: 3, last } = &e else {
        panic!("{e:?}")
    };
    assert!(
        matches!(
            **last,
            CallError::Transport {
                kind: TransportKind::Connection,
                ..
            }
        ),
        "{last:?}"
    );
}

#[test]
fn judge_rate_limit_spaces_requests_across_threads() {
    let server = JudgeServer::start(|r: &Request| {
        // Every third prompt fails once: retries take slots too.
        if r.user.ends_with('0') && r.attempt == 1 {
            Reply::status(500)
        } else {
            judge(r)
        }
    });
    let c = client(ClientConfig {
        max_rps: Some(20.0),
        ..fast()
    });
    let ep = endpoint(&server, Api::OpenAi);
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..4 {
            let (c, ep) = (&c, &ep);
            s.spawn(move || {
                for i in 0..3 {
                    c.chat(ep, &ask("m", &format!("rate {th} {i}"))).unwrap();
                }
            });
        }
    });
    let elapsed = t.elapsed();
    let mut at: Vec<Instant> = server.requests().iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 12 + 4, "12 calls, 4 retried once");
    at.sort();
    // 16 starts at 20/s: at least 15 intervals of 50 ms.
    assert!(elapsed >= Duration::from_millis(740), "{elapsed:?}");
    // Arrival times carry the server's scheduling jitter on a loaded machine: one request
    // late by up to a slot still leaves every three consecutive starts a slot apart.
    for w in at.windows(3) {
        assert!(
            w[2] - w[0] >= Duration::from_millis(50),
            "{:?}",
            w[2] - w[0]
        );
    }
}

#[test]
fn judge_many_threads_one_client() {
    // Faults chosen by prompt: every answer must still match its own prompt.
    let server = JudgeServer::start(|r: &Request| {
        let n: usize = r
            .user
            .split(' ')
            .nth(1)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        match (n % 5, r.attempt) {
            (0, 1) => Reply::status(500),
            (1, 1) => Reply::Drop,
            (2, 1 | 2) => Reply::rate_limited("0.01"),
            (3, 1) => Reply::CutOff(verdict(&r.user)),
            _ => judge(r),
        }
    });
    let c = std::sync::Arc::new(client(fast()));
    let handles: Vec<_> = (0..16)
        .map(|th| {
            let c = std::sync::Arc::clone(&c);
            let ep = endpoint(
                &server,
                if th % 2 == 0 {
                    Api::OpenAi
                } else {
                    Api::Anthropic
                },
            );
            std::thread::spawn(move || {
                let mut attempts = 0;
                for i in 0..10 {
                    let n = th * 10 + i;
                    let good_first = n % 3 != 0;
                    let prompt = format!("call {n} {}", pair(&n.to_string(), good_first));
                    let a = c.chat(&ep, &ask("m", &prompt)).unwrap();
                    let want = if good_first { "[[A]]" } else { "[[B]]" };
                    assert!(a.text.ends_with(want), "{n}: {}", a.text);
                    let expect = match n % 5 {
                        0 | 1 | 3 => 2,
                        2 => 3,
                        _ => 1,
                    };
                    assert_eq!(a.attempts, expect, "{n}");
                    attempts += a.attempts;
                }
                attempts
            })
        })
        .collect();
    let total: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(server.requests().len(), total as usize);
    assert_eq!(total, 160 + 32 + 32 + 64 + 32);
}

#[test]
fn judge_routes_from_env_to_the_stand_in() {
    let server = JudgeServer::start(judge);
    let openai_base = server.openai_base();
    let anthropic_base = server.url.clone();
    let env = move |k: &str| -> Option<String> {
        match k {
            "OPENAI_API_KEY" => Some(KEY.into()),
            "OPENAI_BASE_URL" => Some(openai_base.clone()),
            "ANTHROPIC_API_KEY" => Some(format!("{KEY}-ant")),
            "ANTHROPIC_BASE_URL" => Some(anthropic_base.clone()),
            "GEMINI_API_KEY" => Some(format!("{KEY}-gem")),
            _ => None,
        }
    };
    let c = client(fast());
    let call = |model: &str, provider: Option<Provider>, base: Option<&str>| {
        let ep = route(model, provider, base, &env).unwrap();
        let s = settings(ep.provider, model);
        let req = ChatRequest {
            system: s.system.then(|| "judge well".to_string()),
            temperature: s.temperature,
            max_tokens: s.max_tokens,
            stop: s.stop,
            ..ask(model, &pair(model, true))
        };
        let a = c.chat(&ep, &req).unwrap();
        assert!(a.text.ends_with("[[A]]"));
        server.requests().pop().unwrap()
    };

    let r = call("gpt-4o-2024-08-06", None, None);
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(r.json["max_tokens"], 2048);
    assert_eq!(r.system.as_deref(), Some("judge well"));

    // o1: no system message, temperature 1, no max_tokens.
    let r = call("o1-mini-2024-09-12", None, None);
    assert_eq!(r.system, None);
    assert_eq!(r.json["temperature"], 1.0);
    assert!(r.json.get("max_tokens").is_none());

    let r = call("claude-3-haiku-20240307", None, None);
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some(format!("{KEY}-ant").as_str()));
    assert_eq!(r.json["max_tokens"], 1024);
    assert_eq!(r.stop, vec!["\n\nHuman:".to_string()]);

    // Gemini through the OpenAI-compatible layout at a given base URL, with GEMINI_API_KEY.
    let gemini_base = format!("{}/v1beta/openai", server.url);
    let r = call(
        "gemini-1.5-pro-001",
        Some(Provider::Gemini),
        Some(&gemini_base),
    );
    assert_eq!(r.path, "/v1beta/openai/chat/completions");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}-gem").as_str())
    );
    assert_eq!(r.system, None);
    assert_eq!(r.json["max_tokens"], 4096);

    // A local OpenAI-compatible server without any key: no auth header.
    let ep = route(
        "Qwen/Qwen2.5-7B-Instruct",
        None,
        Some(&server.openai_base()),
        |_: &str| -> Option<String> { None },
    )
    .unwrap();
    assert_eq!(
        (ep.provider, ep.key.is_none()),
        (Provider::OpenAiCompatible, true)
    );
    c.chat(&ep, &ask("Qwen/Qwen2.5-7B-Instruct", "hi")).unwrap();
    let r = server.requests().pop().unwrap();
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.header("x-api-key"), None);
}

static STOP: AtomicBool = AtomicBool::new(false);

fn stop_asked() -> bool {
    STOP.load(Ordering::SeqCst)
}

#[test]
fn judge_cancellation_ends_the_wait() {
    let server = JudgeServer::start(|_: &Request| Reply::rate_limited("30"));
    let c = client(ClientConfig {
        max_retry_after: Duration::from_secs(60),
        cancelled: stop_asked,
        ..fast()
    });
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            STOP.store(true, Ordering::SeqCst);
        });
        let e = c
            .chat(&endpoint(&server, Api::OpenAi), &ask("m", "x"))
            .unwrap_err();
        assert!(matches!(e, CallError::Cancelled { attempts: 1 }), "{e:?}");
    });
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // Asked before: nothing is sent.
    let e = c
        .chat(&endpoint(&server, Api::OpenAi), &ask("m", "y"))
        .unwrap_err();
    assert!(matches!(e, CallError::Cancelled { attempts: 0 }), "{e:?}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn judge_key_is_never_shown() {
    // The server echoes the key in its error bodies, in a refusal and in a non-JSON body.
    let server = JudgeServer::start(|r: &Request| {
        let key = r
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .or(r.header("x-api-key"))
            .unwrap_or("")
            .to_string();
        match r.user.as_str() {
            "401" => Reply::status(401),
            "echo" => Reply::Error {
                status: 400,
                retry_after: None,
                body: Some(format!(
                    r#"{{"error":{{"message":"bad key {key}","type":"invalid_request_error"}}}}"#
                )),
            },
            "500" => Reply::Error {
                status: 500,
                retry_after: None,
                body: Some(format!("internal error for {key}")),
            },
            "notjson" => Reply::Raw {
                status: 200,
                headers: vec![],
                body: format!("<html>{key}</html>"),
            },
            "refusal" => Reply::json(
                200,
                json!({"choices": [{"message": {"content": null, "refusal": format!("no, {key}")}}]}),
            ),
            "slow" => Reply::slow(Duration::from_secs(2), judge(r)),
            _ => judge(r),
        }
    });
    let c = client(ClientConfig {
        max_attempts: 2,
        call_timeout: Duration::from_millis(300),
        ..fast()
    });
    let mut texts = vec![format!("{c:?}")];
    for api in [Api::OpenAi, Api::Anthropic] {
        let ep = endpoint(&server, api);
        texts.push(format!("{ep:?} {ep:#?} {:?}", ep.key));
        for user in ["401", "echo", "500", "notjson", "refusal", "slow"] {
            let e = c.chat(&ep, &ask("m", user)).unwrap_err();
            texts.push(all_text(&e));
        }
        // Invalid and Cancelled, and a dead port.
        let e = c
            .chat(
                &ep,
                &ChatRequest {
                    max_tokens: None,
                    temperature: Some(f64::INFINITY),
                    ..ask("m", "x")
                },
            )
            .unwrap_err();
        texts.push(all_text(&e));
        let dead = Endpoint {
            base_url: "http://127.0.0.1:9/v1".into(),
            ..ep.clone()
        };
        texts.push(all_text(&c.chat(&dead, &ask("m", "x")).unwrap_err()));
    }
    let cancelled = client(ClientConfig {
        cancelled: || true,
        ..fast()
    });
    texts.push(all_text(
        &cancelled
            .chat(&endpoint(&server, Api::OpenAi), &ask("m", "x"))
            .unwrap_err(),
    ));
    for t in &texts {
        assert!(!t.contains(KEY), "{t}");
        assert!(!t.contains("DO-NOT-LEAK"), "{t}");
    }
    // The echoing error bodies were quoted, with the key cut out.
    assert!(texts.iter().any(|t| t.contains("bad key ***")));
    assert!(texts.iter().any(|t| t.contains("internal error for ***")));
    assert!(texts.iter().any(|t| t.contains("<html>***</html>")));

    // The key travelled only in its header: not in the path, the body or another header.
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        18,
        "per API: 401, echo, refusal once; 500, notjson, slow twice"
    );
    for r in &requests {
        let (auth, other) = match r.api {
            Some(WireApi::OpenAi) => ("authorization", "x-api-key"),
            _ => ("x-api-key", "authorization"),
        };
        let expected = if auth == "authorization" {
            format!("Bearer {KEY}")
        } else {
            KEY.to_string()
        };
        assert_eq!(r.header(auth), Some(expected.as_str()));
        assert_eq!(r.header(other), None);
        assert!(!r.path.contains(KEY) && !r.body.contains(KEY));
        for (k, v) in &r.headers {
            assert!(k == auth || !v.contains(KEY), "{k}");
        }
    }
}

#[test]
fn judge_http_dates_round_trip() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_590_400); // 2025-12-01 12:00:00
    assert_eq!(http_date(t), "Mon, 01 Dec 2025 12:00:00 GMT");
    assert_eq!(parse_http_date(&http_date(t)), Some(t));
    assert_eq!(
        http_date(SystemTime::UNIX_EPOCH),
        "Thu, 01 Jan 1970 00:00:00 GMT"
    );
}
