//! A stand-in for the chat APIs judges are called on: a std `TcpListener` on 127.0.0.1
//! (one thread per connection, `Connection: close`) speaking
//!
//! * OpenAI chat completions, `POST .../chat/completions` under any base (`/v1` as OpenAI,
//!   Together, vLLM; `/v1beta/openai` as Gemini), answering `chat.completion` objects;
//! * Anthropic messages, `POST /v1/messages`, answering `message` objects.
//!
//! The response shapes and error bodies are the APIs' own (ids, `object`/`type`, `created`,
//! `usage` with its details, `system_fingerprint`; `{"error": {message, type, param, code}}`
//! and `{"type": "error", "error": {type, message}, "request_id"}`), as recorded from them.
//!
//! A handler decides every answer from the parsed [`Request`]: the text, or a fault
//! ([`Reply`]): a status with `Retry-After` and the API's error body, a slow answer, a body cut
//! off, a dropped connection. [`Request::attempt`] counts the requests with the same prompt,
//! so "the first 2 calls for this prompt get a 429" is `if r.attempt <= 2`. Every request is
//! recorded, headers included.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The wire format a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireApi {
    OpenAi,
    Anthropic,
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `None`: a path neither API serves (answered 404).
    pub api: Option<WireApi>,
    pub method: String,
    pub path: String,
    /// In arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body parsed (`Null` if it is not JSON).
    pub json: Value,
    pub model: String,
    /// OpenAI: the `system` (or `developer`) messages' text; Anthropic: `system`.
    pub system: Option<String>,
    /// The `user` messages' text, joined by blank lines.
    pub user: String,
    /// OpenAI `stop` / Anthropic `stop_sequences`.
    pub stop: Vec<String>,
    /// 0-based arrival order over the server's life.
    pub n: usize,
    /// 1-based: how many requests with this API, model, system and user text have arrived,
    /// this one included.
    pub attempt: usize,
    /// When the request had been read.
    pub at: Instant,
}

impl Request {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with the API's success object holding this text (cut at a requested stop
    /// sequence, as the APIs do).
    Text(String),
    /// A status with the API's usual error body for it (`body: None`) or `body`, and a
    /// `Retry-After` header when given ("1", "0.5", or an HTTP date: [`http_date`]).
    Error {
        status: u16,
        retry_after: Option<String>,
        body: Option<String>,
    },
    /// Anything: a status, headers and a body (e.g. a 200 whose JSON lacks the answer).
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Waits, then answers.
    Slow { delay: Duration, then: Box<Reply> },
    /// 200 whose JSON body stops halfway (the HTTP message itself is whole).
    CutOff(String),
    /// 200 announcing the whole body's length, then closing after half of it.
    ShortBody(String),
    /// Closes the connection without answering.
    Drop,
}

impl Reply {
    pub fn text(s: impl Into<String>) -> Self {
        Reply::Text(s.into())
    }

    /// The status with the API's own error body.
    pub fn status(status: u16) -> Self {
        Reply::Error {
            status,
            retry_after: None,
            body: None,
        }
    }

    /// 429 with `Retry-After: {retry_after}`.
    pub fn rate_limited(retry_after: &str) -> Self {
        Reply::Error {
            status: 429,
            retry_after: Some(retry_after.to_string()),
            body: None,
        }
    }

    pub fn slow(delay: Duration, then: Reply) -> Self {
        Reply::Slow {
            delay,
            then: Box::new(then),
        }
    }

    pub fn json(status: u16, body: Value) -> Self {
        Reply::Raw {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }
}

/// Decides each answer.
pub type Handler = Box<dyn Fn(&Request) -> Reply + Send + Sync>;

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    seen: HashMap<String, usize>,
}

/// A running stand-in.
pub struct JudgeServer {
    /// `http://127.0.0.1:{port}`: the Anthropic base URL.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl JudgeServer {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let handler: Arc<Handler> = Arc::new(Box::new(handler));
        let s2 = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s3, h) = (Arc::clone(&s2), Arc::clone(&handler));
                std::thread::spawn(move || {
                    let _ = serve(stream, &s3, &h);
                });
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// The OpenAI-style base URL (`{url}/v1`).
    pub fn openai_base(&self) -> String {
        format!("{}/v1", self.url)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests whose user text contains `fragment`.
    pub fn requests_for(&self, fragment: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.user.contains(fragment))
            .collect()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, handler: &Handler) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let path = words.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let path_only = path.split('?').next().unwrap_or("").to_string();
    let api = if method == "POST" && path_only.ends_with("/chat/completions") {
        Some(WireApi::OpenAi)
    } else if method == "POST" && path_only == "/v1/messages" {
        Some(WireApi::Anthropic)
    } else {
        None
    };
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let (model, system, user, stop) = fields(api, &parsed);
    let request = {
        let mut s = state.lock().unwrap();
        let key = format!("{api:?}\u{0}{model}\u{0}{system:?}\u{0}{user}");
        let seen = s.seen.entry(key).or_insert(0);
        *seen += 1;
        let seen = *seen;
        let r = Request {
            api,
            method,
            path,
            headers,
            body,
            json: parsed,
            model,
            system,
            user,
            stop,
            n: s.requests.len(),
            attempt: seen,
            at: Instant::now(),
        };
        s.requests.push(r.clone());
        r
    };
    let mut stream = stream;
    let Some(api) = request.api else {
        let body = json!({"error": {
            "message": format!("Invalid URL ({} {})", request.method, path_only),
            "type": "invalid_request_error", "param": null, "code": null}});
        return write(
            &mut stream,
            404,
            &json_headers(),
            body.to_string().as_bytes(),
        );
    };
    if request.json.is_null() {
        let reply = error_reply(api, 400, &request, Some(bad_json_body(api)));
        return send(&mut stream, api, &request, reply);
    }
    let reply = handler(&request);
    send(&mut stream, api, &request, reply)
}

/// (model, system, user, stop) of a request body.
fn fields(api: Option<WireApi>, v: &Value) -> (String, Option<String>, String, Vec<String>) {
    let model = v["model"].as_str().unwrap_or("").to_string();
    let text_of = |c: &Value| match c {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    let messages = v["messages"].as_array().cloned().unwrap_or_default();
    let of_role = |roles: &[&str]| {
        messages
            .iter()
            .filter(|m| roles.contains(&m["role"].as_str().unwrap_or("")))
            .map(|m| text_of(&m["content"]))
            .collect::<Vec<_>>()
    };
    let system = match api {
        Some(WireApi::Anthropic) => (!v["system"].is_null()).then(|| text_of(&v["system"])),
        _ => {
            let s = of_role(&["system", "developer"]);
            (!s.is_empty()).then(|| s.join("\n\n"))
        }
    };
    let user = of_role(&["user"]).join("\n\n");
    let stop_field = match api {
        Some(WireApi::Anthropic) => &v["stop_sequences"],
        _ => &v["stop"],
    };
    let stop = match stop_field {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    (model, system, user, stop)
}

fn json_headers() -> Vec<(String, String)> {
    vec![("Content-Type".into(), "application/json".into())]
}

fn send(stream: &mut TcpStream, api: WireApi, req: &Request, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Text(text) => {
            let body = success_body(api, req, &text).to_string();
            write(stream, 200, &success_headers(api), body.as_bytes())
        }
        Reply::Error {
            status,
            retry_after,
            body,
        } => {
            let mut reply = error_reply(api, status, req, body);
            if let (Reply::Raw { headers, .. }, Some(ra)) = (&mut reply, retry_after) {
                headers.push(("Retry-After".into(), ra));
            }
            send(stream, api, req, reply)
        }
        Reply::Raw {
            status,
            headers,
            body,
        } => write(stream, status, &headers, body.as_bytes()),
        Reply::Slow { delay, then } => {
            std::thread::sleep(delay);
            send(stream, api, req, *then)
        }
        Reply::CutOff(text) => {
            let body = success_body(api, req, &text).to_string();
            let half = &body.as_bytes()[..body.len() / 2];
            write(stream, 200, &success_headers(api), half)
        }
        Reply::ShortBody(text) => {
            let body = success_body(api, req, &text).to_string();
            let head = head(200, &success_headers(api), body.len());
            stream.write_all(head.as_bytes())?;
            stream.write_all(&body.as_bytes()[..body.len() / 2])?;
            stream.flush()?;
            stream.shutdown(Shutdown::Both)
        }
        Reply::Drop => stream.shutdown(Shutdown::Both),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Site Overloaded",
        _ => "Status",
    }
}

fn head(status: u16, headers: &[(String, String)], len: usize) -> String {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {len}\r\nConnection: close\r\nDate: {}\r\n",
        reason(status),
        http_date(SystemTime::now())
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

fn write(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    stream.write_all(head(status, headers, body.len()).as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

fn success_headers(api: WireApi) -> Vec<(String, String)> {
    let mut h = json_headers();
    match api {
        WireApi::OpenAi => {
            h.push(("openai-processing-ms".into(), "412".into()));
            h.push(("x-request-id".into(), "req_5e2b7c1f0a9d4e8b".into()));
            h.push(("x-ratelimit-remaining-requests".into(), "9999".into()));
        }
        WireApi::Anthropic => {
            h.push(("request-id".into(), "req_011CStandIn".into()));
            h.push(("anthropic-ratelimit-requests-remaining".into(), "49".into()));
        }
    }
    h
}

fn tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The API's success object for `text`, cut at the first requested stop sequence.
pub fn success_body(api: WireApi, req: &Request, text: &str) -> Value {
    let cut = req
        .stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()).map(|i| (i, s.clone())))
        .min();
    let (text, stopped) = match &cut {
        Some((i, s)) => (&text[..*i], Some(s.clone())),
        None => (text, None),
    };
    let input = tokens(req.system.as_deref().unwrap_or("")) + tokens(&req.user);
    let output = tokens(text);
    match api {
        WireApi::OpenAi => json!({
            "id": format!("chatcmpl-StandIn{:017}", req.n),
            "object": "chat.completion",
            "created": 1_733_011_200 + req.n as u64,
            "model": req.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": input,
                "completion_tokens": output,
                "total_tokens": input + output,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
                }
            },
            "service_tier": "default",
            "system_fingerprint": "fp_f33667828e"
        }),
        WireApi::Anthropic => json!({
            "id": format!("msg_01StandIn{:014}", req.n),
            "type": "message",
            "role": "assistant",
            "model": req.model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": if stopped.is_some() { "stop_sequence" } else { "end_turn" },
            "stop_sequence": stopped,
            "usage": {
                "input_tokens": input,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": output,
                "service_tier": "standard"
            }
        }),
    }
}

/// OpenAI's masking of a key in its 401 message: `sk-a****...wxyz`.
fn masked(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "***".into();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

fn bad_json_body(api: WireApi) -> String {
    match api {
        WireApi::OpenAi => json!({"error": {
            "message": "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
            "type": "invalid_request_error", "param": null, "code": null}}),
        WireApi::Anthropic => anthropic_error("invalid_request_error", "There was an issue with your request body: invalid JSON"),
    }
    .to_string()
}

fn anthropic_error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CStandInError"})
}

/// The API's own error body for `status` (OpenAI 502 is Cloudflare's HTML page).
pub fn error_body(api: WireApi, status: u16, req: &Request) -> String {
    let model = &req.model;
    match api {
        WireApi::OpenAi => {
            let key = req
                .header("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .unwrap_or("");
            let (message, kind, param, code) = match status {
                400 => (
                    "Unsupported value: 'temperature' does not support 0.0 with this model. Only the default (1) value is supported.".to_string(),
                    "invalid_request_error", json!("temperature"), json!("unsupported_value"),
                ),
                401 => (
                    format!("Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.", masked(key)),
                    "invalid_request_error", Value::Null, json!("invalid_api_key"),
                ),
                403 => (
                    format!("Project `proj_StandIn` does not have access to model `{model}`"),
                    "invalid_request_error", Value::Null, json!("model_not_found"),
                ),
                404 => (
                    format!("The model `{model}` does not exist or you do not have access to it."),
                    "invalid_request_error", Value::Null, json!("model_not_found"),
                ),
                429 => (
                    format!("Rate limit reached for {model} in organization org-StandIn on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms. Visit https://platform.openai.com/account/rate-limits to learn more."),
                    "requests", Value::Null, json!("rate_limit_exceeded"),
                ),
                502 => {
                    return "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n".into();
                }
                503 => (
                    "The engine is currently overloaded, please try again later.".into(),
                    "server_error", Value::Null, Value::Null,
                ),
                s if s >= 500 => (
                    "The server had an error while processing your request. Sorry about that!".into(),
                    "server_error", Value::Null, Value::Null,
                ),
                _ => ("Invalid request.".into(), "invalid_request_error", Value::Null, Value::Null),
            };
            json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
                .to_string()
        }
        WireApi::Anthropic => {
            let (kind, message) = match status {
                400 => ("invalid_request_error", "max_tokens: Field required".to_string()),
                401 => ("authentication_error", "invalid x-api-key".into()),
                403 => ("permission_error", "Your API key does not have permission to use the specified resource.".into()),
                404 => ("not_found_error", format!("model: {model}")),
                413 => ("request_too_large", "Request exceeds the maximum allowed number of bytes.".into()),
                429 => ("rate_limit_error", "This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.".into()),
                529 => ("overloaded_error", "Overloaded".into()),
                s if s >= 500 => ("api_error", "Internal server error".into()),
                _ => ("invalid_request_error", "Invalid request.".into()),
            };
            anthropic_error(kind, &message).to_string()
        }
    }
}

/// OpenAI's 429 for an account without credit (not worth retrying).
pub fn openai_quota_body() -> String {
    json!({"error": {
        "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}})
    .to_string()
}

fn error_reply(api: WireApi, status: u16, req: &Request, body: Option<String>) -> Reply {
    let body = body.unwrap_or_else(|| error_body(api, status, req));
    let content_type = if body.starts_with('<') {
        "text/html"
    } else {
        "application/json"
    };
    let mut headers = vec![("Content-Type".to_string(), content_type.to_string())];
    if api == WireApi::Anthropic {
        headers.push((
            "x-should-retry".into(),
            (status == 429 || status >= 500).to_string(),
        ));
    }
    Reply::Raw {
        status,
        headers,
        body,
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as `Retry-After` and `Date` carry it.
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
