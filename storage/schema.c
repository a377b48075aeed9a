/*
 * schema.c -- the in-memory schema cache: per graph, the names of labels,
 * relationship types and property keys (dense ids from 0, append-only) with
 * a hash index name -> id, and the list of property indexes.
 *
 * Published versions are immutable and reference-counted (see store.h), so
 * reader threads look names up without locks.  A transaction mutates only
 * private copies (owner_seq = its sequence number); publishing is a pointer
 * swap under db->mu at commit.  The hash is XXH3-64 of the name with open
 * addressing and linear probing (load <= 1/2); ids are never reused, and
 * the only removal is popping the newest id on savepoint rollback.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "store.h"

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) QUIVER_FATAL("out of memory (%zu bytes) in the schema cache", n);
    return p;
}
static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) QUIVER_FATAL("out of memory (%zu bytes) in the schema cache", n);
    return p;
}

/* ---- kind tables ---- */

static void kt_rehash(qs_kindtab *t, uint32_t slot_cap) {
    free(t->slots);
    t->slot_cap = slot_cap;
    t->slots = calloc(slot_cap, sizeof(uint32_t));
    if (!t->slots) QUIVER_FATAL("out of memory in the schema cache");
    for (uint32_t id = 0; id < t->count; id++) {
        uint32_t h = (uint32_t)XXH3_64bits(t->names[id], t->lens[id]) & (slot_cap - 1);
        while (t->slots[h]) h = (h + 1) & (slot_cap - 1);
        t->slots[h] = id + 1;
    }
}

static void kt_copy(qs_kindtab *dst, const qs_kindtab *src) {
    dst->count = src->count;
    dst->cap = src->count + 8;
    dst->names = xmalloc(dst->cap * sizeof(char *));
    dst->lens = xmalloc(dst->cap * sizeof(uint32_t));
    for (uint32_t i = 0; i < src->count; i++) {
        dst->names[i] = xmalloc(src->lens[i] + 1);
        memcpy(dst->names[i], src->names[i], src->lens[i] + 1);
        dst->lens[i] = src->lens[i];
    }
    dst->slot_cap = src->slot_cap;
    dst->slots = xmalloc(src->slot_cap * sizeof(uint32_t));
    memcpy(dst->slots, src->slots, src->slot_cap * sizeof(uint32_t));
}

static void kt_free(qs_kindtab *t) {
    for (uint32_t i = 0; i < t->count; i++) free(t->names[i]);
    free(t->names);
    free(t->lens);
    free(t->slots);
}

qs_gschema *qs_gschema_new(uint32_t graph, const char *name, size_t len, uint64_t owner_seq) {
    qs_gschema *g = calloc(1, sizeof *g);
    if (!g) QUIVER_FATAL("out of memory in the schema cache");
    atomic_init(&g->refs, 1);
    g->owner_seq = owner_seq;
    g->graph_id = graph;
    g->name = xmalloc(len + 1);
    memcpy(g->name, name, len);
    g->name[len] = 0;
    g->name_len = (uint32_t)len;
    for (int k = 0; k < 3; k++) kt_rehash(&g->k[k], 16);
    return g;
}

static qs_gschema *gschema_clone(const qs_gschema *s, uint64_t owner_seq) {
    qs_gschema *g = qs_gschema_new(s->graph_id, s->name, s->name_len, owner_seq);
    for (int k = 0; k < 3; k++) {
        kt_free(&g->k[k]);
        kt_copy(&g->k[k], &s->k[k]);
    }
    g->index_count = s->index_count;
    g->index_cap = s->index_count + 4;
    g->indexes = xmalloc(g->index_cap * sizeof(uint64_t));
    if (s->index_count) memcpy(g->indexes, s->indexes, s->index_count * sizeof(uint64_t));
    return g;
}

void qs_gschema_unref(qs_gschema *g) {
    if (!g) return;
    if (atomic_fetch_sub(&g->refs, 1) != 1) return;
    for (int k = 0; k < 3; k++) kt_free(&g->k[k]);
    free(g->indexes);
    free(g->name);
    free(g);
}

int64_t qs_gschema_lookup(const qs_gschema *g, int kind, const char *name, size_t len) {
    const qs_kindtab *t = &g->k[kind];
    uint32_t h = (uint32_t)XXH3_64bits(name, len) & (t->slot_cap - 1);
    for (;;) {
        uint32_t s = t->slots[h];
        if (!s) return -1;
        uint32_t id = s - 1;
        if (t->lens[id] == len && memcmp(t->names[id], name, len) == 0) return id;
        h = (h + 1) & (t->slot_cap - 1);
    }
}

uint32_t qs_gschema_add(qs_gschema *g, int kind, const char *name, size_t len) {
    qs_kindtab *t = &g->k[kind];
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->names = xrealloc(t->names, t->cap * sizeof(char *));
        t->lens = xrealloc(t->lens, t->cap * sizeof(uint32_t));
    }
    uint32_t id = t->count++;
    t->names[id] = xmalloc(len + 1);
    memcpy(t->names[id], name, len);
    t->names[id][len] = 0;
    t->lens[id] = (uint32_t)len;
    if ((uint64_t)t->count * 2 > t->slot_cap) {
        kt_rehash(t, t->slot_cap * 2);
    } else {
        uint32_t h = (uint32_t)XXH3_64bits(name, len) & (t->slot_cap - 1);
        while (t->slots[h]) h = (h + 1) & (t->slot_cap - 1);
        t->slots[h] = id + 1;
    }
    return id;
}

void qs_gschema_pop(qs_gschema *g, int kind) {
    qs_kindtab *t = &g->k[kind];
    QUIVER_ASSERT(t->count > 0);
    uint32_t id = t->count - 1;
    free(t->names[id]);
    t->count--;
    kt_rehash(t, t->slot_cap); /* rare (rollback only): rebuild keeps probing correct */
}

static int idx_find(const qs_gschema *g, uint64_t v, uint32_t *pos) {
    uint32_t lo = 0, hi = g->index_count;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (g->indexes[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    *pos = lo;
    return lo < g->index_count && g->indexes[lo] == v;
}

bool qs_gschema_has_index(const qs_gschema *g, uint32_t label, uint32_t key) {
    uint32_t pos;
    return idx_find(g, ((uint64_t)label << 32) | key, &pos);
}

void qs_gschema_index_add(qs_gschema *g, uint32_t label, uint32_t key) {
    uint64_t v = ((uint64_t)label << 32) | key;
    uint32_t pos;
    if (idx_find(g, v, &pos)) return;
    if (g->index_count == g->index_cap) {
        g->index_cap = g->index_cap ? g->index_cap * 2 : 4;
        g->indexes = xrealloc(g->indexes, g->index_cap * sizeof(uint64_t));
    }
    memmove(g->indexes + pos + 1, g->indexes + pos, (g->index_count - pos) * sizeof(uint64_t));
    g->indexes[pos] = v;
    g->index_count++;
}

void qs_gschema_index_remove(qs_gschema *g, uint32_t label, uint32_t key) {
    uint32_t pos;
    if (!idx_find(g, ((uint64_t)label << 32) | key, &pos)) return;
    memmove(g->indexes + pos, g->indexes + pos + 1, (g->index_count - pos - 1) * sizeof(uint64_t));
    g->index_count--;
}

void qs_gschema_label_indexes(const qs_gschema *g, uint32_t label, uint32_t *first, uint32_t *end) {
    if (g->index_count == 0) {
        *first = *end = 0;
        return;
    }
    uint32_t a, b;
    idx_find(g, (uint64_t)label << 32, &a);
    idx_find(g, ((uint64_t)label << 32) | 0xffffffffu, &b);
    if (b < g->index_count && g->indexes[b] == (((uint64_t)label << 32) | 0xffffffffu)) b++;
    *first = a;
    *end = b;
}

/* ---- catalogs ---- */

qs_catalog *qs_catalog_new(void) {
    qs_catalog *c = calloc(1, sizeof *c);
    if (!c) QUIVER_FATAL("out of memory in the schema cache");
    atomic_init(&c->refs, 1);
    return c;
}

qs_catalog *qs_catalog_ref(qs_catalog *c) {
    atomic_fetch_add(&c->refs, 1);
    return c;
}

void qs_catalog_unref(qs_catalog *c) {
    if (!c) return;
    if (atomic_fetch_sub(&c->refs, 1) != 1) return;
    for (uint32_t i = 0; i < c->count; i++) qs_gschema_unref(c->graphs[i]);
    free(c->graphs);
    free(c);
}

qs_catalog *qs_catalog_copy(const qs_catalog *src, uint64_t owner_seq) {
    qs_catalog *c = qs_catalog_new();
    c->owner_seq = owner_seq;
    c->cap = src->count + 4;
    c->graphs = xmalloc(c->cap * sizeof(qs_gschema *));
    c->count = src->count;
    for (uint32_t i = 0; i < src->count; i++) {
        c->graphs[i] = src->graphs[i];
        atomic_fetch_add(&c->graphs[i]->refs, 1);
    }
    return c;
}

static uint32_t cat_pos(const qs_catalog *c, uint32_t graph, bool *found) {
    uint32_t lo = 0, hi = c->count;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (c->graphs[mid]->graph_id < graph) lo = mid + 1;
        else hi = mid;
    }
    *found = lo < c->count && c->graphs[lo]->graph_id == graph;
    return lo;
}

qs_gschema *qs_catalog_find(const qs_catalog *c, uint32_t graph) {
    bool found;
    uint32_t pos = cat_pos(c, graph, &found);
    return found ? c->graphs[pos] : NULL;
}

qs_gschema *qs_catalog_find_name(const qs_catalog *c, const char *name, size_t len) {
    /* At most QUIVER_GRAPHS_COUNT_MAX graphs and queries resolve their graph
     * once: a linear scan is simpler than a second index. */
    for (uint32_t i = 0; i < c->count; i++) {
        const qs_gschema *g = c->graphs[i];
        if (g->name_len == len && memcmp(g->name, name, len) == 0) return c->graphs[i];
    }
    return NULL;
}

void qs_catalog_insert(qs_catalog *c, qs_gschema *g) {
    bool found;
    uint32_t pos = cat_pos(c, g->graph_id, &found);
    QUIVER_ASSERT(!found);
    if (c->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->graphs = xrealloc(c->graphs, c->cap * sizeof(qs_gschema *));
    }
    memmove(c->graphs + pos + 1, c->graphs + pos, (c->count - pos) * sizeof(qs_gschema *));
    c->graphs[pos] = g;
    c->count++;
}

qs_gschema *qs_catalog_remove(qs_catalog *c, uint32_t graph) {
    bool found;
    uint32_t pos = cat_pos(c, graph, &found);
    if (!found) return NULL;
    qs_gschema *g = c->graphs[pos];
    memmove(c->graphs + pos, c->graphs + pos + 1, (c->count - pos - 1) * sizeof(qs_gschema *));
    c->count--;
    return g;
}

qs_gschema *qs_catalog_mutable(qs_catalog *c, uint32_t graph, uint64_t owner_seq) {
    QUIVER_ASSERT(c->owner_seq == owner_seq);
    bool found;
    uint32_t pos = cat_pos(c, graph, &found);
    if (!found) return NULL;
    qs_gschema *g = c->graphs[pos];
    if (g->owner_seq == owner_seq) return g;
    qs_gschema *copy = gschema_clone(g, owner_seq);
    c->graphs[pos] = copy;
    qs_gschema_unref(g);
    return copy;
}
