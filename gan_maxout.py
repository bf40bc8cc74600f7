"""The original GAN: Goodfellow et al. 2014, "Generative Adversarial Nets" (arXiv:1406.2661),
its MNIST model, as the authors' Pylearn2 code trains it (github.com/goodfeli/adversarial:
mnist.yaml for the model and training, parzen_ll.py for the evaluation).

G turns 100 uniform numbers into a 28x28 image through two ReLU layers of 1200 units; D is
a maxout network (Goodfellow et al. 2013) with dropout that outputs the probability that
its input is real. D minimises the cross-entropy of telling real from fake; G minimises
-log D(G(z)), the paper's "non-saturating" alternative to log(1 - D(G(z))), whose gradient
vanishes early in training when D rejects every sample. Both are updated at the same time
from one forward pass, by SGD with momentum, as the paper's code does.

The paper scores the model by the Gaussian Parzen-window log-likelihood of the MNIST test
set under 10,000 samples of G (Table 1: 225 +- 2 nats).

Run:
  python gan_maxout.py --epochs 250                            # paper protocol (needs MNIST train)
  python gan_maxout.py --dataset fashion-mnist --epochs 100
  python gan_maxout.py --eval-parzen --ckpt runs/gan_maxout/<name>/checkpoints/last.pt
  python gan_maxout.py --train-range train:0:7000 --valid-range train:7000:8000 \\
                       --test-range test:0:2000                # only MNIST's test file, split (docs/running.md)

Writes, under runs/gan_maxout/<dataset>-<time>/ (or --out): samples/epoch_XXX.png from a
fixed noise batch, progress.gif, losses.csv and losses.png (D and G losses, D(x) and D(G(z)),
the learning rate and the momentum), checkpoints/last.pt (every epoch, and on Ctrl-C) and
checkpoints/epoch_XXX.pt (every --save-every epochs).

The GAN, in plain PyTorch, is everything above the line "# ==== the run": copy it alone and
drive it from your own loop. Below that line: flags, resume, outputs, the Parzen command.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.utils import save_image

# --------------------------------------------------------------------------- hyper-parameters
# The paper's values (mnist.yaml); the run's flags default to them, and a run's config is this dict with its
# flags applied.
HPARAMS = dict(
    z_dim=100,  # z ~ uniform in [-sqrt 3, sqrt 3]^z_dim
    g_hidden=1200,  # units in each of G's two ReLU layers
    g_init_range=0.05,  # G's weights ~ uniform(-0.05, 0.05)
    d_units=240,  # maxout units in each of D's two layers
    d_pieces=5,  # linear pieces each maxout unit takes the max of
    d_init_range=0.005,  # D's weights ~ uniform(-0.005, 0.005)
    d_input_keep=0.8,  # dropout: probability of keeping a pixel of D's input
    d_hidden_keep=0.5,  # dropout: probability of keeping a hidden unit of D
    batch_size=100,
    lr=0.1,  # SGD's initial learning rate, G's and D's
    lr_decay=1.000004,  # the learning rate is divided by this after every step
    min_lr=1e-6,  # floor of the decayed learning rate
    momentum_start=0.5,  # momentum in epoch 1
    momentum_end=0.7,  # momentum from epoch momentum_saturate on, reached linearly
    momentum_saturate=250,
    epochs=250,  # not in the paper: its code ran until stopped; momentum saturates at 250
    ema=0.0,  # not in the paper: sample from an average of G's weights with this decay; measured no better here
)
VALUE_RANGE = (0.0, 1.0)  # pixels are intensities in [0, 1] (Pylearn2 divides by 255), G ends in a sigmoid


# --------------------------------------------------------------------------- models
class Generator(nn.Module):
    """z -> ReLU 1200 -> ReLU 1200 -> sigmoid 784, shown as a 1x28x28 image."""

    def __init__(self, z_dim, hidden, init_range):
        super().__init__()
        # fmt: off
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.ReLU(),   # 1200
            nn.Linear(hidden, hidden), nn.ReLU(),  # 1200
            nn.Linear(hidden, 784), nn.Sigmoid(),  # 784 intensities in [0, 1]
        )
        # fmt: on
        for layer in self.net:
            if isinstance(layer, nn.Linear):  # Pylearn2: W ~ U(-irange, irange), b = 0
                nn.init.uniform_(layer.weight, -init_range, init_range)
                nn.init.zeros_(layer.bias)

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)


class Maxout(nn.Module):
    """units x pieces linear outputs; each unit is the max of its own `pieces` consecutive ones
    (Pylearn2 pools columns k*pieces ... k*pieces + pieces - 1 into unit k)."""

    def __init__(self, in_features, units, pieces):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x):
        return self.linear(x).view(-1, self.units, self.pieces).amax(dim=2)


class Discriminator(nn.Module):
    """dropout(keep 0.8) -> maxout 240x5 -> dropout(0.5) -> maxout 240x5 -> dropout(0.5) -> sigmoid 1.

    Pylearn2 drops each layer's *input*, scaling the kept values by 1/keep (1.25 for the pixels,
    2 for hidden units): exactly what nn.Dropout does. Returns the logit; the sigmoid is in the loss.
    """

    def __init__(self, units, pieces, init_range, input_keep, hidden_keep):
        super().__init__()
        # fmt: off
        self.net = nn.Sequential(
            nn.Flatten(),                                               # 784
            nn.Dropout(1 - input_keep), Maxout(784, units, pieces),     # 240 (of 240 x 5 pieces)
            nn.Dropout(1 - hidden_keep), Maxout(units, units, pieces),  # 240 (of 240 x 5 pieces)
            nn.Dropout(1 - hidden_keep), nn.Linear(units, 1),           # 1: the logit
        )
        # fmt: on
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.uniform_(layer.weight, -init_range, init_range)
                nn.init.zeros_(layer.bias)

    def forward(self, x):
        return self.net(x).view(-1)


def init_sigmoid_bias_from_marginals(G, images):
    """Pylearn2's init_sigmoid_bias_from_marginals: start G's output at the data's mean image,
    b = logit(mean pixel value), each mean clipped to [1e-7, 1 - 1e-7] so that logit is finite.
    `images` are the uint8 training images (pixel value / 255 is the intensity)."""
    mean = (images.sum(dim=0, dtype=torch.float64) / (255.0 * len(images))).flatten().clamp(1e-7, 1 - 1e-7)
    with torch.no_grad():
        G.net[-2].bias.copy_(torch.log(mean / (1 - mean)))


def build_generator(cfg):
    """G for a config (HPARAMS, or a run's flags); the sampler rebuilds G through this. Its output
    bias is set from the training images by init_sigmoid_bias_from_marginals."""
    return Generator(cfg["z_dim"], cfg["g_hidden"], cfg["g_init_range"])


def build_discriminator(cfg):
    return Discriminator(
        cfg["d_units"], cfg["d_pieces"], cfg["d_init_range"], cfg["d_input_keep"], cfg["d_hidden_keep"]
    )


def build_optimizers(cfg, G, D):
    """SGD with momentum for each net; apply_schedules sets each step's learning rate and momentum.
    fused: one kernel per step instead of a loop of small ops (and fp16's scaler needs no host sync)."""
    return (
        torch.optim.SGD(G.parameters(), lr=cfg["lr"], momentum=cfg["momentum_start"], fused=True),
        torch.optim.SGD(D.parameters(), lr=cfg["lr"], momentum=cfg["momentum_start"], fused=True),
    )


def learning_rate(cfg, step):
    """ExponentialDecay(decay_factor, min_lr): lr / decay^step, never below min_lr."""
    return max(cfg["lr"] * cfg["lr_decay"] ** -step, cfg["min_lr"])


def momentum(cfg, epoch):
    """MomentumAdjustor(start=1, saturate, final): linear in the epoch, from start to end value."""
    progress = min(max(epoch / (cfg["momentum_saturate"] - 1), 0.0), 1.0) if cfg["momentum_saturate"] > 1 else 1.0
    return cfg["momentum_start"] + (cfg["momentum_end"] - cfg["momentum_start"]) * progress


def apply_schedules(cfg, optimizers, step, epoch):
    """The learning rate of optimizer step `step` (counted from 0) and the momentum of epoch `epoch`, in each."""
    for opt in optimizers:
        opt.param_groups[0]["lr"] = learning_rate(cfg, step)
        opt.param_groups[0]["momentum"] = momentum(cfg, epoch)


def sample_noise(cfg, n, device="cpu", generator=None):
    """z ~ uniform in [-sqrt 3, sqrt 3]^z_dim: zero mean, unit variance (Generator.get_noise)."""
    return (torch.rand(n, cfg["z_dim"], device=device, generator=generator) * 2 - 1) * math.sqrt(3)


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
def epoch_batches(data, cfg, epoch, start_batch, device):
    """One epoch of batches of the uint8 images `data` (N, 1, 28, 28), in [0, 1], on `device`, in a
    random order fixed by (seed, epoch), from batch `start_batch` on; the last incomplete batch is dropped."""
    bs = cfg["batch_size"]
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg["seed"] * 100_003 + epoch))
    for idx in order[start_batch * bs : len(data) // bs * bs].to(device).split(bs):
        yield data[idx].float().div_(255.0)


# --------------------------------------------------------------------------- training step
def train_step(G, D, opt_g, opt_d, real, z, amp=None, scalers=None):
    """One simultaneous update of G and D from a single forward pass (AdversaryCost2), through the
    same dropout masks: both gradients are taken before either net moves.
    Returns detached [d_loss, g_loss, D(x), D(G(z))].
    amp: None (fp32), "bf16" or "fp16", autocast's type for the forward passes; fp16 needs `scalers`,
    a torch.amp.GradScaler for D's optimizer and one for G's (see dcgan.py's train_step)."""
    scaler_d, scaler_g = scalers or [torch.amp.GradScaler(enabled=False)] * 2  # disabled: no scaling at all
    with torch.autocast(real.device.type, dtype=torch.float16 if amp == "fp16" else torch.bfloat16, enabled=bool(amp)):
        d_real_logits = D(real)
        d_fake_logits = D(G(z))
        # (1) D: maximise log D(x) + log(1 - D(G(z))), as 0.5 * (BCE(D(x), 1) + BCE(D(G(z)), 0))
        d_loss_real = F.binary_cross_entropy_with_logits(d_real_logits, torch.ones_like(d_real_logits))
        d_loss_fake = F.binary_cross_entropy_with_logits(d_fake_logits, torch.zeros_like(d_fake_logits))
        d_loss = 0.5 * (d_loss_real + d_loss_fake)
        # (2) G: maximise log D(G(z)) (non-saturating), as BCE(D(G(z)), 1)
        g_loss = F.binary_cross_entropy_with_logits(d_fake_logits, torch.ones_like(d_fake_logits))
    d_params, g_params = list(D.parameters()), list(G.parameters())
    d_grads = torch.autograd.grad(scaler_d.scale(d_loss), d_params, retain_graph=True)  # scaled for fp16
    g_grads = torch.autograd.grad(scaler_g.scale(g_loss), g_params)
    for param, grad in zip(d_params + g_params, d_grads + g_grads):
        param.grad = grad
    scaler_d.step(opt_d)  # the gradients unscaled first; with fp16, no step if any overflowed
    scaler_g.step(opt_g)
    scaler_d.update(), scaler_g.update()
    opt_d.zero_grad(set_to_none=True)
    opt_g.zero_grad(set_to_none=True)
    d_real, d_fake = torch.sigmoid(d_real_logits).mean(), torch.sigmoid(d_fake_logits).mean()
    return torch.stack([d_loss, g_loss, d_real, d_fake]).detach().float()


@torch.no_grad()
def generate(G, z):
    """G(z) as floats, with G in eval mode (this G has no batch norm or dropout, so it changes
    nothing here; it is the habit that keeps a sample independent of the others drawn with it)."""
    G.eval()
    samples = G(z).float()
    G.train()
    return samples


def save_samples(G, fixed_noise, path, nrow=10):
    """One PNG grid of G(fixed_noise): the same z every epoch, so the grids show G's progress."""
    save_image(generate(G, fixed_noise).cpu(), path, nrow=nrow, normalize=True, value_range=VALUE_RANGE)


# --------------------------------------------------------------------------- the paper's measure
def parzen_log_likelihood(x, mu, sigmas, batch_size=100):
    """log p(x) under Gaussian Parzen windows: an isotropic Gaussian of width sigma on each of
    the n rows of mu, mixed equally (parzen_ll.py), for each sigma in the 1-D tensor `sigmas`:
        log p(x) = logsumexp_i(-|x - mu_i|^2 / (2 sigma^2)) - log n - d log(sigma sqrt(2 pi)).
    x: (m, d), mu: (n, d). Returns (m, len(sigmas)); batched, so memory is batch_size x n."""
    sigmas = sigmas.to(mu.device, torch.float32)
    n, d = mu.shape
    mu_sq = (mu * mu).sum(1)
    out = []
    for xb in x.split(batch_size):
        xb = xb.to(mu.device)
        sq_dist = ((xb * xb).sum(1, keepdim=True) - 2 * xb @ mu.T + mu_sq).clamp_min(0)  # (b, n)
        log_kernel = -sq_dist[..., None] / (2 * sigmas**2)  # (b, n, widths)
        out.append(torch.logsumexp(log_kernel, dim=1) - math.log(n) - d * torch.log(sigmas * math.sqrt(2 * math.pi)))
    return torch.cat(out)


def parzen_score(G, z, valid, test, batch_size=100):
    """The paper's Table 1 number: windows on G(z) (10,000 samples in the paper), their width sigma
    the one of logspace(-1, 0, 10) best on the images `valid`, then the mean log-likelihood of the
    images `test` and its standard error std/sqrt(m). Images are in [0, 1]. Returns (sigma, mean, stderr)."""
    G.eval()
    with torch.no_grad():
        mu = torch.cat([G(chunk).flatten(1).float() for chunk in z.split(1000)])
    sigmas = torch.logspace(-1, 0, 10)
    valid_ll = parzen_log_likelihood(valid.flatten(1), mu, sigmas, batch_size).mean(0)
    sigma = float(sigmas[valid_ll.argmax()])
    test_ll = parzen_log_likelihood(test.flatten(1), mu, torch.tensor([sigma]), batch_size)[:, 0].double().cpu()
    return sigma, float(test_ll.mean()), float(test_ll.std(unbiased=False) / math.sqrt(len(test_ll)))


# ==== the run: flags, resume, outputs (utils.py) ========================================================
import copy  # noqa: E402
import time  # noqa: E402

import utils  # noqa: E402

SCRIPT = "gan_maxout"
SNAPSHOT = ("G", "G_ema")  # what checkpoints/epoch_XXX.pt keep: the nets that sample and score
LOSS_COLUMNS = ["d_loss", "g_loss", "d_real", "d_fake"]  # what train_step returns; losses.csv adds lr, momentum
STATUS = "D {d_loss:.3f} G {g_loss:.3f} D(x) {d_real:.2f} D(G(z)) {d_fake:.2f} lr {lr:.4f}"  # the progress bar's text
PLOTS = {  # losses.png's panels
    "losses": ["d_loss", "g_loss"],
    "D's outputs": ["d_real", "d_fake"],
    "learning rate": ["lr"],
    "momentum": ["momentum"],
}
# said when a run on a CPU would take hours: the shorter run its docs page measured
CPU_RECIPE = (
    "docs/gan_maxout.md measured `python gan_maxout.py --dataset fashion-mnist --epochs 30`: 15,000 steps in 15 min"
)
RANGES = ("train_range", "valid_range", "test_range")  # the paper's protocol is their defaults


def build_parser():
    p = utils.ArgumentParser(description="The 2014 GAN's MNIST model (maxout D), as in the paper's Pylearn2 code.")
    data = p.add_argument_group("data (mnist.yaml: train = MNIST train[0:50000], valid = train[50000:60000])")
    data.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"], help="28x28 grey images")
    data.add_argument("--data-root", default="./data", help="where torchvision data sets live or are downloaded to")
    data.add_argument("--train-range", type=utils.data_range, default="train:0:50000", help="images trained on")
    data.add_argument(
        "--valid-range",
        type=utils.data_range,
        default="train:50000:60000",
        help="images that choose the Parzen window width (the first --parzen-valid of them)",
    )
    data.add_argument(
        "--test-range", type=utils.data_range, default="test:0:10000", help="images the Parzen score is reported on"
    )

    h = HPARAMS
    model = p.add_argument_group("model (mnist.yaml)")
    model.add_argument(
        "--z-dim", type=utils.positive_int, default=h["z_dim"], help="noise size; z ~ uniform in [-sqrt 3, sqrt 3]"
    )
    model.add_argument(
        "--g-hidden", type=utils.positive_int, default=h["g_hidden"], help="units in each of G's two ReLU layers"
    )
    model.add_argument(
        "--g-init-range", type=utils.positive_float, default=h["g_init_range"], help="G's weights ~ uniform(-r, r)"
    )
    model.add_argument(
        "--d-units", type=utils.positive_int, default=h["d_units"], help="maxout units in each of D's two layers"
    )
    model.add_argument(
        "--d-pieces",
        type=utils.positive_int,
        default=h["d_pieces"],
        help="linear pieces each maxout unit takes the max of",
    )
    model.add_argument(
        "--d-init-range", type=utils.positive_float, default=h["d_init_range"], help="D's weights ~ uniform(-r, r)"
    )
    model.add_argument(
        "--d-input-keep",
        type=float,
        default=h["d_input_keep"],
        help="dropout: probability of keeping a pixel of D's input",
    )
    model.add_argument(
        "--d-hidden-keep",
        type=float,
        default=h["d_hidden_keep"],
        help="dropout: probability of keeping a hidden unit of D",
    )

    optim = p.add_argument_group("optimisation (mnist.yaml: SGD with momentum)")
    optim.add_argument(
        "--epochs",
        type=utils.positive_int,
        default=h["epochs"],
        help="passes over the training images (the original ran until stopped; momentum saturates at 250)",
    )
    optim.add_argument("--batch-size", type=utils.positive_int, default=h["batch_size"], help="images per step")
    optim.add_argument("--lr", type=utils.positive_float, default=h["lr"], help="initial learning rate of G and D")
    optim.add_argument(
        "--lr-decay", type=float, default=h["lr_decay"], help="the learning rate is divided by this after every step"
    )
    optim.add_argument("--min-lr", type=float, default=h["min_lr"], help="floor of the decayed learning rate")
    optim.add_argument("--momentum-start", type=float, default=h["momentum_start"], help="momentum in epoch 1")
    optim.add_argument(
        "--momentum-end",
        type=float,
        default=h["momentum_end"],
        help="momentum from epoch --momentum-saturate on",
    )
    optim.add_argument(
        "--momentum-saturate",
        type=utils.positive_int,
        default=h["momentum_saturate"],
        help="epoch at which momentum reaches its end value",
    )
    optim.add_argument("--steps", type=utils.positive_int, help="stop after this many steps in total (smoke tests)")

    run = utils.add_run_flags(
        p,
        SCRIPT,
        seed=777,
        save_every=25,
        ema=HPARAMS["ema"],
        amp_help="autocast the forward pass: bf16 (a bare --amp) or fp16, with a gradient scaler per optimizer",
        compile_help="torch.compile G and D",
    )
    run.add_argument("--sample-size", type=utils.positive_int, default=100, help="images in each per-epoch grid")

    parzen = p.add_argument_group("evaluation (parzen_ll.py)")
    parzen.add_argument(
        "--eval-parzen", action="store_true", help="score --ckpt by Parzen-window log-likelihood and exit"
    )
    parzen.add_argument("--ckpt", help="checkpoint to evaluate with --eval-parzen")
    parzen.add_argument(
        "--parzen-samples", type=utils.positive_int, default=10_000, help="samples of G forming the Parzen window"
    )
    parzen.add_argument(
        "--parzen-valid", type=utils.positive_int, default=1000, help="validation images that choose sigma"
    )
    parzen.add_argument("--parzen-batch", type=utils.positive_int, default=100, help="test images scored at once")
    return p


# flags that may change when a run is resumed or scored; everything else must match the checkpoint
# (one process: no --sync-bn)
RESUMABLE = (utils.RESUMABLE_RUN_FLAGS - {"sync_bn"}) | {
    "epochs",
    "steps",
    "data_root",
    "eval_parzen",
    "ckpt",
    "parzen_samples",
    "parzen_valid",
    "parzen_batch",
}


def check_flags(cfg):
    for name in ("d_input_keep", "d_hidden_keep"):
        if not 0 < cfg[name] <= 1:
            utils.die(f"--{name.replace('_', '-')} must be in (0, 1], got {cfg[name]}")
    for name in ("momentum_start", "momentum_end"):
        if not 0 <= cfg[name] < 1:
            utils.die(f"--{name.replace('_', '-')} must be in [0, 1), got {cfg[name]}")
    if not (cfg["lr_decay"] > 0 and cfg["min_lr"] >= 0):
        utils.die(f"--lr-decay must be positive and --min-lr not negative, got {cfg['lr_decay']} and {cfg['min_lr']}")


def too_few_images(which, data_range, n):
    """The refusal of a range that asks for more than the n images of its file, naming the three range flags
    with values that fit that file (70%, 10% and 20% of it, as docs/gan_maxout.md's runs on MNIST's
    10,000 test images)."""
    split, start, stop = data_range
    text = f"--{which.replace('_', '-')} {split}:{start}:{stop} asks for more than the {n} {split} images"
    a, b = n * 7 // 10, n * 8 // 10
    if 0 < a < b < n:
        text += (
            "; the defaults are the paper's protocol on MNIST's full files, so with a smaller file give ranges "
            f"that fit, e.g. --train-range {split}:0:{a} --valid-range {split}:{a}:{b} --test-range {split}:{b}:{n}"
        )
    return text


def load_images(cfg, which, device, files=None):
    """The images of cfg[which] (one of RANGES), uint8 (N, 1, 28, 28) on `device`; `files` keeps the files read."""
    files = {} if files is None else files
    split, start, stop = cfg[which]
    if split not in files:
        files[split] = utils.load_mnist_family(cfg["dataset"], cfg["data_root"], train=split == "train")[0]
    if stop > len(files[split]):
        utils.die(too_few_images(which, cfg[which], len(files[split])))
    return files[split][start:stop].unsqueeze(1).to(device)


def load_data(cfg, device):
    """The training images, once every range is known to fit its file: a run that could not be scored at its
    end is refused at its start, while its flags can still change."""
    files = {}
    data = load_images(cfg, "train_range", device, files)
    for which in RANGES[1:]:
        load_images(cfg, which, "cpu", files)
    return data


def eval_parzen(argv):
    """python gan_maxout.py --eval-parzen --ckpt PATH: print the Parzen score of a checkpoint."""
    cfg, ckpt, device = utils.eval_config(build_parser, argv, SCRIPT, RESUMABLE, "--eval-parzen")
    G = build_generator(cfg).to(device)
    G.load_state_dict(ckpt["models"].get("G_ema", ckpt["models"]["G"]))  # the average of G, if the run kept one
    began = time.perf_counter()
    torch.manual_seed(cfg["seed"])  # the same samples of G each time a checkpoint is scored
    z = sample_noise(cfg, cfg["parzen_samples"], device)
    valid = load_images(cfg, "valid_range", device)[: cfg["parzen_valid"]].float() / 255
    test = load_images(cfg, "test_range", device).float() / 255
    sigma, mean, stderr = parzen_score(G, z, valid, test, cfg["parzen_batch"])
    print(
        f"Parzen log-likelihood of {cfg['dataset']} {':'.join(map(str, cfg['test_range']))} "
        f"under {cfg['parzen_samples']} samples of {'G_ema' if 'G_ema' in ckpt['models'] else 'G'} "
        f"(step {ckpt['step']}, epoch {ckpt['epoch']}): "
        f"{mean:.1f} +- {stderr:.1f} nats (sigma {sigma:.4f}, {time.perf_counter() - began:.1f} s on {device})"
    )
    return mean, stderr


@utils.one_line_errors
def main(argv=None):
    cfg, ckpt = utils.parse_config(build_parser, argv, SCRIPT, RESUMABLE)
    check_flags(cfg)
    if cfg["eval_parzen"]:
        return eval_parzen(argv)
    cfg["image_size"] = 28  # G's images are 1 x 28 x 28; the sampler reads this
    device = utils.pick_device(cfg["device"])
    utils.seed_everything(cfg["seed"])
    utils.cuda_kernels(cfg["deterministic"])  # on CUDA: autotuned cuDNN and TF32, or --deterministic kernels
    data = load_data(cfg, device)
    steps_per_epoch = len(data) // cfg["batch_size"]
    if steps_per_epoch == 0:
        utils.die(f"--batch-size {cfg['batch_size']} is larger than the training set ({len(data)} images)")
    G, D = utils.build_models(cfg, device, build_generator, build_discriminator)
    run_dir = utils.make_run_dir(SCRIPT, cfg)  # only once flags, data and models are good

    init_sigmoid_bias_from_marginals(G, data)
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
    schedule = lambda: {"lr": opt_d.param_groups[0]["lr"], "momentum": opt_d.param_groups[0]["momentum"]}
    log = utils.TrainingLog(run_dir, LOSS_COLUMNS, cfg, status=STATUS, plots=PLOTS,
                            images_per_step=cfg["batch_size"], total_steps=total_steps, step=step,
                            cpu_recipe=CPU_RECIPE, extra_columns=["lr", "momentum"],
                            extra=schedule)  # fmt: skip

    def checkpoint(name, keep=None):
        path = run_dir / "checkpoints" / name
        progress = dict(epoch=epoch, epoch_step=epoch_step, step=step, fixed_noise=fixed_noise)
        utils.save_training_state(path, SCRIPT, cfg, models, optimizers, scalers=scalers, keep=keep, **progress)
        return path

    print(f"gan_maxout: {len(data)} {cfg['dataset']} images ({':'.join(map(str, cfg['train_range']))}) on {device}, "
          f"{steps_per_epoch} steps/epoch, writing to {run_dir}")  # fmt: skip
    with utils.save_on_interrupt(log, lambda: checkpoint("last.pt")):
        while step < total_steps:
            for real in epoch_batches(data, cfg, epoch, epoch_step, device):
                apply_schedules(cfg, (opt_g, opt_d), step, epoch)
                z = sample_noise(cfg, real.shape[0], device)
                metrics = train_step(G_train, D_train, opt_g, opt_d, real, z, cfg["amp"], (scalers["D"], scalers["G"]))
                step, epoch_step = step + 1, epoch_step + 1
                if cfg["ema"]:
                    update_ema(G_ema, G, ema_decay(cfg["ema"], step))
                log.add(metrics, step, epoch)
                if step >= total_steps:
                    break
            log.flush()
            save_samples(G_ema or G, fixed_noise, run_dir / "samples" / f"epoch_{epoch + 1:03d}.png")
            utils.save_progress_gif(run_dir / "samples", run_dir / "progress.gif")
            log.plot()
            if epoch_step == steps_per_epoch:  # a full epoch: the next one starts at its first batch
                epoch, epoch_step = epoch + 1, 0
                if epoch % cfg["save_every"] == 0:
                    checkpoint(f"epoch_{epoch:03d}.pt", keep=SNAPSHOT)
            checkpoint("last.pt")
    print(
        f"done: {utils.plural(step, 'step')} in {run_dir}; score it with: "
        f"python gan_maxout.py --eval-parzen --ckpt {run_dir / 'checkpoints' / 'last.pt'}"
    )
    return run_dir


if __name__ == "__main__":
    main()
