/*
 * ast.h -- the abstract syntax tree of an openCypher query, as produced by
 * the parser (parser.h) and consumed by the planner/executor.
 *
 * Grammar source: the openCypher 9 reference grammar (openCypher.org, "Cypher
 * Query Language Reference, Version 9") for the subset Quiver supports, plus
 * FalkorDB's `CYPHER name=value ...` parameter prefix and its index DDL
 * (`CREATE INDEX FOR (n:L) ON (n.p)`, `CREATE INDEX ON :L(p)`,
 * `DROP INDEX ON :L(p)`).
 *
 * Memory: every node of the tree, and every string in it, lives in the arena
 * passed to the parser; the tree is freed with that arena.  Strings are
 * unescaped (string literals) and not NUL-terminated (qv_str).
 *
 * Thread: a tree is built by one thread and then read-only.
 */
#ifndef QUIVER_QUERY_AST_H
#define QUIVER_QUERY_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/value.h"

typedef struct ast_expr ast_expr;
typedef struct ast_pattern ast_pattern;

/* Position in the query text, 1-based, for error messages. */
typedef struct ast_pos {
    uint32_t line;
    uint32_t column;
} ast_pos;

/* ---------------------------------------------------------------- */
/* Expressions                                                       */
/* ---------------------------------------------------------------- */

typedef enum ast_expr_kind {
    AST_LITERAL,      /* literal: null, true/false, integer, float, string */
    AST_PARAM,        /* $name: name */
    AST_VAR,          /* identifier: name */
    AST_PROP,         /* operand.name (property access) */
    AST_INDEX,        /* operand[index] (list index or map key by expression) */
    AST_SLICE,        /* operand[lo..hi]; lo/hi may be NULL */
    AST_LIST,         /* [items...] */
    AST_MAP,          /* {keys: values} */
    AST_UNARY,        /* op operand: NOT, unary minus, unary plus */
    AST_BINARY,       /* lhs op rhs */
    AST_IS_NULL,      /* operand IS NULL */
    AST_IS_NOT_NULL,  /* operand IS NOT NULL */
    AST_HAS_LABELS,   /* operand:Label1:Label2 in an expression (WHERE n:Person) */
    AST_FUNC,         /* name(args) incl. count(*) (star) and DISTINCT */
    AST_CASE,         /* CASE [subject] WHEN .. THEN .. [ELSE ..] END */
    AST_LIST_COMP,    /* [var IN list WHERE pred | expr] */
    AST_QUANTIFIER,   /* any/all/none/single(var IN list WHERE pred) */
    AST_PATTERN_PRED, /* a relationship pattern used as a predicate: exists or WHERE (a)-->(b) */
} ast_expr_kind;

typedef enum ast_op {
    AST_OP_NOT,
    AST_OP_NEG,
    AST_OP_POS,
    AST_OP_AND,
    AST_OP_OR,
    AST_OP_XOR,
    AST_OP_EQ,
    AST_OP_NE,
    AST_OP_LT,
    AST_OP_LE,
    AST_OP_GT,
    AST_OP_GE,
    AST_OP_ADD,
    AST_OP_SUB,
    AST_OP_MUL,
    AST_OP_DIV,
    AST_OP_MOD,
    AST_OP_POW,
    AST_OP_IN,
    AST_OP_STARTS_WITH,
    AST_OP_ENDS_WITH,
    AST_OP_CONTAINS,
    AST_OP_REGEX, /* =~ */
} ast_op;

typedef enum ast_quantifier {
    AST_Q_ALL,
    AST_Q_ANY,
    AST_Q_NONE,
    AST_Q_SINGLE,
} ast_quantifier;

struct ast_expr {
    ast_expr_kind kind;
    ast_pos pos;
    union {
        qv_value literal;                     /* AST_LITERAL: a scalar; in ast_param.value also a
                                                 QV_LIST / QV_MAP of constants (see ast_param) */
        qv_str name;                          /* AST_PARAM, AST_VAR */
        struct {                              /* AST_PROP */
            ast_expr *operand;
            qv_str key;
        } prop;
        struct {                              /* AST_INDEX, AST_SLICE */
            ast_expr *operand;
            ast_expr *index;                  /* AST_INDEX */
            ast_expr *lo, *hi;                /* AST_SLICE; either may be NULL */
        } index;
        struct {                              /* AST_LIST */
            uint32_t count;
            ast_expr **items;
        } list;
        struct {                              /* AST_MAP */
            uint32_t count;
            qv_str *keys;
            ast_expr **values;
        } map;
        struct {                              /* AST_UNARY, AST_BINARY */
            ast_op op;
            ast_expr *lhs;                    /* the operand for unary */
            ast_expr *rhs;                    /* NULL for unary */
        } op;
        struct {                              /* AST_IS_NULL, AST_IS_NOT_NULL */
            ast_expr *operand;
        } is_null;
        struct {                              /* AST_HAS_LABELS */
            ast_expr *operand;
            uint32_t count;
            qv_str *labels;
        } has_labels;
        struct {                              /* AST_FUNC */
            qv_str name;                      /* as written, incl. namespace: "db.labels" is not a func */
            bool distinct;                    /* count(DISTINCT x) */
            bool star;                        /* count(*) */
            uint32_t arg_count;
            ast_expr **args;
        } func;
        struct {                              /* AST_CASE */
            ast_expr *subject;                /* NULL for the generic (searched) form */
            uint32_t count;
            ast_expr **whens;
            ast_expr **thens;
            ast_expr *otherwise;              /* ELSE; NULL means null */
        } case_;
        struct {                              /* AST_LIST_COMP, AST_QUANTIFIER */
            ast_quantifier quantifier;        /* AST_QUANTIFIER only */
            qv_str var;
            ast_expr *list;
            ast_expr *where;                  /* may be NULL */
            ast_expr *map;                    /* `| expr`; may be NULL (LIST_COMP only) */
        } comp;
        struct {                              /* AST_PATTERN_PRED */
            ast_pattern *pattern;             /* exactly one path */
        } pattern;
    } u;
};

/* ---------------------------------------------------------------- */
/* Patterns                                                          */
/* ---------------------------------------------------------------- */

typedef struct ast_node_pat {
    ast_pos pos;
    qv_str var;             /* len 0: anonymous */
    uint32_t label_count;
    qv_str *labels;
    ast_expr *props;        /* AST_MAP or AST_PARAM, or NULL */
} ast_node_pat;

typedef enum ast_rel_dir {
    AST_DIR_RIGHT,          /* (a)-[]->(b) */
    AST_DIR_LEFT,           /* (a)<-[]-(b) */
    AST_DIR_BOTH,           /* (a)-[]-(b)  (undirected) */
} ast_rel_dir;

typedef struct ast_rel_pat {
    ast_pos pos;
    qv_str var;             /* len 0: anonymous */
    uint32_t type_count;    /* 0: any type; several: [:A|B] */
    qv_str *types;
    ast_expr *props;        /* AST_MAP or AST_PARAM, or NULL */
    ast_rel_dir dir;
    bool varlen;            /* [*], [*2], [*1..3], [*2..], [*..3] */
    uint32_t min_hops;      /* varlen: default 1 */
    uint32_t max_hops;      /* varlen: UINT32_MAX when unbounded */
} ast_rel_pat;

/* One path: nodes[0] rels[0] nodes[1] ... rels[n-2] nodes[n-1]. */
typedef struct ast_path {
    ast_pos pos;
    qv_str var;             /* p = (...); len 0 when not named */
    bool shortest;          /* shortestPath(...) */
    bool all_shortest;      /* allShortestPaths(...) */
    uint32_t node_count;    /* >= 1 */
    ast_node_pat *nodes;
    ast_rel_pat *rels;      /* node_count - 1 */
} ast_path;

struct ast_pattern {
    uint32_t path_count;
    ast_path *paths;
};

/* ---------------------------------------------------------------- */
/* Clauses                                                           */
/* ---------------------------------------------------------------- */

typedef struct ast_proj_item {
    ast_expr *expr;
    qv_str alias;           /* AS alias; when absent, the expression's text as written */
    bool has_alias;
} ast_proj_item;

typedef struct ast_sort_item {
    ast_expr *expr;
    bool descending;
} ast_sort_item;

/* RETURN and WITH. */
typedef struct ast_projection {
    bool distinct;
    bool star;              /* RETURN * / WITH * (items follow any star) */
    uint32_t item_count;
    ast_proj_item *items;
    uint32_t order_count;
    ast_sort_item *order;
    ast_expr *skip;         /* may be NULL */
    ast_expr *limit;        /* may be NULL */
    ast_expr *where;        /* WITH ... WHERE; NULL for RETURN */
} ast_projection;

typedef enum ast_set_kind {
    AST_SET_PROP,           /* target.key = value   (target: any expression yielding an entity) */
    AST_SET_REPLACE,        /* var = map            (replace all properties) */
    AST_SET_MERGE,          /* var += map */
    AST_SET_LABELS,         /* var:Label:Other */
} ast_set_kind;

typedef struct ast_set_item {
    ast_set_kind kind;
    ast_pos pos;
    ast_expr *target;       /* AST_SET_PROP: the AST_PROP expression; else AST_VAR */
    ast_expr *value;        /* PROP, REPLACE, MERGE */
    uint32_t label_count;   /* LABELS */
    qv_str *labels;
} ast_set_item;

typedef enum ast_remove_kind {
    AST_REMOVE_PROP,        /* target.key  (target is an AST_PROP expression) */
    AST_REMOVE_LABELS,      /* var:Label */
} ast_remove_kind;

typedef struct ast_remove_item {
    ast_remove_kind kind;
    ast_pos pos;
    ast_expr *target;
    uint32_t label_count;
    qv_str *labels;
} ast_remove_item;

typedef enum ast_clause_kind {
    AST_MATCH,
    AST_CREATE,
    AST_MERGE,
    AST_SET,
    AST_REMOVE,
    AST_DELETE,
    AST_WITH,
    AST_RETURN,
    AST_UNWIND,
    AST_CALL,
    AST_CREATE_INDEX,
    AST_DROP_INDEX,
} ast_clause_kind;

typedef struct ast_clause {
    ast_clause_kind kind;
    ast_pos pos;
    union {
        struct {                    /* AST_MATCH */
            bool optional;
            ast_pattern pattern;
            ast_expr *where;        /* may be NULL */
        } match;
        struct {                    /* AST_CREATE */
            ast_pattern pattern;
        } create;
        struct {                    /* AST_MERGE */
            ast_path path;
            uint32_t on_create_count;
            ast_set_item *on_create;
            uint32_t on_match_count;
            ast_set_item *on_match;
        } merge;
        struct {                    /* AST_SET */
            uint32_t count;
            ast_set_item *items;
        } set;
        struct {                    /* AST_REMOVE */
            uint32_t count;
            ast_remove_item *items;
        } remove;
        struct {                    /* AST_DELETE */
            bool detach;
            uint32_t count;
            ast_expr **exprs;
        } delete_;
        ast_projection projection;  /* AST_WITH, AST_RETURN */
        struct {                    /* AST_UNWIND */
            ast_expr *list;
            qv_str var;
        } unwind;
        struct {                    /* AST_CALL */
            qv_str name;            /* e.g. "db.labels" as written */
            uint32_t arg_count;
            ast_expr **args;
            uint32_t yield_count;   /* 0: no YIELD (all outputs) */
            qv_str *yield_names;
            qv_str *yield_aliases;  /* len 0 when no alias */
            ast_expr *where;        /* YIELD ... WHERE; may be NULL */
        } call;
        struct {                    /* AST_CREATE_INDEX, AST_DROP_INDEX */
            qv_str label;
            uint32_t prop_count;    /* >= 1 */
            qv_str *props;
        } index;
    } u;
} ast_clause;

/* A single query: clauses in order. */
typedef struct ast_single_query {
    uint32_t clause_count;
    ast_clause *clauses;
} ast_single_query;

/* The `CYPHER name=value ...` prefix: values are constants (literals,
 * lists, maps, negative numbers).  The parser folds each into ONE
 * AST_LITERAL whose qv_value may be a QV_LIST or QV_MAP (nested, in the
 * parser's arena; map keys made unique, a later duplicate winning), so an
 * import batch costs one 24-byte value per element and the executor uses
 * value->u.literal as the parameter's value directly. */
typedef struct ast_param {
    qv_str name;
    ast_expr *value;
} ast_param;

/* A whole statement: one or more single queries joined by UNION [ALL]. */
typedef struct ast_query {
    uint32_t param_count;
    ast_param *params;
    uint32_t part_count;        /* >= 1 */
    ast_single_query *parts;
    bool *union_all;            /* part_count - 1 flags: true for UNION ALL */
    bool writes;                /* some clause writes (CREATE, MERGE, SET, REMOVE, DELETE, index DDL) */
    bool explain;               /* reserved: EXPLAIN prefix (GRAPH.EXPLAIN sets it too) */
} ast_query;

#endif
