/*
 * test_cli_literal.c -- Cypher literal writing (cli/cypher_literal.c) and
 * the import's row conversion (import_append_values, the CREATE pattern
 * map, labels).
 *
 * Round trips use an independent reader of Cypher string literals written
 * here from the openCypher grammar's EscapedChar rule (the escapes Quiver's
 * lexer accepts, query/parser.h), not from the writer.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/buf.h"
#include "cli/csv.h"
#include "cli/cypher_literal.h"
#include "cli/header.h"
#include "cli/import.h"

/* Read a single- or double-quoted Cypher string literal at text; write the
 * value into out (UTF-8).  Returns bytes of value, or -1 if malformed or if
 * the literal does not span the whole text. */
static long read_literal(const char *text, size_t len, char *out) {
    if (len < 2 || (text[0] != '\'' && text[0] != '"')) return -1;
    char q = text[0];
    size_t o = 0, i = 1;
    for (; i < len; i++) {
        char c = text[i];
        if (c == q) break;
        if (c != '\\') {
            if ((unsigned char)c < 0x20) return -1; /* raw control chars must not appear */
            out[o++] = c;
            continue;
        }
        if (++i >= len) return -1;
        switch (text[i]) {
        case '\\': out[o++] = '\\'; break;
        case '\'': out[o++] = '\''; break;
        case '"': out[o++] = '"'; break;
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'u': {
            if (i + 4 >= len) return -1;
            unsigned cp = 0;
            for (int k = 1; k <= 4; k++) {
                char h = text[i + k];
                cp <<= 4;
                if (h >= '0' && h <= '9') cp |= (unsigned)(h - '0');
                else if (h >= 'a' && h <= 'f') cp |= (unsigned)(h - 'a' + 10);
                else if (h >= 'A' && h <= 'F') cp |= (unsigned)(h - 'A' + 10);
                else return -1;
            }
            i += 4;
            if (cp < 0x80) out[o++] = (char)cp;
            else if (cp < 0x800) out[o++] = (char)(0xC0 | (cp >> 6)), out[o++] = (char)(0x80 | (cp & 0x3F));
            else {
                out[o++] = (char)(0xE0 | (cp >> 12));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: return -1;
        }
    }
    if (i != len - 1) return -1;
    return (long)o;
}

static void check_string(const char *in, size_t n, const char *expected_literal) {
    cli_buf b = CLI_BUF_INIT;
    cypher_append_string(&b, in, n);
    if (expected_literal) assert_string_equal(b.data, expected_literal);
    char *back = malloc(b.len + 1);
    long m = read_literal(b.data, b.len, back);
    assert_int_equal(m, (long)n);
    assert_memory_equal(back, in, n);
    free(back);
    cli_buf_free(&b);
}

static void test_string_cases(void **state) {
    (void)state;
    check_string("", 0, "''");
    check_string("plain", 5, "'plain'");
    check_string("it's", 4, "'it\\'s'");
    check_string("say \"hi\"", 8, "'say \"hi\"'");
    check_string("back\\slash", 10, "'back\\\\slash'");
    check_string("a\nb\tc\rd", 7, "'a\\nb\\tc\\rd'");
    check_string("\b\f", 2, "'\\b\\f'");
    check_string("\x01\x1f\x7f", 3, "'\\u0001\\u001F\\u007F'");
    check_string("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", 17,
                 "'caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80'");
    check_string("\\'", 2, "'\\\\\\''"); /* a backslash then a quote: both escaped */
    check_string("'; MATCH (n) DETACH DELETE n //", 31, NULL);
}

static void test_string_round_trip_random(void **state) {
    (void)state;
    /* Deterministic pseudo-random strings from an alphabet of every ASCII
     * byte 1..127 and a few multi-byte characters. */
    static const char *multi[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xd0\x96"};
    uint64_t x = 0x9E3779B97F4A7C15ull;
    char s[512];
    for (int iter = 0; iter < 2000; iter++) {
        size_t n = 0;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t target = x % 200;
        while (n < target) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (x % 10 == 0) {
                const char *m = multi[(x >> 8) % 4];
                memcpy(s + n, m, strlen(m));
                n += strlen(m);
            } else {
                s[n++] = (char)(1 + (x >> 16) % 127);
            }
        }
        assert_true(cypher_utf8_valid(s, n));
        check_string(s, n, NULL);
    }
}

static void test_double(void **state) {
    (void)state;
    struct {
        double d;
        const char *text;
    } cases[] = {{1.0, "1.0"}, {-2.0, "-2.0"}, {0.5, "0.5"}, {1e300, "1.0000000000000001e+300"}, {-0.0, "-0.0"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_buf b = CLI_BUF_INIT;
        assert_int_equal(cypher_append_double(&b, cases[i].d), 0);
        assert_string_equal(b.data, cases[i].text);
        assert_true(strtod(b.data, NULL) == cases[i].d);
        cli_buf_free(&b);
    }
    double vals[] = {0.1, 1.0 / 3.0, 123456789.123456789, 5e-324, 1.7976931348623157e308};
    for (size_t i = 0; i < 5; i++) {
        cli_buf b = CLI_BUF_INIT;
        assert_int_equal(cypher_append_double(&b, vals[i]), 0);
        assert_true(strtod(b.data, NULL) == vals[i]);
        cli_buf_free(&b);
    }
    cli_buf b = CLI_BUF_INIT;
    assert_int_equal(cypher_append_double(&b, NAN), -1);
    assert_int_equal(cypher_append_double(&b, INFINITY), -1);
    assert_int_equal(b.len, 0);
    cypher_append_int(&b, INT64_MIN);
    assert_string_equal(b.data, "-9223372036854775808");
    cli_buf_free(&b);
}

static void test_names(void **state) {
    (void)state;
    struct {
        const char *in, *out;
    } cases[] = {{"Package", "Package"}, {"_x1", "_x1"}, {"my label", "`my label`"},
                 {"a`b", "`a``b`"},      {"1abc", "`1abc`"}, {"", "``"}, {"caf\xc3\xa9", "`caf\xc3\xa9`"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_buf b = CLI_BUF_INIT;
        cypher_append_name(&b, cases[i].in, strlen(cases[i].in));
        assert_string_equal(b.data, cases[i].out);
        cli_buf_free(&b);
    }
}

static void test_utf8(void **state) {
    (void)state;
    assert_true(cypher_utf8_valid("", 0));
    assert_true(cypher_utf8_valid("h\xc3\xa9llo", 6));
    assert_true(cypher_utf8_valid("\xf0\x9f\x98\x80", 4));
    assert_true(cypher_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
    assert_false(cypher_utf8_valid("\xc0\x80", 2));         /* overlong NUL */
    assert_false(cypher_utf8_valid("\xe0\x80\xaf", 3));     /* overlong '/' */
    assert_false(cypher_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(cypher_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(cypher_utf8_valid("\xf5\x80\x80\x80", 4));
    assert_false(cypher_utf8_valid("\xe2\x82", 2)); /* truncated */
    assert_false(cypher_utf8_valid("a\x80", 2));    /* stray continuation */
    assert_false(cypher_utf8_valid("a\0b", 3));     /* NUL */
    assert_false(cypher_utf8_valid("\xff", 1));
}

/* Build a header and a row from CSV text and convert the row. */
static int convert(const char *head, const char *row, char *out, size_t out_size, char *err) {
    static char hb[1024], rb[1024];
    csv_field hf[32], rf[32];
    size_t hn, rn;
    const char *cerr;
    strcpy(hb, head);
    strcpy(rb, row);
    assert_int_equal(csv_split(hb, strlen(hb), hf, 32, &hn, &cerr), 0);
    assert_int_equal(csv_split(rb, strlen(rb), rf, 32, &rn, &cerr), 0);
    assert_int_equal(hn, rn);
    import_header h;
    assert_int_equal(import_header_parse(IMPORT_NODES, hf, hn, &h, err, 256), 0);
    cli_buf b = CLI_BUF_INIT;
    cli_buf_puts(&b, "X");
    int rc = import_append_values(&h, rf, &b, err, 256);
    if (rc == 0) {
        cli_buf_putc(&b, '|');
        import_append_pattern_map(&h, 0, &b);
    }
    snprintf(out, out_size, "%s", b.data);
    cli_buf_free(&b);
    import_header_free(&h);
    return rc;
}

static void test_properties(void **state) {
    (void)state;
    char out[1024], err[256];
    const char *head = "id:ID,name,n:int,f:float,ok:boolean,tags:string[],xs:int[],:LABEL,skip:IGNORE";
    assert_int_equal(convert(head, "p:1,bash,42,2.5,TRUE,a;b,1;2;3,Package,zzz", out, sizeof out, err), 0);
    assert_string_equal(out, "X'p:1','bash',42,2.5,true,['a', 'b'],[1, 2, 3]|"
                             " {id: r[0], name: r[1], n: r[2], f: r[3], ok: r[4], tags: r[5], xs: r[6]}");
    /* Empty cells are missing (null); a quoted empty string stays an empty string. */
    assert_int_equal(convert(head, "p:2,,,,,,,Package,", out, sizeof out, err), 0);
    assert_string_equal(out, "X'p:2',null,null,null,null,null,null|"
                             " {id: r[0], name: r[1], n: r[2], f: r[3], ok: r[4], tags: r[5], xs: r[6]}");
    assert_int_equal(convert(head, "p:3,\"\",,,,,,Package,", out, sizeof out, err), 0);
    assert_true(strncmp(out, "X'p:3','',null,", 15) == 0);
    /* Integers: sign, spaces, limits. */
    assert_int_equal(convert("n:long", " -9223372036854775808 ", out, sizeof out, err), 0);
    assert_string_equal(out, "X-9223372036854775808| {n: r[0]}");
    assert_int_equal(convert("f:double", "3", out, sizeof out, err), 0);
    assert_string_equal(out, "X3.0| {f: r[0]}");
    assert_int_equal(convert("s", "it's \"x\"", out, sizeof out, err), 0);
    assert_string_equal(out, "X'it\\'s \"x\"'| {s: r[0]}");
    assert_int_equal(convert("`odd key`:int", "1", out, sizeof out, err), 0);
    assert_string_equal(out, "X1| {```odd key```: r[0]}");

    /* Errors leave the buffer as it was. */
    struct {
        const char *head, *row, *msg;
    } bad[] = {
        {"n:int", "12x", "column 'n': '12x' is not a 64-bit integer"},
        {"n:int", "9223372036854775808", "is not a 64-bit integer"},
        {"f:float", "abc", "column 'f': 'abc' is not a finite number"},
        {"f:float", "inf", "is not a finite number"},
        {"f:float", "1e999", "is not a finite number"},
        {"b:boolean", "yes", "column 'b': 'yes' is not true or false"},
        {"xs:int[]", "1;;2", "is not a 64-bit integer"},
        {"s", "bad\xff", "column 's': not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = convert(bad[i].head, bad[i].row, out, sizeof out, err);
        if (rc != -1 || strstr(err, bad[i].msg) == NULL)
            fail_msg("case %zu: rc %d err '%s' wanted '%s'", i, rc, err, bad[i].msg);
        assert_string_equal(out, "X");
    }
}

static void test_labels(void **state) {
    (void)state;
    char err[256];
    cli_buf b = CLI_BUF_INIT;
    assert_int_equal(import_append_labels("A;B", 3, &b, err, sizeof err), 2);
    assert_string_equal(b.data, ":A:B");
    cli_buf_clear(&b);
    assert_int_equal(import_append_labels(";; ;", 4, &b, err, sizeof err), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(import_append_labels("my label; Other ", 16, &b, err, sizeof err), 2);
    assert_string_equal(b.data, ":`my label`:Other");
    cli_buf_clear(&b);
    assert_int_equal(import_append_labels("ok;bad\xc3", 7, &b, err, sizeof err), -1);
    assert_int_equal(b.len, 0);
    cli_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_cases), cmocka_unit_test(test_string_round_trip_random),
        cmocka_unit_test(test_double),       cmocka_unit_test(test_names),
        cmocka_unit_test(test_utf8),         cmocka_unit_test(test_properties),
        cmocka_unit_test(test_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
