/*
 * nn.h - internals shared by the trainer and checkpoints.
 */
#ifndef NB_NN_H
#define NB_NN_H

#include "../core/internal.h"

struct nb_trainer {
    nb_model *m;
    const nb_dataset *d;
    nb_train_config cfg;
    char optimizer[16], schedule[16];
    nb_optim *opt;
    nb_schedule sched;
    nb_loader *loader;
    nb_plan *plan[2];        /* [0]: full batches, [1]: the last short one (or NULL) */
    size_t batches, last;    /* per epoch; size of the last batch */
    int fold;                /* the last batch holds a lone leftover sample too (batchnorm) */
    int epoch;               /* epochs done */
    size_t batch_in_epoch;   /* batches done in the current epoch (a run stopped part-way) */
    int failed;              /* a step failed half-done: no checkpoint can describe this state */
    long step;
    int anomaly;             /* nb_trainer_set_detect_anomaly */
    /* data-parallel training (nb_trainer_set_comm); one process: comm NULL,
     * off 0 and cnt the batch sizes */
    nb_comm *comm;
    unsigned dist_flags;     /* NB_DIST_SYNC_BN */
    size_t off[2], cnt[2];   /* this rank's shard of a full batch [0] and of the last one [1] */
    float weight[2];         /* cnt / global batch size: the gradients' weight in the sum */
    nb_sync sync[2];         /* per plan: synchronised batch norm */
    double *red;             /* per-step sums across ranks: loss, correct, samples, failures, then
                                the running statistics of batch norm (averaged when not synchronised) */
    size_t nred;
    int n_bn;                /* batch-norm layers whose running statistics are averaged */
    float **bn_ptr;          /* their running_mean and running_var, [2 n_bn] */
    size_t *bn_len;
    int n_buckets, next_bucket, cur;   /* gradient buckets, the next to start, the plan running */
    size_t *bucket_lo, *bucket_hi;     /* floats of the gradient block, last parameters first */
    int *bucket_ready;                 /* node after whose backward step a bucket is complete */
    /* synchronised batch norm: the sizes of a step's sums, in order (forward,
     * then backward), and how many this step has done; a rank that fails
     * part-way still takes part in the rest, with zeros */
    size_t *sync_sizes, sync_max;
    int n_sync, sync_calls;
};

#endif
