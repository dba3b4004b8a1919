# Sourced by the other scripts: makes .venv with the pinned dependencies once, then activates it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
    python3 -m venv "$ROOT/.venv"
fi
# shellcheck disable=SC1091
. "$ROOT/.venv/bin/activate"
STAMP="$ROOT/.venv/.requirements"
if ! cat "$ROOT"/requirements*.txt | cmp -s - "$STAMP"; then
    python -m pip install -q --disable-pip-version-check -r "$ROOT/requirements-dev.txt"
    cat "$ROOT"/requirements*.txt > "$STAMP"
fi
cd "$ROOT"
