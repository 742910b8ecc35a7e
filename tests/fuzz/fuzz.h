/*
 * fuzz.h - shared by the libFuzzer targets: each target turns the fuzzer's
 * bytes into the input of one parser and checks it never crashes, never
 * reads or writes out of bounds (ASan), never hits undefined behaviour
 * (UBSan), never leaks, and that whatever it accepts is self-consistent.
 */
#ifndef NB_FUZZ_H
#define NB_FUZZ_H

#include "nabla.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes bytes to a per-process file (parsers that read paths need one). */
static inline const char *fuzz_file(const char *tag, const uint8_t *data, size_t size)
{
    static char path[128];
    snprintf(path, sizeof path, "/tmp/nabla-fuzz-%ld-%s", (long)getpid(), tag);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    return path;
}

/* A failure must leave a message. */
static inline void fuzz_check_message(void)
{
    if (!nb_last_error()[0]) abort();
}

#endif
