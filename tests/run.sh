#!/bin/sh
# Runs every test program and adds up the results into one closing line,
# "N passed, M failed" (", K skipped" appended when a test was skipped).
# Called by `make test` with the build settings in the environment. Exits
# non-zero if anything failed.
set -u
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
passed=0
failed=0
skipped=0

count() { # count NAME STATUS: adds one result; status 77 means skipped
    if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "ok   $1"
    elif [ "$2" = 77 ]; then skipped=$((skipped + 1)); echo "skip $1"
    else failed=$((failed + 1)); echo "FAIL $1"; fi
}

# runs python with a script; 77 (skip) when there is no python, unless under CI
python_test() {
    if command -v "$PYTHON" >/dev/null 2>&1; then "$PYTHON" "$@"; return $?; fi
    echo "$1: $PYTHON not available"
    case "${CI:-}" in ""|0|false) return 77 ;; *) return 1 ;; esac
}

# unit tests: they print their own "unit: N passed, M failed" line
"$BUILD/test_nabla" > "$BUILD/unit.log" 2>&1
unit_status=$?
grep -v '^ok ' "$BUILD/unit.log"
line=$(grep '^unit: ' "$BUILD/unit.log" | tail -n 1)
up=$(echo "$line" | sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
uf=$(echo "$line" | sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
if [ -z "$up" ]; then
    echo "FAIL unit tests did not finish (status $unit_status)"; failed=$((failed + 1))
else
    passed=$((passed + up)); failed=$((failed + uf))
    [ "$unit_status" = 0 ] || [ "$uf" != 0 ] || { echo "FAIL unit tests exited $unit_status"; failed=$((failed + 1)); }
fi

"$BUILD/test_alloc"; count "a training step allocates nothing (test_alloc)" $?
sh tests/readme_example.sh check; count "README example trains XOR (readme_example)" $?
sh tests/test_cli.sh; count "nabla command line (test_cli)" $?
sh tests/test_explain.sh; count "nabla explain walks a training step (test_explain)" $?
python_test tests/explain_check.py "$BUILD/nabla"; count "nabla explain's numbers recomputed in float64 (explain_check)" $?
sh tests/test_graph.sh; count "nabla graph: DOT and SVG of the computation graph (test_graph)" $?
sh tests/test_report.sh; count "nabla train --report: the HTML page, parsed and rendered in Chromium (test_report)" $?
sh tests/test_bad_inputs.sh; count "bad inputs: one line, exit 1 or 2 (test_bad_inputs)" $?
sh tests/test_kill.sh; count "SIGKILL at random moments and a full disk leave a valid checkpoint (test_kill)" $?
sh tests/test_mpi.sh; count "data-parallel over MPI: 2 ranks = 1 process, resume, dead ranks, mismatches (test_mpi)" $?
# valgrind and the sanitizers do not mix: memcheck runs on the plain build
if [ "${SAN:-0}" != 1 ]; then
    sh tests/test_valgrind.sh; count "valgrind memcheck: no leak, no invalid access (test_valgrind)" $?
fi
sh tests/test_install.sh; count "make install and pkg-config (test_install)" $?
sh tests/test_hygiene.sh; count "source hygiene (test_hygiene)" $?
# Python tests that load the library through the ctypes binding (python/nabla)
# use the library of this build (NABLA_LIB, absolute paths: tests may chdir).
# A sanitizer build's libnabla.so cannot be dlopen'ed by a plain python3 (the
# ASan runtime would have to be preloaded), so under SAN=1 they use the plain
# build's build/libnabla.so, made here if needed: there they check results,
# not memory safety.
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1   # no python/nabla/__pycache__ in the tree
if [ "${SAN:-0}" = 1 ]; then
    MAKEFLAGS= ${MAKE:-make} -s SAN=0 BUILD=build build/libnabla.so >/dev/null
    [ $? = 0 ] || count "plain build/libnabla.so for the Python tests" 1
    export NABLA_LIB="$PWD/build/libnabla.so"
else
    case "$BUILD" in /*) NABLA_LIB="$BUILD/libnabla.so" ;; *) NABLA_LIB="$PWD/$BUILD/libnabla.so" ;; esac
    export NABLA_LIB
fi
python_test tests/torch/test_optim_torch.py "$BUILD/optim_trace"; count "optimizers match torch.optim (test_optim_torch)" $?
python_test tests/torch/test_checkpoint_torch.py "$BUILD/nabla"; count "checkpoints load into PyTorch, same predictions (test_checkpoint_torch)" $?
python_test tests/torch/test_ops_torch.py; count "ops match PyTorch (test_ops_torch)" $?
python_test tests/torch/test_networks_torch.py; count "networks train as in PyTorch (test_networks_torch)" $?
python_test tests/torch/test_python_binding.py; count "python binding (test_python_binding)" $?

if [ "$skipped" = 0 ]; then echo "$passed passed, $failed failed"
else echo "$passed passed, $failed failed, $skipped skipped"; fi
[ "$failed" = 0 ]
