"""The command line as a newcomer meets it: every default in --help, a run folder for --resume, a
resume that has nothing left to do, notes before a slow start, warnings on lines of their own
while the progress bar is drawn, and losses.png that shows what a run logged."""

import argparse
import importlib
import time

import numpy as np
import pytest
import torch
from PIL import Image

import dcgan
import gan_mlp
import utils

SCRIPTS = ["gan_mlp", "gan_maxout", "dcgan", "wgan_gp", "infogan", "bigan", "cyclegan"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_every_default(script):
    parser = importlib.import_module(script).build_parser()
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert f"(default: {' '.join(str(action.default).split())})" in text, action.dest


def run(tmp_path, mnist_root, *flags):
    out = tmp_path / "run"
    dcgan.main(["--data-root", str(mnist_root), "--out", str(out), "--batch-size", "16", "--sample-size", "4", *flags])
    return out


def test_resume_takes_a_run_folder_and_says_which_checkpoint_and_step_first(tmp_path, mnist_root, capsys):
    out = run(tmp_path, mnist_root, "--steps", "1")
    capsys.readouterr()
    for folder, steps in ((out, "2"), (out / "checkpoints", "3")):
        dcgan.main(["--resume", str(folder), "--steps", steps])
        first_line = capsys.readouterr().out.splitlines()[0]
        assert first_line == f"resuming {out / 'checkpoints' / 'last.pt'}: from step {int(steps) - 1}, epoch 1"
        assert utils.load_checkpoint(out / "checkpoints" / "last.pt")["step"] == int(steps)
    with pytest.raises(SystemExit, match="is a folder with no last.pt or checkpoints/last.pt"):
        dcgan.main(["--resume", str(tmp_path)])


def test_resume_to_a_length_already_reached_says_where_the_run_is(tmp_path, mnist_root):
    out = run(tmp_path, mnist_root, "--steps", "2")
    with pytest.raises(SystemExit) as stop:
        dcgan.main(["--resume", str(out / "checkpoints" / "last.pt"), "--steps", "2"])
    said = str(stop.value)
    assert "last.pt is at step 2, as far as --epochs 25 and --steps 2 go" in said and "larger" in said
    assert "\n" not in said


def test_compile_says_at_once_that_the_first_steps_are_slow(capsys):
    cfg, _ = utils.parse_config(dcgan.build_parser, ["--compile"], "dcgan", dcgan.RESUMABLE)
    assert cfg["compile"] == "default" and "the first steps compile the networks" in capsys.readouterr().out


def new_log(tmp_path, **options):
    return utils.TrainingLog(tmp_path, ["loss"], {"log_every": 1000}, images_per_step=1, step=0, status="", **options)


def test_bar_starts_with_the_first_step_and_warnings_take_lines_of_their_own(tmp_path, capsys):
    log = new_log(tmp_path, total_steps=10)
    print("a script's first line")
    assert capsys.readouterr().err == ""  # no bar yet: the line above is not glued to one
    log.add(torch.ones(1), 1, 0)
    time.sleep(0.15)  # past tqdm's shortest redraw interval
    log.add(torch.ones(1), 2, 0)
    utils.warn("skipping unreadable image x.png")
    err = capsys.readouterr().err
    assert "2/10" in err and "\rwarning: skipping unreadable image x.png\n" in err  # the bar cleared first
    log.close()


def test_a_cpu_run_that_would_take_hours_says_so_with_the_recipe_after_the_warm_up(tmp_path, capsys):
    log = new_log(tmp_path, total_steps=100_000, cpu_recipe="docs/x.md measured `python x.py --small`")
    log.add(torch.ones(1), 1, 0)  # the first step, slow as first steps are: not counted
    log.add(torch.ones(1), 2, 0)  # too soon to judge the speed
    log.warm = (log.warm[0], log.warm[1] - 4)  # as if the steps after the first had taken 4 s
    log.add(torch.ones(1), 3, 0)
    log.warm = (log.warm[0], log.warm[1] - 4)
    log.add(torch.ones(1), 4, 0)  # said once only
    err = capsys.readouterr().err
    assert err.count("warning: on this CPU the run's 100,000 steps take about 56 hours") == 1  # 2 steps in 4 s
    assert "at the speed of its steps so far; for a CPU, docs/x.md measured `python x.py --small`" in err
    log.close()


def test_one_logged_point_is_drawn_as_a_marker(tmp_path):
    utils.plot_panels(tmp_path / "one.png", [1], {"losses": {"d_loss": [0.7]}})
    pixels = np.asarray(Image.open(tmp_path / "one.png").convert("RGB")).reshape(-1, 3).astype(int)
    blue = np.abs(pixels - [31, 119, 180]).sum(1) < 40  # matplotlib's first colour
    assert blue.sum() > 20  # a visible dot, not empty axes


def test_ctrl_c_before_the_first_epoch_ends_still_draws_losses_png(tmp_path, mnist_root, monkeypatch):
    real_step, calls = dcgan.train_step, []

    def interrupted_on_third_step(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(dcgan, "train_step", interrupted_on_third_step)
    with pytest.raises(SystemExit):
        run(tmp_path, mnist_root, "--steps", "10", "--log-every", "1")
    assert (tmp_path / "run" / "losses.png").stat().st_size > 0  # drawn at the stop, not only at epoch ends


def test_gan_mlp_1d_plot_shows_all_of_a_collapsed_g_and_its_legend_covers_nothing(tmp_path, monkeypatch):
    import matplotlib.figure

    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: figures.append(fig))
    real = gan_mlp.sample_mixture(4000, torch.Generator().manual_seed(0))
    collapsed = torch.full((4000, 1), 0.74)  # G on one point: a peak far above the data's
    D = torch.nn.Linear(1, 1)
    gan_mlp.plot_1d(real, collapsed, D, tmp_path / "x.png", "collapsed")
    (fig,) = figures
    ax = fig.axes[0]
    assert ax.get_ylim()[1] >= max(patch.get_height() for patch in ax.patches)  # no bar is clipped
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()  # the figure was closed after its (stubbed) save
    legend = fig.legends[0].get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))  # beside the plot, over no curve
