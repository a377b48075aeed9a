/*
 * view.c -- read views: RocksDB snapshots for reader threads and the apply
 * thread's transaction seen through its own writes; point reads, counts,
 * schema lookups (from the in-memory catalog, never RocksDB) and iterators.
 *
 * A snapshot view holds a RocksDB snapshot, its read options and a
 * reference to the schema catalog current at the same instant (taken
 * together under db->mu, so the schema matches the data); views opened
 * between two commits share these (qs_snap in store.h).  Point reads use
 * pinned slices (no copy until decoding into the caller's arena).  Scans set
 * iterate_upper_bound to the end of the prefix so RocksDB stops at block
 * granularity instead of reading into the next graph or node; transaction
 * views go through WriteBatchWithIndex's base+delta iterator, whose delta
 * side ignores the bound, so every iterator also checks the bound itself.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/limits.h"
#include "store.h"

/* ---- low-level reads ---- */

const qs_catalog *qs_view_catalog(const qs_view *v) {
    if (v->txn) return v->txn->cat ? v->txn->cat : v->txn->base;
    return v->cat;
}

bool qs_view_get(qs_view *v, int cf, const uint8_t *key, size_t klen, qs_val *out) {
    memset(out, 0, sizeof *out);
    char *err = NULL;
    qs_db *db = v->db;
    if (v->txn) {
        size_t vlen = 0;
        char *p = rocksdb_writebatch_wi_get_from_batch_and_db_cf(v->txn->wb, db->rdb, db->ro_plain, db->cf[cf],
                                                                (const char *)key, klen, &vlen, &err);
        QS_CHECK("read (transaction)", err);
        if (!p) return false;
        out->mal = p;
        out->p = (const uint8_t *)p;
        out->len = vlen;
        return true;
    }
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(db->rdb, v->ro, db->cf[cf], (const char *)key, klen, &err);
    QS_CHECK("read (snapshot)", err);
    if (!ps) return false;
    out->pin = ps;
    out->p = (const uint8_t *)rocksdb_pinnableslice_value(ps, &out->len);
    return true;
}

void qs_val_done(qs_val *val) {
    if (val->pin) rocksdb_pinnableslice_destroy(val->pin);
    if (val->mal) rocksdb_free(val->mal);
    memset(val, 0, sizeof *val);
}

void qs_raw_open(qs_raw_iter *r, qs_view *v, int cf, const uint8_t *lo, size_t lo_len, const uint8_t *hi,
                 size_t hi_len) {
    memset(r, 0, sizeof *r);
    qs_db *db = v->db;
    r->ro = rocksdb_readoptions_create();
    if (v->snap) rocksdb_readoptions_set_snapshot(r->ro, v->snap);
    if (hi && hi_len) {
        uint8_t *dst = r->hi;
        if (hi_len > sizeof r->hi) {
            r->hi_heap = malloc(hi_len);
            if (!r->hi_heap) QUIVER_FATAL("out of memory");
            dst = r->hi_heap;
        }
        memcpy(dst, hi, hi_len);
        r->hi_len = hi_len;
        rocksdb_readoptions_set_iterate_upper_bound(r->ro, (const char *)dst, hi_len);
    }
    rocksdb_iterator_t *base = rocksdb_create_iterator_cf(db->rdb, r->ro, db->cf[cf]);
    if (v->txn) r->it = rocksdb_writebatch_wi_create_iterator_with_base_cf(v->txn->wb, base, db->cf[cf]);
    else r->it = base;
    rocksdb_iter_seek(r->it, (const char *)lo, lo_len);
}

bool qs_raw_next(qs_raw_iter *r, const uint8_t **key, size_t *klen, const uint8_t **val, size_t *vlen) {
    if (!r->it) return false;
    if (r->started) rocksdb_iter_next(r->it);
    r->started = true;
    if (!rocksdb_iter_valid(r->it)) {
        char *err = NULL;
        rocksdb_iter_get_error(r->it, &err);
        QS_CHECK("scan", err);
        return false;
    }
    size_t kl;
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(r->it, &kl);
    if (r->hi_len) {
        const uint8_t *hi = r->hi_heap ? r->hi_heap : r->hi;
        size_t m = kl < r->hi_len ? kl : r->hi_len;
        int c = memcmp(k, hi, m);
        if (c > 0 || (c == 0 && kl >= r->hi_len)) return false;
    }
    *key = k;
    *klen = kl;
    if (val) *val = (const uint8_t *)rocksdb_iter_value(r->it, vlen);
    return true;
}

void qs_raw_close(qs_raw_iter *r) {
    if (r->it) rocksdb_iter_destroy(r->it);
    if (r->ro) rocksdb_readoptions_destroy(r->ro);
    free(r->hi_heap);
    memset(r, 0, sizeof *r);
}

/* ---- views ---- */

void qs_snap_unref(qs_db *db, qs_snap *s) {
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    rocksdb_release_snapshot(db->rdb, s->snap);
    rocksdb_readoptions_destroy(s->ro);
    qs_catalog_unref(s->cat);
    free(s);
}

qs_snap *qs_snap_detach(qs_db *db) {
    qs_snap *s = db->shared;
    db->shared = NULL;
    return s;
}

qs_snap *qs_snap_current(qs_db *db) {
    qs_snap *s = db->shared;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) QUIVER_FATAL("out of memory");
        atomic_init(&s->refs, 1); /* the db's reference */
        s->snap = rocksdb_create_snapshot(db->rdb);
        s->ro = rocksdb_readoptions_create();
        rocksdb_readoptions_set_snapshot(s->ro, s->snap);
        s->cat = qs_catalog_ref(db->committed);
        s->applied = atomic_load(&db->applied);
        db->shared = s;
    }
    return s;
}

qs_view *qs_view_open_snapshot(qs_db *db) {
    QUIVER_ASSERT(db);
    qs_view *v = calloc(1, sizeof *v);
    if (!v) QUIVER_FATAL("out of memory");
    v->db = db;
    pthread_mutex_lock(&db->mu);
    qs_snap *s = qs_snap_current(db);
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&db->mu);
    v->sp = s;
    v->snap = s->snap;
    v->ro = s->ro;
    v->cat = s->cat;
    v->applied = s->applied;
    return v;
}

void qs_view_close(qs_view *v) {
    if (!v) return;
    QUIVER_ASSERT(v->txn == NULL); /* a transaction's view is closed with it */
    qs_snap_unref(v->db, v->sp);
    free(v);
}

uint64_t qs_view_applied_index(const qs_view *v) {
    return v->txn ? atomic_load(&v->db->applied) : v->applied;
}

/* ---- graphs and schema ---- */

int qs_graph_lookup(qs_view *v, const char *name, size_t len, uint32_t *graph_id) {
    const qs_gschema *g = qs_catalog_find_name(qs_view_catalog(v), name, len);
    if (!g) return QS_NOT_FOUND;
    *graph_id = g->graph_id;
    return QS_OK;
}

static int cmp_gname(const void *a, const void *b) {
    const qs_gschema *x = *(qs_gschema *const *)a, *y = *(qs_gschema *const *)b;
    size_t m = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, m);
    if (c) return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

int qs_graph_list(qs_view *v, q_arena *a, qv_str **names, uint32_t *count) {
    const qs_catalog *c = qs_view_catalog(v);
    *count = 0;
    *names = NULL;
    if (c->count == 0) return QS_OK;
    qs_gschema **tmp = malloc(c->count * sizeof *tmp);
    if (!tmp) QUIVER_FATAL("out of memory");
    memcpy(tmp, c->graphs, c->count * sizeof *tmp);
    qsort(tmp, c->count, sizeof *tmp, cmp_gname);
    qv_str *out = q_arena_alloc(a, c->count * sizeof *out);
    int rc = QS_OK;
    for (uint32_t i = 0; out && i < c->count; i++) {
        char *s = q_arena_strndup(a, tmp[i]->name, tmp[i]->name_len);
        if (!s) { rc = QS_NOMEM; break; }
        out[i].ptr = s;
        out[i].len = tmp[i]->name_len;
    }
    if (!out) rc = QS_NOMEM;
    free(tmp);
    if (rc != QS_OK) return rc;
    *names = out;
    *count = c->count;
    return QS_OK;
}

int qs_schema_id(qs_view *v, uint32_t graph, qs_schema_kind kind, const char *name, size_t len, uint32_t *id) {
    QUIVER_ASSERT(kind <= QS_SCHEMA_PROPKEY);
    const qs_gschema *g = qs_catalog_find(qs_view_catalog(v), graph);
    if (!g) return QS_NOT_FOUND;
    int64_t r = qs_gschema_lookup(g, kind, name, len);
    if (r < 0) return QS_NOT_FOUND;
    *id = (uint32_t)r;
    return QS_OK;
}

int qs_schema_name(qs_view *v, uint32_t graph, qs_schema_kind kind, uint32_t id, qv_str *name) {
    QUIVER_ASSERT(kind <= QS_SCHEMA_PROPKEY);
    const qs_gschema *g = qs_catalog_find(qs_view_catalog(v), graph);
    if (!g || id >= g->k[kind].count) return QS_NOT_FOUND;
    name->ptr = g->k[kind].names[id];
    name->len = g->k[kind].lens[id];
    return QS_OK;
}

uint32_t qs_schema_count(qs_view *v, uint32_t graph, qs_schema_kind kind) {
    QUIVER_ASSERT(kind <= QS_SCHEMA_PROPKEY);
    const qs_gschema *g = qs_catalog_find(qs_view_catalog(v), graph);
    return g ? g->k[kind].count : 0;
}

bool qs_index_exists(qs_view *v, uint32_t graph, uint32_t label_id, uint32_t key_id) {
    const qs_gschema *g = qs_catalog_find(qs_view_catalog(v), graph);
    return g && qs_gschema_has_index(g, label_id, key_id);
}

int qs_index_list(qs_view *v, uint32_t graph, q_arena *a, uint32_t **label_ids, uint32_t **key_ids, uint32_t *count) {
    const qs_gschema *g = qs_catalog_find(qs_view_catalog(v), graph);
    *count = 0;
    *label_ids = *key_ids = NULL;
    if (!g) return QS_NOT_FOUND;
    uint32_t n = g->index_count;
    uint32_t *l = q_arena_alloc(a, (n ? n : 1) * sizeof(uint32_t));
    uint32_t *k = q_arena_alloc(a, (n ? n : 1) * sizeof(uint32_t));
    if (!l || !k) return QS_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        l[i] = (uint32_t)(g->indexes[i] >> 32);
        k[i] = (uint32_t)g->indexes[i];
    }
    *label_ids = l;
    *key_ids = k;
    *count = n;
    return QS_OK;
}

/* ---- records ---- */

int qs_node_get(qs_view *v, uint32_t graph, uint64_t node_id, q_arena *a, qs_node_rec *out) {
    uint8_t k[12];
    qs_val val;
    memset(out, 0, sizeof *out);
    if (!qs_view_get(v, QS_CF_NODES, k, qk_entity(k, graph, node_id), &val)) return QS_NOT_FOUND;
    uint32_t labels[QUIVER_LABELS_PER_NODE_COUNT_MAX];
    size_t off;
    int rc = qp_node_labels(val.p, val.len, labels, &out->label_count, &off);
    if (rc == QS_OK) {
        out->label_ids = q_arena_alloc(a, (out->label_count ? out->label_count : 1) * sizeof(uint32_t));
        if (!out->label_ids) rc = QS_NOMEM;
        else memcpy(out->label_ids, labels, out->label_count * sizeof(uint32_t));
    }
    if (rc == QS_OK) rc = qp_props_decode(val.p + off, val.len - off, a, &out->props);
    qs_val_done(&val);
    return rc;
}

int qs_edge_get(qs_view *v, uint32_t graph, uint64_t edge_id, q_arena *a, qs_edge_rec *out) {
    uint8_t k[12];
    qs_val val;
    memset(out, 0, sizeof *out);
    if (!qs_view_get(v, QS_CF_EDGES, k, qk_entity(k, graph, edge_id), &val)) return QS_NOT_FOUND;
    size_t off;
    int rc = qp_edge_head(val.p, val.len, &out->type_id, &out->src_id, &out->dst_id, &off);
    if (rc == QS_OK) rc = qp_props_decode(val.p + off, val.len - off, a, &out->props);
    qs_val_done(&val);
    return rc;
}

bool qs_node_exists(qs_view *v, uint32_t graph, uint64_t node_id) {
    uint8_t k[12];
    qs_val val;
    if (!qs_view_get(v, QS_CF_NODES, k, qk_entity(k, graph, node_id), &val)) return false;
    qs_val_done(&val);
    return true;
}

int qs_node_prop(qs_view *v, uint32_t graph, uint64_t node_id, uint32_t key_id, q_arena *a, qv_value *out) {
    uint8_t k[12];
    qs_val val;
    *out = qv_null();
    if (!qs_view_get(v, QS_CF_NODES, k, qk_entity(k, graph, node_id), &val)) return QS_NOT_FOUND;
    uint32_t labels[QUIVER_LABELS_PER_NODE_COUNT_MAX], lc;
    size_t off;
    int rc = qp_node_labels(val.p, val.len, labels, &lc, &off);
    if (rc == QS_OK) {
        const uint8_t *vp;
        size_t vl;
        rc = qp_props_find(val.p + off, val.len - off, key_id, &vp, &vl);
        if (rc == QS_OK) rc = qp_decode_value(vp, vl, a, out);
        else if (rc == QS_NOT_FOUND) rc = QS_OK;
    }
    qs_val_done(&val);
    return rc;
}

bool qs_node_has_label(qs_view *v, uint32_t graph, uint64_t node_id, uint32_t label_id) {
    uint8_t k[12];
    qs_val val;
    if (!qs_view_get(v, QS_CF_NODES, k, qk_entity(k, graph, node_id), &val)) return false;
    uint32_t labels[QUIVER_LABELS_PER_NODE_COUNT_MAX], lc = 0;
    size_t off;
    bool has = false;
    if (qp_node_labels(val.p, val.len, labels, &lc, &off) == QS_OK)
        for (uint32_t i = 0; i < lc; i++)
            if (labels[i] == label_id) has = true;
    qs_val_done(&val);
    return has;
}

/* ---- counts ---- */

static uint64_t count_get(qs_view *v, uint32_t graph, uint8_t field, uint32_t label) {
    if (v->txn) {
        qs_gcount *c = qs_counts_find(v->db, graph);
        if (!c) return 0;
        switch (field) {
        case QK_CNT_NODES: return c->nodes;
        case QK_CNT_EDGES: return c->edges;
        default: return label < c->label_cap ? c->labels[label] : 0;
        }
    }
    uint8_t k[12];
    qs_val val;
    if (!qs_view_get(v, QS_CF_DEFAULT, k, qk_count(k, graph, field, label), &val)) return 0;
    uint64_t x = val.len == 8 ? qk_get_u64(val.p) : 0;
    qs_val_done(&val);
    return x;
}

uint64_t qs_node_count(qs_view *v, uint32_t graph) { return count_get(v, graph, QK_CNT_NODES, 0); }
uint64_t qs_edge_count(qs_view *v, uint32_t graph) { return count_get(v, graph, QK_CNT_EDGES, 0); }
uint64_t qs_label_count(qs_view *v, uint32_t graph, uint32_t label_id) {
    return count_get(v, graph, QK_CNT_LABEL, label_id);
}

/* ---- iterators ---- */

enum { IT_EMPTY, IT_NODES, IT_LABEL, IT_EDGES, IT_ADJ, IT_PROP };

struct qs_iter {
    int kind;
    qs_raw_iter r;
};

static qs_iter *iter_new(qs_view *v, int kind, int cf, const uint8_t *lo, size_t lo_len, const uint8_t *hi,
                         size_t hi_len) {
    qs_iter *it = calloc(1, sizeof *it);
    if (!it) QUIVER_FATAL("out of memory");
    it->kind = kind;
    if (kind != IT_EMPTY) qs_raw_open(&it->r, v, cf, lo, lo_len, hi, hi_len);
    return it;
}

/* Iterator over every key starting with prefix. */
static qs_iter *iter_prefix(qs_view *v, int kind, int cf, const uint8_t *prefix, size_t n) {
    uint8_t hi[QS_KEY_FIXED_SIZE_MAX_BYTES];
    QUIVER_ASSERT(n <= sizeof hi);
    memcpy(hi, prefix, n);
    size_t hn = qk_prefix_successor(hi, n);
    return iter_new(v, kind, cf, prefix, n, hn ? hi : NULL, hn);
}

qs_iter *qs_scan_nodes(qs_view *v, uint32_t graph) {
    uint8_t p[4];
    qk_put_u32(p, graph);
    return iter_prefix(v, IT_NODES, QS_CF_NODES, p, 4);
}

qs_iter *qs_scan_edges(qs_view *v, uint32_t graph) {
    uint8_t p[4];
    qk_put_u32(p, graph);
    return iter_prefix(v, IT_EDGES, QS_CF_EDGES, p, 4);
}

qs_iter *qs_scan_label(qs_view *v, uint32_t graph, uint32_t label_id) {
    uint8_t p[8];
    qk_put_u32(p, graph);
    qk_put_u32(p + 4, label_id);
    return iter_prefix(v, IT_LABEL, QS_CF_LABEL_INDEX, p, 8);
}

qs_iter *qs_scan_adj(qs_view *v, uint32_t graph, uint64_t node_id, qs_direction dir, uint32_t type_id) {
    uint8_t p[16];
    qk_put_u32(p, graph);
    qk_put_u64(p + 4, node_id);
    qk_put_u32(p + 12, type_id);
    return iter_prefix(v, IT_ADJ, dir == QS_DIR_OUT ? QS_CF_ADJ_OUT : QS_CF_ADJ_IN, p,
                       type_id == QS_TYPE_ANY ? 12 : 16);
}

static int key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
    size_t m = an < bn ? an : bn;
    int c = memcmp(a, b, m);
    if (c) return c;
    return an < bn ? -1 : an > bn;
}

qs_iter *qs_scan_prop_index(qs_view *v, uint32_t graph, uint32_t label_id, uint32_t key_id, const qv_value *lo,
                            bool lo_inclusive, const qv_value *hi, bool hi_inclusive) {
    if (!qs_index_exists(v, graph, label_id, key_id)) return NULL;
    int flo = lo ? qp_index_family(*lo) : -1, fhi = hi ? qp_index_family(*hi) : -1;
    /* Not comparable with anything indexed (null, list, map, NaN), or
     * bounds of two type families: nothing can match. */
    if ((lo && (flo < 0 || flo == 0x21)) || (hi && (fhi < 0 || fhi == 0x21)) || (lo && hi && flo != fhi))
        return iter_new(v, IT_EMPTY, 0, NULL, 0, NULL, 0);
    qbuf a = {0}, b = {0};
    uint8_t p[12];
    qk_prop_prefix(p, graph, label_id, key_id);
    qbuf_add(&a, p, 12);
    qbuf_add(&b, p, 12);
    if (lo) {
        qp_index_encode(&a, *lo);
        if (!lo_inclusive) a.len = qk_prefix_successor(a.p, a.len);
    } else if (hi) {
        qbuf_u8(&a, (uint8_t)fhi);
    }
    if (hi) {
        qp_index_encode(&b, *hi);
        if (hi_inclusive) b.len = qk_prefix_successor(b.p, b.len);
    } else if (lo) {
        qbuf_u8(&b, (uint8_t)(flo + 1)); /* end of the type family (numbers stop before NaN) */
    } else {
        b.len = qk_prefix_successor(b.p, b.len);
    }
    qs_iter *it;
    if (a.len == 0 || (b.len && key_cmp(a.p, a.len, b.p, b.len) >= 0))
        it = iter_new(v, IT_EMPTY, 0, NULL, 0, NULL, 0);
    else
        it = iter_new(v, IT_PROP, QS_CF_PROP_INDEX, a.p, a.len, b.len ? b.p : NULL, b.len);
    qbuf_free(&a);
    qbuf_free(&b);
    return it;
}

bool qs_iter_next(qs_iter *it, qs_item *item) {
    if (!it || it->kind == IT_EMPTY) return false;
    const uint8_t *k, *val;
    size_t kl, vl;
    memset(item, 0, sizeof *item);
    if (!qs_raw_next(&it->r, &k, &kl, &val, &vl)) return false;
    switch (it->kind) {
    case IT_NODES:
        QUIVER_ASSERT(kl == 12);
        item->node_id = qk_get_u64(k + 4);
        return true;
    case IT_LABEL:
        QUIVER_ASSERT(kl == 16);
        item->node_id = qk_get_u64(k + 8);
        return true;
    case IT_EDGES: {
        QUIVER_ASSERT(kl == 12);
        item->edge_id = qk_get_u64(k + 4);
        size_t off;
        if (qp_edge_head(val, vl, &item->type_id, &item->src_id, &item->dst_id, &off) != QS_OK)
            QUIVER_FATAL("corrupt edge record (graph %u, edge %llu)", qk_get_u32(k),
                         (unsigned long long)item->edge_id);
        return true;
    }
    case IT_ADJ:
        QUIVER_ASSERT(kl == 32);
        item->type_id = qk_get_u32(k + 12);
        item->node_id = qk_get_u64(k + 16);
        item->edge_id = qk_get_u64(k + 24);
        return true;
    case IT_PROP:
        QUIVER_ASSERT(kl >= 20);
        item->node_id = qk_get_u64(k + kl - 8);
        return true;
    default:
        return false;
    }
}

void qs_iter_free(qs_iter *it) {
    if (!it) return;
    if (it->kind != IT_EMPTY) qs_raw_close(&it->r);
    free(it);
}

/* ---- meta ---- */

static bool meta_key_ok(const void *key, size_t len) {
    return len > 0 && !(len >= 2 && memcmp(key, QK_META_RESERVED, 2) == 0);
}

int qs_meta_get(qs_view *v, const void *key, size_t key_len, q_arena *a, void **val, size_t *val_len) {
    if (!meta_key_ok(key, key_len)) return QS_INVALID;
    qs_val r;
    if (!qs_view_get(v, QS_CF_DEFAULT, key, key_len, &r)) return QS_NOT_FOUND;
    void *p = q_arena_alloc(a, r.len);
    if (!p) {
        qs_val_done(&r);
        return QS_NOMEM;
    }
    memcpy(p, r.p, r.len);
    *val = p;
    *val_len = r.len;
    qs_val_done(&r);
    return QS_OK;
}

int qs_meta_scan(qs_view *v, const void *prefix, size_t prefix_len,
                 bool (*fn)(void *ctx, const void *key, size_t key_len, const void *val, size_t val_len), void *ctx) {
    qbuf hi = {0};
    qbuf_add(&hi, prefix, prefix_len);
    size_t hn = qk_prefix_successor(hi.p, hi.len);
    qs_raw_iter r;
    qs_raw_open(&r, v, QS_CF_DEFAULT, prefix, prefix_len, hn ? hi.p : NULL, hn);
    const uint8_t *k, *val;
    size_t kl, vl;
    while (qs_raw_next(&r, &k, &kl, &val, &vl)) {
        if (!meta_key_ok(k, kl)) continue; /* ours, when the prefix is short */
        if (!fn(ctx, k, kl, val, vl)) break;
    }
    qs_raw_close(&r);
    qbuf_free(&hi);
    return QS_OK;
}
