"""A newcomer's second hour: the commands the pages give parse, the MNIST split step, help piped into
head, flags never abbreviated and mistyped ones named, run folders for the --eval commands, a resumed
run that says so, SIGTERM saving like Ctrl-C, bounded end-of-run scores that say what they do, the
workers' default, and snapshots that hold what sampling needs."""

import importlib
import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, synthetic_digits, write_idx

import bigan
import cyclegan
import dcgan
import infogan
import sampler
import utils

SCRIPTS = ["gan_mlp", "gan_maxout", "dcgan", "wgan_gp", "infogan", "bigan", "cyclegan"]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# --------------------------------------------------------------------------- 1. the commands the pages give
def commands(text):
    """The `python X.py ...` commands of a page's code blocks or a docstring's indented lines, each
    as its words (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in text.splitlines():
        line = re.split(r"\s{3,}(?=[A-Za-z])", line.strip())[0]  # a docstring's description after a gap: not flags
        if not re.match(r"(python3?|torchrun .*?) \S+\.py( |$)", line):
            continue
        words = shlex.split(line, comments=True)
        script = next(w for w in words if w.endswith(".py"))
        found.append([script, *words[words.index(script) + 1 :]])
    return found


def page_commands():
    for page in PAGES:
        blocks = "\n".join(re.findall(r"```(?:bash|sh)?\n(.*?)```", page.read_text(), re.S))
        yield from ((page.name, words) for words in commands(blocks))
    for name in [*SCRIPTS, "sampler", "scores"]:
        yield from ((f"{name}.py's docstring", words) for words in commands(importlib.import_module(name).__doc__))


def split_mnist():
    spec = importlib.util.spec_from_file_location("split_mnist", ROOT / "benchmarks" / "split_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_command(words):
    """Parse the command's flags the way it will: a training script's parser, the sampler's checks,
    the split step's parser. A bad flag or value exits; placeholders (<name>, FOLDER) are just strings."""
    script, args = Path(words[0]), words[1:]
    if script.name == "sampler.py":
        command = args[0] if args and not args[0].startswith("-") else "sample"
        args = args[1:] if args and not args[0].startswith("-") else args
        if "--help" not in args and "-h" not in args:
            sampler.parse_flags(command, args)
    elif script.name == "split_mnist.py" and "--help" not in args:
        split_mnist().build_parser().parse_args(args)
    elif script.stem in SCRIPTS and "--help" not in args:
        importlib.import_module(script.stem).build_parser().parse_args(args)


def test_every_command_in_the_pages_and_docstrings_parses():
    checked = 0
    for where, words in page_commands():
        try:
            check_command(words)
        except SystemExit as exc:
            pytest.fail(f"{where}: `{' '.join(words)}` does not parse: {exc}")
        checked += 1
    assert checked > 60  # README, every page, every docstring's Run: section


def test_no_page_tells_to_range_the_test_file_that_the_split_replaces():
    """One story for "only MNIST's test file at hand": benchmarks/split_mnist.py makes an 8,000-digit
    training file and a 2,000-digit test file, so test:0:8000 and test:8000:10000 no longer exist."""
    for path in [*PAGES, *(ROOT / f"{s}.py" for s in [*SCRIPTS, "sampler", "scores"])]:
        assert not re.search(r"test:0:8000|test:8000:10000", path.read_text()), path.name


# --------------------------------------------------------------------------- 2. the split step
def test_split_step_writes_the_training_and_test_files_and_refuses_bad_folders_in_one_line(tmp_path):
    source = tmp_path / "t10k"
    source.mkdir()
    images, labels = synthetic_digits(50, seed=0)
    write_idx(source / "t10k-images-idx3-ubyte", images)
    write_idx(source / "t10k-labels-idx1-ubyte", labels)

    def split(*flags):
        return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "split_mnist.py"), *flags],
                              capture_output=True, text=True, cwd=tmp_path)  # fmt: skip

    for flags, message in (
        (["--t10k", "missing"], "--t10k missing is not a folder"),
        (["--t10k", str(tmp_path)], "has no t10k-images-idx3-ubyte.gz"),
    ):
        proc = split(*flags, "--data-root", "data")
        assert proc.returncode == 1 and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
        assert not (tmp_path / "data").exists()  # nothing left behind
    proc = split("--t10k", str(source), "--data-root", "data", "--train", "40")
    assert proc.returncode == 0 and "a training file of the first 40 digits" in proc.stdout
    train, _ = utils.load_mnist_family("mnist", tmp_path / "data", train=True)
    test, _ = utils.load_mnist_family("mnist", tmp_path / "data", train=False)
    assert torch.equal(train, torch.from_numpy(images[:40])) and torch.equal(test, torch.from_numpy(images[40:]))


# --------------------------------------------------------------------------- 3. help into head
@pytest.mark.parametrize("command", [["sampler.py", "-h"], ["dcgan.py", "-h"], ["benchmarks/split_mnist.py", "-h"]])
def test_help_into_a_closed_pipe_prints_no_traceback(command):
    read, write = os.pipe()
    os.close(read)  # as `| head -1` is, once head has its line
    proc = subprocess.run([sys.executable, str(ROOT / command[0]), *command[1:]], stdout=write,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    os.close(write)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode in (-signal.SIGPIPE, 128 + signal.SIGPIPE), proc.returncode  # ended as Unix tools end


# --------------------------------------------------------------------------- 4. flags
def test_abbreviated_flags_are_refused_and_a_mistyped_flag_is_named(mnist_root):
    with pytest.raises(SystemExit) as stop:
        dcgan.main(["--data-root", str(mnist_root), "--epoch", "1"])
    assert "no flag --epoch; did you mean --epochs?" in str(stop.value)
    with pytest.raises(SystemExit) as stop:
        dcgan.main(["--data-root", str(mnist_root), "--lr_g", "1e-3"])
    assert "did you mean --lr-g?" in str(stop.value)


# --------------------------------------------------------------------------- 5, 6. run folders, a resume that says so
def run(script, tmp_path, mnist_root, *flags, name="run"):
    out = tmp_path / name
    ranges = ["--train-range", "train:0:320", "--eval-range", "test:0:64"] if script is not dcgan else []
    script.main(["--data-root", str(mnist_root), "--out", str(out), "--batch-size", "16", *ranges, *flags])
    return out


def test_eval_commands_take_a_run_folder(tmp_path, mnist_root, capsys):
    out = run(infogan, tmp_path, mnist_root, "--steps", "1", name="infogan")
    assert 0 <= infogan.main(["--eval-accuracy", "--ckpt", str(out)]) <= 1
    out = run(bigan, tmp_path, mnist_root, "--steps", "1", "--hidden", "32", name="bigan")
    assert len(bigan.main(["--eval-probe", "--ckpt", str(out)])) == 8
    flags = ["--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--classifier-steps", "2"]
    out = run(cyclegan, tmp_path, mnist_root, "--steps", "1", *flags, name="cyclegan")
    assert "cycle_a" in cyclegan.main(["--eval", "--ckpt", str(out)])
    assert "does not exist" not in capsys.readouterr().err


# --------------------------------------------------------------------------- 7. SIGTERM
def test_sigterm_saves_like_ctrl_c(tmp_path, mnist_root):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "dcgan.py"), "--data-root", str(mnist_root), "--out", str(out),
         "--batch-size", "16", "--log-every", "1", "--steps", "100000"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    logged = lambda: len((out / "losses.csv").read_text().splitlines()) - 1 if (out / "losses.csv").exists() else 0
    deadline = time.time() + 120
    while logged() < 2 and time.time() < deadline:  # a couple of steps in
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # what timeout, kill and SLURM send
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err  # 128 + SIGTERM
    said = [line for line in err.replace("\r", "\n").splitlines() if "SIGTERM" in line]
    assert len(said) == 1 and re.match(r"terminated \(SIGTERM\) at step \d+; saved .*last.pt; continue with", said[0])
    step = utils.load_checkpoint(out / "checkpoints" / "last.pt")["step"]
    assert step >= 2 and f"at step {step};" in said[0]
    assert "Traceback" not in err


# --------------------------------------------------------------------------- 8. no silent minutes
def test_end_of_run_scores_are_bounded_and_say_what_they_do(tmp_path, mnist_root, capsys):
    flags = ["--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--classifier-steps", "2", "--eval-images", "8"]
    run(cyclegan, tmp_path, mnist_root, "--steps", "1", *flags, name="cyclegan")
    printed = capsys.readouterr().out
    assert "scoring G and F on 8 held-out images each way (a digit classifier trains first, 2 steps) ..." in printed
    run(bigan, tmp_path, mnist_root, "--steps", "1", "--hidden", "32", "--probe-images", "48", name="bigan")
    assert "encoding 48 training and 48 held-out images" in capsys.readouterr().out
    run(infogan, tmp_path, mnist_root, "--steps", "1", name="infogan")
    assert "measuring Q's categorical accuracy on 64 held-out images ..." in capsys.readouterr().out
    assert cyclegan.build_parser().get_default("eval_images") == 1000
    assert bigan.build_parser().get_default("probe_images") == 10_000


# --------------------------------------------------------------------------- 10. workers
@pytest.mark.parametrize("script", ["dcgan", "wgan_gp", "cyclegan"])
def test_workers_default_to_what_the_machine_has(script):
    workers = importlib.import_module(script).build_parser().get_default("workers")
    assert workers == utils.WORKERS and 1 <= workers <= min(4, os.cpu_count())


# --------------------------------------------------------------------------- 11. snapshots
def test_snapshots_hold_what_sampling_needs_and_last_pt_what_resuming_needs(tmp_path, mnist_root):
    flags = ["--batch-size", "64", "--save-every", "1"]  # 5 steps an epoch
    out = run(dcgan, tmp_path, mnist_root, "--epochs", "2", *flags, "--ema", "0.9")
    snapshot, last = out / "checkpoints" / "epoch_001.pt", out / "checkpoints" / "last.pt"
    state = utils.load_checkpoint(snapshot)
    assert set(state["models"]) == {"G", "G_ema"} and "optimizers" not in state and state["step"] == 5
    assert snapshot.stat().st_size < last.stat().st_size / 2  # no D, no Adam moments
    assert Path(sampler.sample(str(snapshot), n=4, out=str(tmp_path / "s.png"))).is_file()
    with pytest.raises(SystemExit) as stop:
        dcgan.main(["--resume", str(snapshot), "--epochs", "3"])
    assert "is a snapshot" in str(stop.value) and "checkpoints/last.pt" in str(stop.value)
    full = run(dcgan, tmp_path, mnist_root, "--epochs", "1", *flags, "--full-snapshots", name="full")
    assert "optimizers" in utils.load_checkpoint(full / "checkpoints" / "epoch_001.pt")
