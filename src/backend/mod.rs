//! ONNX Runtime: the one module that calls `ort`.
//!
//! Finds the shared library (loaded at run time, `load-dynamic`), keeps the single
//! process-wide environment, opens reward-model sessions and runs padded batches.

pub mod lm;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ndarray::Array2;

use crate::batch::Padded;
use ort::session::{builder::GraphOptimizationLevel, Session};
use ort::value::{TensorElementType, TensorRef, ValueType};

/// Errors of the inference stage.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "ONNX Runtime not found. Tried:\n{tried}\nRun `make setup` in the project folder (it fetches the \
         `onnxruntime` wheel from PyPI and unpacks the library into .ort/lib), or `pip install onnxruntime` \
         in the active Python, or pass --ort_lib /path/to/libonnxruntime.so (or set ORT_DYLIB_PATH)"
    )]
    LibraryNotFound { tried: String },
    #[error("ONNX Runtime environment: {0}")]
    Environment(String),
    #[error("cannot load ONNX model {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error(
        "{path} is not a reward model export: {problem}. Expected inputs `input_ids` and \
         `attention_mask` (int64 [batch, seq]) and an output `logits` (float32 [batch, num_labels]); \
         found inputs [{inputs}] and outputs [{outputs}]"
    )]
    WrongKind {
        path: PathBuf,
        problem: String,
        inputs: String,
        outputs: String,
    },
    #[error("execution provider {device}: {message}")]
    Provider {
        device: &'static str,
        message: String,
    },
    #[error("ONNX Runtime failed on a batch of shape {rows}x{cols}: {message}")]
    Run {
        rows: usize,
        cols: usize,
        message: String,
    },
}

/// The loaded ONNX Runtime library, shared by every session of the process.
pub struct Runtime {
    env: ort::environment::Environment,
    /// Path of the library that was loaded.
    pub library: PathBuf,
    /// ONNX Runtime version, e.g. `1.31.1`.
    pub version: String,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Library file names tried inside a folder, most specific first.
const LIB_NAMES: &[&str] = &[
    "libonnxruntime.so",
    "libonnxruntime.so.1",
    "libonnxruntime.dylib",
];

/// Candidate library paths, in the documented lookup order, without the pip-installed
/// onnxruntime (asking Python costs a process start: [`pip_candidates`] is tried last,
/// only when nothing here loads). `gpu` puts the `onnxruntime-gpu` copy from `make
/// setup-gpu` (`.ort/gpu/lib`) before the CPU one.
fn candidates(explicit: Option<&Path>, gpu: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = explicit {
        out.push(p.to_path_buf());
        return out;
    }
    if let Ok(p) = std::env::var("ORT_DYLIB_PATH") {
        if !p.is_empty() {
            out.push(PathBuf::from(p));
            return out;
        }
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    // The project folder: next to the executable, or `.ort/lib` in a folder above it
    // (target/release/rewardbench -> repo/.ort/lib), or in the working directory.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            dirs.push(dir.to_path_buf());
            for anc in dir.ancestors() {
                if gpu {
                    dirs.push(anc.join(".ort/gpu/lib"));
                }
                dirs.push(anc.join(".ort/lib"));
            }
        }
    }
    dirs.push(PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.ort/lib"
    )));
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd.join(".ort/lib"));
    }
    libraries_in(&dirs, &mut out);
    out
}

/// The library files of a pip-installed onnxruntime in the active Python.
fn pip_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let from_env = std::env::var("ORT_DYLIB_PATH").is_ok_and(|p| !p.is_empty());
    if explicit.is_none() && !from_env {
        if let Some(dir) = pip_onnxruntime_dir() {
            libraries_in(&[dir], &mut out);
        }
    }
    out
}

/// Appends the ONNX Runtime library files in `dirs` to `out` (once each).
fn libraries_in(dirs: &[PathBuf], out: &mut Vec<PathBuf>) {
    for d in dirs {
        for name in LIB_NAMES {
            let p = d.join(name);
            if !out.contains(&p) {
                out.push(p);
            }
        }
        // pip wheels ship only the versioned file, e.g. libonnxruntime.so.1.31.1
        if let Ok(rd) = std::fs::read_dir(d) {
            let mut versioned: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libonnxruntime.so."))
                })
                .collect();
            versioned.sort();
            for p in versioned.into_iter().rev() {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
}

/// `onnxruntime/capi` of a pip-installed onnxruntime in the active Python, if any.
fn pip_onnxruntime_dir() -> Option<PathBuf> {
    let python = match std::env::var("VIRTUAL_ENV") {
        Ok(v) if !v.is_empty() => PathBuf::from(v).join("bin/python"),
        _ => PathBuf::from("python3"),
    };
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import importlib.util as u, os; s = u.find_spec('onnxruntime'); \
             print(os.path.join(os.path.dirname(s.origin), 'capi') if s and s.origin else '')",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| PathBuf::from(s))
}

/// Loads ONNX Runtime once per process (later calls return the same runtime). `gpu`
/// prefers the GPU build fetched by `make setup-gpu`.
pub fn runtime(explicit: Option<&Path>, gpu: bool) -> Result<&'static Runtime, BackendError> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    // One environment per process: threads racing to create it would make the second fail.
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let mut tried = Vec::new();
    let cands = candidates(explicit, gpu)
        .into_iter()
        .chain(std::iter::once_with(|| pip_candidates(explicit)).flatten());
    let must_exist =
        explicit.is_none() && std::env::var("ORT_DYLIB_PATH").map_or(true, |v| v.is_empty());
    for path in cands {
        if must_exist && !path.exists() {
            continue;
        }
        match ort::init_from(&path) {
            Ok(builder) => {
                let env = match builder
                    .with_name("rewardbench")
                    .with_telemetry(false)
                    .build()
                {
                    Ok(env) => env,
                    Err(e) => return Err(BackendError::Environment(e.to_string())),
                };
                let version = version_of(&path);
                let rt = Runtime {
                    env,
                    library: std::fs::canonicalize(&path).unwrap_or(path),
                    version,
                };
                return Ok(RUNTIME.get_or_init(|| rt));
            }
            Err(e) => tried.push(format!("  {}: {e}", path.display())),
        }
    }
    if tried.is_empty() {
        tried.push("  .ort/lib beside the executable and in the working directory, and a pip-installed onnxruntime: nothing there".into());
    }
    Err(BackendError::LibraryNotFound {
        tried: tried.join("\n"),
    })
}

/// The version of the loaded library, from its build string or else its file name.
fn version_of(path: &Path) -> String {
    let info = ort::info();
    if let Some(rest) = info.split("git-branch=rel-").nth(1) {
        let v: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        if !v.is_empty() {
            return v;
        }
    }
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    resolved
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("libonnxruntime.so."))
        .unwrap_or("unknown")
        .to_string()
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

fn shapes(rows: usize, cols: usize) -> String {
    format!("input_ids:{rows}x{cols},attention_mask:{rows}x{cols}")
}

/// The execution provider for `device`, set to fail rather than fall back silently.
fn provider(device: Device, opts: &SessionOptions) -> Option<ort::ep::ExecutionProviderDispatch> {
    match device {
        Device::Cpu | Device::Auto => None,
        Device::Cuda => Some(
            ort::ep::CUDA::default()
                .with_device_id(opts.device_id)
                .build()
                .error_on_failure(),
        ),
        Device::TensorRt => {
            let mut trt = ort::ep::TensorRT::default()
                .with_device_id(opts.device_id)
                .with_fp16(opts.fp16);
            if let Some(dir) = &opts.trt_cache {
                let dir = dir.display().to_string();
                trt = trt
                    .with_engine_cache(true)
                    .with_engine_cache_path(&dir)
                    .with_timing_cache(true)
                    .with_timing_cache_path(&dir);
            }
            if let Some([min, opt, max]) = opts.profile {
                trt = trt
                    .with_profile_min_shapes(shapes(min.0, min.1))
                    .with_profile_opt_shapes(shapes(opt.0, opt.1))
                    .with_profile_max_shapes(shapes(max.0, max.1));
            }
            Some(trt.build().error_on_failure())
        }
    }
}

fn provider_available(device: Device) -> Result<bool, String> {
    use ort::ep::ExecutionProvider;
    match device {
        Device::Cuda | Device::Auto => ort::ep::CUDA::is_available().map_err(|e| e.to_string()),
        Device::TensorRt => ort::ep::TensorRT::is_available().map_err(|e| e.to_string()),
        Device::Cpu => Ok(true),
    }
}

/// Inputs of the packed contract; a plain export has the first two.
const PACKED_INPUTS: [&str; 5] = [
    "input_ids",
    "attention_mask",
    "position_ids",
    "segment_ids",
    "pool_index",
];

/// A reward model: `input_ids`, `attention_mask` -> `logits [batch, num_labels]`, or the
/// packed contract (export/packing.py): plus `position_ids`, `segment_ids`, `pool_index
/// [batch, texts]` -> `logits [batch, texts, num_labels]`.
pub struct RewardSession {
    session: Session,
    path: PathBuf,
    /// Number of logits per row, when the graph states it.
    pub num_labels: Option<usize>,
    /// The packed contract (export/packing.py): rows of texts sharing a prefix.
    pub packed: bool,
    /// The device actually used.
    pub device: Device,
    /// What `--device auto` decided, when it fell back.
    pub note: Option<String>,
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

fn describe(outlets: &[ort::value::Outlet]) -> String {
    outlets
        .iter()
        .map(|o| match o.dtype() {
            ValueType::Tensor { ty, shape, .. } => {
                format!("{} {ty} {:?}", o.name(), shape.to_vec())
            }
            other => format!("{} {other:?}", o.name()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opens a session on the requested device: never a silent fallback, except that
/// `Device::Auto` falls back to CPU and says why. Returns the device actually used.
pub(crate) fn open_session(
    rt: &Runtime,
    path: &Path,
    opts: &SessionOptions,
) -> Result<(Session, Device, Option<String>), BackendError> {
    let load_err = |message: String| BackendError::Load {
        path: path.to_path_buf(),
        message,
    };
    let threads = if opts.threads == 0 {
        crate::available_cores()
    } else {
        opts.threads
    };
    let new_builder = || -> Result<ort::session::builder::SessionBuilder, BackendError> {
        Session::builder(&rt.env)
            .map_err(|e| load_err(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| load_err(e.to_string()))?
            .with_intra_threads(threads)
            .map_err(|e| load_err(e.to_string()))?
            .with_intra_op_spinning(false)
            .map_err(|e| load_err(e.to_string()))
    };
    let gpu_hint = |device: Device, message: String| {
        let hint = if matches!(provider_available(device), Ok(false)) {
            format!(
                "; the ONNX Runtime at {} was built without it (the CPU wheel): run `make setup-gpu` \
                 (fetches the onnxruntime-gpu wheel into .ort/gpu/lib) or pass --ort_lib pointing at a GPU build",
                rt.library.display()
            )
        } else if message.contains("cannot open shared object") {
            "; the GPU build of ONNX Runtime needs the CUDA 13 and cuDNN 9 libraries (cuBLAS, cuRAND, cudart, \
             and TensorRT 10 for tensorrt) on the library path (LD_LIBRARY_PATH), e.g. from NVIDIA's pip wheels"
                .to_string()
        } else {
            String::new()
        };
        BackendError::Provider {
            device: device_name(device),
            message: format!("{}{hint}", message.trim_end()),
        }
    };
    let (builder, device, note) = match opts.device {
        Device::Cpu => (new_builder()?, Device::Cpu, None),
        Device::Auto => {
            let cuda: Vec<_> = provider(Device::Cuda, opts).into_iter().collect();
            match new_builder()?.with_execution_providers(cuda) {
                Ok(b) if matches!(provider_available(Device::Cuda), Ok(true)) => (b, Device::Cuda, None),
                Ok(_) => (
                    new_builder()?,
                    Device::Cpu,
                    Some(format!(
                        "--device auto: the ONNX Runtime at {} has no CUDA provider; running on CPU",
                        rt.library.display()
                    )),
                ),
                Err(e) => (
                    new_builder()?,
                    Device::Cpu,
                    Some(format!("--device auto: CUDA could not start ({}); running on CPU", e.to_string().trim_end())),
                ),
            }
        }
        d => {
            if matches!(provider_available(d), Ok(false)) {
                return Err(gpu_hint(d, "not available".into()));
            }
            let ep: Vec<_> = provider(d, opts).into_iter().collect();
            let b = new_builder()?
                .with_execution_providers(ep)
                .map_err(|e| gpu_hint(d, e.to_string()))?;
            (b, d, None)
        }
    };
    let mut builder = builder;
    let session = builder
        .commit_from_file(path)
        .map_err(|e| load_err(e.to_string()))?;
    Ok((session, device, note))
}

impl RewardSession {
    /// Opens `path` on the requested device and checks that it has the inputs and output
    /// of a reward model.
    pub fn open(rt: &Runtime, path: &Path, opts: &SessionOptions) -> Result<Self, BackendError> {
        let (session, device, note) = open_session(rt, path, opts)?;

        let wrong = |problem: &str| BackendError::WrongKind {
            path: path.to_path_buf(),
            problem: problem.to_string(),
            inputs: describe(session.inputs()),
            outputs: describe(session.outputs()),
        };
        let names: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
        let packed = names.contains(&"pool_index");
        let wanted: &[&str] = if packed {
            &PACKED_INPUTS
        } else {
            &PACKED_INPUTS[..2]
        };
        for &want in wanted {
            match session.inputs().iter().find(|o| o.name() == want) {
                None => return Err(wrong(&format!("input `{want}` is missing"))),
                Some(o) => match o.dtype() {
                    ValueType::Tensor {
                        ty: TensorElementType::Int64,
                        shape,
                        ..
                    } if shape.len() == 2 => {}
                    _ => return Err(wrong(&format!("input `{want}` is not an int64 matrix"))),
                },
            }
        }
        if let Some(extra) = names.iter().find(|n| !wanted.contains(n)) {
            return Err(wrong(&format!(
                "it needs an input `{extra}` this evaluator does not feed"
            )));
        }
        if packed && device == Device::TensorRt {
            return Err(BackendError::Provider {
                device: "tensorrt",
                message: format!(
                    "{} is a packed export (--attention gqa): TensorRT has no GroupQueryAttention; \
                     export the model with --attention eager for GPUs",
                    path.display()
                ),
            });
        }
        let rank = if packed { 3 } else { 2 };
        let num_labels = match session.outputs().iter().find(|o| o.name() == "logits") {
            None => return Err(wrong("output `logits` is missing")),
            Some(o) => match o.dtype() {
                ValueType::Tensor { ty: TensorElementType::Float32, shape, .. } if shape.len() == rank => {
                    if shape[rank - 1] == 0 {
                        return Err(wrong("output `logits` has 0 labels (a reward model needs at least one)"));
                    }
                    usize::try_from(shape[rank - 1]).ok()
                }
                ValueType::Tensor { ty: TensorElementType::Float32, .. } if packed => {
                    return Err(wrong("output `logits` of a packed export is not [batch, texts, num_labels]"))
                }
                ValueType::Tensor { ty: TensorElementType::Float32, .. } => {
                    return Err(wrong(
                        "output `logits` is not [batch, num_labels] (a causal-LM export? DPO models take --ref_model)",
                    ))
                }
                _ => return Err(wrong("output `logits` is not float32")),
            },
        };
        Ok(Self {
            session,
            path: path.to_path_buf(),
            num_labels,
            packed,
            device,
            note,
        })
    }

    /// Path of the ONNX file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one call (from `batch::inputs`, packed for a packed model) and returns
    /// the logits of each of its sequences, row by row.
    pub fn score(&mut self, batch: &Padded) -> Result<Vec<Vec<f32>>, BackendError> {
        let (rows, cols) = batch.ids.dim();
        let run_err = |message: String| BackendError::Run {
            rows,
            cols,
            message,
        };
        let packing = match (&batch.packing, self.packed) {
            (None, false) => None,
            (Some(p), true) => Some(p),
            (None, true) => {
                return Err(run_err(format!(
                    "{} is a packed export: build its calls with batch::inputs(.., true)",
                    self.path.display()
                )))
            }
            (Some(_), false) => {
                return Err(run_err(format!(
                    "{} is a plain export; packed rows need one exported with --attention gqa",
                    self.path.display()
                )))
            }
        };
        fn view(a: &Array2<i64>) -> Result<TensorRef<'_, i64>, ort::Error> {
            TensorRef::from_array_view(a)
        }
        let view = |a| view(a).map_err(|e| run_err(e.to_string()));
        let mut inputs = ort::inputs![
            "input_ids" => view(&batch.ids)?,
            "attention_mask" => view(&batch.mask)?,
        ];
        if let Some(p) = packing {
            for (name, a) in PACKED_INPUTS[2..]
                .iter()
                .zip([&p.positions, &p.segments, &p.pool])
            {
                inputs.push((name.to_string().into(), view(a)?.into()));
            }
        }
        let outputs = self
            .session
            .run(inputs)
            .map_err(|e| run_err(e.to_string()))?;
        let (shape, data) = outputs["logits"]
            .try_extract_tensor::<f32>()
            .map_err(|e| run_err(e.to_string()))?;
        let bad_shape = || {
            run_err(format!(
                "`logits` came back with shape {:?}",
                shape.to_vec()
            ))
        };
        let Some(p) = packing else {
            if shape.len() != 2 || shape[0] as usize != rows {
                return Err(bad_shape());
            }
            let labels = shape[1] as usize;
            if labels == 0 {
                return Err(run_err(format!(
                    "{}: `logits` came back with 0 labels (shape {:?}); a reward model needs at least one",
                    self.path.display(),
                    shape.to_vec()
                )));
            }
            return Ok(data.chunks(labels).map(|c| c.to_vec()).collect());
        };
        let k = p.pool.ncols();
        if shape.len() != 3 || shape[0] as usize != rows || shape[1] as usize != k {
            return Err(bad_shape());
        }
        let labels = shape[2] as usize;
        if labels == 0 {
            return Err(bad_shape());
        }
        let mut out = Vec::with_capacity(p.texts.iter().sum());
        for (r, &n) in p.texts.iter().enumerate() {
            for t in 0..n {
                let at = (r * k + t) * labels;
                out.push(data[at..at + labels].to_vec());
            }
        }
        Ok(out)
    }
}
