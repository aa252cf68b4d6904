"""Why an MoE at batch 64 costs more than a dense model with its active parameters on the CPU: the expert
products are small. Times, over the same libtorch and BLAS as torch-moe (Debian's python3-torch), the
forward products of the reference MoE's experts (8 experts of 256->128->256, 16 rows each: a batch of 64
with top-2) against dense256's (one 256->256->256 FFN on 64 rows): the same FLOPs.

Usage: /usr/bin/python3 bench/small_gemm.py [--threads 1]
"""
import argparse
import time

import torch


def best_of(fn, reps=200, rounds=5):
    for _ in range(20):
        fn()
    best = float('inf')
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - started) / reps)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--threads', type=int, default=1)
    torch.set_num_threads(p.parse_args().threads)
    w1, w2 = torch.randn(8, 128, 256), torch.randn(8, 256, 128)  # stacked expert weights, as torch-moe keeps them
    x, h, o = torch.randn(128, 256), torch.empty(128, 128), torch.empty(128, 256)
    d1, d2 = torch.randn(256, 256), torch.randn(256, 256)
    xd, hd, od = torch.randn(64, 256), torch.empty(64, 256), torch.empty(64, 256)

    def experts():
        for e in range(8):
            rows = slice(16 * e, 16 * (e + 1))
            torch.mm(x[rows], w1[e].t(), out=h[rows])
            torch.mm(h[rows], w2[e].t(), out=o[rows])

    def dense():
        torch.mm(xd, d1.t(), out=hd)
        torch.mm(hd, d2.t(), out=od)

    flops = 2 * 64 * 256 * 256 * 2
    te, td = best_of(experts), best_of(dense)
    print(f'experts, 16 products of 16 rows: {te * 1e6:7.1f} us ({flops / te / 1e9:5.1f} GFLOP/s)')
    print(f'dense256, 2 products of 64 rows: {td * 1e6:7.1f} us ({flops / td / 1e9:5.1f} GFLOP/s)')
    print(f'same FLOPs, experts take {te / td:.1f}x the time')


if __name__ == '__main__':
    main()
