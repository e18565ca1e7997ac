/**
 * @file
 * durq/provider.h — the interface a storage backend implements (for provider authors).
 *
 * Owns: the versioned vtable (like libgit2's git_odb_backend or sqlite3_io_methods), the
 * connection base every provider connection starts with, the op record the core hands to
 * a provider, the scheme registry durq_open dispatches through, and the helpers a provider
 * may call (errors, logging, options, clock, memory, turn/item cleanup). A provider needs
 * this header and durq.h only; nothing under src/.
 *
 * Threading: a connection is used by one thread at a time. op_apply / op_apply_batch run on
 * the committer thread (group mode) or on the caller's thread (per-op mode), always between
 * txn_begin and txn_commit/txn_rollback. Provider methods (conn_open, stats, free) may be
 * called from any thread; keep provider-wide state thread-safe.
 *
 * Ownership: inputs (ops, names, payloads) belong to the caller and stay valid for the call.
 * Outputs a method writes through a pointer (turns, work items, events, instance and
 * execution infos, id lists, dead letters) become the core's: it frees them with the
 * durq_*_free functions of durq.h, which release memory with durq_mem_free — allocate every
 * output with durq_mem_alloc / _calloc / _realloc / _strdup. On failure a method leaves
 * its outputs as it found them (NULL / 0) or frees what it filled.
 *
 * Errors: return a negative DURQ_E* code and set the message with durq_error_set (thread
 * local, like libgit2's giterr_set). Never put a password or a whole connection string in a
 * message.
 */
#ifndef DURQ_PROVIDER_H
#define DURQ_PROVIDER_H

#include "../durq.h"
#include "admin.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * 3: connections start with durq_conn; op_apply_batch, change_wait, flags; the registry.
 * 4: the struct ends with admin (durq/admin.h) and query (the reads of durq.h's instance
 * tree, retention and counts).
 * 5: flush and flush_recover (DURQ_PROVIDER_DEFERRED_FLUSH, DURQ_TXN_DEFER_FLUSH). A
 * version-4 struct is still accepted (it ends before them; the core does not read them).
 * Older versions are refused with a message: 1 and 2 had connections without a provider,
 * and a version-3 struct ends before admin and query, which the core reads.
 */
#define DURQ_PROVIDER_VERSION 5
/** The oldest provider version this durq accepts. */
#define DURQ_PROVIDER_VERSION_MIN 4
/** Initialiser of durq_provider: version set, every method NULL. */
#define DURQ_PROVIDER_INIT {.version = DURQ_PROVIDER_VERSION}

typedef struct durq_provider durq_provider;

/**
 * The start of every connection: a provider defines its own struct with a durq_conn as
 * its first member and sets .provider in conn_open. The core never looks further.
 */
typedef struct durq_conn {
	durq_provider *provider; /**< set by conn_open */
} durq_conn;

/**
 * DURQ_CONN_WRITE: the committer's connection (group mode). DURQ_CONN_READ: a pool
 * connection; in per-op mode it also runs write transactions. DURQ_CONN_WATCH: the one
 * connection change_wait / data_version run on.
 */
enum durq_conn_role { DURQ_CONN_WRITE = 0, DURQ_CONN_READ = 1, DURQ_CONN_WATCH = 2 };

/** durq_provider.flags */
enum durq_provider_flags {
	DURQ_PROVIDER_VOLATILE = 1u, /**< not durable (in-memory): synchronous defaults to OFF */
	DURQ_PROVIDER_QUEUE_SETS = 2u, /**< claims work from queue sets (durq_op.u.work_claim) */
	DURQ_PROVIDER_VERSION_FILTER = 4u, /**< filters turns by runtime version (u.orch_claim) */
	/** Activity sessions (G1): stores durq_work.session_id, claims for an owner
	 * (u.work_claim.owner_id), applies DURQ_OP_SESSION_RENEW / _CLEANUP (u.session) */
	DURQ_PROVIDER_SESSIONS = 32u,
	/** Write transactions of several connections may run at once (row locks, SKIP
	 * LOCKED: PostgreSQL), so in group mode the core runs each claim (the write half of a
	 * fetch) on the fetching thread's pool connection, in its own DURQ_TXN_NO_FLUSH
	 * transaction, beside the committer's batch instead of in it: fetchers do not wait
	 * behind a batch's flush, and the server works on both at once. Without the flag
	 * (SQLite: one writer at a time) claims go through the committer like every write. */
	DURQ_PROVIDER_CONCURRENT_WRITERS = 8u,
	/** Commit and flush can be split (version >= 5, flush and flush_recover set): with
	 * synchronous=FULL in group mode the committer commits with DURQ_TXN_DEFER_FLUSH and the
	 * core's flush thread calls flush, so the next batch runs while the last one's flush is
	 * on the disk. Ops are still completed only after their flush returned. */
	DURQ_PROVIDER_DEFERRED_FLUSH = 16u
};

/**
 * DURQ_TXN_NO_FLUSH: the transaction holds only claims. Losing a claim to power failure
 * only makes its items deliverable again, which at-least-once delivery allows (design §2.9),
 * so the provider may commit it without flushing (SQLite: synchronous=NORMAL for that
 * transaction). The next flushed commit makes it durable along with its own ops.
 */
/*
 * DURQ_TXN_DEFER_FLUSH (only to a provider with DURQ_PROVIDER_DEFERRED_FLUSH): commit
 * without waiting for the disk; the transaction is visible at once (to other connections
 * and processes too) and durable after the next flush() of this connection returns OK.
 * The core completes the transaction's ops only then. A flush that fails leaves the ops'
 * outcome unknown (they are visible, and may or may not survive a crash): the core reports
 * DURQ_EIO for them and for every later transaction until flush_recover succeeded.
 */
enum durq_txn_flags { DURQ_TXN_NO_FLUSH = 1u, DURQ_TXN_DEFER_FLUSH = 2u };

/**
 * One write operation. Inputs point into the caller's memory, valid until completion.
 * Times are milliseconds of the handle's clock (durq_op_ctx.now_ms); where a message or
 * item becomes visible is durq_message_visible_at / durq_work_visible_at of now_ms, the
 * same rule the core uses to schedule wakeups.
 */
typedef struct durq_op {
	int kind;           /**< enum durq_op_kind */
	durq_token token;   /**< fresh random token for claims (set by the core) */
	union {
		struct { const durq_message *msgs; size_t n; } orch_enqueue;
		struct { const durq_work *items; size_t n; } work_enqueue;
		struct {
			int64_t lease_ms;
			durq_turn *out;          /**< provider fills all but history (owned
						  * by the core, freed with durq_turn_clear)... */
			int history_loaded;      /**< ...or history too, and sets this to 1:
						  * the core then makes no second read */
			/** G4 (only to a provider with DURQ_PROVIDER_VERSION_FILTER): 1 = claim
			 * only instances whose current execution is unpinned or pinned to a
			 * runtime version in [min_version, max_version]; others are skipped
			 * without taking their lease */
			int filtered;
			int64_t min_version;
			int64_t max_version;
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
			int64_t lease_until;     /**< out */
		} orch_renew;
		struct {
			const char *queue;
			size_t max;
			int64_t lease_ms;
			durq_work_item *items;   /**< out: array of max (the core's), the
						  * provider fills n entries (their strings and
						  * payloads are the core's, durq_mem_*) */
			size_t n;
			/** A queue set (G2; only to a provider with DURQ_PROVIDER_QUEUE_SETS):
			 * any_queue = every queue, else the n_queues names of queues (queue
			 * is then unused). Both 0 / NULL: the one queue of queue. */
			const char *const *queues;
			size_t n_queues;
			int any_queue;
			/** G1 (only to a provider with DURQ_PROVIDER_SESSIONS): NULL = a plain
			 * claim, which never takes items with a session; else also items of
			 * sessions owner_id holds or nobody holds (the one queue of queue), and
			 * every session the claim took items of is held by owner_id until at
			 * least now + session_lock_ms, its last activity now */
			const char *owner_id;
			int64_t session_lock_ms;
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
			int64_t lease_until;     /**< out */
		} work_renew;
		struct { int64_t id; } dead_requeue;
		struct { const char *instance_id; } instance_delete;
		struct {
			const char *instance_id; /**< NULL: every instance (durq_execution_prune_ex) */
			uint64_t before;         /**< 0: no such bound (prune_ex) */
			size_t pruned;           /**< out */
			uint64_t keep_last;      /**< 0: no such bound */
			int64_t completed_before; /**< 0: no such bound */
		} execution_prune;
		/** DURQ_OP_INSTANCE_DELETE_MANY (ids, n, flags) and DURQ_OP_INSTANCE_PURGE
		 * (completed_before, limit); see durq.h for the rules both enforce. */
		struct {
			const char *const *ids;
			size_t n;
			unsigned int flags;      /**< enum durq_delete_flags */
			int64_t completed_before;
			size_t limit;
			durq_delete_counts counts; /**< out */
		} instance_delete_many;
		/** DURQ_OP_SESSION_RENEW (owners, n, extend_ms, idle_ms) and
		 * DURQ_OP_SESSION_CLEANUP (idle_ms); see durq.h for the rules (G1). */
		struct {
			const char *const *owners;
			size_t n;
			int64_t extend_ms;
			int64_t idle_ms;
			size_t count;             /**< out: sessions renewed / removed */
		} session;
		/** DURQ_OP_HANDLE_STATS (only to a provider whose admin hooks have
		 * handle_stats): upsert the handle's row of the handle-stats table (counters
		 * non-NULL), first deleting other rows not updated for 3 of their own
		 * intervals, at least 3 s (rows another writer holds are skipped, never waited
		 * for); or delete the row (counters NULL). */
		struct {
			const char *key;          /**< the handle's random id (hex) */
			const char *host;         /**< gethostname() */
			int64_t pid;
			int64_t started_ms;       /**< wall clock at durq_open */
			int64_t updated_ms;       /**< wall clock of this snapshot */
			int64_t interval_ms;      /**< options.stats_publish_ms */
			const char *counters;     /**< the core's text (durq_handle_stats_list) */
			int with_claims;          /**< the core's: it rides in the claims'
						   *   unflushed transaction (providers ignore it) */
		} handle_stats;
	} u; /**< the inputs and outputs of kind */
} durq_op;

/** Internal op kind (no durq.h call makes it): a handle's stats publication, u.handle_stats.
 * (DURQ_OP__COUNT + 1 is the core's flush marker, never given to a provider.) */
#define DURQ_OP_HANDLE_STATS (DURQ_OP__COUNT + 2)

/** The reads of issue 10 (G8-G12), all through one optional provider method (query). */
enum durq_query_kind {
	DURQ_QUERY_CHILDREN = 1,      /**< u.ids: direct children, by id */
	DURQ_QUERY_TREE,              /**< u.ids: the instance, then descendants by depth, id;
				       * DURQ_ENOTFOUND if the instance does not exist */
	DURQ_QUERY_LIST_FILTER,       /**< u.list */
	DURQ_QUERY_EXECUTION_GET,     /**< u.execution */
	DURQ_QUERY_SYSTEM_COUNTS,     /**< u.counts */
	DURQ_QUERY_CUSTOM_STATUS,     /**< u.custom_status: DURQ_EMPTY when not newer */
	DURQ_QUERY_KV_GET,            /**< u.kv: one key (DURQ_ENOTFOUND: no instance or key) */
	DURQ_QUERY_KV_LIST            /**< u.kv: every key by key (DURQ_ENOTFOUND: no instance) */
};

/** One read of the issue-10 family (durq_query_kind): inputs and outputs of durq_provider.query. */
typedef struct durq_query {
	int kind;                     /**< enum durq_query_kind */
	union {
		struct { const char *instance_id; char **ids; size_t n; } ids;
		struct {
			const durq_instance_filter *f; /**< never NULL (the core passes an empty one) */
			const char *after_id;          /**< NULL = from the first */
			size_t max;
			char **ids;                    /**< out */
			size_t n;
		} list;
		struct {
			const char *instance_id;
			uint64_t execution_id;         /**< 0 = current */
			durq_execution_info *out;      /**< out, durq_mem_* (freed by the core) */
		} execution;
		struct { durq_system_counts *out; } counts;
		struct {
			const char *instance_id;
			uint64_t last_seen;
			void *value;                   /**< out, durq_mem_* */
			size_t len;
			uint64_t version;
		} custom_status;
		struct {
			const char *instance_id;
			const char *key;               /**< KV_GET only */
			void *value;                   /**< KV_GET out, durq_mem_* (never NULL) */
			size_t len;
			durq_kv_entry *entries;        /**< KV_LIST out, durq_mem_* */
			size_t n;
		} kv;
	} u; /**< the inputs and outputs of kind */
} durq_query;

/** What a provider reports into durq_stats (all optional, zero if unknown). */
typedef struct durq_provider_stats {
	uint64_t db_bytes;       /**< database size on disk */
	uint64_t wal_bytes;      /**< write-ahead log size */
	uint64_t busy_waits;     /**< waits for another connection's write lock (busy handler) */
} durq_provider_stats;

/** One op's result from op_apply_batch. */
typedef struct durq_op_result {
	int rc;             /**< DURQ_OK, DURQ_EMPTY (a claim that found nothing) or the op's error */
	char message[256];  /**< the error text when rc < 0 */
} durq_op_result;

/** Per-call context the core passes to op_apply. */
typedef struct durq_op_ctx {
	int64_t now_ms;        /**< the handle's clock, read after txn_begin took the write lock */
	int max_attempts; /**< options.max_attempts */
} durq_op_ctx;

/**
 * Operator calls (durq/admin.h), all optional: a NULL hook makes the call return
 * DURQ_EINVAL "not supported by provider X". Each runs on a pool connection (DURQ_CONN_READ)
 * and leaves no transaction open; dead_purge and import_rows run their own write
 * transaction on it. Outputs are allocated with durq_mem_* like every other output.
 */
#define DURQ_PROVIDER_ADMIN_VERSION 2 /**< 2: handle_stats (the core reads it only from 2 on) */
/** Optional operator hooks of a provider (durq/admin.h calls). */
struct durq_provider_admin {
	unsigned int version; /**< DURQ_PROVIDER_ADMIN_VERSION */
	int (*checkpoint)(durq_conn *c, durq_checkpoint_result *out); /**< durq_db_checkpoint */
	int (*integrity)(durq_conn *c, char **report); /**< durq_db_integrity; *report allocated with durq_mem_* */
	int (*vacuum)(durq_conn *c); /**< durq_db_vacuum */
	int (*queue_list)(durq_conn *c, durq_queue_info **out, size_t *n, int64_t now_ms); /**< durq_queue_list */
	int (*work_peek)(durq_conn *c, durq_work_info **out, size_t *n, const char *queue,
			 int64_t after_id, size_t max); /**< durq_work_peek (leases nothing) */
	int (*dead_page)(durq_conn *c, durq_dead_letter **out, size_t *n, int64_t after_id,
			 size_t max); /**< durq_dead_page */
	int (*dead_purge)(durq_conn *c, size_t *purged, const durq_dead_filter *f); /**< durq_dead_purge, in its own write transaction */
	int (*activity)(durq_conn *c, durq_db_activity *out); /**< durq_db_activity_get */
	/** the provider's schema version of this database (SQLite user_version, durq_meta) */
	int (*schema_version)(durq_conn *c, int *out);
	/** every table's rows as stored, from one read snapshot, logical table names (the core
	 * drops the leases, see durq_db_export) */
	int (*export_rows)(durq_conn *c, durq_export_info *info, durq_export_fn fn, void *ctx);
	/** one write transaction; refuses a non-empty table before writing */
	int (*import_rows)(durq_conn *c, size_t *rows, durq_import_fn next, void *ctx);
	/** version 2, optional: every row of the handle-stats table (logical name
	 * "handle_stats"; columns handle_key, pid, host, started_ms, updated_ms, interval_ms,
	 * counters), one callback per row (row->cells set; no table callback first). With it
	 * the provider also applies DURQ_OP_HANDLE_STATS, and the core publishes into it.
	 * export_rows and import_rows leave that table out. */
	int (*handle_stats)(durq_conn *c, durq_export_fn fn, void *ctx);
};

/** A storage backend: the versioned method table durq calls (like sqlite3_io_methods). A provider embeds it as its first member. */
struct durq_provider {
	unsigned int version;  /**< DURQ_PROVIDER_VERSION */
	const char *name;      /**< "sqlite-file", "postgresql" (logs, stats) */
	unsigned int flags;    /**< enum durq_provider_flags */

	/* ---- all required unless marked optional ---- */
	/** role: enum durq_conn_role. Sets (*out)->provider = p. */
	int (*conn_open)(durq_provider *p, durq_conn **out, int role);
	void (*conn_close)(durq_provider *p, durq_conn *c); /**< close a connection from conn_open */
	/** optional: cheap liveness check used by the pool */
	int (*conn_check)(durq_conn *c);

	/** write transaction, write lock taken; flags: DURQ_TXN_* */
	int (*txn_begin)(durq_conn *c, unsigned int flags);
	int (*txn_commit)(durq_conn *c); /**< COMMIT (flushed unless txn_begin had DURQ_TXN_NO_FLUSH) */
	int (*txn_rollback)(durq_conn *c); /**< ROLLBACK; also after the provider rolled back by itself */
	int (*op_begin)(durq_conn *c);           /**< savepoint around one op of a batch */
	int (*op_end)(durq_conn *c, int keep);   /**< keep=1 release, keep=0 roll back to */
	int (*op_apply)(durq_conn *c, durq_op *op, const durq_op_ctx *ctx); /**< apply one op inside the open transaction */

	/** reads (pool connections; never leave a transaction open) */
	int (*history_read)(durq_conn *c, durq_event **events, size_t *n, const char *instance_id,
			    uint64_t execution_id);
	int (*instance_get)(durq_conn *c, durq_instance_info **out, const char *instance_id); /**< durq_instance_get */
	/** up to max ids with the status (< 0 = any) and id > after_id (NULL = no lower
	 * bound), in byte order of the id; *ids and *n start NULL and 0 */
	int (*instance_list)(durq_conn *c, char ***ids, size_t *n, int status,
			     const char *after_id, size_t max);
	int (*execution_list)(durq_conn *c, durq_execution_info **out, size_t *n,
			      const char *instance_id); /**< durq_execution_list */
	int (*dead_list)(durq_conn *c, durq_dead_letter **out, size_t *n, size_t max); /**< durq_dead_list */
	int (*queue_depths)(durq_conn *c, durq_queue_depths *out, const char *queue, int64_t now_ms); /**< durq_queue_depths_get at now_ms */
	/** The earliest time > now_ms at which a fetch could find something it cannot find now,
	 * over both queues: a message or item becoming visible, or a lease expiring (an expired
	 * lease makes its item or instance claimable). INT64_MAX if none. */
	int (*next_due)(durq_conn *c, int64_t *due_ms, int64_t now_ms);
	/** optional: a provider setting by name as text (SQLite: a PRAGMA) */
	int (*pragma_get)(durq_conn *c, char *buf, size_t len, const char *name);
	/** optional: a counter that changes when another connection commits; the core polls it
	 * every poll_interval_ms on a DURQ_CONN_WATCH connection (used without change_wait) */
	int (*data_version)(durq_conn *c, uint64_t *out);
	/** optional: the provider's own counters, added into durq_stats */
	int (*stats)(durq_provider *p, durq_provider_stats *out);

	void (*free)(durq_provider *p); /**< release the provider (after every connection is closed) */

	/**
	 * optional: apply the whole batch ops[0..n) inside the open transaction, in order, each
	 * op failing alone (a failed op leaves no trace in the database; the core frees any
	 * outputs it filled). results[i] gets op i's result. Returns DURQ_OK, or < 0 if the
	 * transaction itself broke (the core then fails every op of the batch with that code).
	 * A provider does it its own way: SQLite a savepoint per op, a networked database one
	 * pipelined round trip. Without it the core calls op_begin/op_apply/op_end per op.
	 * The core calls it once per transaction, right after txn_begin, and calls txn_commit
	 * (or txn_rollback) right after it with nothing in between: a provider may send its
	 * COMMIT in the same round trip and have txn_commit only collect its answer
	 * (PostgreSQL does).
	 */
	int (*op_apply_batch)(durq_conn *c, durq_op *const *ops, durq_op_result *results, size_t n,
			      const durq_op_ctx *ctx);
	/**
	 * optional: block until another connection (this process or another) may have
	 * committed something a fetcher could want, or timeout_ms passed. DURQ_OK = changed
	 * (spurious is allowed), DURQ_ETIMEDOUT = nothing, < 0 = error (the core retries after
	 * poll_interval_ms). Called by one core thread on a DURQ_CONN_WATCH connection, with
	 * timeout_ms <= poll_interval_ms so closing never waits longer. A server's
	 * LISTEN/NOTIFY; with it the core does not poll data_version.
	 */
	int (*change_wait)(durq_conn *c, int64_t timeout_ms);
	/** optional, with change_wait: make a change_wait running on c return now (called from
	 * another thread, when the handle closes); without it closing waits for the timeout */
	void (*change_cancel)(durq_conn *c);

	/** optional: the options as this provider applies them, URL parameters included; the
	 * handle reports its provider's settings (synchronous, busy_timeout_ms, sqlite_vfs)
	 * from here in durq_options_get. Valid until free. */
	const durq_options *settings;

	const struct durq_provider_admin *admin; /**< optional: operator calls (durq/admin.h) */

	/** optional: the reads of issue 10 (durq_query_kind) on a pool connection; without it
	 * those calls return DURQ_EINVAL "not supported" */
	int (*query)(durq_conn *c, durq_query *q);

	/* ---- version 5 ---- */
	/**
	 * optional (with DURQ_PROVIDER_DEFERRED_FLUSH): make every transaction committed on c
	 * with DURQ_TXN_DEFER_FLUSH so far durable (SQLite: fsync the WAL). Called on the core's
	 * flush thread, possibly while c runs the next transaction on the committer thread; it
	 * must touch nothing that transaction uses. DURQ_OK, or < 0 (DURQ_EIO, DURQ_EFULL) with
	 * the error message set.
	 */
	int (*flush)(durq_conn *c);
	/**
	 * optional (with flush): after a flush failed, make everything committed on c durable
	 * by a path that does not trust the failed file's state (SQLite: a TRUNCATE checkpoint
	 * copies the WAL into the database file, syncs it and empties the WAL). Called on the
	 * committer thread between transactions until it returns DURQ_OK; until then every
	 * deferred commit is reported DURQ_EIO.
	 */
	int (*flush_recover)(durq_conn *c);
};

/* ---- the scheme registry ------------------------------------------------------------ */

/** One key=value of a URL query string. */
typedef struct durq_provider_param {
	const char *key;    /**< percent-decoded */
	const char *value;  /**< percent-decoded; "" for "?key" */
} durq_provider_param;

/**
 * What durq_open hands a factory. "sqlite:/var/q.db?vfs=unix-dotfile" gives scheme
 * "sqlite", location "/var/q.db", one param. Valid for the factory call only.
 */
typedef struct durq_provider_config {
	const char *url;                   /**< as the caller gave it */
	const char *scheme;                /**< before the first ':' (lower case) */
	const char *location;              /**< after "scheme:", up to the first '?' */
	const durq_provider_param *params; /**< the query string, in order */
	size_t n_params; /**< length of params */
	const durq_options *opts;          /**< the caller's options (may be NULL) */
} durq_provider_config;

/** Build a provider for cfg; DURQ_EINVAL with a message for a URL it cannot use. */
typedef int (*durq_provider_factory)(durq_provider **out, const durq_provider_config *cfg,
				     void *ctx);

/**
 * Make durq_open dispatch scheme (letters, digits, '+', '-', '.'; case-insensitive) to
 * factory. The registry is process-wide (like sqlite3_vfs_register) and thread-safe; a
 * scheme registered here takes precedence over a built-in one of the same name.
 * DURQ_EINVAL for a bad scheme or NULL factory.
 * @param scheme the URL scheme, e.g. "mydb" for "mydb:..."
 * @param factory builds the provider for a URL of that scheme
 * @param ctx passed to factory
 * @return DURQ_OK; DURQ_EINVAL (bad scheme or NULL factory), DURQ_ENOMEM
 */
DURQ_EXTERN int durq_provider_register(const char *scheme, durq_provider_factory factory,
				       void *ctx);
/** Remove a registration; DURQ_ENOTFOUND if there is none (built-ins cannot be removed).
 * @param scheme the scheme
 * @return DURQ_OK; DURQ_ENOTFOUND
 */
DURQ_EXTERN int durq_provider_unregister(const char *scheme);
/** Build the provider durq_open would use for url, without opening a handle (a provider
 * that wraps another one starts here).
 * @param out set to the provider (the caller owns it: its free method)
 * @param url as for durq_open()
 * @param opts as for durq_open() (may be NULL)
 * @return DURQ_OK; the errors of durq_open() for a bad URL or options
 */
DURQ_EXTERN int durq_provider_new(durq_provider **out, const char *url, const durq_options *opts);

/** The provider a handle runs on (owned by the handle; valid until durq_free).
 * @param db an open handle
 * @return the provider; NULL if db is NULL
 */
DURQ_EXTERN durq_provider *durq_provider_of(durq *db);

/** Check version range and required methods; DURQ_EINVAL with a message otherwise.
 * @param p the provider
 * @return DURQ_OK; DURQ_EINVAL
 */
DURQ_EXTERN int durq_provider_check(const durq_provider *p);

/** Open a handle on a provider built by the caller. Takes ownership of p (freed with the
 * handle, also on failure).
 * @param out set to the new handle
 * @param p the provider (owned by durq from now on)
 * @param opts as for durq_open()
 * @return DURQ_OK; the errors of durq_open()
 */
DURQ_EXTERN int durq_open_provider(durq **out, durq_provider *p, const durq_options *opts);

/** Set this thread's last error; returns code. For providers and the core.
 * @param code the DURQ_E* code to return
 * @param fmt printf-style message
 * @param ... its arguments
 * @return code, unchanged
 */
DURQ_EXTERN int durq_error_set(int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/** Log through the handle's callback (providers get the options at construction).
 * @param opts the handle options (log, log_ctx, log_level)
 * @param level enum durq_log_level
 * @param tag short category, e.g. "RETRY"
 * @param fmt printf-style message
 * @param ... its arguments
 */
DURQ_EXTERN void durq_log_emit(const durq_options *opts, int level, const char *tag,
			       const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

/* ---- helpers for providers -------------------------------------------------------- */

/** Outputs the core frees are allocated with these (the C library's malloc underneath).
 * @param n bytes
 * @return the memory, or NULL
 */
DURQ_EXTERN void *durq_mem_alloc(size_t n);
/** Zeroed array of n elements of size bytes (durq_mem_alloc).
 * @param n elements
 * @param size bytes each
 * @return the memory, or NULL
 */
DURQ_EXTERN void *durq_mem_calloc(size_t n, size_t size);
/** Resize memory from durq_mem_alloc.
 * @param p the memory (may be NULL)
 * @param n new size in bytes
 * @return the memory, or NULL (p unchanged)
 */
DURQ_EXTERN void *durq_mem_realloc(void *p, size_t n);
/** Copy a string (durq_mem_alloc).
 * @param s the string
 * @return the copy, or NULL
 */
DURQ_EXTERN char *durq_mem_strdup(const char *s);
/** Free memory from the durq_mem_* allocators.
 * @param p the memory (may be NULL)
 */
DURQ_EXTERN void durq_mem_free(void *p);

/** Free everything a turn holds and zero it (the struct itself stays).
 * @param t the turn
 */
DURQ_EXTERN void durq_turn_clear(durq_turn *t);
/** Free what one leased work item holds and zero it (the struct itself stays).
 * @param it the item
 */
DURQ_EXTERN void durq_work_item_clear(durq_work_item *it);

/** When a message enqueued at now_ms becomes visible: the later of now + delay_ms and
 * visible_at_ms. The core schedules wakeups by the same rule.
 * @param m the message
 * @param now_ms commit time (handle clock)
 * @return the visibility time in ms
 */
DURQ_EXTERN int64_t durq_message_visible_at(const durq_message *m, int64_t now_ms);
/** The same rule for a worker item (now + delay_ms).
 * @param w the item
 * @param now_ms commit time (handle clock)
 * @return the visibility time in ms
 */
DURQ_EXTERN int64_t durq_work_visible_at(const durq_work *w, int64_t now_ms);

/**
 * Defaults, environment overrides (DURQ_*) and validation, as the core applies them:
 * a provider resolves the caller's options with this to see the values the handle will
 * use. flags: enum durq_provider_flags of the provider (VOLATILE changes defaults).
 * @param out the resolved options
 * @param in the caller's options (may be NULL)
 * @param flags enum durq_provider_flags
 * @return DURQ_OK; DURQ_EINVAL (a bad value, the message names it)
 */
DURQ_EXTERN int durq_options_resolve(durq_options *out, const durq_options *in,
				     unsigned int flags);

/** CLOCK_MONOTONIC in nanoseconds (for busy budgets and timeouts, never stored).
 * @return nanoseconds since an arbitrary start
 */
DURQ_EXTERN uint64_t durq_clock_mono_ns(void);

#ifdef __cplusplus
}
#endif
#endif /* DURQ_PROVIDER_H */
