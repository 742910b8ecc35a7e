#!/bin/sh
# Builds every fuzz target with clang (libFuzzer + AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs each for FUZZ_SECONDS (default 60)
# from its seed corpus in tests/fuzz/corpus/. A crash, leak, sanitizer
# report, timeout or out-of-memory fails the run; the input that caused it
# is left in build-fuzz/artifacts/ (make it a regression test: add it to the
# seed corpus, which every run replays first).
# Prints one line per target with its executions.
set -u
SECONDS_EACH=${FUZZ_SECONDS:-60}
CC=${FUZZ_CC:-clang}
out=build-fuzz
mkdir -p "$out/artifacts"
libsrc=$(ls src/*/*.c)
zlib=""
printf '#include <zlib.h>\nint main(void){return 0;}\n' | $CC -x c - -lz -o /dev/null 2>/dev/null && zlib="-DNB_HAVE_ZLIB -lz"
fail=0
for t in spec idx csv safetensors; do
    bin=$out/fuzz_$t
    # shellcheck disable=SC2086
    $CC -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -Iinclude $libsrc tests/fuzz/fuzz_$t.c $zlib -lm -pthread -o "$bin" \
        || { echo "fuzz: building $t failed"; fail=1; continue; }
    mkdir -p "$out/corpus/$t"
    log=$out/fuzz_$t.log
    "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 \
        -artifact_prefix="$out/artifacts/$t-" -print_final_stats=1 "$out/corpus/$t" "tests/fuzz/corpus/$t" > "$log" 2>&1
    st=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ $st != 0 ]; then
        echo "fuzz: $t FAILED after ${runs:-?} executions (see $log):"
        grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -n 5
        fail=1
    else
        echo "fuzz: $t: ${runs:-?} executions in ${SECONDS_EACH}s, $cov, no findings"
    fi
done
exit $fail
