"""pixi.toml mirrors the pip setup: it parses, and every task names a real command."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _toml(name: str) -> dict[str, object]:
    with (ROOT / name).open("rb") as f:
        return tomllib.load(f)


def test_pixi_tasks_name_real_commands() -> None:
    pixi = _toml("pixi.toml")
    pyproject = _toml("pyproject.toml")
    tasks = pixi["tasks"]
    assert isinstance(tasks, dict)
    assert set(tasks) >= {"report", "test", "lint", "typecheck", "verify"}
    project = pyproject["project"]
    assert isinstance(project, dict)
    scripts = set(project["scripts"])
    dev = " ".join(project["optional-dependencies"]["dev"])
    for name, command in tasks.items():
        for part in str(command).split("&&"):
            words = shlex.split(part)
            exe = words[0]
            if exe in ("bash", "python"):
                assert (ROOT / words[1]).is_file(), f"task {name}: {words[1]} does not exist"
            elif exe in scripts:
                continue
            elif exe == "torchrun":  # torch's own launcher: torch is a dependency
                assert any(d.startswith("torch") for d in project["dependencies"]), f"task {name}: no torch"
            else:
                assert exe in dev, f"task {name}: {exe} is neither a console script nor a dev dependency"


def test_pixi_matches_pip_setup() -> None:
    pixi = _toml("pixi.toml")
    deps = pixi["pypi-dependencies"]
    assert isinstance(deps, dict)
    assert deps["wanmeter"] == {"path": ".", "editable": True, "extras": ["dev"]}
    tasks = pixi["tasks"]
    assert isinstance(tasks, dict)
    test_script = (ROOT / "scripts" / "test.sh").read_text()
    # lint and typecheck run exactly what the test command runs
    for part in (*str(tasks["lint"]).split("&&"), tasks["typecheck"]):
        assert str(part).strip() in test_script
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    assert "scripts/test.sh" in (ROOT / "README.md").read_text()
