/*
 * test_storage_encoding.c -- byte formats of the store: big-endian keys
 * sort numerically, property values round-trip (LZ4 path, huge and empty
 * strings, nested lists), maps are refused, and the order-preserving index
 * encoding sorts numbers (ints and doubles mixed), strings and booleans.
 */
#include <math.h>

#include "test_storage_util.h"
#include "common/limits.h"
#include "storage/keys.h"
#include "storage/props.h"

static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
    size_t m = an < bn ? an : bn;
    int c = memcmp(a, b, m);
    if (c) return c < 0 ? -1 : 1;
    return an < bn ? -1 : an > bn;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_key_order_is_numeric(void **state) {
    (void)state;
    uint64_t vals[] = {0, 1, 2, 255, 256, 65535, 65536, 1ull << 32, (1ull << 32) + 1, UINT64_MAX - 1, UINT64_MAX};
    size_t n = sizeof vals / sizeof vals[0];
    for (size_t i = 0; i + 1 < n; i++) {
        uint8_t a[32], b[32];
        size_t al = qk_adj(a, 7, vals[i], 3, 9, 1);
        size_t bl = qk_adj(b, 7, vals[i + 1], 0, 0, 0);
        assert_true(bytes_cmp(a, al, b, bl) < 0);
        al = qk_entity(a, 1, vals[i]);
        bl = qk_entity(b, 1, vals[i + 1]);
        assert_true(bytes_cmp(a, al, b, bl) < 0);
        assert_int_equal(qk_get_u64(a + 4), vals[i]);
        /* graph id dominates */
        al = qk_entity(a, 1, UINT64_MAX);
        bl = qk_entity(b, 2, 0);
        assert_true(bytes_cmp(a, al, b, bl) < 0);
    }
    for (int i = 0; i < 10000; i++) {
        uint64_t x = rnd(), y = rnd();
        uint8_t a[16], b[16];
        qk_label(a, 3, 4, x);
        qk_label(b, 3, 4, y);
        int c = bytes_cmp(a, 16, b, 16);
        assert_int_equal(c, x < y ? -1 : x > y);
    }
    uint8_t k[4] = {1, 2, 0xff, 0xff};
    assert_int_equal(qk_prefix_successor(k, 4), 2);
    assert_int_equal(k[1], 3);
    uint8_t ff[2] = {0xff, 0xff};
    assert_int_equal(qk_prefix_successor(ff, 2), 0);
}

static void roundtrip(qv_value v, q_arena *a, qv_value *out, size_t *enc_len) {
    qbuf b = {0};
    assert_int_equal(qp_encode_value(&b, v, 0), QS_OK);
    assert_int_equal(qp_value_size(b.p, b.len), b.len);
    assert_int_equal(qp_decode_value(b.p, b.len, a, out), QS_OK);
    if (enc_len) *enc_len = b.len;
    qbuf_free(&b);
}

static void test_value_roundtrip(void **state) {
    (void)state;
    q_arena a;
    q_arena_init(&a, 0);
    qv_value out;
    int64_t ints[] = {0, 1, -1, 63, -64, 64, 1000000, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        roundtrip(qv_int(ints[i]), &a, &out, NULL);
        assert_int_equal(out.type, QV_INT);
        assert_true(out.u.i == ints[i]);
    }
    double ds[] = {0.0, -0.0, 1.5, -1e300, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        roundtrip(qv_double(ds[i]), &a, &out, NULL);
        assert_int_equal(out.type, QV_DOUBLE);
        assert_memory_equal(&out.u.d, &ds[i], 8);
    }
    roundtrip(qv_double(NAN), &a, &out, NULL);
    assert_true(isnan(out.u.d));
    roundtrip(qv_bool(true), &a, &out, NULL);
    assert_true(out.type == QV_BOOL && out.u.b);
    roundtrip(qv_bool(false), &a, &out, NULL);
    assert_true(out.type == QV_BOOL && !out.u.b);
    /* empty string */
    size_t el;
    roundtrip(qv_string("", 0), &a, &out, &el);
    assert_int_equal(out.type, QV_STRING);
    assert_int_equal(out.u.s.len, 0);
    assert_int_equal(el, 2);
    /* string with NUL bytes, short */
    roundtrip(qv_string("a\0b", 3), &a, &out, NULL);
    assert_int_equal(out.u.s.len, 3);
    assert_memory_equal(out.u.s.ptr, "a\0b", 3);
    /* compressible large string takes the LZ4 path and shrinks */
    size_t big = 1u << 20;
    char *s = malloc(big);
    for (size_t i = 0; i < big; i++) s[i] = "abcdefgh"[(i / 3) % 8];
    roundtrip(qv_string(s, (uint32_t)big), &a, &out, &el);
    assert_true(el < big / 10);
    assert_int_equal(out.u.s.len, big);
    assert_memory_equal(out.u.s.ptr, s, big);
    /* incompressible large string is stored raw and still round-trips */
    for (size_t i = 0; i < big; i++) s[i] = (char)rnd();
    roundtrip(qv_string(s, (uint32_t)big), &a, &out, &el);
    assert_true(el >= big);
    assert_memory_equal(out.u.s.ptr, s, big);
    /* just at the threshold */
    memset(s, 'z', QUIVER_PROPERTY_LZ4_THRESHOLD_BYTES);
    roundtrip(qv_string(s, QUIVER_PROPERTY_LZ4_THRESHOLD_BYTES), &a, &out, &el);
    assert_true(el < QUIVER_PROPERTY_LZ4_THRESHOLD_BYTES);
    assert_memory_equal(out.u.s.ptr, s, QUIVER_PROPERTY_LZ4_THRESHOLD_BYTES);
    /* huge: 32 MiB */
    size_t huge = 32u << 20;
    char *h = malloc(huge);
    for (size_t i = 0; i < huge; i++) h[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    roundtrip(qv_string(h, (uint32_t)huge), &a, &out, NULL);
    assert_int_equal(out.u.s.len, huge);
    assert_memory_equal(out.u.s.ptr, h, huge);
    free(h);
    free(s);

    /* nested lists: [1, "x", [true, null, [2.5]], [], <long string>] */
    char longs[600];
    memset(longs, 'q', sizeof longs);
    qv_value inner2[1] = {qv_double(2.5)};
    qv_list l2 = {.count = 1, .items = inner2};
    qv_value l2v = {.type = QV_LIST, .u.list = &l2};
    qv_value inner1[3] = {qv_bool(true), qv_null(), l2v};
    qv_list l1 = {.count = 3, .items = inner1};
    qv_value l1v = {.type = QV_LIST, .u.list = &l1};
    qv_list empty = {.count = 0, .items = NULL};
    qv_value ev = {.type = QV_LIST, .u.list = &empty};
    qv_value top[5] = {qv_int(1), tsu_str("x"), l1v, ev, qv_string(longs, sizeof longs)};
    qv_list l0 = {.count = 5, .items = top};
    qv_value l0v = {.type = QV_LIST, .u.list = &l0};
    roundtrip(l0v, &a, &out, NULL);
    assert_int_equal(out.type, QV_LIST);
    assert_int_equal(out.u.list->count, 5);
    assert_int_equal(out.u.list->items[0].u.i, 1);
    assert_memory_equal(out.u.list->items[1].u.s.ptr, "x", 1);
    qv_list *o1 = out.u.list->items[2].u.list;
    assert_int_equal(o1->count, 3);
    assert_true(o1->items[0].u.b);
    assert_int_equal(o1->items[1].type, QV_NULL);
    assert_int_equal(o1->items[2].u.list->count, 1);
    assert_true(o1->items[2].u.list->items[0].u.d == 2.5);
    assert_int_equal(out.u.list->items[3].type, QV_LIST);
    assert_int_equal(out.u.list->items[3].u.list->count, 0);
    assert_int_equal(out.u.list->items[4].u.s.len, sizeof longs);
    assert_memory_equal(out.u.list->items[4].u.s.ptr, longs, sizeof longs);

    /* refused: maps (top or nested), nodes, null at top level, too deep */
    qbuf b = {0};
    qv_map m = {0};
    qv_value mv = {.type = QV_MAP, .u.map = &m};
    assert_int_equal(qp_encode_value(&b, mv, 0), QS_INVALID);
    qv_value with_map[2] = {qv_int(1), mv};
    qv_list lm = {.count = 2, .items = with_map};
    qv_value lmv = {.type = QV_LIST, .u.list = &lm};
    assert_int_equal(qp_encode_value(&b, lmv, 0), QS_INVALID);
    assert_int_equal(b.len, 0); /* nothing left behind */
    qv_node node = {0};
    qv_value nv = {.type = QV_NODE, .u.node = &node};
    assert_int_equal(qp_encode_value(&b, nv, 0), QS_INVALID);
    assert_int_equal(qp_encode_value(&b, qv_null(), 0), QS_INVALID);
    qv_list chain[QUIVER_VALUE_DEPTH_MAX + 2];
    qv_value cv[QUIVER_VALUE_DEPTH_MAX + 2];
    cv[0] = qv_int(1);
    for (int i = 1; i < QUIVER_VALUE_DEPTH_MAX + 2; i++) {
        chain[i].count = 1;
        chain[i].items = &cv[i - 1];
        cv[i].type = QV_LIST;
        cv[i].u.list = &chain[i];
    }
    assert_int_equal(qp_encode_value(&b, cv[QUIVER_VALUE_DEPTH_MAX], 0), QS_OK);
    b.len = 0;
    assert_int_equal(qp_encode_value(&b, cv[QUIVER_VALUE_DEPTH_MAX + 1], 0), QS_LIMIT);
    /* corrupt input is reported, not crashed on */
    uint8_t junk[3] = {0x05, 0x40, 'a'};
    assert_int_equal(qp_decode_value(junk, 3, &a, &out), QS_CORRUPT);
    assert_int_equal(qp_value_size(junk, 3), 0);
    uint8_t badtag[1] = {0x77};
    assert_int_equal(qp_decode_value(badtag, 1, &a, &out), QS_CORRUPT);
    qbuf_free(&b);
    q_arena_free(&a);
}

static void test_record_find_one_property(void **state) {
    (void)state;
    q_arena a;
    q_arena_init(&a, 0);
    qbuf vals = {0}, rec = {0};
    qp_raw raw[3];
    uint32_t keys[3] = {2, 5, 300};
    qv_value vs[3] = {qv_int(-7), tsu_str("hello"), qv_double(0.25)};
    size_t offs[3];
    for (int i = 0; i < 3; i++) {
        offs[i] = vals.len;
        assert_int_equal(qp_encode_value(&vals, vs[i], 0), QS_OK);
    }
    for (int i = 0; i < 3; i++) {
        raw[i].key_id = keys[i];
        raw[i].p = vals.p + offs[i];
        raw[i].len = (uint32_t)((i < 2 ? offs[i + 1] : vals.len) - offs[i]);
    }
    uint32_t labels[2] = {1, 70000};
    qp_node_encode(&rec, labels, 2, raw, 3);
    uint32_t got[QUIVER_LABELS_PER_NODE_COUNT_MAX], lc;
    size_t off;
    assert_int_equal(qp_node_labels(rec.p, rec.len, got, &lc, &off), QS_OK);
    assert_int_equal(lc, 2);
    assert_int_equal(got[1], 70000);
    const uint8_t *vp;
    size_t vl;
    assert_int_equal(qp_props_find(rec.p + off, rec.len - off, 5, &vp, &vl), QS_OK);
    qv_value v;
    assert_int_equal(qp_decode_value(vp, vl, &a, &v), QS_OK);
    assert_memory_equal(v.u.s.ptr, "hello", 5);
    assert_int_equal(qp_props_find(rec.p + off, rec.len - off, 4, &vp, &vl), QS_NOT_FOUND);
    assert_int_equal(qp_props_find(rec.p + off, rec.len - off, 301, &vp, &vl), QS_NOT_FOUND);
    qv_props p;
    assert_int_equal(qp_props_decode(rec.p + off, rec.len - off, &a, &p), QS_OK);
    assert_int_equal(p.count, 3);
    assert_int_equal(p.key_ids[2], 300);
    assert_true(p.values[2].u.d == 0.25);
    /* compact: 5 bytes of labels, 23 of properties (the double takes 9) */
    assert_true(rec.len <= 28);
    /* truncated record is corrupt */
    assert_int_equal(qp_props_decode(rec.p + off, rec.len - off - 1, &a, &p), QS_CORRUPT);
    qbuf_reset(&rec);
    qp_edge_encode(&rec, 3, 1ull << 40, 5, raw, 1);
    uint32_t ty;
    uint64_t s, d;
    assert_int_equal(qp_edge_head(rec.p, rec.len, &ty, &s, &d, &off), QS_OK);
    assert_int_equal(ty, 3);
    assert_true(s == 1ull << 40);
    assert_int_equal(d, 5);
    qbuf_free(&vals);
    qbuf_free(&rec);
    q_arena_free(&a);
}

/* Sign of the expected numeric order of two values of one family. */
static int num_cmp(qv_value a, qv_value b) {
    long double x = a.type == QV_INT ? (long double)a.u.i : (long double)a.u.d;
    long double y = b.type == QV_INT ? (long double)b.u.i : (long double)b.u.d;
    return x < y ? -1 : x > y;
}

static int enc_cmp(qv_value a, qv_value b) {
    qbuf x = {0}, y = {0};
    assert_true(qp_index_encode(&x, a));
    assert_true(qp_index_encode(&y, b));
    int c = bytes_cmp(x.p, x.len, y.p, y.len);
    qbuf_free(&x);
    qbuf_free(&y);
    return c;
}

static void test_index_encoding_order(void **state) {
    (void)state;
    qv_value nums[] = {
        qv_double(-INFINITY), qv_int(INT64_MIN), qv_double(-9.3e18), qv_int(-(1ll << 53) - 1),
        qv_double(-1e10), qv_int(-1000), qv_double(-1.5), qv_int(-1), qv_double(-0.5),
        qv_int(0), qv_double(1e-300), qv_double(0.5), qv_int(1), qv_double(1.5), qv_int(2),
        qv_int(1ll << 53), qv_int((1ll << 53) + 1), qv_double(9007199254740994.0), qv_int((1ll << 53) + 3),
        qv_double(1e18), qv_int(INT64_MAX - 1), qv_int(INT64_MAX), qv_double(9.3e18), qv_double(1e300),
        qv_double(INFINITY),
    };
    size_t n = sizeof nums / sizeof nums[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) assert_int_equal(enc_cmp(nums[i], nums[j]), num_cmp(nums[i], nums[j]));
    /* equal numbers, equal bytes: 1 = 1.0, 0 = -0.0 */
    assert_int_equal(enc_cmp(qv_int(1), qv_double(1.0)), 0);
    assert_int_equal(enc_cmp(qv_int(0), qv_double(-0.0)), 0);
    assert_int_equal(enc_cmp(qv_int(-42), qv_double(-42.0)), 0);
    assert_int_equal(enc_cmp(qv_int(1ll << 60), qv_double((double)(1ll << 60))), 0);
    /* random ints and doubles */
    for (int i = 0; i < 20000; i++) {
        qv_value a = (rnd() & 1) ? qv_int((int64_t)rnd() >> (rnd() % 64))
                                 : qv_double(((double)(int64_t)rnd()) / (double)(1 + (rnd() % 1000000)));
        qv_value b = (rnd() & 1) ? qv_int((int64_t)rnd() >> (rnd() % 64))
                                 : qv_double(((double)(int64_t)rnd()) / (double)(1 + (rnd() % 1000000)));
        assert_int_equal(enc_cmp(a, b), num_cmp(a, b));
    }
    /* NaN sorts after every number */
    assert_true(enc_cmp(qv_double(NAN), qv_double(INFINITY)) > 0);
    /* strings bytewise, prefix first, embedded NUL handled */
    const char *strs[] = {"", "a", "a\0", "a\0a", "aa", "ab", "b", "\xff"};
    size_t sl[] = {0, 1, 2, 3, 2, 2, 1, 1};
    for (size_t i = 0; i + 1 < 8; i++) {
        assert_true(enc_cmp(qv_string(strs[i], (uint32_t)sl[i]), qv_string(strs[i + 1], (uint32_t)sl[i + 1])) < 0);
    }
    assert_int_equal(enc_cmp(tsu_str("same"), tsu_str("same")), 0);
    /* booleans */
    assert_true(enc_cmp(qv_bool(false), qv_bool(true)) < 0);
    /* families are apart: booleans < numbers < strings */
    assert_true(enc_cmp(qv_bool(true), qv_int(INT64_MIN)) < 0);
    assert_true(enc_cmp(qv_double(INFINITY), tsu_str("")) < 0);
    /* not indexed */
    qbuf b = {0};
    qv_list l = {.count = 0, .items = NULL};
    qv_value lv = {.type = QV_LIST, .u.list = &l};
    assert_false(qp_index_encode(&b, lv));
    assert_false(qp_index_encode(&b, qv_null()));
    assert_int_equal(b.len, 0);
    qbuf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_order_is_numeric),
        cmocka_unit_test(test_value_roundtrip),
        cmocka_unit_test(test_record_find_one_property),
        cmocka_unit_test(test_index_encoding_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
