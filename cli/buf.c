/*
 * buf.c -- growable byte buffer (see buf.h).  Doubling growth; aborts on
 * overflow of the ceiling or out-of-memory.
 */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/qassert.h"

void cli_buf_reserve(cli_buf *b, size_t extra_bytes) {
    QUIVER_ASSERT(b != NULL);
    QUIVER_ASSERT(b->len <= b->cap);
    if (extra_bytes > CLI_BUF_SIZE_MAX_BYTES || b->len + extra_bytes + 1 > CLI_BUF_SIZE_MAX_BYTES)
        QUIVER_FATAL("cli buffer would exceed %llu bytes", (unsigned long long)CLI_BUF_SIZE_MAX_BYTES);
    size_t need = b->len + extra_bytes + 1;
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) QUIVER_FATAL("out of memory growing a buffer to %zu bytes", cap);
    b->data = p;
    b->cap = cap;
}

void cli_buf_append(cli_buf *b, const void *p, size_t n) {
    cli_buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cli_buf_puts(cli_buf *b, const char *s) { cli_buf_append(b, s, strlen(s)); }

void cli_buf_putc(cli_buf *b, char c) {
    cli_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void cli_buf_printf(cli_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    QUIVER_ASSERT(n >= 0);
    if ((size_t)n < sizeof small) {
        cli_buf_append(b, small, (size_t)n);
        return;
    }
    cli_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    int m = vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    QUIVER_ASSERT(m == n);
    b->len += (size_t)n;
}

void cli_buf_clear(cli_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void cli_buf_free(cli_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *cli_buf_take(cli_buf *b) {
    if (b->data == NULL) cli_buf_reserve(b, 0), b->data[0] = '\0';
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
