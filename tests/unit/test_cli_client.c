/*
 * test_cli_client.c -- the query side of `quiver` (cli/client.c) against an
 * in-process fake server: table output, error replies, a dropped
 * connection, `quiver status`, and connection errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cli/client.h"
#include "test_cli_fake_server.h"

/* A bulk string reply of text (static storage: one at a time). */
static const char *bulk_reply(const char *text) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "$%zu\r\n%s\r\n", strlen(text), text);
    return buf;
}

static const char *canned(fake *f, const redisReply *req) {
    (void)f;
    if (req->type != REDIS_REPLY_ARRAY || req->elements < 1) return NULL;
    const char *cmd = req->element[0]->str;
    if (strcmp(cmd, "INFO") == 0) {
        if (req->elements == 2 && strcmp(req->element[1]->str, "raft") == 0)
            return bulk_reply("# Raft\r\nraft_node_id:1\r\nraft_role:leader\r\nraft_current_term:3\r\nraft_peers:1\r\n");
        return "$0\r\n\r\n";
    }
    if (strcmp(cmd, "GRAPH.QUERY") != 0 || req->elements != 3) return NULL;
    const char *q = req->element[2]->str;
    if (strcmp(q, "RETURN 1 AS one, 'x' AS s") == 0)
        return "*3\r\n*2\r\n$3\r\none\r\n$1\r\ns\r\n*1\r\n*2\r\n:1\r\n$1\r\nx\r\n"
               "*2\r\n$19\r\nCached execution: 0\r\n$52\r\nQuery internal execution time: 0.010000 milliseconds\r\n";
    if (strcmp(q, "CREATE ()") == 0) return "*1\r\n*1\r\n$16\r\nNodes created: 1\r\n";
    if (strcmp(q, "RETRN 1") == 0) return "-Invalid input 'RETRN': expected ... (line 1, column 1)\r\n";
    if (strcmp(q, "garbage") == 0) return ":42\r\n";
    if (strcmp(q, "hang up") == 0) return FAKE_CLOSE;
    return NULL;
}

typedef struct streams {
    char *out, *err;
    size_t out_len, err_len;
    FILE *fout, *ferr;
} streams;

static void open_streams(streams *s) {
    memset(s, 0, sizeof *s);
    s->fout = open_memstream(&s->out, &s->out_len);
    s->ferr = open_memstream(&s->err, &s->err_len);
}

static void close_streams(streams *s) {
    fclose(s->fout);
    fclose(s->ferr);
    free(s->out);
    free(s->err);
}

/* Connect with a read timeout, so a wrong canned reply fails the test
 * instead of hanging it (a bound, not a timed assertion). */
static redisContext *connect_bounded(int port, FILE *errf) {
    redisContext *c = cli_connect("127.0.0.1", port, errf);
    assert_non_null(c);
    struct timeval tv = {30, 0};
    assert_int_equal(redisSetTimeout(c, tv), REDIS_OK);
    return c;
}

static void test_queries(void **state) {
    (void)state;
    fake *f = fake_start();
    f->canned = canned;
    fake_run(f);
    streams s;
    open_streams(&s);
    redisContext *c = connect_bounded(f->port, s.ferr);
    assert_int_equal(cli_run_query(c, "g", "RETURN 1 AS one, 'x' AS s", s.fout, s.ferr), 0);
    assert_int_equal(cli_run_query(c, "g", "CREATE ()", s.fout, s.ferr), 0);
    fflush(s.fout);
    assert_string_equal(s.out,
                        "+-----+---+\n"
                        "| one | s |\n"
                        "+-----+---+\n"
                        "|   1 | x |\n"
                        "+-----+---+\n"
                        "1 row\n"
                        "Cached execution: 0\n"
                        "Query internal execution time: 0.010000 milliseconds\n"
                        "Nodes created: 1\n");
    assert_int_equal(cli_run_query(c, "g", "RETRN 1", s.fout, s.ferr), 1);
    assert_int_equal(cli_run_query(c, "g", "garbage", s.fout, s.ferr), 1);
    fflush(s.ferr);
    assert_non_null(strstr(s.err, "error: Invalid input 'RETRN': expected ... (line 1, column 1)\n"));
    assert_non_null(strstr(s.err, "error: unexpected reply shape: not an array\n"));
    /* The connection stays usable after a query error. */
    assert_int_equal(cli_run_query(c, "g", "CREATE ()", s.fout, s.ferr), 0);
    /* A dropped connection is reported as such (2: the context is dead). */
    assert_int_equal(cli_run_query(c, "g", "hang up", s.fout, s.ferr), 2);
    fflush(s.ferr);
    assert_non_null(strstr(s.err, "error: connection lost"));
    redisFree(c);
    close_streams(&s);
    fake_stop(f);
}

static void test_status(void **state) {
    (void)state;
    fake *f = fake_start();
    f->canned = canned;
    fake_run(f);
    streams s;
    open_streams(&s);
    redisContext *c = connect_bounded(f->port, s.ferr);
    assert_int_equal(cli_status(c, s.fout, s.ferr), 0);
    fflush(s.fout);
    assert_string_equal(s.out,
                        "+-------------------+--------+\n"
                        "| field             | value  |\n"
                        "+-------------------+--------+\n"
                        "| raft_node_id      | 1      |\n"
                        "| raft_role         | leader |\n"
                        "| raft_current_term | 3      |\n"
                        "| raft_peers        | 1      |\n"
                        "+-------------------+--------+\n");
    redisFree(c);
    close_streams(&s);
    fake_stop(f);
}

static const char *no_raft(fake *f, const redisReply *req) {
    (void)f;
    (void)req;
    return bulk_reply("# Server\r\nfoo:bar\r\n");
}

static void test_status_without_raft_section(void **state) {
    (void)state;
    fake *f = fake_start();
    f->canned = no_raft;
    fake_run(f);
    streams s;
    open_streams(&s);
    redisContext *c = connect_bounded(f->port, s.ferr);
    /* "foo:bar" is a field, so the table is printed; an empty INFO is an error. */
    assert_int_equal(cli_status(c, s.fout, s.ferr), 0);
    redisFree(c);
    close_streams(&s);
    fake_stop(f);
}

static const char *empty_info(fake *f, const redisReply *req) {
    (void)f;
    (void)req;
    return "$0\r\n\r\n";
}

static void test_status_empty(void **state) {
    (void)state;
    fake *f = fake_start();
    f->canned = empty_info;
    fake_run(f);
    streams s;
    open_streams(&s);
    redisContext *c = connect_bounded(f->port, s.ferr);
    assert_int_equal(cli_status(c, s.fout, s.ferr), 1);
    fflush(s.ferr);
    assert_non_null(strstr(s.err, "error: the server's INFO has no raft section"));
    redisFree(c);
    close_streams(&s);
    fake_stop(f);
}

static void test_connect_refused(void **state) {
    (void)state;
    fake *f = fake_start();
    int port = f->port;
    fake_run(f);
    fake_stop(f);
    streams s;
    open_streams(&s);
    assert_null(cli_connect("127.0.0.1", port, s.ferr));
    fflush(s.ferr);
    char want[64];
    snprintf(want, sizeof want, "error: cannot connect to 127.0.0.1:%d: ", port);
    assert_non_null(strstr(s.err, want));
    close_streams(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_status_without_raft_section),
        cmocka_unit_test(test_status_empty),
        cmocka_unit_test(test_connect_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
