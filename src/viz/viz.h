/*
 * viz.h - what the visualisations share (src/viz/): a checked writer to a
 * caller's FILE*, text escaping for XML and DOT, a PNG encoder for image
 * tiles, and the SVG charts the training report is drawn with. Not
 * installed.
 *
 * The library never prints: everything here writes only to the FILE* it is
 * given, formats with vsnprintf into a buffer and hands the bytes to fwrite,
 * and remembers the first write error so a caller checks once at the end.
 */
#ifndef NB_VIZ_H
#define NB_VIZ_H

#include "../core/internal.h"

#include <stdio.h>

/* ---- output (vz_out.c) -------------------------------------------------- */

typedef struct vz_out {
    FILE *f;
    int err;       /* a write failed (or memory ran out formatting) */
} vz_out;

void vz_put(vz_out *o, const char *s);                  /* raw bytes */
void vz_putn(vz_out *o, const char *s, size_t n);
void vz_fmt(vz_out *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Text for XML/HTML content or a quoted attribute: & < > " ' escaped,
 * control characters and bytes that are not valid UTF-8 (or not XML
 * characters) replaced by U+FFFD. NULL writes nothing. */
void vz_xml(vz_out *o, const char *s);
/* The same, at most max_chars characters (an ellipsis marks a cut). */
void vz_xml_cut(vz_out *o, const char *s, int max_chars);
/* Text inside a double-quoted DOT string: " and \ escaped, newlines as the
 * DOT line break, other control characters and invalid UTF-8 as '?'. */
void vz_dot(vz_out *o, const char *s);
/* Flushes and reports: NB_OK, or NB_ERR_IO "<what>: write error". */
nb_status vz_finish(vz_out *o, const char *what);

/* Length of the valid UTF-8 sequence that encodes an XML character at s
 * (1-4), or 0 when the bytes there are not one. */
size_t vz_utf8_char(const unsigned char *s, unsigned *codepoint);

/* "data:image/png;base64,..." for a w x h image of 8-bit samples:
 * channels 1 (grey) or 3 (RGB, interleaved). Uncompressed deflate: the tiles
 * are small and the library needs no zlib for them. */
void vz_png_uri(vz_out *o, int w, int h, int channels, const unsigned char *px);

/* ---- SVG charts (svg.c) ------------------------------------------------ */

/* Colour i of a palette for categories (classes, series), "#rrggbb". */
const char *vz_color(int i);

typedef struct vz_series {
    const char *name;
    const double *x, *y;   /* n points; a non-finite y breaks the line */
    size_t n;
    int color;             /* index into vz_color */
    int dashed;
} vz_series;

typedef struct vz_chart {
    const char *title;     /* the SVG's <title> (accessibility) */
    const char *xlabel, *ylabel;
    int logy;              /* logarithmic y axis (values <= 0 are skipped) */
    int integer_x;         /* x ticks on whole numbers (epochs) */
    double ymin, ymax;     /* fixed y range when ymin < ymax, else from the data */
    int from_zero;         /* a range from the data starts at 0 (when the data is positive) */
    int nseries;
    const vz_series *series;
} vz_chart;

/* A line chart with axes, ticks, grid lines, axis labels and a legend
 * (below the plot); markers on every point when a series is short. */
void vz_line_chart(vz_out *o, const vz_chart *c);

/* A confusion matrix as a heatmap: counts [rows][cols] (rows: true class,
 * columns: predicted), each cell shaded by its share of its row (blue on the
 * diagonal, red elsewhere) with the count written in it. names: class names
 * (NULL: indices). */
void vz_confusion(vz_out *o, int classes, const double *counts, const char *const *names);

/* A grid of image tiles with two caption lines each: images n x [c, h, w]
 * (c 1 or 3) as bytes 0..255; bad[i] colours the first caption red. */
void vz_image_grid(vz_out *o, int n, int c, int h, int w, const unsigned char *px,
                   const char *const *caption1, const char *const *caption2, const int *bad);

/* A decision boundary: grid gw x gh of class indices (row 0 at y0, the
 * bottom) over [x0, x1] x [y0, y1], drawn as tinted regions, then the points
 * (x, y pairs) coloured by their label, with axes and a class legend. */
void vz_boundary(vz_out *o, int gw, int gh, const int *grid, const double range[4], size_t npoints,
                 const float *xy, const int *labels, int classes, const char *const *names);

#endif /* NB_VIZ_H */
