/*
 * safetensors.h - what src/io/safetensors.c offers beyond the public API.
 * Not installed.
 */
#ifndef NB_SAFETENSORS_H
#define NB_SAFETENSORS_H

#include "../core/internal.h"

/* nb_st_read with the status code: NB_OK and *out set, or the error
 * (NB_ERR_IO, NB_ERR_FORMAT, NB_ERR_NOMEM, NB_ERR_ARG) with *out NULL and
 * the message in nb_last_error(). */
nb_status nb_st_read_ex(const char *path, nb_st_file **out);

#endif /* NB_SAFETENSORS_H */
