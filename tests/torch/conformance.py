"""conformance.py - shared helpers of the PyTorch conformance suite.

The suite proves that nabla computes the numbers PyTorch computes:

  test_ops_torch.py       every op, layer and loss of the C API: forward values
                          and the gradient of every differentiable input
  test_optim_torch.py     every optimizer, 50 steps, against torch.optim
  test_networks_torch.py  the example networks trained 100 steps in both
  test_checkpoint_torch.py  a nabla checkpoint loads into torch.nn

This module holds what they share: the error measure, the table of
tolerances (one per op, layer, loss and optimizer, each with the float32
argument that sets it), the translation of a model spec into torch.nn
(spec_to_torch), a safetensors reader that uses no nabla code, Fashion-MNIST
reading, and the import of torch and of the nabla binding.

Error measure. For each output or gradient tensor,

    rel_err(nabla, torch) = max|nabla - torch| / max(max|torch|, FLOOR)

a normwise relative error: the worst absolute difference measured against
the scale of the whole tensor. An elementwise relative error would blame
nabla for float32 rounding in elements that cancel to near zero (the
difference of two numbers of size 1 is only known to about 1e-7 absolute,
however small it is); the normwise one is robust there and still catches
any element that is wrong on the tensor's scale. The reference is torch in
float64 on the SAME float32 inputs (torch.from_numpy(x.astype(np.float64))),
so it is the exact answer to within 1e-16 and the measured error is
nabla's own float32 error.
"""
import gzip
import json
import os
import struct
import sys

try:
    import numpy as np
    import torch
    from torch import nn
    import torch.nn.functional as F
    TORCH_ERROR = None
except ImportError as e:  # depends on the machine
    np = torch = nn = F = None
    TORCH_ERROR = e

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The denominator's floor: only there so that a tensor of zeros compared with
# zeros reads 0 and not 0/0. Every tensor the suite compares has a scale far
# above it.
FLOOR = 1e-30

# float32 unit roundoff: a correctly rounded operation is within U relative.
U = 2.0 ** -24   # 5.96e-8


def in_ci():
    return os.environ.get("CI", "") not in ("", "0", "false")


def require_torch(prog):
    """Exits 77 (skip) when torch or numpy cannot be imported, 1 under CI."""
    if TORCH_ERROR is not None:
        print("%s: torch not available (%s)" % (prog, TORCH_ERROR))
        sys.exit(1 if in_ci() else 77)
    torch.set_num_threads(1)   # deterministic reductions, and fair timings


def import_nabla(prog):
    """Imports the ctypes binding (python/nabla). NABLA_LIB and PYTHONPATH are
    set by tests/run.sh (under SAN=1 it points at the plain build: ctypes
    cannot load a sanitizer build); for a manual run they default to
    $BUILD/libnabla.so (BUILD defaults to build) and python/ in this checkout."""
    lib = os.path.join(ROOT, os.environ.get("BUILD", "build"), "libnabla.so")
    os.environ.setdefault("NABLA_LIB", lib)
    pydir = os.path.join(ROOT, "python")
    if pydir not in sys.path:
        sys.path.append(pydir)
    try:
        import nabla
    except Exception as e:  # ImportError, OSError from ctypes, ...
        print("%s: FAIL: cannot import the nabla binding (NABLA_LIB=%s): %s"
              % (prog, os.environ.get("NABLA_LIB"), e))
        sys.exit(1)
    return nabla


# ---------------------------------------------------------------------------
# error measure

def rel_err(ours, ref, scale=0.0):
    """Normwise relative error of one tensor (numpy arrays or torch tensors);
    inf for a shape mismatch or a non-finite value on one side only. scale:
    a larger denominator where the result is a difference of bigger terms
    (only softmax's gradient uses it; see test_ops_torch.py)."""
    a = np.asarray(ours, dtype=np.float64)
    b = ref.detach().cpu().double().numpy() if torch is not None and torch.is_tensor(ref) \
        else np.asarray(ref, dtype=np.float64)
    if a.shape != b.shape:
        if a.size == b.size == 1:
            a, b = a.reshape(()), b.reshape(())
        else:
            return float("inf")
    if a.size == 0:
        return 0.0
    fa, fb = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(fa, fb) or not np.array_equal(a[~fa], b[~fb]):
        return float("inf")
    if not fa.any():
        return 0.0
    d = np.abs(a[fa] - b[fb]).max()
    return float(d / max(float(np.abs(b[fb]).max()), scale, FLOOR))


# ---------------------------------------------------------------------------
# tolerances: one per op / layer / loss / optimizer / network.
#
# Each entry is (tolerance, why). The arguments count float32 roundings:
# U = 6e-8 per correctly rounded operation, libm's float functions (expf,
# logf, tanhf, erff, powf, expm1f, log1pf) within 1-2 ulp. A tolerance is
# set from that argument with a safety factor of about 3-10, never from a
# measurement: if an op disagrees by more, that is a bug to find, not a
# tolerance to widen.

_ARITH = (1e-6, "one correctly rounded float32 op per element (U = 6e-8); a gradient "
                "summed over broadcast axes adds at most a few U (sums in float, <= 100 terms "
                "of one sign pattern, normwise)")
_MOVE = (1e-7, "moves or selects elements without arithmetic (each gradient element "
               "receives once): exact, equal to the float64 reference, so any difference is "
               "a bug; 1e-7 is below two roundings")
_LIBM = (1e-6, "libm float function, 1-2 ulp (<= 1.2e-7), plus 2-4 roundings in the "
               "derivative formula: <= ~5e-7")
_DOT = (1e-5, "sums of K float32 products, K <= ~600 here: random-sign rounding grows like "
              "sqrt(K) U ~ 1.5e-6, worst case K U / 2 ~ 2e-5 only for same-sign terms; "
              "normwise 1e-5")
_SUMS = (1e-5, "reductions over up to ~1000 values: nabla sums in double (exact to U after "
               "the final rounding); gradients of means/normalisations divide and "
               "subtract sums: ~10 roundings on the tensor's scale")

TOLERANCES = {
    # elementwise, with broadcasting
    "add": _ARITH, "sub": _ARITH, "mul": _ARITH,
    "div": (2e-6, "a / b and -dy a / b^2: 3 roundings per element (<= 2e-7), plus sums over "
                  "broadcast axes as for add"),
    "neg": _MOVE, "scale": _ARITH, "add_scalar": _ARITH,
    "exp": _LIBM, "log": _LIBM, "sqrt": _LIBM,
    "pow": (2e-6, "powf within 1-2 ulp; the gradient p x^(p-1) calls powf again, times dy: "
                  "~4 roundings; x^p with p up to 3 keeps relative error (no cancellation)"),
    "abs": _MOVE,
    # activations
    "relu": _MOVE,
    "leaky_relu": _ARITH, "elu": _LIBM,
    "gelu": (1e-6, _LIBM[1] + "; the gradient measured against max f' max|dy| (test_ops_torch.py)"),
    "sigmoid": (1e-6, "expf within 1 ulp and one division; the gradient dy y (1 - y) has an "
                      "absolute error U |dy| from rounding y near 1, so it is measured against "
                      "max f' max|dy| = 0.25 max|dy|: ~4 U"),
    "tanh": (1e-6, "tanhf within 1-2 ulp; the gradient dy (1 - y^2): absolute error ~2 U |dy| "
                   "against max f' max|dy| = max|dy|"),
    "softplus": _LIBM,
    # linear algebra and layout
    "matmul": _DOT, "linear": _DOT,
    "transpose": _MOVE, "permute": _MOVE, "reshape": _MOVE, "flatten": _MOVE,
    "concat": _MOVE, "slice": _MOVE,
    # reductions
    "sum": _SUMS, "mean": _SUMS,
    "max": (1e-7, "picks one element; its gradient goes to that element only: exact"),
    "softmax": (1e-6, "exp(x - max) with expf (1 ulp), a sum in double and one division; the "
                      "gradient y (dy - sum dy y) over <= 100 classes: a few U of max|y| max|dy| "
                      "(its error is measured against that: see test_ops_torch.py)"),
    "log_softmax": (1e-6, "x - max - log(sum) with one expf, one log and two subtractions per "
                          "element; gradient dy - exp(y) sum(dy): a few U normwise"),
    # convolution and pooling
    "conv2d": _DOT,
    "max_pool2d": (1e-6, "forward picks one element (exact); with overlapping windows the "
                         "gradient of an element adds up to kh*kw (<= 9) dy's: <= 8 roundings"),
    "avg_pool2d": (1e-6, "a sum of <= 9 values and one division per window: <= 10 U"),
    # layers
    "batchnorm": (1e-5, "mean and variance in double over up to ~400 values, then xhat = "
                        "(x - mean) invstd with mean/invstd rounded to float; the input "
                        "gradient subtracts two batch sums (cancellation on the tensor's "
                        "scale): ~10-20 U"),
    "layernorm": (1e-5, "as batchnorm, over up to ~100 values per row"),
    "embedding": (1e-6, "forward copies rows (exact); the weight's gradient adds the dy rows "
                        "of repeated ids (a handful per row here): a few roundings"),
    "dropout": (3e-7, "identity, or x * s with s = 1/(1-p) rounded to float once: two "
                      "roundings (2U = 1.2e-7) per element"),
    # losses
    "softmax_cross_entropy": (1e-6, "logsumexp and the loss summed in double, one rounding "
                                    "at the end; gradient (softmax - target) / N: expf and a "
                                    "few roundings"),
    "nll": _ARITH, "mse": _ARITH, "l1": _ARITH, "huber": _ARITH,
    "bce_with_logits": (1e-6, "loss in double (log1p(exp(-|x|))), one rounding; gradient "
                              "(sigmoid(x) - t) / n with one expf: a few U"),
    # gradient accumulation
    "fan-out": (1e-6, "an input read by two or three ops: its gradient adds the paths' "
                      "gradients (+=), each a few roundings; dot products of K = 7"),
    # optimizers (tests/torch/test_optim_torch.py, 50 steps)
    "sgd": (1e-5, "50 updates of ~4 float32 ops each; torch's vector kernels fuse a "
                  "multiply-add and nabla does not (1 U per step apart), which random-walks to "
                  "~sqrt(50) U on the tensor's scale ~ 5e-7"),
    "adam": (1e-5, "as sgd, ~8 ops per update"),
    "adamw": (1e-5, "as adam"),
    "rmsprop": (1e-5, "as sgd, ~6-10 ops per update"),
    # whole networks (tests/torch/test_networks_torch.py), per step
    "network loss, lock-step": (1e-5, "the same weights in both: a float32 forward pass through "
                                      "<= 11 layers, dot products of K <= 3136 terms (sqrt(K) U "
                                      "~ 3e-6 each, averaged over the batch by the mean loss); "
                                      "max-pool ties and ReLU kinks do not change forward values"),
    "network gradients, lock-step": (1e-4, "the same weights in both; the median over the "
                                           "steps: a conv weight's gradient sums N H W = 50176 "
                                           "products (sqrt(K) U ~ 1.3e-5), through <= 11 layers. "
                                           "Single steps may hold a max-pool or ReLU decision "
                                           "taken within float32 rounding of a tie or a kink, "
                                           "which routes one sample's gradient elsewhere (up to "
                                           "2e-2 measured, torch float32 against float64 as "
                                           "often as nabla): every step must stay below 0.1"),
    "network loss, free-running": (1e-3, "100 steps of float32 training: the loss of a network "
                                         "that is not chaotic over 100 steps (the MLP) drifts "
                                         "by ~1e-5; 1e-3 still catches any wrong gradient "
                                         "(~1e-2 within a few steps). Not enforced for the CNN, "
                                         "whose training amplifies 1e-8 to 1e-2 within 100 steps "
                                         "(torch float32 against torch float64 too)"),
}


def tolerance(name):
    return TOLERANCES[name][0]


# ---------------------------------------------------------------------------
# the model spec in torch.nn

def spec_to_torch(text):
    """nn.Sequential for a nabla spec: one module per line between input and loss
    (docs/model-spec.md), so parameters get the names nabla's checkpoints use."""
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
        elif kind == "embedding":
            mods.append(nn.Embedding(int(pos[0]), int(pos[1])))
            shape = shape + [int(pos[1])]
        elif kind == "loss":
            break
        else:
            raise ValueError("spec_to_torch: no torch module for '%s'" % kind)
    return nn.Sequential(*mods)


def spec_loss(text):
    """The torch loss function (mean reduction) of a spec's `loss` line."""
    for raw in text.splitlines():
        line = raw.split("#")[0].split()
        if not line or line[0] != "loss":
            continue
        kind = line[1]
        opt = dict(a.split("=", 1) for a in line[2:] if "=" in a)
        if kind == "softmax_cross_entropy":
            eps = float(opt.get("smoothing", 0))
            return lambda out, y: F.cross_entropy(out, y.long(), label_smoothing=eps)
        if kind == "nll":
            return lambda out, y: F.nll_loss(out, y.long())
        if kind == "mse":
            return F.mse_loss
        if kind == "l1":
            return F.l1_loss
        if kind == "huber":
            delta = float(opt.get("delta", 1))
            return lambda out, y: F.huber_loss(out, y, delta=delta)
        if kind == "bce_with_logits":
            return F.binary_cross_entropy_with_logits
        raise ValueError("spec_loss: no torch loss for '%s'" % kind)
    raise ValueError("spec_loss: the spec has no loss line")


# ---------------------------------------------------------------------------
# files

def read_safetensors(path):
    """{name: torch tensor}, metadata - with json and numpy only (no nabla code)."""
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
        tensors[name] = torch.from_numpy(arr.reshape(e["shape"]).astype(arr.dtype.newbyteorder("=")))
    return tensors, meta


FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx_gz(path):
    """An IDX file (gzip-compressed): numpy array of its unsigned bytes."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    if magic >> 8 != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    ndim = magic & 0xFF
    dims = struct.unpack(">%dI" % ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist(n, seed=0):
    """n training samples (images [n, 1, 28, 28] float32 scaled to [0, 1],
    labels [n] float32), drawn without replacement by a seeded permutation.
    Fashion-MNIST when FASHION_DIR has it, else a deterministic random set of
    the same shapes (images uniform bytes, labels 0..9). Returns (x, y, source)."""
    rng = np.random.default_rng(seed)
    img = os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz")
    lab = os.path.join(FASHION_DIR, "train-labels-idx1-ubyte.gz")
    if os.path.exists(img) and os.path.exists(lab):
        images, labels = read_idx_gz(img), read_idx_gz(lab)
        idx = rng.permutation(len(labels))[:n]
        x, y, source = images[idx], labels[idx], "Fashion-MNIST (%s)" % FASHION_DIR
    else:
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n)
        source = "random stand-in for Fashion-MNIST (no %s)" % FASHION_DIR
    x = (x.astype(np.float32) / np.float32(255.0)).reshape(n, 1, 28, 28)
    return x, y.astype(np.float32), source


def markdown_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"
