"""Scores of generated images, and the `score` command (`python sampler.py score ...`) that reports them.

What is measured, and in which feature space (each report names its space):

    classifier   for the 28x28 grey data sets (mnist, fashion-mnist), and for a script that turns its images
                 into such digits (its as_digits hook): a small CNN this repository trains once per data set
                 (ScoreClassifier, on the first 5/6 of the training file; cached under <data root>/scores/).
                 Classifier IS, FID in its 128-d penultimate features, the class histogram, the classes
                 covered (>= 1% of the images) and KL(image classes || real classes). By default the real
                 images are the last 1/6 of the training file, which the classifier never learned from.
    inception    any images: torch-fidelity's Inception-v3 (the TensorFlow FID/IS/KID the papers report):
                 IS from its classes, FID and KID in its 2048-d pool features; its weights are fetched once
                 (or --inception-weights FILE / $INCEPTION_WEIGHTS).

The command scores a generator's samples (or --images) against real images (--real, default the
run's training images), a translation model's held-out images translated each way (its score_sets
hook), or every checkpoint of a folder, into scores.csv and scores.png (the metrics against the step).

    ScoreClassifier / score_classifier / judge_cut   the 28x28 data sets' judge (trained once, cached)
    classifier_outputs / feature_statistics / frechet_distance / inception_score / class_histogram   the metrics
    inception_weights_file / inception_metrics   torch-fidelity's Inception-v3: weights (one line offline); IS, FID, KID
    score(ckpt, ...) / score_one(path, ...)      the command; the scores of one checkpoint, as a dict
"""

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np
import torch

import utils


# --------------------------------------------------------------------------- scores
class ScoreClassifier(torch.nn.Module):
    """The judge of 28x28 grey samples (MNIST, Fashion-MNIST): 3x3 conv 32, ReLU, max-pool ->
    3x3 conv 64, ReLU, max-pool -> FC 128, ReLU (the features FID is computed in) -> FC 10."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(True),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(True),
        )
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        """x in [0, 1], (N, 1, 28, 28) -> (class logits, 128-d features)."""
        features = self.features(x)
        return self.head(features), features


def judge_cut(n_train: int) -> int:
    """Where the score classifier's part of a training file ends: it learns from the first 5/6;
    the rest, images it never saw, is its held-out test and the classifier space's reference."""
    return n_train * 5 // 6


def score_classifier(dataset: str, data_root, device, epochs: int = 3, seed: int = 0):
    """The data set's ScoreClassifier, trained the first time it is asked for (on the first 5/6
    of the training file, its held-out accuracy measured on the last 1/6) and cached as
    <data_root>/scores/<dataset>_classifier.pt. Returns (classifier in eval mode, accuracy)."""
    path = Path(data_root) / "scores" / f"{dataset}_classifier.pt"
    images, labels = utils.load_mnist_family(dataset, data_root, train=True)
    classifier = ScoreClassifier()
    if path.exists():
        state = utils.load_checkpoint(path, "score_classifier")
        if state["n_images"] == len(images):
            classifier.load_state_dict(state["weights"])
            return classifier.to(device).eval(), state["accuracy"]
    cut = judge_cut(len(images))
    x = images.unsqueeze(1).to(device)
    y = labels.to(device)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = ScoreClassifier().to(device)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=2e-3)
    print(f"training the {dataset} score classifier on {cut} training images (once; cached as {path})", file=sys.stderr)
    with torch.enable_grad():
        for _ in range(epochs):
            for idx in torch.randperm(cut, generator=generator).to(device).split(128):
                loss = torch.nn.functional.cross_entropy(classifier(x[idx].float() / 255)[0], y[idx].long())
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
    classifier.eval()
    with torch.no_grad():
        predicted = torch.cat([classifier(chunk.float() / 255)[0].argmax(1) for chunk in x[cut:].split(1000)])
    accuracy = (predicted == y[cut:]).float().mean().item()
    utils.save_checkpoint(
        {"weights": classifier.state_dict(), "accuracy": accuracy, "n_images": len(images)}, path, "score_classifier"
    )
    return classifier, accuracy


@torch.no_grad()
def classifier_outputs(classifier, images, batch_size: int = 500):
    """(class probabilities, features) of images in [0, 1], (N, 1, 28, 28), as float64 on the CPU."""
    probs, features = [], []
    for chunk in images.split(batch_size):
        logits, feats = classifier(chunk.float())
        probs.append(torch.softmax(logits.double(), 1).cpu())
        features.append(feats.double().cpu())
    return torch.cat(probs), torch.cat(features)


def feature_statistics(features: torch.Tensor) -> dict:
    """Mean and covariance of features (N, D): what a Frechet distance compares."""
    return {"mu": features.mean(0), "sigma": torch.cov(features.T)}


def frechet_distance(a: dict, b: dict) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the FID formula (scipy's sqrtm)."""
    import warnings

    from scipy import linalg

    with warnings.catch_warnings():  # dead ReLU units make the product singular; checked just below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(a["sigma"].numpy() @ b["sigma"].numpy())
    if not np.isfinite(covmean).all():  # singular product: nudge both diagonals, as pytorch-fid does
        offset = np.eye(len(covmean)) * 1e-6
        covmean = linalg.sqrtm((a["sigma"].numpy() + offset) @ (b["sigma"].numpy() + offset))
    diff = (a["mu"] - b["mu"]).numpy()
    return float(diff @ diff + np.trace(a["sigma"].numpy()) + np.trace(b["sigma"].numpy()) - 2 * np.trace(covmean.real))


def inception_score(probs: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))): high when each sample is one class and the classes are many."""
    marginal = probs.mean(0, keepdim=True)
    kl = (probs * (probs.clamp_min(1e-12).log() - marginal.clamp_min(1e-12).log())).sum(1)
    return float(kl.mean().exp())


def class_histogram(probs: torch.Tensor, n_classes: int = 10) -> torch.Tensor:
    """The fraction of images the classifier puts in each class (by its top guess)."""
    return torch.bincount(probs.argmax(1), minlength=n_classes).double() / len(probs)


# The Inception space is torch-fidelity's (it reproduces the TensorFlow FID/IS/KID the papers report).
INCEPTION_WEIGHTS_ENV = "INCEPTION_WEIGHTS"


def inception_weights_file(path=None) -> str:
    """The file of torch-fidelity's Inception-v3 weights: `path` (--inception-weights), else
    $INCEPTION_WEIGHTS, else torch's hub cache, where it is fetched on first use. Offline and
    missing: one line saying what to download and where to put it."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    path = path or os.environ.get(INCEPTION_WEIGHTS_ENV)
    if path and not Path(path).is_file():
        utils.die(f"no Inception weights file at {path}; download {URL_INCEPTION_V3} there")
    if not path:
        path = Path(torch.hub.get_dir()) / "checkpoints" / URL_INCEPTION_V3.rsplit("/", 1)[1]
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                print(f"fetching the Inception weights (once) to {path}", file=sys.stderr)
                torch.hub.download_url_to_file(URL_INCEPTION_V3, str(path), progress=False)
            except Exception as exc:  # offline, a proxy, a full disk: all end the same way
                utils.die(
                    "the Inception weights could not be fetched "
                    f"({str(exc).splitlines()[0][:80] or type(exc).__name__}): "
                    f"download {URL_INCEPTION_V3} and put it at {path}, or pass --inception-weights FILE "
                    f"(or set {INCEPTION_WEIGHTS_ENV}=FILE)"
                )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert isinstance(state, dict) and "fc.weight" in state and "Mixed_7c.branch_pool.conv.weight" in state
    except Exception:
        utils.die(f"{path} is not torch-fidelity's Inception weights ({URL_INCEPTION_V3.rsplit('/', 1)[1]})")
    return str(path)


class _Uint8Images(torch.utils.data.Dataset):
    """What torch-fidelity reads: one uint8 (3, H, W) tensor per item (grey repeated to RGB)."""

    def __init__(self, images):
        self.images = images.cpu()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index].expand(3, -1, -1)


def inception_metrics(fake, real, weights, device, batch_size: int = 500, cache_root=None, cache_name=None) -> dict:
    """Inception Score of `fake`, FID and KID of `fake` against `real` (uint8 (N, C, H, W) each),
    by torch-fidelity; the real features are cached under cache_root as cache_name, if named."""
    import torch_fidelity

    metrics = torch_fidelity.calculate_metrics(
        input1=_Uint8Images(fake),
        input2=_Uint8Images(real),
        isc=True,
        fid=True,
        kid=True,
        kid_subset_size=min(1000, len(fake), len(real)),
        isc_splits=min(10, len(fake)),
        feature_extractor_weights_path=weights,
        cuda=torch.device(device).type == "cuda",
        batch_size=batch_size,
        cache=cache_name is not None,
        cache_root=str(cache_root) if cache_root else None,
        input2_cache_name=cache_name,
        save_cpu_ram=True,
        verbose=False,
    )
    return {
        "inception_is": metrics["inception_score_mean"],
        "inception_is_std": metrics["inception_score_std"],
        "inception_fid": metrics["frechet_inception_distance"],
        "kid": metrics["kernel_inception_distance_mean"],
        "kid_std": metrics["kernel_inception_distance_std"],
    }


# --------------------------------------------------------------------------- the score command
REFERENCE_CAP = 50_000  # real images a folder reference is read up to (the papers' FID uses 50k)


def _uint8(images, value_range):
    """Floats in value_range (N, C, H, W) -> uint8 (N, C, H, W) on the CPU, as a PNG of them would hold."""
    return torch.from_numpy(utils.to_uint8(images, value_range)).permute(0, 3, 1, 2).contiguous()


def _folder_images(folder, limit=REFERENCE_CAP):
    """The first `limit` images of a utils.load_image_folder dataset, as uint8 (N, C, H, W)."""
    return torch.cat([_uint8(folder[i][0][None], (-1.0, 1.0)) for i in range(min(limit, len(folder)))])


def _score_images(model, spec, flag, judge_unseen=False):
    """Images a score reads, uint8 (N, C, H, W) at the model's size: `spec` a data range of the
    checkpoint's data set (train|test:START:STOP), a folder, an image file or an .npz; None for
    the checkpoint's own training images or, with judge_unseen, the part of the data set's
    training file that the score classifier never learned from. Returns (images, what they are,
    cache key or None)."""
    import sampler  # sampler imports this module (its score command): imported here, when used

    cfg, size, channels = model.cfg, model.cfg["image_size"], model.cfg.get("channels", 1)
    if spec is not None and not (isinstance(spec, str) and spec.split(":")[0] in ("train", "test") and ":" in spec):
        images = sampler.read_images(spec, size, channels, flag=flag)[0]
        return images, f"{spec} ({len(images)} images)", None
    if spec is None and cfg["dataset"] == "folder":
        images = _folder_images(utils.load_image_folder(cfg["image_folder"], size, channels))
        return images, f"{cfg['image_folder']} ({len(images)} images)", None
    try:
        split, start, stop = utils.data_range(spec) if spec else cfg.get("train_range") or ("train", 0, None)
    except argparse.ArgumentTypeError as exc:
        utils.die(f"{flag}: {exc}")
    judge_unseen = judge_unseen and spec is None and cfg["dataset"] in utils.MNIST_FAMILY
    if judge_unseen:  # the judge's features sit closer to images it learned from: compare with the others
        images = utils.load_mnist_family(cfg["dataset"], cfg["data_root"], train=True)[0].unsqueeze(1)
        split, start, stop = "train", judge_cut(len(images)), None
    elif cfg["dataset"] in utils.MNIST_FAMILY:
        images = utils.load_mnist_family(cfg["dataset"], cfg["data_root"], train=split == "train")[0].unsqueeze(1)
    elif cfg["dataset"] == "cifar10":
        images = utils.load_cifar10(cfg["data_root"], train=split == "train")
    else:
        utils.die(
            f"{flag} {spec}: a data range picks images of mnist, fashion-mnist or cifar10, "
            f"not of --dataset {cfg['dataset']}; give a folder or an .npz"
        )
    if stop is not None and stop > len(images):
        utils.die(f"{flag} {split}:{start}:{stop} asks for more than the {len(images)} {split} images")
    images = sampler.fit_to(images[start:stop], size, channels)
    unseen = ", the training images the score classifier never learned from" if judge_unseen else ""
    return (
        images,
        f"{cfg['dataset']} {split}[{start}:{stop or ''}] ({len(images)} images{unseen})",
        f"{cfg['dataset']}_{split}_{start}_{stop}_{size}px",
    )


def _reads_digits(model):
    """Whether the classifier space applies: 28x28 grey digits/garments, or a script that turns
    its images into them (cyclegan's as_digits)."""
    cfg = model.cfg
    return (
        cfg.get("dataset") in utils.MNIST_FAMILY
        and not cfg.get("folder_a")
        and ((cfg.get("image_size"), cfg.get("channels", 1)) == (28, 1) or model.can("as_digits"))
    )


def _classifier_scores(model, images, real, cache_key, batch_size, weights=None):
    """The classifier space: classifier IS, FID in its 128-d features, the class histogram, the
    classes covered and the KL to the real images' histogram. (metrics, text)."""
    cfg = model.cfg
    classifier, _ = score_classifier(cfg["dataset"], cfg["data_root"], model.device)
    digits = (
        (lambda x: model.script.as_digits(cfg, x.to(model.device)))
        if model.can("as_digits")
        else (lambda x: x.to(model.device).float() / 255)
    )

    def statistics(x):
        probs, features = classifier_outputs(classifier, digits(x), batch_size)
        return {
            **feature_statistics(features),
            "histogram": class_histogram(probs),
            "inception_score": inception_score(probs),
        }

    cache = Path(cfg["data_root"]) / "scores" / f"{cache_key}_stats.pt" if cache_key else None
    if cache and cache.exists():
        real_stats = utils.load_checkpoint(cache, "score_statistics")
    else:
        real_stats = statistics(real)
        if cache:
            utils.save_checkpoint(real_stats, cache, "score_statistics")
    probs, features = classifier_outputs(classifier, digits(images), batch_size)
    histogram = class_histogram(probs)
    eps = 1e-6  # a class the samples never hit costs log(1/eps), not infinity
    metrics = {
        "classifier_is": inception_score(probs),
        "classifier_fid": frechet_distance(feature_statistics(features), real_stats),
        "classes_covered": int((histogram >= 0.01).sum()),
        "class_kl": float((histogram * ((histogram + eps) / (real_stats["histogram"] + eps)).log()).sum()),
        "real_classifier_is": real_stats["inception_score"],
    }
    text = (
        f"classifier IS {metrics['classifier_is']:.3f} (real images: {metrics['real_classifier_is']:.3f}), "
        f"classifier FID {metrics['classifier_fid']:.3f}, classes covered {metrics['classes_covered']}/10 "
        f"(>= 1% of images), KL(image classes || real classes) {metrics['class_kl']:.4f}\n"
        f"  classes: {' '.join(f'{k}:{v:.3f}' for k, v in enumerate(histogram.tolist()))}"
    )
    return metrics, text


def _inception_scores(model, images, real, cache_key, batch_size, weights):
    """The Inception space, by torch-fidelity: IS, FID and KID (2048-d pool features). (metrics, text)"""
    cache_root = Path(model.cfg.get("data_root") or "./data") / "scores" / "torch-fidelity"
    metrics = inception_metrics(
        images, real, weights, model.device, batch_size, cache_root, cache_key and f"{cache_key}_{len(real)}"
    )
    text = (
        f"Inception Score {metrics['inception_is']:.3f} +- {metrics['inception_is_std']:.3f}, "
        f"FID {metrics['inception_fid']:.3f}, KID {metrics['kid']:.5f} +- {metrics['kid_std']:.5f}"
    )
    return metrics, text


def score_one(
    path,
    n=10000,
    features=None,
    real=None,
    images=None,
    batch_size=500,
    seed=0,
    inception_weights=None,
    device="auto",
    quiet=False,
    raw=False,
):
    """The scores of one checkpoint (a file), as a dict of metrics and its step; printed unless quiet."""
    import sampler  # sampler imports this module (its score command): imported here, when used

    model = sampler.Model(path, device)
    space = features or ("classifier" if _reads_digits(model) else "inception")
    if space not in ("classifier", "inception"):
        utils.die(f"--features must be classifier or inception, got {space!r}")
    if space == "classifier" and not _reads_digits(model):
        utils.die(
            f"score: {path} makes {model.cfg.get('image_size')}x{model.cfg.get('image_size')} images of "
            f"{model.cfg.get('dataset')}; the classifier feature space covers the 28x28 grey data sets "
            f"(mnist, fashion-mnist) only: use --features inception"
        )
    weights = inception_weights_file(inception_weights) if space == "inception" else None
    sets = []  # (metric-name prefix, what is scored, its images, the real images, what they are, cache key)
    if model.can("TRANSLATIONS", "score_sets"):
        if images is not None or real is not None:
            utils.die(
                f"score: {model.name}.py is scored on its own held-out images against images of the other "
                f"domain; --images and --real are for generators"
            )
        for direction, (inputs, target, target_held_out, reference) in model.script.score_sets(
            model.cfg, n, model.device
        ).items():
            there = model.module("build_translator", model.script.TRANSLATIONS[direction])
            inputs = sampler.fit_to(inputs.cpu(), model.cfg["image_size"], model.cfg["channels"])
            with torch.no_grad():
                translated = torch.cat(
                    [_uint8(there(model.to_model_range(x)), model.value_range) for x in inputs.split(batch_size)]
                )
            sets += [
                (
                    f"{direction}_",
                    f"{direction}: {len(inputs)} held-out images translated",
                    translated,
                    target,
                    reference,
                    None,
                ),
                (
                    f"{direction}_real_",
                    f"{direction}: {len(target_held_out)} real held-out images of the other domain (for comparison)",
                    target_held_out.cpu(),
                    target,
                    reference,
                    None,
                ),
            ]
    else:
        gen = sampler.Generator(path, device, raw)
        averaged = not raw and "G_ema" in gen.state["models"]
        what = f"{images}" if images is not None else f"{n} samples of {'G_ema, the average of G' if averaged else 'G'}"
        fake = (
            _score_images(gen, images, "--images")[0]
            if images is not None
            else _uint8(gen(gen.noise(n, seed), batch_size), gen.value_range)
        )
        sets.append(("", what, fake, *_score_images(gen, real, "--real", judge_unseen=space == "classifier")))
    measure = _classifier_scores if space == "classifier" else _inception_scores
    result = {"step": model.state.get("step")}
    if not quiet:
        print(
            f"features: the {model.cfg['dataset']} score classifier's (a CNN trained by this repository; held-out "
            f"accuracy {100 * score_classifier(model.cfg['dataset'], model.cfg['data_root'], 'cpu')[1]:.2f}%), "
            f"128-d penultimate layer for FID"
            if space == "classifier"
            else f"features: Inception-v3 (torch-fidelity's inception-v3-compat, {weights}): 2048-d pool for FID and "
            f"KID, its classes for IS"
        )
    for prefix, what, x, reference, reference_name, cache_key in sets:
        metrics, text = measure(model, x, reference, cache_key, batch_size, weights)
        result |= {prefix + k: v for k, v in metrics.items()}
        if not quiet:
            print(f"{path} (step {result['step']}), {what} vs {reference_name}:\n  {text}")
    return result


@utils.one_line_errors
def score(
    ckpt,
    n=10000,
    features=None,
    real=None,
    images=None,
    batch_size=500,
    seed=0,
    inception_weights=None,
    out=None,
    device="auto",
    raw=False,
):
    """Measure a generator (or a translation model) in a feature space: IS, FID, class coverage.

    --features classifier (default for the 28x28 grey data sets: a digit/garment classifier the
    repository trains on first use and caches under the data root; classifier IS, FID, class
    histogram, classes covered, KL to the real histogram) or inception (torch-fidelity: IS, FID,
    KID; weights fetched on first use or --inception-weights FILE / $INCEPTION_WEIGHTS).
    n samples are compared with --real (default: the checkpoint's training images; or a data
    range train|test:START:STOP, a folder, an .npz); --images scores those images in place of
    samples (e.g. --images test:0:2000, real held-out images, for a reference). A translation
    model (cyclegan) scores its held-out images translated each way against the other domain.
    A run trained with --ema is scored by its average of G's weights (G_ema); --raw scores G itself.
    --ckpt a folder of checkpoints (a run's checkpoints/): each is scored, and scores.csv and
    scores.png (the metrics against the training step) are written to the folder --out (default:
    the run folder). --ckpt a run folder: its last checkpoint, as for every command."""
    import sampler  # sampler imports this module (its score command): imported here, when used

    sampler.check_positive(n=n, batch_size=batch_size)
    options = dict(
        n=n,
        features=features,
        real=real,
        images=images,
        batch_size=batch_size,
        seed=seed,
        inception_weights=inception_weights,
        device=device,
        raw=raw,
    )
    every = Path(str(ckpt)).is_dir() and not (Path(str(ckpt)) / "checkpoints").is_dir()  # not a run folder
    if not every:
        if out is not None:
            utils.die(
                "score: --out is where a checkpoints folder's scores.csv, scores.png go; one checkpoint's are printed"
            )
        score_one(str(utils.find_checkpoint(str(ckpt), "--ckpt")), **options)
        return None
    paths = sorted(Path(str(ckpt)).glob("*.pt"))
    if not paths:
        utils.die(f"score: no checkpoints (*.pt) in {ckpt}")
    run_dir = Path(str(ckpt)).resolve().parent
    sampler.out_path(out, run_dir, create=False)  # a wrong --out ends now, not after the scoring
    rows = sorted(
        ({"checkpoint": p.name} | score_one(str(p), **options, quiet=True) for p in paths),
        key=lambda r: (r["step"], r["checkpoint"]),
    )
    folder = sampler.out_path(out, run_dir)
    columns = list(rows[0])
    with open(folder / "scores.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([[r[c] if isinstance(r[c], (str, int)) else f"{r[c]:.6g}" for c in columns] for r in rows])
    plotted = [c for c in columns if c.endswith(("_fid", "_is")) and "real_" not in c]
    title = {c: c.replace("_is", " IS").replace("_fid", " FID").replace("_", " ") for c in plotted}
    points = list({r["step"]: r for r in rows}.values())  # one a step: last.pt repeats the last epoch's checkpoint
    utils.plot_panels(
        folder / "scores.png",
        [r["step"] for r in points],
        {title[c]: {c: [r[c] for r in points]} for c in plotted},
        log_y=[title[c] for c in plotted if c.endswith("_fid")],  # early checkpoints are orders of magnitude worse
    )
    fid = next(c for c in plotted if c.endswith("_fid"))
    best = min(rows, key=lambda r: r[fid])
    return (
        f"{utils.plural(len(rows), 'checkpoint')} scored -> {folder / 'scores.csv'}, {folder / 'scores.png'}; lowest "
        f"{fid} {best[fid]:.3f} at {best['checkpoint']} (step {best['step']})"
    )
