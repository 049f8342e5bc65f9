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
    features = pixi["feature"]
    assert isinstance(features, dict)
    cuda_tasks = features["rtx5090"]["tasks"]
    assert set(cuda_tasks) >= {"verify-cuda", "calibrate-time"}
    assert "--device cuda" in cuda_tasks["verify-cuda"] and "--gpu rtx5090" in cuda_tasks["calibrate-time"]
    for name, command in {**tasks, **cuda_tasks}.items():
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


def test_pixi_cuda_environment_is_separate_from_the_cpu_default() -> None:
    pixi = _toml("pixi.toml")
    deps, features, envs = pixi["pypi-dependencies"], pixi["feature"], pixi["environments"]
    assert isinstance(deps, dict) and isinstance(features, dict) and isinstance(envs, dict)
    assert deps["torch"]["index"] == "https://download.pytorch.org/whl/cpu"  # the default stays CPU-only
    cuda = features["rtx5090"]
    assert cuda["pypi-dependencies"]["torch"]["index"].endswith("/cu128")  # Blackwell needs CUDA 12.8 wheels
    assert cuda["system-requirements"]["cuda"] == "12.8" and cuda["platforms"] == ["linux-64"]
    assert envs == {"rtx5090": ["rtx5090"]}  # the default environment has no CUDA feature


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
