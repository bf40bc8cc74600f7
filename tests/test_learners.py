"""Where learners train: --tensorboard's event files read back by TensorBoard's own reader (a resumed
run continuing the same curves without duplicate points), and --deterministic on every script."""

import pytest
from test_bad_input import ALL_SCRIPTS, SCRIPTS

import dcgan


def events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_has_every_logged_column_the_grids_and_the_config_and_resumes_without_duplicates(
    tmp_path, mnist_root
):
    out = tmp_path / "run"
    flags = ["--data-root", str(mnist_root), "--batch-size", "16", "--log-every", "1", "--sample-size", "16"]
    dcgan.main([*flags, "--out", str(out), "--steps", "2", "--tensorboard"])
    dcgan.main(["--resume", str(out / "checkpoints" / "last.pt"), "--steps", "4"])  # keeps --tensorboard
    accumulator = events(out)
    tags = accumulator.Tags()
    assert set(tags["scalars"]) == {"d_loss", "g_loss", "d_real", "d_fake", "images_per_s"}  # losses.csv's columns
    for tag in tags["scalars"]:
        assert [e.step for e in accumulator.Scalars(tag)] == [1, 2, 3, 4]  # one point a logged step, no duplicate
    with open(out / "losses.csv") as f:
        last = f.read().splitlines()[-1].split(",")
    assert accumulator.Scalars("d_loss")[-1].value == pytest.approx(float(last[2]), rel=1e-4)
    assert [e.step for e in accumulator.Images("samples")] == [2, 4]  # each epoch's grid (each run's last, here)
    config = accumulator.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "z_dim: 100" in config and "tensorboard: True" in config


@ALL_SCRIPTS
def test_every_script_has_deterministic_and_tensorboard(script, capsys):
    with pytest.raises(SystemExit):
        SCRIPTS[script][0](["--help"])
    text = capsys.readouterr().out
    assert "--deterministic" in text and "--tensorboard" in text and "--amp [{bf16,fp16}]" in text
