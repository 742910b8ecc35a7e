/*
 * json.h - a small, strict JSON reader and writer, enough for the headers of
 * safetensors files. Not installed.
 *
 * Reading: nb_json_parse() checks the whole text against RFC 8259 (strings
 * must be valid UTF-8, escapes including \uXXXX surrogate pairs are decoded,
 * no trailing commas, comments, NaN or leading zeros) and builds a document
 * in two allocations: an array of values in document order and one block of
 * decoded strings. It never reads text[len] or beyond, and it limits nesting
 * to max_depth containers, so recursion is bounded.
 *
 * Values are stored in pre-order: a container at index i has its first child
 * at i + 1, and every value's `end` is the index just past its subtree, so
 * the next sibling of child c is v[c].end. An object's children are
 * key, value, key, value, ... (keys are NB_JSON_STRING values).
 *
 * Writing: nb_jbuf is a growing byte buffer with a JSON string escaper.
 */
#ifndef NB_JSON_H
#define NB_JSON_H

#include "../core/internal.h"

#include <stddef.h>
#include <stdint.h>

typedef enum nb_json_type {
    NB_JSON_NULL = 0,
    NB_JSON_FALSE,
    NB_JSON_TRUE,
    NB_JSON_INT,      /* an integer that fits int64_t: u.i */
    NB_JSON_NUMBER,   /* any other number (fraction, exponent or out of range): no value kept */
    NB_JSON_STRING,   /* u.s: decoded UTF-8, count bytes, NUL-terminated (may hold \u0000) */
    NB_JSON_ARRAY,    /* count items */
    NB_JSON_OBJECT    /* count members (2 * count children) */
} nb_json_type;

typedef struct nb_json_value {
    uint32_t type;    /* nb_json_type */
    uint32_t pos;     /* byte offset in the text where the value starts */
    uint32_t end;     /* index one past the last value of this subtree */
    uint32_t count;   /* items, members, or string bytes */
    union {
        int64_t i;
        const char *s;
    } u;
} nb_json_value;

typedef struct nb_json_doc {
    nb_json_value *v;  /* v[0] is the top-level value */
    uint32_t n;
    char *strings;     /* every decoded string, back to back */
} nb_json_doc;

typedef struct nb_json_error {
    size_t pos;        /* byte offset of the problem in the text */
    char msg[112];     /* e.g. "expected ':' after an object key" */
} nb_json_error;

/* The longest text nb_json_parse accepts (offsets are 32-bit). */
#define NB_JSON_MAX_LEN ((size_t)UINT32_MAX - 1)

/* Parses text[0..len) as one JSON value (surrounding whitespace allowed).
 * Returns NB_OK and fills *doc; NB_ERR_FORMAT with *err filled (and no
 * message set: the caller knows what the text was); NB_ERR_NOMEM with the
 * message set. Allocates at most len values and len bytes of strings. */
nb_status nb_json_parse(const char *text, size_t len, int max_depth, nb_json_doc *doc,
                        nb_json_error *err);
void nb_json_doc_free(nb_json_doc *doc);

/* 1 when s[0..len) is well-formed UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF); 0 otherwise. */
int nb_json_utf8_valid(const char *s, size_t len);

/* A growing byte buffer. Every append returns 0 on success and -1 when
 * memory ran out (message set); after a failure the buffer stays failed. */
typedef struct nb_jbuf {
    char *p;
    size_t len, cap;
    int failed;
} nb_jbuf;

int  nb_jbuf_put(nb_jbuf *b, const void *bytes, size_t n);
int  nb_jbuf_puts(nb_jbuf *b, const char *s);
int  nb_jbuf_u64(nb_jbuf *b, uint64_t v);
int  nb_jbuf_i64(nb_jbuf *b, int64_t v);
/* s[0..n) as a quoted JSON string: '"' and '\' escaped, control characters as
 * \n, \t, ... or \u00XX, everything else (UTF-8 included) as it is. */
int  nb_jbuf_string(nb_jbuf *b, const char *s, size_t n);
void nb_jbuf_release(nb_jbuf *b);

#endif /* NB_JSON_H */
