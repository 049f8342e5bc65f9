"""What a GPU-hour costs, as data with provenance (``hybrid/data/prices.json``), and what a video costs.

Each row is one provider's public on-demand (or spot, marked) price for one GPU, per GPU-hour (an 8-GPU
instance's price divided by 8, said in ``how``), with the provider, region where stated, the date the
price was read and its source. A GPU's price (:func:`price_of`) is the median of its on-demand rows,
its ``low`` and ``high`` their cheapest and dearest; ``--price USD`` states one instead, ``--prices FILE``
reads a file of the same schema (:func:`read_prices`, checked field by field). Dollars per video are
GPU-seconds x price / 3600 / videos per job (:func:`cost_of`), their range the seconds' range at that
price. Hosted API prices of the Wan models sold as a service are listed beside (``api_prices``), for
comparison only.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from hybrid.errors import InputError, echo
from hybrid.files import read_json

SCHEMA = "wanmeter.prices/1"
ROW_FIELDS: dict[str, str] = {
    "gpu": "text", "provider": "text", "usd_per_gpu_hour": "number", "on_demand": "boolean", "date": "text",
    "source": "text", "how": "text",
}  # fmt: skip
"""The fields every ``gpu_prices`` row has and what each must be (``region`` and ``quote`` may be added)."""


@dataclass(frozen=True)
class Price:
    """One GPU's price per GPU-hour and what it rests on."""

    gpu: str
    usd_per_gpu_hour: float
    basis: str
    """``median of N on-demand rows (providers)``, ``set on the command line``, or the file it came from."""
    low: float
    high: float
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"usd_per_gpu_hour": self.usd_per_gpu_hour, "basis": self.basis, "low": self.low, "high": self.high,
                "rows": self.rows}  # fmt: skip


def _check_row(row: Any, where: str, gpus: set[str] | None) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise InputError(f"{where}: not an object; valid: an object with {', '.join(ROW_FIELDS)}")
    for field, kind in ROW_FIELDS.items():
        if field not in row:
            raise InputError(f"{where}: field {field} is missing; valid: {kind}")
        v = row[field]
        ok = {
            "text": isinstance(v, str) and bool(v.strip()),
            "boolean": isinstance(v, bool),
            "number": isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 < v < 1e6,
        }[kind]
        if not ok:
            valid = {"text": "non-empty text", "boolean": "true or false", "number": "a number > 0 and < 1e6"}[kind]
            raise InputError(f"{where}: field {field} is {echo(v)}; valid: {valid}")
    if gpus is not None and row["gpu"] not in gpus:
        raise InputError(f"{where}: gpu {echo(row['gpu'])} is not in the GPU table; see wanmeter gpus")
    return row


def check(doc: Any, where: str) -> dict[str, Any]:
    """``doc`` as a ``wanmeter.prices/1`` document, row by row (one line naming the row and field otherwise)."""
    from hybrid.hardware import gpus

    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise InputError(f"prices: {where} is not a {SCHEMA} document")
    rows = doc.get("gpu_prices")
    if not isinstance(rows, list) or not rows:
        raise InputError(f"prices: {where}: gpu_prices must be a non-empty list of rows")
    known = set(gpus())
    for i, row in enumerate(rows):
        _check_row(row, f"prices: {where}: gpu_prices[{i}]", known)
    return doc


@lru_cache(maxsize=1)
def data() -> dict[str, Any]:
    """The packaged ``hybrid/data/prices.json``."""
    text = resources.files("hybrid").joinpath("data/prices.json").read_text(encoding="utf-8")
    return check(json.loads(text), "hybrid/data/prices.json")


def read_prices(path: Path) -> dict[str, Any]:
    """A user's prices file (``--prices FILE``), checked as the packaged one."""
    return check(read_json(path, "prices file"), str(path))


def price_of(gpu: str, doc: dict[str, Any] | None = None) -> Price | None:
    """``gpu``'s price from ``doc`` (default the packaged data): the median of its on-demand rows, the
    cheapest and dearest as its range; ``None`` where it has none."""
    doc = data() if doc is None else doc
    rows = [r for r in doc["gpu_prices"] if r["gpu"] == gpu and r["on_demand"]]
    if not rows:
        return None
    values = sorted(float(r["usd_per_gpu_hour"]) for r in rows)
    providers = len({str(r["provider"]).split(" (")[0] for r in rows})
    basis = (
        f"median of {len(rows)} on-demand price{'s' if len(rows) > 1 else ''} from {providers} "
        f"provider{'s' if providers > 1 else ''}, {values[0]:g}-{values[-1]:g}"
    )
    return Price(gpu, statistics.median(values), basis, values[0], values[-1], len(rows))


def stated_price(gpu: str, usd_per_gpu_hour: float) -> Price:
    """``--price``: one price for the GPU, as the user states it."""
    v = usd_per_gpu_hour
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and 0 < v < 1e6):
        raise InputError(f"price: {echo(v)} is invalid; valid: US dollars per GPU-hour, a number > 0 and < 1e6")
    return Price(gpu, float(v), "set on the command line", float(v), float(v))


@dataclass(frozen=True)
class Cost:
    """What one video costs on a sizing's GPUs at a price."""

    price: Price
    usd_per_video: float
    usd_per_video_range: dict[str, float] | None

    def to_dict(self) -> dict[str, Any]:
        return {"price": self.price.to_dict(), "usd_per_video": self.usd_per_video,
                **({"usd_per_video_range": self.usd_per_video_range} if self.usd_per_video_range else {})}  # fmt: skip


def usd(gpu_seconds: float, price: Price, videos: int) -> float:
    """Dollars of ``gpu_seconds`` at ``price``, per video of a job of ``videos``."""
    return gpu_seconds * price.usd_per_gpu_hour / 3600 / videos


def cost_of(gpu_seconds: float, gpu_seconds_range: dict[str, float] | None, price: Price, videos: int) -> Cost:
    """Dollars per video of a job of ``videos`` taking ``gpu_seconds`` (with its range, where it has one)."""
    r = gpu_seconds_range
    rng = {"low": usd(r["low"], price, videos), "high": usd(r["high"], price, videos)} if r else None
    return Cost(price, usd(gpu_seconds, price, videos), rng)
