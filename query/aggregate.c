/*
 * aggregate.c -- grouping and the aggregate functions count, sum, avg,
 * min, max and collect, each optionally DISTINCT (openCypher 9,
 * "Aggregating functions"; FalkorDB's behaviour for empty input: count 0,
 * sum 0, avg/min/max null, collect []).
 *
 * Grouping keys are the projection items without aggregates (implicit
 * grouping).  Groups are kept in a hash table of key tuples that remembers
 * first-seen order, so output order is deterministic (never hash order) --
 * a requirement for replicated writes (DESIGN.md section 3).
 *
 * Each group keeps a copy of its first input row (the "representative
 * row").  At emit time that row is restored, the aggregate results are put
 * in their slots and the projection items are evaluated: so an item such as
 * `n.name + count(*)` evaluates its non-aggregate part from the group's row
 * and its aggregate part from the result slot, without a second compiler
 * pass.
 */
#include <math.h>
#include <string.h>

#include "../common/qassert.h"
#include "engine.h"

typedef struct agg_state {
    int64_t count;
    bool sum_is_double;
    int64_t isum;
    double dsum;
    qv_value best;          /* min / max */
    qv_value *items;        /* collect */
    uint32_t item_count, item_cap;
    tupset *seen;           /* DISTINCT */
} agg_state;

typedef struct group {
    qv_value *rep;
    agg_state *st;
} group;

typedef struct groups {
    tupset keys;
    group *arr;
    uint64_t count, cap;
} groups;

static bool new_group(qctx *c, op *o, groups *g) {
    if (g->count == g->cap) {
        uint64_t ncap = g->cap ? g->cap * 2 : 16;
        if (!qctx_reserve(c, sizeof(group) * ncap)) return false;
        group *na = q_arena_realloc(c->a, g->arr, sizeof(group) * g->cap, sizeof(group) * ncap);
        if (na == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
        g->arr = na;
        g->cap = ncap;
    }
    group *gr = &g->arr[g->count++];
    gr->rep = qctx_alloc(c, sizeof(qv_value) * (c->slot_count ? c->slot_count : 1));
    gr->st = q_arena_calloc(c->a, o->u.agg.agg_count ? o->u.agg.agg_count : 1, sizeof(agg_state));
    if (gr->rep == NULL || gr->st == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
    memcpy(gr->rep, c->row, sizeof(qv_value) * c->slot_count);
    for (uint32_t i = 0; i < o->u.agg.agg_count; i++) gr->st[i].best = qv_null();
    return true;
}

static bool agg_update(qctx *c, const agg_spec *a, agg_state *s) {
    const char *fn = a->fn->name;
    if (a->star) {
        s->count++;
        return true;
    }
    qv_value v = cx_eval(c, a->arg);
    if (c->failed) return false;
    if (v.type == QV_NULL) return true;
    if (a->distinct) {
        if (s->seen == NULL) {
            s->seen = qctx_alloc(c, sizeof(tupset));
            if (s->seen == NULL) return false;
            tupset_init(s->seen, 1);
        }
        bool inserted;
        if (tupset_add(c, s->seen, &v, &inserted) < 0) return false;
        if (!inserted) return true;
    }
    s->count++;
    switch (fn[0]) {
    case 'c':
        if (fn[2] == 'u') return true; /* count */
        /* collect */
        if (s->item_count == s->item_cap) {
            uint32_t ncap = s->item_cap ? s->item_cap * 2 : 8;
            if (ncap > QUIVER_LIST_COUNT_MAX) ncap = QUIVER_LIST_COUNT_MAX;
            if (s->item_count >= ncap)
                return qctx_fail(c, QUERY_ERR_LIMIT, "List exceeds the maximum of %u elements", QUIVER_LIST_COUNT_MAX);
            if (!qctx_reserve(c, sizeof(qv_value) * ncap)) return false;
            qv_value *ni = q_arena_realloc(c->a, s->items, sizeof(qv_value) * s->item_cap, sizeof(qv_value) * ncap);
            if (ni == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
            s->items = ni;
            s->item_cap = ncap;
        }
        if (!qctx_tick(c)) return false;
        s->items[s->item_count++] = v;
        return true;
    case 's':
    case 'a':
        if (v.type == QV_INT && !s->sum_is_double) {
            int64_t r;
            if (!__builtin_add_overflow(s->isum, v.u.i, &r)) {
                s->isum = r;
                return true;
            }
            s->sum_is_double = true;
            s->dsum = (double)s->isum;
        }
        if (v.type != QV_INT && v.type != QV_DOUBLE) {
            type_mismatch(c, "Integer, Float, or Null", v);
            return false;
        }
        if (!s->sum_is_double) {
            s->sum_is_double = true;
            s->dsum = (double)s->isum;
        }
        s->dsum += v.type == QV_INT ? (double)v.u.i : v.u.d;
        return true;
    case 'm': {
        if (s->best.type == QV_NULL) {
            s->best = v;
            return true;
        }
        uint64_t w = 0;
        int r = qv_order_w(v, s->best, &w);
        if ((fn[1] == 'i' && r < 0) || (fn[1] == 'a' && r > 0)) s->best = v;
        return qctx_work(c, w);
    }
    }
    return true;
}

static qv_value agg_result(qctx *c, const agg_spec *a, agg_state *s) {
    const char *fn = a->fn->name;
    switch (fn[0]) {
    case 'c':
        if (fn[2] == 'u') return qv_int(s->count);
        {
            qv_list *l = qctx_alloc(c, sizeof *l);
            if (l == NULL) return qv_null();
            l->count = s->item_count;
            l->items = s->items ? s->items : qctx_alloc(c, sizeof(qv_value));
            if (l->items == NULL || !qctx_seal_list(c, l)) return qv_null();
            qv_value v;
            v.type = QV_LIST;
            v.u.list = l;
            return v;
        }
    case 's': return s->sum_is_double ? qv_double(s->dsum) : qv_int(s->isum);
    case 'a':
        if (s->count == 0) return qv_null();
        return qv_double((s->sum_is_double ? s->dsum : (double)s->isum) / (double)s->count);
    case 'm': return s->best;
    }
    return qv_null();
}

bool agg_run(qctx *c, op *o) {
    groups *g = qctx_alloc(c, sizeof *g);
    if (g == NULL) return false;
    memset(g, 0, sizeof *g);
    tupset_init(&g->keys, o->u.agg.key_count);
    o->u.agg.groups = g;
    o->u.agg.pos = 0;
    qv_value tbuf[32];
    qv_value *t = tbuf;
    if (o->u.agg.key_count > 32) {
        t = qctx_alloc(c, sizeof(qv_value) * o->u.agg.key_count);
        if (t == NULL) return false;
    }
    while (op_next(c, o->child)) {
        for (uint32_t i = 0; i < o->u.agg.key_count; i++) t[i] = cx_eval(c, o->u.agg.keys[i]);
        if (c->failed) return false;
        bool inserted;
        int64_t gi = tupset_add(c, &g->keys, t, &inserted);
        if (gi < 0) return false;
        if (inserted && !new_group(c, o, g)) return false;
        group *gr = &g->arr[gi];
        for (uint32_t i = 0; i < o->u.agg.agg_count; i++)
            if (!agg_update(c, &o->u.agg.aggs[i], &gr->st[i])) return false;
    }
    if (c->failed) return false;
    /* no input and no grouping keys: one row of empty aggregates */
    if (g->count == 0 && o->u.agg.key_count == 0) {
        for (uint32_t i = 0; i < c->slot_count; i++) c->row[i] = qv_null();
        if (!new_group(c, o, g)) return false;
    }
    return true;
}

bool agg_emit(qctx *c, op *o) {
    groups *g = o->u.agg.groups;
    if (g == NULL || o->u.agg.pos >= g->count) return false;
    group *gr = &g->arr[o->u.agg.pos++];
    memcpy(c->row, gr->rep, sizeof(qv_value) * c->slot_count);
    for (uint32_t i = 0; i < o->u.agg.agg_count; i++)
        c->row[o->u.agg.aggs[i].slot] = agg_result(c, &o->u.agg.aggs[i], &gr->st[i]);
    for (uint32_t i = 0; i < o->u.agg.out_count; i++) c->row[o->u.agg.out_slots[i]] = cx_eval(c, o->u.agg.outs[i]);
    return !c->failed;
}
