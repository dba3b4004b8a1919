"""Add-on preferences: where weights come from, the device, memory; saved with Blender's
preferences, never in a .blend (the Hub token included)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import bpy

from ..engine import DEFAULT_MODEL
from ..engine.input import background
from ..engine.models.registry import FAMILIES, OPENLRM, TRELLIS, Family, family_of, family_of_name
from ..engine.pytorch import torch_found
from ..jobs import pytorch_install
from . import ADDON_PACKAGE
from .properties import MODEL_ITEMS, use_published_settings
from .state import Runtime

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

TORCH_VARIANT_ITEMS = [
    ("CPU", "CPU", "Any machine"),
    ("CUDA", "CUDA 12", "NVIDIA GPUs (driver 570 or newer)"),
    *([("ROCM", "ROCm", "AMD GPUs on Linux")] if sys.platform.startswith("linux") else []),
]

PRECISION_ITEMS = [
    ("float32", "Full (float32)", "The published numbers"),
    (
        "bfloat16",
        "bfloat16",
        "Half the model memory; for NVIDIA GPUs from Ampere (RTX 30) on and CPUs with bfloat16 instructions. The "
        "mesh moves slightly",
    ),
    (
        "float16",
        "float16",
        "Half the model memory, for NVIDIA GPUs and Apple MPS (not the CPU, where it is very slow). The mesh moves "
        "slightly",
    ),
]


def _model_source_changed(preferences: bpy.types.AddonPreferences, context: bpy.types.Context) -> None:
    """The sidebar follows the model its runs will now use: the default, or a local folder's
    (which decides whatever the sidebar's menu says)."""
    scene = context.scene
    if scene is not None and (scene.openlrm.model == "DEFAULT" or preferences.weights_folder() is not None):
        model = scene.openlrm.model
        use_published_settings(scene.openlrm, preferences.family(None if model == "DEFAULT" else model))


class OpenLRMPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    default_model: bpy.props.EnumProperty(
        name="Default Model", items=MODEL_ITEMS, default=DEFAULT_MODEL, update=_model_source_changed
    )
    weights_source: bpy.props.EnumProperty(
        name="Weights",
        items=[
            ("HUB", "Hugging Face Hub", "Download the published weights into the Hugging Face cache"),
            (
                "FOLDER",
                "Local Folder",
                "A model folder with its weights: OpenLRM's config.json, TripoSR's config.yaml, TripoSG's "
                "model_index.json or TRELLIS's pipeline.json (and dinov2/)",
            ),
        ],
        default="HUB",
        update=_model_source_changed,
    )
    hub_token: bpy.props.StringProperty(
        name="Token", description="Hugging Face token (optional; stored in the preferences only)", subtype="PASSWORD"
    )
    weights_dir: bpy.props.StringProperty(name="Model Folder", subtype="DIR_PATH", update=_model_source_changed)
    cache_dir: bpy.props.StringProperty(
        name="Cache Folder",
        description="Hugging Face cache (empty: HF_HOME or ~/.cache/huggingface)",
        subtype="DIR_PATH",
    )
    painter_dir: bpy.props.StringProperty(
        name="TRELLIS Folder",
        description="A local TRELLIS folder (pipeline.json, ckpts/ and dinov2/) for Paint from Photo and TripoSG's "
        "colours from TRELLIS (empty: TRELLIS from the Hugging Face Hub)",
        subtype="DIR_PATH",
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
    torch_variant: bpy.props.EnumProperty(name="Install", items=TORCH_VARIANT_ITEMS, default="CPU")
    torch_index_url: bpy.props.StringProperty(
        name="Index URL", description="Where pip gets PyTorch (a mirror or a folder); empty: PyTorch's own index"
    )
    keep_model_loaded: bpy.props.BoolProperty(
        name="Keep Model Loaded",
        description="Keep the model's process, with the model in memory, between runs (faster; off: all its memory "
        "goes back to the system after each run)",
        default=True,
    )

    def weights_folder(self) -> Path | None:
        """The local model folder runs use, if the weights come from one."""
        return (
            Path(bpy.path.abspath(self.weights_dir)) if self.weights_source == "FOLDER" and self.weights_dir else None
        )

    def painter_folder(self) -> Path | None:
        """The TRELLIS folder that paints (Paint from Photo, TripoSG's colours): the one set for
        painting, else the model folder where it is TRELLIS's; None: TRELLIS from the Hub."""
        if self.painter_dir:
            return Path(bpy.path.abspath(self.painter_dir))
        folder = self.weights_folder()
        return folder if folder is not None and family_of("", folder) is TRELLIS else None

    def painter_missing(self) -> str:
        """Why TRELLIS cannot paint without a download ("" where it can): its folder is here,
        or the Hugging Face cache holds it. Looked at in the cache only, never online."""
        folder = self.painter_folder()
        if folder is not None:
            found = family_of("", folder)
            return "" if found is TRELLIS else f"the TRELLIS folder in the preferences is {_not_trellis(found)}"
        from huggingface_hub import try_to_load_from_cache

        cache_dir = bpy.path.abspath(self.cache_dir) if self.cache_dir else None
        if isinstance(try_to_load_from_cache(TRELLIS.repo_ids[0], TRELLIS.config_file, cache_dir=cache_dir), str):
            return ""
        return (
            "TRELLIS is not on this machine: paint or generate with it once (a 4.2 GB download), or set its folder in "
            "the preferences"
        )

    def folder_model(self) -> tuple[str, Family | None] | None:
        """While the weights come from a local folder, the folder decides the model and the
        sidebar names it instead of its Model menu: the line it shows, and the folder's family
        (None: not a model folder; the run says why). None with the weights from the Hub."""
        folder = self.weights_folder()
        if folder is None:
            return None
        found = family_of("", folder)
        if found is None:
            return f"Model folder {folder.name or folder}: no model found in it", None
        return f"Model: {found.title}, from the folder {folder.name or folder}", found

    def family(self, model: str | None) -> Family:
        """The family a run of ``model`` (None: the default model) will use: the local
        folder's, told by its files, else the name's."""
        name = model or self.default_model
        # A folder that is not a model's: the run will say what is wrong with it.
        return family_of(name, self.weights_folder()) or family_of_name(name) or OPENLRM

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
        layout.prop(self, "painter_dir")
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
        self._draw_pytorch(context, layout.box())
        for family in FAMILIES:
            layout.label(text=f"{family.licence}.", icon="INFO")

    def _draw_background_model(self, layout: bpy.types.UILayout) -> None:
        """Whether the chosen model is here, its download's progress, or a button to get it."""
        name = self.background_model_name
        row = layout.row()
        download = Runtime.download
        found = background.find_model(name)
        if download is not None:
            row.progress(factor=download.fraction, type="BAR", text=f"Downloading {name}: {download.fraction:.0%}")
            row.operator("openlrm.cancel_task", text="", icon="CANCEL").slot = "download"
        elif found is not None:
            row.label(text=f"On this machine: {found}", icon="CHECKMARK")
        else:
            row.label(text=f"Downloaded on first use ({background.MODELS[name].megabytes} MB)", icon="URL")
            row.operator("openlrm.download_background_model", icon="IMPORT").model = name
            if not bpy.app.online_access:
                layout.label(text="Online access is off (Preferences > System): no downloads", icon="INFO")

    def _draw_pytorch(self, context: bpy.types.Context, box: bpy.types.UILayout) -> None:
        """The PyTorch in use, what it and the machine have, and installing another."""
        box.label(text=torch_in_use(), icon="SCRIPTPLUGINS")
        record = pytorch_install.installed(pytorch_root())
        if record is not None:
            box.label(text=f"Installed by the add-on: {record['variant']} from {record['index_url']}")
        row = box.row()
        seen = Runtime.torch_devices or (pytorch_install.describe_devices(record) if record else "")
        row.label(text=f"Devices it sees: {seen or 'not checked yet'}")
        if torch_found() is not None:
            row.operator("openlrm.check_torch", icon="VIEWZOOM")
        box.label(text=f"This machine: {', '.join(machine_gpus()) or 'no NVIDIA or AMD GPU found'}", icon="DESKTOP")
        install = Runtime.torch_install
        if install is not None:
            row = box.row()
            row.progress(factor=install.fraction, type="BAR", text=f"Installing PyTorch: {install.message}")
            row.operator("openlrm.cancel_task", text="", icon="CANCEL").slot = "torch_install"
            return
        column = box.column()
        column.prop(self, "torch_variant")
        column.prop(self, "torch_index_url", placeholder=pytorch_install.INDEXES[self.torch_variant])
        row = box.row()
        operator = row.operator("openlrm.install_torch", icon="IMPORT")
        operator.variant, operator.index_url = self.torch_variant, self.torch_index_url
        if record is not None:
            row.operator("openlrm.remove_torch", icon="TRASH")
        if not bpy.app.online_access:
            box.label(text="Online access is off (Preferences > System): no downloads", icon="INFO")
        if Runtime.last_torch_error:
            lines = [line for line in Runtime.last_torch_log.splitlines() if line.strip()][-8:]
            message = box.box()
            message.label(text=Runtime.last_torch_error, icon="ERROR")
            for line in lines:  # the end of pip's log
                message.label(text=line.strip()[:160])

    def background_choice(self) -> str:
        """What the engine's ``background_model`` option takes: a model's name or a file."""
        return (
            bpy.path.abspath(self.background_model_file)
            if self.background_model_name == "FILE"
            else self.background_model_name
        )


def _not_trellis(family: Family | None) -> str:
    return f"{family.title}'s, not TRELLIS's" if family is not None else "not a model folder"


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
    if folder.resolve().is_relative_to(pytorch_root().resolve()):
        origin = "installed by the add-on"
    else:
        origin = "bundled" if folder.resolve().is_relative_to(bundled) else "Blender's Python"
    return f"PyTorch {version} from {folder} ({origin})"


def pytorch_root(create: bool = False) -> Path:
    """The add-on's user folder, where a PyTorch it installs goes: kept through updates of the
    add-on, removed with the extension, and no deeper than it must be (Windows' path limit)."""
    try:
        return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, create=create))
    except ValueError:  # enabled as a plain add-on (a checkout): Blender's configuration folder
        return Path(bpy.utils.user_resource("CONFIG", path=ADDON_PACKAGE, create=create))


@functools.cache  # one look per session: nvidia-smi takes a moment
def machine_gpus() -> list[str]:
    return pytorch_install.machine_gpus()


def get_preferences(context: bpy.types.Context) -> OpenLRMPreferences:
    return context.preferences.addons[ADDON_PACKAGE].preferences
