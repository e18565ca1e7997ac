/*
 * durq.h — the public API of durq, the storage provider of a durable workflow runtime.
 *
 * Owns: the opaque handle, versioned option structs, the queue / lease / history calls,
 * error codes and stats. Does not own: SQL, connections, threads (see src/ and providers/).
 * Payloads are opaque bytes; durq never parses them.
 *
 * Conventions (libgit2 style): out-parameters come first after the handle; every call
 * returns DURQ_OK (0) or a negative DURQ_E* code and leaves a per-thread message readable
 * with durq_error_last(); every object returned has its own _free function.
 */
#ifndef DURQ_H
#define DURQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DURQ_EXTERN __attribute__((visibility("default")))
#else
#define DURQ_EXTERN
#endif

#define DURQ_VERSION_STRING "0.1.0"

/* ---- errors ------------------------------------------------------------------------- */

enum durq_error {
	DURQ_OK = 0,
	DURQ_EMPTY = -1,     /* nothing to fetch (not a failure) */
	DURQ_EBUSY = -2,     /* database busy after all retries: retryable */
	DURQ_ELOCKLOST = -3, /* token unknown, forged, or its lease expired */
	DURQ_EDUP = -4,      /* duplicate (e.g. history event id already stored) */
	DURQ_ENOTFOUND = -5, /* no such instance / dead letter */
	DURQ_EINVAL = -6,    /* bad argument or option; message says which */
	DURQ_ETOOBIG = -7,   /* over a size limit: payload, entries per call, turn, list */
	DURQ_ECORRUPT = -8,  /* database corrupt or schema from a newer durq */
	DURQ_ENOMEM = -9,    /* out of memory */
	DURQ_EIO = -10,      /* I/O error, cannot open path: retryable once the fault clears.
			      * From a write call: OUTCOME UNKNOWN. In this process the op was
			      * not applied, but a failed flush at COMMIT may have written it:
			      * after a crash and reopen it may be there (an enqueue present, an
			      * ack done). Retrying an enqueue may duplicate it (at-least-once). */
	DURQ_EFULL = -11,    /* disk full: retryable once space is freed */
	DURQ_ECLOSED = -12,  /* handle was closed */
	DURQ_EAGAIN = -13,   /* async submit with DURQ_SUBMIT_NOWAIT: backlog full, retry later */
	DURQ_ETIMEDOUT = -14, /* durq_flush / durq_group_wait: the ops are not all done yet */
	DURQ_ECONFLICT = -15  /* the instance's state forbids the call (deleting a running
			       * instance or a sub-orchestration without DURQ_DELETE_FORCE) */
};

/* Message of the last error raised on this thread ("" if none). Valid until the next call. */
DURQ_EXTERN const char *durq_error_last(void);
/* Symbolic name of a code, e.g. "DURQ_ELOCKLOST". */
DURQ_EXTERN const char *durq_error_name(int code);
/* 1 if retrying the same call later may succeed (EBUSY, EIO, EFULL, EAGAIN, ETIMEDOUT). */
DURQ_EXTERN int durq_error_retryable(int code);

/* ---- limits and small types --------------------------------------------------------- */

#define DURQ_INSTANCE_ID_MAX 256 /* bytes, UTF-8, not counting the NUL */
#define DURQ_QUEUE_NAME_MAX 256
/* Orchestration name and version tag of a turn result (longer: DURQ_EINVAL). parent_id is an
 * instance id and so capped at DURQ_INSTANCE_ID_MAX. */
#define DURQ_NAME_MAX 256
#define DURQ_DEFAULT_MAX_PAYLOAD (1024 * 1024)
/* options.max_turn_entries: default and upper bound (see durq_options). */
#define DURQ_DEFAULT_MAX_TURN_ENTRIES 10000
#define DURQ_MAX_TURN_ENTRIES_LIMIT 1000000
/* One turn result carries at most this many times options.max_payload bytes of payload
 * (output + custom status + history + messages + work), else DURQ_ETOOBIG. */
#define DURQ_TURN_PAYLOAD_FACTOR 64
/* durq_instance_list refuses to return more ids than this (DURQ_ETOOBIG: page instead with
 * durq_instance_list_page, whose max is clamped to it); a page's default size. */
#define DURQ_INSTANCE_LIST_MAX 100000
#define DURQ_INSTANCE_PAGE_DEFAULT 1000

/* A lease token: 128 random bits. */
typedef struct durq_token {
	unsigned char bytes[16];
} durq_token;

/* Milliseconds since the Unix epoch. Injectable so tests never sleep to expire a lease. */
typedef int64_t (*durq_clock_fn)(void *ctx);

enum durq_log_level { DURQ_LOG_ERROR = 1, DURQ_LOG_WARN = 2, DURQ_LOG_INFO = 3, DURQ_LOG_DEBUG = 4 };
/* tag is a short category: "CONFIG", "RETRY", "COMMIT", "POOL", "POISON", ...
 * The callback is called with no durq lock held, but it may run on any thread: the
 * caller's, the committer's, or inside a write transaction (per-op mode). It may call
 * durq's reads (stats, depths, instance and history reads). A write call (enqueue, fetch,
 * ack, ...) or durq_close made from the callback on the thread that is writing would wait
 * for itself, so it fails at once with DURQ_EINVAL; hand such work to another thread.
 * Keep it short: on the committer thread it delays every pending op. */
typedef void (*durq_log_fn)(void *ctx, int level, const char *tag, const char *message);

enum durq_commit_mode {
	DURQ_COMMIT_GROUP = 0, /* default: one committer thread, many ops per transaction */
	DURQ_COMMIT_PER_OP = 1 /* classic: one BEGIN IMMEDIATE per op on the caller's thread */
};

enum durq_sync {
	DURQ_SYNC_DEFAULT = 0, /* FULL for files, OFF for the in-memory provider */
	DURQ_SYNC_OFF = 1,
	DURQ_SYNC_NORMAL = 2,
	DURQ_SYNC_FULL = 3
};

/* ---- options (versioned; zero means "default" for every numeric field) -------------- */

typedef struct durq_options {
	unsigned int version;     /* DURQ_OPTIONS_VERSION */
	int pool_size;            /* read connections, 5..20 (default 8) */
	int pool_timeout_ms;      /* pool checkout wait before DURQ_EBUSY (default 5000) */
	int max_batch;            /* max ops per group-commit transaction (default 512) */
	int backlog;              /* pending ops before callers block; power of two (default 4096) */
	int commit_mode;          /* enum durq_commit_mode (default DURQ_COMMIT_GROUP) */
	int synchronous;          /* enum durq_sync */
	int busy_timeout_ms;      /* SQLite busy_timeout and retry budget (default 5000) */
	size_t max_payload;       /* bytes per payload (default 1 MiB) */
	int max_attempts;         /* deliveries before dead-lettering (default 10) */
	int poll_interval_ms;     /* fallback poll for writes of other processes (default 100) */
	durq_clock_fn clock;      /* NULL = wall clock */
	void *clock_ctx;
	durq_log_fn log;          /* NULL = silent */
	void *log_ctx;
	int log_level;            /* highest level passed to log (default DURQ_LOG_INFO) */
	const char *sqlite_vfs;   /* name of a registered sqlite3 VFS (NULL = default) */
	/* Most entries in one call, each array counted on its own: messages, history events,
	 * work items and cancels of a turn result, messages of durq_orch_enqueue, items of
	 * durq_work_enqueue. More: DURQ_ETOOBIG naming the array, nothing written (a turn keeps
	 * its lease). 1..DURQ_MAX_TURN_ENTRIES_LIMIT (default DURQ_DEFAULT_MAX_TURN_ENTRIES). */
	size_t max_turn_entries;
	/* Who decides about an item or instance delivered more than max_attempts times
	 * (enum durq_poison_policy, default DURQ_POISON_DEAD_LETTER). */
	int poison_policy;
	/* DURQ_POISON_RECORD: kind of the message sent to the parent of an instance the
	 * provider failed (payload = the failed instance's id); 0 = no message. */
	int poison_notify_kind;
} durq_options;

/*
 * Poison handling (issue 10, G13).
 * - DURQ_POISON_DEAD_LETTER: past max_attempts the fetch moves the items (or an instance's
 *   messages) to the dead letters and marks an existing instance and its current
 *   execution FAILED; nothing else is written.
 * - DURQ_POISON_RECORD: the same, and for an existing instance the failure is recorded
 *   where a runtime reads it: output of the instance and execution = the text
 *   "durq:poison attempts=N max_attempts=M" (N = deliveries made), the same bytes appended
 *   as a history event of the current execution (event id = the largest + 1), completion
 *   time set, and, if the instance has a parent and poison_notify_kind != 0, a message of
 *   that kind to the parent whose payload is the failed instance's id. One transaction.
 * - DURQ_POISON_DELIVER: the provider only counts. Items and turns are delivered with
 *   attempt > max_attempts, and the runtime decides (e.g. acks a failing turn itself).
 */
enum durq_poison_policy {
	DURQ_POISON_DEAD_LETTER = 0,
	DURQ_POISON_DELIVER = 1,
	DURQ_POISON_RECORD = 2
};

#define DURQ_OPTIONS_VERSION 1
#define DURQ_OPTIONS_INIT {.version = DURQ_OPTIONS_VERSION}
DURQ_EXTERN int durq_options_init(durq_options *opts, unsigned int version);

/* ---- the handle --------------------------------------------------------------------- */

typedef struct durq durq;

/*
 * Open by URL: "sqlite:path/to.db" (file, created 0600), "sqlite::memory:" (private,
 * concurrent, not durable), "postgresql://user@host:port/db" (a libpq connection URI; PG*
 * variables apply), or a scheme registered with durq_provider_register (durq/provider.h).
 * A query string carries the provider's own settings; sqlite takes vfs=NAME,
 * synchronous=off|normal|full and busy_timeout_ms=N, which override the options of the same
 * meaning (a sqlite path therefore ends at the first '?'). Unknown parameters: DURQ_EINVAL.
 * opts may be NULL. Environment overrides (DURQ_POOL_SIZE,
 * DURQ_SYNCHRONOUS, DURQ_MAX_BATCH, DURQ_GROUP_COMMIT, DURQ_BUSY_TIMEOUT_MS,
 * DURQ_MAX_ATTEMPTS, DURQ_MAX_TURN_ENTRIES) are applied on top of opts and validated; they
 * are read with secure_getenv (ignored by set-user-ID programs), and one that weakens a
 * value the caller set (or lowers synchronous below a file's default FULL) is logged at
 * DURQ_LOG_WARN with tag "CONFIG".
 * Files: the database, its -wal and -shm are made 0600 (also when they existed with another
 * mode); the path's last component is never followed if it is a symbolic link (DURQ_EIO);
 * a database holding a trigger, a view, or a table or index durq did not create is refused
 * with DURQ_ECORRUPT.
 * In-memory databases live on /dev/shm, used only if it is a tmpfs, else DURQ_EIO: nothing
 * falls back to a disk. DURQ_MEMORY_DIR=/abs/dir puts them in that directory instead (the
 * caller's choice, tmpfs or not). Each open one holds a lock on its file; opening one
 * removes the files of those whose process died without closing them.
 */
DURQ_EXTERN int durq_open(durq **out, const char *url, const durq_options *opts);
/* Stop accepting work, complete every pending op, join the committer. Fetchers blocked in
 * a long poll return DURQ_ECLOSED. Later calls on the handle return DURQ_ECLOSED. Safe to
 * call twice, also concurrently: a second call returns only after the first has finished,
 * so durq_free after either is safe. */
DURQ_EXTERN int durq_close(durq *db);
/* Close if needed and release the handle. */
DURQ_EXTERN void durq_free(durq *db);
/* Wake blocked fetchers (e.g. after advancing an injected clock). */
DURQ_EXTERN int durq_wake(durq *db);
/* Current time on the handle's clock. */
DURQ_EXTERN int64_t durq_now(durq *db);

/* ---- enqueue ------------------------------------------------------------------------ */

/* A message for an orchestration instance (start, event, completion, timer, ...). */
typedef struct durq_message {
	const char *instance_id;  /* required, 1..256 bytes */
	int kind;                 /* runtime-defined, stored, never interpreted */
	const void *payload;
	size_t payload_len;
	int64_t visible_at_ms;    /* absolute time (timer); 0 = now */
	int64_t delay_ms;         /* added to commit time; the later of the two wins */
} durq_message;

/* An item for a worker queue: an activity of an orchestration, or plain work. */
typedef struct durq_work {
	const char *queue;        /* NULL or "" = the default queue */
	const char *instance_id;  /* owning orchestration, NULL for plain work */
	uint64_t execution_id;
	uint64_t activity_id;
	int priority;             /* higher first; FIFO within one priority */
	const void *payload;
	size_t payload_len;
	int64_t delay_ms;
} durq_work;

/* At most options.max_turn_entries per call (else DURQ_ETOOBIG, nothing written). */
DURQ_EXTERN int durq_orch_enqueue(durq *db, const durq_message *msgs, size_t n);
DURQ_EXTERN int durq_work_enqueue(durq *db, const durq_work *items, size_t n);

/* ---- worker queue ------------------------------------------------------------------- */

typedef struct durq_work_item {
	int64_t id;
	char *queue;
	char *instance_id;        /* NULL for plain work */
	uint64_t execution_id;
	uint64_t activity_id;
	int priority;
	int attempt;              /* 1 on first delivery */
	void *payload;
	size_t payload_len;
	durq_token token;
	int64_t lease_until_ms;
} durq_work_item;

/*
 * Lease up to max items of queue (NULL = default), waiting up to timeout_ms (0 = do not
 * wait) for one to become ready. *n = items leased (max is capped at 1024); returns
 * DURQ_EMPTY if none. Items of one fetch may share a token: an item is identified by
 * (id, token).
 * Free with durq_work_items_free(items, n).
 */
DURQ_EXTERN int durq_work_fetch(durq *db, durq_work_item **items, size_t *n, const char *queue,
				size_t max, int64_t lease_ms, int timeout_ms);
DURQ_EXTERN void durq_work_items_free(durq_work_item *items, size_t n);
/* Delete the item and, in the same transaction, enqueue completion (may be NULL). */
DURQ_EXTERN int durq_work_ack(durq *db, int64_t id, const durq_token *token,
			      const durq_message *completion);
/* Release the lease; visible again after delay_ms; ignore_attempt undoes this delivery's
 * attempt count (never below 0). */
DURQ_EXTERN int durq_work_abandon(durq *db, int64_t id, const durq_token *token, int64_t delay_ms,
				  int ignore_attempt);
/* Extend a live lease to now + lease_ms; never revives an expired one. lease_until_ms may
 * be NULL. */
DURQ_EXTERN int durq_work_renew(durq *db, int64_t *lease_until_ms, int64_t id,
				const durq_token *token, int64_t lease_ms);

/* ---- orchestrations ----------------------------------------------------------------- */

enum durq_status {
	DURQ_STATUS_PENDING = 0, /* no turn acked yet (never stored) */
	DURQ_STATUS_RUNNING = 1,
	DURQ_STATUS_COMPLETED = 2,
	DURQ_STATUS_FAILED = 3,
	DURQ_STATUS_CONTINUED_AS_NEW = 4,
	DURQ_STATUS_TERMINATED = 5
};

typedef struct durq_event {
	uint64_t event_id;
	const void *payload;
	size_t payload_len;
} durq_event;

typedef struct durq_turn_message {
	int64_t id;
	int kind;
	void *payload;
	size_t payload_len;
	int attempt;
} durq_turn_message;

typedef struct durq_turn {
	char *instance_id;
	durq_token token;
	int64_t lease_until_ms;
	int attempt;                  /* max over the messages */
	int exists;                   /* 1 once a turn has been acked */
	uint64_t execution_id;        /* current execution (0 if !exists) */
	int status;
	char *name;                   /* the current execution's name and version (G5) */
	char *version;
	durq_turn_message *messages;  /* ordered by arrival */
	size_t n_messages;
	durq_event *history;          /* current execution, ordered by event id */
	size_t n_history;
} durq_turn;

/* A cancelled activity of this instance. */
typedef struct durq_activity_ref {
	uint64_t execution_id;
	uint64_t activity_id;
} durq_activity_ref;

/* Everything one turn commits, atomically. Limits (checked before anything is written; a
 * refused result keeps the lease): each of n_history, n_work, n_cancel, n_messages at most
 * options.max_turn_entries, all payload bytes together at most DURQ_TURN_PAYLOAD_FACTOR *
 * options.max_payload (DURQ_ETOOBIG); name and version_tag at most DURQ_NAME_MAX bytes,
 * parent_id at most DURQ_INSTANCE_ID_MAX (DURQ_EINVAL). */
typedef struct durq_turn_result {
	unsigned int version;         /* DURQ_TURN_RESULT_VERSION */
	uint64_t execution_id;        /* 0 = current (1 for a new instance); current+1 = continue-as-new;
				       * anything else is DURQ_EINVAL (the lease is kept) */
	/* Name and version belong to an execution (G5). The first turn stores them with
	 * execution 1; a NULL one is filled by the first later ack of that execution giving
	 * one, and once set it does not change within the execution. A continue-as-new turn
	 * (execution_id = current + 1) starts the new execution with the name and version it
	 * gives, or those of the previous execution where it gives NULL. The instance (and
	 * durq_turn) always shows the current execution's. */
	const char *name;
	const char *version_tag;
	const char *parent_id;
	int status;                   /* enum durq_status to set; 0 = leave it as stored (a new
				       * instance starts RUNNING): a late message's turn for a
				       * COMPLETED instance keeps it COMPLETED */
	const void *output;           /* NULL = leave the stored output as it is */
	size_t output_len;
	int set_custom_status;        /* 1 = store custom_status and bump its version; NULL/0
				       * clears it (read back as custom_status NULL, len 0) */
	const void *custom_status;
	size_t custom_status_len;
	const durq_event *history;    /* delta appended to the execution */
	size_t n_history;
	const durq_work *work;        /* activities scheduled */
	size_t n_work;
	const durq_activity_ref *cancel; /* applied after work: schedule+cancel = no-op */
	size_t n_cancel;
	const durq_message *messages; /* orchestrator items and timers (visible_at_ms) */
	size_t n_messages;
	unsigned int flags;           /* enum durq_turn_flags */
} durq_turn_result;

enum durq_turn_flags {
	/* Discard the turn (G7): delete exactly the messages this lease tagged and release the
	 * lease; nothing else happens: no instance or execution is created or changed, and
	 * messages that arrived after the fetch stay queued. The result must carry nothing
	 * else (no history, work, cancels, messages, status, output, custom status, name,
	 * version, parent, execution id), else DURQ_EINVAL and the lease is kept. For a
	 * runtime that receives messages for an instance that was never started. */
	DURQ_TURN_DISCARD = 1u
};

#define DURQ_TURN_RESULT_VERSION 1
#define DURQ_TURN_RESULT_INIT {.version = DURQ_TURN_RESULT_VERSION}

/* Lease the oldest instance with a visible message and no live lease. */
DURQ_EXTERN int durq_orch_fetch(durq *db, durq_turn **out, int64_t lease_ms, int timeout_ms);
DURQ_EXTERN void durq_turn_free(durq_turn *turn);
DURQ_EXTERN int durq_orch_ack(durq *db, const char *instance_id, const durq_token *token,
			      const durq_turn_result *result);
DURQ_EXTERN int durq_orch_abandon(durq *db, const char *instance_id, const durq_token *token,
				  int64_t delay_ms, int ignore_attempt);
DURQ_EXTERN int durq_orch_renew(durq *db, int64_t *lease_until_ms, const char *instance_id,
				const durq_token *token, int64_t lease_ms);

/* ---- asynchronous writes -----------------------------------------------------------
 *
 * Every write has a form that returns as soon as the op is queued and reports its result
 * later, only after the COMMIT that made it durable (or with its failure), so one thread can
 * keep hundreds of acks in flight and one transaction carries all of them.
 *
 * - A *_async call that returns DURQ_OK completes exactly once: its done callback is called
 *   and it counts down its group. One that returns an error never completes.
 * - Inputs are copied at submit: the caller's buffers may be reused as soon as it returns.
 * - The callback runs on the committer thread (group mode) after the commit, with no durq
 *   lock held, in submission order within a batch; in per-op mode it runs on the submitting
 *   thread before the submit call returns. It may submit more async ops (from the committer
 *   thread these never block, whatever the flags), read, and signal its own threads. Anything
 *   that would wait for ops (a synchronous write, durq_flush, durq_work_ack_many,
 *   durq_group_wait with a timeout other than 0, durq_close) fails with DURQ_EINVAL there:
 *   those ops need the very thread that runs the callback. Keep it short: it delays the next
 *   batch.
 * - Backpressure: when `backlog` ops are pending, a submit blocks until there is room, or
 *   with DURQ_SUBMIT_NOWAIT returns DURQ_EAGAIN (retryable) at once.
 * - durq_close completes every submitted op (committing it) before it returns.
 */

/* What an async op reports. Valid only during the callback. */
typedef struct durq_completion {
	int rc;                   /* DURQ_OK once durable, else the op's error */
	const char *message;      /* error text ("" on success) */
	int kind;                 /* enum durq_op_kind */
	int64_t lease_until_ms;   /* renew: the new lease end */
	size_t count;             /* execution_prune: executions pruned; instance_delete_many,
				   * instance_purge: instances deleted */
} durq_completion;

typedef void (*durq_done_fn)(void *ctx, const durq_completion *c);

enum durq_submit_flags {
	DURQ_SUBMIT_NOWAIT = 1u /* backlog full: DURQ_EAGAIN instead of blocking */
};

/* A set of async ops to wait for. Thread-safe. */
typedef struct durq_group durq_group;

typedef struct durq_async {
	durq_done_fn done;        /* may be NULL */
	void *ctx;
	durq_group *group;        /* may be NULL */
	unsigned int flags;       /* enum durq_submit_flags */
} durq_async;

DURQ_EXTERN int durq_group_new(durq_group **out);
/* Wait until every op added to the group so far has completed, at most timeout_ms (< 0 =
 * no limit). *failed (may be NULL) = how many of the group's ops failed so far.
 * DURQ_OK, or DURQ_ETIMEDOUT if some are still pending. */
DURQ_EXTERN int durq_group_wait(durq_group *g, int timeout_ms, size_t *failed);
/* Release the group; safe while ops are pending (it lives until they complete). */
DURQ_EXTERN void durq_group_free(durq_group *g);

/* Every op submitted before this call (by any thread) is completed when it returns DURQ_OK;
 * DURQ_ETIMEDOUT after timeout_ms (< 0 = no limit). */
DURQ_EXTERN int durq_flush(durq *db, int timeout_ms);

DURQ_EXTERN int durq_orch_enqueue_async(durq *db, const durq_message *msgs, size_t n,
					const durq_async *a);
DURQ_EXTERN int durq_work_enqueue_async(durq *db, const durq_work *items, size_t n,
					const durq_async *a);
DURQ_EXTERN int durq_work_ack_async(durq *db, int64_t id, const durq_token *token,
				    const durq_message *completion, const durq_async *a);
DURQ_EXTERN int durq_work_abandon_async(durq *db, int64_t id, const durq_token *token,
					int64_t delay_ms, int ignore_attempt, const durq_async *a);
DURQ_EXTERN int durq_work_renew_async(durq *db, int64_t id, const durq_token *token,
				      int64_t lease_ms, const durq_async *a);
DURQ_EXTERN int durq_orch_ack_async(durq *db, const char *instance_id, const durq_token *token,
				    const durq_turn_result *result, const durq_async *a);
DURQ_EXTERN int durq_orch_abandon_async(durq *db, const char *instance_id,
					const durq_token *token, int64_t delay_ms,
					int ignore_attempt, const durq_async *a);
DURQ_EXTERN int durq_orch_renew_async(durq *db, const char *instance_id, const durq_token *token,
				      int64_t lease_ms, const durq_async *a);
DURQ_EXTERN int durq_dead_requeue_async(durq *db, int64_t dead_id, const durq_async *a);
DURQ_EXTERN int durq_instance_delete_async(durq *db, const char *instance_id,
					   const durq_async *a);

/* One ack of a batch. */
typedef struct durq_work_ack_req {
	int64_t id;
	const durq_token *token;
	const durq_message *completion; /* may be NULL */
} durq_work_ack_req;

/* Ack n items, each independently (one failing fails alone); returns after every one is
 * durable or failed. rcs[i] (may be NULL) = each ack's result. DURQ_OK if all succeeded, else
 * the first failure's code. */
DURQ_EXTERN int durq_work_ack_many(durq *db, const durq_work_ack_req *reqs, size_t n, int *rcs);

/* ---- reads and management ----------------------------------------------------------- */

typedef struct durq_instance_info {
	char *id;
	char *name;
	char *version;
	char *parent_id;
	uint64_t execution_id;
	int status;
	void *output;
	size_t output_len;
	void *custom_status;
	size_t custom_status_len;
	uint64_t custom_status_version;
	int64_t created_ms;
	int64_t updated_ms;
} durq_instance_info;

typedef struct durq_execution_info {
	uint64_t execution_id;
	int status;
	size_t n_events;
	int64_t created_ms;
	int64_t updated_ms;
	/* When the execution ended: a turn set COMPLETED, FAILED or TERMINATED, the provider
	 * failed it (poison), or a continue-as-new closed it. 0 while it runs (also after a
	 * turn set RUNNING again). G10. */
	int64_t completed_ms;
	char *name;               /* the execution's name and version (G5), NULL if none */
	char *version;
	void *output;             /* durq_execution_get only (NULL in durq_execution_list) */
	size_t output_len;
} durq_execution_info;

typedef struct durq_dead_letter {
	int64_t id;
	int source;                /* DURQ_DEAD_ORCH or DURQ_DEAD_WORK */
	char *queue;
	char *instance_id;
	uint64_t execution_id;
	uint64_t activity_id;
	int kind;
	int attempt;
	void *payload;
	size_t payload_len;
	int64_t dead_at_ms;
} durq_dead_letter;

enum { DURQ_DEAD_ORCH = 1, DURQ_DEAD_WORK = 2 };

typedef struct durq_queue_depths {
	int64_t orch_ready, orch_delayed, orch_leased;
	int64_t work_ready, work_delayed, work_leased;
	int64_t dead_letters;
	int64_t instances_locked;
} durq_queue_depths;

DURQ_EXTERN int durq_instance_get(durq *db, durq_instance_info **out, const char *instance_id);
DURQ_EXTERN void durq_instance_info_free(durq_instance_info *info);
/* Every instance id with the status (status < 0 = any), in byte order of the id. Refuses
 * with DURQ_ETOOBIG (and returns nothing) when more than DURQ_INSTANCE_LIST_MAX match: use
 * durq_instance_list_page then. Free with durq_strings_free. */
DURQ_EXTERN int durq_instance_list(durq *db, char ***ids, size_t *n, int status);
/* One page of instance ids with the status (status < 0 = any), in byte order of the id,
 * each greater than after_id (NULL = from the first). max 0 = DURQ_INSTANCE_PAGE_DEFAULT;
 * larger than DURQ_INSTANCE_LIST_MAX is clamped to it. *n < max means the last page; the
 * next page starts after the last id returned. Keyset paging: instances created or deleted
 * meanwhile never make a page repeat or skip an id that stays. Free with durq_strings_free. */
DURQ_EXTERN int durq_instance_list_page(durq *db, char ***ids, size_t *n, int status,
					const char *after_id, size_t max);
DURQ_EXTERN void durq_strings_free(char **strings, size_t n);
/* execution_id 0 = current execution. DURQ_ENOTFOUND if the instance does not exist; an
 * execution it never had (or one pruned) reads as DURQ_OK with no events.
 * Free with durq_events_free. */
DURQ_EXTERN int durq_history_read(durq *db, durq_event **events, size_t *n,
				  const char *instance_id, uint64_t execution_id);
DURQ_EXTERN void durq_events_free(durq_event *events, size_t n);
DURQ_EXTERN int durq_execution_list(durq *db, durq_execution_info **out, size_t *n,
				    const char *instance_id);
/* Every execution with its name, version and times (output NULL: see durq_execution_get).
 * Free with durq_execution_list_free. */
DURQ_EXTERN void durq_execution_list_free(durq_execution_info *list);
/* Delete an instance with its queues, lock and history, whatever its status; its
 * children are left alone (for the checked, cascading delete see
 * durq_instance_delete_many). */
DURQ_EXTERN int durq_instance_delete(durq *db, const char *instance_id);
/* Delete executions older than before_execution_id; never the current one. */
DURQ_EXTERN int durq_execution_prune(durq *db, size_t *pruned, const char *instance_id,
				     uint64_t before_execution_id);
DURQ_EXTERN int durq_dead_list(durq *db, durq_dead_letter **out, size_t *n, size_t max);
DURQ_EXTERN void durq_dead_letters_free(durq_dead_letter *list, size_t n);
/* Put a dead letter back on its queue with attempt 0. */
DURQ_EXTERN int durq_dead_requeue(durq *db, int64_t dead_id);
/* queue: a worker queue name, or NULL for all worker queues. */
DURQ_EXTERN int durq_queue_depths_get(durq *db, durq_queue_depths *out, const char *queue);

/* ---- hierarchy, deletion and retention (issue 10: G8, G9) --------------------------- */

/* What a delete removed (the struct may grow: durq sets version). */
typedef struct durq_delete_counts {
	unsigned int version;      /* DURQ_DELETE_COUNTS_VERSION, set by durq */
	uint64_t instances;
	uint64_t executions;
	uint64_t events;           /* history rows */
	uint64_t messages;         /* orchestrator messages and worker items */
} durq_delete_counts;
#define DURQ_DELETE_COUNTS_VERSION 1

enum durq_delete_flags {
	DURQ_DELETE_FORCE = 1u /* also instances not finished, and sub-orchestrations named
				* directly */
};

/*
 * Delete the n instances ids[] and every descendant of each (instances whose parent_id
 * leads to it), with their executions, history, queued messages, worker items and locks:
 * all in one transaction, or nothing. Without DURQ_DELETE_FORCE the call is refused with
 * DURQ_ECONFLICT (nothing deleted) if any instance it would delete is not COMPLETED,
 * FAILED or TERMINATED, or if an id names a sub-orchestration whose parent exists and is
 * not deleted by the same call. DURQ_ENOTFOUND if an id names no instance. n is 1 ..
 * max_turn_entries (else DURQ_EINVAL / DURQ_ETOOBIG). counts (may be NULL) = what went.
 * Sync: returns after COMMIT; the async form reports counts.instances in
 * durq_completion.count.
 */
DURQ_EXTERN int durq_instance_delete_many(durq *db, durq_delete_counts *counts,
					  const char *const *ids, size_t n, unsigned int flags);
DURQ_EXTERN int durq_instance_delete_many_async(durq *db, const char *const *ids, size_t n,
						unsigned int flags, const durq_async *a);
/* The direct children of an instance (instances whose parent_id is it), in byte order of
 * the id; none is DURQ_OK with n = 0. Free with durq_strings_free. */
DURQ_EXTERN int durq_instance_children(durq *db, char ***ids, size_t *n,
				       const char *instance_id);
/* The instance and all its descendants: the instance first, then by depth, then by id.
 * DURQ_ENOTFOUND if the instance does not exist. Free with durq_strings_free. */
DURQ_EXTERN int durq_instance_tree(durq *db, char ***ids, size_t *n, const char *instance_id);

/*
 * Retention: delete up to limit (1..DURQ_INSTANCE_LIST_MAX) top-level instances (no
 * parent_id, or a parent that no longer exists) that finished (COMPLETED, FAILED,
 * TERMINATED) before completed_before_ms, oldest first, each with its descendants, in one
 * transaction. Running instances are never touched; a tree in which some descendant is
 * still running is skipped whole. counts (may be NULL) = what went.
 */
DURQ_EXTERN int durq_instance_purge(durq *db, durq_delete_counts *counts,
				    int64_t completed_before_ms, size_t limit);
DURQ_EXTERN int durq_instance_purge_async(durq *db, int64_t completed_before_ms, size_t limit,
					  const durq_async *a);

typedef struct durq_prune_options {
	unsigned int version;         /* DURQ_PRUNE_OPTIONS_VERSION */
	uint64_t keep_last;           /* keep the newest N executions (the current counts); 0 =
				       * no such bound */
	int64_t completed_before_ms;  /* only executions that ended before; 0 = no such bound */
} durq_prune_options;
#define DURQ_PRUNE_OPTIONS_VERSION 1
#define DURQ_PRUNE_OPTIONS_INIT {.version = DURQ_PRUNE_OPTIONS_VERSION}

/* Delete executions (and their history) that satisfy every bound given, never the current
 * one; at least one bound is required (DURQ_EINVAL). instance_id NULL = every instance.
 * DURQ_ENOTFOUND for a named instance that does not exist. */
DURQ_EXTERN int durq_execution_prune_ex(durq *db, size_t *pruned, const char *instance_id,
					const durq_prune_options *opts);

/* A filter for durq_instance_list_filter: zero fields match anything. */
typedef struct durq_instance_filter {
	unsigned int version;        /* DURQ_INSTANCE_FILTER_VERSION */
	int status;                  /* enum durq_status; 0 = any */
	const char *name;            /* exact name of the current execution; NULL = any */
	const char *version_tag;     /* exact version; NULL = any */
	int64_t created_from_ms;     /* created_ms >= this */
	int64_t created_before_ms;   /* created_ms < this; 0 = no bound */
	int64_t completed_from_ms;   /* completed_ms >= this (unfinished never match a bound) */
	int64_t completed_before_ms; /* completed_ms < this; 0 = no bound */
} durq_instance_filter;
#define DURQ_INSTANCE_FILTER_VERSION 1
#define DURQ_INSTANCE_FILTER_INIT {.version = DURQ_INSTANCE_FILTER_VERSION}

/* One keyset page of ids matching f (NULL = all), like durq_instance_list_page. */
DURQ_EXTERN int durq_instance_list_filter(durq *db, char ***ids, size_t *n,
					  const durq_instance_filter *f, const char *after_id,
					  size_t max);

/* ---- per-execution and system reads (issue 10: G10, G11, G12) ---------------------- */

/* One execution with its output (execution_id 0 = current). DURQ_ENOTFOUND if the
 * instance or that execution does not exist (pruned ones included). Free with
 * durq_execution_info_free. */
DURQ_EXTERN int durq_execution_get(durq *db, durq_execution_info **out,
				   const char *instance_id, uint64_t execution_id);
DURQ_EXTERN void durq_execution_info_free(durq_execution_info *info);

typedef struct durq_system_counts {
	unsigned int version;        /* set by durq: DURQ_SYSTEM_COUNTS_VERSION */
	uint64_t instances;          /* all stored instances */
	uint64_t running, completed, failed, terminated;
	uint64_t executions;         /* stored executions (pruned ones not counted) */
	uint64_t events;             /* stored history events */
} durq_system_counts;
#define DURQ_SYSTEM_COUNTS_VERSION 1

/* Counts over the whole database, from one snapshot. */
DURQ_EXTERN int durq_system_counts_get(durq *db, durq_system_counts *out);

/*
 * Poll an instance's custom status without copying the rest: when its version is greater
 * than last_seen_version, DURQ_OK with *value (malloc'd copy, free with free(); NULL with
 * *len 0 when it was cleared) and *version; when not, DURQ_EMPTY with *value NULL and
 * *version = the stored version. DURQ_ENOTFOUND if the instance does not exist.
 */
DURQ_EXTERN int durq_custom_status_get(durq *db, void **value, size_t *len, uint64_t *version,
				       const char *instance_id, uint64_t last_seen_version);

/* ---- configuration read-back -------------------------------------------------------- */

/* The effective options after defaults and environment overrides. */
DURQ_EXTERN int durq_options_get(durq *db, durq_options *out);
/* Read back one PRAGMA as the database reports it, e.g. "journal_mode" -> "wal".
 * Allowed names: journal_mode synchronous busy_timeout foreign_keys temp_store cache_size
 * mmap_size wal_autocheckpoint journal_size_limit trusted_schema page_size. */
DURQ_EXTERN int durq_pragma_get(durq *db, char *buf, size_t len, const char *name);

/* ---- stats -------------------------------------------------------------------------- */

enum durq_op_kind {
	DURQ_OP_ORCH_ENQUEUE = 0,
	DURQ_OP_WORK_ENQUEUE,
	DURQ_OP_ORCH_CLAIM,
	DURQ_OP_ORCH_ACK,
	DURQ_OP_ORCH_ABANDON,
	DURQ_OP_ORCH_RENEW,
	DURQ_OP_WORK_CLAIM,
	DURQ_OP_WORK_ACK,
	DURQ_OP_WORK_ABANDON,
	DURQ_OP_WORK_RENEW,
	DURQ_OP_DEAD_REQUEUE,
	DURQ_OP_INSTANCE_DELETE,
	DURQ_OP_EXECUTION_PRUNE,
	DURQ_OP_INSTANCE_DELETE_MANY, /* durq_instance_delete_many */
	DURQ_OP_INSTANCE_PURGE,       /* durq_instance_purge */
	DURQ_OP__COUNT
};

DURQ_EXTERN const char *durq_op_kind_name(int kind);

#define DURQ_STATS_BUCKETS 12 /* ops/txn histogram: 1, 2-3, 4-7, ..., >= 2048 */

/* Latency histograms (durq_latency) have DURQ_LATENCY_BUCKETS buckets: bucket i counts the
 * durations d with bound[i-1] < d <= bound[i], bound[] = DURQ_LATENCY_BOUNDS_US in
 * microseconds (log-spaced 100 us .. 10 s, bound[-1] = 0); the last bucket has no upper
 * bound (+Inf). Usable as an initializer: static const uint64_t b[] = DURQ_LATENCY_BOUNDS_US; */
#define DURQ_LATENCY_BUCKETS 17
#define DURQ_LATENCY_BOUNDS_US                                                          \
	{100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,  \
	 1000000, 2500000, 5000000, 10000000}

typedef struct durq_latency {
	uint64_t count;                        /* samples: the sum of buckets[] */
	uint64_t sum_ns;                       /* their durations, summed */
	uint64_t buckets[DURQ_LATENCY_BUCKETS]; /* per bucket, not cumulative */
} durq_latency;

typedef struct durq_stats {
	uint64_t ops[DURQ_OP__COUNT];     /* committed or failed, by kind */
	uint64_t op_failures;             /* ops that returned an error other than EMPTY */
	uint64_t transactions;            /* committed write transactions */
	uint64_t txn_ops;                 /* ops carried by those transactions */
	uint64_t max_ops_per_txn;
	double mean_ops_per_txn;
	uint64_t ops_per_txn_hist[DURQ_STATS_BUCKETS];
	uint64_t commit_failures;
	uint64_t commit_ns_total;         /* BEGIN..COMMIT time, summed */
	uint64_t commit_ns_max;
	uint64_t busy_retries;            /* SQLITE_BUSY seen and retried (hidden from callers) */
	uint64_t busy_surfaced;           /* DURQ_EBUSY returned to callers */
	uint64_t backlog_waits;           /* callers blocked because the backlog was full */
	uint64_t pool_checkouts;
	uint64_t pool_waits;
	uint64_t pool_wait_ns;
	uint64_t pool_in_use;
	uint64_t pool_size;
	durq_queue_depths depths;         /* read at the time of the call */
	uint64_t db_bytes;                /* database file size (0 if the provider can't tell) */
	uint64_t wal_bytes;               /* write-ahead log size (0 if none) */
	durq_latency commit_latency;      /* BEGIN..COMMIT of each committed write transaction */
	durq_latency work_ack_latency;    /* work acks that succeeded: submit -> durable */
	durq_latency orch_ack_latency;    /* orchestration acks (turns) that succeeded: likewise */
} durq_stats;

DURQ_EXTERN int durq_stats_get(durq *db, durq_stats *out);
/**
 * Write the handle's stats in the Prometheus text exposition format (version 0.0.4).
 *
 * This is the embedding API for metrics: durq runs no HTTP server of its own. A program
 * that already serves HTTP answers its `/metrics` route with this text, sent with the
 * header `Content-Type: text/plain; version=0.0.4; charset=utf-8`:
 *
 * @code
 * size_t need = 0;
 * durq_stats_prometheus(db, NULL, 0, &need);       // sizing call: DURQ_OK, need = length
 * size_t len = need + 1024;                        // counters may grow in between
 * char *text = malloc(len);
 * int rc = durq_stats_prometheus(db, text, len, &need);
 * if (rc == DURQ_OK)
 *         reply(200, "text/plain; version=0.0.4; charset=utf-8", text, need);
 * else                                             // DURQ_ETOOBIG: retry with need + 1
 *         reply(500, "text/plain", durq_error_last(), strlen(durq_error_last()));
 * free(text);
 * @endcode
 *
 * `durq serve-metrics URL --listen ADDR` serves the same text from a process of its own:
 * there the depths and sizes are the database's, the counters only its own handle's.
 * Families (each with `# HELP` and `# TYPE`; counters end in `_total`):
 * `durq_ops_total{op}` (op = durq_op_kind_name()), `durq_op_failures_total`,
 * `durq_transactions_total`, `durq_transaction_failures_total`, the histograms
 * `durq_transaction_ops` (ops per committed transaction), `durq_commit_duration_seconds`
 * (BEGIN..COMMIT) and `durq_ack_latency_seconds{op="work_ack"|"orch_ack"}` (acks that
 * succeeded, submit to durable: until a synchronous call returned, or until the commit
 * completed an asynchronous one), with cumulative `le` buckets (DURQ_LATENCY_BOUNDS_US in
 * seconds, then `+Inf`), `_sum` and `_count`; the gauges `durq_transaction_ops_max`,
 * `durq_commit_duration_max_seconds`; `durq_busy_retries_total`,
 * `durq_busy_surfaced_total`, `durq_backlog_waits_total`, `durq_pool_checkouts_total`,
 * `durq_pool_waits_total`, `durq_pool_wait_seconds_total`; the gauges
 * `durq_pool_connections_in_use`, `durq_pool_connections`,
 * `durq_queue_depth{queue_kind="orch"|"work",state="ready"|"delayed"|"leased"}`,
 * `durq_dead_letters`, `durq_instances_locked`, `durq_db_bytes`, `durq_wal_bytes`.
 * Counters count since durq_open of this handle (one process), the depths and sizes are
 * the database's, read at the call.
 *
 * Cost: one durq_stats_get(), i.e. a read on a pool connection (queue depth counts) and
 * no write; scrape every few seconds, not in a tight loop.
 * Thread safety: any thread, concurrently with every other call on the handle.
 *
 * @param db      an open handle
 * @param buf     where the text goes, NUL-terminated; may be NULL when @p len is 0
 * @param len     size of @p buf in bytes
 * @param needed  (may be NULL) set to the text's length in bytes, without the NUL, also
 *                when @p buf is too small
 * @return DURQ_OK (also for the sizing call buf = NULL, len = 0); DURQ_ETOOBIG if the text
 *         and its NUL do not fit in @p len bytes (@p buf then holds a cut, NUL-terminated
 *         prefix); DURQ_EINVAL if @p db is NULL; DURQ_ECLOSED after durq_close(); the read's
 *         error (DURQ_EBUSY pool timeout, DURQ_EIO, ...) as for durq_stats_get().
 */
DURQ_EXTERN int durq_stats_prometheus(durq *db, char *buf, size_t len, size_t *needed);

#ifdef __cplusplus
}
#endif
#endif /* DURQ_H */
