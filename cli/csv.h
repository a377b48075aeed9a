/*
 * csv.h -- RFC 4180 record splitting for `quiver import`.
 *
 * Format source: RFC 4180 ("Common Format and MIME Type for CSV Files"):
 * fields separated by commas; a field may be enclosed in double quotes, and
 * then may contain commas, and a double quote is written as two double
 * quotes.  Records end with LF or CRLF.
 *
 * Design: one physical line is one record.  RFC 4180 also allows line breaks
 * inside quoted fields, but neo4j-admin's default (--multiline-fields=false)
 * and the data we load (shared/data/debian-bookworm: "no multi-line fields")
 * do not; treating a line as a record means one stray quote costs one
 * reported line instead of silently swallowing the rest of the file.
 * A quote inside an unquoted field (`5" disk`) is kept literally, as
 * Python's csv module and neo4j-admin do; a quoted field that is not closed,
 * or has text between its closing quote and the next comma, is an error.
 *
 * Splitting is in place: quoted fields are unescaped inside the line buffer
 * (the result is never longer than the input), so no allocation per field.
 *
 * Thread: any; no global state.
 */
#ifndef QUIVER_CLI_CSV_H
#define QUIVER_CLI_CSV_H

#include <stdbool.h>
#include <stddef.h>

/* Fields in one record: neo4j-admin has no limit, we need one.  A record
 * with more fields is an error, never a truncation. */
#define CSV_FIELDS_COUNT_MAX 4096

typedef struct csv_field {
    const char *text;   /* points into the line; NOT NUL-terminated */
    size_t len;         /* bytes */
    bool quoted;        /* the field was enclosed in quotes (so "" is an empty string, not a missing value) */
} csv_field;

/* Split line[0..len) (without its LF; a trailing CR is removed here) into
 * fields[0..*count), unescaping quoted fields in place (line is modified).
 * fields_max is the capacity of fields (at most CSV_FIELDS_COUNT_MAX).
 * Returns 0, or -1 with *err set to a static English message:
 *   "unterminated quoted field", "text after closing quote",
 *   "too many fields".
 * An empty line gives one empty unquoted field. */
int csv_split(char *line, size_t len, csv_field *fields, size_t fields_max, size_t *count,
              const char **err);

#endif
