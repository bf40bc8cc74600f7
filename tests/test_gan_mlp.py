"""gan_mlp.py end to end on the 1-D mixture and synthetic MNIST: outputs, losses, modes, resume, sampler."""

import csv
import math

import pytest
import torch
from PIL import Image

import gan_mlp
import sampler
import utils

FAST_1D = ["--points", "256", "--batch-size", "32", "--log-every", "1", "--sample-size", "500"]
FAST_MNIST = ["--batch-size", "16", "--log-every", "1", "--sample-size", "16", "--g-hidden", "32", "--d-hidden", "32"]


def run_1d(tmp_path, *flags, name="run"):
    out = tmp_path / name
    gan_mlp.main(["--out", str(out), *FAST_1D, *flags])
    return out


def run_mnist(tmp_path, mnist_root, *flags, name="mnist"):
    out = tmp_path / name
    gan_mlp.main(["--dataset", "mnist", "--data-root", str(mnist_root), "--out", str(out), *FAST_MNIST, *flags])
    return out


def losses(run_dir):
    with open(run_dir / "losses.csv") as f:
        return [{k: v for k, v in row.items() if k != "samples_per_s"} for row in csv.DictReader(f)]


@pytest.mark.parametrize("loss", ["non-saturating", "minimax"])
def test_one_step_1d_writes_plot_gif_checkpoint_and_mode_columns(tmp_path, loss):
    out = run_1d(tmp_path, "--loss", loss, "--steps", "1")
    assert Image.open(out / "plots" / "epoch_001.png").size == (800, 350)  # legend beside the axes
    assert Image.open(out / "progress.gif").n_frames == 1
    rows = losses(out)
    assert len(rows) == 1 and rows[0]["step"] == "1"
    assert int(rows[0]["modes_covered"]) in (0, 1, 2)
    assert 0 <= float(rows[0]["mode1_weight"]) + float(rows[0]["mode2_weight"]) <= 1
    assert (float(rows[0]["g_loss"]) < 0) == (loss == "minimax")  # log(1 - D) < 0 < -log D
    ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt", "gan_mlp")
    assert (ckpt["step"], ckpt["epoch"], ckpt["epoch_step"]) == (1, 0, 1)
    assert ckpt["cfg"]["loss"] == loss and ckpt["cfg"]["image_size"] is None
    assert ckpt["fixed_noise"].shape == (500, 4)


def test_1d_epochs_roll_over_one_picture_each(tmp_path):
    out = run_1d(tmp_path, "--epochs", "2", "--save-every", "1", "--log-every", "100")
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert Image.open(out / "progress.gif").n_frames == 2
    assert {p.name for p in (out / "checkpoints").iterdir()} == {"epoch_001.pt", "epoch_002.pt", "last.pt"}
    assert [r["step"] for r in losses(out)] == ["8", "16"]  # 256 points / 32 a batch


def test_one_step_mnist_grid_and_checkpoint(tmp_path, mnist_root, capsys):
    out = run_mnist(tmp_path, mnist_root, "--steps", "1", "--batchnorm", "--train-range", "train:100:300")
    assert "gan_mlp: 200 mnist images" in capsys.readouterr().out  # --train-range keeps the rest held out
    assert Image.open(out / "samples" / "epoch_001.png").size == (2 + 8 * 30, 2 + 2 * 30)
    assert Image.open(out / "progress.gif").n_frames == 1
    assert "modes_covered" not in losses(out)[0]
    ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt", "gan_mlp")
    assert ckpt["step"] == 1 and ckpt["cfg"]["image_size"] == 28
    assert set(ckpt["models"]) == {"G", "D", "G_ema"} and set(ckpt["optimizers"]) == {"G", "D"}  # --ema 0.999 default
    G = gan_mlp.build_generator(ckpt["cfg"])
    G.load_state_dict(ckpt["models"]["G"])
    images = G.eval()(gan_mlp.sample_noise(ckpt["cfg"], 3))
    assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1


def test_generator_losses_are_the_two_formulas():
    logits = torch.tensor([-6.0, -1.0, 0.0, 2.0])
    d = torch.sigmoid(logits)
    minimax = gan_mlp.generator_loss(logits, "minimax")
    non_saturating = gan_mlp.generator_loss(logits, "non-saturating")
    assert torch.allclose(minimax, torch.log(1 - d).mean())
    assert torch.allclose(non_saturating, -torch.log(d).mean())
    # where D rejects a sample with confidence, minimax gives G almost no gradient, non-saturating a full one
    x = torch.tensor([-6.0], requires_grad=True)
    (grad_minimax,) = torch.autograd.grad(gan_mlp.generator_loss(x, "minimax"), x)
    (grad_non_saturating,) = torch.autograd.grad(gan_mlp.generator_loss(x, "non-saturating"), x)
    assert abs(grad_minimax.item()) < 0.003 and abs(grad_non_saturating.item()) > 0.99


def test_mode_coverage_on_hand_made_samples():
    low, high = gan_mlp.MIXTURE_MEANS
    collapsed = torch.full((1000, 1), high) + 0.01 * torch.randn(1000, 1)
    weights = gan_mlp.mode_weights(collapsed).tolist()
    assert gan_mlp.modes_covered(weights) == 1 and weights == pytest.approx([0.0, 1.0])
    between = torch.zeros(1000, 1)  # all mass in the gap between the modes covers nothing
    assert gan_mlp.modes_covered(gan_mlp.mode_weights(between).tolist()) == 0
    weights = gan_mlp.mode_weights(gan_mlp.sample_mixture(20_000, torch.Generator().manual_seed(0))).tolist()
    assert gan_mlp.modes_covered(weights) == 2
    assert weights == pytest.approx(gan_mlp.MIXTURE_WEIGHTS, abs=0.02)


def test_resume_matches_uninterrupted_run(tmp_path):
    straight = run_1d(tmp_path, "--steps", "3", name="straight")
    split = run_1d(tmp_path, "--steps", "1", name="split")
    gan_mlp.main(["--resume", str(split / "checkpoints" / "last.pt"), "--steps", "3"])
    assert utils.load_checkpoint(split / "checkpoints" / "last.pt")["step"] == 3
    assert losses(split) == losses(straight)
    assert [r["step"] for r in losses(split)] == ["1", "2", "3"]


def test_resume_refuses_to_change_the_loss(tmp_path):
    out = run_1d(tmp_path, "--steps", "1")
    with pytest.raises(SystemExit, match="--loss cannot change when resuming"):
        gan_mlp.main(["--resume", str(out / "checkpoints" / "last.pt"), "--loss", "minimax"])


def test_sampler_reads_mnist_checkpoint_and_refuses_1d(tmp_path, mnist_root):
    mnist = run_mnist(tmp_path, mnist_root, "--steps", "1")
    path = sampler.sample(
        str(mnist / "checkpoints" / "last.pt"), n=6, nrow=3, out=str(tmp_path / "g.png"), device="cpu"
    )
    assert Image.open(path).size == (2 + 3 * 30, 2 + 2 * 30)
    one_d = run_1d(tmp_path, "--steps", "1")
    with pytest.raises(SystemExit, match="hold no image generator") as exc:
        sampler.sample(str(one_d / "checkpoints" / "last.pt"), device="cpu")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch-size", "0"], "--batch-size: must be a positive integer"),
        (["--loss", "wasserstein"], "--loss: invalid choice"),
        (["--points", "10", "--batch-size", "32"], "larger than the data set"),
        (["--beta2", "1"], "--beta2 must be in [0, 1)"),
    ],
)
def test_bad_flags_exit_with_one_line(tmp_path, flags, message):
    with pytest.raises(SystemExit) as exc:
        gan_mlp.main(["--out", str(tmp_path / "x"), *flags])
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_mixture_points_are_seeded_and_in_range():
    cfg = {"dataset": "1d", "points": 5000, "seed": 3}
    a, b = gan_mlp.load_data(cfg, "cpu"), gan_mlp.load_data(cfg, "cpu")
    assert a.shape == (5000, 1) and torch.equal(a, b)
    assert a.abs().max() <= 1 and not torch.equal(a, gan_mlp.load_data({**cfg, "seed": 4}, "cpu"))
    assert math.isclose((a > 0).float().mean().item(), gan_mlp.MIXTURE_WEIGHTS[1], abs_tol=0.03)


def test_ctrl_c_saves_last_checkpoint(tmp_path, monkeypatch, capsys):
    real_step, calls = gan_mlp.train_step, []

    def interrupted_on_third_step(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(gan_mlp, "train_step", interrupted_on_third_step)
    with pytest.raises(SystemExit) as stop:
        run_1d(tmp_path, "--steps", "10")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    said = capsys.readouterr().err.splitlines()[-1]
    assert stop.value.code == 130 and said == f"interrupted at step 2; saved {last}; continue with --resume {last}"
    assert utils.load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 2
