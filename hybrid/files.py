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

import errno
import json
import os
import re
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


def _existing(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _special(path: Path) -> os.stat_result | None:
    """The ``stat`` of what ``path`` names, links followed, when it is not a regular file to
    replace: a FIFO, a device, a folder, or a link the kernel resolves that no path names
    (``/dev/stdout`` -> ``/proc/self/fd/1`` -> a pipe)."""
    try:
        found = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(found.st_mode):
        return found
    real = _existing(Path(os.path.realpath(path)))
    same = real is not None and (real.st_dev, real.st_ino) == (found.st_dev, found.st_ino)
    return None if same else found


def check_writable(path: Path, what: str = "output") -> None:
    """One-line :class:`InputError` naming ``what`` (the option) unless ``path`` can be written,
    said before any work: its folder exists, is a folder and can be written in, and ``path`` is
    not a folder nor a block device. A symlink is judged by what it points at (it is written
    through); a FIFO or a character device (``/dev/null``) is written through, never replaced."""
    found = _special(path)
    if found is not None:
        kind = file_kind(found.st_mode)
        if kind in ("directory", "block device", "socket"):
            raise InputError(f"{what}: {path} is a {kind}; give a file name")
        if not os.access(path, os.W_OK):
            raise InputError(f"{what}: cannot write {path} (Permission denied)")
        return
    target = Path(os.path.realpath(path))
    parent = (target if os.path.islink(path) else path).parent  # the user's words, or where the link points
    if not target.parent.exists():
        raise InputError(f"{what}: directory {parent} does not exist; create it first")
    if not target.parent.is_dir():
        raise InputError(f"{what}: {parent} is not a directory")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise InputError(f"{what}: cannot write in {parent} (Permission denied)")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_through(path: Path, data: bytes, what: str, mode: int) -> None:
    """Write into the special file ``path`` names (links followed): a FIFO with no reader is
    refused at once, not waited on; a regular file behind a link no path names is truncated."""
    flags = os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | (os.O_TRUNC if stat.S_ISREG(mode) else 0))
    except OSError as e:
        if stat.S_ISFIFO(mode) and e.errno == errno.ENXIO:
            raise InputError(f"{what}: {path} is a FIFO with no reader; start the reader first") from None
        raise InputError(f"{what}: cannot write {path} ({e.strerror or e})") from None
    try:
        os.set_blocking(fd, True)
        _write_all(fd, data)
    except OSError as e:
        raise InputError(f"{what}: cannot write {path} ({e.strerror or e})") from None
    finally:
        os.close(fd)


def _temporaries(target: Path) -> re.Pattern[str]:
    """The names :func:`write_atomic` gives its temporary files for ``target``:
    ``.NAME.PID.XXXXXXXX.tmp``, the writer's process id in it."""
    return re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[A-Za-z0-9_]+\.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove_stale(target: Path) -> None:
    """Remove the temporaries of ``target`` whose writer is dead (killed mid-write: SIGKILL, power
    loss); another writer's that is still running are left alone."""
    pattern = _temporaries(target)
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            (target.parent / name).unlink(missing_ok=True)


def write_atomic(path: Path, data: str | bytes, what: str = "output") -> None:
    """Write ``data`` to ``path``: a regular file (or a new one) through a temporary file beside it,
    renamed over it, so that it is either the old file or the whole new one, never a part; a
    symlink is followed (the link stays, its target is written); a FIFO or a character device
    (``/dev/null``, ``/dev/full``) is written into, never replaced. :class:`InputError` naming
    ``what`` and the file on failure (the temporary file removed). A temporary of the same target
    left by a writer that died mid-write is removed first."""
    check_writable(path, what)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    found = _special(path)
    if found is not None:
        _write_through(path, raw, what, found.st_mode)
        return
    target = Path(os.path.realpath(path))
    _remove_stale(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise InputError(f"{what}: cannot write in {target.parent} ({e.strerror or e})") from None
    try:
        try:
            _write_all(fd, raw)
        finally:
            os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, target)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(
            f"{what}: cannot write {path} ({e.strerror or e}); the previous file, if any, is unchanged"
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
