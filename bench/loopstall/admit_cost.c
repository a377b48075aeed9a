/*
 * admit_cost.c -- how long query_admit (query/query.h) takes on the loop
 * thread by text size, to choose admission's inline threshold
 * (node/admission.h: ADMISSION_INLINE_TEXT_SIZE_MAX_BYTES).  Built and run by
 * bench/loopstall/run; numbers are reported, never asserted.
 *
 * Texts: a point lookup, a short CREATE, and statements grown to a size
 * (a CREATE with N comma-separated pattern parts, a list literal, an
 * UNWIND of a parameter list as `quiver import` sends), each admitted
 * repeatedly; prints microseconds per call and per KiB.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/query.h"

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* Append s to a growing text. */
static void cat(char **buf, size_t *len, size_t *cap, const char *s) {
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

static void measure(const char *name, const char *text, size_t len) {
    query_admission adm;
    char err[1024];
    int reps = len < 8192 ? 2000 : len < 262144 ? 50 : 5;
    int rc = query_admit(text, len, &adm, err, sizeof err); /* warm up */
    double t0 = now_us();
    for (int i = 0; i < reps; i++) query_admit(text, len, &adm, err, sizeof err);
    double us = (now_us() - t0) / reps;
    printf("  %-34s %9zu bytes %10.1f us/call %8.2f us/KiB%s\n", name, len, us, us / (len / 1024.0),
           rc == 0 ? "" : "  (refused)");
}

int main(void) {
    printf("query_admit cost on this machine (bench/loopstall/admit_cost.c)\n");
    const char *lookup = "MATCH (p:Package {name: 'bash'}) RETURN p";
    measure("point lookup", lookup, strlen(lookup));
    const char *create = "CREATE (:Person {name: 'Ann', age: 33})-[:KNOWS]->(:Person {name: 'Bob'})";
    measure("short CREATE", create, strlen(create));
    size_t sizes[] = {1024, 2048, 4096, 16384, 65536, 1u << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        char *b = NULL;
        size_t len = 0, cap = 0;
        cat(&b, &len, &cap, "CREATE ");
        for (int i = 0; len < sizes[k]; i++) {
            char part[96];
            snprintf(part, sizeof part, "%s(:P%d {id: %d, name: 'n%d'})", i ? ", " : "", i % 7, i, i);
            cat(&b, &len, &cap, part);
        }
        measure("CREATE of many pattern parts", b, len);
        len = 0;
        cat(&b, &len, &cap, "RETURN size([");
        for (int i = 0; len < sizes[k]; i++) {
            char item[32];
            snprintf(item, sizeof item, "%s%d", i ? "," : "", i);
            cat(&b, &len, &cap, item);
        }
        cat(&b, &len, &cap, "])");
        measure("list literal", b, len);
        len = 0;
        cat(&b, &len, &cap, "CYPHER rows=[");
        for (int i = 0; len < sizes[k]; i++) {
            char row[96];
            snprintf(row, sizeof row, "%s[%d,'name%d',%d.5]", i ? "," : "", i, i, i);
            cat(&b, &len, &cap, row);
        }
        cat(&b, &len, &cap, "] UNWIND $rows AS r CREATE (n:L {a: r[0], b: r[1], c: r[2]}) RETURN id(n)");
        measure("import batch (UNWIND $rows)", b, len);
        free(b);
    }
    return 0;
}
