# ruff: noqa: E501  (command lines are kept whole, one a line)
"""A corpus of command lines whose outputs are recorded as test data (tests/data/cli_outputs/).

Recorded before the one-walk redesign so that every refactor after it must leave each output byte-identical
(tests/test_cli_outputs.py). Record again only for a change that is meant to change numbers, and say so in
the commit: ``python -m tests.cli_corpus`` rewrites every output file and the index.

Each command runs in-process through ``hybrid.cli.main`` with ``-o`` pointing at a temporary file;
``{data}`` in a command stands for the folder of recorded outputs (``diff`` reads two of them).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import shlex
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

DATA = Path(__file__).parent / "data" / "cli_outputs"
INDEX = DATA / "index.json"

PRESETS = (
    "wan2.1-t2v-1.3b",
    "wan2.1-t2v-14b",
    "wan2.1-i2v-14b-480p",
    "wan2.1-i2v-14b-720p",
    "wan2.1-flf2v-14b-720p",
    "wan2.1-vace-1.3b",
    "wan2.1-vace-14b",
    "wan2.2-ti2v-5b",
    "wan2.2-t2v-a14b",
    "wan2.2-i2v-a14b",
)
GPUS = (
    "rtx4090",
    "rtx5090",
    "a100-40gb",
    "a100-80gb",
    "h100-pcie",
    "h100-sxm",
    "h200",
    "h20",
    "b200",
    "l40s",
    "mi300x",
)
TWO_EXPERT = ("wan2.2-t2v-a14b", "wan2.2-i2v-a14b")


def _commands() -> Iterator[str]:
    # report, analytic FLOPs only, every preset, and every workload knob
    for m in PRESETS:
        yield f"report --model {m} --format json"
        yield f"report --model {m} --size 320x192 --frames 9 --steps 3 --format json"
        yield f"report --model {m} --no-cfg --batch 2 --text-len 256 --format json"
    yield "report --model wan2.1-t2v-14b --frames 121 --steps 30 --format json"
    yield "report --model wan2.1-t2v-1.3b --size 1280x720 --format json"
    yield "report --model wan2.1-t2v-14b --size 1920x1088 --frames 161 --format json"
    yield "report --model wan2.1-t2v-14b --guidance-scale 1 --format json"
    yield "report --model wan2.1-vace-14b --ref-images 2 --format json"
    yield "report --model wan2.1-vace-1.3b --ref-images 1 --size 480x832 --format json"
    yield "report --model wan2.2-ti2v-5b --image --format json"
    yield "report --model wan2.2-ti2v-5b --image --size 704x1280 --frames 41 --format json"
    for m in TWO_EXPERT:
        yield f"report --model {m} --flow-shift 3 --format json"
        yield f"report --model {m} --steps 20 --guidance-scale-2 2 --format json"
    # other renderings of the same report
    for fmt in ("table", "markdown", "csv"):
        yield f"report --model wan2.1-i2v-14b-480p --format {fmt}"
        yield f"report --model wan2.2-t2v-a14b --gpu h100-sxm --format {fmt}"
    # report --gpu: every preset on one GPU, every GPU on two presets
    for m in PRESETS:
        yield f"report --model {m} --gpu h100-sxm --format json"
        yield f"report --model {m} --gpu a100-80gb --size 480x320 --frames 33 --steps 10 --format json"
    for g in GPUS:
        yield f"report --model wan2.1-t2v-1.3b --gpu {g} --format json"
        yield f"report --model wan2.2-ti2v-5b --gpu {g} --format json"
    yield "report --model wan2.1-t2v-14b --gpu h100-sxm --no-cfg --batch 2 --format json"
    yield "report --model wan2.1-t2v-14b --gpu h100-sxm --offload --format json"
    yield "report --model wan2.1-i2v-14b-720p --gpu l40s --offload --format json"
    yield "report --model wan2.1-t2v-14b --gpu h100-sxm --efficiency-override matmul=0.5 --format json"
    yield "report --model wan2.1-t2v-14b --gpu h100-sxm --efficiency-override attention=0.6 --efficiency-override memory=0.7 --format json"
    # the original Wan runtime and its flags
    for m in PRESETS:
        yield f"report --model {m} --gpu h100-sxm --runtime wan --format json"
    for m in ("wan2.1-t2v-14b", "wan2.2-t2v-a14b", "wan2.2-ti2v-5b", "wan2.1-i2v-14b-480p"):
        yield f"report --model {m} --gpu h100-sxm --runtime wan --offload --format json"
        yield f"report --model {m} --gpu h100-sxm --runtime wan --t5-cpu --format json"
        yield f"report --model {m} --gpu h100-sxm --runtime wan --t5-cpu --host-tflops 3.5 --format json"
        yield f"report --model {m} --gpu a100-80gb --runtime wan --flash-attention 2 --format json"
        yield f"report --model {m} --gpu h100-sxm --runtime wan --flash-attention 2 --format json"
    for m in ("wan2.2-t2v-a14b", "wan2.2-i2v-a14b", "wan2.2-ti2v-5b"):
        yield f"report --model {m} --gpu h100-sxm --runtime wan --convert-model-dtype --format json"
        yield f"report --model {m} --gpu rtx4090 --runtime wan --offload --convert-model-dtype --t5-cpu --format json"
    # layouts on 2 to 8 GPUs
    for m in ("wan2.1-t2v-14b", "wan2.1-i2v-14b-720p", "wan2.2-t2v-a14b", "wan2.1-t2v-1.3b"):
        for n in (2, 4, 8):
            yield f"report --model {m} --gpu h100-sxm --gpus {n} --ulysses {n} --format json"
            yield f"report --model {m} --gpu h100-sxm --gpus {n} --ring {n} --format json"
        yield f"report --model {m} --gpu h100-sxm --gpus 8 --ulysses 4 --ring 2 --format json"
        yield f"report --model {m} --gpu h100-sxm --gpus 4 --ulysses 2 --cfg-parallel --format json"
        yield f"report --model {m} --gpu h100-sxm --gpus 2 --cfg-parallel --format json"
    for m in ("wan2.1-t2v-14b", "wan2.2-t2v-a14b", "wan2.2-i2v-a14b"):
        for n in (2, 4, 8):
            yield f"report --model {m} --gpu h100-sxm --runtime wan --gpus {n} --ulysses {n} --fsdp dit,text_encoder --format json"
        yield f"report --model {m} --gpu a100-80gb --runtime wan --gpus 8 --ring 8 --fsdp dit --format json"
        yield f"report --model {m} --gpu h20 --runtime wan --gpus 4 --ulysses 4 --fsdp text_encoder --format json"
    yield "report --model wan2.1-t2v-14b --gpu h100-sxm --gpus 3 --ulysses 3 --size 1280x720 --format json"
    yield "report --model wan2.1-t2v-14b --gpu h100-sxm --gpus 6 --ulysses 2 --ring 3 --format json"
    yield "report --model wan2.1-vace-14b --gpu h200 --gpus 8 --ulysses 8 --format json"
    yield "report --model wan2.2-ti2v-5b --gpu h100-sxm --gpus 2 --ulysses 2 --image --format json"
    # bytes and peaks from a meta trace of the real modules
    yield "report --model wan2.1-t2v-1.3b --gpu h100-sxm --size 160x96 --frames 5 --steps 2 --traced --format json"
    yield "report --model wan2.2-ti2v-5b --gpu h100-sxm --size 160x96 --frames 5 --steps 2 --image --traced --format json"
    # trace: per-op rows of the real modules on meta, at small sizes
    yield "trace --model wan2.1-t2v-1.3b --size 64x48 --frames 5 --format json -q"
    yield "trace --model wan2.1-i2v-14b-480p --size 64x48 --frames 5 --stage vae_encode --format json -q"
    yield "trace --model wan2.1-vace-1.3b --size 64x48 --frames 5 --ref-images 1 --stage diffusion_core --format json -q"
    yield "trace --model wan2.2-ti2v-5b --size 64x64 --frames 5 --stage vae_decode --format json -q"
    yield "trace --model wan2.2-t2v-a14b --size 64x48 --frames 5 --stage diffusion_core_2 --format json -q"
    yield "trace --model wan2.1-t2v-1.3b --size 64x48 --frames 5 --stage diffusion_core --format csv -q"
    yield "trace --model wan2.1-t2v-1.3b --size 128x64 --frames 5 --stage diffusion_core --gpus 2 --ulysses 2 --format json -q"
    yield "trace --model wan2.1-t2v-1.3b --size 128x64 --frames 5 --stage diffusion_core --gpus 2 --ring 2 --format json -q"
    # sweep and plan
    yield "sweep --model wan2.1-t2v-1.3b,wan2.1-t2v-14b --frames 33,81 --steps 20,50 --format json"
    yield "sweep --model wan2.2-t2v-a14b --size 832x480,1280x720 --cfg on,off --format json"
    yield "sweep --model wan2.1-t2v-14b,wan2.2-ti2v-5b --gpu h100-sxm --frames 33,81 --format json"
    yield "sweep --model wan2.1-i2v-14b-480p --gpu a100-80gb --runtime wan --offload --steps 10,40 --format json"
    yield "sweep --model wan2.1-vace-1.3b,wan2.2-i2v-a14b --batch 1,2 --text-len 128,512 --format csv"
    yield "sweep --model wan2.1-vace-1.3b,wan2.2-i2v-a14b --text-len 128,512 --format csv"
    for m in ("wan2.1-t2v-14b", "wan2.1-i2v-14b-720p", "wan2.2-t2v-a14b", "wan2.2-ti2v-5b", "wan2.1-vace-14b"):
        yield f"plan --model {m} --gpu h100-sxm --gpus 8 --format json"
    yield "plan --model wan2.1-t2v-14b --gpu a100-80gb --gpus 4 --objective gpu-seconds --format json"
    yield "plan --model wan2.2-i2v-a14b --gpu h20 --gpus 8 --runtime wan --format json"
    yield "plan --model wan2.1-t2v-1.3b --gpu rtx4090 --gpus 2 --format json"
    yield "plan --model wan2.1-t2v-14b --gpu h100-sxm --gpus 8 --format table"
    # listings
    yield "models --format json"
    yield "gpus --format json"
    yield "gpus --format table"
    # diff of documents recorded above
    yield "diff {data}/000.json {data}/003.json --format json"
    yield "diff {data}/001.json {data}/001.json --format json"
    # video-to-video (added after the rest: earlier indices keep their recordings)
    yield "report --model wan2.1-v2v-14b --format json"
    yield "report --model wan2.1-v2v-1.3b --size 320x192 --frames 9 --steps 10 --strength 0.55 --format json"
    yield "report --model wan2.1-v2v-1.3b --gpu h100-sxm --strength 0.6 --format json"
    # prices and fleets (added after the rest)
    yield "prices --format json"
    yield "fleet --mix examples/mix.csv --rate 200/h --slo p95<=300s --gpu h100-sxm,h200,l40s --format json"
    yield "fleet --mix examples/mix.csv --rate 60/h --slo p90<=600s --gpu h100-sxm,rtx4090 --discipline sjf --format table"
    # Sparse VideoGen 2 (issue 23)
    yield "report --model wan2.1-i2v-14b-720p --gpu h100-sxm --optimise svg2:0.3 --format table"
    # torch.compile: launch cost out and memory-bound runs fused (issue 23)
    yield "report --model wan2.1-t2v-1.3b --gpu h200 --optimise fa3,compile --format json"
    # Wan2.2-Animate: a video in 77-frame segments (issue 24)
    yield "report --model wan2.2-animate-14b --frames 241 --gpu h100-sxm --format table"
    yield "report --model wan2.2-animate-14b --frames 241 --gpu h100-sxm --mode replace --format json"
    # Wan-Animate-2: the reference pass, its K/V cache and the block-masked FlexAttention (issue 24)
    yield "report --model wan-animate-2-14b --frames 241 --gpu h100-sxm --format table"
    yield "report --model wan-animate-2-14b-distilled --gpu h200 --format json"
    # Wan2.2-S2V: clips as the audio needs, the original WanModel_S2V (issue 24)
    yield "report --model wan2.2-s2v-14b --format json"
    yield "report --model wan2.2-s2v-14b --audio-seconds 10 --gpu h200 --format table"
    yield "report --model wan2.2-s2v-14b --audio-seconds 20 --size 832x448 --gpu h100-sxm --offload --format json"
    yield "report --model wan2.2-s2v-14b --audio-seconds 10 --gpu h100-sxm --gpus 8 --ulysses 8 --fsdp dit,text_encoder --format json"
    yield "sweep --model wan2.2-s2v-14b,wan2.1-t2v-1.3b --audio-seconds 5,10,20 --gpu h200 --format table"
    yield "report --model wan2.2-s2v-14b --audio-seconds 10 --pose-video --gpu h200 --format json"
    yield "report --model wan2.2-s2v-14b --audio-seconds 10 --gpu h200 --runtime lightx2v --format table"
    yield "report --model wan2.2-animate-14b --frames 241 --gpu h100-sxm --runtime wan --mode replace --format table"
    yield "report --model wan2.2-animate-14b --frames 241 --gpu h100-sxm --runtime wan --gpus 8 --ulysses 8 --fsdp dit,text_encoder --format json"
    yield "report --model wan2.2-animate-14b --frames 241 --gpu h100-sxm --runtime lightx2v --format table"
    yield "report --model wan2.2-animate-14b --frames 229 --prev-segment-conditioning-frames 5 --gpu h100-sxm --format table"
    yield "report --model wan2.1-t2v-14b --size 832x480 --gpu h100-sxm --runtime lightx2v --gpus 8 --ulysses 8 --format table"
    yield "report --model wan2.1-i2v-14b-480p --size 832x480 --gpu h100-sxm --runtime lightx2v --gpus 8 --ulysses 8 --format json"
    yield "report --model wan2.1-i2v-14b-480p --gpu h100-sxm --runtime wan --traced --size 320x192 --frames 9 --steps 2 --format json"
    yield "report --model wan2.2-s2v-14b --audio-seconds 10 --gpu h200 --runtime lightx2v --gpus 8 --ulysses 8 --format json"
    yield "report --model wan2.2-animate-14b --frames 241 --gpu h100-sxm --runtime lightx2v --gpus 8 --ulysses 8 --format json"
    yield "report --model wan2.2-animate-14b --frames 241 --gpu h100-sxm --runtime wan --mode replace --relighting-lora --format json"
    yield "report --model wan2.2-animate-14b --mode replace --relighting-lora --format json"
    yield "report --model wan-animate-2-14b-distilled --frames 81 --gpu h100-sxm --runtime lightx2v --format table"
    yield "report --model wan-animate-2-14b-distilled --frames 241 --gpu h100-sxm --runtime lightx2v --offload --format json"
    yield "report --model wan-animate-2-14b-distilled --frames 241 --gpu h100-sxm --runtime lightx2v --gpus 8 --ulysses 8 --format json"
    yield "report --model wan2.1-t2v-14b --size 832x480 --gpu rtx4090 --runtime lightx2v --offload --format table"
    yield "report --model wan2.1-t2v-14b --gpu h100-sxm --runtime fastvideo --format table"
    # Wan-Animate-2 on the original code: its segment plan and per-segment encodes, Ulysses with FSDP, and the refusal
    yield "report --model wan-animate-2-14b-distilled --frames 241 --gpu h100-sxm --runtime wan --format table"
    yield "report --model wan-animate-2-14b --frames 241 --size 1280x720 --gpu h100-sxm --runtime wan --gpus 8 --ulysses 8 --fsdp dit,text_encoder --format json"
    yield "plan --model wan-animate-2-14b-distilled --frames 241 --gpu h100-sxm --runtime wan --gpus 8 --format table"
    yield "report --model wan-animate-2-14b-distilled --gpu h100-sxm --runtime wan --gpus 8 --ulysses 8"


COMMANDS: tuple[str, ...] = tuple(_commands())


def run(command: str, out_dir: Path) -> tuple[int, bytes, str]:
    """Run one corpus command in-process: its exit code, the bytes it wrote to -o, what it said on stderr."""
    from hybrid.cli import main

    out = out_dir / "out"
    out.unlink(missing_ok=True)
    argv = [*shlex.split(command.replace("{data}", str(DATA))), "-o", str(out)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    said = err.getvalue().replace(str(out_dir), "{tmp}").replace(str(DATA), "{data}")
    data = out.read_bytes().replace(str(DATA).encode(), b"{data}") if out.exists() else b""
    return code, data, said  # the checkout's own path stands as {data}: the same bytes in any clone


BIG = 100_000  # outputs above this many bytes are stored gzip-compressed


def name(i: int, command: str, size: int) -> str:
    fmt = command.split("--format ")[1].split()[0] if "--format " in command else "txt"
    return f"{i:03d}.{fmt}" + (".gz" if size > BIG else "")


def recorded(entry: dict[str, object]) -> bytes:
    data = (DATA / str(entry["file"])).read_bytes()
    return gzip.decompress(data) if str(entry["file"]).endswith(".gz") else data


def record(only: set[int] | None = None) -> None:
    """Record every command (or only the indices ``only``, keeping the other recordings)."""
    kept = json.loads(INDEX.read_text()) if only is not None else []
    for old in DATA.glob("[0-9][0-9][0-9].*"):
        if only is None or int(old.name[:3]) in only:
            old.unlink()
    DATA.mkdir(parents=True, exist_ok=True)
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, command in enumerate(COMMANDS):
            if only is not None and i not in only:
                entries.append(kept[i])
                continue
            code, data, said = run(command, Path(tmp))
            file = name(i, command, len(data))
            (DATA / file).write_bytes(gzip.compress(data, mtime=0) if file.endswith(".gz") else data)
            entries.append(
                {
                    "command": command,
                    "exit": code,
                    "stderr": said,
                    "file": file,
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
            print(f"{i:3d} exit {code} {len(data):8d} B  {command}", file=sys.stderr)
    INDEX.write_text(json.dumps(entries, indent=1) + "\n")


if __name__ == "__main__":
    # python -m tests.cli_corpus [INDEX ...]: re-record every command, or only these
    record({int(a) for a in sys.argv[1:]} or None)
