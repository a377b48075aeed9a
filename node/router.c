/*
 * router.c -- GRAPH.* commands: classify, then propose (writes) or queue
 * for a reader (reads).  See router.h for the consistency rules.
 *
 * Argument forms follow FalkorDB:
 *   GRAPH.QUERY graph query [--compact] [TIMEOUT ms]
 *   GRAPH.RO_QUERY graph query [--compact] [TIMEOUT ms]
 *   GRAPH.EXPLAIN graph query
 *   GRAPH.DELETE graph
 *   GRAPH.LIST
 *   QUIVER.DIGEST graph
 *
 * A GRAPH.QUERY / GRAPH.RO_QUERY text goes through admission (admission.h:
 * query_admit, inline for short texts, on the offload pool for long ones)
 * before it is classified, proposed or read; a write whose command cannot
 * fit in one raft entry (--max-entry-bytes) is refused at once.  A write's
 * result is encoded into RESP on the loop thread when it is small, on the
 * offload pool when its result arena passes NODE_ENCODE_INLINE_SIZE_MAX_BYTES
 * (node_slot_reply_result, shared with the leader side of QUIVER.FORWARD).
 */
#include "router.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/limits.h"
#include "../common/qassert.h"
#include "../query/query.h"
#include "../statemachine/command.h"
#include "admission.h"

#define ROUTER_SESSION_WAIT_MS_DEFAULT 5000 /* when neither TIMEOUT nor --forward-timeout-ms is set */
/* A write result whose arena holds more than this is encoded into RESP on
 * the offload pool, not on the loop thread (the encoding walks every cell;
 * 64 KiB of result encodes in well under a millisecond). */
#define ROUTER_MOVE_TEXT_SIZE_MIN_BYTES (64u * 1024) /* a longer write text moves into the forwarder */

typedef struct query_opts {
    bool compact;
    uint64_t timeout_ms;
} query_opts;

/* ---- argument checks ---- */

static bool check_graph_name(node_slot *s, const resp_request *req, uint32_t i) {
    size_t len = req->argv_len[i];
    if (len == 0 || len > QUIVER_GRAPH_NAME_SIZE_MAX_BYTES) {
        reply_errorf(&s->buf, "ERR graph name must be 1 to %d bytes long", QUIVER_GRAPH_NAME_SIZE_MAX_BYTES);
        node_slot_done(s);
        return false;
    }
    return true;
}

static bool parse_opts(node_slot *s, const resp_request *req, uint32_t from, query_opts *o) {
    memset(o, 0, sizeof(*o));
    for (uint32_t i = from; i < req->argc; i++) {
        const char *a = req->argv[i];
        if (strcasecmp(a, "--compact") == 0) {
            o->compact = true;
        } else if (strcasecmp(a, "timeout") == 0) {
            char *end = NULL;
            if (i + 1 >= req->argc || req->argv[i + 1][0] == '-' || req->argv[i + 1][0] == '\0' ||
                (o->timeout_ms = strtoull(req->argv[i + 1], &end, 10), *end != '\0')) {
                reply_error(&s->buf, "ERR Failed to parse query timeout value");
                node_slot_done(s);
                return false;
            }
            i++;
        } else {
            reply_errorf(&s->buf, "ERR unknown argument '%.64s' (expected --compact or TIMEOUT ms)", a);
            node_slot_done(s);
            return false;
        }
    }
    return true;
}

/* Errors from raft/ come with their own text; give them Redis' "ERR" shape. */
static void reply_repl_error(reply_buf *b, repl_status_code st, const char *error) {
    const char *fallback = "request failed";
    switch (st) {
    case REPL_NOT_LEADER: fallback = "this node is not the leader"; break;
    case REPL_UNKNOWN_OUTCOME:
        fallback = "outcome unknown: leadership was lost after the write was proposed; it may or may not have been applied";
        break;
    case REPL_SHUTTING_DOWN: fallback = "server is shutting down"; break;
    case REPL_BUSY: fallback = "busy: too many requests in flight, retry"; break;
    case REPL_INVALID: fallback = "invalid command"; break;
    case REPL_OK: break;
    }
    const char *msg = (error != NULL && error[0] != '\0') ? error : fallback;
    if (strncmp(msg, "ERR ", 4) == 0)
        reply_error(b, msg);
    else
        reply_errorf(b, "ERR %s", msg);
}

/* ---- reads ---- */

static void submit_read(node *n, read_job *job) {
    node_slot *s = job->ctx;
    if (n->readers == NULL) { /* shutting down: the pool is gone */
        reply_error(&s->buf, "ERR server is shutting down");
        read_job_free(job);
        node_slot_done(s);
        return;
    }
    if (!readers_submit(n->readers, job)) {
        reply_error(&s->buf, "ERR busy: too many reads queued, retry");
        read_job_free(job);
        node_slot_done(s);
    }
}

typedef struct barrier_ctx {
    node *n;
    read_job *job;
    uint64_t term; /* current term when the barrier was requested */
} barrier_ctx;

static void barrier_cb(void *ctx, repl_status_code st, uint64_t index, const char *error) {
    barrier_ctx *b = ctx;
    node *n = b->n;
    read_job *job = b->job;
    uint64_t term = b->term;
    free(b);
    if (st == REPL_OK) {
        node_note_leader_index(n, index);
        if (n->repl != NULL && n->cfg->peer_count == 1) {
            repl_info info;
            repl_get_info(n->repl, &info);
            if (info.current_term == term) n->warm_term = term; /* see start_read */
        }
        submit_read(n, job);
        return;
    }
    node_slot *s = job->ctx;
    reply_repl_error(&s->buf, st, error);
    read_job_free(job);
    node_slot_done(s);
}

/* Cluster reads: the read gate (the leader's read index, then this node's
 * applied index; forward.c) before the snapshot. */
static void cluster_read_cb(void *ctx, repl_status_code st, uint64_t index, const char *error) {
    read_job *job = ctx;
    node_slot *s = job->ctx;
    node *n = s->client->n;
    if (st != REPL_OK) {
        reply_repl_error(&s->buf, st, error);
        read_job_free(job);
        node_slot_done(s);
        return;
    }
    node_note_leader_index(n, index);
    submit_read(n, job);
}

/* ---- session reads: wait for this node's applied index ---- */

/* One session read waiting for the applied index, with its deadline.
 * Freed once both the wait's callback has run and the timer is closed
 * (pending counts them); whichever of the two comes first answers. */
typedef struct session_wait {
    node *n;
    read_job *job;        /* NULL once answered */
    uint64_t need_index;  /* the connection's session index */
    uint64_t timeout_ms;
    uv_timer_t timer;
    uint32_t pending;     /* the wait's callback + the timer's close */
} session_wait;

static void session_release(session_wait *w) {
    QUIVER_ASSERT(w->pending > 0);
    if (--w->pending == 0) free(w);
}

static void session_timer_closed(uv_handle_t *h) { session_release(h->data); }

static void session_applied_cb(void *ctx, repl_status_code st, uint64_t index, const char *error) {
    (void)index;
    session_wait *w = ctx;
    read_job *job = w->job;
    if (job != NULL) {
        w->job = NULL;
        uv_timer_stop(&w->timer);
        uv_close((uv_handle_t *)&w->timer, session_timer_closed);
        if (st == REPL_OK) {
            submit_read(w->n, job);
        } else {
            node_slot *s = job->ctx;
            reply_repl_error(&s->buf, st, error);
            read_job_free(job);
            node_slot_done(s);
        }
    }
    session_release(w);
}

static void session_timeout_cb(uv_timer_t *t) {
    session_wait *w = t->data;
    read_job *job = w->job;
    QUIVER_ASSERT(job != NULL); /* answered waits have their timer closed */
    w->job = NULL;
    node *n = w->n;
    n->session_wait_timeouts_total++;
    uint64_t applied = 0;
    if (n->repl != NULL) {
        repl_info ri;
        repl_get_info(n->repl, &ri);
        applied = ri.last_applied_index;
    }
    node_slot *s = job->ctx;
    reply_errorf(&s->buf,
                 "ERR session read timed out after %" PRIu64 " ms: this node has applied log index %" PRIu64
                 " but this connection's last acknowledged write is at index %" PRIu64
                 " (the node lags or is cut off from the leader); retry, or read from another node",
                 w->timeout_ms, applied, w->need_index);
    read_job_free(job);
    node_slot_done(s);
    uv_close((uv_handle_t *)&w->timer, session_timer_closed);
}

static void session_nudge_cb(void *ctx, repl_status_code st, uint64_t index, const char *error) {
    (void)error;
    node *n = ctx;
    QUIVER_ASSERT(n->session_nudge_inflight);
    n->session_nudge_inflight = false;
    if (st == REPL_OK) node_note_leader_index(n, index);
}

/* A follower learns that an entry committed only from the leader's next
 * AppendEntries: with nothing else to replicate that is the next heartbeat,
 * so a session read right after a write through a follower would wait up
 * to a heartbeat interval or two (measured: ~200 ms per write-then-read
 * with the default timeouts).  The nudge asks the leader for a read index
 * once (one in flight per node, shared by every session read waiting
 * meanwhile): the leader's barrier entry carries the new commit index to
 * the followers at once.  The read itself still waits only for its own
 * index on this node and does not need the answer: with the leader gone it
 * is served as soon as the commit index arrives by any other means, and
 * times out otherwise. */
static void session_nudge(node *n, const repl_info *ri) {
    if (n->session_nudge_inflight || n->fwd == NULL || n->cluster == NULL || n->stopping) return;
    if (ri->leader_id == 0 || ri->leader_id == ri->node_id) return; /* no leader known, or this node leads */
    n->session_nudge_inflight = true;
    n->session_nudges_total++;
    n->cluster->read_gate(n->fwd, n->repl, session_nudge_cb, n); /* never answers inside */
}

/* A session read (DESIGN.md 6): the connection's own acknowledged writes
 * must be in the snapshot, so wait until this node applied the highest
 * index among them (never contacting the leader), bounded by the read's
 * TIMEOUT or else --forward-timeout-ms. */
static void session_read(node *n, node_client *c, read_job *job) {
    uint64_t need = c->session_index;
    if (n->repl == NULL || need == 0) {
        submit_read(n, job);
        return;
    }
    repl_info ri;
    repl_get_info(n->repl, &ri);
    /* last_applied_index >= need implies the state machine applied entry
     * need (repl_get_info counts raft's applied index only once the apply
     * thread has caught up with every entry handed to it). */
    if (ri.last_applied_index >= need || n->cluster == NULL || n->cluster->wait_applied == NULL) {
        /* Without the cluster table (unit tests) writes are answered after
         * they are applied: nothing to wait for. */
        submit_read(n, job);
        return;
    }
    session_nudge(n, &ri);
    session_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) QUIVER_FATAL("out of memory (session read)");
    w->n = n;
    w->job = job;
    w->need_index = need;
    w->timeout_ms = job->timeout_ms != 0              ? job->timeout_ms
                    : n->cfg->forward_timeout_ms != 0 ? n->cfg->forward_timeout_ms
                                                      : ROUTER_SESSION_WAIT_MS_DEFAULT;
    w->pending = 2;
    uv_timer_init(n->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, session_timeout_cb, w->timeout_ms, 0);
    n->session_waits_total++;
    n->cluster->wait_applied(n->repl, need, session_applied_cb, w); /* never answers inside */
}

/* Hold s and run the job once reads may be served at the level the read
 * arrived with (router.h). */
static void start_read(node_client *c, node_slot *s, read_job *job) {
    node *n = c->n;
    job->ctx = s;
    job->consistency = s->consistency;
    node_slot_hold(s);
    if (n->readers == NULL) {
        reply_error(&s->buf, "ERR reads are not available");
        read_job_free(job);
        node_slot_done(s);
        return;
    }
    if (s->consistency == NODE_CONSISTENCY_STALE) {
        if (job->kind == READ_QUERY) {
            job->report_lag = true;
            if (n->repl != NULL) {
                repl_info ri;
                repl_get_info(n->repl, &ri);
                job->known_commit_index = ri.commit_index > n->leader_index_seen ? ri.commit_index : n->leader_index_seen;
                job->applied_index = ri.last_applied_index;
            }
        }
        submit_read(n, job);
        return;
    }
    if (s->consistency == NODE_CONSISTENCY_SESSION) {
        session_read(n, c, job);
        return;
    }
    if (n->fwd != NULL && n->repl != NULL) {
        n->cluster->read_gate(n->fwd, n->repl, cluster_read_cb, job);
        return;
    }
    bool direct = n->repl == NULL;
    uint64_t term = 0;
    if (!direct) {
        repl_info info;
        repl_get_info(n->repl, &info);
        term = info.current_term;
        /* A lone node cannot be deposed, so once one read barrier has
         * completed in its current term (everything of earlier terms, e.g.
         * entries replayed after a restart, is then in RocksDB) and since
         * every write of this term is acknowledged only after it is
         * applied, a snapshot taken now sees every acknowledged write: no
         * further barrier is needed until the term changes.  With peers,
         * every read batch confirms leadership (repl_read_barrier). */
        direct = n->cfg->peer_count == 1 && info.ready && n->warm_term == info.current_term;
    }
    if (direct) {
        submit_read(n, job);
        return;
    }
    barrier_ctx *b = malloc(sizeof(*b));
    if (b == NULL) QUIVER_FATAL("out of memory (read barrier)");
    b->n = n;
    b->job = job;
    b->term = term;
    repl_read_barrier(n->repl, barrier_cb, b);
}

void router_read_done(void *ctx, read_job *job) {
    (void)ctx;
    node_slot *s = job->ctx;
    QUIVER_ASSERT(job->consistency < NODE_CONSISTENCY_COUNT);
    s->client->n->reads_served_total[job->consistency]++;
    reply_buf tmp = s->buf;
    s->buf = job->out;
    job->out = tmp;
    read_job_free(job);
    node_slot_done(s);
}

static read_job *job_from(const node *n, read_kind kind, resp_request *req, bool with_text) {
    read_job *job = read_job_new(kind);
    job->out.size_max_bytes = node_reply_size_max(n); /* never build what could not be delivered */
    job->req = *req;
    memset(req, 0, sizeof(*req));
    if (job->req.argc > 1) {
        job->graph = job->req.argv[1];
        job->graph_len = job->req.argv_len[1];
    }
    if (with_text) {
        job->text = job->req.argv[2];
        job->text_len = job->req.argv_len[2];
    }
    return job;
}

/* Mark s as a read of c, at the connection's level now (server.h). */
static void mark_read(node_client *c, node_slot *s) {
    node_slot_mark_read(s);
    s->consistency = (uint8_t)c->consistency;
}

/* ---- writes ---- */

typedef enum write_kind { WRITE_QUERY, WRITE_GRAPH_DELETE } write_kind;

typedef struct write_ctx {
    node_slot *s;
    write_kind kind;
} write_ctx;

/* A write's result as its GRAPH.QUERY reply (node_encode_fn; arg: --compact). */
static void encode_write_result(reply_buf *out, const query_result *r, uint64_t compact) {
    reply_query_result(out, r, compact != 0);
}

static void write_cb(void *ctx, repl_status_code st, query_result *r, uint64_t index, const char *error) {
    write_ctx *w = ctx;
    node_slot *s = w->s;
    write_kind kind = w->kind;
    free(w);
    if (st == REPL_OK) {
        /* Session reads of this connection wait for this index; the leader
         * committed it (it is the entry's log index on every node). */
        node_client *c = s->client;
        if (index > c->session_index) c->session_index = index;
        node_note_leader_index(c->n, index);
    }
    if (st != REPL_OK) {
        reply_repl_error(&s->buf, st, error);
    } else if (kind == WRITE_GRAPH_DELETE) {
        if (r->status == QUERY_OK)
            reply_bulkf(&s->buf, "Graph removed, internal execution time: %.6f milliseconds", r->stats.execution_time_ms);
        else if (r->status == QUERY_ERR_NO_GRAPH)
            reply_error(&s->buf, "ERR Invalid graph operation on empty key");
        else
            reply_error(&s->buf, r->error ? r->error : "ERR graph deletion failed");
    } else {
        node_slot_reply_result(s, r, encode_write_result, s->compact); /* takes r; large: off the loop */
        return;
    }
    query_result_free(r);
    node_slot_done(s);
}

static void deferred_write_query(node_client *c, node_slot *s, resp_request *req);
static void deferred_write_delete(node_client *c, node_slot *s, resp_request *req);

/* Propose a write (arguments already checked).  allow_defer: the request
 * just arrived (mark it; wait for earlier reads of the connection);
 * otherwise it is a deferred write being released. */
static void start_write(node_client *c, node_slot *s, write_kind kind, resp_request *req, bool allow_defer) {
    node *n = c->n;
    if (allow_defer) {
        /* One command per entry at least: a write that cannot fit alone is
         * refused now, not after waiting (raft/ refuses it too). */
        uint64_t entry = router_write_entry_size(req->argv_len[1], kind == WRITE_QUERY ? req->argv_len[2] : 0);
        if (n->cfg->max_entry_bytes != 0 && entry > n->cfg->max_entry_bytes) {
            reply_errorf(&s->buf,
                         "ERR the write does not fit in one raft log entry: %" PRIu64
                         " bytes encoded, --max-entry-bytes is %" PRIu64,
                         entry, n->cfg->max_entry_bytes);
            node_slot_done(s);
            return;
        }
        node_slot_mark_write(s);
        if (c->request_id_set) { /* QUIVER.REQUESTID: this write takes the id (router.h) */
            s->has_request_id = true;
            s->request_id = c->request_id;
            c->request_id_set = false;
        }
        if (c->reads_pending > 0) {
            node_slot_defer(s, req, kind == WRITE_GRAPH_DELETE ? deferred_write_delete : deferred_write_query);
            return;
        }
    }
    if (n->repl == NULL) {
        reply_error(&s->buf, "ERR writes are not available (no replication)");
        node_slot_done(s);
        return;
    }
    sm_command cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.kind = kind == WRITE_GRAPH_DELETE ? SM_CMD_GRAPH_DELETE : SM_CMD_QUERY;
    cmd.request_id = s->has_request_id ? s->request_id : repl_next_request_id(n->repl);
    cmd.graph.ptr = req->argv[1];
    cmd.graph.len = (uint32_t)req->argv_len[1];
    if (kind == WRITE_QUERY) {
        cmd.text.ptr = req->argv[2];
        cmd.text.len = (uint32_t)req->argv_len[2];
    } else {
        cmd.text.ptr = "";
        cmd.text.len = 0;
    }
    write_ctx *w = malloc(sizeof(*w));
    if (w == NULL) QUIVER_FATAL("out of memory (write)");
    w->s = s;
    w->kind = kind;
    node_slot_hold(s);
    if (n->fwd != NULL && kind == WRITE_QUERY && n->cluster->write_owned != NULL &&
        req->argv_len[2] >= ROUTER_MOVE_TEXT_SIZE_MIN_BYTES) {
        /* A large text moves into the forwarder instead of being copied. */
        char *text = req->argv[2];
        QUIVER_ASSERT(req->size_bytes >= req->argv_len[2]);
        req->size_bytes -= req->argv_len[2];
        req->argv[2] = NULL;
        req->argv_len[2] = 0;
        n->cluster->write_owned(n->fwd, &cmd, text, write_cb, w); /* cb never runs inside */
    } else if (n->fwd != NULL) {
        n->cluster->write(n->fwd, &cmd, write_cb, w); /* copies cmd; cb never runs inside */
    } else {
        repl_propose(n->repl, &cmd, write_cb, w); /* copies cmd; cb never runs inside */
    }
}

static void deferred_write_query(node_client *c, node_slot *s, resp_request *req) {
    start_write(c, s, WRITE_QUERY, req, false);
}
static void deferred_write_delete(node_client *c, node_slot *s, resp_request *req) {
    start_write(c, s, WRITE_GRAPH_DELETE, req, false);
}

/* ---- GRAPH.QUERY / RO_QUERY / EXPLAIN ---- */

typedef enum query_cmd { QCMD_QUERY, QCMD_RO_QUERY, QCMD_EXPLAIN } query_cmd;

static void deferred_query(node_client *c, node_slot *s, resp_request *req);
static void deferred_ro_query(node_client *c, node_slot *s, resp_request *req);
static void deferred_explain(node_client *c, node_slot *s, resp_request *req);

/* Run the read part of a query command (arguments already checked). */
static void query_read(node_client *c, node_slot *s, resp_request *req, query_cmd qc, bool allow_defer) {
    if (allow_defer) mark_read(c, s);
    if (allow_defer && c->writes_in_flight > 0) {
        node_slot_defer(s, req, qc == QCMD_QUERY ? deferred_query : qc == QCMD_RO_QUERY ? deferred_ro_query
                                                                                         : deferred_explain);
        return;
    }
    query_opts o;
    if (qc != QCMD_EXPLAIN && !parse_opts(s, req, 3, &o)) return;
    if (qc == QCMD_EXPLAIN) memset(&o, 0, sizeof(o));
    read_job *job = job_from(c->n, qc == QCMD_EXPLAIN ? READ_EXPLAIN : READ_QUERY, req, true);
    job->compact = o.compact;
    job->timeout_ms = o.timeout_ms;
    job->read_only = qc == QCMD_RO_QUERY;
    start_read(c, s, job);
}

static void deferred_query(node_client *c, node_slot *s, resp_request *req) { query_read(c, s, req, QCMD_QUERY, false); }
static void deferred_ro_query(node_client *c, node_slot *s, resp_request *req) {
    query_read(c, s, req, QCMD_RO_QUERY, false);
}
static void deferred_explain(node_client *c, node_slot *s, resp_request *req) {
    query_read(c, s, req, QCMD_EXPLAIN, false);
}

typedef struct admitted_arg {
    query_cmd qc;
    query_opts o;
} admitted_arg;
_Static_assert(sizeof(admitted_arg) <= ADMISSION_ARG_SIZE_MAX_BYTES, "fits the admission job");

/* After admission (admission.h): refuse, read, or write. */
static void graph_query_admitted(node_client *c, node_slot *s, resp_request *req, const admission_result *res,
                                 void *arg) {
    const admitted_arg *a = arg;
    if (res->rc != 0) {
        reply_error(&s->buf, res->error);
        node_slot_done(s);
        return;
    }
    if (!res->admission.writes) {
        if (c->closing) { /* nobody will read the reply */
            node_slot_done(s);
            return;
        }
        query_read(c, s, req, a->qc, true);
        return;
    }
    if (a->qc == QCMD_RO_QUERY) {
        reply_error(&s->buf, "graph.RO_QUERY is to be executed only on read-only queries");
        node_slot_done(s);
        return;
    }
    s->compact = a->o.compact;
    start_write(c, s, WRITE_QUERY, req, true);
}

static void graph_query(node_client *c, node_slot *s, resp_request *req, query_cmd qc) {
    if (!check_graph_name(s, req, 1)) return;
    admitted_arg a = {.qc = qc};
    if (qc != QCMD_EXPLAIN) {
        if (!parse_opts(s, req, 3, &a.o)) return;
    } else if (req->argc != 3) {
        reply_error(&s->buf, "ERR wrong number of arguments for 'graph.explain' command");
        node_slot_done(s);
        return;
    }
    if (qc == QCMD_EXPLAIN) { /* a read: the reader parses and plans it */
        query_read(c, s, req, qc, true);
        return;
    }
    admission_start(c, s, req, req->argv[2], req->argv_len[2], graph_query_admitted, &a, sizeof a);
}

void router_graph_query(node_client *c, node_slot *s, resp_request *req) { graph_query(c, s, req, QCMD_QUERY); }
void router_graph_ro_query(node_client *c, node_slot *s, resp_request *req) { graph_query(c, s, req, QCMD_RO_QUERY); }
void router_graph_explain(node_client *c, node_slot *s, resp_request *req) { graph_query(c, s, req, QCMD_EXPLAIN); }

/* ---- GRAPH.DELETE / GRAPH.LIST / QUIVER.DIGEST ---- */

void router_graph_delete(node_client *c, node_slot *s, resp_request *req) {
    if (!check_graph_name(s, req, 1)) return;
    start_write(c, s, WRITE_GRAPH_DELETE, req, true);
}

static void deferred_list(node_client *c, node_slot *s, resp_request *req) {
    start_read(c, s, job_from(c->n, READ_GRAPH_LIST, req, false));
}

void router_graph_list(node_client *c, node_slot *s, resp_request *req) {
    mark_read(c, s);
    if (c->writes_in_flight > 0) {
        node_slot_defer(s, req, deferred_list);
        return;
    }
    deferred_list(c, s, req);
}

static void deferred_digest(node_client *c, node_slot *s, resp_request *req) {
    start_read(c, s, job_from(c->n, READ_DIGEST, req, false));
}

void router_digest(node_client *c, node_slot *s, resp_request *req) {
    if (!check_graph_name(s, req, 1)) return;
    mark_read(c, s);
    if (c->writes_in_flight > 0) {
        node_slot_defer(s, req, deferred_digest);
        return;
    }
    deferred_digest(c, s, req);
}

uint64_t router_write_entry_size(size_t graph_len, size_t text_len) {
    return sm_entry_padded_size(SM_ENTRY_OVERHEAD_BYTES + SM_COMMAND_FIXED_BYTES + graph_len + text_len);
}

/* ---- QUIVER.FORWARD (served by forward.c) ---- */

void router_forward(node_client *c, node_slot *s, resp_request *req) {
    if (c->n->cluster == NULL) {
        reply_error(&s->buf, "ERR QUIVER.FORWARD is not available on this server");
        node_slot_done(s);
        return;
    }
    c->n->cluster->serve_forward(c, s, req);
}

/* ---- QUIVER.CONSISTENCY / QUIVER.REQUESTID ---- */

static const char *const consistency_names[NODE_CONSISTENCY_COUNT] = {"linearizable", "session", "stale"};

const char *router_consistency_name(node_consistency level) {
    QUIVER_ASSERT((unsigned)level < NODE_CONSISTENCY_COUNT);
    return consistency_names[level];
}

bool router_consistency_parse(const char *word, size_t len, node_consistency *out) {
    QUIVER_ASSERT(word != NULL && out != NULL);
    for (unsigned i = 0; i < NODE_CONSISTENCY_COUNT; i++) {
        if (strlen(consistency_names[i]) == len && strncasecmp(consistency_names[i], word, len) == 0) {
            *out = (node_consistency)i;
            return true;
        }
    }
    return false;
}

/* A decimal u64 > 0: digits only (no sign, space or "0x"), no overflow. */
static bool parse_u64_nonzero(const char *s, size_t len, uint64_t *out) {
    if (len == 0 || len > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (v == 0) return false;
    *out = v;
    return true;
}

bool router_request_id_parse(const char *origin, size_t origin_len, const char *seq, size_t seq_len,
                             sm_request_id *out) {
    QUIVER_ASSERT(origin != NULL && seq != NULL && out != NULL);
    sm_request_id id;
    if (!parse_u64_nonzero(origin, origin_len, &id.origin) || !parse_u64_nonzero(seq, seq_len, &id.seq)) return false;
    *out = id;
    return true;
}

void router_consistency(node_client *c, node_slot *s, resp_request *req) {
    if (req->argc == 1) {
        reply_simple(&s->buf, router_consistency_name(c->consistency));
    } else if (req->argc == 2) {
        node_consistency level;
        if (router_consistency_parse(req->argv[1], req->argv_len[1], &level)) {
            c->consistency = level;
            reply_simple(&s->buf, "OK");
        } else {
            reply_errorf(&s->buf, "ERR unknown consistency level '%.64s' (expected linearizable, session or stale)",
                         req->argv[1]);
        }
    } else {
        reply_error(&s->buf, "ERR wrong number of arguments for 'quiver.consistency' command");
    }
    node_slot_done(s);
}

void router_request_id(node_client *c, node_slot *s, resp_request *req) {
    QUIVER_ASSERT(req->argc == 3);
    sm_request_id id;
    if (!router_request_id_parse(req->argv[1], req->argv_len[1], req->argv[2], req->argv_len[2], &id)) {
        reply_error(&s->buf, "ERR QUIVER.REQUESTID origin and seq must be decimal unsigned 64-bit integers other than 0");
    } else {
        c->request_id = id;
        c->request_id_set = true;
        reply_simple(&s->buf, "OK");
    }
    node_slot_done(s);
}
