/*
 * test_storage_index.c -- property indexes: creation over existing nodes,
 * range scans with inclusive/exclusive and open bounds, ints and doubles in
 * one order, strings, booleans, lists skipped, and maintenance on node
 * create, set/remove property, add/remove label, delete, index drop.
 */
#include <math.h>

#include "test_storage_util.h"

typedef struct fx {
    char *dir;
    qs_db *db;
    uint32_t g, person, robot, kx;
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    f->dir = tsu_tmpdir();
    f->db = tsu_open(f->dir);
    qs_txn *t = qs_txn_begin(f->db);
    assert_int_equal(qs_graph_create(t, "g", 1, &f->g), QS_OK);
    f->person = tsu_intern(t, f->g, QS_SCHEMA_LABEL, "Person");
    f->robot = tsu_intern(t, f->g, QS_SCHEMA_LABEL, "Robot");
    f->kx = tsu_intern(t, f->g, QS_SCHEMA_PROPKEY, "x");
    qs_txn_commit(t, 1);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    qs_close(f->db);
    tsu_rm_rf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static uint64_t mk(qs_txn *t, fx *f, uint32_t label, qv_value x) {
    uint64_t id;
    qv_props p = tsu_props(1, &f->kx, &x);
    assert_int_equal(qs_node_create(t, f->g, &label, 1, &p, &id), QS_OK);
    return id;
}

/* Collect a scan's node ids into out (max 64); returns the count. */
static int scan(qs_view *v, fx *f, uint32_t label, const qv_value *lo, bool loi, const qv_value *hi, bool hii,
                uint64_t *out) {
    qs_iter *it = qs_scan_prop_index(v, f->g, label, f->kx, lo, loi, hi, hii);
    assert_non_null(it);
    qs_item item;
    int n = 0;
    while (qs_iter_next(it, &item)) {
        assert_true(n < 64);
        out[n++] = item.node_id;
    }
    qs_iter_free(it);
    return n;
}

static void expect(qs_view *v, fx *f, const qv_value *lo, bool loi, const qv_value *hi, bool hii, int n,
                   const uint64_t *want) {
    uint64_t got[64];
    int c = scan(v, f, f->person, lo, loi, hi, hii, got);
    if (c != n) {
        fprintf(stderr, "got %d ids:", c);
        for (int i = 0; i < c; i++) fprintf(stderr, " %llu", (unsigned long long)got[i]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(c, n);
    for (int i = 0; i < n; i++) assert_int_equal(got[i], want[i]);
}

static void test_ranges(void **state) {
    fx *f = *state;
    qs_txn *t = qs_txn_begin(f->db);
    /* nodes before the index exists: the index build must find them */
    uint64_t n_m2 = mk(t, f, f->person, qv_int(-2));       /* 0 */
    uint64_t n_1 = mk(t, f, f->person, qv_int(1));         /* 1 */
    uint64_t n_1d = mk(t, f, f->person, qv_double(1.0));   /* 2 */
    uint64_t n_15 = mk(t, f, f->person, qv_double(1.5));   /* 3 */
    uint64_t n_3 = mk(t, f, f->person, qv_int(3));         /* 4 */
    uint64_t n_sa = mk(t, f, f->person, tsu_str("apple")); /* 5 */
    uint64_t n_sb = mk(t, f, f->person, tsu_str("banana"));/* 6 */
    uint64_t n_t = mk(t, f, f->person, qv_bool(true));     /* 7 */
    qv_value li[1] = {qv_int(1)};
    qv_list l = {.count = 1, .items = li};
    qv_value lv = {.type = QV_LIST, .u.list = &l};
    uint64_t n_list = mk(t, f, f->person, lv);             /* 8: not indexed */
    uint64_t n_robot = mk(t, f, f->robot, qv_int(1));      /* 9: other label */
    uint64_t n_nan = mk(t, f, f->person, qv_double(NAN));  /* 10 */
    (void)n_list;
    (void)n_robot;
    (void)n_nan;
    assert_null(qs_scan_prop_index(qs_txn_view(t), f->g, f->person, f->kx, NULL, false, NULL, false));
    assert_int_equal(qs_index_create(t, f->g, f->person, f->kx), QS_OK);
    assert_int_equal(qs_index_create(t, f->g, f->person, f->kx), QS_EXISTS);
    assert_int_equal(qs_index_create(t, f->g, 99, f->kx), QS_INVALID);
    assert_true(qs_index_exists(qs_txn_view(t), f->g, f->person, f->kx));
    /* the transaction sees its own index */
    qv_value one = qv_int(1);
    uint64_t w1[2] = {n_1, n_1d};
    expect(qs_txn_view(t), f, &one, true, &one, true, 2, w1);
    qs_txn_commit(t, 2);

    qs_view *v = qs_view_open_snapshot(f->db);
    /* equality on 1 finds 1 and 1.0; on 1.0 the same */
    qv_value oned = qv_double(1.0);
    expect(v, f, &oned, true, &oned, true, 2, w1);
    /* numbers: (1, 3] -> 1.5, 3 */
    qv_value three = qv_int(3);
    uint64_t w2[2] = {n_15, n_3};
    expect(v, f, &one, false, &three, true, 2, w2);
    /* [1, 3) -> 1, 1.0, 1.5 */
    uint64_t w3[3] = {n_1, n_1d, n_15};
    expect(v, f, &one, true, &three, false, 3, w3);
    /* x < 1.5 -> -2, 1, 1.0 (numbers only, no booleans) */
    qv_value onefive = qv_double(1.5);
    uint64_t w4[3] = {n_m2, n_1, n_1d};
    expect(v, f, NULL, false, &onefive, false, 3, w4);
    /* x >= 1.2 -> 1.5, 3 (not NaN, not strings) */
    qv_value onetwo = qv_double(1.2);
    expect(v, f, &onetwo, true, NULL, false, 2, w2);
    /* strings: >= "b" -> banana; < "b" -> apple */
    qv_value b = tsu_str("b");
    uint64_t ws1[1] = {n_sb}, ws2[1] = {n_sa};
    expect(v, f, &b, true, NULL, false, 1, ws1);
    expect(v, f, NULL, false, &b, false, 1, ws2);
    qv_value apple = tsu_str("apple");
    expect(v, f, &apple, true, &apple, true, 1, ws2);
    expect(v, f, &apple, false, &apple, true, 0, NULL);
    /* booleans */
    qv_value tru = qv_bool(true);
    uint64_t wb[1] = {n_t};
    expect(v, f, &tru, true, &tru, true, 1, wb);
    /* mixed families or empty ranges yield nothing */
    expect(v, f, &one, true, &b, true, 0, NULL);
    expect(v, f, &three, true, &one, true, 0, NULL);
    expect(v, f, &one, false, &one, false, 0, NULL);
    qv_value nan = qv_double(NAN);
    expect(v, f, &nan, true, &nan, true, 0, NULL);
    /* unbounded both sides: everything indexed (not the list) in value order */
    uint64_t all[64];
    int c = scan(v, f, f->person, NULL, false, NULL, false, all);
    assert_int_equal(c, 9); /* bool, 5 numbers, NaN, 2 strings */
    assert_int_equal(all[0], n_t);
    assert_int_equal(all[1], n_m2);
    assert_int_equal(all[7], n_sa);
    qs_view_close(v);
}

static void test_maintenance(void **state) {
    fx *f = *state;
    qs_txn *t = qs_txn_begin(f->db);
    assert_int_equal(qs_index_create(t, f->g, f->person, f->kx), QS_OK);
    uint64_t a = mk(t, f, f->person, qv_int(10));
    uint64_t b = mk(t, f, f->robot, qv_int(10));
    qs_txn_commit(t, 2);
    qv_value ten = qv_int(10), eleven = qv_int(11);
    uint64_t got[64];

    t = qs_txn_begin(f->db);
    qs_view *tv = qs_txn_view(t);
    assert_int_equal(scan(tv, f, f->person, &ten, true, &ten, true, got), 1);
    assert_int_equal(got[0], a);
    bool changed;
    /* set prop moves the entry */
    assert_int_equal(qs_node_set_prop(t, f->g, a, f->kx, qv_int(11), &changed), QS_OK);
    assert_int_equal(scan(tv, f, f->person, &ten, true, &ten, true, got), 0);
    assert_int_equal(scan(tv, f, f->person, &eleven, true, &eleven, true, got), 1);
    /* adding the label to b indexes it, removing it from a unindexes it */
    assert_int_equal(qs_node_add_label(t, f->g, b, f->person, &changed), QS_OK);
    assert_int_equal(scan(tv, f, f->person, &ten, true, &ten, true, got), 1);
    assert_int_equal(got[0], b);
    assert_int_equal(qs_node_remove_label(t, f->g, a, f->person, &changed), QS_OK);
    assert_int_equal(scan(tv, f, f->person, &eleven, true, &eleven, true, got), 0);
    assert_int_equal(qs_node_add_label(t, f->g, a, f->person, &changed), QS_OK);
    assert_int_equal(scan(tv, f, f->person, &eleven, true, &eleven, true, got), 1);
    /* removing the property removes the entry */
    assert_int_equal(qs_node_set_prop(t, f->g, a, f->kx, qv_null(), &changed), QS_OK);
    assert_int_equal(scan(tv, f, f->person, NULL, false, NULL, false, got), 1);
    assert_int_equal(got[0], b);
    /* delete removes the entry */
    assert_int_equal(qs_node_delete(t, f->g, b), QS_OK);
    assert_int_equal(scan(tv, f, f->person, NULL, false, NULL, false, got), 0);
    uint64_t c = mk(t, f, f->person, tsu_str("z"));
    qs_txn_commit(t, 3);

    qs_view *v = qs_view_open_snapshot(f->db);
    assert_int_equal(scan(v, f, f->person, NULL, false, NULL, false, got), 1);
    assert_int_equal(got[0], c);
    q_arena ar;
    q_arena_init(&ar, 0);
    uint32_t *ls, *ks, n;
    assert_int_equal(qs_index_list(v, f->g, &ar, &ls, &ks, &n), QS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ls[0], f->person);
    assert_int_equal(ks[0], f->kx);
    q_arena_free(&ar);
    qs_view_close(v);

    t = qs_txn_begin(f->db);
    assert_int_equal(qs_index_drop(t, f->g, f->person, f->kx), QS_OK);
    assert_int_equal(qs_index_drop(t, f->g, f->person, f->kx), QS_NOT_FOUND);
    assert_false(qs_index_exists(qs_txn_view(t), f->g, f->person, f->kx));
    qs_txn_commit(t, 4);
    qs_close(f->db);
    f->db = tsu_open(f->dir);
    v = qs_view_open_snapshot(f->db);
    assert_false(qs_index_exists(v, f->g, f->person, f->kx));
    qs_view_close(v);
    /* re-create after reopen: rebuilt from the nodes */
    t = qs_txn_begin(f->db);
    assert_int_equal(qs_index_create(t, f->g, f->person, f->kx), QS_OK);
    qs_txn_commit(t, 5);
    qs_close(f->db);
    f->db = tsu_open(f->dir);
    v = qs_view_open_snapshot(f->db);
    assert_true(qs_index_exists(v, f->g, f->person, f->kx));
    assert_int_equal(scan(v, f, f->person, NULL, false, NULL, false, got), 1);
    assert_int_equal(got[0], c);
    qs_view_close(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maintenance, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
