/*
 * test_query_util.h -- helpers for the query engine's end-to-end unit
 * tests: a temporary RocksDB (under $QUIVER_TEST_TMP, else /tmp), write
 * statements run inside a transaction with a savepoint (rolled back on
 * error, like the state machine does), reads on a fresh snapshot, and a
 * compact text rendering of result sets so a test can compare a whole
 * result with one string ("a|b\n" per row).
 */
#ifndef QUIVER_TEST_QUERY_UTIL_H
#define QUIVER_TEST_QUERY_UTIL_H

#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/arena.h"
#include "common/value.h"
#include "query/query.h"
#include "storage/graph.h"

typedef struct tq {
    char dir[256];
    qs_db *db;
    uint64_t applied;
    uint64_t seed;
    int64_t timestamp_ms;
    const char *graph;
} tq;

static int tq_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static inline tq *tq_open(void) {
    tq *t = calloc(1, sizeof *t);
    assert_non_null(t);
    const char *base = getenv("QUIVER_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0755);
    snprintf(t->dir, sizeof t->dir, "%s/qq-test-XXXXXX", base);
    assert_non_null(mkdtemp(t->dir));
    qs_options o;
    memset(&o, 0, sizeof o);
    o.create_if_missing = true;
    o.block_cache_size_bytes = 8u << 20;
    char err[1024];
    int rc = qs_open(t->dir, &o, &t->db, err, sizeof err);
    if (rc != QS_OK) fprintf(stderr, "qs_open: %s\n", err);
    assert_int_equal(rc, QS_OK);
    t->seed = 42;
    t->timestamp_ms = 1700000000000;
    t->graph = "g";
    return t;
}

static inline void tq_close(tq *t) {
    qs_close(t->db);
    nftw(t->dir, tq_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
}

static inline query_request tq_req(tq *t, const char *q) {
    query_request r;
    memset(&r, 0, sizeof r);
    r.graph = t->graph;
    r.graph_len = strlen(t->graph);
    r.text = q;
    r.text_len = strlen(q);
    r.timestamp_ms = t->timestamp_ms;
    r.seed = t->seed;
    return r;
}

/* Run a statement as the apply thread does: savepoint, run, roll back on
 * error, commit the entry. */
static inline query_result *tq_write_req(tq *t, const query_request *req) {
    qs_txn *x = qs_txn_begin(t->db);
    qs_txn_savepoint(x);
    query_result *r = query_run_write(x, req);
    if (r->status != QUERY_OK) qs_txn_rollback_to_savepoint(x);
    else qs_txn_release_savepoint(x);
    qs_txn_commit(x, ++t->applied);
    return r;
}

static inline query_result *tq_write(tq *t, const char *q) {
    query_request req = tq_req(t, q);
    return tq_write_req(t, &req);
}

static inline query_result *tq_read_req(tq *t, const query_request *req) {
    qs_view *v = qs_view_open_snapshot(t->db);
    query_result *r = query_run_read(v, req);
    qs_view_close(v); /* the result must not need the view any more */
    return r;
}

static inline query_result *tq_read(tq *t, const char *q) {
    query_request req = tq_req(t, q);
    return tq_read_req(t, &req);
}

/* ---- rendering ---- */

typedef struct tq_buf {
    char *p;
    size_t len, cap;
} tq_buf;

static inline void tq_put(tq_buf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 256) + (size_t)n + 1;
        b->p = realloc(b->p, ncap);
        assert_non_null(b->p);
        b->cap = ncap;
        b->p[b->len] = '\0';
    }
}

static inline void tq_fmt(tq_buf *b, qv_value v);

static inline void tq_fmt_props(tq_buf *b, const qv_props *p) {
    if (p->count == 0) return;
    tq_put(b, " {");
    for (uint32_t i = 0; i < p->count; i++) {
        tq_put(b, "%s%.*s: ", i ? ", " : "", (int)p->keys[i].len, p->keys[i].ptr);
        tq_fmt(b, p->values[i]);
    }
    tq_put(b, "}");
}

static inline void tq_fmt_node(tq_buf *b, const qv_node *n) {
    tq_put(b, "(");
    for (uint32_t i = 0; i < n->label_count; i++) tq_put(b, ":%.*s", (int)n->label_names[i].len, n->label_names[i].ptr);
    tq_fmt_props(b, &n->props);
    tq_put(b, ")");
}

static inline void tq_fmt_edge(tq_buf *b, const qv_edge *e) {
    tq_put(b, "[:%.*s", (int)e->type_name.len, e->type_name.ptr);
    tq_fmt_props(b, &e->props);
    tq_put(b, "]");
}

static inline void tq_fmt(tq_buf *b, qv_value v) {
    switch ((qv_type)v.type) {
    case QV_NULL: tq_put(b, "null"); break;
    case QV_BOOL: tq_put(b, "%s", v.u.b ? "true" : "false"); break;
    case QV_INT: tq_put(b, "%" PRId64, v.u.i); break;
    case QV_DOUBLE: tq_put(b, "%g", v.u.d); break;
    case QV_STRING: tq_put(b, "%.*s", (int)v.u.s.len, v.u.s.ptr); break;
    case QV_LIST:
        tq_put(b, "[");
        for (uint32_t i = 0; i < v.u.list->count; i++) {
            if (i) tq_put(b, ", ");
            tq_fmt(b, v.u.list->items[i]);
        }
        tq_put(b, "]");
        break;
    case QV_MAP:
        tq_put(b, "{");
        for (uint32_t i = 0; i < v.u.map->count; i++) {
            tq_put(b, "%s%.*s: ", i ? ", " : "", (int)v.u.map->keys[i].len, v.u.map->keys[i].ptr);
            tq_fmt(b, v.u.map->values[i]);
        }
        tq_put(b, "}");
        break;
    case QV_NODE: tq_fmt_node(b, v.u.node); break;
    case QV_EDGE: tq_fmt_edge(b, v.u.edge); break;
    case QV_PATH:
        tq_put(b, "<");
        for (uint32_t i = 0; i < v.u.path->node_count; i++) {
            tq_fmt_node(b, v.u.path->nodes[i]);
            if (i + 1 < v.u.path->node_count) tq_fmt_edge(b, v.u.path->edges[i]);
        }
        tq_put(b, ">");
        break;
    }
}

/* Rows as "c1|c2\n"...; the caller frees.  An error renders as "ERR: msg". */
static inline char *tq_text(const query_result *r) {
    tq_buf b = {NULL, 0, 0};
    tq_put(&b, "%s", "");
    if (r->status != QUERY_OK) {
        tq_put(&b, "ERR: %s", r->error);
        return b.p;
    }
    for (uint64_t i = 0; i < r->row_count; i++) {
        for (uint32_t k = 0; k < r->column_count; k++) {
            if (k) tq_put(&b, "|");
            tq_fmt(&b, r->cells[i * r->column_count + k]);
        }
        tq_put(&b, "\n");
    }
    return b.p;
}

/* Run a read and compare the rendered rows. */
#define TQ_READ_EQ(t, q, expected)                                                                                     \
    do {                                                                                                               \
        query_result *r_ = tq_read((t), (q));                                                                          \
        char *s_ = tq_text(r_);                                                                                        \
        if (strcmp(s_, (expected)) != 0) fprintf(stderr, "query: %s\n got:\n%s\n expected:\n%s\n", (q), s_, (expected)); \
        assert_string_equal(s_, (expected));                                                                           \
        free(s_);                                                                                                      \
        query_result_free(r_);                                                                                         \
    } while (0)

#define TQ_WRITE_EQ(t, q, expected)                                                                                    \
    do {                                                                                                               \
        query_result *r_ = tq_write((t), (q));                                                                         \
        char *s_ = tq_text(r_);                                                                                        \
        if (strcmp(s_, (expected)) != 0) fprintf(stderr, "query: %s\n got:\n%s\n expected:\n%s\n", (q), s_, (expected)); \
        assert_string_equal(s_, (expected));                                                                           \
        free(s_);                                                                                                      \
        query_result_free(r_);                                                                                         \
    } while (0)

/* Run a write that must succeed; returns its stats. */
static inline query_stats tq_exec(tq *t, const char *q) {
    query_result *r = tq_write(t, q);
    if (r->status != QUERY_OK) fprintf(stderr, "query: %s\n error: %s\n", q, r->error);
    assert_int_equal(r->status, QUERY_OK);
    query_stats s = r->stats;
    query_result_free(r);
    return s;
}

/* Error text of a statement that must fail (read or write). */
static inline char *tq_error(tq *t, const char *q, bool write, query_status expect) {
    query_result *r = write ? tq_write(t, q) : tq_read(t, q);
    if (r->status != expect) fprintf(stderr, "query: %s\n status %d (expected %d) %s\n", q, r->status, expect, r->error ? r->error : "");
    assert_int_equal(r->status, expect);
    char *s = strdup(r->error);
    query_result_free(r);
    return s;
}

#endif
