/*
 * test_storage_txn.c -- transactions: savepoint rollback of data, ids,
 * counts and schema (nested and released savepoints), abort, snapshot
 * isolation with concurrent reader threads, the applied index never going
 * back (a child process must abort), graph delete removing every key,
 * digests, and the opaque meta keys.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "test_storage_util.h"
#include "storage/store.h"

typedef struct fx {
    char *dir;
    qs_db *db;
    q_arena a;
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    f->dir = tsu_tmpdir();
    f->db = tsu_open(f->dir);
    q_arena_init(&f->a, 0);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    if (f->db) qs_close(f->db);
    tsu_rm_rf(f->dir);
    free(f->dir);
    q_arena_free(&f->a);
    free(f);
    return 0;
}

static void test_savepoints(void **state) {
    fx *f = *state;
    qs_txn *t = qs_txn_begin(f->db);
    qs_view *tv = qs_txn_view(t);
    uint32_t g;
    assert_int_equal(qs_graph_create(t, "g", 1, &g), QS_OK);
    uint32_t person = tsu_intern(t, g, QS_SCHEMA_LABEL, "Person");
    uint32_t kx = tsu_intern(t, g, QS_SCHEMA_PROPKEY, "x");
    uint64_t n0, n1, n2, e0, e1;
    qv_value one = qv_int(1);
    qv_props p = tsu_props(1, &kx, &one);
    assert_int_equal(qs_node_create(t, g, &person, 1, &p, &n0), QS_OK);

    qs_txn_savepoint(t);
    assert_int_equal(qs_node_create(t, g, &person, 1, &p, &n1), QS_OK);
    assert_int_equal(n1, 1);
    uint32_t city = tsu_intern(t, g, QS_SCHEMA_LABEL, "City");
    uint32_t knows = tsu_intern(t, g, QS_SCHEMA_RELTYPE, "KNOWS");
    assert_int_equal(qs_edge_create(t, g, knows, n0, n1, NULL, &e0), QS_OK);
    bool changed;
    assert_int_equal(qs_node_set_prop(t, g, n0, kx, qv_int(5), &changed), QS_OK);
    assert_int_equal(qs_node_add_label(t, g, n0, city, &changed), QS_OK);
    assert_int_equal(qs_index_create(t, g, person, kx), QS_OK);
    uint32_t g2;
    assert_int_equal(qs_graph_create(t, "other", 5, &g2), QS_OK);
    /* nested savepoint, released: its writes stay with the outer one */
    qs_txn_savepoint(t);
    uint64_t tmp;
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &tmp), QS_OK);
    qs_txn_release_savepoint(t);
    /* nested savepoint, rolled back alone */
    qs_txn_savepoint(t);
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &tmp), QS_OK);
    assert_int_equal(tmp, 3);
    qs_txn_rollback_to_savepoint(t);
    assert_false(qs_node_exists(tv, g, 3));
    assert_true(qs_node_exists(tv, g, 2));
    assert_int_equal(qs_node_count(tv, g), 3);
    assert_int_equal(qs_edge_count(tv, g), 1);
    assert_int_equal(qs_label_count(tv, g, city), 1);

    qs_txn_rollback_to_savepoint(t);
    /* data */
    assert_true(qs_node_exists(tv, g, n0));
    assert_false(qs_node_exists(tv, g, 1));
    assert_false(qs_node_exists(tv, g, 2));
    qs_edge_rec er;
    assert_int_equal(qs_edge_get(tv, g, e0, &f->a, &er), QS_NOT_FOUND);
    qv_value x;
    assert_int_equal(qs_node_prop(tv, g, n0, kx, &f->a, &x), QS_OK);
    assert_int_equal(x.u.i, 1);
    assert_false(qs_node_has_label(tv, g, n0, city));
    qs_item it;
    qs_iter *i = qs_scan_adj(tv, g, n0, QS_DIR_OUT, QS_TYPE_ANY);
    assert_false(qs_iter_next(i, &it));
    qs_iter_free(i);
    /* counters and schema */
    assert_int_equal(qs_node_count(tv, g), 1);
    assert_int_equal(qs_edge_count(tv, g), 0);
    assert_int_equal(qs_label_count(tv, g, person), 1);
    assert_int_equal(qs_schema_count(tv, g, QS_SCHEMA_LABEL), 1);
    assert_int_equal(qs_schema_count(tv, g, QS_SCHEMA_RELTYPE), 0);
    assert_false(qs_index_exists(tv, g, person, kx));
    uint32_t id;
    assert_int_equal(qs_graph_lookup(tv, "other", 5, &id), QS_NOT_FOUND);
    /* ids are allocated again from where the savepoint was */
    assert_int_equal(qs_node_create(t, g, &person, 1, &p, &n2), QS_OK);
    assert_int_equal(n2, 1);
    assert_int_equal(tsu_intern(t, g, QS_SCHEMA_LABEL, "Robot"), 1);
    assert_int_equal(qs_edge_create(t, g, tsu_intern(t, g, QS_SCHEMA_RELTYPE, "R"), n0, n2, NULL, &e1), QS_OK);
    assert_int_equal(e1, 0);
    assert_int_equal(qs_graph_create(t, "third", 5, &g2), QS_OK);
    assert_int_equal(g2, g + 1);
    qs_txn_commit(t, 1);

    qs_close(f->db);
    f->db = tsu_open(f->dir);
    qs_view *v = qs_view_open_snapshot(f->db);
    assert_int_equal(qs_node_count(v, g), 2);
    assert_int_equal(qs_edge_count(v, g), 1);
    assert_int_equal(qs_schema_count(v, g, QS_SCHEMA_LABEL), 2);
    qv_str name;
    assert_int_equal(qs_schema_name(v, g, QS_SCHEMA_LABEL, 1, &name), QS_OK);
    assert_memory_equal(name.ptr, "Robot", 5);
    assert_int_equal(qs_graph_lookup(v, "third", 5, &id), QS_OK);
    assert_int_equal(qs_graph_lookup(v, "other", 5, &id), QS_NOT_FOUND);
    qs_view_close(v);

    /* rollback across a graph delete brings the graph back */
    t = qs_txn_begin(f->db);
    qs_txn_savepoint(t);
    assert_int_equal(qs_graph_delete(t, g), QS_OK);
    assert_int_equal(qs_graph_lookup(qs_txn_view(t), "g", 1, &id), QS_NOT_FOUND);
    qs_txn_rollback_to_savepoint(t);
    assert_int_equal(qs_graph_lookup(qs_txn_view(t), "g", 1, &id), QS_OK);
    assert_int_equal(qs_node_count(qs_txn_view(t), g), 2);
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &tmp), QS_OK);
    assert_int_equal(tmp, 2);
    qs_txn_abort(t);
    v = qs_view_open_snapshot(f->db);
    assert_false(qs_node_exists(v, g, 2));
    assert_int_equal(qs_node_count(v, g), 2);
    qs_view_close(v);
}

/* ---- snapshot isolation with reader threads ---- */

typedef struct reader_arg {
    qs_db *db;
    uint32_t g;
    int rounds;       /* at least this many, and until the writer is done */
    int failures;
    _Atomic int *done;
} reader_arg;

static void *reader(void *p) {
    reader_arg *r = p;
    q_arena a;
    q_arena_init(&a, 0);
    for (int i = 0; i < r->rounds || !atomic_load(r->done); i++) {
        qs_view *v = qs_view_open_snapshot(r->db);
        /* commit k adds one label and 300 nodes with applied = k + 2: the
         * count, the scan, the schema and the applied index must agree */
        uint64_t applied = qs_view_applied_index(v);
        uint64_t n = qs_node_count(v, r->g);
        uint32_t labels = qs_schema_count(v, r->g, QS_SCHEMA_LABEL);
        uint64_t seen = 0, want = applied > 1 ? 300 : 0;
        if (applied > 1) { /* the newest label's nodes, by scan and by count */
            qs_iter *it = qs_scan_label(v, r->g, (uint32_t)(applied - 2));
            qs_item item;
            while (qs_iter_next(it, &item)) seen++;
            qs_iter_free(it);
            if (qs_label_count(v, r->g, (uint32_t)(applied - 2)) != 300) r->failures++;
        }
        if (seen != want || n != 300 * (applied - 1) || labels != applied - 1) r->failures++;
        qs_view_close(v);
        q_arena_reset(&a);
    }
    q_arena_free(&a);
    return NULL;
}

static void test_snapshot_isolation_threads(void **state) {
    fx *f = *state;
    qs_txn *t = qs_txn_begin(f->db);
    uint32_t g;
    assert_int_equal(qs_graph_create(t, "g", 1, &g), QS_OK);
    qs_txn_commit(t, 1);
    reader_arg ra[3];
    pthread_t th[3];
    _Atomic int done = 0;
    for (int i = 0; i < 3; i++) {
        ra[i] = (reader_arg){f->db, g, 100, 0, &done};
        assert_int_equal(pthread_create(&th[i], NULL, reader, &ra[i]), 0);
    }
    for (uint64_t k = 0; k < 200; k++) {
        t = qs_txn_begin(f->db);
        char name[32];
        snprintf(name, sizeof name, "L%llu", (unsigned long long)k);
        uint32_t l = tsu_intern(t, g, QS_SCHEMA_LABEL, name);
        for (int j = 0; j < 300; j++) {
            uint64_t id;
            assert_int_equal(qs_node_create(t, g, &l, 1, NULL, &id), QS_OK);
        }
        qs_txn_commit(t, k + 2);
    }
    atomic_store(&done, 1);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ra[i].failures, 0);
    }
    /* a view opened before a commit keeps its state */
    qs_view *old = qs_view_open_snapshot(f->db);
    t = qs_txn_begin(f->db);
    uint64_t id;
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &id), QS_OK);
    assert_int_equal(qs_node_count(qs_txn_view(t), g), 60001);
    assert_int_equal(qs_node_count(old, g), 60000); /* uncommitted: invisible */
    qs_txn_commit(t, 500);
    assert_int_equal(qs_node_count(old, g), 60000);
    assert_false(qs_node_exists(old, g, id));
    qs_view_close(old);
    qs_view *v = qs_view_open_snapshot(f->db);
    assert_int_equal(qs_node_count(v, g), 60001);
    assert_true(qs_node_exists(v, g, id));
    qs_view_close(v);
}

/* ---- the applied index never goes back: run in a child that must abort ---- */

static int child_applied_goes_back(const char *dir) {
    qs_db *db = tsu_open(dir);
    qs_txn *t = qs_txn_begin(db);
    qs_txn_commit(t, 5);
    t = qs_txn_begin(db);
    qs_txn_commit(t, 5); /* must abort */
    return 0;
}

static char self_path[4096];

/* Commit, flush, commit again, then die without closing (as kill -9). */
static int child_crash_after_flush(const char *dir) {
    qs_db *db = tsu_open(dir);
    qs_txn *t = qs_txn_begin(db);
    uint32_t g;
    uint64_t id;
    assert_int_equal(qs_graph_create(t, "g", 1, &g), QS_OK);
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &id), QS_OK);
    qs_txn_commit(t, 1);
    qs_flush(db);
    t = qs_txn_begin(db);
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &id), QS_OK);
    assert_int_equal(tsu_intern(t, g, QS_SCHEMA_LABEL, "Lost"), 0);
    qs_txn_commit(t, 2);
    kill(getpid(), SIGKILL);
    return 1;
}

static int run_child(const char *mode, const char *dir) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 2);
        execl(self_path, self_path, mode, dir, (char *)NULL);
        _exit(99);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* WAL off: after a crash the database is exactly the last flushed state,
 * with its applied index (raft replays the rest). */
static void test_crash_keeps_flushed_state(void **state) {
    fx *f = *state;
    char *dir = tsu_path(f->dir, "crash");
    int status = run_child("--child-crash", dir);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    qs_db *db = tsu_open(dir);
    assert_int_equal(qs_applied_index(db), 1);
    qs_view *v = qs_view_open_snapshot(db);
    uint32_t g;
    assert_int_equal(qs_graph_lookup(v, "g", 1, &g), QS_OK);
    assert_true(qs_node_exists(v, g, 0));
    assert_false(qs_node_exists(v, g, 1));
    assert_int_equal(qs_node_count(v, g), 1);
    assert_int_equal(qs_schema_count(v, g, QS_SCHEMA_LABEL), 0);
    qs_view_close(v);
    /* replaying entry 2 gives the same ids again */
    qs_txn *t = qs_txn_begin(db);
    uint64_t id;
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &id), QS_OK);
    assert_int_equal(id, 1);
    qs_txn_commit(t, 2);
    qs_close(db);
    free(dir);
}

static void test_applied_index_never_goes_back(void **state) {
    fx *f = *state;
    char *dir = tsu_path(f->dir, "child");
    int status = run_child("--child-applied", dir);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    free(dir);
}

/* ---- graph delete ---- */

static int keys_with_prefix(qs_view *v, int cf, const uint8_t *p, size_t n) {
    uint8_t hi[16];
    memcpy(hi, p, n);
    size_t hn = qk_prefix_successor(hi, n);
    qs_raw_iter r;
    qs_raw_open(&r, v, cf, p, n, hn ? hi : NULL, hn);
    const uint8_t *k;
    size_t kl;
    int c = 0;
    while (qs_raw_next(&r, &k, &kl, NULL, NULL)) c++;
    qs_raw_close(&r);
    return c;
}

static int graph_keys(qs_view *v, uint32_t g) {
    uint8_t p[8];
    qk_put_u32(p, g);
    int c = 0;
    for (int cf = QS_CF_SCHEMA; cf < QS_CF_COUNT; cf++) c += keys_with_prefix(v, cf, p, 4);
    memcpy(p, "q/c", 3);
    qk_put_u32(p + 3, g);
    c += keys_with_prefix(v, QS_CF_DEFAULT, p, 7);
    return c;
}

static void build(qs_txn *t, const char *name, uint32_t *gout, int n) {
    uint32_t g;
    assert_int_equal(qs_graph_create(t, name, strlen(name), &g), QS_OK);
    uint32_t l = tsu_intern(t, g, QS_SCHEMA_LABEL, "N");
    uint32_t ty = tsu_intern(t, g, QS_SCHEMA_RELTYPE, "E");
    uint32_t k = tsu_intern(t, g, QS_SCHEMA_PROPKEY, "v");
    assert_int_equal(qs_index_create(t, g, l, k), QS_OK);
    uint64_t prev = 0;
    for (int i = 0; i < n; i++) {
        qv_value val = qv_int(i % 7);
        qv_props p = tsu_props(1, &k, &val);
        uint64_t id, e;
        assert_int_equal(qs_node_create(t, g, &l, 1, &p, &id), QS_OK);
        if (i) assert_int_equal(qs_edge_create(t, g, ty, prev, id, &p, &e), QS_OK);
        prev = id;
    }
    *gout = g;
}

static void test_graph_delete(void **state) {
    fx *f = *state;
    qs_txn *t = qs_txn_begin(f->db);
    uint32_t a, b;
    build(t, "a", &a, 50);
    build(t, "b", &b, 30);
    qs_txn_commit(t, 1);
    qs_view *v = qs_view_open_snapshot(f->db);
    int keys_b = graph_keys(v, b);
    assert_true(graph_keys(v, a) > 50 * 5);
    char before_b[17];
    assert_int_equal(qs_graph_digest(v, b, before_b), QS_OK);
    qs_view_close(v);

    t = qs_txn_begin(f->db);
    assert_int_equal(qs_graph_delete(t, a), QS_OK);
    assert_int_equal(qs_graph_delete(t, a), QS_NOT_FOUND);
    assert_int_equal(graph_keys(qs_txn_view(t), a), 0);
    qs_txn_commit(t, 2);
    qs_close(f->db);
    f->db = tsu_open(f->dir);
    v = qs_view_open_snapshot(f->db);
    assert_int_equal(graph_keys(v, a), 0);
    assert_int_equal(graph_keys(v, b), keys_b);
    uint32_t id;
    assert_int_equal(qs_graph_lookup(v, "a", 1, &id), QS_NOT_FOUND);
    char after_b[17];
    assert_int_equal(qs_graph_digest(v, b, after_b), QS_OK);
    assert_string_equal(before_b, after_b);
    assert_int_equal(qs_graph_digest(v, a, after_b), QS_NOT_FOUND);
    qs_view_close(v);
    /* the name can be used again, with a new id */
    t = qs_txn_begin(f->db);
    assert_int_equal(qs_graph_create(t, "a", 1, &id), QS_OK);
    assert_int_not_equal(id, a);
    assert_int_equal(qs_node_count(qs_txn_view(t), id), 0);
    qs_txn_commit(t, 3);
}

/* ---- digests ---- */

static void test_digest(void **state) {
    fx *f = *state;
    char *d2 = tsu_path(f->dir, "second");
    qs_db *db2 = tsu_open(d2);
    qs_db *dbs[2] = {f->db, db2};
    uint32_t g[2];
    for (int i = 0; i < 2; i++) {
        qs_txn *t = qs_txn_begin(dbs[i]);
        build(t, "x", &g[i], 40);
        qs_txn_commit(t, 10);
    }
    /* a command rolled back on one replica only (touching a label that
     * has no nodes) leaves no trace in the digest */
    for (int i = 0; i < 2; i++) {
        qs_txn *t = qs_txn_begin(dbs[i]);
        uint32_t z = tsu_intern(t, g[i], QS_SCHEMA_LABEL, "Z");
        if (i == 1) {
            qs_txn_savepoint(t);
            uint64_t id;
            assert_int_equal(qs_node_create(t, g[i], &z, 1, NULL, &id), QS_OK);
            qs_txn_rollback_to_savepoint(t);
        }
        qs_txn_commit(t, 11);
    }
    char h[2][17];
    for (int i = 0; i < 2; i++) {
        qs_view *v = qs_view_open_snapshot(dbs[i]);
        assert_int_equal(qs_graph_digest(v, g[i], h[i]), QS_OK);
        assert_int_equal(strlen(h[i]), 16);
        for (int c = 0; c < 16; c++) assert_non_null(strchr("0123456789abcdef", h[i][c]));
        qs_view_close(v);
    }
    assert_string_equal(h[0], h[1]);
    /* one property change makes them differ; the txn view sees it too */
    qs_txn *t = qs_txn_begin(db2);
    bool changed;
    assert_int_equal(qs_node_set_prop(t, g[1], 3, 0, qv_int(1000), &changed), QS_OK);
    char ht[17];
    assert_int_equal(qs_graph_digest(qs_txn_view(t), g[1], ht), QS_OK);
    assert_string_not_equal(ht, h[0]);
    qs_txn_commit(t, 12);
    qs_view *v = qs_view_open_snapshot(db2);
    char h2[17];
    assert_int_equal(qs_graph_digest(v, g[1], h2), QS_OK);
    assert_string_equal(h2, ht);
    qs_view_close(v);
    /* and setting it back restores equality (same state, same digest) */
    t = qs_txn_begin(db2);
    assert_int_equal(qs_node_set_prop(t, g[1], 3, 0, qv_int(3), &changed), QS_OK);
    qs_txn_commit(t, 13);
    v = qs_view_open_snapshot(db2);
    assert_int_equal(qs_graph_digest(v, g[1], h2), QS_OK);
    assert_string_equal(h2, h[0]);
    qs_view_close(v);
    /* a schema-only change also changes the digest */
    t = qs_txn_begin(db2);
    tsu_intern(t, g[1], QS_SCHEMA_PROPKEY, "unused");
    qs_txn_commit(t, 14);
    v = qs_view_open_snapshot(db2);
    assert_int_equal(qs_graph_digest(v, g[1], h2), QS_OK);
    assert_string_not_equal(h2, h[0]);
    qs_view_close(v);
    qs_close(db2);
    free(d2);
}

/* ---- meta ---- */

static bool collect(void *ctx, const void *key, size_t kl, const void *val, size_t vl) {
    int *n = ctx;
    (void)key;
    (void)val;
    assert_true(kl > 0 && vl > 0);
    (*n)++;
    return true;
}

static void test_meta(void **state) {
    fx *f = *state;
    qs_txn *t = qs_txn_begin(f->db);
    assert_int_equal(qs_meta_put(t, "q/applied", 9, "x", 1), QS_INVALID);
    assert_int_equal(qs_meta_put(t, "", 0, "x", 1), QS_INVALID);
    assert_int_equal(qs_meta_put(t, "dedup/1", 7, "one", 3), QS_OK);
    assert_int_equal(qs_meta_put(t, "dedup/2", 7, "two", 3), QS_OK);
    assert_int_equal(qs_meta_put(t, "other", 5, "z", 1), QS_OK);
    void *val;
    size_t vl;
    assert_int_equal(qs_meta_get(qs_txn_view(t), "dedup/2", 7, &f->a, &val, &vl), QS_OK);
    assert_int_equal(vl, 3);
    assert_memory_equal(val, "two", 3);
    int n = 0;
    assert_int_equal(qs_meta_scan(qs_txn_view(t), "dedup/", 6, collect, &n), QS_OK);
    assert_int_equal(n, 2);
    qs_txn_commit(t, 1);
    t = qs_txn_begin(f->db);
    assert_int_equal(qs_meta_delete(t, "dedup/1", 7), QS_OK);
    qs_txn_commit(t, 2);
    qs_close(f->db);
    f->db = tsu_open(f->dir);
    qs_view *v = qs_view_open_snapshot(f->db);
    assert_int_equal(qs_meta_get(v, "dedup/1", 7, &f->a, &val, &vl), QS_NOT_FOUND);
    assert_int_equal(qs_meta_get(v, "dedup/2", 7, &f->a, &val, &vl), QS_OK);
    n = 0;
    assert_int_equal(qs_meta_scan(v, "", 0, collect, &n), QS_OK); /* ours are hidden */
    assert_int_equal(n, 2);
    qs_view_close(v);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--child-applied") == 0) return child_applied_goes_back(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--child-crash") == 0) return child_crash_after_flush(argv[2]);
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n > 0) self_path[n] = 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_savepoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_isolation_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_applied_index_never_goes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_keeps_flushed_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graph_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
