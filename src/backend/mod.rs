//! ONNX Runtime: the one module that calls `ort`.
//!
//! Finds the shared library (loaded at run time, `load-dynamic`), keeps the single
//! process-wide environment, opens reward-model sessions and runs padded batches.
//!
//! `runtime` finds and loads the library, `session` opens a session on a device,
//! `classifier` runs reward models ([`RewardSession`]), [`causal_lm`] causal language
//! models (DPO) and [`pairwise`] pairwise preference models (PairRM, SlicPairPM, SteamSHP).

use std::path::PathBuf;

pub mod causal_lm;
mod classifier;
pub mod pairwise;
mod runtime;
mod session;

/// The causal-LM module's old path, `backend::lm`.
pub use causal_lm as lm;
pub use classifier::{RewardSession, TokenLogits, PER_TOKEN_OUTPUT};
pub use runtime::{runtime, Runtime};

/// Errors of the inference stage.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "ONNX Runtime not found. Tried:\n{tried}\nRun `make setup` in the project folder (it fetches the \
         `onnxruntime` wheel from PyPI and unpacks the library into .ort/lib), or `pip install onnxruntime` \
         in the active Python, or pass --ort_lib /path/to/libonnxruntime.so (or set ORT_DYLIB_PATH)"
    )]
    LibraryNotFound { tried: String },
    #[error("ONNX Runtime environment")]
    Environment(#[source] ort::Error),
    #[error("cannot load ONNX model {path}")]
    Load {
        path: PathBuf,
        #[source]
        source: ort::Error,
    },
    #[error(
        "{path} is not a reward model export: {problem}. Expected inputs `input_ids` and \
         `attention_mask` (int64 [batch, seq]) and an output `logits` (float32 [batch, num_labels]; \
         per token: `token_logits` [batch, seq, num_labels]); found inputs [{inputs}] and outputs [{outputs}]"
    )]
    WrongKind {
        path: PathBuf,
        problem: String,
        inputs: String,
        outputs: String,
    },
    /// An export without what a pairwise kind reads (boxed: it is large).
    #[error(transparent)]
    NotPairwise(Box<pairwise::NotPairwise>),
    #[error("execution provider {device}: {message}")]
    Provider {
        device: &'static str,
        message: String,
    },
    #[error("ONNX Runtime failed on a batch of shape {rows}x{cols}")]
    Run {
        rows: usize,
        cols: usize,
        #[source]
        source: ort::Error,
    },
    #[error("ONNX Runtime failed on a batch of shape {rows}x{cols}: {problem}")]
    Batch {
        rows: usize,
        cols: usize,
        problem: String,
    },
}

/// ONNX Runtime results as this stage's errors, the ONNX Runtime error kept as the cause
/// (text-embeddings-inference's `.s()` / `.e()` idea).
pub(crate) trait OrtExt<T> {
    /// An error while loading or preparing the model at `path`.
    fn or_load(self, path: &std::path::Path) -> Result<T, BackendError>;
    /// An error while running a `rows` x `cols` batch.
    fn or_run(self, rows: usize, cols: usize) -> Result<T, BackendError>;
}

impl<T, E: Into<ort::Error>> OrtExt<T> for Result<T, E> {
    fn or_load(self, path: &std::path::Path) -> Result<T, BackendError> {
        self.map_err(|e| BackendError::Load {
            path: path.to_path_buf(),
            source: e.into(),
        })
    }
    fn or_run(self, rows: usize, cols: usize) -> Result<T, BackendError> {
        self.map_err(|e| BackendError::Run {
            rows,
            cols,
            source: e.into(),
        })
    }
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
    TensorRt,
    /// CUDA when the library offers it, else CPU (said on stderr).
    Auto,
}

impl Device {
    /// True when a GPU build of ONNX Runtime is wanted.
    pub fn wants_gpu(self) -> bool {
        self != Self::Cpu
    }
}

/// TensorRT optimization profile: (min, opt, max) of (rows, tokens).
pub type ShapeProfile = [(usize, usize); 3];

/// The TensorRT profile for planned calls of these (rows, tokens) shapes: the smallest, the
/// median by tokens, the largest. `None` when nothing is planned.
pub fn profile_for(shapes: &[(usize, usize)]) -> Option<ShapeProfile> {
    if shapes.is_empty() {
        return None;
    }
    let mut by_tokens = shapes.to_vec();
    by_tokens.sort_by_key(|(r, c)| r * c);
    let min = (
        shapes.iter().map(|s| s.0).min().unwrap_or(1),
        shapes.iter().map(|s| s.1).min().unwrap_or(1),
    );
    let max = (
        shapes.iter().map(|s| s.0).max().unwrap_or(1),
        shapes.iter().map(|s| s.1).max().unwrap_or(1),
    );
    Some([min, by_tokens[by_tokens.len() / 2], max])
}

/// What an open session can do, so that the pipeline asks instead of branching on devices
/// (text-embeddings-inference's `is_padded` / `max_batch_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// The packed contract: rows of several texts sharing a prefix.
    pub packed: bool,
    /// The score is the head at every position (a per-token export); the caller pools it.
    pub per_token: bool,
    /// The most rows one call may hold (a static batch dimension, or TensorRT's profile).
    pub max_rows: Option<usize>,
    /// The device actually used.
    pub device: Device,
}

/// Options for a session.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Intra-op threads; 0 means the available cores.
    pub threads: usize,
    pub device: Device,
    pub device_id: i32,
    /// TensorRT: build fp16 engines.
    pub fp16: bool,
    /// TensorRT: engine and timing caches, kept between runs.
    pub trt_cache: Option<PathBuf>,
    /// TensorRT: shapes of the planned batches.
    pub profile: Option<ShapeProfile>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            threads: 0,
            device: Device::Cpu,
            device_id: 0,
            fp16: false,
            trt_cache: None,
            profile: None,
        }
    }
}

/// Name of a device as the CLI spells it.
pub fn device_name(d: Device) -> &'static str {
    match d {
        Device::Cpu => "cpu",
        Device::Cuda => "cuda",
        Device::TensorRt => "tensorrt",
        Device::Auto => "auto",
    }
}
