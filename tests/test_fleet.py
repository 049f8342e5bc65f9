"""``wanmeter fleet``: the SimPy queue against queueing theory (Erlang C for M/M/c in the exponential test mode,
Pollaczek-Khinchine for M/D/1 with the real fixed services), within the simulation's own 95% interval over
seeded replications; then the search and the command on the example mix."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from hybrid.errors import InputError
from hybrid.fleet import (
    erlang_c,
    erlang_c_wait,
    interval,
    md1_wait,
    parse_rate,
    parse_slo,
    read_mix,
    read_trace,
    simulate,
)
from hybrid.schemas import problem
from tests.conftest import run_cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mix.csv"
REPS, JOBS = 10, 10_000


def _waits(rate: float, service: float, servers: int, exponential: bool) -> tuple[list[float], list[float]]:
    """Per replication: the mean wait and the share of requests that waited."""
    means, waited = [], []
    for seed in range(REPS):
        r = simulate(rate, [service], [1.0], servers, JOBS, seed, exponential=exponential)
        means.append(statistics.fmean(r.waits))
        waited.append(sum(w > 0 for w in r.waits) / len(r.waits))
    return means, waited


def test_erlang_c_formula() -> None:
    # two servers at 1 Erlang: C = (1/2)(2/1)/(1 + 1 + 1) = 1/3 (a^c/c! * c/(c-a) over the sum)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: the probability of waiting is the load
    assert erlang_c(3, 3.0) == 1.0


@pytest.mark.parametrize("load", [0.5, 0.75, 0.9])
def test_exponential_services_on_c_servers_wait_as_erlang_c(load: float) -> None:
    servers, service = 4, 1.0
    rate = load * servers / service
    means, waited = _waits(rate, service, servers, exponential=True)
    mean, half = interval(means)
    assert abs(mean - erlang_c_wait(servers, rate, service)) <= half, (mean, half)
    share, half_p = interval(waited)
    assert abs(share - erlang_c(servers, rate * service)) <= half_p, (share, half_p)


@pytest.mark.parametrize("load", [0.5, 0.7])
def test_fixed_services_on_one_server_wait_as_m_d_1(load: float) -> None:
    service = 100.0  # a job's seconds, fixed as the model gives them
    rate = load / service
    means, _ = _waits(rate, service, 1, exponential=False)
    mean, half = interval(means)
    assert abs(mean - md1_wait(rate, service)) <= half, (mean, half)
    # and the check can fail: M/M/1's wait (twice M/D/1's) is far outside the interval
    assert abs(mean - erlang_c_wait(1, rate, service)) > half


def test_parsing_rates_and_targets() -> None:
    assert parse_rate("120/h") == pytest.approx(120 / 3600) and parse_rate("2/min") == pytest.approx(2 / 60)
    slo = parse_slo("p95<=300s")
    assert (slo.quantile, slo.seconds, slo.text()) == (0.95, 300.0, "p95<=300s")
    assert parse_slo("p99.9<=5min").seconds == 300.0
    cases = (("0/h", "rate: '0/h' is invalid"), ("fast", "rate: 'fast' is invalid"),
             ("p100<=1s", "slo: 'p100<=1s' is invalid"), ("p95<300", "slo: 'p95<300' is invalid"))  # fmt: skip
    for bad, said in cases:
        with pytest.raises(InputError, match=said):
            (parse_rate if "rate" in said else parse_slo)(bad)


def test_a_mix_is_read_and_bad_ones_are_one_line(tmp_path: Path) -> None:
    kinds = read_mix(EXAMPLE)
    assert [k.workload.model for k in kinds] == ["wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.1-i2v-14b-480p"]
    assert [k.share for k in kinds] == pytest.approx([0.5, 0.2, 0.3])
    jsonl = tmp_path / "mix.jsonl"
    jsonl.write_text(
        '{"model": "wan2.1-t2v-1.3b", "share": 3}\n{"model": "wan2.2-ti2v-5b", "share": 1, "image": true}\n'
    )
    assert [k.share for k in read_mix(jsonl)] == [0.75, 0.25] and read_mix(jsonl)[1].workload.image
    for text, said in (("model,share\n", "has no jobs"), ("model,share\nwan9,1\n", "row 1: model: unknown model"),
                       ("model,share\nwan2.1-t2v-1.3b,-1\n", "row 1: share -1 is invalid"),
                       ("model,colour\nwan2.1-t2v-1.3b,red\n", "unknown column 'colour'")):  # fmt: skip
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(InputError, match=said):
            read_mix(bad)


def test_the_example_fleet_is_seeded_fast_and_valid(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fleet", "--mix", str(EXAMPLE), "--rate", "200/h", "--slo", "p95<=300s", "--gpu", "h100-sxm,h200,l40s",
            "--format", "json"]  # fmt: skip
    start = time.perf_counter()
    code, out, _ = run_cli(argv, capsys)
    elapsed = time.perf_counter() - start
    assert code == 0 and elapsed < 60
    doc = json.loads(out)
    assert problem(doc) is None
    best = doc["best"]
    assert (
        best["meets"]
        and best["target_seconds"] <= 300
        and best["usd_per_hour"] == min(p["usd_per_hour"] for p in doc["pools"] if p["meets"])
    )
    # dollars per video: the pool's dollars per hour over the 200 videos it serves an hour (measured: about 200)
    assert best["usd_per_video"] == pytest.approx(best["usd_per_hour"] / 200)
    assert best["throughput_per_hour"] == pytest.approx(200, rel=0.1)
    assert doc["best_per_gpu"]["l40s"] is None and any(s["gpu"] == "l40s" for s in doc["skipped"])
    code, again, _ = run_cli(argv, capsys)
    assert again == out  # seeded: the same fleet, to the last digit
    code, _, err = run_cli([*argv[:-2], "--slo", "p95<=200s", "--max-gpus", "8"], capsys)
    # no fleet of 8 GPUs: the fastest 14B job alone takes 307 s on 4 H100s, 8 GPUs are the most a job gets here
    assert code == 2 and "fleet: no fleet of at most 8 GPUs meets p95<=200s; the best p95 found: " in err
    code, _, err = run_cli([*argv[:-2], "--slo", "p95<=250s", "--max-gpus", "16"], capsys)
    assert code == 2 and "the best p95 found" in err and err.count("\n") == 1


def test_fleet_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = ["fleet", "--mix", str(EXAMPLE), "--slo", "p95<=300s", "--gpu", "h100-sxm"]
    for extra, said in ((["--rate", "0/h"], "rate: '0/h' is invalid"),
                        (["--rate", "1/h", "--format", "png"], "output: --format png writes a file"),
                        (["--rate", "1/h", "--gpu", "nope"], "unknown GPU")):  # fmt: skip
        code, _, err = run_cli([*base, *extra], capsys)
        assert code == 2 and said in err and err.count("\n") == 1, err
    empty = tmp_path / "empty.csv"
    empty.write_text("model,share\n")
    code, _, err = run_cli(["fleet", "--mix", str(empty), "--rate", "1/h", "--slo", "p95<=300s", "--gpu", "h100-sxm"],
                           capsys)  # fmt: skip
    assert code == 2 and "has no jobs" in err


def test_a_trace_is_replayed_as_timed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.csv"
    rows = [(0, "wan2.1-t2v-1.3b"), (30, "wan2.1-t2v-1.3b"), (45, "wan2.1-t2v-14b"), (200, "wan2.1-t2v-1.3b")]
    trace.write_text("time,model\n" + "".join(f"{t},{m}\n" for t, m in rows))
    kinds, arrivals = read_trace(trace)
    assert [k.workload.model for k in kinds] == ["wan2.1-t2v-1.3b", "wan2.1-t2v-14b"]
    assert [k.share for k in kinds] == [0.75, 0.25] and arrivals == [(0.0, 0), (30.0, 0), (45.0, 1), (200.0, 0)]
    # one server, fixed services of 10 s and 100 s: each request finds it free (the second ends at 40 s, the
    # third arrives at 45 s and ends at 145 s, the fourth arrives at 200 s), so every latency is its own service
    r = simulate(1.0, [10.0, 100.0], [0.75, 0.25], 1, 4, 0, arrivals=arrivals)
    assert r.waits == (0.0, 0.0, 0.0, 0.0) and r.latencies == (10.0, 10.0, 100.0, 10.0)
    iso = tmp_path / "iso.jsonl"
    iso.write_text('{"time": "2026-12-03T10:00:00", "model": "wan2.1-t2v-1.3b"}\n'
                   '{"time": "2026-12-03T10:01:30", "model": "wan2.1-t2v-1.3b"}\n')  # fmt: skip
    assert read_trace(iso)[1] == [(0.0, 0), (90.0, 0)]
    argv = ["fleet", "--trace", str(trace), "--slo", "p95<=400s", "--gpu", "h100-sxm", "--format", "json"]
    code, out, _ = run_cli(argv, capsys)
    doc = json.loads(out)
    assert code == 0 and problem(doc) is None and doc["trace"] == {"requests": 4, "span_seconds": 200.0}
    assert doc["replications"] == 1 and doc["best"]["target_half_width"] is None
    code, _, err = run_cli([*argv, "--rate", "1/h"], capsys)
    assert code == 2 and "leave --rate out with --trace" in err


def test_every_job_runs_the_optimisations_and_a_gpu_they_do_not_run_on_is_skipped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["fleet", "--mix", str(EXAMPLE), "--rate", "200/h", "--slo", "p95<=300s", "--jobs", "500",
            "--replications", "2", "--format", "json"]  # fmt: skip
    code, out, _ = run_cli([*base, "--gpu", "h100-sxm,a100-80gb", "--optimise", "fp8"], capsys)
    doc = json.loads(out)
    assert code == 0 and problem(doc) is None and [o["name"] for o in doc["optimisations"]] == ["fp8"]
    assert any(s["why"].endswith("optimise: fp8 needs an FP8 tensor path; a100-80gb has none") for s in doc["skipped"])
    code, plain, _ = run_cli([*base, "--gpu", "h100-sxm"], capsys)
    code, distilled, _ = run_cli([*base, "--gpu", "h100-sxm", "--optimise", "distill:4"], capsys)
    # a 4-step model without CFG serves the same stream on far fewer GPUs
    assert json.loads(distilled)["best"]["gpus"] < json.loads(plain)["best"]["gpus"]


def test_the_fleet_renders_as_csv_html_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["fleet", "--mix", str(EXAMPLE), "--rate", "200/h", "--slo", "p95<=300s", "--gpu", "h100-sxm", "--jobs",
            "500", "--replications", "2"]  # fmt: skip
    code, csv_text, _ = run_cli([*base, "--format", "csv"], capsys)
    header, *rows = csv_text.splitlines()
    assert code == 0 and header.startswith("gpu,gpus,gpus_per_job,groups,usd_per_hour") and rows
    code, page, _ = run_cli([*base, "--format", "html"], capsys)
    assert code == 0 and page.startswith("<!doctype html>") and "<svg" in page and "frontier" in page
    png = tmp_path / "fleet.png"
    code, _, _ = run_cli([*base, "--format", "png", "-o", str(png)], capsys)
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run_cli([*base, "--format", "png"], capsys)
    assert code == 2 and "output: --format png writes a file; give -o FILE.png" in err
