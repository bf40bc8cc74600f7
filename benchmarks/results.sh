#!/usr/bin/env bash
# The README's results table: each script trained on real data, its own paper metric, and
# `sampler.py score` on its last checkpoint, beside real held-out images scored the same way.
#
#   bash benchmarks/results.sh                      # every row, one after another
#   bash benchmarks/results.sh dcgan-mnist bigan-fashion   # some rows
#   DATA=data bash benchmarks/results.sh split      # only the MNIST split below, for your own runs
#
# Environment: MNIST_T10K, a folder with MNIST's t10k-*-idx*-ubyte.gz (default
# ../shared/data/mnist-t10k); DATA, the data root this makes (default data/results); OUT, where
# the runs go (default runs/results); THREADS, CPU threads per run (default 1, so that two rows
# can run side by side on two cores); DEVICE (default auto).
#
# MNIST: only its 10k test file is at hand, so DATA/MNIST/raw/ gets its first 8,000 digits as
# the training file and the last 2,000 as the test file (held out from every run and from the
# score classifier). Fashion-MNIST: the full 60,000 + 10,000, from DATA/FashionMNIST/raw/ or
# Debian's dataset-fashion-mnist package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-data/results}
OUT=${OUT:-runs/results}
export OMP_NUM_THREADS=${THREADS:-1}
DEVICE=${DEVICE:-auto}

make_mnist_split() {
    [ -f "$DATA/MNIST/raw/t10k-labels-idx1-ubyte.gz" ] && return
    "$PY" - "${MNIST_T10K:-../shared/data/mnist-t10k}" "$DATA/MNIST/raw" <<'EOF'
import gzip, struct, sys
from pathlib import Path
import numpy as np
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
for kind in ("images-idx3", "labels-idx1"):
    data = gzip.open(src / f"t10k-{kind}-ubyte.gz").read()
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    for split, part in (("train", array[:8000]), ("t10k", array[8000:])):
        with gzip.open(dst / f"{split}-{kind}-ubyte.gz", "wb") as f:
            f.write(struct.pack(">BBBB", 0, 0, 8, part.ndim) + struct.pack(f">{part.ndim}I", *part.shape))
            f.write(part.tobytes())
EOF
}

# row NAME HELD_OUT SCRIPT FLAGS...: train, then score the last checkpoint and the real held-out images
row() {
    local name=$1 held_out=$2 script=$3; shift 3
    local dir="$OUT/$name"
    rm -rf "$dir" && mkdir -p "$OUT"
    local start=$SECONDS
    "$PY" "$script" --data-root "$DATA" --device "$DEVICE" --out "$dir" "$@" 2>&1 | tr '\r' '\n' | grep -v '%|' > "$OUT/$name.train.log"
    echo "trained in $((SECONDS - start)) s with $OMP_NUM_THREADS thread(s) on $(uname -m)" >> "$OUT/$name.train.log"
    {
        "$PY" sampler.py score --ckpt "$dir/checkpoints/last.pt" --n 10000 --device "$DEVICE"
        [ "$script" = cyclegan.py ] || "$PY" sampler.py score --ckpt "$dir/checkpoints/last.pt" --images "$held_out" --device "$DEVICE"
    } > "$OUT/$name.score.log" 2>&1
}

# montage DATA: docs/results_DATA.png, one row per script's last checkpoint: 10 samples from seed 0
# (cyclegan: 10 held-out grey digits translated, G(a)), grey shown as RGB
montage() {
    "$PY" - "$OUT" "$1" <<'MONTAGE'
import sys
from pathlib import Path
import torch
from PIL import Image, ImageDraw
sys.path.insert(0, ".")
import sampler
out, data = Path(sys.argv[1]), sys.argv[2]
rows, names = [], []
for script in ("gan_mlp", "gan_maxout", "dcgan", "wgan_gp", "infogan", "bigan", "cyclegan"):
    ckpt = out / f"{script}-{data}" / "checkpoints" / "last.pt"
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
print(f"docs/results_{data}.png: {', '.join(names)}")
MONTAGE
}

make_mnist_split
MNIST=(--train-range train:0:8000)
[ $# -gt 0 ] || set -- dcgan-mnist gan_mlp-mnist gan_maxout-mnist wgan_gp-mnist infogan-mnist bigan-mnist cyclegan-mnist \
    dcgan-fashion gan_mlp-fashion gan_maxout-fashion wgan_gp-fashion infogan-fashion bigan-fashion cyclegan-fashion \
    montage-mnist montage-fashion
for name in "$@"; do
    case $name in
    dcgan-mnist)      row "$name" test:0:2000 dcgan.py "${MNIST[@]}" --epochs 25 --amp --save-every 5
                      "$PY" sampler.py score --ckpt "$OUT/$name/checkpoints" --device "$DEVICE" > "$OUT/$name.scores.log" 2>&1 ;;
    gan_mlp-mnist)    row "$name" test:0:2000 gan_mlp.py --dataset mnist "${MNIST[@]}" --batchnorm --epochs 100 --amp ;;
    gan_maxout-mnist) row "$name" test:0:2000 gan_maxout.py --train-range train:0:7000 --valid-range train:7000:8000 \
                          --test-range test:0:2000 --epochs 500
                      "$PY" gan_maxout.py --eval-parzen --ckpt "$OUT/$name/checkpoints/last.pt" >> "$OUT/$name.train.log" 2>&1 ;;
    wgan_gp-mnist)    row "$name" test:0:2000 wgan_gp.py "${MNIST[@]}" --steps 1600 --amp ;;
    infogan-mnist)    row "$name" test:0:2000 infogan.py "${MNIST[@]}" --eval-range test:0:2000 --epochs 25 --amp ;;
    bigan-mnist)      row "$name" test:0:2000 bigan.py "${MNIST[@]}" --eval-range test:0:2000 --epochs 200 --amp ;;
    cyclegan-mnist)   row "$name" - cyclegan.py "${MNIST[@]}" --eval-range test:0:2000 --ngf 16 --ndf 32 \
                          --batch-size 8 --epochs 6 --decay-epochs 3 ;;
    dcgan-fashion)    row "$name" test:0:10000 dcgan.py --dataset fashion-mnist --epochs 5 --amp ;;
    gan_mlp-fashion)  row "$name" test:0:10000 gan_mlp.py --dataset fashion-mnist --batchnorm --epochs 15 --amp ;;
    gan_maxout-fashion) row "$name" test:0:10000 gan_maxout.py --dataset fashion-mnist --epochs 30
                      "$PY" gan_maxout.py --eval-parzen --ckpt "$OUT/$name/checkpoints/last.pt" >> "$OUT/$name.train.log" 2>&1 ;;
    wgan_gp-fashion)  row "$name" test:0:10000 wgan_gp.py --dataset fashion-mnist --epochs 5 --amp ;;
    infogan-fashion)  row "$name" test:0:10000 infogan.py --dataset fashion-mnist --epochs 5 --amp ;;
    bigan-fashion)    row "$name" test:0:10000 bigan.py --dataset fashion-mnist --epochs 25 --amp ;;
    cyclegan-fashion) row "$name" - cyclegan.py --dataset fashion-mnist --ngf 16 --ndf 32 --batch-size 8 \
                          --epochs 1 --decay-epochs 1 ;;
    split)            ;;  # made above
    montage-mnist)    montage mnist ;;
    montage-fashion)  montage fashion ;;
    *) echo "unknown row $name" >&2; exit 2 ;;
    esac
done
