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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct q_arena_block q_arena_block;

/* A byte budget shared by several arenas (a query's work arena and its
 * result arena): each allocation counts against it as well as against the
 * arena's own limit.  Counts bytes handed out, like used_bytes, so where it
 * trips depends only on the allocations made, never on malloc's behaviour
 * or the machine: the same statement trips it at the same point on every
 * replica. */
typedef struct q_arena_budget {
    size_t used_bytes;
    size_t size_max_bytes;    /* 0: no limit */
} q_arena_budget;

typedef struct q_arena {
    q_arena_block *head;      /* current block; older blocks chained behind */
    q_arena_block *first;     /* the first block ever made: the one q_arena_reset keeps */
    size_t used_bytes;        /* total handed out (for limits and stats) */
    size_t reserved_bytes;    /* total malloc'd */
    size_t size_max_bytes;    /* 0: no limit beyond malloc */
    q_arena_budget *budget;   /* NULL, or a shared budget (not owned) */
    /* Set when an allocation failed because malloc did (not because of a
     * limit); stays set until q_arena_init or q_arena_free.  Limits are
     * deterministic and malloc failures are not: the state machine must
     * fail-stop on this rather than reply an error other replicas would
     * not have given. */
    bool malloc_failed;
} q_arena;

/* Initialise an empty arena.  size_max_bytes 0 means unlimited.  Never fails
 * (the first block is allocated lazily). */
void q_arena_init(q_arena *a, size_t size_max_bytes);

/* Allocate size_bytes aligned to 16.  Returns NULL when the arena's limit
 * or its budget's would be exceeded, or when malloc fails (then also sets
 * a->malloc_failed); the arena stays usable.  Memory is owned by the arena.
 * size_bytes 0 returns a valid unique pointer. */
void *q_arena_alloc(q_arena *a, size_t size_bytes);

/* As q_arena_alloc, zero-filled. */
void *q_arena_calloc(q_arena *a, size_t count, size_t size_bytes);

/* Copy len bytes and append a NUL; returns NULL as q_arena_alloc. */
char *q_arena_strndup(q_arena *a, const char *s, size_t len);

/* Grow an allocation made from this arena (copying; the old memory is not
 * reclaimed).  old may be NULL. Returns NULL on limit/malloc failure. */
void *q_arena_realloc(q_arena *a, void *old, size_t old_size_bytes, size_t new_size_bytes);

/* Free every block but keep the first for reuse; pointers become invalid.
 * Clears malloc_failed; leaves the limit and the budget pointer (a budget's
 * count is not given back: detach it before reusing the arena). */
void q_arena_reset(q_arena *a);

/* Free everything.  The arena may be re-initialised afterwards. */
void q_arena_free(q_arena *a);

#endif
