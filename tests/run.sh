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
sh tests/test_bad_inputs.sh; count "bad inputs: one line, exit 1 or 2 (test_bad_inputs)" $?
sh tests/test_install.sh; count "make install and pkg-config (test_install)" $?
sh tests/test_hygiene.sh; count "source hygiene (test_hygiene)" $?
python_test tests/torch/test_optim_torch.py "$BUILD/optim_trace"; count "optimizers match torch.optim (test_optim_torch)" $?
python_test tests/torch/test_checkpoint_torch.py "$BUILD/nabla"; count "checkpoints load into PyTorch, same predictions (test_checkpoint_torch)" $?

if [ "$skipped" = 0 ]; then echo "$passed passed, $failed failed"
else echo "$passed passed, $failed failed, $skipped skipped"; fi
[ "$failed" = 0 ]
