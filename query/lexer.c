/*
 * lexer.c -- openCypher tokens; see lexer.h for the design.
 *
 * The scanner is a switch on the first byte of a token.  It never reads past
 * text[len): every look at the next byte goes through peek_at(), which
 * returns 0 outside the range (and 0 is not a valid start of anything, so an
 * embedded NUL byte is reported as a bad character, not taken as the end).
 */
#include "lexer.h"

#include <stdlib.h>
#include <string.h>

#include "../common/qassert.h"

/* Longest float literal we convert (strtod needs a NUL-terminated copy). */
#define LEXER_FLOAT_SIZE_MAX_BYTES 512

static int peek_at(const lexer *lx, size_t pos) {
    return pos < lx->len ? (unsigned char)lx->text[pos] : -1;
}

static bool is_ident_start(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool is_ident_char(int c) {
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void lexer_init(lexer *lx, const char *text, size_t len) {
    QUIVER_ASSERT(lx != NULL);
    QUIVER_ASSERT(text != NULL || len == 0);
    lx->text = text == NULL ? "" : text;
    lx->len = len;
    lx->pos = 0;
    lx->line = 1;
    lx->line_start = 0;
    lx->line_cont = 0;
    lx->error_message = NULL;
}

/* Account for byte c at position pos being consumed (line/column upkeep).
 * Used inside strings, comments and identifiers, which may hold newlines or
 * multi-byte characters. */
static inline void note_byte(lexer *lx, int c, size_t pos) {
    if (c == '\n') {
        lx->line++;
        lx->line_start = pos + 1;
        lx->line_cont = 0;
    } else if ((c & 0xC0) == 0x80) {
        lx->line_cont++;
    }
}

/* Skip whitespace and comments.  Returns false (with error) on an
 * unterminated block comment; *err_pos is where it started. */
static bool skip_space(lexer *lx, size_t *err_pos, uint32_t *err_line, uint32_t *err_col) {
    for (;;) {
        int c = peek_at(lx, lx->pos);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            lx->pos++;
        } else if (c == '\n') {
            note_byte(lx, c, lx->pos);
            lx->pos++;
        } else if (c == '/' && peek_at(lx, lx->pos + 1) == '/') {
            lx->pos += 2;
            while (lx->pos < lx->len && lx->text[lx->pos] != '\n') {
                note_byte(lx, (unsigned char)lx->text[lx->pos], lx->pos);
                lx->pos++;
            }
        } else if (c == '/' && peek_at(lx, lx->pos + 1) == '*') {
            *err_pos = lx->pos;
            *err_line = lx->line;
            *err_col = (uint32_t)(lx->pos - lx->line_start - lx->line_cont + 1);
            lx->pos += 2;
            for (;;) {
                if (lx->pos + 1 >= lx->len) {
                    lx->pos = lx->len;
                    return false;
                }
                if (lx->text[lx->pos] == '*' && lx->text[lx->pos + 1] == '/') {
                    lx->pos += 2;
                    break;
                }
                note_byte(lx, (unsigned char)lx->text[lx->pos], lx->pos);
                lx->pos++;
            }
        } else {
            return true;
        }
    }
}

/* ---- keywords ---- */

static const char *const keyword_names[KW__COUNT] = {
    [KW_NONE] = "",           [KW_ALL] = "ALL",         [KW_AND] = "AND",
    [KW_AS] = "AS",           [KW_ASC] = "ASC",         [KW_ASCENDING] = "ASCENDING",
    [KW_BY] = "BY",           [KW_CALL] = "CALL",       [KW_CASE] = "CASE",
    [KW_CONTAINS] = "CONTAINS", [KW_CREATE] = "CREATE", [KW_CYPHER] = "CYPHER",
    [KW_DELETE] = "DELETE",   [KW_DESC] = "DESC",       [KW_DESCENDING] = "DESCENDING",
    [KW_DETACH] = "DETACH",   [KW_DISTINCT] = "DISTINCT", [KW_DROP] = "DROP",
    [KW_ELSE] = "ELSE",       [KW_END] = "END",         [KW_ENDS] = "ENDS",
    [KW_EXPLAIN] = "EXPLAIN", [KW_FALSE] = "FALSE",     [KW_FOR] = "FOR",
    [KW_IN] = "IN",           [KW_INDEX] = "INDEX",     [KW_IS] = "IS",
    [KW_LIMIT] = "LIMIT",     [KW_MATCH] = "MATCH",     [KW_MERGE] = "MERGE",
    [KW_NOT] = "NOT",         [KW_NULL] = "NULL",       [KW_ON] = "ON",
    [KW_OPTIONAL] = "OPTIONAL", [KW_OR] = "OR",         [KW_ORDER] = "ORDER",
    [KW_REMOVE] = "REMOVE",   [KW_RETURN] = "RETURN",   [KW_SET] = "SET",
    [KW_SKIP] = "SKIP",       [KW_STARTS] = "STARTS",   [KW_THEN] = "THEN",
    [KW_TRUE] = "TRUE",       [KW_UNION] = "UNION",     [KW_UNWIND] = "UNWIND",
    [KW_WHEN] = "WHEN",       [KW_WHERE] = "WHERE",     [KW_WITH] = "WITH",
    [KW_XOR] = "XOR",         [KW_YIELD] = "YIELD",
};

const char *lexer_keyword_name(kw_id kw) {
    QUIVER_ASSERT(kw < KW__COUNT);
    return keyword_names[kw];
}

/* s (already upper-cased into up) equals keyword kw? */
static kw_id kw_if(const char *up, size_t len, kw_id kw) {
    const char *name = keyword_names[kw];
    return (strlen(name) == len && memcmp(up, name, len) == 0) ? kw : KW_NONE;
}

kw_id lexer_keyword(const char *s, size_t len) {
    if (len < 2 || len > 10) return KW_NONE;
    char up[10];
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        else if (!(c >= 'A' && c <= 'Z')) return KW_NONE; /* keywords are letters only */
        up[i] = c;
    }
    kw_id k = KW_NONE;
    /* Dispatch on the first letter; each bucket holds a handful of keywords. */
    switch (up[0]) {
    case 'A':
        if ((k = kw_if(up, len, KW_ALL)) || (k = kw_if(up, len, KW_AND)) ||
            (k = kw_if(up, len, KW_AS)) || (k = kw_if(up, len, KW_ASC)) ||
            (k = kw_if(up, len, KW_ASCENDING)))
            return k;
        break;
    case 'B': return kw_if(up, len, KW_BY);
    case 'C':
        if ((k = kw_if(up, len, KW_CALL)) || (k = kw_if(up, len, KW_CASE)) ||
            (k = kw_if(up, len, KW_CONTAINS)) || (k = kw_if(up, len, KW_CREATE)) ||
            (k = kw_if(up, len, KW_CYPHER)))
            return k;
        break;
    case 'D':
        if ((k = kw_if(up, len, KW_DELETE)) || (k = kw_if(up, len, KW_DESC)) ||
            (k = kw_if(up, len, KW_DESCENDING)) || (k = kw_if(up, len, KW_DETACH)) ||
            (k = kw_if(up, len, KW_DISTINCT)) || (k = kw_if(up, len, KW_DROP)))
            return k;
        break;
    case 'E':
        if ((k = kw_if(up, len, KW_ELSE)) || (k = kw_if(up, len, KW_END)) ||
            (k = kw_if(up, len, KW_ENDS)) || (k = kw_if(up, len, KW_EXPLAIN)))
            return k;
        break;
    case 'F':
        if ((k = kw_if(up, len, KW_FALSE)) || (k = kw_if(up, len, KW_FOR))) return k;
        break;
    case 'I':
        if ((k = kw_if(up, len, KW_IN)) || (k = kw_if(up, len, KW_INDEX)) ||
            (k = kw_if(up, len, KW_IS)))
            return k;
        break;
    case 'L': return kw_if(up, len, KW_LIMIT);
    case 'M':
        if ((k = kw_if(up, len, KW_MATCH)) || (k = kw_if(up, len, KW_MERGE))) return k;
        break;
    case 'N':
        if ((k = kw_if(up, len, KW_NOT)) || (k = kw_if(up, len, KW_NULL))) return k;
        break;
    case 'O':
        if ((k = kw_if(up, len, KW_ON)) || (k = kw_if(up, len, KW_OPTIONAL)) ||
            (k = kw_if(up, len, KW_OR)) || (k = kw_if(up, len, KW_ORDER)))
            return k;
        break;
    case 'R':
        if ((k = kw_if(up, len, KW_REMOVE)) || (k = kw_if(up, len, KW_RETURN))) return k;
        break;
    case 'S':
        if ((k = kw_if(up, len, KW_SET)) || (k = kw_if(up, len, KW_SKIP)) ||
            (k = kw_if(up, len, KW_STARTS)))
            return k;
        break;
    case 'T':
        if ((k = kw_if(up, len, KW_THEN)) || (k = kw_if(up, len, KW_TRUE))) return k;
        break;
    case 'U':
        if ((k = kw_if(up, len, KW_UNION)) || (k = kw_if(up, len, KW_UNWIND))) return k;
        break;
    case 'W':
        if ((k = kw_if(up, len, KW_WHEN)) || (k = kw_if(up, len, KW_WHERE)) ||
            (k = kw_if(up, len, KW_WITH)))
            return k;
        break;
    case 'X': return kw_if(up, len, KW_XOR);
    case 'Y': return kw_if(up, len, KW_YIELD);
    default: break;
    }
    return KW_NONE;
}

const char *lexer_token_type_name(tok_type t) {
    switch (t) {
    case TOK_EOF: return "end of input";
    case TOK_ERROR: return "an invalid token";
    case TOK_IDENT: return "an identifier";
    case TOK_QIDENT: return "an identifier";
    case TOK_INT: return "an integer";
    case TOK_FLOAT: return "a float";
    case TOK_STRING: return "a string";
    case TOK_PARAM: return "a parameter";
    case TOK_LPAREN: return "'('";
    case TOK_RPAREN: return "')'";
    case TOK_LBRACKET: return "'['";
    case TOK_RBRACKET: return "']'";
    case TOK_LBRACE: return "'{'";
    case TOK_RBRACE: return "'}'";
    case TOK_COMMA: return "','";
    case TOK_DOT: return "'.'";
    case TOK_DOTDOT: return "'..'";
    case TOK_COLON: return "':'";
    case TOK_SEMI: return "';'";
    case TOK_PIPE: return "'|'";
    case TOK_EQ: return "'='";
    case TOK_NE: return "'<>'";
    case TOK_LT: return "'<'";
    case TOK_LE: return "'<='";
    case TOK_GT: return "'>'";
    case TOK_GE: return "'>='";
    case TOK_REGEX: return "'=~'";
    case TOK_PLUS: return "'+'";
    case TOK_PLUSEQ: return "'+='";
    case TOK_MINUS: return "'-'";
    case TOK_STAR: return "'*'";
    case TOK_SLASH: return "'/'";
    case TOK_PERCENT: return "'%'";
    case TOK_CARET: return "'^'";
    }
    return "a token";
}

/* ---- scanning ---- */

static tok_type lex_error(lexer *lx, token *t, const char *message) {
    lx->error_message = message;
    /* the token spans at least one byte so messages can quote it */
    t->end = lx->pos > t->begin ? lx->pos : t->begin + 1;
    if (t->end > lx->len) t->end = lx->len;
    if (t->end < t->begin) t->end = t->begin;
    t->start = t->begin;
    t->len = t->end - t->begin;
    t->type = TOK_ERROR;
    return TOK_ERROR;
}

/* Back-quoted name starting at the opening backquote at lx->pos.  Sets
 * start/len to the body; `` inside is an escaped backquote. */
static bool scan_backquoted(lexer *lx, token *t) {
    size_t p = lx->pos + 1;
    t->start = p;
    for (;;) {
        if (p >= lx->len) return false;
        unsigned char c = (unsigned char)lx->text[p];
        if (c == '`') {
            if (p + 1 < lx->len && lx->text[p + 1] == '`') {
                t->has_escape = true;
                p += 2;
                continue;
            }
            break;
        }
        note_byte(lx, c, p);
        p++;
    }
    t->len = p - t->start;
    lx->pos = p + 1;
    return true;
}

/* Clinger's fast path ("How to Read Floating Point Numbers Accurately",
 * PLDI 1990): when the decimal digits form an integer m < 2^53 and the
 * decimal exponent e has |e| <= 22, m and 10^|e| are exact doubles and one
 * IEEE multiplication or division rounds correctly, so the result equals
 * strtod's.  Anything else goes to strtod. */
static bool fast_float(const char *s, size_t len, double *out) {
    static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    uint64_t m = 0;
    int digits = 0;
    int exp10 = 0;
    size_t i = 0;
    while (i < len && is_digit((unsigned char)s[i])) {
        if (m == 0 && s[i] == '0') { i++; continue; } /* leading zeros */
        if (++digits > 15) return false;
        m = m * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && is_digit((unsigned char)s[i])) {
            if (m == 0 && s[i] == '0') { exp10--; i++; continue; }
            if (++digits > 15) return false;
            m = m * 10 + (uint64_t)(s[i] - '0');
            exp10--;
            i++;
        }
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool neg = false;
        if (i < len && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
        int e = 0;
        while (i < len && is_digit((unsigned char)s[i])) {
            if (e > 10000) return false;
            e = e * 10 + (s[i++] - '0');
        }
        exp10 += neg ? -e : e;
    }
    if (i != len) return false;
    if (m == 0) {
        *out = 0.0;
        return true;
    }
    if (exp10 < -22 || exp10 > 22) return false;
    *out = exp10 < 0 ? (double)m / pow10[-exp10] : (double)m * pow10[exp10];
    return true;
}

static tok_type scan_number(lexer *lx, token *t) {
    size_t p = lx->pos;
    const char *s = lx->text;
    const uint64_t limit = (uint64_t)1 << 63; /* |INT64_MIN| */
    if (s[p] == '0' && (peek_at(lx, p + 1) == 'x' || peek_at(lx, p + 1) == 'X')) {
        p += 2;
        uint64_t v = 0;
        size_t digits = 0;
        int h;
        while ((h = hex_value(peek_at(lx, p))) >= 0) {
            if (v > (limit >> 4)) {
                lx->pos = p;
                return lex_error(lx, t, "integer is too large");
            }
            v = (v << 4) | (uint64_t)h;
            p++;
            digits++;
        }
        if (digits == 0) return lex_error(lx, t, "invalid hexadecimal integer");
        if (v > limit) return lex_error(lx, t, "integer is too large");
        if (is_ident_char(peek_at(lx, p))) return lex_error(lx, t, "invalid hexadecimal integer");
        t->type = TOK_INT;
        t->num.u = v;
        t->len = p - t->start;
        lx->pos = p;
        return TOK_INT;
    }
    bool is_float = false;
    uint64_t v = 0;
    bool overflow = false;
    while (is_digit(peek_at(lx, p))) {
        uint64_t d = (uint64_t)(s[p] - '0');
        if (v > (UINT64_MAX - d) / 10) overflow = true;
        else v = v * 10 + d;
        p++;
    }
    /* A '.' followed by a digit makes a float; "1..3" is 1, '..', 3. */
    if (peek_at(lx, p) == '.' && is_digit(peek_at(lx, p + 1))) {
        is_float = true;
        p++;
        while (is_digit(peek_at(lx, p))) p++;
    }
    int e = peek_at(lx, p);
    if (e == 'e' || e == 'E') {
        int n1 = peek_at(lx, p + 1);
        if (is_digit(n1) || ((n1 == '+' || n1 == '-') && is_digit(peek_at(lx, p + 2)))) {
            is_float = true;
            p += 2;
            while (is_digit(peek_at(lx, p))) p++;
        }
    }
    if (is_ident_char(peek_at(lx, p))) {
        return lex_error(lx, t, "invalid number: a letter follows the digits");
    }
    t->len = p - t->start;
    if (is_float) {
        double fast;
        if (fast_float(s + t->start, t->len, &fast)) {
            t->type = TOK_FLOAT;
            t->num.d = fast;
            lx->pos = p;
            return TOK_FLOAT;
        }
        char buf[LEXER_FLOAT_SIZE_MAX_BYTES + 1];
        if (t->len > LEXER_FLOAT_SIZE_MAX_BYTES) return lex_error(lx, t, "float literal is too long");
        memcpy(buf, s + t->start, t->len);
        buf[t->len] = '\0';
        t->type = TOK_FLOAT;
        t->num.d = strtod(buf, NULL);
        lx->pos = p;
        return TOK_FLOAT;
    }
    if (overflow || v > limit) return lex_error(lx, t, "integer is too large");
    t->type = TOK_INT;
    t->num.u = v;
    lx->pos = p;
    return TOK_INT;
}

static tok_type scan_string(lexer *lx, token *t) {
    const char *s = lx->text;
    char quote = s[lx->pos];
    size_t p = lx->pos + 1;
    t->start = p;
    size_t n = lx->len;
    for (;;) {
        if (p >= n) {
            lx->pos = n;
            return lex_error(lx, t, "unterminated string literal");
        }
        unsigned char c = (unsigned char)s[p];
        if (c == (unsigned char)quote) break;
        if (c == '\\') {
            t->has_escape = true;
            if (p + 1 >= n) {
                lx->pos = n;
                return lex_error(lx, t, "unterminated string literal");
            }
            note_byte(lx, (unsigned char)s[p + 1], p + 1);
            p += 2;
            continue;
        }
        if (c == '\n' || c >= 0x80) note_byte(lx, c, p);
        p++;
    }
    t->type = TOK_STRING;
    t->len = p - t->start;
    lx->pos = p + 1;
    return TOK_STRING;
}

tok_type lexer_next(lexer *lx, token *t) {
    QUIVER_ASSERT(lx != NULL && t != NULL);
    size_t cpos = 0;
    uint32_t cline = 0, ccol = 0;
    t->kw = KW_NONE;
    t->has_escape = false;
    t->quoted = false;
    t->num.u = 0;
    if (!skip_space(lx, &cpos, &cline, &ccol)) {
        t->begin = cpos;
        t->start = cpos;
        t->len = 0;
        t->end = lx->len;
        t->line = cline;
        t->column = ccol;
        return lex_error(lx, t, "unterminated comment");
    }
    t->begin = lx->pos;
    t->start = lx->pos;
    t->len = 1;
    t->line = lx->line;
    t->column = (uint32_t)(lx->pos - lx->line_start - lx->line_cont + 1);
    int c = peek_at(lx, lx->pos);
    int c1 = peek_at(lx, lx->pos + 1);
    tok_type ty;
    switch (c) {
    case -1:
        t->type = TOK_EOF;
        t->len = 0;
        t->end = lx->pos;
        return TOK_EOF;
    case '(': ty = TOK_LPAREN; break;
    case ')': ty = TOK_RPAREN; break;
    case '[': ty = TOK_LBRACKET; break;
    case ']': ty = TOK_RBRACKET; break;
    case '{': ty = TOK_LBRACE; break;
    case '}': ty = TOK_RBRACE; break;
    case ',': ty = TOK_COMMA; break;
    case ':': ty = TOK_COLON; break;
    case ';': ty = TOK_SEMI; break;
    case '|': ty = TOK_PIPE; break;
    case '*': ty = TOK_STAR; break;
    case '/': ty = TOK_SLASH; break;
    case '%': ty = TOK_PERCENT; break;
    case '^': ty = TOK_CARET; break;
    case '-': ty = TOK_MINUS; break;
    case '+':
        if (c1 == '=') { ty = TOK_PLUSEQ; t->len = 2; }
        else ty = TOK_PLUS;
        break;
    case '=':
        if (c1 == '~') { ty = TOK_REGEX; t->len = 2; }
        else ty = TOK_EQ;
        break;
    case '<':
        if (c1 == '=') { ty = TOK_LE; t->len = 2; }
        else if (c1 == '>') { ty = TOK_NE; t->len = 2; }
        else ty = TOK_LT;
        break;
    case '>':
        if (c1 == '=') { ty = TOK_GE; t->len = 2; }
        else ty = TOK_GT;
        break;
    case '!':
        if (c1 == '=') { ty = TOK_NE; t->len = 2; break; } /* != as a synonym of <> */
        lx->pos++;
        return lex_error(lx, t, "unexpected character");
    case '.':
        if (c1 == '.') { ty = TOK_DOTDOT; t->len = 2; break; }
        if (is_digit(c1)) {
            ty = scan_number(lx, t);
            t->end = lx->pos;
            return ty;
        }
        ty = TOK_DOT;
        break;
    case '\'':
    case '"':
        ty = scan_string(lx, t);
        t->end = lx->pos;
        return ty;
    case '`':
        if (!scan_backquoted(lx, t)) {
            lx->pos = lx->len;
            return lex_error(lx, t, "unterminated back-quoted identifier");
        }
        t->type = TOK_QIDENT;
        t->end = lx->pos;
        return TOK_QIDENT;
    case '$':
        if (c1 == '`') {
            lx->pos++;
            if (!scan_backquoted(lx, t)) {
                lx->pos = lx->len;
                return lex_error(lx, t, "unterminated back-quoted identifier");
            }
            t->quoted = true;
        } else if (is_ident_char(c1)) {
            size_t p = lx->pos + 1;
            while (p < lx->len && is_ident_char((unsigned char)lx->text[p])) {
                note_byte(lx, (unsigned char)lx->text[p], p);
                p++;
            }
            t->start = lx->pos + 1;
            t->len = p - t->start;
            lx->pos = p;
        } else {
            lx->pos++;
            return lex_error(lx, t, "a parameter name must follow '$'");
        }
        t->type = TOK_PARAM;
        t->end = lx->pos;
        return TOK_PARAM;
    default:
        if (is_digit(c)) {
            ty = scan_number(lx, t);
            t->end = lx->pos;
            return ty;
        }
        if (is_ident_start(c)) {
            size_t p = lx->pos;
            while (p < lx->len && is_ident_char((unsigned char)lx->text[p])) {
                if ((unsigned char)lx->text[p] >= 0x80) note_byte(lx, (unsigned char)lx->text[p], p);
                p++;
            }
            t->type = TOK_IDENT;
            t->len = p - lx->pos;
            t->kw = lexer_keyword(lx->text + lx->pos, t->len);
            lx->pos = p;
            t->end = p;
            return TOK_IDENT;
        }
        return lex_error(lx, t, "unexpected character");
    }
    t->type = ty;
    lx->pos += t->len;
    t->end = lx->pos;
    return ty;
}

/* ---- unescaping ---- */

static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Four hex digits at body[i..i+4), or -1. */
static long hex4(const char *body, size_t len, size_t i) {
    if (i + 4 > len) return -1;
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = hex_value((unsigned char)body[i + k]);
        if (h < 0) return -1;
        v = (v << 4) | h;
    }
    return v;
}

long lexer_unescape(const char *body, size_t len, char *out, const char **error_message,
                    size_t *error_offset) {
    size_t o = 0;
    size_t i = 0;
    while (i < len) {
        const char *bs = memchr(body + i, '\\', len - i);
        size_t run = bs == NULL ? len - i : (size_t)(bs - (body + i));
        memcpy(out + o, body + i, run);
        o += run;
        i += run;
        if (i >= len) break;
        /* body[i] is a backslash; the lexer guarantees a byte follows it */
        if (i + 1 >= len) {
            *error_message = "invalid escape sequence at the end of a string";
            *error_offset = i;
            return -1;
        }
        char e = body[i + 1];
        switch (e) {
        case '\\': out[o++] = '\\'; i += 2; break;
        case '\'': out[o++] = '\''; i += 2; break;
        case '"': out[o++] = '"'; i += 2; break;
        case 'n': out[o++] = '\n'; i += 2; break;
        case 't': out[o++] = '\t'; i += 2; break;
        case 'r': out[o++] = '\r'; i += 2; break;
        case 'b': out[o++] = '\b'; i += 2; break;
        case 'f': out[o++] = '\f'; i += 2; break;
        case 'U':
            /* \UXXXXXXXX (openCypher 9); \U with four digits reads like \u */
            if (hex4(body, len, i + 2) >= 0 && hex4(body, len, i + 6) >= 0) {
                long cp = (hex4(body, len, i + 2) << 16) | hex4(body, len, i + 6);
                /* not a code point: read the four-digit form ("\U00e9abcd" is "éabcd") */
                if (cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF)) {
                    o += put_utf8(out + o, (uint32_t)cp);
                    i += 10;
                    break;
                }
            }
            /* fall through */
        case 'u': {
            long cp = hex4(body, len, i + 2);
            if (cp < 0) {
                *error_message = "invalid \\u escape: four hexadecimal digits expected";
                *error_offset = i;
                return -1;
            }
            size_t used = 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = -1;
                if (i + 7 < len && body[i + 6] == '\\' && (body[i + 7] == 'u' || body[i + 7] == 'U'))
                    lo = hex4(body, len, i + 8);
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    *error_message = "invalid \\u escape: unpaired surrogate";
                    *error_offset = i;
                    return -1;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                used = 12;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                *error_message = "invalid \\u escape: unpaired surrogate";
                *error_offset = i;
                return -1;
            }
            o += put_utf8(out + o, (uint32_t)cp);
            i += used;
            break;
        }
        default:
            *error_message = "invalid escape sequence";
            *error_offset = i;
            return -1;
        }
    }
    QUIVER_ASSERT(o <= len);
    return (long)o;
}

size_t lexer_unquote_ident(const char *body, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        out[o++] = body[i];
        if (body[i] == '`' && i + 1 < len && body[i + 1] == '`') i++;
    }
    return o;
}
