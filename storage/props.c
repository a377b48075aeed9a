/*
 * props.c -- how property values and records are stored.
 *
 * Tagged value encoding (record values; little work to skip a value, so one
 * property can be read without decoding the others):
 *
 *   0x00                          null (only as a list item: a null property is an absent one)
 *   0x01 / 0x02                   false / true
 *   0x03 zigzag-varint            integer
 *   0x04 8 bytes                  double, IEEE-754 bits big-endian
 *   0x05 varint len, bytes        string
 *   0x06 varint raw_len, varint compressed_len, LZ4 block
 *                                 string of at least QUIVER_PROPERTY_LZ4_THRESHOLD_BYTES
 *                                 whose LZ4 block (lz4.h LZ4_compress_default) is smaller
 *   0x07 varint count, varint body_len, items
 *                                 list (body_len lets a reader skip it in O(1))
 *
 * Records:
 *   node: varint label_count, label ids as varint deltas (ascending),
 *         property section
 *   edge: varint type id, varint src id, varint dst id, property section
 *   property section: varint count, then per property a varint key-id delta
 *         (ascending ids) and a tagged value.
 * Varints are LEB128.  Small ids and ints take one byte, so a typical node
 * with a label and a few short properties is a few dozen bytes; RocksDB's
 * block-level LZ4 then compresses across records.  Compressing large strings
 * ourselves as well keeps big records small in the memtable and the
 * WriteBatch, where block compression does not reach.
 *
 * Order-preserving index encoding (prop_index keys), compared bytewise:
 *   0x10 0x00|0x01                booleans: false < true
 *   0x20 D(8) disc(2)             numbers, integers and doubles in ONE space:
 *        D is the nearest double to the value, with its bits mapped so that
 *        unsigned byte order is numeric order (negative: all bits flipped;
 *        positive: sign bit set; -0.0 written as +0.0).  disc is the exact
 *        integer difference value - D (non-zero only for integers beyond
 *        2^53, |disc| <= 1024) plus 0x8000, big-endian.  So 1 and 1.0 have
 *        the same bytes (`n.x = 1` finds 1.0) and ranges mix ints and doubles.
 *   0x21                          NaN (after every number, outside number ranges)
 *   0x30 escaped bytes 0x00 0x01  strings bytewise: 0x00 in the string is
 *        written 0x00 0xff, and the terminator 0x00 0x01 sorts below any
 *        continuation, so a prefix sorts first and the encoding is prefix-free.
 * Lists, maps and null are not indexed.
 */
#include "props.h"

#include <lz4.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/limits.h"
#include "graph.h"

enum { T_NULL = 0, T_FALSE = 1, T_TRUE = 2, T_INT = 3, T_DOUBLE = 4, T_STR = 5, T_LZ4 = 6, T_LIST = 7 };

static inline uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static int encode_rec(qbuf *b, qv_value v, int depth) {
    switch (v.type) {
    case QV_NULL:
        if (depth == 0) return QS_INVALID;
        qbuf_u8(b, T_NULL);
        return QS_OK;
    case QV_BOOL:
        qbuf_u8(b, v.u.b ? T_TRUE : T_FALSE);
        return QS_OK;
    case QV_INT:
        qbuf_u8(b, T_INT);
        qbuf_varint(b, zigzag(v.u.i));
        return QS_OK;
    case QV_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v.u.d, 8);
        qbuf_u8(b, T_DOUBLE);
        qbuf_u64(b, bits);
        return QS_OK;
    }
    case QV_STRING: {
        uint32_t len = v.u.s.len;
        if (len > QUIVER_STRING_SIZE_MAX_BYTES) return QS_LIMIT;
        if (len >= QUIVER_PROPERTY_LZ4_THRESHOLD_BYTES) {
            int bound = LZ4_compressBound((int)len);
            size_t start = b->len;
            qbuf_reserve(b, 1 + 10 + 10 + (size_t)bound);
            /* compress into the spare capacity after a worst-case header */
            uint8_t *dst = b->p + start + 21;
            int clen = LZ4_compress_default(v.u.s.ptr, (char *)dst, (int)len, bound);
            if (clen > 0 && (size_t)clen + 12 < len) {
                uint8_t hdr[21];
                size_t h = 0;
                hdr[h++] = T_LZ4;
                uint64_t x = len;
                while (x >= 0x80) { hdr[h++] = (uint8_t)(x | 0x80); x >>= 7; }
                hdr[h++] = (uint8_t)x;
                x = (uint64_t)clen;
                while (x >= 0x80) { hdr[h++] = (uint8_t)(x | 0x80); x >>= 7; }
                hdr[h++] = (uint8_t)x;
                memmove(b->p + start + h, dst, (size_t)clen);
                memcpy(b->p + start, hdr, h);
                b->len = start + h + (size_t)clen;
                return QS_OK;
            }
        }
        qbuf_u8(b, T_STR);
        qbuf_varint(b, len);
        qbuf_add(b, v.u.s.ptr, len);
        return QS_OK;
    }
    case QV_LIST: {
        if (depth + 1 > QUIVER_VALUE_DEPTH_MAX) return QS_LIMIT;
        const qv_list *l = v.u.list;
        uint32_t count = l ? l->count : 0;
        if (count > QUIVER_LIST_COUNT_MAX) return QS_LIMIT;
        /* Encode the body first, then insert the header in front of it. */
        size_t start = b->len;
        for (uint32_t i = 0; i < count; i++) {
            int rc = encode_rec(b, l->items[i], depth + 1);
            if (rc != QS_OK) return rc;
        }
        size_t body = b->len - start;
        uint8_t hdr[21];
        size_t h = 0;
        hdr[h++] = T_LIST;
        uint64_t x = count;
        while (x >= 0x80) { hdr[h++] = (uint8_t)(x | 0x80); x >>= 7; }
        hdr[h++] = (uint8_t)x;
        x = body;
        while (x >= 0x80) { hdr[h++] = (uint8_t)(x | 0x80); x >>= 7; }
        hdr[h++] = (uint8_t)x;
        qbuf_reserve(b, h);
        memmove(b->p + start + h, b->p + start, body);
        memcpy(b->p + start, hdr, h);
        b->len += h;
        return QS_OK;
    }
    default:
        return QS_INVALID; /* map, node, relationship, path */
    }
}

int qp_encode_value(qbuf *b, qv_value v, int depth) {
    size_t start = b->len;
    int rc = encode_rec(b, v, depth);
    if (rc != QS_OK) b->len = start;
    return rc;
}

size_t qp_value_size(const uint8_t *p, size_t n) {
    if (n < 1) return 0;
    uint64_t a, c;
    size_t u, u2;
    switch (p[0]) {
    case T_NULL: case T_FALSE: case T_TRUE:
        return 1;
    case T_INT:
        u = qk_varint(p + 1, n - 1, &a);
        return u ? 1 + u : 0;
    case T_DOUBLE:
        return n >= 9 ? 9 : 0;
    case T_STR:
        u = qk_varint(p + 1, n - 1, &a);
        if (!u || a > n - 1 - u) return 0;
        return 1 + u + (size_t)a;
    case T_LZ4:
    case T_LIST:
        u = qk_varint(p + 1, n - 1, &a);
        if (!u) return 0;
        u2 = qk_varint(p + 1 + u, n - 1 - u, &c);
        if (!u2 || c > n - 1 - u - u2) return 0;
        return 1 + u + u2 + (size_t)c;
    default:
        return 0;
    }
}

static int decode_rec(const uint8_t *p, size_t n, q_arena *a, qv_value *out, int depth) {
    if (n < 1 || depth > QUIVER_VALUE_DEPTH_MAX) return QS_CORRUPT;
    uint64_t x, c;
    size_t u, u2;
    switch (p[0]) {
    case T_NULL: *out = qv_null(); return QS_OK;
    case T_FALSE: *out = qv_bool(false); return QS_OK;
    case T_TRUE: *out = qv_bool(true); return QS_OK;
    case T_INT:
        if (!qk_varint(p + 1, n - 1, &x)) return QS_CORRUPT;
        *out = qv_int(unzigzag(x));
        return QS_OK;
    case T_DOUBLE: {
        if (n < 9) return QS_CORRUPT;
        uint64_t bits = qk_get_u64(p + 1);
        double d;
        memcpy(&d, &bits, 8);
        *out = qv_double(d);
        return QS_OK;
    }
    case T_STR: {
        u = qk_varint(p + 1, n - 1, &x);
        if (!u || x > n - 1 - u) return QS_CORRUPT;
        char *s = q_arena_strndup(a, (const char *)p + 1 + u, (size_t)x);
        if (!s) return QS_NOMEM;
        *out = qv_string(s, (uint32_t)x);
        return QS_OK;
    }
    case T_LZ4: {
        u = qk_varint(p + 1, n - 1, &x);
        if (!u || x > QUIVER_STRING_SIZE_MAX_BYTES) return QS_CORRUPT;
        u2 = qk_varint(p + 1 + u, n - 1 - u, &c);
        if (!u2 || c > n - 1 - u - u2 || c > INT32_MAX) return QS_CORRUPT;
        char *s = q_arena_alloc(a, (size_t)x + 1);
        if (!s) return QS_NOMEM;
        int got = LZ4_decompress_safe((const char *)p + 1 + u + u2, s, (int)c, (int)x);
        if (got < 0 || (uint64_t)got != x) return QS_CORRUPT;
        s[x] = 0;
        *out = qv_string(s, (uint32_t)x);
        return QS_OK;
    }
    case T_LIST: {
        u = qk_varint(p + 1, n - 1, &x);
        if (!u || x > QUIVER_LIST_COUNT_MAX) return QS_CORRUPT;
        u2 = qk_varint(p + 1 + u, n - 1 - u, &c);
        if (!u2 || c > n - 1 - u - u2 || x > c) return QS_CORRUPT;
        qv_list *l = q_arena_alloc(a, sizeof *l);
        if (!l) return QS_NOMEM;
        l->count = (uint32_t)x;
        l->items = q_arena_calloc(a, x ? (size_t)x : 1, sizeof(qv_value));
        if (!l->items) return QS_NOMEM;
        const uint8_t *q = p + 1 + u + u2;
        size_t left = (size_t)c;
        for (uint32_t i = 0; i < x; i++) {
            size_t sz = qp_value_size(q, left);
            if (!sz) return QS_CORRUPT;
            int rc = decode_rec(q, sz, a, &l->items[i], depth + 1);
            if (rc != QS_OK) return rc;
            q += sz;
            left -= sz;
        }
        if (left != 0) return QS_CORRUPT;
        /* depth and element count for the query engine (value.h); we never
         * store a value past the limits, so one that is is corrupt */
        uint32_t shape_depth;
        uint64_t shape_elements;
        if (!qv_shape_of(l->items, l->count, &shape_depth, &shape_elements)) return QS_CORRUPT;
        l->depth = (uint8_t)shape_depth;
        l->elements = (uint32_t)shape_elements;
        out->type = QV_LIST;
        out->u.list = l;
        return QS_OK;
    }
    default:
        return QS_CORRUPT;
    }
}

int qp_decode_value(const uint8_t *p, size_t n, q_arena *a, qv_value *out) {
    return decode_rec(p, n, a, out, 0);
}

static void props_emit(qbuf *b, const qp_raw *props, uint32_t count) {
    qbuf_varint(b, count);
    uint32_t prev = 0;
    for (uint32_t i = 0; i < count; i++) {
        QUIVER_ASSERT(i == 0 || props[i].key_id > prev);
        qbuf_varint(b, i == 0 ? props[i].key_id : props[i].key_id - prev);
        prev = props[i].key_id;
        qbuf_add(b, props[i].p, props[i].len);
    }
}

void qp_node_encode(qbuf *b, const uint32_t *labels, uint32_t label_count, const qp_raw *props, uint32_t prop_count) {
    QUIVER_ASSERT(label_count <= QUIVER_LABELS_PER_NODE_COUNT_MAX);
    qbuf_varint(b, label_count);
    uint32_t prev = 0;
    for (uint32_t i = 0; i < label_count; i++) {
        QUIVER_ASSERT(i == 0 || labels[i] > prev);
        qbuf_varint(b, i == 0 ? labels[i] : labels[i] - prev);
        prev = labels[i];
    }
    props_emit(b, props, prop_count);
}

void qp_edge_encode(qbuf *b, uint32_t type_id, uint64_t src, uint64_t dst, const qp_raw *props, uint32_t prop_count) {
    qbuf_varint(b, type_id);
    qbuf_varint(b, src);
    qbuf_varint(b, dst);
    props_emit(b, props, prop_count);
}

int qp_node_labels(const uint8_t *p, size_t n, uint32_t *labels, uint32_t *label_count, size_t *props_off) {
    uint64_t c, x;
    size_t off = qk_varint(p, n, &c);
    if (!off || c > QUIVER_LABELS_PER_NODE_COUNT_MAX) return QS_CORRUPT;
    uint64_t prev = 0;
    for (uint64_t i = 0; i < c; i++) {
        size_t u = qk_varint(p + off, n - off, &x);
        if (!u) return QS_CORRUPT;
        off += u;
        prev = i == 0 ? x : prev + x;
        if (prev > UINT32_MAX) return QS_CORRUPT;
        labels[i] = (uint32_t)prev;
    }
    *label_count = (uint32_t)c;
    *props_off = off;
    return QS_OK;
}

int qp_edge_head(const uint8_t *p, size_t n, uint32_t *type_id, uint64_t *src, uint64_t *dst, size_t *props_off) {
    uint64_t t;
    size_t off = qk_varint(p, n, &t), u;
    if (!off || t > UINT32_MAX) return QS_CORRUPT;
    if (!(u = qk_varint(p + off, n - off, src))) return QS_CORRUPT;
    off += u;
    if (!(u = qk_varint(p + off, n - off, dst))) return QS_CORRUPT;
    off += u;
    *type_id = (uint32_t)t;
    *props_off = off;
    return QS_OK;
}

int qp_props_raw(const uint8_t *p, size_t n, qp_raw **arr, uint32_t *cap, uint32_t *count) {
    uint64_t c, k;
    size_t off = qk_varint(p, n, &c);
    if (!off || c > QUIVER_PROPERTIES_PER_ENTITY_COUNT_MAX) return QS_CORRUPT;
    if (*cap < c + 1) {
        uint32_t nc = (uint32_t)c + 16;
        qp_raw *na = realloc(*arr, nc * sizeof **arr);
        if (!na) QUIVER_FATAL("out of memory decoding properties");
        *arr = na;
        *cap = nc;
    }
    uint64_t prev = 0;
    for (uint64_t i = 0; i < c; i++) {
        size_t u = qk_varint(p + off, n - off, &k);
        if (!u) return QS_CORRUPT;
        off += u;
        prev = i == 0 ? k : prev + k;
        if (prev > UINT32_MAX || (i > 0 && k == 0)) return QS_CORRUPT;
        size_t sz = qp_value_size(p + off, n - off);
        if (!sz) return QS_CORRUPT;
        (*arr)[i].key_id = (uint32_t)prev;
        (*arr)[i].p = p + off;
        (*arr)[i].len = (uint32_t)sz;
        off += sz;
    }
    if (off != n) return QS_CORRUPT;
    *count = (uint32_t)c;
    return QS_OK;
}

int qp_props_find(const uint8_t *p, size_t n, uint32_t key_id, const uint8_t **vp, size_t *vlen) {
    uint64_t c, k;
    size_t off = qk_varint(p, n, &c);
    if (!off) return QS_CORRUPT;
    uint64_t prev = 0;
    for (uint64_t i = 0; i < c; i++) {
        size_t u = qk_varint(p + off, n - off, &k);
        if (!u) return QS_CORRUPT;
        off += u;
        prev = i == 0 ? k : prev + k;
        size_t sz = qp_value_size(p + off, n - off);
        if (!sz) return QS_CORRUPT;
        if (prev == key_id) {
            *vp = p + off;
            *vlen = sz;
            return QS_OK;
        }
        if (prev > key_id) return QS_NOT_FOUND; /* ascending: not there */
        off += sz;
    }
    return QS_NOT_FOUND;
}

int qp_props_decode(const uint8_t *p, size_t n, q_arena *a, qv_props *out) {
    uint64_t c, k;
    size_t off = qk_varint(p, n, &c);
    if (!off || c > QUIVER_PROPERTIES_PER_ENTITY_COUNT_MAX) return QS_CORRUPT;
    memset(out, 0, sizeof *out);
    out->count = (uint32_t)c;
    out->key_ids = q_arena_alloc(a, (c ? c : 1) * sizeof(uint32_t));
    out->values = q_arena_alloc(a, (c ? c : 1) * sizeof(qv_value));
    if (!out->key_ids || !out->values) return QS_NOMEM;
    uint64_t prev = 0;
    for (uint64_t i = 0; i < c; i++) {
        size_t u = qk_varint(p + off, n - off, &k);
        if (!u) return QS_CORRUPT;
        off += u;
        prev = i == 0 ? k : prev + k;
        if (prev > UINT32_MAX) return QS_CORRUPT;
        size_t sz = qp_value_size(p + off, n - off);
        if (!sz) return QS_CORRUPT;
        out->key_ids[i] = (uint32_t)prev;
        int rc = qp_decode_value(p + off, sz, a, &out->values[i]);
        if (rc != QS_OK) return rc;
        off += sz;
    }
    if (off != n) return QS_CORRUPT;
    return QS_OK;
}

/* ---- order-preserving index encoding ---- */

static void put_ordered_double(qbuf *b, double d, int disc) {
    if (d == 0) d = 0.0; /* -0.0 -> +0.0 */
    uint64_t bits;
    memcpy(&bits, &d, 8);
    if (bits >> 63) bits = ~bits;
    else bits |= (uint64_t)1 << 63;
    qbuf_u8(b, 0x20);
    qbuf_u64(b, bits);
    uint16_t dz = (uint16_t)(disc + 0x8000);
    uint8_t t[2] = {(uint8_t)(dz >> 8), (uint8_t)dz};
    qbuf_add(b, t, 2);
}

int qp_index_family(qv_value v) {
    switch (v.type) {
    case QV_BOOL: return 0x10;
    case QV_INT: return 0x20;
    case QV_DOUBLE: return isnan(v.u.d) ? 0x21 : 0x20;
    case QV_STRING: return 0x30;
    default: return -1;
    }
}

bool qp_index_encode(qbuf *b, qv_value v) {
    switch (v.type) {
    case QV_BOOL: {
        uint8_t t[2] = {0x10, v.u.b ? 1 : 0};
        qbuf_add(b, t, 2);
        return true;
    }
    case QV_INT: {
        int64_t i = v.u.i;
        double d = (double)i;
        int disc = 0;
        if (i > ((int64_t)1 << 53) || i < -((int64_t)1 << 53)) {
            /* |d| >= 2^53 is integral and at most 2^63: exact in __int128. */
            __int128 diff = (__int128)i - (__int128)d;
            QUIVER_ASSERT(diff >= -1024 && diff <= 1024);
            disc = (int)diff;
        }
        put_ordered_double(b, d, disc);
        return true;
    }
    case QV_DOUBLE:
        if (isnan(v.u.d)) {
            qbuf_u8(b, 0x21);
            return true;
        }
        put_ordered_double(b, v.u.d, 0);
        return true;
    case QV_STRING: {
        qbuf_reserve(b, 1 + (size_t)v.u.s.len * 2 + 2);
        qbuf_u8(b, 0x30);
        const uint8_t *s = (const uint8_t *)v.u.s.ptr;
        for (uint32_t i = 0; i < v.u.s.len; i++) {
            if (s[i] == 0) {
                uint8_t t[2] = {0x00, 0xff};
                qbuf_add(b, t, 2);
            } else {
                qbuf_u8(b, s[i]);
            }
        }
        uint8_t t[2] = {0x00, 0x01};
        qbuf_add(b, t, 2);
        return true;
    }
    default:
        return false;
    }
}
