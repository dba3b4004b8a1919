"""Time the quad remesh (#27) as Generate runs it: a Blender process of its own, its voxel
remesh, QuadriFlow, the colours carried over and, textured, the new UV layout and texture.

    python benchmarks/bench_quads.py [--budgets 2000 10000 30000] [--texture-size 1024] [--json out.json]

Needs Blender as a Python module (bpy). The source is the tests' compact object (an
ellipsoid of 59,788 triangles, coloured, textured for the textured rows). Prints one line
per budget and output with the seconds of each phase, read off the process's progress.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Where each phase starts, as the remesh process reports its progress (addon.quad_remesh).
PHASES = (
    ("start Blender", 0.0),
    ("voxel remesh", 0.02),
    ("QuadriFlow", 0.1),
    ("colours", 0.6),
    ("UV and texture", 0.65),
)


def timed(mesh, budget: int, texture_size: int) -> dict:
    from openlrm_blender.addon.remesh_command import command
    from openlrm_blender.engine import CancelToken
    from openlrm_blender.jobs.quads import QuadRequest, make_quads

    seen: list[tuple[float, float]] = []
    started = time.perf_counter()
    quads = make_quads(
        mesh, QuadRequest(command(), budget, texture_size),
        lambda fraction, _: seen.append((fraction, time.perf_counter())), CancelToken(), lambda _: None,
    )  # fmt: skip
    ended = time.perf_counter()

    def reached(fraction: float) -> float:
        return next((moment for at, moment in seen if at >= fraction), ended) if fraction else started

    starts = [reached(fraction) for _, fraction in PHASES] + [ended]
    phases = {name: round(starts[i + 1] - starts[i], 2) for i, (name, _) in enumerate(PHASES)}
    if not texture_size:
        del phases["UV and texture"]
    return dict(budget=budget, texture_size=texture_size, faces=len(quads.sizes), quad_share=round(quads.quad_share, 4),
                seconds=round(ended - started, 2), phases=phases)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[2000, 10_000, 30_000])
    parser.add_argument("--texture-size", type=int, default=1024)
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args()
    import bpy  # noqa: F401  (Blender as a module: the remesh process is this Python with bpy)

    from openlrm_blender.engine import Options
    from tests.support.fake_engines import shape

    def source(textured: bool):
        options = Options(textured=textured, texture_size=args.texture_size)
        return shape(None, options, lambda *_: None, None).mesh

    rows = []
    for textured in (False, True):
        mesh = source(textured)
        for budget in args.budgets:
            row = timed(mesh, budget, args.texture_size if textured else 0)
            rows.append(row)
            phases = ", ".join(f"{name} {seconds:.2f}" for name, seconds in row["phases"].items())
            output = f"textured {args.texture_size}" if textured else "vertex colours"
            print(f"{budget:>6,} quads, {output:>15}: {row['seconds']:6.2f} s ({row['faces']:,} faces, "
                  f"{row['quad_share']:.1%} quads; {phases})", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
