"""sampler.py score: the metrics on cases with known answers, the classifier on learnable
synthetic digits (high IS on real held-out images, IS 1 and a large FID for a constant
generator), real images scored against themselves (FID 0), a folder of checkpoints giving one
CSV row per checkpoint, the Inception space's code on random Inception weights (no download),
and the one-line refusals (offline without weights, foreign weights, impossible requests)."""

import csv

import numpy as np
import pytest
import torch
from conftest import write_idx

import dcgan
import sampler
import scores
import utils


def class_digits(n, seed):
    """28x28 images whose class decides where a bright blob sits: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.zeros((n, 28, 28), np.float32)
    for i, k in enumerate(labels):
        cy, cx = 6 + 16 * (k // 5), 4 + 5 * (k % 5)
        images[i] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8) + 0.1 * rng.random((28, 28))
    return (np.clip(images, 0, 1) * 255).astype(np.uint8), labels.astype(np.uint8)


def data_root(root, n_train, n_test):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images, labels = class_digits(n, seed=len(split))
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="module")
def learnable_root(tmp_path_factory):
    return data_root(tmp_path_factory.mktemp("learnable"), 2400, 200)


# --------------------------------------------------------------------------- known answers
def test_inception_score_known_answers():
    assert scores.inception_score(torch.eye(10).repeat(3, 1).double()) == pytest.approx(10)  # sure, all classes
    assert scores.inception_score(torch.eye(10)[[3] * 30].double()) == pytest.approx(1)  # sure, one class
    assert scores.inception_score(torch.full((30, 10), 0.1).double()) == pytest.approx(1)  # unsure


def test_frechet_distance_known_answers():
    a = {"mu": torch.zeros(3, dtype=torch.float64), "sigma": torch.diag(torch.tensor([1.0, 4.0, 9.0])).double()}
    assert scores.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    shifted = {"mu": torch.tensor([1.0, 2.0, 0.0]).double(), "sigma": a["sigma"]}
    assert scores.frechet_distance(a, shifted) == pytest.approx(5)  # ||mu_a - mu_b||^2
    other = {"mu": a["mu"], "sigma": torch.diag(torch.tensor([4.0, 1.0, 9.0])).double()}
    assert scores.frechet_distance(a, other) == pytest.approx((1 - 2) ** 2 + (2 - 1) ** 2)  # sum (sqrt a - sqrt b)^2


def test_class_histogram():
    probs = torch.eye(10)[[0, 0, 1, 9]].double()
    assert scores.class_histogram(probs).tolist() == [0.5, 0.25] + [0.0] * 7 + [0.25]


# --------------------------------------------------------------------------- the classifier space
def test_classifier_is_trained_once_and_reads_real_digits(learnable_root, capsys):
    classifier, accuracy = scores.score_classifier("mnist", learnable_root, "cpu")
    assert accuracy > 0.9 and "training the mnist score classifier" in capsys.readouterr().err
    assert (learnable_root / "scores" / "mnist_classifier.pt").exists()
    again, same = scores.score_classifier("mnist", learnable_root, "cpu")
    assert same == accuracy and capsys.readouterr().err == ""  # cached: not trained again
    held_out = utils.load_mnist_family("mnist", learnable_root, train=False)[0].unsqueeze(1).float() / 255
    probs, features = scores.classifier_outputs(classifier, held_out)
    assert scores.inception_score(probs) > 5 and features.shape == (200, 128)
    constant = held_out[:1].expand(200, -1, -1, -1)
    probs_c, features_c = scores.classifier_outputs(classifier, constant)
    assert scores.inception_score(probs_c) == pytest.approx(1, abs=1e-6)
    train = utils.load_mnist_family("mnist", learnable_root, train=True)[0].unsqueeze(1).float() / 255
    real = scores.feature_statistics(scores.classifier_outputs(classifier, train)[1])
    near = scores.frechet_distance(scores.feature_statistics(features), real)
    far = scores.frechet_distance(scores.feature_statistics(features_c + 1e-3 * torch.randn_like(features_c)), real)
    assert far > 10 * near


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    root = data_root(tmp_path_factory.mktemp("small"), 300, 50)
    out = tmp_path_factory.mktemp("score") / "dcgan"
    dcgan.main(
        [
            "--data-root",
            str(root),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--batch-size",
            "100",
            "--save-every",
            "1",
            "--sample-size",
            "4",
        ]
    )
    return out


def test_score_one_checkpoint(dcgan_run, capsys):
    sampler.score(str(dcgan_run / "checkpoints" / "last.pt"), n=300, device="cpu")
    printed = capsys.readouterr().out
    assert "score classifier" in printed and "classifier IS" in printed and "classifier FID" in printed
    assert (
        "classes covered" in printed
        and (
            "300 samples of G_ema, the average of G vs mnist train[250:] (50 images, the training images the score "
            "classifier never learned from)"
        )
        in printed
    )  # the last 1/6
    result = scores.score_one(
        str(dcgan_run / "checkpoints" / "last.pt"), n=300, batch_size=100, device="cpu", quiet=True
    )
    assert 1 <= result["classifier_is"] <= 10 and result["classifier_fid"] > 0 and 0 <= result["classes_covered"] <= 10


def test_score_a_folder_of_checkpoints(dcgan_run, tmp_path):
    message = sampler.score(str(dcgan_run / "checkpoints"), n=200, out=str(tmp_path), device="cpu")
    with open(tmp_path / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["checkpoint"] for r in rows] == ["epoch_001.pt", "epoch_002.pt", "last.pt"]
    assert [int(r["step"]) for r in rows] == [3, 6, 6] and (tmp_path / "scores.png").exists()
    assert "lowest classifier_fid" in message and "real_classifier_is" in rows[0]


def test_score_refuses_what_it_cannot_measure(tmp_path, image_folder):
    dcgan.main(
        [
            "--dataset",
            "folder",
            "--image-folder",
            str(image_folder),
            "--image-size",
            "16",
            "--out",
            str(tmp_path / "rgb"),
            "--steps",
            "1",
            "--batch-size",
            "8",
            "--workers",
            "0",
            "--sample-size",
            "4",
        ]
    )
    rgb = str(tmp_path / "rgb" / "checkpoints" / "last.pt")
    with pytest.raises(SystemExit, match="covers the 28x28 grey data sets .* use --features inception"):
        sampler.score(rgb, n=10, features="classifier")
    with pytest.raises(SystemExit, match="--features must be classifier or inception"):
        sampler.score(rgb, n=10, features="vgg")
    with pytest.raises(SystemExit, match="a data range picks images of mnist, fashion-mnist or cifar10"):
        scores._score_images(sampler.Generator(rgb, "cpu"), "test:0:10", "--real")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no checkpoints"):
        sampler.score(str(tmp_path / "empty"))


def test_real_images_scored_against_themselves(dcgan_run, capsys):
    ckpt = str(dcgan_run / "checkpoints" / "last.pt")
    result = scores.score_one(ckpt, images="train:250:300", device="cpu", quiet=True)  # the reference itself
    assert result["classifier_fid"] == pytest.approx(0, abs=1e-3) and result["class_kl"] == pytest.approx(0, abs=1e-9)
    assert result["classifier_is"] == pytest.approx(result["real_classifier_is"])
    held_out = scores.score_one(ckpt, images="test:0:50", real="train:0:300", device="cpu", quiet=True)
    assert held_out["classifier_fid"] > result["classifier_fid"] + 1e-3
    with pytest.raises(SystemExit, match="--real test:0:999 asks for more than the 50 test images"):
        sampler.score(ckpt, n=10, real="test:0:999")


# --------------------------------------------------------------------------- the Inception space
@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """torch-fidelity's Inception-v3, randomly initialised (He init keeps activations alive
    through its depth) and saved as a weights file: the real code path, no download."""
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as fe

    torch.manual_seed(0)
    with (
        mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None),
        mock.patch.object(fe, "load_state_dict_from_url", lambda *args, **kwargs: None),
    ):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
    for module in net.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(module.weight)
    path = tmp_path_factory.mktemp("inception") / "random_inception.pth"
    torch.save(net.state_dict(), path)
    return str(path)


def test_inception_space_on_random_weights(dcgan_run, random_inception, tmp_path, capsys):
    ckpt = str(dcgan_run / "checkpoints" / "last.pt")
    sampler.export(ckpt, n=12, out=str(tmp_path / "samples.npz"))
    same = scores.score_one(
        ckpt,
        features="inception",
        images=str(tmp_path / "samples.npz"),
        real=str(tmp_path / "samples.npz"),
        inception_weights=random_inception,
        device="cpu",
    )
    printed = capsys.readouterr().out
    assert "features: Inception-v3 (torch-fidelity" in printed and "Inception Score" in printed and "KID" in printed
    assert same["inception_fid"] == pytest.approx(0, abs=1e-3) and same["inception_is"] >= 1 - 1e-6
    noise = tmp_path / "noise.npz"
    np.savez(noise, images=np.random.default_rng(0).integers(0, 256, (12, 28, 28), dtype=np.uint8))
    apart = scores.score_one(
        ckpt,
        features="inception",
        images=str(noise),
        real=str(tmp_path / "samples.npz"),
        inception_weights=random_inception,
        device="cpu",
        quiet=True,
    )
    assert apart["inception_fid"] > 1 and apart["kid"] > same["kid"]


def test_inception_weights_offline_or_foreign_give_one_line(dcgan_run, tmp_path, monkeypatch):
    ckpt = str(dcgan_run / "checkpoints" / "last.pt")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache
    monkeypatch.delenv(scores.INCEPTION_WEIGHTS_ENV, raising=False)
    with pytest.raises(
        SystemExit,
        match=r"could not be fetched .*download https://\S+weights-inception-2015-12-05"
        r"-6726825d.pth and put it at .*--inception-weights FILE",
    ):
        sampler.score(ckpt, n=10, features="inception")
    torch.save({"not": torch.zeros(1)}, tmp_path / "foreign.pth")
    monkeypatch.setenv(scores.INCEPTION_WEIGHTS_ENV, str(tmp_path / "foreign.pth"))
    with pytest.raises(SystemExit, match="is not torch-fidelity's Inception weights"):
        sampler.score(ckpt, n=10, features="inception")
    with pytest.raises(SystemExit, match="no Inception weights file at"):
        sampler.score(ckpt, n=10, features="inception", inception_weights=str(tmp_path / "missing.pth"))
