# Sourced by the other scripts: makes a virtual environment with pinned dependencies once,
# then activates it. OPENLRM_VENV (a path, relative to the repository or absolute),
# OPENLRM_REQUIREMENTS and OPENLRM_PYTHON_VERSION pick another environment: default .venv
# from requirements-dev.txt on Python 3.11 (Blender 4.2 to 5.0's); scripts/test_blender5.sh
# uses Blender 5.0's, scripts/test_blender52.sh Blender 5.2's on Python 3.13.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=${OPENLRM_PYTHON_VERSION:-3.11}
VENV=${OPENLRM_VENV:-.venv}
[[ $VENV = /* ]] || VENV="$ROOT/$VENV"
REQUIREMENTS="$ROOT/${OPENLRM_REQUIREMENTS:-requirements-dev.txt}"

is_python() {  # is_python COMMAND: it runs, and it is Python $VERSION
    "$1" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$VERSION'.split('.'))))" 2>/dev/null
}

if ! is_python "$VENV/bin/python"; then
    PYTHON=""
    for candidate in "python$VERSION" "$HOME"/.pyenv/versions/"$VERSION"*/bin/python3 python3; do
        if is_python "$candidate"; then
            PYTHON=$candidate
            break
        fi
    done
    if [ -z "$PYTHON" ]; then
        echo "error: Python $VERSION is needed (the Python of the Blender these tests run as a module) and none" \
            "was found: not python$VERSION, ~/.pyenv/versions/$VERSION*, or python3. Install it (for example" \
            "'pyenv install $VERSION') and run this again." >&2
        exit 1
    fi
    [ -e "$VENV" ] && echo "$VENV is not a working Python $VERSION environment: making it again" >&2
    rm -rf "$VENV"
    echo "Making $VENV with $PYTHON" >&2
    "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
STAMP="$VENV/.requirements"
if ! cat "$ROOT"/requirements*.txt | cmp -s - "$STAMP"; then
    echo "Installing $(basename "$REQUIREMENTS") into $VENV (the first time takes a few minutes)" >&2
    python -m pip install --disable-pip-version-check --progress-bar on -r "$REQUIREMENTS"
    cat "$ROOT"/requirements*.txt > "$STAMP"
fi
cd "$ROOT"
