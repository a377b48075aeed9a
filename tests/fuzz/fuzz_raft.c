/*
 * fuzz_raft.c -- libFuzzer harness for raft's wire decoding, compiled from
 * the patched raft source (deploy/patches/) with the same instrumentation:
 * uvDecodeMessage (message headers read from the raft port),
 * uvDecodeEntriesBatch (an AppendEntries payload) and configurationDecode
 * (InstallSnapshot headers and RAFT_CHANGE entries).  Any host that reaches a
 * node's raft port can send these bytes.
 *
 * The first input byte picks the target: even -> a message, odd -> a
 * configuration.  For a message, the next two bytes are the preamble's type
 * and version, the rest is the header; when the header announces a payload of
 * at most FUZZ_RAFT_PAYLOAD_MAX_BYTES it is allocated exactly as uv_recv.c
 * does and the entries are laid out in it.
 *
 * Invariants checked:
 *   - uvDecodeMessage returns 0 or an error, and on error leaves the message
 *     zeroed with no payload (nothing to free);
 *   - on success the payload is at most RAFT_UV_MESSAGE_PAYLOAD_MAX_SIZE and
 *     every entry is at most RAFT_UV_ENTRY_MAX_SIZE; after
 *     uvDecodeEntriesBatch every entry's data lies inside the payload;
 *   - a decoded configuration re-encodes to bytes that decode to the same
 *     servers;
 *   - no crash, no UB, no leak.
 *
 * Thread: libFuzzer's.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"

/* raft's private headers, from QUIVER_RAFT_SOURCE_DIR (not src/ on the include
 * path: its uv.h would hide libuv's) */
#include "src/configuration.h"
#include "src/uv_encoding.h"

/* Payloads up to this size are allocated and laid out; larger ones are only
 * checked against the bounds (the fuzzer's inputs are small). */
#define FUZZ_RAFT_PAYLOAD_MAX_BYTES (1u << 20)

static void check_configuration(const uint8_t *data, size_t size) {
    struct raft_buffer buf;
    struct raft_configuration c;
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size) memcpy(copy, data, size);
    buf.base = copy;
    buf.len = size;
    int rv = configurationDecode(&buf, &c);
    if (rv != 0) {
        FUZZ_CHECK(rv == RAFT_MALFORMED || rv == RAFT_NOMEM);
        FUZZ_CHECK(c.n == 0 && c.servers == NULL);
        free(copy);
        return;
    }
    struct raft_buffer enc;
    FUZZ_CHECK(c.n == 0 || configurationEncode(&c, &enc) == 0);
    if (c.n > 0) {
        struct raft_configuration c2;
        FUZZ_CHECK(configurationDecode(&enc, &c2) == 0);
        FUZZ_CHECK(c2.n == c.n);
        for (unsigned i = 0; i < c.n; i++) {
            FUZZ_CHECK(c2.servers[i].id == c.servers[i].id);
            FUZZ_CHECK(c2.servers[i].role == c.servers[i].role);
            FUZZ_CHECK(strcmp(c2.servers[i].address, c.servers[i].address) == 0);
        }
        configurationClose(&c2);
        raft_free(enc.base);
    }
    configurationClose(&c);
    free(copy);
}

static void check_message(uint8_t type, uint8_t version, const uint8_t *data, size_t size) {
    uv_buf_t header;
    header.base = malloc(size ? size : 1);
    FUZZ_CHECK(header.base != NULL);
    if (size) memcpy(header.base, data, size);
    header.len = size;

    struct raft_message m;
    size_t payload_len = 12345;
    int rv = uvDecodeMessage(type, version, &header, &m, &payload_len);
    if (rv != 0) {
        static const struct raft_message zero;
        FUZZ_CHECK(payload_len == 0);
        FUZZ_CHECK(memcmp(&m, &zero, sizeof m) == 0);
        free(header.base);
        return;
    }
    FUZZ_CHECK(payload_len <= RAFT_UV_MESSAGE_PAYLOAD_MAX_SIZE);

    if (m.type == RAFT_APPEND_ENTRIES) {
        struct raft_append_entries *ae = &m.append_entries;
        FUZZ_CHECK(ae->n_entries == 0 || ae->entries != NULL);
        for (unsigned i = 0; i < ae->n_entries; i++) {
            FUZZ_CHECK(ae->entries[i].buf.len <= RAFT_UV_ENTRY_MAX_SIZE);
        }
        if (payload_len > 0 && payload_len <= FUZZ_RAFT_PAYLOAD_MAX_BYTES) {
            uint8_t *payload = malloc(payload_len);
            FUZZ_CHECK(payload != NULL);
            memset(payload, 0xEE, payload_len);
            uvDecodeEntriesBatch(payload, 0, ae->entries, ae->n_entries);
            for (unsigned i = 0; i < ae->n_entries; i++) {
                const struct raft_entry *e = &ae->entries[i];
                if (e->buf.len == 0) continue;
                const uint8_t *b = e->buf.base;
                FUZZ_CHECK(b >= payload && b + e->buf.len <= payload + payload_len);
            }
            free(payload);
        }
        raft_free(ae->entries);
    } else if (m.type == RAFT_INSTALL_SNAPSHOT) {
        FUZZ_CHECK(m.install_snapshot.data.len == payload_len);
        configurationClose(&m.install_snapshot.conf);
    } else {
        FUZZ_CHECK(payload_len == 0);
    }
    free(header.base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) {
        check_configuration(data + 1, size - 1);
        return 0;
    }
    if (size < 3) return 0;
    check_message(data[1], data[2], data + 3, size - 3);
    return 0;
}
