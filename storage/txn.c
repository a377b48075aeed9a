/*
 * txn.c -- the apply thread's write transaction.
 *
 * One RocksDB WriteBatchWithIndex (overwrite_key = 1) per log entry: reads
 * through qs_txn_view see the batch over the latest database state (the
 * apply thread is the only writer, so "latest" is stable).  Every write is
 * also appended to a plain log; the commit writes the last write of each
 * key, sorted (see sorted_batch), plus the applied index, as one atomic
 * WriteBatch with the WAL off (DESIGN.md 4: the raft log is the WAL).
 *
 * Every write keeps the secondary families consistent with the record it
 * changes: label_index and label counts with a node's labels, prop_index
 * with (label, key) pairs that have an index, adj_out/adj_in with edges.
 * Arguments are validated before the first write, so a refused call
 * changes nothing (no savepoint needed for bad input).
 *
 * Savepoints: RocksDB savepoints on the batch plus a position in an undo
 * log that records every in-memory change (counters, schema additions,
 * index definitions, graphs created/deleted).  The 7.8 C API cannot pop a
 * WriteBatchWithIndex savepoint, so a released savepoint stays on RocksDB's
 * stack; rolling back to an outer savepoint then rolls back the orphans
 * above it first (each RocksDB rollback re-indexes the batch; failed
 * commands are rare, so the cost is acceptable).
 *
 * Bulk operations (index creation, graph delete) first collect the keys to
 * touch and then write, so no iterator is open on the batch while it is
 * modified.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/limits.h"
#include "store.h"

enum { U_CNT = 1, U_NEXT_GRAPH, U_SCHEMA_ADD, U_INDEX_ADD, U_INDEX_DROP, U_GRAPH_CREATE, U_GRAPH_DELETE };

#define QS_META_KEY_SIZE_MAX_BYTES 4096

/* ---- plumbing ---- */

/* Write log record: cf (u8), op (u8: 1 put, 0 delete), key length (u32),
 * value length (u32), key, value; host byte order (never stored). */
enum { LOG_HDR = 10 };

static void log_add(qs_txn *t, int cf, uint8_t op, const void *k, size_t kl, const void *v, size_t vl) {
    QUIVER_ASSERT(kl <= UINT32_MAX && vl <= UINT32_MAX);
    uint8_t h[LOG_HDR];
    h[0] = (uint8_t)cf;
    h[1] = op;
    uint32_t a = (uint32_t)kl, b = (uint32_t)vl;
    memcpy(h + 2, &a, 4);
    memcpy(h + 6, &b, 4);
    qbuf_reserve(&t->log, LOG_HDR + kl + vl);
    qbuf_add(&t->log, h, LOG_HDR);
    qbuf_add(&t->log, k, kl);
    qbuf_add(&t->log, v, vl);
}

static void put(qs_txn *t, int cf, const void *k, size_t kl, const void *v, size_t vl) {
    rocksdb_writebatch_wi_put_cf(t->wb, t->db->cf[cf], (const char *)k, kl, (const char *)v, vl);
    log_add(t, cf, 1, k, kl, v, vl);
}

static void del(qs_txn *t, int cf, const void *k, size_t kl) {
    rocksdb_writebatch_wi_delete_cf(t->wb, t->db->cf[cf], (const char *)k, kl);
    log_add(t, cf, 0, k, kl, NULL, 0);
}

/* Sort key of a log record: family, key bytes, then log position (so the
 * last write of a key comes last).  The log's base comes through qsort_r's
 * context, never a global: several databases in one process (the raft
 * simulation test runs three) commit from several threads at once. */
static int log_cmp(const void *pa, const void *pb, void *ctx) {
    const uint8_t *base = ctx;
    size_t oa = *(const size_t *)pa, ob = *(const size_t *)pb;
    const uint8_t *a = base + oa, *b = base + ob;
    if (a[0] != b[0]) return a[0] < b[0] ? -1 : 1;
    uint32_t al, bl;
    memcpy(&al, a + 2, 4);
    memcpy(&bl, b + 2, 4);
    int c = memcmp(a + LOG_HDR, b + LOG_HDR, al < bl ? al : bl);
    if (c) return c;
    if (al != bl) return al < bl ? -1 : 1;
    return oa < ob ? -1 : oa > ob;
}

/* The batch actually written at commit: the last write of every key, in
 * key order per family.  RocksDB's memtable skiplist inserts keys that
 * arrive in order far faster than random ones (it reuses the insertion
 * splice), and a transaction's writes are scattered over families and
 * over the key space (adjacency, indexes), so sorting here roughly halves
 * the commit cost of bulk loads.  The WriteBatchWithIndex itself only
 * serves reads of the transaction's own writes. */
static rocksdb_writebatch_t *sorted_batch(qs_txn *t) {
    size_t n = 0;
    for (size_t off = 0; off < t->log.len;) {
        uint32_t kl, vl;
        memcpy(&kl, t->log.p + off + 2, 4);
        memcpy(&vl, t->log.p + off + 6, 4);
        off += LOG_HDR + kl + vl;
        n++;
    }
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) QUIVER_FATAL("out of memory (commit of %zu writes)", n);
    size_t i = 0;
    bool sorted = true;
    for (size_t off = 0; off < t->log.len; i++) {
        uint32_t kl, vl;
        memcpy(&kl, t->log.p + off + 2, 4);
        memcpy(&vl, t->log.p + off + 6, 4);
        idx[i] = off;
        off += LOG_HDR + kl + vl;
    }
    for (i = 1; i < n && sorted; i++) sorted = log_cmp(&idx[i - 1], &idx[i], t->log.p) < 0;
    if (!sorted) qsort_r(idx, n, sizeof *idx, log_cmp, t->log.p);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (i = 0; i < n; i++) {
        const uint8_t *r = t->log.p + idx[i];
        uint32_t kl, vl;
        memcpy(&kl, r + 2, 4);
        memcpy(&vl, r + 6, 4);
        if (i + 1 < n) { /* a later write of the same key wins */
            const uint8_t *q = t->log.p + idx[i + 1];
            uint32_t ql;
            memcpy(&ql, q + 2, 4);
            if (q[0] == r[0] && ql == kl && memcmp(q + LOG_HDR, r + LOG_HDR, kl) == 0) continue;
        }
        rocksdb_column_family_handle_t *cf = t->db->cf[r[0]];
        if (r[1]) rocksdb_writebatch_put_cf(wb, cf, (const char *)r + LOG_HDR, kl, (const char *)r + LOG_HDR + kl, vl);
        else rocksdb_writebatch_delete_cf(wb, cf, (const char *)r + LOG_HDR, kl);
    }
    free(idx);
    return wb;
}

static qs_undo *undo_push(qs_txn *t, uint8_t op, uint32_t graph) {
    if (t->undo_len == t->undo_cap) {
        t->undo_cap = t->undo_cap ? t->undo_cap * 2 : 256;
        t->undo = realloc(t->undo, t->undo_cap * sizeof *t->undo);
        if (!t->undo) QUIVER_FATAL("out of memory (undo log)");
    }
    qs_undo *u = &t->undo[t->undo_len++];
    memset(u, 0, sizeof *u);
    u->op = op;
    u->graph = graph;
    return u;
}

static const qs_catalog *cat_read(qs_txn *t) { return t->cat ? t->cat : t->base; }

static qs_catalog *cat_write(qs_txn *t) {
    if (!t->cat) t->cat = qs_catalog_copy(t->base, t->seq);
    return t->cat;
}

static qs_gschema *gs_write(qs_txn *t, uint32_t graph) {
    qs_gschema *g = qs_catalog_mutable(cat_write(t), graph, t->seq);
    QUIVER_ASSERT(g);
    return g;
}

static uint64_t *cnt_field(qs_gcount *c, uint8_t field, uint32_t label) {
    switch (field) {
    case QK_CNT_NEXT_NODE: return &c->next_node;
    case QK_CNT_NEXT_EDGE: return &c->next_edge;
    case QK_CNT_NODES: return &c->nodes;
    case QK_CNT_EDGES: return &c->edges;
    default:
        qs_gcount_label_reserve(c, label);
        return &c->labels[label];
    }
}

static void cnt_add(qs_txn *t, qs_gcount *c, uint8_t field, uint32_t label, int64_t delta) {
    uint64_t *f = cnt_field(c, field, label);
    qs_undo *u = undo_push(t, U_CNT, c->graph);
    u->field = field;
    u->a = label;
    u->old = *f;
    QUIVER_ASSERT(delta >= 0 || *f >= (uint64_t)-delta); /* counts never go negative */
    *f += (uint64_t)delta;
    c->dirty = true;
    if (field == QK_CNT_LABEL) c->label_dirty[label] = 1;
}

static void undo_one(qs_txn *t, qs_undo *u) {
    qs_db *db = t->db;
    switch (u->op) {
    case U_CNT: {
        qs_gcount *c = qs_counts_find(db, u->graph);
        QUIVER_ASSERT(c);
        *cnt_field(c, u->field, u->a) = u->old;
        break;
    }
    case U_NEXT_GRAPH:
        db->next_graph = (uint32_t)u->old;
        break;
    case U_SCHEMA_ADD:
        qs_gschema_pop(gs_write(t, u->graph), (int)u->a);
        break;
    case U_INDEX_ADD:
        qs_gschema_index_remove(gs_write(t, u->graph), u->a, u->b);
        break;
    case U_INDEX_DROP:
        qs_gschema_index_add(gs_write(t, u->graph), u->a, u->b);
        break;
    case U_GRAPH_CREATE:
        qs_gschema_unref(qs_catalog_remove(cat_write(t), u->graph));
        qs_gcount_free(qs_counts_remove(db, u->graph));
        break;
    case U_GRAPH_DELETE:
        qs_catalog_insert(cat_write(t), (qs_gschema *)u->ptr);
        qs_counts_reinsert(db, (qs_gcount *)u->ptr2);
        u->ptr = u->ptr2 = NULL;
        break;
    default:
        QUIVER_FATAL("unknown undo record %d", u->op);
    }
}

static void undo_to(qs_txn *t, size_t len) {
    while (t->undo_len > len) {
        undo_one(t, &t->undo[t->undo_len - 1]);
        t->undo_len--;
    }
}

/* Free what the undo log still holds (deleted graphs) once it is final. */
static void undo_release(qs_txn *t) {
    for (size_t i = 0; i < t->undo_len; i++) {
        if (t->undo[i].op == U_GRAPH_DELETE) {
            qs_gschema_unref((qs_gschema *)t->undo[i].ptr);
            qs_gcount_free((qs_gcount *)t->undo[i].ptr2);
        }
    }
    t->undo_len = 0;
}

/* ---- known-live node cache (store.h) ---- */

static struct qs_live_slot *live_slot(qs_db *db, uint32_t graph, uint64_t node) {
    if (!db->live) {
        db->live = calloc(QS_LIVE_CACHE_SLOTS, sizeof *db->live);
        if (!db->live) QUIVER_FATAL("out of memory (node cache)");
        db->live_gen = 1;
    }
    uint64_t h = (node ^ ((uint64_t)graph << 40)) * 0x9e3779b97f4a7c15ull;
    return &db->live[h >> (64 - 18)];
}

static void live_note(qs_db *db, uint32_t graph, uint64_t node) {
    struct qs_live_slot *s = live_slot(db, graph, node);
    s->node = node;
    s->graph = graph;
    s->gen = db->live_gen;
}

static void live_forget(qs_db *db, uint32_t graph, uint64_t node) {
    struct qs_live_slot *s = live_slot(db, graph, node);
    if (s->node == node && s->graph == graph) s->gen = 0;
}

static void live_invalidate(qs_db *db) {
    if (++db->live_gen == 0) { /* wrapped: old generations could match again */
        memset(db->live, 0, QS_LIVE_CACHE_SLOTS * sizeof *db->live);
        db->live_gen = 1;
    }
}

static bool node_live(qs_txn *t, uint32_t graph, uint64_t node) {
    qs_db *db = t->db;
    struct qs_live_slot *s = live_slot(db, graph, node);
    if (s->gen == db->live_gen && s->node == node && s->graph == graph) return true;
    qs_gcount *c = qs_counts_find(db, graph);
    if (!c || node >= c->next_node) return false; /* never allocated */
    if (!qs_node_exists(&t->view, graph, node)) return false;
    live_note(db, graph, node);
    return true;
}

/* ---- lifecycle ---- */

qs_txn *qs_txn_begin(qs_db *db) {
    QUIVER_ASSERT(db && db->open_txn == NULL);
    qs_txn *t = calloc(1, sizeof *t);
    if (!t) QUIVER_FATAL("out of memory");
    t->db = db;
    t->seq = ++db->txn_seq;
    t->wb = rocksdb_writebatch_wi_create(0, 1);
    t->view.db = db;
    t->view.txn = t;
    pthread_mutex_lock(&db->mu);
    t->base = qs_catalog_ref(db->committed);
    pthread_mutex_unlock(&db->mu);
    t->next_graph_at_begin = db->next_graph;
    q_arena_init(&t->arena, 0);
    db->open_txn = t;
    return t;
}

qs_view *qs_txn_view(qs_txn *t) {
    QUIVER_ASSERT(t);
    return &t->view;
}

static void txn_free(qs_txn *t) {
    t->db->open_txn = NULL;
    rocksdb_writebatch_wi_destroy(t->wb);
    qs_catalog_unref(t->cat);
    qs_catalog_unref(t->base);
    free(t->undo);
    free(t->saves);
    qbuf_free(&t->log);
    qbuf_free(&t->k);
    qbuf_free(&t->val);
    qbuf_free(&t->tmp);
    free(t->raw);
    q_arena_free(&t->arena);
    free(t);
}

void qs_txn_savepoint(qs_txn *t) {
    if (t->save_len == t->save_cap) {
        t->save_cap = t->save_cap ? t->save_cap * 2 : 16;
        t->saves = realloc(t->saves, t->save_cap * sizeof *t->saves);
        if (!t->saves) QUIVER_FATAL("out of memory");
    }
    rocksdb_writebatch_wi_set_save_point(t->wb);
    t->rocks_depth++;
    t->saves[t->save_len].undo_len = t->undo_len;
    t->saves[t->save_len].log_len = t->log.len;
    t->saves[t->save_len].rocks_depth = t->rocks_depth;
    t->save_len++;
}

void qs_txn_rollback_to_savepoint(qs_txn *t) {
    QUIVER_ASSERT(t->save_len > 0);
    qs_save s = t->saves[--t->save_len];
    QUIVER_ASSERT(t->rocks_depth >= s.rocks_depth);
    while (t->rocks_depth >= s.rocks_depth) {
        char *err = NULL;
        rocksdb_writebatch_wi_rollback_to_save_point(t->wb, &err);
        QS_CHECK("rollback to savepoint", err);
        t->rocks_depth--;
    }
    undo_to(t, s.undo_len);
    t->log.len = s.log_len;
    live_invalidate(t->db);
}

void qs_txn_release_savepoint(qs_txn *t) {
    QUIVER_ASSERT(t->save_len > 0);
    t->save_len--; /* RocksDB's savepoint stays as an orphan (see top comment) */
}

void qs_txn_write_counters(qs_txn *t, bool clear_dirty) {
    qs_db *db = t->db;
    uint8_t k[12], v[8];
    for (uint32_t i = 0; i < db->count_n; i++) {
        qs_gcount *c = db->counts[i];
        if (!c->dirty) continue;
        const uint8_t fields[4] = {QK_CNT_NEXT_NODE, QK_CNT_NEXT_EDGE, QK_CNT_NODES, QK_CNT_EDGES};
        for (int f = 0; f < 4; f++) {
            qk_put_u64(v, *cnt_field(c, fields[f], 0));
            put(t, QS_CF_DEFAULT, k, qk_count(k, c->graph, fields[f], 0), v, 8);
        }
        for (uint32_t l = 0; l < c->label_cap; l++) {
            if (!c->label_dirty[l]) continue;
            /* A label count key exists iff the count is non-zero, so the
             * stored state (and the digest) does not depend on whether a
             * replica rolled back commands that touched a label. */
            size_t kl = qk_count(k, c->graph, QK_CNT_LABEL, l);
            if (c->labels[l] == 0) {
                del(t, QS_CF_DEFAULT, k, kl);
            } else {
                qk_put_u64(v, c->labels[l]);
                put(t, QS_CF_DEFAULT, k, kl, v, 8);
            }
            if (clear_dirty) c->label_dirty[l] = 0;
        }
        if (clear_dirty) c->dirty = false;
    }
}

void qs_txn_commit(qs_txn *t, uint64_t applied_index) {
    qs_db *db = t->db;
    QUIVER_ASSERT(db->open_txn == t);
    uint64_t prev = atomic_load(&db->applied);
    QUIVER_ASSERT(applied_index > prev); /* the applied index never goes back */
    qs_txn_write_counters(t, true);
    if (db->next_graph != t->next_graph_at_begin) {
        uint8_t v[4];
        qk_put_u32(v, db->next_graph);
        put(t, QS_CF_DEFAULT, QK_NEXT_GRAPH, strlen(QK_NEXT_GRAPH), v, 4);
    }
    uint8_t v[8];
    qk_put_u64(v, applied_index);
    put(t, QS_CF_DEFAULT, QK_APPLIED, strlen(QK_APPLIED), v, 8);

    char *err = NULL;
    qs_catalog *old = NULL;
    rocksdb_writebatch_t *wb = sorted_batch(t);
    /* Write outside the lock (a big batch takes milliseconds) while readers
     * keep using the snapshot of the previous state (store.h). */
    pthread_mutex_lock(&db->mu);
    qs_snap_current(db);
    pthread_mutex_unlock(&db->mu);
    rocksdb_write(db->rdb, db->wo, wb, &err);
    rocksdb_writebatch_destroy(wb);
    QS_CHECK("commit", err);
    pthread_mutex_lock(&db->mu);
    if (t->cat) {
        old = db->committed;
        db->committed = t->cat;
        t->cat = NULL;
    }
    atomic_store(&db->applied, applied_index);
    qs_snap *stale = qs_snap_detach(db);
    pthread_mutex_unlock(&db->mu);
    qs_snap_unref(db, stale);
    qs_catalog_unref(old);
    undo_release(t);
    txn_free(t);
}

void qs_set_applied_index(qs_db *db, uint64_t applied_index) {
    QUIVER_ASSERT(db && db->open_txn == NULL);
    QUIVER_ASSERT(applied_index > atomic_load(&db->applied));
    uint8_t v[8];
    qk_put_u64(v, applied_index);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(wb, db->cf[QS_CF_DEFAULT], QK_APPLIED, strlen(QK_APPLIED), (char *)v, 8);
    char *err = NULL;
    pthread_mutex_lock(&db->mu);
    qs_snap_current(db);
    pthread_mutex_unlock(&db->mu);
    rocksdb_write(db->rdb, db->wo, wb, &err);
    rocksdb_writebatch_destroy(wb);
    QS_CHECK("storing the applied index", err);
    pthread_mutex_lock(&db->mu);
    atomic_store(&db->applied, applied_index);
    qs_snap *stale = qs_snap_detach(db);
    pthread_mutex_unlock(&db->mu);
    qs_snap_unref(db, stale);
}

void qs_txn_abort(qs_txn *t) {
    QUIVER_ASSERT(t->db->open_txn == t);
    undo_to(t, 0);
    live_invalidate(t->db);
    txn_free(t);
}

/* ---- graphs ---- */

int qs_graph_create(qs_txn *t, const char *name, size_t len, uint32_t *graph_id) {
    if (len == 0 || len > QUIVER_GRAPH_NAME_SIZE_MAX_BYTES) return QS_INVALID;
    const qs_gschema *e = qs_catalog_find_name(cat_read(t), name, len);
    if (e) {
        *graph_id = e->graph_id;
        return QS_EXISTS;
    }
    if (cat_read(t)->count >= QUIVER_GRAPHS_COUNT_MAX) return QS_LIMIT;
    qs_db *db = t->db;
    if (db->next_graph == UINT32_MAX) return QS_LIMIT;
    uint32_t g = db->next_graph;
    qs_undo *u = undo_push(t, U_NEXT_GRAPH, g);
    u->old = db->next_graph;
    db->next_graph++;
    qs_catalog_insert(cat_write(t), qs_gschema_new(g, name, len, t->seq));
    qs_gcount *c = qs_counts_add(db, g);
    c->dirty = true;
    undo_push(t, U_GRAPH_CREATE, g);
    qbuf_reset(&t->k);
    qbuf_add(&t->k, QK_GNAME, strlen(QK_GNAME));
    qbuf_add(&t->k, name, len);
    uint8_t v[4];
    qk_put_u32(v, g);
    put(t, QS_CF_DEFAULT, t->k.p, t->k.len, v, 4);
    *graph_id = g;
    return QS_OK;
}

/* Collect every key in [lo, hi) of a family (through the batch). */
static void collect_keys(qs_txn *t, int cf, const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len,
                         qbuf *keys) {
    qs_raw_iter r;
    qs_raw_open(&r, &t->view, cf, lo, lo_len, hi, hi_len);
    const uint8_t *k;
    size_t kl;
    while (qs_raw_next(&r, &k, &kl, NULL, NULL)) {
        uint32_t l = (uint32_t)kl;
        qbuf_add(keys, &l, 4);
        qbuf_add(keys, k, kl);
    }
    qs_raw_close(&r);
}

static void delete_collected(qs_txn *t, int cf, qbuf *keys) {
    size_t off = 0;
    while (off < keys->len) {
        uint32_t l;
        memcpy(&l, keys->p + off, 4);
        del(t, cf, keys->p + off + 4, l);
        off += 4 + l;
    }
    qbuf_reset(keys);
}

static void delete_prefix(qs_txn *t, int cf, const uint8_t *prefix, size_t n) {
    uint8_t hi[64];
    QUIVER_ASSERT(n <= sizeof hi);
    memcpy(hi, prefix, n);
    size_t hn = qk_prefix_successor(hi, n);
    qbuf keys = {0};
    collect_keys(t, cf, prefix, n, hn ? hi : NULL, hn, &keys);
    delete_collected(t, cf, &keys);
    qbuf_free(&keys);
}

int qs_graph_delete(qs_txn *t, uint32_t graph) {
    qs_gschema *g = qs_catalog_find(cat_read(t), graph);
    if (!g) return QS_NOT_FOUND;
    uint8_t p[8];
    qk_put_u32(p, graph);
    for (int cf = QS_CF_SCHEMA; cf < QS_CF_COUNT; cf++) delete_prefix(t, cf, p, 4);
    memcpy(p, QK_GCOUNT, 3);
    qk_put_u32(p + 3, graph);
    delete_prefix(t, QS_CF_DEFAULT, p, 7);
    qbuf_reset(&t->k);
    qbuf_add(&t->k, QK_GNAME, strlen(QK_GNAME));
    qbuf_add(&t->k, g->name, g->name_len);
    del(t, QS_CF_DEFAULT, t->k.p, t->k.len);
    live_invalidate(t->db);
    qs_undo *u = undo_push(t, U_GRAPH_DELETE, graph);
    u->ptr = qs_catalog_remove(cat_write(t), graph);
    u->ptr2 = qs_counts_remove(t->db, graph);
    QUIVER_ASSERT(u->ptr && u->ptr2);
    return QS_OK;
}

/* ---- schema ---- */

int qs_schema_intern(qs_txn *t, uint32_t graph, qs_schema_kind kind, const char *name, size_t len, uint32_t *id) {
    if (kind > QS_SCHEMA_PROPKEY) return QS_INVALID;
    if (len > QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES) return QS_LIMIT;
    const qs_gschema *g = qs_catalog_find(cat_read(t), graph);
    if (!g) return QS_NOT_FOUND;
    int64_t r = qs_gschema_lookup(g, kind, name, len);
    if (r >= 0) {
        *id = (uint32_t)r;
        return QS_OK;
    }
    if (g->k[kind].count >= QUIVER_SCHEMA_IDS_COUNT_MAX) return QS_LIMIT;
    qs_gschema *gm = gs_write(t, graph);
    uint32_t nid = qs_gschema_add(gm, kind, name, len);
    qs_undo *u = undo_push(t, U_SCHEMA_ADD, graph);
    u->a = kind;
    uint8_t k[10];
    put(t, QS_CF_SCHEMA, k, qk_schema_name(k, graph, (uint8_t)kind, nid), name, len);
    qbuf_reset(&t->k);
    qbuf_u32(&t->k, graph);
    qbuf_u8(&t->k, QK_SCH_ID);
    qbuf_u8(&t->k, (uint8_t)kind);
    qbuf_add(&t->k, name, len);
    uint8_t v[4];
    qk_put_u32(v, nid);
    put(t, QS_CF_SCHEMA, t->k.p, t->k.len, v, 4);
    *id = nid;
    return QS_OK;
}

/* ---- property helpers ---- */

/* Validate and encode props (skipping nulls) into t->val and t->raw, sorted
 * by key id.  QS_OK or the error, with nothing written anywhere. */
static int encode_props(qs_txn *t, const qs_gschema *g, const qv_props *props, uint32_t *count) {
    *count = 0;
    qbuf_reset(&t->val);
    if (!props || props->count == 0) return QS_OK;
    if (props->count > QUIVER_PROPERTIES_PER_ENTITY_COUNT_MAX) return QS_LIMIT;
    if (t->raw_cap < props->count) {
        t->raw = realloc(t->raw, props->count * sizeof *t->raw);
        if (!t->raw) QUIVER_FATAL("out of memory");
        t->raw_cap = props->count;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < props->count; i++) {
        if (props->key_ids[i] >= g->k[QS_SCHEMA_PROPKEY].count) return QS_INVALID;
        if (props->values[i].type == QV_NULL) continue;
        size_t off = t->val.len;
        int rc = qp_encode_value(&t->val, props->values[i], 0);
        if (rc != QS_OK) return rc;
        t->raw[n].key_id = props->key_ids[i];
        t->raw[n].p = (const uint8_t *)(uintptr_t)off; /* fixed up below: t->val may move */
        t->raw[n].len = (uint32_t)(t->val.len - off);
        n++;
    }
    for (uint32_t i = 0; i < n; i++) t->raw[i].p = t->val.p + (uintptr_t)t->raw[i].p;
    /* insertion sort by key id: property maps are small */
    for (uint32_t i = 1; i < n; i++) {
        qp_raw x = t->raw[i];
        uint32_t j = i;
        while (j > 0 && t->raw[j - 1].key_id > x.key_id) {
            t->raw[j] = t->raw[j - 1];
            j--;
        }
        t->raw[j] = x;
    }
    for (uint32_t i = 1; i < n; i++)
        if (t->raw[i].key_id == t->raw[i - 1].key_id) return QS_INVALID;
    /* also catch duplicates hidden by a null (same key twice, once null) */
    for (uint32_t i = 1; i < props->count; i++)
        for (uint32_t j = 0; j < i && props->count <= 64; j++)
            if (props->key_ids[i] == props->key_ids[j]) return QS_INVALID;
    *count = n;
    return QS_OK;
}

/* Build the prop_index key for (label, key, encoded value, node) into t->k.
 * false when the value is not indexable. */
static bool index_key(qs_txn *t, uint32_t graph, uint32_t label, uint32_t key, const uint8_t *enc, size_t enc_len,
                      uint64_t node) {
    qv_value val;
    q_arena_reset(&t->arena);
    if (qp_decode_value(enc, enc_len, &t->arena, &val) != QS_OK)
        QUIVER_FATAL("corrupt property value (graph %u node %llu key %u)", graph, (unsigned long long)node, key);
    qbuf_reset(&t->k);
    uint8_t p[12];
    qbuf_add(&t->k, p, qk_prop_prefix(p, graph, label, key));
    if (!qp_index_encode(&t->k, val)) return false;
    qbuf_u64(&t->k, node);
    return true;
}

static void index_entries(qs_txn *t, const qs_gschema *g, uint32_t graph, uint64_t node, uint32_t label,
                          const qp_raw *props, uint32_t prop_count, bool add) {
    uint32_t first, end;
    qs_gschema_label_indexes(g, label, &first, &end);
    for (uint32_t i = first; i < end; i++) {
        uint32_t key = (uint32_t)g->indexes[i];
        for (uint32_t j = 0; j < prop_count; j++) {
            if (props[j].key_id != key) continue;
            if (index_key(t, graph, label, key, props[j].p, props[j].len, node)) {
                if (add) put(t, QS_CF_PROP_INDEX, t->k.p, t->k.len, "", 0);
                else del(t, QS_CF_PROP_INDEX, t->k.p, t->k.len);
            }
        }
    }
}

/* ---- nodes ---- */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int qs_node_create(qs_txn *t, uint32_t graph, const uint32_t *label_ids, uint32_t label_count, const qv_props *props,
                   uint64_t *node_id) {
    const qs_gschema *g = qs_catalog_find(cat_read(t), graph);
    if (!g) return QS_NOT_FOUND;
    if (label_count > QUIVER_LABELS_PER_NODE_COUNT_MAX) return QS_LIMIT;
    uint32_t labels[QUIVER_LABELS_PER_NODE_COUNT_MAX];
    for (uint32_t i = 0; i < label_count; i++) {
        if (label_ids[i] >= g->k[QS_SCHEMA_LABEL].count) return QS_INVALID;
        labels[i] = label_ids[i];
    }
    qsort(labels, label_count, sizeof(uint32_t), cmp_u32);
    uint32_t lc = 0;
    for (uint32_t i = 0; i < label_count; i++)
        if (lc == 0 || labels[lc - 1] != labels[i]) labels[lc++] = labels[i];
    uint32_t pc;
    int rc = encode_props(t, g, props, &pc);
    if (rc != QS_OK) return rc;

    qs_gcount *c = qs_counts_find(t->db, graph);
    QUIVER_ASSERT(c);
    uint64_t id = c->next_node;
    cnt_add(t, c, QK_CNT_NEXT_NODE, 0, 1);
    cnt_add(t, c, QK_CNT_NODES, 0, 1);
    qbuf_reset(&t->tmp);
    qp_node_encode(&t->tmp, labels, lc, t->raw, pc);
    uint8_t k[16];
    put(t, QS_CF_NODES, k, qk_entity(k, graph, id), t->tmp.p, t->tmp.len);
    for (uint32_t i = 0; i < lc; i++) {
        cnt_add(t, c, QK_CNT_LABEL, labels[i], 1);
        put(t, QS_CF_LABEL_INDEX, k, qk_label(k, graph, labels[i], id), "", 0);
        if (g->index_count) index_entries(t, g, graph, id, labels[i], t->raw, pc, true);
    }
    live_note(t->db, graph, id);
    *node_id = id;
    return QS_OK;
}

/* A node record read through the transaction and split into parts; the
 * raw property slices point into val (keep it until done). */
typedef struct node_parts {
    qs_val val;
    uint32_t labels[QUIVER_LABELS_PER_NODE_COUNT_MAX];
    uint32_t label_count;
    uint32_t prop_count;
} node_parts;

static int node_read(qs_txn *t, uint32_t graph, uint64_t node, node_parts *np) {
    uint8_t k[12];
    if (!qs_view_get(&t->view, QS_CF_NODES, k, qk_entity(k, graph, node), &np->val)) return QS_NOT_FOUND;
    size_t off;
    if (qp_node_labels(np->val.p, np->val.len, np->labels, &np->label_count, &off) != QS_OK ||
        qp_props_raw(np->val.p + off, np->val.len - off, &t->raw, &t->raw_cap, &np->prop_count) != QS_OK)
        QUIVER_FATAL("corrupt node record (graph %u node %llu)", graph, (unsigned long long)node);
    return QS_OK;
}

static void node_write(qs_txn *t, uint32_t graph, uint64_t node, const uint32_t *labels, uint32_t lc,
                       const qp_raw *props, uint32_t pc) {
    qbuf_reset(&t->tmp);
    qp_node_encode(&t->tmp, labels, lc, props, pc);
    uint8_t k[12];
    put(t, QS_CF_NODES, k, qk_entity(k, graph, node), t->tmp.p, t->tmp.len);
}

/* Replace/insert/remove key_id in raw[0..*count) (capacity ensured);
 * newv NULL removes.  Returns true when something changed. */
static bool raw_set(qs_txn *t, uint32_t *count, uint32_t key_id, const uint8_t *newv, uint32_t newlen) {
    uint32_t n = *count, i = 0;
    while (i < n && t->raw[i].key_id < key_id) i++;
    bool present = i < n && t->raw[i].key_id == key_id;
    if (!newv) {
        if (!present) return false;
        memmove(t->raw + i, t->raw + i + 1, (n - i - 1) * sizeof *t->raw);
        *count = n - 1;
        return true;
    }
    if (present) {
        if (t->raw[i].len == newlen && memcmp(t->raw[i].p, newv, newlen) == 0) return false;
        t->raw[i].p = newv;
        t->raw[i].len = newlen;
        return true;
    }
    if (n + 1 > QUIVER_PROPERTIES_PER_ENTITY_COUNT_MAX) return false;
    if (t->raw_cap < n + 1) {
        t->raw_cap = n + 16;
        t->raw = realloc(t->raw, t->raw_cap * sizeof *t->raw);
        if (!t->raw) QUIVER_FATAL("out of memory");
    }
    memmove(t->raw + i + 1, t->raw + i, (n - i) * sizeof *t->raw);
    t->raw[i].key_id = key_id;
    t->raw[i].p = newv;
    t->raw[i].len = newlen;
    *count = n + 1;
    return true;
}

int qs_node_set_prop(qs_txn *t, uint32_t graph, uint64_t node_id, uint32_t key_id, qv_value value, bool *changed) {
    *changed = false;
    const qs_gschema *g = qs_catalog_find(cat_read(t), graph);
    if (!g) return QS_NOT_FOUND;
    if (key_id >= g->k[QS_SCHEMA_PROPKEY].count) return QS_INVALID;
    qbuf_reset(&t->val);
    if (value.type != QV_NULL) {
        int rc = qp_encode_value(&t->val, value, 0);
        if (rc != QS_OK) return rc;
    }
    node_parts np;
    int rc = node_read(t, graph, node_id, &np);
    if (rc != QS_OK) return rc;
    /* old value slice, for the index */
    const uint8_t *oldp = NULL;
    uint32_t oldlen = 0;
    for (uint32_t i = 0; i < np.prop_count; i++)
        if (t->raw[i].key_id == key_id) {
            oldp = t->raw[i].p;
            oldlen = t->raw[i].len;
        }
    uint32_t pc = np.prop_count;
    if (value.type != QV_NULL && !oldp && pc + 1 > QUIVER_PROPERTIES_PER_ENTITY_COUNT_MAX) {
        qs_val_done(&np.val);
        return QS_LIMIT;
    }
    if (!raw_set(t, &pc, key_id, value.type == QV_NULL ? NULL : t->val.p, (uint32_t)t->val.len)) {
        qs_val_done(&np.val);
        return QS_OK;
    }
    node_write(t, graph, node_id, np.labels, np.label_count, t->raw, pc);
    if (g->index_count) {
        for (uint32_t l = 0; l < np.label_count; l++) {
            if (!qs_gschema_has_index(g, np.labels[l], key_id)) continue;
            if (oldp && index_key(t, graph, np.labels[l], key_id, oldp, oldlen, node_id))
                del(t, QS_CF_PROP_INDEX, t->k.p, t->k.len);
            if (value.type != QV_NULL && index_key(t, graph, np.labels[l], key_id, t->val.p, t->val.len, node_id))
                put(t, QS_CF_PROP_INDEX, t->k.p, t->k.len, "", 0);
        }
    }
    qs_val_done(&np.val);
    *changed = true;
    return QS_OK;
}

static int node_label(qs_txn *t, uint32_t graph, uint64_t node_id, uint32_t label_id, bool add, bool *changed) {
    *changed = false;
    const qs_gschema *g = qs_catalog_find(cat_read(t), graph);
    if (!g) return QS_NOT_FOUND;
    if (label_id >= g->k[QS_SCHEMA_LABEL].count) return QS_INVALID;
    node_parts np;
    int rc = node_read(t, graph, node_id, &np);
    if (rc != QS_OK) return rc;
    uint32_t i = 0;
    while (i < np.label_count && np.labels[i] < label_id) i++;
    bool present = i < np.label_count && np.labels[i] == label_id;
    if (present == add) {
        qs_val_done(&np.val);
        return QS_OK;
    }
    if (add) {
        if (np.label_count >= QUIVER_LABELS_PER_NODE_COUNT_MAX) {
            qs_val_done(&np.val);
            return QS_LIMIT;
        }
        memmove(np.labels + i + 1, np.labels + i, (np.label_count - i) * sizeof(uint32_t));
        np.labels[i] = label_id;
        np.label_count++;
    } else {
        memmove(np.labels + i, np.labels + i + 1, (np.label_count - i - 1) * sizeof(uint32_t));
        np.label_count--;
    }
    node_write(t, graph, node_id, np.labels, np.label_count, t->raw, np.prop_count);
    uint8_t k[16];
    qk_label(k, graph, label_id, node_id);
    if (add) put(t, QS_CF_LABEL_INDEX, k, 16, "", 0);
    else del(t, QS_CF_LABEL_INDEX, k, 16);
    cnt_add(t, qs_counts_find(t->db, graph), QK_CNT_LABEL, label_id, add ? 1 : -1);
    if (g->index_count) index_entries(t, g, graph, node_id, label_id, t->raw, np.prop_count, add);
    qs_val_done(&np.val);
    *changed = true;
    return QS_OK;
}

int qs_node_add_label(qs_txn *t, uint32_t graph, uint64_t node_id, uint32_t label_id, bool *changed) {
    return node_label(t, graph, node_id, label_id, true, changed);
}

int qs_node_remove_label(qs_txn *t, uint32_t graph, uint64_t node_id, uint32_t label_id, bool *changed) {
    return node_label(t, graph, node_id, label_id, false, changed);
}

static bool has_adjacency(qs_txn *t, int cf, uint32_t graph, uint64_t node) {
    uint8_t lo[12], hi[12];
    qk_entity(lo, graph, node);
    memcpy(hi, lo, 12);
    size_t hn = qk_prefix_successor(hi, 12);
    qs_raw_iter r;
    qs_raw_open(&r, &t->view, cf, lo, 12, hn ? hi : NULL, hn);
    const uint8_t *k;
    size_t kl;
    bool any = qs_raw_next(&r, &k, &kl, NULL, NULL);
    qs_raw_close(&r);
    return any;
}

int qs_node_delete(qs_txn *t, uint32_t graph, uint64_t node_id) {
    const qs_gschema *g = qs_catalog_find(cat_read(t), graph);
    if (!g) return QS_NOT_FOUND;
    node_parts np;
    int rc = node_read(t, graph, node_id, &np);
    if (rc != QS_OK) return rc;
    if (has_adjacency(t, QS_CF_ADJ_OUT, graph, node_id) || has_adjacency(t, QS_CF_ADJ_IN, graph, node_id)) {
        qs_val_done(&np.val);
        return QS_INVALID;
    }
    qs_gcount *c = qs_counts_find(t->db, graph);
    uint8_t k[16];
    live_forget(t->db, graph, node_id);
    del(t, QS_CF_NODES, k, qk_entity(k, graph, node_id));
    cnt_add(t, c, QK_CNT_NODES, 0, -1);
    for (uint32_t i = 0; i < np.label_count; i++) {
        del(t, QS_CF_LABEL_INDEX, k, qk_label(k, graph, np.labels[i], node_id));
        cnt_add(t, c, QK_CNT_LABEL, np.labels[i], -1);
        if (g->index_count) index_entries(t, g, graph, node_id, np.labels[i], t->raw, np.prop_count, false);
    }
    qs_val_done(&np.val);
    return QS_OK;
}

/* ---- relationships ---- */

int qs_edge_create(qs_txn *t, uint32_t graph, uint32_t type_id, uint64_t src_id, uint64_t dst_id,
                   const qv_props *props, uint64_t *edge_id) {
    const qs_gschema *g = qs_catalog_find(cat_read(t), graph);
    if (!g) return QS_NOT_FOUND;
    if (type_id >= g->k[QS_SCHEMA_RELTYPE].count) return QS_INVALID;
    if (!node_live(t, graph, src_id) || !node_live(t, graph, dst_id)) return QS_NOT_FOUND;
    uint32_t pc;
    int rc = encode_props(t, g, props, &pc);
    if (rc != QS_OK) return rc;
    qs_gcount *c = qs_counts_find(t->db, graph);
    uint64_t id = c->next_edge;
    cnt_add(t, c, QK_CNT_NEXT_EDGE, 0, 1);
    cnt_add(t, c, QK_CNT_EDGES, 0, 1);
    qbuf_reset(&t->tmp);
    qp_edge_encode(&t->tmp, type_id, src_id, dst_id, t->raw, pc);
    uint8_t k[32];
    put(t, QS_CF_EDGES, k, qk_entity(k, graph, id), t->tmp.p, t->tmp.len);
    put(t, QS_CF_ADJ_OUT, k, qk_adj(k, graph, src_id, type_id, dst_id, id), "", 0);
    put(t, QS_CF_ADJ_IN, k, qk_adj(k, graph, dst_id, type_id, src_id, id), "", 0);
    *edge_id = id;
    return QS_OK;
}

int qs_edge_set_prop(qs_txn *t, uint32_t graph, uint64_t edge_id, uint32_t key_id, qv_value value, bool *changed) {
    *changed = false;
    const qs_gschema *g = qs_catalog_find(cat_read(t), graph);
    if (!g) return QS_NOT_FOUND;
    if (key_id >= g->k[QS_SCHEMA_PROPKEY].count) return QS_INVALID;
    qbuf_reset(&t->val);
    if (value.type != QV_NULL) {
        int rc = qp_encode_value(&t->val, value, 0);
        if (rc != QS_OK) return rc;
    }
    uint8_t k[12];
    qs_val val;
    if (!qs_view_get(&t->view, QS_CF_EDGES, k, qk_entity(k, graph, edge_id), &val)) return QS_NOT_FOUND;
    uint32_t type_id, pc;
    uint64_t src, dst;
    size_t off;
    if (qp_edge_head(val.p, val.len, &type_id, &src, &dst, &off) != QS_OK ||
        qp_props_raw(val.p + off, val.len - off, &t->raw, &t->raw_cap, &pc) != QS_OK)
        QUIVER_FATAL("corrupt edge record (graph %u edge %llu)", graph, (unsigned long long)edge_id);
    bool had = false;
    for (uint32_t i = 0; i < pc; i++)
        if (t->raw[i].key_id == key_id) had = true;
    if (value.type != QV_NULL && !had && pc + 1 > QUIVER_PROPERTIES_PER_ENTITY_COUNT_MAX) {
        qs_val_done(&val);
        return QS_LIMIT;
    }
    if (raw_set(t, &pc, key_id, value.type == QV_NULL ? NULL : t->val.p, (uint32_t)t->val.len)) {
        qbuf_reset(&t->tmp);
        qp_edge_encode(&t->tmp, type_id, src, dst, t->raw, pc);
        put(t, QS_CF_EDGES, k, 12, t->tmp.p, t->tmp.len);
        *changed = true;
    }
    qs_val_done(&val);
    return QS_OK;
}

int qs_edge_delete(qs_txn *t, uint32_t graph, uint64_t edge_id) {
    const qs_gschema *g = qs_catalog_find(cat_read(t), graph);
    if (!g) return QS_NOT_FOUND;
    uint8_t k[32];
    qs_val val;
    if (!qs_view_get(&t->view, QS_CF_EDGES, k, qk_entity(k, graph, edge_id), &val)) return QS_NOT_FOUND;
    uint32_t type_id;
    uint64_t src, dst;
    size_t off;
    if (qp_edge_head(val.p, val.len, &type_id, &src, &dst, &off) != QS_OK)
        QUIVER_FATAL("corrupt edge record (graph %u edge %llu)", graph, (unsigned long long)edge_id);
    qs_val_done(&val);
    del(t, QS_CF_EDGES, k, qk_entity(k, graph, edge_id));
    del(t, QS_CF_ADJ_OUT, k, qk_adj(k, graph, src, type_id, dst, edge_id));
    del(t, QS_CF_ADJ_IN, k, qk_adj(k, graph, dst, type_id, src, edge_id));
    cnt_add(t, qs_counts_find(t->db, graph), QK_CNT_EDGES, 0, -1);
    return QS_OK;
}

/* ---- indexes ---- */

int qs_index_create(qs_txn *t, uint32_t graph, uint32_t label_id, uint32_t key_id) {
    const qs_gschema *g = qs_catalog_find(cat_read(t), graph);
    if (!g) return QS_NOT_FOUND;
    if (label_id >= g->k[QS_SCHEMA_LABEL].count || key_id >= g->k[QS_SCHEMA_PROPKEY].count) return QS_INVALID;
    if (qs_gschema_has_index(g, label_id, key_id)) return QS_EXISTS;
    qs_gschema_index_add(gs_write(t, graph), label_id, key_id);
    qs_undo *u = undo_push(t, U_INDEX_ADD, graph);
    u->a = label_id;
    u->b = key_id;
    uint8_t k[16];
    put(t, QS_CF_SCHEMA, k, qk_schema_index(k, graph, label_id, key_id), "", 0);

    /* node ids with the label first, then one record read per node */
    qbuf ids = {0};
    uint8_t lo[8], hi[8];
    qk_put_u32(lo, graph);
    qk_put_u32(lo + 4, label_id);
    memcpy(hi, lo, 8);
    size_t hn = qk_prefix_successor(hi, 8);
    qs_raw_iter r;
    qs_raw_open(&r, &t->view, QS_CF_LABEL_INDEX, lo, 8, hn ? hi : NULL, hn);
    const uint8_t *key;
    size_t kl;
    while (qs_raw_next(&r, &key, &kl, NULL, NULL)) qbuf_add(&ids, key + 8, 8);
    qs_raw_close(&r);
    for (size_t off = 0; off < ids.len; off += 8) {
        uint64_t node = qk_get_u64(ids.p + off);
        uint8_t nk[12];
        qs_val val;
        if (!qs_view_get(&t->view, QS_CF_NODES, nk, qk_entity(nk, graph, node), &val))
            QUIVER_FATAL("label_index entry without node (graph %u node %llu)", graph, (unsigned long long)node);
        uint32_t labels[QUIVER_LABELS_PER_NODE_COUNT_MAX], lc;
        size_t poff;
        const uint8_t *vp;
        size_t vl;
        if (qp_node_labels(val.p, val.len, labels, &lc, &poff) != QS_OK)
            QUIVER_FATAL("corrupt node record (graph %u node %llu)", graph, (unsigned long long)node);
        int rc = qp_props_find(val.p + poff, val.len - poff, key_id, &vp, &vl);
        if (rc == QS_CORRUPT) QUIVER_FATAL("corrupt node record (graph %u node %llu)", graph, (unsigned long long)node);
        if (rc == QS_OK && index_key(t, graph, label_id, key_id, vp, vl, node))
            put(t, QS_CF_PROP_INDEX, t->k.p, t->k.len, "", 0);
        qs_val_done(&val);
    }
    qbuf_free(&ids);
    return QS_OK;
}

int qs_index_drop(qs_txn *t, uint32_t graph, uint32_t label_id, uint32_t key_id) {
    const qs_gschema *g = qs_catalog_find(cat_read(t), graph);
    if (!g || !qs_gschema_has_index(g, label_id, key_id)) return QS_NOT_FOUND;
    uint8_t p[16];
    delete_prefix(t, QS_CF_PROP_INDEX, p, qk_prop_prefix(p, graph, label_id, key_id));
    del(t, QS_CF_SCHEMA, p, qk_schema_index(p, graph, label_id, key_id));
    qs_gschema_index_remove(gs_write(t, graph), label_id, key_id);
    qs_undo *u = undo_push(t, U_INDEX_DROP, graph);
    u->a = label_id;
    u->b = key_id;
    return QS_OK;
}

/* ---- meta ---- */

static bool meta_key_ok(const void *key, size_t len) {
    return len > 0 && len <= QS_META_KEY_SIZE_MAX_BYTES && !(len >= 2 && memcmp(key, QK_META_RESERVED, 2) == 0);
}

int qs_meta_put(qs_txn *t, const void *key, size_t key_len, const void *val, size_t val_len) {
    if (!meta_key_ok(key, key_len)) return QS_INVALID;
    put(t, QS_CF_DEFAULT, key, key_len, val, val_len);
    return QS_OK;
}

int qs_meta_delete(qs_txn *t, const void *key, size_t key_len) {
    if (!meta_key_ok(key, key_len)) return QS_INVALID;
    del(t, QS_CF_DEFAULT, key, key_len);
    return QS_OK;
}
