"""Writes the safetensors fixtures of tiny.seq by hand (the format is an 8-byte header
length, a JSON header and little-endian data), independently of seqmodel's own writer.

    python3 tests/generated/models/make_weights.py
"""
import json
import struct
from pathlib import Path

HERE = Path(__file__).parent


def write(name, tensors):
    header, data = {}, b""
    for key, shape, values in tensors:
        raw = struct.pack(f"<{len(values)}f", *values)
        header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    (HERE / name).write_bytes(struct.pack("<Q", len(text)) + text + data)


# y = x @ kernel + bias, kernel [[1, 0], [0, 1], [1, 1]], bias [0.5, -0.5].
KERNEL = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
write("tiny.safetensors", [("Tiny/dense/kernel", [3, 2], KERNEL), ("Tiny/dense/bias", [2], [0.5, -0.5])])
# The kernel transposed: a mis-shaped weight.
write("tiny_misshaped.safetensors", [("Tiny/dense/kernel", [2, 3], KERNEL), ("Tiny/dense/bias", [2], [0.5, -0.5])])
