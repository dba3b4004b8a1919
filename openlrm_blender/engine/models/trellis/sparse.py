"""Sparse voxel operations in plain PyTorch, for one object: what the published code does with
spconv and flash-attn.

An object's voxels are ``coords`` (N, 3) integer (x, y, z) rows and their features (N, C).
Rows keep the order the published code gives them: coordinate order from the structure
stage and after a downsampling, parent by parent after a subdivision.

- A submanifold 3x3x3 convolution (spconv's ``SubMConv3d``, weights stored
  [out, 3, 3, 3, in]) has outputs on the input's voxels only: each output is the sum over
  the 27 offsets of the weights times the neighbour's features there, where a neighbour is;
  the bias is added after the products (as spconv does on the CPU). A kernel of 1 is spconv's
  matrix product with the stored [out, 1, 1, 1, in] weights' memory read as an (in, out)
  matrix, not transposed: how the published networks were trained, so how they must run.
- Downsampling averages each 2x2x2 parent's children (the published mean counts one more
  child than there are: it includes the zeros it starts from); upsampling copies a parent's
  features back to its children; subdivision makes each voxel eight.
- Shifted-window attention attends within windows of ``size``^3 voxels, shifted by half a
  window on every second block.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

KERNEL_OFFSETS = torch.tensor(list(itertools.product((-1, 0, 1), repeat=3)))  # x slowest, as weights store them
CHILD_OFFSETS = torch.tensor(list(itertools.product((0, 1), repeat=3)))  # a subdivided voxel's eight, in order
WINDOW_SCORES = 1 << 26  # attention scores one batch of windows may hold (256 MB of float32)


def flat_keys(coords: torch.Tensor, size: int) -> torch.Tensor:
    """Int64 keys of (N, 3) coordinates in [0, size)^3, x slowest."""
    coords = coords.long()
    return (coords[:, 0] * size + coords[:, 1]) * size + coords[:, 2]


class VoxelIndex:
    """Finds the row of a voxel by its coordinates."""

    def __init__(self, coords: torch.Tensor) -> None:
        self.size = int(coords.max()) + 3 if len(coords) else 3  # room for a neighbour either side
        self.keys, self.order = torch.sort(flat_keys(coords + 1, self.size))

    def rows(self, coords: torch.Tensor) -> torch.Tensor:
        """Rows of the voxels at (M, 3) coordinates (within one of the indexed), -1 where none is."""
        keys = flat_keys(coords + 1, self.size)
        found = torch.searchsorted(self.keys, keys).clamp(max=max(len(self.keys) - 1, 0))
        hit = self.keys[found] == keys if len(self.keys) else torch.zeros_like(keys, dtype=torch.bool)
        return torch.where(hit, self.order[found], -1)


@dataclass(frozen=True)
class Neighbours:
    """For each of the 27 kernel offsets, the rows that have a neighbour there and its row."""

    pairs: tuple[tuple[torch.Tensor, torch.Tensor], ...]  # (output rows, input rows) per offset

    @classmethod
    def of(cls, coords: torch.Tensor) -> Neighbours:
        index = VoxelIndex(coords)
        pairs = []
        for offset in KERNEL_OFFSETS.to(coords.device):
            rows = index.rows(coords + offset)
            present = torch.nonzero(rows >= 0).squeeze(1)
            pairs.append((present, rows[present]))
        return cls(tuple(pairs))


class Level:
    """An object's voxels at one resolution, with their neighbours found once and the
    voxels at half the resolution made once."""

    def __init__(self, coords: torch.Tensor) -> None:
        self.coords = coords
        self._neighbours: Neighbours | None = None
        self._halved: tuple[Level, Downsampled] | None = None

    @property
    def neighbours(self) -> Neighbours:
        if self._neighbours is None:
            self._neighbours = Neighbours.of(self.coords)
        return self._neighbours

    def halved(self) -> tuple[Level, Downsampled]:
        """The parents' level, and how children map to them."""
        if self._halved is None:
            down = Downsampled.of(self.coords)
            self._halved = Level(down.coords), down
        return self._halved


class SubMConv(nn.Module):
    """The weights of a submanifold convolution under spconv's names and layout."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels_out, kernel, kernel, kernel, channels_in))
        self.bias = nn.Parameter(torch.empty(channels_out))


class SparseConv3d(nn.Module):
    """A submanifold convolution of kernel 3 (or 1: a linear layer) over an object's voxels."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = SubMConv(channels_in, channels_out, kernel)

    def forward(self, feats: torch.Tensor, neighbours: Neighbours) -> torch.Tensor:
        weight = self.conv.weight
        if weight.shape[1] == 1:
            return feats @ weight.contiguous().view(weight.shape[-1], weight.shape[0]) + self.conv.bias
        kernels = weight.reshape(weight.shape[0], 27, weight.shape[-1]).permute(1, 2, 0)  # (27, in, out)
        out = feats.new_zeros(len(feats), weight.shape[0])
        for kernel, (rows, sources) in zip(kernels, neighbours.pairs, strict=True):
            if len(rows):
                out.index_add_(0, rows, feats.index_select(0, sources) @ kernel)
        return out + self.conv.bias


@dataclass(frozen=True)
class Downsampled:
    """An object's voxels halved: the parents in coordinate order, and each child's parent."""

    coords: torch.Tensor
    parent: torch.Tensor  # (N_children,) row of each child's parent

    @classmethod
    def of(cls, coords: torch.Tensor) -> Downsampled:
        halved = torch.div(coords, 2, rounding_mode="floor")
        keys = flat_keys(halved, int(halved.max()) + 1)
        unique, parent = torch.unique(keys, return_inverse=True)
        size = int(halved.max()) + 1
        parents = torch.stack([unique // (size * size), unique // size % size, unique % size], dim=1)
        return cls(parents.to(coords.dtype), parent)

    def mean(self, feats: torch.Tensor) -> torch.Tensor:
        """Each parent's features: its children's sum over their count plus one, as published."""
        start = feats.new_zeros(len(self.coords), feats.shape[1])
        return torch.scatter_reduce(start, 0, self.parent[:, None].expand_as(feats), feats, reduce="mean")

    def copy_back(self, feats: torch.Tensor) -> torch.Tensor:
        """Each child takes its parent's features."""
        return feats[self.parent]


def subdivide(coords: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each voxel as its eight children at twice the resolution, parent by parent."""
    children = (coords[:, None] * 2 + CHILD_OFFSETS.to(coords)[None]).reshape(-1, 3)
    return children, feats.repeat_interleave(len(CHILD_OFFSETS), dim=0)


class Windows:
    """Attention within windows of ``size``^3 voxels shifted by ``shift``: the rows grouped by
    window (windows in raster order), each window's queries against its own keys."""

    def __init__(self, coords: torch.Tensor, size: int, shift: int) -> None:
        shifted = coords.long() + shift
        counts = torch.div(shifted.max(dim=0).values + 1 + size - 1, size, rounding_mode="floor")
        cell = torch.div(shifted, size, rounding_mode="floor")
        window = (cell[:, 0] * counts[1] + cell[:, 1]) * counts[2] + cell[:, 2]
        self.order = torch.argsort(window)
        lengths = torch.bincount(window)
        self.lengths = lengths[lengths > 0]

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(N, H, D) queries, keys and values in row order -> (N, H, D) attended, in row order.
        Windows of a similar length go together, padded to the longest and masked."""
        rows = len(self.order)
        q, k, v = q[self.order], k[self.order], v[self.order]
        starts = torch.cumsum(self.lengths, 0) - self.lengths
        by_length = torch.argsort(self.lengths, descending=True)
        out = torch.empty_like(q)
        heads = q.shape[1]
        first = 0
        while first < len(by_length):
            longest = int(self.lengths[by_length[first]])
            count = max(1, min(len(by_length) - first, WINDOW_SCORES // (heads * longest * longest)))
            chosen = by_length[first : first + count]
            offsets = torch.arange(longest, device=q.device)
            index = starts[chosen, None] + offsets[None]  # (W, longest) into the grouped rows
            valid = offsets[None] < self.lengths[chosen, None]
            index = torch.where(valid, index, 0).clamp(max=rows - 1)
            mask = valid[:, None, None, :]  # keys a query may see
            attended = F.scaled_dot_product_attention(
                q[index].transpose(1, 2), k[index].transpose(1, 2), v[index].transpose(1, 2), attn_mask=mask
            ).transpose(1, 2)
            out[index[valid]] = attended[valid]
            first += count
        result = torch.empty_like(out)
        result[self.order] = out
        return result
