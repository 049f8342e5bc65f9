"""Reading and writing the files wanmeter exchanges with users: one place for the one-line errors
a bad file gets, and for atomic writes.

:func:`read_json` names the file in every failure (missing, unreadable, not UTF-8, malformed,
nested beyond reason) in one line. :func:`write_atomic` writes beside the target and renames, so
a failed write (disk full, file-size limit) leaves the previous file whole; :func:`check_writable`
says before long work that an output cannot be written.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hybrid.errors import InputError

CALIBRATION_DIR = Path(__file__).resolve().parent.parent / "calibration"
"""The committed calibration data of a source checkout (laws, golden tables, efficiencies, interconnect
measurements, public timings): found beside the package, wherever the command runs from."""

MAX_NESTING = 64
"""How deep a JSON document may nest (wanmeter's own go 6 deep); deeper ones are refused before
Python's parser recurses into them."""


def _depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def read_json(path: Path, what: str) -> Any:
    """The JSON value in ``path`` (``what`` names it in errors: "timing calibration", ...);
    ``ValueError`` in one line naming the file otherwise."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a {what} file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text (a binary or UTF-16 file?); a {what} is UTF-8 JSON") from None
    if _depth(text) > MAX_NESTING:
        raise InputError(f"{path}: JSON nested deeper than {MAX_NESTING} levels; not a {what}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(
            f"{path}: malformed JSON at line {e.lineno}, column {e.colno} ({e.msg}); not a {what}"
        ) from None


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
