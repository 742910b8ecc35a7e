#!/bin/sh
# `nabla explain`: the built-in xor and ball examples walk one step through
# its five parts (forward pass, loss, backward pass, update, loss after) and
# the loss after the update is lower; --steps 5 adds one falling line per
# step; a small model spec on a data set works, a large one or an op explain
# cannot show is one clear line; usage errors exit 2; output that cannot be
# written is an error. (tests/explain_check.py recomputes the numbers.)
set -u
BUILD=${BUILD:-build}
nabla=$BUILD/nabla
fail=0
tmp=$(mktemp -d /tmp/nabla-explain.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

err() { echo "test_explain: $*"; fail=1; }

# the five parts, and the loss after the step lower than before it
five_parts() { # five_parts FILE WHAT
    for head in "^1\. Forward pass" "^2\. Loss" "^3\. Backward pass" "^4\. Update" "^5\. After the update"; do
        grep -q "$head" "$1" || err "$2: no '$head'"
    done
    grep -q "^    dL/d" "$1" || err "$2: no gradient lines"
    line=$(grep "^  loss before the step" "$1" | head -n 1)
    before=$(echo "$line" | sed -n 's/^  loss before the step \([0-9.]*\), after \([0-9.]*\)$/\1/p')
    after=$(echo "$line" | sed -n 's/^  loss before the step \([0-9.]*\), after \([0-9.]*\)$/\2/p')
    [ -n "$before" ] && [ -n "$after" ] && awk -v b="$before" -v a="$after" 'BEGIN { exit !(a < b) }' ||
        err "$2: the loss after the update ('$after') is not below the loss before ('$before')"
    grep -q "The loss is lower" "$1" || err "$2: does not say the loss is lower"
}

for ex in xor ball; do
    "$nabla" explain --example "$ex" > "$tmp/$ex.txt" 2> "$tmp/err.txt" || err "--example $ex exited $?: $(cat "$tmp/err.txt")"
    five_parts "$tmp/$ex.txt" "--example $ex"
done
"$nabla" explain > "$tmp/default.txt" 2>&1 || err "explain with no arguments exited $?"
cmp -s "$tmp/default.txt" "$tmp/xor.txt" || err "explain with no arguments is not the xor example"
grep -q "^    W1\[0,0\] =  0.5000 - 0.5\*" "$tmp/xor.txt" || err "xor: the update of W1[0,0] with lr 0.5 is missing"
grep -q "^    w = *0.5000 - 0.1\*" "$tmp/ball.txt" || err "ball: the update of w with lr 0.1 is missing"
grep -q "^    dL/dz2\[0,0\] = [0-9.]* \* [0-9.]* = [0-9.]* *(.* = .*\*(1 - .*))$" "$tmp/xor.txt" ||
    err "xor: the sigmoid's local derivative y*(1 - y) is not shown"

# --steps 5: the first step in full, then one line per step, the loss falling
for ex in xor ball; do
    "$nabla" explain --example "$ex" --steps 5 > "$tmp/s5.txt" 2>&1 || err "--example $ex --steps 5 exited $?"
    five_parts "$tmp/s5.txt" "--example $ex --steps 5"
    n=$(grep -c "^step  *[2-5]   loss [0-9.]* -> [0-9.]*   lower" "$tmp/s5.txt")
    [ "$n" = 4 ] || err "--example $ex --steps 5: $n falling step lines, expected 4: $(grep '^step' "$tmp/s5.txt")"
    grep -q "lower after every step" "$tmp/s5.txt" || err "--example $ex --steps 5: no summary"
    awk '/^step / { if (prev != "" && $6 >= prev) bad = 1; prev = $6 } END { exit bad }' "$tmp/s5.txt" ||
        err "--example $ex --steps 5: the loss does not fall from line to line"
done
"$nabla" explain --steps 2 > "$tmp/s2.txt" 2>&1 || err "--steps 2 exited $?"
[ "$(grep -c '^Step [12]$' "$tmp/s2.txt")" = 2 ] || err "--steps 2: both steps should be shown in full"
"$nabla" explain --example xor --lr 0.25 > "$tmp/lr.txt" 2>&1 || err "--lr 0.25 exited $?"
grep -q "learning rate lr = 0.25" "$tmp/lr.txt" || err "--lr 0.25 is not the learning rate shown"

# a loss that rises: a learning rate far too large, and a reason given
"$nabla" explain --example ball --lr 2 > "$tmp/up.txt" 2>&1 || err "--lr 2 exited $?"
grep -q "The loss went UP" "$tmp/up.txt" && grep -q "smaller learning rate" "$tmp/up.txt" ||
    err "ball --lr 2: no word on the loss going up and why"

# a model spec and a data set
"$nabla" explain examples/xor.nn --data xor > "$tmp/spec.txt" 2>&1 || err "examples/xor.nn --data xor exited $?: $(tail -n 3 "$tmp/spec.txt")"
five_parts "$tmp/spec.txt" "examples/xor.nn --data xor"
grep -q "softmax_cross_entropy" "$tmp/spec.txt" || err "examples/xor.nn: the loss is not explained"
printf 'x,y\n1,2\n2,4.1\n3,5.9\n4,8.2\n5,9.9\n' > "$tmp/line.csv"
printf 'input 1\nlinear 1\nloss mse\n' > "$tmp/line.nn"
"$nabla" explain "$tmp/line.nn" --data "$tmp/line.csv" --steps 3 > "$tmp/line.txt" 2>&1 || err "line.nn exited $?: $(tail -n 3 "$tmp/line.txt")"
five_parts "$tmp/line.txt" "line.nn on line.csv"
grep -q "first 4" "$tmp/line.txt" || err "line.nn: not the first 4 examples"

# errors: one line naming what is wrong
expect() { # expect WANT_STATUS PATTERN ARGS...
    want=$1 pat=$2; shift 2
    out=$("$nabla" explain "$@" 2>&1); st=$?
    [ "$st" = "$want" ] || err "'nabla explain $*' exited $st, expected $want: $out"
    printf '%s' "$out" | grep -q -- "$pat" || err "'nabla explain $*' printed '$out', expected '$pat'"
}
expect 1 "at most 64" examples/sine.nn --data sine
n=$("$nabla" explain examples/sine.nn --data sine 2>&1 | wc -l)
[ "$n" = 1 ] || err "a model too large gave $n lines, expected 1"
printf 'input 2\nlinear 3\ndropout 0.5\nlinear 2\nloss softmax_cross_entropy\n' > "$tmp/drop.nn"
expect 1 "dropout" "$tmp/drop.nn" --data xor
expect 1 "nosuch.nn" "$tmp/nosuch.nn" --data xor
expect 2 "usage: nabla explain" --example chess
expect 2 "usage: nabla explain" examples/xor.nn
expect 2 "usage: nabla explain" --example xor examples/xor.nn --data xor
expect 2 "expected a whole number" --steps 0
expect 2 "unknown option" --epochs 3
if [ -w /dev/full ]; then
    "$nabla" explain > /dev/full 2>/dev/null && err "explain into a full disk exited 0"
fi
"$nabla" help | grep -q "nabla explain" || err "'nabla help' does not list explain"

exit $fail
