"""Multi-GPU deployments as data: how many GPUs a job runs on, how the transformer's sequence is
split, and what is sharded; what each runtime supports, cited.

A :class:`Deployment` is the layout; the runtime (:class:`hybrid.runtime.Runtime`, on the workload)
says which code runs it. Every rank of a sequence-parallel group holds ``1/P`` of the video tokens
through the transformer blocks (``P = ulysses * ring``):

* **Ulysses** (DeepSpeed-Ulysses, arXiv 2309.14509): before self-attention an all-to-all turns
  ``(N/P tokens, H heads)`` into ``(N tokens, H/u heads)``, and one after it turns it back; the heads
  must divide by ``u``.
* **Ring**: every rank attends its own queries to every rank's keys and values; diffusers 0.42
  gathers them all up front (``TemplatedRingAttention``, ``rotate_method="allgather"``) and merges
  the ``r`` partial results by their log-sum-exp.
* Cross-attention stays local: each rank's queries against the whole (replicated) text context.
* **FSDP** (``--fsdp dit,text_encoder``, the original Wan ``generate.py``'s ``--dit_fsdp`` and
  ``--t5_fsdp``): each block's parameters are sharded over all ranks and all-gathered for its
  forward.
* **CFG parallel** would run the conditional and the unconditional pass on two rank groups; neither
  runtime modelled here does (each runtime's :attr:`~hybrid.runtime.RuntimeDef.layouts`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hybrid import ops
from hybrid.dtypes import BF16
from hybrid.errors import InputError
from hybrid.models.wan_dit import WanTransformer3DConfig, WanVACETransformer3DConfig
from hybrid.presets import ModelSpec
from hybrid.runtime import Runtime, RuntimeDef, runtimes_with
from hybrid.timing import Term, Terms, collective_dims

MAX_GPUS = 72
"""The most GPUs one layout spans: one NVLink domain (8 in an HGX server, 72 in a GB200 NVL72
rack); sequence parallelism and FSDP across slower links are not modelled."""
FSDP_COMPONENTS: tuple[str, ...] = ("dit", "text_encoder")
"""What ``--fsdp`` can shard: the transformer(s) and the UMT5 encoder (Wan's ``--dit_fsdp``, ``--t5_fsdp``)."""

NO_CFG_PARALLEL = (
    "no runtime modelled here runs it (diffusers and the Wan repositories run the two "
    "passes in sequence; xDiT lists it as unsupported for Wan; LightX2V implements it)"
)


@dataclass(frozen=True)
class Deployment:
    """A job's layout over ``gpus`` GPUs: ``ulysses * ring * cfg_parallel == gpus``."""

    gpus: int = 1
    ulysses: int = 1
    """Ulysses degree: ranks that exchange heads for sequence in self-attention."""
    ring: int = 1
    """Ring degree: ranks that exchange keys and values in self-attention."""
    cfg_parallel: int = 1
    """2: the conditional and unconditional passes on two rank groups; 1: one after the other."""
    fsdp: tuple[str, ...] = ()
    """Components whose parameters are sharded over every rank (:data:`FSDP_COMPONENTS`)."""

    @property
    def sequence_degree(self) -> int:
        """Ranks that split one forward's video tokens (``ulysses * ring``)."""
        return self.ulysses * self.ring

    @property
    def parallel(self) -> bool:
        return self.gpus > 1

    def check(self, spec: ModelSpec, runtime: Runtime) -> None:
        """Raise ``ValueError`` (one line naming the option and the valid range) unless ``spec`` can
        run on this layout under ``runtime``."""
        for name, value in (("gpus", self.gpus), ("ulysses", self.ulysses), ("ring", self.ring)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{name}: must be a whole number >= 1, got {value!r}")
        if self.gpus > MAX_GPUS:
            raise InputError(f"gpus: {self.gpus} is more than one NVLink domain; valid: 1 to {MAX_GPUS}")
        if self.cfg_parallel not in (1, 2):
            raise InputError(f"cfg-parallel: degree must be 1 or 2, got {self.cfg_parallel!r}")
        for heads in _attention_heads(spec):
            if heads % self.ulysses:
                top = min(heads, MAX_GPUS)  # a Ulysses degree is at most the GPU count: the work is bounded by it
                divisors = [d for d in range(1, top + 1) if heads % d == 0]
                within = f" (up to {MAX_GPUS} GPUs)" if heads > MAX_GPUS else ""
                raise InputError(
                    f"ulysses: {self.ulysses} does not divide the {heads} attention heads of {spec.name}; "
                    f"valid{within}: {', '.join(map(str, divisors))}"
                )
        product = self.ulysses * self.ring * self.cfg_parallel
        if product != self.gpus:
            raise InputError(
                f"gpus: ulysses x ring x cfg-parallel = {self.ulysses} x {self.ring} x {self.cfg_parallel} = "
                f"{product}, not the {self.gpus} GPUs; the degrees must multiply to the GPU count "
                "(`wanmeter plan` ranks every layout that does)"
            )
        bad = [c for c in self.fsdp if c not in FSDP_COMPONENTS]
        if bad:
            raise InputError(f"fsdp: unknown component {bad[0]!r}; valid: {', '.join(FSDP_COMPONENTS)}")
        support = runtime.record.layouts
        if self.cfg_parallel > 1:
            raise InputError(f"cfg-parallel: {NO_CFG_PARALLEL}")
        if self.fsdp and not support["fsdp"]:
            raise InputError(
                f"fsdp: the {runtime.name} runtime has no FSDP option (runtimes that have one: "
                f"{runtimes_with(_has_fsdp)})"
            )
        if self.fsdp and self.gpus == 1:
            raise InputError("fsdp: shards over several GPUs; give --gpus N with N >= 2")
        always = runtime.record_for(spec).fsdp_always
        if self.gpus > 1 and not set(always) <= set(self.fsdp):
            raise InputError(
                f"fsdp: {runtime.text('code', spec)} shards {', '.join(always)} over the ranks whatever it is told; "
                f"give --fsdp {','.join(always)}"
            )
        repo = spec.pipeline_def.wan_repo
        if self.ring > 1 and repo in runtime.record.no_ring_repos:
            raise InputError(f"ring: the {repo} repository {runtime.record.no_ring_repos[repo]}; use --ulysses")
        if self.ring > 1 and spec.pipeline_def.no_ring_reason:
            raise InputError(f"ring: {spec.pipeline_def.no_ring_reason}; use --ulysses")
        p = spec.pipeline_def
        if self.gpus > 1 and p.no_layouts_reason and runtime.name not in p.layouts_runtimes:
            raise InputError(
                f"gpus: {spec.name} runs on one GPU per job ({spec.pipeline_def.no_layouts_reason}); valid: --gpus 1"
            )
        if self.sequence_degree > 1 and any(isinstance(c, WanVACETransformer3DConfig) for c in _transformers(spec)):
            raise InputError(
                f"ulysses x ring: sequence parallelism is not modelled for VACE ({spec.name}): diffusers' "
                "WanVACETransformer3DModel has no context-parallel plan; run it on one GPU per job"
            )

    def check_tokens(self, tokens: int, runtime: Runtime) -> None:
        """diffusers splits the video tokens into equal parts with no padding (``EquipartitionSharder``
        asserts it); the Wan repositories pad them."""
        p = self.sequence_degree
        if p > 1 and tokens % p and not runtime.record.layouts["pad"]:
            raise InputError(
                f"ulysses x ring: diffusers splits the {tokens:,} video tokens evenly and {p} does not divide "
                f"them; pick a size or frame count whose tokens it divides, or {runtimes_with(_pads)} (which pads)"
            )

    def describe(self) -> str:
        """The layout as a user would type it."""
        flags = [f"--gpus {self.gpus}"]
        flags += [f"--{k} {v}" for k, v in (("ulysses", self.ulysses), ("ring", self.ring)) if v > 1]
        if self.cfg_parallel > 1:
            flags.append("--cfg-parallel")
        if self.fsdp:
            flags.append(f"--fsdp {','.join(self.fsdp)}")
        return " ".join(flags)

    def to_dict(self) -> dict[str, object]:
        return {
            "gpus": self.gpus,
            "ulysses": self.ulysses,
            "ring": self.ring,
            "cfg_parallel": self.cfg_parallel,
            "fsdp": list(self.fsdp),
        }


def _pads(r: RuntimeDef) -> bool:
    return bool(r.layouts["pad"])


def _has_fsdp(r: RuntimeDef) -> bool:
    return bool(r.layouts["fsdp"])


SINGLE = Deployment()
"""One GPU, nothing split."""

FSDP_OF: dict[str, tuple[str, ...]] = {"dit": ("transformer", "transformer_2"), "text_encoder": ("text_encoder",)}
"""The model components each ``--fsdp`` name shards."""
FSDP_PARAM_BYTES = BF16
"""Wan's ``shard_model`` gathers parameters in bfloat16 (``MixedPrecision(param_dtype=torch.bfloat16)``)."""


@dataclass(frozen=True)
class Sharding:
    """One FSDP-sharded component on one rank of ``P``."""

    component: str
    shard_bytes: int
    """This rank's ``1/P`` of the stored weights (in the runtime's weight dtype, rounded up)."""
    gathered_bytes: int
    """Held whole while the component runs: the root unit's parameters (gathered for the whole
    forward) and the largest block's (gathered for its forward, then freed), in bfloat16."""
    terms: tuple[Term, ...]
    """One forward's collectives: an all-gather of each unit's bfloat16 shards."""

    @property
    def weights_bytes(self) -> int:
        return self.shard_bytes + self.gathered_bytes


def fsdp_shardings(spec: ModelSpec, deployment: Deployment, weights_bytes: dict[str, int]) -> dict[str, Sharding]:
    """The :class:`Sharding` of every component ``deployment`` shards (``weights_bytes``: each
    component's stored weights): FSDP FULL_SHARD with one unit per block over all ``P`` ranks, as
    the original Wan ``generate.py`` wraps the DiT(s) (``--dit_fsdp``) and the text encoder
    (``--t5_fsdp``). Each forward all-gathers every unit: each rank sends its ``1/P`` of a unit to
    the ``P - 1`` others and receives theirs (:func:`hybrid.ops.collective_bytes`)."""
    p, out = deployment.gpus, {}
    for name in deployment.fsdp:
        for component in FSDP_OF[name]:
            cfg = getattr(spec, component, None)
            if cfg is None:
                continue
            root, block, blocks = cfg.fsdp_units()
            terms = Terms()
            for params, calls in ((root, 1), (block, blocks)):
                sent, received = ops.collective_bytes("all_gather_into_tensor", p, -(-params * FSDP_PARAM_BYTES // p))
                terms.add("collective", 0, (sent + received) * calls, calls, collective_dims("all_gather_into_tensor"))
            shard = -(-weights_bytes[component] // p)
            out[component] = Sharding(component, shard, (root + block) * FSDP_PARAM_BYTES, terms.freeze())
    return out


def _configs(spec: ModelSpec) -> Iterable[Any]:
    """``spec``'s transformer configs (one, or the A14B's two experts)."""
    return (cfg for cfg in (spec.transformer, getattr(spec, "transformer_2", None)) if cfg is not None)


def _attention_heads(spec: ModelSpec) -> Iterable[int]:
    """The attention heads of each of ``spec``'s transformers (Wan-Animate-2's too), which Ulysses splits."""
    return (int(cfg.num_attention_heads) for cfg in _configs(spec))


def _transformers(spec: ModelSpec) -> Iterable[WanTransformer3DConfig]:
    return (cfg for cfg in _configs(spec) if isinstance(cfg, WanTransformer3DConfig))
