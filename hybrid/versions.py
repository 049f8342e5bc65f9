"""Versions of wanmeter and the libraries whose code we trace (provenance for data files)."""

from __future__ import annotations

from importlib import metadata

LIBRARIES: tuple[str, ...] = ("wanmeter", "torch", "diffusers", "transformers")


def library_versions() -> dict[str, str]:
    """``{name: version}`` from installed distributions (no import of torch); ``"absent"`` if missing."""
    out: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out
