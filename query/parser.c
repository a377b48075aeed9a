/*
 * parser.c -- openCypher text to AST; see parser.h and ast.h.
 *
 * Design
 * ------
 * Recursive descent over the pull lexer (lexer.h), one function per grammar
 * rule of the openCypher 9 reference grammar, with one token of lookahead
 * plus bounded peeks (the lexer state is a small struct, so peeking k tokens
 * is copying it and scanning k tokens).  The parser never backtracks: the
 * two real ambiguities of the grammar are settled by peeking --
 *   - '(' in an expression starts a pattern predicate when it reads as a
 *     node pattern followed by a relationship ("(a)-->", "(a)<-[", "(:L",
 *     "(a {", "()") and a parenthesised expression otherwise
 *     ("(n:Person)" alone is a label test);
 *   - '[' starts a list comprehension when followed by "name IN"
 * (and "a.b(" is a namespaced function call, "a.b" a property).  So parsing
 * is linear in the text.
 *
 * Errors unwind with longjmp to cypher_parse(): every allocation is in the
 * caller's arena or in the parser's scratch stack, both released without
 * walking the half-built tree, so no error path can leak.  Messages follow
 * FalkorDB/Neo4j ("Invalid input 'RETRN': expected ...", "Invalid input at
 * end of input: expected ..."); the position is in parse_error.line/column,
 * not in the message.
 *
 * Arrays of unknown length (list items, paths, clauses...) are pushed on one
 * scratch stack (first PARSER_SCRATCH_INLINE_SIZE_BYTES inside the parser
 * struct, which lives on the C stack, then malloc'd and grown geometrically,
 * reused across the whole parse) and copied once, exactly sized, into the
 * arena when complete: a short query costs no malloc at all.
 * Nested constructs push above their parent's mark and pop before the parent
 * pushes again, so one stack serves all nesting levels.  With the constant
 * path for `CYPHER name=value` (values folded straight into qv_values), a
 * 20 MB import literal costs one 24-byte value per element, no per-token
 * malloc and no quadratic copying.
 *
 * Statement limits (limits.h; errors flagged parse_error.limit, texts
 * starting with "ERR "): clauses QUIVER_QUERY_CLAUSES_COUNT_MAX (all UNION
 * parts), expression nodes QUIVER_QUERY_EXPRESSION_NODES_COUNT_MAX,
 * relationships per path QUIVER_QUERY_PATH_RELS_COUNT_MAX, parts per
 * CREATE / MATCH pattern, ORDER BY items, and the literal limits.  Each is
 * counted as the text is read, so an oversized statement is refused
 * without being parsed to the end.  A list literal whose items are all
 * constants is folded into one literal node holding the list (as the
 * CYPHER parameters are), so inline bulk data is cheap and does not count
 * element by element; its value obeys QUIVER_VALUE_DEPTH_MAX and
 * QUIVER_VALUE_ELEMENTS_COUNT_MAX like any other (value.h).
 *
 * Limits: depth QUIVER_QUERY_AST_DEPTH_MAX, counted over nesting AND over
 * operator chains (each operator of "a + b + c ..." or "n.a.b ..." adds a
 * level, since the tree it builds is that deep), so both this parser's
 * recursion and any recursive walk of the finished tree are bounded; the
 * check comes before the C stack could overflow (the recursive functions
 * keep small frames: about 1 KiB per level).  Text size
 * QUIVER_QUERY_TEXT_SIZE_MAX_BYTES, list and map sizes
 * QUIVER_QUERY_LITERAL_LIST_COUNT_MAX, string literal size (after
 * unescaping) QUIVER_QUERY_LITERAL_STRING_SIZE_MAX_BYTES, names
 * QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES, columns PARSER_PROJECTION_ITEMS_COUNT_MAX,
 * and the arena's own byte limit (reported as an error, never a crash).
 *
 * Not supported (a syntax error today): map projections n {.a}, pattern
 * comprehensions [(a)-->(b) | b.x], EXISTS { subquery }, CALL { subquery },
 * FOREACH, LOAD CSV, relationship indexes, named indexes and IF NOT EXISTS.
 */
#include "parser.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/limits.h"
#include "../common/qassert.h"
#include "engine.h"
#include "lexer.h"

/* Items of one RETURN/WITH. */
#define PARSER_PROJECTION_ITEMS_COUNT_MAX 4096
/* Duplicate column names: up to this many items are compared one by one,
 * more go through a set of PARSER_ALIAS_SET_SIZE slots (twice the items). */
#define PARSER_ALIAS_SCAN_COUNT_MAX 32
#define PARSER_ALIAS_SET_SIZE (2 * PARSER_PROJECTION_ITEMS_COUNT_MAX)
/* Hops in a variable-length range literal (*1..n). */
#define PARSER_HOPS_MAX (UINT32_MAX - 1)
/* Bytes of the offending token quoted in a message. */
#define PARSER_QUOTE_SIZE_MAX_BYTES 40
/* Scratch stack bytes kept inside the parser before it moves to the heap. */
#define PARSER_SCRATCH_INLINE_SIZE_BYTES 2048

typedef struct parser {
    const char *text;
    size_t len;
    lexer lx;          /* state just after tok */
    token tok;         /* current token */
    size_t prev_end;   /* end offset of the last consumed token */
    q_arena *a;
    parse_error *err;
    jmp_buf jb;
    uint32_t depth;
    uintptr_t stack_floor;    /* ENTER fails below this (query_stack_floor) */
    size_t stack_budget_bytes;
    uint32_t clauses;         /* clauses so far, all UNION parts */
    uint32_t exprs;           /* expression nodes in the tree */
    uint32_t pending;         /* of which literal items of open list literals that
                                 may still fold away (not counted against the limit) */
    bool writes;
    unsigned char *scratch;   /* scratch_inline, or malloc'd once outgrown */
    size_t scratch_len;
    size_t scratch_cap;
    _Alignas(16) unsigned char scratch_inline[PARSER_SCRATCH_INLINE_SIZE_BYTES];
} parser;

/* ---------------------------------------------------------------- */
/* Errors                                                            */
/* ---------------------------------------------------------------- */

_Noreturn static void fail_pos(parser *p, uint32_t line, uint32_t column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noinline, cold));

_Noreturn static void fail_pos(parser *p, uint32_t line, uint32_t column, const char *fmt, ...) {
    p->err->line = line;
    p->err->column = column;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->message, sizeof p->err->message, fmt, ap);
    va_end(ap);
    longjmp(p->jb, 1);
}

/* Quote a token's text for a message: at most PARSER_QUOTE_SIZE_MAX_BYTES,
 * control bytes as \xNN, never cutting a UTF-8 sequence. */
static void quote_token(const parser *p, const token *t, char *out, size_t cap) {
    size_t b = t->begin, e = t->end;
    if (e > p->len) e = p->len;
    if (b > e) b = e;
    if (e - b > PARSER_QUOTE_SIZE_MAX_BYTES) {
        e = b + PARSER_QUOTE_SIZE_MAX_BYTES;
        while (e > b && ((unsigned char)p->text[e] & 0xC0) == 0x80) e--;
    }
    size_t o = 0;
    for (size_t i = b; i < e && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)p->text[i];
        if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

/* "Invalid input 'X': expected <what>" at token t. */
__attribute__((noinline, cold)) _Noreturn static void fail_expected_at(parser *p, const token *t,
                                                                      const char *what) {
    if (t->type == TOK_EOF) {
        fail_pos(p, t->line, t->column, "Invalid input at end of input: expected %s", what);
    }
    char q[PARSER_QUOTE_SIZE_MAX_BYTES * 4 + 8];
    quote_token(p, t, q, sizeof q);
    fail_pos(p, t->line, t->column, "Invalid input '%s': expected %s", q, what);
}

__attribute__((noinline, cold)) _Noreturn static void fail_expected(parser *p, const char *what) {
    fail_expected_at(p, &p->tok, what);
}

#define fail_at(p, t, ...) fail_pos((p), (t)->line, (t)->column, __VA_ARGS__)

/* A statement limit: the message must start with "ERR " (engine.h lists
 * the texts). */
#define fail_limit(p, line, column, ...)                   \
    do {                                                   \
        (p)->err->limit = true;                            \
        fail_pos((p), (line), (column), __VA_ARGS__);      \
    } while (0)

_Noreturn static void fail_memory(parser *p) {
    if (p->a->malloc_failed) p->err->out_of_memory = true;
    fail_pos(p, 0, 0, "Query uses too much memory: the parser's arena is exhausted");
}

/* malloc (not the arena's limit) failed. */
_Noreturn static void fail_malloc(parser *p) {
    p->err->out_of_memory = true;
    fail_pos(p, 0, 0, "Query uses too much memory: out of memory while parsing");
}

/* ---------------------------------------------------------------- */
/* Tokens                                                            */
/* ---------------------------------------------------------------- */

/* Out of line and cold: its message buffer must not sit in the frames of
 * the recursive functions that call next(). */
__attribute__((noinline, cold)) _Noreturn static void lex_fail(parser *p, const lexer *lx, const token *t) {
    char q[PARSER_QUOTE_SIZE_MAX_BYTES * 4 + 8];
    quote_token(p, t, q, sizeof q);
    fail_at(p, t, "Invalid input '%s': %s", q, lx->error_message);
}

static inline void lex_checked(parser *p, lexer *lx, token *t) {
    if (__builtin_expect(lexer_next(lx, t) == TOK_ERROR, 0)) lex_fail(p, lx, t);
}

static void next(parser *p) {
    p->prev_end = p->tok.end;
    lex_checked(p, &p->lx, &p->tok);
}

/* Type of the k-th token after the current one (k >= 1), without consuming.
 * A lexical error reads as TOK_ERROR (reported when actually reached). */
static tok_type peek_tok(const parser *p, int k, token *out) {
    lexer lx = p->lx;
    token t;
    for (int i = 0; i < k; i++) {
        if (lexer_next(&lx, &t) == TOK_ERROR || t.type == TOK_EOF) break;
    }
    if (out != NULL) *out = t;
    return t.type;
}

static bool is_kw(const parser *p, kw_id kw) {
    return p->tok.type == TOK_IDENT && p->tok.kw == kw;
}

static bool tok_is_kw(const token *t, kw_id kw) {
    return t->type == TOK_IDENT && t->kw == kw;
}

static bool accept(parser *p, tok_type ty) {
    if (p->tok.type != ty) return false;
    next(p);
    return true;
}

static bool accept_kw(parser *p, kw_id kw) {
    if (!is_kw(p, kw)) return false;
    next(p);
    return true;
}

static void expect(parser *p, tok_type ty, const char *what) {
    if (p->tok.type != ty) fail_expected(p, what);
    next(p);
}

static void expect_kw(parser *p, kw_id kw, const char *what) {
    if (!is_kw(p, kw)) fail_expected(p, what);
    next(p);
}

/* Keywords that cannot name a variable (openCypher 9 reserved words that we
 * know as keywords).  CALL, YIELD, INDEX, EXPLAIN and CYPHER are not
 * reserved. */
static bool kw_reserved(kw_id kw) {
    switch (kw) {
    case KW_NONE:
    case KW_CALL:
    case KW_YIELD:
    case KW_INDEX:
    case KW_EXPLAIN:
    case KW_CYPHER:
        return false;
    default:
        return true;
    }
}

/* A token that can be a variable name. */
static bool tok_is_var(const token *t) {
    return t->type == TOK_QIDENT || (t->type == TOK_IDENT && !kw_reserved(t->kw));
}

/* A token that can be a label, relationship type, property key or map key:
 * any identifier, keywords included. */
static bool tok_is_name(const token *t) {
    return t->type == TOK_QIDENT || t->type == TOK_IDENT;
}

/* Case-insensitive: does token t spell word (lower case)? */
static bool tok_is_word(const parser *p, const token *t, const char *word) {
    if (t->type != TOK_IDENT) return false;
    size_t n = strlen(word);
    if (t->len != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = p->text[t->start + i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != word[i]) return false;
    }
    return true;
}

/* ---------------------------------------------------------------- */
/* Memory                                                            */
/* ---------------------------------------------------------------- */

static void *palloc(parser *p, size_t size_bytes) {
    void *m = q_arena_alloc(p->a, size_bytes);
    if (m == NULL) fail_memory(p);
    return m;
}

static void *pcalloc(parser *p, size_t size_bytes) {
    void *m = palloc(p, size_bytes);
    memset(m, 0, size_bytes);
    return m;
}

static size_t sc_mark(const parser *p) { return p->scratch_len; }

__attribute__((noinline)) static void sc_grow(parser *p, size_t size_bytes) {
    size_t cap = p->scratch_cap == 0 ? 4096 : p->scratch_cap;
    while (cap - p->scratch_len < size_bytes) {
        if (cap > SIZE_MAX / 2) fail_memory(p);
        cap *= 2;
    }
    unsigned char *n;
    if (p->scratch == p->scratch_inline) {
        n = malloc(cap);
        if (n == NULL) fail_malloc(p);
        memcpy(n, p->scratch_inline, p->scratch_len);
    } else {
        n = realloc(p->scratch, cap);
        if (n == NULL) fail_malloc(p);
    }
    p->scratch = n;
    p->scratch_cap = cap;
}

static inline void sc_push(parser *p, const void *elem, size_t size_bytes) {
    if (__builtin_expect(p->scratch_cap - p->scratch_len < size_bytes, 0)) sc_grow(p, size_bytes);
    memcpy(p->scratch + p->scratch_len, elem, size_bytes);
    p->scratch_len += size_bytes;
}

static uint32_t sc_count(const parser *p, size_t mark, size_t size_bytes) {
    QUIVER_ASSERT(p->scratch_len >= mark && (p->scratch_len - mark) % size_bytes == 0);
    return (uint32_t)((p->scratch_len - mark) / size_bytes);
}

/* Pop everything above mark into an exactly sized arena array. */
static void *sc_finish(parser *p, size_t mark, size_t size_bytes, uint32_t *count) {
    QUIVER_ASSERT(p->scratch_len >= mark);
    size_t bytes = p->scratch_len - mark;
    QUIVER_ASSERT(bytes % size_bytes == 0);
    *count = (uint32_t)(bytes / size_bytes);
    void *out = NULL;
    if (bytes > 0) {
        out = palloc(p, bytes);
        memcpy(out, p->scratch + mark, bytes);
    }
    p->scratch_len = mark;
    return out;
}

static qv_str copy_str(parser *p, const char *s, size_t len) {
    char *m = q_arena_strndup(p->a, s, len);
    if (m == NULL) fail_memory(p);
    qv_str r = {m, (uint32_t)len};
    return r;
}

/* The name of an identifier, back-quoted identifier or parameter token. */
static qv_str tok_name(parser *p, const token *t) {
    QUIVER_ASSERT(t->type == TOK_IDENT || t->type == TOK_QIDENT || t->type == TOK_PARAM);
    if (t->len > QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES) {
        fail_at(p, t, "Identifier is too long (the limit is %u bytes)",
                (unsigned)QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES);
    }
    if (t->len == 0) fail_at(p, t, "Invalid input '``': an identifier cannot be empty");
    if (!t->has_escape) return copy_str(p, p->text + t->start, t->len);
    char *m = palloc(p, t->len + 1);
    size_t n = lexer_unquote_ident(p->text + t->start, t->len, m);
    m[n] = '\0';
    qv_str r = {m, (uint32_t)n};
    return r;
}

/* Consume a name token (label, type, key) and return it. */
static qv_str expect_name(parser *p, const char *what) {
    if (!tok_is_name(&p->tok)) fail_expected(p, what);
    qv_str s = tok_name(p, &p->tok);
    next(p);
    return s;
}

static qv_str expect_var(parser *p, const char *what) {
    if (!tok_is_var(&p->tok)) fail_expected(p, what);
    qv_str s = tok_name(p, &p->tok);
    next(p);
    return s;
}

static ast_pos tok_pos(const token *t) {
    ast_pos r = {t->line, t->column};
    return r;
}

static void check_exprs(parser *p, ast_pos pos) {
    QUIVER_ASSERT(p->exprs >= p->pending);
    if (p->exprs - p->pending > QUIVER_QUERY_EXPRESSION_NODES_COUNT_MAX)
        fail_limit(p, pos.line, pos.column, "ERR query has more than %u expression nodes (the limit)",
                   (unsigned)QUIVER_QUERY_EXPRESSION_NODES_COUNT_MAX);
}

static ast_expr *new_expr_pos(parser *p, ast_expr_kind kind, ast_pos pos) {
    p->exprs++;
    check_exprs(p, pos);
    ast_expr *e = pcalloc(p, sizeof *e);
    e->kind = kind;
    e->pos = pos;
    return e;
}

static ast_expr *new_expr(parser *p, ast_expr_kind kind, const token *at) {
    return new_expr_pos(p, kind, tok_pos(at));
}

/* What the operator loops keep of a token: small, because those frames
 * are live once per nesting level (see QUIVER_QUERY_AST_DEPTH_MAX). */
typedef struct tok_at {
    tok_type type;
    kw_id kw;
    ast_pos pos;
} tok_at;

static inline tok_at cur_at(const parser *p) {
    tok_at a = {p->tok.type, p->tok.kw, tok_pos(&p->tok)};
    return a;
}

static inline bool at_is_kw(const tok_at *a, kw_id kw) { return a->type == TOK_IDENT && a->kw == kw; }

/* Each nesting level: the depth limit, and the stack budget (a thread with
 * a small stack, or ASan's big frames, may not hold 256 levels). */
#define ENTER(p)                                                                              \
    do {                                                                                      \
        if (++(p)->depth > QUIVER_QUERY_AST_DEPTH_MAX)                                        \
            fail_limit((p), (p)->tok.line, (p)->tok.column,                                   \
                       "ERR query is nested too deeply (the limit is %d levels)", QUIVER_QUERY_AST_DEPTH_MAX); \
        if (__builtin_expect((uintptr_t)__builtin_frame_address(0) < (p)->stack_floor, 0))    \
            fail_limit((p), (p)->tok.line, (p)->tok.column,                                   \
                       "ERR query needs more than %zu bytes of stack (too deeply nested)",     \
                       (p)->stack_budget_bytes);                                              \
    } while (0)
#define LEAVE(p) ((p)->depth--)

/* ---------------------------------------------------------------- */
/* Literals                                                          */
/* ---------------------------------------------------------------- */

static ast_expr *literal_int(parser *p, const token *t, bool negative) {
    QUIVER_ASSERT(t->type == TOK_INT);
    ast_expr *e = new_expr(p, AST_LITERAL, t);
    uint64_t u = t->num.u;
    if (negative) {
        e->u.literal = qv_int(u == ((uint64_t)1 << 63) ? INT64_MIN : -(int64_t)u);
    } else {
        if (u > (uint64_t)INT64_MAX) {
            char q[PARSER_QUOTE_SIZE_MAX_BYTES * 4 + 8];
            quote_token(p, t, q, sizeof q);
            fail_at(p, t, "Invalid input '%s': integer is too large", q);
        }
        e->u.literal = qv_int((int64_t)u);
    }
    return e;
}

static ast_expr *literal_float(parser *p, const token *t, bool negative) {
    ast_expr *e = new_expr(p, AST_LITERAL, t);
    e->u.literal = qv_double(negative ? -t->num.d : t->num.d);
    return e;
}

static ast_expr *literal_string(parser *p, const token *t) {
    QUIVER_ASSERT(t->type == TOK_STRING);
    ast_expr *e = new_expr(p, AST_LITERAL, t);
    char *m = palloc(p, t->len + 1);
    size_t n = t->len;
    if (t->has_escape) {
        const char *msg = NULL;
        size_t off = 0;
        long r = lexer_unescape(p->text + t->start, t->len, m, &msg, &off);
        if (r < 0) {
            /* position of the bad escape: same line unless the string spans lines */
            uint32_t line = t->line, col = t->column + 1;
            for (size_t i = 0; i < off; i++) {
                unsigned char c = (unsigned char)p->text[t->start + i];
                if (c == '\n') {
                    line++;
                    col = 1;
                } else if ((c & 0xC0) != 0x80) {
                    col++;
                }
            }
            size_t el = t->len - off < 6 ? t->len - off : 6;
            fail_pos(p, line, col, "Invalid input '%.*s': %s", (int)el, p->text + t->start + off, msg);
        }
        n = (size_t)r;
    } else {
        memcpy(m, p->text + t->start, n);
    }
    if (n > QUIVER_QUERY_LITERAL_STRING_SIZE_MAX_BYTES) {
        fail_limit(p, t->line, t->column, "ERR string literal longer than %u bytes (the limit)",
                   (unsigned)QUIVER_QUERY_LITERAL_STRING_SIZE_MAX_BYTES);
    }
    m[n] = '\0';
    e->u.literal = qv_string(m, (uint32_t)n);
    return e;
}

/* ---------------------------------------------------------------- */
/* Expressions                                                       */
/* ---------------------------------------------------------------- */

static ast_expr *parse_expr(parser *p);
static ast_expr *parse_map(parser *p);
static void parse_path_body(parser *p, ast_path *out);

static ast_expr *binary(parser *p, ast_op op, ast_expr *lhs, ast_expr *rhs, ast_pos at) {
    ast_expr *e = new_expr_pos(p, AST_BINARY, at);
    e->u.op.op = op;
    e->u.op.lhs = lhs;
    e->u.op.rhs = rhs;
    return e;
}

static ast_expr *unary(parser *p, ast_op op, ast_expr *operand, ast_pos at) {
    ast_expr *e = new_expr_pos(p, AST_UNARY, at);
    e->u.op.op = op;
    e->u.op.lhs = operand;
    return e;
}

/* With lx positioned just after a '(' token: does a node pattern start here
 * that makes this a pattern (predicate) rather than a parenthesised
 * expression?  See the file comment. */
static bool pattern_follows(lexer lx) {
    token t;
    if (lexer_next(&lx, &t) == TOK_ERROR) return false;
    if (t.type == TOK_RPAREN || t.type == TOK_COLON) return true;
    if (!tok_is_var(&t)) return false;
    if (lexer_next(&lx, &t) == TOK_ERROR) return false;
    while (t.type == TOK_COLON) {
        if (lexer_next(&lx, &t) == TOK_ERROR || !tok_is_name(&t)) return false;
        if (lexer_next(&lx, &t) == TOK_ERROR) return false;
    }
    if (t.type == TOK_LBRACE || t.type == TOK_PARAM) return true;
    if (t.type != TOK_RPAREN) return false;
    /* (a) or (a:L): a pattern only when a relationship follows */
    token t1, t2, t3;
    if (lexer_next(&lx, &t1) == TOK_ERROR) return false;
    if (lexer_next(&lx, &t2) == TOK_ERROR) return false;
    if (t1.type == TOK_MINUS) return t2.type == TOK_MINUS || t2.type == TOK_LBRACKET;
    if (t1.type == TOK_LT && t2.type == TOK_MINUS) {
        if (lexer_next(&lx, &t3) == TOK_ERROR) return false;
        return t3.type == TOK_MINUS || t3.type == TOK_LBRACKET;
    }
    return false;
}

/* A relationship pattern used as an expression; current token '('. */
__attribute__((noinline)) static ast_expr *parse_pattern_pred(parser *p) {
    token at = p->tok;
    ast_pattern *pat = pcalloc(p, sizeof *pat);
    pat->paths = pcalloc(p, sizeof *pat->paths);
    pat->path_count = 1;
    pat->paths[0].pos = tok_pos(&at);
    parse_path_body(p, &pat->paths[0]);
    if (pat->paths[0].node_count < 2) {
        fail_at(p, &at, "A pattern expression must contain at least one relationship");
    }
    ast_expr *e = new_expr(p, AST_PATTERN_PRED, &at);
    e->u.pattern.pattern = pat;
    return e;
}

/* A list literal whose items are all literals (scalars or folded lists)
 * becomes one literal holding the list: inline bulk data then costs one
 * 24-byte value per element, like a CYPHER parameter, and its items do not
 * count against the expression-node limit (while the list is open, its
 * literal items are p->pending).  Left as it is when the value would break
 * the value limits (the planner then reports them when it evaluates the
 * list).  pending: the items this list added to p->pending. */
static bool foldable_item(const ast_expr *it) { return it->kind == AST_LITERAL && it->u.literal.type != QV_MAP; }

static void fold_constant_list(parser *p, ast_expr *e, uint32_t pending, ast_pos pos) {
    QUIVER_ASSERT(e->kind == AST_LIST);
    QUIVER_ASSERT(p->pending >= pending);
    p->pending -= pending;
    uint32_t n = e->u.list.count;
    bool all = pending == n;
    for (uint32_t i = 0; i < n && all; i++) all = foldable_item(e->u.list.items[i]);
    if (!all) {
        check_exprs(p, pos);
        return;
    }
    qv_list *l = palloc(p, sizeof *l);
    memset(l, 0, sizeof *l);
    l->count = n;
    l->items = palloc(p, sizeof(qv_value) * (n ? n : 1));
    for (uint32_t i = 0; i < n; i++) l->items[i] = e->u.list.items[i]->u.literal;
    uint32_t depth;
    uint64_t elements;
    if (!qv_shape_of(l->items, n, &depth, &elements)) {
        check_exprs(p, pos);
        return;
    }
    l->depth = (uint8_t)depth;
    l->elements = (uint32_t)elements;
    QUIVER_ASSERT(p->exprs >= n);
    p->exprs -= n;
    e->kind = AST_LITERAL;
    memset(&e->u, 0, sizeof e->u);
    e->u.literal.type = QV_LIST;
    e->u.literal.u.list = l;
}

__attribute__((noinline)) static ast_expr *parse_list_or_comprehension(parser *p) {
    token at = p->tok;
    next(p); /* '[' */
    token t1, t2;
    t1 = p->tok;
    if (tok_is_var(&t1) && peek_tok(p, 1, &t2) == TOK_IDENT && t2.kw == KW_IN) {
        ast_expr *e = new_expr(p, AST_LIST_COMP, &at);
        e->u.comp.var = tok_name(p, &t1);
        next(p);
        next(p); /* IN */
        e->u.comp.list = parse_expr(p);
        if (accept_kw(p, KW_WHERE)) e->u.comp.where = parse_expr(p);
        if (accept(p, TOK_PIPE)) e->u.comp.map = parse_expr(p);
        expect(p, TOK_RBRACKET, "WHERE, '|' or ']'");
        return e;
    }
    ast_expr *e = new_expr(p, AST_LIST, &at);
    size_t mark = sc_mark(p);
    uint32_t count = 0;
    uint32_t pending = 0; /* literal items while every item so far is one */
    if (p->tok.type != TOK_RBRACKET) {
        for (;;) {
            ast_expr *item = parse_expr(p);
            sc_push(p, &item, sizeof item);
            if (pending == count && foldable_item(item)) {
                pending++;
                p->pending++;
            } else if (pending > 0 && pending == count) { /* no longer foldable: they count */
                p->pending -= pending;
                pending = 0;
                check_exprs(p, tok_pos(&at));
            }
            if (++count > QUIVER_QUERY_LITERAL_LIST_COUNT_MAX) {
                fail_limit(p, at.line, at.column, "ERR list literal with more than %u elements (the limit)",
                           (unsigned)QUIVER_QUERY_LITERAL_LIST_COUNT_MAX);
            }
            if (!accept(p, TOK_COMMA)) break;
        }
    }
    expect(p, TOK_RBRACKET, "',' or ']'");
    e->u.list.items = sc_finish(p, mark, sizeof(ast_expr *), &e->u.list.count);
    fold_constant_list(p, e, pending, tok_pos(&at));
    return e;
}

/* One key of a map literal: a property key name (keywords allowed). */
typedef struct map_entry {
    qv_str key;
    ast_expr *value;
} map_entry;

static void finish_map(parser *p, ast_expr *e, size_t mark) {
    uint32_t n;
    map_entry *entries = sc_finish(p, mark, sizeof(map_entry), &n);
    e->u.map.count = n;
    if (n > 0) {
        e->u.map.keys = palloc(p, n * sizeof(qv_str));
        e->u.map.values = palloc(p, n * sizeof(ast_expr *));
        for (uint32_t i = 0; i < n; i++) {
            e->u.map.keys[i] = entries[i].key;
            e->u.map.values[i] = entries[i].value;
        }
    }
}

__attribute__((noinline)) static ast_expr *parse_map(parser *p) {
    token at = p->tok;
    expect(p, TOK_LBRACE, "'{'");
    ast_expr *e = new_expr(p, AST_MAP, &at);
    size_t mark = sc_mark(p);
    uint32_t count = 0;
    if (p->tok.type != TOK_RBRACE) {
        for (;;) {
            map_entry me;
            me.key = expect_name(p, "a property key name");
            expect(p, TOK_COLON, "':'");
            me.value = parse_expr(p);
            sc_push(p, &me, sizeof me);
            if (++count > QUIVER_VALUE_MAP_COUNT_MAX) {
                fail_limit(p, at.line, at.column, "ERR map literal with more than %u entries (the limit)",
                           (unsigned)QUIVER_VALUE_MAP_COUNT_MAX);
            }
            if (!accept(p, TOK_COMMA)) break;
        }
    }
    expect(p, TOK_RBRACE, "',' or '}'");
    finish_map(p, e, mark);
    return e;
}

__attribute__((noinline)) static ast_expr *parse_case(parser *p) {
    token at = p->tok;
    next(p); /* CASE */
    ast_expr *e = new_expr(p, AST_CASE, &at);
    if (is_kw(p, KW_END) || is_kw(p, KW_ELSE)) fail_expected(p, "WHEN");
    if (!is_kw(p, KW_WHEN)) e->u.case_.subject = parse_expr(p);
    size_t mark = sc_mark(p);
    while (accept_kw(p, KW_WHEN)) {
        ast_expr *pair[2];
        pair[0] = parse_expr(p);
        expect_kw(p, KW_THEN, "THEN");
        pair[1] = parse_expr(p);
        sc_push(p, pair, sizeof pair);
    }
    uint32_t n = sc_count(p, mark, 2 * sizeof(ast_expr *));
    if (n == 0) fail_expected(p, "WHEN");
    if (accept_kw(p, KW_ELSE)) e->u.case_.otherwise = parse_expr(p);
    expect_kw(p, KW_END, "WHEN, ELSE or END");
    ast_expr **pairs = sc_finish(p, mark, 2 * sizeof(ast_expr *), &n);
    e->u.case_.count = n;
    e->u.case_.whens = palloc(p, n * sizeof(ast_expr *));
    e->u.case_.thens = palloc(p, n * sizeof(ast_expr *));
    for (uint32_t i = 0; i < n; i++) {
        e->u.case_.whens[i] = pairs[2 * i];
        e->u.case_.thens[i] = pairs[2 * i + 1];
    }
    return e;
}

/* any/all/none/single(x IN list WHERE pred); current token is the name. */
__attribute__((noinline)) static ast_expr *parse_quantifier(parser *p, ast_quantifier q) {
    token at = p->tok;
    next(p); /* name */
    next(p); /* '(' */
    ast_expr *e = new_expr(p, AST_QUANTIFIER, &at);
    e->u.comp.quantifier = q;
    e->u.comp.var = expect_var(p, "a variable");
    expect_kw(p, KW_IN, "IN");
    e->u.comp.list = parse_expr(p);
    if (accept_kw(p, KW_WHERE)) e->u.comp.where = parse_expr(p);
    expect(p, TOK_RPAREN, "WHERE or ')'");
    return e;
}

/* name(args); current token is the name, next '('. */
/* Parts of a dotted name a.b.c followed by '(' (a namespaced function such
 * as FalkorDB's), or 0 when the current name is not one.  Peeks only. */
__attribute__((noinline)) static uint32_t namespaced_call_parts(const parser *p) {
    lexer lx = p->lx;
    token t;
    uint32_t parts = 1;
    if (lexer_next(&lx, &t) != TOK_DOT) return 0;
    for (;;) {
        if (lexer_next(&lx, &t) == TOK_ERROR || !tok_is_name(&t)) return 0;
        parts++;
        tok_type n = lexer_next(&lx, &t);
        if (n == TOK_LPAREN) return parts;
        if (n != TOK_DOT || parts >= 16) return 0;
    }
}

/* name(args) or ns.name(args) with `parts` dotted parts; current token is
 * the first part. */
__attribute__((noinline)) static ast_expr *parse_function_parts(parser *p, uint32_t parts) {
    token at = p->tok;
    ast_expr *e = new_expr(p, AST_FUNC, &at);
    e->u.func.name = tok_name(p, &at);
    next(p); /* name */
    for (uint32_t i = 1; i < parts; i++) {
        next(p); /* '.' */
        qv_str part = tok_name(p, &p->tok);
        next(p);
        size_t n = (size_t)e->u.func.name.len + 1 + part.len;
        char *joined = palloc(p, n + 1);
        memcpy(joined, e->u.func.name.ptr, e->u.func.name.len);
        joined[e->u.func.name.len] = '.';
        memcpy(joined + e->u.func.name.len + 1, part.ptr, part.len);
        joined[n] = '\0';
        e->u.func.name.ptr = joined;
        e->u.func.name.len = (uint32_t)n;
    }
    next(p); /* '(' */
    if (p->tok.type == TOK_STAR) {
        if (parts != 1 || !tok_is_word(p, &at, "count")) fail_expected(p, "an expression or ')'");
        next(p);
        e->u.func.star = true;
        expect(p, TOK_RPAREN, "')'");
        return e;
    }
    if (accept_kw(p, KW_DISTINCT)) e->u.func.distinct = true;
    size_t mark = sc_mark(p);
    if (p->tok.type != TOK_RPAREN) {
        for (;;) {
            ast_expr *arg = parse_expr(p);
            sc_push(p, &arg, sizeof arg);
            if (!accept(p, TOK_COMMA)) break;
        }
    }
    expect(p, TOK_RPAREN, "',' or ')'");
    e->u.func.args = sc_finish(p, mark, sizeof(ast_expr *), &e->u.func.arg_count);
    return e;
}

static ast_expr *parse_function(parser *p) { return parse_function_parts(p, 1); }

/* What "name(" with a plain name starts.  Only decides (peeking); the
 * caller parses, so these look-ahead tokens are not on the stack while the
 * arguments are parsed recursively. */
typedef enum name_call_kind {
    CALL_FUNCTION,
    CALL_ANY,
    CALL_NONE,
    CALL_SINGLE,
    CALL_EXISTS_PATTERN,
} name_call_kind;

__attribute__((noinline)) static name_call_kind classify_name_call(const parser *p) {
    const token *t = &p->tok;
    /* quantifiers need "(x IN": otherwise any(...) is a function */
    token t2, t3;
    peek_tok(p, 2, &t2);
    bool quant = tok_is_var(&t2) && peek_tok(p, 3, &t3) == TOK_IDENT && t3.kw == KW_IN;
    if (quant && tok_is_word(p, t, "any")) return CALL_ANY;
    if (quant && tok_is_word(p, t, "none")) return CALL_NONE;
    if (quant && tok_is_word(p, t, "single")) return CALL_SINGLE;
    if (tok_is_word(p, t, "exists")) {
        /* exists((a)-->(b)): the pattern form is a pattern predicate */
        lexer lx = p->lx;
        token lp, inner;
        lexer_next(&lx, &lp); /* '(' */
        if (lexer_next(&lx, &inner) == TOK_LPAREN && pattern_follows(lx)) return CALL_EXISTS_PATTERN;
    }
    return CALL_FUNCTION;
}

static ast_expr *parse_name_call(parser *p) {
    switch (classify_name_call(p)) {
    case CALL_ANY: return parse_quantifier(p, AST_Q_ANY);
    case CALL_NONE: return parse_quantifier(p, AST_Q_NONE);
    case CALL_SINGLE: return parse_quantifier(p, AST_Q_SINGLE);
    case CALL_EXISTS_PATTERN: {
        next(p); /* exists */
        next(p); /* '(' */
        ast_expr *e = parse_pattern_pred(p);
        expect(p, TOK_RPAREN, "')'");
        return e;
    }
    case CALL_FUNCTION: break;
    }
    return parse_function(p);
}

/* An atom starting with a name: literal keyword, CASE, quantifier,
 * exists(pattern), function call or variable.  Out of line to keep
 * parse_atom's frame (live once per nesting level) small. */
__attribute__((noinline)) static ast_expr *parse_name_atom(parser *p) {
    token t = p->tok;
    token t1;
    tok_type n1 = peek_tok(p, 1, &t1);
    if (t.type == TOK_IDENT) {
        switch (t.kw) {
        case KW_TRUE:
        case KW_FALSE: {
            next(p);
            ast_expr *e = new_expr(p, AST_LITERAL, &t);
            e->u.literal = qv_bool(t.kw == KW_TRUE);
            return e;
        }
        case KW_NULL: {
            next(p);
            ast_expr *e = new_expr(p, AST_LITERAL, &t);
            e->u.literal = qv_null();
            return e;
        }
        case KW_CASE:
            return parse_case(p);
        case KW_ALL:
            if (n1 == TOK_LPAREN) return parse_quantifier(p, AST_Q_ALL);
            break;
        default:
            break;
        }
        if (n1 == TOK_LPAREN && t.kw == KW_NONE) return parse_name_call(p);
        if (kw_reserved(t.kw)) fail_expected(p, "an expression");
        if (n1 == TOK_LPAREN) return parse_function(p);
    } else if (n1 == TOK_LPAREN) {
        return parse_function(p);
    }
    if (n1 == TOK_DOT) {
        uint32_t parts = namespaced_call_parts(p);
        if (parts > 0) return parse_function_parts(p, parts);
    }
    ast_expr *e = new_expr(p, AST_VAR, &t);
    e->u.name = tok_name(p, &t);
    next(p);
    return e;
}

static ast_expr *parse_atom(parser *p) {
    token t = p->tok;
    switch (t.type) {
    case TOK_INT:
        next(p);
        return literal_int(p, &t, false);
    case TOK_FLOAT:
        next(p);
        return literal_float(p, &t, false);
    case TOK_STRING:
        next(p);
        return literal_string(p, &t);
    case TOK_PARAM: {
        ast_expr *e = new_expr(p, AST_PARAM, &t);
        e->u.name = tok_name(p, &t);
        next(p);
        return e;
    }
    case TOK_LBRACKET:
        return parse_list_or_comprehension(p);
    case TOK_LBRACE:
        return parse_map(p);
    case TOK_LPAREN: {
        if (pattern_follows(p->lx)) return parse_pattern_pred(p);
        next(p);
        ast_expr *e = parse_expr(p);
        expect(p, TOK_RPAREN, "')'");
        return e;
    }
    case TOK_IDENT:
    case TOK_QIDENT:
        return parse_name_atom(p);
    default:
        fail_expected(p, "an expression");
    }
}

/* Postfix operators after an atom: .key  [i]  [lo..hi]  :Label. */
static ast_expr *parse_postfix_ops(parser *p, ast_expr *e) {
    uint32_t saved = p->depth;
    for (;;) {
        tok_at at = cur_at(p);
        if (at.type == TOK_DOT || at.type == TOK_LBRACKET || at.type == TOK_COLON) ENTER(p);
        if (at.type == TOK_DOT) {
            next(p);
            ast_expr *pe = new_expr_pos(p, AST_PROP, at.pos);
            pe->u.prop.operand = e;
            pe->u.prop.key = expect_name(p, "a property key name");
            e = pe;
        } else if (at.type == TOK_LBRACKET) {
            next(p);
            ast_expr *lo = NULL, *hi = NULL;
            if (p->tok.type != TOK_DOTDOT) lo = parse_expr(p);
            if (accept(p, TOK_DOTDOT)) {
                if (p->tok.type != TOK_RBRACKET) hi = parse_expr(p);
                expect(p, TOK_RBRACKET, "']'");
                ast_expr *se = new_expr_pos(p, AST_SLICE, at.pos);
                se->u.index.operand = e;
                se->u.index.lo = lo;
                se->u.index.hi = hi;
                e = se;
            } else {
                expect(p, TOK_RBRACKET, "'..' or ']'");
                ast_expr *ie = new_expr_pos(p, AST_INDEX, at.pos);
                ie->u.index.operand = e;
                ie->u.index.index = lo;
                e = ie;
            }
        } else if (at.type == TOK_COLON) {
            size_t mark = sc_mark(p);
            while (accept(p, TOK_COLON)) {
                qv_str l = expect_name(p, "a label name");
                sc_push(p, &l, sizeof l);
            }
            ast_expr *le = new_expr_pos(p, AST_HAS_LABELS, at.pos);
            le->u.has_labels.operand = e;
            le->u.has_labels.labels = sc_finish(p, mark, sizeof(qv_str), &le->u.has_labels.count);
            e = le;
        } else {
            p->depth = saved;
            return e;
        }
    }
}

static ast_expr *parse_postfix(parser *p) {
    return parse_postfix_ops(p, parse_atom(p));
}

/* -<number>, folded so that -9223372036854775808 is representable; the
 * current token is the number. */
__attribute__((noinline)) static ast_expr *negative_literal(parser *p, ast_pos pos) {
    token num = p->tok;
    next(p);
    ast_expr *lit = num.type == TOK_INT ? literal_int(p, &num, true) : literal_float(p, &num, true);
    lit->pos = pos;
    return lit;
}

static ast_expr *parse_unary(parser *p) {
    tok_at at = cur_at(p);
    if (at.type != TOK_MINUS && at.type != TOK_PLUS) return parse_postfix(p);
    next(p);
    if (at.type == TOK_MINUS && (p->tok.type == TOK_INT || p->tok.type == TOK_FLOAT)) {
        return parse_postfix_ops(p, negative_literal(p, at.pos));
    }
    ENTER(p);
    ast_expr *operand = parse_unary(p);
    LEAVE(p);
    return unary(p, at.type == TOK_MINUS ? AST_OP_NEG : AST_OP_POS, operand, at.pos);
}

static ast_expr *parse_pow(parser *p) {
    uint32_t saved = p->depth;
    ast_expr *e = parse_unary(p);
    while (p->tok.type == TOK_CARET) {
        tok_at at = cur_at(p);
        ENTER(p);
        next(p);
        e = binary(p, AST_OP_POW, e, parse_unary(p), at.pos);
    }
    p->depth = saved;
    return e;
}

static ast_expr *parse_mul(parser *p) {
    uint32_t saved = p->depth;
    ast_expr *e = parse_pow(p);
    for (;;) {
        tok_at at = cur_at(p);
        ast_op op;
        if (at.type == TOK_STAR) op = AST_OP_MUL;
        else if (at.type == TOK_SLASH) op = AST_OP_DIV;
        else if (at.type == TOK_PERCENT) op = AST_OP_MOD;
        else {
            p->depth = saved;
            return e;
        }
        ENTER(p);
        next(p);
        e = binary(p, op, e, parse_pow(p), at.pos);
    }
}

static ast_expr *parse_add(parser *p) {
    uint32_t saved = p->depth;
    ast_expr *e = parse_mul(p);
    for (;;) {
        tok_at at = cur_at(p);
        ast_op op;
        if (at.type == TOK_PLUS) op = AST_OP_ADD;
        else if (at.type == TOK_MINUS) op = AST_OP_SUB;
        else {
            p->depth = saved;
            return e;
        }
        ENTER(p);
        next(p);
        e = binary(p, op, e, parse_mul(p), at.pos);
    }
}

/* STARTS WITH, ENDS WITH, CONTAINS, IN, =~, IS [NOT] NULL. */
static ast_expr *parse_string_list_pred(parser *p) {
    uint32_t saved = p->depth;
    ast_expr *e = parse_add(p);
    for (;;) {
        tok_at at = cur_at(p);
        ast_op op;
        ENTER(p);
        if (at.type == TOK_REGEX) {
            op = AST_OP_REGEX;
            next(p);
        } else if (at_is_kw(&at, KW_IN)) {
            op = AST_OP_IN;
            next(p);
        } else if (at_is_kw(&at, KW_CONTAINS)) {
            op = AST_OP_CONTAINS;
            next(p);
        } else if (at_is_kw(&at, KW_STARTS)) {
            next(p);
            expect_kw(p, KW_WITH, "WITH");
            op = AST_OP_STARTS_WITH;
        } else if (at_is_kw(&at, KW_ENDS)) {
            next(p);
            expect_kw(p, KW_WITH, "WITH");
            op = AST_OP_ENDS_WITH;
        } else if (at_is_kw(&at, KW_IS)) {
            next(p);
            bool negated = accept_kw(p, KW_NOT);
            expect_kw(p, KW_NULL, negated ? "NULL" : "NOT or NULL");
            ast_expr *n = new_expr_pos(p, negated ? AST_IS_NOT_NULL : AST_IS_NULL, at.pos);
            n->u.is_null.operand = e;
            e = n;
            continue;
        } else {
            p->depth = saved;
            return e;
        }
        e = binary(p, op, e, parse_add(p), at.pos);
    }
}

static bool comparison_op(tok_type t, ast_op *op) {
    switch (t) {
    case TOK_EQ: *op = AST_OP_EQ; return true;
    case TOK_NE: *op = AST_OP_NE; return true;
    case TOK_LT: *op = AST_OP_LT; return true;
    case TOK_LE: *op = AST_OP_LE; return true;
    case TOK_GT: *op = AST_OP_GT; return true;
    case TOK_GE: *op = AST_OP_GE; return true;
    default: return false;
    }
}

/* a < b <= c is (a < b) AND (b <= c), as openCypher 9 defines chained
 * comparisons; the middle operand's subtree is shared (the tree is
 * read-only). */
static ast_expr *parse_comparison(parser *p) {
    uint32_t saved = p->depth;
    ast_expr *lhs = parse_string_list_pred(p);
    ast_expr *result = NULL;
    ast_op op;
    while (comparison_op(p->tok.type, &op)) {
        tok_at at = cur_at(p);
        ENTER(p);
        next(p);
        ast_expr *rhs = parse_string_list_pred(p);
        ast_expr *cmp = binary(p, op, lhs, rhs, at.pos);
        result = result == NULL ? cmp : binary(p, AST_OP_AND, result, cmp, at.pos);
        lhs = rhs;
    }
    p->depth = saved;
    return result == NULL ? lhs : result;
}

static ast_expr *parse_not(parser *p) {
    if (!is_kw(p, KW_NOT)) return parse_comparison(p);
    tok_at at = cur_at(p);
    next(p);
    ENTER(p);
    ast_expr *operand = parse_not(p);
    LEAVE(p);
    return unary(p, AST_OP_NOT, operand, at.pos);
}

static ast_expr *parse_and(parser *p) {
    uint32_t saved = p->depth;
    ast_expr *e = parse_not(p);
    while (is_kw(p, KW_AND)) {
        tok_at at = cur_at(p);
        ENTER(p);
        next(p);
        e = binary(p, AST_OP_AND, e, parse_not(p), at.pos);
    }
    p->depth = saved;
    return e;
}

static ast_expr *parse_xor(parser *p) {
    uint32_t saved = p->depth;
    ast_expr *e = parse_and(p);
    while (is_kw(p, KW_XOR)) {
        tok_at at = cur_at(p);
        ENTER(p);
        next(p);
        e = binary(p, AST_OP_XOR, e, parse_and(p), at.pos);
    }
    p->depth = saved;
    return e;
}

static ast_expr *parse_expr(parser *p) {
    uint32_t saved = p->depth;
    ENTER(p);
    ast_expr *e = parse_xor(p);
    while (is_kw(p, KW_OR)) {
        tok_at at = cur_at(p);
        ENTER(p);
        next(p);
        e = binary(p, AST_OP_OR, e, parse_xor(p), at.pos);
    }
    p->depth = saved;
    return e;
}

/* ---------------------------------------------------------------- */
/* Constant values (the CYPHER name=value prefix)                    */
/* ---------------------------------------------------------------- */

/* Map keys must be unique in a qv_map (value.h): a later duplicate replaces
 * the earlier value in place, as {a: 1, a: 2} evaluates to {a: 2}.  Small
 * maps use a linear scan; larger ones a temporary open-addressing table so
 * the check stays linear. */
static uint64_t key_hash(qv_str k) { return query_name_hash(k.ptr, k.len); }

static uint32_t dedupe_map(parser *p, qv_str *keys, qv_value *values, uint32_t n) {
    if (n < 2) return n;
    uint32_t out = 0;
    if (n <= 32) {
        for (uint32_t i = 0; i < n; i++) {
            uint32_t j = 0;
            while (j < out && !(keys[j].len == keys[i].len && memcmp(keys[j].ptr, keys[i].ptr, keys[i].len) == 0)) j++;
            if (j < out) {
                values[j] = values[i];
            } else {
                keys[out] = keys[i];
                values[out] = values[i];
                out++;
            }
        }
        return out;
    }
    size_t cap = 64;
    while (cap < (size_t)n * 2) cap *= 2;
    uint32_t *slots = malloc(cap * sizeof *slots); /* index + 1; 0 empty */
    if (slots == NULL) fail_malloc(p);
    memset(slots, 0, cap * sizeof *slots);
    for (uint32_t i = 0; i < n; i++) {
        size_t h = (size_t)key_hash(keys[i]) & (cap - 1);
        for (;;) {
            uint32_t s = slots[h];
            if (s == 0) {
                keys[out] = keys[i];
                values[out] = values[i];
                slots[h] = ++out;
                break;
            }
            qv_str o = keys[s - 1];
            if (o.len == keys[i].len && memcmp(o.ptr, keys[i].ptr, o.len) == 0) {
                values[s - 1] = values[i];
                break;
            }
            h = (h + 1) & (cap - 1);
        }
    }
    free(slots);
    return out;
}

typedef struct const_entry {
    qv_str key;
    qv_value value;
} const_entry;

/* Depth and element count of a constant list or map (value.h); over the
 * value limits is a limit error. */
static void const_shape(parser *p, const token *t, const qv_value *items, uint32_t n, uint8_t *depth,
                        uint32_t *elements) {
    uint32_t d;
    uint64_t e;
    if (!qv_shape_of(items, n, &d, &e)) {
        if (d > QUIVER_VALUE_DEPTH_MAX)
            fail_limit(p, t->line, t->column, "ERR value nested deeper than %u levels (the limit)",
                       (unsigned)QUIVER_VALUE_DEPTH_MAX);
        fail_limit(p, t->line, t->column, "ERR value with more than %u elements (the limit)",
                   (unsigned)QUIVER_VALUE_ELEMENTS_COUNT_MAX);
    }
    *depth = (uint8_t)d;
    *elements = (uint32_t)e;
}

/* A literal, a negative number, or a list/map of constants, folded into
 * one qv_value in the arena.  A tight path of its own because import
 * batches put tens of MB here: one 24-byte qv_value per element instead of
 * an AST node per element, and the executor gets the value ready-made. */
static void parse_const_value(parser *p, qv_value *out) {
    token t = p->tok;
    switch (t.type) {
    case TOK_INT:
        next(p);
        if (t.num.u > (uint64_t)INT64_MAX) (void)literal_int(p, &t, false); /* reports */
        *out = qv_int((int64_t)t.num.u);
        return;
    case TOK_FLOAT:
        next(p);
        *out = qv_double(t.num.d);
        return;
    case TOK_STRING:
        next(p);
        *out = literal_string(p, &t)->u.literal;
        return;
    case TOK_MINUS:
    case TOK_PLUS: {
        next(p);
        token num = p->tok;
        if (num.type != TOK_INT && num.type != TOK_FLOAT) fail_expected(p, "a number");
        next(p);
        bool neg = t.type == TOK_MINUS;
        if (num.type == TOK_FLOAT) {
            *out = qv_double(neg ? -num.num.d : num.num.d);
        } else if (neg) {
            *out = qv_int(num.num.u == ((uint64_t)1 << 63) ? INT64_MIN : -(int64_t)num.num.u);
        } else {
            if (num.num.u > (uint64_t)INT64_MAX) (void)literal_int(p, &num, false); /* reports */
            *out = qv_int((int64_t)num.num.u);
        }
        return;
    }
    case TOK_LBRACKET: {
        ENTER(p);
        next(p);
        size_t mark = sc_mark(p);
        uint32_t count = 0;
        if (p->tok.type != TOK_RBRACKET) {
            for (;;) {
                qv_value item;
                parse_const_value(p, &item);
                sc_push(p, &item, sizeof item);
                if (++count > QUIVER_QUERY_LITERAL_LIST_COUNT_MAX) {
                    fail_limit(p, t.line, t.column, "ERR list literal with more than %u elements (the limit)",
                               (unsigned)QUIVER_QUERY_LITERAL_LIST_COUNT_MAX);
                }
                if (p->tok.type != TOK_COMMA) break;
                next(p);
            }
        }
        expect(p, TOK_RBRACKET, "',' or ']'");
        qv_list *l = palloc(p, sizeof *l);
        memset(l, 0, sizeof *l);
        l->items = sc_finish(p, mark, sizeof(qv_value), &l->count);
        const_shape(p, &t, l->items, l->count, &l->depth, &l->elements);
        out->type = QV_LIST;
        out->u.list = l;
        LEAVE(p);
        return;
    }
    case TOK_LBRACE: {
        ENTER(p);
        next(p);
        size_t mark = sc_mark(p);
        uint32_t count = 0;
        if (p->tok.type != TOK_RBRACE) {
            for (;;) {
                const_entry ce;
                ce.key = expect_name(p, "a property key name");
                expect(p, TOK_COLON, "':'");
                parse_const_value(p, &ce.value);
                sc_push(p, &ce, sizeof ce);
                if (++count > QUIVER_VALUE_MAP_COUNT_MAX) {
                    fail_limit(p, t.line, t.column, "ERR map literal with more than %u entries (the limit)",
                               (unsigned)QUIVER_VALUE_MAP_COUNT_MAX);
                }
                if (p->tok.type != TOK_COMMA) break;
                next(p);
            }
        }
        expect(p, TOK_RBRACE, "',' or '}'");
        uint32_t n;
        const_entry *ents = sc_finish(p, mark, sizeof(const_entry), &n);
        qv_map *m = palloc(p, sizeof *m);
        memset(m, 0, sizeof *m);
        m->keys = n ? palloc(p, n * sizeof(qv_str)) : NULL;
        m->values = n ? palloc(p, n * sizeof(qv_value)) : NULL;
        for (uint32_t i = 0; i < n; i++) {
            m->keys[i] = ents[i].key;
            m->values[i] = ents[i].value;
        }
        m->count = dedupe_map(p, m->keys, m->values, n);
        const_shape(p, &t, m->values, m->count, &m->depth, &m->elements);
        out->type = QV_MAP;
        out->u.map = m;
        LEAVE(p);
        return;
    }
    case TOK_IDENT:
        if (t.kw == KW_TRUE || t.kw == KW_FALSE || t.kw == KW_NULL) {
            next(p);
            *out = t.kw == KW_NULL ? qv_null() : qv_bool(t.kw == KW_TRUE);
            return;
        }
        break;
    default:
        break;
    }
    fail_expected(p, "a literal value (number, string, boolean, null, list or map)");
}

static ast_expr *parse_const(parser *p) {
    ast_expr *e = new_expr(p, AST_LITERAL, &p->tok);
    parse_const_value(p, &e->u.literal);
    return e;
}

/* ---------------------------------------------------------------- */
/* Patterns                                                          */
/* ---------------------------------------------------------------- */

/* Properties after labels: a map literal or a parameter, or nothing. */
static ast_expr *parse_pattern_props(parser *p) {
    if (p->tok.type == TOK_LBRACE) return parse_map(p);
    if (p->tok.type == TOK_PARAM) {
        ast_expr *e = new_expr(p, AST_PARAM, &p->tok);
        e->u.name = tok_name(p, &p->tok);
        next(p);
        return e;
    }
    return NULL;
}

static void parse_node_pat(parser *p, ast_node_pat *out) {
    memset(out, 0, sizeof *out);
    out->pos = tok_pos(&p->tok);
    expect(p, TOK_LPAREN, "'('");
    if (tok_is_var(&p->tok)) {
        out->var = tok_name(p, &p->tok);
        next(p);
    }
    size_t mark = sc_mark(p);
    while (accept(p, TOK_COLON)) {
        qv_str l = expect_name(p, "a label name");
        sc_push(p, &l, sizeof l);
        if (sc_count(p, mark, sizeof l) > QUIVER_LABELS_PER_NODE_COUNT_MAX) {
            fail_at(p, &p->tok, "Too many labels on one node (the limit is %d)",
                    QUIVER_LABELS_PER_NODE_COUNT_MAX);
        }
    }
    out->labels = sc_finish(p, mark, sizeof(qv_str), &out->label_count);
    out->props = parse_pattern_props(p);
    expect(p, TOK_RPAREN,
           out->props != NULL ? "')'"
           : out->label_count > 0 ? "a label, '{', a parameter or ')'"
           : out->var.len > 0     ? "a label, '{', a parameter or ')'"
                                  : "a variable, a label, '{', a parameter or ')'");
}

static uint32_t parse_hops(parser *p) {
    token t = p->tok;
    next(p);
    if (t.num.u > PARSER_HOPS_MAX) fail_at(p, &t, "Invalid input: the number of hops is too large");
    return (uint32_t)t.num.u;
}

static void parse_rel_pat(parser *p, ast_rel_pat *out) {
    memset(out, 0, sizeof *out);
    out->pos = tok_pos(&p->tok);
    bool left = accept(p, TOK_LT);
    expect(p, TOK_MINUS, "'-'");
    if (accept(p, TOK_LBRACKET)) {
        if (tok_is_var(&p->tok)) {
            out->var = tok_name(p, &p->tok);
            next(p);
        }
        if (p->tok.type == TOK_COLON) {
            size_t mark = sc_mark(p);
            next(p);
            for (;;) {
                qv_str ty = expect_name(p, "a relationship type name");
                sc_push(p, &ty, sizeof ty);
                if (!accept(p, TOK_PIPE)) break;
                accept(p, TOK_COLON); /* [:A|:B] as well as [:A|B] */
            }
            out->types = sc_finish(p, mark, sizeof(qv_str), &out->type_count);
        }
        if (p->tok.type == TOK_STAR) {
            token star = p->tok;
            next(p);
            out->varlen = true;
            out->min_hops = 1;
            out->max_hops = UINT32_MAX;
            if (p->tok.type == TOK_INT) {
                out->min_hops = parse_hops(p);
                if (accept(p, TOK_DOTDOT)) {
                    if (p->tok.type == TOK_INT) out->max_hops = parse_hops(p);
                } else {
                    out->max_hops = out->min_hops;
                }
            } else if (accept(p, TOK_DOTDOT)) {
                /* openCypher 9 RangeLiteral: both bounds optional, "*.." is "*" */
                if (p->tok.type == TOK_INT) out->max_hops = parse_hops(p);
            }
            if (out->min_hops > out->max_hops) {
                fail_at(p, &star,
                        "Invalid variable-length relationship: the minimum number of hops (%u) is "
                        "greater than the maximum (%u)",
                        out->min_hops, out->max_hops);
            }
        }
        out->props = parse_pattern_props(p);
        expect(p, TOK_RBRACKET,
               out->props != NULL ? "']'" : out->varlen ? "'{', a parameter or ']'"
                                                        : "a type, '*', '{', a parameter or ']'");
    }
    expect(p, TOK_MINUS, "'-'");
    bool right = accept(p, TOK_GT);
    if (!out->varlen) {
        /* a fixed-length relationship is one hop; filled so readers may use
         * min/max uniformly */
        out->min_hops = 1;
        out->max_hops = 1;
    }
    out->dir = (left && !right) ? AST_DIR_LEFT : (right && !left) ? AST_DIR_RIGHT : AST_DIR_BOTH;
}

typedef struct path_step {
    ast_node_pat node;
    ast_rel_pat rel; /* the relationship after node (unused for the last) */
} path_step;

/* node (rel node)*: out->nodes, rels, node_count; pos and var untouched. */
static void parse_path_body(parser *p, ast_path *out) {
    size_t mark = sc_mark(p);
    path_step step;
    memset(&step, 0, sizeof step);
    ENTER(p);
    token first = p->tok;
    uint32_t rels = 0;
    parse_node_pat(p, &step.node);
    while (p->tok.type == TOK_MINUS || p->tok.type == TOK_LT) {
        if (++rels > QUIVER_QUERY_PATH_RELS_COUNT_MAX)
            fail_limit(p, first.line, first.column, "ERR path pattern with more than %u relationships (the limit)",
                       (unsigned)QUIVER_QUERY_PATH_RELS_COUNT_MAX);
        parse_rel_pat(p, &step.rel);
        sc_push(p, &step, sizeof step);
        memset(&step, 0, sizeof step);
        if (p->tok.type != TOK_LPAREN) fail_expected(p, "'('");
        parse_node_pat(p, &step.node);
    }
    sc_push(p, &step, sizeof step);
    LEAVE(p);
    uint32_t n;
    path_step *steps = sc_finish(p, mark, sizeof(path_step), &n);
    QUIVER_ASSERT(n >= 1);
    out->node_count = n;
    out->nodes = palloc(p, n * sizeof(ast_node_pat));
    out->rels = n > 1 ? palloc(p, (n - 1) * sizeof(ast_rel_pat)) : NULL;
    for (uint32_t i = 0; i < n; i++) {
        out->nodes[i] = steps[i].node;
        if (i + 1 < n) out->rels[i] = steps[i].rel;
    }
}

/* [var =] (shortestPath(...) | allShortestPaths(...) | node (rel node)*). */
static void parse_path(parser *p, ast_path *out) {
    memset(out, 0, sizeof *out);
    out->pos = tok_pos(&p->tok);
    if (tok_is_var(&p->tok) && peek_tok(p, 1, NULL) == TOK_EQ) {
        out->var = tok_name(p, &p->tok);
        next(p);
        next(p);
    }
    if (p->tok.type == TOK_IDENT && peek_tok(p, 1, NULL) == TOK_LPAREN) {
        bool shortest = tok_is_word(p, &p->tok, "shortestpath");
        bool all = tok_is_word(p, &p->tok, "allshortestpaths");
        if (shortest || all) {
            next(p);
            next(p);
            parse_path_body(p, out);
            expect(p, TOK_RPAREN, "')'");
            out->shortest = shortest;
            out->all_shortest = all;
            return;
        }
    }
    if (p->tok.type != TOK_LPAREN) fail_expected(p, "'('");
    parse_path_body(p, out);
}

/* Comma-separated paths, at most parts_max of them (clause names the
 * clause for the limit's message). */
static void parse_pattern(parser *p, ast_pattern *out, uint32_t parts_max, const char *clause) {
    size_t mark = sc_mark(p);
    token first = p->tok;
    uint32_t parts = 0;
    for (;;) {
        if (++parts > parts_max)
            fail_limit(p, first.line, first.column, "ERR %s pattern with more than %u parts (the limit)", clause,
                       (unsigned)parts_max);
        ast_path path;
        parse_path(p, &path);
        sc_push(p, &path, sizeof path);
        if (!accept(p, TOK_COMMA)) break;
    }
    out->paths = sc_finish(p, mark, sizeof(ast_path), &out->path_count);
}

/* CREATE and MERGE create what they cannot find: each relationship needs
 * exactly one type and a direction, and a fixed length. */
static void check_creatable_path(parser *p, const ast_path *path, const char *clause) {
    if (path->shortest || path->all_shortest) {
        fail_pos(p, path->pos.line, path->pos.column, "%s cannot be used with %s", clause,
                 path->shortest ? "shortestPath" : "allShortestPaths");
    }
    for (uint32_t i = 0; i + 1 < path->node_count; i++) {
        const ast_rel_pat *r = &path->rels[i];
        if (r->type_count != 1) {
            fail_pos(p, r->pos.line, r->pos.column,
                     "Exactly one relationship type must be specified for %s", clause);
        }
        if (r->dir == AST_DIR_BOTH) {
            fail_pos(p, r->pos.line, r->pos.column,
                     "Only directed relationships are supported in %s", clause);
        }
        if (r->varlen) {
            fail_pos(p, r->pos.line, r->pos.column,
                     "Variable length relationships cannot be used in %s", clause);
        }
    }
}

/* ---------------------------------------------------------------- */
/* Clauses                                                           */
/* ---------------------------------------------------------------- */

static void parse_set_item(parser *p, ast_set_item *out) {
    memset(out, 0, sizeof *out);
    token at = p->tok;
    out->pos = tok_pos(&at);
    if (!tok_is_var(&at)) fail_expected(p, "a variable");
    ast_expr *target = parse_postfix(p);
    if (p->tok.type == TOK_EQ) {
        next(p);
        if (target->kind == AST_PROP) {
            out->kind = AST_SET_PROP;
        } else if (target->kind == AST_VAR) {
            out->kind = AST_SET_REPLACE;
        } else {
            fail_at(p, &at, "Invalid input: SET expects a property (n.key = value) or a variable "
                            "(n = map)");
        }
        out->target = target;
        out->value = parse_expr(p);
    } else if (p->tok.type == TOK_PLUSEQ) {
        if (target->kind != AST_VAR) fail_at(p, &at, "Invalid input: '+=' needs a variable on its left");
        next(p);
        out->kind = AST_SET_MERGE;
        out->target = target;
        out->value = parse_expr(p);
    } else if (target->kind == AST_HAS_LABELS && target->u.has_labels.operand->kind == AST_VAR) {
        out->kind = AST_SET_LABELS;
        out->target = target->u.has_labels.operand;
        out->label_count = target->u.has_labels.count;
        out->labels = target->u.has_labels.labels;
    } else {
        fail_expected(p, target->kind == AST_VAR ? "'=', '+=' or ':'" : "'='");
    }
}

/* SET items, pushed as ast_set_item on the scratch stack. */
static void parse_set_items(parser *p) {
    for (;;) {
        ast_set_item it;
        parse_set_item(p, &it);
        sc_push(p, &it, sizeof it);
        if (!accept(p, TOK_COMMA)) break;
    }
}

static void parse_remove(parser *p, ast_clause *c) {
    size_t mark = sc_mark(p);
    for (;;) {
        ast_remove_item it;
        memset(&it, 0, sizeof it);
        token at = p->tok;
        it.pos = tok_pos(&at);
        if (!tok_is_var(&at)) fail_expected(p, "a variable");
        ast_expr *target = parse_postfix(p);
        if (target->kind == AST_PROP) {
            it.kind = AST_REMOVE_PROP;
            it.target = target;
        } else if (target->kind == AST_HAS_LABELS && target->u.has_labels.operand->kind == AST_VAR) {
            it.kind = AST_REMOVE_LABELS;
            it.target = target->u.has_labels.operand;
            it.label_count = target->u.has_labels.count;
            it.labels = target->u.has_labels.labels;
        } else {
            fail_expected(p, "'.' or ':'");
        }
        sc_push(p, &it, sizeof it);
        if (!accept(p, TOK_COMMA)) break;
    }
    c->u.remove.items = sc_finish(p, mark, sizeof(ast_remove_item), &c->u.remove.count);
}

typedef struct merge_action {
    bool on_create;
    ast_set_item item;
} merge_action;

static void parse_merge(parser *p, ast_clause *c) {
    parse_path(p, &c->u.merge.path);
    check_creatable_path(p, &c->u.merge.path, "MERGE");
    size_t mark = sc_mark(p);
    while (is_kw(p, KW_ON)) {
        next(p);
        bool on_create;
        if (accept_kw(p, KW_CREATE)) on_create = true;
        else if (accept_kw(p, KW_MATCH)) on_create = false;
        else fail_expected(p, "CREATE or MATCH");
        expect_kw(p, KW_SET, "SET");
        for (;;) {
            merge_action ma;
            ma.on_create = on_create;
            parse_set_item(p, &ma.item);
            sc_push(p, &ma, sizeof ma);
            if (!accept(p, TOK_COMMA)) break;
        }
    }
    uint32_t n;
    merge_action *acts = sc_finish(p, mark, sizeof(merge_action), &n);
    uint32_t nc = 0, nm = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (acts[i].on_create) nc++;
        else nm++;
    }
    c->u.merge.on_create = nc ? palloc(p, nc * sizeof(ast_set_item)) : NULL;
    c->u.merge.on_match = nm ? palloc(p, nm * sizeof(ast_set_item)) : NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (acts[i].on_create) c->u.merge.on_create[c->u.merge.on_create_count++] = acts[i].item;
        else c->u.merge.on_match[c->u.merge.on_match_count++] = acts[i].item;
    }
}

static bool qv_str_eq(qv_str a, qv_str b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* RETURN / WITH body after the keyword. */
static uint64_t alias_hash(qv_str a) { return query_name_hash(a.ptr, a.len); }

/* Enter item index's alias into the set (items are on the scratch stack
 * from mark); a duplicate is the "same name" error at first. */
static void alias_insert(parser *p, uint32_t *set, size_t mark, qv_str alias, uint32_t index, const token *first) {
    for (uint32_t h = (uint32_t)alias_hash(alias) & (PARSER_ALIAS_SET_SIZE - 1);; h = (h + 1) & (PARSER_ALIAS_SET_SIZE - 1)) {
        if (set[h] == 0) {
            set[h] = index + 1;
            return;
        }
        ast_proj_item o;
        memcpy(&o, p->scratch + mark + (size_t)(set[h] - 1) * sizeof o, sizeof o);
        if (qv_str_eq(o.alias, alias)) {
            fail_at(p, first, "Multiple result columns with the same name '%.*s' are not supported",
                    (int)(alias.len > 64 ? 64 : alias.len), alias.ptr);
        }
    }
}

static void parse_projection(parser *p, ast_projection *pr, bool is_with) {
    memset(pr, 0, sizeof *pr);
    uint32_t *aliases = NULL; /* index + 1 of the item with each alias; built at the first item */
    if (accept_kw(p, KW_DISTINCT)) pr->distinct = true;
    size_t mark = sc_mark(p);
    bool need_item = true;
    if (accept(p, TOK_STAR)) {
        pr->star = true;
        need_item = accept(p, TOK_COMMA);
    }
    while (need_item) {
        ast_proj_item it;
        memset(&it, 0, sizeof it);
        token first = p->tok;
        it.expr = parse_expr(p);
        if (accept_kw(p, KW_AS)) {
            it.alias = expect_var(p, "a variable name");
            it.has_alias = true;
        } else {
            if (is_with && it.expr->kind != AST_VAR) {
                fail_at(p, &first, "Expression in WITH must be aliased (use AS)");
            }
            QUIVER_ASSERT(p->prev_end >= first.begin);
            it.alias = copy_str(p, p->text + first.begin, p->prev_end - first.begin);
        }
        uint32_t n = sc_count(p, mark, sizeof it);
        if (n >= PARSER_PROJECTION_ITEMS_COUNT_MAX) {
            fail_at(p, &first, "Too many columns (the limit is %d)", PARSER_PROJECTION_ITEMS_COUNT_MAX);
        }
        /* duplicate names: compared one by one for a few items, then with an
         * open-addressing set of the aliases (linear in the items) */
        if (n < PARSER_ALIAS_SCAN_COUNT_MAX) {
            for (uint32_t i = 0; i < n; i++) {
                ast_proj_item o;
                memcpy(&o, p->scratch + mark + (size_t)i * sizeof o, sizeof o);
                if (qv_str_eq(o.alias, it.alias)) {
                    fail_at(p, &first, "Multiple result columns with the same name '%.*s' are not supported",
                            (int)(it.alias.len > 64 ? 64 : it.alias.len), it.alias.ptr);
                }
            }
        } else {
            if (aliases == NULL) {
                aliases = pcalloc(p, sizeof(uint32_t) * PARSER_ALIAS_SET_SIZE);
                for (uint32_t i = 0; i < n; i++) {
                    ast_proj_item o;
                    memcpy(&o, p->scratch + mark + (size_t)i * sizeof o, sizeof o);
                    alias_insert(p, aliases, mark, o.alias, i, &first);
                }
            }
            alias_insert(p, aliases, mark, it.alias, n, &first);
        }
        sc_push(p, &it, sizeof it);
        need_item = accept(p, TOK_COMMA);
    }
    pr->items = sc_finish(p, mark, sizeof(ast_proj_item), &pr->item_count);
    if (is_kw(p, KW_ORDER)) {
        next(p);
        expect_kw(p, KW_BY, "BY");
        mark = sc_mark(p);
        token first = p->tok;
        for (;;) {
            if (sc_count(p, mark, sizeof(ast_sort_item)) >= QUIVER_QUERY_SORT_ITEMS_COUNT_MAX)
                fail_limit(p, first.line, first.column, "ERR ORDER BY with more than %u items (the limit)",
                           (unsigned)QUIVER_QUERY_SORT_ITEMS_COUNT_MAX);
            ast_sort_item s;
            s.expr = parse_expr(p);
            s.descending = false;
            if (accept_kw(p, KW_DESC) || accept_kw(p, KW_DESCENDING)) s.descending = true;
            else if (accept_kw(p, KW_ASC) || accept_kw(p, KW_ASCENDING)) s.descending = false;
            sc_push(p, &s, sizeof s);
            if (!accept(p, TOK_COMMA)) break;
        }
        pr->order = sc_finish(p, mark, sizeof(ast_sort_item), &pr->order_count);
    }
    if (accept_kw(p, KW_SKIP)) pr->skip = parse_expr(p);
    if (accept_kw(p, KW_LIMIT)) pr->limit = parse_expr(p);
    if (is_with && accept_kw(p, KW_WHERE)) pr->where = parse_expr(p);
}

/* CALL ns.name[(args)] [YIELD a [AS b], ... [WHERE pred]] */
static void parse_call(parser *p, ast_clause *c) {
    /* name parts joined with '.' */
    size_t mark = sc_mark(p);
    size_t total = 0;
    for (;;) {
        qv_str part = expect_name(p, "a procedure name");
        sc_push(p, &part, sizeof part);
        total += part.len + 1;
        if (p->tok.type != TOK_DOT) break;
        next(p);
    }
    uint32_t parts_n;
    qv_str *parts = sc_finish(p, mark, sizeof(qv_str), &parts_n);
    char *name = palloc(p, total);
    size_t o = 0;
    for (uint32_t i = 0; i < parts_n; i++) {
        if (i > 0) name[o++] = '.';
        memcpy(name + o, parts[i].ptr, parts[i].len);
        o += parts[i].len;
    }
    name[o] = '\0';
    c->u.call.name.ptr = name;
    c->u.call.name.len = (uint32_t)o;
    if (accept(p, TOK_LPAREN)) {
        mark = sc_mark(p);
        if (p->tok.type != TOK_RPAREN) {
            for (;;) {
                ast_expr *arg = parse_expr(p);
                sc_push(p, &arg, sizeof arg);
                if (!accept(p, TOK_COMMA)) break;
            }
        }
        expect(p, TOK_RPAREN, "',' or ')'");
        c->u.call.args = sc_finish(p, mark, sizeof(ast_expr *), &c->u.call.arg_count);
    }
    if (accept_kw(p, KW_YIELD)) {
        mark = sc_mark(p);
        for (;;) {
            qv_str pair[2];
            pair[0] = expect_name(p, "a procedure output name");
            pair[1].ptr = "";
            pair[1].len = 0;
            if (accept_kw(p, KW_AS)) pair[1] = expect_var(p, "a variable name");
            sc_push(p, pair, sizeof pair);
            if (!accept(p, TOK_COMMA)) break;
        }
        uint32_t n;
        qv_str *pairs = sc_finish(p, mark, sizeof(qv_str) * 2, &n);
        c->u.call.yield_count = n;
        c->u.call.yield_names = palloc(p, n * sizeof(qv_str));
        c->u.call.yield_aliases = palloc(p, n * sizeof(qv_str));
        for (uint32_t i = 0; i < n; i++) {
            c->u.call.yield_names[i] = pairs[2 * i];
            c->u.call.yield_aliases[i] = pairs[2 * i + 1];
        }
        if (accept_kw(p, KW_WHERE)) c->u.call.where = parse_expr(p);
    }
}

/* "(n:L)" then "ON (n.p, n.q)" of the FOR form; or ":L(p, q)" of the ON form.
 * Current token: FOR or ON (already checked). */
static void parse_index_target(parser *p, ast_clause *c) {
    size_t mark;
    if (accept_kw(p, KW_FOR)) {
        expect(p, TOK_LPAREN, "'('");
        qv_str var = expect_var(p, "a variable");
        expect(p, TOK_COLON, "':'");
        c->u.index.label = expect_name(p, "a label name");
        expect(p, TOK_RPAREN, "')'");
        expect_kw(p, KW_ON, "ON");
        expect(p, TOK_LPAREN, "'('");
        mark = sc_mark(p);
        for (;;) {
            token vt = p->tok;
            qv_str v = expect_var(p, "a variable");
            if (!qv_str_eq(v, var)) {
                fail_at(p, &vt, "Variable `%.*s` not defined: the index is on `%.*s`",
                        (int)(v.len > 64 ? 64 : v.len), v.ptr, (int)(var.len > 64 ? 64 : var.len),
                        var.ptr);
            }
            expect(p, TOK_DOT, "'.'");
            qv_str key = expect_name(p, "a property key name");
            sc_push(p, &key, sizeof key);
            if (!accept(p, TOK_COMMA)) break;
        }
        expect(p, TOK_RPAREN, "',' or ')'");
    } else {
        expect_kw(p, KW_ON, "FOR or ON");
        expect(p, TOK_COLON, "':'");
        c->u.index.label = expect_name(p, "a label name");
        expect(p, TOK_LPAREN, "'('");
        mark = sc_mark(p);
        for (;;) {
            qv_str key = expect_name(p, "a property key name");
            sc_push(p, &key, sizeof key);
            if (!accept(p, TOK_COMMA)) break;
        }
        expect(p, TOK_RPAREN, "',' or ')'");
    }
    c->u.index.props = sc_finish(p, mark, sizeof(qv_str), &c->u.index.prop_count);
    QUIVER_ASSERT(c->u.index.prop_count >= 1);
}

static const char *clause_name(ast_clause_kind k) {
    switch (k) {
    case AST_MATCH: return "MATCH";
    case AST_CREATE: return "CREATE";
    case AST_MERGE: return "MERGE";
    case AST_SET: return "SET";
    case AST_REMOVE: return "REMOVE";
    case AST_DELETE: return "DELETE";
    case AST_WITH: return "WITH";
    case AST_RETURN: return "RETURN";
    case AST_UNWIND: return "UNWIND";
    case AST_CALL: return "CALL";
    case AST_CREATE_INDEX: return "CREATE INDEX";
    case AST_DROP_INDEX: return "DROP INDEX";
    }
    return "?";
}

#define CLAUSE_EXPECTED \
    "MATCH, OPTIONAL MATCH, CREATE, MERGE, SET, REMOVE, DELETE, DETACH DELETE, WITH, RETURN, UNWIND or CALL"

/* Is the current token the start of a clause? */
static bool at_clause_start(const parser *p) {
    if (p->tok.type != TOK_IDENT) return false;
    switch (p->tok.kw) {
    case KW_MATCH:
    case KW_OPTIONAL:
    case KW_CREATE:
    case KW_MERGE:
    case KW_SET:
    case KW_REMOVE:
    case KW_DELETE:
    case KW_DETACH:
    case KW_WITH:
    case KW_RETURN:
    case KW_UNWIND:
    case KW_CALL:
    case KW_DROP:
        return true;
    default:
        return false;
    }
}

/* One clause; current token is its first keyword (at_clause_start). */
static void parse_clause(parser *p, ast_clause *c) {
    memset(c, 0, sizeof *c);
    token at = p->tok;
    c->pos = tok_pos(&at);
    switch (at.kw) {
    case KW_OPTIONAL:
    case KW_MATCH:
        c->kind = AST_MATCH;
        if (at.kw == KW_OPTIONAL) {
            next(p);
            c->u.match.optional = true;
            expect_kw(p, KW_MATCH, "MATCH");
        } else {
            next(p);
        }
        parse_pattern(p, &c->u.match.pattern, QUIVER_QUERY_MATCH_PARTS_COUNT_MAX, "MATCH");
        if (accept_kw(p, KW_WHERE)) c->u.match.where = parse_expr(p);
        return;
    case KW_CREATE: {
        next(p);
        token t1;
        if (is_kw(p, KW_INDEX) &&
            (peek_tok(p, 1, &t1), tok_is_kw(&t1, KW_FOR) || tok_is_kw(&t1, KW_ON))) {
            next(p);
            c->kind = AST_CREATE_INDEX;
            parse_index_target(p, c);
            p->writes = true;
            return;
        }
        c->kind = AST_CREATE;
        parse_pattern(p, &c->u.create.pattern, QUIVER_QUERY_CREATE_PARTS_COUNT_MAX, "CREATE");
        for (uint32_t i = 0; i < c->u.create.pattern.path_count; i++) {
            check_creatable_path(p, &c->u.create.pattern.paths[i], "CREATE");
        }
        p->writes = true;
        return;
    }
    case KW_DROP:
        next(p);
        expect_kw(p, KW_INDEX, "INDEX");
        if (!is_kw(p, KW_FOR) && !is_kw(p, KW_ON)) fail_expected(p, "FOR or ON");
        c->kind = AST_DROP_INDEX;
        parse_index_target(p, c);
        p->writes = true;
        return;
    case KW_MERGE:
        next(p);
        c->kind = AST_MERGE;
        parse_merge(p, c);
        p->writes = true;
        return;
    case KW_SET: {
        next(p);
        c->kind = AST_SET;
        size_t mark = sc_mark(p);
        parse_set_items(p);
        c->u.set.items = sc_finish(p, mark, sizeof(ast_set_item), &c->u.set.count);
        p->writes = true;
        return;
    }
    case KW_REMOVE:
        next(p);
        c->kind = AST_REMOVE;
        parse_remove(p, c);
        p->writes = true;
        return;
    case KW_DETACH:
    case KW_DELETE: {
        c->kind = AST_DELETE;
        if (at.kw == KW_DETACH) {
            next(p);
            c->u.delete_.detach = true;
            expect_kw(p, KW_DELETE, "DELETE");
        } else {
            next(p);
        }
        size_t mark = sc_mark(p);
        for (;;) {
            ast_expr *e = parse_expr(p);
            sc_push(p, &e, sizeof e);
            if (!accept(p, TOK_COMMA)) break;
        }
        c->u.delete_.exprs = sc_finish(p, mark, sizeof(ast_expr *), &c->u.delete_.count);
        p->writes = true;
        return;
    }
    case KW_WITH:
        next(p);
        c->kind = AST_WITH;
        parse_projection(p, &c->u.projection, true);
        return;
    case KW_RETURN:
        next(p);
        c->kind = AST_RETURN;
        parse_projection(p, &c->u.projection, false);
        return;
    case KW_UNWIND:
        next(p);
        c->kind = AST_UNWIND;
        c->u.unwind.list = parse_expr(p);
        expect_kw(p, KW_AS, "AS");
        c->u.unwind.var = expect_var(p, "a variable name");
        return;
    case KW_CALL:
        next(p);
        c->kind = AST_CALL;
        parse_call(p, c);
        return;
    default:
        fail_expected(p, CLAUSE_EXPECTED);
    }
}

typedef struct clause_slot {
    ast_clause clause;
    token at;   /* first token, for messages */
} clause_slot;

/* Clauses up to UNION, ';' or the end, with the clause-order checks. */
static void parse_single_query(parser *p, ast_single_query *out, token *first_return) {
    size_t mark = sc_mark(p);
    if (!at_clause_start(p)) fail_expected(p, CLAUSE_EXPECTED);
    while (at_clause_start(p)) {
        if (++p->clauses > QUIVER_QUERY_CLAUSES_COUNT_MAX)
            fail_limit(p, p->tok.line, p->tok.column, "ERR query has more than %u clauses (the limit)",
                       (unsigned)QUIVER_QUERY_CLAUSES_COUNT_MAX);
        clause_slot s;
        s.at = p->tok;
        parse_clause(p, &s.clause);
        sc_push(p, &s, sizeof s);
    }
    if (p->tok.type != TOK_EOF && p->tok.type != TOK_SEMI && !is_kw(p, KW_UNION)) {
        fail_expected(p, CLAUSE_EXPECTED ", UNION or end of input");
    }
    uint32_t n;
    clause_slot *slots = sc_finish(p, mark, sizeof(clause_slot), &n);
    QUIVER_ASSERT(n >= 1);
    out->clause_count = n;
    out->clauses = palloc(p, n * sizeof(ast_clause));
    for (uint32_t i = 0; i < n; i++) out->clauses[i] = slots[i].clause;

    for (uint32_t i = 0; i < n; i++) {
        ast_clause_kind k = slots[i].clause.kind;
        if (k == AST_RETURN && i + 1 < n) {
            fail_at(p, &slots[i + 1].at, "RETURN can only be used at the end of the query");
        }
        if ((k == AST_CREATE_INDEX || k == AST_DROP_INDEX) && n > 1) {
            fail_at(p, &slots[i == 0 ? 1 : i].at,
                    "Index operations must be the only clause of a query");
        }
    }
    const ast_clause *last = &out->clauses[n - 1];
    switch (last->kind) {
    case AST_RETURN:
    case AST_CREATE:
    case AST_MERGE:
    case AST_SET:
    case AST_REMOVE:
    case AST_DELETE:
    case AST_CREATE_INDEX:
    case AST_DROP_INDEX:
        break;
    case AST_CALL:
        if (n == 1) break;
        /* fall through */
    default:
        fail_at(p, &slots[n - 1].at,
                "Query cannot conclude with %s (must be a RETURN clause, an update clause or a "
                "procedure call)",
                clause_name(last->kind));
    }
    *first_return = slots[n - 1].at;
}

/* `CYPHER name=value name2=value2 ...` after the keyword. */
static void parse_params(parser *p, ast_query *q) {
    size_t mark = sc_mark(p);
    while (tok_is_name(&p->tok) && peek_tok(p, 1, NULL) == TOK_EQ) {
        ast_param prm;
        prm.name = tok_name(p, &p->tok);
        next(p);
        next(p); /* '=' */
        prm.value = parse_const(p);
        sc_push(p, &prm, sizeof prm);
    }
    /* an empty prefix ("CYPHER MATCH ...") is accepted; a lone name is not */
    if (sc_count(p, mark, sizeof(ast_param)) == 0 && tok_is_name(&p->tok) && !at_clause_start(p) &&
        !is_kw(p, KW_EXPLAIN)) {
        token t1;
        peek_tok(p, 1, &t1);
        fail_expected_at(p, &t1, "'='");
    }
    uint32_t n;
    ast_param *prms = sc_finish(p, mark, sizeof(ast_param), &n);
    q->params = prms;
    q->param_count = n;
}

static void check_union(parser *p, const ast_query *q, const token *ret_at) {
    const ast_single_query *first = &q->parts[0];
    for (uint32_t i = 0; i < q->part_count; i++) {
        const ast_single_query *s = &q->parts[i];
        const ast_clause *last = &s->clauses[s->clause_count - 1];
        if (last->kind != AST_RETURN) {
            fail_at(p, &ret_at[i], "All sub queries in a UNION must end with RETURN");
        }
        if (i > 0 && q->union_all[i - 1] != q->union_all[0]) {
            fail_at(p, &ret_at[i], "Invalid combination of UNION and UNION ALL");
        }
    }
    const ast_projection *p0 = &first->clauses[first->clause_count - 1].u.projection;
    for (uint32_t i = 1; i < q->part_count; i++) {
        const ast_single_query *s = &q->parts[i];
        const ast_projection *pi = &s->clauses[s->clause_count - 1].u.projection;
        if (p0->star || pi->star) continue; /* columns known only after planning */
        bool same = p0->item_count == pi->item_count;
        for (uint32_t k = 0; same && k < p0->item_count; k++) {
            same = qv_str_eq(p0->items[k].alias, pi->items[k].alias);
        }
        if (!same) fail_at(p, &ret_at[i], "All sub queries in a UNION must have the same column names");
    }
}

/* One single query of a UNION while the statement is being parsed. */
typedef struct part_slot {
    ast_single_query part;
    bool all;   /* followed by UNION ALL */
    token last; /* its last clause's first token, for messages */
} part_slot;

static void parse_statement(parser *p, ast_query *q) {
    bool seen_cypher = false, seen_explain = false;
    for (;;) {
        if (!seen_cypher && is_kw(p, KW_CYPHER)) {
            next(p);
            seen_cypher = true;
            parse_params(p, q);
        } else if (!seen_explain && is_kw(p, KW_EXPLAIN)) {
            next(p);
            seen_explain = true;
            q->explain = true;
        } else {
            break;
        }
    }
    if (p->tok.type == TOK_EOF) fail_expected(p, CLAUSE_EXPECTED);
    size_t mark = sc_mark(p);
    for (;;) {
        part_slot slot;
        memset(&slot, 0, sizeof slot);
        parse_single_query(p, &slot.part, &slot.last);
        if (is_kw(p, KW_UNION)) {
            next(p);
            slot.all = accept_kw(p, KW_ALL);
            sc_push(p, &slot, sizeof slot);
            continue;
        }
        sc_push(p, &slot, sizeof slot);
        break;
    }
    accept(p, TOK_SEMI);
    if (p->tok.type != TOK_EOF) fail_expected(p, "end of input");

    uint32_t n;
    part_slot *slots = sc_finish(p, mark, sizeof(part_slot), &n);
    QUIVER_ASSERT(n >= 1);
    q->part_count = n;
    q->parts = palloc(p, n * sizeof(ast_single_query));
    q->union_all = n > 1 ? palloc(p, (n - 1) * sizeof(bool)) : NULL;
    token *ret_at = palloc(p, n * sizeof(token));
    for (uint32_t i = 0; i < n; i++) {
        q->parts[i] = slots[i].part;
        if (i + 1 < n) q->union_all[i] = slots[i].all;
        ret_at[i] = slots[i].last;
    }
    if (n > 1) check_union(p, q, ret_at);
}

int cypher_parse(const char *text, size_t len, q_arena *a, ast_query *out, parse_error *err) {
    QUIVER_ASSERT(a != NULL && out != NULL && err != NULL);
    QUIVER_ASSERT(text != NULL || len == 0);
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    if (len > QUIVER_QUERY_TEXT_SIZE_MAX_BYTES) {
        snprintf(err->message, sizeof err->message,
                 "Query text is too large (%zu bytes; the limit is %llu)", len,
                 (unsigned long long)QUIVER_QUERY_TEXT_SIZE_MAX_BYTES);
        return -1;
    }
    /* on the C stack: a parse of a short query mallocs nothing.  Only p's
     * pointee changes between setjmp and longjmp, never p itself. */
    parser ps;
    memset(&ps, 0, offsetof(parser, scratch_inline));
    parser *p = &ps;
    p->scratch = p->scratch_inline;
    p->scratch_cap = sizeof p->scratch_inline;
    p->text = text == NULL ? "" : text;
    p->len = len;
    p->a = a;
    p->err = err;
    p->stack_floor = query_stack_floor(&p->stack_budget_bytes);
    int rc;
    if (setjmp(p->jb) == 0) {
        lexer_init(&p->lx, p->text, len);
        lex_checked(p, &p->lx, &p->tok);
        parse_statement(p, out);
        out->writes = p->writes;
        QUIVER_ASSERT(out->part_count >= 1);
        rc = 0;
    } else {
        memset(out, 0, sizeof *out);
        QUIVER_ASSERT(err->message[0] != '\0');
        rc = -1;
    }
    if (p->scratch != p->scratch_inline) free(p->scratch);
    return rc;
}
