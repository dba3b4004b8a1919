"""The model families, what they publish and how a folder or a name is told apart: no
PyTorch here (the add-on's menus and the command line read it); each family's ``recipe``
module, loaded only to run, holds its ``Recipe`` (``models.recipe``: the family contract)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EngineError, WeightsError
from .openlrm.config import DEFAULT_MODEL
from .openlrm.config import PUBLISHED_MODELS as OPENLRM_MODELS

if TYPE_CHECKING:
    from .recipe import Recipe

# The settings of the one table (``options.SETTINGS``) a family's model reads; those of the
# surface (clean-up, texture, photo) every family shares and the pipeline reads itself.
FIELD_SETTINGS = ("resolution", "threshold", "dense")  # a field meshed by marching cubes
SAMPLING_SETTINGS = ("steps", "guidance", "seed")  # a flow model's


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    licence: str  # one readable line for the sidebar
    config_file: str  # the file a model folder of this family has
    published: tuple[str, ...]  # the names --model and the menus offer
    settings: dict[str, float] = field(default_factory=dict)  # published settings where the user sets none
    repo_ids: tuple[str, ...] = ()  # Hub repositories known to hold this family
    gpu_precision: str = "float32"  # what "auto" precision runs on a GPU: the published code's there
    makes_colours: bool = True  # False: a shape only, coloured from the photo
    uses: tuple[str, ...] = ()  # the settings its recipe reads (and the sidebar shows for it)
    paints: bool = False  # colours a mesh it did not make (``Recipe.paint``)
    views: bool = False  # takes several photos of one object

    @property
    def sampled(self) -> bool:
        """A flow model: sampled in steps from a seed, its input framed its own way, no camera."""
        return "steps" in self.uses

    def recipe(self) -> Recipe:
        """How a run loads and runs this family's models (imports PyTorch)."""
        return importlib.import_module(f"{__package__}.{self.name}.recipe").RECIPE


OPENLRM = Family(
    "openlrm",
    "OpenLRM v1.1",
    "OpenLRM weights: CC BY-NC 4.0, non-commercial use only",
    "config.json",
    OPENLRM_MODELS,
    uses=("recenter", "foreground_ratio", "input_size", "camera_distance", *FIELD_SETTINGS),
)
TRIPOSR = Family(
    "triposr",
    "TripoSR",
    "TripoSR weights: MIT, commercial use allowed",
    "config.yaml",
    ("triposr",),
    {"foreground_ratio": 0.85, "resolution": 256, "threshold": 25.0},  # input: its config's cond_image_size, 512
    repo_ids=("stabilityai/TripoSR",),
    uses=("recenter", "foreground_ratio", "input_size", *FIELD_SETTINGS),
)
TRIPOSG = Family(
    "triposg",
    "TripoSG",
    "TripoSG weights: MIT, commercial use allowed",
    "model_index.json",
    ("triposg",),
    {"resolution": 512, "threshold": 0.0, "steps": 50, "guidance": 7.0},  # the grid's 2^9 points, the logit's 0
    repo_ids=("VAST-AI/TripoSG",),
    gpu_precision="float16",
    makes_colours=False,
    uses=(*SAMPLING_SETTINGS, "tokens", *FIELD_SETTINGS),
)
TRELLIS = Family(
    "trellis",
    "TRELLIS",
    "TRELLIS weights: MIT, commercial use allowed (its DINOv2 encoder: Apache-2.0)",
    "pipeline.json",
    ("trellis",),
    # microsoft/TRELLIS-image-large's pipeline.json; a folder's own pipeline.json comes first.
    {"steps": 25, "guidance": 7.5, "latent_steps": 25, "latent_guidance": 3.0},
    repo_ids=("microsoft/TRELLIS-image-large",),
    gpu_precision="float16",
    uses=(*SAMPLING_SETTINGS, "latent_steps", "latent_guidance", "view_mode"),
    paints=True,
    views=True,
)
FAMILIES = (OPENLRM, TRIPOSR, TRIPOSG, TRELLIS)
PUBLISHED_MODELS = tuple(name for family in FAMILIES for name in family.published)


def family_of_folder(folder: Path) -> Family:
    """The family a local model folder belongs to, told by its configuration file."""
    found = [family for family in FAMILIES if (folder / family.config_file).is_file()]
    if not folder.is_dir():
        raise WeightsError(f"{folder}: model folder not found")
    if not found:
        names = " or ".join(f"{family.config_file} ({family.title})" for family in FAMILIES)
        raise WeightsError(f"{folder}: not a model folder: it has no {names}")
    return found[0]


def family_of_name(model: str) -> Family | None:
    """The family of a published name or a known Hub repository (None: only its files tell)."""
    for family in FAMILIES:
        if model in family.published or model.lower() in (repo.lower() for repo in family.repo_ids):
            return family
    return None


def family_of(model: str, weights_dir: Path | None = None) -> Family | None:
    """The family a run will use, where it is known without downloading anything: a local
    folder's (None where the folder is not a model's: the run will say why), else the name's."""
    if weights_dir:
        try:
            return family_of_folder(Path(weights_dir))
        except WeightsError:
            return None
    return family_of_name(model)


def resolve_model_dir(model: str, weights_dir: Path | str | None = None, **hub_options) -> tuple[Family, Path]:
    """The family and folder of a model: a local folder when one is given (or ``model`` is
    one), else the Hub cache's copy of a published name or repository."""
    folder = Path(weights_dir).expanduser() if weights_dir else Path(model).expanduser()
    if weights_dir or folder.is_dir():
        family = family_of_folder(folder)
        return family, family.recipe().check_model_dir(folder)
    if model.startswith((".", "~", "/", "\\")) or folder.is_absolute():
        raise WeightsError(f"{model}: model folder not found")
    known = family_of_name(model)
    if known is not None:
        return known, known.recipe().download_model(model, **hub_options)
    if "/" not in model:
        raise WeightsError(
            f"unknown model name {model!r}: use one of {', '.join(PUBLISHED_MODELS)}, a Hub repo id (owner/name) "
            "or a local model folder"
        )
    failures = []
    for family in FAMILIES:  # a repository not known: the first family whose files it has
        try:
            return family, family.recipe().download_model(model, **hub_options)
        except EngineError as error:
            failures.append(error)
    raise failures[0]


__all__ = ["DEFAULT_MODEL", "FAMILIES", "OPENLRM", "PUBLISHED_MODELS", "TRELLIS", "TRIPOSG", "TRIPOSR", "Family"]
