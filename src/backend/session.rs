//! Sessions on a device: the execution provider (CUDA, TensorRT with its profile and caches),
//! never a silent fallback except `--device auto`, and input/output descriptions for errors.

use std::path::Path;

use ort::session::{builder::GraphOptimizationLevel, Session};
use ort::value::ValueType;

use super::{device_name, BackendError, Device, OrtExt, Runtime, SessionOptions};

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

pub(super) fn describe(outlets: &[ort::value::Outlet]) -> String {
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
pub(super) fn open_session(
    rt: &Runtime,
    path: &Path,
    opts: &SessionOptions,
) -> Result<(Session, Device, Option<String>), BackendError> {
    let threads = if opts.threads == 0 {
        crate::available_cores()
    } else {
        opts.threads
    };
    let new_builder = || -> Result<ort::session::builder::SessionBuilder, BackendError> {
        Session::builder(&rt.env)
            .or_load(path)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .or_load(path)?
            .with_intra_threads(threads)
            .or_load(path)?
            .with_intra_op_spinning(false)
            .or_load(path)
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
    let session = builder.commit_from_file(path).or_load(path)?;
    Ok((session, device, note))
}
