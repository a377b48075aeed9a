/*
 * value.h -- the data model shared by storage, the query engine and the
 * protocol: openCypher values (null, boolean, 64-bit integer, double, string,
 * list, map, node, relationship, path).
 *
 * Values are plain structs that point into an arena (arena.h); nothing here
 * owns memory by itself.  Whoever made the arena frees everything at once.
 * A qv_value is small (type + 16-byte union) and passed by value.
 *
 * Nodes and relationships carry their id and, once "loaded", their labels /
 * type and properties, both as schema ids (for FalkorDB's --compact replies)
 * and as names (for verbose replies).  Inside the executor an entity may be
 * unloaded (id only); the executor loads it before it leaves the engine, so a
 * result set never needs storage to be printed.
 *
 * Ordering and equality follow the openCypher 9 reference ("Comparability
 * and equality", "Ordering"): ORDER BY uses q_value_order (a total order,
 * null last); `=` uses q_value_equals (three-valued: null when either side
 * is null).
 *
 * Thread: values are immutable once built and may be read by any thread that
 * can see their arena.
 */
#ifndef QUIVER_VALUE_H
#define QUIVER_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

typedef enum qv_type {
    QV_NULL = 0,
    QV_BOOL,
    QV_INT,
    QV_DOUBLE,
    QV_STRING,
    QV_LIST,
    QV_MAP,
    QV_NODE,
    QV_EDGE,
    QV_PATH,
} qv_type;

/* A byte string, UTF-8, not necessarily NUL-terminated. */
typedef struct qv_str {
    const char *ptr;
    uint32_t len;
} qv_str;

typedef struct qv_value qv_value;
typedef struct qv_list qv_list;
typedef struct qv_map qv_map;
typedef struct qv_node qv_node;
typedef struct qv_edge qv_edge;
typedef struct qv_path qv_path;

struct qv_value {
    uint8_t type; /* qv_type */
    union {
        bool b;
        int64_t i;
        double d;
        qv_str s;
        qv_list *list;
        qv_map *map;
        qv_node *node;
        qv_edge *edge;
        qv_path *path;
    } u;
};

/* Lists and maps carry their nesting depth and their element count through
 * every level (qv_depth, qv_elements), set by whoever builds them: the
 * query engine refuses to build one over QUIVER_VALUE_DEPTH_MAX or
 * QUIVER_VALUE_ELEMENTS_COUNT_MAX (qv_shape_of), and charges the elements
 * as work when it walks one.  Values built elsewhere (decoders, tests) may
 * leave both 0; nothing outside the engine reads them.  New fields go last:
 * callers initialise {count, items} positionally. */
struct qv_list {
    uint32_t count;
    qv_value *items;
    uint32_t elements;  /* count + the elements of every item, recursively */
    uint8_t depth;      /* 1 + the deepest item's depth */
};

/* Keys are unique; order is insertion order (replies print maps in it). */
struct qv_map {
    uint32_t count;
    qv_str *keys;
    qv_value *values;
    uint32_t elements;  /* count + the elements of every value, recursively */
    uint8_t depth;      /* 1 + the deepest value's depth */
};

/* Properties of an entity: key ids ascending, names parallel. */
typedef struct qv_props {
    uint32_t count;
    uint32_t *key_ids;
    qv_str *keys;      /* names; filled when loaded for a reply */
    qv_value *values;  /* never QV_NULL: a null property is an absent one */
} qv_props;

struct qv_node {
    uint64_t id;
    bool loaded;             /* labels and props below are valid */
    uint32_t label_count;
    uint32_t *label_ids;     /* ascending */
    qv_str *label_names;     /* parallel to label_ids */
    qv_props props;
};

struct qv_edge {
    uint64_t id;
    uint64_t src_id;
    uint64_t dst_id;
    uint32_t type_id;
    bool loaded;             /* type_name and props valid */
    qv_str type_name;
    qv_props props;
};

/* n nodes and n-1 relationships, alternating from nodes[0]. */
struct qv_path {
    uint32_t node_count;
    qv_node **nodes;
    qv_edge **edges;
};

/* ---- constructors (no allocation except where an arena is taken) ---- */
static inline qv_value qv_null(void) { qv_value v; v.type = QV_NULL; v.u.i = 0; return v; }
static inline qv_value qv_bool(bool b) { qv_value v; v.type = QV_BOOL; v.u.i = 0; v.u.b = b; return v; }
static inline qv_value qv_int(int64_t i) { qv_value v; v.type = QV_INT; v.u.i = i; return v; }
static inline qv_value qv_double(double d) { qv_value v; v.type = QV_DOUBLE; v.u.d = d; return v; }
static inline qv_value qv_string(const char *p, uint32_t len) {
    qv_value v; v.type = QV_STRING; v.u.s.ptr = p; v.u.s.len = len; return v;
}
static inline bool qv_is_null(qv_value v) { return v.type == QV_NULL; }

/* Depth of v: 0 for a scalar or an entity, the stored depth of a list or
 * map (see qv_list). */
static inline uint32_t qv_depth(qv_value v) {
    return v.type == QV_LIST ? v.u.list->depth : v.type == QV_MAP ? v.u.map->depth : 0;
}

/* Elements of v through every level: 0 for a scalar or an entity. */
static inline uint32_t qv_elements(qv_value v) {
    return v.type == QV_LIST ? v.u.list->elements : v.type == QV_MAP ? v.u.map->elements : 0;
}

/* The shape of a list or map with these count elements: *depth and
 * *elements as qv_list defines them (64-bit: before the limit check).
 * O(count).  Returns false when the result would break
 * QUIVER_VALUE_DEPTH_MAX or QUIVER_VALUE_ELEMENTS_COUNT_MAX. */
bool qv_shape_of(const qv_value *items, uint32_t count, uint32_t *depth, uint64_t *elements);

/* Copy a string into the arena; returns a QV_NULL value with *ok = false
 * when the arena is full. */
qv_value qv_string_copy(q_arena *a, const char *p, size_t len, bool *ok);

/* Deep copy of v into arena a (strings, lists, maps, entities).  Returns
 * false when the arena is full.  Thread: the caller must own a.
 *
 * The recursive functions below (deep copy, equality, order, comparison,
 * hash) assert that they recurse at most QUIVER_VALUE_RECURSION_DEPTH_MAX
 * levels: values are built within QUIVER_VALUE_DEPTH_MAX, so a deeper one
 * is a broken invariant (fail-stop), never a stack overflow.  Their cost
 * is O(qv_elements) of the smaller argument (copy, hash: of v). */
bool qv_deep_copy(q_arena *a, qv_value v, qv_value *out);

/* ---- comparison (openCypher 9 semantics) ---- */

/* Equality for `=`: returns QV_BOOL, or QV_NULL when the answer is unknown
 * (either side null, or a list/map containing null where it matters).
 * Integers and doubles compare numerically (1 = 1.0 is true). */
qv_value qv_equals(qv_value a, qv_value b);

/* Total order for ORDER BY, DISTINCT and grouping: returns <0, 0, >0.
 * Types order as: map, node, relationship, list, path, string, boolean,
 * number, null (ascending); NaN sorts after other numbers. */
int qv_order(qv_value a, qv_value b);

/* Comparison for <, <=, >, >=: *out set to <0/0/>0 and true returned when the
 * two are comparable (numbers with numbers, strings with strings, booleans
 * with booleans, lists element-wise); false when the result is null. */
bool qv_compare(qv_value a, qv_value b, int *out);

/* Hash consistent with qv_order()==0 (1 and 1.0 hash alike).  Seeded,
 * deterministic across processes (never address-based). */
uint64_t qv_hash(qv_value v, uint64_t seed);

/* Counting variants for callers that budget their work (the query engine):
 * as above, adding to *work what the walk did -- 1 per pair of values (or
 * value, for the hash) visited, plus the string bytes read /
 * QV_WORK_STRING_BYTES_PER_UNIT, plus map key scans.  The count is a
 * function of the arguments only, so the same on every machine. */
#define QV_WORK_STRING_BYTES_PER_UNIT 64u
qv_value qv_equals_w(qv_value a, qv_value b, uint64_t *work);
int qv_order_w(qv_value a, qv_value b, uint64_t *work);
bool qv_compare_w(qv_value a, qv_value b, int *out, uint64_t *work);
uint64_t qv_hash_w(qv_value v, uint64_t seed, uint64_t *work);
/* What walking all of v costs in those units: 1 per value, nested ones
 * included, plus string bytes / QV_WORK_STRING_BYTES_PER_UNIT.  O(v). */
uint64_t qv_walk_cost(qv_value v);

/* Name of a type as openCypher prints it in errors: "Integer", "String"... */
const char *qv_type_name(qv_type t);

#endif
