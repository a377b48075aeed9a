/*
 * forward.c -- writes through any node: the peer link to the leader.
 *
 * The peer link is RESP on the leader's CLIENT port.  A node forwards with
 * one internal command, `QUIVER.FORWARD <blob>`, whose blob is a forward
 * request (forward.h: a write command with the request id its origin node
 * assigned, or a read-index request) and whose reply is a bulk string
 * holding a forward response (status, log index, the encoded query_result
 * of result_codec.h or an error text).  Why the client port and not a new
 * peer port:
 *   - nothing new to listen on, configure, publish or firewall; the
 *     leader's existing server already parses, bounds, pipelines and
 *     answers in order (server.h), so the leader side is one command
 *     handler (fwd_serve, reached through router_forward and the
 *     node_cluster_ops table of server.h);
 *   - one more port per node would have to be derived or configured
 *     anyway, exactly like the client address is now.
 * How a node knows the leader's client address: raft only knows raft
 * addresses, so --peers carries it: `ID=RAFT_HOST:PORT[@CLIENT_HOST:PORT]`.
 * Without the @ part the client port is the raft port - 1000 on the raft
 * host (the inverse of the single-node default raft port = client port +
 * 1000), so `--peers 1=node1:7379,...` means node1's clients are on 6379.
 * Trade-off: the client port must be reachable from the peers (bind
 * 0.0.0.0 in containers), and a membership change that adds a node will
 * have to carry its client address too.
 *
 * The forwarder (one per node of a multi-node cluster) takes every write
 * of this node's clients, the leader's own included, so a write that
 * arrives during a leader change is retried the same way wherever it came
 * in:
 *
 *   waiting   requests not yet sent, FIFO, bounded (FWD_WAITING_COUNT_MAX;
 *             past it: busy).  `pump` hands them to the leader of the
 *             moment: this node -> repl_propose / repl_read_barrier (which
 *             batch per loop iteration); another node -> its link.
 *   links     one TCP connection per peer, opened on demand (getaddrinfo,
 *             so container host names work), pipelined: requests are
 *             written back to back, at most FWD_INFLIGHT_COUNT_MAX and
 *             FWD_INFLIGHT_SIZE_MAX_BYTES unanswered; replies come in
 *             request order (the leader's server answers a connection in
 *             order), so a FIFO matches them.  Connection attempts to one
 *             peer are FWD_RECONNECT_BACKOFF_MS apart.
 *   retries   a request goes back to waiting, with its SAME request id,
 *             when the leader answers "not the leader" (not proposed), or
 *             "outcome unknown" (proposed, leadership lost), or when its
 *             link fails or is closed because raft names another leader
 *             (sent: it may have been proposed).  The latter two set
 *             maybe_applied.  Re-proposing is safe because the state
 *             machine's de-dup table (DESIGN.md 3) answers an id already
 *             applied with its first outcome instead of applying it again;
 *             and an entry of the old leader that is still in the new
 *             leader's log commits before the retry, so the retry is the
 *             duplicate.  Limit: the table is bounded by count
 *             (QUIVER_DEDUP_TABLE_COUNT_MAX ids, oldest evicted first), so
 *             the guarantee holds while fewer than that many other writes
 *             are applied between a write's first application and its
 *             retry.  Retries therefore jump the waiting queue, which is
 *             itself bounded well below the table (FWD_WAITING_COUNT_MAX),
 *             and nothing is applied while there is no leader; a time-based
 *             table would remove the assumption.
 *   deadline  every request has one (--forward-timeout-ms from its
 *             arrival).  Past it: a write never sent or always refused
 *             before proposing gets "no leader ... not applied"; one that
 *             may have been proposed gets "outcome unknown: ..."; a write
 *             sent and still unanswered gets "outcome unknown: ..." and its
 *             late reply is dropped.  A write this node proposed itself is
 *             not timed out: raft answers it (committed, or leadership lost
 *             within an election timeout thanks to check-quorum).
 *   order     requests of one client connection are answered in order by
 *             server.c; they are proposed in order while the leader is
 *             stable; retries after a leader change may reorder concurrent
 *             (pipelined) writes of one connection among themselves.
 *
 * The leader's side (fwd_serve) treats a forwarded write like a client's:
 * QUIVER.FORWARD is a command any client can send, so it is no way around
 * admission.  The write is refused with -OOM over --maxmemory, with
 * REPL_INVALID when it cannot fit in one log entry (--max-entry-bytes) or
 * when admission (admission.h; off the loop thread for long texts) refuses
 * its text, and only then proposed.  Large results are encoded (result
 * codec + forward response + RESP bulk) on the offload pool; on the
 * follower, a large response is decoded there too: the link's reply buffer,
 * which holds it, is handed to the job whole (fwd_reply_parser_detach), so
 * the loop thread copies at most the few bytes that arrived after it.
 *
 * Reads: a follower asks the leader for a read index (FWD_TYPE_READ_INDEX:
 * the leader runs its shared read barrier, DESIGN.md 6, and answers the
 * index its state machine had reached), waits until its own applied index
 * reaches it, then reads its local snapshot: linearizable reads on every
 * node (the Raft thesis' ReadIndex, section 6.4).
 *
 * Thread: the codec is pure (any thread); the forwarder runs on the loop
 * thread.
 */
#include "forward.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "../common/limits.h"
#include "../common/qassert.h"
#include "../statemachine/result_codec.h"
#include "admission.h"
#include "cluster.h"
#include "config.h"
#include "router.h"

/* A forward response or a write result larger than this is decoded or
 * encoded on the offload pool, not on the loop thread. */
#define FWD_INLINE_PAYLOAD_SIZE_MAX_BYTES (64u * 1024)

_Static_assert(FWD_WAITING_COUNT_MAX + FWD_INFLIGHT_COUNT_MAX < QUIVER_DEDUP_TABLE_COUNT_MAX,
               "a node's queued and in-flight writes must fit well inside the de-dup table");

/* ------------------------------------------------------------------ */
/* Codec                                                               */
/* ------------------------------------------------------------------ */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool nomem;
} wbuf;

static void w_put(wbuf *w, const void *data, size_t n) {
    if (w->nomem) return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 64;
        while (cap < w->len + n) cap *= 2;
        uint8_t *np = realloc(w->p, cap);
        if (np == NULL) {
            w->nomem = true;
            return;
        }
        w->p = np;
        w->cap = cap;
    }
    if (n) memcpy(w->p + w->len, data, n);
    w->len += n;
}
static void w_u8(wbuf *w, uint8_t v) { w_put(w, &v, 1); }
static void w_u32(wbuf *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    w_put(w, b, 4);
}
static void w_u64(wbuf *w, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (56 - 8 * i));
    w_put(w, b, 8);
}

static int w_finish(wbuf *w, uint8_t **buf, size_t *len) {
    if (!w->nomem) w_u64(w, XXH3_64bits(w->p, w->len));
    if (w->nomem) {
        free(w->p);
        return SM_CODEC_NOMEM;
    }
    *buf = w->p;
    *len = w->len;
    return SM_CODEC_OK;
}

typedef struct rbuf {
    const uint8_t *p;
    size_t left;
    bool err;
} rbuf;

static const uint8_t *r_take(rbuf *r, size_t n) {
    if (r->err || n > r->left) {
        r->err = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}
static uint8_t r_u8(rbuf *r) {
    const uint8_t *p = r_take(r, 1);
    return p ? p[0] : 0;
}
static uint32_t r_u32(rbuf *r) {
    const uint8_t *p = r_take(r, 4);
    return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}
static uint64_t r_u64(rbuf *r) {
    const uint8_t *p = r_take(r, 8);
    uint64_t v = 0;
    if (p)
        for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

/* Version, checksum and framing common to both messages: on success r
 * covers the body (after the version byte, before the checksum). */
static int open_message(const void *buf, size_t len, rbuf *r) {
    if (buf == NULL || len < 1 + 8) return SM_CODEC_MALFORMED;
    const uint8_t *p = buf;
    uint64_t sum = 0;
    for (int i = 0; i < 8; i++) sum = sum << 8 | p[len - 8 + i];
    if (XXH3_64bits(p, len - 8) != sum) return SM_CODEC_MALFORMED;
    if (p[0] != FWD_VERSION) return SM_CODEC_VERSION;
    r->p = p + 1;
    r->left = len - 1 - 8;
    r->err = false;
    return SM_CODEC_OK;
}

/* The encoded length of q (checked). */
static size_t request_encoded_size(const fwd_request *q) {
    size_t n = 1 + 1 + 8;
    if (q->type == FWD_TYPE_WRITE) n += 1 + 8 + 8 + 4 + (size_t)q->cmd.graph.len + 4 + (size_t)q->cmd.text.len;
    return n;
}

/* Check q (the rules of fwd_request_encode). */
static int request_check(const fwd_request *q) {
    if (q->type != FWD_TYPE_WRITE && q->type != FWD_TYPE_READ_INDEX) return SM_CODEC_INVALID;
    return q->type == FWD_TYPE_WRITE ? sm_command_check(&q->cmd) : SM_CODEC_OK;
}

/* Append q's encoding to w, the checksum covering only what this call
 * appended: the text is copied once, straight into w. */
static void request_encode_into(const fwd_request *q, wbuf *w) {
    size_t start = w->len;
    w_u8(w, FWD_VERSION);
    w_u8(w, (uint8_t)q->type);
    if (q->type == FWD_TYPE_WRITE) {
        w_u8(w, (uint8_t)q->cmd.kind);
        w_u64(w, q->cmd.request_id.origin);
        w_u64(w, q->cmd.request_id.seq);
        w_u32(w, q->cmd.graph.len);
        w_put(w, q->cmd.graph.ptr, q->cmd.graph.len);
        w_u32(w, q->cmd.text.len);
        w_put(w, q->cmd.text.ptr, q->cmd.text.len);
    }
    if (!w->nomem) w_u64(w, XXH3_64bits(w->p + start, w->len - start));
    QUIVER_ASSERT(w->nomem || w->len - start == request_encoded_size(q));
}

int fwd_request_encode(const fwd_request *q, uint8_t **buf, size_t *len) {
    QUIVER_ASSERT(q != NULL && buf != NULL && len != NULL);
    int rc = request_check(q);
    if (rc != SM_CODEC_OK) return rc;
    wbuf w = {0};
    request_encode_into(q, &w);
    if (w.nomem) {
        free(w.p);
        return SM_CODEC_NOMEM;
    }
    *buf = w.p;
    *len = w.len;
    return SM_CODEC_OK;
}

int fwd_request_decode(const void *buf, size_t len, fwd_request *out) {
    QUIVER_ASSERT(out != NULL);
    rbuf r;
    int rc = open_message(buf, len, &r);
    if (rc != SM_CODEC_OK) return rc;
    fwd_request q;
    memset(&q, 0, sizeof q);
    uint8_t type = r_u8(&r);
    if (type == FWD_TYPE_WRITE) {
        q.type = FWD_TYPE_WRITE;
        q.cmd.kind = (sm_command_kind)r_u8(&r);
        q.cmd.request_id.origin = r_u64(&r);
        q.cmd.request_id.seq = r_u64(&r);
        uint32_t glen = r_u32(&r);
        if (glen > QUIVER_GRAPH_NAME_SIZE_MAX_BYTES) return r.err ? SM_CODEC_MALFORMED : SM_CODEC_LIMIT;
        q.cmd.graph.ptr = (const char *)r_take(&r, glen);
        q.cmd.graph.len = glen;
        uint32_t tlen = r_u32(&r);
        if (tlen > QUIVER_QUERY_TEXT_SIZE_MAX_BYTES) return r.err ? SM_CODEC_MALFORMED : SM_CODEC_LIMIT;
        q.cmd.text.ptr = (const char *)r_take(&r, tlen);
        q.cmd.text.len = tlen;
        if (r.err) return SM_CODEC_MALFORMED;
        if (q.cmd.text.ptr == NULL) q.cmd.text.ptr = "";
        int c = sm_command_check(&q.cmd);
        if (c == SM_CODEC_INVALID) return SM_CODEC_MALFORMED;
        if (c != SM_CODEC_OK) return c;
    } else if (type == FWD_TYPE_READ_INDEX) {
        q.type = FWD_TYPE_READ_INDEX;
    } else {
        return SM_CODEC_MALFORMED;
    }
    if (r.err || r.left != 0) return SM_CODEC_MALFORMED;
    *out = q;
    return SM_CODEC_OK;
}

static bool status_known(int st) { return st >= REPL_OK && st <= REPL_INVALID; }

int fwd_response_encode(const fwd_response *rs, uint8_t **buf, size_t *len) {
    QUIVER_ASSERT(rs != NULL && buf != NULL && len != NULL);
    QUIVER_ASSERT(rs->payload != NULL || rs->payload_len == 0);
    if (rs->type != FWD_TYPE_WRITE && rs->type != FWD_TYPE_READ_INDEX) return SM_CODEC_INVALID;
    if (!status_known((int)rs->status)) return SM_CODEC_INVALID;
    if (rs->payload_len > FWD_REPLY_SIZE_MAX_BYTES - 64) return SM_CODEC_LIMIT;
    wbuf w = {0};
    w_u8(&w, FWD_VERSION);
    w_u8(&w, (uint8_t)rs->type);
    w_u8(&w, (uint8_t)rs->status);
    w_u64(&w, rs->index);
    w_u32(&w, (uint32_t)rs->payload_len);
    w_put(&w, rs->payload, rs->payload_len);
    return w_finish(&w, buf, len);
}

int fwd_response_decode(const void *buf, size_t len, fwd_response *out) {
    QUIVER_ASSERT(out != NULL);
    rbuf r;
    int rc = open_message(buf, len, &r);
    if (rc != SM_CODEC_OK) return rc;
    fwd_response rs;
    memset(&rs, 0, sizeof rs);
    uint8_t type = r_u8(&r);
    uint8_t status = r_u8(&r);
    rs.index = r_u64(&r);
    uint32_t plen = r_u32(&r);
    if (r.err) return SM_CODEC_MALFORMED;
    if (type != FWD_TYPE_WRITE && type != FWD_TYPE_READ_INDEX) return SM_CODEC_MALFORMED;
    if (!status_known(status)) return SM_CODEC_MALFORMED;
    rs.type = (fwd_type)type;
    rs.status = (repl_status_code)status;
    rs.payload = r_take(&r, plen);
    rs.payload_len = plen;
    if (r.err || r.left != 0) return SM_CODEC_MALFORMED;
    if (rs.payload == NULL) rs.payload = (const uint8_t *)"";
    *out = rs;
    return SM_CODEC_OK;
}

/* ---- the reply parser ---- */

void fwd_reply_parser_init(fwd_reply_parser *p, size_t size_max_bytes) {
    memset(p, 0, sizeof *p);
    p->size_max_bytes = size_max_bytes;
}

void fwd_reply_parser_free(fwd_reply_parser *p) {
    free(p->buf);
    size_t m = p->size_max_bytes;
    memset(p, 0, sizeof *p);
    p->size_max_bytes = m;
}

char *fwd_reply_parser_detach(fwd_reply_parser *p) {
    QUIVER_ASSERT(p != NULL && p->off <= p->len);
    char *buf = p->buf;
    size_t rest = p->len - p->off;
    char *keep = NULL;
    size_t cap = 0;
    if (rest > 0) {
        cap = rest < 4096 ? 4096 : rest;
        keep = malloc(cap);
        if (keep == NULL) QUIVER_FATAL("out of memory (forward replies)");
        memcpy(keep, buf + p->off, rest);
    }
    p->buf = keep;
    p->cap = cap;
    p->len = rest;
    p->off = 0;
    return buf;
}

int fwd_reply_feed(fwd_reply_parser *p, const void *data, size_t len) {
    /* Drop what was parsed before growing. */
    if (p->off > 0) {
        memmove(p->buf, p->buf + p->off, p->len - p->off);
        p->len -= p->off;
        p->off = 0;
    }
    if (len > p->size_max_bytes || p->len > p->size_max_bytes - len) return -1;
    if (p->len + len > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < p->len + len) cap *= 2;
        char *nb = realloc(p->buf, cap);
        if (nb == NULL) QUIVER_FATAL("out of memory (forward replies)");
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, data, len);
    p->len += len;
    return 0;
}

int fwd_reply_next(fwd_reply_parser *p, fwd_reply *out) {
    const char *s = p->buf + p->off;
    size_t avail = p->len - p->off;
    if (avail == 0) return 0;
    const char *cr = memchr(s, '\r', avail);
    if (cr == NULL) return avail > 64 && s[0] == '$' ? -1 : 0; /* a length line is short */
    size_t line_len = (size_t)(cr - s);
    if (line_len + 2 > avail) return 0;
    if (cr[1] != '\n') return -1;
    char kind = s[0];
    if (kind == '-' || kind == '+') {
        out->kind = kind;
        out->data = s + 1;
        out->len = line_len - 1;
        p->off += line_len + 2;
        return 1;
    }
    if (kind != '$' || line_len < 2 || line_len > 21) return -1;
    uint64_t n = 0;
    for (size_t i = 1; i < line_len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        n = n * 10 + (uint64_t)(s[i] - '0');
    }
    if (n > p->size_max_bytes) return -1;
    size_t need = line_len + 2 + (size_t)n + 2;
    if (avail < need) return 0;
    if (s[line_len + 2 + n] != '\r' || s[line_len + 3 + n] != '\n') return -1;
    out->kind = '$';
    out->data = s + line_len + 2;
    out->len = (size_t)n;
    p->off += need;
    return 1;
}

/* ------------------------------------------------------------------ */
/* The forwarder                                                       */
/* ------------------------------------------------------------------ */

typedef enum req_state { REQ_WAITING, REQ_SENT, REQ_LOCAL } req_state;

typedef struct fwd_req fwd_req;
struct fwd_req {
    fwd_req *prev, *next;
    fwd *f;
    fwd_type type;
    req_state state;
    sm_command cmd; /* graph/text point at the copies */
    char *graph, *text;
    repl_reply_fn wcb;
    repl_read_fn rcb;
    void *ctx;
    uint64_t deadline_ms; /* uv_now */
    bool maybe_applied;   /* a write that may have been proposed */
    bool answered;        /* the caller got its callback; only a late reply is awaited */
    size_t wire_bytes;
};

typedef struct req_list {
    fwd_req *head, *tail;
    uint32_t count;
} req_list;

typedef enum link_state { LINK_CLOSED, LINK_RESOLVING, LINK_CONNECTING, LINK_UP, LINK_CLOSING } link_state;

typedef struct fwd_link {
    fwd *f;
    uint64_t peer_id;
    char address[REPL_ADDRESS_SIZE_MAX_BYTES];
    link_state state;
    uv_getaddrinfo_t gai;
    uv_connect_t connect;
    uv_tcp_t tcp;
    req_list inflight;
    size_t inflight_bytes;
    uint64_t last_attempt_ms;
    uint64_t last_complaint_ms; /* link_complain: at most one line per FWD_COMPLAIN_INTERVAL_MS */
    bool attempted;
    fwd_reply_parser parser;
} fwd_link;

typedef struct link_write {
    uv_write_t req;
    uv_buf_t buf;
} link_write;

struct fwd {
    uv_loop_t *loop;
    repl *repl;
    uint64_t self_id;
    uint64_t timeout_ms;
    fwd_link links[REPL_PEERS_COUNT_MAX];
    uint32_t link_count;
    req_list waiting;
    req_list refused; /* over FWD_WAITING_COUNT_MAX: answered busy on the next iteration */
    uint32_t local_inflight; /* proposals / barriers made through repl, not yet answered */
    uv_timer_t timer;
    uv_idle_t idle;
    uint32_t handles_open; /* timer, idle, link tcp handles, getaddrinfo requests */
    offload *offload;      /* large responses are decoded there; NULL: here */
    uint32_t decoding;     /* responses being decoded on the offload pool */
    bool stopping;
    fwd_stats stats;       /* counters only (waiting / in flight are computed) */
};

static void list_push_tail(req_list *l, fwd_req *q) {
    q->prev = l->tail;
    q->next = NULL;
    if (l->tail) l->tail->next = q;
    else l->head = q;
    l->tail = q;
    l->count++;
}

static void list_remove(req_list *l, fwd_req *q) {
    if (q->prev) q->prev->next = q->next;
    else l->head = q->next;
    if (q->next) q->next->prev = q->prev;
    else l->tail = q->prev;
    q->prev = q->next = NULL;
    QUIVER_ASSERT(l->count > 0);
    l->count--;
}

/* Move every request of src, in order, to the front of dst. */
static void list_prepend_all(req_list *dst, req_list *src) {
    if (src->head == NULL) return;
    src->tail->next = dst->head;
    if (dst->head) dst->head->prev = src->tail;
    else dst->tail = src->tail;
    dst->head = src->head;
    dst->count += src->count;
    memset(src, 0, sizeof *src);
}

static void req_free(fwd_req *q) {
    free(q->graph);
    free(q->text);
    free(q);
}

static void fwd_maybe_free(fwd *f) {
    if (f->stopping && f->handles_open == 0 && f->local_inflight == 0 && f->decoding == 0) free(f);
}

/* Give q its one callback. */
static void answer_write(fwd_req *q, repl_status_code st, query_result *r, uint64_t index, const char *error) {
    QUIVER_ASSERT(!q->answered && q->type == FWD_TYPE_WRITE);
    QUIVER_ASSERT((st == REPL_OK) == (r != NULL));
    q->answered = true;
    q->wcb(q->ctx, st, r, index, error);
}

static void answer_read(fwd_req *q, repl_status_code st, uint64_t index, const char *error) {
    QUIVER_ASSERT(!q->answered && q->type == FWD_TYPE_READ_INDEX);
    q->answered = true;
    q->rcb(q->ctx, st, index, error);
}

/* Answer q because its deadline passed or the forwarder stops. */
static void answer_give_up(fwd_req *q, bool stopping) {
    char msg[FWD_ERROR_SIZE_MAX_BYTES];
    unsigned long long t = (unsigned long long)q->f->timeout_ms;
    if (q->type == FWD_TYPE_READ_INDEX) {
        if (stopping) answer_read(q, REPL_SHUTTING_DOWN, 0, "the node is shutting down");
        else {
            snprintf(msg, sizeof msg, "no leader confirmed a read within %llu ms (election in progress?); retry", t);
            q->f->stats.no_leader_total++;
            answer_read(q, REPL_NOT_LEADER, 0, msg);
        }
        return;
    }
    if (q->state == REQ_SENT || q->maybe_applied) {
        if (stopping)
            snprintf(msg, sizeof msg,
                     "outcome unknown: the node shut down while the write was with the leader; it may or may not have "
                     "been applied (at most once)");
        else if (q->state == REQ_SENT)
            snprintf(msg, sizeof msg,
                     "outcome unknown: the leader did not answer within %llu ms; the write may or may not have been "
                     "applied (at most once)",
                     t);
        else
            snprintf(msg, sizeof msg,
                     "outcome unknown: leadership changed or the leader became unreachable after the write was "
                     "proposed or sent, and no leader confirmed its outcome within %llu ms; it may or may not have "
                     "been applied (at most once)",
                     t);
        q->f->stats.unknown_total++;
        answer_write(q, REPL_UNKNOWN_OUTCOME, NULL, 0, msg);
    } else if (stopping) {
        answer_write(q, REPL_SHUTTING_DOWN, NULL, 0, "the node is shutting down; the write was not applied");
    } else {
        snprintf(msg, sizeof msg, "no leader available within %llu ms (election in progress?); the write was not applied",
                 t);
        q->f->stats.no_leader_total++;
        answer_write(q, REPL_NOT_LEADER, NULL, 0, msg);
    }
}

static void idle_cb(uv_idle_t *h);

static void kick(fwd *f) {
    if (f->stopping) return;
    if (!uv_is_active((uv_handle_t *)&f->idle)) uv_idle_start(&f->idle, idle_cb);
}

/* Back to waiting (with its request id), or answered if out of time. */
static void requeue(fwd_req *q) {
    fwd *f = q->f;
    q->state = REQ_WAITING;
    if (f->stopping) {
        answer_give_up(q, true);
        req_free(q);
        return;
    }
    if (uv_now(f->loop) >= q->deadline_ms) {
        answer_give_up(q, false);
        req_free(q);
        return;
    }
    f->stats.retries_total++;
    /* A write that may have been applied goes first: the sooner its retry
     * reaches the state machine, the fewer other ids pass through the
     * bounded de-dup table in between (see the top comment). */
    if (q->maybe_applied) {
        req_list one = {0};
        list_push_tail(&one, q);
        list_prepend_all(&f->waiting, &one);
    } else {
        list_push_tail(&f->waiting, q);
    }
    kick(f);
}

/* ---- outcomes, local or relayed ---- */

/* A write's outcome from the leader (this node's repl or a response).
 * r: owned result when st == REPL_OK. */
static void write_outcome(fwd_req *q, repl_status_code st, query_result *r, uint64_t index, const char *error) {
    if (q->answered) { /* deadline passed; a late outcome */
        if (r) query_result_free(r);
        req_free(q);
        return;
    }
    switch (st) {
    case REPL_OK:
        answer_write(q, REPL_OK, r, index, NULL);
        req_free(q);
        return;
    case REPL_UNKNOWN_OUTCOME:
        q->maybe_applied = true;
        requeue(q);
        return;
    case REPL_NOT_LEADER:
    case REPL_SHUTTING_DOWN:
        requeue(q);
        return;
    case REPL_BUSY:
        if (q->maybe_applied) {
            requeue(q);
            return;
        }
        answer_write(q, REPL_BUSY, NULL, 0, error);
        req_free(q);
        return;
    case REPL_INVALID:
        answer_write(q, q->maybe_applied ? REPL_UNKNOWN_OUTCOME : REPL_INVALID, NULL, 0, error);
        req_free(q);
        return;
    }
    QUIVER_FATAL("unknown repl status %d", (int)st);
}

static void read_outcome(fwd_req *q, repl_status_code st, uint64_t index, const char *error) {
    if (q->answered) {
        req_free(q);
        return;
    }
    if (st == REPL_OK || st == REPL_BUSY || st == REPL_INVALID) {
        answer_read(q, st, index, error);
        req_free(q);
        return;
    }
    requeue(q); /* not the leader, leadership lost, leader stopping: ask the next one */
}

static void local_write_cb(void *ctx, repl_status_code st, query_result *r, uint64_t index, const char *error) {
    fwd_req *q = ctx;
    fwd *f = q->f;
    QUIVER_ASSERT(f->local_inflight > 0 && q->state == REQ_LOCAL);
    f->local_inflight--;
    write_outcome(q, st, r, index, error);
    fwd_maybe_free(f);
}

static void local_read_cb(void *ctx, repl_status_code st, uint64_t index, const char *error) {
    fwd_req *q = ctx;
    fwd *f = q->f;
    QUIVER_ASSERT(f->local_inflight > 0 && q->state == REQ_LOCAL);
    f->local_inflight--;
    read_outcome(q, st, index, error);
    fwd_maybe_free(f);
}

static void dispatch_local(fwd *f, fwd_req *q) {
    q->state = REQ_LOCAL;
    f->local_inflight++;
    if (q->type == FWD_TYPE_WRITE) repl_propose(f->repl, &q->cmd, local_write_cb, q);
    else repl_read_barrier(f->repl, local_read_cb, q);
}

/* ---- links ---- */

static void link_close(fwd_link *l);
static void pump(fwd *f);

static void link_handle_closed(uv_handle_t *h) {
    fwd_link *l = h->data;
    fwd *f = l->f;
    l->state = LINK_CLOSED;
    fwd_reply_parser_free(&l->parser);
    QUIVER_ASSERT(f->handles_open > 0);
    f->handles_open--;
    kick(f);
    fwd_maybe_free(f);
}

/* Close l; requests it carried go back to the front of waiting, in order
 * (writes marked maybe_applied: they may have been proposed). */
static void link_close(fwd_link *l) {
    fwd *f = l->f;
    if (l->state == LINK_CLOSED || l->state == LINK_CLOSING || l->state == LINK_RESOLVING) return;
    l->state = LINK_CLOSING;
    uv_close((uv_handle_t *)&l->tcp, link_handle_closed);
    req_list back = {0};
    while (l->inflight.head) {
        fwd_req *q = l->inflight.head;
        list_remove(&l->inflight, q);
        if (q->answered) {
            req_free(q);
            continue;
        }
        if (q->type == FWD_TYPE_WRITE) q->maybe_applied = true;
        q->state = REQ_WAITING;
        if (f->stopping || uv_now(f->loop) >= q->deadline_ms) {
            answer_give_up(q, f->stopping);
            req_free(q);
            continue;
        }
        f->stats.retries_total++;
        list_push_tail(&back, q);
    }
    l->inflight_bytes = 0;
    list_prepend_all(&f->waiting, &back);
    kick(f);
}

/* The result of a write the leader applied at index, from its encoding;
 * an undecodable one becomes an error result saying so.  Any thread. */
static query_result *decode_result(const uint8_t *payload, size_t len, uint64_t index) {
    query_result *res = NULL;
    int rc = sm_result_decode(payload, len, &res);
    if (rc != SM_CODEC_OK) {
        char msg[FWD_ERROR_SIZE_MAX_BYTES];
        snprintf(msg, sizeof msg, "the write was applied at log index %" PRIu64 " but its result could not be decoded (%s)",
                 index, sm_codec_strerror(rc));
        res = sm_result_error(QUERY_ERR_RUNTIME, msg);
        if (res == NULL) QUIVER_FATAL("out of memory");
    }
    return res;
}

/* A large write response decoded on the offload pool. */
typedef struct decode_job {
    offload_job base; /* first: the pool's handle */
    fwd *f;
    fwd_req *q;       /* answered in done */
    char *buf;        /* the link parser's buffer holding the payload (owned) */
    const uint8_t *payload;
    size_t payload_len;
    uint64_t index;
    query_result *res;
} decode_job;

static void decode_work(offload_job *base) {
    decode_job *j = (decode_job *)base;
    j->res = decode_result(j->payload, j->payload_len, j->index);
    free(j->buf); /* a large buffer: unmapped here, not on the loop */
    j->buf = NULL;
}

static void decode_done(offload_job *base) {
    decode_job *j = (decode_job *)base;
    if (base->cancelled) decode_work(base); /* the pool stopped first: shutting down */
    fwd *f = j->f;
    QUIVER_ASSERT(f->decoding > 0);
    f->decoding--;
    write_outcome(j->q, REPL_OK, j->res, j->index, NULL);
    free(j);
    fwd_maybe_free(f);
}

/* Hand rs (a REPL_OK write response whose payload is in l's parser buffer)
 * to the offload pool; decoded inline if the pool refuses. */
static void decode_start(fwd_link *l, fwd_req *q, const fwd_response *rs) {
    fwd *f = l->f;
    decode_job *j = calloc(1, sizeof *j);
    if (j == NULL) QUIVER_FATAL("out of memory (forward decode)");
    j->base.work = decode_work;
    j->base.done = decode_done;
    j->f = f;
    j->q = q;
    j->payload = rs->payload;
    j->payload_len = rs->payload_len;
    j->index = rs->index;
    j->buf = fwd_reply_parser_detach(&l->parser); /* payload points into it */
    f->decoding++;
    if (offload_submit(f->offload, &j->base)) return;
    j->base.cancelled = true;
    decode_done(&j->base);
}

static void handle_reply(fwd_link *l, const fwd_reply *rep) {
    fwd_req *q = l->inflight.head;
    if (q == NULL) {
        fprintf(stderr, "quiverd: forward link to node %" PRIu64 ": reply without a request; closing\n", l->peer_id);
        link_close(l);
        return;
    }
    list_remove(&l->inflight, q);
    QUIVER_ASSERT(l->inflight_bytes >= q->wire_bytes);
    l->inflight_bytes -= q->wire_bytes;
    char msg[FWD_ERROR_SIZE_MAX_BYTES];
    if (rep->kind != '$') {
        /* The leader refused the command itself (not proposed). */
        snprintf(msg, sizeof msg, "the leader (node %" PRIu64 ") refused the forwarded request: %.*s", l->peer_id,
                 (int)(rep->len > 300 ? 300 : rep->len), rep->data);
        if (q->type == FWD_TYPE_WRITE) write_outcome(q, REPL_INVALID, NULL, 0, msg);
        else read_outcome(q, REPL_INVALID, 0, msg);
        return;
    }
    fwd_response rs;
    int rc = fwd_response_decode(rep->data, rep->len, &rs);
    if (rc != SM_CODEC_OK || rs.type != q->type) {
        fprintf(stderr, "quiverd: forward link to node %" PRIu64 ": undecodable response (%s); closing\n", l->peer_id,
                rc != SM_CODEC_OK ? sm_codec_strerror(rc) : "type mismatch");
        /* Put q back at the head: link_close requeues it (maybe applied). */
        q->next = l->inflight.head;
        q->prev = NULL;
        if (l->inflight.head) l->inflight.head->prev = q;
        else l->inflight.tail = q;
        l->inflight.head = q;
        l->inflight.count++;
        link_close(l);
        return;
    }
    snprintf(msg, sizeof msg, "%.*s", (int)(rs.payload_len > 400 ? 400 : rs.payload_len), (const char *)rs.payload);
    if (q->type == FWD_TYPE_READ_INDEX) {
        read_outcome(q, rs.status, rs.index, msg);
        return;
    }
    if (rs.status != REPL_OK) {
        write_outcome(q, rs.status, NULL, 0, msg);
        return;
    }
    if (rs.payload_len > FWD_INLINE_PAYLOAD_SIZE_MAX_BYTES && l->f->offload != NULL) {
        decode_start(l, q, &rs); /* answers q later */
        return;
    }
    write_outcome(q, REPL_OK, decode_result(rs.payload, rs.payload_len, rs.index), rs.index, NULL);
}

static void link_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    static char scratch[64 * 1024]; /* loop thread only; parsed (copied) at once */
    *buf = uv_buf_init(scratch, sizeof scratch);
}

static void link_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    fwd_link *l = s->data;
    if (nread < 0) {
        if (l->state == LINK_UP)
            fprintf(stderr, "quiverd: forward link to node %" PRIu64 " (%s) lost: %s\n", l->peer_id, l->address,
                    uv_strerror((int)nread));
        link_close(l);
        return;
    }
    if (nread == 0 || l->state != LINK_UP) return;
    if (fwd_reply_feed(&l->parser, buf->base, (size_t)nread) != 0) {
        fprintf(stderr, "quiverd: forward link to node %" PRIu64 ": reply too large; closing\n", l->peer_id);
        link_close(l);
        return;
    }
    fwd_reply rep;
    int rc;
    while (l->state == LINK_UP && (rc = fwd_reply_next(&l->parser, &rep)) == 1) handle_reply(l, &rep);
    if (l->state == LINK_UP && rc < 0) {
        fprintf(stderr, "quiverd: forward link to node %" PRIu64 ": protocol error; closing\n", l->peer_id);
        link_close(l);
        return;
    }
    pump(l->f); /* room in flight */
}

static void link_connect_cb(uv_connect_t *c, int status) {
    fwd_link *l = c->data;
    if (l->state != LINK_CONNECTING) return; /* closed meanwhile (stop) */
    if (status < 0) {
        l->state = LINK_CLOSING;
        uv_close((uv_handle_t *)&l->tcp, link_handle_closed);
        return;
    }
    l->state = LINK_UP;
    uv_tcp_nodelay(&l->tcp, 1);
    fwd_reply_parser_init(&l->parser, FWD_REPLY_SIZE_MAX_BYTES);
    uv_read_start((uv_stream_t *)&l->tcp, link_alloc_cb, link_read_cb);
    pump(l->f);
}

/* A leader that is down is retried every FWD_RECONNECT_BACKOFF_MS until
 * raft notices; say so in the log once in a while, not at every attempt. */
#define FWD_COMPLAIN_INTERVAL_MS 5000
static bool link_complain(fwd_link *l) {
    uint64_t now = uv_now(l->f->loop);
    if (l->last_complaint_ms != 0 && now - l->last_complaint_ms < FWD_COMPLAIN_INTERVAL_MS) return false;
    l->last_complaint_ms = now;
    return true;
}

static void link_resolved_cb(uv_getaddrinfo_t *g, int status, struct addrinfo *res) {
    fwd_link *l = g->data;
    fwd *f = l->f;
    QUIVER_ASSERT(f->handles_open > 0);
    f->handles_open--; /* the getaddrinfo request */
    if (status < 0 || res == NULL || f->stopping) {
        if (status < 0 && !f->stopping && link_complain(l))
            fprintf(stderr, "quiverd: cannot resolve %s (node %" PRIu64 "): %s\n", l->address, l->peer_id,
                    uv_strerror(status));
        if (res) uv_freeaddrinfo(res);
        l->state = LINK_CLOSED;
        fwd_maybe_free(f);
        return;
    }
    uv_tcp_init(f->loop, &l->tcp);
    l->tcp.data = l;
    f->handles_open++;
    l->connect.data = l;
    l->state = LINK_CONNECTING;
    int rc = uv_tcp_connect(&l->connect, &l->tcp, res->ai_addr, link_connect_cb);
    uv_freeaddrinfo(res);
    if (rc != 0) {
        l->state = LINK_CLOSING;
        uv_close((uv_handle_t *)&l->tcp, link_handle_closed);
    }
}

static void link_open(fwd_link *l) {
    fwd *f = l->f;
    QUIVER_ASSERT(l->state == LINK_CLOSED);
    l->attempted = true;
    l->last_attempt_ms = uv_now(f->loop);
    char host[REPL_ADDRESS_SIZE_MAX_BYTES];
    snprintf(host, sizeof host, "%s", l->address);
    char *colon = strrchr(host, ':');
    if (colon == NULL) return; /* config.c checked the shape */
    *colon = '\0';
    const char *port = colon + 1;
    if (host[0] == '[') { /* [v6]:port */
        memmove(host, host + 1, strlen(host));
        char *close = strchr(host, ']');
        if (close) *close = '\0';
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    l->gai.data = l;
    l->state = LINK_RESOLVING;
    f->handles_open++;
    int rc = uv_getaddrinfo(f->loop, &l->gai, link_resolved_cb, host, port, &hints);
    if (rc != 0) {
        f->handles_open--;
        l->state = LINK_CLOSED;
        if (link_complain(l)) fprintf(stderr, "quiverd: cannot resolve %s: %s\n", l->address, uv_strerror(rc));
    }
}

static void link_write_cb(uv_write_t *w, int status) {
    link_write *lw = (link_write *)w;
    fwd_link *l = w->data;
    free(lw->buf.base);
    free(lw);
    if (status < 0 && l->state == LINK_UP) link_close(l);
}

static void append_request(fwd_link *l, fwd_req *q, wbuf *out) {
    fwd_request fq;
    memset(&fq, 0, sizeof fq);
    fq.type = q->type;
    if (q->type == FWD_TYPE_WRITE) fq.cmd = q->cmd;
    QUIVER_ASSERT(request_check(&fq) == SM_CODEC_OK); /* checked in fwd_write */
    size_t len = request_encoded_size(&fq);
    char head[64];
    int hl = snprintf(head, sizeof head, "*2\r\n$%d\r\n%s\r\n$%zu\r\n", (int)strlen(FWD_COMMAND_NAME), FWD_COMMAND_NAME,
                      len);
    size_t before = out->len;
    w_put(out, head, (size_t)hl);
    request_encode_into(&fq, out); /* one copy of the text, into the link's buffer */
    w_put(out, "\r\n", 2);
    if (out->nomem) QUIVER_FATAL("out of memory (forward request)");
    q->wire_bytes = out->len - before;
    q->state = REQ_SENT;
    l->f->stats.forwarded_total++;
    list_push_tail(&l->inflight, q);
    l->inflight_bytes += q->wire_bytes;
}

static void link_send(fwd_link *l) {
    fwd *f = l->f;
    wbuf out = {0};
    while (f->waiting.head != NULL && l->inflight.count < FWD_INFLIGHT_COUNT_MAX &&
           (l->inflight_bytes < FWD_INFLIGHT_SIZE_MAX_BYTES || l->inflight.count == 0)) {
        fwd_req *q = f->waiting.head;
        list_remove(&f->waiting, q);
        append_request(l, q, &out);
        if (out.len >= FWD_INFLIGHT_SIZE_MAX_BYTES) break;
    }
    if (out.len == 0) {
        free(out.p);
        return;
    }
    link_write *lw = malloc(sizeof *lw);
    if (lw == NULL) QUIVER_FATAL("out of memory (forward write)");
    lw->buf = uv_buf_init((char *)out.p, (unsigned)out.len);
    lw->req.data = l;
    int rc = uv_write(&lw->req, (uv_stream_t *)&l->tcp, &lw->buf, 1, link_write_cb);
    if (rc != 0) {
        free(out.p);
        free(lw);
        link_close(l);
    }
}

/* ---- the pump ---- */

static fwd_link *link_of(fwd *f, uint64_t id) {
    for (uint32_t i = 0; i < f->link_count; i++)
        if (f->links[i].peer_id == id) return &f->links[i];
    return NULL;
}

/* A leader missing from --peers (added later with QUIVER.CLUSTER ADD):
 * its client port is its raft port - NODE_RAFT_PORT_OFFSET on the same
 * host, the convention --peers also uses when no @client part is given.
 * Returns the new link, or NULL when the address cannot be derived or the
 * link table is full. */
static fwd_link *link_add_derived(fwd *f, uint64_t id) {
    repl_info info;
    repl_get_info(f->repl, &info);
    if (info.leader_id != id || info.leader_address == NULL || f->link_count == REPL_PEERS_COUNT_MAX) return NULL;
    char address[REPL_ADDRESS_SIZE_MAX_BYTES];
    cluster_client_address(NULL, id, info.leader_address, address, sizeof address);
    if (address[0] == '\0') return NULL;
    fwd_link *l = &f->links[f->link_count];
    memset(l, 0, sizeof *l);
    snprintf(l->address, sizeof l->address, "%s", address);
    l->f = f;
    l->peer_id = id;
    l->state = LINK_CLOSED;
    f->link_count++;
    fprintf(stderr, "quiverd: node %" PRIu64 " leads and is not in --peers: forwarding to %s (its raft port - %d)\n",
            id, l->address, NODE_RAFT_PORT_OFFSET);
    return l;
}

/* The leader now: self_id, another id, or 0 when none is known. */
static uint64_t leader_now(fwd *f) {
    repl_info info;
    repl_get_info(f->repl, &info);
    if (strcmp(info.role, "leader") == 0) return f->self_id;
    return info.leader_id == f->self_id ? 0 : info.leader_id;
}

static void pump(fwd *f) {
    if (f->stopping) return;
    uint64_t leader = leader_now(f);
    /* A link to a node that no longer leads: its answers may never come
     * (paused, cut off); retry what it carries with the new leader. */
    if (leader != 0) {
        for (uint32_t i = 0; i < f->link_count; i++) {
            fwd_link *l = &f->links[i];
            if (l->peer_id != leader && (l->state == LINK_UP || l->state == LINK_CONNECTING)) link_close(l);
        }
    }
    if (f->waiting.head == NULL || leader == 0) return;
    if (leader == f->self_id) {
        while (f->waiting.head != NULL) {
            fwd_req *q = f->waiting.head;
            list_remove(&f->waiting, q);
            dispatch_local(f, q);
        }
        return;
    }
    fwd_link *l = link_of(f, leader);
    if (l == NULL) l = link_add_derived(f, leader);
    if (l == NULL) return; /* a leader we have no client address for: wait for the deadline */
    if (l->state == LINK_CLOSED) {
        uint64_t now = uv_now(f->loop);
        if (!l->attempted || now - l->last_attempt_ms >= FWD_RECONNECT_BACKOFF_MS) link_open(l);
        return;
    }
    if (l->state == LINK_UP) link_send(l);
}

static void expire(fwd *f) {
    uint64_t now = uv_now(f->loop);
    for (fwd_req *q = f->waiting.head; q != NULL;) {
        fwd_req *next = q->next;
        if (now >= q->deadline_ms) {
            list_remove(&f->waiting, q);
            answer_give_up(q, false);
            req_free(q);
        }
        q = next;
    }
    for (uint32_t i = 0; i < f->link_count; i++) {
        for (fwd_req *q = f->links[i].inflight.head; q != NULL; q = q->next) {
            if (!q->answered && now >= q->deadline_ms) answer_give_up(q, false); /* stays until its reply or the close */
        }
    }
}

static void timer_cb(uv_timer_t *t) {
    fwd *f = t->data;
    expire(f);
    pump(f);
}

static void answer_refused(fwd *f) {
    while (f->refused.head) {
        fwd_req *q = f->refused.head;
        list_remove(&f->refused, q);
        const char *msg = "busy: too many requests waiting for the leader, retry";
        if (q->type == FWD_TYPE_WRITE) answer_write(q, REPL_BUSY, NULL, 0, msg);
        else answer_read(q, REPL_BUSY, 0, msg);
        req_free(q);
    }
}

static void idle_cb(uv_idle_t *h) {
    fwd *f = h->data;
    uv_idle_stop(h);
    answer_refused(f);
    pump(f);
}

static void handle_closed(uv_handle_t *h) {
    fwd *f = h->data;
    QUIVER_ASSERT(f->handles_open > 0);
    f->handles_open--;
    fwd_maybe_free(f);
}

int fwd_start(uv_loop_t *loop, repl *r, offload *pool, uint64_t self_id, const fwd_peer *peers, uint32_t peer_count,
              uint64_t timeout_ms, fwd **out) {
    QUIVER_ASSERT(loop != NULL && r != NULL && peers != NULL && out != NULL);
    QUIVER_ASSERT(peer_count >= 1 && peer_count <= REPL_PEERS_COUNT_MAX && timeout_ms > 0);
    fwd *f = calloc(1, sizeof *f);
    if (f == NULL) QUIVER_FATAL("out of memory (forwarder)");
    f->loop = loop;
    f->repl = r;
    f->offload = pool;
    f->self_id = self_id;
    f->timeout_ms = timeout_ms;
    for (uint32_t i = 0; i < peer_count; i++) {
        if (peers[i].id == self_id) continue;
        if (peers[i].client_address[0] == '\0') {
            fprintf(stderr, "quiverd: node %" PRIu64 " has no client address (--peers ID=HOST:PORT@CLIENT_HOST:PORT): "
                    "writes are not forwarded to it while it leads\n", peers[i].id);
            continue;
        }
        fwd_link *l = &f->links[f->link_count++];
        l->f = f;
        l->peer_id = peers[i].id;
        snprintf(l->address, sizeof l->address, "%s", peers[i].client_address);
        l->state = LINK_CLOSED;
    }
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    uv_idle_init(loop, &f->idle);
    f->idle.data = f;
    f->handles_open = 2;
    uv_timer_start(&f->timer, timer_cb, FWD_RETRY_INTERVAL_MS, FWD_RETRY_INTERVAL_MS);
    *out = f;
    return 0;
}

static fwd_req *req_new(fwd *f, fwd_type type, void *ctx) {
    fwd_req *q = calloc(1, sizeof *q);
    if (q == NULL) QUIVER_FATAL("out of memory (forwarded request)");
    q->f = f;
    q->type = type;
    q->ctx = ctx;
    q->state = REQ_WAITING;
    q->deadline_ms = uv_now(f->loop) + f->timeout_ms;
    return q;
}

void fwd_write(fwd *f, const sm_command *cmd, repl_reply_fn cb, void *ctx) { fwd_write_owned(f, cmd, NULL, cb, ctx); }

void fwd_write_owned(fwd *f, const sm_command *cmd, char *text_owned, repl_reply_fn cb, void *ctx) {
    QUIVER_ASSERT(f != NULL && cmd != NULL && cb != NULL && !f->stopping);
    QUIVER_ASSERT(text_owned == NULL || text_owned == cmd->text.ptr);
    fwd_req *q = req_new(f, FWD_TYPE_WRITE, ctx);
    q->wcb = cb;
    q->graph = malloc(cmd->graph.len + 1);
    q->text = text_owned != NULL ? text_owned : malloc(cmd->text.len + 1);
    if (q->graph == NULL || q->text == NULL) QUIVER_FATAL("out of memory (forwarded request)");
    memcpy(q->graph, cmd->graph.ptr, cmd->graph.len);
    q->graph[cmd->graph.len] = '\0';
    if (text_owned == NULL) {
        if (cmd->text.len) memcpy(q->text, cmd->text.ptr, cmd->text.len);
        q->text[cmd->text.len] = '\0';
    }
    q->cmd = *cmd;
    q->cmd.graph.ptr = q->graph;
    q->cmd.text.ptr = q->text;
    /* A command breaking a format rule: repl_propose refuses it
     * (REPL_INVALID, deferred, never proposed) wherever we are.  The
     * leader's fast path: no extra loop iteration, group commit exactly
     * as on a single node. */
    if (sm_command_check(&q->cmd) != SM_CODEC_OK || (f->waiting.head == NULL && leader_now(f) == f->self_id)) {
        dispatch_local(f, q);
        return;
    }
    list_push_tail(f->waiting.count >= FWD_WAITING_COUNT_MAX ? &f->refused : &f->waiting, q);
    kick(f);
}

void fwd_read_index(fwd *f, repl_read_fn cb, void *ctx) {
    QUIVER_ASSERT(f != NULL && cb != NULL && !f->stopping);
    fwd_req *q = req_new(f, FWD_TYPE_READ_INDEX, ctx);
    q->rcb = cb;
    if (f->waiting.head == NULL && leader_now(f) == f->self_id) {
        dispatch_local(f, q);
        return;
    }
    list_push_tail(f->waiting.count >= FWD_WAITING_COUNT_MAX ? &f->refused : &f->waiting, q);
    kick(f);
}

void fwd_stop(fwd *f) {
    QUIVER_ASSERT(f != NULL && !f->stopping);
    answer_refused(f);
    f->stopping = true;
    while (f->waiting.head) {
        fwd_req *q = f->waiting.head;
        list_remove(&f->waiting, q);
        answer_give_up(q, true);
        req_free(q);
    }
    for (uint32_t i = 0; i < f->link_count; i++) {
        fwd_link *l = &f->links[i];
        if (l->state == LINK_UP || l->state == LINK_CONNECTING) {
            /* Sent requests: the outcome is unknown (the leader may apply them). */
            for (fwd_req *q = l->inflight.head; q != NULL; q = q->next)
                if (!q->answered) answer_give_up(q, true);
            link_close(l);
        }
    }
    uv_close((uv_handle_t *)&f->timer, handle_closed);
    uv_close((uv_handle_t *)&f->idle, handle_closed);
}

/* ------------------------------------------------------------------ */
/* The read gate                                                       */
/* ------------------------------------------------------------------ */

typedef struct read_gate {
    repl *r;
    repl_read_fn cb;
    void *ctx;
} read_gate;

static void gate_applied_cb(void *ctx, repl_status_code st, uint64_t index, const char *error) {
    read_gate *g = ctx;
    repl_read_fn cb = g->cb;
    void *cb_ctx = g->ctx;
    free(g);
    cb(cb_ctx, st, index, error);
}

static void gate_index_cb(void *ctx, repl_status_code st, uint64_t index, const char *error) {
    read_gate *g = ctx;
    if (st == REPL_OK && repl_applied_index(g->r) < index) {
        repl_wait_applied(g->r, index, gate_applied_cb, g); /* answers later, never inside */
        return;
    }
    gate_applied_cb(g, st, index, error);
}

void fwd_read_gate(fwd *f, repl *r, repl_read_fn cb, void *ctx) {
    QUIVER_ASSERT(f != NULL && r != NULL && cb != NULL);
    read_gate *g = malloc(sizeof *g);
    if (g == NULL) QUIVER_FATAL("out of memory (read gate)");
    g->r = r;
    g->cb = cb;
    g->ctx = ctx;
    fwd_read_index(f, gate_index_cb, g);
}

/* ------------------------------------------------------------------ */
/* The leader's side: QUIVER.FORWARD                                   */
/* ------------------------------------------------------------------ */

/* The RESP bulk holding a forward response, appended to out.  Returns
 * false when the encoding fails for a limit (the caller answers an error). */
static bool serve_encode(reply_buf *out, fwd_type type, repl_status_code st, uint64_t index, const void *payload,
                         size_t payload_len) {
    fwd_response rs = {.type = type, .status = st, .index = index, .payload = payload, .payload_len = payload_len};
    uint8_t *enc = NULL;
    size_t len = 0;
    int rc = fwd_response_encode(&rs, &enc, &len);
    if (rc == SM_CODEC_LIMIT && type == FWD_TYPE_WRITE && st == REPL_OK) return false;
    if (rc != SM_CODEC_OK) QUIVER_FATAL("cannot encode a forward response: %s", sm_codec_strerror(rc));
    reply_bulk(out, enc, len);
    free(enc);
    return true;
}

/* A write's result as a forward response (result codec, response, bulk);
 * the fallbacks name the index the write was applied at.  Any thread. */
static void serve_encode_result(reply_buf *out, const query_result *r, uint64_t index) {
    uint8_t *enc = NULL;
    size_t len = 0;
    int rc = sm_result_encode(r, 0, &enc, &len);
    char msg[256];
    if (rc != SM_CODEC_OK) {
        int m = snprintf(msg, sizeof msg,
                         "ERR the write was applied at log index %" PRIu64 " but its result cannot be relayed "
                         "from the leader: %s",
                         index, sm_codec_strerror(rc));
        serve_encode(out, FWD_TYPE_WRITE, REPL_INVALID, index, msg, (size_t)m);
        return;
    }
    if (!serve_encode(out, FWD_TYPE_WRITE, REPL_OK, index, enc, len)) {
        int m = snprintf(msg, sizeof msg,
                         "ERR the write was applied at log index %" PRIu64 " but its result is too large to relay "
                         "from the leader",
                         index);
        reply_buf_clear(out);
        serve_encode(out, FWD_TYPE_WRITE, REPL_INVALID, index, msg, (size_t)m);
    }
    free(enc);
}

static void serve_reply(node_slot *s, fwd_type type, repl_status_code st, uint64_t index, const void *payload,
                        size_t payload_len) {
    bool ok = serve_encode(&s->buf, type, st, index, payload, payload_len);
    QUIVER_ASSERT(ok); /* only a REPL_OK write result can be too large */
    node_slot_done(s);
}

static void serve_write_cb(void *ctx, repl_status_code st, query_result *r, uint64_t index, const char *error) {
    node_slot *s = ctx;
    if (st != REPL_OK) {
        serve_reply(s, FWD_TYPE_WRITE, st, index, error ? error : "", error ? strlen(error) : 0);
        return;
    }
    node_slot_reply_result(s, r, serve_encode_result, index); /* takes r; large: off the loop */
}

static void serve_read_cb(void *ctx, repl_status_code st, uint64_t index, const char *error) {
    node_slot *s = ctx;
    serve_reply(s, FWD_TYPE_READ_INDEX, st, index, error ? error : "", error ? strlen(error) : 0);
}

/* Propose a forwarded write that passed every check. */
static void serve_propose(node_client *c, node_slot *s, const fwd_request *q) {
    node *n = c->n;
    node_slot_hold(s);
    if (n->repl == NULL) {
        const char *msg = "the node is shutting down";
        serve_reply(s, q->type, REPL_SHUTTING_DOWN, 0, msg, strlen(msg));
        return;
    }
    repl_propose(n->repl, &q->cmd, serve_write_cb, s); /* copies the command, its request id kept */
}

/* After admission of a forwarded write's text (admission.h). */
static void serve_admitted(node_client *c, node_slot *s, resp_request *req, const admission_result *res, void *arg) {
    (void)req; /* the command's strings point into it; it outlives this call */
    const fwd_request *q = arg;
    if (res->rc != 0) {
        serve_reply(s, FWD_TYPE_WRITE, REPL_INVALID, 0, res->error, strlen(res->error));
        return;
    }
    if (!res->admission.writes) {
        const char *msg = "ERR QUIVER.FORWARD carries a write, but the statement does not write";
        serve_reply(s, FWD_TYPE_WRITE, REPL_INVALID, 0, msg, strlen(msg));
        return;
    }
    serve_propose(c, s, q);
}

void fwd_serve(node_client *c, node_slot *s, resp_request *req) {
    QUIVER_ASSERT(c != NULL && s != NULL && req != NULL && req->argc == 2);
    node *n = c->n;
    /* Checksum and framing: linear in the blob but ~20x faster than
     * parsing it, and the blob is bounded by --max-request-bytes. */
    fwd_request q;
    int rc = fwd_request_decode(req->argv[1], req->argv_len[1], &q);
    if (rc != SM_CODEC_OK) {
        reply_errorf(&s->buf, "ERR malformed QUIVER.FORWARD request: %s", sm_codec_strerror(rc));
        node_slot_done(s);
        return;
    }
    if (q.type == FWD_TYPE_READ_INDEX) {
        node_slot_hold(s);
        if (n->repl == NULL) {
            const char *msg = "the node is shutting down";
            serve_reply(s, q.type, REPL_SHUTTING_DOWN, 0, msg, strlen(msg));
            return;
        }
        repl_read_barrier(n->repl, serve_read_cb, s);
        return;
    }
    /* A write: the same checks as a client's (router.c), before proposing. */
    if (node_over_maxmemory(n)) {
        n->oom_rejections++;
        reply_error(&s->buf, "OOM command not allowed when used memory > 'maxmemory'.");
        node_slot_done(s);
        return;
    }
    uint64_t entry = router_write_entry_size(q.cmd.graph.len, q.cmd.text.len);
    if (n->cfg->max_entry_bytes != 0 && entry > n->cfg->max_entry_bytes) {
        char msg[256];
        int m = snprintf(msg, sizeof msg,
                         "ERR the write does not fit in one raft log entry: %" PRIu64 " bytes encoded, "
                         "--max-entry-bytes is %" PRIu64,
                         entry, n->cfg->max_entry_bytes);
        serve_reply(s, FWD_TYPE_WRITE, REPL_INVALID, 0, msg, (size_t)m);
        return;
    }
    if (q.cmd.kind != SM_CMD_QUERY) { /* GRAPH.DELETE: no text to admit */
        serve_propose(c, s, &q);
        return;
    }
    _Static_assert(sizeof q <= ADMISSION_ARG_SIZE_MAX_BYTES, "fits the admission job");
    admission_start(c, s, req, q.cmd.text.ptr, q.cmd.text.len, serve_admitted, &q, sizeof q);
}

void fwd_get_stats(fwd *f, fwd_stats *out) {
    QUIVER_ASSERT(f != NULL && out != NULL);
    *out = f->stats;
    out->waiting = f->waiting.count + f->refused.count;
    out->local_inflight = f->local_inflight;
    out->sent_inflight = 0;
    for (uint32_t i = 0; i < f->link_count; i++) out->sent_inflight += f->links[i].inflight.count;
}

static void wait_applied(repl *r, uint64_t index, repl_read_fn cb, void *ctx) {
    (void)repl_wait_applied(r, index, cb, ctx); /* always 0: every outcome goes to cb */
}

const node_cluster_ops fwd_cluster_ops = {
    .serve_forward = fwd_serve,
    .write = fwd_write,
    .write_owned = fwd_write_owned,
    .read_gate = fwd_read_gate,
    .stats = fwd_get_stats,
    .wait_applied = wait_applied,
};
