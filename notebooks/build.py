"""Build notebooks/<script>.ipynb, one per training script, from the script's GAN half: its text above the
line "# ==== the run", which runs alone (README.md, "Copy a script").

A notebook is: a title from the script's docstring; a parameters cell (steps, data, batch size, device, each
also read from an environment variable); the GAN half's own text, cell by cell at its section comments
(`# ------...--- models`), never edited; then cells that load MNIST (or make synthetic digits), train with
the README's short loop, and show the sample grid and the losses inline. The per-script parts of those last
cells are in SCRIPTS below.

    python notebooks/build.py             # write all seven notebooks
    python notebooks/build.py dcgan       # write one
    python notebooks/build.py --check     # exit 1, with a line per notebook that differs from a fresh build

The output is deterministic (no outputs, no execution counts, cell ids from the script's name and the cell's
index, sorted keys), so --check compares the files byte for byte. Needs nbformat (requirements-dev.txt).
"""

import argparse
import ast
import re
import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
DIVIDER = re.compile(r"^# ==== the run", re.MULTILINE)  # the line between a script's two halves
SECTION = re.compile(r"^# -{3,} (.+)$")  # a section comment of the GAN half: "# -----...--- models"
RETURNS = re.compile(r"Returns detached\s*\[(.*?)\]", re.DOTALL)  # train_step's docstring names what it returns
# a docstring line that Markdown would not take as prose: indented, or a list item, heading, quote, table or rule
MARKDOWN_BLOCK = re.compile(r"\s|[-+*]\s|\d+[.)]\s|#{1,6}\s|>|\||[-=]+\s*$")


# ======================================================================================================
# The per-script parts: what each notebook trains and shows after the GAN half. They call the GAN half's
# functions as tests/copyable/drive_<script>.py does; when a script's builders, epoch_batches or
# train_step change their arguments, change them here and run `python notebooks/build.py`.
#   steps, batch_size  the parameters cell's defaults (the environment variables override them);
#   batch_note         and what it says beside BATCH_SIZE
#   data               extra lines for the Data cell, after `images` (uint8 (N, 1, 28, 28)) is made
#   setup              the Train cell's first lines: cfg, the nets, the optimizers, `data` on the device
#   batch, batches     the loop variable(s) and what they iterate over, for one epoch
#   step               the step's lines, ending in `step_losses = train_step(...)`
#   samples            the Samples cell, after show_grid(images, nrow, title, value_range) is defined
#   loss_names         optional: train_step's values, when its docstring does not name them as
#                      "Returns detached [a, b, ...]"
# ======================================================================================================
SCRIPTS = {
    "gan_mlp": dict(
        steps=1000,
        batch_size=128,
        batch_note="HPARAMS's: 128",
        setup="""\
cfg = dict(HPARAMS, seed=0, batch_size=BATCH_SIZE)  # the images preset: z of 100, MLPs, Adam 2e-4 (0.5, 0.999)
G, D = build_generator(cfg).to(device), build_discriminator(cfg).to(device)
opt_g, opt_d = build_optimizers(cfg, G, D)
data = images.to(device)""",
        batch="real",
        batches="epoch_batches(data, cfg, epoch, start_batch=0, device=device)",  # batches in [-1, 1]
        step="""\
step_losses = train_step(G, D, opt_g, opt_d, real, sample_noise(cfg, len(real), device), cfg["loss"])""",
        samples="""\
fixed_noise = sample_noise(cfg, 64, device)
show_grid(generate(G, fixed_noise), 8, f"G(z) after {len(losses)} steps", VALUE_RANGE)""",
    ),
    "gan_maxout": dict(
        steps=1000,
        batch_size=100,
        batch_note="the paper's: 100",
        setup="""\
cfg = dict(HPARAMS, seed=0, batch_size=BATCH_SIZE)  # the paper's values: maxout D, SGD 0.1 with momentum 0.5
G, D = build_generator(cfg).to(device), build_discriminator(cfg).to(device)
opt_g, opt_d = build_optimizers(cfg, G, D)
data = images.to(device)
init_sigmoid_bias_from_marginals(G, data)  # G starts at the data's mean image""",
        batch="real",
        batches="epoch_batches(data, cfg, epoch, start_batch=0, device=device)",  # batches in [0, 1]
        step="""\
apply_schedules(cfg, (opt_g, opt_d), len(losses), epoch)  # this step's learning rate, this epoch's momentum
step_losses = train_step(G, D, opt_g, opt_d, real, sample_noise(cfg, len(real), device))""",
        samples="""\
show_grid(generate(G, sample_noise(cfg, 100, device)), 10, f"G(z) after {len(losses)} steps", VALUE_RANGE)""",
    ),
    "dcgan": dict(
        steps=500,
        batch_size=64,
        batch_note="the paper's: 128",
        setup="""\
cfg = dict(HPARAMS, seed=0, batch_size=BATCH_SIZE)  # the paper's values: z of 100, Adam 2e-4 (0.5, 0.999)
G, D = build_generator(cfg).to(device), build_discriminator(cfg).to(device)
opt_g, opt_d = build_optimizers(cfg, G, D)
data = images.to(device)""",
        batch="real",
        batches="epoch_batches(data, cfg, epoch, start_batch=0, device=device)",  # batches in [-1, 1]
        step="""\
z = sample_noise(cfg, len(real), device)
step_losses = train_step(G, D, opt_g, opt_d, real, z, cfg["real_label"])""",
        samples="""\
show_grid(generate(G, sample_noise(cfg, 64, device)), 8, f"G(z) after {len(losses)} steps", VALUE_RANGE)""",
    ),
    "wgan_gp": dict(
        steps=200,
        batch_size=50,
        batch_note="the paper's: 50 (MNIST)",
        setup="""\
cfg = paper_config("mnist", seed=0, batch_size=BATCH_SIZE)  # gan_mnist.py's nets: Adam 1e-4 (0.5, 0.9), 5 critic steps
G, D = build_generator(cfg).to(device), build_critic(cfg).to(device)
opt_g, opt_d = build_optimizers(cfg, G, D)
data = images.to(device)""",
        batch="reals",
        batches="epoch_batches(data, cfg, epoch, start_step=0, device=device)",  # n_critic batches a step
        step="""\
for opt in (opt_g, opt_d):  # the paper's schedule: constant for MNIST
    opt.param_groups[0]["lr"] = learning_rate(cfg, len(losses), STEPS)
step_losses = train_step(G, D, opt_g, opt_d, reals, cfg, cfg["g_batch_size"])""",
        samples="""\
show_grid(generate(G, sample_noise(cfg, 100, device)), 10, f"G(z) after {len(losses)} steps", cfg["value_range"])""",
    ),
    "infogan": dict(
        steps=500,
        batch_size=64,
        batch_note="the paper's: 128",
        setup="""\
cfg = dict(HPARAMS, seed=0, batch_size=BATCH_SIZE)  # the paper's values: z of 62, codes Cat(10) + 2 x U(-1, 1)
G, D = build_generator(cfg).to(device), build_discriminator(cfg).to(device)  # D carries Q's head on its trunk
opt_g, opt_d = build_optimizers(cfg, G, D)
data = images.to(device)""",
        batch="real",
        batches="epoch_batches(data, cfg, epoch, start_batch=0, device=device)",  # batches in [0, 1]
        step="""\
latent = sample_latent(cfg, len(real), device)  # noise z, categories c_cat, continuous codes c_cont
step_losses = train_step(G, D, opt_g, opt_d, real, latent, cfg)""",
        samples="""\
fixed_noise = sample_latent(cfg, 10, device)[0]  # as save_grids: a row per category, then each code swept
z, cols = grid_input(cfg, fixed_noise)
show_grid(generate(G, z), cols, "a row per category, a column per noise vector", VALUE_RANGE)
for code in range(cfg["n_cont"]):
    z, cols = grid_input(cfg, fixed_noise, code)
    show_grid(generate(G, z), cols, f"c{code + 1} from {TRAVERSE[0]} to {TRAVERSE[1]} along each row", VALUE_RANGE)""",
    ),
    "bigan": dict(
        steps=1000,
        batch_size=128,
        batch_note="the paper's: 128",
        setup="""\
cfg = dict(HPARAMS, seed=0, batch_size=BATCH_SIZE)  # the paper's MNIST nets: z of 50, hidden layers of 1024
G, E, D = build_generator(cfg).to(device), build_encoder(cfg).to(device), build_discriminator(cfg).to(device)
opt_ge, opt_d = build_optimizers(cfg, G, E, D)  # G and E are one player, with one optimizer
data = images.to(device)""",
        batch="real",
        batches="epoch_batches(data, cfg, epoch, start_batch=0, device=device)",  # batches in [0, 1]
        step="""\
step_losses = train_step(G, E, D, opt_ge, opt_d, real, sample_noise(cfg, len(real), device), cfg)""",
        samples="""\
show_grid(generate(G, sample_noise(cfg, 64, device)), 8, f"G(z) after {len(losses)} steps", VALUE_RANGE)
x = data[:32].float() / 255  # training images, in [0, 1]
pairs = torch.stack([x, reconstruct(G, E, x)], dim=1).flatten(0, 1)  # x, G(E(x)), x, G(E(x)), ...
show_grid(pairs, 16, "x beside G(E(x))", VALUE_RANGE)""",
    ),
    "cyclegan": dict(
        steps=300,
        batch_size=4,
        batch_note="the paper's: 1 (docs/cyclegan.md: 8)",
        data="""\

# Two domains: A, grey digits; B, *other* digits, each a random light colour on a random dark background.
# Both padded from 28 to 32 pixels. (cyclegan.py's own colourize is in its run half, not copied here.)
half = len(images) // 2
padded = torch.nn.functional.pad(images, (2, 2, 2, 2))  # uint8 (N, 1, 32, 32)
ink = padded[half:].float() / 255
colours = torch.Generator().manual_seed(0)
digit_colour = 0.5 + 0.5 * torch.rand(len(ink), 3, 1, 1, generator=colours)
background = 0.5 * torch.rand(len(ink), 3, 1, 1, generator=colours)
domain_a = padded[:half]  # uint8 (N / 2, 1, 32, 32)
domain_b = (255 * (digit_colour * ink + background * (1 - ink))).round().to(torch.uint8)  # uint8 (N / 2, 3, 32, 32)
print(f"domain A {tuple(domain_a.shape)}, domain B {tuple(domain_b.shape)}")""",
        setup="""\
cfg = dict(HPARAMS, seed=0, batch_size=BATCH_SIZE)  # the paper's nets: ResNet G and F, PatchGAN D_A and D_B
if device.type == "cpu":
    cfg.update(ngf=16, ndf=32)  # docs/cyclegan.md's CPU run: a quarter and half the paper's widths
G, F = build_translator(cfg).to(device), build_translator(cfg).to(device)  # G: A -> B, F: B -> A
D_A, D_B = build_discriminator(cfg).to(device), build_discriminator(cfg).to(device)
opt_g, opt_d = build_optimizers(cfg, G, F, D_A, D_B)
pools = [ImagePool(cfg["pool_size"], seed=k) for k in range(2)]  # D_A's fakes F(b), D_B's fakes G(a)
domains = [domain_a.to(device), domain_b.to(device)]""",
        batch="real_a, real_b",
        batches="epoch_batches(domains, cfg, epoch, start_batch=0, device=device)",  # pairs in [-1, 1]
        step="""\
step_losses = train_step(G, F, D_A, D_B, opt_g, opt_d, real_a, real_b, pools, cfg)""",
        samples="""\
fixed_a, fixed_b = as_model_input(domains[0][:8]), as_model_input(domains[1][:8])
G.eval(), F.eval()  # as save_samples
with torch.no_grad():
    fake_b, fake_a = G(fixed_a), F(fixed_b)
    rows = torch.cat([fixed_a, fake_b, F(fake_b), fixed_b, fake_a, G(fake_a)])
G.train(), F.train()
show_grid(rows, len(fixed_a), "rows: a | G(a) | F(G(a)) | b | F(b) | G(F(b))", VALUE_RANGE)""",
    ),
}


# ------------------------------------------------------------------------------------------ shared cells
PARAMETERS_CELL = """\
import os

import torch

# Set here, or by the environment variables GAN_NOTEBOOK_STEPS, ..._DATA, ..._DATA_ROOT, ..._BATCH_SIZE, ..._DEVICE
STEPS = int(os.environ.get("GAN_NOTEBOOK_STEPS", {steps}))  # a short run: docs/{script}.md has full ones
DATA = os.environ.get("GAN_NOTEBOOK_DATA", "auto")  # "auto": MNIST, or synthetic digits offline; "synthetic"
DATA_ROOT = os.environ.get("GAN_NOTEBOOK_DATA_ROOT", "data")  # where torchvision keeps MNIST
BATCH_SIZE = int(os.environ.get("GAN_NOTEBOOK_BATCH_SIZE", {batch_size}))  # images a step; {batch_note}
DEVICE = os.environ.get("GAN_NOTEBOOK_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")"""

DATA_CELL = """\
from torchvision.datasets import MNIST


def synthetic_digits(n, seed=0):
    \"\"\"n uint8 images (n, 1, 28, 28) of a bright blob and a bar: structured, so a GAN has something to fit.\"\"\"
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    cy, cx = 9 + 10 * torch.rand(2, n, 1, 1, generator=g)  # the blobs' centres
    r = 3 + 4 * torch.rand(n, 1, 1, generator=g)  # and radii
    blobs = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    bars = 0.8 * (xx == torch.randint(6, 22, (n, 1, 1), generator=g))  # a vertical bar in each
    return (255 * (blobs + bars).clamp(0, 1)).to(torch.uint8).unsqueeze(1)


if DATA not in ("auto", "synthetic"):
    raise ValueError(f'DATA is "auto" or "synthetic", not {DATA!r}')
if DATA == "synthetic":
    images = synthetic_digits(2048)
else:
    try:
        images = MNIST(DATA_ROOT, train=True, download=True).data.unsqueeze(1)  # uint8 (60000, 1, 28, 28)
    except Exception as error:  # no network
        print(f"MNIST could not be downloaded ({type(error).__name__}): training on synthetic digits instead")
        images = synthetic_digits(2048)
print(f"{len(images)} images {tuple(images.shape[1:])}, {images.dtype}")"""

TRAIN_CELL = """\
device = torch.device(DEVICE)
torch.manual_seed(0)
{setup}
# what train_step returns, as its docstring names them
LOSS_NAMES = [{loss_names}]
losses = []  # a row of LOSS_NAMES per step
epoch = 0
while len(losses) < STEPS:
    done = len(losses)
    for {batch} in {batches}:
{step}
        losses.append(step_losses.tolist())
        if len(losses) % max(1, STEPS // 10) == 0:
            print(f"step {{len(losses)}}:", ", ".join(f"{{k}} {{v:.3f}}" for k, v in zip(LOSS_NAMES, losses[-1])))
        if len(losses) == STEPS:
            break
    if len(losses) == done:
        raise ValueError(f"{{len(images)}} images are too few for one step of BATCH_SIZE {{BATCH_SIZE}}")
    epoch += 1"""

SAMPLES_CELL = """\
import matplotlib.pyplot as plt
from torchvision.utils import make_grid


def show_grid(images, nrow, title, value_range):
    \"\"\"Images (N, C, H, W) with values in value_range, as one grid shown below the cell.\"\"\"
    grid = make_grid(images.float().cpu(), nrow=nrow, normalize=True, value_range=value_range, pad_value=1.0)
    plt.figure(figsize=(grid.shape[2] / 40, grid.shape[1] / 40))
    plt.imshow(grid.permute(1, 2, 0).numpy())
    plt.title(title)
    plt.axis("off")
    plt.show()


{samples}"""

LOSSES_CELL = """\
history = torch.tensor(losses).view(-1, len(LOSS_NAMES))  # (steps, values)
plt.figure(figsize=(9, 4))
for k, name in enumerate(LOSS_NAMES):
    plt.plot(range(1, len(history) + 1), history[:, k].numpy(), label=name)
plt.xlabel("step")
plt.title("train_step's values at each step")
plt.legend()
plt.show()"""

TEXT = {
    "gan_half": """\
## The GAN half

`{script}.py`'s text above its `# ==== the run` line, cell by cell at its section comments, exactly as the \
script has it: torch, torchvision and numpy, no `utils.py`. Run the cells in order; the ones after it load the \
data, train and show what came out.""",
    "data": """\
## Data

MNIST's 60,000 training digits as one uint8 tensor (N, 1, 28, 28), downloaded by torchvision into `DATA_ROOT`; \
with `DATA = "synthetic"`, or when the download fails (no network), 2,048 synthetic images of blobs and bars \
instead: a GAN learns them, but they are not digits.""",
    "train": """\
## Train

The README's loop ("Copy a script"; `tests/copyable/drive_{script}.py` drives the script's GAN half the same \
way): the config, the nets and their optimizers, then `train_step` on each batch of `epoch_batches`, epoch after \
epoch, for `STEPS` steps, keeping what each step returns.""",
    "samples": "## Samples\n\nThe sample grid, from the nets as they are after `STEPS` steps.",
    "losses": "## Losses",
}
CYCLEGAN_DATA = """

Domain A is the grey digits of the first half; domain B the digits of the second half, each given random \
colours, so no image is in both. Both are padded to 32x32: the translators halve the side twice."""


# ------------------------------------------------------------------------------------------ building
def gan_half(script, root=ROOT):
    """The text of <script>.py above its "# ==== the run" line."""
    parts = DIVIDER.split((root / f"{script}.py").read_text(encoding="utf-8"))
    if len(parts) != 2:
        sys.exit(f"build.py: {script}.py needs exactly one line starting with '# ==== the run'")
    return parts[0]


def escape(text):
    """Prose for Markdown: < and > as entities, so that <name> in a path is not taken for an HTML tag."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def docstring_markdown(doc, script):
    """The title cell: the docstring's first paragraph as a heading (up to its first ': ') and text, then
    a line on where the notebook comes from, then the rest: prose paragraphs as Markdown, indented or
    aligned ones (commands, lists of files, formulas) in fenced blocks, as the docstring lays them out."""
    first, *rest = doc.strip().split("\n\n")
    heading, _, text = " ".join(first.split()).partition(": ")
    cell = [f"# {heading} (`{script}.py`)"]
    if text:
        cell.append(escape(text))
    cell.append(
        f"*This notebook is generated from [`{script}.py`](../{script}.py)'s GAN half by `notebooks/build.py`: "
        f"change the script, then run `python notebooks/build.py`. The script's own page is "
        f"[docs/{script}.md](../docs/{script}.md).*"
    )
    for paragraph in rest:
        lines = paragraph.strip("\n").splitlines()
        if any(MARKDOWN_BLOCK.match(line) for line in lines):
            cell.append("```text\n" + "\n".join(lines) + "\n```")
        else:
            cell.append(escape("\n".join(lines)))
    return "\n\n".join(cell)


def code_sections(half):
    """The GAN half after its docstring as [(section title or None, code)]: the imports first, then each
    section's code, split at its `# ----- title` line, blank lines around it trimmed."""
    tree = ast.parse(half)
    lines = half.splitlines()[tree.body[0].end_lineno :]  # after the module docstring
    sections, title, code = [], None, []
    for line in [*lines, "# --- end"]:
        match = SECTION.match(line)
        if match:
            text = "\n".join(code).strip("\n")
            if text:
                sections.append((title, text))
            title, code = match.group(1), []
        else:
            code.append(line)
    return sections


def loss_names(half, script):
    """The names of train_step's values, from its docstring ("Returns detached [d_loss, g_loss, D(x), ...]")."""
    if "loss_names" in SCRIPTS[script]:
        return SCRIPTS[script]["loss_names"]
    step = next((n for n in ast.parse(half).body if isinstance(n, ast.FunctionDef) and n.name == "train_step"), None)
    match = step and RETURNS.search(ast.get_docstring(step) or "")
    if not match:
        sys.exit(
            f"build.py: {script}.py's train_step docstring does not say 'Returns detached [a, b, ...]': "
            f'give the names as SCRIPTS["{script}"]["loss_names"] in notebooks/build.py'
        )
    names, depth, name = [], 0, ""
    for char in match.group(1) + ",":  # split at the commas outside parentheses: "D(x, E(x))" is one name
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            names.append(" ".join(name.split()))
            name = ""
        else:
            name += char
    return names


def notebook_text(script, root=ROOT):
    """The notebook of <script>.py's GAN half, as the exact text build.py writes."""
    parts, half = SCRIPTS[script], gan_half(script, root)
    parameters = PARAMETERS_CELL.format(script=script, **parts)
    cells = [
        new_markdown_cell(docstring_markdown(ast.get_docstring(ast.parse(half)), script)),
        new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        new_markdown_cell(TEXT["gan_half"].format(script=script)),
    ]
    for title, code in code_sections(half):
        if title:
            cells.append(new_markdown_cell(f"### {title[:1].upper()}{title[1:]}"))
        cells.append(new_code_cell(code))
    train = TRAIN_CELL.format(
        setup=parts["setup"],
        loss_names=", ".join(f'"{name}"' for name in loss_names(half, script)),
        batch=parts["batch"],
        batches=parts["batches"],
        step=textwrap.indent(parts["step"], " " * 8),
    )
    cells += [
        new_markdown_cell(TEXT["data"] + (CYCLEGAN_DATA if script == "cyclegan" else "")),
        new_code_cell(DATA_CELL + parts.get("data", "")),
        new_markdown_cell(TEXT["train"].format(script=script)),
        new_code_cell(train),
        new_markdown_cell(TEXT["samples"]),
        new_code_cell(SAMPLES_CELL.format(samples=parts["samples"])),
        new_markdown_cell(TEXT["losses"]),
        new_code_cell(LOSSES_CELL),
    ]
    for index, cell in enumerate(cells):
        cell.id = f"{script}-{index:02d}"
    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
    )
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nbformat.writes(nb, version=4).rstrip("\n") + "\n"


def main(argv=None, root=ROOT):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scripts", nargs="*", metavar="script", help="of " + ", ".join(SCRIPTS) + " (default: all)")
    parser.add_argument("--check", action="store_true", help="compare, write nothing; exit 1 if any differs")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scripts if s not in SCRIPTS]
    if unknown:
        parser.error(f"no such script: {', '.join(unknown)} (the scripts: {', '.join(SCRIPTS)})")
    stale = 0
    for script in args.scripts or SCRIPTS:
        path, text = root / "notebooks" / f"{script}.ipynb", notebook_text(script, root)
        if not args.check:
            path.write_text(text, encoding="utf-8", newline="\n")
            print(f"wrote notebooks/{script}.ipynb")
        elif not path.is_file():
            stale += 1
            print(f"notebooks/{script}.ipynb is missing: run python notebooks/build.py")
        elif path.read_text(encoding="utf-8") != text:
            stale += 1
            fresh = f"a fresh build of {script}.py's GAN half"
            print(f"notebooks/{script}.ipynb differs from {fresh}: run python notebooks/build.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
