/*
 * test_query_values.c -- common/value.c as the query engine relies on it:
 * the ORDER BY total order across types, three-valued equality, the
 * comparability rules of <, hashing consistent with ordering (1 and 1.0),
 * exact integer/double comparison, deep copies.
 */
#include <math.h>

#include "test_query_util.h"

static qv_value S(const char *s) { return qv_string(s, (uint32_t)strlen(s)); }

static qv_value L(qv_list *l, uint32_t n, qv_value *items) {
    l->count = n;
    l->items = items;
    qv_value v;
    v.type = QV_LIST;
    v.u.list = l;
    return v;
}

static void test_order_across_types(void **state) {
    (void)state;
    qv_map m = {.count = 0, .keys = NULL, .values = NULL};
    qv_node n;
    memset(&n, 0, sizeof n);
    qv_edge e;
    memset(&e, 0, sizeof e);
    qv_list l;
    qv_value li[1] = {qv_int(1)};
    qv_value vals[9];
    vals[0].type = QV_MAP;
    vals[0].u.map = &m;
    vals[1].type = QV_NODE;
    vals[1].u.node = &n;
    vals[2].type = QV_EDGE;
    vals[2].u.edge = &e;
    vals[3] = L(&l, 1, li);
    vals[4] = S("a");
    vals[5] = qv_bool(false);
    vals[6] = qv_int(-5);
    vals[7] = qv_double(NAN);
    vals[8] = qv_null();
    for (int i = 0; i < 9; i++)
        for (int j = 0; j < 9; j++) {
            int r = qv_order(vals[i], vals[j]);
            if (i < j) assert_true(r < 0);
            else if (i > j) assert_true(r > 0);
            else assert_int_equal(r, 0);
        }
    assert_true(qv_order(qv_int(1), qv_double(1.5)) < 0);
    assert_int_equal(qv_order(qv_int(2), qv_double(2.0)), 0);
    assert_true(qv_order(qv_double(INFINITY), qv_double(NAN)) < 0);
    assert_true(qv_order(S("ab"), S("b")) < 0);
    assert_true(qv_order(S("a"), S("ab")) < 0);
    /* exact: 2^53 + 1 is not equal to the double 2^53 */
    assert_true(qv_order(qv_int(9007199254740993LL), qv_double(9007199254740992.0)) > 0);
    assert_true(qv_order(qv_int(INT64_MAX), qv_double(9223372036854775808.0)) < 0);
}

static void test_equality(void **state) {
    (void)state;
    assert_int_equal(qv_equals(qv_null(), qv_int(1)).type, QV_NULL);
    assert_true(qv_equals(qv_int(1), qv_double(1.0)).u.b);
    assert_false(qv_equals(qv_int(1), S("1")).u.b);
    assert_false(qv_equals(qv_double(NAN), qv_double(NAN)).u.b);
    qv_list a, b;
    qv_value ai[2] = {qv_int(1), qv_null()}, bi[2] = {qv_int(1), qv_int(2)}, ci[2] = {qv_int(3), qv_null()};
    assert_int_equal(qv_equals(L(&a, 2, ai), L(&b, 2, bi)).type, QV_NULL);
    assert_false(qv_equals(L(&a, 2, ci), L(&b, 2, bi)).u.b);
    assert_false(qv_equals(L(&a, 1, ai), L(&b, 2, bi)).u.b);
    qv_str k1[2] = {{"a", 1}, {"b", 1}}, k2[2] = {{"b", 1}, {"a", 1}};
    qv_value v1[2] = {qv_int(1), qv_int(2)}, v2[2] = {qv_int(2), qv_int(1)};
    qv_map m1 = {.count = 2, .keys = k1, .values = v1}, m2 = {.count = 2, .keys = k2, .values = v2};
    qv_value x, y;
    x.type = y.type = QV_MAP;
    x.u.map = &m1;
    y.u.map = &m2;
    assert_true(qv_equals(x, y).u.b);
    assert_int_equal(qv_order(x, y), 0);
    assert_int_equal(qv_hash(x, 1), qv_hash(y, 1));
}

static void test_compare_and_hash(void **state) {
    (void)state;
    int r;
    assert_true(qv_compare(qv_int(1), qv_double(2.5), &r) && r < 0);
    assert_false(qv_compare(qv_int(1), S("a"), &r));
    assert_false(qv_compare(qv_double(NAN), qv_int(1), &r));
    assert_true(qv_compare(qv_bool(false), qv_bool(true), &r) && r < 0);
    assert_int_equal(qv_hash(qv_int(1), 7), qv_hash(qv_double(1.0), 7));
    assert_int_not_equal(qv_hash(qv_int(1), 7), qv_hash(qv_int(2), 7));
    assert_int_not_equal(qv_hash(S("a"), 7), qv_hash(S("b"), 7));
    assert_int_equal(qv_hash(S("abcdefghijk"), 7), qv_hash(S("abcdefghijk"), 7));
    assert_string_equal(qv_type_name(QV_INT), "Integer");
    assert_string_equal(qv_type_name(QV_STRING), "String");
}

static void test_deep_copy(void **state) {
    (void)state;
    q_arena a;
    q_arena_init(&a, 0);
    char buf[] = "hello";
    qv_list l;
    qv_value items[2] = {qv_string(buf, 5), qv_int(3)};
    qv_value v = L(&l, 2, items), out;
    assert_true(qv_deep_copy(&a, v, &out));
    buf[0] = 'j';
    assert_memory_equal(out.u.list->items[0].u.s.ptr, "hello", 5);
    assert_int_equal(out.u.list->items[1].u.i, 3);
    q_arena_free(&a);
    q_arena small;
    q_arena_init(&small, 32);
    assert_false(qv_deep_copy(&small, v, &out));
    q_arena_free(&small);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_across_types),
        cmocka_unit_test(test_equality),
        cmocka_unit_test(test_compare_and_hash),
        cmocka_unit_test(test_deep_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
