/*
 * test_query_lexer.c -- the openCypher lexer (query/lexer.h): token kinds,
 * keyword recognition, numbers (including the fast float path against
 * strtod), strings and escapes, positions in characters, comments, and
 * bounds safety on exactly sized buffers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "query/lexer.h"

/* Lex text fully into toks (at most cap); returns the count (EOF/ERROR last). */
static size_t lex_all(const char *text, size_t len, token *toks, size_t cap) {
    lexer lx;
    lexer_init(&lx, text, len);
    size_t n = 0;
    while (n < cap) {
        tok_type t = lexer_next(&lx, &toks[n]);
        n++;
        if (t == TOK_EOF || t == TOK_ERROR) break;
    }
    return n;
}

static void check_types(const char *text, const tok_type *want, size_t nwant) {
    token toks[64];
    size_t n = lex_all(text, strlen(text), toks, 64);
    if (n != nwant) fail_msg("'%s': %zu tokens, expected %zu", text, n, nwant);
    for (size_t i = 0; i < n; i++) {
        if (toks[i].type != want[i]) fail_msg("'%s': token %zu has type %d, expected %d", text, i, toks[i].type, want[i]);
    }
}

static void test_punctuation(void **state) {
    (void)state;
    const tok_type w1[] = {TOK_LPAREN, TOK_RPAREN, TOK_LBRACKET, TOK_RBRACKET, TOK_LBRACE, TOK_RBRACE,
                           TOK_COMMA, TOK_DOT, TOK_DOTDOT, TOK_COLON, TOK_SEMI, TOK_PIPE, TOK_EOF};
    check_types("()[]{},. ..:;|", w1, sizeof w1 / sizeof w1[0]);
    const tok_type w2[] = {TOK_EQ, TOK_NE, TOK_LT, TOK_LE, TOK_GT, TOK_GE, TOK_REGEX, TOK_PLUS,
                           TOK_PLUSEQ, TOK_MINUS, TOK_STAR, TOK_SLASH, TOK_PERCENT, TOK_CARET, TOK_NE, TOK_EOF};
    check_types("= <> < <= > >= =~ + += - * / % ^ !=", w2, sizeof w2 / sizeof w2[0]);
    /* arrows are single characters so the parser can tell a<-1 from (a)<-- */
    const tok_type w3[] = {TOK_LPAREN, TOK_IDENT, TOK_RPAREN, TOK_LT, TOK_MINUS, TOK_MINUS, TOK_GT,
                           TOK_LPAREN, TOK_RPAREN, TOK_EOF};
    check_types("(a)<-->()", w3, sizeof w3 / sizeof w3[0]);
    const tok_type w4[] = {TOK_LBRACKET, TOK_STAR, TOK_INT, TOK_DOTDOT, TOK_INT, TOK_RBRACKET, TOK_EOF};
    check_types("[*1..3]", w4, sizeof w4 / sizeof w4[0]);
}

static void test_keywords(void **state) {
    (void)state;
    for (int k = 1; k < KW__COUNT; k++) {
        const char *name = lexer_keyword_name((kw_id)k);
        size_t n = strlen(name);
        assert_int_equal(lexer_keyword(name, n), k);
        /* case-insensitive */
        char low[32];
        for (size_t i = 0; i < n; i++) low[i] = (char)(name[i] | 0x20);
        assert_int_equal(lexer_keyword(low, n), k);
        low[0] = name[0];
        assert_int_equal(lexer_keyword(low, n), k);
        /* a prefix or an extension is not the keyword */
        assert_int_not_equal(lexer_keyword(name, n - 1), k);
        char ext[32];
        memcpy(ext, name, n);
        ext[n] = 'X';
        assert_int_equal(lexer_keyword(ext, n + 1), KW_NONE);
    }
    assert_int_equal(lexer_keyword("matches", 7), KW_NONE);
    assert_int_equal(lexer_keyword("count", 5), KW_NONE);
    assert_int_equal(lexer_keyword("a", 1), KW_NONE);
    assert_int_equal(lexer_keyword("MATCH_", 6), KW_NONE);
    assert_int_equal(lexer_keyword("descendingx", 11), KW_NONE);
    assert_string_equal(lexer_keyword_name(KW_NONE), "");

    token toks[8];
    size_t n = lex_all("mAtCh `match` match_1", 21, toks, 8);
    assert_int_equal(n, 4);
    assert_int_equal(toks[0].type, TOK_IDENT);
    assert_int_equal(toks[0].kw, KW_MATCH);
    assert_int_equal(toks[1].type, TOK_QIDENT); /* back-quoted: never a keyword */
    assert_int_equal(toks[1].kw, KW_NONE);
    assert_int_equal(toks[2].type, TOK_IDENT);
    assert_int_equal(toks[2].kw, KW_NONE);
    assert_int_equal(toks[2].len, 7);
}

static void check_int(const char *text, uint64_t v) {
    token t[2];
    size_t n = lex_all(text, strlen(text), t, 2);
    assert_int_equal(n, 2);
    if (t[0].type != TOK_INT || t[0].num.u != v) fail_msg("'%s': type %d value %llu", text, t[0].type, (unsigned long long)t[0].num.u);
}

static void check_float(const char *text, double v) {
    token t[2];
    size_t n = lex_all(text, strlen(text), t, 2);
    assert_int_equal(n, 2);
    if (t[0].type != TOK_FLOAT || t[0].num.d != v) fail_msg("'%s': type %d value %.17g", text, t[0].type, t[0].num.d);
}

static void check_lex_error(const char *text, size_t len, const char *needle, uint32_t line, uint32_t col) {
    token t[16];
    size_t n = lex_all(text, len, t, 16);
    assert_true(n >= 1);
    token *last = &t[n - 1];
    if (last->type != TOK_ERROR) fail_msg("'%s': no error", text);
    lexer lx;
    lexer_init(&lx, text, len);
    token tt;
    while (lexer_next(&lx, &tt) != TOK_ERROR) {
    }
    if (strstr(lx.error_message, needle) == NULL || tt.line != line || tt.column != col) {
        fail_msg("'%s': %u:%u %s (expected %u:%u %s)", text, tt.line, tt.column, lx.error_message, line, col, needle);
    }
}

static void test_numbers(void **state) {
    (void)state;
    check_int("0", 0);
    check_int("42", 42);
    check_int("9223372036854775807", 9223372036854775807ull);
    check_int("9223372036854775808", 9223372036854775808ull); /* only valid negated; the parser checks */
    check_int("0x0", 0);
    check_int("0xFFff", 0xFFFF);
    check_int("0x8000000000000000", 0x8000000000000000ull);
    check_float("1.5", 1.5);
    check_float(".5", 0.5);
    check_float("0.1", 0.1);
    check_float("1e10", 1e10);
    check_float("1E+2", 100.0);
    check_float("2.5e-3", 2.5e-3);
    check_float("123456789012345678901234567890.5", 123456789012345678901234567890.5);
    check_float("1e308", 1e308);
    check_float("4.9e-324", 4.9e-324);
    check_float("0.000", 0.0);
    check_float("007.25", 7.25);

    check_lex_error("9223372036854775809", 19, "integer is too large", 1, 1);
    check_lex_error("x 18446744073709551616", 22, "integer is too large", 1, 3);
    check_lex_error("0x8000000000000001", 18, "integer is too large", 1, 1);
    check_lex_error("0x", 2, "invalid hexadecimal", 1, 1);
    check_lex_error("0xfg", 4, "invalid hexadecimal", 1, 1);
    check_lex_error("12abc", 5, "invalid number", 1, 1);
    check_lex_error("1e", 2, "invalid number", 1, 1);
    check_lex_error("1.5x", 4, "invalid number", 1, 1);

    /* 1..3 is a range, not 1. .3 */
    const tok_type w[] = {TOK_INT, TOK_DOTDOT, TOK_INT, TOK_EOF};
    check_types("1..3", w, 4);
    /* n.5 style is a property followed by a float, but 1.x is int '.' ident */
    const tok_type w2[] = {TOK_INT, TOK_DOT, TOK_IDENT, TOK_EOF};
    check_types("1 .x", w2, 4);
}

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The fast float path must agree with strtod bit for bit. */
static void test_float_matches_strtod(void **state) {
    (void)state;
    char buf[64];
    for (int i = 0; i < 200000; i++) {
        int len;
        switch (i % 4) {
        case 0: len = snprintf(buf, sizeof buf, "%llu.%llu", (unsigned long long)(rng() % 100000000000ull),
                               (unsigned long long)(rng() % 100000ull)); break;
        case 1: len = snprintf(buf, sizeof buf, "%llu.%03llue%d", (unsigned long long)(rng() % 1000),
                               (unsigned long long)(rng() % 1000), (int)(rng() % 60) - 30); break;
        case 2: len = snprintf(buf, sizeof buf, "%.17g", (double)(rng() >> 11) / (double)(1ull << 53) * 1e6);
            if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL) {
                memcpy(buf + len, ".0", 3);
                len += 2;
            }
            break;
        default: len = snprintf(buf, sizeof buf, "0.%015llu", (unsigned long long)(rng() % 1000000000000000ull)); break;
        }
        token t[2];
        size_t n = lex_all(buf, (size_t)len, t, 2);
        if (n != 2 || t[0].type != TOK_FLOAT) fail_msg("'%s' not a float", buf);
        double want = strtod(buf, NULL);
        if (memcmp(&want, &t[0].num.d, sizeof want) != 0) fail_msg("'%s': %.17g vs strtod %.17g", buf, t[0].num.d, want);
    }
}

static void test_strings(void **state) {
    (void)state;
    token t[4];
    size_t n = lex_all("'abc' \"d'e\" 'x\\'y'", 18, t, 4);
    assert_int_equal(n, 4);
    assert_int_equal(t[0].type, TOK_STRING);
    assert_int_equal(t[0].len, 3);
    assert_false(t[0].has_escape);
    assert_memory_equal("abc", "abc", 3);
    assert_int_equal(t[1].type, TOK_STRING);
    assert_int_equal(t[1].len, 3);
    assert_int_equal(t[2].type, TOK_STRING);
    assert_true(t[2].has_escape);
    assert_int_equal(t[2].begin, 12);
    assert_int_equal(t[2].end, 18);

    char out[64];
    const char *msg = NULL;
    size_t off = 0;
    const char *body = "a\\\\b\\'\\\"\\n\\t\\r\\b\\f\\u0041\\u00e9\\u20ac\\ud83d\\ude00z";
    long r = lexer_unescape(body, strlen(body), out, &msg, &off);
    const char want[] = "a\\b'\"\n\t\r\b\fA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
    assert_int_equal(r, (long)(sizeof want - 1));
    assert_memory_equal(out, want, sizeof want - 1);

    r = lexer_unescape("\\U0001F600\\U00e9", 16, out, &msg, &off);
    assert_int_equal(r, 6);
    assert_memory_equal(out, "\xf0\x9f\x98\x80\xc3\xa9", 6);

    r = lexer_unescape("\\U00e9abcd", 10, out, &msg, &off);
    assert_int_equal(r, 6);
    assert_memory_equal(out, "\xc3\xa9" "abcd", 6);

    const char *bad[] = {"\\q", "\\u12", "\\u12G4", "\\ud800", "\\ude00", "\\ud800\\u0041", "abc\\"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg = NULL;
        r = lexer_unescape(bad[i], strlen(bad[i]), out, &msg, &off);
        if (r != -1 || msg == NULL) fail_msg("'%s' accepted", bad[i]);
    }
    r = lexer_unescape("ab\\qc", 5, out, &msg, &off);
    assert_int_equal(r, -1);
    assert_int_equal(off, 2);

    /* strings may span lines; positions after them follow */
    n = lex_all("'a\nb' x", 7, t, 4);
    assert_int_equal(n, 3);
    assert_int_equal(t[1].line, 2);
    assert_int_equal(t[1].column, 4);

    check_lex_error("'abc", 4, "unterminated string", 1, 1);
    check_lex_error("x \"abc\\\"", 8, "unterminated string", 1, 3);
    check_lex_error("'abc\\", 5, "unterminated string", 1, 1);
}

static void test_identifiers_params_comments(void **state) {
    (void)state;
    token t[8];
    size_t n = lex_all("`a``b` $p $`x y` $0 _x1", 23, t, 8);
    assert_int_equal(n, 6);
    assert_int_equal(t[0].type, TOK_QIDENT);
    assert_true(t[0].has_escape);
    char out[16];
    size_t l = lexer_unquote_ident("a``b", 4, out);
    assert_int_equal(l, 3);
    assert_memory_equal(out, "a`b", 3);
    assert_int_equal(t[1].type, TOK_PARAM);
    assert_int_equal(t[1].len, 1);
    assert_int_equal(t[2].type, TOK_PARAM);
    assert_true(t[2].quoted);
    assert_int_equal(t[2].len, 3);
    assert_int_equal(t[3].type, TOK_PARAM);
    assert_int_equal(t[4].type, TOK_IDENT);

    const tok_type w[] = {TOK_IDENT, TOK_INT, TOK_IDENT, TOK_EOF};
    check_types("a // c1\n /* c2 \n c3 */ 1 /**/ b // end", w, 4);
    check_lex_error("a /* x", 6, "unterminated comment", 1, 3);
    check_lex_error("a /*", 4, "unterminated comment", 1, 3);
    check_lex_error("`abc", 4, "unterminated back-quoted", 1, 1);
    check_lex_error("$", 1, "parameter name", 1, 1);
    check_lex_error("$ x", 3, "parameter name", 1, 1);
    check_lex_error("a # b", 5, "unexpected character", 1, 3);
    check_lex_error("a \0 b", 5, "unexpected character", 1, 3);
    check_lex_error("a ! b", 5, "unexpected character", 1, 3);
}

static void test_positions(void **state) {
    (void)state;
    token t[8];
    /* columns count characters: 'é' and '中' are one each */
    const char *q = "MATCH\n  (é:中)\r\n\tRETURN";
    size_t n = lex_all(q, strlen(q), t, 8);
    assert_int_equal(n, 8);
    assert_int_equal(t[0].line, 1);
    assert_int_equal(t[0].column, 1);
    assert_int_equal(t[1].line, 2); /* ( */
    assert_int_equal(t[1].column, 3);
    assert_int_equal(t[2].column, 4); /* é */
    assert_int_equal(t[3].column, 5); /* : */
    assert_int_equal(t[4].column, 6); /* 中 */
    assert_int_equal(t[5].column, 7); /* ) */
    assert_int_equal(t[6].line, 3);
    assert_int_equal(t[6].column, 2);
    /* EOF position */
    n = lex_all("a\n", 2, t, 8);
    assert_int_equal(t[1].type, TOK_EOF);
    assert_int_equal(t[1].line, 2);
    assert_int_equal(t[1].column, 1);
}

/* Every byte value at every position of short inputs, on exactly sized
 * heap buffers (ASan catches any read past the end). */
static void test_bounds(void **state) {
    (void)state;
    const char *seeds[] = {"'a\\u00", "0x", "1e+", "/*", "`a``", "$`", "1.", "..", "\"\\", "=~"};
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        size_t len = strlen(seeds[s]);
        for (size_t cut = 0; cut <= len; cut++) {
            for (int b = 0; b < 256; b++) {
                size_t n = cut + 1;
                char *buf = malloc(n);
                assert_non_null(buf);
                memcpy(buf, seeds[s], cut);
                buf[cut] = (char)b;
                token toks[32];
                size_t k = lex_all(buf, n, toks, 32);
                assert_true(k >= 1);
                for (size_t i = 0; i < k; i++) {
                    assert_true(toks[i].begin <= n);
                    assert_true(toks[i].end <= n);
                    assert_true(toks[i].start + toks[i].len <= n);
                }
                free(buf);
            }
        }
    }
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)(rng() % 48);
        char *buf = malloc(n ? n : 1);
        assert_non_null(buf);
        for (size_t i = 0; i < n; i++) buf[i] = "ab1.'\"`\\$/*\n xe+-u0"[rng() % 19];
        token toks[64];
        size_t k = lex_all(buf, n, toks, 64);
        for (size_t i = 0; i < k; i++) assert_true(toks[i].end <= n);
        free(buf);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_punctuation),
        cmocka_unit_test(test_keywords),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_float_matches_strtod),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_identifiers_params_comments),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
