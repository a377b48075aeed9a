/*
 * test_storage_util.h -- helpers shared by the storage unit tests:
 * temporary directories (under $QUIVER_TEST_TMP, else /tmp) removed at the
 * end, and a few shorthands for building a graph.
 */
#ifndef QUIVER_TEST_STORAGE_UTIL_H
#define QUIVER_TEST_STORAGE_UTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/arena.h"
#include "common/value.h"
#include "storage/graph.h"

static int tsu_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static inline void tsu_rm_rf(const char *path) {
    nftw(path, tsu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory path (not created when create is false: the path
 * of a directory that does not exist yet, inside a fresh parent). */
static inline char *tsu_tmpdir(void) {
    const char *base = getenv("QUIVER_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0755);
    char *p = malloc(strlen(base) + 32);
    assert_non_null(p);
    sprintf(p, "%s/qs-test-XXXXXX", base);
    assert_non_null(mkdtemp(p));
    return p;
}

static inline char *tsu_path(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static inline qs_db *tsu_open(const char *dir) {
    qs_options o = {0};
    o.create_if_missing = true;
    o.block_cache_size_bytes = 8u << 20;
    qs_db *db = NULL;
    char err[1024];
    int rc = qs_open(dir, &o, &db, err, sizeof err);
    if (rc != QS_OK) fprintf(stderr, "qs_open: %s\n", err);
    assert_int_equal(rc, QS_OK);
    return db;
}

static inline uint32_t tsu_intern(qs_txn *t, uint32_t g, qs_schema_kind kind, const char *name) {
    uint32_t id;
    assert_int_equal(qs_schema_intern(t, g, kind, name, strlen(name), &id), QS_OK);
    return id;
}

/* Props from key ids and values (count entries). */
static inline qv_props tsu_props(uint32_t count, uint32_t *keys, qv_value *values) {
    qv_props p;
    memset(&p, 0, sizeof p);
    p.count = count;
    p.key_ids = keys;
    p.values = values;
    return p;
}

static inline qv_value tsu_str(const char *s) { return qv_string(s, (uint32_t)strlen(s)); }

#endif
