"""The numbers FlexiCubes runs on, from the published tables (NVIDIA's FlexiCubes, Apache-2.0,
``tables.py`` of MaxtirError/FlexiCubes at 815e075, the version TRELLIS pins), held here in
a compact form of our own; tests/test_flexicubes.py checks the mesh they make against the
published code's.

A cube's corners are numbered x + 2y + 4z (``models.cube_grid.CUBE_CORNERS``); its case sets
bit c where corner c is inside (signed distance below 0). Its 12 edges are numbered as in
``EDGES``, each a pair of corners in the order FlexiCubes interpolates them.
"""

from __future__ import annotations

import torch

EDGES = torch.tensor([[0, 1], [1, 5], [4, 5], [0, 4], [2, 3], [3, 7], [6, 7], [2, 6], [2, 0], [3, 1], [7, 5], [6, 4]])

# The dual vertices of each case, in the order they are made: for each, the cube edges (in
# hexadecimal) whose surface crossings it is placed among. The published dmc_table.
_DUAL_VERTICES = """
;038;019;1389;478;0347;019 478;13479
459;038 459;0145;13458;5789;03579;01578;1357
23b;028b;019 23b;1289b;478 23b;0247b;019 478 23b;12479b
459 23b;028b 459;0145 23b;12458b;5789 23b;02579b;01578 23b;1257b
12a;038 12a;029a;2389a;478 12a;0347 12a;029a 478;23479a
459 12a;038 459 12a;0245a;23458a;5789 12a;03579 12a;02578a;2357a
13ab;018ab;039ab;89ab;478 13ab;0147ab;039ab 478;479ab
459 13ab;018ab 459;0345ab;458ab;5789 13ab;01579ab;03578ab;57ab
67b;038 67b;019 67b;1389 67b;468b;0346b;019 468b;13469b
459 67b;038 459 67b;0145 67b;13458 67b;5689b;03569b;01568b;1356b
2367;02678;019 2367;126789;23468;0246;019 23468;12469
459 2367;02678 459;0145 2367;1245678;235689;02569;0123568;1256
12a 67b;038 12a 67b;029a 67b;2389a 67b;468b 12a;0346b 12a;029a 468b;23469ab
459 12a 67b;038 459 12a 67b;0245a 67b;23458a 67b;5689b 12a;03569b 12a;02568ab;2356ab
1367a;01678a;03679a;6789a;13468a;0146a;034689a;469a
459 1367a;01678a 459;034567a;45678a;135689a;01569a;038 56a;56a
56a;038 56a;019 56a;1389 56a;478 56a;0347 56a;019 478 56a;13479 56a
469a;038 469a;0146a;13468a;6789a;03679a;01678a;1367a
23b 56a;028b 56a;019 23b 56a;1289b 56a;478 23b 56a;0247b 56a;019 478 23b 56a;12479b 56a
469a 23b;028b 469a;0146a 23b;12468ab;6789a 23b;02679ab;01678a 23b;1267ab
1256;038 1256;02569;235689;478 1256;0347 1256;02569 478;2345679
12469;038 12469;0246;23468;126789;0123679;02678;2367
1356b;01568b;03569b;5689b;478 1356b;014567b;03569b 478;45679b
13469b;014689b;0346b;468b;136789b;019 67b;03678b;67b
57ab;038 57ab;019 57ab;1389 57ab;458ab;0345ab;019 458ab;13459ab
479ab;038 479ab;0147ab;13478ab;89ab;039ab;018ab;13ab
2357a;02578a;019 2357a;125789a;23458a;0245a;019 23458a;12459a
23479a;024789a;012347a;478 12a;2389a;029a;01238a;12a
1257b;038 1257b;02579b;235789b;12458b;012345b;024589b;459 23b
12479b;038 12479b;0247b;23478b;1289b;01239b;028b;23b
1357;01578;03579;5789;13458;0145;034589;459
13479;014789;0347;478;1389;019;038;
"""

# Cases with a face whose two diagonal corners are inside and two outside, shared with the
# neighbouring cube in the direction given: when that neighbour is such a case too, the
# face is resolved the other way in both, and the cube takes the complementary case's
# dual vertices (255 - case). The published check_table.
_AMBIGUOUS_FACE = """
61+x 62-x 91+y 94-y 103+z 110+z 111+z 118-z 122+y 123+y 124+x 125+x
155+z 157+z 159+z 167+y 173-y 181+y 183+y 185-z 188-x 190-x 199+x 203-x
211+x 215+x 217-z 218-y 222-y 227-x 229-y 230-z 235-x 237-y 246-z 249-z
"""

MAX_DUAL_VERTICES = 4
MAX_GROUP_EDGES = 7


def _dual_vertex_table() -> torch.Tensor:
    table = torch.full((256, MAX_DUAL_VERTICES, MAX_GROUP_EDGES), -1, dtype=torch.long)
    cases = [case for line in _DUAL_VERTICES.strip().splitlines() for case in line.split(";")]
    for case, groups in enumerate(cases):
        for slot, edges in enumerate(groups.split()):
            table[case, slot, : len(edges)] = torch.tensor([int(edge, 16) for edge in edges])
    return table


def _neighbour_table() -> tuple[torch.Tensor, torch.Tensor]:
    ambiguous = torch.zeros(256, dtype=torch.bool)
    direction = torch.zeros(256, 3, dtype=torch.long)
    for entry in _AMBIGUOUS_FACE.split():
        case, sign, axis = int(entry[:-2]), entry[-2], entry[-1]
        ambiguous[case] = True
        direction[case, "xyz".index(axis)] = 1 if sign == "+" else -1
    return ambiguous, direction


DUAL_VERTEX_EDGES = _dual_vertex_table()  # (256, 4, 7) edge numbers, -1 past a vertex's last
DUAL_VERTEX_COUNT = (DUAL_VERTEX_EDGES[:, :, 0] >= 0).sum(dim=1)  # (256,)
AMBIGUOUS, AMBIGUOUS_NEIGHBOUR = _neighbour_table()  # (256,) bool, (256, 3) grid step to the neighbour
