/*
 * guard.c -- the guards that keep one statement from crashing, poisoning or
 * stalling a node (engine.h, "Guards"): the work budget, the deadline of a
 * read, the stack budget, and the shape limits of values.
 *
 * Work budget and deadline share one counter (qctx.work, engine.h "WORK
 * UNITS").  The fast path, inlined in engine.h, is an add and a compare
 * against work_check_at; every QUERY_WORK_CHECK_INTERVAL units (or exactly
 * at the budget) the slow path here adds the bytes the query's arenas
 * handed out, compares with the budget, and reads the clock for a deadline.
 * Only reads have a deadline: a write must stop at the same point on every
 * replica, so it is stopped by units alone.  Both the counter and the
 * arenas' byte counts are functions of the statement and the state, never
 * of the machine, so the budget trips at the same check on every replica.
 *
 * Stack budget: recursion depth is bounded by the statement limits, but
 * the depth a given stack allows depends on frame sizes (ASan makes them
 * much bigger) and on the thread.  So a run records how deep the stack may
 * go (stack_floor) and the recursive functions compare their frame address
 * with it (QCTX_STACK_OK).  The floor is QUIVER_QUERY_STACK_BUDGET_BYTES
 * below the run's frame, or less when the thread's stack is smaller (a
 * test's main thread, the loop thread running admission): what remains
 * below the frame minus QUERY_STACK_MARGIN_BYTES (or a quarter of the
 * stack).  The threads that run queries for real are created with
 * QUIVER_QUERY_THREAD_STACK_SIZE_BYTES, so there the full budget applies
 * and the check trips at the same depth on every replica.  A thread's stack
 * bounds come from pthread_getattr_np once per thread (on the main thread
 * glibc reads /proc/self/maps for it: too slow for every statement).
 */
#include <pthread.h>
#include <sys/random.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/qassert.h"
#include "engine.h"

/* Seed of query_name_hash: random per process.  The planner's and the
 * parser's tables only find names (results never depend on their layout),
 * so the seed may differ between replicas; being unknown to clients, it
 * keeps them from choosing names that all collide. */
static uint64_t name_seed;
static pthread_once_t name_seed_once = PTHREAD_ONCE_INIT;

static void name_seed_init(void) {
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s) s = qctx_now_ns() ^ (uint64_t)(uintptr_t)&s;
    name_seed = s | 1;
}

uint64_t query_name_hash(const char *p, size_t len) {
    pthread_once(&name_seed_once, name_seed_init);
    uint64_t h = name_seed;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (size_t k = 0; i + k < len; k++) w |= (uint64_t)(unsigned char)p[i + k] << (8 * k);
    h = (h ^ w ^ ((uint64_t)len << 56)) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 32);
}

uint64_t qctx_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* This thread's stack: lowest usable address and size (0, 0 unknown). */
static _Thread_local bool stack_known;
static _Thread_local uintptr_t stack_low;
static _Thread_local size_t stack_size;

static void stack_bounds(void) {
    if (stack_known) return;
    stack_known = true;
    pthread_attr_t at;
    if (pthread_getattr_np(pthread_self(), &at) != 0) return;
    void *addr = NULL;
    size_t size = 0;
    /* glibc reports the usable stack: its guard pages are excluded */
    if (pthread_attr_getstack(&at, &addr, &size) == 0 && addr != NULL && size > 0) {
        stack_low = (uintptr_t)addr;
        stack_size = size;
    }
    pthread_attr_destroy(&at);
}

uintptr_t query_stack_floor(size_t *budget_bytes) {
    stack_bounds();
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    size_t budget = QUIVER_QUERY_STACK_BUDGET_BYTES;
    if (stack_low != 0 && here > stack_low) {
        size_t margin = QUERY_STACK_MARGIN_BYTES;
        if (margin > stack_size / 4) margin = stack_size / 4;
        size_t avail = (size_t)(here - stack_low);
        avail = avail > margin ? avail - margin : 0;
        if (avail < budget) budget = avail;
    }
    QUIVER_ASSERT(here > budget);
    *budget_bytes = budget;
    return here - budget;
}

void qctx_guard_init(qctx *c, uint64_t work_max, uint64_t timeout_ms, uint64_t start_ns) {
    QUIVER_ASSERT(c != NULL);
    c->stack_floor = query_stack_floor(&c->stack_budget_bytes);
    /* deadline: a timeout too large to add is no timeout */
    c->deadline_ns = 0;
    if (timeout_ms > 0 && timeout_ms <= (UINT64_MAX - start_ns) / 1000000ull)
        c->deadline_ns = start_ns + timeout_ms * 1000000ull;
    /* budget */
    c->work = 0;
    c->work_max = work_max;
    c->work_check_at = UINT64_MAX;
    if (c->work_max != 0 || c->deadline_ns != 0) {
        c->work_check_at = QUERY_WORK_CHECK_INTERVAL;
        if (c->work_max != 0 && c->work_max < c->work_check_at) c->work_check_at = c->work_max + 1;
    }
}

uint64_t qctx_work_total(const qctx *c) {
    uint64_t arena_bytes = c->a->used_bytes + (c->ra != NULL ? c->ra->used_bytes : 0);
    return c->work + arena_bytes / QUERY_WORK_ARENA_BYTES_PER_UNIT;
}

static bool budget_fail(qctx *c) {
    if (c->txn != NULL)
        return qctx_fail(c, QUERY_ERR_LIMIT, "ERR write exceeds its work budget (%llu units; raise --write-work-max)",
                         (unsigned long long)c->work_max);
    return qctx_fail(c, QUERY_ERR_LIMIT, "ERR query exceeds its work budget (%llu units)", (unsigned long long)c->work_max);
}

bool qctx_reserve_slow(qctx *c, uint64_t bytes) {
    if (c->failed) return false;
    if (c->work_max != 0 && qctx_work_total(c) + bytes / QUERY_WORK_ARENA_BYTES_PER_UNIT > c->work_max) return budget_fail(c);
    return true;
}

bool qctx_work_slow(qctx *c) {
    if (c->failed) return false;
    if (c->work_max != 0 && qctx_work_total(c) > c->work_max) return budget_fail(c);
    if (c->deadline_ns != 0 && qctx_now_ns() > c->deadline_ns) return qctx_fail(c, QUERY_ERR_TIMEOUT, "Query timed out");
    uint64_t next = c->work + QUERY_WORK_CHECK_INTERVAL;
    if (next < c->work) next = UINT64_MAX;
    if (c->work_max != 0 && c->work_max >= c->work && c->work_max + 1 < next) next = c->work_max + 1;
    c->work_check_at = next;
    return true;
}

bool qctx_stack_fail(qctx *c) {
    return qctx_fail(c, QUERY_ERR_LIMIT, "ERR query needs more than %zu bytes of stack (too deeply nested)",
                     c->stack_budget_bytes);
}

static bool seal(qctx *c, const qv_value *items, uint32_t count, uint8_t *depth, uint32_t *elements) {
    uint32_t d;
    uint64_t e;
    if (c->failed) return false;
    if (!qv_shape_of(items, count, &d, &e)) {
        if (d > QUIVER_VALUE_DEPTH_MAX)
            return qctx_fail(c, QUERY_ERR_LIMIT, "ERR value nested deeper than %u levels (the limit)",
                             (unsigned)QUIVER_VALUE_DEPTH_MAX);
        return qctx_fail(c, QUERY_ERR_LIMIT, "ERR value with more than %u elements (the limit)",
                         (unsigned)QUIVER_VALUE_ELEMENTS_COUNT_MAX);
    }
    *depth = (uint8_t)d;
    *elements = (uint32_t)e;
    return true;
}

bool qctx_seal_list(qctx *c, qv_list *l) {
    QUIVER_ASSERT(l != NULL);
    return seal(c, l->items, l->count, &l->depth, &l->elements);
}

bool qctx_seal_map(qctx *c, qv_map *m) {
    QUIVER_ASSERT(m != NULL);
    if (m->count > QUIVER_VALUE_MAP_COUNT_MAX)
        return qctx_fail(c, QUERY_ERR_LIMIT, "ERR map with more than %u entries (the limit)", (unsigned)QUIVER_VALUE_MAP_COUNT_MAX);
    return seal(c, m->values, m->count, &m->depth, &m->elements);
}
