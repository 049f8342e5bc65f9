"""The CLI under random input.

In process (issue 13): hypothesis draws command lines from every command's options with valid,
extreme and nonsensical values, malformed documents for ``diff`` and broken config folders for
``--model-dir``. Whatever it draws, wanmeter exits 0 (or 1 for a diff beyond tolerance) or 2 with
one line on stderr, never a traceback. 1,600 examples.

Out of process (issue 22; the harness is tests/fuzz.py, what it runs tests/fuzz_cases.py): the real
``python -m hybrid``, one process per command under 2 GiB of address space, 10 s of CPU and an idle
limit: one reproduction per item of the issue, and :data:`FUZZ_EXAMPLES` random command lines (48
in CI, the same every run; ``WANMETER_FUZZ_EXAMPLES=2000 WANMETER_FUZZ_SEED=random`` for a longer
random run, see the README)."""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from hybrid.cli import main
from tests.fuzz import Entry, Outcome, problems, report_failures, run_all
from tests.fuzz_cases import FAMILIES, REPRODUCTIONS, build

FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same examples every run: CI is never flaky; vary the seed locally to explore
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

GOOD_NUMBERS = st.sampled_from(["1", "2", "4", "5", "8", "16", "17", "33", "81", "121", "512"])
BAD_NUMBERS = st.one_of(
    st.integers(min_value=-3, max_value=130).map(str),
    st.sampled_from(["0", "-1", "4097", "1e3", "1.5", "nan", "inf", "-inf", "", "10" * 20, "9" * 400, "\uff18\uff11",
                     " 5", "0x10", "five"]),
)  # fmt: skip
NUMBERS = st.one_of(GOOD_NUMBERS, GOOD_NUMBERS, GOOD_NUMBERS, BAD_NUMBERS)  # mostly valid: the deep paths run
SIZES = st.one_of(
    st.tuples(st.integers(-32, 4200), st.integers(-32, 4200)).map(lambda wh: f"{wh[0]}x{wh[1]}"),
    st.sampled_from(["1280x720", "832x480", "16x16", "16400x16", "-16x720", "x", "1280*720", "10" * 30 + "x16", ""]),
)
WORDS = st.sampled_from(
    ["wan2.1-t2v-14b", "wan2.1-t2v-1.3b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b", "wan2.1-i2v-14b-480p",
     "wan2.1-vace-1.3b", "wan2.1-flf2v-14b-720p", "nope", "", "h100-sxm", "rtx4090", "a100-80gb", "h20", "b200"]
)  # fmt: skip


def _option(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return values.map(lambda v: [name, v])


def _flag(name: str) -> st.SearchStrategy[list[str]]:
    return st.just([name])


WORKLOAD = [
    _option("--model", WORDS), _option("--size", SIZES), _option("--frames", NUMBERS), _option("--steps", NUMBERS),
    _option("--batch", NUMBERS), _option("--text-len", NUMBERS), _flag("--no-cfg"), _option("--ref-images", NUMBERS),
    _flag("--image"), _option("--guidance-scale", NUMBERS), _option("--flow-shift", NUMBERS),
    _option("--runtime", st.sampled_from(["diffusers", "wan", "other"])), _flag("--offload"), _flag("--t5-cpu"),
    _flag("--convert-model-dtype"), _option("--flash-attention", NUMBERS), _option("--host-tflops", NUMBERS),
]  # fmt: skip
REPORT = [
    *WORKLOAD, _option("--gpu", WORDS), _option("--gpus", NUMBERS), _option("--ulysses", NUMBERS),
    _option("--ring", NUMBERS), _flag("--cfg-parallel"), _option("--fsdp", st.sampled_from(["dit", "text_encoder",
    "dit,text_encoder", "vae", ""])), _option("--format", st.sampled_from(["table", "json", "markdown", "csv", "xml"])),
    _option("--efficiency-override", st.sampled_from(["attention=0.5", "attention=2", "x=1", "memory=nan"])),
]  # fmt: skip
LISTS = st.lists(NUMBERS, min_size=1, max_size=3).map(",".join)
SWEEP = [
    _option("--model", st.lists(WORDS, min_size=1, max_size=2).map(",".join)),
    _option("--size", st.lists(SIZES, min_size=1, max_size=2).map(",".join)), _option("--frames", LISTS),
    _option("--steps", LISTS), _option("--batch", LISTS), _option("--text-len", LISTS),
    _option("--cfg", st.sampled_from(["on", "off", "on,off", "maybe"])), _option("--gpu", WORDS),
    _option("--format", st.sampled_from(["table", "csv", "json", "yaml"])),
]  # fmt: skip
PLAN = [
    *WORKLOAD, _option("--gpu", WORDS), _option("--gpus", NUMBERS),
    _option("--objective", st.sampled_from(["latency", "gpu-seconds", "cost"])),
]  # fmt: skip


def _command(name: str, options: list[st.SearchStrategy[list[str]]]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.one_of(*options), max_size=6).map(lambda parts: [name, *(w for p in parts for w in p)])


GPUS = st.sampled_from(["h100-sxm", "rtx4090", "a100-80gb", "h20", "b200", "mi300x", "nope"])
COMMANDS = st.one_of(
    _command("report", REPORT),
    st.tuples(GPUS, _command("report", REPORT)).map(lambda t: [*t[1], "--gpu", t[0]]),
    _command("sweep", SWEEP),
    st.tuples(GPUS, st.sampled_from(["1", "2", "4", "8", "9"]), _command("plan", PLAN)).map(
        lambda t: [*t[2], "--gpu", t[0], "--gpus", t[1]]
    ),
    st.sampled_from([["models"], ["gpus"], ["nonsense"], [], ["report", "--help-me"], ["diff"], ["plan"]]),
)


def _exits_cleanly(argv: list[str], capsys: pytest.CaptureFixture[str], allowed: tuple[int, ...] = (0, 2)) -> None:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code if isinstance(e.code, int) else 2
    err = capsys.readouterr().err
    assert code in allowed, (argv, code, err[-500:])
    assert "Traceback" not in err, (argv, err[-2000:])
    if code == 2:
        assert len(err.strip().splitlines()) == 1, (argv, err[-2000:])


@settings(FUZZ, max_examples=1000)
@given(argv=COMMANDS)
def test_cli_never_ends_in_a_traceback(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    _exits_cleanly(argv, capsys)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
              st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)  # fmt: skip


@pytest.fixture(scope="module")
def report_text() -> str:
    from hybrid.render.report import to_json
    from hybrid.report import estimate
    from hybrid.workload import Workload

    return to_json(estimate(Workload.of(model="wan2.1-t2v-1.3b")))


def _mutate(doc: Any, path: list[int], value: Any) -> Any:
    """``doc`` with the node reached by ``path`` (indices into sorted keys / items) replaced."""
    if not path or not isinstance(doc, (dict, list)) or not doc:
        return value
    if isinstance(doc, dict):
        key = sorted(doc)[path[0] % len(doc)]
        return {**doc, key: _mutate(doc[key], path[1:], value)}
    i = path[0] % len(doc)
    return [*doc[:i], _mutate(doc[i], path[1:], value), *doc[i + 1 :]]


@settings(FUZZ, max_examples=400)
@given(
    path=st.lists(st.integers(min_value=0, max_value=50), max_size=5),
    value=JSON_VALUES,
    raw=st.one_of(st.none(), st.binary(max_size=40), st.sampled_from([b"[" * 5000, b"{", b"\xff\xfe{\x00}\x00", b""])),
)
def test_diff_of_malformed_documents(
    path: list[int], value: Any, raw: bytes | None, report_text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(report_text)
    if raw is None:
        new.write_text(json.dumps(_mutate(json.loads(report_text), path, value)))
    else:
        new.write_bytes(raw)
    _exits_cleanly(["diff", str(old), str(new)], capsys, allowed=(0, 1, 2))


CONFIG_VALUES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {},
        optional={
            "num_attention_heads": st.integers(-2, 64),
            "attention_head_dim": st.integers(-2, 256),
            "num_layers": st.integers(-2, 50),
            "d_model": st.integers(-2, 5000),
            "base_dim": st.integers(-2, 200),
            "patch_size": st.lists(st.integers(-1, 3), max_size=4),
            "_class_name": st.sampled_from(["WanTransformer3DModel", "AutoencoderKLWan", "Other"]),
        },
    ),
)


@settings(FUZZ, max_examples=200)
@given(
    component=st.sampled_from(["transformer", "vae", "text_encoder", "model_index.json"]),
    config=CONFIG_VALUES,
)
def test_broken_config_folders(
    component: str, config: Any, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path_factory.mktemp("model")
    target = root / component if component.endswith(".json") else root / component / "config.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(config))
    _exits_cleanly(["report", "--model", "wan2.1-t2v-1.3b", "--model-dir", str(root)], capsys)


# -- out of process (issue 22): the real CLI under time and memory limits -----------------------

FUZZ_EXAMPLES = int(os.environ.get("WANMETER_FUZZ_EXAMPLES", "48"))
"""Random command lines per run; CI runs the default."""
FUZZ_BATCH = 8
"""Examples of each family a batch draws (48 command lines), run four at a time: one batch in CI."""
FUZZ_SEED: int | None = (
    None
    if not os.environ.get("WANMETER_FUZZ_SEED")
    else random.SystemRandom().randrange(2**32)
    if os.environ["WANMETER_FUZZ_SEED"] == "random"
    else int(os.environ["WANMETER_FUZZ_SEED"])
)
"""``WANMETER_FUZZ_SEED`` unset: the same examples every run (derandomized); ``random`` or an
integer: a seeded run (a failure prints the seed that replays it)."""
FUZZ_LOG = os.environ.get("WANMETER_FUZZ_LOG", "")
"""A file: a survey run appends every failing example to it and goes on, instead of stopping."""


@pytest.fixture(scope="module")
def fuzz_root() -> Iterator[tuple[Path, Path]]:
    """A folder of shared inputs (:func:`tests.fuzz_cases.build`) and room for the examples' folders."""
    root = Path(tempfile.mkdtemp(prefix="wanmeter-fuzz-"))
    try:
        build(root / "inputs")
        (root / "runs").mkdir()
        yield root / "runs", root / "inputs"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def reproduced(fuzz_root: tuple[Path, Path]) -> dict[str, Outcome]:
    """Every reproduction of issue 22 run once, four at a time."""
    runs, inputs = fuzz_root
    names = [name for name, _ in REPRODUCTIONS]
    return dict(zip(names, run_all([e for _, e in REPRODUCTIONS], runs, inputs, workers=4), strict=True))


KNOWN_FAILING: dict[str, str] = {}
"""Reproductions that still fail, by id, with the reason (marked xfail(strict=True))."""


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_FAILING[name]))
        if name in KNOWN_FAILING
        else name
        for name, _ in REPRODUCTIONS
    ],
)
def test_issue_22_reproduction(name: str, reproduced: dict[str, Outcome]) -> None:
    outcome = reproduced[name]
    found = problems(outcome)
    assert not found, outcome.describe(found)


def _random_settings() -> settings:
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if os.environ.get("WANMETER_FUZZ_SHRINK") else [])
    return settings(
        deadline=None,
        max_examples=max(1, -(-FUZZ_EXAMPLES // (FUZZ_BATCH * len(FAMILIES)))),
        derandomize=FUZZ_SEED is None,
        database=None,
        print_blob=True,
        phases=phases,
        suppress_health_check=list(HealthCheck),
    )


def _seeded(test: Any) -> Any:
    return test if FUZZ_SEED is None else seed(FUZZ_SEED)(test)


@_seeded
@settings(_random_settings())
@given(data=st.data())
def test_random_command_lines(data: st.DataObject, fuzz_root: tuple[Path, Path]) -> None:
    """:data:`FUZZ_BATCH` examples of each family (numbers, diff documents, model folders, special
    inputs, output paths, stdout and Ctrl-C), run side by side, each in its own limited process."""
    runs, inputs = fuzz_root
    examples = [data.draw(family(), label=family.__name__) for _ in range(FUZZ_BATCH) for family in FAMILIES]
    outcomes = run_all(examples, runs, inputs, workers=4)
    failures = report_failures(outcomes)
    replay = (
        "" if FUZZ_SEED is None else f"\nreplay: WANMETER_FUZZ_SEED={FUZZ_SEED} WANMETER_FUZZ_EXAMPLES={FUZZ_EXAMPLES}"
    )
    if FUZZ_LOG and failures:
        with open(FUZZ_LOG, "a", encoding="utf-8") as f:
            f.write("\n".join(failures) + replay + "\n")
        return
    assert not failures, "\n".join(failures) + replay


def _outcome(argv: tuple[str, ...], code: int | None, err: str = "", out: str = "", **kw: Any) -> Outcome:
    from tests.fuzz import Example

    before = {"link": Entry("symlink", target="file"), "null": Entry("char device", rdev=259)}
    after = kw.pop("after", before)
    return Outcome(Example(argv, **kw), list(argv), Path("/nonexistent"), code, out.encode(), err.encode(), 0.1,
                   before, after)  # fmt: skip


@pytest.mark.parametrize(
    ("outcome", "needle"),
    [
        (_outcome(("report",), 1, "Traceback (most recent call last):\nValueError: x"), "a traceback"),
        (_outcome(("report",), None), "a hang"),
        (_outcome(("report",), -24), "over 10 s of CPU"),
        (_outcome(("report",), 2, "wanmeter: error: a\nwanmeter: error: b"), "2 lines on stderr"),
        (_outcome(("report",), 2, "wanmeter: error: " + "9" * 480), "a stderr line of 497 characters"),
        (_outcome(("report",), 2, "wanmeter: error: \x1b[31m"), "a control character on stderr"),
        (_outcome(("report", "--format", "json"), 0, out='{"flops": NaN}'), "does not parse"),
        (_outcome(("report", "--format", "json"), 0, out='{"flops": -5}'), "negative"),
        (_outcome(("report",), 0, after={"link": Entry("file"), "null": Entry("char device", rdev=259)}), "now a file"),
        (
            _outcome(
                ("report",),
                0,
                after={
                    "link": Entry("symlink", target="file"),
                    "null": Entry("char device", rdev=259),
                    ".x.json.ab12.tmp": Entry("file"),
                },
            ),
            "a temporary file",
        ),
        (_outcome(("report",), 0, stdout="closed"), "lost silently"),
        (_outcome(("trace",), 1, "KeyboardInterrupt", sigint=1.0), "Ctrl-C: exit 1"),
    ],
)
def test_the_harness_sees_each_kind_of_failure(outcome: Outcome, needle: str) -> None:
    found = problems(outcome)
    assert any(needle in p for p in found), found


def test_the_harness_passes_a_clean_refusal_and_a_diff_beyond_tolerance() -> None:
    assert problems(_outcome(("report",), 2, "wanmeter: error: frames: 0 is not 4k+1\n")) == []
    assert problems(_outcome(("diff", "a", "b", "--format", "json"), 1, out='{"delta": -5}')) == []
    assert problems(_outcome(("report", "--format", "json"), 0, out='{"range": {"error_low": -0.2}}')) == []


DEVICES = {"/dev/null": (1, 3), "/dev/full": (1, 7), "/dev/zero": (1, 5)}


def test_the_machine_s_devices_are_still_devices() -> None:
    """After every example above (pytest runs this file in order): the suite names only private
    copies of the devices and links to them, and no defect reached the real ones."""
    for path, (major, minor) in DEVICES.items():
        st = os.lstat(path)
        assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (major, minor), path
    assert os.path.islink("/dev/stdout") or stat.S_ISCHR(os.stat("/dev/stdout").st_mode)
