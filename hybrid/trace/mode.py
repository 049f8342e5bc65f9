"""The cost-recording dispatch mode: one registry of op handlers over :mod:`hybrid.ops`.

:class:`CostMode` is a ``TorchDispatchMode`` that sees every aten op a forward runs and turns it
into a :class:`~hybrid.rows.CostRow` grouped by (innermost module path, op, input shapes).
Handlers are thin shape adapters over the pure formulas in :mod:`hybrid.ops`; the tracer never
re-derives a formula.

Attention is counted once, however it is dispatched: a ``TorchFunctionMode`` catches
``F.scaled_dot_product_attention`` before device dispatch picks a kernel (math ``bmm`` on meta,
``_scaled_dot_product_flash_attention_for_cpu`` on CPU, flash/efficient/cudnn on CUDA), records one
canonical ``aten.scaled_dot_product_attention`` row and absorbs whatever runs inside it. Fused
attention kernels reached without that function (diffusers' ring attention calls cuDNN's directly) are
costed by the same formula under the same name. ``rms_norm`` is
canonicalised the same way, because CPU has a fused kernel that meta decomposes.

Two activation peaks are tracked: the eager working set with a fused attention kernel (only the
output is allocated) and with materialised scores (PyTorch's math backend, which also allocates the
upcast q/k/v, the score matrix and its softmax; its internal peak is measured by running
``aten._scaled_dot_product_attention_math`` on meta tensors of the call's shapes).

Composite ops that reach the mode whole (under ``inference_mode``) are decomposed inside it, as
FlopCounterMode does, so every context yields the same primitive rows. Primitive ops fall into
explicit sets: costed (matmul, conv, attention), zero-FLOP but byte-moving (elementwise, norms,
reductions, embeddings, copies, factories) and zero-cost views. Any other op is executed and listed
in ``unsupported_ops``, never silently costed as 0.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from hybrid import ops
from hybrid.rows import SDPA_OP, CostRow

aten = torch.ops.aten

Shape = tuple[int, ...]
FlopHandler = Callable[[Sequence[Any], dict[str, Any], Any], int]


def _shape(t: Any) -> Shape:
    return tuple(int(s) for s in t.shape)


# --- FLOP handlers: shape adapters over hybrid.ops -----------------------------------------------


def _mm_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    m, k = _shape(args[0])
    _, n = _shape(args[1])
    return ops.mm(m, k, n)


def _addmm_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    return _mm_flops(args[1:], kwargs, out)


def _bmm_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    b, m, k = _shape(args[0])
    _, _, n = _shape(args[1])
    return ops.bmm(b, m, k, n)


def _baddbmm_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    return _bmm_flops(args[1:], kwargs, out)


def _conv_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else bool(kwargs.get("transposed", False))
    x_shape, w_shape, out_shape = _shape(x), _shape(w), _shape(out)
    positions = (x_shape if transposed else out_shape)[2:]
    # FlopCounterMode: c_out = w[0], c_in = w[1] (per group) for a forward conv; transposed
    # weights are laid out (c_in, c_out/groups, ...), and the formula multiplies both the same way.
    return ops.conv(x_shape[0], w_shape[1], w_shape[0], w_shape[2:], positions)


def _sdpa_bhsd_flops(q: Shape, k: Shape, v: Shape) -> int:
    b, h, s_q, d_q = q
    s_k, d_v = k[-2], v[-1]
    return ops.sdpa(b, h, s_q, s_k, d_q, d_v)


def _sdpa_fused_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    return _sdpa_bhsd_flops(_shape(args[0]), _shape(args[1]), _shape(args[2]))


def _attention_forward_bshd_flops(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    # _flash_attention_forward / _efficient_attention_forward take (batch, seq, heads, dim)
    q, k, v = (_shape(a) for a in args[:3])
    b, s_q, h, d_q = q
    return ops.sdpa(b, h, s_q, k[1], d_q, v[-1])


FLOP_HANDLERS: dict[Any, tuple[str, FlopHandler]] = {
    aten.mm: ("matmul", _mm_flops),
    aten.addmm: ("matmul", _addmm_flops),
    aten.bmm: ("matmul", _bmm_flops),
    aten.baddbmm: ("matmul", _baddbmm_flops),
    aten.convolution: ("conv", _conv_flops),
    aten._convolution: ("conv", _conv_flops),
    aten._scaled_dot_product_flash_attention: ("attention", _sdpa_fused_flops),
    aten._scaled_dot_product_efficient_attention: ("attention", _sdpa_fused_flops),
    aten._scaled_dot_product_cudnn_attention: ("attention", _sdpa_fused_flops),
    aten._scaled_dot_product_flash_attention_for_cpu: ("attention", _sdpa_fused_flops),
    aten._scaled_dot_product_fused_attention_overrideable: ("attention", _sdpa_fused_flops),
    aten._flash_attention_forward: ("attention", _attention_forward_bshd_flops),
    aten._efficient_attention_forward: ("attention", _attention_forward_bshd_flops),
}
"""Ops with non-zero FLOPs: ``op packet -> (category, handler)``."""


def _packets(names: str) -> frozenset[Any]:
    out = set()
    for name in names.split():
        packet = getattr(aten, name, None)
        if packet is not None:
            out.add(packet)
    return frozenset(out)


ELEMENTWISE_OPS = _packets(
    """add add_ sub sub_ mul mul_ div div_ neg exp log log1p pow sqrt rsqrt abs sin cos tanh tanh_ polar
    sigmoid log_sigmoid_forward silu silu_ gelu gelu_ relu relu_ leaky_relu leaky_relu_ clamp clamp_ clamp_min clamp_max
    minimum maximum where
    lt le gt ge eq ne logical_not logical_and bitwise_not floor ceil round reciprocal square
    addcmul lerp bernoulli_ masked_fill masked_fill_ _softmax _safe_softmax _log_softmax
    _upsample_nearest_exact1d _upsample_nearest_exact2d _upsample_nearest_exact3d
    upsample_nearest1d upsample_nearest2d upsample_nearest3d upsample_bilinear2d upsample_bicubic2d
    upsample_trilinear3d"""
)
"""Zero-FLOP ops that read and write tensors (FlopCounterMode counts them 0)."""

NORM_OPS = _packets(
    "native_layer_norm native_group_norm _fused_rms_norm native_batch_norm rms_norm _weight_norm_interface"
)
REDUCTION_OPS = _packets("mean sum amax amin max min linalg_vector_norm var var_mean std argmax any all")
EMBEDDING_OPS = _packets("embedding")
MOVEMENT_OPS = _packets(
    """clone copy_ _to_copy contiguous cat stack constant_pad_nd index index_select gather
    repeat repeat_interleave flip roll _unsafe_index fill_ zero_ index_put_ scatter pixel_shuffle pixel_unshuffle
    replication_pad1d replication_pad2d replication_pad3d reflection_pad1d reflection_pad2d reflection_pad3d
    diag_embed"""
)
LINALG_OPS = _packets("linalg_qr")
"""Matrix decompositions: FlopCounterMode has no formula for them (0 FLOPs); their bytes are counted
(Wan-Animate's motion encoder orthogonalises a 512 x 20 weight each call)."""
FACTORY_OPS = _packets(
    """empty empty_like empty_strided zeros zeros_like ones ones_like full full_like arange
    scalar_tensor new_empty new_zeros new_ones new_full rand randn randn_like rand_like randint"""
)
VIEW_OPS = _packets(
    """view _unsafe_view reshape expand expand_as permute transpose t slice select unsqueeze
    squeeze split split_with_sizes unbind chunk alias detach as_strided narrow unflatten flatten
    view_as_real view_as_complex lift_fresh _reshape_alias diagonal movedim unfold"""
)
"""Zero-cost metadata ops: no FLOPs, no bytes."""

COLLECTIVE_NAMESPACE = "_c10d_functional"
"""Where the functional collectives live (diffusers' context parallelism and FSDP issue these):
each of :data:`hybrid.ops.COLLECTIVES` becomes a ``collective`` row whose byte columns are what the
rank sends and receives (:func:`hybrid.ops.collective_bytes`). Matched by name: the namespace's
custom ops register when ``torch.distributed._functional_collectives`` is first imported."""
LIST_NAMESPACE = "c10d"
"""Where ``torch.distributed``'s list-API collectives dispatch (``all_to_all``, ``all_gather``: the Wan
repositories' sequence parallelism): each of :data:`hybrid.ops.LIST_COLLECTIVES` becomes a
``collective`` row."""
COLLECTIVE_NO_WORK = frozenset({"wait_tensor", "_wrap_tensor_autograd"})
"""Waiting on a collective and wrapping its result: no work of their own."""


def _group_size(args: Sequence[Any]) -> int:
    """Ranks in the collective's group (its last argument names it)."""
    from torch.distributed import distributed_c10d

    return int(distributed_c10d._get_group_size_by_name(args[-1]))


META_QUERY_OPS = frozenset(
    {
        aten.sym_size, aten.sym_stride, aten.sym_numel, aten.sym_storage_offset, aten.is_same_size,
        aten._local_scalar_dense,
    }
)  # fmt: skip
"""Ops that only read metadata or one scalar into Python: no row. ``_local_scalar_dense`` is
``.item()``, which the models call on host tensors only (Wan-Animate-2's grid sizes)."""

CATEGORY_OF: dict[Any, str] = {}
for _cat, _set in (
    ("elementwise", ELEMENTWISE_OPS),
    ("norm", NORM_OPS),
    ("reduction", REDUCTION_OPS),
    ("embedding", EMBEDDING_OPS),
    ("movement", MOVEMENT_OPS),
    ("linalg", LINALG_OPS),
    ("factory", FACTORY_OPS),
    ("view", VIEW_OPS),
):
    for _p in _set:
        CATEGORY_OF[_p] = _cat
for _p, (_cat, _) in FLOP_HANDLERS.items():
    CATEGORY_OF[_p] = _cat

RMS_NORM_OP = "aten.rms_norm"


def _tensor_leaves(obj: Any, out: list[torch.Tensor]) -> None:
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _tensor_leaves(o, out)


def _nbytes(ts: Sequence[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in ts)


EVAL_IDENTITY_OPS = _packets("dropout feature_dropout alpha_dropout feature_alpha_dropout")


def _train_flag(args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    return bool(args[2]) if len(args) > 2 else bool(kwargs.get("train", True))


_COMPOSITE: dict[Any, bool] = {}


def _is_composite(func: Any) -> bool:
    known = _COMPOSITE.get(func)
    if known is None:
        known = _COMPOSITE[func] = bool(
            func.has_kernel_for_dispatch_key(torch._C.DispatchKey.CompositeImplicitAutograd)
        )
    return known


class ModuleStack:
    """Innermost-module tracking through global forward hooks (names from ``named_modules``)."""

    def __init__(self, root: torch.nn.Module) -> None:
        self.names = {id(m): name for name, m in root.named_modules()}
        self.stack: list[str] = [""]
        self._handles: list[Any] = []

    def __enter__(self) -> ModuleStack:
        def pre(module: torch.nn.Module, args: Any) -> None:
            self.stack.append(self.names.get(id(module), self.stack[-1]))

        def post(module: torch.nn.Module, args: Any, output: Any) -> None:
            if len(self.stack) > 1:
                self.stack.pop()

        reg = torch.nn.modules.module
        self._handles = [
            reg.register_module_forward_pre_hook(pre),
            reg.register_module_forward_hook(post, always_call=True),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    @property
    def current(self) -> str:
        return self.stack[-1]


class LiveStorages:
    """Bytes of the storages that ops allocated and that are still alive.

    Tracked per storage, not per tensor: ``mm`` followed by ``_unsafe_view`` drops the ``mm``
    tensor at once while its storage lives on in the reshaped one (PyTorch preserves a storage's
    Python object while the storage lives, so its finalizer runs exactly when it is freed)."""

    def __init__(self) -> None:
        self.bytes = 0
        self._seen: weakref.WeakSet[Any] = weakref.WeakSet()

    def _free(self, nbytes: int) -> None:
        self.bytes -= nbytes

    def add(self, outputs: Sequence[torch.Tensor], inputs: Sequence[torch.Tensor]) -> None:
        """Count the new storages among ``outputs`` (inputs returned in place are not new)."""
        for t in outputs:
            if any(t is i for i in inputs):
                continue
            storage = t.untyped_storage()
            n = storage.nbytes()
            if n and storage not in self._seen:
                self._seen.add(storage)
                self.bytes += n
                weakref.finalize(storage, self._free, n)


class CostMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Records every aten op into grouped :class:`CostRow` accumulators."""

    def __init__(self, stage: str, modules: ModuleStack) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.stage = stage
        self.modules = modules
        self.absorb = 0
        # key -> [category, flops, bytes_read, bytes_written, calls]
        self.acc: dict[tuple[str, str, tuple[Shape, ...], tuple[Shape, ...]], list[Any]] = {}
        self.unsupported: dict[str, int] = {}
        self.unsupported_modules: dict[str, str] = {}
        # Live activation bytes: every storage an op allocates (not a view, not an input returned
        # in place) counts until it is freed. The peak is the eager working set of one call.
        self.live = LiveStorages()
        self.peak_live_bytes = 0
        self.peak_module = ""
        self.peak_live_bytes_materialized = 0
        self.peak_module_materialized = ""

    @property
    def live_bytes(self) -> int:
        return self.live.bytes

    def track(self, outputs: Sequence[torch.Tensor], inputs: Sequence[torch.Tensor]) -> None:
        """Count newly allocated outputs as live until their storage is freed."""
        self.live.add(outputs, inputs)
        if self.live_bytes > self.peak_live_bytes:
            self.peak_live_bytes = self.live_bytes
            self.peak_module = self.modules.current
        self.transient(0)

    def transient(self, nbytes: int) -> None:
        """Note ``nbytes`` allocated and freed on top of the live set by a materialising kernel."""
        if self.live_bytes + nbytes > self.peak_live_bytes_materialized:
            self.peak_live_bytes_materialized = self.live_bytes + nbytes
            self.peak_module_materialized = self.modules.current

    def record(
        self,
        op: str,
        category: str,
        flops: int,
        inputs: Sequence[torch.Tensor],
        outputs: Sequence[torch.Tensor],
        count_bytes: bool = True,
    ) -> None:
        read = _nbytes(inputs) if count_bytes else 0
        written = _nbytes(outputs) if count_bytes else 0
        self._add(op, category, flops, read, written, inputs, outputs)

    def _add(
        self,
        op: str,
        category: str,
        flops: int,
        read: int,
        written: int,
        inputs: Sequence[torch.Tensor],
        outputs: Sequence[torch.Tensor],
    ) -> None:
        key = (self.modules.current, op, tuple(_shape(t) for t in inputs), tuple(_shape(t) for t in outputs))
        slot = self.acc.get(key)
        if slot is None:
            self.acc[key] = [category, flops, read, written, 1]
        else:
            slot[1] += flops
            slot[2] += read
            slot[3] += written
            slot[4] += 1

    def __torch_dispatch__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        packet = func._overloadpacket
        if self.absorb or packet in META_QUERY_OPS:
            return func(*args, **kwargs)
        if packet in EVAL_IDENTITY_OPS and not _train_flag(args, kwargs):
            return args[0]  # eval-mode dropout returns its input; its decomposition would clone
        if packet not in FLOP_HANDLERS and _is_composite(func):
            # Composite ops (linear, reshape, layer_norm, ...) normally decompose before they reach
            # this mode; under inference_mode they arrive whole. Decompose them here, inside this
            # mode, so that every context yields the same primitive rows (FlopCounterMode does too).
            with self:
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        if func.namespace == COLLECTIVE_NAMESPACE:
            return self._collective(func, args, kwargs)
        if func.namespace == LIST_NAMESPACE:
            return self._list_collective(func, args, kwargs)
        category = CATEGORY_OF.get(packet)
        out = func(*args, **kwargs)
        name = SDPA_OP if category == "attention" else f"aten.{packet.__name__}"  # one name, any kernel
        if category is None:
            self._unsupported(name)
            return out
        inputs: list[torch.Tensor] = []
        _tensor_leaves(args, inputs)
        _tensor_leaves(list(kwargs.values()), inputs)
        outputs: list[torch.Tensor] = []
        _tensor_leaves(out, outputs)
        handler = FLOP_HANDLERS.get(packet)
        flops = handler[1](args, kwargs, out) if handler is not None else 0
        self.record(name, category, flops, inputs, outputs, count_bytes=category != "view")
        if category != "view":
            self.track(outputs, inputs)
        return out

    def _unsupported(self, name: str) -> None:
        """An op with no handler: counted, with the module it first ran in (never costed as 0)."""
        self.unsupported[name] = self.unsupported.get(name, 0) + 1
        self.unsupported_modules.setdefault(name, self.modules.current)

    def _collective(self, func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        collective = func._overloadpacket.__name__
        if collective in COLLECTIVE_NO_WORK:  # the same data, once the collective is done; on meta
            return args[0]  # the op would return a new storage, and the result's would go uncounted
        out = func(*args, **kwargs)
        if collective not in ops.COLLECTIVES:
            self._unsupported(f"{COLLECTIVE_NAMESPACE}.{collective}")
            return out
        x = args[0]
        sent, received = ops.collective_bytes(collective, _group_size(args), x.numel() * x.element_size())
        self._add(f"_c10d_functional.{collective}", "collective", 0, sent, received, [x], [out])
        self.track([out], [x])
        return out

    def _list_collective(self, func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        """A ``c10d`` collective of the list API: it writes into outputs its caller allocated (their
        ``empty_like`` rows), so it allocates nothing; its row's bytes are those of the functional
        collective that moves the same data (:data:`hybrid.ops.LIST_COLLECTIVES`)."""
        out = func(*args, **kwargs)
        name = func._overloadpacket.__name__
        kind = ops.LIST_COLLECTIVES.get(name)
        if kind is None:
            self._unsupported(f"{LIST_NAMESPACE}.{name}")
            return out
        outputs: list[torch.Tensor] = []
        inputs: list[torch.Tensor] = []
        _tensor_leaves(args[0], outputs)
        _tensor_leaves(args[1], inputs)
        group = len(inputs) if kind == "all_to_all_single" else len(outputs)
        sent, received = ops.collective_bytes(kind, group, sum(x.numel() * x.element_size() for x in inputs))
        self._add(f"{LIST_NAMESPACE}.{name}", "collective", 0, sent, received, inputs, outputs)
        return out

    def rows(self) -> list[CostRow]:
        return [
            CostRow(
                stage=self.stage,
                module=module,
                op=op,
                category=slot[0],
                flops=slot[1],
                bytes_read=slot[2],
                bytes_written=slot[3],
                calls=slot[4],
                input_shapes=in_shapes,
                output_shape=out_shapes,
            )
            for (module, op, in_shapes, out_shapes), slot in self.acc.items()
        ]


class CanonicalFunctionMode(TorchFunctionMode):
    """Records device-independent rows for composite functions whose kernels differ by device."""

    def __init__(self, cost: CostMode) -> None:
        super().__init__()
        self.cost = cost

    def __torch_function__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if self.cost.absorb or func not in (F.scaled_dot_product_attention, F.rms_norm):
            return func(*args, **kwargs)
        self.cost.absorb += 1
        try:
            out = func(*args, **kwargs)
            if func is F.scaled_dot_product_attention and out.dim() == 4 and not out.transpose(1, 2).is_contiguous():
                # Fused kernels (CPU flash, CUDA flash/efficient/cudnn) write the output in
                # (batch, seq, heads, dim) memory order; the math path used on meta does not. Give
                # every device the fused layout so the ops downstream (views vs copies) match.
                out = out.transpose(1, 2).contiguous().transpose(1, 2)
        finally:
            self.cost.absorb -= 1
        inputs: list[torch.Tensor] = []
        _tensor_leaves(args, inputs)
        _tensor_leaves(list(kwargs.values()), inputs)
        if func is F.scaled_dot_product_attention:
            self.cost.absorb += 1  # the measurement's own ops are not rows of this call
            try:
                self.cost.transient(math_attention_peak_bytes(args, kwargs))
            finally:
                self.cost.absorb -= 1
        self.cost.track([out], inputs)  # the fused kernel's output; its internals are not live
        if func is F.scaled_dot_product_attention:
            q, k, v = (_shape(t) for t in inputs[:3])
            if len(q) != 4:  # (..., L, E): fold leading dims into batch, one head
                q, k, v = ((1, _prod(s[:-2]), *s[-2:]) for s in (q, k, v))
            self.cost.record(SDPA_OP, "attention", _sdpa_bhsd_flops(q, k, v), inputs, [out])
        else:
            self.cost.record(RMS_NORM_OP, "norm", 0, inputs, [out])
        return out


def flex_output(query: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """An empty FlexAttention output ``(B, H, Lq, Ev)`` laid out in the query's stride order, as the
    higher-order op lays it out (``_permute_strides``)."""
    strides = query.stride()
    order = sorted(range(4), key=lambda i: -strides[i])
    shape = (*query.shape[:3], value.shape[-1])
    return query.new_empty([shape[i] for i in order]).permute([order.index(i) for i in range(4)])


@contextlib.contextmanager
def flex_attention_replaced(stand_in: Callable[..., Any]) -> Iterator[None]:
    """``torch.nn.attention.flex_attention.flex_attention`` replaced by ``stand_in`` for the block (the
    kernel refuses meta tensors before it dispatches, and no TorchFunctionMode sees it); ``stand_in`` gets
    the real function first."""
    import torch.nn.attention.flex_attention as flex

    real = flex.flex_attention
    flex.flex_attention = lambda *args, **kwargs: stand_in(real, *args, **kwargs)
    try:
        yield
    finally:
        flex.flex_attention = real


def flex_attention_rows(cost: CostMode) -> contextlib.AbstractContextManager[None]:
    """Record FlexAttention calls as one attention row each, as FlopCounterMode counts the
    ``flex_attention`` higher-order op: the dense ``sdpa`` FLOPs of its q, k and v (a block mask's skipped
    blocks are not discounted; no sparsity hint outside ``torch.compile``). Its output takes the query's
    stride order (:func:`flex_output`); the log-sum-exp the higher-order op also writes (``(B, H, L)``
    float32, dropped by the wrapper) is in the bytes written and counted as a transient."""

    def recorded(real: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any,
                 **kwargs: Any) -> Any:  # fmt: skip
        cost.absorb += 1
        try:
            out = flex_output(query, value)
        finally:
            cost.absorb -= 1
        b, h, lq, _ = query.shape
        lse = b * h * lq * 4
        cost.transient(lse)
        cost.track([out], [query, key, value])
        flops = _sdpa_bhsd_flops(_shape(query), _shape(key), _shape(value))
        cost._add(SDPA_OP, "attention", flops, _nbytes([query, key, value]), _nbytes([out]) + lse,
                  [query, key, value], [out])  # fmt: skip
        return out

    return flex_attention_replaced(recorded)


class _PeakBytes(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Peak of the storage bytes allocated (and not yet freed) by the ops run under it."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.live = LiveStorages()
        self.peak = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if CATEGORY_OF.get(func._overloadpacket) != "view":
            outputs: list[torch.Tensor] = []
            _tensor_leaves(out, outputs)
            inputs: list[torch.Tensor] = []
            _tensor_leaves(args, inputs)
            self.live.add(outputs, inputs)
            self.peak = max(self.peak, self.live.bytes)
        return out


_MATH_PEAK: dict[tuple[Any, ...], int] = {}


def math_attention_peak_bytes(args: Sequence[Any], kwargs: dict[str, Any]) -> int:
    """Peak bytes PyTorch's math attention allocates for this call (its output included): the
    float32 upcasts of q/k/v, the scaled copies, the ``(..., Lq, Lk)`` scores and their softmax.
    Measured by running ``aten._scaled_dot_product_attention_math`` on meta tensors of the same
    shapes and dtypes, memoised per signature."""
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal")
    bound = dict(zip(names, args, strict=False)) | {k: v for k, v in kwargs.items() if k != "enable_gqa"}
    meta = {k: torch.empty(v.shape, dtype=v.dtype, device="meta") if isinstance(v, torch.Tensor) else v
            for k, v in bound.items()}  # fmt: skip
    key = tuple(
        (k, tuple(v.shape), v.dtype) if isinstance(v, torch.Tensor) else (k, v) for k, v in sorted(meta.items())
    )
    if key not in _MATH_PEAK:
        tracker = _PeakBytes()
        with torch.no_grad(), tracker:
            aten._scaled_dot_product_attention_math(**meta)
        _MATH_PEAK[key] = tracker.peak
    return _MATH_PEAK[key]


def _prod(xs: Sequence[int]) -> int:
    n = 1
    for x in xs:
        n *= x
    return n
