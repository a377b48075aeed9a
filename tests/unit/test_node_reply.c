/*
 * test_node_reply.c -- RESP writer and FalkorDB's verbose / --compact
 * result-set encodings (node/reply.c), byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node/reply.h"

#define S(lit) ((qv_str){(lit), (uint32_t)(sizeof(lit) - 1)})

static void expect_buf_n(reply_buf *b, const char *want, size_t n) {
    if (b->len != n || memcmp(b->data, want, n) != 0) {
        fail_msg("reply mismatch\n got: %.*s\nwant: %s", (int)b->len, b->data ? b->data : "", want);
    }
}

static void expect_buf(reply_buf *b, const char *want) { expect_buf_n(b, want, strlen(want)); }

static void test_primitives(void **state) {
    (void)state;
    reply_buf b;
    reply_buf_init(&b, 0);
    reply_simple(&b, "OK");
    reply_error(&b, "ERR bad\r\nthing");
    reply_int(&b, 0);
    reply_int(&b, -42);
    reply_int(&b, INT64_MIN);
    reply_bulk(&b, "a\0b", 3);
    reply_null(&b);
    reply_array(&b, 2);
    reply_double(&b, 0.1);
    reply_double(&b, 3.0);
    reply_double(&b, 1e20);
    static const char want[] = "+OK\r\n-ERR bad  thing\r\n:0\r\n:-42\r\n:-9223372036854775808\r\n$3\r\na\0b\r\n"
                               "$-1\r\n*2\r\n$3\r\n0.1\r\n$1\r\n3\r\n$5\r\n1e+20\r\n";
    expect_buf_n(&b, want, sizeof(want) - 1);
    reply_buf_free(&b);
}

static void test_overflow_replaced_by_error(void **state) {
    (void)state;
    reply_buf b;
    reply_buf_init(&b, 64);
    for (int i = 0; i < 10; i++) reply_bulk_cstr(&b, "0123456789");
    assert_true(b.overflow);
    assert_true(reply_fix_overflow(&b));
    assert_false(b.overflow);
    assert_true(b.len > 0 && b.data[0] == '-');
    reply_buf_free(&b);
}

/* A node (id 3, label P id 0, props v=1 (key 0), name="x" (key 1)). */
static qv_node node3(void) {
    static uint32_t label_ids[] = {0};
    static qv_str label_names[] = {{"P", 1}};
    static uint32_t key_ids[] = {0, 1};
    static qv_str keys[] = {{"v", 1}, {"name", 4}};
    static qv_value values[2];
    values[0] = qv_int(1);
    values[1] = qv_string("x", 1);
    qv_node n = {.id = 3, .loaded = true, .label_count = 1, .label_ids = label_ids, .label_names = label_names,
                 .props = {.count = 2, .key_ids = key_ids, .keys = keys, .values = values}};
    return n;
}

static qv_edge edge7(void) {
    static uint32_t key_ids[] = {2};
    static qv_str keys[] = {{"w", 1}};
    static qv_value values[1];
    values[0] = qv_double(2.5);
    qv_edge e = {.id = 7, .src_id = 3, .dst_id = 4, .type_id = 1, .loaded = true, .type_name = {"KNOWS", 5},
                 .props = {.count = 1, .key_ids = key_ids, .keys = keys, .values = values}};
    return e;
}

static void test_verbose_scalars(void **state) {
    (void)state;
    reply_buf b;
    reply_buf_init(&b, 0);
    reply_value_verbose(&b, qv_null());
    reply_value_verbose(&b, qv_bool(true));
    reply_value_verbose(&b, qv_bool(false));
    reply_value_verbose(&b, qv_int(7));
    reply_value_verbose(&b, qv_double(2.5));
    reply_value_verbose(&b, qv_string("hi", 2));
    expect_buf(&b, "$-1\r\n$4\r\ntrue\r\n$5\r\nfalse\r\n:7\r\n$3\r\n2.5\r\n$2\r\nhi\r\n");
    reply_buf_free(&b);
}

static void test_verbose_entities(void **state) {
    (void)state;
    reply_buf b;
    reply_buf_init(&b, 0);
    qv_node n = node3();
    qv_value v = {.type = QV_NODE, .u.node = &n};
    reply_value_verbose(&b, v);
    expect_buf(&b, "*3\r\n*2\r\n$2\r\nid\r\n:3\r\n*2\r\n$6\r\nlabels\r\n*1\r\n$1\r\nP\r\n"
                   "*2\r\n$10\r\nproperties\r\n*2\r\n*2\r\n$1\r\nv\r\n:1\r\n*2\r\n$4\r\nname\r\n$1\r\nx\r\n");
    reply_buf_clear(&b);
    qv_edge e = edge7();
    v.type = QV_EDGE;
    v.u.edge = &e;
    reply_value_verbose(&b, v);
    expect_buf(&b, "*5\r\n*2\r\n$2\r\nid\r\n:7\r\n*2\r\n$4\r\ntype\r\n$5\r\nKNOWS\r\n"
                   "*2\r\n$8\r\nsrc_node\r\n:3\r\n*2\r\n$9\r\ndest_node\r\n:4\r\n"
                   "*2\r\n$10\r\nproperties\r\n*1\r\n*2\r\n$1\r\nw\r\n$3\r\n2.5\r\n");
    reply_buf_free(&b);
}

static void test_verbose_collections_as_text(void **state) {
    (void)state;
    reply_buf b;
    reply_buf_init(&b, 0);
    qv_node n = node3();
    qv_value items[6] = {qv_int(1), qv_string("a", 1), qv_double(2.5), qv_null(), qv_bool(true),
                         {.type = QV_NODE, .u.node = &n}};
    qv_list inner = {.count = 6, .items = items};
    qv_value lv = {.type = QV_LIST, .u.list = &inner};
    reply_value_verbose(&b, lv);
    expect_buf(&b, "$33\r\n[1, a, 2.500000, NULL, true, (3)]\r\n");
    reply_buf_clear(&b);

    qv_str keys[2] = {S("k"), S("l")};
    qv_value vals[2] = {qv_int(1), lv};
    qv_map m = {.count = 2, .keys = keys, .values = vals};
    qv_value mv = {.type = QV_MAP, .u.map = &m};
    reply_value_verbose(&b, mv);
    expect_buf(&b, "$44\r\n{k: 1, l: [1, a, 2.500000, NULL, true, (3)]}\r\n");
    reply_buf_clear(&b);

    qv_node n2 = node3();
    n2.id = 4;
    qv_edge e = edge7();
    qv_node *nodes[2] = {&n, &n2};
    qv_edge *edges[1] = {&e};
    qv_path p = {.node_count = 2, .nodes = nodes, .edges = edges};
    qv_value pv = {.type = QV_PATH, .u.path = &p};
    reply_value_verbose(&b, pv);
    expect_buf(&b, "$15\r\n[(3), [7], (4)]\r\n");
    reply_buf_free(&b);
}

static void test_compact_values(void **state) {
    (void)state;
    reply_buf b;
    reply_buf_init(&b, 0);
    reply_value_compact(&b, qv_null());
    reply_value_compact(&b, qv_string("s", 1));
    reply_value_compact(&b, qv_int(-1));
    reply_value_compact(&b, qv_bool(true));
    reply_value_compact(&b, qv_double(0.5));
    expect_buf(&b, "*2\r\n:1\r\n$-1\r\n*2\r\n:2\r\n$1\r\ns\r\n*2\r\n:3\r\n:-1\r\n*2\r\n:4\r\n$4\r\ntrue\r\n"
                   "*2\r\n:5\r\n$3\r\n0.5\r\n");
    reply_buf_clear(&b);

    qv_value items[2] = {qv_int(1), qv_string("a", 1)};
    qv_list l = {.count = 2, .items = items};
    qv_value lv = {.type = QV_LIST, .u.list = &l};
    reply_value_compact(&b, lv);
    expect_buf(&b, "*2\r\n:6\r\n*2\r\n*2\r\n:3\r\n:1\r\n*2\r\n:2\r\n$1\r\na\r\n");
    reply_buf_clear(&b);

    qv_node n = node3();
    qv_value nv = {.type = QV_NODE, .u.node = &n};
    reply_value_compact(&b, nv);
    expect_buf(&b, "*2\r\n:8\r\n*3\r\n:3\r\n*1\r\n:0\r\n*2\r\n*3\r\n:0\r\n:3\r\n:1\r\n*3\r\n:1\r\n:2\r\n$1\r\nx\r\n");
    reply_buf_clear(&b);

    qv_edge e = edge7();
    qv_value ev = {.type = QV_EDGE, .u.edge = &e};
    reply_value_compact(&b, ev);
    expect_buf(&b, "*2\r\n:7\r\n*5\r\n:7\r\n:1\r\n:3\r\n:4\r\n*1\r\n*3\r\n:2\r\n:5\r\n$3\r\n2.5\r\n");
    reply_buf_clear(&b);

    qv_str keys[1] = {S("k")};
    qv_value vals[1] = {qv_int(9)};
    qv_map m = {.count = 1, .keys = keys, .values = vals};
    qv_value mv = {.type = QV_MAP, .u.map = &m};
    reply_value_compact(&b, mv);
    expect_buf(&b, "*2\r\n:10\r\n*2\r\n$1\r\nk\r\n*2\r\n:3\r\n:9\r\n");
    reply_buf_clear(&b);

    qv_node n2 = node3();
    n2.id = 4;
    n2.props.count = 0;
    n2.label_count = 0;
    qv_edge e2 = edge7();
    e2.props.count = 0;
    qv_node *nodes[2] = {&n2, &n2};
    qv_edge *edges[1] = {&e2};
    qv_path p = {.node_count = 2, .nodes = nodes, .edges = edges};
    qv_value pv = {.type = QV_PATH, .u.path = &p};
    reply_value_compact(&b, pv);
    expect_buf(&b, "*2\r\n:9\r\n*2\r\n"
                   "*2\r\n:6\r\n*2\r\n*2\r\n:8\r\n*3\r\n:4\r\n*0\r\n*0\r\n*2\r\n:8\r\n*3\r\n:4\r\n*0\r\n*0\r\n"
                   "*2\r\n:6\r\n*1\r\n*2\r\n:7\r\n*5\r\n:7\r\n:1\r\n:3\r\n:4\r\n*0\r\n");
    reply_buf_free(&b);
}

static void test_value_type_codes(void **state) {
    (void)state;
    assert_int_equal(reply_value_type_of(qv_null()), 1);
    assert_int_equal(reply_value_type_of(qv_string("", 0)), 2);
    assert_int_equal(reply_value_type_of(qv_int(0)), 3);
    assert_int_equal(reply_value_type_of(qv_bool(0)), 4);
    assert_int_equal(reply_value_type_of(qv_double(0)), 5);
    qv_value v = {.type = QV_LIST};
    assert_int_equal(reply_value_type_of(v), 6);
    v.type = QV_EDGE;
    assert_int_equal(reply_value_type_of(v), 7);
    v.type = QV_NODE;
    assert_int_equal(reply_value_type_of(v), 8);
    v.type = QV_PATH;
    assert_int_equal(reply_value_type_of(v), 9);
    v.type = QV_MAP;
    assert_int_equal(reply_value_type_of(v), 10);
    v.type = 200;
    assert_int_equal(reply_value_type_of(v), 0);
}

static void test_statistics_order(void **state) {
    (void)state;
    reply_buf b;
    reply_buf_init(&b, 0);
    query_stats s = {.labels_added = 1, .labels_removed = 2, .nodes_created = 3, .nodes_deleted = 4,
                     .properties_set = 5, .properties_removed = 6, .relationships_created = 7,
                     .relationships_deleted = 8, .indices_created = 9, .indices_deleted = 10,
                     .execution_time_ms = 0.1234564};
    reply_statistics(&b, &s);
    expect_buf(&b, "*12\r\n$15\r\nLabels added: 1\r\n$17\r\nLabels removed: 2\r\n$16\r\nNodes created: 3\r\n"
                   "$17\r\nProperties set: 5\r\n$21\r\nProperties removed: 6\r\n"
                   "$24\r\nRelationships created: 7\r\n$16\r\nNodes deleted: 4\r\n"
                   "$24\r\nRelationships deleted: 8\r\n$18\r\nIndices created: 9\r\n$19\r\nIndices deleted: 10\r\n"
                   "$19\r\nCached execution: 0\r\n$52\r\nQuery internal execution time: 0.123456 milliseconds\r\n");
    reply_buf_clear(&b);
    query_stats z = {0};
    reply_statistics(&b, &z);
    expect_buf(&b, "*2\r\n$19\r\nCached execution: 0\r\n$52\r\nQuery internal execution time: 0.000000 milliseconds\r\n");
    reply_buf_free(&b);
}

static query_result make_result(void) {
    query_result r;
    memset(&r, 0, sizeof(r));
    static qv_str cols[2] = {{"a", 1}, {"n.v", 3}};
    static qv_value cells[4];
    cells[0] = qv_int(1);
    cells[1] = qv_string("x", 1);
    cells[2] = qv_null();
    cells[3] = qv_double(1.5);
    r.status = QUERY_OK;
    r.column_count = 2;
    r.columns = cols;
    r.row_count = 2;
    r.cells = cells;
    return r;
}

static void test_result_verbose_and_compact(void **state) {
    (void)state;
    reply_buf b;
    reply_buf_init(&b, 0);
    query_result r = make_result();
    reply_query_result(&b, &r, false);
    const char *stats = "*2\r\n$19\r\nCached execution: 0\r\n$52\r\nQuery internal execution time: 0.000000 milliseconds\r\n";
    char want[512];
    snprintf(want, sizeof(want), "*3\r\n*2\r\n$1\r\na\r\n$3\r\nn.v\r\n*2\r\n*2\r\n:1\r\n$1\r\nx\r\n*2\r\n$-1\r\n$3\r\n1.5\r\n%s",
             stats);
    expect_buf(&b, want);
    reply_buf_clear(&b);
    reply_query_result(&b, &r, true);
    snprintf(want, sizeof(want),
             "*3\r\n*2\r\n*2\r\n:1\r\n$1\r\na\r\n*2\r\n:1\r\n$3\r\nn.v\r\n*2\r\n"
             "*2\r\n*2\r\n:3\r\n:1\r\n*2\r\n:2\r\n$1\r\nx\r\n*2\r\n*2\r\n:1\r\n$-1\r\n*2\r\n:5\r\n$3\r\n1.5\r\n%s",
             stats);
    expect_buf(&b, want);
    reply_buf_clear(&b);

    /* No columns (a write without RETURN): statistics only. */
    r.column_count = 0;
    r.row_count = 0;
    r.stats.nodes_created = 1;
    reply_query_result(&b, &r, false);
    expect_buf(&b, "*1\r\n*3\r\n$16\r\nNodes created: 1\r\n$19\r\nCached execution: 0\r\n"
                   "$52\r\nQuery internal execution time: 0.000000 milliseconds\r\n");
    reply_buf_clear(&b);

    /* Columns but no rows. */
    r = make_result();
    r.row_count = 0;
    reply_query_result(&b, &r, false);
    snprintf(want, sizeof(want), "*3\r\n*2\r\n$1\r\na\r\n$3\r\nn.v\r\n*0\r\n%s", stats);
    expect_buf(&b, want);
    reply_buf_free(&b);
}

static void test_result_error(void **state) {
    (void)state;
    reply_buf b;
    reply_buf_init(&b, 0);
    query_result r;
    memset(&r, 0, sizeof(r));
    r.status = QUERY_ERR_RUNTIME;
    r.error = "Type mismatch: expected Integer but was String";
    reply_query_result(&b, &r, false);
    expect_buf(&b, "-Type mismatch: expected Integer but was String\r\n");
    reply_buf_clear(&b);
    r.error = NULL;
    reply_query_result(&b, &r, true);
    expect_buf(&b, "-ERR query failed\r\n");
    reply_buf_free(&b);
}

static void test_result_too_large(void **state) {
    (void)state;
    reply_buf b;
    reply_buf_init(&b, 100);
    query_result r = make_result();
    reply_query_result(&b, &r, false);
    assert_true(b.len > 0 && b.data[0] == '-');
    assert_non_null(memmem(b.data, b.len, "reply buffer limit", 18));
    reply_buf_free(&b);
}

static void test_explain(void **state) {
    (void)state;
    reply_buf b;
    reply_buf_init(&b, 0);
    query_result r;
    memset(&r, 0, sizeof(r));
    qv_str cols[1] = {S("plan")};
    qv_value cells[2] = {qv_string("Results", 7), qv_string("    Project", 11)};
    r.column_count = 1;
    r.columns = cols;
    r.row_count = 2;
    r.cells = cells;
    reply_explain_result(&b, &r);
    expect_buf(&b, "*2\r\n$7\r\nResults\r\n$11\r\n    Project\r\n");
    reply_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primitives),
        cmocka_unit_test(test_overflow_replaced_by_error),
        cmocka_unit_test(test_verbose_scalars),
        cmocka_unit_test(test_verbose_entities),
        cmocka_unit_test(test_verbose_collections_as_text),
        cmocka_unit_test(test_compact_values),
        cmocka_unit_test(test_value_type_codes),
        cmocka_unit_test(test_statistics_order),
        cmocka_unit_test(test_result_verbose_and_compact),
        cmocka_unit_test(test_result_error),
        cmocka_unit_test(test_result_too_large),
        cmocka_unit_test(test_explain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
