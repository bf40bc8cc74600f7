"""Drive dcgan.py's GAN half from your own loop: the paper's nets and step, your data."""

import torch

import dcgan as gan  # the text above dcgan.py's "# ==== the run" line, pasted into dcgan.py

cfg = dict(gan.HPARAMS, seed=0)  # the paper's values: 28x28 grey images, z of 100, Adam 2e-4 (0.5, 0.999)
G, D = gan.build_generator(cfg), gan.build_discriminator(cfg)
opt_g, opt_d = gan.build_optimizers(cfg, G, D)
images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)  # your data set, as one uint8 tensor

before = {name: [p.detach().clone() for p in net.parameters()] for name, net in (("G", G), ("D", D))}
cfg["batch_size"] = 32
for real in gan.epoch_batches(images, cfg, epoch=0, start_batch=0, device="cpu"):  # two batches in [-1, 1]
    losses = gan.train_step(G, D, opt_g, opt_d, real, gan.sample_noise(cfg, len(real)))
    assert torch.isfinite(losses).all(), losses  # [d_loss, g_loss, D(x), D(G(z))]
gan.save_samples(G, gan.sample_noise(cfg, 16), "samples.png")

for name, net in (("G", G), ("D", D)):
    assert all(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), f"{name} did not train"
print("trained", *(f"{k} {v:.3f}" for k, v in zip(["d_loss", "g_loss", "D(x)", "D(G(z))"], losses.tolist())))
