"""Drive wgan_gp.py's GAN half from your own loop: the paper's nets and step, your data."""

import torch

import wgan_gp as gan  # the text above wgan_gp.py's "# ==== the run" line, pasted into wgan_gp.py


def weights(*nets):
    return [p.detach().clone() for net in nets for p in net.parameters()]


def train(cfg, images, steps):
    """`steps` generator steps, n_critic critic steps each, on uint8 `images`; asserts every net trained."""
    G, D = gan.build_generator(cfg), gan.build_critic(cfg)
    opt_g, opt_d = gan.build_optimizers(cfg, G, D)
    before = {"G": weights(G), "critic": weights(D)}
    for step, reals in enumerate(gan.epoch_batches(images, cfg, epoch=0, start_step=0, device="cpu")):
        for opt in (opt_g, opt_d):  # the paper's schedule: constant (MNIST) or falling to 0 (ResNet)
            opt.param_groups[0]["lr"] = gan.learning_rate(cfg, step, steps)
        losses = gan.train_step(G, D, opt_g, opt_d, reals, cfg, cfg["g_batch_size"])  # reals: n_critic batches
        assert torch.isfinite(losses).all(), losses  # [critic loss, G loss, Wasserstein estimate, penalty]
    assert step + 1 == steps
    changed = [not torch.equal(a, b) for a, b in zip(before["G"] + before["critic"], weights(G, D))]
    # all but the critic's output bias: E[D(G(z))] - E[D(x)] cancels a constant, so that bias gets no gradient
    assert all(changed[:-1]) and not changed[-1], changed
    return G, losses


# gan_mnist.py's nets as the paper: 28x28 grey, z of 128, Adam 1e-4 (0.5, 0.9), 5 critic steps per G step
cfg = gan.paper_config("mnist", seed=0, batch_size=4)  # two generator steps: 2 x 5 x 4 images
G, losses = train(cfg, torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8), steps=2)
gan.save_samples(G, gan.sample_noise(cfg, 16), "samples.png", cfg["value_range"])
print("trained", *(f"{k} {v:.3f}" for k, v in zip(["critic", "G", "W", "GP"], losses.tolist())))

# gan_cifar_resnet.py's ResNets, narrower than the paper's 128 filters: 32x32 RGB, G's batch twice the critic's
cfg = gan.paper_config("resnet", seed=0, batch_size=4, width=16)
G, losses = train(cfg, torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8), steps=1)
gan.save_samples(G, gan.sample_noise(cfg, 16), "samples_resnet.png", cfg["value_range"])
print("trained the ResNets", *(f"{k} {v:.3f}" for k, v in zip(["critic", "G", "W", "GP"], losses.tolist())))
