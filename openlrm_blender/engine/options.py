"""What a run is asked to do: the model, the device and every setting of the recipe.

``SETTINGS`` is the one table of the settings people choose: their defaults, valid ranges
and words. ``Options`` takes its defaults from it, ``Options.validate`` its ranges, the
command line its arguments (``cli``) and Blender its operator and sidebar properties
(``addon.properties``), so the same number means the same everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .errors import EngineError
from .input import background
from .input.read import MAX_MEGAPIXELS
from .models.registry import DEFAULT_MODEL, Family
from .models.settings import Settings
from .surface.finish import Finish

DEVICES = ("auto", "cuda", "mps", "cpu")
# torch dtype names, and "auto": float32, but on a GPU what the family's published code runs there
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
_PATHS = ("weights_dir", "cache_dir", "painter_weights")


@dataclass(frozen=True)
class Setting:
    """One setting people choose, the same in the operator, the sidebar and the command line."""

    name: str  # the Options field, the operator's property
    default: bool | int | float | str
    label: str  # Blender's
    help: str  # Blender's tooltip and the command line's help
    minimum: float | None = None  # valid range, both ends included
    maximum: float | None = None
    flags: tuple[str, ...] = ()  # the command line's (default: --name-with-dashes; a bool: what flips it)
    blender_default: bool | int | float | None = None  # where Blender's sidebar starts elsewhere
    per_model: bool = False  # each model family publishes its own value (``default``: where it publishes none)
    choices: tuple[str, ...] = ()  # a word setting's words, ``default`` the first

    @property
    def command_line_flags(self) -> tuple[str, ...]:
        if self.flags:
            return self.flags
        dashed = self.name.replace("_", "-")
        return (f"--no-{dashed}",) if self.default is True else (f"--{dashed}",)

    def check(self, value: float | str) -> None:
        if self.choices and value not in self.choices:
            raise EngineError(f"{self.name} = {value!r} is not one of {', '.join(self.choices)}")
        if self.minimum is not None and not self.minimum <= value <= self.maximum:
            raise EngineError(f"{self.name} = {value:g} is out of range: use {self.minimum:g} to {self.maximum:g}")


SETTINGS = {
    setting.name: setting
    for setting in (
        Setting("remove_background", True, "Remove Background", "Cut the object out when the image has no "
                "transparency", flags=("--no-remove-bg",)),
        Setting("recenter", True, "Recenter", "Crop the object and centre it on a square canvas"),
        Setting("foreground_ratio", 0.8, "Foreground Ratio", "The object's size in the recentred image", 0.05, 1.0,
                per_model=True),
        Setting("input_size", 0, "Input Size", "Model input pixels, a multiple of the encoder's patch (0: the "
                "model's published size)", 0, 1024),
        Setting("camera_distance", 2.0, "Camera Distance", "The source camera's distance from the object", 0.1, 10.0),
        Setting("resolution", 384, "Mesh Resolution", "Marching-cubes grid points per axis", 8, 1024,
                flags=("--resolution", "--grid"), per_model=True),
        Setting("threshold", 3.0, "Density Threshold", "The density at which the surface lies (TripoSG: the logit, "
                "whose 0 is the published surface)", -100.0, 100.0, per_model=True),
        Setting("dense", False, "Dense", "Evaluate the density on every grid point (the published recipe; slow)"),
        Setting("steps", 50, "Steps", "Flow steps (TripoSG; TRELLIS's structure stage): fewer make a quicker draft", 1,
                200, per_model=True),
        Setting("guidance", 7.0, "Guidance", "How closely the shape follows the image (classifier-free guidance; "
                "TripoSG: 1 or less is none, one pass per step; TRELLIS: 0 is none)", 0.0, 20.0, per_model=True),
        Setting("latent_steps", 25, "Latent Steps", "TRELLIS's second stage's flow steps (the surface's detail and "
                "its colours): fewer make a quicker draft", 1, 200, per_model=True),
        Setting("latent_guidance", 3.0, "Latent Guidance", "How closely TRELLIS's second stage follows the image "
                "(0: none)", 0.0, 20.0, per_model=True),
        Setting("view_mode", "stochastic", "Views", "How TRELLIS takes several photos of one object: each step "
                "another photo (stochastic), or every photo in every step (multidiffusion)",
                choices=("stochastic", "multidiffusion")),
        Setting("colours", "photo", "Colours", "Where a shape-only model's colours come from (TripoSG): the photo, "
                "laid on and grown over the shape, or TRELLIS, a model of the whole object's appearance",
                choices=("photo", "trellis")),
        Setting("seed", 42, "Seed", "The noise the shape grows from (TripoSG): the same seed makes the same shape on "
                "any device", 0, 2**31 - 1),
        Setting("tokens", 2048, "Latent Tokens", "The shape's latent tokens (TripoSG; published 2048)", 16, 8192),
        Setting("min_piece", 0.0, "Smallest Piece", "Drop disconnected pieces with less than this share of the "
                "faces", 0.0, 0.99),
        Setting("smooth_iterations", 0, "Smoothing Iterations", "Taubin smoothing iterations", 0, 100,
                flags=("--smooth-iterations", "--smooth")),
        Setting("textured", False, "Textured", "UV-unwrap and bake a colour texture"),
        Setting("faces", 0, "Faces", "Simplify to about this many faces (0: keep every face)", 0, 10_000_000,
                blender_default=50_000),
        Setting("texture_size", 1024, "Texture Size", "Texture pixels per side", 64, 8192),
        Setting("mirror_photo", False, "Mirror Photo", "Put the photo's mirror image on the back too (for "
                "symmetric objects)"),
        Setting("max_megapixels", MAX_MEGAPIXELS, "Megapixel Limit", "Refuse larger image files before decoding "
                "them", 0.01, 10_000.0),
    )
}  # fmt: skip


def _default(name: str):
    """The table's default; None for a per-model setting (the model's published value)."""
    setting = SETTINGS[name]
    return field(default=None if setting.per_model else setting.default)


@dataclass
class Options:
    """Everything that decides the result; defaults are the published settings."""

    model: str = DEFAULT_MODEL
    weights_dir: Path | None = None  # a local model folder; overrides ``model``
    revision: str | None = None
    token: str | None = None
    cache_dir: Path | None = None
    offline: bool | None = None  # None: huggingface_hub's own setting (HF_HUB_OFFLINE)
    device: str = "auto"
    dtype: str = "auto"
    remove_background: bool = _default("remove_background")
    background_model: str = background.DEFAULT_MODEL  # a name of background.MODELS, or an .onnx file
    recenter: bool = _default("recenter")
    # None: the model family's published value (models.registry), else the table's.
    foreground_ratio: float | None = _default("foreground_ratio")
    input_size: int = _default("input_size")  # 0: the model's published size
    camera_distance: float = _default("camera_distance")
    resolution: int | None = _default("resolution")
    threshold: float | None = _default("threshold")
    dense: bool = _default("dense")
    steps: int | None = _default("steps")  # a flow model's sampling (TripoSG, TRELLIS's first stage)
    guidance: float | None = _default("guidance")
    latent_steps: int | None = _default("latent_steps")  # TRELLIS's second stage
    latent_guidance: float | None = _default("latent_guidance")
    view_mode: str = _default("view_mode")  # several photos of one object (TRELLIS)
    colours: str = _default("colours")  # a shape-only model's colours: "photo", or "trellis" ...
    painter_weights: Path | None = None  # ... from this TRELLIS folder (None: TRELLIS from the Hub)
    seed: int = _default("seed")
    tokens: int = _default("tokens")
    max_megapixels: float = _default("max_megapixels")  # larger image files are refused before decoding
    # After marching cubes, each optional (0 / False: off):
    min_piece: float = _default("min_piece")  # drop disconnected pieces with less than this share of the faces
    smooth_iterations: int = _default("smooth_iterations")  # Taubin smoothing
    faces: int = _default("faces")  # simplify to about this many faces
    textured: bool = _default("textured")  # UV-unwrap and bake a square colour texture ...
    texture_size: int = _default("texture_size")  # ... of this many pixels
    photo_texture: bool | None = None  # the photo's own pixels where it shows the object (None: when textured)
    mirror_photo: bool = _default("mirror_photo")  # and its mirror image on the back

    def to_fields(self) -> dict:
        """Plain values (paths as text), to send to the worker process."""
        return {
            name: str(value) if name in _PATHS and value is not None else value for name, value in asdict(self).items()
        }

    @classmethod
    def from_fields(cls, fields: dict) -> Options:
        return cls(
            **{name: Path(value) if name in _PATHS and value is not None else value for name, value in fields.items()}
        )

    def for_family(self, published: dict[str, float]) -> Options:
        """A copy with each per-model setting left unset taken from the model family's
        ``published`` settings (where it has one), else from the table."""
        unset = {
            name: published.get(name, setting.default)
            for name, setting in SETTINGS.items()
            if setting.per_model and getattr(self, name) is None
        }
        return replace(self, **unset)

    def settings_for(self, family: Family) -> Settings:
        """The settings ``family`` uses, and only those, for its recipe."""
        return Settings(family.title, {name: getattr(self, name) for name in family.uses})

    @property
    def uses_photo(self) -> bool:
        """The photo texture: asked for, or by default on textured output (so the default
        vertex-colour mesh stays the published one)."""
        return self.textured if self.photo_texture is None else self.photo_texture

    def finish(self) -> Finish:
        """What the surface stage is asked for."""
        return Finish(self.min_piece, self.smooth_iterations, self.faces, self.textured, self.texture_size)

    def validate(self) -> None:
        if self.device not in DEVICES:
            raise EngineError(f"unknown device {self.device!r}: use one of {', '.join(DEVICES)}")
        if self.dtype not in PRECISIONS:
            raise EngineError(f"unknown precision {self.dtype!r}: use one of {', '.join(PRECISIONS)}")
        for setting in SETTINGS.values():
            if getattr(self, setting.name) is not None:
                setting.check(getattr(self, setting.name))
