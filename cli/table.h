/*
 * table.h -- aligned text tables for query results, in the style of psql and
 * cypher-shell:
 *
 *   +-------+-----+
 *   | name  | age |
 *   +-------+-----+
 *   | Alice |  33 |
 *   +-------+-----+
 *
 * Widths are display columns, not bytes: UTF-8 is decoded, combining marks
 * count 0 and East Asian wide/fullwidth characters count 2 (the ranges of
 * Unicode's EastAsianWidth.txt W/F classes, coarsened to blocks: good
 * enough for alignment, without depending on the process locale as
 * wcwidth(3) does).  Control characters never reach a table: the value
 * formatter (reply.h) escapes them.  Cells may be right-aligned (numbers).
 *
 * Memory: the table owns copies of all text.  Thread: one thread.
 */
#ifndef QUIVER_CLI_TABLE_H
#define QUIVER_CLI_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define CLI_TABLE_COLUMNS_COUNT_MAX 4096

typedef struct cli_table {
    size_t column_count;
    char **headers;         /* column_count strings */
    size_t row_count;
    size_t row_capacity;
    char **cells;           /* row-major, row_count * column_count */
    bool *right_aligned;    /* per cell */
} cli_table;

/* Start a table with the given column names (copied).  column_count in
 * 1..CLI_TABLE_COLUMNS_COUNT_MAX. */
void cli_table_init(cli_table *t, size_t column_count, const char *const *headers);

/* Append a row of column_count cells (copied); right[i] aligns cell i right
 * (right may be NULL: all left). */
void cli_table_add_row(cli_table *t, const char *const *cells, const bool *right);

void cli_table_free(cli_table *t);

/* Append the rendered table (header, rows, borders, each line ending in
 * '\n') to out. */
void cli_table_render(const cli_table *t, cli_buf *out);

/* Display columns of the UTF-8 text s[0..n).  Invalid bytes count 1 each. */
size_t cli_display_width(const char *s, size_t n);

#endif
