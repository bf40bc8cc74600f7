"""Training throughput of a script's real loop: steps/s, images/s, peak memory, start-up time.

Runs the script's own main() for --warmup + --steps optimizer steps and times its
train_step from the end of the warm-up to the end of the last step (with a device sync
at both ends). Prints one JSON line.

  python benchmarks/throughput.py --script dcgan --batch-size 64 --steps 200
  python benchmarks/throughput.py --script dcgan --batch-size 64 --data-path dataloader --workers 2
  python benchmarks/throughput.py --script dcgan --data-root ../shared-copy --device cuda \
      --extra "--compile reduce-overhead"
  python benchmarks/throughput.py --script wgan_gp --batch-size 50 --warmup 3 --steps 20
  python benchmarks/throughput.py --script dcgan --processes 2          # under torchrun, 2 processes

--data-path tensor      the script's own path: the whole data set as one uint8 tensor on the
                        device, batches gathered by random permutation
--data-path dataloader  the usual alternative, for comparison: torchvision MNIST with
                        ToTensor + Normalize transforms and a shuffling DataLoader

A script whose step handles more than one batch (wgan_gp: n_critic critic batches, then one
generator batch) says so through its images_per_step(cfg); each kind it names is reported as
images/s (wgan_gp: "real" images the critic reads, "generated" images G makes).

--processes N starts the benchmark again under torchrun (--standalone) in N processes, each the
script's own DDP path; --batch-size is then the global batch, and rank 0 prints the line
(images/s counts every process's images). The other flags apply to each process.

Without --data-root, a synthetic 60,000-image MNIST (random pixels, real IDX format) is
written to a temporary folder, so the numbers need no download. Peak memory is the
process's peak RSS on the CPU, or torch's peak allocation on CUDA.
"""

import time

START = time.perf_counter()  # before torch is imported: start-up counts the imports

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def write_synthetic_mnist(root: Path, n: int = 60_000) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("t10k", 1000)):
        for kind, shape in (("images-idx3", (count, 28, 28)), ("labels-idx1", (count,))):
            array = rng.integers(0, 256 if kind.startswith("images") else 10, shape, dtype=np.uint8)
            with open(raw / f"{split}-{kind}-ubyte", "wb") as f:
                f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *shape))
                f.write(array.tobytes())


def dataloader_batches(dataset_name, data_root, workers):
    """A replacement for a script's epoch_batches: the plain torchvision DataLoader path."""
    from torchvision import datasets, transforms

    dataset_class = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[dataset_name]
    dataset = dataset_class(
        data_root,
        train=True,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]),
    )

    def epoch_batches(data, cfg, epoch, start_batch, device, rank=0, world=1):
        share = cfg["batch_size"] // world  # under torchrun: this process's part of a batch
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=share,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
            pin_memory=device.type == "cuda",
        )
        for images, _ in loader:
            yield images.to(device, non_blocking=True)

    return epoch_batches


class StepTimer:
    """Wraps train_step: notes the time after the first step, after warm-up and after the last."""

    def __init__(self, train_step, warmup):
        self.train_step, self.warmup, self.count, self.marks = train_step, warmup, 0, {}

    def __call__(self, *args, **kwargs):
        result = self.train_step(*args, **kwargs)
        self.count += 1
        if self.count in (1, self.warmup) or self.count > self.warmup:
            result.cpu()  # waits for the device, so the clock reads finished work
            self.marks.setdefault(self.count, time.perf_counter())
            self.marks["last"] = (self.count, time.perf_counter())
        return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--script", default="dcgan", help="training script to measure (a module with main and train_step)")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument("--data-root", default=None, help="a data root holding the data set (default: synthetic MNIST)")
    p.add_argument("--data-path", default="tensor", choices=["tensor", "dataloader"])
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers for --data-path dataloader")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--warmup", type=int, default=20, help="steps run before the clock starts")
    p.add_argument("--steps", type=int, default=200, help="timed steps")
    p.add_argument("--device", default="auto")
    p.add_argument("--processes", type=int, default=1, help="processes, under torchrun (1: launched plainly)")
    p.add_argument("--extra", default="", help="more flags for the script, e.g. '--amp --compile reduce-overhead'")
    args = p.parse_args()
    if args.processes > 1 and "RANK" not in os.environ:  # run again, as torchrun's N processes
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node",
                str(args.processes),
                __file__,
                *sys.argv[1:],
            ],
        )

    module = importlib.import_module(args.script)
    timer = StepTimer(module.train_step, args.warmup)
    module.train_step = timer
    with tempfile.TemporaryDirectory() as tmp:
        data_root, synthetic_s = args.data_root, 0.0
        if data_root is None:  # its writing time is not start-up: the data would be on disk already
            data_root, began = os.path.join(tmp, "data"), time.perf_counter()
            write_synthetic_mnist(Path(data_root))
            synthetic_s = time.perf_counter() - began
        if args.data_path == "dataloader":
            module.epoch_batches = dataloader_batches(args.dataset, data_root, args.workers)
        flags = [
            "--dataset",
            args.dataset,
            "--data-root",
            data_root,
            "--batch-size",
            str(args.batch_size),
            "--steps",
            str(args.warmup + args.steps),
            "--log-every",
            str(10**9),
            "--device",
            args.device,
            "--out",
            os.path.join(tmp, "run"),
            *args.extra.split(),
        ]
        device = torch.device(
            "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
        )
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        from contextlib import redirect_stderr, redirect_stdout

        with open(os.devnull, "w") as devnull, redirect_stdout(devnull), redirect_stderr(devnull):
            module.main(flags)
        if os.environ.get("RANK", "0") != "0":  # under torchrun: rank 0 reports
            return
        cfg = torch.load(os.path.join(tmp, "run", "checkpoints", "last.pt"), weights_only=True)["cfg"]
    last_step, end = timer.marks["last"]
    seconds, steps = end - timer.marks[args.warmup], last_step - args.warmup
    per_step = module.images_per_step(cfg) if hasattr(module, "images_per_step") else {"": args.batch_size}
    rates = {f"images_per_s{'_' + kind if kind else ''}": round(steps * n / seconds, 1) for kind, n in per_step.items()}
    peak = (
        torch.cuda.max_memory_allocated()
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    print(
        json.dumps(
            {
                "script": args.script,
                "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
                "processes": args.processes,
                "data_path": args.data_path,
                "batch_size": args.batch_size,
                "timed_steps": steps,
                "steps_per_s": round(steps / seconds, 2),
                **rates,
                "s_per_step": round(seconds / steps, 4),
                "peak_memory_mib": round(peak / 2**20, 1),
                "peak_memory_kind": "cuda allocated" if device.type == "cuda" else "process RSS",
                "start_to_first_step_s": round(timer.marks[1] - START - synthetic_s, 2),
                "torch": torch.__version__,
                "extra": args.extra,
            }
        )
    )


if __name__ == "__main__":
    main()
