"""nabla - a thin ctypes binding over libnabla, the C neural-network library.

Build a graph, plan it, run it, train it::

    import numpy as np, nabla
    g = nabla.Graph()
    x = g.input("x", (nabla.BATCH, 2))
    w = g.param("w", (2, 1), value=np.ones((2, 1)))
    loss = g.mse(g.matmul(x, w), g.input("y", (nabla.BATCH, 1)))
    plan = g.plan(loss, batch=4)          # shapes, order, memory: decided once
    opt = nabla.SGD(g, lr=0.1)

Everything is float32 and row-major (C order). Arrays handed to nabla are
copied in (np.asarray(a, dtype=np.float32, order="C")); arrays handed back are
numpy copies, never views of nabla's memory, so they stay valid whatever
nabla does next.

Errors: every failing C call raises NablaError carrying nabla's own message
(nb_last_error()) and the status name (e.g. "shape error"). Graph builders
are sticky as in C: after one op fails, the graph is unusable (planning it
fails too) - build a new graph.

Lifetime: Python objects hold references to what they depend on (a Node or
Plan or optimizer keeps its Graph, a Graph borrowed from a Model keeps the
Model), and each C object is freed exactly once, when its owning wrapper is
garbage-collected.

The library is found by load(): $NABLA_LIB, else build/libnabla.so of the
source tree this package sits in, else the system's libnabla.so.0.
See docs/python.md.
"""
import ctypes
import operator
import os

import numpy as np

from . import _lib
from ._lib import NB_END

__all__ = ["BATCH", "NablaError", "load", "Graph", "Node", "Plan", "gradcheck",
           "SGD", "Adam", "AdamW", "RMSprop", "clip_grad_norm", "Model", "Dataset"]

__version__ = "0.1.0"

#: A dimension given as BATCH in Graph.input() is the batch axis; its size is
#: fixed by each plan. Node.shape reports batch axes as BATCH.
BATCH = -1
#: Plan flags (nb_plan_create): allocate gradients / keep every buffer.
PLAN_TRAIN = 1
PLAN_KEEP = 2

_F32 = np.float32


def load(path=None):
    """Loads libnabla and returns its ctypes.CDLL.

    path: a file or soname. None tries, in order: $NABLA_LIB, the build tree's
    build/libnabla.so (../../build relative to this package), then
    ctypes.util.find_library("nabla") or "libnabla.so.0". Importing nabla
    calls load(); if that fails the error is raised at the first use instead,
    so load(path) can still be called. Loading a second, different library
    into one process raises RuntimeError (objects must be freed by the
    library that made them).
    """
    return _lib.load(path)


try:  # automatic on import; a failure is reported by the first call that needs the library
    load()
except OSError:
    pass


def _L():
    return _lib.get()


def _str(b):
    return b.decode("utf-8", "replace") if b is not None else ""


class NablaError(Exception):
    """A nabla call failed.

    message: nabla's own message (nb_last_error(), or the graph's first build
             error); also str(err).
    status:  the status name from nb_status_str(), e.g. "shape error",
             "gradient mismatch"; None where the C call returns only NULL
             (nabla has no public "last status" accessor).
    code:    the numeric nb_status, or None likewise.
    report:  for gradcheck(), its report dict; otherwise None.
    """

    def __init__(self, message, status=None, code=None, report=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.report = report

    def __str__(self):
        return self.message


def _status_name(code):
    return _str(_L().nb_status_str(code))


def _raise(code=None, message=None):
    L = _L()
    if message is None:
        message = _str(L.nb_last_error())
    raise NablaError(message, _status_name(code) if code is not None else None, code)


def _check(code):
    if code != 0:
        _raise(code)


def _check_ptr(ptr):
    if not ptr:
        _raise()
    return ptr


def _f32(a):
    """a as a C-contiguous float32 array (a copy only when needed). Unlike
    np.ascontiguousarray, which turns a 0-d array into a 1-d one, this keeps
    the shape, so 0-d values are shape-checked as such."""
    return np.asarray(a, dtype=_F32, order="C")


def _copy_floats(addr, n):
    out = np.empty(n, dtype=_F32)
    if n:
        ctypes.memmove(out.ctypes.data, addr, n * 4)
    return out


def _dims(shape):
    """shape (an int or a sequence of ints) -> (ndim, int64 array)."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = [operator.index(d) for d in shape]
    return len(shape), (ctypes.c_int64 * max(len(shape), 1))(*shape)


def _ints(xs):
    xs = [operator.index(v) for v in xs]
    return len(xs), (ctypes.c_int * max(len(xs), 1))(*xs)


def _pair(v, what):
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(v)
    if len(v) != 2:
        raise ValueError("%s: expected an int or a (h, w) pair, got %r" % (what, v))
    return operator.index(v[0]), operator.index(v[1])


def _graph(g):
    if not isinstance(g, Graph):
        raise TypeError("expected a nabla.Graph, got %s" % type(g).__name__)
    return g


def _encode(s):
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def _path(p):
    return os.fsencode(p)


# ---------------------------------------------------------------------------
# graphs and nodes


class Node:
    """One node of a graph: an input, parameter, constant or op result.

    Made by Graph's methods, never directly. Keeps its Graph alive. Two Node
    objects for the same C node compare equal (and hash alike).
    Attributes: graph, name ("" for unnamed ops), op (e.g. "matmul"), id
    (creation index), shape (tuple; batch axes read BATCH), requires_grad,
    inputs (list of Nodes), value / grad for parameters and constants.
    """

    __slots__ = ("graph", "_p")

    def __init__(self, graph, ptr):
        self.graph = graph
        self._p = ptr

    def __eq__(self, other):
        return isinstance(other, Node) and other._p == self._p

    def __hash__(self):
        return hash(self._p)

    def __repr__(self):
        return "<nabla.Node %d %s%s %s>" % (self.id, self.op, " '%s'" % self.name if self.name else "",
                                            self.shape)

    @property
    def name(self):
        """The node's name ("" for unnamed op nodes)."""
        return _str(_L().nb_node_name(self._p))

    @property
    def op(self):
        """The op's name: "input", "param", "const", "matmul", ..."""
        return _str(_L().nb_node_op(self._p))

    @property
    def id(self):
        """Index in creation order (a topological order)."""
        return _L().nb_node_id(self._p)

    @property
    def shape(self):
        """Shape as built (tuple of ints); batch-sized axes read BATCH (-1)."""
        d = _lib.INT64_DIMS()
        nd = _L().nb_node_shape(self._p, d)
        return tuple(int(d[i]) for i in range(nd))

    @property
    def requires_grad(self):
        """True for parameters and every node that depends on one."""
        return bool(_L().nb_node_requires_grad(self._p))

    @property
    def is_param(self):
        """True for parameters (trained, with a gradient)."""
        return bool(_L().nb_node_is_param(self._p))

    @property
    def inputs(self):
        """The nodes this op reads, in order (empty for leaves)."""
        L = _L()
        return [Node(self.graph, L.nb_node_input(self._p, i)) for i in range(L.nb_node_input_count(self._p))]

    def _stored_shape(self):
        s = self.shape
        return s, int(np.prod(s, dtype=np.int64))

    @property
    def value(self):
        """A numpy copy of a parameter's or constant's values (shaped), None for other nodes."""
        addr = _L().nb_node_data(self._p)
        if not addr:
            return None
        shape, n = self._stored_shape()
        return _copy_floats(addr, n).reshape(shape)

    @value.setter
    def value(self, values):
        """Copies values (array-like of exactly this node's shape) into a parameter or constant."""
        addr = _L().nb_node_data(self._p)
        if not addr:
            raise ValueError("node '%s' (%s) holds no values in the graph: only parameters and "
                             "constants do (feed inputs through Plan.set_input)" % (self.name, self.op))
        shape, n = self._stored_shape()
        a = _f32(values)
        if a.shape != shape:
            raise ValueError("%s '%s': got values of shape %s, expected %s" % (self.op, self.name, a.shape, shape))
        ctypes.memmove(addr, a.ctypes.data, n * 4)

    @property
    def grad(self):
        """A numpy copy of a parameter's accumulated gradient (shaped), None for other nodes."""
        addr = _L().nb_node_grad(self._p)
        if not addr:
            return None
        shape, n = self._stored_shape()
        return _copy_floats(addr, n).reshape(shape)

    def keep(self):
        """Keeps this node's value readable after a forward pass in plans made from now on
        (plans otherwise reuse memory of values no later op needs). Returns self."""
        _L().nb_node_keep(self._p)
        return self


class Graph:
    """A graph of operations (nb_graph): leaves (inputs, parameters, constants) and ops.

    Graph() creates and owns an empty graph, freed when this object is
    collected. A Graph obtained from Model.graph borrows the model's graph
    (the model frees it) and keeps the Model alive. Every op method returns a
    new Node or raises NablaError with nabla's message naming the op and the
    shapes; after such an error the graph is unusable (errors are sticky).
    Binary elementwise ops (add, sub, mul, div) also accept a Python number
    for either operand, added to the graph with scalar().
    """

    _p = None
    _owned = False

    def __init__(self):
        L = _L()
        self._p = _check_ptr(L.nb_graph_create())
        self._owned = True
        self._owner = None
        self._free = L.nb_graph_free

    @classmethod
    def _borrow(cls, ptr, owner):
        g = cls.__new__(cls)
        g._p = ptr
        g._owned = False
        g._owner = owner
        return g

    def __del__(self):
        p, self._p = self._p, None
        if p and self._owned:
            self._free(p)

    def __eq__(self, other):
        return isinstance(other, Graph) and other._p == self._p

    def __hash__(self):
        return hash(self._p)

    def __len__(self):
        return _L().nb_graph_node_count(self._p)

    def __repr__(self):
        return "<nabla.Graph: %d nodes, %d parameters>" % (len(self), _L().nb_graph_param_count(self._p))

    # -- state

    @property
    def status(self):
        """The first build error's status name ("ok" if none)."""
        return _status_name(_L().nb_graph_status(self._p))

    @property
    def error(self):
        """The first build error's message ("" if none)."""
        return _str(_L().nb_graph_error(self._p))

    def nodes(self):
        """Every node, in creation order (a list of Nodes)."""
        L = _L()
        return [Node(self, L.nb_graph_node(self._p, i)) for i in range(L.nb_graph_node_count(self._p))]

    def params(self):
        """Every parameter node, in creation order (the layout of the parameter block)."""
        L = _L()
        return [Node(self, L.nb_graph_param(self._p, i)) for i in range(L.nb_graph_param_count(self._p))]

    def find(self, name):
        """The node called name, or None."""
        ptr = _L().nb_graph_find(self._p, _encode(name))
        return Node(self, ptr) if ptr else None

    def zero_grad(self):
        """Sets every parameter gradient to 0 (backward adds into them)."""
        _L().nb_graph_zero_grad(self._p)

    def plan(self, target=None, batch=1, train=None, keep=False):
        """Plans the graph (nb_plan_create) and returns a Plan.

        target: the node backward starts from (a scalar loss, usually), or None
        for a forward-only plan. batch: the size of every BATCH axis (>= 1).
        train: allocate gradients (NB_PLAN_TRAIN); defaults to target is not None.
        keep: keep every value and gradient readable (NB_PLAN_KEEP, no reuse).
        """
        return Plan(self, target, batch, target is not None if train is None else train, keep)

    # -- building

    def _node(self, x):
        if isinstance(x, Node):
            return x._p
        raise TypeError("expected a nabla.Node, got %s" % type(x).__name__)

    def _opt(self, x):
        return None if x is None else self._node(x)

    def _operand(self, x):
        if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool):
            return self.scalar(float(x))._p
        return self._node(x)

    def _build(self, fn, *args):
        L = _L()
        before = L.nb_graph_status(self._p)
        ptr = fn(self._p, *args)
        if ptr:
            return Node(self, ptr)
        if before != 0:  # sticky: the builder refused silently; report the root cause
            raise NablaError(_str(L.nb_graph_error(self._p)), _status_name(before), before)
        st = L.nb_graph_status(self._p)
        _raise(st if st != 0 else None)

    def input(self, name, shape):
        """An input [shape] fed through Plan.set_input before each forward pass; BATCH marks the batch axis."""
        nd, d = _dims(shape)
        return self._build(_L().nb_input, _encode(name) if name is not None else None, nd, d)

    def _leaf_values(self, kind, name, shape, value):
        if value is None:
            return None
        a = _f32(value)
        want = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if a.shape != want:
            raise ValueError("%s '%s': got values of shape %s, expected %s" % (kind, name, a.shape, want))
        return a

    def param(self, name, shape, value=None):
        """A trained parameter of a fixed shape (no BATCH), named uniquely.

        Starts at zero, or at value (array-like of exactly that shape, copied in as float32).
        """
        a = self._leaf_values("param", name, shape, value)
        nd, d = _dims(shape)
        n = self._build(_L().nb_param, _encode(name) if name is not None else None, nd, d)
        if a is not None:
            n.value = a
        return n

    def const(self, name, shape, value=None):
        """A constant of a fixed shape (no gradient): zeros, or value (array-like of that shape, copied)."""
        a = self._leaf_values("const", name, shape, value)
        nd, d = _dims(shape)
        return self._build(_L().nb_const, _encode(name) if name is not None else None, nd, d,
                           a.ctypes.data if a is not None else None)

    def scalar(self, v):
        """A 0-d constant holding v."""
        return self._build(_L().nb_scalar, float(v))

    # elementwise, with NumPy broadcasting
    def add(self, a, b):
        """a + b (broadcasting)."""
        return self._build(_L().nb_add, self._operand(a), self._operand(b))

    def sub(self, a, b):
        """a - b (broadcasting)."""
        return self._build(_L().nb_sub, self._operand(a), self._operand(b))

    def mul(self, a, b):
        """a * b (broadcasting)."""
        return self._build(_L().nb_mul, self._operand(a), self._operand(b))

    def div(self, a, b):
        """a / b (broadcasting)."""
        return self._build(_L().nb_div, self._operand(a), self._operand(b))

    def neg(self, x):
        """-x."""
        return self._build(_L().nb_neg, self._node(x))

    def scale(self, x, alpha):
        """alpha * x."""
        return self._build(_L().nb_scale, self._node(x), float(alpha))

    def add_scalar(self, x, c):
        """x + c."""
        return self._build(_L().nb_add_scalar, self._node(x), float(c))

    def exp(self, x):
        """exp(x)."""
        return self._build(_L().nb_exp, self._node(x))

    def log(self, x):
        """log(x)."""
        return self._build(_L().nb_log, self._node(x))

    def sqrt(self, x):
        """sqrt(x)."""
        return self._build(_L().nb_sqrt, self._node(x))

    def pow(self, x, p):
        """x ** p (p a number)."""
        return self._build(_L().nb_pow, self._node(x), float(p))

    def abs(self, x):
        """|x|."""
        return self._build(_L().nb_abs, self._node(x))

    # activations
    def relu(self, x):
        """max(x, 0)."""
        return self._build(_L().nb_relu, self._node(x))

    def leaky_relu(self, x, slope=0.01):
        """x if x > 0 else slope * x (torch.nn.LeakyReLU)."""
        return self._build(_L().nb_leaky_relu, self._node(x), float(slope))

    def elu(self, x, alpha=1.0):
        """torch.nn.ELU."""
        return self._build(_L().nb_elu, self._node(x), float(alpha))

    def gelu(self, x, approximate="none"):
        """torch.nn.GELU: approximate "none" (erf) or "tanh"."""
        if approximate not in ("none", "tanh"):
            raise ValueError("gelu: approximate must be 'none' or 'tanh', got %r" % (approximate,))
        return self._build(_L().nb_gelu, self._node(x), 1 if approximate == "tanh" else 0)

    def sigmoid(self, x):
        """1 / (1 + exp(-x))."""
        return self._build(_L().nb_sigmoid, self._node(x))

    def tanh(self, x):
        """tanh(x)."""
        return self._build(_L().nb_tanh, self._node(x))

    def softplus(self, x, beta=1.0, threshold=20.0):
        """torch.nn.Softplus(beta, threshold)."""
        return self._build(_L().nb_softplus, self._node(x), float(beta), float(threshold))

    # linear algebra and shapes
    def matmul(self, a, b):
        """[..., M, K] @ [..., K, N] -> [..., M, N]; leading axes broadcast."""
        return self._build(_L().nb_matmul, self._node(a), self._node(b))

    def transpose(self, x, a0, a1):
        """Swaps axes a0 and a1 (negative counts from the end)."""
        return self._build(_L().nb_transpose, self._node(x), operator.index(a0), operator.index(a1))

    def permute(self, x, perm):
        """Reorders the axes: output axis i is input axis perm[i] (one entry per axis)."""
        _, p = _ints(perm)
        return self._build(_L().nb_permute, self._node(x), p)

    def reshape(self, x, shape):
        """A view of x with shape; one entry may be -1 (inferred), 0 copies x's size at that axis."""
        nd, d = _dims(shape)
        return self._build(_L().nb_reshape, self._node(x), nd, d)

    def flatten(self, x):
        """[N, ...] -> [N, prod(...)] (a view)."""
        return self._build(_L().nb_flatten, self._node(x))

    def concat(self, xs, axis):
        """Joins the nodes xs along axis."""
        ptrs = [self._node(x) for x in xs]
        arr = (ctypes.c_void_p * max(len(ptrs), 1))(*ptrs)
        return self._build(_L().nb_concat, len(ptrs), arr, operator.index(axis))

    def slice(self, x, axis, start, end=None):
        """x[start:end] along axis; negative positions count from the end; end None: to the end."""
        return self._build(_L().nb_slice, self._node(x), operator.index(axis), operator.index(start),
                           NB_END if end is None else operator.index(end))

    def _reduce(self, fn, x, axes, keepdims):
        if axes is None:
            n, a = 0, None
        else:
            n, a = _ints((axes,) if isinstance(axes, (int, np.integer)) else axes)
        return self._build(fn, self._node(x), n, a, 1 if keepdims else 0)

    def sum(self, x, axes=None, keepdims=False):
        """Sum over axes (an int, a sequence, or None for every axis)."""
        return self._reduce(_L().nb_sum, x, axes, keepdims)

    def mean(self, x, axes=None, keepdims=False):
        """Mean over axes (an int, a sequence, or None for every axis)."""
        return self._reduce(_L().nb_mean, x, axes, keepdims)

    def max(self, x, axes=None, keepdims=False):
        """Maximum over axes (an int, a sequence, or None for every axis)."""
        return self._reduce(_L().nb_max, x, axes, keepdims)

    def softmax(self, x, axis):
        """softmax along axis."""
        return self._build(_L().nb_softmax, self._node(x), operator.index(axis))

    def log_softmax(self, x, axis):
        """log(softmax) along axis, computed stably."""
        return self._build(_L().nb_log_softmax, self._node(x), operator.index(axis))

    # convolution and pooling, NCHW
    def conv2d(self, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
        """torch.nn.functional.conv2d: x [N, C, H, W], w [O, C/groups, kh, kw], b [O] or None.

        stride, padding, dilation: an int or an (h, w) pair.
        """
        sh, sw = _pair(stride, "conv2d stride")
        ph, pw = _pair(padding, "conv2d padding")
        dh, dw = _pair(dilation, "conv2d dilation")
        opts = _lib.ConvOpts(sh, sw, ph, pw, dh, dw, operator.index(groups))
        return self._build(_L().nb_conv2d, self._node(x), self._node(w), self._opt(b), ctypes.byref(opts))

    def _pool(self, fn, x, kernel, stride, padding, what):
        kh, kw = _pair(kernel, what + " kernel")
        sh, sw = (0, 0) if stride is None else _pair(stride, what + " stride")
        ph, pw = _pair(padding, what + " padding")
        return self._build(fn, self._node(x), kh, kw, sh, sw, ph, pw)

    def max_pool2d(self, x, kernel, stride=None, padding=0):
        """torch.nn.functional.max_pool2d over NCHW; ints or (h, w) pairs; stride None: kernel."""
        return self._pool(_L().nb_max_pool2d, x, kernel, stride, padding, "max_pool2d")

    def avg_pool2d(self, x, kernel, stride=None, padding=0):
        """torch.nn.functional.avg_pool2d over NCHW (padding counted); stride None: kernel."""
        return self._pool(_L().nb_avg_pool2d, x, kernel, stride, padding, "avg_pool2d")

    # layers' ops
    def linear(self, x, w, b=None):
        """x W^T + b: x [..., in], w [out, in] (PyTorch's layout), b [out] or None."""
        return self._build(_L().nb_linear, self._node(x), self._node(w), self._opt(b))

    def dropout(self, x, p):
        """Zeroes elements with probability p and scales the rest by 1/(1-p) in training mode."""
        return self._build(_L().nb_dropout, self._node(x), float(p))

    def batchnorm(self, x, gamma, beta, running_mean, running_var, num_batches_tracked,
                  momentum=0.1, eps=1e-5):
        """Batch normalisation over axis 1 (BatchNorm1d/2d).

        gamma, beta: [C] parameters or None; running_mean, running_var: [C]
        constants; num_batches_tracked: a 0-d constant (all updated in training mode).
        """
        return self._build(_L().nb_batchnorm, self._node(x), self._opt(gamma), self._opt(beta),
                           self._node(running_mean), self._node(running_var),
                           self._node(num_batches_tracked), float(momentum), float(eps))

    def layernorm(self, x, naxes, gamma=None, beta=None, eps=1e-5):
        """Layer normalisation over the last naxes axes; gamma, beta of those axes' shape or None."""
        return self._build(_L().nb_layernorm, self._node(x), operator.index(naxes), self._opt(gamma),
                           self._opt(beta), float(eps))

    def embedding(self, indices, weight):
        """Rows of weight [num, dim] picked by indices (floats holding integers, shape S) -> S + [dim]."""
        return self._build(_L().nb_embedding, self._node(indices), self._node(weight))

    # losses: 0-d, averaged over the batch
    def softmax_cross_entropy(self, logits, labels, smoothing=0.0):
        """Cross entropy of logits [N, C] and class labels [N] (as floats), label smoothing in [0, 1)."""
        if smoothing == 0.0:
            return self._build(_L().nb_softmax_cross_entropy, self._node(logits), self._node(labels))
        return self._build(_L().nb_softmax_cross_entropy_smooth, self._node(logits), self._node(labels),
                           float(smoothing))

    def nll(self, log_probs, labels):
        """mean of -log_probs[i, labels[i]]: log_probs [N, C], labels [N]."""
        return self._build(_L().nb_nll, self._node(log_probs), self._node(labels))

    def mse(self, p, t):
        """mean (p - t)^2."""
        return self._build(_L().nb_mse, self._node(p), self._node(t))

    def l1(self, p, t):
        """mean |p - t|."""
        return self._build(_L().nb_l1, self._node(p), self._node(t))

    def huber(self, p, t, delta=1.0):
        """torch.nn.HuberLoss(delta)."""
        return self._build(_L().nb_huber, self._node(p), self._node(t), float(delta))

    def bce_with_logits(self, x, t):
        """torch.nn.BCEWithLogitsLoss: logits x, targets t in [0, 1] of the same shape."""
        return self._build(_L().nb_bce_with_logits, self._node(x), self._node(t))


# ---------------------------------------------------------------------------
# plans


class Plan:
    """A planned graph (nb_plan): fixed batch size, every buffer allocated once.

    Made by Graph.plan(). Keeps its Graph (and target) alive and frees the C
    plan when collected. Adding nodes to the graph afterwards makes the plan
    stale: forward/backward then fail (NablaError "bad state") and value/grad
    refuse to read. Without keep=True, only inputs, the target, outputs with
    no consumer and kept nodes (Node.keep) hold their values after a run;
    other buffers are reused.
    """

    _p = None

    def __init__(self, graph, target, batch, train, keep):
        _graph(graph)
        L = _L()
        flags = (PLAN_TRAIN if train else 0) | (PLAN_KEEP if keep else 0)
        tp = graph._node(target) if target is not None else None
        self.graph = graph
        self.target = target
        self.batch = operator.index(batch)
        self._free = L.nb_plan_free
        self._p = _check_ptr(L.nb_plan_create(graph._p, tp, self.batch, flags))
        self._training = bool(train)
        self._nnodes = len(graph)

    def __del__(self):
        p, self._p = self._p, None
        if p:
            self._free(p)

    def __repr__(self):
        return "<nabla.Plan batch %d, %d bytes%s>" % (self.batch, self.memory, ", training" if self._training else "")

    def _nodep(self, node):
        if isinstance(node, str):
            n = self.graph.find(node)
            if n is None:
                raise KeyError("no node named %r in the graph" % node)
            node = n
        return self.graph._node(node)

    def _readable(self, node):
        p = self._nodep(node)
        if len(self.graph) != self._nnodes:
            raise NablaError("plan: the graph changed after this plan was built; create a new plan",
                             "bad state", 4)
        if _L().nb_plan_shape(self._p, p, _lib.INT64_DIMS()) < 0:
            raise ValueError("node %r is not in this plan's graph" % (node,))
        return p

    def set_input(self, node, values):
        """Copies values (any shape, exactly the input's element count in this plan) into an input.

        node: an input Node (or its name).
        """
        p = self._nodep(node)
        a = _f32(values)
        _check(_L().nb_plan_set_input(self._p, p, a.ctypes.data, a.size))

    def forward(self):
        """Runs every node forward."""
        _check(_L().nb_plan_forward(self._p))

    def backward(self, seed=None):
        """Backpropagation from the target, ADDING into parameter gradients (see Graph.zero_grad).

        seed: d(target), an array of the target's element count, or None for all ones.
        """
        L = _L()
        if seed is None or self.target is None:
            _check(L.nb_plan_backward(self._p, None))
            return
        a = _f32(seed)
        n = ctypes.c_size_t()
        L.nb_plan_data(self._p, self.target._p, ctypes.byref(n))
        if a.size != n.value:
            raise ValueError("backward: seed has %d values, the target %s has %d"
                             % (a.size, self.shape(self.target), n.value))
        _check(L.nb_plan_backward(self._p, a.ctypes.data))

    def _copy(self, fn, node):
        p = self._readable(node)
        n = ctypes.c_size_t()
        addr = fn(self._p, p, ctypes.byref(n))
        if not addr:
            return None
        return _copy_floats(addr, n.value).reshape(self.shape(node))

    def value(self, node):
        """A numpy copy of node's value in this plan (concrete shape), or None if it has no buffer."""
        return self._copy(_L().nb_plan_data, node)

    def grad(self, node):
        """A numpy copy of node's gradient in this plan, or None if it has none."""
        return self._copy(_L().nb_plan_grad, node)

    def shape(self, node):
        """node's concrete shape in this plan (batch axes resolved), a tuple."""
        d = _lib.INT64_DIMS()
        nd = _L().nb_plan_shape(self._p, self._nodep(node), d)
        if nd < 0:
            raise ValueError("node %r is not in this plan's graph" % (node,))
        return tuple(int(d[i]) for i in range(nd))

    @property
    def training(self):
        """Training mode (dropout, batch norm) versus evaluation; settable."""
        return self._training

    @training.setter
    def training(self, on):
        _L().nb_plan_set_training(self._p, 1 if on else 0)
        self._training = bool(on)

    def seed(self, n):
        """Seeds the plan's own random generator (dropout masks)."""
        _L().nb_plan_seed(self._p, int(n) & 0xFFFFFFFFFFFFFFFF)

    @property
    def memory(self):
        """Bytes of activation, gradient and workspace memory this plan holds."""
        return int(_L().nb_plan_memory(self._p))


# ---------------------------------------------------------------------------
# gradient check


def gradcheck(g, out, eps=0, rtol=0, atol=0, batch=1, seed=0, inputs=None):
    """Checks every parameter gradient of out against central finite differences (nb_gradcheck).

    eps, rtol, atol: 0 means nabla's defaults (1e-2, 1e-2, 1e-3). batch: the
    plan's batch size. seed: the random weighting of out. inputs: optional
    {input Node or name: array} copied into the check's own plan (needed for
    graphs with BATCH inputs; otherwise inputs read zeros).
    Returns dict(checked, failed, max_abs_err, max_rel_err, worst). Raises
    NablaError (nabla's message, status "gradient mismatch") when an element
    disagrees, with the same dict as err.report.
    """
    L = _L()
    _graph(g)
    fills = []
    for node, values in (inputs or {}).items():
        if isinstance(node, str):
            found = g.find(node)
            if found is None:
                raise KeyError("no node named %r in the graph" % node)
            node = found
        fills.append((g._node(node), _f32(values)))
    caught = []

    def fill(plan, user):
        try:
            for p, a in fills:
                st = L.nb_plan_set_input(plan, p, a.ctypes.data, a.size)
                if st != 0:
                    return st
            return 0
        except BaseException as e:  # never let an exception cross the C frame
            caught.append(e)
            return 1

    cb = _lib.FILL_INPUTS(fill) if fills else _lib.FILL_INPUTS()
    opts = _lib.GradcheckOpts(float(eps), float(rtol), float(atol), operator.index(batch),
                              int(seed) & 0xFFFFFFFFFFFFFFFF, cb, None)
    rep = _lib.GradcheckReport()
    st = L.nb_gradcheck(g._p, g._node(out), ctypes.byref(opts), ctypes.byref(rep))
    if caught:
        raise caught[0]
    report = {"checked": int(rep.checked), "failed": int(rep.failed),
              "max_abs_err": float(rep.max_abs_err), "max_rel_err": float(rep.max_rel_err),
              "worst": _str(rep.worst)}
    if st != 0:
        raise NablaError(_str(L.nb_last_error()), _status_name(st), st, report)
    return report


# ---------------------------------------------------------------------------
# optimizers


class _Optimizer:
    """Common part of the optimizers: step, lr, steps, state buffers. Keeps its Graph alive."""

    _p = None

    def _create(self, graph, fn, opts):
        _graph(graph)
        L = _L()
        self.graph = graph
        self._free = L.nb_optim_free
        self._p = _check_ptr(fn(graph._p, ctypes.byref(opts)))
        self._numel = int(L.nb_graph_param_numel(graph._p))
        self._params = graph.params()

    def __del__(self):
        p, self._p = self._p, None
        if p:
            self._free(p)

    def __repr__(self):
        return "<nabla.%s lr %g, %d steps>" % (type(self).__name__, self.lr, self.steps)

    def step(self):
        """One update of every parameter from the current gradients (does not zero them)."""
        _check(_L().nb_optim_step(self._p))

    @property
    def name(self):
        """"sgd", "adam", "adamw" or "rmsprop"."""
        return _str(_L().nb_optim_name(self._p))

    @property
    def lr(self):
        """The learning rate of the next steps; settable."""
        return float(_L().nb_optim_lr(self._p))

    @lr.setter
    def lr(self, v):
        _L().nb_optim_set_lr(self._p, float(v))

    @property
    def steps(self):
        """Updates done so far (torch's state "step"); settable to resume a run."""
        return int(_L().nb_optim_steps(self._p))

    @steps.setter
    def steps(self, n):
        _L().nb_optim_set_steps(self._p, operator.index(n))

    @property
    def state_names(self):
        """Names of the state buffers, in torch's state-dict order (e.g. ["exp_avg", "exp_avg_sq"])."""
        L = _L()
        return [_str(L.nb_optim_state_name(self._p, i)) for i in range(L.nb_optim_state_count(self._p))]

    def state(self, name, param=None):
        """A numpy copy of state buffer name.

        param None: the whole buffer, flat, laid out like the parameter block
        (parameters in creation order). param (a parameter Node or its name):
        that parameter's part, shaped like it.
        """
        names = self.state_names
        if name not in names:
            raise KeyError("%s has no state buffer %r (it has %s)" % (self.name, name, names))
        addr = _check_ptr(_L().nb_optim_state(self._p, names.index(name)))
        flat = _copy_floats(addr, self._numel)
        if param is None:
            return flat
        off = 0
        for p in self._params:
            shape = p.shape
            n = int(np.prod(shape, dtype=np.int64))
            if p == param or p.name == param:
                return flat[off:off + n].reshape(shape)
            off += n
        raise KeyError("%r is not a parameter this optimizer updates" % (param,))


class SGD(_Optimizer):
    """torch.optim.SGD over every parameter of graph (nb_sgd_create). Keeps graph alive."""

    def __init__(self, graph, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        self._create(graph, _L().nb_sgd_create,
                     _lib.SGDOpts(float(lr), float(momentum), float(dampening), float(weight_decay),
                                  1 if nesterov else 0))


class Adam(_Optimizer):
    """torch.optim.Adam over every parameter of graph (nb_adam_create). Keeps graph alive."""

    def __init__(self, graph, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        self._create(graph, _L().nb_adam_create,
                     _lib.AdamOpts(float(lr), float(betas[0]), float(betas[1]), float(eps),
                                   float(weight_decay), 1 if amsgrad else 0))


class AdamW(_Optimizer):
    """torch.optim.AdamW (decoupled weight decay) over every parameter of graph. Keeps graph alive."""

    def __init__(self, graph, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        self._create(graph, _L().nb_adamw_create,
                     _lib.AdamOpts(float(lr), float(betas[0]), float(betas[1]), float(eps),
                                   float(weight_decay), 1 if amsgrad else 0))


class RMSprop(_Optimizer):
    """torch.optim.RMSprop over every parameter of graph (nb_rmsprop_create). Keeps graph alive."""

    def __init__(self, graph, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        self._create(graph, _L().nb_rmsprop_create,
                     _lib.RMSpropOpts(float(lr), float(alpha), float(eps), float(weight_decay),
                                      float(momentum), 1 if centered else 0))


def clip_grad_norm(g, max_norm):
    """Scales every parameter gradient of g so their global L2 norm is at most max_norm
    (torch.nn.utils.clip_grad_norm_); returns the norm before clipping (math.inf: only measure)."""
    total = float(_L().nb_clip_grad_norm(_graph(g)._p, float(max_norm)))
    if total == -1.0:
        _raise()
    return total


# ---------------------------------------------------------------------------
# models and checkpoints


class Model:
    """A network read from a spec (.nn text, docs/model-spec.md) or a checkpoint (nb_model).

    Made by Model.from_text, Model.from_file or Model.load; freed when
    collected. m.graph borrows the model's graph (it keeps the Model alive).
    """

    _p = None

    def __init__(self, ptr):
        """Wraps and owns an nb_model * (use the class methods instead)."""
        self._free = _L().nb_model_free
        self._p = _check_ptr(ptr)

    def __del__(self):
        p, self._p = self._p, None
        if p:
            self._free(p)

    def __repr__(self):
        return "<nabla.Model %s -> %d outputs>" % (self.input_shape, self.output_size)

    @classmethod
    def from_text(cls, text, seed=0, source="<spec>"):
        """Builds a model from spec text; parameters initialised from seed; source names the text in errors."""
        return cls(_L().nb_model_from_text(_encode(text), _encode(source), int(seed) & 0xFFFFFFFFFFFFFFFF))

    @classmethod
    def from_file(cls, path, seed=0):
        """Builds a model from a spec file."""
        return cls(_L().nb_model_from_file(_path(path), int(seed) & 0xFFFFFFFFFFFFFFFF))

    @classmethod
    def load(cls, path):
        """Rebuilds a model from a checkpoint's spec and loads its weights and buffers (nb_checkpoint_load)."""
        return cls(_L().nb_checkpoint_load(_path(path)))

    @property
    def graph(self):
        """The model's Graph (borrowed: the model owns and frees it; the Graph keeps the model alive)."""
        return Graph._borrow(_L().nb_model_graph(self._p), self)

    def _n(self, fn):
        ptr = fn(self._p)
        return Node(self.graph, ptr) if ptr else None

    @property
    def input(self):
        """The input node, [BATCH, input shape...]."""
        return self._n(_L().nb_model_input)

    @property
    def target(self):
        """The target node: labels [BATCH] or regression targets [BATCH, ...]."""
        return self._n(_L().nb_model_target)

    @property
    def output(self):
        """The last layer's output node (logits)."""
        return self._n(_L().nb_model_output)

    @property
    def loss(self):
        """The 0-d loss node."""
        return self._n(_L().nb_model_loss)

    @property
    def is_classifier(self):
        """True when the loss takes class labels."""
        return bool(_L().nb_model_is_classifier(self._p))

    @property
    def spec(self):
        """The spec text the model was read from."""
        return _str(_L().nb_model_spec(self._p))

    @property
    def input_shape(self):
        """Input shape of one sample (tuple, no batch axis)."""
        d = _lib.INT64_DIMS()
        nd = _L().nb_model_input_shape(self._p, d)
        return tuple(int(d[i]) for i in range(nd))

    @property
    def output_size(self):
        """Floats per sample of the output."""
        return int(_L().nb_model_output_size(self._p))

    @property
    def layers(self):
        """One dict per layer: kind, index (nn.Sequential index), line, shape (per sample), params."""
        L = _L()
        out = []
        for i in range(L.nb_model_layer_count(self._p)):
            info = _lib.LayerInfo()
            _check(L.nb_model_layer(self._p, i, ctypes.byref(info)))
            out.append({"kind": _str(info.kind), "index": info.index, "line": info.line,
                        "shape": tuple(int(info.shape[k]) for k in range(info.ndim)),
                        "params": int(info.params)})
        return out

    def init(self, seed):
        """Re-initialises every parameter and buffer from seed."""
        _L().nb_model_init(self._p, int(seed) & 0xFFFFFFFFFFFFFFFF)

    def predict(self, x):
        """Outputs of the last layer (no softmax) for x [n, *input_shape] (or [n, input size]) -> [n, output_size]."""
        a = _f32(x)
        size = int(np.prod(self.input_shape, dtype=np.int64))
        if a.ndim == 0 or a.size != a.shape[0] * size:
            raise ValueError("predict: x has shape %s, expected [n, %s]"
                             % (a.shape, ", ".join(str(d) for d in self.input_shape)))
        n = a.shape[0]
        out = np.empty((n, self.output_size), dtype=_F32)
        _check(_L().nb_model_predict(self._p, a.ctypes.data, n, out.ctypes.data))
        return out

    def save(self, path, extra=None):
        """Writes a checkpoint (safetensors, atomically) of the weights and buffers, without
        training state. extra: a dict of metadata strings (keys must not be nabla's own)."""
        arr = None
        if extra:
            items = []
            for k, v in extra.items():
                items += [_encode(str(k)), _encode(str(v))]
            arr = (ctypes.c_char_p * (len(items) + 1))(*items, None)
        _check(_L().nb_checkpoint_save(_path(path), self._p, None, arr))


# ---------------------------------------------------------------------------
# data sets


class Dataset:
    """Samples (float32 features of any shape) with a target each (nb_dataset); freed when collected.

    features: a numpy copy [n, *shape]; targets: a copy, [n] class indices (as
    floats) for classification, [n, target_size] for regression; classes: the
    number of classes (0 for regression); shape: one sample's feature shape.
    """

    _p = None

    def __init__(self, ptr):
        """Wraps and owns an nb_dataset * (use the class methods instead)."""
        self._free = _L().nb_dataset_free
        self._p = _check_ptr(ptr)

    def __del__(self):
        p, self._p = self._p, None
        if p:
            self._free(p)

    def __len__(self):
        return int(_L().nb_dataset_count(self._p))

    def __repr__(self):
        return "<nabla.Dataset %d samples of %s, %d classes>" % (len(self), self.shape, self.classes)

    @classmethod
    def synthetic(cls, name, n=0, seed=0):
        """A built-in set: "xor", "spiral", "circles" or "sine"; n samples (0: its default size)."""
        return cls(_L().nb_dataset_synthetic(_encode(name), operator.index(n), int(seed) & 0xFFFFFFFFFFFFFFFF))

    @classmethod
    def load_csv(cls, path, label_column=-1, header=-1, regression=False):
        """A numeric CSV file, one sample a row. label_column: 0-based, -1 the last;
        header: 1 yes, 0 no, -1 detect; regression: real-valued targets instead of classes."""
        opts = _lib.CsvOpts(operator.index(header), operator.index(label_column), 1 if regression else 0, b"\0")
        return cls(_L().nb_dataset_load_csv(_path(path), ctypes.byref(opts)))

    @classmethod
    def load_idx_dir(cls, dir, split):
        """IDX files (MNIST, Fashion-MNIST) in dir; split "train" or "test"."""
        return cls(_L().nb_dataset_load_idx_dir(_path(dir), _encode(split)))

    @property
    def shape(self):
        """Feature shape of one sample (tuple)."""
        d = _lib.INT64_DIMS()
        nd = _L().nb_dataset_shape(self._p, d)
        return tuple(int(d[i]) for i in range(nd))

    @property
    def classes(self):
        """Number of classes; 0 for regression."""
        return int(_L().nb_dataset_classes(self._p))

    @property
    def features(self):
        """A numpy copy of every sample's features, [n, *shape]."""
        L = _L()
        n = len(self)
        flat = _copy_floats(L.nb_dataset_features(self._p), n * int(L.nb_dataset_sample_size(self._p)))
        return flat.reshape((n,) + self.shape)

    @property
    def targets(self):
        """A numpy copy of the targets: [n] for classification, [n, target_size] for regression."""
        L = _L()
        n, ts = len(self), int(L.nb_dataset_target_size(self._p))
        flat = _copy_floats(L.nb_dataset_targets(self._p), n * ts)
        return flat if self.classes > 0 else flat.reshape(n, ts)
