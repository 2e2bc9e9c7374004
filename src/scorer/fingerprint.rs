//! Resume-store fingerprints: everything that changes a scorer's outputs for the planned
//! calls (model files, tokenizer files, settings, every sequence, the plan).

use crate::batch;
use crate::config::{DpoMode, RunConfig};
use crate::model::ModelFiles;
use crate::run::store::{CacheError, Fingerprint};
use crate::tokenize::Encoder;

use super::rm::Prepared;

/// A model's graph, external data and config, each labelled with `prefix`.
fn model_files(fp: &mut Fingerprint, prefix: &str, m: &ModelFiles) -> Result<(), CacheError> {
    fp.file(&format!("{prefix}model.onnx"), &m.onnx)?;
    let beside = m.onnx.with_extension("onnx_data");
    fp.file(&format!("{prefix}model.onnx_data"), &beside)?;
    fp.file(&format!("{prefix}config.json"), &m.dir.join("config.json"))?;
    // Other referenced data files (one per tensor, `model.onnx.data`, ...); none for a
    // single-file model or one whose data is `model.onnx_data`, so those keep their
    // fingerprints.
    for f in m.external.iter().filter(|f| **f != beside) {
        let name = f.strip_prefix(&m.dir).unwrap_or(f).to_string_lossy();
        fp.file(&format!("{prefix}external {name}"), f)?;
    }
    Ok(())
}

/// The tokenizer folder's files that change token ids or the template.
fn tokenizer_files(fp: &mut Fingerprint, dir: &std::path::Path) -> Result<(), CacheError> {
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "chat_template.jinja",
    ] {
        fp.file(f, &dir.join(f))?;
    }
    Ok(())
}

/// Fingerprint of everything that changes the scores of the planned calls.
pub(super) fn classifier(
    prepared: &Prepared,
    plans: &[batch::Plan],
    cfg: &RunConfig,
    ort_version: &str,
) -> Result<String, CacheError> {
    let mut fp = Fingerprint::default();
    model_files(&mut fp, "", &prepared.model)?;
    tokenizer_files(&mut fp, &prepared.tokenizer_dir)?;
    fp.field(
        "settings",
        format!(
            "{}|{ort_version}|{:?}|{}|{:?}|{}",
            env!("CARGO_PKG_VERSION"),
            cfg.batch.batching,
            prepared.pad_id,
            cfg.device.device,
            cfg.device.fp16
        )
        .as_bytes(),
    );
    head(&mut fp, cfg);
    for s in &prepared.seqs {
        let bytes: Vec<u8> = s
            .ids
            .iter()
            .chain(&s.mask)
            .flat_map(|x| x.to_le_bytes())
            .collect();
        fp.field("seq", &bytes);
    }
    for p in plans {
        // one field per row, so packing the same sequences differently changes the fingerprint
        let side = if p.side == batch::Side::Left {
            "left"
        } else {
            "right"
        };
        for row in &p.rows {
            let bytes: Vec<u8> = row.iter().flat_map(|x| (*x as u64).to_le_bytes()).collect();
            fp.field(side, &bytes);
        }
        fp.field("call", &[]);
    }
    Ok(fp.hex())
}

/// Fingerprint of a content-keyed score store: everything that changes a text's score
/// besides its token ids (which key each score): model and tokenizer files, the template
/// and truncation, pad id, device, precision, ONNX Runtime and this evaluator's version. Not
/// the plan, the batch size or which texts are present.
pub(super) fn content(
    prepared: &Prepared,
    cfg: &RunConfig,
    ort_version: &str,
    device: &str,
) -> Result<String, CacheError> {
    let mut fp = Fingerprint::default();
    model_files(&mut fp, "", &prepared.model)?;
    tokenizer_files(&mut fp, &prepared.tokenizer_dir)?;
    fp.field(
        "settings",
        format!(
            "store|{}|{ort_version}|{}|{:?}|{}|{device}|{:?}|{}",
            env!("CARGO_PKG_VERSION"),
            prepared.template_label,
            prepared.truncation.map(|t| (t.max_length, t.side.label())),
            prepared.pad_id,
            cfg.device.fp16,
            cfg.batch.share_prefixes,
        )
        .as_bytes(),
    );
    head(&mut fp, cfg);
    Ok(fp.hex())
}

/// The pooling rule and score output, when not the defaults (a default head adds nothing, so
/// the fingerprints of earlier runs stay as they were). Columns and transforms are applied
/// after the store and change nothing in it.
fn head(fp: &mut Fingerprint, cfg: &RunConfig) {
    if let Some(key) = super::transform::store_key(&cfg.head) {
        fp.field("head", key.as_bytes());
    }
}

/// A DPO fingerprint's files: the policy's, the reference's and the tokenizer.
fn dpo_files(
    policy: &ModelFiles,
    reference: Option<&ModelFiles>,
    encoder: &Encoder,
) -> Result<Fingerprint, CacheError> {
    let mut fp = Fingerprint::default();
    model_files(&mut fp, "policy ", policy)?;
    if let Some(r) = reference {
        model_files(&mut fp, "reference ", r)?;
    }
    fp.file("tokenizer.json", &encoder.path)?;
    Ok(fp)
}

/// Fingerprint of everything that changes a DPO run's per-sequence sums.
#[allow(clippy::too_many_arguments)]
pub(super) fn dpo(
    policy: &ModelFiles,
    reference: Option<&ModelFiles>,
    encoder: &Encoder,
    mode: &DpoMode,
    seqs: &[&Vec<i64>],
    prompt_lens: &[Vec<usize>],
    plans: &[batch::Plan],
    cfg: &RunConfig,
    ort_version: &str,
) -> Result<String, CacheError> {
    let mut fp = dpo_files(policy, reference, encoder)?;
    fp.field(
        "settings",
        format!(
            "dpo|{}|{ort_version}|{mode:?}|{:?}|{:?}",
            env!("CARGO_PKG_VERSION"),
            cfg.device.device,
            cfg.device.fp16
        )
        .as_bytes(),
    );
    for s in seqs {
        let bytes: Vec<u8> = s.iter().flat_map(|x| x.to_le_bytes()).collect();
        fp.field("seq", &bytes);
    }
    for p in prompt_lens {
        let bytes: Vec<u8> = p.iter().flat_map(|x| (*x as u64).to_le_bytes()).collect();
        fp.field("prompt", &bytes);
    }
    for p in plans {
        let bytes: Vec<u8> = p.members().flat_map(|x| (x as u64).to_le_bytes()).collect();
        fp.field("call", &bytes);
    }
    Ok(fp.hex())
}

/// Fingerprint of a DPO score store: what changes a sequence's log-prob reductions besides
/// its token ids and prompt length (which key them): the policy's and reference's files,
/// the tokenizer, device, precision, ONNX Runtime and this evaluator's version. Not the
/// reduction (`sum`, `avg`, `norm` read the same stored values), the plan or the rows.
pub(super) fn dpo_content(
    policy: &ModelFiles,
    reference: Option<&ModelFiles>,
    encoder: &Encoder,
    cfg: &RunConfig,
    ort_version: &str,
    device: &str,
) -> Result<String, CacheError> {
    let mut fp = dpo_files(policy, reference, encoder)?;
    fp.field(
        "settings",
        format!(
            "dpo store|{}|{ort_version}|{device}|{:?}|{}",
            env!("CARGO_PKG_VERSION"),
            cfg.device.fp16,
            reference.is_some(),
        )
        .as_bytes(),
    );
    Ok(fp.hex())
}

/// Fingerprint of a pairwise model's score store: model files (and `pairwise.json`),
/// tokenizer files, the kind and the settings that change its outputs (not the plan: a
/// sequence's outputs do not depend on its batch).
pub(super) fn pairwise(
    model: &ModelFiles,
    tokenizer_dir: &std::path::Path,
    kind: &str,
    settings: &str,
    ort_version: &str,
    device: &str,
    cfg: &RunConfig,
) -> Result<String, CacheError> {
    let mut fp = Fingerprint::default();
    model_files(&mut fp, "", model)?;
    fp.file("pairwise.json", &model.dir.join("pairwise.json"))?;
    tokenizer_files(&mut fp, tokenizer_dir)?;
    fp.field(
        "settings",
        format!(
            "pairwise|{}|{ort_version}|{kind}|{settings}|{device}|{:?}",
            env!("CARGO_PKG_VERSION"),
            cfg.device.fp16
        )
        .as_bytes(),
    );
    Ok(fp.hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Device;

    fn fingerprint(dir: &std::path::Path) -> String {
        let m = ModelFiles::locate(dir, Device::Cpu).unwrap();
        let mut fp = Fingerprint::default();
        model_files(&mut fp, "", &m).unwrap();
        fp.hex()
    }

    /// The extdata fixture with its data file renamed to `tensors.weights` (same length as
    /// `model.onnx_data`, so the graph's protobuf lengths stay right).
    fn renamed_copy(to: &std::path::Path) {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/models/tiny-llama-rm-extdata");
        let graph = std::fs::read(src.join("model.onnx")).unwrap();
        let (from, into) = (b"model.onnx_data", b"tensors.weights");
        let mut out = Vec::with_capacity(graph.len());
        let mut i = 0;
        while i < graph.len() {
            if graph[i..].starts_with(from) {
                out.extend_from_slice(into);
                i += from.len();
            } else {
                out.push(graph[i]);
                i += 1;
            }
        }
        std::fs::write(to.join("model.onnx"), out).unwrap();
        std::fs::copy(src.join("model.onnx_data"), to.join("tensors.weights")).unwrap();
    }

    #[test]
    fn every_referenced_data_file_is_fingerprinted() {
        let dir = tempfile::tempdir().unwrap();
        renamed_copy(dir.path());
        let m = ModelFiles::locate(dir.path(), Device::Cpu).unwrap();
        assert_eq!(m.external, [dir.path().join("tensors.weights")]);
        let before = fingerprint(dir.path());
        let data = dir.path().join("tensors.weights");
        let mut bytes = std::fs::read(&data).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(&data, bytes).unwrap();
        assert_ne!(
            before,
            fingerprint(dir.path()),
            "changed weights, new fingerprint"
        );
        std::fs::remove_file(&data).unwrap();
        let e = ModelFiles::locate(dir.path(), Device::Cpu).unwrap_err();
        assert!(
            matches!(e, crate::model::ModelError::MissingExternalData { .. })
                && e.to_string().contains("tensors.weights"),
            "{e}"
        );
    }

    #[test]
    fn a_single_file_model_references_no_data() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/models/tiny-llama-rm");
        assert!(ModelFiles::locate(&dir, Device::Cpu)
            .unwrap()
            .external
            .is_empty());
    }
}
