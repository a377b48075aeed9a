/*
 * test_statemachine_codec.c -- the log entry format (command.c) and the
 * result codec (result_codec.c): round trips of every field and value type,
 * and refusal of truncated, bit-flipped, forged and over-limit input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <xxhash.h>

#include "common/limits.h"
#include "statemachine/command.h"
#include "statemachine/result_codec.h"

/* The query module frees results; until it is linked into every test this
 * weak stand-in does the same (struct calloc'd, contents in its arena). */
__attribute__((weak)) void query_result_free(query_result *r) {
    if (r == NULL) return;
    q_arena_free(&r->arena);
    free(r);
}

static sm_command make_cmd(sm_command_kind kind, uint64_t origin, uint64_t seq, const char *graph,
                           const char *text) {
    sm_command c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.request_id.origin = origin;
    c.request_id.seq = seq;
    c.timestamp_ms = -1234567890123LL;
    c.seed = 0xfeedfacecafebeefULL;
    c.work_max = 0x0102030405060708ULL;
    c.memory_max_bytes = 99ull << 20;
    c.graph.ptr = graph;
    c.graph.len = (uint32_t)strlen(graph);
    c.text.ptr = text;
    c.text.len = (uint32_t)strlen(text);
    return c;
}

static void encode3(uint8_t **buf, size_t *len) {
    sm_command cmds[3] = {
        make_cmd(SM_CMD_QUERY, 7, 1, "g", "CREATE (:A {x: 1})"),
        make_cmd(SM_CMD_GRAPH_DELETE, 7, 2, "other graph", ""),
        make_cmd(SM_CMD_QUERY, UINT64_MAX, UINT64_MAX, "g", "CYPHER p=1 MATCH (n) SET n.p = $p"),
    };
    assert_int_equal(sm_entry_encode(cmds, 3, buf, len), SM_CODEC_OK);
}

static void test_entry_round_trip(void **state) {
    (void)state;
    uint8_t *buf;
    size_t len;
    encode3(&buf, &len);
    q_arena a;
    q_arena_init(&a, 0);
    sm_command *cmds;
    uint32_t n;
    assert_int_equal(sm_entry_decode(buf, len, &a, &cmds, &n), SM_CODEC_OK);
    assert_int_equal(n, 3);
    assert_int_equal(cmds[0].kind, SM_CMD_QUERY);
    assert_int_equal(cmds[0].request_id.origin, 7);
    assert_int_equal(cmds[0].request_id.seq, 1);
    assert_true(cmds[0].timestamp_ms == -1234567890123LL);
    assert_true(cmds[0].seed == 0xfeedfacecafebeefULL);
    assert_true(cmds[0].work_max == 0x0102030405060708ULL);
    assert_true(cmds[0].memory_max_bytes == 99ull << 20);
    assert_int_equal(cmds[0].graph.len, 1);
    assert_memory_equal(cmds[0].graph.ptr, "g", 1);
    assert_int_equal(cmds[0].text.len, strlen("CREATE (:A {x: 1})"));
    assert_memory_equal(cmds[0].text.ptr, "CREATE (:A {x: 1})", cmds[0].text.len);
    assert_int_equal(cmds[1].kind, SM_CMD_GRAPH_DELETE);
    assert_int_equal(cmds[1].text.len, 0);
    assert_memory_equal(cmds[1].graph.ptr, "other graph", 11);
    assert_true(cmds[2].request_id.origin == UINT64_MAX && cmds[2].request_id.seq == UINT64_MAX);
    /* size accounting matches */
    size_t expect = SM_ENTRY_OVERHEAD_BYTES;
    for (uint32_t i = 0; i < n; i++) expect += sm_command_encoded_size(&cmds[i]);
    assert_int_equal(sm_entry_padded_size(expect), len);
    assert_int_equal(len % SM_ENTRY_ALIGN_BYTES, 0); /* raft's libuv backend needs it */
    q_arena_free(&a);
    free(buf);
}

static void test_entry_truncated_and_bitflips(void **state) {
    (void)state;
    uint8_t *buf;
    size_t len;
    encode3(&buf, &len);
    q_arena a;
    q_arena_init(&a, 0);
    sm_command *cmds = NULL;
    uint32_t n = 0;
    for (size_t cut = 0; cut < len; cut++)
        assert_int_not_equal(sm_entry_decode(buf, cut, &a, &cmds, &n), SM_CODEC_OK);
    for (size_t bit = 0; bit < len * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(sm_entry_decode(buf, len, &a, &cmds, &n), SM_CODEC_OK);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_null(cmds);
    assert_int_equal(n, 0);
    assert_int_equal(sm_entry_decode(buf, len, &a, &cmds, &n), SM_CODEC_OK);
    assert_null(NULL);
    assert_int_equal(sm_entry_decode(NULL, 0, &a, &cmds, &n), SM_CODEC_MALFORMED);
    q_arena_free(&a);
    free(buf);
}

/* A hand-made entry with a VALID checksum, so the field checks are what refuse it. */
typedef struct forge {
    uint8_t b[512];
    size_t n;
} forge;

static void f_u8(forge *f, uint8_t v) { f->b[f->n++] = v; }
static void f_u32(forge *f, uint32_t v) {
    for (int i = 3; i >= 0; i--) f_u8(f, (uint8_t)(v >> (8 * i)));
}
static void f_u64(forge *f, uint64_t v) {
    for (int i = 7; i >= 0; i--) f_u8(f, (uint8_t)(v >> (8 * i)));
}
static void f_bytes(forge *f, const char *s) {
    memcpy(f->b + f->n, s, strlen(s));
    f->n += strlen(s);
}
static void f_seal(forge *f) { f_u64(f, XXH3_64bits(f->b, f->n)); }

static void f_cmd(forge *f, uint8_t kind, uint64_t origin, uint64_t seq, uint32_t glen, const char *g,
                  uint32_t tlen, const char *t) {
    f_u8(f, kind);
    f_u64(f, origin);
    f_u64(f, seq);
    f_u64(f, 5);
    f_u64(f, 6);
    f_u32(f, glen);
    f_bytes(f, g);
    f_u32(f, tlen);
    f_bytes(f, t);
}

static int decode_forged(forge *f) {
    q_arena a;
    q_arena_init(&a, 1 << 20); /* a forged count must not make us allocate much */
    sm_command *cmds;
    uint32_t n;
    int rc = sm_entry_decode(f->b, f->n, &a, &cmds, &n);
    q_arena_free(&a);
    return rc;
}

static void test_entry_forged(void **state) {
    (void)state;
    forge f;
    /* baseline: a valid forged entry decodes (version 1: no budgets, read as 0) */
    f.n = 0; f_u8(&f, 1); f_u32(&f, 1); f_cmd(&f, 1, 1, 1, 1, "g", 2, "x1"); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_OK);
    {
        q_arena a;
        q_arena_init(&a, 1 << 20);
        sm_command *cmds;
        uint32_t n;
        assert_int_equal(sm_entry_decode(f.b, f.n, &a, &cmds, &n), SM_CODEC_OK);
        assert_int_equal(n, 1);
        assert_true(cmds[0].work_max == 0 && cmds[0].memory_max_bytes == 0);
        q_arena_free(&a);
    }
    /* unknown versions (0 and 3; 1 is the forge's own format, 2 the current one) */
    f.n = 0; f_u8(&f, 3); f_u32(&f, 1); f_cmd(&f, 1, 1, 1, 1, "g", 2, "x1"); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_VERSION);
    f.n = 0; f_u8(&f, 0); f_u32(&f, 1); f_cmd(&f, 1, 1, 1, 1, "g", 2, "x1"); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_VERSION);
    /* a version-1 command read as version 2 misses its budget fields: malformed */
    f.n = 0; f_u8(&f, 2); f_u32(&f, 1); f_cmd(&f, 1, 1, 1, 1, "g", 2, "x1"); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_MALFORMED);
    /* count 0 */
    f.n = 0; f_u8(&f, 1); f_u32(&f, 0); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_MALFORMED);
    /* count over the limit */
    f.n = 0; f_u8(&f, 1); f_u32(&f, QUIVER_ENTRY_COMMANDS_COUNT_MAX + 1); f_cmd(&f, 1, 1, 1, 1, "g", 0, ""); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_LIMIT);
    /* count larger than the bytes could hold */
    f.n = 0; f_u8(&f, 1); f_u32(&f, 1000); f_cmd(&f, 1, 1, 1, 1, "g", 0, ""); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_MALFORMED);
    /* count 2, one command */
    f.n = 0; f_u8(&f, 1); f_u32(&f, 2); f_cmd(&f, 1, 1, 1, 1, "g", 30, "123456789012345678901234567890"); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_MALFORMED);
    /* unknown kind, zero request id, empty graph */
    f.n = 0; f_u8(&f, 1); f_u32(&f, 1); f_cmd(&f, 9, 1, 1, 1, "g", 0, ""); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_MALFORMED);
    f.n = 0; f_u8(&f, 1); f_u32(&f, 1); f_cmd(&f, 1, 0, 1, 1, "g", 0, ""); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_MALFORMED);
    f.n = 0; f_u8(&f, 1); f_u32(&f, 1); f_cmd(&f, 1, 1, 0, 1, "g", 0, ""); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_MALFORMED);
    f.n = 0; f_u8(&f, 1); f_u32(&f, 1); f_cmd(&f, 1, 1, 1, 0, "", 1, "x"); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_MALFORMED);
    /* graph length past the end, and over the limit */
    f.n = 0; f_u8(&f, 1); f_u32(&f, 1); f_cmd(&f, 1, 1, 1, 200, "g", 0, ""); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_MALFORMED);
    f.n = 0; f_u8(&f, 1); f_u32(&f, 1); f_cmd(&f, 1, 1, 1, QUIVER_GRAPH_NAME_SIZE_MAX_BYTES + 1, "g", 0, ""); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_LIMIT);
    /* text length past the end (huge) */
    f.n = 0; f_u8(&f, 1); f_u32(&f, 1); f_cmd(&f, 1, 1, 1, 1, "g", 0xffffffffu, "abc"); f_seal(&f);
    assert_int_not_equal(decode_forged(&f), SM_CODEC_OK);
    /* after the last command: up to 7 zero bytes of padding, nothing else */
    f.n = 0; f_u8(&f, 1); f_u32(&f, 1); f_cmd(&f, 1, 1, 1, 1, "g", 2, "x1"); f_u8(&f, 0); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_OK);
    f.n = 0; f_u8(&f, 1); f_u32(&f, 1); f_cmd(&f, 1, 1, 1, 1, "g", 2, "x1"); f_u8(&f, 1); f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_MALFORMED);
    f.n = 0; f_u8(&f, 1); f_u32(&f, 1); f_cmd(&f, 1, 1, 1, 1, "g", 2, "x1");
    for (int i = 0; i < 8; i++) f_u8(&f, 0);
    f_seal(&f);
    assert_int_equal(decode_forged(&f), SM_CODEC_MALFORMED);
}

static void test_entry_encode_refuses(void **state) {
    (void)state;
    uint8_t *buf = (uint8_t *)"untouched";
    size_t len = 0;
    sm_command c = make_cmd(SM_CMD_QUERY, 1, 1, "g", "RETURN 1");
    assert_int_equal(sm_entry_encode(&c, 0, &buf, &len), SM_CODEC_INVALID);
    assert_int_equal(sm_entry_encode(&c, QUIVER_ENTRY_COMMANDS_COUNT_MAX + 1, &buf, &len), SM_CODEC_LIMIT);
    c.kind = (sm_command_kind)0;
    assert_int_equal(sm_entry_encode(&c, 1, &buf, &len), SM_CODEC_INVALID);
    c = make_cmd(SM_CMD_QUERY, 0, 1, "g", "RETURN 1");
    assert_int_equal(sm_entry_encode(&c, 1, &buf, &len), SM_CODEC_INVALID);
    c = make_cmd(SM_CMD_QUERY, 1, 1, "", "RETURN 1");
    assert_int_equal(sm_entry_encode(&c, 1, &buf, &len), SM_CODEC_INVALID);
    char *big = malloc(QUIVER_GRAPH_NAME_SIZE_MAX_BYTES + 2);
    memset(big, 'a', QUIVER_GRAPH_NAME_SIZE_MAX_BYTES + 1);
    big[QUIVER_GRAPH_NAME_SIZE_MAX_BYTES + 1] = 0;
    c = make_cmd(SM_CMD_QUERY, 1, 1, big, "RETURN 1");
    assert_int_equal(sm_entry_encode(&c, 1, &buf, &len), SM_CODEC_LIMIT);
    big[QUIVER_GRAPH_NAME_SIZE_MAX_BYTES] = 0; /* exactly the limit is fine */
    c = make_cmd(SM_CMD_QUERY, 1, 1, big, "RETURN 1");
    assert_int_equal(sm_entry_encode(&c, 1, &buf, &len), SM_CODEC_OK);
    free(buf);
    free(big);
    /* the command count limit itself is accepted */
    sm_command *many = malloc(sizeof *many * QUIVER_ENTRY_COMMANDS_COUNT_MAX);
    for (uint32_t i = 0; i < QUIVER_ENTRY_COMMANDS_COUNT_MAX; i++) many[i] = make_cmd(SM_CMD_QUERY, 3, i + 1, "g", "CREATE ()");
    assert_int_equal(sm_entry_encode(many, QUIVER_ENTRY_COMMANDS_COUNT_MAX, &buf, &len), SM_CODEC_OK);
    q_arena a;
    q_arena_init(&a, 0);
    sm_command *out;
    uint32_t n;
    assert_int_equal(sm_entry_decode(buf, len, &a, &out, &n), SM_CODEC_OK);
    assert_int_equal(n, QUIVER_ENTRY_COMMANDS_COUNT_MAX);
    assert_int_equal(out[n - 1].request_id.seq, n);
    q_arena_free(&a);
    free(buf);
    free(many);
}

/* ---------------- result codec ---------------- */

static qv_str S(const char *s) { return (qv_str){s, (uint32_t)strlen(s)}; }

static qv_node *mk_node(q_arena *a, uint64_t id, const char *label, const char *key, qv_value v) {
    qv_node *n = q_arena_calloc(a, 1, sizeof *n);
    n->id = id;
    n->loaded = true;
    n->label_count = 1;
    n->label_ids = q_arena_calloc(a, 1, sizeof(uint32_t));
    n->label_ids[0] = (uint32_t)id % 3;
    n->label_names = q_arena_calloc(a, 1, sizeof(qv_str));
    n->label_names[0] = S(label);
    n->props.count = 1;
    n->props.key_ids = q_arena_calloc(a, 1, sizeof(uint32_t));
    n->props.key_ids[0] = 4;
    n->props.keys = q_arena_calloc(a, 1, sizeof(qv_str));
    n->props.keys[0] = S(key);
    n->props.values = q_arena_calloc(a, 1, sizeof(qv_value));
    n->props.values[0] = v;
    return n;
}

static qv_edge *mk_edge(q_arena *a, uint64_t id, uint64_t src, uint64_t dst) {
    qv_edge *e = q_arena_calloc(a, 1, sizeof *e);
    e->id = id;
    e->src_id = src;
    e->dst_id = dst;
    e->type_id = 2;
    e->loaded = true;
    e->type_name = S("DEPENDS_ON");
    e->props.count = 0;
    return e;
}

/* A result with one row holding every value type. */
static query_result *every_type_result(void) {
    query_result *r = sm_result_empty(true);
    q_arena *a = &r->arena;
    enum { COLS = 11 };
    const char *names[COLS] = {"null", "bool", "int", "double", "string", "list", "map", "node", "edge", "path", "unloaded"};
    r->column_count = COLS;
    r->columns = q_arena_calloc(a, COLS, sizeof(qv_str));
    for (int i = 0; i < COLS; i++) r->columns[i] = S(names[i]);
    r->row_count = 2;
    r->cells = q_arena_calloc(a, 2 * COLS, sizeof(qv_value));
    qv_value *c = r->cells;
    c[0] = qv_null();
    c[1] = qv_bool(true);
    c[2] = qv_int(INT64_MIN);
    c[3] = qv_double(-0.125);
    c[4] = qv_string("h\0llo", 5);
    qv_list *l = q_arena_calloc(a, 1, sizeof *l);
    l->count = 3;
    l->items = q_arena_calloc(a, 3, sizeof(qv_value));
    l->items[0] = qv_int(1);
    l->items[1] = qv_string("two", 3);
    qv_list *inner = q_arena_calloc(a, 1, sizeof *inner); /* empty nested list */
    l->items[2].type = QV_LIST;
    l->items[2].u.list = inner;
    c[5].type = QV_LIST;
    c[5].u.list = l;
    qv_map *m = q_arena_calloc(a, 1, sizeof *m);
    m->count = 2;
    m->keys = q_arena_calloc(a, 2, sizeof(qv_str));
    m->values = q_arena_calloc(a, 2, sizeof(qv_value));
    m->keys[0] = S("b");
    m->values[0] = qv_double(1e300);
    m->keys[1] = S("a");
    m->values[1] = c[5];
    c[6].type = QV_MAP;
    c[6].u.map = m;
    qv_node *n1 = mk_node(a, 10, "Package", "name", qv_string("libc6", 5));
    qv_node *n2 = mk_node(a, 11, "Package", "version", qv_int(3));
    c[7].type = QV_NODE;
    c[7].u.node = n1;
    qv_edge *e = mk_edge(a, 99, 10, 11);
    c[8].type = QV_EDGE;
    c[8].u.edge = e;
    qv_path *p = q_arena_calloc(a, 1, sizeof *p);
    p->node_count = 2;
    p->nodes = q_arena_calloc(a, 2, sizeof(qv_node *));
    p->edges = q_arena_calloc(a, 1, sizeof(qv_edge *));
    p->nodes[0] = n1;
    p->nodes[1] = n2;
    p->edges[0] = e;
    c[9].type = QV_PATH;
    c[9].u.path = p;
    qv_node *un = q_arena_calloc(a, 1, sizeof *un);
    un->id = 12345;
    c[10].type = QV_NODE;
    c[10].u.node = un;
    for (int i = 0; i < COLS; i++) c[COLS + i] = qv_int(i); /* second row */
    r->stats.nodes_created = 2;
    r->stats.relationships_created = 1;
    r->stats.properties_set = 3;
    r->stats.labels_added = 1;
    r->stats.indices_deleted = 7;
    r->stats.execution_time_ms = 0.25;
    return r;
}

static void test_result_round_trip_every_type(void **state) {
    (void)state;
    query_result *r = every_type_result();
    uint8_t *buf;
    size_t len;
    assert_int_equal(sm_result_encode(r, 0, &buf, &len), SM_CODEC_OK);
    query_result *d = NULL;
    assert_int_equal(sm_result_decode(buf, len, &d), SM_CODEC_OK);
    assert_non_null(d);
    assert_int_equal(d->status, QUERY_OK);
    assert_null(d->error);
    assert_true(d->wrote);
    assert_int_equal(d->column_count, 11);
    assert_int_equal(d->row_count, 2);
    assert_memory_equal(d->columns[9].ptr, "path", 4);
    qv_value *c = d->cells;
    assert_int_equal(c[0].type, QV_NULL);
    assert_true(c[1].type == QV_BOOL && c[1].u.b);
    assert_true(c[2].type == QV_INT && c[2].u.i == INT64_MIN);
    assert_true(c[3].type == QV_DOUBLE && c[3].u.d == -0.125);
    assert_true(c[4].type == QV_STRING && c[4].u.s.len == 5);
    assert_memory_equal(c[4].u.s.ptr, "h\0llo", 5);
    assert_true(c[5].type == QV_LIST && c[5].u.list->count == 3);
    assert_true(c[5].u.list->items[2].type == QV_LIST && c[5].u.list->items[2].u.list->count == 0);
    assert_true(c[6].type == QV_MAP && c[6].u.map->count == 2);
    assert_memory_equal(c[6].u.map->keys[0].ptr, "b", 1); /* insertion order kept */
    assert_true(c[6].u.map->values[0].u.d == 1e300);
    assert_true(c[7].type == QV_NODE && c[7].u.node->id == 10 && c[7].u.node->loaded);
    assert_int_equal(c[7].u.node->label_count, 1);
    assert_int_equal(c[7].u.node->label_ids[0], 1);
    assert_memory_equal(c[7].u.node->label_names[0].ptr, "Package", 7);
    assert_int_equal(c[7].u.node->props.key_ids[0], 4);
    assert_memory_equal(c[7].u.node->props.keys[0].ptr, "name", 4);
    assert_memory_equal(c[7].u.node->props.values[0].u.s.ptr, "libc6", 5);
    qv_edge *e = c[8].u.edge;
    assert_true(c[8].type == QV_EDGE && e->id == 99 && e->src_id == 10 && e->dst_id == 11 && e->type_id == 2);
    assert_memory_equal(e->type_name.ptr, "DEPENDS_ON", 10);
    qv_path *p = c[9].u.path;
    assert_true(c[9].type == QV_PATH && p->node_count == 2);
    assert_int_equal(p->nodes[1]->id, 11);
    assert_int_equal(p->nodes[1]->props.values[0].u.i, 3);
    assert_int_equal(p->edges[0]->id, 99);
    assert_true(c[10].type == QV_NODE && c[10].u.node->id == 12345 && !c[10].u.node->loaded);
    assert_int_equal(c[21].u.i, 10);
    assert_int_equal(d->stats.nodes_created, 2);
    assert_int_equal(d->stats.relationships_created, 1);
    assert_int_equal(d->stats.properties_set, 3);
    assert_int_equal(d->stats.labels_added, 1);
    assert_int_equal(d->stats.indices_deleted, 7);
    assert_true(d->stats.execution_time_ms == 0.25);
    /* encoding is deterministic: the decoded result encodes to the same bytes */
    uint8_t *buf2;
    size_t len2;
    assert_int_equal(sm_result_encode(d, 0, &buf2, &len2), SM_CODEC_OK);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    free(buf2);

    /* damaged input never decodes, never crashes */
    query_result *bad = NULL;
    for (size_t cut = 0; cut < len; cut++) assert_int_not_equal(sm_result_decode(buf, cut, &bad), SM_CODEC_OK);
    for (size_t bit = 0; bit < len * 8; bit += 3) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(sm_result_decode(buf, len, &bad), SM_CODEC_OK);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_null(bad);
    /* over the caller's bound */
    uint8_t *small = NULL;
    assert_int_equal(sm_result_encode(r, len - 1, &small, &len2), SM_CODEC_LIMIT);
    assert_null(small);
    assert_int_equal(sm_result_encode(r, len, &small, &len2), SM_CODEC_OK);
    free(small);
    free(buf);
    query_result_free(d);
    query_result_free(r);
}

static void test_result_error(void **state) {
    (void)state;
    query_result *r = sm_result_error(QUERY_ERR_RUNTIME, "Type mismatch: expected Integer but was String");
    uint8_t *buf;
    size_t len;
    assert_int_equal(sm_result_encode(r, 0, &buf, &len), SM_CODEC_OK);
    query_result *d;
    assert_int_equal(sm_result_decode(buf, len, &d), SM_CODEC_OK);
    assert_int_equal(d->status, QUERY_ERR_RUNTIME);
    assert_string_equal(d->error, "Type mismatch: expected Integer but was String");
    assert_int_equal(d->column_count, 0);
    assert_int_equal(d->row_count, 0);
    free(buf);
    query_result_free(d);
    query_result_free(r);
}

/* Forged result bodies with a valid checksum. */
static int decode_forged_result(forge *f) {
    query_result *d = NULL;
    int rc = sm_result_decode(f->b, f->n, &d);
    if (d) query_result_free(d);
    return rc;
}

static void result_header(forge *f, uint8_t status, uint32_t cols, uint64_t rows) {
    f->n = 0;
    f_u8(f, SM_RESULT_VERSION);
    f_u8(f, status);
    f_u8(f, 0);
    f_u32(f, 0);
    for (int i = 0; i < 11; i++) f_u64(f, 0);
    f_u32(f, cols);
    for (uint32_t i = 0; i < cols && i < 4; i++) { f_u32(f, 1); f_u8(f, 'c'); }
    f_u64(f, rows);
}

static void test_result_forged(void **state) {
    (void)state;
    forge f;
    result_header(&f, QUERY_OK, 1, 1); f_u8(&f, QV_INT); f_u64(&f, 5); f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_OK);
    result_header(&f, 200, 1, 1); f_u8(&f, QV_INT); f_u64(&f, 5); f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_MALFORMED); /* unknown status */
    result_header(&f, QUERY_OK, 1, 1); f_u8(&f, 77); f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_MALFORMED); /* unknown tag */
    result_header(&f, QUERY_OK, 1, 1); f_u8(&f, QV_BOOL); f_u8(&f, 2); f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_MALFORMED); /* bool not 0/1 */
    result_header(&f, QUERY_OK, 1, 1000000); f_u8(&f, QV_NULL); f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_MALFORMED); /* rows beyond the bytes */
    result_header(&f, QUERY_OK, 1, (uint64_t)QUIVER_QUERY_RESULT_ROWS_COUNT_MAX + 1); f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_LIMIT);
    result_header(&f, QUERY_OK, 1, 1); f_u8(&f, QV_LIST); f_u32(&f, 0xffffffffu); f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_LIMIT); /* list count over the limit */
    result_header(&f, QUERY_OK, 1, 1); f_u8(&f, QV_LIST); f_u32(&f, 1000); f_u8(&f, QV_NULL); f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_MALFORMED); /* list count beyond the bytes */
    result_header(&f, QUERY_OK, 1, 1); f_u8(&f, QV_PATH); f_u32(&f, 0); f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_MALFORMED); /* empty path */
    result_header(&f, QUERY_OK, 1, 1); f_u8(&f, QV_STRING); f_u32(&f, 400); f_bytes(&f, "short"); f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_MALFORMED); /* string past the end */
    /* nesting deeper than the limit */
    result_header(&f, QUERY_OK, 1, 1);
    for (int i = 0; i < QUIVER_VALUE_DEPTH_MAX + 2; i++) { f_u8(&f, QV_LIST); f_u32(&f, 1); }
    f_u8(&f, QV_NULL); f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_LIMIT);
    /* trailing bytes */
    result_header(&f, QUERY_OK, 1, 1); f_u8(&f, QV_NULL); f_u8(&f, 0); f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_MALFORMED);
    /* unknown version */
    result_header(&f, QUERY_OK, 1, 1); f_u8(&f, QV_NULL); f.b[0] = 9; f_seal(&f);
    assert_int_equal(decode_forged_result(&f), SM_CODEC_VERSION);
}

static void test_result_encode_depth_limit(void **state) {
    (void)state;
    query_result *r = sm_result_empty(false);
    q_arena *a = &r->arena;
    qv_value v = qv_int(1);
    for (int i = 0; i < QUIVER_VALUE_DEPTH_MAX + 5; i++) {
        qv_list *l = q_arena_calloc(a, 1, sizeof *l);
        l->count = 1;
        l->items = q_arena_calloc(a, 1, sizeof(qv_value));
        l->items[0] = v;
        v.type = QV_LIST;
        v.u.list = l;
    }
    r->column_count = 1;
    r->columns = q_arena_calloc(a, 1, sizeof(qv_str));
    r->columns[0] = S("deep");
    r->row_count = 1;
    r->cells = q_arena_calloc(a, 1, sizeof(qv_value));
    r->cells[0] = v;
    uint8_t *buf = NULL;
    size_t len;
    assert_int_equal(sm_result_encode(r, 0, &buf, &len), SM_CODEC_LIMIT);
    assert_null(buf);
    query_result_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_round_trip),
        cmocka_unit_test(test_entry_truncated_and_bitflips),
        cmocka_unit_test(test_entry_forged),
        cmocka_unit_test(test_entry_encode_refuses),
        cmocka_unit_test(test_result_round_trip_every_type),
        cmocka_unit_test(test_result_error),
        cmocka_unit_test(test_result_forged),
        cmocka_unit_test(test_result_encode_depth_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
