"""notebooks/<script>.ipynb: each is a fresh build of its script's GAN half (`python notebooks/build.py --check`),
and each runs top to bottom, in a Jupyter kernel of this very Python, on two steps of synthetic data, showing its
sample grid inline. Needs the notebook tools of requirements-dev.txt (nbformat, nbclient, ipykernel)."""

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ROOT

nbformat = pytest.importorskip(
    "nbformat", reason="the notebook tools are not installed: pip install -r requirements-dev.txt"
)

SCRIPTS = ["gan_mlp", "gan_maxout", "dcgan", "wgan_gp", "infogan", "bigan", "cyclegan"]
KERNEL = "gan-notebooks-test"  # a kernel spec of our own, naming sys.executable (see `executed`)


def load_builder():
    spec = importlib.util.spec_from_file_location("notebook_build", ROOT / "notebooks" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_builder_knows_every_script():
    assert list(load_builder().SCRIPTS) == SCRIPTS


def test_committed_notebooks_are_fresh_builds():
    run = subprocess.run(
        [sys.executable, "notebooks/build.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_check_names_a_stale_notebook(tmp_path, capsys):
    """--check reads the notebooks beside the scripts: one edited by hand, one missing, each a line, exit 1."""
    shutil.copy(ROOT / "dcgan.py", tmp_path)
    shutil.copy(ROOT / "bigan.py", tmp_path)
    (tmp_path / "notebooks").mkdir()
    builder = load_builder()
    assert builder.main(["dcgan", "bigan"], root=tmp_path) == 0
    capsys.readouterr()
    assert builder.main(["--check", "dcgan", "bigan"], root=tmp_path) == 0
    notebook = tmp_path / "notebooks" / "dcgan.ipynb"
    notebook.write_text(notebook.read_text().replace("STEPS = ", "STEPS  = "))
    (tmp_path / "notebooks" / "bigan.ipynb").unlink()
    assert builder.main(["--check", "dcgan", "bigan"], root=tmp_path) == 1
    assert capsys.readouterr().out.splitlines() == [
        "notebooks/dcgan.ipynb differs from a fresh build of dcgan.py's GAN half: run python notebooks/build.py",
        "notebooks/bigan.ipynb is missing: run python notebooks/build.py",
    ]


@pytest.mark.parametrize("script", SCRIPTS)
def test_notebook_shows_the_gan_half_verbatim(script):
    """Every line of the GAN half below its docstring is in the notebook's code cells, in order."""
    builder = load_builder()
    half = builder.gan_half(script)
    nb = nbformat.read(ROOT / "notebooks" / f"{script}.ipynb", as_version=4)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    after_docstring = half.splitlines()[ast.parse(half).body[0].end_lineno :]
    body = [line for line in after_docstring if line.strip() and not builder.SECTION.match(line)]
    assert body and "\n".join(body) in "\n".join(line for line in code.splitlines() if line.strip())
    assert not re.search(r"^\s*(import|from) utils\b", code, re.MULTILINE)  # not the run harness
    tags = [cell.metadata.get("tags", []) for cell in nb.cells]
    assert tags.count(["parameters"]) == 1
    assert not any(cell.get("outputs") for cell in nb.cells)  # committed without outputs


@pytest.fixture(scope="module")
def executed(tmp_path_factory, mnist_root):
    """Each notebook run top to bottom with GAN_NOTEBOOK_STEPS=2 and GAN_NOTEBOOK_DATA=synthetic, in an empty
    working folder, one after another: script -> (the executed notebook, or the error that stopped it; seconds).
    dcgan's reads MNIST instead ("auto"), from a data root that holds a small one already, so nothing downloads."""
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed: pip install -r requirements-dev.txt")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed: pip install -r requirements-dev.txt")
    # A kernel spec found first on JUPYTER_PATH, naming this interpreter: a "python3" kernel installed for the
    # user or the system could be another Python, without torch.
    kernels = tmp_path_factory.mktemp("jupyter")
    spec = kernels / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    env = dict(os.environ, JUPYTER_PATH=str(kernels), JUPYTER_RUNTIME_DIR=str(kernels / "runtime"),
               IPYTHONDIR=str(kernels / "ipython"), GAN_NOTEBOOK_STEPS="2", GAN_NOTEBOOK_BATCH_SIZE="8",
               OMP_NUM_THREADS="1", GAN_NOTEBOOK_DATA_ROOT=str(mnist_root))  # fmt: skip
    for name in ("MPLBACKEND", "PYTHONPATH"):  # the kernel's own backend, inline; nothing of the repository
        env.pop(name, None)

    def run(script):
        nb = nbformat.read(ROOT / "notebooks" / f"{script}.ipynb", as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
        folder = tmp_path_factory.mktemp(f"run_{script}")
        client = nbclient.NotebookClient(
            nb, kernel_name=KERNEL, timeout=300, resources={"metadata": {"path": str(folder)}}
        )
        start = time.perf_counter()
        try:  # the kernel's environment: the one above, with the data this notebook reads
            client.execute(env={**env, "GAN_NOTEBOOK_DATA": "auto" if script == "dcgan" else "synthetic"})
            return nb, time.perf_counter() - start
        except Exception as error:  # a cell raised: the test for that script shows it
            return error, time.perf_counter() - start

    with pytest.MonkeyPatch.context() as patch, ThreadPoolExecutor(2) as pool:  # two kernels at a time
        patch.setenv("JUPYTER_PATH", str(kernels))  # where the client finds the kernel spec
        patch.setenv("JUPYTER_RUNTIME_DIR", str(kernels / "runtime"))  # the kernels' connection files
        return dict(zip(SCRIPTS, pool.map(run, SCRIPTS)))


@pytest.mark.parametrize("script", SCRIPTS)
def test_notebook_runs_top_to_bottom(script, executed):
    nb, seconds = executed[script]
    if isinstance(nb, Exception):
        pytest.fail(f"{script}.ipynb stopped after {seconds:.0f} s: {str(nb)[-4000:]}")
    outputs = [(cell, out) for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    errors = [out for _, out in outputs if out.output_type == "error"]
    assert not errors, errors
    assert not [out for _, out in outputs if out.output_type == "execute_result"]  # no stray value shown
    images = [cell for cell, out in outputs if "image/png" in out.get("data", {})]
    assert any("show_grid(" in cell.source for cell in images), "no sample grid shown"
    assert any("LOSS_NAMES" in cell.source and "plt.plot" in cell.source for cell in images), "no losses plotted"
    printed = "".join(out.get("text", "") for _, out in outputs if out.output_type == "stream")
    assert f"{320 if script == 'dcgan' else 2048} images (1, 28, 28)" in printed  # MNIST's 320, or synthetic
    assert "step 2:" in printed  # the training loop ran its two steps
    assert os.path.realpath(printed.splitlines()[-1]) == os.path.realpath(sys.executable)  # the kernel's Python
