"""CycleGAN: Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks" (arXiv:1703.10593), as the authors' PyTorch code trains it
(junyanz/pytorch-CycleGAN-and-pix2pix: networks.py's ResnetGenerator and NLayerDiscriminator,
cycle_gan_model.py, util/image_pool.py), scaled to 32x32 images by default.

Two domains, A and B, and no pairs between them. Two generators translate, G: A -> B and
F: B -> A, and two discriminators judge, D_A real A images against F's, D_B real B images
against G's. Fooling a discriminator alone would let G map every a to any b; the cycle losses
ask that a translation can be undone, F(G(a)) = a and G(F(b)) = b, so what an image shows
(here: which digit) survives the trip and only its style (here: its colours) changes.

  D_A, D_B   least squares: (D(real) - 1)^2 + D(fake)^2, halved; fakes drawn from a pool of
             the last 50 generated images, so D does not chase G's latest step only
  G, F       (D_B(G(a)) - 1)^2 + (D_A(F(b)) - 1)^2
             + lambda (|F(G(a)) - a| + |G(F(b)) - b|)                 cycle, lambda = 10
             + 0.5 lambda (|G(b) - b| + |F(a) - a|)                   identity (--identity 0: off)

Data: domain A is grey MNIST digits, domain B colour MNIST made from *other* digits (the first
and second halves of --train-range, by default the whole training file; each B image given
random foreground and background colours, fixed by --seed), padded from 28 to 32 pixels, so no
image is in both domains. Held out: the halves of --eval-range, by default the whole test file.
--dataset fashion-mnist the same way; --folder-a DIR --folder-b DIR for any two folders of images.

Run:
  python cyclegan.py --batch-size 1 --epochs 200             # the paper's schedule (slow on a CPU)
  python cyclegan.py --ngf 16 --ndf 32 --batch-size 8 --epochs 6 --decay-epochs 3   # the CPU run of docs/cyclegan.md
  python cyclegan.py --folder-a horses/ --folder-b zebras/ --image-size 128
  python cyclegan.py --eval --ckpt runs/cyclegan/<name>/checkpoints/last.pt
  python sampler.py translate --ckpt PATH --input DIR|FILE.npz --direction a2b --out translated/ --cycle

Writes, under runs/cyclegan/<dataset>-<time>/ (or --out):
  samples/epoch_001.png ...  rows: held-out a | G(a) | F(G(a)) | b | F(b) | G(F(b)), after every epoch
  progress.gif               the epoch grids as one animation
  losses.csv, losses.png     D_A, D_B, the generators' GAN, cycle and identity losses, lr, images/s
  checkpoints/last.pt        after every epoch and on Ctrl-C (with both image pools); epoch_XXX.pt every --save-every
and prints, on held-out images, the cycle errors each way and (for digits) how often a digit
classifier still reads the same digit after translation.

The GAN, in plain PyTorch, is everything above the line "# ==== the run": copy it alone and
drive it from your own loop. Below that line: flags, resume, torchrun, outputs, the digit
domains and the scores.
"""

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torchvision.utils import save_image

# The paper's names are the code's: G: A -> B, F: B -> A, D_A: real a vs F(b), D_B: real b vs G(a).
# (F is that generator throughout this file, so torch.nn.functional is written out, never imported as F.)

# --------------------------------------------------------------------------- hyper-parameters
# The paper's values (the authors' code's defaults); the run's flags default to them, and a run's
# config is this dict with its flags applied.
HPARAMS = dict(
    ngf=64,  # filters of G's and F's first layer; the later ones double it, then quadruple it
    ndf=64,  # filters of the discriminators' first layer
    n_blocks=6,  # residual blocks in G and F: 6 up to 128x128 images, 9 at 256x256
    d_layers=2,  # stride-2 layers of the PatchGAN: 34x34 patches at 32x32 (paper: 3, 70x70 patches at 256x256)
    norm="instance",  # in all four nets: instance, batch or none
    channels=3,  # both domains enter as RGB (grey images as three equal channels)
    batch_size=1,
    lr=2e-4,  # Adam, for both optimizers; beta2 is 0.999
    beta1=0.5,
    epochs=200,  # the learning rate is constant for epochs - decay_epochs epochs,
    decay_epochs=100,  # then decays linearly to 0
    cycle_weight=10.0,  # lambda, each way
    identity=0.5,  # the identity loss's weight as a fraction of lambda (0: off)
    pool_size=50,  # generated images each discriminator draws its fakes from (0: no pool)
    augment=True,  # image folders: resize to 286 (for 256), random crop, random mirror; never for the digits
)
VALUE_RANGE = (-1.0, 1.0)  # tanh outputs; data in [-1, 1]


# --------------------------------------------------------------------------- models
def init_weights(module):
    """The authors' 'normal' initialisation: conv weights from N(0, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.zeros_(module.bias)


NORMS = {"instance": nn.InstanceNorm2d, "batch": nn.BatchNorm2d, "none": lambda channels: nn.Identity()}


def conv_norm_relu(conv, norm):
    return [conv, norm(conv.out_channels), nn.ReLU(True)]


class ResidualBlock(nn.Module):
    """R256: x + (reflect-pad, 3x3 conv, IN, ReLU, reflect-pad, 3x3 conv, IN)(x)."""

    def __init__(self, channels, norm):
        super().__init__()
        # fmt: off
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), *conv_norm_relu(nn.Conv2d(channels, channels, 3), norm),  # C x H x W
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm(channels),         # C x H x W
        )
        # fmt: on

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """The paper's c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3 (tanh), with ngf = 64,
    reflection padding, and instance norm throughout (--norm). Shapes for a C x H x W input."""

    def __init__(self, channels, ngf, n_blocks, norm):
        super().__init__()
        # fmt: off
        self.net = nn.Sequential(
            nn.ReflectionPad2d(3),
            *conv_norm_relu(nn.Conv2d(channels, ngf, 7), norm),                                # c7s1-64: ngf x H x W
            *conv_norm_relu(nn.Conv2d(ngf, 2 * ngf, 3, stride=2, padding=1), norm),            # d128: 2ngf x H/2 x W/2
            *conv_norm_relu(nn.Conv2d(2 * ngf, 4 * ngf, 3, stride=2, padding=1), norm),        # d256: 4ngf x H/4 x W/4
            *[ResidualBlock(4 * ngf, norm) for _ in range(n_blocks)],                          # R256: 4ngf x H/4 x W/4
            *conv_norm_relu(nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, output_padding=1), norm),  # u128: 2ngf x H/2
            *conv_norm_relu(nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, output_padding=1), norm),      # u64: ngf x H x W
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, channels, 7), nn.Tanh(),                                            # c7s1-3: C x H x W
        )
        # fmt: on

    def forward(self, x):
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: 4x4 convs C64 (no norm) - C128 - C256 - C512, LReLU 0.2, instance norm (--norm), the last
    of them stride 1, then a 4x4 conv to one logit per patch. With n_layers = 3 each logit sees a
    70x70 patch (the paper's); at 32x32, n_layers = 2 sees 34x34 and 1 sees 16x16."""

    def __init__(self, channels, ndf, n_layers, norm):
        super().__init__()
        layers = [nn.Conv2d(channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]  # ndf x H/2 x W/2
        width = ndf
        for i in range(1, n_layers + 1):  # state size: ndf * min(2^i, 8) x H/2^(i+1), the last (stride 1) 1 less
            out = ndf * min(2**i, 8)
            layers += [
                nn.Conv2d(width, out, 4, stride=2 if i < n_layers else 1, padding=1),
                norm(out),
                nn.LeakyReLU(0.2, True),
            ]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))  # 1 x 6 x 6 at 32x32, 1 x 30 x 30 at 256x256
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def build_translator(cfg):
    """G or F for a config (HPARAMS with a run's flags applied): both have one shape; the
    sampler's translate rebuilds them here."""
    return ResnetGenerator(cfg["channels"], cfg["ngf"], cfg["n_blocks"], NORMS[cfg["norm"]]).apply(init_weights)


def build_discriminator(cfg):
    """D_A or D_B: both have one shape."""
    return PatchDiscriminator(cfg["channels"], cfg["ndf"], cfg["d_layers"], NORMS[cfg["norm"]]).apply(init_weights)


def build_optimizers(cfg, G, F, D_A, D_B):
    """One Adam for G and F together, one for D_A and D_B together, as the authors' code.
    fused: one kernel per step instead of a loop of small ops."""
    betas = (cfg["beta1"], 0.999)
    return (
        torch.optim.Adam([*G.parameters(), *F.parameters()], lr=cfg["lr"], betas=betas, fused=True),
        torch.optim.Adam([*D_A.parameters(), *D_B.parameters()], lr=cfg["lr"], betas=betas, fused=True),
    )


class ImagePool:
    """The last `size` generated images (util/image_pool.py). Until it is full, images pass through
    and are kept; after that, each image is, with probability 1/2, swapped for a random kept one
    (which D sees instead), else passed through. Its draws have their own seeded generator, and
    state_dict() holds the images and that generator, so a resumed run draws what the
    uninterrupted one would have."""

    def __init__(self, size, seed):
        self.size, self.images = size, []
        self.rng = torch.Generator().manual_seed(seed)

    def query(self, images):
        if self.size == 0:
            return images.detach()  # D's step trains D only, pool or no pool
        out = []
        for image in images.detach().float().split(1):  # one decision per image, as the authors' pool
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand((), generator=self.rng) < 0.5:  # a CPU draw: no device sync
                i = int(torch.randint(self.size, (), generator=self.rng))
                out.append(self.images[i])
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out)

    def state_dict(self):
        return {"images": torch.cat(self.images) if self.images else torch.empty(0), "rng": self.rng.get_state()}

    def load_state_dict(self, state, device):
        self.images = list(state["images"].to(device).split(1)) if len(state["images"]) else []
        self.rng.set_state(state["rng"])


# --------------------------------------------------------------------------- data
def load_size(image_size):
    """The side folder images are resized to before a random crop of image_size: 286 for 256, as the authors."""
    return image_size * 286 // 256


def random_crop_and_flip(images, size, generator):
    """The authors' augmentation of photos (resize_and_crop, then flip): of each image, resized to
    load_size(size), a random size x size crop, mirrored left to right half the time; the draws
    from `generator`, on the CPU (no device sync)."""
    n, _, height, width = images.shape
    tops = torch.randint(height - size + 1, (n,), generator=generator).tolist()
    lefts = torch.randint(width - size + 1, (n,), generator=generator).tolist()
    mirror = (torch.rand(n, generator=generator) < 0.5).tolist()
    crops = [image[:, top : top + size, left : left + size] for image, top, left in zip(images, tops, lefts)]
    return torch.stack([crop.flip(-1) if m else crop for crop, m in zip(crops, mirror)])


def as_model_input(images):
    """uint8 images (grey ones as three equal channels) -> floats in [-1, 1]."""
    return images.float().div(127.5).sub(1).expand(-1, 3, -1, -1)


def domain_batches(data, order, batch_size, cfg, device, seed):
    """One domain's images in `order`, `batch_size` at a time, in [-1, 1], on `device`: gathered
    by index from a uint8 tensor (N, C, H, W) already on the device, or read by a DataLoader
    from an image Dataset, each batch then cropped and mirrored (cfg["augment"]) with draws
    seeded by (seed, the batch's index), so a resumed run crops as the uninterrupted one."""
    if isinstance(data, torch.Tensor):
        for idx in order.to(device).split(batch_size):
            yield as_model_input(data[idx])
    else:
        loader = torch.utils.data.DataLoader(
            data, batch_size=batch_size, sampler=order.tolist(), num_workers=cfg["workers"],
            pin_memory=device.type == "cuda",
        )  # fmt: skip
        for k, (images, _) in enumerate(loader):
            images = images.to(device, non_blocking=True)
            if cfg["augment"]:
                images = random_crop_and_flip(images, cfg["image_size"], torch.Generator().manual_seed(seed + k))
            yield images


def epoch_batches(domains, cfg, epoch, start_batch, device, rank=0, world=1):
    """One epoch of (a, b) batches in [-1, 1], from batch `start_batch` on: each domain in its own
    random order, fixed by (seed, epoch), as many batches as the smaller domain gives, so a resumed
    run sees the very batches the interrupted run would have. Under torchrun, process `rank` of
    `world` takes the rank-th slice of every batch."""
    bs = cfg["batch_size"]
    n_batches = min(len(d) for d in domains) // bs
    streams = []
    for k, data in enumerate(domains):
        seed = cfg["seed"] * 100_003 + epoch + k * 7_919  # A and B: independent orders, hence no pairs
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        order = order[start_batch * bs : n_batches * bs]
        order = order.view(-1, world, bs // world)[:, rank].reshape(-1)  # this process's share of each batch
        crops_seed = (seed * 1_000_003 + rank) * 1_000_003 + start_batch  # the first batch's; one a batch after it
        streams.append(domain_batches(data, order, bs // world, cfg, device, crops_seed))
    yield from zip(*streams)


# --------------------------------------------------------------------------- training step
def learning_rate(cfg, epoch_progress):
    """lr for the first epochs, then linearly down to 0 over the last decay_epochs
    (per step here; the authors' code steps it once an epoch)."""
    constant = cfg["epochs"] - cfg["decay_epochs"]
    return cfg["lr"] * min(1.0, max(0.0, 1 - (epoch_progress - constant) / cfg["decay_epochs"]))


def lsgan(logits, target):
    """The least-squares GAN loss of a PatchGAN's logits: the mean of (D(x) - target)^2."""
    return (logits.float() - target).pow(2).mean()


def train_step(G, F, D_A, D_B, opt_g, opt_d, real_a, real_b, pools, cfg, amp=None, scalers=None):
    """One update of G and F together, then one of D_A and D_B together; `pools` are D_A's and
    D_B's image pools. Returns detached [D_A loss, D_B loss, GAN loss, cycle loss, identity loss].

    Under torchrun the nets are wrapped in DistributedDataParallel; G and F then run three times
    each before their one backward, whose gradients DDP averages. amp: None (fp32), "bf16" or "fp16",
    autocast's type for the forward passes; fp16 needs `scalers`, a torch.amp.GradScaler for G and F's
    optimizer and one for the discriminators' (see dcgan.py's train_step)."""
    scaler_g, scaler_d = scalers or [torch.amp.GradScaler(enabled=False)] * 2  # disabled: no scaling at all
    autocast = torch.autocast(
        real_a.device.type, dtype=torch.float16 if amp == "fp16" else torch.bfloat16, enabled=bool(amp)
    )

    # (1) G and F: minimise LSGAN (D_B(G(a)) - 1)^2 + (D_A(F(b)) - 1)^2
    #     + lambda_cyc (|F(G(a)) - a| + |G(F(b)) - b|) + identity * lambda_cyc (|G(b) - b| + |F(a) - a|)
    D_A.requires_grad_(False), D_B.requires_grad_(False)  # G and F's step needs gradients through D only
    # the frozen D's outside DDP: there are no D gradients to average in this step
    raw_D_A, raw_D_B = (D.module if isinstance(D, DDP) else D for D in (D_A, D_B))
    with autocast:
        fake_b, fake_a = G(real_a), F(real_b)
        gan = lsgan(raw_D_B(fake_b), 1.0) + lsgan(raw_D_A(fake_a), 1.0)
        cycle = (F(fake_b).float() - real_a).abs().mean() + (G(fake_a).float() - real_b).abs().mean()
        g_loss = gan + cfg["cycle_weight"] * cycle
        identity = torch.zeros((), device=real_a.device)
        if cfg["identity"] > 0:  # G should leave a B image alone, F an A image: keeps colours honest
            identity = (G(real_b).float() - real_b).abs().mean() + (F(real_a).float() - real_a).abs().mean()
            g_loss = g_loss + cfg["identity"] * cfg["cycle_weight"] * identity
    scaler_g.scale(g_loss).backward()
    scaler_g.step(opt_g)  # the gradients unscaled first; with fp16, no step if any overflowed
    scaler_g.update()
    opt_g.zero_grad(set_to_none=True)
    D_A.requires_grad_(True), D_B.requires_grad_(True)

    # (2) D_A and D_B: minimise (D(real) - 1)^2 + D(pool(fake))^2 each, halved (the authors' code)
    with autocast:
        d_a = 0.5 * (lsgan(D_A(real_a), 1.0) + lsgan(D_A(pools[0].query(fake_a)), 0.0))
        d_b = 0.5 * (lsgan(D_B(real_b), 1.0) + lsgan(D_B(pools[1].query(fake_b)), 0.0))
    scaler_d.scale(d_a + d_b).backward()
    scaler_d.step(opt_d)
    scaler_d.update()
    opt_d.zero_grad(set_to_none=True)
    return torch.stack([d_a, d_b, gan, cycle, identity]).detach().float()


@torch.no_grad()
def save_samples(G, F, fixed_a, fixed_b, path):
    """One PNG: rows a | G(a) | F(G(a)) | b | F(b) | G(F(b)), a column per image of fixed_a and
    fixed_b (the same held-out images every epoch), the nets in eval mode (for --norm batch)."""
    G.eval(), F.eval()
    fake_b, fake_a = G(fixed_a), F(fixed_b)
    rows = torch.cat([r.float() for r in (fixed_a, fake_b, F(fake_b), fixed_b, fake_a, G(fake_a))])
    G.train(), F.train()
    save_image(rows.cpu(), path, nrow=len(fixed_a), normalize=True, value_range=VALUE_RANGE)


# ==== the run: flags, resume, torchrun, outputs (utils.py) ==============================================
import math  # noqa: E402
import time  # noqa: E402

import scores  # noqa: E402
import utils  # noqa: E402

SCRIPT = "cyclegan"
SNAPSHOT = ("G", "F")  # what checkpoints/epoch_XXX.pt keep: the nets that sample and score
LOSS_COLUMNS = ["d_a", "d_b", "g_gan", "cycle", "identity"]  # what train_step returns; losses.csv adds lr, images_per_s
# the progress bar's text
STATUS = "D_A {d_a:.3f} D_B {d_b:.3f} GAN {g_gan:.3f} cycle {cycle:.3f} idt {identity:.3f} lr {lr:.2e}"
PLOTS = {"D_A and D_B": ["d_a", "d_b"], "G and F": ["g_gan", "cycle", "identity"], "learning rate": ["lr"]}
# said when a run on a CPU would take hours: the shorter run its docs page measured
CPU_RECIPE = (
    "docs/cyclegan.md measured `python cyclegan.py --ngf 16 --ndf 32 --batch-size 8 --epochs 6 --decay-epochs 3`: "
    "13 to 15 min, 96% of digits kept"
)
TRANSLATIONS = {"a2b": "G", "b2a": "F"}  # the sampler's translate: direction -> network in the checkpoint


def build_parser():
    p = utils.ArgumentParser(
        description="CycleGAN (Zhu et al. 2017): unpaired translation, grey <-> colour MNIST or two folders of images."
    )
    data = p.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default="mnist",
        choices=["mnist", "fashion-mnist"],
        help="digits (or garments): A grey, B coloured; ignored with --folder-a/--folder-b",
    )
    data.add_argument("--data-root", default="./data", help="where torchvision data sets live or are downloaded to")
    data.add_argument(
        "--train-range",
        type=utils.data_range,
        help="training images, e.g. train:0:60000: the first half becomes domain A, the second half domain B "
        "(default: the whole training file)",
    )
    data.add_argument(
        "--eval-range",
        type=utils.data_range,
        help="held-out images, split in halves the same way: the grids and the scores (default: the whole test file)",
    )
    data.add_argument("--folder-a", help="a folder of domain-A images (with --folder-b)")
    data.add_argument("--folder-b", help="a folder of domain-B images (with --folder-a)")
    data.add_argument(
        "--image-size",
        type=utils.positive_int,
        help="images are resized to this; default 32 for digits, 256 (the paper's) for folders",
    )
    data.add_argument("--workers", type=int, default=utils.WORKERS, help="DataLoader worker processes for folders")
    data.add_argument(
        "--no-augment",
        dest="augment",
        action="store_false",
        help="train on folder images as they are, resized and centre-cropped, not as the authors: resized to "
        "1.12x the side (286 for 256), randomly cropped and mirrored (digits are never augmented)",
    )

    h = HPARAMS
    model = p.add_argument_group("model (networks.py)")
    model.add_argument("--ngf", type=utils.positive_int, default=h["ngf"], help="filters of G's and F's first layer")
    model.add_argument(
        "--ndf", type=utils.positive_int, default=h["ndf"], help="filters of the discriminators' first layer"
    )
    model.add_argument(
        "--n-blocks",
        type=utils.positive_int,
        help=f"residual blocks in G and F (default: {h['n_blocks']} up to 128x128, 9 at 256x256, as the paper)",
    )
    model.add_argument(
        "--d-layers",
        type=utils.positive_int,
        default=h["d_layers"],
        help="stride-2 layers of the PatchGAN: 3 = the paper's 70x70 patches (for 256x256), "
        "2 = 34x34 patches (for 32x32), 1 = 16x16 (paper: 3)",
    )
    model.add_argument(
        "--norm",
        default=h["norm"],
        choices=["instance", "batch", "none"],
        help="normalisation in all four networks (the paper's: instance; batch and none are the authors' other "
        "choices)",
    )

    optim = p.add_argument_group("optimisation (cycle_gan_model.py)")
    optim.add_argument("--epochs", type=utils.positive_int, default=h["epochs"], help="passes over the training pairs")
    optim.add_argument(
        "--decay-epochs",
        type=utils.positive_int,
        default=h["decay_epochs"],
        help="the learning rate decays linearly to 0 over the last N epochs (constant before)",
    )
    optim.add_argument(
        "--batch-size",
        type=utils.positive_int,
        default=h["batch_size"],
        help="image pairs per step; under torchrun the global batch, split evenly over the processes",
    )
    optim.add_argument("--lr", type=utils.positive_float, default=h["lr"], help="Adam learning rate")
    optim.add_argument("--beta1", type=float, default=h["beta1"], help="Adam beta1")
    optim.add_argument("--cycle-weight", type=float, default=h["cycle_weight"], help="lambda of each cycle loss")
    optim.add_argument(
        "--identity",
        type=float,
        default=h["identity"],
        help="identity loss weight as a fraction of --cycle-weight (0 turns it off)",
    )
    optim.add_argument(
        "--pool-size", type=int, default=h["pool_size"], help="generated images kept for the discriminators (0: none)"
    )
    optim.add_argument(
        "--steps",
        type=utils.positive_int,
        help="stop after this many optimizer steps in total (for smoke tests and benchmarks)",
    )

    utils.add_run_flags(p, SCRIPT, save_every=20, compile_help="torch.compile the four networks", distributed=True)
    evaluation = p.add_argument_group("evaluation")
    evaluation.add_argument(
        "--eval",
        action="store_true",
        help="print the cycle errors and digit accuracies of --ckpt on --eval-range, and exit",
    )
    evaluation.add_argument("--ckpt", help="checkpoint to evaluate with --eval")
    evaluation.add_argument(
        "--classifier-steps",
        type=utils.positive_int,
        default=600,
        help="batches of 128 the digit classifier that judges translations trains for",
    )
    evaluation.add_argument(
        "--eval-images",
        type=int,
        default=1000,
        help="the scores (at the end of a run, or --eval) translate this many held-out images each way, so that "
        "they take seconds, not minutes at paper width (0: all)",
    )
    return p


# flags that may change when a run is resumed or evaluated; everything else must match the checkpoint
RESUMABLE = utils.RESUMABLE_RUN_FLAGS | {
    "epochs",
    "steps",
    "data_root",
    "workers",
    "folder_a",
    "folder_b",
    "eval_range",
    "eval",
    "ckpt",
    "classifier_steps",
    "eval_images",
}


def complete_config(cfg):
    """The defaults that follow from other flags (a resumed run's config has them already)."""
    cfg["image_size"] = cfg["image_size"] or (256 if cfg["folder_a"] else 32)
    cfg["n_blocks"] = cfg["n_blocks"] or (9 if cfg["image_size"] >= 256 else HPARAMS["n_blocks"])
    cfg["channels"] = HPARAMS["channels"]


def check_flags(cfg):
    if bool(cfg["folder_a"]) != bool(cfg["folder_b"]):
        utils.die("--folder-a and --folder-b go together: give both folders, one per domain")
    if not 0 <= cfg["beta1"] < 1:
        utils.die(f"--beta1 must be in [0, 1), got {cfg['beta1']}")
    for name in ("cycle_weight", "identity", "pool_size"):
        if cfg[name] < 0:
            utils.die(f"--{name.replace('_', '-')} must be 0 or more, got {cfg[name]}")
    if cfg["decay_epochs"] > cfg["epochs"]:
        utils.die(f"--decay-epochs {cfg['decay_epochs']} is more than --epochs {cfg['epochs']}")
    if cfg["folder_a"] is None and cfg["image_size"] not in (None, 32):
        utils.die("digits are 32x32 here (28 padded by 2); --image-size is for --folder-a/--folder-b")


# --------------------------------------------------------------------------- the digit domains
def pad_to_32(digits):
    """uint8 (N, 1, 28, 28) -> (N, 1, 32, 32), two pixels of background on every side."""
    return nn.functional.pad(digits, (2, 2, 2, 2))


def colourize(digits, generator):
    """Grey digits uint8 (N, 1, H, W) -> uint8 (N, 3, H, W) with a random foreground and background
    colour per image: one dark, one light (every channel of the light one is the brighter), in
    either role, so the domain has light-on-dark and dark-on-light digits of every hue."""
    n = len(digits)
    dark = torch.rand(n, 3, 1, 1, generator=generator) * 0.5
    light = 0.5 + torch.rand(n, 3, 1, 1, generator=generator) * 0.5
    light_digit = torch.rand(n, 1, 1, 1, generator=generator) < 0.5
    fg, bg = torch.where(light_digit, light, dark), torch.where(light_digit, dark, light)
    ink = digits.float() / 255
    return (fg.to(digits.device) * ink + bg.to(digits.device) * (1 - ink)).mul(255).round().to(torch.uint8)


def load_domains(cfg, which, device):
    """Domains A and B of a digit data range: (images A uint8 (N, 1, 32, 32), labels A,
    images B uint8 (M, 3, 32, 32), labels B), A from the range's first half, B from its second,
    coloured with colours fixed by the seed (other colours for the held-out range). An unset
    range is the whole training file (train_range) or the whole test file (eval_range)."""
    images, labels = utils.load_mnist_range(cfg, which, device)
    half = len(images) // 2
    generator = torch.Generator().manual_seed(cfg["seed"] * 2 + (which == "eval_range"))
    b = colourize(pad_to_32(images[half:]), generator)
    return pad_to_32(images[:half]), labels[:half], b, labels[half:]


def load_data(cfg, device):
    """The two training domains (uint8 tensors on the device for digits, image folders otherwise),
    domain A's training images and labels (for the judge; None for folders), and the held-out
    (a, labels, b, labels): digits from --eval-range, for folders their first 500 images, unlabelled."""
    if not cfg["folder_a"]:
        a, labels_a, b, _ = load_domains(cfg, "train_range", device)
        return [a, b], (a, labels_a), load_domains(cfg, "eval_range", device)
    size, square = cfg["image_size"], cfg["augment"]
    loaded = load_size(size) if square else size  # random_crop_and_flip crops image_size from the larger
    domains = [utils.load_image_folder(cfg[k], loaded, 3, square) for k in ("folder_a", "folder_b")]
    first = lambda path: utils.load_image_folder(path, size, 3, square)  # whole images, as the authors' test
    a, b = (images_of(first(cfg[k]), 500).to(device) for k in ("folder_a", "folder_b"))
    return domains, None, (a, None, b, None)


def images_of(folder, n):
    """The first n images of an image folder dataset as uint8 (N, 3, H, W)."""
    return torch.stack([folder[i][0] for i in range(min(n, len(folder)))]).add(1).mul(127.5).round().to(torch.uint8)


def describe_source(cfg, domains, device, ddp):
    """What trains where, for the first line a run prints."""
    if cfg["folder_a"]:
        source = f"{cfg['folder_a']} <-> {cfg['folder_b']}"
    else:
        source = f"{cfg['dataset']} ({utils.range_text(cfg, 'train_range')}): "
        source += f"{len(domains[0]):,} grey / {len(domains[1]):,} coloured"
    processes = f" x {ddp.world} processes" if ddp.torchrun else ""
    return f"{source}, {cfg['image_size']}x{cfg['image_size']} on {device}{processes}"


def restore(ckpt, models, optimizers, scalers, pools, ddp, device):
    """Resume: the weights, optimizer states and RNG states, and this process's image pools (the
    images and their draws); returns (epoch, batches done in it, steps done)."""
    mine = utils.restore_training_state(ckpt, models, optimizers, ddp, scalers)
    for pool, state in zip(pools, mine["pools"]):
        pool.load_state_dict(state, device)
    return ckpt["epoch"], ckpt["epoch_step"], ckpt["step"]


# --------------------------------------------------------------------------- evaluation
class DigitClassifier(nn.Module):
    """A small CNN that reads a grey 32x32 digit (or garment) in [0, 1], of either polarity."""

    def __init__(self):
        super().__init__()
        # fmt: off
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.ReLU(True),   # 16 x 16 x 16
            nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.ReLU(True),  # 32 x 8 x 8
            nn.Flatten(),
            nn.Linear(32 * 8 * 8, 10),
        )
        # fmt: on

    def forward(self, x):
        return self.net(x)


def stretch(grey):
    """Each image's values stretched to fill [0, 1]: a digit drawn in two close colours keeps its shape."""
    lo, hi = grey.amin((1, 2, 3), keepdim=True), grey.amax((1, 2, 3), keepdim=True)
    return (grey - lo) / (hi - lo).clamp_min(1e-3)


def greyscale(images):
    """RGB in [-1, 1] -> luma (ITU-R 601), contrast-stretched to [0, 1], (N, 1, H, W)."""
    rgb = (images.float() + 1) / 2
    luma = torch.tensor([0.299, 0.587, 0.114], device=images.device)[:, None, None]
    return stretch((rgb * luma).sum(1, keepdim=True))


def train_classifier(images, labels, steps=600, batch_size=128, seed=0):
    """The judge of digit identity, trained for `steps` batches (seconds on a CPU) on grey training
    digits (uint8 (N, 1, 32, 32)), each inverted with probability 1/2 (a coloured digit's
    greyscale may be dark on light)."""
    generator = torch.Generator().manual_seed(seed)
    epochs = max(1, round(steps * batch_size / len(images)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = DigitClassifier().to(images.device)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=2e-3)
    with torch.enable_grad():
        for _ in range(epochs):
            for idx in torch.randperm(len(images), generator=generator).to(images.device).split(batch_size):
                x = stretch(images[idx].float() / 255)
                invert = (torch.rand(len(idx), 1, 1, 1, generator=generator) < 0.5).to(x.device)
                loss = nn.functional.cross_entropy(classifier(torch.where(invert, 1 - x, x)), labels[idx].long())
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
    return classifier.eval()


@torch.no_grad()
def evaluate(G, F, held_out, classifier=None, batch_size=250):
    """On held-out images: the mean absolute cycle error each way (pixels in [0, 1]) and, given a
    classifier and labels, how often it reads the input's digit in G(a) and F(b), beside its
    accuracy on the real grey digits and on the greyscale of the real coloured ones."""
    a, labels_a, b, labels_b = held_out
    sums = dict.fromkeys(
        ["cycle_a", "cycle_b"] + (["acc_g", "acc_f", "acc_real_a", "acc_real_b"] if classifier else []), 0.0
    )
    G.eval(), F.eval()
    for x, y, there_net, back_net, part, kept in ((a, labels_a, G, F, "a", "acc_g"), (b, labels_b, F, G, "b", "acc_f")):
        for idx in torch.arange(len(x), device=x.device).split(batch_size):
            real = as_model_input(x[idx])
            there = there_net(real)
            sums[f"cycle_{part}"] += ((back_net(there).float() - real).abs().mean((1, 2, 3)) / 2).sum().item()
            if classifier is not None:
                digits = y[idx]
                sums[kept] += (classifier(greyscale(there)).argmax(1) == digits).sum().item()
                sums[f"acc_real_{part}"] += (classifier(greyscale(real)).argmax(1) == digits).sum().item()
    G.train(), F.train()
    size = {"a": len(a), "b": len(b), "g": len(a), "f": len(b)}
    return {k: v / size[k[-1]] for k, v in sums.items()}


def describe(cfg, results, step, seconds):
    if cfg["folder_a"]:
        where = "the first images of each folder"
    else:
        where = f"{cfg['dataset']} {utils.range_text(cfg, 'eval_range')} (halves: A grey, B coloured)"
    text = (
        f"held-out scores after {step} steps on {where} [{seconds:.0f} s]: cycle error (mean |x - x'|, pixels "
        f"in [0, 1]) A->B->A {results['cycle_a']:.4f}, B->A->B {results['cycle_b']:.4f}"
    )
    if "acc_g" in results:
        text += (
            f"\n  digit kept (classifier trained on grey training digits): G(a) {100 * results['acc_g']:.2f}%, "
            f"F(b) {100 * results['acc_f']:.2f}%; the classifier on real a {100 * results['acc_real_a']:.2f}%, "
            f"on real b (greyscale) {100 * results['acc_real_b']:.2f}%"
        )
    return text


def score(G, F, cfg, train, held_out):
    """evaluate() on the first --eval-images held-out images of each domain (0: all), with a digit
    classifier trained on domain A's training digits (digits only)."""
    n = cfg["eval_images"] or None
    held_out = tuple(None if x is None else x[:n] for x in held_out)
    trains = "" if cfg["folder_a"] else f" (a digit classifier trains first, {cfg['classifier_steps']} steps)"
    print(f"scoring G and F on {len(held_out[0]):,} held-out images each way{trains} ...", flush=True)
    classifier = train_classifier(train[0], train[1], cfg["classifier_steps"]) if not cfg["folder_a"] else None
    return evaluate(G, F, held_out, classifier)


def eval_command(argv):
    """python cyclegan.py --eval --ckpt PATH: print the held-out scores."""
    cfg, ckpt, device = utils.eval_config(build_parser, argv, SCRIPT, RESUMABLE, "--eval")
    G, F = build_translator(cfg).to(device), build_translator(cfg).to(device)
    G.load_state_dict(ckpt["models"]["G"]), F.load_state_dict(ckpt["models"]["F"])
    began = time.perf_counter()
    _, train, held_out = load_data(cfg, device)
    results = score(G, F, cfg, train, held_out)
    print(describe(cfg, results, ckpt["step"], time.perf_counter() - began))
    return results


# --------------------------------------------------------------------------- the sampler's hooks
def fit_images(cfg, images):
    """The sampler's translate: 28x28 digits are padded to 32 as in training (else it resizes)."""
    return pad_to_32(images) if images.shape[-1] == 28 and cfg["image_size"] == 32 and not cfg["folder_a"] else images


def as_digits(cfg, images):
    """The sampler's score: uint8 32x32 images of either domain -> 28x28 grey digits in [0, 1],
    light on dark, as the MNIST score classifier reads them: padding cropped, luma stretched,
    and an image whose border is lighter than its mean inverted."""
    grey = greyscale(as_model_input(images[..., 2:-2, 2:-2]))
    border = torch.cat([grey[..., 0, :], grey[..., -1, :], grey[..., 1:-1, 0], grey[..., 1:-1, -1]], -1)
    return torch.where((border.mean((1, 2)) > grey.mean((1, 2, 3)))[:, None, None, None], 1 - grey, grey)


def score_sets(cfg, n, device):
    """The sampler's score: for each direction, (up to n held-out images to translate, the images
    of the domain it translates into that they are compared with, that domain's held-out images,
    what the compared-with images are), uint8. For digits, the comparison is with the training
    file's digits that the score classifier never learned from (sampler.py score explains why),
    drawn in the target domain's style; folders have no held-out part: their first 500 images
    stand in, compared with up to 10,000 of the other folder's."""
    if cfg["folder_a"]:
        _, _, (a, _, b, _) = load_data(cfg, device)
        domains = [images_of(utils.load_image_folder(cfg[k], cfg["image_size"], 3, cfg["augment"]), 10_000)
                   for k in ("folder_a", "folder_b")]  # fmt: skip
        name = "the other folder's images ({})"
    else:
        a, _, b, _ = load_domains(cfg, "eval_range", device)
        train = utils.load_mnist_family(cfg["dataset"], cfg["data_root"], train=True)[0].unsqueeze(1).to(device)
        unseen = pad_to_32(train[scores.judge_cut(len(train)) :])
        domains = [unseen, colourize(unseen, torch.Generator().manual_seed(cfg["seed"] * 2 + 2))]
        name = "{} training-file digits the score classifier never learned from, in the other domain's style"
    return {
        "a2b": (a[:n], domains[1], b[:n], name.format(len(domains[1]))),
        "b2a": (b[:n], domains[0], a[:n], name.format(len(domains[0]))),
    }


# --------------------------------------------------------------------------- main
@utils.one_line_errors
def main(argv=None):
    cfg, ckpt = utils.parse_config(build_parser, argv, SCRIPT, RESUMABLE)
    check_flags(cfg)
    complete_config(cfg)
    if cfg["eval"]:
        return eval_command(argv)
    ddp = utils.setup_distributed(cfg)  # under torchrun: this process's rank and GPU; plainly: rank 0 of 1
    device = utils.pick_device(cfg["device"], ddp)
    utils.seed_everything(cfg["seed"] + ddp.rank)  # each rank its own draws; DDP gives all rank 0's weights
    utils.cuda_kernels(cfg["deterministic"])  # on CUDA: autotuned cuDNN and TF32, or --deterministic kernels
    domains, train, held_out = load_data(cfg, device)
    steps_per_epoch = min(len(d) for d in domains) // cfg["batch_size"]
    if steps_per_epoch == 0:
        utils.die(f"--batch-size {cfg['batch_size']} is larger than a domain ({min(len(d) for d in domains)} images)")
    G, F, D_A, D_B = nets = utils.build_models(cfg, device, *[build_translator] * 2, *[build_discriminator] * 2)
    run_dir = utils.make_run_dir(SCRIPT, cfg, ddp=ddp)  # only once flags, data and models are good

    opt_g, opt_d = build_optimizers(cfg, G, F, D_A, D_B)
    models, optimizers = {"G": G, "F": F, "D_A": D_A, "D_B": D_B}, {"G": opt_g, "D": opt_d}
    scalers = {name: torch.amp.GradScaler(device.type, enabled=cfg["amp"] == "fp16") for name in optimizers}
    pools = [ImagePool(cfg["pool_size"], cfg["seed"] * 2 + k + 1_000_003 * ddp.rank) for k in range(2)]  # per process
    fixed_a, fixed_b = (as_model_input(x[:8]) for x in (held_out[0], held_out[2]))  # the grids' images
    # epoch in progress, batches done in it, optimizer steps in all
    epoch, epoch_step, step = restore(ckpt, models, optimizers, scalers, pools, ddp, device) if ckpt else (0, 0, 0)
    # the compiled modules share their parameters with the nets, which are what checkpoints save
    nets_train = [torch.compile(m, mode=cfg["compile"]) for m in nets] if cfg["compile"] else nets
    nets_train = utils.distribute(ddp, *nets_train, sync_bn=cfg["sync_bn"])
    total_steps = min(cfg["steps"] or math.inf, cfg["epochs"] * steps_per_epoch)
    utils.refuse_finished(cfg, step, total_steps)  # a resumed run asked for no more steps
    log = utils.TrainingLog(run_dir, LOSS_COLUMNS, cfg, status=STATUS, plots=PLOTS,
                            images_per_step=2 * cfg["batch_size"], total_steps=total_steps, step=step,
                            cpu_recipe=CPU_RECIPE, extra_columns=["lr"],
                            extra=lambda: {"lr": opt_g.param_groups[0]["lr"]}, ddp=ddp)  # fmt: skip

    def checkpoint(name, keep=None):  # every process calls it; rank 0 writes, with every process's pools
        path = run_dir / "checkpoints" / name
        utils.save_training_state(path, SCRIPT, cfg, models, optimizers, ddp=ddp, scalers=scalers, keep=keep,
                                  epoch=epoch, epoch_step=epoch_step, step=step,
                                  per_rank={"pools": [pool.state_dict() for pool in pools]})  # fmt: skip
        return path

    ddp.print(f"cyclegan: {describe_source(cfg, domains, device, ddp)}, {steps_per_epoch} steps/epoch, "
              f"writing to {run_dir}")  # fmt: skip
    with utils.save_on_interrupt(log, lambda: checkpoint("last.pt")):
        while step < total_steps:
            for real_a, real_b in epoch_batches(domains, cfg, epoch, epoch_step, device, ddp.rank, ddp.world):
                for opt in (opt_g, opt_d):  # a python float per step: no host sync
                    opt.param_groups[0]["lr"] = learning_rate(cfg, step / steps_per_epoch)
                metrics = train_step(*nets_train, opt_g, opt_d, real_a, real_b, pools, cfg, cfg["amp"],
                                     (scalers["G"], scalers["D"]))  # fmt: skip
                step, epoch_step = step + 1, epoch_step + 1
                log.add(metrics, step, epoch)
                if step >= total_steps:
                    break
            log.flush()
            if ddp.main:
                save_samples(G, F, fixed_a, fixed_b, run_dir / "samples" / f"epoch_{epoch + 1:03d}.png")
                utils.save_progress_gif(run_dir / "samples", run_dir / "progress.gif")
                log.plot()
            if epoch_step == steps_per_epoch:  # a full epoch: the next one starts at its first batch
                epoch, epoch_step = epoch + 1, 0
                if epoch % cfg["save_every"] == 0:
                    checkpoint(f"epoch_{epoch:03d}.pt", keep=SNAPSHOT)
            checkpoint("last.pt")
    utils.end_distributed(ddp)
    if ddp.main:  # the held-out scores: rank 0 alone, the others are done
        began = time.perf_counter()
        print(describe(cfg, score(G, F, cfg, train, held_out), step, time.perf_counter() - began))
        print(
            f"done: {utils.plural(step, 'step')}; samples, progress.gif, losses.csv and checkpoints/last.pt "
            f"in {run_dir}"
        )
    return run_dir


if __name__ == "__main__":
    main()
