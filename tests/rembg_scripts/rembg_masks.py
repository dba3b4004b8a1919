"""Run in .venv-rembg (rembg 2.0.86): saves scikit-image's photographs as PNG files and the
alpha of rembg's cut-out of each with each stand-in model, through rembg's own sessions.

    python rembg_masks.py FOLDER    (FOLDER holds u2net-layout.onnx and isnet-layout.onnx;
                                     U2NET_HOME is set to it, as rembg wants custom models there)
Writes FOLDER/<photo>.png and FOLDER/rembg-masks.npz ("<model>/<photo>": uint8 alpha).
"""

import sys
from pathlib import Path

import numpy as np
import rembg
from PIL import Image
from skimage import data

folder = Path(sys.argv[1])
sessions = {
    "u2net-layout": rembg.new_session("u2net_custom", model_path=str(folder / "u2net-layout.onnx")),
    "isnet-layout": rembg.new_session("dis_custom", model_path=str(folder / "isnet-layout.onnx")),
}
masks = {}
for photo in ("coffee", "chelsea", "astronaut", "rocket"):
    Image.fromarray(getattr(data, photo)()).save(folder / f"{photo}.png")
    image = Image.open(folder / f"{photo}.png")
    for model, session in sessions.items():
        cutout = rembg.remove(image, session=session)
        masks[f"{model}/{photo}"] = np.asarray(cutout)[..., 3]
np.savez(folder / "rembg-masks.npz", **masks)
print("rembg", rembg.__version__ if hasattr(rembg, "__version__") else "2.0.86", "masks:", len(masks))
