/*
 * parser.h -- openCypher text to AST (ast.h).
 *
 * A hand-written recursive-descent parser over a lexer, for the subset of
 * openCypher 9 that Quiver supports (see ast.h for the grammar sources).
 * Keywords are case-insensitive; identifiers are case-sensitive and may be
 * back-quoted; string literals take single or double quotes with the escapes
 * \\ \' \" \n \t \r \b \f \uXXXX; comments // and block comments.
 *
 * Recursion is bounded by QUIVER_QUERY_AST_DEPTH_MAX and also checked
 * against the calling thread's stack (query_stack_floor, engine.h): on a
 * small stack a deep statement is a limit error, not an overflow.
 *
 * Thread: any; the parser has no global state (the stack bounds are cached
 * per thread, the name-hash seed once per process).
 */
#ifndef QUIVER_QUERY_PARSER_H
#define QUIVER_QUERY_PARSER_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/arena.h"
#include "ast.h"

typedef struct parse_error {
    uint32_t line;          /* 1-based; 0 when not positional */
    uint32_t column;        /* 1-based, in characters (UTF-8 code points) */
    char message[256];      /* e.g. "Invalid input 'RETRN': expected ..."; holds no
                               position: callers append line and column */
    bool limit;             /* a statement limit (limits.h), not a syntax error: the
                               message starts with "ERR " (QUERY_ERR_LIMIT) */
    bool out_of_memory;     /* malloc failed (not the arena's limit): not the same on
                               every replica (query_result.out_of_memory) */
} parse_error;

/* Parse text[0..len) (which may start with a `CYPHER name=value ...`
 * prefix) into *out, allocating from arena a.  Returns 0 on success, -1 on
 * a syntax error (err filled, with the position of the offending token) or
 * when a limit is exceeded (err->limit: nesting depth
 * QUIVER_QUERY_AST_DEPTH_MAX, clauses, expression nodes, literal sizes,
 * pattern sizes and ORDER BY items of limits.h, the value limits for
 * constant lists and CYPHER parameters; or the arena is full).  Semantic checks done here: undefined variables are NOT checked
 * (the planner does), but clause order is (e.g. RETURN must be last, a
 * query must end in RETURN or an updating clause).  Sets out->writes. */
int cypher_parse(const char *text, size_t len, q_arena *a, ast_query *out, parse_error *err);

#endif
