/*
 * report.c - a training report: one self-contained HTML page (inline SVG
 * charts drawn by svg.c, inline CSS, no script, nothing fetched from the
 * network) with the metrics per epoch, the gradient flow per layer, a
 * confusion matrix, test images and a decision boundary. The caller feeds it
 * numbers as training goes and rewrites the file after every epoch.
 */
#include "viz.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define MAX_IMAGES 1024
#define MAX_GRID 1024

struct nb_report {
    char *title;
    char **info;             /* key, value, key, value, ... */
    int ninfo;
    char **class_names;
    int nclass_names;
    nb_report_epoch *ep;
    int nep, cap_ep;
    /* gradient flow: npts points of nlayers norms each */
    char **layers;
    int nlayers;
    double *gx, *gnorm;
    size_t npts, cap_pts;
    /* confusion matrix */
    int classes;
    double *conf;
    char *conf_caption;
    /* image tiles, misclassified first */
    int nimg, ic, ih, iw;
    unsigned char *img;
    int *pred, *truth;
    char *img_caption;
    /* decision boundary */
    int gw, gh;
    double range[4];
    int *grid;
    size_t npoints;
    float *points;
    int *plabels;
    char *bnd_caption;
};

static void free_strs(char **s, int n)
{
    for (int i = 0; s && i < n; i++) nb_free(s[i]);
    nb_free(s);
}

/* Copies of n strings (NULL entries become ""); NULL when out of memory. */
static char **dup_strs(int n, const char *const *src)
{
    char **s = nb_calloc(n > 0 ? (size_t)n : 1, sizeof *s);
    if (!s) return NULL;
    for (int i = 0; i < n; i++)
        if (!(s[i] = nb_strdup(src && src[i] ? src[i] : ""))) {
            free_strs(s, i);
            return NULL;
        }
    return s;
}

/* Replaces *dst with a copy of src (NULL: none). */
static nb_status set_str(char **dst, const char *src)
{
    char *c = NULL;
    if (src && !(c = nb_strdup(src))) return NB_ERR_NOMEM;
    nb_free(*dst);
    *dst = c;
    return NB_OK;
}

nb_report *nb_report_create(const char *title)
{
    nb_report *r = nb_calloc(1, sizeof *r);
    if (!r) return NULL;
    if (!(r->title = nb_strdup(title ? title : "nabla training report"))) {
        nb_free(r);
        return NULL;
    }
    return r;
}

static void clear_images(nb_report *r)
{
    nb_free(r->img);
    nb_free(r->pred);
    nb_free(r->truth);
    r->img = NULL, r->pred = r->truth = NULL, r->nimg = 0;
}

static void clear_boundary(nb_report *r)
{
    nb_free(r->grid);
    nb_free(r->points);
    nb_free(r->plabels);
    r->grid = r->plabels = NULL, r->points = NULL, r->gw = r->gh = 0, r->npoints = 0;
}

void nb_report_free(nb_report *r)
{
    if (!r) return;
    nb_free(r->title);
    free_strs(r->info, r->ninfo);
    free_strs(r->class_names, r->nclass_names);
    nb_free(r->ep);
    free_strs(r->layers, r->nlayers);
    nb_free(r->gx);
    nb_free(r->gnorm);
    nb_free(r->conf);
    nb_free(r->conf_caption);
    clear_images(r);
    nb_free(r->img_caption);
    clear_boundary(r);
    nb_free(r->bnd_caption);
    nb_free(r);
}

nb_status nb_report_set_info(nb_report *r, const char *key, const char *value)
{
    if (!r || !key) return nb_set_error(NB_ERR_ARG, "report_set_info: NULL report or key");
    for (int i = 0; i < r->ninfo; i += 2)
        if (!strcmp(r->info[i], key)) return set_str(&r->info[i + 1], value ? value : "");
    char **grown = nb_realloc(r->info, (size_t)(r->ninfo + 2) * sizeof *grown);
    if (!grown) return NB_ERR_NOMEM;
    r->info = grown;
    char *k = nb_strdup(key), *v = nb_strdup(value ? value : "");
    if (!k || !v) {
        nb_free(k);
        nb_free(v);
        return NB_ERR_NOMEM;
    }
    r->info[r->ninfo++] = k;
    r->info[r->ninfo++] = v;
    return NB_OK;
}

nb_status nb_report_set_class_names(nb_report *r, int n, const char *const *names)
{
    if (!r || n < 0 || (n > 0 && !names)) return nb_set_error(NB_ERR_ARG, "report_set_class_names: bad argument");
    char **s = NULL;
    if (n > 0 && !(s = dup_strs(n, names))) return NB_ERR_NOMEM;
    free_strs(r->class_names, r->nclass_names);
    r->class_names = s;
    r->nclass_names = n;
    return NB_OK;
}

nb_status nb_report_add_epoch(nb_report *r, const nb_report_epoch *e)
{
    if (!r || !e) return nb_set_error(NB_ERR_ARG, "report_add_epoch: NULL argument");
    /* an epoch done again (a resumed run) replaces it and everything after it */
    while (r->nep > 0 && r->ep[r->nep - 1].epoch >= e->epoch) r->nep--;
    if (r->nep == r->cap_ep) {
        int cap = r->cap_ep ? 2 * r->cap_ep : 16;
        nb_report_epoch *grown = nb_realloc(r->ep, (size_t)cap * sizeof *grown);
        if (!grown) return NB_ERR_NOMEM;
        r->ep = grown;
        r->cap_ep = cap;
    }
    r->ep[r->nep++] = *e;
    return NB_OK;
}

nb_status nb_report_set_layers(nb_report *r, int n, const char *const *names)
{
    if (!r || n < 0 || n > 64 || (n > 0 && !names))
        return nb_set_error(NB_ERR_ARG, "report_set_layers: need 0 to 64 layer names");
    char **s = NULL;
    if (n > 0 && !(s = dup_strs(n, names))) return NB_ERR_NOMEM;
    free_strs(r->layers, r->nlayers);
    r->layers = s;
    r->nlayers = n;
    nb_free(r->gx);
    nb_free(r->gnorm);
    r->gx = r->gnorm = NULL;
    r->npts = r->cap_pts = 0;
    return NB_OK;
}

nb_status nb_report_add_grad_norms(nb_report *r, double epoch, const double *norms)
{
    if (!r || !norms || !r->nlayers)
        return nb_set_error(NB_ERR_ARG, "report_add_grad_norms: NULL argument or no layers set");
    /* time went back (a stretch done again): the new points replace the old from there on */
    while (r->npts > 0 && r->gx[r->npts - 1] >= epoch) r->npts--;
    if (r->npts == r->cap_pts) {
        size_t cap = r->cap_pts ? 2 * r->cap_pts : 256, bytes;
        if (!nb_mul_ok(cap, (size_t)r->nlayers * sizeof(double), &bytes)) return nb_set_error(NB_ERR_NOMEM, "report: too many points");
        double *gx = nb_realloc(r->gx, cap * sizeof *gx);
        if (!gx) return NB_ERR_NOMEM;
        r->gx = gx;
        double *gn = nb_realloc(r->gnorm, bytes);
        if (!gn) return NB_ERR_NOMEM;
        r->gnorm = gn;
        r->cap_pts = cap;
    }
    r->gx[r->npts] = epoch;
    memcpy(r->gnorm + r->npts * (size_t)r->nlayers, norms, (size_t)r->nlayers * sizeof *norms);
    r->npts++;
    return NB_OK;
}

nb_status nb_report_set_confusion(nb_report *r, int classes, const size_t *counts, const char *caption)
{
    if (!r || classes < 1 || classes > 1000 || !counts)
        return nb_set_error(NB_ERR_ARG, "report_set_confusion: need 1 to 1000 classes and their counts");
    size_t n = (size_t)classes * (size_t)classes;
    double *c = nb_calloc(n, sizeof *c);
    if (!c) return NB_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) c[i] = (double)counts[i];
    if (set_str(&r->conf_caption, caption) != NB_OK) {
        nb_free(c);
        return NB_ERR_NOMEM;
    }
    nb_free(r->conf);
    r->conf = c;
    r->classes = classes;
    return NB_OK;
}

nb_status nb_report_set_images(nb_report *r, int n, int channels, int height, int width, const float *pixels,
                               float lo, float hi, const int *predicted, const int *truth, const char *caption)
{
    if (!r || n < 0 || n > MAX_IMAGES || (channels != 1 && channels != 3) || height < 1 || width < 1 ||
        height > 512 || width > 512 || (n > 0 && (!pixels || !predicted || !truth)))
        return nb_set_error(NB_ERR_ARG, "report_set_images: need 0 to %d images of 1 or 3 channels, 1 to 512 "
                                        "pixels a side, with their labels", MAX_IMAGES);
    size_t per = (size_t)channels * (size_t)height * (size_t)width, total = per * (size_t)n;
    if (!(lo < hi)) { /* the range of the images themselves */
        lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < total; i++)
            if (isfinite(pixels[i])) {
                if (pixels[i] < lo) lo = pixels[i];
                if (pixels[i] > hi) hi = pixels[i];
            }
        if (!(lo < hi)) lo = 0, hi = lo + 1;
    }
    unsigned char *img = nb_alloc(total ? total : 1);
    int *pred = nb_calloc(n ? (size_t)n : 1, sizeof *pred), *tru = nb_calloc(n ? (size_t)n : 1, sizeof *tru);
    if (!img || !pred || !tru || set_str(&r->img_caption, caption) != NB_OK) {
        nb_free(img);
        nb_free(pred);
        nb_free(tru);
        return NB_ERR_NOMEM;
    }
    /* misclassified first, each group in the given order */
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            if ((predicted[i] != truth[i]) != (pass == 0)) continue;
            const float *src = pixels + (size_t)i * per;
            unsigned char *dst = img + (size_t)k * per;
            for (size_t j = 0; j < per; j++) {
                double v = isfinite(src[j]) ? (src[j] - lo) / (hi - lo) : 0;
                dst[j] = (unsigned char)lround(255 * (v < 0 ? 0 : v > 1 ? 1 : v));
            }
            pred[k] = predicted[i];
            tru[k] = truth[i];
            k++;
        }
    clear_images(r);
    r->img = img, r->pred = pred, r->truth = tru;
    r->nimg = n, r->ic = channels, r->ih = height, r->iw = width;
    return NB_OK;
}

nb_status nb_report_set_boundary(nb_report *r, int gw, int gh, const double range[4], const int *grid, size_t npoints,
                                 const float *points, const int *labels, const char *caption)
{
    if (!r || gw < 1 || gh < 1 || gw > MAX_GRID || gh > MAX_GRID || !range || !grid || (npoints && (!points || !labels)) ||
        !(range[0] < range[1]) || !(range[2] < range[3]) || npoints > 100000)
        return nb_set_error(NB_ERR_ARG, "report_set_boundary: need a grid of 1 to %d cells a side, a range with "
                                        "x0 < x1 and y0 < y1, and at most 100000 labelled points", MAX_GRID);
    size_t cells = (size_t)gw * (size_t)gh;
    int *g = nb_alloc(cells * sizeof *g);
    float *pts = nb_alloc((npoints ? npoints : 1) * 2 * sizeof *pts);
    int *lab = nb_alloc((npoints ? npoints : 1) * sizeof *lab);
    if (!g || !pts || !lab || set_str(&r->bnd_caption, caption) != NB_OK) {
        nb_free(g);
        nb_free(pts);
        nb_free(lab);
        return NB_ERR_NOMEM;
    }
    memcpy(g, grid, cells * sizeof *g);
    if (npoints) {
        memcpy(pts, points, npoints * 2 * sizeof *pts);
        memcpy(lab, labels, npoints * sizeof *lab);
    }
    clear_boundary(r);
    r->grid = g, r->points = pts, r->plabels = lab;
    r->gw = gw, r->gh = gh, r->npoints = npoints;
    memcpy(r->range, range, sizeof r->range);
    return NB_OK;
}

/* ---- the page -------------------------------------------------------------- */

static const char css[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;"
    "color:#222;background:#f3f4f6}"
    "header,main,footer{max-width:1400px;margin:0 auto;padding:12px 18px}"
    "h1{font-size:1.4em;margin:4px 0}"
    "h2{font-size:1.05em;margin:0 0 8px}"
    ".latest{font-size:1.02em;margin:6px 0}"
    ".latest b{font-variant-numeric:tabular-nums}"
    "table{border-collapse:collapse;font-size:.9em}"
    "td,th{padding:2px 12px 2px 0;text-align:left;vertical-align:top}"
    "th{color:#555;font-weight:600}"
    ".info td:first-child{color:#555}"
    "main{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,430px),1fr));gap:14px;padding-top:4px}"
    "section{background:#fff;border:1px solid #e1e3e8;border-radius:10px;padding:12px 14px;min-width:0}"
    "section.wide{grid-column:1/-1}"
    "svg{display:block;width:100%;height:auto;max-width:760px;margin:0 auto}"
    "section.wide svg{max-width:900px}"
    ".note{font-size:.85em;color:#555;margin:8px 0 0}"
    ".scroll{overflow-x:auto}"
    ".num td{font-variant-numeric:tabular-nums;text-align:right}"
    "footer{color:#777;font-size:.85em}"
    "@media (max-width:560px){header,main,footer{padding-left:8px;padding-right:8px}"
    "section{padding:10px 8px}body{font-size:14px}}";

static int has_acc(const nb_report *r)
{
    for (int i = 0; i < r->nep; i++)
        if (r->ep[i].train_acc >= 0 || (r->ep[i].has_val && r->ep[i].val_acc >= 0) ||
            (r->ep[i].has_test && r->ep[i].test_acc >= 0))
            return 1;
    return 0;
}

static const char *class_name(const nb_report *r, int c, char *buf, size_t size)
{
    if (c >= 0 && c < r->nclass_names && r->class_names[c][0]) return r->class_names[c];
    snprintf(buf, size, "%d", c);
    return buf;
}

static void section_open(vz_out *o, const char *id, const char *title, int wide)
{
    vz_fmt(o, "<section id=\"%s\"%s><h2>", id, wide ? " class=\"wide\"" : "");
    vz_xml(o, title);
    vz_put(o, "</h2>\n");
}

static void note(vz_out *o, const char *text)
{
    vz_put(o, "<p class=\"note\">");
    vz_xml(o, text);
    vz_put(o, "</p>\n");
}

/* A section holding one line chart and the note that explains it. */
static void chart_section(vz_out *o, const char *id, const char *title, const vz_chart *c, const char *text)
{
    section_open(o, id, title, 0);
    vz_line_chart(o, c);
    if (text) note(o, text);
    vz_put(o, "</section>\n");
}

static void metric(vz_out *o, const char *name, double v)
{
    vz_fmt(o, " &#183; %s <b>%.4f</b>", name, v);
}

/* Loss, accuracy and learning-rate charts from the epochs. */
static nb_status metric_charts(vz_out *o, const nb_report *r)
{
    size_t n = (size_t)r->nep;
    double *buf = nb_alloc((n ? n : 1) * 7 * sizeof *buf);
    if (!buf) return NB_ERR_NOMEM;
    double *x = buf, *tl = buf + n, *vl = buf + 2 * n, *sl = buf + 3 * n;
    double *ta = buf + 4 * n, *va = buf + 5 * n, *sa = buf + 6 * n;
    int any_val = 0, any_test = 0;
    for (size_t i = 0; i < n; i++) {
        const nb_report_epoch *e = &r->ep[i];
        x[i] = e->epoch;
        tl[i] = e->train_loss;
        ta[i] = e->train_acc >= 0 ? e->train_acc : NAN;
        vl[i] = e->has_val ? e->val_loss : NAN;
        va[i] = e->has_val && e->val_acc >= 0 ? e->val_acc : NAN;
        sl[i] = e->has_test ? e->test_loss : NAN;
        sa[i] = e->has_test && e->test_acc >= 0 ? e->test_acc : NAN;
        any_val |= e->has_val;
        any_test |= e->has_test;
    }
    vz_series s[3];
    int ns = 0;
    s[ns++] = (vz_series){"training", x, tl, n, 0, 0};
    if (any_val) s[ns++] = (vz_series){"validation", x, vl, n, 1, 1};
    if (any_test) s[ns++] = (vz_series){"test", x, sl, n, 2, 0};
    vz_chart c = {"loss per epoch", "epoch", "loss", 0, 1, 0, 0, 0, ns, s};
    chart_section(o, "loss", "Loss", &c, "How wrong the network is, averaged over the samples: the training loss is the mean over the "
            "epoch's steps; validation and test losses are measured after the epoch. A test loss that "
            "rises while the training loss falls is overfitting.");
    if (has_acc(r)) {
        ns = 0;
        s[ns++] = (vz_series){"training", x, ta, n, 0, 0};
        if (any_val) s[ns++] = (vz_series){"validation", x, va, n, 1, 1};
        if (any_test) s[ns++] = (vz_series){"test", x, sa, n, 2, 0};
        /* from 0 to 1, or closer when every value is high: progress stays visible */
        double lo = 1;
        for (int k = 0; k < ns; k++)
            for (size_t i = 0; i < n; i++)
                if (s[k].y[i] < lo) lo = s[k].y[i];
        lo = lo > 0.5 ? floor((lo - 0.02) * 10) / 10 : 0;
        vz_chart ca = {"accuracy per epoch", "epoch", "accuracy", 0, 1, lo, 1, 0, ns, s};
        chart_section(o, "accuracy", "Accuracy", &ca, "The share of samples whose highest-scoring class is the true one.");
    }
    for (size_t i = 0; i < n; i++) tl[i] = r->ep[i].lr;
    s[0] = (vz_series){"learning rate", x, tl, n, 4, 0};
    vz_chart cl = {"learning rate per epoch", "epoch", "learning rate", 0, 1, 0, 0, 1, 1, s};
    chart_section(o, "lr", "Learning rate", &cl,
                  "The step size of the updates, at the end of each epoch (the schedule changes it step by step).");
    nb_free(buf);
    return NB_OK;
}

static nb_status grad_chart(vz_out *o, const nb_report *r)
{
    int L = r->nlayers;
    size_t n = r->npts;
    double *y = nb_alloc((n ? n : 1) * (size_t)L * sizeof *y);
    vz_series *s = nb_calloc((size_t)L, sizeof *s);
    if (!y || !s) {
        nb_free(y);
        nb_free(s);
        return NB_ERR_NOMEM;
    }
    for (int l = 0; l < L; l++) {
        double *yl = y + (size_t)l * n;
        for (size_t i = 0; i < n; i++) yl[i] = r->gnorm[i * (size_t)L + (size_t)l];
        s[l] = (vz_series){r->layers[l], r->gx, yl, n, l, 0};
    }
    vz_chart c = {"gradient norm per layer", "epoch", "gradient norm (log scale)", 1, 0, 0, 0, 0, L, s};
    chart_section(o, "gradients", "Gradient flow", &c, "The size (L2 norm) of each layer's parameter gradients during training: how much blame "
            "backpropagation hands each layer. Lines that sink by orders of magnitude towards the input "
            "mean vanishing gradients; lines that shoot up mean exploding ones.");
    nb_free(y);
    nb_free(s);
    return NB_OK;
}

static nb_status images_section(vz_out *o, const nb_report *r)
{
    int n = r->nimg, wrong = 0;
    char **cap = nb_calloc((size_t)n * 2 + 1, sizeof *cap);
    int *bad = nb_calloc((size_t)n + 1, sizeof *bad);
    char *text = nb_alloc((size_t)n * 2 * 64 + 1);
    if (!cap || !bad || !text) {
        nb_free(cap);
        nb_free(bad);
        nb_free(text);
        return NB_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        char b1[16], b2[16];
        cap[i] = text + (size_t)i * 128;
        cap[n + i] = text + (size_t)i * 128 + 64;
        snprintf(cap[i], 64, "%s", class_name(r, r->pred[i], b1, sizeof b1));
        snprintf(cap[n + i], 64, "true: %s", class_name(r, r->truth[i], b2, sizeof b2));
        bad[i] = r->pred[i] != r->truth[i];
        wrong += bad[i];
    }
    section_open(o, "images", "Test images", 0);
    vz_image_grid(o, n, r->ic, r->ih, r->iw, r->img, (const char *const *)cap, (const char *const *)(cap + n), bad);
    char msg[320];
    snprintf(msg, sizeof msg, "%d of these %d images are misclassified (red, shown first); under each image: the "
                              "network's guess, then the true label.%s%s", wrong, n, r->img_caption ? " " : "",
             r->img_caption ? r->img_caption : "");
    note(o, msg);
    vz_put(o, "</section>\n");
    nb_free(cap);
    nb_free(bad);
    nb_free(text);
    return NB_OK;
}

nb_status nb_report_write_html(const nb_report *r, FILE *out)
{
    if (!r || !out) return nb_set_error(NB_ERR_ARG, "report_write_html: NULL report or stream");
    vz_out o = {out, 0};
    nb_status st = NB_OK;
    vz_put(&o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
               "<meta name=\"generator\" content=\"nabla " NB_VERSION "\"/>\n<title>");
    vz_xml(&o, r->title);
    vz_put(&o, "</title>\n<style>");
    vz_put(&o, css);
    vz_put(&o, "</style>\n</head>\n<body>\n<header>\n<h1>");
    vz_xml(&o, r->title);
    vz_put(&o, "</h1>\n");
    if (r->nep > 0) {
        const nb_report_epoch *e = &r->ep[r->nep - 1];
        vz_fmt(&o, "<p class=\"latest\">After epoch <b>%d</b>", e->epoch);
        metric(&o, "training loss", e->train_loss);
        if (e->train_acc >= 0) metric(&o, "training accuracy", e->train_acc);
        if (e->has_val) {
            metric(&o, "validation loss", e->val_loss);
            if (e->val_acc >= 0) metric(&o, "validation accuracy", e->val_acc);
        }
        if (e->has_test) {
            metric(&o, "test loss", e->test_loss);
            if (e->test_acc >= 0) metric(&o, "test accuracy", e->test_acc);
        }
        vz_put(&o, "</p>\n");
    } else {
        vz_put(&o, "<p class=\"latest\">No epoch finished yet.</p>\n");
    }
    if (r->ninfo) {
        vz_put(&o, "<table class=\"info\">\n");
        for (int i = 0; i < r->ninfo; i += 2) {
            vz_put(&o, "<tr><td>");
            vz_xml(&o, r->info[i]);
            vz_put(&o, "</td><td>");
            vz_xml(&o, r->info[i + 1]);
            vz_put(&o, "</td></tr>\n");
        }
        vz_put(&o, "</table>\n");
    }
    vz_put(&o, "</header>\n<main>\n");
    if ((st = metric_charts(&o, r)) != NB_OK) return st;
    if (r->nlayers && (st = grad_chart(&o, r)) != NB_OK) return st;
    if (r->conf) {
        const char *const *names = r->nclass_names >= r->classes ? (const char *const *)r->class_names : NULL;
        section_open(&o, "confusion", "Confusion matrix", 0);
        vz_confusion(&o, r->classes, r->conf, names);
        note(&o, "Rows: the true class; columns: the network's guess. The diagonal (blue) counts correct "
                 "answers; red cells are the confusions, shaded by their share of the row.");
        if (r->conf_caption) note(&o, r->conf_caption);
        vz_put(&o, "</section>\n");
    }
    if (r->grid) {
        int classes = 0;
        for (size_t i = 0; i < (size_t)r->gw * (size_t)r->gh; i++)
            if (r->grid[i] + 1 > classes) classes = r->grid[i] + 1;
        for (size_t i = 0; i < r->npoints; i++)
            if (r->plabels[i] + 1 > classes) classes = r->plabels[i] + 1;
        if (r->nclass_names > classes) classes = r->nclass_names;
        section_open(&o, "boundary", "Decision boundary", 0);
        vz_boundary(&o, r->gw, r->gh, r->grid, r->range, r->npoints, r->points, r->plabels, classes,
                    r->nclass_names >= classes ? (const char *const *)r->class_names : NULL);
        note(&o, "Every point of the plane coloured by the class the network predicts there; the dots are "
                 "samples coloured by their true class.");
        if (r->bnd_caption) note(&o, r->bnd_caption);
        vz_put(&o, "</section>\n");
    }
    if (r->nimg && (st = images_section(&o, r)) != NB_OK) return st;
    if (r->nep) {
        int acc = has_acc(r);
        section_open(&o, "numbers", "Numbers per epoch", 1);
        vz_put(&o, "<details><summary>Show the table</summary><div class=\"scroll\"><table class=\"num\">\n<tr><th>epoch</th>"
                   "<th>train loss</th>");
        if (acc) vz_put(&o, "<th>train acc</th>");
        vz_put(&o, "<th>val loss</th>");
        if (acc) vz_put(&o, "<th>val acc</th>");
        vz_put(&o, "<th>test loss</th>");
        if (acc) vz_put(&o, "<th>test acc</th>");
        vz_put(&o, "<th>lr</th><th>seconds</th></tr>\n");
        for (int i = 0; i < r->nep; i++) {
            const nb_report_epoch *e = &r->ep[i];
            vz_fmt(&o, "<tr><td>%d</td><td>%.4f</td>", e->epoch, e->train_loss);
            if (acc) vz_fmt(&o, "<td>%.4f</td>", e->train_acc);
            if (e->has_val) vz_fmt(&o, "<td>%.4f</td>", e->val_loss);
            else vz_put(&o, "<td></td>");
            if (acc) {
                if (e->has_val) vz_fmt(&o, "<td>%.4f</td>", e->val_acc);
                else vz_put(&o, "<td></td>");
            }
            if (e->has_test) vz_fmt(&o, "<td>%.4f</td>", e->test_loss);
            else vz_put(&o, "<td></td>");
            if (acc) {
                if (e->has_test) vz_fmt(&o, "<td>%.4f</td>", e->test_acc);
                else vz_put(&o, "<td></td>");
            }
            vz_fmt(&o, "<td>%.3g</td><td>%.2f</td></tr>\n", e->lr, e->seconds);
        }
        vz_put(&o, "</table></div></details>\n</section>\n");
    }
    vz_put(&o, "</main>\n<footer>Made by nabla " NB_VERSION ". This page is self-contained: it loads nothing from "
               "the network.</footer>\n</body>\n</html>\n");
    return vz_finish(&o, "report");
}

nb_status nb_report_write(const nb_report *r, const char *path)
{
    if (!r || !path || !*path) return nb_set_error(NB_ERR_ARG, "report_write: NULL report or empty path");
    size_t n = strlen(path);
    char *tmp = nb_alloc(n + 5);
    if (!tmp) return NB_ERR_NOMEM;
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        nb_status st = nb_set_error(NB_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        nb_free(tmp);
        return st;
    }
    errno = 0;
    nb_status st = nb_report_write_html(r, f);
    if (st == NB_ERR_IO)
        st = nb_set_error(NB_ERR_IO, "%s: writing %s failed: %s", path, tmp, errno ? strerror(errno) : "write error");
    if (st == NB_OK && fsync(fileno(f)) != 0 && errno != EINVAL)
        st = nb_set_error(NB_ERR_IO, "%s: syncing %s failed: %s", path, tmp, strerror(errno));
    if (fclose(f) != 0 && st == NB_OK) st = nb_set_error(NB_ERR_IO, "%s: writing %s failed: %s", path, tmp, strerror(errno));
    if (st == NB_OK && rename(tmp, path) != 0)
        st = nb_set_error(NB_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (st != NB_OK) unlink(tmp);
    nb_free(tmp);
    return st;
}
