"""Drive infogan.py's GAN half from your own loop: the paper's nets, codes and step, your data."""

import torch

import infogan as gan  # the text above infogan.py's "# ==== the run" line, pasted into infogan.py

cfg = dict(gan.HPARAMS, seed=0)  # the paper's values: z of 62, codes Cat(10) + 2 x U(-1, 1), Adam 1e-3 / 2e-4
G, D = gan.build_generator(cfg), gan.build_discriminator(cfg)  # D carries Q's head on its trunk
opt_g, opt_d = gan.build_optimizers(cfg, G, D)
images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)  # your data set, as one uint8 tensor

# D and Q share D's trunk; each has its own head
params = {
    "G": list(G.parameters()),
    "D": [*D.trunk.parameters(), *D.d_head.parameters()],
    "Q": list(D.q_head.parameters()),
}
before = {name: [p.detach().clone() for p in ps] for name, ps in params.items()}
cfg["batch_size"] = 32
for real in gan.epoch_batches(images, cfg, epoch=0, start_batch=0, device="cpu"):  # two batches in [0, 1]
    latent = gan.sample_latent(cfg, len(real))  # noise z, categories c_cat, continuous codes c_cont
    losses = gan.train_step(G, D, opt_g, opt_d, real, latent, cfg)
    assert torch.isfinite(losses).all(), losses  # [d_loss, g_loss, cat_loss, cont_loss, D(x), D(G(z))]
fixed_noise = gan.sample_latent(cfg, 10)[0]
gan.save_grids(G, cfg, fixed_noise, ".", epoch=1)  # a row per category; and a grid sweeping each continuous code

for name, ps in params.items():
    assert all(not torch.equal(a, b) for a, b in zip(before[name], ps)), f"{name} did not train"
names = ["d_loss", "g_loss", "cat_loss", "cont_loss", "D(x)", "D(G(c, z))"]
print("trained", *(f"{k} {v:.3f}" for k, v in zip(names, losses.tolist())))
