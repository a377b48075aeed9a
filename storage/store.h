/*
 * store.h -- internal structures shared by the storage files (db.c, view.c,
 * txn.c, schema.c, digest.c).  Not part of the module's interface.
 *
 * Schema cache (schema.c): the committed schema of every graph lives in an
 * immutable, reference-counted qs_catalog on the qs_db.  A snapshot view
 * takes a reference to the catalog that was current when its RocksDB
 * snapshot was taken (both under db->mu), so its schema always matches its
 * data and lookups never touch RocksDB nor take a lock.  The apply thread's
 * transaction copies the catalog on its first schema change (copy-on-write,
 * per graph) and publishes the copy at commit.  Schema changes are rare
 * after warm-up, so the copying cost is paid seldom.
 *
 * Counters (next ids, node/edge/label counts) are kept in memory for the
 * apply thread only (qs_gcount), written into the batch at commit for the
 * graphs that changed; snapshot views read them from RocksDB.  Every change
 * to them, and to the transaction's schema copy, is recorded in an undo log
 * so savepoint rollback restores them exactly.
 */
#ifndef QUIVER_STORAGE_STORE_H
#define QUIVER_STORAGE_STORE_H

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>

#include "graph.h"
#include "keys.h"
#include "props.h"

#define QS_FORMAT_VERSION 1u
#define QS_MARKER_FILE "QUIVER"
#define QS_MARKER_TEXT "quiver-storage 1\n"

/* ---- schema cache ---- */
typedef struct qs_kindtab {
    uint32_t count, cap;
    char **names;       /* NUL-terminated copies */
    uint32_t *lens;
    uint32_t *slots;    /* open addressing: id + 1, 0 = empty */
    uint32_t slot_cap;  /* power of two */
} qs_kindtab;

typedef struct qs_gschema {
    atomic_int refs;
    uint64_t owner_seq;  /* txn seq that may still mutate it; 0 = published */
    uint32_t graph_id;
    char *name;
    uint32_t name_len;
    qs_kindtab k[3];
    uint32_t index_count, index_cap;
    uint64_t *indexes;   /* (label << 32 | key), ascending */
} qs_gschema;

typedef struct qs_catalog {
    atomic_int refs;
    uint64_t owner_seq;
    uint32_t count, cap;
    qs_gschema **graphs;  /* ascending graph id */
} qs_catalog;

qs_catalog *qs_catalog_new(void);
void qs_catalog_unref(qs_catalog *c);
qs_catalog *qs_catalog_ref(qs_catalog *c);
qs_catalog *qs_catalog_copy(const qs_catalog *c, uint64_t owner_seq); /* shallow, refs taken */
qs_gschema *qs_catalog_find(const qs_catalog *c, uint32_t graph);
qs_gschema *qs_catalog_find_name(const qs_catalog *c, const char *name, size_t len);
void qs_catalog_insert(qs_catalog *c, qs_gschema *g);  /* takes the reference */
qs_gschema *qs_catalog_remove(qs_catalog *c, uint32_t graph); /* returns the reference */
/* Replace graph's schema by a private copy owned by owner_seq (if not yet). */
qs_gschema *qs_catalog_mutable(qs_catalog *c, uint32_t graph, uint64_t owner_seq);

qs_gschema *qs_gschema_new(uint32_t graph, const char *name, size_t len, uint64_t owner_seq);
void qs_gschema_unref(qs_gschema *g);
int64_t qs_gschema_lookup(const qs_gschema *g, int kind, const char *name, size_t len); /* -1 absent */
uint32_t qs_gschema_add(qs_gschema *g, int kind, const char *name, size_t len);
void qs_gschema_pop(qs_gschema *g, int kind);
bool qs_gschema_has_index(const qs_gschema *g, uint32_t label, uint32_t key);
void qs_gschema_index_add(qs_gschema *g, uint32_t label, uint32_t key);
void qs_gschema_index_remove(qs_gschema *g, uint32_t label, uint32_t key);
/* Range [*first, *end) of indexes on label. */
void qs_gschema_label_indexes(const qs_gschema *g, uint32_t label, uint32_t *first, uint32_t *end);

/* ---- counters (apply thread only) ---- */
typedef struct qs_gcount {
    uint32_t graph;
    bool dirty;
    uint64_t next_node, next_edge, nodes, edges;
    uint32_t label_cap;
    uint64_t *labels;
    uint8_t *label_dirty;
} qs_gcount;

/* ---- shared read snapshots ----
 * Views opened between two commits see the same state, so they share one
 * RocksDB snapshot (creating one takes RocksDB's DB mutex, a point of
 * contention with many reader threads).  The db holds a reference to the
 * current one until the next commit replaces it. */
typedef struct qs_snap {
    atomic_int refs;
    const rocksdb_snapshot_t *snap;
    rocksdb_readoptions_t *ro;   /* read-only after creation: shared by threads */
    qs_catalog *cat;
    uint64_t applied;
} qs_snap;

void qs_snap_unref(qs_db *db, qs_snap *s);
/* Under db->mu: the shared snapshot of the committed state, created if
 * needed.  Commits make sure one exists before writing outside the lock,
 * so readers arriving during the write reuse it and never take a RocksDB
 * snapshot that includes data whose schema and applied index are not
 * published yet. */
qs_snap *qs_snap_current(qs_db *db);
/* Under db->mu: forget the current shared snapshot (state changed); returns
 * the reference to drop after unlocking. */
qs_snap *qs_snap_detach(qs_db *db);

/* ---- the database ---- */
struct qs_db {
    rocksdb_t *rdb;
    rocksdb_column_family_handle_t *cf[QS_CF_COUNT];
    rocksdb_options_t *opts;
    rocksdb_options_t *cf_opts[QS_CF_COUNT];
    rocksdb_block_based_table_options_t *bbo_point, *bbo_scan;
    rocksdb_cache_t *cache;
    rocksdb_readoptions_t *ro_plain;   /* apply thread reads (latest) */
    rocksdb_writeoptions_t *wo;        /* WAL off */
    char *dir;
    uint8_t uuid[16];

    pthread_mutex_t mu;                /* shared snapshot + catalog + applied, published together */
    qs_catalog *committed;             /* under mu */
    qs_snap *shared;                   /* under mu; NULL until a view needs it */
    _Atomic uint64_t applied;

    /* apply thread only */
    uint32_t next_graph;
    uint32_t count_n, count_cap;
    qs_gcount **counts;                /* ascending graph id */
    uint64_t txn_seq;
    qs_txn *open_txn;
    /* Nodes known to exist (apply thread only), so relationship creation
     * does not read both end nodes from RocksDB every time: direct-mapped,
     * filled by node creation and successful lookups, a slot cleared when
     * its node is deleted, everything invalidated at once (generation bump)
     * on abort, savepoint rollback and graph delete. */
    struct qs_live_slot { uint64_t node; uint32_t graph; uint32_t gen; } *live;
    uint32_t live_gen;
};

#define QS_LIVE_CACHE_SLOTS (1u << 18)

qs_gcount *qs_counts_find(qs_db *db, uint32_t graph);
qs_gcount *qs_counts_add(qs_db *db, uint32_t graph);
qs_gcount *qs_counts_remove(qs_db *db, uint32_t graph);
void qs_counts_reinsert(qs_db *db, qs_gcount *c);
void qs_gcount_free(qs_gcount *c);
void qs_gcount_label_reserve(qs_gcount *c, uint32_t label);

/* ---- views ---- */
struct qs_view {
    qs_db *db;
    qs_txn *txn;                      /* non-NULL: the transaction's view */
    qs_snap *sp;                      /* snapshot views: the shared snapshot */
    const rocksdb_snapshot_t *snap;   /* = sp->snap (NULL for a txn view) */
    rocksdb_readoptions_t *ro;        /* = sp->ro */
    qs_catalog *cat;                  /* = sp->cat */
    uint64_t applied;
};

/* A value read through a view; release with qs_val_done. */
typedef struct qs_val {
    const uint8_t *p;
    size_t len;
    rocksdb_pinnableslice_t *pin;
    char *mal;
} qs_val;

bool qs_view_get(qs_view *v, int cf, const uint8_t *key, size_t klen, qs_val *out);
void qs_val_done(qs_val *val);
const qs_catalog *qs_view_catalog(const qs_view *v);
/* Raw iterator over [lo, hi) of one family through the view (sees the
 * transaction's writes for a txn view).  hi may be NULL (no bound). */
typedef struct qs_raw_iter {
    rocksdb_iterator_t *it;
    rocksdb_iterator_t *base;   /* owned by `it` for txn views */
    rocksdb_readoptions_t *ro;
    uint8_t hi[QS_KEY_FIXED_SIZE_MAX_BYTES + 64];
    size_t hi_len;
    uint8_t *hi_heap;
    bool started;
} qs_raw_iter;
void qs_raw_open(qs_raw_iter *r, qs_view *v, int cf, const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len);
/* Next key in range: true with key/value, false at the end. */
bool qs_raw_next(qs_raw_iter *r, const uint8_t **key, size_t *klen, const uint8_t **val, size_t *vlen);
void qs_raw_close(qs_raw_iter *r);

/* ---- transactions ---- */
typedef struct qs_undo {
    uint8_t op;
    uint8_t field;
    uint32_t graph;
    uint32_t a, b;
    uint64_t old;
    void *ptr;
    void *ptr2;
} qs_undo;

typedef struct qs_save {
    size_t undo_len;      /* undo log length when the savepoint was set */
    size_t log_len;       /* write log length when the savepoint was set */
    uint32_t rocks_depth; /* RocksDB savepoints on the batch, this one included */
} qs_save;

struct qs_txn {
    qs_db *db;
    uint64_t seq;
    rocksdb_writebatch_wi_t *wb;
    qs_view view;
    qs_catalog *base;   /* committed catalog at begin (ref) */
    qs_catalog *cat;    /* working copy after first schema change, else NULL */
    qs_undo *undo;
    size_t undo_len, undo_cap;
    qs_save *saves;
    size_t save_len, save_cap;
    uint32_t rocks_depth; /* savepoints set on the WriteBatchWithIndex and not yet rolled back */
    q_arena arena;        /* per-operation scratch (decoded values) */
    uint32_t next_graph_at_begin;
    qbuf log;           /* every write in order: cf, op, key, value (see txn.c) */
    qbuf k, val, tmp;   /* scratch */
    qp_raw *raw;
    uint32_t raw_cap;
};

/* Write the changed counters into the batch (commit, and digests through
 * a transaction view).  clear_dirty: forget which ones changed. */
void qs_txn_write_counters(qs_txn *t, bool clear_dirty);

void qs_fatal_rocks(const char *what, char *err);
#define QS_CHECK(what, err) do { if (err) qs_fatal_rocks((what), (err)); } while (0)

#endif
