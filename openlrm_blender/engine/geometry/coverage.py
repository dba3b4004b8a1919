"""The pixel centres each triangle covers, in PyTorch on the photo stage's device: the depth
test's drawing and the silhouettes'. Pixel (row, column) has its centre at (x, y) = (column,
row), as in ``raster`` (whose drawing, with a reach, is the texture's).

A triangle is looked at over the pixel centres of its bounding box only, every triangle's laid
end to end: a dense mesh seen at a photo's resolution is mostly triangles covering one or two
centres, or none (those cost nothing more), so a chunk of a million triangles is one array
operation.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch

from .raster import barycentric_parts

# Pixel-triangle pairs looked at in one go: on the CPU what stays in its caches (a 4M chunk took
# five times as long as 64k ones, its temporaries new memory each time), on a GPU enough to fill it.
CPU_CANDIDATES_PER_CHUNK, GPU_CANDIDATES_PER_CHUNK = 1 << 16, 1 << 22


def covered(
    x: torch.Tensor, y: torch.Tensor, faces: torch.Tensor, size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Each pixel centre of the size x size grid inside each triangle (``x``, ``y``: each
    vertex's position in pixels), in chunks: the triangle's index, the pixel's (row * size +
    column) and the weights (n, 3) of the triangle's corners there, in float64."""
    xs, ys = x.double()[faces], y.double()[faces]
    left, top = (corner.min(dim=1).values.ceil().clamp(0, size) for corner in (xs, ys))
    right, bottom = (corner.max(dim=1).values.floor().clamp(-1, size - 1) for corner in (xs, ys))
    width, height = (right - left + 1).clamp(min=0).long(), (bottom - top + 1).clamp(min=0).long()
    left, top = left.long(), top.long()
    chosen = torch.nonzero(width * height).squeeze(1)
    count = (width * height).index_select(0, chosen)
    # Chunks of triangles of about ``per_chunk`` candidates (a larger triangle alone).
    ends = torch.cumsum(count, 0)
    total = int(ends[-1]) if len(ends) else 0
    per_chunk = CPU_CANDIDATES_PER_CHUNK if x.device.type == "cpu" else GPU_CANDIDATES_PER_CHUNK
    cuts = torch.searchsorted(ends, torch.arange(0, total, per_chunk, device=x.device)).tolist()
    for start, end in itertools.pairwise([*sorted(set(cuts)), len(ends)]):
        counts = count[start:end]
        owner = torch.repeat_interleave(counts)  # each candidate's triangle in the chunk
        place = torch.arange(len(owner), device=x.device) - (torch.cumsum(counts, 0) - counts).index_select(0, owner)
        triangle = chosen[start:end].index_select(0, owner)
        across = width.index_select(0, triangle)
        columns = left.index_select(0, triangle) + place % across
        rows = top.index_select(0, triangle) + place // across
        weights = barycentric_parts(xs[triangle], ys[triangle], columns.double(), rows.double())
        inside = torch.nonzero((weights[0] >= 0) & (weights[1] >= 0) & (weights[2] >= 0)).squeeze(1)
        yield (
            triangle.index_select(0, inside),
            (rows * size + columns).index_select(0, inside),
            torch.stack(weights, dim=1).index_select(0, inside),
        )
