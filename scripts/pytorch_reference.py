#!/usr/bin/env python3
"""Eager PyTorch reference of torch-moe's models, used by the tests as an independent implementation.

Defines the PyTorch modules whose parameter names torch-moe's model files use, reads a model file with a
plain safetensors parser (the format's spec: u64 little-endian header length, JSON header, raw bytes),
loads it with load_state_dict(strict=True), and writes the class probabilities of the given inputs.

usage: pytorch_reference.py MODEL.safetensors INPUTS.f32 OUTPUT.f32
  INPUTS.f32: n * inputSize float32 values; OUTPUT.f32: n * numClasses float32 probabilities.
Needs only python3-torch (Debian) or any PyTorch.
"""
import json
import struct
import sys

import torch
from torch import nn


class Expert(nn.Module):
    def __init__(self, hidden, expert_hidden):
        super().__init__()
        self.fc1 = nn.Linear(hidden, expert_hidden)
        self.fc2 = nn.Linear(expert_hidden, hidden)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class MoELayer(nn.Module):
    """Softmax gate over all experts, top-k, weights renormalised over the k, weighted sum of experts."""

    def __init__(self, hidden, expert_hidden, num_experts, top_k):
        super().__init__()
        self.top_k = top_k
        self.gate = nn.Linear(hidden, num_experts)
        self.experts = nn.ModuleList(Expert(hidden, expert_hidden) for _ in range(num_experts))

    def forward(self, x):
        probs = torch.softmax(self.gate(x), dim=-1)
        weights, idx = probs.topk(self.top_k, dim=-1)
        weights = weights / weights.sum(-1, keepdim=True)
        return mix_experts(self.experts, x, weights, idx)


def mix_experts(experts, x, weights, idx):
    """Each row of x through its chosen experts idx [T,k], summed with weights [T,k]."""
    out = torch.zeros_like(x)
    for e, expert in enumerate(experts):  # plain per-expert loop: the obvious implementation
        token, slot = (idx == e).nonzero(as_tuple=True)
        if token.numel():
            out[token] += weights[token, slot].unsqueeze(-1) * expert(x[token])
    return out


class Classifier(nn.Module):
    def __init__(self, config):
        super().__init__()
        h = config["hiddenSize"]
        self.input = nn.Linear(config["inputSize"], h)
        if config["kind"] == "moe":
            self.moe = MoELayer(h, config["expertHiddenSize"], config["numExperts"], config["topK"])
        else:
            self.ffn = Expert(h, config["expertHiddenSize"])
        self.output = nn.Linear(h, config["numClasses"])

    def forward(self, x):
        h = torch.relu(self.input(x))
        h = self.moe(h) if hasattr(self, "moe") else self.ffn(h)
        return self.output(h)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    metadata = header.pop("__metadata__", {})
    data = raw[8 + n :]
    tensors = {}
    for name, entry in header.items():
        assert entry["dtype"] == "F32", entry["dtype"]
        begin, end = entry["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32)
        tensors[name] = t.reshape(entry["shape"])
    return tensors, metadata


def main():
    model_path, inputs_path, output_path = sys.argv[1:4]
    tensors, metadata = read_safetensors(model_path)
    config = json.loads(metadata["config"])
    model = Classifier(config)
    model.load_state_dict(tensors, strict=True)
    with open(inputs_path, "rb") as f:
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(-1, config["inputSize"])
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=-1)
    with open(output_path, "wb") as f:
        f.write(probs.contiguous().numpy().tobytes())
    print(json.dumps({"params": sum(p.numel() for p in model.parameters()), "rows": x.shape[0]}))


if __name__ == "__main__":
    main()
