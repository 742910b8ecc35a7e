/*
 * init.c - parameter initialisers, with PyTorch's formulas, drawing from
 * nabla's seeded generator so that a seed always gives the same weights.
 */
#include "../core/internal.h"

#include <math.h>
#include <string.h>

void nb_init_fill(float *x, size_t n, nb_init_kind kind, double fan_in, double fan_out,
                  double value, nb_rng *r)
{
    double gain = value > 0 ? value : 1.0, a;
    switch (kind) {
    case NB_INIT_UNIFORM_FANIN:
        /* kaiming_uniform_(a=sqrt(5)) for weights and the bias rule of
         * nn.Linear/nn.Conv2d both come down to this bound */
        a = fan_in > 0 ? 1.0 / sqrt(fan_in) : 0.0;
        nb_fill_uniform(x, n, (float)-a, (float)a, r);
        break;
    case NB_INIT_XAVIER_UNIFORM:
        a = gain * sqrt(6.0 / (fan_in + fan_out));
        nb_fill_uniform(x, n, (float)-a, (float)a, r);
        break;
    case NB_INIT_XAVIER_NORMAL:
        nb_fill_normal(x, n, 0.0f, (float)(gain * sqrt(2.0 / (fan_in + fan_out))), r);
        break;
    case NB_INIT_HE_UNIFORM:
        a = sqrt(6.0 / fan_in);
        nb_fill_uniform(x, n, (float)-a, (float)a, r);
        break;
    case NB_INIT_HE_NORMAL:
        nb_fill_normal(x, n, 0.0f, (float)sqrt(2.0 / fan_in), r);
        break;
    case NB_INIT_NORMAL:
        nb_fill_normal(x, n, 0.0f, (float)gain, r);
        break;
    case NB_INIT_ZEROS:
        memset(x, 0, n * sizeof *x);
        break;
    case NB_INIT_CONSTANT:
        for (size_t i = 0; i < n; i++) x[i] = (float)value;
        break;
    }
}

int nb_init_kind_from_name(const char *name)
{
    static const struct { const char *name; nb_init_kind kind; } names[] = {
        {"default", NB_INIT_UNIFORM_FANIN}, {"xavier_uniform", NB_INIT_XAVIER_UNIFORM},
        {"xavier_normal", NB_INIT_XAVIER_NORMAL}, {"he_uniform", NB_INIT_HE_UNIFORM},
        {"he_normal", NB_INIT_HE_NORMAL}, {"normal", NB_INIT_NORMAL},
        {"zeros", NB_INIT_ZEROS}, {"constant", NB_INIT_CONSTANT},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (name && !strcmp(name, names[i].name)) return (int)names[i].kind;
    return -1;
}
