/*
 * qdriver.c -- a closed-loop load driver for Quiver's GRAPH.* commands.
 *
 * Why not only redis-benchmark: it repeats one fixed command, so it cannot
 * look up a different package name per request, and its single-client
 * latency includes its own event-loop overhead.  qdriver runs CLIENTS
 * threads, each with one blocking hiredis connection (one request in flight
 * per client, like a real application), picks a name per request from a
 * file when the query contains @NAME@, and reports throughput and latency
 * percentiles measured around each round trip with CLOCK_MONOTONIC.
 *
 *   qdriver -p PORT [-h HOST] [-c CLIENTS] [-n TOTAL] [-w WARMUP] [-g GRAPH]
 *           [-r] [-f NAMES_FILE] [-s SEED] [-S|--setup COMMAND] QUERY
 *
 *   -r            send GRAPH.RO_QUERY instead of GRAPH.QUERY
 *   -S, --setup COMMAND
 *                 send COMMAND (split at spaces into words, e.g.
 *                 "QUIVER.CONSISTENCY stale") once on each connection right
 *                 after connecting, before any measured or warm-up request;
 *                 an error reply fails that client (redis-benchmark cannot
 *                 do this: it has no per-connection set-up command)
 *   -f FILE       one name per line; each @NAME@ in QUERY is replaced by a
 *                 name drawn uniformly at random (per-thread xorshift, seeded)
 *   @I@ in QUERY  replaced by a unique request number (e.g. for CREATE)
 *
 * Output (one line, key=value): clients total errors seconds qps p50_ms
 * p90_ms p99_ms max_ms.  Exit status 1 if any request failed (error reply or
 * connection loss), with the first error on stderr.
 *
 * Limits: TOTAL <= 10^8 requests; names file <= 10^6 names, 255 bytes each;
 * query text after substitution <= 64 KiB.
 */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOTAL_MAX 100000000LL
#define NAMES_MAX 1000000
#define NAME_SIZE_MAX 256
#define QUERY_SIZE_MAX (64 * 1024)
#define CLIENTS_MAX 1024
#define SETUP_WORDS_MAX 16

static const char *host = "127.0.0.1";
static int port = 6379;
static int clients = 1;
static long long total = 10000;
static long long warmup = 0;
static const char *graph = "bench";
static const char *query_template;
static int read_only;
static uint64_t seed = 42;
/* --setup: the command's words (pointers into a copy of the argument). */
static const char *setup_argv[SETUP_WORDS_MAX];
static size_t setup_argc;

static char **names;
static size_t names_count;

static atomic_llong next_request;
static atomic_llong errors;
static atomic_flag error_printed = ATOMIC_FLAG_INIT;

/* Latency of measured request i (request number minus warm-up) in slot i;
 * 0 for a request that never completed. */
static uint64_t *latencies_ns;

typedef struct worker {
    pthread_t thread;
    int id;
} worker;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift64(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Replace @NAME@ and @I@ in the template; returns 0 or -1 if too long. */
static int build_query(char *out, size_t cap, uint64_t *rng, long long i) {
    const char *t = query_template;
    size_t n = 0;
    while (*t) {
        const char *rep = NULL;
        char num[32];
        size_t skip = 1;
        if (strncmp(t, "@NAME@", 6) == 0 && names_count > 0) {
            rep = names[xorshift64(rng) % names_count];
            skip = 6;
        } else if (strncmp(t, "@I@", 3) == 0) {
            snprintf(num, sizeof num, "%lld", i);
            rep = num;
            skip = 3;
        }
        if (rep) {
            size_t l = strlen(rep);
            if (n + l >= cap) return -1;
            memcpy(out + n, rep, l);
            n += l;
        } else {
            if (n + 1 >= cap) return -1;
            out[n++] = *t;
        }
        t += skip;
    }
    out[n] = '\0';
    return 0;
}

static void report_error(const char *what, const char *detail) {
    atomic_fetch_add(&errors, 1);
    if (!atomic_flag_test_and_set(&error_printed))
        fprintf(stderr, "qdriver: %s: %s\n", what, detail ? detail : "");
}

static void *run(void *arg) {
    worker *w = arg;
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + (uint64_t)w->id + 1;
    struct timeval tv = {120, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (c == NULL || c->err) {
        report_error("connect", c ? c->errstr : "out of memory");
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (setup_argc > 0) {
        redisReply *r = redisCommandArgv(c, (int)setup_argc, setup_argv, NULL);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            report_error("setup command", r ? r->str : c->errstr);
            if (r) freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    char *q = malloc(QUERY_SIZE_MAX);
    if (q == NULL) {
        report_error("malloc", "query buffer");
        redisFree(c);
        return NULL;
    }
    const char *cmd = read_only ? "GRAPH.RO_QUERY" : "GRAPH.QUERY";
    for (;;) {
        long long i = atomic_fetch_add(&next_request, 1);
        if (i >= warmup + total) break;
        if (build_query(q, QUERY_SIZE_MAX, &rng, i) != 0) {
            report_error("query", "too long after substitution");
            break;
        }
        uint64_t t0 = now_ns();
        redisReply *r = redisCommand(c, "%s %s %s", cmd, graph, q);
        uint64_t t1 = now_ns();
        if (r == NULL) {
            report_error("connection", c->errstr);
            break;
        }
        if (r->type == REDIS_REPLY_ERROR) report_error("error reply", r->str);
        freeReplyObject(r);
        if (i >= warmup) latencies_ns[i - warmup] = (t1 - t0) ? (t1 - t0) : 1;
    }
    free(q);
    redisFree(c);
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void load_names(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "qdriver: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    names = calloc(NAMES_MAX, sizeof *names);
    char line[NAME_SIZE_MAX];
    while (names_count < NAMES_MAX && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') continue;
        names[names_count++] = strdup(line);
    }
    fclose(f);
    if (names_count == 0) {
        fprintf(stderr, "qdriver: %s: no names\n", path);
        exit(2);
    }
}

static void usage(void) {
    fprintf(stderr, "usage: qdriver -p PORT [-h HOST] [-c CLIENTS] [-n TOTAL] [-w WARMUP] "
                    "[-g GRAPH] [-r] [-f NAMES_FILE] [-s SEED] [-S|--setup COMMAND] QUERY\n");
    exit(2);
}

/* Split --setup's argument at spaces into setup_argv (the copy is kept for
 * the whole run); exits with usage on an empty or too long command. */
static void parse_setup(const char *arg) {
    char *copy = strdup(arg);
    if (copy == NULL) {
        fprintf(stderr, "qdriver: out of memory\n");
        exit(2);
    }
    setup_argc = 0;
    for (char *save = NULL, *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (setup_argc == SETUP_WORDS_MAX) {
            fprintf(stderr, "qdriver: --setup: more than %d words\n", SETUP_WORDS_MAX);
            exit(2);
        }
        setup_argv[setup_argc++] = w;
    }
    if (setup_argc == 0) usage();
}

int main(int argc, char **argv) {
    int opt;
    const char *names_file = NULL;
    static const struct option long_options[] = {{"setup", required_argument, NULL, 'S'}, {NULL, 0, NULL, 0}};
    while ((opt = getopt_long(argc, argv, "h:p:c:n:w:g:rf:s:S:", long_options, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': clients = atoi(optarg); break;
        case 'n': total = atoll(optarg); break;
        case 'w': warmup = atoll(optarg); break;
        case 'g': graph = optarg; break;
        case 'r': read_only = 1; break;
        case 'f': names_file = optarg; break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'S': parse_setup(optarg); break;
        default: usage();
        }
    }
    if (optind != argc - 1 || clients < 1 || clients > CLIENTS_MAX || total < 1 ||
        total > TOTAL_MAX || warmup < 0 || warmup > TOTAL_MAX || port <= 0)
        usage();
    query_template = argv[optind];
    if (names_file) load_names(names_file);

    worker *ws = calloc((size_t)clients, sizeof *ws);
    latencies_ns = calloc((size_t)total, sizeof *latencies_ns);
    if (ws == NULL || latencies_ns == NULL) {
        fprintf(stderr, "qdriver: out of memory\n");
        return 2;
    }
    for (int i = 0; i < clients; i++) ws[i].id = i;
    /* Warm-up requests are excluded from the measured window: the clock
     * starts when request number `warmup` is handed out (approximately). */
    uint64_t t0 = now_ns();
    for (int i = 0; i < clients; i++) pthread_create(&ws[i].thread, NULL, run, &ws[i]);
    uint64_t t_measure = 0;
    if (warmup > 0) {
        while (atomic_load(&next_request) < warmup && atomic_load(&errors) == 0) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        t_measure = now_ns();
    } else {
        t_measure = t0;
    }
    for (int i = 0; i < clients; i++) pthread_join(ws[i].thread, NULL);
    uint64_t t1 = now_ns();

    long long n = 0;
    uint64_t *all = latencies_ns;
    for (long long i = 0; i < total; i++)
        if (latencies_ns[i]) all[n++] = latencies_ns[i];
    qsort(all, (size_t)n, sizeof(uint64_t), cmp_u64);
    double secs = (double)(t1 - t_measure) / 1e9;
#define PCT(p) (n ? (double)all[(long long)((double)(n - 1) * (p))] / 1e6 : 0.0)
    printf("clients=%d total=%lld errors=%lld seconds=%.3f qps=%.1f p50_ms=%.3f p90_ms=%.3f "
           "p99_ms=%.3f max_ms=%.3f\n",
           clients, n, (long long)atomic_load(&errors), secs, secs > 0 ? (double)n / secs : 0.0,
           PCT(0.50), PCT(0.90), PCT(0.99), n ? (double)all[n - 1] / 1e6 : 0.0);
    return atomic_load(&errors) ? 1 : 0;
}
