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
};

#endif
