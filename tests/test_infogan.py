"""infogan.py on synthetic data: the grids' layout, the information loss and the matched accuracy
against known answers, one step, exact resume, the accuracy command, the sampler, clean errors."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image

import infogan
import sampler
import utils

FAST = ["--train-range", "train:0:320", "--eval-range", "test:0:64", "--batch-size", "16", "--log-every", "1"]
CFG = {
    "noise_dim": 5,
    "n_cat": 10,
    "n_cont": 2,
    "noise": "uniform",
    "cat_weight": 1.0,
    "cont_weight": 1.0,
    "cont_loss": "gaussian",
}


def run(tmp_path, mnist_root, *flags, name="run"):
    out = tmp_path / name
    infogan.main(["--data-root", str(mnist_root), "--out", str(out), *FAST, *flags])
    return out


def losses(run_dir):
    with open(run_dir / "losses.csv") as f:
        return [{k: v for k, v in row.items() if k != "images_per_s"} for row in csv.DictReader(f)]


# --------------------------------------------------------------------------- known answers
def test_matched_accuracy_finds_the_permutation():
    labels = torch.arange(10).repeat(5)
    perm = torch.tensor([3, 7, 0, 9, 1, 8, 2, 6, 4, 5])  # category perm[k] was used for class k
    predicted = perm[labels]
    accuracy, mapping = infogan.matched_accuracy(predicted, labels, 10)
    assert accuracy == 1.0 and all(mapping[int(perm[k])] == k for k in range(10))
    predicted[:7] = (predicted[:7] + 1) % 10  # 7 of 50 now wrong under that same best map
    assert infogan.matched_accuracy(predicted, labels, 10)[0] == pytest.approx(43 / 50)


def test_matched_accuracy_with_fewer_categories_than_classes():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    predicted = torch.tensor([1, 1, 0, 0, 0, 1])  # 2 categories: at best 4 of 6 right
    assert infogan.matched_accuracy(predicted, labels, 2, 3)[0] == pytest.approx(4 / 6)


def test_info_loss_closed_forms():
    cat, cont = torch.tensor([2, 0]), torch.tensor([[0.5, -1.0], [0.0, 1.0]])
    sure = torch.full((2, 10), -30.0)
    sure[0, 2] = sure[1, 0] = 30.0
    mean = torch.zeros(2, 2)
    total, cat_loss, cont_loss = infogan.info_loss(sure, mean, cat, cont, CFG)
    assert cat_loss < 1e-6  # Q is sure and right
    assert cont_loss.item() == pytest.approx(0.5 * (0.25 + 1.0 + 0.0 + 1.0) / 2)  # 0.5 (c - mean)^2, summed, averaged
    assert total.item() == pytest.approx(cat_loss.item() + cont_loss.item())
    mse = infogan.info_loss(sure, mean, cat, cont, {**CFG, "cont_loss": "mse"})[2]
    assert mse.item() == pytest.approx((0.25 + 1.0 + 0.0 + 1.0) / 4)


def test_category_grid_and_traversals_hold_one_category_per_row():
    fixed_noise = torch.rand(10, 5) * 2 - 1
    z, cols = infogan.grid_input(CFG, fixed_noise)
    assert cols == 10 and z.shape == (100, 5 + 10 + 2)
    rows = z.view(10, 10, -1)
    assert torch.equal(rows[..., 5:15].argmax(-1), torch.arange(10)[:, None].expand(10, 10))  # row k: category k
    assert torch.equal(rows[0, :, :5], fixed_noise) and (rows[..., 15:] == 0).all()
    z, cols = infogan.grid_input(CFG, fixed_noise, code=1)
    rows = z.view(10, cols, -1)
    assert torch.equal(rows[..., 5:15].argmax(-1), torch.arange(10)[:, None].expand(10, cols))
    assert torch.allclose(rows[3, :, 16], torch.linspace(-2, 2, cols)) and (rows[..., 15] == 0).all()
    assert (rows[..., :5] == fixed_noise[0]).all()  # everything else fixed


def test_sample_noise_draws_codes_from_their_priors():
    z = infogan.sample_noise(CFG, 2000, generator=torch.Generator().manual_seed(0))
    one_hot = z[:, 5:15]
    assert torch.equal(one_hot.sum(1), torch.ones(2000)) and one_hot.mean(0).min() > 0.07
    assert z[:, :5].abs().max() <= 1 and z[:, 15:].abs().max() <= 1


# --------------------------------------------------------------------------- training runs
def test_one_step_writes_grids_and_traversals(tmp_path, mnist_root, capsys):
    out = run(tmp_path, mnist_root, "--steps", "1")
    for name in ("epoch_001.png", "traverse_c1_epoch_001.png", "traverse_c2_epoch_001.png"):
        assert Image.open(out / "samples" / name).size == (2 + 10 * 30, 2 + 10 * 30)  # 10 categories x 10
    assert Image.open(out / "progress.gif").n_frames == 1  # the traversals are not frames of it
    (row,) = losses(out)
    assert row["step"] == "1" and float(row["cat_loss"]) > 0
    assert "categorical accuracy of Q on mnist test:0:64 after 1 steps" in capsys.readouterr().out
    ckpt = utils.load_checkpoint(out / "checkpoints" / "last.pt", "infogan")
    assert ckpt["fixed_noise"].shape == (10, 62) and ckpt["cfg"]["lr_g"] == 1e-3 and ckpt["cfg"]["lr_d"] == 2e-4


def test_no_range_flags_use_the_whole_files_of_a_small_data_root(tmp_path, mnist_root, capsys):
    """Unset, --train-range and --eval-range are the whole training and test files, of any size:
    the fixture's 320/64 images, far fewer than MNIST's 60,000/10,000, train with no range flags."""
    out = tmp_path / "run"
    infogan.main(["--data-root", str(mnist_root), "--out", str(out), "--batch-size", "16", "--steps", "1"])
    printed = capsys.readouterr().out
    assert "infogan: 320 mnist images (train:0:320)" in printed
    assert "categorical accuracy of Q on mnist test:0:64 after 1 steps" in printed
    ckpt = out / "checkpoints" / "last.pt"
    cfg = utils.load_checkpoint(ckpt, "infogan")["cfg"]
    assert cfg["train_range"] is None and cfg["eval_range"] is None  # "the whole file", whatever file is there
    assert 0 <= infogan.main(["--eval-accuracy", "--ckpt", str(ckpt)]) <= 1
    assert "on mnist test:0:64" in capsys.readouterr().out


def test_resume_matches_uninterrupted_run(tmp_path, mnist_root):
    straight = run(tmp_path, mnist_root, "--steps", "3", "--supervised", "20", name="straight")
    split = run(tmp_path, mnist_root, "--steps", "1", "--supervised", "20", name="split")
    infogan.main(["--resume", str(split / "checkpoints" / "last.pt"), "--steps", "3"])
    assert losses(split) == losses(straight) and len(losses(split)) == 3


def test_eval_accuracy_command(tmp_path, mnist_root, capsys):
    ckpt = run(tmp_path, mnist_root, "--steps", "1") / "checkpoints" / "last.pt"
    capsys.readouterr()
    accuracy = infogan.main(["--eval-accuracy", "--ckpt", str(ckpt), "--eval-range", "test:0:32"])
    assert 0 <= accuracy <= 1 and "test:0:32" in capsys.readouterr().out


def test_sampler_on_an_infogan_checkpoint(tmp_path, mnist_root):
    ckpt = str(run(tmp_path, mnist_root, "--steps", "1") / "checkpoints" / "last.pt")
    gen = sampler.Generator(ckpt, device="cpu")
    assert gen.script is infogan and gen.value_range == (0.0, 1.0)
    assert Image.open(sampler.sample(ckpt, n=6, nrow=3, out=str(tmp_path / "s.png"))).size == (2 + 3 * 30, 2 + 2 * 30)
    sampler.export(ckpt, n=4, out=str(tmp_path / "e.npz"))
    assert np.load(tmp_path / "e.npz")["images"].shape == (4, 28, 28, 1)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--n-cont", "-1"], "--n-cont must be 0 or more"),
        (["--supervised", "1000"], "more than the 320 training images"),
        (["--eval-accuracy"], "--eval-accuracy needs --ckpt"),
        (["--eval-range", "test:0:99999"], "asks for more than the 64 test images"),
        (["--beta1", "1"], "--beta1 must be in [0, 1)"),
    ],
)
def test_bad_flags_exit_with_one_line(tmp_path, mnist_root, flags, message):
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, mnist_root, *flags, name="x")
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- sampler: traverse, codes
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, mnist_root):
    out = tmp_path_factory.mktemp("infogan") / "run"
    infogan.main(["--data-root", str(mnist_root), "--out", str(out), *FAST, "--steps", "1"])
    return str(out / "checkpoints" / "last.pt")


def test_sampler_traverse_writes_one_grid_per_code(ckpt, tmp_path):
    paths = sampler.traverse(ckpt, out=str(tmp_path / "all")).split()
    assert [p.rsplit("/", 1)[1] for p in paths] == ["traverse_c1.png", "traverse_c2.png"]
    assert Image.open(paths[0]).size == (2 + 10 * 30, 2 + 10 * 30)  # 10 categories x 10 steps
    (one,) = sampler.traverse(ckpt, code=2, steps=5, range=1.5, out=str(tmp_path / "one")).split()
    assert one.endswith("traverse_c2.png") and Image.open(one).size == (2 + 5 * 30, 2 + 10 * 30)


def test_export_stores_the_codes_that_made_each_image(ckpt, tmp_path):
    sampler.export(ckpt, n=6, seed=4, out=str(tmp_path / "a.npz"))
    sampler.export(ckpt, n=6, seed=4, out=str(tmp_path / "b.npz"))
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert all(np.array_equal(a[k], b[k]) for k in ("images", "cat", "cont"))  # same seed, same codes, same pixels
    assert a["cat"].shape == (6,) and a["cont"].shape == (6, 2)
    gen = sampler.Generator(ckpt, device="cpu")
    noise = infogan.sample_latent(gen.cfg, 6, generator=torch.Generator().manual_seed(4))[0]
    remade = gen(infogan.generator_input(gen.cfg, noise, torch.from_numpy(a["cat"]), torch.from_numpy(a["cont"])))
    assert np.array_equal(a["images"], utils.to_uint8(remade, gen.value_range))  # the stored codes made these images
    sampler.export(ckpt, n=5, cat=3, out=str(tmp_path / "three.npz"))
    assert (np.load(tmp_path / "three.npz")["cat"] == 3).all()


def test_sampler_refuses_unknown_codes_and_models_without_codes(ckpt, tmp_path, mnist_root):
    with pytest.raises(SystemExit, match="--cat 12 is not a category of this model: it has categories 0 to 9"):
        sampler.export(ckpt, n=2, cat=12, out=str(tmp_path / "x.npz"))
    with pytest.raises(SystemExit, match="--code 3 is not a continuous code"):
        sampler.traverse(ckpt, code=3, out=str(tmp_path / "t"))
    import dcgan

    dcgan.main(["--data-root", str(mnist_root), "--out", str(tmp_path / "dc"), "--steps", "1", "--batch-size", "16"])
    dc = str(tmp_path / "dc" / "checkpoints" / "last.pt")
    with pytest.raises(SystemExit, match="dcgan.py checkpoints have no latent codes to traverse"):
        sampler.traverse(dc)
    with pytest.raises(SystemExit, match="dcgan.py checkpoints have no categorical code"):
        sampler.export(dc, n=2, cat=1, out=str(tmp_path / "y.npz"))


def test_q_accuracy_depends_on_d_weights_not_on_its_running_statistics(tmp_path, mnist_root):
    """Q reads real images with batch-norm statistics of real images, gathered afresh: overwriting
    the statistics D kept in training (mostly of G's images) changes nothing."""
    ckpt = utils.load_checkpoint(run(tmp_path, mnist_root, "--steps", "2") / "checkpoints" / "last.pt")
    cfg = ckpt["cfg"]
    D = infogan.build_discriminator(cfg)
    D.load_state_dict(ckpt["models"]["D"])
    images, labels = utils.load_mnist_range(cfg, "eval_range", "cpu")
    train = utils.load_mnist_range(cfg, "train_range", "cpu")[0]
    before = infogan.categorical_accuracy(D, cfg, images, labels, train)
    for layer in D.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.running_mean.normal_(0, 5), layer.running_var.uniform_(10, 20)
    assert infogan.categorical_accuracy(D, cfg, images, labels, train) == before
    with torch.no_grad():
        D.eval()
        kept = D(images.float() / 255)[1]
        D.train()
        fresh = infogan.with_real_statistics(D, train)(images.float() / 255)[1]
    assert not torch.allclose(kept, fresh)  # the kept statistics would have given other predictions
