"""The training scripts on a CUDA GPU: each trains in fp32, with --amp (bf16), --amp fp16 and --compile,
with no host sync inside a log window; a run resumed on CUDA equals the uninterrupted one; a CUDA
checkpoint samples (and resumes) on a machine without a GPU; and dcgan, wgan_gp and cyclegan run
under `torchrun --nproc_per_node 1`, on NCCL.

Every test is marked `cuda` and skips itself where PyTorch sees no GPU, so the normal suite passes
without one. On a GPU: `pytest -m cuda tests/test_cuda.py` (benchmarks/gpu_check.py runs it, one
pytest process per script, side by side). To rehearse these tests' own logic on a machine without
a GPU, CUDA_TESTS_DEVICE=cpu runs them on the CPU instead (--compile through torch.compile's
'eager' backend, without the sync check and the NCCL assertion, which need CUDA).
"""

import contextlib
import csv
import functools
import importlib
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, synthetic_digits

import utils

sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402 (its synthetic CIFAR-10, which the speed check uses too)

DEVICE = os.environ.get("CUDA_TESTS_DEVICE", "cuda")
ON_CUDA = DEVICE == "cuda"
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(ON_CUDA and not torch.cuda.is_available(), reason="needs a CUDA GPU (none visible to PyTorch)"),
]

# name -> (script, flags): a few steps on conftest's 320/64 synthetic digits (8 to 40 steps an epoch),
# or on a 320-image synthetic CIFAR-10 for the 32x32 RGB nets; the nets at their real sizes
RUNS = {
    "gan_mlp": ("gan_mlp", ["--dataset", "mnist", "--batch-size", "32", "--sample-size", "16"]),
    "gan_maxout": (
        "gan_maxout",
        ["--train-range", "train:0:256", "--valid-range", "train:256:320", "--test-range", "test:0:64"]
        + ["--batch-size", "32", "--sample-size", "16"],
    ),
    "dcgan": ("dcgan", ["--batch-size", "32", "--sample-size", "16"]),
    "dcgan-rgb": ("dcgan", ["--dataset", "cifar10", "--batch-size", "32", "--sample-size", "16"]),
    "wgan_gp": ("wgan_gp", ["--batch-size", "16", "--n-critic", "2", "--sample-size", "16"]),
    "wgan_gp-resnet": (
        "wgan_gp",
        ["--dataset", "cifar10", "--batch-size", "16", "--n-critic", "2", "--sample-size", "16"],
    ),
    "infogan": ("infogan", ["--train-range", "train:0:320", "--eval-range", "test:0:64", "--batch-size", "32"]),
    "bigan": (
        "bigan",
        ["--train-range", "train:0:320", "--eval-range", "test:0:64", "--batch-size", "32", "--sample-size", "16"],
    ),
    "cyclegan": (
        "cyclegan",
        ["--train-range", "train:0:320", "--eval-range", "test:0:64", "--batch-size", "4", "--classifier-steps", "5"],
    ),
}
MODES = {"fp32": [], "amp": ["--amp"], "fp16": ["--amp", "fp16"], "compile": ["--compile"]}


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    gpu_check.write_cifar10(root, 320, 64)
    return root


@pytest.fixture
def data(mnist_root, cifar_root, monkeypatch):
    """Both data roots; torchvision may read the synthetic CIFAR-10 (its md5 check, in this test only)."""
    import torchvision.datasets.cifar

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", gpu_check.file_exists)
    return {"mnist": mnist_root, "cifar10": cifar_root}


def train(name, data, out, *flags):
    """Run a RUNS entry's main() in this process, on DEVICE, into `out`."""
    script, base = RUNS[name]
    root = data["cifar10"] if "cifar10" in base else data["mnist"]
    importlib.import_module(script).main(
        [*base, "--data-root", str(root), "--device", DEVICE, "--out", str(out), *flags]
    )
    return out


def loss_rows(run_dir, rates=True):
    """losses.csv's rows; rates=False leaves out the images/s column, a clock reading."""
    with open(run_dir / "losses.csv") as f:
        return [{k: v for k, v in row.items() if rates or not k.endswith("_per_s")} for row in csv.DictReader(f)]


def graphs():
    return gpu_check.dynamo_graphs() or 0


class SyncWatch:
    """What checked_windows saw: log flushes, steps run with sync checking on, and the compiled
    graphs that existed at the first flush."""

    def __init__(self):
        self.flushes, self.checked_steps, self.armed, self.graphs_at_first_flush = 0, 0, False, None


@contextlib.contextmanager
def checked_windows(monkeypatch):
    """No host sync inside a log window, in each script's real loop: utils.TrainingLog.add (which
    the loop calls after every step) and flush (the window's one read-back, every --log-every
    steps and at each epoch's end) are wrapped, their originals still doing all their work. After
    an add, torch.cuda.set_sync_debug_mode("error") makes any synchronizing CUDA call (.item(),
    .cpu(), a data-dependent shape, a pageable device-to-host copy) raise; a flush sets it back to
    0 before the read-back. So every step of every window after the first is checked, save the
    first step after an epoch's end, which follows that end's work (grids, checkpoints: syncs by
    design). The first window is left unchecked: lazy optimizer state, cuDNN's autotuning and
    compilation happen there."""
    watch = SyncWatch()
    add, flush = utils.TrainingLog.add, utils.TrainingLog.flush

    def watched_add(self, *args, **kwargs):
        if watch.armed:
            watch.checked_steps += 1  # this step ran with checking on
        add(self, *args, **kwargs)  # a full window flushes in here
        if watch.flushes:
            if ON_CUDA:
                torch.cuda.set_sync_debug_mode("error")
            watch.armed = True

    def watched_flush(self, *args, **kwargs):
        if ON_CUDA:
            torch.cuda.set_sync_debug_mode(0)
        watch.armed = False
        watch.flushes += 1
        if watch.flushes == 1:
            watch.graphs_at_first_flush = graphs()
        return flush(self, *args, **kwargs)

    monkeypatch.setattr(utils.TrainingLog, "add", watched_add)
    monkeypatch.setattr(utils.TrainingLog, "flush", watched_flush)
    try:
        yield watch
    finally:
        if ON_CUDA:
            torch.cuda.set_sync_debug_mode(0)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("name", list(RUNS))
def test_trains_with_no_host_sync_in_a_log_window(name, mode, data, tmp_path, monkeypatch):
    """7 steps with --log-every 2 (3 steps and more in each mode, as asked): the first window of 2
    is the warm-up, the next 5 steps run in checked windows. With --compile, the nets are
    compiled (new dynamo graphs), and nothing recompiles after the first window."""
    if mode == "compile":
        torch._dynamo.reset()  # a fresh dynamo cache: the graph count below is this run's
        if not ON_CUDA:
            monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    before = graphs()
    with checked_windows(monkeypatch) as watch:
        out = train(name, data, tmp_path / "run", "--steps", "7", "--log-every", "2", *MODES[mode])
    ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["step"] == 7 and ckpt["cfg"]["device"] == DEVICE
    rows = loss_rows(out)
    assert [r["step"] for r in rows] == ["2", "4", "6", "7"]
    for row in rows:
        values = {k: float(v) for k, v in row.items() if k not in ("step", "epoch")}
        assert all(math.isfinite(v) for v in values.values()), row
    assert watch.checked_steps == 5, f"{watch.checked_steps} steps ran checked, not 5"
    if mode == "compile":
        assert graphs() > before, "--compile made no graph: the nets ran eagerly"
        assert graphs() == watch.graphs_at_first_flush, (
            f"{graphs() - watch.graphs_at_first_flush} graph(s) compiled after the first log window (a recompile)"
        )


def deterministic_resume(name, mnist_root, cifar_root, out):
    """Run in a process of its own (test_resume_on_cuda_equals_the_uninterrupted_run): --steps 4
    straight, and --steps 4 interrupted after step 2 (a KeyboardInterrupt, the scripts' Ctrl-C
    path, which saves last.pt) then resumed, all with --deterministic (whose
    torch.use_deterministic_algorithms warns where an op has no deterministic CUDA kernel: its name
    is returned). What is compared: every weight, buffer and optimizer state, and losses.csv."""
    import torchvision.datasets.cifar

    torchvision.datasets.cifar.check_integrity = gpu_check.file_exists
    data, out = {"mnist": Path(mnist_root), "cifar10": Path(cifar_root)}, Path(out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        straight = train(name, data, out / "straight", "--steps", "4", "--log-every", "1", "--deterministic")
        add = utils.TrainingLog.add

        def interrupted_after_step_2(self, metrics, step, epoch):
            add(self, metrics, step, epoch)
            if step == 2:
                raise KeyboardInterrupt

        utils.TrainingLog.add = interrupted_after_step_2
        interrupted = None
        try:
            train(name, data, out / "split", "--steps", "4", "--log-every", "1", "--deterministic")
        except SystemExit as exc:  # the Ctrl-C path: a saved stop, exit status 130
            interrupted = exc.code
        finally:
            utils.TrainingLog.add = add
        assert interrupted == 130, interrupted
        split = out / "split"
        importlib.import_module(RUNS[name][0]).main(["--resume", str(split / "checkpoints" / "last.pt")])
    ops = sorted({str(w.message).splitlines()[0][:200] for w in caught if "deterministic" in str(w.message)})
    a, b = (utils.load_checkpoint(run / "checkpoints" / "last.pt") for run in (straight, split))
    tensors_a = flat_tensors({"m": a["models"], "o": a["optimizers"]})
    tensors_b = flat_tensors({"m": b["models"], "o": b["optimizers"]})
    assert tensors_a.keys() == tensors_b.keys()
    equal = all(torch.equal(tensors_a[k], tensors_b[k]) for k in tensors_a)
    floats = [k for k in tensors_a if k.startswith("m/") and tensors_a[k].is_floating_point()]
    diff = sum(float((tensors_a[k].double() - tensors_b[k].double()).abs().sum()) for k in floats)
    size = sum(float(tensors_a[k].double().abs().sum()) for k in floats)
    rows_a, rows_b = loss_rows(straight, rates=False), loss_rows(split, rates=False)
    numbers = [(float(ra[k]), float(rb[k])) for ra, rb in zip(rows_a, rows_b) for k in ra if k not in ("step", "epoch")]
    return {
        "bitwise": equal and rows_a == rows_b,
        "weights_bitwise": equal,
        "steps": [r["step"] for r in rows_b],
        "relative_weight_difference": diff / max(size, 1e-30),
        "max_relative_loss_difference": max((abs(x - y) / max(abs(x), 1e-8) for x, y in numbers), default=0.0),
        "nondeterministic_ops": ops,
    }


def flat_tensors(tree, prefix=""):
    """{path: tensor} of every tensor in nested dicts and lists (state dicts, optimizer states)."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, (list, tuple)) else []
    found = {}
    for key, value in items:
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, torch.Tensor):
            found[path] = value
        else:
            found.update(flat_tensors(value, path))
    return found


@pytest.mark.parametrize("name", list(RUNS))
def test_resume_on_cuda_equals_the_uninterrupted_run(name, data, tmp_path):
    """What "equal" means on CUDA. With --deterministic (torch.use_deterministic_algorithms, cuDNN's
    autotuner off, CUBLAS_WORKSPACE_CONFIG=:4096:8, set here before CUDA starts, hence a process of
    its own), cuBLAS and cuDNN take deterministic kernels, so the resumed run must equal the
    uninterrupted one bit for bit: every
    weight, buffer and optimizer state, and losses.csv. Where a script uses an op that has no
    deterministic CUDA kernel (PyTorch warns, and the test names it), atomics may round
    differently in any two runs, resumed or not; then the weights must agree to 1e-5 in relative
    L1 distance (sum |a - b| / sum |a|): such rounding moves them by ~1e-9 of their size, while a
    resume that restored a wrong RNG state, data order or optimizer state moves every weight by
    Adam's step (~lr = 2e-4 against weights of ~0.02: ~1e-2)."""
    env = dict(
        os.environ, CUBLAS_WORKSPACE_CONFIG=":4096:8", PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
    )
    code = "import json, sys, test_cuda; print('RESULT', json.dumps(test_cuda.deterministic_resume(*sys.argv[1:])))"
    proc = subprocess.run(
        [sys.executable, "-c", code, name, str(data["mnist"]), str(data["cifar10"]), str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert result["steps"] == ["1", "2", "3", "4"]
    if not result["nondeterministic_ops"]:
        assert result["bitwise"], f"resumed run differs from the uninterrupted one: {result}"
    else:
        assert result["relative_weight_difference"] < 1e-5, (
            f"resumed run differs beyond the rounding of {result['nondeterministic_ops']}: {result}"
        )


SAMPLERS = ["gan_mlp", "gan_maxout", "dcgan", "wgan_gp", "infogan", "bigan", "cyclegan"]


def on_a_machine_without_gpu(*argv):
    """Run `python ARGV...` in the repository in a process that sees no GPU; it must succeed."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


@pytest.mark.parametrize("name", SAMPLERS)
def test_a_cuda_checkpoint_samples_on_the_cpu(name, data, tmp_path):
    """A checkpoint trained on DEVICE, read by `sampler.py ... --device cpu` in a process that
    sees no GPU (CUDA_VISIBLE_DEVICES empty), as on a laptop: a grid of samples (cyclegan: held-out
    style digits translated)."""
    try:
        import sampler  # noqa: F401 (only whether it imports: a package it needs may be missing here)
    except ImportError as exc:
        pytest.skip(f"sampler.py cannot be imported here: {exc}")
    out = train(name, data, tmp_path / "run", "--steps", "2")
    ckpt = out / "checkpoints" / "last.pt"
    if name == "cyclegan":
        images, _ = synthetic_digits(4, seed=3)
        np.savez(tmp_path / "a.npz", images=images)
        target = tmp_path / "translated"
        command = ["translate", "--input", str(tmp_path / "a.npz"), "--direction", "a2b", "--out", str(target)]
    else:
        target = tmp_path / "grid.png"
        command = ["sample", "--n", "16", "--out", str(target)]
    on_a_machine_without_gpu("sampler.py", *command, "--ckpt", str(ckpt), "--device", "cpu")
    assert (target.is_file() and target.stat().st_size > 0) or len(list(target.glob("*.png"))) == 4


def test_a_cuda_checkpoint_resumes_on_the_cpu(data, tmp_path):
    """dcgan's CUDA checkpoint (CUDA RNG state and all) continues training on a machine with no GPU."""
    out = train("dcgan", data, tmp_path / "run", "--steps", "2")
    on_a_machine_without_gpu(
        "dcgan.py", "--resume", str(out / "checkpoints" / "last.pt"), "--steps", "3", "--device", "cpu"
    )
    assert utils.load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 3


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp", "cyclegan"])
def test_torchrun_one_process_on_nccl(name, data, tmp_path):
    """`torchrun --nproc_per_node 1`: the DDP path on one GPU, its process group on NCCL (the
    backend the scripts choose on CUDA; NCCL_DEBUG=INFO makes NCCL say it started)."""
    script, flags = RUNS[name]
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", f"{script}.py"]
    command += [*flags, "--data-root", str(data["mnist"]), "--device", DEVICE, "--out", str(out)]
    command += ["--steps", "3", "--log-every", "1"]
    env = dict(os.environ, NCCL_DEBUG="INFO", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert " x 1 processes" in proc.stdout
    if ON_CUDA:
        assert "NCCL INFO" in output, "NCCL never started: " + output[-2000:]
    ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["step"] == 3 and [r["step"] for r in loss_rows(out)] == ["1", "2", "3"]
