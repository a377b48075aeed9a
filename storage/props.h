/*
 * props.h -- encodings of property values, node and edge records, and the
 * order-preserving value encoding of prop_index keys.  Formats: props.c.
 *
 * Internal to storage/.  Thread: pure functions.
 */
#ifndef QUIVER_STORAGE_PROPS_H
#define QUIVER_STORAGE_PROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/arena.h"
#include "../common/value.h"
#include "keys.h"

/* One property, value still encoded (a slice of a record or a buffer). */
typedef struct qp_raw {
    uint32_t key_id;
    uint32_t len;
    const uint8_t *p;
} qp_raw;

/* Append the tagged encoding of v (bool, int, double, string, list of
 * those; null only inside lists).  depth: current list nesting (0 at top).
 * Returns QS_OK, QS_INVALID (map, node, edge, path, or null at top level),
 * QS_LIMIT (string, list or nesting over limits.h).  On error b->len is
 * restored. */
int qp_encode_value(qbuf *b, qv_value v, int depth);

/* Length of the encoded value at p (at most n bytes), 0 when corrupt. */
size_t qp_value_size(const uint8_t *p, size_t n);

/* Decode one value into arena a.  Returns QS_OK, QS_NOMEM, QS_CORRUPT. */
int qp_decode_value(const uint8_t *p, size_t n, q_arena *a, qv_value *out);

/* Node record: labels then properties. */
void qp_node_encode(qbuf *b, const uint32_t *labels, uint32_t label_count, const qp_raw *props, uint32_t prop_count);
/* Edge record: type, src, dst, then properties. */
void qp_edge_encode(qbuf *b, uint32_t type_id, uint64_t src, uint64_t dst, const qp_raw *props, uint32_t prop_count);

/* Parse a node record's labels into labels[] (capacity
 * QUIVER_LABELS_PER_NODE_COUNT_MAX); *props_off is where the property
 * section starts.  QS_OK or QS_CORRUPT. */
int qp_node_labels(const uint8_t *p, size_t n, uint32_t *labels, uint32_t *label_count, size_t *props_off);
/* Parse an edge record's head. */
int qp_edge_head(const uint8_t *p, size_t n, uint32_t *type_id, uint64_t *src, uint64_t *dst, size_t *props_off);

/* Property section -> raw slices in *arr (malloc'd, grown as needed, cap in
 * *cap; the caller frees).  Slices point into p.  QS_OK or QS_CORRUPT. */
int qp_props_raw(const uint8_t *p, size_t n, qp_raw **arr, uint32_t *cap, uint32_t *count);
/* Find one property in a property section without decoding the others:
 * QS_OK with *vp and *vlen set, QS_NOT_FOUND, or QS_CORRUPT. */
int qp_props_find(const uint8_t *p, size_t n, uint32_t key_id, const uint8_t **vp, size_t *vlen);
/* Decode a whole property section into arena a (keys left empty). */
int qp_props_decode(const uint8_t *p, size_t n, q_arena *a, qv_props *out);

/* Order-preserving encoding of an indexable value (bool, int, double,
 * string): appends to b and returns true; false (nothing appended) for
 * values that are not indexed (null, lists, maps...).  Prefix-free. */
bool qp_index_encode(qbuf *b, qv_value v);
/* The type family byte an indexable value's encoding starts with, or -1. */
int qp_index_family(qv_value v);

#endif
