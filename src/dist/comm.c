/*
 * comm.c - the processes of a data-parallel run: MPI when nabla is built
 * with it (make MPI=1), a clear error otherwise.
 *
 * No collective can hang. Each one is started nonblocking (MPI_Iallreduce,
 * MPI_Ibcast, MPI_Iallgather) on nabla's own duplicate of the communicator,
 * whose error handler is MPI_ERRORS_RETURN, and waited for by polling
 * MPI_Testall against a deadline, the communicator's time limit.
 *
 * Naming the rank at fault. While a rank waits it also answers "where are
 * you?" probes (point-to-point, tag TAG_PROBE) with the number of
 * collectives it has started. When a quarter of the time limit (at most 5 s)
 * is left, a waiting rank probes every other rank; at the deadline it names
 * those that did not answer (dead, stopped, or busy outside nabla's
 * collectives for that long) and those waiting at another collective (out of
 * step: they called something else). The collective may still complete
 * during that last stretch: then nothing happened. A failed or timed-out
 * communicator is marked broken: its pending operations cannot be
 * cancelled, so every later collective fails at once and nb_comm_free does
 * not finalise MPI (the program must abort the job, as the CLI does).
 */
#include "dist.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#ifdef NB_HAVE_MPI
#include <limits.h>
#include <mpi.h>
#endif

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t nb_hash_bytes(uint64_t h, const void *data, size_t bytes)
{
    const unsigned char *p = data;
    h = mix64(h ^ (0x9e3779b97f4a7c15ull + bytes));
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = mix64(h ^ w) + 0x632be59bd9b4e019ull;
    }
    uint64_t w = 0;
    for (size_t k = 0; i + k < bytes; k++) w |= (uint64_t)p[i + k] << (8 * k);
    return mix64(h ^ w ^ 0xd6e8feb86659fd93ull);
}

int nb_have_mpi(void)
{
#ifdef NB_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

#ifndef NB_HAVE_MPI

/* ---- without MPI: no communicator can exist; NULL is one process ------ */

struct nb_comm {
    int unused;
};

nb_comm *nb_comm_world(void)
{
    nb_set_error(NB_ERR_STATE, "this nabla was built without MPI: rebuild it with 'make MPI=1' "
                               "(needs Debian's libopenmpi-dev and openmpi-bin)");
    return NULL;
}

nb_comm *nb_comm_from_mpi(const void *mpi_comm)
{
    (void)mpi_comm;
    return nb_comm_world();
}

void nb_comm_free(nb_comm *c) { (void)c; }
int nb_comm_rank(const nb_comm *c) { (void)c; return 0; }
int nb_comm_size(const nb_comm *c) { (void)c; return 1; }
void nb_comm_set_timeout(nb_comm *c, double seconds) { (void)c, (void)seconds; }
double nb_comm_timeout(const nb_comm *c) { (void)c; return 0; }
void nb_comm_set_bucket_bytes(nb_comm *c, size_t bytes) { (void)c, (void)bytes; }
size_t nb_comm_bucket_bytes(const nb_comm *c) { (void)c; return 0; }
nb_status nb_comm_allreduce(nb_comm *c, double *buf, size_t n) { (void)c, (void)buf, (void)n; return NB_OK; }
nb_status nb_comm_allreduce_f32(nb_comm *c, float *buf, size_t n, const char *what)
{
    (void)c, (void)buf, (void)n, (void)what;
    return NB_OK;
}
nb_status nb_comm_allreduce_f64(nb_comm *c, double *buf, size_t n, const char *what)
{
    (void)c, (void)buf, (void)n, (void)what;
    return NB_OK;
}
nb_status nb_comm_bcast(nb_comm *c, void *buf, size_t bytes, int root, const char *what)
{
    (void)c, (void)buf, (void)bytes, (void)root, (void)what;
    return NB_OK;
}
nb_status nb_comm_start_f32(nb_comm *c, float *buf, size_t n, const char *what)
{
    (void)c, (void)buf, (void)n, (void)what;
    return NB_OK;
}
nb_status nb_comm_progress(nb_comm *c) { (void)c; return NB_OK; }
nb_status nb_comm_wait_all(nb_comm *c, const char *what) { (void)c, (void)what; return NB_OK; }
nb_status nb_comm_check_same(nb_comm *c, const nb_comm_item *items, int n)
{
    (void)c, (void)items, (void)n;
    return NB_OK;
}
nb_status nb_comm_agree(nb_comm *c, nb_status local, const char *what)
{
    (void)c, (void)what;
    return local;
}
int nb_comm_failed(const nb_comm *c) { (void)c; return 0; }

#else /* NB_HAVE_MPI */

#define MAX_PENDING 256
#define REPLY_RING 64
#define TAG_PROBE 0x6e61
#define TAG_REPLY 0x6e62
/* elements per MPI call: counts are ints */
#define CHUNK ((size_t)1 << 28)

struct nb_comm {
    MPI_Comm comm;           /* nabla's duplicate */
    int rank, size;
    double timeout;          /* seconds; <= 0: wait forever */
    size_t bucket_bytes;
    int owns_mpi;            /* made by nb_comm_world when nabla initialised MPI */
    int broken;              /* a collective failed or timed out */
    int64_t seq;             /* collectives started */
    MPI_Request pend[MAX_PENDING];
    int npend;
    int64_t replies[REPLY_RING];  /* send buffers of answers to probes */
    int nreply;
    int64_t probe;           /* send buffer of this rank's probe */
    int64_t *seen;           /* per rank: its answer to the probe, -1 if none */
};

static int nb_mpi_initialised_here;   /* MPI_Init_thread was nabla's */
static int nb_mpi_comms;              /* communicators alive */
static int nb_mpi_failed;             /* a collective failed: never finalise */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void nap(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

static nb_status mpi_error(nb_comm *c, int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", rc);
    c->broken = 1;
    nb_mpi_failed = 1;
    return nb_set_error(NB_ERR_COMM, "%s failed: %s (did a rank die?)", what, msg);
}

static nb_status check_usable(nb_comm *c, const char *what)
{
    if (c->broken)
        return nb_set_error(NB_ERR_COMM, "%s: an earlier collective failed; the ranks can no "
                                         "longer work together (end the job)", what);
    return NB_OK;
}

/* Answers every probe that arrived, and drops stale answers to this rank's
 * own earlier probes. */
static void serve_probes(nb_comm *c)
{
    for (int tag = TAG_PROBE; tag <= TAG_REPLY; tag++)
        for (;;) {
            int flag = 0;
            MPI_Status st;
            if (MPI_Iprobe(MPI_ANY_SOURCE, tag, c->comm, &flag, &st) != MPI_SUCCESS || !flag) break;
            int64_t v;
            if (MPI_Recv(&v, 1, MPI_INT64_T, st.MPI_SOURCE, tag, c->comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
                break;
            if (tag == TAG_REPLY) {
                c->seen[st.MPI_SOURCE] = v;
                continue;
            }
            int64_t *buf = &c->replies[c->nreply++ % REPLY_RING];
            *buf = c->seq;
            MPI_Request r;
            if (MPI_Isend(buf, 1, MPI_INT64_T, st.MPI_SOURCE, TAG_REPLY, c->comm, &r) == MPI_SUCCESS)
                MPI_Request_free(&r);
        }
}

/* ", 1, 2 and 5" style list of the ranks whose flag is set, at most 8 */
static void rank_list(char *buf, size_t size, const int *flag, int n)
{
    size_t used = 0;
    int shown = 0, total = 0;
    buf[0] = '\0';
    for (int r = 0; r < n; r++) {
        if (!flag[r]) continue;
        total++;
        if (shown < 8 && used < size) {
            used += (size_t)snprintf(buf + used, size - used, "%s%d", shown ? ", " : "", r);
            shown++;
        }
    }
    if (total > shown && used < size) snprintf(buf + used, size - used, " and %d more", total - shown);
}

/* The deadline has passed: name who is missing. */
static nb_status timed_out(nb_comm *c, const char *what, double waited)
{
    c->broken = 1;
    nb_mpi_failed = 1;
    const int n = c->size;
    int *silent = nb_calloc(2 * (size_t)n, sizeof *silent);
    if (!silent)
        return nb_set_error(NB_ERR_COMM, "%s did not complete within %.0f s", what, waited);
    int *elsewhere = silent + n, nsilent = 0, nelse = 0;
    int64_t where = -1;
    for (int r = 0; r < n; r++) {
        if (r == c->rank) continue;
        if (c->seen[r] < 0) silent[r] = 1, nsilent++;
        else if (c->seen[r] != c->seq) elsewhere[r] = 1, nelse++, where = c->seen[r];
    }
    char a[160], b[160];
    rank_list(a, sizeof a, silent, n);
    rank_list(b, sizeof b, elsewhere, n);
    nb_free(silent);
    if (nsilent)
        return nb_set_error(NB_ERR_COMM, "%s did not complete within %.0f s: rank%s %s %s not "
                                         "answering (dead, stopped or hung)%s%s", what, waited,
                            nsilent > 1 ? "s" : "", a, nsilent > 1 ? "are" : "is",
                            nelse ? "; out of step: rank " : "", nelse ? b : "");
    if (nelse)
        return nb_set_error(NB_ERR_COMM, "%s did not complete within %.0f s: rank%s %s %s at "
                                         "another collective (#%lld, this rank at #%lld): the ranks are "
                                         "out of step", what, waited, nelse > 1 ? "s" : "", b,
                            nelse > 1 ? "are" : "is", (long long)where, (long long)c->seq);
    return nb_set_error(NB_ERR_COMM, "%s did not complete within %.0f s although every rank "
                                     "is waiting in it (MPI did not deliver)", what, waited);
}

/* Waits for every pending operation, at most until the time limit. */
static nb_status wait_pending(nb_comm *c, const char *what)
{
    const double start = now_s(), limit = c->timeout;
    const double grace = limit / 4 < 5 ? limit / 4 : 5;
    int probed = 0;
    for (long spins = 0;; spins++) {
        int done = 0;
        int rc = MPI_Testall(c->npend, c->pend, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_error(c, rc, what);
        if (done) {
            c->npend = 0;
            return NB_OK;
        }
        serve_probes(c);
        if (spins < 2000) continue; /* a short spin first: most waits end within microseconds */
        double t = now_s() - start;
        if (limit > 0 && !probed && t >= limit - grace && c->size > 1) {
            /* where is everyone? */
            probed = 1;
            c->probe = c->seq;
            for (int r = 0; r < c->size; r++) {
                c->seen[r] = -1;
                MPI_Request q;
                if (r != c->rank && MPI_Isend(&c->probe, 1, MPI_INT64_T, r, TAG_PROBE, c->comm, &q) == MPI_SUCCESS)
                    MPI_Request_free(&q);
            }
        }
        if (limit > 0 && t >= limit) return timed_out(c, what, limit);
        nap(t < 0.01 ? 20000 : 200000);
    }
}

static nb_status add_pending(nb_comm *c, const char *what)
{
    if (c->npend == MAX_PENDING) return wait_pending(c, what);
    return NB_OK;
}

static nb_comm *make_comm(MPI_Comm base, int owns)
{
    nb_comm *c = nb_calloc(1, sizeof *c);
    if (!c) return NULL;
    int rc = MPI_Comm_dup(base, &c->comm);
    if (rc != MPI_SUCCESS) {
        nb_free(c);
        nb_set_error(NB_ERR_COMM, "MPI_Comm_dup failed (error %d)", rc);
        return NULL;
    }
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    c->timeout = 60;
    c->owns_mpi = owns;
    if (!(c->seen = nb_calloc((size_t)c->size, sizeof *c->seen))) {
        MPI_Comm_free(&c->comm);
        nb_free(c);
        return NULL;
    }
    nb_mpi_comms++;
    return c;
}

nb_comm *nb_comm_world(void)
{
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized) {
        nb_set_error(NB_ERR_STATE, "comm_world: MPI was already finalised");
        return NULL;
    }
    if (!inited) {
        int provided = 0;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            nb_set_error(NB_ERR_COMM, "comm_world: MPI_Init_thread failed");
            return NULL;
        }
        nb_mpi_initialised_here = 1;
    }
    return make_comm(MPI_COMM_WORLD, nb_mpi_initialised_here);
}

nb_comm *nb_comm_from_mpi(const void *mpi_comm)
{
    int inited = 0;
    MPI_Initialized(&inited);
    if (!mpi_comm || !inited) {
        nb_set_error(NB_ERR_ARG, "comm_from_mpi: %s", mpi_comm ? "MPI is not initialised" : "NULL communicator");
        return NULL;
    }
    return make_comm(*(const MPI_Comm *)mpi_comm, 0);
}

void nb_comm_free(nb_comm *c)
{
    if (!c) return;
    if (!c->broken) {
        if (c->npend) wait_pending(c, "freeing the communicator");
        if (!c->broken) MPI_Comm_free(&c->comm);
    }
    nb_free(c->seen);
    int owns = c->owns_mpi;
    nb_free(c);
    nb_mpi_comms--;
    if (owns && nb_mpi_comms == 0 && !nb_mpi_failed) {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
    }
}

int nb_comm_rank(const nb_comm *c) { return c ? c->rank : 0; }
int nb_comm_size(const nb_comm *c) { return c ? c->size : 1; }

void nb_comm_set_timeout(nb_comm *c, double seconds)
{
    if (c) c->timeout = seconds > 0 ? seconds : 0;
}

double nb_comm_timeout(const nb_comm *c) { return c ? c->timeout : 0; }

void nb_comm_set_bucket_bytes(nb_comm *c, size_t bytes)
{
    if (c) c->bucket_bytes = bytes;
}

size_t nb_comm_bucket_bytes(const nb_comm *c) { return c ? c->bucket_bytes : 0; }

static nb_status start_sum(nb_comm *c, void *buf, size_t n, MPI_Datatype type, size_t elem, const char *what)
{
    nb_status st = check_usable(c, what);
    for (size_t at = 0; st == NB_OK && at < n; at += CHUNK) {
        size_t k = n - at < CHUNK ? n - at : CHUNK;
        if ((st = add_pending(c, what)) != NB_OK) break;
        c->seq++;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + at * elem, (int)k, type, MPI_SUM, c->comm,
                                &c->pend[c->npend]);
        if (rc != MPI_SUCCESS) return mpi_error(c, rc, what);
        c->npend++;
    }
    return st;
}

nb_status nb_comm_start_f32(nb_comm *c, float *buf, size_t n, const char *what)
{
    return c ? start_sum(c, buf, n, MPI_FLOAT, sizeof(float), what) : NB_OK;
}

nb_status nb_comm_progress(nb_comm *c)
{
    if (!c || !c->npend || c->broken) return NB_OK;
    int done = 0;
    int rc = MPI_Testall(c->npend, c->pend, &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_error(c, rc, "a gradient bucket's sum");
    if (done) c->npend = 0;
    return NB_OK;
}

nb_status nb_comm_wait_all(nb_comm *c, const char *what)
{
    if (!c) return NB_OK;
    nb_status st = check_usable(c, what);
    return st == NB_OK ? wait_pending(c, what) : st;
}

nb_status nb_comm_allreduce_f32(nb_comm *c, float *buf, size_t n, const char *what)
{
    if (!c) return NB_OK;
    nb_status st = start_sum(c, buf, n, MPI_FLOAT, sizeof(float), what);
    return st == NB_OK ? wait_pending(c, what) : st;
}

nb_status nb_comm_allreduce_f64(nb_comm *c, double *buf, size_t n, const char *what)
{
    if (!c) return NB_OK;
    nb_status st = start_sum(c, buf, n, MPI_DOUBLE, sizeof(double), what);
    return st == NB_OK ? wait_pending(c, what) : st;
}

nb_status nb_comm_allreduce(nb_comm *c, double *buf, size_t n)
{
    if (c && !buf && n) return nb_set_error(NB_ERR_ARG, "comm_allreduce: NULL buffer");
    return nb_comm_allreduce_f64(c, buf, n, "nb_comm_allreduce");
}

nb_status nb_comm_bcast(nb_comm *c, void *buf, size_t bytes, int root, const char *what)
{
    if (!c) return NB_OK;
    nb_status st = check_usable(c, what);
    const size_t chunk = (size_t)1 << 30;
    for (size_t at = 0; st == NB_OK && at < bytes; at += chunk) {
        size_t k = bytes - at < chunk ? bytes - at : chunk;
        if ((st = add_pending(c, what)) != NB_OK) break;
        c->seq++;
        int rc = MPI_Ibcast((char *)buf + at, (int)k, MPI_BYTE, root, c->comm, &c->pend[c->npend]);
        if (rc != MPI_SUCCESS) return mpi_error(c, rc, what);
        c->npend++;
    }
    return st == NB_OK ? wait_pending(c, what) : st;
}

/* Every rank's n 64-bit words into all (size x n). */
static nb_status allgather_u64(nb_comm *c, const uint64_t *mine, int n, uint64_t *all, const char *what)
{
    nb_status st = check_usable(c, what);
    if (st == NB_OK) st = add_pending(c, what);
    if (st != NB_OK) return st;
    c->seq++;
    int rc = MPI_Iallgather(mine, n, MPI_UINT64_T, all, n, MPI_UINT64_T, c->comm, &c->pend[c->npend]);
    if (rc != MPI_SUCCESS) return mpi_error(c, rc, what);
    c->npend++;
    return wait_pending(c, what);
}

/* For an item that differs and is short text ("batch 64 lr 0.001"), the
 * first word pair where rank 0 and rank `other` differ:
 * " (rank 0: batch 64, rank 1: batch 32)". Collective (all ranks know the
 * item differs); "" when it is not text. */
enum { TXT = 160 };

/* Words from..to of s (space-separated) into out. */
static void words(const char *s, int from, int to, char *out, size_t size)
{
    const char *start = NULL, *p = s;
    out[0] = '\0';
    for (int w = 0; *p; w++) {
        while (*p == ' ') p++;
        if (!*p) break;
        if (w == from) start = p;
        p += strcspn(p, " ");
        if (w == to) break;
    }
    if (start) snprintf(out, size, "%.*s", (int)(p - start), start);
}

static nb_status text_detail(nb_comm *c, const nb_comm_item *it, int other, char *out, size_t size)
{
    char mine[TXT];
    memset(mine, 0, sizeof mine);
    int text = it->data && it->bytes < TXT;
    for (size_t k = 0; text && k < it->bytes; k++) {
        unsigned char ch = ((const unsigned char *)it->data)[k];
        text = ch >= 32 && ch < 127;
    }
    if (text) memcpy(mine, it->data, it->bytes);
    char *all = nb_calloc((size_t)c->size, TXT);
    if (!all) return NB_ERR_NOMEM;
    nb_status st = add_pending(c, "the check that every rank has the same settings");
    if (st == NB_OK) {
        c->seq++;
        int rc = MPI_Iallgather(mine, TXT, MPI_CHAR, all, TXT, MPI_CHAR, c->comm, &c->pend[c->npend]);
        if (rc != MPI_SUCCESS) st = mpi_error(c, rc, "the check that every rank has the same settings");
        else c->npend++, st = wait_pending(c, "the check that every rank has the same settings");
    }
    out[0] = '\0';
    const char *a = all, *b = all + (size_t)other * TXT;
    if (st == NB_OK && a[0] && b[0]) {
        /* the first word where they differ */
        int w = 0, k = -1;
        const char *p = a, *q = b;
        while (*p || *q) {
            while (*p == ' ') p++;
            while (*q == ' ') q++;
            size_t lp = strcspn(p, " "), lq = strcspn(q, " ");
            if (lp != lq || memcmp(p, q, lp)) {
                k = w;
                break;
            }
            if (!*p && !*q) break;
            p += lp, q += lq, w++;
        }
        /* "key value" texts: the pair around the word */
        int from = k < 0 ? 0 : (k % 2 ? k - 1 : k), to = from + 1;
        char wa[64], wb[64];
        words(a, from, to, wa, sizeof wa);
        words(b, from, to, wb, sizeof wb);
        snprintf(out, size, " (rank 0: %s; rank %d: %s)", wa, other, wb);
    }
    nb_free(all);
    return st;
}

nb_status nb_comm_check_same(nb_comm *c, const nb_comm_item *items, int n)
{
    if (!c || n <= 0) return NB_OK;
    if (!items) return nb_set_error(NB_ERR_ARG, "comm_check_same: NULL items");
    uint64_t *mine = nb_calloc((size_t)n, sizeof *mine);
    uint64_t *all = nb_calloc((size_t)n * (size_t)c->size, sizeof *all);
    int *differs = nb_calloc((size_t)c->size, sizeof *differs);
    nb_status st = NB_ERR_NOMEM;
    if (!mine || !all || !differs) goto done;
    for (int i = 0; i < n; i++) mine[i] = nb_hash_bytes(0, items[i].data, items[i].data ? items[i].bytes : 0);
    if ((st = allgather_u64(c, mine, n, all, "the check that every rank has the same settings")) != NB_OK)
        goto done;
    char msg[480];
    size_t used = 0;
    msg[0] = '\0';
    for (int i = 0; i < n; i++) {
        int any = 0;
        for (int r = 0; r < c->size; r++) any |= differs[r] = all[(size_t)r * (size_t)n + (size_t)i] != all[i];
        if (!any) continue;
        char ranks[160];
        int count = 0;
        for (int r = 0; r < c->size; r++) count += differs[r];
        rank_list(ranks, sizeof ranks, differs, c->size);
        int other = 0;
        while (!differs[other]) other++;
        char detail[160];
        if ((st = text_detail(c, &items[i], other, detail, sizeof detail)) != NB_OK) goto done;
        if (used < sizeof msg)
            used += (size_t)snprintf(msg + used, sizeof msg - used, "%s%s: rank%s %s differ%s from rank 0%s",
                                 used ? "; " : "", items[i].what ? items[i].what : "?", count > 1 ? "s" : "",
                                 ranks, count > 1 ? "" : "s", detail);
    }
    st = msg[0] ? nb_set_error(NB_ERR_COMM, "the ranks disagree: %s", msg) : NB_OK;
done:
    nb_free(mine);
    nb_free(all);
    nb_free(differs);
    return st;
}

nb_status nb_comm_agree(nb_comm *c, nb_status local, const char *what)
{
    if (!c) return local;
    enum { MSG = 256 };
    uint64_t mine = (uint64_t)local;
    uint64_t *all = nb_calloc((size_t)c->size, sizeof *all);
    char *msgs = nb_calloc((size_t)c->size, MSG);
    int *failed = nb_calloc((size_t)c->size, sizeof *failed);
    char own[MSG];
    snprintf(own, sizeof own, "%s", local != NB_OK ? nb_last_error() : "");
    nb_status st = (all && msgs && failed) ? NB_OK : NB_ERR_NOMEM;
    if (st == NB_OK) st = allgather_u64(c, &mine, 1, all, what ? what : "an agreement");
    int nfail = 0, first = -1;
    for (int r = 0; st == NB_OK && r < c->size; r++)
        if ((failed[r] = all[r] != 0) && nfail++ == 0) first = r;
    if (st == NB_OK && nfail) {
        /* everyone learns the first failed rank's message */
        st = check_usable(c, what);
        if (st == NB_OK && (st = add_pending(c, what)) == NB_OK) {
            c->seq++;
            int rc = MPI_Iallgather(own, MSG, MPI_CHAR, msgs, MSG, MPI_CHAR, c->comm, &c->pend[c->npend]);
            if (rc != MPI_SUCCESS) st = mpi_error(c, rc, what);
            else c->npend++, st = wait_pending(c, what);
        }
        if (st == NB_OK) {
            char ranks[160];
            rank_list(ranks, sizeof ranks, failed, c->size);
            msgs[(size_t)first * MSG + MSG - 1] = '\0';
            st = nb_set_error(local != NB_OK ? local : NB_ERR_COMM, "%s failed on rank%s %s: %s%s",
                              what ? what : "a step", nfail > 1 ? "s" : "", ranks, nfail > 1 ? "the first says: " : "",
                              msgs + (size_t)first * MSG);
        }
    }
    nb_free(all);
    nb_free(msgs);
    nb_free(failed);
    return st;
}

int nb_comm_failed(const nb_comm *c) { return c ? c->broken : 0; }

#endif /* NB_HAVE_MPI */
