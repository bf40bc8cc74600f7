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
  losses.csv, losses.png      D and G losses, D(x), D(G(z)), the norm of G's gradient, samples/s;
                              1d also the modes covered and their weights
  checkpoints/last.pt         after every epoch and on Ctrl-C; epoch_XXX.pt every --save-every
"""

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import utils

SCRIPT = "gan_mlp"
VALUE_RANGE = (-1.0, 1.0)  # G ends in tanh; data are scaled to match
STEP_COLUMNS = ["d_loss", "g_loss", "d_real", "d_fake", "g_grad"]  # what train_step returns

# the 1d data: a mixture of two well separated Gaussians with unequal weights, inside [-1, 1]
MIXTURE_MEANS = (-0.75, 0.75)
MIXTURE_STD = 0.05
MIXTURE_WEIGHTS = (0.3, 0.7)
COVERED = 0.1  # a mode is covered if it holds at least this fraction of its true weight
MODE_COLUMNS = ["modes_covered"] + [f"mode{i + 1}_weight" for i in range(len(MIXTURE_MEANS))]

# defaults of the flags left at None, per kind of data
PRESETS = {
    "1d": dict(z_dim=4, g_hidden=[32, 32], d_hidden=[32, 32], lr_g=1e-3, lr_d=1e-3, sample_size=10_000),
    "images": dict(z_dim=100, g_hidden=[256, 512, 1024], d_hidden=[512, 256], lr_g=2e-4, lr_d=2e-4, sample_size=64),
}


# --------------------------------------------------------------------------- hyper-parameters
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
        default=None,
        help="with mnist/fashion-mnist: the images trained on, e.g. test:0:8000 so that test:8000:10000 "
        "stays held out for sampler.py score (default: the whole training file)",
    )
    data.add_argument(
        "--points",
        type=utils.positive_int,
        default=20_000,
        help="with --dataset 1d: training points, drawn from the mixture once at the start",
    )

    model = p.add_argument_group("model")
    model.add_argument(
        "--z-dim",
        type=utils.positive_int,
        default=None,
        help="size of the noise vector z (default 4 for 1d, 100 for images)",
    )
    model.add_argument(
        "--g-hidden",
        type=utils.positive_int,
        nargs="+",
        default=None,
        help="widths of G's hidden layers (default 32 32 for 1d, 256 512 1024 for images)",
    )
    model.add_argument(
        "--d-hidden",
        type=utils.positive_int,
        nargs="+",
        default=None,
        help="widths of D's hidden layers (default 32 32 for 1d, 512 256 for images)",
    )
    model.add_argument("--batchnorm", action="store_true", help="batch norm after each of G's hidden layers")

    optim = p.add_argument_group("optimisation")
    optim.add_argument(
        "--loss",
        default="non-saturating",
        choices=["non-saturating", "minimax"],
        help="G maximises log D(G(z)) (the paper's advice) or minimises log(1 - D(G(z))) (the game as written)",
    )
    optim.add_argument("--epochs", type=utils.positive_int, default=25, help="passes over the training data")
    optim.add_argument("--batch-size", type=utils.positive_int, default=128, help="samples per step")
    optim.add_argument(
        "--lr-g",
        type=utils.positive_float,
        default=None,
        help="Adam learning rate of G (default 1e-3, Adam's own, for 1d; 2e-4, DCGAN's, for images)",
    )
    optim.add_argument(
        "--lr-d",
        type=utils.positive_float,
        default=None,
        help="Adam learning rate of D (default as --lr-g); a much larger one lets D win early",
    )
    optim.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (0.5, as in DCGAN, damps oscillation)")
    optim.add_argument("--beta2", type=float, default=0.999, help="Adam beta2")
    optim.add_argument(
        "--steps",
        type=utils.positive_int,
        default=None,
        help="stop after this many optimizer steps in total (for smoke tests and benchmarks)",
    )

    run = utils.add_run_flags(p, SCRIPT)
    run.add_argument(
        "--sample-size",
        type=utils.positive_int,
        default=None,
        help="fixed noise vectors drawn for the per-epoch pictures and the mode count "
        "(default 10000 points for 1d, a grid of 64 images)",
    )
    return p


# flags that may change when a run is resumed; everything else must match the checkpoint
RESUMABLE = {"epochs", "steps", "device", "amp", "compile", "data_root", "save_every", "log_every"}


# --------------------------------------------------------------------------- models
def mlp(widths, batchnorm=False):
    """Linear layers through the given widths; each hidden layer is followed by (batch norm and) LeakyReLU(0.2)."""
    layers = []
    for n_in, n_out in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(n_in, n_out), *([nn.BatchNorm1d(n_out)] if batchnorm else []), nn.LeakyReLU(0.2, True)]
    return layers + [nn.Linear(widths[-2], widths[-1])]


def sample_shape(cfg):
    return (1, cfg["image_size"], cfg["image_size"]) if cfg["image_size"] else (1,)


class Generator(nn.Module):
    """z -> hidden layers -> one value per pixel (or the one coordinate), tanh, shaped like a sample."""

    def __init__(self, z_dim, hidden, shape, batchnorm):
        super().__init__()
        self.net = nn.Sequential(*mlp([z_dim, *hidden, math.prod(shape)], batchnorm), nn.Tanh(), nn.Unflatten(1, shape))

    def forward(self, z):
        return self.net(z)


class Discriminator(nn.Module):
    """A sample, flattened -> hidden layers -> one logit."""

    def __init__(self, hidden, shape):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), *mlp([math.prod(shape), *hidden, 1]))

    def forward(self, x):
        return self.net(x).view(-1)


def build_generator(cfg):
    """G for a run's config (a dict of the flags); the sampler rebuilds G through this."""
    return Generator(cfg["z_dim"], cfg["g_hidden"], sample_shape(cfg), cfg["batchnorm"])


def build_discriminator(cfg):
    return Discriminator(cfg["d_hidden"], sample_shape(cfg))


def sample_noise(cfg, n, device="cpu", generator=None):
    """n noise vectors z, shaped (n, z_dim), uniform in [-1, 1]."""
    return torch.rand(n, cfg["z_dim"], device=device, generator=generator) * 2 - 1


# --------------------------------------------------------------------------- data
def sample_mixture(n, generator=None):
    """n points (n, 1) from the 1-D mixture of Gaussians."""
    mode = torch.multinomial(torch.tensor(MIXTURE_WEIGHTS), n, replacement=True, generator=generator)
    x = torch.tensor(MIXTURE_MEANS)[mode] + MIXTURE_STD * torch.randn(n, generator=generator)
    return x.clamp(-1, 1).unsqueeze(1)


def load_data(cfg, device):
    """All training samples as one tensor on `device`: float points (N, 1), or uint8 images (N, 1, 28, 28)."""
    if cfg["dataset"] == "1d":
        if cfg.get("train_range"):
            utils.die("--train-range picks images of mnist or fashion-mnist; --dataset 1d draws --points instead")
        return sample_mixture(cfg["points"], torch.Generator().manual_seed(cfg["seed"])).to(device)
    return utils.load_mnist_range(cfg, "train_range", device)[0]


def epoch_batches(data, cfg, epoch, start_batch, device):
    """Yield the batches of one epoch, in [-1, 1], on `device`, from batch `start_batch` on.

    The order is a permutation seeded by (seed, epoch), so a resumed run sees the very
    batches the interrupted run would have. The last incomplete batch is dropped.
    """
    bs = cfg["batch_size"]
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg["seed"] * 100_003 + epoch))
    for idx in order[start_batch * bs : len(data) // bs * bs].to(device).split(bs):
        yield data[idx].float().div_(127.5).sub_(1.0) if data.dtype == torch.uint8 else data[idx]


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


def status_text(row):
    """The progress bar's text for a log row (a dict of the logged values)."""
    text = "D {d_loss:.3f} G {g_loss:.3f} D(x) {d_real:.2f} D(G(z)) {d_fake:.2f} |grad G| {g_grad:.2g}".format(**row)
    if "mode1_weight" in row:
        text += ", " + describe_modes([row[c] for c in MODE_COLUMNS[1:]])
    return text


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


def train_step(G, D, opt_g, opt_d, real, z, loss, amp):
    """One D update then one G update. Returns detached [d_loss, g_loss, D(x), D(G(z)), |grad of G|]."""
    autocast = torch.autocast(real.device.type, dtype=torch.bfloat16, enabled=amp)
    # D: push D(x) up to 1 and D(G(z)) down to 0
    with autocast:
        fake = G(z)
        d_real_logits = D(real)
        d_fake_logits = D(fake.detach())  # no gradient into G from D's update
        d_loss = F.binary_cross_entropy_with_logits(
            d_real_logits, torch.ones_like(d_real_logits)
        ) + F.binary_cross_entropy_with_logits(d_fake_logits, torch.zeros_like(d_fake_logits))
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()

    # G: through the freshly updated D
    D.requires_grad_(False)  # G's step needs gradients w.r.t. the samples, not D's weights
    with autocast:
        g_loss = generator_loss(D(fake), loss)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    g_grad = torch.stack([p.grad.norm() for p in G.parameters()]).norm()  # ~0 when G's loss saturates
    opt_g.step()
    D.requires_grad_(True)

    return (
        torch.stack([d_loss, g_loss, torch.sigmoid(d_real_logits).mean(), torch.sigmoid(d_fake_logits).mean(), g_grad])
        .detach()
        .float()
    )


# --------------------------------------------------------------------------- pictures
@torch.no_grad()
def generate(G, z):
    G.eval()  # batch norm uses its running statistics, so a sample does not depend on its batch
    samples = G(z).float()
    G.train()
    return samples


@torch.no_grad()
def plot_1d(real, fake, D, path, title):
    """Histograms of the real and the generated points, and D(x) along [-1, 1], in one picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = torch.linspace(-1, 1, 401, device=real.device)
    d_of_x = torch.sigmoid(D(xs.view(-1, 1)).float())
    fig, ax = plt.subplots(figsize=(7, 3.5))
    real_density, *_ = ax.hist(
        real.view(-1).cpu().numpy(), bins=80, range=(-1, 1), density=True, alpha=0.5, label="real"
    )
    ax.hist(fake.view(-1).cpu().numpy(), bins=80, range=(-1, 1), density=True, alpha=0.5, label="G(z)")
    ax.set(xlim=(-1, 1), ylim=(0, 2 * real_density.max()), xlabel="x", ylabel="density", title=title)
    d_axis = ax.twinx()  # D's output is a probability: its own axis, fixed to [0, 1]
    d_axis.plot(xs.cpu().numpy(), d_of_x.cpu().numpy(), color="k", linewidth=1, label="D(x)")
    d_axis.set(ylim=(0, 1), ylabel="D(x)")
    fig.legend(loc="upper center", bbox_to_anchor=(0.5, 0.88), ncol=3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)  # no bbox_inches="tight": every frame of the GIF has the same size
    plt.close(fig)


# --------------------------------------------------------------------------- main
@utils.one_line_errors
def main(argv=None):
    cfg, ckpt = utils.parse_config(build_parser, argv, SCRIPT, RESUMABLE)
    one_d = cfg["dataset"] == "1d"
    if not ckpt:
        for name, value in PRESETS["1d" if one_d else "images"].items():
            cfg[name] = cfg[name] or value
        cfg["image_size"] = None if one_d else 28  # the sampler reads image generators only
    for beta in ("beta1", "beta2"):
        if not 0 <= cfg[beta] < 1:
            utils.die(f"--{beta} must be in [0, 1), got {cfg[beta]}")
    device = utils.setup_device(cfg)
    data = load_data(cfg, device)
    steps_per_epoch = len(data) // cfg["batch_size"]
    if steps_per_epoch == 0:
        utils.die(f"--batch-size {cfg['batch_size']} is larger than the data set ({len(data)} samples)")
    frames = "plots" if one_d else "samples"
    G, D = utils.build_models(cfg, device, build_generator, build_discriminator)
    run_dir = utils.make_run_dir(
        SCRIPT, cfg, subdirs=(frames, "checkpoints")
    )  # only once flags, data and models are good

    opt_g = torch.optim.Adam(G.parameters(), lr=cfg["lr_g"], betas=(cfg["beta1"], cfg["beta2"]))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg["lr_d"], betas=(cfg["beta1"], cfg["beta2"]))
    models, optimizers = {"G": G, "D": D}, {"G": opt_g, "D": opt_d}
    fixed_noise = sample_noise(cfg, cfg["sample_size"], device)
    epoch, epoch_step, step = 0, 0, 0  # epoch in progress, batches done in it, optimizer steps in all
    if ckpt:
        utils.restore_training_state(ckpt, models, optimizers)
        fixed_noise = ckpt["fixed_noise"].to(device)
        epoch, epoch_step, step = ckpt["epoch"], ckpt["epoch_step"], ckpt["step"]
    G_train, D_train = utils.compile_models(cfg["compile"], G, D)
    total_steps = min(cfg["steps"] or math.inf, cfg["epochs"] * steps_per_epoch)
    # 1d: where G's fixed-noise samples fall, computed on the device and read back with the losses
    modes = dict(extra_columns=MODE_COLUMNS, extra=lambda: mode_stats(generate(G, fixed_noise))) if one_d else {}
    log = utils.TrainingLog(
        run_dir,
        STEP_COLUMNS,
        every=cfg["log_every"],
        images_per_step=cfg["batch_size"],
        total_steps=total_steps,
        step=step,
        resumed=ckpt is not None,
        status=status_text,
        rate="samples_per_s",
        **modes,
    )

    def checkpoint(name):
        path = run_dir / "checkpoints" / name
        utils.save_training_state(
            path,
            SCRIPT,
            cfg,
            models,
            optimizers,
            epoch=epoch,
            epoch_step=epoch_step,
            step=step,
            fixed_noise=fixed_noise,
        )
        return path

    print(
        f"gan_mlp: {len(data)} {cfg['dataset']} {'points' if one_d else 'images of 1x28x28'} on {device}, "
        f"{cfg['loss']} loss, {steps_per_epoch} steps/epoch, writing to {run_dir}"
    )
    with utils.save_on_interrupt(log, lambda: checkpoint("last.pt")):
        while step < total_steps:
            for real in epoch_batches(data, cfg, epoch, epoch_step, device):
                z = sample_noise(cfg, real.shape[0], device)
                metrics = train_step(G_train, D_train, opt_g, opt_d, real, z, cfg["loss"], cfg["amp"])
                step, epoch_step = step + 1, epoch_step + 1
                log.add(metrics, step, epoch)
                if step >= total_steps:
                    break
            log.flush()
            picture = run_dir / frames / f"epoch_{epoch + 1:03d}.png"
            if one_d:
                fake = generate(G, fixed_noise)
                plot_1d(
                    data,
                    fake,
                    D,
                    picture,
                    f"{cfg['loss']}, epoch {epoch + 1}: {describe_modes(mode_weights(fake).tolist())}",
                )
            else:
                utils.save_grid(generate(G, fixed_noise), picture, nrow=8, value_range=VALUE_RANGE)
            utils.save_progress_gif(run_dir / frames, run_dir / "progress.gif")
            log.plot(["d_loss", "g_loss", *(MODE_COLUMNS[1:] if one_d else [])])
            if epoch_step == steps_per_epoch:  # a full epoch: the next one starts at its first batch
                epoch, epoch_step = epoch + 1, 0
                if epoch % cfg["save_every"] == 0:
                    checkpoint(f"epoch_{epoch:03d}.pt")
            checkpoint("last.pt")
    print(
        f"done: {step} steps; {log.last_status}. "
        f"Pictures, progress.gif, losses.csv and checkpoints/last.pt in {run_dir}"
    )
    return run_dir


if __name__ == "__main__":
    main()
