"""Each training script's GAN half, the text above its "# ==== the run" line, runs alone: pasted
into an empty folder with no utils.py and the repository not importable, it builds the models
from the paper's values and trains them (tests/copyable/drive_<script>.py drives each, as a
user's own loop would)."""

import os
import re
import subprocess
import sys
from subprocess import PIPE

import pytest
from conftest import ROOT

SCRIPTS = ["gan_mlp", "gan_maxout", "dcgan", "wgan_gp", "infogan", "bigan", "cyclegan"]
DIVIDER = re.compile(r"^# ==== the run", re.MULTILINE)  # the line between the two halves


def halves(script):
    text = (ROOT / f"{script}.py").read_text()
    parts = DIVIDER.split(text)
    assert len(parts) == 2, f"{script}.py needs exactly one line starting with '# ==== the run'"
    return parts


@pytest.mark.parametrize("script", SCRIPTS)
def test_gan_half_names_no_utils(script):
    gan, run = halves(script)
    assert not re.findall(r"(?<![.\w])utils\b", gan)  # the project's utils; torch.utils is plain PyTorch
    assert "\nimport utils" in run  # the run half, and only it, uses the harness


@pytest.fixture(scope="module")
def pasted_runs(tmp_path_factory):
    """Each GAN half pasted alone into an empty folder beside its driver, all seven started at once
    (each a fresh interpreter on one thread, sharing the machine's cores): script -> (its folder,
    exit status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    started = {}
    for script in SCRIPTS:
        folder = tmp_path_factory.mktemp(f"pasted_{script}")
        (folder / f"{script}.py").write_text(halves(script)[0])
        (folder / "drive.py").write_text((ROOT / "tests" / "copyable" / f"drive_{script}.py").read_text())
        command = [sys.executable, "-s", "drive.py"]
        started[script] = folder, subprocess.Popen(command, cwd=folder, env=env, stdout=PIPE, stderr=PIPE, text=True)
    finished = {script: (folder, *p.communicate(timeout=300)) for script, (folder, p) in started.items()}
    return {
        script: (folder, started[script][1].returncode, out, err) for script, (folder, out, err) in finished.items()
    }


@pytest.mark.parametrize("script", SCRIPTS)
def test_gan_half_trains_alone(script, pasted_runs):
    folder, status, out, err = pasted_runs[script]
    assert status == 0, err[-3000:]
    assert out.startswith("trained"), out
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".py") == sorted(["drive.py", f"{script}.py"])
