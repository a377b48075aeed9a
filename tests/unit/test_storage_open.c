/*
 * test_storage_open.c -- what qs_open accepts and refuses: a new directory
 * is created, an empty one initialised, a directory of other files, a
 * foreign RocksDB and a damaged database are refused with a message that
 * names the file; checkpoints open as databases.
 */
#include <dirent.h>
#include <rocksdb/c.h>

#include "test_storage_util.h"

static int open_err(const char *dir, bool create, char *err, size_t n) {
    qs_options o = {0};
    o.create_if_missing = create;
    qs_db *db = NULL;
    int rc = qs_open(dir, &o, &db, err, n);
    if (rc == QS_OK) qs_close(db);
    else assert_null(db);
    return rc;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_new_and_missing(void **state) {
    (void)state;
    char *base = tsu_tmpdir();
    char *dir = tsu_path(base, "data");
    char err[2048];
    /* absent, creation not asked for */
    assert_int_equal(open_err(dir, false, err, sizeof err), QS_NOT_FOUND);
    assert_non_null(strstr(err, dir));
    /* absent, created */
    assert_int_equal(open_err(dir, true, err, sizeof err), QS_OK);
    char *marker = tsu_path(dir, "QUIVER");
    assert_int_equal(access(marker, F_OK), 0);
    /* existing database opens without create_if_missing */
    assert_int_equal(open_err(dir, false, err, sizeof err), QS_OK);
    /* an existing empty directory: refused without create, else created */
    char *empty = tsu_path(base, "empty");
    assert_int_equal(mkdir(empty, 0755), 0);
    assert_int_equal(open_err(empty, false, err, sizeof err), QS_NOT_FOUND);
    assert_int_equal(open_err(empty, true, err, sizeof err), QS_OK);
    /* creation interrupted right after the marker: completed on open */
    char *half = tsu_path(base, "half");
    assert_int_equal(mkdir(half, 0755), 0);
    char *hm = tsu_path(half, "QUIVER");
    write_file(hm, "quiver-storage 1\n");
    assert_int_equal(open_err(half, true, err, sizeof err), QS_OK);
    /* creation killed half-way (a SIGTERM in a node's first milliseconds):
     * it happened in DIR.creating, so DIR is absent; the next open removes
     * the leftover and creates the database properly. */
    char *killed = tsu_path(base, "killed");
    char *killed_tmp = tsu_path(base, "killed.creating");
    assert_int_equal(mkdir(killed_tmp, 0755), 0);
    char *km = tsu_path(killed_tmp, "MANIFEST-000001");
    write_file(km, "half");
    assert_int_equal(open_err(killed, true, err, sizeof err), QS_OK);
    assert_int_equal(access(killed_tmp, F_OK), -1);
    assert_int_equal(open_err(killed, false, err, sizeof err), QS_OK);
    free(km);
    free(killed_tmp);
    free(killed);
    /* a plain file is not a directory */
    char *file = tsu_path(base, "file");
    write_file(file, "x");
    assert_int_equal(open_err(file, true, err, sizeof err), QS_INVALID);
    free(file);
    free(hm);
    free(half);
    free(empty);
    free(marker);
    free(dir);
    tsu_rm_rf(base);
    free(base);
}

static void test_refuse_foreign(void **state) {
    (void)state;
    char *base = tsu_tmpdir();
    char err[2048];
    /* a directory with someone's files */
    char *d1 = tsu_path(base, "photos");
    assert_int_equal(mkdir(d1, 0755), 0);
    char *f1 = tsu_path(d1, "holiday.jpg");
    write_file(f1, "not a database");
    assert_int_equal(open_err(d1, true, err, sizeof err), QS_CORRUPT);
    assert_non_null(strstr(err, f1)); /* names the file */
    /* and nothing was written there */
    DIR *d = opendir(d1);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, 1);

    /* a RocksDB database that is not ours */
    char *d2 = tsu_path(base, "otherdb");
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    char *rerr = NULL;
    rocksdb_t *r = rocksdb_open(o, d2, &rerr);
    assert_null(rerr);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put(r, wo, "k", 1, "v", 1, &rerr);
    assert_null(rerr);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_close(r);
    assert_int_equal(open_err(d2, true, err, sizeof err), QS_CORRUPT);
    char *cur = tsu_path(d2, "CURRENT");
    assert_non_null(strstr(err, cur));
    assert_non_null(strstr(err, "not create"));
    /* ... even with our marker copied in: its column families give it away */
    char *m2 = tsu_path(d2, "QUIVER");
    write_file(m2, "quiver-storage 1\n");
    assert_int_equal(open_err(d2, true, err, sizeof err), QS_CORRUPT);
    assert_non_null(strstr(err, "MANIFEST-"));
    assert_non_null(strstr(err, "column families"));
    assert_non_null(strstr(err, "not a Quiver database"));
    /* a marker of another format */
    write_file(m2, "quiver-storage 99\n");
    assert_int_equal(open_err(d2, true, err, sizeof err), QS_CORRUPT);
    assert_non_null(strstr(err, m2));
    rocksdb_options_destroy(o);
    free(m2);
    free(cur);
    free(d2);
    free(f1);
    free(d1);
    tsu_rm_rf(base);
    free(base);
}

static char *find_manifest(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char *found = NULL;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "MANIFEST-", 9) == 0) {
            free(found);
            found = strdup(e->d_name);
        }
    closedir(d);
    assert_non_null(found);
    return found;
}

static void test_refuse_corrupt(void **state) {
    (void)state;
    char *base = tsu_tmpdir();
    char *dir = tsu_path(base, "db");
    char err[2048];
    qs_db *db = tsu_open(dir);
    qs_txn *t = qs_txn_begin(db);
    uint32_t g;
    assert_int_equal(qs_graph_create(t, "g", 1, &g), QS_OK);
    qs_txn_commit(t, 1);
    qs_close(db);
    /* garbage in the MANIFEST */
    char *mname = find_manifest(dir);
    char *mpath = tsu_path(dir, mname);
    FILE *f = fopen(mpath, "r+");
    assert_non_null(f);
    char junk[4096];
    memset(junk, 0x5a, sizeof junk);
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    assert_int_equal(open_err(dir, true, err, sizeof err), QS_CORRUPT);
    assert_non_null(strstr(err, mname));
    if (!strstr(err, "damaged")) fprintf(stderr, "message: %s\n", err);
    assert_non_null(strstr(err, "damaged"));
    /* CURRENT missing */
    char *cur = tsu_path(dir, "CURRENT");
    assert_int_equal(unlink(cur), 0);
    assert_int_equal(open_err(dir, true, err, sizeof err), QS_CORRUPT);
    assert_non_null(strstr(err, cur));
    /* CURRENT naming a manifest that is not there */
    write_file(cur, "MANIFEST-999999\n");
    assert_int_equal(open_err(dir, true, err, sizeof err), QS_CORRUPT);
    assert_non_null(strstr(err, "MANIFEST-999999"));
    free(cur);
    free(mpath);
    free(mname);
    free(dir);
    tsu_rm_rf(base);
    free(base);
}

static void test_checkpoint_opens(void **state) {
    (void)state;
    char *base = tsu_tmpdir();
    char *dir = tsu_path(base, "db");
    char *cp = tsu_path(base, "cp");
    char err[1024];
    qs_db *db = tsu_open(dir);
    qs_txn *t = qs_txn_begin(db);
    uint32_t g;
    assert_int_equal(qs_graph_create(t, "g", 1, &g), QS_OK);
    uint64_t id;
    assert_int_equal(qs_node_create(t, g, NULL, 0, NULL, &id), QS_OK);
    qs_txn_commit(t, 7);
    assert_int_equal(qs_checkpoint(db, cp, err, sizeof err), QS_OK);
    assert_int_equal(qs_checkpoint(db, cp, err, sizeof err), QS_INVALID); /* exists */
    uint8_t u1[16], u2[16];
    qs_db_uuid(db, u1);
    qs_flush(db);
    qs_close(db);
    db = tsu_open(cp);
    assert_int_equal(qs_applied_index(db), 7);
    qs_db_uuid(db, u2);
    assert_memory_equal(u1, u2, 16);
    qs_view *v = qs_view_open_snapshot(db);
    assert_true(qs_node_exists(v, g, id));
    qs_view_close(v);
    qs_close(db);
    free(cp);
    free(dir);
    tsu_rm_rf(base);
    free(base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_and_missing),
        cmocka_unit_test(test_refuse_foreign),
        cmocka_unit_test(test_refuse_corrupt),
        cmocka_unit_test(test_checkpoint_opens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
