/*
 * test_node_consistency.c -- the pure parts of read consistency, request
 * ids and readiness (node/router.h, node/reply.h, node/server.h):
 * QUIVER.CONSISTENCY level names, QUIVER.REQUESTID argument parsing, the
 * stale-read statistics line and where it goes in a reply, the stale lag
 * arithmetic, and the start-up readiness rule on hand-made raft views.
 * The commands themselves run in tests/integration/test_consistency.py.
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
#include "node/router.h"
#include "node/server.h"

static void test_level_names(void **state) {
    (void)state;
    node_consistency l = NODE_CONSISTENCY_STALE;
    assert_true(router_consistency_parse("linearizable", 12, &l));
    assert_int_equal(l, NODE_CONSISTENCY_LINEARIZABLE);
    assert_true(router_consistency_parse("SESSION", 7, &l));
    assert_int_equal(l, NODE_CONSISTENCY_SESSION);
    assert_true(router_consistency_parse("Stale", 5, &l));
    assert_int_equal(l, NODE_CONSISTENCY_STALE);
    /* Prefixes, extensions, empty and other words: refused, *out untouched. */
    const char *bad[] = {"", "stal", "stale ", "stalex", "linear", "strong", "session\0x"};
    size_t bad_len[] = {0, 4, 6, 6, 6, 6, 9};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        l = NODE_CONSISTENCY_SESSION;
        assert_false(router_consistency_parse(bad[i], bad_len[i], &l));
        assert_int_equal(l, NODE_CONSISTENCY_SESSION);
    }
    assert_string_equal(router_consistency_name(NODE_CONSISTENCY_LINEARIZABLE), "linearizable");
    assert_string_equal(router_consistency_name(NODE_CONSISTENCY_SESSION), "session");
    assert_string_equal(router_consistency_name(NODE_CONSISTENCY_STALE), "stale");
}

static bool parse_id(const char *o, const char *s, sm_request_id *out) {
    return router_request_id_parse(o, strlen(o), s, strlen(s), out);
}

static void test_request_id_parse(void **state) {
    (void)state;
    sm_request_id id = {7, 7};
    assert_true(parse_id("1", "2", &id));
    assert_true(id.origin == 1 && id.seq == 2);
    assert_true(parse_id("18446744073709551615", "00000000000000000009", &id));
    assert_true(id.origin == UINT64_MAX && id.seq == 9);
    const char *bad[][2] = {
        {"0", "1"},  {"1", "0"},   {"00", "1"}, {"-1", "1"}, {"+1", "1"}, {" 1", "1"}, {"1 ", "1"},
        {"0x1", "1"}, {"1.5", "1"}, {"", "1"},   {"1", ""},   {"18446744073709551616", "1"},
        {"1", "99999999999999999999"}, {"123456789012345678901", "1"}, {"1e3", "1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        id.origin = id.seq = 42;
        assert_false(parse_id(bad[i][0], bad[i][1], &id));
        assert_true(id.origin == 42 && id.seq == 42); /* untouched */
    }
    /* An embedded NUL is not a digit. */
    assert_false(router_request_id_parse("1\0" "2", 3, "1", 1, &id));
}

/* The bulk strings of the statistics array: the last top-level element of a
 * RESP reply "*3 header rows stats" or "*1 stats" built by reply.c. */
static void test_lag_line_in_reply(void **state) {
    (void)state;
    char line[REPLY_LAG_LINE_SIZE_MAX_BYTES];
    reply_lag_line(line, sizeof line, 0);
    assert_string_equal(line, "Replication lag: 0 entries");
    reply_lag_line(line, sizeof line, UINT64_MAX);
    assert_string_equal(line, "Replication lag: 18446744073709551615 entries");

    query_result r;
    memset(&r, 0, sizeof r);
    r.status = QUERY_OK;
    r.stats.nodes_created = 2;
    r.stats.execution_time_ms = 0.5;
    reply_buf plain, with;
    reply_buf_init(&plain, 0);
    reply_buf_init(&with, 0);
    reply_query_result(&plain, &r, false);
    reply_lag_line(line, sizeof line, 3);
    reply_query_result_with(&with, &r, false, line);
    const char *want_plain = "*1\r\n*3\r\n$16\r\nNodes created: 2\r\n$19\r\nCached execution: 0\r\n"
                             "$52\r\nQuery internal execution time: 0.500000 milliseconds\r\n";
    const char *want_with = "*1\r\n*4\r\n$16\r\nNodes created: 2\r\n$19\r\nCached execution: 0\r\n"
                            "$52\r\nQuery internal execution time: 0.500000 milliseconds\r\n"
                            "$26\r\nReplication lag: 3 entries\r\n";
    assert_int_equal(plain.len, strlen(want_plain));
    assert_memory_equal(plain.data, want_plain, plain.len);
    assert_int_equal(with.len, strlen(want_with));
    assert_memory_equal(with.data, want_with, with.len);
    /* NULL extra: byte for byte the plain reply. */
    reply_buf none;
    reply_buf_init(&none, 0);
    reply_query_result_with(&none, &r, false, NULL);
    assert_int_equal(none.len, plain.len);
    assert_memory_equal(none.data, plain.data, plain.len);
    /* A query error: the error only, no statistics. */
    reply_buf err;
    reply_buf_init(&err, 0);
    r.status = QUERY_ERR_RUNTIME;
    r.error = "boom";
    reply_query_result_with(&err, &r, false, line);
    assert_int_equal(err.len, strlen("-boom\r\n"));
    assert_memory_equal(err.data, "-boom\r\n", err.len);
    reply_buf_free(&plain);
    reply_buf_free(&with);
    reply_buf_free(&none);
    reply_buf_free(&err);
}

static void test_stale_lag(void **state) {
    (void)state;
    node n;
    memset(&n, 0, sizeof n);
    repl_info ri;
    memset(&ri, 0, sizeof ri);
    assert_int_equal(node_stale_lag_entries(&n, NULL), 0);
    ri.commit_index = 10;
    ri.last_applied_index = 7;
    assert_int_equal(node_stale_lag_entries(&n, &ri), 3);
    node_note_leader_index(&n, 15); /* the leader told us more than raft did */
    assert_int_equal(node_stale_lag_entries(&n, &ri), 8);
    node_note_leader_index(&n, 12); /* never goes back */
    assert_int_equal(n.leader_index_seen, 15);
    ri.last_applied_index = 20; /* applied past what we know: no negative lag */
    assert_int_equal(node_stale_lag_entries(&n, &ri), 0);
}

static void test_readiness_rule(void **state) {
    (void)state;
    node_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.peer_count = 1;
    node n;
    memset(&n, 0, sizeof n);
    n.cfg = &cfg;
    repl_info ri;
    memset(&ri, 0, sizeof ri);
    ri.node_id = 1;
    /* Without raft: ready iff a leader is named. */
    assert_false(node_ready(&n, NULL));
    assert_false(node_ready(&n, &ri));
    ri.leader_id = 2;
    assert_true(node_ready(&n, &ri));

    /* With raft (a dummy pointer: node_ready only reads ri), one node. */
    n.repl = (repl *)&cfg;
    memset(&ri, 0, sizeof ri);
    ri.node_id = 1;
    ri.commit_index = 5;
    assert_false(node_ready(&n, &ri)); /* no leader yet: nothing recorded */
    assert_false(n.startup_recorded);
    ri.leader_id = 1; /* itself, not ready yet: still no known leader */
    assert_false(node_ready(&n, &ri));
    assert_false(n.startup_recorded);
    ri.ready = true;
    ri.commit_index = 9;
    ri.last_applied_index = 8;
    assert_false(node_ready(&n, &ri)); /* leader, but applied 8 < the start-up commit index 9 */
    assert_true(n.startup_recorded);
    assert_int_equal(n.startup_commit_index, 9);
    ri.commit_index = 30; /* later commits do not move the bar */
    ri.last_applied_index = 9;
    assert_true(node_ready(&n, &ri));
    assert_int_equal(n.startup_commit_index, 9);
    ri.ready = false; /* deposed, no leader known now: not ready */
    ri.leader_id = 0;
    assert_false(node_ready(&n, &ri));

    /* A follower of a cluster without a forwarder (cannot ask the leader):
     * the start-up gate waits for raft's ready flag, which a follower never
     * has -- readiness then needs the forwarder's read index. */
    node f;
    memset(&f, 0, sizeof f);
    node_config cfg3 = cfg;
    cfg3.peer_count = 3;
    f.cfg = &cfg3;
    f.repl = (repl *)&cfg3;
    memset(&ri, 0, sizeof ri);
    ri.node_id = 2;
    ri.leader_id = 1;
    ri.commit_index = 4;
    ri.last_applied_index = 4;
    assert_false(node_ready(&f, &ri));
    assert_true(f.startup_recorded);
    assert_false(f.startup_gate_done);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_names),      cmocka_unit_test(test_request_id_parse),
        cmocka_unit_test(test_lag_line_in_reply), cmocka_unit_test(test_stale_lag),
        cmocka_unit_test(test_readiness_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
