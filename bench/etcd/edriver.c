/*
 * edriver.c -- a closed-loop load driver for etcd's v3 JSON API (the
 * grpc-gateway that every etcd 3.4 member serves on its client URL).
 *
 * Why this and not etcd's own `benchmark` tool: Debian packages etcd-server
 * and etcd-client but not tools/benchmark, and `etcdctl put` in a loop
 * measures process start-up, not etcd.  The grpc-gateway costs etcd some CPU
 * per request (JSON <-> protobuf) that a gRPC client would not, so etcd's
 * figures here are, if anything, a little low; Quiver is driven through its
 * own text protocol (RESP), so both are measured through their ordinary
 * client interface.
 *
 * Same model as bench/qdriver.c: CLIENTS threads, one blocking keep-alive
 * HTTP/1.1 connection each, one request in flight per connection, latency
 * measured around each round trip with CLOCK_MONOTONIC, warm-up requests
 * excluded.  Clients are spread round-robin over the endpoints given.
 *
 *   edriver -e HOST:PORT[,HOST:PORT...] [-c CLIENTS] [-n TOTAL] [-w WARMUP]
 *           [-o put|range] [-k KEYSPACE] [-v VALUE_BYTES] [-s]
 *
 *   put    POST /v3/kv/put {"key": "bench/%08d", "value": VALUE_BYTES bytes};
 *          request i writes key i mod KEYSPACE (default 100000)
 *   range  POST /v3/kv/range {"key": "bench/00000000"}: a linearizable read
 *          (serializable=false, etcd's default; -s for serializable)
 *
 * Output (one line, key=value, like qdriver): clients total errors seconds
 * qps p50_ms p90_ms p99_ms max_ms.  Exit status 1 if any request failed
 * (non-200 status, connection loss or timeout), first error on stderr.
 *
 * Limits: TOTAL <= 10^8; CLIENTS <= 1024; 16 endpoints; VALUE_BYTES <= 1024;
 * a response (head + body) <= 64 KiB; 30 s socket timeout per request.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TOTAL_MAX 100000000LL
#define CLIENTS_MAX 1024
#define ENDPOINTS_MAX 16
#define VALUE_BYTES_MAX 1024
#define RESPONSE_SIZE_MAX (64 * 1024)
#define REQUEST_SIZE_MAX 4096
#define SOCKET_TIMEOUT_S 30

typedef struct endpoint {
    char host[64];
    int port;
} endpoint;

static endpoint endpoints[ENDPOINTS_MAX];
static int endpoint_count;
static int clients = 1;
static long long total = 10000;
static long long warmup;
static int op_range;
static int serializable;
static long long keyspace = 100000;
static int value_bytes = 8;

static atomic_llong next_request;
static atomic_llong errors;
static atomic_flag error_printed = ATOMIC_FLAG_INIT;
static uint64_t *latencies_ns;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void report_error(const char *what, const char *detail) {
    atomic_fetch_add(&errors, 1);
    if (!atomic_flag_test_and_set(&error_printed))
        fprintf(stderr, "edriver: %s: %s\n", what, detail ? detail : "");
}

/* RFC 4648 base64 of n bytes into out (NUL-terminated); out needs 4*ceil(n/3)+1. */
static void base64(const unsigned char *in, size_t n, char *out) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

static int dial(const endpoint *e) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e->port)};
    if (inet_pton(AF_INET, e->host, &a.sin_addr) != 1 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {SOCKET_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read one HTTP/1.1 response (Content-Length or chunked body) from fd into
 * buf.  Returns the status code, or -1 on I/O error / malformed / too big.
 * Keep-alive: reads exactly one response; etcd never pipelines unasked. */
static int read_response(int fd, char *buf, size_t cap) {
    size_t have = 0;
    char *body = NULL;
    for (;;) {
        if (have + 1 >= cap) return -1;
        ssize_t r = read(fd, buf + have, cap - 1 - have);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        have += (size_t)r;
        buf[have] = '\0';
        if (body == NULL) {
            char *end = strstr(buf, "\r\n\r\n");
            if (end == NULL) continue;
            body = end + 4;
        }
        size_t head_len = (size_t)(body - buf), body_have = have - head_len;
        char *cl = strcasestr(buf, "\r\ncontent-length:");
        if (cl && cl < body) {
            long long want = atoll(cl + 17);
            if (want < 0 || (size_t)want + head_len >= cap) return -1;
            if (body_have < (size_t)want) continue;
            break;
        }
        if (strcasestr(buf, "\r\ntransfer-encoding: chunked") != NULL) {
            /* complete when the terminating zero-length chunk has arrived */
            if (body_have >= 5 && (strncmp(body, "0\r\n\r\n", 5) == 0 || strstr(body, "\r\n0\r\n\r\n") != NULL))
                break;
            continue;
        }
        return -1; /* neither length nor chunked: not what etcd sends */
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return -1;
    return status;
}

typedef struct worker {
    pthread_t thread;
    int id;
} worker;

static void *run(void *arg) {
    worker *w = arg;
    const endpoint *e = &endpoints[w->id % endpoint_count];
    int fd = dial(e);
    if (fd < 0) {
        report_error("connect", strerror(errno));
        return NULL;
    }
    char *req = malloc(REQUEST_SIZE_MAX), *resp = malloc(RESPONSE_SIZE_MAX);
    char body[2 * VALUE_BYTES_MAX], key_b64[64], val_b64[2 * VALUE_BYTES_MAX], key[32];
    unsigned char value[VALUE_BYTES_MAX];
    memset(value, 'v', sizeof value);
    base64(value, (size_t)value_bytes, val_b64);
    if (req == NULL || resp == NULL) {
        report_error("malloc", "buffers");
        goto out;
    }
    for (;;) {
        long long i = atomic_fetch_add(&next_request, 1);
        if (i >= warmup + total) break;
        int kn = snprintf(key, sizeof key, "bench/%08lld", op_range ? 0 : i % keyspace);
        base64((const unsigned char *)key, (size_t)kn, key_b64);
        int bn;
        if (op_range)
            bn = snprintf(body, sizeof body, "{\"key\":\"%s\"%s}", key_b64, serializable ? ",\"serializable\":true" : "");
        else
            bn = snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", key_b64, val_b64);
        int rn = snprintf(req, REQUEST_SIZE_MAX,
                          "POST /v3/kv/%s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                          "Content-Length: %d\r\n\r\n%s",
                          op_range ? "range" : "put", e->host, e->port, bn, body);
        uint64_t t0 = now_ns();
        if (write_all(fd, req, (size_t)rn) != 0) {
            report_error("send", strerror(errno));
            break;
        }
        int status = read_response(fd, resp, RESPONSE_SIZE_MAX);
        uint64_t t1 = now_ns();
        if (status < 0) {
            report_error("receive", errno ? strerror(errno) : "malformed response");
            break;
        }
        if (status != 200) {
            char *b = strstr(resp, "\r\n\r\n");
            report_error("HTTP status", b ? b + 4 : resp);
        }
        if (i >= warmup) latencies_ns[i - warmup] = (t1 - t0) ? (t1 - t0) : 1;
    }
out:
    free(req);
    free(resp);
    close(fd);
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void parse_endpoints(char *list) {
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        if (endpoint_count == ENDPOINTS_MAX || colon == NULL || (size_t)(colon - tok) >= sizeof endpoints[0].host) {
            fprintf(stderr, "edriver: bad endpoint '%s' (HOST:PORT, at most %d)\n", tok, ENDPOINTS_MAX);
            exit(2);
        }
        endpoint *e = &endpoints[endpoint_count++];
        memcpy(e->host, tok, (size_t)(colon - tok));
        e->host[colon - tok] = '\0';
        e->port = atoi(colon + 1);
    }
}

static void usage(void) {
    fprintf(stderr, "usage: edriver -e HOST:PORT[,...] [-c CLIENTS] [-n TOTAL] [-w WARMUP] "
                    "[-o put|range] [-k KEYSPACE] [-v VALUE_BYTES] [-s]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int opt;
    while ((opt = getopt(argc, argv, "e:c:n:w:o:k:v:s")) != -1) {
        switch (opt) {
        case 'e': parse_endpoints(optarg); break;
        case 'c': clients = atoi(optarg); break;
        case 'n': total = atoll(optarg); break;
        case 'w': warmup = atoll(optarg); break;
        case 'o':
            if (strcmp(optarg, "range") == 0) op_range = 1;
            else if (strcmp(optarg, "put") != 0) usage();
            break;
        case 'k': keyspace = atoll(optarg); break;
        case 'v': value_bytes = atoi(optarg); break;
        case 's': serializable = 1; break;
        default: usage();
        }
    }
    if (optind != argc || endpoint_count == 0 || clients < 1 || clients > CLIENTS_MAX || total < 1 ||
        total > TOTAL_MAX || warmup < 0 || warmup > TOTAL_MAX || keyspace < 1 || value_bytes < 1 ||
        value_bytes > VALUE_BYTES_MAX)
        usage();

    worker *ws = calloc((size_t)clients, sizeof *ws);
    latencies_ns = calloc((size_t)total, sizeof *latencies_ns);
    if (ws == NULL || latencies_ns == NULL) {
        fprintf(stderr, "edriver: out of memory\n");
        return 2;
    }
    for (int i = 0; i < clients; i++) ws[i].id = i;
    uint64_t t0 = now_ns(), t_measure = t0;
    for (int i = 0; i < clients; i++) pthread_create(&ws[i].thread, NULL, run, &ws[i]);
    if (warmup > 0) {
        while (atomic_load(&next_request) < warmup && atomic_load(&errors) == 0) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        t_measure = now_ns();
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
           clients, n, (long long)atomic_load(&errors), secs, secs > 0 ? (double)n / secs : 0.0, PCT(0.50),
           PCT(0.90), PCT(0.99), n ? (double)all[n - 1] / 1e6 : 0.0);
    return atomic_load(&errors) ? 1 : 0;
}
