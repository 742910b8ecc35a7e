/*
 * model.c - a network described by a model spec (.nn text): parse each line
 * into a layer, build the layer's part of the graph at once (so every shape
 * is checked when the spec is read), and initialise parameters as PyTorch's
 * modules would.
 *
 * Naming follows torch.nn.Sequential: every line but `input` and `loss` is
 * one module with the next index, so a linear layer on the fourth line after
 * `input` owns "3.weight" and "3.bias", exactly as in PyTorch's state dict.
 *
 * The format is documented in docs/model-spec.md.
 */
#include "../core/internal.h"
#include "../io/json.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 12
#define MAX_LAYER_PARAMS 5

typedef struct nb_layer nb_layer;
typedef struct nb_layer_def nb_layer_def;

struct nb_layer {
    const nb_layer_def *def;
    int line;
    char *text;                       /* the line, trimmed, for messages */
    int ntok;
    char *tok[MAX_TOKENS];            /* tok[0] is the kind */
    int index;                        /* nn.Sequential index, -1 for input/loss */
    nb_node *out;
    nb_node *param[MAX_LAYER_PARAMS]; /* parameters and buffers, in state-dict order */
    int nparam;
    /* how to initialise param[k] */
    nb_init_kind init[MAX_LAYER_PARAMS];
    double fan_in, fan_out, init_value[MAX_LAYER_PARAMS];
    size_t trainable;
};

struct nb_model {
    char *spec, *source;
    nb_graph *g;
    nb_layer *layers;                 /* every line: input first, loss last */
    int n;
    nb_node *x, *y, *out, *loss;
    int classifier;
};

/* ---- errors ---------------------------------------------------------- */

static nb_status line_error(const nb_model *m, const nb_layer *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static nb_status line_error(const nb_model *m, const nb_layer *l, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (l) return nb_set_error(NB_ERR_FORMAT, "%s:%d: '%s': %s", m->source, l->line, l->text, msg);
    return nb_set_error(NB_ERR_FORMAT, "%s: %s", m->source, msg);
}

/* ---- tokens: positional numbers and key=value options ---------------- */

/* The value of option `key`, or NULL. */
static const char *opt(const nb_layer *l, const char *key)
{
    size_t k = strlen(key);
    for (int i = 1; i < l->ntok; i++)
        if (!strncmp(l->tok[i], key, k) && l->tok[i][k] == '=') return l->tok[i] + k + 1;
    return NULL;
}

/* The i-th positional argument (1-based, options skipped), or NULL. */
static const char *pos(const nb_layer *l, int i)
{
    for (int t = 1; t < l->ntok; t++)
        if (!strchr(l->tok[t], '=') && --i == 0) return l->tok[t];
    return NULL;
}

static int n_pos(const nb_layer *l)
{
    int n = 0;
    for (int t = 1; t < l->ntok; t++) n += strchr(l->tok[t], '=') == NULL;
    return n;
}

static int parse_num(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *s && !*end && errno == 0 && isfinite(*v);
}

/* Reads a number from positional argument i or option key (whichever is
 * given; NULL key or i == 0 means that form is not allowed), checks it lies
 * in [lo, hi] and, if integral, that it is a whole number. */
static nb_status get_num(const nb_model *m, const nb_layer *l, int i, const char *key, double def,
                         double lo, double hi, int integral, double *out)
{
    const char *s = i ? pos(l, i) : NULL, *what = key ? key : "value";
    if (s && key && opt(l, key)) return line_error(m, l, "%s is given twice (as a number and as %s=)", key, key);
    if (!s && key) s = opt(l, key);
    if (!s) {
        if (isnan(def)) return line_error(m, l, "missing %s", what);
        *out = def;
        return NB_OK;
    }
    double v;
    if (!parse_num(s, &v)) return line_error(m, l, "%s '%s' is not a number", what, s);
    if (integral && v != floor(v)) return line_error(m, l, "%s %s must be a whole number", what, s);
    if (v < lo || v > hi) return line_error(m, l, "%s %s is outside [%g, %g]", what, s, lo, hi);
    *out = v;
    return NB_OK;
}

static nb_status get_bool(const nb_model *m, const nb_layer *l, const char *key, int def, int *out)
{
    const char *s = opt(l, key);
    if (!s) *out = def;
    else if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes")) *out = 1;
    else if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no")) *out = 0;
    else return line_error(m, l, "%s=%s: expected true or false", key, s);
    return NB_OK;
}

/* ---- layer table ------------------------------------------------------ */

typedef nb_status (*build_fn)(nb_model *m, nb_layer *l, nb_node *x);

struct nb_layer_def {
    const char *kind;
    int min_pos, max_pos;
    const char *options;    /* space-separated allowed option keys */
    build_fn build;
    int module;             /* 1: takes an nn.Sequential index */
};

/* The per-sample shape (batch axis dropped) of node n. */
static int sample_shape(const nb_node *n, int64_t *s)
{
    int64_t full[NB_MAX_DIMS];
    int nd = nb_node_shape(n, full);
    for (int i = 1; i < nd; i++) s[i - 1] = full[i];
    return nd - 1;
}

static nb_status fail_build(nb_model *m, nb_layer *l)
{
    return line_error(m, l, "%s", nb_last_error());
}

/* The largest model a spec may describe, in floats of parameters and
 * buffers: a few bytes of text must not be able to claim gigabytes.
 * Raise it at build time with -DNB_MAX_MODEL_FLOATS=... */
#ifndef NB_MAX_MODEL_FLOATS
#define NB_MAX_MODEL_FLOATS ((size_t)1 << 27) /* 128 Mi floats: 512 MiB, as much again for gradients */
#endif

/* Creates parameter "<index>.<name>" and records how to initialise it. */
static nb_node *add_param(nb_model *m, nb_layer *l, const char *name, int ndim, const int64_t *shape,
                          nb_init_kind init, double value, int trainable)
{
    char full[64];
    size_t count = 1, total = nb_graph_param_numel(m->g);
    for (int i = 0; i < ndim; i++)
        if (!nb_mul_ok(count, (size_t)shape[i], &count)) count = SIZE_MAX;
    if (count > NB_MAX_MODEL_FLOATS || total + count > NB_MAX_MODEL_FLOATS) {
        nb_set_error(NB_ERR_ARG, "the model would have more than %zu parameters (nabla's limit for a spec)",
                     (size_t)NB_MAX_MODEL_FLOATS);
        nb_graph_fail(m->g, NB_ERR_ARG);
        return NULL;
    }
    snprintf(full, sizeof full, "%d.%s", l->index, name);
    nb_node *p = trainable ? nb_param(m->g, full, ndim, shape) : nb_const(m->g, full, ndim, shape, NULL);
    if (!p) return NULL;
    l->param[l->nparam] = p;
    l->init[l->nparam] = init;
    l->init_value[l->nparam] = value;
    l->nparam++;
    if (trainable) l->trainable += nb_node_numel(p);
    return p;
}

static nb_status weight_init(nb_model *m, nb_layer *l, nb_init_kind *kind)
{
    const char *s = opt(l, "init");
    *kind = NB_INIT_UNIFORM_FANIN;
    if (!s) return NB_OK;
    int k = nb_init_kind_from_name(s);
    if (k < 0 || k == NB_INIT_CONSTANT)
        return line_error(m, l, "init=%s: expected default, xavier_uniform, xavier_normal, "
                                "he_uniform, he_normal, normal or zeros", s);
    *kind = (nb_init_kind)k;
    return NB_OK;
}

static nb_status build_linear(nb_model *m, nb_layer *l, nb_node *x)
{
    double out;
    int bias;
    nb_init_kind wi;
    nb_status st;
    if ((st = get_num(m, l, 1, NULL, NAN, 1, 1 << 24, 1, &out)) || (st = get_bool(m, l, "bias", 1, &bias)) ||
        (st = weight_init(m, l, &wi)))
        return st;
    int64_t s[NB_MAX_DIMS];
    int nd = sample_shape(x, s);
    if (nd < 1) return line_error(m, l, "linear needs at least one feature axis");
    int64_t in = s[nd - 1];
    l->fan_in = (double)in;
    l->fan_out = out;
    nb_node *w = add_param(m, l, "weight", 2, (int64_t[]){(int64_t)out, in}, wi, 0, 1);
    nb_node *b = bias ? add_param(m, l, "bias", 1, (int64_t[]){(int64_t)out}, NB_INIT_UNIFORM_FANIN, 0, 1) : NULL;
    if (!w || (bias && !b) || !(l->out = nb_linear(m->g, x, w, b))) return fail_build(m, l);
    return NB_OK;
}

/* "3" or "3x5" into h, w */
static nb_status get_pair(const nb_model *m, const nb_layer *l, int i, const char *key, int def,
                          int lo, int *h, int *w)
{
    const char *s = i ? pos(l, i) : NULL;
    if (!s) s = opt(l, key);
    if (!s) {
        if (def < 0) return line_error(m, l, "missing %s", key);
        *h = *w = def;
        return NB_OK;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    char *x = strchr(buf, 'x');
    if (x) *x = '\0';
    double a, b;
    if (!parse_num(buf, &a) || (x && !parse_num(x + 1, &b)))
        return line_error(m, l, "%s '%s': expected a whole number or HxW", key, s);
    if (!x) b = a;
    if (a != floor(a) || b != floor(b) || a < lo || b < lo || a > 65536 || b > 65536)
        return line_error(m, l, "%s '%s': expected whole numbers >= %d", key, s, lo);
    *h = (int)a;
    *w = (int)b;
    return NB_OK;
}

static nb_status build_conv2d(nb_model *m, nb_layer *l, nb_node *x)
{
    double out, groups;
    int bias, kh, kw, sh, sw, ph, pw, dh, dw;
    nb_init_kind wi;
    nb_status st;
    if ((st = get_num(m, l, 1, NULL, NAN, 1, 1 << 20, 1, &out)) ||
        (st = get_pair(m, l, 0, "kernel", -1, 1, &kh, &kw)) ||
        (st = get_pair(m, l, 0, "stride", 1, 1, &sh, &sw)) ||
        (st = get_pair(m, l, 0, "pad", 0, 0, &ph, &pw)) ||
        (st = get_pair(m, l, 0, "dilation", 1, 1, &dh, &dw)) ||
        (st = get_num(m, l, 0, "groups", 1, 1, 1 << 20, 1, &groups)) ||
        (st = get_bool(m, l, "bias", 1, &bias)) || (st = weight_init(m, l, &wi)))
        return st;
    int64_t s[NB_MAX_DIMS];
    if (sample_shape(x, s) != 3)
        return line_error(m, l, "conv2d needs input of shape [channels, height, width]");
    int64_t cin = s[0], g = (int64_t)groups;
    if (cin % g || (int64_t)out % g)
        return line_error(m, l, "groups=%lld must divide both %lld input and %lld output channels",
                          (long long)g, (long long)cin, (long long)out);
    l->fan_in = (double)(cin / g * kh * kw);
    l->fan_out = (double)((int64_t)out / g * kh * kw);
    nb_node *w = add_param(m, l, "weight", 4, (int64_t[]){(int64_t)out, cin / g, kh, kw}, wi, 0, 1);
    nb_node *b = bias ? add_param(m, l, "bias", 1, (int64_t[]){(int64_t)out}, NB_INIT_UNIFORM_FANIN, 0, 1) : NULL;
    nb_conv2d_opts o = {sh, sw, ph, pw, dh, dw, (int)g};
    if (!w || (bias && !b) || !(l->out = nb_conv2d(m->g, x, w, b, &o))) return fail_build(m, l);
    return NB_OK;
}

static nb_status build_pool(nb_model *m, nb_layer *l, nb_node *x)
{
    int kh, kw, sh, sw, ph, pw;
    nb_status st;
    if ((st = get_pair(m, l, 1, "kernel", -1, 1, &kh, &kw)) ||
        (st = get_pair(m, l, 0, "stride", 0, 1, &sh, &sw)) ||
        (st = get_pair(m, l, 0, "pad", 0, 0, &ph, &pw)))
        return st;
    int avg = !strcmp(l->def->kind, "avgpool");
    l->out = avg ? nb_avg_pool2d(m->g, x, kh, kw, sh, sw, ph, pw) : nb_max_pool2d(m->g, x, kh, kw, sh, sw, ph, pw);
    return l->out ? NB_OK : fail_build(m, l);
}

static nb_status build_globalavgpool(nb_model *m, nb_layer *l, nb_node *x)
{
    int64_t s[NB_MAX_DIMS];
    if (sample_shape(x, s) != 3)
        return line_error(m, l, "globalavgpool needs input of shape [channels, height, width]");
    /* [N, C, H, W] -> [N, C, 1, 1], as nn.AdaptiveAvgPool2d(1) */
    l->out = nb_mean(m->g, x, 2, (int[]){2, 3}, 1);
    return l->out ? NB_OK : fail_build(m, l);
}

static nb_status build_flatten(nb_model *m, nb_layer *l, nb_node *x)
{
    l->out = nb_flatten(m->g, x);
    return l->out ? NB_OK : fail_build(m, l);
}

static nb_status build_dropout(nb_model *m, nb_layer *l, nb_node *x)
{
    double p;
    nb_status st = get_num(m, l, 1, "p", 0.5, 0, 0.999999, 0, &p);
    if (st) return st;
    l->out = nb_dropout(m->g, x, (float)p);
    return l->out ? NB_OK : fail_build(m, l);
}

static nb_status build_batchnorm(nb_model *m, nb_layer *l, nb_node *x)
{
    double mom, eps;
    nb_status st;
    if ((st = get_num(m, l, 0, "momentum", 0.1, 0, 1, 0, &mom)) ||
        (st = get_num(m, l, 0, "eps", 1e-5, 1e-30, 1, 0, &eps)))
        return st;
    int64_t s[NB_MAX_DIMS];
    int nd = sample_shape(x, s);
    if (nd != 1 && nd != 3)
        return line_error(m, l, "batchnorm needs input of shape [features] or [channels, height, width]");
    int64_t c[1] = {s[0]};
    nb_node *gamma = add_param(m, l, "weight", 1, c, NB_INIT_CONSTANT, 1, 1);
    nb_node *beta = add_param(m, l, "bias", 1, c, NB_INIT_ZEROS, 0, 1);
    nb_node *rm = add_param(m, l, "running_mean", 1, c, NB_INIT_ZEROS, 0, 0);
    nb_node *rv = add_param(m, l, "running_var", 1, c, NB_INIT_CONSTANT, 1, 0);
    nb_node *nbt = add_param(m, l, "num_batches_tracked", 0, NULL, NB_INIT_ZEROS, 0, 0);
    if (!nbt) return fail_build(m, l);
    l->out = nb_batchnorm(m->g, x, gamma, beta, rm, rv, nbt, (float)mom, (float)eps);
    return l->out ? NB_OK : fail_build(m, l);
}

static nb_status build_layernorm(nb_model *m, nb_layer *l, nb_node *x)
{
    double eps, axes;
    nb_status st;
    int64_t s[NB_MAX_DIMS];
    int nd = sample_shape(x, s);
    if ((st = get_num(m, l, 0, "eps", 1e-5, 1e-30, 1, 0, &eps)) ||
        (st = get_num(m, l, 0, "axes", 1, 1, nd, 1, &axes)))
        return st;
    int k = (int)axes;
    nb_node *gamma = add_param(m, l, "weight", k, s + nd - k, NB_INIT_CONSTANT, 1, 1);
    nb_node *beta = add_param(m, l, "bias", k, s + nd - k, NB_INIT_ZEROS, 0, 1);
    if (!beta) return fail_build(m, l);
    l->out = nb_layernorm(m->g, x, k, gamma, beta, (float)eps);
    return l->out ? NB_OK : fail_build(m, l);
}

static nb_status build_embedding(nb_model *m, nb_layer *l, nb_node *x)
{
    double num, dim;
    nb_status st;
    if ((st = get_num(m, l, 1, NULL, NAN, 1, 1 << 26, 1, &num)) ||
        (st = get_num(m, l, 2, NULL, NAN, 1, 1 << 20, 1, &dim)))
        return st;
    nb_node *w = add_param(m, l, "weight", 2, (int64_t[]){(int64_t)num, (int64_t)dim}, NB_INIT_NORMAL, 1, 1);
    if (!w) return fail_build(m, l);
    l->out = nb_embedding(m->g, x, w);
    return l->out ? NB_OK : fail_build(m, l);
}

static nb_status build_activation(nb_model *m, nb_layer *l, nb_node *x)
{
    const char *k = l->def->kind;
    double a, b;
    nb_status st = NB_OK;
    if (!strcmp(k, "relu")) l->out = nb_relu(m->g, x);
    else if (!strcmp(k, "sigmoid")) l->out = nb_sigmoid(m->g, x);
    else if (!strcmp(k, "tanh")) l->out = nb_tanh(m->g, x);
    else if (!strcmp(k, "log_softmax")) l->out = nb_log_softmax(m->g, x, -1);
    else if (!strcmp(k, "leaky_relu")) {
        if ((st = get_num(m, l, 1, "slope", 0.01, -1e6, 1e6, 0, &a))) return st;
        l->out = nb_leaky_relu(m->g, x, (float)a);
    } else if (!strcmp(k, "elu")) {
        if ((st = get_num(m, l, 1, "alpha", 1.0, -1e6, 1e6, 0, &a))) return st;
        l->out = nb_elu(m->g, x, (float)a);
    } else if (!strcmp(k, "gelu")) {
        const char *ap = opt(l, "approx");
        if (ap && strcmp(ap, "tanh") && strcmp(ap, "none"))
            return line_error(m, l, "approx=%s: expected tanh or none", ap);
        l->out = nb_gelu(m->g, x, ap && !strcmp(ap, "tanh"));
    } else { /* softplus */
        if ((st = get_num(m, l, 0, "beta", 1.0, 1e-6, 1e6, 0, &a)) ||
            (st = get_num(m, l, 0, "threshold", 20.0, -1e6, 1e6, 0, &b)))
            return st;
        l->out = nb_softplus(m->g, x, (float)a, (float)b);
    }
    return l->out ? NB_OK : fail_build(m, l);
}

static nb_status build_input(nb_model *m, nb_layer *l, nb_node *unused)
{
    int n = n_pos(l);
    if (n < 1 || n > NB_MAX_DIMS - 1) return line_error(m, l, "input needs 1 to %d sizes", NB_MAX_DIMS - 1);
    int64_t s[NB_MAX_DIMS];
    s[0] = NB_BATCH;
    for (int i = 1; i <= n; i++) {
        double v;
        nb_status st = get_num(m, l, i, NULL, NAN, 1, (double)(1 << 30), 1, &v);
        if (st) return st;
        s[i] = (int64_t)v;
    }
    if (!(l->out = m->x = nb_input(m->g, "input", n + 1, s))) return fail_build(m, l);
    return NB_OK;
}

/* The loss line: its target input is created here, shaped for the loss. */
static nb_status build_loss(nb_model *m, nb_layer *l, nb_node *z)
{
    const char *name = pos(l, 1);
    if (!name) return line_error(m, l, "missing the loss name (softmax_cross_entropy, nll, mse, "
                                       "l1, huber or bce_with_logits)");
    int64_t s[NB_MAX_DIMS];
    int nd = sample_shape(z, s);
    double v;
    nb_status st;
    m->classifier = !strcmp(name, "softmax_cross_entropy") || !strcmp(name, "nll");
    if (m->classifier) {
        if (nd != 1) return line_error(m, l, "%s needs the last layer to output [classes], not %d axes", name, nd);
        m->y = nb_input(m->g, "target", 1, (int64_t[]){NB_BATCH});
    } else {
        int64_t full[NB_MAX_DIMS];
        full[0] = NB_BATCH;
        for (int i = 0; i < nd; i++) full[i + 1] = s[i];
        m->y = nb_input(m->g, "target", nd + 1, full);
    }
    if (opt(l, "smoothing") && strcmp(name, "softmax_cross_entropy"))
        return line_error(m, l, "smoothing= applies to softmax_cross_entropy only");
    if (opt(l, "delta") && strcmp(name, "huber")) return line_error(m, l, "delta= applies to huber only");
    if (!strcmp(name, "softmax_cross_entropy")) {
        if ((st = get_num(m, l, 0, "smoothing", 0, 0, 0.999999, 0, &v))) return st;
        m->loss = nb_softmax_cross_entropy_smooth(m->g, z, m->y, (float)v);
    } else if (!strcmp(name, "nll")) m->loss = nb_nll(m->g, z, m->y);
    else if (!strcmp(name, "mse")) m->loss = nb_mse(m->g, z, m->y);
    else if (!strcmp(name, "l1")) m->loss = nb_l1(m->g, z, m->y);
    else if (!strcmp(name, "bce_with_logits")) m->loss = nb_bce_with_logits(m->g, z, m->y);
    else if (!strcmp(name, "huber")) {
        if ((st = get_num(m, l, 0, "delta", 1.0, 1e-12, 1e12, 0, &v))) return st;
        m->loss = nb_huber(m->g, z, m->y, (float)v);
    } else {
        return line_error(m, l, "unknown loss '%s' (expected softmax_cross_entropy, nll, mse, l1, "
                                "huber or bce_with_logits)", name);
    }
    if (!m->loss) return fail_build(m, l);
    l->out = m->loss;
    return NB_OK;
}

static const nb_layer_def layer_defs[] = {
    {"input", 1, NB_MAX_DIMS - 1, "", build_input, 0},
    {"linear", 1, 1, "bias init", build_linear, 1},
    {"conv2d", 1, 1, "kernel stride pad dilation groups bias init", build_conv2d, 1},
    {"maxpool", 1, 1, "stride pad", build_pool, 1},
    {"avgpool", 1, 1, "stride pad", build_pool, 1},
    {"globalavgpool", 0, 0, "", build_globalavgpool, 1},
    {"flatten", 0, 0, "", build_flatten, 1},
    {"dropout", 0, 1, "p", build_dropout, 1},
    {"batchnorm", 0, 0, "momentum eps", build_batchnorm, 1},
    {"layernorm", 0, 0, "eps axes", build_layernorm, 1},
    {"embedding", 2, 2, "", build_embedding, 1},
    {"relu", 0, 0, "", build_activation, 1},
    {"leaky_relu", 0, 1, "slope", build_activation, 1},
    {"elu", 0, 1, "alpha", build_activation, 1},
    {"gelu", 0, 0, "approx", build_activation, 1},
    {"sigmoid", 0, 0, "", build_activation, 1},
    {"tanh", 0, 0, "", build_activation, 1},
    {"log_softmax", 0, 0, "", build_activation, 1},
    {"softplus", 0, 0, "beta threshold", build_activation, 1},
    {"loss", 1, 1, "smoothing delta", build_loss, 0},
};

static const nb_layer_def *find_def(const char *kind)
{
    for (size_t i = 0; i < sizeof layer_defs / sizeof layer_defs[0]; i++)
        if (!strcmp(layer_defs[i].kind, kind)) return &layer_defs[i];
    return NULL;
}

/* Checks counts of positional arguments and that every option is known. */
static nb_status check_tokens(const nb_model *m, const nb_layer *l)
{
    int n = n_pos(l);
    const nb_layer_def *d = l->def;
    if (n < d->min_pos || n > d->max_pos) {
        if (d->max_pos == 0) return line_error(m, l, "%s takes no positional arguments", d->kind);
        if (d->min_pos == d->max_pos)
            return line_error(m, l, "%s takes %d positional argument%s, got %d", d->kind, d->min_pos,
                              d->min_pos == 1 ? "" : "s", n);
        return line_error(m, l, "%s takes %d to %d positional arguments, got %d", d->kind, d->min_pos,
                          d->max_pos, n);
    }
    for (int t = 1; t < l->ntok; t++) {
        const char *eq = strchr(l->tok[t], '=');
        if (!eq) continue;
        size_t k = (size_t)(eq - l->tok[t]);
        const char *o = d->options;
        int ok = 0;
        while (*o && !ok) {
            size_t len = strcspn(o, " ");
            ok = len == k && !strncmp(o, l->tok[t], k);
            o += len + (o[len] == ' ');
        }
        if (!ok) {
            if (!*d->options) return line_error(m, l, "unknown option '%.*s' (%s takes none)", (int)k, l->tok[t], d->kind);
            return line_error(m, l, "unknown option '%.*s' (expected %s)", (int)k, l->tok[t], d->options);
        }
        if (!eq[1]) return line_error(m, l, "option '%.*s' has no value", (int)k, l->tok[t]);
        for (int u = 1; u < t; u++)
            if (!strncmp(l->tok[u], l->tok[t], k + 1))
                return line_error(m, l, "option '%.*s' is given twice", (int)k, l->tok[t]);
    }
    return NB_OK;
}

/* ---- parsing ---------------------------------------------------------- */

void nb_model_free(nb_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n; i++) {
        nb_free(m->layers[i].text);
        for (int t = 0; t < m->layers[i].ntok; t++) nb_free(m->layers[i].tok[t]);
    }
    nb_free(m->layers);
    nb_graph_free(m->g);
    nb_free(m->spec);
    nb_free(m->source);
    nb_free(m);
}

/* Splits the text into non-empty lines without comments, tokenised. */
static nb_status split_lines(nb_model *m)
{
    const char *p = m->spec;
    int lineno = 0, cap = 0;
    while (*p) {
        lineno++;
        size_t len = strcspn(p, "\n");
        char buf[512];
        if (len >= sizeof buf)
            return nb_set_error(NB_ERR_FORMAT, "%s:%d: line longer than %zu characters", m->source,
                                lineno, sizeof buf - 1);
        memcpy(buf, p, len);
        buf[len] = '\0';
        /* the spec is stored in checkpoints' metadata, which is UTF-8 */
        if (!nb_json_utf8_valid(buf, len))
            return nb_set_error(NB_ERR_FORMAT, "%s:%d: the line is not valid UTF-8", m->source, lineno);
        p += len + (p[len] == '\n');
        char *hash = strchr(buf, '#');
        if (hash) *hash = '\0';
        for (char *c = buf; *c; c++)
            if (*c == '\r' || *c == '\t') *c = ' ';
            else if ((unsigned char)*c < 32 || (unsigned char)*c == 127)
                return nb_set_error(NB_ERR_FORMAT, "%s:%d: control character 0x%02x in the line",
                                    m->source, lineno, (unsigned)(unsigned char)*c);
        char *s = buf;
        while (*s == ' ') s++;
        char *e = s + strlen(s);
        while (e > s && e[-1] == ' ') *--e = '\0';
        if (!*s) continue;
        if (m->n == cap) {
            cap = cap ? 2 * cap : 16;
            nb_layer *nl = nb_realloc(m->layers, (size_t)cap * sizeof *nl);
            if (!nl) return NB_ERR_NOMEM;
            m->layers = nl;
        }
        nb_layer *l = &m->layers[m->n++];
        memset(l, 0, sizeof *l);
        l->line = lineno;
        l->index = -1;
        if (!(l->text = nb_strdup(s))) return NB_ERR_NOMEM;
        /* words separated by spaces (no strtok: it keeps hidden state between calls) */
        for (char *tok = s; *tok;) {
            size_t n = strcspn(tok, " ");
            char *next = tok + n + (tok[n] == ' ');
            tok[n] = '\0';
            if (n) {
                if (l->ntok == MAX_TOKENS) return line_error(m, l, "too many words (at most %d)", MAX_TOKENS);
                if (!(l->tok[l->ntok++] = nb_strdup(tok))) return NB_ERR_NOMEM;
            }
            tok = next;
        }
    }
    return NB_OK;
}

static void init_params(nb_model *m, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (int i = 0; i < m->n; i++) {
        nb_layer *l = &m->layers[i];
        for (int k = 0; k < l->nparam; k++)
            nb_init_fill(nb_node_data(l->param[k]), nb_node_numel(l->param[k]), l->init[k], l->fan_in,
                         l->fan_out, l->init_value[k], &r);
    }
}

void nb_model_init(nb_model *m, uint64_t seed)
{
    if (m) init_params(m, seed);
}

nb_model *nb_model_from_text(const char *text, const char *source, uint64_t seed)
{
    if (!text) {
        nb_set_error(NB_ERR_ARG, "model: NULL spec text");
        return NULL;
    }
    nb_model *m = nb_calloc(1, sizeof *m);
    if (!m) return NULL;
    if (!(m->spec = nb_strdup(text)) || !(m->source = nb_strdup(source ? source : "<spec>")) ||
        !(m->g = nb_graph_create()))
        goto fail;
    if (split_lines(m) != NB_OK) goto fail;
    if (m->n == 0) {
        line_error(m, NULL, "empty model spec: expected an 'input' line, layers and a 'loss' line");
        goto fail;
    }
    nb_node *x = NULL;
    int index = 0;
    for (int i = 0; i < m->n; i++) {
        nb_layer *l = &m->layers[i];
        l->def = find_def(l->tok[0]);
        if (!l->def) {
            line_error(m, l, "unknown layer '%s' (expected input, linear, conv2d, maxpool, avgpool, "
                             "globalavgpool, flatten, dropout, batchnorm, layernorm, embedding, relu, "
                             "leaky_relu, elu, gelu, sigmoid, tanh, softplus, log_softmax or loss)", l->tok[0]);
            goto fail;
        }
        int is_input = l->def->build == build_input, is_loss = l->def->build == build_loss;
        if (i == 0 && !is_input) {
            line_error(m, l, "the first line must be 'input' with the shape of one sample, e.g. 'input 1 28 28'");
            goto fail;
        }
        if (i > 0 && is_input) {
            line_error(m, l, "only the first line can be 'input'");
            goto fail;
        }
        if (is_loss && i != m->n - 1) {
            line_error(m, &m->layers[i + 1], "nothing can follow the 'loss' line");
            goto fail;
        }
        if (check_tokens(m, l) != NB_OK) goto fail;
        if (l->def->module) l->index = index++;
        if (l->def->build(m, l, x) != NB_OK) goto fail;
        x = l->out;
        if (!is_loss) m->out = x;
    }
    if (!m->loss) {
        line_error(m, &m->layers[m->n - 1], "the last line must be 'loss NAME', e.g. 'loss softmax_cross_entropy'");
        goto fail;
    }
    if (m->out == m->x) {
        line_error(m, &m->layers[m->n - 1], "the model has no layers between 'input' and 'loss'");
        goto fail;
    }
    nb_node_keep(m->out);
    init_params(m, seed);
    return m;
fail:
    nb_model_free(m);
    return NULL;
}

nb_model *nb_model_from_file(const char *path, uint64_t seed)
{
    if (!path) {
        nb_set_error(NB_ERR_ARG, "model: NULL path");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        nb_set_error(NB_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            if (cap > (1u << 24)) {
                fclose(f);
                nb_free(buf);
                nb_set_error(NB_ERR_FORMAT, "%s: larger than 16 MiB, not a model spec", path);
                return NULL;
            }
            char *nbuf = nb_realloc(buf, cap);
            if (!nbuf) {
                fclose(f);
                nb_free(buf);
                return NULL;
            }
            buf = nbuf;
        }
        size_t got = fread(buf + len, 1, 4096, f);
        len += got;
        if (got < 4096) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        nb_free(buf);
        nb_set_error(NB_ERR_IO, "%s: read error (is it a directory?)", path);
        return NULL;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        nb_free(buf);
        nb_set_error(NB_ERR_FORMAT, "%s: contains a NUL byte, not a model spec", path);
        return NULL;
    }
    nb_model *m = nb_model_from_text(buf, path, seed);
    nb_free(buf);
    return m;
}

/* ---- accessors -------------------------------------------------------- */

const char *nb_model_spec(const nb_model *m) { return m ? m->spec : ""; }
nb_graph *nb_model_graph(nb_model *m) { return m ? m->g : NULL; }
nb_node *nb_model_input(const nb_model *m) { return m ? m->x : NULL; }
nb_node *nb_model_target(const nb_model *m) { return m ? m->y : NULL; }
nb_node *nb_model_output(const nb_model *m) { return m ? m->out : NULL; }
nb_node *nb_model_loss(const nb_model *m) { return m ? m->loss : NULL; }
int nb_model_is_classifier(const nb_model *m) { return m ? m->classifier : 0; }

int nb_model_layer_count(const nb_model *m) { return m ? m->n - 2 : 0; }

nb_status nb_model_layer(const nb_model *m, int i, nb_layer_info *info)
{
    if (!m || !info || i < 0 || i >= m->n - 2)
        return nb_set_error(NB_ERR_ARG, "model_layer: no layer %d", i);
    const nb_layer *l = &m->layers[i + 1];
    info->kind = l->def->kind;
    info->index = l->index;
    info->line = l->line;
    info->ndim = sample_shape(l->out, info->shape);
    info->params = l->trainable;
    return NB_OK;
}

int nb_model_input_shape(const nb_model *m, int64_t shape[NB_MAX_DIMS])
{
    return m ? sample_shape(m->x, shape) : -1;
}
