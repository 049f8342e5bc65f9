"""Reading and writing the files wanmeter exchanges with users: one place for the one-line errors
a bad file gets, and for atomic writes.

:func:`read_bytes` reads regular files only (a FIFO would block forever, ``/dev/zero`` never ends)
and at most a cap per kind of file, said in the error; :func:`read_json` names the file in every
failure (missing, unreadable, not UTF-8, malformed, nested beyond reason) in one line.
:func:`write_atomic` writes beside the target and renames, so a failed write (disk full,
file-size limit) leaves the previous file whole; :func:`check_writable` says before long work that
an output cannot be written.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from hybrid.errors import InputError

CALIBRATION_DIR = Path(__file__).resolve().parent.parent / "calibration"
"""The committed calibration data of a source checkout (laws, golden tables, efficiencies, interconnect
measurements, public timings): found beside the package, wherever the command runs from."""

MAX_NESTING = 64
"""How deep a JSON document may nest (wanmeter's own go 6 deep); deeper ones are refused (Python's
parser gives up at its recursion limit, about 1,000, and is stopped there too)."""

MiB = 1 << 20

CONFIG_BYTES = 1 * MiB
"""The largest ``config.json`` of a checkpoint folder read: one model's constructor arguments (every
preset's largest config is 458 bytes as JSON), so 1 MiB is over 2,000 times that."""

CALIBRATION_BYTES = 16 * MiB
"""The largest calibration file read (timing efficiencies, interconnect measurements, laws, golden
tables, public timings): the largest committed one, ``calibration/golden/wan2.2-i2v-a14b_64x48x5.json``,
is 1,278,161 bytes."""

DOCUMENT_BYTES = 64 * MiB
"""The largest report or trace document ``diff`` reads: the largest trace wanmeter writes at a
preset's defaults, ``trace --model wan2.1-vace-14b --ref-images 2 --format json``, is 4,083,421
bytes (measured on 6a4bb63), and a trace's rows do not grow with the workload's size."""

_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


def file_kind(mode: int) -> str | None:
    """What a ``stat`` mode names when it is not a regular file ("FIFO", "character device", ...)."""
    return next((name for test, name in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "special file")


def _cap(max_bytes: int) -> str:
    return f"{max_bytes // MiB} MiB" if max_bytes % MiB == 0 else f"{max_bytes:,} bytes"


def _refuse_special(path: Path, mode: int, what: str) -> None:
    kind = file_kind(mode)
    if kind == "directory":
        raise InputError(f"{path}: is a directory, not a {what} file")
    if kind is not None:
        raise InputError(f"{path}: is a {kind}, not a regular file; a {what} is read from a regular file")


@contextmanager
def open_regular(path: Path, what: str) -> Iterator[BinaryIO]:
    """``path`` opened for reading if it is a regular file; one-line :class:`InputError` naming it
    otherwise (missing, unreadable, a directory, a FIFO, a device, a socket). Opened without
    blocking, so a FIFO is refused, never waited on."""
    try:
        _refuse_special(path, os.stat(path).st_mode, what)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as f:
        _refuse_special(path, os.fstat(fd).st_mode, what)  # it may have changed since the stat
        yield f


def read_bytes(path: Path, what: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them; one-line
    :class:`InputError` naming the file, and the cap where it is larger."""
    with open_regular(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise InputError(f"{path}: {size:,} bytes; a {what} is at most {_cap(max_bytes)}")
        try:
            raw = f.read(max_bytes + 1)  # the size can grow, or lie (a file of /proc says 0)
        except OSError as e:
            raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(raw) > max_bytes:
        raise InputError(f"{path}: more than {max_bytes:,} bytes; a {what} is at most {_cap(max_bytes)}")
    return raw


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > MAX_NESTING:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, path: Path, what: str, constants: bool = True) -> Any:
    """The JSON value of ``raw`` (read from ``path``); one-line :class:`InputError` naming the file
    when it is not UTF-8, malformed or nested deeper than :data:`MAX_NESTING`. ``constants``:
    accept Python's ``NaN`` and ``Infinity`` (strict JSON has neither)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text (a binary or UTF-16 file?); a {what} is UTF-8 JSON") from None
    deep = InputError(f"{path}: JSON nested deeper than {MAX_NESTING} levels; not a {what}")
    try:
        value = json.loads(text) if constants else json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise deep from None
    except json.JSONDecodeError as e:
        raise InputError(
            f"{path}: malformed JSON at line {e.lineno}, column {e.colno} ({e.msg}); not a {what}"
        ) from None
    except ValueError as e:  # a constant refused
        raise InputError(f"{path}: malformed JSON ({e}); not a {what}") from None
    if isinstance(value, (dict, list)) and _too_deep(value):
        raise deep
    return value


def read_json(path: Path, what: str, max_bytes: int = CALIBRATION_BYTES) -> Any:
    """The JSON value in the regular file ``path`` of at most ``max_bytes`` (``what`` names it in
    errors: "timing calibration", ...); :class:`InputError` in one line naming the file otherwise."""
    return parse_json(read_bytes(path, what, max_bytes), path, what)


def check_writable(path: Path, what: str = "output") -> None:
    """``ValueError`` in one line unless ``path`` can be written: its directory exists and is a
    directory, and ``path`` is not one."""
    parent = path.parent
    if not parent.exists():
        raise InputError(f"{what}: directory {parent} does not exist; create it first")
    if not parent.is_dir():
        raise InputError(f"{what}: {parent} is not a directory")
    if path.is_dir():
        raise InputError(f"{what}: {path} is a directory; give a file name")


def write_atomic(path: Path, data: str | bytes, what: str = "output") -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``: the target
    is either the old file or the whole new one, never a part. ``ValueError`` naming the file on
    failure (the temporary file removed)."""
    check_writable(path, what)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(
            f"{what}: cannot write {path} ({e.strerror or e}); the previous file, if any, is unchanged"
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
