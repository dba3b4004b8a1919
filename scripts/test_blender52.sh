#!/usr/bin/env bash
# The add-on's tests (register, sidebar job, missing-PyTorch path, install through the
# extension manager and the repository listing) and marching cubes in Blender 5.2 LTS, on
# Python 3.13, in their own .venv-blender52. Extra arguments go to pytest.
set -euo pipefail
PYTHON313=""
for candidate in "$HOME"/.pyenv/versions/3.13*/bin/python3 python3.13; do
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
        PYTHON313=$candidate
        break
    fi
done
if [ -z "$PYTHON313" ]; then
    echo "The Blender 5.2 tests need Python 3.13: none on PATH (python3.13) or under ~/.pyenv/versions" >&2
    exit 1
fi
OPENLRM_PYTHON=$PYTHON313 OPENLRM_VENV=.venv-blender52 OPENLRM_REQUIREMENTS=requirements-blender52.txt \
    . "$(dirname "$0")/venv.sh"
python -m pytest tests/test_blender.py tests/test_install.py tests/test_marching_cubes.py "$@"
