"""Turns `ncu --metrics gpu__time_duration.sum --print-summary per-kernel` output into a table of where a
step's GPU time goes: per kernel, invocations per step, mean duration, and share of the step.
Usage: python3 bench/ncu_summary.py <ncu output> <steps>"""
import re
import sys

text = open(sys.argv[1]).read()
steps = int(sys.argv[2])
rows = []
header = re.compile(r"^  (\S.*?) \(\d+, \d+, \d+\)x\(\d+, \d+, \d+\), Device \d+, CC [\d.]+, Invocations (\d+)$")
metric = re.compile(r"^\s+gpu__time_duration.sum\s+(\S+)\s+[\d.,]+\s+[\d.,]+\s+([\d.,]+)$")
current = None
for line in text.splitlines():
    h = header.match(line)
    if h:
        current = (h.group(1), int(h.group(2)))
        continue
    m = metric.match(line)
    if m and current:
        name, calls = current
        unit, avg = m.group(1), float(m.group(2).replace(",", ""))
        us = avg * {"ns": 1e-3, "nsecond": 1e-3, "us": 1, "usecond": 1, "ms": 1e3, "msecond": 1e3}.get(unit, 1)
        short = re.sub(r"\(.*", "", name).replace("moe::<unnamed>::", "moe: ").replace("void at::native::", "")
        rows.append((short[:90], calls, us, calls * us))
        current = None
total = sum(r[3] for r in rows)
rows.sort(key=lambda r: -r[3])
print(f"| kernel | calls/step | mean (µs) | µs/step | share |")
print("| --- | ---: | ---: | ---: | ---: |")
for name, calls, us, tot in rows:
    print(f"| `{name}` | {calls / steps:.1f} | {us:.1f} | {tot / steps:.1f} | {100 * tot / total:.1f}% |")
print(f"\nKernels: {len(rows)} distinct; summed GPU time {total / steps:.0f} µs per step (kernels serialised by the profiler; includes the first, warm-up calls).")
