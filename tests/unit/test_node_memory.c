/*
 * test_node_memory.c -- node/memory.c: parsing /proc/self/statm and cgroup
 * memory limits, the machine's memory, percentages, Redis' human sizes, and
 * a trim job run by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/memory.h"

static void test_parse_statm(void **state) {
    (void)state;
    uint64_t rss = 0;
    assert_true(node_memory_parse_statm("12345 678 90 1 0 2 0\n", 4096, &rss));
    assert_int_equal(rss, 678ull * 4096);
    assert_true(node_memory_parse_statm("1 2", 4096, &rss));
    assert_int_equal(rss, 8192);
    rss = 7;
    assert_false(node_memory_parse_statm("", 4096, &rss));
    assert_false(node_memory_parse_statm("12345", 4096, &rss));
    assert_false(node_memory_parse_statm("12345 x", 4096, &rss));
    assert_false(node_memory_parse_statm("-1 2", 4096, &rss));
    assert_false(node_memory_parse_statm("1 99999999999999999999", 4096, &rss)); /* overflow */
    assert_false(node_memory_parse_statm("1 9999999999999999", 4096, &rss));    /* pages * size overflows */
    assert_int_equal(rss, 7); /* untouched on failure */
}

static void test_parse_cgroup_limit(void **state) {
    (void)state;
    uint64_t v = 0;
    assert_true(node_memory_parse_cgroup_limit("2147483648\n", &v));
    assert_int_equal(v, 2147483648ull);
    assert_true(node_memory_parse_cgroup_limit("1048576", &v));
    assert_int_equal(v, 1048576);
    v = 5;
    assert_false(node_memory_parse_cgroup_limit("max\n", &v));                  /* v2: no limit */
    assert_false(node_memory_parse_cgroup_limit("9223372036854771712\n", &v));  /* v1: no limit */
    assert_false(node_memory_parse_cgroup_limit("0\n", &v));
    assert_false(node_memory_parse_cgroup_limit("", &v));
    assert_false(node_memory_parse_cgroup_limit("12 34", &v));
    assert_false(node_memory_parse_cgroup_limit("1k", &v));
    assert_int_equal(v, 5);
}

static void test_machine_and_rss(void **state) {
    (void)state;
    uint64_t machine = node_memory_machine_bytes();
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    assert_true(machine > 0);
    assert_true(machine <= (uint64_t)pages * (uint64_t)page); /* never above physical memory */
    uint64_t rss = node_memory_rss_bytes();
    assert_true(rss > 0 && rss < machine);
    /* Touching 64 MiB shows up in the resident size. */
    size_t n = 64u << 20;
    char *p = malloc(n);
    memset(p, 1, n);
    uint64_t grown = node_memory_rss_bytes();
    assert_true(grown >= rss + n / 2);
    assert_int_equal(p[n - 1], 1);
    free(p);
}

static void test_percent_and_human(void **state) {
    (void)state;
    assert_int_equal(node_memory_percent_of(1000, 75), 750);
    assert_int_equal(node_memory_percent_of(UINT64_MAX, 100), UINT64_MAX); /* no overflow */
    assert_int_equal(node_memory_percent_of(UINT64_MAX, 50), UINT64_MAX / 2);
    assert_int_equal(node_memory_percent_of(3, 50), 1);
    char h[32];
    node_memory_human(0, h, sizeof h);
    assert_string_equal(h, "0B");
    node_memory_human(1023, h, sizeof h);
    assert_string_equal(h, "1023B");
    node_memory_human(1536, h, sizeof h);
    assert_string_equal(h, "1.50K");
    node_memory_human(17276928, h, sizeof h);
    assert_string_equal(h, "16.48M");
    node_memory_human(3ull << 30, h, sizeof h);
    assert_string_equal(h, "3.00G");
}

static void test_trim_job(void **state) {
    (void)state;
    node_memory_trim_job j;
    node_memory_trim_job_init(&j);
    assert_non_null(j.base.work);
    assert_null(j.base.done); /* the caller's */
    j.base.work(&j.base);      /* what a pool thread does */
    assert_true(j.rss_before_bytes > 0 && j.rss_after_bytes > 0);
    assert_true(node_memory_configure_allocator());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_statm),
        cmocka_unit_test(test_parse_cgroup_limit),
        cmocka_unit_test(test_machine_and_rss),
        cmocka_unit_test(test_percent_and_human),
        cmocka_unit_test(test_trim_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
