"""wav2vec 2.0 (transformers ``Wav2Vec2ForCTC``), Wan2.2-S2V's audio encoder: parameters against the built module,
the walk against a meta trace row for row and in both activation peaks."""

from __future__ import annotations

import logging

import pytest
import torch

from hybrid.models.wav2vec2 import (
    WAV2VEC2_XLSR_53,
    Wav2Vec2Config,
    component,
    wav2vec2_peak_bytes,
    wav2vec2_rows,
    wav2vec2_terms,
)
from hybrid.rows import aggregate_costs, expand
from hybrid.timing import roofline_terms
from hybrid.trace.mode import CanonicalFunctionMode, CostMode, ModuleStack

TINY = Wav2Vec2Config(
    hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2, conv_dim=(16, 16, 16),
    conv_kernel=(10, 3, 2), conv_stride=(5, 2, 2), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
)  # fmt: skip


def _built(cfg: Wav2Vec2Config) -> torch.nn.Module:
    from transformers import Wav2Vec2Config as HFConfig
    from transformers import Wav2Vec2ForCTC

    logging.disable(logging.WARNING)
    try:
        with torch.device("meta"):
            return Wav2Vec2ForCTC(HFConfig(**cfg.to_kwargs())).eval()
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("cfg", [WAV2VEC2_XLSR_53, TINY], ids=["xlsr-53", "tiny"])
def test_parameters_equal_the_built_module(cfg: Wav2Vec2Config) -> None:
    assert cfg.num_parameters() == sum(p.numel() for p in _built(cfg).parameters())


def test_the_xlsr_53_encoder_in_numbers() -> None:
    assert WAV2VEC2_XLSR_53.num_parameters() == 315_472_545
    # 320 samples a frame after a 400-sample field: 10 s at 16 kHz is (160,000 - 400) // 320 + 1 = 499 frames
    assert WAV2VEC2_XLSR_53.frames(160_000)[-1] == 499 and WAV2VEC2_XLSR_53.frames(160_000)[0] == 31_999
    # one frame from 10 + 2*5 + 2*10 + 2*20 + 2*40 + 1*80 + 1*160 = 400 samples, none from 399
    assert WAV2VEC2_XLSR_53.receptive_field() == 400
    assert (WAV2VEC2_XLSR_53.frames(399)[-1], WAV2VEC2_XLSR_53.frames(400)[-1]) == (0, 1)
    assert TINY.frames(TINY.receptive_field())[-1] == 1 and TINY.frames(TINY.receptive_field() - 1)[-1] == 0


def _traced(cfg: Wav2Vec2Config, batch: int, samples: int) -> CostMode:
    module = _built(cfg)
    x = torch.empty(batch, samples, device="meta")
    with ModuleStack(module) as modules:
        cost = CostMode("audio_encoder", modules)
        with torch.no_grad(), cost, CanonicalFunctionMode(cost):
            module(x, output_hidden_states=True)
    return cost


@pytest.mark.parametrize(
    ("cfg", "batch", "samples"),
    [(TINY, 1, 16_000), (TINY, 2, 3_333), (WAV2VEC2_XLSR_53, 1, 48_000), (WAV2VEC2_XLSR_53, 1, 160_000)],
    ids=["tiny-1s", "tiny-batch-2", "xlsr-3s", "xlsr-10s"],
)
def test_the_walk_equals_a_meta_trace_row_for_row_and_in_its_peaks(cfg: Wav2Vec2Config, batch: int,
                                                                    samples: int) -> None:  # fmt: skip
    cost = _traced(cfg, batch, samples)
    assert cost.unsupported == {}
    rows = wav2vec2_rows(cfg, batch, samples)
    assert aggregate_costs(expand(rows)) == aggregate_costs(cost.rows())
    assert wav2vec2_peak_bytes(cfg, batch, samples) == cost.peak_live_bytes
    assert wav2vec2_peak_bytes(cfg, batch, samples, True) == cost.peak_live_bytes_materialized
    assert wav2vec2_terms(cfg, batch, samples) == roofline_terms(rows)
    assert {component(r.module, r.op) for r in cost.rows() if r.flops} == {
        "feature_convs", "embedders", "attention_projections", "attention_core", "ffn", "output_head",
    }  # fmt: skip
