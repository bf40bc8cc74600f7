"""dcgan.py end to end on synthetic data: outputs, resume, reproducibility, clean errors."""

import csv
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, synthetic_digits, write_idx
from PIL import Image

import dcgan
import sampler
import utils

FAST = ["--batch-size", "16", "--log-every", "1", "--sample-size", "16"]


def run(tmp_path, mnist_root, *flags, name="run"):
    out = tmp_path / name
    dcgan.main(["--data-root", str(mnist_root), "--out", str(out), *FAST, *flags])
    return out


def losses(run_dir):
    with open(run_dir / "losses.csv") as f:
        return [{k: v for k, v in row.items() if k != "images_per_s"} for row in csv.DictReader(f)]


def test_one_step_mnist_writes_samples_gif_checkpoint(tmp_path, mnist_root, capsys):
    out = run(tmp_path, mnist_root, "--steps", "1")
    assert "dcgan: 320 mnist images" in capsys.readouterr().out
    run(tmp_path, mnist_root, "--steps", "1", "--train-range", "test:0:48", name="range")
    assert "dcgan: 48 mnist images" in capsys.readouterr().out
    grid = Image.open(out / "samples" / "epoch_001.png")
    assert grid.size == (2 + 8 * 30, 2 + 2 * 30)  # 16 samples of 28x28, 8 per row, 2 px padding
    assert Image.open(out / "progress.gif").n_frames == 1
    assert (out / "losses.png").stat().st_size > 0
    rows = losses(out)
    assert len(rows) == 1 and rows[0]["step"] == "1"
    ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt", "dcgan")
    assert ckpt["step"] == 1 and ckpt["epoch"] == 0 and ckpt["epoch_step"] == 1
    assert not list((out / "checkpoints").glob("*.tmp"))


def test_one_step_image_folder_rgb(tmp_path, image_folder):
    out = tmp_path / "folder"
    dcgan.main(
        [
            "--dataset",
            "folder",
            "--image-folder",
            str(image_folder),
            "--image-size",
            "32",
            "--workers",
            "0",
            "--steps",
            "1",
            "--out",
            str(out),
            *FAST,
        ]
    )
    assert Image.open(out / "samples" / "epoch_001.png").size == (2 + 8 * 34, 2 + 2 * 34)
    assert Image.open(out / "samples" / "epoch_001.png").mode == "RGB"
    assert utils.load_checkpoint(out / "checkpoints" / "last.pt")["cfg"]["channels"] == 3


def test_full_epochs_roll_over_and_keep_epoch_checkpoints(tmp_path, mnist_root):
    out = run(tmp_path, mnist_root, "--epochs", "2", "--save-every", "1", "--log-every", "100")
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert Image.open(out / "progress.gif").n_frames == 2
    assert {p.name for p in (out / "checkpoints").iterdir()} == {"epoch_001.pt", "epoch_002.pt", "last.pt"}
    ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt")
    assert (ckpt["epoch"], ckpt["epoch_step"], ckpt["step"]) == (2, 0, 2 * (320 // 16))
    assert [r["step"] for r in losses(out)] == ["20", "40"]  # windows flush at each epoch's end


def test_resume_matches_uninterrupted_run(tmp_path, mnist_root):
    straight = run(tmp_path, mnist_root, "--steps", "3", name="straight")
    split = run(tmp_path, mnist_root, "--steps", "1", name="split")
    dcgan.main(["--resume", str(split / "checkpoints" / "last.pt"), "--steps", "3"])
    assert utils.load_checkpoint(split / "checkpoints" / "last.pt")["step"] == 3
    assert losses(split) == losses(straight)
    assert [r["step"] for r in losses(split)] == ["1", "2", "3"]


def test_same_seed_same_losses_other_seed_differs(tmp_path, mnist_root):
    a = losses(run(tmp_path, mnist_root, "--steps", "2", name="a"))
    b = losses(run(tmp_path, mnist_root, "--steps", "2", name="b"))
    c = losses(run(tmp_path, mnist_root, "--steps", "2", "--seed", "1", name="c"))
    assert a == b
    assert a[0]["d_loss"] != c[0]["d_loss"]


def test_stabiliser_flags_train(tmp_path, mnist_root):
    out = run(
        tmp_path,
        mnist_root,
        "--steps",
        "1",
        "--spectral-norm",
        "--real-label",
        "0.9",
        "--lr-d",
        "4e-4",
        "--noise",
        "normal",
        "--z-dim",
        "16",
    )
    ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt")
    assert any("parametrizations" in k for k in ckpt["models"]["D"])
    assert ckpt["fixed_noise"].shape == (16, 16)


def test_resume_refuses_to_change_the_model(tmp_path, mnist_root):
    out = run(tmp_path, mnist_root, "--steps", "1")
    with pytest.raises(SystemExit, match="--lr-g cannot change when resuming"):
        dcgan.main(["--resume", str(out / "checkpoints" / "last.pt"), "--lr-g", "1e-3"])


def test_ctrl_c_saves_last_checkpoint(tmp_path, mnist_root, monkeypatch, capsys):
    real_step, calls = dcgan.train_step, []

    def interrupted_on_third_step(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(dcgan, "train_step", interrupted_on_third_step)
    with pytest.raises(SystemExit) as stop:
        run(tmp_path, mnist_root, "--steps", "10")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    said = capsys.readouterr().err.splitlines()[-1]
    assert stop.value.code == 130 and said == f"interrupted at step 2; saved {last}; continue with --resume {last}"
    assert utils.load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 2


def test_mnist_gz_files_and_resized_images(tmp_path):
    """.gz IDX files alone (as distributed) are unpacked; --image-size 32 resizes once."""
    import gzip

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 48), ("t10k", 8)):
        images, labels = synthetic_digits(n, 0)
        write_idx(tmp_path / "img", images)
        write_idx(tmp_path / "lbl", labels)
        for src, name in (("img", "images-idx3"), ("lbl", "labels-idx1")):
            (raw / f"{split}-{name}-ubyte.gz").write_bytes(gzip.compress((tmp_path / src).read_bytes()))
    data = dcgan.load_data({"dataset": "mnist", "data_root": str(tmp_path), "image_size": 32}, torch.device("cpu"))
    assert data.shape == (48, 1, 32, 32) and data.dtype == torch.uint8


def test_fashion_mnist_from_debian_package_folder(tmp_path, mnist_root, monkeypatch):
    monkeypatch.setattr(utils, "DEBIAN_FASHION_MNIST", mnist_root / "MNIST" / "raw")
    images, labels = utils.load_mnist_family("fashion-mnist", tmp_path / "empty")
    assert images.shape == (320, 28, 28) and labels.shape == (320,)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch-size", "0"], "--batch-size: must be a positive integer"),
        (["--image-size", "30"], "--image-size must be 28 or a power of two"),
        (["--real-label", "1.5"], "--real-label must be in (0, 1]"),
        (["--batch-size", "1000"], "larger than the data set"),
        (["--dataset", "folder"], "needs --image-folder"),
        (["--beta1", "1.5"], "--beta1 must be in [0, 1)"),
        (["--workers", "-1"], "--workers must be 0 or more"),
        (
            ["--dataset", "cifar10", "--train-range", "test:0:10"],
            "--train-range picks images of mnist or fashion-mnist",
        ),
        (["--train-range", "test:0:999"], "asks for more than the 64 test images"),
    ],
)
def test_bad_flags_exit_with_one_line(tmp_path, mnist_root, flags, message):
    with pytest.raises(SystemExit) as exc:
        dcgan.main(["--data-root", str(mnist_root), "--out", str(tmp_path / "x"), *flags])
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / "x").exists()  # a refused run leaves no empty run folder behind


@pytest.mark.parametrize(
    "dataset, hint", [("mnist", "train-images-idx3-ubyte.gz"), ("cifar10", "cifar-10-python.tar.gz")]
)
def test_missing_data_says_where_to_put_files(tmp_path, dataset, hint):
    with pytest.raises(SystemExit) as exc:
        dcgan.main(["--dataset", dataset, "--data-root", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")])
    assert hint in str(exc.value) and str(tmp_path / "nothing") in str(exc.value)
    assert "\n" not in str(exc.value) and not (tmp_path / "x").exists()
    assert "Error" not in str(exc.value) and "()" not in str(exc.value)  # nothing that says nothing


def test_bad_checkpoints_are_refused(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02 not a checkpoint at all")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    for path, message in (
        (corrupt, r"corrupt.pt is not a checkpoint of this repository \(not a PyTorch file, or damaged\)$"),
        (foreign, r"foreign.pt is not a checkpoint of this repository \(a PyTorch file, but not one its scripts"),
        (tmp_path / "missing.pt", "does not exist"),
    ):
        with pytest.raises(SystemExit, match=message):
            dcgan.main(["--resume", str(path)])


def test_command_line_error_is_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "dcgan.py"), "--batch-size", "0"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "--batch-size" in result.stderr


def test_bf16_autocast_trains_close_to_fp32(tmp_path, mnist_root):
    fp32 = losses(run(tmp_path, mnist_root, "--steps", "1", name="fp32"))[0]
    bf16 = losses(run(tmp_path, mnist_root, "--steps", "1", "--amp", name="bf16"))[0]
    assert bf16 != fp32  # autocast really changed the arithmetic...
    assert abs(float(bf16["d_loss"]) - float(fp32["d_loss"])) < 0.05  # ...but not the result


# --------------------------------------------------------------------------- the average of G (--ema)
def test_ema_update_on_a_known_case():
    G, G_ema = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        G.weight.fill_(1.0), G_ema.weight.fill_(0.0)
        G.running_mean.fill_(2.0), G_ema.running_mean.fill_(0.0)
        G.num_batches_tracked.fill_(7)
    dcgan.update_ema(G_ema, G, 0.75)
    assert torch.allclose(G_ema.weight, torch.full((3,), 0.25))  # 0.75 * 0 + 0.25 * 1
    assert torch.allclose(G_ema.running_mean, torch.full((3,), 0.5))  # batch norm's statistics averaged alike
    assert int(G_ema.num_batches_tracked) == 7  # its step counter copied
    assert dcgan.ema_decay(0.999, 0) == pytest.approx(0.1) and dcgan.ema_decay(0.999, 90) == pytest.approx(0.91)
    assert dcgan.ema_decay(0.999, 10**6) == 0.999  # the warm-up ends


def test_ema_is_checkpointed_resumes_exactly_and_is_what_the_sampler_draws(tmp_path, mnist_root):
    straight = run(tmp_path, mnist_root, "--steps", "3", "--ema", "0.99", name="straight")
    split = run(tmp_path, mnist_root, "--steps", "1", "--ema", "0.99", name="split")
    dcgan.main(["--resume", str(split / "checkpoints" / "last.pt"), "--steps", "3"])
    a, b = (utils.load_checkpoint(r / "checkpoints" / "last.pt")["models"] for r in (straight, split))
    assert set(a) == {"G", "D", "G_ema"} and all(torch.equal(a["G_ema"][k], b["G_ema"][k]) for k in a["G_ema"])
    assert any(not torch.equal(a["G_ema"][k], a["G"][k]) for k in a["G"])  # an average, not a copy of G
    last = str(straight / "checkpoints" / "last.pt")
    averaged, raw = sampler.Generator(last, "cpu"), sampler.Generator(last, "cpu", raw=True)
    z = averaged.noise(4, 0)
    assert not torch.equal(averaged(z), raw(z))
    assert all(torch.equal(averaged.G.state_dict()[k], a["G_ema"][k]) for k in a["G_ema"])
    default = run(tmp_path, mnist_root, "--steps", "1", name="default")
    assert set(utils.load_checkpoint(default / "checkpoints" / "last.pt")["models"]) == {"G", "D", "G_ema"}  # on
    without = run(tmp_path, mnist_root, "--steps", "1", "--ema", "0", name="without")
    assert set(utils.load_checkpoint(without / "checkpoints" / "last.pt")["models"]) == {"G", "D"}  # --ema 0: off
