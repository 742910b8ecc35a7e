/*
 * embed.c - data-parallel training from a program of one's own, through the
 * C API (docs/distributed.md; run by tests/test_mpi.sh):
 *
 *   mpirun -np 2 build-mpi/mpi_embed
 *
 * Every rank builds the same model and data, the trainer is told the
 * communicator, and the loop is the one of a single process. Rank 0 prints
 * the loss of every epoch and a checksum of the final weights.
 */
#include "nabla.h"

#include <mpi.h>
#include <stdio.h>

static void fail(nb_comm *c)
{
    fprintf(stderr, "rank %d: %s\n", nb_comm_rank(c), nb_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1); /* one rank failing alone must end the job */
}

int main(void)
{
    nb_comm *c = nb_comm_world(); /* initialises MPI */
    if (!c) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    nb_comm_set_timeout(c, 30);
    nb_model *m = nb_model_from_text("input 2\nlinear 32\nrelu\ndropout 0.1\nlinear 3\n"
                                     "loss softmax_cross_entropy\n", "spiral.nn", 7);
    nb_dataset *d = nb_dataset_synthetic("spiral", 600, 1);
    nb_train_config cfg = {0};
    cfg.batch = 60;   /* the global batch, shared out among the ranks */
    cfg.optimizer = "adam";
    cfg.lr = 0.01f;
    cfg.weight_decay = -1;
    cfg.epochs = 20;
    cfg.seed = 5;
    nb_trainer *t = m && d ? nb_trainer_create(m, d, &cfg) : NULL;
    if (!t || nb_trainer_set_comm(t, c, 0) != NB_OK) fail(c);
    nb_train_stats s;
    for (int e = 0; e < cfg.epochs; e++) {
        if (nb_trainer_epoch(t, &s, NULL, NULL) != NB_OK) fail(c);
        if (nb_comm_rank(c) == 0) printf("epoch %d loss %.6f acc %.4f\n", e + 1, s.loss, s.accuracy);
    }
    /* the same weights on every rank: rank 0's sum stands for all */
    nb_graph *g = nb_model_graph(m);
    double sum = 0;
    for (size_t i = 0; i < nb_graph_param_numel(g); i++) sum += nb_graph_param_data(g)[i];
    if (nb_comm_rank(c) == 0) printf("ranks %d weights sum %.6f\n", nb_comm_size(c), sum);
    nb_trainer_free(t);
    nb_dataset_free(d);
    nb_model_free(m);
    nb_comm_free(c); /* finalises MPI */
    return 0;
}
