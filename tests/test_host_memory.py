"""The allocator policy of a process that runs models: large freed blocks reused during a
run (no page faults paid again), handed back to the system between runs."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

HUGE_PAGES = Path("/sys/kernel/mm/transparent_hugepage/enabled")

pytestmark = [
    pytest.mark.skipif(
        platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="the policy is glibc's"
    ),
    pytest.mark.skipif(  # every fresh map then faults in 2 MB pages: 50 faults per block, not 25,600
        HUGE_PAGES.exists() and "[always]" in HUGE_PAGES.read_text(), reason="transparent huge pages are always on"
    ),
]

# Transformer layers' lives in miniature: a 100 MB activation made, written, freed, forty times.
PROBE = """
import json, resource, sys
import torch
from openlrm_blender.engine import host_memory

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def resident_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20

took = host_memory.keep_freed_blocks() if sys.argv[1] == "keep" else None
before = faults()
for _ in range(40):
    activation = torch.empty(25 * 2**20, dtype=torch.float32)
    activation.fill_(1.0)
    del activation
after_run = faults() - before
held = resident_mb()
host_memory.give_back_freed_blocks()
print(json.dumps({"took": took, "faults": after_run, "held_mb": held, "after_trim_mb": resident_mb()}))
"""


def probe(policy: str) -> dict:
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-c", PROBE, policy], capture_output=True, text=True, cwd=root, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_freed_blocks_are_reused_during_a_run_and_returned_after_it() -> None:
    default, kept = probe("default"), probe("keep")
    assert kept["took"] is True
    # Each fresh 100 MB map costs 25,600 page faults. Kept, the first few blocks still grow
    # the heap (small allocations settle after them), 3 or 8 of 40 in 20 tries here.
    assert default["faults"] > 40 * 25_000
    assert kept["faults"] < default["faults"] / 3
    assert kept["held_mb"] > 90  # the freed block stays in the heap for the next layer
    assert kept["after_trim_mb"] < kept["held_mb"] - 90  # and goes back once the run is over
