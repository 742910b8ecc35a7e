/*
 * dist.h - the communicator's internals shared with the trainer: sums,
 * broadcasts and gradient buckets, all bounded by the communicator's time
 * limit. Not installed. A NULL communicator is one process: every call is
 * then a no-op that returns NB_OK.
 */
#ifndef NB_DIST_H
#define NB_DIST_H

#include "../core/internal.h"

/* Blocking sums in place over every rank; `what` names the collective in
 * error messages ("the gradient sum"). */
nb_status nb_comm_allreduce_f32(nb_comm *c, float *buf, size_t n, const char *what);
nb_status nb_comm_allreduce_f64(nb_comm *c, double *buf, size_t n, const char *what);
/* Rank root's bytes to every rank. */
nb_status nb_comm_bcast(nb_comm *c, void *buf, size_t bytes, int root, const char *what);

/* Nonblocking float sums (gradient buckets): start one, let MPI progress
 * the started ones without waiting, wait for every started one. */
nb_status nb_comm_start_f32(nb_comm *c, float *buf, size_t n, const char *what);
nb_status nb_comm_progress(nb_comm *c);
nb_status nb_comm_wait_all(nb_comm *c, const char *what);
size_t    nb_comm_bucket_bytes(const nb_comm *c);

/* A 64-bit hash of bytes, continuing from h (0 to start). */
uint64_t nb_hash_bytes(uint64_t h, const void *data, size_t bytes);

#endif /* NB_DIST_H */
