/*
 * client.c -- running statements and the interactive shell (see client.h).
 *
 * The shell reads lines with libedit's readline-compatible API and keeps
 * history in ~/.quiver_history.  A statement may span lines and ends with
 * ';' outside string literals, back-quoted names and comments (the same rule
 * as cypher-shell).  Lines starting with ':' at the start of a statement are
 * shell commands.  Several statements on one line run one after another.
 * A lost connection is reported and re-opened before the next statement,
 * so a restarted server does not end the session.
 */
#include "client.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <editline/readline.h>

#include "../common/limits.h"
#include "../common/qassert.h"
#include "buf.h"
#include "reply.h"
#include "table.h"

/* Shell signal state (see shell_on_sigint). */
static volatile sig_atomic_t shell_sigint;
static volatile sig_atomic_t shell_in_query;

redisContext *cli_connect(const char *host, int port, FILE *errf) {
    QUIVER_ASSERT(host != NULL);
    struct timeval tv = {CLI_CONNECT_TIMEOUT_MS / 1000, (CLI_CONNECT_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (c == NULL) {
        fprintf(errf, "error: cannot connect to %s:%d: out of memory\n", host, port);
        return NULL;
    }
    if (c->err) {
        fprintf(errf, "error: cannot connect to %s:%d: %s\n", host, port, c->errstr);
        redisFree(c);
        return NULL;
    }
    return c;
}

int cli_run_query(redisContext *c, const char *graph, const char *query, FILE *out, FILE *errf) {
    QUIVER_ASSERT(c != NULL && graph != NULL && query != NULL);
    const char *argv[3] = {"GRAPH.QUERY", graph, query};
    size_t argl[3] = {11, strlen(graph), strlen(query)};
    redisReply *r = redisCommandArgv(c, 3, argv, argl);
    if (r == NULL) {
        fprintf(errf, "error: connection lost: %s\n", c->errstr[0] ? c->errstr : "no reply");
        return 2;
    }
    cli_result res;
    char err[1024];
    int rc = 0;
    if (cli_result_from_reply(r, &res, err, sizeof err) != 0) {
        fprintf(errf, "error: %s\n", err);
        rc = 1;
    } else {
        cli_buf text = CLI_BUF_INIT;
        cli_result_render(&res, &text);
        fwrite(text.data, 1, text.len, out);
        fflush(out);
        cli_buf_free(&text);
        cli_result_free(&res);
    }
    freeReplyObject(r);
    return rc;
}

int cli_status(redisContext *c, FILE *out, FILE *errf) {
    redisReply *r = redisCommand(c, "INFO raft");
    if (r == NULL) {
        fprintf(errf, "error: connection lost: %s\n", c->errstr);
        return 1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(errf, "error: %.*s\n", (int)r->len, r->str);
        freeReplyObject(r);
        return 1;
    }
    if (r->type != REDIS_REPLY_STRING) {
        fprintf(errf, "error: INFO did not answer with text\n");
        freeReplyObject(r);
        return 1;
    }
    const char *headers[2] = {"field", "value"};
    cli_table t;
    cli_table_init(&t, 2, headers);
    const char *p = r->str, *end = r->str + r->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t n = (size_t)(le - p);
        if (n > 0 && p[n - 1] == '\r') n--;
        const char *colon = memchr(p, ':', n);
        if (n > 0 && p[0] != '#' && colon != NULL) {
            char *k = strndup(p, (size_t)(colon - p));
            char *v = strndup(colon + 1, n - (size_t)(colon - p) - 1);
            if (k == NULL || v == NULL) QUIVER_FATAL("out of memory");
            const char *cells[2] = {k, v};
            cli_table_add_row(&t, cells, NULL);
            free(k);
            free(v);
        }
        p = nl ? nl + 1 : end;
    }
    freeReplyObject(r);
    if (t.row_count == 0) {
        fprintf(errf, "error: the server's INFO has no raft section (is it a Quiver node?)\n");
        cli_table_free(&t);
        return 1;
    }
    cli_buf text = CLI_BUF_INIT;
    cli_table_render(&t, &text);
    fwrite(text.data, 1, text.len, out);
    cli_buf_free(&text);
    cli_table_free(&t);
    return 0;
}

/* Scanner state across a statement's text.  Returns the offset of the first
 * ';' outside literals and comments at or after from, or len. */
static size_t statement_end(const char *s, size_t len, size_t from, bool *significant_after) {
    char quote = 0;      /* ' " ` while inside one */
    bool line_comment = false, block_comment = false;
    bool sig = false;
    for (size_t i = from; i < len; i++) {
        char ch = s[i];
        if (line_comment) {
            if (ch == '\n') line_comment = false;
            continue;
        }
        if (block_comment) {
            if (ch == '*' && i + 1 < len && s[i + 1] == '/') block_comment = false, i++;
            continue;
        }
        if (quote) {
            if (ch == '\\' && quote != '`') i++;
            else if (ch == quote) quote = 0;
            continue;
        }
        if (ch == '/' && i + 1 < len && s[i + 1] == '/') { line_comment = true; i++; continue; }
        if (ch == '/' && i + 1 < len && s[i + 1] == '*') { block_comment = true; i++; continue; }
        if (ch == '\'' || ch == '"' || ch == '`') { quote = ch; sig = true; continue; }
        if (ch == ';') {
            if (significant_after) *significant_after = sig;
            return i;
        }
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') sig = true;
    }
    if (significant_after) *significant_after = sig;
    return len;
}

bool cli_statement_complete(const char *text, size_t len) {
    size_t from = 0;
    bool any = false;
    for (;;) {
        bool sig = false;
        size_t e = statement_end(text, len, from, &sig);
        if (e == len) return any && !sig; /* text after the last ';' is blank */
        any = true;
        from = e + 1;
    }
}

static bool is_blank(const char *s, size_t n) {
    bool sig = false;
    (void)statement_end(s, n, 0, &sig);
    return !sig;
}

typedef struct shell {
    const char *host;
    int port;
    char graph[QUIVER_GRAPH_NAME_SIZE_MAX_BYTES + 1];
    redisContext *c;
    int failures;
} shell;

static int shell_run(shell *sh, const char *stmt, size_t len) {
    if (is_blank(stmt, len)) return 0;
    if (sh->c == NULL) {
        sh->c = cli_connect(sh->host, sh->port, stderr);
        if (sh->c == NULL) return 1;
    }
    char *q = strndup(stmt, len);
    if (q == NULL) QUIVER_FATAL("out of memory");
    shell_in_query = 1;
    int rc = cli_run_query(sh->c, sh->graph, q, stdout, stderr);
    shell_in_query = 0;
    free(q);
    if (rc == 2) {
        redisFree(sh->c);
        sh->c = NULL;
    }
    return rc ? 1 : 0;
}

/* Run every complete statement in buf; keep the unfinished tail. */
static void shell_run_complete(shell *sh, cli_buf *buf) {
    size_t from = 0;
    for (;;) {
        size_t e = statement_end(buf->data, buf->len, from, NULL);
        if (e == buf->len) break;
        if (shell_run(sh, buf->data + from, e - from) != 0) sh->failures++;
        from = e + 1;
    }
    size_t rest = buf->len - from;
    memmove(buf->data, buf->data + from, rest);
    buf->len = rest;
    buf->data[rest] = '\0';
}

static void shell_help(void) {
    printf("Type openCypher statements ending with ';' (they may span lines).\n"
           "  :graph NAME   query graph NAME from now on (:graph alone shows it)\n"
           "  :graphs       list graphs (GRAPH.LIST)\n"
           "  :status       INFO raft of the node\n"
           "  :help         this text\n"
           "  :quit         leave (also Ctrl-D)\n");
}

/* Returns 1 when the shell should exit. */
static int shell_command(shell *sh, const char *line) {
    while (*line == ' ' || *line == '\t') line++;
    char cmd[32];
    size_t n = strcspn(line, " \t\r\n");
    snprintf(cmd, sizeof cmd, "%.*s", (int)(n < sizeof cmd ? n : sizeof cmd - 1), line);
    const char *arg = line + n;
    while (*arg == ' ' || *arg == '\t') arg++;
    size_t arg_len = strcspn(arg, " \t\r\n");
    if (!strcmp(cmd, ":quit") || !strcmp(cmd, ":exit") || !strcmp(cmd, ":q")) return 1;
    if (!strcmp(cmd, ":help") || !strcmp(cmd, ":h") || !strcmp(cmd, ":?")) {
        shell_help();
    } else if (!strcmp(cmd, ":graph")) {
        if (arg_len == 0) printf("graph: %s\n", sh->graph);
        else if (arg_len > QUIVER_GRAPH_NAME_SIZE_MAX_BYTES) fprintf(stderr, "error: graph name too long\n");
        else {
            snprintf(sh->graph, sizeof sh->graph, "%.*s", (int)arg_len, arg);
            printf("graph: %s\n", sh->graph);
        }
    } else if (!strcmp(cmd, ":graphs") || !strcmp(cmd, ":status")) {
        if (sh->c == NULL) sh->c = cli_connect(sh->host, sh->port, stderr);
        if (sh->c == NULL) { sh->failures++; return 0; }
        if (!strcmp(cmd, ":status")) {
            if (cli_status(sh->c, stdout, stderr) != 0) sh->failures++;
        } else {
            redisReply *r = redisCommand(sh->c, "GRAPH.LIST");
            if (r == NULL) {
                fprintf(stderr, "error: connection lost: %s\n", sh->c->errstr);
                redisFree(sh->c);
                sh->c = NULL;
                sh->failures++;
            } else if (r->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "error: %s\n", r->str);
                sh->failures++;
            } else if (r->type == REDIS_REPLY_ARRAY) {
                for (size_t i = 0; i < r->elements; i++)
                    if (r->element[i]->type == REDIS_REPLY_STRING) printf("%s\n", r->element[i]->str);
            }
            if (r) freeReplyObject(r);
        }
    } else {
        fprintf(stderr, "error: unknown command %s (try :help)\n", cmd);
        sh->failures++;
    }
    fflush(stdout);
    return 0;
}

/* Ctrl-C at the prompt discards the statement being typed (as psql and
 * cypher-shell do) instead of ending the shell.  libedit's own signal
 * handling is off (rl_catch_signals = 0); our handler only sets a flag, and
 * our getc function turns the flag into an end of line that the loop then
 * discards.  The handler is one-shot (SA_RESETHAND) and re-armed before each
 * prompt: while a query runs, a first Ctrl-C only says the query is still
 * running (the server finishes it anyway) and a second one ends the
 * program, so a hung server never traps the user. */

static void shell_on_sigint(int sig) {
    (void)sig;
    shell_sigint = 1;
    static const char msg[] = "\n(Ctrl-C: the statement is still running; press Ctrl-C again to quit)\n";
    if (shell_in_query) {
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
    }
}

static void shell_arm_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = shell_on_sigint;
    sa.sa_flags = SA_RESETHAND; /* no SA_RESTART: read() in shell_getc returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

static int shell_getc(FILE *f) {
    for (;;) {
        if (shell_sigint) return '\n';
        unsigned char c;
        ssize_t n = read(fileno(f), &c, 1);
        /* Ctrl-D at an empty prompt ends the shell, whatever libedit's key
         * map makes of it: with TERM=dumb it was now and then inserted into
         * the line as the text "^D" and the shell never left. */
        if (n == 1 && c == 4 && rl_end == 0) return EOF;
        if (n == 1) return c;
        if (n == 0 || errno != EINTR) return EOF;
    }
}

static char *history_path(void) {
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0') return NULL;
    cli_buf p = CLI_BUF_INIT;
    cli_buf_printf(&p, "%s/.quiver_history", home);
    return cli_buf_take(&p);
}

int cli_shell(const char *host, int port, const char *graph) {
    shell sh;
    memset(&sh, 0, sizeof sh);
    sh.host = host;
    sh.port = port;
    snprintf(sh.graph, sizeof sh.graph, "%s", graph);
    bool tty = isatty(STDIN_FILENO);
    cli_buf buf = CLI_BUF_INIT;
    cli_buf_reserve(&buf, 0);
    char *hist = NULL;
    if (tty) {
        sh.c = cli_connect(host, port, stderr);
        if (sh.c == NULL) {
            cli_buf_free(&buf);
            return 1;
        }
        printf("quiver shell: connected to %s:%d, graph %s.  :help for help, :quit to leave.\n", host, port,
               sh.graph);
        hist = history_path();
        rl_catch_signals = 0;
        rl_getc_function = shell_getc;
        using_history();
        stifle_history(CLI_HISTORY_COUNT_MAX);
        if (hist) read_history(hist);
    }
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        char prompt[QUIVER_GRAPH_NAME_SIZE_MAX_BYTES + 32];
        if (buf.len == 0) snprintf(prompt, sizeof prompt, "quiver:%s> ", sh.graph);
        else snprintf(prompt, sizeof prompt, "%*s> ", (int)strlen(sh.graph) + 7, "...");
        char *l;
        if (tty) {
            free(line);
            shell_sigint = 0;
            shell_arm_sigint();
            line = readline(prompt);
            l = line;
            if (l == NULL) { putchar('\n'); break; }
            if (shell_sigint) { /* Ctrl-C: drop what was typed */
                printf("^C\n");
                cli_buf_clear(&buf);
                continue;
            }
        } else {
            ssize_t got = getline(&line, &cap, stdin);
            if (got < 0) break;
            if (got > 0 && line[got - 1] == '\n') line[got - 1] = '\0';
            l = line;
        }
        if (buf.len == 0 && l[strspn(l, " \t")] == ':') {
            if (tty) {
                add_history(l);
                if (hist) write_history(hist);
            }
            if (shell_command(&sh, l)) break;
            continue;
        }
        if (buf.len + strlen(l) + 1 > CLI_STATEMENT_SIZE_MAX_BYTES) {
            fprintf(stderr, "error: statement longer than %u bytes, discarded\n", CLI_STATEMENT_SIZE_MAX_BYTES);
            cli_buf_clear(&buf);
            sh.failures++;
            continue;
        }
        if (buf.len) cli_buf_putc(&buf, '\n');
        cli_buf_puts(&buf, l);
        if (cli_statement_complete(buf.data, buf.len)) {
            if (tty) {
                add_history(buf.data);
                if (hist) write_history(hist);
            }
            shell_run_complete(&sh, &buf);
            if (is_blank(buf.data, buf.len)) cli_buf_clear(&buf);
        }
    }
    /* A final statement without ';' at the end of piped input still runs. */
    if (!tty && buf.len > 0) {
        if (shell_run(&sh, buf.data, buf.len) != 0) sh.failures++;
    }
    free(line);
    free(hist);
    cli_buf_free(&buf);
    if (sh.c) redisFree(sh.c);
    return (!tty && sh.failures > 0) ? 1 : 0;
}
