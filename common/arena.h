/*
 * arena.h -- region allocator.
 *
 * A query, a decoded command and a result set each live in one arena and are
 * freed together: no per-value free, no leaks on error paths, and allocation is
 * a pointer bump.  The trade-off is that memory is returned only when the whole
 * arena is reset or freed, so a long query holds what it ever allocated; the
 * arena therefore has a byte limit (size_max_bytes) and allocation fails
 * cleanly (NULL) past it, which callers turn into a "query uses too much
 * memory" error instead of an OOM kill.
 *
 * Thread: an arena belongs to one thread at a time; no locking.
 */
#ifndef QUIVER_ARENA_H
#define QUIVER_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct q_arena_block q_arena_block;

typedef struct q_arena {
    q_arena_block *head;      /* current block; older blocks chained behind */
    size_t used_bytes;        /* total handed out (for limits and stats) */
    size_t reserved_bytes;    /* total malloc'd */
    size_t size_max_bytes;    /* 0: no limit beyond malloc */
} q_arena;

/* Initialise an empty arena.  size_max_bytes 0 means unlimited.  Never fails
 * (the first block is allocated lazily). */
void q_arena_init(q_arena *a, size_t size_max_bytes);

/* Allocate size_bytes aligned to 16.  Returns NULL when the arena's limit
 * would be exceeded or malloc fails; the arena stays usable.  Memory is owned
 * by the arena.  size_bytes 0 returns a valid unique pointer. */
void *q_arena_alloc(q_arena *a, size_t size_bytes);

/* As q_arena_alloc, zero-filled. */
void *q_arena_calloc(q_arena *a, size_t count, size_t size_bytes);

/* Copy len bytes and append a NUL; returns NULL as q_arena_alloc. */
char *q_arena_strndup(q_arena *a, const char *s, size_t len);

/* Grow an allocation made from this arena (copying; the old memory is not
 * reclaimed).  old may be NULL. Returns NULL on limit/malloc failure. */
void *q_arena_realloc(q_arena *a, void *old, size_t old_size_bytes, size_t new_size_bytes);

/* Free every block but keep the first for reuse; pointers become invalid. */
void q_arena_reset(q_arena *a);

/* Free everything.  The arena may be re-initialised afterwards. */
void q_arena_free(q_arena *a);

#endif
