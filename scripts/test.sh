#!/usr/bin/env bash
# The project's test command: lint, format check, strict typing, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
ruff format --check .
mypy --strict hybrid
pytest -q --durations=25
