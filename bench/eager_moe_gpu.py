"""Eager PyTorch reference for the GPU benchmark: the reference MoE classifier written the way a PyTorch
user would write it (a Python loop over experts with index selection, the same top-2 gate with
renormalised weights, the same load-balancing loss, Adam), trained one epoch on the same data.

Usage: python3 bench/eager_moe_gpu.py --data <file.f32> --labels <file.u8> --batch 64 --batch 1024 --reps 3
Prints one JSON object: samples/s per batch size (median of the timed epochs after a warm-up epoch).
"""
import argparse
import json
import statistics
import time

import os
import sys

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts'))
from pytorch_reference import Expert  # noqa: E402  (Linear -> ReLU -> Linear, the file format's names)


class MoELayer(nn.Module):
    def __init__(self, hidden=256, expert_hidden=128, num_experts=8, top_k=2):
        super().__init__()
        self.gate = nn.Linear(hidden, num_experts)
        self.experts = nn.ModuleList([Expert(hidden, expert_hidden) for _ in range(num_experts)])
        self.top_k = top_k

    def forward(self, x):
        probs = self.gate(x).softmax(dim=-1)
        weights, idx = probs.topk(self.top_k, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        y = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            token, slot = (idx == e).nonzero(as_tuple=True)
            if token.numel() == 0:
                continue
            y.index_add_(0, token, weights[token, slot].unsqueeze(1) * expert(x[token]))
        T, E = x.shape[0], len(self.experts)
        counts = torch.bincount(idx.flatten(), minlength=E).to(x.dtype)
        aux = E * ((counts / T) * probs.mean(dim=0)).sum()
        return y, aux


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.input = nn.Linear(784, 256)
        self.moe = MoELayer()
        self.output = nn.Linear(256, 10)

    def forward(self, x):
        y, aux = self.moe(F.relu(self.input(x)))
        return self.output(y), aux


def epoch(model, opt, x, y, batch, generator):
    order = torch.randperm(x.shape[0], device=x.device, generator=generator)
    running = torch.zeros((), device=x.device)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for begin in range(0, x.shape[0], batch):
        idx = order[begin:begin + batch]
        logits, aux = model(x[idx])
        loss = F.cross_entropy(logits, y[idx]) + 0.1 * aux
        opt.zero_grad()
        loss.backward()
        opt.step()
        running += loss.detach()
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
        model = Classifier().to(device)
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
