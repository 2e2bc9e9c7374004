//! Which server a judge model is called on, with which key, and upstream's request settings.
//!
//! Routing, first match wins:
//! 1. `--api openai|anthropic|gemini|together` names the provider;
//! 2. else `--base_url URL` alone: any OpenAI-compatible server (vLLM, SGLang, llama.cpp,
//!    Ollama), a key optional (`OPENAI_API_KEY` if set, as the OpenAI SDK does);
//! 3. else upstream's exact model lists (generative.py and generative_v2.py, merged);
//! 4. else prefixes: `gpt-`, `o1-`, `o3-`, `o4-` (and `o1`, `o3`) are OpenAI, `claude-`
//!    Anthropic, `gemini-` Gemini's OpenAI-compatible endpoint.
//!
//! Base URLs: `--base_url`, else `OPENAI_BASE_URL` (with `/v1`) / `ANTHROPIC_BASE_URL` (without)
//! for those two, else the provider's. Keys: `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`,
//! `GEMINI_API_KEY`, `TOGETHER_API_KEY`; a hosted provider needs its key unless the base URL is
//! on this machine (localhost, 127.0.0.0/8, ::1).

use std::fmt;
use std::str::FromStr;

use super::client::{shown_url, Api, Secret};

/// Upstream's model lists, as export/extract_judge_prompts.py extracted them from
/// generative_v2.py and generative.py (v2's lists hold v1's): 20 OpenAI, 13 Anthropic,
/// 6 Together, 9 Gemini names.
pub use crate::scorer::judge::prompts::{
    ANTHROPIC_MODELS as ANTHROPIC_MODEL_LIST, GEMINI_MODELS as GEMINI_MODEL_LIST,
    OPENAI_MODELS as OPENAI_MODEL_LIST, TOGETHER_MODELS as TOGETHER_MODEL_LIST,
};

pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// Gemini's OpenAI-compatible endpoint, as generative_v2.py's ratings use it.
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta/openai";
pub const TOGETHER_BASE_URL: &str = "https://api.together.xyz/v1";

/// anthropic.HUMAN_PROMPT, upstream's Anthropic stop sequence.
pub const ANTHROPIC_HUMAN_PROMPT: &str = "\n\nHuman:";

/// Who serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    OpenAi,
    Anthropic,
    /// Through its OpenAI-compatible endpoint ([`GEMINI_BASE_URL`]).
    Gemini,
    Together,
    /// Any OpenAI-compatible server at `--base_url` (vLLM, SGLang, llama.cpp, Ollama, a proxy).
    OpenAiCompatible,
}

impl Provider {
    /// The `--api` values.
    pub const NAMES: [&'static str; 4] = ["openai", "anthropic", "gemini", "together"];

    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::Together => "together",
            Provider::OpenAiCompatible => "openai-compatible",
        }
    }

    /// The wire format.
    pub fn api(self) -> Api {
        match self {
            Provider::Anthropic => Api::Anthropic,
            _ => Api::OpenAi,
        }
    }

    /// The variable holding the key (optional for [`Provider::OpenAiCompatible`]).
    pub fn key_var(self) -> &'static str {
        match self {
            Provider::OpenAi | Provider::OpenAiCompatible => "OPENAI_API_KEY",
            Provider::Anthropic => "ANTHROPIC_API_KEY",
            Provider::Gemini => "GEMINI_API_KEY",
            Provider::Together => "TOGETHER_API_KEY",
        }
    }

    /// Hosted APIs need a key (unless pointed at this machine).
    pub fn needs_key(self) -> bool {
        self != Provider::OpenAiCompatible
    }
}

/// Human names (`OpenAI`, ...); [`Provider::name`] is the `--api` value.
impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::OpenAi => "OpenAI",
            Provider::Anthropic => "Anthropic",
            Provider::Gemini => "Gemini",
            Provider::Together => "Together",
            Provider::OpenAiCompatible => "OpenAI-compatible",
        })
    }
}

impl FromStr for Provider {
    type Err = RouteError;

    /// `openai`, `anthropic`, `gemini`, `together` (any case); `openai-compatible` too.
    fn from_str(s: &str) -> Result<Self, RouteError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "openai" => Ok(Provider::OpenAi),
            "anthropic" => Ok(Provider::Anthropic),
            "gemini" => Ok(Provider::Gemini),
            "together" => Ok(Provider::Together),
            "openai-compatible" => Ok(Provider::OpenAiCompatible),
            _ => Err(RouteError::UnknownApi(s.to_string())),
        }
    }
}

/// Where and how to call a judge model.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub api: Api,
    /// No trailing `/`; OpenAI-style bases include the version (`.../v1`).
    pub base_url: String,
    pub key: Option<Secret>,
    pub provider: Provider,
}

/// Why a model has no endpoint. Names variables, never their values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "no API serves judge model `{model}`: it is in none of upstream's OpenAI, Anthropic, \
         Gemini or Together model lists and has no gpt-/o1-/o3-/o4-/claude-/gemini- prefix. \
         Upstream would load it in vLLM; here, serve it with vLLM, SGLang, llama.cpp or Ollama \
         and pass --base_url of that OpenAI-compatible server (e.g. --base_url \
         http://localhost:8000/v1), or name its provider with --api openai|anthropic|gemini|together"
    )]
    NoRoute { model: String },
    #[error(
        "judge model `{model}` is called on the {provider} API, which needs a key: set {var} \
         (or pass --base_url of a server on this machine)"
    )]
    MissingKey {
        model: String,
        provider: Provider,
        var: &'static str,
    },
    #[error("{origin} `{url}` is not an http:// or https:// URL with a host")]
    BadBaseUrl { origin: &'static str, url: String },
    #[error("--api openai-compatible needs --base_url (or OPENAI_BASE_URL)")]
    NeedsBaseUrl,
    #[error("unknown --api `{0}`: expected openai, anthropic, gemini or together")]
    UnknownApi(String),
}

/// The provider upstream's lists and the prefix rules give `model`.
pub fn provider_of(model: &str) -> Option<Provider> {
    if OPENAI_MODEL_LIST.contains(&model) {
        Some(Provider::OpenAi)
    } else if ANTHROPIC_MODEL_LIST.contains(&model) {
        Some(Provider::Anthropic)
    } else if TOGETHER_MODEL_LIST.contains(&model) {
        Some(Provider::Together)
    } else if GEMINI_MODEL_LIST.contains(&model) {
        Some(Provider::Gemini)
    } else if model.starts_with("gpt-")
        || matches!(model, "o1" | "o3")
        || ["o1-", "o3-", "o4-"].iter().any(|p| model.starts_with(p))
    {
        Some(Provider::OpenAi)
    } else if model.starts_with("claude-") {
        Some(Provider::Anthropic)
    } else if model.starts_with("gemini-") {
        Some(Provider::Gemini)
    } else {
        None
    }
}

/// The endpoint for judge `model`: see the module docs. `env` reads the environment
/// (`|k| std::env::var(k).ok()`); empty values count as unset, values are trimmed.
pub fn route(
    model: &str,
    api_flag: Option<Provider>,
    base_url_flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Endpoint, RouteError> {
    let env = |name: &str| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let base_url_flag = base_url_flag.map(str::trim).filter(|u| !u.is_empty());
    let provider = match (api_flag, base_url_flag) {
        (Some(p), _) => p,
        (None, Some(_)) => Provider::OpenAiCompatible,
        (None, None) => provider_of(model).ok_or_else(|| RouteError::NoRoute {
            model: model.to_string(),
        })?,
    };
    let (origin, base_url) = match base_url_flag {
        Some(u) => ("--base_url", u.to_string()),
        None => match provider {
            Provider::OpenAi => match env("OPENAI_BASE_URL") {
                Some(u) => ("OPENAI_BASE_URL", u),
                None => ("default", OPENAI_BASE_URL.to_string()),
            },
            Provider::Anthropic => match env("ANTHROPIC_BASE_URL") {
                Some(u) => ("ANTHROPIC_BASE_URL", u),
                None => ("default", ANTHROPIC_BASE_URL.to_string()),
            },
            Provider::Gemini => ("default", GEMINI_BASE_URL.to_string()),
            Provider::Together => ("default", TOGETHER_BASE_URL.to_string()),
            Provider::OpenAiCompatible => match env("OPENAI_BASE_URL") {
                Some(u) => ("OPENAI_BASE_URL", u),
                None => return Err(RouteError::NeedsBaseUrl),
            },
        },
    };
    let Some(host) = host_of(&base_url) else {
        return Err(RouteError::BadBaseUrl {
            origin,
            url: shown_url(&base_url),
        });
    };
    let base_url = base_url.trim_end_matches('/').to_string();
    let var = provider.key_var();
    let key = env(var).map(Secret::new);
    if key.is_none() && provider.needs_key() && !is_local_host(&host) {
        return Err(RouteError::MissingKey {
            model: model.to_string(),
            provider,
            var,
        });
    }
    Ok(Endpoint {
        api: provider.api(),
        base_url,
        key,
        provider,
    })
}

/// The host of an http(s) URL (lower case, IPv6 without brackets), if it has one.
fn host_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// localhost, *.localhost, 127.0.0.0/8, ::1, 0.0.0.0.
fn is_local_host(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip.is_unspecified(),
        Err(_) => false,
    }
}

/// Upstream's request settings for one provider and model.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub temperature: Option<f64>,
    /// `None`: not sent.
    pub max_tokens: Option<u32>,
    /// Whether the system prompt is sent. `false`: upstream drops it (o1) or has none to send
    /// (Gemini: the gemini modifier puts `prompt_v2_gemini` in the user turn).
    pub system: bool,
    pub stop: Vec<String>,
    /// Upstream strips the answer's surrounding whitespace (Anthropic's `output.strip()`).
    pub strip: bool,
}

/// OpenAI reasoning models: upstream's `"o1-" in model`, and the o1/o3/o4 names routed here.
pub fn is_openai_reasoning(model: &str) -> bool {
    model.contains("o1-")
        || matches!(model, "o1" | "o3")
        || ["o3-", "o4-"].iter().any(|p| model.starts_with(p))
}

/// The settings of upstream's judge calls (v1 pairwise `run_judge_pair`, RB2 4-way
/// `run_judge_four`):
///
/// | provider | temperature | max_tokens | system | stop | strip |
/// |---|---|---|---|---|---|
/// | OpenAI | 0 | 2048 | yes | | |
/// | OpenAI `o1-*` (and o3/o4) | 1 | not sent | dropped | | |
/// | Anthropic | 0 | 1024 | yes (separate) | `"\n\nHuman:"` | yes |
/// | Gemini | 0 | 4096 (`max_output_tokens`) | no | | |
/// | Together | 0 | 2048 | yes | | |
/// | OpenAI-compatible (upstream's vLLM path) | 0 | 2048 | yes | | |
///
/// Upstream calls Gemini's judge prompts through google-generativeai / google-genai with
/// `BLOCK_NONE` safety settings; the OpenAI-compatible endpoint has no safety settings, so
/// Google's defaults apply. Upstream's vLLM path also stops on token 128009 for Llama-3 names;
/// an OpenAI-compatible server stops at the chat template's end-of-turn itself.
pub fn settings(provider: Provider, model: &str) -> Settings {
    let plain = |max_tokens: u32| Settings {
        temperature: Some(0.0),
        max_tokens: Some(max_tokens),
        system: true,
        stop: Vec::new(),
        strip: false,
    };
    match provider {
        Provider::OpenAi if is_openai_reasoning(model) => Settings {
            temperature: Some(1.0),
            max_tokens: None,
            system: false,
            stop: Vec::new(),
            strip: false,
        },
        Provider::OpenAi | Provider::Together | Provider::OpenAiCompatible => plain(2048),
        Provider::Anthropic => Settings {
            stop: vec![ANTHROPIC_HUMAN_PROMPT.to_string()],
            strip: true,
            ..plain(1024)
        },
        Provider::Gemini => Settings {
            system: false,
            ..plain(4096)
        },
    }
}

/// The settings of upstream's ratings calls (generative_v2.py `_get_single_rating` through
/// `chat_completion`): temperature 0, max_tokens 1024, no system prompt, no stop, no strip, for
/// OpenAI, Anthropic and Gemini; 2048 for an OpenAI-compatible server (upstream's vLLM
/// `SamplingParams`).
///
/// Differences from upstream: o1/o3/o4 get the reasoning rule (temperature 1, no max_tokens),
/// since OpenAI refuses upstream's temperature 0 and `max_tokens` for them; Together, which
/// upstream cannot rate with (`NotImplementedError`, every rating -1), gets the common settings.
/// generative.py's v1 ratings asked Gemini for at most 256 tokens.
pub fn ratings_settings(provider: Provider, model: &str) -> Settings {
    let max_tokens = match provider {
        Provider::OpenAi if is_openai_reasoning(model) => None,
        Provider::OpenAiCompatible => Some(2048),
        _ => Some(1024),
    };
    Settings {
        temperature: Some(if max_tokens.is_none() { 1.0 } else { 0.0 }),
        max_tokens,
        system: false,
        stop: Vec::new(),
        strip: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    const ALL_KEYS: &[(&str, &str)] = &[
        ("OPENAI_API_KEY", "sk-openai-1"),
        ("ANTHROPIC_API_KEY", "sk-ant-2"),
        ("GEMINI_API_KEY", "gem-3"),
        ("TOGETHER_API_KEY", "tog-4"),
    ];

    #[test]
    fn judge_route_upstream_lists() {
        let env = env_of(ALL_KEYS);
        for (list, provider, base, key) in [
            (
                OPENAI_MODEL_LIST,
                Provider::OpenAi,
                OPENAI_BASE_URL,
                "sk-openai-1",
            ),
            (
                ANTHROPIC_MODEL_LIST,
                Provider::Anthropic,
                ANTHROPIC_BASE_URL,
                "sk-ant-2",
            ),
            (
                GEMINI_MODEL_LIST,
                Provider::Gemini,
                GEMINI_BASE_URL,
                "gem-3",
            ),
            (
                TOGETHER_MODEL_LIST,
                Provider::Together,
                TOGETHER_BASE_URL,
                "tog-4",
            ),
        ] {
            for model in list {
                let e = route(model, None, None, &env).unwrap();
                assert_eq!(e.provider, provider, "{model}");
                assert_eq!(e.api, provider.api());
                assert_eq!(e.base_url, base);
                assert_eq!(e.key.as_ref().map(Secret::expose), Some(key));
            }
        }
        assert_eq!(OPENAI_MODEL_LIST.len(), 20);
        assert_eq!(ANTHROPIC_MODEL_LIST.len(), 13);
        assert_eq!(TOGETHER_MODEL_LIST.len(), 6);
        assert_eq!(GEMINI_MODEL_LIST.len(), 9);
        assert_eq!(Provider::Anthropic.api(), Api::Anthropic);
        assert_eq!(Provider::Gemini.api(), Api::OpenAi);
    }

    #[test]
    fn judge_route_prefixes() {
        for (model, p) in [
            ("gpt-4o", Some(Provider::OpenAi)),
            ("gpt-5-mini", Some(Provider::OpenAi)),
            ("o1-pro", Some(Provider::OpenAi)),
            ("o3-mini", Some(Provider::OpenAi)),
            ("o4-mini", Some(Provider::OpenAi)),
            ("o3", Some(Provider::OpenAi)),
            ("claude-opus-4-1-20250805", Some(Provider::Anthropic)),
            ("gemini-2.5-flash", Some(Provider::Gemini)),
            ("google/gemma-2-27b-it", Some(Provider::Together)),
            ("google/gemma-2-9b-it", None),
            ("Qwen/Qwen2.5-7B-Instruct", None),
            ("gpt4", None),
            ("my-gpt-4", None),
            ("Claude-3", None),
        ] {
            assert_eq!(provider_of(model), p, "{model}");
        }
    }

    #[test]
    fn judge_route_unknown_model_says_base_url() {
        let e = route("Qwen/Qwen2.5-7B-Instruct", None, None, env_of(ALL_KEYS)).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, RouteError::NoRoute { .. }));
        for part in [
            "Qwen/Qwen2.5-7B-Instruct",
            "--base_url",
            "vLLM",
            "SGLang",
            "llama.cpp",
            "Ollama",
            "--api",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
    }

    #[test]
    fn judge_route_missing_key_names_the_variable() {
        // Every other key set: none of their values may show.
        for (model, var) in [
            ("gpt-4o", "OPENAI_API_KEY"),
            ("claude-3-5-sonnet-20240620", "ANTHROPIC_API_KEY"),
            ("gemini-1.5-pro-001", "GEMINI_API_KEY"),
            ("meta-llama/Llama-3-8b-chat-hf", "TOGETHER_API_KEY"),
        ] {
            let others: Vec<(&str, &str)> = ALL_KEYS
                .iter()
                .copied()
                .filter(|(k, _)| *k != var)
                .collect();
            let e = route(model, None, None, env_of(&others)).unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(text.contains(var), "{text}");
            assert!(text.contains(model), "{text}");
            for (_, value) in ALL_KEYS {
                assert!(!text.contains(value), "{text}");
            }
            // An empty or blank value is no key.
            let mut blank = others.clone();
            blank.push((var, "  "));
            assert!(matches!(
                route(model, None, None, env_of(&blank)),
                Err(RouteError::MissingKey { .. })
            ));
        }
    }

    #[test]
    fn judge_route_flags_and_env_base_urls() {
        // --api wins over the lists and the prefixes.
        let env = env_of(ALL_KEYS);
        let e = route("gpt-4o", Some(Provider::Together), None, &env).unwrap();
        assert_eq!(
            (e.provider, e.base_url.as_str()),
            (Provider::Together, TOGETHER_BASE_URL)
        );
        let e = route("my-model", Some(Provider::Anthropic), None, &env).unwrap();
        assert_eq!(e.api, Api::Anthropic);

        // --base_url alone: OpenAI-compatible, no key needed, trailing / trimmed.
        let e = route(
            "Qwen/Qwen2.5-7B-Instruct",
            None,
            Some("http://gpu-box:8000/v1/"),
            env_of(&[]),
        )
        .unwrap();
        assert_eq!(e.provider, Provider::OpenAiCompatible);
        assert_eq!(e.api, Api::OpenAi);
        assert_eq!(e.base_url, "http://gpu-box:8000/v1");
        assert_eq!(e.key, None);
        // ... the OpenAI key if set (as the SDK sends it), e.g. for vLLM's --api-key.
        let e = route(
            "x",
            None,
            Some("http://localhost:8000/v1"),
            env_of(&[("OPENAI_API_KEY", " tok \n")]),
        )
        .unwrap();
        assert_eq!(e.key.as_ref().map(Secret::expose), Some("tok"));
        // --base_url of a model on the lists still goes there, as OpenAI-compatible.
        let e = route("gpt-4o", None, Some("http://127.0.0.1:9/v1"), env_of(&[])).unwrap();
        assert_eq!(e.provider, Provider::OpenAiCompatible);

        // --api openai at a local URL: no key needed; at a remote one: needed.
        for local in [
            "http://localhost:1/v1",
            "http://127.0.0.2/v1",
            "http://[::1]:8/v1",
            "http://0.0.0.0:8/v1",
            "http://a.localhost/v1",
        ] {
            let e = route("gpt-4o", Some(Provider::OpenAi), Some(local), env_of(&[])).unwrap();
            assert_eq!(e.key, None, "{local}");
        }
        let e = route(
            "gpt-4o",
            Some(Provider::OpenAi),
            Some("https://proxy.example/v1"),
            env_of(&[]),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            RouteError::MissingKey {
                var: "OPENAI_API_KEY",
                ..
            }
        ));

        // OPENAI_BASE_URL / ANTHROPIC_BASE_URL, as the SDKs read them.
        let env = env_of(&[
            ("OPENAI_BASE_URL", "http://127.0.0.1:5/v1"),
            ("ANTHROPIC_BASE_URL", "https://anthropic.proxy/"),
            ("ANTHROPIC_API_KEY", "k"),
        ]);
        let e = route("gpt-4o", None, None, &env).unwrap();
        assert_eq!(
            (e.base_url.as_str(), e.key.is_none()),
            ("http://127.0.0.1:5/v1", true)
        );
        let e = route("claude-2", None, None, &env).unwrap();
        assert_eq!(e.base_url, "https://anthropic.proxy");
        // Gemini and Together ignore OPENAI_BASE_URL.
        let e = route(
            "gemini-2.5-pro",
            None,
            None,
            env_of(&[("OPENAI_BASE_URL", "http://x/v1"), ("GEMINI_API_KEY", "g")]),
        )
        .unwrap();
        assert_eq!(e.base_url, GEMINI_BASE_URL);
        // An empty OPENAI_BASE_URL is unset.
        let e = route(
            "gpt-4o",
            None,
            None,
            env_of(&[("OPENAI_BASE_URL", ""), ("OPENAI_API_KEY", "k")]),
        )
        .unwrap();
        assert_eq!(e.base_url, OPENAI_BASE_URL);
    }

    #[test]
    fn judge_route_bad_urls_and_names() {
        for url in ["localhost:8000/v1", "ftp://h/v1", "http:///v1", "http://"] {
            let e = route("m", None, Some(url), env_of(&[])).unwrap_err();
            assert!(
                matches!(
                    e,
                    RouteError::BadBaseUrl {
                        origin: "--base_url",
                        ..
                    }
                ),
                "{url}: {e}"
            );
        }
        // A URL with credentials is shown without them.
        let e = route(
            "gpt-4o",
            None,
            None,
            env_of(&[("OPENAI_BASE_URL", "htp://u:pw@h/v1?key=s")]),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("OPENAI_BASE_URL") && !text.contains("pw") && !text.contains("key=s"),
            "{text}"
        );
        assert!(matches!(
            route("m", Some(Provider::OpenAiCompatible), None, env_of(&[])),
            Err(RouteError::NeedsBaseUrl)
        ));
        for name in Provider::NAMES {
            assert_eq!(name.parse::<Provider>().unwrap().name(), name);
        }
        assert_eq!("OpenAI".parse::<Provider>(), Ok(Provider::OpenAi));
        assert!(matches!(
            "vllm".parse::<Provider>(),
            Err(RouteError::UnknownApi(_))
        ));
    }

    #[test]
    fn judge_settings_as_upstream() {
        let s = settings(Provider::OpenAi, "gpt-4o-2024-08-06");
        assert_eq!(
            (s.temperature, s.max_tokens, s.system),
            (Some(0.0), Some(2048), true)
        );
        assert!(s.stop.is_empty() && !s.strip);
        for o in [
            "o1-preview-2024-09-12",
            "o1-mini-2024-09-12",
            "o3-mini",
            "o4-mini",
            "o3",
        ] {
            let s = settings(Provider::OpenAi, o);
            assert_eq!(
                (s.temperature, s.max_tokens, s.system),
                (Some(1.0), None, false),
                "{o}"
            );
        }
        let s = settings(Provider::Anthropic, "claude-3-5-sonnet-20240620");
        assert_eq!(
            (s.temperature, s.max_tokens, s.system),
            (Some(0.0), Some(1024), true)
        );
        assert_eq!(s.stop, vec!["\n\nHuman:".to_string()]);
        assert!(s.strip);
        let s = settings(Provider::Together, "google/gemma-2-27b-it");
        assert_eq!(
            (s.temperature, s.max_tokens, s.system),
            (Some(0.0), Some(2048), true)
        );
        let s = settings(Provider::Gemini, "gemini-1.5-pro-001");
        assert_eq!(
            (s.temperature, s.max_tokens, s.system),
            (Some(0.0), Some(4096), false)
        );
        let s = settings(Provider::OpenAiCompatible, "Qwen/Qwen2.5-7B-Instruct");
        assert_eq!(
            (s.temperature, s.max_tokens, s.system),
            (Some(0.0), Some(2048), true)
        );

        for p in [
            Provider::OpenAi,
            Provider::Anthropic,
            Provider::Gemini,
            Provider::Together,
        ] {
            let s = ratings_settings(p, "m");
            assert_eq!(
                (s.temperature, s.max_tokens, s.system),
                (Some(0.0), Some(1024), false)
            );
            assert!(s.stop.is_empty() && !s.strip);
        }
        assert_eq!(
            ratings_settings(Provider::OpenAiCompatible, "m").max_tokens,
            Some(2048)
        );
        let s = ratings_settings(Provider::OpenAi, "o1-mini-2024-09-12");
        assert_eq!((s.temperature, s.max_tokens), (Some(1.0), None));
    }
}
