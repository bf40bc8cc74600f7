"""Each training script's GAN half, the text above its "# ==== the run" line, runs alone: pasted
into an empty folder with no utils.py and the repository not importable, it builds the models
from the paper's values and trains them (tests/copyable/drive_<script>.py drives each, as a
user's own loop would)."""

import os
import re
import subprocess
import sys

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


@pytest.mark.parametrize("script", SCRIPTS)
def test_gan_half_trains_alone(script, tmp_path):
    (tmp_path / f"{script}.py").write_text(halves(script)[0])
    driver = tmp_path / "drive.py"
    driver.write_text((ROOT / "tests" / "copyable" / f"drive_{script}.py").read_text())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-s", str(driver)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("trained"), done.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".py") == sorted(["drive.py", f"{script}.py"])
