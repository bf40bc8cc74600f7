"""Time to quality: train for a wall-clock budget, keep the generator at fixed times, score each, FID against seconds.

Our scripts (dcgan, wgan_gp, infogan): the script's own main() runs in this process, its loop, logging
and EMA as usual; anything after `--` is passed to it as flags.

  python benchmarks/time_to_quality.py --script dcgan --budget 600 --data-root data/results --out /tmp/ttq/dcgan \
      -- --train-range train:0:8000 --batch-size 64 --ema 0.999
  python benchmarks/time_to_quality.py --script wgan_gp --budget 300 --marks 60,120,180 --n 5000 \
      --data-root data/results --out /tmp/ttq/wgan_gp -- --train-range train:0:8000

The peer, eriklindernoren/PyTorch-GAN's dcgan (../shared/anchors/pg_dcgan.py): a patched copy runs as a
subprocess on the same digits; its samples are scored against the real images of one of our runs
(--reference, a dcgan checkpoint on the same data: its config names the data set, data root and classifier).

  python benchmarks/time_to_quality.py --peer ../shared/anchors/pg_dcgan.py --budget 600 --batch-size 64 \
      --reference /tmp/ttq/dcgan/run/checkpoints/last.pt --data-root data/results --out /tmp/ttq/pg

The curves, one PNG (classifier FID on a log axis against training seconds), and how long each run took
to reach the FID that --target-from's run (default: the first CSV) had at its last mark:

  python benchmarks/time_to_quality.py --plot /tmp/ttq/pg/quality.csv /tmp/ttq/dcgan/quality.csv \
      --target-from /tmp/ttq/pg/quality.csv --out /tmp/ttq/fid_vs_seconds.png

The clock counts training time only: it starts when the first step starts (ours: the first train_step
call; the peer: its first batch, data loading included), counts everything the loop does between steps
(logging, epoch-end grids and checkpoints), and stops while a mark is saved. Before the first step that
starts after a mark's time, the generator is kept: ours, G (and G_ema, with --ema) as a checkpoint of this
repository, <out>/marks/mark_<mark>s.pt, which `sampler.py score --ckpt` reads too; the peer's, n samples
of its generator (in train mode, z ~ N(0, 1), as the script itself samples) as <out>/marks/mark_<mark>s.npz.
At the budget, always the last mark, the run stops (ours: as Ctrl-C stops it, so <out>/run/checkpoints/
last.pt is saved; the peer: its process ends). A run that finishes sooner (its own --epochs/--steps) gets
one more mark at its end: pass a larger --epochs after -- to train for the whole budget. Then every mark is
scored with scores.score_one in the classifier space (28x28 grey data sets: mnist, fashion-mnist; classifier
FID and IS against the training file's last sixth, the images the score classifier never learned from;
with G_ema: also G itself, the raw_ columns) into <out>/quality.csv: label, mark (the nominal seconds),
seconds (of training, when kept), step, images (real images trained on), classifier_fid, classifier_is[,
raw_classifier_fid, raw_classifier_is]. The script is given --data-root as an absolute path, so that the
marks score from any folder. A mark of dcgan's MNIST nets is 26 MB a generator (53 MB with G_ema).
"""

import argparse
import csv
import difflib
import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import scores  # noqa: E402
import utils  # noqa: E402

SCRIPTS = ("dcgan", "wgan_gp", "infogan")
DEFAULT_MARKS = "15,30,45,60,90,120,180,240,300,420,600"
COLUMNS = ["label", "mark", "seconds", "step", "images", "classifier_fid", "classifier_is"]
RAW_COLUMNS = ["raw_classifier_fid", "raw_classifier_is"]
PEER_LABEL = "PyTorch-GAN dcgan"

# The peer's copy is changed in three places: a header comment saying so, the helper below inserted before
# its epoch loop, and its batch loop iterating through the helper.
PEER_BEFORE = "for epoch in range(opt.n_epochs):"
PEER_LOOP = (
    "for i, (imgs, _) in enumerate(dataloader):",
    "for i, (imgs, _) in _ttq_marks(enumerate(dataloader)):",
)
PEER_HEADER = """# Patched copy of {source}, made by benchmarks/time_to_quality.py. Changed in three places only:
# this header; the helpers _ttq_marks and _ttq_keep, inserted before the epoch loop; and the batch loop,
# which iterates through _ttq_marks. The diff: peer_patch.diff. The script's licence: LICENSE* beside it.
"""
PEER_HELPER = '''# ---- inserted by benchmarks/time_to_quality.py: keeps samples of the generator at fixed times ----
def _ttq_marks(batches):
    """Yields the batches unchanged. Its clock counts training time from the first batch on, less the time
    spent in _ttq_keep; before the first batch that starts after a mark, _ttq_keep saves the samples."""
    import os
    import time

    s = _ttq_marks.__dict__  # the state, kept across epochs
    if not s:
        marks = [float(m) for m in os.environ["TTQ_MARKS"].split(",")]
        s.update(marks=marks, steps=0, images=0, paused=0.0, t0=time.perf_counter())
    for batch in batches:
        if time.perf_counter() - s["t0"] - s["paused"] >= s["marks"][0]:
            _ttq_keep(s)
        s["steps"], s["images"] = s["steps"] + 1, s["images"] + len(batch[1][0])
        yield batch


def _ttq_keep(s):
    """$TTQ_N samples of the generator (in train mode, as the script samples it; batches of --batch_size;
    z ~ N(0, 1) from a generator of its own, so the training's random streams are untouched), as uint8
    (N, H, W) in $TTQ_MARKS_DIR/mark_<mark>s.npz for every mark passed; after the last, ends the process."""
    import os
    import sys
    import time

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    began = time.perf_counter()
    seconds = began - s["t0"] - s["paused"]
    n, noise, chunks = int(os.environ["TTQ_N"]), torch.Generator().manual_seed(0), []
    with torch.no_grad():
        for _ in range(-(-n // opt.batch_size)):  # whole batches, the last cut: no tiny batch for batch norm
            z = torch.randn(opt.batch_size, opt.latent_dim, generator=noise).type(Tensor)
            x = (generator(z).float().cpu() + 1) / 2  # [-1, 1] -> [0, 1]
            chunks.append(x.clamp(0, 1).mul(255).round().to(torch.uint8)[:, 0].numpy())
    images = np.concatenate(chunks)[:n]
    while s["marks"] and s["marks"][0] <= seconds:
        mark = s["marks"].pop(0)
        path = os.path.join(os.environ["TTQ_MARKS_DIR"], "mark_%gs.npz" % mark)
        with open(path + ".tmp", "wb") as f:
            np.savez(f, images=images, mark=mark, seconds=seconds, step=s["steps"], trained_images=s["images"])
        os.replace(path + ".tmp", path)
        print("[time_to_quality] mark %g s: %.2f s of training, step %d" % (mark, seconds, s["steps"]), flush=True)
    if not s["marks"]:  # the budget: the run ends here
        sys.stdout.flush()
        os._exit(0)
    s["paused"] += time.perf_counter() - began


'''


# --------------------------------------------------------------------------- the clock and the marks
def sync():
    """Wait for the GPU's queued work, so that the clock reads finished steps."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def unwrap(net):
    """The module itself, out of its DistributedDataParallel (.module) and torch.compile (._orig_mod) wrappers."""
    while isinstance(net, DistributedDataParallel) or hasattr(net, "_orig_mod"):
        net = net.module if isinstance(net, DistributedDataParallel) else net._orig_mod
    return net


def cpu_state(net):
    return {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}


class MarkKeeper:
    """Wraps a script module's train_step and update_ema (main() looks both up by their global names).

    The clock starts when the first train_step starts and stops while a mark is saved. Before the
    first step that starts after a mark's time, G (train_step's first argument, unwrapped) and G_ema
    (what update_ema was last given) are saved to <folder>/mark_<mark>s.pt.part as CPU state dicts
    with the step and the training seconds; at the budget, the last mark, KeyboardInterrupt stops
    the run as Ctrl-C would. `kept` lists (mark, path) in order."""

    def __init__(self, module, marks, folder):
        self.train_step, self.update_ema = module.train_step, module.update_ema
        module.train_step, module.update_ema = self.step, self.ema
        self.marks, self.folder, self.kept = list(marks), Path(folder), []
        self.t0, self.paused, self.steps, self.last_seconds = None, 0.0, 0, 0.0
        self.G, self.G_ema, self.kept_steps = None, None, None

    def seconds(self):
        return time.perf_counter() - self.t0 - self.paused

    def step(self, G, *args, **kwargs):
        if self.t0 is None:
            self.t0 = time.perf_counter()
        self.G = unwrap(G)
        if self.marks and self.seconds() >= self.marks[0]:
            self.keep()
            if not self.marks:
                raise KeyboardInterrupt  # the budget: main saves last.pt and exits with 130
        result = self.train_step(G, *args, **kwargs)
        self.steps += 1
        self.last_seconds = self.seconds()
        return result

    def ema(self, G_ema, G, decay):
        self.G_ema = G_ema
        return self.update_ema(G_ema, G, decay)

    def keep(self, end=False):
        """Save the generator for every mark passed (at the end of a run that finished early: one more)."""
        sync()
        began = time.perf_counter()
        seconds = self.last_seconds if end else began - self.t0 - self.paused
        models = {"G": cpu_state(self.G)} | ({"G_ema": cpu_state(self.G_ema)} if self.G_ema is not None else {})
        passed = [round(seconds, 1)] if end else [m for m in self.marks if m <= seconds]
        self.folder.mkdir(parents=True, exist_ok=True)
        for mark in passed:
            path = self.folder / f"mark_{mark:g}s.pt.part"
            torch.save({"models": models, "step": self.steps, "seconds": seconds, "mark": mark}, path)
            self.kept.append((mark, path))
        self.marks, self.kept_steps = [m for m in self.marks if m > seconds], self.steps
        self.paused += time.perf_counter() - began


# --------------------------------------------------------------------------- our scripts
def images_per_step(module, cfg):
    """Real images one step reads (wgan_gp: n_critic batches, through its images_per_step hook)."""
    if hasattr(module, "images_per_step"):
        return module.images_per_step(cfg)["real"]
    return cfg["batch_size"]


def train_script(args, flags, marks, out):
    """Train args.script for the budget, keeping its marks; returns the kept marks as checkpoints of this
    repository: [(mark, path)]."""
    module = importlib.import_module(args.script)
    keeper = MarkKeeper(module, marks, out / "marks")
    run_dir = out / "run"
    argv = ["--data-root", str(Path(args.data_root).resolve()), "--out", str(run_dir), *flags]
    print(f"time_to_quality: {args.script}.py {' '.join(argv)}; marks at {', '.join(f'{m:g}' for m in marks)} s")
    try:
        module.main(argv)
    except SystemExit as exc:
        if exc.code != 130:  # 130: stopped at the budget, last.pt saved
            raise
    else:  # finished before the budget (its own --epochs or --steps): one more mark, unless the last is its end
        if keeper.steps and not (keeper.kept and keeper.kept_steps == keeper.steps):
            keeper.keep(end=True)
    if not keeper.kept:
        utils.die(f"{args.script}: no mark was reached (training time {keeper.last_seconds:.1f} s)")
    cfg = utils.load_checkpoint(run_dir / "checkpoints" / "last.pt", args.script)["cfg"]
    per_step, checkpoints = images_per_step(module, cfg), []
    for mark, part in keeper.kept:
        state = torch.load(part, map_location="cpu", weights_only=True)
        path = part.with_name(part.name.removesuffix(".part"))
        utils.save_checkpoint({"cfg": cfg, **state, "images": state["step"] * per_step}, path, args.script)
        part.unlink()
        checkpoints.append((mark, path))
    return checkpoints


def score_checkpoints(label, checkpoints, n):
    """quality.csv's rows for our marks: the average of G where the run kept one, and G itself (raw_)."""
    rows = []
    for mark, path in checkpoints:
        state = utils.load_checkpoint(path)
        row = {"label": label, "mark": mark, "seconds": state["seconds"], "step": state["step"]}
        row["images"] = state["images"]
        row |= pick(scores.score_one(str(path), n=n, quiet=True), "")
        if "G_ema" in state["models"]:
            row |= pick(scores.score_one(str(path), n=n, quiet=True, raw=True), "raw_")
        print(summary(row), flush=True)
        rows.append(row)
    return rows


def pick(result, prefix):
    if "classifier_fid" not in result:
        utils.die("the runs are scored in the classifier space: 28x28 grey data sets only (mnist, fashion-mnist)")
    return {prefix + "classifier_fid": result["classifier_fid"], prefix + "classifier_is": result["classifier_is"]}


# --------------------------------------------------------------------------- the peer
def patch_peer(source, folder):
    """Copy the peer's script (and the LICENSE files beside it) into `folder` and patch the copy:
    a header, the helper before the epoch loop, the batch loop through it. Returns (script, diff)."""
    text = source.read_text()
    for needle in (PEER_BEFORE, PEER_LOOP[0]):
        if text.count(needle) != 1:
            utils.die(f"{source} is not the README's pg_dcgan.py: {needle!r} is not in it exactly once")
    patched = PEER_HEADER.format(source=source.name) + text.replace(PEER_BEFORE, PEER_HELPER + PEER_BEFORE, 1)
    patched = patched.replace(*PEER_LOOP, 1)
    folder.mkdir(parents=True, exist_ok=True)
    for licence in source.parent.glob("LICENSE*"):
        shutil.copyfile(licence, folder / licence.name)
    script = folder / source.name
    script.write_text(patched)
    diff = difflib.unified_diff(
        text.splitlines(keepends=True), patched.splitlines(keepends=True), source.name, f"{source.name} (patched copy)"
    )
    return script, "".join(diff)


def peer_data(data_root, peer_dir):
    """<peer_dir>/data/mnist/MNIST/raw/ with a symlink to every file of <data-root>/MNIST/raw/: what the
    script's ../../data/mnist reads from its working folder, <peer_dir>/run/here."""
    raw = Path(data_root).resolve() / "MNIST" / "raw"
    if not raw.is_dir() or not any(raw.iterdir()):
        utils.die(f"--data-root {data_root}: no MNIST/raw/ files (torchvision's layout) in it")
    linked = peer_dir / "data" / "mnist" / "MNIST" / "raw"
    linked.mkdir(parents=True, exist_ok=True)
    for f in raw.iterdir():
        target = linked / f.name
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(f)
    work = peer_dir / "run" / "here"
    work.mkdir(parents=True, exist_ok=True)
    return work


def train_peer(args, marks, out):
    """Run the patched peer for the budget; returns its marks' .npz files, [(mark, path)]."""
    peer_dir, marks_dir = out / "peer", out / "marks"
    script, diff = patch_peer(Path(args.peer).resolve(), peer_dir)
    (out / "peer_patch.diff").write_text(diff)
    work = peer_data(args.data_root, peer_dir)
    marks_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TTQ_N=str(args.n), TTQ_MARKS_DIR=str(marks_dir))
    env["TTQ_MARKS"] = ",".join(f"{m:g}" for m in marks)
    command = [sys.executable, str(script), "--batch_size", str(args.batch_size)]
    print(f"time_to_quality: {' '.join(command)} in {work}; marks at {env['TTQ_MARKS']} s; output: peer_output.txt")
    with open(out / "peer_output.txt", "w") as log:
        proc = subprocess.Popen(
            command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=600 + 3 * marks[-1])  # start-up and the samples' time are not on the clock
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
    kept = [(m, marks_dir / f"mark_{m:g}s.npz") for m in marks if (marks_dir / f"mark_{m:g}s.npz").exists()]
    if rc != 0 or len(kept) < len(marks):
        tail = "".join((out / "peer_output.txt").read_text(errors="replace").splitlines(keepends=True)[-5:])
        print(f"warning: the peer ended with status {rc}, {len(kept)} of {len(marks)} marks kept:\n{tail}")
    if not kept:
        utils.die("the peer kept no mark")
    return kept


def score_samples(label, samples, reference, n):
    """quality.csv's rows for the peer's marks: its samples against the reference run's real images."""
    rows = []
    for mark, path in samples:
        with np.load(path) as npz:
            row = {"label": label, "mark": mark, "seconds": float(npz["seconds"]), "step": int(npz["step"])}
            row["images"] = int(npz["trained_images"])
        row |= pick(scores.score_one(reference, images=str(path), n=n, quiet=True), "")
        print(summary(row), flush=True)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- quality.csv and the plot
def summary(row):
    text = (
        f"{row['label']}: mark {row['mark']:g} s ({row['seconds']:.1f} s of training, step {row['step']:,}, "
        f"{row['images']:,} images): classifier FID {row['classifier_fid']:.3f}, IS {row['classifier_is']:.3f}"
    )
    if "raw_classifier_fid" in row:
        text += f"; G itself: FID {row['raw_classifier_fid']:.3f}, IS {row['raw_classifier_is']:.3f}"
    return text


def write_csv(rows, path):
    columns = COLUMNS + (RAW_COLUMNS if any(RAW_COLUMNS[0] in r for r in rows) else [])
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([f"{r[c]:.6g}" if isinstance(r.get(c), float) else r.get(c, "") for c in columns])
    print(f"wrote {path}")


def read_csv(path):
    """A quality.csv as {label, seconds, fid, raw_fid (None when not measured)}."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        utils.die(f"{path} has no rows")
    raw = [float(r["raw_classifier_fid"]) if r.get("raw_classifier_fid") else None for r in rows]
    return {
        "label": rows[0]["label"],
        "seconds": [float(r["seconds"]) for r in rows],
        "fid": [float(r["classifier_fid"]) for r in rows],
        "raw_fid": raw if all(v is not None for v in raw) else None,
    }


def seconds_to_reach(seconds, fids, target):
    """The first time a curve is at or below `target`, linear in seconds between marks; None if never."""
    for i, (s, fid) in enumerate(zip(seconds, fids)):
        if fid <= target:
            if i == 0:
                return s
            s0, fid0 = seconds[i - 1], fids[i - 1]
            return s0 + (s - s0) * (fid0 - target) / (fid0 - fid)
    return None


def plot(csv_paths, out, target_from, labels=None):
    """One PNG: each run's classifier FID against training seconds (G itself dashed, beside its average), the
    target (--target-from's FID at its last mark) as a dotted line; `labels` name the runs in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, ScalarFormatter

    runs = [read_csv(p) for p in csv_paths]
    target = read_csv(target_from)["fid"][-1]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for run, label in zip(runs, labels or [run["label"] for run in runs]):
        (line,) = ax.plot(run["seconds"], run["fid"], marker="o", linewidth=1.5, label=label)
        if run["raw_fid"]:
            ax.plot(run["seconds"], run["raw_fid"], "--", marker=".", color=line.get_color(), linewidth=1,
                    label=f"{label}: G itself")  # fmt: skip
    ax.axhline(target, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="seconds of training", ylabel="classifier FID (log scale)", yscale="log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    print(f"wrote {out}")

    target_run = read_csv(target_from)
    last = target_run["seconds"][-1]
    print(f"target: {target_run['label']}, classifier FID {target:.3f} at its last mark ({last:.1f} s of training)")
    for path, run in zip(csv_paths, runs):
        if Path(path).resolve() == Path(target_from).resolve():
            continue
        parts = [reach_text(run["seconds"], run["fid"], target)]
        if run["raw_fid"]:
            parts.append(f"G itself: {reach_text(run['seconds'], run['raw_fid'], target)}")
        print(f"seconds to reach FID {target:.3f}: {run['label']}: {'; '.join(parts)}")


def reach_text(seconds, fids, target):
    reached = seconds_to_reach(seconds, fids, target)
    if reached is None:
        best = min(range(len(fids)), key=fids.__getitem__)
        return f"not reached in {seconds[-1]:.1f} s (lowest FID {fids[best]:.3f} at {seconds[best]:.1f} s)"
    return f"{reached:.1f} s"


# --------------------------------------------------------------------------- command line
def parse_marks(text, budget):
    """The marks in seconds, sorted, those beyond the budget dropped; the budget is always the last."""
    try:
        marks = sorted({float(m) for m in text.split(",") if m.strip()})
    except ValueError:
        utils.die(f"--marks must be seconds separated by commas, got {text!r}")
    if any(m <= 0 for m in marks) or budget <= 0:
        utils.die("--marks and --budget must be positive seconds")
    return [m for m in marks if m < budget] + [budget]


def parse_args(argv):
    own, flags = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--script", choices=SCRIPTS, help="train one of our scripts (its flags after --)")
    mode.add_argument("--peer", help="train the peer: the path of PyTorch-GAN's dcgan, pg_dcgan.py")
    mode.add_argument("--plot", nargs="+", metavar="CSV", help="plot these quality.csv files into --out (a PNG)")
    p.add_argument("--out", required=True, help="output folder (with --plot: the PNG)")
    p.add_argument("--data-root", default="./data", help="the data root holding MNIST/raw/ (torchvision's layout)")
    p.add_argument("--budget", type=float, default=600.0, help="seconds of training")
    p.add_argument("--marks", default=DEFAULT_MARKS, help="seconds at which the generator is kept, comma-separated")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads and OMP_NUM_THREADS")
    p.add_argument("--n", type=int, default=10000, help="samples scored at each mark")
    p.add_argument("--batch-size", type=int, default=64, help="the peer's batch size")
    p.add_argument("--reference", help="the peer: a checkpoint of our dcgan on the same data (its real images)")
    p.add_argument("--label", help="the runs' label in quality.csv (default: the script and its flags)")
    p.add_argument("--target-from", help="--plot: the CSV whose FID at its last mark is the target (default: first)")
    p.add_argument("--labels", help="--plot: the runs' names in the legend, separated by ';' (default: their labels)")
    args = p.parse_args(own)
    if flags and not args.script:
        p.error("flags after -- are for --script's main()")
    if args.peer and not args.reference:
        p.error("--peer needs --reference CKPT, a checkpoint of our dcgan on the same data")
    if any(f in flags or any(x.startswith(f + "=") for x in flags) for f in ("--out", "--resume")):
        p.error("--out and --resume are set by this benchmark; pass --out before --")
    return args, flags


def main(argv=None):
    args, flags = parse_args(sys.argv[1:] if argv is None else argv)
    if args.plot:
        plot(args.plot, args.out, args.target_from or args.plot[0], args.labels and args.labels.split(";"))
        return
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for any process started from here
    torch.set_num_threads(args.threads)
    marks, out = parse_marks(args.marks, args.budget), Path(args.out)
    if list((out / "marks").glob("mark_*")):
        utils.die(f"{out / 'marks'} already holds marks of an earlier run; choose another --out")
    if args.script:
        checkpoints = train_script(args, flags, marks, out)
        rows = score_checkpoints(args.label or " ".join([args.script, *flags]), checkpoints, args.n)
    else:
        reference = str(utils.find_checkpoint(args.reference, "--reference"))
        reference_root = utils.load_checkpoint(reference, SCRIPTS)["cfg"]["data_root"]  # one line now if not ours
        if Path(reference_root).resolve() != Path(args.data_root).resolve():
            print(f"warning: --reference {reference} was trained on {reference_root}, the peer trains on "
                  f"--data-root {args.data_root}: its real images and classifier are the reference's")  # fmt: skip
        rows = score_samples(args.label or PEER_LABEL, train_peer(args, marks, out), reference, args.n)
    write_csv(rows, out / "quality.csv")


if __name__ == "__main__":
    main()
