/*
 * ops.c - the op table: nb_op_kind -> its definition. The enum values are
 * stable ids; the table is the one place that maps them.
 */
#include "ops.h"

#include <stdio.h>

const nb_op_def *const nb_op_table[NB_OP_COUNT] = {
    [NB_OP_INPUT] = &nb_def_input,
    [NB_OP_PARAM] = &nb_def_param,
    [NB_OP_CONST] = &nb_def_const,
    [NB_OP_ADD] = &nb_def_add,
    [NB_OP_SUB] = &nb_def_sub,
    [NB_OP_MUL] = &nb_def_mul,
    [NB_OP_DIV] = &nb_def_div,
    [NB_OP_NEG] = &nb_def_neg,
    [NB_OP_SCALE] = &nb_def_scale,
    [NB_OP_ADD_SCALAR] = &nb_def_add_scalar,
    [NB_OP_EXP] = &nb_def_exp,
    [NB_OP_LOG] = &nb_def_log,
    [NB_OP_SQRT] = &nb_def_sqrt,
    [NB_OP_POW] = &nb_def_pow,
    [NB_OP_ABS] = &nb_def_abs,
    [NB_OP_RELU] = &nb_def_relu,
    [NB_OP_LEAKY_RELU] = &nb_def_leaky_relu,
    [NB_OP_ELU] = &nb_def_elu,
    [NB_OP_GELU] = &nb_def_gelu,
    [NB_OP_SIGMOID] = &nb_def_sigmoid,
    [NB_OP_TANH] = &nb_def_tanh,
    [NB_OP_SOFTPLUS] = &nb_def_softplus,
    [NB_OP_MATMUL] = &nb_def_matmul,
    [NB_OP_PERMUTE] = &nb_def_permute,
    [NB_OP_RESHAPE] = &nb_def_reshape,
    [NB_OP_CONCAT] = &nb_def_concat,
    [NB_OP_SLICE] = &nb_def_slice,
    [NB_OP_SUM] = &nb_def_sum,
    [NB_OP_MEAN] = &nb_def_mean,
    [NB_OP_MAX] = &nb_def_max,
    [NB_OP_SOFTMAX] = &nb_def_softmax,
    [NB_OP_LOG_SOFTMAX] = &nb_def_log_softmax,
    [NB_OP_CONV2D] = &nb_def_conv2d,
    [NB_OP_MAX_POOL2D] = &nb_def_max_pool2d,
    [NB_OP_AVG_POOL2D] = &nb_def_avg_pool2d,
    [NB_OP_SOFTMAX_CE] = &nb_def_softmax_ce,
    [NB_OP_MSE] = &nb_def_mse,
    [NB_OP_BCE_LOGITS] = &nb_def_bce_logits,
    [NB_OP_LINEAR] = &nb_def_linear,
    [NB_OP_DROPOUT] = &nb_def_dropout,
    [NB_OP_BATCHNORM] = &nb_def_batchnorm,
    [NB_OP_LAYERNORM] = &nb_def_layernorm,
    [NB_OP_EMBEDDING] = &nb_def_embedding,
    [NB_OP_NLL] = &nb_def_nll,
    [NB_OP_L1] = &nb_def_l1,
    [NB_OP_HUBER] = &nb_def_huber,
};

/* Leaves have no inputs: the plan sets their shape and memory itself. */
static nb_status leaf_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    (void)in;
    *out = n->shape;
    return NB_OK;
}

const nb_op_def nb_def_input = {"input", 0, leaf_shape, NULL, NULL, NULL, NULL};
const nb_op_def nb_def_param = {"param", 0, leaf_shape, NULL, NULL, NULL, NULL};
const nb_op_def nb_def_const = {"const", 0, leaf_shape, NULL, NULL, NULL, NULL};

nb_status nb_shape_same(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    (void)n;
    *out = *in[0];
    return NB_OK;
}

nb_status nb_shape_error(const nb_node *n, const char *what, const nb_shape *a, const nb_shape *b)
{
    char sa[96] = "", sb[96] = "";
    if (a) nb_shape_str(a, sa, sizeof sa);
    if (b) nb_shape_str(b, sb, sizeof sb);
    if (a && b)
        return nb_set_error(NB_ERR_SHAPE, "%s: %s (shapes %s and %s)", nb_op_table[n->op]->name,
                            what, sa, sb);
    if (a)
        return nb_set_error(NB_ERR_SHAPE, "%s: %s (shape %s)", nb_op_table[n->op]->name, what, sa);
    return nb_set_error(NB_ERR_SHAPE, "%s: %s", nb_op_table[n->op]->name, what);
}
