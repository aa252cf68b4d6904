"""Eager PyTorch reference for the GPU benchmark: the reference MoE classifier written the way a PyTorch
user would write it (a Python loop over experts with index selection, the same top-2 gate with
renormalised weights, the same load-balancing loss, Adam), trained one epoch on the same data.

Usage: python3 bench/eager_moe_gpu.py --data <file.f32> --labels <file.u8> --batch 64 --batch 1024 --reps 3
Prints one JSON object: samples/s per batch size (median of the timed epochs after a warm-up epoch).
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eager_models import make, train_epoch  # noqa: E402


def epoch(model, opt, x, y, batch, generator):
    torch.cuda.synchronize()
    started = time.perf_counter()
    running = train_epoch(model, opt, x, y, batch, generator)
    torch.cuda.synchronize()
    return time.perf_counter() - started, running.item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--data', required=True)
    p.add_argument('--labels', required=True)
    p.add_argument('--batch', type=int, action='append', required=True)
    p.add_argument('--reps', type=int, default=3)
    a = p.parse_args()
    device = torch.device('cuda')
    x = torch.from_numpy(np.fromfile(a.data, dtype=np.float32).reshape(-1, 784)).to(device)
    y = torch.from_numpy(np.fromfile(a.labels, dtype=np.uint8).astype(np.int64)).to(device)
    out = {'torch': torch.__version__, 'cuda': torch.version.cuda, 'device': torch.cuda.get_device_name(0),
           'samples': x.shape[0], 'results': []}
    for batch in a.batch:
        torch.manual_seed(0)
        model = make('moe').to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator(device=device)
        gen.manual_seed(0)
        epoch(model, opt, x, y, batch, gen)  # warm-up
        times = [epoch(model, opt, x, y, batch, gen)[0] for _ in range(a.reps)]
        median = statistics.median(times)
        out['results'].append({'batch': batch, 'seconds': times, 'median_seconds': median,
                               'samples_per_second': x.shape[0] / median})
    print(json.dumps(out))


if __name__ == '__main__':
    main()
