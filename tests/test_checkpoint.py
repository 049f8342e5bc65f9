"""Local Diffusers folders: configs override presets, parameter counts from safetensors headers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from hybrid.checkpoint import CheckpointError, load_model_dir, resolve_model, safetensors_parameters
from hybrid.models import get_preset


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


def test_unsupported_config_is_an_error(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "i2v", {"image_dim": 1280, "added_kv_proj_dim": 5120, "in_channels": 36})
    with pytest.raises(CheckpointError, match="unsupported config"):
        load_model_dir(root, "wan2.1-t2v-14b")
