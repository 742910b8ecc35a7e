/* Model specs: any text either builds a model or fails with a message. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    nb_model *m = nb_model_from_text(text, "fuzz.nn", 1);
    if (!m) {
        fuzz_check_message();
    } else {
        /* what was accepted is consistent: layers have shapes, the loss is 0-d */
        int64_t s[NB_MAX_DIMS];
        if (nb_node_shape(nb_model_loss(m), s) != 0) abort();
        for (int i = 0; i < nb_model_layer_count(m); i++) {
            nb_layer_info li;
            if (nb_model_layer(m, i, &li) != NB_OK || li.ndim < 0) abort();
        }
        nb_model_free(m);
    }
    free(text);
    return 0;
}
