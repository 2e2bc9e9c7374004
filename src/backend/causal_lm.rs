//! Causal language models (DPO policy and reference): the log-probability of each next token
//! of a right-padded batch.
//!
//! Three export shapes are accepted:
//! * `token_logprobs [batch, seq-1]` (export/export_lm.py's default): the graph does the
//!   log-softmax and the gather, so no vocabulary-sized tensor reaches this process;
//! * plain `logits [batch, seq, vocab]`: log-softmax is computed here, row by row, on the one
//!   batch of logits ONNX Runtime returns;
//! * Optimum's with-past decoders: `past_key_values.*` inputs are fed empty (length 0),
//!   `position_ids` as `0..seq`, `use_cache_branch` as false, and only the one output needed
//!   is requested, so `present.*` is never computed.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session, SessionInputValue};
use ort::value::{Tensor, TensorElementType, TensorRef, ValueType};

use super::session::{describe, open_session};
use super::{BackendError, Device, OrtExt, Runtime, SessionOptions};

/// Errors specific to causal-LM sessions.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(
        "{path} is not a causal language model export: {problem}. Expected inputs `input_ids` and \
         `attention_mask` (int64 [batch, seq]; optionally `position_ids`, `past_key_values.*`, \
         `use_cache_branch`) and an output `token_logprobs` (float32 [batch, seq-1], from \
         export/export_lm.py) or `logits` (float32 [batch, seq, vocab]); found inputs [{inputs}] \
         and outputs [{outputs}]"
    )]
    NotCausalLm {
        path: PathBuf,
        problem: String,
        inputs: String,
        outputs: String,
    },
}

/// Which output the session reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LmForm {
    /// `token_logprobs [batch, seq-1]`, computed in the graph.
    TokenLogprobs,
    /// `logits [batch, seq, vocab]`.
    Logits,
}

/// Key/value cache sizes from `config.json`, for past inputs whose dims are symbolic.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheHints {
    pub kv_heads: Option<i64>,
    pub head_dim: Option<i64>,
}

/// An empty past input: its dims with the batch as -1 and the past length as 0.
struct PastInput {
    name: String,
    dims: Vec<i64>,
}

/// A causal LM session.
pub struct LmSession {
    session: Session,
    path: PathBuf,
    run_options: RunOptions<HasSelectedOutputs>,
    output: &'static str,
    /// The output read.
    pub form: LmForm,
    past: Vec<PastInput>,
    position_ids: bool,
    use_cache_branch: bool,
    /// The device actually used.
    pub device: Device,
    /// What `--device auto` decided, when it fell back.
    pub note: Option<String>,
}

fn int64_matrix(o: &ort::value::Outlet) -> bool {
    matches!(o.dtype(), ValueType::Tensor { ty: TensorElementType::Int64, shape, .. } if shape.len() == 2)
}

impl LmSession {
    /// Opens `path` and checks that it is a causal LM export this module can feed.
    pub fn open(
        rt: &Runtime,
        path: &Path,
        opts: &SessionOptions,
        hints: CacheHints,
    ) -> Result<Self, LmError> {
        // A TensorRT profile is derived for reward-model shapes only.
        let no_profile = SessionOptions {
            profile: None,
            ..opts.clone()
        };
        let (session, device, note) = open_session(rt, path, &no_profile)?;
        let wrong = |problem: String| LmError::NotCausalLm {
            path: path.to_path_buf(),
            problem,
            inputs: describe(session.inputs()),
            outputs: describe(session.outputs()),
        };

        let (mut past, mut position_ids, mut use_cache_branch) = (Vec::new(), false, false);
        let (mut has_ids, mut has_mask) = (false, false);
        for o in session.inputs() {
            let name = o.name();
            match name {
                "input_ids" | "attention_mask" | "position_ids" => {
                    if !int64_matrix(o) {
                        return Err(wrong(format!("input `{name}` is not an int64 matrix")));
                    }
                    has_ids |= name == "input_ids";
                    has_mask |= name == "attention_mask";
                    position_ids |= name == "position_ids";
                }
                "use_cache_branch" => use_cache_branch = true,
                n if n.starts_with("past_key_values") || n.starts_with("past_key") => {
                    let dims = match o.dtype() {
                        ValueType::Tensor {
                            ty: TensorElementType::Float32,
                            shape,
                            ..
                        } if shape.len() == 4 => {
                            // Optimum's layout: [batch, kv_heads, past_length, head_dim].
                            let mut d = shape.to_vec();
                            d[0] = -1;
                            d[2] = 0;
                            if d[1] < 0 {
                                d[1] = hints.kv_heads.ok_or_else(|| {
                                    wrong(format!("`{n}` has a symbolic head count and config.json gives no num_key_value_heads"))
                                })?;
                            }
                            if d[3] < 0 {
                                d[3] = hints.head_dim.ok_or_else(|| {
                                    wrong(format!("`{n}` has a symbolic head size and config.json gives no head_dim"))
                                })?;
                            }
                            d
                        }
                        _ => {
                            return Err(wrong(format!(
                                "past input `{n}` is not a float32 tensor of rank 4 (the only cache layout fed here)"
                            )))
                        }
                    };
                    past.push(PastInput {
                        name: n.to_string(),
                        dims,
                    });
                }
                other => {
                    return Err(wrong(format!(
                        "it needs an input `{other}` this evaluator does not feed"
                    )))
                }
            }
        }
        if !has_ids || !has_mask {
            return Err(wrong(
                "input `input_ids` or `attention_mask` is missing".into(),
            ));
        }
        let find = |n: &str| session.outputs().iter().find(|o| o.name() == n);
        let (form, output) = match (find("token_logprobs"), find("logits")) {
            (Some(o), _) => match o.dtype() {
                ValueType::Tensor {
                    ty: TensorElementType::Float32,
                    shape,
                    ..
                } if shape.len() == 2 => (LmForm::TokenLogprobs, "token_logprobs"),
                _ => return Err(wrong("output `token_logprobs` is not float32 [batch, seq-1]".into())),
            },
            (None, Some(o)) => match o.dtype() {
                ValueType::Tensor {
                    ty: TensorElementType::Float32,
                    shape,
                    ..
                } if shape.len() == 3 => (LmForm::Logits, "logits"),
                ValueType::Tensor { shape, .. } if shape.len() == 2 => {
                    return Err(wrong(
                        "output `logits` is [batch, num_labels]: this is a sequence-classifier (reward model) \
                         export; score it without --ref_model and --ref_free_type"
                            .into(),
                    ))
                }
                _ => return Err(wrong("output `logits` is not float32 [batch, seq, vocab]".into())),
            },
            (None, None) => return Err(wrong("it has neither `token_logprobs` nor `logits`".into())),
        };
        let run_options = RunOptions::new()
            .or_load(path)?
            .with_outputs(OutputSelector::no_default().with(output));
        Ok(Self {
            session,
            path: path.to_path_buf(),
            run_options,
            output,
            form,
            past,
            position_ids,
            use_cache_branch,
            device,
            note,
        })
    }

    /// Path of the ONNX file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `lp[r, t]` = log p(ids[r, t+1] | ids[r, ..=t]) for a right-padded batch, `[rows, cols-1]`.
    /// Positions whose next token is padding (mask 0) are 0 with a `logits` export.
    pub fn token_logprobs(
        &mut self,
        ids: &Array2<i64>,
        mask: &Array2<i64>,
    ) -> Result<Array2<f32>, BackendError> {
        let (rows, cols) = ids.dim();
        let run_err = |problem: String| BackendError::Batch {
            rows,
            cols,
            problem,
        };
        if cols < 2 {
            return Err(run_err("a causal LM batch needs at least 2 tokens".into()));
        }
        let mut inputs: Vec<(Cow<'static, str>, SessionInputValue<'_>)> = vec![
            (
                "input_ids".into(),
                TensorRef::from_array_view(ids).or_run(rows, cols)?.into(),
            ),
            (
                "attention_mask".into(),
                TensorRef::from_array_view(mask).or_run(rows, cols)?.into(),
            ),
        ];
        if self.position_ids {
            // What transformers uses when no position_ids are passed: 0..seq for every row.
            let pos: Vec<i64> = (0..rows).flat_map(|_| 0..cols as i64).collect();
            let t = Tensor::from_array(([rows, cols], pos)).or_run(rows, cols)?;
            inputs.push(("position_ids".into(), t.into()));
        }
        if self.use_cache_branch {
            let t = Tensor::from_array(([1usize], vec![false])).or_run(rows, cols)?;
            inputs.push(("use_cache_branch".into(), t.into()));
        }
        for p in &self.past {
            let shape: Vec<usize> = p
                .dims
                .iter()
                .map(|&d| if d < 0 { rows } else { d as usize })
                .collect();
            let t = Tensor::<f32>::from_array((shape, Vec::<f32>::new()))
                .map_err(|e| run_err(format!("empty `{}`: {e}", p.name)))?;
            inputs.push((p.name.clone().into(), t.into()));
        }
        let outputs = self
            .session
            .run_with_options(inputs, &self.run_options)
            .or_run(rows, cols)?;
        let (shape, data) = outputs[self.output]
            .try_extract_tensor::<f32>()
            .or_run(rows, cols)?;
        match self.form {
            LmForm::TokenLogprobs => {
                if shape.len() != 2 || shape[0] as usize != rows || shape[1] as usize != cols - 1 {
                    return Err(run_err(format!(
                        "`token_logprobs` came back with shape {:?}, expected [{rows}, {}]",
                        shape.to_vec(),
                        cols - 1
                    )));
                }
                Array2::from_shape_vec((rows, cols - 1), data.to_vec())
                    .map_err(|e| run_err(e.to_string()))
            }
            LmForm::Logits => {
                if shape.len() != 3 || shape[0] as usize != rows || shape[1] as usize != cols {
                    return Err(run_err(format!(
                        "`logits` came back with shape {:?}, expected [{rows}, {cols}, vocab]",
                        shape.to_vec()
                    )));
                }
                let vocab = shape[2] as usize;
                next_token_logprobs(data, ids, mask, vocab).map_err(run_err)
            }
        }
    }
}

/// Log-softmax of each position's logits, read at the next token; rows split over the cores.
fn next_token_logprobs(
    logits: &[f32],
    ids: &Array2<i64>,
    mask: &Array2<i64>,
    vocab: usize,
) -> Result<Array2<f32>, String> {
    let (rows, cols) = ids.dim();
    let mut out = Array2::<f32>::zeros((rows, cols - 1));
    let workers = crate::available_cores().min(rows).max(1);
    let per = rows.div_ceil(workers);
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = out
            .axis_chunks_iter_mut(ndarray::Axis(0), per)
            .enumerate()
            .map(|(k, mut chunk)| {
                s.spawn(move || {
                    for (i, mut row) in chunk.outer_iter_mut().enumerate() {
                        let r = k * per + i;
                        for t in 0..cols - 1 {
                            if mask[[r, t + 1]] == 0 {
                                continue;
                            }
                            let target = ids[[r, t + 1]];
                            let x = &logits[(r * cols + t) * vocab..][..vocab];
                            let Some(&xt) = usize::try_from(target).ok().and_then(|j| x.get(j))
                            else {
                                return Err(format!(
                                    "token id {target} is outside the model's vocabulary of {vocab}"
                                ));
                            };
                            let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                            let sum: f64 = x.iter().map(|&v| f64::from((v - m).exp())).sum();
                            row[t] = (f64::from(xt - m) - sum.ln()) as f32;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("log-softmax worker panicked".into()))
            })
            .collect()
    });
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_at_next_token() {
        // one row, 3 positions, vocab 2
        let logits = [0.0f32, 0.0, 1.0, 3.0, 5.0, 5.0];
        let ids = Array2::from_shape_vec((1, 3), vec![0i64, 1, 0]).unwrap();
        let mask = Array2::from_shape_vec((1, 3), vec![1i64, 1, 1]).unwrap();
        let lp = next_token_logprobs(&logits, &ids, &mask, 2).unwrap();
        assert!((lp[[0, 0]] - 0.5f32.ln()).abs() < 1e-6);
        let want = 1.0 - (1.0f64.exp() + 3.0f64.exp()).ln();
        assert!((f64::from(lp[[0, 1]]) - want).abs() < 1e-6);
        let bad = Array2::from_shape_vec((1, 3), vec![0i64, 7, 0]).unwrap();
        assert!(next_token_logprobs(&logits, &bad, &mask, 2).is_err());
        let masked = Array2::from_shape_vec((1, 3), vec![1i64, 1, 0]).unwrap();
        assert_eq!(
            next_token_logprobs(&logits, &ids, &masked, 2).unwrap()[[0, 1]],
            0.0
        );
    }
}
