/*
 * resp.c -- RESP2 request parser (see resp.h for the contract).
 *
 * Design: a state machine that eats one byte class at a time and never
 * looks back, so partial reads need no re-scan and no input buffer.  The
 * alternative (Redis' querybuf: accumulate, then parse in place) lets
 * arguments point into the buffer without a copy, but needs the buffer to
 * hold the whole request; here each argument is copied exactly once into its
 * own allocation, which the command then owns (the query text goes on to
 * the reader pool or the raft log without another copy).
 *
 * Memory grows only with bytes received: an announced bulk length reserves
 * at most RESP_BULK_PREALLOC_MAX_BYTES up front, then doubles as data
 * arrives.  The same holds for the argument vector and its announced count.
 * Every allocation of the request being assembled is counted in
 * buffered_bytes (the query buffer, resp.h); the limit is checked where
 * memory would grow, against what the header announces, so a request that
 * cannot fit is refused before its bytes are buffered.
 */
#include "resp.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/limits.h"
#include "../common/qassert.h"

#define RESP_HEADER_LINE_SIZE_MAX_BYTES 32        /* "*<count>" / "$<len>": digits only */
#define RESP_BULK_PREALLOC_MAX_BYTES (64 * 1024)  /* reserved before data arrives */
#define RESP_ARGV_PREALLOC_COUNT_MAX 64

static void *xrealloc(void *p, size_t size_bytes) {
    void *q = realloc(p, size_bytes ? size_bytes : 1);
    if (q == NULL) QUIVER_FATAL("out of memory (%zu bytes) in the RESP parser", size_bytes);
    return q;
}

void resp_parser_init(resp_parser *p, uint64_t request_size_max_bytes) {
    memset(p, 0, sizeof(*p));
    p->request_size_max_bytes =
        request_size_max_bytes ? request_size_max_bytes : QUIVER_REQUEST_SIZE_MAX_BYTES_DEFAULT;
    p->query_buffer_limit_bytes = p->request_size_max_bytes + QUIVER_CLIENT_QUERY_BUFFER_OVERHEAD_BYTES;
    p->state = RESP_ST_START;
}

void resp_parser_set_query_buffer_limit(resp_parser *p, uint64_t limit_bytes) {
    QUIVER_ASSERT(p != NULL && p->buffered_bytes == 0);
    if (limit_bytes != 0) p->query_buffer_limit_bytes = limit_bytes;
}

/* What the request being assembled holds, besides the line buffer: its
 * argument vector and every argument allocation (argv[argc] included while
 * a bulk is being received). */
static uint64_t request_bytes(const resp_parser *p) {
    uint64_t n = (uint64_t)p->argv_cap * RESP_ARGV_SLOT_BYTES;
    for (uint32_t i = 0; i < p->req.argc; i++) n += p->req.argv_len[i] + 1 + RESP_ARG_OVERHEAD_BYTES;
    return n;
}

void resp_request_free(resp_request *r) {
    if (r == NULL) return;
    for (uint32_t i = 0; i < r->argc; i++) free(r->argv[i]);
    free(r->argv);
    free(r->argv_len);
    memset(r, 0, sizeof(*r));
}

void resp_parser_free(resp_parser *p) {
    /* A partially received argument sits at argv[argc] (not yet counted). */
    if (p->state == RESP_ST_BULK_DATA || p->state == RESP_ST_BULK_CR || p->state == RESP_ST_BULK_LF) {
        if (p->req.argv != NULL) free(p->req.argv[p->req.argc]);
    }
    resp_request_free(&p->req);
    free(p->line);
    memset(p, 0, sizeof(*p));
    p->state = RESP_ST_FAILED;
    QUIVER_ASSERT(p->buffered_bytes == 0);
}

static resp_parse_status fail(resp_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static resp_parse_status fail(resp_parser *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof(p->error), fmt, ap);
    va_end(ap);
    /* Drop whatever was assembled; the connection is going away. */
    if (p->state == RESP_ST_BULK_DATA || p->state == RESP_ST_BULK_CR || p->state == RESP_ST_BULK_LF) {
        if (p->req.argv != NULL) free(p->req.argv[p->req.argc]);
    }
    resp_request_free(&p->req);
    p->argv_cap = 0;
    p->buffered_bytes = p->line_cap;
    p->state = RESP_ST_FAILED;
    return RESP_PARSE_ERROR;
}

static void line_append(resp_parser *p, char c) {
    if (p->line_len + 1 >= p->line_cap) {
        size_t cap = p->line_cap ? p->line_cap * 2 : 64;
        p->line = xrealloc(p->line, cap);
        p->buffered_bytes += cap - p->line_cap;
        p->line_cap = cap;
    }
    p->line[p->line_len++] = c;
    p->line[p->line_len] = '\0';
}

/* Strict decimal: optional '-', 1..19 digits, nothing else (Redis' string2ll
 * also refuses '+', spaces and leading zeros on multi-digit numbers). */
static bool parse_int64(const char *s, size_t len, int64_t *out) {
    if (len == 0 || len > 20) return false;
    bool neg = false;
    size_t i = 0;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1) return false;
    }
    if (len - i > 1 && s[i] == '0') return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
    }
    return true;
}

/* Grow r's argument vector to need slots; *buffered (NULL: not counted)
 * follows the growth. */
static void req_reserve_argv(resp_request *r, uint32_t *cap, uint32_t need, uint64_t *buffered) {
    if (need <= *cap) return;
    uint32_t c = *cap ? *cap : 4;
    while (c < need) c *= 2;
    r->argv = xrealloc(r->argv, sizeof(char *) * c);
    r->argv_len = xrealloc(r->argv_len, sizeof(size_t) * c);
    if (buffered != NULL) *buffered += (uint64_t)(c - *cap) * RESP_ARGV_SLOT_BYTES;
    *cap = c;
}

static void take_request(resp_parser *p, resp_request *out) {
    QUIVER_ASSERT(p->buffered_bytes == p->line_cap + request_bytes(p));
    *out = p->req;
    memset(&p->req, 0, sizeof(p->req));
    p->argv_cap = 0;
    p->argc_expected = 0;
    p->buffered_bytes = p->line_cap;
    p->state = RESP_ST_START;
}

/* ---- inline commands (sdssplitargs semantics) ---- */

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool is_sep(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'; }

bool resp_split_inline(const char *line, size_t len, resp_request *out, char *error, size_t error_size) {
    memset(out, 0, sizeof(*out));
    uint32_t cap = 0;
    size_t i = 0;
    char *cur = NULL;
    size_t cur_len = 0, cur_cap = 0;
    for (;;) {
        while (i < len && is_sep(line[i])) i++;
        if (i >= len) break;
        if (out->argc >= QUIVER_RESP_ARGS_COUNT_MAX) {
            snprintf(error, error_size, "ERR Protocol error: invalid multibulk length");
            goto fail;
        }
        bool inq = false, insq = false, done = false;
        cur_cap = 16;
        cur = xrealloc(NULL, cur_cap);
        cur_len = 0;
        while (!done) {
            char c = 0;
            bool emit = false;
            if (inq) {
                if (i >= len) goto unbalanced;
                if (line[i] == '\\' && i + 3 < len + 0 && line[i + 1] == 'x' && hex_digit(line[i + 2]) >= 0 &&
                    hex_digit(line[i + 3]) >= 0) {
                    c = (char)(hex_digit(line[i + 2]) * 16 + hex_digit(line[i + 3]));
                    emit = true;
                    i += 3;
                } else if (line[i] == '\\' && i + 1 < len) {
                    i++;
                    switch (line[i]) {
                    case 'n': c = '\n'; break;
                    case 'r': c = '\r'; break;
                    case 't': c = '\t'; break;
                    case 'b': c = '\b'; break;
                    case 'a': c = '\a'; break;
                    default: c = line[i]; break;
                    }
                    emit = true;
                } else if (line[i] == '"') {
                    /* closing quote must be followed by a space or nothing */
                    if (i + 1 < len && !is_sep(line[i + 1])) goto unbalanced;
                    done = true;
                } else {
                    c = line[i];
                    emit = true;
                }
            } else if (insq) {
                if (i >= len) goto unbalanced;
                if (line[i] == '\\' && i + 1 < len && line[i + 1] == '\'') {
                    i++;
                    c = '\'';
                    emit = true;
                } else if (line[i] == '\'') {
                    if (i + 1 < len && !is_sep(line[i + 1])) goto unbalanced;
                    done = true;
                } else {
                    c = line[i];
                    emit = true;
                }
            } else {
                if (i >= len || is_sep(line[i])) {
                    done = true;
                } else if (line[i] == '"') {
                    inq = true;
                } else if (line[i] == '\'') {
                    insq = true;
                } else {
                    c = line[i];
                    emit = true;
                }
            }
            if (emit) {
                if (cur_len + 1 >= cur_cap) {
                    cur_cap *= 2;
                    cur = xrealloc(cur, cur_cap);
                }
                cur[cur_len++] = c;
            }
            if (i < len) i++;
        }
        cur[cur_len] = '\0';
        req_reserve_argv(out, &cap, out->argc + 1, NULL);
        out->argv[out->argc] = cur;
        out->argv_len[out->argc] = cur_len;
        out->argc++;
        out->size_bytes += cur_len;
        cur = NULL;
    }
    return true;
unbalanced:
    snprintf(error, error_size, "ERR Protocol error: unbalanced quotes in request");
fail:
    free(cur);
    resp_request_free(out);
    return false;
}

/* ---- the state machine ---- */

resp_parse_status resp_parse(resp_parser *p, const char *data, size_t len, size_t *consumed,
                             resp_request *out) {
    QUIVER_ASSERT(p != NULL && consumed != NULL && out != NULL);
    QUIVER_ASSERT(data != NULL || len == 0);
    size_t i = 0;
    *consumed = 0;
    if (p->state == RESP_ST_FAILED) return RESP_PARSE_ERROR;

    while (i < len) {
        switch (p->state) {
        case RESP_ST_START:
            p->line_len = 0;
            if (data[i] == '*') {
                p->state = RESP_ST_ARRAY_LEN;
                i++;
            } else {
                p->state = RESP_ST_INLINE;
            }
            break;

        case RESP_ST_INLINE: {
            const char *nl = memchr(data + i, '\n', len - i);
            size_t take = nl ? (size_t)(nl - (data + i)) : len - i;
            if (p->line_len + take > QUIVER_RESP_INLINE_SIZE_MAX_BYTES) {
                *consumed = i;
                return fail(p, "ERR Protocol error: too big inline request");
            }
            for (size_t k = 0; k < take; k++) line_append(p, data[i + k]);
            i += take;
            if (p->buffered_bytes > p->query_buffer_limit_bytes) {
                *consumed = i;
                p->error_query_buffer = true;
                return fail(p, "ERR max query buffer length reached: the inline request being received holds more "
                               "than %llu bytes (the --client-query-buffer-limit)",
                            (unsigned long long)p->query_buffer_limit_bytes);
            }
            if (nl == NULL) break;
            i++; /* the '\n' */
            size_t l = p->line_len;
            if (l > 0 && p->line[l - 1] == '\r') l--;
            resp_request r;
            char err[sizeof(p->error)];
            if (!resp_split_inline(p->line ? p->line : "", l, &r, err, sizeof(err))) {
                *consumed = i;
                return fail(p, "%s", err);
            }
            p->line_len = 0;
            p->state = RESP_ST_START;
            if (r.argc == 0) {
                resp_request_free(&r);
                break; /* blank line: ignored, like Redis */
            }
            if (r.size_bytes > p->request_size_max_bytes) {
                resp_request_free(&r);
                *consumed = i;
                return fail(p, "ERR Protocol error: request of more than %llu bytes (the --max-request-bytes limit)",
                            (unsigned long long)p->request_size_max_bytes);
            }
            *out = r;
            *consumed = i;
            return RESP_PARSE_OK;
        }

        case RESP_ST_ARRAY_LEN:
        case RESP_ST_BULK_LEN: {
            char c = data[i++];
            bool array = p->state == RESP_ST_ARRAY_LEN;
            if (c != '\n') {
                if (p->line_len >= RESP_HEADER_LINE_SIZE_MAX_BYTES) {
                    *consumed = i;
                    return fail(p, array ? "ERR Protocol error: invalid multibulk length"
                                         : "ERR Protocol error: invalid bulk length");
                }
                line_append(p, c);
                break;
            }
            /* a header line must end in CRLF */
            int64_t n = 0;
            bool ok = p->line_len >= 1 && p->line[p->line_len - 1] == '\r' &&
                      parse_int64(p->line, p->line_len - 1, &n);
            p->line_len = 0;
            if (array) {
                if (!ok || n > (int64_t)QUIVER_RESP_ARGS_COUNT_MAX) {
                    *consumed = i;
                    return fail(p, "ERR Protocol error: invalid multibulk length");
                }
                if (n <= 0) { /* "*0" and "*-1": nothing to do, like Redis */
                    p->state = RESP_ST_START;
                    break;
                }
                p->argc_expected = (uint32_t)n;
                uint32_t pre = p->argc_expected < RESP_ARGV_PREALLOC_COUNT_MAX ? p->argc_expected
                                                                                 : RESP_ARGV_PREALLOC_COUNT_MAX;
                req_reserve_argv(&p->req, &p->argv_cap, pre, &p->buffered_bytes);
                p->state = RESP_ST_BULK_PREFIX;
            } else {
                if (!ok || n < 0) {
                    *consumed = i;
                    return fail(p, "ERR Protocol error: invalid bulk length");
                }
                if ((uint64_t)n > p->request_size_max_bytes ||
                    p->req.size_bytes + (uint64_t)n > p->request_size_max_bytes) {
                    *consumed = i;
                    return fail(p, "ERR Protocol error: request of more than %llu bytes (the --max-request-bytes limit)",
                                (unsigned long long)p->request_size_max_bytes);
                }
                /* The whole argument, its bookkeeping and the vector's
                 * next growth must fit the query buffer: refused now,
                 * before a byte of it is buffered. */
                uint64_t argv_growth = p->req.argc + 1 > p->argv_cap ? (uint64_t)p->argv_cap * RESP_ARGV_SLOT_BYTES : 0;
                if (p->buffered_bytes + (uint64_t)n + 1 + RESP_ARG_OVERHEAD_BYTES + argv_growth >
                    p->query_buffer_limit_bytes) {
                    *consumed = i;
                    p->error_query_buffer = true;
                    return fail(p,
                                "ERR max query buffer length reached: the request being received would hold more "
                                "than %llu bytes (the --client-query-buffer-limit)",
                                (unsigned long long)p->query_buffer_limit_bytes);
                }
                p->bulk_len = (uint64_t)n;
                p->bulk_received = 0;
                p->bulk_cap = (size_t)(p->bulk_len + 1 < RESP_BULK_PREALLOC_MAX_BYTES ? p->bulk_len + 1
                                                                                     : RESP_BULK_PREALLOC_MAX_BYTES);
                req_reserve_argv(&p->req, &p->argv_cap, p->req.argc + 1, &p->buffered_bytes);
                p->req.argv[p->req.argc] = xrealloc(NULL, p->bulk_cap);
                p->buffered_bytes += p->bulk_cap + RESP_ARG_OVERHEAD_BYTES;
                p->state = p->bulk_len == 0 ? RESP_ST_BULK_CR : RESP_ST_BULK_DATA;
            }
            break;
        }

        case RESP_ST_BULK_PREFIX: {
            char c = data[i++];
            if (c != '$') {
                *consumed = i;
                if (isprint((unsigned char)c))
                    return fail(p, "ERR Protocol error: expected '$', got '%c'", c);
                return fail(p, "ERR Protocol error: expected '$', got byte 0x%02x", (unsigned char)c);
            }
            p->line_len = 0;
            p->state = RESP_ST_BULK_LEN;
            break;
        }

        case RESP_ST_BULK_DATA: {
            uint64_t want = p->bulk_len - p->bulk_received;
            size_t take = (size_t)(want < (uint64_t)(len - i) ? want : (uint64_t)(len - i));
            char *arg = p->req.argv[p->req.argc];
            if (p->bulk_received + take + 1 > p->bulk_cap) {
                size_t cap = p->bulk_cap;
                while (p->bulk_received + take + 1 > cap) cap *= 2;
                if (cap > p->bulk_len + 1) cap = (size_t)p->bulk_len + 1;
                arg = xrealloc(arg, cap);
                p->req.argv[p->req.argc] = arg;
                p->buffered_bytes += cap - p->bulk_cap;
                p->bulk_cap = cap;
            }
            memcpy(arg + p->bulk_received, data + i, take);
            p->bulk_received += take;
            i += take;
            if (p->bulk_received == p->bulk_len) p->state = RESP_ST_BULK_CR;
            break;
        }

        case RESP_ST_BULK_CR:
        case RESP_ST_BULK_LF: {
            char c = data[i++];
            char want = p->state == RESP_ST_BULK_CR ? '\r' : '\n';
            if (c != want) {
                /* the bulk was longer than announced (or the CRLF is missing) */
                *consumed = i;
                return fail(p, "ERR Protocol error: expected CRLF after a bulk string of %llu bytes",
                            (unsigned long long)p->bulk_len);
            }
            if (p->state == RESP_ST_BULK_CR) {
                p->state = RESP_ST_BULK_LF;
                break;
            }
            char *arg = p->req.argv[p->req.argc];
            arg[p->bulk_len] = '\0';
            p->req.argv_len[p->req.argc] = (size_t)p->bulk_len;
            p->req.argc++;
            p->req.size_bytes += p->bulk_len;
            if (p->req.argc == p->argc_expected) {
                take_request(p, out);
                *consumed = i;
                return RESP_PARSE_OK;
            }
            p->state = RESP_ST_BULK_PREFIX;
            break;
        }

        case RESP_ST_FAILED:
            *consumed = i;
            return RESP_PARSE_ERROR;
        }
    }
    *consumed = i;
    return RESP_PARSE_INCOMPLETE;
}
