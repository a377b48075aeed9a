/*
 * test_storage_core.c -- graph store basics on a temporary RocksDB: graphs,
 * schema, node and edge create/get/delete, adjacency and label scans,
 * read-your-writes, snapshot isolation, reopen, applied index.
 */
#include "test_storage_util.h"

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

static void test_graph_and_schema(void **state) {
    fx *f = *state;
    qs_txn *t = qs_txn_begin(f->db);
    uint32_t g, g2, again;
    assert_int_equal(qs_graph_create(t, "social", 6, &g), QS_OK);
    assert_int_equal(qs_graph_create(t, "alpha", 5, &g2), QS_OK);
    assert_int_not_equal(g, g2);
    assert_int_equal(qs_graph_create(t, "social", 6, &again), QS_EXISTS);
    assert_int_equal(again, g);
    assert_int_equal(qs_graph_create(t, "", 0, &again), QS_INVALID);
    assert_int_equal(tsu_intern(t, g, QS_SCHEMA_LABEL, "Person"), 0);
    assert_int_equal(tsu_intern(t, g, QS_SCHEMA_LABEL, "City"), 1);
    assert_int_equal(tsu_intern(t, g, QS_SCHEMA_LABEL, "Person"), 0);
    assert_int_equal(tsu_intern(t, g, QS_SCHEMA_RELTYPE, "KNOWS"), 0);
    assert_int_equal(tsu_intern(t, g, QS_SCHEMA_PROPKEY, "name"), 0);
    /* read your own schema writes */
    qs_view *tv = qs_txn_view(t);
    uint32_t id;
    assert_int_equal(qs_schema_id(tv, g, QS_SCHEMA_LABEL, "City", 4, &id), QS_OK);
    assert_int_equal(id, 1);
    assert_int_equal(qs_schema_count(tv, g, QS_SCHEMA_LABEL), 2);
    assert_int_equal(qs_schema_count(tv, g2, QS_SCHEMA_LABEL), 0);
    /* a snapshot opened before the commit sees nothing */
    qs_view *before = qs_view_open_snapshot(f->db);
    qs_txn_commit(t, 1);
    assert_int_equal(qs_graph_lookup(before, "social", 6, &id), QS_NOT_FOUND);
    assert_int_equal(qs_view_applied_index(before), 0);
    qs_view_close(before);

    qs_view *v = qs_view_open_snapshot(f->db);
    assert_int_equal(qs_view_applied_index(v), 1);
    assert_int_equal(qs_graph_lookup(v, "social", 6, &id), QS_OK);
    assert_int_equal(id, g);
    qv_str name;
    assert_int_equal(qs_schema_name(v, g, QS_SCHEMA_LABEL, 1, &name), QS_OK);
    assert_int_equal(name.len, 4);
    assert_memory_equal(name.ptr, "City", 4);
    assert_int_equal(qs_schema_name(v, g, QS_SCHEMA_LABEL, 2, &name), QS_NOT_FOUND);
    assert_int_equal(qs_schema_id(v, g, QS_SCHEMA_PROPKEY, "nope", 4, &id), QS_NOT_FOUND);
    qv_str *names;
    uint32_t n;
    assert_int_equal(qs_graph_list(v, &f->a, &names, &n), QS_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(names[0].ptr, "alpha", 5);
    assert_memory_equal(names[1].ptr, "social", 6);
    qs_view_close(v);
}

static void build_small(fx *f, uint32_t *gout, uint64_t nodes[4], uint64_t edges[4]) {
    qs_txn *t = qs_txn_begin(f->db);
    uint32_t g;
    assert_int_equal(qs_graph_create(t, "g", 1, &g), QS_OK);
    uint32_t person = tsu_intern(t, g, QS_SCHEMA_LABEL, "Person");
    uint32_t city = tsu_intern(t, g, QS_SCHEMA_LABEL, "City");
    uint32_t knows = tsu_intern(t, g, QS_SCHEMA_RELTYPE, "KNOWS");
    uint32_t lives = tsu_intern(t, g, QS_SCHEMA_RELTYPE, "LIVES_IN");
    uint32_t kname = tsu_intern(t, g, QS_SCHEMA_PROPKEY, "name");
    uint32_t kage = tsu_intern(t, g, QS_SCHEMA_PROPKEY, "age");
    const char *pn[3] = {"ann", "bob", "cyd"};
    for (int i = 0; i < 3; i++) {
        uint32_t keys[2] = {kage, kname};
        qv_value vals[2] = {qv_int(30 + i), tsu_str(pn[i])};
        qv_props p = tsu_props(2, keys, vals);
        assert_int_equal(qs_node_create(t, g, &person, 1, &p, &nodes[i]), QS_OK);
    }
    uint32_t keys[1] = {kname};
    qv_value vals[1] = {tsu_str("Paris")};
    qv_props p = tsu_props(1, keys, vals);
    uint32_t two[3] = {city, city, person}; /* unsorted, duplicate */
    assert_int_equal(qs_node_create(t, g, two, 3, &p, &nodes[3]), QS_OK);
    assert_int_equal(qs_edge_create(t, g, knows, nodes[0], nodes[1], NULL, &edges[0]), QS_OK);
    assert_int_equal(qs_edge_create(t, g, knows, nodes[0], nodes[2], NULL, &edges[1]), QS_OK);
    uint32_t ek[1] = {kage};
    qv_value ev[1] = {qv_double(2.5)};
    qv_props ep = tsu_props(1, ek, ev);
    assert_int_equal(qs_edge_create(t, g, lives, nodes[0], nodes[3], &ep, &edges[2]), QS_OK);
    assert_int_equal(qs_edge_create(t, g, knows, nodes[2], nodes[0], NULL, &edges[3]), QS_OK);
    qs_txn_commit(t, 5);
    *gout = g;
}

static void test_nodes_edges(void **state) {
    fx *f = *state;
    uint32_t g;
    uint64_t n[4], e[4];
    build_small(f, &g, n, e);
    assert_int_equal(n[0], 0);
    assert_int_equal(n[3], 3);
    assert_int_equal(e[0], 0);
    qs_view *v = qs_view_open_snapshot(f->db);
    qs_node_rec r;
    assert_int_equal(qs_node_get(v, g, n[1], &f->a, &r), QS_OK);
    assert_int_equal(r.label_count, 1);
    assert_int_equal(r.label_ids[0], 0);
    assert_int_equal(r.props.count, 2);
    assert_int_equal(r.props.key_ids[0], 0); /* name */
    assert_int_equal(r.props.values[0].type, QV_STRING);
    assert_memory_equal(r.props.values[0].u.s.ptr, "bob", 3);
    assert_int_equal(r.props.key_ids[1], 1); /* age */
    assert_int_equal(r.props.values[1].u.i, 31);
    assert_int_equal(qs_node_get(v, g, n[3], &f->a, &r), QS_OK);
    assert_int_equal(r.label_count, 2);
    assert_int_equal(r.label_ids[0], 0);
    assert_int_equal(r.label_ids[1], 1);
    assert_int_equal(qs_node_get(v, g, 99, &f->a, &r), QS_NOT_FOUND);
    assert_true(qs_node_exists(v, g, n[2]));
    assert_false(qs_node_exists(v, g, 4));
    assert_true(qs_node_has_label(v, g, n[3], 1));
    assert_false(qs_node_has_label(v, g, n[0], 1));
    qv_value pv;
    assert_int_equal(qs_node_prop(v, g, n[2], 1, &f->a, &pv), QS_OK);
    assert_int_equal(pv.type, QV_INT);
    assert_int_equal(pv.u.i, 32);
    assert_int_equal(qs_node_prop(v, g, n[3], 1, &f->a, &pv), QS_OK);
    assert_int_equal(pv.type, QV_NULL);
    assert_int_equal(qs_node_prop(v, g, 77, 1, &f->a, &pv), QS_NOT_FOUND);

    qs_edge_rec er;
    assert_int_equal(qs_edge_get(v, g, e[2], &f->a, &er), QS_OK);
    assert_int_equal(er.type_id, 1);
    assert_int_equal(er.src_id, n[0]);
    assert_int_equal(er.dst_id, n[3]);
    assert_int_equal(er.props.count, 1);
    assert_true(er.props.values[0].u.d == 2.5);
    assert_int_equal(qs_edge_get(v, g, 42, &f->a, &er), QS_NOT_FOUND);

    assert_int_equal(qs_node_count(v, g), 4);
    assert_int_equal(qs_edge_count(v, g), 4);
    assert_int_equal(qs_label_count(v, g, 0), 4);
    assert_int_equal(qs_label_count(v, g, 1), 1);

    /* adjacency out of ann: KNOWS bob, KNOWS cyd, LIVES_IN paris (type order) */
    qs_item it;
    qs_iter *i = qs_scan_adj(v, g, n[0], QS_DIR_OUT, QS_TYPE_ANY);
    uint64_t want_nb[3] = {n[1], n[2], n[3]}, want_e[3] = {e[0], e[1], e[2]};
    uint32_t want_t[3] = {0, 0, 1};
    for (int k = 0; k < 3; k++) {
        assert_true(qs_iter_next(i, &it));
        assert_int_equal(it.node_id, want_nb[k]);
        assert_int_equal(it.edge_id, want_e[k]);
        assert_int_equal(it.type_id, want_t[k]);
    }
    assert_false(qs_iter_next(i, &it));
    qs_iter_free(i);
    i = qs_scan_adj(v, g, n[0], QS_DIR_OUT, 1);
    assert_true(qs_iter_next(i, &it));
    assert_int_equal(it.node_id, n[3]);
    assert_false(qs_iter_next(i, &it));
    qs_iter_free(i);
    i = qs_scan_adj(v, g, n[0], QS_DIR_IN, QS_TYPE_ANY);
    assert_true(qs_iter_next(i, &it));
    assert_int_equal(it.node_id, n[2]);
    assert_int_equal(it.edge_id, e[3]);
    assert_false(qs_iter_next(i, &it));
    qs_iter_free(i);
    i = qs_scan_adj(v, g, n[1], QS_DIR_OUT, QS_TYPE_ANY);
    assert_false(qs_iter_next(i, &it));
    qs_iter_free(i);

    /* label scans */
    i = qs_scan_label(v, g, 1);
    assert_true(qs_iter_next(i, &it));
    assert_int_equal(it.node_id, n[3]);
    assert_false(qs_iter_next(i, &it));
    qs_iter_free(i);
    i = qs_scan_label(v, g, 0);
    for (int k = 0; k < 4; k++) {
        assert_true(qs_iter_next(i, &it));
        assert_int_equal(it.node_id, n[k]);
    }
    assert_false(qs_iter_next(i, &it));
    qs_iter_free(i);
    i = qs_scan_nodes(v, g);
    int cnt = 0;
    while (qs_iter_next(i, &it)) assert_int_equal(it.node_id, (uint64_t)cnt++);
    assert_int_equal(cnt, 4);
    qs_iter_free(i);
    i = qs_scan_edges(v, g);
    cnt = 0;
    while (qs_iter_next(i, &it)) {
        assert_int_equal(it.edge_id, e[cnt]);
        cnt++;
    }
    assert_int_equal(cnt, 4);
    qs_iter_free(i);
    qs_view_close(v);

    /* delete: a node with relationships is refused and unchanged */
    qs_txn *t = qs_txn_begin(f->db);
    assert_int_equal(qs_node_delete(t, g, n[1]), QS_INVALID);
    assert_int_equal(qs_edge_delete(t, g, e[0]), QS_OK);
    assert_int_equal(qs_edge_delete(t, g, e[0]), QS_NOT_FOUND);
    assert_int_equal(qs_node_delete(t, g, n[1]), QS_OK);
    assert_int_equal(qs_node_delete(t, g, n[1]), QS_NOT_FOUND);
    qs_view *tv = qs_txn_view(t);
    assert_false(qs_node_exists(tv, g, n[1]));
    assert_int_equal(qs_node_count(tv, g), 3);
    i = qs_scan_adj(tv, g, n[0], QS_DIR_OUT, 0);
    assert_true(qs_iter_next(i, &it));
    assert_int_equal(it.node_id, n[2]);
    assert_false(qs_iter_next(i, &it));
    qs_iter_free(i);
    i = qs_scan_label(tv, g, 0);
    cnt = 0;
    while (qs_iter_next(i, &it)) {
        assert_int_not_equal(it.node_id, n[1]);
        cnt++;
    }
    assert_int_equal(cnt, 3);
    qs_iter_free(i);
    qs_txn_commit(t, 6);
    v = qs_view_open_snapshot(f->db);
    assert_int_equal(qs_node_count(v, g), 3);
    assert_int_equal(qs_edge_count(v, g), 3);
    assert_int_equal(qs_label_count(v, g, 0), 3);
    assert_false(qs_node_exists(v, g, n[1]));
    qs_view_close(v);
}

static void test_invalid_input_changes_nothing(void **state) {
    fx *f = *state;
    uint32_t g;
    uint64_t n[4], e[4];
    build_small(f, &g, n, e);
    qs_txn *t = qs_txn_begin(f->db);
    uint32_t bad_label = 9, label = 0;
    uint64_t id;
    assert_int_equal(qs_node_create(t, g, &bad_label, 1, NULL, &id), QS_INVALID);
    assert_int_equal(qs_node_create(t, 77, &label, 1, NULL, &id), QS_NOT_FOUND);
    qv_map m = {0};
    qv_value mv;
    mv.type = QV_MAP;
    mv.u.map = &m;
    uint32_t k0 = 0;
    qv_props p = tsu_props(1, &k0, &mv);
    assert_int_equal(qs_node_create(t, g, &label, 1, &p, &id), QS_INVALID);
    uint32_t dup[2] = {0, 0};
    qv_value dv[2] = {qv_int(1), qv_int(2)};
    p = tsu_props(2, dup, dv);
    assert_int_equal(qs_node_create(t, g, &label, 1, &p, &id), QS_INVALID);
    uint32_t badk = 50;
    p = tsu_props(1, &badk, dv);
    assert_int_equal(qs_node_create(t, g, &label, 1, &p, &id), QS_INVALID);
    bool changed;
    assert_int_equal(qs_node_set_prop(t, g, n[0], 0, mv, &changed), QS_INVALID);
    assert_int_equal(qs_edge_create(t, g, 0, n[0], 999, NULL, &id), QS_NOT_FOUND);
    assert_int_equal(qs_edge_create(t, g, 7, n[0], n[1], NULL, &id), QS_INVALID);
    assert_int_equal(qs_node_count(qs_txn_view(t), g), 4);
    /* the next node still gets the next id */
    assert_int_equal(qs_node_create(t, g, &label, 1, NULL, &id), QS_OK);
    assert_int_equal(id, 4);
    qs_txn_abort(t);
    qs_view *v = qs_view_open_snapshot(f->db);
    assert_false(qs_node_exists(v, g, 4));
    assert_int_equal(qs_node_count(v, g), 4);
    qs_view_close(v);
    /* after the abort, ids are reused: nothing was committed */
    t = qs_txn_begin(f->db);
    assert_int_equal(qs_node_create(t, g, &label, 1, NULL, &id), QS_OK);
    assert_int_equal(id, 4);
    qs_txn_commit(t, 9);
}

static void test_set_prop_and_labels(void **state) {
    fx *f = *state;
    uint32_t g;
    uint64_t n[4], e[4];
    build_small(f, &g, n, e);
    qs_txn *t = qs_txn_begin(f->db);
    qs_view *tv = qs_txn_view(t);
    bool changed;
    assert_int_equal(qs_node_set_prop(t, g, n[0], 1, qv_int(30), &changed), QS_OK);
    assert_false(changed);
    assert_int_equal(qs_node_set_prop(t, g, n[0], 1, qv_int(44), &changed), QS_OK);
    assert_true(changed);
    uint32_t kx = tsu_intern(t, g, QS_SCHEMA_PROPKEY, "x");
    assert_int_equal(qs_node_set_prop(t, g, n[0], kx, tsu_str("new"), &changed), QS_OK);
    assert_true(changed);
    assert_int_equal(qs_node_set_prop(t, g, n[0], 0, qv_null(), &changed), QS_OK);
    assert_true(changed);
    assert_int_equal(qs_node_set_prop(t, g, n[0], 0, qv_null(), &changed), QS_OK);
    assert_false(changed);
    assert_int_equal(qs_node_set_prop(t, g, 1234, 0, qv_int(1), &changed), QS_NOT_FOUND);
    qs_node_rec r;
    assert_int_equal(qs_node_get(tv, g, n[0], &f->a, &r), QS_OK);
    assert_int_equal(r.props.count, 2);
    assert_int_equal(r.props.key_ids[0], 1);
    assert_int_equal(r.props.values[0].u.i, 44);
    assert_int_equal(r.props.key_ids[1], kx);
    assert_memory_equal(r.props.values[1].u.s.ptr, "new", 3);
    assert_int_equal(qs_node_add_label(t, g, n[0], 1, &changed), QS_OK);
    assert_true(changed);
    assert_int_equal(qs_node_add_label(t, g, n[0], 1, &changed), QS_OK);
    assert_false(changed);
    assert_int_equal(qs_node_remove_label(t, g, n[0], 0, &changed), QS_OK);
    assert_true(changed);
    assert_int_equal(qs_node_remove_label(t, g, n[0], 0, &changed), QS_OK);
    assert_false(changed);
    assert_int_equal(qs_label_count(tv, g, 0), 3);
    assert_int_equal(qs_label_count(tv, g, 1), 2);
    assert_true(qs_node_has_label(tv, g, n[0], 1));
    assert_false(qs_node_has_label(tv, g, n[0], 0));
    assert_int_equal(qs_edge_set_prop(t, g, e[0], kx, qv_bool(true), &changed), QS_OK);
    assert_true(changed);
    qs_edge_rec er;
    assert_int_equal(qs_edge_get(tv, g, e[0], &f->a, &er), QS_OK);
    assert_int_equal(er.props.count, 1);
    assert_true(er.props.values[0].u.b);
    qs_txn_commit(t, 7);
    qs_view *v = qs_view_open_snapshot(f->db);
    assert_int_equal(qs_label_count(v, g, 0), 3);
    assert_int_equal(qs_label_count(v, g, 1), 2);
    qs_iter *i = qs_scan_label(v, g, 1);
    qs_item it;
    assert_true(qs_iter_next(i, &it));
    assert_int_equal(it.node_id, n[0]);
    assert_true(qs_iter_next(i, &it));
    assert_int_equal(it.node_id, n[3]);
    assert_false(qs_iter_next(i, &it));
    qs_iter_free(i);
    qs_view_close(v);
}

static void test_reopen_keeps_everything(void **state) {
    fx *f = *state;
    uint32_t g;
    uint64_t n[4], e[4];
    build_small(f, &g, n, e);
    uint8_t u1[16], u2[16];
    qs_db_uuid(f->db, u1);
    qs_close(f->db);
    f->db = tsu_open(f->dir);
    qs_db_uuid(f->db, u2);
    assert_memory_equal(u1, u2, 16);
    assert_int_equal(qs_applied_index(f->db), 5);
    qs_view *v = qs_view_open_snapshot(f->db);
    uint32_t id;
    assert_int_equal(qs_graph_lookup(v, "g", 1, &id), QS_OK);
    assert_int_equal(id, g);
    assert_int_equal(qs_schema_id(v, g, QS_SCHEMA_RELTYPE, "LIVES_IN", 8, &id), QS_OK);
    assert_int_equal(id, 1);
    assert_int_equal(qs_node_count(v, g), 4);
    assert_int_equal(qs_label_count(v, g, 1), 1);
    qs_node_rec r;
    assert_int_equal(qs_node_get(v, g, n[2], &f->a, &r), QS_OK);
    assert_memory_equal(r.props.values[0].u.s.ptr, "cyd", 3);
    qs_view_close(v);
    /* counters continue where they were */
    qs_txn *t = qs_txn_begin(f->db);
    uint64_t nid, eid;
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &nid), QS_OK);
    assert_int_equal(nid, 4);
    assert_int_equal(qs_edge_create(t, g, 0, nid, nid, NULL, &eid), QS_OK);
    assert_int_equal(eid, 4);
    uint32_t g2;
    assert_int_equal(qs_graph_create(t, "h", 1, &g2), QS_OK);
    assert_int_equal(g2, g + 1);
    assert_int_equal(tsu_intern(t, g, QS_SCHEMA_LABEL, "New"), 2);
    qs_txn_commit(t, 6);
    qs_close(f->db);
    f->db = tsu_open(f->dir);
    assert_int_equal(qs_applied_index(f->db), 6);
    v = qs_view_open_snapshot(f->db);
    assert_int_equal(qs_node_count(v, g), 5);
    assert_int_equal(qs_edge_count(v, g), 5);
    assert_int_equal(qs_schema_count(v, g, QS_SCHEMA_LABEL), 3);
    assert_int_equal(qs_graph_lookup(v, "h", 1, &id), QS_OK);
    qs_view_close(v);
    qs_set_applied_index(f->db, 8);
    qs_close(f->db);
    f->db = tsu_open(f->dir);
    assert_int_equal(qs_applied_index(f->db), 8);
}

/* Relationship creation checks both end nodes, including nodes deleted or
 * rolled back in the same transaction (the store caches known nodes). */
static void test_edge_endpoints_checked(void **state) {
    fx *f = *state;
    qs_txn *t = qs_txn_begin(f->db);
    uint32_t g;
    assert_int_equal(qs_graph_create(t, "g", 1, &g), QS_OK);
    uint32_t r = tsu_intern(t, g, QS_SCHEMA_RELTYPE, "R");
    uint64_t a, b, c, e;
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &a), QS_OK);
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &b), QS_OK);
    assert_int_equal(qs_edge_create(t, g, r, a, b, NULL, &e), QS_OK);
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &c), QS_OK);
    assert_int_equal(qs_node_delete(t, g, c), QS_OK);
    assert_int_equal(qs_edge_create(t, g, r, a, c, NULL, &e), QS_NOT_FOUND);
    qs_txn_savepoint(t);
    uint64_t d;
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &d), QS_OK);
    assert_int_equal(qs_edge_create(t, g, r, d, a, NULL, &e), QS_OK);
    qs_txn_rollback_to_savepoint(t);
    assert_int_equal(qs_edge_create(t, g, r, d, a, NULL, &e), QS_NOT_FOUND);
    assert_int_equal(qs_edge_create(t, g, r, a, 1000, NULL, &e), QS_NOT_FOUND);
    qs_txn_commit(t, 1);
    t = qs_txn_begin(f->db);
    uint64_t x;
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &x), QS_OK);
    assert_int_equal(qs_edge_create(t, g, r, x, a, NULL, &e), QS_OK);
    qs_txn_abort(t);
    t = qs_txn_begin(f->db);
    assert_int_equal(qs_edge_create(t, g, r, x, a, NULL, &e), QS_NOT_FOUND);
    assert_int_equal(qs_edge_create(t, g, r, b, a, NULL, &e), QS_OK);
    qs_txn_commit(t, 2);
    qs_view *v = qs_view_open_snapshot(f->db);
    assert_int_equal(qs_edge_count(v, g), 2);
    qs_view_close(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_graph_and_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_input_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_prop_and_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_endpoints_checked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
