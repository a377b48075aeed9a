/*
 * table.c -- aligned text tables (see table.h).
 */
#include "table.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/qassert.h"

static char *xstrdup(const char *s) {
    char *p = strdup(s ? s : "");
    if (p == NULL) QUIVER_FATAL("out of memory");
    return p;
}

void cli_table_init(cli_table *t, size_t column_count, const char *const *headers) {
    QUIVER_ASSERT(column_count >= 1 && column_count <= CLI_TABLE_COLUMNS_COUNT_MAX);
    memset(t, 0, sizeof *t);
    t->column_count = column_count;
    t->headers = calloc(column_count, sizeof *t->headers);
    if (t->headers == NULL) QUIVER_FATAL("out of memory");
    for (size_t i = 0; i < column_count; i++) t->headers[i] = xstrdup(headers[i]);
}

void cli_table_add_row(cli_table *t, const char *const *cells, const bool *right) {
    QUIVER_ASSERT(t->column_count > 0);
    if (t->row_count == t->row_capacity) {
        size_t cap = t->row_capacity ? t->row_capacity * 2 : 16;
        char **c = realloc(t->cells, cap * t->column_count * sizeof *c);
        bool *r = realloc(t->right_aligned, cap * t->column_count * sizeof *r);
        if (c == NULL || r == NULL) QUIVER_FATAL("out of memory growing a table");
        t->cells = c;
        t->right_aligned = r;
        t->row_capacity = cap;
    }
    size_t base = t->row_count * t->column_count;
    for (size_t i = 0; i < t->column_count; i++) {
        t->cells[base + i] = xstrdup(cells[i]);
        t->right_aligned[base + i] = right ? right[i] : false;
    }
    t->row_count++;
}

void cli_table_free(cli_table *t) {
    for (size_t i = 0; i < t->column_count && t->headers; i++) free(t->headers[i]);
    for (size_t i = 0; i < t->row_count * t->column_count; i++) free(t->cells[i]);
    free(t->headers);
    free(t->cells);
    free(t->right_aligned);
    memset(t, 0, sizeof *t);
}

static int cp_width(uint32_t cp) {
    if (cp == 0) return 0;
    /* Combining marks and zero-width characters. */
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
        (cp >= 0x1DC0 && cp <= 0x1DFF) || (cp >= 0x20D0 && cp <= 0x20FF) ||
        (cp >= 0xFE20 && cp <= 0xFE2F) || cp == 0x200B || cp == 0x200C || cp == 0x200D ||
        cp == 0xFEFF || (cp >= 0xFE00 && cp <= 0xFE0F))
        return 0;
    /* East Asian wide and fullwidth blocks. */
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
        (cp >= 0x3041 && cp <= 0x33FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
        (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
        (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
        (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD))
        return 2;
    return 1;
}

size_t cli_display_width(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t w = 0, i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        uint32_t cp;
        if (c < 0x80) { w += 1; i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) need = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) need = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) need = 3, cp = c & 0x07;
        else { w += 1; i++; continue; }
        if (n - i <= need) { w += 1; i++; continue; }
        bool ok = true;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) { ok = false; break; }
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (!ok) { w += 1; i++; continue; }
        w += (size_t)cp_width(cp);
        i += need + 1;
    }
    return w;
}

static void pad(cli_buf *out, size_t n) {
    for (size_t i = 0; i < n; i++) cli_buf_putc(out, ' ');
}

static void rule(cli_buf *out, const size_t *widths, size_t cols) {
    for (size_t c = 0; c < cols; c++) {
        cli_buf_putc(out, '+');
        for (size_t i = 0; i < widths[c] + 2; i++) cli_buf_putc(out, '-');
    }
    cli_buf_append(out, "+\n", 2);
}

static void line(cli_buf *out, const size_t *widths, size_t cols, char *const *cells, const bool *right) {
    for (size_t c = 0; c < cols; c++) {
        size_t len = strlen(cells[c]);
        size_t w = cli_display_width(cells[c], len);
        QUIVER_ASSERT(w <= widths[c]);
        cli_buf_append(out, "| ", 2);
        if (right && right[c]) pad(out, widths[c] - w);
        cli_buf_append(out, cells[c], len);
        if (!(right && right[c])) pad(out, widths[c] - w);
        cli_buf_putc(out, ' ');
    }
    cli_buf_append(out, "|\n", 2);
}

void cli_table_render(const cli_table *t, cli_buf *out) {
    QUIVER_ASSERT(t->column_count >= 1);
    size_t cols = t->column_count;
    size_t *widths = calloc(cols, sizeof *widths);
    if (widths == NULL) QUIVER_FATAL("out of memory");
    for (size_t c = 0; c < cols; c++) widths[c] = cli_display_width(t->headers[c], strlen(t->headers[c]));
    for (size_t r = 0; r < t->row_count; r++)
        for (size_t c = 0; c < cols; c++) {
            const char *s = t->cells[r * cols + c];
            size_t w = cli_display_width(s, strlen(s));
            if (w > widths[c]) widths[c] = w;
        }
    rule(out, widths, cols);
    line(out, widths, cols, t->headers, NULL);
    rule(out, widths, cols);
    for (size_t r = 0; r < t->row_count; r++)
        line(out, widths, cols, &t->cells[r * cols], &t->right_aligned[r * cols]);
    if (t->row_count > 0) rule(out, widths, cols);
    free(widths);
}
