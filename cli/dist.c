/*
 * dist.c - the command's side of data-parallel training: is this process
 * one of several started by mpirun (or srun, or MPICH's hydra)? If so, and
 * nabla was built with MPI, join them; and end the whole job when a rank
 * fails alone (the library never aborts: MPI_Abort is called from here).
 */
#include "cli.h"

#include <stdlib.h>
#include <unistd.h>

#ifdef NB_HAVE_MPI
#include <mpi.h>
#endif

int cli_rank = -1;

/* The launcher's variables, read before MPI is initialised. */
static long env_long(const char *const *names)
{
    for (int i = 0; names[i]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) {
            char *end;
            long x = strtol(v, &end, 10);
            if (!*end && x >= 0) return x;
        }
    }
    return -1;
}

int cli_dist_env_size(void)
{
    static const char *const names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE",
                                        "SLURM_NTASKS", NULL};
    static const char *const launched[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK", NULL};
    if (env_long(launched) < 0) return 0; /* not started by an MPI launcher */
    long n = env_long(names);
    return n > 0 ? (int)n : 1;
}

int cli_dist_env_rank(void)
{
    static const char *const names[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK", NULL};
    long r = env_long(names);
    return r > 0 ? (int)r : 0;
}

int cli_dist_threads(void)
{
    static const char *const names[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_LOCAL_SIZE", NULL};
    long local = env_long(names);
    if (local <= 0) local = cli_dist_env_size();
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (local <= 0 || cpus <= 0) return 1;
    return cpus / local > 1 ? (int)(cpus / local) : 1;
}

nb_comm *cli_dist_start(const char *cmd, int *failed)
{
    *failed = 0;
    int size = cli_dist_env_size();
    if (size == 0) return NULL; /* a plain run */
    if (!nb_have_mpi()) {
        if (size == 1) return NULL; /* one process under mpirun: a plain run */
        if (cli_dist_env_rank() == 0)
            cli_fail(cmd, "started as %d processes, but this nabla was built without MPI: rebuild it with "
                          "'make MPI=1' (needs libopenmpi-dev) and run build-mpi/nabla", size);
        *failed = 1;
        return NULL;
    }
    nb_comm *c = nb_comm_world();
    if (!c) {
        cli_fail_nb(cmd);
        *failed = 1;
        return NULL;
    }
    cli_rank = nb_comm_rank(c);
    return c;
}

void cli_dist_abort(nb_comm *c, int code)
{
    fflush(stdout);
    fflush(stderr);
#ifdef NB_HAVE_MPI
    if (c) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    (void)c;
    exit(code);
}
