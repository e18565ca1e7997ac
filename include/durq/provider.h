/*
 * durq/provider.h — the interface a storage backend implements (for provider authors).
 *
 * Owns: the versioned vtable (like libgit2's git_odb_backend or sqlite3_io_methods), the
 * op record the core hands to a provider, and the error helper providers use.
 * The core (src/) owns threads, the committer, the pool, wakeups, the clock and stats; a
 * provider supplies connections and applies one op inside a transaction the core opened.
 *
 * Threading: a connection is used by one thread at a time. op_apply runs on the committer
 * thread (group mode) or on the caller's thread (per-op mode), always between txn_begin and
 * txn_commit/txn_rollback, and for group commit between op_begin and op_end.
 */
#ifndef DURQ_PROVIDER_H
#define DURQ_PROVIDER_H

#include "../durq.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DURQ_PROVIDER_VERSION 2 /* 2 added op_apply_batch; version 1 providers still work */
#define DURQ_PROVIDER_INIT {.version = DURQ_PROVIDER_VERSION}

typedef struct durq_conn durq_conn; /* provider-defined connection */
typedef struct durq_provider durq_provider;

enum durq_conn_role { DURQ_CONN_WRITE = 0, DURQ_CONN_READ = 1 };

/*
 * DURQ_TXN_NO_FLUSH: the transaction holds only claims. Losing a claim to power failure
 * only makes its items deliverable again, which at-least-once delivery allows (design §2.9),
 * so the provider may commit it without flushing (SQLite: synchronous=NORMAL for that
 * transaction). The next flushed commit makes it durable along with its own ops.
 */
enum durq_txn_flags { DURQ_TXN_NO_FLUSH = 1u };

/* One write operation. Inputs point into the caller's memory, valid until completion. */
typedef struct durq_op {
	int kind;           /* enum durq_op_kind */
	durq_token token;   /* fresh random token for claims (set by the core) */
	union {
		struct { const durq_message *msgs; size_t n; } orch_enqueue;
		struct { const durq_work *items; size_t n; } work_enqueue;
		struct {
			int64_t lease_ms;
			durq_turn *out;          /* provider fills all but history... */
			int history_loaded;      /* ...or history too, and sets this to 1 (v2):
						  * the core then makes no second read */
		} orch_claim;
		struct {
			const char *instance_id;
			const durq_token *token;
			const durq_turn_result *result;
		} orch_ack;
		struct {
			const char *instance_id;
			const durq_token *token;
			int64_t delay_ms;
			int ignore_attempt;
		} orch_abandon;
		struct {
			const char *instance_id;
			const durq_token *token;
			int64_t lease_ms;
			int64_t lease_until;     /* out */
		} orch_renew;
		struct {
			const char *queue;
			size_t max;
			int64_t lease_ms;
			durq_work_item *items;   /* out: array of max, provider fills *n */
			size_t n;
		} work_claim;
		struct {
			int64_t id;
			const durq_token *token;
			const durq_message *completion;
		} work_ack;
		struct {
			int64_t id;
			const durq_token *token;
			int64_t delay_ms;
			int ignore_attempt;
		} work_abandon;
		struct {
			int64_t id;
			const durq_token *token;
			int64_t lease_ms;
			int64_t lease_until;     /* out */
		} work_renew;
		struct { int64_t id; } dead_requeue;
		struct { const char *instance_id; } instance_delete;
		struct {
			const char *instance_id;
			uint64_t before;
			size_t pruned;           /* out */
		} execution_prune;
	} u;
} durq_op;

/* What a provider reports into durq_stats (all optional, zero if unknown). */
typedef struct durq_provider_stats {
	uint64_t db_bytes;       /* database size on disk */
	uint64_t wal_bytes;      /* write-ahead log size */
	uint64_t busy_waits;     /* waits for another connection's write lock (busy handler) */
} durq_provider_stats;

/* One op's result from op_apply_batch. */
typedef struct durq_op_result {
	int rc;             /* DURQ_OK, DURQ_EMPTY (a claim that found nothing) or the op's error */
	char message[256];  /* the error text when rc < 0 */
} durq_op_result;

/* Per-call context the core passes to op_apply. */
typedef struct durq_op_ctx {
	int64_t now_ms;        /* read after the write lock was taken */
	int max_attempts;
} durq_op_ctx;

struct durq_provider {
	unsigned int version;  /* DURQ_PROVIDER_VERSION */
	const char *name;      /* "sqlite", "postgres" */

	/* ---- version 1: all required unless marked optional ---- */
	int (*conn_open)(durq_provider *p, durq_conn **out, int role);
	void (*conn_close)(durq_provider *p, durq_conn *c);
	/* optional: cheap liveness check used by the pool */
	int (*conn_check)(durq_conn *c);

	/* write transaction, write lock taken; flags: DURQ_TXN_* */
	int (*txn_begin)(durq_conn *c, unsigned int flags);
	int (*txn_commit)(durq_conn *c);
	int (*txn_rollback)(durq_conn *c);
	int (*op_begin)(durq_conn *c);           /* savepoint around one op of a batch */
	int (*op_end)(durq_conn *c, int keep);   /* keep=1 release, keep=0 roll back to */
	int (*op_apply)(durq_conn *c, durq_op *op, const durq_op_ctx *ctx);

	/* reads (pool connections; never leave a transaction open) */
	int (*history_read)(durq_conn *c, durq_event **events, size_t *n, const char *instance_id,
			    uint64_t execution_id);
	int (*instance_get)(durq_conn *c, durq_instance_info **out, const char *instance_id);
	/* up to max ids with the status (< 0 = any) and id > after_id (NULL = no lower
	 * bound), in byte order of the id; *ids and *n start NULL and 0 */
	int (*instance_list)(durq_conn *c, char ***ids, size_t *n, int status,
			     const char *after_id, size_t max);
	int (*execution_list)(durq_conn *c, durq_execution_info **out, size_t *n,
			      const char *instance_id);
	int (*dead_list)(durq_conn *c, durq_dead_letter **out, size_t *n, size_t max);
	int (*queue_depths)(durq_conn *c, durq_queue_depths *out, const char *queue, int64_t now_ms);
	/* earliest visible_at > now over both queues, or INT64_MAX */
	int (*next_due)(durq_conn *c, int64_t *due_ms, int64_t now_ms);
	/* optional */
	int (*pragma_get)(durq_conn *c, char *buf, size_t len, const char *name);
	/* optional: a counter that changes when another connection commits */
	int (*data_version)(durq_conn *c, uint64_t *out);
	/* optional: the provider's own counters, added into durq_stats */
	int (*stats)(durq_provider *p, durq_provider_stats *out);

	void (*free)(durq_provider *p);

	/* ---- version 2 ---- */
	/*
	 * optional: apply the whole batch ops[0..n) inside the open transaction, in order, each
	 * op failing alone (a failed op leaves no trace in the database; the core frees any
	 * outputs it filled). results[i] gets op i's result. Returns DURQ_OK, or < 0 if the
	 * transaction itself broke (the core then fails every op of the batch with that code).
	 * A provider does it its own way: SQLite a savepoint per op, a networked database one
	 * pipelined round trip. Without it the core calls op_begin/op_apply/op_end per op.
	 */
	int (*op_apply_batch)(durq_conn *c, durq_op *const *ops, durq_op_result *results, size_t n,
			      const durq_op_ctx *ctx);
};

/* Check version range and required methods; DURQ_EINVAL with a message otherwise. */
DURQ_EXTERN int durq_provider_check(const durq_provider *p);

/* Open a handle on a provider built by the caller. Takes ownership of p (freed with the
 * handle, also on failure). */
DURQ_EXTERN int durq_open_provider(durq **out, durq_provider *p, const durq_options *opts);

/* Set this thread's last error; returns code. For providers and the core. */
DURQ_EXTERN int durq_error_set(int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* Log through the handle's callback (providers get the options at construction). */
DURQ_EXTERN void durq_log_emit(const durq_options *opts, int level, const char *tag,
			       const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

#ifdef __cplusplus
}
#endif
#endif /* DURQ_PROVIDER_H */
