/*
 * result_codec.h -- a query_result (query/query.h) as bytes, and back.
 *
 * Two users: the state machine's de-duplication table, which stores the first
 * outcome of every request id in RocksDB so that a retried request gets the
 * same answer without being applied twice (DESIGN.md 3), and, in the cluster
 * issue, a follower relaying a write to the leader, which sends the result
 * back over the peer link.  Both need the whole result: status, error text,
 * column names, every cell (nodes and relationships with their ids, label /
 * type ids AND names, properties with key ids and names, paths), statistics.
 *
 * Format, version 1, big-endian like the rest of Quiver's formats:
 *
 *     u8   version = SM_RESULT_VERSION
 *     u8   status (query_status)   u8 wrote (0/1)
 *     u32  error length, bytes     (0 when status is QUERY_OK)
 *     10 x u64 statistics in query_stats order, then f64 execution_time_ms
 *     u32  column count, then per column u32 length + bytes
 *     u64  row count, then row_count * column_count values, row-major
 *     value := u8 type tag (qv_type) + payload:
 *         NULL -; BOOL u8; INT i64; DOUBLE f64 (IEEE bits);
 *         STRING u32 len + bytes; LIST u32 count + values;
 *         MAP u32 count + (u32 len + key bytes, value)*;
 *         NODE u64 id, u8 loaded, u32 label count, (u32 id, str name)*, props
 *         EDGE u64 id, u64 src, u64 dst, u32 type id, u8 loaded, str type name, props
 *         PATH u32 node count (>= 1), node payloads, then node_count-1 edge payloads
 *         props := u32 count, (u32 key id, str key name, value)*
 *     u64  XXH3-64 of every byte above
 *
 * Decoding never trusts the input: every count and length is checked against
 * the bytes left and the limits in limits.h, nesting against
 * QUIVER_VALUE_DEPTH_MAX, and the result is built in a fresh arena capped at
 * the caller's size bound.  Encoding refuses results over the caller's size
 * bound (SM_CODEC_LIMIT) instead of producing them.
 *
 * Thread: pure functions, any thread.
 */
#ifndef QUIVER_STATEMACHINE_RESULT_CODEC_H
#define QUIVER_STATEMACHINE_RESULT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "../query/query.h"
#include "command.h" /* sm_codec_status */

#define SM_RESULT_VERSION 1

/* Encode r.  On success *buf is malloc'd (*len bytes), owned by the caller
 * (free()).  size_max_bytes bounds the encoding (0: QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES).
 * Returns SM_CODEC_OK, SM_CODEC_LIMIT (encoding would exceed size_max_bytes,
 * a value nests deeper than QUIVER_VALUE_DEPTH_MAX), SM_CODEC_INVALID (a value
 * of unknown type, a path without nodes), SM_CODEC_NOMEM; *buf untouched on
 * error.  r is only read.  Thread: any. */
int sm_result_encode(const query_result *r, size_t size_max_bytes, uint8_t **buf, size_t *len);

/* Decode a result.  On success *out is a new query_result owning its arena
 * (free with query_result_free); strings are copied, buf may be freed at
 * once.  Returns SM_CODEC_OK, SM_CODEC_MALFORMED (truncated, trailing bytes,
 * checksum, unknown tag or status), SM_CODEC_VERSION, SM_CODEC_LIMIT (a count
 * over limits.h, depth over QUIVER_VALUE_DEPTH_MAX), SM_CODEC_NOMEM; *out is
 * untouched on error.  Thread: any. */
int sm_result_decode(const void *buf, size_t len, query_result **out);

/* A new result with status (not QUERY_OK) and a copy of the message: the
 * state machine's own errors (graph not found, undecodable entry) take the
 * same path to clients as query errors.  Returns NULL only when malloc fails.
 * The caller owns it (query_result_free).  Thread: any. */
query_result *sm_result_error(query_status status, const char *message);

/* A new empty successful result (no columns, no rows, zero statistics)
 * with wrote as given.  NULL only when malloc fails.  Thread: any. */
query_result *sm_result_empty(bool wrote);

#endif
