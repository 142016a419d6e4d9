#!/usr/bin/env python3
"""Python-call overhead of the convkit package against `convkit bench`.

For every forward case of a suite (default: bench/suite.json), times
  - `convkit bench SUITE --cases NAME --threads T --json`: the median of `ConvPlan::execute` into
    a preallocated output and workspace (no Python);
  - `plan(x)` of a `convkit.Conv` plan made once: the Python call, a new NumPy output, the run;
  - `convkit.conv(x, w)`: the one-shot call, which also plans (packs the weights) every time;
and checks that the Python result equals `convkit conv` on the same .npy files bit for bit.
Prints a Markdown table; the overhead is median(Python) / median(bench) - 1. The machine may be
shared: each case is measured in --rounds alternating rounds (bench, plan(x), conv()) and the
lowest median of each is kept, so a burst of load elsewhere does not land on one side only.

Usage: python3 bench/python_overhead.py [--suite FILE] [--cli target/release/convkit]
       [--threads T] [--min-time S] [--cases a,b]
Needs the package installed (pip install ./crates/convkit-py) and the release binary built.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import convkit

ROOT = pathlib.Path(__file__).resolve().parents[1]


def opts_of(c):
    j = lambda v: ",".join(str(int(x)) for x in v)
    return dict(stride=j(c.get("stride", [1])), padding=j(c.get("padding", [0])),
                dilation=j(c.get("dilation", [1])), groups=int(c.get("groups", 1)))


def time_calls(f, min_time, min_iters=5):
    f()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default=str(ROOT / "bench" / "suite.json"))
    ap.add_argument("--cli", default=str(ROOT / "target" / "release" / "convkit"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--cases", default="")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    suite = json.load(open(a.suite))
    only = set(filter(None, a.cases.split(",")))
    cases = [c for c in suite["cases"] if c.get("pass", "forward") == "forward" and (not only or c["name"] in only)]
    rng = np.random.default_rng(0)
    print(f"threads {a.threads}, min time {a.min_time} s per measurement, lowest median of {a.rounds} rounds; "
          f"CPU: {cpu_name()}\n")
    print("| case | implementation | bench median ms | plan(x) ms | overhead | conv() ms | overhead | same bits as CLI |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    worst = None
    for c in cases:
        o = opts_of(c)
        x = rng.standard_normal(c["input"]).astype(np.float32)
        w = rng.standard_normal(c["weight"]).astype(np.float32)
        plan = convkit.Conv(w, input_shape=x.shape, threads=a.threads, **o)
        bench_ms = plan_ms = conv_ms = float("inf")
        for _ in range(a.rounds):
            r = subprocess.run([a.cli, "bench", a.suite, "--cases", c["name"], "--threads", str(a.threads), "--json",
                                "--min-time", str(a.min_time)], capture_output=True, text=True, check=True)
            rows = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
            row = next(r for r in rows if r.get("case") == c["name"])
            bench_ms = min(bench_ms, row["median_ms"])
            plan_ms = min(plan_ms, time_calls(lambda: plan(x), a.min_time)[0] * 1e3)
            conv_ms = min(conv_ms, time_calls(lambda: convkit.conv(x, w, threads=a.threads, **o), a.min_time)[0] * 1e3)
        y = plan(x)
        with tempfile.TemporaryDirectory() as d:
            np.save(f"{d}/x.npy", x)
            np.save(f"{d}/w.npy", w)
            subprocess.run([a.cli, "conv", f"{d}/x.npy", f"{d}/w.npy", "-o", f"{d}/y.npy", "--stride", o["stride"],
                            "--padding", o["padding"], "--dilation", o["dilation"], "--groups", str(o["groups"])],
                           check=True)
            same = np.array_equal(np.load(f"{d}/y.npy"), y) and np.array_equal(convkit.conv(x, w, **o), y)
        ov_plan = plan_ms / bench_ms - 1
        ov_conv = conv_ms / bench_ms - 1
        if bench_ms >= 1.0:
            worst = max(worst or ov_plan, ov_plan)
        flag = "" if bench_ms >= 1.0 else " (<1 ms)"
        print(f"| {c['name']}{flag} | {row['implementation']} | {bench_ms:.3f} | {plan_ms:.3f} | {ov_plan:+.1%} | "
              f"{conv_ms:.3f} | {ov_conv:+.1%} | {'yes' if same else 'NO'} |", flush=True)
        if not same:
            sys.exit("result differs from the CLI's")
    if worst is not None:
        print(f"\nlargest plan(x) overhead over cases of at least 1 ms: {worst:+.1%}")


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
