/*
 * csv.c - numeric CSV files: one sample per row, one column of which is the
 * target.
 *
 * The file is read whole, then scanned twice: the first pass counts rows and
 * checks that every row has as many columns as the first (so the arrays are
 * allocated once, at their exact size, and a ragged row is reported before
 * any number is parsed); the second parses the cells. Messages name the file,
 * the line (1-based, counting blank lines and the header, as an editor shows
 * it) and the column (1-based).
 *
 * Accepted: \n or \r\n line ends, blank lines (skipped), a UTF-8 byte order
 * mark (spreadsheets write one), spaces or tabs
 * around cells, cells in double quotes (a delimiter inside quotes does not
 * split; a quoted cell does not span lines). Not accepted: empty cells, NaN
 * and infinities, hexadecimal numbers.
 */
#include "data.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Class indices must be exact in a float, and a typo like 1e9 must not ask
 * a model for a billion outputs. */
#define CSV_MAX_CLASSES (1 << 24)
/* The longest cell text quoted in a message. */
#define CSV_QUOTE_MAX 40

typedef struct span {
    const char *s, *e;
} span;

/* One line of the buffer: [s, e) without its "\n" or "\r\n". */
static int next_line(const char **p, const char *end, span *line)
{
    if (*p >= end) return 0;
    const char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    if (e > s && e[-1] == '\r') e--;
    line->s = s;
    line->e = e;
    return 1;
}

static int is_space(char c, char delim) { return (c == ' ' || c == '\t') && c != delim; }

static int is_blank(span l, char delim)
{
    for (const char *c = l.s; c < l.e; c++)
        if (!is_space(*c, delim) && *c != '\r') return 0;
    return 1;
}

/* Splits the next cell off *line at delim (outside double quotes), trims it,
 * and drops its quotes. Returns 1 if a delimiter followed (more cells). */
static int next_cell(span *line, char delim, span *cell)
{
    const char *c = line->s;
    int quoted = 0;
    while (c < line->e && (quoted || *c != delim)) {
        if (*c == '"') quoted = !quoted; /* "" inside quotes toggles twice */
        c++;
    }
    cell->s = line->s;
    cell->e = c;
    int more = c < line->e;
    line->s = more ? c + 1 : c;

    while (cell->s < cell->e && is_space(*cell->s, delim)) cell->s++;
    while (cell->e > cell->s && is_space(cell->e[-1], delim)) cell->e--;
    if (cell->e - cell->s >= 2 && *cell->s == '"' && cell->e[-1] == '"') {
        cell->s++;
        cell->e--;
        while (cell->s < cell->e && is_space(*cell->s, delim)) cell->s++;
        while (cell->e > cell->s && is_space(cell->e[-1], delim)) cell->e--;
    }
    return more;
}

static size_t count_cells(span line, char delim)
{
    size_t n = 1;
    span c;
    while (next_cell(&line, delim, &c)) n++;
    return n;
}

typedef enum num_kind { NUM_OK, NUM_EMPTY, NUM_BAD, NUM_NONFINITE, NUM_RANGE } num_kind;

/* Parses a whole cell as a decimal number. */
static num_kind parse_number(span c, double *out)
{
    size_t len = (size_t)(c.e - c.s);
    if (len == 0) return NUM_EMPTY;
    if (memchr(c.s, 'x', len) || memchr(c.s, 'X', len)) return NUM_BAD; /* no hex floats */
    /* strtod stops at the delimiter, quote or line end that closes the cell,
     * so it can parse in place; only a number filling the cell exactly
     * counts. */
    char *end;
    double v = strtod(c.s, &end);
    if (end != c.e) {
        /* A program that set a locale with a decimal comma makes strtod
         * stop at the '.': retry with the locale's own decimal point. */
        const char *dp = localeconv()->decimal_point;
        char buf[128];
        if (!dp || dp[0] == '.' || dp[0] == 0 || dp[1] != 0 || len >= sizeof buf ||
            !memchr(c.s, '.', len))
            return NUM_BAD;
        memcpy(buf, c.s, len);
        buf[len] = 0;
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '.') buf[i] = dp[0];
        v = strtod(buf, &end);
        if (end != buf + len) return NUM_BAD;
    }
    if (!isfinite(v)) return NUM_NONFINITE;
    if (fabs(v) > FLT_MAX) return NUM_RANGE; /* finite here, infinite once stored */
    *out = v;
    return NUM_OK;
}

/* Sets the message for a cell that is not a usable number. */
static nb_status cell_error(const char *path, size_t line, size_t col, span c, num_kind k,
                            const char *role)
{
    int n = (int)(c.e - c.s) > CSV_QUOTE_MAX ? CSV_QUOTE_MAX : (int)(c.e - c.s);
    const char *more = c.e - c.s > CSV_QUOTE_MAX ? "..." : "";
    if (k == NUM_EMPTY)
        return nb_set_error(NB_ERR_FORMAT, "%s:%zu: column %zu: empty cell%s", path, line, col, role);
    if (k == NUM_NONFINITE)
        return nb_set_error(NB_ERR_VALUE,
                            "%s:%zu: column %zu: '%.*s%s' is not a finite number (NaN and infinity "
                            "are not allowed)%s", path, line, col, n, c.s, more, role);
    if (k == NUM_RANGE)
        return nb_set_error(NB_ERR_VALUE, "%s:%zu: column %zu: '%.*s%s' is too large for a float%s",
                            path, line, col, n, c.s, more, role);
    return nb_set_error(NB_ERR_FORMAT, "%s:%zu: column %zu: '%.*s%s' is not a number%s", path, line,
                        col, n, c.s, more, role);
}

/* The first row is a header when one of its cells is text: not empty (a
 * missing value is data gone wrong, not a name) and not a number. */
static int looks_like_header(span line, char delim)
{
    span c;
    int more;
    do {
        more = next_cell(&line, delim, &c);
        double v;
        if (c.e > c.s && parse_number(c, &v) == NUM_BAD) return 1;
    } while (more);
    return 0;
}

/* Parses the data rows of [p, end) into d. label is the 0-based target
 * column, first the line number of the first row to parse. */
static nb_status parse_rows(const char *path, const char *p, const char *end, size_t first,
                            char delim, size_t label, int regression, nb_dataset *d)
{
    span line;
    size_t lineno = 0, row = 0, nf = d->sample_size;
    double max_label = 0;
    while (next_line(&p, end, &line)) {
        if (++lineno < first || is_blank(line, delim)) continue;
        float *x = d->x + row * nf;
        span c;
        size_t col = 0;
        int more;
        do {
            more = next_cell(&line, delim, &c);
            double v = 0;
            num_kind k = parse_number(c, &v);
            if (k != NUM_OK) return cell_error(path, lineno, col + 1, c, k, col == label ? " (the label)" : "");
            if (col == label) {
                if (!regression && !(v >= 0 && v < CSV_MAX_CLASSES && v == floor(v))) {
                    int n = (int)(c.e - c.s) > CSV_QUOTE_MAX ? CSV_QUOTE_MAX : (int)(c.e - c.s);
                    return nb_set_error(NB_ERR_VALUE,
                                        "%s:%zu: column %zu: label '%.*s' is not a class index (an "
                                        "integer from 0 to %d); for real-valued targets use regression",
                                        path, lineno, col + 1, n, c.s, CSV_MAX_CLASSES - 1);
                }
                if (v > max_label) max_label = v;
                d->y[row] = (float)v;
            } else {
                x[col < label ? col : col - 1] = (float)v;
            }
            col++;
        } while (more);
        row++;
    }
    if (!regression) d->classes = (int)max_label + 1;
    return NB_OK;
}

nb_dataset *nb_dataset_load_csv(const char *path, const nb_csv_opts *opts)
{
    nb_csv_opts o = {.header = -1, .label_column = -1, .regression = 0, .delimiter = ','};
    if (opts) o = *opts;
    char delim = o.delimiter ? o.delimiter : ',';
    if (!path) {
        nb_set_error(NB_ERR_ARG, "nb_dataset_load_csv: NULL path");
        return NULL;
    }
    if (o.header < -1 || o.header > 1) {
        nb_set_error(NB_ERR_ARG, "nb_dataset_load_csv: %s: header must be 1, 0 or -1 (detect), not %d",
                     path, o.header);
        return NULL;
    }
    if (strchr("0123456789.+-eE\"\r\n", delim)) {
        nb_set_error(NB_ERR_ARG, "nb_dataset_load_csv: %s: '%c' cannot be the delimiter", path, delim);
        return NULL;
    }

    unsigned char *buf;
    size_t len;
    if (nb_data_read_file(path, &buf, &len) != NB_OK) return NULL;
    const char *text = (const char *)buf, *end = text + len;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) text += 3; /* a UTF-8 byte order mark */

    /* pass 1: the first row fixes the column count; every row must match */
    span line;
    const char *p = text;
    size_t lineno = 0, rows = 0, cols = 0, first_line = 0;
    int header = 0;
    nb_status st = NB_OK;
    while (st == NB_OK && next_line(&p, end, &line)) {
        lineno++;
        if (is_blank(line, delim)) continue;
        size_t n = count_cells(line, delim);
        if (rows == 0) {
            cols = n;
            first_line = lineno;
            header = o.header == -1 ? looks_like_header(line, delim) : o.header;
        } else if (n != cols) {
            st = nb_set_error(NB_ERR_FORMAT, "%s:%zu: %zu columns, but line %zu has %zu", path, lineno,
                              n, first_line, cols);
        }
        rows++;
    }
    size_t n_data = rows - (rows > 0 && header);
    size_t label = 0;
    if (st == NB_OK && rows == 0)
        st = nb_set_error(NB_ERR_FORMAT, "%s: no rows (the file is blank)", path);
    else if (st == NB_OK && n_data == 0)
        st = nb_set_error(NB_ERR_FORMAT, "%s: a header but no data rows", path);
    else if (st == NB_OK && cols < 2)
        st = nb_set_error(NB_ERR_FORMAT,
                          "%s: one column: need at least one feature column and the label column "
                          "(is '%c' the delimiter?)", path, delim);
    else if (st == NB_OK) {
        long long lc = o.label_column < 0 ? (long long)cols + o.label_column : o.label_column;
        if (lc < 0 || lc >= (long long)cols)
            st = nb_set_error(NB_ERR_ARG, "nb_dataset_load_csv: label column %d is out of range: %s has %zu columns",
                              o.label_column, path, cols);
        label = (size_t)lc;
    }

    /* pass 2: the numbers */
    nb_dataset *d = NULL;
    if (st == NB_OK) {
        nb_shape s = {.ndim = 1, .d = {(int64_t)(cols - 1)}};
        d = nb_dataset_new(n_data, &s, 1, 0);
        if (!d) st = NB_ERR_NOMEM;
    }
    if (st == NB_OK)
        st = parse_rows(path, text, end, first_line + (size_t)header, delim, label, o.regression != 0, d);
    nb_free(buf);
    if (st != NB_OK) {
        nb_dataset_free(d);
        return NULL;
    }
    return d;
}
