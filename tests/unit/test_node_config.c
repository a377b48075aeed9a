/*
 * test_node_config.c -- quiverd's flags (node/config.c): defaults, every
 * flag, and the errors for bad values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "node/config.h"

static node_config_result parse(node_config *cfg, char *err, int argc, ...) {
    char *argv[32];
    va_list ap;
    va_start(ap, argc);
    argv[0] = "quiverd";
    for (int i = 1; i < argc; i++) argv[i] = va_arg(ap, char *);
    va_end(ap);
    argv[argc] = NULL;
    FILE *devnull = fopen("/dev/null", "w");
    node_config_result r = node_config_parse(argc, argv, cfg, devnull, err, 256);
    fclose(devnull);
    return r;
}

static void test_defaults(void **state) {
    (void)state;
    node_config c;
    char err[256];
    assert_int_equal(parse(&c, err, 1), NODE_CONFIG_RUN);
    assert_string_equal(c.data_dir, "./quiver-data");
    assert_string_equal(c.db_dir, "./quiver-data/db");
    assert_string_equal(c.raft_dir, "./quiver-data/raft");
    assert_int_equal(c.port, 6379);
    assert_string_equal(c.bind, "127.0.0.1");
    assert_int_equal(c.node_id, 1);
    assert_string_equal(c.raft_address, "127.0.0.1:7379");
    assert_int_equal(c.peer_count, 1);
    assert_int_equal(c.peers[0].id, 1);
    assert_string_equal(c.peers[0].address, "127.0.0.1:7379");
    assert_int_equal(c.max_request_bytes, 512ull * 1024 * 1024);
}

static void test_flags(void **state) {
    (void)state;
    node_config c;
    char err[256];
    assert_int_equal(parse(&c, err, 12, "--data-dir", "/tmp/x", "--port=6400", "--node-id", "2", "--peers",
                           "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003", "--reader-threads", "8",
                           "--election-timeout-ms", "500"),
                     NODE_CONFIG_RUN);
    assert_string_equal(c.db_dir, "/tmp/x/db");
    assert_int_equal(c.port, 6400);
    assert_int_equal(c.node_id, 2);
    assert_int_equal(c.peer_count, 3);
    assert_string_equal(c.raft_address, "127.0.0.1:7002");
    assert_int_equal(c.reader_threads, 8);
    assert_int_equal(c.election_timeout_ms, 500);
    assert_int_equal(parse(&c, err, 2, "--help"), NODE_CONFIG_EXIT_OK);
    assert_int_equal(parse(&c, err, 2, "--version"), NODE_CONFIG_EXIT_OK);
}

static void expect_error(const char *needle, int argc, char *a1, char *a2) {
    node_config c;
    char err[256] = {0};
    node_config_result r = argc == 2 ? parse(&c, err, 2, a1) : parse(&c, err, 3, a1, a2);
    assert_int_equal(r, NODE_CONFIG_ERROR);
    if (strstr(err, needle) == NULL) fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_errors(void **state) {
    (void)state;
    expect_error("unknown flag", 2, "--nope", NULL);
    expect_error("--port", 3, "--port", "0");
    expect_error("--port", 3, "--port", "65536");
    expect_error("--port", 3, "--port", "12x");
    expect_error("needs a value", 2, "--port", NULL);
    expect_error("--node-id", 3, "--node-id", "0");
    expect_error("--peers", 3, "--peers", "1=127.0.0.1");
    expect_error("--peers", 3, "--peers", "x=127.0.0.1:1");
    expect_error("listed twice", 3, "--peers", "1=a:1,1=b:2");
    expect_error("must include this node", 3, "--peers", "2=a:1,3=b:2");
    expect_error("--raft-address", 3, "--raft-address", "nohost");
    expect_error("--max-request-bytes", 3, "--max-request-bytes", "10");
    expect_error("--reader-threads", 3, "--reader-threads", "0");
    expect_error("unexpected argument", 2, "stray", NULL);
    expect_error("must be below", 3, "--heartbeat-timeout-ms", "5000");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
