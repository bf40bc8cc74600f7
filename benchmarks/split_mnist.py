"""Only MNIST's test file at hand? Split its 10,000 digits into a training file and a test file.

    python benchmarks/split_mnist.py --t10k FOLDER                  # FOLDER holds t10k-images-idx3-ubyte.gz ...
    python benchmarks/split_mnist.py --t10k FOLDER --data-root data --train 8000

MNIST's 60,000-digit training file is not always at hand (offline machines, mirrors down), while
its 10,000-digit test file often is. This writes, under <data-root>/MNIST/raw/, the first --train
digits of the test file as MNIST's training file (train-*-ubyte.gz) and the rest as its test file
(t10k-*-ubyte.gz), in the IDX format torchvision reads. Every script then trains on the first part
with no range flags, and the second part stays held out from every run and from the score
classifier (sampler.py score), as in the results table (8,000 / 2,000). Bad input ends in one line.
"""

import argparse
import gzip
import signal
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

FILES = {"images": "images-idx3-ubyte", "labels": "labels-idx1-ubyte"}
if hasattr(signal, "SIGPIPE"):  # --help piped into `head` ends quietly, as Unix tools do
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def read_idx(path):
    """An IDX file (gzipped or plain) as a numpy array; one line and exit if it is not one."""
    try:
        data = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
        if data[:2] != b"\x00\x00" or data[2] != 8:
            raise ValueError("not an IDX file of bytes")
        ndim = data[3]
        dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
        return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    except (OSError, EOFError, ValueError, IndexError, struct.error, zlib.error) as exc:
        sys.exit(f"error: {path} is not an MNIST IDX file ({type(exc).__name__}: {exc}); replace it with the original")


def find(folder, kind):
    """The t10k file of `kind` in folder, gzipped or plain."""
    for name in (f"t10k-{FILES[kind]}.gz", f"t10k-{FILES[kind]}"):
        if (folder / name).is_file():
            return folder / name
    sys.exit(
        f"error: {folder} has no t10k-{FILES[kind]}.gz (nor the unzipped file): it needs MNIST's test files "
        f"t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
    )


def write_idx(path, array):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.tobytes())


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--t10k", required=True, help="folder with MNIST's t10k-images-idx3-ubyte.gz and labels")
    parser.add_argument("--data-root", default="data", help="the scripts' --data-root; writes <data-root>/MNIST/raw/")
    parser.add_argument("--train", type=int, default=8000, help="digits of the training file; the rest are held out")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    folder, raw = Path(args.t10k), Path(args.data_root) / "MNIST" / "raw"
    if not folder.is_dir():
        sys.exit(f"error: --t10k {folder} is not a folder; give the folder that holds MNIST's t10k-*-ubyte.gz files")
    images, labels = read_idx(find(folder, "images")), read_idx(find(folder, "labels"))
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        sys.exit(f"error: {folder}: {len(images)} images of {images.shape[1:]}, {len(labels)} labels: not MNIST's")
    if not 0 < args.train < len(images):
        sys.exit(f"error: --train must be between 1 and {len(images) - 1}, got {args.train}")
    if any((raw / f"{split}-{name}.gz").exists() for split in ("train", "t10k") for name in FILES.values()):
        sys.exit(f"error: {raw} already holds MNIST files; remove them first, or choose another --data-root")
    try:
        raw.mkdir(parents=True, exist_ok=True)
        for kind, array in (("images", images), ("labels", labels)):
            write_idx(raw / f"train-{FILES[kind]}.gz", array[: args.train])
            write_idx(raw / f"t10k-{FILES[kind]}.gz", array[args.train :])
    except OSError as exc:
        sys.exit(f"error: cannot write {raw} ({exc.strerror or exc}); choose another --data-root")
    print(
        f"wrote {raw}: a training file of the first {args.train:,} digits (train-*-ubyte.gz) and a test file of the "
        f"last {len(images) - args.train:,} (t10k-*-ubyte.gz); train with --data-root {args.data_root}"
    )


if __name__ == "__main__":
    main()
