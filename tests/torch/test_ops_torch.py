#!/usr/bin/env python3
"""test_ops_torch.py - every op, layer and loss of nabla against PyTorch.

    test_ops_torch.py [--table PATH] [--only OP[,OP...]] [--verbose]

For every op of the C API (include/nabla.h) this builds several random cases
- broadcasting, size-1 axes, odd sizes (7, 13), a few larger shapes, and
values of magnitude ~1e-3 and ~1e2..1e3 where the op allows - and compares,
through the ctypes binding (python/nabla):

  - the forward value, and
  - the gradient of EVERY differentiable input (each one a nabla parameter):
    nabla's plan.backward(seed) against torch's out.backward(seed), with the
    same random seed vector,

with torch computing in float64 on the SAME float32 inputs. The error of a
tensor is conformance.rel_err (normwise relative); an op passes when the
worst error over its cases, forward and gradients, is within its tolerance
in conformance.TOLERANCES (each with its float32 justification).

Inputs stay away from points where the derivative is not defined or the two
libraries may legitimately pick different subgradients: relu/leaky_relu/abs
at 0, ties of max and max_pool2d, l1 at p == t, huber at |p - t| == delta,
and from the edges of a function's domain (log, sqrt, pow near 0).

Layers and losses are checked through their ops: linear (F.linear), conv2d
with stride/padding/dilation/groups (F.conv2d), max/avg pooling
(F.max_pool2d, F.avg_pool2d with count_include_pad=True), batchnorm in
training mode (including the update of the running statistics and
num_batches_tracked) and in evaluation mode (F.batch_norm), layernorm
(F.layer_norm), embedding (F.embedding), dropout (p = 0 in training and
evaluation mode are the identity; for p > 0 the fraction of zeros must be p
within 5 standard deviations and every kept value x / (1 - p), and the
gradient must follow the same mask), and every loss: softmax cross-entropy
with and without label smoothing (F.cross_entropy), nll, mse, l1, huber
(F.huber_loss) and bce_with_logits (including the target's gradient).

Prints one line per op: cases, worst forward error, worst gradient error,
tolerance. With --table PATH writes the same table as markdown (for
docs/conformance.md). Exit status: 0 when every op passes; 1 naming every op
that fails; 77 (skip) when torch cannot be imported, except under CI.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance as C  # noqa: E402

PROG = "test_ops_torch"
C.require_torch(PROG)
np, torch, F = C.np, C.torch, C.F
nabla = C.import_nabla(PROG)

F32 = np.float32


class Arg:
    """One input of a case: a float32 array; grad=True makes it a nabla
    parameter (whose gradient is compared), False a constant."""

    def __init__(self, name, value, grad=True):
        self.name = name
        self.value = np.array(value, dtype=F32, order="C")   # (ascontiguousarray makes 0-d 1-d)
        self.grad = grad


class Case:
    """build(g, *nodes) -> nabla node; ref(*tensors) -> torch tensor. Both get
    the args in order (None args passed through as None)."""

    def __init__(self, op, label, args, build, ref, training=True, post=None, grad=True,
                 grad_scale=None):
        self.op, self.label, self.args = op, label, args
        # grad_scale(y, seed): the size of the terms a gradient is a difference
        # of, when that can exceed the gradient itself (see softmax below)
        self.grad_scale = grad_scale
        self.build, self.ref = build, ref
        self.training = training
        self.post = post     # post(nodes, tensors) -> [(what, nabla value, torch value)]
        self.grad = grad     # run backward


# ---------------------------------------------------------------------------
# random inputs

rng = np.random.default_rng(20240601)


def normal(shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(F32)


def away_from_zero(shape, scale=1.0, gap=0.05):
    """|x| in [gap, 1 + gap] * scale with random signs: no kinks hit."""
    mag = rng.uniform(gap, 1.0 + gap, size=shape)
    return (np.where(rng.random(shape) < 0.5, -mag, mag) * scale).astype(F32)


def positive(shape, lo, hi):
    """log-uniform in [lo, hi]: well inside the domain of log, sqrt, pow."""
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size=shape)).astype(F32)


def distinct(shape, scale=1.0):
    """Values without ties (for max and max pooling): a shuffled grid of
    distinct float32 values, at least 1e-3 * scale apart."""
    n = int(np.prod(shape))
    v = (rng.permutation(n) - n / 2.0 + rng.uniform(0.1, 0.9)) / max(n, 1) * 4.0
    return (v * scale).astype(F32).reshape(shape)


def t64(a, grad):
    t = torch.from_numpy(a.astype(np.float64))
    return t.requires_grad_(grad)


SCALES = [("", 1.0), ("tiny", 1e-3), ("large", 1e3)]

# ---------------------------------------------------------------------------
# the cases, op by op

CASES = []


def case(*a, **k):
    CASES.append(Case(*a, **k))


def shp(s):
    return "x".join(str(d) for d in s) if s else "scalar"


# --- binary elementwise with broadcasting
BINARY_SHAPES = [((7, 13), (7, 13)), ((7, 13), (13,)), ((4, 1, 5), (3, 1)), ((1,), (13, 7)),
                 ((2, 3, 4, 5), (1, 3, 1, 5)), ((13, 1), (1, 7)), ((64, 100), (100,))]
for op, fn in (("add", lambda a, b: a + b), ("sub", lambda a, b: a - b),
               ("mul", lambda a, b: a * b), ("div", lambda a, b: a / b)):
    for i, (sa, sb) in enumerate(BINARY_SHAPES):
        for tag, sc in SCALES[:2] if i < 4 else SCALES:
            a = normal(sa, sc)
            # divide by values away from zero only; magnitudes of b vary too
            b = away_from_zero(sb, sc, 0.3) if op == "div" else normal(sb, sc)
            case(op, "%s %s %s" % (shp(sa), shp(sb), tag), [Arg("a", a), Arg("b", b)],
                 (lambda o: lambda g, x, y: getattr(g, o)(x, y))(op), fn)

# --- one-input elementwise
UNARY_SHAPES = [(7, 13), (1,), (3, 1, 5), (2, 64, 9)]


def unary(op, gen, nab, ref, shapes=UNARY_SHAPES, grad_scale=None):
    for s in shapes:
        for tag, x in gen(s):
            case(op, "%s %s" % (shp(s), tag), [Arg("x", x)], nab, ref, grad_scale=grad_scale)


# sigmoid, tanh and gelu compute their derivative by a cancellation against 1:
# y (1 - y), 1 - y^2, Phi(x) = (1 + erf(x / sqrt 2)) / 2 at large |x|. With
# y rounded to float32 (nabla and torch alike), 1 - y carries an absolute
# error of U, so dx carries U |dy| - small against the largest derivative,
# large against a dx that is itself tiny because every x in the tensor is
# saturated. Their gradient errors are therefore measured against
# max(max|dx|, max f' max|dy|): unchanged when some x is near 0, meaningful
# when none is.
def derivative_bound(fmax):
    return lambda y, seed: fmax * float(np.abs(seed).max())


def gen_normal(scales=(1.0, 1e-3, 1e2, 1e3)):
    return lambda s: [("x%g" % sc, normal(s, sc)) for sc in scales]


def gen_kink(scales=(1.0, 1e-3, 1e2)):
    return lambda s: [("x%g" % sc, away_from_zero(s, sc)) for sc in scales]


unary("neg", gen_normal(), lambda g, x: g.neg(x), lambda x: -x)
for alpha in (-2.5, 0.3, 1e-3):
    unary("scale", gen_normal((1.0, 1e3)), (lambda a: lambda g, x: g.scale(x, a))(alpha),
          (lambda a: lambda x: float(F32(a)) * x)(alpha))
for c in (1.5, -1e3, 1e-3):
    unary("add_scalar", gen_normal((1.0, 1e-3, 1e3)), (lambda c: lambda g, x: g.add_scalar(x, c))(c),
          (lambda c: lambda x: x + float(F32(c)))(c))
unary("exp", lambda s: [("x1", normal(s)), ("x1e-3", normal(s, 1e-3)), ("x30", normal(s, 30.0).clip(-85, 85))],
      lambda g, x: g.exp(x), torch.exp)
unary("log", lambda s: [("[1e-3,1e3]", positive(s, 1e-3, 1e3)), ("[0.5,2]", positive(s, 0.5, 2.0)),
                        ("[1e2,1e4]", positive(s, 1e2, 1e4))],
      lambda g, x: g.log(x), torch.log)
unary("sqrt", lambda s: [("[1e-3,1e3]", positive(s, 1e-3, 1e3)), ("[0.5,2]", positive(s, 0.5, 2.0))],
      lambda g, x: g.sqrt(x), torch.sqrt)
for p in (2.0, 3.0, 0.5, -1.5, 2.5, 1.0):
    gen = (lambda s: [("[0.1,10]", positive(s, 0.1, 10.0)), ("[1e-2,1e2]", positive(s, 1e-2, 1e2))]) \
        if p != int(p) or p < 0 else \
        (lambda s: [("x1", away_from_zero(s)), ("[1e-2,1e2]", positive(s, 1e-2, 1e2))])
    unary("pow", lambda s: [("p=%g %s" % (p, t), x) for t, x in gen(s)],
          (lambda p: lambda g, x: g.pow(x, p))(p), (lambda p: lambda x: x ** p)(p))
unary("abs", gen_kink(), lambda g, x: g.abs(x), torch.abs)

# --- activations
unary("relu", gen_kink(), lambda g, x: g.relu(x), torch.relu)
for slope in (0.01, 0.2):
    unary("leaky_relu", gen_kink(), (lambda s: lambda g, x: g.leaky_relu(x, s))(slope),
          (lambda s: lambda x: F.leaky_relu(x, float(F32(s))))(slope))
for alpha in (1.0, 0.5):
    unary("elu", gen_kink((1.0, 1e-3, 10.0)), (lambda a: lambda g, x: g.elu(x, a))(alpha),
          (lambda a: lambda x: F.elu(x, float(F32(a))))(alpha))
for approx in ("none", "tanh"):
    unary("gelu", lambda s: [("x%g" % sc, normal(s, sc)) for sc in (1.0, 3.0, 1e-3, 1e2)],
          (lambda a: lambda g, x: g.gelu(x, approximate=a))(approx),
          (lambda a: lambda x: F.gelu(x, approximate=a))(approx), grad_scale=derivative_bound(1.13))
unary("sigmoid", gen_normal((1.0, 5.0, 1e-3, 1e2)), lambda g, x: g.sigmoid(x), torch.sigmoid,
      grad_scale=derivative_bound(0.25))
unary("tanh", gen_normal((1.0, 3.0, 1e-3, 1e2)), lambda g, x: g.tanh(x), torch.tanh,
      grad_scale=derivative_bound(1.0))
for beta, th in ((1.0, 20.0), (2.0, 5.0), (0.5, 10.0)):
    unary("softplus", lambda s: [("beta=%g th=%g x%g" % (beta, th, sc), normal(s, sc))
                                 for sc in (1.0, 5.0, 1e-3, 1e2)],
          (lambda b, t: lambda g, x: g.softplus(x, b, t))(beta, th),
          (lambda b, t: lambda x: F.softplus(x, b, t))(beta, th))

# --- matmul with broadcast batch axes
for sa, sb in (((7, 13), (13, 5)), ((1, 13), (13, 1)), ((3, 7, 13), (13, 5)), ((7, 13), (2, 13, 5)),
               ((2, 1, 4, 6), (3, 6, 5)), ((64, 128), (128, 64)), ((5, 300), (300, 7))):
    for tag, sc in SCALES:
        case("matmul", "%s @ %s %s" % (shp(sa), shp(sb), tag),
             [Arg("a", normal(sa, sc)), Arg("b", normal(sb, sc))],
             lambda g, a, b: g.matmul(a, b), torch.matmul)

# --- layout
for s, a0, a1 in (((7, 13), 0, 1), ((3, 4, 5), 0, 2), ((2, 3, 4, 5), -1, 1), ((1, 7, 1), 0, 1)):
    case("transpose", "%s (%d,%d)" % (shp(s), a0, a1), [Arg("x", normal(s))],
         (lambda a0, a1: lambda g, x: g.transpose(x, a0, a1))(a0, a1),
         (lambda a0, a1: lambda x: x.transpose(a0, a1))(a0, a1))
for s, perm in (((7, 13), (1, 0)), ((3, 4, 5), (2, 0, 1)), ((2, 3, 4, 5), (3, 1, 0, 2)), ((1, 13, 1), (2, 1, 0))):
    case("permute", "%s %s" % (shp(s), perm), [Arg("x", normal(s))],
         (lambda p: lambda g, x: g.permute(x, list(p)))(perm),
         (lambda p: lambda x: x.permute(*p))(perm))
for s, new in (((7, 13), (13, 7)), ((3, 4, 5), (-1, 5)), ((3, 4, 5), (0, -1)), ((2, 3, 4), (24,)), ((6,), (1, 6, 1))):
    def torch_shape(s=s, new=new):
        return tuple(s[i] if d == 0 else d for i, d in enumerate(new))
    case("reshape", "%s -> %s" % (shp(s), new), [Arg("x", normal(s))],
         (lambda n: lambda g, x: g.reshape(x, list(n)))(new),
         (lambda n: lambda x: x.reshape(n))(torch_shape()))
for s in ((7, 13), (3, 4, 5), (2, 3, 4, 5), (5, 1)):
    case("flatten", shp(s), [Arg("x", normal(s))], lambda g, x: g.flatten(x),
         lambda x: x.reshape(x.shape[0], -1))
for shapes, axis in ((((7, 3), (7, 5)), 1), (((2, 4), (3, 4), (1, 4)), 0), (((2, 3, 4), (2, 3, 1), (2, 3, 7)), -1),
                     (((2, 1, 5), (2, 6, 5)), 1)):
    case("concat", "%s axis %d" % (" ".join(shp(s) for s in shapes), axis),
         [Arg("x%d" % i, normal(s)) for i, s in enumerate(shapes)],
         (lambda ax: lambda g, *xs: g.concat(list(xs), ax))(axis),
         (lambda ax: lambda *xs: torch.cat(xs, ax))(axis))
for s, axis, start, end in (((7, 13), 1, 2, 9), ((7, 13), 0, -3, None), ((3, 4, 5), -1, 0, 1),
                            ((3, 4, 5), 1, 1, -1), ((13,), 0, 5, None)):
    sl = [slice(None)] * len(s)
    ax = axis % len(s)
    sl[ax] = slice(start, end)
    case("slice", "%s axis %d [%s:%s]" % (shp(s), axis, start, "" if end is None else end),
         [Arg("x", normal(s))],
         (lambda a, b, e: lambda g, x: g.slice(x, a, b, e))(axis, start, end),
         (lambda sl: lambda x: x[tuple(sl)])(sl))

# --- reductions
RED = (((7, 13), None, False), ((7, 13), (0,), False), ((7, 13), (1,), True), ((3, 4, 5), (0, 2), False),
       ((3, 4, 5), (-1,), True), ((2, 3, 4, 5), (1, -1), False), ((100, 10), (0,), True), ((1, 7, 1), (0, 2), False))


def axes_of(shape, axes):
    return tuple(range(len(shape))) if axes is None else tuple(a % len(shape) for a in axes)


for op in ("sum", "mean", "max"):
    for s, axes, keep in RED:
        for tag, sc in SCALES:
            x = distinct(s, sc) if op == "max" else normal(s, sc)
            dims = axes_of(s, axes)
            if op == "sum":
                ref = (lambda d, k: lambda x: x.sum(dim=d, keepdim=k))(dims, keep)
            elif op == "mean":
                ref = (lambda d, k: lambda x: x.mean(dim=d, keepdim=k))(dims, keep)
            else:
                ref = (lambda d, k: lambda x: x.amax(dim=d, keepdim=k))(dims, keep)
            case(op, "%s axes %s keepdims %d %s" % (shp(s), axes, keep, tag), [Arg("x", x)],
                 (lambda o, a, k: lambda g, x: getattr(g, o)(x, axes=None if a is None else list(a), keepdims=k))(op, axes, keep),
                 ref)

# softmax's gradient dx = y (dy - sum(dy y)) is a difference of terms of size
# max|y| max|dy|; float32 (nabla's and torch's alike) resolves it only to U
# of that size. With logits ~1e3 the softmax is one-hot and the true dx is
# ~1e-16 or far smaller (down to 1e-300, below float32's range): both float32
# libraries return 0 or a rounding of it there. So softmax's gradient error is
# measured against max(max|dx|, max|y| max|dy|): the same as plain normwise
# whenever dx is not a cancellation (logits ~1), and meaningful when it is.
def softmax_terms(y, seed):
    return float(np.abs(y).max() * np.abs(seed).max())


for op, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
    for s, axis in (((7, 13), -1), ((7, 13), 0), ((3, 4, 5), 1), ((2, 1, 10), 2), ((64, 100), 1), ((5, 1), 1)):
        for tag, sc in (("", 1.0), ("tiny", 1e-3), ("logits~1e3", 1e3)):
            case(op, "%s axis %d %s" % (shp(s), axis, tag), [Arg("x", normal(s, sc))],
                 (lambda o, a: lambda g, x: getattr(g, o)(x, a))(op, axis),
                 (lambda f, a: lambda x: f(x, a))(fn, axis),
                 grad_scale=softmax_terms if op == "softmax" else None)

# --- conv2d
CONV = [  # x shape, w shape, bias, stride, padding, dilation, groups
    ((2, 3, 9, 9), (4, 3, 3, 3), True, 1, 0, 1, 1),
    ((2, 3, 9, 9), (4, 3, 3, 3), True, 2, 1, 1, 1),
    ((1, 2, 13, 7), (5, 2, 3, 3), False, 1, 1, 2, 1),
    ((2, 4, 7, 7), (6, 2, 3, 3), True, 1, 1, 1, 2),
    ((2, 4, 8, 8), (4, 1, 3, 3), True, 2, 1, 1, 4),       # depthwise
    ((3, 1, 7, 13), (2, 1, 1, 1), True, 1, 0, 1, 1),      # 1x1
    ((1, 3, 10, 12), (2, 3, 3, 5), True, (2, 1), (1, 2), (1, 2), 1),  # per-axis settings
    ((4, 16, 14, 14), (32, 16, 3, 3), True, 1, 1, 1, 1),  # K = 144, a real layer
    ((2, 64, 7, 7), (8, 64, 3, 3), True, 1, 1, 1, 1),     # K = 576
    ((2, 17, 9, 11), (20, 17, 3, 3), True, 1, 1, 1, 1),   # Winograd: odd sizes, channels off the tiles
    ((1, 16, 5, 8), (24, 16, 3, 3), False, 1, 2, 1, 1),   # Winograd, padding 2
    ((3, 32, 6, 7), (16, 32, 3, 3), True, 1, 0, 1, 1),    # Winograd, no padding
]
for xs, ws, bias, st, pad, dil, grp in CONV:
    for tag, sc in SCALES:
        args = [Arg("x", normal(xs, sc)), Arg("w", normal(ws, sc / np.sqrt(np.prod(ws[1:]))))]
        if bias:
            args.append(Arg("b", normal(ws[:1], sc)))
        case("conv2d", "x %s w %s stride %s pad %s dil %s groups %d %s"
             % (shp(xs), shp(ws), st, pad, dil, grp, tag), args,
             (lambda st, pad, dil, grp: lambda g, x, w, b=None: g.conv2d(x, w, b, stride=st, padding=pad,
                                                                         dilation=dil, groups=grp))(st, pad, dil, grp),
             (lambda st, pad, dil, grp: lambda x, w, b=None: F.conv2d(x, w, b, st, pad, dil, grp))(st, pad, dil, grp))

# --- pooling
POOL = [((2, 3, 8, 8), 2, None, 0), ((1, 2, 7, 13), 3, 2, 1), ((2, 2, 9, 9), 3, 1, 0), ((1, 3, 13, 7), 2, 1, 1),
        ((2, 1, 6, 10), (2, 3), (2, 3), 0), ((1, 2, 12, 12), (3, 2), (1, 2), (1, 1))]
for op in ("max_pool2d", "avg_pool2d"):
    for xs, k, st, pad in POOL:
        for tag, sc in SCALES[:2]:
            x = distinct(xs, sc) if op == "max_pool2d" else normal(xs, sc)
            ref = (lambda k, st, pad: lambda x: F.max_pool2d(x, k, st, pad))(k, st, pad) if op == "max_pool2d" else \
                (lambda k, st, pad: lambda x: F.avg_pool2d(x, k, st, pad, count_include_pad=True))(k, st, pad)
            case(op, "%s kernel %s stride %s pad %s %s" % (shp(xs), k, st, pad, tag), [Arg("x", x)],
                 (lambda o, k, st, pad: lambda g, x: getattr(g, o)(x, k, stride=st, padding=pad))(op, k, st, pad), ref)

# --- linear
for xs, out, bias in (((7, 13), 5, True), ((3, 4, 13), 6, True), ((1, 13), 1, False), ((64, 300), 100, True),
                      ((5, 1), 7, True)):
    for tag, sc in SCALES:
        args = [Arg("x", normal(xs, sc)), Arg("w", normal((out, xs[-1]), sc / np.sqrt(xs[-1])))]
        if bias:
            args.append(Arg("b", normal((out,), sc)))
        case("linear", "x %s out %d bias %d %s" % (shp(xs), out, bias, tag), args,
             lambda g, x, w, b=None: g.linear(x, w, b), lambda x, w, b=None: F.linear(x, w, b))


# --- batchnorm: training (with running statistics) and evaluation
def bn_case(xs, affine, training, momentum, eps, tag, sc):
    Cn = xs[1]
    x = normal(xs, sc) + F32(0.5 * sc)
    rm0 = normal((Cn,), sc)
    rv0 = positive((Cn,), 0.5 * sc * sc, 2.0 * sc * sc)
    args = [Arg("x", x)]
    if affine:
        args += [Arg("gamma", normal((Cn,)) + F32(1.0)), Arg("beta", normal((Cn,)))]
    args += [Arg("running_mean", rm0, False), Arg("running_var", rv0, False),
             Arg("num_batches_tracked", np.array(3.0, F32), False)]

    def build(g, x, *rest):
        gamma, beta = (rest[0], rest[1]) if affine else (None, None)
        rm, rv, nbt = rest[-3:]
        return g.batchnorm(x, gamma, beta, rm, rv, nbt, momentum=momentum, eps=eps)

    def ref(x, *rest):
        gamma, beta = (rest[0], rest[1]) if affine else (None, None)
        rm, rv, nbt = rest[-3:]
        return F.batch_norm(x, rm, rv, gamma, beta, training=training,
                            momentum=float(F32(momentum)), eps=float(F32(eps)))

    def post(nodes, tensors):
        rm, rv, nbt = nodes[-3:]
        trm, trv = tensors[-3], tensors[-2]
        out = [("running_mean", rm.value, trm), ("running_var", rv.value, trv),
               ("num_batches_tracked", nbt.value, np.array(4.0 if training else 3.0))]
        return out

    case("batchnorm", "%s %s affine %d momentum %g eps %g %s"
         % ("train" if training else "eval", shp(xs), affine, momentum, eps, tag),
         args, build, ref, training=training, post=post)


for xs in ((8, 5), (4, 3, 5, 7), (2, 6, 1, 9), (16, 4, 6, 6)):
    for training in (True, False):
        for tag, sc in SCALES:
            bn_case(xs, True, training, 0.1, 1e-5, tag, sc)
    bn_case(xs, False, True, 0.3, 1e-3, "", 1.0)
    bn_case(xs, False, False, 0.3, 1e-3, "", 1.0)

# --- layernorm
for xs, naxes in (((7, 13), 1), ((4, 5, 6), 2), ((3, 1, 9), 1), ((2, 3, 4, 5), 3), ((8, 100), 1)):
    for affine in (True, False):
        for tag, sc in SCALES:
            norm = xs[len(xs) - naxes:]
            args = [Arg("x", normal(xs, sc) + F32(0.3 * sc))]
            if affine:
                args += [Arg("gamma", normal(norm) + F32(1.0)), Arg("beta", normal(norm))]
            eps = 1e-5
            case("layernorm", "%s naxes %d affine %d %s" % (shp(xs), naxes, affine, tag), args,
                 (lambda n: lambda g, x, gm=None, bt=None: g.layernorm(x, n, gm, bt, eps=1e-5))(naxes),
                 (lambda shape: lambda x, gm=None, bt=None: F.layer_norm(x, shape, gm, bt, eps=float(F32(1e-5))))(norm))

# --- embedding (repeated ids accumulate)
for ids_shape, num, dim in (((7,), 10, 6), ((3, 4), 5, 13), ((1,), 1, 3), ((64,), 100, 32)):
    ids = rng.integers(0, num, size=ids_shape).astype(F32)
    case("embedding", "ids %s weight %dx%d" % (shp(ids_shape), num, dim),
         [Arg("indices", ids, False), Arg("weight", normal((num, dim)))],
         lambda g, i, w: g.embedding(i, w), lambda i, w: F.embedding(i.long(), w))

# --- dropout: the identity cases (p = 0 in training, any p in evaluation)
for s, p, training in (((7, 13), 0.0, True), ((3, 4, 5), 0.5, False), ((64, 100), 0.1, False), ((5, 1), 0.0, False)):
    case("dropout", "%s p %g %s" % (shp(s), p, "train" if training else "eval"), [Arg("x", normal(s))],
         (lambda p: lambda g, x: g.dropout(x, p))(p), lambda x: x.clone(), training=training)

# --- losses
for N, Cn in ((7, 13), (1, 5), (64, 10), (3, 100), (13, 2)):
    for tag, sc in (("", 1.0), ("tiny", 1e-3), ("logits~1e3", 1e3)):
        labels = rng.integers(0, Cn, size=N).astype(F32)
        for sm in (0.0, 0.1):
            case("softmax_cross_entropy", "%dx%d smoothing %g %s" % (N, Cn, sm, tag),
                 [Arg("logits", normal((N, Cn), sc)), Arg("labels", labels, False)],
                 (lambda sm: lambda g, z, y: g.softmax_cross_entropy(z, y, smoothing=sm))(sm),
                 (lambda sm: lambda z, y: F.cross_entropy(z, y.long(), label_smoothing=float(F32(sm))))(sm))
        case("nll", "%dx%d %s" % (N, Cn, tag),
             [Arg("log_probs", normal((N, Cn), sc)), Arg("labels", labels, False)],
             lambda g, z, y: g.nll(z, y), lambda z, y: F.nll_loss(z, y.long()))

for s in ((7, 13), (1,), (3, 4, 5), (64, 10)):
    for tag, sc in SCALES:
        p = normal(s, sc)
        d = away_from_zero(s, sc, 0.05)
        case("mse", "%s %s" % (shp(s), tag), [Arg("pred", p), Arg("target", (p - d).astype(F32))],
             lambda g, a, b: g.mse(a, b), F.mse_loss)
        # l1: p - t bounded away from 0 (sign is not differentiable there)
        case("l1", "%s %s" % (shp(s), tag), [Arg("pred", p), Arg("target", (p - d).astype(F32))],
             lambda g, a, b: g.l1(a, b), F.l1_loss)
        for delta in (1.0, 0.5):
            # |p - t| on both sides of delta, never within 2% of it
            dd = away_from_zero(s, 1.0, 0.02) * F32(2 * delta)
            dd = np.where(np.abs(np.abs(dd) - delta) < 0.02 * delta, dd * F32(1.1), dd).astype(F32)
            dd = (dd * sc).astype(F32)
            case("huber", "%s delta %g %s" % (shp(s), delta * sc, tag),
                 [Arg("pred", p), Arg("target", (p - dd).astype(F32))],
                 (lambda dl: lambda g, a, b: g.huber(a, b, dl))(delta * sc),
                 (lambda dl: lambda a, b: F.huber_loss(a, b, delta=float(F32(dl))))(delta * sc))
        case("bce_with_logits", "%s %s" % (shp(s), tag),
             [Arg("logits", normal(s, sc if sc < 1e3 else 1e2)),
              Arg("target", rng.uniform(0, 1, size=s).astype(F32))],
             lambda g, a, b: g.bce_with_logits(a, b), F.binary_cross_entropy_with_logits)


# --- fan-out: one input read by two ops; its gradient is the sum of both
# paths, so a backward that assigns (=) instead of adding (+=) shows here
for s in ((7, 13), (3, 1, 5)):
    for label, nab, ref in (
            ("x * sigmoid(x)", lambda g, x: g.mul(x, g.sigmoid(x)), lambda x: x * torch.sigmoid(x)),
            ("x + x", lambda g, x: g.add(x, x), lambda x: x + x),
            ("tanh(x) - 0.5 x", lambda g, x: g.sub(g.tanh(x), g.scale(x, 0.5)), lambda x: torch.tanh(x) - 0.5 * x),
            ("relu(x) + exp(x) + x^2", lambda g, x: g.add(g.add(g.relu(x), g.exp(x)), g.pow(x, 2.0)),
             lambda x: torch.relu(x) + torch.exp(x) + x ** 2)):
        case("fan-out", "%s %s" % (label, shp(s)), [Arg("x", away_from_zero(s))], nab, ref)
case("fan-out", "x @ x 7x7", [Arg("x", normal((7, 7)))], lambda g, x: g.matmul(x, x), lambda x: x @ x)
case("fan-out", "softmax_cross_entropy(x @ w, y) + mse(x @ w, t)",
     [Arg("x", normal((5, 4))), Arg("w", normal((4, 3))), Arg("y", np.array([0, 2, 1, 1, 0], F32), False),
      Arg("t", normal((5, 3)), False)],
     lambda g, x, w, y, t: g.add(g.softmax_cross_entropy(g.matmul(x, w), y), g.mse(g.matmul(x, w), t)),
     lambda x, w, y, t: F.cross_entropy(x @ w, y.long()) + F.mse_loss(x @ w, t))


# ---------------------------------------------------------------------------
# running one case

def run_case(c, index):
    """Returns (forward error, gradient error, worst-what) for one case; the
    seed vector depends on the case's index only, so --only reruns a case
    exactly."""
    seed_rng = np.random.default_rng(1000 + index)
    g = nabla.Graph()
    nodes = []
    for a in c.args:
        shape = list(a.value.shape)
        if a.grad:
            nodes.append(g.param(a.name, shape, value=a.value))
        elif not shape:   # a 0-d constant (num_batches_tracked)
            nodes.append(g.scalar(float(a.value)))
        else:
            nodes.append(g.const(a.name, shape, value=a.value))
    out = c.build(g, *nodes)
    plan = g.plan(target=out, batch=1, train=True, keep=True)
    plan.training = c.training
    plan.forward()
    y = np.array(plan.value(out), dtype=F32)

    tensors = [t64(a.value, a.grad) for a in c.args]
    ty = c.ref(*tensors)
    errs = [("forward", C.rel_err(y, ty))]
    if c.post:
        errs += [(what, C.rel_err(ours, ref)) for what, ours, ref in c.post(nodes, tensors)]
    fwd = max(e for _, e in errs)
    worst = max(errs, key=lambda e: e[1])[0]

    grad = 0.0
    diff = [i for i, a in enumerate(c.args) if a.grad]
    if c.grad and diff:
        seed = np.array(seed_rng.standard_normal(y.shape), dtype=F32)
        g.zero_grad()
        plan.backward(seed)
        ty.backward(torch.from_numpy(seed.astype(np.float64)).reshape(ty.shape))
        scale = c.grad_scale(y, seed) if c.grad_scale else 0.0
        for i in diff:
            e = C.rel_err(np.array(nodes[i].grad, dtype=F32), tensors[i].grad, scale)
            if e > grad:
                grad, gwhat = e, "d" + c.args[i].name
        if grad > fwd:
            worst = gwhat
    return fwd, grad, worst


def dropout_statistics():
    """Dropout with p > 0 in training mode: the mask cannot match torch's (two
    random streams), so check what it must satisfy: zeros with frequency p,
    kept values x / (1 - p) (torch's inverted dropout), the gradient through
    the same mask, and another seed giving another mask. Returns
    (cases, forward error, gradient error, failures)."""
    fails, fwd, grad, cases = [], 0.0, 0.0, 0
    for p, n in ((0.1, 40000), (0.5, 40000), (0.9, 40000)):
        cases += 1
        x = away_from_zero((n,), 1.0)
        g = nabla.Graph()
        xn = g.param("x", [n], value=x)
        y = g.dropout(xn, p)
        plan = g.plan(target=y, batch=1, train=True, keep=True)
        plan.training = True
        plan.seed(1234)
        plan.forward()
        out = np.array(plan.value(y), dtype=F32)
        mask = out != 0
        frac = 1.0 - mask.mean()
        sigma = np.sqrt(p * (1 - p) / n)
        if abs(frac - p) > 5 * sigma:
            fails.append("p=%g: fraction of zeros %.4f, expected %g +- %.4f" % (p, frac, p, 5 * sigma))
        pf = float(F32(p))   # nabla's p is a float32
        ref = torch.from_numpy(x.astype(np.float64)) * torch.from_numpy(mask) / (1.0 - pf)
        fwd = max(fwd, C.rel_err(out, ref))
        seed = rng.standard_normal(n).astype(F32)
        g.zero_grad()
        plan.backward(seed)
        gref = torch.from_numpy(seed.astype(np.float64)) * torch.from_numpy(mask) / (1.0 - pf)
        grad = max(grad, C.rel_err(np.array(xn.grad, dtype=F32), gref))
        plan.seed(99)
        plan.forward()
        if np.array_equal(np.array(plan.value(y)) != 0, mask):
            fails.append("p=%g: another seed gave the same mask" % p)
    return cases, fwd, grad, fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", help="write the measured table (markdown) to this file")
    ap.add_argument("--only", help="comma-separated ops to run")
    ap.add_argument("--verbose", action="store_true", help="print every case")
    opts = ap.parse_args()
    only = set(opts.only.split(",")) if opts.only else None

    t0 = time.time()
    results = {}    # op -> [cases, fwd, grad, worst label, failures]
    for index, c in enumerate(CASES):
        if only and c.op not in only:
            continue
        r = results.setdefault(c.op, [0, 0.0, 0.0, "", []])
        r[0] += 1
        tol = C.tolerance(c.op)
        try:
            fwd, grad, what = run_case(c, index)
        except Exception as e:  # a nabla error or a binding problem is a failure of this op
            r[4].append("%s: %s: %s" % (c.label, type(e).__name__, e))
            if opts.verbose:
                print("  %-22s %-50s ERROR %s" % (c.op, c.label, e))
            continue
        if max(fwd, grad) > max(r[1], r[2]):
            r[3] = "%s (%s)" % (c.label, what)
        r[1], r[2] = max(r[1], fwd), max(r[2], grad)
        if not (fwd <= tol and grad <= tol):
            r[4].append("%s: forward %.3g, gradient %.3g (worst: %s)" % (c.label, fwd, grad, what))
        if opts.verbose:
            print("  %-22s %-60s fwd %-9.3g grad %-9.3g %s" % (c.op, c.label, fwd, grad, what))
    if not only or "dropout" in only:
        n, fwd, grad, fails = dropout_statistics()
        r = results.setdefault("dropout", [0, 0.0, 0.0, "", []])
        r[0] += n
        r[1], r[2] = max(r[1], fwd), max(r[2], grad)
        r[4] += fails
        tol = C.tolerance("dropout")
        if fwd > tol or grad > tol:
            r[4].append("p > 0 in training: forward %.3g, gradient %.3g against x * mask / (1 - p)" % (fwd, grad))

    rows, failed = [], []
    print("%-22s %5s  %-10s %-10s %-9s %s" % ("op", "cases", "forward", "gradient", "tolerance", ""))
    for op, (n, fwd, grad, worst, fails) in results.items():
        tol = C.tolerance(op)
        ok = not fails
        print("%-22s %5d  %-10.3g %-10.3g %-9.3g %s" % (op, n, fwd, grad, tol, "ok" if ok else "FAIL"))
        rows.append((op, n, "%.2g" % fwd, "%.2g" % grad, "%.0e" % tol, C.TOLERANCES[op][1],
                     "ok" if ok else "**FAIL**"))
        if not ok:
            failed.append(op)
    for op in failed:
        for f in results[op][4]:
            print("FAIL %s: %s" % (op, f))
    total = sum(r[0] for r in results.values())
    print("%s: torch %s, %d cases over %d ops in %.1f s" % (PROG, torch.__version__, total, len(results),
                                                           time.time() - t0))
    if opts.table:
        with open(opts.table, "w") as f:
            f.write(C.markdown_table(("op", "cases", "worst forward", "worst gradient", "tolerance",
                                      "why this tolerance", ""), rows))
    if failed:
        print("%s: FAIL: %d op(s) differ from PyTorch: %s" % (PROG, len(failed), ", ".join(failed)))
        return 1
    print("%s: every op matches PyTorch within its tolerance" % PROG)
    return 0


if __name__ == "__main__":
    sys.exit(main())
