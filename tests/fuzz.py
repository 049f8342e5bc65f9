"""The harness of the out-of-process fuzz suite (issue 22): runs ``python -m hybrid`` as a user's
shell would, one process per command, under limits, and says what is wrong with what it did.

Every example runs in its own process with an address-space limit (:data:`MEMORY_LIMIT_BYTES`, set
by ``setrlimit(RLIMIT_AS)`` before exec), a CPU-time limit (:data:`CPU_LIMIT_S`: the kernel stops it
with SIGXCPU) and an idle limit (:data:`IDLE_LIMIT_S` without CPU: a FIFO with no writer, a
blocked read); :data:`WALL_LIMIT_S` bounds the rest. So a hang or a blow-up is a failed example,
never a stuck test run. Each runs in a fresh folder of :data:`TARGETS` (devices, symlinks, a FIFO,
folders, a read-only folder) that it may name as outputs; after it, :func:`problems` checks the
exit code, that stderr on failure is one line of at most MAX_LINE_CHARS (480) characters and no traceback, that
JSON on stdout or in the output file parses with no NaN, infinity or (outside ``diff``) negative
number, that no terminal control character is echoed, that no special file or symlink was
replaced, and that no temporary file was left.

Device nodes: as root the folder holds its own ``null``, ``full`` and ``zero`` nodes (``mknod``),
so a defect that replaces an output's node replaces the private copy, never ``/dev/null``; the
real devices are reached only through symlinks (renaming over a symlink replaces the link, not
its target). The harness never names a path under ``/dev`` as an output.
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid.errors import MAX_LINE_CHARS

ROOT = Path(__file__).resolve().parent.parent
"""The checkout under test: the subprocesses import ``hybrid`` from here (PYTHONPATH)."""

CPU_LIMIT_S = 10
"""CPU seconds an example may use (threads summed); the issue's 10 s, measured so that a loaded
CI machine does not fail an example that would be quick on a free one."""
IDLE_LIMIT_S = 10
"""Seconds without using CPU after which a running example is a hang (a FIFO with no writer, a
blocked read): the time limit for waits, which the CPU limit cannot see."""
WALL_LIMIT_S = float(os.environ.get("WANMETER_FUZZ_WALL_S", "300"))
"""Wall-clock seconds before any example is killed: loose, because CI shares its cores and a busy
example is held to :data:`CPU_LIMIT_S` anyway."""
MEMORY_LIMIT_BYTES = 2 * 1024**3
"""Address space of an example (RLIMIT_AS): 2 GiB."""
MAX_ERROR_LINE = MAX_LINE_CHARS
"""The longest line wanmeter may print on stderr (issue 22, item 17): the CLI's own bound."""
STDOUT_LIMIT_BYTES = 1024
"""RLIMIT_FSIZE of an example whose stdout is a file that fills up (``ulimit -f 1``)."""
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

TARGETS = (
    "file.txt",  # a regular file (the target of link.txt)
    "link.txt",  # -> file.txt
    "dangling.json",  # -> missing/x.json
    "null",  # char device 1,3 (as root; else -> /dev/null)
    "full",  # char device 1,7 (as root; else -> /dev/full)
    "zero",  # char device 1,5 (as root; else -> /dev/zero)
    "devnull.link",  # -> /dev/null
    "devfull.link",  # -> /dev/full
    "stdout",  # -> /proc/self/fd/1, as /dev/stdout is
    "out.fifo",  # a FIFO (a reader drains it while the example runs)
    "dir",  # a folder
    "dir.link",  # -> dir
    "ro",  # a read-only folder (examples that name it run without CAP_DAC_OVERRIDE)
)
"""What the folder an example runs in holds before it runs: the output paths it may name."""

PROGRESS = re.compile(r"\[\d+/\d+\] ")
"""A trace's progress line on stderr (``[1/3] tracing text_encoder on meta ...``): allowed before
the one error line."""

LAST_STAGE_DONE = re.compile(r"\[(\d+)/\1\] \S+: \d+ rows")
"""A trace's last progress line (``[3/3] vae_decode: 714 rows in 1.18 s``): its work is done."""

SIGNED_FIELD = re.compile(r"error|delta|relative|change")
"""Fields that may be negative in a report (a range's relative ``error_low``); any other number
wanmeter writes is a count, a size, a time or a share, and is >= 0."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
"""Terminal control characters (tab and newline are text)."""


def make_folder(parent: Path) -> Path:
    """A fresh folder of :data:`TARGETS` under ``parent``."""
    w = Path(tempfile.mkdtemp(prefix="ex-", dir=parent))
    (w / "file.txt").write_text("the previous content\n")
    os.symlink("file.txt", w / "link.txt")
    os.symlink("missing/x.json", w / "dangling.json")
    for name, minor in (("null", 3), ("full", 7), ("zero", 5)):
        try:
            os.mknod(w / name, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
        except PermissionError:
            os.symlink(f"/dev/{name}", w / name)
    os.symlink("/dev/null", w / "devnull.link")
    os.symlink("/dev/full", w / "devfull.link")
    os.symlink("/proc/self/fd/1", w / "stdout")
    os.mkfifo(w / "out.fifo")
    (w / "dir").mkdir()
    os.symlink("dir", w / "dir.link")
    (w / "ro").mkdir()
    (w / "ro" / "x.json").write_text("{}\n")
    (w / "ro").chmod(0o555)
    return w


@dataclass(frozen=True)
class Entry:
    """What one path of a folder is: its kind, device number (a device), target (a symlink)."""

    kind: str
    rdev: int = 0
    target: str = ""


def snapshot(folder: Path) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(folder))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = Entry("symlink", target=os.readlink(p))
            elif stat.S_ISCHR(st.st_mode):
                out[rel] = Entry("char device", rdev=st.st_rdev)
            elif stat.S_ISFIFO(st.st_mode):
                out[rel] = Entry("fifo")
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = Entry("folder")
            else:
                out[rel] = Entry("file")
    return out


@dataclass(frozen=True)
class Example:
    """One command line (after ``python -m hybrid``) and how it runs.

    ``{w}`` in an argument is the example's folder (:data:`TARGETS`), ``{i}`` the shared inputs
    folder (:func:`tests.fuzz_cases.build`)."""

    argv: tuple[str, ...]
    exits: frozenset[int] | None = None  # None: 0 or 2 (diff: 0, 1 beyond tolerance, or 2)
    stdout: str = "pipe"  # pipe | closed (fd 1 closed) | full (a file under RLIMIT_FSIZE) | broken (reader gone)
    sigint: float | None = None  # Ctrl-C this many CPU seconds after ``sigint_at`` is on stderr
    sigint_at: str = "tracing"  # a trace's progress line: "[2/3] tracing" is after every import
    no_dac_override: bool = False  # run without CAP_DAC_OVERRIDE: a read-only folder is read-only to root too
    killed_writer_first: bool = False  # first run it with os.replace/os.rename SIGKILLing the process
    check: Callable[[Outcome], list[str]] | None = None  # the example's own checks

    @property
    def allowed(self) -> frozenset[int]:
        if self.exits is not None:
            return self.exits
        return frozenset({0, 1, 2}) if self.argv[:1] == ("diff",) else frozenset({0, 2})

    def command(self, w: Path, i: Path) -> list[str]:
        return [a.replace("{w}", str(w)).replace("{i}", str(i)) for a in self.argv]

    def shell(self, w: Path | str = "$W", i: Path | str = "$I") -> str:
        """The example as a shell line, for a failure message (``$W``/``$I``: its folders)."""
        args = " ".join(shlex.quote(a[:200] + ("..." if len(a) > 200 else "")) for a in self.argv)
        args = args.replace("{w}", str(w)).replace("{i}", str(i))
        prefix = "(ulimit -f 1; " if self.stdout == "full" else ""
        suffix = {"closed": " >&-", "full": " > out.txt)", "broken": " | true", "pipe": ""}[self.stdout]
        extra = f" # Ctrl-C {self.sigint:g} CPU s after {self.sigint_at!r}" if self.sigint is not None else ""
        return f"{prefix}python -m hybrid {args}{suffix}{extra}"


@dataclass
class Outcome:
    example: Example
    argv: list[str]
    folder: Path
    returncode: int | None  # None: killed as hung
    stdout: bytes
    stderr: bytes
    wall_s: float
    before: dict[str, Entry]
    after: dict[str, Entry]
    stdout_file_bytes: int = 0
    notes: list[str] = field(default_factory=list)
    inputs: Path = Path("/nonexistent")
    cpu_s: float = 0.0

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def describe(self, problems: Sequence[str]) -> str:
        tail = self.err.strip()[-600:]
        return (
            f"{self.example.shell(self.folder)}\n    -> exit {self.returncode} in {self.wall_s:.1f} s "
            f"({self.cpu_s:.1f} s CPU): "
            f"{'; '.join(problems)}\n    stderr: {tail!r}"
        )


_KILL_AT_RENAME = (
    "import os, runpy, signal, sys\n"
    "def _die(*a, **k):\n"
    "    os.kill(os.getpid(), signal.SIGKILL)\n"
    "os.replace = os.rename = _die\n"
    "sys.argv = ['wanmeter', *sys.argv[1:]]\n"
    "runpy.run_module('hybrid', run_name='__main__', alter_sys=True)\n"
)
"""A writer killed after writing its temporary file, before renaming it (SIGKILL mid-write)."""

_LAUNCH = (
    "import os, resource, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_DFL)  # as in a terminal: a background job inherits it ignored\n"
    "address_space, cpu_s, fsize, close_stdout, no_dac_override = (int(a) for a in sys.argv[1:6])\n"
    "resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))\n"
    "resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "if fsize:\n"
    "    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))\n"
    "if no_dac_override and os.geteuid() == 0:  # drop CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH at exec\n"
    "    import ctypes\n"
    "    for cap in (1, 2):\n"
    "        ctypes.CDLL(None).prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP\n"
    "if close_stdout:\n"
    "    os.close(1)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[6:]])\n"
)
"""Sets an example's limits, then execs it (limits set here, not in a ``preexec_fn``, which is not
safe beside the threads that run examples side by side)."""


def _launch(example: Example, argv: list[str], kill_at_rename: bool) -> list[str]:
    entry = ["-c", _KILL_AT_RENAME] if kill_at_rename else ["-m", "hybrid"]
    limits = [MEMORY_LIMIT_BYTES, CPU_LIMIT_S, STDOUT_LIMIT_BYTES if example.stdout == "full" else 0,
              int(example.stdout == "closed"), int(example.no_dac_override)]  # fmt: skip
    return [sys.executable, "-I", "-c", _LAUNCH, *map(str, limits), *entry, *argv]


def _drain(fifo: Path, done: threading.Event) -> None:
    """Read ``fifo`` until ``done``: a reader, so that a write through the FIFO completes."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        while not done.is_set():
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    if not os.read(fd, 65536):
                        time.sleep(0.02)
                except BlockingIOError:
                    pass
    finally:
        os.close(fd)


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(
    proc: subprocess.Popen[bytes], start: float, sigint: float | None, sigint_at: str, notes: list[str]
) -> tuple[int | None, bytes, bytes, float]:
    """Wait for ``proc``: (exit code, or ``None`` if it was killed as hung; stdout; stderr; CPU seconds).

    Hung: no CPU used for :data:`IDLE_LIMIT_S` seconds once it has run that long (blocked on a
    FIFO, a lock, a read), or still running after :data:`WALL_LIMIT_S` (the CPU limit stops a busy one).
    ``sigint``: send SIGINT once the process has used this many CPU seconds after ``sigint_at``
    came on stderr (a progress line): CPU time, not wall time, so that the signal lands at the same
    place in the work however loaded the machine is."""
    chunks: dict[int, list[bytes]] = {1: [], 2: []}

    def pump(stream: Any, key: int) -> None:
        for block in iter(lambda: stream.read1(65536), b""):
            chunks[key].append(block)

    pumps = [threading.Thread(target=pump, args=(s, k), daemon=True) for k, s in ((1, proc.stdout), (2, proc.stderr))
             if s is not None and not s.closed]  # fmt: skip
    for t in pumps:
        t.start()
    history: list[tuple[float, float]] = []
    hung = False
    seen: float | None = None  # the CPU seconds used when ``sigint_at`` came
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            if sigint is not None:
                notes.append("finished before the SIGINT")
            break
        now = time.monotonic() - start
        if sigint is not None and seen is None and sigint_at.encode() in b"".join(chunks[2]):
            seen = _cpu_s(proc.pid)
        if sigint is not None and seen is not None and _cpu_s(proc.pid) >= seen + sigint:
            if LAST_STAGE_DONE.search(b"".join(chunks[2]).decode("utf-8", "replace")):
                notes.append("finished before the SIGINT")  # the harness was late: the work was done
            else:
                os.kill(proc.pid, signal.SIGINT)
            sigint = None
        history.append((now, _cpu_s(proc.pid)))
        recent = [c for t, c in history if t >= now - IDLE_LIMIT_S]
        idle = now > IDLE_LIMIT_S and recent and history[-1][1] - recent[0] < 0.05
        if idle or now > WALL_LIMIT_S:
            hung = True
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in pumps:
        t.join(timeout=10)
    code = None if hung else proc.returncode
    return code, b"".join(chunks[1]), b"".join(chunks[2]), usage.ru_utime + usage.ru_stime


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_", "HYPOTHESIS"))}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _spawn(example: Example, argv: list[str], folder: Path, kill_at_rename: bool = False) -> Outcome:
    stdout_file = folder / "stdout.txt" if example.stdout == "full" else None
    cmd = _launch(example, argv, kill_at_rename)
    before = snapshot(folder)
    out_handle: Any = subprocess.PIPE
    if example.stdout == "full" and stdout_file is not None:
        out_handle = stdout_file.open("wb")
    elif example.stdout == "closed":
        out_handle = subprocess.DEVNULL
    done = threading.Event()
    reader = None
    if any("out.fifo" in a for a in argv) and (folder / "out.fifo").exists():
        reader = threading.Thread(target=_drain, args=(folder / "out.fifo", done), daemon=True)
        reader.start()
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=out_handle,
        stderr=subprocess.PIPE,
        cwd=folder,
        env=_env(),
    )
    notes: list[str] = []
    if out_handle not in (subprocess.PIPE, subprocess.DEVNULL):
        out_handle.close()
    if example.stdout == "broken" and proc.stdout is not None:
        proc.stdout.close()  # the reader goes away before the first write (`| true`)
    code, out, err, cpu = _wait(proc, start, None if kill_at_rename else example.sigint, example.sigint_at, notes)
    wall = time.monotonic() - start
    done.set()
    if reader is not None:
        reader.join(timeout=5)
    return Outcome(
        example,
        argv,
        folder,
        code,
        out,
        err,
        wall,
        before,
        snapshot(folder),
        stdout_file.stat().st_size if stdout_file is not None else 0,
        notes,
        cpu_s=cpu,
    )


def run(example: Example, parent: Path, inputs: Path) -> Outcome:
    """Run ``example`` in a fresh folder under ``parent`` (``{i}`` is ``inputs``)."""
    folder = make_folder(parent)
    argv = example.command(folder, inputs)
    initial = snapshot(folder)
    if example.killed_writer_first:
        _spawn(example, argv, folder, kill_at_rename=True)
    outcome = _spawn(example, argv, folder)
    outcome.before = initial
    outcome.inputs = inputs
    return outcome


def run_all(examples: Iterable[Example], parent: Path, inputs: Path, workers: int = 4) -> list[Outcome]:
    """Run ``examples``, ``workers`` at a time (each its own process under its own limits)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda e: run(e, parent, inputs), examples))


# -- what is wrong with an outcome --------------------------------------------------------------


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} in JSON")

    return json.loads(text, parse_constant=refuse)


def _numbers(doc: Any, path: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        yield path, doc


def json_problems(text: str, signed: bool) -> list[str]:
    """What is wrong with a JSON document wanmeter wrote (``signed``: negative numbers are deltas)."""
    try:
        doc = _strict_json(text)
    except (ValueError, RecursionError) as e:
        return [f"its JSON does not parse ({str(e)[:80]})"]
    out = []
    for path, value in _numbers(doc):
        if (isinstance(value, float) and value != value) or value in (float("inf"), float("-inf")):
            out.append(f"{path} is {value}")
        elif value < 0 and not signed and not SIGNED_FIELD.search(path.rsplit(".", 1)[-1]):
            out.append(f"{path} is negative ({value})")
        if len(out) > 3:
            break
    return out


def _output_path(argv: Sequence[str]) -> str | None:
    for flag in ("-o", "--output"):
        if flag in argv[:-1]:
            return argv[list(argv).index(flag) + 1]
    return None


def problems(o: Outcome) -> list[str]:
    """Everything wrong with ``o``; an empty list if it behaved."""
    e, out = o.example, []
    err = o.err
    lines = [line for line in err.splitlines() if line.strip()]
    if o.returncode is None:
        out.append(f"a hang (killed after {o.wall_s:.0f} s, {o.cpu_s:.1f} s of it on CPU)")
    elif o.returncode == -signal.SIGXCPU:
        out.append(f"over {CPU_LIMIT_S} s of CPU")
    elif o.returncode == -signal.SIGPIPE and e.stdout == "broken":
        pass  # killed by SIGPIPE with the reader gone: quiet, as `| head` expects
    elif o.returncode < 0:
        out.append(f"killed by {signal.Signals(-o.returncode).name}")
    elif o.returncode not in e.allowed and not (o.returncode == 0 and "finished before the SIGINT" in o.notes):
        out.append(f"exit {o.returncode}, not {'/'.join(map(str, sorted(e.allowed)))}")
    if "Traceback" in err:
        out.append(f"a traceback ({lines[-1][:120] if lines else ''})")
    elif "MemoryError" in err:
        out.append("MemoryError")
    said = [line for line in lines if not PROGRESS.match(line)]
    if o.returncode in (EXIT_BAD_INPUT, EXIT_INTERRUPTED) and len(said) != 1 and "Traceback" not in err:
        out.append(f"{len(said)} lines on stderr, not one")
    long = [len(line) for line in lines if len(line) > MAX_ERROR_LINE]
    if long:
        out.append(f"a stderr line of {long[0]:,} characters (at most {MAX_ERROR_LINE})")
    if _CONTROL.search(err):
        out.append(f"a control character on stderr ({_CONTROL.search(err).group()!r})")  # type: ignore[union-attr]
    text = o.stdout.decode("utf-8", "replace")
    if _CONTROL.search(text):
        out.append(f"a control character on stdout ({_CONTROL.search(text).group()!r})")  # type: ignore[union-attr]
    # the document it wrote
    signed = bool(o.argv) and o.argv[0] == "diff"
    target = _output_path(o.argv)
    fmt = o.argv[o.argv.index("--format") + 1] if "--format" in o.argv[:-1] else ""
    if o.returncode == 0 and fmt == "json":
        if target is None and e.stdout == "pipe":
            out += [f"stdout: {p}" for p in json_problems(text, signed)]
        elif target is not None:
            p = (o.folder / target) if not os.path.isabs(target) else Path(target)
            if p.is_file() and not p.is_symlink():
                out += [f"{target}: {p_}" for p_ in json_problems(p.read_text("utf-8", "replace"), signed)]
    # standard output that could not be written
    if e.stdout == "closed" and target is None and o.returncode == 0:
        out.append("stdout was closed, yet exit 0 (the output was lost silently)")
    if e.stdout == "full" and o.stdout_file_bytes >= STDOUT_LIMIT_BYTES and o.returncode == 0:
        out.append(f"stdout cut at {o.stdout_file_bytes} bytes by the file-size limit, yet exit 0")
    if e.sigint is not None and "finished before the SIGINT" not in o.notes and o.returncode != EXIT_INTERRUPTED:
        out.append(f"Ctrl-C: exit {o.returncode}, not {EXIT_INTERRUPTED}")
    out += filesystem_problems(o.before, o.after)
    if e.check is not None:
        out += e.check(o)
    return out


def filesystem_problems(before: dict[str, Entry], after: dict[str, Entry]) -> list[str]:
    out = []
    for rel, was in before.items():
        now = after.get(rel)
        if was.kind in ("symlink", "char device", "fifo", "folder") and now != was:
            now_text = "gone" if now is None else f"a {now.kind}"
            out.append(f"{rel} was a {was.kind}{' -> ' + was.target if was.target else ''}, now {now_text}")
    for rel in sorted(set(after) - set(before)):
        name = rel.rsplit("/", 1)[-1]
        if name.endswith(".tmp") or (name.startswith(".") and after[rel].kind == "file"):
            out.append(f"a temporary file left behind ({rel})")
    return out


def report_failures(outcomes: Sequence[Outcome]) -> list[str]:
    """One paragraph per outcome with problems: the shell line, the exit, what is wrong."""
    out = []
    for o in outcomes:
        found = problems(o)
        if found:
            out.append(o.describe(found))
    return out
