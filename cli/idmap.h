/*
 * idmap.h -- the import's map from a CSV string id (with its id space) to
 * the node id the server assigned.
 *
 * neo4j-admin import identifies nodes by string ids in the CSV (`id:ID`,
 * `:START_ID`, `:END_ID`), optionally in named id spaces (`:ID(Group)`).
 * Quiver assigns its own node ids, returned by `RETURN id(n)`; relationship
 * batches are then written with those integers.  So the importer keeps every
 * node's string id in memory: open addressing with linear probing, capacity a
 * power of two kept at most half full, keys copied into large chunks (one
 * malloc per chunk, not per key).  For the Debian graph (143k nodes, ~25 bytes
 * per id) this is a few megabytes.
 *
 * A key is inserted when its row is parsed (value IDMAP_PENDING) and given
 * its node id when the server's reply arrives, so a duplicate id in the files
 * is caught before anything is sent.
 *
 * Hash: 64-bit FNV-1a (Fowler, Noll, Vo; public domain reference at
 * isthe.com/chongo/tech/comp/fnv), which is short and good enough for
 * string keys at load factor <= 0.5.
 *
 * Memory: the map owns its keys.  Thread: one thread.
 */
#ifndef QUIVER_CLI_IDMAP_H
#define QUIVER_CLI_IDMAP_H

#include <stddef.h>
#include <stdint.h>

/* Ceiling on distinct node ids one import may hold. */
#define IDMAP_ENTRIES_COUNT_MAX (256u * 1024 * 1024)
/* Bytes of one key (id space name + id text). */
#define IDMAP_KEY_SIZE_MAX_BYTES (64u * 1024)

#define IDMAP_PENDING (-1) /* inserted, reply not yet seen */
#define IDMAP_ABSENT (-2)  /* returned by idmap_get for an unknown key */

typedef struct idmap_entry {
    const char *key; /* NULL: free slot */
    uint32_t key_len;
    int64_t node_id; /* IDMAP_PENDING or >= 0 */
    uint64_t hash;
} idmap_entry;

typedef struct idmap {
    idmap_entry *slots;
    size_t capacity;  /* power of two */
    size_t count;
    char **chunks;    /* key storage */
    size_t chunk_count;
    size_t chunk_used; /* bytes used in the last chunk */
} idmap;

void idmap_init(idmap *m);
void idmap_free(idmap *m);

/* Compose the key of id text in id space (space may be empty) into key
 * storage owned by the caller: space, 0x1F, id.  Returns the length, or 0
 * when it would exceed IDMAP_KEY_SIZE_MAX_BYTES or key_size_bytes. */
size_t idmap_compose_key(char *key, size_t key_size_bytes, const char *space, size_t space_len,
                         const char *id, size_t id_len);

/* Insert key[0..len) with value IDMAP_PENDING.  Returns 0, -1 when the key
 * is already present, -2 when the map is full (IDMAP_ENTRIES_COUNT_MAX) or
 * the key longer than IDMAP_KEY_SIZE_MAX_BYTES.  On 0, *stored_key receives
 * the map's own copy of the key (valid until idmap_free; slots move when the
 * table grows, keys do not), to give back to idmap_set later. */
int idmap_insert(idmap *m, const char *key, size_t len, const char **stored_key);

/* Set the node id of a present key.  Asserts the key is present. */
void idmap_set(idmap *m, const char *key, size_t len, int64_t node_id);

/* The node id of key, IDMAP_PENDING, or IDMAP_ABSENT. */
int64_t idmap_get(const idmap *m, const char *key, size_t len);

#endif
