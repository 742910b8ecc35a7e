/*
 * vz_out.c - the writer behind the graph and report visualisations (viz.h):
 * checked writes to the caller's FILE*, escaping for XML and DOT, and tiny
 * uncompressed PNGs as data URIs.
 */
#include "viz.h"

#include <stdarg.h>
#include <string.h>

void vz_putn(vz_out *o, const char *s, size_t n)
{
    if (o->err || n == 0) return;
    if (fwrite(s, 1, n, o->f) != n) o->err = 1;
}

void vz_put(vz_out *o, const char *s) { vz_putn(o, s, strlen(s)); }

void vz_fmt(vz_out *o, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->err = 1;
        return;
    }
    if ((size_t)n < sizeof buf) {
        vz_putn(o, buf, (size_t)n);
        return;
    }
    char *big = nb_alloc((size_t)n + 1);
    if (!big) {
        o->err = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    vz_putn(o, big, (size_t)n);
    nb_free(big);
}

nb_status vz_finish(vz_out *o, const char *what)
{
    if (fflush(o->f) != 0 || ferror(o->f)) o->err = 1;
    if (o->err) return nb_set_error(NB_ERR_IO, "%s: write error", what);
    return NB_OK;
}

size_t vz_utf8_char(const unsigned char *s, unsigned *codepoint)
{
    unsigned c = s[0], cp;
    size_t len;
    if (c < 0x80) {
        cp = c, len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        cp = c & 0x1F, len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        cp = c & 0x0F, len = 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
        cp = c & 0x07, len = 4;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* overlong forms, surrogates, beyond U+10FFFF; XML also excludes most
     * control characters and U+FFFE/U+FFFF */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF) return 0;
    if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') return 0;
    if (codepoint) *codepoint = cp;
    return len;
}

void vz_xml_cut(vz_out *o, const char *s, int max_chars)
{
    if (!s) return;
    const unsigned char *p = (const unsigned char *)s;
    int chars = 0;
    while (*p) {
        if (max_chars >= 0 && chars == max_chars) {
            vz_put(o, "\xE2\x80\xA6"); /* an ellipsis */
            return;
        }
        size_t len = vz_utf8_char(p, NULL);
        chars++;
        if (len == 0) {
            vz_put(o, "\xEF\xBF\xBD"); /* U+FFFD */
            p++;
            continue;
        }
        switch (*p) {
        case '&': vz_put(o, "&amp;"); break;
        case '<': vz_put(o, "&lt;"); break;
        case '>': vz_put(o, "&gt;"); break;
        case '"': vz_put(o, "&quot;"); break;
        case '\'': vz_put(o, "&#39;"); break;
        default: vz_putn(o, (const char *)p, len);
        }
        p += len;
    }
}

void vz_xml(vz_out *o, const char *s) { vz_xml_cut(o, s, -1); }

void vz_dot(vz_out *o, const char *s)
{
    if (!s) return;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t len = vz_utf8_char(p, NULL);
        if (*p == '\n') vz_put(o, "\\n");
        else if (*p == '"') vz_put(o, "\\\"");
        else if (*p == '\\') vz_put(o, "\\\\");
        else if (len == 0 || *p < 0x20) vz_put(o, "?");
        else vz_putn(o, (const char *)p, len);
        p += len ? len : 1;
    }
}

/* ---- PNG ------------------------------------------------------------------ */

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
    return p + 4;
}

/* Completes the chunk at p whose len data bytes already sit at p + 8
 * (length, type, CRC); returns the end of the chunk. */
static unsigned char *close_chunk(unsigned char *p, const char *type, size_t len)
{
    put32(p, (uint32_t)len);
    memcpy(p + 4, type, 4);
    uint32_t crc = crc32_update(0, p + 4, len + 4);
    return put32(p + 8 + len, crc);
}

static void base64(vz_out *o, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char buf[256];
    size_t used = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        buf[used++] = tab[v >> 18 & 63];
        buf[used++] = tab[v >> 12 & 63];
        buf[used++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        buf[used++] = i + 2 < n ? tab[v & 63] : '=';
        if (used + 4 > sizeof buf) vz_putn(o, buf, used), used = 0;
    }
    vz_putn(o, buf, used);
}

void vz_png_uri(vz_out *o, int w, int h, int channels, const unsigned char *px)
{
    if (w <= 0 || h <= 0 || (channels != 1 && channels != 3) || w > 4096 || h > 4096) {
        o->err = 1;
        return;
    }
    size_t row = 1 + (size_t)w * (size_t)channels, raw = row * (size_t)h;
    size_t blocks = (raw + 65534) / 65535, zlen = 2 + raw + 5 * blocks + 4;
    size_t total = 8 + (12 + 13) + (12 + zlen) + 12;
    unsigned char *png = nb_alloc(total);
    if (!png) {
        o->err = 1;
        return;
    }
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    memcpy(png, sig, 8);
    unsigned char *p = png + 8, *d = p + 8;
    d = put32(d, (uint32_t)w);
    d = put32(d, (uint32_t)h);
    d[0] = 8, d[1] = channels == 1 ? 0 : 2, d[2] = d[3] = d[4] = 0;
    p = close_chunk(p, "IHDR", 13);

    /* IDAT: a zlib stream of stored deflate blocks over the rows, each
     * preceded by filter type 0 */
    d = p + 8;
    *d++ = 0x78, *d++ = 0x01;
    uint32_t a = 1, b = 0;
    size_t left = raw, pos = 0;
    while (left) {
        size_t n = left < 65535 ? left : 65535;
        *d++ = (unsigned char)(left == n); /* BFINAL on the last block, BTYPE 00 */
        *d++ = (unsigned char)(n & 0xFF), *d++ = (unsigned char)(n >> 8);
        *d++ = (unsigned char)(~n & 0xFF), *d++ = (unsigned char)((~n >> 8) & 0xFF);
        for (size_t i = 0; i < n; i++, pos++) {
            size_t y = pos / row, x = pos % row;
            unsigned char v = x == 0 ? 0 : px[y * (row - 1) + (x - 1)];
            *d++ = v;
            a = (a + v) % 65521u;
            b = (b + a) % 65521u;
        }
        left -= n;
    }
    put32(d, b << 16 | a);
    p = close_chunk(p, "IDAT", zlen);
    p = close_chunk(p, "IEND", 0);
    vz_put(o, "data:image/png;base64,");
    base64(o, png, (size_t)(p - png));
    nb_free(png);
}
