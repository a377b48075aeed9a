/*
 * procedures.c -- the procedures reachable with CALL: db.labels(),
 * db.relationshipTypes(), db.propertyKeys() and db.indexes().
 *
 * FalkorDB's client libraries call the first three to map the schema ids
 * of --compact replies to names, so their column names (label,
 * relationshipType, propertyKey) and their row order (schema id order)
 * must match FalkorDB exactly.  Procedure names are case-insensitive.
 * db.indexes() reports the range indexes Quiver has, with FalkorDB's
 * column names (label, properties, types, options, language, stopwords,
 * entitytype, status).
 */
#include <string.h>
#include <strings.h>

#include "../common/qassert.h"
#include "engine.h"

static bool schema_rows(qctx *c, qs_schema_kind kind, qv_value **rows, uint32_t *count) {
    *rows = NULL;
    *count = 0;
    if (c->graph_missing) return true;
    uint32_t n = qs_schema_count(c->view, c->graph, kind);
    if (!qctx_work(c, n)) return false;
    qv_value *r = qctx_alloc(c, sizeof(qv_value) * (n ? n : 1));
    if (r == NULL) return false;
    uint32_t k = 0;
    for (uint32_t id = 0; id < n; id++) {
        qv_str name;
        if (qs_schema_name(c->view, c->graph, kind, id, &name) != QS_OK) continue;
        r[k++] = qv_string(name.ptr, name.len);
    }
    *rows = r;
    *count = k;
    return true;
}

static bool p_labels(qctx *c, qv_value *args, qv_value **rows, uint32_t *count) {
    (void)args;
    return schema_rows(c, QS_SCHEMA_LABEL, rows, count);
}

static bool p_reltypes(qctx *c, qv_value *args, qv_value **rows, uint32_t *count) {
    (void)args;
    return schema_rows(c, QS_SCHEMA_RELTYPE, rows, count);
}

static bool p_propkeys(qctx *c, qv_value *args, qv_value **rows, uint32_t *count) {
    (void)args;
    return schema_rows(c, QS_SCHEMA_PROPKEY, rows, count);
}

static qv_value one_list(qctx *c, qv_value v) {
    qv_list *l = qctx_alloc(c, sizeof *l);
    if (l == NULL) return qv_null();
    l->items = qctx_alloc(c, sizeof(qv_value));
    if (l->items == NULL) return qv_null();
    l->count = 1;
    l->items[0] = v;
    if (!qctx_seal_list(c, l)) return qv_null();
    qv_value r;
    r.type = QV_LIST;
    r.u.list = l;
    return r;
}

static bool p_indexes(qctx *c, qv_value *args, qv_value **rows, uint32_t *count) {
    (void)args;
    *rows = NULL;
    *count = 0;
    if (c->graph_missing) return true;
    uint32_t *labels, *keys, n;
    if (qs_index_list(c->view, c->graph, c->a, &labels, &keys, &n) != QS_OK) return true;
    if (!qctx_work(c, n)) return false;
    const uint32_t w = 8;
    qv_value *r = qctx_alloc(c, sizeof(qv_value) * w * (n ? n : 1));
    if (r == NULL) return false;
    for (uint32_t i = 0; i < n; i++) {
        qv_str ln = {"", 0}, kn = {"", 0};
        qs_schema_name(c->view, c->graph, QS_SCHEMA_LABEL, labels[i], &ln);
        qs_schema_name(c->view, c->graph, QS_SCHEMA_PROPKEY, keys[i], &kn);
        qv_value *row = r + (uint64_t)i * w;
        row[0] = qv_string(ln.ptr, ln.len);
        row[1] = one_list(c, qv_string(kn.ptr, kn.len));
        /* types: {prop: ["RANGE"]} */
        qv_map *m = qctx_alloc(c, sizeof *m);
        if (m == NULL) return false;
        m->count = 1;
        m->keys = qctx_alloc(c, sizeof(qv_str));
        m->values = qctx_alloc(c, sizeof(qv_value));
        if (m->keys == NULL || m->values == NULL) return false;
        m->keys[0] = kn;
        m->values[0] = one_list(c, qv_string("RANGE", 5));
        if (!qctx_seal_map(c, m)) return false;
        row[2].type = QV_MAP;
        row[2].u.map = m;
        qv_map *empty = qctx_alloc(c, sizeof *empty);
        if (empty == NULL) return false;
        memset(empty, 0, sizeof *empty);
        if (!qctx_seal_map(c, empty)) return false;
        row[3].type = QV_MAP;
        row[3].u.map = empty;
        row[4] = qv_string("english", 7);
        row[5] = qv_null();
        row[6] = qv_string("NODE", 4);
        row[7] = qv_string("OPERATIONAL", 11);
    }
    *rows = r;
    *count = n;
    return !c->failed;
}

static const proc_def PROCS[] = {
    {"db.labels", 0, 1, {"label"}, p_labels},
    {"db.relationshiptypes", 0, 1, {"relationshipType"}, p_reltypes},
    {"db.propertykeys", 0, 1, {"propertyKey"}, p_propkeys},
    {"db.indexes", 0, 8, {"label", "properties", "types", "options", "language", "stopwords", "entitytype", "status"}, p_indexes},
};

const proc_def *proc_lookup(qv_str name) {
    for (size_t i = 0; i < sizeof PROCS / sizeof PROCS[0]; i++)
        if (strlen(PROCS[i].name) == name.len && strncasecmp(PROCS[i].name, name.ptr, name.len) == 0) return &PROCS[i];
    return NULL;
}
