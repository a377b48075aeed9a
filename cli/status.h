/*
 * status.h -- `quiver status`: the cluster as a table, from
 * `QUIVER.CLUSTER NODES` (reply shape in node/cluster.h) on any node:
 *
 *   +----+----------------+----------------+-------+----------+------+--------------+---------------+-----+-----------+
 *   | id | address        | raft address   | role  | state    | term | commit index | applied index | lag | reachable |
 *   +----+----------------+----------------+-------+----------+------+--------------+---------------+-----+-----------+
 *   |  1 | 127.0.0.1:7001 | 127.0.0.1:8001 | voter | leader   |    2 |           57 |            57 |   0 | yes       |
 *   ...
 *
 * Numbers are right-aligned; an unknown figure (unreachable node) is "-".
 * Below the table, one line per unreachable node says why
 * ("node 3 unreachable: connect: Connection refused"); an empty member list
 * (a --join node not added yet) gets a line saying so.
 *
 * Thread: the main thread.
 */
#ifndef QUIVER_CLI_STATUS_H
#define QUIVER_CLI_STATUS_H

#include <stdio.h>

#include <hiredis/hiredis.h>

#include "buf.h"

/* How long `quiver status` waits for the node's answer (it asks every
 * other member itself, within half a second). */
#define CLI_STATUS_TIMEOUT_MS 10000

/* Render a QUIVER.CLUSTER NODES reply r (not freed) as the table above
 * into out.  Returns 0, or 1 with a message (no "error: " prefix, no
 * newline) in err: an error reply (its text), or a reply of another shape
 * ("unexpected reply ..."). */
int cli_status_render(const redisReply *r, cli_buf *out, cli_buf *err);

/* `quiver status` on connection c: send QUIVER.CLUSTER NODES, print the
 * table on out, or "error: ..." on errf.  Returns 0, or 1 (error reply,
 * bad reply, lost connection or no answer within CLI_STATUS_TIMEOUT_MS). */
int cli_cluster_status(redisContext *c, FILE *out, FILE *errf);

#endif
