/*
 * fuzz_forward.c -- libFuzzer harness for the forwarding codec (node/forward.h):
 * fwd_request_decode (what a leader reads from a follower's QUIVER.FORWARD),
 * fwd_response_decode and the RESP reply parser (what a follower reads back
 * from the leader's client port).  All three take bytes from another host.
 *
 * The first input byte picks the target: 0 request, 1 response, 2 reply
 * parser.  Decoders get the rest as is and re-sealed with its XXH3-64
 * (big-endian) so the fuzzer gets past the checksum; the reply parser gets the
 * rest in pieces sized by a generator seeded from the input.
 *
 * Invariants checked:
 *   - decoders return a documented status, leave *out untouched on error, and
 *     on success point only inside the input; a decoded request or response
 *     re-encodes, and decoding that gives the same fields back;
 *   - the reply parser returns 1, 0 or -1; a reply's kind is '$', '-' or '+'
 *     and its data lies inside the parser's buffer; it never holds more than
 *     its size bound;
 *   - no crash, no UB, no leak.
 *
 * Thread: libFuzzer's.
 */
#include <stdint.h>
#include <string.h>

#include <xxhash.h>

#include "fuzz_util.h"
#include "node/forward.h"

static bool inside(const void *p, size_t len, const uint8_t *buf, size_t buf_len) {
    if (len == 0) return true;
    const uint8_t *b = p;
    return b >= buf && b <= buf + buf_len && len <= (size_t)(buf + buf_len - b);
}

static void check_request(const uint8_t *buf, size_t len) {
    fwd_request q;
    memset(&q, 0xA5, sizeof q);
    fwd_request untouched = q;
    int rc = fwd_request_decode(buf, len, &q);
    if (rc != SM_CODEC_OK) {
        FUZZ_CHECK(rc == SM_CODEC_MALFORMED || rc == SM_CODEC_VERSION || rc == SM_CODEC_LIMIT);
        FUZZ_CHECK(memcmp(&q, &untouched, sizeof q) == 0);
        return;
    }
    FUZZ_CHECK(q.type == FWD_TYPE_WRITE || q.type == FWD_TYPE_READ_INDEX);
    if (q.type == FWD_TYPE_WRITE) {
        FUZZ_CHECK(inside(q.cmd.graph.ptr, q.cmd.graph.len, buf, len));
        FUZZ_CHECK(inside(q.cmd.text.ptr, q.cmd.text.len, buf, len));
    }
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    FUZZ_CHECK(fwd_request_encode(&q, &enc, &enc_len) == SM_CODEC_OK);
    fwd_request q2;
    memset(&q2, 0, sizeof q2);
    FUZZ_CHECK(fwd_request_decode(enc, enc_len, &q2) == SM_CODEC_OK);
    FUZZ_CHECK(q2.type == q.type);
    if (q.type == FWD_TYPE_WRITE) {
        FUZZ_CHECK(q2.cmd.kind == q.cmd.kind);
        FUZZ_CHECK(sm_request_id_equal(q2.cmd.request_id, q.cmd.request_id));
        FUZZ_CHECK(q2.cmd.graph.len == q.cmd.graph.len &&
                   memcmp(q2.cmd.graph.ptr, q.cmd.graph.ptr, q.cmd.graph.len) == 0);
        FUZZ_CHECK(q2.cmd.text.len == q.cmd.text.len &&
                   (q.cmd.text.len == 0 || memcmp(q2.cmd.text.ptr, q.cmd.text.ptr, q.cmd.text.len) == 0));
    }
    free(enc);
}

static void check_response(const uint8_t *buf, size_t len) {
    fwd_response r;
    memset(&r, 0xA5, sizeof r);
    fwd_response untouched = r;
    int rc = fwd_response_decode(buf, len, &r);
    if (rc != SM_CODEC_OK) {
        FUZZ_CHECK(rc == SM_CODEC_MALFORMED || rc == SM_CODEC_VERSION || rc == SM_CODEC_LIMIT);
        FUZZ_CHECK(memcmp(&r, &untouched, sizeof r) == 0);
        return;
    }
    FUZZ_CHECK(inside(r.payload, r.payload_len, buf, len));
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    FUZZ_CHECK(fwd_response_encode(&r, &enc, &enc_len) == SM_CODEC_OK);
    fwd_response r2;
    memset(&r2, 0, sizeof r2);
    FUZZ_CHECK(fwd_response_decode(enc, enc_len, &r2) == SM_CODEC_OK);
    FUZZ_CHECK(r2.type == r.type && r2.status == r.status && r2.index == r.index);
    FUZZ_CHECK(r2.payload_len == r.payload_len &&
               (r.payload_len == 0 || memcmp(r2.payload, r.payload, r.payload_len) == 0));
    free(enc);
}

static void check_decoder(void (*check)(const uint8_t *, size_t), const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size) memcpy(copy, data, size);
    check(copy, size);
    free(copy);

    uint8_t *sealed = malloc(size + 8);
    FUZZ_CHECK(sealed != NULL);
    if (size) memcpy(sealed, data, size);
    uint64_t h = XXH3_64bits(sealed, size);
    for (int i = 0; i < 8; i++) sealed[size + i] = (uint8_t)(h >> (56 - 8 * i));
    check(sealed, size + 8);
    free(sealed);
}

/* Bound of the reply parser's unparsed input in this harness: small, so the
 * limit path is reached. */
#define FUZZ_REPLY_SIZE_MAX_BYTES 4096

static void check_replies(const uint8_t *data, size_t size) {
    fwd_reply_parser p;
    fwd_reply_parser_init(&p, FUZZ_REPLY_SIZE_MAX_BYTES);
    fuzz_rng rng;
    fuzz_rng_init(&rng, data, size);
    size_t off = 0;
    bool failed = false;
    while (off < size && !failed) {
        size_t piece = fuzz_rng_piece(&rng, size - off);
        if (fwd_reply_feed(&p, data + off, piece) != 0) break; /* over the bound: link closed */
        off += piece;
        FUZZ_CHECK(p.len <= FUZZ_REPLY_SIZE_MAX_BYTES + piece);
        for (;;) {
            fwd_reply r;
            memset(&r, 0, sizeof r);
            int rc = fwd_reply_next(&p, &r);
            FUZZ_CHECK(rc == 1 || rc == 0 || rc == -1);
            if (rc == 0) break;
            if (rc == -1) {
                failed = true;
                break;
            }
            FUZZ_CHECK(r.kind == '$' || r.kind == '-' || r.kind == '+');
            FUZZ_CHECK(inside(r.data, r.len, (const uint8_t *)p.buf, p.len));
        }
    }
    fwd_reply_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t target = data[0] % 3;
    data++;
    size--;
    if (target == 0) check_decoder(check_request, data, size);
    else if (target == 1) check_decoder(check_response, data, size);
    else check_replies(data, size);
    return 0;
}
