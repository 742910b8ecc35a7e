#!/bin/sh
# Valgrind memcheck on a short training run with a checkpoint, then eval and
# predict from it: no invalid reads or writes, no use of uninitialised
# values, no leaks of any kind. Skipped (77) without valgrind outside CI.
set -u
BUILD=${BUILD:-build}
nabla=$BUILD/nabla
if ! command -v valgrind >/dev/null 2>&1; then
    echo "test_valgrind: valgrind not installed"
    case "${CI:-}" in ""|0|false) exit 77 ;; *) exit 1 ;; esac
fi
t=$(mktemp -d /tmp/nabla-vg.XXXXXX) || exit 1
trap 'rm -rf "$t"' EXIT
cat > "$t/m.nn" <<'EOF2'
input 1 6 6
conv2d 3 kernel=3 pad=1
batchnorm
relu
maxpool 2
flatten
dropout 0.2
linear 2
loss softmax_cross_entropy
EOF2
# a small image set in CSV: 36 pixels and a label per row
awk 'BEGIN { srand(4); for (i = 0; i < 40; i++) { s = ""; for (j = 0; j < 36; j++) s = s sprintf("%.3f,", rand()); print s (i % 2) } }' > "$t/d.csv"
vg="valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all"
fail=0
run() { # run WANT_STATUS COMMAND...: 99 is valgrind's own error status
    want=$1; shift
    $vg "$@" > "$t/out" 2> "$t/err"
    st=$?
    if [ $st != "$want" ]; then echo "test_valgrind: '$*' exited $st:"; head -n 30 "$t/err"; fail=1; fi
}
run 0 "$nabla" train "$t/m.nn" --data "$t/d.csv" --epochs 2 --batch 16 --quiet --out "$t/c.safetensors" --log "$t/log.csv"
run 0 "$nabla" eval "$t/c.safetensors" --data "$t/d.csv"
run 0 "$nabla" predict "$t/c.safetensors" "$t/d.csv" --limit 3
run 0 "$nabla" train "$t/m.nn" --data "$t/d.csv" --epochs 3 --batch 16 --quiet --resume "$t/c.safetensors"
run 0 "$nabla" info "$t/m.nn"
run 1 "$nabla" train "$t/m.nn" --data "$t/missing.csv"   # an error path must not leak either
[ $fail = 0 ] && echo "test_valgrind: train, eval, predict, resume, info and an error path: memcheck clean"
exit $fail
