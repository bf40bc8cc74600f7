"""Drive gan_maxout.py's GAN half from your own loop: the paper's nets, schedules and step, then its Parzen score."""

import torch

import gan_maxout as gan  # the text above gan_maxout.py's "# ==== the run" line, pasted into gan_maxout.py

cfg = dict(gan.HPARAMS, seed=0)  # the paper's values: 28x28 grey images, maxout D, SGD 0.1 with momentum 0.5
G, D = gan.build_generator(cfg), gan.build_discriminator(cfg)
opt_g, opt_d = gan.build_optimizers(cfg, G, D)
images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)  # your data set, as one uint8 tensor
gan.init_sigmoid_bias_from_marginals(G, images)  # G starts at the data's mean image

before = {name: [p.detach().clone() for p in net.parameters()] for name, net in (("G", G), ("D", D))}
cfg["batch_size"] = 32
for step, real in enumerate(gan.epoch_batches(images, cfg, epoch=0, start_batch=0, device="cpu")):  # in [0, 1]
    gan.apply_schedules(cfg, (opt_g, opt_d), step, epoch=0)
    losses = gan.train_step(G, D, opt_g, opt_d, real, gan.sample_noise(cfg, len(real)))
    assert torch.isfinite(losses).all(), losses  # [d_loss, g_loss, D(x), D(G(z))]
gan.save_samples(G, gan.sample_noise(cfg, 16), "samples.png")

for name, net in (("G", G), ("D", D)):
    assert all(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), f"{name} did not train"
held_out = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8).float() / 255
sigma, nats, stderr = gan.parzen_score(G, gan.sample_noise(cfg, 500), held_out[:20], held_out[20:])
assert torch.isfinite(torch.tensor([sigma, nats, stderr])).all()
print(
    "trained",
    *(f"{k} {v:.3f}" for k, v in zip(["d_loss", "g_loss", "D(x)", "D(G(z))"], losses.tolist())),
    f"| Parzen {nats:.1f} +- {stderr:.1f} nats (sigma {sigma:.3f})",
)
