"""Prices per GPU-hour as data (``hybrid/data/prices.json``, ``--prices FILE``, ``--price``) and dollars per video
in ``report --gpu`` and ``plan`` (``--objective cost``): the arithmetic exact, bad files one line each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hybrid.errors import InputError
from hybrid.prices import SCHEMA, check, cost_of, data, price_of, stated_price
from hybrid.schemas import problem
from tests.conftest import run_cli


def _row(gpu: str, provider: str, usd: float, on_demand: bool = True) -> dict[str, Any]:
    return {"gpu": gpu, "provider": provider, "usd_per_gpu_hour": usd, "on_demand": on_demand, "date": "2026-12-03",
            "source": "test", "how": "as listed"}  # fmt: skip


DOC = {"schema": SCHEMA, "gpu_prices": [_row("h100-sxm", "A", 2.0), _row("h100-sxm", "B", 3.0),
                                        _row("h100-sxm", "C", 5.0), _row("h100-sxm", "D", 0.5, on_demand=False),
                                        _row("h200", "A", 4.0)]}  # fmt: skip


def test_a_gpus_price_is_the_median_of_its_on_demand_rows() -> None:
    p = price_of("h100-sxm", check(DOC, "test"))
    assert p is not None and (p.usd_per_gpu_hour, p.low, p.high, p.rows) == (3.0, 2.0, 5.0, 3)  # the spot row left out
    assert p.basis == "median of 3 on-demand prices from 3 providers, 2-5"
    assert price_of("l40s", DOC) is None
    assert stated_price("h100-sxm", 2.5).basis == "set on the command line"


def test_dollars_per_video_are_gpu_seconds_at_the_price() -> None:
    # 1,800 GPU-seconds at $3 per GPU-hour for a job of 2 videos: 1800 x 3 / 3600 / 2 = $0.75 a video
    c = cost_of(1800.0, {"low": 1200.0, "high": 3600.0}, stated_price("h100-sxm", 3.0), 2)
    assert c.usd_per_video == 0.75 and c.usd_per_video_range == {"low": 0.5, "high": 1.5}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"schema": "x"}, "prices: f is not a wanmeter.prices/1 document"),
        ({"gpu_prices": []}, "prices: f: gpu_prices must be a non-empty list of rows"),
        ({"gpu_prices": [{**_row("h100-sxm", "A", 2.0), "usd_per_gpu_hour": -1}]},
         "prices: f: gpu_prices[0]: field usd_per_gpu_hour is -1; valid: a number > 0 and < 1e6"),
        ({"gpu_prices": [{**_row("h100-sxm", "A", 2.0), "usd_per_gpu_hour": float("nan")}]},
         "prices: f: gpu_prices[0]: field usd_per_gpu_hour is nan; valid: a number > 0 and < 1e6"),
        ({"gpu_prices": [{k: v for k, v in _row("h100-sxm", "A", 2.0).items() if k != "provider"}]},
         "prices: f: gpu_prices[0]: field provider is missing; valid: text"),
        ({"gpu_prices": [_row("h999", "A", 2.0)]}, "prices: f: gpu_prices[0]: gpu 'h999' is not in the GPU table"),
        ({"gpu_prices": [{**_row("h100-sxm", "A", 2.0), "on_demand": "yes"}]},
         "prices: f: gpu_prices[0]: field on_demand is 'yes'; valid: true or false"),
    ],
)  # fmt: skip
def test_a_bad_prices_file_is_one_line_naming_the_row_and_field(change: dict[str, Any], said: str) -> None:
    with pytest.raises(InputError) as e:
        check({**DOC, **change}, "f")
    assert str(e.value).startswith(said)


def test_report_prints_dollars_per_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["report", "--model", "wan2.1-t2v-1.3b", "--gpu", "h100-sxm", "--price", "3.6", "--format", "json"]
    code, out, _ = run_cli(argv, capsys)
    doc = json.loads(out)
    total = doc["total"]
    assert code == 0 and problem(doc) is None
    assert total["usd_per_video"] == pytest.approx(total["seconds"] * 3.6 / 3600, rel=1e-12)  # one GPU, one video
    r = total["seconds_range"]
    assert total["usd_per_video_range"] == pytest.approx({"low": r["low"] / 1000, "high": r["high"] / 1000})
    assert doc["gpu"]["price"]["basis"] == "set on the command line"
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(DOC))
    code, out, _ = run_cli([*argv[:-4], "--prices", str(path), "--format", "table"], capsys)
    assert code == 0 and "per GPU-hour (median of 3 on-demand prices from 3 providers, 2-5)" in out and "cost: $" in out
    code, _, err = run_cli([*argv[:3], "--gpu", "l40s", "--prices", str(path)], capsys)
    assert code == 2 and err.strip().endswith(
        f"prices: {path} has no on-demand price for l40s; add one or give --price"
    )
    code, _, err = run_cli([*argv[:-2], "--prices", str(path)], capsys)
    assert code == 2 and "price: --price and --prices both set the price; give one" in err
    code, _, err = run_cli(["report", "--model", "wan2.1-t2v-1.3b", "--price", "3"], capsys)
    assert code == 2 and "price: --price changes only the sizing on a GPU" in err


def test_plan_ranks_by_dollars_per_video(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--model", "wan2.1-t2v-14b", "--gpu", "h100-sxm", "--gpus", "4", "--format", "json"]
    code, out, _ = run_cli([*argv, "--objective", "cost", "--price", "2"], capsys)
    doc = json.loads(out)
    assert code == 0 and problem(doc) is None and doc["price"]["usd_per_gpu_hour"] == 2
    fitting = [c for c in doc["layouts"] if c["fits"]]
    assert [c["usd_per_video"] for c in fitting] == sorted(c["usd_per_video"] for c in fitting)
    assert all(c["usd_per_video"] == pytest.approx(c["gpu_seconds"] * 2 / 3600, rel=1e-12) for c in doc["layouts"])
    code, out, _ = run_cli([*argv, "--objective", "gpu-seconds", "--price", "2"], capsys)
    # one GPU type at one price: dollars rank the layouts as GPU-seconds do
    assert [c["layout"] for c in json.loads(out)["layouts"]] == [c["layout"] for c in doc["layouts"]]
    code, _, err = run_cli([*argv, "--objective", "cost", "--prices", "/nonexistent.json"], capsys)
    assert code == 2 and "/nonexistent.json" in err


def test_the_packaged_prices_are_cited_per_row() -> None:
    doc = data()
    assert doc["schema"] == SCHEMA and doc["sources"]
    for row in doc["gpu_prices"]:
        assert row["source"] in doc["sources"] and row["quote"], row
    assert price_of("h100-sxm") is not None and price_of("h200") is not None
