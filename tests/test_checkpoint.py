"""Local Diffusers folders: configs override presets, parameter counts from safetensors headers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from hybrid.checkpoint import CheckpointError, load_model_dir, resolve_model, safetensors_parameters
from hybrid.presets import get_preset


def _write_folder(root: Path, transformer: dict[str, object] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    for sub, cfg in (
        (
            "transformer",
            transformer
            or {
                "_class_name": "WanTransformer3DModel",
                "num_attention_heads": 12,
                "ffn_dim": 8960,
                "num_layers": 30,
                "patch_size": [1, 2, 2],
            },
        ),
        ("vae", {"_class_name": "AutoencoderKLWan", "base_dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4]}),
        ("text_encoder", {"architectures": ["UMT5EncoderModel"], "d_model": 4096, "num_heads": 64}),
    ):
        (root / sub).mkdir(exist_ok=True)
        (root / sub / "config.json").write_text(json.dumps(cfg))
    return root


def test_configs_override_preset_and_name_matches(tmp_path: Path) -> None:
    spec = load_model_dir(_write_folder(tmp_path / "ckpt"), "wan2.1-t2v-14b")
    assert spec.transformer == get_preset("wan2.1-t2v-1.3b").transformer
    assert spec.name == "wan2.1-t2v-1.3b"  # the folder's configs are exactly that preset's
    assert spec.warnings == ()
    assert spec.source == str(tmp_path / "ckpt")


def test_unknown_configs_get_a_local_name(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "mine", {"num_attention_heads": 8, "num_layers": 2})
    spec = load_model_dir(root, "wan2.1-t2v-14b")
    assert spec.name == "local:mine"
    # 40-head preset values are replaced field by field; ffn_dim stays the 14B one
    assert (spec.transformer.num_attention_heads, spec.transformer.num_layers, spec.transformer.ffn_dim) == (
        8,
        2,
        13824,
    )


def test_safetensors_headers_give_parameter_counts(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "ckpt")
    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5)}, str(root / "transformer" / "m-00001-of-00002.safetensors"))
    save_file({"c": torch.zeros(2, 2, 2)}, str(root / "transformer" / "m-00002-of-00002.safetensors"))
    save_file({"w": torch.zeros(7, dtype=torch.bfloat16)}, str(root / "vae" / "diffusion_pytorch_model.safetensors"))
    spec = load_model_dir(root, "wan2.1-t2v-14b")
    # 3*4 + 5 + 2*2*2 = 25; vae 7
    assert dict(spec.checkpoint_parameters) == {"transformer": 25, "vae": 7}


def test_missing_folder_falls_back_with_warning(tmp_path: Path) -> None:
    spec = resolve_model("wan2.1-t2v-14b", tmp_path / "nope")
    assert spec.transformer == get_preset("wan2.1-t2v-14b").transformer
    assert len(spec.warnings) == 1
    assert "not found: using the wan2.1-t2v-14b preset" in spec.warnings[0]


def test_missing_file_falls_back_with_warning(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "ckpt")
    (root / "vae" / "config.json").unlink()
    spec = load_model_dir(root, "wan2.1-t2v-14b")
    assert spec.vae == get_preset("wan2.1-t2v-14b").vae
    assert [w for w in spec.warnings if "vae" in w] == [
        f"{root / 'vae' / 'config.json'} not found: using the wan2.1-t2v-14b preset's vae config"
    ]


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "ckpt")
    bad = root / "transformer" / "config.json"
    bad.write_text("{not json")
    with pytest.raises(CheckpointError, match=str(bad).replace(".", r"\.") + ": malformed JSON"):
        load_model_dir(root, "wan2.1-t2v-14b")


@pytest.mark.parametrize(
    "payload",
    [
        b"\x01\x02",
        (1000).to_bytes(8, "little") + b"{}",
        (4).to_bytes(8, "little") + b"nope",
        (2).to_bytes(8, "little") + b"[]",
    ],
)
def test_malformed_header_names_the_file(tmp_path: Path, payload: bytes) -> None:
    f = tmp_path / "x.safetensors"
    f.write_bytes(payload)
    with pytest.raises(CheckpointError, match=r"x\.safetensors: malformed safetensors header"):
        safetensors_parameters(f)


def test_an_image_to_video_transformer_needs_an_image_to_video_preset(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "i2v", {"image_dim": 1280, "added_kv_proj_dim": 5120, "in_channels": 36})
    with pytest.raises(CheckpointError, match=r"WanPipeline \(t2v\) needs no image_dim; got image_dim=1280"):
        load_model_dir(root, "wan2.1-t2v-14b")


def test_model_index_must_be_the_presets_pipeline(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "ckpt")
    (root / "model_index.json").write_text(json.dumps({"_class_name": "WanImageToVideoPipeline"}))
    with pytest.raises(CheckpointError) as e:
        load_model_dir(root, "wan2.1-t2v-14b")
    assert str(e.value) == (
        f'{root / "model_index.json"}: _class_name "WanImageToVideoPipeline" is not wan2.1-t2v-14b\'s WanPipeline; '
        "use --model wan2.1-flf2v-14b-720p or wan2.1-i2v-14b-480p or wan2.1-i2v-14b-720p"
    )


def test_a_two_expert_index_needs_a_two_expert_preset(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "a14b")
    (root / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline", "boundary_ratio": 0.875}))
    with pytest.raises(
        CheckpointError, match=r"boundary_ratio 0\.875, expand_timesteps false\) is not wan2\.1-t2v-14b's"
    ):
        load_model_dir(root, "wan2.1-t2v-14b")
    assert load_model_dir(root, "wan2.2-t2v-a14b").transformer_2 is not None


def test_image_to_video_folder_with_an_image_encoder(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "i2v", {"image_dim": 1280, "added_kv_proj_dim": 5120, "in_channels": 36})
    (root / "model_index.json").write_text(json.dumps({"_class_name": "WanImageToVideoPipeline"}))
    (root / "image_encoder").mkdir()
    clip = {"architectures": ["CLIPVisionModelWithProjection"], "hidden_size": 1280, "num_hidden_layers": 32}
    (root / "image_encoder" / "config.json").write_text(json.dumps({**clip, "dropout": 0.0, "model_type": "clip"}))
    spec = load_model_dir(root, "wan2.1-i2v-14b-720p")
    assert spec.name == "wan2.1-i2v-14b-720p" and spec.warnings == ()


@pytest.mark.parametrize(
    ("sub", "values", "message"),
    [
        ("transformer", {"num_attention_heads": "12"}, 'num_attention_heads: must be an integer >= 1, got "12"'),
        ("transformer", {"num_layers": None}, "num_layers: must be an integer >= 1, got null"),
        ("transformer", {"num_layers": -1}, "num_layers: must be an integer >= 1, got -1"),
        ("transformer", {"num_layers": 0}, "num_layers: must be an integer >= 1, got 0"),
        ("transformer", {"ffn_dim": 8960.5}, "ffn_dim: must be an integer >= 1, got 8960.5"),
        ("transformer", {"cross_attn_norm": 1}, "cross_attn_norm: must be true or false, got 1"),
        ("transformer", {"patch_size": [1, 2, 0]}, "patch_size[2]: must be an integer >= 1, got 0"),
        ("transformer", {"eps": -1e-6}, "eps: must be a finite number >= 0, got -1e-06"),
        ("transformer", {"vace_layers": [0, 2]}, "vace_layers: not modelled for WanTransformer3DConfig"),
        ("vae", {"dim_mult": "1244"}, 'dim_mult: must be a list, got "1244"'),
        ("vae", {"decoder_attention": True}, "decoder_attention: not modelled for AutoencoderKLWanConfig"),
        # the dtype the VAE runs in is the runtime's (Workload sets it), never a file's
        ("vae", {"compute_dtype": "bfloat16"}, "compute_dtype: not modelled for AutoencoderKLWanConfig"),
        ("vae", {"patch_size": 2}, "unsupported config (scale_factor_temporal/scale_factor_spatial: 4/8"),
        ("vae", {"temperal_downsample": [False, True, "x"]}, "temperal_downsample[2]: must be true or false"),
        ("vae", {"scale_factor_spatial": 16}, "unsupported config (scale_factor_temporal/scale_factor_spatial: 4/16"),
        ("text_encoder", {"d_model": 1e400}, "d_model: must be an integer >= 1, got Infinity"),
        ("text_encoder", {"feed_forward_proj": "swiglu"}, "unsupported config (feed_forward_proj: 'swiglu' is not"),
    ],
)
def test_bad_config_values_name_file_key_and_range(
    tmp_path: Path, sub: str, values: dict[str, object], message: str
) -> None:
    root = _write_folder(tmp_path / "ckpt")
    path = root / sub / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))
    with pytest.raises(CheckpointError) as e:
        load_model_dir(root, "wan2.1-t2v-14b")
    assert str(e.value).startswith(f"{path}: {message}") and "\n" not in str(e.value)


def test_bad_model_dir_value_is_exit_2_no_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = _write_folder(tmp_path / "ckpt", {"num_layers": -1})
    cmd = [sys.executable, "-m", "hybrid.cli", "report", "--model-dir", str(root)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ""
    assert (
        out.stderr
        == f"wanmeter: error: {root / 'transformer' / 'config.json'}: num_layers: must be an integer >= 1, got -1\n"
    )
