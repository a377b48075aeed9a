/*
 * exec.c -- the operators (engine.h): scans, seeks, expansions, filters,
 * projections, sort/skip/limit/distinct, unwind, optional, procedure calls
 * and the writing operators (create, merge, set, remove, delete, index DDL).
 *
 * Pull model (Volcano): op_next asks the child for a row, extends it, and
 * returns.  All operators of a pipeline share ctx->row (engine.h).
 *
 * Writes are eager: a writing operator first drains its input into a row
 * buffer, then performs its writes row by row.  This is what Neo4j calls
 * an "eager" barrier; without it `MATCH (n:P) CREATE (:P)` could see its
 * own new nodes through the transaction's iterators and never end.  DELETE
 * goes further: it collects every entity of every row, deletes relationships
 * first, then nodes, so `MATCH (a)-[r]->() DELETE r, a` works and an entity
 * deleted twice is deleted once.
 *
 * Variable-length expansion enumerates paths depth-first with
 * relationship isomorphism (no relationship twice in one path).  The DFS is
 * iterative with a heap stack grown on demand, and the relationships of the
 * current path are also kept in a hash set, so a deep path costs O(1) per
 * step.  A path cannot be longer than the graph's relationship count, so
 * the pattern's upper bound is clamped to that and otherwise honoured
 * exactly up to the safety limit QUERY_VARLEN_PATH_HOPS_MAX; a traversal
 * that would go past it fails the query ("exceeds N hops") instead of
 * silently truncating the answer.  When the planner proves that only the
 * distinct end nodes matter, it sets `bfs` and the operator visits each
 * reachable node once (breadth-first): the number of paths can be
 * exponential in the graph size (a ladder of diamonds), the number of
 * reachable nodes cannot.  The BFS has no hop limit (its depth is bounded
 * by the node count), only a memory limit on its visited set.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../common/qassert.h"
#include "engine.h"

/* ------------------------------------------------------------------ */
/* Row buffers and tuple sets                                          */
/* ------------------------------------------------------------------ */

bool rowbuf_push(qctx *c, rowbuf *b, const qv_value *row, uint32_t width) {
    if (b->count == b->cap) {
        uint64_t ncap = b->cap ? b->cap * 2 : 16;
        if (!qctx_reserve(c, sizeof(qv_value) * width * ncap)) return false;
        qv_value *nd = q_arena_realloc(c->a, b->data, sizeof(qv_value) * width * b->cap, sizeof(qv_value) * width * ncap);
        if (nd == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
        b->data = nd;
        b->cap = ncap;
    }
    if (width) memcpy(b->data + b->count * width, row, sizeof(qv_value) * width);
    b->count++;
    return true;
}

void tupset_init(tupset *s, uint32_t width) {
    memset(s, 0, sizeof *s);
    s->width = width;
}

/* Tuple hashes are seeded from the request (qctx.hash_seed): the same on
 * every replica of a write, but not known to a client in advance, so it
 * cannot pick values that all collide.  Probe steps are charged as work
 * anyway, so even colliding values cost what they take. */
static uint64_t tuple_hash(qctx *c, const qv_value *t, uint32_t w, uint64_t *work) {
    uint64_t h = c->hash_seed;
    for (uint32_t i = 0; i < w; i++) h = qv_hash_w(t[i], h, work);
    return h;
}

static bool tuple_eq(const qv_value *a, const qv_value *b, uint32_t w, uint64_t *work) {
    for (uint32_t i = 0; i < w; i++)
        if (qv_order_w(a[i], b[i], work) != 0) return false;
    return true;
}

static bool tupset_grow(qctx *c, tupset *s) {
    uint64_t ncap = s->cap ? s->cap * 2 : 64;
    if (!qctx_work(c, s->count)) return false;
    if (!qctx_reserve(c, (sizeof(uint32_t) + sizeof(uint64_t) + sizeof(qv_value *)) * ncap)) return false;
    uint32_t *nt = q_arena_calloc(c->a, ncap, sizeof(uint32_t));
    uint64_t *nh = q_arena_alloc(c->a, sizeof(uint64_t) * ncap);
    qv_value **ne = q_arena_alloc(c->a, sizeof(qv_value *) * ncap);
    if (nt == NULL || nh == NULL || ne == NULL)
        return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
    if (s->count) {
        memcpy(nh, s->hashes, sizeof(uint64_t) * s->count);
        memcpy(ne, s->tuples, sizeof(qv_value *) * s->count);
    }
    for (uint64_t i = 0; i < s->count; i++) {
        uint64_t p = nh[i] & (ncap - 1);
        while (nt[p] != 0) p = (p + 1) & (ncap - 1);
        nt[p] = (uint32_t)(i + 1);
    }
    s->table = nt;
    s->hashes = nh;
    s->tuples = ne;
    s->cap = ncap;
    return true;
}

int64_t tupset_add(qctx *c, tupset *s, const qv_value *tuple, bool *inserted) {
    *inserted = false;
    if ((s->count + 1) * 2 > s->cap && !tupset_grow(c, s)) return -1;
    if (s->count >= UINT32_MAX - 1) {
        qctx_fail(c, QUERY_ERR_LIMIT, "Too many distinct values");
        return -1;
    }
    uint64_t work = 1;
    uint64_t h = tuple_hash(c, tuple, s->width, &work);
    uint64_t p = h & (s->cap - 1);
    while (s->table[p] != 0) {
        uint32_t i = s->table[p] - 1;
        work++;
        if (s->hashes[i] == h && tuple_eq(s->tuples[i], tuple, s->width, &work))
            return qctx_work(c, work) ? (int64_t)i : -1;
        p = (p + 1) & (s->cap - 1);
    }
    if (!qctx_work(c, work)) return -1;
    qv_value *copy = qctx_alloc(c, sizeof(qv_value) * (s->width ? s->width : 1));
    if (copy == NULL) return -1;
    if (s->width) memcpy(copy, tuple, sizeof(qv_value) * s->width);
    s->hashes[s->count] = h;
    s->tuples[s->count] = copy;
    s->table[p] = (uint32_t)(s->count + 1);
    *inserted = true;
    return (int64_t)s->count++;
}

/* A malloc'd set of u64 ids (BFS visited nodes; relationships of the
 * current DFS path); open addressing with linear probing.  A slot holds 0
 * (empty), IDSET_TOMBSTONE (deleted: keeps probe chains intact) or id + 1.
 * Deletions only come from the DFS path set, whose members come and go
 * LIFO; tombstones are dropped when the table is rebuilt. */
#define IDSET_TOMBSTONE UINT64_MAX
#define IDSET_CAP_MIN 1024u
typedef struct idset {
    uint64_t used;  /* non-empty slots, tombstones included */
    uint64_t live;  /* members */
    uint64_t cap;   /* power of two, or 0 before the first add */
    uint64_t *slots;
} idset;

static uint64_t idset_slot0(uint64_t key, uint64_t cap) { return (key * 0x9e3779b97f4a7c15ull) >> 20 & (cap - 1); }

static void idset_clear(idset *s) {
    if (s->slots) memset(s->slots, 0, sizeof(uint64_t) * s->cap);
    s->used = s->live = 0;
}

/* Rebuild into a table with load at most 1/4 (grows, or just drops the
 * tombstones).  false: out of memory (the set is unchanged). */
static bool idset_rebuild(idset *s) {
    uint64_t ncap = IDSET_CAP_MIN;
    while ((s->live + 1) * 4 > ncap) ncap *= 2;
    uint64_t *ns = calloc(ncap, sizeof(uint64_t));
    if (ns == NULL) return false;
    for (uint64_t i = 0; i < s->cap; i++) {
        uint64_t k = s->slots[i];
        if (k == 0 || k == IDSET_TOMBSTONE) continue;
        uint64_t p = idset_slot0(k, ncap);
        while (ns[p] != 0) p = (p + 1) & (ncap - 1);
        ns[p] = k;
    }
    free(s->slots);
    s->slots = ns;
    s->cap = ncap;
    s->used = s->live;
    return true;
}

/* Returns 1 inserted, 0 present, -1 out of memory. */
static int idset_add(idset *s, uint64_t id) {
    QUIVER_ASSERT(id < UINT64_MAX - 1);
    if ((s->used + 1) * 2 > s->cap && !idset_rebuild(s)) return -1;
    uint64_t key = id + 1;
    uint64_t p = idset_slot0(key, s->cap);
    while (s->slots[p] != 0) {
        if (s->slots[p] == key) return 0;
        p = (p + 1) & (s->cap - 1);
    }
    s->slots[p] = key;
    s->used++;
    s->live++;
    return 1;
}

static bool idset_has(const idset *s, uint64_t id) {
    if (s->cap == 0) return false;
    uint64_t key = id + 1;
    for (uint64_t p = idset_slot0(key, s->cap); s->slots[p] != 0; p = (p + 1) & (s->cap - 1))
        if (s->slots[p] == key) return true;
    return false;
}

static void idset_del(idset *s, uint64_t id) {
    if (s->cap == 0) return;
    uint64_t key = id + 1;
    for (uint64_t p = idset_slot0(key, s->cap); s->slots[p] != 0; p = (p + 1) & (s->cap - 1))
        if (s->slots[p] == key) {
            s->slots[p] = IDSET_TOMBSTONE;
            s->live--;
            return;
        }
}

/* ------------------------------------------------------------------ */
/* Sorting under the guards                                            */
/* ------------------------------------------------------------------ */

/* A comparator that adds the work of each comparison to *work. */
typedef int (*counted_cmp)(const void *a, const void *b, void *arg, uint64_t *work);

typedef struct sort_shim {
    qctx *c;
    counted_cmp cmp;
    void *arg;
    uint64_t work;          /* since the last deadline check */
} sort_shim;

static int shim_cmp(const void *a, const void *b, void *p) {
    sort_shim *sh = p;
    if (sh->c->failed) return 0; /* stopping: let qsort finish cheaply */
    int r = sh->cmp(a, b, sh->arg, &sh->work);
    if (sh->work >= QUERY_WORK_CHECK_INTERVAL) {
        sh->work = 0;
        if (sh->c->deadline_ns != 0 && qctx_now_ns() > sh->c->deadline_ns)
            qctx_fail(sh->c, QUERY_ERR_TIMEOUT, "Query timed out");
    }
    return r;
}

/* ceil(log2 n) for n >= 1. */
static uint64_t log2_ceil(uint64_t n) {
    uint64_t k = 0;
    while (k < 64 && (1ull << k) < n) k++;
    return k;
}

/* Sort n elements of size bytes with cmp, under the guards: charged
 * ceil(log2 n) * (n + key_cost) units before sorting (engine.h, WORK
 * UNITS: deterministic, unlike glibc's choice of algorithm), and
 * interrupted by a read's deadline, which the comparisons check every
 * QUERY_WORK_CHECK_INTERVAL units of their own work.  key_cost: the walk
 * cost of what the comparisons read (qv_walk_cost of the keys). */
static bool guarded_sort(qctx *c, void *base, size_t n, size_t size, counted_cmp cmp, void *arg, uint64_t key_cost) {
    if (n < 2) return !c->failed;
    uint64_t charge = log2_ceil(n) * (n + key_cost);
    if (!qctx_work(c, charge)) return false;
    sort_shim sh = {c, cmp, arg, 0};
    qsort_r(base, n, size, shim_cmp, &sh);
    return !c->failed;
}

/* ------------------------------------------------------------------ */
/* Operator basics                                                     */
/* ------------------------------------------------------------------ */

op *op_new(qctx *c, op_kind kind, op *child) {
    if (c->failed) return NULL;
    if (++c->op_count > QUIVER_QUERY_OPERATORS_COUNT_MAX) {
        qctx_fail(c, QUERY_ERR_LIMIT, "ERR query plan has more than %u operators (the limit)",
                  (unsigned)QUIVER_QUERY_OPERATORS_COUNT_MAX);
        return NULL;
    }
    op *o = qctx_alloc(c, sizeof *o);
    if (o == NULL) return NULL;
    memset(o, 0, sizeof *o);
    o->kind = (uint8_t)kind;
    o->child = child;
    return o;
}

const char *op_name(const op *o) {
    switch ((op_kind)o->kind) {
    case OP_ARGUMENT: return "Argument";
    case OP_SCAN_ALL: return "All Node Scan";
    case OP_SCAN_LABEL: return "Node By Label Scan";
    case OP_SCAN_INDEX: return "Node By Index Scan";
    case OP_SEEK_ID: return "NodeByIdSeek";
    case OP_EXPAND: return o->u.expand.into ? "Expand Into" : "Conditional Traverse";
    case OP_VAREXPAND: return "Conditional Variable Length Traverse";
    case OP_FILTER: return "Filter";
    case OP_PROJECT: return "Project";
    case OP_AGGREGATE: return "Aggregate";
    case OP_DISTINCT: return "Distinct";
    case OP_SORT: return "Sort";
    case OP_SKIP: return "Skip";
    case OP_LIMIT: return "Limit";
    case OP_UNWIND: return "Unwind";
    case OP_OPTIONAL: return "Optional";
    case OP_CREATE: return "Create";
    case OP_MERGE: return "Merge";
    case OP_SET: return "Update";
    case OP_REMOVE: return "Update";
    case OP_DELETE: return "Delete";
    case OP_CALL: return "ProcedureCall";
    case OP_INDEX_DDL: return "Index";
    }
    return "?";
}

typedef struct vframe {
    uint64_t node;
    uint32_t depth;
    qs_iter *it;
    uint32_t type_pos;
    uint8_t pass;
    bool open;          /* iteration over this node's relationships started */
    bool leaf;          /* at max depth: do not expand */
    uint64_t via_edge;  /* BFS: the relationship that discovered this node */
} vframe;

typedef struct vstate {
    /* DFS */
    vframe *frames;     /* depth 0..depth; grown on demand */
    uint32_t frame_cap;
    qv_value *edges;    /* edges of the current path (frame_cap entries) */
    idset path_edges;   /* their ids, for the isomorphism check */
    uint32_t depth;
    uint32_t max_hops;  /* this input row's effective upper bound */
    bool zero_done;
    /* BFS */
    idset visited;
    vframe *queue;      /* malloc'd; nodes to expand with depth */
    uint64_t q_head, q_tail, q_cap;
} vstate;

static void expand_free_iters(op *o) {
    if (o->u.expand.it) {
        qs_iter_free(o->u.expand.it);
        o->u.expand.it = NULL;
    }
    vstate *vs = o->u.expand.vstate;
    if (vs) {
        for (uint32_t i = 0; i < vs->frame_cap; i++)
            if (vs->frames && vs->frames[i].it) {
                qs_iter_free(vs->frames[i].it);
                vs->frames[i].it = NULL;
            }
        if (vs->queue && vs->q_head < vs->q_tail && vs->queue[vs->q_head].it) {
            qs_iter_free(vs->queue[vs->q_head].it);
            vs->queue[vs->q_head].it = NULL;
        }
        for (uint64_t i = 0; i < vs->q_tail && vs->queue; i++)
            if (vs->queue[i].it) {
                qs_iter_free(vs->queue[i].it);
                vs->queue[i].it = NULL;
            }
    }
}

static void op_reset_self(qctx *c, op *o) {
    (void)c;
    o->started = false;
    switch ((op_kind)o->kind) {
    case OP_SCAN_ALL:
    case OP_SCAN_LABEL:
    case OP_SCAN_INDEX:
    case OP_SEEK_ID:
        if (o->u.scan.it) qs_iter_free(o->u.scan.it);
        o->u.scan.it = NULL;
        o->u.scan.have_input = false;
        break;
    case OP_EXPAND:
    case OP_VAREXPAND:
        expand_free_iters(o);
        o->u.expand.have_input = false;
        break;
    case OP_PROJECT:
    case OP_UNWIND:
        o->u.project.have_input = false;
        break;
    case OP_AGGREGATE:
        o->u.agg.groups = NULL;
        o->u.agg.pos = 0;
        break;
    case OP_DISTINCT:
        tupset_init(&o->u.distinct.seen, o->u.distinct.count);
        break;
    case OP_SORT:
        memset(&o->u.sort.rows, 0, sizeof o->u.sort.rows);
        o->u.sort.pos = 0;
        break;
    case OP_SKIP:
    case OP_LIMIT:
        o->u.skiplimit.seen = 0;
        break;
    case OP_OPTIONAL:
        o->u.optional.have_input = false;
        break;
    case OP_CREATE:
    case OP_MERGE:
    case OP_SET:
    case OP_REMOVE:
    case OP_DELETE:
        memset(&o->u.write.rows, 0, sizeof o->u.write.rows);
        o->u.write.pos = 0;
        o->u.write.merge_have_input = false;
        break;
    case OP_CALL:
        o->u.call.have_input = false;
        break;
    default: break;
    }
}

void op_reset(qctx *c, op *o) {
    for (; o != NULL; o = o->child) {
        op_reset_self(c, o);
        if (o->inner) op_reset(c, o->inner);
    }
}

void op_close(qctx *c, op *o) {
    for (; o != NULL; o = o->child) {
        op_reset_self(c, o);
        if (o->inner) op_close(c, o->inner);
        if ((o->kind == OP_EXPAND || o->kind == OP_VAREXPAND) && o->u.expand.vstate) {
            vstate *vs = o->u.expand.vstate;
            free(vs->frames);
            free(vs->edges);
            free(vs->visited.slots);
            free(vs->path_edges.slots);
            free(vs->queue);
            free(vs);
            o->u.expand.vstate = NULL;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Scans and seeks                                                     */
/* ------------------------------------------------------------------ */

static int cmp_values(const void *a, const void *b, void *arg, uint64_t *work) {
    (void)arg;
    return qv_order_w(*(const qv_value *)a, *(const qv_value *)b, work);
}

/* Open the iterator for the current input row; false when nothing can match. */
static bool scan_open(qctx *c, op *o) {
    if (c->graph_missing) return false;
    if (!qctx_work(c, QUERY_WORK_STORAGE_READ_UNITS)) return false;
    uint32_t label_id = 0, key_id = 0;
    switch ((op_kind)o->kind) {
    case OP_SCAN_ALL:
        o->u.scan.it = qs_scan_nodes(c->view, c->graph);
        return o->u.scan.it != NULL;
    case OP_SCAN_LABEL:
        if (!schema_lookup(c, QS_SCHEMA_LABEL, o->u.scan.label, &label_id)) return false;
        o->u.scan.it = qs_scan_label(c->view, c->graph, label_id);
        return o->u.scan.it != NULL;
    case OP_SCAN_INDEX: {
        if (!schema_lookup(c, QS_SCHEMA_LABEL, o->u.scan.label, &label_id)) return false;
        if (!schema_lookup(c, QS_SCHEMA_PROPKEY, o->u.scan.key, &key_id)) return false;
        if (o->u.scan.mode == IDX_EQ) {
            qv_value *v = qctx_alloc(c, sizeof *v);
            if (v == NULL) return false;
            *v = cx_eval(c, o->u.scan.val);
            if (c->failed || v->type == QV_NULL) return false;
            o->u.scan.vals = v;
            o->u.scan.val_count = 1;
            o->u.scan.val_pos = 0;
        } else if (o->u.scan.mode == IDX_IN) {
            qv_value l = cx_eval(c, o->u.scan.val);
            if (c->failed || l.type == QV_NULL) return false;
            if (l.type != QV_LIST) {
                type_mismatch(c, "List or Null", l);
                return false;
            }
            uint32_t n = l.u.list->count;
            if (!qctx_work(c, qv_elements(l))) return false;
            qv_value *vals = qctx_alloc(c, sizeof(qv_value) * (n ? n : 1));
            if (vals == NULL) return false;
            uint32_t k = 0;
            for (uint32_t i = 0; i < n; i++)
                if (l.u.list->items[i].type != QV_NULL) vals[k++] = l.u.list->items[i];
            if (!guarded_sort(c, vals, k, sizeof(qv_value), cmp_values, NULL, qv_walk_cost(l))) return false;
            uint32_t u = 0;
            uint64_t w = 0;
            for (uint32_t i = 0; i < k; i++)
                if (u == 0 || qv_order_w(vals[u - 1], vals[i], &w) != 0) vals[u++] = vals[i];
            if (!qctx_work(c, w)) return false;
            o->u.scan.vals = vals;
            o->u.scan.val_count = u;
            o->u.scan.val_pos = 0;
        } else {
            qv_value lo, hi;
            if (o->u.scan.lo) {
                lo = cx_eval(c, o->u.scan.lo);
                if (c->failed || lo.type == QV_NULL) return false;
            }
            if (o->u.scan.hi) {
                hi = cx_eval(c, o->u.scan.hi);
                if (c->failed || hi.type == QV_NULL) return false;
            }
            o->u.scan.it = qs_scan_prop_index(c->view, c->graph, label_id, key_id, o->u.scan.lo ? &lo : NULL,
                                              o->u.scan.lo_incl, o->u.scan.hi ? &hi : NULL, o->u.scan.hi_incl);
            o->u.scan.val_count = 0;
            return o->u.scan.it != NULL;
        }
        /* EQ / IN: iterators are opened per value in scan_step */
        o->u.scan.it = NULL;
        return true;
    }
    case OP_SEEK_ID: {
        qv_value v = cx_eval(c, o->u.scan.val);
        if (c->failed || v.type == QV_NULL) return false;
        if (o->u.scan.seek_list) {
            if (v.type != QV_LIST) {
                type_mismatch(c, "List or Null", v);
                return false;
            }
            o->u.scan.vals = v.u.list->items;
            o->u.scan.val_count = v.u.list->count;
        } else {
            qv_value *one = qctx_alloc(c, sizeof *one);
            if (one == NULL) return false;
            *one = v;
            o->u.scan.vals = one;
            o->u.scan.val_count = 1;
        }
        o->u.scan.val_pos = 0;
        return true;
    }
    default: return false;
    }
}

/* Next node id of the open scan; false at its end. */
static bool scan_step(qctx *c, op *o, uint64_t *id) {
    qs_item item;
    if (o->kind == OP_SEEK_ID) {
        while (o->u.scan.val_pos < o->u.scan.val_count) {
            qv_value v = o->u.scan.vals[o->u.scan.val_pos++];
            if (!qctx_work(c, QUERY_WORK_STORAGE_READ_UNITS)) return false;
            if (v.type != QV_INT || v.u.i < 0) continue;
            if (!qs_node_exists(c->view, c->graph, (uint64_t)v.u.i)) continue;
            *id = (uint64_t)v.u.i;
            return true;
        }
        return false;
    }
    if (o->kind == OP_SCAN_INDEX && o->u.scan.mode != IDX_RANGE) {
        for (;;) {
            if (o->u.scan.it == NULL) {
                if (o->u.scan.val_pos >= o->u.scan.val_count) return false;
                uint32_t label_id, key_id;
                if (!schema_lookup(c, QS_SCHEMA_LABEL, o->u.scan.label, &label_id) ||
                    !schema_lookup(c, QS_SCHEMA_PROPKEY, o->u.scan.key, &key_id))
                    return false;
                qv_value *v = &o->u.scan.vals[o->u.scan.val_pos++];
                if (!qctx_work(c, QUERY_WORK_STORAGE_READ_UNITS)) return false;
                o->u.scan.it = qs_scan_prop_index(c->view, c->graph, label_id, key_id, v, true, v, true);
                if (o->u.scan.it == NULL) return false;
            }
            if (qs_iter_next(o->u.scan.it, &item)) {
                *id = item.node_id;
                return true;
            }
            qs_iter_free(o->u.scan.it);
            o->u.scan.it = NULL;
        }
    }
    if (o->u.scan.it == NULL) return false;
    if (qs_iter_next(o->u.scan.it, &item)) {
        *id = item.node_id;
        return true;
    }
    return false;
}

static bool scan_next(qctx *c, op *o) {
    for (;;) {
        if (!o->u.scan.have_input) {
            if (!op_next(c, o->child)) return false;
            o->u.scan.have_input = true;
            if (!scan_open(c, o)) {
                if (c->failed) return false;
                o->u.scan.have_input = false;
                if (o->u.scan.it) qs_iter_free(o->u.scan.it);
                o->u.scan.it = NULL;
                continue;
            }
        }
        uint64_t id;
        if (scan_step(c, o, &id)) {
            if (!qctx_work(c, QUERY_WORK_ITERATOR_STEP_UNITS)) return false;
            qv_value n = make_node(c, id);
            if (c->failed) return false;
            c->row[o->u.scan.slot] = n;
            return true;
        }
        if (o->u.scan.it) qs_iter_free(o->u.scan.it);
        o->u.scan.it = NULL;
        o->u.scan.have_input = false;
        if (c->failed) return false;
    }
}

/* ------------------------------------------------------------------ */
/* Expansion                                                           */
/* ------------------------------------------------------------------ */

/* Relationship-type ids resolved for this run; false when none exists. */
static bool expand_types(qctx *c, op *o) {
    if (o->u.expand.type_count == 0) return true;
    if (o->u.expand.type_ids == NULL) {
        o->u.expand.type_ids = qctx_alloc(c, sizeof(uint32_t) * o->u.expand.type_count);
        if (o->u.expand.type_ids == NULL) return false;
    }
    bool any = false;
    for (uint32_t i = 0; i < o->u.expand.type_count; i++) {
        if (!schema_lookup(c, QS_SCHEMA_RELTYPE, o->u.expand.types[i], &o->u.expand.type_ids[i]))
            o->u.expand.type_ids[i] = QS_TYPE_ANY - 1; /* unknown: skipped */
        else any = true;
    }
    return any;
}

/* Iterate relationships of node over (pass, type) combinations.  Fills
 * item and *out_dir; false when exhausted. */
static bool adj_next(qctx *c, op *o, uint64_t node, qs_iter **it, uint32_t *type_pos, uint8_t *pass, qs_item *item,
                     qs_direction *out_dir) {
    ast_rel_dir d = o->u.expand.dir;
    uint32_t ntypes = o->u.expand.type_count ? o->u.expand.type_count : 1;
    uint8_t npass = d == AST_DIR_BOTH ? 2 : 1;
    for (;;) {
        if (*pass >= npass) return false;
        qs_direction qd = d == AST_DIR_RIGHT ? QS_DIR_OUT : d == AST_DIR_LEFT ? QS_DIR_IN : (*pass == 0 ? QS_DIR_OUT : QS_DIR_IN);
        if (*it == NULL) {
            uint32_t t = QS_TYPE_ANY;
            if (o->u.expand.type_count) {
                t = o->u.expand.type_ids[*type_pos];
                if (t == QS_TYPE_ANY - 1) goto advance;
            }
            if (!qctx_work(c, QUERY_WORK_STORAGE_READ_UNITS)) return false;
            *it = qs_scan_adj(c->view, c->graph, node, qd, t);
            if (*it == NULL) goto advance;
        }
        while (qs_iter_next(*it, item)) {
            /* undirected: a self loop appears in both passes; keep the first */
            if (d == AST_DIR_BOTH && *pass == 1 && item->node_id == node) continue;
            *out_dir = qd;
            return true;
        }
        qs_iter_free(*it);
        *it = NULL;
    advance:
        if (++*type_pos >= ntypes) {
            *type_pos = 0;
            ++*pass;
        }
    }
}

/* Is edge_id one of the relationships bound earlier in the same MATCH?
 * Charged 1 unit per 16 slots checked (the units are also the reason a
 * MATCH pattern is bounded: QUIVER_QUERY_MATCH_PARTS_COUNT_MAX). */
static bool edge_in_slots(qctx *c, op *o, uint64_t edge_id) {
    if (o->u.expand.uniq_count >= 16 && !qctx_work(c, o->u.expand.uniq_count / 16)) return false;
    for (uint32_t i = 0; i < o->u.expand.uniq_count; i++) {
        qv_value v = c->row[o->u.expand.uniq_slots[i]];
        if (v.type == QV_EDGE && v.u.edge->id == edge_id) return true;
        if (v.type == QV_LIST) {
            if (!qctx_work(c, v.u.list->count)) return false;
            for (uint32_t j = 0; j < v.u.list->count; j++)
                if (v.u.list->items[j].type == QV_EDGE && v.u.list->items[j].u.edge->id == edge_id) return true;
        }
    }
    return false;
}

static qv_value item_edge(qctx *c, uint64_t node, const qs_item *item, qs_direction qd) {
    return qd == QS_DIR_OUT ? make_edge(c, item->edge_id, node, item->node_id, item->type_id)
                            : make_edge(c, item->edge_id, item->node_id, node, item->type_id);
}

static bool expand_next(qctx *c, op *o) {
    for (;;) {
        if (!o->u.expand.have_input) {
            if (!op_next(c, o->child)) return false;
            qv_value src = c->row[o->u.expand.src_slot];
            if (src.type != QV_NODE || c->graph_missing) continue;
            if (!expand_types(c, o)) {
                if (c->failed) return false;
                continue;
            }
            o->u.expand.have_input = true;
            o->u.expand.type_pos = 0;
            o->u.expand.pass = 0;
            o->u.expand.it = NULL;
        }
        uint64_t node = c->row[o->u.expand.src_slot].u.node->id;
        qs_item item;
        qs_direction qd;
        if (!adj_next(c, o, node, &o->u.expand.it, &o->u.expand.type_pos, &o->u.expand.pass, &item, &qd)) {
            o->u.expand.have_input = false;
            continue;
        }
        if (!qctx_work(c, QUERY_WORK_ITERATOR_STEP_UNITS)) return false;
        if (o->u.expand.into) {
            qv_value d = c->row[o->u.expand.dst_slot];
            if (d.type != QV_NODE || d.u.node->id != item.node_id) continue;
        }
        if (edge_in_slots(c, o, item.edge_id)) continue;
        if (c->failed) return false;
        c->row[o->u.expand.edge_slot] = item_edge(c, node, &item, qd);
        if (!o->u.expand.into) c->row[o->u.expand.dst_slot] = make_node(c, item.node_id);
        return !c->failed;
    }
}

/* A traversal's own memory (malloc, outside the arenas) ran out: not a
 * limit, so not the same on every replica (out_of_memory). */
static bool traversal_nomem(qctx *c) {
    c->out_of_memory = true;
    return qctx_fail(c, QUERY_ERR_LIMIT, "Out of memory in variable-length traversal");
}

static vstate *vstate_get(qctx *c, op *o) {
    vstate *vs = o->u.expand.vstate;
    if (vs) return vs;
    vs = calloc(1, sizeof *vs);
    if (vs == NULL) {
        traversal_nomem(c);
        return NULL;
    }
    o->u.expand.vstate = vs; /* freed by op_close */
    return vs;
}

/* Make room for DFS depth `depth` (frames[depth], edges[depth - 1]). */
static bool dfs_reserve(qctx *c, vstate *vs, uint32_t depth) {
    if (depth < vs->frame_cap) return true;
    uint32_t ncap = vs->frame_cap ? vs->frame_cap : 16;
    while (ncap <= depth) ncap *= 2;
    if (ncap > QUERY_VARLEN_PATH_HOPS_MAX + 1) ncap = QUERY_VARLEN_PATH_HOPS_MAX + 1;
    QUIVER_ASSERT(depth < ncap);
    vframe *nf = realloc(vs->frames, sizeof(vframe) * ncap);
    if (nf == NULL) return traversal_nomem(c);
    memset(nf + vs->frame_cap, 0, sizeof(vframe) * (ncap - vs->frame_cap));
    vs->frames = nf;
    qv_value *ne = realloc(vs->edges, sizeof(qv_value) * ncap);
    if (ne == NULL) return traversal_nomem(c);
    vs->edges = ne;
    vs->frame_cap = ncap;
    return true;
}

/* Per-hop relationship property filter. */
static bool hop_ok(qctx *c, op *o, qv_value edge) {
    if (o->u.expand.hop_filter == NULL) return true;
    c->row[o->u.expand.hop_slot] = edge;
    return cx_truth(c, o->u.expand.hop_filter);
}

static bool varlen_emit(qctx *c, op *o, vstate *vs, uint64_t end) {
    if (o->u.expand.into) {
        qv_value d = c->row[o->u.expand.dst_slot];
        if (d.type != QV_NODE || d.u.node->id != end) return false;
    } else {
        c->row[o->u.expand.dst_slot] = make_node(c, end);
    }
    if (o->u.expand.edge_slot != UINT32_MAX) {
        if (!qctx_work(c, vs->depth)) return false;
        qv_list *l = qctx_alloc(c, sizeof *l);
        if (l == NULL) return false;
        l->count = vs->depth;
        l->depth = 1;          /* relationships are leaves */
        l->elements = vs->depth;
        l->items = qctx_alloc(c, sizeof(qv_value) * (vs->depth ? vs->depth : 1));
        if (l->items == NULL) return false;
        if (vs->depth) memcpy(l->items, vs->edges, sizeof(qv_value) * vs->depth);
        qv_value lv;
        lv.type = QV_LIST;
        lv.u.list = l;
        c->row[o->u.expand.edge_slot] = lv;
    }
    return !c->failed;
}

static bool varlen_dfs_next(qctx *c, op *o, vstate *vs) {
    uint32_t max = vs->max_hops;
    for (;;) {
        if (c->failed) return false;
        vframe *f = &vs->frames[vs->depth];
        if (!f->open) {
            f->open = true;
            f->it = NULL;
            f->type_pos = 0;
            f->pass = 0;
            f->leaf = vs->depth >= max;
        }
        qs_item item;
        qs_direction qd;
        if (f->leaf || !adj_next(c, o, f->node, &f->it, &f->type_pos, &f->pass, &item, &qd)) {
            if (f->it) qs_iter_free(f->it);
            f->it = NULL;
            f->open = false;
            if (vs->depth == 0) return false;
            vs->depth--;
            idset_del(&vs->path_edges, vs->edges[vs->depth].u.edge->id);
            continue;
        }
        if (!qctx_work(c, QUERY_WORK_ITERATOR_STEP_UNITS)) return false;
        if (idset_has(&vs->path_edges, item.edge_id) || edge_in_slots(c, o, item.edge_id)) continue;
        if (c->failed) return false;
        qv_value e = item_edge(c, f->node, &item, qd);
        if (c->failed) return false;
        if (!hop_ok(c, o, e)) {
            if (c->failed) return false;
            continue;
        }
        /* a real path would go past the safety limit: fail, never truncate */
        if (vs->depth >= QUERY_VARLEN_PATH_HOPS_MAX)
            return qctx_fail(c, QUERY_ERR_LIMIT, "variable-length pattern exceeds %u hops (limit)",
                             QUERY_VARLEN_PATH_HOPS_MAX);
        if (!dfs_reserve(c, vs, vs->depth + 1)) return false;
        if (idset_add(&vs->path_edges, item.edge_id) < 0) return traversal_nomem(c);
        vs->edges[vs->depth] = e;
        vs->depth++;
        vframe *nf = &vs->frames[vs->depth];
        nf->node = item.node_id;
        nf->open = false;
        nf->it = NULL;
        if (vs->depth >= o->u.expand.min_hops && varlen_emit(c, o, vs, item.node_id)) return true;
        if (c->failed) return false;
    }
}

static bool bfs_push(qctx *c, vstate *vs, uint64_t node, uint32_t depth, uint64_t via_edge) {
    if (vs->q_tail == vs->q_cap) {
        uint64_t ncap = vs->q_cap ? vs->q_cap * 2 : 1024;
        vframe *nq = realloc(vs->queue, sizeof(vframe) * ncap);
        if (nq == NULL) return traversal_nomem(c);
        vs->queue = nq;
        vs->q_cap = ncap;
    }
    vframe *f = &vs->queue[vs->q_tail++];
    memset(f, 0, sizeof *f);
    f->node = node;
    f->depth = depth;
    f->via_edge = via_edge;
    return true;
}

static bool varlen_bfs_next(qctx *c, op *o, vstate *vs) {
    uint32_t max = o->u.expand.max_hops; /* no hop cap: each node is visited once */
    for (;;) {
        if (c->failed || vs->q_head >= vs->q_tail) return false;
        vframe *f = &vs->queue[vs->q_head];
        qs_item item;
        qs_direction qd;
        if (f->depth >= max || !adj_next(c, o, f->node, &f->it, &f->type_pos, &f->pass, &item, &qd)) {
            if (f->it) qs_iter_free(f->it);
            f->it = NULL;
            vs->q_head++;
            continue;
        }
        if (!qctx_work(c, QUERY_WORK_ITERATOR_STEP_UNITS)) return false;
        uint32_t depth = f->depth + 1;
        /* undirected: going back over the relationship that led here is
         * not a path (a relationship appears once per path) */
        if (o->u.expand.dir == AST_DIR_BOTH && f->depth > 0 && item.edge_id == f->via_edge) continue;
        if (o->u.expand.hop_filter) {
            qv_value e = item_edge(c, f->node, &item, qd);
            if (!hop_ok(c, o, e)) continue;
        }
        if (vs->visited.live >= QUERY_VARLEN_VISITED_COUNT_MAX && !idset_has(&vs->visited, item.node_id))
            return qctx_fail(c, QUERY_ERR_LIMIT, "variable-length pattern reaches more than %llu nodes (memory limit)",
                             (unsigned long long)QUERY_VARLEN_VISITED_COUNT_MAX);
        int added = idset_add(&vs->visited, item.node_id);
        if (added < 0) return traversal_nomem(c);
        if (added == 0) continue;
        uint64_t nid = item.node_id;
        if (!bfs_push(c, vs, nid, depth, item.edge_id)) return false;
        vs->depth = 0;
        if (depth >= o->u.expand.min_hops && varlen_emit(c, o, vs, nid)) return true;
    }
}

static bool varexpand_next(qctx *c, op *o) {
    for (;;) {
        vstate *vs = o->u.expand.vstate;
        if (!o->u.expand.have_input) {
            if (!op_next(c, o->child)) return false;
            qv_value src = c->row[o->u.expand.src_slot];
            if (src.type != QV_NODE || c->graph_missing) continue;
            if (!expand_types(c, o)) {
                if (c->failed) return false;
                if (o->u.expand.min_hops > 0) continue;
            }
            vs = vstate_get(c, o);
            if (vs == NULL) return false;
            o->u.expand.have_input = true;
            vs->depth = 0;
            vs->zero_done = false;
            if (o->u.expand.bfs) {
                idset_clear(&vs->visited);
                vs->q_head = vs->q_tail = 0;
                if (!bfs_push(c, vs, src.u.node->id, 0, UINT64_MAX)) return false;
            } else {
                /* A relationship-isomorphic path is never longer than the
                 * graph's relationship count: clamp unbounded patterns to
                 * it, so the safety limit only matters on graphs that big. */
                vs->max_hops = o->u.expand.max_hops;
                if (vs->max_hops > QUERY_VARLEN_PATH_HOPS_MAX) {
                    uint64_t edges = qs_edge_count(c->view, c->graph);
                    if (edges < vs->max_hops) vs->max_hops = (uint32_t)edges;
                }
                if (!dfs_reserve(c, vs, 0)) return false;
                idset_clear(&vs->path_edges);
                memset(&vs->frames[0], 0, sizeof(vframe));
                vs->frames[0].node = src.u.node->id;
            }
        }
        uint64_t start = c->row[o->u.expand.src_slot].u.node->id;
        if (!vs->zero_done) {
            vs->zero_done = true;
            if (o->u.expand.min_hops == 0) {
                vs->depth = 0;
                if (o->u.expand.bfs && idset_add(&vs->visited, start) < 0) return traversal_nomem(c);
                if (varlen_emit(c, o, vs, start)) return true;
                if (c->failed) return false;
            }
        }
        bool got = o->u.expand.bfs ? varlen_bfs_next(c, o, vs) : varlen_dfs_next(c, o, vs);
        if (got) return true;
        if (c->failed) return false;
        expand_free_iters(o);
        o->u.expand.have_input = false;
    }
}

/* ------------------------------------------------------------------ */
/* Relational operators                                                */
/* ------------------------------------------------------------------ */

static bool project_next(qctx *c, op *o) {
    if (!op_next(c, o->child)) return false;
    for (uint32_t i = 0; i < o->u.project.count; i++) {
        qv_value v = cx_eval(c, o->u.project.exprs[i]);
        c->row[o->u.project.slots[i]] = v;
    }
    return !c->failed;
}

static bool unwind_next(qctx *c, op *o) {
    for (;;) {
        if (!o->u.project.have_input) {
            if (!op_next(c, o->child)) return false;
            qv_value l = cx_eval(c, o->u.project.exprs[0]);
            if (c->failed) return false;
            if (l.type == QV_NULL) continue;
            if (l.type != QV_LIST) {
                c->row[o->u.project.slots[0]] = l;
                return true;
            }
            o->u.project.list = l;
            o->u.project.pos = 0;
            o->u.project.have_input = true;
        }
        qv_list *l = o->u.project.list.u.list;
        if (o->u.project.pos < l->count) {
            if (!qctx_tick(c)) return false;
            c->row[o->u.project.slots[0]] = l->items[o->u.project.pos++];
            return true;
        }
        o->u.project.have_input = false;
    }
}

static bool distinct_next(qctx *c, op *o) {
    qv_value tuple[32];
    qv_value *t = tuple;
    if (o->u.distinct.count > 32) {
        t = qctx_alloc(c, sizeof(qv_value) * o->u.distinct.count);
        if (t == NULL) return false;
    }
    if (!o->started) {
        o->started = true;
        tupset_init(&o->u.distinct.seen, o->u.distinct.count);
    }
    while (op_next(c, o->child)) {
        for (uint32_t i = 0; i < o->u.distinct.count; i++) t[i] = c->row[o->u.distinct.slots[i]];
        bool inserted;
        if (tupset_add(c, &o->u.distinct.seen, t, &inserted) < 0) return false;
        if (inserted) return true;
    }
    return false;
}

typedef struct sort_ctx {
    const op *o;
    const qv_value *data;
    uint32_t width;
    uint32_t key_base;
} sort_ctx;

static int sort_cmp(const void *pa, const void *pb, void *arg, uint64_t *work) {
    const sort_ctx *s = arg;
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    const qv_value *ra = s->data + (uint64_t)ia * s->width + s->key_base;
    const qv_value *rb = s->data + (uint64_t)ib * s->width + s->key_base;
    for (uint32_t k = 0; k < s->o->u.sort.count; k++) {
        int r = qv_order_w(ra[k], rb[k], work);
        if (r != 0) return s->o->u.sort.desc[k] ? -r : r;
    }
    return ia < ib ? -1 : ia > ib;
}

static bool sort_next(qctx *c, op *o) {
    uint32_t w = c->slot_count + o->u.sort.count;
    if (!o->started) {
        o->started = true;
        memset(&o->u.sort.rows, 0, sizeof o->u.sort.rows);
        o->u.sort.pos = 0;
        qv_value *tmp = qctx_alloc(c, sizeof(qv_value) * w);
        if (tmp == NULL) return false;
        uint64_t key_cost = 0;
        while (op_next(c, o->child)) {
            memcpy(tmp, c->row, sizeof(qv_value) * c->slot_count);
            for (uint32_t k = 0; k < o->u.sort.count; k++) {
                tmp[c->slot_count + k] = cx_eval(c, o->u.sort.keys[k]);
                uint64_t kc = qv_walk_cost(tmp[c->slot_count + k]);
                if (!qctx_work(c, kc)) return false; /* the walk itself */
                key_cost += kc;
            }
            if (c->failed || !rowbuf_push(c, &o->u.sort.rows, tmp, w)) return false;
            if (o->u.sort.rows.count > QUIVER_QUERY_RESULT_ROWS_COUNT_MAX)
                return qctx_fail(c, QUERY_ERR_LIMIT, "Too many rows to sort (limit %u)", QUIVER_QUERY_RESULT_ROWS_COUNT_MAX);
        }
        if (c->failed) return false;
        uint64_t n = o->u.sort.rows.count;
        uint32_t *idx = qctx_alloc(c, sizeof(uint32_t) * (n ? n : 1));
        if (idx == NULL) return false;
        for (uint64_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
        sort_ctx sc = {o, o->u.sort.rows.data, w, c->slot_count};
        if (!guarded_sort(c, idx, n, sizeof(uint32_t), sort_cmp, &sc, key_cost)) return false;
        o->u.sort.key_slots = idx;
    }
    if (o->u.sort.pos >= o->u.sort.rows.count) return false;
    uint32_t i = o->u.sort.key_slots[o->u.sort.pos++];
    memcpy(c->row, o->u.sort.rows.data + (uint64_t)i * w, sizeof(qv_value) * c->slot_count);
    return true;
}

static bool skiplimit_value(qctx *c, op *o) {
    qv_value v = cx_eval(c, o->u.skiplimit.expr);
    if (c->failed) return false;
    if (v.type == QV_DOUBLE && v.u.d == (double)(int64_t)v.u.d) v = qv_int((int64_t)v.u.d);
    if (v.type != QV_INT || v.u.i < 0)
        return qctx_fail(c, QUERY_ERR_RUNTIME, "%s must be a non-negative integer", o->kind == OP_SKIP ? "SKIP" : "LIMIT");
    o->u.skiplimit.n = v.u.i;
    return true;
}

static bool skip_next(qctx *c, op *o) {
    if (!o->started) {
        o->started = true;
        o->u.skiplimit.seen = 0;
        if (!skiplimit_value(c, o)) return false;
    }
    while (o->u.skiplimit.seen < o->u.skiplimit.n) {
        if (!op_next(c, o->child)) return false;
        o->u.skiplimit.seen++;
    }
    return op_next(c, o->child);
}

static bool limit_next(qctx *c, op *o) {
    if (!o->started) {
        o->started = true;
        o->u.skiplimit.seen = 0;
        if (!skiplimit_value(c, o)) return false;
    }
    if (o->u.skiplimit.seen >= o->u.skiplimit.n) return false;
    if (!op_next(c, o->child)) return false;
    o->u.skiplimit.seen++;
    return true;
}

static bool optional_next(qctx *c, op *o) {
    for (;;) {
        if (!o->u.optional.have_input) {
            if (!op_next(c, o->child)) return false;
            o->u.optional.have_input = true;
            o->u.optional.inner_matched = false;
            op_reset(c, o->inner);
        }
        if (op_next(c, o->inner)) {
            o->u.optional.inner_matched = true;
            return true;
        }
        if (c->failed) return false;
        o->u.optional.have_input = false;
        if (!o->u.optional.inner_matched) {
            for (uint32_t i = 0; i < o->u.optional.null_count; i++) c->row[o->u.optional.null_slots[i]] = qv_null();
            return true;
        }
    }
}

static bool call_next(qctx *c, op *o) {
    for (;;) {
        if (!o->u.call.have_input) {
            if (!op_next(c, o->child)) return false;
            qv_value args[8];
            for (uint32_t i = 0; i < o->u.call.arg_count && i < 8; i++) args[i] = cx_eval(c, o->u.call.args[i]);
            if (c->failed) return false;
            o->u.call.rows = NULL;
            o->u.call.row_count = 0;
            o->u.call.pos = 0;
            if (!o->u.call.proc->run(c, args, &o->u.call.rows, &o->u.call.row_count)) return false;
            o->u.call.have_input = true;
        }
        while (o->u.call.pos < o->u.call.row_count) {
            const qv_value *r = o->u.call.rows + (uint64_t)o->u.call.pos * o->u.call.proc->column_count;
            o->u.call.pos++;
            for (uint32_t i = 0; i < o->u.call.out_count; i++) c->row[o->u.call.out_slots[i]] = r[o->u.call.out_cols[i]];
            if (o->u.call.where && !cx_truth(c, o->u.call.where)) {
                if (c->failed) return false;
                continue;
            }
            return true;
        }
        o->u.call.have_input = false;
    }
}

/* ------------------------------------------------------------------ */
/* Writes                                                              */
/* ------------------------------------------------------------------ */

typedef struct kv {
    uint32_t key_id;
    uint32_t order;
    qv_value value;
} kv;

static int kv_cmp(const void *a, const void *b) {
    const kv *x = a, *y = b;
    if (x->key_id != y->key_id) return x->key_id < y->key_id ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Property accumulator: every assignment is appended (a null value means
 * "absent"); the final pass keeps the last value per key and drops nulls. */
typedef struct props_acc {
    kv *items;
    uint32_t count, cap;
} props_acc;

static bool acc_put(qctx *c, props_acc *acc, uint32_t key_id, qv_value v) {
    if (!qctx_tick(c)) return false;
    if (acc->count == acc->cap) {
        uint32_t ncap = acc->cap ? acc->cap * 2 : 16;
        if (ncap > 4 * QUIVER_PROPERTIES_PER_ENTITY_COUNT_MAX + 64)
            return qctx_fail(c, QUERY_ERR_LIMIT, "Too many properties on one entity (limit %u)",
                             QUIVER_PROPERTIES_PER_ENTITY_COUNT_MAX);
        kv *n = q_arena_realloc(c->a, acc->items, sizeof(kv) * acc->cap, sizeof(kv) * ncap);
        if (n == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
        acc->items = n;
        acc->cap = ncap;
    }
    acc->items[acc->count].key_id = key_id;
    acc->items[acc->count].order = acc->count;
    acc->items[acc->count].value = v;
    acc->count++;
    return true;
}

/* Append a map value (or an entity's properties); REPLACE semantics are
 * the caller's (it resets the accumulator first). */
static bool acc_map(qctx *c, props_acc *acc, qv_value mv) {
    if (mv.type == QV_NULL) return true;
    if (mv.type == QV_NODE || mv.type == QV_EDGE) {
        qv_props *p;
        if (mv.type == QV_NODE) {
            if (!load_node(c, mv.u.node)) return false;
            p = &mv.u.node->props;
        } else {
            if (!load_edge(c, mv.u.edge)) return false;
            p = &mv.u.edge->props;
        }
        for (uint32_t i = 0; i < p->count; i++)
            if (!acc_put(c, acc, p->key_ids[i], p->values[i])) return false;
        return true;
    }
    if (mv.type != QV_MAP) {
        type_mismatch(c, "Map", mv);
        return false;
    }
    for (uint32_t i = 0; i < mv.u.map->count; i++) {
        qv_value v = mv.u.map->values[i];
        uint32_t key_id;
        if (v.type == QV_NULL) {
            if (!schema_lookup(c, QS_SCHEMA_PROPKEY, mv.u.map->keys[i], &key_id)) continue;
        } else {
            if (!value_storable(c, v)) return false;
            if (!schema_intern(c, QS_SCHEMA_PROPKEY, mv.u.map->keys[i], &key_id)) return false;
        }
        if (!acc_put(c, acc, key_id, v)) return false;
    }
    return true;
}

static bool acc_finish(qctx *c, props_acc *acc, qv_props *out) {
    memset(out, 0, sizeof *out);
    uint32_t k = acc->count;
    if (k == 0) return true;
    kv *items = acc->items;
    qsort(items, k, sizeof(kv), kv_cmp);
    out->key_ids = qctx_alloc(c, sizeof(uint32_t) * k);
    out->values = qctx_alloc(c, sizeof(qv_value) * k);
    if (out->key_ids == NULL || out->values == NULL) return false;
    uint32_t m = 0;
    for (uint32_t i = 0; i < k; i++) {
        if (i + 1 < k && items[i + 1].key_id == items[i].key_id) continue; /* a later value wins */
        if (items[i].value.type == QV_NULL) continue;
        out->key_ids[m] = items[i].key_id;
        out->values[m] = items[i].value;
        m++;
    }
    if (m > QUIVER_PROPERTIES_PER_ENTITY_COUNT_MAX)
        return qctx_fail(c, QUERY_ERR_LIMIT, "Too many properties on one entity (limit %u)", QUIVER_PROPERTIES_PER_ENTITY_COUNT_MAX);
    out->count = m;
    return true;
}

/* Evaluate a property map (static items, then a map expression, then
 * folded SET items) into props sorted by key id; null values are skipped
 * (a null property is an absent one). */
static bool build_props_ex(qctx *c, uint32_t n, const qv_str *keys, cx **vals, cx *map_expr, uint32_t extra_count,
                           const uint8_t *extra_kinds, const qv_str *extra_keys, cx **extra_values, qv_props *out) {
    props_acc acc = {NULL, 0, 0};
    for (uint32_t i = 0; i < n; i++) {
        qv_value v = cx_eval(c, vals[i]);
        if (c->failed) return false;
        if (v.type == QV_NULL) continue;
        uint32_t key_id;
        if (!value_storable(c, v) || !schema_intern(c, QS_SCHEMA_PROPKEY, keys[i], &key_id)) return false;
        if (!acc_put(c, &acc, key_id, v)) return false;
    }
    if (map_expr) {
        qv_value mv = cx_eval(c, map_expr);
        if (c->failed || !acc_map(c, &acc, mv)) return false;
    }
    for (uint32_t i = 0; i < extra_count; i++) {
        qv_value v = cx_eval(c, extra_values[i]);
        if (c->failed) return false;
        if (extra_kinds[i] == AST_SET_PROP) {
            uint32_t key_id;
            if (v.type == QV_NULL) {
                if (!schema_lookup(c, QS_SCHEMA_PROPKEY, extra_keys[i], &key_id)) continue;
            } else if (!value_storable(c, v) || !schema_intern(c, QS_SCHEMA_PROPKEY, extra_keys[i], &key_id)) {
                return false;
            }
            if (!acc_put(c, &acc, key_id, v)) return false;
            continue;
        }
        if (v.type != QV_MAP && v.type != QV_NODE && v.type != QV_EDGE && v.type != QV_NULL) {
            type_mismatch(c, "Map", v);
            return false;
        }
        if (extra_kinds[i] == AST_SET_REPLACE) acc.count = 0;
        if (!acc_map(c, &acc, v)) return false;
    }
    return acc_finish(c, &acc, out);
}

static bool build_props(qctx *c, uint32_t n, const qv_str *keys, cx **vals, cx *map_expr, qv_props *out) {
    return build_props_ex(c, n, keys, vals, map_expr, 0, NULL, NULL, NULL, out);
}

/* Work of writing props: QUERY_WORK_PROPERTY_WRITE_UNITS per property
 * plus its value's walk cost (storage encodes and may compress it). */
static uint64_t props_cost(const qv_props *p) {
    uint64_t w = (uint64_t)p->count * QUERY_WORK_PROPERTY_WRITE_UNITS;
    for (uint32_t i = 0; i < p->count; i++) w += qv_walk_cost(p->values[i]);
    return w;
}

static bool storage_err(qctx *c, int rc, const char *what) {
    if (rc == QS_LIMIT) return qctx_fail(c, QUERY_ERR_LIMIT, "%s: a storage limit was exceeded", what);
    if (rc == QS_NOMEM) return qctx_fail(c, QUERY_ERR_LIMIT, "%s: out of memory", what);
    if (rc == QS_INVALID) return qctx_fail(c, QUERY_ERR_RUNTIME, "%s: invalid value", what);
    return qctx_fail(c, QUERY_ERR_RUNTIME, "%s failed (%d)", what, rc);
}

static bool create_row(qctx *c, create_spec *s) {
    for (uint32_t i = 0; i < s->node_count; i++) {
        create_node *cn = &s->nodes[i];
        if (!cn->create) {
            qv_value v = c->row[cn->slot];
            if (v.type != QV_NODE) return qctx_fail(c, QUERY_ERR_RUNTIME, "Failed to create relationship; endpoint was not found.");
            continue;
        }
        if (!cn->interned) {
            if (cn->label_count > QUIVER_LABELS_PER_NODE_COUNT_MAX)
                return qctx_fail(c, QUERY_ERR_LIMIT, "Too many labels on one node (limit %u)", QUIVER_LABELS_PER_NODE_COUNT_MAX);
            cn->label_ids = qctx_alloc(c, sizeof(uint32_t) * (cn->label_count ? cn->label_count : 1));
            if (cn->label_ids == NULL) return false;
            /* FalkorDB's "Labels added" in CREATE/MERGE counts label schemas the
             * statement creates (a label new to the graph), once each, not
             * labelled nodes.  The write view sees the statement's own earlier
             * interning, so a label repeated in the statement counts once. */
            for (uint32_t l = 0; l < cn->label_count; l++) {
                uint32_t known;
                bool is_new = !schema_lookup(c, QS_SCHEMA_LABEL, cn->labels[l], &known);
                if (!schema_intern(c, QS_SCHEMA_LABEL, cn->labels[l], &cn->label_ids[l])) return false;
                if (is_new) c->stats->labels_added++;
            }
            cn->interned = true;
        }
        qv_props props;
        if (!build_props_ex(c, cn->prop_count, cn->prop_keys, cn->prop_values, cn->prop_map, cn->extra_count,
                            cn->extra_kinds, cn->extra_keys, cn->extra_values, &props))
            return false;
        uint64_t id;
        if (!qctx_work(c, QUERY_WORK_ENTITY_WRITE_UNITS + (uint64_t)cn->label_count * QUERY_WORK_LABEL_WRITE_UNITS +
                              props_cost(&props)))
            return false;
        int rc = qs_node_create(c->txn, c->graph, cn->label_ids, cn->label_count, &props, &id);
        if (rc != QS_OK) return storage_err(c, rc, "Create node");
        c->stats->nodes_created++;
        c->stats->properties_set += props.count;
        c->row[cn->slot] = make_node(c, id);
    }
    for (uint32_t i = 0; i < s->rel_count; i++) {
        create_rel *cr = &s->rels[i];
        qv_value a = c->row[cr->src_slot], b = c->row[cr->dst_slot];
        if (a.type != QV_NODE || b.type != QV_NODE)
            return qctx_fail(c, QUERY_ERR_RUNTIME, "Failed to create relationship; endpoint was not found.");
        if (!cr->interned) {
            if (!schema_intern(c, QS_SCHEMA_RELTYPE, cr->type, &cr->type_id)) return false;
            cr->interned = true;
        }
        qv_props props;
        if (!build_props(c, cr->prop_count, cr->prop_keys, cr->prop_values, cr->prop_map, &props)) return false;
        uint64_t id;
        if (!qctx_work(c, QUERY_WORK_ENTITY_WRITE_UNITS + props_cost(&props))) return false;
        int rc = qs_edge_create(c->txn, c->graph, cr->type_id, a.u.node->id, b.u.node->id, &props, &id);
        if (rc == QS_NOT_FOUND) return qctx_fail(c, QUERY_ERR_RUNTIME, "Failed to create relationship; endpoint was not found.");
        if (rc != QS_OK) return storage_err(c, rc, "Create relationship");
        c->stats->relationships_created++;
        c->stats->properties_set += props.count;
        c->row[cr->slot] = make_edge(c, id, a.u.node->id, b.u.node->id, cr->type_id);
    }
    for (uint32_t i = 0; i < s->path_count; i++) c->row[s->path_slots[i]] = cx_eval(c, s->path_exprs[i]);
    return !c->failed;
}

/* Set (or, with a null value, remove) one property of an entity. */
static bool set_prop(qctx *c, qv_value target, uint32_t key_id, qv_value v) {
    if (v.type != QV_NULL && !value_storable(c, v)) return false;
    if (!qctx_work(c, QUERY_WORK_PROPERTY_UPDATE_UNITS + qv_walk_cost(v))) return false;
    bool changed = false;
    int rc;
    if (target.type == QV_NODE) rc = qs_node_set_prop(c->txn, c->graph, target.u.node->id, key_id, v, &changed);
    else rc = qs_edge_set_prop(c->txn, c->graph, target.u.edge->id, key_id, v, &changed);
    if (rc == QS_NOT_FOUND) return true; /* deleted earlier in this query */
    if (rc != QS_OK) return storage_err(c, rc, "Set property");
    if (v.type == QV_NULL) {
        if (changed) c->stats->properties_removed++;
    } else {
        c->stats->properties_set++;
    }
    return true;
}

static bool set_item(qctx *c, set_spec *s, uint32_t i, bool remove) {
    qv_value target = cx_eval(c, s->targets[i]);
    if (c->failed) return false;
    if (target.type == QV_NULL) return true;
    ast_set_kind kind = s->kinds[i];
    if (kind == AST_SET_LABELS) {
        if (target.type != QV_NODE) return type_mismatch(c, "Node", target), false;
        for (uint32_t l = 0; l < s->label_counts[i]; l++) {
            uint32_t id;
            bool changed = false;
            int rc;
            if (!qctx_work(c, QUERY_WORK_LABEL_UPDATE_UNITS)) return false;
            if (remove) {
                if (!schema_lookup(c, QS_SCHEMA_LABEL, s->labels[i][l], &id)) continue;
                rc = qs_node_remove_label(c->txn, c->graph, target.u.node->id, id, &changed);
                if (changed) c->stats->labels_removed++;
            } else {
                if (!schema_intern(c, QS_SCHEMA_LABEL, s->labels[i][l], &id)) return false;
                rc = qs_node_add_label(c->txn, c->graph, target.u.node->id, id, &changed);
                if (changed) c->stats->labels_added++;
            }
            if (rc != QS_OK && rc != QS_NOT_FOUND) return storage_err(c, rc, "Update labels");
        }
        return true;
    }
    if (target.type != QV_NODE && target.type != QV_EDGE) return type_mismatch(c, "Node or Edge", target), false;
    if (kind == AST_SET_PROP) {
        qv_value v = remove ? qv_null() : cx_eval(c, s->values[i]);
        if (c->failed) return false;
        uint32_t key_id;
        if (v.type == QV_NULL) {
            if (!schema_lookup(c, QS_SCHEMA_PROPKEY, s->keys[i], &key_id)) return true;
        } else if (!schema_intern(c, QS_SCHEMA_PROPKEY, s->keys[i], &key_id)) {
            return false;
        }
        return set_prop(c, target, key_id, v);
    }
    /* = map / += map */
    qv_props np;
    qv_value mv = cx_eval(c, s->values[i]);
    if (c->failed) return false;
    if (mv.type != QV_MAP && mv.type != QV_NODE && mv.type != QV_EDGE && mv.type != QV_NULL)
        return type_mismatch(c, "Map", mv), false;
    /* null entries of a += map remove keys, so collect them separately */
    if (kind == AST_SET_MERGE && mv.type == QV_MAP) {
        for (uint32_t k = 0; k < mv.u.map->count; k++) {
            qv_value v = mv.u.map->values[k];
            uint32_t key_id;
            if (v.type == QV_NULL) {
                if (!schema_lookup(c, QS_SCHEMA_PROPKEY, mv.u.map->keys[k], &key_id)) continue;
            } else if (!schema_intern(c, QS_SCHEMA_PROPKEY, mv.u.map->keys[k], &key_id)) {
                return false;
            }
            if (!set_prop(c, target, key_id, v)) return false;
        }
        return true;
    }
    cx tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.kind = CX_CONST;
    tmp.v = mv;
    if (!build_props(c, 0, NULL, NULL, &tmp, &np)) return false;
    if (kind == AST_SET_REPLACE) {
        /* remove every current property not in the new map */
        qv_props *cur;
        if (target.type == QV_NODE) {
            qv_node fresh = *target.u.node;
            fresh.loaded = false;
            if (!load_node(c, &fresh)) return false;
            cur = qctx_alloc(c, sizeof *cur);
            if (cur == NULL) return false;
            *cur = fresh.props;
        } else {
            qv_edge fresh = *target.u.edge;
            fresh.loaded = false;
            if (!load_edge(c, &fresh)) return false;
            cur = qctx_alloc(c, sizeof *cur);
            if (cur == NULL) return false;
            *cur = fresh.props;
        }
        if (!qctx_work(c, (uint64_t)cur->count * np.count / 16)) return false;
        for (uint32_t k = 0; k < cur->count; k++) {
            bool keep = false;
            for (uint32_t j = 0; j < np.count; j++)
                if (np.key_ids[j] == cur->key_ids[k]) keep = true;
            if (!keep && !set_prop(c, target, cur->key_ids[k], qv_null())) return false;
        }
    }
    for (uint32_t k = 0; k < np.count; k++)
        if (!set_prop(c, target, np.key_ids[k], np.values[k])) return false;
    return true;
}

static bool set_row(qctx *c, set_spec *s, bool remove) {
    for (uint32_t i = 0; i < s->count; i++)
        if (!set_item(c, s, i, remove)) return false;
    return true;
}

/* Drain the child into the write buffer (once). */
static bool write_fill(qctx *c, op *o) {
    if (o->started) return true;
    o->started = true;
    memset(&o->u.write.rows, 0, sizeof o->u.write.rows);
    o->u.write.pos = 0;
    while (op_next(c, o->child))
        if (!rowbuf_push(c, &o->u.write.rows, c->row, c->slot_count)) return false;
    return !c->failed;
}

static bool write_restore(qctx *c, op *o) {
    if (o->u.write.pos >= o->u.write.rows.count) return false;
    memcpy(c->row, o->u.write.rows.data + o->u.write.pos * c->slot_count, sizeof(qv_value) * c->slot_count);
    o->u.write.pos++;
    return true;
}

static bool create_next(qctx *c, op *o) {
    if (!write_fill(c, o)) return false;
    if (!write_restore(c, o)) return false;
    return create_row(c, &o->u.write.create);
}

static bool set_next(qctx *c, op *o) {
    if (!write_fill(c, o)) return false;
    if (!write_restore(c, o)) return false;
    return set_row(c, &o->u.write.set, o->kind == OP_REMOVE);
}

/* Collect the relationship ids of a node (both directions). */
static bool node_edges(qctx *c, uint64_t node, uint64_t **ids, uint32_t *count) {
    uint32_t cap = 16, n = 0;
    uint64_t *a = qctx_alloc(c, sizeof(uint64_t) * cap);
    if (a == NULL) return false;
    for (int d = 0; d < 2; d++) {
        if (!qctx_work(c, QUERY_WORK_STORAGE_READ_UNITS)) return false;
        qs_iter *it = qs_scan_adj(c->view, c->graph, node, d == 0 ? QS_DIR_OUT : QS_DIR_IN, QS_TYPE_ANY);
        if (it == NULL) continue;
        qs_item item;
        while (qs_iter_next(it, &item)) {
            if (!qctx_work(c, QUERY_WORK_ITERATOR_STEP_UNITS)) {
                qs_iter_free(it);
                return false;
            }
            if (n == cap) {
                uint64_t *na = q_arena_realloc(c->a, a, sizeof(uint64_t) * cap, sizeof(uint64_t) * cap * 2);
                if (na == NULL) {
                    qs_iter_free(it);
                    return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
                }
                a = na;
                cap *= 2;
            }
            a[n++] = item.edge_id;
        }
        qs_iter_free(it);
    }
    *ids = a;
    *count = n;
    return true;
}

static bool delete_edge(qctx *c, uint64_t id) {
    if (!qctx_work(c, QUERY_WORK_ENTITY_DELETE_UNITS)) return false;
    int rc = qs_edge_delete(c->txn, c->graph, id);
    if (rc == QS_NOT_FOUND) return true;
    if (rc != QS_OK) return storage_err(c, rc, "Delete relationship");
    c->stats->relationships_deleted++;
    return true;
}

static bool delete_all(qctx *c, op *o) {
    rowbuf nodes = {0, 0, NULL}, edges = {0, 0, NULL};
    for (uint64_t r = 0; r < o->u.write.rows.count; r++) {
        memcpy(c->row, o->u.write.rows.data + r * c->slot_count, sizeof(qv_value) * c->slot_count);
        for (uint32_t i = 0; i < o->u.write.expr_count; i++) {
            qv_value v = cx_eval(c, o->u.write.exprs[i]);
            if (c->failed) return false;
            switch ((qv_type)v.type) {
            case QV_NULL: break;
            case QV_NODE:
                if (!rowbuf_push(c, &nodes, &v, 1)) return false;
                break;
            case QV_EDGE:
                if (!rowbuf_push(c, &edges, &v, 1)) return false;
                break;
            case QV_PATH:
                if (!qctx_work(c, v.u.path->node_count)) return false;
                for (uint32_t k = 0; k < v.u.path->node_count; k++) {
                    qv_value nv;
                    nv.type = QV_NODE;
                    nv.u.node = v.u.path->nodes[k];
                    if (!rowbuf_push(c, &nodes, &nv, 1)) return false;
                    if (k + 1 < v.u.path->node_count) {
                        qv_value ev;
                        ev.type = QV_EDGE;
                        ev.u.edge = v.u.path->edges[k];
                        if (!rowbuf_push(c, &edges, &ev, 1)) return false;
                    }
                }
                break;
            default:
                return qctx_fail(c, QUERY_ERR_RUNTIME, "Delete type mismatch, expecting either Node or Relationship.");
            }
        }
    }
    for (uint64_t i = 0; i < edges.count; i++)
        if (!delete_edge(c, edges.data[i].u.edge->id)) return false;
    for (uint64_t i = 0; i < nodes.count; i++) {
        uint64_t id = nodes.data[i].u.node->id;
        if (!qctx_work(c, QUERY_WORK_STORAGE_READ_UNITS)) return false;
        if (!qs_node_exists(c->view, c->graph, id)) continue;
        if (!qctx_work(c, QUERY_WORK_ENTITY_DELETE_UNITS)) return false;
        if (o->u.write.detach) {
            uint64_t *ids = NULL;
            uint32_t n = 0;
            if (!node_edges(c, id, &ids, &n)) return false;
            for (uint32_t k = 0; k < n; k++)
                if (!delete_edge(c, ids[k])) return false;
        }
        int rc = qs_node_delete(c->txn, c->graph, id);
        if (rc == QS_NOT_FOUND) continue;
        if (rc == QS_INVALID)
            return qctx_fail(c, QUERY_ERR_RUNTIME,
                             "Cannot delete node<%" PRIu64 ">, because it still has relationships. To delete this node, you "
                             "must first delete its relationships.",
                             id);
        if (rc != QS_OK) return storage_err(c, rc, "Delete node");
        c->stats->nodes_deleted++;
    }
    return true;
}

static bool delete_next(qctx *c, op *o) {
    if (!o->started) {
        if (!write_fill(c, o)) return false;
        if (!delete_all(c, o)) return false;
    }
    return write_restore(c, o);
}

/* MERGE: for each input row, match the pattern; emit every match (after ON
 * MATCH) or create it once (then ON CREATE).  Rows are handled one at a time
 * so that a later row sees what an earlier one created; the matches of one
 * row are collected before ON MATCH writes so the writes cannot disturb the
 * inner iterators. */
static bool merge_next(qctx *c, op *o) {
    if (!write_fill(c, o)) return false;
    for (;;) {
        if (o->u.write.merge_have_input) {
            if (o->u.write.mpos < o->u.write.matches.count) {
                memcpy(c->row, o->u.write.matches.data + o->u.write.mpos * c->slot_count, sizeof(qv_value) * c->slot_count);
                o->u.write.mpos++;
                if (!set_row(c, &o->u.write.on_match, false)) return false;
                return true;
            }
            o->u.write.merge_have_input = false;
        }
        if (!write_restore(c, o)) return false;
        op_reset(c, o->inner);
        memset(&o->u.write.matches, 0, sizeof o->u.write.matches);
        o->u.write.mpos = 0;
        while (op_next(c, o->inner))
            if (!rowbuf_push(c, &o->u.write.matches, c->row, c->slot_count)) return false;
        if (c->failed) return false;
        op_reset(c, o->inner);
        if (o->u.write.matches.count == 0) {
            memcpy(c->row, o->u.write.rows.data + (o->u.write.pos - 1) * c->slot_count, sizeof(qv_value) * c->slot_count);
            if (!create_row(c, &o->u.write.create)) return false;
            if (!set_row(c, &o->u.write.on_create, false)) return false;
            return true;
        }
        o->u.write.merge_have_input = true;
    }
}

static bool index_ddl_next(qctx *c, op *o) {
    if (!op_next(c, o->child)) return false;
    for (uint32_t i = 0; i < o->u.ddl.prop_count; i++) {
        qv_str prop = o->u.ddl.props[i];
        uint32_t label_id, key_id;
        int rc;
        if (o->u.ddl.drop) {
            if (!schema_lookup(c, QS_SCHEMA_LABEL, o->u.ddl.label, &label_id) ||
                !schema_lookup(c, QS_SCHEMA_PROPKEY, prop, &key_id) ||
                (rc = qs_index_drop(c->txn, c->graph, label_id, key_id)) == QS_NOT_FOUND)
                return qctx_fail(c, QUERY_ERR_RUNTIME, "Unable to drop index on :%.*s(%.*s): no such index.",
                                 (int)o->u.ddl.label.len, o->u.ddl.label.ptr, (int)prop.len, prop.ptr);
            if (rc != QS_OK) return storage_err(c, rc, "Drop index");
            c->stats->indices_deleted++;
        } else {
            if (!schema_intern(c, QS_SCHEMA_LABEL, o->u.ddl.label, &label_id)) return false;
            if (!schema_intern(c, QS_SCHEMA_PROPKEY, prop, &key_id)) return false;
            /* creating the index fills it: one entry per node of the label */
            if (!qctx_work(c, QUERY_WORK_ENTITY_WRITE_UNITS +
                                  qs_label_count(c->view, c->graph, label_id) * (uint64_t)QUERY_WORK_PROPERTY_WRITE_UNITS))
                return false;
            rc = qs_index_create(c->txn, c->graph, label_id, key_id);
            if (rc == QS_EXISTS)
                return qctx_fail(c, QUERY_ERR_RUNTIME, "Attribute '%.*s' is already indexed", (int)prop.len, prop.ptr);
            if (rc != QS_OK) return storage_err(c, rc, "Create index");
            c->stats->indices_created++;
        }
    }
    return false; /* DDL yields no rows */
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

static bool op_next_kind(qctx *c, op *o);

/* Every row an operator returns costs one work unit (engine.h); the chain
 * recursion is checked against the stack budget. */
bool op_next(qctx *c, op *o) {
    QUIVER_ASSERT(c != NULL && o != NULL && c->row != NULL);
    QUIVER_ASSERT(!c->admission); /* admission plans, never executes */
    if (c->failed || !QCTX_STACK_OK(c)) return false;
    return op_next_kind(c, o) && qctx_tick(c);
}

static bool op_next_kind(qctx *c, op *o) {
    switch ((op_kind)o->kind) {
    case OP_ARGUMENT:
        if (o->started) return false;
        o->started = true;
        return true;
    case OP_SCAN_ALL:
    case OP_SCAN_LABEL:
    case OP_SCAN_INDEX:
    case OP_SEEK_ID: return scan_next(c, o);
    case OP_EXPAND: return expand_next(c, o);
    case OP_VAREXPAND: return varexpand_next(c, o);
    case OP_FILTER:
        while (op_next(c, o->child)) {
            if (cx_truth(c, o->u.filter.pred)) return true;
            if (c->failed) return false;
        }
        return false;
    case OP_PROJECT: return project_next(c, o);
    case OP_AGGREGATE:
        if (!o->started) {
            o->started = true;
            if (!agg_run(c, o)) return false;
        }
        return agg_emit(c, o);
    case OP_DISTINCT: return distinct_next(c, o);
    case OP_SORT: return sort_next(c, o);
    case OP_SKIP: return skip_next(c, o);
    case OP_LIMIT: return limit_next(c, o);
    case OP_UNWIND: return unwind_next(c, o);
    case OP_OPTIONAL: return optional_next(c, o);
    case OP_CREATE: return create_next(c, o);
    case OP_MERGE: return merge_next(c, o);
    case OP_SET:
    case OP_REMOVE: return set_next(c, o);
    case OP_DELETE: return delete_next(c, o);
    case OP_CALL: return call_next(c, o);
    case OP_INDEX_DDL: return index_ddl_next(c, o);
    }
    return false;
}
