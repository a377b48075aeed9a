/*
 * plan.c -- the planner: AST (ast.h) to a pipeline of operators (engine.h).
 *
 * Variables become slots at plan time.  A scope (name -> slot) follows the
 * clauses: MATCH/UNWIND/CREATE/MERGE/CALL add names, WITH replaces the
 * scope by its aliases, list comprehensions push and pop a local name.
 *
 * MATCH planning, per pattern:
 *   1. every node and relationship gets a slot (anonymous ones hidden);
 *   2. the WHERE clause is split into AND-conjuncts; labels and property
 *      maps of the pattern become conjuncts too;
 *   3. paths are taken one at a time: a path that touches a bound variable
 *      first (expanding from what is known), otherwise the path with the
 *      cheapest start node.  Start costs, best first: id seek (`id(n) = e`,
 *      `id(n) IN e`, e computable from bound variables), property-index seek
 *      (equality, IN, range, on an indexed label/key), label scan (cost =
 *      qs_label_count, the smallest label wins), all-nodes scan;
 *   4. from the start node the path is expanded to the right, then to the
 *      left; an expansion whose far end is already bound checks it
 *      ("Expand Into");
 *   5. each conjunct becomes a filter as soon as every variable it uses is
 *      bound (predicate push-down); conjuncts consumed by a seek are
 *      dropped.
 * Relationship uniqueness inside one MATCH: every expansion is given the
 * slots of the relationships bound before it in the same pattern.
 *
 * Distinct-endpoint traversal: a variable-length relationship with no
 * variable, outside a named path, with at most 1 as minimum, in a MATCH whose
 * rows only feed DISTINCT (RETURN/WITH DISTINCT, or aggregates that are all
 * DISTINCT or min/max) or a pattern predicate, is planned as a breadth-first
 * traversal that visits each node once (see exec.c).  The enumeration of
 * paths would be exponential on graphs such as Debian's dependencies.
 *
 * Trade-off: the planner is greedy and uses only label counts; there is no
 * join reordering beyond the choice of the start node.
 *
 * Cost: planning is near-linear in the statement, because admission runs
 * it on every write before proposing it (query_admit) and hostile texts
 * must not make it quadratic: names are found through a hash table once a
 * scope is big (scope), a pattern's new variables and a CREATE's elements
 * through slot-indexed maps, conjuncts become ready through per-variable
 * wait lists (apply_ready), start candidates are grouped per node and
 * capped (start_cost), ORDER BY items are matched by a structural hash
 * first, and rows_feed_distinct is computed once per clause.  What is left
 * quadratic is bounded by the limits: MATCH parts
 * (QUIVER_QUERY_MATCH_PARTS_COUNT_MAX) times pattern nodes for the start
 * choice, aggregates per projection (QUIVER_QUERY_AGGREGATES_COUNT_MAX).
 * The hash tables are seeded per process (query_name_hash) so clients
 * cannot pick colliding names; no answer depends on their layout.
 *
 * Without storage (query_admit: no view, graph_missing), every label is
 * unknown, counts are 0 and no index is usable, so the plan's shape may
 * differ from a run's, but every semantic error, constant regular
 * expression and limit is found the same way.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../common/qassert.h"
#include "engine.h"

typedef enum var_kind { VK_ANY, VK_NODE, VK_EDGE, VK_EDGES, VK_PATH } var_kind;

typedef struct pvar {
    qv_str name;
    uint32_t slot;
    uint8_t kind;
    uint32_t prev;          /* index + 1 of the entry with this name it shadows; 0 none */
} pvar;

/* A name's innermost entry, for scopes too big to scan. */
typedef struct scope_slot {
    qv_str name;            /* ptr NULL: empty */
    uint32_t top;           /* index + 1 of its innermost entry; 0: out of scope now */
} scope_slot;

/* Names in scope, innermost last.  Small scopes are scanned backwards;
 * past SCOPE_LINEAR_COUNT_MAX entries an open-addressing table finds a
 * name in O(1), so a CREATE that names tens of thousands of nodes plans in
 * linear time.  Entries leave only from the end (scope_truncate), which
 * the table follows through pvar.prev. */
typedef struct scope {
    uint32_t count, cap;
    pvar *v;
    scope_slot *tab;        /* NULL while count <= SCOPE_LINEAR_COUNT_MAX */
    uint32_t tab_cap, tab_used;
} scope;

#define SCOPE_LINEAR_COUNT_MAX 16u

typedef struct agg_map {
    const ast_expr *ast;
    uint32_t slot;
} agg_map;

typedef struct planner {
    qctx *c;
    uint32_t nslots;
    scope sc;
    agg_map *aggs;          /* aggregate call -> result slot, while compiling items */
    uint32_t agg_count;
    bool in_agg_arg;
    /* the create_spec being built: slot -> index + 1 of its node / its
     * relationship, valid where cs_gen[slot] == cs_cur_gen (so a new spec
     * needs no clearing); keeps a CREATE with many parts linear */
    uint32_t *cs_node_at, *cs_rel_at, *cs_gen;
    uint32_t cs_cap, cs_cur_gen;
} planner;

/* ------------------------------------------------------------------ */
/* Scope                                                               */
/* ------------------------------------------------------------------ */

static bool str_eq(qv_str a, qv_str b) { return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0); }

static uint32_t new_slot(planner *P) { return P->nslots++; }

static uint64_t name_hash(qv_str n) { return query_name_hash(n.ptr, n.len); }

/* The table slot of name: its own, or the empty one where it would go. */
static scope_slot *scope_probe(const scope *s, qv_str name) {
    uint32_t mask = s->tab_cap - 1;
    for (uint32_t i = (uint32_t)name_hash(name) & mask;; i = (i + 1) & mask) {
        scope_slot *t = &s->tab[i];
        if (t->name.ptr == NULL || str_eq(t->name, name)) return t;
    }
}

static pvar *scope_find(scope *s, qv_str name) {
    if (s->tab == NULL) {
        for (uint32_t i = s->count; i-- > 0;)
            if (str_eq(s->v[i].name, name)) return &s->v[i];
        return NULL;
    }
    scope_slot *t = scope_probe(s, name);
    return t->name.ptr != NULL && t->top != 0 ? &s->v[t->top - 1] : NULL;
}

/* Enter entry i (already in v) into the table. */
static void scope_index(scope *s, uint32_t i) {
    scope_slot *t = scope_probe(s, s->v[i].name);
    if (t->name.ptr == NULL) {
        t->name = s->v[i].name;
        t->top = 0;
        s->tab_used++;
    }
    s->v[i].prev = t->top;
    t->top = i + 1;
}

/* (Re)build the table at twice the needed size from the entries. */
static bool scope_rehash(planner *P, scope *s) {
    uint32_t cap = 64;
    while (cap < (s->tab_used + s->count + 1) * 2) cap *= 2;
    scope_slot *tab = q_arena_calloc(P->c->a, cap, sizeof *tab);
    if (tab == NULL) return qctx_fail(P->c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
    s->tab = tab;
    s->tab_cap = cap;
    s->tab_used = 0;
    for (uint32_t i = 0; i < s->count; i++) scope_index(s, i);
    return true;
}

static bool scope_push(planner *P, scope *s, qv_str name, uint32_t slot, var_kind kind) {
    if (s->count == s->cap) {
        uint32_t ncap = s->cap ? s->cap * 2 : 16;
        pvar *nv = q_arena_realloc(P->c->a, s->v, sizeof(pvar) * s->cap, sizeof(pvar) * ncap);
        if (nv == NULL) return qctx_fail(P->c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->count].name = name;
    s->v[s->count].slot = slot;
    s->v[s->count].kind = (uint8_t)kind;
    s->v[s->count].prev = 0;
    s->count++;
    if (s->tab == NULL) {
        if (s->count > SCOPE_LINEAR_COUNT_MAX) return scope_rehash(P, s);
        return true;
    }
    if ((s->tab_used + 1) * 2 > s->tab_cap) return scope_rehash(P, s);
    scope_index(s, s->count - 1);
    return true;
}

/* Drop the entries from index n on (a comprehension's variable, a pattern
 * predicate's names). */
static void scope_truncate(scope *s, uint32_t n) {
    QUIVER_ASSERT(n <= s->count);
    if (s->tab != NULL)
        for (uint32_t i = s->count; i-- > n;) {
            scope_slot *t = scope_probe(s, s->v[i].name);
            QUIVER_ASSERT(t->name.ptr != NULL && t->top == i + 1);
            t->top = s->v[i].prev;
        }
    s->count = n;
}

/* Is entry i the innermost of its name (not shadowed)? */
static bool scope_visible(scope *s, uint32_t i) { return scope_find(s, s->v[i].name) == &s->v[i]; }

static bool semantic(planner *P, const char *fmt, qv_str a) {
    char buf[300];
    snprintf(buf, sizeof buf, fmt, (int)a.len, a.ptr);
    return qctx_fail(P->c, QUERY_ERR_SEMANTIC, "%s", buf);
}

/* ------------------------------------------------------------------ */
/* AST helpers                                                         */
/* ------------------------------------------------------------------ */

typedef void (*var_fn)(void *ctx, qv_str name);

static void walk_vars(const ast_expr *e, var_fn fn, void *ctx);

static void walk_pattern_vars(const ast_pattern *p, var_fn fn, void *ctx) {
    for (uint32_t i = 0; i < p->path_count; i++) {
        const ast_path *path = &p->paths[i];
        if (path->var.len) fn(ctx, path->var);
        for (uint32_t j = 0; j < path->node_count; j++) {
            if (path->nodes[j].var.len) fn(ctx, path->nodes[j].var);
            if (path->nodes[j].props) walk_vars(path->nodes[j].props, fn, ctx);
            if (j + 1 < path->node_count) {
                if (path->rels[j].var.len) fn(ctx, path->rels[j].var);
                if (path->rels[j].props) walk_vars(path->rels[j].props, fn, ctx);
            }
        }
    }
}

/* Call fn on every direct child expression of e (NULL children skipped).
 * A pattern predicate's pattern is not an expression child: callers that
 * need its variables handle AST_PATTERN_PRED themselves.  The one place
 * that knows the shape of every expression kind, so walkers below cannot
 * disagree about what the children are. */
typedef void (*child_fn)(void *ctx, const ast_expr *child);

static void for_each_child(const ast_expr *e, child_fn fn, void *ctx) {
#define VISIT(x)                  \
    do {                          \
        if ((x) != NULL) fn(ctx, (x)); \
    } while (0)
    switch (e->kind) {
    case AST_LITERAL:
    case AST_PARAM:
    case AST_VAR:
    case AST_PATTERN_PRED: break;
    case AST_PROP: VISIT(e->u.prop.operand); break;
    case AST_INDEX:
    case AST_SLICE:
        VISIT(e->u.index.operand);
        VISIT(e->u.index.index);
        VISIT(e->u.index.lo);
        VISIT(e->u.index.hi);
        break;
    case AST_LIST:
        for (uint32_t i = 0; i < e->u.list.count; i++) VISIT(e->u.list.items[i]);
        break;
    case AST_MAP:
        for (uint32_t i = 0; i < e->u.map.count; i++) VISIT(e->u.map.values[i]);
        break;
    case AST_UNARY:
    case AST_BINARY:
        VISIT(e->u.op.lhs);
        VISIT(e->u.op.rhs);
        break;
    case AST_IS_NULL:
    case AST_IS_NOT_NULL: VISIT(e->u.is_null.operand); break;
    case AST_HAS_LABELS: VISIT(e->u.has_labels.operand); break;
    case AST_FUNC:
        for (uint32_t i = 0; i < e->u.func.arg_count; i++) VISIT(e->u.func.args[i]);
        break;
    case AST_CASE:
        VISIT(e->u.case_.subject);
        for (uint32_t i = 0; i < e->u.case_.count; i++) {
            VISIT(e->u.case_.whens[i]);
            VISIT(e->u.case_.thens[i]);
        }
        VISIT(e->u.case_.otherwise);
        break;
    case AST_LIST_COMP:
    case AST_QUANTIFIER:
        VISIT(e->u.comp.list);
        VISIT(e->u.comp.where);
        VISIT(e->u.comp.map);
        break;
    }
#undef VISIT
}

typedef struct var_walk {
    var_fn fn;
    void *ctx;
} var_walk;

static void walk_vars_child(void *ctx, const ast_expr *child) {
    const var_walk *w = ctx;
    walk_vars(child, w->fn, w->ctx);
}

static void walk_vars(const ast_expr *e, var_fn fn, void *ctx) {
    if (e == NULL) return;
    if (e->kind == AST_VAR) {
        fn(ctx, e->u.name);
        return;
    }
    if (e->kind == AST_PATTERN_PRED) {
        walk_pattern_vars(e->u.pattern.pattern, fn, ctx);
        return;
    }
    var_walk w = {fn, ctx};
    for_each_child(e, walk_vars_child, &w);
}

static bool is_agg_call(const ast_expr *e) { return e->kind == AST_FUNC && fn_is_aggregate_name(e->u.func.name); }

typedef void (*agg_fn)(void *ctx, const ast_expr *e);

static void walk_aggs(const ast_expr *e, agg_fn fn, void *ctx);

typedef struct agg_walk {
    agg_fn fn;
    void *ctx;
} agg_walk;

static void walk_aggs_child(void *ctx, const ast_expr *child) {
    const agg_walk *w = ctx;
    walk_aggs(child, w->fn, w->ctx);
}

/* Visit aggregate calls (not descending into their arguments). */
static void walk_aggs(const ast_expr *e, agg_fn fn, void *ctx) {
    if (e == NULL) return;
    if (is_agg_call(e)) {
        fn(ctx, e);
        return;
    }
    agg_walk w = {fn, ctx};
    for_each_child(e, walk_aggs_child, &w);
}

static void count_agg(void *ctx, const ast_expr *e) {
    (void)e;
    (*(uint32_t *)ctx)++;
}

static void first_agg(void *ctx, const ast_expr *e) {
    const ast_expr **f = ctx;
    if (*f == NULL) *f = e;
}

static bool has_agg(const ast_expr *e) {
    uint32_t n = 0;
    walk_aggs(e, count_agg, &n);
    return n > 0;
}

/* Structural equality (ORDER BY items that repeat a projection item). */
static bool ast_equal(const ast_expr *a, const ast_expr *b) {
    if (a == b) return true;
    if (a == NULL || b == NULL || a->kind != b->kind) return false;
    switch (a->kind) {
    case AST_LITERAL: return a->u.literal.type == b->u.literal.type && qv_order(a->u.literal, b->u.literal) == 0;
    case AST_PARAM:
    case AST_VAR: return str_eq(a->u.name, b->u.name);
    case AST_PROP: return str_eq(a->u.prop.key, b->u.prop.key) && ast_equal(a->u.prop.operand, b->u.prop.operand);
    case AST_INDEX:
    case AST_SLICE:
        return ast_equal(a->u.index.operand, b->u.index.operand) && ast_equal(a->u.index.index, b->u.index.index) &&
               ast_equal(a->u.index.lo, b->u.index.lo) && ast_equal(a->u.index.hi, b->u.index.hi);
    case AST_UNARY:
    case AST_BINARY:
        return a->u.op.op == b->u.op.op && ast_equal(a->u.op.lhs, b->u.op.lhs) && ast_equal(a->u.op.rhs, b->u.op.rhs);
    case AST_IS_NULL:
    case AST_IS_NOT_NULL: return ast_equal(a->u.is_null.operand, b->u.is_null.operand);
    case AST_FUNC:
        if (a->u.func.name.len != b->u.func.name.len ||
            strncasecmp(a->u.func.name.ptr, b->u.func.name.ptr, a->u.func.name.len) != 0 ||
            a->u.func.distinct != b->u.func.distinct || a->u.func.star != b->u.func.star ||
            a->u.func.arg_count != b->u.func.arg_count)
            return false;
        for (uint32_t i = 0; i < a->u.func.arg_count; i++)
            if (!ast_equal(a->u.func.args[i], b->u.func.args[i])) return false;
        return true;
    case AST_LIST:
        if (a->u.list.count != b->u.list.count) return false;
        for (uint32_t i = 0; i < a->u.list.count; i++)
            if (!ast_equal(a->u.list.items[i], b->u.list.items[i])) return false;
        return true;
    default: return false;
    }
}

/* A hash consistent with ast_equal (equal expressions hash alike), so
 * ORDER BY items are matched against the projection with one integer
 * compare per pair instead of a tree walk. */
static uint64_t ast_mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t ast_hash(const ast_expr *e) {
    if (e == NULL) return 0x51ed270b27e1c3a5ull;
    uint64_t h = ast_mix(0x2545f4914f6cdd1dull, (uint64_t)e->kind);
    switch (e->kind) {
    case AST_LITERAL: return ast_mix(ast_mix(h, e->u.literal.type), qv_hash(e->u.literal, 0));
    case AST_PARAM:
    case AST_VAR: return ast_mix(h, name_hash(e->u.name));
    case AST_PROP: return ast_mix(ast_mix(h, name_hash(e->u.prop.key)), ast_hash(e->u.prop.operand));
    case AST_INDEX:
    case AST_SLICE:
        h = ast_mix(h, ast_hash(e->u.index.operand));
        h = ast_mix(h, ast_hash(e->u.index.index));
        h = ast_mix(h, ast_hash(e->u.index.lo));
        return ast_mix(h, ast_hash(e->u.index.hi));
    case AST_UNARY:
    case AST_BINARY:
        h = ast_mix(h, e->u.op.op);
        h = ast_mix(h, ast_hash(e->u.op.lhs));
        return ast_mix(h, ast_hash(e->u.op.rhs));
    case AST_IS_NULL:
    case AST_IS_NOT_NULL: return ast_mix(h, ast_hash(e->u.is_null.operand));
    case AST_FUNC: {
        for (uint32_t i = 0; i < e->u.func.name.len; i++) {
            char ch = e->u.func.name.ptr[i];
            if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
            h = ast_mix(h, (unsigned char)ch);
        }
        h = ast_mix(h, (uint64_t)e->u.func.distinct << 1 | e->u.func.star);
        for (uint32_t i = 0; i < e->u.func.arg_count; i++) h = ast_mix(h, ast_hash(e->u.func.args[i]));
        return h;
    }
    case AST_LIST:
        for (uint32_t i = 0; i < e->u.list.count; i++) h = ast_mix(h, ast_hash(e->u.list.items[i]));
        return h;
    default:
        /* ast_equal: equal only to itself */
        return ast_mix(h, (uint64_t)(uintptr_t)e);
    }
}

/* ------------------------------------------------------------------ */
/* Expression compilation                                              */
/* ------------------------------------------------------------------ */

static cx *compile(planner *P, const ast_expr *e);
static op *plan_pattern(planner *P, op *input, const ast_pattern *pat, const ast_expr *where, bool bfs_ok,
                        uint32_t **new_slots, uint32_t *new_count);

static bool param_value(planner *P, qv_str name, qv_value *out) {
    for (uint32_t i = 0; i < P->c->param_count; i++)
        if (str_eq(P->c->param_names[i], name)) {
            *out = P->c->param_values[i];
            return true;
        }
    return qctx_fail(P->c, QUERY_ERR_SEMANTIC, "Missing parameters");
}

static cx **compile_list(planner *P, ast_expr *const *items, uint32_t n) {
    cx **out = qctx_alloc(P->c, sizeof(cx *) * (n ? n : 1));
    if (out == NULL) return NULL;
    for (uint32_t i = 0; i < n; i++)
        if ((out[i] = compile(P, items[i])) == NULL) return NULL;
    return out;
}

/* A map literal's keys may repeat ({a: 1, a: 2} is {a: 2}): where each
 * item goes in the built map (x->ids[i]; the first occurrence's position)
 * and how many distinct keys there are (x->slot), found once here so that
 * evaluating the literal is linear. */
static bool map_positions(qctx *c, cx *x) {
    uint32_t n = x->n;
    x->ids = qctx_alloc(c, sizeof(uint32_t) * (n ? n : 1));
    if (x->ids == NULL) return false;
    uint32_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    uint32_t *tab = q_arena_calloc(c->a, cap, sizeof(uint32_t)); /* item index + 1 of a key's first occurrence */
    if (tab == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
    uint32_t distinct = 0;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t h = (uint32_t)name_hash(x->keys[i]) & (cap - 1);; h = (h + 1) & (cap - 1)) {
            if (tab[h] == 0) {
                tab[h] = i + 1;
                x->ids[i] = distinct++;
                break;
            }
            if (str_eq(x->keys[tab[h] - 1], x->keys[i])) {
                x->ids[i] = x->ids[tab[h] - 1];
                break;
            }
        }
    }
    x->slot = distinct;
    return true;
}

static cx *compile_func(planner *P, const ast_expr *e) {
    qctx *c = P->c;
    const fn_def *fn = fn_lookup(e->u.func.name);
    if (fn == NULL) {
        semantic(P, "Unknown function '%.*s'", e->u.func.name);
        return NULL;
    }
    if (fn->aggregate) {
        if (P->in_agg_arg) {
            qctx_fail(c, QUERY_ERR_SEMANTIC, "Can't use aggregate functions inside of aggregate functions.");
            return NULL;
        }
        for (uint32_t i = 0; i < P->agg_count; i++)
            if (P->aggs[i].ast == e) return cx_slot(c, P->aggs[i].slot);
        qctx_fail(c, QUERY_ERR_SEMANTIC, "Invalid use of aggregating function '%.*s'", (int)e->u.func.name.len,
                  e->u.func.name.ptr);
        return NULL;
    }
    uint32_t n = e->u.func.arg_count;
    if (n < fn->min_args || n > fn->max_args) {
        qctx_fail(c, QUERY_ERR_SEMANTIC, "Received %u arguments to function '%.*s', expected %s %u", n,
                  (int)e->u.func.name.len, e->u.func.name.ptr, n < fn->min_args ? "at least" : "at most",
                  n < fn->min_args ? fn->min_args : fn->max_args);
        return NULL;
    }
    cx *x = cx_new(c, CX_FUNC);
    if (x == NULL) return NULL;
    x->fn = fn;
    x->name = e->u.func.name;
    x->n = n;
    x->args = compile_list(P, e->u.func.args, n);
    return x->args ? x : NULL;
}

static cx *compile(planner *P, const ast_expr *e) {
    qctx *c = P->c;
    if (c->failed || !QCTX_STACK_OK(c)) return NULL;
    cx *x = NULL;
    switch (e->kind) {
    case AST_LITERAL: return cx_const(c, e->u.literal);
    case AST_PARAM: {
        qv_value v;
        if (!param_value(P, e->u.name, &v)) return NULL;
        return cx_const(c, v);
    }
    case AST_VAR: {
        pvar *v = scope_find(&P->sc, e->u.name);
        if (v == NULL) {
            semantic(P, "%.*s not defined", e->u.name);
            return NULL;
        }
        return cx_slot(c, v->slot);
    }
    case AST_PROP: {
        cx *o = compile(P, e->u.prop.operand);
        return o ? cx_prop(c, o, e->u.prop.key) : NULL;
    }
    case AST_INDEX:
    case AST_SLICE:
        x = cx_new(c, e->kind == AST_INDEX ? CX_INDEX : CX_SLICE);
        if (x == NULL || (x->a = compile(P, e->u.index.operand)) == NULL) return NULL;
        if (e->kind == AST_INDEX) {
            if ((x->b = compile(P, e->u.index.index)) == NULL) return NULL;
        } else {
            if (e->u.index.lo && (x->b = compile(P, e->u.index.lo)) == NULL) return NULL;
            if (e->u.index.hi && (x->c = compile(P, e->u.index.hi)) == NULL) return NULL;
        }
        return x;
    case AST_LIST: {
        /* a list of constants is itself a constant (UNWIND [..] batches) */
        bool all_const = true;
        x = cx_new(c, CX_LIST);
        if (x == NULL) return NULL;
        x->n = e->u.list.count;
        if ((x->args = compile_list(P, e->u.list.items, x->n)) == NULL) return NULL;
        for (uint32_t i = 0; i < x->n; i++)
            if (x->args[i]->kind != CX_CONST) all_const = false;
        if (all_const) {
            qv_value v = cx_eval(c, x);
            if (c->failed) return NULL;
            return cx_const(c, v);
        }
        return x;
    }
    case AST_MAP:
        x = cx_new(c, CX_MAP);
        if (x == NULL) return NULL;
        x->n = e->u.map.count;
        x->keys = e->u.map.keys;
        x->args = compile_list(P, e->u.map.values, x->n);
        if (x->args == NULL || !map_positions(c, x)) return NULL;
        return x;
    case AST_UNARY:
        x = cx_new(c, CX_UNARY);
        if (x == NULL) return NULL;
        x->op = (uint8_t)e->u.op.op;
        x->a = compile(P, e->u.op.lhs);
        return x->a ? x : NULL;
    case AST_BINARY: {
        cx *a = compile(P, e->u.op.lhs);
        cx *b = a ? compile(P, e->u.op.rhs) : NULL;
        if (b == NULL) return NULL;
        x = cx_binary(c, e->u.op.op, a, b);
        /* a constant pattern is compiled once, here: admission refuses a bad one */
        if (x != NULL && e->u.op.op == AST_OP_REGEX && b->kind == CX_CONST && b->v.type == QV_STRING &&
            (x->re = qre_compile(c, b->v.u.s)) == NULL)
            return NULL;
        return x;
    }
    case AST_IS_NULL:
    case AST_IS_NOT_NULL:
        x = cx_new(c, e->kind == AST_IS_NULL ? CX_IS_NULL : CX_IS_NOT_NULL);
        if (x == NULL) return NULL;
        x->a = compile(P, e->u.is_null.operand);
        return x->a ? x : NULL;
    case AST_HAS_LABELS: {
        cx *o = compile(P, e->u.has_labels.operand);
        return o ? cx_has_labels(c, o, e->u.has_labels.count, e->u.has_labels.labels) : NULL;
    }
    case AST_FUNC: return compile_func(P, e);
    case AST_CASE:
        x = cx_new(c, CX_CASE);
        if (x == NULL) return NULL;
        if (e->u.case_.subject && (x->a = compile(P, e->u.case_.subject)) == NULL) return NULL;
        x->n = e->u.case_.count;
        x->args = qctx_alloc(c, sizeof(cx *) * 2 * (x->n ? x->n : 1));
        if (x->args == NULL) return NULL;
        for (uint32_t i = 0; i < x->n; i++) {
            if ((x->args[2 * i] = compile(P, e->u.case_.whens[i])) == NULL) return NULL;
            if ((x->args[2 * i + 1] = compile(P, e->u.case_.thens[i])) == NULL) return NULL;
        }
        if (e->u.case_.otherwise && (x->b = compile(P, e->u.case_.otherwise)) == NULL) return NULL;
        return x;
    case AST_LIST_COMP:
    case AST_QUANTIFIER: {
        x = cx_new(c, e->kind == AST_LIST_COMP ? CX_LIST_COMP : CX_QUANT);
        if (x == NULL) return NULL;
        x->op = (uint8_t)e->u.comp.quantifier;
        if ((x->a = compile(P, e->u.comp.list)) == NULL) return NULL;
        x->slot = new_slot(P);
        uint32_t saved = P->sc.count;
        if (!scope_push(P, &P->sc, e->u.comp.var, x->slot, VK_ANY)) return NULL;
        if (e->u.comp.where && (x->b = compile(P, e->u.comp.where)) == NULL) return NULL;
        if (e->u.comp.map && (x->c = compile(P, e->u.comp.map)) == NULL) return NULL;
        scope_truncate(&P->sc, saved);
        return x;
    }
    case AST_PATTERN_PRED: {
        x = cx_new(c, CX_PATTERN);
        if (x == NULL) return NULL;
        op *arg = op_new(c, OP_ARGUMENT, NULL);
        if (arg == NULL) return NULL;
        uint32_t saved = P->sc.count;
        uint32_t *ns, nn;
        x->sub = plan_pattern(P, arg, e->u.pattern.pattern, NULL, true, &ns, &nn);
        if (x->sub == NULL) return NULL;
        scope_truncate(&P->sc, saved);
        if (x->sub && c->sub_count == c->sub_cap) {
            uint32_t ncap = c->sub_cap ? c->sub_cap * 2 : 8;
            op **n = q_arena_realloc(c->a, c->subs, sizeof(op *) * c->sub_cap, sizeof(op *) * ncap);
            if (n == NULL) {
                qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
                return NULL;
            }
            c->subs = n;
            c->sub_cap = ncap;
        }
        if (x->sub) c->subs[c->sub_count++] = x->sub;
        return x->sub ? x : NULL;
    }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Pattern planning                                                    */
/* ------------------------------------------------------------------ */

typedef enum seek_kind { SEEK_NONE, SEEK_ID, SEEK_PROP } seek_kind;

typedef struct conj {
    cx *e;
    uint64_t deps;          /* bits of the pattern's new variables it needs */
    bool used;
    /* seek analysis */
    uint8_t seek;           /* seek_kind */
    uint32_t seek_slot;     /* the node */
    qv_str seek_key;
    ast_op seek_op;         /* EQ, IN, LT, LE, GT, GE (node on the left) */
    cx *seek_val;
    uint64_t val_deps;
    /* label conjunct: node slot and label, so a label scan can consume it */
    bool is_label;
    qv_str label;
    /* label statistics, looked up once (start_cost) */
    bool label_looked_up;
    bool label_known;
    uint64_t label_count;
    int32_t wait_next;      /* apply_ready's wait lists */
} conj;

/* Planning state of one pattern.  Readiness of conjuncts is tracked with
 * a 64-bit mask over the pattern's new variables (the first 63 get a bit
 * each; the rest share bit 63, which is set only at the very end, so a
 * conjunct on them waits until everything is bound -- correct, if late).
 * Whether a particular slot is bound is kept exactly (slot_bound), since
 * expansions depend on it. */
typedef struct pctx {
    planner *P;
    uint32_t new_count;
    uint32_t *new_slots;    /* slots first declared by this pattern */
    uint32_t pos_base;      /* P->nslots when the pattern started: new slots are >= it */
    uint32_t *pos;          /* slot - pos_base -> index + 1 in new_slots (0: not new) */
    uint32_t pos_cap;
    uint8_t *slot_bound;    /* per new_slots index: bound yet */
    uint64_t bound;         /* bits of new slots bound so far */
    conj *cj;
    uint32_t cj_count, cj_cap;
    uint32_t rel_total;     /* relationships in the whole pattern */
    uint32_t *uniq;         /* relationship slots bound in this pattern */
    uint32_t uniq_count, uniq_cap;
    /* apply_ready: conjuncts waiting for their lowest unbound bit */
    bool wait_init;
    uint64_t wait_bound;    /* bound when the lists were last brought up to date */
    int32_t wait_head[64];
    uint32_t *ready;        /* scratch: indexes of conjuncts ready now */
    uint32_t ready_cap;
    /* start_cost: conjunct indexes per new node (labels and seeks) */
    uint32_t *bucket_start; /* per new_slots index + 1 */
    uint32_t *bucket;
} pctx;

#define PCTX_OVERFLOW_BIT 63u

/* Index of slot among the pattern's new variables, capped at 63 (the
 * overflow bit); -1 when it is not new in this pattern. */
/* Index + 1 of slot among the pattern's new variables, 0 if not new. */
static uint32_t new_pos(const pctx *X, uint32_t slot) {
    if (slot < X->pos_base || slot - X->pos_base >= X->pos_cap) return 0;
    return X->pos[slot - X->pos_base];
}

static int new_index(pctx *X, uint32_t slot) {
    uint32_t p = new_pos(X, slot);
    if (p == 0) return -1;
    return (int)(p - 1 < PCTX_OVERFLOW_BIT ? p - 1 : PCTX_OVERFLOW_BIT);
}

/* Dependency bit of slot (0 when not new). */
static uint64_t slot_bit(pctx *X, uint32_t slot) {
    int i = new_index(X, slot);
    return i < 0 ? 0 : (1ull << i);
}

/* Mark slot bound: its bit (not the shared overflow bit) and its flag. */
static void bind_slot(pctx *X, uint32_t slot) {
    uint32_t p = new_pos(X, slot);
    if (p == 0) return;
    X->slot_bound[p - 1] = 1;
    if (p - 1 < PCTX_OVERFLOW_BIT) X->bound |= 1ull << (p - 1);
}

static bool slot_is_bound(pctx *X, uint32_t slot) {
    uint32_t p = new_pos(X, slot);
    return p != 0 && X->slot_bound[p - 1];
}

typedef struct deps_ctx {
    pctx *X;
    uint64_t deps;
} deps_ctx;

static void deps_cb(void *ctx, qv_str name) {
    deps_ctx *d = ctx;
    pvar *v = scope_find(&d->X->P->sc, name);
    if (v) d->deps |= slot_bit(d->X, v->slot);
}

static uint64_t ast_deps(pctx *X, const ast_expr *e) {
    deps_ctx d = {X, 0};
    walk_vars(e, deps_cb, &d);
    return d.deps;
}

static conj *add_conj(pctx *X, cx *e, uint64_t deps) {
    if (e == NULL) return NULL;
    QUIVER_ASSERT(!X->wait_init); /* apply_ready has seen every conjunct */
    if (X->cj_count == X->cj_cap) {
        uint32_t ncap = X->cj_cap ? X->cj_cap * 2 : 16;
        conj *n = q_arena_realloc(X->P->c->a, X->cj, sizeof(conj) * X->cj_cap, sizeof(conj) * ncap);
        if (n == NULL) {
            qctx_fail(X->P->c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
            return NULL;
        }
        X->cj = n;
        X->cj_cap = ncap;
    }
    conj *k = &X->cj[X->cj_count++];
    memset(k, 0, sizeof *k);
    k->e = e;
    k->deps = deps;
    return k;
}

static ast_op flip_op(ast_op op) {
    switch (op) {
    case AST_OP_LT: return AST_OP_GT;
    case AST_OP_LE: return AST_OP_GE;
    case AST_OP_GT: return AST_OP_LT;
    case AST_OP_GE: return AST_OP_LE;
    default: return op;
    }
}

/* Is e `id(v)` with v a node variable of this pattern? */
static bool is_id_call(pctx *X, const ast_expr *e, uint32_t *slot) {
    if (e->kind != AST_FUNC || e->u.func.arg_count != 1 || e->u.func.name.len != 2 ||
        strncasecmp(e->u.func.name.ptr, "id", 2) != 0)
        return false;
    const ast_expr *a = e->u.func.args[0];
    if (a->kind != AST_VAR) return false;
    pvar *v = scope_find(&X->P->sc, a->u.name);
    if (v == NULL || new_index(X, v->slot) < 0 || v->kind != VK_NODE) return false;
    *slot = v->slot;
    return true;
}

static bool is_var_prop(pctx *X, const ast_expr *e, uint32_t *slot, qv_str *key) {
    if (e->kind != AST_PROP || e->u.prop.operand->kind != AST_VAR) return false;
    pvar *v = scope_find(&X->P->sc, e->u.prop.operand->u.name);
    if (v == NULL || new_index(X, v->slot) < 0 || v->kind != VK_NODE) return false;
    *slot = v->slot;
    *key = e->u.prop.key;
    return true;
}

/* Fill the seek fields of a WHERE conjunct when it has a seekable shape. */
static void analyse_seek(pctx *X, conj *k, const ast_expr *e) {
    if (e->kind != AST_BINARY) return;
    ast_op op = e->u.op.op;
    if (op != AST_OP_EQ && op != AST_OP_IN && op != AST_OP_LT && op != AST_OP_LE && op != AST_OP_GT && op != AST_OP_GE)
        return;
    const ast_expr *l = e->u.op.lhs, *r = e->u.op.rhs;
    uint32_t slot;
    qv_str key;
    for (int side = 0; side < 2; side++) {
        const ast_expr *node_side = side == 0 ? l : r;
        const ast_expr *val_side = side == 0 ? r : l;
        ast_op sop = side == 0 ? op : flip_op(op);
        if (op == AST_OP_IN && side == 1) break;
        bool id = is_id_call(X, node_side, &slot);
        bool prop = !id && is_var_prop(X, node_side, &slot, &key);
        if (!id && !prop) continue;
        uint64_t vd = ast_deps(X, val_side);
        if (vd & slot_bit(X, slot)) continue;
        if (id && sop != AST_OP_EQ && sop != AST_OP_IN) continue;
        cx *val = compile(X->P, val_side);
        if (val == NULL) return;
        k->seek = id ? SEEK_ID : SEEK_PROP;
        k->seek_slot = slot;
        k->seek_key = id ? (qv_str){NULL, 0} : key;
        k->seek_op = sop;
        k->seek_val = val;
        k->val_deps = vd;
        return;
    }
}

static void split_and(pctx *X, const ast_expr *e) {
    if (e == NULL || X->P->c->failed) return;
    if (e->kind == AST_BINARY && e->u.op.op == AST_OP_AND) {
        split_and(X, e->u.op.lhs);
        split_and(X, e->u.op.rhs);
        return;
    }
    if (has_agg(e)) {
        const ast_expr *first = NULL;
        walk_aggs(e, first_agg, &first);
        qctx_fail(X->P->c, QUERY_ERR_SEMANTIC, "Invalid use of aggregating function '%.*s'", (int)first->u.func.name.len,
                  first->u.func.name.ptr);
        return;
    }
    conj *k = add_conj(X, compile(X->P, e), ast_deps(X, e));
    if (k) analyse_seek(X, k, e);
    /* `WHERE n:Label` on a node of this pattern may drive a label/index scan */
    if (k && e->kind == AST_HAS_LABELS && e->u.has_labels.count == 1 && e->u.has_labels.operand->kind == AST_VAR) {
        pvar *v = scope_find(&X->P->sc, e->u.has_labels.operand->u.name);
        if (v && v->kind == VK_NODE && new_index(X, v->slot) >= 0) {
            k->is_label = true;
            k->label = e->u.has_labels.labels[0];
            k->seek_slot = v->slot;
        }
    }
}

/* Property map of a pattern element -> conjuncts `slot.key = value`. */
static bool props_conjuncts(pctx *X, uint32_t slot, const ast_expr *props, bool node) {
    planner *P = X->P;
    if (props == NULL) return true;
    if (props->kind == AST_MAP) {
        for (uint32_t i = 0; i < props->u.map.count; i++) {
            cx *val = compile(P, props->u.map.values[i]);
            if (val == NULL) return false;
            cx *lhs = cx_prop(P->c, cx_slot(P->c, slot), props->u.map.keys[i]);
            uint64_t vd = ast_deps(X, props->u.map.values[i]);
            conj *k = add_conj(X, cx_binary(P->c, AST_OP_EQ, lhs, val), slot_bit(X, slot) | vd);
            if (k == NULL) return false;
            if (node && !(vd & slot_bit(X, slot))) {
                k->seek = SEEK_PROP;
                k->seek_slot = slot;
                k->seek_key = props->u.map.keys[i];
                k->seek_op = AST_OP_EQ;
                k->seek_val = val;
                k->val_deps = vd;
            }
        }
        return true;
    }
    /* a parameter (or other expression) that must evaluate to a map */
    if (props->kind == AST_PARAM) {
        qv_value m = qv_null(); /* set by param_value; initialised for -O3 -Wmaybe-uninitialized */
        if (!param_value(P, props->u.name, &m)) return false;
        if (m.type != QV_MAP) return qctx_fail(P->c, QUERY_ERR_RUNTIME, "Type mismatch: expected Map but was %s",
                                               qv_type_name((qv_type)m.type));
        for (uint32_t i = 0; i < m.u.map->count; i++) {
            cx *val = cx_const(P->c, m.u.map->values[i]);
            cx *lhs = cx_prop(P->c, cx_slot(P->c, slot), m.u.map->keys[i]);
            conj *k = add_conj(X, cx_binary(P->c, AST_OP_EQ, lhs, val), slot_bit(X, slot));
            if (k == NULL) return false;
            if (node) {
                k->seek = SEEK_PROP;
                k->seek_slot = slot;
                k->seek_key = m.u.map->keys[i];
                k->seek_op = AST_OP_EQ;
                k->seek_val = val;
            }
        }
        return true;
    }
    return qctx_fail(P->c, QUERY_ERR_SEMANTIC, "Encountered unhandled type in inlined properties.");
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Put conjunct i, which still needs an unbound variable, on the wait list
 * of the lowest bit it needs. */
static void wait_on_lowest(pctx *X, uint32_t i) {
    conj *k = &X->cj[i];
    uint64_t rem = k->deps & ~X->bound;
    QUIVER_ASSERT(rem != 0);
    int b = __builtin_ctzll(rem);
    k->wait_next = X->wait_head[b];
    X->wait_head[b] = (int32_t)i;
}

/* Add every conjunct that became ready (all the variables it uses bound)
 * as one filter, in the conjuncts' order.  Each conjunct waits on the
 * lowest bit it still needs and is looked at again only when that bit is
 * bound, so the whole pattern costs O(64 x conjuncts), not O(operators x
 * conjuncts). */
static op *apply_ready(pctx *X, op *cur) {
    qctx *c = X->P->c;
    uint32_t nready = 0;
    if (X->ready_cap < X->cj_count) {
        uint32_t ncap = X->cj_count < 16 ? 16 : X->cj_count;
        X->ready = qctx_alloc(c, sizeof(uint32_t) * ncap);
        if (X->ready == NULL) return NULL;
        X->ready_cap = ncap;
    }
    if (!X->wait_init) {
        X->wait_init = true;
        for (int b = 0; b < 64; b++) X->wait_head[b] = -1;
        for (uint32_t i = 0; i < X->cj_count; i++) {
            conj *k = &X->cj[i];
            if (k->used) continue;
            if ((k->deps & ~X->bound) == 0) X->ready[nready++] = i;
            else wait_on_lowest(X, i);
        }
    } else {
        uint64_t newly = X->bound & ~X->wait_bound;
        while (newly != 0) {
            int b = __builtin_ctzll(newly);
            newly &= newly - 1;
            int32_t i = X->wait_head[b];
            X->wait_head[b] = -1;
            while (i >= 0) {
                conj *k = &X->cj[i];
                int32_t next = k->wait_next;
                if (!k->used) {
                    if ((k->deps & ~X->bound) == 0) X->ready[nready++] = (uint32_t)i;
                    else wait_on_lowest(X, (uint32_t)i);
                }
                i = next;
            }
        }
    }
    X->wait_bound = X->bound;
    if (nready > 1) qsort(X->ready, nready, sizeof(uint32_t), cmp_u32);
    cx *pred = NULL;
    for (uint32_t r = 0; r < nready; r++) {
        conj *k = &X->cj[X->ready[r]];
        if (k->used) continue;
        k->used = true;
        pred = pred ? cx_binary(c, AST_OP_AND, pred, k->e) : k->e;
        if (pred == NULL) return NULL;
    }
    if (pred == NULL) return cur;
    op *f = op_new(c, OP_FILTER, cur);
    if (f) f->u.filter.pred = pred;
    return f;
}

static char *describe_node(qctx *c, const ast_node_pat *n) {
    char buf[512];
    int len = snprintf(buf, sizeof buf, "(%.*s", (int)(n->var.len > 200 ? 200 : n->var.len), n->var.ptr ? n->var.ptr : "");
    for (uint32_t i = 0; i < n->label_count && len < 400; i++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, ":%.*s", (int)(n->labels[i].len > 100 ? 100 : n->labels[i].len),
                        n->labels[i].ptr);
    snprintf(buf + len, sizeof buf - (size_t)len, ")");
    return q_arena_strndup(c->a, buf, strlen(buf));
}

static char *describe_rel(qctx *c, const ast_node_pat *a, const ast_rel_pat *r, const ast_node_pat *b, bool reverse) {
    char *da = describe_node(c, reverse ? b : a), *db = describe_node(c, reverse ? a : b);
    char types[256];
    int tl = 0;
    types[0] = '\0';
    for (uint32_t i = 0; i < r->type_count && tl < 200; i++)
        tl += snprintf(types + tl, sizeof types - (size_t)tl, "%s%.*s", i ? "|" : ":", (int)(r->types[i].len > 60 ? 60 : r->types[i].len),
                       r->types[i].ptr);
    ast_rel_dir d = r->dir;
    if (reverse && d != AST_DIR_BOTH) d = d == AST_DIR_RIGHT ? AST_DIR_LEFT : AST_DIR_RIGHT;
    char hops[48] = "";
    if (r->varlen) {
        if (r->max_hops == UINT32_MAX) snprintf(hops, sizeof hops, "*%u..", r->min_hops);
        else snprintf(hops, sizeof hops, "*%u..%u", r->min_hops, r->max_hops);
    }
    char buf[1400];
    snprintf(buf, sizeof buf, "%s%s[%.*s%s%s]%s%s", da ? da : "()", d == AST_DIR_LEFT ? "<-" : "-",
             (int)(r->var.len > 200 ? 200 : r->var.len), r->var.ptr ? r->var.ptr : "", types, hops,
             d == AST_DIR_RIGHT ? "->" : "-", db ? db : "()");
    return q_arena_strndup(c->a, buf, strlen(buf));
}

/* Start cost of an unbound node; fills the best seek choice. */
typedef struct start_choice {
    uint64_t cost;
    int conj_index;         /* seek conjunct, or -1 */
    int conj_index2;        /* second range bound, or -1 */
    qv_str label;           /* label for scan / index */
    bool has_label;
    op_kind kind;
} start_choice;

static bool index_usable(qctx *c, qv_str label, qv_str key) {
    uint32_t lid, kid;
    if (c->graph_missing) return false;
    if (!schema_lookup(c, QS_SCHEMA_LABEL, label, &lid) || !schema_lookup(c, QS_SCHEMA_PROPKEY, key, &kid)) return false;
    return qs_index_exists(c->view, c->graph, lid, kid);
}

/* Start candidates considered per node: its first labels and its first
 * ready seek conjuncts.  A heuristic cap (the rest become filters), so
 * that choosing where to start costs O(1) per node whatever the pattern
 * says. */
#define PLAN_START_LABELS_MAX 8u
#define PLAN_START_SEEKS_MAX 8u

/* Group the conjuncts that may drive a start (labels, seeks) by node, once
 * every conjunct is known. */
static bool build_buckets(pctx *X) {
    qctx *c = X->P->c;
    uint32_t n = X->new_count;
    X->bucket_start = q_arena_calloc(c->a, (size_t)n + 2, sizeof(uint32_t));
    if (X->bucket_start == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
    uint32_t total = 0;
    for (uint32_t i = 0; i < X->cj_count; i++) {
        conj *k = &X->cj[i];
        if (!k->is_label && k->seek == SEEK_NONE) continue;
        if (new_pos(X, k->seek_slot) == 0) continue;
        X->bucket_start[new_pos(X, k->seek_slot) + 1]++;
        total++;
    }
    for (uint32_t i = 1; i <= n + 1; i++) X->bucket_start[i] += X->bucket_start[i - 1];
    X->bucket = qctx_alloc(c, sizeof(uint32_t) * (total ? total : 1));
    if (X->bucket == NULL) return false;
    uint32_t *fill = q_arena_calloc(c->a, (size_t)n + 1, sizeof(uint32_t));
    if (fill == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
    for (uint32_t i = 0; i < X->cj_count; i++) {
        conj *k = &X->cj[i];
        if (!k->is_label && k->seek == SEEK_NONE) continue;
        uint32_t b = new_pos(X, k->seek_slot);
        if (b == 0) continue;
        X->bucket[X->bucket_start[b] + fill[b]++] = i;
    }
    return true;
}

/* Node count of a label conjunct's label (storage, once per conjunct). */
static uint64_t conj_label_count(qctx *c, conj *k) {
    if (!k->label_looked_up) {
        k->label_looked_up = true;
        uint32_t lid;
        k->label_known = schema_lookup(c, QS_SCHEMA_LABEL, k->label, &lid);
        k->label_count = k->label_known ? qs_label_count(c->view, c->graph, lid) : 0;
    }
    return k->label_count;
}

static start_choice start_cost(pctx *X, uint32_t slot, const ast_node_pat *np) {
    qctx *c = X->P->c;
    start_choice best = {UINT64_MAX, -1, -1, {NULL, 0}, false, OP_SCAN_ALL};
    (void)np;
    if (X->bucket_start == NULL && !build_buckets(X)) return best;
    uint32_t b = new_pos(X, slot);
    uint32_t from = b ? X->bucket_start[b] : 0, to = b ? X->bucket_start[b + 1] : 0;
    /* the node's labels: from the pattern and from `WHERE n:Label` */
    conj *labels[PLAN_START_LABELS_MAX];
    uint32_t nl = 0;
    for (uint32_t j = from; j < to && nl < PLAN_START_LABELS_MAX; j++) {
        conj *k = &X->cj[X->bucket[j]];
        if (k->is_label && !k->used) labels[nl++] = k;
    }
    uint32_t seeks = 0;
    for (uint32_t j = from; j < to && seeks < PLAN_START_SEEKS_MAX; j++) {
        uint32_t i = X->bucket[j];
        conj *k = &X->cj[i];
        if (k->used || k->seek == SEEK_NONE || k->seek_slot != slot || (k->val_deps & ~X->bound) != 0) continue;
        seeks++;
        if (k->seek == SEEK_ID) {
            uint64_t cost = k->seek_op == AST_OP_EQ ? 1 : 2;
            if (cost < best.cost) {
                best.cost = cost;
                best.kind = OP_SEEK_ID;
                best.conj_index = (int)i;
                best.conj_index2 = -1;
            }
            continue;
        }
        for (uint32_t l = 0; l < nl; l++) {
            if (!index_usable(c, labels[l]->label, k->seek_key)) continue;
            uint64_t cost = k->seek_op == AST_OP_EQ ? 3 : 4;
            if (k->seek_op != AST_OP_EQ && k->seek_op != AST_OP_IN) cost = 5 + conj_label_count(c, labels[l]) / 4;
            if (cost < best.cost) {
                best.cost = cost;
                best.kind = OP_SCAN_INDEX;
                best.conj_index = (int)i;
                best.conj_index2 = -1;
                best.label = labels[l]->label;
                best.has_label = true;
            }
        }
    }
    /* scans only when no point seek was found: each count is a storage read */
    if (best.cost > 4) {
        for (uint32_t l = 0; l < nl; l++) {
            uint64_t n = conj_label_count(c, labels[l]);
            if (n + 10 < best.cost) {
                best.cost = n + 10;
                best.kind = OP_SCAN_LABEL;
                best.label = labels[l]->label;
                best.has_label = true;
                best.conj_index = -1;
                best.conj_index2 = -1;
            }
        }
        if (nl == 0) {
            uint64_t n = (c->graph_missing ? 0 : qs_node_count(c->view, c->graph)) + 100;
            if (n < best.cost) {
                best.cost = n;
                best.kind = OP_SCAN_ALL;
                best.has_label = false;
                best.conj_index = -1;
                best.conj_index2 = -1;
            }
        }
    }
    /* a range seek may take the opposite bound from another conjunct */
    if (best.kind == OP_SCAN_INDEX && best.conj_index >= 0) {
        conj *k = &X->cj[best.conj_index];
        if (k->seek_op != AST_OP_EQ && k->seek_op != AST_OP_IN) {
            bool lower = k->seek_op == AST_OP_GT || k->seek_op == AST_OP_GE;
            for (uint32_t j = from; j < to; j++) {
                uint32_t i = X->bucket[j];
                conj *o = &X->cj[i];
                if ((int)i == best.conj_index || o->used || o->seek != SEEK_PROP || o->seek_slot != slot ||
                    !str_eq(o->seek_key, k->seek_key) || (o->val_deps & ~X->bound) != 0)
                    continue;
                bool olower = o->seek_op == AST_OP_GT || o->seek_op == AST_OP_GE;
                bool oupper = o->seek_op == AST_OP_LT || o->seek_op == AST_OP_LE;
                if ((lower && oupper) || (!lower && olower)) {
                    best.conj_index2 = (int)i;
                    break;
                }
            }
        }
    }
    return best;
}

static op *emit_scan(pctx *X, op *cur, uint32_t slot, const ast_node_pat *np, start_choice ch) {
    qctx *c = X->P->c;
    op *o = op_new(c, ch.kind, cur);
    if (o == NULL) return NULL;
    o->u.scan.slot = slot;
    if (c->explain) o->describe = describe_node(c, np);
    if (ch.has_label && np->label_count == 0) {
        /* the label came from WHERE n:Label */
        ast_node_pat tmp = *np;
        tmp.label_count = 1;
        tmp.labels = &ch.label;
        if (c->explain) o->describe = describe_node(c, &tmp);
    }
    if (ch.has_label) o->u.scan.label = ch.label;
    if (ch.kind == OP_SEEK_ID) {
        conj *k = &X->cj[ch.conj_index];
        o->u.scan.val = k->seek_val;
        o->u.scan.seek_list = k->seek_op == AST_OP_IN;
        k->used = true;
    } else if (ch.kind == OP_SCAN_INDEX) {
        conj *k = &X->cj[ch.conj_index];
        o->u.scan.key = k->seek_key;
        k->used = true;
        if (k->seek_op == AST_OP_EQ) {
            o->u.scan.mode = IDX_EQ;
            o->u.scan.val = k->seek_val;
        } else if (k->seek_op == AST_OP_IN) {
            o->u.scan.mode = IDX_IN;
            o->u.scan.val = k->seek_val;
        } else {
            o->u.scan.mode = IDX_RANGE;
            conj *ks[2] = {k, ch.conj_index2 >= 0 ? &X->cj[ch.conj_index2] : NULL};
            for (int i = 0; i < 2; i++) {
                if (ks[i] == NULL) continue;
                ks[i]->used = true;
                ast_op op = ks[i]->seek_op;
                if (op == AST_OP_GT || op == AST_OP_GE) {
                    o->u.scan.lo = ks[i]->seek_val;
                    o->u.scan.lo_incl = op == AST_OP_GE;
                } else {
                    o->u.scan.hi = ks[i]->seek_val;
                    o->u.scan.hi_incl = op == AST_OP_LE;
                }
            }
        }
    }
    /* the scan's own label needs no filter */
    if (ch.has_label)
        for (uint32_t i = 0; i < X->cj_count; i++) {
            conj *k = &X->cj[i];
            if (!k->used && k->is_label && k->seek_slot == slot && str_eq(k->label, ch.label)) k->used = true;
        }
    return o;
}

typedef struct path_slots {
    uint32_t *node;
    uint32_t *rel;
    bool *node_bound_before;
} path_slots;

static bool declare(planner *P, pctx *X, qv_str name, var_kind kind, uint32_t *slot, bool *before) {
    if (name.len) {
        pvar *v = scope_find(&P->sc, name);
        if (v) {
            if (kind != VK_ANY && v->kind != VK_ANY && v->kind != kind &&
                !(kind == VK_EDGES && v->kind == VK_EDGES)) {
                semantic(P, "The alias '%.*s' was specified for both a node and a relationship.", name);
                return false;
            }
            *slot = v->slot;
            *before = new_index(X, v->slot) < 0;
            return true;
        }
    }
    *slot = new_slot(P);
    *before = false;
    if ((X->new_count & (X->new_count - 1)) == 0 && X->new_count >= 16) { /* 16, 32, 64...: double */
        uint32_t *n = q_arena_realloc(P->c->a, X->new_slots, sizeof(uint32_t) * X->new_count,
                                      sizeof(uint32_t) * X->new_count * 2);
        uint8_t *b = q_arena_realloc(P->c->a, X->slot_bound, X->new_count, (size_t)X->new_count * 2);
        if (n == NULL || b == NULL) return qctx_fail(P->c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
        X->new_slots = n;
        X->slot_bound = b;
    } else if (X->new_count == 0) {
        X->new_slots = qctx_alloc(P->c, sizeof(uint32_t) * 16);
        X->slot_bound = qctx_alloc(P->c, 16);
        if (X->new_slots == NULL || X->slot_bound == NULL) return false;
    }
    QUIVER_ASSERT(*slot >= X->pos_base);
    uint32_t rel = *slot - X->pos_base;
    if (rel >= X->pos_cap) {
        uint32_t ncap = X->pos_cap ? X->pos_cap : 64;
        while (ncap <= rel) ncap *= 2;
        uint32_t *np = q_arena_realloc(P->c->a, X->pos, sizeof(uint32_t) * X->pos_cap, sizeof(uint32_t) * ncap);
        if (np == NULL) return qctx_fail(P->c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
        memset(np + X->pos_cap, 0, sizeof(uint32_t) * (ncap - X->pos_cap));
        X->pos = np;
        X->pos_cap = ncap;
    }
    X->slot_bound[X->new_count] = 0;
    X->new_slots[X->new_count++] = *slot;
    X->pos[rel] = X->new_count;
    if (name.len && !scope_push(P, &P->sc, name, *slot, kind)) return false;
    return true;
}

static op *emit_expand(pctx *X, op *cur, const ast_path *path, path_slots *ps, uint32_t ri, bool reverse, bool bfs_ok) {
    planner *P = X->P;
    qctx *c = P->c;
    const ast_rel_pat *r = &path->rels[ri];
    uint32_t from = reverse ? ri + 1 : ri, to = reverse ? ri : ri + 1;
    op *o = op_new(c, r->varlen ? OP_VAREXPAND : OP_EXPAND, cur);
    if (o == NULL) return NULL;
    if (c->explain) o->describe = describe_rel(c, &path->nodes[ri], r, &path->nodes[ri + 1], reverse);
    o->u.expand.src_slot = ps->node[from];
    o->u.expand.dst_slot = ps->node[to];
    o->u.expand.into = slot_is_bound(X, ps->node[to]) || ps->node_bound_before[to];
    ast_rel_dir d = r->dir;
    if (reverse && d != AST_DIR_BOTH) d = d == AST_DIR_RIGHT ? AST_DIR_LEFT : AST_DIR_RIGHT;
    o->u.expand.dir = d;
    o->u.expand.type_count = r->type_count;
    o->u.expand.types = r->types;
    /* the relationships bound before this one: a prefix of X->uniq, which
     * only grows (and arena memory is never moved or freed), so shared */
    o->u.expand.uniq_count = X->uniq_count;
    o->u.expand.uniq_slots = X->uniq;
    o->u.expand.edge_slot = ps->rel[ri];
    if (r->varlen) {
        o->u.expand.min_hops = r->min_hops;
        o->u.expand.max_hops = r->max_hops;
        if (bfs_ok && r->var.len == 0 && path->var.len == 0 && r->min_hops <= 1) {
            o->u.expand.bfs = true;
            o->u.expand.edge_slot = UINT32_MAX;
        } else if (r->var.len == 0 && path->var.len == 0 && X->rel_total == 1) {
            /* nothing reads the relationship list: do not build one per path */
            o->u.expand.edge_slot = UINT32_MAX;
        }
        if (r->props) {
            /* the property map applies to every hop */
            o->u.expand.hop_slot = new_slot(P);
            pctx tmp = *X;
            tmp.cj = NULL;
            tmp.cj_count = tmp.cj_cap = 0;
            tmp.wait_init = false;
            if (!props_conjuncts(&tmp, o->u.expand.hop_slot, r->props, false)) return NULL;
            cx *pred = NULL;
            for (uint32_t i = 0; i < tmp.cj_count; i++) pred = pred ? cx_binary(c, AST_OP_AND, pred, tmp.cj[i].e) : tmp.cj[i].e;
            o->u.expand.hop_filter = pred;
        }
    }
    bind_slot(X, ps->node[to]);
    bind_slot(X, ps->rel[ri]);
    if (o->u.expand.edge_slot != UINT32_MAX) {
        /* grown by doubling; earlier arrays stay valid for earlier expansions */
        if (X->uniq_count == X->uniq_cap) {
            uint32_t ncap = X->uniq_cap ? X->uniq_cap * 2 : 4;
            uint32_t *nu = qctx_alloc(c, sizeof(uint32_t) * ncap);
            if (nu == NULL) return NULL;
            if (X->uniq_count) memcpy(nu, X->uniq, sizeof(uint32_t) * X->uniq_count);
            X->uniq = nu;
            X->uniq_cap = ncap;
        }
        X->uniq[X->uniq_count++] = o->u.expand.edge_slot;
    }
    return apply_ready(X, o);
}

static op *plan_pattern(planner *P, op *input, const ast_pattern *pat, const ast_expr *where, bool bfs_ok,
                        uint32_t **new_slots, uint32_t *new_count) {
    qctx *c = P->c;
    pctx X;
    memset(&X, 0, sizeof X);
    X.P = P;
    X.pos_base = P->nslots;
    path_slots *ps = qctx_alloc(c, sizeof(path_slots) * (pat->path_count ? pat->path_count : 1));
    if (ps == NULL) return NULL;
    /* 1. slots */
    for (uint32_t p = 0; p < pat->path_count; p++) X.rel_total += pat->paths[p].node_count - 1;
    for (uint32_t p = 0; p < pat->path_count; p++) {
        const ast_path *path = &pat->paths[p];
        ps[p].node = qctx_alloc(c, sizeof(uint32_t) * path->node_count);
        ps[p].rel = qctx_alloc(c, sizeof(uint32_t) * (path->node_count));
        ps[p].node_bound_before = qctx_alloc(c, sizeof(bool) * path->node_count);
        if (!ps[p].node || !ps[p].rel || !ps[p].node_bound_before) return NULL;
        for (uint32_t i = 0; i < path->node_count; i++) {
            if (!declare(P, &X, path->nodes[i].var, VK_NODE, &ps[p].node[i], &ps[p].node_bound_before[i])) return NULL;
            if (i + 1 < path->node_count) {
                bool before;
                const ast_rel_pat *r = &path->rels[i];
                if (!declare(P, &X, r->var, r->varlen ? VK_EDGES : VK_EDGE, &ps[p].rel[i], &before)) return NULL;
                if (before) {
                    semantic(P, "Cannot use the bound relationship '%.*s' in a pattern again", r->var);
                    return NULL;
                }
            }
        }
    }
    /* path variables are declared after the elements */
    uint32_t *path_slot = qctx_alloc(c, sizeof(uint32_t) * (pat->path_count ? pat->path_count : 1));
    if (path_slot == NULL) return NULL;
    for (uint32_t p = 0; p < pat->path_count; p++) {
        path_slot[p] = UINT32_MAX;
        if (pat->paths[p].var.len) {
            bool before;
            if (!declare(P, &X, pat->paths[p].var, VK_PATH, &path_slot[p], &before)) return NULL;
        }
        if (pat->paths[p].shortest || pat->paths[p].all_shortest) {
            qctx_fail(c, QUERY_ERR_SEMANTIC, "shortestPath is not supported");
            return NULL;
        }
    }
    /* 2. conjuncts */
    for (uint32_t p = 0; p < pat->path_count; p++) {
        const ast_path *path = &pat->paths[p];
        for (uint32_t i = 0; i < path->node_count; i++) {
            const ast_node_pat *np = &path->nodes[i];
            uint32_t slot = ps[p].node[i];
            for (uint32_t l = 0; l < np->label_count; l++) {
                cx *hl = cx_has_labels(c, cx_slot(c, slot), 1, &np->labels[l]);
                conj *k = add_conj(&X, hl, slot_bit(&X, slot));
                if (k == NULL) return NULL;
                k->is_label = true;
                k->label = np->labels[l];
                k->seek_slot = slot;
            }
            if (!props_conjuncts(&X, slot, np->props, true)) return NULL;
            if (i + 1 < path->node_count && !path->rels[i].varlen &&
                !props_conjuncts(&X, ps[p].rel[i], path->rels[i].props, false))
                return NULL;
        }
    }
    split_and(&X, where);
    if (c->failed) return NULL;
    /* 3. paths */
    op *cur = apply_ready(&X, input);
    bool *done = q_arena_calloc(c->a, pat->path_count ? pat->path_count : 1, sizeof(bool));
    if (done == NULL || cur == NULL) return NULL;
    for (uint32_t step = 0; step < pat->path_count; step++) {
        int chosen = -1, start = -1;
        start_choice best_choice = {UINT64_MAX, -1, -1, {NULL, 0}, false, OP_SCAN_ALL};
        /* a path touching a bound node first */
        for (uint32_t p = 0; p < pat->path_count && chosen < 0; p++) {
            if (done[p]) continue;
            for (uint32_t i = 0; i < pat->paths[p].node_count; i++) {
                uint32_t s = ps[p].node[i];
                if (ps[p].node_bound_before[i] || slot_is_bound(&X, s)) {
                    chosen = (int)p;
                    start = (int)i;
                    break;
                }
            }
        }
        if (chosen < 0) {
            for (uint32_t p = 0; p < pat->path_count; p++) {
                if (done[p]) continue;
                for (uint32_t i = 0; i < pat->paths[p].node_count; i++) {
                    start_choice ch = start_cost(&X, ps[p].node[i], &pat->paths[p].nodes[i]);
                    if (ch.cost < best_choice.cost) {
                        best_choice = ch;
                        chosen = (int)p;
                        start = (int)i;
                    }
                }
            }
            if (chosen < 0) break;
            cur = emit_scan(&X, cur, ps[chosen].node[start], &pat->paths[chosen].nodes[start], best_choice);
            if (cur == NULL) return NULL;
            bind_slot(&X, ps[chosen].node[start]);
            cur = apply_ready(&X, cur);
        }
        const ast_path *path = &pat->paths[chosen];
        for (uint32_t r = (uint32_t)start; r + 1 < path->node_count; r++) {
            cur = emit_expand(&X, cur, path, &ps[chosen], r, false, bfs_ok);
            if (cur == NULL) return NULL;
        }
        for (uint32_t r = (uint32_t)start; r-- > 0;) {
            cur = emit_expand(&X, cur, path, &ps[chosen], r, true, bfs_ok);
            if (cur == NULL) return NULL;
        }
        if (path_slot[chosen] != UINT32_MAX) {
            cx *pe = cx_new(c, CX_PATH);
            if (pe == NULL) return NULL;
            pe->path_start = ps[chosen].node[0];
            pe->path_seg_count = path->node_count - 1;
            pe->path_segs = qctx_alloc(c, sizeof(cx_path_seg) * (path->node_count));
            if (pe->path_segs == NULL) return NULL;
            for (uint32_t r = 0; r + 1 < path->node_count; r++) {
                pe->path_segs[r].edge_slot = ps[chosen].rel[r];
                pe->path_segs[r].varlen = path->rels[r].varlen;
                pe->path_segs[r].node_slot = ps[chosen].node[r + 1];
            }
            op *pr = op_new(c, OP_PROJECT, cur);
            if (pr == NULL) return NULL;
            pr->u.project.count = 1;
            pr->u.project.exprs = qctx_alloc(c, sizeof(cx *));
            pr->u.project.slots = qctx_alloc(c, sizeof(uint32_t));
            if (!pr->u.project.exprs || !pr->u.project.slots) return NULL;
            pr->u.project.exprs[0] = pe;
            pr->u.project.slots[0] = path_slot[chosen];
            cur = pr;
            bind_slot(&X, path_slot[chosen]);
            cur = apply_ready(&X, cur);
        }
        done[chosen] = true;
    }
    if (c->failed) return NULL;
    /* anything left (conjuncts on variables past the 63rd) */
    X.bound = ~0ull;
    cur = apply_ready(&X, cur);
    if (new_slots) {
        *new_slots = X.new_slots;
        *new_count = X.new_count;
    }
    return cur;
}

/* ------------------------------------------------------------------ */
/* Clauses                                                             */
/* ------------------------------------------------------------------ */

typedef struct proj_out {
    uint32_t count;
    qv_str *names;
    uint32_t *slots;
} proj_out;

typedef struct agg_collect {
    planner *P;
    agg_spec *specs;
    uint32_t count, cap;
    bool failed;
} agg_collect;

static void collect_agg(void *ctx, const ast_expr *e) {
    agg_collect *ac = ctx;
    planner *P = ac->P;
    if (ac->failed) return;
    for (uint32_t i = 0; i < P->agg_count; i++)
        if (P->aggs[i].ast == e) return;
    if (ac->count >= QUIVER_QUERY_AGGREGATES_COUNT_MAX) {
        qctx_fail(P->c, QUERY_ERR_LIMIT, "ERR RETURN or WITH with more than %u aggregates (the limit)",
                  (unsigned)QUIVER_QUERY_AGGREGATES_COUNT_MAX);
        ac->failed = true;
        return;
    }
    if (ac->count == ac->cap) {
        uint32_t ncap = ac->cap ? ac->cap * 2 : 8;
        agg_spec *ns = q_arena_realloc(P->c->a, ac->specs, sizeof(agg_spec) * ac->cap, sizeof(agg_spec) * ncap);
        agg_map *nm = q_arena_realloc(P->c->a, P->aggs, sizeof(agg_map) * ac->cap, sizeof(agg_map) * ncap);
        if (ns == NULL || nm == NULL) {
            ac->failed = true;
            return;
        }
        ac->specs = ns;
        P->aggs = nm;
        ac->cap = ncap;
    }
    agg_spec *s = &ac->specs[ac->count];
    memset(s, 0, sizeof *s);
    s->fn = fn_lookup(e->u.func.name);
    s->distinct = e->u.func.distinct;
    s->star = e->u.func.star;
    bool is_count = e->u.func.name.len == 5 && strncasecmp(e->u.func.name.ptr, "count", 5) == 0;
    if (s->star && !is_count) {
        qctx_fail(P->c, QUERY_ERR_SEMANTIC, "Only count(*) may take *");
        ac->failed = true;
        return;
    }
    if (!s->star) {
        if (e->u.func.arg_count != 1) {
            qctx_fail(P->c, QUERY_ERR_SEMANTIC, "Received %u arguments to aggregate function '%.*s', expected 1",
                      e->u.func.arg_count, (int)e->u.func.name.len, e->u.func.name.ptr);
            ac->failed = true;
            return;
        }
        P->in_agg_arg = true;
        s->arg = compile(P, e->u.func.args[0]);
        P->in_agg_arg = false;
        if (s->arg == NULL) {
            ac->failed = true;
            return;
        }
    }
    s->slot = new_slot(P);
    P->aggs[ac->count].ast = e;
    P->aggs[ac->count].slot = s->slot;
    ac->count++;
    P->agg_count = ac->count;
}

static ast_expr *var_expr(qctx *c, qv_str name) {
    ast_expr *e = qctx_alloc(c, sizeof *e);
    if (e == NULL) return NULL;
    memset(e, 0, sizeof *e);
    e->kind = AST_VAR;
    e->u.name = name;
    return e;
}

/* RETURN / WITH.  On return the scope holds the projection's aliases (WITH)
 * and *out the columns (RETURN). */
static op *plan_projection(planner *P, op *cur, const ast_projection *pr, bool is_return, proj_out *out) {
    qctx *c = P->c;
    /* items, with * expanded to the visible named variables */
    uint32_t n = pr->item_count;
    uint32_t star_n = 0;
    if (pr->star)
        for (uint32_t i = 0; i < P->sc.count; i++)
            if (scope_visible(&P->sc, i)) star_n++;
    uint32_t total = star_n + n;
    if (total == 0) {
        qctx_fail(c, QUERY_ERR_SEMANTIC, "RETURN * is not allowed when there are no variables in scope");
        return NULL;
    }
    const ast_expr **exprs = qctx_alloc(c, sizeof(ast_expr *) * total);
    qv_str *names = qctx_alloc(c, sizeof(qv_str) * total);
    uint32_t *slots = qctx_alloc(c, sizeof(uint32_t) * total);
    cx **cxs = qctx_alloc(c, sizeof(cx *) * total);
    if (!exprs || !names || !slots || !cxs) return NULL;
    uint32_t k = 0;
    if (pr->star)
        for (uint32_t i = 0; i < P->sc.count; i++) {
            if (!scope_visible(&P->sc, i)) continue;
            exprs[k] = var_expr(c, P->sc.v[i].name);
            names[k] = P->sc.v[i].name;
            if (exprs[k] == NULL) return NULL;
            k++;
        }
    for (uint32_t i = 0; i < n; i++, k++) {
        exprs[k] = pr->items[i].expr;
        names[k] = pr->items[i].alias;
        if (!is_return && !pr->items[i].has_alias && exprs[k]->kind != AST_VAR) {
            qctx_fail(c, QUERY_ERR_SEMANTIC, "WITH clause projections must be aliased");
            return NULL;
        }
    }
    bool aggregating = false;
    for (uint32_t i = 0; i < total; i++)
        if (has_agg(exprs[i])) aggregating = true;
    for (uint32_t i = 0; i < total; i++) slots[i] = new_slot(P);
    op *o;
    if (aggregating) {
        agg_collect ac = {P, NULL, 0, 0, false};
        P->aggs = NULL;
        P->agg_count = 0;
        for (uint32_t i = 0; i < total; i++) walk_aggs(exprs[i], collect_agg, &ac);
        if (ac.failed || c->failed) {
            if (!c->failed) qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
            return NULL;
        }
        o = op_new(c, OP_AGGREGATE, cur);
        if (o == NULL) return NULL;
        o->u.agg.keys = qctx_alloc(c, sizeof(cx *) * total);
        if (o->u.agg.keys == NULL) return NULL;
        for (uint32_t i = 0; i < total; i++) {
            if (has_agg(exprs[i])) continue;
            cx *kx = compile(P, exprs[i]);
            if (kx == NULL) return NULL;
            o->u.agg.keys[o->u.agg.key_count++] = kx;
        }
        for (uint32_t i = 0; i < total; i++)
            if ((cxs[i] = compile(P, exprs[i])) == NULL) return NULL;
        o->u.agg.agg_count = ac.count;
        o->u.agg.aggs = ac.specs;
        o->u.agg.out_count = total;
        o->u.agg.outs = cxs;
        o->u.agg.out_slots = slots;
    } else {
        for (uint32_t i = 0; i < total; i++)
            if ((cxs[i] = compile(P, exprs[i])) == NULL) return NULL;
        o = op_new(c, OP_PROJECT, cur);
        if (o == NULL) return NULL;
        o->u.project.count = total;
        o->u.project.exprs = cxs;
        o->u.project.slots = slots;
    }
    cur = o;
    if (pr->distinct) {
        op *d = op_new(c, OP_DISTINCT, cur);
        if (d == NULL) return NULL;
        d->u.distinct.count = total;
        d->u.distinct.slots = slots;
        cur = d;
    }
    /* the new scope: aliases (kinds inherited from plain variables) */
    scope ns = {0, 0, NULL, NULL, 0, 0};
    for (uint32_t i = 0; i < total; i++) {
        var_kind kind = VK_ANY;
        if (exprs[i]->kind == AST_VAR) {
            pvar *v = scope_find(&P->sc, exprs[i]->u.name);
            if (v) kind = (var_kind)v->kind;
        }
        if (!scope_push(P, &ns, names[i], slots[i], kind)) return NULL;
    }
    if (pr->order_count) {
        /* ORDER BY sees the aliases and, for convenience, the old scope */
        scope saved = P->sc;
        scope comb = {0, 0, NULL, NULL, 0, 0};
        for (uint32_t i = 0; i < saved.count; i++)
            if (!scope_push(P, &comb, saved.v[i].name, saved.v[i].slot, (var_kind)saved.v[i].kind)) return NULL;
        for (uint32_t i = 0; i < ns.count; i++)
            if (!scope_push(P, &comb, ns.v[i].name, ns.v[i].slot, (var_kind)ns.v[i].kind)) return NULL;
        P->sc = comb;
        op *s = op_new(c, OP_SORT, cur);
        if (s == NULL) return NULL;
        s->u.sort.count = pr->order_count;
        s->u.sort.keys = qctx_alloc(c, sizeof(cx *) * pr->order_count);
        s->u.sort.desc = qctx_alloc(c, sizeof(bool) * pr->order_count);
        if (!s->u.sort.keys || !s->u.sort.desc) return NULL;
        uint64_t *item_hash = qctx_alloc(c, sizeof(uint64_t) * total);
        if (item_hash == NULL) return NULL;
        for (uint32_t j = 0; j < total; j++) item_hash[j] = ast_hash(exprs[j]);
        for (uint32_t i = 0; i < pr->order_count; i++) {
            const ast_expr *se = pr->order[i].expr;
            uint64_t sh = ast_hash(se);
            s->u.sort.desc[i] = pr->order[i].descending;
            cx *kx = NULL;
            for (uint32_t j = 0; j < total && kx == NULL; j++)
                if (item_hash[j] == sh && ast_equal(se, exprs[j])) kx = cx_slot(c, slots[j]);
            if (kx == NULL) {
                if ((aggregating || pr->distinct) && has_agg(se)) {
                    qctx_fail(c, QUERY_ERR_SEMANTIC, "Aggregation in ORDER BY must also be projected");
                    return NULL;
                }
                kx = compile(P, se);
            }
            if (kx == NULL) return NULL;
            s->u.sort.keys[i] = kx;
        }
        P->sc = saved;
        cur = s;
    }
    if (pr->skip) {
        op *s = op_new(c, OP_SKIP, cur);
        if (s == NULL || (s->u.skiplimit.expr = compile(P, pr->skip)) == NULL) return NULL;
        s->describe = NULL;
        cur = s;
    }
    if (pr->limit) {
        op *s = op_new(c, OP_LIMIT, cur);
        if (s == NULL || (s->u.skiplimit.expr = compile(P, pr->limit)) == NULL) return NULL;
        cur = s;
    }
    P->sc = ns;
    P->aggs = NULL;
    P->agg_count = 0;
    if (pr->where) {
        if (has_agg(pr->where)) {
            qctx_fail(c, QUERY_ERR_SEMANTIC, "Invalid use of aggregating function in WHERE");
            return NULL;
        }
        op *f = op_new(c, OP_FILTER, cur);
        if (f == NULL || (f->u.filter.pred = compile(P, pr->where)) == NULL) return NULL;
        cur = f;
    }
    if (out) {
        out->count = total;
        out->names = names;
        out->slots = slots;
    }
    (void)is_return;
    return cur;
}

/* Static property map of a CREATE / MERGE element. */
static bool create_props(planner *P, const ast_expr *props, uint32_t *count, qv_str **keys, cx ***vals, cx **map) {
    *count = 0;
    *keys = NULL;
    *vals = NULL;
    *map = NULL;
    if (props == NULL) return true;
    if (props->kind == AST_MAP) {
        *count = props->u.map.count;
        *keys = props->u.map.keys;
        *vals = compile_list(P, props->u.map.values, props->u.map.count);
        return *vals != NULL || props->u.map.count == 0;
    }
    *map = compile(P, props);
    return *map != NULL;
}

static bool cs_reserve(planner *P, uint32_t slot) {
    if (slot < P->cs_cap) return true;
    uint32_t ncap = P->cs_cap ? P->cs_cap : 256;
    while (ncap <= slot) ncap *= 2;
    qctx *c = P->c;
    uint32_t *a = q_arena_realloc(c->a, P->cs_node_at, sizeof(uint32_t) * P->cs_cap, sizeof(uint32_t) * ncap);
    uint32_t *b = q_arena_realloc(c->a, P->cs_rel_at, sizeof(uint32_t) * P->cs_cap, sizeof(uint32_t) * ncap);
    uint32_t *g = q_arena_realloc(c->a, P->cs_gen, sizeof(uint32_t) * P->cs_cap, sizeof(uint32_t) * ncap);
    if (a == NULL || b == NULL || g == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
    memset(g + P->cs_cap, 0, sizeof(uint32_t) * (ncap - P->cs_cap));
    P->cs_node_at = a;
    P->cs_rel_at = b;
    P->cs_gen = g;
    P->cs_cap = ncap;
    return true;
}

/* Index + 1 of slot's node / relationship in the spec being built, or 0. */
static uint32_t cs_node(const planner *P, uint32_t slot) {
    return slot < P->cs_cap && P->cs_gen[slot] == P->cs_cur_gen ? P->cs_node_at[slot] : 0;
}
static uint32_t cs_rel(const planner *P, uint32_t slot) {
    return slot < P->cs_cap && P->cs_gen[slot] == P->cs_cur_gen ? P->cs_rel_at[slot] : 0;
}

static bool cs_set(planner *P, uint32_t slot, uint32_t node_at, uint32_t rel_at) {
    if (!cs_reserve(P, slot)) return false;
    if (P->cs_gen[slot] != P->cs_cur_gen) {
        P->cs_gen[slot] = P->cs_cur_gen;
        P->cs_node_at[slot] = 0;
        P->cs_rel_at[slot] = 0;
    }
    if (node_at) P->cs_node_at[slot] = node_at;
    if (rel_at) P->cs_rel_at[slot] = rel_at;
    return true;
}

/* Build a create_spec for the paths; nodes bound before are reused.
 * merge: every relationship is created (MERGE semantics). */
static bool build_create(planner *P, const ast_path *paths, uint32_t path_count, create_spec *cs, bool merge,
                         const uint32_t *merge_node_slots, const uint32_t *merge_rel_slots) {
    qctx *c = P->c;
    uint32_t nn = 0, nr = 0;
    for (uint32_t p = 0; p < path_count; p++) {
        nn += paths[p].node_count;
        nr += paths[p].node_count - 1;
    }
    memset(cs, 0, sizeof *cs);
    cs->nodes = qctx_alloc(c, sizeof(create_node) * (nn ? nn : 1));
    cs->rels = qctx_alloc(c, sizeof(create_rel) * (nr ? nr : 1));
    cs->path_exprs = qctx_alloc(c, sizeof(cx *) * (path_count ? path_count : 1));
    cs->path_slots = qctx_alloc(c, sizeof(uint32_t) * (path_count ? path_count : 1));
    if (!cs->nodes || !cs->rels || !cs->path_exprs || !cs->path_slots) return false;
    P->cs_cur_gen++;
    QUIVER_ASSERT(P->cs_cur_gen != 0);
    uint32_t mi = 0, mr = 0;
    for (uint32_t p = 0; p < path_count; p++) {
        const ast_path *path = &paths[p];
        uint32_t *nslots = qctx_alloc(c, sizeof(uint32_t) * path->node_count);
        uint32_t *rslots = qctx_alloc(c, sizeof(uint32_t) * path->node_count);
        if (!nslots || !rslots) return false;
        for (uint32_t i = 0; i < path->node_count; i++) {
            const ast_node_pat *np = &path->nodes[i];
            pvar *v = np->var.len ? scope_find(&P->sc, np->var) : NULL;
            bool reuse = false;
            if (merge) {
                nslots[i] = merge_node_slots[mi];
                reuse = merge_node_slots[mi + path->node_count] != 0; /* bound before MERGE */
                mi++;
            } else if (v) {
                if (v->kind != VK_NODE && v->kind != VK_ANY) {
                    semantic(P, "The alias '%.*s' was specified for both a node and a relationship.", np->var);
                    return false;
                }
                nslots[i] = v->slot;
                reuse = true;
                /* bound before, or declared earlier in this very CREATE: a
                 * reference only, never with labels or properties again */
                if (np->label_count || np->props) {
                    semantic(P, "The bound variable '%.*s' can't be redeclared in a CREATE clause", np->var);
                    return false;
                }
            } else {
                nslots[i] = new_slot(P);
                if (np->var.len && !scope_push(P, &P->sc, np->var, nslots[i], VK_NODE)) return false;
            }
            if (reuse) {
                if (cs_node(P, nslots[i]) == 0) {
                    create_node *cn = &cs->nodes[cs->node_count++];
                    memset(cn, 0, sizeof *cn);
                    cn->slot = nslots[i];
                    cn->create = false;
                    if (!cs_set(P, nslots[i], cs->node_count, 0)) return false;
                }
                continue;
            }
            /* in MERGE a node may appear twice in the pattern: create once */
            if (cs_node(P, nslots[i]) != 0) continue;
            create_node *cn = &cs->nodes[cs->node_count++];
            if (!cs_set(P, nslots[i], cs->node_count, 0)) return false;
            memset(cn, 0, sizeof *cn);
            cn->slot = nslots[i];
            cn->create = true;
            cn->label_count = np->label_count;
            cn->labels = np->labels;
            if (!create_props(P, np->props, &cn->prop_count, &cn->prop_keys, &cn->prop_values, &cn->prop_map)) return false;
        }
        for (uint32_t i = 0; i + 1 < path->node_count; i++) {
            const ast_rel_pat *r = &path->rels[i];
            if (r->type_count != 1) {
                qctx_fail(c, QUERY_ERR_SEMANTIC, "Exactly one relationship type must be specified for %s",
                          merge ? "MERGE" : "CREATE");
                return false;
            }
            if (r->varlen) {
                qctx_fail(c, QUERY_ERR_SEMANTIC, "Variable length relationships cannot be used in %s",
                          merge ? "MERGE" : "CREATE");
                return false;
            }
            if (r->dir == AST_DIR_BOTH && !merge) {
                qctx_fail(c, QUERY_ERR_SEMANTIC, "Only directed relationships are supported in CREATE");
                return false;
            }
            create_rel *cr = &cs->rels[cs->rel_count++];
            memset(cr, 0, sizeof *cr);
            if (merge) {
                cr->slot = merge_rel_slots[mr++];
            } else {
                pvar *v = r->var.len ? scope_find(&P->sc, r->var) : NULL;
                if (v) {
                    semantic(P, "The bound variable '%.*s' can't be redeclared in a CREATE clause", r->var);
                    return false;
                }
                cr->slot = new_slot(P);
                if (r->var.len && !scope_push(P, &P->sc, r->var, cr->slot, VK_EDGE)) return false;
            }
            rslots[i] = cr->slot;
            if (!cs_set(P, cr->slot, 0, cs->rel_count)) return false;
            cr->type = r->types[0];
            bool left = r->dir == AST_DIR_LEFT;
            cr->src_slot = left ? nslots[i + 1] : nslots[i];
            cr->dst_slot = left ? nslots[i] : nslots[i + 1];
            if (!create_props(P, r->props, &cr->prop_count, &cr->prop_keys, &cr->prop_values, &cr->prop_map)) return false;
        }
        if (path->var.len) {
            cx *pe = cx_new(c, CX_PATH);
            if (pe == NULL) return false;
            pe->path_start = nslots[0];
            pe->path_seg_count = path->node_count - 1;
            pe->path_segs = qctx_alloc(c, sizeof(cx_path_seg) * path->node_count);
            if (pe->path_segs == NULL) return false;
            for (uint32_t r = 0; r + 1 < path->node_count; r++) {
                pe->path_segs[r].edge_slot = rslots[r];
                pe->path_segs[r].varlen = false;
                pe->path_segs[r].node_slot = nslots[r + 1];
            }
            uint32_t ps;
            pvar *v = scope_find(&P->sc, path->var);
            if (merge && v) ps = v->slot;
            else {
                ps = new_slot(P);
                if (!scope_push(P, &P->sc, path->var, ps, VK_PATH)) return false;
            }
            cs->path_exprs[cs->path_count] = pe;
            cs->path_slots[cs->path_count++] = ps;
        }
        if (merge) mi += path->node_count; /* skip the bound-before flags */
    }
    return true;
}

static bool build_set(planner *P, const ast_set_item *items, uint32_t count, set_spec *s) {
    qctx *c = P->c;
    memset(s, 0, sizeof *s);
    s->count = count;
    if (count == 0) return true;
    s->kinds = qctx_alloc(c, sizeof(ast_set_kind) * count);
    s->targets = qctx_alloc(c, sizeof(cx *) * count);
    s->keys = qctx_alloc(c, sizeof(qv_str) * count);
    s->values = qctx_alloc(c, sizeof(cx *) * count);
    s->label_counts = qctx_alloc(c, sizeof(uint32_t) * count);
    s->labels = qctx_alloc(c, sizeof(qv_str *) * count);
    if (!s->kinds || !s->targets || !s->keys || !s->values || !s->label_counts || !s->labels) return false;
    for (uint32_t i = 0; i < count; i++) {
        const ast_set_item *it = &items[i];
        s->kinds[i] = it->kind;
        s->values[i] = NULL;
        s->label_counts[i] = it->label_count;
        s->labels[i] = it->labels;
        const ast_expr *t = it->target;
        if (it->kind == AST_SET_PROP) {
            if (t->kind != AST_PROP) return qctx_fail(c, QUERY_ERR_SEMANTIC, "SET requires a property access");
            s->keys[i] = t->u.prop.key;
            t = t->u.prop.operand;
        }
        if ((s->targets[i] = compile(P, t)) == NULL) return false;
        if (it->kind != AST_SET_LABELS && (s->values[i] = compile(P, it->value)) == NULL) return false;
    }
    return true;
}

static bool build_remove(planner *P, const ast_remove_item *items, uint32_t count, set_spec *s) {
    qctx *c = P->c;
    memset(s, 0, sizeof *s);
    s->count = count;
    if (count == 0) return true;
    s->kinds = qctx_alloc(c, sizeof(ast_set_kind) * count);
    s->targets = qctx_alloc(c, sizeof(cx *) * count);
    s->keys = qctx_alloc(c, sizeof(qv_str) * count);
    s->values = qctx_alloc(c, sizeof(cx *) * count);
    s->label_counts = qctx_alloc(c, sizeof(uint32_t) * count);
    s->labels = qctx_alloc(c, sizeof(qv_str *) * count);
    if (!s->kinds || !s->targets || !s->keys || !s->values || !s->label_counts || !s->labels) return false;
    for (uint32_t i = 0; i < count; i++) {
        const ast_remove_item *it = &items[i];
        const ast_expr *t = it->target;
        s->values[i] = NULL;
        s->label_counts[i] = it->label_count;
        s->labels[i] = it->labels;
        if (it->kind == AST_REMOVE_PROP) {
            s->kinds[i] = AST_SET_PROP;
            if (t->kind != AST_PROP) return qctx_fail(c, QUERY_ERR_SEMANTIC, "REMOVE requires a property access");
            s->keys[i] = t->u.prop.key;
            t = t->u.prop.operand;
        } else {
            s->kinds[i] = AST_SET_LABELS;
        }
        if ((s->targets[i] = compile(P, t)) == NULL) return false;
    }
    return true;
}

/* Is every aggregate call in e insensitive to duplicate rows (DISTINCT,
 * min, max)? */
static void dup_sensitive_cb(void *ctx, const ast_expr *e) {
    qv_str nm = e->u.func.name;
    bool minmax = nm.len == 3 && (strncasecmp(nm.ptr, "min", 3) == 0 || strncasecmp(nm.ptr, "max", 3) == 0);
    if (!e->u.func.distinct && !minmax) *(bool *)ctx = true;
}

/* Can the rows of a MATCH be deduplicated downstream (so a var-length
 * traversal may visit each end node once)?  Only reads that do not count
 * rows (MATCH, UNWIND) may follow until a projection that is DISTINCT or
 * aggregates with duplicate-insensitive aggregates only.  This answers
 * for clause j, the first clause after the MATCH that is neither. */
static bool rows_feed_distinct_at(const ast_single_query *q, uint32_t j) {
    const ast_clause *cl = &q->clauses[j];
    if (cl->kind != AST_WITH && cl->kind != AST_RETURN) return false;
    const ast_projection *pr = &cl->u.projection;
    bool sensitive = false, any_agg = false;
    for (uint32_t k = 0; k < pr->item_count; k++) {
        if (has_agg(pr->items[k].expr)) any_agg = true;
        walk_aggs(pr->items[k].expr, dup_sensitive_cb, &sensitive);
    }
    for (uint32_t k = 0; k < pr->order_count; k++) walk_aggs(pr->order[k].expr, dup_sensitive_cb, &sensitive);
    if (sensitive) return false;
    return pr->distinct || any_agg;
}

typedef struct name_hit {
    const create_spec *cs;
    planner *P;
    bool hit;
} name_hit;

/* (Both below use the slot maps of the spec built last: cs is it.) */
static void created_name_cb(void *ctx, qv_str name) {
    name_hit *h = ctx;
    pvar *v = scope_find(&h->P->sc, name);
    if (v == NULL) return;
    uint32_t ni = cs_node(h->P, v->slot);
    if (ni != 0 && h->cs->nodes[ni - 1].create) h->hit = true;
    if (cs_rel(h->P, v->slot) != 0) h->hit = true;
}

/* The node of cs created for variable e (an AST_VAR), or NULL. */
static create_node *created_node(planner *P, create_spec *cs, const ast_expr *e) {
    if (e == NULL || e->kind != AST_VAR) return NULL;
    pvar *v = scope_find(&P->sc, e->u.name);
    if (v == NULL) return NULL;
    uint32_t ni = cs_node(P, v->slot);
    if (ni == 0 || !cs->nodes[ni - 1].create) return NULL;
    return &cs->nodes[ni - 1];
}

/* `CREATE (n:L) SET n = r` (the importer's shape): fold the SET into the
 * creation so each node is written once instead of once per property.
 * Only when every item targets a node created by this CREATE and no value
 * reads a variable the CREATE binds (the values then mean the same before
 * and after creation).  Returns true when folded. */
static bool fold_set_into_create(planner *P, create_spec *cs, const ast_clause *set) {
    qctx *c = P->c;
    for (uint32_t i = 0; i < set->u.set.count; i++) {
        const ast_set_item *it = &set->u.set.items[i];
        const ast_expr *target = it->kind == AST_SET_PROP ? (it->target->kind == AST_PROP ? it->target->u.prop.operand : NULL)
                                                          : it->target;
        if (created_node(P, cs, target) == NULL) return false;
        if (it->value) {
            name_hit h = {cs, P, false};
            walk_vars(it->value, created_name_cb, &h);
            if (h.hit) return false;
        }
    }
    for (uint32_t i = 0; i < set->u.set.count; i++) {
        const ast_set_item *it = &set->u.set.items[i];
        const ast_expr *target = it->kind == AST_SET_PROP ? it->target->u.prop.operand : it->target;
        create_node *cn = created_node(P, cs, target);
        if (it->kind == AST_SET_LABELS) {
            qv_str *nl = qctx_alloc(c, sizeof(qv_str) * (cn->label_count + it->label_count));
            if (nl == NULL) return false;
            if (cn->label_count) memcpy(nl, cn->labels, sizeof(qv_str) * cn->label_count);
            memcpy(nl + cn->label_count, it->labels, sizeof(qv_str) * it->label_count);
            cn->labels = nl;
            cn->label_count += it->label_count;
            continue;
        }
        uint32_t n = cn->extra_count + 1;
        uint8_t *k = q_arena_realloc(c->a, cn->extra_kinds, cn->extra_count, n);
        qv_str *ks = q_arena_realloc(c->a, cn->extra_keys, sizeof(qv_str) * cn->extra_count, sizeof(qv_str) * n);
        cx **vs = q_arena_realloc(c->a, cn->extra_values, sizeof(cx *) * cn->extra_count, sizeof(cx *) * n);
        if (k == NULL || ks == NULL || vs == NULL) return false;
        cn->extra_kinds = k;
        cn->extra_keys = ks;
        cn->extra_values = vs;
        k[cn->extra_count] = (uint8_t)it->kind;
        ks[cn->extra_count] = it->kind == AST_SET_PROP ? it->target->u.prop.key : (qv_str){NULL, 0};
        if ((vs[cn->extra_count] = compile(P, it->value)) == NULL) return false;
        cn->extra_count = n;
    }
    return true;
}

bool plan_single(qctx *c, const ast_single_query *q, plan *out) {
    QUIVER_ASSERT(c != NULL && q != NULL && out != NULL);
    planner P;
    memset(&P, 0, sizeof P);
    P.c = c;
    memset(out, 0, sizeof *out);
    op *cur = op_new(c, OP_ARGUMENT, NULL);
    if (cur == NULL) return false;
    /* rows_feed_distinct for every clause in one backward pass (it looks
     * at the clauses after i, so asking it per MATCH would be quadratic) */
    bool *feed = qctx_alloc(c, q->clause_count ? q->clause_count : 1);
    if (feed == NULL) return false;
    bool feeds = false; /* for the first clause after i that is not MATCH or UNWIND */
    for (uint32_t i = q->clause_count; i-- > 0;) {
        feed[i] = feeds;
        ast_clause_kind k = q->clauses[i].kind;
        if (k != AST_MATCH && k != AST_UNWIND) feeds = rows_feed_distinct_at(q, i);
    }
    for (uint32_t i = 0; i < q->clause_count && !c->failed; i++) {
        const ast_clause *cl = &q->clauses[i];
        switch (cl->kind) {
        case AST_MATCH: {
            bool bfs_ok = feed[i];
            if (cl->u.match.optional) {
                op *arg = op_new(c, OP_ARGUMENT, NULL);
                if (arg == NULL) return false;
                uint32_t *ns = NULL, nn = 0;
                op *inner = plan_pattern(&P, arg, &cl->u.match.pattern, cl->u.match.where, bfs_ok, &ns, &nn);
                if (inner == NULL) return false;
                op *o = op_new(c, OP_OPTIONAL, cur);
                if (o == NULL) return false;
                o->inner = inner;
                o->u.optional.null_count = nn;
                o->u.optional.null_slots = ns;
                cur = o;
            } else {
                cur = plan_pattern(&P, cur, &cl->u.match.pattern, cl->u.match.where, bfs_ok, NULL, NULL);
            }
            break;
        }
        case AST_CREATE: {
            op *o = op_new(c, OP_CREATE, cur);
            if (o == NULL) return false;
            if (!build_create(&P, cl->u.create.pattern.paths, cl->u.create.pattern.path_count, &o->u.write.create, false,
                              NULL, NULL))
                return false;
            cur = o;
            if (i + 1 < q->clause_count && q->clauses[i + 1].kind == AST_SET &&
                fold_set_into_create(&P, &o->u.write.create, &q->clauses[i + 1])) {
                if (c->failed) return false;
                i++; /* the SET is done by the CREATE */
            }
            break;
        }
        case AST_MERGE: {
            const ast_path *path = &cl->u.merge.path;
            /* bound-before flags for the path's nodes */
            uint32_t nn = path->node_count;
            uint32_t *mslots = qctx_alloc(c, sizeof(uint32_t) * 2 * nn);
            uint32_t *rslots = qctx_alloc(c, sizeof(uint32_t) * (nn ? nn : 1));
            if (!mslots || !rslots) return false;
            for (uint32_t k = 0; k < nn; k++) {
                pvar *v = path->nodes[k].var.len ? scope_find(&P.sc, path->nodes[k].var) : NULL;
                mslots[nn + k] = v != NULL;
                if (v && (path->nodes[k].label_count || path->nodes[k].props) && nn == 1) {
                    semantic(&P, "The bound variable '%.*s' can't be redeclared in a MERGE clause", path->nodes[k].var);
                    return false;
                }
            }
            for (uint32_t k = 0; k + 1 < nn; k++)
                if (path->rels[k].var.len && scope_find(&P.sc, path->rels[k].var)) {
                    semantic(&P, "The bound variable '%.*s' can't be redeclared in a MERGE clause", path->rels[k].var);
                    return false;
                }
            ast_pattern pat = {1, (ast_path *)path};
            op *arg = op_new(c, OP_ARGUMENT, NULL);
            if (arg == NULL) return false;
            uint32_t saved = P.sc.count;
            uint32_t *ns = NULL, nnew = 0;
            op *inner = plan_pattern(&P, arg, &pat, NULL, false, &ns, &nnew);
            if (inner == NULL) return false;
            (void)saved;
            /* slots of the path's elements as the inner plan declared them:
             * named ones through the scope, anonymous ones get fresh slots */
            for (uint32_t k = 0; k < nn; k++) {
                pvar *v = path->nodes[k].var.len ? scope_find(&P.sc, path->nodes[k].var) : NULL;
                mslots[k] = v ? v->slot : new_slot(&P);
            }
            for (uint32_t k = 0; k + 1 < nn; k++) {
                pvar *v = path->rels[k].var.len ? scope_find(&P.sc, path->rels[k].var) : NULL;
                rslots[k] = v ? v->slot : new_slot(&P);
            }
            op *o = op_new(c, OP_MERGE, cur);
            if (o == NULL) return false;
            o->inner = inner;
            o->describe = NULL;
            if (!build_create(&P, path, 1, &o->u.write.create, true, mslots, rslots)) return false;
            if (!build_set(&P, cl->u.merge.on_create, cl->u.merge.on_create_count, &o->u.write.on_create)) return false;
            if (!build_set(&P, cl->u.merge.on_match, cl->u.merge.on_match_count, &o->u.write.on_match)) return false;
            o->u.write.merge_new_slots = ns;
            o->u.write.merge_new_count = nnew;
            cur = o;
            break;
        }
        case AST_SET: {
            op *o = op_new(c, OP_SET, cur);
            if (o == NULL || !build_set(&P, cl->u.set.items, cl->u.set.count, &o->u.write.set)) return false;
            cur = o;
            break;
        }
        case AST_REMOVE: {
            op *o = op_new(c, OP_REMOVE, cur);
            if (o == NULL || !build_remove(&P, cl->u.remove.items, cl->u.remove.count, &o->u.write.set)) return false;
            cur = o;
            break;
        }
        case AST_DELETE: {
            op *o = op_new(c, OP_DELETE, cur);
            if (o == NULL) return false;
            o->u.write.detach = cl->u.delete_.detach;
            o->u.write.expr_count = cl->u.delete_.count;
            o->u.write.exprs = compile_list(&P, cl->u.delete_.exprs, cl->u.delete_.count);
            if (o->u.write.exprs == NULL) return false;
            cur = o;
            break;
        }
        case AST_WITH:
        case AST_RETURN: {
            proj_out po;
            cur = plan_projection(&P, cur, &cl->u.projection, cl->kind == AST_RETURN, &po);
            if (cur && cl->kind == AST_RETURN) {
                out->column_count = po.count;
                out->columns = po.names;
                out->column_slots = po.slots;
            }
            break;
        }
        case AST_UNWIND: {
            op *o = op_new(c, OP_UNWIND, cur);
            if (o == NULL) return false;
            o->u.project.count = 1;
            o->u.project.exprs = qctx_alloc(c, sizeof(cx *));
            o->u.project.slots = qctx_alloc(c, sizeof(uint32_t));
            if (!o->u.project.exprs || !o->u.project.slots) return false;
            if ((o->u.project.exprs[0] = compile(&P, cl->u.unwind.list)) == NULL) return false;
            o->u.project.slots[0] = new_slot(&P);
            if (!scope_push(&P, &P.sc, cl->u.unwind.var, o->u.project.slots[0], VK_ANY)) return false;
            cur = o;
            break;
        }
        case AST_CALL: {
            const proc_def *pd = proc_lookup(cl->u.call.name);
            if (pd == NULL) {
                semantic(&P, "Procedure `%.*s` is not registered", cl->u.call.name);
                return false;
            }
            if (cl->u.call.arg_count != pd->arg_count) {
                qctx_fail(c, QUERY_ERR_SEMANTIC, "Procedure `%s` requires %u arguments, got %u", pd->name, pd->arg_count,
                          cl->u.call.arg_count);
                return false;
            }
            op *o = op_new(c, OP_CALL, cur);
            if (o == NULL) return false;
            o->describe = q_arena_strndup(c->a, pd->name, strlen(pd->name));
            o->u.call.proc = pd;
            o->u.call.arg_count = cl->u.call.arg_count;
            o->u.call.args = compile_list(&P, cl->u.call.args, cl->u.call.arg_count);
            if (o->u.call.args == NULL) return false;
            uint32_t ny = cl->u.call.yield_count ? cl->u.call.yield_count : pd->column_count;
            o->u.call.out_count = ny;
            o->u.call.out_cols = qctx_alloc(c, sizeof(uint32_t) * ny);
            o->u.call.out_slots = qctx_alloc(c, sizeof(uint32_t) * ny);
            qv_str *names = qctx_alloc(c, sizeof(qv_str) * ny);
            if (!o->u.call.out_cols || !o->u.call.out_slots || !names) return false;
            for (uint32_t k = 0; k < ny; k++) {
                uint32_t col = k;
                qv_str name;
                if (cl->u.call.yield_count) {
                    qv_str y = cl->u.call.yield_names[k];
                    col = UINT32_MAX;
                    for (uint32_t m = 0; m < pd->column_count; m++)
                        if (strlen(pd->columns[m]) == y.len && memcmp(pd->columns[m], y.ptr, y.len) == 0) col = m;
                    if (col == UINT32_MAX) {
                        semantic(&P, "Procedure does not yield output `%.*s`", y);
                        return false;
                    }
                    name = cl->u.call.yield_aliases && cl->u.call.yield_aliases[k].len ? cl->u.call.yield_aliases[k] : y;
                } else {
                    name.ptr = pd->columns[k];
                    name.len = (uint32_t)strlen(pd->columns[k]);
                }
                o->u.call.out_cols[k] = col;
                o->u.call.out_slots[k] = new_slot(&P);
                names[k] = name;
                if (!scope_push(&P, &P.sc, name, o->u.call.out_slots[k], VK_ANY)) return false;
            }
            if (cl->u.call.where && (o->u.call.where = compile(&P, cl->u.call.where)) == NULL) return false;
            if (i + 1 == q->clause_count) {
                out->column_count = ny;
                out->columns = names;
                out->column_slots = o->u.call.out_slots;
            }
            cur = o;
            break;
        }
        case AST_CREATE_INDEX:
        case AST_DROP_INDEX: {
            op *o = op_new(c, OP_INDEX_DDL, cur);
            if (o == NULL) return false;
            o->u.ddl.drop = cl->kind == AST_DROP_INDEX;
            o->u.ddl.label = cl->u.index.label;
            o->u.ddl.prop_count = cl->u.index.prop_count;
            o->u.ddl.props = cl->u.index.props;
            char buf[300];
            snprintf(buf, sizeof buf, ":%.*s(%.*s)", (int)(cl->u.index.label.len > 100 ? 100 : cl->u.index.label.len),
                     cl->u.index.label.ptr, (int)(cl->u.index.props[0].len > 100 ? 100 : cl->u.index.props[0].len),
                     cl->u.index.props[0].ptr);
            o->describe = q_arena_strndup(c->a, buf, strlen(buf));
            cur = o;
            break;
        }
        }
        if (cur == NULL) return false;
    }
    if (c->failed) return false;
    out->root = cur;
    out->slot_count = P.nslots;
    return true;
}

/* ------------------------------------------------------------------ */
/* EXPLAIN                                                             */
/* ------------------------------------------------------------------ */

static bool add_line(qctx *c, qv_str **lines, uint32_t *count, uint32_t *cap, uint32_t depth, const char *name,
                     const char *desc) {
    if (*count == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 16;
        qv_str *nl = q_arena_realloc(c->a, *lines, sizeof(qv_str) * *cap, sizeof(qv_str) * ncap);
        if (nl == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
        *lines = nl;
        *cap = ncap;
    }
    size_t need = depth * 4 + strlen(name) + (desc ? strlen(desc) + 3 : 0) + 1;
    char *s = qctx_alloc(c, need);
    if (s == NULL) return false;
    memset(s, ' ', depth * 4);
    int n = snprintf(s + depth * 4, need - depth * 4, "%s%s%s", name, desc ? " | " : "", desc ? desc : "");
    (*lines)[*count].ptr = s;
    (*lines)[*count].len = (uint32_t)(depth * 4 + (size_t)n);
    (*count)++;
    return true;
}

static bool explain_op(qctx *c, const op *o, uint32_t depth, bool top, qv_str **lines, uint32_t *count, uint32_t *cap) {
    for (; o != NULL; o = o->child, depth++) {
        if (o->kind == OP_ARGUMENT && top) break;
        if (!add_line(c, lines, count, cap, depth, op_name(o), o->describe)) return false;
        if (o->inner) {
            /* the outer input first, then the inner pipeline, both one level deeper */
            if (o->child && !(o->child->kind == OP_ARGUMENT && top) &&
                !explain_op(c, o->child, depth + 1, top, lines, count, cap))
                return false;
            return explain_op(c, o->inner, depth + 1, false, lines, count, cap);
        }
    }
    return true;
}

bool plan_explain(qctx *c, const plan *p, qv_str **lines, uint32_t *count, uint32_t *cap) {
    if (p->column_count > 0 && !add_line(c, lines, count, cap, 0, "Results", NULL)) return false;
    return explain_op(c, p->root, p->column_count > 0 ? 1 : 0, true, lines, count, cap);
}

bool plan_eval_const(qctx *c, const ast_expr *e, qv_value *out) {
    planner P;
    memset(&P, 0, sizeof P);
    P.c = c;
    cx *x = compile(&P, e);
    if (x == NULL) return false;
    qv_value *saved = c->row;
    c->row = q_arena_calloc(c->a, P.nslots ? P.nslots : 1, sizeof(qv_value));
    if (c->row == NULL) {
        c->row = saved;
        return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
    }
    *out = cx_eval(c, x);
    c->row = saved;
    return !c->failed;
}
