"""The smallest GAN that works: Goodfellow et al. 2014, "Generative Adversarial Nets" (arXiv:1406.2661).

A generator G maps noise z ~ uniform[-1, 1] to a sample; a discriminator D outputs a logit saying "real".
D minimises the usual binary cross-entropy, real samples labelled 1 and G's samples 0. G has a choice
of two objectives (--loss), with the same fixed point, p_G = p_data:
  minimax          the game as the paper writes it: G minimises log(1 - D(G(z))). The gradient per
                   sample is proportional to D(G(z)): while D rejects G's samples with confidence
                   (early on, when G is poor), G learns next to nothing.
  non-saturating   the paper's advice for practice, and the default: G maximises log D(G(z)). The
                   gradient is largest exactly when D wins, so G moves from the first step.
Both nets are MLPs with LeakyReLU(0.2) and PyTorch's default initialisation, trained with Adam,
betas 0.5/0.999 as in DCGAN (Radford et al. 2015). The 2014 paper's own MNIST model (maxout,
SGD with momentum) is gan_maxout.py's job.

Data (--dataset):
  1d      no download: --points drawn once (the seed fixes them) from a mixture of two Gaussians,
          means -0.75 and +0.75, std 0.05, weights 0.3 and 0.7. G's first samples fall between the
          modes, where D can learn to reject them. G, D: 2 hidden layers of 32; z: 4 numbers; Adam lr 1e-3.
          Every log row also says how many of the 2 modes G covers and the weight it gives each.
  mnist, fashion-mnist
          G: z (100) -> 256 -> 512 -> 1024 -> 784, tanh, as a 1x28x28 image (--batchnorm adds batch
          norm to G's hidden layers); D: 784 -> 512 -> 256 -> 1; Adam lr 2e-4 (DCGAN's).

What the 1d runs show (the defaults: 25 epochs, seed 0; the numbers are from losses.csv):
  python gan_mlp.py                         non-saturating: G reaches both modes, then drains the
                                            light one (its weight is 0.15 at step 100, 0 from step 2000):
                                            this loss behaves like a reverse KL, which seeks modes
                                            (Arjovsky & Bottou 2017)
  python gan_mlp.py --loss minimax          minimax: both modes, weights 0.27 / 0.69 at the end
  python gan_mlp.py --lr-g 1e-4 --lr-d 1e-2 --loss minimax
                                            D learns 100x faster and wins at once: D(G(z)) ~ 1e-5,
                                            G's gradient ~ 1e-3, G sits between the modes for
                                            ~1700 steps (how long depends on the seed). With
                                            --loss non-saturating, G escapes within 150 steps.
Other runs:
  python gan_mlp.py --dataset mnist --epochs 50 --batchnorm    # downloaded to ./data if it can be
  python gan_mlp.py --resume runs/gan_mlp/<name>/checkpoints/last.pt --epochs 80
  python sampler.py --ckpt runs/gan_mlp/<mnist-name>/checkpoints/last.pt

Writes, under runs/gan_mlp/<dataset>-<time>/ (or --out):
  plots/epoch_001.png ...     1d: real and generated histograms and D(x), after every epoch
  samples/epoch_001.png ...   images: a grid from the same fixed noise after every epoch
  progress.gif                those pictures as one animation
  losses.csv, losses.png      D and G losses, D(x) and D(G(z)), the norm of G's gradient, samples/s;
                              1d also the modes covered and the weight G gives each
  checkpoints/last.pt         after every epoch and on Ctrl-C; epoch_XXX.pt every --save-every

The GAN, in plain PyTorch, is everything above the line "# ==== the run": copy it alone and
drive it from your own loop. Below that line: flags, resume, outputs.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.utils import save_image

# --------------------------------------------------------------------------- hyper-parameters
# What differs between the two kinds of data: "1d" for the mixture, "images" for mnist and fashion-mnist.
PRESETS = {
    "1d": dict(image_size=None, z_dim=4, g_hidden=[32, 32], d_hidden=[32, 32], lr_g=1e-3, lr_d=1e-3),
    "images": dict(image_size=28, z_dim=100, g_hidden=[256, 512, 1024], d_hidden=[512, 256], lr_g=2e-4, lr_d=2e-4),
}
# The values both kinds share, with the images preset's: a config for 28x28 grey images, while
# dict(HPARAMS, **PRESETS["1d"]) is one for the mixture. A run's flags default to them; those of a preset's
# keys, left unset, take the preset of the run's data set.
HPARAMS = dict(
    loss="non-saturating",  # G maximises log D(G(z)), the paper's advice; "minimax": G minimises log(1 - D(G(z)))
    batchnorm=False,  # not in the paper: batch norm after each of G's hidden layers
    batch_size=128,
    beta1=0.5,  # Adam's momentum, DCGAN's: it damps the oscillation 0.9 shows
    beta2=0.999,
    epochs=25,
    ema=0.999,  # not in the paper: sample from an average of G's weights (0: from G itself); measured better here
    **PRESETS["images"],  # image_size 28: samples are 1 x 28 x 28 images; None (1d): single numbers
)
VALUE_RANGE = (-1.0, 1.0)  # G ends in tanh; data are scaled to match


# --------------------------------------------------------------------------- models
def mlp(widths, batchnorm=False):
    """Linear layers through the given widths; each hidden layer is followed by (batch norm and) LeakyReLU(0.2)."""
    layers = []
    for n_in, n_out in zip(widths[:-2], widths[1:-1]):  # state size: n_out, one hidden layer after another
        layers += [nn.Linear(n_in, n_out), *([nn.BatchNorm1d(n_out)] if batchnorm else []), nn.LeakyReLU(0.2, True)]
    return layers + [nn.Linear(widths[-2], widths[-1])]  # state size: widths[-1], no activation


def sample_shape(cfg):
    return (1, cfg["image_size"], cfg["image_size"]) if cfg["image_size"] else (1,)


class Generator(nn.Module):
    """z -> hidden layers -> one value per pixel (or the one coordinate), tanh, shaped like a sample."""

    def __init__(self, z_dim, hidden, shape, batchnorm):
        super().__init__()
        # fmt: off
        self.net = nn.Sequential(
            *mlp([z_dim, *hidden, math.prod(shape)], batchnorm), nn.Tanh(),  # 784 in [-1, 1] (or 1)
            nn.Unflatten(1, shape),                                          # 1 x 28 x 28 (or 1)
        )
        # fmt: on

    def forward(self, z):
        return self.net(z)


class Discriminator(nn.Module):
    """A sample, flattened -> hidden layers -> one logit."""

    def __init__(self, hidden, shape):
        super().__init__()
        # fmt: off
        self.net = nn.Sequential(
            nn.Flatten(),                             # 784 (or 1)
            *mlp([math.prod(shape), *hidden, 1]),     # 1: the logit
        )
        # fmt: on

    def forward(self, x):
        return self.net(x).view(-1)


def build_generator(cfg):
    """G for a config (HPARAMS, or a run's flags); the sampler rebuilds G through this."""
    return Generator(cfg["z_dim"], cfg["g_hidden"], sample_shape(cfg), cfg["batchnorm"])


def build_discriminator(cfg):
    return Discriminator(cfg["d_hidden"], sample_shape(cfg))


def build_optimizers(cfg, G, D):
    """Adam for each net, with its own learning rate. fused: one kernel per step instead of a loop of small ops."""
    betas = (cfg["beta1"], cfg["beta2"])
    return (
        torch.optim.Adam(G.parameters(), lr=cfg["lr_g"], betas=betas, fused=True),
        torch.optim.Adam(D.parameters(), lr=cfg["lr_d"], betas=betas, fused=True),
    )


def sample_noise(cfg, n, device="cpu", generator=None):
    """n noise vectors z, shaped (n, z_dim), uniform in [-1, 1]."""
    return torch.rand(n, cfg["z_dim"], device=device, generator=generator) * 2 - 1


# --------------------------------------------------------------------------- an average of G
def ema_decay(decay, step):
    """The average's decay after `step` steps: `decay`, but less at first, (1 + step) / (10 + step),
    so that the first steps' weights, far from any good ones, are soon forgotten."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(G_ema, G, decay):
    """From practice, not the paper (Yazici et al. 2019, "The Unusual Effectiveness of Averaging in
    GAN Training"): G_ema's weights follow G's as an exponential moving average, w_ema <- decay w_ema
    + (1 - decay) w, smoothing the oscillation of G's weights around a good point; samples are drawn
    from G_ema. Batch norm's running statistics are averaged alike, its step counter copied."""
    for ema, now in zip(G_ema.state_dict().values(), G.state_dict().values()):
        if ema.is_floating_point():
            ema.lerp_(now, 1 - decay)
        else:
            ema.copy_(now)


# --------------------------------------------------------------------------- data
# the 1d data: a mixture of two well separated Gaussians with unequal weights, inside [-1, 1]
MIXTURE_MEANS = (-0.75, 0.75)
MIXTURE_STD = 0.05
MIXTURE_WEIGHTS = (0.3, 0.7)


def sample_mixture(n, generator=None):
    """n points (n, 1) from the 1-D mixture of Gaussians."""
    mode = torch.multinomial(torch.tensor(MIXTURE_WEIGHTS), n, replacement=True, generator=generator)
    x = torch.tensor(MIXTURE_MEANS)[mode] + MIXTURE_STD * torch.randn(n, generator=generator)
    return x.clamp(-1, 1).unsqueeze(1)


def epoch_batches(data, cfg, epoch, start_batch, device):
    """Yield the batches of one epoch, in [-1, 1], on `device`, from batch `start_batch` on.

    `data` is one tensor on the device: uint8 images (N, 1, 28, 28), scaled here, or float
    points (N, 1), as they are. The order is a permutation seeded by (seed, epoch), so a resumed
    run sees the very batches the interrupted run would have. The last incomplete batch is dropped.
    """
    bs = cfg["batch_size"]
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg["seed"] * 100_003 + epoch))
    for idx in order[start_batch * bs : len(data) // bs * bs].to(device).split(bs):
        yield data[idx].float().div_(127.5).sub_(1.0) if data.dtype == torch.uint8 else data[idx]


# --------------------------------------------------------------------------- training step
def generator_loss(fake_logits, loss):
    """G's loss given D's logits on G's samples.

    minimax:        log(1 - D(G(z))), i.e. minus D's loss on the fakes. Its gradient with respect
                    to a logit is -D(G(z)): nothing to learn from samples D rejects.
    non-saturating: -log D(G(z)), D's loss had the fakes been labelled real. Its gradient is
                    -(1 - D(G(z))): largest for the samples D rejects.
    """
    if loss == "minimax":
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def train_step(G, D, opt_g, opt_d, real, z, loss="non-saturating", amp=None, scalers=None):
    """One D update then one G update. Returns detached [d_loss, g_loss, D(x), D(G(z)), |grad of G|].
    amp: None (fp32), "bf16" or "fp16", autocast's type for the forward passes. fp16 needs `scalers`,
    a torch.amp.GradScaler for D's optimizer and one for G's: each loss is multiplied by its scale
    before backward, so that gradients too small for fp16 do not flush to zero; step() unscales the
    gradients and skips a step whose gradients overflowed; update() adapts the scale."""
    scaler_d, scaler_g = scalers or [torch.amp.GradScaler(enabled=False)] * 2  # disabled: no scaling at all
    autocast = torch.autocast(
        real.device.type, dtype=torch.float16 if amp == "fp16" else torch.bfloat16, enabled=bool(amp)
    )

    # (1) D: maximise log D(x) + log(1 - D(G(z))): push D(x) up to 1 and D(G(z)) down to 0
    with autocast:
        fake = G(z)
        d_real_logits = D(real)
        d_fake_logits = D(fake.detach())  # no gradient into G from D's update
        d_loss_real = F.binary_cross_entropy_with_logits(d_real_logits, torch.ones_like(d_real_logits))
        d_loss_fake = F.binary_cross_entropy_with_logits(d_fake_logits, torch.zeros_like(d_fake_logits))
        d_loss = d_loss_real + d_loss_fake
    opt_d.zero_grad(set_to_none=True)
    scaler_d.scale(d_loss).backward()
    scaler_d.step(opt_d)  # the gradients unscaled first; with fp16, no step if any overflowed
    scaler_d.update()

    # (2) G: minimise log(1 - D(G(z))) (minimax) or maximise log D(G(z)) (non-saturating), through the new D
    D.requires_grad_(False)  # G's step needs gradients w.r.t. the samples, not D's weights
    with autocast:
        g_loss = generator_loss(D(fake), loss)
    opt_g.zero_grad(set_to_none=True)
    scaler_g.scale(g_loss).backward()
    scaler_g.unscale_(opt_g)  # G's true gradients, for their norm
    g_grad = torch.stack([p.grad.norm() for p in G.parameters()]).norm()  # ~0 when G's loss saturates
    scaler_g.step(opt_g)
    scaler_g.update()
    D.requires_grad_(True)

    d_real, d_fake = torch.sigmoid(d_real_logits).mean(), torch.sigmoid(d_fake_logits).mean()
    return torch.stack([d_loss, g_loss, d_real, d_fake, g_grad]).detach().float()


# --------------------------------------------------------------------------- samples
@torch.no_grad()
def generate(G, z):
    """G(z) as floats, with batch norm's running statistics, so a sample does not depend on its batch."""
    G.eval()
    samples = G(z).float()
    G.train()
    return samples


def save_samples(G, fixed_noise, path, nrow=8):
    """One PNG grid of G(fixed_noise): the same z every epoch, so the grids show G's progress."""
    save_image(generate(G, fixed_noise).cpu(), path, nrow=nrow, normalize=True, value_range=VALUE_RANGE)


# ==== the run: flags, resume, outputs (utils.py) ========================================================
import copy  # noqa: E402
from pathlib import Path  # noqa: E402

import utils  # noqa: E402

SCRIPT = "gan_mlp"
SNAPSHOT = ("G", "G_ema")  # what checkpoints/epoch_XXX.pt keep: the nets that sample and score
LOSS_COLUMNS = ["d_loss", "g_loss", "d_real", "d_fake", "g_grad"]  # what train_step returns
STATUS = "D {d_loss:.3f} G {g_loss:.3f} D(x) {d_real:.2f} D(G(z)) {d_fake:.2f} |grad G| {g_grad:.2g}"  # progress bar
PLOTS = {"losses": ["d_loss", "g_loss"], "D's outputs": ["d_real", "d_fake"], "|grad G|": ["g_grad"]}  # losses.png
SAMPLE_SIZE = {"1d": 10_000, "images": 64}  # fixed noise: points for the histograms and the mode count; a grid

# 1d: G's samples against the mixture's modes, logged with the losses
COVERED = 0.1  # a mode is covered if it holds at least this fraction of its true weight
MODE_COLUMNS = ["modes_covered"] + [f"mode{i + 1}_weight" for i in range(len(MIXTURE_MEANS))]
MODE_PLOTS = {"G's weight on each mode": MODE_COLUMNS[1:]}


def build_parser():
    p = utils.ArgumentParser(
        description="The original GAN (Goodfellow et al. 2014) with MLPs, "
        "on a 1-D Gaussian mixture, MNIST or Fashion-MNIST."
    )
    data = p.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default="1d",
        choices=["1d", "mnist", "fashion-mnist"],
        help="a 1-D mixture of two Gaussians, or images downloaded into --data-root if missing",
    )
    data.add_argument("--data-root", default="./data", help="where torchvision data sets live or are downloaded to")
    data.add_argument(
        "--train-range",
        type=utils.data_range,
        help="with mnist/fashion-mnist: the images trained on, e.g. train:0:50000 so that train:50000:60000 "
        "stays held out for sampler.py score --images (default: the whole training file)",
    )
    data.add_argument(
        "--points",
        type=utils.positive_int,
        default=20_000,
        help="with --dataset 1d: training points, drawn from the mixture once at the start",
    )

    h, one_d, images = HPARAMS, PRESETS["1d"], PRESETS["images"]

    def per_data(name):  # the help's words for a flag whose default depends on the data set
        shown = [" ".join(map(str, v)) if isinstance(v, list) else v for v in (one_d[name], images[name])]
        return f"(default {shown[0]} for 1d, {shown[1]} for images)"

    model = p.add_argument_group("model")
    model.add_argument("--z-dim", type=utils.positive_int, help=f"size of the noise vector z {per_data('z_dim')}")
    model.add_argument(
        "--g-hidden", type=utils.positive_int, nargs="+", help=f"widths of G's hidden layers {per_data('g_hidden')}"
    )
    model.add_argument(
        "--d-hidden", type=utils.positive_int, nargs="+", help=f"widths of D's hidden layers {per_data('d_hidden')}"
    )
    model.add_argument("--batchnorm", action="store_true", help="batch norm after each of G's hidden layers")

    optim = p.add_argument_group("optimisation")
    optim.add_argument(
        "--loss",
        default=h["loss"],
        choices=["non-saturating", "minimax"],
        help="G maximises log D(G(z)) (the paper's advice) or minimises log(1 - D(G(z))) (the game as written)",
    )
    optim.add_argument("--epochs", type=utils.positive_int, default=h["epochs"], help="passes over the training data")
    optim.add_argument("--batch-size", type=utils.positive_int, default=h["batch_size"], help="samples per step")
    optim.add_argument(
        "--lr-g",
        type=utils.positive_float,
        help=f"Adam learning rate of G {per_data('lr_g')}: Adam's own for 1d, DCGAN's for images",
    )
    optim.add_argument(
        "--lr-d",
        type=utils.positive_float,
        help=f"Adam learning rate of D {per_data('lr_d')}; a much larger one than G's lets D win early",
    )
    optim.add_argument("--beta1", type=float, default=h["beta1"], help="Adam beta1 (DCGAN's value: 0.9 oscillates)")
    optim.add_argument("--beta2", type=float, default=h["beta2"], help="Adam beta2")
    optim.add_argument(
        "--steps",
        type=utils.positive_int,
        help="stop after this many optimizer steps in total (for smoke tests and benchmarks)",
    )

    run = utils.add_run_flags(p, SCRIPT, ema=HPARAMS["ema"])
    run.add_argument(
        "--sample-size",
        type=utils.positive_int,
        help="fixed noise vectors drawn for the per-epoch pictures and the mode count "
        f"(default {SAMPLE_SIZE['1d']} points for 1d, a grid of {SAMPLE_SIZE['images']} images)",
    )
    return p


# flags that may change when a run is resumed; everything else must match the checkpoint (one process: no --sync-bn)
RESUMABLE = (utils.RESUMABLE_RUN_FLAGS - {"sync_bn"}) | {"epochs", "steps", "data_root"}


def configure(cfg):
    """A new run's config: its data set's preset fills the flags left unset (and sets image_size, no flag's)."""
    kind = "1d" if cfg["dataset"] == "1d" else "images"
    for name, value in PRESETS[kind].items():
        cfg[name] = cfg.get(name) or value
    cfg["sample_size"] = cfg["sample_size"] or SAMPLE_SIZE[kind]


def check_flags(cfg):
    for beta in ("beta1", "beta2"):
        if not 0 <= cfg[beta] < 1:
            utils.die(f"--{beta} must be in [0, 1), got {cfg[beta]}")
    if cfg["dataset"] == "1d" and cfg.get("train_range"):
        utils.die("--train-range picks images of mnist or fashion-mnist; --dataset 1d draws --points instead")


def load_data(cfg, device):
    """All training samples as one tensor on `device`: float points (N, 1), or uint8 images (N, 1, 28, 28)."""
    if cfg["dataset"] == "1d":
        return sample_mixture(cfg["points"], torch.Generator().manual_seed(cfg["seed"])).to(device)
    return utils.load_mnist_range(cfg, "train_range", device)[0]


def mode_weights(x):
    """The fraction of the points x (N, 1) lying within 3 std of each mode of the mixture, as a tensor.
    For the real data these are the mixture weights (less 0.3% in the tails)."""
    return ((x.view(-1, 1) - torch.tensor(MIXTURE_MEANS, device=x.device)).abs() <= 3 * MIXTURE_STD).float().mean(0)


def modes_covered(weights):
    """How many modes hold at least COVERED of their true weight: fewer than all is mode collapse."""
    return sum(w >= COVERED * true for w, true in zip(weights, MIXTURE_WEIGHTS))


def describe_modes(weights):
    """'1/2 modes, weights 0.00 0.97 (true 0.30 0.70)'"""

    def listed(values):
        return " ".join(f"{v:.2f}" for v in values)

    return f"{modes_covered(weights)}/{len(weights)} modes, weights {listed(weights)} (true {listed(MIXTURE_WEIGHTS)})"


def mode_stats(x):
    """The MODE_COLUMNS of a log row for samples x, as 0-d tensors on x's device."""
    weights = mode_weights(x)
    covered = (weights >= COVERED * torch.tensor(MIXTURE_WEIGHTS, device=x.device)).sum()
    return dict(zip(MODE_COLUMNS, [covered, *weights]))


def status_with_modes(row):
    """The progress bar's text for a 1d log row: the losses, then the modes G covers."""
    return STATUS.format(**row) + ", " + describe_modes([row[c] for c in MODE_COLUMNS[1:]])


@torch.no_grad()
def plot_1d(real, fake, D, path, title):
    """Histograms of the real and the generated points, and D(x) along [-1, 1], in one picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = torch.linspace(-1, 1, 401, device=real.device)
    d_of_x = torch.sigmoid(D(xs.view(-1, 1)).float())
    fig, ax = plt.subplots(figsize=(8, 3.5))
    histogram = dict(bins=80, range=(-1, 1), density=True, alpha=0.5)
    real_density, *_ = ax.hist(real.view(-1).cpu().numpy(), label="real", **histogram)
    fake_density, *_ = ax.hist(fake.view(-1).cpu().numpy(), label="G(z)", **histogram)
    # the y axis fits both histograms: a collapsed G is a peak far above the data's, and that is the point
    top = 1.05 * max(real_density.max(), fake_density.max())
    ax.set(xlim=(-1, 1), ylim=(0, top), xlabel="x", ylabel="density", title=title)
    d_axis = ax.twinx()  # D's output is a probability: its own axis, fixed to [0, 1]
    d_axis.plot(xs.cpu().numpy(), d_of_x.cpu().numpy(), color="k", linewidth=1, label="D(x)")
    d_axis.set(ylim=(0, 1), ylabel="D(x)")
    handles = ax.get_legend_handles_labels()[0] + d_axis.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="center right", frameon=False)  # beside the axes, covering no curve
    fig.tight_layout(rect=(0, 0, 0.87, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)  # no bbox_inches="tight": every frame of the GIF has the same size
    plt.close(fig)


def save_picture(cfg, G, D, data, fixed_noise, path, epoch):
    """An epoch's picture: 1d, the histograms and D(x); images, the grid of G(fixed_noise)."""
    if cfg["dataset"] != "1d":
        return save_samples(G, fixed_noise, path)
    fake = generate(G, fixed_noise)
    plot_1d(data, fake, D, path, f"{cfg['loss']}, epoch {epoch}: {describe_modes(mode_weights(fake).tolist())}")


@utils.one_line_errors
def main(argv=None):
    cfg, ckpt = utils.parse_config(build_parser, argv, SCRIPT, RESUMABLE)
    if not ckpt:
        configure(cfg)
    check_flags(cfg)
    one_d = cfg["dataset"] == "1d"
    device = utils.pick_device(cfg["device"])
    utils.seed_everything(cfg["seed"])
    utils.cuda_kernels(cfg["deterministic"])  # on CUDA: autotuned cuDNN and TF32, or --deterministic kernels
    data = load_data(cfg, device)
    steps_per_epoch = len(data) // cfg["batch_size"]
    if steps_per_epoch == 0:
        utils.die(f"--batch-size {cfg['batch_size']} is larger than the data set ({len(data)} samples)")
    frames = "plots" if one_d else "samples"
    G, D = utils.build_models(cfg, device, build_generator, build_discriminator)
    run_dir = utils.make_run_dir(SCRIPT, cfg, subdirs=(frames, "checkpoints"))  # only once flags, data, models are good

    opt_g, opt_d = build_optimizers(cfg, G, D)
    G_ema = copy.deepcopy(G).requires_grad_(False) if cfg["ema"] else None  # the average samples come from
    models, optimizers = {"G": G, "D": D} | ({"G_ema": G_ema} if cfg["ema"] else {}), {"G": opt_g, "D": opt_d}
    scalers = {name: torch.amp.GradScaler(device.type, enabled=cfg["amp"] == "fp16") for name in optimizers}
    fixed_noise = sample_noise(cfg, cfg["sample_size"], device)
    epoch, epoch_step, step = 0, 0, 0  # epoch in progress, batches done in it, optimizer steps in all
    if ckpt:
        utils.restore_training_state(ckpt, models, optimizers, scalers=scalers)
        fixed_noise = ckpt["fixed_noise"].to(device)
        epoch, epoch_step, step = ckpt["epoch"], ckpt["epoch_step"], ckpt["step"]
    # the compiled modules share their parameters with G and D, which are what checkpoints save
    G_train, D_train = (torch.compile(m, mode=cfg["compile"]) for m in (G, D)) if cfg["compile"] else (G, D)
    total_steps = min(cfg["steps"] or math.inf, cfg["epochs"] * steps_per_epoch)
    utils.refuse_finished(cfg, step, total_steps)  # a resumed run asked for no more steps
    # 1d: where G's fixed-noise samples fall, computed on the device and read back with the losses
    modes = dict(extra_columns=MODE_COLUMNS, extra=lambda: mode_stats(generate(G, fixed_noise))) if one_d else {}
    log = utils.TrainingLog(run_dir, LOSS_COLUMNS, cfg, status=status_with_modes if one_d else STATUS,
                            plots=PLOTS | (MODE_PLOTS if one_d else {}),
                            images_per_step=cfg["batch_size"], rate="samples_per_s", total_steps=total_steps,
                            step=step, **modes)  # fmt: skip

    def checkpoint(name, keep=None):
        path = run_dir / "checkpoints" / name
        progress = dict(epoch=epoch, epoch_step=epoch_step, step=step, fixed_noise=fixed_noise)
        utils.save_training_state(path, SCRIPT, cfg, models, optimizers, scalers=scalers, keep=keep, **progress)
        return path

    print(f"gan_mlp: {len(data)} {cfg['dataset']} {'points' if one_d else 'images of 1x28x28'} on {device}, "
          f"{cfg['loss']} loss, {steps_per_epoch} steps/epoch, writing to {run_dir}")  # fmt: skip
    with utils.save_on_interrupt(log, lambda: checkpoint("last.pt")):
        while step < total_steps:
            for real in epoch_batches(data, cfg, epoch, epoch_step, device):
                z = sample_noise(cfg, real.shape[0], device)
                metrics = train_step(
                    G_train, D_train, opt_g, opt_d, real, z, cfg["loss"], cfg["amp"], (scalers["D"], scalers["G"])
                )
                step, epoch_step = step + 1, epoch_step + 1
                if cfg["ema"]:
                    update_ema(G_ema, G, ema_decay(cfg["ema"], step))
                log.add(metrics, step, epoch)
                if step >= total_steps:
                    break
            log.flush()
            picture = run_dir / frames / f"epoch_{epoch + 1:03d}.png"
            save_picture(cfg, G_ema or G, D, data, fixed_noise, picture, epoch + 1)  # what the sampler will draw
            utils.save_progress_gif(run_dir / frames, run_dir / "progress.gif")
            log.plot()
            if epoch_step == steps_per_epoch:  # a full epoch: the next one starts at its first batch
                epoch, epoch_step = epoch + 1, 0
                if epoch % cfg["save_every"] == 0:
                    checkpoint(f"epoch_{epoch:03d}.pt", keep=SNAPSHOT)
            checkpoint("last.pt")
    print(f"done: {utils.plural(step, 'step')}; {log.last_status}. "
          f"Pictures, progress.gif, losses.csv and checkpoints/last.pt in {run_dir}")  # fmt: skip
    return run_dir


if __name__ == "__main__":
    main()
