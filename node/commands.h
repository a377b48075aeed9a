/*
 * commands.h -- the command table: name, arity and handler of every
 * command quiverd answers, with Redis' error texts for unknown commands and
 * wrong arity (so redis-cli and client libraries behave as with Redis).
 *
 * Thread: the loop thread.
 */
#ifndef QUIVER_NODE_COMMANDS_H
#define QUIVER_NODE_COMMANDS_H

#include "resp.h"
#include "server.h"

/* Run one parsed request on connection c; s is its (new, empty) reply slot.
 * The handler fills s at once or holds it for later; it may move req's
 * contents (req is left empty then); the caller frees req afterwards. */
void node_command_dispatch(node_client *c, node_slot *s, resp_request *req);

/* Number of commands in the table (COMMAND COUNT). */
uint32_t node_command_count(void);

#endif
