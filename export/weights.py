"""Exports that hold one copy of the weights.

`torch.onnx.export(export_params=True)` keeps three copies at its peak: PyTorch's parameters,
its constant-folded ones (every Linear weight transposed for MatMul) and the protobuf it
serialises. Here `trace` writes the graph's structure only (`export_params=False`, no folding:
every parameter and persistent buffer becomes a graph input named by its state_dict key), the
graph passes edit that small file, and `attach` then writes each weight from the PyTorch module
into the file one tensor at a time: the weights a graph reads only through a `Transpose` are
written transposed (what torch's folding did), as `model.onnx_data` (external data) when they
pass protobuf's limit or the layout asks for it, else inline.
"""
from __future__ import annotations

import os

import numpy as np
import torch

import external_data


def trace(module, args, onnx_path: str, shape_inference: bool = False, **kw) -> None:
    """torch.onnx.export of the graph's structure: no weights in the file, no constant folding
    (ONNX Runtime folds what is left when it loads the graph), and no ONNX shape inference
    during the export: it evaluates every Transpose of a weight and keeps the results to the
    end, most of a second copy of the weights (measured: +0.61 GB on a 0.70 GB model with it,
    +0.11 GB without; ONNX Runtime infers the shapes when it loads the graph). That switch is
    an argument of torch's `torch.onnx.utils._export` only (torch 2.7.1, pinned); without it
    the public export runs, with its memory cost. `shape_inference` turns it back on for
    graphs whose export needs it (ArmoRM's head: its ConcatFromSequence is typed by it)."""
    export = getattr(torch.onnx.utils, "_export", None)
    with torch.no_grad():
        if export is not None:
            export(module.eval(), args, onnx_path, export_params=False, do_constant_folding=False,
                   onnx_shape_inference=shape_inference, **kw)
        else:
            torch.onnx.export(module.eval(), args, onnx_path, export_params=False, do_constant_folding=False,
                              dynamo=False, **kw)


def release_memory() -> None:
    """Frees what Python and the C allocator still hold after a model or an ONNX Runtime
    session is dropped: garbage cycles, and glibc's free lists (`malloc_trim`), which otherwise
    keep most of a freed session's memory, so the next session would sit on top of it
    (measured: 0.6 GB of a 0.7 GB model's session kept). A no-op without glibc."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def tensors_of(module) -> dict:
    """The module's parameters and persistent buffers by state_dict key (tied weights under
    every name), without copies."""
    return {k: v.detach() for k, v in module.state_dict(keep_vars=True).items()}


def tied_name(module, tensor) -> str | None:
    """The state_dict key under which `module` holds `tensor` itself (same storage, shape and
    dtype), or None."""
    for k, v in module.state_dict(keep_vars=True).items():
        if (v.data_ptr() == tensor.data_ptr() and v.shape == tensor.shape and v.dtype == tensor.dtype):
            return k
    return None


def _consumers(graph):
    """name -> the top-level nodes that read it; a node whose subgraph (a Loop's body) reads an
    outer name counts as reading it."""
    def reads(n):
        yield from n.input
        for sub in _subgraphs(n):
            for inner in sub.node:
                yield from reads(inner)

    uses = {}
    for n in graph.node:
        for i in dict.fromkeys(reads(n)):
            uses.setdefault(i, []).append(n)
    return uses


def _subgraphs(node):
    for a in node.attribute:
        yield from ([a.g] if a.HasField("g") else []) + list(a.graphs)


def _rename(graph, names) -> None:
    """Points every reader of a name in `names` (subgraphs included) at its replacement."""
    for n in graph.node:
        for i, x in enumerate(n.input):
            if x in names:
                n.input[i] = names[x]
        for sub in _subgraphs(n):
            _rename(sub, names)


def _perm(node, rank):
    for a in node.attribute:
        if a.name == "perm":
            return list(a.ints)
    return list(reversed(range(rank)))


def attach(onnx_path: str, weights: dict, mode: str = "auto", user_inputs=("input_ids", "attention_mask"),
           verbose: bool = True) -> bool:
    """Turns every graph input named in `weights` (name -> torch tensor) into an initializer
    written from that tensor, one at a time; a weight read only by `Transpose` nodes is written
    transposed under each one's output name (once per permutation: a Linear called twice, as
    DeBERTa's shared attention keys, has two Transposes of its weight), and those nodes leave
    the graph. `mode` is
    external_data's: auto (external data past AUTO_LIMIT), always, never. Any other input than
    `user_inputs` is an error. Returns True when the data is external."""
    import onnx
    from onnx import TensorProto, helper

    if mode not in external_data.MODES:
        raise SystemExit(f"--external_data takes {', '.join(external_data.MODES)}, not {mode!r}")
    m = onnx.load(onnx_path, load_external_data=False)
    g = m.graph
    unknown = [i.name for i in g.input if i.name not in weights and i.name not in user_inputs]
    if unknown:
        raise SystemExit(f"{onnx_path}: graph inputs {unknown} are neither the model's inputs nor its weights")
    uses = _consumers(g)
    written = []  # (initializer name, source name, perm or None)
    folded, shared = set(), {}  # shared: a duplicate Transpose's output -> the one written
    for inp in g.input:
        if inp.name not in weights:
            continue
        readers = uses.get(inp.name, [])
        transposes = [n for n in readers if n.op_type == "Transpose"]
        first = {}
        for n in transposes:
            perm = _perm(n, weights[inp.name].dim())
            key = tuple(perm)
            if key in first:
                shared[n.output[0]] = first[key]
            else:
                first[key] = n.output[0]
                written.append((n.output[0], inp.name, perm))
            folded.add(id(n))
        if len(transposes) < len(readers):
            written.append((inp.name, inp.name, None))
    if folded:
        keep = [n for n in g.node if id(n) not in folded]
        del g.node[:]
        g.node.extend(keep)
    if shared:
        _rename(g, shared)
    keep_inputs = [i for i in g.input if i.name not in weights]
    del g.input[:]
    g.input.extend(keep_inputs)

    total = sum(weights[src].numel() * weights[src].element_size() for _, src, _ in written)
    if mode == "never" and total > external_data.SINGLE_FILE_LIMIT:
        raise SystemExit(f"{onnx_path}: {total / 1e9:.2f} GB of weights do not fit one ONNX file "
                         "(protobuf's 2 GB limit); use --external_data auto")
    external = mode == "always" or (mode == "auto" and total > external_data.AUTO_LIMIT)
    base_dir = os.path.dirname(os.path.abspath(onnx_path))
    data_path = os.path.join(base_dir, external_data.LOCATION)

    def arrays():
        for name, src, perm in written:
            t = weights[src] if perm is None else weights[src].permute(*perm)
            arr = t.contiguous().numpy()
            yield TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(arr.dtype), dims=arr.shape), arr
            del arr, t

    if external:
        tmp = data_path + ".tmp"
        with open(tmp, "wb") as out:
            for init, arr in arrays():
                if arr.nbytes >= external_data.THRESHOLD:
                    external_data.place(out, init, _bytes(arr))
                else:
                    init.raw_data = arr.tobytes()
                g.initializer.append(init)
        os.replace(tmp, data_path)
        onnx.save(m, onnx_path)
        onnx.checker.check_model(onnx_path)
    else:
        _save_inline(m, [(name, weights[src].dtype, _shape(weights[src], perm)) for name, src, perm in written],
                     arrays(), onnx_path)
        if os.path.exists(data_path):
            os.remove(data_path)  # an earlier export's data: this graph does not reference it
    if verbose:
        where = f"external data {data_path}" if external else "inline"
        note = f" ({len(folded) - len(shared)} written transposed" + (
            f", read by {len(folded)} Transposes" if shared else "") + ")"
        print(f"  weights: {len(written)} tensors, {total / 1e6:.1f} MB, {where}" + (note if folded else ""))
    return external


def _bytes(arr):
    """The array's bytes without a copy (C order)."""
    return arr.reshape(-1).view(np.uint8).data


def _shape(t, perm):
    return list(t.shape) if perm is None else [t.shape[i] for i in perm]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


# protobuf keys (field number << 3 | 2, length-delimited) of onnx.proto's ModelProto.graph,
# GraphProto.initializer and TensorProto.raw_data
_GRAPH, _INITIALIZER, _RAW_DATA = bytes([7 << 3 | 2]), bytes([5 << 3 | 2]), bytes([9 << 3 | 2])


def _save_inline(m, metas, arrays, onnx_path: str) -> None:
    """Writes `m` with the weights as inline initializers, one tensor in memory at a time: the
    ModelProto's other fields, then its graph field with the graph's own fields followed by one
    initializer per tensor, lengths computed from the shapes first (protobuf fields may come in
    any order, so this is the same model `onnx.save` writes, without its copy of every weight).
    metas: (name, torch dtype, shape) per tensor, in the order `arrays` yields them."""
    from onnx import ModelProto, TensorProto, helper

    rest = ModelProto()
    rest.CopyFrom(m)
    rest.ClearField("graph")
    graph = m.graph.SerializeToString()
    heads, sizes = [], []
    for name, dtype, shape in metas:
        np_dtype = torch.empty((), dtype=dtype).numpy().dtype
        head = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(np_dtype), dims=shape).SerializeToString()
        n = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
        heads.append(head)
        sizes.append(len(head) + len(_RAW_DATA) + len(_varint(n)) + n)
    total = len(graph) + sum(len(_INITIALIZER) + len(_varint(k)) + k for k in sizes)
    tmp = onnx_path + ".tmp"
    head_bytes = rest.SerializeToString()
    with open(tmp, "wb") as out:
        out.write(head_bytes)
        out.write(_GRAPH + _varint(total) + graph)
        for (init, arr), head, size in zip(arrays, heads, sizes, strict=True):
            if init.SerializeToString() != head:
                raise AssertionError(f"{init.name}: the tensor does not match its planned header")
            out.write(_INITIALIZER + _varint(size) + head + _RAW_DATA + _varint(arr.nbytes))
            out.write(_bytes(arr))
        if out.tell() != len(head_bytes) + len(_GRAPH) + len(_varint(total)) + total:
            raise AssertionError(f"{onnx_path}: wrote {out.tell()} bytes, planned otherwise")
    os.replace(tmp, onnx_path)
