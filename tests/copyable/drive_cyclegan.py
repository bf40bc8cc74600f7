"""Drive cyclegan.py's GAN half from your own loop: the paper's nets, pools and step, your two domains."""

import torch

import cyclegan as gan  # the text above cyclegan.py's "# ==== the run" line, pasted into cyclegan.py

cfg = dict(gan.HPARAMS, seed=0)  # the paper's values: ResNet G and F, PatchGAN D_A and D_B, lambda 10, pools of 50
cfg.update(ngf=8, ndf=8, n_blocks=1, batch_size=4)  # narrow nets and small batches: seconds on a CPU
G, F, D_A, D_B = (
    gan.build_translator(cfg),
    gan.build_translator(cfg),
    gan.build_discriminator(cfg),
    gan.build_discriminator(cfg),
)
opt_g, opt_d = gan.build_optimizers(cfg, G, F, D_A, D_B)
pools = [gan.ImagePool(cfg["pool_size"], seed=k) for k in range(2)]  # D_A's fakes F(b), D_B's fakes G(a)
domain_a = torch.randint(0, 256, (8, 1, 32, 32), dtype=torch.uint8)  # your two data sets, as uint8 tensors:
domain_b = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)  # grey images in A, colour ones in B

nets = {"G": G, "F": F, "D_A": D_A, "D_B": D_B}
before = {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.items()}
for real_a, real_b in gan.epoch_batches([domain_a, domain_b], cfg, epoch=0, start_batch=0, device="cpu"):
    assert real_a.shape == real_b.shape == (4, 3, 32, 32)  # grey a as three equal channels, in [-1, 1]
    assert torch.equal(real_a[:, 0], real_a[:, 1]) and not torch.equal(real_b[:, 0], real_b[:, 1])
    losses = gan.train_step(G, F, D_A, D_B, opt_g, opt_d, real_a, real_b, pools, cfg)
    assert torch.isfinite(losses).all(), losses  # [D_A, D_B, GAN, cycle, identity]
fixed_a, fixed_b = gan.as_model_input(domain_a[:4]), gan.as_model_input(domain_b[:4])
gan.save_samples(G, F, fixed_a, fixed_b, "samples.png")  # rows a, G(a), F(G(a)), b, F(b), G(F(b))

for name, net in nets.items():
    changed = [not torch.equal(a, b) for a, b in zip(before[name], net.parameters())]
    assert all(changed), f"{name}: {changed.count(False)} of its {len(changed)} weight tensors did not train"
print("trained", *(f"{k} {v:.3f}" for k, v in zip(["D_A", "D_B", "GAN", "cycle", "identity"], losses.tolist())))
