"""calibration/public_timings.json as data: every entry, verified or pending, names a source that
exists, builds a workload with the DiT calls it states, and carries its evidence (the quote, what was
assumed, the runtime as published); the set covers what issue 21 asks of it. JSON and workloads only:
no sizing, no tracing (the seconds are verify's business, tests/test_sizing.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hybrid.hardware import gpus
from hybrid.runtime import RUNTIME_DEFS
from hybrid.schedule import stage_calls
from hybrid.verify import PUBLIC_TIMINGS
from hybrid.workload import Workload


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PUBLIC_TIMINGS.read_text())
    return data


def _all(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [*doc["entries"], *doc["denoising_loop"], *doc["vae_decode"]]


def test_every_entry_names_a_source_and_every_source_is_used(doc: dict[str, Any]) -> None:
    used = {e["source"] for e in _all(doc)}
    assert used == set(doc["sources"])
    for key, s in doc["sources"].items():
        assert s["url"].startswith("https://") and s["title"] and s["states"], key


def test_every_workload_builds_and_makes_the_stated_dit_calls(doc: dict[str, Any]) -> None:
    for e in _all(doc):
        w = Workload.of(**e["workload"])
        calls = sum(stage_calls(sd, w) for sd in w.spec.pipeline_def.stages if sd.component.startswith("transformer"))
        assert calls == e["dit_calls"], e["name"]
        assert e["workload"]["runtime"]["name"] in RUNTIME_DEFS, e["name"]


def test_an_entry_states_its_evidence(doc: dict[str, Any]) -> None:
    for e in _all(doc):
        if "quote" not in e:  # the 46 entries of 2026-11-25 state theirs under their source's `unstated`
            assert e["source"] in ("wan22-readme", "lightx2v-benchmark", "morphic-blog"), e["name"]
            continue
        assert e["quote"] and e["runtime_as_published"] and e["runtime_note"], e["name"]
        assert isinstance(e["assumed"], list) and all(isinstance(a, str) and a for a in e["assumed"]), e["name"]
        assert "set_aside" not in e or len(e["set_aside"]) > 20, e["name"]  # a reason, not a flag


def test_verified_entries_are_whole_jobs_on_known_gpus_and_pending_ones_say_why_not(doc: dict[str, Any]) -> None:
    known = set(gpus())
    for e in doc["entries"]:
        assert e["gpu"] in known and e["published_seconds"] > 0, e["name"]
    assert "pending_gpu" not in doc  # every GPU of the set is in gpus.json: its runs are verified
    for e in doc["denoising_loop"]:
        assert e["gpu"] in known and "published_seconds" not in e and e["published_denoise_seconds"] > 0, e["name"]
    for e in doc["vae_decode"]:
        assert e["gpu"] in known and e["published_vae_decode_seconds"] > 0, e["name"]
        assert "published_seconds" not in e and "published_denoise_seconds" not in e, e["name"]


def test_the_set_covers_what_issue_21_asks(doc: dict[str, Any]) -> None:
    entries = _all(doc)
    # the 46 entries of 2026-11-25 all ran the original Wan repositories
    runtimes = {e.get("runtime_as_published", "Wan2.2") for e in entries} - {"unstated ('Original')"}
    assert len(entries) >= 60 and len(doc["sources"]) >= 15
    assert len({e["gpu"] for e in entries}) >= 8 and len(runtimes) >= 5
    assert {e.get("deployment", {}).get("gpus", 1) > 1 for e in entries} == {True, False}  # single and multi-GPU
    assert doc["denoising_loop"] and all("published_seconds" in e for e in doc["entries"])  # whole-job and loop-only


def test_a_figure_of_the_vae_decode_alone_is_timed_by_its_stage() -> None:
    from hybrid.accuracy import SCOPES, seconds_of
    from hybrid.errors import InputError
    from hybrid.sizing import size_on_gpu
    from hybrid.workload import Workload

    w = Workload.of("wan2.1-t2v-1.3b")
    sized = size_on_gpu(w, "h100-sxm")
    assert SCOPES == ("whole job", "denoising loop", "vae decode")
    assert seconds_of(sized, w, "vae decode") == sized.stages["vae_decode"].seconds
    assert seconds_of(sized, w, "denoising loop") == sized.stages["diffusion_core"].seconds
    assert seconds_of(sized, w, "whole job") == sized.seconds
    with pytest.raises(InputError, match="scope: 'encode' is not one of whole job, denoising loop, vae decode"):
        seconds_of(sized, w, "encode")


def test_an_entry_s_scope_is_the_field_its_figure_is_given_in(doc: dict[str, Any]) -> None:
    from hybrid.accuracy import scope_of

    assert {scope_of(e) for e in doc["entries"]} == {"whole job"}
    assert {scope_of(e) for e in doc["denoising_loop"]} == {"denoising loop"}
    assert {scope_of(e) for e in doc["vae_decode"]} == {"vae decode"}
    [trt] = doc["vae_decode"]
    assert trt["published_vae_decode_seconds"] == 4.023593 and trt["gpu"] == "b200"  # 4,023.593 ms on one B200


def _run(source: str, error: float, gpu: str = "h100-sxm", gpus: int = 1, runtime: str = "diffusers",
         scope: str = "whole job") -> Any:  # fmt: skip
    """An :class:`~hybrid.accuracy.Outcome` of ``error`` (published 100 s), its name its source's."""
    from hybrid.accuracy import Outcome

    return Outcome(source, source, gpu, runtime, gpus, 100 * (1 + error), 100.0, 0.0, None, "", {"scope": scope})


def test_a_vae_decode_figure_is_judged_but_is_no_evidence_for_a_job_s_range() -> None:
    from dataclasses import replace

    from hybrid.accuracy import assess, band, kind_of
    from hybrid.hardware import get_gpu

    jobs = [_run(f"s{i}", e) for i, e in enumerate((-0.05, -0.02, 0.0, 0.01, 0.03, 0.05))]
    decode = _run("vae", -0.4, scope="vae decode")
    kind = kind_of(get_gpu("h100-sxm"), "diffusers", 1)
    with_decode, without = band([*jobs, decode], kind), band(jobs, kind)
    assert with_decode is not None and with_decode == without and with_decode.runs == 6  # the decode is no evidence
    stats = assess([*jobs, decode])
    assert stats["runs"] == 7 and stats["seconds_max"] == pytest.approx(0.4)  # but it is judged
    assert not stats["within"]["seconds_max"]
    assert band([*jobs[:5], replace(jobs[5], detail={"scope": "denoising loop"})], kind) == without  # a loop is


def test_a_peak_published_in_the_sources_own_unit_is_compared_in_gib() -> None:
    """The OpenMontage scripts print torch.cuda.max_memory_allocated() / 1e9: their 24.11 'GB' is 24.11e9 bytes, 22.45
    GiB; an entry without the field reads its source's 'GB' as GiB (the document's memory_unit)."""
    from hybrid.accuracy import published_gib, read_public

    doc = read_public()
    units = {e.get("peak_memory_unit_bytes") for e in doc["entries"]}
    assert units == {None, 10**9}
    [part] = [e for e in doc["entries"] if e["published_seconds"] == 4.36]
    assert published_gib(part) == 24.11e9 / 2**30 == pytest.approx(22.4542, abs=1e-4)
    [guide] = [e for e in doc["entries"] if e["name"].startswith("LightX2V disaggregation guide, Baseline T2V-1.3B")]
    assert published_gib(guide) == 16.4


def test_each_kind_s_bias_is_reported_most_biased_first() -> None:
    from hybrid.accuracy import assess

    runs = [
        _run("a", -0.20, "rtx4090", 4, "wan"),
        _run("b", -0.10, "rtx4090", 8, "wan"),
        _run("c", 0.02, runtime="wan"),
        _run("d", -0.04, runtime="wan"),
        _run("e", -0.385, "b200", runtime="wan", scope="vae decode"),
    ]
    kinds = assess(runs)["by_kind"]
    # the decode alone -38.5%; the 4090s' (-20 - 10) / 2 = -15%, their |error| 15% and max 20%; the H100s' (2 - 4) / 2
    assert [k["kind"] for k in kinds] == [
        "data-centre GPUs, wan runtime, one GPU, vae decode alone",
        "consumer GPUs, wan runtime, multi-GPU",
        "data-centre GPUs, wan runtime, one GPU",
    ]
    assert [k["runs"] for k in kinds] == [1, 2, 2]
    assert [k["signed_mean"] for k in kinds] == pytest.approx([-0.385, -0.15, -0.01])
    assert [k["mean"] for k in kinds] == pytest.approx([0.385, 0.15, 0.03])
    assert [k["max"] for k in kinds] == pytest.approx([0.385, 0.20, 0.04])
