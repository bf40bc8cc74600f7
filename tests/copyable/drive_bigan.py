"""Drive bigan.py's GAN half from your own loop: the paper's G, E and joint D, its step, your data."""

import torch

import bigan as gan  # the text above bigan.py's "# ==== the run" line, pasted into bigan.py

cfg = dict(gan.HPARAMS, seed=0)  # the paper's MNIST nets: z of 50, hidden layers of 1024, Adam 2e-4 (0.5, 0.999)
G, E, D = gan.build_generator(cfg), gan.build_encoder(cfg), gan.build_discriminator(cfg)
opt_ge, opt_d = gan.build_optimizers(cfg, G, E, D)  # G and E are one player, with one optimizer
images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)  # your data set, as one uint8 tensor

before = {name: [p.detach().clone() for p in net.parameters()] for name, net in (("G", G), ("E", E), ("D", D))}
cfg["batch_size"] = 32
for real in gan.epoch_batches(images, cfg, epoch=0, start_batch=0, device="cpu"):  # two batches in [0, 1]
    losses = gan.train_step(G, E, D, opt_ge, opt_d, real, gan.sample_noise(cfg, len(real)), cfg)
    assert torch.isfinite(losses).all(), losses  # [d_loss, ge_loss, D(x, E(x)), D(G(z), z)]
gan.save_grids(G, E, gan.sample_noise(cfg, 16), images[:8].float() / 255, ".", epoch=1)  # G(z); x beside G(E(x))

for name, net in (("G", G), ("E", E), ("D", D)):
    assert all(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), f"{name} did not train"
print("trained", *(f"{k} {v:.3f}" for k, v in zip(["d_loss", "ge_loss", "D(x,E(x))", "D(G(z),z)"], losses.tolist())))
