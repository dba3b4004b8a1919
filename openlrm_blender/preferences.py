"""Add-on preferences: where weights come from, the device, memory; saved with Blender's
preferences, never in a .blend (the Hub token included)."""

from __future__ import annotations

import functools
from pathlib import Path

import bpy

from .engine import DEFAULT_MODEL
from .engine.pytorch import torch_found
from .properties import MODEL_ITEMS

DEVICE_ITEMS = [
    ("auto", "Auto", "CUDA if present, then Apple MPS, then the CPU"),
    ("cuda", "CUDA", "NVIDIA GPU"),
    ("mps", "MPS", "Apple Silicon GPU"),
    ("cpu", "CPU", "Processor only"),
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
    background_model: bpy.props.StringProperty(
        name="Background Model",
        description="rembg's u2net.onnx (empty: $U2NET_HOME or ~/.u2net/u2net.onnx)",
        subtype="FILE_PATH",
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
        layout.prop(self, "background_model")
        row = layout.row()
        row.prop(self, "keep_model_loaded")
        row.operator("openlrm.free_model", icon="TRASH")
        layout.label(text=torch_in_use(), icon="SCRIPTPLUGINS")
        layout.label(text="The OpenLRM weights are licensed CC BY-NC 4.0: non-commercial use only.", icon="INFO")


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
