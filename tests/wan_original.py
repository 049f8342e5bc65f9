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

import contextlib
import gc
import sys
import types
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from hybrid.rows import CostRow

ROOT = Path(__file__).parent / "data" / "wan_original"

CHANGES: dict[str, tuple[tuple[str, str], ...]] = {
    "wan21/model.py": (("import torch.cuda.amp as amp", "import torch.cpu.amp as amp"),),
    "wan22/model.py": (("torch.amp.autocast('cuda',", "torch.amp.autocast('cpu',"),),
    "wan21/attention.py": (("assert q.device.type == 'cuda' and q.size(-1) <= 256", "assert q.size(-1) <= 256"),),
    "wan22/attention.py": (("assert q.device.type == 'cuda' and q.size(-1) <= 256", "assert q.size(-1) <= 256"),),
    "wan22/distributed/sequence_parallel.py": (("torch.amp.autocast('cuda',", "torch.amp.autocast('cpu',"),),
    "wan22/distributed/ulysses.py": (),
    "wan22/distributed/util.py": (),
    "wan22/s2v/model_s2v.py": (("import torch.cuda.amp as amp", "import torch.cpu.amp as amp"),),
    "wan22/s2v/audio_utils.py": (("import torch.cuda.amp as amp", "import torch.cpu.amp as amp"),),
    "wan22/s2v/motioner.py": (("import torch.cuda.amp as amp", "import torch.cpu.amp as amp"),),
    "wan22/s2v/auxi_blocks.py": (),
    "wan22/s2v/s2v_utils.py": (),
    "wan22/s2v/audio_encoder.py": (),
    "wan22/animate/model_animate.py": (("import torch.cuda.amp as amp", "import torch.cpu.amp as amp"),),
    "wan22/animate/motion_encoder.py": (("torch.cuda.amp.autocast(", "torch.cpu.amp.autocast("),),
    "wan22/animate/face_blocks.py": (),
    "wan22/animate/animate_utils.py": (),
    "wan21/clip.py": (
        ("import torchvision.transforms as T\n", "T = None  # torchvision: only _clip's transforms (not built)\n"),
        ("torch.cuda.amp.autocast(", "torch.cpu.amp.autocast("),
    ),
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


def _source(path: str, on_cuda: bool) -> str:
    """The vendored file ``path`` as written (``on_cuda``) or changed to run on a CPU (:func:`changed_source`)."""
    return (ROOT / path).read_text() if on_cuda else changed_source(path)


def _varlen_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kw: Any) -> torch.Tensor:
    """``flash_attn.flash_attn_varlen_func`` for equal lengths per sample: (total, heads, dim) in and out
    (the keys' length from their total, not ``max_seqlen_k``: under sequence parallelism the queries
    are padded, the keys cut to the true length by ``k_lens``)."""
    b = q.shape[0] // int(kw["max_seqlen_q"])
    lq, lk = q.shape[0] // b, k.shape[0] // b
    qb, kb, vb = (t.unflatten(0, (b, n)).transpose(1, 2) for t, n in ((q, lq), (k, lk), (v, lk)))
    return F.scaled_dot_product_attention(qb, kb, vb).transpose(1, 2).flatten(0, 1)


def _varlen_flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kw: Any) -> torch.Tensor:
    """:func:`_varlen_sdpa` on PyTorch's own FlashAttention-2 kernel (a GPU without ``flash_attn``)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        return _varlen_sdpa(q, k, v, **kw)


def load(version: str, on_cuda: bool = False) -> types.ModuleType:
    """``wan21`` or ``wan22``'s ``model`` module, its package ``wan_original_<version>``: changed to run
    on a CPU (:data:`CHANGES`), or ``on_cuda`` as written (package ``wan_original_<version>_cuda``), its
    ``flash_attn`` call on PyTorch's FlashAttention-2 (``calibration/measure_profile.py`` times it)."""
    package = f"wan_original_{version}" + ("_cuda" if on_cuda else "")
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
        source = _source(f"{version}/{name}.py", on_cuda)
        exec(compile(source, str(path), "exec"), module.__dict__)
        if name == "attention":
            module.FLASH_ATTN_3_AVAILABLE = False
            module.FLASH_ATTN_2_AVAILABLE = True
            varlen = _varlen_flash if on_cuda else _varlen_sdpa
            module.flash_attn = types.SimpleNamespace(flash_attn_varlen_func=varlen)
    return sys.modules[f"{package}.model"]


def load_sequence_parallel(version: str = "wan22", on_cuda: bool = False) -> types.ModuleType:
    """Wan2.2's ``wan/distributed/sequence_parallel.py`` (with ``ulysses.py`` and ``util.py``), its
    relative imports of ``..modules.model`` and ``..modules.attention`` answered by :func:`load`'s (``on_cuda``:
    as written, beside ``load(version, on_cuda=True)``)."""
    package = f"wan_original_{version}" + ("_cuda" if on_cuda else "")
    name = f"{package}.distributed.sequence_parallel"
    if name in sys.modules:
        return sys.modules[name]
    model = load(version, on_cuda)
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
        source = _source(path, on_cuda)
        exec(compile(source, str(ROOT / path), "exec"), module.__dict__)
    return sys.modules[name]


S2V_FILES = ("s2v_utils", "auxi_blocks", "motioner", "audio_utils", "model_s2v", "audio_encoder")
"""Wan2.2-S2V's ``wan/modules/s2v/`` files, in the order their imports need them (``audio_encoder`` imports
``librosa`` only to read audio files: a placeholder module stands in for it)."""


def _load_modules(package: str, folder: str, files: tuple[str, ...], on_cuda: bool = False) -> None:
    """The vendored ``folder``'s ``files`` as modules of ``package`` (made where it is not yet), in order
    (:func:`_source`)."""
    if package not in sys.modules:
        pkg = types.ModuleType(package)
        pkg.__path__ = []
        sys.modules[package] = pkg
    for part in files:
        module = types.ModuleType(f"{package}.{part}")
        module.__package__ = package
        sys.modules[module.__name__] = module
        path = f"{folder}/{part}.py"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.cpu.amp's deprecation, met by its decorators
            exec(compile(_source(path, on_cuda), str(ROOT / path), "exec"), module.__dict__)


def load_s2v(on_cuda: bool = False) -> types.ModuleType:
    """Wan2.2's ``wan/modules/s2v/model_s2v.py`` (with the files it imports, :data:`S2V_FILES`), its relative
    imports of ``..model`` and ``...distributed.sequence_parallel`` answered by :func:`load_sequence_parallel`'s
    (``on_cuda``: as written, its attention on PyTorch's FlashAttention-2 as :func:`load`'s)."""
    package = "wan_original_wan22" + ("_cuda" if on_cuda else "") + ".modules.s2v"
    name = f"{package}.model_s2v"
    if name not in sys.modules:
        load_sequence_parallel("wan22", on_cuda)
        sys.modules.setdefault("librosa", types.ModuleType("librosa"))
        _load_modules(package, "wan22/s2v", S2V_FILES, on_cuda)
    return sys.modules[name]


ANIMATE_FILES = ("motion_encoder", "face_blocks", "model_animate")
"""Wan2.2-Animate's ``wan/modules/animate/`` model files, in the order their imports need them."""


def _flash_attn_func(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``flash_attn.flash_attn_func`` (the face adapter's FlashAttention-2, no fallback in the original): PyTorch's
    ``scaled_dot_product_attention`` on the same (batch, tokens, heads, dim) tensors, out in that layout."""
    return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)


def load_animate() -> types.ModuleType:
    """Wan2.2's ``wan/modules/animate/model_animate.py`` (with :data:`ANIMATE_FILES`), changed to run on a CPU
    (:data:`CHANGES`), its relative imports answered by :func:`load_sequence_parallel`'s and the face adapter's
    ``flash_attn_func`` (``None`` without the package) on :func:`_flash_attn_func`."""
    package = "wan_original_wan22.modules.animate"
    name = f"{package}.model_animate"
    if name not in sys.modules:
        load_sequence_parallel("wan22")
        _load_modules(package, "wan22/animate", ANIMATE_FILES)
        sys.modules[f"{package}.face_blocks"].flash_attn_func = _flash_attn_func  # a global, read at call time
    return sys.modules[name]


def load_animate_utils() -> types.ModuleType:
    """Wan2.2's ``wan/modules/animate/animate_utils.py`` as written: ``get_loraconfig``, the relighting LoRA's
    ``LoraConfig`` (peft's) over every Linear of the blocks but the face adapters' and the modulation."""
    name = "wan_original_wan22.modules.animate.animate_utils"
    if name not in sys.modules:
        load_animate()
        _load_modules("wan_original_wan22.modules.animate", "wan22/animate", ("animate_utils",))
    return sys.modules[name]


class Normalize:
    """torchvision's ``transforms.Normalize`` on a tensor (``_functional_tensor.normalize``, ``inplace=False``), the
    ops it runs: a clone, ``mean`` and ``std`` as tensors of the image's dtype and device, the ``(std == 0).any()``
    check, both viewed ``(-1, 1, 1)``, ``sub_(mean).div_(std)`` (torchvision is not installed here)."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        self.mean, self.std = mean, std

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        mean = torch.as_tensor(self.mean, dtype=tensor.dtype, device=tensor.device)
        std = torch.as_tensor(self.std, dtype=tensor.dtype, device=tensor.device)
        if (std == 0).any():
            raise ValueError("std evaluated to zero")
        return tensor.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))


CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
"""``_clip``'s ``Normalize`` for the xlm-roberta ViT-H/14 (not SigLIP)."""


def load_clip() -> types.ModuleType:
    """Wan2.1's ``wan/modules/clip.py`` (package ``wan_original_wan21``, beside :func:`load`'s ``attention``), changed
    to run on a CPU (:data:`CHANGES`); its ``tokenizers`` and ``xlm_roberta`` imports (the text tower's, which
    ``CLIPModel.visual`` never reaches) answered by placeholders."""
    name = "wan_original_wan21.clip"
    if name not in sys.modules:
        load("wan21")
        placeholders = {"tokenizers": "HuggingfaceTokenizer", "xlm_roberta": "XLMRoberta"}
        for part, attr in placeholders.items():
            module = types.ModuleType(f"wan_original_wan21.{part}")
            setattr(module, attr, torch.nn.Module)
            sys.modules[module.__name__] = module
        module = types.ModuleType(name)
        module.__package__ = "wan_original_wan21"
        sys.modules[name] = module
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            exec(compile(changed_source("wan21/clip.py"), str(ROOT / "wan21/clip.py"), "exec"), module.__dict__)
    return sys.modules[name]


def clip_visual(cfg: Any, images: int = 1) -> tuple[torch.nn.Module, Any]:
    """The original tower of ``cfg`` (a :class:`hybrid.models.clip.CLIPVisionConfig`) as ``clip_xlm_roberta_vit_h_14``
    builds it (token pooling, pre-norm, GELU) in float16 (``clip_dtype``), and a ``CLIPModel`` around it as
    ``CLIPModel.__init__`` leaves one (no checkpoint read: the model, its dtype, the image size and ``Normalize``)."""
    clip = load_clip()
    tower = clip.VisionTransformer(
        image_size=cfg.image_size, patch_size=cfg.patch_size, dim=cfg.hidden_size,
        mlp_ratio=cfg.intermediate_size // cfg.hidden_size, out_dim=cfg.projection_dim,
        num_heads=cfg.num_attention_heads, num_layers=cfg.num_hidden_layers, pool_type="token", pre_norm=True,
        post_norm=False, activation="gelu",
    )  # fmt: skip
    tower = tower.eval().requires_grad_(False).to(torch.float16)
    model = clip.CLIPModel.__new__(clip.CLIPModel)
    model.dtype, model.device = torch.float16, torch.device("cpu")
    model.model = types.SimpleNamespace(image_size=cfg.image_size, visual=tower)
    model.transforms = types.SimpleNamespace(transforms=[Normalize(CLIP_MEAN, CLIP_STD)])
    return tower, model


S2V_FIXED: dict[str, Any] = {
    "cond_dim": 16, "num_audio_token": 4, "enable_adain": True, "adain_mode": "attn_norm", "zero_init": True,
    "zero_timestep": True, "enable_motioner": False, "add_last_motion": True, "enable_framepack": True,
    "framepack_drop_mode": "padd", "in_dim": 16, "out_dim": 16,
}  # fmt: skip
"""``WanModel_S2V``'s arguments that ``wan/configs/wan_s2v_14B.py`` and the checkpoint's config fix at any size."""
S2V_PUBLISHED: dict[str, Any] = {
    "dim": 5120, "ffn_dim": 13824, "num_heads": 40, "num_layers": 40, "audio_dim": 1024,
    "audio_inject_layers": [0, 4, 8, 12, 16, 20, 24, 27, 30, 33, 36, 39], "text_dim": 4096, "freq_dim": 256,
}  # fmt: skip
"""Its sizes as ``wan_s2v_14B.py`` configures them."""


def _up(a: Any) -> Any:
    return a.float() if isinstance(a, torch.Tensor) and a.dtype in (torch.bfloat16, torch.float16) else a


class CudaAutocastLists(TorchFunctionMode):
    """What CUDA autocast does that CPU autocast does not, for the ops of these models it matters to
    with bf16 weights (``--convert-model-dtype``, Wan2.2-S2V, Wan2.2-Animate): ``layer_norm`` is on CUDA's
    float32 list, so under ``autocast(bfloat16)`` its bf16 weight and bias are cast to float32;
    ``autocast(dtype=float32)`` runs ``linear``, ``conv1d`` (S2V's causal audio encoder) and ``matmul``
    (Animate's motion basis) in float32 on CUDA (bf16 inputs, weights and biases cast up), where CPU autocast
    turns itself off. And the other way: CPU autocast runs ``replication_pad1d`` in float32 (its float32 list),
    CUDA's leaves it in the input's dtype (Animate's face encoder pads bf16 there). With float32 weights all are
    no-ops."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is F.pad and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return func(*args, **kwargs)
        if (func is F.layer_norm and torch.is_autocast_enabled("cpu")) or (
            func in (F.linear, F.conv1d, torch.matmul) and not torch.is_autocast_enabled("cpu")
        ):
            args, kwargs = tuple(_up(a) for a in args), {k: _up(v) for k, v in kwargs.items()}
        return func(*args, **kwargs)


BLOCK = {"norm3": "norm2", "norm2": "norm3", "ffn.0": "ffn.net.0.proj", "ffn.1": "ffn.net.0", "ffn.2": "ffn.net.2"}
for _orig, _ours in (("self_attn", "attn1"), ("cross_attn", "attn2")):
    BLOCK[_orig] = _ours
    for _a, _b in ((".q", ".to_q"), (".k", ".to_k"), (".v", ".to_v"), (".o", ".to_out.0"), (".norm_q", ".norm_q"),
                   (".norm_k", ".norm_k")):  # fmt: skip
        BLOCK[_orig + _a] = _ours + _b
BLOCK.update({"cross_attn.k_img": "attn2.add_k_proj", "cross_attn.v_img": "attn2.add_v_proj",
              "cross_attn.norm_k_img": "attn2.norm_added_k"})  # fmt: skip
TOP = {
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.1": "condition_embedder.time_embedder.act",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "time_projection.0": "condition_embedder.act_fn",
    "time_projection.1": "condition_embedder.time_proj",
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.1": "condition_embedder.text_embedder.act_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "img_emb": "condition_embedder.image_embedder",
    "img_emb.proj.0": "condition_embedder.image_embedder.norm1",
    "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
    "img_emb.proj.2": "condition_embedder.image_embedder.ff.net.0",
    "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
    "img_emb.proj.4": "condition_embedder.image_embedder.norm2",
    "head": "",
    "head.norm": "norm_out",
    "head.head": "proj_out",
}
"""The original's module paths as the walk names them (diffusers')."""


def diffusers_path(module: str) -> str:
    if module.startswith("face_adapter.fuser_blocks."):  # Wan-Animate's FaceBlock j: the walk's face_adapter.j
        return "face_adapter." + module.removeprefix("face_adapter.fuser_blocks.")
    parts = module.split(".")
    if parts[0] == "blocks" and len(parts) > 2:
        rest, lora = ".".join(parts[2:]), ""
        for suffix in LORA_SUFFIXES:  # peft's layer around a Linear: the Linear's path, then the layer's own
            if rest.endswith(suffix):
                rest, lora = rest.removesuffix(suffix), suffix
        return ".".join([*parts[:2], BLOCK.get(rest, rest)]) + lora
    return TOP.get(module, module)


LORA_SUFFIXES = (".base_layer", ".lora_A.default", ".lora_B.default")
"""What peft's ``LoraLayer`` adds to a wrapped Linear's path: its base layer and the adapter ``default``'s two."""


class Traced:
    def __init__(self, rows: list[CostRow], peak: int, peak_materialized: int, unsupported: dict[str, int],
                 params: set[tuple[int, ...]], held: int = 0) -> None:  # fmt: skip
        self.rows, self.peak, self.peak_materialized = rows, peak, peak_materialized
        self.unsupported, self.params = unsupported, params
        self.held = held
        """Bytes the forward's ops allocated that are still alive once it returned and its output was dropped:
        what the module keeps on itself to the next call."""


class HostOps(TorchDispatchMode):
    """Keeps the host's work out of a CPU run that stands for a GPU one: an op whose known tensors all live on
    the host in the GPU run (``host``: tensors the code keeps there, such as WanModel_S2V's rotary tables; and
    what ops make from them alone, or from Python values with no device named: ``torch.tensor``, ``torch.zeros``
    without ``device=``) runs below no other mode, so the tracer never sees it. Every other tensor (``device``:
    the model's parameters and the forward's inputs, and what ops make from any of them) is the GPU's; an op
    that reads both (a host table copied into a device tensor) is the GPU's too. Tensors made inside an op
    without dispatch (a Python list used as an index) are not known and decide nothing."""

    def __init__(self, host: list[torch.Tensor], device: list[torch.Tensor]) -> None:
        from torch.utils.weak import WeakTensorKeyDictionary

        super().__init__()
        self.where = WeakTensorKeyDictionary()  # holds no tensor alive (the tracer counts what lives)
        for t in host:
            self.where[t] = True
        for t in device:
            self.where[t] = False

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        from torch.utils._python_dispatch import _disable_current_modes
        from torch.utils._pytree import tree_leaves

        kwargs = kwargs or {}
        known = [self.where[t] for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor) and t in self.where]
        host = all(known) if known else kwargs.get("device") is None
        if host:
            with _disable_current_modes():
                out = func(*args, **kwargs)
        else:
            out = func(*args, **kwargs)
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.where[t] = host
        return out


def trace(model: torch.nn.Module, forward: Callable[[], Any], skip_params: tuple[str, ...] = (),
          host: HostOps | None = None) -> Traced:  # fmt: skip
    """``forward()`` of ``model`` traced on a CPU under ``autocast(bfloat16)`` as ``generate.py`` runs it (no grad,
    CUDA autocast's lists): its rows, both peaks, unsupported ops, and the shapes of its parameters (the weights
    autocast casts; ``skip_params``: parameters added, not cast, whose shape an activation's may share). ``host``
    keeps the host's work out (:class:`HostOps`)."""
    from hybrid.trace.mode import CanonicalFunctionMode, CostMode, ModuleStack

    with ModuleStack(model) as modules:
        cost = CostMode("diffusion_core", modules)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16)
        outer = host if host is not None else contextlib.nullcontext()
        with autocast, torch.no_grad(), cost, CanonicalFunctionMode(cost), CudaAutocastLists(), outer:
            forward()
        gc.collect()
    params = {tuple(p.shape) for n, p in model.named_parameters() if n not in skip_params}
    return Traced(cost.rows(), cost.peak_live_bytes, cost.peak_live_bytes_materialized, dict(cost.unsupported), params,
                  cost.live_bytes)  # fmt: skip


def _bookkeeping(row: CostRow, batch: int) -> bool:
    """Grid sizes and sequence lengths: ``.tolist()``/``.item()``, ``seq_lens.max() <= seq_len``,
    ``torch.stack`` of the ``(3,)`` grid sizes, and ``cu_seqlens`` (``new_zeros``, ``cat``,
    ``cumsum`` and copies of at most ``B + 1`` entries in the attentions)."""
    if row.op in ("aten._local_scalar_dense", "aten.cumsum", "aten.max", "aten.le"):
        return True
    if row.op == "aten.stack" and all(s == (3,) for s in row.input_shapes):
        return True
    shapes = [*row.input_shapes, *row.output_shape]
    small = all(len(s) <= 1 and (s[0] if s else 1) <= batch + 1 for s in shapes)
    return small and "attn" in row.module and row.op in ("aten.new_zeros", "aten.cat", "aten._to_copy")


def _weight_cast(row: CostRow, params: set[tuple[int, ...]]) -> bool:
    """autocast's bfloat16 copy of a float32 weight or bias (4 bytes read per 2 written)."""
    return row.op == "aten._to_copy" and row.input_shapes[0] in params and row.bytes_read == 2 * row.bytes_written


def _by_module_op(rows: list[CostRow]) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        slot = out[(r.module, r.op)]
        for i, v in enumerate((r.calls, r.flops, r.bytes_read, r.bytes_written)):
            slot[i] += v
    return {k: (v[0], v[1], v[2], v[3]) for k, v in out.items()}


def walk_and_trace(run: Traced, cfg: Any, shape: Any, batch: int) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """``(walk, trace)``: the closed-form walk's rows of ``cfg`` at ``shape`` and the traced rows by (module, op),
    the trace's in the walk's module names, without views, bookkeeping and weight casts."""
    from dataclasses import replace

    from hybrid.models.wan_dit import dit_rows

    assert set(run.unsupported) <= {"aten._local_scalar_dense", "aten.cumsum"}  # bookkeeping only
    kept = [
        replace(r, module=diffusers_path(r.module))
        for r in run.rows
        if r.category != "view" and not _bookkeeping(r, batch) and not _weight_cast(r, run.params)
    ]
    walked = [row for g in dit_rows(cfg, shape) for row in g.expand()]
    return _by_module_op(walked), _by_module_op(kept)
