"""TAEHV, the tiny video autoencoder (madebyollin/taehv; ``taew2_1`` for the Wan2.1 VAE's latents, ``taew2_2``
for Wan2.2 TI2V-5B's): its decoder, run as LightX2V's ``WanVAE_tiny.decode`` runs it, is the ``vae_decode``
stage of ``--optimise tae``.

Decoder (``TAEHV.decoder``, an ``nn.Sequential`` of 2D modules applied to one latent frame at a time,
``n_f = [256, 128, 64, 64]``):

* ``0`` ``Clamp`` (``tanh(x / 3) * 3``), ``1`` 3x3 conv ``latent_channels -> 256``, ``2`` ReLU;
* three stages ``s`` of: three ``MemBlock(n_f[s])`` (the frame concatenated with the block's previous input,
  zeros for the first frame: 3x3 convs ``2n -> n -> n -> n`` with ReLUs, the frame added, ReLU), a nearest
  x2 ``Upsample``, a ``TGrow`` (1x1 conv ``n -> n * stride``, its output split into ``stride`` frames: strides
  1, 2, 2) and a 3x3 conv ``n_f[s] -> n_f[s + 1]`` (no bias);
* ReLU and a 3x3 conv ``64 -> 3 * patch_size^2``; then (``taew2_2``) ``pixel_shuffle(2)``, ``clamp_(0, 1)``,
  and the first ``2^2 - 1 = 3`` frames trimmed: ``T`` latent frames become ``4T - 3``, as the Wan VAE's.

``decode_video(x, parallel=False)`` walks the blocks frame by frame through a work queue
(``apply_model_with_memblocks_sequential``): each module runs once per frame it sees (``T``, ``2T`` after the
second TGrow, ``4T`` after the third), every output frame is kept in a list and concatenated at the end.
LightX2V's wrapper (``lightx2v/models/video_encoders/hf/wan/vae_tiny.py``: the model in bfloat16,
``decode_video(latents.transpose(1, 2).to(self.dtype), parallel=False).transpose(1, 2).mul_(2).sub_(1)``) adds two
in-place passes over the video. The walk below tells a :class:`~hybrid.sinks.Sink` every op and every storage
that starts and stops living, in the order that loop runs them (the bytes as the tracer counts them on the
meta device, nearest upsampling as PyTorch decomposes it for bfloat16: the frame in float32, gathered, cast
back).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import lru_cache

from hybrid import ops
from hybrid.memo import on_clear
from hybrid.rows import OpGroup
from hybrid.sinks import Peak, Rows, Sink, TermSink
from hybrid.timing import Term, conv_dims

BF16, F32, I64 = 2, 4, 8


@dataclass(frozen=True)
class TAEHVConfig:
    """The decoder's shape (``TAEHV.__init__``'s arguments as its checkpoint name sets them)."""

    latent_channels: int = 16
    patch_size: int = 1
    widths: tuple[int, int, int, int] = (256, 128, 64, 64)
    """``n_f`` of the base decoder."""
    time_strides: tuple[int, int, int] = (1, 2, 2)
    """Each stage's ``TGrow`` stride (``decoder_time_upscale = (False, True, True)``)."""
    image_channels: int = 3
    source: str = ""

    def num_parameters(self) -> int:
        """The decoder's parameters (``sum(p.numel() for p in TAEHV.decoder.parameters())``)."""
        n = self.widths
        total = 9 * self.latent_channels * n[0] + n[0]  # decoder.1
        for s in range(3):
            c = n[s]
            total += 3 * (9 * 2 * c * c + c + 2 * (9 * c * c + c))  # three MemBlocks
            total += c * c * self.time_strides[s]  # TGrow's 1x1 conv, no bias
            total += 9 * c * n[s + 1]  # the stage's 3x3 conv, no bias
        out = self.image_channels * self.patch_size**2
        return total + 9 * n[3] * out + out


TAEW2_1 = TAEHVConfig(source="madebyollin/taehv taehv.py (1f14a56): TAEHV('taew2_1.pth'): latent_channels 16, patch 1")
TAEW2_2 = TAEHVConfig(
    latent_channels=48,
    patch_size=2,
    source="madebyollin/taehv taehv.py (1f14a56): 'taew2_2' in the checkpoint name sets patch_size 2, "
    "latent_channels 48",
)


class _Buf:
    """A storage of the walk: freed (told to the sink) when the last reference to it goes, as CPython
    frees a tensor's; views are the same object."""

    __slots__ = ("__weakref__", "nbytes")

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes


class _Walk:
    """One decode, told to ``sink``: ``batch`` videos of ``frames`` latent frames of ``h x w``. The work queue,
    the blocks' memories and the loop's locals are mirrored as ``taehv.py`` keeps them, so every storage dies
    where the real one does."""

    def __init__(self, sink: Sink, cfg: TAEHVConfig, batch: int, frames: int, h: int, w: int) -> None:
        self.sink, self.cfg, self.b, self.frames, self.h, self.w = sink, cfg, batch, frames, h, w
        n = cfg.widths
        # (kind, module index, channels in, channels out or stride), in decoder order
        blocks: list[tuple[str, int, int]] = [("clamp", 0, 0), ("conv_in", n[0], 0), ("relu", n[0], 0)]
        for s in range(3):
            blocks += [("mem", n[s], 0)] * 3
            blocks += [("up", n[s], 0), ("grow", n[s], cfg.time_strides[s]), ("conv", n[s], n[s + 1])]
        blocks += [("relu", n[3], 0), ("conv_out", n[3], cfg.image_channels * cfg.patch_size**2)]
        self.blocks = blocks
        self._growth = 1
        for stride in cfg.time_strides:
            self._growth *= stride

    def new(self, nbytes: int) -> _Buf:
        buf = _Buf(nbytes)
        if self.sink.memory:
            self.sink.alloc(nbytes)
            weakref.finalize(buf, self.sink.free, nbytes)
        return buf

    def op(self, module: str, op: str, category: str, read: int, written: int, flops: int = 0,
           dims: tuple[int, ...] = ()) -> None:  # fmt: skip
        self.sink.op(module, op, category, read, written, flops, 1, dims=dims)

    def conv(self, module: str, c_in: int, c_out: int, k: int, hw: int, bias: bool) -> _Buf:
        """A 2D conv over one frame of ``hw`` pixels: its output."""
        b = self.b
        weight = c_out * c_in * k * k + (c_out if bias else 0)
        out = b * c_out * hw * BF16
        flops = ops.conv(b, c_in, c_out, (k, k), (hw,))
        self.op(module, "aten.convolution", "conv", (b * c_in * hw + weight) * BF16, out, flops,
                conv_dims(b, c_in, c_out, (k, k), (hw,)))  # fmt: skip
        return self.new(out)

    def memblock(self, m: str, c: int, hw: int) -> _Buf:
        """``MemBlock.forward``: ``act(conv(cat([x, past])) + x)``; the cat lives until ``self.conv`` returns."""
        e = self.b * c * hw * BF16
        self.op(m, "aten.cat", "movement", 2 * e, 2 * e)
        cat = self.new(2 * e)
        out = self.conv(f"{m}.conv.0", 2 * c, c, 3, hw, True)
        self.op(f"{m}.conv.1", "aten.relu_", "elementwise", e, e)
        out = self.conv(f"{m}.conv.2", c, c, 3, hw, True)
        self.op(f"{m}.conv.3", "aten.relu_", "elementwise", e, e)
        out = self.conv(f"{m}.conv.4", c, c, 3, hw, True)
        del cat
        self.op(m, "aten.add", "elementwise", 2 * e, e)
        total = self.new(e)
        del out
        self.op(f"{m}.act", "aten.relu_", "elementwise", e, e)
        return total

    def upsample(self, m: str, c: int, h: int, w: int) -> _Buf:
        """Nearest x2 as PyTorch decomposes it for bfloat16 (``_upsample_nearest`` under ``pw_cast_for_opmath``):
        the frame in float32, an index per output row and column, the gather, the cast back."""
        n = self.b * c * h * w
        self.op(m, "aten._to_copy", "movement", n * BF16, n * F32)
        wide = self.new(n * F32)
        indices = []
        for size, unsqueeze in ((2 * h, True), (2 * w, False)):
            # input_indices = torch.arange(size); ((input_indices + offset) * scale).to(torch.int64)
            self.op(m, "aten.arange", "factory", 0, size * F32)
            positions = self.new(size * F32)
            self.op(m, "aten.add", "elementwise", size * F32, size * F32)
            shifted = self.new(size * F32)
            self.op(m, "aten.mul", "elementwise", size * F32, size * F32)
            scaled = self.new(size * F32)
            del shifted
            self.op(m, "aten._to_copy", "movement", size * F32, size * I64)
            indices.append(self.new(size * I64))
            del scaled, positions
            if unsqueeze:
                self.op(m, "aten.unsqueeze", "view", 0, 0)
        self.op(m, "aten._unsafe_index", "movement", n * F32 + sum(i.nbytes for i in indices), 4 * n * F32)
        gathered = self.new(4 * n * F32)
        del indices, wide  # _upsample_nearest's locals and the cast input go before the result is cast back
        self.op(m, "aten._to_copy", "movement", 4 * n * F32, 4 * n * BF16)
        out = self.new(4 * n * BF16)
        del gathered
        return out

    def clamp(self, m: str, x: _Buf) -> _Buf:
        """``Clamp``: ``tanh(x / 3) * 3``, each temporary freed after the op that reads it."""
        e = x.nbytes
        self.op(m, "aten.div", "elementwise", e, e)
        t1 = self.new(e)
        self.op(m, "aten.tanh", "elementwise", e, e)
        t2 = self.new(e)
        del t1
        self.op(m, "aten.mul", "elementwise", e, e)
        t3 = self.new(e)
        del t2
        return t3

    def run(self) -> None:
        cfg, frames = self.cfg, self.frames
        self.op("", "aten.transpose", "view", 0, 0)  # latents.transpose(1, 2); .to(bfloat16) of bfloat16: no op
        self.op("", "aten.unbind", "view", 0, 0)
        latent = _Buf(self.b * cfg.latent_channels * self.h * self.w * BF16)  # a frame of the input: not allocated
        queue: list[tuple[_Buf, int, int]] = [(latent, 0, 0) for _ in range(frames)]  # (storage, block, level)
        memory: list[_Buf | None] = [None] * len(self.blocks)
        out: list[_Buf] = []
        frame: _Buf | None = None
        while queue:
            frame = self._single_step(memory, queue)
            if frame is not None:
                out.append(frame)
        video_bytes = sum(f.nbytes for f in out)
        self.op("", "aten.cat", "movement", video_bytes, video_bytes)
        video = self.new(video_bytes)
        del out, memory, queue, frame
        if cfg.patch_size > 1:
            self.op("", "aten.pixel_shuffle", "movement", video_bytes, video_bytes)
            video = self.new(video_bytes)
        self.op("", "aten.clamp_", "elementwise", video_bytes, video_bytes)
        self.op("", "aten.slice", "view", 0, 0)
        # LightX2V's WanVAE_tiny.decode: .transpose(1, 2).mul_(2).sub_(1) of the trimmed video
        kept = video_bytes // (frames * self._growth) * (frames * self._growth - self._growth + 1)
        self.op("", "aten.transpose", "view", 0, 0)
        for name in ("aten.mul_", "aten.sub_"):
            self.op("", name, "elementwise", kept, kept)
        del video

    def _single_step(self, memory: list[_Buf | None], queue: list[tuple[_Buf, int, int]]) -> _Buf | None:
        """``apply_model_with_memblocks_sequential_single_step``: until a frame leaves the last block."""
        xt_new: _Buf | None = None
        xt_next: _Buf | None = None
        while queue:
            xt, i, level = queue.pop(0)
            if i == len(self.blocks):
                self.op("", "aten.unsqueeze", "view", 0, 0)
                return xt
            kind = self.blocks[i][0]
            h, w = self.h << level, self.w << level
            if kind == "mem":
                c = self.blocks[i][1]
                if memory[i] is None:
                    e = self.b * c * h * w * BF16
                    self.op("", "aten.mul", "elementwise", e, e)
                    zeros: _Buf | None = self.new(e)
                    xt_new = self._call(i, xt, zeros, h, w)
                    zeros = None
                else:
                    xt_new = self._call(i, xt, memory[i], h, w)
                memory[i] = xt
                queue.insert(0, (xt_new, i + 1, level))
            elif kind == "grow":
                xt = self._call(i, xt, None, h, w)
                self.op("", "aten.view", "view", 0, 0)
                self.op("", "aten.split", "view", 0, 0)
                for _ in range(self.blocks[i][2]):
                    xt_next = xt
                    queue.insert(0, (xt_next, i + 1, level))
            else:
                xt = self._call(i, xt, None, h, w)
                queue.insert(0, (xt, i + 1, level + (kind == "up")))
            del xt
        return None

    def _call(self, i: int, x: _Buf, past: _Buf | None, h: int, w: int) -> _Buf:
        kind, c, other = self.blocks[i]
        m = f"decoder.{i}"
        if kind == "clamp":
            return self.clamp(m, x)
        if kind == "conv_in":
            return self.conv(m, self.cfg.latent_channels, c, 3, h * w, True)
        if kind == "relu":
            self.op(m, "aten.relu_", "elementwise", x.nbytes, x.nbytes)
            return x
        if kind == "mem":
            return self.memblock(m, c, h * w)
        if kind == "up":
            return self.upsample(m, c, h, w)
        if kind == "grow":
            out = self.conv(f"{m}.conv", c, c * other, 1, h * w, False)
            self.op(m, "aten.view", "view", 0, 0)
            return out
        return self.conv(m, c, other, 3, h * w, kind == "conv_out")


def decode_rows(cfg: TAEHVConfig, batch: int, frames: int, h: int, w: int, stage: str = "vae_decode") -> list[OpGroup]:
    """Every op of one decode as rows (one per call, in order)."""
    sink = Rows(stage)
    _Walk(sink, cfg, batch, frames, h, w).run()
    return sink.out


@lru_cache(maxsize=64)
def decode_terms(cfg: TAEHVConfig, batch: int, frames: int, h: int, w: int) -> tuple[Term, ...]:
    """The roofline terms of one decode."""
    sink = TermSink()
    _Walk(sink, cfg, batch, frames, h, w).run()
    return sink.terms.freeze()


@lru_cache(maxsize=64)
def decode_peak_bytes(cfg: TAEHVConfig, batch: int, frames: int, h: int, w: int) -> int:
    """The largest sum of live storages during one decode."""
    sink = Peak()
    _Walk(sink, cfg, batch, frames, h, w).run()
    return sink.fused


@on_clear
def clear_memos() -> None:
    """Forget the decodes walked (``bench/`` cold runs)."""
    decode_terms.cache_clear()
    decode_peak_bytes.cache_clear()
