"""Fixtures: tiny synthetic data in the real on-disk formats, and no network access."""

import struct
import sys
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the scripts are top-level modules, imported as the sampler does


def write_idx(path, array):
    """Write an IDX file (the MNIST format): magic (0, 0, dtype 0x08 = ubyte, ndim), dims, bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.tobytes())


def synthetic_digits(n, seed):
    """n 28x28 uint8 images of bright bars and blobs: structured, so a GAN has something to fit."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.zeros((n, 28, 28), np.float32)
    for i in range(n):
        cy, cx, r = rng.uniform(9, 19), rng.uniform(9, 19), rng.uniform(3, 7)
        images[i] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
        images[i, :, int(rng.integers(6, 22))] += 0.8
    return (np.clip(images, 0, 1) * 255).astype(np.uint8), rng.integers(0, 10, n).astype(np.uint8)


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory):
    """A data root holding a 320/64-image MNIST in torchvision's layout (MNIST/raw/, IDX files)."""
    root = tmp_path_factory.mktemp("data")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 320), ("t10k", 64)):
        images, labels = synthetic_digits(n, seed=len(split))
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """A folder of 24 RGB PNGs of assorted sizes in two class subfolders (ImageFolder layout)."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(24):
        (root / f"class{i % 2}").mkdir(exist_ok=True)
        h, w = int(rng.integers(30, 50)), int(rng.integers(30, 50))
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / f"class{i % 2}" / f"{i}.png")
    return root


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Downloads fail at once, as on an offline machine: no test touches the network."""

    def offline(*args, **kwargs):
        raise URLError("network disabled in tests")

    import torchvision.datasets.cifar
    import torchvision.datasets.mnist

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)  # the Inception weights
