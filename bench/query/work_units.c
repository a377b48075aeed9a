/*
 * work_units.c -- how long one work unit takes (query/engine.h, "WORK
 * UNITS"), measured on write shapes, to size QUIVER_WRITE_WORK_MAX_DEFAULT
 * (about one second of work).  Reports, never asserts.
 *
 * Each shape runs as the apply thread runs a write (query_run_write on a
 * transaction, unbudgeted) on a fresh database built by its setup
 * statement; the time is the thread's CPU time for query_run_write alone
 * (not the commit), so other processes on the machine disturb it little.
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -I. -Itests/unit -o build/work_units bench/query/work_units.c \
 *      build/libquiver_query.a build/libquiver_storage.a build/libquiver_common.a \
 *      -lrocksdb -llz4 -lxxhash -lpcre2-8 -lcmocka -lpthread -lm
 *   build/work_units [repeats]
 */
#include <time.h>

#include "test_query_util.h"

typedef struct shape {
    const char *name;
    const char *setup; /* run first, not measured; may be NULL */
    const char *query;
} shape;

static const shape SHAPES[] = {
    {"UNWIND range + CREATE", NULL, "UNWIND range(1, 200000) AS i CREATE (:P {i: i, name: 'p' + toString(i), x: i * 2})"},
    {"import batch (CYPHER rows, 5 columns)", NULL, NULL /* built below */},
    {"MATCH + SET over many nodes", "UNWIND range(1, 200000) AS i CREATE (:Q {i: i})",
     "MATCH (q:Q) SET q.j = q.i + 1, q.s = 'v' + toString(q.i)"},
    {"cartesian product into one CREATE", "UNWIND range(1, 700) AS i CREATE (:A {i: i}), (:B {i: i})",
     "MATCH (a:A), (b:B) WITH count(*) AS n CREATE (:C {n: n})"},
    {"regex-heavy write", "UNWIND range(1, 100000) AS i CREATE (:R {name: 'name-' + toString(i) + '-suffix'})",
     "MATCH (r:R) WHERE r.name =~ 'name-[0-9]*7[0-9]*-suf+ix' SET r.hit = true"},
    {"nested UNWIND buffered by CREATE", NULL, "UNWIND range(1, 1500) AS a UNWIND range(1, 1500) AS b CREATE (:X {a: a, b: b})"},
    {"sort then CREATE", NULL, "UNWIND range(1, 300000) AS i WITH i ORDER BY -i LIMIT 1 CREATE (:S {i: i})"},
    {"DISTINCT and collect", NULL,
     "UNWIND range(1, 400000) AS i WITH DISTINCT i % 1000 AS k, i % 7 AS m WITH k, collect(m) AS l CREATE (:D {k: k, n: size(l)})"},
};

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *import_batch(uint32_t rows) {
    size_t cap = (size_t)rows * 64 + 256, o = 0;
    char *q = malloc(cap);
    if (q == NULL) abort();
    o += (size_t)sprintf(q + o, "CYPHER rows=[");
    for (uint32_t i = 0; i < rows; i++)
        o += (size_t)sprintf(q + o, "%s[%u,'name %u',%u.25,true,'x']", i ? "," : "", i, i, i);
    sprintf(q + o, "] UNWIND $rows AS r CREATE (n:I {a: r[0], b: r[1], c: r[2], d: r[3], e: r[4]}) RETURN id(n)");
    return q;
}

int main(int argc, char **argv) {
    int repeats = argc > 1 ? atoi(argv[1]) : 3;
    char *batch = import_batch(50000);
    printf("%-40s %12s %10s %8s\n", "shape", "units", "cpu ms", "ns/unit");
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        const char *q = SHAPES[s].query ? SHAPES[s].query : batch;
        for (int k = 0; k < repeats; k++) {
            tq *t = tq_open();
            if (SHAPES[s].setup) {
                query_result *r = tq_write(t, SHAPES[s].setup);
                if (r->status != QUERY_OK) fprintf(stderr, "setup: %s\n", r->error);
                query_result_free(r);
            }
            query_request req = tq_req(t, q);
            qs_txn *x = qs_txn_begin(t->db);
            qs_txn_savepoint(x);
            double c0 = cpu_s();
            query_result *r = query_run_write(x, &req);
            double c1 = cpu_s();
            qs_txn_release_savepoint(x);
            qs_txn_commit(x, ++t->applied);
            if (r->status != QUERY_OK) fprintf(stderr, "%s: %s\n", SHAPES[s].name, r->error);
            printf("%-40s %12llu %10.1f %8.1f\n", SHAPES[s].name, (unsigned long long)r->work, (c1 - c0) * 1e3,
                   (c1 - c0) * 1e9 / (double)(r->work ? r->work : 1));
            query_result_free(r);
            tq_close(t);
        }
    }
    free(batch);
    return 0;
}
