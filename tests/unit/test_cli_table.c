/*
 * test_cli_table.c -- table rendering (cli/table.c), verbose reply to table
 * conversion from constructed hiredis reply trees (cli/reply.c), and the
 * shell's end-of-statement rule (cli/client.c).
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

#include "cli/buf.h"
#include "cli/client.h"
#include "cli/reply.h"
#include "cli/table.h"

/* Reply builders: hiredis 0.14's freeReplyObject releases these (it frees
 * str and element with free()). */
static redisReply *mk(int type) {
    redisReply *r = calloc(1, sizeof *r);
    r->type = type;
    return r;
}
static redisReply *mk_str_type(int type, const char *s) {
    redisReply *r = mk(type);
    r->len = strlen(s);
    r->str = strdup(s);
    return r;
}
static redisReply *S(const char *s) { return mk_str_type(REDIS_REPLY_STRING, s); }
static redisReply *E(const char *s) { return mk_str_type(REDIS_REPLY_ERROR, s); }
static redisReply *I(long long v) {
    redisReply *r = mk(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}
static redisReply *NIL(void) { return mk(REDIS_REPLY_NIL); }
static redisReply *A(size_t n, ...) {
    redisReply *r = mk(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}
static redisReply *P(const char *k, redisReply *v) { return A(2, S(k), v); }

static redisReply *stats2(void) {
    return A(2, S("Cached execution: 0"), S("Query internal execution time: 0.100000 milliseconds"));
}

static void test_display_width(void **state) {
    (void)state;
    assert_int_equal(cli_display_width("abc", 3), 3);
    assert_int_equal(cli_display_width("\xc3\xa9t\xc3\xa9", 5), 3);          /* été */
    assert_int_equal(cli_display_width("\xe6\x97\xa5\xe6\x9c\xac", 6), 4);   /* 日本 */
    assert_int_equal(cli_display_width("e\xcc\x81", 3), 1);                   /* e + combining acute */
    assert_int_equal(cli_display_width("\xff\xfe", 2), 2);                    /* invalid bytes: 1 each */
    assert_int_equal(cli_display_width("\xe6\x97", 2), 2);                    /* truncated */
}

static void test_render(void **state) {
    (void)state;
    const char *h[2] = {"name", "n"};
    cli_table t;
    cli_table_init(&t, 2, h);
    const char *r1[2] = {"\xc3\xa9t\xc3\xa9", "1"};
    const char *r2[2] = {"\xe6\x97\xa5\xe6\x9c\xac", "22"};
    const char *r3[2] = {"a", "333"};
    bool right[2] = {false, true};
    cli_table_add_row(&t, r1, right);
    cli_table_add_row(&t, r2, right);
    cli_table_add_row(&t, r3, right);
    cli_buf out = CLI_BUF_INIT;
    cli_table_render(&t, &out);
    assert_string_equal(out.data,
                        "+------+-----+\n"
                        "| name | n   |\n"
                        "+------+-----+\n"
                        "| \xc3\xa9t\xc3\xa9  |   1 |\n"
                        "| \xe6\x97\xa5\xe6\x9c\xac |  22 |\n"
                        "| a    | 333 |\n"
                        "+------+-----+\n");
    cli_buf_free(&out);
    cli_table_free(&t);

    /* No rows: header only. */
    cli_table_init(&t, 2, h);
    cli_table_render(&t, &out);
    assert_string_equal(out.data, "+------+---+\n| name | n |\n+------+---+\n");
    cli_buf_free(&out);
    cli_table_free(&t);
}

static char *render_reply(redisReply *r, int *rc, char *err) {
    cli_result res;
    *rc = cli_result_from_reply(r, &res, err, 256);
    freeReplyObject(r);
    if (*rc != 0) return NULL;
    cli_buf out = CLI_BUF_INIT;
    cli_result_render(&res, &out);
    cli_result_free(&res);
    return cli_buf_take(&out);
}

static void test_reply_scalars(void **state) {
    (void)state;
    int rc;
    char err[256];
    redisReply *r = A(3, A(4, S("i"), S("s"), S("nothing"), S("b")),
                      A(2, A(4, I(1), S("a\nb"), NIL(), S("true")), A(4, I(-20), S("x"), NIL(), S("false"))),
                      stats2());
    char *text = render_reply(r, &rc, err);
    assert_int_equal(rc, 0);
    assert_string_equal(text,
                        "+-----+------+---------+-------+\n"
                        "| i   | s    | nothing | b     |\n"
                        "+-----+------+---------+-------+\n"
                        "|   1 | a\\nb | null    | true  |\n"
                        "| -20 | x    | null    | false |\n"
                        "+-----+------+---------+-------+\n"
                        "2 rows\n"
                        "Cached execution: 0\n"
                        "Query internal execution time: 0.100000 milliseconds\n");
    free(text);
}

static void test_reply_entities(void **state) {
    (void)state;
    int rc;
    char err[256];
    redisReply *node = A(3, P("id", I(0)), P("labels", A(2, S("Person"), S("Admin"))),
                         P("properties", A(3, P("name", S("Alice B")), P("age", I(33)), P("ok", S("true")))));
    redisReply *rel = A(5, P("id", I(7)), P("type", S("KNOWS")), P("src_node", I(0)), P("dest_node", I(1)),
                        P("properties", A(1, P("since", S("2.5")))));
    redisReply *bare = A(3, P("id", I(1)), P("labels", A(0)), P("properties", A(0)));
    redisReply *r = A(3, A(3, S("n"), S("r"), S("m")), A(1, A(3, node, rel, bare)),
                      A(1, S("Query internal execution time: 1.000000 milliseconds")));
    char *text = render_reply(r, &rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(text, "| (:Person:Admin {name: \"Alice B\", age: 33, ok: true}) | [:KNOWS {since: 2.5}] | () |"));
    assert_non_null(strstr(text, "1 row\n"));
    free(text);
}

static void test_reply_stats_only_and_compact_header(void **state) {
    (void)state;
    int rc;
    char err[256];
    char *text = render_reply(A(1, A(2, S("Nodes created: 1"), S("Properties set: 2"))), &rc, err);
    assert_int_equal(rc, 0);
    assert_string_equal(text, "Nodes created: 1\nProperties set: 2\n");
    free(text);
    text = render_reply(A(3, A(1, A(2, I(1), S("x"))), A(0), stats2()), &rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(text, "| x |"));
    assert_non_null(strstr(text, "0 rows\n"));
    free(text);
}

static void test_reply_errors(void **state) {
    (void)state;
    int rc;
    char err[256];
    assert_null(render_reply(E("Invalid input 'RETRN': expected ... line: 1, column: 1"), &rc, err));
    assert_int_equal(rc, -1);
    assert_string_equal(err, "Invalid input 'RETRN': expected ... line: 1, column: 1");
    /* An error as an element of the result (FalkorDB run-time errors). */
    assert_null(render_reply(A(3, A(1, S("x")), A(0), E("Division by zero")), &rc, err));
    assert_string_equal(err, "Division by zero");
    struct {
        redisReply *r;
        const char *msg;
    } bad[] = {
        {I(3), "not an array"},
        {A(2, A(0), A(0)), "expected 1 or 3 elements"},
        {A(1, I(1)), "statistics are not an array"},
        {A(1, A(1, I(1))), "a statistics line is not a string"},
        {A(3, A(0), A(0), stats2()), "bad header"},
        {A(3, A(1, I(4)), A(0), stats2()), "a column name is not a string"},
        {A(3, A(1, S("a")), I(1), stats2()), "rows are not an array"},
        {A(3, A(2, S("a"), S("b")), A(1, A(1, I(1))), stats2()), "a row does not match the header"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(render_reply(bad[i].r, &rc, err));
        assert_int_equal(rc, -1);
        if (strstr(err, bad[i].msg) == NULL) fail_msg("case %zu: '%s' wanted '%s'", i, err, bad[i].msg);
    }
}

static void test_reply_deep_nesting(void **state) {
    (void)state;
    redisReply *v = I(1);
    for (int i = 0; i < 200; i++) v = A(1, v);
    cli_buf b = CLI_BUF_INIT;
    cli_format_value(&b, v, false, 0);
    assert_non_null(strstr(b.data, "..."));
    cli_buf_free(&b);
    freeReplyObject(v);
}

static void test_statement_complete(void **state) {
    (void)state;
    struct {
        const char *text;
        bool complete;
    } cases[] = {
        {"RETURN 1;", true},
        {"RETURN 1", false},
        {"", false},
        {"RETURN 1;\n", true},
        {"MATCH (n)\nRETURN n;", true},
        {"RETURN ';'", false},
        {"RETURN \";\"", false},
        {"RETURN 'a\\';'", false},
        {"RETURN 'a\\';';", true},
        {"RETURN `a;b`", false},
        {"RETURN 1; // done", true},
        {"RETURN 1 // ;", false},
        {"RETURN 1 /* ; */", false},
        {"RETURN 1 /* ; */;", true},
        {"RETURN 1; RETURN 2", false},
        {"RETURN 1; RETURN 2;", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (cli_statement_complete(cases[i].text, strlen(cases[i].text)) != cases[i].complete)
            fail_msg("case %zu '%s': wanted %d", i, cases[i].text, cases[i].complete);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_display_width),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_reply_scalars),
        cmocka_unit_test(test_reply_entities),
        cmocka_unit_test(test_reply_stats_only_and_compact_header),
        cmocka_unit_test(test_reply_errors),
        cmocka_unit_test(test_reply_deep_nesting),
        cmocka_unit_test(test_statement_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
