/*
 * forward.h -- writes through any node: the peer link from a node to the
 * raft leader (DESIGN.md 1, issue 3).  The design and its trade-offs are in
 * the top comment of forward.c.
 *
 * Two halves:
 *   - a codec (pure functions, any thread): the forward request a node
 *     sends (a write command with the request id its ORIGIN node assigned,
 *     or a read-index request), the leader's response (status, log index,
 *     and the encoded query_result of statemachine/result_codec.h or an
 *     error text), and an incremental parser for the RESP replies that carry
 *     responses back;
 *   - the forwarder (loop thread): fwd_write / fwd_read_index run a command
 *     on whichever node leads now -- this one (repl_propose / repl_read_barrier)
 *     or another over a pipelined connection to its client port --, retry
 *     with the SAME request id after a leader change until a deadline, and
 *     answer "outcome unknown: ..." when the outcome cannot be known.
 */
#ifndef QUIVER_NODE_FORWARD_H
#define QUIVER_NODE_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "../raft/replication.h"
#include "../statemachine/command.h"
#include "offload.h"
#include "server.h"

#define FWD_VERSION 1
#define FWD_INFLIGHT_COUNT_MAX 512                    /* sent on one link, not yet answered */
#define FWD_INFLIGHT_SIZE_MAX_BYTES (32u * 1024 * 1024) /* request bytes sent, not yet answered */
#define FWD_WAITING_COUNT_MAX 16384                   /* queued for a leader; past it: busy (< the de-dup table) */
#define FWD_RETRY_INTERVAL_MS 10                      /* deadline / leader-change checks */
#define FWD_RECONNECT_BACKOFF_MS 50                   /* between connection attempts to one peer */
#define FWD_ERROR_SIZE_MAX_BYTES 512
/* A response holds a result of at most QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES. */
#define FWD_REPLY_SIZE_MAX_BYTES (QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES + 4096)

/* The command name on the leader's client port. */
#define FWD_COMMAND_NAME "QUIVER.FORWARD"

typedef enum fwd_type {
    FWD_TYPE_WRITE = 1,      /* propose cmd (its request id kept) and answer its outcome */
    FWD_TYPE_READ_INDEX = 2, /* confirm leadership (read barrier) and answer the index to wait for */
} fwd_type;

/* ---- codec ------------------------------------------------------------ */

/* Request, version 1, big-endian:
 *     u8 version, u8 type
 *     WRITE: u8 command kind, u64 request id origin, u64 seq,
 *            u32 graph length + bytes, u32 text length + bytes
 *     READ_INDEX: nothing more
 *     u64 XXH3-64 of every byte above
 * cmd.timestamp_ms / seed are not sent: the leader sets them. */
typedef struct fwd_request {
    fwd_type type;
    sm_command cmd; /* WRITE only: kind, request_id, graph, text */
} fwd_request;

/* Response, version 1, big-endian:
 *     u8 version, u8 type (echoes the request), u8 status (repl_status_code),
 *     u64 log index, u32 payload length + bytes, u64 XXH3-64 of the above.
 * payload: WRITE + REPL_OK: the encoded query_result (result_codec.h);
 * otherwise the error text for the client (may be empty). */
typedef struct fwd_response {
    fwd_type type;
    repl_status_code status;
    uint64_t index;
    const uint8_t *payload;
    size_t payload_len;
} fwd_response;

/* Encode q.  On success *buf is malloc'd (*len bytes; caller frees).
 * Returns SM_CODEC_OK, SM_CODEC_INVALID (unknown type; WRITE whose command
 * fails sm_command_check as INVALID), SM_CODEC_LIMIT (graph or text over
 * limits.h), SM_CODEC_NOMEM.  Thread: any. */
int fwd_request_encode(const fwd_request *q, uint8_t **buf, size_t *len);

/* Decode a request.  graph/text of out->cmd point INTO buf (keep buf).
 * Returns SM_CODEC_OK, SM_CODEC_MALFORMED (truncated, trailing bytes,
 * checksum, unknown type or kind, id 0, empty graph), SM_CODEC_VERSION,
 * SM_CODEC_LIMIT; *out untouched on error.  Thread: any. */
int fwd_request_decode(const void *buf, size_t len, fwd_request *out);

/* Encode r (payload_len bytes at payload).  Returns SM_CODEC_OK,
 * SM_CODEC_INVALID (unknown type or status), SM_CODEC_LIMIT (payload over
 * FWD_REPLY_SIZE_MAX_BYTES), SM_CODEC_NOMEM.  Thread: any. */
int fwd_response_encode(const fwd_response *r, uint8_t **buf, size_t *len);

/* Decode a response; payload points INTO buf.  Returns SM_CODEC_OK,
 * SM_CODEC_MALFORMED, SM_CODEC_VERSION, SM_CODEC_LIMIT; *out untouched on
 * error.  Thread: any. */
int fwd_response_decode(const void *buf, size_t len, fwd_response *out);

/* Incremental parser for the RESP2 replies of a forwarding link: a bulk
 * string ($), an error (-) or a status (+) line; anything else is a
 * protocol error.  Bytes are copied in (bounded by size_max_bytes of
 * unparsed input). */
typedef struct fwd_reply_parser {
    char *buf;
    size_t len, off, cap;
    size_t size_max_bytes;
} fwd_reply_parser;

typedef struct fwd_reply {
    char kind;        /* '$', '-' or '+' */
    const char *data; /* into the parser's buffer: valid until the next feed */
    size_t len;
} fwd_reply;

void fwd_reply_parser_init(fwd_reply_parser *p, size_t size_max_bytes);
void fwd_reply_parser_free(fwd_reply_parser *p);
/* Hand over the parser's buffer, which holds the reply fwd_reply_next just
 * returned (its data pointers stay valid in it): the caller owns and frees
 * the result (may be NULL).  The parser keeps a copy of only the bytes
 * after that reply (at most what the last feed added) and goes on.  Lets a
 * large reply be decoded elsewhere without copying it. */
char *fwd_reply_parser_detach(fwd_reply_parser *p);
/* Append bytes.  Returns 0, or -1 when the unparsed input would exceed
 * size_max_bytes (the caller closes the link). */
int fwd_reply_feed(fwd_reply_parser *p, const void *data, size_t len);
/* Next complete reply: 1 (out filled), 0 (need more bytes), -1 (protocol
 * error: a type other than $ - +, a bad length, missing CRLF). */
int fwd_reply_next(fwd_reply_parser *p, fwd_reply *out);

/* ---- the forwarder (loop thread) --------------------------------------- */

typedef struct fwd fwd;

/* Peer client addresses, by raft id: where the forwarder connects when that
 * node leads (config.h derives them from --peers). */
typedef struct fwd_peer {
    uint64_t id;
    char client_address[REPL_ADDRESS_SIZE_MAX_BYTES]; /* "host:port" */
} fwd_peer;

/* Start a forwarder for this node (self_id) on loop, proposing through r.
 * pool: where large responses are decoded (NULL: on the loop thread); it
 * must outlive the forwarder's last decode (main stops it after raft).
 * peers: every member (self included; copied).  timeout_ms: how long a
 * request may wait for a leader and its answer, retries included.
 * Returns 0 and *out.  Thread: the loop thread. */
int fwd_start(uv_loop_t *loop, repl *r, offload *pool, uint64_t self_id, const fwd_peer *peers, uint32_t peer_count,
              uint64_t timeout_ms, fwd **out);

/* Run cmd (request id set by the caller, the origin node) on the leader.
 * cb is called exactly once on the loop thread, never inside this call,
 * with the arguments of repl_reply_fn: REPL_OK + result (callee frees it)
 * + index; or REPL_BUSY / REPL_INVALID (not applied); REPL_NOT_LEADER (no
 * leader answered before the deadline; not applied); REPL_UNKNOWN_OUTCOME
 * ("outcome unknown: ..."; it may have been applied, once at most);
 * REPL_SHUTTING_DOWN (fwd_stop; not applied unless the text says the
 * outcome is unknown -- then status is REPL_UNKNOWN_OUTCOME).
 * cmd and its strings are copied.  Not after fwd_stop.  Thread: the loop
 * thread. */
void fwd_write(fwd *f, const sm_command *cmd, repl_reply_fn cb, void *ctx);

/* fwd_write without copying the text: text_owned (malloc'd, == cmd->text.ptr,
 * NUL-terminated at cmd->text.len; NULL: copy as fwd_write) moves into the
 * forwarder, which frees it.  A large text is then copied once on the loop
 * thread (into the link's send buffer) instead of three times.  Thread:
 * the loop thread. */
void fwd_write_owned(fwd *f, const sm_command *cmd, char *text_owned, repl_reply_fn cb, void *ctx);

/* Ask the leader for a read index (a barrier confirming its leadership);
 * cb gets REPL_OK + the index this node must have applied before a
 * snapshot sees every write acknowledged before this call, or an error
 * (REPL_NOT_LEADER: no leader before the deadline; REPL_BUSY;
 * REPL_SHUTTING_DOWN).  Called once, never inside.  Thread: the loop thread. */
void fwd_read_index(fwd *f, repl_read_fn cb, void *ctx);

/* The linearizable read gate of a cluster node: fwd_read_index, then wait
 * (repl_wait_applied on r) until this node's state machine has applied
 * that index; cb(ctx, REPL_OK, index, NULL) means a RocksDB snapshot taken
 * now sees every write acknowledged before this call.  Errors as
 * fwd_read_index.  Called once, never inside.  Thread: the loop thread. */
void fwd_read_gate(fwd *f, repl *r, repl_read_fn cb, void *ctx);

/* QUIVER.FORWARD blob (the leader's side): decode the request, propose the
 * write with the origin's request id (repl_propose; never forwarded again:
 * a node that does not lead answers REPL_NOT_LEADER and the origin retries)
 * or run a read barrier, and answer a bulk forward response.  A blob that
 * does not decode gets "-ERR malformed QUIVER.FORWARD request: ...".  A
 * write is checked as a client's would be, before proposing: over
 * --maxmemory "-OOM command not allowed when used memory > 'maxmemory'.";
 * over --max-entry-bytes, or refused by admission (admission.h, off the
 * loop thread for long texts), or not a write at all: a REPL_INVALID
 * response with the error text.
 * Thread: the loop thread (a command handler, commands.h). */
void fwd_serve(node_client *c, node_slot *s, resp_request *req);

/* Fill *out (server.h's fwd_stats).  Thread: the loop thread. */
void fwd_get_stats(fwd *f, fwd_stats *out);

/* The table main.c gives the server (server.h). */
extern const node_cluster_ops fwd_cluster_ops;

/* Answer everything still waiting or sent (REPL_SHUTTING_DOWN, or
 * REPL_UNKNOWN_OUTCOME for writes that may have been applied), close the
 * links, and free f once the proposals it made through r are answered
 * (call before repl_stop).  Thread: the loop thread. */
void fwd_stop(fwd *f);

#endif
