/*
 * fuzz_result.c -- libFuzzer harness for the query result codec
 * (statemachine/result_codec.h).  Results are decoded from the de-dup table
 * (RocksDB) and from a peer's forward response, i.e. from bytes another
 * process wrote.
 *
 * Two uses of the input, as in fuzz_command.c: as is, and re-sealed with its
 * XXH3-64 appended (big-endian), so that the fuzzer's bytes get past the
 * checksum into the value parsing (tags, counts, nesting).
 *
 * Invariants checked:
 *   - decode returns a documented status and leaves *out untouched on error;
 *   - a decoded result re-encodes (SM_CODEC_OK), and the re-encoding decodes
 *     and re-encodes to the very same bytes (canonical encoding: nothing
 *     decoded is lost or invented);
 *   - no crash, no UB, no unbounded recursion (QUIVER_VALUE_DEPTH_MAX), no
 *     leak.
 *
 * Thread: libFuzzer's.
 */
#include <stdint.h>
#include <string.h>

#include <xxhash.h>

#include "fuzz_util.h"
#include "statemachine/result_codec.h"

static void decode_and_check(const uint8_t *buf, size_t len) {
    query_result *r = (query_result *)(uintptr_t)0x1;
    int rc = sm_result_decode(buf, len, &r);
    if (rc != SM_CODEC_OK) {
        FUZZ_CHECK(rc == SM_CODEC_MALFORMED || rc == SM_CODEC_VERSION || rc == SM_CODEC_LIMIT ||
                   rc == SM_CODEC_NOMEM);
        FUZZ_CHECK(r == (query_result *)(uintptr_t)0x1);
        return;
    }
    FUZZ_CHECK(r != NULL);
    FUZZ_CHECK(r->status == QUERY_OK || r->error != NULL);

    uint8_t *enc = NULL;
    size_t enc_len = 0;
    FUZZ_CHECK(sm_result_encode(r, 0, &enc, &enc_len) == SM_CODEC_OK);
    query_result *again = NULL;
    FUZZ_CHECK(sm_result_decode(enc, enc_len, &again) == SM_CODEC_OK);
    FUZZ_CHECK(again->status == r->status && again->wrote == r->wrote);
    FUZZ_CHECK(again->column_count == r->column_count && again->row_count == r->row_count);
    uint8_t *enc2 = NULL;
    size_t enc2_len = 0;
    FUZZ_CHECK(sm_result_encode(again, 0, &enc2, &enc2_len) == SM_CODEC_OK);
    FUZZ_CHECK(enc2_len == enc_len && memcmp(enc, enc2, enc_len) == 0);

    free(enc2);
    free(enc);
    query_result_free(again);
    query_result_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size) memcpy(copy, data, size);
    decode_and_check(copy, size);
    free(copy);

    uint8_t *sealed = malloc(size + 8);
    FUZZ_CHECK(sealed != NULL);
    if (size) memcpy(sealed, data, size);
    uint64_t h = XXH3_64bits(sealed, size);
    for (int i = 0; i < 8; i++) sealed[size + i] = (uint8_t)(h >> (56 - 8 * i));
    decode_and_check(sealed, size + 8);
    free(sealed);
    return 0;
}
