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

On the photo's device, in PyTorch: the voxels' system is solved there, and NumPy points are
given back NumPy colours.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry.normals import own_and_neighbourhood_normals
from ..geometry.tensors import compute_device, given_as, one_thread, tensor
from .photo import Photo, Values, Visibility, median

CELLS = 64  # voxels along the shape's longest side
HOLD = 100.0  # how strongly a photographed voxel keeps the photo's colour
PULL = 1e-4  # how strongly every voxel leans to the photo's mean colour (none is left undetermined)
PHOTOGRAPHED = 0.5  # a point's photo weight from which it is held to the photo
SOLVE_TOLERANCE = 1e-4
MAX_ITERATIONS = 2000
_OFFSETS = [offset for offset in itertools.product((-1, 0, 1), repeat=3) if offset > (0, 0, 0)]  # 13 of 26


class SurfaceFill:
    """The diffusion of known colours at points of a surface over its voxels."""

    def __init__(
        self, points: torch.Tensor, colours: torch.Tensor, weights: torch.Tensor, fallback: torch.Tensor
    ) -> None:
        """``points`` on the surface, their ``colours`` and how far each is known (0..1);
        ``fallback``: the colour far from anything known. Tensors, float64, on one device."""
        self.device = points.device
        self.low = points.min(dim=0).values
        self.size = float((points.max(dim=0).values - self.low).max()) / (CELLS - 1) or 1.0
        self.shape = [int(n) for n in ((points.max(dim=0).values - self.low) / self.size).floor().long() + 1]
        self.keys, owner = torch.unique(self._key(self._cell_of(points)), return_inverse=True)
        count = torch.bincount(owner, minlength=len(self.keys))
        held = torch.bincount(owner, weights=weights, minlength=len(self.keys)) / count.clamp(min=1)
        sums = torch.stack(
            [torch.bincount(owner, weights=weights * colour, minlength=len(self.keys)) for colour in colours.T], 1
        )
        target = torch.where(held[:, None] > 0, sums / (held * count).clamp(min=1e-12)[:, None], fallback)
        self.colours = self._solve(torch.where(held > PHOTOGRAPHED / 2, held, 0.0) * HOLD, target, fallback)

    def _key(self, cells: torch.Tensor) -> torch.Tensor:
        return (cells[:, 0] * self.shape[1] + cells[:, 1]) * self.shape[2] + cells[:, 2]

    def _cell_of(self, points: torch.Tensor) -> torch.Tensor:
        cells = ((points - self.low) / self.size + 0.5).floor().long()
        return cells.clamp(torch.zeros_like(cells[0]), cells.new_tensor(self.shape) - 1)

    def _index(self, cells: torch.Tensor) -> torch.Tensor:
        """Each cell's row among the surface's voxels, -1 for a cell the surface misses."""
        limit = cells.new_tensor(self.shape)
        inside = ((cells >= 0) & (cells < limit)).all(dim=1)
        keys = self._key(cells.clamp(torch.zeros_like(limit), limit - 1))
        found = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
        return torch.where(inside & (self.keys[found] == keys), found, -1)

    def _solve(self, hold: torch.Tensor, target: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
        """Minimises the colour differences across neighbouring voxels plus hold * |c - target|^2
        plus PULL * |c - fallback|^2: (L + H + P) c = H target + P fallback, by conjugate gradients."""
        shape = self.keys.new_tensor(self.shape)
        cells = torch.stack(
            [self.keys // (shape[1] * shape[2]), self.keys // shape[2] % shape[1], self.keys % shape[2]], 1
        )
        rows = torch.arange(len(cells), device=self.device)
        first, second = [], []
        for offset in _OFFSETS:
            neighbour = self._index(cells + cells.new_tensor(offset))
            joined = neighbour >= 0
            first.append(rows[joined])
            second.append(neighbour[joined])
        first, second = torch.cat(first), torch.cat(second)
        degree = torch.bincount(first, minlength=len(cells)) + torch.bincount(second, minlength=len(cells))
        diagonal = (degree + hold + PULL)[:, None]
        neighbours = _adjacency(torch.cat([first, second]), torch.cat([second, first]), len(cells))

        def apply(c: torch.Tensor) -> torch.Tensor:
            return diagonal * c - neighbours @ c

        right = hold[:, None] * target + PULL * fallback
        colours = torch.where(hold[:, None] > 0, target, fallback)
        residual = right - apply(colours)
        direction = residual / diagonal  # Jacobi-preconditioned
        change = residual * direction
        scale = float(right.abs().sum()) or 1.0
        for _ in range(MAX_ITERATIONS):
            if float(residual.abs().sum()) <= SOLVE_TOLERANCE * scale:
                break
            pushed = apply(direction)
            step = change.sum(dim=0) / (direction * pushed).sum(dim=0).clamp(min=1e-30)
            colours += step * direction
            residual -= step * pushed
            preconditioned = residual / diagonal
            new_change = residual * preconditioned
            direction = preconditioned + new_change.sum(dim=0) / change.sum(dim=0).clamp(min=1e-30) * direction
            change = new_change
        return colours

    @one_thread
    def colours_at(self, points: Values) -> Values:
        """(N, 3) float32: the filled colours round each point, interpolated over the surface's voxels."""
        at = tensor(points, self.device).double()
        position = (at - self.low) / self.size
        base = position.floor().long()
        fraction = position - base
        total = torch.zeros((len(at), 3), dtype=torch.float64, device=self.device)
        weight = torch.zeros(len(at), dtype=torch.float64, device=self.device)
        for corner in itertools.product((0, 1), repeat=3):
            index = self._index(base + base.new_tensor(corner))
            w = torch.where(base.new_tensor(corner, dtype=torch.bool), fraction, 1 - fraction).prod(dim=1) * (
                index >= 0
            )
            total += w[:, None] * self.colours[index.clamp(min=0)]
            weight += w
        nearest = self._index(self._cell_of(at))
        alone = weight <= 1e-9  # no voxel round it holds the surface: its own, or the mean
        fallback = torch.where((nearest >= 0)[:, None], self.colours[nearest.clamp(min=0)], self.colours.mean(dim=0))
        return given_as(points, torch.where(alone[:, None], fallback, total / weight.clamp(min=1e-12)[:, None]).float())


def _adjacency(rows: torch.Tensor, columns: torch.Tensor, size: int) -> torch.Tensor:
    """The size x size matrix of ones at (rows, columns), each pair once, in compressed rows:
    its product with the colours is 70 times ``index_add_``'s on the CPU (0.33 ms for 18,000
    voxels, 240,000 neighbours), and cuSPARSE's on CUDA."""
    order = torch.argsort(rows * size + columns)
    crow = torch.cat([rows.new_zeros(1), torch.cumsum(torch.bincount(rows, minlength=size), 0)])
    ones = torch.ones(len(rows), dtype=torch.float64, device=rows.device)
    with warnings.catch_warnings():  # "sparse CSR tensor support is in beta": the product is all it is asked for
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, columns[order], ones, (size, size))


def surface_samples(
    vertices: torch.Tensor, faces: torch.Tensor, spacing: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Points over the mesh no further apart than ``spacing`` (so every voxel the surface
    crosses holds one): the vertices, and inside each larger triangle a lattice of points;
    with each point's triangle corners and weights (the vertices' are their own)."""
    corners = vertices[faces]
    longest = (
        torch.stack(
            [torch.linalg.vector_norm(corners[:, a] - corners[:, b], dim=1) for a, b in ((0, 1), (1, 2), (2, 0))]
        )
        .max(dim=0)
        .values
    )
    steps = (longest / spacing).ceil().long()
    device = vertices.device
    own = torch.arange(len(vertices), device=device)
    owners = [torch.stack([own] * 3, dim=1)]
    weights = [torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64, device=device).repeat(len(vertices), 1)]
    for n in torch.unique(steps[steps > 1]).tolist():
        i, j = torch.nonzero(torch.arange(n + 1)[:, None] + torch.arange(n + 1) <= n, as_tuple=True)
        lattice = torch.stack([(n - i - j) / n, i / n, j / n], dim=1).double()
        lattice = lattice[(lattice < 1.0).all(dim=1)].to(device)  # the corners are vertices already
        group = torch.nonzero(steps == n).squeeze(1)
        owners.append(faces[group].repeat_interleave(len(lattice), dim=0))
        weights.append(lattice.repeat(len(group), 1))
    owners, weights = torch.cat(owners), torch.cat(weights)
    return (weights[:, :, None] * vertices[owners].double()).sum(dim=1), owners, weights


@one_thread
def photo_fill(
    vertices: Values, faces: Values, photo: Photo, visibility: Visibility, mirror: bool = False
) -> SurfaceFill:
    """A mesh (in the photo's frame) coloured from its photo: what the photo shows of its
    surface (``visibility``: its depth test) and, with ``mirror``, of its mirror image across the
    shape's middle (for symmetric objects), continued over the rest of the shape, on the photo's device."""
    host = [value if isinstance(value, np.ndarray) else value.cpu().numpy() for value in (vertices, faces)]
    normals = tensor(own_and_neighbourhood_normals(*host), photo.device)  # NumPy's, as the vertices' elsewhere
    vertices, faces = tensor(vertices, photo.device), tensor(faces, photo.device).long()
    spacing = float((vertices.max(dim=0).values - vertices.min(dim=0).values).max()) / (CELLS - 1) / 2
    points, owners, weights = surface_samples(vertices, faces, spacing)
    normals = (weights[:, :, None, None] * normals[owners]).sum(dim=1)
    weight, colours, _ = photo.seen(points, normals, visibility, mirror)
    known = weight > 0.5
    fallback = median(colours[known]) if bool(known.any()) else photo.mean_colour()
    return SurfaceFill(points, colours, weight, fallback)


class HeightColours:
    """The photo's colours by height, for a shape the photo could not be laid on (its camera
    fit badly): each point takes the mean colour of the photo's object at the same height,
    the shape's height range matched to the mask's."""

    @one_thread
    def __init__(self, canvas: Values, vertices: Values, device: torch.device | None = None) -> None:
        self.device = compute_device(device, canvas)
        canvas = tensor(canvas, self.device)
        alpha = canvas[..., 3]
        rows = torch.nonzero((alpha > 0.5).any(dim=1)).squeeze(1)
        kept = slice(int(rows.min()), int(rows.max()) + 1) if len(rows) else slice(None)
        weights, colours = alpha[kept], canvas[kept, :, :3]
        per_row = (colours * weights[..., None]).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-12)[:, None]
        kernel = torch.hann_window(max(3, len(per_row) // 16 * 2 + 1), periodic=False, dtype=torch.float64)
        kernel = (kernel / kernel.sum()).to(self.device)
        padded = F.pad(per_row.double().T[None], (len(kernel) // 2,) * 2, mode="replicate")[0]
        self.rows = F.conv1d(padded[:, None], kernel[None, None])[:, 0].T  # top first
        heights = tensor(vertices, self.device)[:, 2]
        self.bottom, self.top = float(heights.min()), float(heights.max())

    @one_thread
    def colours_at(self, points: Values) -> Values:
        heights = tensor(points, self.device)[:, 2]
        height = (self.top - heights) / max(self.top - self.bottom, 1e-12)  # 0 at the top, as the rows
        row = (height * (len(self.rows) - 1)).round().clamp(0, len(self.rows) - 1).long()
        return given_as(points, self.rows[row].float())
