/*
 * test_cli_fake_server.h -- an in-process fake RESP server for the CLI tests
 * (test_cli_import.c, test_cli_client.c): a thread on 127.0.0.1 (ephemeral
 * port) that answers GRAPH.QUERY the way FalkorDB's verbose format does.
 *
 * Import batches ("CYPHER rows=[...] ... CREATE (n...") get one node id per
 * row (0, 1, 2, ...), relationship batches "Relationships created: N";
 * MATCH (n) RETURN count(n) gets existing_nodes.  A test may set canned()
 * to answer a request itself: it returns the raw RESP reply, FAKE_CLOSE to
 * drop the connection, or NULL for the default behaviour.  Every batch
 * query is recorded in queries[].
 *
 * Thread: the server thread touches the struct only while a client is
 * connected; the test reads it after the client has disconnected.
 */
#ifndef QUIVER_TEST_CLI_FAKE_SERVER_H
#define QUIVER_TEST_CLI_FAKE_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "cli/buf.h"

#define FAKE_CLOSE ((const char *)1)

typedef struct fake {
    int listen_fd;
    int port;
    pthread_t thread;
    long long existing_nodes;  /* answer to MATCH (n) RETURN count(n) */
    int fail_batch;            /* 1-based batch number to refuse; 0: none */
    int connections;
    int batches;
    long long next_id;
    char *queries[256];
    int query_count;
    const char *(*canned)(struct fake *f, const redisReply *request);
} fake;

/* Rows in "CYPHER rows=[...]": top-level elements of the list. */
static long count_rows(const char *q) {
    const char *p = strstr(q, "rows=[");
    if (p == NULL) return -1;
    p += 6;
    int depth = 1;
    long commas = 0;
    bool any = false;
    char quote = 0;
    for (; *p && depth > 0; p++) {
        char c = *p;
        if (quote) {
            if (c == '\\' && quote != '`') p++;
            else if (c == quote) quote = 0;
            continue;
        }
        if (c == '\'' || c == '"' || c == '`') quote = c;
        else if (c == '[' || c == '{') depth++;
        else if (c == ']' || c == '}') depth--;
        else if (c == ',' && depth == 1) commas++;
        if (depth > 0 && c != ' ') any = true;
    }
    return any ? commas + 1 : 0;
}

static void reply(int fd, cli_buf *b) {
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(fd, b->data + off, b->len - off);
        if (w <= 0) return;
        off += (size_t)w;
    }
}

static void bulk(cli_buf *b, const char *s) { cli_buf_printf(b, "$%zu\r\n%s\r\n", strlen(s), s); }

static void serve(fake *f, int fd) {
    redisReader *rd = redisReaderCreate();
    char buf[65536];
    cli_buf out = CLI_BUF_INIT;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        redisReaderFeed(rd, buf, (size_t)n);
        void *v;
        while (redisReaderGetReply(rd, &v) == REDIS_OK && v != NULL) {
            redisReply *r = v;
            cli_buf_clear(&out);
            const char *c = f->canned ? f->canned(f, r) : NULL;
            if (c == FAKE_CLOSE) {
                freeReplyObject(r);
                goto closed;
            }
            if (c != NULL) {
                cli_buf_puts(&out, c);
            } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || strcmp(r->element[0]->str, "GRAPH.QUERY") != 0) {
                cli_buf_puts(&out, "-ERR unknown command\r\n");
            } else {
                const char *q = r->element[2]->str;
                if (strcmp(q, "MATCH (n) RETURN count(n)") == 0) {
                    cli_buf_printf(&out, "*3\r\n*1\r\n");
                    bulk(&out, "count(n)");
                    cli_buf_printf(&out, "*1\r\n*1\r\n:%lld\r\n*1\r\n", f->existing_nodes);
                    bulk(&out, "Cached execution: 0");
                } else {
                    f->batches++;
                    if (f->query_count < 256) f->queries[f->query_count++] = strdup(q);
                    long rows = count_rows(q);
                    if (f->batches == f->fail_batch) {
                        cli_buf_puts(&out, "-boom: batch refused\r\n");
                    } else if (strstr(q, "CREATE (n") != NULL) {
                        cli_buf_printf(&out, "*3\r\n*1\r\n");
                        bulk(&out, "id(n)");
                        cli_buf_printf(&out, "*%ld\r\n", rows);
                        for (long i = 0; i < rows; i++) cli_buf_printf(&out, "*1\r\n:%lld\r\n", f->next_id++);
                        cli_buf_puts(&out, "*2\r\n");
                        char line[64];
                        snprintf(line, sizeof line, "Nodes created: %ld", rows);
                        bulk(&out, line);
                        bulk(&out, "Query internal execution time: 0.100000 milliseconds");
                    } else {
                        char line[64];
                        snprintf(line, sizeof line, "Relationships created: %ld", rows);
                        cli_buf_puts(&out, "*1\r\n*2\r\n");
                        bulk(&out, line);
                        bulk(&out, "Cached execution: 0");
                    }
                }
            }
            reply(fd, &out);
            freeReplyObject(r);
        }
    }
closed:
    cli_buf_free(&out);
    redisReaderFree(rd);
    close(fd);
}

static void *fake_main(void *arg) {
    fake *f = arg;
    for (;;) {
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0) break; /* shut down */
        f->connections++;
        serve(f, fd);
    }
    return NULL;
}

static fake *fake_start(void) {
    fake *f = calloc(1, sizeof *f);
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->listen_fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->listen_fd, 4), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(f->listen_fd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    return f;
}

static void fake_run(fake *f) { assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0); }

/* Stop accepting and join; call after the import returned (its connection
 * is closed, so serve() has returned). */
static void fake_stop(fake *f) {
    shutdown(f->listen_fd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
    for (int i = 0; i < f->query_count; i++) free(f->queries[i]);
    free(f);
}

#endif
