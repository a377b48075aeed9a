/*
 * import.c -- `quiver import` (see import.h for what and why).
 *
 * Structure: scan the directory and check every header first (nothing is
 * sent if one is wrong); connect and check the graph is empty; then one pass
 * per file: read lines (zlib reads .gz and plain files alike), split,
 * convert each row to a Cypher literal appended to the open batch of its
 * label set or relationship type, and send full batches, keeping up to
 * in_flight unanswered.  At the end of each file all its batches are sent
 * and answered, so per-file counts are exact and relationship files only
 * start once every node id is known.
 *
 * Retries (import.h): a batch's flight keeps its text and request id until
 * a final answer, so a retry is the byte-identical statement with the same
 * id.  The ring of flights is the only place unacknowledged batches live:
 * an error reply moves the flight from the head to the tail and re-sends
 * it; a lost connection re-sends the whole ring, oldest first, on the next
 * node.  Replies are matched to flights by order, so every flight on the
 * current connection has been written to it (reconnect re-sends them all
 * before anything new).  Trade-off: a retried batch is applied after later
 * ones; nothing depends on the order of batches within a file, and files
 * are drained one by one.
 *
 * Rows are lists of values in header order, and the CREATE pattern names
 * the properties ({name: r[0], ...}); a missing value is null, which CREATE
 * does not store (openCypher; FalkorDB and Quiver behave so).  Measured on
 * quiverd with 5,000 DEPENDS_ON rows: 150-220 ms of execution against
 * 355 ms for `CREATE ... SET e = map`, which creates then rewrites every
 * entity, and the text is 2.5 times smaller because keys are not repeated.
 *
 * Trade-off: positions of `RETURN id(n)` rows are matched to the batch's
 * rows by order (UNWIND then CREATE preserves order in every Cypher engine),
 * which keeps the id out of the stored properties; the reply's row count is
 * checked against the batch.
 */
#include "import.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <zlib.h>

#include "../common/limits.h"
#include "../common/qassert.h"
#include "client.h"
#include "cypher_literal.h"
#include "idmap.h"

/* ------------------------------------------------------------------ */
/* Line reader over zlib (plain files are read transparently).        */
/* ------------------------------------------------------------------ */

typedef struct line_reader {
    gzFile gz;
    char *buf;
    size_t cap, start, end;
    bool eof;
    uint64_t line_no;      /* of the line last returned, 1-based */
    char error[256];
} line_reader;

static int lr_open(line_reader *lr, const char *path) {
    memset(lr, 0, sizeof *lr);
    lr->gz = gzopen(path, "rb");
    if (lr->gz == NULL) {
        snprintf(lr->error, sizeof lr->error, "%s", strerror(errno ? errno : ENOMEM));
        return -1;
    }
    gzbuffer(lr->gz, 256 * 1024);
    lr->cap = 1024 * 1024;
    lr->buf = malloc(lr->cap);
    if (lr->buf == NULL) QUIVER_FATAL("out of memory");
    return 0;
}

static void lr_close(line_reader *lr) {
    if (lr->gz) gzclose(lr->gz);
    free(lr->buf);
    lr->gz = NULL;
    lr->buf = NULL;
}

/* 1: a line in (*line, *len), without '\n'.  0: end of file.  -1: read or
 * decompression error (lr->error).  -2: line longer than
 * IMPORT_LINE_SIZE_MAX_BYTES (skipped; lr->line_no is its number). */
static int lr_next(line_reader *lr, char **line, size_t *len) {
    bool too_long = false;
    for (;;) {
        char *nl = lr->start < lr->end ? memchr(lr->buf + lr->start, '\n', lr->end - lr->start) : NULL;
        if (nl != NULL) {
            size_t s = lr->start;
            lr->start = (size_t)(nl - lr->buf) + 1;
            lr->line_no++;
            if (too_long) return -2;
            *line = lr->buf + s;
            *len = (size_t)(nl - lr->buf) - s;
            return 1;
        }
        if (lr->eof) {
            if (lr->start < lr->end) {
                size_t s = lr->start;
                lr->start = lr->end;
                lr->line_no++;
                if (too_long) return -2;
                *line = lr->buf + s;
                *len = lr->end - s;
                return 1;
            }
            return too_long ? (lr->line_no++, -2) : 0;
        }
        /* Make room: move the partial line down, grow if it fills the buffer. */
        if (lr->start > 0) {
            memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
            lr->end -= lr->start;
            lr->start = 0;
        }
        if (lr->end == lr->cap) {
            if (lr->cap >= IMPORT_LINE_SIZE_MAX_BYTES) {
                too_long = true; /* drop what we have, keep reading to the newline */
                lr->start = lr->end = 0;
            } else {
                size_t cap = lr->cap * 2;
                char *p = realloc(lr->buf, cap);
                if (p == NULL) QUIVER_FATAL("out of memory");
                lr->buf = p;
                lr->cap = cap;
            }
        }
        size_t want = lr->cap - lr->end;
        if (want > (1u << 30)) want = 1u << 30;
        int got = gzread(lr->gz, lr->buf + lr->end, (unsigned)want);
        if (got < 0) {
            int errnum;
            const char *m = gzerror(lr->gz, &errnum);
            snprintf(lr->error, sizeof lr->error, "%s", m ? m : "read error");
            return -1;
        }
        if (got == 0) {
            int errnum;
            const char *m = gzerror(lr->gz, &errnum);
            if (errnum != Z_OK && errnum != Z_STREAM_END) {
                snprintf(lr->error, sizeof lr->error, "%s", m ? m : "read error");
                return -1;
            }
            lr->eof = true;
        }
        lr->end += (size_t)got;
    }
}

/* ------------------------------------------------------------------ */
/* State                                                              */
/* ------------------------------------------------------------------ */

typedef struct counter {
    char *name;
    uint64_t count;
} counter;

typedef struct counters {
    counter *items;
    size_t n, cap;
} counters;

typedef struct in_file {
    char *path;
    const char *name;      /* base name inside path */
    import_file_kind kind;
    uint64_t size_bytes;
    import_header header;
    uint64_t loaded;       /* rows confirmed by the server */
    uint64_t skipped;
} in_file;

#define BATCH_LABELS_MAX QUIVER_LABELS_PER_NODE_COUNT_MAX

typedef struct open_batch {
    bool used;
    cli_buf key;           /* label fragment ":A:B" or type name literal */
    size_t counter_ids[BATCH_LABELS_MAX];
    size_t counter_count;
    cli_buf text;          /* "CYPHER rows=[" + rows */
    size_t rows;
    const char **ids;      /* node batches: idmap keys per row (NULL entries when no :ID) */
    size_t *id_lens;
    size_t ids_cap;
    uint64_t first_line, last_line;
} open_batch;

typedef struct flight {
    import_file_kind kind;
    size_t file_index;
    size_t rows;
    const char **ids;
    size_t *id_lens;
    size_t counter_ids[BATCH_LABELS_MAX];
    size_t counter_count;
    uint64_t first_line, last_line;
    /* Kept until the batch is acknowledged, so that a retry sends the
     * byte-identical statement with the same request id. */
    cli_buf text;
    uint64_t seq;          /* request id = (importer origin, seq); seq >= 1 */
    bool id_sent;          /* the current attempt was preceded by QUIVER.REQUESTID */
    bool maybe_applied;    /* an attempt's outcome is unknown (sent, then lost or "outcome unknown") */
    bool unsafe;           /* such an attempt had no request id: a retry may apply it twice */
    double first_failure_s; /* monotonic time of its first failed attempt; 0: none */
} flight;

typedef struct importer {
    const import_options *o;
    redisContext *c;
    /* the cluster */
    import_endpoint nodes[IMPORT_NODES_COUNT_MAX];
    size_t node_count, cur_node;
    uint64_t origin, next_seq;   /* request ids */
    bool no_request_ids;         /* the server has no QUIVER.REQUESTID: plain retries */
    unsigned backoff_ms;         /* current retry backoff; 0 after a success */
    uint64_t retries, retries_unknown, reconnects, unsafe_batches;
    double last_note_s;
    uint64_t notes_suppressed;
    idmap ids;
    in_file *files;
    size_t file_count;
    size_t cur_file;
    open_batch batches[IMPORT_OPEN_BATCHES_MAX];
    flight flights[IMPORT_IN_FLIGHT_MAX];
    size_t flight_head, flight_count;
    counters labels, types;
    uint64_t nodes_loaded, edges_loaded, rows_skipped;
    char *bad[IMPORT_BAD_ROWS_LISTED];
    size_t bad_listed;
    bool failed;
    char failure[2048];
    int64_t next_fake_id;
    /* progress */
    bool bar;
    bool bar_visible;
    double t0_s, last_draw_s, file_t0_s, last_line_s;
    uint64_t total_bytes, done_bytes;
    gzFile cur_gz;
    /* scratch */
    cli_buf row, frag;
} importer;

/* Set by SIGINT: stop sending, collect the replies due, print what was
 * loaded.  The handler is installed with SA_RESETHAND, so a second Ctrl-C
 * ends the program at once. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *fmt_count(char *buf, size_t n, uint64_t v) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

static size_t counter_index(counters *cs, const char *name, size_t len) {
    for (size_t i = 0; i < cs->n; i++)
        if (strlen(cs->items[i].name) == len && memcmp(cs->items[i].name, name, len) == 0) return i;
    if (cs->n == cs->cap) {
        cs->cap = cs->cap ? cs->cap * 2 : 16;
        cs->items = realloc(cs->items, cs->cap * sizeof *cs->items);
        if (cs->items == NULL) QUIVER_FATAL("out of memory");
    }
    /* not strndup: name points into the read buffer and may end at its
     * last byte with no NUL after it */
    char *copy = malloc(len + 1);
    if (copy == NULL) QUIVER_FATAL("out of memory");
    memcpy(copy, name, len);
    copy[len] = '\0';
    cs->items[cs->n].name = copy;
    cs->items[cs->n].count = 0;
    return cs->n++;
}

static void counters_free(counters *cs) {
    for (size_t i = 0; i < cs->n; i++) free(cs->items[i].name);
    free(cs->items);
    memset(cs, 0, sizeof *cs);
}

static void bar_clear(importer *im) {
    if (im->bar_visible) {
        fputs("\r\033[K", im->o->err);
        im->bar_visible = false;
    }
}

static void fail(importer *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(importer *im, const char *fmt, ...) {
    if (im->failed) return; /* the first failure is the one to report */
    im->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(im->failure, sizeof im->failure, fmt, ap);
    va_end(ap);
}

static void bad_row(importer *im, const in_file *f, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad_row(importer *im, const in_file *f, uint64_t line, const char *fmt, ...) {
    im->rows_skipped++;
    im->files[im->cur_file].skipped++;
    if (im->bad_listed >= IMPORT_BAD_ROWS_LISTED) return;
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    cli_buf m = CLI_BUF_INIT;
    cli_buf_printf(&m, "%s:%" PRIu64 ": %s", f->name, line, reason);
    im->bad[im->bad_listed++] = cli_buf_take(&m);
    bar_clear(im);
    fprintf(im->o->err, "warning: %s, row skipped\n", im->bad[im->bad_listed - 1]);
}

static void progress(importer *im, bool force) {
    if (!im->bar) {
        /* Without a terminal: a line every IMPORT_PROGRESS_LINE_INTERVAL_MS
         * (besides the per-file lines), so a log shows a long file moving. */
        double t = now_s();
        if (force || t - im->last_line_s < IMPORT_PROGRESS_LINE_INTERVAL_MS / 1000.0) return;
        im->last_line_s = t;
        char c1[32], c2[32];
        double el = t - im->t0_s;
        uint64_t elements = im->nodes_loaded + im->edges_loaded;
        fprintf(im->o->err, "progress: %s elements loaded (%s/s), reading %s\n", fmt_count(c1, sizeof c1, elements),
                fmt_count(c2, sizeof c2, el > 0 ? (uint64_t)((double)elements / el) : 0), im->files[im->cur_file].name);
        fflush(im->o->err);
        return;
    }
    double t = now_s();
    if (!force && t - im->last_draw_s < IMPORT_PROGRESS_INTERVAL_MS / 1000.0) return;
    im->last_draw_s = t;
    uint64_t read = im->done_bytes;
    if (im->cur_gz) {
        z_off_t off = gzoffset(im->cur_gz);
        if (off > 0) read += (uint64_t)off;
    }
    double frac = im->total_bytes ? (double)read / (double)im->total_bytes : 1.0;
    if (frac > 1.0) frac = 1.0;
    double el = t - im->t0_s;
    uint64_t elements = im->nodes_loaded + im->edges_loaded;
    double rate = el > 0 ? (double)elements / el : 0;
    char eta[32] = "--";
    if (frac > 0.005 && frac < 1.0) {
        double rem = el * (1.0 - frac) / frac;
        snprintf(eta, sizeof eta, "%d:%02d", (int)(rem / 60), (int)fmod(rem, 60.0));
    } else if (frac >= 1.0) {
        snprintf(eta, sizeof eta, "0:00");
    }
    char barbuf[31];
    int filled = (int)(frac * 30);
    for (int i = 0; i < 30; i++) barbuf[i] = i < filled ? '#' : '.';
    barbuf[30] = '\0';
    char c1[32], c2[32];
    fprintf(im->o->err, "\r%-26.26s [%s] %3d%%  %s elements  %s/s  ETA %s\033[K",
            im->files[im->cur_file].name, barbuf, (int)(frac * 100), fmt_count(c1, sizeof c1, elements),
            fmt_count(c2, sizeof c2, (uint64_t)rate), eta);
    fflush(im->o->err);
    im->bar_visible = true;
}

/* ------------------------------------------------------------------ */
/* Row conversion                                                      */
/* ------------------------------------------------------------------ */

static void trim(const char **s, size_t *n) {
    while (*n > 0 && isspace((unsigned char)(*s)[0])) (*s)++, (*n)--;
    while (*n > 0 && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

/* Append one scalar of type t; returns 0 or -1 with err. */
static int append_scalar(cli_buf *out, import_value_type t, const char *s, size_t n, const import_column *col,
                         char *err, size_t errn) {
    char tmp[128];
    switch (t) {
    case VT_STRING:
        if (n > QUIVER_STRING_SIZE_MAX_BYTES) {
            snprintf(err, errn, "column '%s': string longer than %u bytes", col->name, QUIVER_STRING_SIZE_MAX_BYTES);
            return -1;
        }
        if (!cypher_utf8_valid(s, n)) {
            snprintf(err, errn, "column '%s': not valid UTF-8", col->name);
            return -1;
        }
        cypher_append_string(out, s, n);
        return 0;
    case VT_INT: {
        trim(&s, &n);
        if (n == 0 || n >= sizeof tmp) goto bad_int;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        char *end;
        errno = 0;
        long long v = strtoll(tmp, &end, 10);
        if (errno != 0 || end != tmp + n) goto bad_int;
        cypher_append_int(out, (int64_t)v);
        return 0;
    bad_int:
        snprintf(err, errn, "column '%s': '%.*s' is not a 64-bit integer", col->name, (int)(n > 40 ? 40 : n), s);
        return -1;
    }
    case VT_FLOAT: {
        trim(&s, &n);
        if (n == 0 || n >= sizeof tmp) goto bad_float;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        char *end;
        errno = 0;
        double d = strtod(tmp, &end);
        if (end != tmp + n || errno == ERANGE) goto bad_float;
        if (cypher_append_double(out, d) != 0) goto bad_float;
        return 0;
    bad_float:
        snprintf(err, errn, "column '%s': '%.*s' is not a finite number", col->name, (int)(n > 40 ? 40 : n), s);
        return -1;
    }
    case VT_BOOL:
        trim(&s, &n);
        if (n == 4 && strncasecmp(s, "true", 4) == 0) cli_buf_append(out, "true", 4);
        else if (n == 5 && strncasecmp(s, "false", 5) == 0) cli_buf_append(out, "false", 5);
        else {
            snprintf(err, errn, "column '%s': '%.*s' is not true or false", col->name, (int)(n > 40 ? 40 : n), s);
            return -1;
        }
        return 0;
    }
    QUIVER_FATAL("unreachable value type %d", (int)t);
}

int import_append_values(const import_header *h, const csv_field *fields, cli_buf *out, char *err,
                         size_t err_size_bytes) {
    QUIVER_ASSERT(h != NULL && fields != NULL && out != NULL && err != NULL);
    size_t mark = out->len;
    bool first = true;
    for (size_t c = 0; c < h->column_count; c++) {
        const import_column *col = &h->columns[c];
        if (col->name == NULL) continue;
        const csv_field *f = &fields[c];
        if (!first) cli_buf_putc(out, ',');
        first = false;
        if (f->len == 0 && !(f->quoted && col->type == VT_STRING && !col->array)) {
            cli_buf_append(out, "null", 4); /* missing: CREATE sets no property */
            continue;
        }
        if (!col->array) {
            if (append_scalar(out, col->type, f->text, f->len, col, err, err_size_bytes) != 0) goto error;
            continue;
        }
        /* Arrays: elements separated by ';' (neo4j-admin's default). */
        cli_buf_putc(out, '[');
        const char *p = f->text, *end = f->text + f->len;
        size_t k = 0;
        for (;;) {
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *e = semi ? semi : end;
            if (k++) cli_buf_append(out, ", ", 2);
            if (k > QUIVER_LIST_COUNT_MAX) {
                snprintf(err, err_size_bytes, "column '%s': too many array elements", col->name);
                goto error;
            }
            if (append_scalar(out, col->type, p, (size_t)(e - p), col, err, err_size_bytes) != 0) goto error;
            if (semi == NULL) break;
            p = semi + 1;
        }
        cli_buf_putc(out, ']');
    }
    return 0;
error:
    out->len = mark;
    if (out->data) out->data[mark] = '\0';
    return -1;
}

void import_append_pattern_map(const import_header *h, size_t first_index, cli_buf *out) {
    QUIVER_ASSERT(h != NULL && out != NULL);
    if (h->property_count == 0) return;
    size_t i = first_index;
    cli_buf_append(out, " {", 2);
    for (size_t c = 0; c < h->column_count; c++) {
        const import_column *col = &h->columns[c];
        if (col->name == NULL) continue;
        if (i > first_index) cli_buf_append(out, ", ", 2);
        cli_buf_append(out, col->key_literal, col->key_literal_len);
        cli_buf_printf(out, "r[%zu]", i);
        i++;
    }
    cli_buf_putc(out, '}');
    QUIVER_ASSERT(i - first_index == h->property_count);
}

/* Labels of a :LABEL cell: fragment into out, names into names/lens. */
static int parse_labels(const char *cell, size_t len, cli_buf *out, const char **names, size_t *lens, char *err,
                        size_t errn) {
    size_t count = 0;
    const char *p = cell, *end = cell + len;
    while (p <= end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;
        const char *s = p;
        size_t n = (size_t)(e - p);
        trim(&s, &n);
        if (n > 0) {
            if (count == BATCH_LABELS_MAX) {
                snprintf(err, errn, "more than %d labels", BATCH_LABELS_MAX);
                return -1;
            }
            if (n > QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES || !cypher_utf8_valid(s, n)) {
                snprintf(err, errn, "label '%.*s' is too long or not valid UTF-8", (int)(n > 40 ? 40 : n), s);
                return -1;
            }
            cli_buf_putc(out, ':');
            cypher_append_name(out, s, n);
            if (names) names[count] = s, lens[count] = n;
            count++;
        }
        if (semi == NULL) break;
        p = semi + 1;
    }
    return (int)count;
}

int import_append_labels(const char *cell, size_t len, cli_buf *out, char *err, size_t err_size_bytes) {
    size_t mark = out->len;
    int n = parse_labels(cell, len, out, NULL, NULL, err, err_size_bytes);
    if (n < 0) {
        out->len = mark;
        if (out->data) out->data[mark] = '\0';
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* Batches and the pipeline                                            */
/* ------------------------------------------------------------------ */

static int64_t stat_value(const redisReply *stats, const char *prefix) {
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < stats->elements; i++) {
        const redisReply *s = stats->element[i];
        if ((s->type == REDIS_REPLY_STRING || s->type == REDIS_REPLY_STATUS) && s->len > pl &&
            memcmp(s->str, prefix, pl) == 0)
            return strtoll(s->str + pl, NULL, 10);
    }
    return 0;
}

static void account(importer *im, flight *fl, uint64_t rows) {
    im->files[fl->file_index].loaded += rows;
    if (fl->kind == IMPORT_NODES) {
        im->nodes_loaded += rows;
        for (size_t i = 0; i < fl->counter_count; i++) im->labels.items[fl->counter_ids[i]].count += rows;
    } else {
        im->edges_loaded += rows;
        for (size_t i = 0; i < fl->counter_count; i++) im->types.items[fl->counter_ids[i]].count += rows;
    }
}

/* Check one reply against its flight and record what it loaded. */
static void handle_reply(importer *im, flight *fl, const redisReply *r) {
    const char *file = im->files[fl->file_index].name;
    if (r->type == REDIS_REPLY_ERROR) {
        fail(im, "the server refused the batch of %s lines %" PRIu64 "-%" PRIu64 ": %.*s", file, fl->first_line,
             fl->last_line, (int)r->len, r->str);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || (r->elements != 1 && r->elements != 3) ||
        r->element[r->elements - 1]->type != REDIS_REPLY_ARRAY) {
        fail(im, "unexpected reply to the batch of %s lines %" PRIu64 "-%" PRIu64, file, fl->first_line,
             fl->last_line);
        return;
    }
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_ERROR) {
            fail(im, "the server failed the batch of %s lines %" PRIu64 "-%" PRIu64 ": %s", file, fl->first_line,
                 fl->last_line, r->element[i]->str);
            return;
        }
    const redisReply *stats = r->element[r->elements - 1];
    if (fl->kind == IMPORT_NODES) {
        const redisReply *rows = r->elements == 3 ? r->element[1] : NULL;
        if (rows == NULL || rows->type != REDIS_REPLY_ARRAY || rows->elements != fl->rows) {
            int64_t created = stat_value(stats, "Nodes created: ");
            fail(im, "the batch of %s lines %" PRIu64 "-%" PRIu64 " returned %zu ids for %zu rows (%" PRId64
                     " nodes created)",
                 file, fl->first_line, fl->last_line, rows && rows->type == REDIS_REPLY_ARRAY ? rows->elements : 0,
                 fl->rows, created);
            if (created > 0) account(im, fl, (uint64_t)created);
            return;
        }
        for (size_t i = 0; i < fl->rows; i++) {
            const redisReply *row = rows->element[i];
            if (row->type != REDIS_REPLY_ARRAY || row->elements < 1 || row->element[0]->type != REDIS_REPLY_INTEGER ||
                row->element[0]->integer < 0) {
                fail(im, "the batch of %s lines %" PRIu64 "-%" PRIu64 " returned a row that is not a node id", file,
                     fl->first_line, fl->last_line);
                account(im, fl, fl->rows);
                return;
            }
            if (fl->ids[i] != NULL) idmap_set(&im->ids, fl->ids[i], fl->id_lens[i], row->element[0]->integer);
        }
        account(im, fl, fl->rows);
    } else {
        int64_t created = stat_value(stats, "Relationships created: ");
        if (created > 0) account(im, fl, (uint64_t)created);
        if ((uint64_t)created != fl->rows)
            fail(im, "the batch of %s lines %" PRIu64 "-%" PRIu64 " created %" PRId64 " relationships for %zu rows",
                 file, fl->first_line, fl->last_line, created, fl->rows);
    }
}

/* ------------------------------------------------------------------ */
/* Error classes and node lists (pure)                                 */
/* ------------------------------------------------------------------ */

static bool contains_ci(const char *s, size_t len, const char *word) {
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(s + i, word, n) == 0) return true;
    return false;
}

static bool starts_ci(const char *s, size_t len, const char *prefix) {
    size_t n = strlen(prefix);
    return len >= n && strncasecmp(s, prefix, n) == 0;
}

import_error_class import_classify_error(const char *msg, size_t len) {
    QUIVER_ASSERT(msg != NULL || len == 0);
    if (starts_ci(msg, len, "ERR ")) msg += 4, len -= 4;
    if (contains_ci(msg, len, "unknown command") && contains_ci(msg, len, "quiver.requestid"))
        return IMPORT_ERROR_NO_REQUEST_ID;
    /* A retry whose first outcome was too large to keep: applied, but the
     * ids are gone; retrying again would not bring them back. */
    if (contains_ci(msg, len, "already applied")) return IMPORT_ERROR_FATAL;
    if (contains_ci(msg, len, "outcome unknown") || contains_ci(msg, len, "leadership"))
        return IMPORT_ERROR_UNKNOWN;
    if (starts_ci(msg, len, "BUSY") || starts_ci(msg, len, "LOADING") || starts_ci(msg, len, "TRYAGAIN") ||
        starts_ci(msg, len, "MASTERDOWN"))
        return IMPORT_ERROR_NOT_APPLIED;
    if (contains_ci(msg, len, "no leader") || contains_ci(msg, len, "not the leader") ||
        contains_ci(msg, len, "not leader") || contains_ci(msg, len, "shutting down"))
        return IMPORT_ERROR_NOT_APPLIED;
    if (contains_ci(msg, len, "too many") && contains_ci(msg, len, "retry")) return IMPORT_ERROR_NOT_APPLIED;
    return IMPORT_ERROR_FATAL;
}

int import_parse_nodes(const char *list, import_endpoint *out, size_t max, char *err, size_t err_size_bytes) {
    QUIVER_ASSERT(list != NULL && out != NULL && max > 0 && err != NULL);
    size_t count = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *s = p;
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        trim(&s, &n);
        if (n == 0) {
            snprintf(err, err_size_bytes, "empty entry in the node list '%s'", list);
            return -1;
        }
        const char *host = s, *colon;
        size_t host_len;
        if (s[0] == '[') { /* [IPv6]:port */
            const char *close = memchr(s, ']', n);
            if (close == NULL || close + 1 >= s + n || close[1] != ':') {
                snprintf(err, err_size_bytes, "'%.*s' is not [HOST]:PORT", (int)(n > 80 ? 80 : n), s);
                return -1;
            }
            host = s + 1;
            host_len = (size_t)(close - host);
            colon = close + 1;
        } else {
            colon = NULL;
            for (size_t i = n; i-- > 0;)
                if (s[i] == ':') {
                    colon = s + i;
                    break;
                }
            if (colon == NULL) {
                snprintf(err, err_size_bytes, "'%.*s' is not HOST:PORT", (int)(n > 80 ? 80 : n), s);
                return -1;
            }
            host_len = (size_t)(colon - s);
        }
        const char *ps = colon + 1;
        size_t pn = (size_t)(s + n - ps);
        long port = 0;
        bool digits = pn > 0 && pn <= 5;
        for (size_t i = 0; digits && i < pn; i++) {
            if (ps[i] < '0' || ps[i] > '9') digits = false;
            else port = port * 10 + (ps[i] - '0');
        }
        if (!digits || port < 1 || port > 65535) {
            snprintf(err, err_size_bytes, "bad port in '%.*s' (1..65535)", (int)(n > 80 ? 80 : n), s);
            return -1;
        }
        if (host_len == 0 || host_len >= IMPORT_HOST_SIZE_MAX_BYTES) {
            snprintf(err, err_size_bytes, "bad host in '%.*s' (1..%d bytes)", (int)(n > 80 ? 80 : n), s,
                     IMPORT_HOST_SIZE_MAX_BYTES - 1);
            return -1;
        }
        bool dup = false;
        for (size_t i = 0; i < count; i++)
            if (out[i].port == (int)port && strlen(out[i].host) == host_len &&
                memcmp(out[i].host, host, host_len) == 0)
                dup = true;
        if (!dup) {
            if (count == max) {
                snprintf(err, err_size_bytes, "more than %zu nodes in the node list", max);
                return -1;
            }
            memcpy(out[count].host, host, host_len);
            out[count].host[host_len] = '\0';
            out[count].port = (int)port;
            count++;
        }
        if (comma == NULL) break;
        p = comma + 1;
    }
    return (int)count;
}

/* ------------------------------------------------------------------ */
/* Connections, request ids, retries                                   */
/* ------------------------------------------------------------------ */

/* A retry or reconnect notice on the error stream.  Connection events
 * (always) are printed; batch retries at most one a second (the others are
 * counted and mentioned with the next one). */
static void note(importer *im, bool always, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(importer *im, bool always, const char *fmt, ...) {
    double t = now_s();
    if (!always && im->last_note_s > 0 && t - im->last_note_s < 1.0) {
        im->notes_suppressed++;
        return;
    }
    im->last_note_s = t;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bar_clear(im);
    if (im->notes_suppressed > 0)
        fprintf(im->o->err, "retry: %s (and %" PRIu64 " more events)\n", msg, im->notes_suppressed);
    else
        fprintf(im->o->err, "retry: %s\n", msg);
    fflush(im->o->err);
    im->notes_suppressed = 0;
}

static void backoff(importer *im) {
    if (im->backoff_ms == 0) im->backoff_ms = IMPORT_BACKOFF_MIN_MS;
    else if (im->backoff_ms < IMPORT_BACKOFF_MAX_MS)
        im->backoff_ms = im->backoff_ms * 2 > IMPORT_BACKOFF_MAX_MS ? IMPORT_BACKOFF_MAX_MS : im->backoff_ms * 2;
    struct timespec ts = {(time_t)(im->backoff_ms / 1000), (long)(im->backoff_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* Ctrl-C cuts it short; the callers check `interrupted` */
}

static flight *flight_at(importer *im, size_t i) {
    QUIVER_ASSERT(i < im->flight_count);
    return &im->flights[(im->flight_head + i) % IMPORT_IN_FLIGHT_MAX];
}

/* The batch is answered for good (or abandoned): free its ids, keep the
 * text buffer's allocation in the slot for the next batch. */
static void flight_done(flight *fl) {
    free(fl->ids);
    free(fl->id_lens);
    fl->ids = NULL;
    fl->id_lens = NULL;
    cli_buf_clear(&fl->text);
    fl->seq = 0;
    fl->id_sent = fl->maybe_applied = fl->unsafe = false;
    fl->first_failure_s = 0;
}

static void drop_flights(importer *im) {
    while (im->flight_count > 0) {
        flight_done(&im->flights[im->flight_head]);
        im->flight_head = (im->flight_head + 1) % IMPORT_IN_FLIGHT_MAX;
        im->flight_count--;
    }
}

/* When the oldest unacknowledged batch started failing (now if none). */
static double trouble_since(importer *im) {
    double t = now_s();
    for (size_t i = 0; i < im->flight_count; i++) {
        const flight *fl = flight_at(im, i);
        if (fl->first_failure_s > 0 && fl->first_failure_s < t) t = fl->first_failure_s;
    }
    return t;
}

/* An attempt of fl may have been applied: note it, and count the batch as
 * unsafe when that attempt carried no request id. */
static void mark_maybe_applied(importer *im, flight *fl) {
    fl->maybe_applied = true;
    if (!fl->id_sent && !fl->unsafe) {
        fl->unsafe = true;
        im->unsafe_batches++;
    }
}

static redisContext *connect_to(importer *im, const import_endpoint *e, char *why, size_t why_size) {
    struct timeval tv = {CLI_CONNECT_TIMEOUT_MS / 1000, (CLI_CONNECT_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(e->host, e->port, tv);
    if (c == NULL) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(why, why_size, "%s", c->errstr);
        redisFree(c);
        return NULL;
    }
    /* A node that stops answering (paused, cut off) must not hang the
     * import: past this, the connection counts as lost. */
    struct timeval rt = {(time_t)im->o->reply_timeout_s, 0};
    if (redisSetTimeout(c, rt) != REDIS_OK) {
        snprintf(why, why_size, "cannot set the reply timeout: %s", c->errstr);
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Write fl on the current connection: `QUIVER.REQUESTID origin seq` (unless
 * the server has none) then its GRAPH.QUERY, pipelined.  retry: count it as
 * a repeated attempt.  Returns 0, or -1 when the connection failed (the
 * caller drops it; fl stays in the ring). */
static int send_flight(importer *im, flight *fl, bool retry) {
    QUIVER_ASSERT(im->c != NULL && fl->text.len > 0 && fl->seq > 0);
    fl->id_sent = !im->no_request_ids;
    if (fl->id_sent) {
        char os[24], ss[24];
        int ol = snprintf(os, sizeof os, "%" PRIu64, im->origin);
        int sl = snprintf(ss, sizeof ss, "%" PRIu64, fl->seq);
        const char *argv[3] = {"QUIVER.REQUESTID", os, ss};
        size_t argl[3] = {16, (size_t)ol, (size_t)sl};
        if (redisAppendCommandArgv(im->c, 3, argv, argl) != REDIS_OK) return -1;
    }
    const char *argv[3] = {"GRAPH.QUERY", im->o->graph, fl->text.data};
    size_t argl[3] = {11, strlen(im->o->graph), fl->text.len};
    if (redisAppendCommandArgv(im->c, 3, argv, argl) != REDIS_OK) return -1;
    int done = 0;
    while (!done)
        if (redisBufferWrite(im->c, &done) != REDIS_OK) return -1;
    if (retry) {
        im->retries++;
        if (fl->maybe_applied) im->retries_unknown++;
    }
    return 0;
}

/* The connection failed: every unacknowledged batch may have been applied
 * and will be re-sent on the next connection. */
static void drop_connection(importer *im) {
    QUIVER_ASSERT(im->c != NULL);
    char why[256];
    snprintf(why, sizeof why, "%s", im->c->errstr[0] ? im->c->errstr : "closed");
    redisFree(im->c);
    im->c = NULL;
    double t = now_s();
    for (size_t i = 0; i < im->flight_count; i++) {
        flight *fl = flight_at(im, i);
        if (fl->first_failure_s == 0) fl->first_failure_s = t;
        mark_maybe_applied(im, fl);
    }
    if (!im->failed)
        note(im, true, "connection to %s:%d lost (%s) with %zu batches unacknowledged", im->nodes[im->cur_node].host,
             im->nodes[im->cur_node].port, why, im->flight_count);
}

/* Connect to the next node that answers (round robin from the one after
 * the current, so a dead node is tried last) and re-send every
 * unacknowledged batch, oldest first, each with its own request id.
 * since_s: when the trouble began; past since_s + retry_timeout_s, or on
 * Ctrl-C, give up.  Returns 0, or -1 after fail(). */
static int reconnect(importer *im, double since_s) {
    QUIVER_ASSERT(im->c == NULL && im->node_count > 0);
    char why[256] = "not tried";
    size_t why_node = im->cur_node;
    for (;;) {
        for (size_t k = 1; k <= im->node_count; k++) {
            size_t idx = (im->cur_node + k) % im->node_count;
            redisContext *c = connect_to(im, &im->nodes[idx], why, sizeof why);
            if (c == NULL) {
                why_node = idx;
                continue;
            }
            im->c = c;
            im->cur_node = idx;
            im->reconnects++;
            int rc = 0;
            for (size_t i = 0; i < im->flight_count && rc == 0; i++) rc = send_flight(im, flight_at(im, i), true);
            if (rc == 0) {
                note(im, true, "connected to %s:%d; %zu unacknowledged batches sent again%s", im->nodes[idx].host,
                     im->nodes[idx].port, im->flight_count,
                     im->no_request_ids ? " (no request ids)" : " with their request ids");
                return 0;
            }
            snprintf(why, sizeof why, "%s", c->errstr);
            why_node = idx;
            redisFree(c);
            im->c = NULL;
        }
        if (interrupted) {
            fail(im, "interrupted (Ctrl-C) while reconnecting");
            return -1;
        }
        if (now_s() - since_s >= im->o->retry_timeout_s) {
            fail(im, "no node could be reached for %u s (last: %s:%d: %s)", im->o->retry_timeout_s,
                 im->nodes[why_node].host, im->nodes[why_node].port, why);
            return -1;
        }
        backoff(im);
    }
}

/* The answer to a batch's QUIVER.REQUESTID. */
static void check_request_id_reply(importer *im, flight *fl, const redisReply *r) {
    if (r->type != REDIS_REPLY_ERROR) return;
    /* The write that followed ran without our id. */
    fl->id_sent = false;
    import_error_class k = import_classify_error(r->str, r->len);
    if ((k == IMPORT_ERROR_NO_REQUEST_ID || k == IMPORT_ERROR_FATAL) && !im->no_request_ids) {
        im->no_request_ids = true;
        bar_clear(im);
        fprintf(im->o->err,
                "warning: the server refused QUIVER.REQUESTID (%.*s): continuing WITHOUT request ids; a batch "
                "retried after an unknown outcome may be applied twice (counted in the summary)\n",
                (int)(r->len > 200 ? 200 : r->len), r->str);
    }
}

/* A retryable error answered fl (already taken off the ring's head): put it
 * back at the tail and send it again after a backoff, or give up past the
 * retry timeout. */
static void retry_later(importer *im, flight *fl, const char *msg, size_t len, bool unknown) {
    double t = now_s();
    if (fl->first_failure_s == 0) fl->first_failure_s = t;
    if (unknown) mark_maybe_applied(im, fl);
    const char *file = im->files[fl->file_index].name;
    if (interrupted) {
        fail(im, "interrupted (Ctrl-C) while retrying the batch of %s lines %" PRIu64 "-%" PRIu64, file,
             fl->first_line, fl->last_line);
    } else if (t - fl->first_failure_s >= im->o->retry_timeout_s) {
        fail(im, "gave up on the batch of %s lines %" PRIu64 "-%" PRIu64 " after %u s of retries; last error: %.*s",
             file, fl->first_line, fl->last_line, im->o->retry_timeout_s, (int)(len > 400 ? 400 : len), msg);
    }
    if (im->failed) {
        flight_done(fl);
        return;
    }
    note(im, false, "%s:%d answered %.*s; sending the batch of %s lines %" PRIu64 "-%" PRIu64 " again",
         im->nodes[im->cur_node].host, im->nodes[im->cur_node].port, (int)(len > 400 ? 400 : len), msg, file,
         fl->first_line, fl->last_line);
    backoff(im);
    QUIVER_ASSERT(im->flight_count < IMPORT_IN_FLIGHT_MAX);
    flight *dst = &im->flights[(im->flight_head + im->flight_count) % IMPORT_IN_FLIGHT_MAX];
    if (dst != fl) { /* swap slots: the free slot's text allocation moves to fl's old place */
        flight tmp = *dst;
        *dst = *fl;
        *fl = tmp;
    }
    im->flight_count++;
    if (im->c != NULL && send_flight(im, dst, true) != 0) drop_connection(im);
}

/* Take the oldest batch's replies.  A retryable error puts the batch back
 * at the tail; a lost connection re-sends every unacknowledged batch on a
 * new one.  Returns once one batch has been answered for good (loaded, or
 * refused: im->failed), or when none is left. */
static void wait_one(importer *im) {
    while (im->flight_count > 0) {
        if (im->c == NULL) {
            if (im->failed || reconnect(im, trouble_since(im)) != 0) {
                drop_flights(im);
                return;
            }
            continue;
        }
        flight *fl = &im->flights[im->flight_head];
        void *rid = NULL, *rv = NULL;
        if (fl->id_sent && (redisGetReply(im->c, &rid) != REDIS_OK || rid == NULL)) {
            drop_connection(im);
            continue;
        }
        if (redisGetReply(im->c, &rv) != REDIS_OK || rv == NULL) {
            if (rid) freeReplyObject(rid);
            drop_connection(im);
            continue;
        }
        im->flight_head = (im->flight_head + 1) % IMPORT_IN_FLIGHT_MAX;
        im->flight_count--;
        if (rid) {
            check_request_id_reply(im, fl, rid);
            freeReplyObject(rid);
        }
        redisReply *r = rv;
        if (r->type == REDIS_REPLY_ERROR && !im->failed) {
            import_error_class k = import_classify_error(r->str, r->len);
            if (k == IMPORT_ERROR_NOT_APPLIED || k == IMPORT_ERROR_UNKNOWN) {
                retry_later(im, fl, r->str, r->len, k == IMPORT_ERROR_UNKNOWN);
                freeReplyObject(r);
                continue;
            }
        }
        handle_reply(im, fl, r);
        freeReplyObject(r);
        if (!im->failed) im->backoff_ms = 0;
        flight_done(fl);
        progress(im, false);
        return;
    }
}

static void drain(importer *im) {
    while (im->flight_count > 0) wait_one(im);
}

static void batch_reset(open_batch *b) {
    b->used = false;
    b->rows = 0;
    b->ids = NULL;
    b->id_lens = NULL;
    b->ids_cap = 0;
    cli_buf_clear(&b->key);
    cli_buf_clear(&b->text);
    b->counter_count = 0;
}

static void send_batch(importer *im, open_batch *b, import_file_kind kind) {
    QUIVER_ASSERT(b->used && b->rows > 0);
    if (!im->failed && im->flight_count == im->o->in_flight) wait_one(im);
    if (im->failed) { /* nothing more is sent after a failure */
        free(b->ids);
        free(b->id_lens);
        batch_reset(b);
        return;
    }
    const import_header *h = &im->files[im->cur_file].header;
    if (kind == IMPORT_NODES) {
        cli_buf_puts(&b->text, "] UNWIND $rows AS r CREATE (n");
        cli_buf_append(&b->text, b->key.data, b->key.len);
        import_append_pattern_map(h, 0, &b->text);
        cli_buf_puts(&b->text, ") RETURN id(n)");
    } else {
        cli_buf_puts(&b->text, "] UNWIND $rows AS r MATCH (a), (b) WHERE id(a) = r[0] AND id(b) = r[1] "
                               "CREATE (a)-[:");
        cli_buf_append(&b->text, b->key.data, b->key.len);
        import_append_pattern_map(h, 2, &b->text);
        cli_buf_puts(&b->text, "]->(b)");
    }
    QUIVER_ASSERT(im->flight_count < im->o->in_flight);
    flight *fl = &im->flights[(im->flight_head + im->flight_count) % IMPORT_IN_FLIGHT_MAX];
    cli_buf spare = fl->text; /* the slot's old allocation goes back to the open batch */
    memset(fl, 0, sizeof *fl);
    fl->kind = kind;
    fl->file_index = im->cur_file;
    fl->rows = b->rows;
    fl->ids = b->ids;
    fl->id_lens = b->id_lens;
    memcpy(fl->counter_ids, b->counter_ids, b->counter_count * sizeof b->counter_ids[0]);
    fl->counter_count = b->counter_count;
    fl->first_line = b->first_line;
    fl->last_line = b->last_line;
    fl->text = b->text;
    b->text = spare;
    fl->seq = ++im->next_seq;
    im->flight_count++;

    if (im->o->dump) {
        fwrite(fl->text.data, 1, fl->text.len, im->o->dump);
        fputc('\n', im->o->dump);
    }
    if (im->o->dry_run) {
        /* Answer as the server would, without one. */
        im->flight_count--;
        if (kind == IMPORT_NODES)
            for (size_t i = 0; i < fl->rows; i++)
                if (fl->ids[i] != NULL) idmap_set(&im->ids, fl->ids[i], fl->id_lens[i], im->next_fake_id++);
        account(im, fl, fl->rows);
        flight_done(fl);
    } else if (im->c == NULL) {
        /* Lost earlier: reconnect re-sends every batch of the ring, this one too. */
        if (reconnect(im, trouble_since(im)) != 0) drop_flights(im);
    } else if (send_flight(im, fl, false) != 0) {
        drop_connection(im);
    }
    /* The flight owns the ids and the text now. */
    batch_reset(b);
    progress(im, false);
}

static void send_all(importer *im, import_file_kind kind) {
    for (size_t i = 0; i < IMPORT_OPEN_BATCHES_MAX; i++)
        if (im->batches[i].used) send_batch(im, &im->batches[i], kind);
}

/* The open batch for key (label fragment or type literal). */
static open_batch *batch_for(importer *im, const char *key, size_t key_len, import_file_kind kind) {
    open_batch *free_slot = NULL, *fullest = NULL;
    for (size_t i = 0; i < IMPORT_OPEN_BATCHES_MAX; i++) {
        open_batch *b = &im->batches[i];
        if (!b->used) {
            if (free_slot == NULL) free_slot = b;
            continue;
        }
        if (b->key.len == key_len && memcmp(b->key.data, key, key_len) == 0) return b;
        if (fullest == NULL || b->text.len > fullest->text.len) fullest = b;
    }
    if (free_slot == NULL) {
        send_batch(im, fullest, kind);
        free_slot = fullest;
    }
    open_batch *b = free_slot;
    b->used = true;
    cli_buf_clear(&b->key);
    cli_buf_append(&b->key, key, key_len);
    cli_buf_clear(&b->text);
    cli_buf_append(&b->text, "CYPHER rows=[", 13);
    b->rows = 0;
    b->counter_count = 0;
    return b;
}

static void batch_add_row(importer *im, open_batch *b, const cli_buf *row, const char *id, size_t id_len,
                          uint64_t line) {
    if (b->rows > 0) cli_buf_putc(&b->text, ',');
    else b->first_line = line;
    cli_buf_append(&b->text, row->data, row->len);
    b->last_line = line;
    if (im->files[im->cur_file].kind == IMPORT_NODES) {
        if (b->rows == b->ids_cap) {
            b->ids_cap = b->ids_cap ? b->ids_cap * 2 : 1024;
            b->ids = realloc(b->ids, b->ids_cap * sizeof *b->ids);
            b->id_lens = realloc(b->id_lens, b->ids_cap * sizeof *b->id_lens);
            if (b->ids == NULL || b->id_lens == NULL) QUIVER_FATAL("out of memory");
        }
        b->ids[b->rows] = id;
        b->id_lens[b->rows] = id_len;
    }
    b->rows++;
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

static void node_row(importer *im, in_file *f, csv_field *fields, uint64_t line) {
    const import_header *h = &f->header;
    char err[512];
    char key[IDMAP_KEY_SIZE_MAX_BYTES];
    size_t key_len = 0;
    if (h->id_col >= 0) {
        const csv_field *idf = &fields[h->id_col];
        const import_column *col = &h->columns[h->id_col];
        if (idf->len == 0) {
            bad_row(im, f, line, "empty :ID");
            return;
        }
        key_len = idmap_compose_key(key, sizeof key, col->id_space, col->id_space_len, idf->text, idf->len);
        if (key_len == 0) {
            bad_row(im, f, line, ":ID longer than %u bytes", IDMAP_KEY_SIZE_MAX_BYTES - 1);
            return;
        }
    }
    const char *names[BATCH_LABELS_MAX];
    size_t lens[BATCH_LABELS_MAX];
    int label_count = 0;
    cli_buf_clear(&im->frag);
    if (h->label_col >= 0) {
        const csv_field *lf = &fields[h->label_col];
        label_count = parse_labels(lf->text, lf->len, &im->frag, names, lens, err, sizeof err);
        if (label_count < 0) {
            bad_row(im, f, line, ":LABEL %s", err);
            return;
        }
    }
    cli_buf_clear(&im->row);
    cli_buf_putc(&im->row, '[');
    if (import_append_values(h, fields, &im->row, err, sizeof err) != 0) {
        bad_row(im, f, line, "%s", err);
        return;
    }
    cli_buf_putc(&im->row, ']');
    const char *stored = NULL;
    if (h->id_col >= 0) {
        int rc = idmap_insert(&im->ids, key, key_len, &stored);
        if (rc == -1) {
            const csv_field *idf = &fields[h->id_col];
            bad_row(im, f, line, "duplicate node id '%.*s'", (int)(idf->len > 80 ? 80 : idf->len), idf->text);
            return;
        }
        if (rc != 0) {
            fail(im, "%s:%" PRIu64 ": more than %u node ids", f->name, line, IDMAP_ENTRIES_COUNT_MAX);
            return;
        }
    }
    open_batch *b = batch_for(im, im->frag.data ? im->frag.data : "", im->frag.len, IMPORT_NODES);
    if (b->rows == 0) {
        for (int i = 0; i < label_count; i++) b->counter_ids[i] = counter_index(&im->labels, names[i], lens[i]);
        b->counter_count = (size_t)label_count;
        if (label_count == 0) {
            b->counter_ids[0] = counter_index(&im->labels, "(no label)", 10);
            b->counter_count = 1;
        }
    }
    batch_add_row(im, b, &im->row, stored, key_len, line);
    if (b->rows >= im->o->batch_rows || b->rows >= IMPORT_NODE_BATCH_ROWS_REPLAYABLE_MAX ||
        b->text.len >= im->o->batch_size_bytes)
        send_batch(im, b, IMPORT_NODES);
}

static int64_t endpoint(importer *im, in_file *f, const csv_field *fields, int col_index, uint64_t line,
                        const char *what) {
    const import_column *col = &f->header.columns[col_index];
    const csv_field *x = &fields[col_index];
    if (x->len == 0) {
        bad_row(im, f, line, "empty %s", what);
        return -1;
    }
    char key[IDMAP_KEY_SIZE_MAX_BYTES];
    size_t key_len = idmap_compose_key(key, sizeof key, col->id_space, col->id_space_len, x->text, x->len);
    int64_t id = key_len ? idmap_get(&im->ids, key, key_len) : IDMAP_ABSENT;
    if (id < 0) {
        bad_row(im, f, line, "unknown %s '%.*s'", what, (int)(x->len > 80 ? 80 : x->len), x->text);
        return -1;
    }
    return id;
}

static void edge_row(importer *im, in_file *f, csv_field *fields, uint64_t line) {
    const import_header *h = &f->header;
    char err[512];
    int64_t src = endpoint(im, f, fields, h->start_col, line, ":START_ID");
    if (src < 0) return;
    int64_t dst = endpoint(im, f, fields, h->end_col, line, ":END_ID");
    if (dst < 0) return;
    const csv_field *tf = &fields[h->type_col];
    const char *t = tf->text;
    size_t tn = tf->len;
    trim(&t, &tn);
    if (tn == 0) {
        bad_row(im, f, line, "empty :TYPE");
        return;
    }
    if (tn > QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES || !cypher_utf8_valid(t, tn)) {
        bad_row(im, f, line, ":TYPE is too long or not valid UTF-8");
        return;
    }
    cli_buf_clear(&im->row);
    cli_buf_printf(&im->row, "[%" PRId64 ",%" PRId64, src, dst);
    if (h->property_count > 0) {
        cli_buf_putc(&im->row, ',');
        if (import_append_values(h, fields, &im->row, err, sizeof err) != 0) {
            bad_row(im, f, line, "%s", err);
            return;
        }
    }
    cli_buf_putc(&im->row, ']');
    cli_buf_clear(&im->frag);
    cypher_append_name(&im->frag, t, tn);
    open_batch *b = batch_for(im, im->frag.data, im->frag.len, IMPORT_EDGES);
    if (b->rows == 0) {
        b->counter_ids[0] = counter_index(&im->types, t, tn);
        b->counter_count = 1;
    }
    batch_add_row(im, b, &im->row, NULL, 0, line);
    if (b->rows >= im->o->batch_rows || b->text.len >= im->o->batch_size_bytes)
        send_batch(im, b, IMPORT_EDGES);
}

static void strip_bom(char **line, size_t *len) {
    if (*len >= 3 && memcmp(*line, "\xEF\xBB\xBF", 3) == 0) *line += 3, *len -= 3;
}

static void load_file(importer *im, size_t index) {
    in_file *f = &im->files[index];
    im->cur_file = index;
    im->file_t0_s = now_s();
    line_reader lr;
    if (lr_open(&lr, f->path) != 0) {
        fail(im, "cannot open %s: %s", f->path, lr.error);
        return;
    }
    im->cur_gz = lr.gz;
    size_t cols = f->header.column_count;
    size_t fields_max = cols + 1 < CSV_FIELDS_COUNT_MAX ? cols + 1 : CSV_FIELDS_COUNT_MAX;
    csv_field *fields = calloc(fields_max, sizeof *fields);
    if (fields == NULL) QUIVER_FATAL("out of memory");
    char *line;
    size_t len;
    int rc = lr_next(&lr, &line, &len); /* the header, checked already */
    uint64_t n = 0;
    while (!im->failed && rc != 0) {
        rc = lr_next(&lr, &line, &len);
        if (rc == 0) break;
        if (rc == -1) {
            fail(im, "%s: cannot read after line %" PRIu64 ": %s", f->name, lr.line_no, lr.error);
            break;
        }
        if (rc == -2) {
            bad_row(im, f, lr.line_no, "line longer than %u bytes", IMPORT_LINE_SIZE_MAX_BYTES);
            continue;
        }
        if (len == 0 || (len == 1 && line[0] == '\r')) continue; /* blank lines carry no row */
        size_t count;
        const char *err;
        if (csv_split(line, len, fields, fields_max, &count, &err) != 0) {
            bad_row(im, f, lr.line_no, "%s", err);
            continue;
        }
        if (count != cols) {
            bad_row(im, f, lr.line_no, "%zu fields, the header has %zu", count, cols);
            continue;
        }
        if (f->kind == IMPORT_NODES) node_row(im, f, fields, lr.line_no);
        else edge_row(im, f, fields, lr.line_no);
        if ((++n & 255) == 0) progress(im, false);
        if (interrupted) fail(im, "interrupted (Ctrl-C) at %s line %" PRIu64, f->name, lr.line_no);
    }
    send_all(im, f->kind);
    drain(im);
    im->cur_gz = NULL;
    lr_close(&lr);
    free(fields);
    im->done_bytes += f->size_bytes;
    if (!im->bar) {
        char c1[32];
        fprintf(im->o->err, "%s: %s %s loaded, %" PRIu64 " rows skipped (%.1f s)\n", f->name,
                fmt_count(c1, sizeof c1, f->loaded), f->kind == IMPORT_NODES ? "nodes" : "relationships", f->skipped,
                now_s() - im->file_t0_s);
    } else {
        progress(im, true);
    }
}

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int cmp_files(const void *a, const void *b) {
    const in_file *x = a, *y = b;
    if (x->kind != y->kind) return x->kind == IMPORT_NODES ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Find and check the files.  Returns 0 or -1 (message printed). */
static int scan_dir(importer *im) {
    const import_options *o = im->o;
    DIR *d = opendir(o->dir);
    if (d == NULL) {
        fprintf(o->err, "error: cannot open directory %s: %s\n", o->dir, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        import_file_kind kind;
        if (strncmp(nm, "nodes_", 6) == 0) kind = IMPORT_NODES;
        else if (strncmp(nm, "edges_", 6) == 0) kind = IMPORT_EDGES;
        else continue;
        if (!has_suffix(nm, ".csv") && !has_suffix(nm, ".csv.gz")) continue;
        if (im->file_count == IMPORT_FILES_COUNT_MAX) {
            fprintf(o->err, "error: more than %d files in %s\n", IMPORT_FILES_COUNT_MAX, o->dir);
            closedir(d);
            return -1;
        }
        if (im->file_count == cap) {
            cap = cap ? cap * 2 : 16;
            im->files = realloc(im->files, cap * sizeof *im->files);
            if (im->files == NULL) QUIVER_FATAL("out of memory");
        }
        in_file *f = &im->files[im->file_count++];
        memset(f, 0, sizeof *f);
        cli_buf p = CLI_BUF_INIT;
        cli_buf_printf(&p, "%s/%s", o->dir, nm);
        f->path = cli_buf_take(&p);
        f->name = f->path + strlen(o->dir) + 1;
        f->kind = kind;
    }
    closedir(d);
    if (im->file_count == 0) {
        fprintf(o->err, "error: no nodes_*.csv[.gz] or edges_*.csv[.gz] files in %s\n", o->dir);
        return -1;
    }
    qsort(im->files, im->file_count, sizeof *im->files, cmp_files);
    /* Every header before anything is sent. */
    for (size_t i = 0; i < im->file_count; i++) {
        in_file *f = &im->files[i];
        struct stat st;
        if (stat(f->path, &st) != 0) {
            fprintf(o->err, "error: %s: %s\n", f->path, strerror(errno));
            return -1;
        }
        f->size_bytes = (uint64_t)st.st_size;
        im->total_bytes += f->size_bytes;
        line_reader lr;
        if (lr_open(&lr, f->path) != 0) {
            fprintf(o->err, "error: cannot open %s: %s\n", f->path, lr.error);
            return -1;
        }
        char *line;
        size_t len;
        int rc = lr_next(&lr, &line, &len);
        if (rc != 1) {
            fprintf(o->err, "error: %s: %s\n", f->path,
                    rc == 0 ? "empty file (a header line is required)" : rc == -1 ? lr.error : "header line too long");
            lr_close(&lr);
            return -1;
        }
        strip_bom(&line, &len);
        csv_field *fields = calloc(CSV_FIELDS_COUNT_MAX, sizeof *fields);
        if (fields == NULL) QUIVER_FATAL("out of memory");
        size_t count;
        const char *cerr;
        char herr[512];
        int bad = 0;
        if (csv_split(line, len, fields, CSV_FIELDS_COUNT_MAX, &count, &cerr) != 0) {
            fprintf(o->err, "error: %s: header: %s\n", f->path, cerr);
            bad = 1;
        } else if (import_header_parse(f->kind, fields, count, &f->header, herr, sizeof herr) != 0) {
            fprintf(o->err, "error: %s: header: %s\n", f->path, herr);
            bad = 1;
        }
        free(fields);
        lr_close(&lr);
        if (bad) return -1;
    }
    return 0;
}

/* Is the graph empty?  0 yes, 1 no (message printed), -1 error (printed).
 * A read through a follower needs a leader: no-leader and busy answers and
 * lost connections are retried like batches (a read is safe to repeat). */
static int check_empty(importer *im) {
    const char *argv[3] = {"GRAPH.QUERY", im->o->graph, "MATCH (n) RETURN count(n)"};
    size_t argl[3] = {11, strlen(im->o->graph), strlen(argv[2])};
    double since = now_s();
    redisReply *r = NULL;
    for (;;) {
        if (im->c == NULL && reconnect(im, since) != 0) {
            fprintf(im->o->err, "error: %s\n", im->failure);
            return -1;
        }
        r = redisCommandArgv(im->c, 3, argv, argl);
        if (r == NULL) {
            drop_connection(im);
            continue;
        }
        if (r->type != REDIS_REPLY_ERROR) break;
        import_error_class k = import_classify_error(r->str, r->len);
        if ((k != IMPORT_ERROR_NOT_APPLIED && k != IMPORT_ERROR_UNKNOWN) || interrupted ||
            now_s() - since >= im->o->retry_timeout_s)
            break;
        note(im, false, "%s:%d answered %.*s to MATCH (n) RETURN count(n)", im->nodes[im->cur_node].host,
             im->nodes[im->cur_node].port, (int)(r->len > 200 ? 200 : r->len), r->str);
        freeReplyObject(r);
        r = NULL;
        backoff(im);
    }
    im->backoff_ms = 0;
    int rc = -1;
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(im->o->err, "error: the server refused GRAPH.QUERY: %s\n", r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[1]->type == REDIS_REPLY_ARRAY &&
               r->element[1]->elements == 0) {
        rc = 0; /* no rows: a graph that does not exist yet */
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[1]->type == REDIS_REPLY_ARRAY &&
               r->element[1]->elements == 1 && r->element[1]->element[0]->type == REDIS_REPLY_ARRAY &&
               r->element[1]->element[0]->elements == 1 &&
               r->element[1]->element[0]->element[0]->type == REDIS_REPLY_INTEGER) {
        long long n = r->element[1]->element[0]->element[0]->integer;
        if (n == 0) rc = 0;
        else {
            fprintf(im->o->err,
                    "error: graph '%s' already has %lld nodes; nothing was loaded.  Use --append to add to it, "
                    "or delete it first (GRAPH.DELETE %s).\n",
                    im->o->graph, n, im->o->graph);
            rc = 1;
        }
    } else {
        fprintf(im->o->err, "error: unexpected reply to MATCH (n) RETURN count(n)\n");
    }
    freeReplyObject(r);
    return rc;
}

/* The first connection: each node once, in the given order.  0, or -1
 * (printed): a wrong address should fail at once, not after the retry
 * timeout. */
static int connect_first(importer *im) {
    char why[256];
    cli_buf all = CLI_BUF_INIT;
    for (size_t i = 0; i < im->node_count; i++) {
        im->c = connect_to(im, &im->nodes[i], why, sizeof why);
        if (im->c != NULL) {
            im->cur_node = i;
            cli_buf_free(&all);
            return 0;
        }
        cli_buf_printf(&all, "%s%s:%d: %s", i ? "; " : "", im->nodes[i].host, im->nodes[i].port, why);
    }
    fprintf(im->o->err, "error: cannot connect to %s\n", all.data);
    cli_buf_free(&all);
    return -1;
}

static void summary(importer *im, double elapsed_s) {
    FILE *out = im->o->out;
    char c1[32], c2[32];
    uint64_t elements = im->nodes_loaded + im->edges_loaded;
    double rate = elapsed_s > 0 ? (double)elements / elapsed_s : 0;
    fprintf(out, "%s graph '%s'%s: %s elements in %.2f s (%s elements/s)\n",
            im->failed ? "Partly loaded" : "Loaded", im->o->graph, im->o->dry_run ? " (dry run, nothing sent)" : "",
            fmt_count(c1, sizeof c1, elements), elapsed_s, fmt_count(c2, sizeof c2, (uint64_t)rate));
    fprintf(out, "  nodes: %s\n", fmt_count(c1, sizeof c1, im->nodes_loaded));
    for (size_t i = 0; i < im->labels.n; i++)
        fprintf(out, "    %-28s %12s\n", im->labels.items[i].name, fmt_count(c1, sizeof c1, im->labels.items[i].count));
    fprintf(out, "  relationships: %s\n", fmt_count(c1, sizeof c1, im->edges_loaded));
    for (size_t i = 0; i < im->types.n; i++)
        fprintf(out, "    %-28s %12s\n", im->types.items[i].name, fmt_count(c1, sizeof c1, im->types.items[i].count));
    if (!im->o->dry_run) {
        fprintf(out, "  retries: %" PRIu64 " batches sent again (%" PRIu64 " after an unknown outcome), %" PRIu64
                     " reconnects; last node %s:%d\n",
                im->retries, im->retries_unknown, im->reconnects, im->nodes[im->cur_node].host,
                im->nodes[im->cur_node].port);
        if (im->no_request_ids)
            fprintf(out, "  *** request ids: NOT SUPPORTED by the server (plain retries); %" PRIu64
                         " batches retried after an unknown outcome may have been applied twice%s\n",
                    im->unsafe_batches, im->unsafe_batches ? " (exit status 1: check the counts)" : "");
        else
            fprintf(out, "  request ids: origin %" PRIu64 ", batches 1..%" PRIu64 "\n", im->origin, im->next_seq);
    }
    if (im->rows_skipped == 0) {
        fprintf(out, "  rows skipped: 0\n");
    } else {
        fprintf(out, "  *** %s rows SKIPPED (not loaded)%s:\n", fmt_count(c1, sizeof c1, im->rows_skipped),
                im->o->strict ? ", an error with --strict" : "");
        for (size_t i = 0; i < im->bad_listed; i++) fprintf(out, "      %s\n", im->bad[i]);
        if (im->rows_skipped > im->bad_listed)
            fprintf(out, "      ... and %" PRIu64 " more\n", im->rows_skipped - im->bad_listed);
    }
    fflush(out);
}

void import_options_default(import_options *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 6379;
    o->graph = "g";
    o->progress = -1;
    o->batch_rows = IMPORT_BATCH_ROWS_DEFAULT;
    o->batch_size_bytes = IMPORT_BATCH_SIZE_DEFAULT_BYTES;
    o->in_flight = IMPORT_IN_FLIGHT_DEFAULT;
    o->retry_timeout_s = IMPORT_RETRY_TIMEOUT_DEFAULT_S;
    o->reply_timeout_s = IMPORT_REPLY_TIMEOUT_DEFAULT_S;
    o->out = stdout;
    o->err = stderr;
}

int import_run(const import_options *o) {
    QUIVER_ASSERT(o != NULL && o->dir != NULL && o->graph != NULL && o->out != NULL && o->err != NULL);
    if (o->batch_rows < 1 || o->batch_rows > IMPORT_BATCH_ROWS_MAX || o->in_flight < 1 ||
        o->in_flight > IMPORT_IN_FLIGHT_MAX || o->batch_size_bytes < 1024 ||
        o->batch_size_bytes > CLI_BUF_SIZE_MAX_BYTES / 2) {
        fprintf(o->err, "error: batch size must be 1..%d rows, pipeline depth 1..%d\n", IMPORT_BATCH_ROWS_MAX,
                IMPORT_IN_FLIGHT_MAX);
        return 1;
    }
    if (strlen(o->graph) == 0 || strlen(o->graph) > QUIVER_GRAPH_NAME_SIZE_MAX_BYTES) {
        fprintf(o->err, "error: bad graph name\n");
        return 1;
    }
    if (o->retry_timeout_s < 1 || o->retry_timeout_s > IMPORT_RETRY_TIMEOUT_MAX_S || o->reply_timeout_s < 1 ||
        o->reply_timeout_s > IMPORT_REPLY_TIMEOUT_MAX_S) {
        fprintf(o->err, "error: retry timeout must be 1..%d s, reply timeout 1..%d s\n", IMPORT_RETRY_TIMEOUT_MAX_S,
                IMPORT_REPLY_TIMEOUT_MAX_S);
        return 1;
    }
    importer *im = calloc(1, sizeof *im);
    if (im == NULL) QUIVER_FATAL("out of memory");
    im->o = o;
    idmap_init(&im->ids);
    int status = 1;
    /* A node that dies while a batch is being written must be an error
     * return (hiredis 0.14 writes with write(2)), not the end of us. */
    struct sigaction ign, old_pipe;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    if (o->nodes != NULL) {
        char err[512];
        int n = import_parse_nodes(o->nodes, im->nodes, IMPORT_NODES_COUNT_MAX, err, sizeof err);
        if (n < 0) {
            fprintf(o->err, "error: --nodes: %s\n", err);
            goto done;
        }
        im->node_count = (size_t)n;
    } else {
        QUIVER_ASSERT(o->host != NULL);
        if (strlen(o->host) == 0 || strlen(o->host) >= IMPORT_HOST_SIZE_MAX_BYTES || o->port < 1 || o->port > 65535) {
            fprintf(o->err, "error: bad host or port\n");
            goto done;
        }
        snprintf(im->nodes[0].host, sizeof im->nodes[0].host, "%s", o->host);
        im->nodes[0].port = o->port;
        im->node_count = 1;
    }
    im->origin = o->request_origin;
    if (im->origin == 0 && getrandom(&im->origin, sizeof im->origin, 0) != (ssize_t)sizeof im->origin)
        im->origin = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(now_s() * 1e9);
    if (im->origin == 0) im->origin = 1; /* 0 is not a valid origin */
    if (scan_dir(im) != 0) goto done;
    if (!o->dry_run) {
        if (connect_first(im) != 0) goto done;
        if (!o->append && check_empty(im) != 0) goto done;
    }
    im->bar = o->progress > 0 || (o->progress < 0 && isatty(fileno(o->err)));
    im->t0_s = now_s();
    im->last_line_s = im->t0_s;
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_sa);
    for (size_t i = 0; i < im->file_count && !im->failed; i++) load_file(im, i);
    drain(im);
    sigaction(SIGINT, &old_sa, NULL);
    bar_clear(im);
    double elapsed = now_s() - im->t0_s;
    if (im->failed) fprintf(o->err, "error: import stopped: %s\n", im->failure);
    summary(im, elapsed);
    status = im->failed || (o->strict && im->rows_skipped > 0) || im->unsafe_batches > 0 ? 1 : 0;
done:
    sigaction(SIGPIPE, &old_pipe, NULL);
    for (size_t i = 0; i < IMPORT_OPEN_BATCHES_MAX; i++) {
        free(im->batches[i].ids);
        free(im->batches[i].id_lens);
        cli_buf_free(&im->batches[i].key);
        cli_buf_free(&im->batches[i].text);
    }
    for (size_t i = 0; i < IMPORT_IN_FLIGHT_MAX; i++) {
        free(im->flights[i].ids);
        free(im->flights[i].id_lens);
        cli_buf_free(&im->flights[i].text);
    }
    for (size_t i = 0; i < im->file_count; i++) {
        free(im->files[i].path);
        import_header_free(&im->files[i].header);
    }
    free(im->files);
    for (size_t i = 0; i < im->bad_listed; i++) free(im->bad[i]);
    counters_free(&im->labels);
    counters_free(&im->types);
    idmap_free(&im->ids);
    cli_buf_free(&im->row);
    cli_buf_free(&im->frag);
    if (im->c) redisFree(im->c);
    free(im);
    return status;
}
