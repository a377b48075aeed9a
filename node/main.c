/*
 * main.c -- quiverd: parse flags, open storage, start the reader pool, raft
 * (with the state machine's apply thread behind it) and the RESP server,
 * run the libuv loop until SIGINT/SIGTERM, then shut down in the reverse
 * order: stop accepting and close clients, stop the readers, stop raft (it
 * answers or fails every pending proposal and stops the apply thread),
 * stop the offload pool (admissions, encodings; after raft, whose last
 * answers may still hand it work, which it then refuses), close RocksDB
 * (which flushes atomically, so the applied index on disk matches the
 * data).
 *
 * Memory: glibc's allocator is set up before any thread starts
 * (node_memory_configure_allocator, memory.h).
 *
 * Exit status: 0 after a clean shutdown, 1 when start-up fails (the message
 * names the file, port or flag), 2 for bad flags (with the usage text).
 *
 * "quiverd ready on port N" is printed (and flushed) once the client port
 * listens and the cluster has a leader that can serve (for a single node:
 * this node, with its post-election barrier applied), so scripts and tests
 * can wait for that line instead of sleeping.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "../common/qassert.h"
#include "../raft/replication.h"
#include "../storage/graph.h"
#include "admin.h"
#include "catchup.h"
#include "config.h"
#include "forward.h"
#include "memory.h"
#include "offload.h"
#include "readers.h"
#include "router.h"
#include "server.h"

#define NODE_READY_POLL_MS 5

typedef struct app {
    uv_loop_t loop;
    node_config cfg;
    qs_db *db;
    readers *readers;
    offload *offload;
    repl *repl;
    node server;
    admin admin;
    uv_signal_t sigint, sigterm;
    uv_timer_t ready_timer;
    bool ready_printed;
    bool shutting_down;
} app;

static int mkdir_p(const char *path) {
    char tmp[NODE_PATH_SIZE_MAX_BYTES];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* A data directory is either new (missing or empty) or Quiver's: only db/
 * and raft/ in it.  Anything else means --data-dir points at the wrong
 * place; refuse before writing a byte, naming what we found. */
static bool check_data_dir(const char *path, char *err, size_t err_size) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) return true;
        snprintf(err, err_size, "cannot use the data directory %s: %s", path, strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, err_size, "the data directory %s is not a directory; give --data-dir a new or Quiver directory",
                 path);
        return false;
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        snprintf(err, err_size, "cannot read the data directory %s: %s", path, strerror(errno));
        return false;
    }
    bool ok = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (strcmp(e->d_name, "db") == 0 || strcmp(e->d_name, "raft") == 0) continue;
        /* Checkpoint catch-up's working names (catchup.h), and a database
         * whose creation was cut short (storage/db.c's qs_open). */
        if (strcmp(e->d_name, "checkpoints") == 0 || strcmp(e->d_name, "db.incoming") == 0 ||
            strcmp(e->d_name, "db.old") == 0 || strcmp(e->d_name, "db.creating") == 0)
            continue;
        snprintf(err, err_size,
                 "%s is not a Quiver data directory: it holds '%s' (a Quiver directory holds only db/ and raft/); "
                 "give --data-dir a new or empty directory, or the one Quiver created",
                 path, e->d_name);
        ok = false;
        break;
    }
    closedir(d);
    return ok;
}

/* Restart this process with the same arguments (checkpoint catch-up,
 * catchup.h): exec keeps the pid, so a supervisor sees no exit, and every
 * thread, socket (libuv opens them close-on-exec) and RocksDB file (idem)
 * goes away as in a crash, which the start-up path recovers from. */
static char **g_argv;

static void restart_self(void *ctx, uint64_t marker_index) {
    (void)ctx;
    fprintf(stderr, "quiverd: restarting to catch up from a checkpoint at or after index %llu\n",
            (unsigned long long)marker_index);
    fflush(stdout);
    fflush(stderr);
    execv("/proc/self/exe", g_argv);
    QUIVER_FATAL("cannot restart (execv /proc/self/exe): %s", strerror(errno));
}

static void close_walk_cb(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void offload_stop_app(app *a) {
    if (a->offload == NULL) return;
    offload *o = a->offload;
    a->offload = NULL;
    a->server.offload = NULL;
    offload_stop(o); /* calls what is pending; later submits are refused */
}

static void repl_stopped(void *ctx) {
    app *a = ctx;
    a->repl = NULL;
    offload_stop_app(a);
    /* Whatever is left (signal handles, the timer) closes now; uv_run ends. */
    uv_walk(&a->loop, close_walk_cb, NULL);
}

static void shutdown_app(app *a) {
    if (a->shutting_down) return;
    a->shutting_down = true;
    fprintf(stderr, "quiverd: shutting down\n");
    uv_timer_stop(&a->ready_timer);
    admin_stop(&a->admin);
    node_server_stop(&a->server);
    if (a->readers) {
        readers_stop(a->readers);
        a->readers = NULL;
        a->server.readers = NULL;
    }
    if (a->server.fwd) { /* before raft: its proposals are answered by repl_stop */
        fwd *f = a->server.fwd;
        a->server.fwd = NULL;
        fwd_stop(f);
    }
    if (a->repl) {
        repl *r = a->repl;
        a->server.repl = NULL;
        repl_stop(r, repl_stopped, a);
    } else {
        offload_stop_app(a);
        uv_walk(&a->loop, close_walk_cb, NULL);
    }
}

static void on_signal(uv_signal_t *h, int signum) {
    app *a = h->data;
    if (a->shutting_down) {
        fprintf(stderr, "quiverd: signal %d during shutdown, exiting now\n", signum);
        _exit(1);
    }
    shutdown_app(a);
}

static void ready_poll(uv_timer_t *t) {
    app *a = t->data;
    if (a->ready_printed || a->repl == NULL) return;
    repl_info ri;
    repl_get_info(a->repl, &ri);
    bool serving = ri.ready || (ri.leader_id != 0 && ri.leader_id != ri.node_id);
    if (!serving) return;
    a->ready_printed = true;
    uv_timer_stop(t);
    printf("quiverd ready on port %d\n", node_server_port(&a->server));
    fflush(stdout);
}

int main(int argc, char **argv) {
    static app a; /* large (the server's read buffer); static keeps it off the stack */
    char err[3 * NODE_PATH_SIZE_MAX_BYTES] = {0};
    node_config_result pr = node_config_parse(argc, argv, &a.cfg, stdout, err, sizeof(err));
    if (pr == NODE_CONFIG_EXIT_OK) return 0;
    if (pr == NODE_CONFIG_ERROR) {
        fprintf(stderr, "quiverd: %s\n\n", err);
        node_config_usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    g_argv = argv;
    if (!node_memory_configure_allocator())
        fprintf(stderr, "quiverd: warning: mallopt (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD) refused; freed memory may stay with the process longer\n");

    if (!check_data_dir(a.cfg.data_dir, err, sizeof(err))) {
        fprintf(stderr, "quiverd: %s\n", err);
        return 1;
    }
    if (mkdir_p(a.cfg.data_dir) != 0) {
        fprintf(stderr, "quiverd: cannot create the data directory %s: %s\n", a.cfg.data_dir, strerror(errno));
        return 1;
    }
    if (catchup_recover_swap(&a.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "quiverd: %s\n", err);
        return 1;
    }
    qs_options opts = {.block_cache_size_bytes = 0, .create_if_missing = true};
    if (qs_open(a.cfg.db_dir, &opts, &a.db, err, sizeof(err)) != QS_OK) {
        fprintf(stderr, "quiverd: cannot open the database in %s: %s\n", a.cfg.db_dir, err);
        return 1;
    }
    if (uv_loop_init(&a.loop) != 0) QUIVER_FATAL("uv_loop_init failed");

    int rc = readers_start(&a.loop, a.db, a.cfg.reader_threads, router_read_done, &a.server, &a.readers);
    if (rc != 0) {
        fprintf(stderr, "quiverd: cannot start %u reader threads: %s\n", a.cfg.reader_threads, strerror(-rc));
        qs_close(a.db);
        return 1;
    }
    readers_set_query_memory_max(a.readers, a.cfg.query_memory_max_bytes);
    rc = offload_start(&a.loop, OFFLOAD_THREADS_COUNT_DEFAULT, &a.offload);
    if (rc != 0) {
        fprintf(stderr, "quiverd: cannot start %d offload threads: %s\n", OFFLOAD_THREADS_COUNT_DEFAULT, strerror(-rc));
        readers_stop(a.readers);
        uv_run(&a.loop, UV_RUN_NOWAIT);
        qs_close(a.db);
        return 1;
    }

    repl_config rcfg = {
        .node_id = a.cfg.node_id,
        .address = a.cfg.raft_address,
        .dir = a.cfg.raft_dir,
        .peer_count = a.cfg.peer_count,
        .peers = a.cfg.peers,
        .election_timeout_ms = a.cfg.election_timeout_ms,
        .heartbeat_timeout_ms = a.cfg.heartbeat_timeout_ms,
        .snapshot_threshold = a.cfg.snapshot_threshold,
        .snapshot_trailing = a.cfg.snapshot_trailing,
        .join = a.cfg.join,
        .write_work_max = a.cfg.write_work_max,
        .query_memory_max_bytes = a.cfg.query_memory_max_bytes,
        .entry_size_max_bytes = a.cfg.max_entry_bytes,
        .on_checkpoint_needed = restart_self,
        .checkpoint_ctx = &a,
    };
    repl_checkpoint_need need;
    memset(&need, 0, sizeof need);
    rcfg.need_out = &need;
    rc = repl_start(&a.loop, &rcfg, a.db, &a.repl, err, sizeof(err));
    if (rc == REPL_START_NEEDS_CHECKPOINT) {
        /* Down longer than the retained log: copy a peer's checkpoint, then
         * start again from the top with it in place. */
        fprintf(stderr, "quiverd: %s\n", err);
        readers_stop(a.readers);
        offload_stop_app(&a);
        uv_run(&a.loop, UV_RUN_DEFAULT);
        qs_close(a.db);
        if (catchup_fetch(&a.cfg, need.marker_index, need.cluster_id, err, sizeof(err)) != 0) {
            fprintf(stderr, "quiverd: cannot catch up: %s\n", err);
            return 1;
        }
        restart_self(&a, need.marker_index);
    }
    if (rc != 0) {
        fprintf(stderr, "quiverd: cannot start raft (%s, log in %s): %s\n", a.cfg.raft_address, a.cfg.raft_dir, err);
        readers_stop(a.readers);
        offload_stop_app(&a);
        uv_run(&a.loop, UV_RUN_NOWAIT);
        qs_close(a.db);
        return 1;
    }

    int server_rc = node_server_start(&a.server, &a.loop, &a.cfg, a.db, a.repl, a.readers, err, sizeof(err));
    a.server.offload = a.offload; /* node_server_start cleared the struct */
    if (server_rc != 0) {
        fprintf(stderr, "quiverd: %s\n", err);
        a.readers = (readers_stop(a.readers), NULL);
        repl_stop(a.repl, repl_stopped, &a);
        a.repl = NULL;
        uv_run(&a.loop, UV_RUN_DEFAULT);
        uv_loop_close(&a.loop);
        qs_close(a.db);
        return 1;
    }

    if (a.cfg.admin_port != 0 && admin_start(&a.admin, &a.server, a.cfg.admin_port, err, sizeof(err)) != 0) {
        fprintf(stderr, "quiverd: %s\n", err);
        node_server_stop(&a.server);
        a.readers = (readers_stop(a.readers), NULL);
        a.server.readers = NULL;
        a.server.repl = NULL;
        repl_stop(a.repl, repl_stopped, &a);
        a.repl = NULL;
        uv_run(&a.loop, UV_RUN_DEFAULT);
        uv_loop_close(&a.loop);
        qs_close(a.db);
        return 1;
    }

    a.server.cluster = &fwd_cluster_ops; /* QUIVER.FORWARD is served by every node */
    if (a.cfg.peer_count > 1) {
        /* Writes through any node (forward.c). */
        fwd_peer peers[REPL_PEERS_COUNT_MAX];
        for (uint32_t i = 0; i < a.cfg.peer_count; i++) {
            peers[i].id = a.cfg.peers[i].id;
            snprintf(peers[i].client_address, sizeof(peers[i].client_address), "%s", a.cfg.peer_client_addresses[i]);
        }
        fwd_start(&a.loop, a.repl, a.offload, a.cfg.node_id, peers, a.cfg.peer_count, a.cfg.forward_timeout_ms,
                  &a.server.fwd);
    }

    uv_signal_init(&a.loop, &a.sigint);
    uv_signal_init(&a.loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_timer_init(&a.loop, &a.ready_timer);
    a.ready_timer.data = &a;
    uv_timer_start(&a.ready_timer, ready_poll, 0, NODE_READY_POLL_MS);

    char admin_s[32] = "off";
    if (a.cfg.admin_port) snprintf(admin_s, sizeof(admin_s), "port %u", (unsigned)a.cfg.admin_port);
    fprintf(stderr, "quiverd %s: node %llu, data in %s, raft on %s, %u peer(s), clients on %s:%d, admin %s\n",
            QUIVER_VERSION, (unsigned long long)a.cfg.node_id, a.cfg.data_dir, a.cfg.raft_address, a.cfg.peer_count,
            a.cfg.bind, node_server_port(&a.server), admin_s);

    uv_run(&a.loop, UV_RUN_DEFAULT);

    /* Handles closed by uv_walk need one more turn to finish closing. */
    uv_walk(&a.loop, close_walk_cb, NULL);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&a.loop) != 0) fprintf(stderr, "quiverd: warning: libuv handles still open at exit\n");
    qs_close(a.db);
    fprintf(stderr, "quiverd: stopped\n");
    return 0;
}
