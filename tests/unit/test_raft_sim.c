/*
 * test_raft_sim.c -- deterministic simulation of a three-node cluster: raft's
 * in-memory fixture (raft/fixture.h, virtual time, one event per step)
 * drives THREE real state machines (statemachine/ apply threads, each on its
 * own temporary RocksDB, the real query engine) while seeded random faults
 * hit the cluster and a driver proposes Cypher writes through whichever node
 * believes it is the leader.
 *
 * Per run (one seed):
 *   - a bounded number of fixture steps with faults drawn from the seed:
 *     partitions (raft_fixture_disconnect both ways, or one way), message
 *     loss (raft_fixture_saturate of single directed links), crashes
 *     (raft_fixture_kill / revive: the fixture's kill is a pause, raft state
 *     kept; while a node is down its state machine may also be closed and
 *     reopened from RocksDB, which reloads the applied index and the de-dup
 *     table), and leader changes (raft_transfer to any or a chosen voter,
 *     raft_fixture_depose when the cluster is healthy);
 *   - proposals: entries of 1-3 commands (CREATE, SET, DELETE, a statement
 *     that fails at apply) encoded with sm_entry_encode, each with a request
 *     id, and re-proposals of earlier request ids (a client retry after an
 *     unknown outcome) which the de-dup table must answer without applying;
 *   - at the end: heal everything, commit a barrier on a stable leader, wait
 *     (real time, with a deadline) until every apply thread has applied every
 *     entry raft gave it, then check
 *       1. every replica reported the same outcome stream (index, request id,
 *          status, statistics) -- the apply threads are deterministic;
 *       2. every replica has the same applied index and the same
 *          qs_graph_digest on a snapshot view at that index;
 *       3. a model replayed from that stream (first occurrence of a request
 *          id applies, later ones must repeat the first outcome) matches each
 *          replica's nodes and their property lists exactly;
 *       4. every result the proposing leader saw for a request id (an
 *          acknowledged write) is in that stream at the same index with the
 *          same outcome, so its effect is on every replica (3 checks the
 *          effect itself).
 *
 * The fsm below does what raft/replication.c's fsm_apply does (index =
 * raft_last_applied + 1, copy into sm_enqueue, return 0); results come back
 * through sm_open's wake function and sm_deliver, which the test thread calls
 * after every fixture step (the fixture's hook), as the loop thread would.
 * The three apply threads commit at the same time, as three processes
 * would (this found a storage race, a sort comparator's global, now fixed);
 * QUIVER_SIM_SERIAL_APPLY=1 makes fsm->apply wait for each entry instead.
 *
 * Raft's side is deterministic for a seed (virtual time; fsm->apply never
 * waits); only WHEN the apply threads finish varies, which changes which
 * results arrive when, not what the cluster does.  A failing seed is
 * printed; reproduce it with QUIVER_SIM_SEED=<seed>.  Environment:
 *   QUIVER_SIM_SEED   first seed (a number, or "random"); alone it runs only
 *                     that seed
 *   QUIVER_SIM_RUNS   number of seeds (default SIM_RUNS_DEFAULT from seed 1)
 *   QUIVER_SIM_STEPS  fault-phase fixture steps per run
 *   QUIVER_SIM_VERBOSE=1  one line per run with its counts
 *   QUIVER_SIM_TRACE=1    raft's own trace of every event (very long)
 *   QUIVER_SIM_SERIAL_APPLY=1  fsm->apply waits until its entry is applied
 *                     (apply threads never commit at the same time)
 *
 * Not simulated: a crash that loses unflushed data (the fixture cannot; the
 * kill -9 process tests do), and snapshot installation on a lagging follower
 * (snapshots are taken -- the fsm's snapshot calls sm_sync -- but the
 * trailing log is kept long enough that no follower needs one; a restore at
 * run time fails the run, saying so).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <raft/fixture.h>

#include "common/limits.h"
#include "common/qassert.h"
#include "query/query.h"
#include "statemachine/command.h"
#include "statemachine/statemachine.h"
#include "storage/graph.h"

#define SIM_NODES 3
#define SIM_RUNS_DEFAULT 20
#define SIM_STEPS_DEFAULT 4000
#define SIM_GRAPH "sim"
#define SIM_CMDS_PER_ENTRY_MAX 3
/* Virtual milliseconds allowed for the healed cluster to agree. */
#define SIM_CONVERGE_VIRTUAL_MS 120000u
/* Real seconds allowed for the apply threads to catch up at the end. */
#define SIM_APPLY_DEADLINE_S 60
#define SIM_SNAPSHOT_THRESHOLD 200
#define SIM_SNAPSHOT_TRAILING 1000000
#define SIM_MSG_SIZE 512

/* ------------------------------------------------------------------ */
/* Small growable arrays and the seeded random source                   */
/* ------------------------------------------------------------------ */

#define VEC_PUSH(arr, count, cap)                                                                  \
    do {                                                                                           \
        if ((count) == (cap)) {                                                                    \
            (cap) = (cap) ? (cap) * 2 : 64;                                                        \
            void *grown_ = realloc((arr), (size_t)(cap) * sizeof *(arr));                          \
            QUIVER_ASSERT(grown_ != NULL);                                                         \
            (arr) = grown_;                                                                        \
        }                                                                                          \
        (count)++;                                                                                 \
    } while (0)

static uint64_t rng_next(uint64_t *s) {
    /* splitmix64 (Steele, Lea, Flood 2014) */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *s, uint32_t n) { return (uint32_t)(rng_next(s) % n); }

/* ------------------------------------------------------------------ */
/* The workload                                                         */
/* ------------------------------------------------------------------ */

typedef enum sim_kind {
    SIM_CREATE = 0, /* CREATE (:W {rid: R, ts: timestamp(), r: rand()}) */
    SIM_SET,        /* MATCH (n:W {rid: T}) SET n.hist = coalesce(n.hist, []) + [R] */
    SIM_DELETE,     /* MATCH (n:W {rid: T}) DELETE n */
    SIM_FAIL,       /* CREATE (:W {rid: R, bad: 1 / 0}): fails at apply, no effects */
} sim_kind;

typedef struct sim_cmd {
    sim_kind kind;
    int64_t rid;    /* CREATE/FAIL: the new node's rid; SET: the value appended */
    int64_t target; /* SET/DELETE: the rid of the node */
    sm_command cmd; /* cmd.text points at text */
    char text[160];
} sim_cmd;

/* One outcome as a state machine reported it. */
typedef struct sim_rec {
    uint64_t index;
    sm_request_id id;
    int status;
    uint64_t created, deleted, props_set;
} sim_rec;

/* One raft_apply accepted by a leader. */
typedef struct sim_proposal {
    unsigned node;
    uint64_t index;
    uint32_t count;
    sm_request_id ids[SIM_CMDS_PER_ENTRY_MAX];
} sim_proposal;

typedef struct sim_apply {
    struct raft_apply req;
    struct sim *sim;
    bool done;
    int status;
} sim_apply;

struct sim;

typedef struct sim_node {
    struct sim *sim;
    unsigned i;
    struct raft_fsm fsm;
    struct raft *raft;
    char dir[512];
    qs_db *db;
    sm *s;
    uint64_t last_enqueued_index;
    sim_rec *stream;
    uint32_t stream_count, stream_cap;
    struct raft_transfer transfer;
    bool transfer_inflight;
    bool alive;
    uint64_t skip_index; /* test of the checker: drop this entry on this replica */
} sim_node;

typedef struct sim_stats {
    uint32_t proposals, proposals_refused, commands, duplicates, acks, unknown;
    uint32_t partitions, one_way_cuts, heals, losses, unlosses, kills, revives, sm_restarts;
    uint32_t transfers, deposes, snapshots, leader_changes;
    uint64_t last_index;
} sim_stats;

typedef struct sim {
    uint64_t seed;
    uint64_t rng;
    struct raft_fixture fixture;
    bool fixture_ready;
    sim_node nodes[SIM_NODES];
    bool cut[SIM_NODES][SIM_NODES];   /* i -> j disconnected */
    bool lossy[SIM_NODES][SIM_NODES]; /* i -> j saturated (silent drops) */

    sim_cmd *cmds;
    uint32_t cmd_count, cmd_cap;
    int64_t *created_rids; /* rids of CREATEs proposed, targets for SET/DELETE */
    uint32_t created_count, created_cap;
    int64_t next_rid;

    sim_proposal *props;
    uint32_t prop_count, prop_cap;
    sim_apply **applies;
    uint32_t apply_count, apply_cap;
    sim_rec *acks; /* outcomes the proposing leader saw */
    uint32_t ack_count, ack_cap;

    pthread_mutex_t mu; /* wake-ups from the apply threads */
    pthread_cond_t cond;
    uint64_t wakes;

    bool restore_at_runtime;
    bool started;
    raft_id last_leader;
    raft_term last_leader_term;
    sim_stats stats;
    char failure[SIM_MSG_SIZE];
} sim;

static bool g_verbose;
/* Three apply threads in one process commit at the same time (the default).
 * This once found a storage race: storage/txn.c handed its sort comparator
 * the transaction log through a file-scope pointer shared by every qs_db
 * (ASan: heap-use-after-free in log_cmp); it now goes through qsort_r's
 * context.  QUIVER_SIM_SERIAL_APPLY=1 makes each fsm->apply wait until its
 * entry is applied, so at most one apply thread works at a time. */
static bool g_concurrent_apply;
static bool g_trace; /* QUIVER_SIM_TRACE=1: keep the fixture's stderr tracer */

/* raft's fixture installs a tracer that prints every info-level event to
 * stderr (thousands of lines a run); this one says nothing. */
static void quiet_emit(struct raft_tracer *t, int type, const void *info) {
    (void)t;
    (void)type;
    (void)info;
}
static struct raft_tracer g_quiet_tracer = {.impl = NULL, .version = 2, .emit = quiet_emit};

#define SIM_FAIL_IF(s, cond, ...)                                                                  \
    do {                                                                                           \
        if (cond) {                                                                                \
            snprintf((s)->failure, sizeof (s)->failure, __VA_ARGS__);                              \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------ */
/* State machine wiring (as raft/replication.c does it)                  */
/* ------------------------------------------------------------------ */

/* Apply thread -> test thread. */
static void sim_wake(void *ctx) {
    sim *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->wakes++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

static void sim_on_result(void *ctx, sm_request_id id, uint64_t index, query_result *r) {
    sim_node *n = ctx;
    sim *s = n->sim;
    VEC_PUSH(n->stream, n->stream_count, n->stream_cap);
    sim_rec *rec = &n->stream[n->stream_count - 1];
    *rec = (sim_rec){index, id, (int)r->status, r->stats.nodes_created, r->stats.nodes_deleted,
                     r->stats.properties_set};
    /* The proposer's answer: this node proposed an entry at this index
     * holding this request id. */
    for (uint32_t p = s->prop_count; p-- > 0;) {
        sim_proposal *pr = &s->props[p];
        if (pr->node != n->i || pr->index != index) continue;
        for (uint32_t k = 0; k < pr->count; k++) {
            if (sm_request_id_equal(pr->ids[k], id)) {
                VEC_PUSH(s->acks, s->ack_count, s->ack_cap);
                s->acks[s->ack_count - 1] = *rec;
                s->stats.acks++;
                p = 0;
                break;
            }
        }
    }
    query_result_free(r);
}

static int sim_fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result) {
    sim_node *n = fsm->data;
    /* Same as raft/replication.c's fsm_apply. */
    uint64_t index = raft_last_applied(n->raft) + 1;
    QUIVER_ASSERT(index > n->last_enqueued_index);
    if (buf->len > QUIVER_ENTRY_SIZE_MAX_BYTES) QUIVER_FATAL("entry at %" PRIu64 " too large", index);
    if (index != n->skip_index) sm_enqueue(n->s, index, buf->base, buf->len);
    n->last_enqueued_index = index;
    if (!g_concurrent_apply && index != n->skip_index) {
        /* The apply thread publishes the index, then wakes us (under mu). */
        sim *s = n->sim;
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += SIM_APPLY_DEADLINE_S;
        pthread_mutex_lock(&s->mu);
        while (sm_applied_index(n->s) < index)
            if (pthread_cond_timedwait(&s->cond, &s->mu, &deadline) == ETIMEDOUT)
                QUIVER_FATAL("raft sim: seed %" PRIu64 ": node %u did not apply entry %" PRIu64 " within %d s",
                             s->seed, n->i + 1, index, SIM_APPLY_DEADLINE_S);
        pthread_mutex_unlock(&s->mu);
    }
    *result = NULL;
    return 0;
}

/* Marker snapshot (DESIGN.md 5): the applied index; the state machine is
 * made durable up to it first.  sm_sync blocks, which the test thread may
 * do (the apply thread never waits for it). */
static int sim_fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs) {
    sim_node *n = fsm->data;
    sm_sync(n->s, n->last_enqueued_index);
    struct raft_buffer *b = raft_malloc(sizeof *b);
    uint8_t *p = raft_malloc(8);
    QUIVER_ASSERT(b != NULL && p != NULL);
    for (int k = 0; k < 8; k++) p[k] = (uint8_t)(n->last_enqueued_index >> (56 - 8 * k));
    b->base = p;
    b->len = 8;
    *bufs = b;
    *n_bufs = 1;
    n->sim->stats.snapshots++;
    return 0;
}

static int sim_fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
    sim_node *n = fsm->data;
    /* Only a lagging follower gets here at run time: catch-up by
     * checkpoint is not simulated (top comment). */
    if (n->sim->started) n->sim->restore_at_runtime = true;
    raft_free(buf->base);
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void *node_open_db(void *arg) {
    sim_node *n = arg;
    char err[256];
    qs_options o = {8u << 20, true};
    if (qs_open(n->dir, &o, &n->db, err, sizeof err) != QS_OK) QUIVER_FATAL("qs_open %s: %s", n->dir, err);
    return NULL;
}

/* Opening a RocksDB takes 0.1-0.2 s here (mostly fsyncs): the three of a
 * run are opened on three threads at once. */
static void nodes_open_dbs(sim *s) {
    pthread_t t[SIM_NODES];
    for (unsigned i = 0; i < SIM_NODES; i++)
        QUIVER_ASSERT(pthread_create(&t[i], NULL, node_open_db, &s->nodes[i]) == 0);
    for (unsigned i = 0; i < SIM_NODES; i++) pthread_join(t[i], NULL);
}

/* db must be open (node_open_db). */
static void node_open_sm(sim_node *n) {
    char err[256];
    if (sm_open(n->db, sim_wake, n->sim, sim_on_result, n, &n->s, err, sizeof err) != 0)
        QUIVER_FATAL("sm_open %s: %s", n->dir, err);
}

static void node_close_sm(sim_node *n) {
    sm_close(n->s); /* applies what is queued, delivers the results */
    qs_close(n->db);
    n->s = NULL;
    n->db = NULL;
}

static void deliver_all(sim *s) {
    for (unsigned i = 0; i < SIM_NODES; i++)
        if (s->nodes[i].s) sm_deliver(s->nodes[i].s);
}

/* After every fixture step, as the loop thread's uv_async callback would. */
static sim *g_hook_sim;
static void sim_hook(struct raft_fixture *f, struct raft_fixture_event *event) {
    (void)f;
    (void)event;
    deliver_all(g_hook_sim);
}

/* ------------------------------------------------------------------ */
/* Links: the fixture's calls assert on some combinations (saturating a   */
/* disconnected link, kill/revive with disconnected peers), so the       */
/* wanted state lives here and is applied in a safe order.              */
/* ------------------------------------------------------------------ */

static void links_apply(sim *s) {
    struct raft_fixture *f = &s->fixture;
    for (unsigned i = 0; i < SIM_NODES; i++)
        for (unsigned j = 0; j < SIM_NODES; j++) {
            if (i == j) continue;
            raft_fixture_reconnect(f, i, j);
            bool want = s->lossy[i][j] || !s->nodes[i].alive || !s->nodes[j].alive;
            if (want && !raft_fixture_saturated(f, i, j)) raft_fixture_saturate(f, i, j);
            if (!want && raft_fixture_saturated(f, i, j)) raft_fixture_desaturate(f, i, j);
            if (s->cut[i][j]) raft_fixture_disconnect(f, i, j);
        }
}

static void set_alive(sim *s, unsigned i, bool alive) {
    struct raft_fixture *f = &s->fixture;
    /* kill/revive (de)saturate every link of i and assert it is connected. */
    for (unsigned j = 0; j < SIM_NODES; j++) {
        if (j == i) continue;
        raft_fixture_reconnect(f, i, j);
        raft_fixture_reconnect(f, j, i);
    }
    if (alive) raft_fixture_revive(f, i);
    else raft_fixture_kill(f, i);
    s->nodes[i].alive = alive;
    links_apply(s);
}

static bool healthy(const sim *s) {
    for (unsigned i = 0; i < SIM_NODES; i++) {
        if (!s->nodes[i].alive) return false;
        for (unsigned j = 0; j < SIM_NODES; j++)
            if (s->cut[i][j] || s->lossy[i][j]) return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Proposals                                                            */
/* ------------------------------------------------------------------ */

static void apply_cb(struct raft_apply *req, int status, void *result) {
    (void)result;
    sim_apply *a = req->data;
    a->done = true;
    a->status = status;
    if (status != 0) a->sim->stats.unknown++; /* leadership lost: outcome unknown */
}

static sim_cmd *new_cmd(sim *s, unsigned proposer) {
    VEC_PUSH(s->cmds, s->cmd_count, s->cmd_cap);
    sim_cmd *c = &s->cmds[s->cmd_count - 1];
    memset(c, 0, sizeof *c);
    uint32_t roll = rng_below(&s->rng, 100);
    if (s->created_count == 0 || roll < 45) c->kind = SIM_CREATE;
    else if (roll < 80) c->kind = SIM_SET;
    else if (roll < 94) c->kind = SIM_DELETE;
    else c->kind = SIM_FAIL;
    switch (c->kind) {
    case SIM_CREATE:
        c->rid = s->next_rid++;
        snprintf(c->text, sizeof c->text, "CREATE (:W {rid: %" PRId64 ", ts: timestamp(), r: rand()})", c->rid);
        VEC_PUSH(s->created_rids, s->created_count, s->created_cap);
        s->created_rids[s->created_count - 1] = c->rid;
        break;
    case SIM_SET:
        c->rid = s->next_rid++;
        c->target = s->created_rids[rng_below(&s->rng, s->created_count)];
        snprintf(c->text, sizeof c->text,
                 "MATCH (n:W {rid: %" PRId64 "}) SET n.hist = coalesce(n.hist, []) + [%" PRId64 "]", c->target,
                 c->rid);
        break;
    case SIM_DELETE:
        c->target = s->created_rids[rng_below(&s->rng, s->created_count)];
        snprintf(c->text, sizeof c->text, "MATCH (n:W {rid: %" PRId64 "}) DELETE n", c->target);
        break;
    case SIM_FAIL:
        c->rid = s->next_rid++;
        snprintf(c->text, sizeof c->text, "CREATE (:W {rid: %" PRId64 ", bad: 1 / 0})", c->rid);
        break;
    }
    c->cmd.kind = SM_CMD_QUERY;
    /* origin: the first proposer (as a process would pick one); seq: the
     * command's position, so a request id names its command. */
    c->cmd.request_id = (sm_request_id){1000 + proposer, s->cmd_count};
    c->cmd.timestamp_ms = 1700000000000 + (int64_t)raft_fixture_time(&s->fixture);
    c->cmd.seed = rng_next(&s->rng);
    c->cmd.graph = (qv_str){SIM_GRAPH, (uint32_t)strlen(SIM_GRAPH)};
    return c;
}

static const sim_cmd *cmd_of(const sim *s, sm_request_id id) {
    if (id.seq == 0 || id.seq > s->cmd_count) return NULL;
    const sim_cmd *c = &s->cmds[id.seq - 1];
    return sm_request_id_equal(c->cmd.request_id, id) ? c : NULL;
}

static void propose(sim *s) {
    unsigned leaders[SIM_NODES], nl = 0;
    for (unsigned i = 0; i < SIM_NODES; i++) {
        struct raft *r = s->nodes[i].raft;
        /* Any node that believes it leads (a stale one too): its entries
         * may be overwritten, which the checks must survive. */
        if (s->nodes[i].alive && raft_state(r) == RAFT_LEADER) leaders[nl++] = i;
    }
    if (nl == 0) return;
    unsigned p = leaders[rng_below(&s->rng, nl)];
    uint32_t count = 1 + (rng_below(&s->rng, 4) == 0 ? rng_below(&s->rng, SIM_CMDS_PER_ENTRY_MAX) : 0);
    uint32_t picked[SIM_CMDS_PER_ENTRY_MAX];
    sim_proposal pr = {.node = p, .count = count};
    for (uint32_t k = 0; k < count; k++) {
        if (s->cmd_count > 0 && rng_below(&s->rng, 10) == 0) {
            /* A retry of an earlier request (same id, same command). */
            picked[k] = rng_below(&s->rng, s->cmd_count);
            s->stats.duplicates++;
        } else {
            new_cmd(s, p);
            picked[k] = s->cmd_count - 1;
        }
        s->stats.commands++;
    }
    /* Only now point into s->cmds: new_cmd may move the array. */
    sm_command cmds[SIM_CMDS_PER_ENTRY_MAX];
    for (uint32_t k = 0; k < count; k++) {
        const sim_cmd *c = &s->cmds[picked[k]];
        cmds[k] = c->cmd;
        cmds[k].text = (qv_str){c->text, (uint32_t)strlen(c->text)};
        pr.ids[k] = c->cmd.request_id;
    }
    uint8_t *enc = NULL;
    size_t len = 0;
    int rc = sm_entry_encode(cmds, count, &enc, &len);
    QUIVER_ASSERT(rc == SM_CODEC_OK);
    struct raft_buffer buf = {raft_malloc(len), len};
    QUIVER_ASSERT(buf.base != NULL);
    memcpy(buf.base, enc, len);
    free(enc);
    sim_apply *a = calloc(1, sizeof *a);
    QUIVER_ASSERT(a != NULL);
    a->req.data = a;
    a->sim = s;
    rc = raft_apply(s->nodes[p].raft, &a->req, &buf, 1, apply_cb);
    if (rc != 0) {
        /* Refused before raft took the buffer (not leader, transfer in
         * progress, too many entries in flight). */
        raft_free(buf.base);
        free(a);
        s->stats.proposals_refused++;
        return;
    }
    pr.index = a->req.index;
    VEC_PUSH(s->applies, s->apply_count, s->apply_cap);
    s->applies[s->apply_count - 1] = a;
    VEC_PUSH(s->props, s->prop_count, s->prop_cap);
    s->props[s->prop_count - 1] = pr;
    s->stats.proposals++;
}

/* ------------------------------------------------------------------ */
/* Faults                                                               */
/* ------------------------------------------------------------------ */

static void transfer_cb(struct raft_transfer *req) {
    sim_node *n = req->data;
    n->transfer_inflight = false; /* the request itself is n->transfer: not freed here */
}

static unsigned alive_count(const sim *s) {
    unsigned c = 0;
    for (unsigned i = 0; i < SIM_NODES; i++) c += s->nodes[i].alive;
    return c;
}

static void fault(sim *s) {
    struct raft_fixture *f = &s->fixture;
    unsigned a = rng_below(&s->rng, SIM_NODES);
    unsigned b = (a + 1 + rng_below(&s->rng, SIM_NODES - 1)) % SIM_NODES;
    /* Weights: heals and revives are frequent enough that the cluster
     * spends much of a run able to commit, and is broken often. */
    static const uint8_t weights[] = {8, 8, 6, 20, 8, 12, 8, 14, 12, 4}; /* cases 0..9 below */
    uint32_t roll = rng_below(&s->rng, 100), kind = 0;
    while (roll >= weights[kind]) roll -= weights[kind++];
    switch (kind) {
    case 0: /* isolate a: cut both ways from everyone */
        for (unsigned j = 0; j < SIM_NODES; j++)
            if (j != a) s->cut[a][j] = s->cut[j][a] = true;
        links_apply(s);
        s->stats.partitions++;
        break;
    case 1: /* cut one pair both ways */
        s->cut[a][b] = s->cut[b][a] = true;
        links_apply(s);
        s->stats.partitions++;
        break;
    case 2: /* one-way cut: a's messages to b fail */
        s->cut[a][b] = true;
        links_apply(s);
        s->stats.one_way_cuts++;
        break;
    case 3: /* heal every cut */
        memset(s->cut, 0, sizeof s->cut);
        links_apply(s);
        s->stats.heals++;
        break;
    case 4: /* message loss on one directed link */
        s->lossy[a][b] = true;
        links_apply(s);
        s->stats.losses++;
        break;
    case 5: /* loss gone */
        memset(s->lossy, 0, sizeof s->lossy);
        links_apply(s);
        s->stats.unlosses++;
        break;
    case 6: /* crash a node (at most two down) */
        if (s->nodes[a].alive && alive_count(s) > 1) {
            set_alive(s, a, false);
            s->stats.kills++;
        }
        break;
    case 7: /* a down node comes back; sometimes its state machine restarts
             * from RocksDB first (reloads applied index and de-dup table) */
        for (unsigned k = 0; k < SIM_NODES; k++) {
            sim_node *n = &s->nodes[(a + k) % SIM_NODES];
            if (n->alive) continue;
            /* (Reopening costs 0.1-0.2 s of real time: at most two a run.) */
            if (s->stats.sm_restarts < 2 && rng_below(&s->rng, 2) == 0) {
                node_close_sm(n);
                node_open_db(n);
                node_open_sm(n);
                s->stats.sm_restarts++;
            }
            set_alive(s, n->i, true);
            s->stats.revives++;
            break;
        }
        break;
    case 8: { /* leadership transfer, to anyone or to b */
        for (unsigned i = 0; i < SIM_NODES; i++) {
            sim_node *n = &s->nodes[i];
            if (!n->alive || raft_state(n->raft) != RAFT_LEADER || n->transfer_inflight) continue;
            if (raft_transferee(n->raft) != 0) continue;
            raft_id to = rng_below(&s->rng, 2) == 0 || b == i ? 0 : (raft_id)(b + 1);
            n->transfer.data = n;
            if (raft_transfer(n->raft, &n->transfer, to, transfer_cb) == 0) {
                n->transfer_inflight = true;
                s->stats.transfers++;
            }
            break;
        }
        break;
    }
    case 9: { /* depose a stable leader: only safe for the fixture's asserts
                 * when the cluster is healthy and the others follow */
        if (!healthy(s) || f->leader_id == 0) break;
        unsigned l = (unsigned)f->leader_id - 1;
        bool ok = raft_state(s->nodes[l].raft) == RAFT_LEADER && !s->nodes[l].transfer_inflight;
        for (unsigned i = 0; i < SIM_NODES; i++)
            if (i != l && raft_state(s->nodes[i].raft) != RAFT_FOLLOWER) ok = false;
        if (!ok) break;
        raft_fixture_depose(f);
        s->stats.deposes++;
        break;
    }
    }
}

/* ------------------------------------------------------------------ */
/* Convergence and checks                                               */
/* ------------------------------------------------------------------ */

static struct raft_barrier g_barrier;
static bool g_barrier_inflight;
static int g_barrier_status;
static void barrier_cb(struct raft_barrier *req, int status) {
    (void)req;
    g_barrier_inflight = false;
    g_barrier_status = status;
}

typedef struct converge_arg {
    sim *s;
    uint64_t index;
} converge_arg;

static bool all_applied(struct raft_fixture *f, void *arg) {
    converge_arg *c = arg;
    for (unsigned i = 0; i < f->n; i++)
        if (raft_last_applied(raft_fixture_get(f, i)) < c->index) return false;
    for (unsigned i = 0; i < SIM_NODES; i++)
        if (c->s->nodes[i].transfer_inflight) return false;
    return true;
}

static bool converge(sim *s) {
    struct raft_fixture *f = &s->fixture;
    for (unsigned i = 0; i < SIM_NODES; i++)
        if (!s->nodes[i].alive) set_alive(s, i, true);
    memset(s->cut, 0, sizeof s->cut);
    memset(s->lossy, 0, sizeof s->lossy);
    links_apply(s);

    raft_time start = raft_fixture_time(f);
    for (;;) {
        SIM_FAIL_IF(s, raft_fixture_time(f) - start > SIM_CONVERGE_VIRTUAL_MS,
                    "no agreement %u virtual ms after healing", SIM_CONVERGE_VIRTUAL_MS);
        if (!raft_fixture_step_until_has_leader(f, 10000)) continue;
        struct raft *lr = raft_fixture_get(f, raft_fixture_leader_index(f));
        if (raft_transferee(lr) != 0) {
            raft_fixture_step(f);
            continue;
        }
        /* A barrier commits everything the leader has; then every node
         * must apply up to it. */
        g_barrier_inflight = true;
        if (raft_barrier(lr, &g_barrier, barrier_cb) != 0) {
            g_barrier_inflight = false;
            raft_fixture_step(f);
            continue;
        }
        uint64_t barrier_index = g_barrier.index;
        while (g_barrier_inflight && raft_fixture_time(f) - start <= SIM_CONVERGE_VIRTUAL_MS)
            raft_fixture_step(f);
        SIM_FAIL_IF(s, g_barrier_inflight, "barrier never completed after healing");
        if (g_barrier_status != 0) continue; /* leadership moved: again */
        converge_arg arg = {s, barrier_index};
        if (raft_fixture_step_until(f, all_applied, &arg, 20000)) break;
    }
    /* Let any request still pending resolve (the barrier and every entry
     * are committed; nothing is outstanding on a healthy cluster). */
    raft_fixture_step_until_elapsed(f, 500);

    /* Raft gave every node the same entries; now wait for the apply
     * threads (real time) to get through them. */
    uint64_t last = s->nodes[0].last_enqueued_index;
    for (unsigned i = 1; i < SIM_NODES; i++)
        SIM_FAIL_IF(s, s->nodes[i].last_enqueued_index != last,
                    "raft handed node %u entries up to %" PRIu64 " but node 1 up to %" PRIu64, i + 1,
                    s->nodes[i].last_enqueued_index, last);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += SIM_APPLY_DEADLINE_S;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        uint64_t seen = s->wakes;
        pthread_mutex_unlock(&s->mu);
        deliver_all(s);
        bool done = true;
        for (unsigned i = 0; i < SIM_NODES; i++)
            if (sm_applied_index(s->nodes[i].s) < last && s->nodes[i].skip_index != last) done = false;
        if (done) break;
        pthread_mutex_lock(&s->mu);
        int rc = 0;
        while (s->wakes == seen && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&s->cond, &s->mu, &deadline);
        pthread_mutex_unlock(&s->mu);
        if (rc == ETIMEDOUT) {
            SIM_FAIL_IF(s, true, "apply threads did not reach index %" PRIu64 " within %d s (applied %" PRIu64
                        "/%" PRIu64 "/%" PRIu64 ")", last, SIM_APPLY_DEADLINE_S, sm_applied_index(s->nodes[0].s),
                        sm_applied_index(s->nodes[1].s), sm_applied_index(s->nodes[2].s));
        }
    }
    /* Every result handed over (sm_deliver runs on_result in log order). */
    deliver_all(s);
    s->stats.last_index = last;
    return true;
}

static bool rec_equal(const sim_rec *a, const sim_rec *b) {
    return a->index == b->index && sm_request_id_equal(a->id, b->id) && a->status == b->status &&
           a->created == b->created && a->deleted == b->deleted && a->props_set == b->props_set;
}

static bool outcome_equal(const sim_rec *a, const sim_rec *b) {
    return a->status == b->status && a->created == b->created && a->deleted == b->deleted &&
           a->props_set == b->props_set;
}

/* The expected graph, replayed from the outcome stream. */
typedef struct model_node {
    bool exists;
    int64_t *hist;
    uint32_t hist_count, hist_cap;
} model_node;

static bool check_replica_rows(sim *s, unsigned i, const model_node *model, int64_t rid_count) {
    qs_view *v = qs_view_open_snapshot(s->nodes[i].db);
    static const char q[] = "MATCH (n:W) RETURN n.rid, n.hist ORDER BY n.rid";
    query_request req = {.graph = SIM_GRAPH, .graph_len = strlen(SIM_GRAPH), .text = q, .text_len = strlen(q),
                         .read_only = true};
    query_result *r = query_run_read(v, &req);
    bool ok = true;
    if (r->status == QUERY_ERR_NO_GRAPH) {
        /* Nothing was ever created: the graph does not exist. */
        r->row_count = 0;
    } else if (r->status != QUERY_OK) {
        snprintf(s->failure, sizeof s->failure, "node %u: read failed: %s", i + 1, r->error ? r->error : "?");
        ok = false;
    }
    uint64_t row = 0;
    for (int64_t rid = 0; ok && rid < rid_count; rid++) {
        if (!model[rid].exists) continue;
        if (row >= r->row_count) {
            snprintf(s->failure, sizeof s->failure, "node %u lacks node rid %" PRId64 " (has %" PRIu64 " rows)",
                     i + 1, rid, r->row_count);
            ok = false;
            break;
        }
        const qv_value *c = &r->cells[row * 2];
        if (c[0].type != QV_INT || c[0].u.i != rid) {
            snprintf(s->failure, sizeof s->failure, "node %u row %" PRIu64 ": rid %" PRId64 " expected, got %s%" PRId64,
                     i + 1, row, rid, c[0].type == QV_INT ? "" : "non-integer ", c[0].type == QV_INT ? c[0].u.i : 0);
            ok = false;
            break;
        }
        const model_node *m = &model[rid];
        uint32_t got_count = c[1].type == QV_LIST ? c[1].u.list->count : 0;
        bool same = (c[1].type == QV_NULL && m->hist_count == 0) || (c[1].type == QV_LIST && got_count == m->hist_count);
        for (uint32_t k = 0; same && k < m->hist_count; k++) {
            const qv_value *it = &c[1].u.list->items[k];
            same = it->type == QV_INT && it->u.i == m->hist[k];
        }
        if (!same) {
            snprintf(s->failure, sizeof s->failure,
                     "node %u: rid %" PRId64 " hist has %u values, the stream says %u (or they differ)", i + 1, rid,
                     got_count, m->hist_count);
            ok = false;
            break;
        }
        row++;
    }
    if (ok && row != r->row_count) {
        snprintf(s->failure, sizeof s->failure, "node %u has %" PRIu64 " W nodes, the stream says %" PRIu64, i + 1,
                 r->row_count, row);
        ok = false;
    }
    query_result_free(r);
    qs_view_close(v);
    return ok;
}

static bool check(sim *s) {
    /* 1. Same outcome stream everywhere. */
    const sim_node *n0 = &s->nodes[0];
    for (unsigned i = 1; i < SIM_NODES; i++) {
        const sim_node *n = &s->nodes[i];
        uint32_t common = n->stream_count < n0->stream_count ? n->stream_count : n0->stream_count;
        for (uint32_t k = 0; k < common; k++)
            SIM_FAIL_IF(s, !rec_equal(&n->stream[k], &n0->stream[k]),
                        "outcome %u differs: node 1 index %" PRIu64 " id %" PRIu64 ".%" PRIu64
                        " status %d, node %u index %" PRIu64 " id %" PRIu64 ".%" PRIu64 " status %d",
                        k, n0->stream[k].index, n0->stream[k].id.origin, n0->stream[k].id.seq, n0->stream[k].status,
                        i + 1, n->stream[k].index, n->stream[k].id.origin, n->stream[k].id.seq, n->stream[k].status);
        SIM_FAIL_IF(s, n->stream_count != n0->stream_count, "node 1 reported %u outcomes, node %u %u",
                    n0->stream_count, i + 1, n->stream_count);
    }

    /* 2. Same applied index and digest on a snapshot view. */
    char digest[SIM_NODES][17];
    uint64_t applied[SIM_NODES];
    for (unsigned i = 0; i < SIM_NODES; i++) {
        qs_view *v = qs_view_open_snapshot(s->nodes[i].db);
        applied[i] = qs_view_applied_index(v);
        uint32_t g;
        int rc = qs_graph_lookup(v, SIM_GRAPH, strlen(SIM_GRAPH), &g);
        if (rc == QS_OK) rc = qs_graph_digest(v, g, digest[i]);
        else if (rc == QS_NOT_FOUND) snprintf(digest[i], sizeof digest[i], "(no graph)"), rc = QS_OK;
        qs_view_close(v);
        SIM_FAIL_IF(s, rc != QS_OK, "node %u: digest failed (%d)", i + 1, rc);
        SIM_FAIL_IF(s, applied[i] != sm_applied_index(s->nodes[i].s),
                    "node %u: snapshot view at %" PRIu64 ", state machine at %" PRIu64, i + 1, applied[i],
                    sm_applied_index(s->nodes[i].s));
    }
    for (unsigned i = 1; i < SIM_NODES; i++) {
        SIM_FAIL_IF(s, applied[i] != applied[0], "applied index: node 1 %" PRIu64 ", node %u %" PRIu64, applied[0],
                    i + 1, applied[i]);
        SIM_FAIL_IF(s, strcmp(digest[i], digest[0]) != 0, "digest at applied index %" PRIu64 ": node 1 %s, node %u %s",
                    applied[0], digest[0], i + 1, digest[i]);
    }

    /* 4. Every acknowledged outcome is in the stream at its index. */
    for (uint32_t a = 0; a < s->ack_count; a++) {
        const sim_rec *ack = &s->acks[a];
        bool found = false;
        for (uint32_t k = 0; k < n0->stream_count && !found; k++)
            found = rec_equal(&n0->stream[k], ack);
        SIM_FAIL_IF(s, !found, "acknowledged write id %" PRIu64 ".%" PRIu64 " at index %" PRIu64 " is not applied",
                    ack->id.origin, ack->id.seq, ack->index);
    }

    /* 3. Replay the stream into a model and compare each replica with it. */
    int64_t rid_count = s->next_rid;
    model_node *model = calloc((size_t)rid_count + 1, sizeof *model);
    int32_t *first = malloc(((size_t)s->cmd_count + 1) * sizeof *first); /* first outcome per command */
    QUIVER_ASSERT(model != NULL && first != NULL);
    for (uint32_t c = 0; c <= s->cmd_count; c++) first[c] = -1;
    bool ok = true;
    for (uint32_t k = 0; ok && k < n0->stream_count; k++) {
        const sim_rec *rec = &n0->stream[k];
        const sim_cmd *c = cmd_of(s, rec->id);
        if (c == NULL) {
            snprintf(s->failure, sizeof s->failure, "outcome for unknown id %" PRIu64 ".%" PRIu64 " at %" PRIu64,
                     rec->id.origin, rec->id.seq, rec->index);
            ok = false;
            break;
        }
        if (first[rec->id.seq] >= 0) {
            /* A retry: the first outcome again, nothing applied. */
            if (!outcome_equal(rec, &n0->stream[first[rec->id.seq]])) {
                snprintf(s->failure, sizeof s->failure,
                         "retry of id %" PRIu64 " at index %" PRIu64 " got a different outcome than its first", rec->id.seq,
                         rec->index);
                ok = false;
            }
            continue;
        }
        first[rec->id.seq] = (int32_t)k;
        bool expect_ok = c->kind != SIM_FAIL;
        uint64_t want_created = 0, want_deleted = 0, want_set = 0;
        switch (c->kind) {
        case SIM_CREATE:
            model[c->rid].exists = true;
            want_created = 1;
            break;
        case SIM_SET:
            if (model[c->target].exists) {
                model_node *m = &model[c->target];
                VEC_PUSH(m->hist, m->hist_count, m->hist_cap);
                m->hist[m->hist_count - 1] = c->rid;
                want_set = 1;
            }
            break;
        case SIM_DELETE:
            if (model[c->target].exists) {
                model[c->target].exists = false;
                model[c->target].hist_count = 0;
                want_deleted = 1;
            }
            break;
        case SIM_FAIL:
            break;
        }
        if ((rec->status == QUERY_OK) != expect_ok || rec->created != want_created || rec->deleted != want_deleted ||
            (expect_ok && rec->props_set < want_set) || (c->kind == SIM_SET && want_set == 0 && rec->props_set != 0)) {
            snprintf(s->failure, sizeof s->failure,
                     "\"%s\" at index %" PRIu64 ": status %d created %" PRIu64 " deleted %" PRIu64 " set %" PRIu64
                     ", the model expects %s, created %" PRIu64 " deleted %" PRIu64,
                     c->text, rec->index, rec->status, rec->created, rec->deleted, rec->props_set,
                     expect_ok ? "success" : "an error", want_created, want_deleted);
            ok = false;
        }
    }
    for (unsigned i = 0; ok && i < SIM_NODES; i++) ok = check_replica_rows(s, i, model, rid_count);
    for (int64_t r = 0; r <= rid_count; r++) free(model[r].hist);
    free(model);
    free(first);
    return ok;
}

/* ------------------------------------------------------------------ */
/* One run                                                              */
/* ------------------------------------------------------------------ */

static const char *tmp_base(void) {
    const char *b = getenv("QUIVER_TEST_TMP");
    return b && *b ? b : "/tmp";
}

/* Runs one seed; returns true when every check passed, else false with
 * s->failure saying why.  skip_node/skip_nth: make replica skip_node drop
 * the skip_nth command entry it is handed (tests the checker). */
static bool sim_run(uint64_t seed, uint32_t steps, int skip_node, sim_stats *out, char *failure,
                    size_t failure_size) {
    sim *s = calloc(1, sizeof *s);
    QUIVER_ASSERT(s != NULL);
    s->seed = seed;
    s->rng = seed;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    struct raft_fixture *f = &s->fixture;
    QUIVER_ASSERT(raft_fixture_init(f) == 0);
    mkdir(tmp_base(), 0755);
    for (unsigned i = 0; i < SIM_NODES; i++) {
        sim_node *n = &s->nodes[i];
        n->sim = s;
        n->i = i;
        n->alive = true;
        snprintf(n->dir, sizeof n->dir, "%s/raft-sim-XXXXXX", tmp_base());
        QUIVER_ASSERT(mkdtemp(n->dir) != NULL);
    }
    nodes_open_dbs(s);
    for (unsigned i = 0; i < SIM_NODES; i++) {
        sim_node *n = &s->nodes[i];
        node_open_sm(n);
        n->fsm.version = 2;
        n->fsm.data = n;
        n->fsm.apply = sim_fsm_apply;
        n->fsm.snapshot = sim_fsm_snapshot;
        n->fsm.restore = sim_fsm_restore;
        QUIVER_ASSERT(raft_fixture_grow(f, &n->fsm) == 0);
        n->raft = raft_fixture_get(f, i);
        if (!g_trace) n->raft->tracer = &g_quiet_tracer;
        raft_set_pre_vote(n->raft, true); /* as quiverd runs it (DESIGN.md 7) */
        raft_set_snapshot_threshold(n->raft, SIM_SNAPSHOT_THRESHOLD);
        raft_set_snapshot_trailing(n->raft, SIM_SNAPSHOT_TRAILING);
        /* Election timeouts differ per seed (the fixture's default order
         * would always elect node 1 first). */
        raft_fixture_set_randomized_election_timeout(f, i, 1000 + rng_below(&s->rng, 1000));
        raft_fixture_set_network_latency(f, i, 5 + rng_below(&s->rng, 30));
        raft_fixture_set_disk_latency(f, i, 2 + rng_below(&s->rng, 20));
    }
    struct raft_configuration conf;
    QUIVER_ASSERT(raft_fixture_configuration(f, SIM_NODES, &conf) == 0);
    QUIVER_ASSERT(raft_fixture_bootstrap(f, &conf) == 0);
    raft_configuration_close(&conf);
    QUIVER_ASSERT(raft_fixture_start(f) == 0);
    s->started = true;
    g_hook_sim = s;
    raft_fixture_hook(f, sim_hook);

    bool ok = true;
    uint32_t fault_every = 30 + rng_below(&s->rng, 60); /* mean steps between faults */
    uint32_t propose_every = 3 + rng_below(&s->rng, 6);
    for (uint32_t step = 0; step < steps; step++) {
        if (rng_below(&s->rng, fault_every) == 0) fault(s);
        if (rng_below(&s->rng, propose_every) == 0) {
            uint32_t before = s->prop_count;
            propose(s);
            /* The checker test: drop the 10th accepted proposal's entry
             * on one replica (whatever index it ends up applied at, the
             * replica skips the entry at the index proposed). */
            if (skip_node >= 0 && s->prop_count == 10 && before == 9)
                s->nodes[skip_node].skip_index = s->props[9].index;
        }
        raft_fixture_step(f);
        if (f->leader_id != 0) {
            raft_term t = raft_current_term(raft_fixture_get(f, (unsigned)f->leader_id - 1));
            if (f->leader_id != s->last_leader || t != s->last_leader_term) s->stats.leader_changes++;
            s->last_leader = f->leader_id;
            s->last_leader_term = t;
        }
    }
    ok = converge(s) && check(s);
    if (ok && s->restore_at_runtime) {
        snprintf(s->failure, sizeof s->failure,
                 "a follower was sent a snapshot: catch-up by checkpoint is not simulated; raise "
                 "SIM_SNAPSHOT_TRAILING");
        ok = false;
    }

    *out = s->stats;
    snprintf(failure, failure_size, "%s", ok ? "" : s->failure);
    raft_fixture_close(f);
    for (unsigned i = 0; i < SIM_NODES; i++) {
        sim_node *n = &s->nodes[i];
        node_close_sm(n);
        rm_rf(n->dir);
        free(n->stream);
    }
    g_hook_sim = NULL;
    for (uint32_t a = 0; a < s->apply_count; a++) free(s->applies[a]);
    free(s->applies);
    free(s->props);
    free(s->acks);
    free(s->cmds);
    free(s->created_rids);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static uint64_t env_u64(const char *name, uint64_t dflt) {
    const char *v = getenv(name);
    if (v == NULL || *v == 0) return dflt;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || *end != 0) {
        fprintf(stderr, "raft sim: %s=%s is not a number\n", name, v);
        exit(2);
    }
    return x;
}

static void test_sim_seeds(void **state) {
    (void)state;
    uint64_t first = 1, runs = SIM_RUNS_DEFAULT;
    const char *seed_env = getenv("QUIVER_SIM_SEED");
    if (seed_env && strcmp(seed_env, "random") == 0) {
        QUIVER_ASSERT(getrandom(&first, sizeof first, 0) == (ssize_t)sizeof first);
        first >>= 1; /* printable with room to count up */
        runs = env_u64("QUIVER_SIM_RUNS", SIM_RUNS_DEFAULT);
    } else if (seed_env && *seed_env) {
        first = env_u64("QUIVER_SIM_SEED", 1);
        runs = env_u64("QUIVER_SIM_RUNS", 1);
    } else {
        runs = env_u64("QUIVER_SIM_RUNS", SIM_RUNS_DEFAULT);
    }
    uint32_t steps = (uint32_t)env_u64("QUIVER_SIM_STEPS", SIM_STEPS_DEFAULT);

    uint32_t failed = 0;
    sim_stats total = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t r = 0; r < runs; r++) {
        uint64_t seed = first + r;
        sim_stats st;
        char why[SIM_MSG_SIZE];
        /* Printed first so that an abort inside raft's fixture (its
         * election-safety and append-only asserts) names the seed too. */
        if (g_verbose) fprintf(stderr, "raft sim: seed %" PRIu64 " ...\n", seed);
        bool ok = sim_run(seed, steps, -1, &st, why, sizeof why);
        if (!ok) {
            failed++;
            fprintf(stderr, "raft sim: FAILED seed %" PRIu64 " (reproduce: QUIVER_SIM_SEED=%" PRIu64 "): %s\n",
                    seed, seed, why);
        }
        if (g_verbose || !ok)
            fprintf(stderr,
                    "raft sim: seed %" PRIu64 ": %u entries (%u refused), %u commands (%u retries), %u acked, %u "
                    "entries with unknown outcome, last index %" PRIu64 "; %u partitions, %u one-way cuts, %u heals, %u lossy links, %u kills, %u "
                    "revives, %u state machine restarts, %u transfers, %u deposes, %u leader changes, %u snapshots\n",
                    seed, st.proposals, st.proposals_refused, st.commands, st.duplicates, st.acks, st.unknown, st.last_index,
                    st.partitions, st.one_way_cuts, st.heals, st.losses, st.kills, st.revives, st.sm_restarts,
                    st.transfers, st.deposes, st.leader_changes, st.snapshots);
        total.proposals += st.proposals;
        total.commands += st.commands;
        total.duplicates += st.duplicates;
        total.acks += st.acks;
        total.unknown += st.unknown;
        total.partitions += st.partitions + st.one_way_cuts;
        total.losses += st.losses;
        total.kills += st.kills;
        total.sm_restarts += st.sm_restarts;
        total.transfers += st.transfers;
        total.deposes += st.deposes;
        total.leader_changes += st.leader_changes;
        total.snapshots += st.snapshots;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("raft sim: %" PRIu64 " seeds from %" PRIu64 " (%u steps each) in %.1f s: %u entries, %u commands "
                  "(%u retries), %u acked, %u entries with unknown outcome; faults: %u cuts, %u lossy links, %u kills (%u state machine restarts), "
                  "%u transfers, %u deposes; %u leader changes, %u snapshots; %u failed\n",
                  runs, first, steps, secs, total.proposals, total.commands, total.duplicates, total.acks,
                  total.unknown, total.partitions, total.losses, total.kills, total.sm_restarts, total.transfers, total.deposes,
                  total.leader_changes, total.snapshots, failed);
    assert_int_equal(failed, 0);
}

/* The checks must catch a replica that silently skips an entry. */
static void test_sim_catches_divergence(void **state) {
    (void)state;
    sim_stats st;
    char why[SIM_MSG_SIZE];
    bool ok = sim_run(7, 600, 2, &st, why, sizeof why);
    assert_false(ok);
    print_message("raft sim: a replica that skips one entry is caught: %s\n", why);
}

int main(void) {
    g_verbose = env_u64("QUIVER_SIM_VERBOSE", 0) != 0;
    g_trace = env_u64("QUIVER_SIM_TRACE", 0) != 0;
    g_concurrent_apply = env_u64("QUIVER_SIM_SERIAL_APPLY", 0) == 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_catches_divergence),
        cmocka_unit_test(test_sim_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
