#!/usr/bin/env python3
"""A checkpoint written by `nabla train` loads into the same network built in
PyTorch with load_state_dict(strict=True), and both give the same predictions.

    test_checkpoint_torch.py NABLA_BINARY

Makes a small image data set (CSV, 1x8x8 images, 4 classes), trains a
network with convolutions, batch and layer normalisation, dropout and
several activations for two epochs, then:
  - reads the checkpoint with json + numpy (no nabla code),
  - builds the network as torch.nn.Sequential from the spec text stored in
    the checkpoint (spec_to_torch below: one torch module per spec line),
  - load_state_dict(strict=True) with the optimizer's tensors left out,
  - compares torch's eval-mode predictions with `nabla predict` on every
    sample: the same labels, probabilities within the 4 printed decimals.
Exit status: 0 passed, 1 failed, 77 torch unavailable (outside CI).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as e:  # depends on the machine
    print("test_checkpoint_torch: torch not available (%s)" % e)
    sys.exit(1 if os.environ.get("CI", "") not in ("", "0", "false") else 77)

SPEC = """# a small network exercising every kind of state a checkpoint holds
input 1 8 8
conv2d 4 kernel=3 pad=1
batchnorm
relu
maxpool 2
conv2d 6 kernel=3 pad=1 groups=2
gelu approx=tanh
flatten
linear 16
layernorm
tanh
dropout 0.2
linear 4
loss softmax_cross_entropy smoothing=0.05
"""


def spec_to_torch(text):
    """nn.Sequential for a nabla spec: one module per line between input and loss."""
    mods, shape = [], None
    for raw in text.splitlines():
        line = raw.split("#")[0].split()
        if not line:
            continue
        kind, args = line[0], line[1:]
        pos = [a for a in args if "=" not in a]
        opt = dict(a.split("=", 1) for a in args if "=" in a)

        def pair(key, default):
            v = opt.get(key, default)
            if isinstance(v, str) and "x" in v:
                h, w = v.split("x")
                return (int(h), int(w))
            return (int(v), int(v))

        if kind == "input":
            shape = [int(p) for p in pos]
        elif kind == "linear":
            mods.append(nn.Linear(shape[-1], int(pos[0]), bias=opt.get("bias", "true") in ("true", "1", "yes")))
            shape = shape[:-1] + [int(pos[0])]
        elif kind == "conv2d":
            k, s, p, d = pair("kernel", None), pair("stride", 1), pair("pad", 0), pair("dilation", 1)
            g = int(opt.get("groups", 1))
            mods.append(nn.Conv2d(shape[0], int(pos[0]), k, s, p, d, g,
                                  bias=opt.get("bias", "true") in ("true", "1", "yes")))
            h = (shape[1] + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
            w = (shape[2] + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
            shape = [int(pos[0]), h, w]
        elif kind in ("maxpool", "avgpool"):
            k = pair("kernel", pos[0])
            s = pair("stride", 0)
            s = k if s == (0, 0) else s
            p = pair("pad", 0)
            mods.append((nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d)(k, s, p))
            shape = [shape[0], (shape[1] + 2 * p[0] - k[0]) // s[0] + 1, (shape[2] + 2 * p[1] - k[1]) // s[1] + 1]
        elif kind == "globalavgpool":
            mods.append(nn.AdaptiveAvgPool2d(1))
            shape = [shape[0], 1, 1]
        elif kind == "flatten":
            mods.append(nn.Flatten())
            shape = [int(np.prod(shape))]
        elif kind == "dropout":
            mods.append(nn.Dropout(float(pos[0]) if pos else float(opt.get("p", 0.5))))
        elif kind == "batchnorm":
            bn = nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d
            mods.append(bn(shape[0], eps=float(opt.get("eps", 1e-5)), momentum=float(opt.get("momentum", 0.1))))
        elif kind == "layernorm":
            k = int(opt.get("axes", 1))
            mods.append(nn.LayerNorm(shape[len(shape) - k:], eps=float(opt.get("eps", 1e-5))))
        elif kind == "relu":
            mods.append(nn.ReLU())
        elif kind == "tanh":
            mods.append(nn.Tanh())
        elif kind == "log_softmax":
            mods.append(nn.LogSoftmax(-1))
        elif kind == "sigmoid":
            mods.append(nn.Sigmoid())
        elif kind == "gelu":
            mods.append(nn.GELU(approximate="tanh" if opt.get("approx") == "tanh" else "none"))
        elif kind == "elu":
            mods.append(nn.ELU(float(pos[0]) if pos else float(opt.get("alpha", 1.0))))
        elif kind == "leaky_relu":
            mods.append(nn.LeakyReLU(float(pos[0]) if pos else float(opt.get("slope", 0.01))))
        elif kind == "softplus":
            mods.append(nn.Softplus(float(opt.get("beta", 1)), float(opt.get("threshold", 20))))
        elif kind == "loss":
            break
        else:
            raise ValueError("spec_to_torch: no torch module for '%s'" % kind)
    return nn.Sequential(*mods)


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype=np.dtype(dtypes[e["dtype"]]).newbyteorder("<"))
        tensors[name] = torch.from_numpy(arr.reshape(e["shape"]).copy())
    return tensors, meta


def main():
    nabla = sys.argv[1]
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        n = 240
        x = rng.uniform(0, 1, size=(n, 8, 8)).astype(np.float32)
        quad = np.stack([x[:, :4, :4].sum((1, 2)), x[:, :4, 4:].sum((1, 2)),
                         x[:, 4:, :4].sum((1, 2)), x[:, 4:, 4:].sum((1, 2))], 1)
        y = quad.argmax(1)
        csv = os.path.join(tmp, "img.csv")
        with open(csv, "w") as f:
            f.write(",".join("p%d" % i for i in range(64)) + ",label\n")
            for i in range(n):
                f.write(",".join("%.6f" % v for v in x[i].ravel()) + ",%d\n" % y[i])
        spec = os.path.join(tmp, "net.nn")
        open(spec, "w").write(SPEC)
        ckpt = os.path.join(tmp, "net.safetensors")
        subprocess.run([nabla, "train", spec, "--data", csv, "--epochs", "2", "--batch", "16",
                        "--optimizer", "adam", "--lr", "0.01", "--out", ckpt, "--quiet"], check=True,
                       stdout=subprocess.DEVNULL)
        pred = subprocess.run([nabla, "predict", ckpt, csv], check=True, capture_output=True, text=True).stdout

        tensors, meta = read_safetensors(ckpt)
        model = spec_to_torch(meta["spec"])
        state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
        model.load_state_dict(state, strict=True)  # raises on any missing or unexpected key
        if int(state["1.num_batches_tracked"]) != 2 * n // 16:
            print("test_checkpoint_torch: FAIL: num_batches_tracked %d" % int(state["1.num_batches_tracked"]))
            return 1
        model.eval()
        mean, std = float(meta["norm_mean"]), float(meta["norm_std"])
        xin = torch.from_numpy(((x - np.float32(mean)) / np.float32(std)).reshape(n, 1, 8, 8))
        with torch.no_grad():
            probs = torch.softmax(model(xin).double(), 1).numpy()

        rows = pred.strip().splitlines()[1:]
        if len(rows) != n:
            print("test_checkpoint_torch: FAIL: %d prediction rows, expected %d" % (len(rows), n))
            return 1
        worst, bad = 0.0, 0
        for i, row in enumerate(rows):
            idx, label, _, ps = row.split(",")
            p = np.array([float(v) for v in ps.split()])
            worst = max(worst, float(np.abs(p - probs[i]).max()))
            bad += int(label) != int(probs[i].argmax())
        print("test_checkpoint_torch: %d samples, labels differing: %d, worst probability difference %.2g "
              "(printed to 4 decimals)" % (n, bad, worst))
        if bad or worst > 1.5e-4:
            print("test_checkpoint_torch: FAIL")
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main())
