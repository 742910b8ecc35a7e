#!/bin/sh
# `make install` into a scratch prefix, then build the README example against
# the installed header and shared library through pkg-config, and run it.
set -u
BUILD=${BUILD:-build}
dest=$(mktemp -d /tmp/nabla-install.XXXXXX) || exit 1
trap 'rm -rf "$dest"' EXIT
make -s install BUILD="$BUILD" SAN="${SAN:-0}" PREFIX=/opt/nabla DESTDIR="$dest" >/dev/null || exit 1
root=$dest/opt/nabla
for f in include/nabla.h lib/libnabla.a lib/libnabla.so lib/libnabla.so.0 lib/pkgconfig/nabla.pc bin/nabla; do
    [ -e "$root/$f" ] || { echo "test_install: $f was not installed"; exit 1; }
done
# the .pc file names the prefix; point it at the scratch copy
sed "s|^prefix=.*|prefix=$root|" "$root/lib/pkgconfig/nabla.pc" > "$dest/nabla.pc"
flags=$(PKG_CONFIG_PATH=$dest pkg-config --cflags --libs nabla) || { echo "test_install: pkg-config failed"; exit 1; }
sh tests/readme_example.sh extract "$dest/xor.c" || exit 1
# shellcheck disable=SC2086
$CC $ALL_CFLAGS -Wno-missing-prototypes "$dest/xor.c" $flags $ALL_LDFLAGS -lm -o "$dest/xor" || exit 1
LD_LIBRARY_PATH=$root/lib "$dest/xor" | tail -n 1 | grep -q "4/4 correct" || { echo "test_install: installed example failed"; exit 1; }
LD_LIBRARY_PATH=$root/lib "$root/bin/nabla" version >/dev/null || exit 1
echo "test_install: installed to a scratch prefix, example built with pkg-config against libnabla.so"
