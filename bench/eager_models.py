"""Eager PyTorch versions of the benchmark models, written the way a PyTorch user would write them: the
reference MoE classifier (a Python loop over experts with index selection, the top-k gate with
renormalised weights, the load-balancing loss E * sum_i f_i P_i computed from the same gate pass) and the
dense baselines. Shared by bench/eager_moe_gpu.py and bench/eager_cpu.py."""
import os
import sys

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


class MoEClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.input = nn.Linear(784, 256)
        self.moe = MoELayer()
        self.output = nn.Linear(256, 10)

    def forward(self, x):
        y, aux = self.moe(F.relu(self.input(x)))
        return self.output(y), aux


class DenseClassifier(nn.Module):
    """784 -> 256 -> one FFN 256 -> ffn_hidden -> 256 -> 10 (ffn_hidden 128: the reference dense model;
    256: the same active parameters as the top-2 MoE)."""

    def __init__(self, ffn_hidden=128):
        super().__init__()
        self.input = nn.Linear(784, 256)
        self.ffn = Expert(256, ffn_hidden)
        self.output = nn.Linear(256, 10)

    def forward(self, x):
        return self.output(self.ffn(F.relu(self.input(x)))), None


def make(kind):
    return {'moe': MoEClassifier, 'dense': DenseClassifier, 'dense256': lambda: DenseClassifier(256)}[kind]()


def train_epoch(model, opt, x, y, batch, generator, aux_weight=0.1):
    """One epoch; returns the loss summed on the device (read once, by the caller)."""
    order = torch.randperm(x.shape[0], device=x.device, generator=generator)
    running = torch.zeros((), device=x.device)
    for begin in range(0, x.shape[0], batch):
        idx = order[begin:begin + batch]
        logits, aux = model(x[idx])
        loss = F.cross_entropy(logits, y[idx])
        if aux is not None:
            loss = loss + aux_weight * aux
        opt.zero_grad()
        loss.backward()
        opt.step()
        running += loss.detach()
    return running
