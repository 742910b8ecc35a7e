#!/usr/bin/env python3
"""The Python binding (python/nabla, ctypes over libnabla.so) works as documented.

    PYTHONPATH=python NABLA_LIB=build/libnabla.so python3 tests/torch/test_python_binding.py

Needs only numpy (no torch). Checks, through the binding: training XOR to a
small loss, nabla's own error messages and statuses, parameter values and
gradients in and out, plan shapes with BATCH, gradcheck passing and failing
(report fields), optimizer state, models from spec text with predict and a
checkpoint round trip, synthetic data sets, object lifetimes, and runs the
example of docs/python.md as printed.
Exit status: 0 passed, 1 failed, 77 numpy unavailable (outside CI).
"""
import gc
import json
import os
import re
import struct
import sys
import tempfile
import traceback

try:
    import numpy as np
except ImportError as e:  # depends on the machine
    print("test_python_binding: numpy not available (%s)" % e)
    sys.exit(1 if os.environ.get("CI", "") not in ("", "0", "false") else 77)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
import nabla  # noqa: E402

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def raises(fn, exc=nabla.NablaError):
    try:
        fn()
    except exc as e:
        return e
    raise AssertionError("expected %s" % exc.__name__)


def test_xor_trains():
    g = nabla.Graph()
    x = g.input("x", (nabla.BATCH, 2))
    y = g.input("y", (nabla.BATCH, 1))
    rng = np.random.RandomState(42)
    w1 = g.param("w1", (2, 8), value=rng.randn(2, 8))
    b1 = g.param("b1", (8,))
    w2 = g.param("w2", (8, 1), value=rng.randn(8, 1))
    b2 = g.param("b2", (1,))
    logit = g.add(g.matmul(g.tanh(g.add(g.matmul(x, w1), b1)), w2), b2).keep()
    loss = g.bce_with_logits(logit, y)
    plan = g.plan(loss, batch=4)
    assert plan.training and plan.memory > 0
    opt = nabla.SGD(g, lr=0.5, momentum=0.9)
    plan.set_input(x, XOR_X)
    plan.set_input("y", XOR_Y)  # by name too
    first = None
    for _ in range(300):
        g.zero_grad()
        plan.forward()
        if first is None:
            first = float(plan.value(loss))
        plan.backward()
        opt.step()
    plan.forward()
    final = float(plan.value(loss))
    assert final < 0.01 < first, (first, final)
    z = plan.value(logit)
    assert z.shape == (4, 1)
    assert ((z > 0).astype(np.float32) == XOR_Y).all(), z
    assert opt.steps == 300


def test_errors_are_nablas():
    g = nabla.Graph()
    a = g.input("a", (nabla.BATCH, 3))
    b = g.param("b", (4,))
    e = raises(lambda: g.add(a, b))
    assert e.status == "shape error" and e.code == 2, (e.status, e.code)
    assert e.message.startswith("add:") and "[1,3]" in e.message and "[4]" in e.message, e.message
    assert str(e) == e.message
    # errors are sticky: a later builder reports the first error
    e2 = raises(lambda: g.relu(a))
    assert e2.message == e.message and e2.status == "shape error"
    assert g.status == "shape error" and g.error == e.message
    e3 = raises(lambda: g.plan())
    assert "the graph has a build error" in e3.message and e.message in e3.message, e3.message

    g = nabla.Graph()
    x = g.input("x", (2, 3))
    w = g.param("w", (4, 5))
    e = raises(lambda: g.matmul(x, w))
    assert e.message.startswith("matmul:") and "[2,3]" in e.message and "[4,5]" in e.message, e.message

    g = nabla.Graph()
    g.param("w", (2,))
    e = raises(lambda: g.param("w", (2,)))
    assert "'w'" in e.message, e.message
    e = raises(lambda: nabla.Graph().dropout(nabla.Graph().input("x", (2,)), 0.5))
    assert "another graph" in e.message, e.message
    e = raises(lambda: nabla.Graph().dropout(None, 0.5), TypeError)

    # C-side size check of plan inputs
    g = nabla.Graph()
    x = g.input("x", (nabla.BATCH, 3))
    w = g.param("w", (3,))
    loss = g.sum(g.mul(x, w))
    p = g.plan(loss, batch=2)
    e = raises(lambda: p.set_input(x, np.zeros(5)))
    assert e.status == "shape error" and "takes 6 values, got 5" in e.message, e.message
    e = raises(lambda: g.plan(loss, batch=0))
    assert "batch size 0" in e.message and e.status is None, (e.message, e.status)
    # a plan made stale by a new node
    g.param("v", (1000,))
    e = raises(lambda: p.forward())
    assert e.status == "bad state" and "changed" in e.message, e.message
    raises(lambda: p.value(w))
    # optimizer options are checked by nabla
    e = raises(lambda: nabla.Adam(g, betas=(0.9, 1.0)))
    assert e.message == "adam: beta2 1 must be in [0, 1)", e.message
    e = raises(lambda: nabla.clip_grad_norm(g, -1.0))
    assert e.message


def test_values_and_grads():
    g = nabla.Graph()
    w = g.param("w", (2, 3), value=np.arange(6).reshape(2, 3))
    c = g.const("c", (3,), value=[1.0, 2.0, 3.0])
    s = g.scalar(2.5)
    assert w.value.dtype == np.float32 and (w.value == np.arange(6).reshape(2, 3)).all()
    assert (c.value == [1, 2, 3]).all() and s.value.shape == () and float(s.value) == 2.5
    w.value = np.ones((2, 3)) * 0.5
    assert (w.value == 0.5).all()
    e = raises(lambda: setattr(w, "value", np.ones(6)), ValueError)
    assert "'w'" in str(e) and "(2, 3)" in str(e), str(e)
    e = raises(lambda: g.param("v", (3,), value=np.ones(4)), ValueError)
    assert "'v'" in str(e)
    assert g.find("v") is None  # refused before anything was added
    c.value = [4, 5, 6]
    t = g.const("t", (), value=np.array(3.0))  # 0-d stays 0-d
    assert t.value.shape == () and float(t.value) == 3.0
    t.value = np.float64(4.0)
    assert float(t.value) == 4.0
    u = g.param("u", (3, 2), value=np.arange(6.0).reshape(2, 3).T)  # not C-contiguous
    assert (u.value == np.arange(6.0).reshape(2, 3).T).all()
    assert (c.value == [4, 5, 6]).all()
    assert w.grad.shape == (2, 3) and (w.grad == 0).all() and c.grad is None
    # loss = sum(w * c * 2.5): dloss/dw = c * 2.5 in each row
    loss = g.sum(g.mul(g.mul(w, c), s))
    p = g.plan(loss)
    p.forward()
    assert abs(float(p.value(loss)) - 0.5 * 2.5 * 15 * 2) < 1e-5
    p.backward()
    assert np.allclose(w.grad, np.tile([10.0, 12.5, 15.0], (2, 1)))
    assert np.allclose(p.grad(w), w.grad)
    p.backward()  # adds
    assert np.allclose(w.grad, 2 * np.tile([10.0, 12.5, 15.0], (2, 1)))
    g.zero_grad()
    assert (w.grad == 0).all()
    p.backward(seed=np.array(2.0))  # seeded
    assert np.allclose(w.grad, 2 * np.tile([10.0, 12.5, 15.0], (2, 1)))
    raises(lambda: p.backward(seed=np.ones(2)), ValueError)
    # node properties
    assert w.name == "w" and w.op == "param" and w.is_param and w.requires_grad
    assert c.op == "const" and not c.requires_grad and loss.requires_grad
    assert g.find("w") == w and hash(g.find("w")) == hash(w) and w.id == 0
    assert [n.name for n in g.params()] == ["w", "u"]
    assert len(g) == len(g.nodes()) == 8 and g.nodes()[-1] == loss
    assert loss.inputs[0].op == "mul" and loss.shape == ()
    assert g.status == "ok" and g.error == ""


def test_plan_shapes_with_batch():
    g = nabla.Graph()
    x = g.input("x", (nabla.BATCH, 3, 4))
    w = g.param("w", (5, 4))
    h = g.linear(x, w)
    f = g.flatten(h)
    s = g.slice(f, 1, 2)  # to the end
    m = g.mean(s, axes=1, keepdims=True)
    assert x.shape == (nabla.BATCH, 3, 4) and h.shape == (nabla.BATCH, 3, 5)
    assert f.shape == (nabla.BATCH, 15) and s.shape == (nabla.BATCH, 13) and m.shape == (nabla.BATCH, 1)
    p = g.plan(batch=7)  # forward only
    assert not p.training and p.shape(x) == (7, 3, 4) and p.shape(h) == (7, 3, 5)
    assert p.shape(f) == (7, 15) and p.shape(m) == (7, 1)
    xv = np.random.RandomState(0).randn(7, 3, 4).astype(np.float32)
    wv = np.random.RandomState(1).randn(5, 4).astype(np.float32)
    w.value = wv
    p.set_input(x, xv)
    p.forward()
    want = (xv @ wv.T).reshape(7, 15)[:, 2:].mean(axis=1, keepdims=True)
    assert np.allclose(p.value(m), want, atol=1e-5)
    assert p.grad(m) is None  # no gradients in a forward-only plan
    e = raises(lambda: p.backward())
    assert "without a target" in e.message
    p.training = True
    assert p.training
    p.training = False
    p.seed(3)
    # keep=True: every value readable
    pk = g.plan(batch=2, keep=True)
    pk.set_input(x, xv[:2])
    pk.forward()
    assert np.allclose(pk.value(h), xv[:2] @ wv.T, atol=1e-5)
    # a node of another graph
    other = nabla.Graph().input("o", (1,))
    raises(lambda: p.value(other), ValueError)
    # more ops with their keyword arguments, shape-checked at build time
    g = nabla.Graph()
    img = g.input("img", (nabla.BATCH, 2, 8, 8))
    k = g.param("k", (4, 1, 3, 3))
    kb = g.param("kb", (4,))
    y = g.conv2d(img, k, kb, stride=(1, 2), padding=1, groups=2)
    assert y.shape == (nabla.BATCH, 4, 8, 4), y.shape
    assert g.max_pool2d(y, 2).shape == (nabla.BATCH, 4, 4, 2)
    assert g.avg_pool2d(y, (2, 2), stride=1, padding=(1, 0)).shape == (nabla.BATCH, 4, 9, 3)
    assert g.permute(y, (0, 2, 3, 1)).shape == (nabla.BATCH, 8, 4, 4)
    assert g.transpose(y, 1, -1).shape == (nabla.BATCH, 4, 8, 4)
    assert g.reshape(y, (0, -1)).shape == (nabla.BATCH, 128)
    assert g.concat([y, y], 1).shape == (nabla.BATCH, 8, 8, 4)
    assert g.sum(y).shape == () and g.max(y, axes=(2, 3)).shape == (nabla.BATCH, 4)
    assert g.gelu(y, approximate="tanh").op == "gelu"
    raises(lambda: g.gelu(y, approximate="erf"), ValueError)
    for n in (g.leaky_relu(y), g.elu(y, 0.5), g.softplus(y, beta=2.0), g.sigmoid(y), g.abs(y),
              g.pow(y, 2), g.scale(y, 3), g.add_scalar(y, 1), g.neg(y), g.exp(y), g.softmax(y, 1),
              g.log_softmax(y, -1), g.mul(y, 2.0), g.sub(1, y), g.div(y, g.scalar(2))):
        assert n.shape == y.shape, (n, y.shape)
    rm, rv, nbt = g.const("rm", (4,)), g.const("rv", (4,), np.ones(4)), g.const("nbt", ())
    bn = g.batchnorm(y, g.param("bg", (4,), np.ones(4)), g.param("bb", (4,)), rm, rv, nbt, momentum=0.2)
    assert bn.shape == y.shape
    assert g.layernorm(y, 2, eps=1e-3).shape == y.shape
    ids = g.input("ids", (nabla.BATCH, 5))
    assert g.embedding(ids, g.param("emb", (10, 3))).shape == (nabla.BATCH, 5, 3)
    logits = g.input("logits", (nabla.BATCH, 3))
    labels = g.input("labels", (nabla.BATCH,))
    for n in (g.softmax_cross_entropy(logits, labels), g.softmax_cross_entropy(logits, labels, smoothing=0.1),
              g.nll(logits, labels), g.mse(logits, logits), g.l1(logits, logits),
              g.huber(logits, logits, delta=0.5), g.bce_with_logits(logits, logits),
              g.dropout(logits, 0.3)):
        assert n.shape in ((), (nabla.BATCH, 3)), n


def test_gradcheck():
    g = nabla.Graph()
    x = g.input("x", (nabla.BATCH, 3))
    w = g.param("w", (4, 3), value=np.random.RandomState(0).randn(4, 3) * 0.5)
    b = g.param("b", (4,), value=[0.1, -0.2, 0.3, 0.0])
    out = g.tanh(g.linear(x, w, b))
    xv = np.random.RandomState(1).randn(2, 3)
    r = nabla.gradcheck(g, out, batch=2, inputs={x: xv}, seed=5)
    assert r["checked"] == 16 and r["failed"] == 0, r
    assert 0 <= r["max_abs_err"] < 1e-2 and r["max_rel_err"] >= 0 and r["worst"].startswith("param '"), r
    r2 = nabla.gradcheck(g, out, batch=2, inputs={"x": xv}, seed=5)
    assert r2 == r  # deterministic
    # a forward difference that is too coarse for exp: (e^(w+h) - e^(w-h)) / 2h = e^w sinh(h)/h
    g = nabla.Graph()
    w = g.param("w", (3,), value=[0.0, 1.0, 2.0])
    out = g.exp(w)
    e = raises(lambda: nabla.gradcheck(g, out, eps=0.5))
    assert e.status == "gradient mismatch", e.status
    assert e.message.startswith("gradcheck of exp: 3 of 3 elements disagree; worst: param 'w' element 2"), e.message
    rep = e.report
    assert rep["checked"] == 3 and rep["failed"] == 3, rep
    assert abs(rep["max_rel_err"] - (1 - 0.5 / np.sinh(0.5))) < 1e-3, rep
    assert rep["worst"] in e.message and rep["max_abs_err"] > 0.2
    # the same check with a small step passes
    assert nabla.gradcheck(g, out, eps=1e-3, rtol=1e-2)["failed"] == 0
    # the caller's gradients are left alone
    assert (w.grad == 0).all()


def test_optimizers():
    def setup():
        g = nabla.Graph()
        w = g.param("w", (3,), value=[1.0, -2.0, 3.0])
        v = g.param("v", (2, 2), value=np.eye(2))
        loss = g.add(g.sum(g.mul(w, w)), g.sum(g.mul(v, v)))
        return g, w, v, g.plan(loss)

    for cls, kw, names in [
        (nabla.SGD, dict(lr=0.1), []),
        (nabla.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), ["momentum_buffer"]),
        (nabla.Adam, dict(), ["exp_avg", "exp_avg_sq"]),
        (nabla.Adam, dict(amsgrad=True), ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]),
        (nabla.AdamW, dict(lr=0.01), ["exp_avg", "exp_avg_sq"]),
        (nabla.RMSprop, dict(momentum=0.5, centered=True), ["square_avg", "momentum_buffer", "grad_avg"]),
    ]:
        g, w, v, p = setup()
        opt = cls(g, **kw)
        assert opt.state_names == names, (cls, opt.state_names)
        for _ in range(3):
            g.zero_grad()
            p.forward()
            p.backward()
            opt.step()
        assert opt.steps == 3
        assert (np.abs(w.value) < [1.0, 2.0, 3.0]).all(), (cls, w.value)
        for n in names:
            s = opt.state(n)
            assert s.shape == (7,) and s.dtype == np.float32
            assert opt.state(n, "v").shape == (2, 2) and (opt.state(n, w) == s[:3]).all()
        raises(lambda: opt.state("nope"), KeyError)
    g, w, v, p = setup()
    adam = nabla.Adam(g, lr=0.1)
    assert abs(adam.lr - 0.1) < 1e-7 and adam.name == "adam"
    adam.lr = 0.05
    assert abs(adam.lr - 0.05) < 1e-7
    g.zero_grad()
    p.forward()
    p.backward()
    # Adam's first step: m = 0.1 g, v = 0.001 g^2; exp_avg is (1 - beta1) g
    assert (adam.state("exp_avg") == 0).all()  # not stepped yet
    adam.step()
    assert np.allclose(adam.state("exp_avg", w), 0.1 * 2 * np.array([1.0, -2.0, 3.0]), rtol=1e-6)
    # clip_grad_norm: gradients are 2w, 2v
    total = nabla.clip_grad_norm(g, float("inf"))
    assert abs(total - 2 * np.sqrt(1 + 4 + 9 + 2)) < 1e-4, total
    nabla.clip_grad_norm(g, 1.0)
    assert abs(np.sqrt((w.grad ** 2).sum() + (v.grad ** 2).sum()) - 1.0) < 1e-4


SPEC = """# a small classifier
input 4
linear 8
relu
linear 3
loss softmax_cross_entropy
"""


def test_model_roundtrip():
    m = nabla.Model.from_text(SPEC, seed=7)
    assert m.is_classifier and m.spec == SPEC
    assert m.input.shape == (nabla.BATCH, 4) and m.output.shape == (nabla.BATCH, 3)
    assert m.loss.shape == () and m.target.shape == (nabla.BATCH,)
    assert m.input_shape == (4,) and m.output_size == 3
    assert [l["kind"] for l in m.layers] == ["linear", "relu", "linear"]
    g = m.graph
    assert sorted(n.name for n in g.params()) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    w0 = g.find("0.weight").value
    assert w0.shape == (8, 4) and np.abs(w0).max() <= 0.5 and np.abs(w0).max() > 0
    x = np.random.RandomState(3).randn(5, 4).astype(np.float32)
    y = m.predict(x)
    assert y.shape == (5, 3)
    # the same as the graph computes by hand
    W0, B0 = g.find("0.weight").value, g.find("0.bias").value
    W2, B2 = g.find("2.weight").value, g.find("2.bias").value
    assert np.allclose(y, np.maximum(x @ W0.T + B0, 0) @ W2.T + B2, atol=1e-5)
    raises(lambda: m.predict(np.zeros((2, 5))), ValueError)
    # the same seed, the same weights; init re-seeds
    assert (nabla.Model.from_text(SPEC, seed=7).graph.find("0.weight").value == w0).all()
    m.init(8)
    assert not (g.find("0.weight").value == w0).all()
    m.init(7)
    assert (g.find("0.weight").value == w0).all()
    # train a few steps through the model's graph with the binding's own plan
    plan = g.plan(m.loss, batch=5)
    opt = nabla.Adam(g, lr=0.01)
    plan.set_input(m.input, x)
    plan.set_input(m.target, [0, 1, 2, 1, 0])
    for _ in range(5):
        g.zero_grad()
        plan.forward()
        plan.backward()
        opt.step()
    y = m.predict(x)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.safetensors")
        m.save(path, extra={"note": "python", "n": 3})
        m2 = nabla.Model.load(path)
        assert m2.spec == SPEC and (m2.predict(x) == y).all()
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            meta = json.loads(f.read(n))["__metadata__"]
        assert meta["note"] == "python" and meta["n"] == "3", meta
        e = raises(lambda: m.save(path, extra={"spec": "x"}))
        assert "metadata key 'spec' is nabla's own" in e.message, e.message
        e = raises(lambda: nabla.Model.load(os.path.join(d, "missing.safetensors")))
        assert "missing.safetensors" in e.message, e.message
        specf = os.path.join(d, "net.nn")
        with open(specf, "w") as f:
            f.write(SPEC.replace("linear 3", "linear 3 bias=false"))
        m3 = nabla.Model.from_file(specf, seed=1)
        assert len(m3.graph.params()) == 3
    e = raises(lambda: nabla.Model.from_text("input 4\nlinear\nloss mse\n", source="bad.nn"))
    assert e.message.startswith("bad.nn:2"), e.message
    # the model's graph outlives the Model object that made it
    g = nabla.Model.from_text(SPEC, seed=7).graph
    gc.collect()
    assert (g.find("0.weight").value == w0).all()


def test_dataset():
    d = nabla.Dataset.synthetic("spiral", n=90, seed=1)
    assert len(d) == 90 and d.classes == 3 and d.shape == (2,)
    f, t = d.features, d.targets
    assert f.shape == (90, 2) and f.dtype == np.float32 and t.shape == (90,)
    assert set(np.unique(t)) == {0.0, 1.0, 2.0}
    assert (nabla.Dataset.synthetic("spiral", n=90, seed=1).features == f).all()
    s = nabla.Dataset.synthetic("sine", n=20)
    assert s.classes == 0 and s.targets.shape == (20, 1)
    e = raises(lambda: nabla.Dataset.synthetic("moons"))
    assert "moons" in e.message, e.message
    with tempfile.TemporaryDirectory() as dd:
        path = os.path.join(dd, "d.csv")
        with open(path, "w") as fh:
            fh.write("a,b,label\n1,2,0\n3,4,1\n5,6,1\n")
        c = nabla.Dataset.load_csv(path)
        assert len(c) == 3 and c.classes == 2 and (c.features == [[1, 2], [3, 4], [5, 6]]).all()
        r = nabla.Dataset.load_csv(path, label_column=0, regression=True)
        assert r.classes == 0 and (r.targets.ravel() == [1, 3, 5]).all()
        with open(path, "a") as fh:
            fh.write("7,x,0\n")
        e = raises(lambda: nabla.Dataset.load_csv(path))
        assert re.search(r"d\.csv:5: column 2", e.message), e.message
        raises(lambda: nabla.Dataset.load_idx_dir(dd, "train"))


def test_lifetimes():
    # a plan, an optimizer and nodes keep the graph alive; freeing in any order is safe
    def make():
        g = nabla.Graph()
        w = g.param("w", (3,), value=[1, 2, 3])
        loss = g.sum(g.mul(w, w))
        return g.plan(loss), nabla.SGD(g, lr=0.1), w

    p, opt, w = make()
    gc.collect()
    p.forward()
    p.backward()
    opt.step()
    assert np.allclose(w.value, [0.8, 1.6, 2.4])
    del p
    gc.collect()
    opt.step()
    del opt, w
    gc.collect()
    # many graphs and models made and dropped
    for i in range(50):
        make()
        nabla.Model.from_text(SPEC, seed=i).predict(np.zeros((1, 4)))
    gc.collect()


def test_docs_example():
    with open(os.path.join(ROOT, "docs", "python.md")) as f:
        text = f.read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "docs/python.md has no ```python block"
    ns = {"__name__": "__docs_example__"}
    exec(compile(blocks[0], "docs/python.md", "exec"), ns)
    assert ns["final"] < 0.01, ns["final"]


def main():
    print("test_python_binding: library %s, numpy %s" % (nabla.load()._name, np.__version__))
    failed = 0
    tests = [(k, v) for k, v in globals().items() if k.startswith("test_") and callable(v)]
    for name, fn in tests:
        try:
            fn()
            print("ok   %s" % name)
        except Exception:
            failed += 1
            print("FAIL %s" % name)
            traceback.print_exc()
    print("test_python_binding: %d passed, %d failed" % (len(tests) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
