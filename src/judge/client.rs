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
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

pub use super::retry_after::{parse_http_date, parse_retry_after, retry_after};
use super::route::Endpoint;
pub use super::wire::{parse_answer, request_body};

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

pub(super) fn short(text: &str) -> String {
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
