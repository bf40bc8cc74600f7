"""bigan.py on synthetic data: the probes on features whose answer is known, one step, exact
resume, the probe command, the learning-rate schedule, the sampler's encode and reconstruct."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image

import bigan
import sampler
import utils

FAST = [
    "--train-range",
    "train:0:320",
    "--eval-range",
    "test:0:64",
    "--batch-size",
    "16",
    "--log-every",
    "1",
    "--hidden",
    "64",
    "--sample-size",
    "16",
]


def run(tmp_path, mnist_root, *flags, name="run"):
    out = tmp_path / name
    bigan.main(["--data-root", str(mnist_root), "--out", str(out), *FAST, *flags])
    return out


def losses(run_dir):
    with open(run_dir / "losses.csv") as f:
        return [{k: v for k, v in row.items() if k != "images_per_s"} for row in csv.DictReader(f)]


# --------------------------------------------------------------------------- probes: known answers
def clusters(n, dim, spread, seed):
    """n points around 10 random class centres in `dim` dimensions, and their classes."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(10, dim, generator=g) * 5
    labels = torch.randint(10, (n,), generator=g)
    return centres[labels] + spread * torch.randn(n, dim, generator=g), labels


def test_probes_read_separable_features_almost_perfectly():
    train_x, train_y = clusters(600, 20, 0.5, seed=0)
    test_x, test_y = clusters(200, 20, 0.5, seed=0)  # same centres (same seed), fresh draws below
    test_x = test_x + 0.1 * torch.randn(test_x.shape, generator=torch.Generator().manual_seed(1))
    assert bigan.linear_probe(train_x, train_y, test_x, test_y) > 0.98
    assert bigan.nearest_neighbour(train_x, train_y, test_x, test_y) > 0.98


def test_probes_on_pure_noise_are_near_chance():
    g = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(1000, 20, generator=g), torch.randn(1000, 20, generator=g)
    train_y, test_y = torch.randint(10, (1000,), generator=g), torch.randint(10, (1000,), generator=g)
    assert 0.05 < bigan.linear_probe(train_x, train_y, test_x, test_y) < 0.16
    assert 0.05 < bigan.nearest_neighbour(train_x, train_y, test_x, test_y) < 0.16


def test_nearest_neighbour_is_exact_on_a_small_case():
    train_x = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    train_y = torch.tensor([0, 1, 2])
    test_x = torch.tensor([[1.0, 1.0], [9.0, 1.0], [1.0, 8.0], [6.0, 0.0]])
    assert bigan.nearest_neighbour(train_x, train_y, test_x, torch.tensor([0, 1, 2, 1])) == 1.0
    assert bigan.nearest_neighbour(train_x, train_y, test_x, torch.tensor([0, 1, 2, 0])) == 0.75


def test_learning_rate_schedule():
    cfg = {"lr": 2e-4, "epochs": 10, "decay_epochs": None, "lr_decay": "exponential"}  # decays over epochs 5-9
    assert bigan.learning_rate(cfg, 0) == 2e-4 and bigan.learning_rate(cfg, 4.99) == 2e-4
    assert bigan.learning_rate(cfg, 5.5) == pytest.approx(2e-4 * 0.01**0.2)  # the authors': once an epoch
    assert bigan.learning_rate(cfg, 9.99) == pytest.approx(2e-6)  # 1% in the last epoch
    cfg["decay_epochs"] = 2
    assert bigan.learning_rate(cfg, 7.9) == 2e-4 and bigan.learning_rate(cfg, 8) == pytest.approx(2e-4 * 0.1)
    cfg.update(lr_decay="linear", decay_epochs=4)  # step by step to 0 over the last 4 epochs
    assert bigan.learning_rate(cfg, 5.9) == 2e-4 and bigan.learning_rate(cfg, 8) == pytest.approx(1e-4)
    assert bigan.learning_rate(cfg, 10) == 0


def test_encoder_output_stays_in_the_uniform_noise_cube():
    """With z ~ U(-1, 1) E(x) is squashed into [-1, 1] (else D tells a real pair by |E(x)_i| > 1);
    with normal noise it is left unbounded."""
    cfg = {"z_dim": 5, "hidden": 32, "affine": False}
    x = torch.rand(64, 1, 28, 28)
    E = bigan.build_encoder({**cfg, "noise": "uniform"})
    with torch.no_grad():
        E.out.weight.mul_(1000)  # logits far outside [-1, 1]
        assert E(x).abs().max() <= 1 and E(x).abs().max() > 0.99
    E = bigan.build_encoder({**cfg, "noise": "normal"})
    with torch.no_grad():
        E.out.weight.mul_(1000)
        assert E(x).abs().max() > 2


def test_authors_nets_have_no_learnable_scale_shift_or_bias():
    cfg = {"z_dim": 5, "hidden": 32, "noise": "uniform", "affine": False}
    for net in (bigan.build_generator(cfg), bigan.build_encoder(cfg), bigan.build_discriminator(cfg)):
        names = [name for name, _ in net.named_parameters()]
        assert names and all(name.endswith("weight") for name in names)  # no bias anywhere
        assert all(not m.affine for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert any(name.endswith("bias") for name, _ in bigan.build_encoder({**cfg, "affine": True}).named_parameters())
    assert bigan.build_discriminator(cfg).out[-1].weight.abs().sum() == 0  # D starts by saying 1/2


def test_simultaneous_update_takes_both_gradients_at_the_old_weights():
    """update_both: G and E's step is the one computed against D as it was before its own step;
    the alternating update's, through the updated D, differs."""
    cfg = {"z_dim": 5, "hidden": 32, "noise": "uniform", "affine": False, "loss": "non-saturating"}
    cfg |= {"lr": 1e-2, "beta1": 0.5, "beta2": 0.999, "weight_decay": 0.0}
    real, z = torch.rand(16, 1, 28, 28), bigan.sample_noise(cfg, 16, generator=torch.Generator().manual_seed(0))

    def fresh():
        torch.manual_seed(0)
        G, E, D = bigan.build_generator(cfg), bigan.build_encoder(cfg), bigan.build_discriminator(cfg)
        torch.nn.init.normal_(D.out[-1].weight, 0, 0.02)  # a D whose step G and E would feel
        return G, E, D, *bigan.build_optimizers(cfg, G, E, D)

    def after_one_step(update):
        G, E, D, opt_ge, opt_d = fresh()
        bigan.train_step(G, E, D, opt_ge, opt_d, real, z, {**cfg, "update": update})
        return G.state_dict()

    G, E, D, opt_ge, _ = fresh()
    bigan.ge_objective(D(real, E(real)), D(G(z), z), cfg["loss"]).backward()
    opt_ge.step()  # G and E's step against D as it was
    simultaneous, alternating = after_one_step("simultaneous"), after_one_step("alternating")
    assert all(torch.allclose(G.state_dict()[k], simultaneous[k], atol=1e-6) for k in simultaneous)
    assert any(not torch.allclose(alternating[k], simultaneous[k], atol=1e-6) for k in simultaneous)


def test_models_shapes_and_the_joint_discriminator_reads_z():
    cfg = {"z_dim": 7, "hidden": 32, "noise": "normal", "affine": False}
    G, E, D = bigan.build_generator(cfg), bigan.build_encoder(cfg), bigan.build_discriminator(cfg)
    z = bigan.sample_noise(cfg, 5)
    x = G(z)
    assert x.shape == (5, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    features = E.features(x)
    assert features["code"].shape == (5, 7) and features["hidden"].shape == (5, 32)
    assert torch.equal(E(x), features["code"])
    D.eval()
    torch.nn.init.normal_(D.out[-1].weight, 0, 0.02)  # D starts at 0 for every pair: give it an output layer
    assert D(x, z).shape == (5,) and not torch.allclose(D(x, z), D(x, z + 1))  # same images, other codes
    uniform = bigan.sample_noise({**cfg, "noise": "uniform"}, 1000)
    assert uniform.abs().max() <= 1 and uniform.min() < -0.9


# --------------------------------------------------------------------------- training runs
def test_one_step_writes_grids_and_probes(tmp_path, mnist_root, capsys):
    out = run(tmp_path, mnist_root, "--steps", "1")
    assert Image.open(out / "samples" / "epoch_001.png").size == (2 + 8 * 30, 2 + 2 * 30)
    assert Image.open(out / "samples" / "recon_epoch_001.png").size == (2 + 16 * 30, 2 + 8 * 30)  # 64 pairs
    assert Image.open(out / "progress.gif").n_frames == 1  # reconstruction grids are not frames of it
    (row,) = losses(out)
    assert row["step"] == "1" and float(row["lr"]) == pytest.approx(2e-4)
    printed = capsys.readouterr().out
    assert "probes after 1 steps: fitted on mnist train:0:320, scored on mnist test:0:64" in printed
    assert "BiGAN E" in printed and "random E" in printed and "code 1-NN" in printed
    ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt", "bigan")
    assert set(ckpt["models"]) == {"G", "E", "D"} and ckpt["cfg"]["weight_decay"] == 2.5e-5


def test_no_range_flags_use_the_whole_files_of_a_small_data_root(tmp_path, mnist_root, capsys):
    """Unset, --train-range and --eval-range are the whole training and test files, of any size:
    the fixture's 320/64 images, far fewer than MNIST's 60,000/10,000, train with no range flags."""
    out = tmp_path / "run"
    flags = ["--batch-size", "16", "--hidden", "64", "--sample-size", "16", "--steps", "1"]
    bigan.main(["--data-root", str(mnist_root), "--out", str(out), *flags])
    printed = capsys.readouterr().out
    assert "bigan: 320 mnist images (train:0:320)" in printed
    assert "probes after 1 steps: fitted on mnist train:0:320, scored on mnist test:0:64" in printed
    ckpt = out / "checkpoints" / "last.pt"
    cfg = utils.load_checkpoint(ckpt, "bigan")["cfg"]
    assert cfg["train_range"] is None and cfg["eval_range"] is None  # "the whole file", whatever file is there
    assert len(bigan.main(["--eval-probe", "--ckpt", str(ckpt)])) == 8
    assert "scored on mnist test:0:64" in capsys.readouterr().out
    reconstructions = sampler.reconstruct(str(ckpt), n=8, out=str(tmp_path / "r.png"))  # the test file's first 8
    assert Image.open(reconstructions).size == (2 + 16 * 30, 2 + 1 * 30)


def test_resume_matches_uninterrupted_run(tmp_path, mnist_root):
    flags = ["--epochs", "2", "--decay-epochs", "1", "--ema", "0.9"]
    straight = run(tmp_path, mnist_root, *flags, "--steps", "26", name="straight")  # 20 steps an epoch
    split = run(tmp_path, mnist_root, *flags, "--steps", "3", name="split")
    bigan.main(["--resume", str(split / "checkpoints" / "last.pt"), "--steps", "26"])
    assert losses(split) == losses(straight) and len(losses(split)) == 26
    assert float(losses(straight)[-1]["lr"]) < 2e-4  # the decay, resumed, is part of what matched
    a = utils.load_checkpoint(straight / "checkpoints" / "last.pt")["models"]["E"]
    b = utils.load_checkpoint(split / "checkpoints" / "last.pt")["models"]["E"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_eval_probe_command(tmp_path, mnist_root, capsys):
    ckpt = run(tmp_path, mnist_root, "--steps", "1") / "checkpoints" / "last.pt"
    capsys.readouterr()
    results = bigan.main(["--eval-probe", "--ckpt", str(ckpt), "--eval-range", "test:0:32"])
    assert len(results) == 8 and all(0 <= v <= 1 for v in results.values())
    assert "test:0:32" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--decay-epochs", "6", "--epochs", "5"], "--decay-epochs 6 is more than --epochs 5"),
        (["--weight-decay", "-1"], "--weight-decay must be 0 or more"),
        (["--eval-probe"], "--eval-probe needs --ckpt"),
        (["--eval-range", "test:0:99999"], "asks for more than the 64 test images"),
    ],
)
def test_bad_flags_exit_with_one_line(tmp_path, mnist_root, flags, message):
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, mnist_root, *flags, name="x")
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- sampler: encode, reconstruct
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, mnist_root):
    out = tmp_path_factory.mktemp("bigan") / "run"
    bigan.main(["--data-root", str(mnist_root), "--out", str(out), *FAST, "--steps", "1"])
    return str(out / "checkpoints" / "last.pt")


def test_encode_an_npz_passes_labels_through(ckpt, tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28, 1), dtype=np.uint8)
    np.savez(tmp_path / "in.npz", images=images, labels=np.arange(7))
    sampler.encode(ckpt, images=str(tmp_path / "in.npz"), out=str(tmp_path / "f.npz"))
    features = np.load(tmp_path / "f.npz")
    assert features["code"].shape == (7, 50) and features["hidden"].shape == (7, 64)
    assert np.array_equal(features["labels"], np.arange(7)) and len(features["names"]) == 7
    model = sampler.Model(ckpt, device="cpu")
    E = model.module("build_encoder", "E")
    with torch.no_grad():  # the features are E(x) of these very pixels, x scaled to [0, 1]
        expected = E(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255)
    assert np.allclose(features["code"], expected.numpy(), atol=1e-5)


def test_encode_a_folder_of_colour_images_of_another_size(ckpt, tmp_path):
    folder = tmp_path / "imgs" / "sub"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(folder / f"{i}.png")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    sampler.encode(ckpt, images=str(tmp_path / "imgs"), out=str(tmp_path / "f.npz"))
    features = np.load(tmp_path / "f.npz")
    assert features["code"].shape == (3, 50) and list(features["names"]) == ["sub/0.png", "sub/1.png", "sub/2.png"]
    assert "labels" not in features


def test_reconstruct_defaults_to_held_out_images(ckpt, tmp_path, mnist_root, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the checkpoint names the data root it was trained with
    path = sampler.reconstruct(ckpt, n=8, out=str(tmp_path / "r.png"))
    assert Image.open(path).size == (2 + 16 * 30, 2 + 1 * 30)  # 8 pairs in one row


def test_encode_refuses_bad_input_in_one_line(ckpt, tmp_path, mnist_root):
    np.savez(tmp_path / "bad.npz", pixels=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(SystemExit, match="has no `images` array"):
        sampler.encode(ckpt, images=str(tmp_path / "bad.npz"), out=str(tmp_path / "f.npz"))
    with pytest.raises(SystemExit, match="encode needs --images"):
        sampler.encode(ckpt, out=str(tmp_path / "f.npz"))
    with pytest.raises(SystemExit, match="give a name ending in .npz"):
        np.savez(tmp_path / "ok.npz", images=np.zeros((2, 28, 28), np.uint8))
        sampler.encode(ckpt, images=str(tmp_path / "ok.npz"), out=str(tmp_path / "f.csv"))
    import dcgan

    dcgan.main(["--data-root", str(mnist_root), "--out", str(tmp_path / "dc"), "--steps", "1", "--batch-size", "16"])
    with pytest.raises(SystemExit, match="dcgan.py checkpoints have no encoder"):
        sampler.encode(str(tmp_path / "dc" / "checkpoints" / "last.pt"), images=str(tmp_path / "ok.npz"))
