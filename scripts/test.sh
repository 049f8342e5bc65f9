#!/usr/bin/env bash
# The project's test command: lint, format check, strict typing, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
ruff format --check .
mypy --strict hybrid
# two processes (the CI machine's two cores; each shares its own traces between its tests), the out-of-process fuzz
# suite after them on its own: its Ctrl-C examples time their signal by the child's CPU, best without a neighbour
pytest -q -n 2 --dist load --durations=25 --ignore=tests/test_fuzz.py
pytest -q --durations=5 tests/test_fuzz.py
