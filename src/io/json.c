/*
 * json.c - the strict JSON reader and the escaping writer of json.h.
 *
 * The reader runs the same recursive-descent parser twice: the first pass
 * only checks the text and counts the values and the bytes of decoded
 * strings, the second fills arrays allocated to exactly those sizes. So a
 * malformed text is rejected before anything is allocated, and a valid one
 * costs two allocations whatever its shape. Every read of the text is
 * guarded by the length; the text need not be NUL-terminated.
 */
#include "json.h"

#include <stdio.h>
#include <string.h>

typedef struct parser {
    const unsigned char *s;
    size_t len, pos;
    int max_depth;
    nb_json_value *v;   /* NULL in the counting pass */
    uint32_t nv;        /* values so far */
    char *str;          /* NULL in the counting pass */
    size_t nstr;        /* string bytes so far */
    nb_json_error *err;
} parser;

static int fail(parser *p, size_t pos, const char *fmt, const char *arg)
{
    if (p->err) {
        p->err->pos = pos;
        snprintf(p->err->msg, sizeof p->err->msg, fmt, arg);
    }
    return -1;
}

/* "'x'" for a printable character, "byte 0xNN" otherwise, "the end" at len */
static const char *describe(const parser *p, size_t pos, char *buf, size_t size)
{
    if (pos >= p->len) {
        snprintf(buf, size, "the end of the text");
    } else {
        unsigned char c = p->s[pos];
        if (c >= 0x20 && c < 0x7f) snprintf(buf, size, "'%c'", c);
        else snprintf(buf, size, "byte 0x%02x", c);
    }
    return buf;
}

static int fail_at(parser *p, const char *expected)
{
    char what[32], msg[96];
    snprintf(msg, sizeof msg, "expected %s, found ", expected);
    size_t n = strlen(msg);
    snprintf(msg + n, sizeof msg - n, "%s", describe(p, p->pos, what, sizeof what));
    return fail(p, p->pos, "%s", msg);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* Length of the well-formed UTF-8 sequence at s (avail bytes), 0 if none. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;        /* overlong */
        else if (c == 0xed) hi = 0x9f;   /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;        /* overlong */
        else if (c == 0xf4) hi = 0x8f;   /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return n;
}

int nb_json_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(u + i, len - i);
        if (!n) return 0;
        i += n;
    }
    return 1;
}

static uint32_t new_value(parser *p, nb_json_type type)
{
    uint32_t i = p->nv++;
    if (p->v) {
        nb_json_value *v = &p->v[i];
        v->type = (uint32_t)type;
        v->pos = (uint32_t)p->pos;
        v->end = i + 1;
        v->count = 0;
        v->u.i = 0;
    }
    return i;
}

static void emit(parser *p, const unsigned char *bytes, size_t n)
{
    if (p->str) memcpy(p->str + p->nstr, bytes, n);
    p->nstr += n;
}

static int hex4(parser *p, size_t at, unsigned *out)
{
    unsigned v = 0;
    if (p->len - at < 4) return fail(p, at, "%s", "truncated \\u escape");
    for (size_t i = 0; i < 4; i++) {
        unsigned char c = p->s[at + i];
        unsigned d;
        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
        else return fail(p, at + i, "%s", "a \\u escape needs four hexadecimal digits");
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* p->pos is at the opening quote. */
static int parse_string(parser *p)
{
    uint32_t idx = new_value(p, NB_JSON_STRING);
    size_t start = p->nstr;
    size_t open = p->pos;
    p->pos++;
    for (;;) {
        if (p->pos >= p->len) return fail(p, open, "%s", "unterminated string");
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20)
            return fail(p, p->pos, "%s", "control character in a string (it must be escaped)");
        if (c == '\\') {
            size_t esc = p->pos;
            if (p->pos + 1 >= p->len) return fail(p, open, "%s", "unterminated string");
            unsigned char e = p->s[p->pos + 1];
            unsigned char out;
            p->pos += 2;
            switch (e) {
            case '"': out = '"'; break;
            case '\\': out = '\\'; break;
            case '/': out = '/'; break;
            case 'b': out = '\b'; break;
            case 'f': out = '\f'; break;
            case 'n': out = '\n'; break;
            case 'r': out = '\r'; break;
            case 't': out = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (hex4(p, p->pos, &cp)) return -1;
                p->pos += 4;
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return fail(p, esc, "%s", "unpaired low surrogate in a \\u escape");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                        return fail(p, esc, "%s", "high surrogate \\u escape not followed by a low one");
                    if (hex4(p, p->pos + 2, &lo)) return -1;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return fail(p, p->pos, "%s", "high surrogate \\u escape not followed by a low one");
                    p->pos += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                unsigned char u8[4];
                size_t n;
                if (cp < 0x80) {
                    u8[0] = (unsigned char)cp;
                    n = 1;
                } else if (cp < 0x800) {
                    u8[0] = (unsigned char)(0xc0 | cp >> 6);
                    u8[1] = (unsigned char)(0x80 | (cp & 0x3f));
                    n = 2;
                } else if (cp < 0x10000) {
                    u8[0] = (unsigned char)(0xe0 | cp >> 12);
                    u8[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
                    u8[2] = (unsigned char)(0x80 | (cp & 0x3f));
                    n = 3;
                } else {
                    u8[0] = (unsigned char)(0xf0 | cp >> 18);
                    u8[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
                    u8[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
                    u8[3] = (unsigned char)(0x80 | (cp & 0x3f));
                    n = 4;
                }
                emit(p, u8, n);
                continue;
            }
            default:
                return fail(p, esc, "%s", "unknown escape sequence in a string");
            }
            emit(p, &out, 1);
            continue;
        }
        size_t n = utf8_seq(p->s + p->pos, p->len - p->pos);
        if (!n) return fail(p, p->pos, "%s", "invalid UTF-8 in a string");
        emit(p, p->s + p->pos, n);
        p->pos += n;
    }
    size_t bytes = p->nstr - start;
    static const unsigned char nul = 0;
    emit(p, &nul, 1);
    if (p->v) {
        p->v[idx].count = (uint32_t)bytes;
        p->v[idx].u.s = p->str + start;
    }
    return 0;
}

static int is_digit(const parser *p, size_t at)
{
    return at < p->len && p->s[at] >= '0' && p->s[at] <= '9';
}

static int parse_number(parser *p)
{
    uint32_t idx = new_value(p, NB_JSON_INT);
    int neg = 0, integral = 1, overflow = 0;
    uint64_t mag = 0;
    if (p->s[p->pos] == '-') {
        neg = 1;
        p->pos++;
    }
    if (!is_digit(p, p->pos)) return fail_at(p, "a digit");
    if (p->s[p->pos] == '0') {
        p->pos++;
        if (is_digit(p, p->pos)) return fail(p, p->pos, "%s", "leading zeros are not allowed in numbers");
    } else {
        while (is_digit(p, p->pos)) {
            unsigned d = (unsigned)(p->s[p->pos] - '0');
            if (mag > (UINT64_MAX - d) / 10) overflow = 1;
            else mag = mag * 10 + d;
            p->pos++;
        }
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        integral = 0;
        p->pos++;
        if (!is_digit(p, p->pos)) return fail_at(p, "a digit after the decimal point");
        while (is_digit(p, p->pos)) p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integral = 0;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (!is_digit(p, p->pos)) return fail_at(p, "a digit in the exponent");
        while (is_digit(p, p->pos)) p->pos++;
    }
    if (p->v) {
        nb_json_value *v = &p->v[idx];
        if (!integral || overflow || mag > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
            v->type = NB_JSON_NUMBER;
        } else if (neg) {
            v->u.i = mag == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)mag;
        } else {
            v->u.i = (int64_t)mag;
        }
    }
    return 0;
}

static int parse_literal(parser *p, const char *word, nb_json_type type)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return fail_at(p, "a JSON value");
    new_value(p, type);
    p->pos += n;
    return 0;
}

static int parse_value(parser *p, int depth);

static int parse_container(parser *p, int depth, int object)
{
    if (depth >= p->max_depth) {
        char lim[16];
        snprintf(lim, sizeof lim, "%d", p->max_depth);
        return fail(p, p->pos, "containers nested deeper than %s levels", lim);
    }
    uint32_t idx = new_value(p, object ? NB_JSON_OBJECT : NB_JSON_ARRAY);
    uint32_t count = 0;
    char close = object ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            skip_ws(p);
            if (object) {
                if (p->pos >= p->len || p->s[p->pos] != '"') return fail_at(p, "a string key");
                if (parse_string(p)) return -1;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') return fail_at(p, "':' after an object key");
                p->pos++;
            }
            if (parse_value(p, depth + 1)) return -1;
            count++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            return fail_at(p, object ? "',' or '}' in an object" : "',' or ']' in an array");
        }
    }
    if (p->v) {
        p->v[idx].count = count;
        p->v[idx].end = p->nv;
    }
    return 0;
}

static int parse_value(parser *p, int depth)
{
    skip_ws(p);
    if (p->pos >= p->len) return fail_at(p, "a JSON value");
    unsigned char c = p->s[p->pos];
    switch (c) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"': return parse_string(p);
    case 't': return parse_literal(p, "true", NB_JSON_TRUE);
    case 'f': return parse_literal(p, "false", NB_JSON_FALSE);
    case 'n': return parse_literal(p, "null", NB_JSON_NULL);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p);
        return fail_at(p, "a JSON value");
    }
}

static int parse_document(parser *p)
{
    if (parse_value(p, 0)) return -1;
    skip_ws(p);
    if (p->pos != p->len) return fail_at(p, "nothing but whitespace after the JSON value");
    return 0;
}

nb_status nb_json_parse(const char *text, size_t len, int max_depth, nb_json_doc *doc,
                        nb_json_error *err)
{
    nb_json_error dummy;
    if (!err) err = &dummy;
    err->pos = 0;
    err->msg[0] = '\0';
    if (!doc || (!text && len)) return nb_set_error(NB_ERR_ARG, "nb_json_parse: NULL argument");
    doc->v = NULL;
    doc->n = 0;
    doc->strings = NULL;
    if (len > NB_JSON_MAX_LEN) {
        err->pos = 0;
        snprintf(err->msg, sizeof err->msg, "text of %zu bytes is longer than the limit of %zu",
                 len, NB_JSON_MAX_LEN);
        return NB_ERR_FORMAT;
    }

    /* pass 1: check and count */
    parser p = {.s = (const unsigned char *)text, .len = len, .max_depth = max_depth, .err = err};
    if (parse_document(&p)) return NB_ERR_FORMAT;

    /* pass 2: fill */
    uint32_t nv = p.nv;
    size_t nstr = p.nstr;
    nb_json_value *v = nb_calloc(nv, sizeof *v);
    char *str = nb_alloc(nstr);
    if (!v || !str) {
        nb_free(v);
        nb_free(str);
        return NB_ERR_NOMEM;
    }
    parser q = {.s = (const unsigned char *)text, .len = len, .max_depth = max_depth, .err = err,
                .v = v, .str = str};
    if (parse_document(&q) || q.nv != nv || q.nstr != nstr) {
        /* cannot happen: the same text was accepted above */
        nb_free(v);
        nb_free(str);
        snprintf(err->msg, sizeof err->msg, "internal error: the second pass disagrees");
        return NB_ERR_FORMAT;
    }
    doc->v = v;
    doc->n = nv;
    doc->strings = str;
    return NB_OK;
}

void nb_json_doc_free(nb_json_doc *doc)
{
    if (!doc) return;
    nb_free(doc->v);
    nb_free(doc->strings);
    doc->v = NULL;
    doc->strings = NULL;
    doc->n = 0;
}

/* ---- writing ---------------------------------------------------------- */

static int jbuf_reserve(nb_jbuf *b, size_t extra)
{
    if (b->failed) return -1;
    size_t need;
    if (!nb_add_ok(b->len, extra, &need)) {
        b->failed = 1;
        nb_set_error(NB_ERR_NOMEM, "JSON text too large");
        return -1;
    }
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *q = nb_realloc(b->p, cap);
    if (!q) {
        b->failed = 1;
        return -1;
    }
    b->p = q;
    b->cap = cap;
    return 0;
}

int nb_jbuf_put(nb_jbuf *b, const void *bytes, size_t n)
{
    if (jbuf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->len, bytes, n);
    b->len += n;
    return 0;
}

int nb_jbuf_puts(nb_jbuf *b, const char *s) { return nb_jbuf_put(b, s, strlen(s)); }

int nb_jbuf_u64(nb_jbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    return nb_jbuf_put(b, tmp, (size_t)n);
}

int nb_jbuf_i64(nb_jbuf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    return nb_jbuf_put(b, tmp, (size_t)n);
}

int nb_jbuf_string(nb_jbuf *b, const char *s, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    if (nb_jbuf_put(b, "\"", 1)) return -1;
    size_t run = 0; /* start of the pending run of bytes copied as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            if (c >= 0x20) continue;
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hexd[c >> 4];
            esc[5] = hexd[c & 15];
            elen = 6;
            break;
        }
        if (nb_jbuf_put(b, s + run, i - run) || nb_jbuf_put(b, esc, elen)) return -1;
        run = i + 1;
    }
    if (nb_jbuf_put(b, s + run, n - run)) return -1;
    return nb_jbuf_put(b, "\"", 1);
}

void nb_jbuf_release(nb_jbuf *b)
{
    if (!b) return;
    nb_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
