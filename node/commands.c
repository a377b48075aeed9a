/*
 * commands.c -- command table and the connection-level commands (PING,
 * ECHO, SELECT, COMMAND, QUIT, HELLO, AUTH, CLIENT, INFO).  Graph commands
 * live in router.c.
 *
 * Texts follow Redis 7.2 where clients may look at them: "unknown command
 * '%s', with args beginning with: ...", "wrong number of arguments for '%s'
 * command", "NOPROTO ...", "DB index is out of range", "OOM command not
 * allowed when used memory > 'maxmemory'.".  Arity uses Redis'
 * convention: n > 0 exactly n arguments (command name included), n < 0 at
 * least -n.  Commands that run queries are marked denyoom, as Redis marks
 * commands that may grow memory: over --maxmemory they are refused before
 * anything runs, while PING, INFO, QUIT, AUTH, CLIENT, GRAPH.DELETE (which
 * frees) and the cluster commands still work.
 */
#include "commands.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../common/qassert.h"
#include "catchup.h"
#include "cluster.h"
#include "router.h"

#define NODE_REDIS_VERSION "7.2.4" /* what we report as redis_version: clients gate features on it */

typedef void (*command_fn)(node_client *c, node_slot *s, resp_request *req);

typedef struct command {
    const char *name; /* lower case, as in error messages */
    int arity;
    command_fn fn;
    bool denyoom;     /* refused while the node is over --maxmemory */
} command;

static void done(node_slot *s) { node_slot_done(s); }

static bool arg_is(const resp_request *req, uint32_t i, const char *word) {
    return i < req->argc && strcasecmp(req->argv[i], word) == 0;
}

static bool parse_i64(const char *s, size_t len, int64_t *out) {
    if (len == 0 || len > 20) return false;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end != s + len) return false;
    *out = v;
    return true;
}

/* ---- PING, ECHO, SELECT, QUIT ---- */

static void cmd_ping(node_client *c, node_slot *s, resp_request *req) {
    (void)c;
    if (req->argc > 2) {
        reply_error(&s->buf, "ERR wrong number of arguments for 'ping' command");
    } else if (req->argc == 2) {
        reply_bulk(&s->buf, req->argv[1], req->argv_len[1]);
    } else {
        reply_simple(&s->buf, "PONG");
    }
    done(s);
}

static void cmd_echo(node_client *c, node_slot *s, resp_request *req) {
    (void)c;
    reply_bulk(&s->buf, req->argv[1], req->argv_len[1]);
    done(s);
}

static void cmd_select(node_client *c, node_slot *s, resp_request *req) {
    (void)c;
    int64_t db;
    if (!parse_i64(req->argv[1], req->argv_len[1], &db))
        reply_error(&s->buf, "ERR value is not an integer or out of range");
    else if (db != 0)
        reply_error(&s->buf, "ERR DB index is out of range");
    else
        reply_simple(&s->buf, "OK");
    done(s);
}

static void cmd_quit(node_client *c, node_slot *s, resp_request *req) {
    (void)req;
    reply_simple(&s->buf, "OK");
    s->close_after = true;
    c->stop_parsing = true;
    done(s);
}

/* ---- COMMAND ---- */

static void cmd_command(node_client *c, node_slot *s, resp_request *req) {
    (void)c;
    if (req->argc >= 2 && arg_is(req, 1, "count")) {
        reply_int(&s->buf, node_command_count());
    } else if (req->argc >= 2 && arg_is(req, 1, "info")) {
        /* We do not describe commands; a null per name is what Redis sends for unknown ones. */
        reply_array(&s->buf, req->argc - 2);
        for (uint32_t i = 2; i < req->argc; i++) reply_null(&s->buf);
    } else {
        /* COMMAND, COMMAND DOCS (redis-cli asks at start-up), COMMAND LIST...:
         * an empty array is valid for every one of them. */
        reply_array(&s->buf, 0);
    }
    done(s);
}

/* ---- AUTH, HELLO ---- */

static const char *auth_check(const resp_request *req, uint32_t user_i, uint32_t pass_i, bool has_user) {
    (void)pass_i;
    if (!has_user)
        return "ERR AUTH <password> called without any password configured for the default user. "
               "Are you sure your configuration is correct?";
    if (strcmp(req->argv[user_i], "default") != 0) return "WRONGPASS invalid username-password pair or user is disabled.";
    return NULL; /* the default user has no password: any password is accepted, as in Redis */
}

static void cmd_auth(node_client *c, node_slot *s, resp_request *req) {
    (void)c;
    const char *e = NULL;
    if (req->argc > 3)
        e = "ERR syntax error";
    else
        e = auth_check(req, 1, req->argc - 1, req->argc == 3);
    if (e) reply_error(&s->buf, e);
    else reply_simple(&s->buf, "OK");
    done(s);
}

static bool valid_client_name(const char *name, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (name[i] < '!' || name[i] > '~') return false; /* Redis: no spaces, newlines or specials */
    }
    return true;
}

static void cmd_hello(node_client *c, node_slot *s, resp_request *req) {
    uint32_t i = 1;
    if (req->argc >= 2) {
        int64_t ver;
        if (!parse_i64(req->argv[1], req->argv_len[1], &ver)) {
            reply_error(&s->buf, "ERR Protocol version is not an integer or out of range");
            done(s);
            return;
        }
        if (ver != 2) {
            reply_error(&s->buf, "NOPROTO sorry, this protocol version is not supported.");
            done(s);
            return;
        }
        i = 2;
    }
    const char *setname = NULL;
    size_t setname_len = 0;
    for (; i < req->argc; i++) {
        if (arg_is(req, i, "auth") && i + 2 < req->argc) {
            const char *e = auth_check(req, i + 1, i + 2, true);
            if (e) {
                reply_error(&s->buf, e);
                done(s);
                return;
            }
            i += 2;
        } else if (arg_is(req, i, "setname") && i + 1 < req->argc) {
            setname = req->argv[i + 1];
            setname_len = req->argv_len[i + 1];
            if (!valid_client_name(setname, setname_len) || setname_len >= sizeof(c->name)) {
                reply_error(&s->buf, "ERR Client names cannot contain spaces, newlines or special characters.");
                done(s);
                return;
            }
            i++;
        } else {
            reply_errorf(&s->buf, "ERR Syntax error in HELLO option '%.64s'", req->argv[i]);
            done(s);
            return;
        }
    }
    if (setname) snprintf(c->name, sizeof(c->name), "%.*s", (int)setname_len, setname);
    reply_array(&s->buf, 14);
    reply_bulk_cstr(&s->buf, "server");
    reply_bulk_cstr(&s->buf, "redis");
    reply_bulk_cstr(&s->buf, "version");
    reply_bulk_cstr(&s->buf, NODE_REDIS_VERSION);
    reply_bulk_cstr(&s->buf, "proto");
    reply_int(&s->buf, 2);
    reply_bulk_cstr(&s->buf, "id");
    reply_int(&s->buf, (int64_t)c->id);
    reply_bulk_cstr(&s->buf, "mode");
    reply_bulk_cstr(&s->buf, "standalone");
    reply_bulk_cstr(&s->buf, "role");
    reply_bulk_cstr(&s->buf, "master");
    reply_bulk_cstr(&s->buf, "modules");
    reply_array(&s->buf, 0);
    done(s);
}

/* ---- CLIENT ---- */

/* One CLIENT LIST / CLIENT INFO line.  The memory fields use Redis' names:
 * qbuf (the partly received request and the unparsed input), argv-mem
 * (requests parsed, not yet answered), omem (pending replies), tot-mem
 * (their sum, what --maxmemory-clients counts); plus Quiver's cmds (requests
 * queued) and reads (reads unanswered). */
static void client_info_line(reply_buf *b, node_client *c, uint64_t now_ms) {
    char line[640];
    uint64_t qbuf = resp_parser_buffered_bytes(&c->parser) + (c->inbuf_len - c->inbuf_off);
    uint64_t omem = c->reply_bytes + c->output_bytes;
    int n = snprintf(line, sizeof(line), "id=%" PRIu64 " addr=? laddr=? fd=? name=%s age=%" PRIu64
                     " db=0 qbuf=%" PRIu64 " argv-mem=%" PRIu64 " omem=%" PRIu64 " tot-mem=%" PRIu64
                     " cmds=%u reads=%u lib-name=%s lib-ver=%s\n",
                     c->id, c->name, (now_ms - c->created_ms) / 1000, qbuf, c->requests_bytes, omem,
                     qbuf + c->requests_bytes + omem, c->pending_count, c->reads_pending, c->lib_name, c->lib_ver);
    if (n > 0) reply_raw(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void cmd_client(node_client *c, node_slot *s, resp_request *req) {
    if (arg_is(req, 1, "setinfo")) {
        if (req->argc != 4) {
            reply_error(&s->buf, "ERR wrong number of arguments for 'client|setinfo' command");
        } else if (arg_is(req, 2, "lib-name") || arg_is(req, 2, "lib-ver")) {
            bool name = arg_is(req, 2, "lib-name");
            char *dst = name ? c->lib_name : c->lib_ver;
            size_t cap = name ? sizeof(c->lib_name) : sizeof(c->lib_ver);
            if (!valid_client_name(req->argv[3], req->argv_len[3]) || req->argv_len[3] >= cap) {
                reply_errorf(&s->buf, "ERR %s cannot contain spaces, newlines or special characters.",
                             name ? "lib-name" : "lib-ver");
            } else {
                snprintf(dst, cap, "%s", req->argv[3]);
                reply_simple(&s->buf, "OK");
            }
        } else {
            reply_errorf(&s->buf, "ERR Unrecognized option '%.64s'", req->argv[2]);
        }
    } else if (arg_is(req, 1, "setname")) {
        if (req->argc != 3) {
            reply_error(&s->buf, "ERR wrong number of arguments for 'client|setname' command");
        } else if (!valid_client_name(req->argv[2], req->argv_len[2]) || req->argv_len[2] >= sizeof(c->name)) {
            reply_error(&s->buf, "ERR Client names cannot contain spaces, newlines or special characters.");
        } else {
            snprintf(c->name, sizeof(c->name), "%s", req->argv[2]);
            reply_simple(&s->buf, "OK");
        }
    } else if (arg_is(req, 1, "getname") && req->argc == 2) {
        if (c->name[0]) reply_bulk_cstr(&s->buf, c->name);
        else reply_null(&s->buf);
    } else if (arg_is(req, 1, "id") && req->argc == 2) {
        reply_int(&s->buf, (int64_t)c->id);
    } else if (arg_is(req, 1, "info") && req->argc == 2) {
        reply_buf line;
        reply_buf_init(&line, 0);
        client_info_line(&line, c, node_now_ms());
        reply_bulk(&s->buf, line.data, line.len);
        reply_buf_free(&line);
    } else if (arg_is(req, 1, "list") && req->argc == 2) {
        reply_buf lines;
        reply_buf_init(&lines, 0);
        uint64_t now = node_now_ms();
        for (node_client *o = c->n->clients; o != NULL; o = o->next) client_info_line(&lines, o, now);
        reply_bulk(&s->buf, lines.data ? lines.data : "", lines.len);
        reply_buf_free(&lines);
    } else {
        reply_errorf(&s->buf, "ERR unknown subcommand '%.128s'. Try CLIENT HELP.", req->argv[1]);
    }
    done(s);
}

/* ---- INFO ---- */

static bool want_section(const resp_request *req, const char *name, bool is_default) {
    if (req->argc < 2) return is_default;
    for (uint32_t i = 1; i < req->argc; i++) {
        if (strcasecmp(req->argv[i], name) == 0) return true;
        if (strcasecmp(req->argv[i], "all") == 0 || strcasecmp(req->argv[i], "everything") == 0) return true;
        if (strcasecmp(req->argv[i], "default") == 0 && is_default) return true;
    }
    return false;
}

static void info_line(reply_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info_line(reply_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof(tmp) - 2) n = (int)sizeof(tmp) - 3;
    tmp[n++] = '\r';
    tmp[n++] = '\n';
    reply_raw(b, tmp, (size_t)n);
}

static void cmd_info(node_client *c, node_slot *s, resp_request *req) {
    node *n = c->n;
    reply_buf b;
    reply_buf_init(&b, 0);
    uint64_t now = node_now_ms();
    bool first = true;
#define SECTION(title)                                                                                          \
    do {                                                                                                        \
        if (!first) reply_raw(&b, "\r\n", 2);                                                                   \
        first = false;                                                                                          \
        info_line(&b, "# %s", title);                                                                           \
    } while (0)
    if (want_section(req, "server", true)) {
        struct utsname u;
        bool have_uname = uname(&u) == 0;
        uint64_t up_s = (now - n->start_ms) / 1000;
        SECTION("Server");
        info_line(&b, "redis_version:%s", NODE_REDIS_VERSION);
        info_line(&b, "quiver_version:%s", QUIVER_VERSION);
        info_line(&b, "redis_mode:standalone");
        info_line(&b, "os:%s %s %s", have_uname ? u.sysname : "?", have_uname ? u.release : "?",
                  have_uname ? u.machine : "?");
        info_line(&b, "arch_bits:%d", (int)(sizeof(void *) * 8));
        info_line(&b, "multiplexing_api:libuv");
        info_line(&b, "libuv_version:%s", uv_version_string());
        info_line(&b, "process_id:%ld", (long)getpid());
        info_line(&b, "tcp_port:%d", node_server_port(n));
        info_line(&b, "uptime_in_seconds:%" PRIu64, up_s);
        info_line(&b, "uptime_in_days:%" PRIu64, up_s / 86400);
        info_line(&b, "executable:quiverd");
    }
    if (want_section(req, "clients", true)) {
        uint64_t recent_in = 0, recent_out = 0;
        node_recent_max_buffers(n, &recent_in, &recent_out);
        SECTION("Clients");
        info_line(&b, "connected_clients:%u", n->client_count);
        info_line(&b, "maxclients:%u", n->cfg->max_clients);
        info_line(&b, "client_recent_max_input_buffer:%" PRIu64, recent_in);
        info_line(&b, "client_recent_max_output_buffer:%" PRIu64, recent_out);
        info_line(&b, "blocked_clients:0");
        /* Quiver's own: the client limits in force (server.h). */
        info_line(&b, "client_output_buffer_limit:%" PRIu64, n->cfg->client_output_buffer_limit_bytes);
        info_line(&b, "client_query_buffer_limit:%" PRIu64, n->cfg->client_query_buffer_limit_bytes);
        info_line(&b, "timeout:%u", n->cfg->timeout_s);
    }
    if (want_section(req, "memory", true)) {
        char h1[32], h2[32], h3[32], h4[32];
        uint64_t rss = node_memory_rss_bytes(); /* fresh: ~6 us */
        if (rss == 0) rss = n->used_memory_bytes;
        node_memory_human(rss, h1, sizeof h1);
        node_memory_human(n->used_memory_peak_bytes > rss ? n->used_memory_peak_bytes : rss, h2, sizeof h2);
        node_memory_human(n->cfg->maxmemory_bytes, h3, sizeof h3);
        node_memory_human(n->clients_memory_bytes, h4, sizeof h4);
        SECTION("Memory");
        /* used_memory is the resident set size (memory.h says why). */
        info_line(&b, "used_memory:%" PRIu64, rss);
        info_line(&b, "used_memory_human:%s", h1);
        info_line(&b, "used_memory_rss:%" PRIu64, rss);
        info_line(&b, "used_memory_peak:%" PRIu64, n->used_memory_peak_bytes > rss ? n->used_memory_peak_bytes : rss);
        info_line(&b, "used_memory_peak_human:%s", h2);
        info_line(&b, "maxmemory:%" PRIu64, n->cfg->maxmemory_bytes);
        info_line(&b, "maxmemory_human:%s", h3);
        info_line(&b, "maxmemory_policy:noeviction");
        info_line(&b, "maxmemory_clients:%" PRIu64, n->cfg->maxmemory_clients_bytes);
        info_line(&b, "mem_clients_normal:%" PRIu64, n->clients_memory_bytes);
        info_line(&b, "mem_clients_normal_human:%s", h4);
        info_line(&b, "total_system_memory:%" PRIu64, n->cfg->machine_memory_bytes);
        info_line(&b, "allocator_trims:%" PRIu64, n->trims_total);
        info_line(&b, "allocator_trim_last_us:%" PRIu64, n->trim_last_duration_us);
    }
    if (want_section(req, "stats", true)) {
        SECTION("Stats");
        info_line(&b, "total_connections_received:%" PRIu64, n->connections_received);
        info_line(&b, "total_commands_processed:%" PRIu64, n->commands_processed);
        info_line(&b, "rejected_connections:%" PRIu64, n->rejected_connections);
        info_line(&b, "evicted_clients:%" PRIu64, n->evicted_clients);
        info_line(&b, "client_query_buffer_limit_disconnections:%" PRIu64, n->query_limit_disconnections);
        info_line(&b, "client_output_buffer_limit_disconnections:%" PRIu64, n->output_limit_disconnections);
        info_line(&b, "client_idle_timeout_disconnections:%" PRIu64, n->idle_disconnections);
        info_line(&b, "oom_rejected_commands:%" PRIu64, n->oom_rejections);
        info_line(&b, "admissions_inline:%" PRIu64, n->admissions_inline);
        info_line(&b, "admissions_offloaded:%" PRIu64, n->admissions_offloaded);
        if (n->offload != NULL) {
            offload_stats os;
            offload_get_stats(n->offload, &os);
            info_line(&b, "offload_threads:%u", os.threads_count);
            info_line(&b, "offload_queued:%u", os.queued);
            info_line(&b, "offload_jobs_total:%" PRIu64, os.jobs_total);
            info_line(&b, "offload_refused_total:%" PRIu64, os.refused_total);
        }
    }
    if (want_section(req, "raft", true)) {
        SECTION("Raft");
        if (n->repl != NULL) {
            repl_info ri;
            repl_get_info(n->repl, &ri);
            info_line(&b, "raft_node_id:%" PRIu64, ri.node_id);
            info_line(&b, "raft_role:%s", ri.role ? ri.role : "follower");
            info_line(&b, "raft_current_term:%" PRIu64, ri.current_term);
            info_line(&b, "raft_leader_id:%" PRIu64, ri.leader_id);
            info_line(&b, "raft_leader_address:%s", ri.leader_address ? ri.leader_address : "");
            /* Where the leader takes clients (and forwarded writes): from --peers. */
            char leader_client[REPL_ADDRESS_SIZE_MAX_BYTES] = "";
            if (ri.leader_id != 0)
                cluster_client_address(n->cfg, ri.leader_id, ri.leader_address, leader_client, sizeof leader_client);
            info_line(&b, "raft_leader_client_address:%s", leader_client);
            info_line(&b, "raft_commit_index:%" PRIu64, ri.commit_index);
            info_line(&b, "raft_last_applied_index:%" PRIu64, ri.last_applied_index);
            info_line(&b, "raft_ready:%d", ri.ready ? 1 : 0);
            if (n->fwd != NULL && n->cluster != NULL) {
                /* Writes and reads through the leader (node/forward.c). */
                fwd_stats fs;
                n->cluster->stats(n->fwd, &fs);
                info_line(&b, "forward_waiting:%u", fs.waiting);
                info_line(&b, "forward_sent_inflight:%u", fs.sent_inflight);
                info_line(&b, "forward_local_inflight:%u", fs.local_inflight);
                info_line(&b, "forward_sent_total:%" PRIu64, fs.forwarded_total);
                info_line(&b, "forward_retries_total:%" PRIu64, fs.retries_total);
                info_line(&b, "forward_outcome_unknown_total:%" PRIu64, fs.unknown_total);
                info_line(&b, "forward_no_leader_total:%" PRIu64, fs.no_leader_total);
            }
            /* Readiness as /readyz says it, and the stale-read lag now. */
            info_line(&b, "raft_node_ready:%d", node_ready(n, &ri) ? 1 : 0);
            info_line(&b, "raft_startup_commit_index:%" PRIu64, n->startup_commit_index);
            info_line(&b, "raft_leader_index_seen:%" PRIu64, n->leader_index_seen);
            info_line(&b, "raft_stale_lag_entries:%" PRIu64, node_stale_lag_entries(n, &ri));
        } else {
            info_line(&b, "raft_node_id:%" PRIu64, n->cfg->node_id);
            info_line(&b, "raft_role:follower");
        }
        /* Read consistency (router.h): the calling connection's level and
         * reads served per level since start. */
        info_line(&b, "raft_consistency:%s", router_consistency_name(c->consistency));
        info_line(&b, "raft_reads_linearizable_total:%" PRIu64, n->reads_served_total[NODE_CONSISTENCY_LINEARIZABLE]);
        info_line(&b, "raft_reads_session_total:%" PRIu64, n->reads_served_total[NODE_CONSISTENCY_SESSION]);
        info_line(&b, "raft_reads_stale_total:%" PRIu64, n->reads_served_total[NODE_CONSISTENCY_STALE]);
        info_line(&b, "raft_session_waits_total:%" PRIu64, n->session_waits_total);
        info_line(&b, "raft_session_wait_timeouts_total:%" PRIu64, n->session_wait_timeouts_total);
        info_line(&b, "raft_session_nudges_total:%" PRIu64, n->session_nudges_total);
        info_line(&b, "raft_address:%s", n->cfg->raft_address);
        info_line(&b, "raft_peers:%u", n->cfg->peer_count); /* last: tests read INFO up to it */
    }
#undef SECTION
    reply_bulk(&s->buf, b.data ? b.data : "", b.len);
    reply_buf_free(&b);
    done(s);
}

/* ---- CONFIG ---- */

/* Tools such as redis-benchmark read a few settings at start-up; Quiver's
 * settings are flags, so GET answers an empty list (no such parameter) and
 * SET is refused. */
static void cmd_config(node_client *c, node_slot *s, resp_request *req) {
    (void)c;
    if (arg_is(req, 1, "get") && req->argc >= 3)
        reply_array(&s->buf, 0);
    else if (arg_is(req, 1, "get"))
        reply_error(&s->buf, "ERR wrong number of arguments for 'config|get' command");
    else
        reply_errorf(&s->buf, "ERR CONFIG %.32s is not supported: Quiver is configured with command-line flags",
                     req->argv[1]);
    done(s);
}

/* ---- the table ---- */

static const command commands[] = {
    {"ping", -1, cmd_ping, false},
    {"echo", 2, cmd_echo, false},
    {"select", 2, cmd_select, false},
    {"command", -1, cmd_command, false},
    {"quit", -1, cmd_quit, false},
    {"hello", -1, cmd_hello, false},
    {"auth", -2, cmd_auth, false},
    {"client", -2, cmd_client, false},
    {"info", -1, cmd_info, false},
    {"config", -2, cmd_config, false},
    {"graph.query", -3, router_graph_query, true},
    {"graph.ro_query", -3, router_graph_ro_query, true},
    {"graph.explain", -3, router_graph_explain, true},
    {"graph.delete", 2, router_graph_delete, false},
    {"graph.list", 1, router_graph_list, false},
    {"quiver.digest", 2, router_digest, false},
    {"quiver.cluster", -2, cluster_command, false},
    {"quiver.consistency", -1, router_consistency, false},
    {"quiver.requestid", 3, router_request_id, false},
};

/* Commands between nodes, not for clients: dispatched like the others but
 * not counted or described by COMMAND (the peer link, forward.c). */
static const command internal_commands[] = {
    {"quiver.forward", 2, router_forward, false},
    {"quiver.checkpoint", -2, catchup_command, false},
};

uint32_t node_command_count(void) { return (uint32_t)(sizeof(commands) / sizeof(commands[0])); }

static void reply_unknown(node_slot *s, const resp_request *req) {
    /* Redis: args quoted, the list cut once it passes 128 bytes. */
    char args[160];
    size_t len = 0;
    args[0] = '\0';
    for (uint32_t i = 1; i < req->argc && len < 128; i++) {
        int room = 128 - (int)len;
        int n = snprintf(args + len, sizeof(args) - len, "'%.*s' ", room < (int)req->argv_len[i] ? room : (int)req->argv_len[i],
                         req->argv[i]);
        if (n < 0) break;
        len += (size_t)n;
        if (len >= sizeof(args)) {
            len = sizeof(args) - 1;
            break;
        }
    }
    reply_errorf(&s->buf, "ERR unknown command '%.128s', with args beginning with: %s", req->argv[0], args);
}

void node_command_dispatch(node_client *c, node_slot *s, resp_request *req) {
    QUIVER_ASSERT(c != NULL && s != NULL && req != NULL && req->argc >= 1);
    const command *cmd = NULL;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcasecmp(commands[i].name, req->argv[0]) == 0) {
            cmd = &commands[i];
            break;
        }
    }
    for (size_t i = 0; cmd == NULL && i < sizeof(internal_commands) / sizeof(internal_commands[0]); i++) {
        if (strcasecmp(internal_commands[i].name, req->argv[0]) == 0) cmd = &internal_commands[i];
    }
    if (cmd == NULL) {
        reply_unknown(s, req);
        done(s);
        return;
    }
    if ((cmd->arity > 0 && req->argc != (uint32_t)cmd->arity) ||
        (cmd->arity < 0 && req->argc < (uint32_t)(-cmd->arity))) {
        reply_errorf(&s->buf, "ERR wrong number of arguments for '%s' command", cmd->name);
        done(s);
        return;
    }
    if (cmd->denyoom && node_over_maxmemory(c->n)) {
        c->n->oom_rejections++;
        reply_error(&s->buf, "OOM command not allowed when used memory > 'maxmemory'.");
        done(s);
        return;
    }
    cmd->fn(c, s, req);
}
