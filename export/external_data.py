"""External data for exports past protobuf's 2 GB limit: `model.onnx` (the graph) plus
`model.onnx_data` (every tensor of 1 KiB or more, back to back, 64-byte aligned), as ONNX
Runtime and the evaluator read them.

The exporters write the layout directly (export/weights.py's `attach`, one tensor at a time);
graph passes over a written file load it with `onnx.load(path, load_external_data=False)`
(weights in data files stay on disk) and write it back with `save(m, path)`, which copies
tensors one at a time too: about one tensor of memory, not a copy of the weights.
"""

import os

LOCATION = "model.onnx_data"
# Past this the weights do not fit one file (protobuf's limit is 2 GiB; the graph's own
# structure needs some of it).
SINGLE_FILE_LIMIT = int(1.8e9)
# Past this --external_data auto writes graph + model.onnx_data: ONNX Runtime copies inline
# weights while it parses a single file, not an external data file (a 1.27 GB Llama: evaluator
# peak 2.35 GB from one file, 1.67 GB with external data).
AUTO_LIMIT = 512 * 2**20
THRESHOLD = 1024
ALIGN = 64
MODES = ("auto", "always", "never")


def tensors(m):
    """Every TensorProto of the model that can hold weights: initializers, sparse
    initializers' parts and node attributes (Constant values), subgraphs included."""
    def graph(g):
        yield from g.initializer
        for s in g.sparse_initializer:
            yield s.values
            yield s.indices
        for n in g.node:
            yield from node(n)

    def node(n):
        for a in n.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from graph(a.g)
            for sub in a.graphs:
                yield from graph(sub)

    yield from graph(m.graph)
    for f in m.functions:
        for n in f.node:
            yield from node(n)


def _external(t):
    from onnx import TensorProto

    return t.data_location == TensorProto.EXTERNAL


def _info(t):
    return {e.key: e.value for e in t.external_data}


def locations(m):
    """The data files the graph references, in first-seen order."""
    seen = []
    for t in tensors(m):
        if _external(t):
            loc = _info(t).get("location")
            if loc and loc not in seen:
                seen.append(loc)
    return seen


def weight_bytes(m, base_dir):
    """Bytes of the weights: inline tensors plus the external files the graph references."""
    inline = sum(len(t.raw_data) for t in tensors(m) if not _external(t))
    return inline + sum(os.path.getsize(os.path.join(base_dir, f)) for f in locations(m))


def _read(t, base_dir):
    info = _info(t)
    with open(os.path.join(base_dir, info["location"]), "rb") as fh:
        fh.seek(int(info.get("offset", 0)))
        n = info.get("length")
        return fh.read(int(n)) if n is not None else fh.read()


def place(out, t, data) -> None:
    """Appends `data` (bytes or a buffer) to the open data file `out`, ALIGN-aligned, and makes
    TensorProto `t` reference it there (its inline data cleared)."""
    from onnx import TensorProto

    out.write(b"\0" * (-out.tell() % ALIGN))
    offset = out.tell()
    out.write(data)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    for k, v in (("location", LOCATION), ("offset", str(offset)), ("length", str(out.tell() - offset))):
        e = t.external_data.add()
        e.key, e.value = k, v


def save(m, onnx_path, external=None):
    """Writes `m` (loaded with load_external_data=False) to `onnx_path`. external: True for
    graph + model.onnx_data, False for one file, None to keep what the graph has (external
    when it references data files or its weights pass AUTO_LIMIT). Data files the written
    graph no longer references are removed."""
    import onnx
    from onnx import TensorProto

    base_dir = os.path.dirname(os.path.abspath(onnx_path))
    before = locations(m)
    if external is None:
        external = bool(before) or weight_bytes(m, base_dir) > AUTO_LIMIT
    if not external:
        for t in tensors(m):
            if _external(t):
                t.raw_data = _read(t, base_dir)
                t.data_location = TensorProto.DEFAULT
                del t.external_data[:]
        onnx.save(m, onnx_path)
    else:
        tmp = os.path.join(base_dir, LOCATION + ".tmp")
        with open(tmp, "wb") as out:
            for t in tensors(m):
                if _external(t):
                    data = _read(t, base_dir)
                elif t.HasField("raw_data") and len(t.raw_data) >= THRESHOLD:
                    data = t.raw_data
                else:
                    continue
                place(out, t, data)
                del data
        os.replace(tmp, os.path.join(base_dir, LOCATION))
        onnx.save(m, onnx_path)
    after = set(locations(m))
    for f in before:
        if f not in after and os.path.exists(os.path.join(base_dir, f)):
            os.remove(os.path.join(base_dir, f))
