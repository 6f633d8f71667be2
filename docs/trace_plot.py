#!/usr/bin/env python3
# Copyright 2026 The ripcord Authors.
"""trace_plot.py: draws a ripcord flight-recorder trace (Trace Event JSON)
as one lane per task label and group, the way a timeline viewer does, into a
PNG. Used for docs/shutdown_trace.png:

  bazel run -c opt //examples:shutdown_demo -- --seconds=3 \
      --trace=/tmp/demo.json &  sleep 1; kill -INT %1
  python3 docs/trace_plot.py /tmp/demo.json docs/shutdown_trace.png

Each "X" event (a task run, a coroutine resumption, a blocking call) is a
bar on its lane; a thin line spans each lane from its first to its last
event; "i" events are vertical lines (signals red, group stops grey).
Needs python3-matplotlib (Debian).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src) as f:
        trace = json.load(f)
    events = trace["traceEvents"]
    runs = [e for e in events if e.get("ph") == "X"]
    instants = [e for e in events if e.get("ph") == "i"]
    if not runs:
        sys.exit("no X events in " + src)
    t0 = min(e["ts"] for e in runs + instants)
    # Lanes: (group, label) for tasks; the blocking pool's calls apart.
    lanes = {}
    for e in runs:
        group = e.get("args", {}).get("group", "")
        key = (group, e["name"]) if e.get("cat") == "task" else (
            "blocking pool", e["name"])
        lanes.setdefault(key, []).append(e)
    order = sorted(lanes, key=lambda k: (k[0] != "shielded", k[0], k[1]))
    colors = {"shielded": "#2e7d32", "unshielded": "#c62828"}
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.55 * len(order)), dpi=110)
    for y, key in enumerate(order):
        color = colors.get(key[0], "#1565c0")
        evs = lanes[key]
        first = min(e["ts"] for e in evs) - t0
        last = max(e["ts"] + e.get("dur", 0) for e in evs) - t0
        ax.hlines(y, first / 1e6, last / 1e6, color=color, lw=1, alpha=0.5)
        ax.broken_barh(
            [((e["ts"] - t0) / 1e6, max(e.get("dur", 0), 2000) / 1e6)
             for e in evs], (y - 0.3, 0.6), color=color)
        ax.text(last / 1e6 + 0.03, y,
                f"{len(evs)} run{'' if len(evs) == 1 else 's'}", va="center",
                fontsize=8, color=color)
    for e in instants:
        x = (e["ts"] - t0) / 1e6
        if e.get("cat") == "signal":
            ax.axvline(x, color="red", lw=2)
            ax.text(x, len(order) - 0.4, " " + e["name"], color="red",
                    fontsize=10, va="bottom")
        elif e.get("cat") == "stop":
            ax.axvline(x, color="grey", lw=1, ls="--")
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([f"{g}: {label}" for g, label in order], fontsize=9)
    ax.set_ylim(-0.8, len(order) - 0.1)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first event")
    ax.set_title("shutdown_demo: one SIGINT (shielded tasks run on, "
                 "unshielded ones are cut)", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: trace_plot.py TRACE.json OUT.png")
    main(sys.argv[1], sys.argv[2])
