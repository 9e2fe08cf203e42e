"""Writes the weights that the no_std crate compiles in: gen_stateful.safetensors for the
gen-stateful model of `bench/models/gen_stateful.seq` (LSTM(64) on 8 features, Dense(8)) and
gru_softmax.safetensors for `gru_softmax.seq`; values from a fixed linear congruential sequence, uniform in ±0.25, written by hand (an
8-byte header length, a JSON header, little-endian f32 data), independently of seqmodel.

    python3 tests/no_std/models/make_weights.py
"""
import json
import struct
from pathlib import Path

HERE = Path(__file__).parent
STATE = [12345]


def uniform(n, scale=0.25):
    out = []
    for _ in range(n):
        STATE[0] = (STATE[0] * 1103515245 + 12345) % 2**31
        out.append((STATE[0] / 2**31 * 2.0 - 1.0) * scale)
    return out


TENSORS = [
    ("GenStateful/lstm/kernel", [8, 256]),
    ("GenStateful/lstm/recurrent_kernel", [64, 256]),
    ("GenStateful/lstm/bias", [256]),
    ("GenStateful/dense/kernel", [64, 8]),
    ("GenStateful/dense/bias", [8]),
]



def write(name, tensors, scale):
    header, data = {}, b""
    for key, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        raw = struct.pack(f"<{n}f", *uniform(n, scale))
        header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    (HERE / name).write_bytes(struct.pack("<Q", len(text)) + text + data)


write("gen_stateful.safetensors", TENSORS, 0.25)

# gru_softmax.seq: GRU(4) (reset_after: bias [2, 12]) on 3 features, Dense(2, softmax).
GRU_TENSORS = [
    ("GruSoftmax/gru/kernel", [3, 12]),
    ("GruSoftmax/gru/recurrent_kernel", [4, 12]),
    ("GruSoftmax/gru/bias", [2, 12]),
    ("GruSoftmax/dense/kernel", [4, 2]),
    ("GruSoftmax/dense/bias", [2]),
]
write("gru_softmax.safetensors", GRU_TENSORS, 0.8)

# window_last.seq: LSTM(6) on 3 features, Dense(2, softmax); window_seq.seq: GRU(5), Dense(2).
write(
    "window_last.safetensors",
    [
        ("WindowLast/lstm/kernel", [3, 24]),
        ("WindowLast/lstm/recurrent_kernel", [6, 24]),
        ("WindowLast/lstm/bias", [24]),
        ("WindowLast/dense/kernel", [6, 2]),
        ("WindowLast/dense/bias", [2]),
    ],
    0.6,
)
write(
    "window_seq.safetensors",
    [
        ("WindowSeq/gru/kernel", [3, 15]),
        ("WindowSeq/gru/recurrent_kernel", [5, 15]),
        ("WindowSeq/gru/bias", [2, 15]),
        ("WindowSeq/dense/kernel", [5, 2]),
        ("WindowSeq/dense/bias", [2]),
    ],
    0.6,
)
