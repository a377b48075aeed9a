/*
 * keys.h -- byte-level helpers of the storage layout: big-endian integers,
 * varints, a growable byte buffer, and the key builders of every column
 * family.  The layout itself is described in keys.c's top comment.
 *
 * Everything here is internal to storage/ (not part of graph.h).
 * Thread: pure functions; a qbuf belongs to one thread.
 */
#ifndef QUIVER_STORAGE_KEYS_H
#define QUIVER_STORAGE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../common/qassert.h"

/* Column families, in the fixed order used by the digest and at open. */
enum {
    QS_CF_DEFAULT = 0,
    QS_CF_SCHEMA,
    QS_CF_NODES,
    QS_CF_EDGES,
    QS_CF_ADJ_OUT,
    QS_CF_ADJ_IN,
    QS_CF_LABEL_INDEX,
    QS_CF_PROP_INDEX,
    QS_CF_COUNT
};
extern const char *const qs_cf_names[QS_CF_COUNT];

/* Longest key we build from fixed fields (adjacency: 4+8+4+8+8). */
#define QS_KEY_FIXED_SIZE_MAX_BYTES 32

/* ---- big-endian ---- */
static inline void qk_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void qk_put_u64(uint8_t *p, uint64_t v) {
    qk_put_u32(p, (uint32_t)(v >> 32)); qk_put_u32(p + 4, (uint32_t)v);
}
static inline uint32_t qk_get_u32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline uint64_t qk_get_u64(const uint8_t *p) {
    return ((uint64_t)qk_get_u32(p) << 32) | qk_get_u32(p + 4);
}

/* ---- growable buffer (malloc; fail-stop on OOM like an I/O error) ---- */
typedef struct qbuf {
    uint8_t *p;
    size_t len;
    size_t cap;
} qbuf;

void qbuf_reserve(qbuf *b, size_t extra_bytes);
void qbuf_free(qbuf *b);
static inline void qbuf_reset(qbuf *b) { b->len = 0; }
static inline void qbuf_add(qbuf *b, const void *p, size_t n) {
    if (b->cap - b->len < n) qbuf_reserve(b, n);
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}
static inline void qbuf_u8(qbuf *b, uint8_t v) { qbuf_add(b, &v, 1); }
static inline void qbuf_u32(qbuf *b, uint32_t v) { uint8_t t[4]; qk_put_u32(t, v); qbuf_add(b, t, 4); }
static inline void qbuf_u64(qbuf *b, uint64_t v) { uint8_t t[8]; qk_put_u64(t, v); qbuf_add(b, t, 8); }
static inline void qbuf_varint(qbuf *b, uint64_t v) {
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) { t[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    t[n++] = (uint8_t)v;
    qbuf_add(b, t, n);
}
/* Read a varint; returns bytes used, 0 when truncated or overlong. */
static inline size_t qk_varint(const uint8_t *p, size_t n, uint64_t *out) {
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) { *out = v; return i + 1; }
    }
    return 0;
}

/* ---- default family (fixed names; all ours start with "q/") ---- */
#define QK_FORMAT "q/format"
#define QK_UUID "q/uuid"
#define QK_APPLIED "q/applied"
#define QK_NEXT_GRAPH "q/next_graph"
#define QK_GNAME "q/gname/"  /* + graph name -> u32 graph id */
#define QK_GCOUNT "q/c"      /* + graph u32 + field [+ label u32] -> u64 */
#define QK_META_RESERVED "q/"

enum { QK_CNT_NEXT_NODE = 'N', QK_CNT_NEXT_EDGE = 'E', QK_CNT_NODES = 'n', QK_CNT_EDGES = 'e', QK_CNT_LABEL = 'l' };

/* "q/c" graph field [label]: returns key length. */
static inline size_t qk_count(uint8_t *k, uint32_t g, uint8_t field, uint32_t label) {
    memcpy(k, QK_GCOUNT, 3);
    qk_put_u32(k + 3, g);
    k[7] = field;
    if (field == QK_CNT_LABEL) { qk_put_u32(k + 8, label); return 12; }
    return 8;
}

/* ---- schema family ---- */
enum { QK_SCH_NAME = 'k', QK_SCH_ID = 'n', QK_SCH_INDEX = 'x' };

static inline size_t qk_schema_name(uint8_t *k, uint32_t g, uint8_t kind, uint32_t id) {
    qk_put_u32(k, g); k[4] = QK_SCH_NAME; k[5] = kind; qk_put_u32(k + 6, id); return 10;
}
static inline size_t qk_schema_index(uint8_t *k, uint32_t g, uint32_t label, uint32_t key) {
    qk_put_u32(k, g); k[4] = QK_SCH_INDEX; qk_put_u32(k + 5, label); qk_put_u32(k + 9, key); return 13;
}

/* ---- entity and index families ---- */
static inline size_t qk_entity(uint8_t *k, uint32_t g, uint64_t id) {
    qk_put_u32(k, g); qk_put_u64(k + 4, id); return 12;
}
/* adj_out: g, src, type, dst, edge; adj_in: g, dst, type, src, edge. */
static inline size_t qk_adj(uint8_t *k, uint32_t g, uint64_t node, uint32_t type, uint64_t other, uint64_t edge) {
    qk_put_u32(k, g); qk_put_u64(k + 4, node); qk_put_u32(k + 12, type); qk_put_u64(k + 16, other);
    qk_put_u64(k + 24, edge); return 32;
}
static inline size_t qk_label(uint8_t *k, uint32_t g, uint32_t label, uint64_t node) {
    qk_put_u32(k, g); qk_put_u32(k + 4, label); qk_put_u64(k + 8, node); return 16;
}
/* prop_index prefix: g, label, key (then value encoding, then node id). */
static inline size_t qk_prop_prefix(uint8_t *k, uint32_t g, uint32_t label, uint32_t key) {
    qk_put_u32(k, g); qk_put_u32(k + 4, label); qk_put_u32(k + 8, key); return 12;
}

/* Smallest byte string greater than every string starting with k[0..n):
 * increments the last byte that is not 0xff and truncates after it.
 * Returns the new length, 0 when no such string exists (all 0xff). */
size_t qk_prefix_successor(uint8_t *k, size_t n);

#endif
