#!/usr/bin/env bash
# The main job on the bundled example: the tiny model in examples/tiny turns its
# input.png into out/example.ply (coloured mesh).
. "$(dirname "$0")/venv.sh"
mkdir -p out
python -m openlrm_blender.engine examples/tiny/input.png -o out/example.ply \
    --weights examples/tiny --input-size 56 --grid 64
