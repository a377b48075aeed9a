/*
 * cypher_literal.h -- writing values as openCypher literals, for the query
 * text that `quiver import` sends.
 *
 * Format source: the openCypher 9 grammar (StringLiteral, EscapedChar,
 * SymbolicName) and Quiver's lexer (query/parser.h), which accepts
 * single- or double-quoted strings with the escapes
 * \\ \' \" \n \t \r \b \f \uXXXX.
 *
 * Strings are written single-quoted.  Backslash, the single quote and the
 * control characters below U+0020 (and DEL) are escaped; everything else,
 * including non-ASCII UTF-8, is copied byte for byte (the caller checks UTF-8
 * validity first: see cypher_utf8_valid).  Names (labels, relationship
 * types, property keys) are written bare when they are plain identifiers,
 * otherwise back-quoted with ` doubled.
 *
 * Thread: any; no global state.
 */
#ifndef QUIVER_CLI_CYPHER_LITERAL_H
#define QUIVER_CLI_CYPHER_LITERAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Append s[0..n) as a single-quoted Cypher string literal. */
void cypher_append_string(cli_buf *b, const char *s, size_t n);

/* Append a float literal that reads back as the same double (%.17g, with a
 * ".0" added when the text would otherwise read as an integer).  Returns
 * -1 (appending nothing) for NaN and infinities, which have no literal. */
int cypher_append_double(cli_buf *b, double d);

/* Append a 64-bit integer literal in decimal (negative values with a
 * leading minus; CYPHER parameter values may be negative numbers, ast.h). */
void cypher_append_int(cli_buf *b, int64_t v);

/* Append a label, relationship type or property key: bare if it matches
 * [A-Za-z_][A-Za-z0-9_]* , else back-quoted with any ` doubled. */
void cypher_append_name(cli_buf *b, const char *s, size_t n);

/* True when s[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF).  Embedded NUL bytes are rejected too:
 * they cannot be carried through a C string in the server. */
bool cypher_utf8_valid(const char *s, size_t n);

#endif
