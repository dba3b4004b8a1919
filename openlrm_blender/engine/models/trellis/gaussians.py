"""TRELLIS's appearance: 3D Gaussians made from the Gaussian decoder's raw outputs (the
published ``to_representation`` and its activations), and the colour they give any surface
point, which is how a mesh (TRELLIS's own, or one it paints) takes its colours.

The colour at a point (the rule our checks use): the mean of the SH0 colours of the Gaussians
whose centre lies within ``REACH`` voxels of it along every axis, weighted by each one's
opacity times exp(-d' S^-1 d / 2) (S its covariance), clamped to 0..1; where those weights
sum below ``NO_WEIGHT``, the nearest Gaussian's colour. A Gaussian's centre stays within
``voxel_size / 2`` voxels of its voxel's centre, so only the voxels round a point are looked
in, through a table of the occupied voxels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...progress import StepCallback

SH0 = 0.28209479177387814  # the degree-0 spherical harmonic: colour = 0.5 + SH0 * feature
REACH = 1.5  # voxels, along every axis
NO_WEIGHT = 1e-12
POINTS_PER_CHUNK = 1 << 18
HOME_POINTS = 1 << 21  # point-Gaussian pairs in one block of homes, per voxel offset
NEAREST_PAIRS_PER_CHUNK = 1 << 24  # point-Gaussian distances one chunk of the nearest search holds


@dataclass
class Gaussians:
    """Activated Gaussians in TRELLIS's frame (the cube [-0.5, 0.5]^3), ``count`` per voxel of
    ``coords`` in row order."""

    xyz: torch.Tensor  # (G, 3) centres
    features_dc: torch.Tensor  # (G, 1, 3) SH0 coefficients
    scaling: torch.Tensor  # (G, 3)
    rotation: torch.Tensor  # (G, 4) unit quaternions (w, x, y, z)
    opacity: torch.Tensor  # (G, 1)
    coords: torch.Tensor  # (N, 3) the voxels they came from
    resolution: int
    count: int  # Gaussians per voxel
    voxel_size: float  # how far a centre may stray from its voxel's, in voxels (both ways together)

    @classmethod
    def decode(cls, raw: torch.Tensor, coords: torch.Tensor, resolution: int, config: dict, perturbation: torch.Tensor):
        """The published activations of raw decoder outputs (N, count * 14) on (N, 3) voxels."""
        count, rates = config["num_gaussians"], config["lr"]
        parts = torch.split(raw.float(), [count * 3, count * 3, count * 3, count * 4, count], dim=1)
        offset, features, scaling, rotation, opacity = (
            part.reshape(len(raw), count, -1) * rates[name]
            for part, name in zip(parts, ("_xyz", "_features_dc", "_scaling", "_rotation", "_opacity"), strict=True)
        )
        if config.get("perturb_offset", False):
            offset = offset + perturbation.float()
        offset = torch.tanh(offset) / resolution * 0.5 * config["voxel_size"]
        xyz = ((coords.float() + 0.5) / resolution)[:, None] + offset
        if config["scaling_activation"] != "softplus":
            raise ValueError(f"Gaussian scales by {config['scaling_activation']!r}: only softplus is published")
        bias = torch.tensor(config["scaling_bias"])
        scale_bias = bias + torch.log(-torch.expm1(-bias))  # softplus's inverse
        opacity_bias = torch.log(torch.tensor(config["opacity_bias"]) / (1 - torch.tensor(config["opacity_bias"])))
        scales = F.softplus(scaling.reshape(-1, 3) + scale_bias.to(raw.device))
        quaternion = rotation.reshape(-1, 4) + torch.tensor([1.0, 0.0, 0.0, 0.0], device=raw.device)
        return cls(
            xyz=xyz.reshape(-1, 3) - 0.5,
            features_dc=features.reshape(-1, 1, 3),
            scaling=torch.sqrt(torch.square(scales) + config["3d_filter_kernel_size"] ** 2),
            rotation=F.normalize(quaternion),
            opacity=torch.sigmoid(opacity.reshape(-1, 1) + opacity_bias.to(raw.device)),
            coords=coords,
            resolution=resolution,
            count=count,
            voxel_size=float(config["voxel_size"]),
        )

    @property
    def colour(self) -> torch.Tensor:
        """(G, 3) each Gaussian's colour, as its SH0 term gives it."""
        return 0.5 + SH0 * self.features_dc[:, 0]

    def colours(self, points: np.ndarray, step: StepCallback) -> np.ndarray:
        """(V, 3) float32 in [0, 1]: the colour at (V, 3) points of TRELLIS's frame, by the rule above."""
        device = self.xyz.device
        shape = _Shapes.of(self)
        out = np.empty((len(points), 3), dtype=np.float32)
        for start in range(0, len(points), POINTS_PER_CHUNK):
            chunk = torch.from_numpy(np.ascontiguousarray(points[start : start + POINTS_PER_CHUNK])).float()
            out[start : start + len(chunk)] = shape.colours(chunk.to(device)).cpu().numpy()
            step(min(1.0, (start + len(chunk)) / max(len(points), 1)), f"colours of {len(points):,} points")
        return out


@dataclass
class _Shapes:
    """What the colour rule reads of every Gaussian, laid out once in one row each (its centre,
    the six numbers of its inverse covariance, its opacity and colour), and a table from voxel
    to row.

    Points are grouped by the voxel nearest them (their home); a home's points meet the 32
    Gaussians of each occupied voxel within reach of it together, as a block, so each
    Gaussian is read once per home rather than once per point."""

    gaussians: Gaussians
    packed: torch.Tensor  # (G, 13): centre (3), S^-1's xx yy zz xy xz yz, opacity, colour (3)
    table: torch.Tensor  # (R + 2P)^3 rows, -1 where no voxel; P voxels of padding round the grid
    padding: int

    @classmethod
    def of(cls, gaussians: Gaussians) -> _Shapes:
        w, x, y, z = gaussians.rotation.unbind(dim=1)
        rotation = torch.stack([
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ], dim=1).reshape(-1, 3, 3)  # fmt: skip
        whitening = rotation.transpose(1, 2) / gaussians.scaling[:, :, None]  # diag(1/s) R': S^-1 = W' W
        inverse = whitening.transpose(1, 2) @ whitening
        quadratic = inverse[:, [0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]]
        packed = torch.cat([gaussians.xyz, quadratic, gaussians.opacity, gaussians.colour], dim=1).contiguous()
        padding = math.ceil(REACH + gaussians.voxel_size / 2) + 2
        side = gaussians.resolution + 2 * padding
        table = torch.full((side**3,), -1, dtype=torch.long, device=gaussians.xyz.device)
        cells = gaussians.coords.long() + padding
        table[(cells[:, 0] * side + cells[:, 1]) * side + cells[:, 2]] = torch.arange(len(cells), device=cells.device)
        return cls(gaussians, packed, table, padding)

    def colours(self, points: torch.Tensor) -> torch.Tensor:
        gaussians, resolution, count = self.gaussians, self.gaussians.resolution, self.gaussians.count
        device = points.device
        side = resolution + 2 * self.padding
        # A point's home voxel is within half a voxel of it; a Gaussian reaching the point
        # strays at most voxel_size / 2 from its voxel: so its voxel is within ``span`` of home.
        span = math.floor(REACH + gaussians.voxel_size / 2 + 0.5)
        home = torch.round((points + 0.5) * resolution - 0.5).long().clamp(-span, resolution - 1 + span)
        homes, slot = torch.unique(home, dim=0, return_inverse=True)
        order = torch.argsort(slot)
        counts = torch.bincount(slot, minlength=len(homes))
        starts = torch.cumsum(counts, 0) - counts
        weight_sum = torch.zeros(len(points), device=device)
        colour_sum = torch.zeros(len(points), 3, device=device)
        colours = gaussians.colour
        reach = REACH / resolution
        members = torch.arange(count, device=device)
        offsets = torch.arange(-span, span + 1, device=device)
        offsets = torch.stack(torch.meshgrid(offsets, offsets, offsets, indexing="ij"), dim=-1).reshape(-1, 3)
        by_count = torch.argsort(counts, descending=True)
        first = 0
        while first < len(by_count):  # homes of similar point counts together, padded to the largest
            most = int(counts[by_count[first]])
            group = by_count[first : first + max(1, HOME_POINTS // (most * count))]
            first += len(group)
            slots = torch.arange(most, device=device)
            valid = slots[None] < counts[group, None]  # (H, most)
            rows = order[torch.where(valid, starts[group, None] + slots[None], 0)]  # each home's points
            home_points = points[rows]  # (H, most, 3)
            px, py, pz = (home_points[..., axis, None] for axis in range(3))  # (H, most, 1) each
            for offset in offsets:
                cells = (homes[group] + offset + self.padding).clamp(0, side - 1)
                voxel = self.table[(cells[:, 0] * side + cells[:, 1]) * side + cells[:, 2]]
                present = torch.nonzero(voxel >= 0).squeeze(1)
                if not len(present):
                    continue
                near = (voxel[present, None] * count + members).reshape(-1)
                g = self.packed[near].reshape(len(present), 1, count, -1).unbind(dim=-1)  # (V, 1, count) each
                dx, dy, dz = px[present] - g[0], py[present] - g[1], pz[present] - g[2]  # (V, most, count)
                form = g[3] * dx * dx + g[4] * dy * dy + g[5] * dz * dz
                form = form + 2 * (g[6] * dx * dy + g[7] * dx * dz + g[8] * dy * dz)
                inside = (dx.abs() <= reach) & (dy.abs() <= reach) & (dz.abs() <= reach) & valid[present, :, None]
                weight = torch.where(inside, g[9] * torch.exp(-0.5 * form), 0.0)
                target = rows[present].reshape(-1)
                weight_sum.index_add_(0, target, weight.sum(dim=-1).reshape(-1))
                colour = torch.stack(g[10:13], dim=-1)[:, 0]  # (V, count, 3)
                colour_sum.index_add_(0, target, torch.bmm(weight, colour).reshape(-1, 3))
        result = colour_sum / weight_sum.clamp(min=NO_WEIGHT)[:, None]
        lonely = torch.nonzero(weight_sum < NO_WEIGHT).squeeze(1)
        if len(lonely):
            result[lonely] = colours[self.nearest(points[lonely])]
        return result.clamp(0.0, 1.0)

    def nearest(self, points: torch.Tensor) -> torch.Tensor:
        """The row of the Gaussian whose centre is nearest each point (all of them searched)."""
        centres = self.gaussians.xyz
        per_chunk = max(1, NEAREST_PAIRS_PER_CHUNK // max(len(centres), 1))
        return torch.cat([
            torch.cdist(points[start : start + per_chunk], centres).argmin(dim=1)
            for start in range(0, len(points), per_chunk)
        ])  # fmt: skip
