/*
 * compare.c - the largest difference between the tensors of two nabla
 * checkpoints (tests/test_mpi.sh): for every tensor of A, the same name in B,
 * max |a - b| and max |a - b| / (|a| + |b| + 1e-3) over elements.
 *
 *   compare A.safetensors B.safetensors [TOL]
 *
 * Prints "max_abs X max_rel Y (tensor NAME)"; with TOL, exits 1 when max_abs
 * exceeds it (or a tensor is missing or shaped differently), 0 otherwise.
 */
#include "nabla.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: compare A.safetensors B.safetensors [TOL]\n");
        return 2;
    }
    nb_st_file *a = nb_st_read(argv[1]), *b = nb_st_read(argv[2]);
    if (!a || !b) {
        fprintf(stderr, "compare: %s\n", nb_last_error());
        return 2;
    }
    double max_abs = 0, max_rel = 0;
    const char *worst = "";
    int bad = 0;
    for (int i = 0; i < nb_st_count(a); i++) {
        const char *name = nb_st_name(a, i);
        nb_dtype da, db;
        int na, nbd;
        int64_t sa[NB_MAX_DIMS], sb[NB_MAX_DIMS];
        const void *pa = nb_st_find(a, name, &da, &na, sa), *pb = nb_st_find(b, name, &db, &nbd, sb);
        if (!pb || da != db || na != nbd || memcmp(sa, sb, (size_t)na * sizeof *sa)) {
            fprintf(stderr, "compare: tensor '%s' missing or different in %s\n", name, argv[2]);
            bad = 1;
            continue;
        }
        size_t n = 1;
        for (int k = 0; k < na; k++) n *= (size_t)sa[k];
        for (size_t k = 0; k < n; k++) {
            double x, y;
            if (da == NB_DTYPE_F32) x = ((const float *)pa)[k], y = ((const float *)pb)[k];
            else x = (double)((const int64_t *)pa)[k], y = (double)((const int64_t *)pb)[k];
            double d = fabs(x - y), r = d / (fabs(x) + fabs(y) + 1e-3);
            if (!(d <= max_abs)) max_abs = d, worst = name;
            if (r > max_rel) max_rel = r;
        }
    }
    printf("max_abs %.3g max_rel %.3g (tensor %s)\n", max_abs, max_rel, worst);
    if (argc > 3 && (bad || !(max_abs <= atof(argv[3])))) return 1;
    return bad;
}
