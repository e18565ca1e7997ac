/**
 * @file
 * durq/admin.h — operator calls: what the `durq` command (docs/CLI.md) needs beyond durq.h.
 *
 * Owns: WAL checkpoint, integrity check, vacuum, per-queue depths with the oldest wait, a
 * look at work items and dead letters without leasing them, dead-letter purge, database
 * activity counters (commits of every process), the counters every handle of every process
 * published (options.stats_publish_ms), the schema version, and the raw export / import of
 * every table's rows. Each call works on a handle opened with durq_open() on any
 * provider; a provider that lacks the hook (struct durq_provider_admin in durq/provider.h)
 * makes the call return DURQ_EINVAL "not supported by provider X".
 *
 * Thread safety: like the reads of durq.h, every call may be made from any thread; each
 * runs on a read connection of the pool, in its own transaction, while other threads and
 * processes use the database. The writes here (durq_dead_purge(), durq_db_import()) take
 * the write lock like any writer and fail with DURQ_EINVAL from a durq callback on the
 * writing thread. Ownership: outputs are the caller's, freed with the function each call
 * names.
 */
#ifndef DURQ_ADMIN_H
#define DURQ_ADMIN_H

#include "../durq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- checkpoint, integrity, vacuum -------------------------------------------------- */

/** What durq_db_checkpoint() did (the struct may grow: set version). */
typedef struct durq_checkpoint_result {
	unsigned int version;      /**< DURQ_CHECKPOINT_RESULT_VERSION, set by the caller */
	int64_t log_frames;        /**< SQLite: WAL frames before (-1: not a WAL database) */
	int64_t checkpointed;      /**< SQLite: frames copied into the database (-1: n/a) */
	uint64_t wal_bytes_before; /**< WAL file size before (0 if none) */
	uint64_t wal_bytes_after;  /**< WAL file size after (0 if none) */
} durq_checkpoint_result;
/** Version of durq_checkpoint_result this header describes. */
#define DURQ_CHECKPOINT_RESULT_VERSION 1

/** Copy the write-ahead log into the database and truncate it. SQLite: wal_checkpoint
 * (TRUNCATE), waiting up to busy_timeout for readers; PostgreSQL: CHECKPOINT (needs
 * superuser or pg_checkpoint).
 * @param db an open handle
 * @param out NULL, or a result whose version the caller set
 * @return DURQ_OK; DURQ_EBUSY (readers kept it from finishing), DURQ_EINVAL (bad version,
 *         no provider hook), DURQ_ECLOSED, DURQ_EIO
 */
DURQ_EXTERN int durq_db_checkpoint(durq *db, durq_checkpoint_result *out);

/** Check the database: SQLite's integrity_check, then durq's own invariants on every
 * provider (each execution and history row has its instance and execution, each instance
 * its current execution, no work item holds half a lease).
 * @param db an open handle
 * @param report NULL, or set to the report: one problem per line, "ok" when none (free
 *        with durq_mem_free(); also set when the check fails)
 * @return DURQ_OK when all hold; DURQ_ECORRUPT otherwise; DURQ_EINVAL, DURQ_ECLOSED,
 *         DURQ_EBUSY, DURQ_EIO, DURQ_ENOMEM
 */
DURQ_EXTERN int durq_db_integrity(durq *db, char **report);

/** Reclaim free space. SQLite: VACUUM (rewrites the file; holds the write lock while it
 * runs); PostgreSQL: VACUUM (ANALYZE) of each durq table.
 * @param db an open handle
 * @return DURQ_OK; DURQ_EBUSY, DURQ_EINVAL, DURQ_ECLOSED, DURQ_EIO, DURQ_EFULL
 */
DURQ_EXTERN int durq_db_vacuum(durq *db);

/* ---- queues ------------------------------------------------------------------------- */

/** Which queue a durq_queue_info describes. */
enum durq_queue_kind {
	DURQ_QUEUE_ORCH = 1, /**< the orchestration queue */
	DURQ_QUEUE_WORK = 2  /**< a worker queue */
};

/** Depths of one queue (durq_queue_list()). */
typedef struct durq_queue_info {
	int kind;          /**< enum durq_queue_kind */
	char *name;        /**< work queue name ("" = the default); NULL for orchestrations */
	int64_t ready;     /**< visible and not leased (or whose lease expired) */
	int64_t delayed;   /**< visible later */
	int64_t leased;    /**< under a live lease */
	int64_t oldest_ms; /**< since when the longest-waiting ready entry has been ready (its
			    *   visible time, the handle's clock), 0 if none is ready */
} durq_queue_info;

/** The orchestration queue (always, first), then every work queue holding an item, in
 * byte order of the name.
 * @param db an open handle
 * @param out set to a new array (free with durq_queue_infos_free())
 * @param n set to its length
 * @return DURQ_OK; DURQ_EINVAL, DURQ_ECLOSED, DURQ_EBUSY, DURQ_EIO, DURQ_ENOMEM
 */
DURQ_EXTERN int durq_queue_list(durq *db, durq_queue_info **out, size_t *n);
/** Free what durq_queue_list() returned.
 * @param list the array (may be NULL)
 * @param n its length
 */
DURQ_EXTERN void durq_queue_infos_free(durq_queue_info *list, size_t n);

/** One work item as stored, read without leasing it (durq_work_peek()). */
typedef struct durq_work_info {
	int64_t id;               /**< item id */
	char *queue;              /**< queue name ("" = the default) */
	char *instance_id;        /**< owning orchestration, NULL for plain work */
	uint64_t execution_id;    /**< execution of the owner (0 for plain work) */
	uint64_t activity_id;     /**< activity id (0 for plain work) */
	int priority;             /**< higher first */
	int attempt;              /**< deliveries so far */
	void *payload;            /**< the payload bytes */
	size_t payload_len;       /**< payload length */
	int64_t visible_at_ms;    /**< when it is (or was) visible */
	int64_t locked_until_ms;  /**< lease end; 0 = not leased (an expired lease shows its
				   *   old end) */
	int64_t created_ms;       /**< enqueue time */
} durq_work_info;

/** Work items in id order, without leasing anything.
 * @param db an open handle
 * @param out set to a new array (free with durq_work_infos_free())
 * @param n set to its length
 * @param queue a queue name ("" = the default), or NULL for every queue
 * @param after_id only ids greater than this (0 = from the first)
 * @param max at most this many; 0 = 100, more than 10000 = 10000
 * @return DURQ_OK; DURQ_EINVAL (queue name too long), DURQ_ECLOSED, DURQ_EBUSY, DURQ_EIO,
 *         DURQ_ENOMEM
 */
DURQ_EXTERN int durq_work_peek(durq *db, durq_work_info **out, size_t *n, const char *queue,
			       int64_t after_id, size_t max);
/** Free what durq_work_peek() returned.
 * @param list the array (may be NULL)
 * @param n its length
 */
DURQ_EXTERN void durq_work_infos_free(durq_work_info *list, size_t n);

/* ---- dead letters ------------------------------------------------------------------- */

/** Dead letters in id order, a page at a time.
 * @param db an open handle
 * @param out set to a new array (free with durq_dead_letters_free())
 * @param n set to its length
 * @param after_id only ids greater than this (0 = from the first)
 * @param max at most this many; 0 = 100, more than 10000 = 10000
 * @return DURQ_OK; DURQ_EINVAL, DURQ_ECLOSED, DURQ_EBUSY, DURQ_EIO, DURQ_ENOMEM
 */
DURQ_EXTERN int durq_dead_page(durq *db, durq_dead_letter **out, size_t *n, int64_t after_id,
			       size_t max);

/** Which dead letters durq_dead_purge() deletes: all the set fields must match (the
 * struct may grow: set version). */
typedef struct durq_dead_filter {
	unsigned int version;     /**< DURQ_DEAD_FILTER_VERSION */
	int64_t id;               /**< > 0: only this dead letter */
	int64_t dead_before_ms;   /**< > 0: only those dead before this time */
	const char *queue;        /**< non-NULL: only work items of this queue */
} durq_dead_filter;
/** Version of durq_dead_filter this header describes. */
#define DURQ_DEAD_FILTER_VERSION 1
/** A filter that matches every dead letter. */
#define DURQ_DEAD_FILTER_INIT {.version = DURQ_DEAD_FILTER_VERSION}

/** Delete the dead letters the filter matches, in one transaction.
 * @param db an open handle
 * @param purged NULL, or set to how many were deleted
 * @param filter NULL (all), or a filter whose version is set
 * @return DURQ_OK; DURQ_EINVAL (bad version, from a durq callback on the writing thread),
 *         DURQ_ECLOSED, DURQ_EBUSY, DURQ_EIO, DURQ_EFULL
 */
DURQ_EXTERN int durq_dead_purge(durq *db, size_t *purged, const durq_dead_filter *filter);

/* ---- activity ----------------------------------------------------------------------- */

/** A durq_db_activity counter the provider cannot tell. */
#define DURQ_ACTIVITY_UNKNOWN UINT64_MAX

/** Counters of the database as a whole, all processes together (not only this handle's):
 * a tool samples them twice and divides by the interval (the struct may grow). */
typedef struct durq_db_activity {
	unsigned int version;     /**< DURQ_DB_ACTIVITY_VERSION, set by the caller */
	uint64_t commits;         /**< write transactions committed: SQLite the WAL index's
				   *   change counter (32 bits, wraps; restarts when the last
				   *   connection closes), PostgreSQL xact_commit of the
				   *   database; DURQ_ACTIVITY_UNKNOWN if the provider can't tell */
	uint64_t rows_written;    /**< rows inserted + updated + deleted (PostgreSQL), or
				   *   DURQ_ACTIVITY_UNKNOWN */
	uint64_t db_bytes;        /**< database size (0 if unknown) */
	uint64_t wal_bytes;       /**< write-ahead log size (0 if none) */
} durq_db_activity;
/** Version of durq_db_activity this header describes. */
#define DURQ_DB_ACTIVITY_VERSION 1

/** Read the database-wide counters.
 * @param db an open handle
 * @param out the counters; the caller sets out->version
 * @return DURQ_OK; DURQ_EINVAL (NULL or bad version), DURQ_ECLOSED, DURQ_EBUSY, DURQ_EIO
 */
DURQ_EXTERN int durq_db_activity_get(durq *db, durq_db_activity *out);

/* ---- the counters of every process (options.stats_publish_ms) ------------------------ */

/** One handle's published counters (durq_handle_stats_list()): a snapshot of its
 * durq_stats taken when one of its write calls published it, cumulative since its
 * durq_open(). A tool samples twice and divides the differences by the difference of
 * updated_ms. */
typedef struct durq_handle_stats {
	char key[33];             /**< the handle's random id (hex): one per durq_open() */
	char host[256];           /**< host name of its process */
	int64_t pid;              /**< its process id */
	int64_t started_ms;       /**< wall clock of its durq_open() */
	int64_t updated_ms;       /**< wall clock of this snapshot */
	int64_t interval_ms;      /**< its options.stats_publish_ms */
	int fresh;                /**< 1: updated within 3 intervals (at least 3 s) of now, by
				   *   this host's wall clock; 0: its process stopped writing,
				   *   or died */
	uint64_t ops;             /**< write ops (the sum of durq_stats.ops) */
	uint64_t op_failures;     /**< durq_stats.op_failures */
	uint64_t transactions;    /**< durq_stats.transactions */
	uint64_t txn_ops;         /**< durq_stats.txn_ops */
	uint64_t busy_retries;    /**< durq_stats.busy_retries */
	uint64_t pool_checkouts;  /**< durq_stats.pool_checkouts */
	uint64_t pool_waits;      /**< durq_stats.pool_waits */
	uint64_t pool_wait_ns;    /**< durq_stats.pool_wait_ns */
	durq_latency commit_latency; /**< durq_stats.commit_latency */
	durq_latency ack_latency; /**< work and orchestration acks together */
} durq_handle_stats;

/** Every handle's published counters, also those of handles that are not fresh, ordered
 * by host, pid, started_ms. Reading takes no lock and writes nothing. A handle's row is
 * written by its write calls (at most once per its options.stats_publish_ms) and deleted
 * by its durq_close(); rows not updated for 3 of their intervals (at least 3 s) are
 * deleted by the next publication of any handle.
 * @param db an open handle
 * @param out set to a new array (free with durq_handle_stats_free())
 * @param n set to its length
 * @return DURQ_OK; DURQ_EINVAL (a provider that keeps no such table), DURQ_ECLOSED,
 *         DURQ_EBUSY, DURQ_EIO, DURQ_ENOMEM
 */
DURQ_EXTERN int durq_handle_stats_list(durq *db, durq_handle_stats **out, size_t *n);
/** Free what durq_handle_stats_list() returned.
 * @param list the array (may be NULL)
 */
DURQ_EXTERN void durq_handle_stats_free(durq_handle_stats *list);
/** The duration below which a share q (0..1) of a histogram's samples lie: the upper
 * bound of the bucket that holds the q-th sample (DURQ_LATENCY_BOUNDS_US; the last bucket
 * reports the highest bound), in nanoseconds.
 * @param l the histogram (e.g. the difference of two snapshots)
 * @param q the quantile, e.g. 0.99
 * @return the bound in ns; 0 when l holds no sample
 */
DURQ_EXTERN uint64_t durq_latency_quantile_ns(const durq_latency *l, double q);

/** The provider's schema version of the database (each provider counts its own).
 * @param db an open handle
 * @param out set to the version
 * @return DURQ_OK; DURQ_EINVAL, DURQ_ECLOSED, DURQ_EBUSY, DURQ_EIO
 */
DURQ_EXTERN int durq_db_schema_version(durq *db, int *out);

/* ---- raw export / import ------------------------------------------------------------ */

/** The type of a durq_cell. */
enum durq_cell_type {
	DURQ_CELL_NULL = 0, /**< SQL NULL */
	DURQ_CELL_INT = 1,  /**< a 64-bit integer (i) */
	DURQ_CELL_TEXT = 2, /**< text (p, len; not NUL-terminated) */
	DURQ_CELL_BLOB = 3  /**< bytes (p, len) */
};

/** One column value of a durq_row. */
typedef struct durq_cell {
	int type;                 /**< enum durq_cell_type */
	int64_t i;                /**< the value of DURQ_CELL_INT */
	const void *p;            /**< the bytes of DURQ_CELL_TEXT and DURQ_CELL_BLOB */
	size_t len;               /**< their length */
} durq_cell;

/** One row of a table, named by its logical name ("instances", "work_queue", ...: the same
 * on every provider), with its column names. What an export hands its callback and an
 * import takes; valid during the callback only. */
typedef struct durq_row {
	const char *table;            /**< logical table name */
	const char *const *columns;   /**< n column names */
	const durq_cell *cells;       /**< n values; NULL when a table starts (export) */
	size_t n;                     /**< number of columns */
} durq_row;

/** Called by durq_db_export() once per table before its rows (row->cells NULL), then once
 * per row.
 * @param ctx the caller's context
 * @param row the table or row (valid during the call)
 * @return DURQ_OK to go on; any other value stops the export with that code
 */
typedef int (*durq_export_fn)(void *ctx, const durq_row *row);

/** What durq_db_export() reports before its first callback (the struct may grow). */
typedef struct durq_export_info {
	unsigned int version;     /**< DURQ_EXPORT_INFO_VERSION, set by the caller */
	const char *provider;     /**< provider name (valid while the handle is) */
	int schema_version;       /**< of this provider's schema */
} durq_export_info;
/** Version of durq_export_info this header describes. */
#define DURQ_EXPORT_INFO_VERSION 1

/** Every row of every durq table, from one consistent snapshot, table by table in name
 * order and rows in primary key order. Columns are whatever each table has at the time (a
 * column added later is exported too). Leases are dropped: instance_locks and sessions (who
 * holds which activity session) are not exported and a queue row's lock_token /
 * locked_until are NULL; attempts are kept.
 * @param db an open handle
 * @param info NULL, or filled (version set by the caller) before the first callback
 * @param fn called per table and per row
 * @param ctx passed to fn
 * @return DURQ_OK; fn's code; DURQ_EINVAL, DURQ_ECLOSED, DURQ_EBUSY, DURQ_EIO, DURQ_ENOMEM
 */
DURQ_EXTERN int durq_db_export(durq *db, durq_export_info *info, durq_export_fn fn, void *ctx);

/** The source of durq_db_import(): fills *row with the next row.
 * @param ctx the caller's context
 * @param row set to the next row (valid until the next call)
 * @return DURQ_OK (a row), DURQ_EMPTY (the end), or an error (message set with
 *         durq_error_set()) that rolls the import back
 */
typedef int (*durq_import_fn)(void *ctx, durq_row *row);

/** Load rows (durq_db_export()'s) into a database whose durq tables are all empty, in ONE
 * transaction: a bad row (unknown table or column, missing column, wrong type, duplicate
 * key) or a source error rolls everything back. Every row must name exactly its table's
 * columns. PostgreSQL identity sequences continue after the imported ids.
 * @param db an open handle
 * @param rows NULL, or set to the rows written (0 on failure)
 * @param next the row source
 * @param ctx passed to next
 * @return DURQ_OK; DURQ_EINVAL (a table holds rows: nothing written; a bad row), DURQ_EDUP,
 *         the source's code, DURQ_ECLOSED, DURQ_EBUSY, DURQ_EIO, DURQ_EFULL
 */
DURQ_EXTERN int durq_db_import(durq *db, size_t *rows, durq_import_fn next, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* DURQ_ADMIN_H */
