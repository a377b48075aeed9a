/*
 * test_query_parser.c -- the openCypher parser (query/parser.h).
 *
 * Most tests parse a query and compare a compact s-expression dump of the
 * AST with the expected text, so the exact shape (precedence, directions,
 * hop ranges, aliases...) is asserted.  Error tests check the message and
 * the 1-based line/column.  Robustness tests feed truncations, random
 * bytes, NUL bytes and 100k-deep nesting and only require "no crash, an
 * error or a tree" (ASan/UBSan builds check the memory side).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/limits.h"
#include "query/parser.h"

/* ---------------------------------------------------------------- */
/* AST dump                                                          */
/* ---------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
}

static void sb_str(sbuf *b, qv_str s) { sb_printf(b, "%.*s", (int)s.len, s.ptr); }

static const char *op_name(ast_op op) {
    switch (op) {
    case AST_OP_NOT: return "NOT";
    case AST_OP_NEG: return "NEG";
    case AST_OP_POS: return "POS";
    case AST_OP_AND: return "AND";
    case AST_OP_OR: return "OR";
    case AST_OP_XOR: return "XOR";
    case AST_OP_EQ: return "=";
    case AST_OP_NE: return "<>";
    case AST_OP_LT: return "<";
    case AST_OP_LE: return "<=";
    case AST_OP_GT: return ">";
    case AST_OP_GE: return ">=";
    case AST_OP_ADD: return "+";
    case AST_OP_SUB: return "-";
    case AST_OP_MUL: return "*";
    case AST_OP_DIV: return "/";
    case AST_OP_MOD: return "%";
    case AST_OP_POW: return "^";
    case AST_OP_IN: return "IN";
    case AST_OP_STARTS_WITH: return "STARTS";
    case AST_OP_ENDS_WITH: return "ENDS";
    case AST_OP_CONTAINS: return "CONTAINS";
    case AST_OP_REGEX: return "=~";
    }
    return "?";
}

static void dump_expr(sbuf *b, const ast_expr *e);
static void dump_literal(sbuf *b, qv_value v);
static void dump_path(sbuf *b, const ast_path *p);

static void dump_opt(sbuf *b, const ast_expr *e) {
    if (e == NULL) sb_printf(b, "_");
    else dump_expr(b, e);
}

static void dump_literal(sbuf *b, qv_value v) {
    switch (v.type) {
    case QV_NULL: sb_printf(b, "null"); break;
    case QV_BOOL: sb_printf(b, v.u.b ? "true" : "false"); break;
    case QV_INT: sb_printf(b, "%lld", (long long)v.u.i); break;
    case QV_DOUBLE: sb_printf(b, "%gf", v.u.d); break;
    case QV_STRING: sb_printf(b, "'"); sb_str(b, v.u.s); sb_printf(b, "'"); break;
    case QV_LIST:
        sb_printf(b, "[");
        for (uint32_t i = 0; i < v.u.list->count; i++) {
            if (i) sb_printf(b, " ");
            dump_literal(b, v.u.list->items[i]);
        }
        sb_printf(b, "]");
        break;
    case QV_MAP:
        sb_printf(b, "{");
        for (uint32_t i = 0; i < v.u.map->count; i++) {
            if (i) sb_printf(b, " ");
            sb_str(b, v.u.map->keys[i]);
            sb_printf(b, ":");
            dump_literal(b, v.u.map->values[i]);
        }
        sb_printf(b, "}");
        break;
    default: sb_printf(b, "?literal"); break;
    }
}

static void dump_expr(sbuf *b, const ast_expr *e) {
    assert_non_null(e);
    switch (e->kind) {
    case AST_LITERAL: dump_literal(b, e->u.literal); break;
    case AST_PARAM: sb_printf(b, "$"); sb_str(b, e->u.name); break;
    case AST_VAR: sb_str(b, e->u.name); break;
    case AST_PROP:
        sb_printf(b, "(. ");
        dump_expr(b, e->u.prop.operand);
        sb_printf(b, " ");
        sb_str(b, e->u.prop.key);
        sb_printf(b, ")");
        break;
    case AST_INDEX:
        sb_printf(b, "([] ");
        dump_expr(b, e->u.index.operand);
        sb_printf(b, " ");
        dump_expr(b, e->u.index.index);
        sb_printf(b, ")");
        break;
    case AST_SLICE:
        sb_printf(b, "([..] ");
        dump_expr(b, e->u.index.operand);
        sb_printf(b, " ");
        dump_opt(b, e->u.index.lo);
        sb_printf(b, " ");
        dump_opt(b, e->u.index.hi);
        sb_printf(b, ")");
        break;
    case AST_LIST:
        sb_printf(b, "[");
        for (uint32_t i = 0; i < e->u.list.count; i++) {
            if (i) sb_printf(b, " ");
            dump_expr(b, e->u.list.items[i]);
        }
        sb_printf(b, "]");
        break;
    case AST_MAP:
        sb_printf(b, "{");
        for (uint32_t i = 0; i < e->u.map.count; i++) {
            if (i) sb_printf(b, " ");
            sb_str(b, e->u.map.keys[i]);
            sb_printf(b, ":");
            dump_expr(b, e->u.map.values[i]);
        }
        sb_printf(b, "}");
        break;
    case AST_UNARY:
        sb_printf(b, "(%s ", op_name(e->u.op.op));
        dump_expr(b, e->u.op.lhs);
        sb_printf(b, ")");
        assert_null(e->u.op.rhs);
        break;
    case AST_BINARY:
        sb_printf(b, "(%s ", op_name(e->u.op.op));
        dump_expr(b, e->u.op.lhs);
        sb_printf(b, " ");
        dump_expr(b, e->u.op.rhs);
        sb_printf(b, ")");
        break;
    case AST_IS_NULL:
    case AST_IS_NOT_NULL:
        sb_printf(b, e->kind == AST_IS_NULL ? "(ISNULL " : "(NOTNULL ");
        dump_expr(b, e->u.is_null.operand);
        sb_printf(b, ")");
        break;
    case AST_HAS_LABELS:
        sb_printf(b, "(: ");
        dump_expr(b, e->u.has_labels.operand);
        for (uint32_t i = 0; i < e->u.has_labels.count; i++) {
            sb_printf(b, " ");
            sb_str(b, e->u.has_labels.labels[i]);
        }
        sb_printf(b, ")");
        break;
    case AST_FUNC:
        sb_printf(b, "(");
        sb_str(b, e->u.func.name);
        if (e->u.func.distinct) sb_printf(b, " DISTINCT");
        if (e->u.func.star) sb_printf(b, " *");
        for (uint32_t i = 0; i < e->u.func.arg_count; i++) {
            sb_printf(b, " ");
            dump_expr(b, e->u.func.args[i]);
        }
        sb_printf(b, ")");
        break;
    case AST_CASE:
        sb_printf(b, "(CASE ");
        dump_opt(b, e->u.case_.subject);
        for (uint32_t i = 0; i < e->u.case_.count; i++) {
            sb_printf(b, " (");
            dump_expr(b, e->u.case_.whens[i]);
            sb_printf(b, " ");
            dump_expr(b, e->u.case_.thens[i]);
            sb_printf(b, ")");
        }
        sb_printf(b, " ");
        dump_opt(b, e->u.case_.otherwise);
        sb_printf(b, ")");
        break;
    case AST_LIST_COMP:
    case AST_QUANTIFIER:
        if (e->kind == AST_LIST_COMP) sb_printf(b, "(COMP ");
        else
            sb_printf(b, "(%s ", e->u.comp.quantifier == AST_Q_ALL    ? "ALL"
                                 : e->u.comp.quantifier == AST_Q_ANY  ? "ANY"
                                 : e->u.comp.quantifier == AST_Q_NONE ? "NONE"
                                                                      : "SINGLE");
        sb_str(b, e->u.comp.var);
        sb_printf(b, " ");
        dump_expr(b, e->u.comp.list);
        sb_printf(b, " ");
        dump_opt(b, e->u.comp.where);
        if (e->kind == AST_LIST_COMP) {
            sb_printf(b, " ");
            dump_opt(b, e->u.comp.map);
        }
        sb_printf(b, ")");
        break;
    case AST_PATTERN_PRED:
        assert_int_equal(e->u.pattern.pattern->path_count, 1);
        sb_printf(b, "(PAT ");
        dump_path(b, &e->u.pattern.pattern->paths[0]);
        sb_printf(b, ")");
        break;
    }
}

static void dump_props(sbuf *b, const ast_expr *props) {
    if (props == NULL) return;
    sb_printf(b, " ");
    dump_expr(b, props);
}

static void dump_node(sbuf *b, const ast_node_pat *n) {
    sb_printf(b, "(");
    sb_str(b, n->var);
    for (uint32_t i = 0; i < n->label_count; i++) {
        sb_printf(b, ":");
        sb_str(b, n->labels[i]);
    }
    dump_props(b, n->props);
    sb_printf(b, ")");
}

static void dump_rel(sbuf *b, const ast_rel_pat *r) {
    sb_printf(b, r->dir == AST_DIR_LEFT ? "<-[" : "-[");
    sb_str(b, r->var);
    for (uint32_t i = 0; i < r->type_count; i++) {
        sb_printf(b, i == 0 ? ":" : "|");
        sb_str(b, r->types[i]);
    }
    if (r->varlen) {
        sb_printf(b, "*%u..", r->min_hops);
        if (r->max_hops != UINT32_MAX) sb_printf(b, "%u", r->max_hops);
    }
    dump_props(b, r->props);
    sb_printf(b, r->dir == AST_DIR_RIGHT ? "]->" : "]-");
}

static void dump_path(sbuf *b, const ast_path *p) {
    if (p->var.len) {
        sb_str(b, p->var);
        sb_printf(b, "=");
    }
    if (p->shortest) sb_printf(b, "shortest:");
    if (p->all_shortest) sb_printf(b, "allshortest:");
    assert_true(p->node_count >= 1);
    for (uint32_t i = 0; i < p->node_count; i++) {
        if (i) dump_rel(b, &p->rels[i - 1]);
        dump_node(b, &p->nodes[i]);
    }
}

static void dump_pattern(sbuf *b, const ast_pattern *p) {
    for (uint32_t i = 0; i < p->path_count; i++) {
        if (i) sb_printf(b, ", ");
        dump_path(b, &p->paths[i]);
    }
}

static void dump_set_item(sbuf *b, const ast_set_item *s) {
    switch (s->kind) {
    case AST_SET_PROP:
        dump_expr(b, s->target);
        sb_printf(b, " = ");
        dump_expr(b, s->value);
        break;
    case AST_SET_REPLACE:
        dump_expr(b, s->target);
        sb_printf(b, " := ");
        dump_expr(b, s->value);
        break;
    case AST_SET_MERGE:
        dump_expr(b, s->target);
        sb_printf(b, " += ");
        dump_expr(b, s->value);
        break;
    case AST_SET_LABELS:
        dump_expr(b, s->target);
        for (uint32_t i = 0; i < s->label_count; i++) {
            sb_printf(b, ":");
            sb_str(b, s->labels[i]);
        }
        break;
    }
}

static void dump_projection(sbuf *b, const ast_projection *p) {
    if (p->distinct) sb_printf(b, " DISTINCT");
    if (p->star) sb_printf(b, " *");
    for (uint32_t i = 0; i < p->item_count; i++) {
        sb_printf(b, i || p->star ? ", " : " ");
        dump_expr(b, p->items[i].expr);
        sb_printf(b, p->items[i].has_alias ? " AS " : " \"");
        sb_str(b, p->items[i].alias);
        if (!p->items[i].has_alias) sb_printf(b, "\"");
    }
    if (p->order_count) {
        sb_printf(b, " ORDER");
        for (uint32_t i = 0; i < p->order_count; i++) {
            sb_printf(b, " ");
            dump_expr(b, p->order[i].expr);
            if (p->order[i].descending) sb_printf(b, " DESC");
        }
    }
    if (p->skip) {
        sb_printf(b, " SKIP ");
        dump_expr(b, p->skip);
    }
    if (p->limit) {
        sb_printf(b, " LIMIT ");
        dump_expr(b, p->limit);
    }
    if (p->where) {
        sb_printf(b, " WHERE ");
        dump_expr(b, p->where);
    }
}

static void dump_clause(sbuf *b, const ast_clause *c) {
    switch (c->kind) {
    case AST_MATCH:
        sb_printf(b, c->u.match.optional ? "OPTIONAL MATCH " : "MATCH ");
        dump_pattern(b, &c->u.match.pattern);
        if (c->u.match.where) {
            sb_printf(b, " WHERE ");
            dump_expr(b, c->u.match.where);
        }
        break;
    case AST_CREATE:
        sb_printf(b, "CREATE ");
        dump_pattern(b, &c->u.create.pattern);
        break;
    case AST_MERGE:
        sb_printf(b, "MERGE ");
        dump_path(b, &c->u.merge.path);
        for (uint32_t i = 0; i < c->u.merge.on_create_count; i++) {
            sb_printf(b, " ONCREATE ");
            dump_set_item(b, &c->u.merge.on_create[i]);
        }
        for (uint32_t i = 0; i < c->u.merge.on_match_count; i++) {
            sb_printf(b, " ONMATCH ");
            dump_set_item(b, &c->u.merge.on_match[i]);
        }
        break;
    case AST_SET:
        sb_printf(b, "SET");
        for (uint32_t i = 0; i < c->u.set.count; i++) {
            sb_printf(b, i ? ", " : " ");
            dump_set_item(b, &c->u.set.items[i]);
        }
        break;
    case AST_REMOVE:
        sb_printf(b, "REMOVE");
        for (uint32_t i = 0; i < c->u.remove.count; i++) {
            const ast_remove_item *r = &c->u.remove.items[i];
            sb_printf(b, i ? ", " : " ");
            dump_expr(b, r->target);
            if (r->kind == AST_REMOVE_LABELS) {
                for (uint32_t k = 0; k < r->label_count; k++) {
                    sb_printf(b, ":");
                    sb_str(b, r->labels[k]);
                }
            }
        }
        break;
    case AST_DELETE:
        sb_printf(b, c->u.delete_.detach ? "DETACH DELETE" : "DELETE");
        for (uint32_t i = 0; i < c->u.delete_.count; i++) {
            sb_printf(b, i ? ", " : " ");
            dump_expr(b, c->u.delete_.exprs[i]);
        }
        break;
    case AST_WITH:
        sb_printf(b, "WITH");
        dump_projection(b, &c->u.projection);
        break;
    case AST_RETURN:
        sb_printf(b, "RETURN");
        dump_projection(b, &c->u.projection);
        break;
    case AST_UNWIND:
        sb_printf(b, "UNWIND ");
        dump_expr(b, c->u.unwind.list);
        sb_printf(b, " AS ");
        sb_str(b, c->u.unwind.var);
        break;
    case AST_CALL:
        sb_printf(b, "CALL ");
        sb_str(b, c->u.call.name);
        sb_printf(b, "(");
        for (uint32_t i = 0; i < c->u.call.arg_count; i++) {
            if (i) sb_printf(b, " ");
            dump_expr(b, c->u.call.args[i]);
        }
        sb_printf(b, ")");
        for (uint32_t i = 0; i < c->u.call.yield_count; i++) {
            sb_printf(b, i ? ", " : " YIELD ");
            sb_str(b, c->u.call.yield_names[i]);
            if (c->u.call.yield_aliases[i].len) {
                sb_printf(b, " AS ");
                sb_str(b, c->u.call.yield_aliases[i]);
            }
        }
        if (c->u.call.where) {
            sb_printf(b, " WHERE ");
            dump_expr(b, c->u.call.where);
        }
        break;
    case AST_CREATE_INDEX:
    case AST_DROP_INDEX:
        sb_printf(b, c->kind == AST_CREATE_INDEX ? "CREATE INDEX :" : "DROP INDEX :");
        sb_str(b, c->u.index.label);
        sb_printf(b, "(");
        for (uint32_t i = 0; i < c->u.index.prop_count; i++) {
            if (i) sb_printf(b, ",");
            sb_str(b, c->u.index.props[i]);
        }
        sb_printf(b, ")");
        break;
    }
}

static char *dump_query(const ast_query *q) {
    sbuf b = {malloc(256), 0, 256};
    assert_non_null(b.p);
    b.p[0] = '\0';
    if (q->explain) sb_printf(&b, "EXPLAIN ");
    for (uint32_t i = 0; i < q->param_count; i++) {
        sb_printf(&b, "PARAM ");
        sb_str(&b, q->params[i].name);
        sb_printf(&b, "=");
        dump_expr(&b, q->params[i].value);
        sb_printf(&b, " ; ");
    }
    for (uint32_t i = 0; i < q->part_count; i++) {
        if (i) sb_printf(&b, q->union_all[i - 1] ? " UNION ALL " : " UNION ");
        const ast_single_query *s = &q->parts[i];
        for (uint32_t k = 0; k < s->clause_count; k++) {
            if (k) sb_printf(&b, " | ");
            dump_clause(&b, &s->clauses[k]);
        }
    }
    return b.p;
}

/* ---------------------------------------------------------------- */
/* Helpers                                                           */
/* ---------------------------------------------------------------- */

/* Parse q, expect success, compare the dump with expected. */
static void check_parse_writes(const char *q, const char *expected, int writes) {
    q_arena a;
    q_arena_init(&a, 0);
    ast_query out;
    parse_error err;
    int rc = cypher_parse(q, strlen(q), &a, &out, &err);
    if (rc != 0) {
        fail_msg("parse of \"%s\" failed: %u:%u %s", q, err.line, err.column, err.message);
    }
    char *d = dump_query(&out);
    if (strcmp(d, expected) != 0) {
        fail_msg("query: %s\n  got:      %s\n  expected: %s", q, d, expected);
    }
    if (writes >= 0) assert_int_equal(out.writes, writes);
    free(d);
    q_arena_free(&a);
}

static void check_parse(const char *q, const char *expected) { check_parse_writes(q, expected, -1); }

/* Parse q, expect failure at line:col with a message containing needle. */
static void check_error(const char *q, uint32_t line, uint32_t col, const char *needle) {
    q_arena a;
    q_arena_init(&a, 0);
    ast_query out;
    parse_error err;
    int rc = cypher_parse(q, strlen(q), &a, &out, &err);
    if (rc == 0) {
        char *d = dump_query(&out);
        fail_msg("parse of \"%s\" succeeded: %s", q, d);
    }
    if (strstr(err.message, needle) == NULL || err.line != line || err.column != col) {
        fail_msg("query: %s\n  got:      %u:%u %s\n  expected: %u:%u ...%s...", q, err.line,
                 err.column, err.message, line, col, needle);
    }
    q_arena_free(&a);
}

/* Parse an arbitrary byte range; either outcome is fine, no crash. */
static int parse_any(const char *q, size_t len) {
    q_arena a;
    q_arena_init(&a, 0);
    ast_query out;
    parse_error err;
    int rc = cypher_parse(q, len, &a, &out, &err);
    if (rc != 0) assert_true(err.message[0] != '\0');
    else assert_true(out.part_count >= 1);
    q_arena_free(&a);
    return rc;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ---------------------------------------------------------------- */
/* Tests: clauses                                                    */
/* ---------------------------------------------------------------- */

static void test_match_return(void **state) {
    (void)state;
    check_parse_writes("MATCH (n) RETURN n", "MATCH (n) | RETURN n \"n\"", 0);
    check_parse("match (n:Person {name: 'Bob', age: 42}) return n.name",
                "MATCH (n:Person {name:'Bob' age:42}) | RETURN (. n name) \"n.name\"");
    check_parse("MATCH (a)-[r:KNOWS]->(b), (c) RETURN a, b AS bee",
                "MATCH (a)-[r:KNOWS]->(b), (c) | RETURN a \"a\", b AS bee");
    check_parse("MATCH (:A:B $props) RETURN 1", "MATCH (:A:B $props) | RETURN 1 \"1\"");
    check_parse("OPTIONAL MATCH (n) WHERE n.x > 1 RETURN n",
                "OPTIONAL MATCH (n) WHERE (> (. n x) 1) | RETURN n \"n\"");
    check_parse("MATCH (n) OPTIONAL MATCH (n)-->(m) RETURN n, m",
                "MATCH (n) | OPTIONAL MATCH (n)-[]->(m) | RETURN n \"n\", m \"m\"");
    check_parse("MATCH (n) RETURN n;", "MATCH (n) | RETURN n \"n\"");
}

static void test_relationship_directions(void **state) {
    (void)state;
    check_parse("MATCH (a)-[r:T]->(b) RETURN r", "MATCH (a)-[r:T]->(b) | RETURN r \"r\"");
    check_parse("MATCH (a)<-[:T]-(b) RETURN a", "MATCH (a)<-[:T]-(b) | RETURN a \"a\"");
    check_parse("MATCH (a)-[]-(b) RETURN a", "MATCH (a)-[]-(b) | RETURN a \"a\"");
    check_parse("MATCH (a)-->(b) RETURN a", "MATCH (a)-[]->(b) | RETURN a \"a\"");
    check_parse("MATCH (a)<--(b) RETURN a", "MATCH (a)<-[]-(b) | RETURN a \"a\"");
    check_parse("MATCH (a)--(b) RETURN a", "MATCH (a)-[]-(b) | RETURN a \"a\"");
    check_parse("MATCH (a)<-->(b) RETURN a", "MATCH (a)-[]-(b) | RETURN a \"a\"");
    check_parse("MATCH (a)-[:A|B]->(b)<-[:C|:D]-(c) RETURN a",
                "MATCH (a)-[:A|B]->(b)<-[:C|D]-(c) | RETURN a \"a\"");
    check_parse("MATCH (a) - [ r : T ] -> ( b ) RETURN a", "MATCH (a)-[r:T]->(b) | RETURN a \"a\"");
    check_parse("MATCH (a)-[r {w: 1}]->(b) RETURN a", "MATCH (a)-[r {w:1}]->(b) | RETURN a \"a\"");
    check_parse("MATCH (a)-[r:T $p]->(b) RETURN a", "MATCH (a)-[r:T $p]->(b) | RETURN a \"a\"");
}

static void test_variable_length(void **state) {
    (void)state;
    check_parse("MATCH (a)-[*]->(b) RETURN b", "MATCH (a)-[*1..]->(b) | RETURN b \"b\"");
    check_parse("MATCH (a)-[*2]->(b) RETURN b", "MATCH (a)-[*2..2]->(b) | RETURN b \"b\"");
    check_parse("MATCH (a)-[*1..3]->(b) RETURN b", "MATCH (a)-[*1..3]->(b) | RETURN b \"b\"");
    check_parse("MATCH (a)-[*2..]->(b) RETURN b", "MATCH (a)-[*2..]->(b) | RETURN b \"b\"");
    check_parse("MATCH (a)-[*..3]->(b) RETURN b", "MATCH (a)-[*1..3]->(b) | RETURN b \"b\"");
    check_parse("MATCH (a)-[*0..]->(b) RETURN b", "MATCH (a)-[*0..]->(b) | RETURN b \"b\"");
    check_parse("MATCH (a)-[r:A|B*1.. {x: 1}]->(b) RETURN b",
                "MATCH (a)-[r:A|B*1.. {x:1}]->(b) | RETURN b \"b\"");
    check_parse("MATCH (a)-[* 1 .. 3]-(b) RETURN b", "MATCH (a)-[*1..3]-(b) | RETURN b \"b\"");
    check_error("MATCH (a)-[*3..1]->(b) RETURN b", 1, 12, "minimum number of hops");
    check_parse("MATCH (a)-[*..]->(b) RETURN b", "MATCH (a)-[*1..]->(b) | RETURN b \"b\"");
    check_error("MATCH (a)-[*1.5]->(b) RETURN b", 1, 13, "Invalid input '1.5'");
    check_error("MATCH (a)-[*-1]->(b) RETURN b", 1, 13, "Invalid input '-'");
    check_error("MATCH (a)-[*1..99999999999]->(b) RETURN b", 1, 16, "number of hops is too large");
}

static void test_named_and_shortest_paths(void **state) {
    (void)state;
    check_parse("MATCH p = (a)-->(b) RETURN p", "MATCH p=(a)-[]->(b) | RETURN p \"p\"");
    check_parse("MATCH p = shortestPath((a)-[*]-(b)) RETURN p",
                "MATCH p=shortest:(a)-[*1..]-(b) | RETURN p \"p\"");
    check_parse("MATCH p = allShortestPaths((a)-[:T*..5]->(b)) RETURN p",
                "MATCH p=allshortest:(a)-[:T*1..5]->(b) | RETURN p \"p\"");
    check_parse("MATCH (a), p=(b)-->(c) RETURN p", "MATCH (a), p=(b)-[]->(c) | RETURN p \"p\"");
}

static void test_create(void **state) {
    (void)state;
    check_parse_writes("CREATE (n:Person {name: 'Ann'})", "CREATE (n:Person {name:'Ann'})", 1);
    check_parse_writes("CREATE (a)-[:KNOWS {since: 2000}]->(b), (c)",
                       "CREATE (a)-[:KNOWS {since:2000}]->(b), (c)", 1);
    check_parse_writes("CREATE (a)<-[r:T]-(b) RETURN r", "CREATE (a)<-[r:T]-(b) | RETURN r \"r\"", 1);
    check_parse("MATCH (a), (b) CREATE (a)-[:T]->(b)", "MATCH (a), (b) | CREATE (a)-[:T]->(b)");
    check_parse("CREATE p = (a)-[:T]->(b) RETURN p", "CREATE p=(a)-[:T]->(b) | RETURN p \"p\"");
    check_error("CREATE (a)-[]->(b)", 1, 11, "Exactly one relationship type must be specified for CREATE");
    check_error("CREATE (a)-[:A|B]->(b)", 1, 11, "Exactly one relationship type");
    check_error("CREATE (a)-[:T]-(b)", 1, 11, "Only directed relationships are supported in CREATE");
    check_error("CREATE (a)-[:T*2]->(b)", 1, 11, "Variable length relationships cannot be used in CREATE");
}

static void test_merge(void **state) {
    (void)state;
    check_parse_writes("MERGE (n:P {id: 1})", "MERGE (n:P {id:1})", 1);
    check_parse("MERGE (n:P {id: 1}) ON CREATE SET n.c = 1 ON MATCH SET n.m = 2, n.k = 3 "
                "ON CREATE SET n:New RETURN n",
                "MERGE (n:P {id:1}) ONCREATE (. n c) = 1 ONCREATE n:New ONMATCH (. n m) = 2 "
                "ONMATCH (. n k) = 3 | RETURN n \"n\"");
    check_parse("MATCH (a), (b) MERGE (a)-[r:T]->(b) ON MATCH SET r += {x: 1}",
                "MATCH (a), (b) | MERGE (a)-[r:T]->(b) ONMATCH r += {x:1}");
    check_error("MERGE (a)-[:T]-(b)", 1, 10, "Only directed relationships are supported in MERGE");
    check_error("MERGE (n) ON DELETE SET n.x = 1", 1, 14, "expected CREATE or MATCH");
    check_error("MERGE (n) ON CREATE n.x = 1", 1, 21, "expected SET");
}

static void test_set_remove_delete(void **state) {
    (void)state;
    check_parse_writes("MATCH (n) SET n.x = 1, n = {a: 1}, n += $m, n:A:B",
                       "MATCH (n) | SET (. n x) = 1, n := {a:1}, n += $m, n:A:B", 1);
    check_parse("MATCH (n) SET n.x = n.x + 1 RETURN n.x",
                "MATCH (n) | SET (. n x) = (+ (. n x) 1) | RETURN (. n x) \"n.x\"");
    check_parse_writes("MATCH (n) REMOVE n.x, n:A:B", "MATCH (n) | REMOVE (. n x), n:A:B", 1);
    check_parse_writes("MATCH (n) DELETE n", "MATCH (n) | DELETE n", 1);
    check_parse_writes("MATCH (n)-[r]->() DETACH DELETE n, r", "MATCH (n)-[r]->() | DETACH DELETE n, r", 1);
    check_error("MATCH (n) SET n", 1, 16, "expected '=', '+=' or ':'");
    check_error("MATCH (n) SET n.x += 1", 1, 15, "'+=' needs a variable");
    check_error("MATCH (n) REMOVE n", 1, 19, "expected '.' or ':'");
    check_error("MATCH (n) DETACH n", 1, 18, "expected DELETE");
}

static void test_with_return_projection(void **state) {
    (void)state;
    check_parse("MATCH (n) WITH DISTINCT n.name AS name, count(*) AS c ORDER BY c DESC, name SKIP 1 "
                "LIMIT 10 WHERE c > 1 RETURN *",
                "MATCH (n) | WITH DISTINCT (. n name) AS name, (count *) AS c ORDER c DESC name SKIP 1 "
                "LIMIT 10 WHERE (> c 1) | RETURN *");
    check_parse("MATCH (n) WITH * , n.x AS x RETURN x", "MATCH (n) | WITH *, (. n x) AS x | RETURN x \"x\"");
    check_parse("MATCH (n) RETURN n ORDER BY n.a ASC, n.b DESCENDING, n.c ASCENDING LIMIT $l",
                "MATCH (n) | RETURN n \"n\" ORDER (. n a) (. n b) DESC (. n c) LIMIT $l");
    check_parse("UNWIND [1,2] AS x RETURN DISTINCT x", "UNWIND [1 2] AS x | RETURN DISTINCT x \"x\"");
    check_error("MATCH (n) RETURN n.a, n.a", 1, 23, "Multiple result columns with the same name");
    check_error("MATCH (n) WITH n.a RETURN 1", 1, 16, "Expression in WITH must be aliased");
    check_error("MATCH (n) RETURN n WHERE n.x = 1", 1, 20, "expected");
}

static void test_column_names(void **state) {
    (void)state;
    check_parse("MATCH (n) RETURN n.name, count(*), toUpper( n.x ) , 1+2",
                "MATCH (n) | RETURN (. n name) \"n.name\", (count *) \"count(*)\", "
                "(toUpper (. n x)) \"toUpper( n.x )\", (+ 1 2) \"1+2\"");
    check_parse("RETURN 'a' + \"b\", [1, 2][0], {a: 1}",
                "RETURN (+ 'a' 'b') \"'a' + \"b\"\", ([] [1 2] 0) \"[1, 2][0]\", {a:1} \"{a: 1}\"");
    check_parse("RETURN\n  count(DISTINCT x) \n", "RETURN (count DISTINCT x) \"count(DISTINCT x)\"");
}

static void test_unwind_call_union(void **state) {
    (void)state;
    check_parse("UNWIND $rows AS r CREATE (n:P {id: r.id})", "UNWIND $rows AS r | CREATE (n:P {id:(. r id)})");
    check_parse("CALL db.labels()", "CALL db.labels()");
    check_parse("CALL db.labels", "CALL db.labels()");
    check_parse("call DB.Labels() YIELD label", "CALL DB.Labels() YIELD label");
    check_parse("CALL db.labels() YIELD label AS l WHERE l STARTS WITH 'A' RETURN l",
                "CALL db.labels() YIELD label AS l WHERE (STARTS l 'A') | RETURN l \"l\"");
    check_parse("CALL db.propertyKeys() YIELD propertyKey, x AS y RETURN y",
                "CALL db.propertyKeys() YIELD propertyKey, x AS y | RETURN y \"y\"");
    check_parse("CALL a.b.c(1, 'x')", "CALL a.b.c(1 'x')");
    check_parse("MATCH (n) RETURN n.a AS a UNION MATCH (m) RETURN m.a AS a",
                "MATCH (n) | RETURN (. n a) AS a UNION MATCH (m) | RETURN (. m a) AS a");
    check_parse("RETURN 1 AS x UNION ALL RETURN 2 AS x UNION ALL RETURN 3 AS x",
                "RETURN 1 AS x UNION ALL RETURN 2 AS x UNION ALL RETURN 3 AS x");
    check_error("RETURN 1 AS x UNION RETURN 2 AS y", 1, 21, "same column names");
    check_error("RETURN 1 AS x UNION RETURN 2 AS x UNION ALL RETURN 3 AS x", 1, 45,
                "Invalid combination of UNION and UNION ALL");
    check_error("RETURN 1 AS x UNION CREATE ()", 1, 21, "must end with RETURN");
    check_error("MATCH (n) CALL db.labels()", 1, 11, "Query cannot conclude with CALL");
}

static void test_index_ddl(void **state) {
    (void)state;
    check_parse_writes("CREATE INDEX FOR (n:Person) ON (n.name)", "CREATE INDEX :Person(name)", 1);
    check_parse_writes("CREATE INDEX FOR (n:Person) ON (n.name, n.age)", "CREATE INDEX :Person(name,age)", 1);
    check_parse_writes("CREATE INDEX ON :Person(name)", "CREATE INDEX :Person(name)", 1);
    check_parse_writes("create index on :Person(name, age)", "CREATE INDEX :Person(name,age)", 1);
    check_parse_writes("DROP INDEX ON :Person(name)", "DROP INDEX :Person(name)", 1);
    check_parse_writes("DROP INDEX FOR (n:Person) ON (n.name)", "DROP INDEX :Person(name)", 1);
    check_error("CREATE INDEX FOR (n:Person) ON (m.name)", 1, 33, "not defined");
    check_error("CREATE INDEX ON :Person(name) RETURN 1", 1, 31, "Index operations must be the only clause");
    check_error("MATCH (n) CREATE INDEX ON :P(x)", 1, 11, "Index operations must be the only clause");
    check_error("DROP INDEX :P(x)", 1, 12, "expected FOR or ON");
    /* "index" stays usable as a variable */
    check_parse("CREATE (index:L) RETURN index", "CREATE (index:L) | RETURN index \"index\"");
}

static void test_explain_and_params_prefix(void **state) {
    (void)state;
    check_parse("EXPLAIN MATCH (n) RETURN n", "EXPLAIN MATCH (n) | RETURN n \"n\"");
    check_parse("CYPHER a=1 b='x' c=[1,-2,[3.5]] d={k: -1.5, l: null} e=true f=-9223372036854775808 "
                "MATCH (n) RETURN $a",
                "PARAM a=1 ; PARAM b='x' ; PARAM c=[1 -2 [3.5f]] ; PARAM d={k:-1.5f l:null} ; "
                "PARAM e=true ; PARAM f=-9223372036854775808 ; MATCH (n) | RETURN $a \"$a\"");
    check_parse("CYPHER rows=[[1,'a'],[2,'b']] UNWIND $rows AS r CREATE (:N {id: r[0]})",
                "PARAM rows=[[1 'a'] [2 'b']] ; UNWIND $rows AS r | CREATE (:N {id:([] r 0)})");
    check_parse("CYPHER limit = 3 EXPLAIN MATCH (n) RETURN n LIMIT $limit",
                "EXPLAIN PARAM limit=3 ; MATCH (n) | RETURN n \"n\" LIMIT $limit");
    check_parse("CYPHER MATCH (n) RETURN n", "MATCH (n) | RETURN n \"n\"");
    check_parse("CYPHER a=1 a=2 RETURN $a AS a", "PARAM a=1 ; PARAM a=2 ; RETURN $a AS a");
    /* what FalkorDB's Python client sends: backquoted map keys, \\ and \" escapes, repr floats */
    check_parse("CYPHER m={`@type`:\"a\\\\b\\\"c\",`k-1`:1e-05,`k`:[null,true,false],`k`:2} RETURN $m AS m",
                "PARAM m={@type:'a\\b\"c' k-1:1e-05f k:2} ; RETURN $m AS m");
    check_error("CYPHER a=1+2 RETURN $a", 1, 11, "Invalid input '+'");
    check_error("CYPHER params", 1, 14, "Invalid input at end of input: expected '='");
    check_error("CYPHER a= RETURN 1", 1, 11, "expected a literal value");
    check_error("CYPHER a=x RETURN 1", 1, 10, "expected a literal value");
}

/* ---------------------------------------------------------------- */
/* Tests: expressions                                                */
/* ---------------------------------------------------------------- */

/* Dump of "RETURN <e> AS x" without the framing. */
static void check_expr(const char *e, const char *expected) {
    char q[4096], want[4096];
    snprintf(q, sizeof q, "RETURN %s AS x", e);
    snprintf(want, sizeof want, "RETURN %s AS x", expected);
    check_parse(q, want);
}

static void test_precedence(void **state) {
    (void)state;
    check_expr("a OR b XOR c AND NOT d = e", "(OR a (XOR b (AND c (NOT (= d e)))))");
    check_expr("a AND b OR c", "(OR (AND a b) c)");
    check_expr("NOT a AND b", "(AND (NOT a) b)");
    check_expr("NOT NOT a", "(NOT (NOT a))");
    check_expr("1 + 2 * 3 - 4 / 5 % 6", "(- (+ 1 (* 2 3)) (% (/ 4 5) 6))");
    check_expr("2 ^ 3 ^ 2", "(^ (^ 2 3) 2)");
    check_expr("-2 ^ 2", "(^ -2 2)");
    check_expr("-a ^ 2", "(^ (NEG a) 2)");
    check_expr("- - a", "(NEG (NEG a))");
    check_expr("+a", "(POS a)");
    check_expr("a + b = c * d", "(= (+ a b) (* c d))");
    check_expr("a + b STARTS WITH c", "(STARTS (+ a b) c)");
    check_expr("a IN [1,2] = true", "(= (IN a [1 2]) true)");
    check_expr("x IS NULL AND y IS NOT NULL", "(AND (ISNULL x) (NOTNULL y))");
    check_expr("n.name ENDS WITH 'x' OR n.name CONTAINS 'y'",
               "(OR (ENDS (. n name) 'x') (CONTAINS (. n name) 'y'))");
    check_expr("n.name =~ 'A.*'", "(=~ (. n name) 'A.*')");
    check_expr("a < b", "(< a b)");
    check_expr("a <= b", "(<= a b)");
    check_expr("a > b", "(> a b)");
    check_expr("a >= b", "(>= a b)");
    check_expr("a <> b", "(<> a b)");
    check_expr("a != b", "(<> a b)");
    check_expr("1 < a <= 3", "(AND (< 1 a) (<= a 3))");
    check_expr("(1 + 2) * 3", "(* (+ 1 2) 3)");
    check_expr("a-1", "(- a 1)");
    check_expr("a - -1", "(- a -1)");
    check_expr("a<-1", "(< a -1)");
    check_expr("n.x.y[0][1..2][..3][2..]", "([..] ([..] ([..] ([] (. (. n x) y) 0) 1 2) _ 3) 2 _)");
    check_expr("n:Person", "(: n Person)");
    check_expr("n:A:B AND m:C", "(AND (: n A B) (: m C))");
    check_expr("(n:Person)", "(: n Person)");
    check_expr("NOT n:Person", "(NOT (: n Person))");
}

static void test_literals(void **state) {
    (void)state;
    check_expr("0", "0");
    check_expr("9223372036854775807", "9223372036854775807");
    check_expr("-9223372036854775808", "-9223372036854775808");
    check_expr("0x1F", "31");
    check_expr("0X7fffffffffffffff", "9223372036854775807");
    check_expr("-0x8000000000000000", "-9223372036854775808");
    check_expr("1.5", "1.5f");
    check_expr("1e10", "1e+10f");
    check_expr("1E-3", "0.001f");
    check_expr("2.5e+2", "250f");
    check_expr(".5", "0.5f");
    check_expr("TRUE", "true");
    check_expr("False", "false");
    check_expr("nUlL", "null");
    check_expr("'it\\'s'", "'it's'");
    check_expr("\"say \\\"hi\\\"\"", "'say \"hi\"'");
    check_expr("'a\\\\b'", "'a\\b'");
    check_expr("'\\u00e9\\u4e2d'", "'\xc3\xa9\xe4\xb8\xad'");
    check_expr("'\\uD83D\\uDE00'", "'\xf0\x9f\x98\x80'");
    check_expr("''", "''");
    check_expr("[]", "[]");
    check_expr("{}", "{}");
    check_expr("[1, 'a', [true, null], {k: 1}]", "[1 'a' [true null] {k:1}]");
    check_expr("{match: 1, `a b`: 2, RETURN: 3}", "{match:1 a b:2 RETURN:3}");
    check_expr("$param", "$param");
    check_expr("$0", "$0");
    check_expr("$`odd name`", "$odd name");
    check_expr("`weird``name`", "weird`name");
    check_expr("n.match + n.return + n.`x y`", "(+ (+ (. n match) (. n return)) (. n x y))");

    /* escapes are decoded into the literal's bytes */
    q_arena a;
    q_arena_init(&a, 0);
    ast_query q;
    parse_error err;
    const char *t = "RETURN '\\n\\t\\r\\b\\f' AS x";
    assert_int_equal(cypher_parse(t, strlen(t), &a, &q, &err), 0);
    qv_value v = q.parts[0].clauses[0].u.projection.items[0].expr->u.literal;
    assert_int_equal(v.type, QV_STRING);
    assert_int_equal(v.u.s.len, 5);
    assert_memory_equal(v.u.s.ptr, "\n\t\r\b\f", 5);
    q_arena_free(&a);
}

static void test_functions_case_comprehensions(void **state) {
    (void)state;
    check_expr("count(*)", "(count *)");
    check_expr("COUNT(DISTINCT n.x)", "(COUNT DISTINCT (. n x))");
    check_expr("coalesce(a, b, 1)", "(coalesce a b 1)");
    check_expr("rand()", "(rand)");
    check_expr("toUpper(toLower('x'))", "(toUpper (toLower 'x'))");
    check_expr("size([x IN range(1, 10) WHERE x % 2 = 0 | x * x])",
               "(size (COMP x (range 1 10) (= (% x 2) 0) (* x x)))");
    check_expr("[x IN list]", "(COMP x list _ _)");
    check_expr("[x IN list | x.a]", "(COMP x list _ (. x a))");
    check_expr("[x, y]", "[x y]");
    check_expr("any(x IN list WHERE x > 1)", "(ANY x list (> x 1))");
    check_expr("ALL(x IN list WHERE x > 1)", "(ALL x list (> x 1))");
    check_expr("none(x IN list WHERE x > 1)", "(NONE x list (> x 1))");
    check_expr("single(x IN list WHERE x > 1)", "(SINGLE x list (> x 1))");
    check_expr("any(x)", "(any x)");
    check_expr("CASE n.x WHEN 1 THEN 'a' WHEN 2 THEN 'b' ELSE 'c' END",
               "(CASE (. n x) (1 'a') (2 'b') 'c')");
    check_expr("CASE WHEN a > 1 THEN 'big' END", "(CASE _ ((> a 1) 'big') _)");
    check_expr("exists(n.x)", "(exists (. n x))");
    check_expr("string.join(['a'], ',')", "(string.join ['a'] ',')");
    check_expr("a.b.c() + n.x", "(+ (a.b.c) (. n x))");
    check_expr("n.x.y", "(. (. n x) y)");
    check_error("RETURN sum(*)", 1, 12, "expected an expression");
    check_error("RETURN CASE END", 1, 13, "expected WHEN");
    check_error("RETURN CASE WHEN 1 THEN 2", 1, 26, "expected WHEN, ELSE or END");
}

static void test_pattern_predicates(void **state) {
    (void)state;
    check_parse("MATCH (a) WHERE (a)-[:T]->(:L) RETURN a",
                "MATCH (a) WHERE (PAT (a)-[:T]->(:L)) | RETURN a \"a\"");
    check_parse("MATCH (a) WHERE NOT (a)-->() RETURN a", "MATCH (a) WHERE (NOT (PAT (a)-[]->())) | RETURN a \"a\"");
    check_parse("MATCH (a) WHERE exists((a)-->()) RETURN a", "MATCH (a) WHERE (PAT (a)-[]->()) | RETURN a \"a\"");
    check_parse("MATCH (a) WHERE (a)<-[:T*1..2]-(b:B {x: 1}) AND a.y = 1 RETURN a",
                "MATCH (a) WHERE (AND (PAT (a)<-[:T*1..2]-(b:B {x:1})) (= (. a y) 1)) | RETURN a \"a\"");
    check_parse("MATCH (a) WHERE (a:L)--(b) RETURN a", "MATCH (a) WHERE (PAT (a:L)-[]-(b)) | RETURN a \"a\"");
    check_parse("MATCH (a) WHERE (a) = (a) RETURN a", "MATCH (a) WHERE (= a a) | RETURN a \"a\"");
    check_error("MATCH (a) WHERE (a {x: 1}) RETURN a", 1, 17, "at least one relationship");
}

static void test_misc_forms(void **state) {
    (void)state;
    check_parse("MATCH (n:`Weird Label` {`odd key`: 1})-[:`REL TYPE`]->(m) RETURN n",
                "MATCH (n:Weird Label {odd key:1})-[:REL TYPE]->(m) | RETURN n \"n\"");
    check_parse("MATCH (n) SET n.end = 1, n.match = n.return", "MATCH (n) | SET (. n end) = 1, (. n match) = (. n return)");
    check_parse("MATCH (n) RETURN n SKIP $s LIMIT $l", "MATCH (n) | RETURN n \"n\" SKIP $s LIMIT $l");
    check_parse("MATCH (n) RETURN n.a AS a, count(*) AS c ORDER BY count(*) DESC",
                "MATCH (n) | RETURN (. n a) AS a, (count *) AS c ORDER (count *) DESC");
    check_parse("MATCH (n) WHERE n.id IN $ids AND all(x IN n.list WHERE x > 0) RETURN n",
                "MATCH (n) WHERE (AND (IN (. n id) $ids) (ALL x (. n list) (> x 0))) | RETURN n \"n\"");
    check_parse("MATCH (a /* c */)-[ // c\n :T]->(b) RETURN a", "MATCH (a)-[:T]->(b) | RETURN a \"a\"");
    check_parse("RETURN CASE WHEN CASE x WHEN 1 THEN true END THEN 1 END AS y",
                "RETURN (CASE _ ((CASE x (1 true) _) 1) _) AS y");
    check_parse("UNWIND range(1, 3) AS i WITH i WHERE i > 1 RETURN i",
                "UNWIND (range 1 3) AS i | WITH i \"i\" WHERE (> i 1) | RETURN i \"i\"");
    check_parse("MATCH (n) WITH n AS yield, n AS call, n AS index RETURN yield, call, index",
                "MATCH (n) | WITH n AS yield, n AS call, n AS index | RETURN yield \"yield\", call \"call\", "
                "index \"index\"");
    check_parse("MERGE (a:A {id: 1}) MERGE (b:B {id: 2}) MERGE (a)-[:T]->(b)",
                "MERGE (a:A {id:1}) | MERGE (b:B {id:2}) | MERGE (a)-[:T]->(b)");
    /* map projections are not supported (yet) */
    check_error("MATCH (n) RETURN n {.name} AS x", 1, 20, "Invalid input '{'");
}

static void test_positions(void **state) {
    (void)state;
    const char *t = "MATCH (a)\n  -[r:T]->(b)\nWHERE a.x = 1\nRETURN a.x + 2 AS y";
    q_arena a;
    q_arena_init(&a, 0);
    ast_query q;
    parse_error err;
    assert_int_equal(cypher_parse(t, strlen(t), &a, &q, &err), 0);
    const ast_clause *m = &q.parts[0].clauses[0];
    assert_int_equal(m->pos.line, 1);
    assert_int_equal(m->pos.column, 1);
    const ast_path *path = &m->u.match.pattern.paths[0];
    assert_int_equal(path->nodes[0].pos.line, 1);
    assert_int_equal(path->nodes[0].pos.column, 7);
    assert_int_equal(path->rels[0].pos.line, 2);
    assert_int_equal(path->rels[0].pos.column, 3);
    assert_int_equal(path->nodes[1].pos.column, 11);
    const ast_expr *w = m->u.match.where;
    assert_int_equal(w->kind, AST_BINARY);
    assert_int_equal(w->pos.line, 3);
    assert_int_equal(w->pos.column, 11); /* the operator */
    assert_int_equal(w->u.op.lhs->pos.column, 8);
    const ast_clause *r = &q.parts[0].clauses[1];
    assert_int_equal(r->pos.line, 4);
    assert_int_equal(q.writes, false);
    q_arena_free(&a);
}

static void test_big_literals(void **state) {
    (void)state;
    /* a 1 MB string literal, and an identifier over the name limit */
    size_t n = 1u << 20;
    char *q = malloc(n + 64);
    assert_non_null(q);
    size_t o = (size_t)sprintf(q, "RETURN '");
    memset(q + o, 'x', n);
    o += n;
    o += (size_t)sprintf(q + o, "' AS s");
    q_arena a;
    q_arena_init(&a, 0);
    ast_query out;
    parse_error err;
    assert_int_equal(cypher_parse(q, o, &a, &out, &err), 0);
    assert_int_equal(out.parts[0].clauses[0].u.projection.items[0].expr->u.literal.u.s.len, n);
    q_arena_free(&a);
    o = (size_t)sprintf(q, "RETURN ");
    memset(q + o, 'v', QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES + 1);
    o += QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES + 1;
    q_arena_init(&a, 0);
    assert_int_equal(cypher_parse(q, o, &a, &out, &err), -1);
    assert_non_null(strstr(err.message, "Identifier is too long"));
    q_arena_free(&a);
    /* maps with many keys: duplicates folded in the constant path */
    o = (size_t)sprintf(q, "CYPHER m={");
    for (int i = 0; i < 1000; i++) o += (size_t)sprintf(q + o, "%sk%d:%d", i ? "," : "", i % 100, i);
    o += (size_t)sprintf(q + o, "} RETURN $m AS m");
    q_arena_init(&a, 0);
    assert_int_equal(cypher_parse(q, o, &a, &out, &err), 0);
    qv_map *map = out.params[0].value->u.literal.u.map;
    assert_int_equal(map->count, 100);
    assert_int_equal(map->values[7].u.i, 907); /* last duplicate wins, first position kept */
    assert_memory_equal(map->keys[7].ptr, "k7", 2);
    q_arena_free(&a);
    free(q);
}

/* Valid queries mutated at random (bytes deleted, duplicated, replaced,
 * tokens swapped in): never a crash. */
static void test_mutations(void **state) {
    (void)state;
    const char *base[] = {
        "MATCH (a:A {x: 1})-[r:T*1..2]->(b) WHERE a.y > 2 AND NOT (a)-->(b) RETURN a.x AS x, count(*) ORDER BY x",
        "CYPHER p=[1,'a',{k:-2.5}] UNWIND $p AS v MERGE (n:N {v: v}) ON CREATE SET n.c = 1 RETURN n",
        "CALL db.labels() YIELD label WHERE label STARTS WITH 'x' RETURN label UNION RETURN 'y' AS label",
        "MATCH (n) WITH n, [x IN n.l WHERE x > 1 | x * 2] AS l RETURN CASE WHEN size(l) > 0 THEN l[0] ELSE null END AS f",
    };
    const char *inserts[] = {"(", ")", "[", "]", "{", "}", "'", "\"", "`", "-", ">", "<", ":", ",", "..", "*",
                             "$", "\\", "/*", "//", "\n", "MATCH", "RETURN", "WHERE", "AS", "0x", "1e", "|"};
    char buf[512];
    for (int iter = 0; iter < 30000; iter++) {
        const char *b = base[rng() % (sizeof base / sizeof base[0])];
        size_t len = strlen(b);
        memcpy(buf, b, len);
        int edits = 1 + (int)(rng() % 4);
        for (int e = 0; e < edits && len > 2; e++) {
            size_t at = (size_t)(rng() % len);
            switch (rng() % 3) {
            case 0: /* delete a run */ {
                size_t run = 1 + (size_t)(rng() % 6);
                if (at + run > len) run = len - at;
                memmove(buf + at, buf + at + run, len - at - run);
                len -= run;
                break;
            }
            case 1: /* insert a fragment */ {
                const char *f = inserts[rng() % (sizeof inserts / sizeof inserts[0])];
                size_t fl = strlen(f);
                if (len + fl >= sizeof buf) break;
                memmove(buf + at + fl, buf + at, len - at);
                memcpy(buf + at, f, fl);
                len += fl;
                break;
            }
            default: /* replace a byte */
                buf[at] = (char)(rng() & 0xFF);
                break;
            }
        }
        char *exact = malloc(len ? len : 1);
        assert_non_null(exact);
        memcpy(exact, buf, len);
        parse_any(exact, len);
        free(exact);
    }
}

/* ---------------------------------------------------------------- */
/* Tests: errors and positions                                       */
/* ---------------------------------------------------------------- */

static void test_syntax_errors(void **state) {
    (void)state;
    check_error("MATCH (n) RETRN n", 1, 11, "Invalid input 'RETRN': expected");
    check_error("RETRN n", 1, 1, "Invalid input 'RETRN': expected MATCH");
    check_error("", 1, 1, "Invalid input at end of input");
    check_error("   // only a comment\n", 2, 1, "end of input");
    check_error("MATCH (n:Person|Other) RETURN n", 1, 16, "Invalid input '|': expected a label, '{', a parameter or ')'");
    check_error("MATCH (n)\nWHERE n.x = \nRETURN n", 3, 1, "Invalid input 'RETURN': expected an expression");
    check_error("MATCH (n)", 1, 1, "Query cannot conclude with MATCH");
    check_error("MATCH (n) WITH n", 1, 11, "Query cannot conclude with WITH");
    check_error("UNWIND [1] AS x", 1, 1, "Query cannot conclude with UNWIND");
    check_error("RETURN 1 MATCH (n) RETURN n", 1, 10, "RETURN can only be used at the end of the query");
    check_error("RETURN 1 AS x RETURN 2", 1, 15, "RETURN can only be used at the end");
    check_error("MATCH (n RETURN n", 1, 10, "expected a label, '{', a parameter or ')'");
    check_error("MATCH (n) RETURN n.", 1, 20, "Invalid input at end of input: expected a property key name");
    check_error("RETURN 'abc", 1, 8, "unterminated string literal");
    check_error("RETURN 1 /* abc", 1, 10, "unterminated comment");
    check_error("RETURN `abc", 1, 8, "unterminated back-quoted identifier");
    check_error("RETURN 9223372036854775808", 1, 8, "integer is too large");
    check_error("RETURN 99999999999999999999", 1, 8, "integer is too large");
    check_error("RETURN 0x10000000000000000", 1, 8, "integer is too large");
    check_error("RETURN 0x", 1, 8, "invalid hexadecimal integer");
    check_error("RETURN 12abc", 1, 8, "invalid number");
    check_error("RETURN 'a\\qb'", 1, 10, "Invalid input '\\qb': invalid escape sequence");
    check_error("RETURN 'a\\u12'", 1, 10, "four hexadecimal digits");
    check_error("RETURN '\\uD800'", 1, 9, "unpaired surrogate");
    check_error("RETURN 1 # x", 1, 10, "Invalid input '#': unexpected character");
    check_error("RETURN $", 1, 8, "a parameter name must follow '$'");
    check_error("MATCH (match) RETURN 1", 1, 8, "expected a variable, a label");
    check_error("RETURN match", 1, 8, "Invalid input 'match': expected an expression");
    check_error("RETURN [1, 2", 1, 13, "Invalid input at end of input: expected ',' or ']'");
    check_error("RETURN {a 1}", 1, 11, "expected ':'");
    check_error("RETURN a IS 1", 1, 13, "expected NOT or NULL");
    check_error("MATCH (n) RETURN n ORDER n", 1, 26, "expected BY");
    check_error("MATCH (a)-[r:]->(b) RETURN a", 1, 14, "expected a relationship type name");
    check_error("MATCH (a)-[r]>(b) RETURN a", 1, 14, "expected '-'");
    check_error("MATCH (a)-[r]-(b)-(c) RETURN a", 1, 19, "Invalid input '(': expected '-'");
    /* multi-line position, column in characters (é is one) */
    check_error("MATCH (n)\n  WHERE n.name = 'é'\n  RETURN n n", 3, 12, "Invalid input 'n'");
    /* NUL byte in the middle of the text */
    {
        const char q[] = "MATCH (n)\0 RETURN n";
        q_arena a;
        q_arena_init(&a, 0);
        ast_query out;
        parse_error err;
        assert_int_equal(cypher_parse(q, sizeof q - 1, &a, &out, &err), -1);
        assert_int_equal(err.line, 1);
        assert_int_equal(err.column, 10);
        assert_non_null(strstr(err.message, "Invalid input '\\x00'"));
        q_arena_free(&a);
    }
}

static void test_comments_and_whitespace(void **state) {
    (void)state;
    check_parse("// leading\nMATCH /* inline */ (n) // trailing\n RETURN n /* end */",
                "MATCH (n) | RETURN n \"n\"");
    check_parse("\tMATCH\r\n(n)\fRETURN\vn", "MATCH (n) | RETURN n \"n\"");
    check_parse("RETURN 1 AS x // no newline at the end", "RETURN 1 AS x");
    check_parse("RETURN 8/2 AS x", "RETURN (/ 8 2) AS x");
}

static void test_nesting_limit(void **state) {
    (void)state;
    /* just under and far over the depth limit */
    size_t depth = 100000;
    char *q = malloc(depth * 2 + 32);
    assert_non_null(q);
    const char *kinds[] = {"(", "[", "-", "NOT ", "{a:"};
    const char *closes[] = {")", "]", "", "", "}"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t o = (size_t)sprintf(q, "RETURN ");
        size_t kl = strlen(kinds[k]), cl = strlen(closes[k]);
        size_t n = depth / kl;
        for (size_t i = 0; i < n; i++) {
            memcpy(q + o, kinds[k], kl);
            o += kl;
        }
        q[o++] = '1';
        for (size_t i = 0; i < n && cl; i++) {
            if (o + cl + 16 > depth * 2 + 32) break;
            memcpy(q + o, closes[k], cl);
            o += cl;
        }
        q_arena a;
        q_arena_init(&a, 0);
        ast_query out;
        parse_error err;
        assert_int_equal(cypher_parse(q, o, &a, &out, &err), -1);
        assert_non_null(strstr(err.message, "nested too deeply"));
        q_arena_free(&a);
    }
    /* 100 levels are fine */
    size_t o = (size_t)sprintf(q, "RETURN ");
    for (int i = 0; i < 100; i++) q[o++] = '(';
    q[o++] = '1';
    for (int i = 0; i < 100; i++) q[o++] = ')';
    o += (size_t)sprintf(q + o, " AS x");
    assert_int_equal(parse_any(q, o), 0);
    /* long operator chains build deep trees: bounded too */
    const char *chains[] = {"+1", " AND x", " OR x", " XOR x", "^2", "*2", " IN x", " = x", ".a", "[0]",
                            " IS NULL", " CONTAINS 'a'"};
    for (size_t k = 0; k < sizeof chains / sizeof chains[0]; k++) {
        size_t cl = strlen(chains[k]);
        for (int terms = 100; terms <= 100000; terms *= 1000) {
            o = (size_t)sprintf(q, "RETURN x");
            for (int i = 0; i < terms && o + cl + 16 < depth * 2; i++) {
                memcpy(q + o, chains[k], cl);
                o += cl;
            }
            o += (size_t)sprintf(q + o, " AS y");
            int rc = parse_any(q, o);
            if (rc != (terms == 100 ? 0 : -1)) fail_msg("chain '%s' x %d: rc %d", chains[k], terms, rc);
        }
    }
    /* nested CYPHER parameter lists too */
    o = (size_t)sprintf(q, "CYPHER p=");
    for (int i = 0; i < 100000; i++) q[o++] = '[';
    o += (size_t)sprintf(q + o, " RETURN 1");
    assert_int_equal(parse_any(q, o), -1);
    free(q);
}

/* The deepest accepted nesting of each recursive form parses on a thread
 * with a 1 MiB stack (8 MiB under ASan, whose frames carry redzones): the
 * depth limit is reached long before the stack is. */
typedef struct deep_job {
    const char *open, *close;
    int levels;
    int rc;
    char message[256];
} deep_job;

static void *deep_parse(void *arg) {
    deep_job *j = arg;
    size_t ol = strlen(j->open), cl = strlen(j->close);
    size_t cap = 64 + (size_t)j->levels * (ol + cl);
    char *q = malloc(cap);
    size_t o = (size_t)sprintf(q, "RETURN ");
    for (int i = 0; i < j->levels; i++) {
        memcpy(q + o, j->open, ol);
        o += ol;
    }
    q[o++] = '1';
    for (int i = 0; i < j->levels; i++) {
        memcpy(q + o, j->close, cl);
        o += cl;
    }
    o += (size_t)sprintf(q + o, " AS x");
    q_arena a;
    q_arena_init(&a, 0);
    ast_query out;
    parse_error err;
    j->rc = cypher_parse(q, o, &a, &out, &err);
    memcpy(j->message, err.message, sizeof j->message);
    q_arena_free(&a);
    free(q);
    return NULL;
}

static void test_stack_bounded(void **state) {
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    size_t stack = 8u << 20;
#else
    size_t stack = 1u << 20;
#endif
    const char *forms[][2] = {{"(", ")"}, {"[", "]"}, {"{a:", "}"}, {"f(", ")"}, {"-(", ")"},
                              {"NOT (", ")"}, {"CASE WHEN ", " THEN 1 END"}, {"[x IN ", "]"},
                              {"any(x IN ", ")"}, {"exists((a)-[*{p: ", "}]->(b))"}, {"a[", "]"}};
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
        int levels[] = {QUIVER_QUERY_AST_DEPTH_MAX / 4, QUIVER_QUERY_AST_DEPTH_MAX / 2, QUIVER_QUERY_AST_DEPTH_MAX,
                        QUIVER_QUERY_AST_DEPTH_MAX * 4};
        int accepted = 0;
        for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
            deep_job j = {forms[k][0], forms[k][1], levels[l], 0, {0}};
            pthread_attr_t at;
            pthread_attr_init(&at);
            pthread_attr_setstacksize(&at, stack);
            pthread_t th;
            assert_int_equal(pthread_create(&th, &at, deep_parse, &j), 0);
            pthread_join(th, NULL);
            pthread_attr_destroy(&at);
            if (j.rc == 0) accepted++;
            else if (strstr(j.message, "nested too deeply") == NULL)
                fail_msg("%s x %d: %s", forms[k][0], levels[l], j.message);
        }
        /* shallow forms parse; the deepest is always refused */
        if (accepted < 1 || accepted > 3) fail_msg("form %s: %d depths accepted", forms[k][0], accepted);
    }
}

static void test_arena_limit(void **state) {
    (void)state;
    const char *q = "CYPHER rows=[[1,2,3],[4,5,6],[7,8,9],[10,11,12]] UNWIND $rows AS r RETURN r";
    for (size_t cap = 16; cap < 8192; cap += 16) {
        q_arena a;
        q_arena_init(&a, cap);
        ast_query out;
        parse_error err;
        int rc = cypher_parse(q, strlen(q), &a, &out, &err);
        if (rc != 0) assert_non_null(strstr(err.message, "too much memory"));
        q_arena_free(&a);
    }
}

/* Every prefix of a set of valid queries: error or success, never a crash
 * (and under ASan never an out-of-bounds read: each prefix is copied into
 * an exactly sized heap block). */
static void test_truncations(void **state) {
    (void)state;
    const char *qs[] = {
        "CYPHER a=[1,-2.5e3,'x\\u00e9',{k:[true]}] MATCH p=(a:A:`B c` {x: $a})-[r:T|:U*1..3 {w: 0x1f}]->"
        "(b)<--(c)--(d) WHERE a.x STARTS WITH 'y' AND NOT (a)-->(b) OR any(x IN [1] WHERE x > .5) "
        "WITH a, count(DISTINCT b) AS c ORDER BY c DESC SKIP 1 LIMIT 2 WHERE c > 1 "
        "UNWIND [x IN range(0, 3) | x ^ 2] AS y MERGE (m:M {id: y}) ON CREATE SET m.c = 1 "
        "ON MATCH SET m += {z: 2}, m:Q SET m.v = CASE WHEN y > 1 THEN 'a' ELSE \"b\" END "
        "REMOVE m.old, m:Old RETURN m.v, m[0..2], y IS NOT NULL // comment\n",
        "CALL db.labels() YIELD label AS l WHERE l =~ 'a.*' RETURN l UNION ALL RETURN 1 AS l",
        "CREATE INDEX FOR (n:L) ON (n.p, n.q)",
        "DROP INDEX ON :L(p) /* c */",
        "MATCH (n) DETACH DELETE n",
    };
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        size_t len = strlen(qs[k]);
        assert_int_equal(parse_any(qs[k], len), 0);
        for (size_t n = 0; n < len; n++) {
            char *copy = malloc(n == 0 ? 1 : n);
            assert_non_null(copy);
            memcpy(copy, qs[k], n);
            parse_any(copy, n);
            free(copy);
        }
    }
}


static void test_random_bytes(void **state) {
    (void)state;
    /* random bytes, and random mixes of Cypher fragments */
    const char *frags[] = {"MATCH ", "(", ")", "[", "]", "{", "}", "-", "->", "<-", ":", "n", "'s'",
                           "\"", "'", "`", "1", "0x", ".", "..", "*", "RETURN ", "WHERE ", ",",
                           " AS ", "=", "$p", "\\", "/*", "*/", "//", "\n", "\0", "CASE ", "END ",
                           "WHEN ", "NOT ", "IN ", "CYPHER ", "x=", "UNION ", "CREATE ", "|", "e5"};
    size_t nf = sizeof frags / sizeof frags[0];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(rng() % 64);
        char *buf = malloc(len * 8 + 1);
        assert_non_null(buf);
        size_t o = 0;
        if (iter % 2 == 0) {
            for (size_t i = 0; i < len; i++) buf[o++] = (char)(rng() & 0xFF);
        } else {
            for (size_t i = 0; i < len; i++) {
                const char *f = frags[rng() % nf];
                size_t fl = strlen(f);
                if (fl == 0) fl = 1; /* the NUL fragment */
                memcpy(buf + o, f, fl);
                o += fl;
            }
        }
        char *exact = malloc(o == 0 ? 1 : o);
        assert_non_null(exact);
        memcpy(exact, buf, o);
        parse_any(exact, o);
        free(exact);
        free(buf);
    }
}

/* ---------------------------------------------------------------- */
/* Throughput (reported, never asserted)                              */
/* ---------------------------------------------------------------- */

static void test_import_batch_throughput(void **state) {
    (void)state;
    size_t target = 20u * 1024 * 1024;
    char *q = malloc(target + 256);
    assert_non_null(q);
    size_t o = (size_t)sprintf(q, "CYPHER rows=[");
    uint64_t i = 0;
    while (o < target) {
        o += (size_t)sprintf(q + o, "%s[%llu,'name-%llu',%d.25,true,-%llu]", i ? "," : "",
                             (unsigned long long)i, (unsigned long long)i, (int)(i % 1000),
                             (unsigned long long)(i * 7));
        i++;
    }
    o += (size_t)sprintf(q + o, "] UNWIND $rows AS r CREATE (:N {id: r[0], name: r[1]})");
    double best = 1e9;
    for (int run = 0; run < 3; run++) {
        q_arena a;
        q_arena_init(&a, 0);
        ast_query out;
        parse_error err;
        struct timespec t0, t1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        int rc = cypher_parse(q, o, &a, &out, &err);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
        assert_int_equal(rc, 0);
        assert_int_equal(out.param_count, 1);
        assert_int_equal(out.params[0].value->kind, AST_LITERAL);
        assert_int_equal(out.params[0].value->u.literal.type, QV_LIST);
        assert_int_equal(out.params[0].value->u.literal.u.list->count, i);
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (s < best) best = s;
        if (run == 2) {
            printf("# parse of a %.1f MB CYPHER list literal (%llu rows): %.3f s CPU, %.0f MB/s, arena %.1f MB\n",
                   (double)o / 1e6, (unsigned long long)i, best, (double)o / 1e6 / best,
                   (double)a.used_bytes / 1e6);
        }
        q_arena_free(&a);
    }
    free(q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_return),
        cmocka_unit_test(test_relationship_directions),
        cmocka_unit_test(test_variable_length),
        cmocka_unit_test(test_named_and_shortest_paths),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_set_remove_delete),
        cmocka_unit_test(test_with_return_projection),
        cmocka_unit_test(test_column_names),
        cmocka_unit_test(test_unwind_call_union),
        cmocka_unit_test(test_index_ddl),
        cmocka_unit_test(test_explain_and_params_prefix),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_functions_case_comprehensions),
        cmocka_unit_test(test_pattern_predicates),
        cmocka_unit_test(test_misc_forms),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_big_literals),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_comments_and_whitespace),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_stack_bounded),
        cmocka_unit_test(test_arena_limit),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_import_batch_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
