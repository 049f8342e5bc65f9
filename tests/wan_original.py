"""The original Wan DiT (``tests/data/wan_original``, vendored from Wan-Video/Wan2.1 and Wan2.2), loaded
to run on a CPU and traced there under the project's tracer.

Three changes, made as the files load (the vendored files stay byte-for-byte the originals; each
change must match exactly once, :data:`CHANGES`): the autocast contexts name the CPU instead of CUDA
(CPU autocast casts ``linear`` and ``conv3d`` to bfloat16 as CUDA's does, and disables itself for
``dtype=torch.float32`` where CUDA's runs those in float32: the same ops on float32 weights),
``flash_attention`` does not assert a CUDA device, and its FlashAttention-2 kernel is PyTorch's
``scaled_dot_product_attention`` on the same (batch, heads, tokens, head_dim) tensors.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

ROOT = Path(__file__).parent / "data" / "wan_original"

CHANGES: dict[str, tuple[tuple[str, str], ...]] = {
    "wan21/model.py": (("import torch.cuda.amp as amp", "import torch.cpu.amp as amp"),),
    "wan22/model.py": (("torch.amp.autocast('cuda',", "torch.amp.autocast('cpu',"),),
    "wan21/attention.py": (("assert q.device.type == 'cuda' and q.size(-1) <= 256", "assert q.size(-1) <= 256"),),
    "wan22/attention.py": (("assert q.device.type == 'cuda' and q.size(-1) <= 256", "assert q.size(-1) <= 256"),),
    "wan22/distributed/sequence_parallel.py": (("torch.amp.autocast('cuda',", "torch.amp.autocast('cpu',"),),
    "wan22/distributed/ulysses.py": (),
    "wan22/distributed/util.py": (),
}


def changed_source(path: str) -> str:
    """The vendored file's text with its :data:`CHANGES` (each old text met as often as it is
    replaced: ``autocast('cuda',`` everywhere in Wan2.2's model, the other changes once)."""
    text = (ROOT / path).read_text()
    for old, new in CHANGES[path]:
        if text.count(old) < 1 or (path.endswith("attention.py") and text.count(old) != 1):
            raise AssertionError(f"{path}: {old!r} is not where the loader expects it")
        text = text.replace(old, new)
    return text


def _varlen_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kw: Any) -> torch.Tensor:
    """``flash_attn.flash_attn_varlen_func`` for equal lengths per sample: (total, heads, dim) in and out
    (the keys' length from their total, not ``max_seqlen_k``: under sequence parallelism the queries
    are padded, the keys cut to the true length by ``k_lens``)."""
    b = q.shape[0] // int(kw["max_seqlen_q"])
    lq, lk = q.shape[0] // b, k.shape[0] // b
    qb, kb, vb = (t.unflatten(0, (b, n)).transpose(1, 2) for t, n in ((q, lq), (k, lk), (v, lk)))
    return F.scaled_dot_product_attention(qb, kb, vb).transpose(1, 2).flatten(0, 1)


def load(version: str) -> types.ModuleType:
    """``wan21`` or ``wan22``'s ``model`` module, its package ``wan_original_<version>``."""
    package = f"wan_original_{version}"
    if f"{package}.model" in sys.modules:
        return sys.modules[f"{package}.model"]
    pkg = types.ModuleType(package)
    pkg.__path__ = []
    sys.modules[package] = pkg
    for name in ("attention", "model"):
        module = types.ModuleType(f"{package}.{name}")
        module.__package__ = package
        sys.modules[module.__name__] = module
        path = ROOT / version / f"{name}.py"
        exec(compile(changed_source(f"{version}/{name}.py"), str(path), "exec"), module.__dict__)
        if name == "attention":
            module.FLASH_ATTN_3_AVAILABLE = False
            module.FLASH_ATTN_2_AVAILABLE = True
            module.flash_attn = types.SimpleNamespace(flash_attn_varlen_func=_varlen_sdpa)
    return sys.modules[f"{package}.model"]


def load_sequence_parallel(version: str = "wan22") -> types.ModuleType:
    """Wan2.2's ``wan/distributed/sequence_parallel.py`` (with ``ulysses.py`` and ``util.py``), its
    relative imports of ``..modules.model`` and ``..modules.attention`` answered by :func:`load`'s."""
    package = f"wan_original_{version}"
    name = f"{package}.distributed.sequence_parallel"
    if name in sys.modules:
        return sys.modules[name]
    model = load(version)
    modules = types.ModuleType(f"{package}.modules")
    modules.__path__ = []
    sys.modules[modules.__name__] = modules
    sys.modules[f"{package}.modules.model"] = model
    sys.modules[f"{package}.modules.attention"] = sys.modules[f"{package}.attention"]
    dist = types.ModuleType(f"{package}.distributed")
    dist.__path__ = []
    sys.modules[dist.__name__] = dist
    for part in ("util", "ulysses", "sequence_parallel"):
        module = types.ModuleType(f"{package}.distributed.{part}")
        module.__package__ = dist.__name__
        sys.modules[module.__name__] = module
        path = f"{version}/distributed/{part}.py"
        exec(compile(changed_source(path), str(ROOT / path), "exec"), module.__dict__)
    return sys.modules[name]


def _up(a: Any) -> Any:
    return a.float() if isinstance(a, torch.Tensor) and a.dtype in (torch.bfloat16, torch.float16) else a


class CudaAutocastLists(TorchFunctionMode):
    """What CUDA autocast does that CPU autocast does not, for the two ops of this model it matters to
    with bf16 weights (``--convert-model-dtype``): ``layer_norm`` is on CUDA's float32 list, so under
    ``autocast(bfloat16)`` its bf16 weight and bias are cast to float32; ``autocast(dtype=float32)``
    runs ``linear`` in float32 on CUDA (its bf16 weight and bias cast up), where CPU autocast turns
    itself off. With float32 weights both are no-ops."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if (func is F.layer_norm and torch.is_autocast_enabled("cpu")) or (
            func is F.linear and not torch.is_autocast_enabled("cpu")
        ):
            args, kwargs = tuple(_up(a) for a in args), {k: _up(v) for k, v in kwargs.items()}
        return func(*args, **kwargs)
