//! Finding and loading the ONNX Runtime shared library, once per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::BackendError;

/// The loaded ONNX Runtime library, shared by every session of the process.
pub struct Runtime {
    pub(super) env: ort::environment::Environment,
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
                    Err(e) => return Err(BackendError::Environment(e)),
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
