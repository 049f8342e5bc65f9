"""Every recorded command line (tests/cli_corpus.py) still writes the same bytes, exit code and stderr.

The corpus was recorded on main before the one-walk redesign (216 command lines: report and report --gpu
over every preset, sizes, frames, steps, batch, CFG, both runtimes and their flags, layouts on 2 to 8
GPUs, --traced, trace, sweep, plan, models, gpus, diff); a refactor that changes one byte fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import cli_corpus

ENTRIES = json.loads(cli_corpus.INDEX.read_text())


def test_the_corpus_is_the_recorded_one() -> None:
    assert [e["command"] for e in ENTRIES] == list(cli_corpus.COMMANDS)
    assert len(ENTRIES) >= 200


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{i:03d}" for i in range(len(ENTRIES))])
def test_output_is_byte_identical(entry: dict[str, object], tmp_path: Path) -> None:
    code, data, said = cli_corpus.run(str(entry["command"]), tmp_path)
    assert (code, said) == (entry["exit"], entry["stderr"])
    assert data == cli_corpus.recorded(entry), entry["command"]
