"""wgan_gp.py on synthetic data: the penalty against closed forms, the ResNet's resampling,
one step on both architectures, exact resume of the schedule, the sampler, clean errors."""

import csv

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

import sampler
import utils
import wgan_gp

# tiny nets and batches: 2 critic steps of 8 images per generator step
FAST = ["--width", "8", "--batch-size", "8", "--n-critic", "2", "--log-every", "1", "--sample-size", "16"]


def run(tmp_path, mnist_root, *flags, name="run"):
    out = tmp_path / name
    wgan_gp.main(["--data-root", str(mnist_root), "--out", str(out), *FAST, *flags])
    return out


def losses(run_dir):
    with open(run_dir / "losses.csv") as f:
        return [{k: v for k, v in row.items() if k != "images_per_s"} for row in csv.DictReader(f)]


# --------------------------------------------------------------------------- the penalty
class LinearCritic(nn.Module):
    """f(x) = w . x over all of a sample's values: its input gradient is w everywhere."""

    def __init__(self, shape):
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_penalty_of_a_linear_critic_is_its_closed_form():
    """grad f = w at every x_hat, so the penalty is (||w|| - 1)^2, and its gradient w.r.t. w
    (through create_graph) is 2 (||w|| - 1) w / ||w||."""
    torch.manual_seed(0)
    D = LinearCritic((3, 4, 4))
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    penalty = wgan_gp.gradient_penalty(D, real, fake)
    norm = D.w.detach().norm()
    assert torch.allclose(penalty, (norm - 1) ** 2, rtol=1e-5)
    penalty.backward()
    assert torch.allclose(D.w.grad, 2 * (norm - 1) * D.w.detach() / norm, rtol=1e-4, atol=1e-6)


def test_penalty_mixes_each_sample_with_its_own_alpha_over_all_dimensions():
    """f(x) = ||x||^2 / 2 has gradient x, so the penalty is mean((||x_hat|| - 1)^2) with
    x_hat = real + alpha (fake - real), one alpha per sample drawn as the function draws it."""

    class HalfSquaredNorm(nn.Module):
        def forward(self, x):
            return 0.5 * x.flatten(1).pow(2).sum(1)

    real, fake = torch.randn(6, 2, 3, 3), torch.randn(6, 2, 3, 3)
    torch.manual_seed(1)
    penalty = wgan_gp.gradient_penalty(HalfSquaredNorm(), real, fake)
    torch.manual_seed(1)
    alpha = torch.rand(6, 1, 1, 1)
    x_hat = real + alpha * (fake - real)
    assert torch.allclose(penalty, ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean(), rtol=1e-5)


def test_penalty_is_fp32_under_autocast():
    D = LinearCritic((1, 4, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        penalty = wgan_gp.gradient_penalty(D, torch.randn(3, 1, 4, 4).bfloat16(), torch.randn(3, 1, 4, 4).bfloat16())
    assert penalty.dtype == torch.float32
    assert torch.allclose(penalty, (D.w.detach().norm() - 1) ** 2, rtol=1e-5)


# --------------------------------------------------------------------------- the ResNet's pieces
def test_depth_to_space_upsampling_is_nearest_neighbour():
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(wgan_gp.UpSample()(x), F.interpolate(x, scale_factor=2, mode="nearest"))


def test_space_to_depth_downsampling_is_mean_pooling():
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(wgan_gp.DownSample()(x), F.avg_pool2d(x, 2), atol=1e-6)


@pytest.mark.parametrize("critic_norm", ["none", "layer"])
def test_resnet_shapes(critic_norm):
    cfg = {"arch": "resnet", "z_dim": 16, "width": 8, "channels": 3, "critic_norm": critic_norm, "init": "tflib"}
    G, D = wgan_gp.build_generator(cfg), wgan_gp.build_critic(cfg)
    images = G(torch.randn(4, 16))
    assert images.shape == (4, 3, 32, 32) and images.abs().max() <= 1
    assert D(images).shape == (4,)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())  # the penalty is per sample
    assert any(isinstance(m, nn.GroupNorm) for m in D.modules()) == (critic_norm == "layer")


# --------------------------------------------------------------------------- the config, the batches
def test_paper_config_is_the_shared_values_then_the_experiments_then_the_changes():
    mnist, resnet = wgan_gp.paper_config("mnist"), wgan_gp.paper_config("resnet", batch_size=4)
    assert (mnist["lr"], mnist["beta1"], mnist["g_batch_size"]) == (1e-4, 0.5, 50)
    assert (mnist["z_dim"], mnist["n_critic"], mnist["gp_lambda"]) == (128, 5, 10.0)
    assert (resnet["lr"], resnet["beta1"], resnet["lr_decay"], resnet["g_batch_size"]) == (2e-4, 0.0, "linear", 8)
    assert wgan_gp.paper_config("resnet", batch_size=4, g_batch_size=5)["g_batch_size"] == 5


def test_the_ranks_shares_make_up_each_critic_batch():
    cfg = wgan_gp.paper_config("mnist", seed=3, batch_size=8, n_critic=2)
    data = torch.arange(200).view(200, 1, 1, 1).to(torch.uint8)
    one = list(wgan_gp.epoch_batches(data, cfg, 0, 1, "cpu"))
    shares = [list(wgan_gp.epoch_batches(data, cfg, 0, 1, "cpu", rank, 2)) for rank in range(2)]
    assert len(one) == 200 // 16 - 1 and all(len(s) == len(one) for s in shares)
    assert all(torch.equal(torch.cat([a, b], dim=1), whole) for a, b, whole in zip(*shares, one))


# --------------------------------------------------------------------------- training runs
def test_one_step_mnist_writes_outputs(tmp_path, mnist_root, capsys):
    out = run(tmp_path, mnist_root, "--steps", "1", "--train-range", "train:0:200")
    assert "wgan_gp: 200 mnist images" in capsys.readouterr().out
    assert Image.open(out / "samples" / "epoch_001.png").size == (2 + 10 * 30, 2 + 2 * 30)  # 16 samples, 10 a row
    assert Image.open(out / "progress.gif").n_frames == 1 and (out / "losses.png").exists()
    (row,) = losses(out)
    assert row["step"] == "1" and set(row) >= {"d_loss", "g_loss", "wasserstein", "penalty", "lr"}
    ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt", "wgan_gp")
    cfg = ckpt["cfg"]
    assert (cfg["arch"], cfg["image_size"], tuple(cfg["value_range"])) == ("mnist", 28, (0.0, 1.0))
    assert (cfg["lr"], cfg["beta1"], cfg["beta2"], cfg["z_dim"], cfg["gp_lambda"]) == (1e-4, 0.5, 0.9, 128, 10.0)
    assert ckpt["step"] == 1 and ckpt["fixed_noise"].shape == (16, 128)


def test_one_step_rgb_folder_gets_the_resnet(tmp_path, image_folder):
    out = tmp_path / "folder"
    wgan_gp.main(
        [
            "--dataset",
            "folder",
            "--image-folder",
            str(image_folder),
            "--workers",
            "0",
            "--steps",
            "1",
            "--out",
            str(out),
            *FAST[:2],
            "--batch-size",
            "4",
            *FAST[4:],
        ]
    )
    grid = Image.open(out / "samples" / "epoch_001.png")
    assert grid.mode == "RGB" and grid.size == (2 + 10 * 34, 2 + 2 * 34)
    cfg = utils.load_checkpoint(out / "checkpoints" / "last.pt")["cfg"]
    assert (cfg["arch"], cfg["lr"], cfg["beta1"], cfg["lr_decay"], cfg["g_batch_size"]) == (
        "resnet",
        2e-4,
        0.0,
        "linear",
        8,
    )


def test_epoch_is_one_pass_in_groups_of_n_critic_batches(tmp_path, mnist_root):
    out = run(tmp_path, mnist_root, "--epochs", "1", "--log-every", "1000")
    ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt")
    assert (ckpt["epoch"], ckpt["epoch_step"], ckpt["step"]) == (1, 0, 320 // (2 * 8))


def test_linear_decay_falls_to_zero_over_the_run(tmp_path, mnist_root):
    rows = losses(run(tmp_path, mnist_root, "--lr-decay", "linear", "--steps", "4"))
    # each row logs the rate its step used: 1e-4 (1 - step / 4) for steps 0..3
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-4 * (1 - s / 4) for s in range(4)])


def test_resume_matches_uninterrupted_run(tmp_path, mnist_root, monkeypatch):
    straight = run(tmp_path, mnist_root, "--steps", "3", "--lr-decay", "linear", name="straight")
    real_step, calls = wgan_gp.train_step, []

    def interrupted_on_third_step(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(wgan_gp, "train_step", interrupted_on_third_step)
    with pytest.raises(SystemExit) as stop:  # Ctrl-C: a saved stop, exit status 130
        run(tmp_path, mnist_root, "--steps", "3", "--lr-decay", "linear", name="split")
    assert stop.value.code == 130
    monkeypatch.setattr(wgan_gp, "train_step", real_step)
    split = tmp_path / "split"
    wgan_gp.main(["--resume", str(split / "checkpoints" / "last.pt")])
    assert losses(split) == losses(straight)
    a = utils.load_checkpoint(split / "checkpoints" / "last.pt")["models"]["G"]
    b = utils.load_checkpoint(straight / "checkpoints" / "last.pt")["models"]["G"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_losses(tmp_path, mnist_root):
    a = losses(run(tmp_path, mnist_root, "--steps", "2", name="a"))
    b = losses(run(tmp_path, mnist_root, "--steps", "2", name="b"))
    c = losses(run(tmp_path, mnist_root, "--steps", "2", "--seed", "1", name="c"))
    assert a == b and a[0]["wasserstein"] != c[0]["wasserstein"]


def test_layer_norm_and_amp_train(tmp_path, mnist_root):
    out = run(tmp_path, mnist_root, "--steps", "1", "--critic-norm", "layer", "--amp")
    (row,) = losses(out)
    assert np.isfinite(float(row["penalty"])) and np.isfinite(float(row["wasserstein"]))
    assert any(
        k.endswith("weight") and v.dim() == 1
        for k, v in utils.load_checkpoint(out / "checkpoints" / "last.pt")["models"]["D"].items()
        if "net.3" in k
    )


# --------------------------------------------------------------------------- sampler, errors
def test_sampler_on_a_wgan_gp_checkpoint(tmp_path, mnist_root):
    ckpt = str(run(tmp_path, mnist_root, "--steps", "1") / "checkpoints" / "last.pt")
    gen = sampler.Generator(ckpt, device="cpu")
    assert gen.script is wgan_gp and gen.value_range == (0.0, 1.0)
    assert Image.open(sampler.sample(ckpt, n=6, nrow=3, out=str(tmp_path / "s.png"))).size == (2 + 3 * 30, 2 + 2 * 30)
    assert Image.open(sampler.interpolate(ckpt, rows=2, steps=4, out=str(tmp_path / "i.png"))).size == (
        2 + 4 * 30,
        2 + 2 * 30,
    )
    sampler.export(ckpt, n=5, out=str(tmp_path / "e.npz"))
    images = np.load(tmp_path / "e.npz")["images"]
    expected = utils.to_uint8(gen(gen.noise(5, 0)), (0.0, 1.0))  # sigmoid outputs mapped from [0, 1]
    assert images.shape == (5, 28, 28, 1) and np.array_equal(images, expected)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--beta1", "1.0"], "--beta1 must be in [0, 1)"),
        (["--gp-lambda", "-1"], "--gp-lambda must be 0 or more"),
        (["--n-critic", "41"], "is more than the data set"),  # 41 x 8 > 320 images
        (["--width", "0"], "--width: must be a positive integer"),
    ],
)
def test_bad_flags_exit_with_one_line(tmp_path, mnist_root, flags, message):
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, mnist_root, *flags, name="x")
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- the authors' details
def test_tflib_initialisation_has_the_authors_standard_deviations():
    """tflib: convolutions He-uniform, std sqrt(4 / (fan_in + fan_out)) (the strided side's fan over
    stride^2), the he_init=False ones sqrt(2 / ...), linear maps Glorot; about 2.5x PyTorch's default
    on a 3x3 conv of 128 channels."""
    cfg = wgan_gp.paper_config("resnet", init="tflib", critic_norm="none")
    D, G = wgan_gp.build_critic(cfg), wgan_gp.build_generator(cfg)
    conv = D.blocks[2].main[2]  # a 3x3 conv, 128 -> 128
    assert conv.weight.std().item() == pytest.approx((4 / (2 * 128 * 9)) ** 0.5, rel=0.02)
    assert conv.bias.abs().sum() == 0
    shortcut = D.blocks[1].shortcut[0]  # a 1x1 conv the authors built with he_init=False
    assert shortcut.weight.std().item() == pytest.approx((2 / (2 * 128)) ** 0.5, rel=0.02)
    linear = G.net[0]  # 128 -> 4 x 4 x 128, Glorot
    assert linear.weight.std().item() == pytest.approx((2 / (128 + 2048)) ** 0.5, rel=0.02)
    default = wgan_gp.build_critic({**cfg, "init": "pytorch"}).blocks[2].main[2]
    assert (conv.weight.std() / default.weight.std()).item() == pytest.approx(2.45, rel=0.05)
    mnist = wgan_gp.paper_config("mnist", init="tflib", critic_norm="none")
    first = wgan_gp.build_critic(mnist).net[0]  # 5x5 conv 1 -> 64, stride 2: fan_out 64 x 25 / 4
    assert first.weight.std().item() == pytest.approx((4 / (25 + 64 * 25 / 4)) ** 0.5, rel=0.05)
    up = wgan_gp.build_generator(mnist).up2[0]  # 5x5 up-conv 128 -> 64, stride 2: fan_in 128 x 25 / 4
    assert up.weight.std().item() == pytest.approx((4 / (128 * 25 / 4 + 64 * 25)) ** 0.5, rel=0.02)


def test_cifar10_is_dequantised_as_the_authors_and_mnist_is_not():
    images = torch.tensor([0, 100, 255], dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 3, 32, 32).repeat(10, 1, 1, 1)
    cfg = wgan_gp.paper_config("resnet", seed=0, batch_size=6)  # 5 critic batches of 6: the 30 images
    (group,) = wgan_gp.epoch_batches(images, cfg, 0, 0, torch.device("cpu"))
    value = images[torch.randperm(30, generator=torch.Generator().manual_seed(0))].float().view(5, 6, 3, 32, 32)
    low = value / 128 - 1  # 2 (x / 256 - 0.5), then + U(0, 1/128)
    assert (group >= low).all() and (group <= low + 1 / 128 + 1e-6).all() and (group - low).std() > 1e-3
    mnist = wgan_gp.paper_config("mnist", seed=0, batch_size=6)
    (group,) = wgan_gp.epoch_batches(images[:, :1], mnist, 0, 0, torch.device("cpu"))
    assert torch.allclose(group.unique(), torch.tensor([0.0, 100 / 255, 1.0]))  # x / 255, as gan_mnist.py's data
