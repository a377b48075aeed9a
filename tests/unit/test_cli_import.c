/*
 * test_cli_import.c -- `quiver import` end to end against an in-process fake
 * server (a thread speaking RESP on 127.0.0.1 that answers the import's
 * GRAPH.QUERY batches the way FalkorDB's verbose format does, handing out
 * node ids 0, 1, 2, ...), plus a dry run over the repository's copy of the
 * Debian graph checked against its manifest.json.
 *
 * The fake server records every query so the tests can check the exact
 * Cypher sent (batching, escaping, id mapping), and can be told to refuse a
 * batch or to report existing nodes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <zlib.h>

#include "cli/buf.h"
#include "cli/import.h"
#include "test_cli_fake_server.h"

/* ------------------------------------------------------------------ */
/* Test data                                                           */
/* ------------------------------------------------------------------ */

static char tmpdir[256];

static void write_file(const char *dir, const char *name, const char *text) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void write_gz(const char *dir, const char *name, const char *text) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
    gzclose(g);
}

static void make_dir(const char *sub, char *out, size_t n) {
    snprintf(out, n, "%s/%s", tmpdir, sub);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", out);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state) {
    (void)state;
    /* Under ctest, QUIVER_TEST_TMP names the build's scratch folder. */
    const char *base = getenv("QUIVER_TEST_TMP");
    if (base == NULL || base[0] == '\0' || strlen(base) > 200) base = "/tmp";
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", base);
    assert_int_equal(system(cmd), 0);
    snprintf(tmpdir, sizeof tmpdir, "%s/quiver-test-cli-XXXXXX", base);
    assert_non_null(mkdtemp(tmpdir));
    char d[512];
    make_dir("small", d, sizeof d);
    write_file(d, "nodes_people.csv",
               "id:ID,name,age:int,:LABEL\n"
               "p1,\"Alice, 'A'\",30,Person\n"
               "p2,Bob,,Person;Admin\n"
               "p3,\"Carol \"\"C\"\"\",notanumber,Person\n"
               "p1,Dup,1,Person\n"
               "p4,\"unterminated,5,Person\n"
               "p5,Eve,5\n"
               "p6,Caf\xc3\xa9,7,Person\r\n");
    write_gz(d, "nodes_city.csv.gz", ":ID(City),name,:LABEL\nc1,Paris,City\n");
    write_file(d, "edges_knows.csv",
               ":START_ID,:END_ID,since:int,:TYPE\n"
               "p1,p2,2020,KNOWS\n"
               "p2,p9,2021,KNOWS\n"
               "p1,c1,1,KNOWS\n"
               "p6,p1,,LIKES\n");
    write_file(d, "edges_lives.csv", ":START_ID,:END_ID(City),:TYPE\np1,c1,LIVES_IN\n");
    write_file(d, "README.txt", "not a data file\n");
    make_dir("misc", d, sizeof d);
    write_file(d, "nodes_plain.csv", "name\nx\n\ny\n");           /* no :ID, no :LABEL; a blank line */
    write_file(d, "nodes_empty.csv", "\xef\xbb\xbfid:ID,:LABEL\n");  /* BOM, header only */
    write_file(d, "edges_none.csv", ":START_ID,:END_ID,:TYPE\n");
    make_dir("truncated", d, sizeof d);
    {
        /* A gzip stream cut in half: a read error, not a silent short file. */
        cli_buf big = CLI_BUF_INIT;
        cli_buf_puts(&big, "id:ID,n:int\n");
        for (int i = 0; i < 20000; i++) cli_buf_printf(&big, "k%d,%d\n", i, i * 7919 % 10007);
        write_gz(d, "nodes_t.csv.gz", big.data);
        cli_buf_free(&big);
        char path[1200];
        snprintf(path, sizeof path, "%s/nodes_t.csv.gz", d);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fclose(f);
        assert_int_equal(truncate(path, size / 2), 0);
    }
    make_dir("badheader", d, sizeof d);
    write_file(d, "nodes_a.csv", "id:ID,name\na,b\n");
    write_file(d, "edges_a.csv", ":START_ID,:TYPE\na,T\n");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct captured {
    char *out, *err;
    size_t out_len, err_len;
    FILE *fout, *ferr;
} captured;

static void capture(captured *c, import_options *o) {
    memset(c, 0, sizeof *c);
    c->fout = open_memstream(&c->out, &c->out_len);
    c->ferr = open_memstream(&c->err, &c->err_len);
    o->out = c->fout;
    o->err = c->ferr;
    o->progress = 0;
}

static void release(captured *c) {
    fclose(c->fout);
    fclose(c->ferr);
    free(c->out);
    free(c->err);
}

static void expect(const char *text, const char *part) {
    if (strstr(text, part) == NULL) fail_msg("missing '%s' in:\n%s", part, text);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void small_options(import_options *o, fake *f, const char *sub, char *dir, size_t n) {
    import_options_default(o);
    o->host = "127.0.0.1";
    o->port = f->port;
    o->graph = "t";
    snprintf(dir, n, "%s/%s", tmpdir, sub);
    o->dir = dir;
    o->batch_rows = 2;
    o->in_flight = 2;
}

static void test_small_import(void **state) {
    (void)state;
    fake *f = fake_start();
    fake_run(f);
    import_options o;
    char dir[512];
    small_options(&o, f, "small", dir, sizeof dir);
    captured c;
    capture(&c, &o);
    int rc = import_run(&o);
    fflush(c.fout);
    fflush(c.ferr);
    if (rc != 0) fail_msg("rc %d\n%s\n%s", rc, c.out, c.err);
    /* Files in order: nodes (city before people), then edges. */
    assert_int_equal(f->query_count, 6);
    assert_string_equal(f->queries[0],
                        "CYPHER rows=[['Paris']] UNWIND $rows AS r CREATE (n:City {name: r[0]}) RETURN id(n)");
    assert_string_equal(f->queries[1],
                        "CYPHER rows=[['p1','Alice, \\'A\\'',30],['p6','Caf\xc3\xa9',7]] "
                        "UNWIND $rows AS r CREATE (n:Person {id: r[0], name: r[1], age: r[2]}) RETURN id(n)");
    assert_string_equal(f->queries[2],
                        "CYPHER rows=[['p2','Bob',null]] UNWIND $rows AS r CREATE (n:Person:Admin {id: r[0], name: r[1], age: r[2]}) "
                        "RETURN id(n)");
    /* ids: c1=0, p1=1, p6=2, p2=3 */
    assert_string_equal(f->queries[3],
                        "CYPHER rows=[[1,3,2020]] UNWIND $rows AS r MATCH (a), (b) WHERE id(a) = r[0] AND "
                        "id(b) = r[1] CREATE (a)-[:KNOWS {since: r[2]}]->(b)");
    assert_string_equal(f->queries[4],
                        "CYPHER rows=[[2,1,null]] UNWIND $rows AS r MATCH (a), (b) WHERE id(a) = r[0] AND "
                        "id(b) = r[1] CREATE (a)-[:LIKES {since: r[2]}]->(b)");
    assert_string_equal(f->queries[5],
                        "CYPHER rows=[[1,0]] UNWIND $rows AS r MATCH (a), (b) WHERE id(a) = r[0] AND "
                        "id(b) = r[1] CREATE (a)-[:LIVES_IN]->(b)");
    expect(c.out, "Loaded graph 't': 7 elements");
    expect(c.out, "  nodes: 4\n");
    expect(c.out, "    City                                    1\n");
    expect(c.out, "    Person                                  3\n");
    expect(c.out, "    Admin                                   1\n");
    expect(c.out, "  relationships: 3\n");
    expect(c.out, "    KNOWS                                   1\n");
    expect(c.out, "*** 6 rows SKIPPED");
    expect(c.out, "nodes_people.csv:4: column 'age': 'notanumber' is not a 64-bit integer");
    expect(c.out, "nodes_people.csv:5: duplicate node id 'p1'");
    expect(c.out, "nodes_people.csv:6: unterminated quoted field");
    expect(c.out, "nodes_people.csv:7: 3 fields, the header has 4");
    expect(c.out, "edges_knows.csv:3: unknown :END_ID 'p9'");
    expect(c.out, "edges_knows.csv:4: unknown :END_ID 'c1'"); /* c1 lives in id space City */
    expect(c.err, "nodes_people.csv: 3 nodes loaded, 4 rows skipped");
    expect(c.err, "warning: nodes_people.csv:4:");
    assert_int_equal(f->connections, 1);
    release(&c);
    fake_stop(f);
}

static void test_strict_makes_skips_an_error(void **state) {
    (void)state;
    fake *f = fake_start();
    fake_run(f);
    import_options o;
    char dir[512];
    small_options(&o, f, "small", dir, sizeof dir);
    o.strict = true;
    captured c;
    capture(&c, &o);
    assert_int_equal(import_run(&o), 1);
    fflush(c.fout);
    expect(c.out, "an error with --strict");
    release(&c);
    fake_stop(f);
}

static void test_refuses_non_empty_graph(void **state) {
    (void)state;
    fake *f = fake_start();
    f->existing_nodes = 5;
    fake_run(f);
    import_options o;
    char dir[512];
    small_options(&o, f, "small", dir, sizeof dir);
    captured c;
    capture(&c, &o);
    assert_int_equal(import_run(&o), 1);
    fflush(c.ferr);
    expect(c.err, "graph 't' already has 5 nodes; nothing was loaded");
    assert_int_equal(f->batches, 0);
    release(&c);
    /* --append loads anyway. */
    o.append = true;
    capture(&c, &o);
    assert_int_equal(import_run(&o), 0);
    assert_int_equal(f->batches, 6);
    release(&c);
    fake_stop(f);
}

static void test_server_error_stops(void **state) {
    (void)state;
    fake *f = fake_start();
    f->fail_batch = 2;
    fake_run(f);
    import_options o;
    char dir[512];
    small_options(&o, f, "small", dir, sizeof dir);
    o.batch_rows = 1;
    o.in_flight = 1;
    captured c;
    capture(&c, &o);
    assert_int_equal(import_run(&o), 1);
    fflush(c.fout);
    fflush(c.ferr);
    expect(c.err, "error: import stopped: the server refused the batch of nodes_people.csv lines 2-2: boom: batch refused");
    expect(c.out, "Partly loaded graph 't': 1 elements");
    assert_int_equal(f->batches, 2); /* nothing sent after the refusal (pipeline depth 1) */
    release(&c);
    fake_stop(f);
}

static void test_bad_header_sends_nothing(void **state) {
    (void)state;
    fake *f = fake_start();
    fake_run(f);
    import_options o;
    char dir[512];
    small_options(&o, f, "badheader", dir, sizeof dir);
    captured c;
    capture(&c, &o);
    assert_int_equal(import_run(&o), 1);
    fflush(c.ferr);
    expect(c.err, "edges_a.csv: header: no :END_ID column in the header");
    assert_int_equal(f->connections, 0);
    release(&c);
    fake_stop(f);
}

static void test_connection_refused_and_missing_dir(void **state) {
    (void)state;
    fake *f = fake_start();
    int port = f->port;
    fake_run(f);
    fake_stop(f); /* nothing listens on port now */
    import_options o;
    import_options_default(&o);
    o.port = port;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/small", tmpdir);
    o.dir = dir;
    captured c;
    capture(&c, &o);
    assert_int_equal(import_run(&o), 1);
    fflush(c.ferr);
    expect(c.err, "error: cannot connect to 127.0.0.1:");
    release(&c);
    snprintf(dir, sizeof dir, "%s/nonexistent", tmpdir);
    capture(&c, &o);
    assert_int_equal(import_run(&o), 1);
    fflush(c.ferr);
    expect(c.err, "error: cannot open directory");
    release(&c);
}

static void test_unlabelled_and_empty_files(void **state) {
    (void)state;
    fake *f = fake_start();
    fake_run(f);
    import_options o;
    char dir[512];
    small_options(&o, f, "misc", dir, sizeof dir);
    o.batch_rows = 100;
    captured c;
    capture(&c, &o);
    int rc = import_run(&o);
    fflush(c.fout);
    fflush(c.ferr);
    if (rc != 0) fail_msg("rc %d\n%s\n%s", rc, c.out, c.err);
    assert_int_equal(f->query_count, 1);
    assert_string_equal(f->queries[0],
                        "CYPHER rows=[['x'],['y']] UNWIND $rows AS r CREATE (n {name: r[0]}) RETURN id(n)");
    expect(c.out, "    (no label)                              2\n");
    expect(c.out, "  relationships: 0\n");
    expect(c.out, "rows skipped: 0");
    release(&c);
    fake_stop(f);
}

static void test_truncated_gzip_fails(void **state) {
    (void)state;
    fake *f = fake_start();
    fake_run(f);
    import_options o;
    char dir[512];
    small_options(&o, f, "truncated", dir, sizeof dir);
    o.batch_rows = 1000;
    captured c;
    capture(&c, &o);
    assert_int_equal(import_run(&o), 1);
    fflush(c.ferr);
    fflush(c.fout);
    expect(c.err, "error: import stopped: nodes_t.csv.gz: cannot read after line");
    expect(c.out, "Partly loaded graph 't'");
    release(&c);
    fake_stop(f);
}

/* Dry run over the repository's Debian graph; counts must equal the
 * manifest's (read from manifest.json, not written here). */
static long manifest_count(const char *manifest, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "\"%s\": ", name);
    const char *p = strstr(manifest, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static long summary_count(const char *summary, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "\n    %s ", name);
    const char *p = strstr(summary, key);
    if (p == NULL) return -1;
    p += strlen(key);
    while (*p == ' ') p++;
    long v = 0;
    for (; (*p >= '0' && *p <= '9') || *p == ','; p++)
        if (*p != ',') v = v * 10 + (*p - '0');
    return v;
}

static void test_dry_run_debian(void **state) {
    (void)state;
    char dir[1024];
    const char *file = __FILE__; /* <repo>/tests/unit/test_cli_import.c */
    const char *cut = strstr(file, "tests/unit/");
    if (cut == NULL) skip();
    snprintf(dir, sizeof dir, "%.*sdata/debian-bookworm", (int)(cut - file), file);
    char mpath[1100];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", dir);
    FILE *mf = fopen(mpath, "rb");
    if (mf == NULL) skip();
    static char manifest[65536];
    size_t mlen = fread(manifest, 1, sizeof manifest - 1, mf);
    manifest[mlen] = '\0';
    fclose(mf);
    import_options o;
    import_options_default(&o);
    o.dir = dir;
    o.dry_run = true;
    captured c;
    capture(&c, &o);
    assert_int_equal(import_run(&o), 0);
    fflush(c.fout);
    const char *names[] = {"Package",    "VirtualPackage", "MissingPackage", "Maintainer",    "Source",
                           "DEPENDS_ON", "PRE_DEPENDS_ON", "RECOMMENDS",     "SUGGESTS",      "CONFLICTS",
                           "BREAKS",     "PROVIDES",       "MAINTAINED_BY",  "BUILT_FROM"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        long want = manifest_count(manifest, names[i]);
        assert_true(want > 0);
        if (summary_count(c.out, names[i]) != want)
            fail_msg("%s: summary %ld, manifest %ld\n%s", names[i], summary_count(c.out, names[i]), want, c.out);
    }
    expect(c.out, "rows skipped: 0");
    release(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_import),
        cmocka_unit_test(test_strict_makes_skips_an_error),
        cmocka_unit_test(test_refuses_non_empty_graph),
        cmocka_unit_test(test_server_error_stops),
        cmocka_unit_test(test_bad_header_sends_nothing),
        cmocka_unit_test(test_connection_refused_and_missing_dir),
        cmocka_unit_test(test_unlabelled_and_empty_files),
        cmocka_unit_test(test_truncated_gzip_fails),
        cmocka_unit_test(test_dry_run_debian),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
