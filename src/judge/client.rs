//! A blocking chat client for generative judges, on ureq 3 + rustls: the OpenAI chat
//! completions wire format (OpenAI, Gemini's and Together's OpenAI-compatible endpoints, vLLM,
//! SGLang, llama.cpp, Ollama) and Anthropic's messages API.
//!
//! * One [`Client`] serves any number of threads (`Send + Sync`, one connection pool); the
//!   caller brings the threads.
//! * Every call is retried on 408, 429, 5xx, timeouts, dropped connections and bodies that are
//!   cut off or not JSON, with exponential backoff and full jitter (deterministic: drawn from
//!   [`ClientConfig::seed`] and the request), or after `Retry-After` / `retry-after-ms` on 429
//!   and 503. Other statuses are final at once.
//! * [`ClientConfig::max_rps`] spaces request starts (retries included) across all threads.
//! * The API key lives in a [`Secret`]: it is sent only as the `Authorization: Bearer` or
//!   `x-api-key` header, never formatted, and cut out of any response text an error quotes.
//!
//! Upstream (rewardbench/generative.py) tries 25 times with a fixed 10 s sleep;
//! [`ClientConfig::upstream`] is that schedule. The default (10 attempts, backoff 1 s doubling
//! to a 60 s cap, jittered) has the same worst-case sleep, about 4 minutes, but retries sooner.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::route::Endpoint;

/// The Anthropic API version sent as `anthropic-version`.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Largest response body read (bytes).
const BODY_LIMIT: u64 = 16 * 1024 * 1024;
/// Longest response text an error quotes (characters).
const EXCERPT_CHARS: usize = 300;
/// Sleeps are cut into slices this long to notice cancellation.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

pub use crate::secret::Secret;

/// A wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `POST {base}/chat/completions`, `Authorization: Bearer {key}`; the base URL includes
    /// the version (`https://api.openai.com/v1`), as `OPENAI_BASE_URL` does.
    OpenAi,
    /// `POST {base}/v1/messages`, `x-api-key: {key}`, `anthropic-version: 2023-06-01`; the base
    /// URL has no version (`https://api.anthropic.com`), as `ANTHROPIC_BASE_URL`.
    Anthropic,
}

impl Api {
    /// The URL a chat call goes to, from a base URL.
    pub fn url(self, base_url: &str) -> String {
        let base = base_url.trim_end_matches('/');
        match self {
            Api::OpenAi => format!("{base}/chat/completions"),
            Api::Anthropic => format!("{base}/v1/messages"),
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::OpenAi => "OpenAI",
            Api::Anthropic => "Anthropic",
        })
    }
}

/// One single-turn chat call: an optional system prompt and one user message.
///
/// `None` fields are left out of the request (the server's default applies), as is an empty
/// `stop` and an empty system prompt. The Anthropic API needs `max_tokens`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub system: Option<String>,
    pub user: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// OpenAI `stop`, Anthropic `stop_sequences`.
    pub stop: Vec<String>,
    /// OpenAI `seed` (best-effort determinism on OpenAI, honoured by vLLM and SGLang); the
    /// Anthropic API has none and it is not sent there.
    pub seed: Option<i64>,
}

/// Token counts as the server reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// OpenAI `prompt_tokens`, Anthropic `input_tokens`.
    pub input_tokens: u64,
    /// OpenAI `completion_tokens`, Anthropic `output_tokens`.
    pub output_tokens: u64,
}

/// A judge's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatAnswer {
    /// OpenAI `choices[0].message.content`; Anthropic: the `text` blocks of `content`, joined.
    /// As sent (not stripped).
    pub text: String,
    /// HTTP requests this answer took (1 = no retry).
    pub attempts: u32,
    /// The model the server says answered, if it says.
    pub model: Option<String>,
    /// OpenAI `finish_reason` (`stop`, `length`, ...), Anthropic `stop_reason` (`end_turn`,
    /// `max_tokens`, `stop_sequence`, ...).
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
}

/// What a failed transport step was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The connect or whole-call timeout ran out (retried).
    Timeout,
    /// Refused, reset or dropped connection, or a response cut off (retried).
    Connection,
    /// A response that is not HTTP (retried).
    Protocol,
    /// The host name does not resolve (not retried: a wrong URL, most likely).
    Dns,
    /// TLS failed, e.g. an untrusted certificate (not retried).
    Tls,
    /// Anything else: a bad URL, a body over the size limit, ... (not retried).
    Other,
}

impl TransportKind {
    fn retryable(self) -> bool {
        matches!(
            self,
            TransportKind::Timeout | TransportKind::Connection | TransportKind::Protocol
        )
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Timeout => "timed out",
            TransportKind::Connection => "connection failed",
            TransportKind::Protocol => "bad HTTP response",
            TransportKind::Dns => "host not found",
            TransportKind::Tls => "TLS failed",
            TransportKind::Other => "request failed",
        })
    }
}

/// Why a chat call failed. No variant holds the API key: URLs are shown without query or
/// user info, and quoted response text has the key cut out.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// A status that is not retried (400, 401, 403, 404, 422, ..., 429 `insufficient_quota`),
    /// or the last of the retried ones inside [`CallError::Exhausted`].
    #[error("{url}: HTTP {status}{}: {message}", reason(.status))]
    Status {
        url: String,
        status: u16,
        /// The API's error message (`error.message`, with its type or code), or the start of
        /// the body.
        message: String,
    },
    /// Every attempt failed with a retried error.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted {
        attempts: u32,
        #[source]
        last: Box<CallError>,
    },
    /// A 2xx JSON body without the answer (not retried).
    #[error("{url}: the response has no {field} ({detail})")]
    InvalidResponse {
        url: String,
        /// The missing or mistyped field, as a path: `choices[0].message.content`.
        field: String,
        detail: String,
    },
    /// A 2xx body that is not JSON or is cut off (retried).
    #[error("{url}: the response body is not valid JSON ({reason}): {excerpt}")]
    BadBody {
        url: String,
        reason: String,
        excerpt: String,
    },
    /// The request never got a whole response.
    #[error("{url}: {kind}: {source}")]
    Transport {
        url: String,
        kind: TransportKind,
        #[source]
        source: ureq::Error,
    },
    /// A request or setting this client cannot send (nothing was sent).
    #[error("invalid judge request: {0}")]
    Invalid(String),
    /// Cancellation was asked for ([`ClientConfig::cancelled`]) before or between attempts.
    #[error("cancelled after {attempts} attempts")]
    Cancelled { attempts: u32 },
}

fn reason(status: &u16) -> String {
    ureq::http::StatusCode::from_u16(*status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

impl CallError {
    /// The HTTP status of the final response, if it was one (through [`CallError::Exhausted`]).
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            CallError::Exhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// Whether every call to this endpoint will fail the same way (bad key, no access, unknown
    /// model, no quota, a wrong URL, a bad setting): a run should stop rather than score every
    /// example as an error.
    pub fn is_persistent(&self) -> bool {
        match self {
            CallError::Status {
                status, message, ..
            } => matches!(status, 401 | 403 | 404) || message.contains("insufficient_quota"),
            CallError::Transport { kind, .. } => !kind.retryable(),
            CallError::Invalid(_) => true,
            _ => false,
        }
    }
}

/// Client settings. [`Default`] suits hosted APIs; tests use tiny durations.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// TCP + TLS connection setup.
    pub connect_timeout: Duration,
    /// One whole attempt, from connecting to the last byte of the body.
    pub call_timeout: Duration,
    /// HTTP requests per call, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Backoff before retry n (n = 1, 2, ...): `min(backoff_cap, backoff_base * 2^(n-1))`,
    /// times a uniform draw in [0, 1) when `jitter` ("full jitter").
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub jitter: bool,
    /// Seeds the jitter. A draw depends only on the seed, the request and the retry number,
    /// so a rerun sleeps the same, whatever the threads do.
    pub seed: u64,
    /// A `Retry-After` longer than this is cut to it.
    pub max_retry_after: Duration,
    /// Requests per second, all threads and retries together (`None`: no limit). Starts are
    /// spaced at least `1 / max_rps` apart.
    pub max_rps: Option<f64>,
    /// Polled before each attempt and while sleeping; `true` ends the call with
    /// [`CallError::Cancelled`]. The default is the run's Ctrl-C flag.
    pub cancelled: fn() -> bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            // The OpenAI and Anthropic SDKs' default: long judgments take minutes.
            call_timeout: Duration::from_secs(600),
            max_attempts: 10,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            jitter: true,
            seed: 0,
            max_retry_after: Duration::from_secs(120),
            max_rps: None,
            cancelled: crate::run::cancel::requested,
        }
    }
}

impl ClientConfig {
    /// Upstream's schedule (`API_MAX_RETRY = 25`, `API_RETRY_SLEEP = 10`): 25 attempts, 10 s
    /// between them, no jitter.
    pub fn upstream() -> Self {
        Self {
            max_attempts: 25,
            backoff_base: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(10),
            jitter: false,
            ..Self::default()
        }
    }

    /// The sleep before retry `retry` (1-based) of the request with identity `key`, when the
    /// server gave no `Retry-After`.
    pub fn backoff(&self, retry: u32, key: u64) -> Duration {
        let factor = 2f64.powi(retry.saturating_sub(1).min(62) as i32);
        let ceiling =
            (self.backoff_base.as_secs_f64() * factor).min(self.backoff_cap.as_secs_f64());
        let scale = if self.jitter {
            unit(self.seed, key, retry)
        } else {
            1.0
        };
        Duration::from_secs_f64((ceiling * scale).max(0.0))
    }
}

/// Spaces request starts `interval` apart across threads (a token bucket holding one token).
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    /// The time this request may start; reserves it.
    fn reserve(&self) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let at = (*next).max(now);
        *next = at + self.interval;
        at
    }
}

/// The chat client: one per run, shared by reference (or `Arc`) across threads.
pub struct Client {
    agent: ureq::Agent,
    config: ClientConfig,
    pacer: Option<Pacer>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One failed attempt, before the retry decision.
struct Failure {
    error: CallError,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn final_(error: CallError) -> Self {
        Self {
            error,
            retryable: false,
            retry_after: None,
        }
    }

    fn retry(error: CallError) -> Self {
        Self {
            error,
            retryable: true,
            retry_after: None,
        }
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, CallError> {
        if config.max_attempts == 0 {
            return Err(CallError::Invalid("max_attempts must be at least 1".into()));
        }
        if config.connect_timeout.is_zero() || config.call_timeout.is_zero() {
            return Err(CallError::Invalid("timeouts must be positive".into()));
        }
        let pacer = match config.max_rps {
            None => None,
            Some(rps) if rps.is_finite() && rps > 0.0 => Some(Pacer {
                interval: Duration::from_secs_f64(1.0 / rps),
                next: Mutex::new(Instant::now()),
            }),
            Some(rps) => {
                return Err(CallError::Invalid(format!(
                    "max_rps must be a positive number, not {rps}"
                )))
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            // Statuses are answers to classify, not errors.
            .http_status_as_error(false)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.call_timeout))
            // A redirected POST would drop its body; a 3xx is a final status instead.
            .max_redirects(0)
            .user_agent(format!("rewardbench/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            agent,
            config,
            pacer,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// One chat call to `endpoint`, retried as [`ClientConfig`] says.
    pub fn chat(&self, endpoint: &Endpoint, req: &ChatRequest) -> Result<ChatAnswer, CallError> {
        let body = request_body(endpoint.api, req)?;
        let url = endpoint.api.url(&endpoint.base_url);
        let shown = shown_url(&url);
        let key = request_key(endpoint.api, req);
        let mut attempts = 0;
        loop {
            if (self.config.cancelled)() {
                return Err(CallError::Cancelled { attempts });
            }
            if let Some(pacer) = &self.pacer {
                let at = pacer.reserve();
                self.sleep_until(at, attempts)?;
            }
            attempts += 1;
            let failure = match self.attempt(endpoint, &url, &shown, &body) {
                Ok(mut answer) => {
                    answer.attempts = attempts;
                    return Ok(answer);
                }
                Err(f) => f,
            };
            if !failure.retryable {
                return Err(failure.error);
            }
            if attempts >= self.config.max_attempts {
                return Err(CallError::Exhausted {
                    attempts,
                    last: Box::new(failure.error),
                });
            }
            let wait = match failure.retry_after {
                Some(d) => d.min(self.config.max_retry_after),
                None => self.config.backoff(attempts, key),
            };
            self.sleep_until(Instant::now() + wait, attempts)?;
        }
    }

    fn sleep_until(&self, at: Instant, attempts: u32) -> Result<(), CallError> {
        loop {
            let now = Instant::now();
            if now >= at {
                return Ok(());
            }
            if (self.config.cancelled)() {
                return Err(CallError::Cancelled { attempts });
            }
            std::thread::sleep((at - now).min(SLEEP_SLICE));
        }
    }

    fn attempt(
        &self,
        endpoint: &Endpoint,
        url: &str,
        shown: &str,
        body: &Value,
    ) -> Result<ChatAnswer, Failure> {
        let mut builder = self.agent.post(url).header("accept", "application/json");
        match (endpoint.api, &endpoint.key) {
            (Api::OpenAi, Some(key)) => {
                builder = builder.header("authorization", format!("Bearer {}", key.expose()));
            }
            (Api::Anthropic, Some(key)) => builder = builder.header("x-api-key", key.expose()),
            (_, None) => {}
        }
        if endpoint.api == Api::Anthropic {
            builder = builder.header("anthropic-version", ANTHROPIC_VERSION);
        }
        let transport = |e: ureq::Error| {
            let kind = transport_kind(&e);
            let error = CallError::Transport {
                url: shown.to_string(),
                kind,
                source: e,
            };
            if kind.retryable() {
                Failure::retry(error)
            } else {
                Failure::final_(error)
            }
        };
        let mut response = builder.send_json(body).map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let bytes = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
            .map_err(transport)?;
        let key = endpoint.key.as_ref();
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&bytes);
            let (message, code) = error_message(&text, key);
            let quota = code.as_deref() == Some("insufficient_quota");
            let retryable = status == 408 || (status == 429 && !quota) || status >= 500;
            return Err(Failure {
                error: CallError::Status {
                    url: shown.to_string(),
                    status,
                    message,
                },
                retryable,
                retry_after: retry_after.filter(|_| status == 429 || status == 503),
            });
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::retry(CallError::BadBody {
                url: shown.to_string(),
                reason: e.to_string(),
                excerpt: excerpt(&String::from_utf8_lossy(&bytes), key),
            })
        })?;
        parse_answer(endpoint.api, &value).map_err(|(field, detail)| {
            Failure::final_(CallError::InvalidResponse {
                url: shown.to_string(),
                field,
                detail: redact(&detail, key),
            })
        })
    }
}

fn transport_kind(e: &ureq::Error) -> TransportKind {
    match e {
        ureq::Error::Timeout(_) => TransportKind::Timeout,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => TransportKind::Timeout,
        ureq::Error::Io(_) | ureq::Error::ConnectionFailed => TransportKind::Connection,
        ureq::Error::Protocol(_) => TransportKind::Protocol,
        ureq::Error::HostNotFound => TransportKind::Dns,
        ureq::Error::Tls(_) | ureq::Error::Pem(_) | ureq::Error::Rustls(_) => TransportKind::Tls,
        _ => TransportKind::Other,
    }
}

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

/// An error body's message, `type: message` / `code: message` as both APIs send it
/// (`{"error": {"message", "type", "code"}}`, `{"type": "error", "error": {"type", "message"}}`),
/// else the start of the body; and the error code (`insufficient_quota`, ...). Key cut out.
fn error_message(body: &str, key: Option<&Secret>) -> (String, Option<String>) {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let code = field("code");
    let label = code.clone().or_else(|| field("type"));
    let message = match (field("message"), error.and_then(Value::as_str)) {
        (Some(m), _) => match &label {
            Some(l) => format!("{l}: {m}"),
            None => m,
        },
        (None, Some(m)) => m.to_string(),
        (None, None) => body.to_string(),
    };
    (excerpt(&message, key), code)
}

/// `text` with `key` cut out, whitespace collapsed, at most [`EXCERPT_CHARS`] characters.
fn excerpt(text: &str, key: Option<&Secret>) -> String {
    short(&redact(text, key))
}

fn short(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(EXCERPT_CHARS) {
        Some((i, _)) => format!("{}...", &flat[..i]),
        None => flat,
    }
}

fn redact(text: &str, key: Option<&Secret>) -> String {
    match key {
        Some(k) => k.redact(text),
        None => text.to_string(),
    }
}

/// `url` for messages: no user info, query or fragment.
pub(crate) fn shown_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

/// How long a `retry-after-ms` (OpenAI) or `Retry-After` (seconds or an HTTP date) header
/// says to wait, seen at `now`.
pub fn retry_after(headers: &ureq::http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    parse_retry_after(get("retry-after")?, now)
}

/// A `Retry-After` value: delay seconds (fractions accepted) or an HTTP date (a past date is
/// no wait).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An HTTP date (RFC 9110 §5.6.7): IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, and the
/// obsolete RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` and asctime `Sun Nov  6 08:49:37 1994`.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = |m: &str| {
        MONTHS
            .iter()
            .position(|x| x.eq_ignore_ascii_case(m))
            .map(|i| i as u32 + 1)
    };
    let parts: Vec<&str> = s.split_whitespace().collect();
    let (day, mon, year, time) = match parts.as_slice() {
        // IMF-fixdate
        [_, d, m, y, t, "GMT"] => (d.parse().ok()?, month(m)?, y.parse().ok()?, *t),
        // RFC 850
        [_, dmy, t, "GMT"] => {
            let mut it = dmy.split('-');
            let (d, m, y) = (it.next()?, it.next()?, it.next()?);
            let y: i64 = y.parse().ok()?;
            // Two-digit years: 70-99 are 19xx (RFC 9110 asks to treat > 50 years ahead as past).
            let y = if y < 100 {
                if y >= 70 {
                    1900 + y
                } else {
                    2000 + y
                }
            } else {
                y
            };
            (d.parse().ok()?, month(m)?, y, *t)
        }
        // asctime
        [_, m, d, t, y] => (d.parse().ok()?, month(m)?, y.parse().ok()?, *t),
        _ => return None,
    };
    let mut hms = time.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let mi: u64 = hms.next()?.parse().ok()?;
    let se: u64 = hms.next()?.parse().ok()?;
    if hms.next().is_some() || h > 23 || mi > 59 || se > 60 || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, mon, day);
    let secs = days.checked_mul(86_400)? + (h * 3600 + mi * 60 + se) as i64;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // A separator, so ("ab", "c") and ("a", "bc") differ.
    *h ^= 0xff;
    *h = h.wrapping_mul(0x0100_0000_01b3);
}

/// A request's identity for the jitter: its API, model and prompts.
fn request_key(api: Api, req: &ChatRequest) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325;
    fnv1a(&mut h, &[api as u8]);
    fnv1a(&mut h, req.model.as_bytes());
    fnv1a(&mut h, req.system.as_deref().unwrap_or("").as_bytes());
    fnv1a(&mut h, req.user.as_bytes());
    h
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1) from (seed, request, retry).
fn unit(seed: u64, key: u64, retry: u32) -> f64 {
    let x = splitmix64(seed ^ splitmix64(key ^ splitmix64(u64::from(retry))));
    (x >> 11) as f64 / (1u64 << 53) as f64
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
    fn secret_prints_stars() {
        let s = Secret::new("sk-very-secret");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "sk-very-secret");
    }

    #[test]
    fn judge_client_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Client>();
        check::<CallError>();
        check::<Secret>();
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
    fn urls() {
        assert_eq!(
            Api::OpenAi.url("https://api.openai.com/v1/"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            Api::Anthropic.url("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            shown_url("https://user:pw@host:8/v1/chat/completions?key=abc#x"),
            "https://host:8/v1/chat/completions"
        );
        assert_eq!(shown_url("http://h"), "http://h");
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

    #[test]
    fn error_messages_quote_the_api_and_hide_the_key() {
        let key = Secret::new("sk-abc123");
        let (m, code) = error_message(
            r#"{"error":{"message":"Incorrect API key provided: sk-abc123.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
            Some(&key),
        );
        assert_eq!(m, "invalid_api_key: Incorrect API key provided: ***.");
        assert_eq!(code.as_deref(), Some("invalid_api_key"));
        let (m, code) = error_message(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            None,
        );
        assert_eq!(m, "overloaded_error: Overloaded");
        assert_eq!(code, None);
        let (m, _) = error_message(&format!("<html>{}</html>", "x".repeat(1000)), None);
        assert_eq!(m.chars().count(), EXCERPT_CHARS + 3);
        let (m, _) = error_message(r#"{"error":"model not loaded"}"#, None);
        assert_eq!(m, "model not loaded");
    }

    #[test]
    fn retry_after_values() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770); // Sun, 06 Nov 1994 08:49:30 GMT
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 0.25 ", now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(date, now),
                Some(Duration::from_secs(7)),
                "{date}"
            );
        }
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(951_825_600))
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);

        let mut h = ureq::http::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "20".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(20)));
    }

    #[test]
    fn backoff_is_full_jitter_and_deterministic() {
        let cfg = ClientConfig::default();
        for retry in 1..=12 {
            let ceiling = (2f64.powi(retry as i32 - 1)).min(60.0);
            for key in 0..50u64 {
                let d = cfg.backoff(retry, key).as_secs_f64();
                assert!((0.0..ceiling).contains(&d), "{retry} {key} {d}");
                assert_eq!(cfg.backoff(retry, key), cfg.backoff(retry, key));
            }
        }
        // Draws spread over [0, 1): the mean of many is near 1/2.
        let mean: f64 = (0..2000).map(|k| unit(0, k, 1)).sum::<f64>() / 2000.0;
        assert!((mean - 0.5).abs() < 0.03, "{mean}");
        // Another seed, other draws.
        let other = ClientConfig {
            seed: 1,
            ..ClientConfig::default()
        };
        assert_ne!(cfg.backoff(3, 9), other.backoff(3, 9));
        // Upstream: 10 s every time, 24 sleeps = 240 s.
        let up = ClientConfig::upstream();
        assert_eq!(up.max_attempts, 25);
        assert!((1..25).all(|r| up.backoff(r, 5) == Duration::from_secs(10)));
        // The default's worst case is about upstream's total sleep.
        let no_jitter = ClientConfig {
            jitter: false,
            ..ClientConfig::default()
        };
        let worst: f64 = (1..no_jitter.max_attempts)
            .map(|r| no_jitter.backoff(r, 0).as_secs_f64())
            .sum();
        assert_eq!(worst, 243.0);
    }

    #[test]
    fn bad_configs_are_refused() {
        for cfg in [
            ClientConfig {
                max_attempts: 0,
                ..ClientConfig::default()
            },
            ClientConfig {
                max_rps: Some(0.0),
                ..ClientConfig::default()
            },
            ClientConfig {
                max_rps: Some(f64::NAN),
                ..ClientConfig::default()
            },
            ClientConfig {
                call_timeout: Duration::ZERO,
                ..ClientConfig::default()
            },
        ] {
            assert!(matches!(Client::new(cfg), Err(CallError::Invalid(_))));
        }
    }

    #[test]
    fn pacer_spaces_reservations() {
        let p = Pacer {
            interval: Duration::from_millis(100),
            next: Mutex::new(Instant::now()),
        };
        let a = p.reserve();
        let b = p.reserve();
        let c = p.reserve();
        assert_eq!(b - a, Duration::from_millis(100));
        assert_eq!(c - b, Duration::from_millis(100));
    }
}
