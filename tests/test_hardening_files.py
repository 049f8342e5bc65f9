"""Bad and extreme input, second round (issue 22): files read, outputs written, the process's
standard output and signals, and the error line itself. Each test failed before its fix. One line
on stderr (at most 300 characters), exit 2 (130 for Ctrl-C), never a traceback, nothing clobbered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid.cli import main
from hybrid.errors import MAX_LINE_CHARS, echo, one_line

ROOT = Path(__file__).resolve().parent.parent
WANMETER = [sys.executable, "-m", "hybrid"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own --help
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    code, _, err = _run(argv, capsys)
    return _is_one_line(code, err, *needles)


def _is_one_line(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    line = err.removesuffix("\n")
    assert "\n" not in line and "Traceback" not in line and line.startswith("wanmeter: error: "), line
    assert len(line) <= MAX_LINE_CHARS, len(line)
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def _subprocess(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        [*WANMETER, *argv], env=ENV, cwd=ROOT, text=True, timeout=60, **kw
    )


# -- 17: every error line is one printable line of at most 300 characters ------------------------


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        # 1,267 characters before: the frames and both nearest values echoed whole
        (["report", "--frames", "1" + "0" * 400], ("frames: 1000", "(401 characters)", "4k+1")),
        # 5,057: argparse echoed the 5,000 nines int() refused
        (["plan", "--gpu", "h100-sxm", "--gpus", "9" * 5000], ("--gpus", "(5,000 characters)")),
        # 10,231: the unknown model echoed whole (then the valid names)
        (["report", "--model", "x" * 10_000], ("unknown model 'xxxx", "(10,000 characters)", "wan2.2-ti2v-5b")),
    ],
)
def test_17_echoed_values_are_cut(
    argv: list[str], needles: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    _one_line_error(argv, capsys, *needles)


def test_17_terminal_escape_codes_are_escaped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _one_line_error(["report", "--model", "\x1b[31mred\x07"], capsys, r"'\x1b[31mred\x07'")
    assert "\x1b" not in line and "\x07" not in line
    path = tmp_path / "a\x1b[2Jb\nc.json"  # a file name with an escape code and a newline
    line = _one_line_error(["diff", str(path), str(path)], capsys, r"a\x1b[2Jb\nc.json", "no such file")
    assert "\x1b" not in line


def test_17_the_guard_cuts_what_no_message_cut() -> None:
    # a long word (an echoed value) is cut where it stands, so the valid range after it survives
    line = one_line("frames: " + "7" * 5000 + " is invalid; valid: 1 to 9")
    assert line == "frames: " + "7" * 40 + "... (5,000 characters) is invalid; valid: 1 to 9"
    assert len(one_line("word " * 1000)) == MAX_LINE_CHARS  # and the line last of all
    assert one_line("a\tb\x00c\u200bd") == r"a\tb\x00c\u200bd"
    assert echo("x" * 41) == "'" + "x" * 40 + "'... (41 characters)"
    assert echo(10**50) == "1" + "0" * 39 + "... (51 characters)"
    assert echo("\x1b") == r"'\x1b'"


# -- 6 and 13: standard output closed, full, cut short by a pipe or a file-size limit ------------


def test_6_closed_stdout_is_one_line(tmp_path: Path) -> None:
    # `wanmeter models >&-`: sys.stdout is None (AttributeError before)
    run = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *WANMETER, "models"],
        env=ENV,
        cwd=ROOT,
        text=True,
        capture_output=False,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    _is_one_line(run.returncode, run.stderr, "standard output is closed", "-o FILE")
    # with -o the closed stdout is not needed
    run = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *WANMETER, "models", "-o", str(tmp_path / "m.txt")],
        env=ENV,
        cwd=ROOT,
        text=True,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    assert run.returncode == 0 and run.stderr == "" and "wan2.1-t2v-14b" in (tmp_path / "m.txt").read_text()


def test_6_a_closed_pipe_is_quiet_exit_141() -> None:
    # `wanmeter ... | head -1` once head has gone: no BrokenPipeError traceback, no "Exception ignored";
    # the shell's convention for a writer a pipe stopped (128 + SIGPIPE), as `yes | head -1` gives
    proc = subprocess.Popen(
        [*WANMETER, "models", "--format", "json"], env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 128 + signal.SIGPIPE
    assert err == ""


def test_13_a_full_stdout_is_an_error() -> None:
    with open("/dev/full", "w") as full:
        run = _subprocess(["models"], stdout=full, stderr=subprocess.PIPE)
    _is_one_line(run.returncode, run.stderr, "standard output", "No space left on device")


def test_13_stdout_under_a_file_size_limit_is_an_error(tmp_path: Path) -> None:
    # `ulimit -f 1`: the first write is cut at 1,024 bytes and the rest fails with EFBIG (exit 0 before)
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    out = tmp_path / "cut.json"
    with out.open("w") as f:
        run = _subprocess(["models", "--format", "json"], stdout=f, stderr=subprocess.PIPE, preexec_fn=limit)
    _is_one_line(run.returncode, run.stderr, "standard output", "File too large")
    assert out.stat().st_size == 1024


def test_6_ctrl_c_is_one_line_and_exit_130(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import hybrid.cli

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(hybrid.cli, "cmd_models", interrupted)
    code, out, err = _run(["models"], capsys)
    assert (code, out, err) == (130, "", "wanmeter: interrupted\n")


def test_6_ctrl_c_during_a_trace_is_one_line_and_exit_130() -> None:
    # a real SIGINT once the trace has started (a 70-line KeyboardInterrupt traceback before)
    argv = ["trace", "--model", "wan2.1-t2v-14b", "--format", "json"]
    proc = subprocess.Popen([*WANMETER, *argv], env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    first = proc.stderr.readline().decode()  # "[1/3] text_encoder: ..."
    assert first.startswith("[1/3]"), first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert out == b"" and err.decode() == "wanmeter: interrupted\n"
