/* safetensors files: anything accepted can be walked end to end. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_st_file *f = nb_st_read(fuzz_file("st", data, size));
    if (!f) {
        fuzz_check_message();
        return 0;
    }
    volatile unsigned char sum = 0;
    for (int i = 0; i < nb_st_count(f); i++) {
        nb_dtype dt;
        int nd;
        int64_t s[NB_MAX_DIMS];
        const char *name = nb_st_name(f, i);
        const unsigned char *p = nb_st_find(f, name, &dt, &nd, s);
        if (!p || nd < 0 || nd > NB_MAX_DIMS) abort();
        size_t bytes = dt == NB_DTYPE_I64 ? 8 : 4;
        for (int k = 0; k < nd; k++) bytes *= (size_t)s[k];
        for (size_t k = 0; k < bytes; k++) sum ^= p[k];
    }
    (void)nb_st_meta(f, "spec");
    /* a checkpoint-looking file must not crash the model loader either */
    nb_st_free(f);
    nb_model *m = nb_checkpoint_load(fuzz_file("st", data, size));
    if (m) nb_model_free(m);
    return 0;
}
