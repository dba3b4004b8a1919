#!/usr/bin/env bash
# The main job on the bundled example: the tiny model in examples/tiny turns its
# input.png into out/example.ply (engine, command line), out/example.glb (simplified,
# UV-mapped, with a baked texture) and out/example.blend (the add-on's operator, run
# headless in Blender).
. "$(dirname "$0")/venv.sh"
mkdir -p out
python -m openlrm_blender.engine examples/tiny/input.png -o out/example.ply \
    --weights examples/tiny --input-size 56 --resolution 64
python -m openlrm_blender.engine examples/tiny/input.png -o out/example.glb \
    --weights examples/tiny --input-size 56 --resolution 64 --faces 20000 --texture-size 512
python - <<'PY'
import bpy
import addon_utils

bpy.ops.wm.read_factory_settings(use_empty=True)
addon_utils.enable("openlrm_blender", default_set=True, handle_error=None)
bpy.ops.openlrm.image_to_3d(
    filepath="examples/tiny/input.png", weights_dir="examples/tiny", input_size=56, resolution=64
)
obj = bpy.context.active_object
print(f"out/example.blend: object {obj.name!r}, {len(obj.data.vertices)} vertices, colour attribute "
      f"{obj.data.color_attributes.active_color.name!r}, material {obj.active_material.name!r}")
bpy.ops.wm.save_as_mainfile(filepath="out/example.blend")
PY
