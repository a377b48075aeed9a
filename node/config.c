/*
 * config.c -- quiverd's flags (see config.h).  getopt_long, so both
 * "--port 6380" and "--port=6380" work; every number is range-checked and
 * every error names the flag.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../common/limits.h"
#include "../common/qassert.h"
#include "memory.h"
#include "resp.h"

/* One reader thread per online core, 1..QUIVER_READER_THREADS_COUNT_DEFAULT_MAX. */
static uint32_t node_reader_threads_default(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    if (cores > QUIVER_READER_THREADS_COUNT_DEFAULT_MAX) cores = QUIVER_READER_THREADS_COUNT_DEFAULT_MAX;
    return (uint32_t)cores;
}

/* Machine-dependent defaults, for --help: this machine's values. */
static uint64_t default_maxmemory(uint64_t machine) {
    return machine == 0 ? 0 : node_memory_percent_of(machine, QUIVER_MAXMEMORY_PERCENT_DEFAULT);
}

static uint64_t default_maxmemory_clients(uint64_t maxmemory, uint64_t machine) {
    uint64_t base = maxmemory != 0 ? maxmemory : machine;
    return base == 0 ? 0 : node_memory_percent_of(base, QUIVER_MAXMEMORY_CLIENTS_PERCENT_DEFAULT);
}

void node_config_usage(FILE *f) {
    uint64_t machine = node_memory_machine_bytes();
    uint64_t maxmemory = default_maxmemory(machine);
    char machine_h[32], maxmemory_h[32], clients_h[32];
    node_memory_human(machine, machine_h, sizeof machine_h);
    node_memory_human(maxmemory, maxmemory_h, sizeof maxmemory_h);
    node_memory_human(default_maxmemory_clients(maxmemory, machine), clients_h, sizeof clients_h);
    fprintf(f,
            "Usage: quiverd [flags]\n"
            "Quiver graph database node: RESP (FalkorDB GRAPH.* commands) on the client port,\n"
            "raft between nodes.  Without flags: a single-node cluster on 127.0.0.1:6379 with\n"
            "its data in ./quiver-data.\n"
            "BYTES values take Redis' units: 1k = 1000, 1kb = 1024, m/mb, g/gb (any case).\n"
            "\n"
            "  --data-dir DIR              data directory (default %s): RocksDB in DIR/db,\n"
            "                              the raft log in DIR/raft\n"
            "  --port N                    client (RESP) port (default %d)\n"
            "  --bind ADDR                 client address to listen on (default %s;\n"
            "                              0.0.0.0 for every interface, e.g. in a container)\n"
            "  --node-id N                 this node's raft id, >= 1 (default 1)\n"
            "  --raft-address HOST:PORT    this node's raft address (default 127.0.0.1:<port+%d>)\n"
            "  --peers ID=HOST:PORT[@CHOST:CPORT],...\n"
            "                              initial cluster, this node included (default: this\n"
            "                              node alone); the same list on every node.  HOST:PORT\n"
            "                              is the raft address; @CHOST:CPORT the node's client\n"
            "                              address, where followers forward writes (default:\n"
            "                              HOST with PORT-%d; none if PORT-%d < 1)\n"
            "  --forward-timeout-ms N      how long a write or read forwarded to the leader may\n"
            "                              wait for a leader and its answer, retries included, in\n"
            "                              milliseconds (default %d)\n"
            "  --read-consistency LEVEL    read level of a new connection until it sends\n"
            "                              QUIVER.CONSISTENCY: linearizable (default), session\n"
            "                              or stale (DESIGN.md 6)\n"
            "  --join                      start without bootstrapping: this node waits to be\n"
            "                              added to a running cluster (QUIVER.CLUSTER ADD on\n"
            "                              its leader); --peers lists the members to reach\n"
            "  --snapshot-threshold N      log entries between raft snapshots (default %u)\n"
            "  --snapshot-trailing N       log entries kept after a snapshot, so a follower that\n"
            "                              was briefly away catches up from the log (default %u)\n"
            "  --admin-port N              admin HTTP port (/healthz, /readyz, /status, /metrics);\n"
            "                              0 = off (default 0)\n"
            "  --election-timeout-ms N     raft election timeout, milliseconds (default %d)\n"
            "  --heartbeat-timeout-ms N    raft heartbeat timeout, milliseconds (default %d)\n"
            "  --reader-threads N          threads running read queries (default: one per core,\n"
            "                              at most %d: %u here)\n"
            "\n"
            "Limits (a request over one gets an error and changes nothing):\n"
            "  --max-request-bytes BYTES   largest client request, the sum of its argument sizes\n"
            "                              (default %llu = 64 MiB); a longer bulk is refused at its\n"
            "                              header\n"
            "  --max-entry-bytes BYTES     largest raft log entry this node proposes; a write whose\n"
            "                              command cannot fit in one is refused (default %llu =\n"
            "                              64 MiB, at most %llu)\n"
            "  --write-work-max N          work units one write may use, the same on every replica\n"
            "                              (the leader's value travels in the log entry;\n"
            "                              query/engine.h defines a unit; 0 = no budget;\n"
            "                              default %llu, about one second of work).\n"
            "                              GRAPH.CONFIG-style name: WRITE_WORK_MAX\n"
            "  --query-memory-max-bytes BYTES\n"
            "                              memory one query may allocate, reads and writes\n"
            "                              (default %llu = 4 GiB).  GRAPH.CONFIG name (FalkorDB):\n"
            "                              QUERY_MEM_CAPACITY\n"
            "\n"
            "Clients (Redis' names and meanings):\n"
            "  --maxclients N              simultaneous client connections, 1..%d (default %d);\n"
            "                              --max-clients is the same flag\n"
            "  --timeout SECONDS           close a client idle this long (nothing in flight);\n"
            "                              0 = never (default %d)\n"
            "  --client-output-buffer-limit BYTES\n"
            "                              disconnect a client whose pending replies (finished but\n"
            "                              not yet written, plus bytes handed to its socket) pass\n"
            "                              this; also the largest single reply; 0 = no limit but\n"
            "                              the reply cap (default %llu = 1 GiB)\n"
            "  --client-query-buffer-limit BYTES\n"
            "                              memory one partly received request may hold, with %d\n"
            "                              bytes of bookkeeping per argument; past it: an error\n"
            "                              and the connection is closed (default:\n"
            "                              --max-request-bytes + %llu)\n"
            "  --maxmemory BYTES           used memory (resident set size, sampled every 100 ms)\n"
            "                              past which GRAPH.QUERY, GRAPH.RO_QUERY, GRAPH.EXPLAIN and\n"
            "                              forwarded writes are refused with -OOM (PING, INFO,\n"
            "                              GRAPH.DELETE still work); 0 = no limit (default %d%%\n"
            "                              of the machine's memory, or of the cgroup limit if\n"
            "                              lower: %s of %s here)\n"
            "  --maxmemory-clients BYTES|N%%\n"
            "                              all clients' buffers together; past it the client using\n"
            "                              the most is disconnected; N%% is of --maxmemory; 0 = no\n"
            "                              limit (default %d%%: %s here)\n"
            "\n"
            "  --help                      this text\n"
            "  --version                   print the version\n",
            NODE_DATA_DIR_DEFAULT, NODE_PORT_DEFAULT, NODE_BIND_DEFAULT, NODE_RAFT_PORT_OFFSET,
            NODE_RAFT_PORT_OFFSET, NODE_RAFT_PORT_OFFSET, NODE_FORWARD_TIMEOUT_MS_DEFAULT,
            NODE_SNAPSHOT_THRESHOLD_DEFAULT, NODE_SNAPSHOT_TRAILING_DEFAULT, NODE_ELECTION_TIMEOUT_MS_DEFAULT,
            NODE_HEARTBEAT_TIMEOUT_MS_DEFAULT, QUIVER_READER_THREADS_COUNT_DEFAULT_MAX, node_reader_threads_default(),
            (unsigned long long)QUIVER_REQUEST_SIZE_MAX_BYTES_DEFAULT,
            (unsigned long long)QUIVER_ENTRY_PROPOSE_SIZE_MAX_BYTES_DEFAULT,
            (unsigned long long)QUIVER_ENTRY_SIZE_MAX_BYTES, (unsigned long long)QUIVER_WRITE_WORK_MAX_DEFAULT,
            (unsigned long long)QUIVER_QUERY_MEMORY_MAX_BYTES, QUIVER_CLIENTS_COUNT_MAX, QUIVER_CLIENTS_COUNT_MAX,
            QUIVER_CLIENT_TIMEOUT_S_DEFAULT, (unsigned long long)QUIVER_CLIENT_OUTPUT_BUFFER_LIMIT_BYTES_DEFAULT,
            (int)(RESP_ARG_OVERHEAD_BYTES + RESP_ARGV_SLOT_BYTES), (unsigned long long)QUIVER_CLIENT_QUERY_BUFFER_OVERHEAD_BYTES,
            QUIVER_MAXMEMORY_PERCENT_DEFAULT, maxmemory_h, machine_h, QUIVER_MAXMEMORY_CLIENTS_PERCENT_DEFAULT,
            clients_h);
}

uint64_t node_config_reply_size_max_bytes(const node_config *cfg) {
    QUIVER_ASSERT(cfg != NULL);
    uint64_t cap = QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES;
    if (cfg->client_output_buffer_limit_bytes != 0 && cfg->client_output_buffer_limit_bytes < cap)
        cap = cfg->client_output_buffer_limit_bytes;
    return cap;
}

bool node_config_parse_bytes(const char *s, uint64_t *out) {
    if (s == NULL || *s < '0' || *s > '9') return false;
    uint64_t v = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
        p++;
    }
    uint64_t mul = 1;
    if (*p != '\0') {
        static const struct {
            const char *unit;
            uint64_t mul;
        } units[] = {{"k", 1000ull}, {"kb", 1024ull}, {"m", 1000ull * 1000}, {"mb", 1024ull * 1024},
                     {"g", 1000ull * 1000 * 1000}, {"gb", 1024ull * 1024 * 1024}};
        bool known = false;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (strcasecmp(p, units[i].unit) == 0) {
                mul = units[i].mul;
                known = true;
                break;
            }
        }
        if (!known) return false;
    }
    if (v > UINT64_MAX / mul) return false;
    *out = v * mul;
    return true;
}

static bool set_err(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool set_err(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return false;
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+') return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') return false;
    if (v < min || v > max) return false;
    *out = v;
    return true;
}

/* "host:port" with a port 1..65535 and a host of at least one byte. */
static bool valid_address(const char *s) {
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s) return false;
    uint64_t port;
    if (!parse_u64(colon + 1, 1, 65535, &port)) return false;
    return strlen(s) < REPL_ADDRESS_SIZE_MAX_BYTES;
}

static bool parse_peers(const char *s, node_config *cfg, char *err, size_t n) {
    cfg->peer_count = 0;
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[2 * REPL_ADDRESS_SIZE_MAX_BYTES + 32];
        if (len == 0 || len >= sizeof(item))
            return set_err(err, n, "--peers: bad entry '%.*s' (want ID=HOST:PORT)", (int)len, p);
        memcpy(item, p, len);
        item[len] = '\0';
        char *eq = strchr(item, '=');
        if (eq == NULL) return set_err(err, n, "--peers: bad entry '%s' (want ID=HOST:PORT)", item);
        *eq = '\0';
        char *at = strchr(eq + 1, '@');
        char client[REPL_ADDRESS_SIZE_MAX_BYTES + 8];
        if (at != NULL) {
            *at = '\0';
            if (!valid_address(at + 1))
                return set_err(err, n, "--peers: bad client address '%s' (want HOST:PORT after @)", at + 1);
            snprintf(client, sizeof client, "%s", at + 1);
        } else {
            /* Default: the raft host, raft port - NODE_RAFT_PORT_OFFSET. */
            const char *colon = strrchr(eq + 1, ':');
            uint64_t raft_port = 0;
            if (colon == NULL || !parse_u64(colon + 1, 1, 65535, &raft_port))
                return set_err(err, n, "--peers: bad address '%s' (want HOST:PORT)", eq + 1);
            /* A raft port at or below the offset leaves no default: that
             * node's client address is unknown and writes are not
             * forwarded to it (they wait for another leader). */
            if (raft_port <= NODE_RAFT_PORT_OFFSET)
                client[0] = '\0';
            else
                snprintf(client, sizeof client, "%.*s:%llu", (int)(colon - (eq + 1)), eq + 1,
                         (unsigned long long)(raft_port - NODE_RAFT_PORT_OFFSET));
            if (strlen(client) >= REPL_ADDRESS_SIZE_MAX_BYTES)
                return set_err(err, n, "--peers: address '%s' too long", eq + 1);
        }
        uint64_t id;
        if (!parse_u64(item, 1, UINT64_MAX, &id)) return set_err(err, n, "--peers: bad node id '%s' (want >= 1)", item);
        if (!valid_address(eq + 1)) return set_err(err, n, "--peers: bad address '%s' (want HOST:PORT)", eq + 1);
        if (cfg->peer_count >= REPL_PEERS_COUNT_MAX)
            return set_err(err, n, "--peers: more than %d peers", REPL_PEERS_COUNT_MAX);
        for (uint32_t i = 0; i < cfg->peer_count; i++) {
            if (cfg->peers[i].id == id) return set_err(err, n, "--peers: node id %llu listed twice", (unsigned long long)id);
        }
        cfg->peers[cfg->peer_count].id = id;
        snprintf(cfg->peers[cfg->peer_count].address, REPL_ADDRESS_SIZE_MAX_BYTES, "%s", eq + 1);
        snprintf(cfg->peer_client_addresses[cfg->peer_count], REPL_ADDRESS_SIZE_MAX_BYTES, "%s", client);
        cfg->peer_count++;
        p += len;
        if (*p == ',') p++;
    }
    if (cfg->peer_count == 0) return set_err(err, n, "--peers: empty list");
    return true;
}

node_config_result node_config_parse(int argc, char **argv, node_config *cfg, FILE *out, char *err,
                                     size_t err_size_bytes) {
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", NODE_DATA_DIR_DEFAULT);
    snprintf(cfg->bind, sizeof(cfg->bind), "%s", NODE_BIND_DEFAULT);
    cfg->port = NODE_PORT_DEFAULT;
    cfg->node_id = 1;
    cfg->election_timeout_ms = NODE_ELECTION_TIMEOUT_MS_DEFAULT;
    cfg->heartbeat_timeout_ms = NODE_HEARTBEAT_TIMEOUT_MS_DEFAULT;
    cfg->max_request_bytes = QUIVER_REQUEST_SIZE_MAX_BYTES_DEFAULT;
    cfg->reader_threads = node_reader_threads_default();
    cfg->max_clients = QUIVER_CLIENTS_COUNT_MAX;
    cfg->forward_timeout_ms = NODE_FORWARD_TIMEOUT_MS_DEFAULT;
    cfg->snapshot_threshold = NODE_SNAPSHOT_THRESHOLD_DEFAULT;
    cfg->snapshot_trailing = NODE_SNAPSHOT_TRAILING_DEFAULT;
    cfg->max_entry_bytes = QUIVER_ENTRY_PROPOSE_SIZE_MAX_BYTES_DEFAULT;
    cfg->write_work_max = QUIVER_WRITE_WORK_MAX_DEFAULT;
    cfg->query_memory_max_bytes = QUIVER_QUERY_MEMORY_MAX_BYTES;
    cfg->client_output_buffer_limit_bytes = QUIVER_CLIENT_OUTPUT_BUFFER_LIMIT_BYTES_DEFAULT;
    cfg->timeout_s = QUIVER_CLIENT_TIMEOUT_S_DEFAULT;
    const char *peers = NULL;
    bool raft_address_given = false;
    bool qbuf_given = false, maxmemory_given = false, clients_given = false;
    uint32_t clients_percent = QUIVER_MAXMEMORY_CLIENTS_PERCENT_DEFAULT; /* 0: clients_bytes given */
    uint64_t clients_bytes = 0;

    enum {
        OPT_DATA_DIR = 256, OPT_PORT, OPT_BIND, OPT_NODE_ID, OPT_RAFT_ADDRESS, OPT_PEERS, OPT_ADMIN_PORT,
        OPT_ELECTION, OPT_HEARTBEAT, OPT_MAX_REQUEST, OPT_READERS, OPT_MAX_CLIENTS, OPT_FORWARD_TIMEOUT, OPT_HELP, OPT_VERSION,
        OPT_JOIN, OPT_SNAPSHOT_THRESHOLD, OPT_SNAPSHOT_TRAILING, OPT_READ_CONSISTENCY, OPT_MAX_ENTRY,
        OPT_WRITE_WORK_MAX, OPT_QUERY_MEMORY_MAX, OPT_OUTPUT_LIMIT, OPT_QUERY_BUFFER_LIMIT, OPT_TIMEOUT,
        OPT_MAXMEMORY, OPT_MAXMEMORY_CLIENTS,
    };
    static const struct option options[] = {
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"port", required_argument, NULL, OPT_PORT},
        {"bind", required_argument, NULL, OPT_BIND},
        {"node-id", required_argument, NULL, OPT_NODE_ID},
        {"raft-address", required_argument, NULL, OPT_RAFT_ADDRESS},
        {"peers", required_argument, NULL, OPT_PEERS},
        {"admin-port", required_argument, NULL, OPT_ADMIN_PORT},
        {"election-timeout-ms", required_argument, NULL, OPT_ELECTION},
        {"heartbeat-timeout-ms", required_argument, NULL, OPT_HEARTBEAT},
        {"max-request-bytes", required_argument, NULL, OPT_MAX_REQUEST},
        {"reader-threads", required_argument, NULL, OPT_READERS},
        {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
        {"maxclients", required_argument, NULL, OPT_MAX_CLIENTS},
        {"max-entry-bytes", required_argument, NULL, OPT_MAX_ENTRY},
        {"write-work-max", required_argument, NULL, OPT_WRITE_WORK_MAX},
        {"query-memory-max-bytes", required_argument, NULL, OPT_QUERY_MEMORY_MAX},
        {"client-output-buffer-limit", required_argument, NULL, OPT_OUTPUT_LIMIT},
        {"client-query-buffer-limit", required_argument, NULL, OPT_QUERY_BUFFER_LIMIT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"maxmemory", required_argument, NULL, OPT_MAXMEMORY},
        {"maxmemory-clients", required_argument, NULL, OPT_MAXMEMORY_CLIENTS},
        {"forward-timeout-ms", required_argument, NULL, OPT_FORWARD_TIMEOUT},
        {"join", no_argument, NULL, OPT_JOIN},
        {"read-consistency", required_argument, NULL, OPT_READ_CONSISTENCY},
        {"snapshot-threshold", required_argument, NULL, OPT_SNAPSHOT_THRESHOLD},
        {"snapshot-trailing", required_argument, NULL, OPT_SNAPSHOT_TRAILING},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 1;
    for (;;) {
        int idx = 0;
        int c = getopt_long(argc, argv, ":h", options, &idx);
        if (c == -1) break;
        uint64_t v = 0;
        switch (c) {
        case OPT_DATA_DIR:
            if (optarg[0] == '\0' || strlen(optarg) + 8 >= sizeof(cfg->data_dir)) {
                set_err(err, err_size_bytes, "--data-dir: empty or longer than %d bytes", NODE_PATH_SIZE_MAX_BYTES - 8);
                return NODE_CONFIG_ERROR;
            }
            snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", optarg);
            break;
        case OPT_PORT:
            if (!parse_u64(optarg, 1, 65535, &v)) {
                set_err(err, err_size_bytes, "--port: '%s' is not a port (1..65535)", optarg);
                return NODE_CONFIG_ERROR;
            }
            cfg->port = (uint16_t)v;
            break;
        case OPT_BIND:
            if (optarg[0] == '\0' || strlen(optarg) >= sizeof(cfg->bind)) {
                set_err(err, err_size_bytes, "--bind: bad address '%s'", optarg);
                return NODE_CONFIG_ERROR;
            }
            snprintf(cfg->bind, sizeof(cfg->bind), "%s", optarg);
            break;
        case OPT_NODE_ID:
            if (!parse_u64(optarg, 1, UINT64_MAX, &v)) {
                set_err(err, err_size_bytes, "--node-id: '%s' is not a node id (>= 1)", optarg);
                return NODE_CONFIG_ERROR;
            }
            cfg->node_id = v;
            break;
        case OPT_RAFT_ADDRESS:
            if (!valid_address(optarg)) {
                set_err(err, err_size_bytes, "--raft-address: '%s' is not HOST:PORT", optarg);
                return NODE_CONFIG_ERROR;
            }
            snprintf(cfg->raft_address, sizeof(cfg->raft_address), "%s", optarg);
            raft_address_given = true;
            break;
        case OPT_PEERS: peers = optarg; break;
        case OPT_ADMIN_PORT:
            if (!parse_u64(optarg, 0, 65535, &v)) {
                set_err(err, err_size_bytes, "--admin-port: '%s' is not a port (0..65535)", optarg);
                return NODE_CONFIG_ERROR;
            }
            cfg->admin_port = (uint16_t)v;
            break;
        case OPT_ELECTION:
            if (!parse_u64(optarg, 10, 600000, &v)) {
                set_err(err, err_size_bytes, "--election-timeout-ms: '%s' is not 10..600000", optarg);
                return NODE_CONFIG_ERROR;
            }
            cfg->election_timeout_ms = (uint32_t)v;
            break;
        case OPT_HEARTBEAT:
            if (!parse_u64(optarg, 1, 600000, &v)) {
                set_err(err, err_size_bytes, "--heartbeat-timeout-ms: '%s' is not 1..600000", optarg);
                return NODE_CONFIG_ERROR;
            }
            cfg->heartbeat_timeout_ms = (uint32_t)v;
            break;
        case OPT_MAX_REQUEST:
            if (!node_config_parse_bytes(optarg, &v) || v < 1024 || v > QUIVER_ENTRY_SIZE_MAX_BYTES) {
                set_err(err, err_size_bytes, "--max-request-bytes: '%s' is not 1024..%llu bytes", optarg,
                        (unsigned long long)QUIVER_ENTRY_SIZE_MAX_BYTES);
                return NODE_CONFIG_ERROR;
            }
            cfg->max_request_bytes = v;
            break;
        case OPT_MAX_ENTRY:
            if (!node_config_parse_bytes(optarg, &v) || v < 65536 || v > QUIVER_ENTRY_SIZE_MAX_BYTES) {
                set_err(err, err_size_bytes, "--max-entry-bytes: '%s' is not 65536..%llu bytes", optarg,
                        (unsigned long long)QUIVER_ENTRY_SIZE_MAX_BYTES);
                return NODE_CONFIG_ERROR;
            }
            cfg->max_entry_bytes = v;
            break;
        case OPT_WRITE_WORK_MAX:
            if (!parse_u64(optarg, 0, UINT64_MAX, &v)) {
                set_err(err, err_size_bytes, "--write-work-max: '%s' is not a number of work units", optarg);
                return NODE_CONFIG_ERROR;
            }
            /* 0: no budget, which repl_config spells UINT64_MAX (its 0 is "the default") */
            cfg->write_work_max = v == 0 ? UINT64_MAX : v;
            break;
        case OPT_QUERY_MEMORY_MAX:
            if (!node_config_parse_bytes(optarg, &v) || v < (1u << 20) || v > (1ull << 40)) {
                set_err(err, err_size_bytes, "--query-memory-max-bytes: '%s' is not 1mb..1024gb", optarg);
                return NODE_CONFIG_ERROR;
            }
            cfg->query_memory_max_bytes = v;
            break;
        case OPT_OUTPUT_LIMIT:
            if (!node_config_parse_bytes(optarg, &v) || (v != 0 && v < 65536) || v > (1ull << 50)) {
                set_err(err, err_size_bytes, "--client-output-buffer-limit: '%s' is not 0 or at least 65536 bytes",
                        optarg);
                return NODE_CONFIG_ERROR;
            }
            cfg->client_output_buffer_limit_bytes = v;
            break;
        case OPT_QUERY_BUFFER_LIMIT:
            if (!node_config_parse_bytes(optarg, &v) || v < QUIVER_CLIENT_QUERY_BUFFER_LIMIT_BYTES_MIN ||
                v > (1ull << 50)) {
                set_err(err, err_size_bytes, "--client-query-buffer-limit: '%s' is not at least %llu bytes", optarg,
                        (unsigned long long)QUIVER_CLIENT_QUERY_BUFFER_LIMIT_BYTES_MIN);
                return NODE_CONFIG_ERROR;
            }
            cfg->client_query_buffer_limit_bytes = v;
            qbuf_given = true;
            break;
        case OPT_TIMEOUT:
            if (!parse_u64(optarg, 0, 365u * 24 * 3600, &v)) {
                set_err(err, err_size_bytes, "--timeout: '%s' is not 0..31536000 seconds", optarg);
                return NODE_CONFIG_ERROR;
            }
            cfg->timeout_s = (uint32_t)v;
            break;
        case OPT_MAXMEMORY:
            if (!node_config_parse_bytes(optarg, &v) || (v != 0 && v < (1u << 20))) {
                set_err(err, err_size_bytes, "--maxmemory: '%s' is not 0 or at least 1mb", optarg);
                return NODE_CONFIG_ERROR;
            }
            cfg->maxmemory_bytes = v;
            maxmemory_given = true;
            break;
        case OPT_MAXMEMORY_CLIENTS: {
            size_t len = strlen(optarg);
            clients_given = true;
            if (len >= 2 && optarg[len - 1] == '%') {
                char num[16];
                if (len - 1 >= sizeof num) {
                    set_err(err, err_size_bytes, "--maxmemory-clients: '%s' is not 1%%..100%%", optarg);
                    return NODE_CONFIG_ERROR;
                }
                memcpy(num, optarg, len - 1);
                num[len - 1] = '\0';
                if (!parse_u64(num, 1, 100, &v)) {
                    set_err(err, err_size_bytes, "--maxmemory-clients: '%s' is not 1%%..100%%", optarg);
                    return NODE_CONFIG_ERROR;
                }
                clients_percent = (uint32_t)v;
            } else if (node_config_parse_bytes(optarg, &v) && (v == 0 || v >= (1u << 20))) {
                clients_percent = 0;
                clients_bytes = v;
            } else {
                set_err(err, err_size_bytes, "--maxmemory-clients: '%s' is not 0, at least 1mb, or 1%%..100%%", optarg);
                return NODE_CONFIG_ERROR;
            }
            break;
        }
        case OPT_READERS:
            if (!parse_u64(optarg, 1, NODE_READER_THREADS_COUNT_MAX, &v)) {
                set_err(err, err_size_bytes, "--reader-threads: '%s' is not 1..%d", optarg, NODE_READER_THREADS_COUNT_MAX);
                return NODE_CONFIG_ERROR;
            }
            cfg->reader_threads = (uint32_t)v;
            break;
        case OPT_MAX_CLIENTS:
            if (!parse_u64(optarg, 1, QUIVER_CLIENTS_COUNT_MAX, &v)) {
                set_err(err, err_size_bytes, "--maxclients: '%s' is not 1..%d", optarg, QUIVER_CLIENTS_COUNT_MAX);
                return NODE_CONFIG_ERROR;
            }
            cfg->max_clients = (uint32_t)v;
            break;
        case OPT_FORWARD_TIMEOUT:
            if (!parse_u64(optarg, 10, 3600000, &v)) {
                set_err(err, err_size_bytes, "--forward-timeout-ms: '%s' is not 10..3600000", optarg);
                return NODE_CONFIG_ERROR;
            }
            cfg->forward_timeout_ms = v;
            break;
        case OPT_JOIN: cfg->join = true; break;
        case OPT_READ_CONSISTENCY:
            if (strcmp(optarg, "linearizable") == 0) cfg->read_consistency = 0;
            else if (strcmp(optarg, "session") == 0) cfg->read_consistency = 1;
            else if (strcmp(optarg, "stale") == 0) cfg->read_consistency = 2;
            else {
                set_err(err, err_size_bytes, "--read-consistency: '%s' is not linearizable, session or stale", optarg);
                return NODE_CONFIG_ERROR;
            }
            break;
        case OPT_SNAPSHOT_THRESHOLD:
            if (!parse_u64(optarg, 16, 100000000, &v)) {
                set_err(err, err_size_bytes, "--snapshot-threshold: '%s' is not 16..100000000", optarg);
                return NODE_CONFIG_ERROR;
            }
            cfg->snapshot_threshold = (uint32_t)v;
            break;
        case OPT_SNAPSHOT_TRAILING:
            if (!parse_u64(optarg, 1, 100000000, &v)) {
                set_err(err, err_size_bytes, "--snapshot-trailing: '%s' is not 1..100000000", optarg);
                return NODE_CONFIG_ERROR;
            }
            cfg->snapshot_trailing = (uint32_t)v;
            break;
        case 'h':
        case OPT_HELP: node_config_usage(out); return NODE_CONFIG_EXIT_OK;
        case OPT_VERSION: fprintf(out, "quiverd %s\n", QUIVER_VERSION); return NODE_CONFIG_EXIT_OK;
        case ':':
            set_err(err, err_size_bytes, "%s needs a value", argv[optind - 1]);
            return NODE_CONFIG_ERROR;
        default:
            set_err(err, err_size_bytes, "unknown flag '%s'", argv[optind - 1]);
            return NODE_CONFIG_ERROR;
        }
    }
    if (optind < argc) {
        set_err(err, err_size_bytes, "unexpected argument '%s'", argv[optind]);
        return NODE_CONFIG_ERROR;
    }
    if (peers != NULL) {
        if (!parse_peers(peers, cfg, err, err_size_bytes)) return NODE_CONFIG_ERROR;
        const repl_peer *self = NULL;
        for (uint32_t i = 0; i < cfg->peer_count; i++)
            if (cfg->peers[i].id == cfg->node_id) self = &cfg->peers[i];
        if (self == NULL) {
            set_err(err, err_size_bytes, "--peers must include this node (--node-id %llu)", (unsigned long long)cfg->node_id);
            return NODE_CONFIG_ERROR;
        }
        if (!raft_address_given) {
            snprintf(cfg->raft_address, sizeof(cfg->raft_address), "%s", self->address);
        } else if (strcmp(self->address, cfg->raft_address) != 0) {
            set_err(err, err_size_bytes, "--raft-address %s differs from this node's entry in --peers (%s)",
                    cfg->raft_address, self->address);
            return NODE_CONFIG_ERROR;
        }
    } else {
        if (!raft_address_given) {
            unsigned raft_port = (unsigned)cfg->port + NODE_RAFT_PORT_OFFSET;
            if (raft_port > 65535) raft_port = (unsigned)cfg->port - NODE_RAFT_PORT_OFFSET;
            snprintf(cfg->raft_address, sizeof(cfg->raft_address), "127.0.0.1:%u", raft_port);
        }
        cfg->peer_count = 1;
        cfg->peers[0].id = cfg->node_id;
        snprintf(cfg->peers[0].address, sizeof(cfg->peers[0].address), "%s", cfg->raft_address);
        char self_client[sizeof(cfg->bind) + 8];
        snprintf(self_client, sizeof(self_client), "%s:%u", cfg->bind, (unsigned)cfg->port);
        snprintf(cfg->peer_client_addresses[0], REPL_ADDRESS_SIZE_MAX_BYTES, "%.*s", REPL_ADDRESS_SIZE_MAX_BYTES - 1,
                 self_client);
    }
    if (cfg->heartbeat_timeout_ms >= cfg->election_timeout_ms) {
        set_err(err, err_size_bytes, "--heartbeat-timeout-ms (%u) must be below --election-timeout-ms (%u)",
                cfg->heartbeat_timeout_ms, cfg->election_timeout_ms);
        return NODE_CONFIG_ERROR;
    }
    /* Limits that follow others, and the machine-dependent defaults. */
    if (!qbuf_given) cfg->client_query_buffer_limit_bytes = cfg->max_request_bytes + QUIVER_CLIENT_QUERY_BUFFER_OVERHEAD_BYTES;
    cfg->machine_memory_bytes = node_memory_machine_bytes();
    if (!maxmemory_given) cfg->maxmemory_bytes = default_maxmemory(cfg->machine_memory_bytes);
    if (clients_given && clients_percent == 0) {
        cfg->maxmemory_clients_bytes = clients_bytes;
    } else {
        uint64_t base = cfg->maxmemory_bytes != 0 ? cfg->maxmemory_bytes : cfg->machine_memory_bytes;
        cfg->maxmemory_clients_bytes = base == 0 ? 0 : node_memory_percent_of(base, clients_percent);
    }
    snprintf(cfg->db_dir, sizeof(cfg->db_dir), "%s/db", cfg->data_dir);
    snprintf(cfg->raft_dir, sizeof(cfg->raft_dir), "%s/raft", cfg->data_dir);
    return NODE_CONFIG_RUN;
}
