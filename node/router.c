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

#define ROUTER_CLASSIFY_ERROR_SIZE_MAX_BYTES 1024

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
    (void)index;
    barrier_ctx *b = ctx;
    node *n = b->n;
    read_job *job = b->job;
    uint64_t term = b->term;
    free(b);
    if (st == REPL_OK) {
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
    (void)index;
    read_job *job = ctx;
    node_slot *s = job->ctx;
    node *n = s->client->n;
    if (st != REPL_OK) {
        reply_repl_error(&s->buf, st, error);
        read_job_free(job);
        node_slot_done(s);
        return;
    }
    submit_read(n, job);
}

/* Hold s and run the job once reads may be served (router.h). */
static void start_read(node_client *c, node_slot *s, read_job *job) {
    node *n = c->n;
    job->ctx = s;
    node_slot_hold(s);
    if (n->readers == NULL) {
        reply_error(&s->buf, "ERR reads are not available");
        read_job_free(job);
        node_slot_done(s);
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
    reply_buf tmp = s->buf;
    s->buf = job->out;
    job->out = tmp;
    read_job_free(job);
    node_slot_done(s);
}

static read_job *job_from(read_kind kind, resp_request *req, bool with_text) {
    read_job *job = read_job_new(kind);
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

/* ---- writes ---- */

typedef enum write_kind { WRITE_QUERY, WRITE_GRAPH_DELETE } write_kind;

typedef struct write_ctx {
    node_slot *s;
    write_kind kind;
} write_ctx;

static void write_cb(void *ctx, repl_status_code st, query_result *r, uint64_t index, const char *error) {
    (void)index;
    write_ctx *w = ctx;
    node_slot *s = w->s;
    write_kind kind = w->kind;
    free(w);
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
        reply_query_result(&s->buf, r, s->compact);
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
        node_slot_mark_write(s);
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
    cmd.request_id = repl_next_request_id(n->repl);
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
    if (n->fwd != NULL)
        n->cluster->write(n->fwd, &cmd, write_cb, w); /* copies cmd; cb never runs inside */
    else
        repl_propose(n->repl, &cmd, write_cb, w); /* copies cmd; cb never runs inside */
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
    if (allow_defer) node_slot_mark_read(s);
    if (allow_defer && c->writes_in_flight > 0) {
        node_slot_defer(s, req, qc == QCMD_QUERY ? deferred_query : qc == QCMD_RO_QUERY ? deferred_ro_query
                                                                                         : deferred_explain);
        return;
    }
    query_opts o;
    if (qc != QCMD_EXPLAIN && !parse_opts(s, req, 3, &o)) return;
    if (qc == QCMD_EXPLAIN) memset(&o, 0, sizeof(o));
    read_job *job = job_from(qc == QCMD_EXPLAIN ? READ_EXPLAIN : READ_QUERY, req, true);
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

static void graph_query(node_client *c, node_slot *s, resp_request *req, query_cmd qc) {
    if (!check_graph_name(s, req, 1)) return;
    query_opts o;
    if (qc != QCMD_EXPLAIN) {
        if (!parse_opts(s, req, 3, &o)) return;
    } else if (req->argc != 3) {
        reply_error(&s->buf, "ERR wrong number of arguments for 'graph.explain' command");
        node_slot_done(s);
        return;
    }
    if (qc == QCMD_EXPLAIN) {
        query_read(c, s, req, qc, true);
        return;
    }
    bool writes = false;
    char err[ROUTER_CLASSIFY_ERROR_SIZE_MAX_BYTES];
    err[0] = '\0';
    if (query_classify(req->argv[2], req->argv_len[2], &writes, err, sizeof(err)) != 0) {
        reply_error(&s->buf, err[0] ? err : "ERR syntax error");
        node_slot_done(s);
        return;
    }
    if (!writes) {
        query_read(c, s, req, qc, true);
        return;
    }
    if (qc == QCMD_RO_QUERY) {
        reply_error(&s->buf, "graph.RO_QUERY is to be executed only on read-only queries");
        node_slot_done(s);
        return;
    }
    s->compact = o.compact;
    start_write(c, s, WRITE_QUERY, req, true);
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
    start_read(c, s, job_from(READ_GRAPH_LIST, req, false));
}

void router_graph_list(node_client *c, node_slot *s, resp_request *req) {
    node_slot_mark_read(s);
    if (c->writes_in_flight > 0) {
        node_slot_defer(s, req, deferred_list);
        return;
    }
    deferred_list(c, s, req);
}

static void deferred_digest(node_client *c, node_slot *s, resp_request *req) {
    start_read(c, s, job_from(READ_DIGEST, req, false));
}

void router_digest(node_client *c, node_slot *s, resp_request *req) {
    if (!check_graph_name(s, req, 1)) return;
    node_slot_mark_read(s);
    if (c->writes_in_flight > 0) {
        node_slot_defer(s, req, deferred_digest);
        return;
    }
    deferred_digest(c, s, req);
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
