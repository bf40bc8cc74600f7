"""sampler.py rebuilds G through the script that wrote the checkpoint; outputs have the right shapes."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image

import dcgan
import sampler
import utils


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, mnist_root):
    out = tmp_path_factory.mktemp("run") / "dcgan"
    dcgan.main(["--data-root", str(mnist_root), "--out", str(out), "--steps", "1", "--batch-size", "16"])
    return out / "checkpoints" / "last.pt"


def test_sample_grid(ckpt, tmp_path):
    path = sampler.sample(str(ckpt), n=12, nrow=4, out=str(tmp_path / "grid.png"), device="cpu")
    assert Image.open(path).size == (2 + 4 * 30, 2 + 3 * 30)


def test_sample_default_goes_to_run_folder_and_is_seeded(ckpt):
    first = np.asarray(Image.open(sampler.sample(str(ckpt), n=4, seed=3)))
    again = np.asarray(Image.open(sampler.sample(str(ckpt), n=4, seed=3)))
    other = np.asarray(Image.open(sampler.sample(str(ckpt), n=4, seed=4)))
    assert (ckpt.parent.parent / "sampler" / "samples.png").exists()
    assert (first == again).all() and (first != other).any()


@pytest.mark.parametrize("mode", ["slerp", "linear"])
def test_interpolate_rows(ckpt, tmp_path, mode):
    path = sampler.interpolate(str(ckpt), rows=3, steps=5, mode=mode, out=str(tmp_path / "i.png"))
    assert Image.open(path).size == (2 + 5 * 30, 2 + 3 * 30)


def test_slerp_hits_both_ends():
    z0, z1 = torch.randn(2, 7), torch.randn(2, 7)
    assert torch.allclose(sampler.slerp(z0, z1, torch.zeros(2)), z0, atol=1e-5)
    assert torch.allclose(sampler.slerp(z0, z1, torch.ones(2)), z1, atol=1e-5)


def test_gif_frames(ckpt, tmp_path):
    path = sampler.gif(str(ckpt), frames=6, n=4, out=str(tmp_path / "walk.gif"))
    gif = Image.open(path)
    assert gif.n_frames == 6 and gif.size == (2 + 2 * 30, 2 + 2 * 30)


def test_export_png_folder_and_npz(ckpt, tmp_path):
    sampler.export(str(ckpt), n=7, batch_size=3, out=str(tmp_path / "pngs"))
    files = sorted((tmp_path / "pngs").glob("*.png"))
    assert len(files) == 7 and Image.open(files[0]).size == (28, 28)
    sampler.export(str(ckpt), n=5, out=str(tmp_path / "s.npz"))
    images = np.load(tmp_path / "s.npz")["images"]
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.uint8


def test_gpu_style_checkpoint_rebuilds_on_cpu(ckpt, tmp_path):
    """The generator comes from dcgan.build_generator and matches the saved weights exactly."""
    gen = sampler.Generator(str(ckpt), device="cpu")
    saved = utils.load_checkpoint(ckpt)["models"]["G_ema"]  # dcgan keeps an average of G by default
    assert gen.script is dcgan and gen.device.type == "cpu" and not gen.G.training
    assert all(torch.equal(v, saved[k]) for k, v in gen.G.state_dict().items())


def test_refuses_checkpoint_of_unknown_script(tmp_path):
    path = tmp_path / "other.pt"
    utils.save_checkpoint({"cfg": {}}, path, "os")
    with pytest.raises(SystemExit, match="written by os.py"):
        sampler.sample(str(path))


def test_bad_values_are_refused(ckpt):
    with pytest.raises(SystemExit, match="--n must be a positive integer"):
        sampler.sample(str(ckpt), n=0)
    with pytest.raises(SystemExit, match="--mode must be slerp or linear"):
        sampler.interpolate(str(ckpt), mode="cubic")


def test_cli_default_command_and_corrupt_checkpoint(ckpt, tmp_path):
    ok = subprocess.run(
        [sys.executable, str(ROOT / "sampler.py"), "--ckpt", str(ckpt), "--n", "4", "--out", str(tmp_path / "cli.png")],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and Image.open(tmp_path / "cli.png").size == (2 + 4 * 30, 32)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 truncated zip")
    bad = subprocess.run(
        [sys.executable, str(ROOT / "sampler.py"), "--ckpt", str(corrupt)], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "is not a checkpoint of this repository" in bad.stderr
