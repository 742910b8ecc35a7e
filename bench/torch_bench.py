#!/usr/bin/env python3
"""The PyTorch side of `make bench`: the same workloads as bench/bench.c.

    torch_bench.py mlp64|mlp256|cnn64|xor [--threads N] [--seconds S]

Prints "rate=<samples/s or steps/s> rss_kb=<peak resident memory>". The
thread split (torch threads vs OpenBLAS threads) and OPENBLAS_CORETYPE are
set by bench/run.sh in the environment before Python starts.
"""
import argparse
import resource
import time

import torch
from torch import nn


def model(name):
    if name.startswith("mlp"):
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                             nn.Linear(128, 10))
    if name == "cnn64":
        return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    w = a.workload
    batch = {"mlp64": 64, "mlp256": 256, "cnn64": 64, "xor": 4}[w]
    m = model(w)
    if w == "cnn64":
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    if w == "xor":
        x = torch.tensor([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])
        y = torch.tensor([[0.], [1.], [1.], [0.]])
        loss_fn = nn.BCEWithLogitsLoss()
    else:
        x = torch.rand(batch, 1, 28, 28)
        y = torch.arange(batch) % 10
        loss_fn = nn.CrossEntropyLoss()
    steps, t0 = 0, 0.0
    while True:
        opt.zero_grad()
        loss = loss_fn(m(x), y)
        loss.backward()
        opt.step()
        steps += 1
        if steps == 5:
            t0 = time.perf_counter()
        if steps > 5 and time.perf_counter() - t0 >= a.seconds:
            break
    rate = (steps - 5) * (1 if w == "xor" else batch) / (time.perf_counter() - t0)
    print("rate=%.1f rss_kb=%d" % (rate, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


if __name__ == "__main__":
    main()
