/*
 * command.c -- encoding and decoding of log entries (format in command.h).
 *
 * Decoding is the trust boundary between the Raft log (which could hold
 * anything a buggy or foreign peer appended, or bits a disk flipped) and the
 * apply thread, so it checks in this order: minimum size, checksum over the
 * whole entry (cheap, and it rejects random damage before any length is
 * believed), version, command count against the limit AND against the bytes
 * left (each command needs at least SM_COMMAND_FIXED_BYTES, so a huge count
 * in a small buffer is refused before the arena is asked for the array),
 * then every field.  Strings are not copied: they point into the caller's
 * buffer, which the apply thread keeps for the life of the entry.
 *
 * The checksum is XXH3-64 (xxHash, https://xxhash.com, "XXH3" spec): fast,
 * well-distributed, already a dependency of storage.  It detects accidents,
 * not attacks; the peer link is trusted.
 */
#include "command.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../common/qassert.h"
#include "bytes.h"

size_t sm_command_encoded_size(const sm_command *cmd) {
    QUIVER_ASSERT(cmd != NULL);
    return SM_COMMAND_FIXED_BYTES + (size_t)cmd->graph.len + (size_t)cmd->text.len;
}

int sm_command_check(const sm_command *cmd) {
    QUIVER_ASSERT(cmd != NULL);
    if (cmd->kind != SM_CMD_QUERY && cmd->kind != SM_CMD_GRAPH_DELETE) return SM_CODEC_INVALID;
    if (cmd->request_id.origin == 0 || cmd->request_id.seq == 0) return SM_CODEC_INVALID;
    if (cmd->graph.len == 0 || cmd->graph.ptr == NULL) return SM_CODEC_INVALID;
    if (cmd->text.len > 0 && cmd->text.ptr == NULL) return SM_CODEC_INVALID;
    if (cmd->graph.len > QUIVER_GRAPH_NAME_SIZE_MAX_BYTES) return SM_CODEC_LIMIT;
    if (cmd->text.len > QUIVER_QUERY_TEXT_SIZE_MAX_BYTES) return SM_CODEC_LIMIT;
    return SM_CODEC_OK;
}

int sm_entry_size(const sm_command *cmds, uint32_t count, size_t *len) {
    QUIVER_ASSERT(len != NULL);
    if (count == 0 || cmds == NULL) return SM_CODEC_INVALID;
    if (count > QUIVER_ENTRY_COMMANDS_COUNT_MAX) return SM_CODEC_LIMIT;
    size_t total = SM_ENTRY_OVERHEAD_BYTES;
    for (uint32_t i = 0; i < count; i++) {
        int rc = sm_command_check(&cmds[i]);
        if (rc != SM_CODEC_OK) return rc;
        total += sm_command_encoded_size(&cmds[i]);
        if (sm_entry_padded_size(total) > QUIVER_ENTRY_SIZE_MAX_BYTES) return SM_CODEC_LIMIT;
    }
    *len = sm_entry_padded_size(total);
    return SM_CODEC_OK;
}

/* Write the entry into w, whose buffer holds exactly `padded` bytes (no
 * growth: size_max_bytes == padded). */
static int encode_into(sm_writer *w, const sm_command *cmds, uint32_t count, size_t padded) {
    sm_put_u8(w, SM_ENTRY_VERSION);
    sm_put_u32(w, count);
    for (uint32_t i = 0; i < count; i++) {
        const sm_command *c = &cmds[i];
        sm_put_u8(w, (uint8_t)c->kind);
        sm_put_u64(w, c->request_id.origin);
        sm_put_u64(w, c->request_id.seq);
        sm_put_u64(w, (uint64_t)c->timestamp_ms);
        sm_put_u64(w, c->seed);
        sm_put_u64(w, c->work_max);
        sm_put_u64(w, c->memory_max_bytes);
        sm_put_str(w, c->graph.ptr, c->graph.len);
        sm_put_str(w, c->text.ptr, c->text.len);
    }
    static const uint8_t zeros[SM_ENTRY_ALIGN_BYTES] = {0};
    QUIVER_ASSERT(w->err != 0 || padded - w->len - 8 < SM_ENTRY_ALIGN_BYTES);
    if (w->err == 0) sm_put_bytes(w, zeros, padded - 8 - w->len);
    if (w->err == 0) sm_put_u64(w, XXH3_64bits(w->buf, w->len));
    if (w->err != 0) return w->err == SM_BYTES_ERR_NOMEM ? SM_CODEC_NOMEM : SM_CODEC_LIMIT;
    QUIVER_ASSERT(w->len == padded); /* the size computed first is the size written */
    return SM_CODEC_OK;
}

int sm_entry_encode(const sm_command *cmds, uint32_t count, uint8_t **buf, size_t *len) {
    QUIVER_ASSERT(buf != NULL && len != NULL);
    size_t padded = 0;
    int rc = sm_entry_size(cmds, count, &padded);
    if (rc != SM_CODEC_OK) return rc;
    sm_writer w;
    sm_writer_init(&w, padded, padded);
    rc = encode_into(&w, cmds, count, padded);
    if (rc != SM_CODEC_OK) {
        free(w.buf);
        return rc;
    }
    *buf = w.buf;
    *len = w.len;
    return SM_CODEC_OK;
}

int sm_entry_encode_into(const sm_command *cmds, uint32_t count, uint8_t *dst, size_t dst_len) {
    QUIVER_ASSERT(dst != NULL);
    size_t padded = 0;
    int rc = sm_entry_size(cmds, count, &padded);
    if (rc != SM_CODEC_OK) return rc;
    if (dst_len != padded) return SM_CODEC_INVALID;
    sm_writer w = {.buf = dst, .len = 0, .cap = dst_len, .size_max_bytes = dst_len, .err = 0};
    return encode_into(&w, cmds, count, padded);
}

int sm_entry_decode(const void *buf, size_t len, q_arena *a, sm_command **cmds, uint32_t *count) {
    QUIVER_ASSERT(a != NULL && cmds != NULL && count != NULL);
    if (buf == NULL || len < SM_ENTRY_OVERHEAD_BYTES) return SM_CODEC_MALFORMED;
    if (len > QUIVER_ENTRY_SIZE_MAX_BYTES) return SM_CODEC_LIMIT;
    const uint8_t *bytes = buf;
    size_t body_len = len - 8;
    if (XXH3_64bits(bytes, body_len) != sm_load_u64(bytes + body_len)) return SM_CODEC_MALFORMED;

    sm_reader r;
    sm_reader_init(&r, bytes, body_len);
    uint8_t version = sm_get_u8(&r);
    if (version != SM_ENTRY_VERSION && version != SM_ENTRY_VERSION_V1) return SM_CODEC_VERSION;
    bool budgets = version >= 2;
    uint32_t n = sm_get_u32(&r);
    if (r.err || n == 0) return SM_CODEC_MALFORMED;
    if (n > QUIVER_ENTRY_COMMANDS_COUNT_MAX) return SM_CODEC_LIMIT;
    if ((size_t)n > r.left / (budgets ? SM_COMMAND_FIXED_BYTES : SM_COMMAND_FIXED_BYTES_V1)) return SM_CODEC_MALFORMED;

    sm_command *out = q_arena_calloc(a, n, sizeof *out);
    if (out == NULL) return SM_CODEC_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        sm_command *c = &out[i];
        uint8_t kind = sm_get_u8(&r);
        c->request_id.origin = sm_get_u64(&r);
        c->request_id.seq = sm_get_u64(&r);
        c->timestamp_ms = (int64_t)sm_get_u64(&r);
        c->seed = sm_get_u64(&r);
        c->work_max = budgets ? sm_get_u64(&r) : 0;
        c->memory_max_bytes = budgets ? sm_get_u64(&r) : 0;
        uint32_t graph_len = sm_get_u32(&r);
        if (r.err) return SM_CODEC_MALFORMED;
        if (graph_len > QUIVER_GRAPH_NAME_SIZE_MAX_BYTES) return SM_CODEC_LIMIT;
        const uint8_t *graph = sm_take(&r, graph_len);
        uint32_t text_len = sm_get_u32(&r);
        if (r.err) return SM_CODEC_MALFORMED;
        if (text_len > QUIVER_QUERY_TEXT_SIZE_MAX_BYTES) return SM_CODEC_LIMIT;
        const uint8_t *text = sm_take(&r, text_len);
        if (r.err) return SM_CODEC_MALFORMED;
        c->kind = (sm_command_kind)kind;
        c->graph.ptr = (const char *)graph;
        c->graph.len = graph_len;
        c->text.ptr = (const char *)text;
        c->text.len = text_len;
        /* The same rules the encoder enforced: anything else was not written by us. */
        int rc = sm_command_check(c);
        if (rc != SM_CODEC_OK) return rc == SM_CODEC_LIMIT ? SM_CODEC_LIMIT : SM_CODEC_MALFORMED;
    }
    /* Only zero padding may follow the last command. */
    if (r.left >= SM_ENTRY_ALIGN_BYTES) return SM_CODEC_MALFORMED;
    for (size_t i = 0; i < r.left; i++)
        if (r.p[i] != 0) return SM_CODEC_MALFORMED;
    *cmds = out;
    *count = n;
    return SM_CODEC_OK;
}

const char *sm_codec_strerror(int status) {
    switch (status) {
    case SM_CODEC_OK: return "ok";
    case SM_CODEC_INVALID: return "invalid command";
    case SM_CODEC_LIMIT: return "over a size or count limit";
    case SM_CODEC_MALFORMED: return "malformed encoding";
    case SM_CODEC_VERSION: return "unknown format version";
    case SM_CODEC_NOMEM: return "out of memory";
    default: return "unknown codec status";
    }
}
