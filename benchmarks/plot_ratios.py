#!/usr/bin/python3
# Copyright 2026 The ripcord Authors.
"""Draws the ripcord/oneTBB ratio chart of BENCHMARKS.md as an SVG.

Input is either the JSON directory of a compare.sh run (OUT_DIR, the Google
Benchmark files compare_table.py reads) or a small results file such as
benchmarks/results/latest.json (the ratio rows of the newest table):

    python3 benchmarks/plot_ratios.py --from-dir /tmp/bench \\
        --write-json benchmarks/results/latest.json \\
        -o docs/benchmarks-ratios.svg
    python3 benchmarks/plot_ratios.py \\
        --from-json benchmarks/results/latest.json \\
        -o docs/benchmarks-ratios.svg

Only the rows with a oneTBB counterpart doing the same work are drawn (1, 2,
3, 3b, 4, 4b); a bar below 1.00 means ripcord took less time. Needs
matplotlib (Debian: apt-get install python3-matplotlib; run with
/usr/bin/python3).
"""
import argparse
import json
import os
import sys

# (row, label, ripcord benchmark, oneTBB benchmark), as in compare_table.py.
ROWS = (
    ("1", "fib(30)", "BM_Fib_Ripcord/n:30", "BM_Fib_Tbb/n:30"),
    ("2", "skynet 10^6", "BM_Skynet_Ripcord", "BM_Skynet_Tbb"),
    ("3", "external submit\n(vs task_group::run)", "BM_Submit_Ripcord",
     "BM_Submit_Tbb"),
    ("3b", "external submit\n(vs arena.enqueue)", "BM_Submit_Ripcord",
     "BM_Submit_TbbEnqueue"),
    ("4", "divide & conquer\n(ParallelFor)", "BM_Dnc_Ripcord", "BM_Dnc_Tbb"),
    ("4b", "divide & conquer\n(nested groups)", "BM_Dnc_RipcordNested",
     "BM_Dnc_TbbSimple"),
)


def rows_from_dir(directory):
    """The ratio rows of a compare.sh output directory."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import compare_table  # pylint: disable=import-outside-toplevel
    medians = compare_table.load(directory, record_loads=False)
    out = []
    for row, label, rip, tbb in ROWS:
        a, b = medians.get(rip, {}), medians.get(tbb, {})
        if "ms" not in a or "ms" not in b:
            print(f"warning: row {row}: {rip} or {tbb} missing",
                  file=sys.stderr)
            continue
        entry = {"row": row, "label": label, "ripcord_ms": a["ms"],
                 "tbb_ms": b["ms"], "ratio": a["ms"] / b["ms"]}
        if a.get("cpu_ms") and b.get("cpu_ms"):
            entry.update(ripcord_cpu_ms=a["cpu_ms"], tbb_cpu_ms=b["cpu_ms"],
                         cpu_ratio=a["cpu_ms"] / b["cpu_ms"])
        if "cv" in a and "cv" in b:
            entry.update(cv_ripcord=a["cv"], cv_tbb=b["cv"])
        out.append(entry)
    return {"rows": out}


def ratio(entry, key_a, key_b):
    a, b = entry.get(key_a), entry.get(key_b)
    return a / b if a is not None and b else None


def plot(results, path, title):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "ripcord"  # stable ids in the SVG
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    rows = results["rows"]
    labels = [f"{r['row']}. {r['label']}" for r in rows]
    wall = [r.get("ratio") or ratio(r, "ripcord_ms", "tbb_ms") for r in rows]
    cpu = [r.get("cpu_ratio") or ratio(r, "ripcord_cpu_ms", "tbb_cpu_ms")
           for r in rows]

    fig, ax = plt.subplots(figsize=(8, 0.62 * len(rows) + 1.9))
    height = 0.38
    ys = list(range(len(rows)))[::-1]
    ax.barh([y + height / 2 for y in ys], wall, height, color="#3b6ea8",
            label="wall time")
    ax.barh([y - height / 2 for y in ys], [c or 0 for c in cpu], height,
            color="#9dbbdc", label="CPU time")
    for y, w, c in zip(ys, wall, cpu):
        ax.text(w + 0.01, y + height / 2, f"{w:.2f}", va="center", fontsize=9)
        if c:
            ax.text(c + 0.01, y - height / 2, f"{c:.2f}", va="center",
                    fontsize=8, color="#555555")
    ax.axvline(1.0, color="#c0392b", linewidth=1.2, linestyle="--")
    ax.text(1.0, len(rows) - 0.45, " parity (1.00)", color="#c0392b",
            fontsize=8, va="bottom")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=9)
    ax.set_xlim(0, max(1.2, max(wall) + 0.15))
    ax.set_ylim(-0.7, len(rows) - 0.2)
    ax.set_xlabel("ripcord / oneTBB (median time; below 1.00: ripcord "
                  "faster)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
              fontsize=8, frameon=False)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None} if path.endswith(".svg")
                else None)
    print(f"wrote {path}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-dir", help="a compare.sh OUT_DIR")
    src.add_argument("--from-json", help="a results file (latest.json)")
    parser.add_argument("--write-json",
                        help="also write the rows read to this file")
    parser.add_argument("-o", "--output", default="docs/benchmarks-ratios.svg")
    args = parser.parse_args()

    if args.from_dir:
        results = {}
        table = os.path.join(args.from_dir, "table.md")
        if os.path.exists(table):  # compare.sh's header: machine, commit.
            with open(table) as f:
                head = [next(f, "").strip() for _ in range(2)]
            commit, _, date = head[1].removeprefix("Commit: ").partition(
                ", date: ")
            results.update(date=date, commit=commit,
                           machine=head[0].removeprefix("Machine: "))
        results.update(rows_from_dir(args.from_dir))
    else:
        with open(args.from_json) as f:
            results = json.load(f)
    if not results["rows"]:
        sys.exit("no ratio rows found")
    if args.write_json:
        with open(args.write_json, "w") as f:
            json.dump(results, f, indent=1, ensure_ascii=False)
            f.write("\n")
    title = "ripcord vs oneTBB, 2 workers"
    if results.get("commit") or results.get("date"):
        title += f" ({results.get('commit', '?')}, {results.get('date', '?')})"
    plot(results, args.output, title)


if __name__ == "__main__":
    main()
