/*
 * test.h - the test harness: one function per test, found by the build
 * (every `NB_TEST(name)` line in tests/ is listed in build/tests.inc), run by
 * tests/main.c, which ends with the line "N passed, M failed".
 */
#ifndef NB_TEST_H
#define NB_TEST_H

#include "nabla.h"

#include <math.h>
#include <stdio.h>

#define NB_TEST(name) void name(void); void name(void)

void nb_test_fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Fails the current test (and keeps going) when cond is false. */
#define CHECK(cond) \
    do { if (!(cond)) nb_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); } while (0)
/* Expects an nb_status of NB_OK; reports nb_last_error() otherwise. */
#define CHECK_OK(expr) \
    do { nb_status st_ = (expr); \
         if (st_ != NB_OK) nb_test_fail(__FILE__, __LINE__, "%s -> %s: %s", #expr, \
                                        nb_status_str(st_), nb_last_error()); } while (0)
/* Expects a non-NULL pointer; reports nb_last_error() otherwise. */
#define CHECK_PTR(expr) \
    do { if (!(expr)) nb_test_fail(__FILE__, __LINE__, "%s is NULL: %s", #expr, nb_last_error()); } while (0)
#define CHECK_NEAR(a, b, tol) \
    do { double a_ = (a), b_ = (b); \
         if (!(fabs(a_ - b_) <= (tol))) nb_test_fail(__FILE__, __LINE__, "%s = %.9g, %s = %.9g, tolerance %g", \
                                                    #a, a_, #b, b_, (double)(tol)); } while (0)

/* Gradient-checks `out` (sum(out * r) for a random r) with the default
 * tolerances; fails the test with the report's worst element otherwise.
 * fill may be NULL (graphs without inputs). */
void nb_test_gradcheck(const char *file, int line, nb_graph *g, nb_node *out,
                       nb_status (*fill)(nb_plan *p, void *user), void *user);
#define CHECK_GRAD(g, out) nb_test_gradcheck(__FILE__, __LINE__, (g), (out), NULL, NULL)

/* A parameter of the given shape filled from U(lo, hi) with the test seed. */
nb_node *nb_test_param(nb_graph *g, const char *name, int ndim, const int64_t *shape, float lo,
                       float hi);

#endif
