/*
 * memory.h -- how much memory the node uses, how much it may use, and
 * giving freed memory back to the system (--maxmemory, DESIGN.md 7a).
 *
 * Used memory is the resident set size, read from /proc/self/statm
 * (proc(5): the second field, in pages).  Why not glibc's mallinfo2 (the
 * allocator's own count, closer to Redis' used_memory): mallinfo2 walks
 * every free chunk of every arena while holding that arena's lock, which
 * took 130 ms per call on a 1.2 GB heap fragmented by 10 million small
 * allocations (measured on this 2-core machine); reading statm took 6 us.
 * RSS is also what the kernel's OOM killer and a container's memory limit
 * act on.  Its weakness is memory freed but kept by the allocator; hence
 * node_memory_configure_allocator (blocks of 32 MiB and more are unmapped
 * when freed) and trim jobs (malloc_trim for the rest, when the node is
 * quiet or over --maxmemory).
 *
 * The server samples it on its cron timer (server.c) and refuses queries
 * and writes with Redis' "-OOM command not allowed when used memory >
 * 'maxmemory'." while it is over --maxmemory.
 *
 * Default --maxmemory: QUIVER_MAXMEMORY_PERCENT_DEFAULT percent of the
 * machine's memory: physical memory (sysconf), or the cgroup memory limit
 * when one is set and lower (cgroup v2 memory.max of this process' cgroup
 * and its ancestors, or cgroup v1 memory.limit_in_bytes), so a container
 * with a 2 GB limit gets 1.5 GB, not 75% of the host.
 *
 * Thread: every function may be called from any thread (they touch no
 * shared state), except where noted.
 */
#ifndef QUIVER_NODE_MEMORY_H
#define QUIVER_NODE_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "offload.h"

/* Blocks of at least this size are mmapped by glibc, and so unmapped when
 * freed (mallopt M_MMAP_THRESHOLD); smaller ones come from the heap and are
 * reused warm.  32 MiB is where glibc's dynamic threshold ends up anyway
 * after the first large free; fixing it from the start makes the behaviour
 * the same from the first request on.  Why not lower (every buffer of
 * 128 KiB and more unmapped at free, returned at once): touching fresh
 * pages costs ~6 ms per MB on this VM (25 us a page fault, measured: a
 * fresh 100 MB memset 640 ms, a warm one 13 ms), and raft copies an entry
 * several times on the loop thread, so with 128 KiB a 16 MB write stalled
 * the 3-node cluster's loops for ~600 ms and caused 6 elections, against
 * ~300 ms and 1-3 with this value (bench/loopstall).  What stays in the
 * heap is returned by node_memory_trim jobs instead (server.h says when). */
#define NODE_MEMORY_MMAP_THRESHOLD_BYTES (32u * 1024 * 1024)
/* free() gives the top of the main heap back past this much free space
 * (mallopt M_TRIM_THRESHOLD; glibc's dynamic value: twice the above). */
#define NODE_MEMORY_TRIM_THRESHOLD_BYTES (64u * 1024 * 1024)

/* Set the allocator options above.  Call once at start, before threads
 * start (main.c).  Returns false if glibc refused (the node still runs);
 * true without doing anything in an AddressSanitizer build (ASan has its
 * own allocator). */
bool node_memory_configure_allocator(void);

/* Resident set size of this process in bytes, or 0 when /proc/self/statm
 * cannot be read.  One open/read/close (~6 us). */
uint64_t node_memory_rss_bytes(void);

/* Parse the text of /proc/<pid>/statm: "size resident shared ...", in
 * pages of page_size_bytes.  Returns false (out untouched) for anything
 * else.  Pure. */
bool node_memory_parse_statm(const char *text, uint64_t page_size_bytes, uint64_t *rss_bytes_out);

/* Parse a cgroup memory limit file: cgroup v2 memory.max ("max" or a
 * decimal number of bytes) or v1 memory.limit_in_bytes (a decimal; values
 * of 2^62 and above mean none).  Trailing whitespace is accepted.  Returns
 * true with *out for a limit, false for "no limit" or anything
 * unparseable.  Pure. */
bool node_memory_parse_cgroup_limit(const char *text, uint64_t *out);

/* The machine's memory as this process sees it (see the top): physical
 * memory, lowered to the cgroup limit when one applies.  0 when neither
 * can be determined. */
uint64_t node_memory_machine_bytes(void);

/* percent (1..100) of base, rounded down. */
uint64_t node_memory_percent_of(uint64_t base_bytes, uint32_t percent);

/* Redis' human form of a byte count ("1023B", "1.50K", "12.34M", "2.00G"),
 * written NUL-terminated into out (at least 16 bytes). */
void node_memory_human(uint64_t bytes, char *out, size_t out_size_bytes);

/* A malloc_trim(0) run on the offload pool (its cost grows with the heap:
 * 120-250 ms for a fragmented 1.2 GB heap, measured, and it holds each
 * arena's lock while trimming one: never on the loop thread).  The caller
 * allocates the job, sets done, and submits it; work fills the fields. */
typedef struct node_memory_trim_job {
    offload_job base;          /* first: the pool's handle */
    uint64_t rss_before_bytes; /* filled by the work */
    uint64_t rss_after_bytes;
    uint64_t duration_us;
} node_memory_trim_job;

/* Initialise job (base.work set; the caller sets base.done and any
 * context around it). */
void node_memory_trim_job_init(node_memory_trim_job *job);

#endif
