//! Reward-model sessions: the plain, per-token and packed contracts, checked at open, and one
//! padded call scored into per-sequence logits (or, per token, the head at every position).

use std::path::{Path, PathBuf};

use ndarray::Array2;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use super::session::{describe, open_session};
use super::{BackendError, Caps, Device, OrtExt, Runtime, SessionOptions};
use crate::batch::Padded;

/// Inputs of the packed contract; a plain export has the first two.
const PACKED_INPUTS: [&str; 5] = [
    "input_ids",
    "attention_mask",
    "position_ids",
    "segment_ids",
    "pool_index",
];

/// The output of a per-token export (`export_rm.py --per_token`).
pub const PER_TOKEN_OUTPUT: &str = "token_logits";

/// A reward model: `input_ids`, `attention_mask` -> `logits [batch, num_labels]`; or per token
/// (`export_rm.py --per_token`): -> `token_logits [batch, seq, num_labels]`, the head at every
/// position, pooled by the caller; or the packed contract (export/packing.py): plus
/// `position_ids`, `segment_ids`, `pool_index [batch, texts]` -> `logits [batch, texts,
/// num_labels]`. Another float output can be named as the score (`--score_output`): rank 2 is
/// pooled, rank 3 per token.
pub struct RewardSession {
    session: Session,
    path: PathBuf,
    /// Number of logits per row, when the graph states it.
    pub num_labels: Option<usize>,
    /// The packed contract (export/packing.py): rows of texts sharing a prefix.
    pub packed: bool,
    /// The score output holds the head at every position (`[batch, seq, num_labels]`).
    pub per_token: bool,
    /// The graph output the scores are read from.
    pub output: String,
    /// The device actually used.
    pub device: Device,
    /// What `--device auto` decided, when it fell back.
    pub note: Option<String>,
    max_rows: Option<usize>,
}

impl RewardSession {
    /// Opens `path` on the requested device and checks that it has the inputs and output
    /// of a reward model.
    pub fn open(rt: &Runtime, path: &Path, opts: &SessionOptions) -> Result<Self, BackendError> {
        Self::open_output(rt, path, opts, None)
    }

    /// [`open`](Self::open), scoring with the graph output `output` (`--score_output`);
    /// `None`: `logits`, else a per-token export's `token_logits`.
    pub fn open_output(
        rt: &Runtime,
        path: &Path,
        opts: &SessionOptions,
        output: Option<&str>,
    ) -> Result<Self, BackendError> {
        let (session, device, note) = open_session(rt, path, opts)?;

        let wrong = |problem: &str| BackendError::WrongKind {
            path: path.to_path_buf(),
            problem: problem.to_string(),
            inputs: describe(session.inputs()),
            outputs: describe(session.outputs()),
        };
        let names: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
        let packed = names.contains(&"pool_index");
        // A static batch dimension of `input_ids`, else the rows TensorRT's profile allows.
        let static_rows = session
            .inputs()
            .iter()
            .find(|o| o.name() == "input_ids")
            .and_then(|o| match o.dtype() {
                ValueType::Tensor { shape, .. } => shape
                    .first()
                    .and_then(|&d| usize::try_from(d).ok())
                    .filter(|&d| d > 0),
                _ => None,
            });
        let max_rows = static_rows.or(match device {
            Device::TensorRt => opts.profile.map(|p| p[2].0),
            _ => None,
        });
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
        let has = |name: &str| session.outputs().iter().any(|o| o.name() == name);
        if !has("logits") && !has(PER_TOKEN_OUTPUT) && output.is_none() && has("last_hidden_state")
        {
            return Err(wrong(
                "its output `last_hidden_state` is hidden states, not a score (an Optimum \
                 `--task feature-extraction` export?); export the reward model with \
                 `optimum-cli export onnx --task text-classification` or export/export_rm.py",
            ));
        }
        if let Some(extra) = names.iter().find(|n| !wanted.contains(n)) {
            let decoder = *extra == "position_ids"
                || *extra == "use_cache_branch"
                || extra.starts_with("past_key_values");
            let lm_logits = session.outputs().iter().any(|o| {
                o.name() == "logits"
                    && matches!(o.dtype(), ValueType::Tensor { shape, .. } if shape.len() == 3)
            });
            if decoder && lm_logits {
                return Err(wrong(&format!(
                    "its input `{extra}` and output `logits [batch, seq, vocab]` are a causal \
                     language model's (an Optimum `--task text-generation` export?): DPO models \
                     take --ref_model (or --ref_free_type); a reward model is exported with \
                     `--task text-classification`"
                )));
            }
            return Err(wrong(&format!(
                "it needs an input `{extra}` this evaluator does not feed"
            )));
        }
        if packed && device == Device::TensorRt {
            return Err(BackendError::Provider {
                device: "tensorrt",
                message: format!(
                    "{} is a packed export (--attention gqa): TensorRT has no GroupQueryAttention \
                     or com.microsoft Attention (GPT-2's); \
                     export the model with --attention eager for GPUs",
                    path.display()
                ),
            });
        }
        let name = match output {
            Some(o) if packed && o != "logits" => {
                return Err(wrong(&format!(
                    "a packed export (--attention gqa) scores with its output `logits`; --score_output {o} does not apply"
                )))
            }
            Some(o) => o,
            None if has("logits") || packed => "logits",
            None if has(PER_TOKEN_OUTPUT) => PER_TOKEN_OUTPUT,
            None => {
                return Err(wrong(
                    "output `logits` is missing (a per-token export names it `token_logits`; \
                     --score_output NAME scores with another output)",
                ))
            }
        };
        let Some(out) = session.outputs().iter().find(|o| o.name() == name) else {
            return Err(wrong(&match output {
                Some(_) => format!("output `{name}` (--score_output) is missing"),
                None => format!("output `{name}` is missing"),
            }));
        };
        let shape = match out.dtype() {
            ValueType::Tensor {
                ty: TensorElementType::Float32,
                shape,
                ..
            } => shape.clone(),
            _ => return Err(wrong(&format!("output `{name}` is not float32"))),
        };
        // Per token: a rank-3 output of a plain export, `token_logits` or named (a causal LM's
        // `logits [batch, seq, vocab]` is not taken for one unless named).
        let per_token =
            !packed && shape.len() == 3 && (name == PER_TOKEN_OUTPUT || output.is_some());
        let rank = if packed || per_token { 3 } else { 2 };
        if shape.len() != rank {
            return Err(wrong(&if packed {
                "output `logits` of a packed export is not [batch, texts, num_labels]".to_string()
            } else if name == "logits" {
                "output `logits` is not [batch, num_labels] (a causal-LM export? DPO models take --ref_model)".to_string()
            } else if name == PER_TOKEN_OUTPUT {
                format!("output `{name}` is not [batch, seq, num_labels]")
            } else {
                format!("output `{name}` is not [batch, num_labels] or, per token, [batch, seq, num_labels]")
            }));
        }
        if shape[rank - 1] == 0 {
            return Err(wrong(&format!(
                "output `{name}` has 0 labels (a reward model needs at least one)"
            )));
        }
        let num_labels = usize::try_from(shape[rank - 1]).ok();
        let output = name.to_string();
        Ok(Self {
            session,
            path: path.to_path_buf(),
            num_labels,
            packed,
            per_token,
            output,
            device,
            note,
            max_rows,
        })
    }

    /// What this session can do.
    pub fn caps(&self) -> Caps {
        Caps {
            packed: self.packed,
            per_token: self.per_token,
            max_rows: self.max_rows,
            device: self.device,
        }
    }

    /// Readies the session before the clock matters: TensorRT builds its engine on the first
    /// call (`first` makes its inputs); other devices need nothing.
    pub fn warm_up(&mut self, first: impl FnOnce() -> Option<Padded>) -> Result<(), BackendError> {
        if self.device == Device::TensorRt {
            if let Some(call) = first() {
                if self.per_token {
                    self.score_tokens(&call)?;
                } else {
                    self.score(&call)?;
                }
            }
        }
        Ok(())
    }

    /// Path of the ONNX file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one call (from `batch::inputs`, packed for a packed model) and returns
    /// the logits of each of its sequences, row by row.
    pub fn score(&mut self, batch: &Padded) -> Result<Vec<Vec<f32>>, BackendError> {
        let (rows, cols) = batch.ids.dim();
        let run_err = |problem: String| BackendError::Batch {
            rows,
            cols,
            problem,
        };
        if self.per_token {
            return Err(run_err(format!(
                "{}: `{}` is per token; pool it (score_tokens)",
                self.path.display(),
                self.output
            )));
        }
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
        let view = |a| view(a).or_run(rows, cols);
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
        let outputs = self.session.run(inputs).or_run(rows, cols)?;
        let (shape, data) = outputs[self.output.as_str()]
            .try_extract_tensor::<f32>()
            .or_run(rows, cols)?;
        let bad_shape = || {
            run_err(format!(
                "`{}` came back with shape {:?}",
                self.output,
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
                    "{}: `{}` came back with 0 labels (shape {:?}); a reward model needs at least one",
                    self.path.display(),
                    self.output,
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

    /// Runs one plain call on a per-token export: the head at every position of every row,
    /// `[rows, width, labels]` (the caller picks each row's position).
    pub fn score_tokens(&mut self, batch: &Padded) -> Result<TokenLogits, BackendError> {
        let (rows, cols) = batch.ids.dim();
        let run_err = |problem: String| BackendError::Batch {
            rows,
            cols,
            problem,
        };
        if !self.per_token || batch.packing.is_some() {
            return Err(run_err(format!(
                "{}: `{}` is not a per-token output of a plain call",
                self.path.display(),
                self.output
            )));
        }
        fn view(a: &Array2<i64>) -> Result<TensorRef<'_, i64>, ort::Error> {
            TensorRef::from_array_view(a)
        }
        let inputs = ort::inputs![
            "input_ids" => view(&batch.ids).or_run(rows, cols)?,
            "attention_mask" => view(&batch.mask).or_run(rows, cols)?,
        ];
        let outputs = self.session.run(inputs).or_run(rows, cols)?;
        let (shape, data) = outputs[self.output.as_str()]
            .try_extract_tensor::<f32>()
            .or_run(rows, cols)?;
        let labels = shape.get(2).map_or(0, |&l| l.max(0) as usize);
        if shape.len() != 3 || shape[0] as usize != rows || shape[1] as usize != cols || labels == 0
        {
            return Err(run_err(format!(
                "{}: `{}` came back with shape {:?}, not [{rows}, {cols}, num_labels]",
                self.path.display(),
                self.output,
                shape.to_vec()
            )));
        }
        Ok(TokenLogits {
            rows,
            width: cols,
            labels,
            data: data.to_vec(),
        })
    }
}

/// A per-token export's output for one call: `[rows, width, labels]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogits {
    pub rows: usize,
    pub width: usize,
    pub labels: usize,
    pub data: Vec<f32>,
}

impl TokenLogits {
    /// The head's labels at column `col` of row `row`.
    pub fn at(&self, row: usize, col: usize) -> &[f32] {
        let at = (row * self.width + col) * self.labels;
        &self.data[at..at + self.labels]
    }
}
