"""The results table from benchmarks/results.sh's logs: each row's measures, mean +- std over its seeds.

    python benchmarks/results_table.py runs/results                 # markdown: the mean table, then every seed
    python benchmarks/results_table.py runs/results --csv seeds.csv # also every run's measures, one line each

Reads OUT/<row>-seed<S>.train.log and .score.log, as results.sh writes them: the wall time, the steps,
the classifier IS and FID of the average of G (G_ema) and of G itself, the real held-out images' scores,
and each script's own measure (gan_maxout's Parzen estimate, infogan's categorical accuracy, bigan's
probes at every step they were printed, cyclegan's cycle errors and digits kept). The std is the
sample standard deviation over the seeds (n - 1), shown where a row has two seeds or more.
"""

import argparse
import csv
import re
import statistics
import sys
from pathlib import Path

NUMBER = r"([-\d.]+)"
SCORE_BLOCK = re.compile(
    r"^(?P<path>\S+) \(step (?P<step>\d+)\), (?P<what>.*?) vs .*?:\n\s+classifier IS "
    + NUMBER
    + r" \(real images: "
    + NUMBER
    + r"\), classifier FID "
    + NUMBER
    + r", classes covered (\d+)/10 .*?KL\(image classes \|\| real classes\) "
    + NUMBER,
    re.M,
)


def own_measures(text):
    """The script's own measures in a training log, by name."""
    found = {}
    if m := re.findall(r"Parzen log-likelihood .*?: " + NUMBER + r" \+- " + NUMBER + " nats", text):
        found["parzen"], found["parzen_stderr"] = map(float, m[-1])
    if m := re.findall(r"categorical accuracy of Q .*?: " + NUMBER + "%", text):
        found["q_accuracy"] = float(m[-1])
    for step, line in re.findall(r"probes after (\d+) steps:.*\n\s+BiGAN E\s+(.*)", text):
        values = dict(re.findall(r"(code linear|code 1-NN|hidden linear|hidden 1-NN) " + NUMBER + "%", line))
        for name, value in values.items():
            found[f"probe_{step}_{name.replace(' ', '_')}"] = float(value)
    if m := re.findall(r"random E\s+(.*)", text):
        for name, value in re.findall(r"(code linear|code 1-NN|hidden linear|hidden 1-NN) " + NUMBER + "%", m[-1]):
            found[f"random_{name.replace(' ', '_')}"] = float(value)
    if m := re.findall(r"A->B->A " + NUMBER + r", B->A->B " + NUMBER, text):
        found["cycle_a"], found["cycle_b"] = map(float, m[-1])
    if m := re.findall(r"digit kept .*?: G\(a\) " + NUMBER + r"%, F\(b\) " + NUMBER + "%", text):
        found["kept_g"], found["kept_f"] = map(float, m[-1])
    return found


def measures(train_log, score_log):
    """Every measure of one run: wall time and steps from the training log (summed over a resumed
    run's parts), its own measures, and the scores."""
    text = train_log.read_text() if train_log.exists() else ""
    found = {"seconds": sum(int(s) for s in re.findall(r"trained in (\d+) s", text))}
    if m := re.findall(r"done: ([\d,]+)", text):
        found["steps"] = int(m[-1].replace(",", ""))
    found |= own_measures(text)
    for block in SCORE_BLOCK.finditer(score_log.read_text() if score_log.exists() else ""):
        what = block["what"]
        prefix = (
            "ema_" if "G_ema" in what else
            "real_" if "samples" not in what and "translated" not in what and "real held-out" not in what else
            "a2b_real_" if what.startswith("a2b") and "real" in what else
            "b2a_real_" if what.startswith("b2a") and "real" in what else
            "a2b_" if what.startswith("a2b") else "b2a_" if what.startswith("b2a") else "g_"
        )  # fmt: skip
        values = [float(block[i]) for i in (4, 6, 7, 8)]
        found |= dict(zip([prefix + k for k in ("is", "fid", "classes", "kl")], values))
    return found


def collect(out):
    """{row: {seed: measures}} for every run folder's logs in out."""
    rows = {}
    for log in sorted(out.glob("*-seed*.train.log")):
        name, seed = re.fullmatch(r"(.*)-seed(\d+)\.train\.log", log.name).groups()
        score_log = log.with_name(f"{name}-seed{seed}.score.log")
        if score_log.exists():  # a run still training has none yet
            rows.setdefault(name, {})[int(seed)] = measures(log, score_log)
    return rows


def mean_std(values, digits):
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} +- {statistics.stdev(values):.{digits}f}"


DIGITS = {"is": 2, "fid": 1, "kl": 4, "parzen": 1, "accuracy": 1, "cycle": 3, "kept": 1, "probe": 1, "random": 1}


def digits_of(key):
    return next((d for part, d in DIGITS.items() if part in key), 2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("out", help="results.sh's OUT folder (default there: runs/results)")
    parser.add_argument("--csv", help="also write every run's measures to this CSV")
    args = parser.parse_args(argv)
    rows = collect(Path(args.out))
    if not rows:
        sys.exit(f"error: no <row>-seed<S>.train.log in {args.out}; run benchmarks/results.sh first")
    print("| row | seeds | steps | wall time, min | measure: mean +- std |\n| --- | --- | --- | --- | --- |")
    for name, seeds in rows.items():
        keys = sorted({k for m in seeds.values() for k in m} - {"seconds", "steps"})
        cells = []
        for key in keys:
            values = [m[key] for m in seeds.values() if key in m]
            cells.append(f"{key} {mean_std(values, digits_of(key))}")
        minutes = mean_std([m["seconds"] / 60 for m in seeds.values()], 1)
        steps = ", ".join(sorted({str(m.get("steps", "?")) for m in seeds.values()}))
        print(f"| {name} | {', '.join(map(str, seeds))} | {steps} | {minutes} | {'; '.join(cells)} |")
    if args.csv:
        keys = sorted({k for seeds in rows.values() for m in seeds.values() for k in m})
        with open(args.csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["row", "seed", *keys])
            for name, seeds in rows.items():
                for seed, m in seeds.items():
                    writer.writerow([name, seed, *(m.get(k, "") for k in keys)])
        print(f"every run's measures: {args.csv}")


if __name__ == "__main__":
    main()
