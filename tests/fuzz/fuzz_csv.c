/* CSV files: the first byte chooses the options, the rest is the file. */
#include "fuzz.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    nb_csv_opts o = {(int)(data[0] % 3) - 1, (int)((data[0] >> 2) % 5) - 1, (data[0] >> 5) & 1,
                     (data[0] >> 6) & 1 ? ';' : ','};
    nb_dataset *d = nb_dataset_load_csv(fuzz_file("csv", data + 1, size - 1), &o);
    if (!d) {
        fuzz_check_message();
        return 0;
    }
    size_t count = nb_dataset_count(d), per = nb_dataset_sample_size(d), ts = nb_dataset_target_size(d);
    const float *x = nb_dataset_features(d), *y = nb_dataset_targets(d);
    for (size_t i = 0; i < count * per; i++)
        if (!isfinite(x[i])) abort(); /* NaN and Inf cells are rejected */
    for (size_t i = 0; i < count * ts; i++)
        if (!isfinite(y[i])) abort();
    nb_dataset_free(d);
    return 0;
}
