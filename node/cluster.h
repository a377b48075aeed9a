/*
 * cluster.h -- QUIVER.CLUSTER: membership and the cluster view.
 *
 *   QUIVER.CLUSTER NODES                every member: id, addresses, role, term,
 *                                       commit index, applied index, lag, reachability
 *   QUIVER.CLUSTER ADD id address       add a node (it catches up, then votes)
 *   QUIVER.CLUSTER REMOVE id            remove a node from the configuration
 *   QUIVER.CLUSTER TRANSFER [id]        hand leadership to id (or the most up to date)
 *
 * NODES reply (RESP2): an array with one element per member of this node's
 * current raft configuration (the latest one it knows, committed or not),
 * in configuration order; each element is a flat array of alternating field
 * name / value, like a RESP3 map sent in RESP2:
 *
 *   "id"             integer, the raft id
 *   "address"        bulk, the client (RESP) address "host:port"
 *   "raft_address"   bulk, the raft address from the configuration
 *   "role"           bulk, "voter" | "standby" | "spare" (raft configuration role)
 *   "state"          bulk, "leader" | "follower" | "candidate" | "unreachable"
 *   "term"           integer, or null when unreachable
 *   "commit_index"   integer, or null when unreachable
 *   "applied_index"  integer, or null when unreachable
 *   "lag"            integer: the leader's commit index minus this node's
 *                    applied index, in entries (0 when ahead); null when the
 *                    node or every leader figure is unknown
 *   "reachable"      bulk, "yes" | "no"
 *   "leader_id"      integer: the leader this node names (0: none known);
 *                    null when unreachable
 *   "error"          bulk: why the node is unreachable ("" when reachable)
 *
 * The serving node fills its own row from raft directly and asks every
 * other member's client port for `INFO raft` (CLUSTER_PROBE_TIMEOUT_MS for
 * all of them together), on the libuv threadpool with blocking sockets and
 * poll(2): the loop thread never waits, and one probe in flight per node
 * is shared by every NODES request arriving meanwhile (so a burst of
 * `quiver status` costs one threadpool thread for at most the deadline).
 * A member's client address: its @ part of --peers, else the raft host
 * with the raft port - NODE_RAFT_PORT_OFFSET (config.h).
 *
 * ADD / REMOVE / TRANSFER run on the leader only: a follower answers
 * "ERR not the leader: the leader is node N (client address H:P)" and
 * changes nothing (no forwarding; clients resend to the leader, the CLI
 * prints the address).  One membership operation at a time per node: a
 * second one is refused with "ERR ... already in progress".
 *
 * Thread: the loop thread (a command handler, like commands.c's), except
 * the pure helpers below (any thread).
 */
#ifndef QUIVER_NODE_CLUSTER_H
#define QUIVER_NODE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

#define CLUSTER_PROBE_TIMEOUT_MS 500             /* INFO raft of every other member, together */
#define CLUSTER_MEMBERS_COUNT_MAX 64             /* members shown by NODES; ADD refuses past it */
#define CLUSTER_PROBE_WAITERS_COUNT_MAX 256      /* NODES requests sharing one probe; past it: busy */
#define CLUSTER_INFO_REPLY_SIZE_MAX_BYTES 16384  /* one INFO raft reply */
#define CLUSTER_ERROR_SIZE_MAX_BYTES 160

/* The QUIVER.CLUSTER command: replies into s (now or later) and calls
 * node_slot_done(s) exactly once.  Errors: every bad argument gets an
 * "ERR ..." reply and changes nothing.  Thread: the loop thread. */
void cluster_command(node_client *c, node_slot *s, resp_request *req);

/* ---- pure helpers (exposed for unit tests; any thread) ---- */

/* The figures of one node, parsed from its INFO raft text. */
typedef struct cluster_member_info {
    uint64_t node_id;
    char state[16];        /* raft_role: "leader", "follower", "candidate" */
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t leader_id;
} cluster_member_info;

/* Parse INFO text (lines "key:value", CRLF or LF, "# Section" lines
 * ignored) into *out.  Returns true when raft_role, raft_current_term,
 * raft_commit_index and raft_last_applied_index were all present and valid
 * (raft_node_id and raft_leader_id are optional: 0 when absent); false
 * otherwise (*out then holds what was found). */
bool cluster_parse_info_raft(const char *text, size_t len, cluster_member_info *out);

/* Is address "HOST:PORT" (host non-empty, no spaces or control bytes,
 * port 1..65535, shorter than REPL_ADDRESS_SIZE_MAX_BYTES)?  An IPv6 host
 * may be bracketed ("[::1]:7000"). */
bool cluster_address_valid(const char *address);

/* Split "HOST:PORT" (HOST possibly "[v6]") into host (unbracketed, NUL-
 * terminated in host[host_size]) and port 1..65535.  Returns false when
 * address is not of that form.  Pure; any thread. */
bool cluster_split_address(const char *address, char *host, size_t host_size, uint16_t *port);

/* The client address of member id with raft address raft_address: the
 * peer_client_addresses entry of cfg (may be NULL: no --peers to consult)
 * when id is in --peers, else the raft
 * host with the raft port - NODE_RAFT_PORT_OFFSET.  Writes a NUL-terminated
 * string into out (size_bytes >= REPL_ADDRESS_SIZE_MAX_BYTES); "" when it
 * cannot be derived (raft port <= the offset, bad address). */
void cluster_client_address(const node_config *cfg, uint64_t id, const char *raft_address, char *out,
                            size_t size_bytes);

/* Extract the text of a complete RESP2 bulk-string reply in buf[0..len):
 * returns 1 with *text and *text_len pointing into buf, 0 when more bytes are
 * needed, -1 when the reply is an error ("-..."; *text is the message
 * without '-') or malformed (*text NULL).  Bounded by
 * CLUSTER_INFO_REPLY_SIZE_MAX_BYTES (larger announced lengths: -1). */
int cluster_parse_bulk_reply(const char *buf, size_t len, const char **text, size_t *text_len);

#endif
