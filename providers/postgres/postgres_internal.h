/*
 * postgres_internal.h — shared by the PostgreSQL provider's files: the provider and
 * connection structs, the statement table, binary parameters and arrays, the pipeline
 * primitives, result decoding and error mapping.
 *
 * Files: postgres_provider.c (factory, connections, transactions, batches, NOTIFY/LISTEN,
 * stats), postgres_schema.c (DDL, server-side functions, migration, statement text),
 * postgres_pipe.c (libpq plumbing: parameters, pipeline mode, results, errors),
 * postgres_ops.c (the write ops), postgres_reads.c (the reads).
 */
#ifndef DURQ_POSTGRES_INTERNAL_H
#define DURQ_POSTGRES_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "durq/provider.h"

#define PG_SCHEMA_VERSION 7 /* 2: instance advisory lock keyed by schema and id; 3: issue 10
			     * (execution name/version/completion, deletes, retention); 4: the
			     * per-instance key/value state (durq_kv, durq_orch_ack's kv arrays);
			     * 5: runtime version pins and the claim's version range; 6: activity
			     * sessions (durq_sessions, the items' session_id); 7: the work queue
			     * leaves half of each page free (fillfactor 50) */
#define PG_NOTIFY_CHANNEL "durq"
/* A claim's NOTIFY (its lease's expiry makes work claimable) goes at most once per this
 * many ms per provider instance: see pg_notify_due. */
#define PG_CLAIM_NOTIFY_MS 100
#define PG_MAX_PARAMS 32 /* durq_orch_ack takes 32 */
#define PG_PREFIX_MAX 6
/* The largest message libpq and the server exchange is 1 GiB - 1 (the server's
 * PQ_LARGE_MESSAGE_LIMIT): one statement's parameters must fit, with room to spare. */
#define PG_MESSAGE_MAX ((size_t)1 << 30)
/* An enqueue's arrays are cut into statements of at most this many payload bytes. */
#define PG_CHUNK_BYTES ((size_t)64 << 20)

typedef struct pg_provider {
	durq_provider base;
	char *conninfo;            /* what libpq gets; never logged, never in a message */
	char *secret[2];           /* password as written and decoded: redacted from messages */
	durq_options resolved;     /* the caller's options with defaults filled in */
	const durq_options *opts;  /* = &resolved */
	char instance_id[33];      /* NOTIFY payload: this provider's random id in hex */
	pthread_mutex_t schema_mu; /* first connect: one schema check per provider */
	int schema_ready;          /* under schema_mu */
	atomic_int config_logged;
	_Atomic uint64_t db_bytes; /* pg_database_size, refreshed by the watch connection */
	_Atomic int64_t db_bytes_at_ms;
	_Atomic int64_t claim_notify_ms; /* monotonic ms of the last claim that notified */
	pthread_mutex_t flush_mu;  /* the flusher: the flush thread, or recovery (committer) */
	struct pg_conn *flusher;   /* its own session: durq_provider.flush (deferred flush) */
} pg_provider;

enum pg_stmt_id {
	PG_BEGIN, PG_CLAIM_TXN, PG_COMMIT, PG_ROLLBACK, PG_SAVEPOINT, PG_RELEASE, PG_ROLLBACK_TO,
	PG_NOTIFY, PG_DEFER_TXN, PG_FLUSH,
	PG_ORCH_INSERT, PG_WORK_INSERT, PG_ORCH_CLAIM, PG_ORCH_ACK, PG_ORCH_ABANDON, PG_ORCH_RENEW,
	PG_WORK_CLAIM, PG_WORK_ACK, PG_WORK_ABANDON, PG_WORK_RENEW, PG_WORK_ACK1,
	PG_WORK_ABANDON1, PG_WORK_RENEW1, PG_DEAD_REQUEUE,
	PG_INSTANCE_DELETE, PG_EXECUTION_PRUNE,
	PG_HISTORY_READ, PG_INSTANCE_GET, PG_INSTANCE_LIST, PG_INSTANCE_LIST_STATUS,
	PG_EXECUTION_LIST, PG_DEAD_LIST, PG_DEPTHS, PG_NEXT_DUE, PG_DB_SIZE, PG_SETTING,
	/* issue 10 (postgres_contract.c) */
	PG_ORCH_DISCARD, PG_DELETE_MANY, PG_PURGE, PG_PRUNE_EX, PG_CHILDREN, PG_TREE,
	PG_LIST_FILTER, PG_EXECUTION_GET, PG_SYSTEM_COUNTS, PG_CUSTOM_STATUS, PG_KV_GET,
	PG_KV_LIST, PG_WORK_CLAIM_SET, PG_WORK_CLAIM_ANY,
	/* the handle-stats table (postgres_admin.c) */
	PG_HSTATS_PUBLISH, PG_HSTATS_DELETE,
	/* activity sessions (G1) */
	PG_WORK_CLAIM_SESSION, PG_SESSION_RENEW, PG_SESSION_CLEANUP,
	/* a run of acks none of which carries a completion */
	PG_WORK_ACK_PLAIN,
	PG__COUNT
};

/* Transaction state of a connection: BEGIN is deferred and sent with the first statement. */
enum pg_txn { PG_TXN_NONE = 0, PG_TXN_PENDING, PG_TXN_OPEN };

typedef struct pg_conn {
	durq_conn base;            /* first: the core sees only this */
	PGconn *pg;
	pg_provider *p;
	int role;                  /* enum durq_conn_role */
	int listening;             /* LISTEN issued on this session */
	int cancel_fd;             /* watch: eventfd change_cancel signals (-1 otherwise) */
	int txn;                   /* enum pg_txn */
	unsigned int txn_flags;    /* of txn_begin, to begin again after a rebuild */
	int notify;                /* this transaction made work visible or leased: NOTIFY */
	int commit_sent;           /* COMMIT of this transaction is on its way: never replay */
	int committed;             /* the batch committed its transaction (txn_commit: done) */
	int in_pipeline;
	int prefix[PG_PREFIX_MAX]; /* statements to send before the next ones (BEGIN, ...) */
	int n_prefix;
} pg_conn;

static inline pg_conn *pg_conn_of(durq_conn *c)
{
	return (pg_conn *)c;
}

/* ---- postgres_schema.c ---- */
const char *pg_stmt_sql(enum pg_stmt_id id);
const char *pg_stmt_name(enum pg_stmt_id id);
/* Create or migrate the schema (advisory lock, one transaction); ECORRUPT if newer. */
int pg_schema_ensure(pg_conn *c);
/* postgres_admin.c: the handle-stats table, made if missing (outside the versioned
 * schema: it holds no durable data), before the statements are prepared */
int pg_handle_stats_ensure(pg_conn *c);

/* ---- postgres_pipe.c: parameters (binary format) ---- */
typedef struct pg_params {
	int n;
	int oom;
	const char *values[PG_MAX_PARAMS];
	int lengths[PG_MAX_PARAMS];
	int formats[PG_MAX_PARAMS];
	char num[PG_MAX_PARAMS][8];  /* integer encodings */
	char *owned[PG_MAX_PARAMS];  /* arrays built for this statement */
	int n_owned;
} pg_params;

/* A one-dimensional array in PostgreSQL's binary format, built element by element. */
typedef struct pg_arr {
	char *buf;
	size_t len, cap;
	uint32_t n;
	uint32_t elem_oid;
	int has_null;
	int oom;
} pg_arr;

enum { PG_OID_BOOL = 16, PG_OID_BYTEA = 17, PG_OID_INT8 = 20, PG_OID_INT4 = 23, PG_OID_TEXT = 25 };

void pg_params_init(pg_params *p);
void pg_params_free(pg_params *p);
void pg_param_null(pg_params *p);
void pg_param_text(pg_params *p, const char *s);          /* NULL = SQL NULL */
void pg_param_bytes(pg_params *p, const void *b, size_t n); /* NULL = SQL NULL */
void pg_param_token(pg_params *p, const durq_token *t);
void pg_param_i64(pg_params *p, int64_t v);
void pg_param_i32(pg_params *p, int32_t v);
void pg_param_bool(pg_params *p, int v);
/* Takes the array's buffer (a->buf is NULL afterwards). */
void pg_param_arr(pg_params *p, pg_arr *a);

void pg_arr_init(pg_arr *a, uint32_t elem_oid);
void pg_arr_free(pg_arr *a);
void pg_arr_bytes(pg_arr *a, const void *b, size_t n); /* text or bytea; NULL = null */
void pg_arr_text(pg_arr *a, const char *s);
void pg_arr_i64(pg_arr *a, int64_t v);
void pg_arr_i32(pg_arr *a, int32_t v);
void pg_arr_bool(pg_arr *a, int v);

/* ---- postgres_pipe.c: statements ---- */
/* Queue a statement for the deferred prefix (BEGIN, SAVEPOINT ...); sent before the next
 * statement, or run now if the prefix is full. */
int pg_prefix_add(pg_conn *c, enum pg_stmt_id id);
/* Run the prefix now, alone (outside a pipeline). */
int pg_prefix_flush(pg_conn *c);
/* Pipeline: start (sends the prefix), send statements, sync, read the prefix's results,
 * take each statement's result in order, finish (reads to the sync, leaves the mode). */
int pg_pipe_start(pg_conn *c);
int pg_pipe_send(pg_conn *c, enum pg_stmt_id id, const pg_params *p);
int pg_pipe_sync(pg_conn *c);
int pg_pipe_prefix_results(pg_conn *c, int n_prefix);
/* The next statement's result (the caller PQclears it); NULL = the connection failed
 * (error set). */
PGresult *pg_pipe_next(pg_conn *c);
int pg_pipe_finish(pg_conn *c);
/* Leave pipeline mode whatever state it is in (after a failure). */
void pg_pipe_abandon(pg_conn *c);
/* One statement outside a pipeline (reads, setup): *out = its rows (the caller PQclears
 * them), or an error code with *out NULL. */
int pg_exec(pg_conn *c, enum pg_stmt_id id, const pg_params *p, const char *what,
	    PGresult **out);

/* ---- postgres_pipe.c: results and errors ---- */
int pg_ok(const PGresult *r);                  /* COMMAND_OK or TUPLES_OK */
int pg_conn_broken(const pg_conn *c);
/* Map a failed result (or a dead connection when r is NULL) to a durq code + message. */
int pg_error(pg_conn *c, const PGresult *r, const char *what);
/* An error that concerns this statement only (data, constraint, lock wait, deadlock): a
 * batch fails that op and goes on; any other error breaks the whole transaction. */
int pg_error_is_op_local(const PGresult *r);
int pg_isnull(const PGresult *r, int row, int col);
int64_t pg_i64(const PGresult *r, int row, int col);
int32_t pg_i32(const PGresult *r, int row, int col);
/* Copies with durq_mem_*: NULL for SQL NULL; *oom set if an allocation failed. */
char *pg_text(const PGresult *r, int row, int col, int *oom);
void *pg_bytes(const PGresult *r, int row, int col, size_t *len, int *oom);
/* Replace the URL and the password in msg (in place) by placeholders. */
void pg_redact(const pg_provider *p, char *msg, size_t cap);
/* A libpq message as one redacted line in out. */
void pg_message(const pg_provider *p, const char *in, char *out, size_t cap);

/* ---- postgres_provider.c ---- */
/* Reconnect a broken connection that holds no transaction; EIO if the server is gone. */
int pg_conn_ensure(pg_conn *c);

/* ---- postgres_ops.c: ops are sent (statements queued on the pipeline) and received ----
 * A run is consecutive ops that one statement carries: acks, renews, abandons (of distinct
 * items) or enqueues of one kind; any other op is a run of one. */
#define PG_AGAIN 1    /* the op needs another round (a claim that dead-lettered items) */
#define PG_RUN_MAX 1024 /* ops in one run */

typedef struct pg_opstate {
	int n_stmts; /* statements sent for the run in this round */
} pg_opstate;

/* How a statement failed: not at all (a refused op, e.g. a stale token, changed nothing and
 * the transaction goes on), for reasons of its own (the transaction is aborted: the batch
 * fails this op, or sends a run's ops one by one, and replays the others), or fatally
 * (connection, server, transaction). */
enum { PG_SQL_NONE = 0, PG_SQL_LOCAL = 1, PG_SQL_FATAL = 2 };

/* The length of the run that starts at ops[0] (1..n). */
size_t pg_run_len(durq_op *const *ops, size_t n);
int pg_run_send(pg_conn *c, durq_op *const *ops, size_t n, const durq_op_ctx *ctx,
		pg_opstate *st);
/* Takes the run's results. DURQ_OK: res[0..n) hold each op's result (DURQ_OK, DURQ_EMPTY or
 * its refusal, with the message); PG_AGAIN: a claim needs another round; < 0 with *local
 * PG_SQL_LOCAL or PG_SQL_FATAL: a statement failed (error set). */
int pg_run_recv(pg_conn *c, durq_op *const *ops, size_t n, const durq_op_ctx *ctx,
		pg_opstate *st, durq_op_result *res, int *local);
/* 1 if a commit holding op (applied) should NOTIFY the other handles. */
int pg_op_wakes_others(const durq_op *op);
/* Free the outputs a claim filled (before it is run again, or when it failed); _from keeps
 * a work claim's first keep items (committed by an earlier transaction of the batch). */
void pg_op_discard(durq_op *op);
void pg_op_discard_from(durq_op *op, size_t keep);
/* After the op's last round, when it succeeded: a claim's items in priority/FIFO order. */
void pg_op_finish(durq_op *op);

/* ---- postgres_reads.c ---- */
int pg_history_read(durq_conn *c, durq_event **events, size_t *n, const char *id,
		    uint64_t exec);
int pg_instance_get(durq_conn *c, durq_instance_info **out, const char *id);
int pg_instance_list(durq_conn *c, char ***ids, size_t *n, int status, const char *after_id,
		     size_t max);
int pg_execution_list(durq_conn *c, durq_execution_info **out, size_t *n, const char *id);
int pg_dead_list(durq_conn *c, durq_dead_letter **out, size_t *n, size_t max);
int pg_queue_depths(durq_conn *c, durq_queue_depths *out, const char *queue, int64_t now);
int pg_next_due(durq_conn *c, int64_t *due, int64_t now);
int pg_pragma_get(durq_conn *c, char *buf, size_t len, const char *name);
/* postgres_contract.c: the reads of issue 10 (durq_query) */
int pg_query(durq_conn *c, durq_query *q);

/* ---- postgres_admin.c: the operator hooks (durq/admin.h) ---- */
extern const struct durq_provider_admin durq_postgres_admin;

#endif
