/*
 * test_viz.c - the graph as DOT (every node and edge, escaped labels, value
 * annotations, write errors), the SVG charts and the HTML report (well-formed
 * XML, checked by a small parser here), the PNG tiles (decoded with zlib
 * when available) and the report's atomic write.
 */
#include "test.h"
#include "../src/viz/viz.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef NB_HAVE_ZLIB
#include <zlib.h>
#endif

/* Everything a stream received, as a NUL-terminated string (caller frees). */
static char *slurp(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (!s) return NULL;
    rewind(f);
    size_t got = fread(s, 1, (size_t)(n > 0 ? n : 0), f);
    s[got] = '\0';
    return s;
}

/* ---- a tiny XML well-formedness checker ----------------------------------- */

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == ':' || c == '.';
}

/* An entity reference at s ('&'): its length, or 0 when it is not one of
 * the five predefined ones or a numeric reference. */
static size_t entity(const char *s)
{
    static const char *const known[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (int i = 0; i < 5; i++)
        if (!strncmp(s, known[i], strlen(known[i]))) return strlen(known[i]);
    if (s[1] == '#') {
        size_t i = 2;
        int hex = s[2] == 'x';
        if (hex) i++;
        size_t start = i;
        while ((hex && strchr("0123456789abcdefABCDEF", s[i]) && s[i]) || (!hex && s[i] >= '0' && s[i] <= '9')) i++;
        if (i > start && s[i] == ';') return i + 1;
    }
    return 0;
}

/* Checks that s[0..n) is one well-formed XML element (after an optional
 * <!DOCTYPE ...> and comments); *why names the first problem. */
static int xml_ok(const char *s, size_t n, const char **why)
{
    char stack[64][48];
    int depth = 0, roots = 0;
    size_t i = 0;
    *why = "";
    /* valid UTF-8 and XML characters throughout */
    for (size_t k = 0; k < n;) {
        size_t len = vz_utf8_char((const unsigned char *)s + k, NULL);
        if (!len) return *why = "invalid UTF-8 or a control character", 0;
        k += len;
    }
    while (i < n) {
        if (s[i] == '<') {
            if (!strncmp(s + i, "<!--", 4)) {
                const char *e = strstr(s + i, "-->");
                if (!e) return *why = "unterminated comment", 0;
                i = (size_t)(e - s) + 3;
                continue;
            }
            if (!strncmp(s + i, "<!DOCTYPE", 9)) {
                if (depth || roots) return *why = "DOCTYPE inside the document", 0;
                while (i < n && s[i] != '>') i++;
                i++;
                continue;
            }
            int closing = s[i + 1] == '/';
            i += closing ? 2 : 1;
            size_t st = i;
            while (i < n && name_char(s[i])) i++;
            if (i == st || i - st >= sizeof stack[0]) return *why = "bad element name", 0;
            char name[48];
            memcpy(name, s + st, i - st);
            name[i - st] = '\0';
            if (closing) {
                while (i < n && s[i] == ' ') i++;
                if (s[i] != '>') return *why = "bad closing tag", 0;
                if (depth == 0 || strcmp(stack[depth - 1], name)) return *why = "mismatched closing tag", 0;
                depth--;
                i++;
                continue;
            }
            if (depth == 0 && roots++) return *why = "more than one root element", 0;
            /* attributes: name="value" with unique names */
            char seen[32][48];
            int nseen = 0;
            for (;;) {
                size_t sp = i;
                while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t')) i++;
                if (s[i] == '>' || (s[i] == '/' && s[i + 1] == '>')) break;
                if (i == sp) return *why = "no space before an attribute", 0;
                size_t as = i;
                while (i < n && name_char(s[i])) i++;
                if (i == as || i - as >= sizeof seen[0] || s[i] != '=' || (s[i + 1] != '"' && s[i + 1] != '\''))
                    return *why = "bad attribute", 0;
                for (int k = 0; k < nseen; k++)
                    if (strlen(seen[k]) == i - as && !strncmp(seen[k], s + as, i - as)) return *why = "repeated attribute", 0;
                if (nseen < 32) memcpy(seen[nseen], s + as, i - as), seen[nseen][i - as] = '\0', nseen++;
                char q = s[i + 1];
                i += 2;
                while (i < n && s[i] != q) {
                    if (s[i] == '<') return *why = "'<' in an attribute value", 0;
                    if (s[i] == '&') {
                        size_t e = entity(s + i);
                        if (!e) return *why = "bad entity in an attribute", 0;
                        i += e;
                    } else {
                        i++;
                    }
                }
                if (i >= n) return *why = "unterminated attribute", 0;
                i++;
            }
            if (s[i] == '/') {
                i += 2;
            } else {
                if (depth == 64) return *why = "too deep", 0;
                memcpy(stack[depth++], name, strlen(name) + 1);
                i++;
            }
            continue;
        }
        if (s[i] == '&') {
            size_t e = entity(s + i);
            if (!e) return *why = "bad entity in text", 0;
            i += e;
            continue;
        }
        if (s[i] == '>' && i >= 2 && s[i - 1] == ']' && s[i - 2] == ']') return *why = "']]>' in text", 0;
        if (depth == 0 && s[i] != ' ' && s[i] != '\n' && s[i] != '\t' && s[i] != '\r')
            return *why = "text outside the root element", 0;
        i++;
    }
    if (depth) return *why = "unclosed element", 0;
    if (!roots) return *why = "no element", 0;
    return 1;
}

/* Checks every <svg>...</svg> block of s; returns how many there were
 * (-1 if one is not well-formed). */
static int check_svgs(const char *s)
{
    int count = 0;
    for (const char *p = strstr(s, "<svg"); p; p = strstr(p, "<svg")) {
        const char *e = strstr(p, "</svg>");
        if (!e) return -1;
        const char *why;
        if (!xml_ok(p, (size_t)(e + 6 - p), &why)) {
            nb_test_fail(__FILE__, __LINE__, "svg %d is not well-formed: %s", count, why);
            return -1;
        }
        count++;
        p = e;
    }
    return count;
}

NB_TEST(test_viz_xml_checker)
{
    const char *why;
    const char *good = "<svg a=\"1\" b='x &amp; y'><g><text>a &lt; b &#183;</text></g><rect/></svg>";
    CHECK(xml_ok(good, strlen(good), &why));
    const char *bad[] = {"<svg><g></svg>", "<svg a=\"1\" a=\"2\"/>", "<svg>a & b</svg>", "<svg a=\"<\"/>",
                         "<svg/><svg/>", "<svg a=1/>", "<svg>\x01</svg>", "<svg>\xff</svg>"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(!xml_ok(bad[i], strlen(bad[i]), &why));
}

/* ---- DOT ------------------------------------------------------------------ */

static nb_graph *small_graph(nb_node **loss)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 3});
    nb_node *w = nb_test_param(g, "w\"q\\uote", 2, (int64_t[]){3, 2}, -1, 1);
    nb_node *b = nb_const(g, "b\nline", 1, (int64_t[]){2}, (const float[]){0.5f, -0.5f});
    nb_node *h = nb_relu(g, nb_add(g, nb_matmul(g, x, w), b));
    nb_node *y = nb_input(g, "y", 2, (int64_t[]){NB_BATCH, 2});
    *loss = nb_mse(g, nb_mul(g, h, nb_scalar(g, 2.0f)), y);
    return g;
}

NB_TEST(test_viz_dot_every_node_and_edge)
{
    nb_node *loss;
    nb_graph *g = small_graph(&loss);
    CHECK_PTR(loss);
    FILE *f = tmpfile();
    CHECK_PTR(f);
    if (!loss || !f) {
        if (f) fclose(f);
        nb_graph_free(g);
        return;
    }
    CHECK_OK(nb_graph_write_dot(g, NULL, 0, f));
    char *s = slurp(f);
    fclose(f);
    CHECK(s && !strncmp(s, "digraph", 7));
    for (int i = 0; s && i < nb_graph_node_count(g); i++) {
        nb_node *n = nb_graph_node(g, i);
        char want[64];
        snprintf(want, sizeof want, "\n  n%d [label=\"%s", nb_node_id(n), nb_node_op(n));
        if (!strstr(s, want)) nb_test_fail(__FILE__, __LINE__, "node %d (%s) missing", i, nb_node_op(n));
        for (int j = 0; j < nb_node_input_count(n); j++) {
            snprintf(want, sizeof want, "  n%d -> n%d", nb_node_id(nb_node_input(n, j)), nb_node_id(n));
            if (!strstr(s, want)) nb_test_fail(__FILE__, __LINE__, "edge %s missing", want);
        }
    }
    /* the quote and backslash escaped, the newline a DOT line break, batch axes as N */
    CHECK(s && strstr(s, "w\\\"q\\\\uote"));
    CHECK(s && !strstr(s, "w\"q"));
    CHECK(s && strstr(s, "b\\nline"));
    CHECK(s && strstr(s, "[N, 3]"));
    /* every quote in a line is escaped or delimits a string: an even number of unescaped ones */
    for (char *line = s; line && *line;) {
        char *end = strchr(line, '\n');
        int quotes = 0;
        for (char *c = line; c < (end ? end : line + strlen(line)); c++) {
            if (*c == '\\' && c[1]) c++;
            else if (*c == '"') quotes++;
        }
        CHECK(quotes % 2 == 0);
        line = end ? end + 1 : NULL;
    }
    free(s);
    nb_graph_free(g);
}

NB_TEST(test_viz_dot_values_after_a_step)
{
    nb_node *loss;
    nb_graph *g = small_graph(&loss);
    nb_plan *p = loss ? nb_plan_create(g, loss, 4, NB_PLAN_TRAIN | NB_PLAN_KEEP) : NULL;
    CHECK_PTR(p);
    FILE *f = tmpfile();
    if (p && f) {
        nb_rng r;
        nb_rng_seed(&r, 3);
        size_t nx, ny;
        float *x = nb_plan_data(p, nb_graph_find(g, "x"), &nx), *y = nb_plan_data(p, nb_graph_find(g, "y"), &ny);
        nb_fill_normal(x, nx, 0, 1, &r);
        nb_fill_normal(y, ny, 0, 1, &r);
        CHECK_OK(nb_plan_forward(p));
        CHECK_OK(nb_plan_backward(p, NULL));
        CHECK_OK(nb_graph_write_dot(g, p, NB_DOT_VALUES, f));
        char *s = slurp(f);
        CHECK(s && strstr(s, "[4, 3]"));      /* the plan's batch */
        CHECK(s && strstr(s, "mean "));
        CHECK(s && strstr(s, "grad norm "));
        CHECK(s && strstr(s, "value 2\""));  /* the scalar constant */
        free(s);
    }
    if (f) fclose(f);
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_viz_dot_errors)
{
    nb_node *loss;
    nb_graph *g = small_graph(&loss);
    CHECK(nb_graph_write_dot(NULL, NULL, 0, stdout) == NB_ERR_ARG);
    CHECK(nb_graph_write_dot(g, NULL, 0, NULL) == NB_ERR_ARG);
    /* a stream that cannot be written */
    FILE *ro = fopen("/dev/null", "r");
    if (ro) {
        CHECK(nb_graph_write_dot(g, NULL, 0, ro) == NB_ERR_IO);
        CHECK(strstr(nb_last_error(), "write error") != NULL);
        fclose(ro);
    }
    /* a plan of another graph */
    nb_node *other_loss;
    nb_graph *g2 = small_graph(&other_loss);
    nb_plan *p2 = nb_plan_create(g2, NULL, 1, 0);
    FILE *f = tmpfile();
    if (p2 && f) CHECK(nb_graph_write_dot(g, p2, 0, f) == NB_ERR_ARG);
    if (f) fclose(f);
    nb_plan_free(p2);
    nb_graph_free(g2);
    nb_graph_free(g);
}

/* ---- SVG charts ------------------------------------------------------------ */

NB_TEST(test_viz_svg_charts_are_well_formed_xml)
{
    FILE *f = tmpfile();
    CHECK_PTR(f);
    if (!f) return;
    vz_out o = {f, 0};
    double x[6] = {1, 2, 3, 4, 5, 6}, y1[6] = {2.5, 1.2, NAN, 0.4, 0.3, 0.2}, y2[6] = {1e-4, 1e-3, 0.02, 0.5, 3, 40};
    vz_series s[2] = {{"train <&> \"quoted\" 'single'", x, y1, 6, 0, 0}, {"bad \xff utf-8", x, y2, 6, 1, 1}};
    vz_chart c = {"a <title> & more", "epoch", "loss & co", 0, 1, 0, 0, 0, 2, s};
    vz_line_chart(&o, &c);
    c.logy = 1;
    vz_line_chart(&o, &c);
    vz_chart empty = {"empty", "x", "y", 0, 0, 0, 0, 1, 0, NULL};
    vz_line_chart(&o, &empty);
    double counts[9] = {5, 1, 0, 0, 7, 2, 1, 0, 9};
    const char *names[3] = {"T-shirt/top", "a<b", "Ankle boot & more"};
    vz_confusion(&o, 3, counts, names);
    vz_confusion(&o, 3, counts, NULL);
    unsigned char px[2 * 3 * 4 * 5];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (unsigned char)(i * 37);
    const char *c1[2] = {"Shirt", "<wrong>"}, *c2[2] = {"true: Shirt", "true: Coat"};
    vz_image_grid(&o, 2, 1, 4, 5, px, c1, c2, (const int[]){0, 1});
    vz_image_grid(&o, 1, 3, 4, 5, px, c1, c2, NULL);
    int grid[4 * 3] = {0, 0, 1, 1, 0, 1, 1, 2, 2, 2, 2, 2};
    float pts[6] = {0.1f, 0.2f, 0.5f, 0.5f, 9, 9};
    vz_boundary(&o, 4, 3, grid, (const double[]){-1, 1, -2, 2}, 3, pts, (const int[]){0, 1, 2}, 3, NULL);
    CHECK(!o.err);
    CHECK_OK(vz_finish(&o, "test"));
    char *text = slurp(f);
    fclose(f);
    CHECK(check_svgs(text) == 8);
    CHECK(text && strstr(text, "train &lt;&amp;&gt; &quot;quoted&quot; &#39;single&#39;"));
    CHECK(text && strstr(text, "bad \xEF\xBF\xBD utf-8"));
    CHECK(text && strstr(text, "viewBox=\"0 0 480 "));
    CHECK(text && strstr(text, "width=\"100%\""));
    CHECK(text && strstr(text, "no data yet"));
    free(text);
}

NB_TEST(test_viz_png_tiles_decode)
{
    FILE *f = tmpfile();
    CHECK_PTR(f);
    if (!f) return;
    enum { PW = 7, PH = 5 };
    unsigned char px[PW * PH * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (unsigned char)(i * 13 + 1);
    vz_out o = {f, 0};
    vz_png_uri(&o, PW, PH, 3, px);
    char *uri = slurp(f);
    fclose(f);
    CHECK(uri && !strncmp(uri, "data:image/png;base64,", 22));
    if (!uri) return;
    /* base64 back to bytes */
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(uri + 22), len = 0;
    unsigned char *png = malloc(n);
    unsigned v = 0;
    int bits = 0;
    for (const char *c = uri + 22; png && *c && *c != '='; c++) {
        const char *k = strchr(tab, *c);
        CHECK(k != NULL);
        if (!k) break;
        v = v << 6 | (unsigned)(k - tab), bits += 6;
        if (bits >= 8) png[len++] = (unsigned char)(v >> (bits - 8)), bits -= 8;
    }
    CHECK(png && len > 8 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8));
#ifdef NB_HAVE_ZLIB
    /* walk the chunks, check every CRC with zlib's, inflate IDAT */
    size_t pos = 8, zlen = 0;
    unsigned char *z = malloc(len);
    int saw_end = 0;
    while (png && z && pos + 12 <= len) {
        uint32_t clen = (uint32_t)png[pos] << 24 | (uint32_t)png[pos + 1] << 16 | (uint32_t)png[pos + 2] << 8 | png[pos + 3];
        if (pos + 12 + clen > len) break;
        const unsigned char *type = png + pos + 4;
        uint32_t crc = (uint32_t)png[pos + 8 + clen] << 24 | (uint32_t)png[pos + 9 + clen] << 16 |
                       (uint32_t)png[pos + 10 + clen] << 8 | png[pos + 11 + clen];
        CHECK(crc == (uint32_t)crc32(0, type, clen + 4));
        if (!memcmp(type, "IHDR", 4)) CHECK(png[pos + 8 + 3] == PW && png[pos + 8 + 7] == PH && png[pos + 8 + 9] == 2);
        if (!memcmp(type, "IDAT", 4)) memcpy(z + zlen, type + 4, clen), zlen += clen;
        if (!memcmp(type, "IEND", 4)) saw_end = 1;
        pos += 12 + clen;
    }
    CHECK(saw_end && pos == len);
    unsigned char raw[PH * (1 + PW * 3)];
    uLongf rawlen = sizeof raw;
    CHECK(z && uncompress(raw, &rawlen, z, zlen) == Z_OK && rawlen == sizeof raw);
    for (int r = 0; r < PH; r++) {
        CHECK(raw[r * (1 + PW * 3)] == 0);
        CHECK(!memcmp(raw + r * (1 + PW * 3) + 1, px + r * PW * 3, PW * 3));
    }
    free(z);
#endif
    free(png);
    free(uri);
}

/* ---- the report ------------------------------------------------------------- */

static nb_report *full_report(void)
{
    nb_report *r = nb_report_create("a <test> report & more");
    CHECK_PTR(r);
    if (!r) return NULL;
    CHECK_OK(nb_report_set_info(r, "model", "examples/x.nn"));
    CHECK_OK(nb_report_set_info(r, "data", "spiral"));
    CHECK_OK(nb_report_set_info(r, "model", "examples/y.nn")); /* replaces */
    const char *names[3] = {"zero", "one", "two & three"};
    CHECK_OK(nb_report_set_class_names(r, 3, names));
    const char *layers[2] = {"0 linear", "2 linear"};
    CHECK_OK(nb_report_set_layers(r, 2, layers));
    for (int e = 1; e <= 4; e++) {
        for (int k = 1; k <= 3; k++) CHECK_OK(nb_report_add_grad_norms(r, e - 1 + k / 3.0, (const double[]){0.1 * k, 2.0 / e}));
        nb_report_epoch ep = {e, 1.0 / e, 0.5 + 0.1 * e, 1, 1.1 / e, 0.45 + 0.1 * e, 1, 1.2 / e, 0.4 + 0.1 * e, 0.01, 0.5};
        CHECK_OK(nb_report_add_epoch(r, &ep));
    }
    size_t conf[9] = {10, 1, 0, 2, 8, 1, 0, 0, 9};
    CHECK_OK(nb_report_set_confusion(r, 3, conf, "test set"));
    float px[4 * 1 * 6 * 6];
    for (size_t i = 0; i < sizeof px / sizeof px[0]; i++) px[i] = (float)(i % 7) - 3;
    CHECK_OK(nb_report_set_images(r, 4, 1, 6, 6, px, 0, 0, (const int[]){0, 1, 2, 0}, (const int[]){0, 2, 2, 1}, NULL));
    int grid[5 * 4];
    for (int i = 0; i < 20; i++) grid[i] = i % 3;
    CHECK_OK(nb_report_set_boundary(r, 5, 4, (const double[]){-1, 1, -1, 1}, grid, 2, (const float[]){0, 0, 0.5f, 0.5f},
                                    (const int[]){1, 2}, "test set"));
    return r;
}

NB_TEST(test_viz_report_html)
{
    nb_report *r = full_report();
    FILE *f = tmpfile();
    if (!r || !f) {
        if (f) fclose(f);
        nb_report_free(r);
        return;
    }
    CHECK_OK(nb_report_write_html(r, f));
    char *s = slurp(f);
    fclose(f);
    CHECK(s && !strncmp(s, "<!DOCTYPE html>", 15));
    const char *want[] = {"<meta name=\"viewport\"", "<h2>Loss</h2>", "<h2>Accuracy</h2>", "<h2>Learning rate</h2>",
                          "<h2>Gradient flow</h2>", "<h2>Confusion matrix</h2>", "<h2>Decision boundary</h2>",
                          "<h2>Test images</h2>", "<h2>Numbers per epoch</h2>", "a &lt;test&gt; report &amp; more",
                          "examples/y.nn", "two &amp; three", "After epoch <b>4</b>", "data:image/png;base64,"};
    for (size_t i = 0; s && i < sizeof want / sizeof want[0]; i++)
        if (!strstr(s, want[i])) nb_test_fail(__FILE__, __LINE__, "report lacks %s", want[i]);
    CHECK(s && !strstr(s, "examples/x.nn"));
    /* self-contained: nothing to fetch */
    CHECK(s && !strstr(s, "<script") && !strstr(s, "<link") && !strstr(s, "url(") && !strstr(s, "https:"));
    CHECK(check_svgs(s) == 7);
    /* the whole page is XHTML-compatible: one well-formed document */
    const char *why = "";
    CHECK(s && xml_ok(s, strlen(s), &why));
    if (*why) nb_test_fail(__FILE__, __LINE__, "page: %s", why);
    /* misclassified first: tiles 2 and 4 (of 4) are wrong; the first caption is red */
    CHECK(s && strstr(s, "2 of these 4 images are misclassified"));
    free(s);

    /* a redone epoch replaces the later ones */
    nb_report_epoch ep = {2, 9.5, 0.1, 0, 0, 0, 0, 0, 0, 0.01, 0};
    CHECK_OK(nb_report_add_epoch(r, &ep));
    f = tmpfile();
    if (f) {
        CHECK_OK(nb_report_write_html(r, f));
        s = slurp(f);
        fclose(f);
        CHECK(s && strstr(s, "After epoch <b>2</b>") && strstr(s, "<b>9.5000</b>"));
        free(s);
    }
    nb_report_free(r);
}

NB_TEST(test_viz_report_atomic_write_and_errors)
{
    nb_report *r = nb_report_create(NULL);
    CHECK_PTR(r);
    if (!r) return;
    /* bad arguments */
    CHECK(nb_report_set_images(r, 1, 2, 4, 4, (const float[16]){0}, 0, 1, (const int[]){0}, (const int[]){0}, NULL) == NB_ERR_ARG);
    CHECK(nb_report_set_confusion(r, 0, NULL, NULL) == NB_ERR_ARG);
    CHECK(nb_report_add_grad_norms(r, 1, (const double[]){1}) == NB_ERR_ARG); /* no layers */
    CHECK(nb_report_set_boundary(r, 2, 2, (const double[]){1, 0, 0, 1}, (const int[4]){0}, 0, NULL, NULL, NULL) == NB_ERR_ARG);
    /* an empty report is a page too */
    char dir[] = "/tmp/nabla-viz.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[96], tmp[100];
    snprintf(path, sizeof path, "%s/r.html", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK_OK(nb_report_write(r, path));
    CHECK(access(path, F_OK) == 0 && access(tmp, F_OK) != 0);
    FILE *f = fopen(path, "r");
    if (f) {
        fseek(f, 0, SEEK_END);
        char *s = slurp(f);
        fclose(f);
        CHECK(s && strstr(s, "nabla training report") && strstr(s, "No epoch finished yet"));
        const char *why;
        CHECK(s && xml_ok(s, strlen(s), &why));
        free(s);
    }
    remove(path);
    /* a directory that does not exist: an error naming the path, nothing left behind */
    snprintf(path, sizeof path, "%s/none/r.html", dir);
    CHECK(nb_report_write(r, path) == NB_ERR_IO);
    CHECK(strstr(nb_last_error(), path) != NULL);
    rmdir(dir);
    nb_report_free(r);
}
