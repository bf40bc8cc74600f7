"""--amp bf16 and --amp fp16 on every script: three steps on the CPU (autocast runs there in both
types, and GradScaler too), finite losses, the scalers' state in the checkpoint, and an fp16 run
resumed equal to an uninterrupted one (dcgan, wgan_gp: its penalty's gradient is scaled too)."""

import csv
import math

import pytest
import torch
from test_bad_input import ALL_SCRIPTS, SCRIPTS

import utils


def run(tmp_path, mnist_root, script, *flags, name="run"):
    main, script_flags = SCRIPTS[script]
    out = tmp_path / name
    main(["--data-root", str(mnist_root), "--out", str(out), *script_flags, "--batch-size", "16", "--log-every", "1",
          *flags])  # fmt: skip
    return out


def losses(run_dir):
    with open(run_dir / "losses.csv") as f:
        return [{k: v for k, v in row.items() if k != "images_per_s"} for row in csv.DictReader(f)]


@ALL_SCRIPTS
def test_three_steps_in_bf16_and_in_fp16(tmp_path, mnist_root, script):
    for amp in ("bf16", "fp16"):
        out = run(tmp_path, mnist_root, script, "--steps", "3", "--amp", amp, name=amp)
        rows = losses(out)
        assert [r["step"] for r in rows] == ["1", "2", "3"]
        assert all(math.isfinite(float(v)) for r in rows for k, v in r.items() if k not in ("step", "epoch"))
        ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt")
        assert ckpt["cfg"]["amp"] == amp and len(ckpt["scalers"]) == 2  # one scaler per optimizer
        scales = [s.get("scale") for s in ckpt["scalers"].values()]
        assert all(scale is None for scale in scales) if amp == "bf16" else all(scale > 1 for scale in scales)


@pytest.mark.parametrize("script", ["dcgan", "wgan_gp"])
def test_fp16_resume_equals_an_uninterrupted_run(tmp_path, mnist_root, script):
    straight = run(tmp_path, mnist_root, script, "--steps", "3", "--amp", "fp16", name="straight")
    split = run(tmp_path, mnist_root, script, "--steps", "1", "--amp", "fp16", name="split")
    SCRIPTS[script][0](["--resume", str(split / "checkpoints" / "last.pt"), "--steps", "3"])
    assert losses(split) == losses(straight)
    a, b = (utils.load_checkpoint(r / "checkpoints" / "last.pt") for r in (straight, split))
    assert a["scalers"] == b["scalers"]
    assert all(torch.equal(a["models"]["D"][k], b["models"]["D"][k]) for k in a["models"]["D"])


def test_bare_amp_is_bf16_and_fp16_is_refused_nowhere(tmp_path, mnist_root):
    out = run(tmp_path, mnist_root, "dcgan", "--steps", "1", "--amp", name="bare")
    assert utils.load_checkpoint(out / "checkpoints" / "last.pt")["cfg"]["amp"] == "bf16"
