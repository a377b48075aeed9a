/*
 * cluster.c -- QUIVER.CLUSTER (contract in cluster.h).  Placeholder until
 * the membership work lands.
 */
#include "cluster.h"

void cluster_command(node_client *c, node_slot *s, resp_request *req) {
    (void)c;
    (void)req;
    reply_error(&s->buf, "ERR QUIVER.CLUSTER is not implemented yet");
    node_slot_done(s);
}
