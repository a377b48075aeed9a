/*
 * query.c -- entry points of the query engine (query.h): parse, check,
 * plan, execute and materialise one statement.
 *
 * Two arenas per statement: the query arena (AST, plan, intermediate
 * values; freed when the call returns) and the result's arena (only what
 * the reply needs).  Materialisation copies every cell into the result
 * arena and loads entities completely -- labels, type and property key
 * names included -- so the reply encoder never touches storage and the
 * result may cross threads (query.h).
 *
 * UNION: each part is planned and run on its own; UNION ALL concatenates,
 * UNION removes duplicate rows (first-seen order).
 *
 * EXPLAIN never executes anything (not even a write): the result has one
 * column "plan" and one row per plan line, FalkorDB style (root first,
 * children indented by four spaces).
 *
 * Guards (engine.h): every run sets up the work budget, the deadline and
 * the stack floor (qctx_guard_init), gives its two arenas one shared byte
 * budget (query_request.memory_max_bytes), and reports a failed malloc --
 * in either arena, the parser, a traversal or PCRE2 -- as
 * query_result.out_of_memory.  query_admit parses and plans exactly as a
 * run does, without storage (every label unknown, no index), so a
 * statement it admits differs from a run only in what needs data.
 *
 * Per-statement overhead (a point lookup runs in a few microseconds, so
 * malloc and re-parsing show):
 *   - The query arena is per thread and reused: its first block is made
 *     QUERY_ARENA_KEEP_SIZE_BYTES big once, and q_arena_reset after each
 *     statement keeps exactly that block (arena.h), so a small statement
 *     mallocs nothing for its AST, plan and intermediate values; a big one
 *     gets more blocks, freed when it ends.  A pthread key destructor frees
 *     the arena when the thread exits.
 *   - query_classify (the router's parse, on the network thread) remembers
 *     the classification of the last few short texts per thread: the
 *     answer is a pure function of the text, and clients repeat the same
 *     text (parameters go in the CYPHER prefix or in literals).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/qassert.h"
#include "engine.h"
#include "parser.h"

#define QUERY_READ_ONLY_ERROR "graph.RO_QUERY is to be executed only on read-only queries"
#define QUERY_EMPTY_KEY_ERROR "Invalid graph operation on empty key"

/* Bytes of the per-thread query arena's first block, kept between
 * statements. */
#define QUERY_ARENA_KEEP_SIZE_BYTES (64u * 1024)
/* Classifications remembered per thread, and the longest text remembered. */
#define QUERY_CLASSIFY_CACHE_COUNT 8u
#define QUERY_CLASSIFY_CACHE_TEXT_SIZE_MAX_BYTES 480u

typedef struct thread_arena {
    q_arena a;
    bool busy; /* a statement is using it (a nested run gets its own) */
} thread_arena;

static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_destroy(void *p) {
    thread_arena *ta = p;
    QUIVER_ASSERT(!ta->busy);
    q_arena_free(&ta->a);
    free(ta);
}

static void arena_key_init(void) {
    if (pthread_key_create(&arena_key, arena_destroy) != 0) QUIVER_FATAL("pthread_key_create failed");
}

/* The calling thread's query arena, empty, or NULL when it is busy or
 * cannot be made (the caller then uses a fresh arena). */
static thread_arena *arena_acquire(void) {
    pthread_once(&arena_once, arena_key_init);
    thread_arena *ta = pthread_getspecific(arena_key);
    if (ta == NULL) {
        ta = malloc(sizeof *ta);
        if (ta == NULL) return NULL;
        q_arena_init(&ta->a, QUIVER_QUERY_MEMORY_MAX_BYTES);
        ta->busy = false;
        /* the first block is the one q_arena_reset keeps: make it big */
        if (q_arena_alloc(&ta->a, QUERY_ARENA_KEEP_SIZE_BYTES) == NULL || pthread_setspecific(arena_key, ta) != 0) {
            q_arena_free(&ta->a);
            free(ta);
            return NULL;
        }
        q_arena_reset(&ta->a);
    }
    if (ta->busy) return NULL;
    QUIVER_ASSERT(ta->a.used_bytes == 0);
    ta->busy = true;
    ta->a.size_max_bytes = QUIVER_QUERY_MEMORY_MAX_BYTES; /* callers may lower it */
    ta->a.budget = NULL;
    return ta;
}

static void arena_release(thread_arena *ta) {
    QUIVER_ASSERT(ta->busy);
    q_arena_reset(&ta->a);
    ta->busy = false;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void result_error(query_result *r, query_status st, const char *msg) {
    r->status = st;
    size_t n = strlen(msg);
    r->error = q_arena_strndup(&r->arena, msg, n);
    if (r->error == NULL) r->error = (char *)"out of memory";
    r->column_count = 0;
    r->row_count = 0;
    r->cells = NULL;
}

/* ------------------------------------------------------------------ */
/* Materialisation                                                     */
/* ------------------------------------------------------------------ */

typedef struct name_cache {
    uint32_t cap;
    qv_str *names;          /* in the result arena; ptr NULL = not yet */
} name_cache;

typedef struct mat {
    qctx *c;
    q_arena *ra;
    name_cache cache[3];
} mat;

static bool cached_name(mat *m, qs_schema_kind kind, uint32_t id, qv_str *out) {
    name_cache *nc = &m->cache[kind];
    if (id >= nc->cap) {
        uint32_t ncap = nc->cap ? nc->cap : 16;
        while (ncap <= id) ncap *= 2;
        qv_str *nn = q_arena_calloc(m->c->a, ncap, sizeof(qv_str));
        if (nn == NULL) return qctx_fail(m->c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
        if (nc->cap) memcpy(nn, nc->names, sizeof(qv_str) * nc->cap);
        nc->names = nn;
        nc->cap = ncap;
    }
    if (nc->names[id].ptr == NULL) {
        qv_str s = {"", 0};
        if (!m->c->graph_missing) qs_schema_name(m->c->view, m->c->graph, kind, id, &s);
        char *p = q_arena_strndup(m->ra, s.ptr, s.len);
        if (p == NULL) return qctx_fail(m->c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
        nc->names[id].ptr = p;
        nc->names[id].len = s.len;
    }
    *out = nc->names[id];
    return true;
}

static bool mat_value(mat *m, qv_value v, qv_value *out, uint32_t depth);

static bool mat_props(mat *m, qv_props *p) {
    if (p->count == 0) {
        p->keys = NULL;
        return true;
    }
    p->keys = q_arena_alloc(m->ra, sizeof(qv_str) * p->count);
    if (p->keys == NULL) return qctx_fail(m->c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
    for (uint32_t i = 0; i < p->count; i++)
        if (!cached_name(m, QS_SCHEMA_PROPKEY, p->key_ids[i], &p->keys[i])) return false;
    return true;
}

static bool mat_node(mat *m, const qv_node *in, qv_node **out) {
    qctx *c = m->c;
    qv_node *n = q_arena_alloc(m->ra, sizeof *n);
    if (n == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
    memset(n, 0, sizeof *n);
    n->id = in->id;
    n->loaded = true;
    qs_node_rec rec;
    if (!qctx_work(c, QUERY_WORK_STORAGE_READ_UNITS)) return false;
    int rc = c->graph_missing ? QS_NOT_FOUND : qs_node_get(c->view, c->graph, in->id, m->ra, &rec);
    if (rc == QS_OK) {
        n->label_count = rec.label_count;
        n->label_ids = rec.label_ids;
        n->props = rec.props;
        if (n->label_count) {
            n->label_names = q_arena_alloc(m->ra, sizeof(qv_str) * n->label_count);
            if (n->label_names == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
            for (uint32_t i = 0; i < n->label_count; i++)
                if (!cached_name(m, QS_SCHEMA_LABEL, n->label_ids[i], &n->label_names[i])) return false;
        }
        if (!mat_props(m, &n->props)) return false;
    } else if (rc != QS_NOT_FOUND) {
        return qctx_fail(c, QUERY_ERR_RUNTIME, "Could not read node %" PRIu64, in->id);
    }
    *out = n;
    return true;
}

static bool mat_edge(mat *m, const qv_edge *in, qv_edge **out) {
    qctx *c = m->c;
    qv_edge *e = q_arena_alloc(m->ra, sizeof *e);
    if (e == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
    memset(e, 0, sizeof *e);
    e->id = in->id;
    e->src_id = in->src_id;
    e->dst_id = in->dst_id;
    e->type_id = in->type_id;
    e->loaded = true;
    qs_edge_rec rec;
    if (!qctx_work(c, QUERY_WORK_STORAGE_READ_UNITS)) return false;
    int rc = c->graph_missing ? QS_NOT_FOUND : qs_edge_get(c->view, c->graph, in->id, m->ra, &rec);
    if (rc == QS_OK) {
        e->type_id = rec.type_id;
        e->src_id = rec.src_id;
        e->dst_id = rec.dst_id;
        e->props = rec.props;
        if (!mat_props(m, &e->props)) return false;
    } else if (rc != QS_NOT_FOUND) {
        return qctx_fail(c, QUERY_ERR_RUNTIME, "Could not read relationship %" PRIu64, in->id);
    }
    if (!cached_name(m, QS_SCHEMA_RELTYPE, e->type_id, &e->type_name)) return false;
    *out = e;
    return true;
}

static bool mat_value(mat *m, qv_value v, qv_value *out, uint32_t depth) {
    qctx *c = m->c;
    if (depth > QUIVER_VALUE_DEPTH_MAX) return qctx_fail(c, QUERY_ERR_LIMIT, "Value nesting exceeds %u", QUIVER_VALUE_DEPTH_MAX);
    if (!qctx_tick(c)) return false;
    *out = v;
    switch ((qv_type)v.type) {
    case QV_NULL:
    case QV_BOOL:
    case QV_INT:
    case QV_DOUBLE: return true;
    case QV_STRING: {
        if (!qctx_work_bytes(c, v.u.s.len)) return false;
        char *s = q_arena_strndup(m->ra, v.u.s.ptr, v.u.s.len);
        if (s == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
        out->u.s.ptr = s;
        return true;
    }
    case QV_LIST: {
        qv_list *l = q_arena_alloc(m->ra, sizeof *l);
        if (l == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
        *l = *v.u.list; /* count, depth, elements */
        l->items = q_arena_alloc(m->ra, sizeof(qv_value) * (l->count ? l->count : 1));
        if (l->items == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
        for (uint32_t i = 0; i < l->count; i++)
            if (!mat_value(m, v.u.list->items[i], &l->items[i], depth + 1)) return false;
        out->u.list = l;
        return true;
    }
    case QV_MAP: {
        qv_map *mp = q_arena_alloc(m->ra, sizeof *mp);
        if (mp == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
        *mp = *v.u.map; /* count, depth, elements */
        mp->keys = q_arena_alloc(m->ra, sizeof(qv_str) * (mp->count ? mp->count : 1));
        mp->values = q_arena_alloc(m->ra, sizeof(qv_value) * (mp->count ? mp->count : 1));
        if (mp->keys == NULL || mp->values == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
        for (uint32_t i = 0; i < mp->count; i++) {
            char *s = q_arena_strndup(m->ra, v.u.map->keys[i].ptr, v.u.map->keys[i].len);
            if (s == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
            mp->keys[i].ptr = s;
            mp->keys[i].len = v.u.map->keys[i].len;
            if (!mat_value(m, v.u.map->values[i], &mp->values[i], depth + 1)) return false;
        }
        out->u.map = mp;
        return true;
    }
    case QV_NODE: return mat_node(m, v.u.node, &out->u.node);
    case QV_EDGE: return mat_edge(m, v.u.edge, &out->u.edge);
    case QV_PATH: {
        const qv_path *in = v.u.path;
        qv_path *p = q_arena_alloc(m->ra, sizeof *p);
        if (p == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
        p->node_count = in->node_count;
        p->nodes = q_arena_alloc(m->ra, sizeof(qv_node *) * (in->node_count ? in->node_count : 1));
        p->edges = q_arena_alloc(m->ra, sizeof(qv_edge *) * (in->node_count ? in->node_count : 1));
        if (p->nodes == NULL || p->edges == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
        for (uint32_t i = 0; i < in->node_count; i++) {
            if (!mat_node(m, in->nodes[i], &p->nodes[i])) return false;
            if (i + 1 < in->node_count && !mat_edge(m, in->edges[i], &p->edges[i])) return false;
        }
        out->u.path = p;
        return true;
    }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Running                                                             */
/* ------------------------------------------------------------------ */

typedef struct cells {
    qv_value *data;
    uint64_t count, cap;    /* values */
} cells;

static bool cells_push(qctx *c, cells *cl, const qv_value *vals, uint32_t n) {
    if (cl->count + n > cl->cap) {
        uint64_t ncap = cl->cap ? cl->cap * 2 : 64;
        while (ncap < cl->count + n) ncap *= 2;
        if (!qctx_reserve(c, sizeof(qv_value) * ncap)) return false;
        qv_value *nd = q_arena_realloc(c->a, cl->data, sizeof(qv_value) * cl->cap, sizeof(qv_value) * ncap);
        if (nd == NULL) return qctx_fail(c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
        cl->data = nd;
        cl->cap = ncap;
    }
    if (n) memcpy(cl->data + cl->count, vals, sizeof(qv_value) * n);
    cl->count += n;
    return true;
}

/* Evaluate the CYPHER prefix parameters (constant expressions). */
static bool eval_params(qctx *c, const ast_query *q) {
    c->param_count = q->param_count;
    if (q->param_count == 0) return true;
    c->param_names = qctx_alloc(c, sizeof(qv_str) * q->param_count);
    c->param_values = qctx_alloc(c, sizeof(qv_value) * q->param_count);
    if (c->param_names == NULL || c->param_values == NULL) return false;
    for (uint32_t i = 0; i < q->param_count; i++) {
        c->param_names[i] = q->params[i].name;
        c->param_count = i; /* a parameter may not refer to later ones */
        if (!plan_eval_const(c, q->params[i].value, &c->param_values[i])) return false;
    }
    c->param_count = q->param_count;
    return true;
}

/* Parse error as the reply shows it: the message, then the position. */
static void format_parse_error(const parse_error *pe, char *out, size_t size_bytes) {
    if (pe->line > 0) snprintf(out, size_bytes, "%s (line %u, column %u)", pe->message, pe->line, pe->column);
    else snprintf(out, size_bytes, "%s", pe->message);
}

/* Evaluate the parameters and plan every UNION part (with the union's
 * column check).  *plans / *plan_count hold what was planned even on
 * failure (op_close them).  False with c's error. */
static bool plan_statement(qctx *c, const ast_query *ast, plan **plans, uint32_t *plan_count) {
    *plans = NULL;
    *plan_count = 0;
    if (!eval_params(c, ast)) return false;
    plan *ps = qctx_alloc(c, sizeof(plan) * ast->part_count);
    if (ps == NULL) return false;
    *plans = ps;
    for (uint32_t i = 0; i < ast->part_count; i++) {
        if (!plan_single(c, &ast->parts[i], &ps[i])) return false;
        *plan_count = i + 1;
        if (i > 0) {
            bool same = ps[i].column_count == ps[0].column_count;
            for (uint32_t k = 0; same && k < ps[i].column_count; k++)
                same = ps[i].columns[k].len == ps[0].columns[k].len &&
                       memcmp(ps[i].columns[k].ptr, ps[0].columns[k].ptr, ps[0].columns[k].len) == 0;
            if (!same)
                return qctx_fail(c, QUERY_ERR_SEMANTIC, "All sub queries in a UNION must have the same column names.");
        }
    }
    return true;
}

static query_result *run(qs_view *view, qs_txn *txn, const query_request *req) {
    uint64_t t0 = qctx_now_ns();
    query_result *r = calloc(1, sizeof *r);
    if (r == NULL) QUIVER_FATAL("out of memory allocating a query result");
    /* one byte budget for both arenas; counted in bytes handed out, so it
     * trips at the same allocation on every replica */
    size_t mem_max = req->memory_max_bytes != 0 && req->memory_max_bytes < SIZE_MAX ? (size_t)req->memory_max_bytes
                                                                                      : QUIVER_QUERY_MEMORY_MAX_BYTES;
    q_arena_budget budget = {0, mem_max};
    q_arena_init(&r->arena, mem_max);
    r->arena.budget = &budget;
    thread_arena *ta = arena_acquire();
    q_arena own;
    q_arena_init(&own, mem_max);
    q_arena *qa = ta ? &ta->a : &own;
    qa->size_max_bytes = mem_max;
    qa->budget = &budget;

    qctx c;
    memset(&c, 0, sizeof c);
    c.a = qa;
    c.ra = &r->arena;
    c.view = view;
    c.txn = txn;
    c.req = req;
    c.stats = &r->stats;
    uint64_t sm = req->seed;
    for (int i = 0; i < 4; i++) c.rng[i] = splitmix64(&sm);
    c.hash_seed = splitmix64(&sm);
    /* writes ignore TIMEOUT: they must stop at the same point everywhere */
    qctx_guard_init(&c, req->work_max, txn == NULL ? req->timeout_ms : 0, t0);

    ast_query ast;
    parse_error perr;
    memset(&perr, 0, sizeof perr);
    plan *plans = NULL;
    uint32_t plan_count = 0;
    if (req->text_len > QUIVER_QUERY_TEXT_SIZE_MAX_BYTES) {
        char msg[128];
        snprintf(msg, sizeof msg, "ERR query text longer than %llu bytes (the limit)",
                 (unsigned long long)QUIVER_QUERY_TEXT_SIZE_MAX_BYTES);
        result_error(r, QUERY_ERR_LIMIT, msg);
        goto done;
    }
    if (cypher_parse(req->text, req->text_len, qa, &ast, &perr) != 0) {
        char msg[400];
        format_parse_error(&perr, msg, sizeof msg);
        result_error(r, perr.limit ? QUERY_ERR_LIMIT : QUERY_ERR_SYNTAX, msg);
        goto done;
    }
    bool explain = req->explain || ast.explain;
    c.explain = explain; /* operator descriptions only when shown */
    if (ast.writes && (req->read_only || (txn == NULL && !explain))) {
        result_error(r, QUERY_ERR_READ_ONLY, QUERY_READ_ONLY_ERROR);
        goto done;
    }
    /* the graph */
    if (req->graph_len == 0 || req->graph_len > QUIVER_GRAPH_NAME_SIZE_MAX_BYTES) {
        result_error(r, QUERY_ERR_RUNTIME, "Invalid graph name");
        goto done;
    }
    int rc = qs_graph_lookup(view, req->graph, req->graph_len, &c.graph);
    if (rc == QS_NOT_FOUND) {
        if (txn != NULL && !explain) {
            rc = qs_graph_create(txn, req->graph, req->graph_len, &c.graph);
            if (rc != QS_OK && rc != QS_EXISTS) {
                result_error(r, rc == QS_LIMIT ? QUERY_ERR_LIMIT : QUERY_ERR_RUNTIME, "Could not create the graph");
                goto done;
            }
        } else if (req->read_only) {
            result_error(r, QUERY_ERR_NO_GRAPH, QUERY_EMPTY_KEY_ERROR);
            goto done;
        } else {
            c.graph_missing = true;
            c.graph = UINT32_MAX;
        }
    } else if (rc != QS_OK) {
        result_error(r, QUERY_ERR_RUNTIME, "Could not open the graph");
        goto done;
    }

    if (!plan_statement(&c, &ast, &plans, &plan_count)) goto fail;

    if (explain) {
        qv_str *lines = NULL;
        uint32_t count = 0, cap = 0;
        for (uint32_t i = 0; i < plan_count; i++) {
            if (plan_count > 1 && i == 0) {
                /* FalkorDB shows a Union root over the parts */
                lines = qctx_alloc(&c, sizeof(qv_str) * 16);
                if (lines == NULL) goto fail;
                cap = 16;
                lines[count++] = (qv_str){"Results", 7};
                lines[count++] = (qv_str){"    Union", 9};
            }
            uint32_t first = count;
            if (!plan_explain(&c, &plans[i], &lines, &count, &cap)) goto fail;
            if (plan_count > 1) {
                /* indent the part below Union, dropping its own Results line */
                uint32_t w = first;
                for (uint32_t k = first; k < count; k++) {
                    if (lines[k].len == 7 && memcmp(lines[k].ptr, "Results", 7) == 0) continue;
                    char *s = qctx_alloc(&c, lines[k].len + 5);
                    if (s == NULL) goto fail;
                    memcpy(s, "    ", 4);
                    memcpy(s + 4, lines[k].ptr, lines[k].len);
                    lines[w].ptr = s;
                    lines[w].len = lines[k].len + 4;
                    w++;
                }
                count = w;
            }
        }
        r->column_count = 1;
        r->columns = q_arena_alloc(&r->arena, sizeof(qv_str));
        r->cells = q_arena_alloc(&r->arena, sizeof(qv_value) * (count ? count : 1));
        if (r->columns == NULL || r->cells == NULL) goto nomem;
        r->columns[0] = (qv_str){"plan", 4};
        for (uint32_t k = 0; k < count; k++) {
            char *s = q_arena_strndup(&r->arena, lines[k].ptr, lines[k].len);
            if (s == NULL) goto nomem;
            r->cells[k] = qv_string(s, lines[k].len);
        }
        r->row_count = count;
        goto done;
    }

    /* execute */
    {
        uint32_t ncol = plans[0].column_count;
        cells out = {NULL, 0, 0};
        bool dedupe = false;
        for (uint32_t i = 0; i + 1 < ast.part_count; i++)
            if (!ast.union_all[i]) dedupe = true;
        tupset seen;
        tupset_init(&seen, ncol);
        mat m;
        memset(&m, 0, sizeof m);
        m.c = &c;
        m.ra = &r->arena;
        qv_value *tmp = qctx_alloc(&c, sizeof(qv_value) * (ncol ? ncol : 1));
        if (tmp == NULL) goto fail;
        uint64_t rows = 0;
        for (uint32_t i = 0; i < plan_count; i++) {
            plan *p = &plans[i];
            c.slot_count = p->slot_count;
            c.row = q_arena_calloc(qa, p->slot_count ? p->slot_count : 1, sizeof(qv_value));
            if (c.row == NULL) {
                qctx_fail(&c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
                goto fail;
            }
            while (op_next(&c, p->root)) {
                for (uint32_t k = 0; k < ncol; k++)
                    if (!mat_value(&m, c.row[p->column_slots[k]], &tmp[k], 0)) goto fail;
                if (dedupe) {
                    bool inserted;
                    if (tupset_add(&c, &seen, tmp, &inserted) < 0) goto fail;
                    if (!inserted) continue;
                }
                if (!cells_push(&c, &out, tmp, ncol)) goto fail;
                if (++rows > QUIVER_QUERY_RESULT_ROWS_COUNT_MAX) {
                    qctx_fail(&c, QUERY_ERR_LIMIT, "Result exceeds the maximum of %u rows", QUIVER_QUERY_RESULT_ROWS_COUNT_MAX);
                    goto fail;
                }
            }
            if (c.failed) goto fail;
        }
        r->column_count = ncol;
        r->columns = q_arena_alloc(&r->arena, sizeof(qv_str) * (ncol ? ncol : 1));
        r->cells = q_arena_alloc(&r->arena, sizeof(qv_value) * (out.count ? out.count : 1));
        if (r->columns == NULL || r->cells == NULL) goto nomem;
        for (uint32_t k = 0; k < ncol; k++) {
            char *s = q_arena_strndup(&r->arena, plans[0].columns[k].ptr, plans[0].columns[k].len);
            if (s == NULL) goto nomem;
            r->columns[k] = qv_string(s, plans[0].columns[k].len).u.s;
        }
        if (out.count) memcpy(r->cells, out.data, sizeof(qv_value) * out.count);
        r->row_count = rows;
    }
    goto done;

nomem:
    qctx_fail(&c, QUERY_ERR_LIMIT, "Result exceeds the memory limit");
fail:
    if (!c.failed) qctx_fail(&c, QUERY_ERR_LIMIT, "Query's memory consumption exceeded capacity");
    result_error(r, c.status, c.err);
done:
    for (uint32_t i = 0; i < plan_count; i++)
        if (plans[i].root) op_close(&c, plans[i].root);
    for (uint32_t i = 0; i < c.sub_count; i++) op_close(&c, c.subs[i]);
    qre_release(&c);
    r->out_of_memory = c.out_of_memory || perr.out_of_memory || qa->malloc_failed || r->arena.malloc_failed;
    r->work = qctx_work_total(&c);
    r->arena.budget = NULL; /* the budget lives on this stack */
    qa->budget = NULL;
    if (ta) arena_release(ta);
    q_arena_free(&own);
    const query_stats *s = &r->stats;
    r->wrote = r->status == QUERY_OK &&
               (s->labels_added || s->labels_removed || s->nodes_created || s->nodes_deleted || s->properties_set ||
                s->properties_removed || s->relationships_created || s->relationships_deleted || s->indices_created ||
                s->indices_deleted);
    r->stats.execution_time_ms = (double)(qctx_now_ns() - t0) / 1e6;
    return r;
}

typedef struct classify_entry {
    bool valid;
    bool writes;
    uint32_t len;
    char text[QUERY_CLASSIFY_CACHE_TEXT_SIZE_MAX_BYTES];
} classify_entry;

static _Thread_local classify_entry classify_cache[QUERY_CLASSIFY_CACHE_COUNT];
/* Admissions remembered the same way (query_admit is, like classification,
 * a pure function of the text: no storage, limits compiled in).  Separate
 * from classify_cache: a text that parses may still fail admission. */
static _Thread_local classify_entry admit_cache[QUERY_CLASSIFY_CACHE_COUNT];

/* FNV-1a: the texts are short and only pick a cache entry. */
static uint32_t classify_slot(const char *text, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)text[i]) * 16777619u;
    return h % QUERY_CLASSIFY_CACHE_COUNT;
}

int query_classify(const char *text, size_t len, bool *writes, char *err, size_t err_size_bytes) {
    QUIVER_ASSERT(text != NULL || len == 0);
    QUIVER_ASSERT(writes != NULL);
    classify_entry *ce = NULL;
    if (len > 0 && len <= QUERY_CLASSIFY_CACHE_TEXT_SIZE_MAX_BYTES) {
        ce = &classify_cache[classify_slot(text, len)];
        if (ce->valid && ce->len == len && memcmp(ce->text, text, len) == 0) {
            *writes = ce->writes;
            return 0;
        }
    }
    thread_arena *ta = arena_acquire();
    q_arena own;
    q_arena_init(&own, QUIVER_QUERY_MEMORY_MAX_BYTES);
    q_arena *a = ta ? &ta->a : &own;
    ast_query q;
    parse_error pe;
    memset(&pe, 0, sizeof pe);
    int rc = cypher_parse(text, len, a, &q, &pe);
    if (rc != 0) {
        if (err && err_size_bytes) format_parse_error(&pe, err, err_size_bytes);
    } else {
        *writes = q.writes;
        if (ce != NULL) { /* only successes are remembered */
            ce->valid = true;
            ce->writes = q.writes;
            ce->len = (uint32_t)len;
            memcpy(ce->text, text, len);
        }
    }
    if (ta) arena_release(ta);
    q_arena_free(&own);
    return rc == 0 ? 0 : -1;
}

int query_admit(const char *text, size_t len, query_admission *out, char *err, size_t err_size_bytes) {
    QUIVER_ASSERT(out != NULL);
    QUIVER_ASSERT(text != NULL || len == 0);
    memset(out, 0, sizeof *out);
    /* Clients repeat short texts (parameters travel in the CYPHER prefix or
     * in literals): the loop thread admits every read and write, and a
     * point lookup's whole cost is a few microseconds, so remember the
     * last few successes per thread. */
    classify_entry *ce = NULL;
    if (len > 0 && len <= QUERY_CLASSIFY_CACHE_TEXT_SIZE_MAX_BYTES) {
        ce = &admit_cache[classify_slot(text, len)];
        if (ce->valid && ce->len == len && memcmp(ce->text, text, len) == 0) {
            out->writes = ce->writes;
            return 0;
        }
    }
    thread_arena *ta = arena_acquire();
    q_arena own;
    q_arena_init(&own, QUIVER_QUERY_MEMORY_MAX_BYTES);
    q_arena *a = ta ? &ta->a : &own;
    a->size_max_bytes = QUIVER_QUERY_MEMORY_MAX_BYTES;

    /* planning as a run does, without storage: no view, every label and
     * key unknown (graph_missing), so no index is chosen and no count read */
    static const query_request no_request; /* timestamp() 0, seed 0: only constants are evaluated */
    query_stats stats;
    memset(&stats, 0, sizeof stats);
    qctx c;
    memset(&c, 0, sizeof c);
    c.a = a;
    c.req = &no_request;
    c.stats = &stats;
    c.graph_missing = true;
    c.graph = UINT32_MAX;
    c.admission = true;
    qctx_guard_init(&c, 0, 0, 0);

    ast_query ast;
    parse_error perr;
    memset(&perr, 0, sizeof perr);
    plan *plans = NULL;
    uint32_t plan_count = 0;
    int rc = -1;
    char msg[sizeof c.err + 64];
    msg[0] = '\0';
    if (len > QUIVER_QUERY_TEXT_SIZE_MAX_BYTES) {
        snprintf(msg, sizeof msg, "ERR query text longer than %llu bytes (the limit)",
                 (unsigned long long)QUIVER_QUERY_TEXT_SIZE_MAX_BYTES);
    } else if (cypher_parse(text, len, a, &ast, &perr) != 0) {
        format_parse_error(&perr, msg, sizeof msg);
    } else if (!ast.writes && !ast.explain) {
        /* A read never reaches the log: the reader that runs it plans it
         * (and checks the planner's limits) anyway, so planning it here too
         * would only double the loop thread's work per read. */
        out->writes = false;
        rc = 0;
    } else if (!plan_statement(&c, &ast, &plans, &plan_count)) {
        snprintf(msg, sizeof msg, "%s", c.err);
    } else {
        out->writes = ast.writes;
        rc = 0;
        if (ce != NULL) { /* only successes are remembered */
            ce->valid = true;
            ce->writes = ast.writes;
            ce->len = (uint32_t)len;
            memcpy(ce->text, text, len);
        }
    }
    for (uint32_t i = 0; i < plan_count; i++)
        if (plans[i].root) op_close(&c, plans[i].root);
    for (uint32_t i = 0; i < c.sub_count; i++) op_close(&c, c.subs[i]);
    qre_release(&c);
    if (ta) arena_release(ta);
    q_arena_free(&own);
    if (rc != 0 && err != NULL && err_size_bytes > 0) snprintf(err, err_size_bytes, "%s", msg);
    return rc;
}

query_result *query_run_read(qs_view *view, const query_request *req) {
    QUIVER_ASSERT(view != NULL && req != NULL);
    return run(view, NULL, req);
}

query_result *query_run_write(qs_txn *txn, const query_request *req) {
    QUIVER_ASSERT(txn != NULL && req != NULL);
    return run(qs_txn_view(txn), txn, req);
}

void query_result_free(query_result *r) {
    if (r == NULL) return;
    q_arena_free(&r->arena);
    free(r);
}
