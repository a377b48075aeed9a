/*
 * db.c -- opening, checking, flushing and closing the RocksDB database.
 *
 * A Quiver data directory holds a RocksDB database with the eight column
 * families of DESIGN.md 4 plus a marker file named QUIVER ("quiver-storage
 * 1").  The marker is written before RocksDB creates anything, so a
 * directory is recognised without opening RocksDB: a non-empty directory
 * without the marker is someone else's and is refused, naming a file in it.
 * A directory with the marker is opened only if RocksDB lists exactly our
 * column families and the default family holds our format key; RocksDB's
 * own errors (a damaged MANIFEST, a missing SST) are reported with its
 * message and the manifest's name, plus what to do.
 *
 * Durability: state-machine writes skip RocksDB's WAL (the raft log is the
 * WAL), so what survives a crash is what was flushed.  atomic_flush makes
 * RocksDB's automatic flushes cover every family at once; for manual
 * flushes the 7.8 C API has no multi-family flush (rocksdb_flush_cf flushes
 * one family, even with atomic_flush), so qs_flush asks for a checkpoint:
 * RocksDB flushes all families atomically before listing live files
 * (DBImpl::FlushForGetLiveFiles), and the checkpoint itself (hard links) is
 * removed at once.  Close relies on the same path plus RocksDB's atomic
 * flush at shutdown.
 *
 * Counters (store.h) are loaded into memory here at open; the schema cache
 * is built from the schema family.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/files.h"
#include "../common/limits.h"
#include "store.h"

#define QS_BLOCK_CACHE_SIZE_BYTES_DEFAULT (256ull * 1024 * 1024)
#define QS_FLUSH_TMP_DIR "flush.tmp"

void qs_fatal_rocks(const char *what, char *err) {
    QUIVER_FATAL("RocksDB error during %s: %s", what, err);
}

static void errf(char *err, size_t n, const char *fmt, ...) {
    if (!err || n == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

/* ---- counters ---- */

static uint32_t counts_pos(qs_db *db, uint32_t graph, bool *found) {
    uint32_t lo = 0, hi = db->count_n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (db->counts[mid]->graph < graph) lo = mid + 1;
        else hi = mid;
    }
    *found = lo < db->count_n && db->counts[lo]->graph == graph;
    return lo;
}

qs_gcount *qs_counts_find(qs_db *db, uint32_t graph) {
    bool found;
    uint32_t pos = counts_pos(db, graph, &found);
    return found ? db->counts[pos] : NULL;
}

void qs_counts_reinsert(qs_db *db, qs_gcount *c) {
    bool found;
    uint32_t pos = counts_pos(db, c->graph, &found);
    QUIVER_ASSERT(!found);
    if (db->count_n == db->count_cap) {
        db->count_cap = db->count_cap ? db->count_cap * 2 : 8;
        db->counts = realloc(db->counts, db->count_cap * sizeof(qs_gcount *));
        if (!db->counts) QUIVER_FATAL("out of memory");
    }
    memmove(db->counts + pos + 1, db->counts + pos, (db->count_n - pos) * sizeof(qs_gcount *));
    db->counts[pos] = c;
    db->count_n++;
}

qs_gcount *qs_counts_add(qs_db *db, uint32_t graph) {
    qs_gcount *c = calloc(1, sizeof *c);
    if (!c) QUIVER_FATAL("out of memory");
    c->graph = graph;
    qs_counts_reinsert(db, c);
    return c;
}

qs_gcount *qs_counts_remove(qs_db *db, uint32_t graph) {
    bool found;
    uint32_t pos = counts_pos(db, graph, &found);
    if (!found) return NULL;
    qs_gcount *c = db->counts[pos];
    memmove(db->counts + pos, db->counts + pos + 1, (db->count_n - pos - 1) * sizeof(qs_gcount *));
    db->count_n--;
    return c;
}

void qs_gcount_free(qs_gcount *c) {
    if (!c) return;
    free(c->labels);
    free(c->label_dirty);
    free(c);
}

void qs_gcount_label_reserve(qs_gcount *c, uint32_t label) {
    if (label < c->label_cap) return;
    uint32_t cap = c->label_cap ? c->label_cap : 16;
    while (cap <= label) cap *= 2;
    c->labels = realloc(c->labels, cap * sizeof(uint64_t));
    c->label_dirty = realloc(c->label_dirty, cap);
    if (!c->labels || !c->label_dirty) QUIVER_FATAL("out of memory");
    memset(c->labels + c->label_cap, 0, (cap - c->label_cap) * sizeof(uint64_t));
    memset(c->label_dirty + c->label_cap, 0, cap - c->label_cap);
    c->label_cap = cap;
}

/* ---- helpers ---- */

static void rm_rf(const char *path) {
    if (q_remove_tree(path) != 0) QUIVER_FATAL("cannot remove %s: %s", path, strerror(errno));
}

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) QUIVER_FATAL("out of memory");
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void fsync_path(const char *path) {
    if (q_fsync_path(path) != 0) QUIVER_FATAL("fsync %s: %s", path, strerror(errno));
}

static bool write_marker(const char *dir, char *err, size_t errn) {
    char *path = path_join(dir, QS_MARKER_FILE);
    FILE *f = fopen(path, "w");
    if (!f) {
        errf(err, errn, "%s: cannot create the Quiver marker file: %s", path, strerror(errno));
        free(path);
        return false;
    }
    bool ok = fputs(QS_MARKER_TEXT, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        errf(err, errn, "%s: cannot write the Quiver marker file: %s", path, strerror(errno));
        free(path);
        return false;
    }
    fsync_path(path);
    fsync_path(dir);
    free(path);
    return true;
}

/* Name of the manifest CURRENT points to, for error messages. */
static void current_manifest(const char *dir, char *out, size_t n) {
    char *path = path_join(dir, "CURRENT");
    snprintf(out, n, "CURRENT");
    FILE *f = fopen(path, "r");
    if (f) {
        char line[256];
        if (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (line[0]) snprintf(out, n, "%s (named by CURRENT)", line);
        }
        fclose(f);
    }
    free(path);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct dirlist {
    char **names;
    size_t count, cap;
} dirlist;

static bool list_dir(const char *dir, dirlist *l) {
    DIR *d = opendir(dir);
    if (!d) return false;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (l->count == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 16;
            l->names = realloc(l->names, l->cap * sizeof(char *));
            if (!l->names) QUIVER_FATAL("out of memory");
        }
        l->names[l->count] = strdup(e->d_name);
        if (!l->names[l->count]) QUIVER_FATAL("out of memory");
        l->count++;
    }
    closedir(d);
    if (l->count) qsort(l->names, l->count, sizeof(char *), cmp_str);
    return true;
}

static bool dirlist_has(const dirlist *l, const char *name) {
    for (size_t i = 0; i < l->count; i++)
        if (!strcmp(l->names[i], name)) return true;
    return false;
}

static void dirlist_free(dirlist *l) {
    for (size_t i = 0; i < l->count; i++) free(l->names[i]);
    free(l->names);
}

/* ---- loading state ---- */

static bool db_get(qs_db *db, int cf, const void *key, size_t klen, qbuf *out) {
    char *err = NULL;
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(db->rdb, db->ro_plain, db->cf[cf], key, klen, &err);
    QS_CHECK("get at open", err);
    if (!ps) return false;
    size_t vlen;
    const char *v = rocksdb_pinnableslice_value(ps, &vlen);
    qbuf_reset(out);
    qbuf_add(out, v, vlen);
    rocksdb_pinnableslice_destroy(ps);
    return true;
}

static void load_state(qs_db *db) {
    qbuf b = {0};
    if (db_get(db, QS_CF_DEFAULT, QK_UUID, strlen(QK_UUID), &b) && b.len == 16) memcpy(db->uuid, b.p, 16);
    uint64_t applied = 0;
    if (db_get(db, QS_CF_DEFAULT, QK_APPLIED, strlen(QK_APPLIED), &b) && b.len == 8) applied = qk_get_u64(b.p);
    atomic_store(&db->applied, applied);
    db->next_graph = 0;
    if (db_get(db, QS_CF_DEFAULT, QK_NEXT_GRAPH, strlen(QK_NEXT_GRAPH), &b) && b.len == 4) db->next_graph = qk_get_u32(b.p);
    qbuf_free(&b);

    qs_catalog *cat = qs_catalog_new();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db->rdb, db->ro_plain, db->cf[QS_CF_DEFAULT]);
    size_t gl = strlen(QK_GNAME);
    for (rocksdb_iter_seek(it, QK_GNAME, gl); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < gl || memcmp(k, QK_GNAME, gl) != 0) break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        if (vl != 4) QUIVER_FATAL("corrupt graph name record in %s (default family)", db->dir);
        uint32_t g = qk_get_u32(v);
        qs_catalog_insert(cat, qs_gschema_new(g, k + gl, kl - gl, 0));
        qs_counts_add(db, g);
    }
    for (rocksdb_iter_seek(it, QK_GCOUNT, 3); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        if (kl < 3 || memcmp(k, QK_GCOUNT, 3) != 0) break;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        if (kl < 8 || vl != 8) QUIVER_FATAL("corrupt counter record in %s (default family)", db->dir);
        qs_gcount *c = qs_counts_find(db, qk_get_u32(k + 3));
        if (!c) QUIVER_FATAL("counter of unknown graph %u in %s", qk_get_u32(k + 3), db->dir);
        uint64_t x = qk_get_u64(v);
        switch (k[7]) {
        case QK_CNT_NEXT_NODE: c->next_node = x; break;
        case QK_CNT_NEXT_EDGE: c->next_edge = x; break;
        case QK_CNT_NODES: c->nodes = x; break;
        case QK_CNT_EDGES: c->edges = x; break;
        case QK_CNT_LABEL:
            if (kl != 12) QUIVER_FATAL("corrupt label counter in %s", db->dir);
            qs_gcount_label_reserve(c, qk_get_u32(k + 8));
            c->labels[qk_get_u32(k + 8)] = x;
            break;
        default: QUIVER_FATAL("unknown counter record in %s", db->dir);
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    QS_CHECK("loading counters", err);
    rocksdb_iter_destroy(it);

    it = rocksdb_create_iterator_cf(db->rdb, db->ro_plain, db->cf[QS_CF_SCHEMA]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (kl < 5) QUIVER_FATAL("corrupt schema key in %s", db->dir);
        qs_gschema *g = qs_catalog_find(cat, qk_get_u32(k));
        if (!g) QUIVER_FATAL("schema record of unknown graph %u in %s", qk_get_u32(k), db->dir);
        if (k[4] == QK_SCH_NAME) {
            if (kl != 10 || k[5] > 2) QUIVER_FATAL("corrupt schema key in %s", db->dir);
            uint32_t id = qk_get_u32(k + 6);
            if (id != g->k[k[5]].count) QUIVER_FATAL("schema ids not dense in %s (graph %u)", db->dir, g->graph_id);
            qs_gschema_add(g, k[5], v, vl);
        } else if (k[4] == QK_SCH_INDEX) {
            if (kl != 13) QUIVER_FATAL("corrupt index key in %s", db->dir);
            qs_gschema_index_add(g, qk_get_u32(k + 5), qk_get_u32(k + 9));
        }
    }
    rocksdb_iter_get_error(it, &err);
    QS_CHECK("loading the schema", err);
    rocksdb_iter_destroy(it);
    db->committed = cat;
}

static void configure(qs_db *db, const qs_options *o, bool fresh) {
    size_t cache = o && o->block_cache_size_bytes ? o->block_cache_size_bytes : QS_BLOCK_CACHE_SIZE_BYTES_DEFAULT;
    db->cache = rocksdb_cache_create_lru(cache);
    db->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(db->opts, fresh);
    rocksdb_options_set_create_missing_column_families(db->opts, fresh);
    rocksdb_options_set_atomic_flush(db->opts, 1);
    rocksdb_options_set_compression(db->opts, rocksdb_lz4_compression);
    rocksdb_options_set_max_background_jobs(db->opts, 2);
    rocksdb_options_set_keep_log_file_num(db->opts, 4);
    rocksdb_options_set_info_log_level(db->opts, 2 /* WARN */);
    rocksdb_options_set_db_write_buffer_size(db->opts, 512ull * 1024 * 1024);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(db->opts, 1);
    rocksdb_options_set_bytes_per_sync(db->opts, 1 << 20);

    /* Point lookups on nodes and edges: whole-key bloom filters. */
    db->bbo_point = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(db->bbo_point, db->cache);
    rocksdb_block_based_options_set_filter_policy(db->bbo_point, rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(db->bbo_point, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(db->bbo_point, 1);
    rocksdb_block_based_options_set_format_version(db->bbo_point, 5);
    /* Scanned families: blooms would not help range scans. */
    db->bbo_scan = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(db->bbo_scan, db->cache);
    rocksdb_block_based_options_set_format_version(db->bbo_scan, 5);

    for (int i = 0; i < QS_CF_COUNT; i++) {
        db->cf_opts[i] = rocksdb_options_create_copy(db->opts);
        bool point = i == QS_CF_NODES || i == QS_CF_EDGES || i == QS_CF_DEFAULT;
        rocksdb_options_set_block_based_table_factory(db->cf_opts[i], point ? db->bbo_point : db->bbo_scan);
        rocksdb_options_set_compression(db->cf_opts[i], rocksdb_lz4_compression);
    }
    db->ro_plain = rocksdb_readoptions_create();
    db->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(db->wo, 1);
}

static void free_handles(qs_db *db) {
    for (int i = 0; i < QS_CF_COUNT; i++) {
        if (db->cf[i]) rocksdb_column_family_handle_destroy(db->cf[i]);
        db->cf[i] = NULL;
    }
    if (db->rdb) rocksdb_close(db->rdb);
    db->rdb = NULL;
    for (int i = 0; i < QS_CF_COUNT; i++)
        if (db->cf_opts[i]) rocksdb_options_destroy(db->cf_opts[i]);
    if (db->opts) rocksdb_options_destroy(db->opts);
    if (db->bbo_point) rocksdb_block_based_options_destroy(db->bbo_point);
    if (db->bbo_scan) rocksdb_block_based_options_destroy(db->bbo_scan);
    if (db->cache) rocksdb_cache_destroy(db->cache);
    if (db->ro_plain) rocksdb_readoptions_destroy(db->ro_plain);
    if (db->wo) rocksdb_writeoptions_destroy(db->wo);
}

static void db_free(qs_db *db) {
    if (db->shared) {
        QUIVER_ASSERT(atomic_load(&db->shared->refs) == 1); /* every view closed */
        qs_snap_unref(db, qs_snap_detach(db));
    }
    free_handles(db);
    for (uint32_t i = 0; i < db->count_n; i++) qs_gcount_free(db->counts[i]);
    free(db->counts);
    qs_catalog_unref(db->committed);
    free(db->live);
    pthread_mutex_destroy(&db->mu);
    free(db->dir);
    free(db);
}

static const char *const advice_damaged =
    "The data directory is damaged: restore it from a backup, or (in a cluster) remove it and let "
    "this node catch up from its peers.";

static int open_in_place(const char *dir, const qs_options *o, qs_db **out, char *err, size_t errn);

/* A new database is created in DIR.creating and renamed into place once
 * RocksDB, its column families, the marker and the uuid are on disk: a
 * process killed during creation (a SIGTERM in the first milliseconds of a
 * node's first start) leaves DIR.creating, which the next start removes,
 * never a half-made DIR that later opens refuse as damaged. */
int qs_open(const char *dir, const qs_options *o, qs_db **out, char *err, size_t errn) {
    QUIVER_ASSERT(dir && out);
    bool create = o ? o->create_if_missing : true;
    size_t dir_len = strlen(dir);
    char *creating = malloc(dir_len + sizeof ".creating");
    if (!creating) QUIVER_FATAL("out of memory");
    memcpy(creating, dir, dir_len);
    memcpy(creating + dir_len, ".creating", sizeof ".creating");
    rm_rf(creating);
    struct stat st;
    bool missing = stat(dir, &st) != 0 && errno == ENOENT;
    bool empty = false;
    if (!missing && S_ISDIR(st.st_mode)) {
        dirlist dl = {0};
        if (list_dir(dir, &dl)) empty = dl.count == 0;
        dirlist_free(&dl);
    }
    if (create && (missing || empty)) {
        qs_db *fresh_db = NULL;
        int rc = open_in_place(creating, o, &fresh_db, err, errn);
        if (rc != QS_OK) {
            rm_rf(creating);
            free(creating);
            return rc;
        }
        qs_close(fresh_db);
        if (empty && rmdir(dir) != 0) {
            errf(err, errn, "%s: cannot replace the empty directory: %s", dir, strerror(errno));
            free(creating);
            return QS_INVALID;
        }
        if (rename(creating, dir) != 0) QUIVER_FATAL("%s: cannot move the new database into place: %s", dir, strerror(errno));
        /* The rename is durable once the parent directory is synced. */
        if (q_fsync_parent(dir) != 0) QUIVER_FATAL("%s: cannot sync its parent directory: %s", dir, strerror(errno));
    }
    free(creating);
    return open_in_place(dir, o, out, err, errn);
}

static int open_in_place(const char *dir, const qs_options *o, qs_db **out, char *err, size_t errn) {
    QUIVER_ASSERT(dir && out);
    *out = NULL;
    if (err && errn) err[0] = 0;
    bool create = o ? o->create_if_missing : true;
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT) {
            errf(err, errn, "%s: %s", dir, strerror(errno));
            return QS_INVALID;
        }
        if (!create) {
            errf(err, errn, "%s: no such directory (no Quiver database here)", dir);
            return QS_NOT_FOUND;
        }
        if (mkdir(dir, 0755) != 0) {
            errf(err, errn, "%s: cannot create the data directory: %s", dir, strerror(errno));
            return QS_INVALID;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        errf(err, errn, "%s: not a directory; give a directory for the data", dir);
        return QS_INVALID;
    }

    dirlist dl = {0};
    if (!list_dir(dir, &dl)) {
        errf(err, errn, "%s: cannot list the directory: %s", dir, strerror(errno));
        return QS_INVALID;
    }
    bool has_marker = dirlist_has(&dl, QS_MARKER_FILE);
    bool has_current = dirlist_has(&dl, "CURRENT");
    bool fresh = false;
    int rc = QS_OK;
    if (dl.count == 0) {
        fresh = true;
    } else if (!has_marker) {
        if (has_current)
            errf(err, errn, "%s/CURRENT: this directory holds a RocksDB database that Quiver did not create "
                 "(no %s marker file); refusing to touch it. Choose another data directory.", dir, QS_MARKER_FILE);
        else
            errf(err, errn, "%s/%s: this directory holds files that are not a Quiver database (no %s marker "
                 "file); refusing to touch them. Choose an empty or new data directory, or move the files away.",
                 dir, dl.names[0], QS_MARKER_FILE);
        rc = QS_CORRUPT;
    } else {
        char *mp = path_join(dir, QS_MARKER_FILE);
        char buf[64] = {0};
        FILE *f = fopen(mp, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        if (n != strlen(QS_MARKER_TEXT) || memcmp(buf, QS_MARKER_TEXT, n) != 0) {
            errf(err, errn, "%s: not a marker of this Quiver storage format (expected \"quiver-storage 1\"); "
                 "the directory belongs to another version or program. %s", mp, advice_damaged);
            rc = QS_CORRUPT;
        } else if (!has_current) {
            /* Creation interrupted after the marker: nothing else written. */
            bool only_marker = true;
            for (size_t i = 0; i < dl.count; i++)
                if (strcmp(dl.names[i], QS_MARKER_FILE) && strcmp(dl.names[i], "LOCK") &&
                    strncmp(dl.names[i], "LOG", 3) && strcmp(dl.names[i], QS_FLUSH_TMP_DIR))
                    only_marker = false;
            if (only_marker) {
                fresh = true;
            } else {
                errf(err, errn, "%s/CURRENT: missing, so RocksDB cannot find its MANIFEST. %s", dir, advice_damaged);
                rc = QS_CORRUPT;
            }
        }
        free(mp);
    }
    dirlist_free(&dl);
    if (rc != QS_OK) return rc;
    if (fresh && !create) {
        errf(err, errn, "%s: no Quiver database here (empty directory) and creation was not asked for", dir);
        return QS_NOT_FOUND;
    }
    if (fresh && !write_marker(dir, err, errn)) return QS_INVALID;

    qs_db *db = calloc(1, sizeof *db);
    if (!db) QUIVER_FATAL("out of memory");
    pthread_mutex_init(&db->mu, NULL);
    db->dir = strdup(dir);
    configure(db, o, fresh);
    char *tmp = path_join(dir, QS_FLUSH_TMP_DIR);
    rm_rf(tmp); /* a checkpoint left by a crash inside qs_flush */
    free(tmp);

    char *rerr = NULL;
    char manifest[300];
    if (!fresh) {
        size_t ncf = 0;
        char **cfs = rocksdb_list_column_families(db->opts, dir, &ncf, &rerr);
        if (rerr) {
            if (cfs) rocksdb_list_column_families_destroy(cfs, ncf); /* an empty array is still allocated */
            current_manifest(dir, manifest, sizeof manifest);
            errf(err, errn, "%s/%s: RocksDB cannot read the database: %s. %s", dir, manifest, rerr, advice_damaged);
            free(rerr);
            db_free(db);
            return QS_CORRUPT;
        }
        const char *missing = NULL;
        for (int i = 0; i < QS_CF_COUNT && !missing; i++) {
            bool found = false;
            for (size_t j = 0; j < ncf; j++)
                if (!strcmp(cfs[j], qs_cf_names[i])) found = true;
            if (!found) missing = qs_cf_names[i];
        }
        bool extra = ncf != QS_CF_COUNT;
        rocksdb_list_column_families_destroy(cfs, ncf);
        if (missing || extra) {
            current_manifest(dir, manifest, sizeof manifest);
            /* Our marker is there, so this is either a damaged MANIFEST (RocksDB
             * may read a garbled one as a shorter list without an error) or a
             * foreign database with a copied marker: say both. */
            errf(err, errn, "%s/%s: the MANIFEST does not list Quiver's column families (%s%s): the "
                 "MANIFEST is damaged or this is not a Quiver database; refusing to open it. %s", dir, manifest,
                 missing ? "missing " : "unexpected extra families", missing ? missing : "", advice_damaged);
            db_free(db);
            return QS_CORRUPT;
        }
    }
    db->rdb = rocksdb_open_column_families(db->opts, dir, QS_CF_COUNT, (const char *const *)qs_cf_names,
                                           (const rocksdb_options_t *const *)db->cf_opts, db->cf, &rerr);
    if (rerr) {
        current_manifest(dir, manifest, sizeof manifest);
        errf(err, errn, "%s/%s: RocksDB cannot open the database: %s. %s", dir, manifest, rerr, advice_damaged);
        free(rerr);
        for (int i = 0; i < QS_CF_COUNT; i++) db->cf[i] = NULL;
        db->rdb = NULL;
        db_free(db);
        return QS_CORRUPT;
    }

    qbuf b = {0};
    if (fresh) {
        if (getrandom(db->uuid, 16, 0) != 16) QUIVER_FATAL("getrandom failed: %s", strerror(errno));
        db->uuid[6] = (uint8_t)((db->uuid[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
        db->uuid[8] = (uint8_t)((db->uuid[8] & 0x3f) | 0x80);
        rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
        uint8_t v[8];
        qk_put_u32(v, QS_FORMAT_VERSION);
        rocksdb_writebatch_put_cf(wb, db->cf[QS_CF_DEFAULT], QK_FORMAT, strlen(QK_FORMAT), (char *)v, 4);
        rocksdb_writebatch_put_cf(wb, db->cf[QS_CF_DEFAULT], QK_UUID, strlen(QK_UUID), (char *)db->uuid, 16);
        qk_put_u64(v, 0);
        rocksdb_writebatch_put_cf(wb, db->cf[QS_CF_DEFAULT], QK_APPLIED, strlen(QK_APPLIED), (char *)v, 8);
        qk_put_u32(v, 0);
        rocksdb_writebatch_put_cf(wb, db->cf[QS_CF_DEFAULT], QK_NEXT_GRAPH, strlen(QK_NEXT_GRAPH), (char *)v, 4);
        rocksdb_write(db->rdb, db->wo, wb, &rerr);
        rocksdb_writebatch_destroy(wb);
        QS_CHECK("writing the format record", rerr);
        qs_flush(db);
    } else {
        if (!db_get(db, QS_CF_DEFAULT, QK_FORMAT, strlen(QK_FORMAT), &b) || b.len != 4) {
            errf(err, errn, "%s: a RocksDB database with Quiver's column families but no format record "
                 "(key \"%s\" in the default family); it was not created by this program or its creation was "
                 "interrupted. %s", dir, QK_FORMAT, advice_damaged);
            qbuf_free(&b);
            db_free(db);
            return QS_CORRUPT;
        }
        uint32_t ver = qk_get_u32(b.p);
        if (ver != QS_FORMAT_VERSION) {
            errf(err, errn, "%s: storage format version %u, but this quiverd reads version %u; use a quiverd "
                 "built for that format.", dir, ver, QS_FORMAT_VERSION);
            qbuf_free(&b);
            db_free(db);
            return QS_CORRUPT;
        }
    }
    qbuf_free(&b);
    load_state(db);
    *out = db;
    return QS_OK;
}

void qs_flush(qs_db *db) {
    QUIVER_ASSERT(db && db->rdb);
    char *err = NULL;
    char *tmp = path_join(db->dir, QS_FLUSH_TMP_DIR);
    rm_rf(tmp);
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(db->rdb, &err);
    QS_CHECK("flush (checkpoint object)", err);
    rocksdb_checkpoint_create(cp, tmp, 0 /* always flush first */, &err);
    QS_CHECK("flush (atomic memtable flush)", err);
    rocksdb_checkpoint_object_destroy(cp);
    rm_rf(tmp);
    free(tmp);
}

void qs_close(qs_db *db) {
    if (!db) return;
    QUIVER_ASSERT(db->open_txn == NULL);
    qs_flush(db);
    db_free(db);
}

uint64_t qs_applied_index(const qs_db *db) {
    return atomic_load(&((qs_db *)db)->applied);
}

void qs_db_uuid(const qs_db *db, uint8_t out[16]) {
    memcpy(out, db->uuid, 16);
}

int qs_checkpoint(qs_db *db, const char *dir, char *err, size_t errn) {
    QUIVER_ASSERT(db && dir);
    struct stat st;
    if (stat(dir, &st) == 0) {
        errf(err, errn, "%s: already exists; a checkpoint needs a new directory", dir);
        return QS_INVALID;
    }
    char *rerr = NULL;
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(db->rdb, &rerr);
    QS_CHECK("checkpoint object", rerr);
    rocksdb_checkpoint_create(cp, dir, 0, &rerr);
    rocksdb_checkpoint_object_destroy(cp);
    if (rerr) {
        errf(err, errn, "%s: cannot create the checkpoint: %s", dir, rerr);
        free(rerr);
        return QS_INVALID;
    }
    if (!write_marker(dir, err, errn)) return QS_INVALID;
    return QS_OK;
}
