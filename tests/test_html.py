"""The self-contained HTML report and sweep page, loaded in a real headless Chromium with networking
disabled (Debian's ``chromium``; ``.ci/run`` installs it when missing): the page renders (a
screenshot that is not blank, kept at ``tmp/html-report.png``), its title and every stage name are
in the DOM, nothing is logged to the console, and nothing in it points off the machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hybrid.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
OFFLINE = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves
    "--proxy-server=127.0.0.1:9",  # and nothing connects
    "--enable-logging=stderr",
    "--v=0",
]


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        if os.environ.get("WANMETER_REQUIRE_CHROMIUM"):  # CI: the browser test must run
            pytest.fail("no headless Chromium: .ci/run installs Debian's chromium; it failed to")
        pytest.skip("no headless Chromium here (.ci/run installs Debian's chromium)")
    return subprocess.run([CHROMIUM, *OFFLINE, *args], capture_output=True, text=True, timeout=120)


def _console(run: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in run.stderr.splitlines() if ":CONSOLE" in line]


def _not_blank(png: Path) -> None:
    from PIL import Image

    with Image.open(png) as im:
        rgb = im.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        inked = sum(n for n, c in colours if c != (255, 255, 255))
        assert len(colours) > 50 and inked > 0.05 * rgb.width * rgb.height, (len(colours), inked)


def _self_contained(text: str) -> None:
    # no resource the page would fetch: scripts, stylesheets, images, fonts, frames
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text, re.I) and "<script" not in text and "<link" not in text


def test_html_report_renders_offline_in_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    assert (
        main(["report", "--gpu", "h100-sxm", "--gpus", "8", "--ulysses", "8", "--format", "html", "-o", str(page)]) == 0
    )
    text = page.read_text()
    _self_contained(text)
    for needle in ("<title>wanmeter report: wan2.1-t2v-14b</title>", "652992567022616576", "comm seconds", "80 GiB"):
        assert needle in text, needle  # the exact FLOP total; the layout's column; the GPU's capacity
    shot = ROOT / "tmp" / "html-report.png"
    shot.parent.mkdir(exist_ok=True)
    run = _chromium("--window-size=1200,2400", f"--screenshot={shot}", page.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    assert _console(run) == []
    _not_blank(shot)
    dom = _chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0 and _console(dom) == []
    assert "<title>wanmeter report: wan2.1-t2v-14b</title>" in dom.stdout
    for stage in ("text_encoder", "diffusion_core", "vae_decode"):
        assert f"<td>{stage}</td>" in dom.stdout, stage
    phone = tmp_path / "phone.png"  # a phone-width screen: the page still renders
    assert _chromium("--window-size=390,1600", f"--screenshot={phone}", page.as_uri()).returncode == 0
    _not_blank(phone)


def test_html_sweep_renders_offline_in_chromium(tmp_path: Path) -> None:
    page = tmp_path / "sweep.html"
    argv = ["sweep", "--model", "wan2.1-t2v-1.3b,wan2.2-ti2v-5b", "--steps", "10,50", "--frames", "17,81"]
    assert main([*argv, "--gpu", "rtx4090", "--html", str(page), "-o", str(tmp_path / "s.csv")]) == 0
    text = page.read_text()
    _self_contained(text)
    assert text.count("<svg") >= 1 and "8 workloads" in text
    shot = tmp_path / "sweep.png"
    run = _chromium("--window-size=1200,2000", f"--screenshot={shot}", page.as_uri())
    assert run.returncode == 0 and _console(run) == [], run.stderr[-2000:]
    _not_blank(shot)
    dom = _chromium("--dump-dom", page.as_uri())
    assert "<title>wanmeter sweep: wan2.1-t2v-1.3b, wan2.2-ti2v-5b</title>" in dom.stdout
    for stage in ("text_encoder", "diffusion_core", "vae_decode", "vae_encode"):
        assert stage in dom.stdout, stage
