/*
 * statemachine.c -- the apply thread (design and contract in statemachine.h).
 *
 * Threads and the ring.  Committed entries travel in a ring of
 * QUIVER_APPLY_QUEUE_COUNT_MAX slots with three cursors, all under one mutex:
 *
 *     head <= applied <= tail
 *     [head, applied)   applied, results waiting for the loop thread
 *     [applied, tail)   queued, waiting for the apply thread
 *
 * The loop thread advances tail (sm_enqueue) and head (delivery); the apply
 * thread advances applied.  A slot is reused only after its results were
 * delivered, so results need no second queue and the whole pipeline is
 * bounded by one number.  The apply thread never waits for the loop thread
 * (it only ever waits for work), so the loop thread may block on it -- when
 * the ring is full, or in sm_sync -- without a deadlock: while it waits it
 * delivers finished slots itself.
 *
 * Why block the loop at all instead of growing the queue?  Because raft's
 * fsm->apply cannot refuse an entry (RAFT-NOTES.md: a non-zero return stalls
 * raft for good), so the only back-pressure available is to not return.
 * The leader's proposer already bounds entries in flight
 * (REPL_ENTRIES_IN_FLIGHT_COUNT_MAX, far below the ring size), so in steady
 * state the ring never fills on a leader; it fills during replay after a
 * restart or on a follower catching up, where stalling the loop is exactly
 * the right thing (there is nothing better to do than apply).
 *
 * De-duplication table.  In memory: a FIFO ring of request ids in insertion
 * order (for deterministic oldest-first eviction) and an open-addressing
 * hash (linear probing, backward-shift deletion) from request id to its FIFO
 * position; the outcomes themselves stay in RocksDB (65536 outcomes of up to
 * 1 MiB would not belong in memory) and are read back only on a hit.  The
 * table is only touched by the apply thread, except at open.  Meta keys:
 *
 *     "sm/dd/" u64 insertion sequence (big-endian)  ->
 *         u64 origin, u64 seq, u64 index applied at, u8 flags,
 *         [u64 statement hash, when flags bit 1], encoded result
 *
 * flags bit 0: the outcome was too big and is stored without columns/rows.
 * flags bit 1: the statement hash follows (XXH3-64 of the command's kind,
 * graph and text: sm_statement_hash).  A request id binds to its statement
 * (DESIGN.md 3): the same id with another statement is refused with an
 * error that says so and changes nothing -- never answered with the first
 * outcome, which would tell a client that its different write was done.
 * Outcomes recorded before the hash existed (bit 1 clear) match any
 * statement, as they did then.
 * The insertion sequence continues from the largest one found at open, so
 * every replica numbers and evicts alike.
 */
#include "statemachine.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/limits.h"
#include "../common/qassert.h"
#include "bytes.h"

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>
#include "result_codec.h"

#define SM_DEDUP_PREFIX "sm/dd/"
#define SM_DEDUP_PREFIX_BYTES 6
#define SM_DEDUP_KEY_BYTES (SM_DEDUP_PREFIX_BYTES + 8)
#define SM_DEDUP_VALUE_HEADER_BYTES (8 + 8 + 8 + 1)
#define SM_DEDUP_FLAG_TRUNCATED 1u
#define SM_DEDUP_FLAG_HASHED 2u
#define SM_DEDUP_HASH_BYTES 8
#define SM_DEDUP_HASH_SLOTS (2u * QUIVER_DEDUP_TABLE_COUNT_MAX) /* power of two, load <= 1/2 */
#define SM_DEDUP_HASH_EMPTY UINT32_MAX
/* Bytes of entries queued for the apply thread: a second bound beside
 * QUIVER_APPLY_QUEUE_COUNT_MAX, since entries may be large.  One entry is
 * always accepted into an empty queue, whatever its size. */
#define SM_APPLY_QUEUE_SIZE_MAX_BYTES (1024ull * 1024 * 1024)
/* Scratch arena per entry (decoded commands, de-dup reads). */
#define SM_ENTRY_ARENA_SIZE_MAX_BYTES (2ull * QUIVER_ENTRY_SIZE_MAX_BYTES)

_Static_assert((SM_DEDUP_HASH_SLOTS & (SM_DEDUP_HASH_SLOTS - 1)) == 0, "hash slots must be a power of two");

typedef struct sm_outcome {
    sm_request_id id;
    query_result *result;
} sm_outcome;

typedef struct sm_slot {
    uint64_t index;
    uint8_t *buf;
    size_t len;
    uint32_t outcome_count; /* filled by the apply thread */
    sm_outcome *outcomes;   /* malloc'd, owned by the slot until delivered */
} sm_slot;

typedef struct sm_dedup_item {
    sm_request_id id;
    uint64_t dseq; /* insertion sequence: the meta key */
} sm_dedup_item;

struct sm {
    qs_db *db;
    sm_wake_fn wake;
    void *wake_ctx;
    sm_result_fn on_result;
    void *ctx;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work_cond;     /* apply thread waits: new entries, sync, stop */
    pthread_cond_t progress_cond; /* others wait: an entry applied, a flush done */

    /* Under mu. */
    sm_slot *ring;
    uint64_t head, applied, tail; /* positions, slot = pos % QUIVER_APPLY_QUEUE_COUNT_MAX */
    size_t queued_bytes;          /* entry bytes in [applied, tail) and the one being applied */
    bool stopping;
    uint64_t sync_index;    /* highest index a sm_sync waits for */
    uint64_t flushed_index; /* applied index made durable by the last flush */

    /* Written by the loop thread under mu (sm_sync reads it under mu). */
    uint64_t last_enqueued_index;
    /* Loop thread only. */
    bool delivering; /* guards against re-entrant delivery from on_result */

    _Atomic uint64_t applied_index;

    /* Apply thread only (and sm_open before the thread starts). */
    sm_dedup_item *dd_fifo; /* QUIVER_DEDUP_TABLE_COUNT_MAX, oldest at dd_head */
    uint32_t dd_head, dd_count;
    uint32_t *dd_hash;      /* SM_DEDUP_HASH_SLOTS fifo positions or EMPTY */
    uint64_t dd_next_seq;
    _Atomic uint32_t dd_count_public;

    /* The cluster id (see sm_cluster_id): bytes written once, by sm_open or
     * the apply thread, before cluster_id_set is stored (release). */
    uint8_t cluster_id[SM_CLUSTER_ID_BYTES];
    _Atomic bool cluster_id_set;
};

/* ------------------------------------------------------------------ */
/* De-duplication table                                                */
/* ------------------------------------------------------------------ */

static uint32_t dd_hash_of(sm_request_id id) {
    /* splitmix64 finaliser over both halves: ids are random + counters */
    uint64_t x = id.origin ^ (id.seq * 0x9e3779b97f4a7c15ULL);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (uint32_t)x & (SM_DEDUP_HASH_SLOTS - 1);
}

/* Hash slot holding id, or the empty slot where it would go. */
static uint32_t dd_find_slot(const sm *s, sm_request_id id) {
    uint32_t h = dd_hash_of(id);
    for (;;) {
        uint32_t pos = s->dd_hash[h];
        if (pos == SM_DEDUP_HASH_EMPTY || sm_request_id_equal(s->dd_fifo[pos].id, id)) return h;
        h = (h + 1) & (SM_DEDUP_HASH_SLOTS - 1);
    }
}

static bool dd_lookup(const sm *s, sm_request_id id, uint64_t *dseq) {
    uint32_t h = dd_find_slot(s, id);
    if (s->dd_hash[h] == SM_DEDUP_HASH_EMPTY) return false;
    *dseq = s->dd_fifo[s->dd_hash[h]].dseq;
    return true;
}

/* Remove id from the hash by backward-shift deletion (Knuth 6.4, Algorithm R):
 * later members of the probe run move up so lookups never stop early. */
static void dd_hash_remove(sm *s, sm_request_id id) {
    uint32_t i = dd_find_slot(s, id);
    QUIVER_ASSERT(s->dd_hash[i] != SM_DEDUP_HASH_EMPTY);
    uint32_t j = i;
    for (;;) {
        s->dd_hash[i] = SM_DEDUP_HASH_EMPTY;
        for (;;) {
            j = (j + 1) & (SM_DEDUP_HASH_SLOTS - 1);
            if (s->dd_hash[j] == SM_DEDUP_HASH_EMPTY) return;
            uint32_t k = dd_hash_of(s->dd_fifo[s->dd_hash[j]].id);
            /* j's entry may move to i unless its home k lies cyclically in (i, j] */
            bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) break;
        }
        s->dd_hash[i] = s->dd_hash[j];
        i = j;
    }
}

static void dd_key(uint8_t key[SM_DEDUP_KEY_BYTES], uint64_t dseq) {
    memcpy(key, SM_DEDUP_PREFIX, SM_DEDUP_PREFIX_BYTES);
    sm_store_u64(key + SM_DEDUP_PREFIX_BYTES, dseq);
}

/* Append id (must be absent) to the in-memory table; the caller evicts first when full. */
static void dd_insert_memory(sm *s, sm_request_id id, uint64_t dseq) {
    QUIVER_ASSERT(s->dd_count < QUIVER_DEDUP_TABLE_COUNT_MAX);
    uint32_t pos = (s->dd_head + s->dd_count) % QUIVER_DEDUP_TABLE_COUNT_MAX;
    s->dd_fifo[pos].id = id;
    s->dd_fifo[pos].dseq = dseq;
    uint32_t h = dd_find_slot(s, id);
    QUIVER_ASSERT(s->dd_hash[h] == SM_DEDUP_HASH_EMPTY);
    s->dd_hash[h] = pos;
    s->dd_count++;
    atomic_store(&s->dd_count_public, s->dd_count);
}

/* Record the first outcome of id in the transaction, evicting the oldest id
 * when the table is full. */
/* The statement a request id is bound to: kind, graph and text (not the
 * clock, seed or budgets, which a retry through another leader changes).
 * Length-prefixed so that no two different commands share an input. */
static uint64_t sm_statement_hash(const sm_command *c) {
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    uint8_t head[1 + 4 + 4];
    head[0] = (uint8_t)c->kind;
    sm_store_u32(head + 1, c->graph.len);
    sm_store_u32(head + 5, c->text.len);
    XXH3_64bits_update(&st, head, sizeof head);
    XXH3_64bits_update(&st, c->graph.ptr, c->graph.len);
    if (c->text.len > 0) XXH3_64bits_update(&st, c->text.ptr, c->text.len);
    return XXH3_64bits_digest(&st);
}

static void dd_record(sm *s, qs_txn *txn, sm_request_id id, uint64_t index, uint64_t statement_hash,
                      const query_result *r) {
    if (s->dd_count == QUIVER_DEDUP_TABLE_COUNT_MAX) {
        sm_dedup_item *old = &s->dd_fifo[s->dd_head];
        uint8_t key[SM_DEDUP_KEY_BYTES];
        dd_key(key, old->dseq);
        int rc = qs_meta_delete(txn, key, sizeof key);
        QUIVER_ASSERT(rc == QS_OK);
        dd_hash_remove(s, old->id);
        s->dd_head = (s->dd_head + 1) % QUIVER_DEDUP_TABLE_COUNT_MAX;
        s->dd_count--;
    }
    uint8_t flags = SM_DEDUP_FLAG_HASHED;
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    /* The stored outcome is replicated state: every replica must write the
     * same bytes, so the measured execution time (local, not replicated)
     * is left out. */
    query_result same = *r; /* shallow: only read by the encoder */
    same.stats.execution_time_ms = 0;
    int rc = sm_result_encode(&same, SM_DEDUP_OUTCOME_SIZE_MAX_BYTES, &enc, &enc_len);
    if (rc == SM_CODEC_LIMIT) {
        /* Keep status, error and statistics; the rows are what made it big. */
        query_result slim = same;
        slim.column_count = 0;
        slim.columns = NULL;
        slim.row_count = 0;
        slim.cells = NULL;
        flags |= SM_DEDUP_FLAG_TRUNCATED;
        rc = sm_result_encode(&slim, SM_DEDUP_OUTCOME_SIZE_MAX_BYTES, &enc, &enc_len);
    }
    if (rc != SM_CODEC_OK) QUIVER_FATAL("cannot encode an outcome for the de-dup table: %s", sm_codec_strerror(rc));
    size_t val_len = SM_DEDUP_VALUE_HEADER_BYTES + SM_DEDUP_HASH_BYTES + enc_len;
    uint8_t *val = malloc(val_len);
    if (val == NULL) QUIVER_FATAL("out of memory recording a de-dup outcome (%zu bytes)", val_len);
    sm_store_u64(val, id.origin);
    sm_store_u64(val + 8, id.seq);
    sm_store_u64(val + 16, index);
    val[24] = flags;
    sm_store_u64(val + SM_DEDUP_VALUE_HEADER_BYTES, statement_hash);
    memcpy(val + SM_DEDUP_VALUE_HEADER_BYTES + SM_DEDUP_HASH_BYTES, enc, enc_len);
    free(enc);
    uint64_t dseq = s->dd_next_seq++;
    uint8_t key[SM_DEDUP_KEY_BYTES];
    dd_key(key, dseq);
    rc = qs_meta_put(txn, key, sizeof key, val, val_len);
    QUIVER_ASSERT(rc == QS_OK);
    free(val);
    dd_insert_memory(s, id, dseq);
}

/* The stored first outcome of a known id, as a new result; or, when the id
 * was bound to another statement, an error naming the id (the stored
 * outcome is not returned). */
static query_result *dd_outcome(sm *s, qs_txn *txn, sm_request_id id, uint64_t dseq, uint64_t statement_hash,
                                q_arena *scratch) {
    uint8_t key[SM_DEDUP_KEY_BYTES];
    dd_key(key, dseq);
    void *val = NULL;
    size_t val_len = 0;
    int rc = qs_meta_get(qs_txn_view(txn), key, sizeof key, scratch, &val, &val_len);
    if (rc != QS_OK || val_len < SM_DEDUP_VALUE_HEADER_BYTES)
        QUIVER_FATAL("de-dup table: outcome of request %" PRIx64 ":%" PRIu64 " (meta key sm/dd/%" PRIu64
                     ") is missing or short (status %d); the database is damaged",
                     id.origin, id.seq, dseq, rc);
    const uint8_t *v = val;
    QUIVER_ASSERT(sm_load_u64(v) == id.origin && sm_load_u64(v + 8) == id.seq);
    uint64_t first_index = sm_load_u64(v + 16);
    size_t off = SM_DEDUP_VALUE_HEADER_BYTES;
    if (v[24] & SM_DEDUP_FLAG_HASHED) {
        if (val_len < off + SM_DEDUP_HASH_BYTES)
            QUIVER_FATAL("de-dup table: outcome at meta key sm/dd/%" PRIu64 " is short (%zu bytes); the database is "
                         "damaged", dseq, val_len);
        uint64_t bound = sm_load_u64(v + off);
        off += SM_DEDUP_HASH_BYTES;
        if (bound != statement_hash) {
            char msg[320];
            snprintf(msg, sizeof msg,
                     "ERR request id %" PRIu64 ":%" PRIu64 " was already used for a different statement (applied at "
                     "log index %" PRIu64 "); this statement was not applied: use a new request id for a new statement",
                     id.origin, id.seq, first_index);
            query_result *e = sm_result_error(QUERY_ERR_RUNTIME, msg);
            if (e == NULL) QUIVER_FATAL("out of memory");
            return e;
        }
    }
    query_result *r = NULL;
    rc = sm_result_decode(v + off, val_len - off, &r);
    if (rc != SM_CODEC_OK)
        QUIVER_FATAL("de-dup table: outcome at meta key sm/dd/%" PRIu64 " does not decode (%s); the database is damaged",
                     dseq, sm_codec_strerror(rc));
    if ((v[24] & SM_DEDUP_FLAG_TRUNCATED) && r->status == QUERY_OK) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "this request was already applied (log index %" PRIu64 "); its result was too large to keep for a "
                 "retry, so only its effects remain",
                 first_index);
        query_result_free(r);
        r = sm_result_error(QUERY_ERR_LIMIT, msg);
        if (r == NULL) QUIVER_FATAL("out of memory");
    }
    (void)s;
    return r;
}

typedef struct dd_load_ctx {
    sm *s;
    char *err;
    size_t err_size;
    bool failed;
} dd_load_ctx;

static bool dd_load_one(void *ctx, const void *key, size_t key_len, const void *val, size_t val_len) {
    dd_load_ctx *c = ctx;
    sm *s = c->s;
    if (key_len != SM_DEDUP_KEY_BYTES || val_len < SM_DEDUP_VALUE_HEADER_BYTES ||
        s->dd_count == QUIVER_DEDUP_TABLE_COUNT_MAX) {
        snprintf(c->err, c->err_size,
                 "the de-duplication table in the database's default column family does not decode "
                 "(meta key of %zu bytes, value of %zu bytes, %u ids already loaded): the database is damaged; "
                 "restore it from a replica",
                 key_len, val_len, s->dd_count);
        c->failed = true;
        return false;
    }
    const uint8_t *v = val;
    sm_request_id id = {sm_load_u64(v), sm_load_u64(v + 8)};
    uint64_t dseq = sm_load_u64((const uint8_t *)key + SM_DEDUP_PREFIX_BYTES);
    uint64_t known;
    if (id.origin == 0 || id.seq == 0 || dd_lookup(s, id, &known) || dseq < s->dd_next_seq) {
        snprintf(c->err, c->err_size,
                 "the de-duplication table entry at meta key sm/dd/%" PRIu64 " is invalid (zero or repeated request "
                 "id, or out of order): the database is damaged; restore it from a replica",
                 dseq);
        c->failed = true;
        return false;
    }
    dd_insert_memory(s, id, dseq);
    s->dd_next_seq = dseq + 1;
    return true;
}

/* ------------------------------------------------------------------ */
/* Applying one entry (apply thread)                                   */
/* ------------------------------------------------------------------ */

static query_result *run_command(qs_txn *txn, const sm_command *c) {
    if (c->kind == SM_CMD_GRAPH_DELETE) {
        uint32_t graph_id;
        int rc = qs_graph_lookup(qs_txn_view(txn), c->graph.ptr, c->graph.len, &graph_id);
        if (rc == QS_NOT_FOUND) return sm_result_error(QUERY_ERR_NO_GRAPH, "Invalid graph operation on empty key");
        QUIVER_ASSERT(rc == QS_OK);
        rc = qs_graph_delete(txn, graph_id);
        QUIVER_ASSERT(rc == QS_OK);
        return sm_result_empty(true);
    }
    QUIVER_ASSERT(c->kind == SM_CMD_QUERY);
    query_request req;
    memset(&req, 0, sizeof req);
    req.graph = c->graph.ptr;
    req.graph_len = c->graph.len;
    req.text = c->text.ptr;
    req.text_len = c->text.len;
    req.timestamp_ms = c->timestamp_ms;
    req.seed = c->seed;
    req.timeout_ms = 0;  /* writes must finish identically everywhere: budgets, never time */
    req.work_max = c->work_max;
    req.memory_max_bytes = c->memory_max_bytes;
    req.read_only = false;
    req.explain = false;
    return query_run_write(txn, &req);
}

/* The first command ever applied names the cluster: its request id, the
 * leader's clock and random seed, and its index are the same on every
 * replica (they travel in the entry) and differ between clusters (the seed
 * and the request id origin are random).  Stored in the same transaction
 * as the command, so a replica has it exactly when it has that command. */
static void cluster_id_derive(sm *s, qs_txn *txn, const sm_command *c, uint64_t index) {
    uint8_t in[40];
    sm_store_u64(in, c->request_id.origin);
    sm_store_u64(in + 8, c->request_id.seq);
    sm_store_u64(in + 16, (uint64_t)c->timestamp_ms);
    sm_store_u64(in + 24, c->seed);
    sm_store_u64(in + 32, index);
    XXH128_hash_t h = XXH3_128bits(in, sizeof in);
    sm_store_u64(s->cluster_id, h.high64);
    sm_store_u64(s->cluster_id + 8, h.low64);
    int rc = qs_meta_put(txn, SM_CLUSTER_ID_KEY, strlen(SM_CLUSTER_ID_KEY), s->cluster_id, SM_CLUSTER_ID_BYTES);
    QUIVER_ASSERT(rc == QS_OK);
    atomic_store(&s->cluster_id_set, true);
}

bool sm_cluster_id(const sm *s, uint8_t out[SM_CLUSTER_ID_BYTES]) {
    QUIVER_ASSERT(s != NULL && out != NULL);
    if (!atomic_load(&((sm *)s)->cluster_id_set)) {
        memset(out, 0, SM_CLUSTER_ID_BYTES);
        return false;
    }
    memcpy(out, s->cluster_id, SM_CLUSTER_ID_BYTES);
    return true;
}

static void apply_entry(sm *s, sm_slot *slot) {
    uint64_t applied = atomic_load(&s->applied_index);
    slot->outcome_count = 0;
    slot->outcomes = NULL;
    if (slot->index <= applied) return; /* replay: RocksDB already has it */

    q_arena scratch;
    q_arena_init(&scratch, SM_ENTRY_ARENA_SIZE_MAX_BYTES);
    sm_command *cmds = NULL;
    uint32_t count = 0;
    int rc = sm_entry_decode(slot->buf, slot->len, &scratch, &cmds, &count);
    qs_txn *txn = qs_txn_begin(s->db);
    QUIVER_ASSERT(txn != NULL);
    if (rc == SM_CODEC_VERSION)
        QUIVER_FATAL("the log entry at index %" PRIu64 " has format version %u, which this quiverd does not know: "
                     "a newer node proposed it; upgrade this node (nothing was applied)",
                     slot->index, slot->len > 0 ? (unsigned)slot->buf[0] : 0u);
    if (rc != SM_CODEC_OK) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "internal error: the log entry at index %" PRIu64 " does not decode (%s); none of its commands was applied",
                 slot->index, sm_codec_strerror(rc));
        fprintf(stderr, "quiver: %s\n", msg);
        slot->outcomes = calloc(1, sizeof *slot->outcomes);
        if (slot->outcomes == NULL) QUIVER_FATAL("out of memory");
        slot->outcomes[0].id = (sm_request_id){0, 0};
        slot->outcomes[0].result = sm_result_error(QUERY_ERR_RUNTIME, msg);
        if (slot->outcomes[0].result == NULL) QUIVER_FATAL("out of memory");
        slot->outcome_count = 1;
    } else {
        slot->outcomes = calloc(count, sizeof *slot->outcomes);
        if (slot->outcomes == NULL) QUIVER_FATAL("out of memory");
        if (!atomic_load(&s->cluster_id_set) && count > 0) cluster_id_derive(s, txn, &cmds[0], slot->index);
        for (uint32_t i = 0; i < count; i++) {
            const sm_command *c = &cmds[i];
            query_result *r;
            uint64_t dseq;
            uint64_t statement_hash = sm_statement_hash(c);
            if (dd_lookup(s, c->request_id, &dseq)) {
                r = dd_outcome(s, txn, c->request_id, dseq, statement_hash, &scratch);
            } else {
                qs_txn_savepoint(txn);
                r = run_command(txn, c);
                if (r == NULL) QUIVER_FATAL("out of memory running a command at index %" PRIu64, slot->index);
                /* malloc failed (not a limit: limits are deterministic).  Another
                 * replica would not have failed there, so replying with an error
                 * and moving on would diverge: stop, and let the restart replay. */
                if (r->out_of_memory)
                    QUIVER_FATAL("out of memory (malloc failed) applying the command at log index %" PRIu64
                                 "; stopping rather than diverging from the other replicas (restart replays it)",
                                 slot->index);
                if (r->status == QUERY_OK) qs_txn_release_savepoint(txn);
                else qs_txn_rollback_to_savepoint(txn);
                dd_record(s, txn, c->request_id, slot->index, statement_hash, r);
            }
            slot->outcomes[i].id = c->request_id;
            slot->outcomes[i].result = r;
            slot->outcome_count = i + 1;
        }
    }
    qs_txn_commit(txn, slot->index);
    q_arena_free(&scratch);
    /* The applied index only goes up: raft gives increasing indexes and
     * storage asserted the same on commit.  apply_main publishes it
     * together with the results (see there). */
    QUIVER_ASSERT(slot->index > applied);
}

static void *apply_main(void *arg) {
    sm *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        uint64_t applied = atomic_load(&s->applied_index);
        if (s->sync_index > s->flushed_index && applied >= s->sync_index) {
            pthread_mutex_unlock(&s->mu);
            qs_flush(s->db);
            pthread_mutex_lock(&s->mu);
            s->flushed_index = applied;
            pthread_cond_broadcast(&s->progress_cond);
            continue;
        }
        if (s->applied == s->tail) {
            if (s->stopping) break;
            pthread_cond_wait(&s->work_cond, &s->mu);
            continue;
        }
        sm_slot *slot = &s->ring[s->applied % QUIVER_APPLY_QUEUE_COUNT_MAX];
        pthread_mutex_unlock(&s->mu);
        apply_entry(s, slot);
        free(slot->buf); /* the decoded commands pointed into it; done with them */
        slot->buf = NULL;
        pthread_mutex_lock(&s->mu);
        QUIVER_ASSERT(s->queued_bytes >= slot->len);
        s->queued_bytes -= slot->len;
        /* The applied index moves in the same critical section as the
         * results become deliverable: whoever sees the new index (a read
         * waiting for it, sm_deliver) also finds the entry's outcomes. */
        uint64_t before = atomic_load(&s->applied_index);
        if (slot->index > before) atomic_store(&s->applied_index, slot->index);
        s->applied++;
        pthread_cond_broadcast(&s->progress_cond);
        pthread_mutex_unlock(&s->mu);
        s->wake(s->wake_ctx); /* also for entries without results: applied advanced */
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Loop thread side                                                    */
/* ------------------------------------------------------------------ */

void sm_deliver(sm *s) {
    if (s->delivering) return; /* an on_result callback re-entered: the outer loop continues */
    s->delivering = true;
    pthread_mutex_lock(&s->mu);
    while (s->head < s->applied) {
        sm_slot *slot = &s->ring[s->head % QUIVER_APPLY_QUEUE_COUNT_MAX];
        uint64_t index = slot->index;
        uint32_t n = slot->outcome_count;
        sm_outcome *outs = slot->outcomes;
        slot->outcomes = NULL;
        slot->outcome_count = 0;
        s->head++;
        pthread_cond_broadcast(&s->progress_cond);
        pthread_mutex_unlock(&s->mu);
        for (uint32_t i = 0; i < n; i++) s->on_result(s->ctx, outs[i].id, index, outs[i].result);
        free(outs);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    s->delivering = false;
}

void sm_enqueue(sm *s, uint64_t index, const void *buf, size_t len) {
    QUIVER_ASSERT(s != NULL && buf != NULL);
    QUIVER_ASSERT(len <= QUIVER_ENTRY_SIZE_MAX_BYTES);
    QUIVER_ASSERT(index > s->last_enqueued_index);
    /* Called from fsm->apply, never from inside an on_result callback (raft
     * is not re-entered from there); delivering in order relies on it. */
    QUIVER_ASSERT(!s->delivering);
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) QUIVER_FATAL("out of memory copying a log entry of %zu bytes", len);
    memcpy(copy, buf, len);
    pthread_mutex_lock(&s->mu);
    QUIVER_ASSERT(!s->stopping);
    while (s->tail - s->head == QUIVER_APPLY_QUEUE_COUNT_MAX ||
           (s->queued_bytes > 0 && s->queued_bytes + len > SM_APPLY_QUEUE_SIZE_MAX_BYTES)) {
        if (s->head < s->applied) {
            /* Free slots by delivering what is done: only this thread can. */
            pthread_mutex_unlock(&s->mu);
            sm_deliver(s);
            pthread_mutex_lock(&s->mu);
        } else {
            pthread_cond_wait(&s->progress_cond, &s->mu);
        }
    }
    sm_slot *slot = &s->ring[s->tail % QUIVER_APPLY_QUEUE_COUNT_MAX];
    slot->index = index;
    slot->buf = copy;
    slot->len = len;
    slot->outcome_count = 0;
    slot->outcomes = NULL;
    s->tail++;
    s->queued_bytes += len;
    s->last_enqueued_index = index;
    pthread_cond_signal(&s->work_cond);
    pthread_mutex_unlock(&s->mu);
}

uint64_t sm_applied_index(const sm *s) {
    return atomic_load(&((sm *)s)->applied_index);
}

void sm_sync(sm *s, uint64_t index) {
    QUIVER_ASSERT(s != NULL);
    pthread_mutex_lock(&s->mu);
    /* Only entries handed to us can be waited for; indexes past the last
     * one are barriers or configuration entries with nothing to apply. */
    uint64_t target = index < s->last_enqueued_index ? index : s->last_enqueued_index;
    if (s->flushed_index < target) {
        /* "Applied" is not "durable" (WAL off): the apply thread flushes
         * once it has applied target, and reports through flushed_index. */
        if (target > s->sync_index) s->sync_index = target;
        pthread_cond_signal(&s->work_cond);
        while (s->flushed_index < target) pthread_cond_wait(&s->progress_cond, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

uint32_t sm_dedup_count(sm *s) { return atomic_load(&s->dd_count_public); }

/* ------------------------------------------------------------------ */
/* Open / close                                                        */
/* ------------------------------------------------------------------ */

static void sm_free(sm *s) {
    free(s->ring);
    free(s->dd_fifo);
    free(s->dd_hash);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work_cond);
    pthread_cond_destroy(&s->progress_cond);
    free(s);
}

int sm_open(qs_db *db, sm_wake_fn wake, void *wake_ctx, sm_result_fn on_result, void *ctx, sm **out, char *err,
            size_t err_size_bytes) {
    QUIVER_ASSERT(db != NULL && wake != NULL && on_result != NULL && out != NULL && err != NULL);
    sm *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, err_size_bytes, "out of memory starting the state machine");
        return -1;
    }
    s->db = db;
    s->wake = wake;
    s->wake_ctx = wake_ctx;
    s->on_result = on_result;
    s->ctx = ctx;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cond, NULL);
    pthread_cond_init(&s->progress_cond, NULL);
    s->ring = calloc(QUIVER_APPLY_QUEUE_COUNT_MAX, sizeof *s->ring);
    s->dd_fifo = calloc(QUIVER_DEDUP_TABLE_COUNT_MAX, sizeof *s->dd_fifo);
    s->dd_hash = malloc(SM_DEDUP_HASH_SLOTS * sizeof *s->dd_hash);
    if (s->ring == NULL || s->dd_fifo == NULL || s->dd_hash == NULL) {
        snprintf(err, err_size_bytes, "out of memory starting the state machine");
        sm_free(s);
        return -1;
    }
    memset(s->dd_hash, 0xff, SM_DEDUP_HASH_SLOTS * sizeof *s->dd_hash);
    uint64_t applied = qs_applied_index(db);
    atomic_store(&s->applied_index, applied);
    s->flushed_index = applied; /* what RocksDB reported at open is on disk */

    qs_view *v = qs_view_open_snapshot(db);
    QUIVER_ASSERT(v != NULL);
    dd_load_ctx lc = {s, err, err_size_bytes, false};
    int rc = qs_meta_scan(v, SM_DEDUP_PREFIX, SM_DEDUP_PREFIX_BYTES, dd_load_one, &lc);
    if (!lc.failed && rc == QS_OK) {
        q_arena a;
        q_arena_init(&a, 4096);
        void *val = NULL;
        size_t val_len = 0;
        int grc = qs_meta_get(v, SM_CLUSTER_ID_KEY, strlen(SM_CLUSTER_ID_KEY), &a, &val, &val_len);
        if (grc == QS_OK && val_len == SM_CLUSTER_ID_BYTES) {
            memcpy(s->cluster_id, val, SM_CLUSTER_ID_BYTES);
            atomic_store(&s->cluster_id_set, true);
        } else if (grc == QS_OK) {
            snprintf(err, err_size_bytes, "the cluster id in the database (meta key %s) is %zu bytes, not %d: the "
                     "database is damaged; restore it from a replica", SM_CLUSTER_ID_KEY, val_len, SM_CLUSTER_ID_BYTES);
            lc.failed = true;
        } else {
            QUIVER_ASSERT(grc == QS_NOT_FOUND);
        }
        q_arena_free(&a);
    }
    qs_view_close(v);
    if (lc.failed || rc != QS_OK) {
        if (!lc.failed) snprintf(err, err_size_bytes, "cannot read the de-duplication table (storage status %d)", rc);
        sm_free(s);
        return -1;
    }
    /* The stack the query engine's stack budget assumes (limits.h): the
     * same on every replica, whatever `ulimit -s` says. */
    pthread_attr_t attr;
    rc = pthread_attr_init(&attr);
    if (rc == 0) rc = pthread_attr_setstacksize(&attr, QUIVER_QUERY_THREAD_STACK_SIZE_BYTES);
    if (rc == 0) rc = pthread_create(&s->thread, &attr, apply_main, s);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        snprintf(err, err_size_bytes, "cannot start the apply thread: %s", strerror(rc));
        sm_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void sm_close(sm *s) {
    QUIVER_ASSERT(s != NULL);
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->work_cond);
    pthread_mutex_unlock(&s->mu);
    int rc = pthread_join(s->thread, NULL);
    QUIVER_ASSERT(rc == 0);
    sm_deliver(s);
    QUIVER_ASSERT(s->head == s->tail);
    sm_free(s);
}
