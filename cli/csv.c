/*
 * csv.c -- RFC 4180 record splitting (see csv.h for the choices).
 *
 * A single left-to-right pass.  Unquoted fields are found with memchr for the
 * next comma (the common case in the data, and fast); quoted fields are
 * copied down over themselves to drop the doubled quotes.
 */
#include "csv.h"

#include <string.h>

#include "../common/qassert.h"

int csv_split(char *line, size_t len, csv_field *fields, size_t fields_max, size_t *count,
              const char **err) {
    QUIVER_ASSERT(line != NULL || len == 0);
    QUIVER_ASSERT(fields != NULL && count != NULL && err != NULL);
    QUIVER_ASSERT(fields_max >= 1 && fields_max <= CSV_FIELDS_COUNT_MAX);
    if (len > 0 && line[len - 1] == '\r') len--;
    size_t n = 0;
    size_t i = 0;
    for (;;) {
        if (n == fields_max) {
            *err = "too many fields";
            return -1;
        }
        csv_field *f = &fields[n++];
        if (i < len && line[i] == '"') {
            /* Quoted field: unescape "" -> " in place, writing at w. */
            size_t r = i + 1, w = i + 1;
            for (;;) {
                if (r >= len) {
                    *err = "unterminated quoted field";
                    return -1;
                }
                char c = line[r];
                if (c == '"') {
                    if (r + 1 < len && line[r + 1] == '"') {
                        line[w++] = '"';
                        r += 2;
                        continue;
                    }
                    r++; /* closing quote */
                    break;
                }
                line[w++] = c;
                r++;
            }
            f->text = line + i + 1;
            f->len = w - (i + 1);
            f->quoted = true;
            if (r == len) break;
            if (line[r] != ',') {
                *err = "text after closing quote";
                return -1;
            }
            i = r + 1;
        } else {
            const char *start = line + i;
            const char *comma = i < len ? memchr(start, ',', len - i) : NULL;
            f->text = start;
            f->quoted = false;
            if (comma == NULL) {
                f->len = len - i;
                break;
            }
            f->len = (size_t)(comma - start);
            i = (size_t)(comma - line) + 1;
        }
    }
    *count = n;
    QUIVER_ASSERT(*count >= 1 && *count <= fields_max);
    return 0;
}
