/*
 * status.c -- `quiver status` (see status.h).
 *
 * The node does the work (it asks every member for its figures, node/
 * cluster.c); the CLI only turns the reply into a table.  Fields are looked
 * up by name in each node's field/value list, so a server that adds fields
 * later still renders, and a missing field shows as "-".
 */
#include "status.h"

#include <inttypes.h>
#include <string.h>
#include <sys/time.h>

#include "../common/qassert.h"
#include "table.h"

typedef struct column {
    const char *header;
    const char *field;
    bool number;
} column;

static const column COLUMNS[] = {
    {"id", "id", true},
    {"address", "address", false},
    {"raft address", "raft_address", false},
    {"role", "role", false},
    {"state", "state", false},
    {"term", "term", true},
    {"commit index", "commit_index", true},
    {"applied index", "applied_index", true},
    {"lag", "lag", true},
    {"reachable", "reachable", false},
};
#define COLUMN_COUNT (sizeof(COLUMNS) / sizeof(COLUMNS[0]))
#define CELL_SIZE_MAX_BYTES 256

static const redisReply *field_of(const redisReply *node, const char *name) {
    for (size_t i = 0; i + 1 < node->elements; i += 2) {
        const redisReply *k = node->element[i];
        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) && strlen(name) == k->len &&
            memcmp(k->str, name, k->len) == 0)
            return node->element[i + 1];
    }
    return NULL;
}

/* The text of a value (bounded; control bytes become '?', so the table
 * stays aligned and the terminal safe). */
static void cell_text(const redisReply *v, char *out, size_t size) {
    if (v == NULL || v->type == REDIS_REPLY_NIL) {
        snprintf(out, size, "-");
        return;
    }
    if (v->type == REDIS_REPLY_INTEGER) {
        snprintf(out, size, "%lld", v->integer);
        return;
    }
    if (v->type == REDIS_REPLY_STRING || v->type == REDIS_REPLY_STATUS) {
        size_t n = v->len < size - 1 ? v->len : size - 1;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)v->str[i];
            out[i] = ch < ' ' || ch == 0x7f ? '?' : (char)ch;
        }
        out[n] = '\0';
        if (n == 0) snprintf(out, size, "-");
        return;
    }
    snprintf(out, size, "?");
}

int cli_status_render(const redisReply *r, cli_buf *out, cli_buf *err) {
    QUIVER_ASSERT(r != NULL && out != NULL && err != NULL);
    if (r->type == REDIS_REPLY_ERROR) {
        cli_buf_printf(err, "%.*s", (int)r->len, r->str);
        return 1;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        cli_buf_puts(err, "unexpected reply to QUIVER.CLUSTER NODES (not an array)");
        return 1;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *node = r->element[i];
        if (node->type != REDIS_REPLY_ARRAY || node->elements % 2 != 0 || field_of(node, "id") == NULL) {
            cli_buf_printf(err, "unexpected reply to QUIVER.CLUSTER NODES (element %zu is not a field/value list "
                                "with an id)",
                           i + 1);
            return 1;
        }
    }
    const char *headers[COLUMN_COUNT];
    for (size_t k = 0; k < COLUMN_COUNT; k++) headers[k] = COLUMNS[k].header;
    cli_table t;
    cli_table_init(&t, COLUMN_COUNT, headers);
    cli_buf notes = CLI_BUF_INIT;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *node = r->element[i];
        char text[COLUMN_COUNT][CELL_SIZE_MAX_BYTES];
        const char *cells[COLUMN_COUNT];
        bool right[COLUMN_COUNT];
        for (size_t k = 0; k < COLUMN_COUNT; k++) {
            cell_text(field_of(node, COLUMNS[k].field), text[k], sizeof text[k]);
            cells[k] = text[k];
            right[k] = COLUMNS[k].number;
        }
        cli_table_add_row(&t, cells, right);
        const redisReply *reach = field_of(node, "reachable");
        if (reach != NULL && reach->type == REDIS_REPLY_STRING && reach->len == 2 && memcmp(reach->str, "no", 2) == 0) {
            char why[CELL_SIZE_MAX_BYTES];
            cell_text(field_of(node, "error"), why, sizeof why);
            cli_buf_printf(&notes, "node %s unreachable: %s\n", text[0], why);
        }
    }
    cli_table_render(&t, out);
    if (r->elements == 0)
        cli_buf_puts(&notes, "no members: this node has no raft configuration yet (started with --join and not "
                             "added with QUIVER.CLUSTER ADD on the leader?)\n");
    if (notes.len > 0) cli_buf_append(out, notes.data, notes.len);
    cli_buf_free(&notes);
    cli_table_free(&t);
    return 0;
}

int cli_cluster_status(redisContext *c, FILE *out, FILE *errf) {
    QUIVER_ASSERT(c != NULL && out != NULL && errf != NULL);
    struct timeval tv = {CLI_STATUS_TIMEOUT_MS / 1000, (CLI_STATUS_TIMEOUT_MS % 1000) * 1000};
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        fprintf(errf, "error: cannot set the reply timeout: %s\n", c->errstr);
        return 1;
    }
    redisReply *r = redisCommand(c, "QUIVER.CLUSTER NODES");
    if (r == NULL) {
        fprintf(errf, "error: no answer to QUIVER.CLUSTER NODES: %s\n", c->errstr[0] ? c->errstr : "connection lost");
        return 1;
    }
    cli_buf text = CLI_BUF_INIT, err = CLI_BUF_INIT;
    int rc = cli_status_render(r, &text, &err);
    freeReplyObject(r);
    if (rc != 0) fprintf(errf, "error: %s\n", err.data ? err.data : "bad reply");
    else fwrite(text.data, 1, text.len, out);
    fflush(out);
    cli_buf_free(&text);
    cli_buf_free(&err);
    return rc;
}
