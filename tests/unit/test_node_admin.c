/*
 * test_node_admin.c -- the admin port's request-head parser
 * (admin_parse_request in node/admin.c): well-formed heads in every way
 * they arrive (whole, byte by byte, CRLF or LF, with query and headers),
 * every malformed head answered as soon as its first bad byte arrives
 * (NUL first, control bytes, bad method/target/version, header without a
 * name, obs-fold, bare CR), and the size limits (414, 431).
 *
 * The socket side (answer, close, deadline) is covered end to end by
 * tests/integration/test_admin.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/admin.h"

static admin_parse_status parse_n(const char *buf, size_t len, admin_request *req) {
    memset(req, 0x5a, sizeof(*req));
    return admin_parse_request(buf, len, req);
}

static admin_parse_status parse(const char *s, admin_request *req) { return parse_n(s, strlen(s), req); }

static void test_well_formed(void **state) {
    (void)state;
    admin_request r;
    assert_int_equal(parse("GET /healthz HTTP/1.1\r\n\r\n", &r), ADMIN_PARSE_OK);
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.path, "/healthz");
    assert_int_equal(parse("HEAD /status?x=1&y HTTP/1.0\nHost: 127.0.0.1:9\nAccept: */*\n\n", &r), ADMIN_PARSE_OK);
    assert_string_equal(r.method, "HEAD");
    assert_string_equal(r.path, "/status");
    /* what urllib sends, with obs-text and a tab in a value */
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nAccept-Encoding: identity\r\nHost: 127.0.0.1:1\r\n"
                           "User-Agent: Python-urllib/3.11\r\nConnection: close\r\nX-A:\t\xc3\xa9 v\r\n\r\n",
                           &r),
                     ADMIN_PARSE_OK);
    assert_string_equal(r.path, "/metrics");
    /* an unknown method still parses (the caller answers 405) */
    assert_int_equal(parse("DELETE /x HTTP/1.1\r\n\r\n", &r), ADMIN_PARSE_OK);
    assert_string_equal(r.method, "DELETE");
    /* bytes after the blank line (a body) are not looked at */
    assert_int_equal(parse_n("GET / HTTP/1.1\r\n\r\n\x00\x01", 20, &r), ADMIN_PARSE_OK);
    assert_string_equal(r.path, "/");
}

/* Every proper prefix of a good head is INCOMPLETE, the whole is OK. */
static void test_byte_by_byte(void **state) {
    (void)state;
    const char *heads[] = {"GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n", "GET /a?b HTTP/1.0\n\n",
                           "HEAD /status HTTP/1.1\r\nA: \r\nB:c\r\n\r\n"};
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        admin_request r;
        size_t n = strlen(heads[h]);
        for (size_t i = 0; i < n; i++) assert_int_equal(parse_n(heads[h], i, &r), ADMIN_PARSE_INCOMPLETE);
        assert_int_equal(parse_n(heads[h], n, &r), ADMIN_PARSE_OK);
    }
}

static void test_malformed(void **state) {
    (void)state;
    static const struct {
        const char *buf;
        size_t len;
    } bad[] = {
#define B(s) {s, sizeof(s) - 1}
        B("\x00\xff garbage\r\n\r\n"), /* the reported bug: NUL first */
        B("\x00"),
        B("garbage\r\n\r\n"),
        B("\r\n\r\n"),
        B("\n"),
        B(" GET / HTTP/1.1\r\n\r\n"),
        B("GET  / HTTP/1.1\r\n\r\n"),
        B("GET\t/ HTTP/1.1\r\n\r\n"),
        B("G\x00T / HTTP/1.1\r\n\r\n"),
        B("GET healthz HTTP/1.1\r\n\r\n"),
        B("GET http://h/healthz HTTP/1.1\r\n\r\n"),
        B("GET /a\x00b HTTP/1.1\r\n\r\n"),
        B("GET /a\x7f HTTP/1.1\r\n\r\n"),
        B("GET /\xc3\xa9 HTTP/1.1\r\n\r\n"),
        B("GET /\r\n\r\n"),           /* HTTP/0.9 form is not accepted */
        B("GET / HTTP/2.0\r\n\r\n"),
        B("GET / http/1.1\r\n\r\n"),
        B("GET / HTTP/1.x\r\n\r\n"),
        B("GET / HTTP/1.1 \r\n\r\n"),
        B("GET / HTTP/1.1\rX"),        /* bare CR */
        B("GET / HTTP/1.1\r\nHost h\r\n\r\n"),
        B("GET / HTTP/1.1\r\n: v\r\n\r\n"),
        B("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"), /* obs-fold */
        B("GET / HTTP/1.1\r\nA: b\x00\r\n\r\n"),
        B("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n"),
        B("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"),
        B("GET / HTTP/1.1\r\n\r\r"),
        B("GETTINGTOOLONGMETHODX / HTTP/1.1\r\n\r\n"),
#undef B
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        admin_request r;
        admin_parse_status st = parse_n(bad[i].buf, bad[i].len, &r);
        if (st != ADMIN_PARSE_BAD) fail_msg("case %zu: status %d, want BAD", i, (int)st);
    }
}

/* Junk is refused at its first bad byte, without waiting for more. */
static void test_rejected_early(void **state) {
    (void)state;
    admin_request r;
    assert_int_equal(parse_n("\x00", 1, &r), ADMIN_PARSE_BAD);
    assert_int_equal(parse_n("\x16\x03\x01", 3, &r), ADMIN_PARSE_BAD); /* a TLS ClientHello */
    assert_int_equal(parse("*1\r\n", &r), ADMIN_PARSE_BAD);            /* RESP on the wrong port */
    assert_int_equal(parse("PING\r\n", &r), ADMIN_PARSE_BAD);
    assert_int_equal(parse("GET x", &r), ADMIN_PARSE_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\nA\x01", &r), ADMIN_PARSE_BAD);
}

static void test_limits(void **state) {
    (void)state;
    admin_request r;
    size_t cap = ADMIN_REQUEST_SIZE_MAX_BYTES + ADMIN_TARGET_SIZE_MAX_BYTES + 64;
    char *buf = malloc(cap);
    assert_non_null(buf);

    /* target: exactly the maximum is fine, one more is 414 */
    int n = snprintf(buf, cap, "GET /%0*d HTTP/1.1\r\n\r\n", ADMIN_TARGET_SIZE_MAX_BYTES - 1, 0);
    assert_int_equal(parse_n(buf, (size_t)n, &r), ADMIN_PARSE_OK);
    assert_int_equal(strlen(r.path), ADMIN_TARGET_SIZE_MAX_BYTES);
    n = snprintf(buf, cap, "GET /%0*d HTTP/1.1\r\n\r\n", ADMIN_TARGET_SIZE_MAX_BYTES, 0);
    assert_int_equal(parse_n(buf, (size_t)n, &r), ADMIN_PARSE_TARGET_TOO_LONG);

    /* method: 16 bytes is fine, 17 is not */
    assert_int_equal(parse("ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n", &r), ADMIN_PARSE_OK);
    assert_int_equal(parse("ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n\r\n", &r), ADMIN_PARSE_BAD);

    /* head: headers that fill the budget without a blank line are 431 */
    size_t len = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");
    while (len + 12 < ADMIN_REQUEST_SIZE_MAX_BYTES) len += (size_t)snprintf(buf + len, cap - len, "X-Pad: abc\r\n");
    assert_int_equal(parse_n(buf, len, &r), ADMIN_PARSE_INCOMPLETE);
    memset(buf + len, 'a', ADMIN_REQUEST_SIZE_MAX_BYTES - len);
    memcpy(buf + len, "Y:", 2);
    assert_int_equal(parse_n(buf, ADMIN_REQUEST_SIZE_MAX_BYTES, &r), ADMIN_PARSE_TOO_LARGE);
    assert_int_equal(parse_n(buf, ADMIN_REQUEST_SIZE_MAX_BYTES + 100, &r), ADMIN_PARSE_TOO_LARGE);

    /* a head ending exactly at the budget is accepted */
    memcpy(buf + ADMIN_REQUEST_SIZE_MAX_BYTES - 4, "\r\n\r\n", 4);
    assert_int_equal(parse_n(buf, ADMIN_REQUEST_SIZE_MAX_BYTES, &r), ADMIN_PARSE_OK);
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed),    cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_rejected_early),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
