"""dcgan.py, wgan_gp.py and cyclegan.py in two CPU processes with gloo, as torchrun starts them
(RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address in the environment): the ranks' weights
stay identical step by step, only rank 0 writes, the outputs are one run's, a 2-process
checkpoint resumes exactly (and with one process, with a note), Ctrl-C and a crashed rank end
in one line, and wgan_gp's gradient penalty (a double backward) averages to the full batch's."""

import builtins
import contextlib
import csv
import hashlib
import importlib
import io
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from conftest import ROOT

import dcgan
import sampler
import utils
import wgan_gp

WORLD = 2
# script -> flags for a few steps on the tests' 320/64 synthetic digits; the epoch snapshots complete, to resume from
RUNS = {
    "dcgan": [
        "--batch-size",
        "64",
        "--log-every",
        "4",
        "--sample-size",
        "4",
        "--epochs",
        "2",
        "--save-every",
        "1",
        "--full-snapshots",
    ],
    "wgan_gp": [
        "--batch-size",
        "32",
        "--n-critic",
        "2",
        "--log-every",
        "2",
        "--sample-size",
        "4",
        "--epochs",
        "2",
        "--steps",
        "100",
        "--save-every",
        "1",
        "--full-snapshots",
    ],
    "cyclegan": [
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--n-blocks",
        "1",
        "--batch-size",
        "4",
        "--pool-size",
        "4",
        "--log-every",
        "3",
        "--classifier-steps",
        "5",
        "--train-range",
        "train:0:64",
        "--eval-range",
        "test:0:16",
        "--epochs",
        "2",
        "--decay-epochs",
        "1",
        "--save-every",
        "1",
        "--full-snapshots",
    ],
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def digest(optimizers):
    """A fingerprint of every weight the optimizers step: equal only if the weights are bit for bit."""
    weights = torch.cat([p.detach().flatten() for o in optimizers for g in o.param_groups for p in g["params"]])
    return hashlib.sha1(weights.numpy().tobytes()).hexdigest()


def worker(rank, port, script, argv, record, run_dir, fail_at):
    """One process of a torchrun job: the environment torchrun gives, then the script's main().
    Records the weights' fingerprint after every step and any file this process opens for
    writing under the run folder; at step fail_at (if given) a Ctrl-C (all ranks) or a crash
    (rank 1)."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    module = importlib.import_module(script)
    fingerprints, writes, real_step, real_open = [], [], module.train_step, builtins.open

    def train_step(*args):
        if fail_at and len(fingerprints) + 1 == fail_at[0]:
            if fail_at[1] == "ctrl-c":
                raise KeyboardInterrupt
            if rank == 1:
                raise SystemExit("error (rank 1): crashed on purpose")
        metrics = real_step(*args)
        fingerprints.append(digest([a for a in args if isinstance(a, torch.optim.Optimizer)]))
        return metrics

    def watched_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and str(run_dir) in str(file):
            writes.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    module.train_step = train_step
    if rank:
        builtins.open = watched_open
    exit_message, said = None, io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            module.main(argv)
    except SystemExit as exc:
        exit_message = str(exc.code)
    finally:
        builtins.open = real_open
    record_ = {"fingerprints": fingerprints, "writes": writes, "exit": exit_message, "stderr": said.getvalue()}
    torch.save(record_, record / f"rank{rank}.pt")


def launch(tmp_path, script, argv, run_dir, fail_at=None):
    """Run `script` in WORLD processes; returns each rank's record."""
    record = tmp_path / f"record-{len(list(tmp_path.glob('record-*')))}"
    record.mkdir()
    context = mp.start_processes(
        worker,
        args=(free_port(), script, argv, record, run_dir, fail_at),
        nprocs=WORLD,
        join=False,
        start_method="spawn",
    )
    while not context.join(timeout=120):
        pass
    return [torch.load(record / f"rank{r}.pt") for r in range(WORLD)]


def rows(run_dir):
    with open(run_dir / "losses.csv") as f:
        return [{k: v for k, v in row.items() if k != "images_per_s"} for row in csv.DictReader(f)]


def files(run_dir):
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- the three scripts
@pytest.mark.parametrize("script", ["dcgan", "wgan_gp", "cyclegan"])
def test_two_processes_train_as_one_run_and_resume_exactly(script, tmp_path, mnist_root, capsys):
    out = tmp_path / "run"
    argv = ["--data-root", str(mnist_root), "--out", str(out), *RUNS[script]]
    rank0, rank1 = launch(tmp_path, script, argv, out)
    assert rank0["exit"] is None and rank1["exit"] is None
    assert len(rank0["fingerprints"]) > 2 and rank0["fingerprints"] == rank1["fingerprints"]  # same weights, each step
    assert rank1["writes"] == []  # only rank 0 writes
    assert {
        "checkpoints/epoch_001.pt",
        "checkpoints/epoch_002.pt",
        "checkpoints/last.pt",
        "losses.csv",
        "progress.gif",
        "samples/epoch_001.png",
        "samples/epoch_002.png",
    } <= set(files(out))
    straight, straight_weights = rows(out), utils.load_checkpoint(out / "checkpoints" / "last.pt")["models"]
    if script != "cyclegan":  # an ordinary checkpoint: the sampler reads it
        sampler.sample(str(out / "checkpoints" / "last.pt"), n=4, out=str(tmp_path / "grid.png"), device="cpu")
        assert (tmp_path / "grid.png").exists()
    ckpt = utils.load_checkpoint(out / "checkpoints" / "epoch_001.pt")
    assert len(ckpt["ranks"]) == 1 and ckpt["step"] == len(rank0["fingerprints"]) // 2

    # resume it in one process (a copy of the run): it goes on, from the same weights and global batches
    one = tmp_path / "one"
    shutil.copytree(out, one)
    importlib.import_module(script).main(["--resume", str(one / "checkpoints" / "epoch_001.pt")])
    assert "note: resuming a 2-process run with 1: the same weights and global batches" in capsys.readouterr().err
    assert "ranks" not in utils.load_checkpoint(one / "checkpoints" / "last.pt")
    assert utils.load_checkpoint(one / "checkpoints" / "last.pt")["step"] == len(rank0["fingerprints"])

    # resume the 2-process run from its epoch-1 checkpoint, in 2 processes: the same steps again
    resumed = launch(tmp_path, script, ["--resume", str(out / "checkpoints" / "epoch_001.pt")], out)
    assert resumed[0]["fingerprints"] == rank0["fingerprints"][ckpt["step"] :] == resumed[1]["fingerprints"]
    assert rows(out) == straight
    weights = utils.load_checkpoint(out / "checkpoints" / "last.pt")["models"]
    assert all(torch.equal(weights[net][k], straight_weights[net][k]) for net in weights for k in weights[net])


def test_ctrl_c_ends_every_process_and_keeps_the_last_complete_checkpoint(tmp_path, mnist_root):
    out = tmp_path / "run"
    argv = ["--data-root", str(mnist_root), "--out", str(out), *RUNS["dcgan"]]
    rank0, rank1 = launch(tmp_path, "dcgan", argv, out, fail_at=(8, "ctrl-c"))  # 5 steps an epoch: in epoch 2
    last = out / "checkpoints" / "last.pt"
    assert rank0["exit"] == rank1["exit"] == "130"  # a normal stop: the status shells give an interrupt
    said = f"interrupted at step 7; the last complete checkpoint is {last}; continue with --resume {last}"
    assert said in rank0["stderr"].splitlines() and "error" not in rank0["stderr"]
    assert "interrupted" not in rank1["stderr"] and utils.load_checkpoint(last)["step"] == 5


def test_a_crashed_rank_ends_the_others_with_one_line(tmp_path, mnist_root):
    argv = ["--data-root", str(mnist_root), "--out", str(tmp_path / "run"), *RUNS["dcgan"]]
    rank0, rank1 = launch(tmp_path, "dcgan", argv, tmp_path / "run", fail_at=(3, "crash"))
    assert rank1["exit"] == "error (rank 1): crashed on purpose"
    assert rank0["exit"].startswith("error: another process of this torchrun job stopped, so this one stops too")


# --------------------------------------------------------------------------- pieces
def test_the_ranks_shares_make_up_each_global_batch(mnist_root):
    cfg = {"batch_size": 32, "seed": 3}
    data = torch.arange(320).view(320, 1, 1, 1).to(torch.uint8)
    one = list(dcgan.epoch_batches(data, cfg, 0, 2, "cpu"))
    shares = [list(dcgan.epoch_batches(data, cfg, 0, 2, "cpu", r, 2)) for r in range(2)]
    assert len(one) == 8 and all(len(s) == 8 for s in shares)
    assert all(torch.equal(torch.cat([a, b]), whole) for a, b, whole in zip(*shares, one))


def penalty_worker(rank, port, record):
    """Each of two processes: the penalty on its half of a batch, through DDP; rank 0 also the
    full batch's, on a plain copy of the same critic."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo")
    cfg = {"arch": "mnist", "width": 8, "critic_norm": "none", "channels": 1, "init": "tflib"}
    torch.manual_seed(0)
    critic, reference = wgan_gp.build_critic(cfg), wgan_gp.build_critic(cfg)
    reference.load_state_dict(critic.state_dict())
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    (ddp_critic,) = utils.distribute(utils.Distributed(rank, 2, rank, True), critic)
    half = x[4 * rank : 4 * rank + 4]
    # real = fake: x_hat is x, whatever alpha is; D(x)'s term gives every parameter a gradient, as training does
    (ddp_critic(half).mean() + wgan_gp.gradient_penalty(ddp_critic, half, half)).backward()
    (reference(x).mean() + wgan_gp.gradient_penalty(reference, x, x)).backward()
    torch.save(
        {"ddp": [p.grad for p in critic.parameters()], "full": [p.grad for p in reference.parameters()]},
        record / f"rank{rank}.pt",
    )
    torch.distributed.destroy_process_group()


def test_gradient_penalty_under_ddp_equals_the_full_batch(tmp_path):
    mp.start_processes(penalty_worker, args=(free_port(), tmp_path), nprocs=2, start_method="spawn")
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert len(rank0["full"]) == 8 and all(g.abs().sum() > 0 for g in rank0["full"])
    for ddp_grad, other_rank, full in zip(rank0["ddp"], rank1["ddp"], rank0["full"]):
        assert torch.equal(ddp_grad, other_rank) and torch.allclose(ddp_grad, full, rtol=1e-4, atol=1e-7)


def test_torchrun_refuses_a_batch_that_does_not_split_in_one_line(tmp_path, mnist_root):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(free_port()),
            str(ROOT / "dcgan.py"),
            "--data-root",
            str(mnist_root),
            "--out",
            str(tmp_path / "run"),
            "--batch-size",
            "15",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode != 0 and not (tmp_path / "run").exists()
    assert (
        "error: --batch-size 15 is the global batch and does not split evenly over 2 processes; make it a multiple of 2"
    ) in result.stderr
    assert "[rank0]: Traceback" not in result.stderr and "[rank1]: Traceback" not in result.stderr


def test_sync_bn_needs_torchrun_and_cuda(tmp_path, mnist_root):
    with pytest.raises(SystemExit, match="--sync-bn synchronises batch norm across the processes of a torchrun job"):
        dcgan.main(["--data-root", str(mnist_root), "--out", str(tmp_path / "run"), "--sync-bn", "--steps", "1"])
    assert not (tmp_path / "run").exists()


def test_more_processes_than_gpus_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for name, value in {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(
        SystemExit,
        match=r"process 1 of this machine has no GPU of its own \(1 visible\); start at most "
        r"1 processes per machine \(--nproc_per_node\)",
    ):
        utils.setup_distributed({"device": "cuda", "batch_size": 64})
    assert not torch.distributed.is_initialized()
