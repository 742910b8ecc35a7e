/*
 * cli.h - shared pieces of the nabla command: option parsing, data sources,
 * messages. Every command returns an exit code: 0 ok, 1 bad input or a
 * failure (one line on stderr naming what and where), 2 usage.
 */
#ifndef NB_CLI_H
#define NB_CLI_H

#include "nabla.h"

#include <stdio.h>

enum { EXIT_OK = 0, EXIT_BAD = 1, EXIT_USAGE = 2 };

/* Options of one command: `--name value` or `--name=value`, flags take no
 * value; positional arguments are collected in order. */
typedef struct cli_opt {
    const char *name;   /* without the dashes */
    int is_flag;
    const char *value;  /* set by cli_parse (flags: "1") */
} cli_opt;

typedef struct cli_args {
    const char *cmd;
    const char *pos[8];
    int npos;
} cli_args;

/* Parses argv[first..]; returns 0, or prints a usage error and returns 2. */
int cli_parse(int argc, char **argv, int first, cli_opt *opts, cli_args *a);
const char *cli_get(const cli_opt *opts, const char *name);
/* Numbers from options; print an error and return 0 when malformed. */
int cli_int(const cli_opt *opts, const char *name, long lo, long hi, long *out);
int cli_num(const cli_opt *opts, const char *name, double lo, double hi, double *out);

/* One line "nabla <cmd>: <message>" on stderr; returns EXIT_BAD. */
int cli_fail(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The same with nb_last_error() as the message. */
int cli_fail_nb(const char *cmd);

/* Data sources: "fashion-mnist", an IDX directory, a .csv file, or a
 * synthetic set name (xor, spiral, circles, sine). split is "train" or
 * "test" (IDX directories and synthetic sets); regression: CSV targets are
 * real values rather than class indices. */
nb_dataset *cli_load_data(const char *source, const char *split, int label_column, int regression,
                          uint64_t seed);
/* The default test set for a training source, or NULL when there is none
 * (CSV files); *none is set to 1 in that case, 0 on success or error. */
nb_dataset *cli_default_test(const char *source, int label_column, int regression, uint64_t seed,
                             int *none);

/* The training report of `nabla train --report` (report.c): create it
 * once, call cli_report_step from the trainer's per-step callback and
 * cli_report_epoch after each epoch's evaluation (it rewrites the file).
 * vr, tr: the validation and test results (NULL when there is no such
 * set); eval: the set for the confusion matrix, images and boundary. */
typedef struct cli_report cli_report;
cli_report *cli_report_create(const char *path, nb_model *m, const char *spec_path, const char *source,
                              const nb_train_config *cfg, size_t samples, double mean, double std);
void cli_report_step(cli_report *c, const nb_train_stats *s, size_t epoch_samples);
int  cli_report_epoch(cli_report *c, const nb_train_stats *s, double seconds, const nb_eval_result *vr,
                      const nb_eval_result *tr, const nb_dataset *fit, const nb_dataset *eval,
                      const char *eval_name);
void cli_report_free(cli_report *c);

/* Data-parallel runs (dist.c). Before MPI starts: the process count the
 * launcher set (0 when not started by mpirun, srun or hydra) and this
 * process's rank (0 if none). cli_dist_start joins the other processes when
 * there are several and nabla has MPI (NULL and *failed = 0 for a plain
 * run; NULL and *failed = 1 after printing why it cannot), and sets
 * cli_rank, which cli_fail then puts in front of every message.
 * cli_dist_abort ends the whole job (MPI_Abort) when this rank failed alone. */
int      cli_dist_env_size(void);
int      cli_dist_env_rank(void);
nb_comm *cli_dist_start(const char *cmd, int *failed);
/* Kernel threads per rank when --threads is not given: the CPUs shared out
 * among the ranks on this machine (at least 1). */
int      cli_dist_threads(void);
void     cli_dist_abort(nb_comm *c, int code);
extern int cli_rank;   /* -1: not a data-parallel run */

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_graph(int argc, char **argv);

#endif
