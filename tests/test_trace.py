"""The tracer against FlopCounterMode, across devices and dispatch paths, with exact row values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from hybrid.presets import ModelSpec
from hybrid.rows import CostRow
from hybrid.trace import trace, trace_stage
from hybrid.trace.build import stage_call
from hybrid.trace.mode import SDPA_OP, CanonicalFunctionMode, CostMode, ModuleStack
from hybrid.trace.reference import flop_counter_total
from hybrid.workload import Workload
from tests.conftest import FULL_AND_SMALL, STAGES, stage_params, traced_preset


def _sorted(rows: tuple[CostRow, ...]) -> list[CostRow]:
    return sorted(rows, key=lambda r: (r.module, r.op, r.input_shapes, r.output_shape))


@pytest.mark.parametrize(("workload", "stage"), stage_params(FULL_AND_SMALL))
def test_full_configs_on_meta_equal_flop_counter(workload: Workload, stage: str) -> None:
    ours = traced_preset(stage, workload)
    reference = flop_counter_total(stage_call(stage, workload))
    assert ours.flops == reference
    assert ours.flops > 0
    assert ours.unsupported_ops == {}


def test_14b_default_rows_exact() -> None:
    result = trace(Workload.of())
    dit = {(r.module, r.op): r for r in result.stages["diffusion_core"].rows}
    # tokens 21*45*80 = 75600, D = 5120: 2*75600*5120*5120
    assert dit[("blocks.0.attn1.to_q", "aten.addmm")].flops == 3_963_617_280_000
    # self-attention 4*40*75600^2*128; cross-attention over 512 text keys 4*40*75600*512*128
    assert dit[("blocks.0.attn1", SDPA_OP)].flops == 117_050_572_800_000
    assert dit[("blocks.0.attn2", SDPA_OP)].flops == 792_723_456_000
    # cross-attention K/V project the 512 text tokens: 2*512*5120*5120
    assert dit[("blocks.39.attn2.to_k", "aten.addmm")].flops == 26_843_545_600
    # patch embedding: 2 * 5120 * 16 * (1*2*2) * 21*45*80 = 49_545_216_000
    assert dit[("patch_embedding", "aten.convolution")].flops == 49_545_216_000
    sdpa_calls = sum(r.calls for r in result.stages["diffusion_core"].rows if r.op == SDPA_OP)
    assert sdpa_calls == 80  # 40 blocks x (self + cross)

    te = {(r.module, r.op): r for r in result.stages["text_encoder"].rows}
    # 2*512*4096*4096 per q projection (bias-free: mm)
    assert te[("encoder.block.0.layer.0.SelfAttention.q", "aten.mm")].flops == 17_179_869_184
    # 4 * 64 heads * 512 * 512 * 64
    assert te[("encoder.block.23.layer.0.SelfAttention", SDPA_OP)].flops == 4_294_967_296

    vae = [r for r in result.stages["vae_decode"].rows if r.module == "decoder.conv_in"]
    conv = [r for r in vae if r.op == "aten.convolution"]
    # one call per latent frame (21), each 2*384*16*27*(1*90*160) = 4_777_574_400
    assert sum(r.calls for r in conv) == 21
    assert sum(r.flops for r in conv) == 21 * 4_777_574_400
    attn = [r for r in result.stages["vae_decode"].rows if r.op == SDPA_OP]
    # mid-block attention per frame over 90*160 = 14400 pixels, one head of 384: 4*14400^2*384
    assert sum(r.calls for r in attn) == 21
    assert sum(r.flops for r in attn) == 21 * 4 * 14400**2 * 384
    assert result.unsupported_ops == {}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("stage", STAGES)
def test_tiny_meta_and_cpu_rows_identical(
    tiny_spec: ModelSpec, tiny_workload: Workload, stage: str, dtype: str
) -> None:
    meta = trace_stage(stage, tiny_workload, device="meta", dtype=dtype)
    cpu = trace_stage(stage, tiny_workload, device="cpu", dtype=dtype)
    assert _sorted(meta.rows) == _sorted(cpu.rows)
    assert any(r.op == SDPA_OP and r.flops > 0 for r in cpu.rows)
    assert meta.unsupported_ops == cpu.unsupported_ops == {}


@pytest.mark.parametrize("stage", STAGES)
def test_flop_counter_misses_fused_cpu_attention(tiny_spec: ModelSpec, tiny_workload: Workload, stage: str) -> None:
    ours = trace_stage(stage, tiny_workload, device="cpu", dtype="float32")
    attention = sum(r.flops for r in ours.rows if r.op == SDPA_OP)
    on_cpu = flop_counter_total(stage_call(stage, tiny_workload, device="cpu", dtype="float32"))
    on_meta = flop_counter_total(stage_call(stage, tiny_workload, device="meta", dtype="float32"))
    assert attention > 0
    assert on_meta == ours.flops
    # torch 2.13: _scaled_dot_product_flash_attention_for_cpu is not in FlopCounterMode's registry
    assert on_cpu == ours.flops - attention


def _record(fn: object) -> CostMode:
    root = torch.nn.Module()
    with ModuleStack(root) as modules:
        cost = CostMode("diffusion_core", modules)
        with torch.no_grad(), cost, CanonicalFunctionMode(cost):
            fn()  # type: ignore[operator]
    return cost


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_sdpa_counted_once_per_call(device: str) -> None:
    q = torch.randn(2, 3, 5, 8, device=device)
    k = torch.randn(2, 3, 7, 8, device=device)
    cost = _record(lambda: F.scaled_dot_product_attention(q, k, k))
    rows = cost.rows()
    # 4 * 2*3 * 5 * 7 * 8 = 6720; nothing else in the row set carries FLOPs
    assert [(r.op, r.flops, r.calls) for r in rows if r.flops] == [(SDPA_OP, 6720, 1)]


def test_fused_cpu_kernel_called_directly_is_costed() -> None:
    q = torch.randn(1, 2, 4, 8)
    cost = _record(lambda: torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, q, q))
    # 4 * 1*2 * 4 * 4 * 8 = 1024, under the one attention name whatever the kernel
    assert [(r.op, r.flops) for r in cost.rows() if r.flops] == [(SDPA_OP, 1024)]


def test_decomposed_attention_counts_the_same(tiny_spec: ModelSpec, tiny_workload: Workload) -> None:
    call = stage_call("text_encoder", tiny_workload, device="cpu", dtype="float32")
    call.module.set_attn_implementation("eager")  # matmul + softmax instead of SDPA
    with ModuleStack(call.module) as modules:
        cost = CostMode("text_encoder", modules)
        with torch.no_grad(), cost, CanonicalFunctionMode(cost):
            call.run()
    eager = cost.rows()
    fused = trace_stage("text_encoder", tiny_workload, device="cpu", dtype="float32").rows
    assert sum(r.flops for r in eager) == sum(r.flops for r in fused)
    assert not any(r.op == SDPA_OP for r in eager)
    assert sum(r.flops for r in eager if r.op == "aten.bmm") == sum(r.flops for r in fused if r.op == SDPA_OP)


def test_unknown_op_is_reported_not_zeroed() -> None:
    x = torch.randn(4, 4, device="meta")
    cost = _record(lambda: torch.cumsum(x, 0))
    assert cost.unsupported == {"aten.cumsum": 1}
    assert not any(r.op == "aten.cumsum" for r in cost.rows())


def test_wan_animates_own_ops_are_costed_with_zero_flops() -> None:
    # Wan-Animate's motion and face encoders: FusedLeakyReLU, QR of the motion weight, diag_embed, replicate padding
    x = torch.randn(2, 3, 5, device="meta")  # 30 float32 values: 120 bytes
    w = torch.randn(6, 4, device="meta")
    v = torch.randn(2, 4, device="meta")
    cost = _record(
        lambda: (F.leaky_relu(x, 0.2), torch.linalg.qr(w), torch.diag_embed(v), F.pad(x, (2, 0), mode="replicate"))
    )
    assert cost.unsupported == {}
    by_op = {r.op: (r.category, r.flops, r.bytes_read, r.bytes_written) for r in cost.rows()}
    assert by_op["aten.leaky_relu"] == ("elementwise", 0, 120, 120)
    assert by_op["aten.linalg_qr"] == ("linalg", 0, 6 * 4 * 4, (6 * 4 + 4 * 4) * 4)  # Q (6, 4) and R (4, 4)
    assert by_op["aten.diag_embed"] == ("movement", 0, 8 * 4, 2 * 4 * 4 * 4)  # (2, 4) -> (2, 4, 4)
    assert by_op["aten.replication_pad1d"] == ("movement", 0, 120, 2 * 3 * 7 * 4)  # two frames in front


def test_views_cost_nothing_and_copies_cost_bytes() -> None:
    x = torch.randn(4, 6, device="meta")
    cost = _record(lambda: x.t().contiguous())
    by_op = {r.op: r for r in cost.rows()}
    assert (by_op["aten.t"].bytes_read, by_op["aten.t"].bytes_written) == (0, 0)
    # clone of 24 float32 values: 96 bytes in, 96 out
    assert (by_op["aten.clone"].bytes_read, by_op["aten.clone"].bytes_written) == (96, 96)


@pytest.mark.parametrize("stage", STAGES)
def test_inference_mode_changes_nothing(tiny_spec: ModelSpec, tiny_workload: Workload, stage: str) -> None:
    # DEVELOPERS.md (pytorch/pytorch#126268) says FlopCounterMode counts nothing under
    # inference_mode; the installed torch counts the same as under no_grad (the code wins: this test
    # records it). Under inference_mode composite ops (linear, layer_norm, dropout) reach dispatch
    # modes whole; our tracer decomposes them so a caller's inference_mode yields the same rows.
    call = stage_call(stage, tiny_workload, device="meta", dtype="float32")
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        call.run()
    plain = trace_stage(stage, tiny_workload)
    with torch.inference_mode():
        inside = trace_stage(stage, tiny_workload)
    assert counter.get_total_flops() == plain.flops == inside.flops > 0
    assert _sorted(plain.rows) == _sorted(inside.rows)


def test_result_frame_and_json(tiny_spec: ModelSpec, tiny_workload: Workload) -> None:
    result = trace(tiny_workload)
    frame = result.to_frame()
    assert len(frame) == len(result.rows)
    assert list(frame.columns[:5]) == ["stage", "module", "op", "category", "flops"]
    assert sum(frame["flops"]) == sum(st.flops for st in result.stages.values())
    doc = result.to_dict()
    assert doc["schema"] == "wanmeter.trace/1"
    assert set(doc["stages"]) == set(STAGES)
    assert doc["stages"]["diffusion_core"]["calls"] == 100  # 50 steps x 2 (CFG)
    assert [CostRow.from_dict(r) for r in doc["stages"]["vae_decode"]["rows"]] == list(result.stages["vae_decode"].rows)


def test_bad_stage_is_refused(tiny_workload: Workload) -> None:
    with pytest.raises(ValueError, match="stage: unknown stage 'decoder'"):
        trace(tiny_workload, stages=["decoder"])
