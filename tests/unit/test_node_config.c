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

#include "common/limits.h"
#include "node/config.h"
#include "node/memory.h"

static node_config_result parse(node_config *cfg, char *err, int argc, ...) {
    char *argv[40];
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
    assert_int_equal(c.max_request_bytes, 64ull * 1024 * 1024);
    assert_int_equal(c.max_entry_bytes, 64ull * 1024 * 1024);
    assert_int_equal(c.client_output_buffer_limit_bytes, QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES);
    assert_int_equal(c.client_query_buffer_limit_bytes, 64ull * 1024 * 1024 + QUIVER_CLIENT_QUERY_BUFFER_OVERHEAD_BYTES);
    assert_int_equal(c.max_clients, QUIVER_CLIENTS_COUNT_MAX);
    assert_int_equal(c.timeout_s, 0);
    assert_int_equal(c.write_work_max, QUIVER_WRITE_WORK_MAX_DEFAULT);
    assert_int_equal(c.query_memory_max_bytes, QUIVER_QUERY_MEMORY_MAX_BYTES);
    /* Machine-dependent defaults: 75% of the machine, half of that for clients. */
    assert_true(c.machine_memory_bytes > 0);
    assert_int_equal(c.maxmemory_bytes, node_memory_percent_of(c.machine_memory_bytes, 75));
    assert_int_equal(c.maxmemory_clients_bytes, node_memory_percent_of(c.maxmemory_bytes, 50));
    assert_int_equal(node_config_reply_size_max_bytes(&c), QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES);
}

static void test_client_limits(void **state) {
    (void)state;
    node_config c;
    char err[256];
    assert_int_equal(parse(&c, err, 15, "--maxclients", "7", "--timeout", "30", "--client-output-buffer-limit", "8mb",
                           "--maxmemory", "2gb", "--maxmemory-clients", "10%", "--max-request-bytes", "1m",
                           "--max-entry-bytes", "2097152"),
                     NODE_CONFIG_RUN);
    assert_int_equal(c.max_clients, 7);
    assert_int_equal(c.timeout_s, 30);
    assert_int_equal(c.client_output_buffer_limit_bytes, 8ull << 20);
    assert_int_equal(node_config_reply_size_max_bytes(&c), 8ull << 20); /* the reply cap follows */
    assert_int_equal(c.maxmemory_bytes, 2ull << 30);
    assert_int_equal(c.maxmemory_clients_bytes, (2ull << 30) / 10);
    assert_int_equal(c.max_request_bytes, 1000000);
    /* The query buffer follows --max-request-bytes unless given. */
    assert_int_equal(c.client_query_buffer_limit_bytes, 1000000 + QUIVER_CLIENT_QUERY_BUFFER_OVERHEAD_BYTES);
    assert_int_equal(c.max_entry_bytes, 2097152);
    /* Redis' alias and explicit values; 0 = no limit. */
    assert_int_equal(parse(&c, err, 9, "--max-clients", "9", "--maxmemory", "0", "--maxmemory-clients", "3MB",
                           "--client-query-buffer-limit", "1GB"),
                     NODE_CONFIG_RUN);
    assert_int_equal(c.max_clients, 9);
    assert_int_equal(c.maxmemory_bytes, 0);
    assert_int_equal(c.maxmemory_clients_bytes, 3ull << 20);
    assert_int_equal(c.client_query_buffer_limit_bytes, 1ull << 30);
    /* With --maxmemory 0 a percentage is of the machine's memory. */
    assert_int_equal(parse(&c, err, 5, "--maxmemory", "0", "--maxmemory-clients", "20%"), NODE_CONFIG_RUN);
    assert_int_equal(c.maxmemory_clients_bytes, node_memory_percent_of(c.machine_memory_bytes, 20));
    assert_int_equal(parse(&c, err, 3, "--client-output-buffer-limit", "0"), NODE_CONFIG_RUN);
    assert_int_equal(node_config_reply_size_max_bytes(&c), QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES);
}

static void test_parse_bytes(void **state) {
    (void)state;
    uint64_t v = 0;
    assert_true(node_config_parse_bytes("0", &v) && v == 0);
    assert_true(node_config_parse_bytes("123", &v) && v == 123);
    assert_true(node_config_parse_bytes("1k", &v) && v == 1000);
    assert_true(node_config_parse_bytes("1kb", &v) && v == 1024);
    assert_true(node_config_parse_bytes("2M", &v) && v == 2000000);
    assert_true(node_config_parse_bytes("2mB", &v) && v == 2097152);
    assert_true(node_config_parse_bytes("3g", &v) && v == 3000000000ull);
    assert_true(node_config_parse_bytes("3GB", &v) && v == 3ull << 30);
    assert_false(node_config_parse_bytes("", &v));
    assert_false(node_config_parse_bytes("-1", &v));
    assert_false(node_config_parse_bytes("1 kb", &v));
    assert_false(node_config_parse_bytes("1tb", &v));
    assert_false(node_config_parse_bytes("kb", &v));
    assert_false(node_config_parse_bytes("99999999999999999999", &v));
    assert_false(node_config_parse_bytes("99999999999gb", &v)); /* overflows */
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
    /* --write-work-max 0 is "no budget", which repl_config spells UINT64_MAX */
    assert_int_equal(parse(&c, err, 3, "--write-work-max", "0"), NODE_CONFIG_RUN);
    assert_true(c.write_work_max == UINT64_MAX);
    assert_int_equal(parse(&c, err, 3, "--write-work-max", "1000"), NODE_CONFIG_RUN);
    assert_int_equal(c.write_work_max, 1000);
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
    expect_error("--maxclients", 3, "--maxclients", "0");
    expect_error("--maxclients", 3, "--max-clients", "10001");
    expect_error("--timeout", 3, "--timeout", "-1");
    expect_error("--max-entry-bytes", 3, "--max-entry-bytes", "1000");
    expect_error("--max-entry-bytes", 3, "--max-entry-bytes", "2gb");
    expect_error("--client-output-buffer-limit", 3, "--client-output-buffer-limit", "100");
    expect_error("--client-query-buffer-limit", 3, "--client-query-buffer-limit", "1kb");
    expect_error("--maxmemory", 3, "--maxmemory", "10kb");
    expect_error("--maxmemory", 3, "--maxmemory", "lots");
    expect_error("--maxmemory-clients", 3, "--maxmemory-clients", "101%");
    expect_error("--maxmemory-clients", 3, "--maxmemory-clients", "0%");
    expect_error("--maxmemory-clients", 3, "--maxmemory-clients", "5");
    expect_error("--write-work-max", 3, "--write-work-max", "-1");
    expect_error("--write-work-max", 3, "--write-work-max", "many");
    expect_error("--query-memory-max-bytes", 3, "--query-memory-max-bytes", "1k");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_client_limits),
        cmocka_unit_test(test_parse_bytes),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
