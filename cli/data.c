/*
 * data.c - where the command's data comes from: the Debian Fashion-MNIST
 * shortcut, IDX directories, CSV files, built-in synthetic sets.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static const char *const synthetic[] = {"xor", "spiral", "circles", "sine", NULL};

static int is_synthetic(const char *s)
{
    for (int i = 0; synthetic[i]; i++)
        if (!strcmp(s, synthetic[i])) return 1;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

nb_dataset *cli_load_data(const char *source, const char *split, int label_column, int regression,
                          uint64_t seed)
{
    if (!strcmp(source, "fashion-mnist")) {
        if (!is_dir(FASHION_DIR)) {
            nb_dataset_load_idx_dir(FASHION_DIR, split); /* for its message */
            return NULL;
        }
        return nb_dataset_load_idx_dir(FASHION_DIR, split);
    }
    if (is_synthetic(source))
        return nb_dataset_synthetic(source, 0, !strcmp(split, "train") ? seed : seed + 1000003);
    if (is_dir(source)) return nb_dataset_load_idx_dir(source, split);
    if (ends_with(source, ".csv") || ends_with(source, ".CSV")) {
        nb_csv_opts o = {-1, label_column, regression, ','};
        return nb_dataset_load_csv(source, &o);
    }
    /* anything else: try it as CSV; the reader names the file in its error */
    nb_csv_opts o = {-1, label_column, regression, ','};
    return nb_dataset_load_csv(source, &o);
}

/* Does an IDX directory hold a test split (t10k-images-idx3-ubyte[.gz])? */
static int has_test_split(const char *dir)
{
    static const char *const names[] = {"t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"};
    for (int i = 0; i < 2; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0) return 1;
    }
    return 0;
}

nb_dataset *cli_default_test(const char *source, int label_column, int regression, uint64_t seed,
                             int *none)
{
    *none = 0;
    if (!strcmp(source, "fashion-mnist") || is_synthetic(source) || (is_dir(source) && has_test_split(source)))
        return cli_load_data(source, "test", label_column, regression, seed);
    *none = 1;
    return NULL;
}
