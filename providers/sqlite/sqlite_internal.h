/*
 * sqlite_internal.h — shared by the SQLite provider's files: the connection with its
 * cached prepared statements, the statement table, and small binding/copy helpers.
 */
#ifndef DURQ_SQLITE_INTERNAL_H
#define DURQ_SQLITE_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>

#include "durq/provider.h"

typedef struct sq_provider {
	durq_provider base;
	char *path;
	bool is_memory;
	const durq_options *opts; /* = &resolved */
	durq_options resolved;     /* the caller's options with defaults filled in */
	int config_logged;
	uint64_t busy_waits;       /* ck_pr: busy-handler waits on any connection */
	int lock_fd;               /* in-memory: flock(LOCK_SH) on the file while we live */
	const char *shm_dir;       /* in-memory: the default directory ("/dev/shm") */
	void *(*alloc)(size_t n);  /* allocator of column copies (durq_mem_alloc; tests inject
				    * failures) */
	char *vfs;                 /* the URL's vfs=, owned (resolved.sqlite_vfs points here) */
} sq_provider;

enum sq_stmt_id {
	SQ_BEGIN, SQ_COMMIT, SQ_ROLLBACK, SQ_SAVEPOINT, SQ_RELEASE, SQ_ROLLBACK_TO,
	SQ_ORCH_INSERT, SQ_WORK_INSERT,
	SQ_CLAIM_EXPIRED_INSTANCE, SQ_CLAIM_READY_INSTANCE, SQ_LOCK_UPSERT, SQ_TAG_MESSAGES,
	SQ_INSTANCE_HEAD, SQ_DEAD_FROM_ORCH, SQ_DELETE_TAGGED, SQ_LOCK_DELETE, SQ_INSTANCE_FAIL,
	SQ_EXECUTION_FAIL, SQ_LOCK_CHECK, SQ_INSTANCE_INSERT, SQ_EXECUTION_INSERT,
	SQ_EXECUTION_CLOSE, SQ_INSTANCE_SET_EXECUTION, SQ_HISTORY_INSERT, SQ_INSTANCE_UPDATE,
	SQ_EXECUTION_UPDATE, SQ_WORK_CANCEL, SQ_ORCH_UNTAG, SQ_LOCK_RENEW,
	SQ_WORK_CLAIM, SQ_DEAD_FROM_WORK, SQ_WORK_DELETE,
	SQ_WORK_ACK, SQ_WORK_ACK_PLAIN, SQ_WORK_ABANDON, SQ_WORK_RENEW, SQ_DEAD_GET, SQ_DEAD_DELETE,
	SQ_DEL_ORCH, SQ_DEL_WORK, SQ_DEL_LOCK, SQ_DEL_HISTORY, SQ_DEL_EXECUTIONS, SQ_DEL_INSTANCE,
	SQ_PRUNE_HISTORY, SQ_PRUNE_EXECUTIONS, SQ_ORCH_EXISTS,
	SQ_HISTORY_READ, SQ_INSTANCE_GET, SQ_INSTANCE_LIST, SQ_INSTANCE_LIST_STATUS,
	SQ_EXECUTION_LIST, SQ_DEAD_LIST,
	SQ_DEPTHS, SQ_NEXT_DUE, SQ_DATA_VERSION, SQ_SYNC_OFF, SQ_SYNC_NORMAL, SQ_SYNC_FULL,
	/* issue 10 (G5-G13): SQL text in sqlite_contract.c (sq_contract_sql) */
	SQ_CONTRACT_FIRST,
	SQ_POISON_OUTPUT = SQ_CONTRACT_FIRST, SQ_POISON_EXEC_OUTPUT, SQ_POISON_EVENT,
	SQ_POISON_NOTIFY, SQ_TREE, SQ_CHILD_CHECK, SQ_PURGE_PICK, SQ_PRUNE_EX_HISTORY, SQ_PRUNE_EX_EXECUTIONS, SQ_CHILDREN, SQ_LIST_FILTER,
	SQ_EXECUTION_GET, SQ_SYSTEM_COUNTS, SQ_CUSTOM_STATUS, SQ_EXECUTION_LIST_V2,
	SQ_KV_CLEAR_ALL, SQ_KV_CLEAR, SQ_KV_SET, SQ_KV_COUNT, SQ_KV_LIST, SQ_KV_GET,
	SQ_WORK_CLAIM_SET, SQ_WORK_CLAIM_ANY, SQ_CLAIM_EXPIRED_FILTERED, SQ_CLAIM_READY_FILTERED,
	SQ_PIN_EXECUTION, SQ_PIN_SYNC,
	SQ_WORK_CLAIM_SESSION, SQ_SESSION_HOLD, SQ_SESSION_TOUCH, SQ_SESSION_RENEW,
	SQ_SESSION_CLEANUP,
	SQ__COUNT
};

/* SQL of SQ_CONTRACT_FIRST .. SQ__COUNT - 1 (sqlite_contract.c). */
extern const char *const sq_contract_sql[SQ__COUNT - SQ_CONTRACT_FIRST];
/* The schema migrations after version 1, in order (sqlite_contract.c): migrations[i]
 * takes a database from version i + 1 to i + 2 and ends by setting user_version. */
extern const char *const sq_migrations[];
extern const int sq_n_migrations;

struct sq_ckpt;

typedef struct sq_conn {
	durq_conn base;      /* first: the core sees a durq_conn */
	sqlite3 *db;
	sq_provider *p;
	int role;
	unsigned long commits;
	unsigned long next_check; /* commit count of the next checkpoint-policy check */
	int sync_now;        /* the synchronous level currently set on this connection */
	uint64_t busy_since; /* start of the current busy episode (mono ns) */
	int busy_cap_ms;     /* > 0: a smaller budget than busy_timeout (the WAL restart) */
	unsigned int rng;    /* jitter */
	int sticky_rc;       /* first failed bind or copy since sq_stmt (see sq_step) */
	unsigned int txn_flags; /* DURQ_TXN_* of the open write transaction */
	sqlite3_file *wal;   /* ck_pr: the WAL file, for sq_flush (set by deferred commits) */
	struct sq_ckpt *ckpt; /* a file database's write connection: its checkpointer */
	sqlite3_stmt *stmts[SQ__COUNT];
} sq_conn;

/* A connection's role beside the core's DURQ_CONN_*: the checkpointer's (sqlite_ckpt.c). */
#define SQ_ROLE_CKPT 16

/* Checkpoint policy (sqlite_provider.c for connections that commit with SQLite's
 * wal_autocheckpoint, sqlite_ckpt.c for a file database's write connection): a PASSIVE
 * checkpoint every CKPT_FRAMES frames; past RESTART_FRAMES a RESTART that waits up to
 * RESTART_BUDGET_MS for readers, past FORCE_FRAMES up to FORCE_BUDGET_MS. */
#define SQ_CKPT_FRAMES 1000
#define SQ_RESTART_FRAMES 8000
#define SQ_FORCE_FRAMES 12000
#define SQ_RESTART_BUDGET_MS 1000
#define SQ_FORCE_BUDGET_MS 3000

/* Open a connection of role DURQ_CONN_* or SQ_ROLE_CKPT (no schema work, logs nothing). */
int sq_conn_open_role(sq_provider *p, sq_conn **out, int role);
void sq_conn_free(sq_conn *c);

/* sqlite_ckpt.c: the checkpointer of a file database's write connection. attach disables
 * the write connection's automatic checkpoints and wakes the checkpointer thread (started
 * at its first wake-up) through sqlite3_wal_hook; detach stops and joins it and closes its
 * connection (before the write connection closes). */
int sq_ckpt_attach(sq_conn *w);
void sq_ckpt_detach(sq_conn *w);
/* Write connection, before BEGIN: wait while the checkpointer holds or awaits the write
 * lock for a RESTART (a handshake instead of a busy-handler backoff on both sides). */
void sq_ckpt_yield(struct sq_ckpt *k);
/* Around a checkpoint on the write connection (flush_recover): no checkpointer run
 * overlaps it (SQLite refuses a second checkpoint at once with SQLITE_BUSY, no busy wait). */
void sq_ckpt_pause(struct sq_ckpt *k);
void sq_ckpt_resume(struct sq_ckpt *k);

/* What the checkpointer did (tests, diagnostics). */
typedef struct sq_ckpt_counts {
	unsigned long wakeups;   /* wake-ups by the WAL hook */
	unsigned long runs;      /* PASSIVE checkpoints run */
	unsigned long restarts;  /* RESTART checkpoints that reset the WAL */
	unsigned long failures;  /* checkpoints that returned an error (busy excluded) */
	unsigned long db_syncs;  /* the checkpointer's own database fsyncs (one per run) */
	int max_frames;          /* the largest WAL (frames) a run saw */
	int started;             /* the thread was started */
	int running;             /* a run is in progress */
	int pausers;             /* threads in sq_ckpt_pause (waiting, or their checkpoint) */
	int stopping;            /* detach has begun */
} sq_ckpt_counts;
/* The counts of write connection w's checkpointer; false if it has none (in-memory). */
bool sq_ckpt_counts_get(durq_conn *w, sq_ckpt_counts *out);
/* Tests: wait until w's checkpointer has run `runs` checkpoints and is idle, at most
 * timeout_ms; returns its run count. */
unsigned long sq_ckpt_wait_runs(durq_conn *w, unsigned long runs, int timeout_ms);

/* Grow *arr (of elem bytes, durq_mem_*) to hold n+1 entries; new entries zeroed. */
int sq_grow(void **arr, size_t *cap, size_t n, size_t elem);

/* The SQLite connection behind a durq_conn this provider opened. */
static inline sq_conn *sq_conn_of(durq_conn *c)
{
	return (sq_conn *)c;
}

/* Prepared (once per connection) and reset statement; NULL + error set on failure. */
sqlite3_stmt *sq_stmt(sq_conn *c, enum sq_stmt_id id);
/* Map an SQLite result code to a durq code and set the message. */
int sq_error(sq_conn *c, int sqlite_rc, const char *what);
/* Step a statement that returns no rows; reset it. */
int sq_exec(sq_conn *c, sqlite3_stmt *s, const char *what);

/* Step s, unless a bind or a column copy since sq_stmt failed: then that error code. */
int sq_step(sq_conn *c, sqlite3_stmt *s);
/* The code of a bind or copy that failed since sq_stmt (SQLITE_OK if none); clears it. */
int sq_check(sq_conn *c);
int sq_bind_text(sq_conn *c, sqlite3_stmt *s, int i, const char *v, int n, void (*d)(void *));
int sq_bind_int(sq_conn *c, sqlite3_stmt *s, int i, int v);
int sq_bind_int64(sq_conn *c, sqlite3_stmt *s, int i, sqlite3_int64 v);
int sq_bind_null(sq_conn *c, sqlite3_stmt *s, int i);
int sq_bind_token(sq_conn *c, sqlite3_stmt *s, int i, const durq_token *t);
int sq_bind_blob(sq_conn *c, sqlite3_stmt *s, int i, const void *p, size_t n);
/* Copies owned by the caller (free()); NULL for SQL NULL. Out of memory: NULL, *len = 0,
 * and the next sq_step / sq_check returns SQLITE_NOMEM. */
char *sq_col_text(sq_conn *c, sqlite3_stmt *s, int col);
void *sq_col_blob(sq_conn *c, sqlite3_stmt *s, int col, size_t *len);

int sq_op_apply(durq_conn *conn, durq_op *op, const durq_op_ctx *ctx);
/* sqlite_admin.c: the handle-stats table (made by every write connection's open if
 * missing, outside the versioned schema) and the op that writes it */
extern const char sq_handle_stats_schema[];
int sq_handle_stats_apply(sq_conn *c, const durq_op *op);
/* sqlite_contract.c: the ops and reads of issue 10 */
int sq_delete_many(sq_conn *c, durq_op *op, const durq_op_ctx *ctx);
int sq_purge(sq_conn *c, durq_op *op, const durq_op_ctx *ctx);
int sq_prune_ex(sq_conn *c, durq_op *op);
int sq_poison_record(sq_conn *c, const char *id, int attempts, int max_attempts, int64_t now);
int sq_query(durq_conn *conn, durq_query *q);
/* A turn's key/value changes (G3), in the ack's savepoint: DURQ_ETOOBIG past the limit. */
int sq_kv_apply(sq_conn *c, const char *id, const durq_turn_result *r);
/* The instance's keys into *out / *n (durq_mem_*), ordered by key. */
int sq_kv_rows(sq_conn *c, const char *id, durq_kv_entry **out, size_t *n);
/* G4: pin execution exec to the turn's runtime version and mirror it on the instance. */
int sq_pin(sq_conn *c, const char *id, uint64_t exec, const durq_turn_result *r);
/* G1: the claimed items' sessions held by the claim's owner (after the claim's rounds). */
int sq_session_hold(sq_conn *c, const durq_op *op, int64_t now);
/* G1: an ack or renew of an item of session sess is activity of it. */
int sq_session_touch(sq_conn *c, const char *sess, int64_t now);
int sq_session_renew(sq_conn *c, durq_op *op, int64_t now);
int sq_session_cleanup(sq_conn *c, durq_op *op, int64_t now);

int sq_history_read(durq_conn *conn, durq_event **events, size_t *n, const char *id, uint64_t exec);
/* sq_history_read of an execution already known to exist (no instance lookup). */
int sq_history_rows(sq_conn *c, durq_event **events, size_t *n, const char *id, uint64_t exec);
int sq_instance_get(durq_conn *conn, durq_instance_info **out, const char *id);
int sq_instance_list(durq_conn *conn, char ***ids, size_t *n, int status, const char *after_id,
		     size_t max);
int sq_execution_list(durq_conn *conn, durq_execution_info **out, size_t *n, const char *id);
int sq_dead_list(durq_conn *conn, durq_dead_letter **out, size_t *n, size_t max);
int sq_queue_depths(durq_conn *conn, durq_queue_depths *out, const char *queue, int64_t now);
int sq_next_due(durq_conn *conn, int64_t *due, int64_t now);
int sq_pragma_get(durq_conn *conn, char *buf, size_t len, const char *name);
int sq_data_version(durq_conn *conn, uint64_t *out);

/* sqlite_admin.c: the operator hooks (durq/admin.h) */
extern const struct durq_provider_admin durq_sqlite_admin;

#endif
