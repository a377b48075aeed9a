/*
 * functions.c -- openCypher scalar functions, and the names of the
 * aggregate functions (their state machines live in aggregate.c).
 *
 * Names are matched case-insensitively (toLower and TOLOWER are one
 * function).  Behaviour and error texts follow FalkorDB's function
 * reference (docs.falkordb.com, "Functions"): most functions return null
 * for a null argument, and a wrong argument type is a run-time error
 * "Type mismatch: expected <types> but was <type>".  Strings are UTF-8:
 * size(), substring(), left(), right() and reverse() count code points.
 *
 * toUpper()/toLower() map every code point with towupper_l/towlower_l in
 * a fixed C.UTF-8 locale (glibc's Unicode simple case mappings), never the
 * process's environment locale, so a write gives the same bytes on every
 * replica whatever LANG says.  Simple (one-to-one) mappings only, like
 * FalkorDB: 'ß' stays 'ß'.  Invalid UTF-8 bytes pass through unchanged.
 * Trade-off: the tables are libc's, so replicas must run the same libc
 * (Debian 12 everywhere); a private table would be independent of libc but
 * is a few thousand lines of data to keep up with Unicode.
 *
 * timestamp() and rand() are deterministic inputs of a write (DESIGN.md
 * section 3): timestamp() is the request's timestamp_ms, rand() draws from
 * the per-query generator seeded with the request's seed.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "../common/qassert.h"
#include "engine.h"

/* ---- helpers ---- */

/* A list of count items to fill, charged as count work units before the
 * fill; the caller returns list_done(c, l) once the items are in place. */
static qv_value new_list(qctx *c, uint32_t count, qv_list **out) {
    *out = NULL;
    if (count > QUIVER_LIST_COUNT_MAX) {
        qctx_fail(c, QUERY_ERR_LIMIT, "List exceeds the maximum of %u elements", QUIVER_LIST_COUNT_MAX);
        return qv_null();
    }
    if (!qctx_work(c, count)) return qv_null();
    qv_list *l = qctx_alloc(c, sizeof *l);
    if (l == NULL) return qv_null();
    l->count = count;
    l->depth = 1;
    l->elements = count;
    l->items = qctx_alloc(c, sizeof(qv_value) * (count ? count : 1));
    if (l->items == NULL) return qv_null();
    *out = l;
    qv_value v;
    v.type = QV_LIST;
    v.u.list = l;
    return v;
}

/* The filled list as a value; null when it breaks the value limits. */
static qv_value list_done(qctx *c, qv_list *l) {
    if (c->failed || !qctx_seal_list(c, l)) return qv_null();
    qv_value v;
    v.type = QV_LIST;
    v.u.list = l;
    return v;
}

/* Number of UTF-8 code points. */
static uint32_t utf8_count(qv_str s) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < s.len; i++)
        if (((unsigned char)s.ptr[i] & 0xC0) != 0x80) n++;
    return n;
}

/* Byte offset of code point k (clamped to the end). */
static uint32_t utf8_offset(qv_str s, int64_t k) {
    uint32_t i = 0;
    while (i < s.len && k > 0) {
        i++;
        while (i < s.len && ((unsigned char)s.ptr[i] & 0xC0) == 0x80) i++;
        k--;
    }
    return i;
}

static qv_value sub_str(qctx *c, qv_str s, uint32_t from, uint32_t to) {
    return str_value(c, s.ptr + from, to - from);
}

static qv_value schema_name_value(qctx *c, qs_schema_kind kind, uint32_t id) {
    qv_str name;
    if (c->graph_missing || qs_schema_name(c->view, c->graph, kind, id, &name) != QS_OK) return qv_null();
    return qv_string(name.ptr, name.len);
}

/* ---- entity functions ---- */

static qv_value f_id(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type == QV_NODE) return qv_int((int64_t)a[0].u.node->id);
    if (a[0].type == QV_EDGE) return qv_int((int64_t)a[0].u.edge->id);
    return type_mismatch(c, "Node, Edge, or Null", a[0]);
}

static qv_value f_labels(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type != QV_NODE) return type_mismatch(c, "Node or Null", a[0]);
    qv_node *nd = a[0].u.node;
    if (!load_node(c, nd)) return qv_null();
    qv_list *l;
    qv_value r = new_list(c, nd->label_count, &l);
    if (l == NULL) return r;
    for (uint32_t i = 0; i < nd->label_count; i++) l->items[i] = schema_name_value(c, QS_SCHEMA_LABEL, nd->label_ids[i]);
    return list_done(c, l);
}

static qv_value f_type(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type != QV_EDGE) return type_mismatch(c, "Edge or Null", a[0]);
    return schema_name_value(c, QS_SCHEMA_RELTYPE, a[0].u.edge->type_id);
}

static bool entity_props(qctx *c, qv_value v, qv_props **p) {
    if (v.type == QV_NODE) {
        if (!load_node(c, v.u.node)) return false;
        *p = &v.u.node->props;
        return true;
    }
    if (!load_edge(c, v.u.edge)) return false;
    *p = &v.u.edge->props;
    return true;
}

static qv_value f_properties(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    if (a[0].type == QV_NULL || a[0].type == QV_MAP) return a[0];
    if (a[0].type != QV_NODE && a[0].type != QV_EDGE) return type_mismatch(c, "Map, Node, Edge, or Null", a[0]);
    qv_props *p;
    if (!entity_props(c, a[0], &p)) return qv_null();
    if (!qctx_work(c, p->count)) return qv_null();
    qv_map *m = qctx_alloc(c, sizeof *m);
    if (m == NULL) return qv_null();
    m->count = p->count;
    m->keys = qctx_alloc(c, sizeof(qv_str) * (p->count ? p->count : 1));
    m->values = qctx_alloc(c, sizeof(qv_value) * (p->count ? p->count : 1));
    if (m->keys == NULL || m->values == NULL) return qv_null();
    for (uint32_t i = 0; i < p->count; i++) {
        qv_value k = schema_name_value(c, QS_SCHEMA_PROPKEY, p->key_ids[i]);
        m->keys[i] = k.type == QV_STRING ? k.u.s : (qv_str){"", 0};
        m->values[i] = p->values[i];
    }
    if (!qctx_seal_map(c, m)) return qv_null();
    qv_value r;
    r.type = QV_MAP;
    r.u.map = m;
    return r;
}

static qv_value f_keys(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    if (a[0].type == QV_NULL) return a[0];
    qv_list *l;
    if (a[0].type == QV_MAP) {
        qv_value r = new_list(c, a[0].u.map->count, &l);
        if (l == NULL) return r;
        for (uint32_t i = 0; i < l->count; i++) l->items[i] = qv_string(a[0].u.map->keys[i].ptr, a[0].u.map->keys[i].len);
        return list_done(c, l);
    }
    if (a[0].type != QV_NODE && a[0].type != QV_EDGE) return type_mismatch(c, "Map, Node, Edge, or Null", a[0]);
    qv_props *p;
    if (!entity_props(c, a[0], &p)) return qv_null();
    qv_value r = new_list(c, p->count, &l);
    if (l == NULL) return r;
    for (uint32_t i = 0; i < p->count; i++) l->items[i] = schema_name_value(c, QS_SCHEMA_PROPKEY, p->key_ids[i]);
    return list_done(c, l);
}

static qv_value f_startnode(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)n;
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type != QV_EDGE) return type_mismatch(c, "Edge or Null", a[0]);
    bool start = e->fn->name[0] == 's';
    return make_node(c, start ? a[0].u.edge->src_id : a[0].u.edge->dst_id);
}

static qv_value f_nodes(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)n;
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type != QV_PATH) return type_mismatch(c, "Path or Null", a[0]);
    const qv_path *p = a[0].u.path;
    bool nodes = e->fn->name[0] == 'n';
    uint32_t cnt = nodes ? p->node_count : (p->node_count ? p->node_count - 1 : 0);
    qv_list *l;
    qv_value r = new_list(c, cnt, &l);
    if (l == NULL) return r;
    for (uint32_t i = 0; i < cnt; i++) {
        if (nodes) {
            l->items[i].type = QV_NODE;
            l->items[i].u.node = p->nodes[i];
        } else {
            l->items[i].type = QV_EDGE;
            l->items[i].u.edge = p->edges[i];
        }
    }
    return list_done(c, l);
}

/* ---- size and lists ---- */

static qv_value f_size(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    switch ((qv_type)a[0].type) {
    case QV_NULL: return a[0];
    case QV_STRING:
        if (!qctx_work_bytes(c, a[0].u.s.len)) return qv_null();
        return qv_int(utf8_count(a[0].u.s));
    case QV_LIST: return qv_int(a[0].u.list->count);
    default: return type_mismatch(c, "List, String, or Null", a[0]);
    }
}

static qv_value f_length(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    if (a[0].type == QV_PATH) return qv_int(a[0].u.path->node_count ? a[0].u.path->node_count - 1 : 0);
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type == QV_STRING || a[0].type == QV_LIST) return f_size(c, e, a, n);
    return type_mismatch(c, "Path, List, String, or Null", a[0]);
}

static qv_value f_head(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)n;
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type != QV_LIST) return type_mismatch(c, "List or Null", a[0]);
    if (a[0].u.list->count == 0) return qv_null();
    return e->fn->name[0] == 'h' ? a[0].u.list->items[0] : a[0].u.list->items[a[0].u.list->count - 1];
}

static qv_value f_tail(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type != QV_LIST) return type_mismatch(c, "List or Null", a[0]);
    uint32_t cnt = a[0].u.list->count ? a[0].u.list->count - 1 : 0;
    qv_list *l;
    qv_value r = new_list(c, cnt, &l);
    if (l == NULL) return r;
    if (cnt) memcpy(l->items, a[0].u.list->items + 1, sizeof(qv_value) * cnt);
    return list_done(c, l);
}

static qv_value f_range(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e;
    for (uint32_t i = 0; i < n; i++)
        if (a[i].type != QV_INT) return type_mismatch(c, "Integer", a[i]);
    int64_t from = a[0].u.i, to = a[1].u.i, step = n > 2 ? a[2].u.i : 1;
    if (step == 0) {
        qctx_fail(c, QUERY_ERR_RUNTIME, "ArgumentError: step argument to range() can't be 0");
        return qv_null();
    }
    uint64_t cnt = 0;
    if ((step > 0 && from <= to) || (step < 0 && from >= to)) {
        __int128 span = (__int128)to - from;
        cnt = (uint64_t)(span / step) + 1;
    }
    if (cnt > QUIVER_LIST_COUNT_MAX) {
        qctx_fail(c, QUERY_ERR_LIMIT, "List exceeds the maximum of %u elements", QUIVER_LIST_COUNT_MAX);
        return qv_null();
    }
    qv_list *l;
    qv_value r = new_list(c, (uint32_t)cnt, &l);
    if (l == NULL) return r;
    for (uint64_t i = 0; i < cnt; i++) l->items[i] = qv_int(from + (int64_t)i * step);
    return list_done(c, l);
}

static qv_value f_reverse(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type == QV_LIST) {
        qv_list *l;
        uint32_t cnt = a[0].u.list->count;
        qv_value r = new_list(c, cnt, &l);
        if (l == NULL) return r;
        for (uint32_t i = 0; i < cnt; i++) l->items[i] = a[0].u.list->items[cnt - 1 - i];
        return list_done(c, l);
    }
    if (a[0].type != QV_STRING) return type_mismatch(c, "String, List, or Null", a[0]);
    qv_str s = a[0].u.s;
    if (!qctx_work_bytes(c, s.len)) return qv_null();
    char *out = qctx_alloc(c, (size_t)s.len + 1);
    if (out == NULL) return qv_null();
    uint32_t w = s.len;
    for (uint32_t i = 0; i < s.len;) {
        uint32_t j = i + 1;
        while (j < s.len && ((unsigned char)s.ptr[j] & 0xC0) == 0x80) j++;
        w -= j - i;
        memcpy(out + w, s.ptr + i, j - i);
        i = j;
    }
    out[s.len] = '\0';
    return qv_string(out, s.len);
}

/* ---- strings ---- */

/* The C.UTF-8 locale for case mapping: created once, never freed (it is
 * immutable and shared by every thread; towupper_l is thread-safe). */
static pthread_once_t case_locale_once = PTHREAD_ONCE_INIT;
static locale_t case_locale = (locale_t)0;

static void case_locale_init(void) { case_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0); }

/* Decode one well-formed UTF-8 sequence at s[0..len) (RFC 3629: no
 * overlongs, no surrogates, at most U+10FFFF).  Returns its length in bytes
 * and sets *cp, or 0 if the bytes there are not well-formed. */
static uint32_t utf8_decode(const unsigned char *s, uint32_t len, uint32_t *cp) {
    unsigned char b0 = s[0];
    uint32_t n, v, min;
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    } else if ((b0 & 0xe0) == 0xc0) {
        n = 2, v = b0 & 0x1f, min = 0x80;
    } else if ((b0 & 0xf0) == 0xe0) {
        n = 3, v = b0 & 0x0f, min = 0x800;
    } else if ((b0 & 0xf8) == 0xf0) {
        n = 4, v = b0 & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n > len) return 0;
    for (uint32_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return n;
}

static uint32_t utf8_encode(uint32_t cp, unsigned char *out) {
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* toUpper / toLower: see the top comment.  A mapped code point may need
 * more bytes than the original (U+023A 'Ⱥ', 2 bytes, lowers to U+2C65, 3
 * bytes): at most 3/2 as many, so the output buffer is sized for that. */
static qv_value f_case(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)n;
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type != QV_STRING) return type_mismatch(c, "String or Null", a[0]);
    bool upper = e->fn->name[2] == 'u';
    const unsigned char *in = (const unsigned char *)a[0].u.s.ptr;
    uint32_t len = a[0].u.s.len;
    if (!qctx_work_bytes(c, len)) return qv_null();
    bool ascii = true;
    for (uint32_t i = 0; i < len && ascii; i++) ascii = in[i] < 0x80;
    if (ascii) { /* the common case: no decoding, no locale */
        qv_value r = str_value(c, a[0].u.s.ptr, len);
        if (r.type != QV_STRING) return r;
        char *s = (char *)r.u.s.ptr;
        /* plain arithmetic, not ctype's toupper: that one follows the
         * process locale */
        for (uint32_t i = 0; i < len; i++) {
            if (upper && s[i] >= 'a' && s[i] <= 'z') s[i] = (char)(s[i] - 'a' + 'A');
            else if (!upper && s[i] >= 'A' && s[i] <= 'Z') s[i] = (char)(s[i] - 'A' + 'a');
        }
        return r;
    }
    pthread_once(&case_locale_once, case_locale_init);
    if (case_locale == (locale_t)0)
        return qctx_fail(c, QUERY_ERR_RUNTIME, "%s: the C.UTF-8 locale is not available", upper ? "toUpper" : "toLower"),
               qv_null();
    uint64_t cap = (uint64_t)len + len / 2 + 1;
    unsigned char *out = qctx_alloc(c, cap);
    if (out == NULL) return qv_null();
    uint32_t o = 0;
    for (uint32_t i = 0; i < len;) {
        uint32_t cp;
        uint32_t k = utf8_decode(in + i, len - i, &cp);
        if (k == 0) { /* not UTF-8: the byte passes through */
            out[o++] = in[i++];
            continue;
        }
        wint_t m = upper ? towupper_l((wint_t)cp, case_locale) : towlower_l((wint_t)cp, case_locale);
        uint32_t mc = (uint32_t)m;
        if (mc > 0x10ffff || (mc >= 0xd800 && mc <= 0xdfff)) mc = cp;
        unsigned char buf[4];
        uint32_t ml = utf8_encode(mc, buf);
        QUIVER_ASSERT(o + ml <= cap);
        memcpy(out + o, buf, ml);
        o += ml;
        i += k;
    }
    if (o > QUIVER_STRING_SIZE_MAX_BYTES)
        return qctx_fail(c, QUERY_ERR_LIMIT, "String exceeds the maximum size of %u bytes", QUIVER_STRING_SIZE_MAX_BYTES),
               qv_null();
    out[o] = '\0';
    return qv_string((const char *)out, o);
}

static qv_value f_trim(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)n;
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type != QV_STRING) return type_mismatch(c, "String or Null", a[0]);
    qv_str s = a[0].u.s;
    if (!qctx_work_bytes(c, s.len)) return qv_null();
    uint32_t from = 0, to = s.len;
    char k = e->fn->name[0];
    if (k != 'r')
        while (from < to && isspace((unsigned char)s.ptr[from])) from++;
    if (k != 'l')
        while (to > from && isspace((unsigned char)s.ptr[to - 1])) to--;
    return qv_string(s.ptr + from, to - from);
}

static qv_value f_substring(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e;
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type != QV_STRING) return type_mismatch(c, "String or Null", a[0]);
    if (a[1].type != QV_INT) return type_mismatch(c, "Integer", a[1]);
    if (n > 2 && a[2].type != QV_INT) return type_mismatch(c, "Integer", a[2]);
    if (a[1].u.i < 0 || (n > 2 && a[2].u.i < 0)) {
        qctx_fail(c, QUERY_ERR_RUNTIME, "substring: start and length must be non-negative");
        return qv_null();
    }
    qv_str s = a[0].u.s;
    if (!qctx_work_bytes(c, s.len)) return qv_null();
    uint32_t from = utf8_offset(s, a[1].u.i);
    uint32_t to = s.len;
    if (n > 2) {
        qv_str rest = {s.ptr + from, s.len - from};
        to = from + utf8_offset(rest, a[2].u.i);
    }
    return qv_string(s.ptr + from, to - from);
}

static qv_value f_left(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)n;
    if (a[0].type == QV_NULL) return a[0];
    if (a[0].type != QV_STRING) return type_mismatch(c, "String or Null", a[0]);
    if (a[1].type != QV_INT) return type_mismatch(c, "Integer", a[1]);
    if (a[1].u.i < 0) {
        qctx_fail(c, QUERY_ERR_RUNTIME, "length must be a non-negative integer");
        return qv_null();
    }
    qv_str s = a[0].u.s;
    if (!qctx_work_bytes(c, s.len)) return qv_null();
    if (e->fn->name[0] == 'l') return sub_str(c, s, 0, utf8_offset(s, a[1].u.i));
    int64_t total = utf8_count(s);
    int64_t skip = total - a[1].u.i;
    return sub_str(c, s, skip > 0 ? utf8_offset(s, skip) : 0, s.len);
}

/* Offset of the first occurrence of needle (non-empty) in s at or after
 * from, or UINT32_MAX.  glibc's memmem is linear (two-way search), so the
 * scans of replace() and split() are too, whatever the strings. */
static uint32_t next_match(qv_str s, uint32_t from, qv_str needle) {
    QUIVER_ASSERT(needle.len > 0);
    if (from > s.len || s.len - from < needle.len) return UINT32_MAX;
    const char *p = memmem(s.ptr + from, s.len - from, needle.ptr, needle.len);
    return p == NULL ? UINT32_MAX : (uint32_t)(p - s.ptr);
}

static qv_value f_replace(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    for (int i = 0; i < 3; i++) {
        if (a[i].type == QV_NULL) return a[i];
        if (a[i].type != QV_STRING) return type_mismatch(c, "String or Null", a[i]);
    }
    qv_str s = a[0].u.s, f = a[1].u.s, r = a[2].u.s;
    if (f.len == 0) return a[0];
    if (!qctx_work_bytes(c, 2ull * s.len)) return qv_null();
    size_t cnt = 0;
    for (uint32_t i = 0; (i = next_match(s, i, f)) != UINT32_MAX; i += f.len) cnt++;
    size_t len = s.len + cnt * r.len - cnt * f.len;
    if (len > QUIVER_STRING_SIZE_MAX_BYTES) {
        qctx_fail(c, QUERY_ERR_LIMIT, "String exceeds the maximum size of %u bytes", QUIVER_STRING_SIZE_MAX_BYTES);
        return qv_null();
    }
    if (!qctx_work_bytes(c, len)) return qv_null();
    char *out = qctx_alloc(c, len + 1);
    if (out == NULL) return qv_null();
    size_t w = 0;
    uint32_t from = 0;
    for (uint32_t i; (i = next_match(s, from, f)) != UINT32_MAX; from = i + f.len) {
        memcpy(out + w, s.ptr + from, i - from);
        w += i - from;
        memcpy(out + w, r.ptr, r.len);
        w += r.len;
    }
    memcpy(out + w, s.ptr + from, s.len - from);
    w += s.len - from;
    QUIVER_ASSERT(w == len);
    out[w] = '\0';
    return qv_string(out, (uint32_t)w);
}

static qv_value f_split(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    for (int i = 0; i < 2; i++) {
        if (a[i].type == QV_NULL) return a[i];
        if (a[i].type != QV_STRING) return type_mismatch(c, "String or Null", a[i]);
    }
    qv_str s = a[0].u.s, d = a[1].u.s;
    if (!qctx_work_bytes(c, 2ull * s.len)) return qv_null();
    uint32_t cnt = 1;
    if (d.len == 0) cnt = utf8_count(s) ? utf8_count(s) : 1;
    else
        for (uint32_t i = 0; (i = next_match(s, i, d)) != UINT32_MAX; i += d.len) cnt++;
    qv_list *l;
    qv_value r = new_list(c, cnt, &l);
    if (l == NULL) return r;
    uint32_t k = 0, start = 0;
    if (d.len == 0) {
        if (s.len == 0) l->items[0] = qv_string(s.ptr, 0);
        for (uint32_t i = 0; i < s.len;) {
            uint32_t j = i + 1;
            while (j < s.len && ((unsigned char)s.ptr[j] & 0xC0) == 0x80) j++;
            l->items[k++] = qv_string(s.ptr + i, j - i);
            i = j;
        }
        return list_done(c, l);
    }
    for (uint32_t i; (i = next_match(s, start, d)) != UINT32_MAX; start = i + d.len)
        l->items[k++] = qv_string(s.ptr + start, i - start);
    QUIVER_ASSERT(k + 1 == cnt);
    l->items[k++] = qv_string(s.ptr + start, s.len - start);
    return list_done(c, l);
}

/* ---- conversions ---- */

static int fmt_double(double d, char *buf, size_t size) {
    if (isnan(d)) return snprintf(buf, size, "NaN");
    if (isinf(d)) return snprintf(buf, size, d > 0 ? "Infinity" : "-Infinity");
    int n = snprintf(buf, size, "%.15g", d);
    if (strtod(buf, NULL) != d) n = snprintf(buf, size, "%.17g", d);
    if (strpbrk(buf, ".eE") == NULL && (size_t)n + 2 < size) {
        buf[n++] = '.';
        buf[n++] = '0';
        buf[n] = '\0';
    }
    return n;
}

static qv_value f_tostring(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    char buf[64];
    int len;
    switch ((qv_type)a[0].type) {
    case QV_NULL:
    case QV_STRING: return a[0];
    case QV_INT: len = snprintf(buf, sizeof buf, "%" PRId64, a[0].u.i); break;
    case QV_DOUBLE: len = fmt_double(a[0].u.d, buf, sizeof buf); break;
    case QV_BOOL: len = snprintf(buf, sizeof buf, "%s", a[0].u.b ? "true" : "false"); break;
    default: return type_mismatch(c, "Integer, Float, String, Boolean, or Null", a[0]);
    }
    return str_value(c, buf, (size_t)len);
}

/* Parse a whole string as a number; false when it is not one. */
static bool parse_number(qv_str s, qv_value *out) {
    char buf[128];
    uint32_t from = 0, to = s.len;
    while (from < to && isspace((unsigned char)s.ptr[from])) from++;
    while (to > from && isspace((unsigned char)s.ptr[to - 1])) to--;
    if (to == from || to - from >= sizeof buf) return false;
    memcpy(buf, s.ptr + from, to - from);
    buf[to - from] = '\0';
    char *end;
    errno = 0;
    long long i = strtoll(buf, &end, 10);
    if (*end == '\0' && errno == 0) {
        *out = qv_int(i);
        return true;
    }
    errno = 0;
    double d = strtod(buf, &end);
    if (*end == '\0' && errno == 0) {
        *out = qv_double(d);
        return true;
    }
    return false;
}

static qv_value f_tointeger(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    qv_value v = a[0];
    switch ((qv_type)v.type) {
    case QV_NULL:
    case QV_INT: return v;
    case QV_BOOL: return qv_int(v.u.b ? 1 : 0);
    case QV_DOUBLE:
        if (isnan(v.u.d) || v.u.d >= 9223372036854775808.0 || v.u.d < -9223372036854775808.0) return qv_null();
        return qv_int((int64_t)v.u.d);
    case QV_STRING: {
        qv_value r;
        if (!parse_number(v.u.s, &r)) return qv_null();
        if (r.type == QV_DOUBLE) {
            if (isnan(r.u.d) || r.u.d >= 9223372036854775808.0 || r.u.d < -9223372036854775808.0) return qv_null();
            return qv_int((int64_t)r.u.d);
        }
        return r;
    }
    default: return type_mismatch(c, "String, Boolean, Integer, Float, or Null", v);
    }
}

static qv_value f_tofloat(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    qv_value v = a[0];
    switch ((qv_type)v.type) {
    case QV_NULL:
    case QV_DOUBLE: return v;
    case QV_INT: return qv_double((double)v.u.i);
    case QV_STRING: {
        qv_value r;
        if (!parse_number(v.u.s, &r)) return qv_null();
        return r.type == QV_INT ? qv_double((double)r.u.i) : r;
    }
    default: return type_mismatch(c, "String, Float, Integer, or Null", v);
    }
}

static qv_value f_toboolean(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    qv_value v = a[0];
    switch ((qv_type)v.type) {
    case QV_NULL:
    case QV_BOOL: return v;
    case QV_INT: return qv_bool(v.u.i != 0);
    case QV_STRING:
        if (v.u.s.len == 4 && strncasecmp(v.u.s.ptr, "true", 4) == 0) return qv_bool(true);
        if (v.u.s.len == 5 && strncasecmp(v.u.s.ptr, "false", 5) == 0) return qv_bool(false);
        return qv_null();
    default: return type_mismatch(c, "String, Boolean, Integer, or Null", v);
    }
}

/* ---- misc ---- */

static qv_value f_coalesce(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)c; (void)e;
    for (uint32_t i = 0; i < n; i++)
        if (a[i].type != QV_NULL) return a[i];
    return qv_null();
}

static qv_value f_exists(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)c; (void)e; (void)n;
    if (a[0].type == QV_BOOL) return a[0]; /* exists(pattern) */
    return qv_bool(a[0].type != QV_NULL);
}

static qv_value f_timestamp(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)a; (void)n;
    return qv_int(c->req->timestamp_ms);
}

static qv_value f_rand(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)a; (void)n;
    return qv_double((double)(qctx_rand(c) >> 11) * 0x1.0p-53);
}

static qv_value f_pi(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)c; (void)a; (void)n;
    return qv_double(e->fn->name[0] == 'p' ? M_PI : M_E);
}

/* ---- math ---- */

static qv_value f_abs(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    qv_value v = a[0];
    if (v.type == QV_NULL) return v;
    if (v.type == QV_INT) {
        if (v.u.i == INT64_MIN) {
            qctx_fail(c, QUERY_ERR_RUNTIME, "Integer overflow");
            return qv_null();
        }
        return qv_int(v.u.i < 0 ? -v.u.i : v.u.i);
    }
    if (v.type == QV_DOUBLE) return qv_double(fabs(v.u.d));
    return type_mismatch(c, "Integer, Float, or Null", v);
}

static qv_value f_sign(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)e; (void)n;
    qv_value v = a[0];
    if (v.type == QV_NULL) return v;
    if (v.type == QV_INT) return qv_int(v.u.i > 0 ? 1 : v.u.i < 0 ? -1 : 0);
    if (v.type == QV_DOUBLE) return qv_int(v.u.d > 0 ? 1 : v.u.d < 0 ? -1 : 0);
    return type_mismatch(c, "Integer, Float, or Null", v);
}

/* floor, ceil, round keep integers as they are; floats stay floats. */
static qv_value f_rounding(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)n;
    qv_value v = a[0];
    if (v.type == QV_NULL || v.type == QV_INT) return v;
    if (v.type != QV_DOUBLE) return type_mismatch(c, "Integer, Float, or Null", v);
    switch (e->fn->name[0]) {
    case 'f': return qv_double(floor(v.u.d));
    case 'c': return qv_double(ceil(v.u.d));
    default: return qv_double(floor(v.u.d + 0.5));
    }
}

static qv_value f_math1(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)n;
    qv_value v = a[0];
    if (v.type == QV_NULL) return v;
    if (v.type != QV_INT && v.type != QV_DOUBLE) return type_mismatch(c, "Integer, Float, or Null", v);
    double d = v.type == QV_INT ? (double)v.u.i : v.u.d;
    const char *nm = e->fn->name;
    if (strcmp(nm, "sqrt") == 0) return qv_double(sqrt(d));
    if (strcmp(nm, "exp") == 0) return qv_double(exp(d));
    if (strcmp(nm, "log") == 0) return qv_double(log(d));
    if (strcmp(nm, "log10") == 0) return qv_double(log10(d));
    if (strcmp(nm, "sin") == 0) return qv_double(sin(d));
    if (strcmp(nm, "cos") == 0) return qv_double(cos(d));
    if (strcmp(nm, "tan") == 0) return qv_double(tan(d));
    return qv_null();
}

/* Aggregates are evaluated by aggregate.c; this impl only runs when one is
 * misused outside a projection, which the planner rejects. */
static qv_value f_aggregate(qctx *c, const cx *e, qv_value *a, uint32_t n) {
    (void)a; (void)n;
    qctx_fail(c, QUERY_ERR_SEMANTIC, "Invalid use of aggregating function '%s'", e->fn->name);
    return qv_null();
}

static const fn_def FUNCTIONS[] = {
    {"id", 1, 1, f_id, false},
    {"labels", 1, 1, f_labels, false},
    {"type", 1, 1, f_type, false},
    {"properties", 1, 1, f_properties, false},
    {"keys", 1, 1, f_keys, false},
    {"size", 1, 1, f_size, false},
    {"length", 1, 1, f_length, false},
    {"nodes", 1, 1, f_nodes, false},
    {"relationships", 1, 1, f_nodes, false},
    {"startnode", 1, 1, f_startnode, false},
    {"endnode", 1, 1, f_startnode, false},
    {"tolower", 1, 1, f_case, false},
    {"toupper", 1, 1, f_case, false},
    {"tostring", 1, 1, f_tostring, false},
    {"tointeger", 1, 1, f_tointeger, false},
    {"tofloat", 1, 1, f_tofloat, false},
    {"toboolean", 1, 1, f_toboolean, false},
    {"coalesce", 1, 64, f_coalesce, false},
    {"exists", 1, 1, f_exists, false},
    {"timestamp", 0, 0, f_timestamp, false},
    {"rand", 0, 0, f_rand, false},
    {"range", 2, 3, f_range, false},
    {"head", 1, 1, f_head, false},
    {"last", 1, 1, f_head, false},
    {"tail", 1, 1, f_tail, false},
    {"reverse", 1, 1, f_reverse, false},
    {"abs", 1, 1, f_abs, false},
    {"sign", 1, 1, f_sign, false},
    {"floor", 1, 1, f_rounding, false},
    {"ceil", 1, 1, f_rounding, false},
    {"round", 1, 1, f_rounding, false},
    {"sqrt", 1, 1, f_math1, false},
    {"exp", 1, 1, f_math1, false},
    {"log", 1, 1, f_math1, false},
    {"log10", 1, 1, f_math1, false},
    {"sin", 1, 1, f_math1, false},
    {"cos", 1, 1, f_math1, false},
    {"tan", 1, 1, f_math1, false},
    {"pi", 0, 0, f_pi, false},
    {"e", 0, 0, f_pi, false},
    {"trim", 1, 1, f_trim, false},
    {"ltrim", 1, 1, f_trim, false},
    {"rtrim", 1, 1, f_trim, false},
    {"substring", 2, 3, f_substring, false},
    {"left", 2, 2, f_left, false},
    {"right", 2, 2, f_left, false},
    {"replace", 3, 3, f_replace, false},
    {"split", 2, 2, f_split, false},
    {"count", 0, 1, f_aggregate, true},
    {"sum", 1, 1, f_aggregate, true},
    {"avg", 1, 1, f_aggregate, true},
    {"min", 1, 1, f_aggregate, true},
    {"max", 1, 1, f_aggregate, true},
    {"collect", 1, 1, f_aggregate, true},
};

const fn_def *fn_lookup(qv_str name) {
    for (size_t i = 0; i < sizeof FUNCTIONS / sizeof FUNCTIONS[0]; i++) {
        const char *fn = FUNCTIONS[i].name;
        if (strlen(fn) == name.len && strncasecmp(fn, name.ptr, name.len) == 0) return &FUNCTIONS[i];
    }
    return NULL;
}

bool fn_is_aggregate_name(qv_str name) {
    const fn_def *f = fn_lookup(name);
    return f != NULL && f->aggregate;
}
