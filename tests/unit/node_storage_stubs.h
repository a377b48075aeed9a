/*
 * node_storage_stubs.h -- the storage functions node/ links against, faked
 * for the node unit tests that run a real server loop on a stubbed database
 * (test_node_server.c, test_node_session.c).  Include it once, in the test's
 * .c file, after defining
 *
 *     static atomic_uint_fast64_t applied_index;  the fake applied index
 *     static atomic_int views_open;               views not yet closed
 *
 * The graph-level stubs (qs_graph_list, qs_graph_lookup, qs_graph_digest)
 * stay in each test: they answer differently.  Checkpoints (catchup.c) are
 * linked in but refused here: no test of these drives them.
 */
#ifndef QUIVER_TESTS_NODE_STORAGE_STUBS_H
#define QUIVER_TESTS_NODE_STORAGE_STUBS_H

struct qs_view {
    uint64_t index;
};

qs_view *qs_view_open_snapshot(qs_db *db) {
    (void)db;
    qs_view *v = malloc(sizeof(*v));
    v->index = atomic_load(&applied_index);
    atomic_fetch_add(&views_open, 1);
    return v;
}
void qs_view_close(qs_view *v) {
    atomic_fetch_sub(&views_open, 1);
    free(v);
}
uint64_t qs_view_applied_index(const qs_view *v) { return v->index; }
int qs_open(const char *dir, const qs_options *opts, qs_db **out, char *err, size_t err_size_bytes) {
    (void)dir, (void)opts, (void)out;
    snprintf(err, err_size_bytes, "no database in this unit test");
    return QS_INVALID;
}
void qs_close(qs_db *db) { (void)db; }
uint64_t qs_applied_index(const qs_db *db) {
    (void)db;
    return atomic_load(&applied_index);
}
int qs_checkpoint(qs_db *db, const char *dir, char *err, size_t err_size_bytes) {
    (void)db, (void)dir;
    snprintf(err, err_size_bytes, "no database in this unit test");
    return QS_INVALID;
}
int qs_meta_get(qs_view *v, const void *key, size_t key_len, q_arena *a, void **val, size_t *val_len) {
    (void)v, (void)key, (void)key_len, (void)a, (void)val, (void)val_len;
    return QS_NOT_FOUND;
}

#endif
