/*
 * idmap.c -- string id -> node id map for the importer (see idmap.h).
 */
#include "idmap.h"

#include <stdlib.h>
#include <string.h>

#include "../common/qassert.h"

#define IDMAP_CHUNK_SIZE_BYTES (1u << 20)

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

void idmap_init(idmap *m) { memset(m, 0, sizeof *m); }

void idmap_free(idmap *m) {
    for (size_t i = 0; i < m->chunk_count; i++) free(m->chunks[i]);
    free(m->chunks);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

size_t idmap_compose_key(char *key, size_t key_size_bytes, const char *space, size_t space_len,
                         const char *id, size_t id_len) {
    size_t len = space_len + 1 + id_len;
    if (len > IDMAP_KEY_SIZE_MAX_BYTES || len > key_size_bytes) return 0;
    if (space_len) memcpy(key, space, space_len);
    key[space_len] = 0x1F;
    memcpy(key + space_len + 1, id, id_len);
    return len;
}

static idmap_entry *find_slot(idmap_entry *slots, size_t capacity, const char *key, size_t len,
                              uint64_t h) {
    size_t mask = capacity - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        idmap_entry *e = &slots[i];
        if (e->key == NULL) return e;
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) return e;
    }
}

static void grow(idmap *m) {
    size_t cap = m->capacity ? m->capacity * 2 : 1024;
    idmap_entry *slots = calloc(cap, sizeof *slots);
    if (slots == NULL) QUIVER_FATAL("out of memory growing the id map to %zu slots", cap);
    for (size_t i = 0; i < m->capacity; i++) {
        idmap_entry *e = &m->slots[i];
        if (e->key == NULL) continue;
        *find_slot(slots, cap, e->key, e->key_len, e->hash) = *e;
    }
    free(m->slots);
    m->slots = slots;
    m->capacity = cap;
}

static const char *store_key(idmap *m, const char *key, size_t len) {
    if (m->chunk_count == 0 || m->chunk_used + len > IDMAP_CHUNK_SIZE_BYTES) {
        char **chunks = realloc(m->chunks, (m->chunk_count + 1) * sizeof *chunks);
        if (chunks == NULL) QUIVER_FATAL("out of memory for id map chunks");
        m->chunks = chunks;
        m->chunks[m->chunk_count] = malloc(IDMAP_CHUNK_SIZE_BYTES);
        if (m->chunks[m->chunk_count] == NULL) QUIVER_FATAL("out of memory for id map keys");
        m->chunk_count++;
        m->chunk_used = 0;
    }
    char *p = m->chunks[m->chunk_count - 1] + m->chunk_used;
    memcpy(p, key, len);
    m->chunk_used += len;
    return p;
}

int idmap_insert(idmap *m, const char *key, size_t len, const char **stored_key) {
    QUIVER_ASSERT(key != NULL && stored_key != NULL);
    if (len > IDMAP_KEY_SIZE_MAX_BYTES) return -2;
    if (m->count >= IDMAP_ENTRIES_COUNT_MAX) return -2;
    if ((m->count + 1) * 2 > m->capacity) grow(m);
    uint64_t h = fnv1a(key, len);
    idmap_entry *e = find_slot(m->slots, m->capacity, key, len, h);
    if (e->key != NULL) return -1;
    e->key = store_key(m, key, len);
    e->key_len = (uint32_t)len;
    e->hash = h;
    e->node_id = IDMAP_PENDING;
    m->count++;
    *stored_key = e->key;
    QUIVER_ASSERT(m->count * 2 <= m->capacity);
    return 0;
}

void idmap_set(idmap *m, const char *key, size_t len, int64_t node_id) {
    QUIVER_ASSERT(node_id >= 0);
    QUIVER_ASSERT(m->capacity > 0);
    idmap_entry *e = find_slot(m->slots, m->capacity, key, len, fnv1a(key, len));
    QUIVER_ASSERT(e->key != NULL);
    e->node_id = node_id;
}

int64_t idmap_get(const idmap *m, const char *key, size_t len) {
    if (m->capacity == 0) return IDMAP_ABSENT;
    idmap_entry *e = find_slot(m->slots, m->capacity, key, len, fnv1a(key, len));
    return e->key ? e->node_id : IDMAP_ABSENT;
}
