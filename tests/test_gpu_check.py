"""benchmarks/gpu_check.py --dry-run: the GPU check's own code path, on the CPU at toy sizes, so
that the check cannot rot while no GPU is at hand. One run of it (about a minute on two cores)
serves every test here; the real MNIST digits it asks for are stood in for by synthetic ones."""

import gzip
import json
import os
import struct
import subprocess
import sys

import pytest
from conftest import ROOT, synthetic_digits

sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402

ANCHORS = ROOT.parent / "shared" / "anchors"  # the peers' scripts, where this checkout has them beside it


def write_t10k(folder, n=1200):
    """MNIST's two t10k files, gzipped IDX, as --mnist expects them (synthetic digits here)."""
    folder.mkdir(parents=True)
    images, labels = synthetic_digits(n, seed=5)
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        with gzip.open(folder / f"t10k-{kind}-ubyte.gz", "wb") as f:
            f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape))
            f.write(array.tobytes())


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu_check")
    write_t10k(tmp / "t10k")
    out = tmp / "out"
    command = [sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--out", str(out), "--mnist", str(tmp / "t10k")]
    if (ANCHORS / "pe_dcgan.py").exists():
        command += ["--anchors", str(ANCHORS)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return {
        "out": out,
        "json": json.loads((out / "report.json").read_text()),
        "md": (out / "report.md").read_text(),
        "stdout": proc.stdout,
    }


def test_a_row_for_every_script_and_mode(dry_run):
    rows = dry_run["json"]["speed"]
    assert {(r["id"], r["mode"]) for r in rows} == {(c["id"], m) for c in gpu_check.CONFIGS for m in gpu_check.MODES}
    assert {r["script"] for r in rows} == set(gpu_check.SCRIPTS)
    by_key = {(r["id"], r["mode"]): r for r in rows}
    for config in gpu_check.CONFIGS:  # every config measured in fp32, one in every mode: the same code path
        assert by_key[config["id"], "fp32"]["status"] == "ok", by_key[config["id"], "fp32"]
    for mode in gpu_check.MODES:
        row = by_key[gpu_check.DRY_ALL_MODES, mode]
        assert row["status"] == "ok" and row["images_per_s"] > 0 and row["s_per_epoch"] > 0, row
    assert by_key[gpu_check.DRY_ALL_MODES, "compile"]["graphs"] > 0  # --compile went through dynamo
    for config in gpu_check.CONFIGS:
        assert f"| {config['id']} | " in dry_run["md"]
    assert dry_run["json"]["sections"]["speed"]["status"] == "ok"


def test_versions_and_the_sections_say_what_ran(dry_run):
    report, md = dry_run["json"], dry_run["md"]
    for key in ("python", "torch", "torch built for CUDA", "gpu", "torchvision", "numpy", "fire"):
        assert key in report["versions"]
    assert "## Versions" in md and f"| torch | {report['versions']['torch']} |" in md
    assert list(report["sections"]) == ["versions", "correctness", "speed", "quality", "anchors"]
    assert report["finished"] and report["dry_run"]
    assert "Dry run" in md


def test_the_cuda_tests_ran_and_skipped_themselves(dry_run):
    tests = dry_run["json"]["tests"]
    assert tests["status"] == "skipped" and "no CUDA GPU" in tests["summary"]
    assert tests["counts"].get("skipped", 0) >= 40 and set(tests["counts"]) == {"skipped"}
    assert "the cuda tests skip themselves" in dry_run["md"]


def test_the_quality_minute_and_the_skip_lines(dry_run):
    out, report, md = dry_run["out"], dry_run["json"], dry_run["md"]
    train = report["quality"]["train"]
    assert train["steps"] > 1 and train["seconds"] > 0 and not train.get("error")
    assert (out / "quality_samples.png").stat().st_size > 0
    metrics = report["quality"]["metrics"]
    assert metrics["samples"]["classifier_fid"] >= 0 and 0 <= metrics["real held-out"]["classes_covered"] <= 10
    if (ANCHORS / "pe_dcgan.py").exists():
        assert [a["status"] for a in report["anchors"]] == ["ok", "ok"], report["anchors"]
        assert "+    for i, data in _gpu_check_timed(enumerate(dataloader, 0)):" in md  # the diff, shown
    else:
        assert "skipped: --anchors DIR (pg_dcgan.py, pe_dcgan.py) was not given" in md


def test_what_comes_back_fits_the_gpu_tool(dry_run):
    files = list(dry_run["out"].iterdir())
    assert {f.name for f in files} <= set(gpu_check.REPORT_FILES) and len(files) <= 8
    assert all(f.is_file() and f.stat().st_size < 16 * 2**20 for f in files)


def test_without_a_gpu_the_real_check_refuses_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert proc.returncode == 1 and "--dry-run" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
