"""Marching cubes in NumPy, giving PyMCubes' mesh exactly: the same vertices in the same
order, the same triangles in the same order and winding.

PyMCubes (the published recipe's marching cubes) has no wheel for Python 3.13, which
Blender 5.1 and newer run, and it brings SciPy along; this needs NumPy alone. Its
conventions (version 0.1.6), reproduced here:

- The level is taken as a float32 (PyMCubes' argument is a C float), the grid's values
  as they are.
- Cell (i, j, k) has corners 0-3 at z = k going round (0,0), (1,0), (1,1), (0,1) in
  (x, y), and corners 4-7 above them at z = k + 1. Corner m sets bit m of the cell's case
  when its value is at or below the level (outside).
- Edges 0-3 join corners 0-1, 1-2, 2-3, 3-0; edges 4-7 join 4-5, 5-6, 6-7, 7-4; edges
  8-11 are the vertical edges above corners 0-3. A vertex is interpolated from the edge's
  first corner to its second, in float64.
- Cells are visited in C order. Each grid edge the surface crosses gets one vertex, made
  by the first cell that has the edge, in the order of ``EDGE_ORDER`` within the cell.
  The triangles are the case table's, cell by cell.
"""

from __future__ import annotations

import numpy as np

# Corner m of a cell as an (x, y, z) offset.
CORNERS = np.array([(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)])
# The two corners of each edge, in the direction its vertex is interpolated.
EDGES = np.array([(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)])
# The order in which a cell makes the vertices of its edges.
EDGE_ORDER = np.array([6, 5, 10, 0, 1, 2, 3, 4, 7, 8, 9, 11])
# Each edge's low grid point (a cell offset) and axis.
EDGE_START = np.minimum(CORNERS[EDGES[:, 0]], CORNERS[EDGES[:, 1]])
EDGE_AXIS = np.argmax(CORNERS[EDGES[:, 0]] != CORNERS[EDGES[:, 1]], axis=1)
# A cell is the first to have an edge when no earlier cell shares it: the edge lies on the
# cell's low side along an axis only where the cell is the grid's first along that axis.
EDGE_LOW_SIDES = (EDGE_START == 0) & (np.arange(3) != EDGE_AXIS[:, None])  # (12, 3)
# Whether a cell makes each edge, by which of its coordinates are 0 (bit a for axis a).
_NOT_FIRST_ALONG = (np.arange(8)[:, None] >> np.arange(3)) & 1 == 0  # (8, 3)
MAKES_EDGE = ~(EDGE_LOW_SIDES & _NOT_FIRST_ALONG[:, None, :]).any(axis=2)  # (8, 12)

# Triangles of each of the 256 cases: edge numbers in hexadecimal, three per triangle.
# The classic table (Lorensen and Cline's cases as Bourke tabulated them), read off
# PyMCubes cell by cell; tests/test_marching_cubes.py checks it against PyMCubes.
_CASES = (
    "",
    "083",
    "019",
    "183981",
    "12a",
    "08312a",
    "92a029",
    "2832a8a98",
    "3b2",
    "0b28b0",
    "19023b",
    "1b219b98b",
    "3a1ba3",
    "0a108a8ba",
    "3903b9ba9",
    "98aa8b",
    "478",
    "430734",
    "019847",
    "419471731",
    "12a847",
    "34730412a",
    "92a902847",
    "2a9297273794",
    "8473b2",
    "b47b24204",
    "90184723b",
    "47b94b9b2921",
    "3a13ba784",
    "1ba14b1047b4",
    "47890b9bab03",
    "47b4b99ba",
    "954",
    "954083",
    "054150",
    "854835315",
    "12a954",
    "30812a495",
    "52a542402",
    "2a5325354348",
    "95423b",
    "0b208b495",
    "05401523b",
    "21525828b485",
    "a3ba13954",
    "4950818a18ba",
    "54050b5bab03",
    "54858aa8b",
    "978579",
    "930953573",
    "078017157",
    "153357",
    "978957a12",
    "a12950530573",
    "802825857a52",
    "2a5253357",
    "7957893b2",
    "95797292027b",
    "23b018178157",
    "b21b17715",
    "958857a13a3b",
    "5705097b010aba0",
    "ba0b03a50807570",
    "ba57b5",
    "a65",
    "0835a6",
    "9015a6",
    "1831985a6",
    "165261",
    "165126308",
    "965906026",
    "598582526328",
    "23ba65",
    "b08b20a65",
    "01923b5a6",
    "5a61929b298b",
    "63b653513",
    "08b0b50515b6",
    "3b6036065059",
    "65969bb98",
    "5a6478",
    "43047365a",
    "1905a6847",
    "a65197173794",
    "612651478",
    "125526304347",
    "847905065026",
    "739794329596269",
    "3b2784a65",
    "5a647242027b",
    "01947823b5a6",
    "9219b294b7b45a6",
    "8473b53515b6",
    "51b5b610b7b404b",
    "059065036b63847",
    "65969b4797b9",
    "a4964a",
    "4a649a083",
    "a01a60640",
    "83181686461a",
    "149124264",
    "308129249264",
    "024426",
    "832824426",
    "a49a64b23",
    "08228b49a4a6",
    "3b201606461a",
    "64161a48121b8b1",
    "964936913b63",
    "8b1810b61914641",
    "3b6360064",
    "648b68",
    "7a678a89a",
    "0730a709a67a",
    "a671a7178180",
    "a67a71173",
    "126168189867",
    "269291679093739",
    "780706602",
    "732672",
    "23ba68a89867",
    "20727b09767a9a7",
    "1801781a767a23b",
    "b21b17a61671",
    "896867916b63136",
    "091b67",
    "7807063b0b60",
    "7b6",
    "76b",
    "308b76",
    "019b76",
    "819831b76",
    "a126b7",
    "12a3086b7",
    "2902a96b7",
    "6b72a3a83a98",
    "723627",
    "708760620",
    "276237019",
    "162186198876",
    "a76a17137",
    "a7617a187108",
    "03707a0a96a7",
    "76a7a88a9",
    "684b86",
    "36b306046",
    "86b846901",
    "946963931b36",
    "6846b82a1",
    "12a30b06b046",
    "4b846b0292a9",
    "a93a32943b36463",
    "823842462",
    "042462",
    "190234246438",
    "194142246",
    "8138618466a1",
    "a10a06604",
    "4634386a3039a93",
    "a946a4",
    "49576b",
    "083495b76",
    "50154076b",
    "b76834354315",
    "954a1276b",
    "6b712a083495",
    "76b54a42a402",
    "348354325a52b76",
    "723762549",
    "954086062687",
    "362376150540",
    "628687218485158",
    "954a16176137",
    "16a176107870954",
    "40a4a503a6a737a",
    "76a7a854a48a",
    "6956b9b89",
    "36b063056095",
    "0b805b01556b",
    "6b3635531",
    "12a95b9b8b56",
    "0b306b09656912a",
    "b85b56805a52025",
    "6b36352a3a53",
    "589528562382",
    "956960062",
    "158180568382628",
    "156216",
    "13616a386569896",
    "a10a06950560",
    "03856a",
    "a56",
    "b5a75b",
    "b5ab75830",
    "5b75ab190",
    "a75ab7981831",
    "b12b71751",
    "08312717572b",
    "9759279022b7",
    "75272b592328982",
    "25a235375",
    "820852875a25",
    "9015a35373a2",
    "982921872a25752",
    "135375",
    "087071175",
    "903935537",
    "987597",
    "5845a8ab8",
    "5045b05abb30",
    "01984a8aba45",
    "ab4a45b34941314",
    "2512852b8458",
    "04b0b345b2b151b",
    "0250592b5458b85",
    "9452b3",
    "25a352345384",
    "5a2524420",
    "3a235a385458019",
    "5a2524192942",
    "845853351",
    "045105",
    "845853905035",
    "945",
    "4b749b9ab",
    "0834979b79ab",
    "1ab1b414074b",
    "3143481a474bab4",
    "4b79b492b912",
    "9749b791b2b1083",
    "b74b42240",
    "b74b42834324",
    "29a279237749",
    "9a7974a27870207",
    "37a3a274a1a040a",
    "1a2874",
    "491417713",
    "491417081871",
    "403743",
    "487",
    "9a8ab8",
    "30939bb9a",
    "01a0a88ab",
    "31ab3a",
    "12b1b99b8",
    "30939b1292b9",
    "02b80b",
    "32b",
    "23828aa89",
    "9a2092",
    "23828a0181a8",
    "1a2",
    "138918",
    "091",
    "038",
    "",
)
TRIANGLES = np.full((256, 15), -1, dtype=np.int64)
for _case, _edges in enumerate(_CASES):
    TRIANGLES[_case, : len(_edges)] = [int(edge, 16) for edge in _edges]
TRIANGLE_COUNTS = np.array([len(edges) // 3 for edges in _CASES])
# Which of its 12 edges the surface crosses, for each case.
_CORNER_BITS = (np.arange(256)[:, None] >> np.arange(8)) & 1
CROSSED = _CORNER_BITS[:, EDGES[:, 0]] != _CORNER_BITS[:, EDGES[:, 1]]


def _cases(values: np.ndarray, level: float) -> np.ndarray:
    """Each cell's case: bit m set where corner m is at or below the level. Corners 4-7 are
    corners 0-3 one step up, so each point is paired with the one above it first (bits 0
    and 4): five passes over the grid instead of eight."""
    below = (values <= level).view(np.uint8)
    column = below[:, :, :-1] | (below[:, :, 1:] << 4)
    nx, ny = values.shape[0] - 1, values.shape[1] - 1
    cases = column[:nx, :ny].copy()
    for bit, (x, y, _) in enumerate(CORNERS[1:4], start=1):
        cases |= column[x : x + nx, y : y + ny] << bit
    return cases


def marching_cubes(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Surface where ``values`` (a 3D grid) crosses ``level``: vertices (V, 3) float64 in
    index units and triangles (F, 3) int64, as PyMCubes' ``marching_cubes`` gives them."""
    if values.ndim != 3:
        raise ValueError(f"marching cubes needs a 3D grid, got shape {values.shape}")
    if min(values.shape) < 2:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    level = float(np.float32(level))
    cases = _cases(values, level)
    active = np.flatnonzero((cases != 0) & (cases != 255))
    case = cases.ravel()[active].astype(np.int64)
    cell = np.stack(np.unravel_index(active, cases.shape), axis=1)  # (M, 3)

    crossed = CROSSED[case]  # (M, 12)
    made = (crossed & MAKES_EDGE[(cell == 0) @ (1, 2, 4)])[:, EDGE_ORDER]  # row-major order is the making order
    rows, slots = np.divmod(np.flatnonzero(made), 12)  # the same pairs as np.nonzero, 4x faster
    made_edges = EDGE_ORDER[slots]
    strides = np.array([values.shape[1] * values.shape[2], values.shape[2], 1])  # of a flat C-order index
    corner = cell @ strides  # each cell's first grid point, flat
    vertices = _interpolate(values.reshape(-1), strides, level, cell[rows], corner[rows], made_edges)

    # Each crossed edge of each cell finds its vertex through the grid edge's key.
    made_keys = _edge_keys(strides, corner[rows], made_edges)
    by_key = np.argsort(made_keys)
    vertex_of_edge = np.full(crossed.shape, -1, dtype=np.int64)
    cells, edges = np.divmod(np.flatnonzero(crossed), 12)
    keys = _edge_keys(strides, corner[cells], edges)
    vertex_of_edge[cells, edges] = by_key[np.searchsorted(made_keys[by_key], keys)]

    counts = TRIANGLE_COUNTS[case] * 3
    owner = np.repeat(np.arange(len(case)), counts)
    slot = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    faces = vertex_of_edge[owner, TRIANGLES[case[owner], slot]].reshape(-1, 3)
    return vertices, faces


def _edge_keys(strides: np.ndarray, corner: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """One number per grid edge: its low grid point's flat index and its axis, from its
    cell's first grid point (flat, with the grid's ``strides``) and the edge's number in the cell."""
    return (corner + (EDGE_START @ strides)[edges]) * 3 + EDGE_AXIS[edges]


def _interpolate(
    flat_values: np.ndarray, strides: np.ndarray, level: float, cell: np.ndarray, corner: np.ndarray, edges: np.ndarray
) -> np.ndarray:
    """Where the level crosses each cell's edge, computed as PyMCubes computes it:
    ``(x2 - x1) * (level - f1) / (f2 - f1) + x1`` along the edge, in float64. The values
    are read by flat index, from each cell's first grid point ``corner``."""
    start = cell + CORNERS[EDGES[edges, 0]]
    end = cell + CORNERS[EDGES[edges, 1]]
    corner_offsets = CORNERS @ strides  # each cell corner's flat offset from the cell's first point
    f1 = flat_values[corner + corner_offsets[EDGES[edges, 0]]].astype(np.float64)
    f2 = flat_values[corner + corner_offsets[EDGES[edges, 1]]].astype(np.float64)
    along = np.arange(len(edges)), EDGE_AXIS[edges]
    vertices = start.astype(np.float64)
    step = (end - start)[along].astype(np.float64)
    vertices[along] = step * (level - f1) / (f2 - f1) + vertices[along]
    return vertices
