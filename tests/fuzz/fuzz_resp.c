/*
 * fuzz_resp.c -- libFuzzer harness for the RESP request parser (node/resp.h),
 * the first code that sees a client's bytes.
 *
 * The input is a byte stream from a client.  Its first byte picks the
 * request size bound (64 bytes, 4 KiB, or the default), so that short inputs
 * reach the limit paths.  The stream is parsed twice: whole, and cut into
 * pieces whose sizes come from a generator seeded by the input (fuzz_util.h),
 * as reads from a socket would deliver it.
 *
 * Invariants checked:
 *   - every request returned is well-formed: 1 <= argc <= QUIVER_RESP_ARGS_COUNT_MAX,
 *     each argument non-NULL and NUL-terminated at argv_len, size_bytes the
 *     sum of argv_len and within the request size bound;
 *   - INCOMPLETE consumes every byte offered, OK and ERROR consume at most
 *     what was offered, and after ERROR the parser accepts nothing more;
 *   - the piecewise parse returns exactly the same requests (a digest of
 *     every argument) and ends in the same state and error text as the whole
 *     parse: resp.h promises that a request cut at any byte boundary parses
 *     the same;
 *   - no leaks (ASan's LeakSanitizer at exit of each run).
 *
 * Thread: libFuzzer's.
 */
#include <stdint.h>
#include <string.h>

#include "common/limits.h"
#include "fuzz_util.h"
#include "node/resp.h"

typedef struct parse_outcome {
    uint64_t digest;           /* FNV-1a over every request's arguments */
    uint32_t request_count;
    resp_parse_status last;    /* INCOMPLETE at the end, or ERROR */
    char error[sizeof(((resp_parser *)0)->error)];
} parse_outcome;

static uint64_t fnv(uint64_t h, const void *data, size_t len) {
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

static void check_request(const resp_request *r, uint64_t size_max_bytes) {
    FUZZ_CHECK(r->argc >= 1);
    FUZZ_CHECK(r->argc <= QUIVER_RESP_ARGS_COUNT_MAX);
    FUZZ_CHECK(r->argv != NULL && r->argv_len != NULL);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < r->argc; i++) {
        FUZZ_CHECK(r->argv[i] != NULL);
        FUZZ_CHECK(r->argv[i][r->argv_len[i]] == '\0');
        sum += r->argv_len[i];
    }
    FUZZ_CHECK(sum == r->size_bytes);
    FUZZ_CHECK(r->size_bytes <= size_max_bytes);
}

static void record(parse_outcome *o, resp_request *r, uint64_t size_max_bytes) {
    check_request(r, size_max_bytes);
    o->request_count++;
    o->digest = fnv(o->digest, &r->argc, sizeof r->argc);
    for (uint32_t i = 0; i < r->argc; i++) {
        uint64_t len = r->argv_len[i];
        o->digest = fnv(o->digest, &len, sizeof len);
        o->digest = fnv(o->digest, r->argv[i], r->argv_len[i]);
    }
    resp_request_free(r);
    FUZZ_CHECK(r->argc == 0 && r->argv == NULL);
}

/* Feed data[0..len) in pieces; piece sizes from rng, or whole when rng is NULL. */
static void parse_stream(const uint8_t *data, size_t len, uint64_t size_max_bytes, fuzz_rng *rng,
                         parse_outcome *o) {
    resp_parser p;
    resp_parser_init(&p, size_max_bytes);
    memset(o, 0, sizeof *o);
    o->digest = 0xcbf29ce484222325ull;
    o->last = RESP_PARSE_INCOMPLETE;
    size_t off = 0;
    while (off < len && o->last != RESP_PARSE_ERROR) {
        size_t piece = rng ? fuzz_rng_piece(rng, len - off) : len - off;
        size_t pos = 0;
        while (pos < piece) {
            size_t used = 0;
            resp_request r;
            memset(&r, 0, sizeof r);
            resp_parse_status st = resp_parse(&p, (const char *)data + off + pos, piece - pos, &used, &r);
            FUZZ_CHECK(used <= piece - pos);
            pos += used;
            if (st == RESP_PARSE_OK) {
                record(o, &r, size_max_bytes ? size_max_bytes : QUIVER_REQUEST_SIZE_MAX_BYTES_DEFAULT);
                continue;
            }
            if (st == RESP_PARSE_INCOMPLETE) {
                FUZZ_CHECK(pos == piece);
                break;
            }
            FUZZ_CHECK(st == RESP_PARSE_ERROR);
            FUZZ_CHECK(memchr(p.error, '\0', sizeof p.error) != NULL);
            FUZZ_CHECK(p.error[0] != '\0');
            o->last = RESP_PARSE_ERROR;
            memcpy(o->error, p.error, sizeof o->error);
            /* A failed parser takes nothing more. */
            size_t again = 0;
            resp_request r2;
            memset(&r2, 0, sizeof r2);
            FUZZ_CHECK(resp_parse(&p, "PING\r\n", 6, &again, &r2) == RESP_PARSE_ERROR);
            break;
        }
        off += piece;
    }
    resp_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const uint64_t bounds[] = {64, 4096, 0};
    uint64_t bound = bounds[data[0] % 3];
    data++;
    size--;

    parse_outcome whole, pieces;
    parse_stream(data, size, bound, NULL, &whole);
    fuzz_rng rng;
    fuzz_rng_init(&rng, data, size);
    parse_stream(data, size, bound, &rng, &pieces);

    FUZZ_CHECK(whole.request_count == pieces.request_count);
    FUZZ_CHECK(whole.digest == pieces.digest);
    FUZZ_CHECK(whole.last == pieces.last);
    FUZZ_CHECK(strcmp(whole.error, pieces.error) == 0);
    return 0;
}
