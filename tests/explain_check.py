#!/usr/bin/python3
"""An independent check of `nabla explain`: reads the printed explanation of
the built-in xor and ball examples and recomputes, in float64 with numpy and
from nothing but the printed data, initial weights and learning rate:

  - every forward value, the loss, every gradient (by the chain rule, written
    out here by hand for the two networks), every updated weight and the loss
    after the update, each to the printed precision;
  - every printed line's own arithmetic: "a*b + c*d = e", "tanh(v) = y",
    "0.2408 * 0.2979 = 0.0717   (0.2408 = 0.5958*(1 - 0.5958))",
    "W1[0,0] = 0.5000 - 0.5*0.0182 = 0.4909" evaluate to what they claim,
    within what rounding the printed inputs allows;
  - that nothing is missing: every element of every node, gradient and weight.

usage: explain_check.py path/to/nabla
Exit status 0 when everything agrees, 1 otherwise, 77 (skipped) when numpy is
missing and CI is not set.
"""
import math
import os
import re
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    print("explain_check: numpy is not available")
    sys.exit(1 if os.environ.get("CI", "") not in ("", "0", "false") else 77)

DEC = 4
HALF = 0.5 * 10 ** -DEC      # half a unit in the last printed digit
SLACK = 2e-6                 # float32 arithmetic against float64
NUM = r"-?\d+\.\d+"

failures = []


def fail(msg):
    failures.append(msg)


def near(printed, exact, what):
    tol = HALF + SLACK * max(1.0, abs(exact))
    if not abs(printed - exact) <= tol:
        fail("%s: printed %.6f, recomputed %.8f (tolerance %.1e)" % (what, printed, exact, tol))


def run(nabla, *args):
    out = subprocess.run([nabla, "explain"] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    if out.returncode != 0:
        fail("nabla explain %s exited %d: %s" % (" ".join(args), out.returncode, out.stderr))
    return out.stdout


def sections(text):
    """Splits the first step's text into its parts by their headings."""
    heads = [("data", r"^The data"), ("weights", r"^The weights"), ("forward", r"^1\. Forward pass"),
             ("loss", r"^2\. Loss"), ("backward", r"^3\. Backward pass"), ("update", r"^4\. Update"),
             ("after", r"^5\. After the update"), ("end", r"^(Steps \d|Step 2$|Over \d)")]
    where = {}
    lines = text.split("\n")
    for i, line in enumerate(lines):
        for name, pat in heads:
            if name not in where and re.match(pat, line):
                where[name] = i
    for name, _ in heads[:-1]:
        if name not in where:
            fail("the heading of part '%s' is missing" % name)
    order = sorted(where.items(), key=lambda kv: kv[1])
    out = {}
    for k, (name, start) in enumerate(order):
        end = order[k + 1][1] if k + 1 < len(order) else len(lines)
        out[name] = lines[start + 1:end]
    return out


def index(s):
    """'[1,0]' -> (1, 0); '' -> ()"""
    s = s.strip("[]")
    return tuple(int(v) for v in s.split(",")) if s else ()


def leaves(lines):
    """'x[1,:] = 0.0000 1.0000' rows, 'b1 = 0.1 -0.2' vectors, 'w = 0.5' -> arrays"""
    rows = {}
    for line in lines:
        m = re.match(r"^  (\S+?)(\[[\d,]*,:\])?\s+=((?:\s+%s)+)\s*$" % NUM, line)
        if not m:
            continue
        vals = [float(v) for v in m.group(3).split()]
        rows.setdefault(m.group(1), []).append((m.group(2) is not None, vals))
    out = {}
    for name, rs in rows.items():
        if rs[0][0]:
            out[name] = np.array([r[1] for r in rs], dtype=np.float64)
        else:
            out[name] = np.array(rs[0][1], dtype=np.float64)
    return out


def check_arith(expr, value, what):
    """expr as printed (a*b + c, tanh(v), 1 - y^2, ...) must evaluate to value
    within what the rounding of its printed numbers allows."""
    if not re.fullmatch(r"[0-9.+\-*/() ^a-z]*", expr):
        fail("%s: cannot read '%s'" % (what, expr))
        return
    nums = [abs(float(v)) for v in re.findall(r"\d+\.?\d*", expr)]
    py = expr.replace("^", "**")
    env = {"__builtins__": {}, "tanh": math.tanh, "sigmoid": lambda v: 1 / (1 + math.exp(-v)),
           "exp": math.exp, "log": math.log, "sqrt": math.sqrt}
    try:
        got = eval(py, env)  # noqa: S307 - digits, operators and the names above only
    except Exception as e:  # pragma: no cover
        fail("%s: '%s' does not evaluate: %s" % (what, expr, e))
        return
    tol = HALF * (1 + sum(nums)) + SLACK
    if not abs(got - value) <= tol:
        fail("%s: '%s' evaluates to %.6f, printed %.6f" % (what, expr, got, value))


def element_lines(lines, prefix=""):
    """'    <prefix>name[i,j] = <expr> = <value>[   (<local> = <formula>)][   (the part ...)]'
    -> {(name, idx): (expr, value)}, and checks each line's arithmetic."""
    out = {}
    pat = re.compile(r"^    %s([A-Za-z_][\w.]*)(\[[\d,]+\])?\s+= (.*?) = \s*(%s)(?:\s+\((%s) = (.*?)\))?\s*$"
                     % (re.escape(prefix), NUM, NUM))
    for line in lines:
        m = pat.match(line)
        if not m:
            continue
        name, idx, expr, value = m.group(1), index(m.group(2) or ""), m.group(3), float(m.group(4))
        what = "line '%s'" % line.strip()
        check_arith(expr, value, what)
        if m.group(5):
            check_arith(m.group(6), float(m.group(5)), what)
        out[(name, idx)] = (expr, value)
    return out


TERM = re.compile(r"(\(-?\d+\.\d+\)|-?\d+\.\d+)\s*\*\s*(\(-?\d+\.\d+\)|-?\d+\.\d+)")


def chain(grads, name, shape, pairs):
    """The gradient lines of name show, term by term, local derivative *
    upstream gradient: pairs(idx) gives the exact (local, upstream) list."""
    for idx in np.ndindex(*shape):
        key = (name, tuple(int(i) for i in idx))
        if key not in grads:
            continue   # reported by expect()
        got = [(float(a.strip("()")), float(b.strip("()"))) for a, b in TERM.findall(grads[key][0])]
        want = pairs(idx)
        if len(got) != len(want):
            fail("gradient %s%s: %d terms printed, the chain rule has %d" % (name, list(key[1]), len(got), len(want)))
            continue
        for k, ((gl, gu), (wl, wu)) in enumerate(zip(got, want)):
            near(gl, wl, "gradient %s%s term %d, local derivative" % (name, list(key[1]), k + 1))
            near(gu, wu, "gradient %s%s term %d, upstream gradient" % (name, list(key[1]), k + 1))


def expect(printed, name, arr, what):
    """every element of arr printed as name[idx]"""
    arr = np.asarray(arr, dtype=np.float64)
    for idx in np.ndindex(*arr.shape):
        key = (name, tuple(int(i) for i in idx))
        if key not in printed:
            fail("%s: %s%s is not printed" % (what, name, list(key[1])))
            continue
        near(printed[key][1], float(arr[idx]), "%s %s%s" % (what, name, list(key[1])))


def common(text, lr_default):
    s = sections(text)
    data = leaves(s.get("data", []))
    weights = leaves(s.get("weights", []))
    fwd = element_lines(s.get("forward", []))
    grads = element_lines(s.get("backward", []), "dL/d")
    upd = element_lines(s.get("update", []))
    m = re.search(r"learning rate lr = ([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)", "\n".join(s.get("update", [])))
    lr = float(m.group(1)) if m else None
    if lr != lr_default:
        fail("learning rate: printed %r, expected %r" % (lr, lr_default))
    loss = None
    for line in s.get("loss", []):
        m = re.match(r"^    loss = \((.*)\)/(\d+) = (%s)$" % NUM, line)
        if m:
            loss = float(m.group(3))
            check_arith("(%s)/%s" % (m.group(1), m.group(2)), loss, "the loss line")
    after = None
    for line in s.get("after", []):
        m = re.match(r"^  loss before the step (%s), after (%s)$" % (NUM, NUM), line)
        if m:
            after = (float(m.group(1)), float(m.group(2)))
    if loss is None or after is None:
        fail("the loss or the loss after the update is not printed")
    if after and not "The loss is lower" in text:
        fail("the explanation does not say the loss is lower")
    return data, weights, fwd, grads, upd, lr, loss, after


def check_update(upd, weights, grads, new, lr):
    for name, arr in new.items():
        expect(upd, name, arr, "update")
        old = weights[name].reshape(arr.shape)
        for idx in np.ndindex(*arr.shape):
            key = (name, tuple(int(i) for i in idx))
            if key in upd:
                # the line shows old, lr and the gradient: the printed ones
                want = "%s - %s*" % (("%.4f" % old[idx]).strip(), ("%g" % lr))
                if not upd[key][0].replace("  ", " ").strip().startswith(want):
                    fail("update %s: '%s' should start with '%s'" % (key, upd[key][0], want))


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def check_xor(nabla):
    text = run(nabla, "--example", "xor")
    data, w, fwd, grads, upd, lr, loss, after = common(text, 0.5)
    try:
        x, t = data["x"], data["target"]
        W1, b1, W2, b2 = w["W1"], w["b1"], w["W2"], w["b2"]
    except KeyError as e:
        fail("xor: %s is not printed" % e)
        return
    if x.shape != (4, 2) or t.shape != (4, 1) or W1.shape != (2, 2) or W2.shape != (1, 2):
        fail("xor: unexpected shapes %s %s %s %s" % (x.shape, t.shape, W1.shape, W2.shape))
        return

    def forward(W1, b1, W2, b2):
        z1 = x @ W1.T + b1
        h = np.tanh(z1)
        z2 = h @ W2.T + b2
        y = sigmoid(z2)
        return z1, h, z2, y, np.mean((y - t) ** 2)

    z1, h, z2, y, L = forward(W1, b1, W2, b2)
    for name, arr in (("z1", z1), ("h", h), ("z2", z2), ("y", y)):
        expect(fwd, name, arr, "forward")
    if loss is not None:
        near(loss, L, "the loss")
    # the chain rule, by hand
    dy = 2 * (y - t) / y.size
    dz2 = dy * y * (1 - y)
    dh = dz2 @ W2
    dW2 = dz2.T @ h
    db2 = dz2.sum(axis=0)
    dz1 = dh * (1 - h * h)
    dW1 = dz1.T @ x
    db1 = dz1.sum(axis=0)
    for name, arr in (("y", dy), ("z2", dz2), ("h", dh), ("W2", dW2), ("b2", db2), ("z1", dz1),
                      ("W1", dW1), ("b1", db1)):
        expect(grads, name, arr, "gradient")
    J = range(W2.shape[0])
    N = range(x.shape[0])
    chain(grads, "y", y.shape, lambda i: [(2 * (y[i] - t[i]) / y.size, 1.0)])
    chain(grads, "z2", z2.shape, lambda i: [(y[i] * (1 - y[i]), dy[i])])
    chain(grads, "h", h.shape, lambda i: [(W2[j, i[1]], dz2[i[0], j]) for j in J])
    chain(grads, "W2", W2.shape, lambda i: [(h[n, i[1]], dz2[n, i[0]]) for n in N])
    chain(grads, "b2", b2.shape, lambda i: [(1.0, dz2[n, i[0]]) for n in N])
    chain(grads, "z1", z1.shape, lambda i: [(1 - h[i] ** 2, dh[i])])
    chain(grads, "W1", W1.shape, lambda i: [(x[n, i[1]], dz1[n, i[0]]) for n in N])
    chain(grads, "b1", b1.shape, lambda i: [(1.0, dz1[n, i[0]]) for n in N])
    new = {"W1": W1 - lr * dW1, "b1": b1 - lr * db1, "W2": W2 - lr * dW2, "b2": b2 - lr * db2}
    check_update(upd, w, grads, new, lr)
    L2 = forward(new["W1"], new["b1"], new["W2"], new["b2"])[4]
    if after:
        near(after[0], L, "the loss before the update")
        near(after[1], L2, "the loss after the update")
        if not L2 < L:
            fail("xor: recomputed, the loss does not fall (%.6f -> %.6f)" % (L, L2))
    return len(fwd) + len(grads) + len(upd)


def check_ball(nabla):
    text = run(nabla, "--example", "ball")
    data, wts, fwd, grads, upd, lr, loss, after = common(text, 0.1)
    try:
        s, d, w = data["speed"], data["distance"], wts["w"]
    except KeyError as e:
        fail("ball: %s is not printed" % e)
        return
    w = float(w.reshape(-1)[0])
    guess = s * w
    L = np.mean((guess - d) ** 2)
    expect(fwd, "guess", guess, "forward")
    if loss is not None:
        near(loss, L, "the loss")
    dguess = 2 * (guess - d) / guess.size
    dw = np.sum(dguess * s)
    expect(grads, "guess", dguess, "gradient")
    expect(grads, "w", np.array(dw), "gradient")
    chain(grads, "guess", guess.shape, lambda i: [(dguess[i], 1.0)])
    chain(grads, "w", (), lambda i: [(s[n], dguess[n]) for n in range(s.size)])
    nw = w - lr * dw
    check_update(upd, {"w": np.array(w)}, grads, {"w": np.array(nw)}, lr)
    L2 = np.mean((s * nw - d) ** 2)
    if after:
        near(after[0], L, "the loss before the update")
        near(after[1], L2, "the loss after the update")
    return len(fwd) + len(grads) + len(upd)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    nabla = sys.argv[1]
    n = (check_xor(nabla) or 0) + (check_ball(nabla) or 0)
    for f in failures[:40]:
        print("explain_check: " + f)
    if failures:
        print("explain_check: %d disagreements" % len(failures))
        return 1
    print("explain_check: %d printed lines recomputed, all agree" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
