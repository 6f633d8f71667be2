#!/usr/bin/env python3
# Copyright 2026 The ripcord Authors.
"""scaling.py OUT_DIR: speed-up over one worker, ripcord and oneTBB side by side.

Reads the JSON that benchmarks/compare.sh writes per worker count
(OUT_DIR/w<N>/<binary>.json, WORKERS="1 2 4 8 16") and prints a markdown
table for fib, skynet, divide and conquer and external submission: per
worker count the median time of each library, its speed-up over the same
library with one worker (or the smallest count run), and the ratio
ripcord/oneTBB, with the CPU time ratio (spinning shows there first when
workers outnumber cores). With python3-matplotlib installed it also draws
OUT_DIR/scaling.svg (one panel per workload).
"""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_table  # noqa: E402  (load(): medians from the JSON)

WORKLOADS = [
    ("fib(30)", "BM_Fib_Ripcord/n:30", "BM_Fib_Tbb/n:30"),
    ("skynet 10^6", "BM_Skynet_Ripcord", "BM_Skynet_Tbb"),
    ("d&c 10^7", "BM_Dnc_Ripcord", "BM_Dnc_Tbb"),
    ("external submission 10^6", "BM_Submit_Ripcord", "BM_Submit_Tbb"),
]


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    runs = {}
    for d in glob.glob(os.path.join(out_dir, "w*")):
        m = re.fullmatch(r"w(\d+)", os.path.basename(d))
        if m and os.path.isdir(d):
            runs[int(m.group(1))] = compare_table.load(d, record_loads=False)
    if not runs:
        print(f"no w<N>/ directories in {out_dir}")
        return 1
    counts = sorted(runs)
    base = counts[0]
    print(f"Speed-up over {base} worker(s) (median times; ratio = "
          "ripcord/oneTBB at the same count; CPU = ratio of CPU time)\n")
    print("| workload | workers | ripcord | oneTBB | ripcord speed-up | "
          "oneTBB speed-up | ratio | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    series = {}
    for label, rip, tbb in WORKLOADS:
        r0 = runs[base].get(rip, {}).get("ms")
        t0 = runs[base].get(tbb, {}).get("ms")
        for n in counts:
            r = runs[n].get(rip, {})
            t = runs[n].get(tbb, {})
            rm, tm = r.get("ms"), t.get("ms")
            if rm is None or tm is None:
                continue
            su_r = r0 / rm if r0 else None
            su_t = t0 / tm if t0 else None
            cpu = (f"{r['cpu_ms'] / t['cpu_ms']:.2f}"
                   if r.get("cpu_ms") and t.get("cpu_ms") else "–")
            series.setdefault(label, []).append((n, su_r, su_t))
            print(f"| {label} | {n} | {compare_table.fmt_ms(rm)} | "
                  f"{compare_table.fmt_ms(tm)} | "
                  f"{'–' if su_r is None else f'{su_r:.2f}'} | "
                  f"{'–' if su_t is None else f'{su_t:.2f}'} | "
                  f"{rm / tm:.2f} | {cpu} |")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("\n(no matplotlib: no scaling.svg)")
        return 0
    fig, axes = plt.subplots(1, len(series), figsize=(4 * len(series), 3.4),
                             squeeze=False)
    for ax, (label, pts) in zip(axes[0], series.items()):
        ns = [p[0] for p in pts]
        ax.plot(ns, [p[1] for p in pts], "o-", label="ripcord")
        ax.plot(ns, [p[2] for p in pts], "s--", label="oneTBB")
        ax.plot(ns, [n / base for n in ns], ":", color="gray", label="ideal")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ns)
        ax.set_xticklabels([str(n) for n in ns])
        ax.set_title(label)
        ax.set_xlabel("workers")
        ax.set_ylabel(f"speed-up over {base}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "scaling.svg")
    fig.savefig(path)
    print(f"\nchart: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
