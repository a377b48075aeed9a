/*
 * fuzz_cypher.c -- libFuzzer harness for the openCypher front end: the lexer
 * (query/lexer.h), the parser (query/parser.h), the router's classification
 * and admission (query/query.h: query_classify, query_admit).  Every write is
 * admitted by the node that receives it before it enters the raft log, so
 * these run on text straight from a client.
 *
 * The input is the query text as a client would send it (GRAPH.QUERY's
 * argument; it may start with a CYPHER name=value prefix).
 *
 * Invariants checked:
 *   - the lexer makes progress and stays inside the text: every token lies in
 *     [0, len], tokens do not go backwards, and it reaches EOF or ERROR
 *     within len + 1 tokens (plus EOF) -- no infinite loop;
 *   - the parser, classification and admission return 0 or -1 and, on -1,
 *     a NUL-terminated, non-empty message within the buffer; a text the parser
 *     refuses is refused by classification and admission too (they parse
 *     first), and the three agree on whether the statement writes;
 *   - no crash, no UB, no leak (ASan+UBSan), no stack overflow at the
 *     nesting limit (QUIVER_QUERY_AST_DEPTH_MAX) on the fuzzer's 8 MiB
 *     main-thread stack, which is what the loop thread has.
 *
 * Thread: libFuzzer's.
 */
#include <stdint.h>
#include <string.h>

#include "common/arena.h"
#include "fuzz_util.h"
#include "query/lexer.h"
#include "query/parser.h"
#include "query/query.h"

/* Arena cap for one parse: far above what a short fuzz input needs, so that
 * hitting it means a runaway allocation. */
#define FUZZ_CYPHER_ARENA_SIZE_MAX_BYTES (256u * 1024 * 1024)

static void lex_all(const char *text, size_t len) {
    lexer lx;
    lexer_init(&lx, text, len);
    size_t prev_end = 0;
    for (size_t n = 0;; n++) {
        FUZZ_CHECK(n <= len + 1);
        token t;
        memset(&t, 0, sizeof t);
        tok_type tt = lexer_next(&lx, &t);
        if (tt == TOK_ERROR) {
            FUZZ_CHECK(lx.error_message != NULL && lx.error_message[0] != '\0');
            return;
        }
        if (tt == TOK_EOF) return;
        FUZZ_CHECK(t.begin <= t.start && t.start <= len);
        FUZZ_CHECK(t.len <= len - t.start);
        FUZZ_CHECK(t.end <= len && t.end > t.begin);
        FUZZ_CHECK(t.begin >= prev_end);
        FUZZ_CHECK(t.line >= 1 && t.column >= 1);
        prev_end = t.end;
        if (tt == TOK_STRING && t.len >= 2) {
            /* the body between the quotes unescapes into at most its length */
            size_t body_len = t.len - 2;
            char *out = malloc(body_len + 1);
            FUZZ_CHECK(out != NULL);
            const char *msg = NULL;
            size_t err_off = 0;
            long n_out = lexer_unescape(text + t.start + 1, body_len, out, &msg, &err_off);
            FUZZ_CHECK(n_out == -1 ? (msg != NULL && err_off <= body_len) : (size_t)n_out <= body_len);
            free(out);
        }
    }
}

static void check_error_text(const char *err, size_t size) {
    FUZZ_CHECK(memchr(err, '\0', size) != NULL);
    FUZZ_CHECK(err[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A private copy without a NUL after it: a read past len is caught. */
    char *text = malloc(size ? size : 1);
    FUZZ_CHECK(text != NULL);
    if (size) memcpy(text, data, size);

    lex_all(text, size);

    q_arena a;
    q_arena_init(&a, FUZZ_CYPHER_ARENA_SIZE_MAX_BYTES);
    ast_query q;
    parse_error perr;
    memset(&q, 0, sizeof q);
    memset(&perr, 0, sizeof perr);
    int prc = cypher_parse(text, size, &a, &q, &perr);
    FUZZ_CHECK(prc == 0 || prc == -1);
    if (prc == -1) FUZZ_CHECK(memchr(perr.message, '\0', sizeof perr.message) != NULL);
    bool parsed_writes = prc == 0 && q.writes;
    q_arena_free(&a);

    char err[512];
    bool writes = false;
    memset(err, 0x55, sizeof err);
    int crc = query_classify(text, size, &writes, err, sizeof err);
    FUZZ_CHECK(crc == 0 || crc == -1);
    if (crc == -1) check_error_text(err, sizeof err);
    if (prc == -1) FUZZ_CHECK(crc == -1);
    if (prc == 0 && crc == 0) FUZZ_CHECK(writes == parsed_writes);

    query_admission adm;
    memset(&adm, 0, sizeof adm);
    memset(err, 0x55, sizeof err);
    int arc = query_admit(text, size, &adm, err, sizeof err);
    FUZZ_CHECK(arc == 0 || arc == -1);
    if (arc == -1) check_error_text(err, sizeof err);
    if (crc == -1) FUZZ_CHECK(arc == -1);
    if (arc == 0) FUZZ_CHECK(crc == 0 && adm.writes == writes);

    /* Admission plans only writes and EXPLAIN (query.h); EXPLAIN in front
     * makes it plan reads too, so the planner sees every input. */
    if (crc == 0 && !writes && size <= (1u << 20)) {
        static const char prefix[] = "EXPLAIN ";
        char *ex = malloc(sizeof prefix - 1 + size);
        FUZZ_CHECK(ex != NULL);
        memcpy(ex, prefix, sizeof prefix - 1);
        memcpy(ex + sizeof prefix - 1, text, size);
        memset(err, 0x55, sizeof err);
        int xrc = query_admit(ex, sizeof prefix - 1 + size, &adm, err, sizeof err);
        FUZZ_CHECK(xrc == 0 || xrc == -1);
        if (xrc == -1) check_error_text(err, sizeof err);
        free(ex);
    }

    free(text);
    return 0;
}
