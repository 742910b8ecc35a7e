#!/bin/sh
# Faults: `nabla train --out` is killed with SIGKILL at random moments (20
# times by default, KILLS=N for more). After every kill the checkpoint on
# disk must be complete: it loads (eval), and a run resumes from it. Then a
# full disk (a file-size limit) must give a clear error and leave the
# previous checkpoint intact.
set -u
BUILD=${BUILD:-build}
nabla=$(pwd)/$BUILD/nabla
kills=${KILLS:-20}
t=$(mktemp -d /tmp/nabla-kill.XXXXXX) || exit 1
trap 'rm -rf "$t"' EXIT
fail=0
cat > "$t/r.nn" <<'EOF'
input 2
linear 32
batchnorm
relu
dropout 0.1
linear 3
loss softmax_cross_entropy
EOF
common="--data spiral --batch 16 --optimizer adam --seed 3 --quiet"
survived=0 empty=0 seed=1
i=0
while [ $i -lt "$kills" ]; do
    i=$((i + 1))
    rm -f "$t/ck.safetensors" "$t/ck.safetensors.tmp"
    "$nabla" train "$t/r.nn" $common --epochs 100000 --out "$t/ck.safetensors" >/dev/null 2>&1 &
    pid=$!
    # a pseudo-random moment between 0.05 and 0.5 s
    delay=$(awk -v s="$seed" 'BEGIN { srand(s); printf "%.3f", 0.05 + 0.45 * rand() }')
    seed=$((seed + 7))
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ ! -f "$t/ck.safetensors" ]; then empty=$((empty + 1)); continue; fi
    if ! "$nabla" eval "$t/ck.safetensors" --data spiral >/dev/null 2>"$t/err"; then
        echo "test_kill: kill $i after ${delay}s: the checkpoint does not load: $(cat "$t/err")"; fail=1; continue
    fi
    epoch=$("$nabla" info "$t/ck.safetensors" | sed -n 's/^trained: epoch \([0-9]*\).*/\1/p')
    if [ -z "$epoch" ] || ! "$nabla" train "$t/r.nn" $common --epochs $((epoch + 1)) \
            --resume "$t/ck.safetensors" --out "$t/next.safetensors" >/dev/null 2>"$t/err"; then
        echo "test_kill: kill $i after ${delay}s: cannot resume from epoch '$epoch': $(cat "$t/err")"; fail=1; continue
    fi
    survived=$((survived + 1))
done
# most kills must land after the first checkpoint, or the test tests nothing
if [ $survived -lt $((kills / 2)) ]; then
    echo "test_kill: only $survived of $kills kills found a checkpoint to check"; fail=1
fi

# Ctrl-C: the run stops after the current step, writes a checkpoint of that
# exact point (mid-epoch), exits 130 and says how to continue
"$nabla" train "$t/r.nn" $common --epochs 100000 --out "$t/int.safetensors" >/dev/null 2>"$t/int.err" &
pid=$!
sleep 0.5
kill -INT "$pid"
wait "$pid"
st=$?
if [ $st != 130 ] || ! grep -q "interrupted in epoch .*continue with --resume" "$t/int.err"; then
    echo "test_kill: SIGINT: exit $st, message: $(cat "$t/int.err")"; fail=1
fi
epoch=$("$nabla" info "$t/int.safetensors" 2>/dev/null | sed -n 's/^trained: epoch \([0-9]*\).*/\1/p')
if [ -z "$epoch" ] || ! "$nabla" train "$t/r.nn" $common --epochs $((epoch + 1)) --resume "$t/int.safetensors" \
        >/dev/null 2>"$t/err"; then
    echo "test_kill: cannot resume after SIGINT: $(cat "$t/err")"; fail=1
fi

# a full disk: a 16 KiB file-size limit lets a small model's checkpoint
# through, not a big one's; the big one's failure must be clear and leave the
# small one's file untouched
printf 'input 2\nlinear 3\nloss softmax_cross_entropy\n' > "$t/small.nn"
printf 'input 2\nlinear 4096\nrelu\nlinear 3\nloss softmax_cross_entropy\n' > "$t/big.nn"
"$nabla" train "$t/small.nn" --data spiral --epochs 1 --quiet --out "$t/disk.safetensors" >/dev/null || fail=1
cp "$t/disk.safetensors" "$t/before.safetensors"
(ulimit -f 32; "$nabla" train "$t/big.nn" --data spiral --epochs 1 --quiet --out "$t/disk.safetensors") \
    >/dev/null 2>"$t/err"
st=$?
if [ $st != 1 ] || [ "$(wc -l < "$t/err")" != 1 ] || ! grep -q "disk.safetensors" "$t/err"; then
    echo "test_kill: full disk: exit $st, message: $(cat "$t/err")"; fail=1
fi
cmp -s "$t/disk.safetensors" "$t/before.safetensors" || { echo "test_kill: the previous checkpoint changed"; fail=1; }
[ ! -e "$t/disk.safetensors.tmp" ] || { echo "test_kill: a temporary file was left behind"; fail=1; }

echo "test_kill: SIGINT: $(cat "$t/int.err")"
echo "test_kill: $kills kills ($survived checkpoints checked: all loaded and resumed, $empty before the first), full disk: $(cat "$t/err")"
exit $fail
