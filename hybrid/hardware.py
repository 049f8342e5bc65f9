"""Hardware database: GPUs with peak dense tensor throughput, the FP32 peak of their CUDA (vector) cores,
memory bandwidth and capacity, links, and the streaming multiprocessors, clock and L2 cache a kernel-aware
time model needs.

Data with provenance: every row of ``hybrid/data/gpus.json`` cites the document its numbers come
from (and says when a figure is derived or assumed); the file states the convention (dense, FP32
accumulation on GeForce, GB/s, GiB and MiB). Every row is checked when the file is read: a missing,
mistyped or non-positive field is one line naming the GPU and the field. Nothing here imports torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from hybrid.errors import InputError
from hybrid.timing import OP_CLASSES

DTYPES = ("bf16", "fp16", "fp8", "int8", "fp4", "tf32", "fp32")
"""The compute paths :meth:`GPU.peak_flops` knows: the tensor cores' ``bf16``, ``fp16``, ``fp8``, ``tf32``,
``int8`` and ``fp4``, and ``fp32`` on the CUDA (vector) cores, where float32 matmuls run with TF32 off
(PyTorch's default)."""


@dataclass(frozen=True)
class GPU:
    """One accelerator's datasheet numbers (dense peaks)."""

    name: str
    product: str
    vendor: str
    architecture: str
    bf16_tflops: float
    fp16_tflops: float
    fp8_tflops: float | None
    tf32_ratio: float
    """Dense TF32 tensor throughput over dense BF16 (datasheets): the rate float32 stages run at,
    PyTorch running float32 convolutions on TF32 tensor cores by default."""
    memory_bandwidth_gbs: float
    memory_gib: float
    source: str
    source_url: str
    host_link_gbs: float
    """Peak of the GPU's link to the host in one direction, GB/s (PCIe x16: half the datasheet's
    both-directions figure); offloaded weights cross it."""
    host_link: str
    gpu_link_gbs: float
    """Peak GPU-to-GPU bandwidth in one direction within a server, GB/s (NVLink, else PCIe);
    collectives cross it."""
    gpu_link: str
    sm_count: int
    """Streaming multiprocessors enabled on this part (compute units on AMD)."""
    boost_clock_mhz: int
    """The vendor's maximum boost (peak engine) clock, MHz."""
    l2_cache_mib: float
    """L2 cache capacity in MiB (the L2 proper: AMD's Infinity Cache is not in it)."""
    sm_clock_l2_source: str
    """Where ``sm_count``, ``boost_clock_mhz`` and ``l2_cache_mib`` come from, and which are derived
    or assumed."""
    fp32_tflops: float
    """Dense FP32 peak of the CUDA cores, not the tensor cores (AMD: vector FP32), TFLOP/s at the boost
    clock as the vendor states it: the rate of a float32 matmul with TF32 off."""
    fp32_source: str
    """Where ``fp32_tflops`` comes from, and how it is derived where no vendor figure was read."""
    int8_tops: float | None
    """Dense INT8 tensor throughput, TOPS (two operations per multiply-add, as FLOPs count them);
    ``None`` where the GPU has no INT8 tensor path."""
    int8_source: str
    fp4_tflops: float | None
    """Dense FP4 (NVFP4/MXFP4) tensor throughput, TFLOP/s; ``None`` where the GPU has no FP4 path."""
    fp4_source: str

    def peak_flops(self, dtype: str = "bf16") -> float:
        """Peak dense FLOP/s on the path ``dtype`` (:data:`DTYPES`): the tensor cores' ``bf16``, ``fp16``,
        ``fp8`` and ``tf32``, or ``fp32`` on the CUDA (vector) cores."""
        if dtype not in DTYPES:
            raise InputError(f"dtype: unknown compute dtype {dtype!r}; valid: {', '.join(DTYPES)}")
        if dtype == "tf32":
            return self.peak_flops("bf16") * self.tf32_ratio
        if dtype == "fp32":
            return self.fp32_tflops * 1e12
        tflops = self.int8_tops if dtype == "int8" else getattr(self, f"{dtype}_tflops")
        if tflops is None:
            raise InputError(f"dtype: {self.name} has no {dtype} tensor path; valid: bf16, fp16")
        return float(tflops) * 1e12

    def has_path(self, dtype: str) -> bool:
        """Whether the GPU has the tensor path ``dtype`` (:data:`DTYPES`)."""
        return dtype in DTYPES and (self.int8_tops if dtype == "int8" else getattr(self, f"{dtype}_tflops")) is not None

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        """Peak DRAM bandwidth in bytes/s."""
        return self.memory_bandwidth_gbs * 1e9

    @property
    def host_link_bytes_per_s(self) -> float:
        """Peak host-link bandwidth in one direction, bytes/s."""
        return self.host_link_gbs * 1e9

    @property
    def gpu_link_bytes_per_s(self) -> float:
        """Peak GPU-to-GPU bandwidth in one direction, bytes/s."""
        return self.gpu_link_gbs * 1e9

    @property
    def memory_bytes(self) -> int:
        """Published capacity in bytes (read as GiB)."""
        return int(self.memory_gib * 2**30)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "product": self.product, "vendor": self.vendor, "architecture": self.architecture,
            "bf16_tflops": self.bf16_tflops, "fp16_tflops": self.fp16_tflops, "fp8_tflops": self.fp8_tflops,
            "tf32_ratio": self.tf32_ratio,
            "memory_bandwidth_gbs": self.memory_bandwidth_gbs, "memory_gib": self.memory_gib,
            "source": self.source, "source_url": self.source_url,
            "host_link_gbs": self.host_link_gbs, "host_link": self.host_link,
            "gpu_link_gbs": self.gpu_link_gbs, "gpu_link": self.gpu_link,
            "sm_count": self.sm_count, "boost_clock_mhz": self.boost_clock_mhz, "l2_cache_mib": self.l2_cache_mib,
            "sm_clock_l2_source": self.sm_clock_l2_source,
            "fp32_tflops": self.fp32_tflops, "fp32_source": self.fp32_source,
            "int8_tops": self.int8_tops, "int8_source": self.int8_source,
            "fp4_tflops": self.fp4_tflops, "fp4_source": self.fp4_source,
        }  # fmt: skip


GPU_FIELDS: dict[str, str] = {
    "name": "text", "product": "text", "vendor": "text", "architecture": "text",
    "bf16_tflops": "number", "fp16_tflops": "number", "fp8_tflops": "number or null", "tf32_ratio": "number",
    "memory_bandwidth_gbs": "number", "memory_gib": "number", "source": "text", "source_url": "url",
    "host_link_gbs": "number", "host_link": "text", "gpu_link_gbs": "number", "gpu_link": "text",
    "sm_count": "integer", "boost_clock_mhz": "integer", "l2_cache_mib": "number", "sm_clock_l2_source": "text",
    "fp32_tflops": "number", "fp32_source": "text",
    "int8_tops": "number or null", "int8_source": "text", "fp4_tflops": "number or null", "fp4_source": "text",
}  # fmt: skip
"""Every field of a ``gpus.json`` row and what it must be: text non-empty, a url ``https://``, a number
finite and > 0 (``null`` too where stated), an integer > 0."""


def _valid(value: Any, kind: str) -> bool:
    if kind in ("text", "url"):
        return isinstance(value, str) and bool(value.strip()) and (kind == "text" or value.startswith("https://"))
    if value is None:
        return kind == "number or null"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return value > 0 and (kind != "integer" or isinstance(value, int))


def gpu_from_row(row: Any, index: int) -> GPU:
    """The GPU of one ``gpus.json`` row, checked field by field against :data:`GPU_FIELDS`; an
    :class:`~hybrid.errors.InputError` of one line naming the GPU (or its index) and the field otherwise."""
    if not isinstance(row, dict):
        raise InputError(f"gpus.json: gpus[{index}]: not an object; valid: an object with {', '.join(GPU_FIELDS)}")
    name = row.get("name") if isinstance(row.get("name"), str) and row.get("name") else f"gpus[{index}]"
    for field, kind in GPU_FIELDS.items():
        if field not in row:
            raise InputError(f"gpus.json: {name}: field {field} is missing; valid: a {kind}")
        if not _valid(row[field], kind):
            valid = {"text": "non-empty text", "url": "an https:// address"}.get(kind, f"a {kind} > 0")
            raise InputError(f"gpus.json: {name}: field {field} is {row[field]!r}; valid: {valid}")
    unknown = sorted(set(row) - set(GPU_FIELDS))
    if unknown:
        raise InputError(f"gpus.json: {name}: unknown field {unknown[0]}; valid: {', '.join(GPU_FIELDS)}")
    return GPU(**row)


@lru_cache(maxsize=1)
def database() -> tuple[dict[str, Any], dict[str, GPU]]:
    """``(document header, {name: GPU})`` from the packaged data file."""
    doc = json.loads(resources.files("hybrid").joinpath("data/gpus.json").read_text(encoding="utf-8"))
    gpus: dict[str, GPU] = {}
    for i, row in enumerate(doc["gpus"]):
        g = gpu_from_row(row, i)
        if g.name in gpus:
            raise InputError(f"gpus.json: {g.name}: named twice; valid: one row per GPU name")
        gpus[g.name] = g
    header = {k: v for k, v in doc.items() if k != "gpus"}
    return header, gpus


def gpus() -> dict[str, GPU]:
    """All GPUs by name."""
    return database()[1]


def get_gpu(name: str) -> GPU:
    """The GPU called ``name``; a ``ValueError`` listing the valid names otherwise."""
    table = gpus()
    key = name.strip().lower()
    if key not in table:
        raise InputError(f"gpu: unknown GPU {name!r}; valid: {', '.join(table)}")
    return table[key]


@dataclass(frozen=True)
class ClassEfficiency:
    """One default efficiency and where it comes from."""

    value: float
    kind: str
    """``measured`` (a public measurement on this GPU), ``borrowed`` (another GPU's measurement)
    or ``derived`` (from this GPU's measurement of another op class)."""
    evidence: str
    source_url: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "kind": self.kind, "evidence": self.evidence, "source_url": self.source_url}


@dataclass(frozen=True)
class DefaultEfficiency:
    """Default efficiencies of one GPU for which no timing calibration exists."""

    gpu: str
    classes: dict[str, ClassEfficiency]
    launch_overhead_s: float
    retrieved: str

    @property
    def efficiency(self) -> dict[str, float]:
        return {c: e.value for c, e in self.classes.items()}

    def borrowed(self) -> list[str]:
        """Op classes with no public measurement on this GPU."""
        return [c for c, e in self.classes.items() if e.kind == "borrowed"]

    def to_calibration(self) -> dict[str, Any]:
        """A ``wanmeter.efficiency/1``-shaped document, marked ``defaults``, for the time model."""
        return {
            "schema": "wanmeter.efficiency/1",
            "name": self.gpu,
            "device_name": "public measurements (wanmeter defaults, no timing calibration)",
            "date": self.retrieved,
            "versions": {},
            "efficiency": self.efficiency,
            "launch_overhead_s": self.launch_overhead_s,
            "defaults": True,
            "provenance": {c: e.to_dict() for c, e in self.classes.items()},
        }


@lru_cache(maxsize=1)
def _defaults_doc() -> dict[str, Any]:
    text = resources.files("hybrid").joinpath("data/efficiency_defaults.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def _resolve(doc: dict[str, Any], owner: str, op_class: str, depth: int = 0) -> ClassEfficiency:
    table = doc["gpus"] if owner in doc["gpus"] else doc["measurements"]
    entry = table[owner][op_class]
    kind = entry["kind"]
    if depth > 4:
        raise ValueError(f"efficiency defaults: cycle at {owner}.{op_class}")
    if kind == "measured":
        source = doc["sources"][entry["source"]]
        return ClassEfficiency(
            float(entry["value"]), "measured", f"{entry['evidence']} [{source['title']}]", source["url"]
        )
    if kind == "borrowed":
        base = _resolve(doc, entry["from"], op_class, depth + 1)
        return ClassEfficiency(base.value, "borrowed", f"{entry['why']}; uses: {base.evidence}", base.source_url)
    if kind == "derived":
        base = _resolve(doc, owner, entry["from"], depth + 1)
        return ClassEfficiency(
            base.value, "derived", f"{entry['why']}; from {entry['from']}: {base.evidence}", base.source_url
        )
    raise ValueError(f"efficiency defaults: unknown kind {kind!r} at {owner}.{op_class}")


def default_efficiency(name: str) -> DefaultEfficiency:
    """Efficiencies per op class for ``name`` from cited public measurements
    (``hybrid/data/efficiency_defaults.json``); ``ValueError`` for unknown GPUs."""
    gpu = get_gpu(name)
    doc = _defaults_doc()
    classes = {c: _resolve(doc, gpu.name, c) for c in OP_CLASSES}
    return DefaultEfficiency(gpu.name, classes, float(doc["launch_overhead_s"]), doc["retrieved"])


def kernel_efficiency(kernel: str, gpu: GPU) -> ClassEfficiency | None:
    """The attention efficiency of ``kernel`` (``fa3``) on ``gpu`` from its cited measurement
    (``kernels`` in ``hybrid/data/efficiency_defaults.json``); ``None`` where no entry covers
    that kernel on that architecture (the GPU's own attention efficiency then stands)."""
    entry = _defaults_doc().get("kernels", {}).get(kernel)
    if entry is None or gpu.architecture not in entry["architectures"]:
        return None
    a = entry["attention"]
    source = _defaults_doc()["sources"][a["source"]]
    return ClassEfficiency(float(a["value"]), "kernel", f"{a['evidence']} [{source['title']}]", source["url"])


def _link_efficiency(key: str) -> ClassEfficiency:
    doc = _defaults_doc()
    e = doc[key]
    source = doc["sources"][e["source"]]
    return ClassEfficiency(float(e["value"]), e["kind"], f"{e['evidence']} [{source['title']}]", source["url"])


def host_link_efficiency() -> ClassEfficiency:
    """The achieved fraction of a host link's peak for weight copies, with its source."""
    return _link_efficiency("host_link")


def gpu_link_efficiency() -> ClassEfficiency:
    """The achieved fraction of the GPU-to-GPU link's peak for collectives, with its source."""
    return _link_efficiency("gpu_link")


def collective_latency() -> tuple[float, str]:
    """``(seconds, evidence)``: the fixed cost of one collective call."""
    e = _defaults_doc()["collective_latency_s"]
    return float(e["value"]), f"{e['kind']}: {e['evidence']}"


def host_cpu_flops() -> tuple[float, str]:
    """``(FLOP/s, evidence)``: the host CPU throughput a text encoder on the CPU (``--t5-cpu``) runs at."""
    e = _defaults_doc()["host_cpu"]
    return float(e["bf16_tflops"]) * 1e12, f"{e['kind']}: {e['evidence']}"
