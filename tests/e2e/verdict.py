"""Judges the interactive run from drive.py's results.json and screenshots; exit 1 on failure."""

import json
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
from PIL import Image
from processes import running

# Timer gaps while the worker runs, against the same run's idle gaps (machines differ and
# may be busy): the usual gap at most this many times the idle one ...
MAX_MEDIAN_RATIO = 3.0
# ... and the longest at most this many idle gaps (about 1.5 s on a quiet machine).
MAX_LONGEST_RATIO = 30.0
# Disabling the add-on mid-run: our own part (its unregister, timed inside the disable) at
# most this share of what waiting for the run would cost (the rest of a run from 20% on,
# measured in the same session). The whole disable is Blender's too and is only printed.
MAX_UNREGISTER_SHARE = 0.1


def screenshot_problem(path: Path) -> str:
    if not path.is_file():
        return f"{path.name} was not taken"
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    if pixels.std() < 5.0:
        return f"{path.name} is blank (every pixel alike)"
    return ""


def colour_saturation(path: Path) -> float:
    """Mean max-minus-min channel over the viewport's centre, where the framed object is:
    near 0 for Blender's greys, large for a coloured surface."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)[250:500, 380:680]
    return float((pixels.max(axis=-1) - pixels.min(axis=-1)).mean())


def main(artifacts: Path) -> int:
    if not (artifacts / "results.json").is_file():
        print("FAIL Blender did not finish the scenario (no results.json): see interactive.log")
        return 1
    results = json.loads((artifacts / "results.json").read_text())
    gaps = np.concatenate([np.diff(times) for times in results["running"]] or [[np.inf]])
    idle = np.median(np.diff(results["idle"])) if len(results["idle"]) > 2 else np.nan
    progress = results["progress"]
    new = results.get("new_object", {})
    batch = results.get("batch", {})
    log = (
        (artifacts / "interactive.log").read_text(errors="replace") if (artifacts / "interactive.log").is_file() else ""
    )
    checks = {
        "the scenario ran without errors": not results["errors"],
        "the sidebar shows the 'Image to 3D' tab": results.get("tab") == "Image to 3D",
        "Generate started its run on a timer (invoke path, no modal handler)": results.get("invoke") == ["FINISHED"],
        "the progress value changed while the worker ran": len(set(progress)) >= 3,
        "the progress never went back": all(b >= a for a, b in pairwise(progress)),
        f"timers kept their pace while the worker ran (median gap {np.median(gaps) / idle:.1f}x the idle one)": (
            np.median(gaps) <= MAX_MEDIAN_RATIO * idle
        ),
        f"no stall while the worker ran (longest gap {gaps.max() / idle:.0f}x the idle one)": (
            gaps.max() <= MAX_LONGEST_RATIO * idle
        ),
        "one new mesh object with a colour attribute and a material": bool(
            new and new["colour_attribute"] == "Color" and new["material"] and new["vertices"] > 1000
        ),
        "the new object is selected": bool(new.get("selected")),
        "the second run was cancelled midway": 0.0 < results.get("cancelled_at", 0.0) < 1.0
        and results.get("cancel_info") == "Cancelled",
        "the cancelled run left the scene unchanged": results.get("objects_after_cancel")
        == results.get("objects_before_cancel")
        and results.get("meshes_after_cancel") == results.get("meshes_before_cancel"),
        f"disabling the add-on mid-run did not wait for the run (its unregister took "
        f"{results.get('unregister_seconds', 99) * 1000:.0f} ms of the "
        f"{results.get('disable_seconds', 99) * 1000:.0f} ms disable; the run had about "
        f"{results.get('run_rest_seconds', 0):.1f} s left)": (
            results.get("unregister_seconds", 99) <= MAX_UNREGISTER_SHARE * results.get("run_rest_seconds", 0)
        ),
        "disabling the add-on mid-run ended its worker": results.get("disable_worker_running") is False,
        "disabling the add-on mid-run left the scene unchanged": results.get("objects_after_disable")
        == results.get("objects_after_cancel"),
        f"Check named what PyTorch sees ({results.get('torch_devices')!r})": results.get("check_invoke") == ["FINISHED"]
        and str(results.get("torch_devices")).startswith("CPU"),
        "a batch of three files started on a timer and showed 'image N of 3'": results.get("batch_invoke")
        == ["FINISHED"]
        and {"image 1 of 3", "image 3 of 3"} <= set(results["batch_labels"]),
        f"the batch made two objects side by side in one collection ({batch.get('objects')})": sorted(
            batch.get("objects", {})
        )
        == ["a", "b"]
        and batch["objects"]["a"][1] <= batch["objects"]["b"][0],
        f"the batch named its broken file ({batch.get('error')!r})": "broken.png" in str(batch.get("error"))
        and str(batch.get("info", "")).startswith("2 of 3 images made"),
        "one undo took the batch's objects away (the run before kept), one redo brought them back": "input"
        in results.get("after_batch_undo", [])
        and not {"a", "b"} & set(results.get("after_batch_undo", ["a"]))
        and {"a", "b"} <= set(results.get("after_batch_redo", [])),
        "each run's outcome reached Blender's reports (status bar, Info editor)": "Info: OpenLRM: input: " in log
        and "Warning: OpenLRM: 2 of 3 images made" in log
        and "Error: /e2e/batch/broken.png: not an image" in log
        and "broken.png" in str(results.get("broken_error")),
        "the preferences were drawn after the runs": results.get("preferences_drawn") is True,
        "quitting Blender mid-run ended its worker": "quit_worker" in results and not running(results["quit_worker"]),
    }
    for name in (
        "panel-progress.png",
        "result-material-preview.png",
        "sidebar-idle.png",
        "sidebar-advanced.png",
        "sidebar-triposg-bfloat16.png",
        "sidebar-batch.png",
        "preferences.png",
        "preferences-pytorch.png",
    ):
        problem = screenshot_problem(artifacts / name)
        checks[problem or f"{name} shows the screen"] = not problem
    if (artifacts / "result-material-preview.png").is_file():
        saturation = colour_saturation(artifacts / "result-material-preview.png")
        checks[f"the result shows colours (saturation {saturation:.0f} in the viewport's centre)"] = saturation > 25
    for name, passed in checks.items():
        print(f"{'ok  ' if passed else 'FAIL'} {name}")
    for error in results["errors"]:
        print(error)
    print(f"progress values seen: {len(progress)} ticks, {len(set(progress))} distinct; new object: {new}")
    print(
        f"timer gaps: idle median {idle:.3f} s; while running median {np.median(gaps):.3f} s, "
        f"longest {gaps.max():.2f} s"
    )
    baselines = {"first run, empty scene": results["idle"], "second run, with the result": results["idle_with_result"]}
    for (name, idle_times), run_times in zip(baselines.items(), results["running"], strict=False):
        if len(idle_times) > 2:
            idle_gaps, run_gaps = np.diff(idle_times), np.diff(run_times)
            print(
                f"  {name}: idle median {np.median(idle_gaps):.3f} s, longest {idle_gaps.max():.2f} s; "
                f"running median {np.median(run_gaps):.3f} s, longest {run_gaps.max():.2f} s"
            )
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
