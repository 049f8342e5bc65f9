"""Memory: exact weights by dtype, traced activation peaks, pipeline peak with and without offload."""

from __future__ import annotations

import pytest
import torch

from hybrid.memory import pipeline_memory, weights_bytes
from hybrid.presets import ModelSpec, get_preset
from hybrid.runtime import Runtime
from hybrid.trace import trace_stage
from hybrid.trace.mode import CanonicalFunctionMode, CostMode, ModuleStack, math_attention_peak_bytes
from hybrid.workload import Workload
from tests.conftest import STAGES


def test_weights_bytes_by_dtype() -> None:
    spec = get_preset("wan2.1-t2v-14b")
    # 14_288_491_584 parameters: bf16 x2, fp8 x1, fp32 x4
    assert weights_bytes(spec, "transformer") == 28_576_983_168
    assert weights_bytes(spec, "transformer", "float8") == 14_288_491_584
    assert weights_bytes(spec, "transformer", "float32") == 57_153_966_336
    # UMT5-XXL 5_680_910_336 x 2; whole VAE 126_892_531 x 4 (float32)
    assert weights_bytes(spec, "text_encoder") == 11_361_820_672
    assert weights_bytes(spec, "vae") == 507_570_124
    with pytest.raises(ValueError, match="dtype: unknown dtype 'int3'"):
        weights_bytes(spec, "vae", "int3")
    with pytest.raises(ValueError, match=r"component: wan2\.1-t2v-14b has no .image_encoder."):
        weights_bytes(spec, "image_encoder")


def test_live_tracking_is_exact_on_a_known_sequence() -> None:
    x = torch.empty(1000, 1000, device="meta")
    root = torch.nn.Module()
    with ModuleStack(root) as modules:
        cost = CostMode("diffusion_core", modules)
        with torch.no_grad(), cost, CanonicalFunctionMode(cost):
            y = x * 2  # 4 MB live
            z = y + 1  # 8 MB live: the peak
            del y
            w = z.view(-1) * 3  # a view costs nothing; z and w: 8 MB
            del z, w
    assert cost.peak_live_bytes == 8_000_000
    assert cost.live_bytes == 0


def test_live_bytes_follow_storages_not_tensors() -> None:
    # mm then _unsafe_view (what linear does on 3-D input) drops the mm tensor at once; its 4 MB
    # storage lives on in the reshaped tensor and must stay counted
    a = torch.empty(1000, 1000, device="meta")
    root = torch.nn.Module()
    with ModuleStack(root) as modules:
        cost = CostMode("diffusion_core", modules)
        with torch.no_grad(), cost, CanonicalFunctionMode(cost):
            y = torch.nn.functional.linear(a.view(1, 1000, 1000), a)  # 4 MB: mm, then reshaped
            z = y + 1  # 8 MB live: the peak
            del y, z
    assert cost.peak_live_bytes == 8_000_000
    assert cost.live_bytes == 0


def test_math_attention_peak_bytes() -> None:
    q = torch.empty(1, 2, 8, 4, dtype=torch.bfloat16, device="meta")
    k = torch.empty(1, 2, 16, 4, dtype=torch.bfloat16, device="meta")
    # PyTorch's math attention upcasts bf16 to float32 (4 bytes) and peaks during the softmax:
    # 2 heads x 4 bytes x (q 8x4 + k 16x4 + v 16x4 + scaled q 8x4 + scores 8x16 + softmax 8x16)
    # = 8 x (32 + 64 + 64 + 32 + 128 + 128) = 3584
    assert math_attention_peak_bytes((q, k, k), {}) == 3584


def test_materialised_scores_peak_of_the_14b_dit() -> None:
    spec = get_preset("wan2.1-t2v-14b")
    st = trace_stage("diffusion_core", Workload.of(spec))
    # fused attention: 8,598,435,840 bytes (8.0 GiB), reached in blocks.0
    assert st.peak_activation_bytes == 8_598_435_840
    # materialised scores: float32 scores and softmax of 40 heads x 75600 x 75600 alone are
    # 2 x 4 x 40 x 75600^2 = 1,828,915,200,000 bytes; q/k/v copies and the live set come on top
    scores = 2 * 4 * 40 * 75600**2
    assert st.peak_module_materialized == "blocks.0.attn1"
    assert scores < st.peak_activation_bytes_materialized < scores + 2 * st.peak_activation_bytes


@pytest.mark.parametrize("stage", STAGES)
def test_activation_peak_is_device_independent(tiny_spec: ModelSpec, tiny_workload: Workload, stage: str) -> None:
    meta = trace_stage(stage, tiny_workload, device="meta", dtype="float32")
    cpu = trace_stage(stage, tiny_workload, device="cpu", dtype="float32")
    assert meta.peak_activation_bytes == cpu.peak_activation_bytes > 0
    assert meta.peak_activation_bytes_materialized == cpu.peak_activation_bytes_materialized
    assert meta.peak_activation_bytes_materialized >= meta.peak_activation_bytes


def test_dit_peak_scales_with_tokens_and_excludes_scores() -> None:
    spec = get_preset("wan2.1-t2v-1.3b")
    small = trace_stage("diffusion_core", Workload.of(spec, frames=17))
    full = trace_stage("diffusion_core", Workload.of(spec))
    # 7800 vs 32760 tokens: the working set grows with the tokens (ratio 4.2)...
    assert 4.0 < full.peak_activation_bytes / small.peak_activation_bytes < 4.4
    # ...and stays far below one materialised score matrix: 12 heads x 32760^2 x 2 bytes = 25.8 GB
    assert full.peak_activation_bytes < 12 * 32760**2 * 2 / 10


def test_pipeline_peak_with_and_without_offload() -> None:
    spec = get_preset("wan2.1-t2v-14b")
    act = {"text_encoder": 80 * 2**20, "diffusion_core": 8 * 2**30, "vae_decode": 17 * 2**30}
    resident = pipeline_memory(spec, act)
    offloaded = pipeline_memory(spec, act, Runtime(offload=True))
    all_weights = 11_361_820_672 + 28_576_983_168 + 507_570_124
    assert resident.stage_peak_bytes("vae_decode") == all_weights + 17 * 2**30
    assert resident.peak_bytes == all_weights + 17 * 2**30
    assert offloaded.stage_peak_bytes("diffusion_core") == 28_576_983_168 + 8 * 2**30
    assert offloaded.peak_bytes == 28_576_983_168 + 8 * 2**30  # the DiT stage dominates once offloaded


def test_original_wan_runtime_weights_and_placement() -> None:
    spec = get_preset("wan2.1-t2v-14b")
    act = {"text_encoder": 80 * 2**20, "diffusion_core": 8 * 2**30, "vae_decode": 17 * 2**30}
    # the original repository keeps the DiT in float32: 14,288,491,584 parameters x 4 bytes
    wan = pipeline_memory(spec, act, Runtime("wan"))
    assert wan.weights_bytes == {"text_encoder": 11_361_820_672, "transformer": 57_153_966_336, "vae": 507_570_124}
    assert wan.resident == ("text_encoder", "transformer", "vae")  # loaded once, kept (no offload)
    # --offload: the VAE stays (Wan2_1_VAE is built on the device), the others move for their stage
    off = pipeline_memory(spec, act, Runtime("wan", offload=True))
    assert off.resident == ("vae",)
    assert off.stage_peak_bytes("diffusion_core") == 57_153_966_336 + 507_570_124 + 8 * 2**30
    # --t5-cpu: the text encoder takes no GPU memory, its activations stay on the host
    host = pipeline_memory(spec, act, Runtime("wan", offload=True, t5_cpu=True))
    assert host.on_host == ("text_encoder",) and host.stage_peak_bytes("text_encoder") == 507_570_124
