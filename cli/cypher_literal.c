/*
 * cypher_literal.c -- openCypher literal writer (see cypher_literal.h).
 *
 * The string writer scans for bytes that need escaping and copies the runs
 * between them with one memcpy each: import text is mostly plain ASCII, and
 * this keeps escaping off the profile.
 */
#include "cypher_literal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../common/qassert.h"

static bool needs_escape(unsigned char c) { return c < 0x20 || c == 0x7f || c == '\\' || c == '\''; }

void cypher_append_string(cli_buf *b, const char *s, size_t n) {
    QUIVER_ASSERT(s != NULL || n == 0);
    cli_buf_reserve(b, n + 2);
    cli_buf_putc(b, '\'');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!needs_escape(c)) continue;
        cli_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '\\': cli_buf_append(b, "\\\\", 2); break;
        case '\'': cli_buf_append(b, "\\'", 2); break;
        case '\n': cli_buf_append(b, "\\n", 2); break;
        case '\t': cli_buf_append(b, "\\t", 2); break;
        case '\r': cli_buf_append(b, "\\r", 2); break;
        case '\b': cli_buf_append(b, "\\b", 2); break;
        case '\f': cli_buf_append(b, "\\f", 2); break;
        default: cli_buf_printf(b, "\\u%04X", (unsigned)c); break;
        }
    }
    cli_buf_append(b, s + run, n - run);
    cli_buf_putc(b, '\'');
}

int cypher_append_double(cli_buf *b, double d) {
    if (isnan(d) || isinf(d)) return -1;
    char tmp[40];
    int len = snprintf(tmp, sizeof tmp, "%.17g", d);
    QUIVER_ASSERT(len > 0 && (size_t)len < sizeof tmp);
    cli_buf_append(b, tmp, (size_t)len);
    if (strpbrk(tmp, ".eE") == NULL) cli_buf_append(b, ".0", 2);
    return 0;
}

void cypher_append_int(cli_buf *b, int64_t v) { cli_buf_printf(b, "%" PRId64, v); }

static bool is_plain_name(const char *s, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        if (!(alpha || (i > 0 && digit))) return false;
    }
    return true;
}

void cypher_append_name(cli_buf *b, const char *s, size_t n) {
    QUIVER_ASSERT(s != NULL || n == 0);
    if (is_plain_name(s, n)) {
        cli_buf_append(b, s, n);
        return;
    }
    cli_buf_putc(b, '`');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '`') cli_buf_putc(b, '`');
        cli_buf_putc(b, s[i]);
    }
    cli_buf_putc(b, '`');
}

bool cypher_utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c == 0) return false;
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) need = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) need = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) need = 3, cp = c & 0x07;
        else return false;
        if (n - i <= need) return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000)) return false; /* overlong */
        if (cp >= 0xD800 && cp <= 0xDFFF) return false;                          /* surrogate */
        if (cp > 0x10FFFF) return false;
        i += need + 1;
    }
    return true;
}
