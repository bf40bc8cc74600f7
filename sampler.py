"""Sample from any training script's checkpoint.

The checkpoint names the script that wrote it (dcgan, gan_maxout, ...). The sampler imports
that script as a module and rebuilds the generator through the script's own
`build_generator(cfg)` and `sample_noise(cfg, n, ...)`, so no architecture lives here.
A checkpoint trained on a GPU samples on the CPU.

  python sampler.py --ckpt runs/dcgan/<name>/checkpoints/last.pt             # = sample
  python sampler.py sample      --ckpt PATH --n 64 --nrow 8 --seed 0 --out grid.png
  python sampler.py interpolate --ckpt PATH --rows 8 --steps 10 --mode slerp
  python sampler.py gif         --ckpt PATH --frames 60 --n 16
  python sampler.py export      --ckpt PATH --n 10000 --out fid_samples/     # one PNG per sample
  python sampler.py export      --ckpt PATH --n 10000 --out samples.npz      # one uint8 array
  python sampler.py traverse    --ckpt PATH --code 1 --range 2 --steps 10    # models with codes (infogan)
  python sampler.py export      --ckpt PATH --n 1000 --cat 3 --out three.npz  # ... and the codes that made each image
  python sampler.py encode      --ckpt PATH --images DIR|FILE.npz --out feats.npz  # models with an encoder (bigan)
  python sampler.py reconstruct --ckpt PATH --n 32                            # x beside G(E(x))
  python sampler.py translate   --ckpt PATH --input DIR|FILE.npz --direction a2b --out DIR --cycle  # cyclegan
  python sampler.py score       --ckpt PATH --n 10000              # classifier IS / FID / class coverage (28x28 grey)
  python sampler.py score       --ckpt runs/dcgan/<name>/checkpoints/   # every checkpoint: scores.csv, scores.png

Capabilities come from the script: one that has sample_codes(cfg, n, ...) (infogan) gets its
codes stored beside exported images and a fixed category (--cat); one that has
grid_input(cfg, noise, code, lo, hi, steps) gets `traverse`; one that has build_encoder(cfg)
(bigan) gets `encode` and `reconstruct`; one that has TRANSLATIONS and build_translator(cfg)
(cyclegan) gets `translate`, and the commands that draw from noise tell it to use that instead.
Others are refused in one line.

Outputs default to <run folder>/sampler/; each command prints where it wrote.
"""

import argparse
import csv
import importlib
import sys
from pathlib import Path

import fire
import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

import utils

# scripts whose checkpoints this sampler reads; a checkpoint naming anything else is refused
SCRIPTS = (
    "dcgan",
    "gan_mlp",
    "gan_maxout",
    "wgan_gp",
    "infogan",
    "bigan",
    "cyclegan",
)  # each new script adds itself here


class Model:
    """A checkpoint, the script that wrote it (imported as a module), its run config and where
    to write; `module(builder, name)` rebuilds one of its networks, in eval mode, through the
    script's own `builder(cfg)`."""

    def __init__(self, ckpt, device="auto"):
        self.state = utils.load_checkpoint(ckpt, SCRIPTS)
        self.script = importlib.import_module(self.state["script"])
        self.name = self.script.__name__
        self.cfg = self.state["cfg"]
        self.device = utils.pick_device(device)
        # a script whose output range depends on the run says so in the config; else one range for all
        self.value_range = tuple(self.cfg.get("value_range") or self.script.VALUE_RANGE)
        self.run_dir = Path(ckpt).resolve().parent.parent

    def can(self, *attributes):
        return all(hasattr(self.script, a) for a in attributes)

    def module(self, builder, name):
        net = getattr(self.script, builder)(self.cfg)
        net.load_state_dict(self.state["models"][name])
        return net.to(self.device).eval()

    def to_model_range(self, images):
        """uint8 (N, C, H, W) -> floats in the model's value range, on its device."""
        lo, hi = self.value_range
        return images.to(self.device).float().div(255).mul(hi - lo).add(lo)

    def out_path(self, out, default_name, folder=False):
        """Where to write: `out`, or <run>/sampler/<default_name>. Its parent folder (or, with
        folder=True, the path itself) is created; a path that cannot be, or that is the wrong
        kind of thing (a folder where a file goes, a file where a folder goes), ends in one line."""
        path = Path(out) if out else self.run_dir / "sampler" / default_name
        if not folder and path.is_dir():
            utils.die(f"--out {path} is a folder; give a file name (e.g. {path / default_name})")
        try:
            (path if folder else path.parent).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            utils.die(f"cannot write to {path} ({exc.strerror or exc}); choose another --out")
        return path


class Generator(Model):
    """A checkpoint's generator, rebuilt through its own script, in eval mode."""

    def __init__(self, ckpt, device="auto"):
        super().__init__(ckpt, device)
        if self.can("TRANSLATIONS"):
            utils.die(
                f"{ckpt}: {self.name}.py checkpoints are translation models: they draw nothing from noise; "
                f"use `sampler.py translate --ckpt PATH --input DIR --direction {'|'.join(self.script.TRANSLATIONS)}`"
            )
        if not self.can("build_generator") or not self.cfg.get("image_size"):
            utils.die(f"{ckpt}: {self.name}.py checkpoints of this kind hold no image generator")
        self.G = self.module("build_generator", "G")

    def noise(self, n, seed):
        generator = torch.Generator().manual_seed(seed)
        return self.script.sample_noise(self.cfg, n, generator=generator)

    @torch.no_grad()
    def __call__(self, z, batch_size=500):
        return torch.cat([self.G(chunk.to(self.device)).float().cpu() for chunk in z.split(batch_size)])


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def read_images(path, image_size, channels, fit=None, flag="--images"):
    """Images for a model that takes (channels, image_size, image_size): a folder of image files
    (searched recursively, in sorted order; unreadable ones skipped with a warning), one image
    file, or an .npz in the layout `export` writes (`images` uint8 (N, H, W, C) or (N, H, W)).
    A script's own `fit` (cyclegan pads 28x28 digits to 32, as it trains) runs first; then
    colour is converted (grey <-> RGB) and the size resized to fit. Returns uint8 (N, C, H, W),
    the file names to write results under, and the .npz's `labels` (or None)."""
    from PIL import UnidentifiedImageError

    path, labels = Path(path), None
    if not path.exists():
        utils.die(f"{flag} {path} does not exist")
    if path.suffix == ".npz":
        try:
            with np.load(path) as npz:
                if "images" not in npz:
                    utils.die(
                        f"{path} has no `images` array (it has {', '.join(npz.files) or 'none'}); "
                        f"expected export's layout, uint8 (N, H, W, C)"
                    )
                arrays, labels = npz["images"], npz["labels"] if "labels" in npz else None
        except (OSError, ValueError, EOFError) as exc:
            utils.die(f"{path} is not a readable .npz ({exc})")
        if arrays.dtype != np.uint8 or arrays.ndim not in (3, 4) or len(arrays) == 0:
            utils.die(
                f"{path}: `images` must be uint8 (N, H, W, C) or (N, H, W) with N > 0, "
                f"got {arrays.dtype} {arrays.shape}"
            )
        images = torch.from_numpy(arrays if arrays.ndim == 4 else arrays[..., None]).permute(0, 3, 1, 2)
        names = [f"{i:06d}.png" for i in range(len(images))]
        if labels is not None and len(labels) != len(images):
            utils.die(f"{path}: {len(labels)} labels for {len(images)} images")
    else:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        images, names = [], []
        for file in files:
            try:
                with Image.open(file) as image:
                    array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
            except (OSError, ValueError, UnidentifiedImageError) as exc:
                print(f"warning: skipping unreadable image {file} ({type(exc).__name__})", file=sys.stderr)
                continue
            tensor = torch.from_numpy(array.copy()).reshape(array.shape[0], array.shape[1], -1).permute(2, 0, 1)
            images.append(_fit((fit or (lambda t: t))(tensor[None]), image_size, channels)[0])
            names.append(str(file.relative_to(path).with_suffix(".png")) if path.is_dir() else file.stem + ".png")
        if not images:
            utils.die(f"no readable images in {path}")
        images = torch.stack(images)
    return _fit(fit(images) if fit and path.suffix == ".npz" else images, image_size, channels), names, labels


def _fit(images, image_size, channels):
    """uint8 (N, C, H, W) converted to `channels` (ITU-R 601 luma for RGB -> grey) and resized."""
    if images.shape[1] != channels:
        if channels == 1:
            images = (images[:, :3].float() * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(1, keepdim=True)
        else:
            images = images[:, :1].expand(-1, channels, -1, -1)
        images = images.round().clamp(0, 255).to(torch.uint8)
    if images.shape[-2:] != (image_size, image_size):
        images = torch.nn.functional.interpolate(
            images.float(), size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
        )
        images = images.round().clamp(0, 255).to(torch.uint8)
    return images


def _check_positive(**values):
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            utils.die(f"--{name} must be a positive integer, got {value!r}")


def slerp(z0, z1, t):
    """Spherical interpolation: keeps the norm of z typical of the prior, unlike a straight line."""
    omega = torch.acos((z0 / z0.norm(dim=-1, keepdim=True) * z1 / z1.norm(dim=-1, keepdim=True)).sum(-1).clamp(-1, 1))
    so = torch.sin(omega).clamp_min(1e-8)
    return (torch.sin((1 - t) * omega) / so).unsqueeze(-1) * z0 + (torch.sin(t * omega) / so).unsqueeze(-1) * z1


@utils.one_line_errors
def sample(ckpt, n=64, nrow=8, seed=0, out=None, device="auto"):
    """Write a grid of n samples to out (default <run>/sampler/samples.png)."""
    _check_positive(n=n, nrow=nrow)
    gen = Generator(ckpt, device)
    path = gen.out_path(out, "samples.png")
    utils.save_grid(gen(gen.noise(n, seed)), path, nrow=nrow, value_range=gen.value_range)
    return str(path)


@utils.one_line_errors
def interpolate(ckpt, rows=8, steps=10, mode="slerp", seed=0, out=None, device="auto"):
    """Write a grid: each row walks from one random z to another in `steps` images."""
    _check_positive(rows=rows, steps=steps)
    if mode not in ("slerp", "linear"):
        utils.die(f"--mode must be slerp or linear, got {mode!r}")
    gen = Generator(ckpt, device)
    ends = gen.noise(2 * rows, seed)
    z0, z1 = ends[:rows, None], ends[rows:, None]
    t = torch.linspace(0, 1, steps)[None, :]
    z = slerp(z0, z1, t) if mode == "slerp" else z0 + (z1 - z0) * t[..., None]
    path = gen.out_path(out, f"interpolate_{mode}.png")
    utils.save_grid(gen(z.reshape(rows * steps, -1)), path, nrow=steps, value_range=gen.value_range)
    return str(path)


@utils.one_line_errors
def gif(ckpt, frames=60, n=16, seed=0, fps=15, out=None, device="auto"):
    """Write an animation: n samples whose z travel smoothly through the latent space and back."""
    _check_positive(frames=frames, n=n)
    gen = Generator(ckpt, device)
    keys = gen.noise(4 * n, seed).view(4, n, -1)  # a loop through 4 key points per sample
    nrow = max(1, int(round(n**0.5)))
    images = []
    for i in range(frames):
        pos = 4 * i / frames
        k, t = int(pos), torch.tensor(pos - int(pos))
        z = slerp(keys[k], keys[(k + 1) % 4], t.expand(n))
        grid = make_grid(gen(z), nrow=nrow, padding=2, normalize=True, value_range=gen.value_range)
        images.append(utils.to_uint8(grid[None], (0.0, 1.0))[0])
    path = gen.out_path(out, "walk.gif")
    utils.save_gif(images, path, fps=fps)
    return str(path)


@utils.one_line_errors
def export(ckpt, n=10000, out=None, seed=0, batch_size=500, device="auto", cat=None):
    """Write n samples for FID tools: a folder of PNGs (pytorch-fid, torch-fidelity read it),
    or, when out ends in .npz, one uint8 array `images` shaped (n, H, W, C). For a model with
    latent codes (infogan) the .npz also holds the codes that made each image (`cat`, `cont`),
    and --cat K makes every sample of category K."""
    _check_positive(n=n, batch_size=batch_size)
    gen = Generator(ckpt, device)
    codes = {}
    if hasattr(gen.script, "sample_codes"):
        n_cat = gen.cfg["n_cat"]
        if cat is not None and (not isinstance(cat, int) or isinstance(cat, bool) or not 0 <= cat < n_cat):
            utils.die(f"--cat {cat!r} is not a category of this model: it has categories 0 to {n_cat - 1}")
        z, codes = gen.script.sample_codes(gen.cfg, n, generator=torch.Generator().manual_seed(seed), cat=cat)
    elif cat is not None:
        utils.die(f"--cat: {gen.script.__name__}.py checkpoints have no categorical code (only infogan's do)")
    else:
        z = gen.noise(n, seed)
    as_npz = str(out or "").endswith(".npz")
    path = gen.out_path(out, "export", folder=not as_npz)
    images = utils.to_uint8(gen(z, batch_size), gen.value_range)
    if as_npz:
        np.savez_compressed(path, images=images, **{name: code.numpy() for name, code in codes.items()})
    else:
        for i, image in enumerate(images):
            Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(path / f"{i:06d}.png")
    return f"{n} samples -> {path}"


@utils.one_line_errors
def traverse(ckpt, code=None, range=2.0, steps=10, seed=0, out=None, device="auto"):
    """For a model with latent codes (infogan): one grid per continuous code (or only --code K,
    counted from 1), one row per category, the code swept from -range to +range along each row
    in `steps` images, the noise (drawn with --seed) and the other codes fixed."""
    _check_positive(steps=steps)
    gen = Generator(ckpt, device)
    if not hasattr(gen.script, "grid_input"):
        utils.die(f"traverse: {gen.script.__name__}.py checkpoints have no latent codes to traverse (infogan's do)")
    n_cont = gen.cfg["n_cont"]
    if code is not None and (not isinstance(code, int) or isinstance(code, bool) or not 1 <= code <= n_cont):
        utils.die(f"--code {code!r} is not a continuous code of this model: it has codes 1 to {n_cont}")
    if not isinstance(range, (int, float)) or isinstance(range, bool) or not range > 0:
        utils.die(f"--range must be a positive number, got {range!r}")
    noise = gen.script.sample_latent(gen.cfg, 1, generator=torch.Generator().manual_seed(seed))[0]
    folder = gen.out_path(out, "traverse", folder=True)
    written = []
    codes = [code - 1] if code is not None else torch.arange(n_cont).tolist()  # `range` is the flag here
    for j in codes:
        z, cols = gen.script.grid_input(gen.cfg, noise, j, -float(range), float(range), steps)
        written.append(folder / f"traverse_c{j + 1}.png")
        utils.save_grid(gen(z), written[-1], nrow=cols, value_range=gen.value_range)
    return " ".join(map(str, written))


@utils.one_line_errors
def encode(ckpt, images=None, out=None, batch_size=500, device="auto"):
    """For a model with an encoder (bigan): write E's features of the --images (a folder, an
    image file, or an .npz in export's layout) to --out, an .npz holding one (N, dim) array per
    representation the encoder gives (bigan: `code` = E(x), `hidden` = its last hidden layer),
    the images' `names`, and the input's `labels` when it has them."""
    _check_positive(batch_size=batch_size)
    model = Model(ckpt, device)
    if not model.can("build_encoder"):
        utils.die(f"encode: {model.name}.py checkpoints have no encoder (bigan's do)")
    if images is None:
        utils.die("encode needs --images DIR|FILE.npz (the images to encode)")
    x, names, labels = read_images(images, model.cfg["image_size"], model.cfg["channels"])
    path = model.out_path(out, "features.npz")
    if path.suffix != ".npz":
        utils.die(f"--out {path}: features are written as an .npz; give a name ending in .npz")
    E = model.module("build_encoder", "E")
    with torch.no_grad():
        parts = [E.features(model.to_model_range(chunk)) for chunk in x.split(batch_size)]
    features = {k: torch.cat([p[k] for p in parts]).float().cpu().numpy() for k in parts[0]}
    np.savez_compressed(path, **features, names=np.array(names), **({} if labels is None else {"labels": labels}))
    return f"{len(x)} images -> {path} ({', '.join(f'{k} {v.shape}' for k, v in features.items())})"


@utils.one_line_errors
def reconstruct(ckpt, images=None, n=32, out=None, device="auto"):
    """For a model with an encoder (bigan): write a grid of images x beside their reconstructions
    G(E(x)), in pairs of columns. The images: the first n of --images (a folder, an image file or
    an .npz), or by default the first n held-out images of the run's own data set."""
    _check_positive(n=n)
    model = Model(ckpt, device)
    if not model.can("build_encoder", "build_generator"):
        utils.die(f"reconstruct: {model.name}.py checkpoints have no encoder (bigan's do)")
    if images is None:
        x = model.script.held_out_images(model.cfg, n)[0]
    else:
        x = read_images(images, model.cfg["image_size"], model.cfg["channels"])[0][:n]
    path = model.out_path(out, "reconstructions.png")
    G, E = model.module("build_generator", "G"), model.module("build_encoder", "E")
    with torch.no_grad():
        real = model.to_model_range(x)
        pairs = torch.stack([real, G(E(real))], dim=1).flatten(0, 1).float().cpu()
    utils.save_grid(pairs, path, nrow=16, value_range=model.value_range)
    return str(path)


@utils.one_line_errors
def translate(ckpt, input=None, direction="a2b", out=None, cycle=False, batch_size=100, device="auto"):
    """For a translation model (cyclegan): translate every image of --input (a folder, an image
    file, or an .npz in export's layout) in --direction and write one PNG per image, under the
    same name, in --out (default <run>/sampler/translate_<direction>/); --cycle also writes the
    round trip (translated there and back) under --out/cycle/, same names again."""
    _check_positive(batch_size=batch_size)
    model = Model(ckpt, device)
    if not model.can("TRANSLATIONS", "build_translator"):
        utils.die(f"translate: {model.name}.py checkpoints are not translation models (cyclegan's are)")
    directions = model.script.TRANSLATIONS
    if direction not in directions:
        utils.die(f"--direction must be one of {', '.join(directions)}, got {direction!r}")
    if input is None:
        utils.die("translate needs --input DIR|FILE.npz (the images to translate)")
    x, names, _ = read_images(
        input,
        model.cfg["image_size"],
        model.cfg["channels"],
        flag="--input",
        fit=getattr(model.script, "fit_images", None) and (lambda images: model.script.fit_images(model.cfg, images)),
    )
    folder = model.out_path(out, f"translate_{direction}", folder=True)
    there = model.module("build_translator", directions[direction])
    back = model.module("build_translator", next(v for k, v in directions.items() if k != direction)) if cycle else None
    for start in range(0, len(x), batch_size):
        with torch.no_grad():
            translated = there(model.to_model_range(x[start : start + batch_size]))
            outputs = [(folder, translated)] + ([(folder / "cycle", back(translated))] if cycle else [])
        for where, images in outputs:
            for name, image in zip(
                names[start : start + batch_size], utils.to_uint8(images.float(), model.value_range)
            ):
                (where / name).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(where / name)
    return f"{len(x)} images {direction} -> {folder}" + (f" (round trips in {folder / 'cycle'})" if cycle else "")


REFERENCE_CAP = 50_000  # real images a folder reference is read up to (the papers' FID uses 50k)


def _as_uint8(images, value_range):
    """Floats in value_range (N, C, H, W) -> uint8, as a PNG of them would hold."""
    lo, hi = value_range
    return ((images.float() - lo) / (hi - lo) * 255).round().clamp(0, 255).to(torch.uint8).cpu()


def _folder_images(folder, limit=REFERENCE_CAP):
    """The first `limit` images of a utils.load_image_folder dataset, as uint8 (N, C, H, W)."""
    return torch.stack([_as_uint8(folder[i][0][None], (-1.0, 1.0))[0] for i in range(min(limit, len(folder)))])


def _score_images(model, spec, flag, judge_unseen=False):
    """Images a score reads, uint8 (N, C, H, W) at the model's size: `spec` a data range of the
    checkpoint's data set (train|test:START:STOP), a folder, an image file or an .npz; None for
    the checkpoint's own training images or, with judge_unseen, the part of the data set's
    training file that the score classifier never learned from. Returns (images, what they are,
    cache key or None)."""
    cfg, size, channels = model.cfg, model.cfg["image_size"], model.cfg.get("channels", 1)
    if spec is not None and not (isinstance(spec, str) and spec.split(":")[0] in ("train", "test") and ":" in spec):
        images = read_images(spec, size, channels, flag=flag)[0]
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
        split, start, stop = "train", utils.judge_cut(len(images)), None
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
    images = _fit(images[start:stop], size, channels)
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
    classifier, _ = utils.score_classifier(cfg["dataset"], cfg["data_root"], model.device)
    digits = (
        (lambda x: model.script.as_digits(cfg, x.to(model.device)))
        if model.can("as_digits")
        else (lambda x: x.to(model.device).float() / 255)
    )

    def statistics(x):
        probs, features = utils.classifier_outputs(classifier, digits(x), batch_size)
        return {
            **utils.feature_statistics(features),
            "histogram": utils.class_histogram(probs),
            "inception_score": utils.inception_score(probs),
        }

    cache = Path(cfg["data_root"]) / "scores" / f"{cache_key}_stats.pt" if cache_key else None
    if cache and cache.exists():
        real_stats = utils.load_checkpoint(cache, "score_statistics")
    else:
        real_stats = statistics(real)
        if cache:
            utils.save_checkpoint(real_stats, cache, "score_statistics")
    probs, features = utils.classifier_outputs(classifier, digits(images), batch_size)
    histogram = utils.class_histogram(probs)
    eps = 1e-6  # a class the samples never hit costs log(1/eps), not infinity
    metrics = {
        "classifier_is": utils.inception_score(probs),
        "classifier_fid": utils.frechet_distance(utils.feature_statistics(features), real_stats),
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
    metrics = utils.inception_metrics(
        images, real, weights, model.device, batch_size, cache_root, cache_key and f"{cache_key}_{len(real)}"
    )
    text = (
        f"Inception Score {metrics['inception_is']:.3f} +- {metrics['inception_is_std']:.3f}, "
        f"FID {metrics['inception_fid']:.3f}, KID {metrics['kid']:.5f} +- {metrics['kid_std']:.5f}"
    )
    return metrics, text


def _score_one(
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
):
    model = Model(path, device)
    space = features or ("classifier" if _reads_digits(model) else "inception")
    if space not in ("classifier", "inception"):
        utils.die(f"--features must be classifier or inception, got {space!r}")
    if space == "classifier" and not _reads_digits(model):
        utils.die(
            f"score: {path} makes {model.cfg.get('image_size')}x{model.cfg.get('image_size')} images of "
            f"{model.cfg.get('dataset')}; the classifier feature space covers the 28x28 grey data sets "
            f"(mnist, fashion-mnist) only: use --features inception"
        )
    weights = utils.inception_weights(inception_weights) if space == "inception" else None
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
            inputs = _fit(inputs.cpu(), model.cfg["image_size"], model.cfg["channels"])
            with torch.no_grad():
                translated = torch.cat(
                    [_as_uint8(there(model.to_model_range(x)), model.value_range) for x in inputs.split(batch_size)]
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
        gen = Generator(path, device)
        what = f"{images}" if images is not None else f"{n} samples"
        fake = (
            _score_images(gen, images, "--images")[0]
            if images is not None
            else _as_uint8(gen(gen.noise(n, seed), batch_size), gen.value_range)
        )
        sets.append(("", what, fake, *_score_images(gen, real, "--real", judge_unseen=space == "classifier")))
    measure = _classifier_scores if space == "classifier" else _inception_scores
    scores = {"step": model.state.get("step")}
    if not quiet:
        print(
            f"features: the {model.cfg['dataset']} score classifier's (a CNN trained by this repository; held-out "
            f"accuracy {100 * utils.score_classifier(model.cfg['dataset'], model.cfg['data_root'], 'cpu')[1]:.2f}%), "
            f"128-d penultimate layer for FID"
            if space == "classifier"
            else f"features: Inception-v3 (torch-fidelity's inception-v3-compat, {weights}): 2048-d pool for FID and "
            f"KID, its classes for IS"
        )
    for prefix, what, x, reference, reference_name, cache_key in sets:
        metrics, text = measure(model, x, reference, cache_key, batch_size, weights)
        scores |= {prefix + k: v for k, v in metrics.items()}
        if not quiet:
            print(f"{path} (step {scores['step']}), {what} vs {reference_name}:\n  {text}")
    return scores


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
):
    """Measure a generator (or a translation model) in a feature space, named in the output:
    --features classifier (default for the 28x28 grey data sets: a digit/garment classifier the
    repository trains on first use and caches under the data root; classifier IS, FID, class
    histogram, classes covered, KL to the real histogram) or inception (torch-fidelity: IS, FID,
    KID; weights fetched on first use or --inception-weights FILE / $INCEPTION_WEIGHTS).
    n samples are compared with --real (default: the checkpoint's training images; or a data
    range train|test:START:STOP, a folder, an .npz); --images scores those images in place of
    samples (e.g. --images test:8000:10000, real held-out images, for a reference). A translation
    model (cyclegan) scores its held-out images translated each way against the other domain.
    Given a folder of checkpoints, scores each and writes scores.csv and scores.png (the metrics
    against the training step) to --out (default: the run folder)."""
    _check_positive(n=n, batch_size=batch_size)
    options = dict(
        n=n,
        features=features,
        real=real,
        images=images,
        batch_size=batch_size,
        seed=seed,
        inception_weights=inception_weights,
        device=device,
    )
    if not Path(ckpt).is_dir():
        _score_one(ckpt, **options)
        return None
    paths = sorted(Path(ckpt).glob("*.pt"))
    if not paths:
        utils.die(f"score: no checkpoints (*.pt) in {ckpt}")
    rows = sorted(
        ({"checkpoint": p.name} | _score_one(str(p), **options, quiet=True) for p in paths),
        key=lambda r: (r["step"], r["checkpoint"]),
    )
    folder = Path(out) if out else Path(ckpt).resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        utils.die(f"cannot write to {folder} ({exc.strerror or exc}); choose another --out")
    columns = list(rows[0])
    with open(folder / "scores.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([[r[c] if isinstance(r[c], (str, int)) else f"{r[c]:.6g}" for c in columns] for r in rows])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plotted = [c for c in columns if c.endswith(("_fid", "_is")) and "real_" not in c]
    fig, axes = plt.subplots(1, len(plotted), figsize=(4.5 * len(plotted), 3.5), squeeze=False)
    for ax, key in zip(axes[0], plotted):
        ax.plot([r["step"] for r in rows], [r[key] for r in rows], marker="o")
        ax.set_xlabel("step"), ax.set_title(key.replace("_is", " IS").replace("_fid", " FID").replace("_", " "))
        ax.grid(alpha=0.3)
        if key.endswith("_fid"):
            ax.set_yscale("log")  # early checkpoints are orders of magnitude worse
    fig.tight_layout()
    fig.savefig(folder / "scores.png", dpi=100)
    plt.close(fig)
    fid = next(c for c in plotted if c.endswith("_fid"))
    best = min(rows, key=lambda r: r[fid])
    return (
        f"{len(rows)} checkpoints scored -> {folder / 'scores.csv'}, {folder / 'scores.png'}; lowest "
        f"{fid} {best[fid]:.3f} at {best['checkpoint']} (step {best['step']})"
    )


COMMANDS = {
    "sample": sample,
    "interpolate": interpolate,
    "gif": gif,
    "export": export,
    "traverse": traverse,
    "encode": encode,
    "reconstruct": reconstruct,
    "translate": translate,
    "score": score,
}

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["sample", *argv]  # `python sampler.py --ckpt PATH` writes a grid
    elif argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        utils.die(f"unknown command {argv[0]!r}; the commands are {', '.join(COMMANDS)} (see --help)")
    fire.Fire(COMMANDS, command=argv, name="sampler.py")
