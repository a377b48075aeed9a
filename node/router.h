/*
 * router.h -- where a graph command goes (DESIGN.md 1): writes become a
 * raft proposal (repl_propose, one command per request, group-committed by
 * raft/), reads become a reader-pool job on a RocksDB snapshot.
 *
 * A GRAPH.QUERY is admitted (admission.h: query_admit parses, checks the
 * limits and plans it; inline for short texts, off the loop thread for long
 * ones) and classified by the same parse: CREATE, MERGE, SET, REMOVE,
 * DELETE and index DDL are writes.  A text that admission refuses gets its
 * error and changes nothing.  A write whose command would not fit in one
 * raft log entry (router_write_entry_size > --max-entry-bytes) gets "ERR the
 * write does not fit in one raft log entry ..." before anything is
 * proposed or forwarded.  A write's reply is the result the apply thread
 * produced (encoded on the offload pool when large); a read's is encoded on
 * the reader thread, with its reply capped at node_reply_size_max.
 *
 * In a multi-node cluster (n->fwd != NULL) every write goes through the
 * forwarder (forward.h): proposed here when this node leads, else sent to
 * the leader, retried with the same request id after a leader change.
 * Reads there ask the leader for a read index (fwd_read_index; a local
 * barrier on the leader), wait until this node applied it, then run on a
 * local snapshot: linearizable on every node.
 *
 * Read consistency (DESIGN.md 6), per connection with
 *   QUIVER.CONSISTENCY [linearizable|session|stale]
 * (no argument: replies the connection's level as a status; a bad word is
 * an error and changes nothing).  A read uses the level its connection had
 * when the read arrived.  Writes are unaffected: always through the leader.
 *   - linearizable (default): every read waits for repl_read_barrier
 *     (shared by all reads waiting at that moment) -- on a follower, for
 *     the leader's read index and then its own applied index (above) --,
 *     except on a single-node cluster once one barrier has completed in the
 *     current term: from then on every acknowledged write is already
 *     applied, so the snapshot is taken at once (start_read in router.c).
 *   - session: sees the connection's own acknowledged writes.  A write's
 *     reply carries its log index (repl_reply_fn; for a write forwarded by
 *     a follower, the leader's forward response carries it, forward.h);
 *     the connection keeps the highest (node_client.session_index).  A
 *     session read waits until THIS node's applied index reaches it
 *     (repl_wait_applied through node_cluster_ops.wait_applied), never
 *     contacting the leader, then reads a local snapshot; the wait is
 *     bounded by the read's TIMEOUT, else --forward-timeout-ms, and ends
 *     in "ERR session read timed out ..." (nothing read).
 *   - stale: a local snapshot at once, whatever the leader's state.  A
 *     GRAPH.QUERY / GRAPH.RO_QUERY reply gets one more statistics line,
 *     "Replication lag: N entries" (reply.h says why clients accept it):
 *     N = max(raft's commit index here, the highest index learned from the
 *     leader in write replies and read indexes) - the applied index, at
 *     submission; an upper bound, and 0 when the node does not know it is
 *     behind (a node cut off learns nothing new).  INFO raft shows the same
 *     lag now (raft_stale_lag_entries).
 * Within a connection, a read waits for that connection's earlier writes
 * and a write for its earlier reads (server.h), at every level.
 *
 * Client-chosen request ids (idempotent retries, e.g. `quiver import`
 * across a leader change or a lost connection):
 *   QUIVER.REQUESTID <origin> <seq>
 * two decimal unsigned 64-bit integers, both != 0, reply +OK.  The NEXT
 * write of the connection that is proposed -- a GRAPH.QUERY classified as
 * a write, or a GRAPH.DELETE, that passed its argument and syntax checks --
 * uses {origin, seq} as its request id instead of a fresh
 * repl_next_request_id, also when this node forwards it to the leader (the
 * forward request carries the origin's id, forward.h); the id is then
 * cleared.  Reads and commands refused before proposing leave it set; a
 * second QUIVER.REQUESTID before a write replaces it.  The state machine's
 * de-dup table (DESIGN.md 3) answers an id it has already applied with the
 * FIRST outcome and does not apply the command again, so a client that got
 * "outcome unknown", a timeout or a lost connection may send the same
 * command again with the same id, through any node.  Rules for clients:
 * use a random origin per run (the node's own origins are random 64-bit
 * numbers), never reuse an id for a different command (the first outcome
 * is returned whatever the text), and retry within the table's bound
 * (QUIVER_DEDUP_TABLE_COUNT_MAX other writes; forward.c explains it).
 *
 * Thread: the loop thread.
 */
#ifndef QUIVER_NODE_ROUTER_H
#define QUIVER_NODE_ROUTER_H

#include "readers.h"
#include "server.h"

/* Command handlers (argument checks included).  Each fills s now or holds
 * it for an asynchronous completion; req stays owned by the caller unless
 * the handler moves it (it then leaves req empty). */
void router_graph_query(node_client *c, node_slot *s, resp_request *req);    /* GRAPH.QUERY */
void router_graph_ro_query(node_client *c, node_slot *s, resp_request *req); /* GRAPH.RO_QUERY */
void router_graph_explain(node_client *c, node_slot *s, resp_request *req);  /* GRAPH.EXPLAIN */
void router_graph_delete(node_client *c, node_slot *s, resp_request *req);   /* GRAPH.DELETE */
void router_graph_list(node_client *c, node_slot *s, resp_request *req);     /* GRAPH.LIST */
void router_digest(node_client *c, node_slot *s, resp_request *req);         /* QUIVER.DIGEST */
/* QUIVER.FORWARD blob: a peer's forwarded write or read-index request
 * (forward.h), run here without further forwarding; the reply is a bulk
 * forward response, or an error when the blob does not decode. */
void router_forward(node_client *c, node_slot *s, resp_request *req);

/* QUIVER.CONSISTENCY [level] and QUIVER.REQUESTID origin seq (see the top). */
void router_consistency(node_client *c, node_slot *s, resp_request *req);
void router_request_id(node_client *c, node_slot *s, resp_request *req);

/* The reader pool's done callback (readers_start(..., router_read_done, n)).
 * Counts the read in n->reads_served_total by its level. */
void router_read_done(void *ctx, read_job *job);

/* The encoded size of a log entry holding one write command with a graph
 * name and a text of these lengths (statemachine/command.h's format,
 * padding included).  Any thread. */
uint64_t router_write_entry_size(size_t graph_len, size_t text_len);

/* "linearizable", "session" or "stale" (static strings).  Any thread. */
const char *router_consistency_name(node_consistency level);

/* Parse a level name of len bytes (case-insensitive).  Returns false,
 * leaving *out untouched, for any other word.  Any thread. */
bool router_consistency_parse(const char *word, size_t len, node_consistency *out);

/* Parse QUIVER.REQUESTID's arguments: each a decimal unsigned 64-bit
 * integer (digits only: no sign, space, prefix; at most 20 digits; no
 * overflow) other than 0.  Returns false, *out untouched, otherwise.
 * Any thread. */
bool router_request_id_parse(const char *origin, size_t origin_len, const char *seq, size_t seq_len,
                             sm_request_id *out);

#endif
