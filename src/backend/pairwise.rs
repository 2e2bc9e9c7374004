//! Pairwise preference models (export/export_pairwise.py): `input_ids`, `attention_mask`
//! (int64 [batch, seq], right padding) -> one float32 output: `pair_logits [batch]` (PairRM:
//! the model's logit for one source + two candidates) or the logits of one position,
//! `[batch, vocab]` (`next_token_logits` of a causal LM at the last attended token,
//! `first_token_logits` of T5's first decoder step).

use std::path::{Path, PathBuf};

use ndarray::Array2;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use super::session::{describe, open_session};
use super::{BackendError, Device, OrtExt, Runtime, SessionOptions};
use crate::batch::Padded;

/// What a pairwise export must provide: its kind (for messages), output name and rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contract {
    pub kind: &'static str,
    pub output: &'static str,
    /// 1: one value per row; 2: a vector per row.
    pub rank: usize,
}

impl Contract {
    fn shape(&self) -> &'static str {
        if self.rank == 1 {
            "[batch]"
        } else {
            "[batch, vocab]"
        }
    }
}

/// An export that does not have what a pairwise kind reads.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} is not a {kind} export: {problem}. Expected inputs `input_ids` and `attention_mask` \
     (int64 [batch, seq]) and an output `{output}` (float32 {shape}, from export/export_pairwise.py \
     --kind {kind}); found inputs [{inputs}] and outputs [{outputs}]",
    path.display()
)]
pub struct NotPairwise {
    pub path: PathBuf,
    pub kind: &'static str,
    pub output: &'static str,
    pub shape: &'static str,
    pub problem: String,
    pub inputs: String,
    pub outputs: String,
}

/// One call's output: `rows` rows of `width` values (1 for a rank-1 output).
#[derive(Debug, Clone, PartialEq)]
pub struct PairOutputs {
    pub rows: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl PairOutputs {
    /// Row `r`'s values.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.width..(r + 1) * self.width]
    }
}

/// An open pairwise export.
pub struct PairwiseSession {
    session: Session,
    path: PathBuf,
    contract: Contract,
    /// The device actually used.
    pub device: Device,
    /// What `--device auto` decided, when it fell back.
    pub note: Option<String>,
}

fn int64_matrix(o: &ort::value::Outlet) -> bool {
    matches!(o.dtype(), ValueType::Tensor { ty: TensorElementType::Int64, shape, .. } if shape.len() == 2)
}

impl PairwiseSession {
    /// Opens `path` and checks it against `contract`.
    pub fn open(
        rt: &Runtime,
        path: &Path,
        opts: &SessionOptions,
        contract: Contract,
    ) -> Result<Self, BackendError> {
        let (session, device, note) = open_session(rt, path, opts)?;
        let wrong = |problem: String| {
            BackendError::NotPairwise(Box::new(NotPairwise {
                path: path.to_path_buf(),
                kind: contract.kind,
                output: contract.output,
                shape: contract.shape(),
                problem,
                inputs: describe(session.inputs()),
                outputs: describe(session.outputs()),
            }))
        };
        for name in ["input_ids", "attention_mask"] {
            match session.inputs().iter().find(|o| o.name() == name) {
                Some(o) if int64_matrix(o) => {}
                Some(_) => return Err(wrong(format!("input `{name}` is not an int64 matrix"))),
                None => return Err(wrong(format!("input `{name}` is missing"))),
            }
        }
        if let Some(o) = session
            .inputs()
            .iter()
            .find(|o| !matches!(o.name(), "input_ids" | "attention_mask"))
        {
            return Err(wrong(format!(
                "it needs an input `{}` this evaluator does not feed",
                o.name()
            )));
        }
        match session
            .outputs()
            .iter()
            .find(|o| o.name() == contract.output)
        {
            Some(o) => match o.dtype() {
                ValueType::Tensor {
                    ty: TensorElementType::Float32,
                    shape,
                    ..
                } if shape.len() == contract.rank => {}
                _ => {
                    return Err(wrong(format!(
                        "output `{}` is not float32 {}",
                        contract.output,
                        contract.shape()
                    )))
                }
            },
            None => return Err(wrong(format!("it has no output `{}`", contract.output))),
        }
        Ok(Self {
            session,
            path: path.to_path_buf(),
            contract,
            device,
            note,
        })
    }

    /// Path of the ONNX file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one padded call (one sequence per row).
    pub fn run(&mut self, batch: &Padded) -> Result<PairOutputs, BackendError> {
        let (rows, cols) = batch.ids.dim();
        fn view(a: &Array2<i64>) -> Result<TensorRef<'_, i64>, ort::Error> {
            TensorRef::from_array_view(a)
        }
        let inputs = ort::inputs![
            "input_ids" => view(&batch.ids).or_run(rows, cols)?,
            "attention_mask" => view(&batch.mask).or_run(rows, cols)?,
        ];
        let outputs = self.session.run(inputs).or_run(rows, cols)?;
        let (shape, data) = outputs[self.contract.output]
            .try_extract_tensor::<f32>()
            .or_run(rows, cols)?;
        let width = match shape.len() {
            1 => 1,
            2 => shape[1].max(0) as usize,
            _ => 0,
        };
        if shape.len() != self.contract.rank
            || shape.first().copied() != Some(rows as i64)
            || width == 0
            || data.len() != rows * width
        {
            return Err(BackendError::Batch {
                rows,
                cols,
                problem: format!(
                    "{}: `{}` came back with shape {:?}, not {}",
                    self.path.display(),
                    self.contract.output,
                    shape.to_vec(),
                    self.contract.shape()
                ),
            });
        }
        Ok(PairOutputs {
            rows,
            width,
            data: data.to_vec(),
        })
    }
}
