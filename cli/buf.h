/*
 * buf.h -- a growable byte buffer for the CLI (query text, rendered tables,
 * formatted values).
 *
 * The CLI builds large texts (an import batch is several megabytes of Cypher)
 * by appending; a buffer doubles its capacity as it grows, so appends are
 * amortised O(1).  Every buffer has a hard ceiling, CLI_BUF_SIZE_MAX_BYTES:
 * growing past it is a bug in the caller's batching (batches are cut well
 * below it), so it aborts rather than returning an error nobody could handle.
 * Out of memory aborts too (a command-line tool has nothing better to do).
 *
 * Memory: the buffer owns data; cli_buf_free releases it.  data is always
 * NUL-terminated after any append (len excludes the NUL), so it can be handed
 * to printf-style functions.
 * Thread: a buffer belongs to one thread.
 */
#ifndef QUIVER_CLI_BUF_H
#define QUIVER_CLI_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "../common/limits.h"

/* Hard ceiling on one buffer.  Buffers hold requests (bounded far below by
 * the import's batch size) and rendered replies: a table of the largest
 * reply a server sends (QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES) with its padding
 * and borders, hence four times that, not the server's request limit. */
#define CLI_BUF_SIZE_MAX_BYTES (4ull * QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES)

typedef struct cli_buf {
    char *data;     /* NULL until the first append */
    size_t len;     /* bytes used, excluding the trailing NUL */
    size_t cap;     /* bytes allocated */
} cli_buf;

#define CLI_BUF_INIT {NULL, 0, 0}

/* Ensure room for extra_bytes more bytes plus the NUL.  Aborts past
 * CLI_BUF_SIZE_MAX_BYTES or on out-of-memory. */
void cli_buf_reserve(cli_buf *b, size_t extra_bytes);

/* Append n bytes (may contain NULs). */
void cli_buf_append(cli_buf *b, const void *p, size_t n);

/* Append a NUL-terminated string. */
void cli_buf_puts(cli_buf *b, const char *s);

/* Append one byte. */
void cli_buf_putc(cli_buf *b, char c);

/* Append printf-formatted text. */
void cli_buf_printf(cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Forget the contents, keep the allocation. */
void cli_buf_clear(cli_buf *b);

/* Release the allocation; the buffer is empty and reusable afterwards. */
void cli_buf_free(cli_buf *b);

/* Steal the contents: returns data (malloc'ed, NUL-terminated, never NULL)
 * and leaves the buffer empty.  The caller frees the result. */
char *cli_buf_take(cli_buf *b);

#endif
