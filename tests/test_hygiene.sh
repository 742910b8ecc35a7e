#!/bin/sh
# Rules of the library's source that a compiler does not check:
# - only src/core/alloc.c calls malloc, calloc, realloc or free;
# - the library never prints, exits or aborts;
# - no -ffast-math anywhere in the build.
set -u
fail=0
hits=$(grep -nE '\b(malloc|calloc|realloc|free)\s*\(' src/*/*.c | grep -v '^src/core/alloc.c:' | grep -vE '\bnb_(malloc|calloc|realloc|free)\b')
[ -z "$hits" ] || { echo "test_hygiene: direct allocation outside alloc.c:"; echo "$hits"; fail=1; }
hits=$(grep -nE '\b(printf|fprintf|puts|fputs|perror|exit|abort|assert)\s*\(' src/*/*.c)
[ -z "$hits" ] || { echo "test_hygiene: printing, exit or abort in the library:"; echo "$hits"; fail=1; }
hits=$(grep -n 'fast-math' Makefile src/*/*.c 2>/dev/null)
[ -z "$hits" ] || { echo "test_hygiene: -ffast-math:"; echo "$hits"; fail=1; }
exit $fail
