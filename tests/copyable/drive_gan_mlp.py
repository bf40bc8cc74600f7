"""Drive gan_mlp.py's GAN half from your own loop: the MLPs and the step, on your images, then on the 1-D mixture."""

import torch

import gan_mlp as gan  # the text above gan_mlp.py's "# ==== the run" line, pasted into gan_mlp.py


def train_two_steps(cfg, data):
    """Two steps on `data` (32 samples a batch); every weight of G and D must move. The last losses."""
    G, D = gan.build_generator(cfg), gan.build_discriminator(cfg)
    opt_g, opt_d = gan.build_optimizers(cfg, G, D)
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in (("G", G), ("D", D))}
    for real in gan.epoch_batches(data, dict(cfg, batch_size=32), epoch=0, start_batch=0, device="cpu"):
        losses = gan.train_step(G, D, opt_g, opt_d, real, gan.sample_noise(cfg, len(real)), cfg["loss"])
        assert torch.isfinite(losses).all(), losses  # [d_loss, g_loss, D(x), D(G(z)), |grad G|]
    for name, net in (("G", G), ("D", D)):
        assert all(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), f"{name} did not train"
    return G, losses


cfg = dict(gan.HPARAMS, seed=0)  # the images preset: 28x28 grey, z of 100, Adam 2e-4 (0.5, 0.999), non-saturating
images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)  # your data set, as one uint8 tensor
G, losses = train_two_steps(cfg, images)  # two batches in [-1, 1]
gan.save_samples(G, gan.sample_noise(cfg, 16), "samples.png")

mixture = dict(gan.HPARAMS, **gan.PRESETS["1d"], loss="minimax", seed=0)  # z of 4, 32-32 MLPs, Adam 1e-3
_, losses_1d = train_two_steps(mixture, gan.sample_mixture(64, torch.Generator().manual_seed(0)))
assert losses_1d[1] < 0  # minimax: G's loss is log(1 - D(G(z)))

names = ["d_loss", "g_loss", "D(x)", "D(G(z))", "|grad G|"]
print("trained", *(f"{k} {v:.3f}" for k, v in zip(names, losses.tolist())), "| 1d:", f"g_loss {losses_1d[1]:.3f}")
