"""WGAN-GP: Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of
Wasserstein GANs" (arXiv:1704.00028), as the authors' code trains it (igul222/improved_wgan_training:
gan_mnist.py and gan_cifar_resnet.py).

A critic D (no sigmoid: any real number) estimates the Wasserstein-1 distance between the data
and G's samples as E[D(x)] - E[D(G(z))], which is only valid while D is 1-Lipschitz. Instead of
clipping D's weights (the first WGAN), the gradient penalty pushes the norm of D's input gradient
towards 1 at points x_hat on straight lines between real and generated samples:

    critic loss    E[D(G(z))] - E[D(x)] + lambda E[(||grad D(x_hat)||_2 - 1)^2]
    generator loss -E[D(G(z))]

The critic is trained n_critic = 5 times per generator step, each time on a fresh batch, so its
estimate stays close to the true distance, whose gradient G then follows. The critic has no batch
norm (the penalty is per sample; --critic-norm layer is the paper's alternative). Unlike a GAN's D
loss, the estimate means something: it falls as G improves (losses.png shows it).

Two experiments of the paper, chosen by the data (PRESETS holds each one's values):
  28x28 grey (MNIST, Fashion-MNIST): gan_mnist.py's nets: G: z (128) -> FC 4x4x256 -> 5x5 up-convs
    128 (cropped to 7x7), 64, 1 -> sigmoid; critic: 5x5 convs stride 2, 64/128/256 -> linear 1.
    Adam 1e-4, betas (0.5, 0.9), batch 50, 200,000 generator steps.
  32x32 RGB (CIFAR-10, a folder of images): gan_cifar_resnet.py's ResNets, 128 filters, nearest
    up-sampling by depth-to-space and mean-pooling by space-to-depth. Adam 2e-4, betas (0, 0.9),
    batch 64 (G's steps 128), learning rate decayed linearly to 0 over 100,000 generator steps.

Run:
  python wgan_gp.py --epochs 50                          # MNIST, downloaded to ./data if it can be
  python wgan_gp.py --dataset cifar10                    # 100k generator steps, as the paper
  python wgan_gp.py --dataset folder --image-folder ~/photos --steps 20000
  python wgan_gp.py --resume runs/wgan_gp/<name>/checkpoints/last.pt
  python sampler.py --ckpt runs/wgan_gp/<name>/checkpoints/last.pt

Writes, under runs/wgan_gp/<dataset>-<time>/ (or --out):
  samples/epoch_001.png ...   a grid from the same fixed noise after every epoch
  progress.gif                those grids as one animation
  losses.csv, losses.png      critic and G losses; the Wasserstein estimate and the penalty; the learning
                              rate (and images/s in losses.csv)
  checkpoints/last.pt         after every epoch and on Ctrl-C; epoch_XXX.pt every --save-every

The GAN, in plain PyTorch, is everything above the line "# ==== the run": copy it alone and
drive it from your own loop. Below that line: flags, resume, torchrun, outputs.
"""

import math

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torchvision.utils import save_image

# --------------------------------------------------------------------------- hyper-parameters
# The values both experiments share. paper_config (below) adds one experiment's PRESETS; the run's flags default
# to these, and a run's config is paper_config with its flags applied.
HPARAMS = dict(
    z_dim=128,  # z ~ N(0, I) of 128 in both of the authors' scripts
    n_critic=5,  # critic steps per generator step (CRITIC_ITERS, N_CRITIC)
    gp_lambda=10.0,  # weight of the gradient penalty (LAMBDA)
    beta2=0.9,  # Adam's beta2 in both
    critic_norm="none",  # no normalisation in the critic; "layer" is the paper's suggestion in place of batch norm
    init="tflib",  # the authors' initialisation (tflib_init); "pytorch": PyTorch's layer defaults
    ema=0.0,  # not in the paper: sample from an average of G's weights with this decay; measured no better here
)
# Each experiment's own values, from the authors' script for it; a flag left unset takes these.
PRESETS = {
    "mnist": dict(  # gan_mnist.py
        width=64,  # DIM: channels of the critic's first conv and of G's last up-conv
        batch_size=50,  # BATCH_SIZE: images per critic step
        g_batch_multiple=1,  # G's steps use one critic batch's worth of samples
        lr=1e-4,  # Adam(learning_rate=1e-4, beta1=0.5, beta2=0.9)
        beta1=0.5,
        steps=200_000,  # ITERS: generator steps
        lr_decay="none",
        channels=1,
        image_size=28,
        value_range=(0.0, 1.0),  # G ends in a sigmoid; data are scaled to match
        dequantize=False,  # the pixels as they are, x / 255
    ),
    "resnet": dict(  # gan_cifar_resnet.py
        width=128,  # DIM_G = DIM_D: the filters of every residual block
        batch_size=64,  # BATCH_SIZE: images per critic step
        g_batch_multiple=2,  # GEN_BS_MULTIPLE: G's steps use 2 x 64 = 128 samples
        lr=2e-4,  # LR, in Adam(beta1=0., beta2=0.9)
        beta1=0.0,
        steps=100_000,  # ITERS: generator steps
        lr_decay="linear",  # DECAY: the learning rate falls linearly to 0 at the last step
        channels=3,
        image_size=32,
        value_range=(-1.0, 1.0),  # G ends in tanh; data are scaled to match
        dequantize=True,  # 2 (x / 256 - 0.5) + U(0, 1/128): each pixel's value spread over its bin
    ),
}


def paper_config(arch, **changes):
    """A config complete for the builders, the optimizers and the training step: the shared HPARAMS,
    then experiment `arch`'s PRESETS, then `changes` (a seed; a run's flags). G's batch is
    g_batch_multiple critic batches, unless `changes` set g_batch_size itself."""
    cfg = {**HPARAMS, "arch": arch, **PRESETS[arch], **changes}
    cfg["g_batch_size"] = cfg.get("g_batch_size") or cfg["g_batch_multiple"] * cfg["batch_size"]
    return cfg


# --------------------------------------------------------------------------- models: MNIST (gan_mnist.py)
def tflib_init(layer):
    """The authors' initialisation of a convolution or linear layer (tflib/ops), in place: weights uniform with
    a standard deviation of sqrt(4 / (fan_in + fan_out)) for a convolution (he_init), sqrt(2 / (fan_in + fan_out))
    for a linear map and for the convolutions the authors built with he_init=False (marked `glorot` below);
    biases 0. A convolution's fans count its kernel's taps, those of its strided side divided by stride^2. On a
    3x3 conv of 128 -> 128 channels this is about 2.5x PyTorch's default."""
    if isinstance(layer, nn.Linear):
        fan_in, fan_out, gain = layer.in_features, layer.out_features, 2.0
    else:
        taps, stride2 = layer.kernel_size[0] * layer.kernel_size[1], layer.stride[0] ** 2
        fan_in, fan_out = layer.in_channels * taps, layer.out_channels * taps
        if isinstance(layer, nn.ConvTranspose2d):
            fan_in /= stride2  # a transposed conv's input is the strided side
        else:
            fan_out /= stride2
        gain = 2.0 if getattr(layer, "glorot", False) else 4.0
    bound = math.sqrt(3 * gain / (fan_in + fan_out))  # U(-b, b) has standard deviation b / sqrt(3)
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)


def glorot(conv):
    """Mark a convolution that the authors built with he_init=False, for tflib_init."""
    conv.glorot = True
    return conv


def critic_norm(channels, kind):
    """Layer norm over (C, H, W) with a scale and shift per channel, as the authors' Layernorm; or nothing."""
    return nn.GroupNorm(1, channels) if kind == "layer" else nn.Identity()


class MNISTGenerator(nn.Module):
    """z -> FC 4x4x4d, ReLU -> 5x5 up-conv 2d /2, ReLU, crop 8x8 to 7x7 -> 5x5 up-conv d /2, ReLU
    -> 5x5 up-conv 1 /2 -> sigmoid (pixels in [0, 1]). d = width, 64 in the paper. No batch norm."""

    def __init__(self, z_dim, width):
        super().__init__()
        d = width
        # fmt: off
        self.fc = nn.Sequential(nn.Linear(z_dim, 4 * 4 * 4 * d), nn.ReLU(), nn.Unflatten(1, (4 * d, 4, 4)))
        self.up1 = nn.Sequential(nn.ConvTranspose2d(4 * d, 2 * d, 5, 2, 2, output_padding=1), nn.ReLU())  # 2d x 8 x 8
        self.up2 = nn.Sequential(nn.ConvTranspose2d(2 * d, d, 5, 2, 2, output_padding=1), nn.ReLU())      # d x 14 x 14
        self.out = nn.Sequential(nn.ConvTranspose2d(d, 1, 5, 2, 2, output_padding=1), nn.Sigmoid())       # 1 x 28 x 28
        # fmt: on

    def forward(self, z):
        return self.out(self.up2(self.up1(self.fc(z))[:, :, :7, :7]))  # 7 = 28 / 4: two more doublings reach 28


class MNISTCritic(nn.Module):
    """5x5 conv d /2, LReLU 0.2 -> 5x5 conv 2d /2, LReLU -> 5x5 conv 4d /2, LReLU -> linear 1 (no sigmoid)."""

    def __init__(self, width, norm):
        super().__init__()
        d = width
        # fmt: off
        self.net = nn.Sequential(
            nn.Conv2d(1, d, 5, 2, 2), nn.LeakyReLU(0.2),                                         # d x 14 x 14
            nn.Conv2d(d, 2 * d, 5, 2, 2), critic_norm(2 * d, norm), nn.LeakyReLU(0.2),           # 2d x 7 x 7
            nn.Conv2d(2 * d, 4 * d, 5, 2, 2), critic_norm(4 * d, norm), nn.LeakyReLU(0.2),       # 4d x 4 x 4
            nn.Flatten(),
            nn.Linear(4 * 4 * 4 * d, 1),
        )
        # fmt: on

    def forward(self, x):
        return self.net(x).view(-1)


# --------------------------------------------------------------------------- models: ResNet (gan_cifar_resnet.py)
class UpSample(nn.Module):
    """x2 nearest-neighbour up-sampling as the authors write it: four copies of every channel,
    then depth-to-space, so each pixel becomes a 2x2 block."""

    def __init__(self):
        super().__init__()
        self.depth_to_space = nn.PixelShuffle(2)

    def forward(self, x):
        return self.depth_to_space(x.repeat_interleave(4, dim=1))


class DownSample(nn.Module):
    """x2 mean-pooling as the authors write it: space-to-depth, then the mean of each 2x2 block's four values."""

    def __init__(self):
        super().__init__()
        self.space_to_depth = nn.PixelUnshuffle(2)

    def forward(self, x):
        n, c, h, w = x.shape
        return self.space_to_depth(x).view(n, c, 4, h // 2, w // 2).mean(2)


class GeneratorBlock(nn.Module):
    """BN, ReLU, up-sample, 3x3 conv, BN, ReLU, 3x3 conv; shortcut: up-sample, 1x1 conv. Doubles the side."""

    def __init__(self, ch):
        super().__init__()
        # fmt: off
        self.main = nn.Sequential(
            nn.BatchNorm2d(ch), nn.ReLU(), UpSample(), nn.Conv2d(ch, ch, 3, 1, 1),  # ch x 2s x 2s
            nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, ch, 3, 1, 1),
        )
        # fmt: on
        self.shortcut = nn.Sequential(UpSample(), glorot(nn.Conv2d(ch, ch, 1)))

    def forward(self, x):
        return self.shortcut(x) + self.main(x)


class CriticBlock(nn.Module):
    """[norm], ReLU, 3x3 conv, [norm], ReLU, 3x3 conv[, down-sample]; shortcut: 1x1 conv and
    down-sample when the block down-samples, else the identity."""

    def __init__(self, ch, down, norm):
        super().__init__()
        # fmt: off
        self.main = nn.Sequential(
            critic_norm(ch, norm), nn.ReLU(), nn.Conv2d(ch, ch, 3, 1, 1),
            critic_norm(ch, norm), nn.ReLU(), nn.Conv2d(ch, ch, 3, 1, 1),
            DownSample() if down else nn.Identity(),  # ch x s/2 x s/2, or ch x s x s
        )
        # fmt: on
        self.shortcut = nn.Sequential(glorot(nn.Conv2d(ch, ch, 1)), DownSample()) if down else nn.Identity()

    def forward(self, x):
        return self.shortcut(x) + self.main(x)


class CriticFirstBlock(nn.Module):
    """On the image itself (no ReLU first): 3x3 conv, ReLU, 3x3 conv, down-sample; shortcut: down-sample, 1x1 conv."""

    def __init__(self, channels, ch):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(channels, ch, 3, 1, 1), nn.ReLU(), nn.Conv2d(ch, ch, 3, 1, 1), DownSample())
        self.shortcut = nn.Sequential(DownSample(), glorot(nn.Conv2d(channels, ch, 1)))

    def forward(self, x):
        return self.shortcut(x) + self.main(x)


class ResNetGenerator(nn.Module):
    """z -> linear 128x4x4 -> 3 up-sampling blocks (8, 16, 32) -> BN, ReLU, 3x3 conv 3, tanh."""

    def __init__(self, z_dim, ch, channels):
        super().__init__()
        # fmt: off
        self.net = nn.Sequential(
            nn.Linear(z_dim, 4 * 4 * ch), nn.Unflatten(1, (ch, 4, 4)),  # ch x 4 x 4
            GeneratorBlock(ch),                                          # ch x 8 x 8
            GeneratorBlock(ch),                                          # ch x 16 x 16
            GeneratorBlock(ch),                                          # ch x 32 x 32
            nn.BatchNorm2d(ch), nn.ReLU(), glorot(nn.Conv2d(ch, channels, 3, 1, 1)), nn.Tanh(),  # channels x 32 x 32
        )
        # fmt: on

    def forward(self, z):
        return self.net(z)


class ResNetCritic(nn.Module):
    """32x32 -> first block (16) -> down-sampling block (8) -> 2 plain blocks -> ReLU, mean over
    the 8x8 positions -> linear 1."""

    def __init__(self, ch, channels, norm):
        super().__init__()
        # fmt: off
        self.blocks = nn.Sequential(
            CriticFirstBlock(channels, ch),   # ch x 16 x 16
            CriticBlock(ch, True, norm),      # ch x 8 x 8
            CriticBlock(ch, False, norm),     # ch x 8 x 8
            CriticBlock(ch, False, norm),     # ch x 8 x 8
            nn.ReLU(),
        )
        # fmt: on
        self.out = nn.Linear(ch, 1)

    def forward(self, x):
        return self.out(self.blocks(x).mean(dim=(2, 3))).view(-1)


def initialise(net, cfg):
    """Every convolution and linear layer of `net` as the authors' tflib (cfg["init"] "tflib"), or as PyTorch's
    defaults left it ("pytorch")."""
    for layer in net.modules():
        if cfg["init"] == "tflib" and isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            tflib_init(layer)
    return net


def build_generator(cfg):
    """G for a config (paper_config, or a run's); the sampler rebuilds G through this."""
    if cfg["arch"] == "mnist":
        return initialise(MNISTGenerator(cfg["z_dim"], cfg["width"]), cfg)
    return initialise(ResNetGenerator(cfg["z_dim"], cfg["width"], cfg["channels"]), cfg)


def build_critic(cfg):
    if cfg["arch"] == "mnist":
        return initialise(MNISTCritic(cfg["width"], cfg["critic_norm"]), cfg)
    return initialise(ResNetCritic(cfg["width"], cfg["channels"], cfg["critic_norm"]), cfg)


def build_optimizers(cfg, G, D):
    """Adam for G and for the critic, with the experiment's learning rate and betas. fused: one
    kernel per step instead of a loop of small ops."""
    betas = (cfg["beta1"], cfg["beta2"])
    return (
        torch.optim.Adam(G.parameters(), lr=cfg["lr"], betas=betas, fused=True),
        torch.optim.Adam(D.parameters(), lr=cfg["lr"], betas=betas, fused=True),
    )


def learning_rate(cfg, step, total_steps):
    """The authors' schedule: constant, or falling linearly from lr to 0 at the run's last step."""
    return cfg["lr"] * (1 - step / total_steps) if cfg["lr_decay"] == "linear" else cfg["lr"]


def sample_noise(cfg, n, device="cpu", generator=None):
    """n noise vectors z ~ N(0, I), shaped (n, z_dim)."""
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
def epoch_batches(data, cfg, epoch, start_step, device, rank=0, world=1):
    """Yield one epoch as groups of n_critic batches, one group per generator step, shaped
    (n_critic, batch, C, H, W), in G's value range, on `device`, from group `start_step` on.

    `data` is a uint8 tensor (N, C, H, W) (batches are gathered from it by index), or an image
    Dataset in [-1, 1] read by a DataLoader. The order is a permutation seeded by (seed, epoch),
    so a resumed run sees the very batches the interrupted run would have; the last incomplete
    group is dropped. Under torchrun, process `rank` of `world` takes the rank-th slice of every batch.
    """
    per_step, bs = cfg["n_critic"] * cfg["batch_size"], cfg["batch_size"]
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg["seed"] * 100_003 + epoch))
    order = order[start_step * per_step : len(data) // per_step * per_step]
    order = order.view(-1, world, bs // world)[:, rank].reshape(-1)  # this process's share of each batch
    per_step, bs = per_step // world, bs // world
    lo, hi = cfg["value_range"]
    if isinstance(data, torch.Tensor):
        for idx in order.to(device).split(per_step):
            images = data[idx].float()
            if cfg["dequantize"]:  # gan_cifar_resnet.py: 2 (x / 256 - 0.5) + U(0, 1/128), in [-1, 1)
                images = images.div_(128).sub_(1).add_(torch.rand_like(images).div_(128))
            else:
                images = images.mul_((hi - lo) / 255).add_(lo)
            yield images.view(cfg["n_critic"], bs, *images.shape[1:])
    else:
        loader = torch.utils.data.DataLoader(
            data, batch_size=per_step, sampler=order.tolist(), num_workers=cfg["workers"],
            pin_memory=device.type == "cuda", persistent_workers=False,
        )  # fmt: skip
        for images, _ in loader:
            yield images.to(device, non_blocking=True).view(cfg["n_critic"], bs, *images.shape[1:])


# --------------------------------------------------------------------------- training step
def gradient_penalty(D, real, fake, scaler=None):
    """E[(||grad_x D(x_hat)||_2 - 1)^2], the paper's Algorithm 1 without lambda.

    x_hat = real + alpha (fake - real), one alpha ~ U[0, 1] per sample, broadcast over the other
    dimensions; the gradient's norm is taken over all of a sample's dimensions. create_graph=True
    keeps the gradient differentiable, so the critic's update can push its norm (a double
    backward). In fp32, autocast off (bf16's gradients are too coarse for a target of 1), unless
    `scaler` is an enabled fp16 GradScaler: then D(x_hat) runs under the caller's fp16 autocast and,
    as PyTorch's AMP recipe for gradient penalties, the gradient is taken of the output multiplied by
    the loss scale (small fp16 gradients would flush to zero) and divided by it before the norm.
    """
    real, fake = real.float(), fake.float()
    alpha = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device)
    x_hat = (real + alpha * (fake - real)).requires_grad_(True)
    if scaler is not None and scaler.is_enabled():
        scale = scaler.scale(torch.ones((), device=real.device))  # the current scale, kept on the device
        (scaled_grad,) = torch.autograd.grad(scaler.scale(D(x_hat).float().sum()), x_hat, create_graph=True)
        grad = scaled_grad / scale
    else:
        with torch.autocast(real.device.type, enabled=False):
            (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def train_step(G, D, opt_g, opt_d, reals, cfg, g_batch_size, amp=None, scalers=None):
    """n_critic critic updates, one per batch of `reals` (n_critic, batch, C, H, W), then one G
    update on g_batch_size samples. Returns detached [critic loss, G loss, Wasserstein estimate,
    penalty], the critic's values averaged over its updates. amp: None (fp32), "bf16" or "fp16",
    autocast's type for the forward passes; fp16 needs `scalers`, a torch.amp.GradScaler for the
    critic's optimizer and one for G's (see dcgan.py's train_step), the critic's also scaling the
    penalty's gradient. Under torchrun D is wrapped in DistributedDataParallel: its three forward
    passes (real, fake, the penalty's interpolates) feed one backward, whose gradients DDP averages,
    the penalty's double backward included."""
    device = reals.device
    autocast = torch.autocast(device.type, dtype=torch.float16 if amp == "fp16" else torch.bfloat16, enabled=bool(amp))
    scaler_d, scaler_g = scalers or [torch.amp.GradScaler(enabled=False)] * 2  # disabled: no scaling at all
    critic_stats, kept_steps = torch.zeros(3, device=device), torch.zeros((), device=device)
    for real in reals:
        # (1) critic: minimise E[D(G(z))] - E[D(x)] + lambda E[(||grad D(x_hat)||_2 - 1)^2]
        with torch.no_grad(), autocast:
            fake = G(sample_noise(cfg, real.shape[0], device))  # the critic's step trains the critic only
        with autocast:
            d_real, d_fake = D(real).float().mean(), D(fake).float().mean()
            penalty = gradient_penalty(D, real, fake, scaler_d)
        d_loss = d_fake - d_real + cfg["gp_lambda"] * penalty
        scaler_d.scale(d_loss).backward()
        scaler_d.step(opt_d)  # the gradients unscaled first; with fp16, no step if any overflowed
        scaler_d.update()
        opt_d.zero_grad(set_to_none=True)
        stats = torch.stack([d_loss, d_real - d_fake, penalty]).detach()
        kept = torch.isfinite(stats).all()  # fp16: a step whose penalty's gradient overflowed, skipped, is left out
        critic_stats, kept_steps = critic_stats + torch.where(kept, stats, 0), kept_steps + kept

    # (2) G: minimise -E[D(G(z))]
    D.requires_grad_(False)  # G's step needs gradients w.r.t. the images, not the critic's weights
    raw_D = D.module if isinstance(D, DDP) else D  # outside DDP: there are no critic gradients to average here
    with autocast:
        g_loss = -raw_D(G(sample_noise(cfg, g_batch_size, device))).float().mean()
    scaler_g.scale(g_loss).backward()
    scaler_g.step(opt_g)
    scaler_g.update()
    opt_g.zero_grad(set_to_none=True)
    D.requires_grad_(True)

    d_loss, wasserstein, penalty = critic_stats / kept_steps
    return torch.stack([d_loss, g_loss.detach(), wasserstein, penalty])


@torch.no_grad()
def generate(G, z):
    """G(z) as floats, with G in eval mode: batch norm uses its running statistics, so a sample
    does not depend on the others drawn with it."""
    G.eval()
    samples = G(z).float()
    G.train()
    return samples


def save_samples(G, fixed_noise, path, value_range, nrow=10):
    """One PNG grid of G(fixed_noise): the same z every epoch, so the grids show G's progress."""
    save_image(generate(G, fixed_noise).cpu(), path, nrow=nrow, normalize=True, value_range=value_range)


# ==== the run: flags, resume, torchrun, outputs (utils.py) ==============================================
import copy  # noqa: E402

import utils  # noqa: E402

SCRIPT = "wgan_gp"
SNAPSHOT = ("G", "G_ema")  # what checkpoints/epoch_XXX.pt keep: the nets that sample and score
LOSS_COLUMNS = [
    "d_loss",
    "g_loss",
    "wasserstein",
    "penalty",
]  # what train_step returns; losses.csv adds lr, images_per_s
STATUS = (
    "critic {d_loss:.3f} G {g_loss:.3f} W {wasserstein:.3f} GP {penalty:.3f} lr {lr:.2g}"  # the progress bar's text
)
PLOTS = {  # losses.png's panels
    "losses": ["d_loss", "g_loss"],
    "the critic's estimate": ["wasserstein", "penalty"],
    "learning rate": ["lr"],
}
# said when a run on a CPU would take hours: the shorter run its docs page measured
CPU_RECIPE = "docs/wgan_gp.md measured `python wgan_gp.py --steps 2650 --amp` on 8,000 digits: an hour, FID 55"


def build_parser():
    p = utils.ArgumentParser(
        description="WGAN-GP (Gulrajani et al. 2017) on MNIST, Fashion-MNIST, CIFAR-10 or a folder."
    )
    h, mnist, resnet = HPARAMS, PRESETS["mnist"], PRESETS["resnet"]

    def per_experiment(name):  # the help of a flag whose default is its experiment's
        return f"(default: {mnist[name]} for the MNIST nets, {resnet[name]} for the ResNets)"

    data = p.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default="mnist",
        choices=["mnist", "fashion-mnist", "cifar10", "folder"],
        help="28x28 grey data train the MNIST nets, 32x32 RGB data the ResNets; "
        "mnist/fashion-mnist/cifar10 are downloaded into --data-root if missing",
    )
    data.add_argument("--data-root", default="./data", help="where torchvision data sets live or are downloaded to")
    data.add_argument(
        "--train-range",
        type=utils.data_range,
        help="with mnist/fashion-mnist: the images trained on, e.g. train:0:50000 so that train:50000:60000 "
        "stays held out for sampler.py score --images (default: the whole training file)",
    )
    data.add_argument("--image-folder", help="with --dataset folder: a folder of images, resized to 32x32")
    data.add_argument(
        "--workers", type=int, default=utils.WORKERS, help="DataLoader worker processes for --dataset folder"
    )

    model = p.add_argument_group("model")
    model.add_argument(
        "--z-dim", type=utils.positive_int, default=h["z_dim"], help="size of the noise vector z ~ N(0, I)"
    )
    model.add_argument(
        "--width",
        type=utils.positive_int,
        help=f"the nets' base width: the MNIST nets' DIM, the ResNets' filters {per_experiment('width')}",
    )
    model.add_argument(
        "--critic-norm",
        default=h["critic_norm"],
        choices=["none", "layer"],
        help="normalisation in the critic: none (the paper's default) or layer norm, which the paper "
        "suggests in place of batch norm (batch norm would couple the samples of a batch)",
    )
    model.add_argument(
        "--init",
        default=h["init"],
        choices=["tflib", "pytorch"],
        help="weight initialisation: the authors' tflib (He-uniform convolutions, Glorot linear maps) or PyTorch's "
        "layer defaults, about 2.5x smaller on a 3x3 conv",
    )

    optim = p.add_argument_group("optimisation")
    optim.add_argument(
        "--steps",
        type=utils.positive_int,
        help=f"generator steps in all, as the paper counts {per_experiment('steps')}",
    )
    optim.add_argument(
        "--epochs",
        type=utils.positive_int,
        help="or stop after this many passes over the data, if sooner (one step uses n-critic batches)",
    )
    optim.add_argument(
        "--batch-size",
        type=utils.positive_int,
        help="images per critic step; under torchrun the global batch, split evenly over the processes "
        + per_experiment("batch_size"),
    )
    optim.add_argument(
        "--g-batch-size",
        type=utils.positive_int,
        help="samples per generator step; global under torchrun (default: the batch size for the MNIST nets, "
        f"{resnet['g_batch_multiple']} times it for the ResNets)",
    )
    optim.add_argument(
        "--n-critic", type=utils.positive_int, default=h["n_critic"], help="critic steps per generator step"
    )
    optim.add_argument("--gp-lambda", type=float, default=h["gp_lambda"], help="weight of the gradient penalty")
    optim.add_argument(
        "--lr", type=utils.positive_float, help="Adam learning rate of G and critic " + per_experiment("lr")
    )
    optim.add_argument("--beta1", type=float, help="Adam beta1 " + per_experiment("beta1"))
    optim.add_argument("--beta2", type=float, default=h["beta2"], help="Adam beta2")
    optim.add_argument(
        "--lr-decay",
        choices=["none", "linear"],
        help="linear: the learning rate falls to 0 at the last step " + per_experiment("lr_decay"),
    )

    run = utils.add_run_flags(
        p,
        SCRIPT,
        step="generator steps",
        distributed=True,
        ema=HPARAMS["ema"],
        amp_help="autocast the forward passes: bf16 (a bare --amp; the gradient penalty stays in fp32) or fp16, with "
        "a gradient scaler per optimizer (the penalty's gradient scaled as PyTorch's AMP recipe)",
        compile_help="torch.compile G; the critic stays eager, since the penalty's double backward cannot be compiled",
    )
    run.add_argument("--sample-size", type=utils.positive_int, default=100, help="images in each per-epoch grid")
    return p


# flags that may change when a run is resumed; everything else must match the checkpoint
RESUMABLE = utils.RESUMABLE_RUN_FLAGS | {"epochs", "steps", "data_root", "image_folder", "workers"}


def configure(cfg):
    """A new run's config: its flags, those left unset (None) taken from the paper's values for
    the experiment the data call for (the MNIST nets for 28x28 grey, else the ResNets)."""
    arch = "mnist" if cfg["dataset"] in utils.MNIST_FAMILY else "resnet"
    flags_set = {name: value for name, value in cfg.items() if value is not None}
    return cfg | paper_config(arch, **flags_set)


def check_flags(cfg):
    for beta in ("beta1", "beta2"):
        if not 0 <= cfg[beta] < 1:
            utils.die(f"--{beta} must be in [0, 1), got {cfg[beta]}")
    if cfg["gp_lambda"] < 0:
        utils.die(f"--gp-lambda must be 0 or more, got {cfg['gp_lambda']}")
    if cfg["workers"] < 0:
        utils.die(f"--workers must be 0 or more, got {cfg['workers']}")
    if cfg["train_range"] and cfg["dataset"] not in utils.MNIST_FAMILY:
        utils.die(f"--train-range picks images of mnist or fashion-mnist, not of --dataset {cfg['dataset']}")


def load_data(cfg, device):
    """The training images: one uint8 tensor on `device` for small data sets, else an ImageFolder at 32x32."""
    if cfg["dataset"] == "folder":
        return utils.load_image_folder(cfg["image_folder"], 32, 3)
    if cfg["dataset"] == "cifar10":
        return utils.load_cifar10(cfg["data_root"]).to(device)
    return utils.load_mnist_range(cfg, "train_range", device)[0]


def images_per_step(cfg):
    """Images one train_step handles: real ones the critic reads, generated ones G makes (for benchmarks)."""
    return {
        "real": cfg["n_critic"] * cfg["batch_size"],
        "generated": cfg["n_critic"] * cfg["batch_size"] + cfg["g_batch_size"],
    }


@utils.one_line_errors
def main(argv=None):
    cfg, ckpt = utils.parse_config(build_parser, argv, SCRIPT, RESUMABLE)
    cfg = cfg if ckpt else configure(cfg)  # a new run: the flags left unset take the paper's values
    check_flags(cfg)
    ddp = utils.setup_distributed(cfg)  # under torchrun: this process's rank and GPU; plainly: rank 0 of 1
    device = utils.pick_device(cfg["device"], ddp)
    utils.seed_everything(cfg["seed"] + ddp.rank)  # each rank its own noise; DDP gives all rank 0's weights
    utils.cuda_kernels(cfg["deterministic"])  # on CUDA: autotuned cuDNN and TF32, or --deterministic kernels
    data = load_data(cfg, device)
    steps_per_epoch = len(data) // (cfg["n_critic"] * cfg["batch_size"])
    if steps_per_epoch == 0:
        utils.die(f"--n-critic x --batch-size = {cfg['n_critic'] * cfg['batch_size']} "
                  f"is more than the data set ({len(data)} images)")  # fmt: skip
    G, D = utils.build_models(cfg, device, build_generator, build_critic)
    run_dir = utils.make_run_dir(SCRIPT, cfg, ddp=ddp)  # only once flags, data and models are good

    opt_g, opt_d = build_optimizers(cfg, G, D)
    G_ema = copy.deepcopy(G).requires_grad_(False) if cfg["ema"] else None  # the average samples come from
    models, optimizers = {"G": G, "D": D} | ({"G_ema": G_ema} if cfg["ema"] else {}), {"G": opt_g, "D": opt_d}
    scalers = {name: torch.amp.GradScaler(device.type, enabled=cfg["amp"] == "fp16") for name in optimizers}
    fixed_noise = sample_noise(cfg, cfg["sample_size"], device)
    epoch, epoch_step, step = 0, 0, 0  # epoch in progress, generator steps done in it and in all
    if ckpt:
        utils.restore_training_state(ckpt, models, optimizers, ddp, scalers)
        fixed_noise = ckpt["fixed_noise"].to(device)
        epoch, epoch_step, step = ckpt["epoch"], ckpt["epoch_step"], ckpt["step"]
    # compiled G shares G's parameters, which checkpoints save; the penalty's double backward keeps the critic eager
    G_train = torch.compile(G, mode=cfg["compile"]) if cfg["compile"] else G
    G_train, D_train = utils.distribute(ddp, G_train, D, sync_bn=cfg["sync_bn"])
    total_steps = min(cfg["steps"], (cfg["epochs"] or math.inf) * steps_per_epoch)
    utils.refuse_finished(cfg, step, total_steps)  # a resumed run asked for no more steps
    log = utils.TrainingLog(run_dir, LOSS_COLUMNS, cfg, status=STATUS, plots=PLOTS,
                            images_per_step=images_per_step(cfg)["real"], total_steps=total_steps, step=step,
                            cpu_recipe=CPU_RECIPE, extra_columns=["lr"],
                            extra=lambda: {"lr": opt_d.param_groups[0]["lr"]}, ddp=ddp)  # fmt: skip

    def checkpoint(name, keep=None):  # every process calls it; rank 0 writes
        path = run_dir / "checkpoints" / name
        progress = dict(epoch=epoch, epoch_step=epoch_step, step=step, fixed_noise=fixed_noise)
        utils.save_training_state(
            path, SCRIPT, cfg, models, optimizers, ddp=ddp, scalers=scalers, keep=keep, **progress
        )
        return path

    ddp.print(f"wgan_gp: {len(data)} {cfg['dataset']} images, {cfg['arch']} nets, on {device}"
              f"{f' x {ddp.world} processes' if ddp.torchrun else ''}; {steps_per_epoch} generator steps/epoch "
              f"({cfg['n_critic']} critic steps each), {total_steps} in all; writing to {run_dir}")  # fmt: skip
    with utils.save_on_interrupt(log, lambda: checkpoint("last.pt")):
        while step < total_steps:
            for reals in epoch_batches(data, cfg, epoch, epoch_step, device, ddp.rank, ddp.world):
                for opt in (opt_g, opt_d):
                    opt.param_groups[0]["lr"] = learning_rate(cfg, step, total_steps)
                g_share = cfg["g_batch_size"] // ddp.world  # G's batch is global, as the critic's
                metrics = train_step(G_train, D_train, opt_g, opt_d, reals, cfg, g_share, cfg["amp"],
                                     (scalers["D"], scalers["G"]))  # fmt: skip
                step, epoch_step = step + 1, epoch_step + 1
                if cfg["ema"]:
                    update_ema(G_ema, G, ema_decay(cfg["ema"], step))
                log.add(metrics, step, epoch)
                if step >= total_steps:
                    break
            log.flush()
            if ddp.main:  # the grids show what the sampler will draw: the average, if there is one
                save_samples(
                    G_ema or G, fixed_noise, run_dir / "samples" / f"epoch_{epoch + 1:03d}.png", cfg["value_range"]
                )
                utils.save_progress_gif(run_dir / "samples", run_dir / "progress.gif")
                log.plot()
            if epoch_step == steps_per_epoch:  # a full epoch: the next one starts at its first group
                epoch, epoch_step = epoch + 1, 0
                if epoch % cfg["save_every"] == 0:
                    checkpoint(f"epoch_{epoch:03d}.pt", keep=SNAPSHOT)
            checkpoint("last.pt")
    ddp.print(f"done: {utils.plural(step, 'generator step')}; {log.last_status}; outputs in {run_dir}")
    utils.end_distributed(ddp)
    return run_dir


if __name__ == "__main__":
    main()
