#!/bin/sh
# Data-parallel training over MPI, two processes on this machine
# (docs/distributed.md). Builds the MPI variant in its own directory
# (make MPI=1: build-mpi, or build-mpi-san under SAN=1) and checks:
#  1. two ranks with a global batch of 64 end one epoch of the MLP (two
#     steps of the CNN example; both with dropout) with the weights and
#     optimizer state of one process with batch 64, within TOL (below); and
#     of batch norm with --sync-bn; a negative control (one process, batch
#     32) must be far off;
#  2. one rank under mpirun gives the same bytes as no mpirun;
#  3. two ranks resumed from a checkpoint (after an epoch, and after a
#     Ctrl-C part-way through one) give the same bytes as an uninterrupted
#     two-rank run; gradient buckets change no bit either;
#  4. a rank killed (kill -9) or stopped (SIGSTOP) ends the job with an error
#     naming rank 1 within the time limit (--mpi-timeout);
#  5. ranks started with another spec or other settings are refused at
#     start, naming what differs and the rank;
#  6. rank 1 prints nothing; metrics are global (test accuracy as one process);
#  7. a program of one's own trains data-parallel through the C API.
# Skipped (77) when MPI is not installed, unless CI is set.
#
# The tolerance. One process sums each weight's gradient over 64 samples
# inside one matrix product; two ranks sum 32 each, weight them by 32/64 and
# add the two sums (MPI_Allreduce). The loss scale, the masks and the data
# are the same, so the only difference is the order of float32 additions:
# about 1e-7 relative per gradient, which 32 Adam steps (lr 1e-3, each moving
# a weight by at most about lr) carry into the weights. Observed: about 2e-6.
# TOL = 1e-4 is a tenth of one step's largest move: far above summation-order
# noise, far below any real difference (a batch of 32 instead of 64 moves
# the weights by ~5e-2, another seed by ~2e-1; the negative control checks it).
set -u
BUILD=${BUILD:-build}
SAN=${SAN:-0}
TOL=1e-4
t_start=$(date +%s)
skip() {
    echo "test_mpi: $1"
    case "${CI:-}" in ""|0|false) exit 77 ;; *) exit 1 ;; esac
}
command -v mpirun >/dev/null 2>&1 && command -v mpicc >/dev/null 2>&1 ||
    skip "MPI is not installed (apt-get install libopenmpi-dev openmpi-bin)"
# its own directory: build-mpi (build-mpi-san), or BUILD-mpi next to a private BUILD
case "$BUILD" in
    build) mbuild=build-mpi ;;
    build-san) mbuild=build-mpi-san ;;
    *) mbuild=$BUILD-mpi ;;
esac
tmp=$(mktemp -d /tmp/nabla-mpi.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
MAKEFLAGS= ${MAKE:-make} -s MPI=1 SAN="$SAN" BUILD=$mbuild all $mbuild/compare_ckpt $mbuild/mpi_embed > "$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log"; echo "test_mpi: make MPI=1 failed"; exit 1; }
nabla=$mbuild/nabla
compare=$mbuild/compare_ckpt
# two ranks on two cores, as root in containers; no shared-memory single-copy
# (needs ptrace rights containers rarely give); MPI's own allocations are not
# the sanitizer's business
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
mpirun="timeout 120 mpirun --oversubscribe --allow-run-as-root --bind-to none"
fail=0
bad() { echo "test_mpi: $*"; fail=1; }

data=$(sh tests/mpi/make_data.sh "$tmp/data" 2048 512) || { echo "test_mpi: no data"; exit 1; }
mlp=examples/fashion_mlp.nn cnn=examples/fashion_cnn.nn
common="$data --epochs 1 --batch 64 --seed 3 --quiet"

close() { # close A B WHAT: A and B within TOL
    r=$("$compare" "$1" "$2" $TOL) || { bad "$3: differs by more than $TOL: $r"; return; }
    echo "test_mpi: $3: $r"
}
differs() { # differs A B WHAT: A and B clearly apart (the tolerance means something)
    r=$("$compare" "$1" "$2")
    if "$compare" "$1" "$2" 1e-3 >/dev/null; then bad "$3: within 1e-3, expected far apart: $r"; fi
}
same() { cmp -s "$1" "$2" || bad "$3: not the same bytes ($("$compare" "$1" "$2"))"; }

# 1. two ranks against one process, MLP and CNN (dropout in both). The two
# sum each batch's gradient in a different association, so they differ by
# rounding, which an optimizer linear in the gradient keeps at that size.
# Adam is not: it divides by sqrt(v), so a weight whose gradient is rounding
# noise around zero takes a full step of either sign. The CNN has such
# weights (units that max pooling never picks): it trains with momentum.
# And it is compared after two steps, not an epoch: its second convolution
# runs by Winograd's algorithm, whose four outputs of a 2x2 tile round
# differently, so over the constant background of an image (exact ties for
# a direct convolution) max pooling picks its maximum by rounding, and
# weights one rounding apart soon send a sample's gradient to a neighbouring
# pixel (an epoch ends 3e-4 apart, 3e-7 with im2col; two steps 1e-8).
short=$(sh tests/mpi/make_data.sh "$tmp/short" 128 64) || { echo "test_mpi: no data"; exit 1; }
for net in mlp cnn; do
    eval spec=\$$net
    opt=; [ $net = cnn ] && opt="--optimizer momentum"
    "$nabla" train "$spec" $common $opt --out "$tmp/$net.1.st" > "$tmp/$net.1.out" 2>&1 || bad "$net: one process failed"
    $mpirun -np 2 "$nabla" train "$spec" $common $opt --out "$tmp/$net.2.st" > "$tmp/$net.2.out" 2>&1 ||
        { cat "$tmp/$net.2.out"; bad "$net: two ranks failed"; }
    [ $net = mlp ] && close "$tmp/$net.1.st" "$tmp/$net.2.st" "$net, 2 ranks vs 1 process"
done
s2="$short --epochs 1 --batch 64 --seed 3 --quiet --optimizer momentum"
"$nabla" train $cnn $s2 --out "$tmp/cnn.s1.st" >/dev/null 2>&1 || bad "cnn, two steps: one process failed"
$mpirun -np 2 "$nabla" train $cnn $s2 --out "$tmp/cnn.s2.st" >/dev/null 2>&1 || bad "cnn, two steps: two ranks failed"
close "$tmp/cnn.s1.st" "$tmp/cnn.s2.st" "cnn, 2 ranks vs 1 process, two steps"
"$nabla" train $mlp $data --epochs 1 --batch 32 --seed 3 --quiet --out "$tmp/mlp.b32.st" >/dev/null 2>&1
differs "$tmp/mlp.1.st" "$tmp/mlp.b32.st" "negative control (batch 32)"
# 6. metrics are global: the same test accuracy, and rank 1 said nothing
a1=$(sed -n 's/^test accuracy \([0-9.]*\).*/\1/p' "$tmp/cnn.1.out")
a2=$(sed -n 's/^test accuracy \([0-9.]*\).*/\1/p' "$tmp/cnn.2.out")
awk -v a="$a1" -v b="$a2" 'BEGIN { exit !(a != "" && b != "" && (a - b) ^ 2 <= 0.002 ^ 2) }' ||
    bad "test accuracy of 2 ranks '$a2' is not one process's '$a1'"
[ "$(grep -c 'test accuracy' "$tmp/cnn.2.out")" = 1 ] || bad "rank 1 printed: $(cat "$tmp/cnn.2.out")"
$mpirun -np 2 "$nabla" train $mlp $data --epochs 1 --seed 3 > "$tmp/talk.out" 2>&1
[ "$(grep -c '^epoch 1/1' "$tmp/talk.out")" = 1 ] || bad "one progress line expected: $(cat "$tmp/talk.out")"

# three ranks: shards of 21 and 20 samples, weighted 21/60 and 20/60, and a
# last batch of 8 shared as 3, 3, 2
"$nabla" train $mlp $data --epochs 1 --batch 60 --seed 3 --quiet --out "$tmp/mlp60.1.st" >/dev/null 2>&1 || bad "mlp batch 60 failed"
$mpirun -np 3 "$nabla" train $mlp $data --epochs 1 --batch 60 --seed 3 --quiet --out "$tmp/mlp60.3.st" >/dev/null 2>&1 ||
    bad "mlp, 3 ranks failed"
close "$tmp/mlp60.1.st" "$tmp/mlp60.3.st" "mlp, 3 ranks vs 1 process, batch 60"

# batch norm synchronised over the global batch: one process's numbers too.
# With plain SGD: a bias just before batch norm has a gradient of zero in
# exact arithmetic, so its float gradient is pure rounding noise, which Adam
# divides by its own size into steps of +-lr (a random walk: 2e-3 apart after
# an epoch); and batch norm with momentum 0.9 at lr 0.05 trains at the edge
# of stability, where one float ulp of the learning rate already ends an
# epoch 7e-2 apart in one process. SGD keeps rounding noise as small as it is.
cat > "$tmp/bn.nn" <<'EOF'
input 1 28 28
conv2d 8 kernel=3 pad=1
batchnorm
relu
maxpool 2
flatten
linear 32
batchnorm
relu
dropout 0.2
linear 10
loss softmax_cross_entropy
EOF
"$nabla" train "$tmp/bn.nn" $common --optimizer sgd --out "$tmp/bn.1.st" >/dev/null 2>&1 || bad "bn: one process failed"
$mpirun -np 2 "$nabla" train "$tmp/bn.nn" $common --optimizer sgd --sync-bn --out "$tmp/bn.sync.st" > "$tmp/bn.out" 2>&1 ||
    { cat "$tmp/bn.out"; bad "bn: --sync-bn failed"; }
close "$tmp/bn.1.st" "$tmp/bn.sync.st" "batch norm, 2 ranks --sync-bn vs 1 process"

# 2. one rank under mpirun: the same bytes as without
$mpirun -np 1 "$nabla" train $cnn $common --optimizer momentum --out "$tmp/cnn.r1.st" >/dev/null 2>&1 || bad "1 rank failed"
same "$tmp/cnn.1.st" "$tmp/cnn.r1.st" "cnn, 1 rank under mpirun vs none"
$mpirun -np 1 "$nabla" train "$tmp/bn.nn" $common --optimizer sgd --out "$tmp/bn.r1.st" >/dev/null 2>&1 || bad "bn 1 rank failed"
same "$tmp/bn.1.st" "$tmp/bn.r1.st" "bn, 1 rank under mpirun vs none"

# 3. resume across two ranks: after an epoch (per-rank and synchronised batch norm) ...
for sbn in "" --sync-bn; do
    run="$mpirun -np 2 $nabla train $tmp/bn.nn $data --batch 64 --seed 3 --quiet $sbn"
    $run --epochs 3 --out "$tmp/full.st" >/dev/null 2>&1 &&
        $run --epochs 1 --out "$tmp/part.st" >/dev/null 2>&1 &&
        $run --epochs 3 --resume "$tmp/part.st" --out "$tmp/resumed.st" >/dev/null 2>&1 || bad "resume runs failed ($sbn)"
    same "$tmp/full.st" "$tmp/resumed.st" "resumed 2-rank run ${sbn:-per-rank bn} vs uninterrupted"
done
# ... and after Ctrl-C on rank 1 part-way through the second epoch (every rank stops after the same step)
rank_pid() { # rank_pid MPIRUN_PID RANK: the pid of that rank (a child of mpirun)
    for p in $(pgrep -P "$1"); do
        tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
    done
}
start_job() { # start_job OUT ARGS...: mpirun -np 2 in the background; sets job (mpirun's pid) and r1 (rank 1's)
    out=$1; shift
    $mpirun -np 2 "$@" > "$out" 2>&1 &
    job=$!
    r1=""
    i=0
    while [ -z "$r1" ] && [ $i -lt 200 ]; do
        mp=$(pgrep -P "$job" -x mpirun || echo "$job")
        r1=$(rank_pid "$mp" 1)
        i=$((i + 1)); sleep 0.05
    done
}
run2="$nabla train $cnn $data --batch 64 --seed 3 --epochs 2"
$mpirun -np 2 $run2 --quiet --out "$tmp/c2.st" >/dev/null 2>&1 || bad "2-epoch cnn failed"
start_job "$tmp/int.out" $run2 --out "$tmp/int.st"
while ! grep -q "^epoch 1/2" "$tmp/int.out" 2>/dev/null && kill -0 "$job" 2>/dev/null; do sleep 0.05; done
sleep 0.3
[ -n "$r1" ] && kill -INT "$r1"
wait "$job"
if grep -q "interrupted in epoch 2" "$tmp/int.out"; then
    $mpirun -np 2 $run2 --quiet --resume "$tmp/int.st" --out "$tmp/intres.st" >/dev/null 2>&1 || bad "resume after Ctrl-C failed"
    same "$tmp/c2.st" "$tmp/intres.st" "2 ranks resumed after Ctrl-C on rank 1 vs uninterrupted"
else
    bad "Ctrl-C on rank 1 did not stop the job part-way: $(cat "$tmp/int.out")"
fi
# gradient buckets (overlapping the sums with backward) change no bit
$mpirun -np 2 "$nabla" train $mlp $common --mpi-bucket-kb 64 --out "$tmp/mlp.bucket.st" >/dev/null 2>&1 || bad "buckets failed"
same "$tmp/mlp.2.st" "$tmp/mlp.bucket.st" "mlp, 2 ranks with gradient buckets vs one sum"

# 4. a dead rank, then a stopped one: the job ends, naming rank 1, within the time limit
for sig in KILL STOP; do
    limit=4
    start_job "$tmp/dead.out" $run2 --epochs 20 --mpi-timeout $limit
    while ! grep -q "^epoch 1/20" "$tmp/dead.out" 2>/dev/null && kill -0 "$job" 2>/dev/null; do sleep 0.05; done
    t0=$(date +%s)
    [ -n "$r1" ] && kill -$sig "$r1"
    wait "$job"
    st=$? took=$(($(date +%s) - t0))
    [ -n "$r1" ] && kill -KILL "$r1" 2>/dev/null
    if [ $st = 0 ] || ! grep -q "rank 1" "$tmp/dead.out" || [ $took -gt $((limit + 6)) ]; then
        bad "SIG$sig on rank 1: status $st after ${took}s (limit ${limit}s): $(cat "$tmp/dead.out")"
    else
        echo "test_mpi: SIG$sig on rank 1: the job ended in ${took}s: $(grep -m1 "rank 1" "$tmp/dead.out" | sed 's/^ *//')"
    fi
done

# a bad sample in one rank's shard (a token id out of range, before a
# synchronised batch norm): that rank still takes part in the step's sums, and
# every rank stops at once with its message
awk 'BEGIN { s = 7; for (i = 0; i < 64; i++) { t = ""; sum = 0
    for (k = 0; k < 4; k++) { s = (s * 1103515245 + 12345) % 2147483648; v = int(s / 65536) % 10
                              if (i == 10 && k == 2) v = 50; t = t v ","; sum += v }
    print t (sum > 18 ? 1 : 0) } }' > "$tmp/tok.csv"
printf 'input 4\nembedding 10 8\nflatten\nlinear 16\nbatchnorm\nrelu\nlinear 2\nloss softmax_cross_entropy\n' > "$tmp/tok.nn"
t0=$(date +%s)
$mpirun -np 2 "$nabla" train "$tmp/tok.nn" --data "$tmp/tok.csv" --batch 64 --epochs 1 --sync-bn --mpi-timeout 60 \
    > "$tmp/tok.out" 2>&1 && bad "a bad sample was accepted"
took=$(($(date +%s) - t0))
grep -q "step 1 of epoch 1 failed on rank [01]: embedding: index 50" "$tmp/tok.out" && [ $took -lt 20 ] ||
    bad "bad sample on one rank: after ${took}s: $(cat "$tmp/tok.out")"

# a program of one's own through the C API (tests/mpi/embed.c): 2 ranks as 1
$mpirun -np 1 $mbuild/mpi_embed > "$tmp/embed.1" 2>&1 || bad "embed, 1 rank: $(cat "$tmp/embed.1")"
$mpirun -np 2 $mbuild/mpi_embed > "$tmp/embed.2" 2>&1 || bad "embed, 2 ranks: $(cat "$tmp/embed.2")"
w1=$(sed -n 's/.*weights sum //p' "$tmp/embed.1") w2=$(sed -n 's/.*weights sum //p' "$tmp/embed.2")
awk -v a="$w1" -v b="$w2" 'BEGIN { exit !(a != "" && b != "" && (a - b) ^ 2 <= 1e-6) }' ||
    bad "embed: weights sum $w2 on 2 ranks, $w1 on 1"
[ "$(grep -c '^epoch' "$tmp/embed.2")" = 20 ] || bad "embed: 20 epoch lines from rank 0 alone expected"

# 5. ranks that disagree are refused at start, naming what and who
$mpirun -np 1 "$nabla" train $mlp $common : -np 1 "$nabla" train $cnn $common > "$tmp/mis.out" 2>&1 &&
    bad "different specs were accepted"
grep -q "model spec: rank 1 differs from rank 0" "$tmp/mis.out" || bad "spec mismatch not reported: $(cat "$tmp/mis.out")"
$mpirun -np 1 "$nabla" train $mlp $common : -np 1 "$nabla" train $mlp $common --batch 32 > "$tmp/mis.out" 2>&1 &&
    bad "different batch sizes were accepted"
grep -q "rank 0: batch 64; rank 1: batch 32" "$tmp/mis.out" || bad "batch mismatch not reported: $(cat "$tmp/mis.out")"

echo "test_mpi: $(($(date +%s) - t_start))s in all"
exit $fail
