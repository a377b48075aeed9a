/*
 * qassert.h -- assertions that stay on in release builds.
 *
 * Quiver is fail-stop: an invariant that does not hold means the process is in
 * a state nobody reasoned about, and continuing could write that state to disk
 * or acknowledge it to a client.  So assertions are never compiled out
 * (unlike assert(3) under NDEBUG).  They are cheap: one predictable branch.
 *
 * QUIVER_ASSERT(cond)       -- abort with file:line and the condition text.
 * QUIVER_FATAL(fmt, ...)    -- abort with a message (I/O errors in raft or
 *                              RocksDB, impossible states).
 *
 * Thread: any.  Both write to stderr and call abort(); they never return.
 */
#ifndef QUIVER_QASSERT_H
#define QUIVER_QASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define QUIVER_ASSERT(cond)                                                    \
    do {                                                                       \
        if (__builtin_expect(!(cond), 0)) {                                    \
            fprintf(stderr, "quiver: assertion failed at %s:%d: %s\n",         \
                    __FILE__, __LINE__, #cond);                                \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define QUIVER_FATAL(...)                                                      \
    do {                                                                       \
        fprintf(stderr, "quiver: fatal at %s:%d: ", __FILE__, __LINE__);       \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        abort();                                                               \
    } while (0)

#define QUIVER_UNUSED(x) ((void)(x))

#endif
