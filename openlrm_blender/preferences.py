"""Add-on preferences: where weights come from, the device, memory; saved with Blender's
preferences, never in a .blend (the Hub token included)."""

from __future__ import annotations

import functools
from pathlib import Path

import bpy

from .engine import DEFAULT_MODEL, background
from .engine.pytorch import torch_found
from .properties import MODEL_ITEMS

DEVICE_ITEMS = [
    ("auto", "Auto", "CUDA if present, then Apple MPS, then the CPU"),
    ("cuda", "CUDA", "NVIDIA GPU"),
    ("mps", "MPS", "Apple Silicon GPU"),
    ("cpu", "CPU", "Processor only"),
]

BACKGROUND_ITEMS = [
    *((name, name, f"{model.description} ({model.megabytes} MB)") for name, model in background.MODELS.items()),
    ("FILE", "File", "An .onnx file of rembg's u2net or isnet layout"),
]

PRECISION_ITEMS = [
    ("float32", "Full (float32)", "The published numbers"),
    (
        "bfloat16",
        "bfloat16",
        "Half the model memory; faster on CUDA and on CPUs with bfloat16 instructions. The mesh moves slightly",
    ),
    ("float16", "float16", "Half the model memory, for CUDA and Apple MPS. The mesh moves slightly"),
]


class OpenLRMPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    default_model: bpy.props.EnumProperty(name="Default Model", items=MODEL_ITEMS, default=DEFAULT_MODEL)
    weights_source: bpy.props.EnumProperty(
        name="Weights",
        items=[
            ("HUB", "Hugging Face Hub", "Download the published weights into the Hugging Face cache"),
            ("FOLDER", "Local Folder", "A folder with config.json and model.safetensors"),
        ],
        default="HUB",
    )
    hub_token: bpy.props.StringProperty(
        name="Token", description="Hugging Face token (optional; stored in the preferences only)", subtype="PASSWORD"
    )
    weights_dir: bpy.props.StringProperty(name="Model Folder", subtype="DIR_PATH")
    cache_dir: bpy.props.StringProperty(
        name="Cache Folder", description="Hugging Face cache (empty: HF_HOME or ~/.cache/huggingface)", subtype="DIR_PATH"
    )
    device: bpy.props.EnumProperty(name="Device", items=DEVICE_ITEMS, default="auto")
    precision: bpy.props.EnumProperty(name="Precision", items=PRECISION_ITEMS, default="float32")
    background_model_name: bpy.props.EnumProperty(
        name="Background Removal",
        description="The model that cuts the object out of a photo without transparency (rembg's)",
        items=BACKGROUND_ITEMS,
        default=background.DEFAULT_MODEL,
    )
    background_model_file: bpy.props.StringProperty(
        name="Model File", description="An .onnx file of rembg's u2net or isnet layout", subtype="FILE_PATH"
    )
    keep_model_loaded: bpy.props.BoolProperty(
        name="Keep Model Loaded",
        description="Keep the model's process, with the model in memory, between runs (faster; off: all its memory "
        "goes back to the system after each run)",
        default=True,
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "default_model")
        layout.prop(self, "weights_source")
        if self.weights_source == "HUB":
            layout.prop(self, "hub_token")
            layout.prop(self, "cache_dir")
        else:
            layout.prop(self, "weights_dir")
        layout.prop(self, "device")
        layout.prop(self, "precision")
        layout.prop(self, "background_model_name")
        if self.background_model_name == "FILE":
            layout.prop(self, "background_model_file")
        else:
            self._draw_background_model(layout)
        row = layout.row()
        row.prop(self, "keep_model_loaded")
        row.operator("openlrm.free_model", icon="TRASH")
        layout.label(text=torch_in_use(), icon="SCRIPTPLUGINS")
        layout.label(text="The OpenLRM weights are licensed CC BY-NC 4.0: non-commercial use only.", icon="INFO")


    def _draw_background_model(self, layout: bpy.types.UILayout) -> None:
        """Whether the chosen model is here, its download's progress, or a button to get it."""
        from .operators import Runtime

        name = self.background_model_name
        row = layout.row()
        download = Runtime.download
        found = background.find_model(name)
        if download is not None and not download.finished:
            row.progress(factor=download.fraction, type="BAR", text=f"Downloading {name}: {download.fraction:.0%}")
            row.operator("openlrm.cancel_download", text="", icon="CANCEL")
        elif found is not None:
            row.label(text=f"On this machine: {found}", icon="CHECKMARK")
        else:
            row.label(text=f"Downloaded on first use ({background.MODELS[name].megabytes} MB)", icon="URL")
            row.operator("openlrm.download_background_model", icon="IMPORT").model = name
            if not bpy.app.online_access:
                layout.label(text="Online access is off (Preferences > System): no downloads", icon="INFO")

    def background_choice(self) -> str:
        """What the engine's ``background_model`` option takes: a model's name or a file."""
        return bpy.path.abspath(self.background_model_file) if self.background_model_name == "FILE" else self.background_model_name


@functools.cache  # fixed for the session; the preferences draw it on every redraw
def torch_in_use() -> str:
    """The PyTorch the worker runs on, and whether it came with the add-on or with Blender's
    Python (builds for a Linux distribution's Blender leave it out). Read from its files:
    importing it would take seconds, and the model runs in the worker, not here."""
    found = torch_found()
    if found is None:
        return "PyTorch: not installed"
    version, folder = found
    bundled = Path(bpy.utils.user_resource("EXTENSIONS", path=".local")).resolve()
    origin = "bundled" if folder.resolve().is_relative_to(bundled) else "Blender's Python"
    return f"PyTorch {version} from {folder} ({origin})"


def get_preferences(context: bpy.types.Context) -> OpenLRMPreferences:
    return context.preferences.addons[__package__].preferences
