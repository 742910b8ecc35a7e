#!/bin/sh
# Extracts the C example that follows "<!-- example:xor -->" in README.md,
# compiles it against the library just built and runs it.
#   tests/readme_example.sh run     build and run it (make example)
#   tests/readme_example.sh check   also check it learned XOR, twice, bit for bit
#   tests/readme_example.sh extract FILE   only write the example to FILE
set -u
BUILD=${BUILD:-build}
out=$BUILD/readme
mkdir -p "$out"
awk '/<!-- example:xor -->/ {on=1; next} on && /^```c/ {grab=1; next} grab && /^```/ {exit} grab {print}' \
    README.md > "$out/xor.c"
[ -s "$out/xor.c" ] || { echo "readme_example: no example found in README.md"; exit 1; }
if [ "${1:-run}" = extract ]; then cp "$out/xor.c" "$2"; exit; fi
# shellcheck disable=SC2086
$CC $ALL_CFLAGS -Wno-missing-prototypes "$out/xor.c" $ALL_LDFLAGS "$BUILD/libnabla.a" $LDLIBS -o "$out/xor" || exit 1
if [ "${1:-run}" = run ]; then exec "$out/xor"; fi

"$out/xor" > "$out/run1.txt" || { echo "readme_example: the example failed"; exit 1; }
"$out/xor" > "$out/run2.txt" || exit 1
fail=0
if ! cmp -s "$out/run1.txt" "$out/run2.txt"; then echo "readme_example: two runs differ"; fail=1; fi
last=$(tail -n 1 "$out/run1.txt")
loss=$(echo "$last" | sed -n 's/^final loss \([0-9.]*\), .*/\1/p')
case "$last" in
  *"4/4 correct") ;;
  *) echo "readme_example: not all four points right: $last"; fail=1 ;;
esac
if [ -z "$loss" ] || ! awk -v l="$loss" 'BEGIN { exit !(l < 0.01) }'; then
    echo "readme_example: final loss '$loss' is not below 0.01"; fail=1
fi
[ $fail = 0 ] && echo "readme_example: $last"
exit $fail
