/*
 * reply.c -- verbose GRAPH.QUERY reply to table (see reply.h).
 */
#include "reply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/qassert.h"

/* Append s[0..n) with control characters escaped. */
static void append_display(cli_buf *b, const char *s, size_t n) {
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7f) continue;
        cli_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '\n': cli_buf_append(b, "\\n", 2); break;
        case '\t': cli_buf_append(b, "\\t", 2); break;
        case '\r': cli_buf_append(b, "\\r", 2); break;
        default: cli_buf_printf(b, "\\x%02x", (unsigned)c); break;
        }
    }
    cli_buf_append(b, s + run, n - run);
}

static bool looks_scalar(const char *s, size_t n) {
    if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0)) return true;
    if (n == 0 || n > 64) return false;
    char tmp[65];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    (void)strtod(tmp, &end);
    return end == tmp + n && (tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9'));
}

/* The value of pair [key, value] whose key is name, in an array of pairs. */
static const redisReply *pair_get(const redisReply *v, const char *name) {
    for (size_t i = 0; i < v->elements; i++) {
        const redisReply *p = v->element[i];
        if (p->type == REDIS_REPLY_ARRAY && p->elements == 2 && p->element[0]->type == REDIS_REPLY_STRING &&
            strcmp(p->element[0]->str, name) == 0)
            return p->element[1];
    }
    return NULL;
}

static bool is_pair_list(const redisReply *v) {
    if (v->type != REDIS_REPLY_ARRAY || v->elements == 0) return false;
    for (size_t i = 0; i < v->elements; i++) {
        const redisReply *p = v->element[i];
        if (p->type != REDIS_REPLY_ARRAY || p->elements != 2 || p->element[0]->type != REDIS_REPLY_STRING)
            return false;
    }
    return true;
}

static void format_props(cli_buf *b, const redisReply *props, int depth) {
    if (props == NULL || props->type != REDIS_REPLY_ARRAY || props->elements == 0) return;
    cli_buf_append(b, " {", 2);
    for (size_t i = 0; i < props->elements; i++) {
        const redisReply *p = props->element[i];
        if (i) cli_buf_append(b, ", ", 2);
        if (p->type == REDIS_REPLY_ARRAY && p->elements >= 2 && p->element[0]->type == REDIS_REPLY_STRING) {
            append_display(b, p->element[0]->str, p->element[0]->len);
            cli_buf_append(b, ": ", 2);
            cli_format_value(b, p->element[1], true, depth + 1);
        } else {
            cli_format_value(b, p, true, depth + 1);
        }
    }
    cli_buf_putc(b, '}');
}

void cli_format_value(cli_buf *b, const redisReply *v, bool nested, int depth) {
    QUIVER_ASSERT(b != NULL && v != NULL);
    if (depth > CLI_REPLY_DEPTH_MAX) {
        cli_buf_append(b, "...", 3);
        return;
    }
    switch (v->type) {
    case REDIS_REPLY_NIL: cli_buf_append(b, "null", 4); return;
    case REDIS_REPLY_INTEGER: cli_buf_printf(b, "%lld", v->integer); return;
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        append_display(b, v->str, v->len);
        return;
    case REDIS_REPLY_STRING:
        if (nested && !looks_scalar(v->str, v->len)) {
            cli_buf_putc(b, '"');
            for (size_t i = 0; i < v->len; i++) {
                if (v->str[i] == '"' || v->str[i] == '\\') cli_buf_putc(b, '\\');
                append_display(b, v->str + i, 1);
            }
            cli_buf_putc(b, '"');
        } else {
            append_display(b, v->str, v->len);
        }
        return;
    case REDIS_REPLY_ARRAY: break;
    default: cli_buf_printf(b, "<reply type %d>", v->type); return;
    }
    if (is_pair_list(v)) {
        const redisReply *labels = pair_get(v, "labels");
        const redisReply *type = pair_get(v, "type");
        const redisReply *props = pair_get(v, "properties");
        if (labels != NULL && labels->type == REDIS_REPLY_ARRAY) {
            cli_buf_putc(b, '(');
            for (size_t i = 0; i < labels->elements; i++) {
                cli_buf_putc(b, ':');
                cli_format_value(b, labels->element[i], false, depth + 1);
            }
            format_props(b, props, depth);
            cli_buf_putc(b, ')');
            return;
        }
        if (type != NULL && pair_get(v, "src_node") != NULL) {
            cli_buf_append(b, "[:", 2);
            cli_format_value(b, type, false, depth + 1);
            format_props(b, props, depth);
            cli_buf_putc(b, ']');
            return;
        }
    }
    cli_buf_putc(b, '[');
    for (size_t i = 0; i < v->elements; i++) {
        if (i) cli_buf_append(b, ", ", 2);
        cli_format_value(b, v->element[i], true, depth + 1);
    }
    cli_buf_putc(b, ']');
}

static char *xstrndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p == NULL) QUIVER_FATAL("out of memory");
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void cli_result_free(cli_result *res) {
    if (res->has_table) cli_table_free(&res->table);
    for (size_t i = 0; i < res->stat_count; i++) free(res->stats[i]);
    free(res->stats);
    memset(res, 0, sizeof *res);
}

static int shape_error(char *err, size_t n, const char *what) {
    snprintf(err, n, "unexpected reply shape: %s", what);
    return -1;
}

int cli_result_from_reply(const redisReply *r, cli_result *out, char *err, size_t err_size_bytes) {
    QUIVER_ASSERT(r != NULL && out != NULL && err != NULL && err_size_bytes > 0);
    memset(out, 0, sizeof *out);
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, err_size_bytes, "%.*s", (int)r->len, r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY) return shape_error(err, err_size_bytes, "not an array");
    for (size_t i = 0; i < r->elements; i++) {
        /* FalkorDB reports some run-time errors as the last element. */
        if (r->element[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, err_size_bytes, "%.*s", (int)r->element[i]->len, r->element[i]->str);
            return -1;
        }
    }
    if (r->elements != 1 && r->elements != 3)
        return shape_error(err, err_size_bytes, "expected 1 or 3 elements");
    const redisReply *stats = r->element[r->elements - 1];
    if (stats->type != REDIS_REPLY_ARRAY) return shape_error(err, err_size_bytes, "statistics are not an array");
    for (size_t i = 0; i < stats->elements; i++)
        if (stats->element[i]->type != REDIS_REPLY_STRING && stats->element[i]->type != REDIS_REPLY_STATUS)
            return shape_error(err, err_size_bytes, "a statistics line is not a string");

    if (r->elements == 3) {
        const redisReply *header = r->element[0];
        const redisReply *rows = r->element[1];
        if (header->type != REDIS_REPLY_ARRAY || header->elements == 0 ||
            header->elements > CLI_TABLE_COLUMNS_COUNT_MAX)
            return shape_error(err, err_size_bytes, "bad header");
        if (rows->type != REDIS_REPLY_ARRAY) return shape_error(err, err_size_bytes, "rows are not an array");
        size_t cols = header->elements;
        char **names = calloc(cols, sizeof *names);
        if (names == NULL) QUIVER_FATAL("out of memory");
        for (size_t c = 0; c < cols; c++) {
            const redisReply *h = header->element[c];
            if (h->type == REDIS_REPLY_ARRAY && h->elements == 2) h = h->element[1]; /* compact [type, name] */
            if (h->type != REDIS_REPLY_STRING && h->type != REDIS_REPLY_STATUS) {
                for (size_t k = 0; k < c; k++) free(names[k]);
                free(names);
                return shape_error(err, err_size_bytes, "a column name is not a string");
            }
            cli_buf nb = CLI_BUF_INIT;
            append_display(&nb, h->str, h->len);
            names[c] = cli_buf_take(&nb);
        }
        cli_table_init(&out->table, cols, (const char *const *)names);
        out->has_table = true;
        for (size_t c = 0; c < cols; c++) free(names[c]);
        free(names);
        char **cells = calloc(cols, sizeof *cells);
        bool *right = calloc(cols, sizeof *right);
        if (cells == NULL || right == NULL) QUIVER_FATAL("out of memory");
        cli_buf cb = CLI_BUF_INIT;
        for (size_t i = 0; i < rows->elements; i++) {
            const redisReply *row = rows->element[i];
            if (row->type != REDIS_REPLY_ARRAY || row->elements != cols) {
                free(cells);
                free(right);
                cli_buf_free(&cb);
                cli_result_free(out);
                return shape_error(err, err_size_bytes, "a row does not match the header");
            }
            for (size_t c = 0; c < cols; c++) {
                cli_buf_clear(&cb);
                cli_format_value(&cb, row->element[c], false, 0);
                cells[c] = cli_buf_take(&cb);
                right[c] = row->element[c]->type == REDIS_REPLY_INTEGER;
            }
            cli_table_add_row(&out->table, (const char *const *)cells, right);
            for (size_t c = 0; c < cols; c++) free(cells[c]);
        }
        cli_buf_free(&cb);
        free(cells);
        free(right);
    }
    out->stat_count = stats->elements;
    out->stats = calloc(stats->elements ? stats->elements : 1, sizeof *out->stats);
    if (out->stats == NULL) QUIVER_FATAL("out of memory");
    for (size_t i = 0; i < stats->elements; i++)
        out->stats[i] = xstrndup(stats->element[i]->str, stats->element[i]->len);
    return 0;
}

void cli_result_render(const cli_result *res, cli_buf *out) {
    if (res->has_table) {
        cli_table_render(&res->table, out);
        cli_buf_printf(out, "%zu row%s\n", res->table.row_count, res->table.row_count == 1 ? "" : "s");
    }
    for (size_t i = 0; i < res->stat_count; i++) {
        append_display(out, res->stats[i], strlen(res->stats[i]));
        cli_buf_putc(out, '\n');
    }
}
