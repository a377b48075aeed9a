/*
 * catchup.c -- checkpoint catch-up (contract and design in catchup.h).
 *
 * Serving side: OPEN runs on the libuv threadpool (qs_checkpoint flushes
 * RocksDB and hard-links its files; the copy is then opened once to read its
 * applied index and cluster id, closed, and every file hashed), so the loop
 * keeps serving.  READ is a pread of at most 4 MiB on the loop thread: the
 * files are hard links of recently flushed SSTs, mostly in the page cache,
 * and the fetching node reads one chunk at a time, so the stall per request
 * is about a millisecond.  A checkpoint holds RocksDB files alive (hard
 * links) until CLOSE or idle expiry, which bounds the disk it pins.
 *
 * Fetching side: plain blocking hiredis at start-up (nothing else runs
 * yet).  Every file is written with O_EXCL into a fresh db.incoming and
 * hashed as it arrives (XXH3-64, xxHash spec); sizes and hashes must match
 * what OPEN announced, then the copy must open as a Quiver database at the
 * announced applied index (>= the index we need) with the expected cluster
 * id.  Only then is it swapped in with two renames; a crash between them is
 * finished by catchup_recover_swap at the next start.
 */
#define _XOPEN_SOURCE 700
#include "catchup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <xxhash.h>

#include "../common/files.h"
#include "../common/qassert.h"
#include "../statemachine/statemachine.h"
#include "../storage/graph.h"
#include "cluster.h"

#define CATCHUP_HASH_BUFFER_BYTES (1u << 20)

typedef struct cp_file {
    char name[CATCHUP_FILE_NAME_SIZE_MAX_BYTES];
    uint64_t size_bytes;
    uint64_t xxh3;
} cp_file;

typedef struct cp_open {
    bool used;
    bool creating;  /* the threadpool still works on it */
    uint64_t id;
    char dir[NODE_PATH_SIZE_MAX_BYTES + 64];
    uint64_t applied_index;
    uint8_t cluster_id[SM_CLUSTER_ID_BYTES];
    bool has_cluster_id;
    cp_file *files;
    uint32_t file_count;
    uint64_t last_used_ms;
} cp_open;

/* Loop thread only (the threadpool touches only the entry it was given,
 * while creating is set). */
static cp_open g_open[CATCHUP_OPEN_COUNT_MAX];
static uint64_t g_next_id = 1;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A checkpoint file name: what RocksDB writes into a flat directory. */
static bool name_ok(const char *name, size_t len) {
    if (len == 0 || len >= CATCHUP_FILE_NAME_SIZE_MAX_BYTES || name[0] == '.') return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                  ch == '_' || ch == '.';
        if (!ok) return false;
    }
    return true;
}

/* Files the copy needs: RocksDB's info LOGs and LOCK are per process. */
static bool name_transferred(const char *name) {
    return strcmp(name, "LOCK") != 0 && strncmp(name, "LOG", 3) != 0;
}

static void hex_encode(const uint8_t *p, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

static bool hex_decode(const char *s, size_t len, uint8_t *out, size_t n) {
    if (len != 2 * n) return false;
    for (size_t i = 0; i < 2 * n; i++) {
        char ch = s[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0) return false;
        if (i % 2 == 0) out[i / 2] = (uint8_t)(v << 4);
        else out[i / 2] |= (uint8_t)v;
    }
    return true;
}

static int hash_file(const char *path, uint64_t *size_bytes, uint64_t *hash) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    XXH3_state_t *st = XXH3_createState();
    char *buf = malloc(CATCHUP_HASH_BUFFER_BYTES);
    if (st == NULL || buf == NULL) QUIVER_FATAL("out of memory hashing a checkpoint");
    XXH3_64bits_reset(st);
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, CATCHUP_HASH_BUFFER_BYTES);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -1;
            break;
        }
        if (n == 0) break;
        XXH3_64bits_update(st, buf, (size_t)n);
        total += (uint64_t)n;
    }
    *size_bytes = total;
    *hash = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    free(buf);
    close(fd);
    return rc;
}

/* Open a copy, read its applied index and cluster id, close it. */
static int inspect_copy(const char *dir, uint64_t *applied, uint8_t cluster_id[SM_CLUSTER_ID_BYTES], bool *has_id,
                        char *err, size_t errn) {
    qs_options o = {.block_cache_size_bytes = 8u << 20, .create_if_missing = false};
    qs_db *db = NULL;
    if (qs_open(dir, &o, &db, err, errn) != QS_OK) return -1;
    *applied = qs_applied_index(db);
    qs_view *v = qs_view_open_snapshot(db);
    QUIVER_ASSERT(v != NULL);
    q_arena a;
    q_arena_init(&a, 4096);
    void *val = NULL;
    size_t len = 0;
    int rc = qs_meta_get(v, SM_CLUSTER_ID_KEY, strlen(SM_CLUSTER_ID_KEY), &a, &val, &len);
    *has_id = rc == QS_OK && len == SM_CLUSTER_ID_BYTES;
    if (*has_id) memcpy(cluster_id, val, SM_CLUSTER_ID_BYTES);
    else memset(cluster_id, 0, SM_CLUSTER_ID_BYTES);
    q_arena_free(&a);
    qs_view_close(v);
    qs_close(db);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Serving                                                             */
/* ------------------------------------------------------------------ */

static void cp_release(cp_open *cp) {
    QUIVER_ASSERT(cp->used && !cp->creating);
    if (q_remove_tree(cp->dir) != 0)
        fprintf(stderr, "quiverd: warning: cannot remove checkpoint %s: %s\n", cp->dir, strerror(errno));
    free(cp->files);
    memset(cp, 0, sizeof *cp);
}

static cp_open *cp_find(uint64_t id) {
    for (int i = 0; i < CATCHUP_OPEN_COUNT_MAX; i++)
        if (g_open[i].used && !g_open[i].creating && g_open[i].id == id) return &g_open[i];
    return NULL;
}

typedef struct open_work {
    uv_work_t work;
    node_slot *s;
    qs_db *db;
    cp_open *cp;
    char err[512];
    int rc;
} open_work;

static void open_run(uv_work_t *w) {
    open_work *ow = w->data;
    cp_open *cp = ow->cp;
    ow->rc = -1;
    if (qs_checkpoint(ow->db, cp->dir, ow->err, sizeof ow->err) != QS_OK) return;
    if (inspect_copy(cp->dir, &cp->applied_index, cp->cluster_id, &cp->has_cluster_id, ow->err, sizeof ow->err) != 0)
        return;
    DIR *d = opendir(cp->dir);
    if (d == NULL) {
        snprintf(ow->err, sizeof ow->err, "cannot list checkpoint %.300s: %s", cp->dir, strerror(errno));
        return;
    }
    uint32_t cap = 64;
    cp->files = calloc(cap, sizeof *cp->files);
    if (cp->files == NULL) QUIVER_FATAL("out of memory listing a checkpoint");
    struct dirent *e;
    bool ok = true;
    while (ok && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || !name_transferred(e->d_name)) continue;
        if (!name_ok(e->d_name, strlen(e->d_name)) || cp->file_count == CATCHUP_FILES_COUNT_MAX) {
            snprintf(ow->err, sizeof ow->err, "checkpoint %.300s holds an unexpected file '%.64s' or too many files",
                     cp->dir, e->d_name);
            ok = false;
            break;
        }
        if (cp->file_count == cap) {
            cap *= 2;
            cp_file *grown = realloc(cp->files, cap * sizeof *grown);
            if (grown == NULL) QUIVER_FATAL("out of memory listing a checkpoint");
            cp->files = grown;
        }
        cp_file *f = &cp->files[cp->file_count];
        snprintf(f->name, sizeof f->name, "%s", e->d_name);
        char path[sizeof cp->dir + CATCHUP_FILE_NAME_SIZE_MAX_BYTES + 2];
        snprintf(path, sizeof path, "%s/%s", cp->dir, f->name);
        if (hash_file(path, &f->size_bytes, &f->xxh3) != 0) {
            snprintf(ow->err, sizeof ow->err, "cannot read %.300s: %s", path, strerror(errno));
            ok = false;
            break;
        }
        cp->file_count++;
    }
    closedir(d);
    if (ok) ow->rc = 0;
}

static void open_done(uv_work_t *w, int status) {
    open_work *ow = w->data;
    cp_open *cp = ow->cp;
    node_slot *s = ow->s;
    QUIVER_ASSERT(status == 0 && cp->used && cp->creating);
    cp->creating = false;
    cp->last_used_ms = now_ms();
    if (ow->rc != 0) {
        reply_errorf(&s->buf, "ERR cannot take a checkpoint: %s", ow->err);
        cp_release(cp);
    } else {
        char hex[2 * SM_CLUSTER_ID_BYTES + 1] = "";
        if (cp->has_cluster_id) hex_encode(cp->cluster_id, SM_CLUSTER_ID_BYTES, hex);
        reply_array(&s->buf, 4 + 3 * (uint64_t)cp->file_count);
        reply_int(&s->buf, (int64_t)cp->id);
        reply_int(&s->buf, (int64_t)cp->applied_index);
        reply_bulk_cstr(&s->buf, hex);
        reply_int(&s->buf, cp->file_count);
        for (uint32_t i = 0; i < cp->file_count; i++) {
            reply_bulk_cstr(&s->buf, cp->files[i].name);
            reply_int(&s->buf, (int64_t)cp->files[i].size_bytes);
            reply_bulkf(&s->buf, "%016" PRIx64, cp->files[i].xxh3);
        }
        fprintf(stderr, "quiverd: checkpoint %" PRIu64 " at applied index %" PRIu64 " (%u files) opened for a peer\n",
                cp->id, cp->applied_index, cp->file_count);
    }
    free(ow);
    node_slot_done(s);
}

static bool parse_u64_arg(const resp_request *req, uint32_t i, uint64_t *out) {
    if (i >= req->argc || req->argv_len[i] == 0 || req->argv_len[i] > 20) return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(req->argv[i], &end, 10);
    if (errno != 0 || end != req->argv[i] + req->argv_len[i] || req->argv[i][0] == '-') return false;
    *out = v;
    return true;
}

static void cmd_open(node_client *c, node_slot *s, resp_request *req) {
    node *n = c->n;
    uint64_t min_index = 0;
    if (req->argc != 3 || !parse_u64_arg(req, 2, &min_index)) {
        reply_error(&s->buf, "ERR usage: QUIVER.CHECKPOINT OPEN min_applied_index");
        node_slot_done(s);
        return;
    }
    uint64_t applied = qs_applied_index(n->db);
    if (applied < min_index) {
        reply_errorf(&s->buf, "ERR behind: this node has applied index %" PRIu64 ", below %" PRIu64, applied,
                     min_index);
        node_slot_done(s);
        return;
    }
    uint64_t now = now_ms();
    cp_open *cp = NULL;
    for (int i = 0; i < CATCHUP_OPEN_COUNT_MAX; i++) {
        cp_open *o = &g_open[i];
        if (o->used && !o->creating && now - o->last_used_ms > CATCHUP_IDLE_TIMEOUT_MS) cp_release(o);
        if (!o->used && cp == NULL) cp = o;
    }
    if (cp == NULL) {
        reply_errorf(&s->buf, "ERR busy: %d checkpoints are open already; retry later", CATCHUP_OPEN_COUNT_MAX);
        node_slot_done(s);
        return;
    }
    char parent[NODE_PATH_SIZE_MAX_BYTES + 16];
    snprintf(parent, sizeof parent, "%s/checkpoints", n->cfg->data_dir);
    if (mkdir(parent, 0755) != 0 && errno != EEXIST) {
        reply_errorf(&s->buf, "ERR cannot create %s: %s", parent, strerror(errno));
        node_slot_done(s);
        return;
    }
    memset(cp, 0, sizeof *cp);
    cp->used = true;
    cp->creating = true;
    cp->id = g_next_id++;
    snprintf(cp->dir, sizeof cp->dir, "%s/cp-%" PRIu64 "-%ld", parent, cp->id, (long)getpid());
    q_remove_tree(cp->dir); /* a leftover of an earlier process with our pid */
    open_work *ow = calloc(1, sizeof *ow);
    if (ow == NULL) QUIVER_FATAL("out of memory taking a checkpoint");
    ow->work.data = ow;
    ow->s = s;
    ow->db = n->db;
    ow->cp = cp;
    node_slot_hold(s);
    int rv = uv_queue_work(n->loop, &ow->work, open_run, open_done);
    if (rv != 0) QUIVER_FATAL("cannot queue a checkpoint: %s", uv_strerror(rv));
}

static void cmd_read(node_slot *s, resp_request *req) {
    uint64_t id = 0, offset = 0, length = 0;
    if (req->argc != 6 || !parse_u64_arg(req, 2, &id) || !parse_u64_arg(req, 4, &offset) ||
        !parse_u64_arg(req, 5, &length)) {
        reply_error(&s->buf, "ERR usage: QUIVER.CHECKPOINT READ id name offset length");
        node_slot_done(s);
        return;
    }
    cp_open *cp = cp_find(id);
    const cp_file *f = NULL;
    for (uint32_t i = 0; cp != NULL && i < cp->file_count; i++)
        if (strlen(cp->files[i].name) == req->argv_len[3] && memcmp(cp->files[i].name, req->argv[3], req->argv_len[3]) == 0)
            f = &cp->files[i];
    if (cp == NULL || f == NULL) {
        reply_errorf(&s->buf, "ERR no checkpoint %" PRIu64 " with file '%.64s' (expired or closed?)", id, req->argv[3]);
        node_slot_done(s);
        return;
    }
    if (length > CATCHUP_CHUNK_SIZE_MAX_BYTES || offset > f->size_bytes) {
        reply_errorf(&s->buf, "ERR range: offset must be <= %" PRIu64 " and length <= %u", f->size_bytes,
                     CATCHUP_CHUNK_SIZE_MAX_BYTES);
        node_slot_done(s);
        return;
    }
    if (length > f->size_bytes - offset) length = f->size_bytes - offset;
    cp->last_used_ms = now_ms();
    char path[sizeof cp->dir + CATCHUP_FILE_NAME_SIZE_MAX_BYTES + 2];
    snprintf(path, sizeof path, "%s/%s", cp->dir, f->name);
    char *buf = malloc(length ? length : 1);
    if (buf == NULL) QUIVER_FATAL("out of memory reading a checkpoint");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : pread(fd, buf, length, (off_t)offset);
    if (fd >= 0) close(fd);
    if (got != (ssize_t)length) reply_errorf(&s->buf, "ERR cannot read %s: %s", f->name, got < 0 ? strerror(errno) : "short read");
    else reply_bulk(&s->buf, buf, length);
    free(buf);
    node_slot_done(s);
}

void catchup_command(node_client *c, node_slot *s, resp_request *req) {
    QUIVER_ASSERT(c != NULL && s != NULL && req != NULL && req->argc >= 2);
    if (strcasecmp(req->argv[1], "open") == 0) {
        cmd_open(c, s, req);
    } else if (strcasecmp(req->argv[1], "read") == 0) {
        cmd_read(s, req);
    } else if (strcasecmp(req->argv[1], "close") == 0) {
        uint64_t id = 0;
        cp_open *cp = req->argc == 3 && parse_u64_arg(req, 2, &id) ? cp_find(id) : NULL;
        if (cp == NULL) {
            reply_error(&s->buf, "ERR usage: QUIVER.CHECKPOINT CLOSE id (of an open checkpoint)");
        } else {
            cp_release(cp);
            reply_simple(&s->buf, "OK");
        }
        node_slot_done(s);
    } else {
        reply_errorf(&s->buf, "ERR unknown QUIVER.CHECKPOINT sub-command '%.32s' (OPEN, READ, CLOSE)", req->argv[1]);
        node_slot_done(s);
    }
}

/* ------------------------------------------------------------------ */
/* Fetching                                                            */
/* ------------------------------------------------------------------ */

static redisReply *command_argv(redisContext *rc, int argc, const char **argv, char *err, size_t errn,
                                const char *peer) {
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    if (r == NULL) {
        snprintf(err, errn, "%s: %s", peer, rc->errstr[0] ? rc->errstr : "connection lost");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errn, "%s: %.*s", peer, (int)r->len, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static bool reply_u64(const redisReply *r, uint64_t *out) {
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) return false;
    *out = (uint64_t)r->integer;
    return true;
}

/* Copy one file: returns 0, or -1 with err. */
static int fetch_file(redisContext *rc, const char *peer, const char *id_s, const char *dir, const char *name,
                      uint64_t size_bytes, uint64_t xxh3, char *err, size_t errn) {
    char path[NODE_PATH_SIZE_MAX_BYTES + 64 + CATCHUP_FILE_NAME_SIZE_MAX_BYTES];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errn, "cannot create %.300s: %s", path, strerror(errno));
        return -1;
    }
    XXH3_state_t *st = XXH3_createState();
    if (st == NULL) QUIVER_FATAL("out of memory");
    XXH3_64bits_reset(st);
    uint64_t offset = 0;
    int result = 0;
    while (offset < size_bytes) {
        uint64_t want = size_bytes - offset;
        if (want > CATCHUP_CHUNK_SIZE_MAX_BYTES) want = CATCHUP_CHUNK_SIZE_MAX_BYTES;
        char off_s[24], len_s[24];
        snprintf(off_s, sizeof off_s, "%" PRIu64, offset);
        snprintf(len_s, sizeof len_s, "%" PRIu64, want);
        const char *argv[] = {"QUIVER.CHECKPOINT", "READ", id_s, name, off_s, len_s};
        redisReply *r = command_argv(rc, 6, argv, err, errn, peer);
        if (r == NULL) {
            result = -1;
            break;
        }
        if (r->type != REDIS_REPLY_STRING || r->len != want) {
            snprintf(err, errn, "%s: READ %s at %" PRIu64 " answered %zu bytes, not %" PRIu64, peer, name, offset,
                     r->type == REDIS_REPLY_STRING ? r->len : 0, want);
            freeReplyObject(r);
            result = -1;
            break;
        }
        XXH3_64bits_update(st, r->str, r->len);
        size_t done = 0;
        while (done < r->len) {
            ssize_t w = write(fd, r->str + done, r->len - done);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) QUIVER_FATAL("cannot write %s: %s", path, strerror(errno)); /* local I/O error: fail-stop */
            done += (size_t)w;
        }
        offset += r->len;
        freeReplyObject(r);
    }
    uint64_t got = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    if (result == 0 && got != xxh3) {
        snprintf(err, errn, "%s: file %s arrived with XXH3-64 %016" PRIx64 ", announced %016" PRIx64, peer, name, got,
                 xxh3);
        result = -1;
    }
    if (result == 0 && fsync(fd) != 0) QUIVER_FATAL("cannot fsync %s: %s", path, strerror(errno));
    close(fd);
    return result;
}

/* One attempt against one peer. */
static int fetch_from(const node_config *cfg, const char *peer, uint64_t min_index, const uint8_t *cluster_id,
                      const char *incoming, uint64_t *applied_out, char *err, size_t errn) {
    char host[REPL_ADDRESS_SIZE_MAX_BYTES];
    uint16_t port = 0;
    if (!cluster_split_address(peer, host, sizeof host, &port)) {
        snprintf(err, errn, "bad peer client address %s", peer);
        return -1;
    }
    struct timeval ct = {CATCHUP_CONNECT_TIMEOUT_MS / 1000, (CATCHUP_CONNECT_TIMEOUT_MS % 1000) * 1000};
    redisContext *rc = redisConnectWithTimeout(host, port, ct);
    if (rc == NULL || rc->err) {
        snprintf(err, errn, "%s: %s", peer, rc ? rc->errstr : "out of memory");
        if (rc) redisFree(rc);
        return -1;
    }
    struct timeval tt = {CATCHUP_COMMAND_TIMEOUT_MS / 1000, 0};
    redisSetTimeout(rc, tt);
    char min_s[24];
    snprintf(min_s, sizeof min_s, "%" PRIu64, min_index);
    const char *open_argv[] = {"QUIVER.CHECKPOINT", "OPEN", min_s};
    redisReply *r = command_argv(rc, 3, open_argv, err, errn, peer);
    int result = -1;
    uint64_t id = 0, applied = 0, count = 0;
    if (r == NULL) goto out;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 4 || !reply_u64(r->element[0], &id) ||
        !reply_u64(r->element[1], &applied) || r->element[2]->type != REDIS_REPLY_STRING ||
        !reply_u64(r->element[3], &count) || count > CATCHUP_FILES_COUNT_MAX || r->elements != 4 + 3 * count) {
        snprintf(err, errn, "%s: OPEN answered something that is not a checkpoint listing", peer);
        goto out_reply;
    }
    char id_s[24];
    snprintf(id_s, sizeof id_s, "%" PRIu64, id);
    uint8_t their_id[SM_CLUSTER_ID_BYTES] = {0};
    bool their_has_id = r->element[2]->len > 0;
    if (applied < min_index ||
        (their_has_id && !hex_decode(r->element[2]->str, r->element[2]->len, their_id, SM_CLUSTER_ID_BYTES))) {
        snprintf(err, errn, "%s: OPEN answered applied index %" PRIu64 " (need %" PRIu64 ") or a bad cluster id", peer,
                 applied, min_index);
        goto out_close;
    }
    static const uint8_t zero[SM_CLUSTER_ID_BYTES];
    if (cluster_id != NULL && memcmp(cluster_id, zero, SM_CLUSTER_ID_BYTES) != 0 &&
        (!their_has_id || memcmp(cluster_id, their_id, SM_CLUSTER_ID_BYTES) != 0)) {
        snprintf(err, errn, "%s belongs to another cluster (its cluster id differs from this node's raft snapshot)",
                 peer);
        goto out_close;
    }
    if (q_remove_tree(incoming) != 0 || mkdir(incoming, 0755) != 0) {
        snprintf(err, errn, "cannot create %.300s: %s", incoming, strerror(errno));
        goto out_close;
    }
    uint64_t total_bytes = 0;
    for (uint64_t i = 0; i < count; i++) {
        const redisReply *nr = r->element[4 + 3 * i], *sr = r->element[5 + 3 * i], *hr = r->element[6 + 3 * i];
        uint64_t size_bytes = 0;
        uint8_t hb[8];
        if (nr->type != REDIS_REPLY_STRING || !name_ok(nr->str, nr->len) || !name_transferred(nr->str) ||
            !reply_u64(sr, &size_bytes) || hr->type != REDIS_REPLY_STRING || !hex_decode(hr->str, hr->len, hb, 8)) {
            snprintf(err, errn, "%s: OPEN listed a bad file entry (#%" PRIu64 ")", peer, i);
            goto out_close;
        }
        uint64_t h = 0;
        for (int k = 0; k < 8; k++) h = h << 8 | hb[k];
        if (fetch_file(rc, peer, id_s, incoming, nr->str, size_bytes, h, err, errn) != 0) goto out_close;
        total_bytes += size_bytes;
    }
    if (q_fsync_path(incoming) != 0) QUIVER_FATAL("cannot fsync %s: %s", incoming, strerror(errno));
    /* The copy must be a Quiver database at the announced state. */
    uint64_t copy_applied = 0;
    uint8_t copy_id[SM_CLUSTER_ID_BYTES];
    bool copy_has_id = false;
    char ierr[512];
    if (inspect_copy(incoming, &copy_applied, copy_id, &copy_has_id, ierr, sizeof ierr) != 0) {
        snprintf(err, errn, "%s: the copied checkpoint does not open: %s", peer, ierr);
        goto out_close;
    }
    if (copy_applied != applied || copy_has_id != their_has_id ||
        (copy_has_id && memcmp(copy_id, their_id, SM_CLUSTER_ID_BYTES) != 0)) {
        snprintf(err, errn, "%s: the copied checkpoint opens at applied index %" PRIu64 ", announced %" PRIu64, peer,
                 copy_applied, applied);
        goto out_close;
    }
    fprintf(stderr, "quiverd: copied checkpoint at applied index %" PRIu64 " from %s: %" PRIu64 " files, %" PRIu64
                    " bytes, every file's XXH3-64 verified\n",
            applied, peer, count, total_bytes);
    *applied_out = applied;
    result = 0;
out_close:;
    const char *close_argv[] = {"QUIVER.CHECKPOINT", "CLOSE", id_s};
    redisReply *cr = redisCommandArgv(rc, 3, close_argv, NULL);
    if (cr) freeReplyObject(cr);
out_reply:
    freeReplyObject(r);
out:
    redisFree(rc);
    (void)cfg;
    return result;
}

int catchup_fetch(const node_config *cfg, uint64_t min_index, const uint8_t *cluster_id, char *err,
                  size_t err_size_bytes) {
    QUIVER_ASSERT(cfg != NULL && err != NULL);
    char incoming[NODE_PATH_SIZE_MAX_BYTES + 32], old[NODE_PATH_SIZE_MAX_BYTES + 32];
    snprintf(incoming, sizeof incoming, "%s/db.incoming", cfg->data_dir);
    snprintf(old, sizeof old, "%s/db.old", cfg->data_dir);
    uint64_t start = now_ms();
    uint32_t backoff_ms = 100;
    char last[1024] = "no peer to fetch from";
    for (uint32_t round = 0;; round++) {
        for (uint32_t i = 0; i < cfg->peer_count; i++) {
            if (cfg->peers[i].id == cfg->node_id) continue;
            const char *peer = cfg->peer_client_addresses[i];
            if (peer[0] == 0) continue;
            uint64_t applied = 0;
            if (fetch_from(cfg, peer, min_index, cluster_id, incoming, &applied, last, sizeof last) != 0) {
                fprintf(stderr, "quiverd: checkpoint from node %" PRIu64 " failed: %s\n", cfg->peers[i].id, last);
                q_remove_tree(incoming);
                continue;
            }
            /* Swap: db -> db.old, db.incoming -> db, then drop db.old. */
            if (q_remove_tree(old) != 0) QUIVER_FATAL("cannot remove %s: %s", old, strerror(errno));
            if (rename(cfg->db_dir, old) != 0 && errno != ENOENT)
                QUIVER_FATAL("cannot move %s aside: %s", cfg->db_dir, strerror(errno));
            if (rename(incoming, cfg->db_dir) != 0)
                QUIVER_FATAL("cannot move %s into place: %s", incoming, strerror(errno));
            if (q_fsync_path(cfg->data_dir) != 0) QUIVER_FATAL("cannot fsync %s: %s", cfg->data_dir, strerror(errno));
            if (q_remove_tree(old) != 0) fprintf(stderr, "quiverd: warning: cannot remove %s\n", old);
            fprintf(stderr, "quiverd: database replaced by the checkpoint from node %" PRIu64
                            " (applied index %" PRIu64 ")\n",
                    cfg->peers[i].id, applied);
            return 0;
        }
        if (now_ms() - start > CATCHUP_FETCH_DEADLINE_MS) {
            snprintf(err, err_size_bytes,
                     "no peer gave a checkpoint at or after index %" PRIu64 " within %u s; last error: %s", min_index,
                     CATCHUP_FETCH_DEADLINE_MS / 1000, last);
            return -1;
        }
        usleep(backoff_ms * 1000u); /* start-up only: nothing else runs yet */
        if (backoff_ms < 2000) backoff_ms *= 2;
        (void)round;
    }
}

int catchup_recover_swap(const node_config *cfg, char *err, size_t err_size_bytes) {
    char incoming[NODE_PATH_SIZE_MAX_BYTES + 32], old[NODE_PATH_SIZE_MAX_BYTES + 32],
        cps[NODE_PATH_SIZE_MAX_BYTES + 32];
    snprintf(incoming, sizeof incoming, "%s/db.incoming", cfg->data_dir);
    snprintf(old, sizeof old, "%s/db.old", cfg->data_dir);
    snprintf(cps, sizeof cps, "%s/checkpoints", cfg->data_dir);
    struct stat st;
    if (lstat(old, &st) == 0) {
        if (lstat(cfg->db_dir, &st) == 0) {
            /* The swap finished; only the removal of the old copy was cut. */
            if (q_remove_tree(old) != 0) goto fail;
        } else if (rename(old, cfg->db_dir) != 0) {
            /* The new copy never arrived in place: keep the old database. */
            goto fail;
        }
    }
    if (q_remove_tree(incoming) != 0 || q_remove_tree(cps) != 0) goto fail;
    return 0;
fail:
    snprintf(err, err_size_bytes, "cannot clean up an interrupted checkpoint swap in %s: %s", cfg->data_dir,
             strerror(errno));
    return -1;
}
