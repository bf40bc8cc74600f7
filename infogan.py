"""InfoGAN: Chen, Duan, Houthooft, Schulman, Sutskever & Abbeel 2016, "InfoGAN: Interpretable
Representation Learning by Information Maximizing Generative Adversarial Networks"
(arXiv:1606.03657), its MNIST experiment as the authors' code trains it (openai/InfoGAN:
run_mnist_exp.py, regularized_gan.py, infogan_trainer.py).

G's input is split in two: incompressible noise z (62 numbers, U(-1, 1)) and a latent code c
that G should make *visible* in its images: one categorical code Cat(10) and two continuous
codes U(-1, 1). A plain GAN has no reason to use c. InfoGAN adds to both players' losses a
lower bound on the mutual information I(c; G(z, c)): a network Q reads an image and predicts
the code that made it, and G and Q are rewarded when the prediction is right. Q shares D's
convolutional trunk, so the bound costs one small head. Nothing tells the code what to mean,
yet on MNIST the categorical code comes to pick the digit and the continuous ones its slant
and width, which the per-epoch traversal grids show and Q's accuracy on real digits measures.

  D loss  BCE(D(x), 1) + BCE(D(G(z, c)), 0) + lambda L_info      (D, its trunk and Q: Adam 2e-4)
  G loss  BCE(D(G(z, c)), 1)                + lambda L_info      (G: Adam 1e-3)
  L_info  cross-entropy of Q's categorical logits with c_cat
          + Gaussian negative log-likelihood of c_cont under Q's means (std fixed to 1)

Nets (the paper's Table 1, as dcgan.py's 28x28 nets; each script stands alone, so they are
written out again here): G: (z, c) -> FC 1024 -> FC 7x7x128 -> up-conv 64 -> up-conv 1, sigmoid;
D: conv 64 -> conv 128 -> FC 1024 -> FC 1, and Q: FC 128 -> the codes, on D's FC 1024 layer.

Run:
  python infogan.py --epochs 11                        # MNIST (the authors' 5,000 steps of 128)
  python infogan.py --epochs 25                       # only MNIST's test file, split (docs/running.md)
  python infogan.py --dataset fashion-mnist --supervised 100
  python infogan.py --eval-accuracy --ckpt runs/infogan/<name>/checkpoints/last.pt
  python sampler.py --ckpt runs/infogan/<name>/checkpoints/last.pt

Writes, under runs/infogan/<dataset>-<time>/ (or --out):
  samples/epoch_001.png ...   one row per category, one column per fixed noise vector
  samples/traverse_c1_epoch_001.png ...   one row per category, continuous code 1 swept
                              from -2 to 2 along the row, everything else fixed (one per code)
  progress.gif                the epoch grids as one animation
  losses.csv, losses.png      D and G losses, the information terms, D(x), D(G(z)), images/s
  checkpoints/last.pt         after every epoch and on Ctrl-C; epoch_XXX.pt every --save-every
and prints Q's categorical accuracy on the --eval-range images (by default the whole test file) at the end.

The GAN, in plain PyTorch, is everything above the line "# ==== the run": copy it alone and
drive it from your own loop. Below that line: flags, resume, outputs, Q's accuracy.
"""

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.utils import save_image

# --------------------------------------------------------------------------- hyper-parameters
# The paper's values (run_mnist_exp.py, infogan_trainer.py); the run's flags default to them, and a
# run's config is this dict with its flags applied.
HPARAMS = dict(
    noise_dim=62,  # size of the incompressible noise z
    noise="uniform",  # z ~ U(-1, 1); "normal" for N(0, 1)
    n_cat=10,  # categories of the categorical code c_cat
    n_cont=2,  # continuous codes c_cont, each U(-1, 1)
    batch_size=128,
    lr_d=2e-4,  # D, its trunk and Q's head
    lr_g=1e-3,
    beta1=0.5,
    beta2=0.999,
    cat_weight=1.0,  # lambda of the categorical information term
    cont_weight=1.0,  # lambda of the continuous term, with Q's std fixed to 1
    cont_loss="gaussian",  # Gaussian NLL with std 1, summed over codes; "mse" as many replications
    leak=0.01,  # D's leaky ReLU slope: the authors' code's (custom_ops.leaky_rectify); the paper's Table 1 says 0.1
    epochs=11,  # the authors' 50 "epochs" of 100 steps: 5,000 steps of 128, about 11 passes over 60,000
    ema=0.999,  # not in the paper: sample from an average of G's weights (0: from G itself); measured better here
)
VALUE_RANGE = (0.0, 1.0)  # the authors model pixels as Bernoulli means: G ends in a sigmoid, data in [0, 1]
TRAVERSE = (-2.0, 2.0, 10)  # a continuous code swept from -2 to 2 in 10 columns: beyond its prior's [-1, 1]


# --------------------------------------------------------------------------- models
def init_weights(module):
    """The authors' custom ops: weights from N(0, 0.02), batch-norm scales from N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """(z, c) -> FC 1024 -> FC 7x7x128 -> 4x4 up-conv 64 -> 4x4 up-conv 1, sigmoid (Table 1)."""

    def __init__(self, in_dim):
        super().__init__()
        # fmt: off
        self.net = nn.Sequential(
            nn.Linear(in_dim, 1024), nn.BatchNorm1d(1024), nn.ReLU(True),
            nn.Linear(1024, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(True),
            nn.Unflatten(1, (128, 7, 7)),                                               # 128 x 7 x 7
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(True),    # 64 x 14 x 14
            nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Sigmoid(),                           # 1 x 28 x 28, in [0, 1]
        )
        # fmt: on

    def forward(self, z):
        return self.net(z)


class DiscriminatorQ(nn.Module):
    """D and Q on one trunk: 4x4 conv 64 -> 4x4 conv 128 -> FC 1024 (Table 1), leaky ReLUs of slope
    `leak`. D's head: FC 1 (a logit). Q's head: FC 128 -> the categorical code's logits and the
    continuous codes' means. Returns (D's logit, Q's category logits, Q's continuous means)."""

    def __init__(self, n_cat, n_cont, leak):
        super().__init__()
        self.n_cat = n_cat
        # fmt: off
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(leak, True),                            # 64 x 14 x 14
            nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(leak, True),     # 128 x 7 x 7
            nn.Flatten(),
            nn.Linear(128 * 7 * 7, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(leak, True),  # 1024: D's and Q's
        )
        self.d_head = nn.Linear(1024, 1)                                                     # D: the logit
        self.q_head = nn.Sequential(
            nn.Linear(1024, 128), nn.BatchNorm1d(128), nn.LeakyReLU(leak, True),            # 128
            nn.Linear(128, n_cat + n_cont),                                                  # Q: logits, means
        )
        # fmt: on

    def forward(self, x):
        h = self.trunk(x)
        q = self.q_head(h)
        return self.d_head(h).view(-1), q[:, : self.n_cat], q[:, self.n_cat :]


def build_generator(cfg):
    """G for a config (HPARAMS with a run's flags applied); the sampler rebuilds G through this."""
    G = Generator(cfg["noise_dim"] + cfg["n_cat"] + cfg["n_cont"])
    G.apply(init_weights)
    return G


def build_discriminator(cfg):
    """D with Q's head on its trunk: one module, one optimizer."""
    D = DiscriminatorQ(cfg["n_cat"], cfg["n_cont"], cfg["leak"])
    D.apply(init_weights)
    return D


def build_optimizers(cfg, G, D):
    """Adam for each net, as the authors' code: G faster than D and Q. fused: one kernel per step."""
    betas = (cfg["beta1"], cfg["beta2"])
    return (
        torch.optim.Adam(G.parameters(), lr=cfg["lr_g"], betas=betas, fused=True),
        torch.optim.Adam(D.parameters(), lr=cfg["lr_d"], betas=betas, fused=True),
    )


# --------------------------------------------------------------------------- noise and codes
def generator_input(cfg, noise, cat, cont):
    """G's input: the noise, the category as a one-hot vector, the continuous codes, side by side."""
    return torch.cat([noise, F.one_hot(cat, cfg["n_cat"]).to(noise.dtype), cont], dim=1)


def sample_latent(cfg, n, device="cpu", generator=None):
    """n draws from the priors: noise (n, noise_dim), categories (n,), continuous codes (n, n_cont)."""
    if cfg["noise"] == "uniform":
        noise = torch.rand(n, cfg["noise_dim"], device=device, generator=generator) * 2 - 1
    else:
        noise = torch.randn(n, cfg["noise_dim"], device=device, generator=generator)
    cat = torch.randint(cfg["n_cat"], (n,), device=device, generator=generator)
    cont = torch.rand(n, cfg["n_cont"], device=device, generator=generator) * 2 - 1
    return noise, cat, cont


def sample_codes(cfg, n, device="cpu", generator=None, cat=None):
    """n inputs of G drawn from the priors (the category fixed to `cat` if given), and the codes
    that made them, {"cat": (n,), "cont": (n, n_cont)}: the sampler's export stores them."""
    noise, cats, cont = sample_latent(cfg, n, device, generator)
    if cat is not None:
        cats = torch.full_like(cats, cat)
    return generator_input(cfg, noise, cats, cont), {"cat": cats, "cont": cont}


def sample_noise(cfg, n, device="cpu", generator=None):
    """n inputs of G, noise and codes drawn from their priors (what the sampler draws)."""
    return sample_codes(cfg, n, device, generator)[0]


def grid_input(cfg, fixed_noise, code=None, lo=TRAVERSE[0], hi=TRAVERSE[1], steps=TRAVERSE[2]):
    """G's inputs for a grid with one row per category. code=None: the columns are the fixed
    noise vectors, continuous codes 0. code=j: continuous code j runs from lo to hi in `steps`
    columns along each row, the noise (fixed_noise[0]) and the other codes fixed."""
    cols = len(fixed_noise) if code is None else steps
    cat = torch.arange(cfg["n_cat"], device=fixed_noise.device).repeat_interleave(cols)
    cont = torch.zeros(len(cat), cfg["n_cont"], device=fixed_noise.device)
    if code is None:
        noise = fixed_noise.repeat(cfg["n_cat"], 1)
    else:
        noise = fixed_noise[:1].expand(len(cat), -1)
        cont[:, code] = torch.linspace(lo, hi, steps, device=fixed_noise.device).repeat(cfg["n_cat"])
    return generator_input(cfg, noise, cat, cont), cols


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
    """Yield the batches of one epoch, in [0, 1], on `device`, from batch `start_batch` on.

    `data` is a uint8 tensor (N, 1, 28, 28) already on the device (batches are gathered from it by
    index, no copies from the host). The order is a permutation seeded by (seed, epoch), so a
    resumed run sees the very batches the interrupted run would have; the last incomplete batch
    is dropped."""
    bs = cfg["batch_size"]
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg["seed"] * 100_003 + epoch))
    for idx in order[start_batch * bs : len(data) // bs * bs].to(device).split(bs):
        yield data[idx].float().div_(255.0)


def labelled_batch(images, labels, n_labelled, batch_size, device):
    """From practice, not the paper: a batch drawn from the first n_labelled images and their
    labels, the only labels a --supervised run uses, in [0, 1]."""
    idx = torch.randint(n_labelled, (min(n_labelled, batch_size),), device=device)
    return images[idx].float() / 255, labels[idx]


# --------------------------------------------------------------------------- training step
def info_loss(cat_logits, cont_mean, cat, cont, cfg):
    """lambda L_I: -(the mutual-information lower bound), less the codes' constant entropy: the
    cross-entropy of Q's categorical logits with the true category, and for the continuous codes
    the negative log-likelihood of a Gaussian of std 1 around Q's means (0.5 (c - mean)^2 summed
    over codes, its constant dropped), or their mean squared error.
    Returns (weighted sum, cat term, cont term)."""
    cat_loss = F.cross_entropy(cat_logits.float(), cat)
    if cfg["n_cont"] == 0:
        cont_loss = cat_loss.new_zeros(())
    elif cfg["cont_loss"] == "gaussian":
        cont_loss = 0.5 * (cont - cont_mean.float()).pow(2).sum(1).mean()
    else:
        cont_loss = F.mse_loss(cont_mean.float(), cont)
    return cfg["cat_weight"] * cat_loss + cfg["cont_weight"] * cont_loss, cat_loss, cont_loss


def train_step(G, D, opt_g, opt_d, real, latent, cfg, labelled=None, amp=None, scalers=None):
    """One update of D and Q, then one of G, both with the information term on G's samples.
    `latent` is (noise, categories, continuous codes), as sample_latent draws them; `labelled`
    (images, labels), with --supervised, also teaches Q's categories the true classes.
    Returns detached [d_loss, g_loss, cat_loss, cont_loss, D(x), D(G(z))].
    amp: None (fp32), "bf16" or "fp16", autocast's type for the forward passes; fp16 needs `scalers`,
    a torch.amp.GradScaler for D's optimizer and one for G's (see dcgan.py's train_step)."""
    scaler_d, scaler_g = scalers or [torch.amp.GradScaler(enabled=False)] * 2  # disabled: no scaling at all
    autocast = torch.autocast(
        real.device.type, dtype=torch.float16 if amp == "fp16" else torch.bfloat16, enabled=bool(amp)
    )
    noise, cat, cont = latent
    with autocast:
        fake = G(generator_input(cfg, noise, cat, cont))

    # (1) D and Q: maximise log D(x) + log(1 - D(G(c, z))) + lambda L_I(G, Q)
    # (L_I is the information bound; Q, on D's trunk, learns with D in this one update)
    with autocast:
        d_real_logits, _, _ = D(real)
        d_fake_logits, q_cat, q_cont = D(fake.detach())  # no gradient into G from this update
        d_loss = (
            F.binary_cross_entropy_with_logits(d_real_logits, torch.ones_like(d_real_logits))
            + F.binary_cross_entropy_with_logits(d_fake_logits, torch.zeros_like(d_fake_logits))
            + info_loss(q_cat, q_cont, cat, cont, cfg)[0]
        )
        if labelled is not None:
            d_loss = d_loss + F.cross_entropy(D(labelled[0])[1].float(), labelled[1])
    scaler_d.scale(d_loss).backward()
    scaler_d.step(opt_d)  # the gradients unscaled first; with fp16, no step if any overflowed
    scaler_d.update()
    opt_d.zero_grad(set_to_none=True)

    # (2) G: maximise log D(G(c, z)) + lambda L_I(G, Q) (non-saturating), through the freshly updated D and Q
    D.requires_grad_(False)  # G's step needs gradients w.r.t. the images, not D's or Q's weights
    with autocast:
        g_logits, q_cat, q_cont = D(fake)
        info, cat_loss, cont_loss = info_loss(q_cat, q_cont, cat, cont, cfg)
        g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits)) + info
    scaler_g.scale(g_loss).backward()
    scaler_g.step(opt_g)
    scaler_g.update()
    opt_g.zero_grad(set_to_none=True)
    D.requires_grad_(True)

    d_real, d_fake = torch.sigmoid(d_real_logits).float().mean(), torch.sigmoid(d_fake_logits).float().mean()
    return torch.stack([d_loss, g_loss, cat_loss, cont_loss, d_real, d_fake]).detach().float()


@torch.no_grad()
def generate(G, z):
    """G(z) as floats, with G in eval mode: batch norm uses its running statistics, so a sample
    does not depend on the others drawn with it."""
    G.eval()
    samples = G(z).float()
    G.train()
    return samples


def save_grids(G, cfg, fixed_noise, folder, epoch):
    """The epoch's category grid, epoch_XXX.png, and one traversal grid per continuous code,
    traverse_cJ_epoch_XXX.png, in `folder`: the same noise every epoch, so they show G's progress."""
    grids = [(None, f"epoch_{epoch:03d}.png")] + [
        (j, f"traverse_c{j + 1}_epoch_{epoch:03d}.png") for j in range(cfg["n_cont"])
    ]
    for code, name in grids:
        z, cols = grid_input(cfg, fixed_noise, code)
        save_image(generate(G, z).cpu(), Path(folder) / name, nrow=cols, normalize=True, value_range=VALUE_RANGE)


# ==== the run: flags, resume, outputs (utils.py) ========================================================
import copy  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import utils  # noqa: E402

SCRIPT = "infogan"
SNAPSHOT = ("G", "G_ema", "D")  # D carries Q, which --eval-accuracy reads
LOSS_COLUMNS = ["d_loss", "g_loss", "cat_loss", "cont_loss", "d_real", "d_fake"]  # what train_step returns
STATUS = "D {d_loss:.3f} G {g_loss:.3f} cat {cat_loss:.3f} cont {cont_loss:.3f} D(x) {d_real:.2f} D(G(z)) {d_fake:.2f}"
PLOTS = {  # losses.png's panels
    "losses": ["d_loss", "g_loss"],
    "information terms": ["cat_loss", "cont_loss"],
    "D's outputs": ["d_real", "d_fake"],
}
# said when a run on a CPU would take hours: the shorter run its docs page measured
CPU_RECIPE = "docs/infogan.md measured `python infogan.py --epochs 25 --amp` on 8,000 digits: 8 min, FID 22"


def build_parser():
    p = utils.ArgumentParser(description="InfoGAN (Chen et al. 2016) on MNIST or Fashion-MNIST.")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"], help="28x28 grey images")
    data.add_argument("--data-root", default="./data", help="where torchvision data sets live or are downloaded to")
    data.add_argument(
        "--train-range", type=utils.data_range, help="images trained on (default: the whole training file)"
    )
    data.add_argument(
        "--eval-range",
        type=utils.data_range,
        help="held-out labelled images on which Q's categorical accuracy is measured (default: the whole test file)",
    )

    h = HPARAMS
    model = p.add_argument_group("model (run_mnist_exp.py)")
    model.add_argument(
        "--noise-dim", type=utils.positive_int, default=h["noise_dim"], help="size of the incompressible noise z"
    )
    model.add_argument("--noise", default=h["noise"], choices=["uniform", "normal"], help="z ~ U(-1, 1) or N(0, 1)")
    model.add_argument(
        "--n-cat", type=utils.positive_int, default=h["n_cat"], help="categories of the categorical code"
    )
    model.add_argument("--n-cont", type=int, default=h["n_cont"], help="continuous codes, each U(-1, 1)")
    model.add_argument(
        "--leak",
        type=float,
        default=h["leak"],
        help="slope of D's leaky ReLUs: the authors' code's 0.01, or the paper's Table 1's 0.1",
    )

    optim = p.add_argument_group("optimisation (infogan_trainer.py)")
    optim.add_argument(
        "--epochs",
        type=utils.positive_int,
        default=h["epochs"],
        help="passes over the training images (the authors: 50 'epochs' of 100 steps = 5,000 steps "
        "of 128, about 11 passes over MNIST's 60,000)",
    )
    optim.add_argument("--batch-size", type=utils.positive_int, default=h["batch_size"], help="images per step")
    optim.add_argument(
        "--lr-d", type=utils.positive_float, default=h["lr_d"], help="Adam learning rate of D, its trunk and Q's head"
    )
    optim.add_argument("--lr-g", type=utils.positive_float, default=h["lr_g"], help="Adam learning rate of G")
    optim.add_argument("--beta1", type=float, default=h["beta1"], help="Adam beta1")
    optim.add_argument("--beta2", type=float, default=h["beta2"], help="Adam beta2")
    optim.add_argument(
        "--cat-weight", type=float, default=h["cat_weight"], help="lambda of the categorical information term"
    )
    optim.add_argument(
        "--cont-weight",
        type=float,
        default=h["cont_weight"],
        help="lambda of the continuous term (the authors' code: 1, with Q's std fixed to 1)",
    )
    optim.add_argument(
        "--cont-loss",
        default=h["cont_loss"],
        choices=["gaussian", "mse"],
        help="continuous term: Gaussian NLL with std 1, summed over codes (the authors'), "
        "or the mean squared error that many replications use",
    )
    optim.add_argument(
        "--supervised",
        type=int,
        default=0,
        help="from practice, not the paper: Q's categorical head also learns the true labels of the "
        "first N training images, so that category k comes to mean class k",
    )
    optim.add_argument(
        "--steps",
        type=utils.positive_int,
        help="stop after this many optimizer steps in total (for smoke tests and benchmarks)",
    )

    utils.add_run_flags(p, SCRIPT, ema=HPARAMS["ema"])
    evaluation = p.add_argument_group("evaluation")
    evaluation.add_argument(
        "--eval-accuracy",
        action="store_true",
        help="print Q's categorical accuracy on --eval-range for --ckpt, and exit",
    )
    evaluation.add_argument("--ckpt", help="checkpoint to evaluate with --eval-accuracy")
    return p


# flags that may change when a run is resumed or evaluated; everything else must match the checkpoint
RESUMABLE = utils.RESUMABLE_RUN_FLAGS | {"epochs", "steps", "data_root", "eval_range", "eval_accuracy", "ckpt"}


def check_flags(cfg):
    for beta in ("beta1", "beta2"):
        if not 0 <= cfg[beta] < 1:
            utils.die(f"--{beta} must be in [0, 1), got {cfg[beta]}")
    for name in ("n_cont", "supervised"):
        if cfg[name] < 0:
            utils.die(f"--{name.replace('_', '-')} must be 0 or more, got {cfg[name]}")
    if cfg["cat_weight"] < 0 or cfg["cont_weight"] < 0:
        utils.die("--cat-weight and --cont-weight must be 0 or more")


def check_data(cfg, data, labels):
    """Flags that need the training images to check; returns the steps of an epoch."""
    if cfg["supervised"] > len(data):
        utils.die(f"--supervised {cfg['supervised']} is more than the {len(data)} training images")
    if cfg["supervised"] and cfg["n_cat"] <= int(labels.max()):
        utils.die(f"--supervised needs a category per class: --n-cat {cfg['n_cat']} < {int(labels.max()) + 1} classes")
    if len(data) < cfg["batch_size"]:
        utils.die(f"--batch-size {cfg['batch_size']} is larger than the training set ({len(data)} images)")
    return len(data) // cfg["batch_size"]


# --------------------------------------------------------------------------- evaluation: Q's accuracy
def matched_accuracy(predicted, labels, n_cat, n_classes=10):
    """Accuracy of `predicted` categories against `labels` under the best one-to-one map from
    categories to classes (the Hungarian algorithm on the n_cat x n_classes table of counts):
    InfoGAN's categories have no names, so category 3 may well mean the digit 7.
    Returns (accuracy, {category: class})."""
    from scipy.optimize import linear_sum_assignment

    counts = torch.zeros(n_cat, n_classes, dtype=torch.int64)
    counts.index_put_((predicted.cpu(), labels.cpu()), torch.ones(len(labels), dtype=torch.int64), accumulate=True)
    rows, cols = linear_sum_assignment(counts.numpy(), maximize=True)
    return float(counts[rows, cols].sum()) / len(labels), dict(zip(rows.tolist(), cols.tolist()))


@torch.no_grad()
def with_real_statistics(D, images, batch_size=1000):
    """A copy of D whose batch norms hold the mean and variance of real `images` (uint8), averaged over one
    pass: what a real image is normalised by when Q reads it. The running statistics D keeps in training
    come mostly from G's images (each step passes one real batch and two fake ones), so they would
    normalise real digits by statistics of neither kind."""
    D = copy.deepcopy(D).train()
    for layer in D.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average over the pass
    for x in images.split(batch_size):
        D(x.float() / 255)
    return D.eval()


@torch.no_grad()
def categorical_accuracy(D, cfg, images, labels, reference):
    """Q's categorical prediction on held-out uint8 images, scored by matched_accuracy (the paper's
    measure: 5% error on MNIST), with D's batch norms holding the statistics of the real `reference`
    images (the training images): it depends on D's weights alone, not on the statistics it kept."""
    D = with_real_statistics(D, reference[:10_000])  # 10,000 images pin the statistics down well enough
    predicted = torch.cat([D(x.float() / 255)[1].argmax(1) for x in images.split(1000)])
    return matched_accuracy(predicted, labels, cfg["n_cat"], int(labels.max()) + 1)


def describe_accuracy(cfg, accuracy, mapping, step, n_images):
    return (
        f"categorical accuracy of Q on {cfg['dataset']} {utils.range_text(cfg, 'eval_range', n_images)} "
        f"after {step} steps: "
        f"{100 * accuracy:.2f}% (error {100 * (1 - accuracy):.2f}%; category -> class "
        f"{' '.join(f'{k}:{v}' for k, v in sorted(mapping.items()))})"
    )


def eval_accuracy(argv):
    """python infogan.py --eval-accuracy --ckpt PATH: print Q's categorical accuracy."""
    cfg, ckpt, device = utils.eval_config(build_parser, argv, SCRIPT, RESUMABLE, "--eval-accuracy")
    D = build_discriminator(cfg).to(device)
    D.load_state_dict(ckpt["models"]["D"])
    images, labels = utils.load_mnist_range(cfg, "eval_range", device)
    reference = utils.load_mnist_range(cfg, "train_range", device)[0]
    accuracy, mapping = categorical_accuracy(D, cfg, images, labels, reference)
    print(describe_accuracy(cfg, accuracy, mapping, ckpt["step"], len(images)))
    return accuracy


@utils.one_line_errors
def main(argv=None):
    cfg, ckpt = utils.parse_config(build_parser, argv, SCRIPT, RESUMABLE)
    check_flags(cfg)
    if cfg["eval_accuracy"]:
        return eval_accuracy(argv)
    cfg["image_size"], cfg["channels"] = 28, 1  # what the sampler reads off a checkpoint
    device = utils.pick_device(cfg["device"])
    utils.seed_everything(cfg["seed"])
    utils.cuda_kernels(cfg["deterministic"])  # on CUDA: autotuned cuDNN and TF32, or --deterministic kernels
    data, labels = utils.load_mnist_range(cfg, "train_range", device)
    eval_images, eval_labels = utils.load_mnist_range(cfg, "eval_range", device)  # a bad range fails now
    steps_per_epoch = check_data(cfg, data, labels)
    G, D = utils.build_models(cfg, device, build_generator, build_discriminator)
    run_dir = utils.make_run_dir(SCRIPT, cfg)  # only once flags, data and models are good

    opt_g, opt_d = build_optimizers(cfg, G, D)
    G_ema = copy.deepcopy(G).requires_grad_(False) if cfg["ema"] else None  # the average samples come from
    models, optimizers = {"G": G, "D": D} | ({"G_ema": G_ema} if cfg["ema"] else {}), {"G": opt_g, "D": opt_d}
    scalers = {name: torch.amp.GradScaler(device.type, enabled=cfg["amp"] == "fp16") for name in optimizers}
    fixed_noise = sample_latent(cfg, 10, device)[0]  # the grids' columns
    epoch, epoch_step, step = 0, 0, 0  # epoch in progress, batches done in it, optimizer steps in all
    if ckpt:
        utils.restore_training_state(ckpt, models, optimizers, scalers=scalers)
        fixed_noise = ckpt["fixed_noise"].to(device)
        epoch, epoch_step, step = ckpt["epoch"], ckpt["epoch_step"], ckpt["step"]
    # the compiled modules share their parameters with G and D, which are what checkpoints save
    G_train, D_train = (torch.compile(m, mode=cfg["compile"]) for m in (G, D)) if cfg["compile"] else (G, D)
    total_steps = min(cfg["steps"] or math.inf, cfg["epochs"] * steps_per_epoch)
    utils.refuse_finished(cfg, step, total_steps)  # a resumed run asked for no more steps
    log = utils.TrainingLog(run_dir, LOSS_COLUMNS, cfg, status=STATUS, plots=PLOTS,
                            images_per_step=cfg["batch_size"], total_steps=total_steps, step=step,
                            cpu_recipe=CPU_RECIPE)  # fmt: skip

    def checkpoint(name, keep=None):
        path = run_dir / "checkpoints" / name
        progress = dict(epoch=epoch, epoch_step=epoch_step, step=step, fixed_noise=fixed_noise)
        utils.save_training_state(path, SCRIPT, cfg, models, optimizers, scalers=scalers, keep=keep, **progress)
        return path

    print(f"infogan: {len(data)} {cfg['dataset']} images ({utils.range_text(cfg, 'train_range', len(data))}) "
          f"on {device}, "
          f"codes Cat({cfg['n_cat']}) + {cfg['n_cont']} continuous, {steps_per_epoch} steps/epoch, "
          f"writing to {run_dir}")  # fmt: skip
    with utils.save_on_interrupt(log, lambda: checkpoint("last.pt")):
        while step < total_steps:
            for real in epoch_batches(data, cfg, epoch, epoch_step, device):
                latent = sample_latent(cfg, real.shape[0], device)
                n_labelled, bs = cfg["supervised"], cfg["batch_size"]
                labelled = labelled_batch(data, labels, n_labelled, bs, device) if n_labelled else None
                metrics = train_step(G_train, D_train, opt_g, opt_d, real, latent, cfg, labelled, cfg["amp"],
                                     (scalers["D"], scalers["G"]))  # fmt: skip
                step, epoch_step = step + 1, epoch_step + 1
                if cfg["ema"]:
                    update_ema(G_ema, G, ema_decay(cfg["ema"], step))
                log.add(metrics, step, epoch)
                if step >= total_steps:
                    break
            log.flush()
            save_grids(G_ema or G, cfg, fixed_noise, run_dir / "samples", epoch + 1)  # what the sampler will draw
            utils.save_progress_gif(run_dir / "samples", run_dir / "progress.gif")
            log.plot()
            if epoch_step == steps_per_epoch:  # a full epoch: the next one starts at its first batch
                epoch, epoch_step = epoch + 1, 0
                if epoch % cfg["save_every"] == 0:
                    checkpoint(f"epoch_{epoch:03d}.pt", keep=SNAPSHOT)
            checkpoint("last.pt")
    print(f"measuring Q's categorical accuracy on {len(eval_images):,} held-out images ...", flush=True)
    began = time.perf_counter()
    accuracy, mapping = categorical_accuracy(D, cfg, eval_images, eval_labels, data)
    print(describe_accuracy(cfg, accuracy, mapping, step, len(eval_images)) + f" [{time.perf_counter() - began:.1f} s]")
    print(
        f"done: {utils.plural(step, 'step')}; samples, traversals, progress.gif, losses.csv and "
        f"checkpoints/last.pt in {run_dir}"
    )
    return run_dir


if __name__ == "__main__":
    main()
