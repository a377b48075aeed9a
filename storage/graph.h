/*
 * graph.h -- the graph store: Quiver's storage layout on RocksDB.
 *
 * This is the only module that talks to RocksDB.  Layout (DESIGN.md section 4):
 * column families default, schema, nodes, edges, adj_out, adj_in,
 * label_index, prop_index; big-endian keys that start with the graph id
 * (u32); a compact tagged property encoding with LZ4 for large values; LZ4
 * block compression on every column family; atomic flush across families.
 *
 * Two ways in:
 *   - qs_view: a consistent read view.  Either a RocksDB snapshot (reader
 *     threads, qs_view_open_snapshot) or the apply thread's open write
 *     transaction seen through its own writes (qs_txn_view).  The query
 *     engine reads only through a view, so the same executor runs reads and
 *     writes.
 *   - qs_txn: the apply thread's write transaction: one RocksDB
 *     WriteBatchWithIndex per log entry, committed with WAL off together with
 *     the applied index (qs_txn_commit).  Savepoints let one failing command
 *     inside an entry roll back without touching the others.
 *
 * Ids: graph ids, node ids and edge ids are allocated by counters stored in
 * the default family and advanced only inside a transaction, so every
 * replica that applies the same entries allocates the same ids.  Schema ids
 * (labels, relationship types, property keys) are dense per graph, from 0,
 * never reused.
 *
 * Errors: functions return QS_OK (0) or a negative qs_status.  RocksDB I/O
 * errors are not returned: they abort the process (fail-stop, DESIGN.md 7).
 *
 * Thread rules: qs_db may be shared.  A qs_view belongs to the thread that
 * opened it.  qs_txn and every write function belong to the single apply
 * thread.  Iterators belong to their view's thread and must be freed before
 * the view is closed.
 */
#ifndef QUIVER_STORAGE_GRAPH_H
#define QUIVER_STORAGE_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/arena.h"
#include "../common/value.h"

typedef enum qs_status {
    QS_OK = 0,
    QS_NOT_FOUND = -1,      /* no such graph / node / edge / schema name */
    QS_EXISTS = -2,         /* index already exists, graph name taken */
    QS_LIMIT = -3,          /* a limit of limits.h would be exceeded */
    QS_INVALID = -4,        /* argument not acceptable (e.g. a map as a property value) */
    QS_NOMEM = -5,          /* arena full */
    QS_CORRUPT = -6,        /* a stored record does not decode */
} qs_status;

typedef enum qs_schema_kind {
    QS_SCHEMA_LABEL = 0,
    QS_SCHEMA_RELTYPE = 1,
    QS_SCHEMA_PROPKEY = 2,
} qs_schema_kind;

typedef enum qs_direction {
    QS_DIR_OUT = 0, /* (n)-[]->(m): adj_out */
    QS_DIR_IN = 1,  /* (n)<-[]-(m): adj_in  */
} qs_direction;

#define QS_TYPE_ANY UINT32_MAX /* wildcard relationship type for adjacency scans */

typedef struct qs_db qs_db;
typedef struct qs_view qs_view;
typedef struct qs_txn qs_txn;
typedef struct qs_iter qs_iter;

/* ------------------------------------------------------------------ */
/* Database                                                            */
/* ------------------------------------------------------------------ */

typedef struct qs_options {
    size_t block_cache_size_bytes;   /* 0: default (256 MiB) */
    bool create_if_missing;          /* false: refuse a directory without a Quiver database */
} qs_options;

/* Open (or create) the database in dir.  A directory that holds something
 * else (a foreign RocksDB, a newer format, a corrupt MANIFEST) is refused:
 * QS_CORRUPT with err naming the file and what to do.  err is filled with a
 * NUL-terminated message on any error.  The caller owns *out and closes it
 * with qs_close.  Thread: any, once. */
int qs_open(const char *dir, const qs_options *opts, qs_db **out, char *err, size_t err_size_bytes);

/* Flush memtables of every column family atomically (so the applied index
 * on disk matches the data on disk), then close.  Thread: any, after every
 * view and transaction is done. */
void qs_close(qs_db *db);

/* Make everything committed so far durable (atomic flush of all families).
 * Used before raft persists a snapshot marker.  Thread: apply thread.
 * Until it runs, committed state lives only in memtables (WAL off): after a
 * crash the database reopens at the last flushed state, with the applied
 * index of that state, and raft must replay from there (RocksDB also
 * flushes by itself, atomically, when memtables fill).  Takes from a few ms
 * to about a second (memtable size). */
void qs_flush(qs_db *db);

/* The applied index stored with the last committed transaction (0 for a new
 * database).  Thread: any (reads an atomic copy). */
uint64_t qs_applied_index(const qs_db *db);

/* The database's uuid (16 random bytes chosen at creation).  Thread: any. */
void qs_db_uuid(const qs_db *db, uint8_t out[16]);

/* Write a RocksDB checkpoint of the current state into dir (must not
 * exist).  Returns QS_OK or QS_INVALID with err.  Thread: any. */
int qs_checkpoint(qs_db *db, const char *dir, char *err, size_t err_size_bytes);

/* ------------------------------------------------------------------ */
/* Views                                                               */
/* ------------------------------------------------------------------ */

/* A read view on a RocksDB snapshot.  The caller owns it: qs_view_close.
 * Thread: any (reader threads). */
qs_view *qs_view_open_snapshot(qs_db *db);
void qs_view_close(qs_view *v);

/* The applied index the view reflects. */
uint64_t qs_view_applied_index(const qs_view *v);

/* Graphs by name.  QS_NOT_FOUND when absent. */
int qs_graph_lookup(qs_view *v, const char *name, size_t name_len, uint32_t *graph_id);

/* List graph names in name order into an arena array; *count set. */
int qs_graph_list(qs_view *v, q_arena *a, qv_str **names, uint32_t *count);

/* Schema: name -> id and id -> name, per graph.  The view caches the
 * schema, so these are hash/array lookups after the first call.
 * qs_schema_name's string is owned by the view (valid until close). */
int qs_schema_id(qs_view *v, uint32_t graph, qs_schema_kind kind, const char *name, size_t len, uint32_t *id);
int qs_schema_name(qs_view *v, uint32_t graph, qs_schema_kind kind, uint32_t id, qv_str *name);
uint32_t qs_schema_count(qs_view *v, uint32_t graph, qs_schema_kind kind);

/* Node and edge records.  Values are allocated in arena a; label ids and
 * property key ids ascending.  QS_NOT_FOUND when absent (deleted). */
typedef struct qs_node_rec {
    uint32_t label_count;
    uint32_t *label_ids;
    qv_props props; /* keys (names) left empty; key_ids/values filled */
} qs_node_rec;

typedef struct qs_edge_rec {
    uint32_t type_id;
    uint64_t src_id;
    uint64_t dst_id;
    qv_props props;
} qs_edge_rec;

int qs_node_get(qs_view *v, uint32_t graph, uint64_t node_id, q_arena *a, qs_node_rec *out);
int qs_edge_get(qs_view *v, uint32_t graph, uint64_t edge_id, q_arena *a, qs_edge_rec *out);
bool qs_node_exists(qs_view *v, uint32_t graph, uint64_t node_id);

/* One property of a node without decoding the others.  *out is QV_NULL
 * when the node lacks it; QS_NOT_FOUND when the node does not exist. */
int qs_node_prop(qs_view *v, uint32_t graph, uint64_t node_id, uint32_t key_id, q_arena *a, qv_value *out);

/* Does the node carry this label?  false when absent. */
bool qs_node_has_label(qs_view *v, uint32_t graph, uint64_t node_id, uint32_t label_id);

/* Counts kept by the store (exact). */
uint64_t qs_node_count(qs_view *v, uint32_t graph);
uint64_t qs_edge_count(qs_view *v, uint32_t graph);
uint64_t qs_label_count(qs_view *v, uint32_t graph, uint32_t label_id); /* nodes with the label */

/* ---- iterators ----
 * All iterators yield in key order (so results are deterministic).  Each
 * qs_iter_next fills *item and returns true, or returns false at the end. */
typedef struct qs_item {
    uint64_t node_id;   /* node scans: the node; adjacency: the neighbour */
    uint64_t edge_id;   /* adjacency and edge scans */
    uint32_t type_id;   /* adjacency and edge scans */
    uint64_t src_id;    /* edge scans */
    uint64_t dst_id;    /* edge scans */
} qs_item;

qs_iter *qs_scan_nodes(qs_view *v, uint32_t graph);                    /* every node, id order */
qs_iter *qs_scan_label(qs_view *v, uint32_t graph, uint32_t label_id); /* nodes with label */
qs_iter *qs_scan_edges(qs_view *v, uint32_t graph);                    /* every edge, id order */
/* Relationships of node in direction dir, of type type_id or QS_TYPE_ANY;
 * yields neighbour in node_id (target for OUT, source for IN). Order:
 * type, neighbour, edge id. */
qs_iter *qs_scan_adj(qs_view *v, uint32_t graph, uint64_t node_id, qs_direction dir, uint32_t type_id);

/* Property-index range scan: nodes with label and property key whose value
 * lies between lo and hi (either may be NULL for unbounded; inclusive flags
 * apply when given).  Values compare within one type family only (numbers
 * with numbers, strings with strings, booleans).  Yields node ids in value
 * order, then id order.  Returns NULL with QS_NOT_FOUND semantics when the
 * index does not exist (check qs_index_exists first). */
qs_iter *qs_scan_prop_index(qs_view *v, uint32_t graph, uint32_t label_id, uint32_t key_id,
                            const qv_value *lo, bool lo_inclusive, const qv_value *hi, bool hi_inclusive);

bool qs_iter_next(qs_iter *it, qs_item *item);
void qs_iter_free(qs_iter *it);

/* Indexes.  qs_index_list fills (label id, key id) pairs in order. */
bool qs_index_exists(qs_view *v, uint32_t graph, uint32_t label_id, uint32_t key_id);
int qs_index_list(qs_view *v, uint32_t graph, q_arena *a, uint32_t **label_ids, uint32_t **key_ids, uint32_t *count);

/* Checksum of the graph's whole state (schema, nodes, edges, adjacency,
 * indexes) as 16 hex digits plus NUL, using XXH3-64 over every key and
 * value in key order.  Two replicas at the same applied index must agree. */
int qs_graph_digest(qs_view *v, uint32_t graph, char out_hex[17]);

/* ------------------------------------------------------------------ */
/* Write transactions (apply thread only)                              */
/* ------------------------------------------------------------------ */

/* Begin the transaction for one log entry.  Only one may be open. */
qs_txn *qs_txn_begin(qs_db *db);

/* The transaction's read view: reads see the transaction's own writes.
 * Owned by the transaction; valid until commit/abort. */
qs_view *qs_txn_view(qs_txn *t);

/* Savepoints nest; rollback undoes writes and id allocations since the
 * matching savepoint, release forgets it.  Either call ends the innermost
 * savepoint (after a rollback, do not release it too).  Rollback also undoes
 * schema names, index definitions and graphs created or deleted since the
 * savepoint.  Cost: a rollback re-indexes the whole batch (RocksDB
 * WriteBatchWithIndex), so it is for failing commands, not a control-flow
 * tool. */
void qs_txn_savepoint(qs_txn *t);
void qs_txn_rollback_to_savepoint(qs_txn *t);
void qs_txn_release_savepoint(qs_txn *t);

/* Commit all writes plus applied_index in one WriteBatch (WAL off).
 * applied_index must be greater than the stored one (asserted).  The txn
 * is freed.  I/O errors abort. */
void qs_txn_commit(qs_txn *t, uint64_t applied_index);

/* Store only a new applied index (entries with no effects, e.g. barriers). */
void qs_set_applied_index(qs_db *db, uint64_t applied_index);

/* Drop the transaction's writes.  The txn is freed. */
void qs_txn_abort(qs_txn *t);

/* Graphs. */
int qs_graph_create(qs_txn *t, const char *name, size_t len, uint32_t *graph_id); /* QS_EXISTS if present (id still set) */
int qs_graph_delete(qs_txn *t, uint32_t graph);  /* removes every key of the graph */

/* Schema: id of name, created if missing (dense, from 0). */
int qs_schema_intern(qs_txn *t, uint32_t graph, qs_schema_kind kind, const char *name, size_t len, uint32_t *id);

/* Nodes.  label_ids need not be sorted or unique; props key ids must be
 * unique and values must be storable (null, bool, int, double, string, or a
 * list of those): QS_INVALID otherwise.  Maintains label_index and every
 * prop_index on the node's labels. */
int qs_node_create(qs_txn *t, uint32_t graph, const uint32_t *label_ids, uint32_t label_count,
                   const qv_props *props, uint64_t *node_id);
/* Set one property; QV_NULL value removes it.  *changed tells if anything changed. */
int qs_node_set_prop(qs_txn *t, uint32_t graph, uint64_t node_id, uint32_t key_id, qv_value value, bool *changed);
/* Add or remove a label; *changed false when it already was/wasn't there. */
int qs_node_add_label(qs_txn *t, uint32_t graph, uint64_t node_id, uint32_t label_id, bool *changed);
int qs_node_remove_label(qs_txn *t, uint32_t graph, uint64_t node_id, uint32_t label_id, bool *changed);
/* Delete a node.  QS_INVALID if it still has relationships (the executor
 * deletes them first for DETACH DELETE). */
int qs_node_delete(qs_txn *t, uint32_t graph, uint64_t node_id);

/* Relationships. */
int qs_edge_create(qs_txn *t, uint32_t graph, uint32_t type_id, uint64_t src_id, uint64_t dst_id,
                   const qv_props *props, uint64_t *edge_id);
int qs_edge_set_prop(qs_txn *t, uint32_t graph, uint64_t edge_id, uint32_t key_id, qv_value value, bool *changed);
int qs_edge_delete(qs_txn *t, uint32_t graph, uint64_t edge_id);

/* Indexes: creation builds entries for every existing node with the label. */
int qs_index_create(qs_txn *t, uint32_t graph, uint32_t label_id, uint32_t key_id); /* QS_EXISTS */
int qs_index_drop(qs_txn *t, uint32_t graph, uint32_t label_id, uint32_t key_id);   /* QS_NOT_FOUND */

/* Opaque per-database metadata in the default family (the state machine's
 * de-duplication table lives here).  key must not start with "q/" (ours).
 * Reads see the transaction.  Values copied into arena a. */
int qs_meta_put(qs_txn *t, const void *key, size_t key_len, const void *val, size_t val_len);
int qs_meta_delete(qs_txn *t, const void *key, size_t key_len);
int qs_meta_get(qs_view *v, const void *key, size_t key_len, q_arena *a, void **val, size_t *val_len);
/* Call fn for every meta key starting with prefix, in key order; fn returns
 * false to stop.  Key and value are valid only during the call. */
int qs_meta_scan(qs_view *v, const void *prefix, size_t prefix_len,
                 bool (*fn)(void *ctx, const void *key, size_t key_len, const void *val, size_t val_len), void *ctx);

#endif
