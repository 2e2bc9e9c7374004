//! The external-data files an ONNX graph references (`model.onnx_data`, or one file per
//! tensor) and the element types its weights are stored in: a streaming walk over the
//! protobuf that reads only the fields on the way to `TensorProto.external_data` and seeks
//! past the rest (weights included), so a large single-file graph costs little more than its
//! headers.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Errors reading a graph's external-data references.
#[derive(Debug, thiserror::Error)]
pub enum ExternalDataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid ONNX model: {problem}")]
    Malformed { path: PathBuf, problem: String },
}

/// Message types on the way from `ModelProto` to a tensor's `external_data`.
#[derive(Clone, Copy)]
enum Msg {
    Model,
    Function,
    Graph,
    Node,
    Attribute,
    Sparse,
    Tensor,
}

/// The message a length-delimited field of `kind` holds, when it can lead to a tensor
/// (field numbers from onnx.proto3).
fn child(kind: Msg, field: u64) -> Option<Msg> {
    use Msg::*;
    match (kind, field) {
        (Model, 7) => Some(Graph),
        (Model, 25) => Some(Function),
        (Function, 7) | (Graph, 1) => Some(Node),
        (Graph, 5) => Some(Tensor),
        (Graph, 15) => Some(Sparse),
        (Node, 5) => Some(Attribute),
        (Attribute, 5) | (Attribute, 10) => Some(Tensor),
        (Attribute, 6) | (Attribute, 11) => Some(Graph),
        (Attribute, 22) | (Attribute, 23) => Some(Sparse),
        (Sparse, 1) | (Sparse, 2) => Some(Tensor),
        _ => None,
    }
}

/// Longest `StringStringEntryProto` read into memory (a key and a file name).
const MAX_ENTRY: u64 = 1 << 20;
/// Deepest nesting followed (subgraphs of subgraphs); deeper input is refused.
const MAX_DEPTH: usize = 64;

struct Walker {
    r: BufReader<File>,
    pos: u64,
    len: u64,
    /// Referenced locations, in first-seen order, without repeats.
    found: Vec<String>,
    /// Bytes of tensor data (raw or external) per `TensorProto.data_type`.
    bytes: BTreeMap<u64, u64>,
}

impl Walker {
    fn byte(&mut self) -> Result<u8, String> {
        let mut b = [0u8; 1];
        self.r.read_exact(&mut b).map_err(|e| e.to_string())?;
        self.pos += 1;
        Ok(b[0])
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        if n > self.len - self.pos {
            return Err("field runs past the end of the file".into());
        }
        self.r.seek_relative(n as i64).map_err(|e| e.to_string())?;
        self.pos += n;
        Ok(())
    }

    /// Walks one message of `kind` ending at byte `end`.
    fn message(&mut self, kind: Msg, end: u64, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        let (mut location, mut external) = (None, false);
        let (mut data_type, mut size) = (0u64, 0u64);
        while self.pos < end {
            let tag = self.varint()?;
            let (field, wire) = (tag >> 3, tag & 7);
            match wire {
                0 => {
                    let v = self.varint()?;
                    // TensorProto.data_location: 1 is EXTERNAL; data_type
                    if matches!(kind, Msg::Tensor) && field == 14 {
                        external = v == 1;
                    } else if matches!(kind, Msg::Tensor) && field == 2 {
                        data_type = v;
                    }
                }
                1 => self.skip(8)?,
                5 => self.skip(4)?,
                2 => {
                    let n = self.varint()?;
                    if n > end.saturating_sub(self.pos) {
                        return Err("field runs past its message".into());
                    }
                    if matches!(kind, Msg::Tensor) && field == 13 {
                        match self.entry(n)? {
                            Some((k, v)) if k == "location" => location = Some(v),
                            Some((k, v)) if k == "length" => size = v.parse().unwrap_or(0),
                            _ => {}
                        }
                    } else if matches!(kind, Msg::Tensor) && field == 9 {
                        size = n; // raw_data
                        self.skip(n)?;
                    } else if let Some(c) = child(kind, field) {
                        self.message(c, self.pos + n, depth + 1)?;
                    } else {
                        self.skip(n)?;
                    }
                }
                w => return Err(format!("unsupported wire type {w}")),
            }
        }
        if self.pos != end {
            return Err("field runs past its message".into());
        }
        if matches!(kind, Msg::Tensor) && size > 0 {
            *self.bytes.entry(data_type).or_default() += size;
        }
        if let (true, Some(l)) = (external, location) {
            if !self.found.contains(&l) {
                self.found.push(l);
            }
        }
        Ok(())
    }

    /// A `StringStringEntryProto` of `n` bytes: its key and value.
    fn entry(&mut self, n: u64) -> Result<Option<(String, String)>, String> {
        if n > MAX_ENTRY {
            return Err("external_data entry too long".into());
        }
        let mut buf = vec![0u8; n as usize];
        self.r.read_exact(&mut buf).map_err(|e| e.to_string())?;
        self.pos += n;
        let (mut key, mut value) = (None, None);
        let mut i = 0usize;
        while i < buf.len() {
            let (tag, used) = slice_varint(&buf[i..])?;
            i += used;
            if tag & 7 != 2 {
                return Err("external_data entry of an unexpected shape".into());
            }
            let (len, used) = slice_varint(&buf[i..])?;
            i += used;
            let s = buf
                .get(i..i.saturating_add(len as usize))
                .ok_or("external_data entry cut short")?;
            i += s.len();
            let s = String::from_utf8_lossy(s).into_owned();
            match tag >> 3 {
                1 => key = Some(s),
                2 => value = Some(s),
                _ => {}
            }
        }
        Ok(key.zip(value))
    }
}

fn slice_varint(b: &[u8]) -> Result<(u64, usize), String> {
    let mut v = 0u64;
    for (i, byte) in b.iter().take(10).enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err("bad varint in external_data entry".into())
}

/// What the walk finds in a graph.
#[derive(Debug, Default)]
pub struct Tensors {
    /// The `location`s of external tensors (relative to the graph's folder), first seen first.
    pub locations: Vec<String>,
    /// Bytes of tensor data per ONNX element type (`TensorProto.data_type`: 1 float32, 10
    /// float16, 16 bfloat16, ...), raw or external.
    pub bytes_by_type: BTreeMap<u64, u64>,
}

impl Tensors {
    /// "float16" or "bfloat16" when most of the weights' bytes are of that type.
    pub fn half_precision(&self) -> Option<&'static str> {
        let total: u64 = self.bytes_by_type.values().sum();
        let (&t, &b) = self.bytes_by_type.iter().max_by_key(|(_, b)| **b)?;
        let name = match t {
            10 => "float16",
            16 => "bfloat16",
            _ => return None,
        };
        (b * 2 > total).then_some(name)
    }
}

/// The `location`s of `onnx`'s external tensors as written in the graph (relative to its
/// folder), in first-seen order; empty for a single-file model.
pub fn locations(onnx: &Path) -> Result<Vec<String>, ExternalDataError> {
    Ok(tensors(onnx)?.locations)
}

/// The graph's external-data locations and its tensors' bytes per element type.
pub fn tensors(onnx: &Path) -> Result<Tensors, ExternalDataError> {
    let io = |source| ExternalDataError::Io {
        path: onnx.to_path_buf(),
        source,
    };
    let f = File::open(onnx).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut w = Walker {
        r: BufReader::with_capacity(64 << 10, f),
        pos: 0,
        len,
        found: Vec::new(),
        bytes: BTreeMap::new(),
    };
    w.message(Msg::Model, len, 0)
        .map_err(|problem| ExternalDataError::Malformed {
            path: onnx.to_path_buf(),
            problem,
        })?;
    Ok(Tensors {
        locations: w.found,
        bytes_by_type: w.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(n: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(n << 3 | 2, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    fn tensor(location: &str, external: bool) -> Vec<u8> {
        let mut t = Vec::new();
        field(8, b"w", &mut t); // name
        field(9, &[0u8; 300], &mut t); // raw_data, skipped
        let mut e = Vec::new();
        field(1, b"location", &mut e);
        field(2, location.as_bytes(), &mut e);
        field(13, &e, &mut t);
        let mut off = Vec::new();
        field(1, b"offset", &mut off);
        field(2, b"0", &mut off);
        field(13, &off, &mut t);
        varint(14 << 3, &mut t);
        varint(u64::from(external), &mut t);
        t
    }

    fn walk(bytes: &[u8]) -> Result<Vec<String>, ExternalDataError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.onnx");
        std::fs::write(&p, bytes).unwrap();
        locations(&p)
    }

    #[test]
    fn finds_initializer_and_constant_locations_once_each() {
        let mut graph = Vec::new();
        field(5, &tensor("model.onnx_data", true), &mut graph);
        field(5, &tensor("model.onnx_data", true), &mut graph);
        field(5, &tensor("inline", false), &mut graph);
        // a Constant node's value attribute
        let mut attr = Vec::new();
        field(5, &tensor("const.bin", true), &mut attr);
        let mut node = Vec::new();
        field(5, &attr, &mut node);
        field(1, &node, &mut graph);
        let mut model = Vec::new();
        varint(1 << 3, &mut model); // ir_version
        varint(8, &mut model);
        field(7, &graph, &mut model);
        assert_eq!(walk(&model).unwrap(), ["model.onnx_data", "const.bin"]);
    }

    #[test]
    fn weights_are_tallied_by_element_type() {
        let typed = |data_type: u64, raw: usize| {
            let mut t = Vec::new();
            varint(2 << 3, &mut t);
            varint(data_type, &mut t);
            field(9, &vec![0u8; raw], &mut t);
            t
        };
        let model = |ts: &[Vec<u8>]| {
            let mut graph = Vec::new();
            for t in ts {
                field(5, t, &mut graph);
            }
            let mut model = Vec::new();
            field(7, &graph, &mut model);
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("model.onnx");
            std::fs::write(&p, model).unwrap();
            tensors(&p).unwrap()
        };
        let half = model(&[typed(10, 300), typed(1, 100), typed(7, 8)]);
        assert_eq!(half.bytes_by_type.get(&10), Some(&300));
        assert_eq!(half.half_precision(), Some("float16"));
        assert_eq!(
            model(&[typed(16, 500), typed(1, 100)]).half_precision(),
            Some("bfloat16")
        );
        // float32 weights with a few float16 constants: not a half-precision model
        assert_eq!(
            model(&[typed(10, 300), typed(1, 400)]).half_precision(),
            None
        );
    }

    #[test]
    fn a_single_file_graph_references_nothing_and_garbage_is_an_error() {
        let mut graph = Vec::new();
        field(5, &tensor("x", false), &mut graph);
        let mut model = Vec::new();
        field(7, &graph, &mut model);
        assert!(walk(&model).unwrap().is_empty());
        let e = walk(b"\x3a\xff\xff\x01not a model").unwrap_err();
        assert!(e.to_string().contains("not a valid ONNX model"), "{e}");
    }
}
