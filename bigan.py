"""BiGAN: Donahue, Kraehenbuehl & Darrell 2016, "Adversarial Feature Learning" (arXiv:1605.09782),
its permutation-invariant MNIST experiment (Appendix C.1) as the authors' code builds it
(jeffdonahue/bigan: train_mnist.sh, net.py's mnist_mlp nets), with the changes of a public
PyTorch replication available as flags.

A GAN maps noise to images and has no way back. BiGAN learns the way back as well: an encoder
E maps an image x to a code E(x), and the discriminator no longer judges images alone but
pairs: (x, E(x)) for real images, (G(z), z) for generated ones. The only way G and E can make
the two kinds of pair look alike is for E to invert G, so E learns, without labels, features
that a linear classifier can read the digit from. That is what the linear probe below measures
(against an encoder of the same shape left at its random initialisation), with the paper's own
measure beside it: 1-nearest-neighbour accuracy in feature space (97.39% on MNIST, Table 1).

  D loss      BCE(D(x, E(x)), 1) + BCE(D(G(z), z), 0)
  G, E loss   BCE(D(x, E(x)), 0) + BCE(D(G(z), z), 1)   (non-saturating, as the authors'
              code trains; --loss minimax for the paper's min-max form, -(D loss))

Run:
  python bigan.py --epochs 100                                  # MNIST, probe on its test set
  python bigan.py --epochs 150                                  # only MNIST's test file, split (docs/running.md)
  python bigan.py --dataset fashion-mnist
  python bigan.py --eval-probe --ckpt runs/bigan/<name>/checkpoints/last.pt
  python sampler.py reconstruct --ckpt runs/bigan/<name>/checkpoints/last.pt
  python sampler.py encode --ckpt PATH --images digits/ --out feats.npz

Writes, under runs/bigan/<dataset>-<time>/ (or --out):
  samples/epoch_001.png ...        G(z) from fixed noise, after every epoch
  samples/recon_epoch_001.png ...  fixed held-out images x beside their reconstructions G(E(x)),
                                   in pairs of columns (x, G(E(x)))
  progress.gif                     the sample grids as one animation
  losses.csv, losses.png           D and G/E losses, D(x, E(x)), D(G(z), z), lr, images/s
  checkpoints/last.pt              after every epoch and on Ctrl-C; epoch_XXX.pt every --save-every
and prints the linear-probe and 1-NN accuracies of E and of a random E at the end (fitted on the
--train-range images, scored on the --eval-range ones: by default the whole training and test files).

The GAN, in plain PyTorch, is everything above the line "# ==== the run": copy it alone and
drive it from your own loop; the probes are there too. Below that line: flags, resume, outputs.
"""

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.utils import save_image

# --------------------------------------------------------------------------- hyper-parameters
# The authors' values (Appendix C.1; train_mnist.sh and the defaults of train_gan.py); the run's flags
# default to them, and a run's config is this dict with its flags applied.
HPARAMS = dict(
    z_dim=50,  # size of z, and of E's output
    noise="uniform",  # z ~ U(-1, 1) (train_mnist.sh: u-50), E's output squashed into it; "normal": N(0, 1)
    hidden=1024,  # units of every hidden layer
    affine=False,  # --nogain --nobias: no learnable scale or shift in batch norm, no biases; True: both
    update="simultaneous",  # update_both: D and G/E step together from one forward pass; or "alternating"
    batch_size=128,
    lr=2e-4,  # Adam, for G, E and D alike
    beta1=0.5,
    beta2=0.999,
    weight_decay=2.5e-5,  # an L2 penalty on all weights, added to their gradients (--decay)
    loss="non-saturating",  # G and E fool D with its labels flipped; "minimax": minimise -(D's loss)
    epochs=400,  # 200 at a constant learning rate, then 200 as it decays
    decay_epochs=None,  # epochs at the end over which the learning rate decays; None: the second half of the run
    lr_decay="exponential",  # geometrically, epoch by epoch, to 1% of lr in the last; "linear": step by step to 0
    ema=0.0,  # not in the paper: sample from an average of G's weights with this decay; measured no better here
)
VALUE_RANGE = (0.0, 1.0)  # G ends in a sigmoid, as the authors' code: images in [0, 1]
PROBE_LAYERS = ("code", "hidden")  # E's output E(x), and its last hidden layer (before the final linear map)


# --------------------------------------------------------------------------- models
def init_weights(module):
    """The authors' initialisation: weights from N(0, 0.02), biases 0."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def batch_norm(features, affine):
    """Batch norm without (the authors') or with a learnable scale and shift after the normalisation."""
    return nn.BatchNorm1d(features, affine=affine)


class Generator(nn.Module):
    """z -> FC 1024, BN, ReLU -> FC 1024 (+ a linear map of z), BN, ReLU -> FC 784 -> sigmoid.
    z enters the second layer again, as in the authors' deconvnet_mnist_mlp."""

    def __init__(self, z_dim, hidden, affine):
        super().__init__()
        # fmt: off
        self.fc1 = nn.Sequential(nn.Linear(z_dim, hidden, bias=False), batch_norm(hidden, affine), nn.ReLU(True))
        self.fc2 = nn.Linear(hidden, hidden, bias=False)                                      # hidden
        self.z2 = nn.Linear(z_dim, hidden, bias=False)                                        # hidden, added to fc2's
        self.out = nn.Sequential(batch_norm(hidden, affine), nn.ReLU(True),
                                 nn.Linear(hidden, 28 * 28, bias=affine), nn.Sigmoid())       # 784, in [0, 1]
        # fmt: on

    def forward(self, z):
        return self.out(self.fc2(self.fc1(z)) + self.z2(z)).view(-1, 1, 28, 28)  # 1 x 28 x 28


class Encoder(nn.Module):
    """x -> FC 1024, LReLU 0.2 -> FC 1024, BN, LReLU 0.2 -> FC z_dim (E(x), a point in z's space).
    With uniform noise E(x) is squashed into z's cube [-1, 1], 2 sigmoid(.) - 1, as the authors'
    UniformDistribution: else D could tell any real pair with a coordinate outside it from every
    generated one. `features(x)` also returns the last hidden layer, which the probes read too."""

    def __init__(self, z_dim, hidden, affine, bounded):
        super().__init__()
        self.bounded = bounded
        # fmt: off
        self.body = nn.Sequential(
            nn.Flatten(),                                                                     # 784
            nn.Linear(28 * 28, hidden, bias=affine), nn.LeakyReLU(0.2, True),                 # hidden
            nn.Linear(hidden, hidden, bias=False), batch_norm(hidden, affine), nn.LeakyReLU(0.2, True),  # "hidden"
        )
        self.out = nn.Linear(hidden, z_dim, bias=affine)                                      # "code": E(x)
        # fmt: on

    def features(self, x):
        hidden = self.body(x)
        code = self.out(hidden)
        return {"code": 2 * torch.sigmoid(code) - 1 if self.bounded else code, "hidden": hidden}

    def forward(self, x):
        return self.features(x)["code"]


class JointDiscriminator(nn.Module):
    """(x, z) -> x: FC 1024, LReLU 0.2 -> FC 1024 + a linear map of z, BN, LReLU 0.2 -> FC 1 (a logit).
    z joins at the hidden layer through a learned linear term (net.py's apply_cond)."""

    def __init__(self, z_dim, hidden, affine):
        super().__init__()
        # fmt: off
        self.x1 = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden, bias=affine), nn.LeakyReLU(0.2, True))
        self.x2 = nn.Linear(hidden, hidden, bias=False)                                       # hidden
        self.z2 = nn.Linear(z_dim, hidden, bias=False)                                        # hidden, added to x2's
        self.out = nn.Sequential(batch_norm(hidden, affine), nn.LeakyReLU(0.2, True),
                                 nn.Linear(hidden, 1, bias=affine))                           # the logit
        # fmt: on

    def forward(self, x, z):
        return self.out(self.x2(self.x1(x)) + self.z2(z)).view(-1)


def build_generator(cfg):
    """G for a config (HPARAMS with a run's flags applied); the sampler rebuilds G through this."""
    return Generator(cfg["z_dim"], cfg["hidden"], cfg["affine"]).apply(init_weights)


def build_encoder(cfg):
    """E for a config; the sampler's encode and reconstruct rebuild E through this."""
    return Encoder(cfg["z_dim"], cfg["hidden"], cfg["affine"], bounded=cfg["noise"] == "uniform").apply(init_weights)


def build_discriminator(cfg):
    D = JointDiscriminator(cfg["z_dim"], cfg["hidden"], cfg["affine"]).apply(init_weights)
    nn.init.zeros_(D.out[-1].weight)  # the authors start D's output at 0: every first guess is 1/2
    return D


def build_optimizers(cfg, G, E, D):
    """Adam for G and E together (one player) and for D, as the authors; weight_decay adds the L2
    penalty's gradient to each weight's, as their updater does. fused: one kernel per step."""
    adam = dict(lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), weight_decay=cfg["weight_decay"], fused=True)
    return torch.optim.Adam([*G.parameters(), *E.parameters()], **adam), torch.optim.Adam(D.parameters(), **adam)


def learning_rate(cfg, epoch_progress):
    """The step size, epoch_progress epochs into the run (fractional: step / steps per epoch): lr,
    then over the last decay_epochs epochs (by default the second half of the run) it decays:
    "exponential", the authors' (train_gan.py without --linear_decay), set once an epoch and falling
    geometrically to 1% of lr in the last epoch; or "linear", step by step to 0 at the end."""
    decay_epochs = cfg["decay_epochs"] or cfg["epochs"] / 2
    if cfg["lr_decay"] == "linear":
        return cfg["lr"] * min(1.0, max(0.0, (cfg["epochs"] - epoch_progress) / decay_epochs))
    decayed = (math.floor(epoch_progress) - (cfg["epochs"] - decay_epochs) + 1) / decay_epochs  # 1 in the last
    return cfg["lr"] * 0.01 ** min(1.0, max(0.0, decayed))


def sample_noise(cfg, n, device="cpu", generator=None):
    """n noise vectors z, shaped (n, z_dim), from the run's noise distribution."""
    if cfg["noise"] == "uniform":
        return torch.rand(n, cfg["z_dim"], device=device, generator=generator) * 2 - 1
    return torch.randn(n, cfg["z_dim"], device=device, generator=generator)


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


# --------------------------------------------------------------------------- training step
def d_objective(real_logits, fake_logits):
    """D's loss: BCE(D(x, E(x)), 1) and BCE(D(G(z), z), 0), averaged, as the authors weight them (1/2 each)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return (real + fake) / 2


def ge_objective(real_logits, fake_logits, loss):
    """G and E's loss: non-saturating, D's labels flipped, BCE(D(x, E(x)), 0) and BCE(D(G(z), z), 1)
    averaged (strong gradients while D wins; the authors'), or minimax, -(D's loss)."""
    if loss == "minimax":
        return -d_objective(real_logits, fake_logits)
    return d_objective(fake_logits, real_logits)  # the flipped labels: real pairs called fake, fake ones real


def train_step(G, E, D, opt_ge, opt_d, real, z, cfg, amp=None, scalers=None):
    """One update of D and one joint update of G and E: both from the same forward pass at once
    (cfg["update"] "simultaneous", the authors' update_both), or D's first, then G and E's through
    the freshly updated D ("alternating"). Returns detached [d_loss, ge_loss, D(x, E(x)), D(G(z), z)]
    (the last two as probabilities). amp: None (fp32), "bf16" or "fp16", autocast's type for the
    forward passes; fp16 needs `scalers`, a torch.amp.GradScaler for D's optimizer and one for G and
    E's (see dcgan.py's train_step)."""
    scaler_d, scaler_ge = scalers or [torch.amp.GradScaler(enabled=False)] * 2  # disabled: no scaling at all
    autocast = torch.autocast(
        real.device.type, dtype=torch.float16 if amp == "fp16" else torch.bfloat16, enabled=bool(amp)
    )
    with autocast:
        fake, code = G(z), E(real)
        real_logits, fake_logits = D(real, code).float(), D(fake, z).float()
    d_loss = d_objective(real_logits, fake_logits)

    if cfg["update"] == "simultaneous":
        # (1) D: maximise log D(x, E(x)) + log(1 - D(G(z), z)), and
        # (2) G and E: maximise log(1 - D(x, E(x))) + log D(G(z), z), both at the weights as they were:
        #     each loss's gradient goes to its own player's weights only
        ge_loss = ge_objective(real_logits, fake_logits, cfg["loss"])
        scaler_d.scale(d_loss).backward(inputs=list(D.parameters()), retain_graph=True)
        scaler_ge.scale(ge_loss).backward(inputs=[*G.parameters(), *E.parameters()])
        scaler_d.step(opt_d), scaler_ge.step(opt_ge)  # unscaled first; with fp16, no step if any overflowed
        scaler_d.update(), scaler_ge.update()
        opt_d.zero_grad(set_to_none=True), opt_ge.zero_grad(set_to_none=True)
    else:
        # (1) D: maximise log D(x, E(x)) + log(1 - D(G(z), z)): tell the real pairs from the generated ones
        scaler_d.scale(d_loss).backward(inputs=list(D.parameters()))  # no gradient into G or E from this update
        scaler_d.step(opt_d)
        scaler_d.update()
        opt_d.zero_grad(set_to_none=True)
        # (2) G and E: maximise log(1 - D(x, E(x))) + log D(G(z), z), through the freshly updated D
        D.requires_grad_(False)  # G and E's step needs gradients through D, not of its weights
        with autocast:
            ge_loss = ge_objective(D(real, code).float(), D(fake, z).float(), cfg["loss"])
        scaler_ge.scale(ge_loss).backward()
        scaler_ge.step(opt_ge)
        scaler_ge.update()
        opt_ge.zero_grad(set_to_none=True)
        D.requires_grad_(True)

    d_real, d_fake = torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()
    return torch.stack([d_loss, ge_loss, d_real, d_fake]).detach().float()


@torch.no_grad()
def reconstruct(G, E, images):
    """G(E(x)) for images in [0, 1], both networks in eval mode (batch norm's running statistics)."""
    G.eval(), E.eval()
    out = G(E(images))
    G.train(), E.train()
    return out


@torch.no_grad()
def generate(G, z):
    """G(z) as floats, with G in eval mode: batch norm uses its running statistics, so a sample
    does not depend on the others drawn with it."""
    G.eval()
    samples = G(z).float()
    G.train()
    return samples


def save_grids(G, E, fixed_noise, fixed_real, folder, epoch):
    """In `folder`: epoch_XXX.png, a grid of G(fixed_noise), and recon_epoch_XXX.png, the fixed
    held-out images x beside G(E(x)) in pairs of columns; the same z and x every epoch."""
    save_image(generate(G, fixed_noise).cpu(), Path(folder) / f"epoch_{epoch:03d}.png", normalize=True,
               value_range=VALUE_RANGE)  # fmt: skip
    pairs = torch.stack([fixed_real, reconstruct(G, E, fixed_real)], dim=1).flatten(0, 1)  # x, G(E(x)), x, ...
    save_image(
        pairs.float().cpu(),
        Path(folder) / f"recon_epoch_{epoch:03d}.png",
        nrow=16,
        normalize=True,
        value_range=VALUE_RANGE,
    )


# --------------------------------------------------------------------------- evaluation: the probes
@torch.no_grad()
def encode(E, images, batch_size=1000):
    """E's features, {layer: (N, dim)}, of uint8 images, E in eval mode."""
    E.eval()
    parts = [E.features(x.float() / 255) for x in images.split(batch_size)]
    E.train()
    return {layer: torch.cat([p[layer] for p in parts]).float() for layer in PROBE_LAYERS}


@torch.no_grad()
def random_encoder(cfg, train_images, device, seed=1):
    """The baseline: an encoder of the same shape at its random initialisation (seeded), whose
    batch-norm statistics (the only thing it could learn without training) are those of the
    training images, accumulated over one pass."""
    torch.manual_seed(seed)
    E = build_encoder(cfg).to(device)
    for module in E.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.momentum = None  # a cumulative average over the pass
    for x in train_images.split(1000):
        E(x.float() / 255)
    return E


def standardize(train, test):
    """Both feature sets z-scored with the training set's per-dimension mean and std."""
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return (train - mean) / std, (test - mean) / std


def linear_probe(train_x, train_y, test_x, test_y, l2=1e-4, iterations=300):
    """Held-out accuracy of a softmax linear classifier fitted, full batch with L-BFGS, on
    standardized training features (cross-entropy + l2 * ||W||^2)."""
    train_x, test_x = standardize(train_x, test_x)
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    linear = nn.Linear(train_x.shape[1], n_classes).to(train_x.device)
    nn.init.zeros_(linear.weight)
    optimizer = torch.optim.LBFGS(
        linear.parameters(), lr=1, max_iter=iterations, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(train_x), train_y) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return (linear(test_x).argmax(1) == test_y).float().mean().item()


@torch.no_grad()
def nearest_neighbour(train_x, train_y, test_x, test_y, batch_size=1000):
    """Held-out accuracy of 1-nearest-neighbour (Euclidean, on standardized features): the paper's measure."""
    train_x, test_x = standardize(train_x, test_x)
    nearest = torch.cat([torch.cdist(chunk, train_x).argmin(1) for chunk in test_x.split(batch_size)])
    return (train_y[nearest] == test_y).float().mean().item()


def probe(E, cfg, train, held_out, device):
    """{(encoder, layer, probe): accuracy} for E and for a random encoder, on both layers;
    train and held_out are (uint8 images, labels)."""
    results = {}
    for name, encoder in (("BiGAN E", E), ("random E", random_encoder(cfg, train[0], device))):
        train_features, test_features = encode(encoder, train[0]), encode(encoder, held_out[0])
        for layer in PROBE_LAYERS:
            args = train_features[layer], train[1], test_features[layer], held_out[1]
            results[name, layer, "linear"] = linear_probe(*args)
            results[name, layer, "1-NN"] = nearest_neighbour(*args)
    return results


# ==== the run: flags, resume, outputs (utils.py) ========================================================
import copy  # noqa: E402
import time  # noqa: E402

import utils  # noqa: E402

SCRIPT = "bigan"
SNAPSHOT = ("G", "G_ema", "E")  # what checkpoints/epoch_XXX.pt keep: the nets that sample and score
LOSS_COLUMNS = ["d_loss", "ge_loss", "d_real", "d_fake"]  # what train_step returns; losses.csv adds lr, images_per_s
STATUS = "D {d_loss:.3f} G/E {ge_loss:.3f} D(x,E(x)) {d_real:.2f} D(G(z),z) {d_fake:.2f} lr {lr:.2e}"
PLOTS = {"losses": ["d_loss", "ge_loss"], "D's outputs": ["d_real", "d_fake"], "learning rate": ["lr"]}
# said when a run on a CPU would take hours: the shorter run its docs page measured
CPU_RECIPE = "docs/bigan.md measured `python bigan.py --epochs 150 --amp` on 8,000 digits: 10 min"


def build_parser():
    p = utils.ArgumentParser(description="BiGAN (Donahue et al. 2016) on MNIST or Fashion-MNIST.")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"], help="28x28 grey images")
    data.add_argument("--data-root", default="./data", help="where torchvision data sets live or are downloaded to")
    data.add_argument(
        "--train-range",
        type=utils.data_range,
        help="images trained on, and on which the probes are fitted (default: the whole training file)",
    )
    data.add_argument(
        "--eval-range",
        type=utils.data_range,
        help="held-out labelled images on which the probes are scored (default: the whole test file)",
    )

    h = HPARAMS
    model = p.add_argument_group("model (Appendix C.1; net.py mnist_mlp)")
    model.add_argument("--z-dim", type=utils.positive_int, default=h["z_dim"], help="size of z, and of E's output")
    model.add_argument(
        "--noise",
        default=h["noise"],
        choices=["normal", "uniform"],
        help="z ~ U(-1, 1), the authors', with E(x) squashed into [-1, 1]; or N(0, 1), a public replication's",
    )
    model.add_argument("--hidden", type=utils.positive_int, default=h["hidden"], help="units of every hidden layer")
    model.add_argument(
        "--affine",
        action="store_true",
        help="learnable scale and shift in batch norm and biases in the layers (a public replication's); the "
        "authors ran without (--nogain --nobias)",
    )

    optim = p.add_argument_group("optimisation")
    optim.add_argument(
        "--epochs",
        type=utils.positive_int,
        default=h["epochs"],
        help="passes over the training images (the authors: 200 + 200 of decay)",
    )
    optim.add_argument(
        "--decay-epochs",
        type=utils.positive_int,
        help="the learning rate decays over the last N epochs (default: the second half of the run; the "
        "authors: 200 of 400)",
    )
    optim.add_argument(
        "--lr-decay",
        default=h["lr_decay"],
        choices=["exponential", "linear"],
        help="exponential: set once an epoch, falling geometrically to 1%% of --lr in the last (the authors'); "
        "linear: step by step to 0",
    )
    optim.add_argument(
        "--update",
        default=h["update"],
        choices=["simultaneous", "alternating"],
        help="simultaneous: D and G/E step together from one forward pass (the authors' update_both); "
        "alternating: D first, then G and E through the updated D",
    )
    optim.add_argument("--batch-size", type=utils.positive_int, default=h["batch_size"], help="images per step")
    optim.add_argument("--lr", type=utils.positive_float, default=h["lr"], help="Adam learning rate of G, E and D")
    optim.add_argument("--beta1", type=float, default=h["beta1"], help="Adam beta1")
    optim.add_argument("--beta2", type=float, default=h["beta2"], help="Adam beta2")
    optim.add_argument(
        "--weight-decay",
        type=float,
        default=h["weight_decay"],
        help="L2 penalty on all weights, added to their gradients (the authors'; 0 for none)",
    )
    optim.add_argument(
        "--loss",
        default=h["loss"],
        choices=["non-saturating", "minimax"],
        help="G and E's loss: fool D with flipped labels, or minimise -(D's loss)",
    )
    optim.add_argument(
        "--steps",
        type=utils.positive_int,
        help="stop after this many optimizer steps in total (for smoke tests and benchmarks)",
    )

    utils.add_run_flags(
        p,
        SCRIPT,
        ema=HPARAMS["ema"],
        compile_help="torch.compile G, E and D; 'reduce-overhead' also captures CUDA graphs",
    )
    run = p.add_argument_group("outputs and evaluation")
    run.add_argument("--sample-size", type=utils.positive_int, default=64, help="samples in each epoch's grid")
    run.add_argument(
        "--eval-probe",
        action="store_true",
        help="print the linear-probe and 1-NN accuracies of --ckpt's encoder and of a random one, and exit",
    )
    run.add_argument("--ckpt", help="checkpoint (or run folder) to evaluate with --eval-probe")
    run.add_argument(
        "--probe-images",
        type=int,
        default=10_000,
        help="the probes (at the end of a run, or --eval-probe) fit on this many training images and score on as "
        "many held-out ones, so that they take seconds, not minutes (0: all)",
    )
    return p


# flags that may change when a run is resumed or evaluated; everything else must match the checkpoint
RESUMABLE = utils.RESUMABLE_RUN_FLAGS | {
    "epochs",
    "steps",
    "data_root",
    "eval_range",
    "eval_probe",
    "ckpt",
    "probe_images",
}


def check_flags(cfg):
    for beta in ("beta1", "beta2"):
        if not 0 <= cfg[beta] < 1:
            utils.die(f"--{beta} must be in [0, 1), got {cfg[beta]}")
    if cfg["weight_decay"] < 0:
        utils.die(f"--weight-decay must be 0 or more, got {cfg['weight_decay']}")
    if (cfg["decay_epochs"] or 0) > cfg["epochs"]:
        utils.die(f"--decay-epochs {cfg['decay_epochs']} is more than --epochs {cfg['epochs']}")


def check_data(cfg, data):
    """The steps of an epoch, once the training images are known to fill at least one batch."""
    if len(data) < cfg["batch_size"]:
        utils.die(f"--batch-size {cfg['batch_size']} is larger than the training set ({len(data)} images)")
    return len(data) // cfg["batch_size"]


def held_out_images(cfg, n, device="cpu"):
    """The first n images of the run's --eval-range as uint8 (n, 1, 28, 28), with their labels:
    what the reconstruction grids show, and what the sampler's reconstruct uses by default."""
    images, labels = utils.load_mnist_range(cfg, "eval_range", device)
    return images[:n], labels[:n]


def describe_probe(cfg, results, step, seconds, n_train, n_held_out):
    span = lambda which, n: f"{cfg['dataset']} {utils.range_text(cfg, which, n)}"
    lines = [
        f"probes after {step} steps: fitted on {span('train_range', n_train)}, scored on "
        f"{span('eval_range', n_held_out)} (features standardized; 'code' = E(x), {cfg['z_dim']}-d; "
        f"'hidden' = E's last hidden layer, {cfg['hidden']}-d) [{seconds:.0f} s]"
    ]
    for encoder in ("BiGAN E", "random E"):
        lines.append(
            f"  {encoder:9s}"
            + "".join(
                f"  {layer} {kind} {100 * results[encoder, layer, kind]:.2f}%"
                for layer in PROBE_LAYERS
                for kind in ("linear", "1-NN")
            )
        )
    return "\n".join(lines)


def report_probe(E, cfg, train, held_out, device, step):
    """Print the probes' accuracies for E (and a random E), fitted on the first --probe-images training
    images and scored on as many held-out ones (0: all); return them."""
    n = cfg["probe_images"] or None
    train, held_out = (train[0][:n], train[1][:n]), (held_out[0][:n], held_out[1][:n])
    print(f"probing E and a random E: encoding {len(train[0]):,} training and {len(held_out[0]):,} held-out images, "
          f"then a linear probe and 1-NN on each ...", flush=True)  # fmt: skip
    began = time.perf_counter()
    results = probe(E, cfg, train, held_out, device)
    print(describe_probe(cfg, results, step, time.perf_counter() - began, len(train[0]), len(held_out[0])))
    return results


def eval_probe(argv):
    """python bigan.py --eval-probe --ckpt PATH: print the probes' accuracies."""
    cfg, ckpt, device = utils.eval_config(build_parser, argv, SCRIPT, RESUMABLE, "--eval-probe")
    E = build_encoder(cfg).to(device)
    E.load_state_dict(ckpt["models"]["E"])
    train, held_out = (utils.load_mnist_range(cfg, which, device) for which in ("train_range", "eval_range"))
    return report_probe(E, cfg, train, held_out, device, ckpt["step"])


@utils.one_line_errors
def main(argv=None):
    cfg, ckpt = utils.parse_config(build_parser, argv, SCRIPT, RESUMABLE)
    check_flags(cfg)
    if cfg["eval_probe"]:
        return eval_probe(argv)
    cfg["image_size"], cfg["channels"] = 28, 1  # what the sampler reads off a checkpoint
    device = utils.pick_device(cfg["device"])
    utils.seed_everything(cfg["seed"])
    utils.cuda_kernels(cfg["deterministic"])  # on CUDA: autotuned cuDNN and TF32, or --deterministic kernels
    data, labels = utils.load_mnist_range(cfg, "train_range", device)
    held_out = utils.load_mnist_range(cfg, "eval_range", device)  # a bad range fails before training
    steps_per_epoch = check_data(cfg, data)
    G, E, D = utils.build_models(cfg, device, build_generator, build_encoder, build_discriminator)
    run_dir = utils.make_run_dir(SCRIPT, cfg)  # only once flags, data and models are good

    opt_ge, opt_d = build_optimizers(cfg, G, E, D)
    G_ema = copy.deepcopy(G).requires_grad_(False) if cfg["ema"] else None  # the average samples come from
    models = {"G": G, "E": E, "D": D} | ({"G_ema": G_ema} if cfg["ema"] else {})
    optimizers = {"GE": opt_ge, "D": opt_d}
    scalers = {name: torch.amp.GradScaler(device.type, enabled=cfg["amp"] == "fp16") for name in optimizers}
    fixed_noise = sample_noise(cfg, cfg["sample_size"], device)
    fixed_real = held_out[0][:64].float() / 255  # the reconstruction grids' images, never trained on
    epoch, epoch_step, step = 0, 0, 0  # epoch in progress, batches done in it, optimizer steps in all
    if ckpt:
        utils.restore_training_state(ckpt, models, optimizers, scalers=scalers)
        fixed_noise = ckpt["fixed_noise"].to(device)
        epoch, epoch_step, step = ckpt["epoch"], ckpt["epoch_step"], ckpt["step"]
    # the compiled modules share their parameters with G, E and D, which are what checkpoints save
    G_train, E_train, D_train = (torch.compile(m, mode=cfg["compile"]) if cfg["compile"] else m for m in (G, E, D))
    total_steps = min(cfg["steps"] or math.inf, cfg["epochs"] * steps_per_epoch)
    utils.refuse_finished(cfg, step, total_steps)  # a resumed run asked for no more steps
    log = utils.TrainingLog(run_dir, LOSS_COLUMNS, cfg, status=STATUS, plots=PLOTS,
                            images_per_step=cfg["batch_size"], total_steps=total_steps, step=step,
                            cpu_recipe=CPU_RECIPE, extra_columns=["lr"],
                            extra=lambda: {"lr": opt_d.param_groups[0]["lr"]})  # fmt: skip

    def checkpoint(name, keep=None):
        path = run_dir / "checkpoints" / name
        progress = dict(epoch=epoch, epoch_step=epoch_step, step=step, fixed_noise=fixed_noise)
        utils.save_training_state(path, SCRIPT, cfg, models, optimizers, scalers=scalers, keep=keep, **progress)
        return path

    print(f"bigan: {len(data)} {cfg['dataset']} images ({utils.range_text(cfg, 'train_range', len(data))}) "
          f"on {device}, z {cfg['z_dim']}-d {cfg['noise']}, {steps_per_epoch} steps/epoch, "
          f"writing to {run_dir}")  # fmt: skip
    with utils.save_on_interrupt(log, lambda: checkpoint("last.pt")):
        while step < total_steps:
            for real in epoch_batches(data, cfg, epoch, epoch_step, device):
                for opt in (opt_ge, opt_d):  # a python float per step: no host sync
                    opt.param_groups[0]["lr"] = learning_rate(cfg, step / steps_per_epoch)
                z = sample_noise(cfg, real.shape[0], device)
                metrics = train_step(G_train, E_train, D_train, opt_ge, opt_d, real, z, cfg, cfg["amp"],
                                     (scalers["D"], scalers["GE"]))  # fmt: skip
                step, epoch_step = step + 1, epoch_step + 1
                if cfg["ema"]:
                    update_ema(G_ema, G, ema_decay(cfg["ema"], step))
                log.add(metrics, step, epoch)
                if step >= total_steps:
                    break
            log.flush()
            save_grids(G_ema or G, E, fixed_noise, fixed_real, run_dir / "samples", epoch + 1)  # as the sampler draws
            utils.save_progress_gif(run_dir / "samples", run_dir / "progress.gif")
            log.plot()
            if epoch_step == steps_per_epoch:  # a full epoch: the next one starts at its first batch
                epoch, epoch_step = epoch + 1, 0
                if epoch % cfg["save_every"] == 0:
                    checkpoint(f"epoch_{epoch:03d}.pt", keep=SNAPSHOT)
            checkpoint("last.pt")
    report_probe(E, cfg, (data, labels), held_out, device, step)
    print(
        f"done: {utils.plural(step, 'step')}; samples, reconstructions, progress.gif, losses.csv and "
        f"checkpoints/last.pt in {run_dir}"
    )
    return run_dir


if __name__ == "__main__":
    main()
