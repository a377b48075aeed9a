/*
 * cluster.h -- QUIVER.CLUSTER: membership and the cluster view.
 *
 *   QUIVER.CLUSTER NODES                every member: id, addresses, role, term,
 *                                       commit index, applied index, lag, reachability
 *   QUIVER.CLUSTER ADD id address       add a node (it catches up, then votes)
 *   QUIVER.CLUSTER REMOVE id            remove a node from the configuration
 *   QUIVER.CLUSTER TRANSFER [id]        hand leadership to id (or the most up to date)
 *
 * Thread: the loop thread (a command handler, like commands.c's).
 */
#ifndef QUIVER_NODE_CLUSTER_H
#define QUIVER_NODE_CLUSTER_H

#include "server.h"

/* The QUIVER.CLUSTER command: replies into s (now or later) and calls
 * node_slot_done(s) exactly once.  Errors: every bad argument gets an
 * "ERR ..." reply and changes nothing. */
void cluster_command(node_client *c, node_slot *s, resp_request *req);

#endif
