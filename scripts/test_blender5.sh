#!/usr/bin/env bash
# The add-on's tests (register, operator, interactive step, the worker process, surviving a
# run past a memory limit, quads, install through the extension manager, the photo texture rendered
# by Blender) in Blender 5.0, in their own .venv-blender5. Extra arguments go to pytest.
OPENLRM_VENV=.venv-blender5 OPENLRM_REQUIREMENTS=requirements-blender5.txt . "$(dirname "$0")/venv.sh"
python -m pytest tests/test_blender.py tests/test_blender_paint.py tests/test_quads.py tests/test_photo_render.py tests/test_job.py tests/test_survival.py tests/test_install.py "$@"
