"""DCGAN: Radford, Metz & Chintala 2015, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks" (arXiv:1511.06434).

A generator G maps noise z to an image; a discriminator D outputs a logit saying "real".
D learns to tell data from G's samples; G learns to make D say "real" (the non-saturating
loss: G maximises log D(G(z)) rather than minimising log(1 - D(G(z))), which has no
gradient while D still wins easily). Both are trained with Adam(lr 2e-4, betas 0.5/0.999),
weights initialised from N(0, 0.02), batch norm in both nets, as the paper prescribes.

Architectures:
  28x28 grey (MNIST, Fashion-MNIST): the InfoGAN paper's MNIST nets (Chen et al. 2016, Table 1),
    G: z -> FC 1024 -> FC 7x7x128 -> up-conv 64 -> up-conv 1;  D: the mirror image.
  32x32 / 64x64 / ... RGB (CIFAR-10, a folder of images): the DCGAN paper's all-convolutional
    nets, one stride-2 (up-)convolution per doubling of the image side.

Run:
  python dcgan.py --epochs 50                           # MNIST, downloaded to ./data if it can be
  python dcgan.py --dataset fashion-mnist --epochs 25
  python dcgan.py --dataset folder --image-folder ~/faces --image-size 64
  python dcgan.py --resume runs/dcgan/<name>/checkpoints/last.pt --epochs 80
  python sampler.py --ckpt runs/dcgan/<name>/checkpoints/last.pt

Writes, under runs/dcgan/<dataset>-<time>/ (or --out):
  samples/epoch_001.png ...   a grid from the same fixed noise after every epoch
  progress.gif                those grids as one animation
  losses.csv, losses.png      D and G losses, D(x) and D(G(z)), images/s
  checkpoints/last.pt         after every epoch and on Ctrl-C; epoch_XXX.pt every --save-every

The GAN, in plain PyTorch, is everything above the line "# ==== the run": copy it alone and
drive it from your own loop. Below that line: flags, resume, torchrun, outputs.
"""

import math
from contextlib import nullcontext

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.nn.utils.parametrizations import spectral_norm
from torchvision.utils import save_image

# --------------------------------------------------------------------------- hyper-parameters
# The paper's values; the run's flags default to them, and a run's config is this dict with its flags applied.
HPARAMS = dict(
    z_dim=100,  # size of the noise vector z
    noise="uniform",  # z ~ U[-1, 1]; "normal" for N(0, I)
    g_width=64,  # channels of G's last up-conv; earlier layers double it (DCGAN nets)
    d_width=64,  # channels of D's first conv; later layers double it (DCGAN nets)
    spectral_norm=False,  # not in the paper: Miyato et al. 2018's bound on D's Lipschitz constant
    batch_size=128,
    lr_g=2e-4,
    lr_d=2e-4,  # a larger one than G's is the TTUR of Heusel et al. 2017
    beta1=0.5,  # Adam's momentum: the paper found 0.9 made training oscillate
    beta2=0.999,
    real_label=1.0,  # 0.9 is one-sided label smoothing (Salimans et al. 2016)
    epochs=25,  # not in the paper; enough for MNIST's digits
    ema=0.999,  # not in the paper: sample from an average of G's weights (0: from G itself); measured better here
    image_size=28,  # 28: the InfoGAN nets; a power of two >= 16: the DCGAN nets
    channels=1,
)
VALUE_RANGE = (-1.0, 1.0)  # G ends in tanh; data are scaled to match


# --------------------------------------------------------------------------- models
def init_weights(module):
    """DCGAN paper: all weights from N(0, 0.02); batch-norm scales from N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class InfoGANGenerator(nn.Module):
    """28x28: z -> FC 1024 -> FC 7x7x128 -> 4x4 up-conv 64 -> 4x4 up-conv C, tanh."""

    def __init__(self, z_dim, channels):
        super().__init__()
        # fmt: off
        self.net = nn.Sequential(
            nn.Linear(z_dim, 1024), nn.BatchNorm1d(1024), nn.ReLU(True),
            nn.Linear(1024, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(True),
            nn.Unflatten(1, (128, 7, 7)),                                               # 128 x 7 x 7
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(True),    # 64 x 14 x 14
            nn.ConvTranspose2d(64, channels, 4, 2, 1), nn.Tanh(),                       # C x 28 x 28
        )
        # fmt: on

    def forward(self, z):
        return self.net(z)


class InfoGANDiscriminator(nn.Module):
    """28x28: 4x4 conv 64 -> 4x4 conv 128 -> FC 1024 -> FC 1 (the logit); leaky ReLU 0.1."""

    def __init__(self, channels):
        super().__init__()
        # fmt: off
        self.net = nn.Sequential(
            nn.Conv2d(channels, 64, 4, 2, 1), nn.LeakyReLU(0.1, True),                  # 64 x 14 x 14
            nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.1, True),  # 128 x 7 x 7
            nn.Flatten(),
            nn.Linear(128 * 7 * 7, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.1, True),
            nn.Linear(1024, 1),
        )
        # fmt: on

    def forward(self, x):
        return self.net(x).view(-1)


class DCGANGenerator(nn.Module):
    """z as a 1x1 map -> 4x4 up-conv to 4x4 -> [4x4 up-conv /2, BN, ReLU] ... -> up-conv C /2, tanh.
    Channels halve as the side doubles (512, 256, 128, 64 at 64x64, as in the paper's Figure 1)."""

    def __init__(self, z_dim, channels, image_size, width):
        super().__init__()
        n_up = int(math.log2(image_size)) - 3  # stride-2 layers between 4x4 and the last layer
        ch = width * 2**n_up
        layers = [
            nn.Unflatten(1, (z_dim, 1, 1)),
            nn.ConvTranspose2d(z_dim, ch, 4, 1, 0, bias=False),  # state size: ch x 4 x 4
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(n_up):  # state size: ch/2 x 2s x 2s, up to width x image_size/2 x image_size/2
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]  # state size: channels x image_size^2
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """4x4 conv /2, LReLU 0.2 (no BN on the input layer) -> [4x4 conv /2, BN, LReLU 0.2] ...
    down to 4x4 -> 4x4 conv 1 (the logit). No pooling, no fully connected hidden layers."""

    def __init__(self, channels, image_size, width):
        super().__init__()
        n_down = int(math.log2(image_size)) - 3
        ch = width
        layers = [nn.Conv2d(channels, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]  # state size: width x image_size/2 ^2
        for _ in range(n_down):  # state size: 2ch x s/2 x s/2, down to 4x4
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, 4, 1, 0)]  # state size: 1 x 1 x 1
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).view(-1)


def build_generator(cfg):
    """G for a config (HPARAMS with a run's flags applied); the sampler rebuilds G through this."""
    if cfg["image_size"] == 28:
        G = InfoGANGenerator(cfg["z_dim"], cfg["channels"])
    else:
        G = DCGANGenerator(cfg["z_dim"], cfg["channels"], cfg["image_size"], cfg["g_width"])
    G.apply(init_weights)
    return G


def build_discriminator(cfg):
    if cfg["image_size"] == 28:
        D = InfoGANDiscriminator(cfg["channels"])
    else:
        D = DCGANDiscriminator(cfg["channels"], cfg["image_size"], cfg["d_width"])
    D.apply(init_weights)
    if cfg["spectral_norm"]:
        for layer in D.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                spectral_norm(layer)
    return D


def build_optimizers(cfg, G, D):
    """Adam for each net, as the paper. fused: one kernel per step instead of a loop of small ops."""
    betas = (cfg["beta1"], cfg["beta2"])
    return (
        torch.optim.Adam(G.parameters(), lr=cfg["lr_g"], betas=betas, fused=True),
        torch.optim.Adam(D.parameters(), lr=cfg["lr_d"], betas=betas, fused=True),
    )


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
def epoch_batches(data, cfg, epoch, start_batch, device, rank=0, world=1):
    """Yield the batches of one epoch, in [-1, 1], on `device`, from batch `start_batch` on.

    `data` is a uint8 tensor (N, C, H, W) already on the device (batches are gathered from it by
    index, no copies from the host), or an image Dataset read by a DataLoader. The order is a
    permutation seeded by (seed, epoch), so a resumed run sees the very batches the interrupted
    run would have; the last incomplete batch is dropped. Under torchrun, process `rank` of
    `world` takes the rank-th slice of every batch.
    """
    bs = cfg["batch_size"]
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg["seed"] * 100_003 + epoch))
    order = order[start_batch * bs : len(data) // bs * bs]
    order = order.view(-1, world, bs // world)[:, rank].reshape(-1)  # this process's share of each batch
    bs //= world
    if isinstance(data, torch.Tensor):
        for idx in order.to(device).split(bs):
            yield data[idx].float().div_(127.5).sub_(1.0)
    else:
        loader = torch.utils.data.DataLoader(
            data, batch_size=bs, sampler=order.tolist(), num_workers=cfg["workers"], pin_memory=device.type == "cuda"
        )
        for images, _ in loader:
            yield images.to(device, non_blocking=True)


# --------------------------------------------------------------------------- training step
def train_step(G, D, opt_g, opt_d, real, z, real_label=1.0, amp=None, scalers=None):
    """One D update then one G update. Returns detached [d_loss, g_loss, D(x), D(G(z))].

    amp: None (fp32), "bf16" or "fp16": autocast's type for the forward passes. fp16 needs
    `scalers`, a torch.amp.GradScaler for D's optimizer and one for G's: each loss is multiplied by
    its scale before backward, so that gradients too small for fp16 do not flush to zero; step()
    unscales the gradients and skips a step whose gradients overflowed; update() adapts the scale.
    Under torchrun D is wrapped in DistributedDataParallel; plainly it is the module itself."""
    autocast = torch.autocast(
        real.device.type, dtype=torch.float16 if amp == "fp16" else torch.bfloat16, enabled=bool(amp)
    )
    scaler_d, scaler_g = scalers or [torch.amp.GradScaler(enabled=False)] * 2  # disabled: no scaling at all
    ddp = isinstance(D, DDP)
    with autocast:
        fake = G(z)

    # (1) D: maximise log D(x) + log(1 - D(G(z))), on separate real and fake batches.
    # Two backward calls: the fake half's grads are added in place into the real half's instead of
    # both being held and summed into a third copy; under torchrun the first keeps its grads local
    # (no_sync) and the second averages the sum over the processes.
    with D.no_sync() if ddp else nullcontext():
        with autocast:
            d_real_logits = D(real)
            d_loss_real = F.binary_cross_entropy_with_logits(d_real_logits, torch.full_like(d_real_logits, real_label))
        scaler_d.scale(d_loss_real).backward()
    with autocast:
        d_fake_logits = D(fake.detach())  # no gradient into G from D's update
        d_loss_fake = F.binary_cross_entropy_with_logits(d_fake_logits, torch.zeros_like(d_fake_logits))
    scaler_d.scale(d_loss_fake).backward()
    d_loss = d_loss_real + d_loss_fake
    scaler_d.step(opt_d)  # the gradients unscaled first; with fp16, no step if any overflowed
    scaler_d.update()
    opt_d.zero_grad(set_to_none=True)  # free D's grads now: they are not needed until its next step

    # (2) G: maximise log D(G(z)) (non-saturating), through the freshly updated D
    D.requires_grad_(False)  # G's step needs gradients w.r.t. the images, not D's weights
    raw_D = D.module if ddp else D  # outside DDP: there are no D gradients to average here
    with autocast:
        g_logits = raw_D(fake)
        g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
    scaler_g.scale(g_loss).backward()
    scaler_g.step(opt_g)
    scaler_g.update()
    opt_g.zero_grad(set_to_none=True)
    D.requires_grad_(True)

    d_real, d_fake = torch.sigmoid(d_real_logits).mean(), torch.sigmoid(d_fake_logits).mean()
    return torch.stack([d_loss, g_loss, d_real, d_fake]).detach().float()


@torch.no_grad()
def generate(G, z):
    """G(z) as floats, with G in eval mode: batch norm uses its running statistics, so a sample
    does not depend on the others drawn with it."""
    G.eval()
    samples = G(z).float()
    G.train()
    return samples


def save_samples(G, fixed_noise, path, nrow=8):
    """One PNG grid of G(fixed_noise): the same z every epoch, so the grids show G's progress."""
    save_image(generate(G, fixed_noise).cpu(), path, nrow=nrow, normalize=True, value_range=VALUE_RANGE)


# ==== the run: flags, resume, torchrun, outputs (utils.py) ==============================================
import copy  # noqa: E402

import utils  # noqa: E402

SCRIPT = "dcgan"
SNAPSHOT = ("G", "G_ema")  # what checkpoints/epoch_XXX.pt keep: the nets that sample and score
LOSS_COLUMNS = ["d_loss", "g_loss", "d_real", "d_fake"]  # what train_step returns; losses.csv adds images_per_s
STATUS = "D {d_loss:.3f} G {g_loss:.3f} D(x) {d_real:.2f} D(G(z)) {d_fake:.2f}"  # the progress bar's text
PLOTS = {"losses": ["d_loss", "g_loss"], "D's outputs": ["d_real", "d_fake"]}  # losses.png's panels
# said when a run on a CPU would take hours: the shorter run its docs page measured
CPU_RECIPE = "docs/dcgan.md measured `python dcgan.py --dataset fashion-mnist --epochs 5 --amp`: 17 min, FID 5.8"


def build_parser():
    p = utils.ArgumentParser(description="DCGAN (Radford et al. 2015) on MNIST, Fashion-MNIST, CIFAR-10 or a folder.")
    data = p.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default="mnist",
        choices=["mnist", "fashion-mnist", "cifar10", "folder"],
        help="training data; mnist/fashion-mnist/cifar10 are downloaded into --data-root if missing",
    )
    data.add_argument("--data-root", default="./data", help="where torchvision data sets live or are downloaded to")
    data.add_argument(
        "--train-range",
        type=utils.data_range,
        help="with mnist/fashion-mnist: the images trained on, e.g. train:0:50000 so that train:50000:60000 "
        "stays held out for sampler.py score --images (default: the whole training file)",
    )
    data.add_argument("--image-folder", help="with --dataset folder: a folder of images (class subfolders optional)")
    data.add_argument(
        "--image-size",
        type=utils.positive_int,
        help="side of the square images: 28 (InfoGAN nets) or a power of two >= 16 (DCGAN nets); "
        "default 28 for the MNIST family, 32 for CIFAR-10, 64 for a folder",
    )
    data.add_argument(
        "--workers", type=int, default=utils.WORKERS, help="DataLoader worker processes for --dataset folder"
    )

    h = HPARAMS
    model = p.add_argument_group("model")
    model.add_argument("--z-dim", type=utils.positive_int, default=h["z_dim"], help="size of the noise vector z")
    model.add_argument("--noise", default=h["noise"], choices=["uniform", "normal"], help="z ~ U[-1, 1] or N(0, I)")
    model.add_argument(
        "--g-width", type=utils.positive_int, default=h["g_width"], help="channels of G's last up-conv (DCGAN nets)"
    )
    model.add_argument(
        "--d-width", type=utils.positive_int, default=h["d_width"], help="channels of D's first conv (DCGAN nets)"
    )
    model.add_argument(
        "--spectral-norm",
        action="store_true",
        help="wrap every conv/linear weight of D in spectral normalisation (Miyato et al. 2018), "
        "bounding D's Lipschitz constant so its gradients stay useful to G",
    )

    optim = p.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=utils.positive_int, default=h["epochs"], help="passes over the training data")
    optim.add_argument(
        "--batch-size",
        type=utils.positive_int,
        default=h["batch_size"],
        help="images per step; under torchrun the global batch, split evenly over the processes",
    )
    optim.add_argument("--lr-g", type=utils.positive_float, default=h["lr_g"], help="Adam learning rate of G")
    optim.add_argument("--lr-d", type=utils.positive_float, default=h["lr_d"], help="Adam learning rate of D")
    optim.add_argument("--beta1", type=float, default=h["beta1"], help="Adam beta1 (0.9 made training oscillate)")
    optim.add_argument("--beta2", type=float, default=h["beta2"], help="Adam beta2")
    optim.add_argument(
        "--real-label",
        type=float,
        default=h["real_label"],
        help="target for real images in D's loss; 0.9 is one-sided label smoothing (Salimans et al. 2016)",
    )
    optim.add_argument(
        "--steps",
        type=utils.positive_int,
        help="stop after this many optimizer steps in total (smoke tests, benchmarks)",
    )

    run = utils.add_run_flags(p, SCRIPT, distributed=True, ema=HPARAMS["ema"])
    run.add_argument("--sample-size", type=utils.positive_int, default=64, help="images in each per-epoch grid")
    return p


# flags that may change when a run is resumed; everything else must match the checkpoint
RESUMABLE = utils.RESUMABLE_RUN_FLAGS | {"epochs", "steps", "data_root", "image_folder", "workers"}


def check_flags(cfg):
    size = cfg["image_size"]
    if size != 28 and (size < 16 or size & (size - 1)):
        utils.die(f"--image-size must be 28 or a power of two >= 16, got {size}")
    if not 0 < cfg["real_label"] <= 1:
        utils.die(f"--real-label must be in (0, 1], got {cfg['real_label']}")
    for beta in ("beta1", "beta2"):
        if not 0 <= cfg[beta] < 1:
            utils.die(f"--{beta} must be in [0, 1), got {cfg[beta]}")
    if cfg["workers"] < 0:
        utils.die(f"--workers must be 0 or more, got {cfg['workers']}")
    if cfg["train_range"] and cfg["dataset"] not in utils.MNIST_FAMILY:
        utils.die(f"--train-range picks images of mnist or fashion-mnist, not of --dataset {cfg['dataset']}")


def load_data(cfg, device):
    """The training images: one uint8 tensor on `device` for small data sets, else an ImageFolder."""
    if cfg["dataset"] == "folder":
        return utils.load_image_folder(cfg["image_folder"], cfg["image_size"], cfg["channels"])
    if cfg["dataset"] == "cifar10":
        images = utils.load_cifar10(cfg["data_root"])
    else:
        images = utils.load_mnist_range(cfg, "train_range", device)[0]
    images = images.to(device)
    if images.shape[-1] != cfg["image_size"]:  # resize once, up front, never per batch
        images = F.interpolate(images.float(), size=cfg["image_size"], mode="bilinear", antialias=True)
        images = images.round().clamp(0, 255).to(torch.uint8)
    return images


@utils.one_line_errors
def main(argv=None):
    cfg, ckpt = utils.parse_config(build_parser, argv, SCRIPT, RESUMABLE)
    if not ckpt:
        cfg["channels"] = 1 if cfg["dataset"] in utils.MNIST_FAMILY else 3
        cfg["image_size"] = cfg["image_size"] or {"cifar10": 32, "folder": 64}.get(cfg["dataset"], 28)
    check_flags(cfg)
    ddp = utils.setup_distributed(cfg)  # under torchrun: this process's rank and GPU; plainly: rank 0 of 1
    device = utils.pick_device(cfg["device"], ddp)
    utils.seed_everything(cfg["seed"] + ddp.rank)  # each rank its own noise; DDP gives all rank 0's weights
    utils.cuda_kernels(cfg["deterministic"])  # on CUDA: autotuned cuDNN and TF32, or --deterministic kernels
    data = load_data(cfg, device)
    steps_per_epoch = len(data) // cfg["batch_size"]
    if steps_per_epoch == 0:
        utils.die(f"--batch-size {cfg['batch_size']} is larger than the data set ({len(data)} images)")
    G, D = utils.build_models(cfg, device, build_generator, build_discriminator)
    run_dir = utils.make_run_dir(SCRIPT, cfg, ddp=ddp)  # only once flags, data and models are good

    opt_g, opt_d = build_optimizers(cfg, G, D)
    G_ema = copy.deepcopy(G).requires_grad_(False) if cfg["ema"] else None  # the average samples come from
    models, optimizers = {"G": G, "D": D} | ({"G_ema": G_ema} if cfg["ema"] else {}), {"G": opt_g, "D": opt_d}
    scalers = {name: torch.amp.GradScaler(device.type, enabled=cfg["amp"] == "fp16") for name in optimizers}
    fixed_noise = sample_noise(cfg, cfg["sample_size"], device)
    epoch, epoch_step, step = 0, 0, 0  # epoch in progress, batches done in it, optimizer steps in all
    if ckpt:
        utils.restore_training_state(ckpt, models, optimizers, ddp, scalers)
        fixed_noise = ckpt["fixed_noise"].to(device)
        epoch, epoch_step, step = ckpt["epoch"], ckpt["epoch_step"], ckpt["step"]
    # the compiled modules share their parameters with G and D, which are what checkpoints save
    G_train, D_train = (torch.compile(m, mode=cfg["compile"]) for m in (G, D)) if cfg["compile"] else (G, D)
    G_train, D_train = utils.distribute(ddp, G_train, D_train, sync_bn=cfg["sync_bn"])
    total_steps = min(cfg["steps"] or math.inf, cfg["epochs"] * steps_per_epoch)
    utils.refuse_finished(cfg, step, total_steps)  # a resumed run asked for no more steps
    log = utils.TrainingLog(run_dir, LOSS_COLUMNS, cfg, status=STATUS, plots=PLOTS,
                            images_per_step=cfg["batch_size"], total_steps=total_steps, step=step,
                            cpu_recipe=CPU_RECIPE, ddp=ddp)  # fmt: skip

    def checkpoint(name, keep=None):  # every process calls it; rank 0 writes
        path = run_dir / "checkpoints" / name
        progress = dict(epoch=epoch, epoch_step=epoch_step, step=step, fixed_noise=fixed_noise)
        utils.save_training_state(
            path, SCRIPT, cfg, models, optimizers, ddp=ddp, scalers=scalers, keep=keep, **progress
        )
        return path

    ddp.print(f"dcgan: {len(data)} {cfg['dataset']} images of {cfg['channels']}x{cfg['image_size']}x{cfg['image_size']}"
              f" on {device}{f' x {ddp.world} processes' if ddp.torchrun else ''}, {steps_per_epoch} steps/epoch, "
              f"writing to {run_dir}")  # fmt: skip
    with utils.save_on_interrupt(log, lambda: checkpoint("last.pt")):
        while step < total_steps:
            for real in epoch_batches(data, cfg, epoch, epoch_step, device, ddp.rank, ddp.world):
                z = sample_noise(cfg, real.shape[0], device)
                metrics = train_step(G_train, D_train, opt_g, opt_d, real, z, cfg["real_label"], cfg["amp"],
                                     (scalers["D"], scalers["G"]))  # fmt: skip
                step, epoch_step = step + 1, epoch_step + 1
                if cfg["ema"]:
                    update_ema(G_ema, G, ema_decay(cfg["ema"], step))
                log.add(metrics, step, epoch)
                if step >= total_steps:
                    break
            log.flush()
            if ddp.main:  # the grids show what the sampler will draw: the average, if there is one
                save_samples(G_ema or G, fixed_noise, run_dir / "samples" / f"epoch_{epoch + 1:03d}.png")
                utils.save_progress_gif(run_dir / "samples", run_dir / "progress.gif")
                log.plot()
            if epoch_step == steps_per_epoch:  # a full epoch: the next one starts at its first batch
                epoch, epoch_step = epoch + 1, 0
                if epoch % cfg["save_every"] == 0:
                    checkpoint(f"epoch_{epoch:03d}.pt", keep=SNAPSHOT)
            checkpoint("last.pt")
    ddp.print(
        f"done: {utils.plural(step, 'step')}; samples, progress.gif, losses.csv and checkpoints/last.pt in {run_dir}"
    )
    utils.end_distributed(ddp)
    return run_dir


if __name__ == "__main__":
    main()
