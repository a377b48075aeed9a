/*
 * admission.h -- run query_admit (query/query.h) on a request's Cypher text
 * before anything is proposed, forwarded or read (DESIGN.md 3 "Admission";
 * issue 7: everything that can fail fails before the raft log).
 *
 * query_admit parses, checks the statement limits, plans without storage
 * and compiles constant regexes; its cost grows with the text.  Texts up to
 * ADMISSION_INLINE_TEXT_SIZE_MAX_BYTES are admitted inline on the loop
 * thread: a point lookup or a short write pays no thread hop.  Longer ones
 * go to the offload pool (offload.h) and the answer comes back to the loop
 * thread; meanwhile the connection dispatches nothing after the request
 * (node_client_offload_begin, server.h), which keeps its semantics: replies
 * in request order, a read after the connection's earlier writes, a write
 * after its earlier reads, a QUIVER.REQUESTID or QUIVER.CONSISTENCY sent
 * after the request not applied to it.  Other connections go on.
 *
 * The inline threshold, measured with bench/loopstall/admit_cost.c (today's
 * query_admit, which parses; admission proper plans and checks limits too,
 * so expect a small multiple): up to 2 KiB a text costs the loop 7-22 us
 * (5-11 us/KiB: pattern parts, list literals, import batches), about what
 * a thread hop and its two wake-ups cost; past it the parser turns
 * superlinear on this build (4 KiB: 20-170 us; 64 KiB: 0.4-5 ms; 1 MiB:
 * 50-100 ms), so every longer text goes to the pool.  Point lookups and
 * short writes (tens to hundreds of bytes) always stay inline.
 *
 * Thread: the loop thread (query_admit itself runs on a pool thread for
 * long texts).
 */
#ifndef QUIVER_NODE_ADMISSION_H
#define QUIVER_NODE_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>

#include "../query/query.h"
#include "resp.h"
#include "server.h"

#define ADMISSION_INLINE_TEXT_SIZE_MAX_BYTES 2048 /* longer texts are admitted off the loop thread */
#define ADMISSION_ERROR_SIZE_MAX_BYTES 1024       /* query_admit's error text */
#define ADMISSION_ARG_SIZE_MAX_BYTES 128          /* the caller's context copied into the job */

typedef struct admission_result {
    int rc;                    /* query_admit's: 0 admitted, -1 refused (error says why) */
    query_admission admission; /* when rc == 0 */
    bool offloaded;            /* ran on a pool thread */
    char error[ADMISSION_ERROR_SIZE_MAX_BYTES]; /* the reply text when rc == -1 */
} admission_result;

/* The continuation, on the loop thread: s is not held (not in flight), req
 * is the request (the callee may move it; whatever is left is freed after
 * the call), arg the caller's context (ADMISSION_ARG_SIZE_MAX_BYTES at
 * most, copied).  c may be closing (its client went away meanwhile): the
 * callee still answers s (node_slot_done frees it) and may still propose a
 * write, as server.c does for a closed connection's deferred writes. */
typedef void (*admission_done_fn)(node_client *c, node_slot *s, resp_request *req, const admission_result *res,
                                  void *arg);

/* Admit text (text_len bytes, inside req's arguments so that it lives as
 * long as req) for s, the newest slot of c, then call done.  Inline
 * (text_len <= ADMISSION_INLINE_TEXT_SIZE_MAX_BYTES, or no offload pool):
 * done runs before this returns, req stays the caller's.  Off the loop:
 * req is moved into the job (left empty), s is held, c dispatches nothing
 * more until done has run; done runs later from the pool's completion, or
 * at once with rc -1 and "ERR busy ..." when the pool refuses the job, or
 * "ERR server is shutting down" when the pool stops first.
 * arg_size_bytes <= ADMISSION_ARG_SIZE_MAX_BYTES.  Counts into
 * n->admissions_inline / admissions_offloaded.  Thread: the loop thread. */
void admission_start(node_client *c, node_slot *s, resp_request *req, const char *text, size_t text_len,
                     admission_done_fn done, const void *arg, size_t arg_size_bytes);

#endif
