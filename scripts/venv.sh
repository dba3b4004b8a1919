# Sourced by the other scripts: makes a virtual environment with pinned dependencies once,
# then activates it. OPENLRM_VENV, OPENLRM_REQUIREMENTS and OPENLRM_PYTHON pick another
# environment (default .venv from requirements-dev.txt with python3; scripts/test_blender5.sh
# uses Blender 5.0's, scripts/test_blender52.sh Blender 5.2's on Python 3.13).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/${OPENLRM_VENV:-.venv}"
REQUIREMENTS="$ROOT/${OPENLRM_REQUIREMENTS:-requirements-dev.txt}"
if [ ! -x "$VENV/bin/python" ]; then
    "${OPENLRM_PYTHON:-python3}" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
STAMP="$VENV/.requirements"
if ! cat "$ROOT"/requirements*.txt | cmp -s - "$STAMP"; then
    python -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS"
    cat "$ROOT"/requirements*.txt > "$STAMP"
fi
cd "$ROOT"
