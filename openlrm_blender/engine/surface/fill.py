"""Colours for a surface the photo shows only in part: where the photo shows it, the photo;
everywhere else a colour continued from the photographed surface across the shape, smoothly,
so no part is left a default grey and no seam shows where the photo ends.

The continuation is a diffusion over the surface: the shape is cut into voxels (``CELLS``
along its longest side), the voxels the surface passes through are joined to their 26
neighbours, and the colours of the voxels the photo shows are held while the others take
the harmonic mean of their neighbours (a sparse linear system, solved by conjugate
gradients). A colour at any point of the surface (a vertex, a texel) is then read from the
voxels round it. Voxels no photographed voxel reaches take the photo's mean colour.

It takes a mesh, its photo and a camera, whatever model made the mesh.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..geometry.normals import own_and_neighbourhood_normals
from .photo import Photo, Visibility

CELLS = 64  # voxels along the shape's longest side
HOLD = 100.0  # how strongly a photographed voxel keeps the photo's colour
PULL = 1e-4  # how strongly every voxel leans to the photo's mean colour (none is left undetermined)
PHOTOGRAPHED = 0.5  # a point's photo weight from which it is held to the photo
SOLVE_TOLERANCE = 1e-4
MAX_ITERATIONS = 2000
_OFFSETS = np.array([offset for offset in itertools.product((-1, 0, 1), repeat=3) if offset > (0, 0, 0)])  # 13 of 26


class SurfaceFill:
    """The diffusion of known colours at points of a surface over its voxels."""

    def __init__(self, points: np.ndarray, colours: np.ndarray, weights: np.ndarray, fallback: np.ndarray) -> None:
        """``points`` on the surface, their ``colours`` and how far each is known (0..1);
        ``fallback``: the colour far from anything known."""
        self.low = points.min(axis=0)
        self.size = float((points.max(axis=0) - self.low).max()) / (CELLS - 1) or 1.0
        self.shape = tuple(int(n) for n in np.floor((points.max(axis=0) - self.low) / self.size).astype(int) + 1)
        cells = self._cell_of(points)
        keys = np.ravel_multi_index(cells.T, self.shape)
        self.keys, owner = np.unique(keys, return_inverse=True)
        owner = owner.reshape(-1)
        count = np.bincount(owner, minlength=len(self.keys))
        held = np.bincount(owner, weights=weights, minlength=len(self.keys)) / np.maximum(count, 1)
        sums = np.stack(
            [
                np.bincount(owner, weights=weights * colours[:, channel], minlength=len(self.keys))
                for channel in range(3)
            ],
            1,
        )
        target = np.where(held[:, None] > 0, sums / np.maximum(held * count, 1e-12)[:, None], fallback)
        self.colours = self._solve(np.where(held > PHOTOGRAPHED / 2, held, 0.0) * HOLD, target, fallback)

    def _cell_of(self, points: np.ndarray) -> np.ndarray:
        cells = np.floor((points - self.low) / self.size + 0.5).astype(np.int64)
        return np.clip(cells, 0, np.array(self.shape) - 1)

    def _index(self, cells: np.ndarray) -> np.ndarray:
        """Each cell's row among the surface's voxels, -1 for a cell the surface misses."""
        inside = ((cells >= 0) & (cells < np.array(self.shape))).all(axis=1)
        keys = np.ravel_multi_index(np.clip(cells, 0, np.array(self.shape) - 1).T, self.shape)
        found = np.searchsorted(self.keys, keys)
        found = np.clip(found, 0, len(self.keys) - 1)
        return np.where(inside & (self.keys[found] == keys), found, -1)

    def _solve(self, hold: np.ndarray, target: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """Minimises the colour differences across neighbouring voxels plus hold * |c - target|^2
        plus PULL * |c - fallback|^2: (L + H + P) c = H target + P fallback, by conjugate gradients."""
        cells = np.stack(np.unravel_index(self.keys, self.shape), axis=1)
        edges = [(np.arange(len(cells)), self._index(cells + offset)) for offset in _OFFSETS]
        first = np.concatenate([a[b >= 0] for a, b in edges])
        second = np.concatenate([b[b >= 0] for _, b in edges])
        degree = np.bincount(first, minlength=len(cells)) + np.bincount(second, minlength=len(cells))
        diagonal = (degree + hold + PULL)[:, None]

        def apply(c: np.ndarray) -> np.ndarray:
            out = diagonal * c
            np.subtract.at(out, first, c[second])
            np.subtract.at(out, second, c[first])
            return out

        right = hold[:, None] * target + PULL * fallback
        colours = np.where(hold[:, None] > 0, target, fallback).astype(np.float64)
        residual = right - apply(colours)
        direction = residual / diagonal  # Jacobi-preconditioned
        change = residual * direction
        scale = np.abs(right).sum() or 1.0
        for _ in range(MAX_ITERATIONS):
            if np.abs(residual).sum() <= SOLVE_TOLERANCE * scale:
                break
            pushed = apply(direction)
            step = change.sum(axis=0) / np.maximum((direction * pushed).sum(axis=0), 1e-30)
            colours += step * direction
            residual -= step * pushed
            preconditioned = residual / diagonal
            new_change = residual * preconditioned
            direction = preconditioned + new_change.sum(axis=0) / np.maximum(change.sum(axis=0), 1e-30) * direction
            change = new_change
        return colours

    def colours_at(self, points: np.ndarray) -> np.ndarray:
        """(N, 3): the filled colours round each point, interpolated over the surface's voxels."""
        position = (points - self.low) / self.size
        base = np.floor(position).astype(np.int64)
        fraction = position - base
        total = np.zeros((len(points), 3))
        weight = np.zeros(len(points))
        for corner in itertools.product((0, 1), repeat=3):
            index = self._index(base + corner)
            w = np.prod(np.where(np.array(corner), fraction, 1 - fraction), axis=1) * (index >= 0)
            total += w[:, None] * self.colours[np.maximum(index, 0)]
            weight += w
        nearest = self._index(self._cell_of(points))
        alone = weight <= 1e-9  # no voxel round it holds the surface: its own, or the mean
        fallback = np.where((nearest >= 0)[:, None], self.colours[np.maximum(nearest, 0)], self.colours.mean(axis=0))
        return np.where(alone[:, None], fallback, total / np.maximum(weight, 1e-12)[:, None]).astype(np.float32)


def surface_samples(
    vertices: np.ndarray, faces: np.ndarray, spacing: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points over the mesh no further apart than ``spacing`` (so every voxel the surface
    crosses holds one): the vertices, and inside each larger triangle a lattice of points;
    with each point's triangle corners and weights (the vertices' are their own)."""
    corners = vertices[faces]
    longest = np.max(
        [np.linalg.norm(corners[:, a] - corners[:, b], axis=1) for a, b in ((0, 1), (1, 2), (2, 0))], axis=0
    )
    steps = np.ceil(longest / spacing).astype(np.int64)
    owners, weights = [np.stack([np.arange(len(vertices))] * 3, axis=1)], [np.tile([1.0, 0.0, 0.0], (len(vertices), 1))]
    for n in np.unique(steps[steps > 1]):
        i, j = np.nonzero(np.add.outer(np.arange(n + 1), np.arange(n + 1)) <= n)
        lattice = np.stack([(n - i - j) / n, i / n, j / n], axis=1)
        lattice = lattice[(lattice < 1.0).all(axis=1)]  # the corners are vertices already
        group = np.nonzero(steps == n)[0]
        owners.append(np.repeat(faces[group], len(lattice), axis=0))
        weights.append(np.tile(lattice, (len(group), 1)))
    owners, weights = np.concatenate(owners), np.concatenate(weights)
    return np.einsum("nk,nkd->nd", weights, vertices[owners]), owners, weights


def photo_fill(
    vertices: np.ndarray, faces: np.ndarray, photo: Photo, visibility: Visibility, mirror: bool = False
) -> SurfaceFill:
    """A mesh (in the photo's frame) coloured from its photo: what the photo shows of its
    surface (``visibility``: its depth test) and, with ``mirror``, of its mirror image across the
    shape's middle (for symmetric objects), continued over the rest of the shape."""
    spacing = float((vertices.max(axis=0) - vertices.min(axis=0)).max()) / (CELLS - 1) / 2
    points, owners, weights = surface_samples(vertices, faces, spacing)
    normals = np.einsum("nk,nk...->n...", weights, own_and_neighbourhood_normals(vertices, faces)[owners])
    weight, colours, _ = photo.seen(points, normals, visibility, mirror)
    known = weight > 0.5
    fallback = np.median(colours[known], axis=0) if known.any() else photo.mean_colour()
    return SurfaceFill(points, colours, weight, fallback)


class HeightColours:
    """The photo's colours by height, for a shape the photo could not be laid on (its camera
    fit badly): each point takes the mean colour of the photo's object at the same height,
    the shape's height range matched to the mask's."""

    def __init__(self, canvas: np.ndarray, vertices: np.ndarray) -> None:
        alpha = canvas[..., 3]
        rows = np.nonzero((alpha > 0.5).any(axis=1))[0]
        weights = alpha[rows.min() : rows.max() + 1] if len(rows) else alpha
        colours = canvas[rows.min() : rows.max() + 1, :, :3] if len(rows) else canvas[..., :3]
        per_row = (colours * weights[..., None]).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-12)[:, None]
        kernel = np.hanning(max(3, len(per_row) // 16 * 2 + 1))
        kernel /= kernel.sum()
        padded = np.pad(per_row, ((len(kernel) // 2,) * 2, (0, 0)), mode="edge")
        self.rows = np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(3)], axis=1)  # top first
        self.bottom, self.top = float(vertices[:, 2].min()), float(vertices[:, 2].max())

    def colours_at(self, points: np.ndarray) -> np.ndarray:
        height = (self.top - points[:, 2]) / max(self.top - self.bottom, 1e-12)  # 0 at the top, as the rows
        row = np.clip(np.rint(height * (len(self.rows) - 1)), 0, len(self.rows) - 1).astype(int)
        return self.rows[row].astype(np.float32)
