/*
 * eval.c -- evaluation of compiled expressions (engine.h: cx) against the
 * current row, plus the context helpers (errors, timeouts, PRNG) and the
 * entity accessors shared with the operators.
 *
 * Semantics: openCypher 9 ("Expressions", "Operators", "Working with
 * null"): three-valued logic for AND/OR/XOR/NOT, null propagation through
 * operators and most functions; integer arithmetic is checked (overflow and
 * integer division by zero are errors, as in Neo4j/FalkorDB), float division
 * follows IEEE 754 (inf, nan).  Error texts follow FalkorDB where it has
 * one ("Type mismatch: expected String or Null but was Integer",
 * "Division by zero").
 *
 * Entities inside the engine are usually "unloaded" (id only).  A property
 * read goes to storage through the view; in a read-only query a loaded
 * record is used directly.  Writes always read through the transaction view
 * so they see their own writes and never a stale cached copy.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/qassert.h"
#include "engine.h"

/* ------------------------------------------------------------------ */
/* Context helpers                                                     */
/* ------------------------------------------------------------------ */

bool qctx_fail(qctx *c, query_status st, const char *fmt, ...) {
    if (c->failed) return false;
    c->failed = true;
    c->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return false;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** (Blackman & Vigna, "Scrambled linear pseudorandom number
 * generators", 2018), seeded through splitmix64 in query.c. */
uint64_t qctx_rand(qctx *c) {
    uint64_t *s = c->rng;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void *qctx_alloc(qctx *c, size_t size_bytes) {
    if (!qctx_reserve(c, size_bytes)) return NULL;
    void *p = q_arena_alloc(c->a, size_bytes);
    if (p == NULL) {
        if (c->a->malloc_failed) c->out_of_memory = true;
        size_t cap = c->a->size_max_bytes;
        if (c->a->budget != NULL && c->a->budget->size_max_bytes != 0 &&
            (cap == 0 || c->a->budget->size_max_bytes < cap))
            cap = c->a->budget->size_max_bytes;
        qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity (%llu bytes)", (unsigned long long)cap);
    }
    return p;
}

qv_value str_value(qctx *c, const char *p, size_t len) {
    if (len > QUIVER_STRING_SIZE_MAX_BYTES) {
        qctx_fail(c, QUERY_ERR_LIMIT, "String exceeds the maximum size of %u bytes", QUIVER_STRING_SIZE_MAX_BYTES);
        return qv_null();
    }
    if (!qctx_work_bytes(c, len)) return qv_null();
    char *s = qctx_alloc(c, len + 1);
    if (s == NULL) return qv_null();
    if (len) memcpy(s, p, len);
    s[len] = '\0';
    return qv_string(s, (uint32_t)len);
}

qv_value type_mismatch(qctx *c, const char *expected, qv_value got) {
    qctx_fail(c, QUERY_ERR_RUNTIME, "Type mismatch: expected %s but was %s", expected, qv_type_name((qv_type)got.type));
    return qv_null();
}

/* ------------------------------------------------------------------ */
/* Schema and entities                                                 */
/* ------------------------------------------------------------------ */

bool schema_lookup(qctx *c, qs_schema_kind kind, qv_str name, uint32_t *id) {
    if (c->graph_missing) return false;
    return qs_schema_id(c->view, c->graph, kind, name.ptr, name.len, id) == QS_OK;
}

bool schema_intern(qctx *c, qs_schema_kind kind, qv_str name, uint32_t *id) {
    QUIVER_ASSERT(c->txn != NULL);
    if (name.len == 0 || name.len > QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES)
        return qctx_fail(c, QUERY_ERR_RUNTIME, "Invalid name: %u bytes", name.len);
    int rc = qs_schema_intern(c->txn, c->graph, kind, name.ptr, name.len, id);
    if (rc == QS_LIMIT) return qctx_fail(c, QUERY_ERR_LIMIT, "Too many schema names in graph");
    if (rc != QS_OK) return qctx_fail(c, QUERY_ERR_RUNTIME, "Could not register name '%.*s'", (int)name.len, name.ptr);
    return true;
}

qv_value make_node(qctx *c, uint64_t id) {
    qv_node *n = qctx_alloc(c, sizeof *n);
    if (n == NULL) return qv_null();
    memset(n, 0, sizeof *n);
    n->id = id;
    qv_value v;
    v.type = QV_NODE;
    v.u.node = n;
    return v;
}

qv_value make_edge(qctx *c, uint64_t id, uint64_t src, uint64_t dst, uint32_t type_id) {
    qv_edge *e = qctx_alloc(c, sizeof *e);
    if (e == NULL) return qv_null();
    memset(e, 0, sizeof *e);
    e->id = id;
    e->src_id = src;
    e->dst_id = dst;
    e->type_id = type_id;
    qv_value v;
    v.type = QV_EDGE;
    v.u.edge = e;
    return v;
}

bool load_node(qctx *c, qv_node *n) {
    if (n->loaded && c->txn == NULL) return true;
    if (!qctx_work(c, QUERY_WORK_STORAGE_READ_UNITS)) return false;
    qs_node_rec rec;
    int rc = c->graph_missing ? QS_NOT_FOUND : qs_node_get(c->view, c->graph, n->id, c->a, &rec);
    if (rc == QS_NOT_FOUND) {
        /* deleted in this query: an empty shell */
        n->label_count = 0;
        n->props.count = 0;
        n->loaded = true;
        return true;
    }
    if (rc != QS_OK) return qctx_fail(c, QUERY_ERR_RUNTIME, "Could not read node %" PRIu64, n->id);
    n->label_count = rec.label_count;
    n->label_ids = rec.label_ids;
    n->label_names = NULL;
    n->props = rec.props;
    n->props.keys = NULL;
    n->loaded = true;
    return true;
}

bool load_edge(qctx *c, qv_edge *e) {
    if (e->loaded && c->txn == NULL) return true;
    if (!qctx_work(c, QUERY_WORK_STORAGE_READ_UNITS)) return false;
    qs_edge_rec rec;
    int rc = c->graph_missing ? QS_NOT_FOUND : qs_edge_get(c->view, c->graph, e->id, c->a, &rec);
    if (rc == QS_NOT_FOUND) {
        e->props.count = 0;
        e->loaded = true;
        return true;
    }
    if (rc != QS_OK) return qctx_fail(c, QUERY_ERR_RUNTIME, "Could not read relationship %" PRIu64, e->id);
    e->type_id = rec.type_id;
    e->src_id = rec.src_id;
    e->dst_id = rec.dst_id;
    e->props = rec.props;
    e->props.keys = NULL;
    e->type_name.ptr = NULL;
    e->type_name.len = 0;
    e->loaded = true;
    return true;
}

static qv_value props_get(const qv_props *p, uint32_t key_id) {
    uint32_t lo = 0, hi = p->count;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (p->key_ids[mid] == key_id) return p->values[mid];
        if (p->key_ids[mid] < key_id) lo = mid + 1;
        else hi = mid;
    }
    /* key ids are ascending by contract; fall back to a scan if not */
    for (uint32_t i = 0; i < p->count; i++)
        if (p->key_ids[i] == key_id) return p->values[i];
    return qv_null();
}

qv_value eval_node_prop(qctx *c, qv_node *n, uint32_t key_id) {
    if (c->graph_missing) return qv_null();
    if (c->txn == NULL) {
        /* reads: decode the record once; the same node usually feeds many
         * rows (every relationship expanded from it) */
        if (!n->loaded && !load_node(c, n)) return qv_null();
        return props_get(&n->props, key_id);
    }
    qv_value out;
    if (!qctx_work(c, QUERY_WORK_STORAGE_READ_UNITS)) return qv_null();
    int rc = qs_node_prop(c->view, c->graph, n->id, key_id, c->a, &out);
    if (rc == QS_NOT_FOUND) return qv_null();
    if (rc != QS_OK) {
        qctx_fail(c, QUERY_ERR_RUNTIME, "Could not read node %" PRIu64, n->id);
        return qv_null();
    }
    return out;
}

qv_value eval_edge_prop(qctx *c, qv_edge *e, uint32_t key_id) {
    if (!load_edge(c, e)) return qv_null();
    return props_get(&e->props, key_id);
}

bool value_storable(qctx *c, qv_value v) {
    switch ((qv_type)v.type) {
    case QV_NULL:
    case QV_BOOL:
    case QV_INT:
    case QV_DOUBLE:
    case QV_STRING:
        return true;
    case QV_LIST:
        for (uint32_t i = 0; i < v.u.list->count; i++) {
            qv_type t = (qv_type)v.u.list->items[i].type;
            if (t == QV_LIST || t == QV_MAP || t == QV_NODE || t == QV_EDGE || t == QV_PATH)
                return qctx_fail(c, QUERY_ERR_RUNTIME,
                                 "Property values can only be of primitive types or arrays of primitive types");
        }
        return true;
    default:
        return qctx_fail(c, QUERY_ERR_RUNTIME,
                         "Property values can only be of primitive types or arrays of primitive types");
    }
}

/* ------------------------------------------------------------------ */
/* Constructors                                                        */
/* ------------------------------------------------------------------ */

cx *cx_new(qctx *c, cx_kind kind) {
    cx *e = qctx_alloc(c, sizeof *e);
    if (e == NULL) return NULL;
    memset(e, 0, sizeof *e);
    e->kind = (uint8_t)kind;
    return e;
}

cx *cx_const(qctx *c, qv_value v) {
    cx *e = cx_new(c, CX_CONST);
    if (e) e->v = v;
    return e;
}

cx *cx_slot(qctx *c, uint32_t slot) {
    cx *e = cx_new(c, CX_SLOT);
    if (e) e->slot = slot;
    return e;
}

cx *cx_prop(qctx *c, cx *operand, qv_str key) {
    cx *e = cx_new(c, CX_PROP);
    if (e) {
        e->a = operand;
        e->name = key;
    }
    return e;
}

cx *cx_binary(qctx *c, ast_op op, cx *a, cx *b) {
    cx_kind k = op == AST_OP_AND ? CX_AND : op == AST_OP_OR ? CX_OR : op == AST_OP_XOR ? CX_XOR : CX_BINARY;
    cx *e = cx_new(c, k);
    if (e) {
        e->op = (uint8_t)op;
        e->a = a;
        e->b = b;
    }
    return e;
}

cx *cx_has_labels(qctx *c, cx *operand, uint32_t count, const qv_str *labels) {
    cx *e = cx_new(c, CX_HAS_LABELS);
    if (e == NULL) return NULL;
    e->a = operand;
    e->n = count;
    e->keys = qctx_alloc(c, sizeof(qv_str) * (count ? count : 1));
    e->ids = qctx_alloc(c, sizeof(uint32_t) * (count ? count : 1));
    if (e->keys == NULL || e->ids == NULL) return NULL;
    for (uint32_t i = 0; i < count; i++) {
        e->keys[i] = labels[i];
        e->ids[i] = UINT32_MAX;
    }
    return e;
}

/* ------------------------------------------------------------------ */
/* Arithmetic and comparison                                           */
/* ------------------------------------------------------------------ */

static bool is_num(qv_value v) { return v.type == QV_INT || v.type == QV_DOUBLE; }
static double as_double(qv_value v) { return v.type == QV_INT ? (double)v.u.i : v.u.d; }

/* Format a double the way Cypher prints it: shortest round-trip text,
 * always with a decimal point or exponent. */
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

/* Scalar to string for concatenation and toString(); false when the type
 * has no string form. */
static bool scalar_text(qctx *c, qv_value v, qv_value *out) {
    char buf[64];
    int n;
    switch ((qv_type)v.type) {
    case QV_STRING: *out = v; return true;
    case QV_INT: n = snprintf(buf, sizeof buf, "%" PRId64, v.u.i); break;
    case QV_DOUBLE: n = fmt_double(v.u.d, buf, sizeof buf); break;
    case QV_BOOL: n = snprintf(buf, sizeof buf, "%s", v.u.b ? "true" : "false"); break;
    default: return false;
    }
    *out = str_value(c, buf, (size_t)n);
    return true;
}

static qv_value concat_str(qctx *c, qv_str a, qv_str b) {
    size_t len = (size_t)a.len + b.len;
    if (len > QUIVER_STRING_SIZE_MAX_BYTES) {
        qctx_fail(c, QUERY_ERR_LIMIT, "String exceeds the maximum size of %u bytes", QUIVER_STRING_SIZE_MAX_BYTES);
        return qv_null();
    }
    if (!qctx_work_bytes(c, len)) return qv_null();
    char *s = qctx_alloc(c, len + 1);
    if (s == NULL) return qv_null();
    if (a.len) memcpy(s, a.ptr, a.len);
    if (b.len) memcpy(s + a.len, b.ptr, b.len);
    s[len] = '\0';
    return qv_string(s, (uint32_t)len);
}

/* A list of count items to be filled, its elements charged as work now
 * (before the caller's O(count) fill); finish it with list_done.  *out is
 * NULL (and the value null) on error. */
static qv_value make_list(qctx *c, uint32_t count, qv_list **out) {
    *out = NULL;
    if (count > QUIVER_LIST_COUNT_MAX) {
        qctx_fail(c, QUERY_ERR_LIMIT, "List exceeds the maximum of %u elements", QUIVER_LIST_COUNT_MAX);
        return qv_null();
    }
    if (!qctx_work(c, count)) return qv_null();
    qv_list *l = qctx_alloc(c, sizeof *l);
    if (l == NULL) return qv_null();
    l->count = count;
    l->items = qctx_alloc(c, sizeof(qv_value) * (count ? count : 1));
    if (l->items == NULL) return qv_null();
    l->depth = 1;
    l->elements = count;
    *out = l;
    qv_value v;
    v.type = QV_LIST;
    v.u.list = l;
    return v;
}

/* The filled list l as a value, or null when it breaks the value limits. */
static qv_value list_done(qctx *c, qv_list *l) {
    if (!qctx_seal_list(c, l)) return qv_null();
    qv_value v;
    v.type = QV_LIST;
    v.u.list = l;
    return v;
}

/* `=` with its walk charged as work. */
static qv_value equals_charged(qctx *c, qv_value a, qv_value b) {
    uint64_t w = 0;
    qv_value r = qv_equals_w(a, b, &w);
    if (!qctx_work(c, w)) return qv_null();
    return r;
}

static qv_value list_concat(qctx *c, qv_value a, qv_value b) {
    /* a or b may be a non-list element */
    uint32_t na = a.type == QV_LIST ? a.u.list->count : 1;
    uint32_t nb = b.type == QV_LIST ? b.u.list->count : 1;
    qv_list *l = NULL;
    if ((uint64_t)na + nb > QUIVER_LIST_COUNT_MAX) {
        qctx_fail(c, QUERY_ERR_LIMIT, "List exceeds the maximum of %u elements", QUIVER_LIST_COUNT_MAX);
        return qv_null();
    }
    qv_value r = make_list(c, na + nb, &l);
    if (l == NULL) return r;
    if (a.type == QV_LIST) memcpy(l->items, a.u.list->items, sizeof(qv_value) * na);
    else l->items[0] = a;
    if (b.type == QV_LIST) memcpy(l->items + na, b.u.list->items, sizeof(qv_value) * nb);
    else l->items[na] = b;
    (void)r;
    return list_done(c, l);
}

static qv_value arith(qctx *c, ast_op op, qv_value a, qv_value b) {
    if (a.type == QV_NULL || b.type == QV_NULL) return qv_null();
    if (op == AST_OP_ADD) {
        if (a.type == QV_LIST || b.type == QV_LIST) return list_concat(c, a, b);
        if (a.type == QV_STRING || b.type == QV_STRING) {
            qv_value sa, sb;
            if (!scalar_text(c, a, &sa)) return type_mismatch(c, "String, Integer, Float, Boolean or Null", a);
            if (!scalar_text(c, b, &sb)) return type_mismatch(c, "String, Integer, Float, Boolean or Null", b);
            if (c->failed) return qv_null();
            return concat_str(c, sa.u.s, sb.u.s);
        }
    }
    if (!is_num(a)) return type_mismatch(c, "Integer, Float, or Null", a);
    if (!is_num(b)) return type_mismatch(c, "Integer, Float, or Null", b);
    if (op == AST_OP_POW) return qv_double(pow(as_double(a), as_double(b)));
    if (a.type == QV_INT && b.type == QV_INT) {
        int64_t x = a.u.i, y = b.u.i, r;
        switch (op) {
        case AST_OP_ADD:
            if (__builtin_add_overflow(x, y, &r)) goto overflow;
            return qv_int(r);
        case AST_OP_SUB:
            if (__builtin_sub_overflow(x, y, &r)) goto overflow;
            return qv_int(r);
        case AST_OP_MUL:
            if (__builtin_mul_overflow(x, y, &r)) goto overflow;
            return qv_int(r);
        case AST_OP_DIV:
            if (y == 0) goto divzero;
            if (x == INT64_MIN && y == -1) goto overflow;
            return qv_int(x / y);
        case AST_OP_MOD:
            if (y == 0) goto divzero;
            if (y == -1) return qv_int(0);
            return qv_int(x % y);
        default: break;
        }
        return qv_null();
    }
    double x = as_double(a), y = as_double(b);
    switch (op) {
    case AST_OP_ADD: return qv_double(x + y);
    case AST_OP_SUB: return qv_double(x - y);
    case AST_OP_MUL: return qv_double(x * y);
    case AST_OP_DIV: return qv_double(x / y);
    case AST_OP_MOD: return qv_double(fmod(x, y));
    default: return qv_null();
    }
overflow:
    qctx_fail(c, QUERY_ERR_RUNTIME, "Integer overflow");
    return qv_null();
divzero:
    qctx_fail(c, QUERY_ERR_RUNTIME, "Division by zero");
    return qv_null();
}

static bool str_starts(qv_str s, qv_str p) { return p.len <= s.len && (p.len == 0 || memcmp(s.ptr, p.ptr, p.len) == 0); }
static bool str_ends(qv_str s, qv_str p) {
    return p.len <= s.len && (p.len == 0 || memcmp(s.ptr + s.len - p.len, p.ptr, p.len) == 0);
}
static bool str_contains(qv_str s, qv_str p) {
    if (p.len == 0) return true;
    if (p.len > s.len) return false;
    return memmem(s.ptr, s.len, p.ptr, p.len) != NULL;
}

/* s =~ pattern with e's compiled pattern: a constant's, compiled by the
 * planner, or the last computed pattern's, recompiled only when the text
 * changes (regex.c). */
static qv_value regex_match(qctx *c, cx *e, qv_str s, qv_str pat) {
    if (!qre_is(e->re, pat)) {
        if (e->re != NULL) qre_free(c, e->re);
        e->re = qre_compile(c, pat);
        if (e->re == NULL) return qv_null();
    }
    return qre_match(c, e->re, s);
}

static qv_value in_list(qctx *c, qv_value x, qv_value list) {
    if (list.type == QV_NULL) return qv_null();
    if (list.type != QV_LIST) return type_mismatch(c, "List or Null", list);
    bool unknown = false, found = false;
    uint64_t w = 0;
    for (uint32_t i = 0; i < list.u.list->count && !found; i++) {
        qv_value e = qv_equals_w(x, list.u.list->items[i], &w);
        if (e.type == QV_NULL) unknown = true;
        else if (e.u.b) found = true;
    }
    if (!qctx_work(c, w)) return qv_null();
    return found ? qv_bool(true) : unknown ? qv_null() : qv_bool(false);
}

static qv_value binary(qctx *c, cx *x, ast_op op, qv_value a, qv_value b) {
    switch (op) {
    case AST_OP_EQ: return equals_charged(c, a, b);
    case AST_OP_NE: {
        qv_value e = equals_charged(c, a, b);
        if (c->failed) return qv_null();
        return e.type == QV_NULL ? e : qv_bool(!e.u.b);
    }
    case AST_OP_LT:
    case AST_OP_LE:
    case AST_OP_GT:
    case AST_OP_GE: {
        if (a.type == QV_NULL || b.type == QV_NULL) return qv_null();
        int r;
        uint64_t w = 0;
        bool comparable = qv_compare_w(a, b, &r, &w);
        if (!qctx_work(c, w)) return qv_null();
        if (!comparable) {
            /* NaN compares false; other mixed types are null */
            if (is_num(a) && is_num(b)) return qv_bool(false);
            return qv_null();
        }
        switch (op) {
        case AST_OP_LT: return qv_bool(r < 0);
        case AST_OP_LE: return qv_bool(r <= 0);
        case AST_OP_GT: return qv_bool(r > 0);
        default: return qv_bool(r >= 0);
        }
    }
    case AST_OP_ADD:
    case AST_OP_SUB:
    case AST_OP_MUL:
    case AST_OP_DIV:
    case AST_OP_MOD:
    case AST_OP_POW: return arith(c, op, a, b);
    case AST_OP_IN: return in_list(c, a, b);
    case AST_OP_STARTS_WITH:
    case AST_OP_ENDS_WITH:
    case AST_OP_CONTAINS:
    case AST_OP_REGEX:
        if (a.type == QV_NULL || b.type == QV_NULL) return qv_null();
        if (a.type != QV_STRING || b.type != QV_STRING) return qv_null();
        if (op != AST_OP_REGEX && !qctx_work_bytes(c, a.u.s.len)) return qv_null();
        if (op == AST_OP_STARTS_WITH) return qv_bool(str_starts(a.u.s, b.u.s));
        if (op == AST_OP_ENDS_WITH) return qv_bool(str_ends(a.u.s, b.u.s));
        if (op == AST_OP_CONTAINS) return qv_bool(str_contains(a.u.s, b.u.s));
        return regex_match(c, x, a.u.s, b.u.s);
    default: return qv_null();
    }
}

/* ------------------------------------------------------------------ */
/* Property access, indexing                                           */
/* ------------------------------------------------------------------ */

static qv_value map_lookup(const qv_map *m, qv_str key) {
    for (uint32_t i = m->count; i-- > 0;)
        if (m->keys[i].len == key.len && memcmp(m->keys[i].ptr, key.ptr, key.len) == 0) return m->values[i];
    return qv_null();
}

static qv_value prop_of(qctx *c, cx *e, qv_value obj) {
    switch ((qv_type)obj.type) {
    case QV_NULL: return qv_null();
    case QV_MAP:
        if (!qctx_work(c, 1 + obj.u.map->count / 16)) return qv_null(); /* the key scan */
        return map_lookup(obj.u.map, e->name);
    case QV_NODE:
    case QV_EDGE:
        if (!e->cached) {
            if (!schema_lookup(c, QS_SCHEMA_PROPKEY, e->name, &e->key_id)) return qv_null();
            e->cached = true;
        }
        return obj.type == QV_NODE ? eval_node_prop(c, obj.u.node, e->key_id) : eval_edge_prop(c, obj.u.edge, e->key_id);
    default: return type_mismatch(c, "Map, Node, Edge, or Null", obj);
    }
}

static qv_value index_of(qctx *c, qv_value obj, qv_value idx) {
    if (obj.type == QV_NULL || idx.type == QV_NULL) return qv_null();
    if (obj.type == QV_LIST) {
        if (idx.type != QV_INT) return type_mismatch(c, "Integer", idx);
        int64_t n = obj.u.list->count, i = idx.u.i;
        if (i < 0) i += n;
        if (i < 0 || i >= n) return qv_null();
        return obj.u.list->items[i];
    }
    if (obj.type == QV_MAP || obj.type == QV_NODE || obj.type == QV_EDGE) {
        if (idx.type != QV_STRING) return type_mismatch(c, "String", idx);
        cx tmp;
        memset(&tmp, 0, sizeof tmp);
        tmp.kind = CX_PROP;
        tmp.name = idx.u.s;
        return prop_of(c, &tmp, obj);
    }
    return type_mismatch(c, "List, Map, Node, Edge, or Null", obj);
}

static qv_value slice_of(qctx *c, qv_value obj, const cx *lo_e, const cx *hi_e) {
    qv_value lo = lo_e ? cx_eval(c, lo_e) : qv_int(0);
    qv_value hi = hi_e ? cx_eval(c, hi_e) : qv_null();
    if (obj.type == QV_NULL || (lo_e && lo.type == QV_NULL) || (hi_e && hi.type == QV_NULL)) return qv_null();
    if (obj.type != QV_LIST) return type_mismatch(c, "List or Null", obj);
    if (lo.type != QV_INT) return type_mismatch(c, "Integer", lo);
    int64_t n = obj.u.list->count;
    int64_t a = lo.u.i, b = n;
    if (hi_e) {
        if (hi.type != QV_INT) return type_mismatch(c, "Integer", hi);
        b = hi.u.i;
    }
    if (a < 0) a += n;
    if (b < 0) b += n;
    if (a < 0) a = 0;
    if (b > n) b = n;
    if (b < a) b = a;
    qv_list *l = NULL;
    qv_value r = make_list(c, (uint32_t)(b - a), &l);
    if (l == NULL) return r;
    if (b > a) memcpy(l->items, obj.u.list->items + a, sizeof(qv_value) * (size_t)(b - a));
    return list_done(c, l);
}

/* ------------------------------------------------------------------ */
/* Evaluation                                                          */
/* ------------------------------------------------------------------ */

static qv_value eval_case(qctx *c, const cx *e) {
    if (e->a != NULL) {
        qv_value subj = cx_eval(c, e->a);
        for (uint32_t i = 0; i + 1 < e->n * 2 && !c->failed; i += 2) {
            qv_value w = cx_eval(c, e->args[i]);
            qv_value eq = equals_charged(c, subj, w);
            if (eq.type == QV_BOOL && eq.u.b) return cx_eval(c, e->args[i + 1]);
        }
    } else {
        for (uint32_t i = 0; i + 1 < e->n * 2 && !c->failed; i += 2)
            if (cx_truth(c, e->args[i])) return cx_eval(c, e->args[i + 1]);
    }
    return e->b ? cx_eval(c, e->b) : qv_null();
}

static qv_value eval_comp(qctx *c, const cx *e) {
    qv_value list = cx_eval(c, e->a);
    if (list.type == QV_NULL) return qv_null();
    if (list.type != QV_LIST) return type_mismatch(c, "List or Null", list);
    qv_value saved = c->row[e->slot];
    uint32_t n = list.u.list->count;
    if (e->kind == CX_LIST_COMP) {
        qv_list *l = NULL;
        make_list(c, n, &l); /* charges the n iterations */
        if (l == NULL) return qv_null();
        uint32_t k = 0;
        for (uint32_t i = 0; i < n && !c->failed; i++) {
            c->row[e->slot] = list.u.list->items[i];
            if (e->b && !cx_truth(c, e->b)) continue;
            l->items[k++] = e->c ? cx_eval(c, e->c) : list.u.list->items[i];
        }
        l->count = k;
        c->row[e->slot] = saved;
        if (c->failed) return qv_null();
        return list_done(c, l);
    }
    if (!qctx_work(c, n)) return qv_null();
    uint32_t t = 0, nulls = 0;
    for (uint32_t i = 0; i < n && !c->failed; i++) {
        c->row[e->slot] = list.u.list->items[i];
        qv_value p = e->b ? cx_eval(c, e->b) : qv_bool(true);
        if (p.type == QV_NULL) nulls++;
        else if (p.type == QV_BOOL && p.u.b) t++;
    }
    c->row[e->slot] = saved;
    uint32_t f = n - t - nulls;
    switch ((ast_quantifier)e->op) {
    case AST_Q_ALL: return f > 0 ? qv_bool(false) : nulls ? qv_null() : qv_bool(true);
    case AST_Q_ANY: return t > 0 ? qv_bool(true) : nulls ? qv_null() : qv_bool(false);
    case AST_Q_NONE: return t > 0 ? qv_bool(false) : nulls ? qv_null() : qv_bool(true);
    case AST_Q_SINGLE: return t > 1 ? qv_bool(false) : nulls ? qv_null() : qv_bool(t == 1);
    }
    return qv_null();
}

static qv_value eval_path(qctx *c, const cx *e) {
    qv_value start = c->row[e->path_start];
    if (start.type != QV_NODE) return qv_null();
    uint32_t count = 1;
    for (uint32_t i = 0; i < e->path_seg_count; i++) {
        qv_value ev = c->row[e->path_segs[i].edge_slot];
        if (e->path_segs[i].varlen) {
            if (ev.type != QV_LIST) return qv_null();
            count += ev.u.list->count;
        } else {
            if (ev.type != QV_EDGE) return qv_null();
            count++;
        }
    }
    if (!qctx_work(c, count)) return qv_null();
    qv_path *p = qctx_alloc(c, sizeof *p);
    if (p == NULL) return qv_null();
    p->node_count = count;
    p->nodes = qctx_alloc(c, sizeof(qv_node *) * count);
    p->edges = qctx_alloc(c, sizeof(qv_edge *) * count);
    if (p->nodes == NULL || p->edges == NULL) return qv_null();
    uint32_t k = 0;
    p->nodes[k] = start.u.node;
    for (uint32_t i = 0; i < e->path_seg_count; i++) {
        qv_value ev = c->row[e->path_segs[i].edge_slot];
        uint32_t m = e->path_segs[i].varlen ? ev.u.list->count : 1;
        for (uint32_t j = 0; j < m; j++) {
            qv_value one = e->path_segs[i].varlen ? ev.u.list->items[j] : ev;
            if (one.type != QV_EDGE) return qv_null();
            qv_edge *ed = one.u.edge;
            uint64_t cur = p->nodes[k]->id;
            uint64_t next = ed->src_id == cur ? ed->dst_id : ed->src_id;
            p->edges[k] = ed;
            k++;
            if (j + 1 == m) {
                qv_value nv = c->row[e->path_segs[i].node_slot];
                if (nv.type == QV_NODE && nv.u.node->id == next) {
                    p->nodes[k] = nv.u.node;
                    continue;
                }
            }
            qv_value nn = make_node(c, next);
            if (nn.type != QV_NODE) return qv_null();
            p->nodes[k] = nn.u.node;
        }
    }
    qv_value v;
    v.type = QV_PATH;
    v.u.path = p;
    return v;
}

qv_value cx_eval(qctx *c, const cx *e) {
    if (c->failed) return qv_null();
    if (!QCTX_STACK_OK(c) || !qctx_tick(c)) return qv_null();
    switch ((cx_kind)e->kind) {
    case CX_CONST: return e->v;
    case CX_SLOT: return c->row[e->slot];
    case CX_PROP: return prop_of(c, (cx *)e, cx_eval(c, e->a));
    case CX_INDEX: {
        qv_value o = cx_eval(c, e->a);
        return index_of(c, o, cx_eval(c, e->b));
    }
    case CX_SLICE: return slice_of(c, cx_eval(c, e->a), e->b, e->c);
    case CX_LIST: {
        qv_list *l = NULL;
        qv_value r = make_list(c, e->n, &l);
        if (l == NULL) return r;
        for (uint32_t i = 0; i < e->n; i++) l->items[i] = cx_eval(c, e->args[i]);
        if (c->failed) return qv_null();
        return list_done(c, l);
    }
    case CX_MAP: {
        /* keys repeat as the planner found (e->ids: each item's position, the
         * first occurrence's; e->slot: distinct keys): a later value wins */
        if (!qctx_work(c, e->n)) return qv_null();
        qv_map *m = qctx_alloc(c, sizeof *m);
        if (m == NULL) return qv_null();
        memset(m, 0, sizeof *m);
        m->keys = qctx_alloc(c, sizeof(qv_str) * (e->slot ? e->slot : 1));
        m->values = qctx_alloc(c, sizeof(qv_value) * (e->slot ? e->slot : 1));
        if (m->keys == NULL || m->values == NULL) return qv_null();
        m->count = e->slot;
        for (uint32_t i = 0; i < e->n; i++) {
            qv_value v = cx_eval(c, e->args[i]);
            uint32_t j = e->ids[i];
            QUIVER_ASSERT(j < e->slot);
            m->keys[j] = e->keys[i];
            m->values[j] = v;
        }
        if (c->failed || !qctx_seal_map(c, m)) return qv_null();
        qv_value r;
        r.type = QV_MAP;
        r.u.map = m;
        return r;
    }
    case CX_UNARY: {
        qv_value v = cx_eval(c, e->a);
        if (v.type == QV_NULL) return v;
        switch ((ast_op)e->op) {
        case AST_OP_NOT:
            if (v.type != QV_BOOL) return type_mismatch(c, "Boolean or Null", v);
            return qv_bool(!v.u.b);
        case AST_OP_NEG:
            if (v.type == QV_INT) {
                if (v.u.i == INT64_MIN) {
                    qctx_fail(c, QUERY_ERR_RUNTIME, "Integer overflow");
                    return qv_null();
                }
                return qv_int(-v.u.i);
            }
            if (v.type == QV_DOUBLE) return qv_double(-v.u.d);
            return type_mismatch(c, "Integer, Float, or Null", v);
        default:
            if (!is_num(v)) return type_mismatch(c, "Integer, Float, or Null", v);
            return v;
        }
    }
    case CX_AND:
    case CX_OR:
    case CX_XOR: {
        qv_value a = cx_eval(c, e->a);
        if (a.type != QV_NULL && a.type != QV_BOOL) return type_mismatch(c, "Boolean or Null", a);
        if (e->kind == CX_AND && a.type == QV_BOOL && !a.u.b) return a;
        if (e->kind == CX_OR && a.type == QV_BOOL && a.u.b) return a;
        qv_value b = cx_eval(c, e->b);
        if (b.type != QV_NULL && b.type != QV_BOOL) return type_mismatch(c, "Boolean or Null", b);
        if (e->kind == CX_AND) {
            if (b.type == QV_BOOL && !b.u.b) return b;
            if (a.type == QV_NULL || b.type == QV_NULL) return qv_null();
            return qv_bool(true);
        }
        if (e->kind == CX_OR) {
            if (b.type == QV_BOOL && b.u.b) return b;
            if (a.type == QV_NULL || b.type == QV_NULL) return qv_null();
            return qv_bool(false);
        }
        if (a.type == QV_NULL || b.type == QV_NULL) return qv_null();
        return qv_bool(a.u.b != b.u.b);
    }
    case CX_BINARY: {
        qv_value a = cx_eval(c, e->a);
        qv_value b = cx_eval(c, e->b);
        if (c->failed) return qv_null();
        return binary(c, (cx *)e, (ast_op)e->op, a, b);
    }
    case CX_IS_NULL: return qv_bool(cx_eval(c, e->a).type == QV_NULL);
    case CX_IS_NOT_NULL: return qv_bool(cx_eval(c, e->a).type != QV_NULL);
    case CX_HAS_LABELS: {
        qv_value v = cx_eval(c, e->a);
        if (v.type == QV_NULL) return v;
        if (v.type != QV_NODE) return type_mismatch(c, "Node or Null", v);
        for (uint32_t i = 0; i < e->n; i++) {
            if (e->ids[i] == UINT32_MAX && !schema_lookup(c, QS_SCHEMA_LABEL, e->keys[i], &e->ids[i]))
                return qv_bool(false);
            if (!qctx_work(c, QUERY_WORK_STORAGE_READ_UNITS)) return qv_null();
            if (c->graph_missing || !qs_node_has_label(c->view, c->graph, v.u.node->id, e->ids[i])) return qv_bool(false);
        }
        return qv_bool(true);
    }
    case CX_FUNC: {
        qv_value argv[16];
        qv_value *args = argv;
        if (e->n > 16) {
            args = qctx_alloc(c, sizeof(qv_value) * e->n);
            if (args == NULL) return qv_null();
        }
        for (uint32_t i = 0; i < e->n; i++) args[i] = cx_eval(c, e->args[i]);
        if (c->failed) return qv_null();
        return e->fn->impl(c, e, args, e->n);
    }
    case CX_CASE: return eval_case(c, e);
    case CX_LIST_COMP:
    case CX_QUANT: return eval_comp(c, e);
    case CX_PATTERN: {
        op_reset(c, e->sub);
        bool found = op_next(c, e->sub);
        op_reset(c, e->sub);
        if (c->failed) return qv_null();
        return qv_bool(found);
    }
    case CX_PATH: return eval_path(c, e);
    }
    return qv_null();
}

bool cx_truth(qctx *c, const cx *e) {
    qv_value v = cx_eval(c, e);
    if (c->failed) return false;
    if (v.type == QV_BOOL) return v.u.b;
    if (v.type == QV_NULL) return false;
    type_mismatch(c, "Boolean", v);
    return false;
}
