/**
 * @file
 * durq.h — the public API of durq, the storage provider of a durable workflow runtime.
 *
 * Owns: the opaque handle, versioned option structs, the queue / lease / history calls,
 * error codes and stats. Does not own: SQL, connections, threads (see src/ and providers/).
 * Payloads are opaque bytes; durq never parses them.
 *
 * Conventions (libgit2 style): out-parameters come first after the handle; every call
 * returns DURQ_OK (0) or a negative DURQ_E* code and leaves a per-thread message readable
 * with durq_error_last(); every object returned has its own _free function.
 *
 * Thread safety: every call on a handle may be made from any thread, concurrently with any
 * other call on it, except durq_free() (after which the handle is gone); the calls that
 * wait for writes (synchronous writes, durq_flush(), durq_work_ack_many(), durq_close())
 * fail with DURQ_EINVAL from a durq callback on the writing thread (see durq_log_fn and
 * the asynchronous writes). Ownership: inputs stay the caller's (durq copies what it keeps);
 * outputs are the caller's, freed with the _free function each call names.
 * Operating guide: docs/OPERATIONS.md.
 */
#ifndef DURQ_H
#define DURQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @def DURQ_EXTERN
 * Marks a symbol durq exports (default visibility; the library hides the rest).
 */
#if defined(__GNUC__)
#define DURQ_EXTERN __attribute__((visibility("default")))
#else
#define DURQ_EXTERN
#endif

/** The library version, "major.minor.patch". */
#define DURQ_VERSION_STRING "0.1.0"

/* ---- errors ------------------------------------------------------------------------- */

/** Result codes: DURQ_OK (0) or a negative error; durq_error_last() holds the message. */
enum durq_error {
	DURQ_OK = 0, /**< success */
	DURQ_EMPTY = -1,     /**< nothing to fetch (not a failure) */
	DURQ_EBUSY = -2,     /**< database busy after all retries: retryable */
	DURQ_ELOCKLOST = -3, /**< token unknown, forged, or its lease expired */
	DURQ_EDUP = -4,      /**< duplicate (e.g. history event id already stored) */
	DURQ_ENOTFOUND = -5, /**< no such instance / dead letter */
	DURQ_EINVAL = -6,    /**< bad argument or option; message says which */
	DURQ_ETOOBIG = -7,   /**< over a size limit: payload, entries per call, turn, list */
	DURQ_ECORRUPT = -8,  /**< database corrupt or schema from a newer durq */
	DURQ_ENOMEM = -9,    /**< out of memory */
	DURQ_EIO = -10,      /**< I/O error, cannot open path: retryable once the fault clears.
			      * From a write call: OUTCOME UNKNOWN. If the flush at COMMIT failed,
			      * the op is not applied in this process, but the failed flush may
			      * have written it: after a crash and reopen it may be there. With
			      * the deferred flush (a file database, synchronous=FULL, group mode:
			      * the fsync runs after the COMMIT, on the flush thread) the op is
			      * applied and visible, and may or may not survive a crash; so is
			      * every op committed after that flush until durq recovered (a
			      * TRUNCATE checkpoint, at the next batch). Either way: an enqueue
			      * retried may be there twice (at-least-once), an ack retried may
			      * find its lease gone (DURQ_ELOCKLOST). */
	DURQ_EFULL = -11,    /**< disk full: retryable once space is freed */
	DURQ_ECLOSED = -12,  /**< handle was closed */
	DURQ_EAGAIN = -13,   /**< async submit with DURQ_SUBMIT_NOWAIT: backlog full, retry later */
	DURQ_ETIMEDOUT = -14, /**< durq_flush / durq_group_wait: the ops are not all done yet */
	DURQ_ECONFLICT = -15  /**< the instance's state forbids the call (deleting a running
			       * instance or a sub-orchestration without DURQ_DELETE_FORCE) */
};

/** Message of the last error raised on this thread ("" if none). Valid until the next call.
 * @return the message, "" if none; owned by durq, valid until the next durq call on this
 *         thread
 */
DURQ_EXTERN const char *durq_error_last(void);
/** Symbolic name of a code, e.g. "DURQ_ELOCKLOST".
 * @param code a DURQ_E* code (or DURQ_OK)
 * @return a static string; "DURQ_E?" for a code durq does not define
 */
DURQ_EXTERN const char *durq_error_name(int code);
/** 1 if retrying the same call later may succeed (EBUSY, EIO, EFULL, EAGAIN, ETIMEDOUT).
 * @param code a DURQ_E* code
 * @return 1 or 0
 */
DURQ_EXTERN int durq_error_retryable(int code);

/* ---- limits and small types --------------------------------------------------------- */

/** bytes, not counting the NUL. Instance ids, queue names, session ids and key/value keys
 * must be valid UTF-8 on every provider (else DURQ_EINVAL, nothing written). */
#define DURQ_INSTANCE_ID_MAX 256
#define DURQ_QUEUE_NAME_MAX 256 /**< bytes, not counting the NUL */
/** Longest session id (durq_work.session_id) and owner id (durq_session_owner.owner_id), in
 * bytes, not counting the NUL (G1; longer or empty: DURQ_EINVAL). */
#define DURQ_SESSION_ID_MAX 256
/** Orchestration name and version tag of a turn result (longer: DURQ_EINVAL). parent_id is an
 * instance id and so capped at DURQ_INSTANCE_ID_MAX. */
#define DURQ_NAME_MAX 256
/** Default options.max_payload: 1 MiB. */
#define DURQ_DEFAULT_MAX_PAYLOAD (1024 * 1024)
/** options.max_turn_entries: default and upper bound (see durq_options). */
#define DURQ_DEFAULT_MAX_TURN_ENTRIES 10000
/** Upper bound of options.max_turn_entries. */
#define DURQ_MAX_TURN_ENTRIES_LIMIT 1000000
/** One turn result carries at most this many times options.max_payload bytes of payload
 * (output + custom status + history + messages + work), else DURQ_ETOOBIG. */
#define DURQ_TURN_PAYLOAD_FACTOR 64
/** durq_instance_list refuses to return more ids than this (DURQ_ETOOBIG: page instead with
 * durq_instance_list_page, whose max is clamped to it); a page's default size. */
#define DURQ_INSTANCE_LIST_MAX 100000
/** Page size of durq_instance_list_page() and durq_instance_list_filter() when max is 0. */
#define DURQ_INSTANCE_PAGE_DEFAULT 1000

/** A lease token: 128 random bits. */
typedef struct durq_token {
	unsigned char bytes[16]; /**< the bits, compared as a whole */
} durq_token;

/** Milliseconds since the Unix epoch. Injectable so tests never sleep to expire a lease. */
typedef int64_t (*durq_clock_fn)(void *ctx);

/** Log levels, most severe first (options.log_level passes this level and the ones above). */
enum durq_log_level { DURQ_LOG_ERROR = 1, DURQ_LOG_WARN = 2, DURQ_LOG_INFO = 3, DURQ_LOG_DEBUG = 4 };
/** tag is a short category: "CONFIG", "RETRY", "COMMIT", "POOL", "POISON", ...
 * The callback is called with no durq lock held, but it may run on any thread: the
 * caller's, the committer's or flush thread's, or inside a write transaction (per-op
 * mode). It may call
 * durq's reads (stats, depths, instance and history reads). A write call (enqueue, fetch,
 * ack, ...) or durq_close made from the callback on the thread that is writing would wait
 * for itself, so it fails at once with DURQ_EINVAL; hand such work to another thread.
 * Keep it short: on a write thread it delays every pending op. */
typedef void (*durq_log_fn)(void *ctx, int level, const char *tag, const char *message);

/** How writes reach the database (options.commit_mode). */
enum durq_commit_mode {
	DURQ_COMMIT_GROUP = 0, /**< default: one committer thread, many ops per transaction */
	DURQ_COMMIT_PER_OP = 1 /**< classic: one BEGIN IMMEDIATE per op on the caller's thread */
};

/** Durability of a commit (options.synchronous); see docs/OPERATIONS.md for what each risks. */
enum durq_sync {
	DURQ_SYNC_DEFAULT = 0, /**< FULL for files, OFF for the in-memory provider */
	DURQ_SYNC_OFF = 1, /**< never flush (see docs/OPERATIONS.md) */
	DURQ_SYNC_NORMAL = 2, /**< flush at checkpoints only */
	DURQ_SYNC_FULL = 3 /**< flush every commit (files: the default) */
};

/* ---- options (versioned; zero means "default" for every numeric field) -------------- */

/** Options of durq_open(), versioned; zero means "default" for every numeric field. Copied by durq_open(). */
typedef struct durq_options {
	unsigned int version;     /**< DURQ_OPTIONS_VERSION */
	int pool_size;            /**< read connections, 5..20 (default 8) */
	int pool_timeout_ms;      /**< pool checkout wait before DURQ_EBUSY (default 5000) */
	int max_batch;            /**< max ops per group-commit transaction (default 512) */
	int backlog;              /**< pending ops before callers block; power of two (default 4096) */
	int commit_mode;          /**< enum durq_commit_mode (default DURQ_COMMIT_GROUP) */
	int synchronous;          /**< enum durq_sync */
	int busy_timeout_ms;      /**< SQLite busy_timeout and retry budget (default 5000) */
	size_t max_payload;       /**< bytes per payload (default 1 MiB) */
	int max_attempts;         /**< deliveries before dead-lettering (default 10) */
	int poll_interval_ms;     /**< fallback poll for writes of other processes (default 100) */
	durq_clock_fn clock;      /**< NULL = wall clock */
	void *clock_ctx; /**< passed to clock */
	durq_log_fn log;          /**< NULL = silent */
	void *log_ctx; /**< passed to log */
	int log_level;            /**< highest level passed to log (default DURQ_LOG_INFO) */
	const char *sqlite_vfs;   /**< name of a registered sqlite3 VFS (NULL = default) */
	/** Most entries in one call, each array counted on its own: messages, history events,
	 * work items and cancels of a turn result, messages of durq_orch_enqueue, items of
	 * durq_work_enqueue. More: DURQ_ETOOBIG naming the array, nothing written (a turn keeps
	 * its lease). 1..DURQ_MAX_TURN_ENTRIES_LIMIT (default DURQ_DEFAULT_MAX_TURN_ENTRIES). */
	size_t max_turn_entries;
	/** Who decides about an item or instance delivered more than max_attempts times
	 * (enum durq_poison_policy, default DURQ_POISON_DEAD_LETTER). */
	int poison_policy;
	/** DURQ_POISON_RECORD: kind of the message sent to the parent of an instance the
	 * provider failed (payload = the failed instance's id); 0 = no message. */
	int poison_notify_kind;
	/** Cross-process stats (docs/OPERATIONS.md): every stats_publish_ms at most, a write
	 * call of this handle also upserts a snapshot of its counters (ops, transactions, pool
	 * waits, commit and ack latency histograms) into the database's handle-stats table, in
	 * the transaction of that write, so `durq top` in another process can show them.
	 * Nothing is written while the handle makes no write calls; durq_close() deletes the
	 * row. 0 = default 1000; DURQ_STATS_PUBLISH_OFF = never; else 1..86400000 ms
	 * (DURQ_STATS_PUBLISH_MS: 0 = off). In-memory databases never publish. */
	int stats_publish_ms;
} durq_options;

/** options.stats_publish_ms: publish no stats (durq_options_get() reports it so). */
#define DURQ_STATS_PUBLISH_OFF (-1)

/**
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
	DURQ_POISON_DEAD_LETTER = 0, /**< default: dead letters, instance FAILED */
	DURQ_POISON_DELIVER = 1, /**< deliver anyway; the runtime decides */
	DURQ_POISON_RECORD = 2 /**< dead letters, and the failure recorded for the runtime */
};

/** Current version of durq_options. */
#define DURQ_OPTIONS_VERSION 1
/** Initialiser of durq_options: every field default. */
#define DURQ_OPTIONS_INIT {.version = DURQ_OPTIONS_VERSION}
/** Fill opts with the defaults (zero = default for every field) for the given version.
 * @param opts the options to initialise
 * @param version DURQ_OPTIONS_VERSION
 * @return DURQ_OK; DURQ_EINVAL if opts is NULL or the version is not one this durq knows
 */
DURQ_EXTERN int durq_options_init(durq_options *opts, unsigned int version);

/* ---- the handle --------------------------------------------------------------------- */

/** A handle on one database: opaque, thread-safe, from durq_open(), released with durq_free(). */
typedef struct durq durq;

/**
 * Open by URL: "sqlite:path/to.db" (file, created 0600), "sqlite::memory:" (private,
 * concurrent, not durable), "postgresql://user@host:port/db" (a libpq connection URI; PG*
 * variables apply), or a scheme registered with durq_provider_register (durq/provider.h).
 * A query string carries the provider's own settings; sqlite takes vfs=NAME,
 * synchronous=off|normal|full and busy_timeout_ms=N, which override the options of the same
 * meaning (a sqlite path therefore ends at the first '?'). Unknown parameters: DURQ_EINVAL.
 * opts may be NULL. Environment overrides (DURQ_POOL_SIZE,
 * DURQ_SYNCHRONOUS, DURQ_MAX_BATCH, DURQ_GROUP_COMMIT, DURQ_BUSY_TIMEOUT_MS,
 * DURQ_MAX_ATTEMPTS, DURQ_MAX_TURN_ENTRIES, DURQ_STATS_PUBLISH_MS) are applied on top of
 * opts and validated; they
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
 * @param out set to the new handle on DURQ_OK (free with durq_free())
 * @param url which database, see above
 * @param opts options (copied; may be NULL for the defaults)
 * @return DURQ_OK; DURQ_EINVAL (bad URL, option or environment value: the message names it
 *         and the valid range), DURQ_EIO (cannot open, a symbolic link, not a tmpfs),
 *         DURQ_ECORRUPT (not a durq database, foreign schema objects, or a schema of a newer
 *         durq), DURQ_EBUSY, DURQ_ENOMEM
 */
DURQ_EXTERN int durq_open(durq **out, const char *url, const durq_options *opts);
/** Stop accepting work, complete every pending op, join the committer. Fetchers blocked in
 * a long poll return DURQ_ECLOSED. Later calls on the handle return DURQ_ECLOSED. Safe to
 * call twice, also concurrently: a second call returns only after the first has finished,
 * so durq_free after either is safe.
 * @param db the handle (NULL: DURQ_EINVAL)
 * @return DURQ_OK; DURQ_EINVAL from a durq callback on the writing thread (it would wait for
 *         itself) or for NULL
 */
DURQ_EXTERN int durq_close(durq *db);
/** Close if needed and release the handle.
 * @param db the handle, or NULL (nothing happens)
 */
DURQ_EXTERN void durq_free(durq *db);
/** Wake blocked fetchers (e.g. after advancing an injected clock).
 * @param db an open handle
 * @return DURQ_OK; DURQ_EINVAL, DURQ_ECLOSED
 */
DURQ_EXTERN int durq_wake(durq *db);
/** Current time on the handle's clock.
 * @param db an open handle
 * @return milliseconds of the handle clock (options.clock, default the wall clock)
 */
DURQ_EXTERN int64_t durq_now(durq *db);

/* ---- enqueue ------------------------------------------------------------------------ */

/** A message for an orchestration instance (start, event, completion, timer, ...). */
typedef struct durq_message {
	const char *instance_id;  /**< required, 1..256 bytes */
	int kind;                 /**< runtime-defined, stored, never interpreted */
	const void *payload; /**< message bytes (opaque to durq; copied) */
	size_t payload_len; /**< payload length, at most options.max_payload */
	int64_t visible_at_ms;    /**< absolute time (timer); 0 = now */
	int64_t delay_ms;         /**< added to commit time; the later of the two wins */
} durq_message;

/** An item for a worker queue: an activity of an orchestration, or plain work. */
typedef struct durq_work {
	const char *queue;        /**< NULL or "" = the default queue */
	const char *instance_id;  /**< owning orchestration, NULL for plain work */
	uint64_t execution_id; /**< execution that scheduled it (activities) */
	uint64_t activity_id; /**< activity id within the instance (activities; see durq_activity_ref) */
	int priority;             /**< higher first; FIFO within one priority */
	const void *payload; /**< item bytes (opaque to durq; copied) */
	size_t payload_len; /**< payload length, at most options.max_payload */
	int64_t delay_ms; /**< visible this long after the commit */
	/** Activity session (G1). NULL: none, any fetcher may take the item. Else 1..
	 * DURQ_SESSION_ID_MAX bytes: only durq_work_fetch_session() takes the item, for the
	 * owner holding that session (a provider without DURQ_PROVIDER_SESSIONS: DURQ_EINVAL). */
	const char *session_id;
} durq_work;

/** At most options.max_turn_entries per call (else DURQ_ETOOBIG, nothing written).
 * @param db an open handle
 * @param msgs the messages (copied; may be NULL when n is 0)
 * @param n how many
 * @return DURQ_OK; DURQ_ETOOBIG (too many, or a payload over max_payload), DURQ_EINVAL (a bad
 *         argument, the message says which; also a write from a durq callback on the writing
 *         thread), DURQ_ECLOSED, DURQ_EBUSY (another process held the write lock past
 *         busy_timeout_ms), DURQ_EIO (outcome unknown: see DURQ_EIO), DURQ_EFULL,
 *         DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_orch_enqueue(durq *db, const durq_message *msgs, size_t n);
/** Enqueue worker items, all in one transaction. At most options.max_turn_entries per call
 * (else DURQ_ETOOBIG, nothing written). Returns after the COMMIT that made them durable.
 * @param db an open handle
 * @param items the items (copied; may be NULL when n is 0)
 * @param n how many
 * @return DURQ_OK; DURQ_ETOOBIG (too many, or a payload over max_payload), DURQ_EINVAL (a bad
 *         argument, the message says which; also a write from a durq callback on the writing
 *         thread), DURQ_ECLOSED, DURQ_EBUSY (another process held the write lock past
 *         busy_timeout_ms), DURQ_EIO (outcome unknown: see DURQ_EIO), DURQ_EFULL,
 *         DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_work_enqueue(durq *db, const durq_work *items, size_t n);

/* ---- worker queue ------------------------------------------------------------------- */

/** A leased worker item from durq_work_fetch(); strings and payload are durq's, freed with durq_work_items_free(). */
typedef struct durq_work_item {
	int64_t id; /**< item id */
	char *queue; /**< its queue */
	char *instance_id;        /**< NULL for plain work */
	uint64_t execution_id; /**< as enqueued */
	uint64_t activity_id; /**< as enqueued */
	int priority; /**< as enqueued */
	int attempt;              /**< 1 on first delivery */
	void *payload; /**< item bytes */
	size_t payload_len; /**< payload length */
	durq_token token; /**< lease token (items of one fetch may share it) */
	int64_t lease_until_ms; /**< lease end (handle clock) */
	char *session_id;         /**< its activity session as enqueued (G1), NULL if none */
} durq_work_item;

/**
 * Lease up to max items of queue (NULL = default), waiting up to timeout_ms (0 = do not
 * wait) for one to become ready. *n = items leased (max is capped at 1024); returns
 * DURQ_EMPTY if none. Items of one fetch may share a token: an item is identified by
 * (id, token). Items with a session (durq_work.session_id) are never taken here: only
 * durq_work_fetch_session() takes them (G1).
 * Free with durq_work_items_free(items, n).
 * @param db an open handle
 * @param items set to a new array of *n items (free with durq_work_items_free())
 * @param n set to the number of entries
 * @param queue queue name, NULL or "" for the default queue
 * @param max most items to lease (1..1024)
 * @param lease_ms lease length in ms (> 0)
 * @param timeout_ms how long to wait for an item, 0 = not at all
 * @return DURQ_OK with at least one item; DURQ_EMPTY if none became ready in time (not a
 *         failure); DURQ_EINVAL (a bad argument, the message says which; also a write from a
 *         durq callback on the writing thread), DURQ_ECLOSED, DURQ_EBUSY (another process
 *         held the write lock past busy_timeout_ms), DURQ_EIO (outcome unknown: see
 *         DURQ_EIO), DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_work_fetch(durq *db, durq_work_item **items, size_t *n, const char *queue,
				size_t max, int64_t lease_ms, int timeout_ms);
/** Which queues a durq_queue_set names (G2). */
enum durq_queue_select {
	DURQ_QUEUES_ONLY = 0,        /**< only the named queues (at least one) */
	DURQ_QUEUES_DEFAULT_AND = 1, /**< the default queue "" and the named ones (maybe none) */
	DURQ_QUEUES_ANY = 2          /**< every queue (no names); this fetch reads the ready
				      * items of all queues to order them, so name the queues
				      * where backlogs are large */
};
/** Most names in one durq_queue_set (more: DURQ_ETOOBIG). */
#define DURQ_QUEUE_SET_MAX 16

/** Several worker queues fetched as one (G2). */
typedef struct durq_queue_set {
	unsigned int version;        /**< DURQ_QUEUE_SET_VERSION */
	int select;                  /**< enum durq_queue_select */
	const char *const *names;    /**< queue names (NULL or "" = the default queue) */
	size_t n;                    /**< length of names, 0..DURQ_QUEUE_SET_MAX */
} durq_queue_set;
/** Current version of durq_queue_set. */
#define DURQ_QUEUE_SET_VERSION 1
/** Initializer of a durq_queue_set (DURQ_QUEUES_ONLY, no names yet). */
#define DURQ_QUEUE_SET_INIT {.version = DURQ_QUEUE_SET_VERSION}

/**
 * Like durq_work_fetch(), over several queues in one long poll (G2): up to max items of
 * the queues the set names, ordered across them as within one queue (higher priority
 * first, then FIFO by enqueue order), each leased like durq_work_fetch() leases. A commit
 * to any queue wakes the wait. Like durq_work_fetch(), it never takes items with a session
 * (G1). A provider without queue sets (flag
 * DURQ_PROVIDER_QUEUE_SETS) refuses with DURQ_EINVAL.
 * @param db an open handle
 * @param items set to a new array of *n items (free with durq_work_items_free())
 * @param n set to the number leased
 * @param queues the queue set (version, select and names checked: DURQ_EINVAL; more than
 *        DURQ_QUEUE_SET_MAX names: DURQ_ETOOBIG)
 * @param max most items (capped at 1024)
 * @param lease_ms lease length, > 0
 * @param timeout_ms how long to wait for one (0 = do not wait)
 * @return DURQ_OK, DURQ_EMPTY; DURQ_EINVAL, DURQ_ETOOBIG, DURQ_ECLOSED, DURQ_EBUSY, DURQ_EIO,
 *         DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_work_fetch_set(durq *db, durq_work_item **items, size_t *n,
				    const durq_queue_set *queues, size_t max, int64_t lease_ms,
				    int timeout_ms);
/** Free what durq_work_fetch() returned.
 * @param items the array (may be NULL)
 * @param n its length
 */
DURQ_EXTERN void durq_work_items_free(durq_work_item *items, size_t n);

/* ---- activity sessions (issue 10: G1) ------------------------------------------------ */

/**
 * The owner a session fetch claims for (G1). Sessions pin work to a worker: the items
 * enqueued with one durq_work.session_id go to the owner holding that session. Fetchers
 * passing the same owner_id (e.g. the slots of one worker process) share its sessions.
 */
typedef struct durq_session_owner {
	unsigned int version;        /**< DURQ_SESSION_OWNER_VERSION */
	const char *owner_id;        /**< 1..DURQ_SESSION_ID_MAX bytes */
	/** A session the fetch takes items of is held until at least now + lock_ms (> 0). */
	int64_t lock_ms;
} durq_session_owner;
/** Current version of durq_session_owner. */
#define DURQ_SESSION_OWNER_VERSION 1
/** Initialiser of durq_session_owner (fill in owner_id and lock_ms). */
#define DURQ_SESSION_OWNER_INIT {.version = DURQ_SESSION_OWNER_VERSION}

/**
 * Lease up to max items of queue (NULL = default) for an owner (G1): items without a
 * session, items of sessions the owner holds, and items of sessions nobody holds (never
 * claimed, lock expired, or removed by durq_session_cleanup()), all in one order (higher
 * priority first, then FIFO), leased like durq_work_fetch() leases. Items of a session
 * another owner holds are skipped without being leased (their attempts do not grow).
 *
 * Holding: in the claim's transaction, every session the fetch took items of is held by
 * the owner until now + lock_ms (never earlier than a hold it already had), and its last
 * activity is now: a session nobody held is claimed, one whose lock expired is taken over,
 * also by its old owner. durq_session_renew() extends the locks of active sessions; acking
 * or renewing one of a session's items (durq_work_ack(), durq_work_renew()) records
 * activity. Of two owners fetching at once, one holds the session, the other gets none of
 * its items. Item leases stay separate: an item whose lease expired comes back (attempt
 * + 1) to whoever may take its session, and an ack needs the item's live lease only, not
 * the session's lock.
 *
 * Items with a session go only through this call: durq_work_fetch() and
 * durq_work_fetch_set() never take them (a worker that does not use sessions never gets
 * work that asks for affinity). Session fetches are for one queue; a claim is durable like
 * a plain one (a holding lost to a crash before the next flushed commit makes the session
 * unheld, as a lost lease makes an item deliverable again).
 * Cost: one claim as for durq_work_fetch(), with the session rows written in the same
 * transaction; items of sessions other owners hold are read past, so a queue where others
 * hold a large backlog costs this fetch a walk over it.
 * @param db an open handle
 * @param items set to a new array of *n items (free with durq_work_items_free()); each
 *        item's session_id says its session
 * @param n set to the number leased
 * @param queue queue name, NULL or "" for the default queue
 * @param owner who fetches (NULL, an unknown version, an owner id empty or longer than
 *        DURQ_SESSION_ID_MAX, lock_ms <= 0: DURQ_EINVAL)
 * @param max most items (1..1024; more is capped)
 * @param lease_ms lease length of the items in ms (> 0)
 * @param timeout_ms how long to wait for an item, 0 = not at all
 * @return DURQ_OK, DURQ_EMPTY; DURQ_EINVAL (also a provider without the flag
 *         DURQ_PROVIDER_SESSIONS), DURQ_ECLOSED, DURQ_EBUSY, DURQ_EIO, DURQ_EFULL,
 *         DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_work_fetch_session(durq *db, durq_work_item **items, size_t *n,
					const char *queue, const durq_session_owner *owner,
					size_t max, int64_t lease_ms, int timeout_ms);
/**
 * Extend the sessions the owners hold (G1): each session held by one of owner_ids whose
 * lock is live and that was active within idle_timeout_ms (a fetch took its items, or one
 * of them was acked or renewed, less than idle_timeout_ms ago) is held until at least now
 * + extend_ms. Idle sessions are skipped, so their locks run out and other owners may
 * take them; a lock that already expired is never revived (its session may be taken over).
 * Renewing is not activity. Call it periodically, well within lock_ms.
 * @param db an open handle
 * @param renewed set to the number of sessions renewed, 0 if none (may be NULL)
 * @param owner_ids the owners (each 1..DURQ_SESSION_ID_MAX bytes; a name given twice counts
 *        once)
 * @param n how many (1..max_turn_entries, more: DURQ_ETOOBIG)
 * @param extend_ms new lock length from now (> 0)
 * @param idle_timeout_ms a session with no activity for this long is idle (>= 0; 0: every
 *        session is idle)
 * @return DURQ_OK once durable; DURQ_EINVAL (a bad argument, the message says which; a
 *         provider without DURQ_PROVIDER_SESSIONS), DURQ_ETOOBIG, DURQ_ECLOSED, DURQ_EBUSY,
 *         DURQ_EIO (outcome unknown: see DURQ_EIO), DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_session_renew(durq *db, size_t *renewed, const char *const *owner_ids,
				   size_t n, int64_t extend_ms, int64_t idle_timeout_ms);
/**
 * Remove sessions nobody needs (G1): those whose lock expired or that were idle for
 * idle_timeout_ms (no activity, see durq_session_renew()), unless an item of the session
 * is still queued (ready, delayed or leased): those stay, with their owner and lock. A
 * removed session is unheld; the next item of its id makes a fetch claim it anew.
 * @param db an open handle
 * @param removed set to the number of sessions removed (may be NULL)
 * @param idle_timeout_ms idle after this long without activity (>= 0)
 * @return DURQ_OK once durable; DURQ_EINVAL (a bad argument; a provider without
 *         DURQ_PROVIDER_SESSIONS), DURQ_ECLOSED, DURQ_EBUSY, DURQ_EIO (outcome unknown: see
 *         DURQ_EIO), DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_session_cleanup(durq *db, size_t *removed, int64_t idle_timeout_ms);
/** Delete the item and, in the same transaction, enqueue completion (may be NULL).
 * @param db an open handle
 * @param id the item id
 * @param token the lease token the fetch returned (not kept)
 * @param completion message to enqueue with the ack (copied), or NULL
 * @return DURQ_OK once durable; DURQ_ELOCKLOST (item gone, e.g. cancelled, or its lease
 *         expired), DURQ_ETOOBIG, DURQ_EINVAL (a bad argument, the message says which; also a
 *         write from a durq callback on the writing thread), DURQ_ECLOSED, DURQ_EBUSY
 *         (another process held the write lock past busy_timeout_ms), DURQ_EIO (outcome
 *         unknown: see DURQ_EIO), DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_work_ack(durq *db, int64_t id, const durq_token *token,
			      const durq_message *completion);
/** Release the lease; visible again after delay_ms; ignore_attempt undoes this delivery's
 * attempt count (never below 0).
 * @param db an open handle
 * @param id the item id
 * @param token the lease token the fetch returned (not kept)
 * @param delay_ms ms before it is visible again (>= 0)
 * @param ignore_attempt 1 = do not count this delivery
 * @return DURQ_OK once durable; DURQ_ELOCKLOST, DURQ_EINVAL (a bad argument, the message says
 *         which; also a write from a durq callback on the writing thread), DURQ_ECLOSED,
 *         DURQ_EBUSY (another process held the write lock past busy_timeout_ms), DURQ_EIO
 *         (outcome unknown: see DURQ_EIO), DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_work_abandon(durq *db, int64_t id, const durq_token *token, int64_t delay_ms,
				  int ignore_attempt);
/** Extend a live lease to now + lease_ms; never revives an expired one. lease_until_ms may
 * be NULL.
 * @param db an open handle
 * @param lease_until_ms set to the new lease end (may be NULL)
 * @param id the item id
 * @param token the lease token the fetch returned (not kept)
 * @param lease_ms new lease length from now (> 0)
 * @return DURQ_OK once durable; DURQ_ELOCKLOST (expired or gone), DURQ_EINVAL (a bad
 *         argument, the message says which; also a write from a durq callback on the writing
 *         thread), DURQ_ECLOSED, DURQ_EBUSY (another process held the write lock past
 *         busy_timeout_ms), DURQ_EIO (outcome unknown: see DURQ_EIO), DURQ_EFULL,
 *         DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_work_renew(durq *db, int64_t *lease_until_ms, int64_t id,
				const durq_token *token, int64_t lease_ms);

/* ---- orchestrations ----------------------------------------------------------------- */

/** Status of an orchestration instance or execution. */
enum durq_status {
	DURQ_STATUS_PENDING = 0, /**< no turn acked yet (never stored) */
	DURQ_STATUS_RUNNING = 1, /**< started, not finished */
	DURQ_STATUS_COMPLETED = 2, /**< finished */
	DURQ_STATUS_FAILED = 3, /**< failed (by a turn, or poisoned) */
	DURQ_STATUS_CONTINUED_AS_NEW = 4, /**< an execution closed by continue-as-new */
	DURQ_STATUS_TERMINATED = 5 /**< stopped from outside */
};

/** One history event of an execution. In a turn result the caller owns it; from durq (durq_turn, durq_history_read) durq allocated it. */
typedef struct durq_event {
	uint64_t event_id; /**< unique within the execution; ordered by it */
	const void *payload; /**< the event bytes (opaque to durq) */
	size_t payload_len; /**< payload length in bytes */
} durq_event;

/** A message delivered in a turn. */
typedef struct durq_turn_message {
	int64_t id; /**< message id */
	int kind; /**< as enqueued */
	void *payload; /**< message bytes */
	size_t payload_len; /**< payload length */
	int attempt; /**< deliveries of this message, 1 on the first */
} durq_turn_message;

/** A leased orchestration turn from durq_orch_fetch(); every pointer is durq's, freed with durq_turn_free(). */
typedef struct durq_turn {
	char *instance_id; /**< the leased instance */
	durq_token token; /**< lease token for ack / abandon / renew */
	int64_t lease_until_ms; /**< lease end (handle clock) */
	int attempt;                  /**< max over the messages */
	int exists;                   /**< 1 once a turn has been acked */
	uint64_t execution_id;        /**< current execution (0 if !exists) */
	int status; /**< enum durq_status as stored (PENDING if !exists) */
	char *name;                   /**< the current execution's name and version (G5) */
	char *version; /**< see name */
	durq_turn_message *messages;  /**< ordered by arrival */
	size_t n_messages; /**< length of messages */
	durq_event *history;          /**< current execution, ordered by event id */
	size_t n_history; /**< length of history */
	struct durq_kv_entry *kv;     /**< the instance's key/value state as stored when the turn
				       * was fetched, ordered by key (G3); none for a new one */
	size_t n_kv; /**< length of kv */
	int64_t runtime_version;      /**< the runtime version the current execution is pinned
				       * to (G4); 0 = not pinned */
} durq_turn;

/** Longest key of an instance's key/value state, in bytes (G3; longer: DURQ_EINVAL). */
#define DURQ_KV_KEY_MAX 256
/** Most keys one instance holds (G3): a turn that would leave more is refused with
 * DURQ_ETOOBIG and keeps its lease. */
#define DURQ_KV_MAX_KEYS 1000

/** One key to set in a turn result (G3; the caller's memory). The key/value state belongs
 * to the instance: it survives continue-as-new and execution pruning and is deleted with
 * the instance. */
typedef struct durq_kv {
	const char *key;          /**< 1..DURQ_KV_KEY_MAX bytes of valid UTF-8 */
	const void *value;        /**< at most options.max_payload bytes; NULL with 0 = empty */
	size_t value_len;         /**< value length */
} durq_kv;

/** One stored key (durq_turn.kv, durq_kv_list()); durq allocated it. */
typedef struct durq_kv_entry {
	char *key;                /**< the key */
	void *value;              /**< the value (never NULL; an empty one has value_len 0) */
	size_t value_len;         /**< value length */
} durq_kv_entry;

/** A cancelled activity of this instance. */
typedef struct durq_activity_ref {
	uint64_t execution_id; /**< the execution that scheduled it */
	uint64_t activity_id; /**< the activity id it was scheduled with */
} durq_activity_ref;

/** Everything one turn commits, atomically. Limits (checked before anything is written; a
 * refused result keeps the lease): each of n_history, n_work, n_cancel, n_messages at most
 * options.max_turn_entries, all payload bytes together at most DURQ_TURN_PAYLOAD_FACTOR *
 * options.max_payload (DURQ_ETOOBIG); name and version_tag at most DURQ_NAME_MAX bytes,
 * parent_id at most DURQ_INSTANCE_ID_MAX (DURQ_EINVAL). */
typedef struct durq_turn_result {
	unsigned int version;         /**< DURQ_TURN_RESULT_VERSION */
	uint64_t execution_id;        /**< 0 = current (1 for a new instance); current+1 = continue-as-new;
				       * anything else is DURQ_EINVAL (the lease is kept) */
	/** Name and version belong to an execution (G5). The first turn stores them with
	 * execution 1; a NULL one is filled by the first later ack of that execution giving
	 * one, and once set it does not change within the execution. A continue-as-new turn
	 * (execution_id = current + 1) starts the new execution with the name and version it
	 * gives, or those of the previous execution where it gives NULL. The instance (and
	 * durq_turn) always shows the current execution's. */
	const char *name; /**< orchestration name of the execution (see above) */
	const char *version_tag; /**< orchestration version of the execution (see name) */
	const char *parent_id; /**< parent instance (sub-orchestration), stored on creation; NULL = none */
	int status;                   /**< enum durq_status to set; 0 = leave it as stored (a new
				       * instance starts RUNNING): a late message's turn for a
				       * COMPLETED instance keeps it COMPLETED */
	const void *output;           /**< NULL = leave the stored output as it is */
	size_t output_len; /**< output length */
	int set_custom_status;        /**< 1 = store custom_status and bump its version; NULL/0
				       * clears it (read back as custom_status NULL, len 0) */
	const void *custom_status; /**< see set_custom_status */
	size_t custom_status_len; /**< its length */
	const durq_event *history;    /**< delta appended to the execution */
	size_t n_history; /**< length of history */
	const durq_work *work;        /**< activities scheduled */
	size_t n_work; /**< length of work */
	const durq_activity_ref *cancel; /**< applied after work: schedule+cancel = no-op */
	size_t n_cancel; /**< length of cancel */
	const durq_message *messages; /**< orchestrator items and timers (visible_at_ms) */
	size_t n_messages; /**< length of messages */
	unsigned int flags;           /**< enum durq_turn_flags */
	/** The instance's key/value state changes with the turn, atomically (G3), in this
	 * order: kv_clear_all, then the kv_clear keys, then kv_set (a key set twice keeps the
	 * later value). Each array at most max_turn_entries. */
	const durq_kv *kv_set;
	size_t n_kv_set;              /**< length of kv_set */
	const char *const *kv_clear;  /**< keys to remove (absent ones are ignored) */
	size_t n_kv_clear;            /**< length of kv_clear */
	int kv_clear_all;             /**< 1 = remove every key first */
	/** Pin the execution to the runtime version that ran this turn (G4): an execution's
	 * first ack giving one (> 0) pins it (a continue-as-new ack pins the new execution);
	 * once pinned it does not change. 0 = pin nothing; negative: DURQ_EINVAL. The
	 * encoding is the runtime's (e.g. major * 10^6 + minor * 10^3 + patch); durq only
	 * compares. */
	int64_t runtime_version;
} durq_turn_result;

/** Flags of durq_turn_result.flags. */
enum durq_turn_flags {
	/** Discard the turn (G7): delete exactly the messages this lease tagged and release the
	 * lease; nothing else happens: no instance or execution is created or changed, and
	 * messages that arrived after the fetch stay queued. The result must carry nothing
	 * else (no history, work, cancels, messages, status, output, custom status, name,
	 * version, parent, execution id), else DURQ_EINVAL and the lease is kept. For a
	 * runtime that receives messages for an instance that was never started. */
	DURQ_TURN_DISCARD = 1u
};

/** Current version of durq_turn_result. */
#define DURQ_TURN_RESULT_VERSION 1
/** Initialiser of durq_turn_result: commits nothing but the turn itself. */
#define DURQ_TURN_RESULT_INIT {.version = DURQ_TURN_RESULT_VERSION}

/** Lease the oldest instance with a visible message and no live lease.
 * @param db an open handle
 * @param out set to the leased turn (free with durq_turn_free()), NULL if none
 * @param lease_ms lease length in ms (> 0)
 * @param timeout_ms how long to wait, 0 = not at all
 * @return DURQ_OK; DURQ_EMPTY if no instance became ready in time; DURQ_EINVAL (a bad
 *         argument, the message says which; also a write from a durq callback on the writing
 *         thread), DURQ_ECLOSED, DURQ_EBUSY (another process held the write lock past
 *         busy_timeout_ms), DURQ_EIO (outcome unknown: see DURQ_EIO), DURQ_EFULL,
 *         DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_orch_fetch(durq *db, durq_turn **out, int64_t lease_ms, int timeout_ms);

/** Which turns a filtered fetch may lease (G4). */
typedef struct durq_turn_filter {
	unsigned int version;        /**< DURQ_TURN_FILTER_VERSION */
	int64_t min_runtime_version; /**< lowest pinned runtime version accepted (>= 0) */
	int64_t max_runtime_version; /**< highest accepted (>= min) */
} durq_turn_filter;
/** Current version of durq_turn_filter. */
#define DURQ_TURN_FILTER_VERSION 1
/** Initialiser of durq_turn_filter (fill in the range). */
#define DURQ_TURN_FILTER_INIT {.version = DURQ_TURN_FILTER_VERSION}

/**
 * Like durq_orch_fetch(), but only for instances whose current execution is not pinned or
 * is pinned to a runtime version in [min_runtime_version, max_runtime_version] (G4). Other
 * instances are skipped without being leased (their attempts do not grow); another fetcher
 * whose range covers them gets them. Instances not yet created always match. A provider
 * without the flag DURQ_PROVIDER_VERSION_FILTER refuses with DURQ_EINVAL.
 * @param db an open handle
 * @param out set to the leased turn (free with durq_turn_free()), NULL if none
 * @param lease_ms lease length in ms (> 0)
 * @param timeout_ms how long to wait, 0 = not at all
 * @param filter the range (NULL, an unknown version, a negative bound or max < min:
 *        DURQ_EINVAL)
 * @return as durq_orch_fetch()
 */
DURQ_EXTERN int durq_orch_fetch_filtered(durq *db, durq_turn **out, int64_t lease_ms,
					 int timeout_ms, const durq_turn_filter *filter);
/** Free a turn returned by durq_orch_fetch().
 * @param turn the turn (may be NULL)
 */
DURQ_EXTERN void durq_turn_free(durq_turn *turn);
/** Commit one turn atomically (see durq_turn_result) and release the lease. A failed ack
 * changes nothing and keeps the lease.
 * @param db an open handle
 * @param instance_id the instance of the turn
 * @param token the lease token the fetch returned (not kept)
 * @param result what the turn commits (copied as needed; NULL = nothing but releasing the
 *        messages)
 * @return DURQ_OK once durable; DURQ_ELOCKLOST (lease lost), DURQ_EDUP (a history event id
 *         already stored), DURQ_ETOOBIG (see durq_turn_result), DURQ_EINVAL (a bad argument,
 *         the message says which; also a write from a durq callback on the writing thread),
 *         DURQ_ECLOSED, DURQ_EBUSY (another process held the write lock past
 *         busy_timeout_ms), DURQ_EIO (outcome unknown: see DURQ_EIO), DURQ_EFULL,
 *         DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_orch_ack(durq *db, const char *instance_id, const durq_token *token,
			      const durq_turn_result *result);
/** Release an instance lease without committing the turn; its messages are visible again
 * after delay_ms.
 * @param db an open handle
 * @param instance_id the instance
 * @param token the lease token the fetch returned (not kept)
 * @param delay_ms ms before it can be fetched again
 * @param ignore_attempt 1 = do not count this delivery
 * @return DURQ_OK once durable; DURQ_ELOCKLOST, DURQ_EINVAL (a bad argument, the message says
 *         which; also a write from a durq callback on the writing thread), DURQ_ECLOSED,
 *         DURQ_EBUSY (another process held the write lock past busy_timeout_ms), DURQ_EIO
 *         (outcome unknown: see DURQ_EIO), DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_orch_abandon(durq *db, const char *instance_id, const durq_token *token,
				  int64_t delay_ms, int ignore_attempt);
/** Extend a live instance lease to now + lease_ms; never revives an expired one.
 * @param db an open handle
 * @param lease_until_ms set to the new lease end (may be NULL)
 * @param instance_id the instance
 * @param token the lease token the fetch returned (not kept)
 * @param lease_ms new lease length from now (> 0)
 * @return DURQ_OK once durable; DURQ_ELOCKLOST, DURQ_EINVAL (a bad argument, the message says
 *         which; also a write from a durq callback on the writing thread), DURQ_ECLOSED,
 *         DURQ_EBUSY (another process held the write lock past busy_timeout_ms), DURQ_EIO
 *         (outcome unknown: see DURQ_EIO), DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
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
 * - The callback runs once the op is durable, with no durq lock held, in submission order
 *   within a batch, on one of three threads:
 *   - the flush thread ("durq-flush"), group mode, where the provider flushes after COMMIT
 *     (synchronous=FULL on an SQLite file or on PostgreSQL);
 *   - the committer thread ("durq-commit"), group mode, otherwise (also a lone op on a
 *     handle that flushes after COMMIT: it is flushed where it committed);
 *   - the submitting thread, before the submit call returns: always in per-op mode; in
 *     group mode when nothing else is queued, committing or awaiting its flush and either
 *     the handle commits without a flush (the in-memory database, or an SQLite file with
 *     synchronous below FULL) or the thread submits one op at a time (its previous async
 *     submit was not followed by another within a commit time): the op is then committed
 *     (and flushed) on the submitting thread, saving the hand-off. A submit
 *     made from inside such a callback is queued for the committer and never completes
 *     before it returns, so callbacks that submit again do not nest. A callback must not
 *     take a lock that its submitter holds across the submit call.
 *   On a write thread (flush or committer) a callback may submit more async ops (these
 *   never block there, whatever the flags), read, and signal its own threads. Anything that
 *   would wait for ops (a synchronous write, durq_flush, durq_work_ack_many, durq_group_wait
 *   with a timeout other than 0, durq_close) fails with DURQ_EINVAL there: those ops need
 *   the very thread that runs the callback. Keep it short: it delays the next batch. On the
 *   submitting thread it may also make synchronous calls (it runs outside the commit, as
 *   in per-op mode), but a callback that must work in every case keeps to the write
 *   threads' rules.
 * - Backpressure: when `backlog` ops are pending, a submit blocks until there is room, or
 *   with DURQ_SUBMIT_NOWAIT returns DURQ_EAGAIN (retryable) at once.
 * - durq_close completes every submitted op (committing it) before it returns.
 */

/** What an async op reports. Valid only during the callback. */
typedef struct durq_completion {
	int rc;                   /**< DURQ_OK once durable, else the op's error */
	const char *message;      /**< error text ("" on success) */
	int kind;                 /**< enum durq_op_kind */
	int64_t lease_until_ms;   /**< renew: the new lease end */
	size_t count;             /**< execution_prune: executions pruned; instance_delete_many,
				   * instance_purge: instances deleted; session_renew:
				   * sessions renewed; session_cleanup: sessions removed */
} durq_completion;

/** Completion callback of an asynchronous op (see durq_async): ctx is durq_async.ctx, c is valid during the call only. */
typedef void (*durq_done_fn)(void *ctx, const durq_completion *c);

/** Flags of durq_async.flags. */
enum durq_submit_flags {
	DURQ_SUBMIT_NOWAIT = 1u /**< backlog full: DURQ_EAGAIN instead of blocking */
};

/** A set of async ops to wait for. Thread-safe. */
typedef struct durq_group durq_group;

/** How an asynchronous op reports its result. Read at submit; may be on the stack. */
typedef struct durq_async {
	durq_done_fn done;        /**< may be NULL */
	void *ctx; /**< passed to done */
	durq_group *group;        /**< may be NULL */
	unsigned int flags;       /**< enum durq_submit_flags */
} durq_async;

/** Create an empty group.
 * @param out set to the group (free with durq_group_free())
 * @return DURQ_OK; DURQ_EINVAL (out NULL), DURQ_ENOMEM
 */
DURQ_EXTERN int durq_group_new(durq_group **out);
/** Wait until every op added to the group so far has completed, at most timeout_ms (< 0 =
 * no limit). *failed (may be NULL) = how many of the group's ops failed so far.
 * DURQ_OK, or DURQ_ETIMEDOUT if some are still pending.
 * @param g the group
 * @param timeout_ms most ms to wait, < 0 = no limit, 0 = just look
 * @param failed set to how many of its ops failed so far (may be NULL)
 * @return DURQ_OK; DURQ_ETIMEDOUT; DURQ_EINVAL (g NULL, or a wait from a callback on the
 *         writing thread)
 */
DURQ_EXTERN int durq_group_wait(durq_group *g, int timeout_ms, size_t *failed);
/** Release the group; safe while ops are pending (it lives until they complete).
 * @param g the group (may be NULL)
 */
DURQ_EXTERN void durq_group_free(durq_group *g);

/** Every op submitted before this call (by any thread) is completed when it returns DURQ_OK;
 * DURQ_ETIMEDOUT after timeout_ms (< 0 = no limit).
 * @param db an open handle
 * @param timeout_ms most ms to wait, < 0 = no limit
 * @return DURQ_OK; DURQ_ETIMEDOUT; DURQ_EINVAL (also from a callback on the writing thread),
 *         DURQ_ECLOSED, DURQ_ENOMEM
 */
DURQ_EXTERN int durq_flush(durq *db, int timeout_ms);

/** Asynchronous durq_orch_enqueue().
 * @param db an open handle
 * @param msgs the messages (copied)
 * @param n how many
 * @param a how to report: callback, context, group, flags (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion (durq_completion.rc,
 *         with the codes of the synchronous form); DURQ_EINVAL or DURQ_ETOOBIG for bad input
 *         (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_orch_enqueue_async(durq *db, const durq_message *msgs, size_t n,
					const durq_async *a);
/** Asynchronous durq_work_enqueue().
 * @param db an open handle
 * @param items the items (copied)
 * @param n how many
 * @param a how to report: callback, context, group, flags (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion (durq_completion.rc,
 *         with the codes of the synchronous form); DURQ_EINVAL or DURQ_ETOOBIG for bad input
 *         (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_work_enqueue_async(durq *db, const durq_work *items, size_t n,
					const durq_async *a);
/** Asynchronous durq_work_ack().
 * @param db an open handle
 * @param id the item id
 * @param token the lease token the fetch returned (not kept)
 * @param completion message to enqueue with the ack (copied), or NULL
 * @param a how to report: callback, context, group, flags (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion (durq_completion.rc,
 *         with the codes of the synchronous form); DURQ_EINVAL or DURQ_ETOOBIG for bad input
 *         (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_work_ack_async(durq *db, int64_t id, const durq_token *token,
				    const durq_message *completion, const durq_async *a);
/** Asynchronous durq_work_abandon().
 * @param db an open handle
 * @param id the item id
 * @param token the lease token the fetch returned (not kept)
 * @param delay_ms ms before it is visible again
 * @param ignore_attempt 1 = do not count this delivery
 * @param a how to report: callback, context, group, flags (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion (durq_completion.rc,
 *         with the codes of the synchronous form); DURQ_EINVAL or DURQ_ETOOBIG for bad input
 *         (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_work_abandon_async(durq *db, int64_t id, const durq_token *token,
					int64_t delay_ms, int ignore_attempt, const durq_async *a);
/** Asynchronous durq_work_renew(); the new lease end is durq_completion.lease_until_ms.
 * @param db an open handle
 * @param id the item id
 * @param token the lease token the fetch returned (not kept)
 * @param lease_ms new lease length from now
 * @param a how to report: callback, context, group, flags (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion (durq_completion.rc,
 *         with the codes of the synchronous form); DURQ_EINVAL or DURQ_ETOOBIG for bad input
 *         (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_work_renew_async(durq *db, int64_t id, const durq_token *token,
				      int64_t lease_ms, const durq_async *a);
/** Asynchronous durq_orch_ack().
 * @param db an open handle
 * @param instance_id the instance
 * @param token the lease token the fetch returned (not kept)
 * @param result what the turn commits (copied)
 * @param a how to report: callback, context, group, flags (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion (durq_completion.rc,
 *         with the codes of the synchronous form); DURQ_EINVAL or DURQ_ETOOBIG for bad input
 *         (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_orch_ack_async(durq *db, const char *instance_id, const durq_token *token,
				    const durq_turn_result *result, const durq_async *a);
/** Asynchronous durq_orch_abandon().
 * @param db an open handle
 * @param instance_id the instance
 * @param token the lease token the fetch returned (not kept)
 * @param delay_ms ms before it can be fetched again
 * @param ignore_attempt 1 = do not count this delivery
 * @param a how to report: callback, context, group, flags (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion (durq_completion.rc,
 *         with the codes of the synchronous form); DURQ_EINVAL or DURQ_ETOOBIG for bad input
 *         (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_orch_abandon_async(durq *db, const char *instance_id,
					const durq_token *token, int64_t delay_ms,
					int ignore_attempt, const durq_async *a);
/** Asynchronous durq_orch_renew(); the new lease end is durq_completion.lease_until_ms.
 * @param db an open handle
 * @param instance_id the instance
 * @param token the lease token the fetch returned (not kept)
 * @param lease_ms new lease length from now
 * @param a how to report: callback, context, group, flags (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion (durq_completion.rc,
 *         with the codes of the synchronous form); DURQ_EINVAL or DURQ_ETOOBIG for bad input
 *         (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_orch_renew_async(durq *db, const char *instance_id, const durq_token *token,
				      int64_t lease_ms, const durq_async *a);
/** Asynchronous durq_dead_requeue().
 * @param db an open handle
 * @param dead_id the dead letter id
 * @param a how to report: callback, context, group, flags (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion (durq_completion.rc,
 *         with the codes of the synchronous form); DURQ_EINVAL or DURQ_ETOOBIG for bad input
 *         (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_dead_requeue_async(durq *db, int64_t dead_id, const durq_async *a);
/** Asynchronous durq_instance_delete().
 * @param db an open handle
 * @param instance_id the instance
 * @param a how to report: callback, context, group, flags (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion (durq_completion.rc,
 *         with the codes of the synchronous form); DURQ_EINVAL or DURQ_ETOOBIG for bad input
 *         (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_instance_delete_async(durq *db, const char *instance_id,
					   const durq_async *a);
/** Asynchronous durq_session_renew(); durq_completion.count = sessions renewed.
 * @param db an open handle
 * @param owner_ids the owners (copied)
 * @param n how many
 * @param extend_ms new lock length from now
 * @param idle_timeout_ms idle after this long without activity
 * @param a how to report (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion; DURQ_EINVAL or
 *         DURQ_ETOOBIG for bad input (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT
 *         and a full backlog, DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never
 *         completes.
 */
DURQ_EXTERN int durq_session_renew_async(durq *db, const char *const *owner_ids, size_t n,
					 int64_t extend_ms, int64_t idle_timeout_ms,
					 const durq_async *a);
/** Asynchronous durq_session_cleanup(); durq_completion.count = sessions removed.
 * @param db an open handle
 * @param idle_timeout_ms idle after this long without activity (>= 0)
 * @param a how to report (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion; DURQ_EINVAL for bad
 *         input (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_session_cleanup_async(durq *db, int64_t idle_timeout_ms,
					   const durq_async *a);

/** One ack of a batch. */
typedef struct durq_work_ack_req {
	int64_t id; /**< the item id */
	const durq_token *token; /**< its lease token */
	const durq_message *completion; /**< may be NULL */
} durq_work_ack_req;

/** Ack n items, each independently (one failing fails alone); returns after every one is
 * durable or failed. rcs[i] (may be NULL) = each ack's result. DURQ_OK if all succeeded, else
 * the first failure's code.
 * @param db an open handle
 * @param reqs the acks (copied)
 * @param n how many (<= max_turn_entries)
 * @param rcs n result codes, one per ack (may be NULL)
 * @return DURQ_OK if every ack succeeded, else the first failure's code (DURQ_ELOCKLOST,
 *         ...); DURQ_EINVAL for bad input (nothing submitted) or from a callback on the
 *         writing thread
 */
DURQ_EXTERN int durq_work_ack_many(durq *db, const durq_work_ack_req *reqs, size_t n, int *rcs);

/**
 * Ack the items a worker finished and lease the next ones, as one step: the loop a worker
 * writes by hand ("delete what I did, claim more"). Each ack succeeds or fails alone
 * (rcs[i]); every ack is durable (or failed) when this returns, whatever the fetch found.
 * The fetch is durq_work_fetch(items, n, queue, max, lease_ms, timeout_ms).
 *
 * In group mode on a provider whose writers run side by side (PostgreSQL), the acks and the
 * first claim are one transaction on the caller's pool connection, flushed at COMMIT: one
 * round trip and one flush per cycle, where separate acks cost a batch transaction and its
 * flush beside the claim. A claim that finds nothing still commits the acks, then waits as
 * durq_work_fetch does. Elsewhere (SQLite, per-op mode) the acks go through the write path
 * as durq_work_ack_many(), then the fetch runs.
 * @param db an open handle
 * @param acks the acks (copied; NULL if n_acks is 0)
 * @param n_acks how many (<= max_turn_entries; 0 = just fetch)
 * @param rcs n_acks result codes, one per ack (required when n_acks > 0): DURQ_OK,
 *        DURQ_ELOCKLOST (lease lost or item gone), DURQ_EIO (outcome unknown), ...
 * @param items set to a new array of *n items (free with durq_work_items_free())
 * @param n set to the number of entries
 * @param queue queue name, NULL or "" for the default queue
 * @param max most items to lease (1..1024)
 * @param lease_ms lease length in ms (> 0)
 * @param timeout_ms how long to wait for an item, 0 = not at all
 * @return the fetch's result, as durq_work_fetch() (DURQ_OK with at least one item,
 *         DURQ_EMPTY, ...); DURQ_EINVAL for bad input: nothing acked, nothing fetched
 */
DURQ_EXTERN int durq_work_ack_fetch(durq *db, const durq_work_ack_req *acks, size_t n_acks,
				    int *rcs, durq_work_item **items, size_t *n,
				    const char *queue, size_t max, int64_t lease_ms,
				    int timeout_ms);

/* ---- reads and management ----------------------------------------------------------- */

/** An orchestration instance as stored (durq_instance_get()); free with durq_instance_info_free(). */
typedef struct durq_instance_info {
	char *id; /**< instance id */
	char *name; /**< orchestration name of the current execution, NULL if none */
	char *version; /**< its version, NULL if none */
	char *parent_id; /**< parent instance, NULL for a top-level one */
	uint64_t execution_id; /**< current execution */
	int status; /**< enum durq_status */
	void *output; /**< output bytes, NULL if none */
	size_t output_len; /**< output length */
	void *custom_status; /**< custom status bytes, NULL if none */
	size_t custom_status_len; /**< custom status length */
	uint64_t custom_status_version; /**< bumped by each turn that sets it */
	int64_t created_ms; /**< when the first turn was acked (handle clock) */
	int64_t updated_ms; /**< last change (handle clock) */
} durq_instance_info;

/** One execution of an instance (durq_execution_list(), durq_execution_get()). */
typedef struct durq_execution_info {
	uint64_t execution_id; /**< execution id, 1 for the first */
	int status; /**< enum durq_status */
	size_t n_events; /**< history events stored */
	int64_t created_ms; /**< when it started (handle clock) */
	int64_t updated_ms; /**< last change (handle clock) */
	/** When the execution ended: a turn set COMPLETED, FAILED or TERMINATED, the provider
	 * failed it (poison), or a continue-as-new closed it. 0 while it runs (also after a
	 * turn set RUNNING again). G10. */
	int64_t completed_ms;
	char *name;               /**< the execution's name and version (G5), NULL if none */
	char *version; /**< see name */
	void *output;             /**< durq_execution_get only (NULL in durq_execution_list) */
	size_t output_len; /**< output length in bytes */
	int64_t runtime_version;  /**< runtime version it is pinned to (G4); 0 = not pinned */
} durq_execution_info;

/** A dead letter: an item or message delivered more than max_attempts times. Owned by the caller after durq_dead_list(). */
typedef struct durq_dead_letter {
	int64_t id; /**< dead letter id (durq_dead_requeue()) */
	int source;                /**< DURQ_DEAD_ORCH or DURQ_DEAD_WORK */
	char *queue; /**< worker queue (work), NULL for messages */
	char *instance_id; /**< owning instance, NULL for plain work */
	uint64_t execution_id; /**< execution of the activity (work) */
	uint64_t activity_id; /**< activity id (work) */
	int kind; /**< message kind (orchestrator messages) */
	int attempt; /**< deliveries made */
	void *payload; /**< the payload bytes */
	size_t payload_len; /**< payload length in bytes */
	int64_t dead_at_ms; /**< when it was dead-lettered (handle clock) */
} durq_dead_letter;

/** durq_dead_letter.source: where a dead letter came from. */
enum {
	DURQ_DEAD_ORCH = 1, /**< an orchestrator message */
	DURQ_DEAD_WORK = 2 /**< a worker item */
};

/** How many messages and items wait, by state, read at the call (durq_queue_depths_get()). */
typedef struct durq_queue_depths {
	int64_t orch_ready; /**< orchestrator messages visible now */
	int64_t orch_delayed; /**< orchestrator messages visible later (timers) */
	int64_t orch_leased; /**< orchestrator messages of leased turns */
	int64_t work_ready; /**< worker items ready */
	int64_t work_delayed; /**< worker items visible later */
	int64_t work_leased; /**< worker items leased */
	int64_t dead_letters; /**< dead letters */
	int64_t instances_locked; /**< instances leased now */
} durq_queue_depths;

/** Read an instance.
 * @param db an open handle
 * @param out set to a new info (free with durq_instance_info_free())
 * @param instance_id the instance
 * @return DURQ_OK; DURQ_ENOTFOUND; DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no
 *         pool connection within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_instance_get(durq *db, durq_instance_info **out, const char *instance_id);
/** Free what durq_instance_get() returned.
 * @param info the info (may be NULL)
 */
DURQ_EXTERN void durq_instance_info_free(durq_instance_info *info);
/** Every instance id with the status (status < 0 = any), in byte order of the id. Refuses
 * with DURQ_ETOOBIG (and returns nothing) when more than DURQ_INSTANCE_LIST_MAX match: use
 * durq_instance_list_page then. Free with durq_strings_free.
 * @param db an open handle
 * @param ids set to a new array of ids (each a NUL-terminated string); free with
 *        durq_strings_free()
 * @param n set to the number of entries
 * @param status enum durq_status, < 0 = any
 * @return DURQ_OK; DURQ_ETOOBIG (more than DURQ_INSTANCE_LIST_MAX match), DURQ_EINVAL (a bad
 *         argument), DURQ_ECLOSED, DURQ_EBUSY (no pool connection within pool_timeout_ms),
 *         DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_instance_list(durq *db, char ***ids, size_t *n, int status);
/** One page of instance ids with the status (status < 0 = any), in byte order of the id,
 * each greater than after_id (NULL = from the first). max 0 = DURQ_INSTANCE_PAGE_DEFAULT;
 * larger than DURQ_INSTANCE_LIST_MAX is clamped to it. *n < max means the last page; the
 * next page starts after the last id returned. Keyset paging: instances created or deleted
 * meanwhile never make a page repeat or skip an id that stays. Free with durq_strings_free.
 * @param db an open handle
 * @param ids set to a new array of ids (each a NUL-terminated string); free with
 *        durq_strings_free()
 * @param n set to the number of entries
 * @param status enum durq_status, < 0 = any
 * @param after_id the last id of the previous page, NULL for the first
 * @param max page size (0 = default)
 * @return DURQ_OK; DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no pool connection
 *         within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_instance_list_page(durq *db, char ***ids, size_t *n, int status,
					const char *after_id, size_t max);
/** Free an id array returned by durq.
 * @param strings the array (may be NULL)
 * @param n its length
 */
DURQ_EXTERN void durq_strings_free(char **strings, size_t n);
/** execution_id 0 = current execution. DURQ_ENOTFOUND if the instance does not exist; an
 * execution it never had (or one pruned) reads as DURQ_OK with no events.
 * Free with durq_events_free.
 * @param db an open handle
 * @param events set to a new array (free with durq_events_free())
 * @param n set to the number of entries
 * @param instance_id the instance
 * @param execution_id the execution, 0 = current
 * @return DURQ_OK; DURQ_ENOTFOUND; DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no
 *         pool connection within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_history_read(durq *db, durq_event **events, size_t *n,
				  const char *instance_id, uint64_t execution_id);
/** Free what durq_history_read() returned.
 * @param events the array (may be NULL)
 * @param n its length
 */
DURQ_EXTERN void durq_events_free(durq_event *events, size_t n);
/** The executions of an instance, with their name, version and times (output NULL: see
 * durq_execution_get()).
 * @param db an open handle
 * @param out set to a new array (free with durq_execution_list_free())
 * @param n set to the number of entries
 * @param instance_id the instance
 * @return DURQ_OK; DURQ_ENOTFOUND; DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no
 *         pool connection within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_execution_list(durq *db, durq_execution_info **out, size_t *n,
				    const char *instance_id);
/** Every execution with its name, version and times (output NULL: see durq_execution_get).
 * Free with durq_execution_list_free.
 * @param list the array (may be NULL)
 */
DURQ_EXTERN void durq_execution_list_free(durq_execution_info *list);
/** Delete an instance with its queues, lock and history, whatever its status; its
 * children are left alone (for the checked, cascading delete see
 * durq_instance_delete_many).
 * @param db an open handle
 * @param instance_id the instance
 * @return DURQ_OK once durable; DURQ_ENOTFOUND, DURQ_EINVAL (a bad argument, the message says
 *         which; also a write from a durq callback on the writing thread), DURQ_ECLOSED,
 *         DURQ_EBUSY (another process held the write lock past busy_timeout_ms), DURQ_EIO
 *         (outcome unknown: see DURQ_EIO), DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_instance_delete(durq *db, const char *instance_id);
/** Delete executions older than before_execution_id; never the current one.
 * @param db an open handle
 * @param pruned set to how many executions went (may be NULL)
 * @param instance_id the instance
 * @param before_execution_id executions with a lower id go
 * @return DURQ_OK once durable; DURQ_EINVAL (a bad argument, the message says which; also a
 *         write from a durq callback on the writing thread), DURQ_ECLOSED, DURQ_EBUSY
 *         (another process held the write lock past busy_timeout_ms), DURQ_EIO (outcome
 *         unknown: see DURQ_EIO), DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_execution_prune(durq *db, size_t *pruned, const char *instance_id,
				     uint64_t before_execution_id);
/** List dead letters, oldest first.
 * @param db an open handle
 * @param out set to a new array (free with durq_dead_letters_free())
 * @param n set to the number of entries
 * @param max most entries, 0 = 1000
 * @return DURQ_OK; DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no pool connection
 *         within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_dead_list(durq *db, durq_dead_letter **out, size_t *n, size_t max);
/** Free what durq_dead_list() returned.
 * @param list the array (may be NULL)
 * @param n its length
 */
DURQ_EXTERN void durq_dead_letters_free(durq_dead_letter *list, size_t n);
/** Put a dead letter back on its queue with attempt 0.
 * @param db an open handle
 * @param dead_id the dead letter id
 * @return DURQ_OK once durable; DURQ_ENOTFOUND, DURQ_EINVAL (a bad argument, the message says
 *         which; also a write from a durq callback on the writing thread), DURQ_ECLOSED,
 *         DURQ_EBUSY (another process held the write lock past busy_timeout_ms), DURQ_EIO
 *         (outcome unknown: see DURQ_EIO), DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_dead_requeue(durq *db, int64_t dead_id);
/** queue: a worker queue name, or NULL for all worker queues.
 * @param db an open handle
 * @param out set to the counts, read at the call
 * @param queue a worker queue, or NULL for all
 * @return DURQ_OK; DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no pool connection
 *         within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_queue_depths_get(durq *db, durq_queue_depths *out, const char *queue);

/* ---- hierarchy, deletion and retention (issue 10: G8, G9) --------------------------- */

/** What a delete removed (the struct may grow: durq sets version). */
typedef struct durq_delete_counts {
	unsigned int version;      /**< DURQ_DELETE_COUNTS_VERSION, set by durq */
	uint64_t instances; /**< instances deleted */
	uint64_t executions; /**< executions deleted */
	uint64_t events;           /**< history rows */
	uint64_t messages;         /**< orchestrator messages and worker items */
} durq_delete_counts;
/** Current version of durq_delete_counts. */
#define DURQ_DELETE_COUNTS_VERSION 1

/** Flags of durq_instance_delete_many(). */
enum durq_delete_flags {
	DURQ_DELETE_FORCE = 1u /**< also instances not finished, and sub-orchestrations named
				* directly */
};

/**
 * Delete the n instances ids[] and every descendant of each (instances whose parent_id
 * leads to it), with their executions, history, queued messages, worker items and locks:
 * all in one transaction, or nothing. Without DURQ_DELETE_FORCE the call is refused with
 * DURQ_ECONFLICT (nothing deleted) if any instance it would delete is not COMPLETED,
 * FAILED or TERMINATED, or if an id names a sub-orchestration whose parent exists and is
 * not deleted by the same call. DURQ_ENOTFOUND if an id names no instance. n is 1 ..
 * max_turn_entries (else DURQ_EINVAL / DURQ_ETOOBIG). counts (may be NULL) = what went.
 * Sync: returns after COMMIT; the async form reports counts.instances in
 * durq_completion.count.
 * @param db an open handle
 * @param counts set to what was deleted (may be NULL)
 * @param ids the instances
 * @param n how many
 * @param flags enum durq_delete_flags
 * @return DURQ_OK once durable; DURQ_ECONFLICT, DURQ_ENOTFOUND, DURQ_ETOOBIG, DURQ_EINVAL (a
 *         bad argument, the message says which; also a write from a durq callback on the
 *         writing thread), DURQ_ECLOSED, DURQ_EBUSY (another process held the write lock past
 *         busy_timeout_ms), DURQ_EIO (outcome unknown: see DURQ_EIO), DURQ_EFULL,
 *         DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_instance_delete_many(durq *db, durq_delete_counts *counts,
					  const char *const *ids, size_t n, unsigned int flags);
/** Asynchronous durq_instance_delete_many(); durq_completion.count = instances deleted.
 * @param db an open handle
 * @param ids the instances (copied)
 * @param n how many
 * @param flags enum durq_delete_flags
 * @param a how to report: callback, context, group, flags (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion (durq_completion.rc,
 *         with the codes of the synchronous form); DURQ_EINVAL or DURQ_ETOOBIG for bad input
 *         (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_instance_delete_many_async(durq *db, const char *const *ids, size_t n,
						unsigned int flags, const durq_async *a);
/** The direct children of an instance (instances whose parent_id is it), in byte order of
 * the id; none is DURQ_OK with n = 0. Free with durq_strings_free.
 * @param db an open handle
 * @param ids set to a new array of ids (each a NUL-terminated string); free with
 *        durq_strings_free()
 * @param n set to the number of entries
 * @param instance_id the parent
 * @return DURQ_OK; DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no pool connection
 *         within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_instance_children(durq *db, char ***ids, size_t *n,
				       const char *instance_id);
/** The instance and all its descendants: the instance first, then by depth, then by id.
 * DURQ_ENOTFOUND if the instance does not exist. Free with durq_strings_free.
 * @param db an open handle
 * @param ids set to a new array of ids (each a NUL-terminated string); free with
 *        durq_strings_free()
 * @param n set to the number of entries
 * @param instance_id the root
 * @return DURQ_OK; DURQ_ENOTFOUND; DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no
 *         pool connection within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_instance_tree(durq *db, char ***ids, size_t *n, const char *instance_id);

/**
 * Retention: delete up to limit (1..DURQ_INSTANCE_LIST_MAX) top-level instances (no
 * parent_id, or a parent that no longer exists) that finished (COMPLETED, FAILED,
 * TERMINATED) before completed_before_ms, oldest first, each with its descendants, in one
 * transaction. Running instances are never touched; a tree in which some descendant is
 * still running is skipped whole. counts (may be NULL) = what went.
 * @param db an open handle
 * @param counts set to what was deleted (may be NULL)
 * @param completed_before_ms instances that finished before this time (handle clock)
 * @param limit most top-level instances
 * @return DURQ_OK once durable; DURQ_EINVAL (a bad argument, the message says which; also a
 *         write from a durq callback on the writing thread), DURQ_ECLOSED, DURQ_EBUSY
 *         (another process held the write lock past busy_timeout_ms), DURQ_EIO (outcome
 *         unknown: see DURQ_EIO), DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_instance_purge(durq *db, durq_delete_counts *counts,
				    int64_t completed_before_ms, size_t limit);
/** Asynchronous durq_instance_purge(); durq_completion.count = instances deleted.
 * @param db an open handle
 * @param completed_before_ms instances that finished before this time
 * @param limit most top-level instances
 * @param a how to report: callback, context, group, flags (may be NULL: fire and forget)
 * @return DURQ_OK once queued: the result comes later in the completion (durq_completion.rc,
 *         with the codes of the synchronous form); DURQ_EINVAL or DURQ_ETOOBIG for bad input
 *         (nothing queued), DURQ_EAGAIN with DURQ_SUBMIT_NOWAIT and a full backlog,
 *         DURQ_ECLOSED, DURQ_ENOMEM. An error means the op never completes.
 */
DURQ_EXTERN int durq_instance_purge_async(durq *db, int64_t completed_before_ms, size_t limit,
					  const durq_async *a);

/** Bounds of durq_execution_prune_ex(); zero = no such bound. */
typedef struct durq_prune_options {
	unsigned int version;         /**< DURQ_PRUNE_OPTIONS_VERSION */
	uint64_t keep_last;           /**< keep the newest N executions (the current counts); 0 =
				       * no such bound */
	int64_t completed_before_ms;  /**< only executions that ended before; 0 = no such bound */
} durq_prune_options;
/** Current version of durq_prune_options. */
#define DURQ_PRUNE_OPTIONS_VERSION 1
/** Initialiser of durq_prune_options: no bound set. */
#define DURQ_PRUNE_OPTIONS_INIT {.version = DURQ_PRUNE_OPTIONS_VERSION}

/** Delete executions (and their history) that satisfy every bound given, never the current
 * one; at least one bound is required (DURQ_EINVAL). instance_id NULL = every instance.
 * DURQ_ENOTFOUND for a named instance that does not exist.
 * @param db an open handle
 * @param pruned set to how many executions went (may be NULL)
 * @param instance_id the instance, NULL = every instance
 * @param opts the bounds (at least one)
 * @return DURQ_OK once durable; DURQ_ENOTFOUND, DURQ_EINVAL (a bad argument, the message says
 *         which; also a write from a durq callback on the writing thread), DURQ_ECLOSED,
 *         DURQ_EBUSY (another process held the write lock past busy_timeout_ms), DURQ_EIO
 *         (outcome unknown: see DURQ_EIO), DURQ_EFULL, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_execution_prune_ex(durq *db, size_t *pruned, const char *instance_id,
					const durq_prune_options *opts);
/** durq_execution_prune_ex() submitted asynchronously (inputs copied at submit); the
 * completion's count is the number of executions pruned.
 * @param db an open handle
 * @param instance_id the instance, NULL = every instance
 * @param opts the bounds (at least one)
 * @param a how to report (may be NULL)
 * @return DURQ_OK if submitted; DURQ_EINVAL, DURQ_ECLOSED, DURQ_EAGAIN (NOWAIT, backlog
 *         full), DURQ_ENOMEM
 */
DURQ_EXTERN int durq_execution_prune_ex_async(durq *db, const char *instance_id,
					      const durq_prune_options *opts, const durq_async *a);

/** A filter for durq_instance_list_filter: zero fields match anything. */
typedef struct durq_instance_filter {
	unsigned int version;        /**< DURQ_INSTANCE_FILTER_VERSION */
	int status;                  /**< enum durq_status; 0 = any */
	const char *name;            /**< exact name of the current execution; NULL = any */
	const char *version_tag;     /**< exact version; NULL = any */
	int64_t created_from_ms;     /**< created_ms >= this */
	int64_t created_before_ms;   /**< created_ms < this; 0 = no bound */
	int64_t completed_from_ms;   /**< completed_ms >= this (unfinished never match a bound) */
	int64_t completed_before_ms; /**< completed_ms < this; 0 = no bound */
} durq_instance_filter;
/** Current version of durq_instance_filter. */
#define DURQ_INSTANCE_FILTER_VERSION 1
/** Initialiser of durq_instance_filter: matches every instance. */
#define DURQ_INSTANCE_FILTER_INIT {.version = DURQ_INSTANCE_FILTER_VERSION}

/** One keyset page of ids matching f (NULL = all), like durq_instance_list_page.
 * @param db an open handle
 * @param ids set to a new array of ids (each a NUL-terminated string); free with
 *        durq_strings_free()
 * @param n set to the number of entries
 * @param f the filter (NULL = all)
 * @param after_id the last id of the previous page, NULL for the first
 * @param max page size (0 = default)
 * @return DURQ_OK; DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no pool connection
 *         within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_instance_list_filter(durq *db, char ***ids, size_t *n,
					  const durq_instance_filter *f, const char *after_id,
					  size_t max);

/* ---- per-execution and system reads (issue 10: G10, G11, G12) ---------------------- */

/** One execution with its output (execution_id 0 = current). DURQ_ENOTFOUND if the
 * instance or that execution does not exist (pruned ones included). Free with
 * durq_execution_info_free.
 * @param db an open handle
 * @param out set to a new info (free with durq_execution_info_free())
 * @param instance_id the instance
 * @param execution_id the execution, 0 = current
 * @return DURQ_OK; DURQ_ENOTFOUND; DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no
 *         pool connection within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_execution_get(durq *db, durq_execution_info **out,
				   const char *instance_id, uint64_t execution_id);
/** Free what durq_execution_get() returned.
 * @param info the info (may be NULL)
 */
DURQ_EXTERN void durq_execution_info_free(durq_execution_info *info);

/** Counts over the whole database (durq_system_counts_get()). */
typedef struct durq_system_counts {
	unsigned int version;        /**< set by durq: DURQ_SYSTEM_COUNTS_VERSION */
	uint64_t instances;          /**< all stored instances */
	uint64_t running; /**< instances RUNNING */
	uint64_t completed; /**< instances COMPLETED */
	uint64_t failed; /**< instances FAILED */
	uint64_t terminated; /**< instances TERMINATED */
	uint64_t executions;         /**< stored executions (pruned ones not counted) */
	uint64_t events;             /**< stored history events */
} durq_system_counts;
/** Current version of durq_system_counts. */
#define DURQ_SYSTEM_COUNTS_VERSION 1

/** Counts over the whole database, from one snapshot.
 * @param db an open handle
 * @param out set to the counts (set out->version first)
 * @return DURQ_OK; DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no pool connection
 *         within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_system_counts_get(durq *db, durq_system_counts *out);

/**
 * Poll an instance's custom status without copying the rest: when its version is greater
 * than last_seen_version, DURQ_OK with *value (malloc'd copy, free with free(); NULL with
 * *len 0 when it was cleared) and *version; when not, DURQ_EMPTY with *value NULL and
 * *version = the stored version. DURQ_ENOTFOUND if the instance does not exist.
 * @param db an open handle
 * @param value set to a malloc'd copy (free with free()), or NULL
 * @param len set to its length
 * @param version set to the stored version
 * @param instance_id the instance
 * @param last_seen_version the version the caller has
 * @return DURQ_OK (newer), DURQ_EMPTY (not newer), DURQ_ENOTFOUND; DURQ_EINVAL (a bad
 *         argument), DURQ_ECLOSED, DURQ_EBUSY (no pool connection within pool_timeout_ms),
 *         DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_custom_status_get(durq *db, void **value, size_t *len, uint64_t *version,
				       const char *instance_id, uint64_t last_seen_version);

/* ---- per-instance key/value state (issue 10: G3) ------------------------------------ */

/**
 * One key of an instance's key/value state (G3).
 * @param db an open handle
 * @param value set to a malloc'd copy of the value (free with free(); an empty value is a
 *        buffer of 1 byte with *len 0)
 * @param len set to the value's length
 * @param instance_id the instance
 * @param key the key (1..DURQ_KV_KEY_MAX bytes of valid UTF-8)
 * @return DURQ_OK, DURQ_ENOTFOUND (no such instance or key); DURQ_EINVAL (a bad argument),
 *         DURQ_ECLOSED, DURQ_EBUSY (no pool connection within pool_timeout_ms), DURQ_EIO,
 *         DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_kv_get(durq *db, void **value, size_t *len, const char *instance_id,
			    const char *key);
/**
 * Every key of an instance, ordered by key (G3).
 * @param db an open handle
 * @param entries set to the keys (NULL when none); free with durq_kv_entries_free()
 * @param n set to their number
 * @param instance_id the instance
 * @return DURQ_OK (also with n = 0), DURQ_ENOTFOUND (no such instance); DURQ_EINVAL (a bad
 *         argument), DURQ_ECLOSED, DURQ_EBUSY (no pool connection within pool_timeout_ms),
 *         DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_kv_list(durq *db, durq_kv_entry **entries, size_t *n,
			     const char *instance_id);
/** Free what durq_kv_list() returned.
 * @param entries the array (may be NULL)
 * @param n its length
 */
DURQ_EXTERN void durq_kv_entries_free(durq_kv_entry *entries, size_t n);

/* ---- configuration read-back -------------------------------------------------------- */

/** The effective options after defaults and environment overrides.
 * @param db an open handle
 * @param out set to the options in effect
 * @return DURQ_OK; DURQ_EINVAL, DURQ_ECLOSED
 */
DURQ_EXTERN int durq_options_get(durq *db, durq_options *out);
/** Read back one PRAGMA as the database reports it, e.g. "journal_mode" -> "wal".
 * Allowed names: journal_mode synchronous busy_timeout foreign_keys temp_store cache_size
 * mmap_size wal_autocheckpoint journal_size_limit trusted_schema page_size.
 * @param db an open handle
 * @param buf where the value goes, NUL-terminated
 * @param len size of buf
 * @param name one of the names above
 * @return DURQ_OK; DURQ_EINVAL (unknown name, a provider without PRAGMAs), DURQ_ETOOBIG (buf
 *         too small), DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no pool
 *         connection within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
DURQ_EXTERN int durq_pragma_get(durq *db, char *buf, size_t len, const char *name);

/* ---- stats -------------------------------------------------------------------------- */

/** Kinds of write op: the index of durq_stats.ops and the op label of the metrics. */
enum durq_op_kind {
	DURQ_OP_ORCH_ENQUEUE = 0, /**< durq_orch_enqueue */
	DURQ_OP_WORK_ENQUEUE, /**< durq_work_enqueue */
	DURQ_OP_ORCH_CLAIM, /**< the write half of durq_orch_fetch */
	DURQ_OP_ORCH_ACK, /**< durq_orch_ack */
	DURQ_OP_ORCH_ABANDON, /**< durq_orch_abandon */
	DURQ_OP_ORCH_RENEW, /**< durq_orch_renew */
	DURQ_OP_WORK_CLAIM, /**< the write half of durq_work_fetch */
	DURQ_OP_WORK_ACK, /**< durq_work_ack (and _many) */
	DURQ_OP_WORK_ABANDON, /**< durq_work_abandon */
	DURQ_OP_WORK_RENEW, /**< durq_work_renew */
	DURQ_OP_DEAD_REQUEUE, /**< durq_dead_requeue */
	DURQ_OP_INSTANCE_DELETE, /**< durq_instance_delete */
	DURQ_OP_EXECUTION_PRUNE, /**< durq_execution_prune (and _ex) */
	DURQ_OP_INSTANCE_DELETE_MANY, /**< durq_instance_delete_many */
	DURQ_OP_INSTANCE_PURGE,       /**< durq_instance_purge */
	DURQ_OP_SESSION_RENEW,        /**< durq_session_renew */
	DURQ_OP_SESSION_CLEANUP,      /**< durq_session_cleanup */
	DURQ_OP__COUNT /**< number of kinds */
};

/** Name of an op kind, e.g. "work_ack" (the Prometheus op label).
 * @param kind enum durq_op_kind
 * @return a static string, "unknown" for other values
 */
DURQ_EXTERN const char *durq_op_kind_name(int kind);

#define DURQ_STATS_BUCKETS 12 /**< ops/txn histogram: 1, 2-3, 4-7, ..., >= 2048 */

/** Latency histograms (durq_latency) have DURQ_LATENCY_BUCKETS buckets: bucket i counts the
 * durations d with bound[i-1] < d <= bound[i], bound[] = DURQ_LATENCY_BOUNDS_US in
 * microseconds (log-spaced 100 us .. 10 s, bound[-1] = 0); the last bucket has no upper
 * bound (+Inf). Usable as an initializer: static const uint64_t b[] = DURQ_LATENCY_BOUNDS_US; */
#define DURQ_LATENCY_BUCKETS 17
/** Upper bounds of the latency buckets in microseconds (see DURQ_LATENCY_BUCKETS). */
#define DURQ_LATENCY_BOUNDS_US                                                          \
	{100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,  \
	 1000000, 2500000, 5000000, 10000000}

/** A latency histogram of durq_stats (buckets: DURQ_LATENCY_BOUNDS_US). */
typedef struct durq_latency {
	uint64_t count;                        /**< samples: the sum of buckets[] */
	uint64_t sum_ns;                       /**< their durations, summed */
	uint64_t buckets[DURQ_LATENCY_BUCKETS]; /**< per bucket, not cumulative */
} durq_latency;

/** Counters of one handle since durq_open(), plus the database's depths and sizes (durq_stats_get()). */
typedef struct durq_stats {
	uint64_t ops[DURQ_OP__COUNT];     /**< committed or failed, by kind */
	uint64_t op_failures;             /**< ops that returned an error other than EMPTY */
	uint64_t transactions;            /**< committed write transactions */
	uint64_t txn_ops;                 /**< ops carried by those transactions */
	uint64_t max_ops_per_txn; /**< largest batch committed */
	double mean_ops_per_txn; /**< txn_ops / transactions */
	uint64_t ops_per_txn_hist[DURQ_STATS_BUCKETS]; /**< ops per transaction, buckets 1, 2-3, 4-7, ... (DURQ_STATS_BUCKETS) */
	uint64_t commit_failures; /**< write transactions that failed to commit */
	uint64_t commit_ns_total;         /**< BEGIN..COMMIT time, summed */
	uint64_t commit_ns_max; /**< longest commit */
	uint64_t busy_retries;            /**< SQLITE_BUSY seen and retried (hidden from callers) */
	uint64_t busy_surfaced;           /**< DURQ_EBUSY returned to callers */
	uint64_t backlog_waits;           /**< callers blocked because the backlog was full */
	uint64_t pool_checkouts; /**< read connections checked out */
	uint64_t pool_waits; /**< checkouts that had to wait */
	uint64_t pool_wait_ns; /**< time spent waiting for a connection */
	uint64_t pool_in_use; /**< connections checked out now */
	uint64_t pool_size; /**< options.pool_size */
	durq_queue_depths depths;         /**< read at the time of the call */
	uint64_t db_bytes;                /**< database file size (0 if the provider can't tell) */
	uint64_t wal_bytes;               /**< write-ahead log size (0 if none) */
	durq_latency commit_latency;      /**< BEGIN..COMMIT of each committed write transaction */
	durq_latency work_ack_latency;    /**< work acks that succeeded: submit -> durable */
	durq_latency orch_ack_latency;    /**< orchestration acks (turns) that succeeded: likewise */
} durq_stats;

/** Counters since durq_open of this handle, plus the database's queue depths and sizes read
 * at the call.
 * @param db an open handle
 * @param out set to the snapshot
 * @return DURQ_OK; DURQ_EINVAL (a bad argument), DURQ_ECLOSED, DURQ_EBUSY (no pool connection
 *         within pool_timeout_ms), DURQ_EIO, DURQ_ENOMEM, DURQ_ECORRUPT
 */
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
