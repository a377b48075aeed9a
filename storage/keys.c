/*
 * keys.c -- the key layout of Quiver's RocksDB column families.
 *
 * Every integer in a key is big-endian, so RocksDB's bytewise comparator
 * orders keys numerically and a scan over a prefix yields ids ascending.
 * Every graph-scoped key starts with the graph id (u32), so a graph is a
 * contiguous range in each family (scans, digest, graph delete).
 *
 *   family       key                                              value
 *   default      "q/format"                                       u32 format version (1)
 *                "q/uuid"                                         16 random bytes
 *                "q/applied"                                      u64 applied index
 *                "q/next_graph"                                   u32 next graph id
 *                "q/gname/" name                                  u32 graph id
 *                "q/c" g 'N' | 'E'                                u64 next node / edge id
 *                "q/c" g 'n' | 'e'                                u64 node / edge count
 *                "q/c" g 'l' label                                u64 nodes with the label
 *                anything not starting with "q/"                  qs_meta_* (opaque)
 *   schema       g 'k' kind(u8) id(u32)                           name bytes
 *                g 'n' kind(u8) name                              u32 id (reverse map)
 *                g 'x' label(u32) key(u32)                        empty (an index exists)
 *   nodes        g node(u64)                                      node record (props.c)
 *   edges        g edge(u64)                                      edge record (props.c)
 *   adj_out      g src(u64) type(u32) dst(u64) edge(u64)          empty
 *   adj_in       g dst(u64) type(u32) src(u64) edge(u64)          empty
 *   label_index  g label(u32) node(u64)                           empty
 *   prop_index   g label(u32) key(u32) ordered-value node(u64)    empty
 *
 * The per-graph counters live in the default family rather than under the
 * graph id because the default family also holds the opaque meta keys; the
 * "q/" prefix keeps the two apart (qs_meta_* refuses keys starting with it).
 * "ordered-value" is the order-preserving encoding of props.c; it is
 * prefix-free, so the node id that follows never changes the value order.
 * Fixed-width ids (rather than varints) cost a few bytes per key but keep
 * prefix scans and bound computation trivial; RocksDB's prefix compression
 * inside blocks and LZ4 take most of the redundancy back.
 */
#include "keys.h"

#include <stdlib.h>

const char *const qs_cf_names[QS_CF_COUNT] = {
    "default", "schema", "nodes", "edges", "adj_out", "adj_in", "label_index", "prop_index",
};

void qbuf_reserve(qbuf *b, size_t extra_bytes) {
    size_t need = b->len + extra_bytes;
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) QUIVER_FATAL("out of memory growing a storage buffer to %zu bytes", cap);
    b->p = p;
    b->cap = cap;
}

void qbuf_free(qbuf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

size_t qk_prefix_successor(uint8_t *k, size_t n) {
    while (n > 0) {
        if (k[n - 1] != 0xff) {
            k[n - 1]++;
            return n;
        }
        n--;
    }
    return 0;
}
