#!/usr/bin/env python3
"""Pools the latency of several redis-benchmark runs into one distribution.

redis-benchmark (7.x, without --csv) prints, per run, its latency
histogram as lines of the form

    99.219% <= 2.103 milliseconds (cumulative count 19844)

under "Latency by percentile distribution:". Each line is a point of the
run's cumulative distribution: COUNT requests took at most MS. The runs'
points are summed as step functions, so the pooled percentiles are those of
every request of every run together, the same statistic whether a phase
held one run or twenty (the worst run's p99, also printed, grows with the
number of runs and is no fair comparison between phases of different
lengths).

Usage: latency.py RUN_OUTPUT...
Prints one line: requests=N runs=K ops=PER_S p50=MS p99=MS p999=MS
worst_run_p99=MS run_p99s=MS,MS,... (ops: all requests over the runs' summed
durations; run_p99s: each run's own p99, in the order given)
"""

import re
import sys

DONE = re.compile(r"^\s*(\d+) requests completed in ([0-9.]+) seconds")
POINT = re.compile(r"^\s*[0-9.]+% <= ([0-9.]+) milliseconds \(cumulative count (\d+)\)")


def run_points(path):
    """The (ms, cumulative count) points of one run's percentile table, and
    the run's duration in seconds."""
    points, inside, seconds = [], False, 0.0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = DONE.match(line)
            if m:
                seconds = float(m.group(2))
            if line.startswith("Latency by percentile distribution"):
                inside = True
                continue
            if inside:
                m = POINT.match(line)
                if m:
                    points.append((float(m.group(1)), int(m.group(2))))
                elif points:
                    break
    return points, seconds


def at_most(points, ms):
    """Requests of one run that took at most `ms` (a lower bound between points)."""
    count = 0
    for x, c in points:
        if x <= ms:
            count = c
        else:
            break
    return count


def percentile(runs, q):
    total = sum(p[-1][1] for p in runs)
    for ms in sorted({x for p in runs for x, _ in p}):
        if sum(at_most(p, ms) for p in runs) >= q * total:
            return ms
    return float("nan")


def main(paths):
    read = [r for r in (run_points(path) for path in paths) if r[0]]
    runs = [p for p, _ in read]
    if not runs:
        print("requests=0 runs=0 ops=nan p50=nan p99=nan p999=nan worst_run_p99=nan run_p99s=")
        return
    requests = sum(p[-1][1] for p in runs)
    seconds = sum(s for _, s in read)
    ops = requests / seconds if seconds > 0 else float("nan")
    each = [percentile([p], 0.99) for p in runs]
    print(
        f"requests={requests} runs={len(runs)} ops={ops:.0f} "
        f"p50={percentile(runs, 0.5):.3f} p99={percentile(runs, 0.99):.3f} "
        f"p999={percentile(runs, 0.999):.3f} worst_run_p99={max(each):.3f} "
        f"run_p99s={','.join(f'{x:.1f}' for x in each)}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
