/*
 * svg.c - small SVG charts, drawn by nabla itself so that a report needs
 * nothing from the network: line charts (axes, ticks, labels, legend), a
 * confusion-matrix heatmap, image tiles and a decision boundary.
 *
 * Every chart is one <svg> element with a viewBox and width 100%, so it
 * scales to the width of its container (a phone or a desktop); sizes below
 * are in viewBox units, about pixels at a 480-unit-wide chart.
 */
#include "viz.h"

#include <math.h>
#include <string.h>

#define W 480.0   /* viewBox width of every chart */
#define FONT "font-family=\"system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif\""

const char *vz_color(int i)
{
    /* Tableau 10: distinct, readable on white, kind to colour-blind eyes */
    static const char *const pal[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                      "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
    return pal[(i < 0 ? -i : i) % 10];
}

static void svg_open(vz_out *o, double h, const char *title)
{
    vz_fmt(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" width=\"100%%\" "
              "role=\"img\" " FONT " font-size=\"13\">", W, ceil(h));
    if (title) {
        vz_put(o, "<title>");
        vz_xml(o, title);
        vz_put(o, "</title>");
    }
    vz_put(o, "\n");
}

/* Approximate width of text at a font size (for layout only). */
static double text_width(const char *s, double size)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) n += (*p & 0xC0) != 0x80;
    return (double)n * size * 0.56;
}

/* ---- axes -------------------------------------------------------------- */

typedef struct axis {
    double lo, hi;    /* drawn range (log10 of it for a log axis) */
    double step;      /* tick spacing (in log10 units for a log axis) */
    int log;
} axis;

/* 1, 2, 5 or 10 times a power of ten near x (rounded, or the one >= x). */
static double nice_num(double x, int round_it)
{
    double e = floor(log10(x)), f = x / pow(10, e), nf;
    if (round_it) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * pow(10, e);
}

/* An axis over [mn, mx]: widened to whole ticks when `snap`, kept as given otherwise. */
static void axis_make(axis *a, double mn, double mx, int nticks, int integer, int log_scale, int snap)
{
    a->log = log_scale;
    if (log_scale) {
        mn = log10(mn), mx = log10(mx);
        a->lo = floor(mn), a->hi = ceil(mx);
        if (a->hi <= a->lo) a->hi = a->lo + 1;
        double span = a->hi - a->lo;
        a->step = span <= 6 ? 1 : ceil(span / 6);
        return;
    }
    if (!(mx > mn)) {
        double d = mn != 0 ? fabs(mn) * 0.1 : 1;
        mn -= d, mx += d;
    }
    double step = nice_num((mx - mn) / (nticks - 1), 1);
    if (integer && step < 1) step = 1;
    a->step = step;
    if (snap) {
        a->lo = floor(mn / step + 1e-9) * step;
        a->hi = ceil(mx / step - 1e-9) * step;
        if (a->hi <= a->lo) a->hi = a->lo + step;
    } else {
        a->lo = mn, a->hi = mx;
    }
}

/* Position of v in [0, 1] along the axis (NAN when a log axis gets v <= 0). */
static double axis_t(const axis *a, double v)
{
    if (a->log) {
        if (!(v > 0)) return NAN;
        v = log10(v);
    }
    return (v - a->lo) / (a->hi - a->lo);
}

static void tick_label(const axis *a, double v, char *buf, size_t size)
{
    if (a->log) {
        int k = (int)lround(v);
        if (k >= -3 && k <= 4) snprintf(buf, size, "%g", pow(10, k));
        else snprintf(buf, size, "1e%d", k);
        return;
    }
    if (fabs(v) < a->step * 1e-6) v = 0;
    double big = fabs(a->lo) > fabs(a->hi) ? fabs(a->lo) : fabs(a->hi);
    if (big >= 1e5 || a->step < 1e-4) {
        snprintf(buf, size, "%.3g", v);
    } else {
        int dec = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
        snprintf(buf, size, "%.*f", dec, v);
    }
}

/* The left margin that fits the y axis' widest tick label and its label. */
static double left_margin(const axis *ay)
{
    char buf[32];
    double widest = 0, first = ceil(ay->lo / ay->step - 1e-9) * ay->step;
    for (int k = 0; k < 200; k++) {
        double v = first + k * ay->step;
        if (v > ay->hi + ay->step * 1e-9) break;
        tick_label(ay, v, buf, sizeof buf);
        double w = text_width(buf, 12);
        if (w > widest) widest = w;
    }
    return 24 + widest + 9;
}

/* The tick values of an axis (at most 200) and their positions in [0, 1]. */
static int ticks(const axis *a, double *v, double *t)
{
    double first = ceil(a->lo / a->step - 1e-9) * a->step;
    int n = 0;
    for (; n < 200; n++) {
        v[n] = first + n * a->step;
        if (v[n] > a->hi + a->step * 1e-9) break;
        t[n] = (v[n] - a->lo) / (a->hi - a->lo);
    }
    return n;
}

/* Grid lines, ticks and tick labels of both axes around the plot box
 * (x, y, w, h), and the axis labels. */
static void draw_axes(vz_out *o, const axis *ax, const axis *ay, double x, double y, double w, double h,
                      const char *xlabel, const char *ylabel)
{
    char buf[32];
    vz_put(o, "<g stroke=\"#e3e3e3\" stroke-width=\"1\">");
    double v[200], t[200];
    for (int pass = 0; pass < 2; pass++) {
        int n = ticks(pass ? ay : ax, v, t);
        for (int k = 0; k < n; k++)
            if (pass) vz_fmt(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x, y + h - t[k] * h, x + w, y + h - t[k] * h);
            else vz_fmt(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x + t[k] * w, y, x + t[k] * w, y + h);
    }
    vz_put(o, "</g>\n");
    vz_fmt(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>\n", x, y, w, h);
    vz_put(o, "<g fill=\"#444\" font-size=\"12\">");
    for (int pass = 0; pass < 2; pass++) {
        const axis *a = pass ? ay : ax;
        int n = ticks(a, v, t);
        for (int k = 0; k < n; k++) {
            tick_label(a, v[k], buf, sizeof buf);
            if (pass)
                vz_fmt(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>", x - 5, y + h - t[k] * h + 4, buf);
            else
                vz_fmt(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", x + t[k] * w, y + h + 14, buf);
        }
    }
    vz_put(o, "</g>\n");
    if (xlabel && *xlabel) {
        vz_fmt(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#222\">", x + w / 2, y + h + 31);
        vz_xml(o, xlabel);
        vz_put(o, "</text>\n");
    }
    if (ylabel && *ylabel) {
        vz_fmt(o, "<text transform=\"translate(13 %.1f) rotate(-90)\" text-anchor=\"middle\" fill=\"#222\">", y + h / 2);
        vz_xml(o, ylabel);
        vz_put(o, "</text>\n");
    }
}

/* A legend of coloured swatches in rows from (x, y), at most width wide;
 * returns the number of rows (draws nothing when `draw` is 0). */
static int legend(vz_out *o, int draw, double x, double y, double width, int n, const char *const *names,
                  const int *colors, const int *dashed, int dots)
{
    double cx = x;
    int rows = n > 0;
    for (int i = 0; i < n; i++) {
        double iw = 26 + text_width(names[i], 13) + 14;
        if (iw > width) iw = width;
        if (cx > x && cx + iw > x + width) {
            cx = x;
            y += 18;
            rows++;
        }
        if (draw) {
            const char *c = vz_color(colors[i]);
            if (dots)
                vz_fmt(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\" stroke=\"#333\" stroke-width=\"0.5\"/>",
                       cx + 10, y - 4, c);
            else
                vz_fmt(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s/>", cx,
                       y - 4, cx + 20, y - 4, c, dashed && dashed[i] ? " stroke-dasharray=\"5 3\"" : "");
            vz_fmt(o, "<text x=\"%.1f\" y=\"%.1f\">", cx + 26, y);
            vz_xml_cut(o, names[i], 40);
            vz_put(o, "</text>");
        }
        cx += iw;
    }
    if (draw && n) vz_put(o, "\n");
    return rows;
}

/* ---- line chart -------------------------------------------------------- */

void vz_line_chart(vz_out *o, const vz_chart *c)
{
    double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
    size_t longest = 0;
    for (int s = 0; s < c->nseries; s++) {
        const vz_series *sr = &c->series[s];
        if (sr->n > longest) longest = sr->n;
        for (size_t i = 0; i < sr->n; i++) {
            double xv = sr->x[i], yv = sr->y[i];
            if (!isfinite(xv) || !isfinite(yv) || (c->logy && !(yv > 0))) continue;
            if (xv < xmn) xmn = xv;
            if (xv > xmx) xmx = xv;
            if (yv < ymn) ymn = yv;
            if (yv > ymx) ymx = yv;
        }
    }
    int empty = !(xmn <= xmx);
    if (empty) xmn = 0, xmx = 1, ymn = c->logy ? 0.1 : 0, ymx = 1;
    if (c->ymin < c->ymax) ymn = c->ymin, ymx = c->ymax;
    else if (c->from_zero && !c->logy && ymn > 0) ymn = 0;
    axis ax, ay;
    axis_make(&ax, xmn, xmx, 7, c->integer_x, 0, 1);
    axis_make(&ay, ymn, ymx, 6, 0, c->logy, c->ymin >= c->ymax);

    const char *names[64];
    int colors[64], dashed[64];
    int nl = c->nseries < 64 ? c->nseries : 64;
    for (int s = 0; s < nl; s++) {
        names[s] = c->series[s].name ? c->series[s].name : "";
        colors[s] = c->series[s].color;
        dashed[s] = c->series[s].dashed;
    }
    const double ml = left_margin(&ay), mr = 14, mt = 12, ph = 210, px = ml, pw = W - ml - mr;
    int rows = legend(o, 0, ml, 0, pw, nl, names, colors, dashed, 0);
    double h = mt + ph + 40 + rows * 18 + 4;
    svg_open(o, h, c->title);
    draw_axes(o, &ax, &ay, px, mt, pw, ph, c->xlabel, c->ylabel);
    if (empty)
        vz_fmt(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#888\">no data yet</text>\n", px + pw / 2, mt + ph / 2);
    for (int s = 0; s < c->nseries; s++) {
        const vz_series *sr = &c->series[s];
        const char *col = vz_color(sr->color);
        int open = 0;
        for (size_t i = 0; i < sr->n; i++) {
            double tx = axis_t(&ax, sr->x[i]), ty = axis_t(&ay, sr->y[i]);
            if (!isfinite(tx) || !isfinite(ty) || !isfinite(sr->y[i])) {
                if (open) vz_put(o, "\"/>\n");
                open = 0;
                continue;
            }
            if (ty < 0) ty = 0;
            if (ty > 1) ty = 1;
            if (!open) {
                vz_fmt(o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" stroke-linejoin=\"round\"%s points=\"", col,
                       sr->dashed ? " stroke-dasharray=\"6 3\"" : "");
                open = 1;
            }
            vz_fmt(o, "%.1f,%.1f ", px + tx * pw, mt + ph - ty * ph);
        }
        if (open) vz_put(o, "\"/>\n");
        if (longest <= 40) {
            vz_fmt(o, "<g fill=\"%s\">", col);
            for (size_t i = 0; i < sr->n; i++) {
                double tx = axis_t(&ax, sr->x[i]), ty = axis_t(&ay, sr->y[i]);
                if (isfinite(tx) && isfinite(ty) && isfinite(sr->y[i]) && ty >= 0 && ty <= 1)
                    vz_fmt(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\"/>", px + tx * pw, mt + ph - ty * ph);
            }
            vz_put(o, "</g>\n");
        }
    }
    legend(o, 1, ml, mt + ph + 56, pw, nl, names, colors, dashed, 0);
    vz_put(o, "</svg>\n");
}

/* ---- confusion matrix ---------------------------------------------------- */

/* White mixed towards colour (r, g, b) by s in [0, 1]. */
static void mix(char *buf, size_t size, double s, int r, int g, int b)
{
    if (!(s >= 0)) s = 0;
    if (s > 1) s = 1;
    snprintf(buf, size, "#%02x%02x%02x", (int)lround(255 + (r - 255) * s), (int)lround(255 + (g - 255) * s),
             (int)lround(255 + (b - 255) * s));
}

void vz_confusion(vz_out *o, int classes, const double *counts, const char *const *names)
{
    int C = classes > 0 ? classes : 1;
    char label[32];
    double lw = 0;
    for (int i = 0; i < C; i++) {
        const char *nm = names && names[i] ? names[i] : (snprintf(label, sizeof label, "%d", i), label);
        double tw = text_width(nm, 11);
        if (tw > lw) lw = tw;
    }
    if (lw > 96) lw = 96;
    double ml = 24 + lw + 6, mt = 8;
    double cell = (W - ml - 12) / C;
    if (cell > 72) cell = 72;
    double gw = cell * C, colh = (names ? lw * 0.71 : 10) + 14;
    double shift = (W - (ml + gw + 12)) / 2; /* centred */
    if (shift > 0) ml += shift;
    else shift = 0;
    double h = mt + gw + colh + 22;
    svg_open(o, h, "confusion matrix");
    double fs = cell * 0.34 < 15 ? cell * 0.34 : 15;
    for (int i = 0; i < C; i++) {
        double rowsum = 0;
        for (int j = 0; j < C; j++) rowsum += counts[(size_t)i * C + j];
        for (int j = 0; j < C; j++) {
            double v = counts[(size_t)i * C + j], s = rowsum > 0 ? v / rowsum : 0;
            char fill[8];
            if (i == j) mix(fill, sizeof fill, s, 0x21, 0x66, 0xac);
            else mix(fill, sizeof fill, s > 0 ? 0.12 + 0.88 * s : 0, 0xd6, 0x60, 0x4d);
            double x = ml + j * cell, y = mt + i * cell;
            vz_fmt(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" stroke=\"#e0e0e0\" "
                      "stroke-width=\"0.5\"><title>true %d, predicted %d: %.0f (%.1f%% of class %d)</title></rect>",
                   x, y, cell, cell, fill, i, j, v, 100 * s, i);
            if (cell >= 14)
                vz_fmt(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%.1f\" fill=\"%s\">%.0f</text>",
                       x + cell / 2, y + cell / 2 + fs * 0.36, fs, v == 0 ? "#bbb" : s > 0.55 ? "#fff" : "#222", v);
        }
        vz_put(o, "\n");
    }
    vz_put(o, "<g font-size=\"11\" fill=\"#333\">");
    for (int i = 0; i < C; i++) {
        const char *nm = names && names[i] ? names[i] : (snprintf(label, sizeof label, "%d", i), label);
        vz_fmt(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", ml - 5, mt + i * cell + cell / 2 + 4);
        vz_xml_cut(o, nm, 16);
        vz_put(o, "</text>");
        double cx = ml + i * cell + cell / 2, cy = mt + gw + 12;
        if (names)
            vz_fmt(o, "<text transform=\"translate(%.1f %.1f) rotate(-45)\" text-anchor=\"end\">", cx + 4, cy - 4);
        else
            vz_fmt(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", cx, cy);
        vz_xml_cut(o, nm, 16);
        vz_put(o, "</text>");
    }
    vz_put(o, "</g>\n");
    vz_fmt(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#222\">predicted class</text>\n", ml + gw / 2,
           mt + gw + colh + 10);
    vz_fmt(o, "<text transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\" fill=\"#222\">true class</text>\n",
           13 + shift, mt + gw / 2);
    vz_put(o, "</svg>\n");
}

/* ---- image tiles --------------------------------------------------------- */

void vz_image_grid(vz_out *o, int n, int c, int h, int w, const unsigned char *px,
                   const char *const *caption1, const char *const *caption2, const int *bad)
{
    const int cols = 5;
    const double tw = W / cols, img = 64, th = img + 36;
    int rows = (n + cols - 1) / cols;
    svg_open(o, rows * th + 4, "test images with predicted and true labels");
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    unsigned char *tile = nb_alloc(per ? per : 1);
    if (!tile) {
        o->err = 1;
        vz_put(o, "</svg>\n");
        return;
    }
    double sw = w >= h ? img : img * w / h, sh = h >= w ? img : img * h / w;
    for (int i = 0; i < n; i++) {
        double x = (i % cols) * tw, y = (i / cols) * th + 2;
        const unsigned char *p = px + (size_t)i * per;
        if (c == 3) { /* planar CHW to interleaved RGB */
            for (size_t k = 0; k < (size_t)h * (size_t)w; k++)
                for (int ch = 0; ch < 3; ch++) tile[k * 3 + (size_t)ch] = p[(size_t)ch * (size_t)h * (size_t)w + k];
        } else {
            memcpy(tile, p, per);
        }
        double ix = x + (tw - sw) / 2, iy = y + (img - sh) / 2;
        vz_fmt(o, "<image x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" style=\"image-rendering:pixelated\" "
                  "preserveAspectRatio=\"none\" href=\"", ix, iy, sw, sh);
        vz_png_uri(o, w, h, c == 3 ? 3 : 1, tile);
        vz_put(o, "\"/>");
        vz_fmt(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"/>",
               ix - 1, iy - 1, sw + 2, sh + 2, bad && bad[i] ? "#d62728" : "#bbb", bad && bad[i] ? "2" : "1");
        vz_fmt(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" fill=\"%s\"%s>", x + tw / 2, y + img + 14,
               bad && bad[i] ? "#c62828" : "#2e7d32", bad && bad[i] ? " font-weight=\"bold\"" : "");
        vz_xml_cut(o, caption1 ? caption1[i] : "", 16);
        vz_fmt(o, "</text><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\" fill=\"#666\">", x + tw / 2,
               y + img + 27);
        vz_xml_cut(o, caption2 ? caption2[i] : "", 18);
        vz_put(o, "</text>\n");
    }
    nb_free(tile);
    vz_put(o, "</svg>\n");
}

/* ---- decision boundary --------------------------------------------------- */

void vz_boundary(vz_out *o, int gw, int gh, const int *grid, const double range[4], size_t npoints,
                 const float *xy, const int *labels, int classes, const char *const *names)
{
    axis ax, ay;
    axis_make(&ax, range[0], range[1], 7, 0, 0, 0);
    axis_make(&ay, range[2], range[3], 7, 0, 0, 0);
    const double ml = left_margin(&ay), mr = 14, mt = 10, pw = W - ml - mr, ph = 340;
    const char *lnames[16];
    char lbuf[16][24];
    int colors[16];
    int nl = classes < 16 ? classes : 16;
    for (int i = 0; i < nl; i++) {
        snprintf(lbuf[i], sizeof lbuf[i], "class %d", i);
        lnames[i] = names && names[i] ? names[i] : lbuf[i];
        colors[i] = i;
    }
    int rows = legend(o, 0, ml, 0, pw, nl, lnames, colors, NULL, 1);
    svg_open(o, mt + ph + 40 + rows * 18 + 4, "decision boundary");
    draw_axes(o, &ax, &ay, ml, mt, pw, ph, "x\xE2\x82\x81", "x\xE2\x82\x82"); /* x1, x2 */
    /* regions: one rectangle per run of equal class in a grid row */
    double cw = pw / gw, ch = ph / gh;
    vz_put(o, "<g fill-opacity=\"0.3\" shape-rendering=\"crispEdges\">");
    for (int r = 0; r < gh; r++) {
        const int *row = grid + (size_t)r * (size_t)gw;
        for (int i = 0; i < gw;) {
            int j = i;
            while (j < gw && row[j] == row[i]) j++;
            if (row[i] >= 0)
                vz_fmt(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>", ml + i * cw,
                       mt + ph - (r + 1) * ch, (j - i) * cw + 0.05, ch + 0.05, vz_color(row[i]));
            i = j;
        }
    }
    vz_put(o, "</g>\n");
    vz_put(o, "<g stroke=\"#222\" stroke-width=\"0.6\">");
    for (size_t i = 0; i < npoints; i++) {
        double tx = axis_t(&ax, xy[2 * i]), ty = axis_t(&ay, xy[2 * i + 1]);
        if (!(tx >= 0 && tx <= 1 && ty >= 0 && ty <= 1)) continue;
        vz_fmt(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.8\" fill=\"%s\"/>", ml + tx * pw, mt + ph - ty * ph,
               vz_color(labels ? labels[i] : 0));
        if (i % 16 == 15) vz_put(o, "\n");
    }
    vz_put(o, "</g>\n");
    legend(o, 1, ml, mt + ph + 56, pw, nl, lnames, colors, NULL, 1);
    vz_put(o, "</svg>\n");
}
