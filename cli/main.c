/*
 * main.c -- the `quiver` program: command line of the Quiver client.
 *
 *   quiver [-h HOST] [-p PORT] [-g GRAPH] [QUERY]   run QUERY, or the shell
 *   quiver [-h HOST] [-p PORT] status                every cluster node as a table
 *   quiver import [--host H] [--port P] [--graph G] [options] DIR
 *
 * Defaults: host 127.0.0.1, port 6379, graph "g" (FalkorDB has no default
 * graph name; a short fixed one saves typing and is the same for import
 * and queries).  Exit status: 0 success, 1 any error (connection refused,
 * query error, failed import), 2 wrong usage.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/limits.h"
#include "buf.h"
#include "client.h"
#include "import.h"
#include "status.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 6379
#define DEFAULT_GRAPH "g"

static void usage(FILE *f) {
    fprintf(f,
            "usage: quiver [-h HOST] [-p PORT] [-g GRAPH] [QUERY]\n"
            "       quiver [-h HOST] [-p PORT] status\n"
            "       quiver import [-h|--host HOST] [-p|--port PORT] [-g|--graph GRAPH] [options] DIR\n"
            "\n"
            "With QUERY, run it with GRAPH.QUERY and print the result as a table with its\n"
            "statistics.  Without, start an interactive shell (history in ~/.quiver_history;\n"
            "statements end with ';'; :help lists commands); with stdin not a terminal,\n"
            "run the ';'-separated statements read from it.\n"
            "\n"
            "status asks the node at HOST:PORT (any node) for QUIVER.CLUSTER NODES and\n"
            "prints every member: id, client and raft address, role, state, term, commit\n"
            "index, applied index, lag behind the leader's commit index, reachability.\n"
            "\n"
            "  -h, --host HOST    server address (default " DEFAULT_HOST ")\n"
            "  -p, --port PORT    client port (default %d)\n"
            "  -g, --graph GRAPH  graph name (default \"" DEFAULT_GRAPH "\")\n"
            "      --help         this text\n"
            "\n"
            "import loads every nodes_*.csv[.gz], then every edges_*.csv[.gz] in DIR\n"
            "(neo4j-admin import header conventions) into GRAPH, which must be empty:\n"
            "      --append           allow a graph that already has nodes\n"
            "      --strict           exit 1 if any row was skipped (default: exit 0, listed)\n"
            "      --dry-run          parse and check every file, send nothing\n"
            "      --dump-queries FILE  write every batch's Cypher to FILE, one per line\n"
            "      --batch-size N     rows per GRAPH.QUERY (default %d)\n"
            "      --pipeline N       batches in flight (default %d)\n"
            "      --progress, --no-progress   force the progress bar on or off\n"
            "      --nodes H:P[,H:P...]  cluster nodes to use instead of -h/-p, any role;\n"
            "                         a lost connection moves to the next one\n"
            "      --retry-timeout-s N  keep retrying a failing batch this long (default %d)\n"
            "      --reply-timeout-s N  a reply not in after N s counts as a lost connection\n"
            "                         (default %d)\n"
            "Each batch carries a request id (QUIVER.REQUESTID, random origin per run), so a\n"
            "batch whose outcome is unknown (leader change, lost connection, busy) is sent\n"
            "again, to the same or another node, and is never applied twice.\n"
            "\n"
            "Exit status: 0 success, 1 error, 2 wrong usage.\n",
            DEFAULT_PORT, IMPORT_BATCH_ROWS_DEFAULT, IMPORT_IN_FLIGHT_DEFAULT, IMPORT_RETRY_TIMEOUT_DEFAULT_S,
            IMPORT_REPLY_TIMEOUT_DEFAULT_S);
}

static int parse_port(const char *s, int *port) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 65535) {
        fprintf(stderr, "error: bad port '%s' (1..65535)\n", s);
        return -1;
    }
    *port = (int)v;
    return 0;
}

static int parse_size(const char *s, long max, size_t *out, const char *what) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "error: bad %s '%s' (1..%ld)\n", what, s, max);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static int check_graph(const char *g) {
    if (g[0] == '\0' || strlen(g) > QUIVER_GRAPH_NAME_SIZE_MAX_BYTES) {
        fprintf(stderr, "error: graph name must be 1..%d bytes\n", QUIVER_GRAPH_NAME_SIZE_MAX_BYTES);
        return -1;
    }
    return 0;
}

static int cmd_import(int argc, char **argv, const char *host, int port, const char *graph) {
    import_options o;
    import_options_default(&o);
    o.host = host;
    o.port = port;
    o.graph = graph;
    enum { OPT_APPEND = 256, OPT_STRICT, OPT_DRY, OPT_BATCH, OPT_PIPE, OPT_PROG, OPT_NOPROG, OPT_HELP, OPT_DUMP,
           OPT_NODES, OPT_RETRY, OPT_REPLY };
    static const struct option longs[] = {
        {"host", required_argument, NULL, 'h'},   {"port", required_argument, NULL, 'p'},
        {"graph", required_argument, NULL, 'g'},  {"append", no_argument, NULL, OPT_APPEND},
        {"strict", no_argument, NULL, OPT_STRICT}, {"dry-run", no_argument, NULL, OPT_DRY},
        {"batch-size", required_argument, NULL, OPT_BATCH}, {"pipeline", required_argument, NULL, OPT_PIPE},
        {"progress", no_argument, NULL, OPT_PROG}, {"no-progress", no_argument, NULL, OPT_NOPROG},
        {"help", no_argument, NULL, OPT_HELP},     {"dump-queries", required_argument, NULL, OPT_DUMP},
        {"nodes", required_argument, NULL, OPT_NODES}, {"retry-timeout-s", required_argument, NULL, OPT_RETRY},
        {"reply-timeout-s", required_argument, NULL, OPT_REPLY},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    int ch;
    const char *dump_path = NULL;
    while ((ch = getopt_long(argc, argv, "h:p:g:", longs, NULL)) != -1) {
        switch (ch) {
        case 'h': o.host = optarg; break;
        case 'p': if (parse_port(optarg, &o.port) != 0) return 2; break;
        case 'g': o.graph = optarg; break;
        case OPT_APPEND: o.append = true; break;
        case OPT_STRICT: o.strict = true; break;
        case OPT_DRY: o.dry_run = true; break;
        case OPT_BATCH: if (parse_size(optarg, IMPORT_BATCH_ROWS_MAX, &o.batch_rows, "batch size") != 0) return 2; break;
        case OPT_PIPE: if (parse_size(optarg, IMPORT_IN_FLIGHT_MAX, &o.in_flight, "pipeline depth") != 0) return 2; break;
        case OPT_PROG: o.progress = 1; break;
        case OPT_NOPROG: o.progress = 0; break;
        case OPT_HELP: usage(stdout); return 0;
        case OPT_DUMP: dump_path = optarg; break;
        case OPT_NODES: o.nodes = optarg; break;
        case OPT_RETRY:
        case OPT_REPLY: {
            size_t v;
            if (parse_size(optarg, 86400, &v, ch == OPT_RETRY ? "retry timeout" : "reply timeout") != 0) return 2;
            *(ch == OPT_RETRY ? &o.retry_timeout_s : &o.reply_timeout_s) = (unsigned)v;
            break;
        }
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "error: import needs exactly one directory\n");
        usage(stderr);
        return 2;
    }
    if (check_graph(o.graph) != 0) return 2;
    o.dir = argv[optind];
    if (dump_path != NULL) {
        o.dump = fopen(dump_path, "w");
        if (o.dump == NULL) {
            fprintf(stderr, "error: cannot write %s: %s\n", dump_path, strerror(errno));
            return 1;
        }
    }
    int rc = import_run(&o);
    if (o.dump != NULL && fclose(o.dump) != 0) {
        fprintf(stderr, "error: writing %s: %s\n", dump_path, strerror(errno));
        rc = 1;
    }
    return rc;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN); /* a closed socket is an error return, not death */
    const char *host = DEFAULT_HOST, *graph = DEFAULT_GRAPH;
    int port = DEFAULT_PORT;
    static const struct option longs[] = {
        {"host", required_argument, NULL, 'h'}, {"port", required_argument, NULL, 'p'},
        {"graph", required_argument, NULL, 'g'}, {"help", no_argument, NULL, 'H'}, {NULL, 0, NULL, 0},
    };
    int ch;
    /* '+': stop at the first non-option, the query or the subcommand. */
    while ((ch = getopt_long(argc, argv, "+h:p:g:", longs, NULL)) != -1) {
        switch (ch) {
        case 'h': host = optarg; break;
        case 'p': if (parse_port(optarg, &port) != 0) return 2; break;
        case 'g': graph = optarg; break;
        case 'H': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (check_graph(graph) != 0) return 2;
    if (optind < argc && strcmp(argv[optind], "import") == 0)
        return cmd_import(argc - optind, argv + optind, host, port, graph);
    if (optind < argc && strcmp(argv[optind], "status") == 0 && argc - optind == 1) {
        redisContext *c = cli_connect(host, port, stderr);
        if (c == NULL) return 1;
        int rc = cli_cluster_status(c, stdout, stderr);
        redisFree(c);
        return rc;
    }
    if (optind == argc) return cli_shell(host, port, graph);

    /* A query: the remaining arguments joined by spaces, a final ';' dropped. */
    cli_buf q = CLI_BUF_INIT;
    for (int i = optind; i < argc; i++) {
        if (i > optind) cli_buf_putc(&q, ' ');
        cli_buf_puts(&q, argv[i]);
    }
    while (q.len > 0 && (q.data[q.len - 1] == ';' || q.data[q.len - 1] == ' ' || q.data[q.len - 1] == '\n'))
        q.data[--q.len] = '\0';
    redisContext *c = cli_connect(host, port, stderr);
    if (c == NULL) {
        cli_buf_free(&q);
        return 1;
    }
    int rc = cli_run_query(c, graph, q.data, stdout, stderr);
    redisFree(c);
    cli_buf_free(&q);
    return rc ? 1 : 0;
}
