/*
 * test_cli_csv.c -- RFC 4180 splitting (cli/csv.c) and neo4j-admin header
 * parsing (cli/header.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli/csv.h"
#include "cli/header.h"

#define MAXF 16

static int split(const char *text, char *buf, csv_field *f, size_t *n, const char **err) {
    size_t len = strlen(text);
    memcpy(buf, text, len + 1);
    return csv_split(buf, len, f, MAXF, n, err);
}

static void assert_field(const csv_field *f, const char *want, bool quoted) {
    assert_int_equal(f->len, strlen(want));
    assert_memory_equal(f->text, want, f->len);
    assert_int_equal(f->quoted, quoted);
}

static void test_plain_fields(void **state) {
    (void)state;
    char buf[256];
    csv_field f[MAXF];
    size_t n;
    const char *err = NULL;
    assert_int_equal(split("a,bc,,d", buf, f, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_field(&f[0], "a", false);
    assert_field(&f[1], "bc", false);
    assert_field(&f[2], "", false);
    assert_field(&f[3], "d", false);
    assert_int_equal(split(",,", buf, f, &n, &err), 0);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) assert_field(&f[i], "", false);
    assert_int_equal(split("", buf, f, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_field(&f[0], "", false);
    assert_int_equal(split("trailing,", buf, f, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_field(&f[1], "", false);
}

static void test_quoted_fields(void **state) {
    (void)state;
    char buf[256];
    csv_field f[MAXF];
    size_t n;
    const char *err = NULL;
    assert_int_equal(split("\"a,b\",c", buf, f, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_field(&f[0], "a,b", true);
    assert_field(&f[1], "c", false);
    assert_int_equal(split("x,\"he said \"\"hi\"\"\",y", buf, f, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_field(&f[1], "he said \"hi\"", true);
    assert_field(&f[2], "y", false);
    assert_int_equal(split("\"\",\"\"\"\"", buf, f, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_field(&f[0], "", true);
    assert_field(&f[1], "\"", true);
    /* A quote inside an unquoted field is kept literally. */
    assert_int_equal(split("5\" disk,b", buf, f, &n, &err), 0);
    assert_field(&f[0], "5\" disk", false);
    /* UTF-8 passes through. */
    assert_int_equal(split("\"caf\xc3\xa9, bar\",\xe6\x97\xa5", buf, f, &n, &err), 0);
    assert_field(&f[0], "caf\xc3\xa9, bar", true);
    assert_field(&f[1], "\xe6\x97\xa5", false);
}

static void test_crlf(void **state) {
    (void)state;
    char buf[256];
    csv_field f[MAXF];
    size_t n;
    const char *err = NULL;
    assert_int_equal(split("a,b\r", buf, f, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_field(&f[1], "b", false);
    assert_int_equal(split("a,\"b\"\r", buf, f, &n, &err), 0);
    assert_field(&f[1], "b", true);
}

static void test_bad_lines(void **state) {
    (void)state;
    char buf[256];
    csv_field f[MAXF];
    size_t n;
    const char *err = NULL;
    assert_int_equal(split("\"abc", buf, f, &n, &err), -1);
    assert_string_equal(err, "unterminated quoted field");
    assert_int_equal(split("a,\"b\"\"", buf, f, &n, &err), -1);
    assert_string_equal(err, "unterminated quoted field");
    assert_int_equal(split("\"abc\"x,y", buf, f, &n, &err), -1);
    assert_string_equal(err, "text after closing quote");
    assert_int_equal(split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", buf, f, &n, &err), -1);
    assert_string_equal(err, "too many fields");
    /* Exactly the capacity is fine. */
    assert_int_equal(split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p", buf, f, &n, &err), 0);
    assert_int_equal(n, 16);
}

/* Header helpers. */
static int header(import_file_kind kind, const char *line, import_header *h, char *err) {
    static char buf[1024];
    csv_field f[MAXF];
    size_t n;
    const char *cerr;
    size_t len = strlen(line);
    memcpy(buf, line, len + 1);
    assert_int_equal(csv_split(buf, len, f, MAXF, &n, &cerr), 0);
    return import_header_parse(kind, f, n, h, err, 256);
}

static void test_node_header(void **state) {
    (void)state;
    import_header h;
    char err[256];
    assert_int_equal(header(IMPORT_NODES, "id:ID,name,age:int,score:double,ok:Boolean,tags:string[],n:LONG[],:LABEL,x:IGNORE", &h, err), 0);
    assert_int_equal(h.column_count, 9);
    assert_int_equal(h.id_col, 0);
    assert_int_equal(h.label_col, 7);
    assert_int_equal(h.property_count, 7); /* id, name, age, score, ok, tags, n */
    assert_int_equal(h.columns[0].kind, COL_ID);
    assert_string_equal(h.columns[0].name, "id");
    assert_string_equal(h.columns[0].id_space, "");
    assert_int_equal(h.columns[1].kind, COL_PROPERTY);
    assert_int_equal(h.columns[1].type, VT_STRING);
    assert_int_equal(h.columns[2].type, VT_INT);
    assert_int_equal(h.columns[3].type, VT_FLOAT);
    assert_int_equal(h.columns[4].type, VT_BOOL);
    assert_true(h.columns[5].array);
    assert_int_equal(h.columns[5].type, VT_STRING);
    assert_true(h.columns[6].array);
    assert_int_equal(h.columns[6].type, VT_INT);
    assert_int_equal(h.columns[8].kind, COL_IGNORE);
    assert_null(h.columns[8].name);
    assert_string_equal(h.columns[2].key_literal, "age: ");
    import_header_free(&h);

    /* :ID without a name stores nothing; id spaces; name with ':' */
    assert_int_equal(header(IMPORT_NODES, ":ID(Pkg),a:b:int,:label,`odd name`", &h, err), 0);
    assert_int_equal(h.columns[0].kind, COL_ID);
    assert_null(h.columns[0].name);
    assert_string_equal(h.columns[0].id_space, "Pkg");
    assert_string_equal(h.columns[1].name, "a:b");
    assert_int_equal(h.columns[1].type, VT_INT);
    assert_string_equal(h.columns[1].key_literal, "`a:b`: ");
    assert_int_equal(h.label_col, 2);
    assert_int_equal(h.property_count, 2);
    import_header_free(&h);

    /* No ID column at all is allowed (nodes nobody can reference). */
    assert_int_equal(header(IMPORT_NODES, "name,:LABEL", &h, err), 0);
    assert_int_equal(h.id_col, -1);
    import_header_free(&h);
}

static void test_edge_header(void **state) {
    (void)state;
    import_header h;
    char err[256];
    assert_int_equal(header(IMPORT_EDGES, ":START_ID(Pkg),:END_ID,since:long,:TYPE", &h, err), 0);
    assert_int_equal(h.start_col, 0);
    assert_int_equal(h.end_col, 1);
    assert_int_equal(h.type_col, 3);
    assert_string_equal(h.columns[0].id_space, "Pkg");
    assert_string_equal(h.columns[1].id_space, "");
    assert_int_equal(h.property_count, 1);
    import_header_free(&h);
    assert_int_equal(header(IMPORT_EDGES, ":START_ID,:END_ID,:TYPE", &h, err), 0);
    assert_int_equal(h.property_count, 0);
    import_header_free(&h);
}

static void test_header_errors(void **state) {
    (void)state;
    import_header h;
    char err[256];
    struct {
        import_file_kind kind;
        const char *line;
        const char *msg_part;
    } cases[] = {
        {IMPORT_NODES, "id:ID,age:itn", "unknown or unsupported type 'itn'"},
        {IMPORT_NODES, "id:ID,d:date", "unsupported type 'date'"},
        {IMPORT_NODES, "id:ID,:TYPE", "not allowed in a node file"},
        {IMPORT_NODES, "id:ID,:START_ID", "not allowed in a node file"},
        {IMPORT_EDGES, ":START_ID,:END_ID,:TYPE,:ID", "not allowed in a relationship file"},
        {IMPORT_EDGES, ":START_ID,:END_ID,:LABEL,:TYPE", "not allowed in a relationship file"},
        {IMPORT_EDGES, ":START_ID,:TYPE", "no :END_ID column"},
        {IMPORT_EDGES, ":END_ID,:TYPE", "no :START_ID column"},
        {IMPORT_EDGES, ":START_ID,:END_ID", "no :TYPE column"},
        {IMPORT_NODES, "id:ID,name,name:int", "duplicate property name"},
        {IMPORT_NODES, "name:ID,name", "duplicate property name"},
        {IMPORT_NODES, "id:ID,:LABEL,:LABEL", "a second column of this kind"},
        {IMPORT_NODES, "a:ID,b:ID", "a second column of this kind"},
        {IMPORT_NODES, "id:ID,:int", "a property column needs a name"},
        {IMPORT_NODES, "id:ID(abc", "unbalanced '('"},
        {IMPORT_NODES, "id:ID,:LABEL(x)", "only ID, START_ID and END_ID take an id space"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&h, 0x55, sizeof h);
        int rc = header(cases[i].kind, cases[i].line, &h, err);
        if (rc != -1 || strstr(err, cases[i].msg_part) == NULL)
            fail_msg("case %zu '%s': rc %d, err '%s', wanted '%s'", i, cases[i].line, rc, err, cases[i].msg_part);
        assert_null(h.columns); /* nothing to free on error */
    }
    /* The message names the column. */
    assert_int_equal(header(IMPORT_NODES, "id:ID,name,age:itn", &h, err), -1);
    assert_non_null(strstr(err, "column 3 'age:itn'"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_fields), cmocka_unit_test(test_quoted_fields), cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_bad_lines),    cmocka_unit_test(test_node_header),   cmocka_unit_test(test_edge_header),
        cmocka_unit_test(test_header_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
