/*
 * header.c -- neo4j-admin CSV header parsing (see header.h).
 */
#include "header.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/limits.h"
#include "../common/qassert.h"
#include "cypher_literal.h"

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p == NULL) QUIVER_FATAL("out of memory");
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static bool eq_ci(const char *s, size_t n, const char *word) {
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

void import_header_free(import_header *h) {
    if (h->columns) {
        for (size_t i = 0; i < h->column_count; i++) {
            free(h->columns[i].name);
            free(h->columns[i].key_literal);
            free(h->columns[i].id_space);
        }
    }
    free(h->columns);
    memset(h, 0, sizeof *h);
}

/* Split "name:type(space)" into its parts.  type_len 0 when there is no ':'. */
static void split_cell(const char *s, size_t n, size_t *name_len, const char **type, size_t *type_len) {
    int depth = 0;
    size_t colon = n;
    for (size_t i = n; i-- > 0;) {
        if (s[i] == ')') depth++;
        else if (s[i] == '(') depth--;
        else if (s[i] == ':' && depth <= 0) {
            colon = i;
            break;
        }
    }
    if (colon == n) {
        *name_len = n;
        *type = s + n;
        *type_len = 0;
        return;
    }
    *name_len = colon;
    *type = s + colon + 1;
    *type_len = n - colon - 1;
}

static int fail(char *err, size_t err_size, size_t col, const csv_field *f, const char *what) {
    snprintf(err, err_size, "column %zu '%.*s': %s", col + 1, (int)(f->len > 200 ? 200 : f->len), f->text, what);
    return -1;
}

int import_header_parse(import_file_kind kind, const csv_field *fields, size_t count,
                        import_header *out, char *err, size_t err_size_bytes) {
    QUIVER_ASSERT(fields != NULL && out != NULL && err != NULL && err_size_bytes > 0);
    QUIVER_ASSERT(count >= 1 && count <= CSV_FIELDS_COUNT_MAX);
    import_header h;
    memset(&h, 0, sizeof h);
    h.kind = kind;
    h.id_col = h.label_col = h.type_col = h.start_col = h.end_col = -1;
    h.column_count = count;
    h.columns = calloc(count, sizeof *h.columns);
    if (h.columns == NULL) QUIVER_FATAL("out of memory");
    char what[256];

    for (size_t c = 0; c < count; c++) {
        const csv_field *f = &fields[c];
        import_column *col = &h.columns[c];
        size_t name_len, type_len;
        const char *type;
        split_cell(f->text, f->len, &name_len, &type, &type_len);
        /* An id space: TYPE(Space) for ID, START_ID, END_ID. */
        const char *space = NULL;
        size_t space_len = 0;
        const char *paren = memchr(type, '(', type_len);
        size_t base_len = type_len;
        if (paren != NULL) {
            if (type_len == 0 || type[type_len - 1] != ')') {
                fail(err, err_size_bytes, c, f, "unbalanced '(' in the type");
                goto error;
            }
            base_len = (size_t)(paren - type);
            space = paren + 1;
            space_len = type_len - base_len - 2;
        }
        col->type = VT_STRING;
        if (type_len == 0) {
            col->kind = COL_PROPERTY;
        } else if (eq_ci(type, base_len, "ID")) {
            col->kind = COL_ID;
        } else if (eq_ci(type, base_len, "START_ID")) {
            col->kind = COL_START_ID;
        } else if (eq_ci(type, base_len, "END_ID")) {
            col->kind = COL_END_ID;
        } else if (space != NULL) {
            fail(err, err_size_bytes, c, f, "only ID, START_ID and END_ID take an id space");
            goto error;
        } else if (eq_ci(type, base_len, "LABEL")) {
            col->kind = COL_LABEL;
        } else if (eq_ci(type, base_len, "TYPE")) {
            col->kind = COL_TYPE;
        } else if (eq_ci(type, base_len, "IGNORE")) {
            col->kind = COL_IGNORE;
        } else {
            col->kind = COL_PROPERTY;
            size_t t = base_len;
            if (t >= 2 && type[t - 2] == '[' && type[t - 1] == ']') {
                col->array = true;
                t -= 2;
            }
            if (eq_ci(type, t, "int") || eq_ci(type, t, "long") || eq_ci(type, t, "short") ||
                eq_ci(type, t, "byte"))
                col->type = VT_INT;
            else if (eq_ci(type, t, "float") || eq_ci(type, t, "double"))
                col->type = VT_FLOAT;
            else if (eq_ci(type, t, "boolean"))
                col->type = VT_BOOL;
            else if (eq_ci(type, t, "string") || eq_ci(type, t, "char"))
                col->type = VT_STRING;
            else {
                snprintf(what, sizeof what, "unknown or unsupported type '%.*s'", (int)(t > 64 ? 64 : t), type);
                fail(err, err_size_bytes, c, f, what);
                goto error;
            }
        }
        if (col->kind == COL_ID || col->kind == COL_START_ID || col->kind == COL_END_ID) {
            col->id_space = dup_n(space ? space : "", space_len);
            col->id_space_len = space_len;
        }

        /* Which columns fit which file. */
        bool node_only = col->kind == COL_ID || col->kind == COL_LABEL;
        bool edge_only = col->kind == COL_TYPE || col->kind == COL_START_ID || col->kind == COL_END_ID;
        if (kind == IMPORT_EDGES && node_only) {
            fail(err, err_size_bytes, c, f, "not allowed in a relationship file");
            goto error;
        }
        if (kind == IMPORT_NODES && edge_only) {
            fail(err, err_size_bytes, c, f, "not allowed in a node file");
            goto error;
        }
        int *slot = NULL;
        switch (col->kind) {
        case COL_ID: slot = &h.id_col; break;
        case COL_LABEL: slot = &h.label_col; break;
        case COL_TYPE: slot = &h.type_col; break;
        case COL_START_ID: slot = &h.start_col; break;
        case COL_END_ID: slot = &h.end_col; break;
        default: break;
        }
        if (slot != NULL) {
            if (*slot >= 0) {
                fail(err, err_size_bytes, c, f, "a second column of this kind");
                goto error;
            }
            *slot = (int)c;
        }
        /* Only properties and a named ID keep their name. */
        bool stored = col->kind == COL_PROPERTY || (col->kind == COL_ID && name_len > 0);
        if (col->kind == COL_PROPERTY && name_len == 0) {
            fail(err, err_size_bytes, c, f, "a property column needs a name");
            goto error;
        }
        if (stored) {
            if (name_len > QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES) {
                fail(err, err_size_bytes, c, f, "property name too long");
                goto error;
            }
            if (!cypher_utf8_valid(f->text, name_len)) {
                fail(err, err_size_bytes, c, f, "property name is not valid UTF-8");
                goto error;
            }
            for (size_t k = 0; k < c; k++) {
                if (h.columns[k].name && h.columns[k].name_len == name_len &&
                    memcmp(h.columns[k].name, f->text, name_len) == 0) {
                    fail(err, err_size_bytes, c, f, "duplicate property name");
                    goto error;
                }
            }
            col->name = dup_n(f->text, name_len);
            col->name_len = name_len;
            cli_buf kb = CLI_BUF_INIT;
            cypher_append_name(&kb, col->name, name_len);
            cli_buf_append(&kb, ": ", 2);
            col->key_literal_len = kb.len;
            col->key_literal = cli_buf_take(&kb);
            h.property_count++;
        }
    }
    if (kind == IMPORT_EDGES) {
        const char *missing = h.start_col < 0 ? ":START_ID" : h.end_col < 0 ? ":END_ID" : h.type_col < 0 ? ":TYPE" : NULL;
        if (missing) {
            snprintf(err, err_size_bytes, "no %s column in the header", missing);
            goto error;
        }
    }
    *out = h;
    return 0;
error:
    import_header_free(&h);
    memset(out, 0, sizeof *out);
    return -1;
}
