"""gan_maxout.py: the 2014 model's pieces, its Parzen estimator against exact answers, and runs."""

import csv
import math
import shutil

import numpy as np
import pytest
import torch
from conftest import write_idx
from PIL import Image

import gan_maxout
import sampler
import utils

SMALL = [
    "--train-range",
    "train:0:200",
    "--valid-range",
    "train:200:300",
    "--test-range",
    "test:0:64",
    "--batch-size",
    "20",
    "--log-every",
    "1",
    "--sample-size",
    "16",
    "--g-hidden",
    "64",
    "--d-units",
    "16",
]


def run(tmp_path, mnist_root, *flags, name="run"):
    out = tmp_path / name
    gan_maxout.main(["--data-root", str(mnist_root), "--out", str(out), *SMALL, *flags])
    return out


def loss_rows(run_dir):
    with open(run_dir / "losses.csv") as f:
        return [{k: v for k, v in r.items() if k != "images_per_s"} for r in csv.DictReader(f)]


def test_parzen_matches_hand_computed_mixture():
    """Two centres in 2-D, sigma 1: p(0) = (N(0; 0, I) + N(0; (1, 0), I)) / 2."""
    mu = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    x = torch.tensor([[0.0, 0.0], [3.0, -1.0]])
    ll = gan_maxout.parzen_log_likelihood(x, mu, torch.tensor([1.0, 0.5]), batch_size=1)

    def exact(point, sigma):
        densities = [
            math.exp(-sum((a - b) ** 2 for a, b in zip(point, m)) / (2 * sigma**2)) / (2 * math.pi * sigma**2)
            for m in mu.tolist()
        ]
        return math.log(sum(densities) / 2)

    expected = torch.tensor([[exact(p, s) for s in (1.0, 0.5)] for p in x.tolist()])
    assert ll.shape == (2, 2)
    assert torch.allclose(ll, expected, atol=1e-4)


def test_parzen_of_gaussian_samples_approaches_the_smoothed_density():
    """Many samples of N(0, I) in 3-D: the window estimate at x tends to N(x; 0, (1 + sigma^2) I)."""
    torch.manual_seed(0)
    mu, x, sigma = torch.randn(200_000, 3), torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]]), 0.5
    var = 1 + sigma**2
    exact = -0.5 * (x**2).sum(1) / var - 1.5 * math.log(2 * math.pi * var)
    assert torch.allclose(gan_maxout.parzen_log_likelihood(x, mu, torch.tensor([sigma]))[:, 0], exact, atol=0.02)


def test_marginal_bias_init_is_logit_of_pixel_means():
    images = torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
    images[:2, 0, 0, 0] = 255  # pixel 0: mean 0.5 -> logit 0
    images[:, 0, 0, 1] = 255  # pixel 1: mean 1 -> clipped to 1 - 1e-7
    images[:1, 0, 0, 2] = 51  # pixel 2: mean 0.05
    G = gan_maxout.build_generator({"z_dim": 4, "g_hidden": 8, "g_init_range": 0.05})
    gan_maxout.init_sigmoid_bias_from_marginals(G, images)
    bias = G.net[-2].bias.detach()
    assert bias[0].abs() < 1e-6
    assert bias[1] == pytest.approx(math.log((1 - 1e-7) / 1e-7), rel=1e-3)
    assert bias[2] == pytest.approx(math.log(0.05 / 0.95), rel=1e-5)
    assert bias[3] == pytest.approx(math.log(1e-7 / (1 - 1e-7)), rel=1e-3)  # a pixel that is always 0


def test_maxout_takes_max_over_consecutive_pieces():
    layer = gan_maxout.Maxout(2, units=2, pieces=3)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[1.0, 0], [2, 0], [3, 0], [0, 1], [0, -1], [0, 0]]))
        layer.linear.bias.zero_()
    assert layer(torch.tensor([[1.0, 2.0]])).tolist() == [[3.0, 2.0]]


def test_paper_schedules():
    cfg = vars(gan_maxout.build_parser().parse_args([]))
    assert gan_maxout.learning_rate(cfg, 0) == 0.1
    assert gan_maxout.learning_rate(cfg, 1000) == pytest.approx(0.1 / 1.000004**1000)
    assert gan_maxout.learning_rate(cfg, 10**8) == 1e-6
    assert gan_maxout.momentum(cfg, 0) == 0.5  # epoch 1
    assert gan_maxout.momentum(cfg, 249) == pytest.approx(0.7)  # epoch 250
    assert gan_maxout.momentum(cfg, 124) == pytest.approx(0.5 + 0.2 * 124 / 249)
    assert gan_maxout.momentum(cfg, 900) == pytest.approx(0.7)


def test_one_epoch_writes_outputs_and_samples_in_unit_range(tmp_path, mnist_root):
    out = run(tmp_path, mnist_root, "--epochs", "1")
    assert Image.open(out / "samples" / "epoch_001.png").size == (2 + 10 * 30, 2 + 2 * 30)
    assert Image.open(out / "progress.gif").n_frames == 1
    rows = loss_rows(out)
    assert len(rows) == 10 and float(rows[0]["lr"]) == pytest.approx(0.1) and float(rows[0]["momentum"]) == 0.5
    ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt", "gan_maxout")
    assert ckpt["epoch"] == 1 and ckpt["step"] == 10
    images = sampler.Generator(str(out / "checkpoints" / "last.pt"))(torch.zeros(3, 100))
    assert images.shape == (3, 1, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_resume_matches_uninterrupted_run(tmp_path, mnist_root):
    straight = run(tmp_path, mnist_root, "--steps", "3", name="straight")
    split = run(tmp_path, mnist_root, "--steps", "2", name="split")
    gan_maxout.main(["--resume", str(split / "checkpoints" / "last.pt"), "--steps", "3"])
    assert loss_rows(split) == loss_rows(straight) and len(loss_rows(split)) == 3


def test_eval_parzen_on_a_checkpoint(tmp_path, mnist_root, capsys):
    out = run(tmp_path, mnist_root, "--steps", "2")
    mean, stderr = gan_maxout.main(
        [
            "--eval-parzen",
            "--ckpt",
            str(out / "checkpoints" / "last.pt"),
            "--parzen-samples",
            "500",
            "--parzen-valid",
            "50",
            "--parzen-batch",
            "16",
        ]
    )
    assert math.isfinite(mean) and 0 < stderr < 100
    assert "Parzen log-likelihood of mnist test:0:64 under 500 samples" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--eval-parzen"], "--eval-parzen needs --ckpt"),
        (["--train-range", "train:5:2"], "expected train|test:START:STOP"),
        (["--train-range", "test:0:99999"], "asks for more than the 64 test images"),
        (["--d-input-keep", "0"], "--d-input-keep must be in (0, 1]"),
        (["--momentum-end", "1.2"], "--momentum-end must be in [0, 1)"),
        (["--batch-size", "-3"], "must be a positive integer"),
    ],
)
def test_bad_input_exits_with_one_line(tmp_path, mnist_root, flags, message):
    with pytest.raises(SystemExit) as exc:
        gan_maxout.main(["--data-root", str(mnist_root), "--out", str(tmp_path / "x"), *flags])
    assert message in str(exc.value) and "\n" not in str(exc.value)


@pytest.fixture(scope="module")
def ten_thousand_train_images(tmp_path_factory, mnist_root):
    """A data root whose MNIST train file holds 10,000 (blank) images, not 60,000; its test file the fixture's 64."""
    root = tmp_path_factory.mktemp("small_mnist")
    raw = root / "MNIST" / "raw"
    shutil.copytree(mnist_root / "MNIST" / "raw", raw)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((10_000, 28, 28)))
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(10_000))
    return root


def test_paper_ranges_on_a_smaller_file_name_the_flags_and_values_that_fit(tmp_path, ten_thousand_train_images, capsys):
    root = str(ten_thousand_train_images)
    with pytest.raises(SystemExit) as exc:
        gan_maxout.main(["--data-root", root, "--out", str(tmp_path / "x")])
    message = str(exc.value)
    assert "\n" not in message and not (tmp_path / "x").exists()
    assert message.startswith("error: --train-range train:0:50000 asks for more than the 10000 train images")
    suggested = "--train-range train:0:7000 --valid-range train:7000:8000 --test-range train:8000:10000"
    assert message.endswith(f"e.g. {suggested}")
    tiny = ["--batch-size", "20", "--steps", "1", "--log-every", "1", "--sample-size", "16", "--g-hidden", "8"]
    out = gan_maxout.main(["--data-root", root, "--out", str(tmp_path / "run"), *suggested.split(), *tiny])
    assert (out / "checkpoints" / "last.pt").is_file() and "7000 mnist images (train:0:7000)" in capsys.readouterr().out


def test_held_out_range_too_large_is_refused_before_training(tmp_path, ten_thousand_train_images):
    """The test range is not read until the run is scored, where it can no longer change: it is checked first."""
    flags = ["--data-root", str(ten_thousand_train_images), "--out", str(tmp_path / "x")]
    with pytest.raises(SystemExit) as exc:
        gan_maxout.main([*flags, "--train-range", "train:0:7000", "--valid-range", "train:7000:8000"])
    message = str(exc.value)
    assert message.startswith("error: --test-range test:0:10000 asks for more than the 64 test images")
    assert "--train-range test:0:44 --valid-range test:44:51 --test-range test:51:64" in message
    assert "\n" not in message and not (tmp_path / "x").exists()
