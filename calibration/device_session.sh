#!/usr/bin/env bash
# One lent GPU's measurements, in one call (a lease is minutes): run from the repository root on the
# GPU machine, with the wheels the image lacks in .whl/ (diffusers, simpy, jsonschema and its needs;
# transformers at CI's pin). Writes under $OUT: env.txt, kernels.json (calibration/measure_kernels.py),
# <gpu>.json (wanmeter calibrate-time), stages.json (calibration/measure_stages.py),
# verify/device_cuda.json (wanmeter verify --only device --device cuda). Each step has its own time
# limit, so one that overruns leaves the others theirs; every writer saves as it goes.
#
#     bash calibration/device_session.sh h200            # the measurements above
#     bash calibration/device_session.sh h200 profile    # then, in a second call: profile.json
#                                                        # (calibration/measure_profile.py)
#     bash calibration/device_session.sh h200 memory-ops # a third: memory_ops.json (memory-bound op
#                                                        # families, float32 products)
#     bash calibration/device_session.sh h200 wide-convolutions  # a fourth: Wan2.2's decoder convolutions
#     bash calibration/device_session.sh h200 narrow-convolutions  # a fifth: convolutions below the decoders'
#                                                        # reduction lengths (conv_in, LightVAE's widths)
#     bash calibration/device_session.sh h200 tae-convolutions  # TAEHV's 2D 3x3 convolutions, one frame a call
#     bash calibration/device_session.sh h200 s2v        # Wan2.2-S2V: profile_s2v.json (its original
#                                                        # WanModel_S2V, measure_profile.py --part s2v) and
#                                                        # stages_s2v.json (its VAE calls, measure_stages.py --cases s2v)
#     bash calibration/device_session.sh h200 checks     # calibrate-time and verify --device cuda alone
#     bash calibration/device_session.sh h200 lightvae   # stages_lightvae.json: the Wan2.1 VAE's bf16 decode at
#                                                        # its width and LightVAE's (measure_stages.py --cases lightvae)
#     bash calibration/device_session.sh h200 tile-convolutions  # the Wan2.1 decoder's on one 256-pixel tile
#     bash calibration/device_session.sh h200 tiling     # stages_tiling.json: the Wan2.1 VAE tiled (--vae-tiling),
#                                                        # float32 and bf16 (measure_stages.py --cases tiling)
#
# calibrate-comm needs two or more GPUs in one machine; a one-GPU lease cannot run it.
set -u
GPU=${1:?usage: device_session.sh GPU [measure|profile|memory-ops|wide-convolutions|narrow-convolutions|tae-convolutions|tile-convolutions|s2v|checks|lightvae|tiling]}
PART=${2:-measure}
OUT=${OUT:?OUT: the folder the results go to}
export PYTHONUNBUFFERED=1
if [ -d .whl ] && [ ! -d /tmp/site/diffusers ]; then  # once per machine: a second part in the same call reuses it
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    if ! python3 -c "import transformers.models.umt5" 2>/dev/null; then
        echo "transformers from .whl does not import here: using the image's"
        rm -rf /tmp/site/transformers /tmp/site/transformers-*
    fi
elif [ -d /tmp/site/diffusers ]; then
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
{
    nvidia-smi
    python3 -c 'import torch, diffusers, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda,
"cudnn", torch.backends.cudnn.version(), "diffusers", diffusers.__version__, "transformers", transformers.__version__)'
} > "$OUT/env.txt" 2>&1
tail -1 "$OUT/env.txt"
step() {  # step SECONDS NAME COMMAND...
    local limit=$1 name=$2
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@"
    echo "== $name: exit $? after $((SECONDS - t0)) s"
}
if [ "$PART" = memory-ops ] || [ "$PART" = wide-convolutions ] || [ "$PART" = narrow-convolutions ] ||
    [ "$PART" = tae-convolutions ] || [ "$PART" = tile-convolutions ]; then
    step 150 "$PART" python3 calibration/measure_kernels.py --gpu "$GPU" --part "$PART" \
        --out "$OUT/${PART//-/_}.json" --budget-s 120
    exit 0
fi
if [ "$PART" = s2v ]; then
    step 200 s2v-transformer python3 calibration/measure_profile.py --gpu "$GPU" --part s2v \
        --out "$OUT/profile_s2v.json" --budget-s 150
    step 100 s2v-vae python3 calibration/measure_stages.py --gpu "$GPU" --cases s2v --out "$OUT/stages_s2v.json" \
        --budget-s 60
    exit 0
fi
if [ "$PART" = lightvae ]; then
    step 100 lightvae python3 calibration/measure_stages.py --gpu "$GPU" --cases lightvae \
        --out "$OUT/stages_lightvae.json" --budget-s 60
    exit 0
fi
if [ "$PART" = tiling ]; then
    step 150 tiling python3 calibration/measure_stages.py --gpu "$GPU" --cases tiling \
        --out "$OUT/stages_tiling.json" --budget-s 120
    exit 0
fi
if [ "$PART" = checks ]; then
    step 80 calibrate-time python3 -m hybrid calibrate-time --device cuda --gpu "$GPU" --dtype bfloat16 --scale 4 \
        --model wan2.1-t2v-1.3b --out-dir "$OUT"
    step 170 verify python3 -m hybrid verify --only device --device cuda --out-dir "$OUT/verify"
    exit 0
fi
if [ "$PART" = profile ]; then
    step 330 profile python3 calibration/measure_profile.py --gpu "$GPU" --out "$OUT/profile.json" --budget-s 300
    exit 0
fi
step 100 kernels python3 calibration/measure_kernels.py --gpu "$GPU" --out "$OUT/kernels.json" --budget-s 85
step 150 calibrate-time python3 -m hybrid calibrate-time --device cuda --gpu "$GPU" --dtype bfloat16 --scale 4 \
    --model wan2.1-t2v-1.3b --out-dir "$OUT"
step 180 stages python3 calibration/measure_stages.py --gpu "$GPU" --out "$OUT/stages.json" --budget-s 140
step 110 verify python3 -m hybrid verify --only device --device cuda --out-dir "$OUT/verify"
