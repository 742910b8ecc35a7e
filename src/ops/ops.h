/*
 * ops.h - the op table entries, one per nb_op_kind, defined in the op family
 * files next to the functions they point to; and helpers shared by ops.
 */
#ifndef NB_OPS_H
#define NB_OPS_H

#include "../core/internal.h"

/* leaves.c */
extern const nb_op_def nb_def_input, nb_def_param, nb_def_const;
/* binary.c */
extern const nb_op_def nb_def_add, nb_def_sub, nb_def_mul, nb_def_div;
/* unary.c */
extern const nb_op_def nb_def_neg, nb_def_scale, nb_def_add_scalar, nb_def_exp, nb_def_log,
    nb_def_sqrt, nb_def_pow, nb_def_abs;
/* activation.c */
extern const nb_op_def nb_def_relu, nb_def_leaky_relu, nb_def_elu, nb_def_gelu, nb_def_sigmoid,
    nb_def_tanh, nb_def_softplus;
/* matmul.c */
extern const nb_op_def nb_def_matmul;
/* layout.c */
extern const nb_op_def nb_def_permute, nb_def_reshape, nb_def_concat, nb_def_slice;
/* reduce.c */
extern const nb_op_def nb_def_sum, nb_def_mean, nb_def_max;
/* softmax.c */
extern const nb_op_def nb_def_softmax, nb_def_log_softmax;
/* conv.c, pool.c */
extern const nb_op_def nb_def_conv2d, nb_def_max_pool2d, nb_def_avg_pool2d;
/* loss.c */
extern const nb_op_def nb_def_softmax_ce, nb_def_mse, nb_def_bce_logits, nb_def_nll, nb_def_l1,
    nb_def_huber;
/* linear.c, dropout.c, norm.c, embedding.c */
extern const nb_op_def nb_def_linear, nb_def_dropout, nb_def_batchnorm, nb_def_layernorm,
    nb_def_embedding;

/* Shape rule shared by every op whose output has its (first) input's shape. */
nb_status nb_shape_same(const nb_node *n, const nb_shape *const *in, nb_shape *out);

/* Formats "op: " + message with up to two shapes; for shape errors. */
nb_status nb_shape_error(const nb_node *n, const char *what, const nb_shape *a, const nb_shape *b);

#endif
