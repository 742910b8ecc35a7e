#!/bin/sh
# `nabla train --report`: the page of a spiral run (decision boundary) and of
# a tiny Fashion-MNIST-like IDX set (test images, 10x10 confusion matrix) is
# one well-formed XHTML-compatible document whose every <svg> parses as XML,
# holds every chart's title, loads nothing from the network, and renders in
# headless Chromium to a screenshot that is not blank.
# Exit 77 (skip) without chromium or python3, unless CI is set.
set -u
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
nabla=$BUILD/nabla
fail=0

missing=""
command -v "$PYTHON" >/dev/null 2>&1 || missing="$missing $PYTHON"
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || missing="$missing chromium"
if [ -n "$missing" ]; then
    echo "test_report: not installed:$missing"
    case "${CI:-}" in ""|0|false) exit 77 ;; *) exit 1 ;; esac
fi
tmp=$(mktemp -d /tmp/nabla-report.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

# checks a report: XML, titles, self-contained; extra titles as arguments
check_html() { # check_html FILE TITLE...
    "$PYTHON" - "$@" <<'PY'
import re, sys, xml.etree.ElementTree as ET
path, titles = sys.argv[1], sys.argv[2:]
text = open(path, encoding="utf-8").read()
bad = 0
def fail(msg):
    global bad
    print("test_report: %s: %s" % (path, msg)); bad = 1
try:
    ET.fromstring(text[text.index("<html"):])
except Exception as e:
    fail("not well-formed XML: %s" % e)
svgs = re.findall(r"<svg\b.*?</svg>", text, re.S)
for i, s in enumerate(svgs):
    try:
        root = ET.fromstring(s)
        if "viewBox" not in root.attrib or root.attrib.get("width") != "100%":
            fail("svg %d has no viewBox or width 100%%" % i)
    except Exception as e:
        fail("svg %d: %s" % (i, e))
for t in ["Loss", "Learning rate", "Gradient flow", "Numbers per epoch"] + titles:
    if "<h2>%s</h2>" % t not in text: fail("no '%s' chart" % t)
if 'name="viewport"' not in text: fail("no viewport meta")
for s in ("<script", "<link", "url(", "https:", "src=\"http"):
    if s in text: fail("fetches something: %s" % s)
print("%s: %d svg" % (path, len(svgs)))
sys.exit(bad)
PY
}

# renders a page and checks the screenshot is not blank (many colours)
screenshot() { # screenshot FILE.html OUT.png
    rm -f "$2"
    timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/chrome" \
        --screenshot="$2" --window-size=1200,2400 "file://$1" >/dev/null 2>&1
    [ -s "$2" ] || { echo "test_report: chromium wrote no screenshot of $1"; return 1; }
    "$PYTHON" - "$2" <<'PY'
import sys
path = sys.argv[1]
try:
    from PIL import Image
except ImportError:  # no PIL: a blank page compresses to almost nothing
    import os
    size = os.path.getsize(path)
    print("%s: %d bytes" % (path, size)); sys.exit(0 if size > 40000 else 1)
im = Image.open(path).convert("RGB")
colours = im.getcolors(1 << 24) or []
ink = sum(n for n, c in colours if sum(c) < 600)   # not white or near-white
print("%s: %dx%d, %d colours, %.1f%% ink" % (path, im.size[0], im.size[1], len(colours), 100.0 * ink / (im.size[0] * im.size[1])))
sys.exit(0 if len(colours) > 200 and ink > 0.02 * im.size[0] * im.size[1] else 1)
PY
}

# spiral: loss, accuracy, gradient flow, confusion matrix, decision boundary
"$nabla" train examples/spiral.nn --data spiral --epochs 5 --lr 0.01 --quiet --report "$tmp/spiral.html" >/dev/null ||
    { echo "test_report: training spiral with --report failed"; fail=1; }
[ ! -e "$tmp/spiral.html.tmp" ] || { echo "test_report: the temporary file was left behind"; fail=1; }
check_html "$tmp/spiral.html" Accuracy "Confusion matrix" "Decision boundary" || fail=1
grep -q "After epoch <b>5</b>" "$tmp/spiral.html" || { echo "test_report: the page does not show epoch 5"; fail=1; }
[ "$(grep -c '^<tr><td>[0-9]' "$tmp/spiral.html")" = 5 ] || { echo "test_report: expected 5 rows of numbers"; fail=1; }
screenshot "$tmp/spiral.html" "$tmp/spiral.png" || fail=1

# a tiny Fashion-MNIST-like IDX set: 200 + 100 random 28x28 images, 10 classes
mkdir "$tmp/idx"
"$PYTHON" - "$tmp/idx" <<'PY' || fail=1
import os, random, struct, sys
d = sys.argv[1]
random.seed(7)
for split, n in (("train", 200), ("t10k", 100)):
    labels = [random.randrange(10) for _ in range(n)]
    px = bytearray()
    for l in labels:   # a bright bar per class over noise
        for y in range(28):
            px.extend(220 if x // 3 == l else random.randrange(80) for x in range(28))
    with open(os.path.join(d, split + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(px))
    with open(os.path.join(d, split + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(labels))
PY
printf 'input 1 28 28\nflatten\nlinear 16\nrelu\nlinear 10\nloss softmax_cross_entropy\n' > "$tmp/tiny.nn"
"$nabla" train "$tmp/tiny.nn" --data "$tmp/idx" --epochs 1 --quiet --report "$tmp/images.html" >/dev/null ||
    { echo "test_report: training on the IDX set with --report failed"; fail=1; }
check_html "$tmp/images.html" "Confusion matrix" "Test images" || fail=1
n=$(grep -o '<image ' "$tmp/images.html" | wc -l)
[ "$n" -ge 10 ] || { echo "test_report: $n image tiles, expected at least 10"; fail=1; }
n=$(grep -o '<title>true [0-9]*, predicted' "$tmp/images.html" | wc -l)
[ "$n" = 100 ] || { echo "test_report: the confusion matrix has $n cells, expected 100"; fail=1; }
! grep -q "Decision boundary" "$tmp/images.html" || { echo "test_report: a decision boundary for images"; fail=1; }
screenshot "$tmp/images.html" "$tmp/images.png" || fail=1

# a report that cannot be written fails the run with one line naming it
out=$("$nabla" train examples/xor.nn --data xor --epochs 1 --quiet --report "$tmp/nodir/r.html" 2>&1 >/dev/null); st=$?
[ "$st" = 1 ] && printf '%s' "$out" | grep -q "nodir/r.html" ||
    { echo "test_report: an unwritable report gave status $st: $out"; fail=1; }
exit $fail
