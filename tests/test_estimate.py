"""The estimate of a run's time before it starts (engine/models/estimate.py): TRELLIS's
arithmetic against PyTorch's own count, a run's work and seconds from the settings, and this
machine's matrix-product rate as the model's process measures it and the add-on keeps it
(jobs/matmul_rate.py). The estimate against measured real-size runs: benchmarks/bench.py."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch

from openlrm_blender.engine.models import estimate
from openlrm_blender.engine.models.trellis import cost
from openlrm_blender.jobs import matmul_rate
from tests.conftest import REPO, SHARED
from tests.test_triposg import products_counted

TRELLIS_VECTOR = SHARED / "vectors" / "trellis-tiny"
TRIPOSG_RUN = {"steps": 50, "guidance": 7.0, "tokens": 2048, "resolution": 512}
TRELLIS_RUN = {"steps": 25, "guidance": 7.5, "latent_steps": 25, "latent_guidance": 3.0}


def test_the_estimate_imports_no_pytorch():
    """Blender's process reads it for the sidebar and must never import PyTorch."""
    code = (
        "import sys; from openlrm_blender.engine.models import estimate; from openlrm_blender.jobs import matmul_rate; "
        f"estimate.run_flop('trellis', {TRELLIS_RUN!r}); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def pairs(level) -> int:
    return sum(len(rows) for rows, _ in level.neighbours.pairs)


@torch.no_grad()
def test_trellis_arithmetic_is_pytorchs_count():
    """Each network's reckoning against PyTorch's counter on the tiny vector's object (attention
    as matrix products): the flows' calls within 1% (their time and modulation MLPs and skip
    layers left out), the image encoder exactly, the decoders within 2% (window attention left out);
    the products apart from attention (counted through the fused kernel, which hides it)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from openlrm_blender.engine.models.trellis.sparse import Level, subdivide
    from openlrm_blender.engine.models.trellis.weights import load_model

    model = load_model(TRELLIS_VECTOR)
    config, encoder = model.config, model.image_encoder.config
    with np.load(TRELLIS_VECTOR / "expected.npz") as expected:
        coords = torch.from_numpy(expected["slat_coords"][:, 1:]).long()
    voxels = Level(coords)
    tokens, _ = voxels.halved()
    counts = cost.Voxels(len(coords), pairs(voxels), len(tokens.coords), pairs(tokens))
    children = subdivide(coords, coords)[0]
    grandchildren = subdivide(children, children)[0]
    child_neighbours = tuple(pairs(Level(level)) / len(level) for level in (children, grandchildren))
    cond = torch.randn(1, cost.IMAGE_TOKENS, config.structure_flow.cond_channels)
    side, latent = config.structure_flow.resolution, torch.randn(len(coords), 8)
    # Per network: its run, the reckoning, and how near the whole and the products come to
    # PyTorch's counts (what is left out is products: a larger share of them than of the whole).
    runs = {
        "structure": (lambda: model.structure_flow(torch.randn(1, 8, side, side, side), torch.tensor([500.0]), cond),
                      cost.structure_call_flop(config.structure_flow), 0.01, 0.03),
        "latent": (lambda: model.latent_flow(latent, torch.tensor([500.0]), cond, voxels),
                   cost.latent_call_flop(config.latent_flow, counts), 0.01, 0.03),
        "encoder": (lambda: model.condition(torch.randn(1, 3, 518, 518)),
                    cost.encoder_flop(encoder.hidden_size, encoder.num_hidden_layers, encoder.mlp_ratio), 0.0, 0.0),
        "decoders": (lambda: (model.gaussian_decoder(latent, coords), model.mesh_decoder(latent, coords)),
                     cost.decoders_flop(config.gaussian_decoder, config.mesh_decoder, counts, child_neighbours), 0.02,
                     None),  # their window attention is left out: products all
    }  # fmt: skip
    for name, (run, reckoned, whole, products) in runs.items():
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            run()
        assert reckoned.total == pytest.approx(counter.get_total_flops(), rel=whole, abs=0), name
        if products is not None:
            assert reckoned.products == pytest.approx(products_counted(run), rel=products, abs=0), name


def test_a_runs_seconds_are_its_products_and_attention_each_at_its_rate():
    work = estimate.run_flop("triposg", TRIPOSG_RUN)
    speed = estimate.Speed(150.0, 130.0)
    seconds = estimate.run_seconds("triposg", TRIPOSG_RUN, speed, "float32")
    share = estimate.EFFICIENCY["triposg"]["float32"]
    assert seconds == pytest.approx((work.products / 150e9 + work.attention / 130e9) / share)
    # bfloat16 on a CPU whose products run 4x faster and whose attention does not: far less
    # than 4x sooner, as measured (docs/speed.md).
    in_bfloat16 = estimate.run_seconds("triposg", TRIPOSG_RUN, estimate.Speed(600.0, 130.0), "bfloat16")
    assert seconds / 4 < in_bfloat16 < seconds / 1.5
    assert 0.1 < work.attention / work.total < 0.4
    # The published runs take most of an hour at this machine's 200 GFLOP/s; TRELLIS's first
    # stage is a third of its work, two thirds of the steps guided.
    trellis = estimate.run_flop("trellis", TRELLIS_RUN)
    assert 40 * 60 < estimate.run_seconds("trellis", TRELLIS_RUN, estimate.Speed(200.0, 180.0), "float32") < 80 * 60
    structure = 44 * cost.structure_call_flop(estimate.TRELLIS_PUBLISHED.structure_flow)
    assert structure.total / trellis.total == pytest.approx(0.38, abs=0.03)


def test_a_draft_cuts_the_steps_and_the_grid():
    draft = estimate.draft("triposg", TRIPOSG_RUN)
    assert (draft["steps"], draft["resolution"], draft["guidance"]) == (10, 256, 7.0)
    assert estimate.run_flop("triposg", draft).total < estimate.run_flop("triposg", TRIPOSG_RUN).total / 4
    assert estimate.draft("triposg", draft) is None  # already a draft
    draft = estimate.draft("trellis", dict(TRELLIS_RUN, latent_steps=8))
    assert (draft["steps"], draft["latent_steps"]) == (10, 8)
    assert estimate.run_flop("trellis", draft).total < estimate.run_flop("trellis", TRELLIS_RUN).total / 2


def test_what_else_a_run_does_counts():
    """TripoSG coloured by TRELLIS runs TRELLIS's second stage too; three photos of one object
    in "multidiffusion" mode make three conditional calls a step, in "stochastic" mode one; a
    bigger object costs more; a local folder's own configuration is read (the tiny vector's)."""

    def work(*arguments, **keywords) -> float:
        return estimate.run_flop(*arguments, **keywords).total

    shape = work("triposg", TRIPOSG_RUN)
    assert work("triposg", dict(TRIPOSG_RUN, colours="trellis")) > shape * 1.3
    one = work("trellis", TRELLIS_RUN)
    stochastic = work("trellis", dict(TRELLIS_RUN, views=3))
    multidiffusion = work("trellis", dict(TRELLIS_RUN, views=3, view_mode="multidiffusion"))
    assert one < stochastic < one * 1.01 and multidiffusion > 1.9 * one
    bigger = cost.Voxels.typical(40_000)
    assert work("trellis", TRELLIS_RUN, voxels=bigger) > one * 1.3
    assert work("trellis", TRELLIS_RUN, TRELLIS_VECTOR) < one / 100  # a typical object still
    with pytest.raises(ValueError, match="take seconds"):
        estimate.run_flop("triposr", {})
    assert estimate.estimated("trellis") and estimate.estimated("triposg") and not estimate.estimated("openlrm")


def test_the_rate_record_holds_for_its_pytorch_and_cpu(tmp_path):
    rate = matmul_rate.Rate({"float32": 180.5, "bfloat16": None}, {"float32": 160.0, "bfloat16": None}, "2.13.0+cpu",
                            estimate.cpu_name())  # fmt: skip
    assert matmul_rate.load(tmp_path, "2.13.0+cpu") is None  # nothing kept yet
    matmul_rate.save(tmp_path / "user", rate)
    assert matmul_rate.load(tmp_path / "user", "2.13.0+cpu") == rate
    assert matmul_rate.load(tmp_path / "user", "2.14.0+cpu") is None  # another PyTorch measures anew
    other_cpu = dict(asdict(rate), cpu="Another CPU, 64 logical cores")
    (tmp_path / "user" / matmul_rate.RECORD).write_text(json.dumps(other_cpu))
    assert matmul_rate.load(tmp_path / "user", "2.13.0+cpu") is None
    (tmp_path / "user" / matmul_rate.RECORD).write_text("{not json")
    assert matmul_rate.load(tmp_path / "user", "2.13.0+cpu") is None


def test_the_model_process_times_its_products_and_the_rate_is_kept(tmp_path):
    """The worker's short timing, through the task the sidebar's button starts: float32 and,
    asked for, bfloat16 (None where the CPU only emulates it); kept on disk for the next session."""
    from openlrm_blender.engine.runtime import cpu_has_bfloat16
    from openlrm_blender.worker.client import free_models

    task = matmul_rate.Measurement(("float32", "bfloat16"), tmp_path, low_priority=False)
    try:
        task.run()
    finally:
        free_models()
    assert task.error is None and task.result.torch == torch.__version__
    assert task.result.gflops["float32"] > 1.0 and task.result.attention_gflops["float32"] > 1.0
    assert (task.result.speed("bfloat16") is None) == (not cpu_has_bfloat16())
    assert matmul_rate.load(tmp_path, torch.__version__) == task.result
