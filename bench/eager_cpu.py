"""Eager PyTorch side of the CPU benchmark (bench/cpu.mjs): trains the models of bench/eager_models.py on the
first N MNIST training images and times evaluation of the 10,000 test images, at one thread count.

Usage: /usr/bin/python3 bench/eager_cpu.py --threads 1 --epochs 3 --reps 3 [--limit 5000]
Prints one JSON object: training samples/s per model (median over reps, after a warm-up epoch) and the
evaluation time (median).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, '..', 'scripts'))
from eager_models import make, train_epoch  # noqa: E402
from pytorch_reference_experiment import load  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--threads', type=int, required=True)
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--eval-reps', type=int, default=5)
    p.add_argument('--limit', type=int, default=5000)
    p.add_argument('--batch', type=int, default=64)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    (x, y), (tx, ty) = load('train', a.limit), load('test')
    out = {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'train': {}, 'eval_seconds': {}}
    for kind in ('moe', 'dense', 'dense256'):
        torch.manual_seed(0)
        model = make(kind)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator()
        gen.manual_seed(0)
        train_epoch(model, opt, x, y, a.batch, gen)  # warm-up
        rates = []
        for _ in range(a.reps):
            started = time.perf_counter()
            for _ in range(a.epochs):
                train_epoch(model, opt, x, y, a.batch, gen)
            rates.append(a.epochs * x.shape[0] / (time.perf_counter() - started))
        out['train'][kind] = {'samples_per_second': statistics.median(rates), 'runs': rates}
        model.eval()
        times = []
        with torch.no_grad():
            for rep in range(a.eval_reps + 1):  # the first is a warm-up, as in bench/cpu.mjs
                started = time.perf_counter()
                correct = 0
                for b in range(0, tx.shape[0], 1000):
                    correct += int((model(tx[b:b + 1000])[0].argmax(1) == ty[b:b + 1000]).sum())
                if rep > 0:
                    times.append(time.perf_counter() - started)
        out['eval_seconds'][kind] = {'median': statistics.median(times), 'runs': times}
    print(json.dumps(out))


if __name__ == '__main__':
    main()
