/* IDX files: the first two bytes give the length of the images part, the
 * rest is the labels file. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t n = ((size_t)data[0] << 8 | data[1]);
    if (n > size - 2) n = size - 2;
    char images[160], labels[160];
    snprintf(images, sizeof images, "%s", fuzz_file("images", data + 2, n));
    snprintf(labels, sizeof labels, "%s", fuzz_file("labels", data + 2 + n, size - 2 - n));
    nb_dataset *d = nb_dataset_load_idx(images, labels);
    if (!d) {
        fuzz_check_message();
        return 0;
    }
    /* every value is readable and labels lie in range */
    size_t count = nb_dataset_count(d), per = nb_dataset_sample_size(d);
    const float *x = nb_dataset_features(d), *y = nb_dataset_targets(d);
    volatile float sum = 0;
    for (size_t i = 0; i < count * per; i++) sum += x[i];
    for (size_t i = 0; i < count; i++)
        if (y[i] < 0 || y[i] >= (float)nb_dataset_classes(d)) abort();
    nb_dataset_free(d);
    return 0;
}
