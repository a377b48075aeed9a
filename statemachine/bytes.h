/*
 * bytes.h -- internal to statemachine/: big-endian writer and bounds-checked
 * reader used by the entry format (command.c) and the result codec
 * (result_codec.c).
 *
 * The writer appends to a malloc'd buffer that grows geometrically up to a
 * hard cap; past the cap it sets a sticky error instead of growing, so an
 * encoder can write unconditionally and check once at the end.  The reader
 * never reads past its end: every take checks the bytes left and sets a
 * sticky error, returning zeroes, so a decoder can read a whole record and
 * check once (after each length it still checks, because lengths drive
 * allocations).
 *
 * Thread: a writer or reader belongs to one thread.
 */
#ifndef QUIVER_STATEMACHINE_BYTES_H
#define QUIVER_STATEMACHINE_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct sm_writer {
    uint8_t *buf;
    size_t len;
    size_t cap;
    size_t size_max_bytes;
    int err; /* 0, or the first sm_codec_status error */
} sm_writer;

typedef struct sm_reader {
    const uint8_t *p;
    size_t left;
    bool err; /* a take went past the end */
} sm_reader;

/* Error codes mirror sm_codec_status (command.h). */
#define SM_BYTES_ERR_LIMIT (-2)
#define SM_BYTES_ERR_NOMEM (-5)

static inline void sm_writer_init(sm_writer *w, size_t initial_cap, size_t size_max_bytes) {
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->size_max_bytes = size_max_bytes;
    w->err = 0;
    if (initial_cap > size_max_bytes) initial_cap = size_max_bytes;
    if (initial_cap > 0) {
        w->buf = malloc(initial_cap);
        if (w->buf == NULL) w->err = SM_BYTES_ERR_NOMEM;
        else w->cap = initial_cap;
    }
}

static inline bool sm_writer_reserve(sm_writer *w, size_t n) {
    if (w->err) return false;
    if (n > w->size_max_bytes || w->len > w->size_max_bytes - n) {
        w->err = SM_BYTES_ERR_LIMIT;
        return false;
    }
    if (w->len + n <= w->cap) return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n) cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    if (cap > w->size_max_bytes) cap = w->size_max_bytes;
    uint8_t *nb = realloc(w->buf, cap);
    if (nb == NULL) {
        w->err = SM_BYTES_ERR_NOMEM;
        return false;
    }
    w->buf = nb;
    w->cap = cap;
    return true;
}

static inline void sm_put_bytes(sm_writer *w, const void *p, size_t n) {
    if (!sm_writer_reserve(w, n)) return;
    if (n) memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static inline void sm_put_u8(sm_writer *w, uint8_t v) { sm_put_bytes(w, &v, 1); }

static inline void sm_put_u32(sm_writer *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    sm_put_bytes(w, b, 4);
}

static inline void sm_put_u64(sm_writer *w, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (56 - 8 * i));
    sm_put_bytes(w, b, 8);
}

static inline void sm_put_str(sm_writer *w, const char *p, uint32_t len) {
    sm_put_u32(w, len);
    sm_put_bytes(w, p, len);
}

static inline void sm_reader_init(sm_reader *r, const void *p, size_t len) {
    r->p = p;
    r->left = len;
    r->err = false;
}

/* Pointer to the next n bytes (inside the buffer), or NULL past the end. */
static inline const uint8_t *sm_take(sm_reader *r, size_t n) {
    if (r->err || n > r->left) {
        r->err = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static inline uint8_t sm_get_u8(sm_reader *r) {
    const uint8_t *p = sm_take(r, 1);
    return p ? p[0] : 0;
}

static inline uint32_t sm_get_u32(sm_reader *r) {
    const uint8_t *p = sm_take(r, 4);
    if (!p) return 0;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t sm_get_u64(sm_reader *r) {
    const uint8_t *p = sm_take(r, 8);
    if (!p) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

/* Big-endian helpers for fixed buffers (keys). */
static inline void sm_store_u64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (56 - 8 * i));
}
static inline void sm_store_u32(uint8_t *b, uint32_t v) {
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (24 - 8 * i));
}
static inline uint64_t sm_load_u64(const uint8_t *b) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | b[i];
    return v;
}

#endif
