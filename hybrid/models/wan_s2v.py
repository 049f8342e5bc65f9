"""Wan2.2-S2V-14B's transformer (``WanModel_S2V`` of the original Wan2.2 repository), closed form.

Neither diffusers nor transformers builds this model, so the tracer cannot: every op here is read from the
original code (Wan-Video/Wan2.2 at 42bf4cf: ``wan/modules/s2v/model_s2v.py``, ``audio_utils.py``,
``auxi_blocks.py``, ``motioner.py``, ``s2v_utils.py``; the line numbers below are that commit's), and
``tests/test_wan_s2v.py`` runs that code (vendored) on a CPU at tiny configs, traces it, and finds this walk's
rows and both activation peaks equal to it, for a first and a later clip. Its 40 blocks are the original
``WanAttentionBlock``'s walk (:func:`hybrid.models.wan_dit._wan_block`) with S2V's two modulation segments
and precomputed rotary table.

One forward of one clip (``speech2video.py:590-634``: batch 1, the conditional and, under CFG, the
unconditional pass alike: the latter's audio is zeros, which costs the same), ``T = infer_frames / 4``
latent frames of ``h x w`` latents, ``P = (h/2)(w/2)`` tokens a frame:

* the causal audio encoder over the clip's audio features with 73 copies of its first frame in front
  (``model_s2v.py:683-694``; ``CausalAudioEncoder`` and ``MotionEncoder_tc`` in float32): the 25 wav2vec2
  layers weighed into one, causal 1-D convolutions to ``ceil((73 + F)/4)`` frames of 4 audio tokens (plus a
  learned padding token) and one global vector each; the last ``T`` frames kept;
* the noisy latents' patch embedding plus the pose condition's (``cond_encoder``, run on zeros without a
  pose video), the reference image's patch embedding appended (``P`` tokens), the motion latents' frame
  pack (``FramePackMotioner``: 1, 2 and 16 latent frames patchified at 2, 4 and 8 pixels: ``P + P/4 + P/4``
  tokens, dropped again in the first clip after they are computed), the token-kind embedding added
  (``trainable_cond_mask``), the rotary table precomputed once per forward in complex128 (``rope_precompute``);
* two timesteps embedded (``t`` and 0: the noisy tokens take the first, the reference and motion tokens
  the second), the 512-token context embedded;
* 40 blocks over all ``L = N + P (+ 1.5 P)`` tokens, an audio injection after blocks 0, 4, 8, ..., 24, 27,
  30, ..., 39 (``after_transformer_block``: the noisy tokens' AdaLN from the audio's global vector, a
  cross-attention of each latent frame's ``P`` tokens to its 5 audio tokens, added back);
* the head on the ``N`` noisy tokens.

Weights are bf16 (``WanModel_S2V.from_pretrained(torch_dtype=bfloat16)``, ``speech2video.py:116-119``) and
the forward runs under ``autocast(bfloat16)`` (``speech2video.py:536-539``). Left out: the host's work (the
grids and sequence lengths, the rotary tables assembled on the CPU before they are copied in), and the
``cu_seqlens`` of the injections' attention (a few bytes). The motion frames' zero buffer, made on the host
and copied in by the code, is taken as made on the GPU (17 MB at 1280x704).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from math import prod
from typing import TYPE_CHECKING, Any

from hybrid import ops
from hybrid.dtypes import BF16, F32, F64, I64
from hybrid.errors import InputError
from hybrid.memo import on_clear
from hybrid.models.wan_dit import (
    WanTransformer3DConfig,
    _gather_forward,
    _Walk,
    _wan_attention,
    _wan_block,
    _wan_f32_linear,
    _wan_head,
    _wan_linear,
    _wan_rms_norm,
    _wan_text_embedding,
    _wan_time_embedding,
)
from hybrid.rows import SDPA_OP as SDPA
from hybrid.rows import OpGroup
from hybrid.sinks import Peak, Rows, Sink, TermSink
from hybrid.timing import Term, conv_dims

if TYPE_CHECKING:  # pragma: no cover
    from hybrid.geometry import CallShape
    from hybrid.models.wav2vec2 import Wav2Vec2Config

STAGE = "diffusion_core"
VIDEO_FPS = 16
"""Frames a second of the video S2V makes (``sample_fps``, ``wan/configs/shared_config.py:18``)."""
AUDIO_FPS = 30
"""Feature frames a second the audio encoder's hidden states are interpolated to (``video_rate``,
``audio_encoder.py:64``)."""
WAV2VEC2_FPS = 50
"""Feature frames a second wav2vec2's hidden states come at (``linear_interpolation(..., input_fps=50)``,
``audio_encoder.py:85-86``)."""
INJECTION = "audio_injection_core"
"""The report component of the audio injections' attention."""
MOTION_FRAMES = 73
"""Pixel frames S2V carries over from clip to clip (``transformer.motion_frames``, ``wan_s2v_14B.py:51``)."""
SAMPLE_RATE = 16_000
"""Audio samples a second wav2vec2 reads (``librosa.load(audio_path, sr=16000)``, ``audio_encoder.py:70``)."""


@dataclass(frozen=True)
class WanS2VConfig(WanTransformer3DConfig):
    """``WanModel_S2V``'s constructor arguments (the original's names where diffusers has none): the
    Wan2.1-14B trunk (``dim`` 5120 = 40 heads x 128, ``ffn_dim`` 13824, 40 layers; ``wan_s2v_14B.py:26-35``)
    plus the audio, pose and motion parts (``wan_s2v_14B.py:36-52``, ``model_s2v.py:255-288``)."""

    audio_dim: int = 1024
    """wav2vec2's hidden size (``audio_dim``)."""
    audio_layers: int = 25
    """wav2vec2 hidden states the causal audio encoder weighs (``CausalAudioEncoder(num_layers=25)``: the
    embeddings' and the 24 layers')."""
    num_audio_token: int = 4
    audio_inject_layers: tuple[int, ...] = (0, 4, 8, 12, 16, 20, 24, 27, 30, 33, 36, 39)
    cond_dim: int = 16
    """Channels of the pose condition latents (``cond_encoder``)."""
    motion_frames: int = MOTION_FRAMES
    """Pixel frames carried over from clip to clip (``transformer.motion_frames``)."""
    zip_frame_buckets: tuple[int, int, int] = (1, 2, 16)
    """Latent frames the frame pack patchifies at 2, 4 and 8 pixels (``FramePackMotioner``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        layers = self.audio_inject_layers
        if list(layers) != sorted(set(layers)) or not layers or layers[0] < 0 or layers[-1] >= self.num_layers:
            raise ValueError(
                f"audio_inject_layers: {layers} must be increasing block indices in [0, {self.num_layers})"
            )
        if self.zip_frame_buckets != (1, 2, 16) or self.patch_size != (1, 2, 2):
            raise ValueError(
                f"zip_frame_buckets, patch_size: only S2V-14B's (1, 2, 16) and (1, 2, 2) are walked, got "
                f"{self.zip_frame_buckets}, {self.patch_size}"
            )
        if (self.motion_frames + 3) // 4 != sum(self.zip_frame_buckets):
            raise ValueError(
                f"motion_frames: {self.motion_frames} make {(self.motion_frames + 3) // 4} latent frames; the frame "
                f"pack takes {sum(self.zip_frame_buckets)}"
            )

    @property
    def motion_latent_frames(self) -> int:
        """Latent frames of the carried-over motion frames (``(motion_frames + 3) // 4``, ``speech2video.py:491``)."""
        return (self.motion_frames + 3) // 4

    def s2v_parameters(self) -> int:
        """Parameters of the S2V parts: the causal audio encoder (the layer weights, four causal convs ``C_in * C_out
        * 3 + C_out``, ``final_linear``, the padding token; its norms have none), per injection a cross-attention
        (``4 * (D*D + D)`` and two RMS norms ``2D``) and an AdaLN linear (``D * 2D + 2D``), the frame pack's three
        patchifying convs (``16 * D * k + D``), ``cond_encoder`` (``C * D * 4 + D``) and ``trainable_cond_mask``
        (``3 * D``)."""
        d, a = self.inner_dim, self.audio_dim
        quarter = d // 4
        audio = (
            self.audio_layers
            + (a * quarter * self.num_audio_token * 3 + quarter * self.num_audio_token)  # conv1_local
            + (a * quarter * 3 + quarter)  # conv1_global
            + (quarter * d // 2 * 3 + d // 2)  # conv2
            + (d // 2 * d * 3 + d)  # conv3
            + (d * d + d)  # final_linear
            + d  # padding_tokens
        )
        injections = len(self.audio_inject_layers) * (4 * (d * d + d) + 2 * d + (d * 2 * d + 2 * d))
        pack = sum(16 * d * k + d for k in (1 * 2 * 2, 2 * 4 * 4, 4 * 8 * 8))
        cond = self.cond_dim * d * prod(self.patch_size) + d
        return audio + injections + pack + cond + 3 * d

    def num_parameters(self) -> int:
        """The Wan trunk's (:meth:`WanTransformer3DConfig.num_parameters`: ``Head_S2V`` is ``Head``) plus
        :meth:`s2v_parameters`."""
        return super().num_parameters() + self.s2v_parameters()

    def to_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError("WanModel_S2V is the original repository's class: nothing here builds it")


WAN22_S2V_14B = WanS2VConfig(num_attention_heads=40, ffn_dim=13824, num_layers=40)
"""Wan2.2-S2V-14B: ``wan/configs/wan_s2v_14B.py`` (the released checkpoint's ``config.json`` builds the model)."""


# --- the clip loop ---------------------------------------------------------------------------------------------------


def audio_samples(seconds: float) -> int:
    """Samples of ``seconds`` of audio at 16 kHz (``librosa.load(sr=16000)``; a resampled file has
    ``ceil(n * 16000 / rate)``: taken as ``ceil(seconds * 16000)``)."""
    return -int(-seconds * SAMPLE_RATE // 1)


def motion_latents(temporal_scale: int) -> int:
    """Latents of the 73 motion frames a clip carries over, at the VAE's ``temporal_scale`` (19 at 4)."""
    return (MOTION_FRAMES - 1) // temporal_scale + 1


def vae_encodes(frames: int, condition_encodes: int, pose_video: bool) -> tuple[tuple[int, int, bool], ...]:
    """``(frames, encodes, whole-video encode)`` of each once-per-video VAE encode of Wan2.2-S2V (``speech2video.py:
    494-514``): the reference image, the 73-frame zero motion buffer and the ``frames + 1``-frame condition video,
    ``condition_encodes`` times (-1s: once in the original, then multiplied by 0, every clip in LightX2V's
    ``build_cond_latents``; a pose video's clips, one encode each: ``load_pose_cond``). The flag: whether the code
    calls its VAE wrapper's ``encode`` (which LightX2V's parallel VAE splits over the ranks) rather than the model's
    own (LightX2V's pose condition, ``vae_encoder.model.encode``)."""
    return ((1, 1, True), (MOTION_FRAMES, 1, True), (frames + 1, condition_encodes, not pose_video))


def decoded_latents(latent_frames: int, temporal_scale: int, motion: bool) -> int:
    """Latent frames one clip's decode reads (``speech2video.py:648-653``): the first clip's reference latent and
    its own ``latent_frames``, a later clip's motion latents and its own."""
    return (motion_latents(temporal_scale) if motion else 1) + latent_frames


def clips(audio: Wav2Vec2Config, samples: int, infer_frames: int) -> int:
    """Clips S2V makes for ``samples`` of audio (``get_audio_embed_bucket_fps``, ``audio_encoder.py:141-152``):
    wav2vec2's ``T50`` frames interpolated to ``int(T50 / 50 * 30)`` at 30 a second, then ``int(T30 /
    (infer_frames * 30 / 16)) + 1`` clips (the last partly padded with silence; ``--num_clip`` can only lower it)."""
    t50 = audio.frames(samples)[-1]
    t30 = int(t50 / float(WAV2VEC2_FPS) * AUDIO_FPS)
    return int(t30 / (infer_frames * (AUDIO_FPS / VIDEO_FPS))) + 1


# --- geometry --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    """The tokens of one forward: ``frames`` noisy latent frames of ``per_frame`` tokens (``noisy``), the
    reference frame's ``per_frame``, the frame pack's ``packed`` (made every call) of which ``motion`` are kept
    (none in the first clip), ``total`` in the blocks."""

    frames: int
    per_frame: int
    noisy: int
    packed: int
    motion: int
    total: int


def tokens(cfg: WanS2VConfig, shape: CallShape, motion: bool) -> Tokens:
    """The :class:`Tokens` of one forward of ``shape``'s clip (``motion``: a clip after the first, its motion
    tokens kept)."""
    h, w = shape.latent_height, shape.latent_width
    if h % 8 or w % 8:
        raise ValueError(f"latent size: {h}x{w} must be multiples of 8 (the frame pack's 8-pixel patches)")
    t, p = shape.dit_latent_frames, (h // 2) * (w // 2)
    b4 = cfg.zip_frame_buckets[2] // 4
    packed = p + (h // 4) * (w // 4) + b4 * (h // 8) * (w // 8)
    kept = packed if motion else 0
    return Tokens(t, p, t * p, packed, kept, t * p + p + kept)


# --- the walk --------------------------------------------------------------------------------------------------------


def _conv1d(rows: _Walk, module: str, batch: int, c_in: int, c_out: int, stride: int, length: int,
            src: int = F32) -> int:  # fmt: skip
    """``CausalConv1d`` (``auxi_blocks.py:121-147``) of kernel 3 on a ``(batch, c_in, length)`` input of ``src``
    bytes per element under ``autocast(float32)``: replicate padding of 2 in front, the padded input (where bf16)
    and the bf16 weight and bias cast up, the convolution. Returns its output length (the caller frees the output,
    ``batch x c_out x out`` float32)."""
    k, padded = 3, length + 2
    out = (padded - 3) // stride + 1
    x, weights = batch * c_in * padded, c_out * c_in * k + c_out
    rows(module, "replication_pad1d", "movement", batch * c_in * length * src, x * src)
    if src != F32:
        rows.cast(f"{module}.conv", x, src, F32)
    rows.cast(f"{module}.conv", c_out * c_in * k, BF16, F32)  # the weight, then the bias
    rows.cast(f"{module}.conv", c_out, BF16, F32)
    rows(f"{module}.conv", "convolution", "conv", (x + weights) * F32, batch * c_out * out * F32,
         ops.conv(batch, c_in, c_out, (k,), (out,)), dims=conv_dims(batch, c_in, c_out, (k,), (out,)))  # fmt: skip
    rows.free(x * src + (x * F32 if src != F32 else 0) + weights * F32)  # the padded input (and its cast), the weights
    return out


def _norm_silu(rows: _Walk, module: str, n: int, c: int) -> None:
    """A float32 ``LayerNorm`` (no affine) over ``c`` of ``n`` rows (read through a permuted view), then SiLU;
    frees the norm's output, keeps the SiLU's."""
    x = n * c * F32
    rows.layer_norm(module, n, c)
    rows(module.rsplit(".", 1)[0] + ".act", "silu", "elementwise", x, x)
    rows.free(x)


def _audio_encoder(rows: _Walk, cfg: WanS2VConfig, frames: int) -> tuple[int, int]:
    """``casual_audio_encoder`` on one clip's audio features (``model_s2v.py:683-687``: 73 copies of the first
    feature frame in front; ``audio_utils.py:34-44``, ``auxi_blocks.py:199-242``), everything float32. Returns
    the bytes it leaves allocated that die with the forward (its global output and the joined input; its local
    output lives on in the module's ``merged_audio_emb``) and the audio token frames
    ``ceil((73 + frames) / 4)``."""
    d, a, n_tok, layers = cfg.inner_dim, cfg.audio_dim, cfg.num_audio_token, cfg.audio_layers
    m = "casual_audio_encoder"
    length = cfg.motion_frames + frames
    first, joined = layers * a * cfg.motion_frames * BF16, layers * a * length * BF16
    rows("", "repeat", "movement", layers * a * BF16, first)
    rows("", "cat", "movement", joined, joined)
    rows.free(first)
    feats = layers * a * length * BF16  # the elementwise weighting runs in bf16 (autocast casts only matmuls and convs)
    rows(f"{m}.act", "silu", "elementwise", layers * BF16, layers * BF16)
    rows(m, "sum", "reduction", layers * BF16, BF16)
    rows(m, "mul", "elementwise", joined + layers * BF16, feats)
    rows(m, "div", "elementwise", feats + BF16, feats)
    rows.free(feats)
    weighted = a * length * BF16
    rows(m, "sum", "reduction", feats, weighted)
    rows.free(feats + layers * BF16 + BF16)
    e = f"{m}.encoder"
    rows(e, "clone", "movement", weighted, weighted)  # x_ori = x.clone()
    # local: one conv to n_tok heads of d/4 channels, each head through conv2 and conv3
    quarter = d // 4
    out1 = _conv1d(rows, f"{e}.conv1_local", 1, a, quarter * n_tok, 1, length, BF16)
    _norm_silu(rows, f"{e}.norm1", n_tok * out1, quarter)
    rows.free(n_tok * quarter * out1 * F32)  # the conv's output
    out2 = _conv1d(rows, f"{e}.conv2", n_tok, quarter, d // 2, 2, out1)
    rows.free(n_tok * quarter * out1 * F32)
    _norm_silu(rows, f"{e}.norm2", n_tok * out2, d // 2)
    rows.free(n_tok * d // 2 * out2 * F32)
    out3 = _conv1d(rows, f"{e}.conv3", n_tok, d // 2, d, 2, out2)
    rows.free(n_tok * d // 2 * out2 * F32)
    _norm_silu(rows, f"{e}.norm3", n_tok * out3, d)
    rows.free(n_tok * d * out3 * F32)
    pad = out3 * d * BF16
    rows(e, "repeat", "movement", d * BF16, pad)  # padding_tokens.repeat(b, t, 1, 1): a bf16 parameter
    local = out3 * (n_tok + 1) * d * F32
    rows(e, "cat", "movement", n_tok * out3 * d * F32 + pad, local)  # promoted to float32
    rows.free(pad + n_tok * out3 * d * F32)
    rows(e, "clone", "movement", local, local)  # x_local = x.clone()
    rows.free(local)
    # global: the unsplit input through conv1_global, the shared conv2 and conv3, final_linear
    g1 = _conv1d(rows, f"{e}.conv1_global", 1, a, quarter, 1, length, BF16)
    _norm_silu(rows, f"{e}.norm1", g1, quarter)
    rows.free(quarter * g1 * F32 + 2 * weighted)  # the conv's output; x_ori and the weighted features, dropped
    g2 = _conv1d(rows, f"{e}.conv2", 1, quarter, d // 2, 2, g1)
    rows.free(quarter * g1 * F32)
    _norm_silu(rows, f"{e}.norm2", g2, d // 2)
    rows.free(d // 2 * g2 * F32)
    g3 = _conv1d(rows, f"{e}.conv3", 1, d // 2, d, 2, g2)
    rows.free(d // 2 * g2 * F32)
    _norm_silu(rows, f"{e}.norm3", g3, d)
    rows.free(d * g3 * F32)
    _wan_f32_linear(rows, f"{e}.final_linear", g3, d, d, BF16)
    rows.free(d * g3 * F32)
    return joined + g3 * d * F32, out3


def _conv_embed(rows: _Walk, module: str, c_in: int, d: int, kernel: tuple[int, int, int], out: tuple[int, int, int],
                src: int) -> int:  # fmt: skip
    """A patchifying ``Conv3d`` (kernel = stride) of one sample under ``autocast(bfloat16)`` with bf16 weights: a
    float32 input (``src``) cast first (freed after). Returns the bytes of its bf16 output, allocated."""
    positions = prod(out)
    x = c_in * positions * prod(kernel)
    if src == F32:
        rows.cast(module, x, F32, BF16)
    read = (x + d * c_in * prod(kernel) + d) * BF16
    rows(module, "convolution", "conv", read, positions * d * BF16, ops.conv3d(1, c_in, d, kernel, out),
         dims=conv_dims(1, c_in, d, kernel, out))  # fmt: skip
    if src == F32:
        rows.free(x * BF16)
    return positions * d * BF16


def _frame_pack(rows: _Walk, cfg: WanS2VConfig, h: int, w: int, tok: Tokens) -> None:
    """``FramePackMotioner.forward`` (``motioner.py:679-762``) on the float32 motion latents: the zero buffer made
    on the host and copied in, the latents copied into it, the three patchifying convs, their tokens joined and
    their rotary table precomputed (a float64 copy filled from the host). Leaves the tokens (bf16) and their
    table (complex128)."""
    d, c, frames = cfg.inner_dim, cfg.cond_dim, cfg.motion_latent_frames
    buffer = c * frames * h * w * F32
    rows("frame_packer", "zeros", "factory", 0, buffer)  # made on the host and copied in: taken as made here
    rows("frame_packer", "copy_", "movement", 2 * buffer, buffer, out=0)
    b1, b2, b4 = cfg.zip_frame_buckets
    made = 0
    for name, k, t in (("proj", (1, 2, 2), b1), ("proj_2x", (2, 4, 4), b2), ("proj_4x", (4, 8, 8), b4)):
        made += _conv_embed(rows, f"frame_packer.{name}", c, d, k, (t // k[0], h // k[1], w // k[2]), F32)
    rows("frame_packer", "cat", "movement", made, tok.packed * d * BF16)
    rows.free(made + buffer)
    rows("frame_packer", "_to_copy", "movement", tok.packed * d * BF16, tok.packed * d * F64)  # rope_precompute
    for n in (tok.per_frame, (h // 4) * (w // 4), b4 // 4 * (h // 8) * (w // 8)):  # post, 2x, 4x
        rows("frame_packer", "copy_", "movement", 2 * n * d * F64, n * d * F64, out=0)  # a grid's rows copied in


def _injection(rows: _Walk, cfg: WanS2VConfig, tok: Tokens, j: int) -> None:
    """``after_transformer_block`` (``model_s2v.py:601-648``) after block ``audio_inject_layers[j]``: the noisy tokens
    copied out, the AdaLN of the audio's global vector per latent frame (diffusers' ``AdaLayerNorm``, chunk_dim 1),
    ``AudioCrossAttention`` (``WanCrossAttention``: q, k, v, o, RMS-normed q and k) of each frame's tokens to its 5
    audio tokens under ``flash_attention`` with ``k_lens``, the result added into the stream's noisy tokens."""
    d, heads, hd = cfg.inner_dim, cfg.num_attention_heads, cfg.attention_head_dim
    t, p, n = tok.frames, tok.per_frame, tok.noisy
    ctx = t * (cfg.num_audio_token + 1)  # audio tokens: 4 and the padding token per frame
    x = n * d * F32
    rows("", "clone", "movement", x, x)  # after_transformer_block is the model's method: its own ops are at its root
    a = f"audio_injector.injector_adain_layers.{j}"
    rows(f"{a}.silu", "silu", "elementwise", t * d * F32, t * d * F32)
    _wan_linear(rows, f"{a}.linear", t, d, 2 * d, F32, BF16)
    rows.free(t * d * F32)
    rows.layer_norm(f"{a}.norm", n, d)
    rows(a, "add", "elementwise", t * d * BF16, t * d * BF16)  # 1 + scale
    rows(a, "mul", "elementwise", x + t * d * BF16, x)
    rows.free(x + t * d * BF16)
    rows(a, "add", "elementwise", x + t * d * BF16, x)
    rows.free(x + t * 2 * d * BF16)  # the product; shift and scale
    i = f"audio_injector.injector.{j}"
    _wan_linear(rows, f"{i}.q", n, d, d, F32, BF16)
    _wan_rms_norm(rows, f"{i}.norm_q", n, d, BF16)
    rows.free(n * d * BF16)  # the projection
    _wan_linear(rows, f"{i}.k", ctx, d, d, F32, BF16)
    _wan_rms_norm(rows, f"{i}.norm_k", ctx, d, BF16)
    rows.free(ctx * d * BF16)
    _wan_linear(rows, f"{i}.v", ctx, d, d, F32, BF16)
    rows("", "ones", "factory", 0, t * I64)  # context_lens: torch.ones(T, device=...) * 5
    rows("", "mul", "elementwise", t * I64, t * I64)
    rows.free(t * I64)
    for _ in "kv":  # k_lens given: each gathered per sample
        rows(i, "cat", "movement", ctx * d * BF16, ctx * d * BF16)
    _wan_attention(rows, i, t, heads, hd, p, cfg.num_audio_token + 1, BF16, gather_kv=False, component=INJECTION)
    _wan_linear(rows, f"{i}.o", n, d, d, BF16, BF16)
    rows.free(2 * n * d * BF16 + 4 * ctx * d * BF16 + t * I64)  # the attention's output, q; k and v, each gathered
    rows("", "add", "elementwise", x + n * d * BF16, x)
    rows("", "copy_", "movement", 2 * x, x, out=0)  # into hidden_states[:, :N]
    rows.free(x + n * d * BF16 + x + x)  # the sum, the residual, the AdaLN's output, the copy


def _walk(cfg: WanS2VConfig, shape: CallShape, motion: bool, sink: Sink) -> None:
    """Every op of one ``WanModel_S2V.forward`` (``model_s2v.py:650-857``) of ``shape``'s clip (``motion``: a
    clip after the first), told to ``sink`` as the module docstring lists it."""
    rows = _Walk(sink, 1)
    tok = tokens(cfg, shape, motion)
    d, h, w = cfg.inner_dim, shape.latent_height, shape.latent_width
    n, big, z = tok.noisy, tok.noisy + tok.per_frame, cfg.in_channels
    held, _ = _audio_encoder(rows, cfg, shape.frames)
    kept = tok.frames * d * F32
    rows("", "clone", "movement", kept, kept)  # audio_emb_global[:, motion_frames[1]:].clone(), kept on the module
    # the noisy latents (bf16) and the pose condition (float32 latents) patchified, summed
    grid = (tok.frames, h // 2, w // 2)
    x = _conv_embed(rows, "patch_embedding", z, d, cfg.patch_size, grid, BF16)
    pose = _conv_embed(rows, "cond_encoder", cfg.cond_dim, d, cfg.patch_size, grid, BF16)  # `cond`: held to the end
    rows("", "add", "elementwise", 2 * x, x)
    rows.free(x)
    ref = _conv_embed(rows, "patch_embedding", z, d, cfg.patch_size, (1, h // 2, w // 2), F32)  # held in `ref`
    rows("", "cat", "movement", big * d * BF16, big * d * BF16)  # the noisy and reference tokens
    rows.free(x)
    rows("", "zeros", "factory", 0, big * I64)  # mask_input
    rows("", "fill_", "movement", tok.per_frame * I64 + I64, tok.per_frame * I64, out=0)
    rows("", "cat", "movement", big * d * BF16, big * d * BF16)  # torch.cat(x)
    rows.free(big * d * BF16)
    table = big * d * F64  # rope_precompute: a float64 copy of x filled from the host's tables, grid by grid
    rows("", "_to_copy", "movement", big * d * BF16, table)
    for part in (tok.noisy, tok.per_frame):
        rows("", "copy_", "movement", 2 * part * d * F64, part * d * F64, out=0)
    _frame_pack(rows, cfg, h, w, tok)
    length, mot = tok.total, tok.motion
    # inject_motion: joined with the kept motion tokens (none in the first clip: the pack's outputs sliced to
    # m[:, :0], views that hold them to inject_motion's return); the mask's motion tokens 2 * ones
    rows("", "cat", "movement", length * d * BF16, length * d * BF16)
    rows("", "cat", "movement", length * d * F64, length * d * F64)
    rows("", "ones", "factory", 0, mot * I64)  # made and multiplied even when empty
    rows("", "mul", "elementwise", mot * I64, mot * I64)
    rows.free(mot * I64)
    rows("", "cat", "movement", length * I64, length * I64)
    rows.free(big * d * BF16 + table + tok.packed * d * (BF16 + F64) + big * I64 + mot * I64)
    for itemsize in (d * BF16, d * F64, I64):  # torch.cat of each one-sample list, the old one dropped
        rows("", "cat", "movement", length * itemsize, length * itemsize)
        rows.free(length * itemsize)
    rows("trainable_cond_mask", "embedding", "embedding", length * I64 + 3 * d * BF16, length * d * BF16)
    rows("", "add", "elementwise", 2 * length * d * BF16, length * d * BF16)
    rows.free(2 * length * d * BF16)  # the embedding, the joined tokens (the mask lives to the forward's end)
    # the timestep and 0, embedded in float32; e0 split into the noisy tokens' and the others' tables
    rows("", "zeros", "factory", 0, I64)
    rows("", "cat", "movement", 2 * I64, 2 * I64)
    rows.free(I64)
    _wan_time_embedding(rows, cfg, 2, BF16)
    rows("", "repeat", "movement", 6 * d * F32, 6 * d * F32)
    rows("", "cat", "movement", 12 * d * F32, 12 * d * F32)
    rows.free(6 * d * F32)
    _wan_text_embedding(rows, cfg, 1, shape.text_len, BF16)
    # Ulysses (sp_attn_forward_s2v, model_s2v.py:819-851): this rank keeps its chunk of the tokens and of the table
    # (views of the whole), gathers the stream for every injection and for the head
    ranks = shape.ulysses
    if length % ranks:
        raise InputError(
            f"ulysses: {ranks} does not divide the {length:,} tokens of {'a later' if motion else 'the first'} clip "
            "(WanModel_S2V chunks them with torch.chunk, unpadded, and the all-to-all needs equal parts); valid: a "
            f"degree that divides both clips' {tok.frames + 1} and {tok.frames + 2.5:g} latent frames of tokens"
        )
    local = length // ranks
    call = replace(shape, dit_tokens=length, dit_latent_frames=tok.frames, ring=1)
    split = min(n, local)  # this rank's (rank 0's) noisy tokens

    def blocks(count: int, start: int, src: int, extra: int) -> None:
        """Blocks ``start`` on, ``count`` of them; the first one's input is a view of ``extra`` more bytes than its
        own part (a chunk of the whole), which it frees with it."""
        if count and (src == BF16 or extra):
            rows.repeat(1, f"blocks.{start}", lambda block: _wan_block(cfg, block, call, 2, src, BF16, split))
            rows.free(extra)
            start, count = start + 1, count - 1
        if count:
            rows.repeat(count, "blocks.{i}", lambda block: _wan_block(cfg, block, call, 2, F32, BF16, split),
                        start=start)  # fmt: skip

    first, src, extra = 0, BF16, (length - local) * d * BF16
    for j, last in enumerate(cfg.audio_inject_layers):  # the blocks up to each injection, alike after the first
        blocks(last - first + 1, first, src, extra)
        if ranks > 1:  # gather_forward(hidden_states, dim=1), the injection on every token, the chunk kept
            _gather_forward(rows, local * d * F32, ranks)
            _injection(rows, cfg, tok, j)
            rows.free(local * d * F32)  # the block's output, rebound by the caller
        else:
            _injection(rows, cfg, tok, j)
        first, src, extra = last + 1, F32, (length - local) * d * F32
    if first < cfg.num_layers:
        blocks(cfg.num_layers - first, first, src, extra)
        extra = 0
    if ranks > 1:  # gather_forward(x.contiguous(), dim=1): the whole stream again for the head
        _gather_forward(rows, local * d * F32, ranks)
        rows.free(local * d * F32 + extra)
    # the head on the noisy tokens (a prefix of the stream), unpatchified
    _wan_head(rows, cfg, n, d, BF16, length * d * F32)
    o = cfg.out_channels * prod(cfg.patch_size)
    rows("", "clone", "movement", n * o * F32, n * o * F32)
    rows.free(n * o * F32 + n * o * F32)
    # the forward's locals die at its return: the audio encoder's global output and joined input, the pose and
    # reference embeddings, the mask, the two timesteps, e and e0 (the blocks' table and its two segments), the
    # context; the module keeps its rotary table (self.pre_compute_freqs), the audio encoder's local output (behind
    # the view self.merged_audio_emb) and audio_emb_global's clone (kept) to the next call: :func:`s2v_held_bytes`
    rows.free(held + pose + ref + length * I64 + 2 * I64 + (2 + 12 + 12) * d * F32 + shape.text_len * d * BF16)


def s2v_rows(cfg: WanS2VConfig, shape: CallShape, motion: bool, stage: str = STAGE) -> list[OpGroup]:
    """Every op of one forward (:func:`_walk`), as ``stage``'s rows."""
    sink = Rows(stage)
    _walk(cfg, shape, motion, sink)
    return sink.out


def s2v_groups(cfg: WanS2VConfig, shape: CallShape, motion: bool, stage: str = STAGE) -> list[OpGroup]:
    """The FLOP rows of one forward: per block ``4 * 2LD^2 + 2 * 2LD^2 + 2 * 2*512*D^2 + 2 * 2L*D*ffn`` and the
    attentions ``4HL^2d + 4HL*512*d``; per injection ``2 * 2ND^2 + 2 * 2*5T*D^2 + 2T*D*2D`` and ``4H*N*5*d``; the
    causal audio encoder's convolutions and ``final_linear``; the patch, pose, reference and frame-pack convolutions;
    the time and text embedders; the head on ``N`` tokens."""
    return [g for g in s2v_rows(cfg, shape, motion, stage) if g.flops_per_call]


def s2v_terms(cfg: WanS2VConfig, shape: CallShape, motion: bool) -> tuple[Term, ...]:
    """:func:`hybrid.timing.roofline_terms` of :func:`s2v_rows`, from the same walk."""
    sink = TermSink()
    _walk(cfg, shape, motion, sink)
    return sink.freeze()


def s2v_peak_bytes(cfg: WanS2VConfig, shape: CallShape, motion: bool, materialized: bool = False) -> int:
    """The activation peak of one forward, fused or (``materialized``) with PyTorch's math attention."""
    return _peaks(cfg, shape, motion)[materialized]


def s2v_held_bytes(cfg: WanS2VConfig, shape: CallShape, motion: bool) -> int:
    """Bytes one forward leaves on the GPU after it returns, kept on the module to its next call (``self.<name> =
    ...`` in ``model_s2v.py``): the complex128 rotary table of every token (``pre_compute_freqs``, 8 bytes per token
    per channel: 3.0 GB at 1280x704), the audio encoder's local output and the global one's clone. ``offload_model``
    moves parameters and buffers, not these: later stages run beside them."""
    return _peaks(cfg, shape, motion)[2]


@lru_cache(maxsize=256)
def _peaks(cfg: WanS2VConfig, shape: CallShape, motion: bool) -> tuple[int, int, int]:
    sink = Peak()
    _walk(cfg, shape, motion, sink)
    return sink.fused, sink.materialized, sink.live


@on_clear
def clear_memos() -> None:
    """Forget the peak walks."""
    _peaks.cache_clear()


def component(module: str, op: str) -> str:
    """The report component of an S2V transformer row."""
    if module.startswith("audio_injector"):
        return INJECTION if op == SDPA else "audio_injection_projections"
    if module.startswith("casual_audio_encoder"):
        return "audio_encoder"
    if ".attn1" in module:
        return "self_attention_core" if op == SDPA else "self_attention_projections"
    if ".attn2" in module:
        return "cross_attention_core" if op == SDPA else "cross_attention_projections"
    if ".ffn." in module:
        return "ffn"
    if module.startswith(("proj_out", "norm_out")):
        return "output_head"
    if module.startswith("frame_packer"):
        return "motion_embedding"
    return "embedders"
