/*
 * test_node_forward.c -- the forwarding codec (node/forward.h): requests
 * and responses round-trip, every corruption and truncation is refused,
 * limits hold, and the RESP reply parser frames bulk/error/status replies
 * fed in any split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <xxhash.h>

#include "node/forward.h"
#include "statemachine/result_codec.h"

static sm_command write_cmd(const char *graph, const char *text) {
    sm_command c;
    memset(&c, 0, sizeof c);
    c.kind = SM_CMD_QUERY;
    c.request_id.origin = 0x0102030405060708ull;
    c.request_id.seq = 42;
    c.timestamp_ms = 123; /* not sent */
    c.seed = 456;         /* not sent */
    c.graph.ptr = graph;
    c.graph.len = (uint32_t)strlen(graph);
    c.text.ptr = text;
    c.text.len = (uint32_t)strlen(text);
    return c;
}

static void test_request_roundtrip(void **state) {
    (void)state;
    fwd_request q = {.type = FWD_TYPE_WRITE, .cmd = write_cmd("social", "CREATE (:Person {name: 'Ann'})")};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fwd_request_encode(&q, &buf, &len), SM_CODEC_OK);
    fwd_request out;
    assert_int_equal(fwd_request_decode(buf, len, &out), SM_CODEC_OK);
    assert_int_equal(out.type, FWD_TYPE_WRITE);
    assert_int_equal(out.cmd.kind, SM_CMD_QUERY);
    assert_true(sm_request_id_equal(out.cmd.request_id, q.cmd.request_id)); /* the origin's id travels */
    assert_int_equal(out.cmd.graph.len, 6);
    assert_memory_equal(out.cmd.graph.ptr, "social", 6);
    assert_int_equal(out.cmd.text.len, q.cmd.text.len);
    assert_memory_equal(out.cmd.text.ptr, q.cmd.text.ptr, q.cmd.text.len);
    assert_int_equal(out.cmd.timestamp_ms, 0); /* the leader sets these */
    assert_int_equal(out.cmd.seed, 0);
    free(buf);

    /* GRAPH.DELETE: empty text. */
    fwd_request d = {.type = FWD_TYPE_WRITE, .cmd = write_cmd("g", "")};
    d.cmd.kind = SM_CMD_GRAPH_DELETE;
    assert_int_equal(fwd_request_encode(&d, &buf, &len), SM_CODEC_OK);
    assert_int_equal(fwd_request_decode(buf, len, &out), SM_CODEC_OK);
    assert_int_equal(out.cmd.kind, SM_CMD_GRAPH_DELETE);
    assert_int_equal(out.cmd.text.len, 0);
    free(buf);

    /* Read index: type only. */
    fwd_request r = {.type = FWD_TYPE_READ_INDEX};
    assert_int_equal(fwd_request_encode(&r, &buf, &len), SM_CODEC_OK);
    assert_int_equal(len, 1 + 1 + 8);
    assert_int_equal(fwd_request_decode(buf, len, &out), SM_CODEC_OK);
    assert_int_equal(out.type, FWD_TYPE_READ_INDEX);
    free(buf);
}

static void test_request_invalid(void **state) {
    (void)state;
    uint8_t *buf = (uint8_t *)"untouched";
    size_t len = 0;
    fwd_request q = {.type = (fwd_type)9, .cmd = write_cmd("g", "CREATE ()")};
    assert_int_equal(fwd_request_encode(&q, &buf, &len), SM_CODEC_INVALID);
    q.type = FWD_TYPE_WRITE;
    q.cmd.request_id.origin = 0; /* ids are never 0 */
    assert_int_equal(fwd_request_encode(&q, &buf, &len), SM_CODEC_INVALID);
    q.cmd = write_cmd("", "CREATE ()"); /* empty graph */
    assert_int_equal(fwd_request_encode(&q, &buf, &len), SM_CODEC_INVALID);
    char big[QUIVER_GRAPH_NAME_SIZE_MAX_BYTES + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    q.cmd = write_cmd(big, "CREATE ()");
    assert_int_equal(fwd_request_encode(&q, &buf, &len), SM_CODEC_LIMIT);
    assert_string_equal((char *)buf, "untouched");
}

/* Every truncation and every single-byte corruption is refused. */
static void test_request_corruption(void **state) {
    (void)state;
    fwd_request q = {.type = FWD_TYPE_WRITE, .cmd = write_cmd("g1", "MERGE (n:N {k: 1})")};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fwd_request_encode(&q, &buf, &len), SM_CODEC_OK);
    fwd_request out;
    memset(&out, 0x5a, sizeof out);
    fwd_request before = out;
    for (size_t cut = 0; cut < len; cut++) assert_int_not_equal(fwd_request_decode(buf, cut, &out), SM_CODEC_OK);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            assert_int_not_equal(fwd_request_decode(buf, len, &out), SM_CODEC_OK);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_memory_equal(&out, &before, sizeof out); /* untouched on error */
    /* Trailing bytes. */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_not_equal(fwd_request_decode(longer, len + 1, &out), SM_CODEC_OK);
    free(longer);
    assert_int_equal(fwd_request_decode(NULL, 0, &out), SM_CODEC_MALFORMED);
    free(buf);
}

static void reseal(uint8_t *buf, size_t len) {
    uint64_t sum = XXH3_64bits(buf, len - 8);
    for (int i = 0; i < 8; i++) buf[len - 8 + i] = (uint8_t)(sum >> (56 - 8 * i));
}

static void test_versions_and_fields(void **state) {
    (void)state;
    /* A well-sealed message of another version is VERSION, not MALFORMED. */
    fwd_request r = {.type = FWD_TYPE_READ_INDEX};
    uint8_t *buf = NULL;
    size_t len = 0;
    fwd_request out;
    assert_int_equal(fwd_request_encode(&r, &buf, &len), SM_CODEC_OK);
    assert_int_equal(buf[0], FWD_VERSION);
    buf[0] = FWD_VERSION + 1;
    reseal(buf, len);
    assert_int_equal(fwd_request_decode(buf, len, &out), SM_CODEC_VERSION);
    buf[0] = FWD_VERSION;
    buf[1] = 7; /* unknown type, sealed */
    reseal(buf, len);
    assert_int_equal(fwd_request_decode(buf, len, &out), SM_CODEC_MALFORMED);
    free(buf);

    /* A sealed write whose request id is 0 or whose kind is unknown. */
    fwd_request q = {.type = FWD_TYPE_WRITE, .cmd = write_cmd("g", "CREATE ()")};
    assert_int_equal(fwd_request_encode(&q, &buf, &len), SM_CODEC_OK);
    buf[2] = 9; /* kind */
    reseal(buf, len);
    assert_int_equal(fwd_request_decode(buf, len, &out), SM_CODEC_MALFORMED);
    buf[2] = SM_CMD_QUERY;
    memset(buf + 3, 0, 8); /* origin 0 */
    reseal(buf, len);
    assert_int_equal(fwd_request_decode(buf, len, &out), SM_CODEC_MALFORMED);
    free(buf);

    fwd_response rs = {.type = FWD_TYPE_READ_INDEX, .status = REPL_OK, .index = 1};
    fwd_response rout;
    assert_int_equal(fwd_response_encode(&rs, &buf, &len), SM_CODEC_OK);
    buf[0] = FWD_VERSION + 1;
    reseal(buf, len);
    assert_int_equal(fwd_response_decode(buf, len, &rout), SM_CODEC_VERSION);
    buf[0] = FWD_VERSION;
    buf[2] = 99; /* unknown status, sealed */
    reseal(buf, len);
    assert_int_equal(fwd_response_decode(buf, len, &rout), SM_CODEC_MALFORMED);
    free(buf);
}

static void test_response_roundtrip(void **state) {
    (void)state;
    /* A real query_result travels as result_codec bytes. */
    query_result *res = sm_result_error(QUERY_ERR_RUNTIME, "Division by zero");
    assert_non_null(res);
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    assert_int_equal(sm_result_encode(res, 0, &enc, &enc_len), SM_CODEC_OK);
    query_result_free(res);

    fwd_response rs = {.type = FWD_TYPE_WRITE, .status = REPL_OK, .index = 77, .payload = enc, .payload_len = enc_len};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fwd_response_encode(&rs, &buf, &len), SM_CODEC_OK);
    fwd_response out;
    assert_int_equal(fwd_response_decode(buf, len, &out), SM_CODEC_OK);
    assert_int_equal(out.type, FWD_TYPE_WRITE);
    assert_int_equal(out.status, REPL_OK);
    assert_int_equal(out.index, 77);
    assert_int_equal(out.payload_len, enc_len);
    query_result *back = NULL;
    assert_int_equal(sm_result_decode(out.payload, out.payload_len, &back), SM_CODEC_OK);
    assert_int_equal(back->status, QUERY_ERR_RUNTIME);
    assert_string_equal(back->error, "Division by zero");
    query_result_free(back);
    for (size_t cut = 0; cut < len; cut++) assert_int_not_equal(fwd_response_decode(buf, cut, &out), SM_CODEC_OK);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x10;
        assert_int_not_equal(fwd_response_decode(buf, len, &out), SM_CODEC_OK);
        buf[i] ^= 0x10;
    }
    free(buf);
    free(enc);

    /* An error status carries its text; every status survives. */
    for (int st = REPL_OK; st <= REPL_INVALID; st++) {
        const char *msg = "outcome unknown: leadership was lost";
        fwd_response e = {.type = FWD_TYPE_READ_INDEX, .status = (repl_status_code)st, .index = (uint64_t)st,
                          .payload = (const uint8_t *)msg, .payload_len = strlen(msg)};
        assert_int_equal(fwd_response_encode(&e, &buf, &len), SM_CODEC_OK);
        assert_int_equal(fwd_response_decode(buf, len, &out), SM_CODEC_OK);
        assert_int_equal(out.status, st);
        assert_int_equal(out.type, FWD_TYPE_READ_INDEX);
        assert_int_equal(out.payload_len, strlen(msg));
        assert_memory_equal(out.payload, msg, strlen(msg));
        free(buf);
    }
    fwd_response bad = {.type = FWD_TYPE_WRITE, .status = (repl_status_code)99};
    assert_int_equal(fwd_response_encode(&bad, &buf, &len), SM_CODEC_INVALID);
    bad.status = REPL_OK;
    bad.type = (fwd_type)0;
    assert_int_equal(fwd_response_encode(&bad, &buf, &len), SM_CODEC_INVALID);
}

/* The reply parser: one stream of replies, fed one byte at a time and all
 * at once, gives the same sequence. */
static void parse_all(const char *stream, size_t n, size_t step, char *kinds, size_t *lens, int *count) {
    fwd_reply_parser p;
    fwd_reply_parser_init(&p, 1024);
    *count = 0;
    for (size_t off = 0; off < n; off += step) {
        size_t chunk = n - off < step ? n - off : step;
        assert_int_equal(fwd_reply_feed(&p, stream + off, chunk), 0);
        fwd_reply r;
        int rc;
        while ((rc = fwd_reply_next(&p, &r)) == 1) {
            kinds[*count] = r.kind;
            lens[*count] = r.len;
            (*count)++;
        }
        assert_int_equal(rc, 0);
    }
    fwd_reply_parser_free(&p);
}

static void test_reply_parser(void **state) {
    (void)state;
    static const char stream[] = "$5\r\nab\r\nc\r\n-ERR unknown command\r\n+OK\r\n$0\r\n\r\n";
    size_t n = sizeof stream - 1;
    for (size_t step = 1; step <= n; step++) {
        char kinds[8];
        size_t lens[8];
        int count = 0;
        parse_all(stream, n, step, kinds, lens, &count);
        assert_int_equal(count, 4);
        assert_int_equal(kinds[0], '$');
        assert_int_equal(lens[0], 5); /* CRLF inside a bulk is data */
        assert_int_equal(kinds[1], '-');
        assert_int_equal(lens[1], strlen("ERR unknown command"));
        assert_int_equal(kinds[2], '+');
        assert_int_equal(kinds[3], '$');
        assert_int_equal(lens[3], 0);
    }
    /* Protocol errors. */
    static const char *bad[] = {":1\r\n", "*1\r\n", "$x\r\n", "$3\r\nabcd\r\n", "$\r\n", "+OK\rX", "$-1\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fwd_reply_parser p;
        fwd_reply_parser_init(&p, 1024);
        assert_int_equal(fwd_reply_feed(&p, bad[i], strlen(bad[i])), 0);
        fwd_reply r;
        assert_int_equal(fwd_reply_next(&p, &r), -1);
        fwd_reply_parser_free(&p);
    }
    /* Bounds: a bulk longer than the cap, and too much unparsed input. */
    fwd_reply_parser p;
    fwd_reply_parser_init(&p, 16);
    assert_int_equal(fwd_reply_feed(&p, "$100\r\n", 6), 0);
    fwd_reply r;
    assert_int_equal(fwd_reply_next(&p, &r), -1);
    fwd_reply_parser_free(&p);
    fwd_reply_parser_init(&p, 16);
    assert_int_equal(fwd_reply_feed(&p, "$10\r\n0123", 9), 0);
    assert_int_equal(fwd_reply_next(&p, &r), 0);
    assert_int_equal(fwd_reply_feed(&p, "456789abcdef", 12), -1);
    fwd_reply_parser_free(&p);
}

/* A large reply handed over whole: its data stays valid in the detached
 * buffer, and the parser goes on with the bytes after it. */
static void test_reply_parser_detach(void **state) {
    (void)state;
    fwd_reply_parser p;
    fwd_reply_parser_init(&p, 1 << 20);
    size_t big = 200000;
    char *in = malloc(big + 64);
    int h = sprintf(in, "$%zu\r\n", big);
    memset(in + h, 'z', big);
    memcpy(in + h + big, "\r\n+OK\r\n$3\r\nab", 13);
    size_t len = (size_t)h + big + 13;
    assert_int_equal(fwd_reply_feed(&p, in, len), 0);
    fwd_reply r;
    assert_int_equal(fwd_reply_next(&p, &r), 1);
    assert_int_equal(r.kind, '$');
    assert_int_equal(r.len, big);
    char *owned = fwd_reply_parser_detach(&p);
    assert_non_null(owned);
    assert_true(r.data >= owned && r.data + r.len <= owned + len); /* still inside the handed-over buffer */
    assert_int_equal(r.data[0], 'z');
    assert_int_equal(r.data[big - 1], 'z');
    /* The parser kept only the rest: a status, then a partial bulk. */
    assert_int_equal(fwd_reply_next(&p, &r), 1);
    assert_int_equal(r.kind, '+');
    assert_memory_equal(r.data, "OK", 2);
    assert_int_equal(fwd_reply_next(&p, &r), 0);
    assert_int_equal(fwd_reply_feed(&p, "c\r\n", 3), 0);
    assert_int_equal(fwd_reply_next(&p, &r), 1);
    assert_int_equal(r.len, 3);
    assert_memory_equal(r.data, "abc", 3);
    free(owned);
    /* Detaching with nothing left: an empty parser that still works. */
    char *again = fwd_reply_parser_detach(&p);
    assert_int_equal(fwd_reply_feed(&p, "-ERR x\r\n", 8), 0);
    assert_int_equal(fwd_reply_next(&p, &r), 1);
    assert_int_equal(r.kind, '-');
    free(again);
    fwd_reply_parser_free(&p);
    free(in);
}

/* The encoder writes the text once, straight into its buffer: the bytes
 * (and the checksum over them) are exactly the format of forward.h. */
static void test_request_encoding_is_stable(void **state) {
    (void)state;
    fwd_request q = {.type = FWD_TYPE_WRITE, .cmd = write_cmd("g", "CREATE ()")};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fwd_request_encode(&q, &buf, &len), SM_CODEC_OK);
    assert_int_equal(len, 1 + 1 + 1 + 8 + 8 + 4 + 1 + 4 + 9 + 8);
    assert_int_equal(buf[0], FWD_VERSION);
    assert_int_equal(buf[1], FWD_TYPE_WRITE);
    assert_int_equal(buf[2], SM_CMD_QUERY);
    assert_memory_equal(buf + 1 + 1 + 1 + 8 + 8 + 4 + 1 + 4, "CREATE ()", 9);
    uint64_t sum = 0;
    for (int i = 0; i < 8; i++) sum = sum << 8 | buf[len - 8 + i];
    assert_true(sum == XXH3_64bits(buf, len - 8));
    free(buf);
    fwd_request rq = {.type = FWD_TYPE_READ_INDEX};
    assert_int_equal(fwd_request_encode(&rq, &buf, &len), SM_CODEC_OK);
    assert_int_equal(len, 1 + 1 + 8);
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_roundtrip),  cmocka_unit_test(test_request_invalid),
        cmocka_unit_test(test_request_corruption), cmocka_unit_test(test_versions_and_fields),
        cmocka_unit_test(test_response_roundtrip), cmocka_unit_test(test_reply_parser),
        cmocka_unit_test(test_reply_parser_detach), cmocka_unit_test(test_request_encoding_is_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
