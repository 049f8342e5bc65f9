"""Local Diffusers-format Wan folders: configs and parameter counts, no weights loaded.

A folder as ``Wan-AI/Wan2.1-T2V-*-Diffusers`` ships it::

    model_index.json
    transformer/config.json   transformer/*.safetensors
    vae/config.json           vae/*.safetensors
    text_encoder/config.json  text_encoder/*.safetensors

Each ``config.json`` overrides the preset's config field by field (unknown keys such as
``_class_name`` are ignored). Parameter counts come from the ``*.safetensors`` headers alone (an
8-byte little-endian length, then a JSON table of tensor shapes). A missing folder or file falls
back to the preset with a warning; a malformed JSON file or header is an error naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from math import prod
from pathlib import Path
from typing import Any, TypeVar

from hybrid.models import PRESETS, ModelSpec, get_preset

T = TypeVar("T")

MAX_HEADER_BYTES = 100 * 1024 * 1024


class CheckpointError(ValueError):
    """A file of a local checkpoint folder cannot be read."""


def read_json(path: Path) -> dict[str, Any]:
    """Parse a JSON object from ``path``; :class:`CheckpointError` naming the file otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: malformed JSON ({e})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def safetensors_parameters(path: Path) -> int:
    """Number of elements of all tensors listed in a ``.safetensors`` header (weights unread)."""
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise CheckpointError(f"{path}: malformed safetensors header (file shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES:
            raise CheckpointError(f"{path}: malformed safetensors header (declared length {n})")
        raw = f.read(n)
    if len(raw) != n:
        raise CheckpointError(f"{path}: malformed safetensors header (truncated)")
    try:
        table = json.loads(raw)
        total = 0
        for name, info in table.items():
            if name == "__metadata__":
                continue
            total += prod(int(s) for s in info["shape"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path}: malformed safetensors header ({e})") from None
    return total


def _override(base: T, values: dict[str, Any], path: Path) -> T:
    fields = {f.name for f in dataclasses.fields(base)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for k, v in values.items():
        if k not in fields:
            continue
        current = getattr(base, k)
        kwargs[k] = tuple(v) if isinstance(current, tuple) and isinstance(v, list) else v
    try:
        return dataclasses.replace(base, **kwargs)  # type: ignore[type-var]
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: unsupported config ({e})") from None


def load_model_dir(path: str | Path, model: str) -> ModelSpec:
    """A :class:`ModelSpec` from a local Diffusers folder, ``model``'s preset filling the gaps."""
    root = Path(path)
    preset = get_preset(model)
    if not root.is_dir():
        return dataclasses.replace(preset, warnings=(f"model-dir {root} not found: using the {model} preset configs",))
    warnings: list[str] = []
    index = root / "model_index.json"
    if index.is_file():
        read_json(index)
    else:
        warnings.append(f"{index} not found")
    configs: dict[str, Any] = {}
    counts: list[tuple[str, int]] = []
    for field_name, base in preset.components().items():
        sub = field_name  # the component's sub-folder has the pipeline component's name
        cfg_path = root / sub / "config.json"
        if cfg_path.is_file():
            configs[field_name] = _override(base, read_json(cfg_path), cfg_path)
        else:
            configs[field_name] = base
            warnings.append(f"{cfg_path} not found: using the {model} preset's {sub} config")
        shards = sorted((root / sub).glob("*.safetensors")) if (root / sub).is_dir() else []
        if shards:
            counts.append((field_name, sum(safetensors_parameters(s) for s in shards)))
    spec = dataclasses.replace(
        preset,
        source=str(root),
        checkpoint_parameters=tuple(counts),
        warnings=tuple(warnings),
        **configs,
    )
    same = [n for n, p in PRESETS.items() if p.components() == spec.components()]
    name = model if model in same else (same[0] if same else f"local:{root.name}")
    return dataclasses.replace(spec, name=name)


def resolve_model(model: str, model_dir: str | Path | None = None) -> ModelSpec:
    """The preset ``model``, or the configs of ``model_dir`` over it."""
    if model_dir is None:
        return get_preset(model)
    return load_model_dir(model_dir, model)
