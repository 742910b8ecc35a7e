/*
 * test_dist.c - the data-parallel API in one process: a NULL communicator is
 * one process everywhere (sums, checks and agreements are no-ops, a trainer
 * given it trains with the same bits as one never given any), and a build
 * without MPI says so. Training over several processes is checked by
 * tests/test_mpi.sh under mpirun.
 */
#include "test.h"

#include <string.h>

static const char *dist_spec = "input 2\n"
                               "linear 16\n"
                               "batchnorm\n"
                               "relu\n"
                               "dropout 0.2\n"
                               "linear 3\n"
                               "loss softmax_cross_entropy\n";

NB_TEST(test_dist_null_comm_is_one_process)
{
    CHECK(nb_comm_rank(NULL) == 0);
    CHECK(nb_comm_size(NULL) == 1);
    double v[3] = {1, 2, 3};
    CHECK_OK(nb_comm_allreduce(NULL, v, 3));
    CHECK(v[0] == 1 && v[1] == 2 && v[2] == 3);
    nb_comm_item it = {"x", v, sizeof v};
    CHECK_OK(nb_comm_check_same(NULL, &it, 1));
    CHECK(nb_comm_agree(NULL, NB_ERR_VALUE, "x") == NB_ERR_VALUE);
    CHECK(nb_comm_failed(NULL) == 0);
    nb_comm_set_timeout(NULL, 5); /* no-ops */
    nb_comm_set_bucket_bytes(NULL, 1024);
    nb_comm_free(NULL);
    if (!nb_have_mpi()) {
        CHECK(nb_comm_world() == NULL);
        CHECK(strstr(nb_last_error(), "without MPI") && strstr(nb_last_error(), "make MPI=1"));
    }
}

/* A trainer detached with nb_trainer_set_comm(t, NULL, 0) - re-planned for
 * one process - gives the bits of one never touched, with batch norm,
 * dropout, a short last batch and a lone sample folded into the one before
 * (97 = 3 x 32 + 1). */
NB_TEST(test_dist_set_null_comm_same_bits)
{
    nb_dataset *d = nb_dataset_synthetic("spiral", 97, 3);
    CHECK_PTR(d);
    nb_train_config c = {0};
    c.batch = 32;
    c.optimizer = "adam";
    c.lr = 0.01f;
    c.epochs = 3;
    c.seed = 4;
    c.weight_decay = -1;
    nb_model *m[2];
    nb_trainer *t[2];
    for (int k = 0; k < 2; k++) {
        m[k] = nb_model_from_text(dist_spec, "d.nn", 2);
        t[k] = nb_trainer_create(m[k], d, &c);
        CHECK_PTR(t[k]);
        if (!t[k]) return;
    }
    CHECK_OK(nb_trainer_set_comm(t[1], NULL, 0));
    CHECK(nb_trainer_comm(t[1]) == NULL);
    CHECK(nb_trainer_set_comm(t[1], NULL, 8) == NB_ERR_ARG);
    nb_train_stats s[2];
    for (int e = 0; e < 3; e++)
        for (int k = 0; k < 2; k++) CHECK_OK(nb_trainer_epoch(t[k], &s[k], NULL, NULL));
    CHECK(s[0].loss == s[1].loss && s[0].samples == 97 && s[1].samples == 97);
    nb_graph *g0 = nb_model_graph(m[0]), *g1 = nb_model_graph(m[1]);
    CHECK(!memcmp(nb_graph_param_data(g0), nb_graph_param_data(g1), nb_graph_param_numel(g0) * sizeof(float)));
    nb_eval_result a, b;
    CHECK_OK(nb_evaluate(m[0], d, 40, &a));
    CHECK_OK(nb_evaluate_comm(NULL, m[0], d, 40, &b));
    CHECK(a.loss == b.loss && a.accuracy == b.accuracy && a.samples == 97);
    CHECK(!memcmp(a.confusion, b.confusion, 9 * sizeof(size_t)));
    nb_eval_result_free(&a);
    nb_eval_result_free(&b);
    for (int k = 0; k < 2; k++) {
        nb_trainer_free(t[k]);
        nb_model_free(m[k]);
    }
    nb_dataset_free(d);
}
