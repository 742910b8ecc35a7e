/*
 * nabla - the command-line tool.
 */
#include "nabla.h"

#include <stdio.h>
#include <string.h>

static int usage(FILE *f)
{
    fprintf(f, "usage: nabla <command> [options]\n"
               "\n"
               "commands:\n"
               "  version     print the version\n"
               "  help        this text\n");
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(stderr);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("nabla %s\n", NB_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) return usage(stdout);
    fprintf(stderr, "nabla: unknown command '%s' (try 'nabla help')\n", cmd);
    return 2;
}
