/*
 * fuzz_util.h -- helpers shared by the libFuzzer harnesses in tests/fuzz/.
 *
 * A harness is one LLVMFuzzerTestOneInput per file: it feeds the input to one
 * parser of untrusted bytes and checks invariants with FUZZ_CHECK, which
 * aborts (libFuzzer then saves the input as a crash) with the condition's
 * text.  QUIVER_ASSERT would do the same; FUZZ_CHECK names the harness in the
 * message so a report says which invariant of which harness broke.
 *
 * fuzz_rng: a tiny deterministic generator (xorshift64*, Vigna, "An
 * experimental exploration of Marsaglia's xorshift generators, scrambled",
 * 2016) seeded from the input, for choices such as chunk sizes: the same
 * input always makes the same choices, so every crash reproduces.
 *
 * Thread: libFuzzer calls the harness on one thread; nothing here is shared.
 */
#ifndef QUIVER_FUZZ_UTIL_H
#define QUIVER_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n", __FILE__,     \
                    __LINE__, #cond);                                             \
            abort();                                                              \
        }                                                                         \
    } while (0)

typedef struct fuzz_rng {
    uint64_t state; /* never 0 */
} fuzz_rng;

/* Seed from up to 8 bytes of data (any bytes; a zero seed is replaced). */
static inline void fuzz_rng_init(fuzz_rng *r, const uint8_t *data, size_t len) {
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < len && i < 8; i++) s = (s ^ data[i]) * 0x100000001B3ull;
    r->state = s ? s : 1;
}

static inline uint64_t fuzz_rng_next(fuzz_rng *r) {
    uint64_t x = r->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* A value in [1, max] (max >= 1), skewed towards small ones so that pieces
 * of one or two bytes, where framing bugs live, are common. */
static inline size_t fuzz_rng_piece(fuzz_rng *r, size_t max) {
    uint64_t x = fuzz_rng_next(r);
    size_t cap = (x & 3) == 0 ? max : ((x & 3) == 1 ? 2 : 16);
    if (cap > max) cap = max;
    return (size_t)((x >> 8) % cap) + 1;
}

#endif
