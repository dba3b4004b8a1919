"""FlexiCubes mesh extraction at inference, on a sparse grid, giving the published code's mesh
(NVIDIA's FlexiCubes, Apache-2.0, as MaxtirError/FlexiCubes 815e075 runs it for TRELLIS with
training off): the same vertices in the same order, the same triangles in the same order and
winding, the same interpolated attributes.

The published code walks the whole dense grid; this looks only at cubes with a corner
inside (signed distance < 0), found from the listed points, since every other point is
outside, and keeps every order the published one makes:

- Surface cubes (corners on both sides) in flat-index order; a cube's case sets bit c where
  corner c is inside. A case with an ambiguous face whose neighbour across it is also such a
  case (``AMBIGUOUS``) takes the complementary case.
- The grid edges of the surface cubes, as the sorted unique (first, second) point pairs of
  the cubes' edges ``EDGES``; those whose ends lie on different sides are numbered in that
  order.
- Dual vertices: cubes taken in order of how many dual vertices their case makes (stable),
  each vertex the beta-weighted mean of its edges' crossings, each crossing interpolated with
  the corner signed distances scaled by alpha. Attributes (through a sigmoid) are
  interpolated the same way. (The QEF solve and the quad centre points are training only.)
- Quads: one per crossing edge shared by 4 surface cubes, in edge order, those whose first
  point is outside (> 0) first; each split along the diagonal whose end points' gammas have
  the larger product (the second diagonal on a tie).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.cube_grid import CUBE_CORNERS, CubeGrid, flat_index, grid_coords, lattice_position
from .flexicubes_tables import AMBIGUOUS, AMBIGUOUS_NEIGHBOUR, DUAL_VERTEX_COUNT, DUAL_VERTEX_EDGES, EDGES

WEIGHT_SCALE = 0.99
# The published edge pairs of a grid edge sort by first point, then by direction in this
# rank: the second point's offset from the first (one step back along y, up z, up x).
_EDGE_STEP = CUBE_CORNERS[EDGES[:, 1]] - CUBE_CORNERS[EDGES[:, 0]]  # (12, 3)
_, _EDGE_RANK = torch.unique(flat_index(_EDGE_STEP, 3), return_inverse=True)  # (12,) in 0..2
_RANK_STEP = torch.zeros(3, 3, dtype=torch.long).index_put_((_EDGE_RANK,), _EDGE_STEP)  # edges of a rank agree
# A quad's dual vertices in winding order, by whether its edge's first point is outside.
_QUAD_OUTSIDE_FIRST = [0, 1, 3, 2]
_QUAD_INSIDE_FIRST = [2, 3, 1, 0]
_SPLIT_02 = [0, 1, 2, 0, 2, 3]
_SPLIT_13 = [0, 1, 3, 3, 1, 2]


Mesh = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


def extract(grid: CubeGrid) -> Mesh:
    """Vertices (V, 3) float32, triangles (F, 3) int64 and vertex attributes (V, C) or None,
    on the grid's device."""
    lookup = _Lookup(grid)
    cubes = _surface_cubes(grid, lookup)
    if cubes.index.numel() == 0:
        return _empty(grid)
    cases = _cases(cubes, grid.resolution)
    edges = _surface_edges(cubes, grid.resolution, lookup)
    vertices, attributes, vertex_gamma, vertex_at_edge = _dual_vertices(grid, cubes, cases, edges, lookup)
    return vertices, _triangles(edges, vertex_gamma, vertex_at_edge), attributes


def _rows(listed: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Where each of ``index`` is in the sorted ``listed``; -1 where it is not."""
    if listed.numel() == 0:
        return torch.full_like(index, -1)
    rows = torch.searchsorted(listed, index).clamp_(max=listed.numel() - 1)
    return torch.where(listed[rows] == index, rows, -1)


class _Lookup:
    """Rows of listed points and cubes by flat index; -1 where not listed."""

    def __init__(self, grid: CubeGrid) -> None:
        self.grid = grid

    def point_rows(self, index: torch.Tensor) -> torch.Tensor:
        return _rows(self.grid.vertex_index, index)

    @staticmethod
    def _take(values: torch.Tensor, rows: torch.Tensor, default: torch.Tensor | float) -> torch.Tensor:
        """``values[rows]`` where listed, the default elsewhere."""
        if values.shape[0] == 0:  # nothing listed: every row is -1
            taken = values.new_zeros(*rows.shape, *values.shape[1:])
        else:
            taken = values[rows.clamp(min=0)]
        listed = (rows >= 0).reshape(*rows.shape, *([1] * (taken.dim() - rows.dim())))
        return torch.where(listed, taken, default)

    def sdf(self, rows: torch.Tensor) -> torch.Tensor:
        return self._take(self.grid.vertex_sdf, rows, 1.0)

    def position(self, index: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        resolution = self.grid.resolution
        default = lattice_position(grid_coords(index, resolution + 1), resolution)
        return self._take(self.grid.vertex_position, rows, default)

    def attributes(self, rows: torch.Tensor) -> torch.Tensor:
        return self._take(self.grid.vertex_attributes, rows, 0.0)

    def weights(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Beta, alpha and gamma of cubes, normalised as FlexiCubes does."""
        rows = _rows(self.grid.cube_index, index)
        beta = torch.tanh(self._take(self.grid.beta, rows, 0.0)) * WEIGHT_SCALE + 1
        alpha = torch.tanh(self._take(self.grid.alpha, rows, 0.0)) * WEIGHT_SCALE + 1
        gamma = torch.sigmoid(self._take(self.grid.gamma, rows, 0.0)) * WEIGHT_SCALE + (1 - WEIGHT_SCALE) / 2
        return beta, alpha, gamma


@dataclass(frozen=True)
class _Cubes:
    """The surface cubes, in flat-index order."""

    index: torch.Tensor  # (K,) flat cube indices
    coords: torch.Tensor  # (K, 3)
    corners: torch.Tensor  # (K, 8) flat point indices
    inside: torch.Tensor  # (K, 8) bool


def _surface_cubes(grid: CubeGrid, lookup: _Lookup) -> _Cubes:
    resolution = grid.resolution
    corners = CUBE_CORNERS.to(grid.device)
    inside_points = grid_coords(grid.vertex_index[grid.vertex_sdf < 0], resolution + 1)
    around = inside_points[:, None, :] - corners  # the cubes having each inside point as a corner
    around = around[((around >= 0) & (around < resolution)).all(dim=-1)]
    index = torch.unique(flat_index(around, resolution))
    coords = grid_coords(index, resolution)
    corner_points = flat_index(coords[:, None, :] + corners, resolution + 1)
    inside = lookup.sdf(lookup.point_rows(corner_points)) < 0
    surface = inside.sum(dim=-1) < 8
    return _Cubes(index[surface], coords[surface], corner_points[surface], inside[surface])


def _cases(cubes: _Cubes, resolution: int) -> torch.Tensor:
    """Each cube's case, ambiguous faces resolved against the neighbour across them."""
    device = cubes.index.device
    bits = torch.arange(8, device=device)
    cases = (cubes.inside.long() << bits).sum(dim=-1)
    checked = torch.nonzero(AMBIGUOUS.to(device)[cases]).squeeze(1)
    checked_index = cubes.index[checked]
    neighbour = cubes.coords[checked] + AMBIGUOUS_NEIGHBOUR.to(device)[cases[checked]]
    within = ((neighbour >= 0) & (neighbour < resolution)).all(dim=-1)
    neighbour_index = flat_index(neighbour, resolution)
    found = _rows(checked_index, neighbour_index) >= 0
    invert = checked[within & found]
    return cases.index_put((invert,), 255 - cases[invert])


@dataclass(frozen=True)
class _Edges:
    """The grid edges of the surface cubes, and those the surface crosses."""

    of_cube_edge: torch.Tensor  # (K, 12) unique edge of each cube edge
    shared_by_four: torch.Tensor  # (E,) bool: edge of 4 surface cubes
    crossing: torch.Tensor  # (E,) bool: ends on different sides
    number: torch.Tensor  # (K, 12) crossing edge number of each cube edge, -1 if not crossing
    ends: torch.Tensor  # (S, 2) flat point indices of the crossing edges
    end_sdf: torch.Tensor  # (S, 2)
    end_rows: torch.Tensor  # (S, 2) listed point rows, -1 if not listed


def _surface_edges(cubes: _Cubes, resolution: int, lookup: _Lookup) -> _Edges:
    device = cubes.index.device
    edges, rank = EDGES.to(device), _EDGE_RANK.to(device)
    first = cubes.corners[:, edges[:, 0]]  # (K, 12)
    key = first * 3 + rank
    unique_key, of_cube_edge, count = torch.unique(key, return_inverse=True, return_counts=True)
    inside = cubes.inside[:, edges]  # (K, 12, 2)
    crossing = torch.zeros(unique_key.shape, dtype=torch.bool, device=device)
    crossing[of_cube_edge] = inside[..., 0] != inside[..., 1]
    number = torch.cumsum(crossing, dim=0) - 1
    number = torch.where(crossing, number, -1)[of_cube_edge]
    crossing_key = unique_key[crossing]
    start = crossing_key // 3
    step = flat_index(_RANK_STEP.to(device)[crossing_key % 3], resolution + 1)
    ends = torch.stack((start, start + step), dim=-1)
    end_rows = lookup.point_rows(ends)
    return _Edges(of_cube_edge, count == 4, crossing, number, ends, lookup.sdf(end_rows), end_rows)


def _crossing(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Where (M, 2, 1) ``weights`` cross zero between (M, 2, D) ``values``."""
    signed = torch.cat((weights[:, 1:], -weights[:, :1]), dim=1)
    return (values * signed).sum(dim=1) / signed.sum(dim=1)


def _dual_vertices(grid: CubeGrid, cubes: _Cubes, cases: torch.Tensor, edges: _Edges, lookup: _Lookup):
    """Dual vertex positions, attributes and gammas, and the dual vertex of each cube edge
    (flat over cube x 12)."""
    device = cases.device
    beta, alpha, gamma = lookup.weights(cubes.index)
    per_cube = DUAL_VERTEX_COUNT.to(device)[cases]
    order = torch.argsort(per_cube, stable=True)
    counts = per_cube[order]
    first_vertex = torch.cumsum(counts, dim=0) - counts
    groups = DUAL_VERTEX_EDGES.to(device)[cases[order]]  # (K, 4, 7) cube edges of each dual vertex
    used = groups >= 0
    slots = groups.shape[1]
    vertex = (first_vertex[:, None] + torch.arange(slots, device=device))[:, :, None].expand_as(groups)[used]
    cube_edge = (order[:, None, None] * 12 + groups)[used]  # flat over cube x 12
    total = int(counts.sum())

    crossing_edge = edges.number.reshape(-1)[cube_edge]
    end_alpha = alpha[:, EDGES.to(device)].reshape(-1, 2)[cube_edge]
    scaled = (edges.end_sdf[crossing_edge] * end_alpha)[..., None]
    end_position = lookup.position(edges.ends, edges.end_rows)[crossing_edge]
    edge_beta = beta.reshape(-1)[cube_edge][:, None]
    beta_sum = torch.zeros(total, 1, dtype=edge_beta.dtype, device=device).index_add_(0, vertex, edge_beta)

    def weighted_mean(values: torch.Tensor) -> torch.Tensor:
        sums = torch.zeros(total, values.shape[-1], dtype=values.dtype, device=device)
        return sums.index_add_(0, vertex, _crossing(scaled, values) * edge_beta) / beta_sum

    vertices = weighted_mean(end_position)
    attributes = None
    if grid.vertex_attributes is not None:
        attributes = weighted_mean(torch.sigmoid(lookup.attributes(edges.end_rows))[crossing_edge])
    vertex_gamma = gamma[order].repeat_interleave(counts, output_size=total)
    vertex_at_edge = torch.zeros(cubes.index.numel() * 12, dtype=torch.long, device=device)
    vertex_at_edge[cube_edge] = vertex
    return vertices, attributes, vertex_gamma, vertex_at_edge


def _triangles(edges: _Edges, vertex_gamma: torch.Tensor, vertex_at_edge: torch.Tensor) -> torch.Tensor:
    in_quad = (edges.shared_by_four & edges.crossing)[edges.of_cube_edge].reshape(-1)
    edge_number, order = torch.sort(edges.number.reshape(-1)[in_quad], stable=True)
    quads = vertex_at_edge[in_quad][order].reshape(-1, 4)
    outside_first = edges.end_sdf[edge_number.reshape(-1, 4)[:, 0], 0] > 0
    quads = torch.cat((quads[outside_first][:, _QUAD_OUTSIDE_FIRST], quads[~outside_first][:, _QUAD_INSIDE_FIRST]))
    quad_gamma = vertex_gamma[quads]
    along_02 = quad_gamma[:, 0] * quad_gamma[:, 2] > quad_gamma[:, 1] * quad_gamma[:, 3]
    return torch.where(along_02[:, None], quads[:, _SPLIT_02], quads[:, _SPLIT_13]).reshape(-1, 3)


def _empty(grid: CubeGrid) -> Mesh:
    device = grid.device
    attributes = grid.vertex_attributes
    if attributes is not None:
        attributes = torch.zeros(0, attributes.shape[-1], dtype=attributes.dtype, device=device)
    return (
        torch.zeros(0, 3, dtype=grid.vertex_position.dtype, device=device),
        torch.zeros(0, 3, dtype=torch.long, device=device),
        attributes,
    )
