/*
 * server.c -- libuv TCP server, connections, reply queues, client limits
 * (see server.h).
 *
 * One libuv loop thread does all socket I/O.  A read callback parses the
 * requests in what arrived and dispatches each at once while the
 * connection's limits allow (client_may_dispatch); the rest of the read is
 * kept in the connection's input buffer and the socket is no longer read
 * until client_pump finds room again (a reply finished, the socket drained,
 * an admission came back).  Replies are gathered from the head of the
 * connection's slot queue into one uv_write of up to
 * NODE_WRITE_BUFS_COUNT_MAX buffers, so a pipelining client costs one write
 * system call per batch rather than per reply (what makes redis-benchmark
 * style pipelines cheap).
 *
 * Trade-off: the parser copies request bytes into per-argument buffers
 * rather than parsing in place from a per-connection buffer; that costs one
 * copy but lets the query text travel on to a reader thread or the raft log
 * without tying up a connection buffer.  The input buffer holds only what
 * a paused connection had already sent in its last read.
 *
 * Accounting (server.h): every change to a connection's buffers goes
 * through client_account, which keeps the node-wide sum, the recent maxima,
 * and marks clients past a hard limit; client_close_soon closes them from a
 * check handle at the end of the loop iteration, so no command ever sees
 * its own connection vanish under it for a limit.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/limits.h"
#include "../common/qassert.h"
#include "commands.h"

uint64_t node_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void client_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void client_close(node_client *c);
static void client_maybe_free(node_client *c);
static void client_update_reading(node_client *c);
static void client_account(node_client *c);
static void client_pump(node_client *c);

size_t node_reply_size_max(const node *n) { return (size_t)node_config_reply_size_max_bytes(n->cfg); }

bool node_over_maxmemory(const node *n) {
    return n->cfg->maxmemory_bytes != 0 && n->used_memory_bytes > n->cfg->maxmemory_bytes;
}

/* Pending replies past this pause the connection (server.h). */
static uint64_t client_output_pause_bytes(const node *n) {
    uint64_t hard = n->cfg->client_output_buffer_limit_bytes;
    uint64_t soft = NODE_CLIENT_OUTPUT_SIZE_MAX_BYTES;
    if (hard != 0 && hard / 2 < soft) soft = hard / 2;
    return soft;
}

/* ---- slots ---- */

/* A request was answered, or dropped unanswered: it no longer counts. */
static void slot_release_request(node_slot *s) {
    node_client *c = s->client;
    if (s->request_bytes != 0) {
        QUIVER_ASSERT(c->requests_bytes >= s->request_bytes);
        c->requests_bytes -= s->request_bytes;
        s->request_bytes = 0;
    }
}

static node_slot *slot_new(node_client *c, uint64_t request_bytes) {
    node_slot *s = calloc(1, sizeof(*s));
    if (s == NULL) QUIVER_FATAL("out of memory (reply slot)");
    s->client = c;
    reply_buf_init(&s->buf, node_reply_size_max(c->n));
    s->prev = c->tail;
    if (c->tail) c->tail->next = s;
    else c->head = s;
    c->tail = s;
    c->pending_count++;
    c->n->requests_unanswered++;
    s->request_bytes = request_bytes;
    c->requests_bytes += request_bytes;
    return s;
}

static void slot_unlink_free(node_slot *s) {
    node_client *c = s->client;
    QUIVER_ASSERT(!s->in_flight);
    if (s->prev) s->prev->next = s->next;
    else c->head = s->next;
    if (s->next) s->next->prev = s->prev;
    else c->tail = s->prev;
    QUIVER_ASSERT(c->pending_count > 0);
    c->pending_count--;
    if (!s->ready) {
        QUIVER_ASSERT(c->n->requests_unanswered > 0);
        c->n->requests_unanswered--;
    }
    slot_release_request(s);
    QUIVER_ASSERT(c->reply_bytes >= s->reply_counted_bytes);
    c->reply_bytes -= s->reply_counted_bytes;
    if (s->deferred_fn) resp_request_free(&s->deferred_req);
    c->n->trim_freed_bytes += s->buf.cap;
    reply_buf_free(&s->buf);
    free(s);
}

void node_slot_hold(node_slot *s) {
    QUIVER_ASSERT(!s->in_flight && !s->ready);
    s->in_flight = true;
    s->client->refs++;
}

void node_slot_defer(node_slot *s, resp_request *req, node_deferred_fn fn) {
    QUIVER_ASSERT(s->deferred_fn == NULL && fn != NULL);
    s->deferred_fn = fn;
    s->deferred_req = *req;
    memset(req, 0, sizeof(*req));
}

/* Run deferred slots whose predecessors allow it (server.h): a read when
 * no earlier write is unanswered, a write when no earlier read is.  A
 * deferred command may complete its slot synchronously (node_slot_done), so
 * while this runs flushing is suppressed (in_deferred) and the scan restarts
 * from the head after every call: no pointer is kept across a call. */
static void run_deferred(node_client *c) {
    if (c->closing || c->in_deferred) return;
    c->in_deferred = true;
    c->refs++;
restart:;
    bool write_before = false, read_before = false;
    for (node_slot *s = c->head; s != NULL; s = s->next) {
        if (s->deferred_fn != NULL) {
            bool may_run = s->is_write ? !read_before : !write_before;
            if (may_run) {
                node_deferred_fn fn = s->deferred_fn;
                resp_request req = s->deferred_req;
                s->deferred_fn = NULL;
                memset(&s->deferred_req, 0, sizeof(s->deferred_req));
                fn(c, s, &req);
                resp_request_free(&req);
                if (c->closing) break;
                goto restart;
            }
        }
        if (s->is_write && !s->ready) write_before = true;
        if (s->is_read && !s->ready) read_before = true;
        if (write_before && read_before) break; /* nothing later can run */
    }
    c->in_deferred = false;
    c->refs--;
}

void node_slot_mark_read(node_slot *s) {
    QUIVER_ASSERT(!s->is_read && !s->is_write && !s->ready);
    s->is_read = true;
    s->client->reads_pending++;
}

void node_slot_mark_write(node_slot *s) {
    QUIVER_ASSERT(!s->is_read && !s->is_write && !s->ready);
    s->is_write = true;
    s->client->writes_in_flight++;
}

void node_client_write_answered(node_client *c, node_slot *s) {
    QUIVER_ASSERT(s->is_write && c->writes_in_flight > 0);
    c->writes_in_flight--;
    s->is_write = false;
}

/* ---- writing ---- */

typedef struct write_req {
    uv_write_t req;
    node_client *c;
    uint32_t count;
    size_t bytes;
    uv_buf_t bufs[NODE_WRITE_BUFS_COUNT_MAX];
} write_req;

static void write_cb(uv_write_t *req, int status) {
    write_req *w = (write_req *)req;
    node_client *c = w->c;
    for (uint32_t i = 0; i < w->count; i++) free(w->bufs[i].base);
    c->n->trim_freed_bytes += w->bytes;
    QUIVER_ASSERT(c->output_bytes >= w->bytes && c->socket_writes > 0);
    c->output_bytes -= w->bytes;
    c->socket_writes--;
    free(w);
    if (status < 0) {
        client_close(c);
    } else if (c->close_when_flushed && c->socket_writes == 0) {
        client_close(c);
    } else if (!c->closing) {
        c->last_interaction_ms = uv_now(c->n->loop);
        client_account(c);
        client_pump(c); /* the output drained: maybe room to dispatch again */
    }
    c->refs--; /* the write's reference, held through the pump */
    client_maybe_free(c);
}

/* Hand the ready slots at the head of c's queue to the socket.  Does not
 * change what c reads (client_pump does). */
static void client_flush(node_client *c) {
    if (c->closing) {
        /* Nobody to answer: drop what is finished. */
        for (node_slot *s = c->head; s != NULL;) {
            node_slot *next = s->next;
            if (!s->in_flight) slot_unlink_free(s);
            s = next;
        }
        return;
    }
    if (c->close_reason != NODE_CLOSE_NONE) return; /* disconnected at the end of this iteration */
    while (c->head != NULL && c->head->ready && !c->close_when_flushed) {
        write_req *w = calloc(1, sizeof(*w));
        if (w == NULL) QUIVER_FATAL("out of memory (write request)");
        w->c = c;
        while (c->head != NULL && c->head->ready && w->count < NODE_WRITE_BUFS_COUNT_MAX) {
            node_slot *s = c->head;
            bool close_after = s->close_after;
            QUIVER_ASSERT(s->reply_counted_bytes == s->buf.len && c->reply_bytes >= s->buf.len);
            c->reply_bytes -= s->reply_counted_bytes;
            s->reply_counted_bytes = 0;
            if (s->buf.len > 0) {
                QUIVER_ASSERT(s->buf.len <= UINT32_MAX); /* uv_buf_t's length; replies are capped at 1 GiB */
                w->bufs[w->count] = uv_buf_init(s->buf.data, (unsigned)s->buf.len);
                w->bytes += s->buf.len;
                w->count++;
                s->buf.data = NULL; /* ownership moves to the write */
                s->buf.len = s->buf.cap = 0;
            }
            slot_unlink_free(s);
            if (close_after) {
                c->close_when_flushed = true;
                c->stop_parsing = true;
                break;
            }
        }
        if (w->count == 0) {
            free(w);
            if (c->close_when_flushed && c->socket_writes == 0) client_close(c);
            break;
        }
        c->output_bytes += w->bytes;
        c->socket_writes++;
        c->refs++;
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, w->count, write_cb);
        if (rc != 0) {
            /* The socket is gone; the callback will not run. */
            for (uint32_t i = 0; i < w->count; i++) free(w->bufs[i].base);
            c->output_bytes -= w->bytes;
            c->socket_writes--;
            c->refs--;
            free(w);
            client_close(c);
            return;
        }
    }
}

void node_slot_done(node_slot *s) {
    node_client *c = s->client;
    QUIVER_ASSERT(!s->ready);
    reply_fix_overflow(&s->buf);
    s->ready = true;
    QUIVER_ASSERT(c->n->requests_unanswered > 0);
    c->n->requests_unanswered--;
    slot_release_request(s);
    if (!c->closing) {
        QUIVER_ASSERT(s->reply_counted_bytes == 0);
        s->reply_counted_bytes = s->buf.len;
        c->reply_bytes += s->buf.len;
    }
    if (s->is_read) {
        QUIVER_ASSERT(c->reads_pending > 0);
        c->reads_pending--;
        s->is_read = false;
    }
    if (s->is_write) node_client_write_answered(c, s); /* answered without a proposal (an error) */
    bool was_in_flight = s->in_flight;
    if (was_in_flight) {
        s->in_flight = false;
        QUIVER_ASSERT(c->refs > 0);
        c->refs--;
    }
    if (c->closing) {
        slot_unlink_free(s);
        client_maybe_free(c);
        return;
    }
    client_account(c);
    /* Only asynchronous completions flush and release deferred reads here;
     * synchronous ones are flushed by the read callback after the batch. */
    if (was_in_flight && !c->in_deferred) {
        c->refs++; /* keep c alive through run_deferred/flush */
        run_deferred(c);
        client_pump(c);
        c->refs--;
        client_maybe_free(c);
    }
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    node_client *c = handle->data;
    QUIVER_ASSERT(c->inbuf_off == c->inbuf_len); /* a paused connection is not read */
    *buf = uv_buf_init(c->n->read_buffer, sizeof(c->n->read_buffer));
}

/* May c parse and dispatch its next request now (server.h's soft limits)? */
static bool client_may_dispatch(const node_client *c) {
    const node *n = c->n;
    return !c->closing && !c->stop_parsing && c->close_reason == NODE_CLOSE_NONE && !c->admitting && !n->stopping &&
           !c->read_throttled &&
           c->pending_count < NODE_CLIENT_PENDING_COUNT_MAX && c->reads_pending < NODE_CLIENT_READS_IN_FLIGHT_COUNT_MAX &&
           c->requests_bytes < NODE_CLIENT_REQUESTS_PAUSE_SIZE_BYTES &&
           c->reply_bytes + c->output_bytes < client_output_pause_bytes(n);
}

static void client_update_reading(node_client *c) {
    if (c->closing) return;
    bool want = client_may_dispatch(c) && c->inbuf_off == c->inbuf_len && !c->read_throttled;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, client_read_cb) == 0) c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void inbuf_reset(node_client *c) {
    free(c->inbuf);
    c->inbuf = NULL;
    c->inbuf_len = c->inbuf_off = 0;
}

/* Parse and dispatch requests from data while c may dispatch.  Returns the
 * bytes consumed (all of them unless dispatch paused).  The caller holds a
 * reference. */
static size_t client_consume(node_client *c, const char *data, size_t len) {
    QUIVER_ASSERT(!c->in_input);
    c->in_input = true;
    size_t off = 0;
    while (off < len && client_may_dispatch(c)) {
        size_t used = 0;
        resp_request req;
        resp_parse_status st = resp_parse(&c->parser, data + off, len - off, &used, &req);
        QUIVER_ASSERT(used <= len - off);
        off += used;
        if (st == RESP_PARSE_OK) {
            node *n = c->n;
            node_slot *s = slot_new(c, req.size_bytes);
            n->commands_processed++;
            uint64_t replies_before = c->reply_bytes, cost = req.size_bytes;
            node_command_dispatch(c, s, &req);
            node_request_release(n, &req);
            if (c->reply_bytes > replies_before) cost += c->reply_bytes - replies_before;
            if (c->dispatch_iteration != n->iteration) {
                c->dispatch_iteration = n->iteration;
                c->dispatch_iteration_bytes = 0;
            }
            c->dispatch_iteration_bytes += cost;
            if (c->dispatch_iteration_bytes >= NODE_DISPATCH_ITERATION_SIZE_MAX_BYTES && !c->read_throttled &&
                !c->closing) {
                c->read_throttled = true; /* iteration_check_cb goes on with it */
                n->throttled_count++;
            }
        } else if (st == RESP_PARSE_ERROR) {
            if (c->parser.error_query_buffer) c->n->query_limit_disconnections++;
            node_slot *s = slot_new(c, 0);
            reply_error(&s->buf, c->parser.error);
            s->close_after = true;
            c->stop_parsing = true;
            resp_parser_free(&c->parser); /* give the partial request back now */
            node_slot_done(s);
        } else {
            QUIVER_ASSERT(off == len); /* incomplete: everything was taken */
        }
    }
    c->in_input = false;
    return off;
}

/* Dispatch from the input buffer while room allows, flush, and (re)start or
 * stop reading.  The caller holds a reference to c. */
static void client_pump(node_client *c) {
    if (c->closing || c->in_input) return;
    for (;;) {
        bool progressed = false;
        if (c->inbuf_off < c->inbuf_len && client_may_dispatch(c)) {
            size_t used = client_consume(c, c->inbuf + c->inbuf_off, c->inbuf_len - c->inbuf_off);
            c->inbuf_off += used;
            progressed = used > 0;
        }
        if (c->inbuf_off == c->inbuf_len || c->stop_parsing || c->closing) inbuf_reset(c);
        if (c->closing) return;
        client_flush(c); /* answered slots leave the queue: maybe room again */
        if (c->closing) return;
        if (!progressed || c->inbuf_len == 0) break;
    }
    client_account(c);
    client_update_reading(c);
}

static void client_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    node_client *c = stream->data;
    if (nread < 0) {
        client_close(c);
        client_maybe_free(c);
        return;
    }
    if (nread == 0) return;
    QUIVER_ASSERT(c->inbuf_len == 0 && !c->closing && !c->read_throttled);
    node *n = c->n;
    c->last_interaction_ms = uv_now(n->loop);
    if (c->read_iteration != n->iteration) {
        c->read_iteration = n->iteration;
        c->read_iteration_bytes = 0;
    }
    c->read_iteration_bytes += (uint64_t)nread;
    if (c->read_iteration_bytes >= NODE_READ_ITERATION_SIZE_MAX_BYTES) {
        c->read_throttled = true; /* client_pump below stops reading; iteration_check_cb restarts it */
        n->throttled_count++;
    }
    c->refs++; /* dispatch may close c */
    size_t used = client_consume(c, buf->base, (size_t)nread);
    if (used < (size_t)nread && !c->closing && !c->stop_parsing) {
        /* Paused: keep the rest (at most this one read) until there is room. */
        size_t rest = (size_t)nread - used;
        c->inbuf = malloc(rest);
        if (c->inbuf == NULL) QUIVER_FATAL("out of memory (input buffer)");
        memcpy(c->inbuf, buf->base + used, rest);
        c->inbuf_len = rest;
        c->inbuf_off = 0;
    }
    client_pump(c);
    c->refs--;
    client_maybe_free(c);
}

/* ---- accounting and limits (server.h) ---- */

static uint64_t client_input_bytes(const node_client *c) {
    return resp_parser_buffered_bytes(&c->parser) + (c->inbuf != NULL ? c->inbuf_len : 0);
}

static uint64_t client_output_bytes(const node_client *c) { return c->reply_bytes + c->output_bytes; }

static void close_check_cb(uv_check_t *h);

/* Mark c to be disconnected at the end of this loop iteration (a limit). */
static void client_close_soon(node_client *c, node_close_reason why) {
    if (c->closing || c->close_reason != NODE_CLOSE_NONE) return;
    QUIVER_ASSERT(why != NODE_CLOSE_NONE);
    c->close_reason = (uint8_t)why;
    node *n = c->n;
    switch (why) {
    case NODE_CLOSE_OUTPUT_LIMIT: n->output_limit_disconnections++; break;
    case NODE_CLOSE_CLIENTS_MEMORY: n->evicted_clients++; break;
    case NODE_CLOSE_IDLE: n->idle_disconnections++; break;
    case NODE_CLOSE_NONE: break;
    }
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    if (n->close_check_open) uv_check_start(&n->close_check, close_check_cb);
}

static void recent_max_note(node *n, uint64_t input_bytes, uint64_t output_bytes) {
    uint32_t slot = (uint32_t)(n->recent_second % NODE_RECENT_MAX_SLOTS_COUNT);
    if (input_bytes > n->recent_max_input_bytes[slot]) n->recent_max_input_bytes[slot] = input_bytes;
    if (output_bytes > n->recent_max_output_bytes[slot]) n->recent_max_output_bytes[slot] = output_bytes;
}

/* c's buffers changed: update the node's sum and the recent maxima, and
 * mark c (or, for the node limit, the largest client) past a hard limit. */
static void client_account(node_client *c) {
    node *n = c->n;
    uint64_t in = client_input_bytes(c), out = client_output_bytes(c);
    uint64_t total = c->closing ? 0 : in + c->requests_bytes + out;
    QUIVER_ASSERT(n->clients_memory_bytes >= c->mem_counted_bytes);
    n->clients_memory_bytes = n->clients_memory_bytes - c->mem_counted_bytes + total;
    c->mem_counted_bytes = total;
    if (c->closing) return;
    recent_max_note(n, in, out);
    uint64_t hard = n->cfg->client_output_buffer_limit_bytes;
    if (hard != 0 && out > hard) client_close_soon(c, NODE_CLOSE_OUTPUT_LIMIT);
    if (n->cfg->maxmemory_clients_bytes != 0 && n->clients_memory_bytes > n->cfg->maxmemory_clients_bytes &&
        n->close_check_open)
        uv_check_start(&n->close_check, close_check_cb);
}

static int client_mem_desc(const void *a, const void *b) {
    const node_client *x = *(node_client *const *)a, *y = *(node_client *const *)b;
    return x->mem_counted_bytes < y->mem_counted_bytes ? 1 : x->mem_counted_bytes > y->mem_counted_bytes ? -1 : 0;
}

/* End of the loop iteration: close the clients marked by a limit, then
 * evict the largest clients while all of them together use more than
 * --maxmemory-clients. */
static void close_check_cb(uv_check_t *h) {
    node *n = h->data;
    uv_check_stop(h);
    for (node_client *c = n->clients; c != NULL;) {
        node_client *next = c->next;
        if (c->close_reason != NODE_CLOSE_NONE) {
            c->refs++;
            client_close(c);
            c->refs--;
            client_maybe_free(c);
        }
        c = next;
    }
    uint64_t limit = n->cfg->maxmemory_clients_bytes;
    if (limit == 0 || n->clients_memory_bytes <= limit || n->client_count == 0) return;
    /* Largest first: one sort, not one scan per eviction. */
    node_client **by_size = malloc(sizeof(node_client *) * n->client_count);
    if (by_size == NULL) QUIVER_FATAL("out of memory (client eviction)");
    uint32_t count = 0;
    for (node_client *c = n->clients; c != NULL; c = c->next) {
        QUIVER_ASSERT(count < n->client_count);
        c->refs++; /* none is freed while the array holds it */
        by_size[count++] = c;
    }
    qsort(by_size, count, sizeof *by_size, client_mem_desc);
    for (uint32_t i = 0; i < count; i++) {
        node_client *c = by_size[i];
        if (n->clients_memory_bytes > limit && !c->closing && c->mem_counted_bytes > 0) {
            c->close_reason = NODE_CLOSE_CLIENTS_MEMORY;
            n->evicted_clients++;
            client_close(c); /* its share leaves the sum */
        }
        c->refs--;
        client_maybe_free(c);
    }
    free(by_size);
}

/* Once per loop iteration, after polling: count it, and let the clients
 * that used a budget in it read and dispatch again (what they had read
 * waits in their input buffer). */
static void iteration_check_cb(uv_check_t *h) {
    node *n = h->data;
    n->iteration++;
    if (n->throttled_count == 0) return;
    for (node_client *c = n->clients; c != NULL && n->throttled_count > 0;) {
        node_client *next = c->next;
        if (c->read_throttled) {
            c->read_throttled = false;
            n->throttled_count--;
            c->refs++;
            client_pump(c);
            c->refs--;
            client_maybe_free(c); /* not closed here: refs > 0 (its handle) unless closing */
        }
        c = next;
    }
}

/* ---- the cron timer (server.h) ---- */

typedef struct trim_job {
    node_memory_trim_job t; /* first: its base is the pool's handle */
    node *n;
} trim_job;

static void trim_done(offload_job *job) {
    trim_job *t = (trim_job *)job;
    node *n = t->n;
    QUIVER_ASSERT(n != NULL && n->trim_inflight);
    n->trim_inflight = false;
    if (!job->cancelled) {
        n->trims_total++;
        n->trim_last_duration_us = t->t.duration_us;
        n->trim_rss_after_bytes = t->t.rss_after_bytes;
    }
    free(t);
}

static void maybe_trim(node *n, uint64_t now_ms) {
    if (n->trim_inflight || n->offload == NULL || n->stopping) return;
    if (n->trim_last_ms != 0 && now_ms - n->trim_last_ms < NODE_TRIM_INTERVAL_MS) return;
    bool quiet = n->requests_unanswered == 0;
    bool grew = n->used_memory_bytes > n->trim_rss_after_bytes + NODE_TRIM_GROWTH_BYTES;
    bool freed = n->trim_freed_bytes >= NODE_TRIM_GROWTH_BYTES;
    if (!(quiet && (grew || freed)) && !node_over_maxmemory(n)) return;
    n->trim_freed_bytes = 0;
    trim_job *t = malloc(sizeof *t);
    if (t == NULL) QUIVER_FATAL("out of memory (trim job)");
    node_memory_trim_job_init(&t->t);
    t->t.base.done = trim_done;
    t->n = n;
    n->trim_last_ms = now_ms;
    if (offload_submit(n->offload, &t->t.base)) n->trim_inflight = true;
    else free(t);
}

static void close_idle_clients(node *n, uint64_t now_ms) {
    uint64_t timeout_ms = (uint64_t)n->cfg->timeout_s * 1000u;
    if (timeout_ms == 0) return;
    for (node_client *c = n->clients; c != NULL; c = c->next) {
        if (c->pending_count == 0 && !c->admitting && now_ms - c->last_interaction_ms >= timeout_ms)
            client_close_soon(c, NODE_CLOSE_IDLE);
    }
}

static void cron_cb(uv_timer_t *t) {
    node *n = t->data;
    uint64_t now = uv_now(n->loop);
    uint64_t rss = node_memory_rss_bytes();
    if (rss != 0) n->used_memory_bytes = rss;
    if (n->used_memory_bytes > n->used_memory_peak_bytes) n->used_memory_peak_bytes = n->used_memory_bytes;
    uint64_t second = now / 1000u;
    while (n->recent_second < second) { /* a new second: its slot starts empty */
        n->recent_second++;
        uint32_t slot = (uint32_t)(n->recent_second % NODE_RECENT_MAX_SLOTS_COUNT);
        n->recent_max_input_bytes[slot] = 0;
        n->recent_max_output_bytes[slot] = 0;
        if (second - n->recent_second > NODE_RECENT_MAX_SLOTS_COUNT) n->recent_second = second - NODE_RECENT_MAX_SLOTS_COUNT;
    }
    if (now - n->last_idle_check_ms >= 1000u) {
        n->last_idle_check_ms = now;
        close_idle_clients(n, now);
    }
    maybe_trim(n, now);
}

/* INFO's client_recent_max_input_buffer / _output_buffer. */
void node_recent_max_buffers(const node *n, uint64_t *input_bytes, uint64_t *output_bytes) {
    uint64_t in = 0, out = 0;
    for (uint32_t i = 0; i < NODE_RECENT_MAX_SLOTS_COUNT; i++) {
        if (n->recent_max_input_bytes[i] > in) in = n->recent_max_input_bytes[i];
        if (n->recent_max_output_bytes[i] > out) out = n->recent_max_output_bytes[i];
    }
    *input_bytes = in;
    *output_bytes = out;
}

/* ---- freeing large requests off the loop ---- */

typedef struct free_job {
    offload_job base; /* first: the pool's handle */
    resp_request req;
} free_job;

static void free_work(offload_job *base) { resp_request_free(&((free_job *)base)->req); }

static void free_done(offload_job *base) {
    free_job *j = (free_job *)base;
    resp_request_free(&j->req); /* cancelled: not freed yet */
    free(j);
}

void node_request_release(node *n, resp_request *req) {
    QUIVER_ASSERT(n != NULL && req != NULL);
    n->trim_freed_bytes += req->size_bytes;
    if (req->size_bytes >= NODE_FREE_OFFLOAD_SIZE_MIN_BYTES && n->offload != NULL) {
        free_job *j = malloc(sizeof *j);
        if (j == NULL) QUIVER_FATAL("out of memory (free job)");
        j->base.work = free_work;
        j->base.done = free_done;
        j->req = *req;
        memset(req, 0, sizeof *req);
        if (offload_submit(n->offload, &j->base)) return;
        *req = j->req;
        free(j);
    }
    resp_request_free(req);
}

/* ---- large results encoded on the offload pool ---- */

typedef struct encode_job {
    offload_job base;  /* first: the pool's handle */
    node_slot *s;      /* held (in flight) until done */
    query_result *r;   /* freed by the work: a large arena is unmapped there, not on the loop */
    node_encode_fn encode;
    uint64_t arg;
    reply_buf out;
} encode_job;

static void encode_work(offload_job *base) {
    encode_job *j = (encode_job *)base;
    j->encode(&j->out, j->r, j->arg);
    if (!reply_fix_overflow(&j->out)) reply_buf_shrink(&j->out);
    query_result_free(j->r);
    j->r = NULL;
}

static void encode_done(offload_job *base) {
    encode_job *j = (encode_job *)base;
    node_slot *s = j->s;
    if (base->cancelled) encode_work(base); /* the pool stopped first: shutting down, encode here */
    reply_buf tmp = s->buf;
    s->buf = j->out;
    j->out = tmp;
    reply_buf_free(&j->out);
    free(j);
    node_slot_done(s);
}

void node_slot_reply_result(node_slot *s, query_result *r, node_encode_fn encode, uint64_t arg) {
    QUIVER_ASSERT(s != NULL && r != NULL && encode != NULL && s->in_flight);
    node *n = s->client->n;
    if (r->arena.used_bytes > NODE_ENCODE_INLINE_SIZE_MAX_BYTES && n->offload != NULL) {
        encode_job *j = calloc(1, sizeof *j);
        if (j == NULL) QUIVER_FATAL("out of memory (encode job)");
        j->base.work = encode_work;
        j->base.done = encode_done;
        j->s = s;
        j->r = r;
        j->encode = encode;
        j->arg = arg;
        reply_buf_init(&j->out, s->buf.size_max_bytes);
        if (offload_submit(n->offload, &j->base)) return;
        reply_buf_free(&j->out);
        free(j); /* refused (stopping, or full): encode here */
    }
    encode(&s->buf, r, arg);
    query_result_free(r);
    node_slot_done(s);
}

/* ---- off-loop work of a connection (admission.h) ---- */

void node_client_ref(node_client *c) { c->refs++; }

void node_client_unref(node_client *c) {
    QUIVER_ASSERT(c->refs > 0);
    c->refs--;
    client_maybe_free(c);
}

void node_client_offload_begin(node_client *c, node_slot *s) {
    QUIVER_ASSERT(s->client == c && c->tail == s && !c->admitting);
    node_slot_hold(s);
    c->admitting = true;
    client_update_reading(c);
}

void node_client_offload_end(node_client *c, node_slot *s) {
    QUIVER_ASSERT(s->client == c && c->admitting && s->in_flight && !s->ready);
    QUIVER_ASSERT(c->refs > 1); /* the caller's reference and the slot's */
    c->admitting = false;
    s->in_flight = false;
    c->refs--;
}

void node_client_resume(node_client *c) {
    if (c->closing) return;
    c->refs++;
    run_deferred(c);
    client_pump(c);
    c->refs--;
}

/* ---- readiness (server.h: node_ready) ---- */

static bool leader_known(const repl_info *ri) {
    return ri->ready || (ri->leader_id != 0 && ri->leader_id != ri->node_id);
}

static void startup_gate_cb(void *ctx, repl_status_code st, uint64_t index, const char *error) {
    (void)error;
    node *n = ctx;
    QUIVER_ASSERT(n->startup_gate_inflight);
    n->startup_gate_inflight = false;
    if (st != REPL_OK) return; /* no leader answered in time: the poll asks again */
    n->startup_gate_done = true;
    node_note_leader_index(n, index);
}

/* Advance the start-up conditions of node_ready from ri. */
static void startup_observe(node *n, const repl_info *ri) {
    if (!n->startup_recorded && leader_known(ri)) {
        n->startup_recorded = true;
        n->startup_commit_index = ri->commit_index;
    }
    if (!n->startup_recorded || n->startup_gate_done || n->startup_gate_inflight) return;
    if (n->fwd != NULL && n->cluster != NULL && n->repl != NULL) {
        if (n->stopping) return;
        n->startup_gate_inflight = true;
        n->cluster->read_gate(n->fwd, n->repl, startup_gate_cb, n); /* never answers inside */
    } else if (ri->ready || n->cfg->peer_count <= 1) {
        /* One node (or no forwarder): its own ready flag says every entry
         * committed in earlier terms is applied. */
        n->startup_gate_done = ri->ready;
    }
}

bool node_ready(node *n, const repl_info *ri) {
    QUIVER_ASSERT(n != NULL);
    if (n->repl == NULL || ri == NULL) return ri != NULL && leader_known(ri);
    startup_observe(n, ri);
    bool ready = leader_known(ri) && n->startup_recorded && n->startup_gate_done &&
                 ri->last_applied_index >= n->startup_commit_index;
    if (ready && !n->startup_ready_once) {
        n->startup_ready_once = true;
        if (n->ready_timer_open) uv_timer_stop(&n->ready_timer);
    }
    return ready;
}

uint64_t node_stale_lag_entries(const node *n, const repl_info *ri) {
    QUIVER_ASSERT(n != NULL);
    if (ri == NULL) return 0;
    uint64_t known = ri->commit_index > n->leader_index_seen ? ri->commit_index : n->leader_index_seen;
    return known > ri->last_applied_index ? known - ri->last_applied_index : 0;
}

void node_note_leader_index(node *n, uint64_t index) {
    if (index > n->leader_index_seen) n->leader_index_seen = index;
}

static void ready_timer_cb(uv_timer_t *t) {
    node *n = t->data;
    if (n->repl == NULL || n->stopping) {
        uv_timer_stop(t);
        return;
    }
    repl_info ri;
    repl_get_info(n->repl, &ri);
    (void)node_ready(n, &ri); /* stops the timer once ready */
}

/* ---- connections ---- */

static void close_cb(uv_handle_t *h) {
    node_client *c = h->data;
    c->refs--; /* the handle's reference */
    client_maybe_free(c);
}

static void client_maybe_free(node_client *c) {
    if (!c->closing || c->refs > 0) return;
    /* Every slot left is finished or never started (deferred). */
    while (c->head != NULL) slot_unlink_free(c->head);
    QUIVER_ASSERT(c->mem_counted_bytes == 0 && c->requests_bytes == 0 && c->reply_bytes == 0);
    resp_parser_free(&c->parser);
    inbuf_reset(c);
    node *n = c->n;
    free(c);
    if (n->stopping && n->client_count == 0 && n->on_stopped != NULL && !n->listening) {
        void (*cb)(node *) = n->on_stopped;
        n->on_stopped = NULL;
        cb(n);
    }
}

static void client_close(node_client *c) {
    if (c->closing) return;
    c->closing = true;
    node *n = c->n;
    if (c->read_throttled) {
        c->read_throttled = false;
        QUIVER_ASSERT(n->throttled_count > 0);
        n->throttled_count--;
    }
    /* Its buffers leave the node's sum now (they are freed below or when
     * the operations holding them complete). */
    inbuf_reset(c);
    resp_parser_free(&c->parser);
    client_account(c);
    if (c->prev) c->prev->next = c->next;
    else n->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    QUIVER_ASSERT(n->client_count > 0);
    n->client_count--;
    if (c->reading) uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    /* Writes the client sent are applied even though nobody will read the
     * reply (Redis, too, runs what it has read before it sees EOF): start
     * the deferred ones now, in order; the reads they waited for no longer
     * matter.  Drop deferred reads and finished slots; in-flight slots go
     * when their operation completes. */
    c->refs++;
    for (node_slot *s = c->head; s != NULL;) {
        node_slot *next = s->next;
        if (s->deferred_fn != NULL && s->is_write) {
            node_deferred_fn fn = s->deferred_fn;
            resp_request req = s->deferred_req;
            s->deferred_fn = NULL;
            memset(&s->deferred_req, 0, sizeof(s->deferred_req));
            fn(c, s, &req); /* holds s (in flight), or completes and frees it */
            resp_request_free(&req);
        } else if (!s->in_flight) {
            slot_unlink_free(s);
        }
        s = next;
    }
    c->refs--;
    uv_close((uv_handle_t *)&c->tcp, close_cb);
}

static void reject_close_cb(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *server, int status) {
    node *n = server->data;
    if (status < 0) return;
    if (n->stopping) return;
    if (n->client_count >= n->cfg->max_clients) {
        uv_tcp_t *t = malloc(sizeof(*t));
        if (t == NULL) QUIVER_FATAL("out of memory (connection)");
        uv_tcp_init(n->loop, t);
        if (uv_accept(server, (uv_stream_t *)t) == 0) {
            static const char msg[] = "-ERR max number of clients reached\r\n";
            uv_buf_t b = uv_buf_init((char *)msg, sizeof(msg) - 1);
            uv_try_write((uv_stream_t *)t, &b, 1);
        }
        n->rejected_connections++;
        uv_close((uv_handle_t *)t, reject_close_cb);
        return;
    }
    node_client *c = calloc(1, sizeof(*c));
    if (c == NULL) QUIVER_FATAL("out of memory (connection)");
    c->n = n;
    /* --read-consistency: the level until QUIVER.CONSISTENCY changes it. */
    QUIVER_ASSERT(n->cfg->read_consistency < NODE_CONSISTENCY_COUNT);
    c->consistency = (node_consistency)n->cfg->read_consistency;
    c->id = ++n->next_client_id;
    c->created_ms = node_now_ms();
    c->refs = 1; /* the handle */
    c->last_interaction_ms = uv_now(n->loop);
    resp_parser_init(&c->parser, n->cfg->max_request_bytes);
    resp_parser_set_query_buffer_limit(&c->parser, n->cfg->client_query_buffer_limit_bytes);
    uv_tcp_init(n->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, close_cb);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = n->clients;
    if (n->clients) n->clients->prev = c;
    n->clients = c;
    n->client_count++;
    n->connections_received++;
    client_update_reading(c);
}

int node_server_start(node *n, uv_loop_t *loop, const node_config *cfg, qs_db *db, repl *r, readers *rd,
                      char *err, size_t err_size_bytes) {
    QUIVER_ASSERT(n != NULL && loop != NULL && cfg != NULL);
    memset(n, 0, sizeof(*n));
    n->loop = loop;
    n->cfg = cfg;
    n->db = db;
    n->repl = r;
    n->readers = rd;
    n->start_ms = node_now_ms();
    uv_tcp_init(loop, &n->listener);
    n->listener.data = n;
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(cfg->bind, cfg->port, (struct sockaddr_in *)&addr);
    if (rc != 0) rc = uv_ip6_addr(cfg->bind, cfg->port, (struct sockaddr_in6 *)&addr);
    if (rc != 0) {
        snprintf(err, err_size_bytes, "--bind %s is not an IPv4 or IPv6 address", cfg->bind);
        uv_close((uv_handle_t *)&n->listener, NULL);
        return rc;
    }
    rc = uv_tcp_bind(&n->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&n->listener, 511, on_connection);
    if (rc != 0) {
        snprintf(err, err_size_bytes, "cannot listen on %s:%u: %s", cfg->bind, (unsigned)cfg->port, uv_strerror(rc));
        uv_close((uv_handle_t *)&n->listener, NULL);
        return rc;
    }
    n->listening = true;
    uv_timer_init(loop, &n->cron_timer);
    n->cron_timer.data = n;
    n->cron_timer_open = true;
    uv_timer_start(&n->cron_timer, cron_cb, NODE_CRON_INTERVAL_MS, NODE_CRON_INTERVAL_MS);
    uv_unref((uv_handle_t *)&n->cron_timer); /* never keeps the loop alive by itself */
    uv_check_init(loop, &n->close_check);
    n->close_check.data = n;
    n->close_check_open = true;
    uv_unref((uv_handle_t *)&n->close_check);
    uv_check_init(loop, &n->iteration_check);
    n->iteration_check.data = n;
    n->iteration_check_open = true;
    uv_check_start(&n->iteration_check, iteration_check_cb);
    uv_unref((uv_handle_t *)&n->iteration_check);
    n->used_memory_bytes = node_memory_rss_bytes();
    n->used_memory_peak_bytes = n->used_memory_bytes;
    n->trim_rss_after_bytes = n->used_memory_bytes;
    n->recent_second = uv_now(loop) / 1000u;
    n->last_idle_check_ms = uv_now(loop);
    if (r != NULL) {
        uv_timer_init(loop, &n->ready_timer);
        n->ready_timer.data = n;
        n->ready_timer_open = true;
        uv_timer_start(&n->ready_timer, ready_timer_cb, NODE_READY_POLL_INTERVAL_MS, NODE_READY_POLL_INTERVAL_MS);
        uv_unref((uv_handle_t *)&n->ready_timer); /* never keeps the loop alive by itself */
    }
    return 0;
}

int node_server_port(node *n) {
    struct sockaddr_storage addr;
    int len = sizeof(addr);
    if (uv_tcp_getsockname(&n->listener, (struct sockaddr *)&addr, &len) != 0) return -1;
    if (addr.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&addr)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
}

static void listener_close_cb(uv_handle_t *h) {
    node *n = h->data;
    n->listening = false;
    if (n->client_count == 0 && n->on_stopped != NULL) {
        void (*cb)(node *) = n->on_stopped;
        n->on_stopped = NULL;
        cb(n);
    }
}

void node_server_stop(node *n) {
    if (n->stopping) return;
    n->stopping = true;
    if (n->ready_timer_open) {
        n->ready_timer_open = false;
        uv_timer_stop(&n->ready_timer);
        uv_close((uv_handle_t *)&n->ready_timer, NULL); /* embedded in n: nothing to free */
    }
    if (n->cron_timer_open) {
        n->cron_timer_open = false;
        uv_timer_stop(&n->cron_timer);
        uv_close((uv_handle_t *)&n->cron_timer, NULL);
    }
    if (n->close_check_open) {
        n->close_check_open = false;
        uv_check_stop(&n->close_check);
        uv_close((uv_handle_t *)&n->close_check, NULL);
    }
    if (n->iteration_check_open) {
        n->iteration_check_open = false;
        uv_check_stop(&n->iteration_check);
        uv_close((uv_handle_t *)&n->iteration_check, NULL);
    }
    while (n->clients != NULL) {
        node_client *c = n->clients;
        client_close(c);
    }
    if (n->listening) {
        uv_close((uv_handle_t *)&n->listener, listener_close_cb);
    } else if (n->on_stopped != NULL) {
        void (*cb)(node *) = n->on_stopped;
        n->on_stopped = NULL;
        cb(n);
    }
}
