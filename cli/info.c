/*
 * info.c - `nabla info MODEL.nn|CKPT`: the layer table with output shapes
 * and parameter counts.
 */
#include "cli.h"

#include <string.h>

static void shape_text(int nd, const int64_t *s, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < nd && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)s[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

int cmd_info(int argc, char **argv)
{
    cli_opt opts[] = {{NULL, 0, NULL}};
    cli_args a = {"info", {0}, 0};
    int rc = cli_parse(argc, argv, 2, opts, &a);
    if (rc) return rc;
    if (a.npos != 1) {
        fprintf(stderr, "usage: nabla info MODEL.nn|CKPT.safetensors\n");
        return EXIT_USAGE;
    }
    const char *path = a.pos[0];
    size_t n = strlen(path);
    int ckpt = n > 12 && !strcmp(path + n - 12, ".safetensors");
    nb_model *m = ckpt ? nb_checkpoint_load(path) : nb_model_from_file(path, 0);
    if (!m) return cli_fail_nb("info");
    int64_t s[NB_MAX_DIMS];
    char buf[96];
    shape_text(nb_model_input_shape(m, s), s, buf, sizeof buf);
    printf("%-5s %-14s %-20s %12s\n", "index", "layer", "output shape", "parameters");
    printf("%-5s %-14s %-20s %12s\n", "", "input", buf, "");
    size_t total = 0;
    for (int i = 0; i < nb_model_layer_count(m); i++) {
        nb_layer_info li;
        nb_model_layer(m, i, &li);
        shape_text(li.ndim, li.shape, buf, sizeof buf);
        printf("%-5d %-14s %-20s %12zu\n", li.index, li.kind, buf, li.params);
        total += li.params;
    }
    printf("total parameters: %zu (%.2f MB as float32)\n", total, (double)total * 4 / 1e6);
    printf("loss: %s\n", nb_node_op(nb_model_loss(m)));
    if (ckpt) {
        nb_st_file *f = nb_st_read(path);
        const char *e = f ? nb_st_meta(f, "epoch") : NULL;
        if (e) {
            const char *b = nb_st_meta(f, "batch_in_epoch"), *st = nb_st_meta(f, "step");
            const char *o = nb_st_meta(f, "optimizer"), *lr = nb_st_meta(f, "lr");
            printf("trained: epoch %s", e);
            if (b && strcmp(b, "0")) printf(" and %s batches", b);
            printf(", step %s, optimizer %s, lr %s\n", st ? st : "?", o ? o : "?", lr ? lr : "?");
        }
        nb_st_free(f);
    }
    nb_model_free(m);
    if (fflush(stdout) != 0 || ferror(stdout)) return cli_fail("info", "writing the output failed");
    return EXIT_OK;
}
