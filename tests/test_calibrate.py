"""Committed laws reproduce the analytic model; golden tables still match the tracer."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid import calibrate as cal
from hybrid.analytic import components_per_call
from hybrid.cli import main
from hybrid.presets import PRESETS, get_preset
from tests.conftest import constrained

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("model", cal.LAWFUL)
def test_committed_laws_reproduce_analytic_at_full_size(model: str) -> None:
    doc, laws = cal.load_laws(ROOT / "calibration" / "laws" / f"{model}.json")
    assert doc["model"] == model and set(doc["versions"]) == {"wanmeter", "torch", "diffusers", "transformers"}
    spec = get_preset(model)
    for w in cal.held_out(model):
        for stage in cal.bases(spec):
            assert cal.evaluate_stage(laws, stage, cal.variables(stage, spec, w)) == components_per_call(stage, w)
    assert all(c["pass"] and c["relative_error"] == 0 for c in doc["cross_check"])


@pytest.mark.parametrize("model", cal.LAWFUL)
def test_committed_laws_name_their_own_geometry(model: str) -> None:
    doc, _ = cal.load_laws(ROOT / "calibration" / "laws" / f"{model}.json")
    assert doc["variables"] == cal.used_variables(get_preset(model))


def test_only_speech_to_video_has_no_laws_and_says_why() -> None:
    assert sorted(set(PRESETS) - set(cal.LAWFUL)) == ["wan2.2-s2v-14b"]
    with pytest.raises(cal.InputError, match=r"model: wan2.2-s2v-14b has no fitted laws \(its audio encoder"):
        next(cal.calibrate("wan2.2-s2v-14b"))


def test_ti2v_laws_read_the_wan22_vae_strides() -> None:
    # the Wan2.2 VAE folds 2x2 pixels before its three /2 downsamples: 16x spatially, 4x in time
    variables = cal.used_variables(get_preset("wan2.2-ti2v-5b"))
    assert variables["P"] == "latent pixels per frame: (height/16)(width/16)"
    assert variables["T"] == "latent frames: (frames-1)/4+1"
    assert cal.used_variables(get_preset("wan2.1-t2v-14b"))["P"] == "latent pixels per frame: (height/8)(width/8)"


def test_committed_14b_self_attention_law() -> None:
    _, laws = cal.load_laws(ROOT / "calibration" / "laws" / "wan2.1-t2v-14b.json")
    # 40 layers x 4 * 40 heads * 128 = 819200 per B*N^2
    assert {m: int(c) for m, c in laws["diffusion_core"]["self_attention_core"].items() if c} == {"B*N^2": 819200}


@settings(max_examples=70, deadline=None)
@given(
    st.sampled_from(cal.LAWFUL),
    st.integers(1, 120),
    st.integers(1, 68),
    st.integers(0, 60),
    st.integers(1, 4),
    st.integers(1, 1024),
    st.integers(0, 4),
)
def test_laws_equal_analytic_anywhere(
    model: str, w16: int, h16: int, k: int, batch: int, text_len: int, refs: int
) -> None:
    _, laws = cal.load_laws(ROOT / "calibration" / "laws" / f"{model}.json")
    shape = {"width": 16 * w16, "height": 16 * h16, "frames": 4 * k + 1, "batch": batch, "text_len": text_len}
    w = constrained(model, refs, **shape)
    spec = get_preset(model)
    for stage in cal.bases(spec):
        assert cal.evaluate_stage(laws, stage, cal.variables(stage, spec, w)) == components_per_call(stage, w)


@pytest.mark.parametrize("name", sorted(cal.GOLDEN_WORKLOADS))
def test_golden_tables_match_the_tracer(name: str, golden_documents: Callable[[str], dict[str, Any]]) -> None:
    # a fresh trace (cal.golden_document), kept for the session: calibrate --check compares it again
    committed = cal.load_golden(ROOT / "calibration" / "golden" / f"{name}.json")
    changed = cal.compare_golden(committed, golden_documents(name))
    assert not changed, "ops changed since the golden table was written (re-run wanmeter calibrate --golden):\n" + (
        "\n".join(changed)
    )


def test_golden_comparison_names_changed_ops() -> None:
    doc = json.loads(
        cal.dump_golden(
            {
                "schema": cal.GOLDEN_SCHEMA,
                "rows": [
                    ["vae_decode", "decoder.conv_in", "aten.convolution", "conv", 10, 1, 1, 1, [], []],
                    ["vae_decode", "decoder.conv_out", "aten.convolution", "conv", 20, 1, 1, 1, [], []],
                ],
            }
        )
    )
    fresh = {
        "rows": [
            ["vae_decode", "decoder.conv_in", "aten.convolution", "conv", 11, 1, 1, 1, [], []],
            ["vae_decode", "decoder.norm_out", "aten.linalg_vector_norm", "reduction", 0, 1, 1, 1, [], []],
        ]
    }
    assert cal.compare_golden(doc, fresh) == [
        "changed: vae_decode decoder.conv_in aten.convolution",
        "removed: vae_decode decoder.conv_out aten.convolution",
        "added: vae_decode decoder.norm_out aten.linalg_vector_norm",
    ]


def test_calibrate_check_cli(
    golden_documents: Callable[[str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the golden tables' fresh traces are those test_golden_tables_match_the_tracer made (traced here
    # if it did not run); the re-fit on the grid and the traced cross-check run as they are
    monkeypatch.setattr(cal, "golden_document", golden_documents)
    laws_dir = ROOT / "calibration" / "laws"
    golden_dir = ROOT / "calibration" / "golden"
    code = main(
        [
            "calibrate",
            "--check",
            "--model",
            "wan2.1-t2v-1.3b",
            "--laws-dir",
            str(laws_dir),
            "--golden-dir",
            str(golden_dir),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.strip().endswith("PASS")
    assert "MISMATCH" not in out
    assert "traced None" not in out  # the cross-check traced every stage at both held-out workloads
    assert all(f"ok   golden table {name}: 0 ops changed" in out for name in cal.GOLDEN_WORKLOADS)


def test_calibrate_check_detects_a_changed_law(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = ROOT / "calibration" / "laws" / "wan2.1-t2v-1.3b.json"
    # the re-fit and the traced cross-check are exercised by test_calibrate_check_cli; here the re-fit
    # returns the committed laws and the changed law is cross-checked against the analytic model only
    monkeypatch.setattr(cal, "fit_laws", lambda spec: cal.load_laws(src)[1])
    monkeypatch.setattr(cal, "cross_check", functools.partial(cal.cross_check, trace=False))
    monkeypatch.setattr(cal, "GOLDEN_WORKLOADS", {})
    doc = json.loads(src.read_text())
    doc["laws"]["diffusion_core"]["ffn"]["B*N"] = "1"
    (tmp_path / "wan2.1-t2v-1.3b.json").write_text(json.dumps(doc))
    code = main(
        [
            "calibrate",
            "--check",
            "--model",
            "wan2.1-t2v-1.3b",
            "--laws-dir",
            str(tmp_path),
            "--golden-dir",
            str(ROOT / "calibration" / "golden"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "MISMATCH wan2.1-t2v-1.3b diffusion_core/ffn: B*N committed 1, re-fit 1651507200" in out
    assert "FAIL wan2.1-t2v-1.3b 832x480x81 b1 diffusion_core  law " in out  # and its cross-check fails


def test_calibrate_check_without_laws_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--check", "--model", "wan2.1-t2v-1.3b", "--laws-dir", str(tmp_path)]) == 2
    assert "no committed laws" in capsys.readouterr().err
