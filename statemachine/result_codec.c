/*
 * result_codec.c -- query_result <-> bytes (format in result_codec.h).
 *
 * The encoder walks the result once, writing into a growing buffer capped at
 * the caller's bound (bytes.h), so an enormous result fails with
 * SM_CODEC_LIMIT instead of exhausting memory.  The decoder is the trust
 * boundary for bytes read back from RocksDB or (later) received from a peer:
 * it verifies the checksum before believing any length, bounds every count
 * by the limits in limits.h AND by the bytes left (each value takes at least
 * one byte, so a count larger than the remaining input is a lie and is
 * refused before anything is allocated), and limits nesting depth so a
 * crafted buffer cannot overflow the stack.
 *
 * Results are allocated the way the query engine allocates them: the
 * query_result struct with calloc, everything it references in its own
 * arena, so query_result_free (query/) frees either kind.
 */
#include "result_codec.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../common/limits.h"
#include "../common/qassert.h"
#include "bytes.h"

#define SM_RESULT_COLUMNS_COUNT_MAX 65536u
#define SM_RESULT_ERROR_SIZE_MAX_BYTES (1024u * 1024)

/* ------------------------------------------------------------------ */
/* Encoding                                                            */
/* ------------------------------------------------------------------ */

static void put_double(sm_writer *w, double d) {
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    sm_put_u64(w, bits);
}

static void put_qstr(sm_writer *w, qv_str s) {
    sm_put_str(w, s.len ? s.ptr : "", s.len);
}

static int put_value(sm_writer *w, qv_value v, int depth);

static int put_props(sm_writer *w, const qv_props *p, int depth) {
    sm_put_u32(w, p->count);
    for (uint32_t i = 0; i < p->count; i++) {
        sm_put_u32(w, p->key_ids ? p->key_ids[i] : 0);
        put_qstr(w, p->keys ? p->keys[i] : (qv_str){NULL, 0});
        int rc = put_value(w, p->values[i], depth + 1);
        if (rc != SM_CODEC_OK) return rc;
    }
    return SM_CODEC_OK;
}

static int put_node(sm_writer *w, const qv_node *n, int depth) {
    if (n == NULL) return SM_CODEC_INVALID;
    sm_put_u64(w, n->id);
    sm_put_u8(w, n->loaded ? 1 : 0);
    if (!n->loaded) return SM_CODEC_OK;
    sm_put_u32(w, n->label_count);
    for (uint32_t i = 0; i < n->label_count; i++) {
        sm_put_u32(w, n->label_ids ? n->label_ids[i] : 0);
        put_qstr(w, n->label_names ? n->label_names[i] : (qv_str){NULL, 0});
    }
    return put_props(w, &n->props, depth);
}

static int put_edge(sm_writer *w, const qv_edge *e, int depth) {
    if (e == NULL) return SM_CODEC_INVALID;
    sm_put_u64(w, e->id);
    sm_put_u64(w, e->src_id);
    sm_put_u64(w, e->dst_id);
    sm_put_u32(w, e->type_id);
    sm_put_u8(w, e->loaded ? 1 : 0);
    if (!e->loaded) return SM_CODEC_OK;
    put_qstr(w, e->type_name);
    return put_props(w, &e->props, depth);
}

static int put_value(sm_writer *w, qv_value v, int depth) {
    if (depth > QUIVER_VALUE_DEPTH_MAX) return SM_CODEC_LIMIT;
    if (w->err) return SM_CODEC_OK; /* reported once at the end */
    sm_put_u8(w, v.type);
    switch ((qv_type)v.type) {
    case QV_NULL: return SM_CODEC_OK;
    case QV_BOOL: sm_put_u8(w, v.u.b ? 1 : 0); return SM_CODEC_OK;
    case QV_INT: sm_put_u64(w, (uint64_t)v.u.i); return SM_CODEC_OK;
    case QV_DOUBLE: put_double(w, v.u.d); return SM_CODEC_OK;
    case QV_STRING: put_qstr(w, v.u.s); return SM_CODEC_OK;
    case QV_LIST: {
        uint32_t n = v.u.list ? v.u.list->count : 0;
        sm_put_u32(w, n);
        for (uint32_t i = 0; i < n; i++) {
            int rc = put_value(w, v.u.list->items[i], depth + 1);
            if (rc != SM_CODEC_OK) return rc;
        }
        return SM_CODEC_OK;
    }
    case QV_MAP: {
        uint32_t n = v.u.map ? v.u.map->count : 0;
        sm_put_u32(w, n);
        for (uint32_t i = 0; i < n; i++) {
            put_qstr(w, v.u.map->keys[i]);
            int rc = put_value(w, v.u.map->values[i], depth + 1);
            if (rc != SM_CODEC_OK) return rc;
        }
        return SM_CODEC_OK;
    }
    case QV_NODE: return put_node(w, v.u.node, depth);
    case QV_EDGE: return put_edge(w, v.u.edge, depth);
    case QV_PATH: {
        const qv_path *p = v.u.path;
        if (p == NULL || p->node_count == 0) return SM_CODEC_INVALID;
        sm_put_u32(w, p->node_count);
        for (uint32_t i = 0; i < p->node_count; i++) {
            int rc = put_node(w, p->nodes[i], depth + 1);
            if (rc != SM_CODEC_OK) return rc;
        }
        for (uint32_t i = 0; i + 1 < p->node_count; i++) {
            int rc = put_edge(w, p->edges[i], depth + 1);
            if (rc != SM_CODEC_OK) return rc;
        }
        return SM_CODEC_OK;
    }
    }
    return SM_CODEC_INVALID;
}

int sm_result_encode(const query_result *r, size_t size_max_bytes, uint8_t **buf, size_t *len) {
    QUIVER_ASSERT(r != NULL && buf != NULL && len != NULL);
    if (size_max_bytes == 0) size_max_bytes = QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES;
    sm_writer w;
    sm_writer_init(&w, 256, size_max_bytes);
    sm_put_u8(&w, SM_RESULT_VERSION);
    sm_put_u8(&w, (uint8_t)r->status);
    sm_put_u8(&w, r->wrote ? 1 : 0);
    size_t err_len = (r->status != QUERY_OK && r->error) ? strlen(r->error) : 0;
    if (err_len > SM_RESULT_ERROR_SIZE_MAX_BYTES) err_len = SM_RESULT_ERROR_SIZE_MAX_BYTES;
    sm_put_str(&w, r->error ? r->error : "", (uint32_t)err_len);
    const query_stats *s = &r->stats;
    uint64_t counters[10] = {s->labels_added, s->labels_removed, s->nodes_created, s->nodes_deleted,
                             s->properties_set, s->properties_removed, s->relationships_created,
                             s->relationships_deleted, s->indices_created, s->indices_deleted};
    for (int i = 0; i < 10; i++) sm_put_u64(&w, counters[i]);
    put_double(&w, s->execution_time_ms);
    int rc = SM_CODEC_OK;
    if (r->column_count > SM_RESULT_COLUMNS_COUNT_MAX || r->row_count > QUIVER_QUERY_RESULT_ROWS_COUNT_MAX)
        rc = SM_CODEC_LIMIT;
    if (rc == SM_CODEC_OK) {
        sm_put_u32(&w, r->column_count);
        for (uint32_t c = 0; c < r->column_count; c++) put_qstr(&w, r->columns[c]);
        sm_put_u64(&w, r->row_count);
        uint64_t cells = r->row_count * r->column_count;
        for (uint64_t i = 0; i < cells && rc == SM_CODEC_OK && w.err == 0; i++)
            rc = put_value(&w, r->cells[i], 1);
    }
    if (rc == SM_CODEC_OK && w.err == 0) sm_put_u64(&w, XXH3_64bits(w.buf, w.len));
    if (rc == SM_CODEC_OK && w.err != 0) rc = w.err == SM_BYTES_ERR_NOMEM ? SM_CODEC_NOMEM : SM_CODEC_LIMIT;
    if (rc != SM_CODEC_OK) {
        free(w.buf);
        return rc;
    }
    *buf = w.buf;
    *len = w.len;
    return SM_CODEC_OK;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */
/* ------------------------------------------------------------------ */

typedef struct dec {
    sm_reader r;
    q_arena *a;
    int rc; /* first error */
} dec;

static bool dec_fail(dec *d, int rc) {
    if (d->rc == SM_CODEC_OK) d->rc = rc;
    return false;
}

static bool dec_ok(dec *d) {
    if (d->r.err) return dec_fail(d, SM_CODEC_MALFORMED);
    return d->rc == SM_CODEC_OK;
}

/* A count that must fit the limit and the bytes left (each element takes at
 * least min_bytes). */
static bool dec_count(dec *d, uint64_t n, uint64_t limit, size_t min_bytes) {
    if (!dec_ok(d)) return false;
    if (n > limit) return dec_fail(d, SM_CODEC_LIMIT);
    if (n > d->r.left / min_bytes) return dec_fail(d, SM_CODEC_MALFORMED);
    return true;
}

static void *dec_alloc(dec *d, size_t count, size_t size) {
    void *p = q_arena_calloc(d->a, count, size);
    if (p == NULL) dec_fail(d, SM_CODEC_NOMEM);
    return p;
}

static bool dec_str(dec *d, uint32_t size_max, qv_str *out) {
    uint32_t n = sm_get_u32(&d->r);
    if (!dec_ok(d)) return false;
    if (n > size_max) return dec_fail(d, SM_CODEC_LIMIT);
    const uint8_t *p = sm_take(&d->r, n);
    if (!dec_ok(d)) return false;
    char *s = q_arena_strndup(d->a, (const char *)p, n);
    if (s == NULL) return dec_fail(d, SM_CODEC_NOMEM);
    out->ptr = s;
    out->len = n;
    return true;
}

static double dec_double(dec *d) {
    uint64_t bits = sm_get_u64(&d->r);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static bool dec_value(dec *d, qv_value *out, int depth);

static bool dec_props(dec *d, qv_props *p, int depth) {
    uint32_t n = sm_get_u32(&d->r);
    if (!dec_count(d, n, QUIVER_PROPERTIES_PER_ENTITY_COUNT_MAX, 4 + 4 + 1)) return false;
    p->count = n;
    p->key_ids = dec_alloc(d, n, sizeof *p->key_ids);
    p->keys = dec_alloc(d, n, sizeof *p->keys);
    p->values = dec_alloc(d, n, sizeof *p->values);
    if (!dec_ok(d)) return false;
    for (uint32_t i = 0; i < n; i++) {
        p->key_ids[i] = sm_get_u32(&d->r);
        if (!dec_str(d, QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES, &p->keys[i])) return false;
        if (!dec_value(d, &p->values[i], depth + 1)) return false;
    }
    return true;
}

static qv_node *dec_node(dec *d, int depth) {
    qv_node *n = dec_alloc(d, 1, sizeof *n);
    if (n == NULL) return NULL;
    n->id = sm_get_u64(&d->r);
    uint8_t loaded = sm_get_u8(&d->r);
    if (!dec_ok(d)) return NULL;
    if (loaded > 1) return dec_fail(d, SM_CODEC_MALFORMED), NULL;
    n->loaded = loaded == 1;
    if (!n->loaded) return n;
    uint32_t lc = sm_get_u32(&d->r);
    if (!dec_count(d, lc, QUIVER_LABELS_PER_NODE_COUNT_MAX, 4 + 4)) return NULL;
    n->label_count = lc;
    n->label_ids = dec_alloc(d, lc, sizeof *n->label_ids);
    n->label_names = dec_alloc(d, lc, sizeof *n->label_names);
    if (!dec_ok(d)) return NULL;
    for (uint32_t i = 0; i < lc; i++) {
        n->label_ids[i] = sm_get_u32(&d->r);
        if (!dec_str(d, QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES, &n->label_names[i])) return NULL;
    }
    if (!dec_props(d, &n->props, depth)) return NULL;
    return n;
}

static qv_edge *dec_edge(dec *d, int depth) {
    qv_edge *e = dec_alloc(d, 1, sizeof *e);
    if (e == NULL) return NULL;
    e->id = sm_get_u64(&d->r);
    e->src_id = sm_get_u64(&d->r);
    e->dst_id = sm_get_u64(&d->r);
    e->type_id = sm_get_u32(&d->r);
    uint8_t loaded = sm_get_u8(&d->r);
    if (!dec_ok(d)) return NULL;
    if (loaded > 1) return dec_fail(d, SM_CODEC_MALFORMED), NULL;
    e->loaded = loaded == 1;
    if (!e->loaded) return e;
    if (!dec_str(d, QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES, &e->type_name)) return NULL;
    if (!dec_props(d, &e->props, depth)) return NULL;
    return e;
}

static bool dec_value(dec *d, qv_value *out, int depth) {
    if (depth > QUIVER_VALUE_DEPTH_MAX) return dec_fail(d, SM_CODEC_LIMIT);
    uint8_t type = sm_get_u8(&d->r);
    if (!dec_ok(d)) return false;
    *out = qv_null();
    switch ((qv_type)type) {
    case QV_NULL: return true;
    case QV_BOOL: {
        uint8_t b = sm_get_u8(&d->r);
        if (!dec_ok(d)) return false;
        if (b > 1) return dec_fail(d, SM_CODEC_MALFORMED);
        *out = qv_bool(b == 1);
        return true;
    }
    case QV_INT: *out = qv_int((int64_t)sm_get_u64(&d->r)); return dec_ok(d);
    case QV_DOUBLE: *out = qv_double(dec_double(d)); return dec_ok(d);
    case QV_STRING: {
        qv_str s;
        if (!dec_str(d, QUIVER_STRING_SIZE_MAX_BYTES, &s)) return false;
        *out = qv_string(s.ptr, s.len);
        return true;
    }
    case QV_LIST: {
        uint32_t n = sm_get_u32(&d->r);
        if (!dec_count(d, n, QUIVER_LIST_COUNT_MAX, 1)) return false;
        qv_list *l = dec_alloc(d, 1, sizeof *l);
        qv_value *items = dec_alloc(d, n, sizeof *items);
        if (!dec_ok(d)) return false;
        l->count = n;
        l->items = items;
        for (uint32_t i = 0; i < n; i++)
            if (!dec_value(d, &items[i], depth + 1)) return false;
        out->type = QV_LIST;
        out->u.list = l;
        return true;
    }
    case QV_MAP: {
        uint32_t n = sm_get_u32(&d->r);
        if (!dec_count(d, n, QUIVER_LIST_COUNT_MAX, 4 + 1)) return false;
        qv_map *m = dec_alloc(d, 1, sizeof *m);
        qv_str *keys = dec_alloc(d, n, sizeof *keys);
        qv_value *values = dec_alloc(d, n, sizeof *values);
        if (!dec_ok(d)) return false;
        m->count = n;
        m->keys = keys;
        m->values = values;
        for (uint32_t i = 0; i < n; i++) {
            if (!dec_str(d, QUIVER_STRING_SIZE_MAX_BYTES, &keys[i])) return false;
            if (!dec_value(d, &values[i], depth + 1)) return false;
        }
        out->type = QV_MAP;
        out->u.map = m;
        return true;
    }
    case QV_NODE: {
        qv_node *n = dec_node(d, depth);
        if (n == NULL) return false;
        out->type = QV_NODE;
        out->u.node = n;
        return true;
    }
    case QV_EDGE: {
        qv_edge *e = dec_edge(d, depth);
        if (e == NULL) return false;
        out->type = QV_EDGE;
        out->u.edge = e;
        return true;
    }
    case QV_PATH: {
        uint32_t n = sm_get_u32(&d->r);
        /* a node takes at least 9 bytes, an edge 29 */
        if (!dec_count(d, n, QUIVER_LIST_COUNT_MAX, 9)) return false;
        if (n == 0) return dec_fail(d, SM_CODEC_MALFORMED);
        qv_path *p = dec_alloc(d, 1, sizeof *p);
        qv_node **nodes = dec_alloc(d, n, sizeof *nodes);
        qv_edge **edges = dec_alloc(d, n - 1, sizeof *edges);
        if (!dec_ok(d)) return false;
        p->node_count = n;
        p->nodes = nodes;
        p->edges = edges;
        for (uint32_t i = 0; i < n; i++)
            if ((nodes[i] = dec_node(d, depth + 1)) == NULL) return false;
        for (uint32_t i = 0; i + 1 < n; i++)
            if ((edges[i] = dec_edge(d, depth + 1)) == NULL) return false;
        out->type = QV_PATH;
        out->u.path = p;
        return true;
    }
    }
    return dec_fail(d, SM_CODEC_MALFORMED);
}

static query_result *result_new(void) {
    query_result *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    q_arena_init(&r->arena, QUIVER_QUERY_MEMORY_MAX_BYTES);
    return r;
}

static void result_discard(query_result *r) {
    q_arena_free(&r->arena);
    free(r);
}

int sm_result_decode(const void *buf, size_t len, query_result **out) {
    QUIVER_ASSERT(out != NULL);
    if (buf == NULL || len < 1 + 8) return SM_CODEC_MALFORMED;
    const uint8_t *bytes = buf;
    size_t body_len = len - 8;
    if (XXH3_64bits(bytes, body_len) != sm_load_u64(bytes + body_len)) return SM_CODEC_MALFORMED;
    if (bytes[0] != SM_RESULT_VERSION) return SM_CODEC_VERSION;

    query_result *r = result_new();
    if (r == NULL) return SM_CODEC_NOMEM;
    dec d;
    sm_reader_init(&d.r, bytes + 1, body_len - 1);
    d.a = &r->arena;
    d.rc = SM_CODEC_OK;

    uint8_t status = sm_get_u8(&d.r);
    uint8_t wrote = sm_get_u8(&d.r);
    if (dec_ok(&d) && (status > QUERY_ERR_NO_GRAPH || wrote > 1)) dec_fail(&d, SM_CODEC_MALFORMED);
    r->status = (query_status)status;
    r->wrote = wrote == 1;
    qv_str err = {NULL, 0};
    if (dec_ok(&d)) dec_str(&d, SM_RESULT_ERROR_SIZE_MAX_BYTES, &err);
    if (dec_ok(&d)) {
        if (r->status != QUERY_OK) r->error = (char *)err.ptr; /* NUL-terminated by strndup */
        else if (err.len != 0) dec_fail(&d, SM_CODEC_MALFORMED);
    }
    uint64_t c[10];
    for (int i = 0; i < 10; i++) c[i] = sm_get_u64(&d.r);
    r->stats.labels_added = c[0];
    r->stats.labels_removed = c[1];
    r->stats.nodes_created = c[2];
    r->stats.nodes_deleted = c[3];
    r->stats.properties_set = c[4];
    r->stats.properties_removed = c[5];
    r->stats.relationships_created = c[6];
    r->stats.relationships_deleted = c[7];
    r->stats.indices_created = c[8];
    r->stats.indices_deleted = c[9];
    r->stats.execution_time_ms = dec_double(&d);

    uint32_t cols = sm_get_u32(&d.r);
    if (dec_count(&d, cols, SM_RESULT_COLUMNS_COUNT_MAX, 4)) {
        r->column_count = cols;
        r->columns = dec_alloc(&d, cols, sizeof *r->columns);
        for (uint32_t i = 0; i < cols && dec_ok(&d); i++)
            dec_str(&d, QUIVER_STRING_SIZE_MAX_BYTES, &r->columns[i]);
    }
    uint64_t rows = sm_get_u64(&d.r);
    if (dec_ok(&d)) {
        if (rows > QUIVER_QUERY_RESULT_ROWS_COUNT_MAX) {
            dec_fail(&d, SM_CODEC_LIMIT);
        } else {
            uint64_t cells = rows * cols; /* < 2^26 * 2^16: no overflow */
            if (dec_count(&d, cells, UINT64_MAX, 1)) {
                r->row_count = rows;
                r->cells = dec_alloc(&d, (size_t)cells, sizeof *r->cells);
                for (uint64_t i = 0; i < cells && dec_ok(&d); i++) dec_value(&d, &r->cells[i], 1);
            }
        }
    }
    if (dec_ok(&d) && d.r.left != 0) dec_fail(&d, SM_CODEC_MALFORMED);
    if (!dec_ok(&d)) {
        int rc = d.rc;
        result_discard(r);
        return rc;
    }
    if (r->status != QUERY_OK && r->error == NULL) r->error = q_arena_strndup(&r->arena, "", 0);
    *out = r;
    return SM_CODEC_OK;
}

query_result *sm_result_error(query_status status, const char *message) {
    QUIVER_ASSERT(status != QUERY_OK && message != NULL);
    query_result *r = result_new();
    if (r == NULL) return NULL;
    r->status = status;
    r->error = q_arena_strndup(&r->arena, message, strlen(message));
    if (r->error == NULL) {
        result_discard(r);
        return NULL;
    }
    return r;
}

query_result *sm_result_empty(bool wrote) {
    query_result *r = result_new();
    if (r == NULL) return NULL;
    r->status = QUERY_OK;
    r->wrote = wrote;
    return r;
}
