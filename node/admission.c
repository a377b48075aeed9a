/*
 * admission.c -- query_admit inline or on the offload pool (admission.h).
 *
 * The job owns the request while it is away: the text pointer points into
 * one of its arguments, whose buffer does not move when the resp_request
 * struct is copied into the job.
 */
#include "admission.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/qassert.h"

typedef struct admission_job {
    offload_job base; /* first: the pool's handle */
    node_client *c;
    node_slot *s;
    resp_request req; /* owns text */
    const char *text;
    size_t text_len;
    admission_done_fn done;
    admission_result res;
    _Alignas(max_align_t) unsigned char arg[ADMISSION_ARG_SIZE_MAX_BYTES];
} admission_job;

static void admit(const char *text, size_t text_len, admission_result *res) {
    res->error[0] = '\0';
    res->rc = query_admit(text, text_len, &res->admission, res->error, sizeof res->error);
    QUIVER_ASSERT(res->rc == 0 || res->rc == -1);
    if (res->rc != 0 && res->error[0] == '\0') snprintf(res->error, sizeof res->error, "ERR query refused by admission");
}

static void job_work(offload_job *base) {
    admission_job *j = (admission_job *)base;
    admit(j->text, j->text_len, &j->res);
}

static void job_done(offload_job *base) {
    admission_job *j = (admission_job *)base;
    node_client *c = j->c;
    node_slot *s = j->s;
    node_client_ref(c);
    node_client_offload_end(c, s);
    if (base->cancelled) {
        j->res.rc = -1;
        snprintf(j->res.error, sizeof j->res.error, "ERR server is shutting down");
    }
    j->done(c, s, &j->req, &j->res, j->arg);
    node_request_release(c->n, &j->req);
    free(j);
    node_client_resume(c); /* dispatch what c sent after the request */
    node_client_unref(c);
}

void admission_start(node_client *c, node_slot *s, resp_request *req, const char *text, size_t text_len,
                     admission_done_fn done, const void *arg, size_t arg_size_bytes) {
    QUIVER_ASSERT(c != NULL && s != NULL && req != NULL && done != NULL && s->client == c);
    QUIVER_ASSERT(text != NULL || text_len == 0);
    QUIVER_ASSERT(arg_size_bytes <= ADMISSION_ARG_SIZE_MAX_BYTES && (arg != NULL || arg_size_bytes == 0));
    node *n = c->n;
    if (text_len <= ADMISSION_INLINE_TEXT_SIZE_MAX_BYTES || n->offload == NULL) {
        admission_result res;
        admit(text, text_len, &res);
        res.offloaded = false;
        n->admissions_inline++;
        _Alignas(max_align_t) unsigned char copy[ADMISSION_ARG_SIZE_MAX_BYTES];
        if (arg_size_bytes) memcpy(copy, arg, arg_size_bytes);
        done(c, s, req, &res, copy);
        return;
    }
    admission_job *j = calloc(1, sizeof *j);
    if (j == NULL) QUIVER_FATAL("out of memory (admission job)");
    j->base.work = job_work;
    j->base.done = job_done;
    j->c = c;
    j->s = s;
    j->req = *req; /* the argument buffers, text included, move with it */
    memset(req, 0, sizeof *req);
    j->text = text;
    j->text_len = text_len;
    j->done = done;
    j->res.offloaded = true;
    if (arg_size_bytes) memcpy(j->arg, arg, arg_size_bytes);
    node_client_offload_begin(c, s);
    if (offload_submit(n->offload, &j->base)) {
        n->admissions_offloaded++;
        return;
    }
    /* The pool is full or stopping: refuse rather than stall the loop. */
    node_client_ref(c);
    node_client_offload_end(c, s);
    j->res.rc = -1;
    snprintf(j->res.error, sizeof j->res.error, "ERR busy: too many long requests being admitted, retry");
    j->done(c, s, &j->req, &j->res, j->arg);
    resp_request_free(&j->req);
    free(j);
    node_client_unref(c);
}
