/*
 * test_query_regex.c -- `=~` with PCRE2 (query/regex.c): Java
 * String.matches semantics (the whole subject), the Java-like syntax users
 * expect, UTF-8 subjects and patterns, invalid UTF-8 subjects (null),
 * errors with PCRE2's message and offset, and the limits: the two probes
 * of issue 7 (15,000 nested groups, which crashed every replica in glibc's
 * regcomp; `(a{1,1000}){1,300}`, which took 13.7 s and 5.1 GB there) end
 * quickly in a result or a clear error, in admission, reads and writes;
 * a catastrophic backtracking pattern stops at the match limit with the
 * same error every time; a computed pattern is recompiled only when its
 * text changes.
 */
#include "test_query_util.h"

#include "common/limits.h"

static int setup(void **state) {
    *state = tq_open();
    return 0;
}

static int teardown(void **state) {
    tq_close(*state);
    return 0;
}

static void test_semantics(void **state) {
    tq *t = *state;
    /* whole-string match, as Java's String.matches */
    TQ_READ_EQ(t, "RETURN 'abc' =~ 'a.*', 'abc' =~ 'b', 'abc' =~ 'ab', 'abc' =~ '.*b.*'", "true|false|false|true\n");
    /* an alternative that matches a prefix does not hide one that matches all */
    TQ_READ_EQ(t, "RETURN 'ab' =~ 'a|ab', 'ab' =~ '(a|ab)', 'a' =~ 'a|ab'", "true|true|true\n");
    /* anchors are harmless, newlines are characters */
    TQ_READ_EQ(t, "RETURN 'abc' =~ '^abc$', 'a\\nb' =~ 'a.b', 'a\\nb' =~ '(?s)a.b'", "true|false|true\n");
    /* Java-like syntax: classes, flags, lazy/possessive quantifiers, look-around, back references */
    TQ_READ_EQ(t,
               "RETURN 'x42' =~ '\\\\w\\\\d+', 'ABC' =~ '(?i)abc', 'aaa' =~ 'a+?', 'aaa' =~ 'a++', "
               "'foobar' =~ 'foo(?=bar).*', 'abab' =~ '(ab)\\\\1', 'a.c' =~ 'a\\\\.c', 'abc' =~ 'a\\\\.c'",
               "true|true|true|true|true|true|true|false\n");
    /* UTF-8: `.` is one code point; \\p{L} works; \\w stays ASCII as in Java */
    TQ_READ_EQ(t, "RETURN 'café' =~ 'caf.', 'café' =~ 'caf..', 'é' =~ '\\\\p{L}', 'é' =~ '\\\\w', '日本' =~ '..'",
               "true|false|true|false|true\n");
    /* null and non-string operands */
    TQ_READ_EQ(t, "RETURN null =~ 'a', 'a' =~ null, 1 =~ '1', 'a' =~ 1", "null|null|null|null\n");
    /* empty pattern and subject */
    TQ_READ_EQ(t, "RETURN '' =~ '', 'a' =~ '', '' =~ 'a*'", "true|false|true\n");
}

/* A subject that is not valid UTF-8 (here a CYPHER parameter: string
 * literals keep their bytes as given) gives null, the same everywhere;
 * other string operators still see its bytes. */
static void test_invalid_utf8_subject(void **state) {
    tq *t = *state;
    const char q[] = "CYPHER s='a\xff' RETURN $s =~ 'a.', $s =~ '.*', $s STARTS WITH 'a'";
    TQ_READ_EQ(t, q, "null|null|true\n");
    /* an invalid UTF-8 pattern is an invalid pattern */
    const char q2[] = "RETURN 'a' =~ 'a\xff'";
    char *e = tq_error(t, q2, false, QUERY_ERR_RUNTIME);
    assert_non_null(strstr(e, "ERR invalid regular expression"));
    assert_non_null(strstr(e, "UTF-8"));
    free(e);
}

static void test_errors(void **state) {
    tq *t = *state;
    char *e = tq_error(t, "RETURN 'a' =~ 'a(b'", false, QUERY_ERR_RUNTIME);
    assert_string_equal(e, "ERR invalid regular expression 'a(b': missing closing parenthesis at offset 3");
    free(e);
    e = tq_error(t, "RETURN 'a' =~ '*a'", false, QUERY_ERR_RUNTIME);
    assert_string_equal(e, "ERR invalid regular expression '*a': quantifier does not follow a repeatable item at offset 0");
    free(e);
    /* a bad constant pattern fails at plan time: even with no row to match */
    e = tq_error(t, "MATCH (n:Nothing) WHERE n.x =~ '[' RETURN n", false, QUERY_ERR_RUNTIME);
    assert_non_null(strstr(e, "ERR invalid regular expression '['"));
    free(e);
    /* ... and admission refuses it before a write is proposed */
    query_admission a;
    char err[512];
    assert_int_equal(query_admit("CREATE (:P {m: 'a' =~ '('})", 27, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "ERR invalid regular expression '('"));
    /* a computed pattern fails when it is computed */
    e = tq_error(t, "UNWIND ['a', 'b('] AS p RETURN 'a' =~ p", false, QUERY_ERR_RUNTIME);
    assert_non_null(strstr(e, "ERR invalid regular expression 'b('"));
    free(e);
    /* too long */
    size_t n = QUIVER_QUERY_REGEX_PATTERN_SIZE_MAX_BYTES + 1;
    char *q = malloc(n + 64);
    size_t o = (size_t)sprintf(q, "RETURN 'a' =~ '");
    memset(q + o, 'a', n);
    o += n;
    sprintf(q + o, "'");
    e = tq_error(t, q, false, QUERY_ERR_LIMIT);
    char want[128];
    snprintf(want, sizeof want, "is longer than %u bytes (the limit)", QUIVER_QUERY_REGEX_PATTERN_SIZE_MAX_BYTES);
    assert_non_null(strstr(e, want));
    free(e);
    free(q);
}

/* The probes of issue 7, as writes, reads and admissions. */
static void test_probes(void **state) {
    tq *t = *state;
    /* 15,000 nested groups (30 KB): too long; 200 nested groups: too deep */
    for (int groups = 15000; groups >= 200; groups -= 14800) {
        size_t cap = (size_t)groups * 2 + 128;
        char *q = malloc(cap);
        size_t o = (size_t)sprintf(q, "CREATE (:P {m: 'a' =~ '");
        for (int i = 0; i < groups; i++) q[o++] = '(';
        q[o++] = 'a';
        for (int i = 0; i < groups; i++) q[o++] = ')';
        o += (size_t)sprintf(q + o, "'})");
        const char *want = groups > 1000 ? "(the limit)" : "nests parentheses deeper than 64 levels (the limit)";
        query_admission a;
        char err[512];
        assert_int_equal(query_admit(q, o, &a, err, sizeof err), -1);
        if (strstr(err, want) == NULL || strncmp(err, "ERR regular expression", 22) != 0) fail_msg("admit: %s", err);
        query_request req = tq_req(t, q);
        query_result *r = tq_write_req(t, &req);
        assert_int_equal(r->status, QUERY_ERR_LIMIT);
        assert_non_null(strstr(r->error, want));
        query_result_free(r);
        /* the read form: RETURN instead of CREATE */
        o = (size_t)sprintf(q, "RETURN 'a' =~ '");
        for (int i = 0; i < groups; i++) q[o++] = '(';
        q[o++] = 'a';
        for (int i = 0; i < groups; i++) q[o++] = ')';
        o += (size_t)sprintf(q + o, "' AS m");
        req = tq_req(t, q);
        req.text_len = o;
        r = tq_read_req(t, &req);
        assert_int_equal(r->status, QUERY_ERR_LIMIT);
        assert_non_null(strstr(r->error, want));
        query_result_free(r);
        free(q);
    }
    /* 64 nested groups are fine */
    char q[512];
    size_t o = (size_t)sprintf(q, "RETURN 'a' =~ '");
    for (int i = 0; i < 63; i++) q[o++] = '(';
    q[o++] = 'a';
    for (int i = 0; i < 63; i++) q[o++] = ')';
    sprintf(q + o, "' AS m");
    TQ_READ_EQ(t, q, "true\n");
    /* nested counted repetition multiplies: 300,000 repeats are refused, in
     * admission, a write and a read */
    const char *want = "ERR regular expression '(a{1,1000}){1,300}' repeats more than 1000 times (the limit on counted "
                       "repetition, nested counts multiplied)";
    query_admission a;
    char err[512];
    const char *wq = "CREATE (p:P {m: 'aaaa' =~ '(a{1,1000}){1,300}'})";
    assert_int_equal(query_admit(wq, strlen(wq), &a, err, sizeof err), -1);
    assert_string_equal(err, want);
    char *e = tq_error(t, "CREATE (p:P {m: 'aaaa' =~ '(a{1,1000}){1,300}'})", true, QUERY_ERR_LIMIT);
    assert_string_equal(e, want);
    free(e);
    e = tq_error(t, "RETURN 'a' =~ '(a{1,1000}){1,300}'", false, QUERY_ERR_LIMIT);
    assert_string_equal(e, want);
    free(e);
    /* the count: {m,n} counts n, {m} and {m,} m, loops nothing; braces in
     * escapes, classes, \Q..\E and comments are not quantifiers */
    TQ_READ_EQ(t,
               "RETURN 'aaaa' =~ 'a{1,1000}', 'a' =~ '((a{10}){10}){10}', 'ab' =~ '(a|b){1,1000}', "
               "'AAA' =~ '\\\\x{41}{3}', '{{{' =~ '[{]{3}', '{1000}}' =~ '\\\\Q{1000}\\\\E{2}', "
               "'a' =~ '(?#{5000})a', 'aaa' =~ '(a+){2,}', 'x{,5}' =~ 'x{,5}'",
               "true|false|true|true|true|true|true|true|true\n");
    const char *refused[] = {"((a{10}){10}){11}", "\\\\d{2000}", "(a{2,}){501}", "((ab){40}c){30}", "[a-z]{1001}"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char q2[256];
        snprintf(q2, sizeof q2, "RETURN 'a' =~ '%s'", refused[i]);
        e = tq_error(t, q2, false, QUERY_ERR_LIMIT);
        if (strstr(e, "repeats more than 1000 times") == NULL) fail_msg("%s: %s", refused[i], e);
        free(e);
    }
    /* patterns whose program would be huge stop at PCRE2's size limit */
    e = tq_error(t, "RETURN 'a' =~ '((((a{1,1000}){1,1000}){1,1000}){1,1000})'", false, QUERY_ERR_LIMIT);
    assert_non_null(strstr(e, "ERR regular expression '((((a{1,1000}){1,1000}){1,1000}){1,1000}...' is too large"));
    free(e);
}

/* Catastrophic backtracking stops at PCRE2's match limit: an error with
 * the limit's value, identical on every run (counted, never timed), and
 * the write that hit it has no effects. */
static void test_match_limit(void **state) {
    tq *t = *state;
    const char *q = "UNWIND range(1, 3) AS i CREATE (:M {i: i, m: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!' =~ '(a|aa|aaa)*(b|c)?'})";
    char *first = NULL;
    uint64_t work = 0;
    for (int round = 0; round < 3; round++) {
        query_result *r = tq_write(t, q);
        assert_int_equal(r->status, QUERY_ERR_LIMIT);
        char want[128];
        snprintf(want, sizeof want, "exceeds the match limit of %u steps (subject of 55 bytes)", QUIVER_QUERY_REGEX_MATCH_LIMIT);
        if (strstr(r->error, want) == NULL) fail_msg("%s", r->error);
        if (first == NULL) {
            first = strdup(r->error);
            work = r->work;
        } else {
            assert_string_equal(r->error, first);
            assert_int_equal(r->work, work);
        }
        query_result_free(r);
    }
    free(first);
    TQ_READ_EQ(t, "MATCH (m:M) RETURN count(m)", "0\n");
    /* a match that needs more than the first tier costs more work units */
    query_result *small = tq_read(t, "RETURN 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' =~ '(a|aa)*b?' AS m");
    query_result *big = tq_read(t, "RETURN 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!' =~ '(a|aa)*b?' AS m");
    assert_int_equal(small->status, QUERY_OK);
    if (big->status == QUERY_OK) assert_true(big->work > small->work);
    else assert_int_equal(big->status, QUERY_ERR_LIMIT);
    query_result_free(small);
    query_result_free(big);
}

/* A computed pattern is compiled per distinct text, and stays right when
 * texts alternate. */
static void test_computed_patterns(void **state) {
    tq *t = *state;
    TQ_READ_EQ(t,
               "UNWIND ['a.*', 'b.*', 'a.*', '.*c', null] AS p RETURN 'abc' =~ p AS m",
               "true\nfalse\ntrue\ntrue\nnull\n");
    tq_exec(t, "UNWIND range(1, 50) AS i CREATE (:S {name: 'n' + toString(i), pat: 'n' + toString(i % 5) + '.*'})");
    /* n1..n4, n11, n16, n22, n27, n33, n38, n44, n49 */
    TQ_READ_EQ(t, "MATCH (s:S) WHERE s.name =~ s.pat RETURN count(s)", "12\n");
    TQ_READ_EQ(t, "MATCH (s:S) WHERE s.name =~ 'n1[0-9]' RETURN count(s)", "10\n");
    /* the same pattern in two places, and in a write */
    TQ_WRITE_EQ(t, "MATCH (s:S) WHERE s.name =~ 'n4.' SET s.hit = s.name =~ 'n4[0-4]' RETURN count(s)", "10\n");
    TQ_READ_EQ(t, "MATCH (s:S) WHERE s.hit RETURN count(s)", "5\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8_subject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_computed_patterns, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
