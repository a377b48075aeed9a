/*
 * reply.c -- RESP2 writer and FalkorDB result-set encodings (see reply.h).
 *
 * Every writer appends to a reply_buf that grows by doubling up to its cap.
 * Past the cap writes are dropped and the overflow flag set; the caller
 * swaps the half-written reply for an error (reply_fix_overflow), so a
 * client never receives a truncated, unparseable reply and the server never
 * holds more than the cap for one reply.
 *
 * Formats are FalkorDB's, taken from its documentation ("Result Set
 * Structure", "Client Specification") and its formatter sources
 * (resultset_replyverbose.c, resultset_replycompact.c, SIValue_ToString);
 * see reply.h for the shapes.
 */
#include "reply.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/limits.h"
#include "../common/qassert.h"

void reply_buf_init(reply_buf *b, size_t size_max_bytes) {
    memset(b, 0, sizeof(*b));
    b->size_max_bytes = size_max_bytes ? size_max_bytes : (size_t)QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES;
}

void reply_buf_free(reply_buf *b) {
    free(b->data);
    size_t m = b->size_max_bytes;
    memset(b, 0, sizeof(*b));
    b->size_max_bytes = m;
}

void reply_buf_clear(reply_buf *b) {
    b->len = 0;
    b->overflow = false;
}

static bool reserve(reply_buf *b, size_t more) {
    if (b->overflow) return false;
    if (more > b->size_max_bytes - b->len) {
        b->overflow = true;
        return false;
    }
    size_t need = b->len + more;
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    if (cap > b->size_max_bytes) cap = b->size_max_bytes;
    char *d = realloc(b->data, cap);
    if (d == NULL) QUIVER_FATAL("out of memory (%zu bytes) building a reply", cap);
    b->data = d;
    b->cap = cap;
    return true;
}

bool reply_raw(reply_buf *b, const void *p, size_t len) {
    if (len == 0) return !b->overflow;
    if (!reserve(b, len)) return false;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return true;
}

static void raw_cstr(reply_buf *b, const char *s) { reply_raw(b, s, strlen(s)); }

/* Append "<prefix><v>\r\n" without printf. */
static void prefixed_int(reply_buf *b, char prefix, int64_t v) {
    char tmp[32];
    char *end = tmp + sizeof(tmp);
    char *p = end;
    *--p = '\n';
    *--p = '\r';
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) *--p = '-';
    *--p = prefix;
    reply_raw(b, p, (size_t)(end - p));
}

void reply_simple(reply_buf *b, const char *s) {
    reply_raw(b, "+", 1);
    raw_cstr(b, s);
    reply_raw(b, "\r\n", 2);
}

void reply_error(reply_buf *b, const char *msg) {
    size_t n = strlen(msg);
    if (!reserve(b, n + 3)) return;
    b->data[b->len++] = '-';
    for (size_t i = 0; i < n; i++) {
        char c = msg[i];
        b->data[b->len++] = (c == '\r' || c == '\n') ? ' ' : c;
    }
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
}

void reply_errorf(reply_buf *b, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_error(b, msg);
}

void reply_int(reply_buf *b, int64_t v) { prefixed_int(b, ':', v); }

void reply_bulk(reply_buf *b, const void *p, size_t len) {
    prefixed_int(b, '$', (int64_t)len);
    reply_raw(b, p, len);
    reply_raw(b, "\r\n", 2);
}

void reply_bulk_cstr(reply_buf *b, const char *s) { reply_bulk(b, s, strlen(s)); }

void reply_bulkf(reply_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof(tmp)) n = (int)sizeof(tmp) - 1;
    reply_bulk(b, tmp, (size_t)n);
}

void reply_null(reply_buf *b) { reply_raw(b, "$-1\r\n", 5); }

void reply_array(reply_buf *b, uint64_t count) { prefixed_int(b, '*', (int64_t)count); }

void reply_double(reply_buf *b, double d) { reply_bulkf(b, "%.15g", d); }

reply_value_type reply_value_type_of(qv_value v) {
    switch ((qv_type)v.type) {
    case QV_NULL: return REPLY_VALUE_NULL;
    case QV_STRING: return REPLY_VALUE_STRING;
    case QV_INT: return REPLY_VALUE_INTEGER;
    case QV_BOOL: return REPLY_VALUE_BOOLEAN;
    case QV_DOUBLE: return REPLY_VALUE_DOUBLE;
    case QV_LIST: return REPLY_VALUE_ARRAY;
    case QV_EDGE: return REPLY_VALUE_EDGE;
    case QV_NODE: return REPLY_VALUE_NODE;
    case QV_PATH: return REPLY_VALUE_PATH;
    case QV_MAP: return REPLY_VALUE_MAP;
    }
    return REPLY_VALUE_UNKNOWN;
}

/* ---- text form (verbose lists, maps, paths) ---- */

static void text_printf(reply_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(reply_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof(tmp)) n = (int)sizeof(tmp) - 1; /* "%f" of 1e300 fits in 512 */
    reply_raw(b, tmp, (size_t)n);
}

static void text_value(reply_buf *b, qv_value v, uint32_t depth) {
    if (depth > QUIVER_VALUE_DEPTH_MAX + 2) { /* values are built bounded; never trust it blindly */
        raw_cstr(b, "...");
        return;
    }
    switch ((qv_type)v.type) {
    case QV_NULL: raw_cstr(b, "NULL"); return;
    case QV_BOOL: raw_cstr(b, v.u.b ? "true" : "false"); return;
    case QV_INT: text_printf(b, "%" PRId64, v.u.i); return;
    case QV_DOUBLE: text_printf(b, "%f", v.u.d); return;
    case QV_STRING: reply_raw(b, v.u.s.ptr, v.u.s.len); return;
    case QV_NODE: text_printf(b, "(%" PRIu64 ")", v.u.node->id); return;
    case QV_EDGE: text_printf(b, "[%" PRIu64 "]", v.u.edge->id); return;
    case QV_LIST:
        reply_raw(b, "[", 1);
        for (uint32_t i = 0; i < v.u.list->count; i++) {
            if (i) reply_raw(b, ", ", 2);
            text_value(b, v.u.list->items[i], depth + 1);
        }
        reply_raw(b, "]", 1);
        return;
    case QV_MAP:
        reply_raw(b, "{", 1);
        for (uint32_t i = 0; i < v.u.map->count; i++) {
            if (i) reply_raw(b, ", ", 2);
            reply_raw(b, v.u.map->keys[i].ptr, v.u.map->keys[i].len);
            reply_raw(b, ": ", 2);
            text_value(b, v.u.map->values[i], depth + 1);
        }
        reply_raw(b, "}", 1);
        return;
    case QV_PATH: {
        /* FalkorDB prints a path as the list of its elements, alternating. */
        const qv_path *p = v.u.path;
        reply_raw(b, "[", 1);
        for (uint32_t i = 0; i < p->node_count; i++) {
            if (i) {
                text_printf(b, ", [%" PRIu64 "], ", p->edges[i - 1]->id);
            }
            text_printf(b, "(%" PRIu64 ")", p->nodes[i]->id);
        }
        reply_raw(b, "]", 1);
        return;
    }
    }
    raw_cstr(b, "?");
}

void reply_value_text(reply_buf *b, qv_value v) { text_value(b, v, 0); }

static void bulk_text(reply_buf *b, qv_value v) {
    /* Build the text in a side buffer to learn its length for the header. */
    reply_buf t;
    reply_buf_init(&t, b->size_max_bytes);
    text_value(&t, v, 0);
    if (t.overflow) {
        b->overflow = true;
    } else {
        reply_bulk(b, t.data ? t.data : "", t.len);
    }
    reply_buf_free(&t);
}

/* ---- verbose ---- */

static void verbose_props(reply_buf *b, const qv_props *props) {
    reply_array(b, props->count);
    for (uint32_t i = 0; i < props->count; i++) {
        reply_array(b, 2);
        if (props->keys != NULL)
            reply_bulk(b, props->keys[i].ptr, props->keys[i].len);
        else
            reply_bulkf(b, "%" PRIu32, props->key_ids[i]);
        reply_value_verbose(b, props->values[i]);
    }
}

static void verbose_node(reply_buf *b, const qv_node *n) {
    reply_array(b, 3);
    reply_array(b, 2);
    reply_bulk(b, "id", 2);
    reply_int(b, (int64_t)n->id);
    reply_array(b, 2);
    reply_bulk(b, "labels", 6);
    uint32_t lc = n->loaded ? n->label_count : 0;
    reply_array(b, lc);
    for (uint32_t i = 0; i < lc; i++) {
        if (n->label_names != NULL)
            reply_bulk(b, n->label_names[i].ptr, n->label_names[i].len);
        else
            reply_bulkf(b, "%" PRIu32, n->label_ids[i]);
    }
    reply_array(b, 2);
    reply_bulk(b, "properties", 10);
    qv_props empty = {0};
    verbose_props(b, n->loaded ? &n->props : &empty);
}

static void verbose_edge(reply_buf *b, const qv_edge *e) {
    reply_array(b, 5);
    reply_array(b, 2);
    reply_bulk(b, "id", 2);
    reply_int(b, (int64_t)e->id);
    reply_array(b, 2);
    reply_bulk(b, "type", 4);
    if (e->loaded && e->type_name.ptr != NULL)
        reply_bulk(b, e->type_name.ptr, e->type_name.len);
    else
        reply_bulkf(b, "%" PRIu32, e->type_id);
    reply_array(b, 2);
    reply_bulk(b, "src_node", 8);
    reply_int(b, (int64_t)e->src_id);
    reply_array(b, 2);
    reply_bulk(b, "dest_node", 9);
    reply_int(b, (int64_t)e->dst_id);
    reply_array(b, 2);
    reply_bulk(b, "properties", 10);
    qv_props empty = {0};
    verbose_props(b, e->loaded ? &e->props : &empty);
}

void reply_value_verbose(reply_buf *b, qv_value v) {
    switch ((qv_type)v.type) {
    case QV_NULL: reply_null(b); return;
    case QV_BOOL: v.u.b ? reply_bulk(b, "true", 4) : reply_bulk(b, "false", 5); return;
    case QV_INT: reply_int(b, v.u.i); return;
    case QV_DOUBLE: reply_double(b, v.u.d); return;
    case QV_STRING: reply_bulk(b, v.u.s.ptr, v.u.s.len); return;
    case QV_NODE: verbose_node(b, v.u.node); return;
    case QV_EDGE: verbose_edge(b, v.u.edge); return;
    case QV_LIST:
    case QV_MAP:
    case QV_PATH: bulk_text(b, v); return;
    }
    reply_null(b);
}

/* ---- compact ---- */

static void compact_inner(reply_buf *b, qv_value v, uint32_t depth);

/* A [type, value] pair. */
static void compact_pair(reply_buf *b, qv_value v, uint32_t depth) {
    reply_array(b, 2);
    compact_inner(b, v, depth);
}

static void compact_props(reply_buf *b, const qv_props *props, uint32_t depth) {
    reply_array(b, props->count);
    for (uint32_t i = 0; i < props->count; i++) {
        reply_array(b, 3); /* key id, type, value */
        reply_int(b, props->key_ids[i]);
        compact_inner(b, props->values[i], depth + 1);
    }
}

static void compact_node(reply_buf *b, const qv_node *n, uint32_t depth) {
    reply_array(b, 3);
    reply_int(b, (int64_t)n->id);
    uint32_t lc = n->loaded ? n->label_count : 0;
    reply_array(b, lc);
    for (uint32_t i = 0; i < lc; i++) reply_int(b, n->label_ids[i]);
    qv_props empty = {0};
    compact_props(b, n->loaded ? &n->props : &empty, depth);
}

static void compact_edge(reply_buf *b, const qv_edge *e, uint32_t depth) {
    reply_array(b, 5);
    reply_int(b, (int64_t)e->id);
    reply_int(b, e->type_id);
    reply_int(b, (int64_t)e->src_id);
    reply_int(b, (int64_t)e->dst_id);
    qv_props empty = {0};
    compact_props(b, e->loaded ? &e->props : &empty, depth);
}

/* Emits the type code then the value (two elements; the caller opened the
 * surrounding array). */
static void compact_inner(reply_buf *b, qv_value v, uint32_t depth) {
    reply_int(b, reply_value_type_of(v));
    if (depth > QUIVER_VALUE_DEPTH_MAX + 2) {
        reply_null(b);
        return;
    }
    switch ((qv_type)v.type) {
    case QV_NULL: reply_null(b); return;
    case QV_BOOL: v.u.b ? reply_bulk(b, "true", 4) : reply_bulk(b, "false", 5); return;
    case QV_INT: reply_int(b, v.u.i); return;
    case QV_DOUBLE: reply_double(b, v.u.d); return;
    case QV_STRING: reply_bulk(b, v.u.s.ptr, v.u.s.len); return;
    case QV_NODE: compact_node(b, v.u.node, depth); return;
    case QV_EDGE: compact_edge(b, v.u.edge, depth); return;
    case QV_LIST:
        reply_array(b, v.u.list->count);
        for (uint32_t i = 0; i < v.u.list->count; i++) compact_pair(b, v.u.list->items[i], depth + 1);
        return;
    case QV_MAP:
        reply_array(b, (uint64_t)v.u.map->count * 2);
        for (uint32_t i = 0; i < v.u.map->count; i++) {
            reply_bulk(b, v.u.map->keys[i].ptr, v.u.map->keys[i].len);
            compact_pair(b, v.u.map->values[i], depth + 1);
        }
        return;
    case QV_PATH: {
        const qv_path *p = v.u.path;
        reply_array(b, 2);
        reply_array(b, 2);
        reply_int(b, REPLY_VALUE_ARRAY);
        reply_array(b, p->node_count);
        for (uint32_t i = 0; i < p->node_count; i++) {
            reply_array(b, 2);
            reply_int(b, REPLY_VALUE_NODE);
            compact_node(b, p->nodes[i], depth + 1);
        }
        uint32_t ec = p->node_count ? p->node_count - 1 : 0;
        reply_array(b, 2);
        reply_int(b, REPLY_VALUE_ARRAY);
        reply_array(b, ec);
        for (uint32_t i = 0; i < ec; i++) {
            reply_array(b, 2);
            reply_int(b, REPLY_VALUE_EDGE);
            compact_edge(b, p->edges[i], depth + 1);
        }
        return;
    }
    }
    reply_null(b);
}

void reply_value_compact(reply_buf *b, qv_value v) { compact_pair(b, v, 0); }

/* ---- statistics and whole result sets ---- */

void reply_statistics(reply_buf *b, const query_stats *s) { reply_statistics_with(b, s, NULL); }

void reply_lag_line(char *out, size_t out_size_bytes, uint64_t lag_entries) {
    QUIVER_ASSERT(out != NULL && out_size_bytes > 0);
    snprintf(out, out_size_bytes, "Replication lag: %" PRIu64 " entries", lag_entries);
}

void reply_statistics_with(reply_buf *b, const query_stats *s, const char *extra) {
    struct {
        const char *name;
        uint64_t n;
    } items[] = {
        {"Labels added", s->labels_added},
        {"Labels removed", s->labels_removed},
        {"Nodes created", s->nodes_created},
        {"Properties set", s->properties_set},
        {"Properties removed", s->properties_removed},
        {"Relationships created", s->relationships_created},
        {"Nodes deleted", s->nodes_deleted},
        {"Relationships deleted", s->relationships_deleted},
        {"Indices created", s->indices_created},
        {"Indices deleted", s->indices_deleted},
    };
    uint32_t count = extra != NULL ? 3 : 2;
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) count += items[i].n > 0;
    reply_array(b, count);
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        if (items[i].n > 0) reply_bulkf(b, "%s: %" PRIu64, items[i].name, items[i].n);
    }
    reply_bulk_cstr(b, "Cached execution: 0");
    reply_bulkf(b, "Query internal execution time: %.6f milliseconds", s->execution_time_ms);
    if (extra != NULL) reply_bulk_cstr(b, extra);
}

void reply_buf_shrink(reply_buf *b) {
    if (b->data == NULL || b->cap - b->len <= REPLY_BUF_SLACK_MAX_BYTES) return;
    if (b->len == 0) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
        return;
    }
    char *d = realloc(b->data, b->len);
    if (d == NULL) return; /* keeping the larger block is correct, only wasteful */
    b->data = d;
    b->cap = b->len;
}

bool reply_fix_overflow(reply_buf *b) {
    if (!b->overflow) return false;
    size_t cap = b->size_max_bytes;
    /* Give the memory of the half-built reply back at once: the error is
     * a few bytes, the buffer may be as large as the cap. */
    free(b->data);
    b->data = NULL;
    b->cap = 0;
    reply_buf_clear(b);
    /* The error itself must get through even under a tiny cap. */
    b->size_max_bytes = cap < 256 ? 256 : cap;
    reply_errorf(b, "ERR reply larger than %zu bytes (the reply buffer limit); add LIMIT or return less", cap);
    b->size_max_bytes = cap;
    return true;
}

static const char *result_error(const query_result *r) {
    return (r->error != NULL && r->error[0] != '\0') ? r->error : "ERR query failed";
}

void reply_query_result(reply_buf *b, const query_result *r, bool compact) {
    reply_query_result_with(b, r, compact, NULL);
}

void reply_query_result_with(reply_buf *b, const query_result *r, bool compact, const char *extra_statistic) {
    QUIVER_ASSERT(b != NULL && r != NULL);
    if (r->status != QUERY_OK) {
        reply_error(b, result_error(r));
        return;
    }
    QUIVER_ASSERT(r->column_count == 0 || r->columns != NULL);
    QUIVER_ASSERT(r->row_count == 0 || r->cells != NULL);
    if (r->column_count > 0) {
        reply_array(b, 3);
        reply_array(b, r->column_count);
        for (uint32_t c = 0; c < r->column_count; c++) {
            if (compact) {
                reply_array(b, 2);
                reply_int(b, 1); /* COLUMN_SCALAR, always (FalkorDB >= 2.1) */
            }
            reply_bulk(b, r->columns[c].ptr, r->columns[c].len);
        }
        reply_array(b, r->row_count);
        for (uint64_t row = 0; row < r->row_count && !b->overflow; row++) {
            reply_array(b, r->column_count);
            const qv_value *cells = r->cells + row * r->column_count;
            for (uint32_t c = 0; c < r->column_count; c++) {
                if (compact)
                    reply_value_compact(b, cells[c]);
                else
                    reply_value_verbose(b, cells[c]);
            }
        }
    } else {
        reply_array(b, 1);
    }
    reply_statistics_with(b, &r->stats, extra_statistic);
    reply_fix_overflow(b);
}

void reply_explain_result(reply_buf *b, const query_result *r) {
    QUIVER_ASSERT(b != NULL && r != NULL);
    if (r->status != QUERY_OK) {
        reply_error(b, result_error(r));
        return;
    }
    reply_array(b, r->column_count ? r->row_count : 0);
    for (uint64_t row = 0; r->column_count && row < r->row_count; row++) {
        qv_value v = r->cells[row * r->column_count];
        if (v.type == QV_STRING)
            reply_bulk(b, v.u.s.ptr, v.u.s.len);
        else
            bulk_text(b, v);
    }
    reply_fix_overflow(b);
}
