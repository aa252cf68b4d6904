"""Reproduces, in plain eager PyTorch, the CPU slowdown that part 3's threading plan must avoid: while a
second thread that once ran an OpenMP parallel region stays alive (as a libuv pool thread does after an
inference call), training on another thread at 2 threads runs about 3 times slower (libgomp counts the idle
team of every live master thread, finds more threads than cores, and stops spinning at barriers).

Usage: /usr/bin/python3 bench/omp_master_threads.py   (2-core machine, 2 threads)
Measured on the 2-core development machine, 2026-11-23 (samples/s of the dense model):
before 16,447; after a joined thread 15,486; while a thread stays alive 5,119.
"""
import os
import sys
import threading
import time

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, '..', 'scripts'))
from eager_models import make, train_epoch  # noqa: E402
from pytorch_reference_experiment import load  # noqa: E402

(x, y), (tx, _) = load('train', 5000), load('test')
torch.set_num_threads(2)


def rate(tag):
    torch.manual_seed(0)
    model = make('dense')
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator()
    gen.manual_seed(0)
    train_epoch(model, opt, x, y, 64, gen)
    started = time.perf_counter()
    for _ in range(2):
        train_epoch(model, opt, x, y, 64, gen)
    print(f'{tag}: {2 * x.shape[0] / (time.perf_counter() - started):,.0f} samples/s')


def inference(ready=None, release=None):
    torch.set_num_threads(2)
    with torch.no_grad():
        make('dense')(tx)
    if ready:
        ready.set()
        release.wait()


rate('before any other thread')
t = threading.Thread(target=inference)
t.start()
t.join()
rate('after another thread ran inference and exited')
ready, release = threading.Event(), threading.Event()
t = threading.Thread(target=inference, args=(ready, release))
t.start()
ready.wait()
rate('while a thread that ran inference stays alive')
release.set()
t.join()
