"""sampler.py's command line, run in-process through sampler.main(argv): every flag is checked
against the command before anything runs, --help is short, an --out of the wrong kind and a
--ckpt that is a folder or not a checkpoint end in one line, and a refused command writes nothing."""

import re

import pytest
from PIL import Image

import dcgan
import sampler


@pytest.fixture(scope="module")
def run(tmp_path_factory, mnist_root):
    out = tmp_path_factory.mktemp("run") / "dcgan"
    tiny = ["--image-size", "16", "--g-width", "4", "--d-width", "4", "--z-dim", "8", "--sample-size", "4"]  # 65 kB
    dcgan.main(["--data-root", str(mnist_root), "--out", str(out), "--steps", "1", "--batch-size", "16", *tiny])
    return out


@pytest.fixture(scope="module")
def ckpt(run):
    return str(run / "checkpoints" / "last.pt")


def tree(path):
    return {p: (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))}


def fails_in_one_line(argv, *needles):
    """main(argv) ends in one line on stderr (the SystemExit message) naming each needle."""
    with pytest.raises(SystemExit) as exc:
        sampler.main(argv)
    message = exc.value.code
    assert isinstance(message, str) and "\n" not in message and "Traceback" not in message, message
    for needle in needles:
        assert needle in message, message
    return message


# --------------------------------------------------------------------------- --help
def test_help_lists_commands_in_one_line_each(capsys):
    for argv in (["--help"], ["-h"], []):
        sampler.main(argv)
        text = capsys.readouterr().out
        assert "sampler.py --ckpt PATH" in text  # the bare form
        for name, command in sampler.COMMANDS.items():
            (line,) = [line for line in text.splitlines() if line.split()[:1] == [name]]
            assert command.__doc__.splitlines()[0] in line


def test_command_help_lists_flags_with_defaults(capsys):
    sampler.main(["export", "--help"])
    text = capsys.readouterr().out
    assert re.search(r"--batch-size +default 500", text) and re.search(r"--ckpt +required", text)
    assert re.search(r"--cat +optional", text) and "Write n samples for FID tools" in text
    sampler.main(["translate", "--ckpt", "x", "-h"])
    assert re.search(r"--cycle / --no-cycle +default False", capsys.readouterr().out)


# --------------------------------------------------------------------------- flags
@pytest.mark.parametrize(
    "argv, needles",
    [
        (["sample", "--nn", "5"], ["sample has no flag --nn", "did you mean --n?"]),
        (["--nn", "5"], ["--nn", "--n?"]),  # the bare form is `sample`
        (["export", "--batch_sise=3"], ["--batch_sise", "did you mean --batch-size?"]),
        (["sample", "--frames", "3"], ["sample has no flag --frames", "its flags: --ckpt, --n, --nrow"]),
        (["sample", "--n", "4", "--n", "5"], ["--n is given twice"]),
        (["sample", "--n"], ["--n needs a value"]),
        (["sample", "--n", "4", "8"], ["unexpected '8'"]),
        (["translate", "--cycle", "maybe"], ["--cycle is a switch", "--no-cycle"]),
    ],
)
def test_a_bad_flag_ends_in_one_line_and_writes_nothing(ckpt, tmp_path, argv, needles):
    out = tmp_path / "out.png"
    fails_in_one_line([*argv, "--ckpt", ckpt, "--out", str(out)], *needles)
    assert not list(tmp_path.iterdir())


def test_missing_checkpoint_and_unknown_command(tmp_path):
    fails_in_one_line(["sample", "--n", "4"], "sample needs --ckpt")
    fails_in_one_line(["smaple", "--ckpt", "x"], "unknown command 'smaple'", "did you mean sample?")


def test_flag_forms_fire_accepts():
    parse = sampler.parse_flags
    assert parse("export", ["P", "--batch_size", "3", "--n=4", "--seed", "-1"]) == [
        "export",
        "--batch_size=3",
        "--n=4",
        "--seed=-1",
        "--ckpt=P",
    ]
    assert parse("translate", ["--ckpt", "P", "--cycle"])[-1] == "--cycle=True"
    assert parse("translate", ["--cycle", "--ckpt", "P"])[1] == "--cycle=True"
    for off in (["--no-cycle"], ["--nocycle"], ["--cycle", "false"], ["--cycle=False"]):
        assert "--cycle=False" in parse("translate", ["--ckpt", "P", *off])


def test_flags_reach_the_command(ckpt, tmp_path, capsys):
    sampler.main(["sample", ckpt, "--n=3", "--nrow", "3", "--out", str(tmp_path / "g.png"), "--device", "cpu"])
    assert capsys.readouterr().out.strip() == str(tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").size == (2 + 3 * 18, 2 + 18)


# --------------------------------------------------------------------------- --out of the wrong kind
@pytest.mark.parametrize(
    "argv, out, needles",
    [
        (["sample"], "grid.npz", ["give a name ending in .png, .jpg"]),
        (["sample"], "grids/", ["give a name ending in .png"]),
        (["interpolate"], "walk", ["give a name ending in .png"]),
        (["gif"], "walk.png", ["give a name ending in .gif"]),
        (["export"], "samples.png", ["is named like a file; this command writes a folder"]),
        (["export"], "kept.txt", ["kept.txt is a file; this command writes a folder"]),
        (["export"], "folder.npz", ["folder.npz is a folder; give a file name"]),
        (["score", "--ckpt", "CKPTS"], "scores.csv", ["is named like a file; this command writes a folder"]),
        (["score"], "scores/", ["one checkpoint's are printed"]),
    ],
)
def test_out_of_the_wrong_kind_ends_in_one_line_and_writes_nothing(run, ckpt, tmp_path, argv, out, needles):
    (tmp_path / "kept.txt").write_text("keep me")
    (tmp_path / "folder.npz").mkdir()
    before, before_run = tree(tmp_path), tree(run)
    argv = [a.replace("CKPTS", str(run / "checkpoints")) for a in argv]
    fails_in_one_line([*argv, *(["--ckpt", ckpt] * ("--ckpt" not in argv)), "--out", str(tmp_path / out)], *needles)
    assert tree(tmp_path) == before and tree(run) == before_run


def test_out_path_kinds(tmp_path):
    (tmp_path / "file").write_text("x")
    assert sampler.out_path(str(tmp_path / "a" / "g.png"), "samples.png", (".png",)) == tmp_path / "a" / "g.png"
    assert (tmp_path / "a").is_dir()
    assert sampler.out_path(str(tmp_path / "v1.0") + "/", "export") == tmp_path / "v1.0"  # a folder with a dot
    with pytest.raises(SystemExit, match="file is a file; this command writes a folder"):
        sampler.out_path(str(tmp_path / "file"), "export")
    with pytest.raises(SystemExit, match="file/sub/g.png: .*file is a file, not a folder"):
        sampler.out_path(str(tmp_path / "file" / "sub" / "g.png"), "samples.png", (".png",))


# --------------------------------------------------------------------------- --ckpt
def test_a_run_folder_or_its_checkpoints_folder_means_last_pt(run, tmp_path, capsys):
    for i, folder in enumerate([run, run / "checkpoints"]):
        sampler.main(["sample", "--ckpt", str(folder), "--n", "2", "--out", str(tmp_path / f"{i}.png")])
        captured = capsys.readouterr()
        (said,) = captured.err.strip().splitlines()
        assert said == f"--ckpt {folder} is a folder: using its last checkpoint, {run / 'checkpoints' / 'last.pt'}"
        assert captured.out.strip() == str(tmp_path / f"{i}.png")
    fails_in_one_line(["sample", "--ckpt", str(tmp_path)], "is a folder with no last.pt or checkpoints/last.pt")


def test_a_file_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.pt").write_text("just some text")
    (tmp_path / "zip.pt").write_bytes(b"PK\x03\x04 truncated zip")
    before = tree(tmp_path)
    for name in ("notes.pt", "zip.pt"):
        message = fails_in_one_line(["sample", "--ckpt", str(tmp_path / name)], "is not a", "checkpoint")
        assert not re.search(r"[A-Z]\w*(Error|Exception)\b", message), message  # no Python exception's name
    assert tree(tmp_path) == before
