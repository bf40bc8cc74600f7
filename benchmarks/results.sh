#!/usr/bin/env bash
# The README's results table: each script trained on real data, its own paper metric, and
# `sampler.py score` on its last checkpoint, beside real held-out images scored the same way.
#
#   bash benchmarks/results.sh                                   # every row, seed 0, one after another
#   SEEDS="0 1 2" bash benchmarks/results.sh dcgan-mnist bigan-mnist   # some rows, three seeds each
#   .venv/bin/python benchmarks/results_table.py runs/results    # the tables: mean +- std over the seeds
#
# Environment: MNIST_T10K, a folder with MNIST's t10k-*-idx*-ubyte.gz (default
# ../shared/data/mnist-t10k); DATA, the data root this makes (default data/results); OUT, where
# the runs go (default runs/results); SEEDS, the seeds of each row (default 0); THREADS, CPU
# threads per run (default 1, so that two rows can run side by side on two cores); DEVICE
# (default auto).
#
# MNIST: only its 10k test file is at hand, so DATA/MNIST/raw/ gets its first 8,000 digits as
# the training file and the last 2,000 as the test file (held out from every run and from the
# score classifier): `python benchmarks/split_mnist.py` makes the same split for your own runs.
# Fashion-MNIST: the full 60,000 + 10,000, from DATA/FashionMNIST/raw/ or Debian's
# dataset-fashion-mnist package.
#
# Each run of a row lands in OUT/ROW-seedS/ with ROW-seedS.train.log (what training printed, its
# own measures, its wall time) and ROW-seedS.score.log (`sampler.py score` of last.pt: of the average
# of G for runs with --ema, then of G itself, then of the real held-out images).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-data/results}
OUT=${OUT:-runs/results}
export OMP_NUM_THREADS=${THREADS:-1}
DEVICE=${DEVICE:-auto}

make_mnist_split() {
    [ -f "$DATA/MNIST/raw/t10k-labels-idx1-ubyte.gz" ] && return
    "$PY" benchmarks/split_mnist.py --t10k "${MNIST_T10K:-../shared/data/mnist-t10k}" --data-root "$DATA"
}

# train NAME SEED SCRIPT FLAGS...: a training run of row NAME with --seed SEED, its output in NAME-seedSEED.train.log
train() {
    local name=$1 seed=$2 script=$3; shift 3
    local run="$name-seed$seed" start=$SECONDS
    "$PY" "$script" --data-root "$DATA" --device "$DEVICE" --seed "$seed" "$@" 2>&1 | tr '\r' '\n' | grep -v '%|' \
        >> "$OUT/$run.train.log"
    echo "trained in $((SECONDS - start)) s with $OMP_NUM_THREADS thread(s) on $(uname -m)" >> "$OUT/$run.train.log"
}

# score NAME SEED HELD_OUT: sampler.py score of the run's last.pt (the average of G and G itself, where the run kept
# an average), and of the real held-out images (HELD_OUT, a data range; - for none)
score() {
    local run="$1-seed$2" held_out=$3
    local last="$OUT/$run/checkpoints/last.pt"
    {
        "$PY" sampler.py score --ckpt "$last" --n 10000 --device "$DEVICE"
        if "$PY" -c "import torch, sys; sys.exit('G_ema' not in torch.load(sys.argv[1], weights_only=True)['models'])" "$last"; then
            "$PY" sampler.py score --ckpt "$last" --n 10000 --device "$DEVICE" --raw
        fi
        [ "$held_out" = - ] || "$PY" sampler.py score --ckpt "$last" --images "$held_out" --device "$DEVICE"
    } > "$OUT/$run.score.log" 2>&1
}

# row NAME SEED HELD_OUT SCRIPT FLAGS...: train from scratch, then score
row() {
    local name=$1 seed=$2 held_out=$3 script=$4; shift 4
    rm -rf "$OUT/$name-seed$seed" "$OUT/$name-seed$seed".*.log && mkdir -p "$OUT"
    train "$name" "$seed" "$script" --out "$OUT/$name-seed$seed" "$@"
    score "$name" "$seed" "$held_out"
}

# montage DATA SEED: docs/results_DATA.png, one row per script's last checkpoint of its run with --seed SEED: 10 samples
# (noise seed 0; cyclegan: 10 held-out grey digits translated, G(a)), grey shown as RGB
montage() {
    "$PY" - "$OUT" "$1" "$2" <<'MONTAGE'
import sys
from pathlib import Path
import torch
from PIL import Image, ImageDraw
sys.path.insert(0, ".")
import sampler
out, data, seed = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
rows, names = [], []
for script in ("gan_mlp", "gan_maxout", "dcgan", "wgan_gp", "infogan", "bigan", "cyclegan"):
    ckpt = out / f"{script}-{data}-seed{seed}" / "checkpoints" / "last.pt"
    if not ckpt.exists():
        continue
    with torch.no_grad():
        if script == "cyclegan":
            model = sampler.Model(str(ckpt), "cpu")
            a = model.script.score_sets(model.cfg, 10, model.device)["a2b"][0]
            images = model.module("build_translator", "G")(model.to_model_range(sampler.fit_to(a, 32, 3)))[..., 2:-2, 2:-2]
        else:
            model = sampler.Generator(str(ckpt), "cpu")
            images = model(model.noise(10, 0))
    lo, hi = model.value_range
    rows.append(((images.float() - lo) / (hi - lo)).clamp(0, 1).expand(-1, 3, -1, -1))
    names.append(script)
label, size = 80, 28
sheet = Image.new("RGB", (label + 10 * (size + 2), len(rows) * (size + 2)), "white")
draw = ImageDraw.Draw(sheet)
for r, (row, name) in enumerate(zip(rows, names)):
    draw.text((4, r * (size + 2) + 8), name, fill="black")
    for c, image in enumerate(row):
        pixels = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        sheet.paste(Image.fromarray(pixels), (label + c * (size + 2), r * (size + 2)))
sheet.resize((2 * sheet.width, 2 * sheet.height), Image.NEAREST).save(f"docs/results_{data}.png", optimize=True)
print(f"docs/results_{data}.png: the seed-{seed} runs of {', '.join(names)}")
MONTAGE
}

make_mnist_split
MNIST=(--train-range train:0:8000)
EMA=(--ema 0.999)  # every run keeps an average of G: the score logs give FID with it and without
[ $# -gt 0 ] || set -- dcgan-mnist gan_mlp-mnist gan_maxout-mnist wgan_gp-mnist infogan-mnist bigan-mnist cyclegan-mnist \
    dcgan-fashion gan_mlp-fashion gan_maxout-fashion wgan_gp-fashion infogan-fashion bigan-fashion cyclegan-fashion \
    montage-mnist montage-fashion
for seed in ${SEEDS:-0}; do  # every row of a seed before the next seed
  for name in "$@"; do
    run="$OUT/$name-seed$seed"
    case $name in
    dcgan-mnist)      row "$name" "$seed" test:0:2000 dcgan.py "${MNIST[@]}" "${EMA[@]}" --epochs 25 --amp --save-every 5
                      "$PY" sampler.py score --ckpt "$run/checkpoints" --device "$DEVICE" > "$run.scores.log" 2>&1 ;;
    gan_mlp-mnist)    row "$name" "$seed" test:0:2000 gan_mlp.py --dataset mnist "${MNIST[@]}" "${EMA[@]}" --batchnorm \
                          --epochs 100 --amp ;;
    gan_maxout-mnist) row "$name" "$seed" test:0:2000 gan_maxout.py --train-range train:0:7000 \
                          --valid-range train:7000:8000 --test-range test:0:2000 "${EMA[@]}" --epochs 100
                      "$PY" gan_maxout.py --eval-parzen --ckpt "$run/checkpoints/last.pt" >> "$run.train.log" 2>&1 ;;
    wgan_gp-mnist)    row "$name" "$seed" test:0:2000 wgan_gp.py "${MNIST[@]}" "${EMA[@]}" --steps 600 --amp ;;
    wgan_gp-mnist-pytorch-init)  # before the authors' initialisation: PyTorch's defaults
                      row "$name" "$seed" test:0:2000 wgan_gp.py "${MNIST[@]}" "${EMA[@]}" --steps 600 --amp --init pytorch ;;
    infogan-mnist)    row "$name" "$seed" test:0:2000 infogan.py "${MNIST[@]}" --eval-range test:0:2000 "${EMA[@]}" \
                          --epochs 25 --amp ;;
    infogan-mnist-leak0.1)  # the paper's Table 1 slope, not the authors' code's
                      row "$name" "$seed" test:0:2000 infogan.py "${MNIST[@]}" --eval-range test:0:2000 "${EMA[@]}" \
                          --epochs 25 --amp --leak 0.1 ;;
    bigan-mnist)      # the probes after 30, 300 and 3,000 steps, then at the end: the same run, resumed
                      rm -rf "$run" "$run".*.log && mkdir -p "$OUT"
                      flags=("${MNIST[@]}" --eval-range test:0:2000 "${EMA[@]}" --epochs 150 --amp)
                      train "$name" "$seed" bigan.py --out "$run" "${flags[@]}" --steps 30
                      for steps in 300 3000; do
                          train "$name" "$seed" bigan.py --resume "$run/checkpoints/last.pt" --steps "$steps"
                      done
                      train "$name" "$seed" bigan.py --resume "$run/checkpoints/last.pt" --steps 9300
                      score "$name" "$seed" test:0:2000 ;;
    cyclegan-mnist)   row "$name" "$seed" - cyclegan.py "${MNIST[@]}" --eval-range test:0:2000 --ngf 16 --ndf 32 \
                          --batch-size 8 --epochs 6 --decay-epochs 3 ;;
    dcgan-fashion)    row "$name" "$seed" test:0:10000 dcgan.py --dataset fashion-mnist "${EMA[@]}" --epochs 5 --amp ;;
    gan_mlp-fashion)  row "$name" "$seed" test:0:10000 gan_mlp.py --dataset fashion-mnist "${EMA[@]}" --batchnorm \
                          --epochs 15 --amp ;;
    gan_maxout-fashion) row "$name" "$seed" test:0:10000 gan_maxout.py --dataset fashion-mnist "${EMA[@]}" --epochs 30
                      "$PY" gan_maxout.py --eval-parzen --ckpt "$run/checkpoints/last.pt" >> "$run.train.log" 2>&1 ;;
    wgan_gp-fashion)  row "$name" "$seed" test:0:10000 wgan_gp.py --dataset fashion-mnist "${EMA[@]}" --steps 600 --amp ;;
    infogan-fashion)  row "$name" "$seed" test:0:10000 infogan.py --dataset fashion-mnist "${EMA[@]}" --epochs 5 --amp ;;
    bigan-fashion)    row "$name" "$seed" test:0:10000 bigan.py --dataset fashion-mnist "${EMA[@]}" --epochs 20 --amp ;;
    cyclegan-fashion) row "$name" "$seed" - cyclegan.py --dataset fashion-mnist --ngf 16 --ndf 32 --batch-size 8 \
                          --epochs 1 --decay-epochs 1 ;;
    split)            ;;  # made above
    montage-mnist)    montage mnist "$seed" ;;
    montage-fashion)  montage fashion "$seed" ;;
    *) echo "unknown row $name" >&2; exit 2 ;;
    esac
  done
done
