/*
 * nabla - the command-line tool: train, evaluate, predict and inspect
 * networks described in model spec files.
 */
#include "cli.h"

#include <signal.h>
#include <string.h>

static const char usage_text[] =
    "usage: nabla <command> [arguments]\n"
    "\n"
    "  nabla train MODEL.nn --data DIR|FILE|NAME [options]\n"
    "      --test FILE|DIR      test set (default: the data's test split, if it has one)\n"
    "      --epochs N           total epochs (10)      --batch N          batch size (64)\n"
    "      --optimizer NAME     sgd, momentum, nesterov, adam, adamw, rmsprop (adam)\n"
    "      --lr X  --momentum X  --weight-decay X  --clip-norm X\n"
    "      --schedule NAME      constant, step, cosine, warmup-cosine (constant)\n"
    "      --seed N             shuffling, initialisation, dropout (1)\n"
    "      --threads N          threads for the kernels (0: one per CPU, the default;\n"
    "                           results are the same for any N)\n"
    "      --val-split F        hold out this fraction of the training data\n"
    "      --out CKPT           checkpoint after every epoch (safetensors, atomic)\n"
    "      --resume CKPT        continue a run exactly where it stopped\n"
    "      --log FILE.csv       one row of metrics per epoch\n"
    "      --report FILE.html   a self-contained page of charts, rewritten after every epoch\n"
    "      --label-column N     CSV: the label column (default: the last)\n"
    "      --no-normalize       keep features as they are (default: standardise)\n"
    "      --detect-anomaly     name the first op whose output or gradient is NaN or Inf\n"
    "      --quiet              no progress output\n"
    "    data-parallel, under mpirun (a build with MPI: make MPI=1; docs/distributed.md):\n"
    "      mpirun -np 2 build-mpi/nabla train MODEL.nn --data ... [--batch B]\n"
    "      --sync-bn            batch norm with the global batch's statistics (default: each\n"
    "                           rank its shard's, as PyTorch DDP)\n"
    "      --mpi-timeout S      a rank that died or hangs stops the job within S seconds (60)\n"
    "      --mpi-bucket-kb N    sum gradients in buckets of N KiB during backward (0: at once)\n"
    "  nabla eval CKPT --data DIR|FILE|NAME      loss, accuracy, per-class table, confusion matrix\n"
    "  nabla predict CKPT INPUT [--limit N]      one line per sample: label and probabilities\n"
    "  nabla info MODEL.nn|CKPT                  layers, output shapes, parameter counts\n"
    "  nabla graph MODEL.nn|CKPT [-o FILE.dot|FILE.svg] [--batch N] [--step]\n"
    "      the computation graph for Graphviz (.svg needs graphviz's dot); --step: after one\n"
    "      forward and backward pass on a random batch, with values and gradients\n"
    "  nabla explain [--example xor|ball] [--steps N] [--lr X]\n"
    "  nabla explain MODEL.nn --data FILE|NAME [--steps N] [--lr X] [--seed N]\n"
    "      one training step of a tiny network in words and numbers: forward pass, loss,\n"
    "      backward pass (chain rule), update, loss after; more steps as one line each\n"
    "  nabla version\n"
    "\n"
    "Data: 'fashion-mnist' (Debian's dataset-fashion-mnist), a directory of IDX files\n"
    "(train-images-idx3-ubyte[.gz], ...), a .csv file, or a built-in set: xor, spiral,\n"
    "circles, sine. Exit status: 0 ok, 1 bad input or failure, 2 usage.\n";

int main(int argc, char **argv)
{
    /* past a file-size limit, writes must fail with EFBIG (reported, the
     * previous checkpoint kept) rather than kill the process */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("nabla %s\n", NB_VERSION);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "train")) return cmd_train(argc, argv);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(cmd, "predict")) return cmd_predict(argc, argv);
    if (!strcmp(cmd, "info")) return cmd_info(argc, argv);
    if (!strcmp(cmd, "explain")) return cmd_explain(argc, argv);
    if (!strcmp(cmd, "graph")) return cmd_graph(argc, argv);
    fprintf(stderr, "nabla: unknown command '%s' (try 'nabla help')\n", cmd);
    return EXIT_USAGE;
}
