"""Marching cubes in PyTorch, giving PyMCubes' mesh exactly: the same vertices in the same
order, the same triangles in the same order and winding, on any device with float64 (the
CPU, CUDA; MPS has none, so there the grid is meshed on the CPU).

PyMCubes (the published recipe's marching cubes) has no wheel for Python 3.13, which
Blender 5.1 and newer run, and it brings SciPy along; this needs PyTorch alone, and on a
GPU the grid never leaves it. Its conventions (``marching_cubes_tables``), and:

- The level is taken as a float32 (PyMCubes' argument is a C float), the grid's values
  as they are; vertices are interpolated in float64.
- Cells are visited in C order, and the triangles are the case table's, cell by cell.
- A triangle's corner finds its edge's vertex in the edge's owner, by one sorted search
  among the crossed cells.
"""

from __future__ import annotations

import numpy as np
import torch

from .marching_cubes_tables import (
    CORNERS,
    CROSSED,
    EDGE_AXIS,
    EDGE_ORDER,
    EDGE_STEP,
    EDGES,
    MAKES_EDGE,
    OWNER_EDGE,
    OWNER_STEP,
    TRIANGLE_COUNTS,
    TRIANGLES,
)
from .tensors import compute_device, one_thread, tensor

_TABLES: dict[torch.device, dict[str, torch.Tensor]] = {}


def _tables(device: torch.device) -> dict[str, torch.Tensor]:
    """``marching_cubes_tables``' tables as tensors on ``device``, made once per device; those
    read per (first bits, edge) flat, first * 12 + edge."""
    if device not in _TABLES:
        tables = dict(
            edge_order=EDGE_ORDER, owner_step=OWNER_STEP.reshape(-1, 3), owner_edge=OWNER_EDGE.reshape(-1),
            makes_edge=MAKES_EDGE, crossed=CROSSED, triangles=TRIANGLES.reshape(-1, 3),
            triangle_counts=TRIANGLE_COUNTS, edge_step=EDGE_STEP,
            edge_axis=EDGE_AXIS, edge_ends=EDGES, corners=CORNERS,
        )  # fmt: skip
        _TABLES[device] = {
            name: torch.from_numpy(np.ascontiguousarray(table)).to(device) for name, table in tables.items()
        }
    return _TABLES[device]


def _cases(values: np.ndarray | torch.Tensor, level: float) -> np.ndarray | torch.Tensor:
    """Each cell's case (uint8), for an array or a tensor alike: bit m set where corner m is
    at or below the level. Corners 4-7 are corners 0-3 one step up, so each point is paired
    with the one above it first (bits 0 and 4): five passes over the grid instead of eight."""
    below = values <= level
    below = below.view(np.uint8) if isinstance(below, np.ndarray) else below.view(torch.uint8)
    column = below[:, :, :-1] | (below[:, :, 1:] << 4)
    nx, ny = values.shape[0] - 1, values.shape[1] - 1
    cases = column[:nx, :ny] | (column[1:, :ny] << 1)
    for bit, (x, y, _) in enumerate(CORNERS[2:4], start=2):
        cases |= column[x : x + nx, y : y + ny] << bit
    return cases


def _crossed_cells(values: torch.Tensor, level: float, through_numpy: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The cells the surface crosses (flat indices of the cells' grid, in C order) and their
    cases. These are the two passes over the whole grid: on the CPU they go through NumPy
    (``through_numpy``), whose comparisons and ``flatnonzero`` there are 3 to 7 times
    PyTorch's (measured at 256^3), on the same memory."""
    if through_numpy:
        cases = _cases(values.numpy(), level).reshape(-1)
        active = np.flatnonzero((cases + np.uint8(1)) > 1)  # neither 0 nor 255
        return torch.from_numpy(active), torch.from_numpy(cases[active].astype(np.int64))
    cases = _cases(values, level).view(-1)
    active = torch.nonzero((cases + 1) > 1).squeeze(1)
    return active, cases[active].long()


@one_thread
def marching_cubes(values: np.ndarray | torch.Tensor, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Surface where ``values`` (a 3D grid) crosses ``level``: vertices (V, 3) float64 in
    index units and triangles (F, 3) int64, as PyMCubes' ``marching_cubes`` gives them. A
    tensor is meshed where it lies (MPS's on the CPU), and only the mesh comes to the host."""
    if values.ndim != 3:
        raise ValueError(f"marching cubes needs a 3D grid, got shape {tuple(values.shape)}")
    values = tensor(values)
    vertices, faces = mesh(values.to(compute_device(values.device)), level)
    return vertices.cpu().numpy(), faces.cpu().numpy()


def mesh(values: torch.Tensor, level: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``marching_cubes`` of a tensor, on its device (one with float64)."""
    device = values.device
    if min(values.shape) < 2:
        empty = torch.zeros((0, 3), dtype=torch.int64, device=device)
        return empty.double(), empty
    tables = _tables(device)
    level = float(np.float32(level))
    active, case = _crossed_cells(values, level, through_numpy=device.type == "cpu")
    active, case = active.to(device), case.to(device)
    ny, nz = values.shape[1] - 1, values.shape[2] - 1
    cell = torch.stack([active // (ny * nz), active // nz % ny, active % nz], dim=1)  # (M, 3)
    first = (cell[:, 0] == 0) + (cell[:, 1] == 0) * 2 + (cell[:, 2] == 0) * 4  # which coordinates are 0, as bits

    crossed = tables["crossed"].index_select(0, case)  # (M, 12)
    makes = tables["makes_edge"].index_select(0, first)
    made = (crossed & makes).index_select(1, tables["edge_order"])  # row-major order is the making order
    rows, slots = _divmod(torch.nonzero(made.view(-1)).squeeze(1), 12)
    made_edges = tables["edge_order"].index_select(0, slots)
    vertex_of_edge = torch.full((len(case) * 12,), -1, dtype=torch.int64, device=device)  # by row * 12 + edge
    vertex_of_edge[rows * 12 + made_edges] = torch.arange(len(rows), device=device)

    # Each crossed edge a neighbour made takes the vertex from its owner, found among the crossed cells.
    borrowed = torch.nonzero((crossed & ~makes).view(-1)).squeeze(1)  # row * 12 + edge
    borrower = borrowed // 12
    by_first = first.index_select(0, borrower) * 12 + (borrowed - borrower * 12)
    steps = tables["owner_step"]  # (96, 3), by first * 12 + edge: as flat steps among this grid's cells
    flat_steps = (steps[:, 0] * ny + steps[:, 1]) * nz + steps[:, 2]
    owner = torch.searchsorted(active, active.index_select(0, borrower) + flat_steps.index_select(0, by_first))
    vertex_of_edge[borrowed] = vertex_of_edge.index_select(
        0, owner * 12 + tables["owner_edge"].index_select(0, by_first)
    )

    # Each cell's triangles, cell by cell: triangle t of the cell's list is the case's t-th.
    counts = tables["triangle_counts"].index_select(0, case)
    triangle_of = torch.repeat_interleave(torch.arange(len(case), device=device), counts)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(triangle_of), device=device) - starts.index_select(0, triangle_of)
    edges = tables["triangles"].index_select(0, case.index_select(0, triangle_of) * 5 + slot)  # (F, 3)
    faces = vertex_of_edge.index_select(0, (triangle_of[:, None] * 12 + edges).view(-1)).view(-1, 3)
    vertices = _interpolate(values, level, cell.index_select(0, rows), made_edges, tables)
    return vertices, faces


def _divmod(flat: torch.Tensor, columns: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and columns of flat indices into a table of ``columns`` columns."""
    rows = flat // columns
    return rows, flat - rows * columns


def _interpolate(
    values: torch.Tensor, level: float, cell: torch.Tensor, edges: torch.Tensor, tables: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Where the level crosses each cell's edge, computed as PyMCubes computes it:
    ``(x2 - x1) * (level - f1) / (f2 - f1) + x1`` along the edge, in float64. The grid's
    values are read where they lie (a box cut from a larger grid is not copied)."""
    ends = tables["edge_ends"].index_select(0, edges)
    start = cell + tables["corners"].index_select(0, ends[:, 0])
    end = cell + tables["corners"].index_select(0, ends[:, 1])
    f1, f2 = (values[point[:, 0], point[:, 1], point[:, 2]].double() for point in (start, end))
    vertices = start.double()
    axis = tables["edge_axis"].index_select(0, edges)[:, None]
    moved = tables["edge_step"].index_select(0, edges) * (level - f1) / (f2 - f1) + vertices.gather(1, axis)[:, 0]
    return vertices.scatter_(1, axis, moved[:, None])
