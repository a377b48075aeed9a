/*
 * test_node_resp.c -- the RESP2 request parser (node/resp.c): well-formed
 * requests in every split, and every malformed case we could think of.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/limits.h"
#include "node/resp.h"

/* Parse all of input fed in pieces of at most chunk bytes; collect up to
 * max requests.  Returns the number of requests; *status the last status. */
typedef struct parsed {
    resp_request reqs[16];
    int count;
    resp_parse_status last;
    char error[160];
    size_t consumed_total;
} parsed;

static void parse_chunked(const char *in, size_t len, size_t chunk, uint64_t limit, parsed *out) {
    resp_parser p;
    resp_parser_init(&p, limit);
    memset(out, 0, sizeof(*out));
    out->last = RESP_PARSE_INCOMPLETE;
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < chunk ? len - off : chunk;
        size_t pos = 0;
        while (pos < n) {
            size_t used = 0;
            resp_request r;
            resp_parse_status st = resp_parse(&p, in + off + pos, n - pos, &used, &r);
            assert_true(used <= n - pos);
            pos += used;
            out->consumed_total += used;
            out->last = st;
            if (st == RESP_PARSE_OK) {
                assert_true(out->count < 16);
                out->reqs[out->count++] = r;
            } else if (st == RESP_PARSE_ERROR) {
                snprintf(out->error, sizeof(out->error), "%s", p.error);
                resp_parser_free(&p);
                return;
            } else {
                assert_int_equal(pos, n); /* incomplete means all consumed */
            }
        }
        off += n;
    }
    resp_parser_free(&p);
}

static void parsed_free(parsed *p) {
    for (int i = 0; i < p->count; i++) resp_request_free(&p->reqs[i]);
}

static void assert_args(const resp_request *r, int argc, ...) {
    assert_int_equal(r->argc, argc);
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        const char *s = va_arg(ap, const char *);
        assert_int_equal(r->argv_len[i], strlen(s));
        assert_memory_equal(r->argv[i], s, strlen(s));
        assert_int_equal(r->argv[i][r->argv_len[i]], '\0');
    }
    va_end(ap);
}

static void expect_error(const char *in, size_t len, const char *needle) {
    for (size_t chunk = 1; chunk <= len; chunk = chunk < 4 ? chunk + 1 : chunk * 2) {
        parsed p;
        parse_chunked(in, len, chunk, 0, &p);
        assert_int_equal(p.last, RESP_PARSE_ERROR);
        if (strstr(p.error, needle) == NULL) fail_msg("error '%s' lacks '%s'", p.error, needle);
        assert_true(strncmp(p.error, "ERR Protocol error", 18) == 0);
        parsed_free(&p);
    }
}

static void test_array_every_split(void **state) {
    (void)state;
    const char *in = "*3\r\n$11\r\nGRAPH.QUERY\r\n$1\r\ng\r\n$27\r\nMATCH (n) RETURN n LIMIT 10\r\n"
                     "*1\r\n$4\r\nPING\r\n";
    size_t len = strlen(in);
    for (size_t chunk = 1; chunk <= len; chunk++) {
        parsed p;
        parse_chunked(in, len, chunk, 0, &p);
        assert_int_equal(p.count, 2);
        assert_int_equal(p.last, RESP_PARSE_OK);
        assert_args(&p.reqs[0], 3, "GRAPH.QUERY", "g", "MATCH (n) RETURN n LIMIT 10");
        assert_int_equal(p.reqs[0].size_bytes, 11 + 1 + 27);
        assert_args(&p.reqs[1], 1, "PING");
        parsed_free(&p);
    }
}

static void test_every_byte_boundary_two_pieces(void **state) {
    (void)state;
    const char *in = "*2\r\n$4\r\nECHO\r\n$5\r\nhe\r\no\r\nPING x\r\n";
    size_t len = strlen(in);
    for (size_t cut = 0; cut <= len; cut++) {
        resp_parser p;
        resp_parser_init(&p, 0);
        resp_request got[4];
        int count = 0;
        const char *pieces[2] = {in, in + cut};
        size_t lens[2] = {cut, len - cut};
        for (int k = 0; k < 2; k++) {
            size_t pos = 0;
            while (pos < lens[k]) {
                size_t used;
                resp_request r;
                resp_parse_status st = resp_parse(&p, pieces[k] + pos, lens[k] - pos, &used, &r);
                assert_int_not_equal(st, RESP_PARSE_ERROR);
                pos += used;
                if (st == RESP_PARSE_OK) got[count++] = r;
            }
        }
        assert_int_equal(count, 2);
        assert_args(&got[0], 2, "ECHO", "he\r\no");
        assert_args(&got[1], 2, "PING", "x");
        resp_request_free(&got[0]);
        resp_request_free(&got[1]);
        resp_parser_free(&p);
    }
}

static void test_binary_safe_bulk(void **state) {
    (void)state;
    const char in[] = "*1\r\n$5\r\na\0b\r\n\r\n";
    parsed p;
    parse_chunked(in, sizeof(in) - 1, 3, 0, &p);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.reqs[0].argv_len[0], 5);
    assert_memory_equal(p.reqs[0].argv[0], "a\0b\r\n", 5);
    parsed_free(&p);
}

static void test_empty_bulk_and_empty_arrays(void **state) {
    (void)state;
    const char *in = "*0\r\n*-1\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n\r\n\n   \r\n";
    parsed p;
    parse_chunked(in, strlen(in), 1, 0, &p);
    assert_int_equal(p.count, 1);
    assert_args(&p.reqs[0], 2, "ECHO", "");
    assert_int_equal(p.last, RESP_PARSE_INCOMPLETE);
    assert_int_equal(p.consumed_total, strlen(in));
    parsed_free(&p);
}

static void test_inline_commands(void **state) {
    (void)state;
    const char *in = "PING\r\nGRAPH.QUERY g \"MATCH (n) RETURN n\"\n"
                     "ECHO 'it\\'s' \"a\\tb\\x41\\\\\\\"\" plain\r\n"
                     "SET k\"ey with\" v\r\n";
    parsed p;
    parse_chunked(in, strlen(in), 7, 0, &p);
    assert_int_equal(p.count, 4);
    assert_args(&p.reqs[0], 1, "PING");
    assert_args(&p.reqs[1], 3, "GRAPH.QUERY", "g", "MATCH (n) RETURN n");
    assert_args(&p.reqs[2], 4, "ECHO", "it's", "a\tbA\\\"", "plain");
    assert_args(&p.reqs[3], 3, "SET", "key with", "v");
    parsed_free(&p);
}

static void test_inline_unbalanced_quotes(void **state) {
    (void)state;
    expect_error("ECHO \"abc\r\n", 11, "unbalanced quotes");
    expect_error("ECHO 'abc\r\n", 11, "unbalanced quotes");
    expect_error("ECHO \"abc\"x\r\n", 13, "unbalanced quotes");
    expect_error("ECHO 'abc'x\r\n", 13, "unbalanced quotes");
}

static void test_inline_too_big(void **state) {
    (void)state;
    size_t n = QUIVER_RESP_INLINE_SIZE_MAX_BYTES + 10;
    char *in = malloc(n);
    memset(in, 'a', n);
    parsed p;
    parse_chunked(in, n, 4096, 0, &p);
    assert_int_equal(p.last, RESP_PARSE_ERROR);
    assert_non_null(strstr(p.error, "too big inline request"));
    parsed_free(&p);
    free(in);
}

static void test_bad_multibulk_length(void **state) {
    (void)state;
    expect_error("*abc\r\n", 6, "invalid multibulk length");
    expect_error("*1x\r\n", 5, "invalid multibulk length");
    expect_error("*\r\n", 3, "invalid multibulk length");
    expect_error("*+1\r\n", 5, "invalid multibulk length");
    expect_error("* 1\r\n", 5, "invalid multibulk length");
    expect_error("*01\r\n", 5, "invalid multibulk length");
    expect_error("*99999999999999999999999\r\n", 26, "invalid multibulk length");
    expect_error("*1048577\r\n", 10, "invalid multibulk length"); /* QUIVER_RESP_ARGS_COUNT_MAX + 1 */
    expect_error("*1\n$4\r\nPING\r\n", 13, "invalid multibulk length"); /* LF without CR */
    expect_error("*123456789012345678901234567890123456789\r\n", 42, "invalid multibulk length");
}

static void test_bad_bulk_length(void **state) {
    (void)state;
    expect_error("*1\r\n$abc\r\n", 10, "invalid bulk length");
    expect_error("*1\r\n$-1\r\n", 9, "invalid bulk length");
    expect_error("*1\r\n$-5\r\n", 9, "invalid bulk length");
    expect_error("*1\r\n$\r\n", 7, "invalid bulk length");
    expect_error("*1\r\n$4\nPING\r\n", 13, "invalid bulk length");
    expect_error("*1\r\n$99999999999999999999\r\n", 27, "invalid bulk length");
}

static void test_bad_type_byte(void **state) {
    (void)state;
    expect_error("*1\r\n+PING\r\n", 11, "expected '$', got '+'");
    expect_error("*1\r\n:1\r\n", 8, "expected '$', got ':'");
    expect_error("*2\r\n$4\r\nECHO\r\nx\r\n", 17, "expected '$', got 'x'");
    expect_error("*1\r\n\x01", 5, "got byte 0x01");
}

static void test_nested_array_refused(void **state) {
    (void)state;
    expect_error("*1\r\n*1\r\n$4\r\nPING\r\n", 18, "expected '$', got '*'");
}

static void test_bulk_longer_than_announced(void **state) {
    (void)state;
    expect_error("*1\r\n$3\r\nPING\r\n", 14, "expected CRLF after a bulk");
    expect_error("*1\r\n$4\r\nPINGxx", 14, "expected CRLF after a bulk");
    expect_error("*1\r\n$4\r\nPING\rx", 14, "expected CRLF after a bulk");
    expect_error("*1\r\n$4\r\nPING\n\r", 14, "expected CRLF after a bulk");
}

static void test_missing_crlf_waits(void **state) {
    (void)state;
    /* An unterminated request is incomplete, not an error: more may come. */
    const char *ins[] = {"*1\r\n$4\r\nPING", "*1\r\n$4\r\nPI", "*1\r\n$4", "*1", "PING"};
    for (size_t k = 0; k < sizeof(ins) / sizeof(ins[0]); k++) {
        parsed p;
        parse_chunked(ins[k], strlen(ins[k]), 1, 0, &p);
        assert_int_equal(p.count, 0);
        assert_int_equal(p.last, RESP_PARSE_INCOMPLETE);
        parsed_free(&p);
    }
}

static void test_over_size_limit(void **state) {
    (void)state;
    /* The announced length alone exceeds the limit: refused at once. */
    parsed p;
    const char *in = "*1\r\n$101\r\n";
    parse_chunked(in, strlen(in), 1, 100, &p);
    assert_int_equal(p.last, RESP_PARSE_ERROR);
    assert_non_null(strstr(p.error, "--max-request-bytes"));
    parsed_free(&p);
    /* The sum of arguments exceeds it. */
    in = "*3\r\n$40\r\n0123456789012345678901234567890123456789\r\n"
         "$40\r\n0123456789012345678901234567890123456789\r\n$40\r\n";
    parse_chunked(in, strlen(in), 5, 100, &p);
    assert_int_equal(p.last, RESP_PARSE_ERROR);
    assert_non_null(strstr(p.error, "--max-request-bytes"));
    parsed_free(&p);
    /* Exactly at the limit is fine. */
    in = "*2\r\n$50\r\n01234567890123456789012345678901234567890123456789\r\n"
         "$50\r\n01234567890123456789012345678901234567890123456789\r\n";
    parse_chunked(in, strlen(in), 5, 100, &p);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.reqs[0].size_bytes, 100);
    parsed_free(&p);
    /* Inline over the limit. */
    in = "ECHO 0123456789\r\n";
    parse_chunked(in, strlen(in), 5, 8, &p);
    assert_int_equal(p.last, RESP_PARSE_ERROR);
    parsed_free(&p);
}

static void test_huge_announced_bulk_costs_nothing(void **state) {
    (void)state;
    /* 60 MiB announced (under the 64 MiB default), 3 bytes sent: the parser
     * must not reserve 60 MiB (ASan would report the allocation size; here
     * we check it stays incomplete, what it counts, and that it frees
     * cleanly). */
    resp_parser p;
    resp_parser_init(&p, 0);
    const char *in = "*1\r\n$62914560\r\nabc";
    size_t used;
    resp_request r;
    assert_int_equal(resp_parse(&p, in, strlen(in), &used, &r), RESP_PARSE_INCOMPLETE);
    assert_true(p.bulk_cap <= 64 * 1024);
    assert_true(resp_parser_buffered_bytes(&p) <= 64 * 1024 + RESP_ARG_OVERHEAD_BYTES + 1024);
    resp_parser_free(&p);
    /* Over the request limit: refused at the header, nothing buffered. */
    resp_parser_init(&p, 0);
    in = "*1\r\n$536870912\r\nabc";
    assert_int_equal(resp_parse(&p, in, strlen(in), &used, &r), RESP_PARSE_ERROR);
    assert_int_equal(used, strlen("*1\r\n$536870912\r\n"));
    assert_non_null(strstr(p.error, "--max-request-bytes"));
    resp_parser_free(&p);
}

static void test_many_args(void **state) {
    (void)state;
    /* QUIVER_RESP_ARGS_COUNT_MAX arguments: the argv grows past its
     * preallocation; one more is refused at the array header. */
    enum { N = QUIVER_RESP_ARGS_COUNT_MAX };
    size_t cap = N * 12 + 32;
    char *in = malloc(cap);
    size_t n = (size_t)sprintf(in, "*%d\r\n", N);
    for (int i = 0; i < N; i++) n += (size_t)sprintf(in + n, "$1\r\n%c\r\n", 'a' + i % 26);
    parsed p;
    parse_chunked(in, n, 1000, 0, &p);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.reqs[0].argc, N);
    assert_int_equal(p.reqs[0].argv[N - 1][0], 'a' + (N - 1) % 26);
    parsed_free(&p);
    free(in);
    char head[32];
    snprintf(head, sizeof head, "*%d\r\n", N + 1);
    expect_error(head, strlen(head), "invalid multibulk length");
}

/* The query buffer counts each argument's bookkeeping, and refuses at the
 * header what would not fit. */
static void test_query_buffer_limit(void **state) {
    (void)state;
    /* 1000 one-byte arguments: ~1000 bytes of data, ~65 KB of memory. */
    enum { N = 1000 };
    char *in = malloc(N * 12 + 32);
    size_t n = (size_t)sprintf(in, "*%d\r\n", N);
    for (int i = 0; i < N; i++) n += (size_t)sprintf(in + n, "$1\r\nx\r\n");
    resp_parser p;
    resp_parser_init(&p, 0);
    resp_parser_set_query_buffer_limit(&p, 32 * 1024);
    size_t used = 0, off = 0;
    resp_request r;
    resp_parse_status st = RESP_PARSE_INCOMPLETE;
    while (off < n && st == RESP_PARSE_INCOMPLETE) {
        size_t chunk = n - off < 100 ? n - off : 100;
        st = resp_parse(&p, in + off, chunk, &used, &r);
        off += used;
        if (st == RESP_PARSE_INCOMPLETE) assert_true(resp_parser_buffered_bytes(&p) <= 32 * 1024);
    }
    assert_int_equal(st, RESP_PARSE_ERROR);
    assert_true(p.error_query_buffer);
    assert_non_null(strstr(p.error, "max query buffer length"));
    assert_non_null(strstr(p.error, "--client-query-buffer-limit"));
    assert_true(off < n / 2); /* stopped well before the end */
    resp_parser_free(&p);

    /* A bulk over the query buffer (but under the request limit) is refused
     * at its header. */
    resp_parser_init(&p, 1024 * 1024);
    resp_parser_set_query_buffer_limit(&p, 256 * 1024);
    const char *big = "*2\r\n$4\r\nECHO\r\n$300000\r\nxyz";
    assert_int_equal(resp_parse(&p, big, strlen(big), &used, &r), RESP_PARSE_ERROR);
    assert_int_equal(used, strlen("*2\r\n$4\r\nECHO\r\n$300000\r\n"));
    assert_true(p.error_query_buffer);
    resp_parser_free(&p);

    /* Under it: parses, and what was counted goes with the request. */
    resp_parser_init(&p, 1024 * 1024);
    resp_parser_set_query_buffer_limit(&p, 256 * 1024);
    const char *ok = "*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n";
    assert_int_equal(resp_parse(&p, ok, strlen(ok), &used, &r), RESP_PARSE_OK);
    assert_false(p.error_query_buffer);
    assert_true(resp_parser_buffered_bytes(&p) <= 64); /* the header line buffer only */
    resp_request_free(&r);
    resp_parser_free(&p);
    free(in);
}

static void test_error_is_sticky(void **state) {
    (void)state;
    resp_parser p;
    resp_parser_init(&p, 0);
    size_t used;
    resp_request r;
    assert_int_equal(resp_parse(&p, "*x\r\n", 4, &used, &r), RESP_PARSE_ERROR);
    assert_int_equal(resp_parse(&p, "PING\r\n", 6, &used, &r), RESP_PARSE_ERROR);
    resp_parser_free(&p);
}

static void test_free_mid_request(void **state) {
    (void)state;
    /* Freeing a parser holding a partial request leaks nothing (ASan). */
    const char *ins[] = {"*2\r\n$4\r\nECHO\r\n$10\r\nabc", "*2\r\n$4\r\nECHO\r\n$3\r\nabc\r", "*2\r\n$4\r\nECHO\r\n$0\r\n",
                         "*2\r\n$4\r\nECHO\r\n", "ECHO abc"};
    for (size_t k = 0; k < sizeof(ins) / sizeof(ins[0]); k++) {
        resp_parser p;
        resp_parser_init(&p, 0);
        size_t used;
        resp_request r;
        assert_int_equal(resp_parse(&p, ins[k], strlen(ins[k]), &used, &r), RESP_PARSE_INCOMPLETE);
        resp_parser_free(&p);
    }
}

static void test_split_inline_direct(void **state) {
    (void)state;
    resp_request r;
    char err[128];
    assert_true(resp_split_inline("  a  \"\"  ''  b ", 15, &r, err, sizeof(err)));
    assert_args(&r, 4, "a", "", "", "b");
    resp_request_free(&r);
    assert_true(resp_split_inline("\"\\x4\"", 5, &r, err, sizeof(err))); /* bad hex: literal */
    assert_args(&r, 1, "x4");
    resp_request_free(&r);
    assert_false(resp_split_inline("\"abc\\", 5, &r, err, sizeof(err)));
    assert_non_null(strstr(err, "unbalanced"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_array_every_split),
        cmocka_unit_test(test_every_byte_boundary_two_pieces),
        cmocka_unit_test(test_binary_safe_bulk),
        cmocka_unit_test(test_empty_bulk_and_empty_arrays),
        cmocka_unit_test(test_inline_commands),
        cmocka_unit_test(test_inline_unbalanced_quotes),
        cmocka_unit_test(test_inline_too_big),
        cmocka_unit_test(test_bad_multibulk_length),
        cmocka_unit_test(test_bad_bulk_length),
        cmocka_unit_test(test_bad_type_byte),
        cmocka_unit_test(test_nested_array_refused),
        cmocka_unit_test(test_bulk_longer_than_announced),
        cmocka_unit_test(test_missing_crlf_waits),
        cmocka_unit_test(test_over_size_limit),
        cmocka_unit_test(test_huge_announced_bulk_costs_nothing),
        cmocka_unit_test(test_many_args),
        cmocka_unit_test(test_query_buffer_limit),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_free_mid_request),
        cmocka_unit_test(test_split_inline_direct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
