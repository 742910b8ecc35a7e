/*
 * error.c - the per-thread error message behind nb_last_error().
 *
 * A thread-local buffer, like errno or dlerror(): two models in one process,
 * or two threads, never see each other's messages.
 */
#include "internal.h"

#include <stdio.h>

static _Thread_local char nb_errbuf[512];

nb_status nb_set_error(nb_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(nb_errbuf, sizeof nb_errbuf, fmt, ap);
    va_end(ap);
    return status;
}

const char *nb_last_error(void) { return nb_errbuf; }

const char *nb_status_str(nb_status s)
{
    switch (s) {
    case NB_OK: return "ok";
    case NB_ERR_ARG: return "bad argument";
    case NB_ERR_SHAPE: return "shape error";
    case NB_ERR_NOMEM: return "out of memory";
    case NB_ERR_STATE: return "bad state";
    case NB_ERR_VALUE: return "bad value";
    case NB_ERR_NUMERIC: return "numerical error";
    case NB_ERR_IO: return "i/o error";
    case NB_ERR_FORMAT: return "format error";
    case NB_ERR_GRADIENT: return "gradient mismatch";
    case NB_ERR_COMM: return "communication error";
    }
    return "unknown status";
}
