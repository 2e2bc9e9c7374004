//! A model folder: where the ONNX file, tokenizer and config live.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Errors locating a model's files.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model folder {path} does not exist")]
    NotFound { path: PathBuf },
    #[error("no ONNX model in {path}: looked for model.onnx and onnx/model.onnx (export one with export/export_rm.py)")]
    NoOnnx { path: PathBuf },
    #[error("{path}: invalid JSON: {message}")]
    Config { path: PathBuf, message: String },
}

/// The files of one exported model.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub onnx: PathBuf,
    /// `config.json`, when present.
    pub config: Option<Value>,
}

impl ModelFiles {
    /// Finds `model.onnx` at the root of `dir` or in `onnx/` (Optimum's layout).
    pub fn locate(dir: &Path) -> Result<Self, ModelError> {
        if !dir.is_dir() {
            return Err(ModelError::NotFound {
                path: dir.to_path_buf(),
            });
        }
        let onnx = ["model.onnx", "onnx/model.onnx"]
            .iter()
            .map(|p| dir.join(p))
            .find(|p| p.is_file())
            .ok_or_else(|| ModelError::NoOnnx {
                path: dir.to_path_buf(),
            })?;
        let config_path = dir.join("config.json");
        let config = match std::fs::read_to_string(&config_path) {
            Ok(text) => Some(serde_json::from_str(&text).map_err(|e| ModelError::Config {
                path: config_path.clone(),
                message: e.to_string(),
            })?),
            Err(_) => None,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            onnx,
            config,
        })
    }

    /// Positions the model can take (`max_position_embeddings` or GPT-2's `n_positions`).
    pub fn max_positions(&self) -> Option<usize> {
        let c = self.config.as_ref()?;
        ["max_position_embeddings", "n_positions"]
            .iter()
            .find_map(|k| c.get(*k).and_then(Value::as_u64))
            .map(|v| v as usize)
    }

    /// The model's vocabulary size, from `config.json`.
    pub fn vocab_size(&self) -> Option<usize> {
        self.config
            .as_ref()?
            .get("vocab_size")?
            .as_u64()
            .map(|v| v as usize)
    }

    /// The pad id the export's pooling was built with (`config.json` `pad_token_id`).
    pub fn pad_token_id(&self) -> Option<i64> {
        self.config.as_ref()?.get("pad_token_id")?.as_i64()
    }

    /// Name used for result files: the folder's base name.
    pub fn name(&self) -> String {
        let canonical = std::fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        canonical
            .file_name()
            .map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned())
    }
}
