//! A model's profile: its folder's `rewardbench.json` over its registry entry, field by
//! field, each setting's origin kept; what the run configuration takes from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{
    folder_settings, pooling_of, recorded_name, transform_of, Bench, Matched, Registry,
    RegistryError, Settings, DEFAULT_MODEL_TYPE, FOLDER_FILE,
};
use crate::config::{HeadConfig, PairwiseKind, RunConfig};
use crate::scorer::transform;

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Folder,
    Registry,
}

impl Origin {
    pub fn label(self) -> &'static str {
        match self {
            Self::Flag => "flag",
            Self::Folder => FOLDER_FILE,
            Self::Registry => "registry",
        }
    }
}

/// The settings a model gets from its folder's `rewardbench.json` and its registry entry,
/// merged field by field (the folder's win).
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub matched: Option<Matched>,
    pub folder: Option<PathBuf>,
    /// The merged settings.
    pub settings: Settings,
    /// Where each given field came from.
    pub origins: BTreeMap<&'static str, Origin>,
}

/// Which head flags the command gave (they win over the profile).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Given {
    pub pooling: bool,
    pub score_output: bool,
    pub score_column: bool,
    pub score_transform: bool,
    /// `--force_truncation` (v1) or `--max_length` (v2): truncation asked for.
    pub truncation: bool,
}

/// Finds the settings of the model `arg` (as given to `--model`) in folder `dir`: its
/// `rewardbench.json` and registry entry. `None` when neither exists (the defaults apply).
/// A refused entry (`supported = false`) is an error naming its reason.
pub fn profile(
    registry: &Registry,
    arg: &str,
    dir: &Path,
    bench: Bench,
) -> Result<Option<Profile>, RegistryError> {
    let recorded = recorded_name(dir);
    let mut names: Vec<(&str, &'static str)> = vec![(arg, "--model")];
    if let Some(r) = &recorded {
        names.push((r.as_str(), "config.json _name_or_path"));
    }
    let matched = registry.lookup(&names, bench);
    let folder = folder_settings(dir)?;
    if matched.is_none() && folder.is_none() {
        return Ok(None);
    }
    let mut settings = Settings::default();
    let mut origins = BTreeMap::new();
    // registry first, the folder's file over it
    let layers = [
        matched.as_ref().map(|m| (&m.settings, Origin::Registry)),
        folder.as_ref().map(|(_, s)| (s, Origin::Folder)),
    ];
    for (s, origin) in layers.into_iter().flatten() {
        for (k, _) in s.fields() {
            origins.insert(k, origin);
        }
        settings = overlay(settings, s);
    }
    // the documentation fields follow the entry that gave the settings
    let p = Profile {
        matched,
        folder: folder.map(|(p, _)| p),
        settings,
        origins,
    };
    if p.settings.supported == Some(false) {
        let (entry, file) = match (&p.matched, p.origins.get("supported")) {
            (Some(m), Some(Origin::Registry)) => (m.entry.clone(), m.file.clone()),
            _ => (
                "the folder's settings".to_string(),
                p.folder
                    .as_ref()
                    .map_or_else(String::new, |f| f.display().to_string()),
            ),
        };
        return Err(RegistryError::Unsupported {
            model: arg.to_string(),
            entry,
            file,
            reason: p.settings.reason.clone().unwrap_or_default(),
        });
    }
    Ok(Some(p))
}

/// `top`'s fields over `base`'s.
fn overlay(base: Settings, top: &Settings) -> Settings {
    let t = top.clone();
    Settings {
        model_type: t.model_type.or(base.model_type),
        kind: t.kind.or(base.kind),
        pairwise: t.pairwise.or(base.pairwise),
        supported: t.supported.or(base.supported),
        reason: t.reason.or(base.reason),
        pooling: t.pooling.or(base.pooling),
        score_output: t.score_output.or(base.score_output),
        score_column: t.score_column.or(base.score_column),
        score_transform: t.score_transform.or(base.score_transform),
        add_special_tokens: t.add_special_tokens.or(base.add_special_tokens),
        double_bos_mask: t.double_bos_mask.or(base.double_bos_mask),
        attention_mask: t.attention_mask.or(base.attention_mask),
        reward_token_id: t.reward_token_id.or(base.reward_token_id),
        append_reward_token: t.append_reward_token.or(base.append_reward_token),
        truncation: t.truncation.or(base.truncation),
        torch_dtype: t.torch_dtype.or(base.torch_dtype),
        only: t.only.or(base.only),
        upstream: t.upstream.or(base.upstream),
        export: t.export.or(base.export),
        note: t.note.or(base.note),
    }
}

impl Profile {
    /// The pairwise pipeline the settings name (`kind = "pairwise"`).
    pub fn pairwise(&self) -> Option<PairwiseKind> {
        match self.settings.kind.as_deref() {
            Some("pairwise") => self
                .settings
                .pairwise
                .as_deref()
                .and_then(PairwiseKind::parse),
            _ => None,
        }
    }

    /// `model_type` for the summary: the profile's, else upstream's default.
    pub fn model_type(&self) -> &str {
        self.settings
            .model_type
            .as_deref()
            .unwrap_or(DEFAULT_MODEL_TYPE)
    }

    /// Where the settings came from, in words (for messages).
    pub fn describe(&self) -> String {
        let mut from = Vec::new();
        if let Some(f) = &self.folder {
            from.push(f.display().to_string());
        }
        if let Some(m) = &self.matched {
            from.push(format!(
                "registry entry `{}` in {} (matched by {})",
                m.entry, m.file, m.matched_by
            ));
        }
        from.join(" and ")
    }

    /// Fills what the flags did not give into `cfg` (the head, tokenization, truncation),
    /// records the origin of each setting, and returns notes for the user.
    pub fn apply(
        &mut self,
        cfg: &mut RunConfig,
        given: Given,
        bench: Bench,
    ) -> Result<Vec<String>, RegistryError> {
        let s = self.settings.clone();
        let from = self.describe();
        let mut notes = Vec::new();
        let flag = |origins: &mut BTreeMap<&'static str, Origin>, k: &'static str| {
            origins.insert(k, Origin::Flag);
        };
        let head: &mut HeadConfig = &mut cfg.head;
        if given.pooling {
            flag(&mut self.origins, "pooling");
        } else if let Some(p) = &s.pooling {
            head.pooling = Some(pooling_of(p).map_err(RegistryError::Conflict)?);
        }
        if given.score_output {
            flag(&mut self.origins, "score_output");
        } else if let Some(o) = &s.score_output {
            head.output = Some(o.clone());
        }
        if given.score_column {
            flag(&mut self.origins, "score_column");
        } else if let Some(c) = s.score_column {
            head.column = Some(c);
        }
        if given.score_transform {
            flag(&mut self.origins, "score_transform");
        } else if let Some(t) = &s.score_transform {
            head.transform = transform_of(t).map_err(RegistryError::Conflict)?;
        }
        transform::validate(head).map_err(|e| {
            RegistryError::Conflict(format!("{e} (settings from {from} and the flags)"))
        })?;
        let tk = &mut cfg.tokenize;
        if let Some(b) = s.add_special_tokens {
            tk.add_special_tokens = b;
        }
        if let Some(b) = s.double_bos_mask {
            tk.double_bos_mask = b;
        }
        if let Some(b) = s.attention_mask {
            tk.attention_mask = b;
            if !b {
                tk.double_bos_mask = false;
            }
        }
        let append = s.append_reward_token.unwrap_or(s.reward_token_id.is_some());
        if append {
            tk.append_token = Some(match s.reward_token_id {
                Some(id) => id,
                None => {
                    let config = cfg.model.dir.join("config.json");
                    config_reward_token(&config).ok_or_else(|| RegistryError::NoRewardToken {
                        source_name: from.clone(),
                        config,
                    })?
                }
            });
        }
        if s.truncation == Some(false) {
            if given.truncation {
                flag(&mut self.origins, "truncation");
                notes.push(format!(
                    "{from}: upstream's pipeline for this model does not truncate; truncating anyway, as the flags ask"
                ));
            } else if tk.cut.is_some() || tk.force_truncation {
                tk.cut = None;
                tk.force_truncation = false;
                notes.push(format!(
                    "{from}: upstream's pipeline for this model never truncates, so texts are not cut (a text longer than the model's positions fails; --max_length truncates anyway)"
                ));
            }
        }
        if let Some(d) = &s.torch_dtype {
            if d != "float32" {
                let v2 = if bench == Bench::V2 {
                    " (--score_dtype bf16 rounds only the final scores)"
                } else {
                    ""
                };
                notes.push(format!(
                    "{from}: upstream runs this model in {d}; an ONNX export computes in its own precision (float32 unless made smaller with export/quantize.py), so scores can differ from upstream's by {d} rounding{v2}"
                ));
            }
        }
        if !cfg.tokenize.attention_mask && cfg.batch.batching == crate::batch::Batching::Reference {
            return Err(RegistryError::Conflict(format!(
                "not supported yet: {from} gives the model no attention mask (as upstream does), so in RewardBench's padded batches it would attend to the padding, which --batching reference cannot reproduce; use --batching sorted (each text as upstream scores it alone)"
            )));
        }
        Ok(notes)
    }

    /// The summary's `model_config`: the entry, how it was found, the files, and where each
    /// setting came from.
    pub fn summary(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "entry".into(),
            json!(self.matched.as_ref().map(|x| &x.entry)),
        );
        m.insert(
            "matched_by".into(),
            json!(self.matched.as_ref().map(|x| &x.matched_by)),
        );
        m.insert(
            "registry".into(),
            json!(self.matched.as_ref().map(|x| &x.file)),
        );
        m.insert(
            "folder_file".into(),
            json!(self.folder.as_ref().map(|f| f.display().to_string())),
        );
        let given: Map<String, Value> = self
            .settings
            .fields()
            .into_iter()
            .filter_map(|(k, v)| {
                self.origins
                    .get(k)
                    .map(|o| (k.to_string(), json!({"value": v, "source": o.label()})))
            })
            .collect();
        m.insert("settings".into(), Value::Object(given));
        Value::Object(m)
    }
}

/// config.json's `reward_token_id`.
fn config_reward_token(path: &Path) -> Option<u32> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v.get("reward_token_id")?
        .as_u64()
        .and_then(|x| u32::try_from(x).ok())
}
