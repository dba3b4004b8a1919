#!/usr/bin/env bash
# The lint and format checks (rules in pyproject.toml) in .venv (made on first use). Ruff
# skips what .gitignore names: the virtual environments (.venv*/) and build/.
. "$(dirname "$0")/venv.sh"
ruff check .
ruff format --check .
