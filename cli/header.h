/*
 * header.h -- neo4j-admin import CSV header conventions, for `quiver import`.
 *
 * Format source: Neo4j Operations Manual, "Import" (neo4j-admin database
 * import), section "CSV header format".  Each header cell is `name:type`,
 * `name` (an untyped string property) or `:type`:
 *   name:ID / :ID / name:ID(Space)   node id (string); with a name the id is
 *                                     also stored as a string property `name`;
 *                                     `(Space)` names an id space
 *   :LABEL                            labels, several separated by ';'
 *   :TYPE                             relationship type
 *   :START_ID / :END_ID [(Space)]     relationship endpoints
 *   :IGNORE                           column skipped
 *   name:int|long|short|byte          integer property
 *   name:float|double                 float property
 *   name:boolean                      boolean property
 *   name:string|char or untyped       string property
 *   any of the above value types + [] an array, elements separated by ';'
 * Type names are case-insensitive.  Other neo4j types (date, point, ...) are
 * refused with an error naming the column: loading them as strings would
 * silently change their meaning.  The name/type split is at the last ':' not
 * inside the (Space) parentheses, so a property name may itself contain ':'.
 *
 * Thread: any.  Memory: import_header owns its columns and names.
 */
#ifndef QUIVER_CLI_HEADER_H
#define QUIVER_CLI_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "csv.h"

typedef enum import_file_kind { IMPORT_NODES, IMPORT_EDGES } import_file_kind;

typedef enum import_col_kind {
    COL_PROPERTY,
    COL_ID,
    COL_LABEL,
    COL_TYPE,
    COL_START_ID,
    COL_END_ID,
    COL_IGNORE,
} import_col_kind;

typedef enum import_value_type { VT_STRING, VT_INT, VT_FLOAT, VT_BOOL } import_value_type;

typedef struct import_column {
    import_col_kind kind;
    char *name;               /* property name (NUL-terminated), NULL when none */
    size_t name_len;
    char *key_literal;        /* the name as a Cypher map key followed by ": " (cypher_append_name), or NULL */
    size_t key_literal_len;
    import_value_type type;   /* COL_PROPERTY and named COL_ID (always VT_STRING) */
    bool array;               /* name:type[] */
    char *id_space;           /* COL_ID/START_ID/END_ID: "" when none; NUL-terminated */
    size_t id_space_len;
} import_column;

typedef struct import_header {
    import_file_kind kind;
    size_t column_count;
    import_column *columns;
    int id_col;        /* -1 when absent (nodes only) */
    int label_col;     /* -1 when absent */
    int type_col;      /* edges: required */
    int start_col;     /* edges: required */
    int end_col;       /* edges: required */
    size_t property_count; /* columns stored as properties (incl. a named ID) */
} import_header;

/* Parse the header record fields[0..count) of a file of the given kind.
 * Returns 0, or -1 with a message in err (NUL-terminated, err_size_bytes),
 * e.g. "column 3 'age:itn': unknown type 'itn'", "no :START_ID column",
 * "two :ID columns", "duplicate property 'name'", ":TYPE in a node file".
 * On error *out is left empty (nothing to free). */
int import_header_parse(import_file_kind kind, const csv_field *fields, size_t count,
                        import_header *out, char *err, size_t err_size_bytes);

void import_header_free(import_header *h);

#endif
