"""PLY files, ascii or binary in either byte order, read as vertex positions and polygons.

Only the vertex element's x, y, z and the face element's ``vertex_indices`` (or
``vertex_index``) list are kept; every other property and element is stepped over by its
declared layout. The data is taken as units, bytes when binary and numbers when ascii, so both
are read the same way: an element whose lists all have the first record's lengths (every
triangle mesh) as one array, one whose polygons differ in corner count by stepping through its
records once to find where each list begins.
"""

from __future__ import annotations

import struct
import warnings
from array import array
from dataclasses import dataclass

import numpy as np

from ..errors import MeshFileError
from .mesh_size import check_size

_TYPES = {
    **dict.fromkeys(("char", "int8"), "i1"),
    **dict.fromkeys(("uchar", "uint8"), "u1"),
    **dict.fromkeys(("short", "int16"), "i2"),
    **dict.fromkeys(("ushort", "uint16"), "u2"),
    **dict.fromkeys(("int", "int32"), "i4"),
    **dict.fromkeys(("uint", "uint32"), "u4"),
    **dict.fromkeys(("float", "float32"), "f4"),
    **dict.fromkeys(("double", "float64"), "f8"),
}
_BYTE_ORDERS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
_FACE_LISTS = ("vertex_indices", "vertex_index")


@dataclass(eq=False)  # told apart by identity: a file may repeat a name
class _Property:
    name: str
    type: np.dtype
    count: np.dtype | None = None  # a list's length type; None for a single value


@dataclass
class _Element:
    name: str
    size: int
    properties: list[_Property]


def read_ply(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (V, 3), float32 when the file holds them so and float64 otherwise; the polygons
    as their corner counts and all their corners in a row."""
    order, elements, start = _header(data, name)
    body = _Body(data, start, order, name)
    found: dict[str, dict] = {}
    position = 0
    for element in elements:
        if {"vertex", "face"} <= found.keys():
            break
        wanted = []
        if element.name == "vertex":
            check_size(name, vertices=element.size)
            wanted = [_property(element, axis, name) for axis in "xyz"]
        elif element.name == "face":
            check_size(name, triangles=element.size)
            lists = [prop for prop in element.properties if prop.name in _FACE_LISTS and prop.count is not None]
            if not lists:
                raise MeshFileError(f"{name}: not a valid PLY: its faces have no vertex_indices list")
            wanted = lists[:1]
        values, position = body.read(element, position, wanted)
        if wanted:
            found.setdefault(element.name, values)
    if "vertex" not in found:
        raise MeshFileError(f"{name}: not a valid PLY: it has no vertex element")
    axes = [found["vertex"][axis][1] for axis in "xyz"]
    single = all(axis.dtype.kind == "f" and axis.dtype.itemsize == 4 for axis in axes)
    vertices = np.stack(axes, axis=1).astype(np.float32 if single else np.float64)
    if "face" not in found:
        return vertices, np.zeros(0, np.int64), np.zeros(0, np.int64)
    counts, corners = next(iter(found["face"].values()))
    if corners.dtype.kind == "f" and not np.array_equal(corners, np.round(corners)):
        raise MeshFileError(f"{name}: not a valid PLY: its face corners are not whole numbers")
    return vertices, counts.astype(np.int64), corners.astype(np.int64)


def _property(element: _Element, axis: str, name: str) -> _Property:
    for prop in element.properties:
        if prop.name == axis and prop.count is None:
            return prop
    raise MeshFileError(f"{name}: not a valid PLY: its vertices have no {axis} coordinate")


def _type(word: str, name: str) -> np.dtype:
    if word not in _TYPES:
        raise MeshFileError(f"{name}: not a valid PLY: unknown property type {word!r}")
    return np.dtype(_TYPES[word])


def _header(data: bytes, name: str) -> tuple[str | None, list[_Element], int]:
    """The byte order (None: ascii), the elements, and where the data begins."""
    if not data.startswith((b"ply\n", b"ply\r\n")):
        raise MeshFileError(f"{name}: not a PLY file (it does not begin with 'ply')")
    end = data.find(b"\nend_header") + 1
    start = data.find(b"\n", end) + 1
    if end == 0 or start == 0:
        raise MeshFileError(f"{name}: not a valid PLY: its header has no end_header line")
    order, elements = "", []
    for line in data[:end].decode("ascii", errors="replace").splitlines()[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        try:
            if words[0] == "format":
                order = _BYTE_ORDERS[words[1]]
            elif words[0] == "element":
                elements.append(_Element(words[1], int(words[2]), []))
                if elements[-1].size < 0:
                    raise ValueError
            elif words[0] == "property" and words[1] == "list":
                elements[-1].properties.append(_Property(words[4], _type(words[3], name), _type(words[2], name)))
            elif words[0] == "property":
                elements[-1].properties.append(_Property(words[2], _type(words[1], name)))
            else:
                raise ValueError
        except (KeyError, IndexError, ValueError):
            raise MeshFileError(f"{name}: not a valid PLY: its header line {line.strip()!r} cannot be read") from None
    if order == "":
        raise MeshFileError(f"{name}: not a valid PLY: its header has no format line")
    if any(prop.count is not None and prop.count.kind == "f" for element in elements for prop in element.properties):
        raise MeshFileError(f"{name}: not a valid PLY: a list's length is declared as a floating-point number")
    return order, elements, start


class _Body:
    """The data after the header as units: bytes when binary, numbers when ascii."""

    def __init__(self, data: bytes, start: int, order: str | None, name: str) -> None:
        self.data, self.start, self.order, self.name = data, start, order, name
        if order is not None:
            self.units = np.frombuffer(data, np.uint8, offset=start)
            return
        text = data[start:].decode("ascii", errors="replace")
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)  # NumPy's word for a stray word in the numbers
            try:
                self.units = np.zeros(0) if text.isspace() or not text else np.fromstring(text, sep=" ")
            except (DeprecationWarning, ValueError):
                message = f"{name}: not a valid PLY: its ascii data holds a word that is not a number"
                raise MeshFileError(message) from None

    def width(self, dtype: np.dtype) -> int:
        return 1 if self.order is None else dtype.itemsize

    def decode(self, units: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """Units (n, width) as n values (ascii's as float64)."""
        if self.order is None:
            return units[:, 0]
        return np.ascontiguousarray(units).view(dtype.newbyteorder(self.order))[:, 0]

    def length_at(self, position: int, dtype: np.dtype) -> int:
        """A list's length, read where it is stored."""
        try:
            if self.order is None:
                value = self.units[position]
                length = int(value)
                if length != value:
                    raise ValueError
            else:
                length = struct.unpack_from(self.order + dtype.char, self.data, self.start + position)[0]
        except (IndexError, struct.error):
            raise MeshFileError(f"{self.name}: not a valid PLY: the file ends before its last element") from None
        except (ValueError, OverflowError):
            raise MeshFileError(f"{self.name}: not a valid PLY: a list's length is not a whole number") from None
        if length < 0:
            raise MeshFileError(f"{self.name}: not a valid PLY: a list has a negative length")
        return length

    def read(self, element: _Element, position: int, wanted: list[_Property]) -> tuple[dict, int]:
        """The wanted properties of an element that begins at this unit, as {name: (the number of
        values in each record, all values in a row)}, and where the next element begins."""
        if element.size == 0:
            return {prop.name: (np.zeros(0, np.int64), np.zeros(0)) for prop in wanted}, position
        smallest = sum(self.width(prop.type if prop.count is None else prop.count) for prop in element.properties)
        if element.size * smallest > len(self.units) - position:
            raise MeshFileError(f"{self.name}: not a valid PLY: the file ends before its last element")
        lengths, offset = [], position
        for prop in element.properties:  # the first record's list lengths
            length = self.length_at(offset, prop.count) if prop.count is not None else 1
            offset += (self.width(prop.count) if prop.count is not None else 0) + length * self.width(prop.type)
            lengths.append(length)
        record = offset - position
        block = self.units[position : position + element.size * record]
        if len(block) == element.size * record:
            block = block.reshape(element.size, record)
            values, uniform, offset = {}, True, 0
            for prop, length in zip(element.properties, lengths, strict=True):
                if prop.count is not None:
                    stored = self.decode(block[:, offset : offset + self.width(prop.count)], prop.count)
                    uniform &= bool((stored == length).all())
                    offset += self.width(prop.count)
                width = self.width(prop.type)
                if prop in wanted:
                    items = block[:, offset : offset + length * width].reshape(-1, width)
                    values[prop.name] = (np.full(element.size, length), self.decode(items, prop.type))
                offset += length * width
            if uniform:
                return values, position + element.size * record
        return self._step_through(element, position, wanted)

    def _step_through(self, element: _Element, position: int, wanted: list[_Property]) -> tuple[dict, int]:
        """Records whose lists differ in length, one by one: where each wanted value begins."""
        starts = {prop: array("q") for prop in wanted}
        lengths = {prop: array("q") for prop in wanted}
        for _ in range(element.size):
            for prop in element.properties:
                length = 1
                if prop.count is not None:
                    length = self.length_at(position, prop.count)
                    position += self.width(prop.count)
                if prop in starts:
                    starts[prop].append(position)
                    lengths[prop].append(length)
                position += length * self.width(prop.type)
        if position > len(self.units):
            raise MeshFileError(f"{self.name}: not a valid PLY: the file ends before its last element")
        values = {}
        for prop in wanted:
            begin, length = np.frombuffer(starts[prop], np.int64), np.frombuffer(lengths[prop], np.int64)
            width = self.width(prop.type)
            items = _ranges(self.units, begin, length * width).reshape(-1, width)
            values[prop.name] = (length, self.decode(items, prop.type))
        return values, position


def _ranges(units: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The units of these (increasing, disjoint) ranges, one after another."""
    starts, lengths = starts[lengths > 0], lengths[lengths > 0]
    if not len(starts):
        return units[:0]
    low, high = starts[0], starts[-1] + lengths[-1]
    edges = np.zeros(high - low + 1, np.int8)
    edges[starts - low] += 1
    edges[starts + lengths - low] -= 1
    return units[low:high][np.cumsum(edges[:-1], dtype=np.int8).astype(bool)]
