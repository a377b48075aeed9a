/*
 * test_node_cluster_helpers.c -- the pure parts of QUIVER.CLUSTER
 * (node/cluster.c): reading a member's INFO raft text and its RESP bulk
 * reply, checking raft addresses, and deriving a member's client address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "node/cluster.h"

static const char INFO_TEXT[] =
    "# Raft\r\n"
    "raft_node_id:3\r\n"
    "raft_role:follower\r\n"
    "raft_current_term:7\r\n"
    "raft_leader_id:2\r\n"
    "raft_leader_address:127.0.0.1:8002\r\n"
    "raft_commit_index:120\r\n"
    "raft_last_applied_index:118\r\n"
    "raft_ready:0\r\n";

static void info_parses_every_field(void **state) {
    (void)state;
    cluster_member_info mi;
    assert_true(cluster_parse_info_raft(INFO_TEXT, strlen(INFO_TEXT), &mi));
    assert_int_equal(mi.node_id, 3);
    assert_string_equal(mi.state, "follower");
    assert_int_equal(mi.term, 7);
    assert_int_equal(mi.leader_id, 2);
    assert_int_equal(mi.commit_index, 120);
    assert_int_equal(mi.applied_index, 118);
    /* LF line ends and other sections around it work too. */
    const char *lf = "# Server\nredis_version:7.2.4\n\n# Raft\nraft_role:leader\nraft_current_term:1\n"
                     "raft_commit_index:5\nraft_last_applied_index:5";
    assert_true(cluster_parse_info_raft(lf, strlen(lf), &mi));
    assert_string_equal(mi.state, "leader");
    assert_int_equal(mi.leader_id, 0);
    assert_int_equal(mi.applied_index, 5);
}

static void info_missing_or_bad_fields_fail(void **state) {
    (void)state;
    cluster_member_info mi;
    const char *no_role = "raft_current_term:1\r\nraft_commit_index:5\r\nraft_last_applied_index:5\r\n";
    assert_false(cluster_parse_info_raft(no_role, strlen(no_role), &mi));
    const char *bad_term = "raft_role:leader\r\nraft_current_term:x\r\nraft_commit_index:5\r\nraft_last_applied_index:5\r\n";
    assert_false(cluster_parse_info_raft(bad_term, strlen(bad_term), &mi));
    const char *huge = "raft_role:leader\r\nraft_current_term:99999999999999999999\r\nraft_commit_index:5\r\n"
                       "raft_last_applied_index:5\r\n";
    assert_false(cluster_parse_info_raft(huge, strlen(huge), &mi));
    const char *long_role = "raft_role:averyveryverylongrolename\r\nraft_current_term:1\r\nraft_commit_index:5\r\n"
                            "raft_last_applied_index:5\r\n";
    assert_false(cluster_parse_info_raft(long_role, strlen(long_role), &mi));
    assert_false(cluster_parse_info_raft("", 0, &mi));
    /* A prefix of a key is not the key. */
    const char *prefix = "raft_rol:leader\r\nraft_current_term:1\r\nraft_commit_index:5\r\nraft_last_applied_index:5\r\n";
    assert_false(cluster_parse_info_raft(prefix, strlen(prefix), &mi));
}

static void bulk_reply_framing(void **state) {
    (void)state;
    const char *text;
    size_t len;
    const char *full = "$5\r\nhello\r\n";
    assert_int_equal(cluster_parse_bulk_reply(full, strlen(full), &text, &len), 1);
    assert_int_equal(len, 5);
    assert_memory_equal(text, "hello", 5);
    /* Every cut before the end needs more bytes. */
    for (size_t cut = 0; cut < strlen(full); cut++)
        assert_int_equal(cluster_parse_bulk_reply(full, cut, &text, &len), 0);
    const char *err = "-ERR unknown command\r\n";
    assert_int_equal(cluster_parse_bulk_reply(err, strlen(err), &text, &len), -1);
    assert_non_null(text);
    assert_int_equal(len, strlen("ERR unknown command"));
    assert_int_equal(cluster_parse_bulk_reply("+OK\r\n", 5, &text, &len), -1);
    assert_null(text);
    assert_int_equal(cluster_parse_bulk_reply("$x\r\n", 4, &text, &len), -1);
    assert_int_equal(cluster_parse_bulk_reply("$3\r\nabcXY", 9, &text, &len), -1); /* no CRLF after the data */
    assert_int_equal(cluster_parse_bulk_reply("$99999999\r\n", 11, &text, &len), -1); /* over the bound */
}

static void addresses(void **state) {
    (void)state;
    assert_true(cluster_address_valid("127.0.0.1:7000"));
    assert_true(cluster_address_valid("node1:7000"));
    assert_true(cluster_address_valid("[::1]:7000"));
    assert_false(cluster_address_valid("127.0.0.1"));
    assert_false(cluster_address_valid(":7000"));
    assert_false(cluster_address_valid("h:0"));
    assert_false(cluster_address_valid("h:65536"));
    assert_false(cluster_address_valid("h:70x"));
    assert_false(cluster_address_valid("h h:7000"));
    assert_false(cluster_address_valid("::1:7000"));
    assert_false(cluster_address_valid(""));
    char long_host[128];
    memset(long_host, 'h', 80);
    strcpy(long_host + 80, ":7000");
    assert_false(cluster_address_valid(long_host));
}

static void client_addresses(void **state) {
    (void)state;
    node_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.peer_count = 2;
    cfg.peers[0].id = 1;
    strcpy(cfg.peers[0].address, "10.0.0.1:7379");
    strcpy(cfg.peer_client_addresses[0], "10.0.0.1:6379");
    cfg.peers[1].id = 2;
    strcpy(cfg.peers[1].address, "node2:7000");
    strcpy(cfg.peer_client_addresses[1], "node2:6400");
    char out[REPL_ADDRESS_SIZE_MAX_BYTES];
    /* In --peers: its client address, whatever the raft address given. */
    cluster_client_address(&cfg, 2, "elsewhere:9999", out, sizeof out);
    assert_string_equal(out, "node2:6400");
    /* Not in --peers: raft port - NODE_RAFT_PORT_OFFSET on the raft host. */
    cluster_client_address(&cfg, 4, "node4:7379", out, sizeof out);
    assert_string_equal(out, "node4:6379");
    cluster_client_address(&cfg, 5, "[::1]:8000", out, sizeof out);
    assert_string_equal(out, "[::1]:7000");
    cluster_client_address(&cfg, 6, "node6:1000", out, sizeof out); /* nothing below the offset */
    assert_string_equal(out, "");
    cluster_client_address(&cfg, 7, "garbage", out, sizeof out);
    assert_string_equal(out, "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(info_parses_every_field),
        cmocka_unit_test(info_missing_or_bad_fields_fail),
        cmocka_unit_test(bulk_reply_framing),
        cmocka_unit_test(addresses),
        cmocka_unit_test(client_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
