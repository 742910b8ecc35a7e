#!/usr/bin/env python3
"""A checkpoint written by `nabla train` loads into the same network built in
PyTorch with load_state_dict(strict=True), and both give the same predictions.

    test_checkpoint_torch.py NABLA_BINARY

Makes a small image data set (CSV, 1x8x8 images, 4 classes), trains a
network with convolutions, batch and layer normalisation, dropout and
several activations for two epochs, then:
  - reads the checkpoint with json + numpy (no nabla code),
  - builds the network as torch.nn.Sequential from the spec text stored in
    the checkpoint (conformance.spec_to_torch: one torch module per spec line),
  - load_state_dict(strict=True) with the optimizer's tensors left out,
  - compares torch's eval-mode predictions with `nabla predict` on every
    sample: the same labels, probabilities within the 4 printed decimals.
Exit status: 0 passed, 1 failed, 77 torch unavailable (outside CI).
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:  # depends on the machine
    print("test_checkpoint_torch: torch not available (%s)" % e)
    sys.exit(1 if os.environ.get("CI", "") not in ("", "0", "false") else 77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conformance import read_safetensors, spec_to_torch  # noqa: E402

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
