/*
 * command.h -- what one Raft log entry holds (DESIGN.md section 3).
 *
 * One entry is a batch of commands: the proposer (raft/replication.c) packs
 * every write proposed during one loop iteration into a single entry (group
 * commit), and the apply thread (statemachine.c) executes them in order, each
 * in its own savepoint.  A command carries everything a replica needs to
 * execute the statement deterministically: the graph name, the Cypher text
 * (parameters travel inside it as FalkorDB's "CYPHER name=value ..."
 * prefix), the leader's wall clock at proposal time (timestamp()) and a
 * random seed (rand()), plus the client's request id for de-duplication.
 *
 * Wire format, version 2.  All integers big-endian (like the storage keys),
 * so a hex dump reads naturally and no host byte order leaks into the log:
 *
 *     u8   version                     = SM_ENTRY_VERSION (2)
 *     u32  command count               1 .. QUIVER_ENTRY_COMMANDS_COUNT_MAX
 *     per command:
 *         u8   kind                    sm_command_kind
 *         u64  request id origin       != 0
 *         u64  request id seq          != 0
 *         i64  timestamp_ms
 *         u64  seed
 *         u64  work_max                work budget in query work units; 0 = none  (v2)
 *         u64  memory_max_bytes        query memory cap; 0 = the default          (v2)
 *         u32  graph length            1 .. QUIVER_GRAPH_NAME_SIZE_MAX_BYTES
 *         ...  graph bytes
 *         u32  text length             0 .. QUIVER_QUERY_TEXT_SIZE_MAX_BYTES
 *         ...  text bytes              (empty for SM_CMD_GRAPH_DELETE)
 *     0..7 zero bytes of padding       so the whole entry is a multiple of 8
 *                                      bytes: raft 0.22.1's libuv backend
 *                                      refuses other lengths ("entry buffers
 *                                      must be 8-byte aligned", uv_append.c)
 *     u64  XXH3-64 of every byte above (xxHash spec, seed 0)
 *
 * The whole entry is at most QUIVER_ENTRY_SIZE_MAX_BYTES.  The checksum
 * guards against a log that decodes to something else than was proposed
 * (raft's segments have their own CRC; this one also covers our own code
 * paths and the relay between peers).  A new field means a new version byte;
 * decoders refuse versions they do not know (SM_CODEC_VERSION), and the
 * apply thread stops the process on it: a replica running an older binary
 * must not apply entries it would misread (fail-stop rather than
 * divergence).  Upgrade every node before the leader proposes a new version.
 *
 * Version 1 (no budgets) is still decoded, with work_max 0 and
 * memory_max_bytes 0: entries written before budgets existed replay exactly
 * as they first ran.  Version 2 (issue 7) carries the budgets the LEADER
 * chose (its --write-work-max and --query-memory-max-bytes), so a write
 * that exceeds them fails identically on every replica whatever their own
 * flags say.
 *
 * Thread: every function here is pure (no global state); any thread.
 */
#ifndef QUIVER_STATEMACHINE_COMMAND_H
#define QUIVER_STATEMACHINE_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/arena.h"
#include "../common/limits.h"
#include "../common/value.h"

#define SM_ENTRY_VERSION 2
#define SM_ENTRY_VERSION_V1 1 /* still decoded: no budget fields */
/* Fixed bytes around the commands: version + count + checksum (padding
 * not included: see sm_entry_padded_size). */
#define SM_ENTRY_OVERHEAD_BYTES (1 + 4 + 8)
/* Entry lengths are multiples of this (raft's libuv backend requires it). */
#define SM_ENTRY_ALIGN_BYTES 8

/* The encoded size of an entry whose overhead and commands add up to
 * unpadded_bytes: rounded up to SM_ENTRY_ALIGN_BYTES.  Thread: any. */
static inline size_t sm_entry_padded_size(size_t unpadded_bytes) {
    return (unpadded_bytes + SM_ENTRY_ALIGN_BYTES - 1) / SM_ENTRY_ALIGN_BYTES * SM_ENTRY_ALIGN_BYTES;
}
/* Fixed bytes of one command besides graph and text (version 2, and the
 * smaller version 1 without the two budget fields). */
#define SM_COMMAND_FIXED_BYTES (1 + 8 + 8 + 8 + 8 + 8 + 8 + 4 + 4)
#define SM_COMMAND_FIXED_BYTES_V1 (1 + 8 + 8 + 8 + 8 + 4 + 4)

/* A client request id: unique per write request across the cluster's life.
 * origin: random 64-bit value chosen once per quiverd process (never 0);
 * seq: counter from 1 within that process.  A retry of the same request (the
 * client's own retry after REPL_UNKNOWN_OUTCOME, or a follower's relay)
 * reuses the id, and the state machine answers with the first outcome. */
typedef struct sm_request_id {
    uint64_t origin;
    uint64_t seq;
} sm_request_id;

static inline bool sm_request_id_equal(sm_request_id a, sm_request_id b) {
    return a.origin == b.origin && a.seq == b.seq;
}

typedef enum sm_command_kind {
    SM_CMD_QUERY = 1,        /* run text (a Cypher write) with query_run_write */
    SM_CMD_GRAPH_DELETE = 2, /* GRAPH.DELETE graph; text empty */
} sm_command_kind;

typedef struct sm_command {
    sm_command_kind kind;
    sm_request_id request_id;
    int64_t timestamp_ms;    /* leader's wall clock at proposal (ms since the epoch): timestamp() */
    uint64_t seed;           /* seeds rand() */
    uint64_t work_max;       /* query_request.work_max: set by the proposing leader; 0 = none */
    uint64_t memory_max_bytes; /* query_request.memory_max_bytes: set by the leader; 0 = default */
    qv_str graph;            /* graph name */
    qv_str text;             /* Cypher text, may start with CYPHER params; empty for GRAPH_DELETE */
} sm_command;

typedef enum sm_codec_status {
    SM_CODEC_OK = 0,
    SM_CODEC_INVALID = -1,   /* encode: a command breaks a rule above (kind, id 0, empty graph) */
    SM_CODEC_LIMIT = -2,     /* a count or length exceeds its limit (limits.h) */
    SM_CODEC_MALFORMED = -3, /* decode: truncated, trailing bytes, bad checksum, bad field */
    SM_CODEC_VERSION = -4,   /* decode: version byte we do not know */
    SM_CODEC_NOMEM = -5,     /* malloc or the arena failed */
} sm_codec_status;

/* Bytes one command takes in an entry (fixed part + graph + text).  The
 * proposer sums these plus SM_ENTRY_OVERHEAD_BYTES, pads the sum with
 * sm_entry_padded_size, and keeps it under QUIVER_ENTRY_SIZE_MAX_BYTES.
 * Thread: any. */
size_t sm_command_encoded_size(const sm_command *cmd);

/* Check one command against the rules above without encoding it: returns
 * SM_CODEC_OK, SM_CODEC_INVALID (kind unknown, request id origin or seq 0,
 * empty graph name) or SM_CODEC_LIMIT (graph name over
 * QUIVER_GRAPH_NAME_SIZE_MAX_BYTES, text over
 * QUIVER_QUERY_TEXT_SIZE_MAX_BYTES).  Thread: any. */
int sm_command_check(const sm_command *cmd);

/* Encode count commands (1 .. QUIVER_ENTRY_COMMANDS_COUNT_MAX) as one entry.
 * On success *buf is a malloc'd buffer of *len bytes, owned by the caller
 * (free()).  Returns SM_CODEC_OK, SM_CODEC_INVALID or SM_CODEC_LIMIT (see
 * sm_command_check; also count 0 -> INVALID, count or total size over the
 * limits -> LIMIT), SM_CODEC_NOMEM; *buf is untouched on error.  *len is
 * always a multiple of SM_ENTRY_ALIGN_BYTES.
 * Thread: any. */
int sm_entry_encode(const sm_command *cmds, uint32_t count, uint8_t **buf, size_t *len);

/* The encoded size of an entry of these commands (padded: what
 * sm_entry_encode writes), after the same checks: SM_CODEC_OK with *len,
 * or SM_CODEC_INVALID / SM_CODEC_LIMIT as sm_entry_encode.  Thread: any. */
int sm_entry_size(const sm_command *cmds, uint32_t count, size_t *len);

/* As sm_entry_encode, but into dst, which the caller owns and which must be
 * exactly sm_entry_size bytes (else SM_CODEC_INVALID): the proposer encodes
 * straight into raft's buffer, one copy of each text instead of three (a
 * copy costs the loop thread milliseconds per MiB on a large write).
 * Thread: any. */
int sm_entry_encode_into(const sm_command *cmds, uint32_t count, uint8_t *dst, size_t dst_len);

/* Decode an entry of version 1 or 2.  Never trusts the input: every length is checked against
 * the remaining buffer and against the limits, the checksum is verified
 * first, trailing bytes other than the zero padding (fewer than
 * SM_ENTRY_ALIGN_BYTES) are refused.  An unpadded entry is accepted too.  On success *cmds is an array of
 * *count commands allocated in arena a; their graph and text point INTO buf
 * (zero copy), so buf must outlive the commands.  Returns SM_CODEC_OK,
 * SM_CODEC_MALFORMED, SM_CODEC_VERSION (a version other than 1 and 2),
 * SM_CODEC_LIMIT or SM_CODEC_NOMEM;
 * *cmds and *count are untouched on error.  Thread: any (the arena's). */
int sm_entry_decode(const void *buf, size_t len, q_arena *a, sm_command **cmds, uint32_t *count);

/* Short English name of a status, for logs and error replies. */
const char *sm_codec_strerror(int status);

#endif
