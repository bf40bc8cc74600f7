"""One command that proves and measures every training script on a CUDA GPU, and writes one report.

  python3 benchmarks/gpu_check.py --out DIR --anchors ANCHORS_DIR --mnist MNIST_T10K_DIR
  python benchmarks/gpu_check.py --dry-run --out DIR [--anchors DIR] [--mnist DIR]

On one NVIDIA H200 the whole check ends in under 8 minutes (--budget, default 450 s); --dry-run
runs the same code on the CPU at toy sizes in about a minute (tests/test_gpu_check.py calls it),
so that the check cannot rot while no GPU is at hand. Nothing is downloaded: the data are
written to a scratch folder (synthetic) or come by flag (real), and a library the machine lacks
is reported in one line and what needs it skipped.

Sections, each with its own time cap; the report is rewritten after each one, so a partial
report always comes back:
  versions     Python, torch, CUDA, cuDNN, NCCL, the GPU and its driver, every library used
  correctness  pytest -m cuda tests/test_cuda.py (each script's real loop in fp32, --amp (bf16),
               --amp fp16 and --compile with no host sync inside a log window, resume equal to
               the uninterrupted run under --deterministic, CUDA checkpoints sampled on the CPU,
               torchrun with NCCL), one pytest process per script, side by side. Beside them, in
               as many processes as the cores allow, every --compile run of the speed table is
               compiled once, cold, to fill the inductor cache (TORCHINDUCTOR_CACHE_DIR in the
               scratch folder): its time from process start to the first finished step is the
               cold start-up cost of --compile.
  speed        each script at its paper batch size (its own default) on 60,000 synthetic
               MNIST-format images, dcgan and wgan_gp (the ResNet) also on a synthetic CIFAR-10
               (50,000 32x32 RGB images, torchvision's pickle layout), and dcgan at 64x64 (the
               nets of pytorch/examples' DCGAN), in fp32, bf16 autocast, fp16 autocast with its
               gradient scalers, --compile and --compile + bf16: one run after another in one
               process (no GPU work overlaps), each through the script's own main() and its real
               loop. The clock starts after a warm-up, with a device sync, and stops after
               --seconds with another; the window is timed in two halves, whose difference is
               the spread.
  anchors      eriklindernoren/PyTorch-GAN's dcgan and pytorch/examples' dcgan, copied from
               --anchors into the scratch folder, each patched only to time its iterations (the
               report shows the diff), on the same synthetic MNIST at the same batch size
  quality      dcgan on the real 10k MNIST test digits (--mnist: the t10k IDX .gz files; the
               first 8,000 train, the last 2,000 are held out, as benchmarks/results.sh splits
               them) for --quality-seconds, stopped as Ctrl-C stops it (last.pt saved); then
               sampler.py's score (classifier IS / FID) and a grid of its samples

Writes into --out (at most 5 files): report.md, report.json, quality_samples.png, cuda_tests.txt
(pytest's output) and log.txt (this check's log and the tails of its processes' output).
"""

import time

START = time.perf_counter()  # before anything heavy is imported

import argparse  # noqa: E402
import contextlib  # noqa: E402
import difflib  # noqa: E402
import gzip  # noqa: E402
import importlib  # noqa: E402
import importlib.metadata  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
import xml.etree.ElementTree as ElementTree  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "benchmarks"):  # the scripts, and throughput.py beside this file
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

SCRIPTS = ("gan_mlp", "gan_maxout", "dcgan", "wgan_gp", "infogan", "bigan", "cyclegan")
MODES = {
    "fp32": [],
    "bf16": ["--amp"],
    "fp16": ["--amp", "fp16"],
    "compile": ["--compile"],
    "compile+bf16": ["--compile", "--amp"],
}
# every library the check, the scripts, the tests and the sampler import, and those requirements.txt names
LIBRARIES = "torchvision triton numpy scipy matplotlib pillow imageio tqdm pytest fire termcolor torch-fidelity".split()
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
DRY_ALL_MODES = "gan_mlp"  # the config a dry run measures in every mode (the others: fp32 only)
REPORT_FILES = ("report.md", "report.json", "quality_samples.png", "cuda_tests.txt", "log.txt")
MAX_TEXT = 2_000_000  # characters kept of a log written into --out (the files that come back are capped)

# The speed table's rows. Flags are each script's own; the batch size is each script's default,
# which is its paper's. The data set decides the nets where a script has several.
CONFIGS = [
    {"id": "gan_mlp", "script": "gan_mlp", "data": "mnist", "flags": ["--dataset", "mnist"]},
    {"id": "gan_maxout", "script": "gan_maxout", "data": "mnist", "flags": ["--test-range", "test:0:1000"]},
    {"id": "dcgan", "script": "dcgan", "data": "mnist", "flags": []},
    {"id": "wgan_gp", "script": "wgan_gp", "data": "mnist", "flags": []},
    {"id": "infogan", "script": "infogan", "data": "mnist", "flags": ["--eval-range", "test:0:1000"]},
    {"id": "bigan", "script": "bigan", "data": "mnist", "flags": ["--eval-range", "test:0:1000"]},
    {
        "id": "cyclegan",
        "script": "cyclegan",
        "data": "mnist",
        "flags": ["--eval-range", "test:0:1000", "--decay-epochs", "1"],
    },
    {"id": "dcgan-cifar10", "script": "dcgan", "data": "cifar10", "flags": ["--dataset", "cifar10"]},
    {"id": "wgan_gp-cifar10", "script": "wgan_gp", "data": "cifar10", "flags": ["--dataset", "cifar10"]},
    {"id": "dcgan-mnist64", "script": "dcgan", "data": "mnist", "flags": ["--image-size", "64"]},
]
# what each row is, for the report
CONFIG_NOTES = {
    "gan_mlp": "MLPs, 28x28 grey",
    "gan_maxout": "maxout D, 28x28 grey; trains on train[0:50000] (the paper's split)",
    "dcgan": "InfoGAN's MNIST nets, 28x28 grey",
    "wgan_gp": "MNIST nets, 28x28 grey; images = real images the critic reads (5 x batch per generator step)",
    "infogan": "28x28 grey",
    "bigan": "MLPs, 28x28 grey",
    "cyclegan": "32x32, grey <-> coloured digits; images = A and B images (2 per pair), epoch = 30,000 pairs",
    "dcgan-cifar10": "DCGAN paper nets, 32x32 RGB",
    "wgan_gp-cifar10": "ResNets, 32x32 RGB; images = real images the critic reads (G makes 2 x batch)",
    "dcgan-mnist64": "DCGAN paper nets at 64x64 (MNIST resized once, on the device): pytorch/examples' nets",
}
# toy sizes for --dry-run: small batches and nets, so that the CPU does each run in a second
DRY_FLAGS = {
    "gan_mlp": ["--batch-size", "8", "--g-hidden", "32", "--d-hidden", "32"],
    "gan_maxout": ["--batch-size", "8", "--g-hidden", "64", "--d-units", "16", "--train-range", "train:0:1400"]
    + ["--valid-range", "train:1400:1600", "--test-range", "test:0:100"],
    "dcgan": ["--batch-size", "8"],
    "wgan_gp": ["--batch-size", "4", "--width", "8", "--n-critic", "2"],
    "infogan": ["--batch-size", "8", "--train-range", "train:0:1000"],
    "bigan": ["--batch-size", "8", "--hidden", "64", "--train-range", "train:0:1000"],
    "cyclegan": ["--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--train-range", "train:0:200"],
    "dcgan-cifar10": ["--batch-size", "8", "--g-width", "8", "--d-width", "8"],
    "wgan_gp-cifar10": ["--batch-size", "4", "--width", "8", "--n-critic", "2"],
    "dcgan-mnist64": ["--batch-size", "8", "--g-width", "8", "--d-width", "8"],
}

# The peers' scripts, as benchmarks take them from ../shared/anchors (its README says how each
# runs). Each copy is changed in two places only: a timing helper is inserted before the epoch
# loop, and the batch loop iterates through it.
ANCHORS = {
    "pg_dcgan.py": {
        "title": "eriklindernoren/PyTorch-GAN dcgan",
        "what": "its own nets at 32x32 (MNIST resized per image by a DataLoader, 0 workers)",
        "loop": (
            "for i, (imgs, _) in enumerate(dataloader):",
            "for i, (imgs, _) in _gpu_check_timed(enumerate(dataloader)):",
        ),
        "before": "for epoch in range(opt.n_epochs):",
    },
    "pe_dcgan.py": {
        "title": "pytorch/examples dcgan",
        "what": "DCGAN nets at 64x64 (MNIST resized per image by a DataLoader, its default 2 workers)",
        "loop": (
            "for i, data in enumerate(dataloader, 0):",
            "for i, data in _gpu_check_timed(enumerate(dataloader, 0)):",
        ),
        "before": "for epoch in range(opt.niter):",
    },
}
ANCHOR_TIMER = """# ---- inserted by benchmarks/gpu_check.py: times the training iterations, then ends the process ----
def _gpu_check_timed(batches):
    import json, os, time

    warmup, seconds = int(os.environ["GPU_CHECK_WARMUP"]), float(os.environ["GPU_CHECK_SECONDS"])
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    marks, finished = {}, 0  # finished: iterations done before the one about to start
    for finished, batch in enumerate(batches):
        if finished == 1:
            marks["first_iteration_unix"] = time.time()
        if finished == warmup:
            sync()
            marks["t0"] = time.perf_counter()
        elif finished > warmup and time.perf_counter() - marks["t0"] >= seconds:
            break
        yield batch
    else:
        finished += 1  # the data ran out: the last iteration finished too
    sync()
    if "t0" in marks:
        marks.update(iterations=finished - warmup, seconds=time.perf_counter() - marks["t0"])
    if torch.cuda.is_available():
        marks["peak_memory_mib"] = torch.cuda.max_memory_allocated() / 2**20
    with open(os.environ["GPU_CHECK_TIMING"], "w") as f:
        json.dump(marks, f)
    os._exit(0)


"""


# --------------------------------------------------------------------------- small helpers
def now():
    return time.perf_counter() - START


class Log:
    """This check's log: printed (flushed: the GPU tool shows the output's tail) and kept for log.txt."""

    def __init__(self):
        self.lines = []

    def __call__(self, message):
        line = f"[{now():6.1f} s] {message}"
        self.lines.append(line)
        print(line, flush=True)


LOG = Log()


def tail(text, lines=15, width=300):
    kept = [line[:width] for line in (text or "").replace("\r", "\n").splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def read_text(path):
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def version_of(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def kill_group(proc):
    """End a process this check started and whatever it started and left behind (its own process
    group: launch gives each one its own session), e.g. a DataLoader worker of a peer's script."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def launch(cmd, log_path, env, cwd=ROOT):
    """Start a process in its own session (so that it and its children can be ended together)."""
    log_file = open(log_path, "w")  # noqa: SIM115 (closed by the caller through proc.log_file)
    proc = subprocess.Popen(
        [str(c) for c in cmd], cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    proc.log_file, proc.log_path = log_file, Path(log_path)
    return proc


def finish(proc, deadline):
    """Wait for a process until `deadline` (perf_counter - START); end it there. Returns its exit
    status, or None when it had to be ended."""
    try:
        rc = proc.wait(timeout=max(0.1, deadline - now()))
    except subprocess.TimeoutExpired:
        rc = None
    kill_group(proc)
    proc.log_file.close()
    return rc


# --------------------------------------------------------------------------- data
def write_cifar10(root, n_train, n_test, seed=0):
    """A synthetic CIFAR-10 (random pixels) in torchvision's layout, <root>/cifar-10-batches-py/:
    five data_batch files and a test_batch of pickled {"data": uint8 (N, 3072), "labels": [...]},
    and batches.meta. torchvision checks the real files' md5 sums, so a process that reads these
    must call allow_synthetic_cifar10() first."""
    import numpy as np

    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [n_train // 5 + (i < n_train % 5) for i in range(5)]
    for name, n in [(f"data_batch_{i + 1}", k) for i, k in enumerate(sizes)] + [("test_batch", n_test)]:
        batch = {
            "batch_label": name,
            "labels": rng.integers(0, 10, n).tolist(),
            "data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
            "filenames": [f"{name}_{i}.png" for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR_CLASSES, "num_cases_per_batch": sizes[0], "num_vis": 3072}, f, protocol=2)


def file_exists(fpath, md5=None):
    """What torchvision's CIFAR10 may check in place of the real files' md5 sums: that the file is there."""
    return os.path.isfile(fpath)


def allow_synthetic_cifar10():
    """Let torchvision read write_cifar10's files: its CIFAR10 compares every file's md5 sum with
    the real data set's, in torchvision.datasets.cifar.check_integrity, replaced here (in this
    process only) by file_exists."""
    import torchvision.datasets.cifar

    torchvision.datasets.cifar.check_integrity = file_exists


def read_idx_gz(path):
    import numpy as np

    data = gzip.open(path).read()
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx_gz(path, array):
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.tobytes())


def real_mnist_root(source, root, n_train, n_test):
    """<root>/MNIST/raw/ with the real t10k digits of `source` split as benchmarks/results.sh
    splits them: the first n_train as the training file, the next n_test as the test file."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for kind in ("images-idx3", "labels-idx1"):
        array = read_idx_gz(Path(source) / f"t10k-{kind}-ubyte.gz")
        if len(array) < n_train + n_test:
            raise ValueError(f"{source} holds {len(array)} digits, fewer than {n_train} + {n_test}")
        write_idx_gz(raw / f"train-{kind}-ubyte.gz", array[:n_train])
        write_idx_gz(raw / f"t10k-{kind}-ubyte.gz", array[n_train : n_train + n_test])
    return Path(root)


# --------------------------------------------------------------------------- the worker: runs inside a script's process
class StopRun(BaseException):
    """Ends a timed run from inside the script's loop: a BaseException, so no script's
    `except Exception` holds it, and not a KeyboardInterrupt, so nothing is saved."""


def dynamo_graphs():
    """Graphs torch.compile has made in this process so far (None where the counter is missing)."""
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])
    except Exception:
        return None


@contextlib.contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield old
    finally:
        setattr(obj, name, old)


def run_script(
    script, argv, *, device, warmup, seconds, stop="timed", compile_backend="inductor", patches=(), on_end=None
):
    """Run `script`.main(argv) in this process and time its real loop through utils.TrainingLog,
    whose add() the loop calls after every step and whose flush() ends each epoch: add is wrapped
    (the original runs first) to sync and read the clock after `warmup` steps, at half time and
    after `seconds`, then to end the run (StopRun; stop="interrupt": KeyboardInterrupt, the loop's
    own Ctrl-C path, which saves last.pt). A flush (the epoch's end) ends a timed run too, so no
    epoch-end work is timed. Returns what was measured."""
    import torch

    import utils

    module = importlib.import_module(script)
    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    rec = {"steps": 0}
    began = time.perf_counter()
    cls = utils.TrainingLog
    original_init, original_add, original_flush = cls.__init__, cls.add, cls.flush

    def mark_end(reason):
        sync()
        rec.update(t1=time.perf_counter(), end=reason, timed_steps=rec["steps"] - warmup, graphs1=dynamo_graphs())
        if on_end:
            on_end()

    def init(self, *args, **kwargs):
        # the script's own numbers: images one step handles, and steps (with --epochs 1: in an epoch)
        rec["images_per_step"], rec["steps_per_run"] = kwargs.get("images_per_step"), kwargs.get("total_steps")
        original_init(self, *args, **kwargs)

    def add(self, *args, **kwargs):
        original_add(self, *args, **kwargs)
        rec["steps"] += 1
        n = rec["steps"]
        if n == 1:
            sync()
            rec["first_step_s"], rec["first_step_unix"] = time.perf_counter() - began, time.time()
        if n == warmup:
            sync()
            rec["t0"], rec["graphs0"] = time.perf_counter(), dynamo_graphs()
        elif n > warmup and "t1" not in rec:
            elapsed = time.perf_counter() - rec["t0"]
            if "half" not in rec and elapsed >= seconds / 2:
                sync()
                rec["half"] = (n - warmup, time.perf_counter() - rec["t0"])
            if elapsed >= seconds:
                mark_end("time")
                raise KeyboardInterrupt if stop == "interrupt" else StopRun

    def flush(self, *args, **kwargs):
        if stop == "interrupt":
            return original_flush(self, *args, **kwargs)
        if "t0" in rec and "t1" not in rec:
            mark_end("epoch end")
        raise StopRun

    compile_patch = contextlib.nullcontext()
    if compile_backend != "inductor":  # the dry run: dynamo alone, without inductor's code generation
        import functools

        compile_patch = patched(torch, "compile", functools.partial(torch.compile, backend=compile_backend))
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(patched(cls, "__init__", init))
            stack.enter_context(patched(cls, "add", add))
            stack.enter_context(patched(cls, "flush", flush))
            stack.enter_context(compile_patch)
            for obj, name, value in patches:
                stack.enter_context(patched(obj, name, value))
            stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(contextlib.redirect_stderr(err))
            module.main(argv)
        rec["end"] = rec.get("end") or "the run ended"
    except StopRun:
        pass
    except SystemExit as exc:  # a script's one-line error, or the interrupt path's "saved ..." line
        rec["exit"] = str(exc.code)
        if not (stop == "interrupt" and "t1" in rec):
            rec["error"] = str(exc.code)
    except BaseException as exc:  # a bug, a CUDA error: keep the traceback's end
        rec["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        rec["traceback"] = tail("".join(traceback.format_exception(exc)), 12)
    if cuda:
        rec["peak_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    rec["stdout_head"] = out.getvalue().strip().splitlines()[:2]
    rec["stderr_tail"] = tail(err.getvalue(), 5)
    return rec


def summarize(rec, warmup):
    """Rates from a run_script record."""
    row = {k: rec.get(k) for k in ("first_step_s", "peak_memory_mib", "end", "error", "traceback", "stdout_head")}
    row["batch_images"] = rec.get("images_per_step")
    if "t1" not in rec or not rec.get("timed_steps"):
        row["status"] = "error" if rec.get("error") else "too short"
        if not rec.get("error"):
            row["error"] = f"the run ended after {rec['steps']} steps, before {warmup} warm-up steps and a timed one"
        return row
    seconds, steps = rec["t1"] - rec["t0"], rec["timed_steps"]
    per_step, images = rec.get("images_per_step"), None
    row.update(status="ok", timed_steps=steps, timed_s=round(seconds, 3), s_per_step=seconds / steps)
    if per_step:
        images = steps * per_step / seconds
        row["images_per_s"] = round(images, 1)
    if rec.get("steps_per_run") and math.isfinite(rec["steps_per_run"]):
        row["steps_per_epoch"] = int(rec["steps_per_run"])
        row["epoch_images"] = int(rec["steps_per_run"] * per_step) if per_step else None
        row["s_per_epoch"] = round(rec["steps_per_run"] * seconds / steps, 2)
    if rec.get("half") and 0 < rec["half"][0] < steps:
        (n1, t1), n2, t2 = rec["half"], steps - rec["half"][0], seconds - rec["half"][1]
        r1, r2 = n1 / t1, n2 / t2
        row["spread"] = round(abs(r1 - r2) / ((r1 + r2) / 2), 3)
    if rec.get("graphs0") is not None and rec.get("graphs1") is not None:
        row["graphs_during_timing"] = rec["graphs1"] - rec["graphs0"]
        row["graphs"] = rec["graphs1"]
    return row


def worker_speed(job, spec):
    import gc

    import torch

    gc.collect()  # the last run's nets and data, before its memory is given back and the peak reset
    torch._dynamo.reset()  # each run compiles afresh (from the warm inductor cache), as a new process would
    rec = run_script(
        job["script"],
        job["argv"],
        device=spec["device"],
        warmup=job["warmup"],
        seconds=job["seconds"],
        compile_backend=spec["compile_backend"],
    )
    row = summarize(rec, job["warmup"])
    if job.get("launch_unix") and rec.get("first_step_unix"):  # a process of its own: start-up from launch
        row["process_start_to_first_step_s"] = round(rec["first_step_unix"] - job["launch_unix"], 2)
    return row


def worker_quality(job, spec):
    """dcgan on the real digits for job["seconds"] after its first step, stopped through its
    Ctrl-C path (last.pt saved), its epoch-end work timed apart; then the sampler's scores."""
    import torch

    import dcgan
    import utils

    sync = torch.cuda.synchronize if spec["device"] == "cuda" else (lambda: None)
    spent, in_window = {}, {}  # seconds per kind of epoch-end work; those within the timed window

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            sync()  # the steps queued before belong to the steps' time
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t

        return wrapper

    work = [  # what dcgan does at each epoch's end, where these names still exist
        (dcgan, "save_samples", "samples grid"),
        (utils, "save_progress_gif", "progress.gif"),
        (utils, "save_training_state", "checkpoints"),
        (utils.TrainingLog, "plot", "losses.png"),
    ]
    patches = [(obj, name, timed(label, getattr(obj, name))) for obj, name, label in work if hasattr(obj, name)]
    rec = run_script(
        "dcgan",
        job["argv"],
        device=spec["device"],
        warmup=1,
        seconds=job["seconds"],
        stop="interrupt",
        compile_backend=spec["compile_backend"],
        patches=patches,
        on_end=lambda: in_window.update(spent),
    )
    result = {"train": {k: rec.get(k) for k in ("first_step_s", "peak_memory_mib", "error", "traceback", "exit")}}
    ckpt = Path(job["run_dir"]) / "checkpoints" / "last.pt"
    if "t1" in rec and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        wall, batch = rec["t1"] - rec["t0"], state["cfg"]["batch_size"]
        epoch_end = sum(in_window.values())
        steps = rec["timed_steps"]  # the steps after the first, which started the clock
        result["train"].update(
            steps=state["step"],
            epochs=round(state["epoch"] + state["epoch_step"] / (job["n_train"] // batch), 2),
            batch_size=batch,
            seconds=round(wall, 2),
            epoch_end_s=round(epoch_end, 2),
            epoch_end_parts={k: round(v, 2) for k, v in sorted(in_window.items(), key=lambda kv: -kv[1])},
            images_per_s_in_steps=round(steps * batch / max(1e-9, wall - epoch_end), 1),
            images_per_s_overall=round(steps * batch / wall, 1),
        )
        result["ckpt"] = str(ckpt)
    else:
        result["train"]["error"] = result["train"].get("error") or "no checkpoint was written"
        return result
    grids = sorted((Path(job["run_dir"]) / "samples").glob("epoch_*.png"))
    result["last_epoch_grid"] = str(grids[-1]) if grids else None
    try:
        import sampler
    except ImportError as exc:  # a package the sampler needs is missing here
        result["score_skipped"] = f"sampler.py cannot be imported ({exc}): carry the missing package's wheel"
        return result

    device = spec["device"]
    for name, call in (
        ("samples", lambda: sampler.score(str(ckpt), n=job["n"], device=device)),
        ("real held-out", lambda: sampler.score(str(ckpt), images=job["held_out"], device=device)),
        ("grid", lambda: sampler.sample(str(ckpt), n=64, nrow=8, seed=0, out=job["grid"], device=device)),
    ):
        out = io.StringIO()
        t = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                value = call()
            result.setdefault("score", {})[name] = {"text": out.getvalue().strip(), "value": value}
        except BaseException as exc:  # noqa: BLE001 (one line in the report, whatever it was)
            message = str(exc.code) if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
            result.setdefault("score", {})[name] = {"text": out.getvalue().strip(), "error": message[:400]}
        result["score"][name]["seconds"] = round(time.perf_counter() - t, 2)
    return result


def worker_main(args):
    """A process of this check's own (--worker FILE): runs the jobs in FILE one after another and
    appends one JSON line per job to its results file, so that a crash loses one job only."""
    spec = json.loads(Path(args.worker).read_text())
    import torch

    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    if spec["device"] == "cuda":  # the CUDA context, once, before any run is timed
        torch.zeros(1, device="cuda").add_(1)
        torch.cuda.synchronize()
    allow_synthetic_cifar10()
    results = Path(spec["results"])
    done = {json.loads(line)["id"] for line in read_text(results).splitlines() if '"result"' in line}
    overheads = {True: [6.0], False: [2.5]}  # seconds a run takes beyond its timed ones, with --compile or not
    for index, job in enumerate(spec["jobs"]):
        if job["id"] in done:
            continue
        compiled = "--compile" in job.get("argv", [])
        if job.get("deadline_unix") and time.time() > job["deadline_unix"]:
            result = {"status": "not run", "error": "the section's time cap was reached before it"}
        else:
            if job.get("deadline_unix"):  # time the rest of the section's runs shorter rather than drop them
                left = [j for j in spec["jobs"][index:] if j.get("deadline_unix") and j["id"] not in done]
                mean = {k: sum(v) / len(v) for k, v in overheads.items()}
                overhead = sum(mean["--compile" in j["argv"]] for j in left)
                share = (job["deadline_unix"] - time.time() - overhead) / len(left)
                job["seconds"] = max(min(job["seconds"], share), min(job["seconds"], 0.5))
            with open(results, "a") as f:
                f.write(json.dumps({"id": job["id"], "started": time.time()}) + "\n")
            began = time.perf_counter()
            try:
                result = {"speed": worker_speed, "quality": worker_quality}[job["kind"]](job, spec)
            except BaseException as exc:  # noqa: BLE001 (recorded; the next job still runs)
                result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:400]}
            if job["kind"] == "speed":
                overheads[compiled].append(max(0.0, time.perf_counter() - began - job["seconds"]))
        with open(results, "a") as f:
            f.write(json.dumps({"id": job["id"], "result": result}, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())


# --------------------------------------------------------------------------- the check
class Check:
    def __init__(self, args):
        self.args = args
        self.dry = args.dry_run
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        for name in REPORT_FILES:
            (self.out / name).unlink(missing_ok=True)
        self.scratch = Path(args.scratch or tempfile.mkdtemp(prefix="gpu_check_"))
        self.scratch.mkdir(parents=True, exist_ok=True)
        (self.scratch / "logs").mkdir(exist_ok=True)
        self.deadline = args.budget
        import torch

        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() and not self.dry else "cpu"
        self.cores = os.cpu_count() or 1
        self.warmup = args.warmup if args.warmup is not None else (1 if self.dry else 10)
        self.seconds = args.seconds if args.seconds is not None else (0.1 if self.dry else 2.0)
        self.compile_backend = args.compile_backend or ("eager" if self.dry else "inductor")
        self.env = dict(os.environ)
        self.env.update(
            TORCHINDUCTOR_CACHE_DIR=str(self.scratch / "inductor"),
            TORCHINDUCTOR_FX_GRAPH_CACHE="1",
            TORCHINDUCTOR_AUTOGRAD_CACHE="1",
            TORCHINDUCTOR_COMPILE_THREADS=str(self.inductor_threads()),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        if self.dry:
            self.env.setdefault("OMP_NUM_THREADS", "1")  # side by side on a small CPU
        self.report = {
            "title": "GPU check" + (" (dry run on the CPU: toy sizes, not GPU figures)" if self.dry else ""),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "dry_run": self.dry,
            "device": self.device,
            "budget_s": args.budget,
            "settings": {
                "warmup_steps": self.warmup,
                "seconds_per_run": self.seconds,
                "compile_backend": self.compile_backend,
                "quality_seconds": self.quality_seconds(),
            },
            "sections": {},
            "versions": {},
            "tests": {},
            "warm": [],
            "speed": [],
            "anchors": [],
            "quality": {},
            "findings": [],
        }

    # ----------------------------------------------------------------- budget
    def left(self):
        return self.deadline - now()

    def quality_seconds(self):
        return self.args.quality_seconds if self.args.quality_seconds is not None else (3.0 if self.dry else 60.0)

    def inductor_threads(self):
        return 1 if self.dry else max(1, min(4, self.cores // 8))

    def side_by_side_env(self):
        """For the processes that share the machine (tests, cold compiles): a few CPU threads each."""
        return {**self.env, "OMP_NUM_THREADS": self.env.get("OMP_NUM_THREADS", "2")}

    def section(self, name, status, seconds=None, note=""):
        self.report["sections"][name] = {
            "status": status,
            "seconds": None if seconds is None else round(seconds, 1),
            "note": note,
        }
        self.write()

    def wanted(self, name):
        return not self.args.sections or name in self.args.sections

    # ----------------------------------------------------------------- output
    def write(self):
        self.report["elapsed_s"] = round(now(), 1)
        (self.out / "report.json").write_text(json.dumps(self.report, indent=1, default=str))
        (self.out / "report.md").write_text(render_markdown(self.report))
        (self.out / "log.txt").write_text("\n".join(LOG.lines)[-MAX_TEXT:] + "\n")

    def process_log(self, name, text, lines=40):
        """A process's output: its tail into log.txt."""
        LOG.lines.append(f"----- {name} (last {lines} lines) -----\n{tail(text, lines)}\n-----")

    # ----------------------------------------------------------------- versions
    def versions(self):
        torch = self.torch
        v = {
            "python": f"{platform.python_version()} ({sys.executable})",
            "platform": platform.platform(),
            "cpu": f"{cpu_model()}, {self.cores} cores",
            "torch": torch.__version__,
            "torch built for CUDA": torch.version.cuda or "no (CPU build)",
        }
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            v["gpu"] = (
                f"{props.name}, {props.total_memory / 2**30:.1f} GiB, compute capability {props.major}.{props.minor}, "
                f"{props.multi_processor_count} multiprocessors"
            )
            v["gpus visible"] = str(torch.cuda.device_count())
            v["driver"] = nvidia_smi("driver_version") or "unknown (nvidia-smi gave nothing)"
            v["cudnn"] = str(torch.backends.cudnn.version())
            with contextlib.suppress(Exception):
                nccl = torch.cuda.nccl.version()
                v["nccl"] = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else str(nccl)
        else:
            v["gpu"] = "none visible to PyTorch" + (" (dry run: the CPU is used)" if self.dry else "")
        for package in LIBRARIES:
            v[package] = version_of(package) or "not installed"
        v["requirements.txt"] = ", ".join(
            line.strip() for line in read_text(ROOT / "requirements.txt").splitlines() if line.strip()
        )
        self.report["versions"] = v
        missing = [p for p in LIBRARIES if not version_of(p)]
        if missing:
            self.report["versions_note"] = (
                f"not installed: {', '.join(missing)}. What needs one of them is skipped with a line saying so "
                f"(torch-fidelity: only `sampler.py score --features inception` needs it, and this check does not)."
            )
        LOG(f"versions: torch {torch.__version__}, {v['gpu']}")

    # ----------------------------------------------------------------- data
    def prepare_data(self):
        from throughput import write_synthetic_mnist  # the 60,000-image synthetic MNIST of benchmarks/throughput.py

        began = now()
        self.mnist_root = self.scratch / "synthetic"
        n_mnist = 2_000 if self.dry else 60_000
        if not (self.mnist_root / "MNIST").exists():
            write_synthetic_mnist(self.mnist_root, n_mnist)
        n_train, n_test = (1000, 100) if self.dry else (50_000, 10_000)
        self.cifar_root = self.scratch / "synthetic"
        if not (self.cifar_root / "cifar-10-batches-py").exists():
            write_cifar10(self.cifar_root, n_train, n_test)
        self.report["data"] = {
            "mnist": f"{self.mnist_root}: synthetic MNIST by benchmarks/throughput.py, {n_mnist:,} training and "
            f"1,000 test images of 28x28 random pixels, IDX files",
            "cifar10": f"{self.cifar_root}: synthetic CIFAR-10, {n_train:,} training and {n_test:,} test images of "
            f"32x32x3 random pixels, torchvision's pickle layout (its md5 check bypassed in the check's processes)",
        }
        LOG(f"data: synthetic MNIST and CIFAR-10 in {self.scratch} ({now() - began:.1f} s)")

    def speed_argv(self, config, mode, out):
        root = self.mnist_root if config["data"] == "mnist" else self.cifar_root
        argv = [*config["flags"], "--data-root", str(root), "--out", str(out), "--device", self.device]
        argv += ["--epochs", "1"]  # so that the script's step count (TrainingLog's total_steps) is one epoch's
        argv += ["--log-every", str(10**9)]  # no read-back inside the timed window
        return argv + MODES[mode] + (DRY_FLAGS[config["id"]] if self.dry else [])

    def configs(self):
        return [c for c in CONFIGS if not self.args.only or c["id"] in self.args.only or c["script"] in self.args.only]

    # ----------------------------------------------------------------- correctness + cold compile
    def correctness_and_warmup(self):
        cap = min(self.args.cap_correctness, self.left() - self.reserve("correctness"))
        began = now()
        deadline = now() + cap
        cuda = self.device == "cuda"
        tests = []
        if self.wanted("correctness"):
            groups = [(s, ["-k", s]) for s in SCRIPTS] if cuda else [("all", [])]
            if cuda:
                groups.append(("other", ["-k", "not (" + " or ".join(SCRIPTS) + ")"]))
            for name, selector in groups:
                xml = self.scratch / f"junit_{name}.xml"
                pytest = "-m pytest -v -m cuda -rA -p no:cacheprovider tests/test_cuda.py".split()
                cmd = [sys.executable, *pytest, "--junitxml", xml, *selector]
                proc = launch(cmd, self.scratch / "logs" / f"pytest_{name}.txt", self.side_by_side_env())
                tests.append((name, proc, xml))
            LOG(f"correctness: {len(tests)} pytest process(es) started")
        warm_jobs = []
        if self.wanted("speed"):
            warm_jobs = [(config, mode) for config in self.configs() for mode in ("compile", "compile+bf16")]
            if self.dry:
                warm_jobs = warm_jobs[:1]  # one cold compile, to walk the path; the CPU is small
        slots = max(1, self.cores - len(tests)) if cuda else 1
        pending, running, warm_rows = list(warm_jobs), [], []
        LOG(f"compile warm-up: {len(pending)} jobs, {slots} at a time, cap {cap:.0f} s")
        while pending or running:
            while pending and len(running) < slots and now() < deadline:
                config, mode = pending.pop(0)
                running.append(self.start_warm_job(config, mode))
            for job in list(running):
                proc = job["proc"]
                if proc.poll() is not None or now() >= deadline:
                    rc = finish(proc, now() + 0.1)
                    running.remove(job)
                    warm_rows.append(self.read_warm_job(job, rc))
            if not running and (not pending or now() >= deadline):
                for config, mode in pending:
                    warm_rows.append({"id": config["id"], "mode": mode, "status": "not run", "error": "time cap"})
                pending = []
            time.sleep(0.2)
        self.report["warm"] = warm_rows
        results = {}
        for name, proc, xml in tests:
            rc = finish(proc, deadline)
            text = read_text(proc.log_path)
            self.process_log(f"pytest {name}", text, 60)
            parsed = parse_junit(xml) or parse_verbose(text)  # killed at the cap: no XML, but the lines so far
            if rc is None:
                parsed.append(
                    {"id": f"[{name}] pytest process", "outcome": "timeout", "message": "section cap reached"}
                )
            elif not parsed:
                parsed.append({"id": f"[{name}] pytest process", "outcome": "error", "message": tail(text, 3)})
            results[name] = {"rc": rc, "tests": parsed}
            with open(self.out / "cuda_tests.txt", "a") as f:
                f.write(f"===== pytest -m cuda tests/test_cuda.py {' '.join(cmd_selector(name))} (exit {rc})\n")
                f.write(text[-MAX_TEXT // 10 :] + "\n")
        self.report["tests"] = summarize_tests(results, cuda)
        status = self.report["tests"].get("status", "not run")
        self.section("correctness", status, now() - began, self.report["tests"].get("summary", ""))
        LOG(f"correctness: {self.report['tests'].get('summary', '')}")

    def start_warm_job(self, config, mode):
        job_id = f"warm-{config['id']}-{mode}"
        spec = {
            "device": self.device,
            "compile_backend": self.compile_backend,
            "results": str(self.scratch / f"{job_id}.jsonl"),
            "threads": 1 if self.dry else None,
            "jobs": [
                {
                    "id": job_id,
                    "kind": "speed",
                    "script": config["script"],
                    "argv": self.speed_argv(config, mode, self.scratch / "runs" / job_id),
                    "warmup": 2,
                    "seconds": 0,
                    "launch_unix": time.time(),
                }
            ],
        }
        spec_path = self.scratch / f"{job_id}.json"
        spec_path.write_text(json.dumps(spec))
        log_path = self.scratch / "logs" / f"{job_id}.txt"
        proc = launch([sys.executable, __file__, "--worker", spec_path], log_path, self.side_by_side_env())
        return {"config": config, "mode": mode, "proc": proc, "spec": spec, "began": now()}

    def read_warm_job(self, job, rc):
        lines = [json.loads(line) for line in read_text(job["spec"]["results"]).splitlines() if line.strip()]
        result = next((line["result"] for line in lines if "result" in line), None)
        row = {"id": job["config"]["id"], "mode": job["mode"], "seconds": round(now() - job["began"], 1)}
        if result is None:
            text = read_text(job["proc"].log_path)
            self.process_log(f"warm-up {row['id']} {row['mode']}", text)
            row.update(status="error", error=f"exit {rc}: " + tail(text, 2) if rc is not None else "time cap")
        else:
            row.update(
                status=result.get("status", "ok") if not result.get("error") else "error",
                error=result.get("error"),
                cold_first_step_s=result.get("process_start_to_first_step_s"),
                graphs=result.get("graphs"),
            )
        return row

    # ----------------------------------------------------------------- speed + quality (one process)
    def keep(self):
        """Seconds each section is sure of: what the sections after one are kept."""
        keep = {"correctness": 0, "speed": 60 if not self.dry else 10, "quality": 0, "anchors": 0}
        if self.args.mnist and self.wanted("quality"):
            keep["quality"] = self.quality_seconds() + (40 if not self.dry else 15)
        if self.args.anchors and self.wanted("anchors"):
            keep["anchors"] = 30 if not self.dry else 20
        return keep

    def reserve(self, after):
        """Seconds kept for the sections after `after`."""
        order = ["correctness", "speed", "quality", "anchors"]
        return sum(self.keep()[name] for name in order[order.index(after) + 1 :])

    def speed_and_quality(self):
        jobs, began = [], now()
        speed_cap = min(self.args.cap_speed, self.left() - self.reserve("speed"))
        speed_deadline_unix = time.time() + speed_cap
        if self.wanted("speed"):
            runs = [(c, m) for m in ("fp32", "bf16", "fp16") for c in self.configs()]  # eager first: the whole table
            runs += [(c, m) for m in ("compile", "compile+bf16") for c in self.configs()]
            for config, mode in runs:
                job_id = f"{config['id']}|{mode}"
                if self.dry and not self.args.dry_all_modes and mode != "fp32" and config["id"] != DRY_ALL_MODES:
                    reason = f"dry run: fp32 for every config, every mode for {DRY_ALL_MODES} only"
                    jobs.append({"id": job_id, "kind": "skip", **self.job_names(config, mode), "reason": reason})
                    continue
                jobs.append(
                    {
                        "id": job_id,
                        "kind": "speed",
                        **self.job_names(config, mode),
                        "argv": self.speed_argv(config, mode, self.scratch / "runs" / job_id.replace("|", "-")),
                        "warmup": self.warmup,
                        "seconds": self.seconds,
                        "deadline_unix": speed_deadline_unix,
                    }
                )
        quality = self.quality_job()
        if quality:
            jobs.append(quality)
        if not any(j["kind"] != "skip" for j in jobs):
            return
        cap = min(self.left() - self.reserve("quality"), speed_cap + (self.keep()["quality"] if quality else 0))
        deadline = now() + cap
        LOG(
            f"speed: {sum(j['kind'] == 'speed' for j in jobs)} runs, cap {speed_cap:.0f} s"
            + (", then quality" if quality else "")
        )
        spec = {
            "device": self.device,
            "compile_backend": self.compile_backend,
            "results": str(self.scratch / "worker.jsonl"),
            "threads": None,
            "jobs": [j for j in jobs if j["kind"] != "skip"],
        }
        spec_path = self.scratch / "worker.json"
        spec_path.write_text(json.dumps(spec))
        results, crashes = {}, 0
        while now() < deadline:
            proc = launch(
                [sys.executable, __file__, "--worker", spec_path], self.scratch / "logs" / "worker.txt", self.env
            )
            rc = finish(proc, deadline)
            text = read_text(proc.log_path)
            lines = [json.loads(line) for line in read_text(spec["results"]).splitlines() if line.strip()]
            results = {line["id"]: line["result"] for line in lines if "result" in line}
            started = [line["id"] for line in lines if "started" in line]
            if rc == 0 or rc is None:
                if rc is None:
                    self.process_log("worker (ended at its time cap)", text)
                break
            crashes += 1
            self.process_log(f"worker (exit {rc})", text)
            crashed = next((i for i in reversed(started) if i not in results), None)
            if crashed is None or crashes > 3:
                break
            with open(spec["results"], "a") as f:  # the job that took the process down: recorded, skipped
                f.write(
                    json.dumps(
                        {
                            "id": crashed,
                            "result": {"status": "error", "error": f"crashed its process (exit {rc}): {tail(text, 2)}"},
                        }
                    )
                    + "\n"
                )
            LOG(f"worker crashed in {crashed} (exit {rc}); restarting for the rest")
        self.collect_speed(jobs, results)
        self.section("speed", self.speed_status(), None, self.speed_note())
        if quality:
            self.collect_quality(quality, results.get(quality["id"]))
        self.report["sections"]["speed"]["seconds"] = round(now() - began, 1)
        self.write()

    @staticmethod
    def job_names(config, mode):
        return {"script": config["script"], "config": config["id"], "mode": mode}

    def collect_speed(self, jobs, results):
        warm = {(w["id"], w["mode"]): w for w in self.report["warm"]}
        rows = []
        for job in jobs:
            if job["kind"] not in ("speed", "skip"):
                continue
            result = results.get(job["id"]) or {"status": "not run", "error": "the worker ended before it (time cap)"}
            if job["kind"] == "skip":
                result = {"status": "skipped", "error": job["reason"]}
            row = {"id": job["config"], "script": job["script"], "mode": job["mode"], **result}
            w = warm.get((job["config"], job["mode"]))
            if w:
                row["cold_first_step_s"] = w.get("cold_first_step_s")
            rows.append(row)
        self.report["speed"] = rows
        self.report["findings"] = findings(self.report)

    def speed_status(self):
        rows = self.report["speed"]
        if not rows:
            return "not run"
        ok = sum(r.get("status") == "ok" for r in rows)
        skipped = sum(r.get("status") == "skipped" for r in rows)
        return "ok" if ok + skipped == len(rows) else ("partial" if ok else "failed")

    def speed_note(self):
        rows = self.report["speed"]
        ok = sum(r.get("status") == "ok" for r in rows)
        skipped = sum(r.get("status") == "skipped" for r in rows)
        return f"{ok} of {len(rows)} runs measured" + (f", {skipped} skipped by design (dry run)" if skipped else "")

    # ----------------------------------------------------------------- quality
    def quality_job(self):
        if not self.wanted("quality"):
            return None
        if not self.args.mnist:
            self.report["quality"] = {"skipped": "--mnist DIR (MNIST's t10k-*-idx*-ubyte.gz) was not given"}
            self.section("quality", "skipped", None, self.report["quality"]["skipped"])
            return None
        n_train, n_test = (1000, 200) if self.dry else (8000, 2000)
        try:
            root = real_mnist_root(self.args.mnist, self.scratch / "real", n_train, n_test)
        except (OSError, ValueError, EOFError) as exc:
            self.report["quality"] = {"skipped": f"--mnist {self.args.mnist}: {exc}"}
            self.section("quality", "skipped", None, self.report["quality"]["skipped"])
            return None
        run_dir = self.scratch / "quality_run"
        argv = ["--dataset", "mnist", "--data-root", str(root), "--out", str(run_dir), "--device", self.device]
        argv += ["--epochs", "1000000", "--save-every", "1000000"]  # no end but the clock's; no epoch_XXX.pt
        argv += ["--batch-size", "16", "--log-every", "10"] if self.dry else []
        self.report["quality"] = {
            "data": f"the real MNIST t10k digits of {self.args.mnist}: the first {n_train:,} train, "
            f"the next {n_test:,} held out (the split of benchmarks/results.sh)",
            "command": "python dcgan.py " + " ".join(argv).replace(str(self.scratch), "$SCRATCH"),
        }
        return {
            "id": "quality",
            "kind": "quality",
            "argv": argv,
            "run_dir": str(run_dir),
            "seconds": self.quality_seconds(),
            "n": 500 if self.dry else 10_000,
            "n_train": n_train,
            "held_out": f"test:0:{n_test}",
            "grid": str(self.out / "quality_samples.png"),
        }

    def collect_quality(self, job, result):
        quality = self.report["quality"]
        if not result:
            quality["error"] = "the quality run did not finish (time cap or crash; see log.txt)"
            self.section("quality", "failed", None, quality["error"])
            return
        quality.update(result)
        if not (self.out / "quality_samples.png").exists() and result.get("last_epoch_grid"):
            shutil.copyfile(result["last_epoch_grid"], self.out / "quality_samples.png")  # the run's own last grid
            quality["grid_note"] = "the training run's last epoch grid (fixed noise), sampler.py was not available"
        scores = result.get("score") or {}
        quality["metrics"] = {name: parse_score(s.get("text", "")) for name, s in scores.items() if name != "grid"}
        error = result.get("train", {}).get("error") or next(
            (s["error"] for s in scores.values() if s.get("error")), None
        )
        status = (
            "failed"
            if result.get("train", {}).get("error")
            else ("partial" if error or result.get("score_skipped") else "ok")
        )
        note = error or result.get("score_skipped") or ""
        self.section("quality", status, None, note)
        self.report["sections"]["quality"]["seconds"] = round(result["train"].get("seconds") or 0, 1) + round(
            sum(s.get("seconds", 0) for s in scores.values()), 1
        )
        self.report["findings"] = findings(self.report)
        self.write()

    # ----------------------------------------------------------------- anchors
    def anchors(self):
        if not self.wanted("anchors"):
            return
        if not self.args.anchors:
            self.report["anchors_skipped"] = "--anchors DIR (pg_dcgan.py, pe_dcgan.py) was not given"
            self.section("anchors", "skipped", None, self.report["anchors_skipped"])
            return
        began = now()
        batch = 16 if self.dry else 128
        rows, started = [], []
        for name, anchor in ANCHORS.items():
            cap = min(self.args.cap_anchor * (3 if self.dry else 1), self.left() - 5)
            if cap < 5:
                rows.append({"script": name, "title": anchor["title"], "status": "not run", "error": "time cap"})
                continue
            run = self.start_anchor(name, anchor, batch)
            if self.dry:  # the dry run times nothing that matters: the two run side by side
                started.append((run, now() + cap))
            else:  # one at a time, so that no other GPU work overlaps the timing
                rows.append(self.collect_anchor(run, now() + cap))
                self.report["anchors"] = rows
                self.write()
        rows += [self.collect_anchor(run, deadline) for run, deadline in started]
        self.report["anchors"] = rows
        ok = sum(r.get("status") == "ok" for r in rows)
        self.report["findings"] = findings(self.report)
        self.section(
            "anchors",
            "ok" if ok == len(rows) else ("partial" if ok else "failed"),
            now() - began,
            f"{ok} of {len(rows)} measured",
        )

    def start_anchor(self, name, anchor, batch):
        """Copy a peer's script into the scratch folder, patch the copy, point it at the synthetic
        MNIST and start it. Returns what collect_anchor needs (no process where it cannot run)."""
        row = {"script": name, "title": anchor["title"], "what": anchor["what"], "batch_size": batch}
        source = Path(self.args.anchors) / name
        if not source.is_file():
            return {"row": {**row, "status": "skipped", "error": f"{source} does not exist"}}
        text = source.read_text()
        for needle in (anchor["loop"][0], anchor["before"]):
            if text.count(needle) != 1:
                error = f"{name} is not the README's version: {needle!r} not found once"
                return {"row": {**row, "status": "skipped", "error": error}}
        patched_text = text.replace(anchor["before"], ANCHOR_TIMER + anchor["before"], 1).replace(*anchor["loop"], 1)
        row["diff"] = "".join(
            difflib.unified_diff(
                text.splitlines(keepends=True),
                patched_text.splitlines(keepends=True),
                name,
                f"{name} (patched copy)",
                n=1,
            )
        )
        work = self.scratch / "anchors" / name.removesuffix(".py")
        run_dir = work / "run" / "here"  # pg_dcgan.py reads ../../data/mnist from where it runs
        run_dir.mkdir(parents=True, exist_ok=True)
        for license_file in Path(self.args.anchors).glob("LICENSE*"):
            shutil.copyfile(license_file, work / license_file.name)
        script = work / name
        script.write_text(patched_text)
        data = work / "data" / "mnist" / "MNIST" / "raw"
        data.mkdir(parents=True, exist_ok=True)
        for f in (self.mnist_root / "MNIST" / "raw").iterdir():
            target = data / f.name
            if not target.exists():
                target.symlink_to(f)
        if name == "pg_dcgan.py":
            args = ["--batch_size", str(batch), "--n_epochs", "1"]
        else:
            args = ["--dataset", "mnist", "--dataroot", str(work / "data" / "mnist"), "--imageSize", "64"]
            args += ["--batchSize", str(batch), "--niter", "1", "--accel", "--manualSeed", "0"]
            args += ["--outf", str(work / "out")] + (["--ngf", "8", "--ndf", "8"] if self.dry else [])
        timing = work / "timing.json"
        timing.unlink(missing_ok=True)
        env = dict(
            self.env,
            GPU_CHECK_WARMUP=str(self.warmup),
            GPU_CHECK_SECONDS=str(max(self.seconds, 0.5) if self.dry else self.seconds + 1),
            GPU_CHECK_TIMING=str(timing),
        )
        row["command"] = f"python {name} {' '.join(args)}".replace(str(self.scratch), "$SCRATCH")
        launched = time.time()
        proc = launch([sys.executable, script, *args], work / "output.txt", env, cwd=run_dir)
        return {"row": row, "proc": proc, "launched": launched, "timing": timing, "work": work, "batch": batch}

    def collect_anchor(self, run, deadline):
        """Wait for a peer's run (until `deadline`) and read its timing."""
        row = run["row"]
        if "proc" not in run:
            return row
        name, timing, batch = row["script"], run["timing"], run["batch"]
        rc = finish(run["proc"], deadline)
        output = read_text(run["work"] / "output.txt")
        if not timing.exists():
            self.process_log(f"anchor {name} (exit {rc})", output)
            return {
                **row,
                "status": "error",
                "error": ("time cap; " if rc is None else f"exit {rc}: ") + tail(output, 2),
            }
        marks = json.loads(timing.read_text())
        if "iterations" not in marks or marks["iterations"] <= 0:
            return {**row, "status": "error", "error": "too few iterations to time", "marks": marks}
        images = marks["iterations"] * batch / marks["seconds"]
        row.update(
            status="ok",
            timed_iterations=marks["iterations"],
            timed_s=round(marks["seconds"], 3),
            images_per_s=round(images, 1),
            s_per_epoch=round(60_000 / images, 2),
            process_start_to_first_step_s=round(marks["first_iteration_unix"] - run["launched"], 2)
            if "first_iteration_unix" in marks
            else None,
            peak_memory_mib=round(marks["peak_memory_mib"], 1) if marks.get("peak_memory_mib") else None,
        )
        LOG(f"anchor {name}: {row['images_per_s']} images/s")
        return row

    # ----------------------------------------------------------------- all
    def run(self):
        LOG(f"gpu_check: device {self.device}, scratch {self.scratch}, out {self.out}, budget {self.deadline:.0f} s")
        self.write()
        self.versions()
        self.section("versions", "ok", now())
        self.prepare_data()
        if self.wanted("correctness") or self.wanted("speed"):
            self.correctness_and_warmup()
        if not self.wanted("correctness"):
            self.section("correctness", "skipped", None, "not asked for (--sections)")
        self.speed_and_quality()
        self.anchors()
        self.report["findings"] = findings(self.report)
        self.report["finished"] = True
        LOG(f"done in {now():.0f} s: {self.out / 'report.md'}")
        self.write()
        if not self.args.keep_scratch and not self.args.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


def cmd_selector(name):
    return [] if name == "all" else (["-k", name] if name in SCRIPTS else ["-k", "not (" + " or ".join(SCRIPTS) + ")"])


def cpu_model():
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def nvidia_smi(field):
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    return None


def parse_junit(path):
    """[{id, outcome, seconds, message}] from pytest's JUnit XML (none if it is missing)."""
    try:
        tree = ElementTree.parse(path)
    except (OSError, ElementTree.ParseError):
        return []
    tests = []
    for case in tree.iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                message = (child.get("message") or child.text or "").strip().splitlines()
                message = message[0][:300] if message else ""
        tests.append(
            {"id": case.get("name"), "outcome": outcome, "seconds": float(case.get("time") or 0), "message": message}
        )
    return tests


VERBOSE_LINE = re.compile(r"^tests/test_cuda\.py::(\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)", re.M)


def parse_verbose(text):
    """[{id, outcome}] from pytest -v's progress lines, for a process that never wrote its XML."""
    return [
        {"id": name, "outcome": outcome.lower(), "seconds": None, "message": ""}
        for name, outcome in VERBOSE_LINE.findall(text)
    ]


def summarize_tests(results, cuda):
    tests = [t for group in results.values() for t in group["tests"]]
    counts = {}
    for t in tests:
        counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no tests ran"
    bad = counts.get("failed", 0) + counts.get("error", 0) + counts.get("timeout", 0)
    if not cuda:
        status = "skipped"
        summary += " (no CUDA GPU: the cuda tests skip themselves)"
    else:
        status = "ok" if tests and not bad and counts.get("passed") else ("failed" if bad else "partial")
    return {"status": status, "summary": summary, "counts": counts, "list": tests}


SCORE_PATTERN = re.compile(
    r"classifier IS ([\d.]+) \(real images: ([\d.]+)\), classifier FID ([\d.]+), classes covered (\d+)/10"
)


def parse_score(text):
    match = SCORE_PATTERN.search(text or "")
    if not match:
        return {}
    keys = ("classifier_is", "real_classifier_is", "classifier_fid", "classes_covered")
    return {k: float(v) if "." in v else int(v) for k, v in zip(keys, match.groups())}


# --------------------------------------------------------------------------- findings
def findings(report):
    """What the check found, in lines: what failed, then (on a GPU) what the numbers say: waste (a
    recompile while timed, an optimisation that does not pay, epoch-end work that outweighs the
    steps) and the peers' speed beside ours. A dry run's numbers are a CPU's at toy sizes: only
    its failures are listed."""
    lines = []
    for r in report.get("speed", []):
        if r.get("status") not in ("ok", "skipped", None):
            lines.append(f"{r['id']} {r['mode']}: {r.get('status')}: {str(r.get('error'))[:200]}")
    for t in report.get("tests", {}).get("list", []):
        if t["outcome"] in ("failed", "error", "timeout"):
            lines.append(f"test {t['id']}: {t['outcome']}: {t['message'][:200]}")
    for a in report.get("anchors", []):
        if a.get("status") not in ("ok", None):
            lines.append(f"{a['title']}: {a.get('status')}: {str(a.get('error'))[:200]}")
    train = report.get("quality", {}).get("train") or {}
    if train.get("error"):
        lines.append(f"quality run: {train['error'][:200]}")
    if report.get("dry_run"):
        return lines
    rows = {(r["id"], r["mode"]): r for r in report.get("speed", []) if r.get("status") == "ok"}
    for (config, mode), row in sorted(rows.items()):
        if row.get("graphs_during_timing"):
            lines.append(
                f"{config} {mode}: torch.compile made {row['graphs_during_timing']} new graph(s) during the timed "
                f"window (recompiles after the warm-up)"
            )
        if row.get("spread") and row["spread"] > 0.1:
            lines.append(
                f"{config} {mode}: the two halves of the timed window differ by {100 * row['spread']:.0f}% (noisy)"
            )
    for config in dict.fromkeys(c for c, _ in rows):
        base = rows.get((config, "fp32"))
        if not base or not base.get("images_per_s"):
            continue
        for mode in ("bf16", "fp16", "compile", "compile+bf16"):
            row = rows.get((config, mode))
            if row and row.get("images_per_s"):
                gain = row["images_per_s"] / base["images_per_s"]
                if gain < 1.05:
                    lines.append(
                        f"{config}: {mode} does not pay: {gain:.2f}x fp32's images/s "
                        f"({row['images_per_s']:,.0f} against {base['images_per_s']:,.0f})"
                    )
    ours = {k: rows.get((k, "fp32"), {}).get("images_per_s") for k in ("dcgan", "dcgan-mnist64")}
    for a in report.get("anchors", []):
        mine = ours["dcgan-mnist64"] if a["script"] == "pe_dcgan.py" else ours["dcgan"]
        which = "dcgan --image-size 64 (the same nets)" if a["script"] == "pe_dcgan.py" else "dcgan at 28x28"
        if a.get("status") == "ok" and mine:
            lines.append(
                f"{a['title']}: {a['images_per_s']:,.0f} images/s; ours, {which}, fp32: {mine:,.0f} "
                f"({mine / a['images_per_s']:.1f}x)"
            )
    if train.get("seconds") and train.get("epoch_end_s") is not None:
        share = train["epoch_end_s"] / train["seconds"]
        if share > 0.2:
            parts = ", ".join(f"{k} {v:.1f} s" for k, v in (train.get("epoch_end_parts") or {}).items())
            lines.append(
                f"quality run: the work at each epoch's end took {100 * share:.0f}% of the minute "
                f"({train['epoch_end_s']:.1f} of {train['seconds']:.1f} s over {train.get('epochs')} epochs: {parts})"
            )
    return lines


# --------------------------------------------------------------------------- the report
def fmt(value, digits=0, unit=""):
    if value is None or value == "":
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}{unit}"
    return str(value)


def md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(r):
    out = [f"# {r['title']}", ""]
    out.append(f"`{r['command']}`  ")
    out.append(
        f"started {r['started']}, {r['elapsed_s']:.0f} s so far of a {r['budget_s']:.0f} s budget"
        + ("" if r.get("finished") else " **(in progress or cut short: a partial report)**")
    )
    if r["dry_run"]:
        out += [
            "",
            "**Dry run**: the CPU at toy sizes (small batches and nets, a fraction of a second per run, "
            f"torch.compile through the '{r['settings']['compile_backend']}' backend): it proves the check runs, "
            "its numbers are not GPU figures. The cuda tests skip themselves without a GPU.",
        ]
    out += ["", "## Sections", "", "| section | status | seconds | note |", "| --- | --- | --- | --- |"]
    for name, s in r["sections"].items():
        out.append(f"| {name} | {s['status']} | {fmt(s['seconds'], 1)} | {md_cell(s['note'])} |")
    if r.get("findings"):
        out += ["", "## Findings", ""] + [f"- {md_cell(line)}" for line in r["findings"]]
    out += ["", "## Versions", "", "| | |", "| --- | --- |"]
    out += [f"| {k} | {md_cell(v)} |" for k, v in r["versions"].items()]
    if r.get("versions_note"):
        out += ["", r["versions_note"]]
    tests = r.get("tests") or {}
    out += ["", "## 1. Correctness on CUDA: `pytest -m cuda tests/test_cuda.py`", ""]
    if tests:
        out.append(f"{tests['summary']}. Full output: cuda_tests.txt.")
        shown = [t for t in tests["list"] if t["outcome"] != "skipped"] or tests["list"][:5]
        if shown:
            out += ["", "| test | outcome | seconds | message |", "| --- | --- | --- | --- |"]
            out += [
                f"| {md_cell(t['id'])} | {t['outcome']} | {fmt(t.get('seconds'), 1)} | {md_cell(t['message'])} |"
                for t in shown
            ]
            if len(shown) < len(tests["list"]):
                out.append(f"| ... {len(tests['list']) - len(shown)} more, skipped | | | |")
    else:
        out.append("not run")
    out += ["", "## 2. Speed", ""]
    s = r["settings"]
    out.append(
        f"Modes: fp32 is each script's default, which on CUDA has TF32 matrix products and convolutions and "
        f"cuDNN's autotuner on (utils.cuda_kernels); bf16 is `--amp` (bfloat16 autocast); fp16 is `--amp fp16` "
        f"(float16 autocast, a gradient scaler per optimizer); compile is `--compile` "
        f"(torch.compile, mode 'default'). "
        f"Each run is the script's own `main()` and real loop, `--epochs 1 --log-every 1000000000` (no read-back "
        f"while timed), after {s['warmup_steps']} warm-up steps, timed for {s['seconds_per_run']} s with a device "
        f"sync at both ends (and one at half time: 'spread' is how much the halves' rates differ). images/s count "
        f"the images a step consumes, by the script's own count (TrainingLog's images_per_step); s/epoch = the "
        f"script's steps per epoch x seconds per step, the work at an epoch's end (grids, GIF, plot, checkpoint) "
        f"not included. Peak memory: torch.cuda.max_memory_allocated. First step (warm): main() called to first "
        f"step done, in the timing process, the inductor cache warm; first step (cold): a fresh process started to"
        f" first step done, compile and imports included, while the cold compiles ran side by side."
    )
    if r.get("data"):
        out += ["", f"Data: {r['data']['mnist']}; {r['data']['cifar10']}."]
    table = summary_table(r)
    if table:
        out += ["", "images/s (s/epoch):", ""] + table
    out += [
        "",
        "| config | mode | batch images | images/s | spread | s/epoch | steps/epoch | peak MiB | first step warm s "
        "| first step cold s | graphs (new while timed) | timed steps | timed s | status |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in r.get("speed", []):
        graphs = "-" if row.get("graphs") is None else f"{row['graphs']} ({row.get('graphs_during_timing', 0)})"
        status = row.get("status", "-") + (f": {row['error']}" if row.get("error") else "")
        out.append(
            f"| {row['id']} | {row['mode']} | {fmt(row.get('batch_images'))} | {fmt(row.get('images_per_s'))} "
            f"| {fmt(100 * row['spread'] if row.get('spread') is not None else None, 1, '%')} "
            f"| {fmt(row.get('s_per_epoch'), 1)} | {fmt(row.get('steps_per_epoch'))} "
            f"| {fmt(row.get('peak_memory_mib'))} "
            f"| {fmt(row.get('first_step_s'), 2)} | {fmt(row.get('cold_first_step_s'), 1)} | {graphs} "
            f"| {fmt(row.get('timed_steps'))} | {fmt(row.get('timed_s'), 2)} | {md_cell(status)[:300]} |"
        )
    out += ["", "Configs:", ""] + [f"- {c['id']}: {CONFIG_NOTES[c['id']]}" for c in CONFIGS]
    out += ["", "### The peers' DCGANs, same machine and data", ""]
    if r.get("anchors_skipped"):
        out.append(f"skipped: {r['anchors_skipped']}")
    elif r.get("anchors"):
        out += [
            "| script | what | batch | images/s | s/epoch (60,000) | process start to first step s | peak MiB "
            "| status |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for a in r["anchors"]:
            status = a.get("status", "-") + (f": {a['error']}" if a.get("error") else "")
            out.append(
                f"| {a['title']} | {md_cell(a.get('what', ''))} | {fmt(a.get('batch_size'))} "
                f"| {fmt(a.get('images_per_s'))} "
                f"| {fmt(a.get('s_per_epoch'), 1)} | {fmt(a.get('process_start_to_first_step_s'), 1)} "
                f"| {fmt(a.get('peak_memory_mib'))} | {md_cell(status)[:300]} |"
            )
        out += [
            "",
            "Each ran unchanged but for a patched copy in the scratch folder: a timing helper inserted before the "
            "epoch loop, and the batch loop made to iterate through it (it syncs and reads the clock after the warm-up "
            "iterations and after the timed seconds, writes its numbers and ends the process). Their fp32 only: they "
            "have no autocast or compile option. The diffs:",
        ]
        for a in r["anchors"]:
            if a.get("diff"):
                out += ["", f"`{a.get('command', a['script'])}`", "", "```diff", a["diff"].rstrip(), "```"]
    else:
        out.append("not run")
    out += ["", "## 3. Quality in one minute: dcgan on real MNIST digits", ""]
    q = r.get("quality") or {}
    if q.get("skipped"):
        out.append(f"skipped: {q['skipped']}")
    elif q:
        train = q.get("train") or {}
        out.append(
            f"Data: {q.get('data', '-')}. `{q.get('command', '')}`, stopped after {r['settings']['quality_seconds']} s."
        )
        if train.get("steps"):
            parts = ", ".join(f"{k} {v} s" for k, v in (train.get("epoch_end_parts") or {}).items())
            out.append(
                f"\n{train['steps']:,} steps of {train['batch_size']} in {train['seconds']} s "
                f"({train['epochs']} epochs): {fmt(train['images_per_s_overall'])} images/s overall, "
                f"{fmt(train['images_per_s_in_steps'])} in the steps; the epoch-end work took "
                f"{train['epoch_end_s']} s ({parts}). Peak memory {fmt(train.get('peak_memory_mib'))} MiB."
            )
        if train.get("error"):
            out.append(f"\nerror: {train['error']}")
        for name, s in (q.get("score") or {}).items():
            text = s.get("error") or s.get("text") or f"wrote {s.get('value')}"
            out += ["", f"{name} ({fmt(s.get('seconds'), 1)} s):", "", "```", text.strip()[:3000], "```"]
        if q.get("score_skipped"):
            out.append(f"\nscores skipped: {q['score_skipped']}")
        out.append(f"\nSample grid: quality_samples.png{' (' + q['grid_note'] + ')' if q.get('grid_note') else ''}.")
    else:
        out.append("not run")
    warm = r.get("warm") or []
    if warm:
        out += [
            "",
            "## Cold compiles (the warm-up)",
            "",
            "| config | mode | status | first step cold s | graphs | seconds |",
        ]
        out.append("| --- | --- | --- | --- | --- | --- |")
        for w in warm:
            status = w.get("status", "-") + (f": {w['error']}" if w.get("error") else "")
            out.append(
                f"| {w['id']} | {w['mode']} | {md_cell(status)[:200]} | {fmt(w.get('cold_first_step_s'), 1)} "
                f"| {fmt(w.get('graphs'))} | {fmt(w.get('seconds'), 1)} |"
            )
    return "\n".join(out) + "\n"


def summary_table(r):
    rows = {(x["id"], x["mode"]): x for x in r.get("speed", [])}
    configs = list(dict.fromkeys(x["id"] for x in r.get("speed", [])))
    if not configs:
        return []
    lines = ["| config | " + " | ".join(MODES) + " |", "| --- |" + " --- |" * len(MODES)]
    for config in configs:
        cells = []
        for mode in MODES:
            x = rows.get((config, mode), {})
            cells.append(
                f"{fmt(x.get('images_per_s'))} ({fmt(x.get('s_per_epoch'), 1)})"
                if x.get("status") == "ok"
                else x.get("status", "-")
            )
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return lines


# --------------------------------------------------------------------------- command line
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="folder for report.md, report.json, quality_samples.png, cuda_tests.txt, log.txt")
    p.add_argument("--anchors", default=None, help="folder holding pg_dcgan.py and pe_dcgan.py (../shared/anchors)")
    p.add_argument(
        "--mnist", default=None, help="folder holding MNIST's t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
    )
    p.add_argument("--dry-run", action="store_true", help="the same check on the CPU at toy sizes (about a minute)")
    p.add_argument("--budget", type=float, default=None, help="seconds for the whole check (default 450; dry run 300)")
    p.add_argument("--seconds", type=float, default=None, help="timed seconds per speed run (default 2; dry run 0.3)")
    p.add_argument("--warmup", type=int, default=None, help="steps before the clock starts (default 10; dry run 2)")
    p.add_argument("--quality-seconds", type=float, default=None, help="dcgan's training time (default 60; dry 3)")
    p.add_argument("--dry-all-modes", action="store_true", help="dry run: every config in every mode (slow)")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor; dry run eager)")
    p.add_argument("--cap-correctness", type=float, default=170, help="seconds for the tests and the cold compiles")
    p.add_argument("--cap-speed", type=float, default=150, help="seconds for the speed runs")
    p.add_argument("--cap-anchor", type=float, default=20, help="seconds for each peer script")
    p.add_argument("--only", nargs="*", default=None, help="speed configs or scripts to run (default: all)")
    p.add_argument(
        "--sections",
        nargs="*",
        default=None,
        choices=["correctness", "speed", "quality", "anchors"],
        help="sections to run (default: all)",
    )
    p.add_argument("--scratch", default=None, help="scratch folder (default: a new temporary one, removed at the end)")
    p.add_argument("--keep-scratch", action="store_true", help="keep the temporary scratch folder")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.worker and not args.out:
        p.error("--out DIR is required")
    if args.budget is None:
        args.budget = 300.0 if args.dry_run else 450.0
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        sys.exit("error: no CUDA GPU is visible to PyTorch; run with --dry-run to rehearse the check on the CPU")
    Check(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
