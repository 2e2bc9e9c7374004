//! A model folder: where the ONNX file, tokenizer and config live.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::backend::Device;
use crate::hub::{self, Hub, HubError, RepoKind, RepoRef};

/// Errors locating a model's files.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model folder {path} does not exist")]
    NotFound { path: PathBuf },
    #[error("{path} is a file: --model (and --tokenizer, --ref_model) take the folder that holds model.onnx and the tokenizer files: pass {}", folder_of(path))]
    File { path: PathBuf },
    #[error("no ONNX model in {path}: looked for {} (export one with export/export_rm.py)", looked_for(*device))]
    NoOnnx { path: PathBuf, device: Device },
    #[error("{path}: invalid JSON: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{}", hub::prefixed(&format!("model {id}"), source))]
    Hub { id: String, source: Box<HubError> },
    #[error("no local folder {}, and as a hub id: {source}", path.display())]
    NoFolderNorRepo {
        path: PathBuf,
        source: Box<HubError>,
    },
    #[error("{} references external data {}, which is missing: the graph's data files must sit beside it", graph.display(), file.display())]
    MissingExternalData { graph: PathBuf, file: PathBuf },
    #[error(
        "hub model {repo}: its graph references external data {file}, which the repo does not have"
    )]
    HubMissingExternalData { repo: String, file: String },
    #[error("{0}")]
    ExternalData(#[from] crate::external_data::ExternalDataError),
    #[error("hub model {repo} has no ONNX export: looked for {} among its files ({found}); export one with export/export_rm.py", looked_for(*device))]
    HubNoOnnx {
        repo: String,
        found: String,
        device: Device,
    },
}

/// The eager graph that `export_rm.py --attention auto` writes beside a fused, packed
/// `model.onnx`, for GPU providers.
pub const GPU_ONNX: &str = "gpu/model.onnx";

/// The graphs of Optimum's legacy decoder export (`optimum-cli export onnx --task
/// text-generation-with-past --legacy`, which writes no `model.onnx`), at the root or in `onnx/`
/// (a hub repo's layout), in the order taken: the decoder without past, then the merged decoder
/// (fed `use_cache_branch` false and an empty past, so its no-past branch runs). Its
/// `decoder_with_past_model.onnx` is a generation step and is never taken.
pub const OPTIMUM_LEGACY: [&str; 4] = [
    "decoder_model.onnx",
    "onnx/decoder_model.onnx",
    "decoder_model_merged.onnx",
    "onnx/decoder_model_merged.onnx",
];

/// The ONNX files a run on `device` looks for in a model folder, in order: on CPU `model.onnx`
/// (with `--attention auto`, the fused graph, ONNX Runtime's fast CPU path; also what
/// `optimum-cli export onnx` writes), else `onnx/model.onnx` (Optimum's layout on the hub),
/// else [`OPTIMUM_LEGACY`]; on a GPU device (`cuda`, `tensorrt`, and `auto`, which asks for
/// CUDA) `gpu/model.onnx` first, the eager graph every provider runs.
pub fn onnx_candidates(device: Device) -> &'static [&'static str] {
    const CPU: [&str; 6] = [
        "model.onnx",
        "onnx/model.onnx",
        OPTIMUM_LEGACY[0],
        OPTIMUM_LEGACY[1],
        OPTIMUM_LEGACY[2],
        OPTIMUM_LEGACY[3],
    ];
    const GPU: [&str; 7] = [GPU_ONNX, CPU[0], CPU[1], CPU[2], CPU[3], CPU[4], CPU[5]];
    if device.wants_gpu() {
        &GPU
    } else {
        &CPU
    }
}

/// The graph to run on `device` among `present` (paths in the folder), and a one-line note
/// when the folder has both a CPU and a GPU graph.
pub fn choose_onnx(
    device: Device,
    present: &dyn Fn(&str) -> bool,
) -> Option<(&'static str, Option<String>)> {
    let chosen = onnx_candidates(device)
        .iter()
        .copied()
        .find(|f| present(f))?;
    let cpu = onnx_candidates(Device::Cpu)
        .iter()
        .copied()
        .find(|f| present(f));
    let note = match cpu {
        Some(cpu) if present(GPU_ONNX) => Some(if chosen == GPU_ONNX {
            format!(
                "--device {}: using {GPU_ONNX} (the GPU graph); {cpu} is the one for --device cpu",
                crate::backend::device_name(device)
            )
        } else {
            format!("--device cpu: using {cpu}; {GPU_ONNX} is the one for --device cuda/tensorrt")
        }),
        _ => None,
    };
    Some((chosen, note))
}

fn looked_for(device: Device) -> String {
    let c: Vec<&str> = onnx_candidates(device)
        .iter()
        .copied()
        .filter(|f| !OPTIMUM_LEGACY.contains(f))
        .collect();
    let main = match c.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => c.join(""),
    };
    format!("{main}, then Optimum's legacy decoder_model.onnx and decoder_model_merged.onnx, at the root or in onnx/")
}

/// The folder of a file, for messages (`.` for a bare file name).
fn folder_of(path: &Path) -> String {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
        _ => ".".to_string(),
    }
}

/// Tokenizer and config files fetched from a hub model repo when present.
const SIDE_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    crate::registry::FOLDER_FILE,
    // a pairwise export's contract (export/export_pairwise.py): its kind
    "pairwise.json",
];

/// `--model` / `--tokenizer` as a local folder: an existing path is used as is; a hub id
/// (`org/name`) is downloaded into the hub cache (at `revision`) and its snapshot folder
/// returned. With `onnx_for` a device, the ONNX file for it is fetched too, the first of
/// [`onnx_candidates`] the repo has (`gpu/model.onnx` for a GPU device, then `model.onnx` at
/// the root, then Optimum's `onnx/model.onnx`, then its legacy decoders), with its external-data files
/// (`model.onnx_data`, ...).
pub fn resolve(
    spec: &Path,
    revision: Option<&str>,
    onnx_for: Option<Device>,
    hub: &dyn Fn() -> Result<Hub, HubError>,
) -> Result<PathBuf, ModelError> {
    let text = spec.to_string_lossy();
    if spec.exists() || !hub::is_repo_id(&text) {
        return Ok(spec.to_path_buf());
    }
    let id = text.into_owned();
    let err = |source| ModelError::Hub {
        id: id.clone(),
        source: Box::new(source),
    };
    let hub = hub().map_err(err)?;
    let repo = RepoRef::new(&id, RepoKind::Model, revision);
    let snap = hub.snapshot(&repo).map_err(|source| match source {
        // The repo itself is not there (or cannot be looked for): the path may be a typo.
        HubError::NotFound { .. }
        | HubError::Denied { .. }
        | HubError::Unreachable { .. }
        | HubError::NotCached { .. } => ModelError::NoFolderNorRepo {
            path: spec.to_path_buf(),
            source: Box::new(source),
        },
        other => err(other),
    })?;
    let mut wanted: Vec<String> = SIDE_FILES
        .iter()
        .filter(|f| snap.files.iter().any(|x| x == *f))
        .map(|f| f.to_string())
        .collect();
    let mut graph = None;
    if let Some(device) = onnx_for {
        let onnx = onnx_candidates(device)
            .iter()
            .find(|f| snap.files.iter().any(|x| x == *f))
            .ok_or_else(|| ModelError::HubNoOnnx {
                device,
                repo: repo.to_string(),
                found: {
                    let list: Vec<&str> = snap
                        .files
                        .iter()
                        .map(String::as_str)
                        .filter(|f| f.ends_with(".onnx"))
                        .collect();
                    if list.is_empty() {
                        "no .onnx file".to_string()
                    } else {
                        list.join(", ")
                    }
                },
            })?;
        // External data sits beside the graph: model.onnx_data, model.onnx.data, ...
        let external = format!("{onnx}_data");
        let dotted = format!("{onnx}.data");
        wanted.push(onnx.to_string());
        graph = Some(*onnx);
        wanted.extend(
            snap.files
                .iter()
                .filter(|f| f.starts_with(&external) || f.starts_with(&dotted))
                .cloned(),
        );
    }
    let mut dir = hub.snapshot_dir(&repo, &snap.commit);
    for f in &wanted {
        let local = hub.fetch(&snap, f).map_err(err)?;
        if let Some(d) = local.ancestors().nth(f.split('/').count()) {
            dir = d.to_path_buf();
        }
    }
    // Every data file the downloaded graph references, beside it in the repo.
    if let Some(onnx) = graph {
        let refs = match crate::external_data::locations(&dir.join(onnx)) {
            Ok(r) => r,
            // not valid protobuf: ONNX Runtime reports it when loading
            Err(crate::external_data::ExternalDataError::Malformed { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let folder = onnx.rsplit_once('/').map(|(d, _)| format!("{d}/"));
        for loc in refs {
            let f = format!("{}{loc}", folder.as_deref().unwrap_or(""));
            if wanted.contains(&f) {
                continue;
            }
            if !snap.files.contains(&f) {
                return Err(ModelError::HubMissingExternalData {
                    repo: repo.to_string(),
                    file: f,
                });
            }
            hub.fetch(&snap, &f).map_err(err)?;
        }
    }
    Ok(dir)
}

/// A `--model` path as the summary records it: lexically normalised (no `.` parts or
/// trailing `/`, `a/../b` as `b`), relative paths kept relative; a hub id is unchanged.
pub fn display_path(p: &Path) -> String {
    use std::path::Component;
    let mut parts: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let out: PathBuf = parts.iter().collect();
    match out.as_os_str().is_empty() {
        true => ".".to_string(),
        false => out.display().to_string(),
    }
}

/// Whether this CPU computes in half precision natively (AVX-512 FP16 or AArch64 FP16).
pub fn cpu_has_half_arithmetic() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512fp16")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("fp16")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// One walk over `onnx`: the external-data files it references, each checked to be there,
/// and the half-precision type most of its weights are stored in, if any. A graph that is not
/// valid protobuf references nothing here: ONNX Runtime reports it when loading.
fn graph_tensors(onnx: &Path) -> Result<(Vec<PathBuf>, Option<&'static str>), ModelError> {
    use crate::external_data::{tensors, ExternalDataError};
    let t = match tensors(onnx) {
        Ok(t) => t,
        Err(ExternalDataError::Malformed { .. }) => return Ok((Vec::new(), None)),
        Err(e) => return Err(e.into()),
    };
    let dir = onnx.parent().unwrap_or(Path::new(""));
    let files: Vec<PathBuf> = t.locations.iter().map(|l| dir.join(l)).collect();
    if let Some(missing) = files.iter().find(|f| !f.is_file()) {
        return Err(ModelError::MissingExternalData {
            graph: onnx.to_path_buf(),
            file: missing.clone(),
        });
    }
    Ok((files, t.half_precision()))
}

/// Past this size a single-file graph gets [`ModelFiles::memory_note`] (the exporters' own
/// limit for `--external_data auto`).
pub const INLINE_NOTE_BYTES: u64 = 512 << 20;

/// The files of one exported model.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub onnx: PathBuf,
    /// Which graph was chosen and why, when the folder has one for CPU and one for GPUs.
    pub note: Option<String>,
    /// `config.json`, when present.
    pub config: Option<Value>,
    /// The result files' name, when not [`ModelFiles::name`]'s default.
    pub stem: Option<String>,
    /// The external-data files the graph references (none for a single-file model).
    pub external: Vec<PathBuf>,
    /// "float16" or "bfloat16" when most of the graph's weights are stored so.
    pub half: Option<&'static str>,
}

impl ModelFiles {
    /// Finds the ONNX file for `device` in `dir` ([`onnx_candidates`]): `model.onnx` at the
    /// root or in `onnx/` (Optimum's layout on the hub), then Optimum's legacy decoders
    /// ([`OPTIMUM_LEGACY`]); for a GPU device `gpu/model.onnx` first.
    pub fn locate(dir: &Path, device: Device) -> Result<Self, ModelError> {
        if dir.is_file() {
            return Err(ModelError::File {
                path: dir.to_path_buf(),
            });
        }
        if !dir.is_dir() {
            return Err(ModelError::NotFound {
                path: dir.to_path_buf(),
            });
        }
        let (onnx, note) =
            choose_onnx(device, &|f| dir.join(f).is_file()).ok_or_else(|| ModelError::NoOnnx {
                path: dir.to_path_buf(),
                device,
            })?;
        let onnx = dir.join(onnx);
        let (external, half) = graph_tensors(&onnx)?;
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
            note,
            config,
            stem: None,
            external,
            half,
        })
    }

    /// The run's model: [`ModelFiles::locate`] for its device, with the result files named
    /// as the run chose (`output.name`).
    pub fn for_run(cfg: &crate::config::RunConfig) -> Result<Self, ModelError> {
        Ok(Self {
            stem: cfg.output.name.clone(),
            ..Self::locate(&cfg.model.dir, cfg.device.device)?
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

    /// One token's work outside attention (projections and MLP), in units of one query-key
    /// pair of attention, from `config.json`: per layer a token costs
    /// `2 (2 d h + 2 d kv + m d ffn)` flops and a pair `4 h` (`h` = heads x head size, `kv`
    /// = key/value heads x head size, `m` = 3 matrices in a gated MLP, 2 in GPT-2's), and
    /// attention reaches about half the matrix multiplications' flop rate (measured on the
    /// bench model with ONNX Runtime 1.31 on CPU: 1380, this formula gives 1420). Llama-style
    /// names (`hidden_size`, `num_attention_heads`, `intermediate_size`) or GPT-2's (`n_embd`,
    /// `n_head`, `n_inner`, null meaning 4 d). 1000 when the config does not say.
    pub fn token_cost(&self) -> f64 {
        const ATTENTION_EFFICIENCY: f64 = 0.5;
        let get = |k: &str| {
            self.config
                .as_ref()
                .and_then(|c| c.get(k))
                .and_then(Value::as_u64)
                .map(|v| v as f64)
        };
        let gpt2 = get("hidden_size").is_none() && get("n_embd").is_some();
        let (d, heads) = if gpt2 {
            (get("n_embd"), get("n_head"))
        } else {
            (get("hidden_size"), get("num_attention_heads"))
        };
        let (Some(d), Some(heads)) = (d, heads) else {
            return 1000.0;
        };
        if heads <= 0.0 {
            return 1000.0;
        }
        let (head, kv_heads, ffn, mlp_mats) = if gpt2 {
            (d / heads, heads, get("n_inner").unwrap_or(4.0 * d), 2.0)
        } else {
            (
                get("head_dim").unwrap_or(d / heads),
                get("num_key_value_heads").unwrap_or(heads),
                get("intermediate_size").unwrap_or(4.0 * d),
                3.0,
            )
        };
        let h = heads * head;
        let kv = kv_heads * head;
        2.0 * (2.0 * d * h + 2.0 * d * kv + mlp_mats * d * ffn) / (4.0 * h) * ATTENTION_EFFICIENCY
    }

    /// A note for a half-precision graph run on a CPU without half-precision arithmetic
    /// (x86-64 without AVX-512 FP16, AArch64 without FP16): ONNX Runtime is then no faster
    /// than with float32, often slower, and the scores are float16's.
    pub fn precision_note(&self, device: Device) -> Option<String> {
        if device.wants_gpu() || cpu_has_half_arithmetic() {
            return None;
        }
        let half = self.half?;
        Some(format!(
            "{} holds {half} weights: this CPU has no {half} arithmetic, so ONNX Runtime runs it \
             no faster than float32 and often slower (measured 18.5 vs 18.7 pairs/s for float16 on \
             2 Zen 3 cores), with scores rounded to {half}; on CPU use the float32 export, and \
             the {half} one with --device cuda",
            display_path(&self.onnx)
        ))
    }

    /// A note for a graph holding more than [`INLINE_NOTE_BYTES`] of weights in one file:
    /// ONNX Runtime copies inline weights while it parses the protobuf, not an external data
    /// file (a 1.27 GB Llama: 2.35 GB peak from one file, 1.67 GB with external data).
    pub fn memory_note(&self) -> Option<String> {
        if !self.external.is_empty() {
            return None;
        }
        let bytes = std::fs::metadata(&self.onnx).ok()?.len();
        (bytes > INLINE_NOTE_BYTES).then(|| {
            format!(
                "{} holds its {:.2} GB of weights in the one file: ONNX Runtime copies them while \
                 loading it (peak memory about 1.8x the weights, 1.3x with external data); \
                 export with --external_data always (or onnx.save(..., save_as_external_data=True)) \
                 when memory is tight",
                display_path(&self.onnx),
                bytes as f64 / 1e9
            )
        })
    }

    /// Attention heads per layer from `config.json` (`num_attention_heads`, GPT-2's `n_head`,
    /// T5's `num_heads`), when present.
    pub fn attention_heads(&self) -> Option<usize> {
        let config = self.config.as_ref()?;
        ["num_attention_heads", "n_head", "num_heads"]
            .iter()
            .find_map(|k| config.get(*k)?.as_u64())
            .filter(|&h| h > 0)
            .and_then(|h| usize::try_from(h).ok())
    }

    /// The pad id the export's pooling was built with (`config.json` `pad_token_id`).
    pub fn pad_token_id(&self) -> Option<i64> {
        self.config.as_ref()?.get("pad_token_id")?.as_i64()
    }

    /// Name used for result files: [`result_name`] of its chosen name and folder.
    pub fn name(&self) -> String {
        result_name(self.stem.as_deref(), &self.dir)
    }

    /// The folder's [`base_name_of`].
    pub fn base_name(&self) -> String {
        base_name_of(&self.dir)
    }
}

/// A model folder's base name, or `org/name` for a hub-cache snapshot (the `/` makes a
/// subfolder of the output, as in RewardBench).
pub fn base_name_of(dir: &Path) -> String {
    if let Some((RepoKind::Model, id)) = hub::repo_of_cache_path(dir) {
        return id;
    }
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    canonical
        .file_name()
        .map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned())
}

/// The result files' name: the chosen one (`--name`), else [`base_name_of`] the model folder.
pub fn result_name(chosen: Option<&str>, dir: &Path) -> String {
    chosen.map_or_else(|| base_name_of(dir), str::to_string)
}

/// The name of a run's result files, as [`ModelFiles::name`] of [`ModelFiles::for_run`] gives
/// it, without looking for the graph.
pub fn run_model_name(cfg: &crate::config::RunConfig) -> String {
    result_name(cfg.output.name.as_deref(), &cfg.model.dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has<'a>(files: &'a [&'a str]) -> impl Fn(&str) -> bool + 'a {
        move |f| files.contains(&f)
    }

    #[test]
    fn cpu_takes_model_onnx_and_gpu_devices_take_the_gpu_graph() {
        let both = ["model.onnx", GPU_ONNX];
        let (f, note) = choose_onnx(Device::Cpu, &has(&both)).unwrap();
        assert_eq!(f, "model.onnx");
        assert!(note.unwrap().contains("using model.onnx"));
        for d in [Device::Cuda, Device::TensorRt, Device::Auto] {
            let (f, note) = choose_onnx(d, &has(&both)).unwrap();
            assert_eq!(f, GPU_ONNX, "{d:?}");
            assert!(note.unwrap().contains("using gpu/model.onnx"), "{d:?}");
        }
        // Optimum's layout beside a GPU graph: the same choice.
        let optimum = ["onnx/model.onnx", GPU_ONNX];
        assert_eq!(
            choose_onnx(Device::Cpu, &has(&optimum)).unwrap().0,
            "onnx/model.onnx"
        );
    }

    #[test]
    fn one_graph_is_used_on_every_device_without_a_note() {
        for files in [&["model.onnx"][..], &["onnx/model.onnx"][..]] {
            for d in [Device::Cpu, Device::Cuda, Device::TensorRt, Device::Auto] {
                let (f, note) = choose_onnx(d, &has(files)).unwrap();
                assert_eq!(f, files[0]);
                assert!(note.is_none());
            }
        }
        // A GPU graph alone is not a CPU graph.
        assert!(choose_onnx(Device::Cpu, &has(&[GPU_ONNX])).is_none());
        assert_eq!(
            choose_onnx(Device::Cuda, &has(&[GPU_ONNX])).unwrap(),
            (GPU_ONNX, None)
        );
        assert!(choose_onnx(Device::Cuda, &has(&[])).is_none());
    }

    fn with_config(config: Value) -> ModelFiles {
        ModelFiles {
            dir: PathBuf::from("m"),
            onnx: PathBuf::from("m/model.onnx"),
            note: None,
            config: Some(config),
            stem: None,
            external: Vec::new(),
            half: None,
        }
    }

    #[test]
    fn a_large_single_file_graph_gets_a_memory_note_and_external_data_none() {
        let dir = tempfile::tempdir().unwrap();
        let onnx = dir.path().join("model.onnx");
        let f = std::fs::File::create(&onnx).unwrap();
        f.set_len(INLINE_NOTE_BYTES).unwrap(); // sparse: no disk used
        let mut m = with_config(serde_json::json!({}));
        m.onnx = onnx;
        assert!(m.memory_note().is_none(), "at the limit");
        f.set_len(INLINE_NOTE_BYTES + 1).unwrap();
        let note = m.memory_note().unwrap();
        assert!(
            note.contains("0.54 GB") && note.contains("--external_data always"),
            "{note}"
        );
        m.external = vec![dir.path().join("model.onnx_data")];
        assert!(m.memory_note().is_none(), "external data");
    }

    #[test]
    fn token_cost_and_positions_read_gpt2_config_names() {
        // GPT-2 small: d 768, 12 heads, n_inner null (4 d), 1024 positions
        let gpt2 = with_config(serde_json::json!({
            "model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_inner": null,
            "n_positions": 1024, "n_layer": 12
        }));
        // 2 (2 d^2 + 2 d^2 + 2 d 4d) / (4 d) / 2 = 3 d
        assert_eq!(gpt2.token_cost(), 3.0 * 768.0);
        assert_eq!(gpt2.max_positions(), Some(1024));
        let inner = with_config(serde_json::json!({"n_embd": 48, "n_head": 4, "n_inner": 96}));
        // 2 (4 d^2 + 2 d 96) / (4 d) / 2 = d + 48
        assert_eq!(inner.token_cost(), 48.0 + 48.0);
        assert_eq!(inner.max_positions(), None);
        // the Llama names are unchanged: 2 (2 d h + 2 d kv + 3 d ffn) / (4 h) / 2
        let llama = with_config(serde_json::json!({
            "hidden_size": 512, "num_attention_heads": 8, "num_key_value_heads": 4,
            "intermediate_size": 1376, "max_position_embeddings": 4096
        }));
        let want = (2.0 * 512.0 * 512.0 + 2.0 * 512.0 * 256.0 + 3.0 * 512.0 * 1376.0) / 2048.0;
        assert!((llama.token_cost() - want).abs() < 1e-9);
        assert_eq!(llama.max_positions(), Some(4096));
        assert_eq!(with_config(serde_json::json!({})).token_cost(), 1000.0);
    }

    #[test]
    fn the_missing_graph_message_names_what_was_looked_for() {
        let e = ModelError::NoOnnx {
            path: PathBuf::from("m"),
            device: Device::Cuda,
        };
        assert!(e
            .to_string()
            .contains("looked for gpu/model.onnx, model.onnx and onnx/model.onnx, then"));
        let e = ModelError::NoOnnx {
            path: PathBuf::from("m"),
            device: Device::Cpu,
        };
        assert!(e.to_string().contains(
            "looked for model.onnx and onnx/model.onnx, then Optimum's legacy decoder_model.onnx \
             and decoder_model_merged.onnx, at the root or in onnx/ (export"
        ));
    }

    #[test]
    fn optimum_legacy_decoders_are_taken_after_model_onnx() {
        // `--legacy` writes three graphs and no model.onnx: the decoder without past first.
        let legacy = [
            "decoder_model.onnx",
            "decoder_with_past_model.onnx",
            "decoder_model_merged.onnx",
        ];
        for d in [Device::Cpu, Device::Cuda] {
            assert_eq!(
                choose_onnx(d, &has(&legacy)).unwrap(),
                ("decoder_model.onnx", None)
            );
        }
        // a hub repo that keeps only the merged decoder, in onnx/
        let merged = ["onnx/decoder_model_merged.onnx"];
        assert_eq!(
            choose_onnx(Device::Cpu, &has(&merged)).unwrap().0,
            "onnx/decoder_model_merged.onnx"
        );
        // a generation step alone is not a graph to score
        assert!(choose_onnx(Device::Cpu, &has(&["decoder_with_past_model.onnx"])).is_none());
        // model.onnx wins over legacy files beside it
        let both = ["decoder_model_merged.onnx", "model.onnx"];
        assert_eq!(
            choose_onnx(Device::Cpu, &has(&both)).unwrap().0,
            "model.onnx"
        );
        // beside a GPU graph, the note names the legacy graph as the CPU one
        let gpu = ["decoder_model.onnx", GPU_ONNX];
        let (f, note) = choose_onnx(Device::Cpu, &has(&gpu)).unwrap();
        assert_eq!(f, "decoder_model.onnx");
        assert!(note.unwrap().contains("using decoder_model.onnx"));
    }
}
