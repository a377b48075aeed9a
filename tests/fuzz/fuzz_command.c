/*
 * fuzz_command.c -- libFuzzer harness for the raft log entry codec
 * (statemachine/command.h).  Every replica decodes every committed entry on
 * its apply thread, so sm_entry_decode must survive any bytes: an entry
 * relayed or written by a faulty or hostile peer must fail the same way
 * everywhere, never crash the apply thread.
 *
 * Two uses of the input:
 *   1. decode it as an entry, as is;
 *   2. re-seal it: the decoder verifies the XXH3 checksum first, so random
 *      bytes rarely get past it.  The harness recomputes the checksum over
 *      the input (padded as the encoder pads) and decodes again, which sends
 *      the fuzzer's bytes into the field parsing.
 *
 * Invariants checked:
 *   - decode returns one of the documented statuses; on success the count is
 *     1..QUIVER_ENTRY_COMMANDS_COUNT_MAX and every command passes
 *     sm_command_check, its graph and text lie inside the input buffer;
 *   - round trip: re-encoding the decoded commands succeeds, gives an entry
 *     that decodes to the same commands, and re-encoding that gives the same
 *     bytes (the encoding is canonical);
 *   - on error the outputs are untouched;
 *   - no crash, no UB, no leak.
 *
 * Thread: libFuzzer's.
 */
#include <stdint.h>
#include <string.h>

#include <xxhash.h>

#include "common/arena.h"
#include "fuzz_util.h"
#include "statemachine/command.h"

static bool inside(const void *p, size_t len, const uint8_t *buf, size_t buf_len) {
    if (len == 0) return true;
    const uint8_t *b = p;
    return b >= buf && b <= buf + buf_len && len <= (size_t)(buf + buf_len - b);
}

static void check_same(const sm_command *a, const sm_command *b, uint32_t count) {
    for (uint32_t i = 0; i < count; i++) {
        FUZZ_CHECK(a[i].kind == b[i].kind);
        FUZZ_CHECK(sm_request_id_equal(a[i].request_id, b[i].request_id));
        FUZZ_CHECK(a[i].timestamp_ms == b[i].timestamp_ms);
        FUZZ_CHECK(a[i].seed == b[i].seed);
        FUZZ_CHECK(a[i].graph.len == b[i].graph.len);
        FUZZ_CHECK(memcmp(a[i].graph.ptr, b[i].graph.ptr, a[i].graph.len) == 0);
        FUZZ_CHECK(a[i].text.len == b[i].text.len);
        FUZZ_CHECK(a[i].text.len == 0 || memcmp(a[i].text.ptr, b[i].text.ptr, a[i].text.len) == 0);
    }
}

static void decode_and_check(const uint8_t *buf, size_t len) {
    q_arena a;
    q_arena_init(&a, 64u * 1024 * 1024);
    sm_command *cmds = (sm_command *)(uintptr_t)0x1;
    uint32_t count = 0xdeadbeef;
    int rc = sm_entry_decode(buf, len, &a, &cmds, &count);
    FUZZ_CHECK(sm_codec_strerror(rc) != NULL);
    if (rc != SM_CODEC_OK) {
        FUZZ_CHECK(rc == SM_CODEC_MALFORMED || rc == SM_CODEC_VERSION || rc == SM_CODEC_LIMIT ||
                   rc == SM_CODEC_NOMEM);
        FUZZ_CHECK(cmds == (sm_command *)(uintptr_t)0x1 && count == 0xdeadbeef);
        q_arena_free(&a);
        return;
    }
    FUZZ_CHECK(count >= 1 && count <= QUIVER_ENTRY_COMMANDS_COUNT_MAX);
    for (uint32_t i = 0; i < count; i++) {
        FUZZ_CHECK(sm_command_check(&cmds[i]) == SM_CODEC_OK);
        FUZZ_CHECK(inside(cmds[i].graph.ptr, cmds[i].graph.len, buf, len));
        FUZZ_CHECK(inside(cmds[i].text.ptr, cmds[i].text.len, buf, len));
    }

    uint8_t *enc = NULL;
    size_t enc_len = 0;
    FUZZ_CHECK(sm_entry_encode(cmds, count, &enc, &enc_len) == SM_CODEC_OK);
    FUZZ_CHECK(enc_len % SM_ENTRY_ALIGN_BYTES == 0);
    FUZZ_CHECK(enc_len <= QUIVER_ENTRY_SIZE_MAX_BYTES);

    q_arena b;
    q_arena_init(&b, 64u * 1024 * 1024);
    sm_command *again = NULL;
    uint32_t again_count = 0;
    FUZZ_CHECK(sm_entry_decode(enc, enc_len, &b, &again, &again_count) == SM_CODEC_OK);
    FUZZ_CHECK(again_count == count);
    check_same(cmds, again, count);

    uint8_t *enc2 = NULL;
    size_t enc2_len = 0;
    FUZZ_CHECK(sm_entry_encode(again, again_count, &enc2, &enc2_len) == SM_CODEC_OK);
    FUZZ_CHECK(enc2_len == enc_len && memcmp(enc, enc2, enc_len) == 0);

    free(enc2);
    free(enc);
    q_arena_free(&b);
    q_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* 1. as is (a private copy, so a read past the end is caught) */
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size) memcpy(copy, data, size);
    decode_and_check(copy, size);
    free(copy);

    /* 2. re-sealed: input, zero padding to 8 bytes, then its XXH3-64
     * (big-endian, as command.h's format says). */
    size_t body = sm_entry_padded_size(size);
    uint8_t *sealed = calloc(1, body + 8);
    FUZZ_CHECK(sealed != NULL);
    if (size) memcpy(sealed, data, size);
    uint64_t h = XXH3_64bits(sealed, body);
    for (int i = 0; i < 8; i++) sealed[body + i] = (uint8_t)(h >> (56 - 8 * i));
    decode_and_check(sealed, body + 8);
    free(sealed);
    return 0;
}
