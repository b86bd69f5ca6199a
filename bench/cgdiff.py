#!/usr/bin/env python3
"""Where two callgrind runs differ, per function: exclusive instructions per request.

    python3 bench/cgdiff.py BASE_PREFIX OTHER_PREFIX [N]

Each prefix names the files `bench/work.py --callgrind --keep PREFIX` wrote (one per thread
or part; they are summed). Every function's exclusive count in OTHER minus BASE, divided by
N (the requests of the burst, default 300), largest first, and the total. With a build of
the `profiling` profile (release with line tables) functions are split by source file, which
shows where inlined code came from.

Totals of two runs move by a few hundred instructions per request with glibc's allocator
state (`_int_malloc`, `malloc_consolidate`, `realloc`) though the code is the same; such
lines show up here on their own and can be told apart from a change's code.
"""
import collections
import glob
import re
import subprocess
import sys

LINE = re.compile(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)(?:\s+\[[^\]]*\])?$")


def exclusive(path):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", path],
                         capture_output=True, text=True, check=True).stdout
    counts = collections.Counter()
    for line in out.splitlines():
        m = LINE.match(line)
        if not m or m.group(2).startswith("PROGRAM TOTALS") or m.group(2) == "file:function":
            continue
        counts[m.group(2)] += int(m.group(1).replace(",", ""))
    return counts


def run(prefix):
    files = sorted(glob.glob(prefix + "*"))
    if not files:
        raise SystemExit(f"no callgrind files match {prefix}*")
    counts = collections.Counter()
    for f in files:
        counts.update(exclusive(f))
    return counts


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    base, other = run(sys.argv[1]), run(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) == 4 else 300
    rows = sorted((((other[k] - base[k]) / n, k) for k in set(base) | set(other)), reverse=True)
    print(f"total {sum(r[0] for r in rows):+.0f} instructions per request")
    for per_request, name in rows:
        if abs(per_request) >= 5:
            print(f"{per_request:+8.0f}  {name[:160]}")


if __name__ == "__main__":
    main()
