"""Sample from any training script's checkpoint.

The checkpoint names the script that wrote it (dcgan, gan_maxout, ...). The sampler imports
that script as a module and rebuilds its networks through the script's own builders, so no
architecture lives here. A checkpoint trained on a GPU samples on the CPU.

  python sampler.py --ckpt runs/dcgan/<name>                                 # = sample, from the run's last.pt
  python sampler.py sample      --ckpt PATH --n 64 --nrow 8 --seed 0 --out grid.png
  python sampler.py interpolate --ckpt PATH --rows 8 --steps 10 --mode slerp
  python sampler.py gif         --ckpt PATH --frames 60 --n 16
  python sampler.py export      --ckpt PATH --n 10000 --out fid_samples/     # one PNG per sample
  python sampler.py export      --ckpt PATH --n 1000 --cat 3 --out three.npz  # one uint8 array (+ infogan's codes)
  python sampler.py traverse    --ckpt PATH --code 1 --range 2 --steps 10    # models with codes (infogan)
  python sampler.py encode      --ckpt PATH --images DIR|FILE.npz --out feats.npz  # models with an encoder (bigan)
  python sampler.py reconstruct --ckpt PATH --n 32                            # x beside G(E(x))
  python sampler.py translate   --ckpt PATH --input DIR|FILE.npz --direction a2b --out DIR --cycle  # cyclegan
  python sampler.py score       --ckpt PATH --n 10000              # IS / FID / class coverage: scores.py
  python sampler.py score       --ckpt runs/dcgan/<name>/checkpoints/   # every checkpoint: scores.csv, scores.png
  python sampler.py COMMAND --help                                 # its flags and their defaults

A run trained with --ema keeps an average of G's weights beside G (G_ema in its checkpoints): every
command that draws images from G uses the average, and --raw uses G itself.

Every flag is checked against the command before anything runs. --ckpt takes a checkpoint, or a
run folder or its checkpoints/ folder for their last.pt (`score` reads every checkpoint of a
checkpoints folder). Outputs default to <run folder>/sampler/; each command prints where it wrote.

Every optional hook a script module can offer the sampler, and what it enables (a command whose
hooks a script lacks is refused in one line; `cfg` is the run's config, saved in the checkpoint):

  hook (module-level name)                  enables
  build_generator(cfg) -> G                 sample, interpolate, gif, export, score (for a cfg with image_size)
  sample_noise(cfg, n, generator=) -> z     the z those commands feed G
  VALUE_RANGE = (lo, hi)                    the range of the nets' images (or the run's cfg["value_range"], wgan_gp)
  sample_codes(cfg, n, generator=, cat=)    export stores the codes beside its images, and takes --cat K (infogan)
  sample_latent(cfg, n, generator=)         traverse: its one draw of noise (infogan)
  grid_input(cfg, noise, j, lo, hi, steps)  traverse: G's inputs sweeping code j, a row per category (infogan)
  build_encoder(cfg) -> E                   encode (E.features(x) -> {name: (N, dim)}); with G, reconstruct (bigan)
  held_out_images(cfg, n) -> (x, labels)    reconstruct's images when --images is not given (bigan)
  TRANSLATIONS = {direction: net name}      translate; the commands that draw from noise refuse it (cyclegan)
  build_translator(cfg) -> net              translate, and score of a translation model (cyclegan)
  fit_images(cfg, images) -> images         translate fits its inputs as the script trained (cyclegan pads 28 to 32)
  score_sets(cfg, n, device)                score of a translation model: each direction's held-out images (cyclegan)
  as_digits(cfg, images) -> digits          score in the 28x28 classifier space, for images that are not (cyclegan)
"""

import difflib
import importlib
import inspect
import re
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

import utils
from scores import score

# scripts whose checkpoints this sampler reads; a checkpoint naming anything else is refused
SCRIPTS = ("dcgan", "gan_mlp", "gan_maxout", "wgan_gp", "infogan", "bigan", "cyclegan")  # a new script adds itself
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}  # read
GRID_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")  # a grid is written as


def out_path(out, default, suffixes=(), create=True):
    """Where to write: `out`, or `default`: a file whose name ends in one of `suffixes`, or, with none,
    a folder. The wrong kind of path (another extension, a folder where a file goes, a file where a
    folder goes) or one that cannot be created ends in one line, before anything is written. The
    parent folder (for a folder, the path itself) is created."""
    path = Path(str(out)) if out else Path(default)
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        utils.die(f"--out {path}: {blocker} is a file, not a folder; choose another --out")
    if suffixes and path.is_dir():
        utils.die(f"--out {path} is a folder; give a file name (e.g. {path / Path(default).name})")
    if suffixes and path.suffix.lower() not in suffixes:
        endings = f"{', '.join(suffixes[:-1])} or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]
        utils.die(f"--out {path}: this command writes a file; give a name ending in {endings}")
    if not suffixes and path.exists() and not path.is_dir():
        utils.die(f"--out {path} is a file; this command writes a folder there")
    if not suffixes and path.suffix and not path.exists() and not str(out).endswith("/"):
        utils.die(f"--out {path} is named like a file; this command writes a folder (end a folder's name in /)")
    if create:
        try:
            (path.parent if suffixes else path).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            utils.die(f"cannot write to {path} ({exc.strerror or exc}); choose another --out")
    return path


class Model:
    """A checkpoint, the script that wrote it (imported as a module), its run config and where
    to write; `module(builder, name)` rebuilds one of its networks, in eval mode, through the
    script's own `builder(cfg)`."""

    def __init__(self, ckpt, device="auto"):
        self.path = str(utils.find_checkpoint(str(ckpt), "--ckpt"))
        self.state = utils.load_checkpoint(self.path, SCRIPTS)
        self.script = importlib.import_module(self.state["script"])
        self.name = self.script.__name__
        self.cfg = self.state["cfg"]
        self.device = utils.pick_device(device)
        # a script whose output range depends on the run says so in the config; else one range for all
        self.value_range = tuple(self.cfg.get("value_range") or self.script.VALUE_RANGE)
        run_dir = Path(self.path).resolve().parent.parent  # named as the user names it: relative, if under here
        self.run_dir = run_dir.relative_to(Path.cwd()) if run_dir.is_relative_to(Path.cwd()) else run_dir

    def can(self, *attributes):
        return all(hasattr(self.script, a) for a in attributes)

    def module(self, builder, name):
        net = getattr(self.script, builder)(self.cfg)
        net.load_state_dict(self.state["models"][name])
        return net.to(self.device).eval()

    def generator(self, raw=False):
        """G: the average of its weights (G_ema) where the run kept one (--ema), unless raw; else G itself."""
        return self.module("build_generator", "G" if raw or "G_ema" not in self.state["models"] else "G_ema")

    def to_model_range(self, images):
        """uint8 (N, C, H, W) -> floats in the model's value range, on its device."""
        lo, hi = self.value_range
        return images.to(self.device).float().div(255).mul(hi - lo).add(lo)

    def out_path(self, out, default_name, suffixes=()):
        """out_path with the default <run>/sampler/<default_name>."""
        return out_path(out, self.run_dir / "sampler" / default_name, suffixes)


class Generator(Model):
    """A checkpoint's generator (Model.generator), rebuilt through its own script, in eval mode."""

    def __init__(self, ckpt, device="auto", raw=False):
        super().__init__(ckpt, device)
        if self.can("TRANSLATIONS"):
            utils.die(
                f"{self.path}: {self.name}.py checkpoints are translation models: they draw nothing from noise; "
                f"use `sampler.py translate --ckpt PATH --input DIR --direction {'|'.join(self.script.TRANSLATIONS)}`"
            )
        if not self.can("build_generator") or not self.cfg.get("image_size"):
            utils.die(f"{self.path}: {self.name}.py checkpoints of this kind hold no image generator")
        self.G = self.generator(raw)

    def noise(self, n, seed):
        generator = torch.Generator().manual_seed(seed)
        return self.script.sample_noise(self.cfg, n, generator=generator)

    @torch.no_grad()
    def __call__(self, z, batch_size=500):
        return torch.cat([self.G(chunk.to(self.device)).float().cpu() for chunk in z.split(batch_size)])


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
            images.append(fit_to((fit or (lambda t: t))(tensor[None]), image_size, channels)[0])
            names.append(str(file.relative_to(path).with_suffix(".png")) if path.is_dir() else file.stem + ".png")
        if not images:
            utils.die(f"no readable images in {path}")
        images = torch.stack(images)
    return fit_to(fit(images) if fit and path.suffix == ".npz" else images, image_size, channels), names, labels


def fit_to(images, image_size, channels):
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


def check_positive(**values):
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            utils.die(f"--{name} must be a positive integer, got {value!r}")


def slerp(z0, z1, t):
    """Spherical interpolation: keeps the norm of z typical of the prior, unlike a straight line."""
    omega = torch.acos((z0 / z0.norm(dim=-1, keepdim=True) * z1 / z1.norm(dim=-1, keepdim=True)).sum(-1).clamp(-1, 1))
    so = torch.sin(omega).clamp_min(1e-8)
    return (torch.sin((1 - t) * omega) / so).unsqueeze(-1) * z0 + (torch.sin(t * omega) / so).unsqueeze(-1) * z1


@utils.one_line_errors
def sample(ckpt, n=64, nrow=8, seed=0, out=None, device="auto", raw=False):
    """Write a grid of n samples to --out (default <run>/sampler/samples.png)."""
    check_positive(n=n, nrow=nrow)
    gen = Generator(ckpt, device, raw)
    path = gen.out_path(out, "samples.png", GRID_SUFFIXES)
    utils.save_grid(gen(gen.noise(n, seed)), path, nrow=nrow, value_range=gen.value_range)
    return str(path)


@utils.one_line_errors
def interpolate(ckpt, rows=8, steps=10, mode="slerp", seed=0, out=None, device="auto", raw=False):
    """Write a grid: each row walks from one random z to another in `steps` images."""
    check_positive(rows=rows, steps=steps)
    if mode not in ("slerp", "linear"):
        utils.die(f"--mode must be slerp or linear, got {mode!r}")
    gen = Generator(ckpt, device, raw)
    path = gen.out_path(out, f"interpolate_{mode}.png", GRID_SUFFIXES)
    ends = gen.noise(2 * rows, seed)
    z0, z1 = ends[:rows, None], ends[rows:, None]
    t = torch.linspace(0, 1, steps)[None, :]
    z = slerp(z0, z1, t) if mode == "slerp" else z0 + (z1 - z0) * t[..., None]
    utils.save_grid(gen(z.reshape(rows * steps, -1)), path, nrow=steps, value_range=gen.value_range)
    return str(path)


@utils.one_line_errors
def gif(ckpt, frames=60, n=16, seed=0, fps=15, out=None, device="auto", raw=False):
    """Write an animated GIF: n samples whose z travel smoothly through the latent space and back."""
    check_positive(frames=frames, n=n)
    gen = Generator(ckpt, device, raw)
    path = gen.out_path(out, "walk.gif", (".gif",))
    keys = gen.noise(4 * n, seed).view(4, n, -1)  # a loop through 4 key points per sample
    nrow = max(1, int(round(n**0.5)))
    images = []
    for i in range(frames):
        pos = 4 * i / frames
        k, t = int(pos), torch.tensor(pos - int(pos))
        z = slerp(keys[k], keys[(k + 1) % 4], t.expand(n))
        grid = make_grid(gen(z), nrow=nrow, padding=2, normalize=True, value_range=gen.value_range)
        images.append(utils.to_uint8(grid[None], (0.0, 1.0))[0])
    utils.save_gif(images, path, fps=fps)
    return str(path)


@utils.one_line_errors
def export(ckpt, n=10000, out=None, seed=0, batch_size=500, device="auto", cat=None, raw=False):
    """Write n samples for FID tools: a folder of PNGs, or an .npz of one uint8 array.

    A folder of PNGs (pytorch-fid, torch-fidelity read it; the default, <run>/sampler/export/),
    or, when --out ends in .npz, one uint8 array `images` shaped (n, H, W, C). For a model with
    latent codes (infogan) the .npz also holds the codes that made each image (`cat`, `cont`),
    and --cat K makes every sample of category K."""
    check_positive(n=n, batch_size=batch_size)
    gen = Generator(ckpt, device, raw)
    codes = {}
    if gen.can("sample_codes"):
        n_cat = gen.cfg["n_cat"]
        if cat is not None and (not isinstance(cat, int) or isinstance(cat, bool) or not 0 <= cat < n_cat):
            utils.die(f"--cat {cat!r} is not a category of this model: it has categories 0 to {n_cat - 1}")
        z, codes = gen.script.sample_codes(gen.cfg, n, generator=torch.Generator().manual_seed(seed), cat=cat)
    elif cat is not None:
        utils.die(f"--cat: {gen.name}.py checkpoints have no categorical code (only infogan's do)")
    else:
        z = gen.noise(n, seed)
    as_npz = str(out or "").endswith(".npz")
    path = gen.out_path(out, *(("samples.npz", (".npz",)) if as_npz else ("export", ())))
    images = utils.to_uint8(gen(z, batch_size), gen.value_range)
    if as_npz:
        np.savez_compressed(path, images=images, **{name: code.numpy() for name, code in codes.items()})
    else:
        for i, image in enumerate(images):
            Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(path / f"{i:06d}.png")
    return f"{n} samples -> {path}"


@utils.one_line_errors
def traverse(ckpt, code=None, range=2.0, steps=10, seed=0, out=None, device="auto", raw=False):
    """For a model with latent codes (infogan): a grid per continuous code, swept along each row.

    One grid per continuous code (or only --code K, counted from 1), written to the folder --out,
    one row per category, the code swept from -range to +range along each row in `steps` images,
    the noise (drawn with --seed) and the other codes fixed."""
    check_positive(steps=steps)
    gen = Generator(ckpt, device, raw)
    if not gen.can("grid_input", "sample_latent"):
        utils.die(f"traverse: {gen.name}.py checkpoints have no latent codes to traverse (infogan's do)")
    n_cont = gen.cfg["n_cont"]
    if code is not None and (not isinstance(code, int) or isinstance(code, bool) or not 1 <= code <= n_cont):
        utils.die(f"--code {code!r} is not a continuous code of this model: it has codes 1 to {n_cont}")
    if not isinstance(range, (int, float)) or isinstance(range, bool) or not range > 0:
        utils.die(f"--range must be a positive number, got {range!r}")
    folder = gen.out_path(out, "traverse")
    noise = gen.script.sample_latent(gen.cfg, 1, generator=torch.Generator().manual_seed(seed))[0]
    written = []
    codes = [code - 1] if code is not None else torch.arange(n_cont).tolist()  # `range` is the flag here
    for j in codes:
        z, cols = gen.script.grid_input(gen.cfg, noise, j, -float(range), float(range), steps)
        written.append(folder / f"traverse_c{j + 1}.png")
        utils.save_grid(gen(z), written[-1], nrow=cols, value_range=gen.value_range)
    return " ".join(map(str, written))


@utils.one_line_errors
def encode(ckpt, images=None, out=None, batch_size=500, device="auto"):
    """For a model with an encoder (bigan): write E's features of --images to an .npz.

    --images: a folder, an image file, or an .npz in export's layout. --out (an .npz) holds one
    (N, dim) array per representation the encoder gives (bigan: `code` = E(x), `hidden` = its
    last hidden layer), the images' `names`, and the input's `labels` when it has them."""
    check_positive(batch_size=batch_size)
    model = Model(ckpt, device)
    if not model.can("build_encoder"):
        utils.die(f"encode: {model.name}.py checkpoints have no encoder (bigan's do)")
    if images is None:
        utils.die("encode needs --images DIR|FILE.npz (the images to encode)")
    x, names, labels = read_images(images, model.cfg["image_size"], model.cfg["channels"])
    path = model.out_path(out, "features.npz", (".npz",))
    E = model.module("build_encoder", "E")
    with torch.no_grad():
        parts = [E.features(model.to_model_range(chunk)) for chunk in x.split(batch_size)]
    features = {k: torch.cat([p[k] for p in parts]).float().cpu().numpy() for k in parts[0]}
    np.savez_compressed(path, **features, names=np.array(names), **({} if labels is None else {"labels": labels}))
    return f"{len(x)} images -> {path} ({', '.join(f'{k} {v.shape}' for k, v in features.items())})"


@utils.one_line_errors
def reconstruct(ckpt, images=None, n=32, out=None, device="auto", raw=False):
    """For a model with an encoder (bigan): write a grid of images x beside G(E(x)).

    In pairs of columns. The images: the first n of --images (a folder, an image file or an
    .npz), or by default the first n held-out images of the run's own data set."""
    check_positive(n=n)
    model = Model(ckpt, device)
    if not model.can("build_encoder", "build_generator"):
        utils.die(f"reconstruct: {model.name}.py checkpoints have no encoder (bigan's do)")
    if images is None and not model.can("held_out_images"):
        utils.die(f"reconstruct: {model.name}.py names no held-out images; give --images DIR|FILE.npz")
    if images is None:
        x = model.script.held_out_images(model.cfg, n)[0]
    else:
        x = read_images(images, model.cfg["image_size"], model.cfg["channels"])[0][:n]
    path = model.out_path(out, "reconstructions.png", GRID_SUFFIXES)
    G, E = model.generator(raw), model.module("build_encoder", "E")
    with torch.no_grad():
        real = model.to_model_range(x)
        pairs = torch.stack([real, G(E(real))], dim=1).flatten(0, 1).float().cpu()
    utils.save_grid(pairs, path, nrow=16, value_range=model.value_range)
    return str(path)


@utils.one_line_errors
def translate(ckpt, input=None, direction="a2b", out=None, cycle=False, batch_size=100, device="auto"):
    """For a translation model (cyclegan): translate every image of --input, one PNG each.

    --input: a folder, an image file, or an .npz in export's layout. Each image is translated in
    --direction and written under the same name in the folder --out (default
    <run>/sampler/translate_<direction>/); --cycle also writes the round trip (translated there
    and back) under --out/cycle/, same names again."""
    check_positive(batch_size=batch_size)
    model = Model(ckpt, device)
    if not model.can("TRANSLATIONS", "build_translator"):
        utils.die(f"translate: {model.name}.py checkpoints are not translation models (cyclegan's are)")
    directions = model.script.TRANSLATIONS
    if direction not in directions:
        utils.die(f"--direction must be one of {', '.join(directions)}, got {direction!r}")
    if input is None:
        utils.die("translate needs --input DIR|FILE.npz (the images to translate)")
    fit = model.can("fit_images") and (lambda images: model.script.fit_images(model.cfg, images))
    x, names, _ = read_images(input, model.cfg["image_size"], model.cfg["channels"], fit=fit or None, flag="--input")
    folder = model.out_path(out, f"translate_{direction}")
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


# the score command's logic and metrics live in scores.py; this is the entry users type (`sampler.py score ...`)
COMMANDS = {f.__name__: f for f in (sample, interpolate, gif, export, traverse, encode, reconstruct, translate, score)}


def usage(command=None):
    """--help: the commands, one line each; or one command's text and its flags with their defaults."""
    if command is None:
        return "\n".join(
            [
                "usage: sampler.py COMMAND --ckpt PATH [--FLAG VALUE ...]    (sampler.py --ckpt PATH ... = sample)",
                "",
                *(f"  {name:<12} {inspect.getdoc(fn).splitlines()[0]}" for name, fn in COMMANDS.items()),
                "",
                "--ckpt PATH: a checkpoint (.pt), or a run folder or its checkpoints/ folder (for its last.pt)",
                "sampler.py COMMAND --help: the command's flags and their defaults",
            ]
        )
    flags = [
        f"  --{p.name.replace('_', '-') + (f' / --no-{p.name}' if p.default is False else ''):<20} "
        + ("required" if p.default is p.empty else "optional" if p.default is None else f"default {p.default}")
        for p in inspect.signature(COMMANDS[command]).parameters.values()
    ]
    text = inspect.getdoc(COMMANDS[command])
    return "\n".join([f"usage: sampler.py {command} --ckpt PATH [--FLAG VALUE ...]", "", text, "", "flags:", *flags])


def _is_flag(token):
    return token.startswith("--") or re.match("-[a-zA-Z]", token) is not None  # as Fire reads them: -2 is a value


def parse_flags(command, args):
    """The command's arguments checked against its signature before anything runs, read as Fire
    reads them (--name VALUE, --name=VALUE, a switch alone or --no-name / --noname, hyphens or
    underscores; the checkpoint may stand alone). A flag the command lacks (named with the closest
    one it has), one given twice or without its value, a stray value or no --ckpt end in one
    line. Returns Fire's argv, each value as --name=VALUE."""
    parameters = inspect.signature(COMMANDS[command]).parameters
    switches = {name for name, p in parameters.items() if isinstance(p.default, bool)}
    dashed = lambda name: "--" + name.replace("_", "-")
    given, positional, i = {}, [], 0
    while i < len(args):
        token, i = args[i], i + 1
        if not _is_flag(token):
            positional.append(token)
            continue
        key, equals, value = token.lstrip("-").partition("=")
        name = key.replace("-", "_")
        alone = not equals and (i == len(args) or _is_flag(args[i]))  # Fire: a flag alone sets True
        if name not in parameters and alone and name[2:].lstrip("_") in switches:
            name, value = name[2:].lstrip("_"), "False"
        if name not in parameters:
            close = difflib.get_close_matches(name, parameters, n=1, cutoff=0.5)
            hint = f"did you mean {dashed(close[0])}?" if close else "its flags: " + ", ".join(map(dashed, parameters))
            utils.die(f"{command} has no flag {token.partition('=')[0]}; {hint}")
        if name in given:
            utils.die(f"{dashed(name)} is given twice")
        if alone and name not in switches:
            utils.die(f"{dashed(name)} needs a value: {dashed(name)} VALUE")
        if not equals and not alone:
            value, i = args[i], i + 1
        if name in switches and (value or "true").lower() not in ("true", "false"):
            utils.die(f"{dashed(name)} is a switch: give {dashed(name)} or --no-{dashed(name)[2:]}, not {value!r}")
        given[name] = str((value or "true").lower() == "true") if name in switches else value
    free = [name for name, p in parameters.items() if p.default is p.empty and name not in given]  # --ckpt
    if len(positional) > len(free):
        utils.die(f"{command}: unexpected {positional[len(free)]!r}; each value goes after its flag (--name VALUE)")
    given |= dict(zip(free, positional))
    for name in (name for name, p in parameters.items() if p.default is p.empty and name not in given):
        utils.die(f"{command} needs {dashed(name)} (sampler.py {command} --help lists its flags)")
    return [command, *(f"--{name}={value}" for name, value in given.items())]


def main(argv=None):
    """The command line: Fire runs the command once parse_flags has checked every argument."""
    import fire

    args = list(sys.argv[1:] if argv is None else argv)
    if args and _is_flag(args[0]) and args[0] not in ("-h", "--help"):
        args = ["sample", *args]  # `python sampler.py --ckpt PATH` writes a grid
    if not args or args[0] in ("-h", "--help"):
        print(usage())
    elif args[0] not in COMMANDS:
        close = difflib.get_close_matches(args[0], COMMANDS, n=1)
        utils.die(
            f"unknown command {args[0]!r}{f'; did you mean {close[0]}?' if close else ''} "
            f"(the commands: {', '.join(COMMANDS)}; see --help)"
        )
    elif "-h" in args or "--help" in args:
        print(usage(args[0]))
    else:
        fire.Fire(COMMANDS, command=parse_flags(args[0], args[1:]), name="sampler.py")


if __name__ == "__main__":
    main()
