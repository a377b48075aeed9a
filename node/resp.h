/*
 * resp.h -- incremental parser for client requests in RESP2 (the Redis
 * serialization protocol, https://redis.io/docs/latest/develop/reference/protocol-spec/).
 *
 * A request is either an array of bulk strings ("*2\r\n$4\r\nPING\r\n...")
 * or an inline command ("PING hello\r\n", split like Redis' sdssplitargs:
 * "double quotes" with \n \r \t \b \a \\ \" \xHH escapes, 'single quotes'
 * with \' only).  Any other shape is a protocol error; so are nested arrays,
 * which Redis also refuses ("expected '$', got '*'").
 *
 * The parser is a byte-driven state machine: the caller feeds whatever a
 * read returned, in pieces of any size, and gets whole requests back.  It
 * keeps no input buffer of its own beyond the request being assembled, so a
 * request cut at any byte boundary parses the same as one delivered whole.
 *
 * Limits (common/limits.h): arguments per request QUIVER_RESP_ARGS_COUNT_MAX;
 * an inline line or a header line QUIVER_RESP_INLINE_SIZE_MAX_BYTES; the sum
 * of argument sizes request_size_max_bytes (--max-request-bytes); the memory
 * the parser holds for a partly received request query_buffer_limit_bytes
 * (--client-query-buffer-limit), which counts the bookkeeping of every
 * argument too (RESP_ARG_OVERHEAD_BYTES each: the allocator's chunk header
 * and the argument vector's slot), so a million one-byte arguments cost what
 * they really cost.  A bulk length announced over either limit is refused at
 * its header, before any byte of it is buffered.  Memory for an argument
 * grows with the bytes actually received, never with the length a client
 * merely announces, so "$60000000\r\n" followed by nothing costs at most
 * RESP_BULK_PREALLOC_MAX_BYTES.
 *
 * Errors: after RESP_PARSE_ERROR the framing is lost (we cannot know where
 * the next request starts), so the server replies with the message and
 * closes the connection, as Redis does.  The messages are Redis' own
 * ("Protocol error: invalid bulk length", ...) so clients recognise them.
 *
 * Thread: a parser belongs to one connection on the loop thread.
 */
#ifndef QUIVER_NODE_RESP_H
#define QUIVER_NODE_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum resp_parse_status {
    RESP_PARSE_INCOMPLETE = 0, /* every byte consumed; no whole request yet */
    RESP_PARSE_OK = 1,         /* *out holds one request */
    RESP_PARSE_ERROR = -1,     /* framing lost; parser->error says why */
} resp_parse_status;

/* One request: argc arguments, each NUL-terminated for convenience (an
 * argument may itself contain NUL bytes; argv_len is authoritative).
 * Owned by whoever holds it; free with resp_request_free. */
typedef struct resp_request {
    uint32_t argc;
    char **argv;
    size_t *argv_len;
    uint64_t size_bytes; /* sum of argv_len */
} resp_request;

typedef enum resp_state {
    RESP_ST_START = 0,     /* expecting the first byte of a request */
    RESP_ST_INLINE,        /* reading an inline command line */
    RESP_ST_ARRAY_LEN,     /* reading "*<n>" up to CRLF */
    RESP_ST_BULK_PREFIX,   /* expecting '$' */
    RESP_ST_BULK_LEN,      /* reading "$<n>" up to CRLF */
    RESP_ST_BULK_DATA,     /* reading n bytes */
    RESP_ST_BULK_CR,       /* expecting '\r' after the data */
    RESP_ST_BULK_LF,       /* expecting '\n' */
    RESP_ST_FAILED,        /* a protocol error happened; nothing more is parsed */
} resp_state;

/* Bytes counted per argument besides its data (resp_parser_buffered_bytes):
 * glibc's chunk header and rounding (16 to 32 bytes) plus the argv /
 * argv_len slots (16 bytes), rounded up. */
#define RESP_ARG_OVERHEAD_BYTES 48
#define RESP_ARGV_SLOT_BYTES (sizeof(char *) + sizeof(size_t))

typedef struct resp_parser {
    uint64_t request_size_max_bytes;
    uint64_t query_buffer_limit_bytes; /* bound on buffered_bytes */
    uint64_t buffered_bytes;  /* memory held for the request being assembled (see the top) */
    bool error_query_buffer;  /* the error was the query buffer limit */
    resp_state state;
    /* header or inline line being read */
    char *line;
    size_t line_len;
    size_t line_cap;
    /* request being assembled */
    resp_request req;
    uint32_t argc_expected;
    uint32_t argv_cap;
    uint64_t bulk_len;       /* announced length of the current argument */
    uint64_t bulk_received;  /* bytes of it received so far */
    size_t bulk_cap;         /* allocated bytes for argv[argc] */
    char error[160];         /* NUL-terminated, without the leading '-' */
} resp_parser;

/* Initialise a parser.  request_size_max_bytes bounds the sum of argument
 * sizes of one request (0 means QUIVER_REQUEST_SIZE_MAX_BYTES_DEFAULT); the
 * query buffer limit starts at request_size_max_bytes +
 * QUIVER_CLIENT_QUERY_BUFFER_OVERHEAD_BYTES (resp_parser_set_query_buffer_limit
 * changes it).  Never fails.  Thread: the connection's (loop) thread. */
void resp_parser_init(resp_parser *p, uint64_t request_size_max_bytes);

/* Bound the memory held for a partly received request (see the top), in
 * bytes; 0 keeps the default.  Past it resp_parse fails with "ERR max query
 * buffer length reached ..." and sets p->error_query_buffer.  Call before
 * the first resp_parse.  Thread: the connection's. */
void resp_parser_set_query_buffer_limit(resp_parser *p, uint64_t limit_bytes);

/* Bytes the parser holds now for the request being assembled (its
 * arguments' allocations with RESP_ARG_OVERHEAD_BYTES each, the argument
 * vector, the header/inline line buffer).  Thread: the connection's. */
static inline uint64_t resp_parser_buffered_bytes(const resp_parser *p) { return p->buffered_bytes; }

/* Free what the parser holds (a partial request included). */
void resp_parser_free(resp_parser *p);

/* Feed len bytes at data.  Consumes bytes until one request is complete
 * (RESP_PARSE_OK: *out filled, ownership passes to the caller), the input
 * ends (RESP_PARSE_INCOMPLETE: all len bytes consumed and remembered), or a
 * protocol error (RESP_PARSE_ERROR: p->error set; the parser refuses any
 * further input).  *consumed tells how many bytes were used; call again
 * with the rest.  A limit error (request size, query buffer, argument
 * count) is reported as soon as the header that would pass it is read.
 * Empty requests ("*0\r\n", "*-1\r\n", blank inline lines)
 * are skipped silently, as Redis does.  Allocation failure aborts
 * (QUIVER_FATAL): the limits above keep allocations bounded. */
resp_parse_status resp_parse(resp_parser *p, const char *data, size_t len, size_t *consumed,
                             resp_request *out);

/* Free a request returned by resp_parse.  NULL-safe; leaves it empty. */
void resp_request_free(resp_request *r);

/* Split an inline command line (no CRLF) into arguments the way Redis'
 * sdssplitargs does.  Returns true and fills *out (owned by the caller),
 * or false with error set when quotes are unbalanced. */
bool resp_split_inline(const char *line, size_t len, resp_request *out, char *error, size_t error_size);

#endif
