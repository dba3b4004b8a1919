#!/usr/bin/env bash
# The add-on's tests (register, sidebar job, the worker process, surviving a run past a
# memory limit, quads, background removal on NumPy 2, missing-PyTorch path, install through the
# extension manager and the repository listing) and marching cubes in Blender 5.2 LTS, on
# Python 3.13, in their own .venv-blender52. Extra arguments go to pytest.
OPENLRM_PYTHON_VERSION=3.13 OPENLRM_VENV=.venv-blender52 OPENLRM_REQUIREMENTS=requirements-blender52.txt \
    . "$(dirname "$0")/venv.sh"
python -m pytest tests/test_blender.py tests/test_blender_paint.py tests/test_quads.py tests/test_job.py tests/test_survival.py tests/test_background.py tests/test_install.py "$@"
