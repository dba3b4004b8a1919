"""Messages between Blender and the model's worker process, over a pair of pipes.

A message is a JSON header (its kind and plain fields) followed by the raw bytes of any
NumPy arrays it carries (an image, the mesh). No pickle: the two sides import the add-on
under different package names, and nothing read from a pipe should run code.
"""

from __future__ import annotations

import json
import struct
from typing import BinaryIO

import numpy as np

_LENGTH = struct.Struct("<Q")


def write_message(stream: BinaryIO, kind: str, arrays: dict[str, np.ndarray] | None = None, **fields) -> None:
    arrays = {name: np.ascontiguousarray(array) for name, array in (arrays or {}).items()}
    layout = [[name, array.dtype.str, list(array.shape)] for name, array in arrays.items()]
    header = json.dumps({"kind": kind, "fields": fields, "arrays": layout}).encode()
    stream.write(_LENGTH.pack(len(header)))
    stream.write(header)
    for array in arrays.values():
        stream.write(memoryview(array).cast("B"))
    stream.flush()


def _read_exactly(stream: BinaryIO, size: int) -> bytearray | None:
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        count = stream.readinto(view[done:])
        if not count:
            return None
        done += count
    return buffer


def read_message(stream: BinaryIO) -> tuple[str, dict, dict[str, np.ndarray]] | None:
    """The next message as (kind, fields, arrays); None once the other side has gone."""
    length = _read_exactly(stream, _LENGTH.size)
    if length is None:
        return None
    header = _read_exactly(stream, _LENGTH.unpack(length)[0])
    if header is None:
        return None
    message = json.loads(header)
    arrays = {}
    for name, dtype, shape in message["arrays"]:
        dtype = np.dtype(dtype)
        data = _read_exactly(stream, dtype.itemsize * int(np.prod(shape, dtype=np.int64)))
        if data is None:
            return None
        arrays[name] = np.frombuffer(data, dtype=dtype).reshape(shape)
    return message["kind"], message["fields"], arrays
