/*
 * arena.c -- region allocator; see arena.h for the design.
 *
 * Blocks grow geometrically from 4 KiB to 1 MiB; an allocation larger than a
 * block gets a block of its own.  Alignment is 16 bytes, enough for any C
 * scalar and for long double.
 */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#include "qassert.h"

#define ARENA_ALIGN_BYTES 16u
#define ARENA_BLOCK_MIN_BYTES (4u * 1024)
#define ARENA_BLOCK_MAX_BYTES (1024u * 1024)

struct q_arena_block {
    q_arena_block *next;
    size_t size_bytes; /* usable bytes after the header */
    size_t used_bytes;
    /* data follows, aligned */
};

static size_t align_up(size_t n) {
    return (n + (ARENA_ALIGN_BYTES - 1)) & ~(size_t)(ARENA_ALIGN_BYTES - 1);
}

static unsigned char *block_data(q_arena_block *b) {
    return (unsigned char *)b + align_up(sizeof(q_arena_block));
}

void q_arena_init(q_arena *a, size_t size_max_bytes) {
    QUIVER_ASSERT(a != NULL);
    a->head = NULL;
    a->first = NULL;
    a->used_bytes = 0;
    a->reserved_bytes = 0;
    a->size_max_bytes = size_max_bytes;
    a->budget = NULL;
    a->malloc_failed = false;
}

void *q_arena_alloc(q_arena *a, size_t size_bytes) {
    QUIVER_ASSERT(a != NULL);
    size_t need = align_up(size_bytes == 0 ? 1 : size_bytes);
    if (need < size_bytes) return NULL; /* overflow */
    if (a->size_max_bytes != 0 && a->used_bytes + need > a->size_max_bytes) return NULL;
    q_arena_budget *bu = a->budget;
    if (bu != NULL && bu->size_max_bytes != 0 && bu->used_bytes + need > bu->size_max_bytes) return NULL;
    q_arena_block *b = a->head;
    if (b == NULL || b->size_bytes - b->used_bytes < need) {
        size_t next = b == NULL ? ARENA_BLOCK_MIN_BYTES : b->size_bytes * 2;
        if (next > ARENA_BLOCK_MAX_BYTES) next = ARENA_BLOCK_MAX_BYTES;
        if (next < need) next = need;
        size_t total = align_up(sizeof(q_arena_block)) + next;
        q_arena_block *nb = malloc(total);
        if (nb == NULL) {
            a->malloc_failed = true;
            return NULL;
        }
        nb->size_bytes = next;
        nb->used_bytes = 0;
        /* A block made for one large allocation goes behind the head so the
         * head's remaining space is not wasted. */
        if (b != NULL && next == need && b->size_bytes - b->used_bytes > 256) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
        }
        if (a->first == NULL) a->first = nb;
        a->reserved_bytes += total;
        b = nb;
    }
    void *p = block_data(b) + b->used_bytes;
    b->used_bytes += need;
    QUIVER_ASSERT(b->used_bytes <= b->size_bytes);
    a->used_bytes += need;
    if (bu != NULL) bu->used_bytes += need;
    return p;
}

void *q_arena_calloc(q_arena *a, size_t count, size_t size_bytes) {
    if (size_bytes != 0 && count > SIZE_MAX / size_bytes) return NULL;
    void *p = q_arena_alloc(a, count * size_bytes);
    if (p != NULL) memset(p, 0, count * size_bytes);
    return p;
}

char *q_arena_strndup(q_arena *a, const char *s, size_t len) {
    if (len == SIZE_MAX) return NULL;
    char *p = q_arena_alloc(a, len + 1);
    if (p == NULL) return NULL;
    if (len > 0) memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *q_arena_realloc(q_arena *a, void *old, size_t old_size_bytes, size_t new_size_bytes) {
    if (old != NULL && new_size_bytes <= old_size_bytes) return old;
    void *p = q_arena_alloc(a, new_size_bytes);
    if (p == NULL) return NULL;
    if (old != NULL && old_size_bytes > 0) memcpy(p, old, old_size_bytes);
    return p;
}

void q_arena_reset(q_arena *a) {
    QUIVER_ASSERT(a != NULL);
    a->malloc_failed = false;
    q_arena_block *b = a->head;
    if (b == NULL) return;
    /* Keep the first block made (the small one reused statement after
     * statement).  Not simply the last in the chain: a block made for one
     * large allocation is linked behind the head, so after a big statement
     * the chain's tail can be that large block, and keeping it would pin
     * it in every reused arena (a reader thread held 72 MB after one
     * 3M-row query). */
    q_arena_block *keep = a->first;
    QUIVER_ASSERT(keep != NULL);
    while (b != NULL) {
        q_arena_block *n = b->next;
        if (b != keep) free(b);
        b = n;
    }
    keep->next = NULL;
    keep->used_bytes = 0;
    a->head = keep;
    a->used_bytes = 0;
    a->malloc_failed = false;
    a->reserved_bytes = align_up(sizeof(q_arena_block)) + keep->size_bytes;
}

void q_arena_free(q_arena *a) {
    QUIVER_ASSERT(a != NULL);
    q_arena_block *b = a->head;
    while (b != NULL) {
        q_arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->first = NULL;
    a->used_bytes = 0;
    a->reserved_bytes = 0;
    a->malloc_failed = false;
}
