//! The model registry: what RewardBench's `REWARD_MODEL_CONFIG` says about special reward
//! models (their pooling rule, transform, special tokens, truncation, `model_type`), as data.
//!
//! `models.toml` (at the crate root) is compiled into the binary; `--model_config FILE` adds
//! entries that replace the built-in ones of the same id, whole. A model folder may carry
//! `rewardbench.json` with the same fields. For every setting the first of these that gives
//! it wins: the command's flags, the folder's `rewardbench.json`, the registry entry, the
//! defaults (what a plain export needs).
//!
//! An entry is found by the `--model` argument as given (upstream's `args.model in
//! REWARD_MODEL_CONFIG`, case-sensitive), else by `_name_or_path` in the folder's
//! `config.json` (what an export of that checkpoint records), else by a `name_contains`
//! entry (a lower-case substring of either, as upstream's `"olmo" in args.model.lower()`).
//!
//! Both files are read with unknown keys refused (serde's `deny_unknown_fields`), and every
//! entry is checked when the file is loaded, so a typo fails before any compute, naming the
//! file, the entry and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::config::PairwiseKind;
use crate::scorer::pooling::Pooling;
use crate::scorer::transform::ScoreTransform;

mod profile;

pub use profile::{profile, Given, Origin, Profile};

/// The registry shipped with the binary.
pub const BUILT_IN: &str = include_str!("../../models.toml");
/// How the built-in registry is named in messages and summaries.
pub const BUILT_IN_NAME: &str = "models.toml (built in)";
/// A model folder's own settings.
pub const FOLDER_FILE: &str = "rewardbench.json";
/// `model_type` of models without an entry (upstream's `default`).
pub const DEFAULT_MODEL_TYPE: &str = "Seq. Classifier";

/// Errors reading or applying the registry and `rewardbench.json`.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}{}: {message}", line.map(|l| format!(": line {l}")).unwrap_or_default())]
    Syntax {
        file: String,
        line: Option<usize>,
        message: String,
    },
    #[error("{file}: {entry}: unknown key `{key}` (known keys: {known})", known = KEYS.join(", "))]
    UnknownKey {
        file: String,
        entry: String,
        key: String,
    },
    #[error("{file}: line {line}: unknown table `{key}` (a registry holds [models.\"ORG/NAME\"] and [name_contains.SUBSTRING] tables)")]
    UnknownTable {
        file: String,
        line: usize,
        key: String,
    },
    #[error("{file}: {entry}: {key}: {message}")]
    BadValue {
        file: String,
        entry: String,
        key: &'static str,
        message: String,
    },
    #[error("{model}: not supported yet: {reason} (registry entry `{entry}` in {file})")]
    Unsupported {
        model: String,
        entry: String,
        file: String,
        reason: String,
    },
    #[error("{source_name} asks to append the reward token from config.json's `reward_token_id`, but {} has none; add `reward_token_id` to the entry", config.display())]
    NoRewardToken {
        source_name: String,
        config: PathBuf,
    },
    #[error("{0}")]
    Conflict(String),
}

/// Every key an entry (or `rewardbench.json`) may hold.
pub const KEYS: &[&str] = &[
    "model_type",
    "kind",
    "pairwise",
    "supported",
    "reason",
    "pooling",
    "score_output",
    "score_column",
    "score_transform",
    "add_special_tokens",
    "double_bos_mask",
    "attention_mask",
    "reward_token_id",
    "append_reward_token",
    "truncation",
    "torch_dtype",
    "only",
    "upstream",
    "export",
    "note",
];

/// The settings of one registry entry or `rewardbench.json`, as written (every field
/// optional; [`Settings::check`] validates the values).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// What upstream writes as `model_type` (`Seq. Classifier`, `Custom Classifier`, ...).
    pub model_type: Option<String>,
    /// `classifier` (one score per text, the default), `pairwise` (a verdict per pair:
    /// PairRM, SteamSHP, SlicPairPM) or `generative`.
    pub kind: Option<String>,
    /// A pairwise entry's pipeline, as `--pairwise` names it: `pairrm`, `better-pairrm`,
    /// `slic`, `steamshp`.
    pub pairwise: Option<String>,
    /// `false`: using the model is refused with `reason` (no scorer for it yet).
    pub supported: Option<bool>,
    pub reason: Option<String>,
    /// `--pooling`'s rule (a per-token export's position).
    pub pooling: Option<String>,
    /// `--score_output`.
    pub score_output: Option<String>,
    /// `--score_column`.
    pub score_column: Option<usize>,
    /// `--score_transform`: `none`, `negate`, `expectation`.
    pub score_transform: Option<String>,
    /// `false`: encode without special tokens (InternLM2, WorldPM).
    pub add_special_tokens: Option<bool>,
    /// `false`: no RewardBench double-BOS mask (the special pipelines).
    pub double_bos_mask: Option<bool>,
    /// `false`: the model gets no attention mask (WorldPM).
    pub attention_mask: Option<bool>,
    /// Appended to every text not ending with it (InternLM2's reward token).
    pub reward_token_id: Option<u32>,
    /// `true`: append config.json's `reward_token_id`.
    pub append_reward_token: Option<bool>,
    /// `false`: upstream's pipeline never truncates (InternLM2), so neither v1's
    /// `--force_truncation` (unless given) nor v2's cut applies.
    pub truncation: Option<bool>,
    /// The dtype upstream loads the model in (`bfloat16`, `float16`, `float32`): a note.
    pub torch_dtype: Option<String>,
    /// `v1` or `v2`: the entry applies to that benchmark only (OLMo's adapters: run_v2).
    pub only: Option<String>,
    /// Upstream's model class and pipeline (documentation).
    pub upstream: Option<String>,
    /// What the ONNX export needs (documentation, and hints in messages).
    pub export: Option<String>,
    pub note: Option<String>,
}

/// Which benchmark a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bench {
    V1,
    V2,
}

impl Bench {
    fn label(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

pub(super) fn pooling_of(s: &str) -> Result<Pooling, String> {
    Pooling::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Pooling::ALL.iter().map(|r| r.label()).collect();
        format!("`{s}` is not a pooling rule ({})", all.join(", "))
    })
}

pub(super) fn transform_of(s: &str) -> Result<ScoreTransform, String> {
    match s {
        "none" => Ok(ScoreTransform::None),
        "negate" => Ok(ScoreTransform::Negate),
        "expectation" => Ok(ScoreTransform::Expectation),
        _ => Err(format!(
            "`{s}` is not a transform (none, negate, expectation)"
        )),
    }
}

impl Settings {
    /// Checks every value; errors name `file` and `entry`.
    pub fn check(&self, file: &str, entry: &str) -> Result<(), RegistryError> {
        let bad = |key: &'static str, message: String| RegistryError::BadValue {
            file: file.to_string(),
            entry: entry.to_string(),
            key,
            message,
        };
        if let Some(p) = &self.pooling {
            pooling_of(p).map_err(|m| bad("pooling", m))?;
        }
        let transform = match &self.score_transform {
            Some(t) => Some(transform_of(t).map_err(|m| bad("score_transform", m))?),
            None => None,
        };
        if let (Some(_), Some(ScoreTransform::Expectation)) = (self.score_column, transform) {
            return Err(bad(
                "score_column",
                "with score_transform = \"expectation\": the expectation is over all the labels; give one of the two".into(),
            ));
        }
        if let Some(o) = &self.score_output {
            if o.trim().is_empty() {
                return Err(bad("score_output", "empty output name".into()));
            }
        }
        if let Some(t) = &self.model_type {
            if t.trim().is_empty() {
                return Err(bad("model_type", "empty".into()));
            }
        }
        let kind = self.kind.as_deref().unwrap_or("classifier");
        if !["classifier", "pairwise", "generative"].contains(&kind) {
            return Err(bad(
                "kind",
                format!("`{kind}` is not a kind (classifier, pairwise, generative)"),
            ));
        }
        match (self.supported, &self.reason) {
            (Some(false), None) => {
                return Err(bad(
                    "supported",
                    "false needs a `reason` (said when the model is used)".into(),
                ))
            }
            (Some(false), Some(r)) if r.trim().is_empty() => {
                return Err(bad("reason", "empty".into()))
            }
            (None | Some(true), Some(_)) => {
                return Err(bad(
                    "reason",
                    "only for supported = false (the message a refused model gets)".into(),
                ))
            }
            _ => {}
        }
        if let Some(p) = &self.pairwise {
            if PairwiseKind::parse(p).is_none() {
                let all: Vec<&str> = PairwiseKind::ALL.iter().map(|k| k.label()).collect();
                return Err(bad(
                    "pairwise",
                    format!("`{p}` is not a pairwise pipeline ({})", all.join(", ")),
                ));
            }
            if kind != "pairwise" {
                return Err(bad("pairwise", "only with kind = \"pairwise\"".into()));
            }
        }
        let refused = self.supported == Some(false);
        if kind == "pairwise" && !refused && self.pairwise.is_none() {
            return Err(bad(
                "kind",
                "`pairwise` needs `pairwise` (its pipeline: pairrm, better-pairrm, slic, steamshp), or supported = false and a reason".into(),
            ));
        }
        if kind == "generative" && !refused {
            return Err(bad(
                "kind",
                "`generative` models have no scorer here yet: the entry needs supported = false and a reason (judges run with `rewardbench gen`)".into(),
            ));
        }
        if let (Some(_), Some(false)) = (self.reward_token_id, self.append_reward_token) {
            return Err(bad(
                "reward_token_id",
                "given with append_reward_token = false".into(),
            ));
        }
        if let (Some(false), Some(true)) = (self.attention_mask, self.double_bos_mask) {
            return Err(bad(
                "double_bos_mask",
                "true with attention_mask = false: without a mask nothing is masked".into(),
            ));
        }
        if let Some(d) = &self.torch_dtype {
            if !["bfloat16", "float16", "float32"].contains(&d.as_str()) {
                return Err(bad(
                    "torch_dtype",
                    format!("`{d}` is not a dtype (bfloat16, float16, float32)"),
                ));
            }
        }
        if let Some(o) = &self.only {
            if !["v1", "v2"].contains(&o.as_str()) {
                return Err(bad("only", format!("`{o}` is not a benchmark (v1, v2)")));
            }
        }
        Ok(())
    }

    fn applies_to(&self, bench: Bench) -> bool {
        self.only.as_deref().is_none_or(|o| o == bench.label())
    }

    /// The fields given, by name, with their values as JSON (for the merge and summaries).
    fn fields(&self) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        let mut put = |k: &'static str, v: Option<Value>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        put("model_type", self.model_type.clone().map(Value::from));
        put("kind", self.kind.clone().map(Value::from));
        put("pairwise", self.pairwise.clone().map(Value::from));
        put("supported", self.supported.map(Value::from));
        put("reason", self.reason.clone().map(Value::from));
        put("pooling", self.pooling.clone().map(Value::from));
        put("score_output", self.score_output.clone().map(Value::from));
        put("score_column", self.score_column.map(Value::from));
        put(
            "score_transform",
            self.score_transform.clone().map(Value::from),
        );
        put(
            "add_special_tokens",
            self.add_special_tokens.map(Value::from),
        );
        put("double_bos_mask", self.double_bos_mask.map(Value::from));
        put("attention_mask", self.attention_mask.map(Value::from));
        put("reward_token_id", self.reward_token_id.map(Value::from));
        put(
            "append_reward_token",
            self.append_reward_token.map(Value::from),
        );
        put("truncation", self.truncation.map(Value::from));
        put("torch_dtype", self.torch_dtype.clone().map(Value::from));
        out
    }
}

/// The registry file's layout.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    /// Entries by hub id (case-sensitive).
    #[serde(default)]
    models: BTreeMap<String, Settings>,
    /// Entries by a lower-case substring of the id.
    #[serde(default)]
    name_contains: BTreeMap<String, Settings>,
}

/// A registry: entries by model id and by substring.
#[derive(Debug, Clone)]
pub struct Registry {
    models: BTreeMap<String, (Settings, String)>,
    contains: BTreeMap<String, (Settings, String)>,
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The table header (`[models."org/name"]`) above byte `at`, as `models."org/name"`.
fn table_above(text: &str, at: usize) -> Option<String> {
    text[..at.min(text.len())]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').to_string())
}

/// serde's `unknown field `k`, expected ...`: the key.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

impl Registry {
    /// The registry shipped with the binary.
    pub fn built_in() -> Result<Self, RegistryError> {
        Self::parse(BUILT_IN, BUILT_IN_NAME)
    }

    /// Reads a registry file (`--model_config FILE`).
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a registry's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, RegistryError> {
        let raw: RegistryFile = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| s.start);
            let entry = at.and_then(|a| table_above(text, a));
            let message = e.message().trim_end().to_string();
            let top = message.contains("expected `models` or `name_contains`");
            match (unknown_field(&message), entry) {
                (Some(key), _) if top => RegistryError::UnknownTable {
                    file: file.to_string(),
                    line: line_of(text, at.unwrap_or(0)),
                    key,
                },
                (Some(key), Some(entry)) => RegistryError::UnknownKey {
                    file: file.to_string(),
                    entry: format!("[{entry}] (line {})", line_of(text, at.unwrap_or(0))),
                    key,
                },
                (_, entry) => RegistryError::Syntax {
                    file: file.to_string(),
                    line: at.map(|a| line_of(text, a)),
                    message: match entry {
                        Some(t) => format!("[{t}]: {message}"),
                        None => message,
                    },
                },
            }
        })?;
        let mut reg = Self {
            models: BTreeMap::new(),
            contains: BTreeMap::new(),
        };
        for (id, s) in raw.models {
            if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
                return Err(RegistryError::BadValue {
                    file: file.to_string(),
                    entry: format!("[models.\"{id}\"]"),
                    key: "models",
                    message: "a model id has no spaces".into(),
                });
            }
            s.check(file, &format!("[models.\"{id}\"]"))?;
            reg.models.insert(id, (s, file.to_string()));
        }
        for (needle, s) in raw.name_contains {
            if needle.is_empty() || needle.to_lowercase() != needle {
                return Err(RegistryError::BadValue {
                    file: file.to_string(),
                    entry: format!("[name_contains.\"{needle}\"]"),
                    key: "name_contains",
                    message:
                        "a substring is matched against the lower-cased id: write it in lower case"
                            .into(),
                });
            }
            s.check(file, &format!("[name_contains.\"{needle}\"]"))?;
            reg.contains.insert(needle, (s, file.to_string()));
        }
        Ok(reg)
    }

    /// This registry with `other`'s entries added; an entry of `other` replaces this one's of
    /// the same id (or substring), whole.
    pub fn merged(mut self, other: Self) -> Self {
        self.models.extend(other.models);
        self.contains.extend(other.contains);
        self
    }

    /// Every entry by id, with the file it came from.
    pub fn models(&self) -> impl Iterator<Item = (&str, &Settings, &str)> {
        self.models
            .iter()
            .map(|(k, (s, f))| (k.as_str(), s, f.as_str()))
    }

    /// Every substring entry, with the file it came from.
    pub fn name_contains(&self) -> impl Iterator<Item = (&str, &Settings, &str)> {
        self.contains
            .iter()
            .map(|(k, (s, f))| (k.as_str(), s, f.as_str()))
    }

    /// The entry for a model named `names` (in order: `--model` as given, config.json's
    /// `_name_or_path`), for `bench`: an exact id first, then a substring.
    pub fn lookup(&self, names: &[(&str, &'static str)], bench: Bench) -> Option<Matched> {
        for &(name, how) in names {
            if let Some((s, f)) = self.models.get(name).filter(|(s, _)| s.applies_to(bench)) {
                return Some(Matched {
                    entry: name.to_string(),
                    matched_by: how.to_string(),
                    file: f.clone(),
                    settings: s.clone(),
                });
            }
        }
        for &(name, how) in names {
            let lower = name.to_lowercase();
            for (needle, (s, f)) in &self.contains {
                if lower.contains(needle.as_str()) && s.applies_to(bench) {
                    return Some(Matched {
                        entry: format!("name contains `{needle}`"),
                        matched_by: how.to_string(),
                        file: f.clone(),
                        settings: s.clone(),
                    });
                }
            }
        }
        None
    }

    /// Fails when `arg` (`--model` as given) names an entry that is refused, before anything
    /// is downloaded for it.
    /// A pairwise entry is refused for v2 (RewardBench 2 scores one reward per completion).
    pub fn check_supported(&self, arg: &str, bench: Bench) -> Result<(), RegistryError> {
        let Some(m) = self.lookup(&[(arg, "--model")], bench) else {
            return Ok(());
        };
        let reason = match (&m.settings, bench) {
            (s, _) if s.supported == Some(false) => s.reason.clone().unwrap_or_default(),
            (s, Bench::V2) if s.kind.as_deref() == Some("pairwise") => V2_PAIRWISE.to_string(),
            _ => return Ok(()),
        };
        Err(RegistryError::Unsupported {
            model: arg.to_string(),
            reason,
            entry: m.entry,
            file: m.file,
        })
    }
}

/// Why `rewardbench v2` refuses a pairwise entry.
const V2_PAIRWISE: &str = "a pairwise model in RewardBench 2: upstream's run_v2.py raises NotImplementedError for PairRM and SteamSHP, and SlicPairPM's pipeline needs two candidate lists it is never given; score RewardBench v1 preference data (plain `rewardbench`)";

/// A registry entry found for a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    /// The entry's id (or `name contains `x``).
    pub entry: String,
    /// How it was found: `--model` or `config.json _name_or_path`.
    pub matched_by: String,
    /// The registry file it is in.
    pub file: String,
    pub settings: Settings,
}

/// `config.json`'s `_name_or_path` in `dir` (the checkpoint an export was made from).
pub fn recorded_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.get("_name_or_path")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A model folder's `rewardbench.json`, checked; `None` when there is none.
pub fn folder_settings(dir: &Path) -> Result<Option<(PathBuf, Settings)>, RegistryError> {
    let path = dir.join(FOLDER_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RegistryError::Read { path, source }),
    };
    let file = path.display().to_string();
    let s: Settings = serde_json::from_str(&text).map_err(|e| {
        let message = e.to_string();
        match unknown_field(&message) {
            Some(key) => RegistryError::UnknownKey {
                file: file.clone(),
                entry: format!("line {}", e.line()),
                key,
            },
            None => RegistryError::Syntax {
                file: file.clone(),
                line: Some(e.line()),
                message,
            },
        }
    })?;
    s.check(&file, "the folder's settings")?;
    Ok(Some((path, s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;

    fn parse_err(text: &str) -> String {
        Registry::parse(text, "my.toml").unwrap_err().to_string()
    }

    #[test]
    fn the_built_in_registry_parses_and_every_entry_checks() {
        let r = Registry::built_in().unwrap();
        let n = r.models().count();
        assert!(n >= 28, "{n} entries");
        for (id, s, file) in r.models() {
            assert_eq!(file, BUILT_IN_NAME);
            s.check(file, id).unwrap();
            assert!(s.model_type.is_some(), "{id}: model_type");
            assert!(s.upstream.is_some(), "{id}: upstream");
            let refused = s.supported == Some(false);
            assert!(refused || s.export.is_some(), "{id}: export");
        }
        assert!(r.name_contains().any(|(k, _, _)| k == "olmo"));
    }

    #[test]
    fn every_upstream_registry_id_has_an_entry() {
        // REWARD_MODEL_CONFIG's keys in rewardbench 0.1.4 (spec §4.3), less `default`s
        let upstream = [
            "ShikaiChen/LDL-Reward-Gemma-2-27B-v0.1",
            "berkeley-nest/Starling-RM-7B-alpha",
            "Nexusflow/Starling-RM-34B",
            "openbmb/UltraRM-13b",
            "openbmb/Eurus-RM-7b",
            "llm-blender/PairRM-hf",
            "mightbe/Better-PairRM",
            "stanfordnlp/SteamSHP-flan-t5-xl",
            "stanfordnlp/SteamSHP-flan-t5-large",
            "IDEA-CCNL/Ziya-LLaMA-7B-Reward",
            "PKU-Alignment/beaver-7b-v1.0-reward",
            "PKU-Alignment/beaver-7b-v1.0-cost",
            "PKU-Alignment/beaver-7b-v2.0-reward",
            "PKU-Alignment/beaver-7b-v2.0-cost",
            "RLHFlow/pair-preference-model-LLaMA3-8B",
            "RLHFlow/ArmoRM-Llama3-8B-v0.1",
            "Ray2333/GRM-Gemma-2B-sftreg",
            "Ray2333/GRM-llama3-8B-sftreg",
            "Ray2333/GRM-Gemma2-2B-sftreg",
            "Ray2333/GRM-llama3.2-3B-sftreg",
            "internlm/internlm2-20b-reward",
            "internlm/internlm2-7b-reward",
            "internlm/internlm2-1_8b-reward",
            "nicolinho/QRM-Llama3.1-8B",
            "nicolinho/QRM-Llama3-8B",
            "Qwen/WorldPM-72B",
            "infly/INF-ORM-Llama3.1-70B",
            "Skywork/Skywork-VL-Reward-7B",
        ];
        let r = Registry::built_in().unwrap();
        for id in upstream {
            assert!(
                r.lookup(&[(id, "--model")], Bench::V1).is_some(),
                "{id} has no entry"
            );
        }
        // the README's supported-model table names every entry
        let readme = include_str!("../../README.md");
        for (id, _, _) in r.models() {
            assert!(readme.contains(&format!("`{id}`")), "README lacks {id}");
        }
    }

    #[test]
    fn unknown_keys_name_the_file_the_entry_and_the_key() {
        let e = parse_err(
            "[models.\"a/b\"]\nmodel_type = \"x\"\nupstream = \"u\"\npoolling = \"grm\"\n",
        );
        assert!(e.starts_with("my.toml: "), "{e}");
        assert!(e.contains("`poolling`"), "{e}");
        assert!(e.contains("models.\"a/b\""), "{e}");
        assert!(e.contains("line 4"), "{e}");
        let e = parse_err("[modles.\"a/b\"]\nmodel_type = \"x\"\n");
        assert!(e.contains("my.toml") && e.contains("modles"), "{e}");
        // a value of the wrong type: the entry and the line
        let e = parse_err("[models.\"a/b\"]\nscore_column = \"two\"\n");
        assert!(e.contains("my.toml: line 2") && e.contains("a/b"), "{e}");
    }

    #[test]
    fn bad_values_name_the_entry() {
        let cases = [
            (
                "pooling = \"last\"",
                "pooling: `last` is not a pooling rule",
            ),
            ("score_transform = \"neg\"", "score_transform: `neg`"),
            ("kind = \"pairwise\"", "kind: `pairwise` needs `pairwise`"),
            (
                "kind = \"generative\"",
                "kind: `generative` models have no scorer",
            ),
            ("pairwise = \"pairrm\"", "pairwise: only with kind"),
            (
                "kind = \"pairwise\"\npairwise = \"pair\"",
                "pairwise: `pair` is not a pairwise pipeline",
            ),
            ("supported = false", "needs a `reason`"),
            ("reason = \"r\"", "only for supported = false"),
            (
                "score_column = 1\nscore_transform = \"expectation\"",
                "score_column",
            ),
            ("torch_dtype = \"bf16\"", "torch_dtype: `bf16`"),
            ("only = \"v3\"", "only: `v3`"),
            (
                "attention_mask = false\ndouble_bos_mask = true",
                "double_bos_mask",
            ),
        ];
        for (body, want) in cases {
            let e = parse_err(&format!("[models.\"org/m\"]\n{body}\n"));
            assert!(
                e.starts_with("my.toml: [models.\"org/m\"]: ") && e.contains(want),
                "{body}: {e}"
            );
        }
        let e = parse_err("[name_contains.OLMo]\nmodel_type = \"x\"\n");
        assert!(e.contains("lower case"), "{e}");
    }

    #[test]
    fn lookup_by_id_then_recorded_name_then_substring() {
        let r = Registry::parse(
            "[models.\"org/a\"]\npooling = \"grm\"\n[models.\"org/b\"]\nonly = \"v2\"\n[name_contains.olmo]\nonly = \"v2\"\npooling = \"first_pad_minus_one\"\n",
            "t.toml",
        )
        .unwrap();
        let m = r
            .lookup(&[("me/x", "--model"), ("org/a", "config")], Bench::V1)
            .unwrap();
        assert_eq!(
            (m.entry.as_str(), m.matched_by.as_str()),
            ("org/a", "config")
        );
        // case-sensitive ids
        assert!(r.lookup(&[("Org/A", "--model")], Bench::V1).is_none());
        // v2-only entries
        assert!(r.lookup(&[("org/b", "--model")], Bench::V1).is_none());
        assert!(r.lookup(&[("org/b", "--model")], Bench::V2).is_some());
        let m = r
            .lookup(&[("allenai/OLMo-2-1124-7B-RM", "--model")], Bench::V2)
            .unwrap();
        assert_eq!(m.entry, "name contains `olmo`");
        assert!(r
            .lookup(&[("allenai/OLMo-2-1124-7B-RM", "--model")], Bench::V1)
            .is_none());
        // an override replaces an entry whole
        let o = Registry::parse("[models.\"org/a\"]\nmodel_type = \"X\"\n", "o.toml").unwrap();
        let m = r.clone().merged(o);
        let hit = m.lookup(&[("org/a", "--model")], Bench::V1).unwrap();
        assert_eq!((hit.file.as_str(), hit.settings.pooling), ("o.toml", None));
        assert!(m.lookup(&[("org/b", "--model")], Bench::V2).is_some());
    }

    #[test]
    fn folder_file_over_registry_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"_name_or_path": "org/a", "reward_token_id": 77}"#,
        )
        .unwrap();
        let r = Registry::parse(
            "[models.\"org/a\"]\nmodel_type = \"Custom Classifier\"\npooling = \"grm\"\nscore_output = \"score\"\nappend_reward_token = true\n",
            "t.toml",
        )
        .unwrap();
        let p = profile(&r, "some/dir", dir.path(), Bench::V1)
            .unwrap()
            .unwrap();
        assert_eq!(p.origins["pooling"], Origin::Registry);
        std::fs::write(
            dir.path().join(FOLDER_FILE),
            r#"{"pooling": "last_attended", "score_transform": "negate"}"#,
        )
        .unwrap();
        let mut p = profile(&r, "some/dir", dir.path(), Bench::V1)
            .unwrap()
            .unwrap();
        assert_eq!(p.settings.pooling.as_deref(), Some("last_attended"));
        assert_eq!(p.origins["pooling"], Origin::Folder);
        assert_eq!(p.origins["score_output"], Origin::Registry);
        let mut cfg = RunConfig::default();
        cfg.model.dir = dir.path().to_path_buf();
        cfg.head.output = Some("mine".into());
        let given = Given {
            score_output: true,
            ..Given::default()
        };
        p.apply(&mut cfg, given, Bench::V1).unwrap();
        assert_eq!(cfg.head.pooling, Some(Pooling::LastAttended));
        assert_eq!(cfg.head.output.as_deref(), Some("mine"));
        assert_eq!(cfg.head.transform, ScoreTransform::Negate);
        assert_eq!(cfg.tokenize.append_token, Some(77));
        assert_eq!(p.model_type(), "Custom Classifier");
        let s = p.summary();
        assert_eq!(s["entry"], "org/a");
        assert_eq!(s["matched_by"], "config.json _name_or_path");
        assert_eq!(s["settings"]["pooling"]["source"], "rewardbench.json");
        assert_eq!(s["settings"]["score_output"]["source"], "flag");
        assert_eq!(s["settings"]["model_type"]["source"], "registry");
        // unknown keys in the folder's file
        std::fs::write(
            dir.path().join(FOLDER_FILE),
            r#"{"pooling": "grm", "pool": 1}"#,
        )
        .unwrap();
        let e = profile(&r, "x", dir.path(), Bench::V1)
            .unwrap_err()
            .to_string();
        assert!(e.contains(FOLDER_FILE) && e.contains("`pool`"), "{e}");
        // no entry, no file: the defaults
        std::fs::remove_file(dir.path().join(FOLDER_FILE)).unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        assert!(profile(&r, "x", dir.path(), Bench::V1).unwrap().is_none());
    }

    #[test]
    fn refused_entries_say_why() {
        let r = Registry::parse(
            "[models.\"a/judge\"]\nkind = \"generative\"\nsupported = false\nreason = \"a judge\"\n",
            "my.toml",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let e = profile(&r, "a/judge", dir.path(), Bench::V1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a/judge: not supported yet: a judge"), "{e}");
        assert!(e.contains("my.toml"), "{e}");
    }

    #[test]
    fn pairwise_entries_name_their_pipeline_and_are_refused_by_v2() {
        let r = Registry::built_in().unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (id, kind) in [
            ("llm-blender/PairRM-hf", PairwiseKind::PairRm),
            ("mightbe/Better-PairRM", PairwiseKind::BetterPairRm),
            ("stanfordnlp/SteamSHP-flan-t5-xl", PairwiseKind::SteamShp),
            ("stanfordnlp/SteamSHP-flan-t5-large", PairwiseKind::SteamShp),
            (
                "RLHFlow/pair-preference-model-LLaMA3-8B",
                PairwiseKind::SlicPairPm,
            ),
        ] {
            let p = profile(&r, id, dir.path(), Bench::V1).unwrap().unwrap();
            assert_eq!(p.pairwise(), Some(kind), "{id}");
            assert_eq!(p.model_type(), "Custom Classifier", "{id}");
            r.check_supported(id, Bench::V1).unwrap();
            let e = r.check_supported(id, Bench::V2).unwrap_err().to_string();
            assert!(e.contains("not supported yet: a pairwise model"), "{e}");
        }
    }
}
