/*
 * args.c - option parsing and error lines for the nabla command.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "nabla %s: ", cmd);
    if (cli_rank >= 0) fprintf(stderr, "rank %d: ", cli_rank);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_BAD;
}

int cli_fail_nb(const char *cmd) { return cli_fail(cmd, "%s", nb_last_error()); }

int cli_parse(int argc, char **argv, int first, cli_opt *opts, cli_args *a)
{
    for (int i = first; i < argc; i++) {
        const char *s = argv[i];
        if (s[0] != '-' || s[1] != '-' || !s[2]) {
            if (a->npos == (int)(sizeof a->pos / sizeof a->pos[0])) {
                fprintf(stderr, "nabla %s: too many arguments ('%s')\n", a->cmd, s);
                return EXIT_USAGE;
            }
            a->pos[a->npos++] = s;
            continue;
        }
        const char *name = s + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        cli_opt *o = NULL;
        for (cli_opt *p = opts; p->name; p++)
            if (strlen(p->name) == len && !strncmp(p->name, name, len)) o = p;
        if (!o) {
            fprintf(stderr, "nabla %s: unknown option '--%.*s' (see 'nabla help')\n", a->cmd, (int)len, name);
            return EXIT_USAGE;
        }
        if (o->is_flag) {
            if (eq) {
                fprintf(stderr, "nabla %s: option '--%s' takes no value\n", a->cmd, o->name);
                return EXIT_USAGE;
            }
            o->value = "1";
        } else if (eq) {
            o->value = eq + 1;
        } else if (i + 1 < argc) {
            o->value = argv[++i];
        } else {
            fprintf(stderr, "nabla %s: option '--%s' needs a value\n", a->cmd, o->name);
            return EXIT_USAGE;
        }
    }
    return 0;
}

const char *cli_get(const cli_opt *opts, const char *name)
{
    for (const cli_opt *p = opts; p->name; p++)
        if (!strcmp(p->name, name)) return p->value;
    return NULL;
}

int cli_int(const cli_opt *opts, const char *name, long lo, long hi, long *out)
{
    const char *s = cli_get(opts, name);
    if (!s) return 1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "nabla: option --%s %s: expected a whole number from %ld to %ld\n", name, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_num(const cli_opt *opts, const char *name, double lo, double hi, double *out)
{
    const char *s = cli_get(opts, name);
    if (!s) return 1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "nabla: option --%s %s: expected a number from %g to %g\n", name, s, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}
