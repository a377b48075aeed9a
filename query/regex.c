/*
 * regex.c -- `=~` with PCRE2 (engine.h: qre_*).
 *
 * Semantics: Cypher's `s =~ p` is Java's s.matches(p): the whole subject
 * must match.  PCRE2's syntax is the Perl/Java family users expect
 * (character classes, \d \w \s, lazy and possessive quantifiers,
 * look-around, (?i) flags, \p{..}); the pattern is compiled with
 * PCRE2_ANCHORED | PCRE2_ENDANCHORED (a match must start at the start and
 * end at the end; backtracking still finds `ab` in `a|ab`), PCRE2_UTF (the
 * subject and the pattern are UTF-8, `.` is one code point) and
 * PCRE2_NEVER_BACKSLASH_C (\C could split a code point).  \w and \d are
 * ASCII, as in Java without UNICODE_CHARACTER_CLASS.
 *
 * Invalid UTF-8: a pattern that is not valid UTF-8 is an invalid pattern
 * (an error); a subject that is not valid UTF-8 matches nothing and the
 * result is null, as for an operand that is not a string.  PCRE2 checks
 * the subject on every call, so this is decided identically everywhere.
 *
 * Determinism and limits (the reason for PCRE2 over glibc's regcomp, whose
 * compiler recursed on the C stack and whose memory and time had no bound):
 *   - compilation: pattern length QUIVER_QUERY_REGEX_PATTERN_SIZE_MAX_BYTES,
 *     parentheses nesting QUIVER_QUERY_REGEX_PARENS_NEST_MAX (PCRE2 checks
 *     it while parsing, before any recursion), counted repetition
 *     QUIVER_QUERY_REGEX_REPEAT_MAX with nested counts multiplied (our own
 *     linear scan, repeat_product; RE2's rule), compile memory
 *     QUIVER_QUERY_REGEX_COMPILE_MEMORY_MAX_BYTES through a general context
 *     whose allocator counts bytes and refuses past the cap (PCRE2's own
 *     limit on a compiled pattern, 64 KiB with Debian's link size 2, applies
 *     too);
 *   - matching: PCRE2's match limit (backtracking steps), depth limit and
 *     heap limit, all counted by PCRE2, never timed; no JIT (it counts
 *     differently and depends on the CPU).  Hitting one is an error that
 *     every replica hits the same way.
 *   - cost: a match is charged QUERY_REGEX_CALL_UNITS + subject bytes /
 *     64 work units.  It runs first with a small match limit
 *     (QUERY_REGEX_TIER0_STEPS, 1,000 steps); only when that is not enough
 *     is it re-run with 4 times the limit, up to
 *     QUIVER_QUERY_REGEX_MATCH_LIMIT, and each outgrown tier is charged its
 *     steps / QUERY_REGEX_STEPS_PER_UNIT (a step took about a unit's time,
 *     12 ns).  Whether a tier is outgrown is PCRE2's deterministic count,
 *     so the charge is the same everywhere; it tracks the real cost within
 *     a factor of about 4 past the first tier (12 within it), and the
 *     re-runs add at most a third.  Ordinary patterns finish in the first
 *     tier and pay one call.  Compiling is charged QUERY_REGEX_COMPILE_UNITS
 *     + 1 per pattern byte.
 *
 * Compile once: a constant pattern is compiled by the planner (so
 * admission refuses a bad one before it is proposed); a computed one is
 * compiled when its text changes and kept on the expression (cx.re).
 * Memory: every pattern and its match data come from the counting
 * allocator (malloc underneath) and are freed by qre_release at the end of
 * the query; a malloc failure sets qctx.out_of_memory.
 *
 * Requires the same PCRE2 (Debian's libpcre2-8) on every replica: limits
 * are counted by its code.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/qassert.h"
#include "engine.h"

/* Match-limit tiers: TIER0, x4, x16 ... capped at
 * QUIVER_QUERY_REGEX_MATCH_LIMIT, which the last tier is. */
#define QUERY_REGEX_TIER0_STEPS 1000u
#define QUERY_REGEX_TIER_FACTOR 4u
#define QUERY_REGEX_TIERS 6u
/* Bytes of a pattern quoted in an error message. */
#define QUERY_REGEX_QUOTE_SIZE_MAX_BYTES 40u

_Static_assert(QUERY_REGEX_TIER0_STEPS * 1024u >= QUIVER_QUERY_REGEX_MATCH_LIMIT &&
                   QUERY_REGEX_TIER0_STEPS * 256u < QUIVER_QUERY_REGEX_MATCH_LIMIT,
               "the sixth tier reaches the match limit, the fifth does not");

/* Match limit of tier t. */
static uint32_t tier_limit(uint32_t t) {
    uint64_t l = QUERY_REGEX_TIER0_STEPS;
    for (uint32_t i = 0; i < t; i++) l *= QUERY_REGEX_TIER_FACTOR;
    return l > QUIVER_QUERY_REGEX_MATCH_LIMIT ? QUIVER_QUERY_REGEX_MATCH_LIMIT : (uint32_t)l;
}

/* Counting allocator: live bytes, and a cap the caller sets before each
 * compile or match. */
typedef struct re_alloc {
    size_t live_bytes;
    size_t cap_bytes;         /* refuse an allocation that would pass this */
    bool refused;             /* an allocation hit the cap */
    bool malloc_failed;       /* malloc itself failed */
} re_alloc;

struct qre_state {
    re_alloc al;
    pcre2_general_context *gc;
    pcre2_compile_context *cc;
    pcre2_match_context *mc[QUERY_REGEX_TIERS];
    qre *head;                /* every live pattern of the query */
};

struct qre {
    qre *prev, *next;
    pcre2_code *code;
    pcre2_match_data *md;
    uint32_t text_len;
    char text[];              /* the pattern as given */
};

#define RE_HEADER_BYTES 16u

static void *re_malloc(PCRE2_SIZE size, void *data) {
    re_alloc *al = data;
    if (size > SIZE_MAX - RE_HEADER_BYTES || al->live_bytes + size > al->cap_bytes) {
        al->refused = true;
        return NULL;
    }
    unsigned char *p = malloc(size + RE_HEADER_BYTES);
    if (p == NULL) {
        al->malloc_failed = true;
        return NULL;
    }
    memcpy(p, &size, sizeof size);
    al->live_bytes += size;
    return p + RE_HEADER_BYTES;
}

static void re_free(void *ptr, void *data) {
    if (ptr == NULL) return;
    re_alloc *al = data;
    unsigned char *p = (unsigned char *)ptr - RE_HEADER_BYTES;
    size_t size;
    memcpy(&size, p, sizeof size);
    QUIVER_ASSERT(al->live_bytes >= size);
    al->live_bytes -= size;
    free(p);
}

/* The pattern for a message: at most QUERY_REGEX_QUOTE_SIZE_MAX_BYTES,
 * control bytes as '?', never cutting a UTF-8 sequence. */
static void quote(qv_str p, char *out, size_t cap) {
    size_t n = p.len;
    bool cut = false;
    if (n > QUERY_REGEX_QUOTE_SIZE_MAX_BYTES) {
        n = QUERY_REGEX_QUOTE_SIZE_MAX_BYTES;
        while (n > 0 && ((unsigned char)p.ptr[n] & 0xC0) == 0x80) n--;
        cut = true;
    }
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap; i++) {
        unsigned char ch = (unsigned char)p.ptr[i];
        out[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (cut && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static bool state_fail_memory(qctx *c) {
    c->out_of_memory = true;
    return qctx_fail(c, QUERY_ERR_LIMIT, "Out of memory compiling a regular expression");
}

/* The query's PCRE2 contexts, made on first use. */
static qre_state *state_get(qctx *c) {
    if (c->re != NULL) return c->re;
    qre_state *st = calloc(1, sizeof *st);
    if (st == NULL) {
        state_fail_memory(c);
        return NULL;
    }
    c->re = st; /* freed by qre_release, whatever happens below */
    st->al.cap_bytes = SIZE_MAX;
    st->gc = pcre2_general_context_create(re_malloc, re_free, &st->al);
    if (st->gc == NULL) {
        state_fail_memory(c);
        return NULL;
    }
    st->cc = pcre2_compile_context_create(st->gc);
    if (st->cc == NULL) {
        state_fail_memory(c);
        return NULL;
    }
    pcre2_set_max_pattern_length(st->cc, QUIVER_QUERY_REGEX_PATTERN_SIZE_MAX_BYTES);
    pcre2_set_parens_nest_limit(st->cc, QUIVER_QUERY_REGEX_PARENS_NEST_MAX);
    for (uint32_t t = 0; t < QUERY_REGEX_TIERS; t++) {
        st->mc[t] = pcre2_match_context_create(st->gc);
        if (st->mc[t] == NULL) {
            state_fail_memory(c);
            return NULL;
        }
        pcre2_set_match_limit(st->mc[t], tier_limit(t));
        pcre2_set_depth_limit(st->mc[t], QUIVER_QUERY_REGEX_DEPTH_LIMIT);
        pcre2_set_heap_limit(st->mc[t], QUIVER_QUERY_REGEX_HEAP_LIMIT_KIB);
    }
    st->al.cap_bytes = st->al.live_bytes; /* nothing more until a compile or match opens it */
    return st;
}

/* The largest product of nested counted-repetition bounds in pattern p
 * (`(a{1,10}){1,20}` gives 200; `{m,n}` counts n, `{m,}` and `{m}` count
 * m; `*`, `+`, `?` are loops and count nothing).  A conservative scan of
 * PCRE2 syntax: escapes (with \x{..}, \p{..} and the like), \Q..\E,
 * character classes and (?#..) comments are skipped so that their braces
 * are not taken for quantifiers; anything it misreads (extended-mode
 * comments) can only make the product larger.  Saturates at UINT64_MAX.
 * Called on a pattern PCRE2 compiled, so groups nest at most
 * QUIVER_QUERY_REGEX_PARENS_NEST_MAX deep.  Linear in the pattern. */
static uint64_t sat_mul(uint64_t a, uint64_t b) { return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b; }

static uint64_t repeat_product(const char *p, size_t n) {
    uint64_t inner[QUIVER_QUERY_REGEX_PARENS_NEST_MAX + 2]; /* per open group: its largest product */
    uint32_t top = 0;
    inner[0] = 1;
    uint64_t last = 0; /* product of the atom a quantifier would repeat; 0: none */
    uint64_t best = 1;
    size_t i = 0;
    while (i < n) {
        char ch = p[i];
        if (ch == '\\') {
            if (i + 1 < n && p[i + 1] == 'Q') { /* \Q...\E: literal text */
                const char *e = memmem(p + i + 2, n - i - 2, "\\E", 2);
                i = e == NULL ? n : (size_t)(e - p) + 2;
            } else {
                i += 2;
                /* escapes that take braces: \x{41} \o{101} \p{L} \P{L} \N{U+41} \g{1} \k{name} */
                if (i < n && p[i] == '{' && memchr("xopPNgk", p[i - 1], 7) != NULL) {
                    const char *e = memchr(p + i, '}', n - i);
                    i = e == NULL ? n : (size_t)(e - p) + 1;
                }
            }
            last = 1;
            continue;
        }
        if (ch == '[') { /* a character class, ']' first is literal */
            size_t j = i + 1;
            if (j < n && p[j] == '^') j++;
            if (j < n && p[j] == ']') j++;
            while (j < n && p[j] != ']') {
                if (p[j] == '\\') j += 2;
                else if (p[j] == '[' && j + 1 < n && p[j + 1] == ':') {
                    const char *e = memmem(p + j + 2, n - j - 2, ":]", 2);
                    j = e == NULL ? n : (size_t)(e - p) + 2;
                } else j++;
            }
            i = j + 1;
            last = 1;
            continue;
        }
        if (ch == '(') {
            if (i + 2 < n && p[i + 1] == '?' && p[i + 2] == '#') { /* (?#comment) */
                const char *e = memchr(p + i, ')', n - i);
                i = e == NULL ? n : (size_t)(e - p) + 1;
                continue;
            }
            if (top + 1 < sizeof inner / sizeof inner[0]) inner[++top] = 1;
            last = 0;
            i++;
            continue;
        }
        if (ch == ')') {
            last = inner[top];
            if (top > 0) {
                top--;
                if (last > inner[top]) inner[top] = last;
            }
            i++;
            continue;
        }
        if (ch == '{') { /* {m}, {m,} or {m,n}; anything else is a literal brace */
            size_t j = i + 1;
            uint64_t m = 0, k = 0;
            bool digits = false, comma = false, kdigits = false;
            while (j < n && p[j] >= '0' && p[j] <= '9') m = sat_mul(m, 10) + (uint64_t)(p[j++] - '0'), digits = true;
            if (j < n && p[j] == ',') {
                comma = true;
                j++;
                while (j < n && p[j] >= '0' && p[j] <= '9') k = sat_mul(k, 10) + (uint64_t)(p[j++] - '0'), kdigits = true;
            }
            if (digits && j < n && p[j] == '}') {
                uint64_t count = comma && kdigits ? k : m;
                if (count == 0) count = 1;
                uint64_t prod = sat_mul(last ? last : 1, count);
                if (prod > inner[top]) inner[top] = prod;
                if (prod > best) best = prod;
                last = 0;
                i = j + 1;
                continue;
            }
            last = 1; /* a literal '{' */
            i++;
            continue;
        }
        if (ch == '|' || ch == '*' || ch == '+' || ch == '?' || ch == '^' || ch == '$') {
            if (ch == '|') last = 0;
            i++;
            continue;
        }
        last = 1; /* an ordinary character (or the start of a UTF-8 one) */
        i++;
    }
    for (uint32_t t = 0; t <= top; t++)
        if (inner[t] > best) best = inner[t];
    return best;
}

qre *qre_compile(qctx *c, qv_str pattern) {
    QUIVER_ASSERT(c != NULL);
    char q[QUERY_REGEX_QUOTE_SIZE_MAX_BYTES * 2];
    if (pattern.len > QUIVER_QUERY_REGEX_PATTERN_SIZE_MAX_BYTES) {
        quote(pattern, q, sizeof q);
        qctx_fail(c, QUERY_ERR_LIMIT, "ERR regular expression '%s' is longer than %u bytes (the limit)", q,
                  (unsigned)QUIVER_QUERY_REGEX_PATTERN_SIZE_MAX_BYTES);
        return NULL;
    }
    if (!qctx_work(c, QUERY_REGEX_COMPILE_UNITS + pattern.len)) return NULL;
    qre_state *st = state_get(c);
    if (st == NULL) return NULL;
    qre *re = malloc(sizeof *re + pattern.len + 1);
    if (re == NULL) {
        state_fail_memory(c);
        return NULL;
    }
    memset(re, 0, sizeof *re);
    re->text_len = pattern.len;
    if (pattern.len) memcpy(re->text, pattern.ptr, pattern.len);
    re->text[pattern.len] = '\0';
    /* linked first, so qre_release frees it whatever happens below */
    re->next = st->head;
    if (st->head) st->head->prev = re;
    st->head = re;

    st->al.refused = false;
    st->al.cap_bytes = st->al.live_bytes + QUIVER_QUERY_REGEX_COMPILE_MEMORY_MAX_BYTES;
    int err = 0;
    PCRE2_SIZE off = 0;
    re->code = pcre2_compile((PCRE2_SPTR)(pattern.len ? pattern.ptr : ""), pattern.len,
                             PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_NEVER_BACKSLASH_C, &err, &off,
                             st->cc);
    if (re->code != NULL) re->md = pcre2_match_data_create_from_pattern(re->code, st->gc);
    st->al.cap_bytes = st->al.live_bytes;
    if (st->al.malloc_failed) {
        state_fail_memory(c);
        return NULL;
    }
    if (re->code != NULL && re->md != NULL && repeat_product(pattern.len ? pattern.ptr : "", pattern.len) > QUIVER_QUERY_REGEX_REPEAT_MAX) {
        quote(pattern, q, sizeof q);
        qctx_fail(c, QUERY_ERR_LIMIT,
                  "ERR regular expression '%s' repeats more than %u times (the limit on counted repetition, nested "
                  "counts multiplied)",
                  q, (unsigned)QUIVER_QUERY_REGEX_REPEAT_MAX);
        return NULL;
    }
    if (re->code == NULL || re->md == NULL) {
        quote(pattern, q, sizeof q);
        if (re->code != NULL || st->al.refused || err == PCRE2_ERROR_HEAP_FAILED) {
            qctx_fail(c, QUERY_ERR_LIMIT, "ERR regular expression '%s' needs more than %u bytes to compile (the limit)", q,
                      (unsigned)QUIVER_QUERY_REGEX_COMPILE_MEMORY_MAX_BYTES);
            return NULL;
        }
        if (err == PCRE2_ERROR_PATTERN_TOO_LARGE) {
            qctx_fail(c, QUERY_ERR_LIMIT, "ERR regular expression '%s' is too large to compile (PCRE2's limit on a program)", q);
            return NULL;
        }
        if (err == PCRE2_ERROR_PARENTHESES_NEST_TOO_DEEP || err == PCRE2_ERROR_PARENTHESES_STACK_CHECK) {
            qctx_fail(c, QUERY_ERR_LIMIT,
                      "ERR regular expression '%s' nests parentheses deeper than %u levels (the limit) at offset %zu", q,
                      (unsigned)QUIVER_QUERY_REGEX_PARENS_NEST_MAX, (size_t)off);
            return NULL;
        }
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(err, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "error %d", err);
        qctx_fail(c, QUERY_ERR_RUNTIME, "ERR invalid regular expression '%s': %s at offset %zu", q, (const char *)msg,
                  (size_t)off);
        return NULL;
    }
    return re;
}

bool qre_is(const qre *re, qv_str pattern) {
    return re != NULL && re->text_len == pattern.len && (pattern.len == 0 || memcmp(re->text, pattern.ptr, pattern.len) == 0);
}

void qre_free(qctx *c, qre *re) {
    if (re == NULL) return;
    qre_state *st = c->re;
    QUIVER_ASSERT(st != NULL);
    if (re->prev) re->prev->next = re->next;
    else st->head = re->next;
    if (re->next) re->next->prev = re->prev;
    pcre2_match_data_free(re->md);
    pcre2_code_free(re->code);
    free(re);
}

qv_value qre_match(qctx *c, qre *re, qv_str subject) {
    QUIVER_ASSERT(c != NULL && re != NULL && re->code != NULL && c->re != NULL);
    qre_state *st = c->re;
    if (!qctx_work(c, QUERY_REGEX_CALL_UNITS + subject.len / QUERY_REGEX_SUBJECT_BYTES_PER_UNIT)) return qv_null();
    /* a match may grow the match data's frame vector up to the heap limit */
    st->al.refused = false;
    st->al.cap_bytes = st->al.live_bytes + (size_t)QUIVER_QUERY_REGEX_HEAP_LIMIT_KIB * 1024u + 64u * 1024u;
    int rc = PCRE2_ERROR_MATCHLIMIT;
    for (uint32_t t = 0; t < QUERY_REGEX_TIERS; t++) {
        if (t > 0 && !qctx_work(c, tier_limit(t - 1) / QUERY_REGEX_STEPS_PER_UNIT)) break;
        rc = pcre2_match(re->code, (PCRE2_SPTR)(subject.len ? subject.ptr : ""), subject.len, 0, 0, re->md, st->mc[t]);
        if (rc != PCRE2_ERROR_MATCHLIMIT) break;
    }
    st->al.cap_bytes = st->al.live_bytes;
    if (c->failed) return qv_null();
    if (rc >= 0) return qv_bool(true);
    if (rc == PCRE2_ERROR_NOMATCH) return qv_bool(false);
    if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21) return qv_null();
    if (st->al.malloc_failed) {
        c->out_of_memory = true;
        qctx_fail(c, QUERY_ERR_LIMIT, "Out of memory matching a regular expression");
        return qv_null();
    }
    char q[QUERY_REGEX_QUOTE_SIZE_MAX_BYTES * 2];
    quote((qv_str){re->text, re->text_len}, q, sizeof q);
    switch (rc) {
    case PCRE2_ERROR_MATCHLIMIT:
        qctx_fail(c, QUERY_ERR_LIMIT, "ERR regular expression '%s' exceeds the match limit of %u steps (subject of %u bytes)",
                  q, (unsigned)QUIVER_QUERY_REGEX_MATCH_LIMIT, subject.len);
        break;
    case PCRE2_ERROR_DEPTHLIMIT:
        qctx_fail(c, QUERY_ERR_LIMIT, "ERR regular expression '%s' exceeds the depth limit of %u (subject of %u bytes)", q,
                  (unsigned)QUIVER_QUERY_REGEX_DEPTH_LIMIT, subject.len);
        break;
    case PCRE2_ERROR_HEAPLIMIT:
    case PCRE2_ERROR_NOMEMORY:
        qctx_fail(c, QUERY_ERR_LIMIT, "ERR regular expression '%s' exceeds the heap limit of %u KiB (subject of %u bytes)", q,
                  (unsigned)QUIVER_QUERY_REGEX_HEAP_LIMIT_KIB, subject.len);
        break;
    default: {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(rc, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "error %d", rc);
        qctx_fail(c, QUERY_ERR_RUNTIME, "ERR regular expression '%s' failed: %s", q, (const char *)msg);
        break;
    }
    }
    return qv_null();
}

void qre_release(qctx *c) {
    qre_state *st = c->re;
    if (st == NULL) return;
    while (st->head != NULL) qre_free(c, st->head);
    for (uint32_t t = 0; t < QUERY_REGEX_TIERS; t++) pcre2_match_context_free(st->mc[t]);
    pcre2_compile_context_free(st->cc);
    pcre2_general_context_free(st->gc);
    QUIVER_ASSERT(st->al.live_bytes == 0);
    free(st);
    c->re = NULL;
}
