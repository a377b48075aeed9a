/*
 * test_cli_status.c -- `quiver status` rendering (cli/status.c) of
 * QUIVER.CLUSTER NODES replies, parsed from RESP bytes by hiredis' reader
 * (the shape node/cluster.h documents).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "cli/status.h"

static redisReply *parse(const char *resp) {
    redisReader *rd = redisReaderCreate();
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
    assert_non_null(reply);
    redisReaderFree(rd);
    return reply;
}


/* One node as the server sends it. */
static void node_resp(char *out, size_t size, int id, const char *state, const char *reachable, int term) {
    char figures[256];
    if (term >= 0)
        snprintf(figures, sizeof figures,
                 "$4\r\nterm\r\n:%d\r\n$12\r\ncommit_index\r\n:120\r\n$13\r\napplied_index\r\n:118\r\n$3\r\nlag\r\n:2\r\n",
                 term);
    else
        snprintf(figures, sizeof figures,
                 "$4\r\nterm\r\n$-1\r\n$12\r\ncommit_index\r\n$-1\r\n$13\r\napplied_index\r\n$-1\r\n$3\r\nlag\r\n$-1\r\n");
    snprintf(out, size,
             "*24\r\n$2\r\nid\r\n:%d\r\n$7\r\naddress\r\n$14\r\n127.0.0.1:700%d\r\n$12\r\nraft_address\r\n"
             "$14\r\n127.0.0.1:800%d\r\n$4\r\nrole\r\n$5\r\nvoter\r\n$5\r\nstate\r\n$%zu\r\n%s\r\n%s"
             "$9\r\nreachable\r\n$%zu\r\n%s\r\n$9\r\nleader_id\r\n:1\r\n$5\r\nerror\r\n$%s\r\n",
             id, id, id, strlen(state), state, figures, strlen(reachable), reachable,
             strcmp(reachable, "no") == 0 ? "18\r\nconnect: refused!!" : "0\r\n");
}

static char *render_ok(const char *resp) {
    redisReply *r = parse(resp);
    cli_buf out = CLI_BUF_INIT, err = CLI_BUF_INIT;
    assert_int_equal(cli_status_render(r, &out, &err), 0);
    assert_int_equal(err.len, 0);
    freeReplyObject(r);
    cli_buf_free(&err);
    return out.data;
}

static void table_of_three(void **state) {
    (void)state;
    char a[1024], b[1024], c[1024], all[4096];
    node_resp(a, sizeof a, 1, "leader", "yes", 7);
    node_resp(b, sizeof b, 2, "follower", "yes", 7);
    node_resp(c, sizeof c, 3, "unreachable", "no", -1);
    snprintf(all, sizeof all, "*3\r\n%s%s%s", a, b, c);
    char *text = render_ok(all);
    assert_non_null(strstr(text, "| id | address        | raft address   | role  | state       | term | commit index "
                                 "| applied index | lag | reachable |"));
    assert_non_null(strstr(text, "|  1 | 127.0.0.1:7001 | 127.0.0.1:8001 | voter | leader      |    7 |          120 "
                                 "|           118 |   2 | yes       |"));
    assert_non_null(strstr(text, "|  3 | 127.0.0.1:7003 | 127.0.0.1:8003 | voter | unreachable |    - |            - "
                                 "|             - |   - | no        |"));
    assert_non_null(strstr(text, "node 3 unreachable: connect: refused!!\n"));
    assert_null(strstr(text, "node 1 unreachable"));
    /* Every table line has the same width. */
    size_t width = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        if (line[0] == '|' || line[0] == '+') {
            if (width == 0) width = (size_t)(nl - line);
            assert_int_equal((size_t)(nl - line), width);
        }
        line = nl + 1;
    }
    free(text);
}

static void errors_and_odd_shapes(void **state) {
    (void)state;
    cli_buf out = CLI_BUF_INIT, err = CLI_BUF_INIT;
    redisReply *r = parse("-ERR unknown command 'QUIVER.CLUSTER'\r\n");
    assert_int_equal(cli_status_render(r, &out, &err), 1);
    assert_string_equal(err.data, "ERR unknown command 'QUIVER.CLUSTER'");
    freeReplyObject(r);
    cli_buf_clear(&err);
    r = parse("+OK\r\n");
    assert_int_equal(cli_status_render(r, &out, &err), 1);
    assert_non_null(strstr(err.data, "unexpected reply"));
    freeReplyObject(r);
    cli_buf_clear(&err);
    r = parse("*1\r\n*3\r\n$2\r\nid\r\n:1\r\n$1\r\nx\r\n"); /* odd field list */
    assert_int_equal(cli_status_render(r, &out, &err), 1);
    assert_non_null(strstr(err.data, "element 1"));
    freeReplyObject(r);
    assert_int_equal(out.len, 0);
    /* Missing fields show as "-"; control bytes are not printed raw. */
    cli_buf_clear(&err);
    r = parse("*1\r\n*4\r\n$2\r\nid\r\n:9\r\n$7\r\naddress\r\n$3\r\na\x1b" "b\r\n");
    assert_int_equal(cli_status_render(r, &out, &err), 0);
    assert_non_null(strstr(out.data, "|  9 | a?b     | -            | -    |"));
    freeReplyObject(r);
    /* No members: a header-only table. */
    cli_buf_clear(&out);
    r = parse("*0\r\n");
    assert_int_equal(cli_status_render(r, &out, &err), 0);
    assert_non_null(strstr(out.data, "| id |"));
    assert_non_null(strstr(out.data, "no members: this node has no raft configuration yet"));
    freeReplyObject(r);
    cli_buf_free(&out);
    cli_buf_free(&err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_of_three),
        cmocka_unit_test(errors_and_odd_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
