/*
 * lexer.h -- openCypher tokens for the parser (parser.h).
 *
 * A pull lexer: lexer_next() scans one token from a byte range that need not
 * be NUL-terminated and may contain NUL bytes.  The lexer state is a small
 * plain struct, so the parser looks ahead by copying it and scanning on the
 * copy (no token buffer, no allocation).
 *
 * Tokens point into the text (start, len); string literals are unescaped
 * only on demand (lexer_unescape), straight into the destination, so a
 * 20 MB import batch is copied once.  Keywords are recognised by a switch on
 * length and first letter (a few memcmp per identifier at most), never by a
 * strcmp chain over the whole keyword list.
 *
 * Lexical grammar: openCypher 9 ("Cypher Query Language Reference, Version
 * 9", lexical part): identifiers [A-Za-z_][A-Za-z0-9_]* (bytes >= 0x80 are
 * accepted as identifier characters so UTF-8 names work), back-quoted
 * identifiers (`` `a``b` `` is a`b), decimal and 0x hexadecimal integers,
 * floats (1.5, .5, 1e10, 1.5E-3), strings in ' or " with the escapes
 * \\ \' \" \n \t \r \b \f \uXXXX (and surrogate pairs) \UXXXXXXXX, parameters $name or
 * $0, comments // to end of line and block comments.
 *
 * Positions: line is 1-based; column is 1-based and counts characters (UTF-8
 * continuation bytes are not counted), as Neo4j reports them.  Tracking this
 * costs one compare per byte inside strings, comments and identifiers only.
 *
 * Thread: any; no global state.
 */
#ifndef QUIVER_QUERY_LEXER_H
#define QUIVER_QUERY_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum tok_type {
    TOK_EOF = 0,
    TOK_ERROR,    /* lexical error: lexer.error_message, position of the token */
    TOK_IDENT,    /* unquoted identifier or keyword (see token.kw) */
    TOK_QIDENT,   /* `back-quoted`: never a keyword; name needs unquoting if has_escape */
    TOK_INT,      /* num.u: magnitude, at most 2^63 (2^63 only valid after unary minus) */
    TOK_FLOAT,    /* num.d */
    TOK_STRING,   /* start/len include the quotes; has_escape when a backslash occurs */
    TOK_PARAM,    /* $name: start/len cover the name after '$' (back-quoted names unquoted) */
    TOK_LPAREN, TOK_RPAREN, TOK_LBRACKET, TOK_RBRACKET, TOK_LBRACE, TOK_RBRACE,
    TOK_COMMA, TOK_DOT, TOK_DOTDOT, TOK_COLON, TOK_SEMI, TOK_PIPE,
    TOK_EQ, TOK_NE, TOK_LT, TOK_LE, TOK_GT, TOK_GE, TOK_REGEX, /* = <> < <= > >= =~ */
    TOK_PLUS, TOK_PLUSEQ, TOK_MINUS, TOK_STAR, TOK_SLASH, TOK_PERCENT, TOK_CARET,
} tok_type;

/* Keywords (case-insensitive).  KW_NONE for ordinary identifiers. */
typedef enum kw_id {
    KW_NONE = 0,
    KW_ALL, KW_AND, KW_AS, KW_ASC, KW_ASCENDING, KW_BY, KW_CALL, KW_CASE,
    KW_CONTAINS, KW_CREATE, KW_CYPHER, KW_DELETE, KW_DESC, KW_DESCENDING,
    KW_DETACH, KW_DISTINCT, KW_DROP, KW_ELSE, KW_END, KW_ENDS, KW_EXPLAIN,
    KW_FALSE, KW_FOR, KW_IN, KW_INDEX, KW_IS, KW_LIMIT, KW_MATCH, KW_MERGE,
    KW_NOT, KW_NULL, KW_ON, KW_OPTIONAL, KW_OR, KW_ORDER, KW_REMOVE,
    KW_RETURN, KW_SET, KW_SKIP, KW_STARTS, KW_THEN, KW_TRUE, KW_UNION,
    KW_UNWIND, KW_WHEN, KW_WHERE, KW_WITH, KW_XOR, KW_YIELD,
    KW__COUNT
} kw_id;

typedef struct token {
    tok_type type;
    kw_id kw;             /* TOK_IDENT only */
    bool has_escape;      /* TOK_STRING: contains '\'; TOK_QIDENT/TOK_PARAM: contains `` */
    bool quoted;          /* TOK_PARAM: the name was back-quoted ($`a b`) */
    uint32_t line;        /* 1-based */
    uint32_t column;      /* 1-based, characters */
    size_t begin;         /* byte offset of the token's first byte (quote, '$'...) */
    size_t start;         /* byte offset of the token's content (see tok_type) */
    size_t len;           /* bytes; see tok_type for what is covered */
    size_t end;           /* byte offset just past the whole token (incl. quotes, '$') */
    union {
        uint64_t u;
        double d;
    } num;
} token;

typedef struct lexer {
    const char *text;
    size_t len;
    size_t pos;           /* next byte to scan */
    uint32_t line;        /* line of pos, 1-based */
    size_t line_start;    /* byte offset where that line starts */
    size_t line_cont;     /* UTF-8 continuation bytes between line_start and pos */
    const char *error_message; /* static text, set with TOK_ERROR */
} lexer;

/* Start scanning text[0..len).  The text must outlive the lexer and every
 * token.  Thread: the caller owns the lexer. */
void lexer_init(lexer *lx, const char *text, size_t len);

/* Scan the next token into *t (whitespace and comments skipped).  At the end
 * returns TOK_EOF repeatedly.  On a lexical error (unterminated string or
 * comment, bad escape, integer too large, bad character, malformed number)
 * returns TOK_ERROR with lx->error_message set and t's position on the
 * offending token; the lexer may then not be advanced further meaningfully.
 * Never reads outside text[0..len). */
tok_type lexer_next(lexer *lx, token *t);

/* Unescape the body of a string token (the bytes between the quotes) into
 * out, which must hold at least len bytes (unescaping never grows: \uXXXX is
 * 6 bytes in, at most 3 out; a surrogate pair 12 in, 4 out; \UXXXXXXXX 10
 * in, at most 4 out).  Returns the
 * number of bytes written, or -1 (with *error_message and *error_offset, the
 * offset of the bad escape within body) for an invalid escape. */
long lexer_unescape(const char *body, size_t len, char *out, const char **error_message,
                    size_t *error_offset);

/* Unquote a back-quoted identifier body (`` -> `) into out (>= len bytes);
 * returns the length. */
size_t lexer_unquote_ident(const char *body, size_t len, char *out);

/* Upper-case spelling of a keyword ("MATCH"), "" for KW_NONE. */
const char *lexer_keyword_name(kw_id kw);

/* The keyword spelled by s[0..len) case-insensitively, or KW_NONE. */
kw_id lexer_keyword(const char *s, size_t len);

/* Short description of a token type for messages: "'('", "an integer"... */
const char *lexer_token_type_name(tok_type t);

#endif
