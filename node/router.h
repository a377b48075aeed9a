/*
 * router.h -- where a graph command goes (DESIGN.md 1): writes become a
 * raft proposal (repl_propose, one command per request, group-committed by
 * raft/), reads become a reader-pool job on a RocksDB snapshot.
 *
 * A GRAPH.QUERY is classified by parsing only (query_classify): CREATE,
 * MERGE, SET, REMOVE, DELETE and index DDL are writes.  A write's reply is
 * the result the apply thread produced; a read's is encoded on the reader
 * thread.
 *
 * In a multi-node cluster (n->fwd != NULL) every write goes through the
 * forwarder (forward.h): proposed here when this node leads, else sent to
 * the leader, retried with the same request id after a leader change.
 * Reads there ask the leader for a read index (fwd_read_index; a local
 * barrier on the leader), wait until this node applied it, then run on a
 * local snapshot: linearizable on every node.
 *
 * Reads are linearizable (DESIGN.md 6): every read waits for
 * repl_read_barrier (shared by all reads waiting at that moment), except on
 * a single-node cluster once one barrier has completed in the current term:
 * from then on every acknowledged write is already applied, so the snapshot
 * is taken at once (start_read in router.c explains why).  Within a connection, a read waits for that connection's earlier
 * writes (server.h).
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

/* The reader pool's done callback (readers_start(..., router_read_done, n)). */
void router_read_done(void *ctx, read_job *job);

#endif
