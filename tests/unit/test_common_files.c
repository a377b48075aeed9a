/*
 * test_common_files.c -- q_remove_tree removes nested trees without
 * following links and treats a missing path as removed; q_fsync_path and
 * q_fsync_parent sync what exists and report what does not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/files.h"

static void write_file(const char *path) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
}

static void test_remove_tree(void **state) {
    (void)state;
    char base[] = "/tmp/quiver-files-XXXXXX";
    assert_non_null(mkdtemp(base));
    char keep[] = "/tmp/quiver-files-keep-XXXXXX";
    assert_non_null(mkdtemp(keep));
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/c", base);
    char a[256], ab[256], kept[256], link[256];
    snprintf(a, sizeof a, "%s/a", base);
    snprintf(ab, sizeof ab, "%s/a/b", base);
    assert_int_equal(mkdir(a, 0755), 0);
    assert_int_equal(mkdir(ab, 0755), 0);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/a/b/c/file", base);
    write_file(path);
    snprintf(kept, sizeof kept, "%s/kept", keep);
    write_file(kept);
    snprintf(link, sizeof link, "%s/a/link", base);
    assert_int_equal(symlink(keep, link), 0);

    assert_int_equal(q_fsync_path(path), 0);
    assert_int_equal(q_fsync_path(ab), 0);
    assert_int_equal(q_fsync_parent(path), 0);

    assert_int_equal(q_remove_tree(base), 0);
    assert_int_equal(access(base, F_OK), -1);
    assert_int_equal(access(kept, F_OK), 0); /* the link was removed, not followed */
    assert_int_equal(q_remove_tree(base), 0); /* already gone */

    errno = 0;
    assert_int_equal(q_fsync_path(base), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(q_remove_tree(keep), 0);
}

static void test_fsync_parent_of_bare_name(void **state) {
    (void)state;
    assert_int_equal(q_fsync_parent("no-slash-here"), 0); /* "." */
    assert_int_equal(q_fsync_parent("/top"), 0);          /* "/" */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remove_tree),
        cmocka_unit_test(test_fsync_parent_of_bare_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
