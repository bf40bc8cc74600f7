"""The run harness: what the training scripts' run halves and the sampler share. Nothing here
teaches a GAN; each script's GAN half, above its "# ==== the run" line, needs none of it.

    die(msg)                        one clear line on stderr, exit status 1
    one_line_errors                 decorator for main(): out of memory, unwritable paths, a lost peer -> one line
    ArgumentParser                  argparse that reports bad flags in one line and shows every default in --help
    add_run_flags(parser, script)   --device --amp --compile --seed --out --resume --save-every --log-every
    RESUMABLE_RUN_FLAGS             the run flags a resumed run may change
    positive_int / positive_float   argparse types that refuse 0 and negatives
    data_range                      argparse type for train|test:START:STOP (honest splits)
    parse_config(build, argv, ...)  the flags, or with --resume the saved run's config and checkpoint
    eval_config(build, argv, ...)   --eval-... --ckpt PATH: the checkpoint's config, checkpoint, device
    pick_device(name, ddp)          "auto" | "cpu" | "cuda" -> torch.device (this process's GPU under torchrun)
    fast_cuda_kernels()             cuDNN autotuning and TF32 matrix products on CUDA
    seed_everything(seed)           Python, NumPy and torch RNGs
    rng_state() / set_rng_state()   capture and restore those RNGs (for exact resume)
    Distributed / setup_distributed under torchrun: this process's rank, the process group
    distribute / end_distributed    DistributedDataParallel (and SyncBatchNorm) around the nets; leave the group
    make_run_dir(script, cfg)       runs/<script>/<dataset>-<time>/ (or --out, or the resumed run's)
    build_models(cfg, device, ...)  the nets, after checking their training state fits in memory
    save_grid / to_uint8            one PNG grid; floats -> uint8 images
    save_gif / save_progress_gif    an animated GIF (imageio); the per-epoch frames as progress.gif
    plot_panels(path, x, panels)    one PNG of curves, a panel per group (losses.png, scores.png)
    save_checkpoint / load_checkpoint   atomic write; weights_only read with clear errors
    save_training_state / restore_training_state   a run's weights, optimizers, RNGs, progress
    TrainingLog                     metrics summed on the device; losses.csv, losses.png, progress bar
                                    (averaged over processes under torchrun, written by rank 0)
    save_on_interrupt(log, save)    Ctrl-C: write the last checkpoint, then exit with one line
    load_mnist_family / load_mnist_range / load_cifar10 / load_image_folder   data sets, offline errors
"""

from __future__ import annotations

import argparse
import csv
import errno
import functools
import gzip
import io
import os
import pickle
import random
import shutil
import sys
import time
import warnings
import zlib
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

REPO_ID = "gan-reference"  # stamped in every checkpoint so foreign files are refused
CHECKPOINT_FORMAT = 2  # what a run's checkpoint holds; 2: the configs and nets since the authors' details and --ema


# --------------------------------------------------------------------------- errors, flags
def die(message: str) -> None:
    """Print one line to stderr and exit with status 1 (no traceback). Under torchrun, a process
    other than rank 0 names itself."""
    rank = os.environ.get("RANK", "0")
    sys.exit(f"error: {message}" if rank == "0" else f"error (rank {rank}): {message}")


def warn(message: str) -> None:
    """A warning on stderr on a line of its own, also while a progress bar is drawn: tqdm clears and
    redraws the bar around it; from a DataLoader worker (another process, no bar of its own) a
    newline first ends the bar's line."""
    from tqdm import tqdm

    if torch.utils.data.get_worker_info() is not None:
        print(f"\nwarning: {message}", file=sys.stderr)
    else:
        tqdm.write(f"warning: {message}", file=sys.stderr)


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(exc, RuntimeError) and ("can't allocate memory" in str(exc) or "out of memory" in str(exc))
    )


def one_line_errors(main):
    """Decorate a script's main() so that user errors that no flag check can foresee end in one
    line and exit status 1: running out of memory (a batch or a model too large), and paths that
    cannot be read or written (a file where a folder should be, no permission, a full disk), and,
    under torchrun, another process of the job gone. Anything else is a bug and keeps its traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except (MemoryError, RuntimeError) as exc:
            if _lost_a_peer(exc):
                die(
                    f"another process of this torchrun job stopped, so this one stops too; resume from the run's "
                    f"checkpoints/last.pt ({str(exc).splitlines()[0][:100]})"
                )
            if not _is_out_of_memory(exc):
                raise
            where = "the GPU" if isinstance(exc, torch.OutOfMemoryError) else "this machine"
            die(
                f"out of memory on {where}: use a smaller --batch-size or a smaller model "
                f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})"
            )
        except OSError as exc:
            if exc.filename is None and exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            die(f"cannot use {exc.filename or 'the output'}: {exc.strerror or exc}")

    return wrapper


def _lost_a_peer(exc: BaseException) -> bool:
    """Whether a collective failed because another process of the job is gone (crashed, killed,
    interrupted): the processes that remain get a connection error from gloo or NCCL."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return False
    text = str(exc)
    return isinstance(exc, dist.DistError) or any(
        sign in text for sign in ("Connection reset by peer", "Connection closed by peer", "Broken pipe")
    )


class _ShowDefaults(argparse.HelpFormatter):
    """--help shows each flag's default after its text (flags without one, and switches, as they are)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line instead of the whole usage block, and whose
    --help shows every default."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=_ShowDefaults, **kwargs)

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


def add_run_flags(
    parser,
    script: str,
    *,
    seed: int = 0,
    save_every: int = 10,
    step: str = "steps",
    amp_help: str = "bfloat16 autocast for the forward passes (fast on recent GPUs)",
    compile_help: str = "torch.compile G and D; 'reduce-overhead' also captures CUDA graphs",
    distributed: bool = False,
    ema: float | None = None,
):
    """The flags every training script has (device, --amp, --compile, seed, output folder, resume,
    checkpoint and log intervals), as a "run" group of `parser`, returned for the script's own;
    with distributed=True (scripts that run under torchrun) also --sync-bn."""
    run = parser.add_argument_group("run")
    run.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to train; auto picks CUDA if present"
    )
    run.add_argument("--amp", action="store_true", help=amp_help)
    run.add_argument(
        "--compile",
        nargs="?",
        const="default",
        default=None,
        choices=["default", "reduce-overhead", "max-autotune"],
        help=compile_help,
    )
    run.add_argument("--seed", type=int, default=seed, help="seeds weights, noise, data order: same seed, same run")
    if ema is not None:
        run.add_argument(
            "--ema",
            type=decay,
            default=ema,
            help="not in the paper: samples come from an exponential moving average of G's weights with this "
            "decay (Yazici et al. 2019); 0: from G itself",
        )
    run.add_argument("--out", default=None, help=f"run folder (default runs/{script}/<dataset>-<time>)")
    run.add_argument("--resume", default=None, help="checkpoint to continue from; its run folder is reused")
    run.add_argument(
        "--save-every", type=positive_int, default=save_every, help="also keep checkpoints/epoch_XXX.pt every N epochs"
    )
    if distributed:
        run.add_argument(
            "--sync-bn",
            action="store_true",
            help="under torchrun: batch norm statistics over all processes' shares of a batch "
            "(SyncBatchNorm); off, as the papers trained on one GPU",
        )
    run.add_argument(
        "--log-every",
        type=positive_int,
        default=100,
        help=f"average the losses over N {step}, then log them (the only host sync in the loop)",
    )
    return run


RESUMABLE_RUN_FLAGS = {"device", "amp", "compile", "save_every", "log_every", "sync_bn"}  # how, not what, is trained


def decay(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def data_range(text: str) -> tuple[str, int, int]:
    """argparse type: 'train:0:50000' -> ('train', 0, 50000), which file of a data set and which
    of its images, so that a script can train, tune and score on disjoint parts of it."""
    try:
        split, start, stop = text.split(":")
        assert split in ("train", "test") and 0 <= int(start) < int(stop)
        return split, int(start), int(stop)
    except (ValueError, AssertionError):
        raise argparse.ArgumentTypeError(f"expected train|test:START:STOP with START < STOP, got {text!r}") from None


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
            can = ", ".join(sorted("--" + s.replace("_", "-") for s in safe if hasattr(args, s)))
            die(f"--{name.replace('_', '-')} cannot change when resuming (saved: {saved.get(name)!r}); only {can} can")
    return cfg


def parse_config(build_parser, argv, script: str, resumable: set[str]) -> tuple[dict, dict | None]:
    """The run's config as a dict of the flags, and the checkpoint to resume from (or None).

    With --resume, the config is the saved run's, with the flags typed now applied where
    `resumable` allows (see resume_config), and cfg["resume"] names the checkpoint. With
    --compile, says at once that the first steps will take a while."""
    args = build_parser().parse_args(argv)
    cfg, ckpt = vars(args), None
    if args.resume:
        args.resume = str(find_checkpoint(args.resume))
        ckpt = load_checkpoint(args.resume, script)
        cfg = resume_config(ckpt["cfg"], args, explicit_flags(build_parser, argv), resumable)
        cfg["resume"] = args.resume
    if cfg.get("compile") and os.environ.get("RANK", "0") == "0":
        print("--compile: the first steps compile the networks, which takes a minute or more the first time")
    return cfg, ckpt


def refuse_finished(cfg: dict, step: int, total_steps) -> None:
    """--resume with --epochs/--steps that the run has already reached: one line, not a silent "done"."""
    if cfg.get("resume") and step >= total_steps:
        asked = " and ".join(f"--{k} {cfg[k]}" for k in ("epochs", "steps") if cfg.get(k))
        die(
            f"{cfg['resume']} is at step {step:,}, as far as {asked} go: "
            f"to train on, resume with a larger --epochs or --steps"
        )


def eval_config(build_parser, argv, script: str, resumable: set[str], flag: str):
    """For `python <script>.py --eval-... --ckpt PATH [flags]`: the checkpoint's run config with
    the flags typed now applied where `resumable` allows, the checkpoint, and the device."""
    args = build_parser().parse_args(argv)
    if not args.ckpt:
        die(f"{flag} needs --ckpt PATH")
    ckpt = load_checkpoint(args.ckpt, script)
    cfg = resume_config(ckpt["cfg"], args, explicit_flags(build_parser, argv) - {"ckpt"}, resumable)
    return cfg, ckpt, pick_device(cfg["device"])


# --------------------------------------------------------------------------- device, seeds
def pick_device(name: str = "auto", ddp: Distributed | None = None) -> torch.device:
    """ "auto" | "cpu" | "cuda" -> torch.device; under torchrun, CUDA is this process's own GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        die("--device cuda was asked for but no CUDA GPU is visible to PyTorch")
    if name == "cuda" and ddp and ddp.torchrun:
        return torch.device("cuda", ddp.local_rank)
    return torch.device(name)


def fast_cuda_kernels() -> None:
    """On CUDA: cuDNN times its convolution algorithms once per input shape and keeps the fastest
    (the shapes never change in these loops, so it pays), and float32 matrix products and
    convolutions run on TF32 tensor cores (10-bit mantissas, as the papers' GPUs never had, and
    plenty for GAN training). No effect on the CPU."""
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True


# --------------------------------------------------------------------------- several processes (torchrun)
class Distributed(NamedTuple):
    """Where this process stands: rank 0 of 1, not under torchrun, when launched plainly."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    torchrun: bool = False  # launched by torchrun: a process group and DDP, even with one process

    @property
    def main(self) -> bool:
        return self.rank == 0  # the one process that prints and writes files

    def print(self, *args, **kwargs) -> None:
        if self.main:
            print(*args, **kwargs)


def setup_distributed(cfg: dict) -> Distributed:
    """Under torchrun (it sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address): check
    that the global batch splits evenly over the processes, then join the process group, NCCL
    on CUDA, gloo on the CPU. Launched plainly: rank 0 of 1, and nothing else happens."""
    env = os.environ
    ddp = Distributed(
        int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)), "RANK" in env
    )
    cuda = pick_device(cfg["device"]).type == "cuda"
    if cfg.get("sync_bn") and not ddp.torchrun:
        die("--sync-bn synchronises batch norm across the processes of a torchrun job; launch with torchrun")
    if cfg.get("sync_bn") and not cuda:
        die("--sync-bn needs CUDA: PyTorch's SyncBatchNorm runs on GPUs only")
    for name in ("batch_size", "g_batch_size"):
        if cfg.get(name) and cfg[name] % ddp.world:
            die(
                f"--{name.replace('_', '-')} {cfg[name]} is the global batch and does not split evenly over "
                f"{ddp.world} processes; make it a multiple of {ddp.world}"
            )
    if cuda and ddp.local_rank >= torch.cuda.device_count():
        die(
            f"process {ddp.local_rank} of this machine has no GPU of its own ({torch.cuda.device_count()} visible); "
            f"start at most {torch.cuda.device_count()} processes per machine (--nproc_per_node)"
        )
    if ddp.torchrun and not torch.distributed.is_initialized():
        if cuda:
            torch.cuda.set_device(ddp.local_rank)
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return ddp


def distribute(ddp: Distributed, *modules, sync_bn: bool = False):
    """Under torchrun, each module in DistributedDataParallel (rank 0's weights copied to every
    process now, the gradients averaged over the processes in each backward), its batch norm
    made SyncBatchNorm if sync_bn. Launched plainly: the modules as they are."""
    if not ddp.torchrun:
        return modules
    # DDP warns when a gradient's strides differ from its bucket's even where they cannot matter, in
    # a dimension of size 1 (wgan_gp's double backward gives its 1-channel conv such a gradient);
    # DDP copies it into the bucket and the values are right
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    device_ids = [ddp.local_rank] if next(modules[0].parameters()).is_cuda else None
    return tuple(
        DistributedDataParallel(
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(m) if sync_bn else m, device_ids=device_ids
        )
        for m in modules
    )


def end_distributed(ddp: Distributed) -> None:
    if ddp.torchrun:
        torch.distributed.destroy_process_group()


def _gather(ddp: Distributed, value):
    """[value of rank 0, value of rank 1, ...] on every process (a collective: all ranks call it)."""
    if not ddp.torchrun:
        return [value]
    values = [None] * ddp.world
    torch.distributed.all_gather_object(values, value)
    return values


def _broadcast(ddp: Distributed, value):
    """Rank 0's value on every process."""
    if not ddp.torchrun:
        return value
    holder = [value]
    torch.distributed.broadcast_object_list(holder, src=0)
    return holder[0]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state() -> dict:
    _, keys, pos, _, _ = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),  # plain tensors only, so weights_only loading works
        "numpy": torch.from_numpy(np.append(keys, pos).astype(np.int64)),
        "python": torch.tensor(random.getstate()[1], dtype=torch.int64),
    }
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
def make_run_dir(script: str, cfg: dict, subdirs=("samples", "checkpoints"), ddp: Distributed | None = None) -> Path:
    """The run folder, with `subdirs` inside: the resumed checkpoint's own run folder, or
    --out, or runs/<script>/<dataset>-<time>/. One line and exit if it cannot be created.
    Under torchrun rank 0 makes it and tells the others its name."""
    ddp = ddp or Distributed()
    if not ddp.main:
        return _broadcast(ddp, None)
    if cfg.get("resume"):
        run_dir = Path(cfg["resume"]).resolve().parent.parent
    elif cfg.get("out"):
        run_dir = Path(cfg["out"])
    else:
        run_dir = Path("runs") / script / f"{cfg['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        for sub in subdirs:
            (run_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, a path under a file, no permission
        die(f"cannot create the run folder {run_dir} ({exc.strerror or exc}); choose another --out")
    return _broadcast(ddp, run_dir)


def free_memory(device: torch.device) -> int:
    """Bytes that can still be allocated on `device` (CUDA: free on the GPU; CPU: MemAvailable)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def build_models(cfg: dict, device: torch.device, *builders) -> list[torch.nn.Module]:
    """builder(cfg) for each builder, on `device`. The models are first built on PyTorch's meta
    device, which allocates nothing, so that a model too large to train (an absurd --z-dim, say)
    is refused in one line instead of exhausting the machine: training holds each parameter
    about four times (the weight, its gradient, Adam's two moments)."""
    try:
        with torch.device("meta"):
            n_params = sum(p.numel() for build in builders for p in build(cfg).parameters())
    except RuntimeError as exc:
        if "overflow" not in str(exc):
            raise
        die(
            "the models are too large to even size (a tensor of more than 2^63 bytes): make them smaller "
            "(e.g. --z-dim, widths)"
        )
    needed, free = 16 * n_params, free_memory(device)
    if needed > free:
        die(
            f"the models have {n_params / 1e6:,.0f}M parameters and need about {needed / 2**30:,.1f} GiB to train, "
            f"but {device.type} has {free / 2**30:,.1f} GiB free: make them smaller (e.g. --z-dim, widths)"
        )
    return [build(cfg).to(device) for build in builders]


def save_grid(images: torch.Tensor, path, nrow: int = 8, value_range=(-1.0, 1.0)) -> None:
    """Save a batch (N, C, H, W) whose values lie in `value_range` as one PNG grid."""
    from torchvision.utils import save_image

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_image(images.detach().float().cpu(), path, nrow=nrow, padding=2, normalize=True, value_range=value_range)


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


def save_progress_gif(frames_dir, path, most: int = 50) -> None:
    """progress.gif: the frames_dir/epoch_*.png so far, in order, one frame an epoch; of a longer run
    `most` of them, evenly spaced, the last always in, so that redrawing it after every epoch costs
    no more at epoch 500 than at epoch 50."""
    frames = sorted(Path(frames_dir).glob("epoch_*.png"))
    if len(frames) > most:
        frames = [frames[round(i * (len(frames) - 1) / (most - 1))] for i in range(most)]
    save_gif(frames, path)


def plot_panels(path, x, panels: dict, log_y=(), xlabel: str = "step") -> None:
    """One PNG: a panel per entry of `panels` ({title: {label: values}}), side by side, each curve
    against x; titles in `log_y` on a log axis. A curve of one point shows as a marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels) + 1, 3.5), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for label, values in curves.items():
            ax.plot(x, values, label=label, linewidth=1, marker="o" if len(set(x)) == 1 else None)
        ax.set(title=title, xlabel=xlabel, yscale="log" if title in log_y else "linear")
        ax.grid(alpha=0.3)
        if len(curves) > 1:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(state: dict, path, script: str) -> None:
    """Write atomically (temp file, then rename) so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"repo": REPO_ID, "format": CHECKPOINT_FORMAT, "script": script, **state}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def find_checkpoint(path, flag: str = "--resume") -> Path:
    """`path` itself, or for a run folder or its checkpoints/ folder, the last.pt inside (said in one line)."""
    path = Path(path)
    if path.is_dir():
        last = next((p for p in (path / "last.pt", path / "checkpoints" / "last.pt") if p.is_file()), None)
        if last is None:
            die(f"{flag} {path} is a folder with no last.pt or checkpoints/last.pt; give a checkpoint file")
        print(f"{flag} {path} is a folder: using its last checkpoint, {last}", file=sys.stderr)
        return last
    return path


def load_checkpoint(path, script: str | tuple[str, ...] | None = None) -> dict:
    """Load a checkpoint of this repository (of `script`, if given) onto the CPU, or die."""
    path = Path(path)
    if not path.is_file():
        die(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files that are not ours
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt, pickled objects, not a torch file
        objects = isinstance(exc, pickle.UnpicklingError) and "Unsupported global" in str(exc)
        reason = (
            "it holds Python objects, not just tensors and numbers" if objects else "not a PyTorch file, or damaged"
        )
        die(f"{path} is not a checkpoint of this repository ({reason})")
    if not isinstance(state, dict) or state.get("repo") != REPO_ID:
        die(f"{path} is not a checkpoint of this repository (a PyTorch file, but not one its scripts wrote)")
    if "cfg" in state and state.get("format") != CHECKPOINT_FORMAT:  # a run's checkpoint; caches have no config
        die(
            f"{path} was written by another version of these scripts (checkpoint format {state.get('format')}, this "
            f"code reads {CHECKPOINT_FORMAT}): train it again, or use the version that wrote it"
        )
    wanted = (script,) if isinstance(script, str) else script
    if wanted and state.get("script") not in wanted:
        die(f"{path} was written by {state.get('script')}.py, not {' or '.join(w + '.py' for w in wanted)}")
    return state


def save_training_state(
    path,
    script: str,
    cfg: dict,
    models: dict,
    optimizers: dict,
    *,
    ddp: Distributed | None = None,
    per_rank: dict | None = None,
    **progress,
) -> None:
    """Checkpoint a training run: its config, the weights and optimizer states of `models` and
    `optimizers` (dicts of name -> module/optimizer), the RNG states, `per_rank` (state each
    process holds for itself, like cyclegan's image pools) and `progress` (epoch, step, fixed
    noise, ...), so that --resume continues exactly where it stopped. Under torchrun every
    process calls it (their RNG states are gathered) and rank 0 writes: rank 0's own state at
    the top level, as a one-process run has it, the others' under "ranks"."""
    ddp = ddp or Distributed()
    ranks = _gather(ddp, {"rng": rng_state(), **(per_rank or {})})
    if ddp.main:
        save_checkpoint(
            {
                "cfg": cfg,
                **progress,
                **ranks[0],
                **({"ranks": ranks[1:]} if ddp.torchrun else {}),
                "models": {name: m.state_dict() for name, m in models.items()},
                "optimizers": {name: o.state_dict() for name, o in optimizers.items()},
            },
            path,
            script,
        )


def restore_training_state(ckpt: dict, models: dict, optimizers: dict, ddp: Distributed | None = None) -> dict:
    """The inverse of save_training_state for weights, optimizer states and RNG states; returns
    this process's per-rank state. With as many processes as the run that saved it, each takes
    its own states back (exact resume); with another number, the ranks take rank 0's per-rank
    state (or the nearest) and new noise streams, seeded by (seed, step, rank): the run goes
    on from the same weights and the same global batches, not bit for bit."""
    ddp = ddp or Distributed()
    for name, module in models.items():
        module.load_state_dict(ckpt["models"][name])
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(ckpt["optimizers"][name])
    saved = [ckpt, *ckpt.get("ranks", [])]
    mine = saved[min(ddp.rank, len(saved) - 1)]
    set_rng_state(mine["rng"])
    if len(saved) != ddp.world:
        seed_everything(ckpt["cfg"]["seed"] * 100_003 + ckpt["step"] * 1_009 + ddp.rank)
        ddp.print(
            f"note: resuming a {len(saved)}-process run with {ddp.world}: the same weights and global batches, "
            f"new noise streams (not bit for bit the run that stopped)",
            file=sys.stderr,
        )
    return mine


# --------------------------------------------------------------------------- training log
class TrainingLog:
    """losses.csv, losses.png and the progress bar of a training run.

    `add(metrics, step, epoch)` adds a train step's metrics (a 1-D tensor, still on the device)
    to a running sum; every `every` steps, and whenever `flush()` is called (at the end of an
    epoch), the window's means are read back in one host sync, the only one in the loop, and
    written as one CSV row and as the progress bar's text.

    columns        names of the entries of the metrics tensor, in order
    status         the bar's text: a format string over the column names, or a function of the row
    extra          optional: a function called at each flush returning more columns by name
                   (0-d tensors on the device are read back in the same sync, floats as they are)
    images_per_step  images a step consumes, for the rate column (`rate`, images_per_s by default)
    resumed        on resume, rows logged after the checkpoint's step (lost work) are dropped,
                   so the file reads as one uninterrupted run
    plots          losses.png's panels: {title: [column, ...]}, drawn by plot() (and on Ctrl-C)
    cpu_recipe     a shorter run for a CPU, measured in the script's docs page: said once, a few seconds
                   in, if on a CPU the whole run would take more than two hours at the speed seen so far
    ddp            under torchrun: the window's means are averaged over the processes (in the
                   same sync), and only rank 0 writes the file and shows the bar
    """

    def __init__(
        self,
        run_dir,
        columns: list[str],
        *,
        every: int,
        images_per_step: int,
        total_steps,
        step: int,
        resumed: bool,
        status,
        extra=None,
        extra_columns=(),
        rate: str = "images_per_s",
        plots: dict | None = None,
        cpu_recipe: str | None = None,
        ddp: Distributed | None = None,
    ):
        from tqdm import tqdm

        self.ddp = ddp or Distributed()
        self.path, self.run_dir = Path(run_dir) / "losses.csv", Path(run_dir)
        self.columns, self.extra_columns, self.rate = list(columns), list(extra_columns), rate
        self.every, self.images_per_step, self.status, self.extra = every, images_per_step, status, extra
        self.plots, self.cpu_recipe, self.total_steps = plots, cpu_recipe, total_steps
        self.first_step, self.started = step, time.perf_counter()
        self.step, self.epoch, self.window, self.sums, self.last_status = step, 0, 0, None, ""
        self.window_start = time.perf_counter()
        header = ["step", "epoch", *self.columns, *self.extra_columns, rate]
        if self.ddp.main:
            kept = [r for r in self.rows() if int(r["step"]) <= step] if resumed and self.path.exists() else []
            with open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, header)
                writer.writeheader()
                writer.writerows(kept)
        # drawn from the first step on (delay), so that what a script prints before it is on lines of its own
        self.bar = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True, disable=not self.ddp.main,
                        delay=1e-9)  # fmt: skip

    def add(self, metrics: torch.Tensor, step: int, epoch: int) -> None:
        """Count one finished step (the step counter after it, the epoch it belongs to)."""
        self.sums = metrics if self.sums is None else self.sums + metrics
        self.step, self.epoch, self.window = step, epoch, self.window + 1
        self.bar.update()
        if self.cpu_recipe and metrics.device.type == "cpu":
            self._note_long_cpu_run()
        if self.window == self.every:
            self.flush()

    def _note_long_cpu_run(self) -> None:
        seconds = time.perf_counter() - self.started
        if seconds < 3 or not self.ddp.main:  # the first steps' speed, not the first step's warm-up alone
            return
        done = self.step - self.first_step
        hours = (self.total_steps - self.step) * seconds / done / 3600
        if hours > 2:
            warn(
                f"on this CPU the run's {self.total_steps:,} steps take about {hours:,.0f} hours at the speed "
                f"of its first {done} step{'s' if done > 1 else ''}; for a CPU, {self.cpu_recipe}"
            )
        self.cpu_recipe = None  # said once

    def flush(self) -> None:
        if self.window:
            extra = self.extra() if self.extra else {}
            on_device = [k for k, v in extra.items() if isinstance(v, torch.Tensor)]
            means = torch.cat([self.sums / self.window, *(extra[k].reshape(1).to(self.sums) for k in on_device)])
            if self.ddp.torchrun:  # every process's window, averaged: one all-reduce per window, not per step
                torch.distributed.all_reduce(means)
                means /= self.ddp.world
            values = dict(zip(self.columns + on_device, means.tolist()))  # the one host sync per window
            values.update((k, float(v)) for k, v in extra.items() if k not in on_device)
            values[self.rate] = self.window * self.images_per_step / (time.perf_counter() - self.window_start)
            if self.ddp.main:
                with open(self.path, "a", newline="") as f:
                    csv.writer(f).writerow(
                        [self.step, self.epoch + 1]
                        + [f"{values[c]:.6g}" for c in self.columns + self.extra_columns + [self.rate]]
                    )
            self.last_status = self.status(values) if callable(self.status) else self.status.format(**values)
            self.bar.set_postfix_str(f"{self.last_status}, {values[self.rate]:.0f}/s")
        self.sums, self.window, self.window_start = None, 0, time.perf_counter()

    def close(self) -> None:
        """Write the last window and redraw losses.png (what a run that stops early ends with)."""
        self.flush()
        self.plot()
        self.bar.close()

    def rows(self) -> list[dict]:
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def plot(self) -> None:
        """losses.png beside losses.csv: a panel per entry of `plots`, its columns against the step."""
        rows = self.rows() if self.plots and self.ddp.main else []
        if rows:
            panels = {title: {key: [float(r[key]) for r in rows] for key in keys} for title, keys in self.plots.items()}
            plot_panels(self.run_dir / "losses.png", [int(r["step"]) for r in rows], panels)


@contextmanager
def save_on_interrupt(log: TrainingLog, save_last):
    """Run a training loop so that Ctrl-C is a normal, saved stop: the log's last window is written,
    `save_last()` writes the last checkpoint and returns its path, and the run says in one line
    where it stopped and how to continue, then exits with status 130 (128 + SIGINT, what shells
    report for an interrupt). The progress bar is closed however the block ends. Under torchrun
    nothing is saved then (the other processes may already be gone, and saving takes them all):
    the last checkpoint written, complete by construction, is where to resume."""
    try:
        yield
    except KeyboardInterrupt:
        log.bar.close()
        if log.ddp.world > 1:
            last = log.run_dir / "checkpoints" / "last.pt"
            saved = f"the last complete checkpoint is {last}" if last.exists() else "no checkpoint was complete yet"
            continue_with = f"; continue with --resume {last}" if last.exists() else ""
            log.ddp.print(f"interrupted at step {log.step}; {saved}{continue_with}", file=sys.stderr)
        else:
            log.close()
            last = save_last()
            print(f"interrupted at step {log.step}; saved {last}; continue with --resume {last}", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        log.bar.close()


# --------------------------------------------------------------------------- data sets
MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
MNIST_FAMILY = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def _check_data_root(root) -> None:
    if Path(root).exists() and not Path(root).is_dir():
        die(f"--data-root {root} is a file; it must be a folder (data sets live in sub-folders of it)")


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
                try:
                    with opener(source, "rb") as f_in, open(tmp, "wb") as f_out:
                        shutil.copyfileobj(f_in, f_out)
                except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                    tmp.unlink(missing_ok=True)
                    die(f"{source} is corrupt ({type(exc).__name__}: {exc}); replace it with the original file")
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
    except Exception:  # offline, mirror down, checksum mismatch: the hint says what to do in each case
        die(offline_hint)


def load_mnist_family(name: str, root, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 28, 28), labels int64) of MNIST or Fashion-MNIST, from disk or download.

    Looks in <root>/<MNIST|FashionMNIST>/raw/ (plain or .gz IDX files), and for
    Fashion-MNIST also in Debian's dataset-fashion-mnist package.
    """
    from torchvision import datasets

    _check_data_root(root)
    folder = MNIST_FAMILY[name]
    raw_dir = Path(root) / folder / "raw"
    _unpack_idx(raw_dir, raw_dir)
    if name == "fashion-mnist" and DEBIAN_FASHION_MNIST.is_dir():
        _unpack_idx(DEBIAN_FASHION_MNIST, raw_dir)
    dataset_class = getattr(datasets, folder)
    if all((raw_dir / f).is_file() for f in MNIST_FILES):  # on disk: a failure now means damaged files
        try:
            ds = dataset_class(root, train=train, download=False)
        except Exception as exc:  # torchvision asserts on a bad header, fails to reshape a short file
            files = " and ".join(f for f in MNIST_FILES if f.startswith("train" if train else "t10k"))
            reason = str(exc).splitlines()[0][:100] if str(exc) else "bad header"
            die(
                f"the {name} files {files} in {raw_dir} are corrupt ({type(exc).__name__}: {reason}); "
                f"replace them with the originals"
            )
        if len(ds.data) != len(ds.targets):
            die(f"the {name} images and labels in {raw_dir} disagree ({len(ds.data)} images, {len(ds.targets)} labels)")
        return ds.data, ds.targets
    hint = (
        f"{name} is not in {raw_dir} and could not be downloaded: put "
        f"{', '.join(f + '.gz' for f in MNIST_FILES)} there, or pass --data-root"
    )
    if name == "fashion-mnist":
        hint += " (or: apt-get install dataset-fashion-mnist)"
    ds = _with_quiet_download(lambda download: dataset_class(root, train=train, download=download), hint)
    return ds.data, ds.targets


def range_of(cfg: dict, which: str) -> tuple[str, int, int | None]:
    """cfg[which], a data_range; a flag left unset means a whole file: for an --eval-range the test
    file, for any other range the training file (checkpoints of earlier runs hold explicit ranges)."""
    return cfg.get(which) or ("test" if which == "eval_range" else "train", 0, None)


def range_text(cfg: dict, which: str, n: int | None = None) -> str:
    """A data range as messages name it: train:0:320, an unset one spelt out from the n images it
    gave, or without n "the whole training file"."""
    split, start, stop = range_of(cfg, which)
    if stop is None and n is None:
        return f"the whole {'training' if split == 'train' else 'test'} file"
    return f"{split}:{start}:{start + n if stop is None else stop}"


def load_mnist_range(cfg: dict, which: str, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The images (uint8 (N, 1, 28, 28)) and labels of cfg[which], a data_range of cfg["dataset"]."""
    split, start, stop = range_of(cfg, which)
    images, labels = load_mnist_family(cfg["dataset"], cfg["data_root"], train=split == "train")
    if stop is not None and stop > len(images):
        die(f"--{which.replace('_', '-')} {split}:{start}:{stop} asks for more than the {len(images)} {split} images")
    return images[start:stop].unsqueeze(1).to(device), labels[start:stop].to(device)


def load_cifar10(root, train: bool = True) -> torch.Tensor:
    """CIFAR-10 images as uint8 (N, 3, 32, 32), from <root>/cifar-10-batches-py or download."""
    from torchvision import datasets

    _check_data_root(root)
    hint = (
        f"CIFAR-10 is not in {Path(root) / 'cifar-10-batches-py'} and could not be downloaded: "
        f"put cifar-10-python.tar.gz in {root}, or pass --data-root"
    )
    ds = _with_quiet_download(lambda download: datasets.CIFAR10(root, train=train, download=download), hint)
    return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()


class SkipUnreadable(torch.utils.data.Dataset):
    """An image dataset in which an image that cannot be read is skipped, with a warning naming
    it, for the next readable one: one broken file does not end a long run from inside a
    DataLoader worker."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        from PIL import UnidentifiedImageError

        for offset in range(len(self.dataset)):
            i = (index + offset) % len(self.dataset)
            try:
                return self.dataset[i]
            except (OSError, ValueError, SyntaxError, UnidentifiedImageError) as exc:
                warn(f"skipping unreadable image {self.dataset.samples[i][0]} ({exc})")
        raise RuntimeError("no image of the folder can be read")


def load_image_folder(path, image_size: int, channels: int = 3, square: bool = False):
    """A torchvision ImageFolder of any images, resized and center-cropped to image_size (square:
    resized to image_size x image_size, bicubic, as CycleGAN's authors), as tensors in [-1, 1].
    Images may sit in class subfolders or directly in `path`; unreadable ones are skipped with a warning."""
    from torchvision import datasets, transforms

    if not path:
        die("--dataset folder needs --image-folder PATH")
    path = Path(path)
    if not path.is_dir():
        die(
            f"image folder {path} does not exist"
            if not path.exists()
            else f"--image-folder {path} is a file, not a folder"
        )
    transform = transforms.Compose(
        [
            *(
                [transforms.Resize((image_size, image_size), transforms.InterpolationMode.BICUBIC)]
                if square
                else [transforms.Resize(image_size), transforms.CenterCrop(image_size)]
            ),
            *([transforms.Grayscale()] if channels == 1 else []),
            transforms.ToTensor(),
            transforms.Normalize([0.5] * channels, [0.5] * channels),
        ]
    )
    has_subfolders = any(p.is_dir() for p in path.iterdir())
    # ImageFolder wants root/<class>/<image>; a flat folder of images is its own single class
    root, allow = (path, None) if has_subfolders else (path.parent, {path.name})
    try:
        if allow is None:
            return SkipUnreadable(datasets.ImageFolder(root, transform=transform))
        flat = datasets.ImageFolder(  # sibling folders of `path` are classes with no valid files: allowed
            root,
            transform=transform,
            allow_empty=True,
            is_valid_file=lambda f: (
                Path(f).parent.name in allow
                and datasets.folder.has_file_allowed_extension(f, datasets.folder.IMG_EXTENSIONS)
            ),
        )
        if not flat.samples:
            die(f"no images found under {path}")
        return SkipUnreadable(flat)
    except (FileNotFoundError, RuntimeError) as exc:
        die(f"no images found under {path} ({str(exc).splitlines()[0][:100]})")
