"""Local Diffusers-format Wan folders: configs and parameter counts, no weights loaded.

A folder as ``Wan-AI/Wan2.1-T2V-*-Diffusers`` ships it::

    model_index.json
    transformer/config.json   transformer/*.safetensors
    vae/config.json           vae/*.safetensors
    text_encoder/config.json  text_encoder/*.safetensors
    image_encoder/config.json image_encoder/*.safetensors   (image-to-video)

Each ``config.json`` overrides the preset's config field by field. Every value is checked against
the field's type and range (integers >= 1, finite non-negative numbers, true/false, lists of
those); a key that is not a field is refused unless it is metadata (``_``-prefixed, or
:data:`METADATA_KEYS`) or one the family lists as cost-free (``COST_FREE_KEYS``: e.g. the VAE's
``latents_mean``), so a config of an architecture wanmeter does not model (a Wan2.2 VAE's
``is_residual``) is an error, never silently a Wan2.1 one.
``model_index.json``'s ``_class_name`` must be the preset's pipeline. Parameter counts come from
the ``*.safetensors`` headers alone (an 8-byte little-endian length, then a JSON table of tensor
shapes). A missing folder or file falls back to the preset with a warning; every bad file, key or
value is a one-line :class:`CheckpointError` naming the file (and the key and valid range).
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import types
import typing
from math import prod
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

from hybrid import files
from hybrid.errors import InputError, echo
from hybrid.presets import PRESETS, ModelSpec, get_preset

T = TypeVar("T")

SAFETENSORS_HEADER_BYTES = 16 * files.MiB
"""The longest ``.safetensors`` header read. The format allows 100,000,000 bytes (``MAX_HEADER_SIZE``
in huggingface/safetensors ``safetensors/src/tensor.rs``), which Python parses in about 20 s; the
largest header of a preset's component, every tensor in one file, is 139,670 bytes (VACE-14B's
transformer: 1,331 tensors, measured from the real module's ``state_dict`` on 6a4bb63), so 16 MiB
is 120 times that and parses in about 2 s."""

ELEMENTS_LIMIT = 2**64
"""A tensor of a ``.safetensors`` file has fewer elements than this: safetensors counts shapes in
64-bit ``usize`` and refuses an overflow (``SafeTensorError::ValidationOverflow``)."""


class CheckpointError(InputError):
    """A file of a local checkpoint folder cannot be read."""


def read_json(path: Path) -> dict[str, Any]:
    """Parse a JSON object from ``path``; :class:`CheckpointError` naming the file otherwise."""
    try:
        data = files.read_json(path, "config.json", files.CONFIG_BYTES)
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _header(path: Path) -> Any:
    """The JSON value of ``path``'s safetensors header (the 8-byte little-endian length, then the JSON)."""
    try:
        with files.open_regular(path, "safetensors") as f:
            head = f.read(8)
            if len(head) != 8:
                raise CheckpointError(f"{path}: malformed safetensors header (file shorter than 8 bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > SAFETENSORS_HEADER_BYTES:
                raise CheckpointError(
                    f"{path}: a safetensors header of {n:,} bytes; wanmeter reads at most "
                    f"{SAFETENSORS_HEADER_BYTES // files.MiB} MiB"
                )
            raw = f.read(n)
    except CheckpointError:
        raise
    except (InputError, OSError) as e:
        raise CheckpointError(str(e) if isinstance(e, InputError) else f"{path}: cannot read ({e.strerror})") from None
    if len(raw) != n:
        raise CheckpointError(f"{path}: malformed safetensors header (truncated)")
    try:
        return files.parse_json(raw, path, "safetensors header", constants=False)
    except InputError as e:
        raise CheckpointError(f"{path}: malformed safetensors header ({str(e).removeprefix(f'{path}: ')})") from None


def safetensors_parameters(path: Path) -> int:
    """Number of elements of all tensors listed in a ``.safetensors`` header (weights unread);
    :class:`CheckpointError` naming the file, the tensor and what is wrong with it otherwise."""
    table = _header(path)
    if not isinstance(table, dict):
        raise CheckpointError(f"{path}: malformed safetensors header (a JSON object of tensors, got {_short(table)})")
    total = 0
    for name, info in table.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {echo(name)}"
        if not isinstance(info, dict):
            raise CheckpointError(f"{where} must be an object with a shape, got {_short(info)}")
        shape = info.get("shape")
        if not isinstance(shape, list):
            raise CheckpointError(f"{where}: shape must be a list of whole numbers >= 0, got {_short(shape)}")
        bad = [s for s in shape if isinstance(s, bool) or not isinstance(s, int) or s < 0]
        if bad:
            raise CheckpointError(f"{where}: shape must be whole numbers >= 0, got {_short(bad[0])}")
        elements = prod(shape)
        if elements >= ELEMENTS_LIMIT:
            raise CheckpointError(
                f"{where}: shape {_short(shape)} has 2^64 elements or more; safetensors counts them in 64 bits"
            )
        total += elements
    return total


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _checked(path: Path, key: str, hint: Any, value: Any, minimum: int) -> Any:
    """``value`` as the field type ``hint`` wants it; :class:`CheckpointError` naming file, key and
    the valid range otherwise."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in get_args(hint):
            return None
        hint = next(a for a in get_args(hint) if a is not type(None))
    if get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise CheckpointError(f"{path}: {key}: must be a list, got {_short(value)}")
        return tuple(_checked(path, f"{key}[{i}]", get_args(hint)[0], v, minimum) for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise CheckpointError(f"{path}: {key}: must be true or false, got {_short(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise CheckpointError(f"{path}: {key}: must be an integer >= {minimum}, got {_short(value)}")
        return value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
        if not ok:
            raise CheckpointError(f"{path}: {key}: must be a finite number >= 0, got {_short(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise CheckpointError(f"{path}: {key}: must be a string, got {_short(value)}")
        return value
    raise CheckpointError(f"{path}: {key}: cannot be read")  # pragma: no cover - every field type is above


METADATA_KEYS = frozenset({"architectures", "model_type", "transformers_version", "torch_dtype", "dtype"})
"""Metadata keys of a transformers ``config.json`` (diffusers' are ``_``-prefixed): never a cost."""


def _override(base: T, values: dict[str, Any], path: Path) -> T:
    cls = type(base)
    hints = typing.get_type_hints(cls)
    runtime_fields: frozenset[str] = getattr(cls, "RUNTIME_FIELDS", frozenset())  # set by a runtime, not a file
    fields = {f.name: f for f in dataclasses.fields(base) if f.name not in runtime_fields}  # type: ignore[arg-type]
    ignored: frozenset[str] = METADATA_KEYS | getattr(cls, "COST_FREE_KEYS", frozenset())
    kwargs: dict[str, Any] = {}
    for k, v in values.items():
        if k.startswith("_") or k in ignored:
            continue
        if k not in fields:
            raise CheckpointError(
                f"{path}: {k}: not modelled for {cls.__name__} (it changes the architecture); "
                f"valid keys: {', '.join(fields)}"
            )
        kwargs[k] = _checked(path, k, hints[k], v, int(fields[k].metadata.get("min", 1)))
    try:
        return dataclasses.replace(base, **kwargs)  # type: ignore[type-var]
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: unsupported config ({e})") from None


def _pipeline_signature(spec: ModelSpec) -> tuple[Any, Any, bool]:
    """What a ``model_index.json`` says of the pipeline: its class, ``boundary_ratio`` (two experts)
    and ``expand_timesteps`` (a timestep per token)."""
    p = spec.pipeline_def
    return (p.diffusers_class, p.boundary_ratio, p.expand_timesteps)


def load_model_dir(path: str | Path, model: str) -> ModelSpec:
    """A :class:`ModelSpec` from a local Diffusers folder, ``model``'s preset filling the gaps."""
    root = Path(path)
    preset = get_preset(model)
    if root.exists() and not root.is_dir():
        raise CheckpointError(f"model-dir: {root} is a file; give the Diffusers folder that holds model_index.json")
    if not root.is_dir():
        return dataclasses.replace(preset, warnings=(f"model-dir {root} not found: using the {model} preset configs",))
    warnings: list[str] = []
    index = root / "model_index.json"
    if index.exists():  # a FIFO or a folder of that name is an error, not "not found"
        doc = read_json(index)
        if "_class_name" in doc:
            found = (doc["_class_name"], doc.get("boundary_ratio"), bool(doc.get("expand_timesteps", False)))
            if found != _pipeline_signature(preset):
                valid = sorted(n for n, p in PRESETS.items() if _pipeline_signature(p) == found)
                hint = f"use --model {' or '.join(valid)}" if valid else "no preset runs it"
                what = f"_class_name {_short(found[0])}"
                if found[1] is not None or found[2]:
                    what += f" (boundary_ratio {_short(found[1])}, expand_timesteps {_short(found[2])})"
                expected = preset.pipeline_def.diffusers_class
                raise CheckpointError(f"{index}: {what} is not {model}'s {expected}; {hint}")
    else:
        warnings.append(f"{index} not found")
    configs: dict[str, Any] = {}
    counts: list[tuple[str, int]] = []
    for field_name, base in preset.components().items():
        sub = field_name  # the component's sub-folder has the pipeline component's name
        cfg_path = root / sub / "config.json"
        if cfg_path.exists():
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
    try:
        spec.check_components()
    except ValueError as e:
        raise CheckpointError(f"{root}: {e}") from None
    same = [n for n, p in PRESETS.items() if p.components() == spec.components()]
    name = model if model in same else (same[0] if same else f"local:{root.name}")
    return dataclasses.replace(spec, name=name)


def resolve_model(model: str, model_dir: str | Path | None = None) -> ModelSpec:
    """The preset ``model``, or the configs of ``model_dir`` over it."""
    if model_dir is None:
        return get_preset(model)
    return load_model_dir(model_dir, model)
