/*
 * cluster.c -- QUIVER.CLUSTER: membership changes and the cluster view
 * (contract and reply shapes in cluster.h).
 *
 * Membership (canonical/raft 0.22.1, legacy API; read in src/legacy.c,
 * src/client.c, src/replication.c of 0.22.1):
 *   ADD      raft_add puts the node in the configuration as a SPARE (not
 *            replicated, not counted); once that entry commits (its change
 *            callback on the leader), raft_assign(RAFT_VOTER).  0.22.1's
 *            raft_assign to voter first runs catch-up rounds when the
 *            node's match index is behind (Raft thesis 4.2.1: up to 10
 *            rounds; aborted with RAFT_NOCONNECTION when a round lasts
 *            over 5 s), and only then appends the voter configuration; the
 *            callback fires when that entry commits.  So +OK means "voter,
 *            and its log was caught up when promoted".  A node that never
 *            catches up stays a spare: the error says so, and ADD of the
 *            same id and address again resumes at the promotion step.
 *   REMOVE   raft_remove; the callback fires once the new configuration
 *            commits.  Removing the leader itself is allowed: 0.22.1 fires
 *            the callback (status 0, so the client gets +OK) and then the
 *            leader steps down (replicationApplyConfigurationChange ->
 *            convertToFollower, "leader removed from config"); the others
 *            elect a new leader within an election timeout.
 *   TRANSFER raft_transfer (0: raft picks the voter whose log matches, else
 *            the last voter it saw).  The callback fires when this node sees
 *            a new leader (it is a follower with a known leader) or when the
 *            transfer was aborted (after an election timeout, still leader);
 *            we then compare raft_leader with the target.
 * One operation at a time per node (raft allows one configuration change at
 * a time anyway, and refuses changes during a transfer): the operation lives
 * in `op_inflight`, a heap object freed in its last callback.  0.22.1 fires
 * change and transfer callbacks from its prepare/check handles, outside
 * raft_step, and touches the request no more after the callback returns, so
 * the next raft call (raft_assign) and the free happen right there.  The
 * warning in RAFT-NOTES.md about freeing a transfer in its callback does not
 * apply to 0.22.1 (legacyFireTransfer only calls cb).
 * Shutdown: main.c sets node.repl = NULL before repl_stop, whose raft_close
 * fires every pending callback (RAFT_LEADERSHIPLOST, or status 0 for ones
 * that completed just before); with node.repl NULL we make no further raft
 * call and answer "shutting down".
 *
 * The view (NODES): see cluster.h.  Why a threadpool job with blocking
 * sockets instead of libuv handles on the loop: the job needs no handles,
 * so a shutdown that closes every handle (main.c's uv_walk) cannot strand
 * it, and its after-callback always runs; the cost is one threadpool thread
 * for at most CLUSTER_PROBE_TIMEOUT_MS, which the sharing of one probe per
 * node bounds.  Name resolution (getaddrinfo) runs inside the job too;
 * numeric addresses resolve at once.
 *
 * Thread: the loop thread, except probe_work (threadpool) and the pure
 * helpers.
 */
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>

#include "../common/qassert.h"

/* ------------------------------------------------------------------ */
/* Pure helpers                                                        */
/* ------------------------------------------------------------------ */

static bool parse_u64_n(const char *s, size_t len, uint64_t *out) {
    if (len == 0 || len > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool cluster_parse_info_raft(const char *text, size_t len, cluster_member_info *out) {
    QUIVER_ASSERT(out != NULL && (text != NULL || len == 0));
    memset(out, 0, sizeof *out);
    bool have_role = false, have_term = false, have_commit = false, have_applied = false;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t n = (size_t)(le - p);
        if (n > 0 && p[n - 1] == '\r') n--;
        const char *colon = n > 0 && p[0] != '#' ? memchr(p, ':', n) : NULL;
        if (colon != NULL) {
            size_t klen = (size_t)(colon - p);
            const char *v = colon + 1;
            size_t vlen = n - klen - 1;
#define KEY_IS(k) (klen == sizeof(k) - 1 && memcmp(p, k, klen) == 0)
            if (KEY_IS("raft_role")) {
                if (vlen > 0 && vlen < sizeof(out->state)) {
                    memcpy(out->state, v, vlen);
                    out->state[vlen] = '\0';
                    have_role = true;
                }
            } else if (KEY_IS("raft_current_term")) {
                have_term = parse_u64_n(v, vlen, &out->term);
            } else if (KEY_IS("raft_commit_index")) {
                have_commit = parse_u64_n(v, vlen, &out->commit_index);
            } else if (KEY_IS("raft_last_applied_index")) {
                have_applied = parse_u64_n(v, vlen, &out->applied_index);
            } else if (KEY_IS("raft_leader_id")) {
                if (!parse_u64_n(v, vlen, &out->leader_id)) out->leader_id = 0;
            } else if (KEY_IS("raft_node_id")) {
                if (!parse_u64_n(v, vlen, &out->node_id)) out->node_id = 0;
            }
#undef KEY_IS
        }
        p = nl ? nl + 1 : end;
    }
    return have_role && have_term && have_commit && have_applied;
}

bool cluster_split_address(const char *address, char *host, size_t host_size, uint16_t *port) {
    size_t len = strnlen(address, REPL_ADDRESS_SIZE_MAX_BYTES);
    if (len == 0 || len >= REPL_ADDRESS_SIZE_MAX_BYTES) return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)address[i] <= ' ' || (unsigned char)address[i] == 0x7f) return false;
    const char *colon = strrchr(address, ':');
    if (colon == NULL) return false;
    const char *h = address;
    size_t hlen = (size_t)(colon - address);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen) != NULL) {
        return false; /* an unbracketed IPv6 literal is ambiguous */
    }
    if (hlen == 0 || hlen >= host_size) return false;
    uint64_t p;
    if (!parse_u64_n(colon + 1, strlen(colon + 1), &p) || p < 1 || p > 65535) return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)p;
    return true;
}

bool cluster_address_valid(const char *address) {
    char host[REPL_ADDRESS_SIZE_MAX_BYTES];
    uint16_t port;
    return address != NULL && cluster_split_address(address, host, sizeof host, &port);
}

void cluster_client_address(const node_config *cfg, uint64_t id, const char *raft_address, char *out,
                            size_t size_bytes) {
    QUIVER_ASSERT(out != NULL && size_bytes >= REPL_ADDRESS_SIZE_MAX_BYTES);
    out[0] = '\0';
    for (uint32_t i = 0; cfg != NULL && i < cfg->peer_count; i++) {
        if (cfg->peers[i].id == id) {
            snprintf(out, size_bytes, "%s", cfg->peer_client_addresses[i]);
            return;
        }
    }
    char host[REPL_ADDRESS_SIZE_MAX_BYTES];
    uint16_t port;
    if (raft_address == NULL || !cluster_split_address(raft_address, host, sizeof host, &port)) return;
    if (port <= NODE_RAFT_PORT_OFFSET) return;
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, size_bytes, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)(port - NODE_RAFT_PORT_OFFSET));
}

int cluster_parse_bulk_reply(const char *buf, size_t len, const char **text, size_t *text_len) {
    QUIVER_ASSERT(text != NULL && text_len != NULL);
    *text = NULL;
    *text_len = 0;
    if (len == 0) return 0;
    const char *crlf = NULL;
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n') {
            crlf = buf + i;
            break;
        }
    }
    if (buf[0] == '-') {
        if (crlf == NULL) return len > CLUSTER_INFO_REPLY_SIZE_MAX_BYTES ? -1 : 0;
        *text = buf + 1;
        *text_len = (size_t)(crlf - buf - 1);
        return -1;
    }
    if (buf[0] != '$') return -1;
    if (crlf == NULL) return len > 24 ? -1 : 0;
    uint64_t n;
    if (!parse_u64_n(buf + 1, (size_t)(crlf - buf - 1), &n) || n > CLUSTER_INFO_REPLY_SIZE_MAX_BYTES) return -1;
    size_t head = (size_t)(crlf - buf) + 2;
    if (len < head + n + 2) return 0;
    if (buf[head + n] != '\r' || buf[head + n + 1] != '\n') return -1;
    *text = buf + head;
    *text_len = (size_t)n;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Small helpers on the loop thread                                    */
/* ------------------------------------------------------------------ */

static const char *role_name(int role) {
    switch (role) {
    case RAFT_VOTER: return "voter";
    case RAFT_STANDBY: return "standby";
    case RAFT_SPARE: return "spare";
    default: return "unknown";
    }
}

static bool arg_is(const resp_request *req, uint32_t i, const char *word) {
    return i < req->argc && strcasecmp(req->argv[i], word) == 0;
}

static bool parse_id(const resp_request *req, uint32_t i, uint64_t *out) {
    return parse_u64_n(req->argv[i], req->argv_len[i], out) && *out != 0;
}

/* "ERR not the leader: ..." naming the leader's client address. */
static void reply_not_leader(node *n, struct raft *rf, reply_buf *b, const char *what) {
    raft_id id = 0;
    const char *address = NULL;
    raft_leader(rf, &id, &address);
    if (id != 0 && id != n->cfg->node_id) {
        char client[REPL_ADDRESS_SIZE_MAX_BYTES];
        cluster_client_address(n->cfg, id, address, client, sizeof client);
        reply_errorf(b, "ERR not the leader: QUIVER.CLUSTER %s runs on the leader, node %" PRIu64 " (client address %s)",
                     what, (uint64_t)id, client[0] ? client : "unknown");
    } else {
        reply_errorf(b, "ERR not the leader: QUIVER.CLUSTER %s runs on the leader, and no leader is known "
                        "(election in progress); retry shortly", what);
    }
}

static const struct raft_server *config_get(struct raft *rf, uint64_t id) {
    for (unsigned i = 0; i < rf->configuration.n; i++)
        if (rf->configuration.servers[i].id == id) return &rf->configuration.servers[i];
    return NULL;
}

static unsigned voter_count(struct raft *rf) {
    unsigned v = 0;
    for (unsigned i = 0; i < rf->configuration.n; i++)
        if (rf->configuration.servers[i].role == RAFT_VOTER) v++;
    return v;
}

/* ------------------------------------------------------------------ */
/* Membership operations                                               */
/* ------------------------------------------------------------------ */

typedef enum op_kind { OP_ADD, OP_REMOVE, OP_TRANSFER } op_kind;

typedef struct cluster_op {
    struct raft_change change;     /* ADD (both steps), REMOVE */
    struct raft_transfer transfer; /* TRANSFER */
    op_kind kind;
    bool promoting;                /* ADD: raft_add committed, raft_assign sent */
    node *n;
    node_slot *slot;
    struct raft *rf;
    uint64_t id;                   /* target (TRANSFER: 0 = raft's pick) */
    char address[REPL_ADDRESS_SIZE_MAX_BYTES];
} cluster_op;

/* The one operation in flight on this process's node (see the top). */
static cluster_op *op_inflight;

static void op_finish(cluster_op *op) {
    QUIVER_ASSERT(op_inflight == op);
    op_inflight = NULL;
    node_slot_done(op->slot);
    free(op);
}

static void raft_error_reply(reply_buf *b, struct raft *rf, int rv, const char *what, uint64_t id) {
    switch (rv) {
    case RAFT_CANTCHANGE:
        reply_errorf(b, "ERR QUIVER.CLUSTER %s: a configuration change is already in progress; retry when it "
                        "has committed", what);
        break;
    case RAFT_NOTLEADER:
        reply_errorf(b, "ERR not the leader (or a leadership transfer is in progress): QUIVER.CLUSTER %s not done",
                     what);
        break;
    case RAFT_DUPLICATEID:
        reply_errorf(b, "ERR QUIVER.CLUSTER %s: node %" PRIu64 " is already in the configuration", what, id);
        break;
    case RAFT_DUPLICATEADDRESS:
        reply_errorf(b, "ERR QUIVER.CLUSTER %s: another node already has that raft address", what);
        break;
    case RAFT_BADID:
    case RAFT_NOTFOUND:
        reply_errorf(b, "ERR QUIVER.CLUSTER %s: node %" PRIu64 " is not a member it can act on (%s)", what, id,
                     raft_errmsg(rf));
        break;
    case RAFT_NOSPACE:
        reply_errorf(b, "ERR QUIVER.CLUSTER %s: the raft log is out of space; retry later", what);
        break;
    default:
        reply_errorf(b, "ERR QUIVER.CLUSTER %s failed: %s", what, raft_strerror(rv));
        break;
    }
}

static void change_cb(struct raft_change *req, int status);

static void add_promote(cluster_op *op) {
    op->promoting = true;
    int rv = raft_assign(op->rf, &op->change, op->id, RAFT_VOTER, change_cb);
    if (rv != 0) {
        char msg[CLUSTER_ERROR_SIZE_MAX_BYTES];
        snprintf(msg, sizeof msg, "%s", raft_strerror(rv));
        reply_errorf(&op->slot->buf,
                     "ERR node %" PRIu64 " is in the configuration as a spare, but promoting it to voter failed "
                     "(%s); run QUIVER.CLUSTER ADD %" PRIu64 " %s again, or REMOVE it",
                     op->id, msg, op->id, op->address);
        op_finish(op);
    }
}

static void change_cb(struct raft_change *req, int status) {
    cluster_op *op = req->data;
    QUIVER_ASSERT(op != NULL && op == op_inflight && (op->kind == OP_ADD || op->kind == OP_REMOVE));
    reply_buf *b = &op->slot->buf;
    if (op->n->repl == NULL) {
        reply_error(b, "ERR the node is shutting down: the outcome of the configuration change is unknown; "
                       "check QUIVER.CLUSTER NODES on the new leader");
        op_finish(op);
        return;
    }
    if (op->kind == OP_ADD && !op->promoting) {
        if (status == 0) {
            add_promote(op);
            return;
        }
        if (status == RAFT_LEADERSHIPLOST)
            reply_errorf(b, "ERR outcome unknown: leadership was lost before adding node %" PRIu64
                            " committed; check QUIVER.CLUSTER NODES on the new leader",
                         op->id);
        else
            reply_errorf(b, "ERR adding node %" PRIu64 " failed: %s", op->id, raft_strerror(status));
        op_finish(op);
        return;
    }
    if (status == 0) {
        reply_simple(b, "OK");
    } else if (op->kind == OP_ADD && status == RAFT_NOCONNECTION) {
        reply_errorf(b, "ERR node %" PRIu64 " did not catch up with the leader's log (unreachable at %s, not "
                        "started with --join, or too slow): it stays in the configuration as a spare; start it "
                        "and run QUIVER.CLUSTER ADD %" PRIu64 " %s again, or REMOVE it",
                     op->id, op->address, op->id, op->address);
    } else if (status == RAFT_LEADERSHIPLOST) {
        reply_errorf(b, "ERR outcome unknown: leadership was lost before the configuration change %s node %" PRIu64
                        " committed; check QUIVER.CLUSTER NODES on the new leader",
                     op->kind == OP_ADD ? "promoting" : "removing", op->id);
    } else {
        reply_errorf(b, "ERR %s node %" PRIu64 " failed: %s", op->kind == OP_ADD ? "promoting" : "removing", op->id,
                     raft_strerror(status));
    }
    op_finish(op);
}

static void transfer_cb(struct raft_transfer *req) {
    cluster_op *op = req->data;
    QUIVER_ASSERT(op != NULL && op == op_inflight && op->kind == OP_TRANSFER);
    reply_buf *b = &op->slot->buf;
    if (op->n->repl == NULL) {
        reply_error(b, "ERR the node is shutting down: the leadership transfer did not complete here");
        op_finish(op);
        return;
    }
    raft_id leader = 0;
    const char *address = NULL;
    raft_leader(op->rf, &leader, &address);
    uint64_t target = op->id ? op->id : req->id; /* req->id: raft's pick */
    if (leader != 0 && leader == target && leader != op->n->cfg->node_id)
        reply_simple(b, "OK");
    else if (leader == op->n->cfg->node_id)
        reply_errorf(b, "ERR leadership transfer to node %" PRIu64 " did not complete within an election timeout "
                        "(it did not catch up or did not win); this node is still the leader",
                     target);
    else
        reply_errorf(b, "ERR leadership transfer to node %" PRIu64 " did not complete: the leader is now node %" PRIu64,
                     target, (uint64_t)leader);
    op_finish(op);
}

static cluster_op *op_new(node_client *c, node_slot *s, struct raft *rf, op_kind kind, uint64_t id) {
    cluster_op *op = calloc(1, sizeof *op);
    if (op == NULL) QUIVER_FATAL("out of memory (QUIVER.CLUSTER)");
    op->kind = kind;
    op->n = c->n;
    op->slot = s;
    op->rf = rf;
    op->id = id;
    op->change.data = op;
    op->transfer.data = op;
    return op;
}

/* Common checks of ADD / REMOVE / TRANSFER.  Returns the raft instance, or
 * NULL after replying (and completing s). */
static struct raft *membership_preamble(node_client *c, node_slot *s, const char *what) {
    node *n = c->n;
    if (n->repl == NULL) {
        reply_error(&s->buf, "ERR this node runs without raft (or is shutting down): no membership changes");
        node_slot_done(s);
        return NULL;
    }
    struct raft *rf = repl_raft(n->repl);
    if (raft_state(rf) != RAFT_LEADER) {
        reply_not_leader(n, rf, &s->buf, what);
        node_slot_done(s);
        return NULL;
    }
    if (op_inflight != NULL) {
        reply_errorf(&s->buf, "ERR QUIVER.CLUSTER %s: a membership change or leadership transfer is already in "
                              "progress on this node; retry when it completes",
                     what);
        node_slot_done(s);
        return NULL;
    }
    return rf;
}

static void cmd_add(node_client *c, node_slot *s, resp_request *req) {
    uint64_t id;
    if (req->argc != 4) {
        reply_error(&s->buf, "ERR wrong number of arguments: QUIVER.CLUSTER ADD id address");
        node_slot_done(s);
        return;
    }
    if (!parse_id(req, 2, &id)) {
        reply_errorf(&s->buf, "ERR QUIVER.CLUSTER ADD: bad node id '%.64s' (want an integer >= 1)", req->argv[2]);
        node_slot_done(s);
        return;
    }
    const char *address = req->argv[3];
    if (strlen(address) != req->argv_len[3] || !cluster_address_valid(address)) {
        reply_errorf(&s->buf, "ERR QUIVER.CLUSTER ADD: bad raft address '%.64s' (want HOST:PORT, port 1..65535, "
                              "under %d bytes)",
                     address, REPL_ADDRESS_SIZE_MAX_BYTES);
        node_slot_done(s);
        return;
    }
    struct raft *rf = membership_preamble(c, s, "ADD");
    if (rf == NULL) return;
    const struct raft_server *existing = config_get(rf, id);
    bool resume = false;
    if (existing != NULL) {
        if (strcmp(existing->address, address) != 0) {
            reply_errorf(&s->buf, "ERR QUIVER.CLUSTER ADD: node %" PRIu64 " is already in the configuration with raft "
                                  "address %s",
                         id, existing->address);
            node_slot_done(s);
            return;
        }
        if (existing->role == RAFT_VOTER) {
            reply_errorf(&s->buf, "ERR QUIVER.CLUSTER ADD: node %" PRIu64 " is already a voter", id);
            node_slot_done(s);
            return;
        }
        resume = true; /* a spare or standby left by an earlier ADD: promote it */
    } else {
        for (unsigned i = 0; i < rf->configuration.n; i++) {
            if (strcmp(rf->configuration.servers[i].address, address) == 0) {
                reply_errorf(&s->buf, "ERR QUIVER.CLUSTER ADD: raft address %s already belongs to node %" PRIu64,
                             address, (uint64_t)rf->configuration.servers[i].id);
                node_slot_done(s);
                return;
            }
        }
        if (rf->configuration.n >= CLUSTER_MEMBERS_COUNT_MAX) {
            reply_errorf(&s->buf, "ERR QUIVER.CLUSTER ADD: the configuration already has %d members (the limit)",
                         CLUSTER_MEMBERS_COUNT_MAX);
            node_slot_done(s);
            return;
        }
    }
    cluster_op *op = op_new(c, s, rf, OP_ADD, id);
    snprintf(op->address, sizeof op->address, "%s", address);
    node_slot_hold(s);
    op_inflight = op;
    if (resume) {
        add_promote(op);
        return;
    }
    int rv = raft_add(rf, &op->change, id, address, change_cb);
    if (rv != 0) {
        raft_error_reply(&s->buf, rf, rv, "ADD", id);
        op_finish(op);
    }
}

static void cmd_remove(node_client *c, node_slot *s, resp_request *req) {
    uint64_t id;
    if (req->argc != 3) {
        reply_error(&s->buf, "ERR wrong number of arguments: QUIVER.CLUSTER REMOVE id");
        node_slot_done(s);
        return;
    }
    if (!parse_id(req, 2, &id)) {
        reply_errorf(&s->buf, "ERR QUIVER.CLUSTER REMOVE: bad node id '%.64s' (want an integer >= 1)", req->argv[2]);
        node_slot_done(s);
        return;
    }
    struct raft *rf = membership_preamble(c, s, "REMOVE");
    if (rf == NULL) return;
    const struct raft_server *srv = config_get(rf, id);
    if (srv == NULL) {
        reply_errorf(&s->buf, "ERR QUIVER.CLUSTER REMOVE: node %" PRIu64 " is not in the configuration", id);
        node_slot_done(s);
        return;
    }
    if (srv->role == RAFT_VOTER && voter_count(rf) <= 1) {
        reply_errorf(&s->buf, "ERR QUIVER.CLUSTER REMOVE: node %" PRIu64 " is the only voter; a cluster needs one",
                     id);
        node_slot_done(s);
        return;
    }
    cluster_op *op = op_new(c, s, rf, OP_REMOVE, id);
    node_slot_hold(s);
    op_inflight = op;
    int rv = raft_remove(rf, &op->change, id, change_cb);
    if (rv != 0) {
        raft_error_reply(&s->buf, rf, rv, "REMOVE", id);
        op_finish(op);
    }
}

static void cmd_transfer(node_client *c, node_slot *s, resp_request *req) {
    uint64_t id = 0;
    if (req->argc > 3) {
        reply_error(&s->buf, "ERR wrong number of arguments: QUIVER.CLUSTER TRANSFER [id]");
        node_slot_done(s);
        return;
    }
    if (req->argc == 3 && !parse_u64_n(req->argv[2], req->argv_len[2], &id)) {
        reply_errorf(&s->buf, "ERR QUIVER.CLUSTER TRANSFER: bad node id '%.64s' (want an integer; 0 = any)",
                     req->argv[2]);
        node_slot_done(s);
        return;
    }
    struct raft *rf = membership_preamble(c, s, "TRANSFER");
    if (rf == NULL) return;
    if (id != 0) {
        const struct raft_server *srv = config_get(rf, id);
        const char *why = NULL;
        if (srv == NULL) why = "is not in the configuration";
        else if (id == c->n->cfg->node_id) why = "is already the leader";
        else if (srv->role != RAFT_VOTER) why = "is not a voter";
        if (why != NULL) {
            reply_errorf(&s->buf, "ERR QUIVER.CLUSTER TRANSFER: node %" PRIu64 " %s", id, why);
            node_slot_done(s);
            return;
        }
    }
    cluster_op *op = op_new(c, s, rf, OP_TRANSFER, id);
    node_slot_hold(s);
    op_inflight = op;
    int rv = raft_transfer(rf, &op->transfer, id, transfer_cb);
    if (rv != 0) {
        if (rv == RAFT_NOTFOUND)
            reply_error(&s->buf, "ERR QUIVER.CLUSTER TRANSFER: there is no other voter to transfer leadership to");
        else
            raft_error_reply(&s->buf, rf, rv, "TRANSFER", id);
        op_finish(op);
    }
}

/* ------------------------------------------------------------------ */
/* NODES: the probe                                                    */
/* ------------------------------------------------------------------ */

typedef struct probe_target {
    uint64_t id;
    int role;
    bool self;
    char raft_address[REPL_ADDRESS_SIZE_MAX_BYTES];
    char client_address[REPL_ADDRESS_SIZE_MAX_BYTES];
    /* Filled by the job. */
    bool reachable;
    cluster_member_info info;
    char error[CLUSTER_ERROR_SIZE_MAX_BYTES];
    /* Job-private. */
    int fd;
    int phase; /* 0 connecting, 1 sending, 2 reading, 3 done */
    size_t sent;
    size_t got;
    char *rbuf;
} probe_target;

typedef struct probe {
    uv_work_t work;
    node *n;
    struct probe *next; /* probes in flight (one per node) */
    uint32_t count;
    probe_target targets[CLUSTER_MEMBERS_COUNT_MAX];
    uint32_t waiter_count;
    node_slot *waiters[CLUSTER_PROBE_WAITERS_COUNT_MAX];
} probe;

static probe *probes_inflight; /* loop thread only */

static const char INFO_REQUEST[] = "*2\r\n$4\r\nINFO\r\n$4\r\nraft\r\n";

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void target_fail(probe_target *t, const char *fmt, const char *detail) {
    snprintf(t->error, sizeof t->error, fmt, detail);
    t->reachable = false;
    t->phase = 3;
    if (t->fd >= 0) close(t->fd);
    t->fd = -1;
}

static void target_open(probe_target *t) {
    char host[REPL_ADDRESS_SIZE_MAX_BYTES], port_s[8];
    uint16_t port;
    t->fd = -1;
    if (t->client_address[0] == '\0' || !cluster_split_address(t->client_address, host, sizeof host, &port)) {
        target_fail(t, "no client address known%s", "");
        return;
    }
    snprintf(port_s, sizeof port_s, "%u", (unsigned)port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc != 0 || res == NULL) {
        target_fail(t, "cannot resolve: %s", gai_strerror(rc));
        if (res) freeaddrinfo(res);
        return;
    }
    t->fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->fd < 0) {
        freeaddrinfo(res);
        target_fail(t, "socket: %s", strerror(errno));
        return;
    }
    rc = connect(t->fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0 && errno != EINPROGRESS) {
        target_fail(t, "connect: %s", strerror(errno));
        return;
    }
    t->phase = rc == 0 ? 1 : 0;
}

static void target_step(probe_target *t, short revents) {
    if (t->phase == 0) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err != 0) {
            target_fail(t, "connect: %s", strerror(err));
            return;
        }
        if (!(revents & POLLOUT)) return;
        t->phase = 1;
    }
    if (t->phase == 1) {
        ssize_t n = send(t->fd, INFO_REQUEST + t->sent, sizeof(INFO_REQUEST) - 1 - t->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) target_fail(t, "send: %s", strerror(errno));
            return;
        }
        t->sent += (size_t)n;
        if (t->sent == sizeof(INFO_REQUEST) - 1) t->phase = 2;
        return;
    }
    if (t->phase == 2) {
        size_t room = CLUSTER_INFO_REPLY_SIZE_MAX_BYTES + 64 - t->got;
        if (room == 0) {
            target_fail(t, "INFO raft reply too long%s", "");
            return;
        }
        ssize_t n = recv(t->fd, t->rbuf + t->got, room, 0);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) target_fail(t, "recv: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            target_fail(t, "connection closed before INFO raft was answered%s", "");
            return;
        }
        t->got += (size_t)n;
        const char *text;
        size_t text_len;
        int rc = cluster_parse_bulk_reply(t->rbuf, t->got, &text, &text_len);
        if (rc == 0) return;
        if (rc < 0) {
            char detail[96];
            snprintf(detail, sizeof detail, "%.*s", text ? (int)(text_len < 90 ? text_len : 90) : 0, text ? text : "");
            target_fail(t, text ? "INFO raft answered an error: %s" : "INFO raft reply malformed%s", detail);
            return;
        }
        if (!cluster_parse_info_raft(text, text_len, &t->info)) {
            target_fail(t, "INFO raft lacks the raft fields (not a Quiver node?)%s", "");
            return;
        }
        t->reachable = true;
        t->phase = 3;
        close(t->fd);
        t->fd = -1;
    }
}

/* Threadpool: ask every other member for INFO raft, all in parallel,
 * within CLUSTER_PROBE_TIMEOUT_MS. */
static void probe_work(uv_work_t *w) {
    probe *p = w->data;
    uint64_t deadline = mono_ms() + CLUSTER_PROBE_TIMEOUT_MS;
    for (uint32_t i = 0; i < p->count; i++) {
        probe_target *t = &p->targets[i];
        t->fd = -1;
        if (t->self) {
            t->phase = 3;
            continue;
        }
        t->rbuf = malloc(CLUSTER_INFO_REPLY_SIZE_MAX_BYTES + 64);
        if (t->rbuf == NULL) QUIVER_FATAL("out of memory (QUIVER.CLUSTER NODES)");
        target_open(t);
    }
    struct pollfd fds[CLUSTER_MEMBERS_COUNT_MAX];
    uint32_t idx[CLUSTER_MEMBERS_COUNT_MAX];
    for (;;) {
        nfds_t nf = 0;
        for (uint32_t i = 0; i < p->count; i++) {
            probe_target *t = &p->targets[i];
            if (t->phase == 3) continue;
            fds[nf].fd = t->fd;
            fds[nf].events = (short)(t->phase == 2 ? POLLIN : POLLOUT);
            fds[nf].revents = 0;
            idx[nf++] = i;
        }
        if (nf == 0) break;
        uint64_t now = mono_ms();
        if (now >= deadline) break;
        int rc = poll(fds, nf, (int)(deadline - now));
        if (rc < 0 && errno != EINTR) QUIVER_FATAL("poll: %s", strerror(errno));
        if (rc <= 0) continue;
        for (nfds_t k = 0; k < nf; k++)
            if (fds[k].revents != 0) target_step(&p->targets[idx[k]], fds[k].revents);
    }
    for (uint32_t i = 0; i < p->count; i++) {
        probe_target *t = &p->targets[i];
        if (t->phase != 3) {
            char ms[16];
            snprintf(ms, sizeof ms, "%d", CLUSTER_PROBE_TIMEOUT_MS);
            target_fail(t, "no INFO raft answer within %s ms", ms);
        }
        free(t->rbuf);
        t->rbuf = NULL;
    }
}

static void reply_member(reply_buf *b, const probe_target *t, uint64_t leader_commit, bool leader_commit_known) {
    reply_array(b, 24);
    reply_bulk_cstr(b, "id");
    reply_int(b, (int64_t)t->id);
    reply_bulk_cstr(b, "address");
    reply_bulk_cstr(b, t->client_address);
    reply_bulk_cstr(b, "raft_address");
    reply_bulk_cstr(b, t->raft_address);
    reply_bulk_cstr(b, "role");
    reply_bulk_cstr(b, role_name(t->role));
    reply_bulk_cstr(b, "state");
    reply_bulk_cstr(b, t->reachable ? t->info.state : "unreachable");
    reply_bulk_cstr(b, "term");
    if (t->reachable) reply_int(b, (int64_t)t->info.term);
    else reply_null(b);
    reply_bulk_cstr(b, "commit_index");
    if (t->reachable) reply_int(b, (int64_t)t->info.commit_index);
    else reply_null(b);
    reply_bulk_cstr(b, "applied_index");
    if (t->reachable) reply_int(b, (int64_t)t->info.applied_index);
    else reply_null(b);
    reply_bulk_cstr(b, "lag");
    if (t->reachable && leader_commit_known)
        reply_int(b, leader_commit > t->info.applied_index ? (int64_t)(leader_commit - t->info.applied_index) : 0);
    else
        reply_null(b);
    reply_bulk_cstr(b, "reachable");
    reply_bulk_cstr(b, t->reachable ? "yes" : "no");
    reply_bulk_cstr(b, "leader_id");
    if (t->reachable) reply_int(b, (int64_t)t->info.leader_id);
    else reply_null(b);
    reply_bulk_cstr(b, "error");
    reply_bulk_cstr(b, t->reachable ? "" : t->error);
}

/* Loop thread: this node's row from raft, the leader's commit index, and
 * one reply per waiter. */
static void probe_after(uv_work_t *w, int status) {
    probe *p = w->data;
    QUIVER_ASSERT(status == 0 || status == UV_ECANCELED);
    for (probe **pp = &probes_inflight; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    node *n = p->n;
    if (n->repl == NULL) {
        for (uint32_t i = 0; i < p->waiter_count; i++) {
            reply_error(&p->waiters[i]->buf, "ERR the node is shutting down");
            node_slot_done(p->waiters[i]);
        }
        free(p);
        return;
    }
    repl_info ri;
    repl_get_info(n->repl, &ri);
    uint64_t leader_commit = 0;
    bool leader_commit_known = false;
    uint64_t max_commit = 0;
    bool any = false;
    for (uint32_t i = 0; i < p->count; i++) {
        probe_target *t = &p->targets[i];
        if (t->self) {
            t->reachable = true;
            memset(&t->info, 0, sizeof t->info);
            t->info.node_id = ri.node_id;
            snprintf(t->info.state, sizeof t->info.state, "%s", ri.role ? ri.role : "follower");
            t->info.term = ri.current_term;
            t->info.commit_index = ri.commit_index;
            t->info.applied_index = ri.last_applied_index;
            t->info.leader_id = ri.leader_id;
        }
        if (!t->reachable) continue;
        if (strcmp(t->info.state, "leader") == 0 && (!leader_commit_known || t->info.commit_index > leader_commit)) {
            leader_commit = t->info.commit_index;
            leader_commit_known = true;
        }
        if (!any || t->info.commit_index > max_commit) max_commit = t->info.commit_index;
        any = true;
    }
    /* No leader answered: the highest commit index anyone reported (a lower
     * bound of the leader's). */
    if (!leader_commit_known && any) {
        leader_commit = max_commit;
        leader_commit_known = true;
    }
    for (uint32_t i = 0; i < p->waiter_count; i++) {
        reply_buf *b = &p->waiters[i]->buf;
        reply_array(b, p->count);
        for (uint32_t k = 0; k < p->count; k++) reply_member(b, &p->targets[k], leader_commit, leader_commit_known);
        node_slot_done(p->waiters[i]);
    }
    free(p);
}

static void cmd_nodes(node_client *c, node_slot *s, resp_request *req) {
    node *n = c->n;
    if (req->argc != 2) {
        reply_error(&s->buf, "ERR wrong number of arguments: QUIVER.CLUSTER NODES");
        node_slot_done(s);
        return;
    }
    if (n->repl == NULL) {
        reply_error(&s->buf, "ERR this node runs without raft (or is shutting down): no cluster view");
        node_slot_done(s);
        return;
    }
    for (probe *p = probes_inflight; p != NULL; p = p->next) {
        if (p->n != n) continue;
        if (p->waiter_count >= CLUSTER_PROBE_WAITERS_COUNT_MAX) {
            reply_error(&s->buf, "ERR busy: too many QUIVER.CLUSTER NODES requests waiting; retry");
            node_slot_done(s);
            return;
        }
        node_slot_hold(s);
        p->waiters[p->waiter_count++] = s;
        return;
    }
    struct raft *rf = repl_raft(n->repl);
    probe *p = calloc(1, sizeof *p);
    if (p == NULL) QUIVER_FATAL("out of memory (QUIVER.CLUSTER NODES)");
    p->n = n;
    p->work.data = p;
    unsigned members = rf->configuration.n;
    if (members > CLUSTER_MEMBERS_COUNT_MAX) members = CLUSTER_MEMBERS_COUNT_MAX;
    for (unsigned i = 0; i < members; i++) {
        const struct raft_server *srv = &rf->configuration.servers[i];
        probe_target *t = &p->targets[p->count++];
        t->id = srv->id;
        t->role = srv->role;
        t->self = srv->id == n->cfg->node_id;
        t->fd = -1;
        snprintf(t->raft_address, sizeof t->raft_address, "%s", srv->address ? srv->address : "");
        cluster_client_address(n->cfg, srv->id, srv->address, t->client_address, sizeof t->client_address);
    }
    node_slot_hold(s);
    p->waiters[p->waiter_count++] = s;
    p->next = probes_inflight;
    probes_inflight = p;
    int rc = uv_queue_work(n->loop, &p->work, probe_work, probe_after);
    QUIVER_ASSERT(rc == 0); /* only fails for a NULL callback */
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

void cluster_command(node_client *c, node_slot *s, resp_request *req) {
    QUIVER_ASSERT(c != NULL && s != NULL && req != NULL && req->argc >= 2);
    if (arg_is(req, 1, "nodes")) cmd_nodes(c, s, req);
    else if (arg_is(req, 1, "add")) cmd_add(c, s, req);
    else if (arg_is(req, 1, "remove")) cmd_remove(c, s, req);
    else if (arg_is(req, 1, "transfer")) cmd_transfer(c, s, req);
    else {
        reply_errorf(&s->buf, "ERR unknown QUIVER.CLUSTER subcommand '%.64s' (NODES, ADD id address, REMOVE id, "
                              "TRANSFER [id])",
                     req->argv[1]);
        node_slot_done(s);
    }
}
