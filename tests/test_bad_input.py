"""A user's bad input ends in one line naming the cause and a non-zero exit, never a traceback.

By class, for every training script (dcgan, gan_mlp on MNIST, gan_maxout, wgan_gp, infogan, bigan, cyclegan)
and the sampler:
paths (an --out or --data-root of the wrong kind), damaged data (truncated or garbage IDX and
.gz files, a broken image among good ones), resources (a model too large to train, running out
of memory) and the sampler's commands and outputs.
"""

import gzip
import shutil
import subprocess
import sys
import time

import pytest
from conftest import ROOT

import bigan
import cyclegan
import dcgan
import gan_maxout
import gan_mlp
import infogan
import sampler
import utils
import wgan_gp

FAST = ["--steps", "1", "--batch-size", "16", "--log-every", "1"]
SCRIPTS = {  # main, and the flags that make a tiny run of it on the fixture's 320/64-image MNIST
    "dcgan": (dcgan.main, ["--sample-size", "16"]),
    "gan_mlp": (gan_mlp.main, ["--dataset", "mnist", "--sample-size", "16"]),
    "gan_maxout": (
        gan_maxout.main,
        [
            "--train-range",
            "train:0:320",
            "--valid-range",
            "train:0:64",
            "--test-range",
            "test:0:64",
            "--sample-size",
            "16",
        ],
    ),
    "wgan_gp": (wgan_gp.main, ["--width", "8", "--n-critic", "2", "--sample-size", "16"]),
    "infogan": (infogan.main, ["--train-range", "train:0:320", "--eval-range", "test:0:64"]),
    "bigan": (
        bigan.main,
        ["--train-range", "train:0:320", "--eval-range", "test:0:64", "--hidden", "32", "--sample-size", "16"],
    ),
    "cyclegan": (
        cyclegan.main,
        [
            "--train-range",
            "train:0:320",
            "--eval-range",
            "test:0:64",
            "--ngf",
            "4",
            "--ndf",
            "4",
            "--n-blocks",
            "1",
            "--classifier-steps",
            "2",
        ],
    ),
}
ALL_SCRIPTS = pytest.mark.parametrize("script", sorted(SCRIPTS))


def fails_in_one_line(script, *flags):
    """Run the script's main with `flags` (after its tiny-run flags); the one-line exit message."""
    main, extra = SCRIPTS[script]
    with pytest.raises(SystemExit) as exc:
        main([*extra, *FAST, *flags])
    code = exc.value.code
    assert isinstance(code, str) and code, f"expected an exit with a message, got code {code!r}"  # status 1
    assert "\n" not in code, code
    return code


def tree(path):
    """Everything under path, with each file's bytes: to show that a refused run wrote nothing."""
    return {p: (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))}


def assert_one_line_failure(proc, *needles):
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def copy_mnist(mnist_root, tmp_path):
    """A private copy of the fixture's data root, to damage: (root, its MNIST/raw folder)."""
    root = tmp_path / "data"
    shutil.copytree(mnist_root, root)
    return root, root / "MNIST" / "raw"


# --------------------------------------------------------------------------- 1. paths
@ALL_SCRIPTS
def test_out_is_an_existing_file(script, tmp_path, mnist_root):
    out = tmp_path / "run.txt"
    out.write_text("not a folder")
    before = tree(tmp_path)
    message = fails_in_one_line(script, "--data-root", str(mnist_root), "--out", str(out))
    assert str(out) in message and "--out" in message
    assert tree(tmp_path) == before  # the file untouched, nothing created beside it


@ALL_SCRIPTS
def test_out_under_a_file(script, tmp_path, mnist_root):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    before = tree(tmp_path)
    message = fails_in_one_line(script, "--data-root", str(mnist_root), "--out", str(blocker / "sub"))
    assert str(blocker / "sub") in message
    assert tree(tmp_path) == before


@ALL_SCRIPTS
def test_data_root_is_a_file(script, tmp_path):
    root = tmp_path / "data"
    root.write_bytes(b"\0" * 64)
    before = tree(tmp_path)
    message = fails_in_one_line(script, "--data-root", str(root), "--out", str(tmp_path / "x"))
    assert f"--data-root {root} is a file" in message
    assert tree(tmp_path) == before  # no run folder, no MNIST folder made inside anything


# --------------------------------------------------------------------------- 2. data
@ALL_SCRIPTS
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_idx_file_names_the_files(script, damage, tmp_path, mnist_root):
    root, raw = copy_mnist(mnist_root, tmp_path)
    images = raw / "train-images-idx3-ubyte"
    data = images.read_bytes()
    images.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"garbage!" * (len(data) // 8))
    message = fails_in_one_line(script, "--data-root", str(root), "--out", str(tmp_path / "x"))
    assert "train-images-idx3-ubyte" in message and str(raw) in message and "corrupt" in message
    assert not (tmp_path / "x").exists()


@ALL_SCRIPTS
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_gz_file_is_named(script, damage, tmp_path, mnist_root):
    """Only the .gz files, as distributed; the second one is damaged."""
    root = tmp_path / "data"
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in utils.MNIST_FILES:
        (raw / f"{name}.gz").write_bytes(gzip.compress((mnist_root / "MNIST" / "raw" / name).read_bytes()))
    bad = raw / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(b"this is not gzip data" * 10 if damage == "garbage" else bad.read_bytes()[:40])
    message = fails_in_one_line(script, "--data-root", str(root), "--out", str(tmp_path / "x"))
    assert str(bad) in message and "corrupt" in message
    assert not list(raw.glob("*.tmp"))  # the half-unpacked file is removed
    assert not (raw / "train-labels-idx1-ubyte").exists()
    assert not (tmp_path / "x").exists()


@pytest.fixture
def folder_with_broken_image(tmp_path, image_folder):
    """The fixture's 24 good PNGs, a file of garbage named .png (no image at all) and a truncated PNG
    (its header reads, its pixels do not): 25 images that can be counted, 24 that can be read."""
    folder = tmp_path / "images"
    shutil.copytree(image_folder, folder)
    garbage = folder / "class0" / "broken.png"
    garbage.write_bytes(b"\x89PNG but then garbage" * 20)
    truncated = folder / "class1" / "truncated.png"
    data = (folder / "class1" / "1.png").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return folder, garbage, truncated


def folder_flags(folder, out, workers):
    # --batch-size 25: the one step reads all 25 images, so the truncated one is always met
    return [
        "--dataset",
        "folder",
        "--image-folder",
        str(folder),
        "--image-size",
        "16",
        "--workers",
        str(workers),
        "--steps",
        "1",
        "--batch-size",
        "25",
        "--log-every",
        "1",
        "--sample-size",
        "16",
        "--out",
        str(out),
    ]


def test_broken_images_are_skipped_with_a_warning_and_not_counted(tmp_path, folder_with_broken_image, capsys):
    folder, garbage, truncated = folder_with_broken_image
    out = dcgan.main(folder_flags(folder, tmp_path / "run", workers=0))
    captured = capsys.readouterr()
    assert f"warning: skipping unreadable image {garbage}" in captured.err  # when the folder is read
    assert "dcgan: 25 folder images" in captured.out  # the garbage file is not counted as an image
    assert f"warning: skipping unreadable image {truncated}" in captured.err  # when its pixels are
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "samples" / "epoch_001.png").is_file()


def test_broken_image_with_worker_processes(tmp_path, folder_with_broken_image):
    folder, _, truncated = folder_with_broken_image
    proc = subprocess.run(
        [sys.executable, str(ROOT / "dcgan.py"), *folder_flags(folder, tmp_path / "run", workers=2)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"skipping unreadable image {truncated}" in proc.stderr  # the worker's warning reaches the user
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


# --------------------------------------------------------------------------- 3. resources
@ALL_SCRIPTS
def test_absurd_z_dim_is_refused_before_allocating(script, tmp_path, mnist_root):
    began = time.perf_counter()
    size_flag, size = {"infogan": ("--noise-dim", "2000000000"), "cyclegan": ("--ngf", "100000")}.get(
        script, ("--z-dim", "2000000000")
    )
    message = fails_in_one_line(script, "--data-root", str(mnist_root), "--out", str(tmp_path / "x"), size_flag, size)
    assert time.perf_counter() - began < 20  # sized on the meta device, nothing allocated
    assert "parameters" in message and "GiB" in message and "make them smaller" in message
    assert not (tmp_path / "x").exists()


def test_a_model_too_large_to_size_is_refused_in_one_line(tmp_path, mnist_root):
    message = fails_in_one_line(
        "cyclegan", "--data-root", str(mnist_root), "--out", str(tmp_path / "x"), "--ngf", "2000000000"
    )
    assert "too large" in message and "make them smaller" in message
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "error, expected",
    [
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"), "out of memory"),
        (MemoryError(), "out of memory"),
        (IsADirectoryError(21, "Is a directory", "/some/where"), "cannot use /some/where"),
    ],
)
def test_one_line_errors_turns_user_errors_into_one_line(error, expected):
    @utils.one_line_errors
    def main():
        raise error

    with pytest.raises(SystemExit) as exc:
        main()
    assert isinstance(exc.value.code, str) and expected in exc.value.code and "\n" not in exc.value.code


@pytest.mark.parametrize("error", [RuntimeError("some bug"), OSError("no file involved"), ValueError("bug")])
def test_one_line_errors_keeps_the_traceback_of_a_bug(error):
    @utils.one_line_errors
    def main():
        raise error

    with pytest.raises(type(error)) as exc:
        main()
    assert exc.value is error


# --------------------------------------------------------------------------- 4. sampler
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, mnist_root):
    out = tmp_path_factory.mktemp("run") / "dcgan"
    dcgan.main(["--data-root", str(mnist_root), "--out", str(out), "--steps", "1", "--batch-size", "16"])
    return out / "checkpoints" / "last.pt"


def sampler_fails_in_one_line(command, *args, **kwargs):
    with pytest.raises(SystemExit) as exc:
        getattr(sampler, command)(*args, **kwargs)
    code = exc.value.code
    assert isinstance(code, str) and code and "\n" not in code, code
    return code


def test_unknown_command_in_one_line(ckpt, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "sampler.py"), "smaple", "--ckpt", str(ckpt)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_one_line_failure(proc, "unknown command", "smaple", "sample")
    assert not list(tmp_path.iterdir())


def test_sample_out_is_an_existing_folder(ckpt, tmp_path):
    before = tree(tmp_path)
    message = sampler_fails_in_one_line("sample", str(ckpt), n=4, out=str(tmp_path), device="cpu")
    assert f"--out {tmp_path} is a folder" in message
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "command, kwargs",
    [
        ("sample", {"n": 4}),
        ("interpolate", {"rows": 2, "steps": 3}),
        ("gif", {"frames": 2, "n": 4}),
    ],
)
@pytest.mark.parametrize("under", ["grid.png", "sub/grid.png"])
def test_sampler_out_under_a_file(ckpt, tmp_path, command, kwargs, under):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    before = tree(tmp_path)
    message = sampler_fails_in_one_line(command, str(ckpt), out=str(blocker / under), device="cpu", **kwargs)
    assert str(blocker / under) in message
    assert tree(tmp_path) == before


def test_export_out_is_an_existing_file(ckpt, tmp_path):
    out = tmp_path / "samples.txt"
    out.write_text("keep me")
    before = tree(tmp_path)
    message = sampler_fails_in_one_line("export", str(ckpt), n=4, out=str(out), device="cpu")
    assert str(out) in message
    assert tree(tmp_path) == before
