/*
 * test_common_arena.c -- the region allocator (common/arena.c): limits are
 * counted in bytes handed out, a reset keeps only the first block (also
 * after a large allocation was linked behind the head), a shared budget
 * bounds two arenas together.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/arena.h"

/* A reused arena (the per-thread query arena) must not keep a large block
 * across statements: q_arena_reset keeps the FIRST block, whatever order
 * the chain is in. */
static void test_reset_keeps_the_first_block_only(void **state) {
    (void)state;
    q_arena a;
    q_arena_init(&a, 0);
    assert_non_null(q_arena_alloc(&a, 64 * 1024));
    q_arena_reset(&a);
    size_t kept = a.reserved_bytes;
    assert_true(kept >= 64 * 1024 && kept < 128 * 1024);
    assert_non_null(q_arena_alloc(&a, 100));
    /* large: its own block, linked behind the head (the head has room left) */
    char *big = q_arena_alloc(&a, 72u * 1000 * 1000);
    assert_non_null(big);
    memset(big, 1, 4096);
    assert_non_null(q_arena_alloc(&a, 100)); /* still served from the first block */
    q_arena_reset(&a);
    assert_int_equal(a.reserved_bytes, kept);
    assert_int_equal(a.used_bytes, 0);
    /* and the arena still works after the reset */
    for (int i = 0; i < 1000; i++) assert_non_null(q_arena_alloc(&a, 1000));
    q_arena_reset(&a);
    assert_int_equal(a.reserved_bytes, kept);
    q_arena_free(&a);
    assert_int_equal(a.reserved_bytes, 0);
}

/* The limit counts bytes handed out (deterministic), not blocks. */
static void test_limit_counts_bytes_handed_out(void **state) {
    (void)state;
    q_arena a;
    q_arena_init(&a, 4096);
    assert_non_null(q_arena_alloc(&a, 4000));
    assert_null(q_arena_alloc(&a, 200));
    assert_false(a.malloc_failed); /* a limit, not a malloc failure */
    assert_non_null(q_arena_alloc(&a, 16));
    q_arena_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reset_keeps_the_first_block_only),
        cmocka_unit_test(test_limit_counts_bytes_handed_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
