"""The run harness: what the training scripts' run halves and the sampler share. Nothing here
teaches a GAN; each script's GAN half, above its "# ==== the run" line, needs none of it.

    die / warn / one_line_errors    one clear line (out of memory, unwritable paths, a lost torchrun peer)
    ArgumentParser, add_run_flags   flags: no abbreviations, "did you mean", every default in --help; the
                                    run flags (--device --amp --compile --seed --ema --deterministic ...)
    positive_int / positive_float / decay / data_range   argparse types (data_range: train|test:START:STOP)
    parse_config / eval_config      the flags, or a checkpoint's config with the flags a resume may change
    pick_device / cuda_kernels      "auto" | "cpu" | "cuda"; autotuned cuDNN and TF32, or --deterministic
    seed_everything / rng_state / set_rng_state   seeds, and the generators' states for exact resume
    Distributed / setup_distributed / distribute / end_distributed   torchrun: rank, process group, DDP
    make_run_dir / build_models     the run folder; the nets, once their training state fits in memory
    save_grid / to_uint8 / save_gif / save_progress_gif / plot_panels   PNG grids, GIFs, curves
    save_checkpoint / load_checkpoint / save_training_state / restore_training_state   atomic writes,
                                    weights_only reads; a run's weights, optimizers, scalers, RNGs, progress
    TrainingLog / save_on_interrupt losses.csv, losses.png, the bar, TensorBoard; Ctrl-C and SIGTERM save
    load_mnist_family / load_mnist_range / load_cifar10 / load_image_folder   data sets, offline errors
"""

from __future__ import annotations

import argparse
import csv
import errno
import functools
import gzip
import io
import logging
import os
import pickle
import random
import shutil
import signal
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

if hasattr(signal, "SIGPIPE"):  # a command piped into `head` ends quietly when head has read enough, as Unix tools do
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
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
                die(f"another process of this torchrun job stopped, so this one stops too; resume from the run's "
                    f"checkpoints/last.pt ({str(exc).splitlines()[0][:100]})")  # fmt: skip
            if not isinstance(exc, (MemoryError, torch.OutOfMemoryError)) and not any(
                sign in str(exc) for sign in ("can't allocate memory", "out of memory")
            ):
                raise
            where = "the GPU" if isinstance(exc, torch.OutOfMemoryError) else "this machine"
            die(f"out of memory on {where}: use a smaller --batch-size or a smaller model "
                f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})")  # fmt: skip
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
    """argparse that takes no abbreviated flags (--epoch is not --epochs), reports a bad flag in one
    line instead of the whole usage block, with the flag it was probably meant to be, and whose
    --help shows every default."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=_ShowDefaults, allow_abbrev=False, **kwargs)

    def error(self, message):
        import difflib
        import re

        if unknown := re.search(r"unrecognized arguments: (-[^\s=]+)", message):
            flags = [flag for action in self._actions for flag in action.option_strings if flag.startswith("--")]
            close = difflib.get_close_matches(unknown[1], flags, n=1, cutoff=0.6)
            message = f"no flag {unknown[1]}" + (f"; did you mean {close[0]}?" if close else "")
        sys.exit(f"{self.prog}: error: {message} (see --help)")


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _number(kind, ok, what):
    """An argparse type: text -> kind, refused (one line) unless ok(value)."""

    def parse(text):
        value = kind(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    return parse


positive_int = _number(int, lambda v: v > 0, "a positive integer")
positive_float = _number(float, lambda v: v > 0, "a positive number")
decay = _number(float, lambda v: 0 <= v < 1, "in [0, 1)")


AMP_HELP = "autocast the forward passes: bf16 (a bare --amp) or fp16, with a gradient scaler per optimizer"
COMPILE_HELP = "torch.compile G and D; 'reduce-overhead' also captures CUDA graphs"


def add_run_flags(parser, script: str, *, seed=0, save_every=10, step="steps", distributed=False, ema=None,
                  amp_help=AMP_HELP, compile_help=COMPILE_HELP):  # fmt: skip
    """The flags every training script has (device, precision, compiling, seed, output folder, resume,
    snapshots, logs), as a "run" group of `parser`, returned for the script's own; with ema (the
    script's default decay) also --ema, with distributed=True (scripts that run under torchrun) --sync-bn."""
    run = parser.add_argument_group("run")
    add = run.add_argument
    # fmt: off
    add("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to train; auto picks CUDA if present")
    add("--amp", nargs="?", const="bf16", choices=["bf16", "fp16"], help=amp_help)
    add("--compile", nargs="?", const="default", choices=["default", "reduce-overhead", "max-autotune"],
        help=compile_help)
    add("--seed", type=int, default=seed, help="seeds weights, noise, data order: same seed, same run")
    if ema is not None:
        add("--ema", type=decay, default=ema, help="not in the paper: samples come from an exponential moving "
            "average of G's weights with this decay (Yazici et al. 2019); 0: from G itself")
    add("--deterministic", action="store_true",
        help="the same seed gives the same run on a GPU too (as on a CPU): deterministic kernels only, slower")
    add("--tensorboard", action="store_true", help="also write TensorBoard event files to the run folder")
    add("--out", help=f"run folder (default runs/{script}/<dataset>-<time>)")
    add("--resume", help="checkpoint (or run folder) to continue from; its run folder is reused")
    add("--save-every", type=positive_int, default=save_every,
        help="also keep a snapshot checkpoints/epoch_XXX.pt every N epochs: the networks that sample and score")
    add("--full-snapshots", action="store_true", help="snapshots as complete as last.pt: to resume from, too")
    if distributed:
        add("--sync-bn", action="store_true", help="under torchrun: batch norm statistics over all processes' "
            "shares of a batch (SyncBatchNorm); off, as the papers trained on one GPU")
    add("--log-every", type=positive_int, default=100,
        help=f"average the losses over N {step}, then log them (the only host sync in the loop)")
    # fmt: on
    return run


# DataLoader worker processes for image folders: 4, or as many as the cores this process may use
WORKERS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
# the run flags a resumed run may change: how, not what, is trained
RESUMABLE_RUN_FLAGS = {"device", "amp", "compile", "save_every", "full_snapshots", "log_every", "sync_bn",
                       "deterministic", "tensorboard"}  # fmt: skip


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
        args.resume = str(find_checkpoint(args.resume, say=False))
        ckpt = load_checkpoint(args.resume, script)
        if "optimizers" not in ckpt:
            die(f"{args.resume} is a snapshot (the networks that sample and score): resume from the run's "
                f"checkpoints/last.pt, or keep resumable snapshots with --full-snapshots")  # fmt: skip
        cfg = resume_config(ckpt["cfg"], args, explicit_flags(build_parser, argv), resumable)
        cfg["resume"] = args.resume
        if os.environ.get("RANK", "0") == "0":
            print(f"resuming {args.resume}: from step {ckpt['step']:,}, epoch {ckpt['epoch'] + 1}")
    if cfg.get("amp") == "bf16" and pick_device(cfg["device"]).type == "cuda" and not torch.cuda.is_bf16_supported():
        die(
            f"--amp bf16: this GPU ({torch.cuda.get_device_name()}) has no bfloat16; use --amp fp16 (a gradient scaler)"
        )
    if cfg.get("compile"):  # on a CPU, torch's C++ builder warns that it found no CUDA runtime: not news
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    if cfg.get("compile") and os.environ.get("RANK", "0") == "0":
        print("--compile: the first steps compile the networks, which takes a minute or more the first time")
    return cfg, ckpt


def refuse_finished(cfg: dict, step: int, total_steps) -> None:
    """--resume with --epochs/--steps that the run has already reached: one line, not a silent "done"."""
    if cfg.get("resume") and step >= total_steps:
        asked = " and ".join(f"--{k} {cfg[k]}" for k in ("epochs", "steps") if cfg.get(k))
        die(f"{cfg['resume']} is at step {step:,}, as far as {asked} go: "
            f"to train on, resume with a larger --epochs or --steps")  # fmt: skip


def eval_config(build_parser, argv, script: str, resumable: set[str], flag: str):
    """For `python <script>.py --eval-... --ckpt PATH [flags]`: the checkpoint's run config with
    the flags typed now applied where `resumable` allows, the checkpoint, and the device."""
    args = build_parser().parse_args(argv)
    if not args.ckpt:
        die(f"{flag} needs --ckpt PATH")
    ckpt = load_checkpoint(find_checkpoint(args.ckpt, "--ckpt"), script)
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


def cuda_kernels(deterministic: bool = False) -> None:
    """On CUDA, by default: cuDNN times its convolution algorithms once per input shape and keeps
    the fastest (the shapes never change in these loops, so it pays), and float32 matrix products
    and convolutions run on TF32 tensor cores (10-bit mantissas, plenty for GAN training).
    deterministic (--deterministic): the same seed gives the same run on CUDA too, as it does on a
    CPU: no autotuning (which may pick other kernels in another run), cuDNN's deterministic
    algorithms, torch.use_deterministic_algorithms (an op that has no deterministic kernel warns,
    naming itself) and cuBLAS's fixed workspace (CUBLAS_WORKSPACE_CONFIG). No effect on the CPU."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS first starts
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = not deterministic, deterministic
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
            die(f"--{name.replace('_', '-')} {cfg[name]} is the global batch and does not split evenly over "
                f"{ddp.world} processes; make it a multiple of {ddp.world}")  # fmt: skip
    if cuda and ddp.local_rank >= torch.cuda.device_count():
        die(f"process {ddp.local_rank} of this machine has no GPU of its own ({torch.cuda.device_count()} visible); "
            f"start at most {torch.cuda.device_count()} processes per machine (--nproc_per_node)")  # fmt: skip
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


def seed_everything(seed: int) -> None:
    """torch's generators (the CPU's and every GPU's), which are all the scripts draw from; Python's
    and NumPy's too, for code of one's own."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """torch's generators' states (as plain tensors, so that weights_only loading reads them)."""
    return {
        "torch": torch.get_rng_state(),
        **({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


# --------------------------------------------------------------------------- run folders, images
def make_run_dir(script: str, cfg: dict, subdirs=("samples", "checkpoints"), ddp: Distributed | None = None) -> Path:
    """The run folder, with `subdirs` inside: the resumed checkpoint's own run folder, or
    --out, or runs/<script>/<dataset>-<time>/. One line and exit if it cannot be created.
    Under torchrun rank 0 makes it and tells the others its name."""
    ddp = ddp or Distributed()
    if not ddp.main:
        return _gather(ddp, None)[0]  # rank 0's
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
    return _gather(ddp, run_dir)[0]


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
        die("the models are too large to even size (a tensor of more than 2^63 bytes): make them smaller "
            "(e.g. --z-dim, widths)")  # fmt: skip
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


def find_checkpoint(path, flag: str = "--resume", say: bool = True) -> Path:
    """`path` itself, or for a run folder or its checkpoints/ folder, the last.pt inside (said in one line)."""
    path = Path(path)
    if path.is_dir():
        last = next((p for p in (path / "last.pt", path / "checkpoints" / "last.pt") if p.is_file()), None)
        if last is None:
            die(f"{flag} {path} is a folder with no last.pt or checkpoints/last.pt; give a checkpoint file")
        if say:
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
        die(f"{path} was written by another version of these scripts (checkpoint format {state.get('format')}, this "
            f"code reads {CHECKPOINT_FORMAT}): train it again, or use the version that wrote it")  # fmt: skip
    wanted = (script,) if isinstance(script, str) else script
    if wanted and state.get("script") not in wanted:
        die(f"{path} was written by {state.get('script')}.py, not {' or '.join(w + '.py' for w in wanted)}")
    return state


def save_training_state(path, script: str, cfg: dict, models: dict, optimizers: dict, *, ddp=None, per_rank=None,
                        scalers=None, keep=None, **progress) -> None:  # fmt: skip
    """Checkpoint a training run: its config, the weights and optimizer states of `models` and
    `optimizers` (dicts of name -> module/optimizer), the RNG states, `per_rank` (state each
    process holds for itself, like cyclegan's image pools) and `progress` (epoch, step, fixed
    noise, ...), so that --resume continues exactly where it stopped. Under torchrun every
    process calls it (their RNG states are gathered) and rank 0 writes: rank 0's own state at
    the top level, as a one-process run has it, the others' under "ranks". A snapshot (`keep`: the
    names of the models that sample and score, unless cfg["full_snapshots"]) holds only those, the
    config and the progress: a fraction of the size, enough for the sampler and the scores, not to resume."""
    ddp = ddp or Distributed()
    if keep is not None and not cfg.get("full_snapshots"):
        kept = {name: models[name].state_dict() for name in keep if name in models}
        if ddp.main:
            save_checkpoint({"cfg": cfg, **progress, "models": kept}, path, script)
        return
    ranks = _gather(ddp, {"rng": rng_state(), **(per_rank or {})})
    states = lambda objects: {name: thing.state_dict() for name, thing in (objects or {}).items()}
    if ddp.main:
        save_checkpoint({"cfg": cfg, **progress, **ranks[0], **({"ranks": ranks[1:]} if ddp.torchrun else {}),
                         "models": states(models), "optimizers": states(optimizers), "scalers": states(scalers)},
                        path, script)  # fmt: skip


def restore_training_state(ckpt: dict, models: dict, optimizers: dict, ddp=None, scalers=None) -> dict:
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
    for name, scaler in (scalers or {}).items():  # fp16's loss scales; a run resumed in another --amp starts anew
        if scaler.is_enabled() and ckpt.get("scalers", {}).get(name):
            scaler.load_state_dict(ckpt["scalers"][name])
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
    """losses.csv, losses.png, the progress bar and (--tensorboard) TensorBoard events of a training run.

    `add(metrics, step, epoch)` adds a step's metrics (a 1-D tensor, on the device) to a running sum;
    every cfg["log_every"] steps, and at each `flush()` (an epoch's end), the window's means are read
    back in one host sync, the only one in the loop, and written as a CSV row, TensorBoard scalars
    and the bar's text. A resumed run (cfg["resume"]) drops the rows logged after its checkpoint's
    step (lost work), and has TensorBoard purge them, so that both read as one uninterrupted run.

    columns        names of the entries of the metrics tensor, in order
    status         the bar's text: a format string over the column names, or a function of the row
    extra          optional: a function returning more columns by name at each flush (0-d tensors
                   on the device are read back in the same sync, floats as they are)
    images_per_step  images a step consumes, for the rate column (`rate`, images_per_s by default)
    plots          losses.png's panels, {title: [column, ...]}, drawn by plot() at each epoch's end,
                   which also sends the epoch's sample grid (samples/epoch_XXX.png) to TensorBoard
    cpu_recipe     a shorter run for a CPU, measured in the script's docs page: said once, after the
                   first step's warm-up, if on a CPU the whole run would take more than two hours
    ddp            under torchrun: the means are averaged over the processes (in the same sync),
                   and only rank 0 writes files and shows the bar
    """

    def __init__(self, run_dir, columns, cfg, *, images_per_step, total_steps, step, status, extra=None,
                 extra_columns=(), rate="images_per_s", plots=None, cpu_recipe=None, ddp=None):  # fmt: skip
        from tqdm import tqdm

        self.ddp, resumed = ddp or Distributed(), bool(cfg.get("resume"))
        self.path, self.run_dir = Path(run_dir) / "losses.csv", Path(run_dir)
        self.columns, self.extra_columns, self.rate = list(columns), list(extra_columns), rate
        self.every, self.images_per_step, self.status, self.extra = cfg["log_every"], images_per_step, status, extra
        self.plots, self.cpu_recipe, self.total_steps = plots, cpu_recipe, total_steps
        self.step, self.epoch, self.window, self.sums, self.last_status = step, 0, 0, None, ""
        self.warm = None  # (step, time) once the first step, its warm-up, is done
        self.window_start = time.perf_counter()
        if self.ddp.main:
            kept = [r for r in self.rows() if int(r["step"]) <= step] if resumed and self.path.exists() else []
            with open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, ["step", "epoch", *self.columns, *self.extra_columns, rate])
                writer.writeheader()
                writer.writerows(kept)
        self.tensorboard = None
        if cfg.get("tensorboard") and self.ddp.main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                die("--tensorboard needs the tensorboard package: pip install tensorboard")
            self.tensorboard = SummaryWriter(self.run_dir, purge_step=step + 1 if resumed else None)
            config = "\n".join(f"    {key}: {value!r}" for key, value in sorted(cfg.items()))  # a code block
            self.tensorboard.add_text("config", config, step)
        # drawn from the first step on (delay), so that what a script prints before it is on lines of its own
        self.bar = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True, disable=not self.ddp.main,
                        delay=1e-9)  # fmt: skip

    def add(self, metrics: torch.Tensor, step: int, epoch: int) -> None:
        """Count one finished step (the step counter after it, the epoch it belongs to)."""
        self.sums = metrics if self.sums is None else self.sums + metrics
        self.step, self.epoch, self.window = step, epoch, self.window + 1
        self.bar.update()
        if self.cpu_recipe and metrics.device.type == "cpu" and self.ddp.main:
            self._note_long_cpu_run()
        if self.window == self.every:
            self.flush()

    def _note_long_cpu_run(self) -> None:
        if self.warm is None:
            self.warm = self.step, time.perf_counter()
            return
        seconds, done = time.perf_counter() - self.warm[1], self.step - self.warm[0]
        if seconds < 3:  # the speed of a few seconds of steps after the first
            return
        hours = (self.total_steps - self.step) * seconds / done / 3600
        if hours > 2:
            warn(
                f"on this CPU the run's {self.total_steps:,} steps take about {hours:,.0f} hours at the speed of "
                f"its steps so far; for a CPU, {self.cpu_recipe}"
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
            logged = self.columns + self.extra_columns + [self.rate]
            if self.ddp.main:
                with open(self.path, "a", newline="") as f:
                    csv.writer(f).writerow([self.step, self.epoch + 1] + [f"{values[c]:.6g}" for c in logged])
            for column in logged if self.tensorboard else ():
                self.tensorboard.add_scalar(column, values[column], self.step)
            self.last_status = self.status(values) if callable(self.status) else self.status.format(**values)
            self.bar.set_postfix_str(f"{self.last_status}, {values[self.rate]:.0f}/s")
        self.sums, self.window, self.window_start = None, 0, time.perf_counter()

    def close(self) -> None:
        """Write the last window and redraw losses.png (what a run that stops early ends with)."""
        self.flush()
        self.plot()
        self.bar.close()
        if self.tensorboard:
            self.tensorboard.close()

    def rows(self) -> list[dict]:
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def plot(self) -> None:
        """losses.png beside losses.csv: a panel per entry of `plots`, its columns against the step; and
        the newest sample grid, TensorBoard's image of the step."""
        rows = self.rows() if self.plots and self.ddp.main else []
        if rows:
            panels = {title: {key: [float(r[key]) for r in rows] for key in keys} for title, keys in self.plots.items()}
            plot_panels(self.run_dir / "losses.png", [int(r["step"]) for r in rows], panels)
        grids = (
            sorted(self.run_dir.glob("*/epoch_*.png")) if self.tensorboard else []
        )  # samples/ (gan_mlp 1-D: frames/)
        if grids:
            from PIL import Image

            self.tensorboard.add_image("samples", np.asarray(Image.open(grids[-1]).convert("RGB")), self.step,
                                       dataformats="HWC")  # fmt: skip
            self.tensorboard.flush()


class Terminated(KeyboardInterrupt):
    """SIGTERM, what `timeout`, `kill` and schedulers (SLURM, ...) send before they kill: a stop like Ctrl-C."""


def _terminate(signum, frame):
    raise Terminated


@contextmanager
def save_on_interrupt(log: TrainingLog, save_last):
    """Run a training loop so that Ctrl-C and SIGTERM are normal, saved stops: the log's last window
    is written, `save_last()` writes the last checkpoint and returns its path, and the run says in
    one line where it stopped and how to continue, then exits with status 130 (128 + SIGINT, what
    shells report for an interrupt) or 143 (128 + SIGTERM). The progress bar is closed however the
    block ends. Under torchrun nothing is saved then (the other processes may already be gone, and
    saving takes them all): the last checkpoint written, complete by construction, is where to resume."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    except KeyboardInterrupt as stop:
        log.bar.close()
        what = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        if log.ddp.world > 1:
            last = log.run_dir / "checkpoints" / "last.pt"
            saved = f"the last complete checkpoint is {last}" if last.exists() else "no checkpoint was complete yet"
            continue_with = f"; continue with --resume {last}" if last.exists() else ""
            log.ddp.print(f"{what} at step {log.step}; {saved}{continue_with}", file=sys.stderr)
        else:
            log.close()
            last = save_last()
            print(f"{what} at step {log.step}; saved {last}; continue with --resume {last}", file=sys.stderr)
        raise SystemExit(143 if isinstance(stop, Terminated) else 130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
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
    for name in MNIST_FILES:
        target = raw_dir / name
        if target.exists():
            continue
        for source, opener in ((src_dir / name, open), (src_dir / f"{name}.gz", gzip.open)):
            if source.exists():
                raw_dir.mkdir(parents=True, exist_ok=True)  # only where there is a file to put: no empty folders
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
            die(f"the {name} files {files} in {raw_dir} are corrupt ({type(exc).__name__}: {reason}); "
                f"replace them with the originals")  # fmt: skip
        if len(ds.data) != len(ds.targets):
            die(f"the {name} images and labels in {raw_dir} disagree ({len(ds.data)} images, {len(ds.targets)} labels)")
        return ds.data, ds.targets
    hint = f"{name} is not in {raw_dir} and could not be downloaded: put "
    hint += f"{', '.join(f + '.gz' for f in MNIST_FILES)} there, or pass --data-root"
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
    hint = f"CIFAR-10 is not in {Path(root) / 'cifar-10-batches-py'} and could not be downloaded: put "
    hint += f"cifar-10-python.tar.gz in {root}, or pass --data-root"
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
    from PIL import Image, UnidentifiedImageError

    # ImageFolder wants root/<class>/<image>; a flat folder of images is its own single class
    classes = {p.name for p in path.iterdir() if p.is_dir()} or None
    root, allow = (path, classes) if classes else (path.parent, {path.name})

    def readable(file):  # an image file whose header PIL reads: the others are left out of the count, named once
        if Path(file).parent.name not in allow or not file.lower().endswith(datasets.folder.IMG_EXTENSIONS):
            return False
        try:
            with Image.open(file):
                return True
        except (OSError, ValueError, SyntaxError, UnidentifiedImageError) as exc:
            warn(f"skipping unreadable image {file} ({exc})")
            return False

    try:  # sibling folders of a flat `path` are classes with no valid files: allowed
        folder = datasets.ImageFolder(root, transform=transform, allow_empty=True, is_valid_file=readable)
    except (FileNotFoundError, RuntimeError) as exc:
        die(f"no images found under {path} ({str(exc).splitlines()[0][:100]})")
    if not folder.samples:
        die(f"no images found under {path}")
    return SkipUnreadable(folder)  # an image whose header read but whose pixels do not is skipped in training
