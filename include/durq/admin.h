/*
 * durq/admin.h — operator calls: what the `durq` command needs beyond durq.h.
 *
 * Owns: WAL checkpoint, integrity check, vacuum, per-queue depths with the oldest age, a
 * look at work items and dead letters without leasing them, dead-letter purge, database
 * activity counters (commits of every process), and the raw export / import of every
 * table's rows. Each call works on a handle opened with durq_open on any provider; a
 * provider that lacks the hook returns DURQ_EINVAL "not supported by provider X".
 *
 * Threading: like the reads of durq.h, every call may be made from any thread; each runs on
 * a read connection of the pool, in its own transaction, while other threads and processes
 * use the database. Writes here (purge, import) take the write lock like any writer.
 */
#ifndef DURQ_ADMIN_H
#define DURQ_ADMIN_H

#include "../durq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- checkpoint, integrity, vacuum -------------------------------------------------- */

typedef struct durq_checkpoint_result {
	unsigned int version;       /* DURQ_CHECKPOINT_RESULT_VERSION */
	int64_t log_frames;         /* SQLite: WAL frames before (-1 if not a WAL database) */
	int64_t checkpointed;       /* SQLite: frames copied into the database */
	uint64_t wal_bytes_before;  /* WAL file size before and after (0 if none) */
	uint64_t wal_bytes_after;
} durq_checkpoint_result;
#define DURQ_CHECKPOINT_RESULT_VERSION 1

/*
 * Copy the write-ahead log into the database and truncate it (SQLite: wal_checkpoint
 * (TRUNCATE), waiting up to busy_timeout for readers; PostgreSQL: CHECKPOINT, which needs
 * superuser or pg_checkpoint). DURQ_EBUSY if readers kept it from finishing. out may be
 * NULL; else set out->version first.
 */
DURQ_EXTERN int durq_db_checkpoint(durq *db, durq_checkpoint_result *out);

/*
 * Check the database: SQLite's integrity_check and foreign-key-free consistency checks of
 * durq's own tables (every execution, history row and lock has its instance; every
 * instance has its current execution). DURQ_OK when all hold, DURQ_ECORRUPT otherwise.
 * *report (may be NULL) gets one problem per line ("ok" when none); free with durq_mem_free.
 */
DURQ_EXTERN int durq_db_integrity(durq *db, char **report);

/* Reclaim free space (SQLite: VACUUM; PostgreSQL: VACUUM (ANALYZE) of durq's tables). */
DURQ_EXTERN int durq_db_vacuum(durq *db);

/* ---- queues ------------------------------------------------------------------------- */

enum durq_queue_kind { DURQ_QUEUE_ORCH = 1, DURQ_QUEUE_WORK = 2 };

typedef struct durq_queue_info {
	int kind;                /* enum durq_queue_kind; the orchestration queue comes first */
	char *name;              /* work queue name; NULL for the orchestration queue */
	int64_t ready, delayed, leased;
	int64_t oldest_ms;       /* since when the longest-waiting ready message or item has
				  * been ready (its visible time), 0 if none are ready */
} durq_queue_info;

/* The orchestration queue (always, first), then every work queue holding an item, in byte
 * order of the name. Ages are against the handle's clock. Free with
 * durq_queue_infos_free. */
DURQ_EXTERN int durq_queue_list(durq *db, durq_queue_info **out, size_t *n);
DURQ_EXTERN void durq_queue_infos_free(durq_queue_info *list, size_t n);

/* One work item as stored, read without leasing it. */
typedef struct durq_work_info {
	int64_t id;
	char *queue;
	char *instance_id;        /* NULL for plain work */
	uint64_t execution_id;
	uint64_t activity_id;
	int priority;
	int attempt;              /* deliveries so far */
	void *payload;
	size_t payload_len;
	int64_t visible_at_ms;
	int64_t locked_until_ms;  /* 0 = not leased (an expired lease shows its old end) */
	int64_t created_ms;
} durq_work_info;

/* Up to max items of queue (NULL = every queue) with id > after_id, in id order, without
 * leasing anything. max 0 = 100, at most 10000. Free with durq_work_infos_free. */
DURQ_EXTERN int durq_work_peek(durq *db, durq_work_info **out, size_t *n, const char *queue,
			       int64_t after_id, size_t max);
DURQ_EXTERN void durq_work_infos_free(durq_work_info *list, size_t n);

/* ---- dead letters ------------------------------------------------------------------- */

/* Up to max dead letters with id > after_id, in id order (max 0 = 100, at most 10000).
 * Free with durq_dead_letters_free (durq.h). */
DURQ_EXTERN int durq_dead_page(durq *db, durq_dead_letter **out, size_t *n, int64_t after_id,
			       size_t max);

typedef struct durq_dead_filter {
	unsigned int version;     /* DURQ_DEAD_FILTER_VERSION */
	int64_t id;               /* > 0: only this dead letter */
	int64_t dead_before_ms;   /* > 0: only those dead before this time */
	const char *queue;        /* non-NULL: only work items of this queue */
} durq_dead_filter;
#define DURQ_DEAD_FILTER_VERSION 1
#define DURQ_DEAD_FILTER_INIT {.version = DURQ_DEAD_FILTER_VERSION}

/* Delete the dead letters the filter matches (NULL = all), in one transaction. *purged (may
 * be NULL) = how many. */
DURQ_EXTERN int durq_dead_purge(durq *db, size_t *purged, const durq_dead_filter *filter);

/* ---- activity ----------------------------------------------------------------------- */

#define DURQ_ACTIVITY_UNKNOWN UINT64_MAX

/* Counters of the database as a whole, all processes together (not only this handle's):
 * a tool samples them twice and divides by the interval. */
typedef struct durq_db_activity {
	unsigned int version;     /* DURQ_DB_ACTIVITY_VERSION */
	uint64_t commits;         /* write transactions committed (SQLite: the WAL's change
				   * counter, 32 bits, wraps; PostgreSQL: xact_commit of the
				   * database); DURQ_ACTIVITY_UNKNOWN if the provider can't tell */
	uint64_t rows_written;    /* rows inserted + updated + deleted (PostgreSQL), or UNKNOWN */
	uint64_t db_bytes;
	uint64_t wal_bytes;
} durq_db_activity;
#define DURQ_DB_ACTIVITY_VERSION 1

DURQ_EXTERN int durq_db_activity_get(durq *db, durq_db_activity *out);

/* The provider's schema version of the database (each provider counts its own). */
DURQ_EXTERN int durq_db_schema_version(durq *db, int *out);

/* ---- raw export / import ------------------------------------------------------------ */

enum durq_cell_type { DURQ_CELL_NULL = 0, DURQ_CELL_INT = 1, DURQ_CELL_TEXT = 2, DURQ_CELL_BLOB = 3 };

/* One column value. TEXT and BLOB point at len bytes (TEXT is not NUL-terminated). */
typedef struct durq_cell {
	int type;                 /* enum durq_cell_type */
	int64_t i;
	const void *p;
	size_t len;
} durq_cell;

/*
 * What an export hands its callback, and what an import takes: one row of a table, named
 * by its logical name ("instances", "work_queue", ...: the same on every provider), with its
 * column names. Valid during the callback only.
 */
typedef struct durq_row {
	const char *table;
	const char *const *columns;
	const durq_cell *cells;
	size_t n;
} durq_row;

/* Called once per table before its rows (row->cells NULL, n columns), then once per row. A
 * non-zero return stops the export with that code. */
typedef int (*durq_export_fn)(void *ctx, const durq_row *row);

typedef struct durq_export_info {
	unsigned int version;     /* DURQ_EXPORT_INFO_VERSION */
	const char *provider;     /* provider name */
	int schema_version;       /* of this provider's schema */
} durq_export_info;
#define DURQ_EXPORT_INFO_VERSION 1

/*
 * Every row of every durq table, from one consistent snapshot, table by table in primary
 * key order. Columns are whatever the table has at the time (a column added later is
 * exported too). Leases are dropped: instance_locks is not exported and a queue row's
 * lock_token / locked_until are NULL; attempts are kept. info (may be NULL) gets the
 * provider and schema version before the first call of fn.
 */
DURQ_EXTERN int durq_db_export(durq *db, durq_export_info *info, durq_export_fn fn, void *ctx);

/* The import's source: fills *row with the next row and returns DURQ_OK, DURQ_EMPTY at the
 * end, or an error (< 0, message set) that aborts the import. */
typedef int (*durq_import_fn)(void *ctx, durq_row *row);

/*
 * Load rows (durq_db_export's) into a database whose durq tables are all empty, in ONE
 * transaction: any bad row (unknown table or column, missing column, wrong type, duplicate
 * key) or a source error rolls everything back (nothing written). Every row must name
 * exactly the table's columns. DURQ_EINVAL with a message if a table already holds rows.
 * *rows (may be NULL) = rows written.
 */
DURQ_EXTERN int durq_db_import(durq *db, size_t *rows, durq_import_fn next, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* DURQ_ADMIN_H */
