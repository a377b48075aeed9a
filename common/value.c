/*
 * value.c -- copying, comparing and hashing openCypher values (value.h).
 *
 * Semantics follow the openCypher 9 reference, sections "Comparability and
 * equality" and "Ordering and comparison of values":
 *   - `=` is three-valued: null on either side gives null; lists and maps
 *     compare element-wise and a null element makes the answer null unless
 *     some other element already decided false.
 *   - ORDER BY uses a total order across types (qv_order), with null last.
 *   - <, <=, >, >= are defined only within a type family (qv_compare).
 * Numbers: integers and doubles compare numerically; an integer and a
 * double compare exactly (no rounding of large integers through double).
 *
 * Recursion: every walker takes the depth it is at and asserts it stays
 * within QUIVER_VALUE_RECURSION_DEPTH_MAX (limits.h): the query engine
 * never builds a value deeper than QUIVER_VALUE_DEPTH_MAX (qv_shape_of),
 * and an entity's properties are bounded by storage, so the assertion is a
 * fail-stop on a broken invariant, never a limit a statement can reach.
 *
 * The hash is our own (a 64-bit multiply-xorshift mix in the style of
 * splitmix64's finaliser) rather than xxHash because common/ links nothing
 * but libc; it only has to be deterministic across processes and agree with
 * qv_order()==0 (so 1 and 1.0 hash alike).
 */
#include "value.h"

#include <math.h>
#include <string.h>

#include "limits.h"
#include "qassert.h"

bool qv_shape_of(const qv_value *items, uint32_t count, uint32_t *depth, uint64_t *elements) {
    QUIVER_ASSERT(items != NULL || count == 0);
    uint32_t d = 0;
    uint64_t e = count;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t di = qv_depth(items[i]);
        if (di > d) d = di;
        e += qv_elements(items[i]);
    }
    *depth = d + 1;
    *elements = e;
    return d + 1 <= QUIVER_VALUE_DEPTH_MAX && e <= QUIVER_VALUE_ELEMENTS_COUNT_MAX;
}

qv_value qv_string_copy(q_arena *a, const char *p, size_t len, bool *ok) {
    char *s = q_arena_strndup(a, p, len);
    if (s == NULL || len > UINT32_MAX) {
        if (ok) *ok = false;
        return qv_null();
    }
    if (ok) *ok = true;
    return qv_string(s, (uint32_t)len);
}

static bool copy_rec(q_arena *a, qv_value v, qv_value *out, uint32_t depth);

static bool copy_props(q_arena *a, const qv_props *in, qv_props *out, uint32_t depth) {
    *out = *in;
    if (in->count == 0) return true;
    out->key_ids = q_arena_alloc(a, sizeof(uint32_t) * in->count);
    out->values = q_arena_alloc(a, sizeof(qv_value) * in->count);
    if (out->key_ids == NULL || out->values == NULL) return false;
    memcpy(out->key_ids, in->key_ids, sizeof(uint32_t) * in->count);
    if (in->keys != NULL) {
        out->keys = q_arena_alloc(a, sizeof(qv_str) * in->count);
        if (out->keys == NULL) return false;
        for (uint32_t i = 0; i < in->count; i++) {
            char *s = q_arena_strndup(a, in->keys[i].ptr, in->keys[i].len);
            if (s == NULL) return false;
            out->keys[i].ptr = s;
            out->keys[i].len = in->keys[i].len;
        }
    }
    for (uint32_t i = 0; i < in->count; i++)
        if (!copy_rec(a, in->values[i], &out->values[i], depth + 1)) return false;
    return true;
}

static bool copy_node(q_arena *a, const qv_node *in, qv_node **out, uint32_t depth) {
    qv_node *n = q_arena_alloc(a, sizeof(*n));
    if (n == NULL) return false;
    *n = *in;
    if (in->label_count > 0) {
        n->label_ids = q_arena_alloc(a, sizeof(uint32_t) * in->label_count);
        if (n->label_ids == NULL) return false;
        memcpy(n->label_ids, in->label_ids, sizeof(uint32_t) * in->label_count);
        if (in->label_names != NULL) {
            n->label_names = q_arena_alloc(a, sizeof(qv_str) * in->label_count);
            if (n->label_names == NULL) return false;
            for (uint32_t i = 0; i < in->label_count; i++) {
                char *s = q_arena_strndup(a, in->label_names[i].ptr, in->label_names[i].len);
                if (s == NULL) return false;
                n->label_names[i].ptr = s;
                n->label_names[i].len = in->label_names[i].len;
            }
        }
    }
    if (!copy_props(a, &in->props, &n->props, depth)) return false;
    *out = n;
    return true;
}

static bool copy_edge(q_arena *a, const qv_edge *in, qv_edge **out, uint32_t depth) {
    qv_edge *e = q_arena_alloc(a, sizeof(*e));
    if (e == NULL) return false;
    *e = *in;
    if (in->type_name.ptr != NULL) {
        char *s = q_arena_strndup(a, in->type_name.ptr, in->type_name.len);
        if (s == NULL) return false;
        e->type_name.ptr = s;
    }
    if (!copy_props(a, &in->props, &e->props, depth)) return false;
    *out = e;
    return true;
}

bool qv_deep_copy(q_arena *a, qv_value v, qv_value *out) {
    QUIVER_ASSERT(a != NULL && out != NULL);
    return copy_rec(a, v, out, 0);
}

static bool copy_rec(q_arena *a, qv_value v, qv_value *out, uint32_t depth) {
    QUIVER_ASSERT(depth <= QUIVER_VALUE_RECURSION_DEPTH_MAX);
    *out = v;
    switch ((qv_type)v.type) {
    case QV_NULL:
    case QV_BOOL:
    case QV_INT:
    case QV_DOUBLE:
        return true;
    case QV_STRING: {
        char *s = q_arena_alloc(a, v.u.s.len + 1u);
        if (s == NULL) return false;
        if (v.u.s.len) memcpy(s, v.u.s.ptr, v.u.s.len);
        s[v.u.s.len] = '\0';
        out->u.s.ptr = s;
        return true;
    }
    case QV_LIST: {
        qv_list *l = q_arena_alloc(a, sizeof(*l));
        if (l == NULL) return false;
        *l = *v.u.list; /* count, depth, elements */
        l->items = q_arena_alloc(a, sizeof(qv_value) * l->count);
        if (l->items == NULL) return false;
        for (uint32_t i = 0; i < l->count; i++)
            if (!copy_rec(a, v.u.list->items[i], &l->items[i], depth + 1)) return false;
        out->u.list = l;
        return true;
    }
    case QV_MAP: {
        qv_map *m = q_arena_alloc(a, sizeof(*m));
        if (m == NULL) return false;
        *m = *v.u.map; /* count, depth, elements */
        m->keys = q_arena_alloc(a, sizeof(qv_str) * m->count);
        m->values = q_arena_alloc(a, sizeof(qv_value) * m->count);
        if (m->keys == NULL || m->values == NULL) return false;
        for (uint32_t i = 0; i < m->count; i++) {
            char *s = q_arena_strndup(a, v.u.map->keys[i].ptr, v.u.map->keys[i].len);
            if (s == NULL) return false;
            m->keys[i].ptr = s;
            m->keys[i].len = v.u.map->keys[i].len;
            if (!copy_rec(a, v.u.map->values[i], &m->values[i], depth + 1)) return false;
        }
        out->u.map = m;
        return true;
    }
    case QV_NODE:
        return copy_node(a, v.u.node, &out->u.node, depth + 1);
    case QV_EDGE:
        return copy_edge(a, v.u.edge, &out->u.edge, depth + 1);
    case QV_PATH: {
        const qv_path *in = v.u.path;
        qv_path *p = q_arena_alloc(a, sizeof(*p));
        if (p == NULL) return false;
        p->node_count = in->node_count;
        p->nodes = q_arena_alloc(a, sizeof(qv_node *) * (in->node_count ? in->node_count : 1));
        p->edges = q_arena_alloc(a, sizeof(qv_edge *) * (in->node_count ? in->node_count : 1));
        if (p->nodes == NULL || p->edges == NULL) return false;
        for (uint32_t i = 0; i < in->node_count; i++) {
            if (!copy_node(a, in->nodes[i], &p->nodes[i], depth + 1)) return false;
            if (i + 1 < in->node_count && !copy_edge(a, in->edges[i], &p->edges[i], depth + 1)) return false;
        }
        out->u.path = p;
        return true;
    }
    }
    return false;
}

/* ---- comparison ---- */

static bool is_num(qv_value v) { return v.type == QV_INT || v.type == QV_DOUBLE; }

/* Exact comparison of an integer with a double (not NaN). */
static int cmp_int_double(int64_t i, double d) {
    if (d >= 9223372036854775808.0) return -1;
    if (d < -9223372036854775808.0) return 1;
    double t = trunc(d);
    int64_t ti = (int64_t)t;
    if (i < ti) return -1;
    if (i > ti) return 1;
    if (d > t) return -1; /* i == trunc(d) < d */
    if (d < t) return 1;
    return 0;
}

/* Numeric order; NaN after every other number, NaNs equal. */
static int cmp_num(qv_value a, qv_value b) {
    if (a.type == QV_INT && b.type == QV_INT) return a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
    if (a.type == QV_DOUBLE && isnan(a.u.d)) return (b.type == QV_DOUBLE && isnan(b.u.d)) ? 0 : 1;
    if (b.type == QV_DOUBLE && isnan(b.u.d)) return -1;
    if (a.type == QV_DOUBLE && b.type == QV_DOUBLE) return a.u.d < b.u.d ? -1 : a.u.d > b.u.d;
    if (a.type == QV_INT) return cmp_int_double(a.u.i, b.u.d);
    return -cmp_int_double(b.u.i, a.u.d);
}

static int cmp_str(qv_str a, qv_str b) {
    uint32_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c != 0) return c < 0 ? -1 : 1;
    return a.len < b.len ? -1 : a.len > b.len;
}

static bool str_eq(qv_str a, qv_str b) { return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0); }

/* Rank of a type in the ORDER BY order (value.h). */
static int type_rank(qv_type t) {
    switch (t) {
    case QV_MAP: return 0;
    case QV_NODE: return 1;
    case QV_EDGE: return 2;
    case QV_LIST: return 3;
    case QV_PATH: return 4;
    case QV_STRING: return 5;
    case QV_BOOL: return 6;
    case QV_INT:
    case QV_DOUBLE: return 7;
    case QV_NULL: return 8;
    }
    return 9;
}

/* Value of key in a map, or NULL. */
static const qv_value *map_get(const qv_map *m, qv_str key) {
    for (uint32_t i = 0; i < m->count; i++)
        if (str_eq(m->keys[i], key)) return &m->values[i];
    return NULL;
}

static int order_rec(qv_value a, qv_value b, uint32_t depth, uint64_t *work);

int qv_order(qv_value a, qv_value b) { return order_rec(a, b, 0, NULL); }

int qv_order_w(qv_value a, qv_value b, uint64_t *work) { return order_rec(a, b, 0, work); }

/* Work of visiting a and b together: one per pair, the shorter string's
 * bytes (what memcmp may read). */
static inline void charge(uint64_t *work, qv_value a, qv_value b) {
    if (work == NULL) return;
    uint64_t w = 1;
    if (a.type == QV_STRING && b.type == QV_STRING)
        w += (a.u.s.len < b.u.s.len ? a.u.s.len : b.u.s.len) / QV_WORK_STRING_BYTES_PER_UNIT;
    *work += w;
}

static int order_rec(qv_value a, qv_value b, uint32_t depth, uint64_t *work) {
    QUIVER_ASSERT(depth <= QUIVER_VALUE_RECURSION_DEPTH_MAX);
    charge(work, a, b);
    int ra = type_rank((qv_type)a.type), rb = type_rank((qv_type)b.type);
    if (ra != rb) return ra < rb ? -1 : 1;
    switch ((qv_type)a.type) {
    case QV_NULL: return 0;
    case QV_BOOL: return (int)a.u.b - (int)b.u.b;
    case QV_INT:
    case QV_DOUBLE: return cmp_num(a, b);
    case QV_STRING: return cmp_str(a.u.s, b.u.s);
    case QV_LIST: {
        uint32_t n = a.u.list->count < b.u.list->count ? a.u.list->count : b.u.list->count;
        for (uint32_t i = 0; i < n; i++) {
            int c = order_rec(a.u.list->items[i], b.u.list->items[i], depth + 1, work);
            if (c != 0) return c;
        }
        return a.u.list->count < b.u.list->count ? -1 : a.u.list->count > b.u.list->count;
    }
    case QV_MAP: {
        /* Compare as sorted (key, value) sequences so that insertion order
         * does not matter: {a:1,b:2} and {b:2,a:1} are equal. */
        const qv_map *ma = a.u.map, *mb = b.u.map;
        if (ma->count != mb->count) return ma->count < mb->count ? -1 : 1;
        /* smallest key not yet visited, in each map, step by step */
        qv_str prev = {NULL, 0};
        bool have_prev = false;
        for (uint32_t step = 0; step < ma->count; step++) {
            if (work != NULL) *work += 2u * ma->count; /* the two key scans below */
            int ia = -1, ib = -1;
            for (uint32_t i = 0; i < ma->count; i++) {
                if (have_prev && cmp_str(ma->keys[i], prev) <= 0) continue;
                if (ia < 0 || cmp_str(ma->keys[i], ma->keys[ia]) < 0) ia = (int)i;
            }
            for (uint32_t i = 0; i < mb->count; i++) {
                if (have_prev && cmp_str(mb->keys[i], prev) <= 0) continue;
                if (ib < 0 || cmp_str(mb->keys[i], mb->keys[ib]) < 0) ib = (int)i;
            }
            if (ia < 0 || ib < 0) return ia < 0 ? (ib < 0 ? 0 : -1) : 1;
            int c = cmp_str(ma->keys[ia], mb->keys[ib]);
            if (c != 0) return c;
            c = order_rec(ma->values[ia], mb->values[ib], depth + 1, work);
            if (c != 0) return c;
            prev = ma->keys[ia];
            have_prev = true;
        }
        return 0;
    }
    case QV_NODE: return a.u.node->id < b.u.node->id ? -1 : a.u.node->id > b.u.node->id;
    case QV_EDGE: return a.u.edge->id < b.u.edge->id ? -1 : a.u.edge->id > b.u.edge->id;
    case QV_PATH: {
        const qv_path *pa = a.u.path, *pb = b.u.path;
        uint32_t n = pa->node_count < pb->node_count ? pa->node_count : pb->node_count;
        for (uint32_t i = 0; i < n; i++) {
            if (pa->nodes[i]->id != pb->nodes[i]->id) return pa->nodes[i]->id < pb->nodes[i]->id ? -1 : 1;
            if (i + 1 < n && pa->edges[i]->id != pb->edges[i]->id) return pa->edges[i]->id < pb->edges[i]->id ? -1 : 1;
        }
        return pa->node_count < pb->node_count ? -1 : pa->node_count > pb->node_count;
    }
    }
    return 0;
}

static qv_value equals_rec(qv_value a, qv_value b, uint32_t depth, uint64_t *work);

qv_value qv_equals(qv_value a, qv_value b) { return equals_rec(a, b, 0, NULL); }

qv_value qv_equals_w(qv_value a, qv_value b, uint64_t *work) { return equals_rec(a, b, 0, work); }

static qv_value equals_rec(qv_value a, qv_value b, uint32_t depth, uint64_t *work) {
    QUIVER_ASSERT(depth <= QUIVER_VALUE_RECURSION_DEPTH_MAX);
    charge(work, a, b);
    if (a.type == QV_NULL || b.type == QV_NULL) return qv_null();
    if (is_num(a) && is_num(b)) {
        if ((a.type == QV_DOUBLE && isnan(a.u.d)) || (b.type == QV_DOUBLE && isnan(b.u.d))) return qv_bool(false);
        return qv_bool(cmp_num(a, b) == 0);
    }
    if (a.type != b.type) return qv_bool(false);
    switch ((qv_type)a.type) {
    case QV_BOOL: return qv_bool(a.u.b == b.u.b);
    case QV_STRING: return qv_bool(str_eq(a.u.s, b.u.s));
    case QV_LIST: {
        if (a.u.list->count != b.u.list->count) return qv_bool(false);
        bool unknown = false;
        for (uint32_t i = 0; i < a.u.list->count; i++) {
            qv_value e = equals_rec(a.u.list->items[i], b.u.list->items[i], depth + 1, work);
            if (e.type == QV_NULL) unknown = true;
            else if (!e.u.b) return qv_bool(false);
        }
        return unknown ? qv_null() : qv_bool(true);
    }
    case QV_MAP: {
        if (a.u.map->count != b.u.map->count) return qv_bool(false);
        bool unknown = false;
        for (uint32_t i = 0; i < a.u.map->count; i++) {
            if (work != NULL) *work += b.u.map->count; /* map_get's scan */
            const qv_value *o = map_get(b.u.map, a.u.map->keys[i]);
            if (o == NULL) return qv_bool(false);
            qv_value e = equals_rec(a.u.map->values[i], *o, depth + 1, work);
            if (e.type == QV_NULL) unknown = true;
            else if (!e.u.b) return qv_bool(false);
        }
        return unknown ? qv_null() : qv_bool(true);
    }
    case QV_NODE: return qv_bool(a.u.node->id == b.u.node->id);
    case QV_EDGE: return qv_bool(a.u.edge->id == b.u.edge->id);
    case QV_PATH: return qv_bool(order_rec(a, b, depth, work) == 0);
    default: return qv_bool(false);
    }
}

static bool compare_rec(qv_value a, qv_value b, int *out, uint32_t depth, uint64_t *work);

bool qv_compare(qv_value a, qv_value b, int *out) { return compare_rec(a, b, out, 0, NULL); }

bool qv_compare_w(qv_value a, qv_value b, int *out, uint64_t *work) { return compare_rec(a, b, out, 0, work); }

static bool compare_rec(qv_value a, qv_value b, int *out, uint32_t depth, uint64_t *work) {
    QUIVER_ASSERT(out != NULL);
    QUIVER_ASSERT(depth <= QUIVER_VALUE_RECURSION_DEPTH_MAX);
    charge(work, a, b);
    if (is_num(a) && is_num(b)) {
        if ((a.type == QV_DOUBLE && isnan(a.u.d)) || (b.type == QV_DOUBLE && isnan(b.u.d))) return false;
        *out = cmp_num(a, b);
        return true;
    }
    if (a.type != b.type) return false;
    switch ((qv_type)a.type) {
    case QV_STRING: *out = cmp_str(a.u.s, b.u.s); return true;
    case QV_BOOL: *out = (int)a.u.b - (int)b.u.b; return true;
    case QV_LIST: {
        uint32_t n = a.u.list->count < b.u.list->count ? a.u.list->count : b.u.list->count;
        for (uint32_t i = 0; i < n; i++) {
            int c;
            if (!compare_rec(a.u.list->items[i], b.u.list->items[i], &c, depth + 1, work)) return false;
            if (c != 0) { *out = c; return true; }
        }
        *out = a.u.list->count < b.u.list->count ? -1 : a.u.list->count > b.u.list->count;
        return true;
    }
    default: return false;
    }
}

/* ---- hashing ---- */

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_bytes(const void *p, size_t n, uint64_t h) {
    const unsigned char *s = p;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = mix64(h ^ w) + 0x9e3779b97f4a7c15ull;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)s[i] << (8 * i);
    return mix64(h ^ w ^ ((uint64_t)n << 56));
}

static uint64_t hash_rec(qv_value v, uint64_t seed, uint32_t depth, uint64_t *work);

uint64_t qv_hash(qv_value v, uint64_t seed) { return hash_rec(v, seed, 0, NULL); }

uint64_t qv_hash_w(qv_value v, uint64_t seed, uint64_t *work) { return hash_rec(v, seed, 0, work); }

static uint64_t hash_rec(qv_value v, uint64_t seed, uint32_t depth, uint64_t *work) {
    QUIVER_ASSERT(depth <= QUIVER_VALUE_RECURSION_DEPTH_MAX);
    charge(work, v, v);
    uint64_t h = mix64(seed ^ (0x1000u + (uint64_t)type_rank((qv_type)v.type)));
    switch ((qv_type)v.type) {
    case QV_NULL: return h;
    case QV_BOOL: return mix64(h ^ (uint64_t)v.u.b);
    case QV_INT: return mix64(h ^ (uint64_t)v.u.i);
    case QV_DOUBLE: {
        double d = v.u.d;
        if (isnan(d)) return mix64(h ^ 0x7ff8000000000000ull);
        if (d == trunc(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
            return mix64(h ^ (uint64_t)(int64_t)d);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        return mix64(h ^ bits);
    }
    case QV_STRING: return hash_bytes(v.u.s.ptr, v.u.s.len, h);
    case QV_LIST:
        for (uint32_t i = 0; i < v.u.list->count; i++) h = mix64(h + hash_rec(v.u.list->items[i], seed, depth + 1, work));
        return h;
    case QV_MAP: {
        /* order-independent: sum of per-entry hashes */
        uint64_t acc = 0;
        for (uint32_t i = 0; i < v.u.map->count; i++)
            acc += mix64(hash_bytes(v.u.map->keys[i].ptr, v.u.map->keys[i].len, seed) ^ hash_rec(v.u.map->values[i], seed, depth + 1, work));
        return mix64(h ^ acc);
    }
    case QV_NODE: return mix64(h ^ v.u.node->id);
    case QV_EDGE: return mix64(h ^ v.u.edge->id);
    case QV_PATH:
        for (uint32_t i = 0; i < v.u.path->node_count; i++) {
            h = mix64(h ^ v.u.path->nodes[i]->id);
            if (i + 1 < v.u.path->node_count) h = mix64(h ^ v.u.path->edges[i]->id);
        }
        return h;
    }
    return h;
}

static uint64_t cost_rec(qv_value v, uint32_t depth) {
    QUIVER_ASSERT(depth <= QUIVER_VALUE_RECURSION_DEPTH_MAX);
    uint64_t w = 1;
    switch ((qv_type)v.type) {
    case QV_STRING: return w + v.u.s.len / QV_WORK_STRING_BYTES_PER_UNIT;
    case QV_LIST:
        for (uint32_t i = 0; i < v.u.list->count; i++) w += cost_rec(v.u.list->items[i], depth + 1);
        return w;
    case QV_MAP:
        for (uint32_t i = 0; i < v.u.map->count; i++) w += cost_rec(v.u.map->values[i], depth + 1);
        return w;
    default: return w;
    }
}

uint64_t qv_walk_cost(qv_value v) { return cost_rec(v, 0); }

const char *qv_type_name(qv_type t) {
    switch (t) {
    case QV_NULL: return "Null";
    case QV_BOOL: return "Boolean";
    case QV_INT: return "Integer";
    case QV_DOUBLE: return "Float";
    case QV_STRING: return "String";
    case QV_LIST: return "List";
    case QV_MAP: return "Map";
    case QV_NODE: return "Node";
    case QV_EDGE: return "Edge";
    case QV_PATH: return "Path";
    }
    return "Unknown";
}
