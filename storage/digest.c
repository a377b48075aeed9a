/*
 * digest.c -- a checksum of one graph's whole state, for comparing
 * replicas (QUIVER.DIGEST).
 *
 * XXH3-64 (xxhash.h, streaming API, seed 0) over, in this fixed order:
 * the graph's name, then every key and value of the graph in each family
 * schema, nodes, edges, adj_out, adj_in, label_index, prop_index (key
 * order), then the graph's counters from the default family ("q/c" keys:
 * next ids and counts).  Each record is fed as family id (u8), key length
 * (u32 BE), key, value length (u32 BE), value, so no two different states
 * produce the same byte stream.  The schema family holds labels,
 * relationship types, property keys and index definitions, so the schema is
 * covered.  Identical states give identical digests on every replica;
 * the cost is a full scan of the graph (it is an admin command).
 */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "store.h"

static void feed(XXH3_state_t *st, uint8_t cf, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    uint8_t h[5];
    h[0] = cf;
    qk_put_u32(h + 1, (uint32_t)kl);
    XXH3_64bits_update(st, h, 5);
    XXH3_64bits_update(st, k, kl);
    qk_put_u32(h + 1, (uint32_t)vl);
    XXH3_64bits_update(st, h + 1, 4);
    if (vl) XXH3_64bits_update(st, v, vl);
}

static void feed_range(XXH3_state_t *st, qs_view *v, int cf, const uint8_t *prefix, size_t n) {
    uint8_t hi[16];
    QUIVER_ASSERT(n <= sizeof hi);
    memcpy(hi, prefix, n);
    size_t hn = qk_prefix_successor(hi, n);
    qs_raw_iter r;
    qs_raw_open(&r, v, cf, prefix, n, hn ? hi : NULL, hn);
    const uint8_t *k, *val;
    size_t kl, vl;
    while (qs_raw_next(&r, &k, &kl, &val, &vl)) feed(st, (uint8_t)cf, k, kl, val, vl);
    qs_raw_close(&r);
}

int qs_graph_digest(qs_view *v, uint32_t graph, char out_hex[17]) {
    const qs_gschema *g = qs_catalog_find(qs_view_catalog(v), graph);
    if (!g) return QS_NOT_FOUND;
    if (v->txn) qs_txn_write_counters(v->txn, false); /* counters reach the batch at commit otherwise */
    XXH3_state_t *st = XXH3_createState();
    if (!st) QUIVER_FATAL("out of memory (digest)");
    XXH3_64bits_reset(st);
    feed(st, 0xff, (const uint8_t *)g->name, g->name_len, NULL, 0);
    uint8_t p[8];
    qk_put_u32(p, graph);
    for (int cf = QS_CF_SCHEMA; cf < QS_CF_COUNT; cf++) feed_range(st, v, cf, p, 4);
    memcpy(p, QK_GCOUNT, 3);
    qk_put_u32(p + 3, graph);
    feed_range(st, v, QS_CF_DEFAULT, p, 7);
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    snprintf(out_hex, 17, "%016llx", (unsigned long long)h);
    return QS_OK;
}
