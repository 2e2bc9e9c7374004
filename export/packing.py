"""The packed reward-model contract from Python (exports with `--attention gqa`).

A packed model takes `input_ids`, `attention_mask`, `position_ids`, `segment_ids` (int64
[batch, seq]) and `pool_index` (int64 [batch, k]) and returns `logits` (float32 [batch, k,
num_labels]). One row holds k texts that share their leading tokens: the shared prefix once
(segment 0), then each text's remaining tokens (segment 1..k). A token attends to earlier tokens
of the prefix and of its own segment only; attention_mask 0 hides a token as a key. position_ids
are positions within each text; pool_index[b, j] is where text j's score is read: its rightmost
token whose id is not pad_token_id (transformers' pooling), or column 0 if there is none.
A plain batch is k=1, segment 0, positions 0..S-1. src/batch.rs builds the same rows in Rust.
"""
from __future__ import annotations

import numpy as np

PACKED_INPUTS = ("input_ids", "attention_mask", "position_ids", "segment_ids", "pool_index")


def is_packed(sess) -> bool:
    return "pool_index" in {i.name for i in sess.get_inputs()}


def last_non_pad(ids, pad_id: int):
    """transformers' sequence-classification pooling: the rightmost token whose id != pad, or
    None (transformers then reads column 0 of the padded row)."""
    idx = np.nonzero(np.asarray(ids) != pad_id)[0]
    return int(idx[-1]) if len(idx) else None


def plain_feed(packed: bool, ids, mask, pad_id: int) -> dict:
    """Feeds for an ordinary padded batch (ids/mask int64 [B, S], any padding side)."""
    ids = np.asarray(ids, dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.asarray(mask, dtype=np.int64)}
    if packed:
        B, S = ids.shape
        feed["position_ids"] = np.broadcast_to(np.arange(S, dtype=np.int64), (B, S)).copy()
        feed["segment_ids"] = np.zeros((B, S), dtype=np.int64)
        feed["pool_index"] = np.array([[last_non_pad(r, pad_id) or 0] for r in ids], dtype=np.int64)
    return feed


def run_plain(sess, ids, mask, pad_id: int) -> np.ndarray:
    """Scores of an ordinary padded batch on a plain or packed model: float32 [B, num_labels]."""
    out = sess.run(["logits"], plain_feed(is_packed(sess), ids, mask, pad_id))[0]
    return out[:, 0, :] if out.ndim == 3 else out


def common_prefix(texts) -> int:
    """Number of leading tokens (id and mask) all texts share."""
    (i0, m0), n = texts[0], min(len(i) for i, _ in texts)
    for i, m in texts[1:]:
        same = (np.asarray(i[:n]) == np.asarray(i0[:n])) & (np.asarray(m[:n]) == np.asarray(m0[:n]))
        if not same.all():
            n = int(np.argmin(same))
    return n


def pack(groups, pad_id: int) -> dict:
    """Right-padded packed feeds for `groups`: a list of rows, each a list of (ids, mask) texts."""
    rows = []
    for texts in groups:
        p = common_prefix(texts)
        ids0, mask0 = texts[0]
        ids, mask, pos, seg, pool = list(ids0[:p]), list(mask0[:p]), list(range(p)), [0] * p, []
        for j, (i, m) in enumerate(texts):
            start = len(ids)
            ids += list(i[p:])
            mask += list(m[p:])
            pos += list(range(p, len(i)))
            seg += [j + 1] * (len(i) - p)
            last = last_non_pad(i, pad_id)
            pool.append(0 if last is None else last if last < p else start + last - p)
        rows.append((ids, mask, pos, seg, pool))
    S = max(len(r[0]) for r in rows)
    K = max(len(r[4]) for r in rows)
    B = len(rows)
    feed = {
        "input_ids": np.full((B, S), pad_id, dtype=np.int64),
        "attention_mask": np.zeros((B, S), dtype=np.int64),
        "position_ids": np.broadcast_to(np.arange(S, dtype=np.int64), (B, S)).copy(),  # pads: column index, as src/batch.rs
        "segment_ids": np.zeros((B, S), dtype=np.int64),
        "pool_index": np.zeros((B, K), dtype=np.int64),
    }
    for b, (ids, mask, pos, seg, pool) in enumerate(rows):
        n = len(ids)
        for name, vals in (("input_ids", ids), ("attention_mask", mask), ("position_ids", pos),
                           ("segment_ids", seg)):
            feed[name][b, :n] = vals
        feed["pool_index"][b, : len(pool)] = pool
    return feed
