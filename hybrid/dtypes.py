"""The one dtype table: each dtype's torch spelling, its bytes per element, the short form the reports
write, and the spellings users type. Every byte count of weights and activations asks it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hybrid.errors import InputError


@dataclass(frozen=True)
class DType:
    """One element type."""

    name: str
    """torch's spelling (``torch.<name>``)."""
    bytes: int
    """Bytes per element."""
    short: str
    """How the reports write it (``bf16``)."""
    spellings: tuple[str, ...] = ()
    """Other names users type for it."""


DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("float32", 4, "fp32", ("fp32", "float")),
        DType("bfloat16", 2, "bf16", ("bf16",)),
        DType("float16", 2, "fp16", ("fp16", "half")),
        DType("float8", 1, "fp8", ("fp8", "float8_e4m3fn")),
        DType("float64", 8, "fp64", ("double",)),
        DType("int64", 8, "i64", ("long",)),
        DType("bool", 1, "bool"),
    )
}
"""Every dtype wanmeter counts bytes in, by torch's spelling."""

_BY_SPELLING: dict[str, DType] = {s: d for d in DTYPES.values() for s in (d.name, d.short, *d.spellings)}


def dtype(name: str) -> DType:
    """The dtype ``name`` (any spelling); ``ValueError`` naming the valid ones otherwise."""
    try:
        return _BY_SPELLING[name]
    except KeyError:
        raise InputError(f"dtype: unknown dtype {name!r}; valid: {', '.join(DTYPES)}") from None


def nbytes(name: str) -> int:
    """Bytes per element of dtype ``name``."""
    return dtype(name).bytes


BF16, F32, I64, BOOL = nbytes("bfloat16"), nbytes("float32"), nbytes("int64"), nbytes("bool")
F64 = nbytes("float64")
F16 = nbytes("float16")
"""Bytes per element of the dtypes the model families' walks write (every walk takes them from here)."""
