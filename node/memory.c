/*
 * memory.c -- used memory, the machine's memory, returning freed memory
 * (see memory.h for the choices and the measurements behind them).
 */
#include "memory.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/qassert.h"

#define MEMORY_FILE_SIZE_MAX_BYTES 4096 /* statm, memory.max, /proc/self/cgroup lines we read */
#define MEMORY_CGROUP_NONE_BYTES (1ull << 62) /* v1 writes 9223372036854771712 for "no limit" */
#define MEMORY_CGROUP_DEPTH_MAX 64

bool node_memory_configure_allocator(void) {
#ifdef __SANITIZE_ADDRESS__
    return true; /* ASan's allocator replaces glibc's and ignores mallopt */
#endif
    bool ok = mallopt(M_MMAP_THRESHOLD, NODE_MEMORY_MMAP_THRESHOLD_BYTES) == 1;
    return mallopt(M_TRIM_THRESHOLD, NODE_MEMORY_TRIM_THRESHOLD_BYTES) == 1 && ok;
}

/* Read up to size-1 bytes of a small file, NUL-terminated.  Returns the
 * length, or -1. */
static ssize_t read_small_file(const char *path, char *buf, size_t size) {
    QUIVER_ASSERT(size >= 2);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t have = 0;
    while (have < size - 1) {
        ssize_t n = read(fd, buf + have, size - 1 - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += (size_t)n;
    }
    close(fd);
    buf[have] = '\0';
    return (ssize_t)have;
}

/* A decimal u64 at *s (digits only); advances *s.  False if none or overflow. */
static bool take_u64(const char **s, uint64_t *out) {
    const char *p = *s;
    if (*p < '0' || *p > '9') return false;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
        p++;
    }
    *s = p;
    *out = v;
    return true;
}

bool node_memory_parse_statm(const char *text, uint64_t page_size_bytes, uint64_t *rss_bytes_out) {
    QUIVER_ASSERT(text != NULL && rss_bytes_out != NULL);
    const char *p = text;
    uint64_t size_pages = 0, rss_pages = 0;
    if (!take_u64(&p, &size_pages) || *p != ' ') return false;
    p++;
    if (!take_u64(&p, &rss_pages)) return false;
    if (*p != ' ' && *p != '\n' && *p != '\0') return false;
    if (page_size_bytes != 0 && rss_pages > UINT64_MAX / page_size_bytes) return false;
    *rss_bytes_out = rss_pages * page_size_bytes;
    return true;
}

uint64_t node_memory_rss_bytes(void) {
    char buf[256];
    if (read_small_file("/proc/self/statm", buf, sizeof buf) <= 0) return 0;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t rss = 0;
    if (page <= 0 || !node_memory_parse_statm(buf, (uint64_t)page, &rss)) return 0;
    return rss;
}

bool node_memory_parse_cgroup_limit(const char *text, uint64_t *out) {
    QUIVER_ASSERT(text != NULL && out != NULL);
    const char *p = text;
    uint64_t v = 0;
    if (!take_u64(&p, &v)) return false; /* "max" (v2: no limit) or garbage */
    while (*p == '\n' || *p == ' ' || *p == '\t' || *p == '\r') p++;
    if (*p != '\0') return false;
    if (v >= MEMORY_CGROUP_NONE_BYTES || v == 0) return false;
    *out = v;
    return true;
}

/* The lowest memory.max on this process' cgroup v2 path, leaf to root. */
static bool cgroup_v2_limit(uint64_t *out) {
    char lines[MEMORY_FILE_SIZE_MAX_BYTES];
    if (read_small_file("/proc/self/cgroup", lines, sizeof lines) <= 0) return false;
    const char *v2 = strstr(lines, "0::");
    if (v2 != lines && (v2 == NULL || v2[-1] != '\n')) v2 = NULL;
    bool found = false;
    uint64_t best = UINT64_MAX;
    if (v2 != NULL) {
        char rel[MEMORY_FILE_SIZE_MAX_BYTES];
        size_t n = strcspn(v2 + 3, "\n");
        if (n >= sizeof rel) n = sizeof rel - 1;
        memcpy(rel, v2 + 3, n);
        rel[n] = '\0';
        for (int depth = 0; depth < MEMORY_CGROUP_DEPTH_MAX; depth++) {
            char path[MEMORY_FILE_SIZE_MAX_BYTES + 64];
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", strcmp(rel, "/") == 0 ? "" : rel);
            char text[64];
            uint64_t v = 0;
            if (read_small_file(path, text, sizeof text) > 0 && node_memory_parse_cgroup_limit(text, &v)) {
                found = true;
                if (v < best) best = v;
            }
            char *slash = strrchr(rel, '/');
            if (slash == NULL || strcmp(rel, "/") == 0) break;
            if (slash == rel) rel[1] = '\0';
            else *slash = '\0';
        }
    }
    /* Inside a container's cgroup namespace the path is "/" and the limit
     * sits on the namespace root. */
    char text[64];
    uint64_t v = 0;
    if (read_small_file("/sys/fs/cgroup/memory.max", text, sizeof text) > 0 && node_memory_parse_cgroup_limit(text, &v)) {
        found = true;
        if (v < best) best = v;
    }
    if (found) *out = best;
    return found;
}

static bool cgroup_v1_limit(uint64_t *out) {
    char text[64];
    return read_small_file("/sys/fs/cgroup/memory/memory.limit_in_bytes", text, sizeof text) > 0 &&
           node_memory_parse_cgroup_limit(text, out);
}

uint64_t node_memory_machine_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGESIZE);
    uint64_t physical = (pages > 0 && page > 0) ? (uint64_t)pages * (uint64_t)page : 0;
    uint64_t limit = 0;
    if (cgroup_v2_limit(&limit) || cgroup_v1_limit(&limit)) {
        if (physical == 0 || limit < physical) return limit;
    }
    return physical;
}

uint64_t node_memory_percent_of(uint64_t base_bytes, uint32_t percent) {
    QUIVER_ASSERT(percent >= 1 && percent <= 100);
    return base_bytes / 100 * percent + base_bytes % 100 * percent / 100;
}

void node_memory_human(uint64_t bytes, char *out, size_t out_size_bytes) {
    QUIVER_ASSERT(out != NULL && out_size_bytes >= 16);
    /* Redis' bytesToHuman: B below 1 KiB, else two decimals of K, M, G, T, P. */
    static const char units[] = "KMGTP";
    if (bytes < 1024) {
        snprintf(out, out_size_bytes, "%lluB", (unsigned long long)bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    snprintf(out, out_size_bytes, "%.2f%c", v, units[u]);
}

static uint64_t monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void trim_work(offload_job *base) {
    node_memory_trim_job *j = (node_memory_trim_job *)base;
    j->rss_before_bytes = node_memory_rss_bytes();
    uint64_t t0 = monotonic_us();
    malloc_trim(0);
    j->duration_us = monotonic_us() - t0;
    j->rss_after_bytes = node_memory_rss_bytes();
}

void node_memory_trim_job_init(node_memory_trim_job *job) {
    QUIVER_ASSERT(job != NULL);
    memset(job, 0, sizeof *job);
    job->base.work = trim_work;
}
