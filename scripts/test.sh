#!/usr/bin/env bash
# Runs the whole test suite in .venv (made on first use). Extra arguments go to pytest.
. "$(dirname "$0")/venv.sh"
python -m pytest "$@"
