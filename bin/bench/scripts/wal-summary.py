#!/usr/bin/env python3
"""Summarizes `mempulse-bench wal` JSON lines: medians per configuration and same-run ratios.

Usage: python3 bin/bench/scripts/wal-summary.py RESULTS.jsonl [RESULTS2.jsonl ...]

A configuration is (impl[preallocate], batch, sync, records, size). The last column of the
medians table is the spread of append rates, to judge how noisy the machine was. Lines with an `error` field
(modes a peer cannot do) are listed once and left out of the figures. Ratios are taken inside
one repetition (`rep`, added by wal-matrix.sh) between mempulse and each peer on the same
(batch, sync, records, size), then the median over repetitions is printed: for rates (`*_per_s`)
a ratio above 1 means mempulse is faster; for times and latencies, below 1 means mempulse is
faster.
"""
import json
import statistics
import sys
from collections import defaultdict

METRICS = [
    ("append_rec_per_s", "append rec/s", "{:,.0f}"),
    ("append_MB_per_s", "append MB/s", "{:,.1f}"),
    ("batch_lat_p50_us", "p50 us", "{:,.1f}"),
    ("batch_lat_p99_us", "p99 us", "{:,.1f}"),
    ("scan_rec_per_s", "scan rec/s", "{:,.0f}"),
    ("reopen_s", "reopen s", "{:.4f}"),
]
PEERS = ["raft-engine", "okaywal"]


def label(run):
    pre = run.get("preallocate")
    return f"{run['impl']}[{pre}]" if pre else run["impl"]


def shape(run):
    return (run["batch"], run["sync"], run["records"], run["size"])


def load(paths):
    runs, errors = [], {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for number, text in enumerate(f, 1):
                text = text.strip()
                if not text:
                    continue
                try:
                    run = json.loads(text)
                except json.JSONDecodeError as e:
                    print(f"{path}:{number}: skipped, not JSON ({e})", file=sys.stderr)
                    continue
                if "error" in run:
                    errors[(label(run), run["sync"])] = run["error"]
                else:
                    runs.append(run)
    return runs, errors


def print_medians(runs):
    groups = defaultdict(list)
    for run in runs:
        groups[(shape(run), label(run))].append(run)
    header = ["batch", "sync", "records", "impl", "n"] + [name for _, name, _ in METRICS]
    header.append("append rec/s min..max")
    rows = []
    for (shp, lab), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        batch, sync, records, _size = shp
        row = [str(batch), sync, f"{records:,}", lab, str(len(group))]
        for key, _, fmt in METRICS:
            row.append(fmt.format(statistics.median(r[key] for r in group)))
        rates = [r["append_rec_per_s"] for r in group]
        row.append(f"{min(rates):,.0f}..{max(rates):,.0f}")
        rows.append(row)
    print_table("Medians per configuration", header, rows)


def print_ratios(runs):
    # (shape, rep) -> label -> run; a label seen twice in one rep keeps its last run.
    by_rep = defaultdict(dict)
    for run in runs:
        by_rep[(shape(run), run.get("rep"))][label(run)] = run
    ratios = defaultdict(list)  # (shape, mempulse label, peer) -> [per-rep ratio dicts]
    for (shp, _rep), labs in by_rep.items():
        for lab, run in labs.items():
            if not lab.startswith("mempulse"):
                continue
            for peer in PEERS:
                other = labs.get(peer)
                if other is None:
                    continue
                ratios[(shp, lab, peer)].append(
                    {key: run[key] / other[key] if other[key] else float("nan") for key, _, _ in METRICS}
                )
    header = ["batch", "sync", "records", "ratio", "n"] + [name for _, name, _ in METRICS]
    rows = []
    for (shp, lab, peer), group in sorted(ratios.items()):
        batch, sync, records, _size = shp
        row = [str(batch), sync, f"{records:,}", f"{lab}/{peer}", str(len(group))]
        for key, _, _ in METRICS:
            row.append(f"{statistics.median(r[key] for r in group):.2f}x")
        rows.append(row)
    print_table("Same-run ratios (median over reps; rates >1 and times <1 favour mempulse)", header, rows)


def print_table(title, header, rows):
    print(title)
    if not rows:
        print("  (none)\n")
        return
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    for row in [header] + rows:
        print("  " + "  ".join(str(c).rjust(w) for c, w in zip(row, widths)))
    print()


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 1
    runs, errors = load(sys.argv[1:])
    scaled = sorted({(r["batch"], r["records"]) for r in runs if r["sync"] == "always" and r["batch"] == 1})
    for batch, records in scaled:
        print(f"note: --sync always --batch {batch} ran {records:,} records (scaled down: one fsync per record)")
    for (lab, sync), reason in sorted(errors.items()):
        print(f"unsupported: {lab} --sync {sync}: {reason}")
    if scaled or errors:
        print()
    print_medians(runs)
    print_ratios(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
