#!/usr/bin/env python3
"""test_optim_torch.py - nabla's optimizers against torch.optim.

Usage: test_optim_torch.py [--table PATH] [--exact] PATH/TO/optim_trace

optim_trace (tests/optim_trace.c) runs every optimizer configuration in nabla
and prints the options, the initial parameters, every step's learning rate and
gradients (50 steps per configuration), and the final parameters and state
buffers. This script replays
each run in torch.optim (float32, single-tensor code path, foreach=False) from
exactly those inputs, and compares the results.

Error measure, per tensor (w, b, and each state buffer of each): the
normwise relative error max|nabla - torch| / max(max|torch|, 1e-3), as in
tests/torch/conformance.py. A configuration passes when its worst error over
the final parameters and every state buffer is below 1e-5. (An elementwise
measure is wrong here: a parameter that passes through values near 1 and
ends near 0.008 carries the absolute rounding of the large values, one ulp
of 1, 1.2e-7 - elementwise that reads as 2e-5 after 50 steps, although the
run agrees to one ulp of the tensor's scale.)

PyTorch's vectorised CPU kernels fuse t + alpha * u into one multiply-add
and nabla does not, so the two differ in the last bits (normwise a few 1e-7
after 50 steps). With --exact the script makes torch use its plain scalar kernels
(ATEN_CPU_CAPABILITY=default, set before importing torch) and demands bitwise
equality: that checks the order of every float32 operation. A normal run
also does that check in a child process and reports its outcome, without
letting it decide the exit status (another torch version may legitimately
round differently).

Exit status: 0 when every configuration matches, 1 on any mismatch or error,
77 (skip) when torch cannot be imported - except under CI (the environment
variable CI set to anything but "" / "0" / "false"), where a missing torch is
a failure.
"""
import os
import struct
import subprocess
import sys

TOL = 1e-5
FLOOR = 1e-3


def f32(x):
    """The float32 value nearest to x, as a Python float."""
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def parse(text):
    """Splits optim_trace's output into a list of run dictionaries."""
    runs, run = [], None
    for lineno, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        tag = words[0]
        try:
            if tag == "config":
                run = {"label": words[1], "optim": words[2], "opts": {}, "steps": [],
                       "state": {}, "line": lineno}
                for kv in words[3:]:
                    k, v = kv.split("=")
                    run["opts"][k] = f32(v)
            elif tag == "init":
                run["init"] = [f32(v) for v in words[1:]]
            elif tag == "step":
                assert int(words[1]) == len(run["steps"]), "steps out of order"
                lr = f32(words[2].split("=")[1])
                run["steps"].append((lr, [f32(v) for v in words[3:]]))
            elif tag == "final":
                assert words[1] == run["label"]
                run["final"] = [f32(v) for v in words[2:]]
            elif tag == "state":
                run["state"][words[1]] = [f32(v) for v in words[2:]]
            elif tag == "steps":
                run["nsteps"] = int(words[1])
            elif tag == "end":
                runs.append(run)
                run = None
            else:
                raise ValueError("unknown line")
        except (ValueError, IndexError, KeyError, TypeError, AssertionError) as e:
            raise SystemExit("test_optim_torch: optim_trace output line %d: %s: %r"
                             % (lineno, e, line[:80]))
    if run is not None:
        raise SystemExit("test_optim_torch: optim_trace output ends inside config %s" % run["label"])
    return runs


def make_optimizer(torch, run, params):
    o = run["opts"]
    name = run["optim"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"],
                               dampening=o["dampening"], weight_decay=o["weight_decay"],
                               nesterov=bool(o["nesterov"]), foreach=False)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                   weight_decay=o["weight_decay"], amsgrad=bool(o["amsgrad"]), foreach=False)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=o["lr"], alpha=o["alpha"], eps=o["eps"],
                                   weight_decay=o["weight_decay"], momentum=o["momentum"],
                                   centered=bool(o["centered"]), foreach=False)
    raise SystemExit("test_optim_torch: unknown optimizer %r" % name)


def worst_error(ours, ref):
    """Normwise relative error of one tensor (lists of floats); inf on a NaN
    in one but not the other."""
    worst, scale = 0.0, FLOOR
    for a, b in zip(ours, ref):
        if a != a or b != b:            # NaN anywhere is a mismatch unless both are NaN
            if not (a != a and b != b):
                return float("inf")
            continue
        worst = max(worst, abs(a - b))
        scale = max(scale, abs(b))
    if len(ours) != len(ref):
        return float("inf")
    return worst / scale


def split(flat):
    """The 37 floats of the trace as the two tensors w [5, 6] and b [7]."""
    return [("w", flat[:30]), ("b", flat[30:])]


def replay(torch, run):
    """Runs the configuration in torch; returns (worst error, what it was)."""
    init = run["init"]
    # the same split as optim_trace: w [5, 6] and b [7]
    w = torch.tensor(init[:30], dtype=torch.float32).reshape(5, 6).requires_grad_()
    b = torch.tensor(init[30:], dtype=torch.float32).requires_grad_()
    params = [w, b]
    opt = make_optimizer(torch, run, params)
    for lr, grad in run["steps"]:
        for group in opt.param_groups:
            group["lr"] = lr
        g = torch.tensor(grad, dtype=torch.float32)
        w.grad = g[:30].reshape(5, 6).clone()
        b.grad = g[30:].clone()
        opt.step()

    def flat(tensors):
        return torch.cat([t.detach().reshape(-1) for t in tensors]).tolist()

    results = [("final parameter " + pn, worst_error(a, b))
               for (pn, a), (_, b) in zip(split(run["final"]), split(flat(params)))]
    expected = set()
    for name in run["state"]:
        expected.add(name)
        if name not in opt.state[w]:
            return float("inf"), "state %r, which torch does not have" % name
        ref = flat([opt.state[p][name] for p in params])
        results += [("state %s of %s" % (name, pn), worst_error(a, b))
                    for (pn, a), (_, b) in zip(split(run["state"][name]), split(ref))]
    tensors = {k for k, v in opt.state[w].items() if torch.is_tensor(v) and v.numel() == w.numel()}
    if tensors != expected:
        return float("inf"), "state buffers %s, torch has %s" % (sorted(expected), sorted(tensors))
    if run.get("nsteps") != len(run["steps"]):
        return float("inf"), "nb_optim_steps %s after %d steps" % (run.get("nsteps"), len(run["steps"]))
    if "step" in opt.state[w] and float(opt.state[w]["step"]) != len(run["steps"]):
        return float("inf"), "torch counted %s steps" % float(opt.state[w]["step"])
    return max(results, key=lambda r: r[1])[::-1]


def main():
    args = sys.argv[1:]
    table = None
    if len(args) >= 2 and args[0] == "--table":   # markdown for docs/conformance.md
        table, args = args[1], args[2:]
    exact = bool(args) and args[0] == "--exact"
    if exact:
        args = args[1:]
        os.environ["ATEN_CPU_CAPABILITY"] = "default"   # read when torch loads
    if len(args) != 1:
        print("usage: test_optim_torch.py [--exact] PATH/TO/optim_trace", file=sys.stderr)
        return 2
    trace = args[0]
    try:
        import torch
    except Exception:  # ImportError, or a broken installation
        print("test_optim_torch: torch not available")
        ci = os.environ.get("CI", "")
        return 1 if ci not in ("", "0", "false") else 77
    torch.set_num_threads(1)
    tol = 0.0 if exact else TOL

    try:
        out = subprocess.run([trace], stdout=subprocess.PIPE, check=True,
                             universal_newlines=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print("test_optim_torch: %s" % e)
        return 1
    runs = parse(out)
    if not runs:
        print("test_optim_torch: optim_trace printed no configuration")
        return 1

    failed = 0
    per_optim = {}
    per_count = {}
    for run in runs:
        err, what = replay(torch, run)
        ok = err <= tol if exact else err < tol
        failed += not ok
        if not exact or not ok:
            print("    %-30s worst relative error %-9.3g (%s)%s"
                  % (run["label"], err, what, "" if ok else "  MISMATCH"))
        per_optim[run["optim"]] = max(per_optim.get(run["optim"], 0.0), err)
        per_count[run["optim"]] = per_count.get(run["optim"], 0) + 1
    mode = "scalar kernels, bitwise" if exact else "tolerance %g" % TOL
    print("test_optim_torch: torch %s (%s); worst relative error per optimizer: %s" % (
        torch.__version__, mode, ", ".join("%s %.3g" % kv for kv in per_optim.items())))
    if table:
        with open(table, "w") as f:
            f.write("| optimizer | configurations | steps | worst (final parameters and state) | tolerance |\n"
                    "|---|---|---|---|---|\n")
            for name, err in per_optim.items():
                f.write("| %s | %d | %d | %.2g | %g |\n" % (name, per_count[name], len(runs[0]["steps"]), err, TOL))
    if failed:
        print("test_optim_torch: %d of %d configurations differ from torch.optim%s"
              % (failed, len(runs), "" if exact else " by %g or more" % TOL))
        return 1
    if not exact:
        child = subprocess.run([sys.executable, os.path.abspath(__file__), "--exact", trace],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True)
        print("test_optim_torch: bitwise equal to torch's scalar kernels: %s"
              % ("yes" if child.returncode == 0 else "no (informational)"))
        if child.returncode != 0:
            sys.stdout.write(child.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
