"""Shared mechanics for the training scripts: nothing here teaches a GAN.

Each helper is small and stands alone, so a script reads fine without opening this file:

    die(msg)                        one clear line on stderr, exit status 1
    ArgumentParser                  argparse that reports bad flags in one line
    positive_int / positive_float   argparse types that refuse 0 and negatives
    explicit_flags(build, argv)     which flags were typed on the command line
    resume_config(...)              a saved run's config, with the safe overrides applied
    pick_device(name)               "auto" | "cpu" | "cuda" -> torch.device
    seed_everything(seed)           Python, NumPy and torch RNGs
    rng_state() / set_rng_state()   capture and restore those RNGs (for exact resume)
    make_run_dir(script, name, out) runs/<script>/<name>-<time>/ with samples/ and checkpoints/
    save_grid(images, path, ...)    one PNG grid (torchvision make_grid / save_image)
    save_gif(frames, path)          an animated GIF from PNG files or arrays (imageio)
    save_checkpoint / load_checkpoint   atomic write; weights_only read with clear errors
    save_training_state / restore_training_state   a run's weights, optimizers, RNGs, progress
    LossLog                         losses.csv (append, resume-safe) and losses.png
    load_mnist_family / load_cifar10 / load_image_folder   datasets with the offline error
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import pickle
import random
import shutil
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import torch

REPO_ID = "gan-reference"  # stamped in every checkpoint so foreign files are refused
CHECKPOINT_FORMAT = 1


# --------------------------------------------------------------------------- errors, flags
def die(message: str) -> None:
    """Print one line to stderr and exit with status 1 (no traceback)."""
    sys.exit(f"error: {message}")


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line instead of the whole usage block."""

    def error(self, message):
        sys.exit(f"{self.prog}: error: {message} (see --help)")


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def explicit_flags(build_parser, argv) -> set[str]:
    """Names (dests) of the flags actually given in argv, defaults not counted."""
    unset = object()  # not a string, so argparse never runs a flag's type on it
    parser = build_parser()
    parser.set_defaults(**{a.dest: unset for a in parser._actions if a.dest != "help"})
    return {name for name, value in vars(parser.parse_args(argv)).items() if value is not unset}


def resume_config(saved: dict, args: argparse.Namespace, explicit: set[str], safe: set[str]) -> dict:
    """The saved run's config, with flags from the command line applied where `safe` allows.

    A flag that would change the model or the optimisation of a saved run (a different
    learning rate, z size, data set...) is refused: the resumed run would no longer be
    the run that was saved.
    """
    cfg = dict(saved)
    for name in sorted(explicit - {"resume"}):
        value = getattr(args, name)
        if name in safe:
            cfg[name] = value
        elif saved.get(name) != value:
            die(f"--{name.replace('_', '-')} cannot change when resuming "
                f"(saved: {saved.get(name)!r}); only {', '.join(sorted('--' + s.replace('_', '-') for s in safe))} can")
    return cfg


# --------------------------------------------------------------------------- device, seeds
def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        die("--device cuda was asked for but no CUDA GPU is visible to PyTorch")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state() -> dict:
    _, keys, pos, _, _ = np.random.get_state()
    state = {"torch": torch.get_rng_state(),  # plain tensors only, so weights_only loading works
             "numpy": torch.from_numpy(np.append(keys, pos).astype(np.int64)),
             "python": torch.tensor(random.getstate()[1], dtype=torch.int64)}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"].numpy()
    np.random.set_state(("MT19937", numpy_state[:-1].astype(np.uint32), int(numpy_state[-1]), 0, 0.0))
    random.setstate((3, tuple(int(v) for v in state["python"].tolist()), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


# --------------------------------------------------------------------------- run folders, images
def make_run_dir(script: str, name: str, out: str | None = None, subdirs=("samples", "checkpoints")) -> Path:
    """runs/<script>/<name>-<time>/ (or `out`), with `subdirs` inside."""
    run_dir = Path(out) if out else Path("runs") / script / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for sub in subdirs:
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    return run_dir


def save_grid(images: torch.Tensor, path, nrow: int = 8, value_range=(-1.0, 1.0)) -> None:
    """Save a batch (N, C, H, W) whose values lie in `value_range` as one PNG grid."""
    from torchvision.utils import save_image
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_image(images.detach().float().cpu(), path, nrow=nrow, padding=2,
               normalize=True, value_range=value_range)


def to_uint8(images: torch.Tensor, value_range=(-1.0, 1.0)) -> np.ndarray:
    """(N, C, H, W) floats in `value_range` -> (N, H, W, C) uint8 for image files."""
    lo, hi = value_range
    x = ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1).mul(255).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def save_gif(frames, path, fps: float = 4.0) -> None:
    """Animated GIF from PNG paths or HxW(xC) uint8 arrays, looping forever."""
    import imageio.v2 as imageio
    images = [imageio.imread(f) if isinstance(f, (str, Path)) else f for f in frames]
    if images:
        tmp = Path(path).with_suffix(".tmp.gif")
        imageio.mimsave(tmp, images, duration=1000 / fps, loop=0)
        os.replace(tmp, path)


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(state: dict, path, script: str) -> None:
    """Write atomically (temp file, then rename) so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"repo": REPO_ID, "format": CHECKPOINT_FORMAT, "script": script, **state}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, script: str | tuple[str, ...] | None = None) -> dict:
    """Load a checkpoint of this repository (of `script`, if given) onto the CPU, or die."""
    path = Path(path)
    if not path.is_file():
        die(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt, pickled objects, not a torch file
        reason = "it holds objects other than tensors and plain data" if isinstance(exc, pickle.UnpicklingError) \
            else f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}" if str(exc) else type(exc).__name__
        die(f"{path} is not a readable checkpoint ({reason})")
    if not isinstance(state, dict) or state.get("repo") != REPO_ID:
        die(f"{path} is not a checkpoint written by this repository's scripts")
    if state.get("format") != CHECKPOINT_FORMAT:
        die(f"{path} has checkpoint format {state.get('format')}, this code reads {CHECKPOINT_FORMAT}")
    wanted = (script,) if isinstance(script, str) else script
    if wanted and state.get("script") not in wanted:
        die(f"{path} was written by {state.get('script')}.py, not {' or '.join(w + '.py' for w in wanted)}")
    return state


def save_training_state(path, script: str, cfg: dict, models: dict, optimizers: dict, **progress) -> None:
    """Checkpoint a training run: its config, the weights and optimizer states of `models` and
    `optimizers` (dicts of name -> module/optimizer), the RNG states, and `progress`
    (epoch, step, fixed noise, ...), so that --resume continues exactly where it stopped."""
    save_checkpoint({"cfg": cfg, **progress, "rng": rng_state(),
                     "models": {name: m.state_dict() for name, m in models.items()},
                     "optimizers": {name: o.state_dict() for name, o in optimizers.items()}}, path, script)


def restore_training_state(ckpt: dict, models: dict, optimizers: dict) -> None:
    """The inverse of save_training_state for weights, optimizer states and RNG states."""
    for name, module in models.items():
        module.load_state_dict(ckpt["models"][name])
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(ckpt["optimizers"][name])
    set_rng_state(ckpt["rng"])


# --------------------------------------------------------------------------- loss log
class LossLog:
    """losses.csv, one row per logging window, and a losses.png plot of it.

    On resume, rows logged after the checkpoint's step (work that was lost) are dropped,
    so the file reads as one uninterrupted run.
    """

    def __init__(self, path, columns: list[str], resume_step: int | None = None):
        self.path, self.columns = Path(path), ["step", "epoch", *columns]
        if resume_step is None or not self.path.exists():
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        else:
            kept = [r for r in self.rows() if int(r["step"]) <= resume_step]
            with open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, self.columns)
                writer.writeheader()
                writer.writerows(kept)

    def write(self, step: int, epoch: int, values: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([step, epoch] + [f"{values[c]:.6g}" for c in self.columns[2:]])

    def rows(self) -> list[dict]:
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def plot(self, path, keys: list[str]) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        rows = self.rows()
        if not rows:
            return
        fig, ax = plt.subplots(figsize=(7, 3.5))
        steps = [int(r["step"]) for r in rows]
        for key in keys:
            ax.plot(steps, [float(r[key]) for r in rows], label=key, linewidth=1)
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


# --------------------------------------------------------------------------- data sets
MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
MNIST_FAMILY = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def _unpack_idx(src_dir: Path, raw_dir: Path) -> None:
    """Put the four IDX files, unzipped, in raw_dir from src_dir (plain or .gz), if missing."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        target = raw_dir / name
        if target.exists():
            continue
        for source, opener in ((src_dir / name, open), (src_dir / f"{name}.gz", gzip.open)):
            if source.exists():
                tmp = target.with_suffix(".tmp")
                with opener(source, "rb") as f_in, open(tmp, "wb") as f_out:
                    shutil.copyfileobj(f_in, f_out)
                os.replace(tmp, target)
                break


def _with_quiet_download(make_dataset, offline_hint: str):
    """Build a torchvision dataset, downloading if needed, with one clear line on failure."""
    try:
        return make_dataset(download=False)
    except RuntimeError:
        pass
    chatter = io.StringIO()
    try:
        with redirect_stdout(chatter), redirect_stderr(chatter):
            return make_dataset(download=True)
    except Exception as exc:  # offline, mirror down, checksum mismatch...
        die(f"{offline_hint} ({type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else 'download failed'})")


def load_mnist_family(name: str, root, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 28, 28), labels int64) of MNIST or Fashion-MNIST, from disk or download.

    Looks in <root>/<MNIST|FashionMNIST>/raw/ (plain or .gz IDX files), and for
    Fashion-MNIST also in Debian's dataset-fashion-mnist package.
    """
    from torchvision import datasets
    folder = MNIST_FAMILY[name]
    raw_dir = Path(root) / folder / "raw"
    _unpack_idx(raw_dir, raw_dir)
    if name == "fashion-mnist" and DEBIAN_FASHION_MNIST.is_dir():
        _unpack_idx(DEBIAN_FASHION_MNIST, raw_dir)
    hint = (f"{name} is not in {raw_dir} and could not be downloaded: put "
            f"{', '.join(f + '.gz' for f in MNIST_FILES)} there, or pass --data-root")
    if name == "fashion-mnist":
        hint += " (or: apt-get install dataset-fashion-mnist)"
    dataset_class = getattr(datasets, folder)
    ds = _with_quiet_download(lambda download: dataset_class(root, train=train, download=download), hint)
    return ds.data, ds.targets


def load_cifar10(root, train: bool = True) -> torch.Tensor:
    """CIFAR-10 images as uint8 (N, 3, 32, 32), from <root>/cifar-10-batches-py or download."""
    from torchvision import datasets
    hint = (f"CIFAR-10 is not in {Path(root) / 'cifar-10-batches-py'} and could not be downloaded: "
            f"put cifar-10-python.tar.gz in {root}, or pass --data-root")
    ds = _with_quiet_download(lambda download: datasets.CIFAR10(root, train=train, download=download), hint)
    return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()


def load_image_folder(path, image_size: int, channels: int = 3):
    """A torchvision ImageFolder of any images, resized and center-cropped to image_size,
    as tensors in [-1, 1]. Images may sit in class subfolders or directly in `path`."""
    from torchvision import datasets, transforms
    if not path:
        die("--dataset folder needs --image-folder PATH")
    path = Path(path)
    if not path.is_dir():
        die(f"image folder {path} does not exist")
    transform = transforms.Compose([
        transforms.Resize(image_size),
        transforms.CenterCrop(image_size),
        *([transforms.Grayscale()] if channels == 1 else []),
        transforms.ToTensor(),
        transforms.Normalize([0.5] * channels, [0.5] * channels),
    ])
    has_subfolders = any(p.is_dir() for p in path.iterdir())
    # ImageFolder wants root/<class>/<image>; a flat folder of images is its own single class
    root, allow = (path, None) if has_subfolders else (path.parent, {path.name})
    try:
        if allow is None:
            return datasets.ImageFolder(root, transform=transform)
        return datasets.ImageFolder(root, transform=transform,
                                    is_valid_file=lambda f: Path(f).parent.name in allow
                                    and datasets.folder.has_file_allowed_extension(f, datasets.folder.IMG_EXTENSIONS))
    except (FileNotFoundError, RuntimeError) as exc:
        die(f"no images found under {path} ({str(exc).splitlines()[0][:100]})")
