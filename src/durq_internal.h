/*
 * durq_internal.h — the core's private types: the handle, the committer, the pool, stats.
 * Not installed. Concurrency Kit and pthread types live here, never in public headers.
 */
#ifndef DURQ_INTERNAL_H
#define DURQ_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>

#include <ck_ring.h>

#include "durq.h"
#include "durq/provider.h"

/* ---- TSan: happens-before through the ck ring (its fences are invisible to TSan) ----- */
#if defined(__SANITIZE_THREAD__)
#define DURQ_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DURQ_TSAN 1
#endif
#endif
#ifdef DURQ_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define DURQ_HB_RELEASE(p) __tsan_release(p)
#define DURQ_HB_ACQUIRE(p) __tsan_acquire(p)
#else
#define DURQ_HB_RELEASE(p) ((void)(p))
#define DURQ_HB_ACQUIRE(p) ((void)(p))
#endif

#define DURQ_ERRMSG_MAX 256

/* ---- error.c ---- */
void durq_error_clear(void);
/* Copy this thread's message (for handing a committer result to the caller's thread). */
void durq_error_copy(char *buf, size_t len);

/* ---- async.c ---- */
int durq_exec_async(durq *db, durq_op *op, const durq_async *how);
int durq_exec_ack_many(durq *db, const durq_work_ack_req *reqs, size_t n, int *rcs);
/* Report an async op's result (callback, group) and free it. */
struct durq_pending;
void durq_async_complete(struct durq_pending *p);

/* api.c: durq_turn_clear, durq_work_item_clear (declared in durq/provider.h) */

/* ---- options.c ---- */
/* durq_options_resolve (durq/provider.h) logs nothing; the handle resolves with this, which
 * logs (CONFIG, WARN) each environment variable that weakens a setting of the caller. */
int durq_options_resolve_logged(durq_options *out, const durq_options *in, unsigned int flags);
/* Apply the DURQ_* variables to o; warn (CONFIG) where one weakens a value of caller. */
int durq_options_apply_env(durq_options *o, const durq_options *caller, int is_memory);

/* ---- clock.c ---- */
int64_t durq_clock_wall_ms(void *ctx);
void durq_deadline_to_timespec(struct timespec *ts, uint64_t mono_deadline_ns);
int durq_token_random(durq_token *out);

/* ---- stats.c: counters written with ck_pr, padded so hot ones don't share a line ---- */
/* A latency histogram's counters; its count is the sum of the buckets (see durq_latency). */
typedef struct durq_latency_counters {
	uint64_t sum_ns;
	uint64_t buckets[DURQ_LATENCY_BUCKETS];
} durq_latency_counters;

typedef struct durq_counters {
	uint64_t ops[DURQ_OP__COUNT];
	uint64_t op_failures;
	uint64_t transactions;
	uint64_t txn_ops;
	uint64_t max_ops_per_txn;
	uint64_t hist[DURQ_STATS_BUCKETS];
	uint64_t commit_failures;
	uint64_t commit_ns_total;
	uint64_t commit_ns_max;
	durq_latency_counters commit_latency;
	char pad0[64];
	uint64_t busy_retries;
	uint64_t busy_surfaced;
	uint64_t backlog_waits;
	char pad1[64];
	uint64_t pool_checkouts;
	uint64_t pool_waits;
	uint64_t pool_wait_ns;
	uint64_t pool_in_use;
	char pad2[64];
	durq_latency_counters ack_latency[2]; /* [0] work acks, [1] orchestration acks */
} durq_counters;

void durq_stats_txn(durq_counters *c, uint64_t nops, uint64_t ns, int ok);
void durq_stats_op(durq_counters *c, int kind, int rc);
/* An ack (work or orchestration; other kinds are ignored) became durable ns after submit. */
void durq_stats_ack(durq_counters *c, int kind, uint64_t ns);
void durq_stats_add(uint64_t *counter, uint64_t v);
void durq_stats_max(uint64_t *counter, uint64_t v);
void durq_stats_snapshot(const durq_counters *c, durq_stats *out);

/* ---- pool.c ---- */
typedef struct durq_pool {
	durq_provider *provider;
	durq_counters *counters;
	const durq_options *opts;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	durq_conn **conns;   /* all connections */
	durq_conn **free;    /* stack of idle ones */
	int size;
	int nfree;
	bool closed;
} durq_pool;

int durq_pool_init(durq_pool *p, durq_provider *prov, const durq_options *o, durq_counters *c);
int durq_pool_checkout(durq_pool *p, durq_conn **out);
/* bad = the connection saw an I/O error: the pool reopens it */
void durq_pool_checkin(durq_pool *p, durq_conn *c, bool bad);
void durq_pool_destroy(durq_pool *p);

/* ---- committer.c ---- */
/* Completion handshake: the caller spins briefly on state, then sleeps on done. */
enum { DURQ_PENDING_WAITING = 0, DURQ_PENDING_DONE = 1, DURQ_PENDING_SLEEPING = 2 };

typedef struct durq_pending {
	durq_op op;
	int rc;
	int state;                   /* ck_pr: DURQ_PENDING_* (synchronous callers) */
	char errmsg[DURQ_ERRMSG_MAX];
	sem_t done;                  /* synchronous callers only */
	bool async;                  /* owns its inputs; completed by durq_async_complete */
	durq_done_fn done_fn;
	void *done_ctx;
	durq_group *group;
	struct durq_pending *next;   /* the committer's overflow list */
	durq_counters *counters;     /* async: where its ack latency is counted */
	uint64_t submit_ns;          /* async: durq_clock_mono_ns() at submit */
} durq_pending;

/* Internal op kind: completes when everything posted before it has (durq_flush). */
#define DURQ_OP_FLUSH (DURQ_OP__COUNT + 1)

/* ---- syncer.c ---- */
typedef struct durq_flushing durq_flushing;
typedef struct durq_syncer {
	struct durq *db;
	durq_conn *conn;             /* the committer's connection: flush() only */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;          /* the list and stop */
	pthread_cond_t cv;
	durq_flushing *head, *tail;  /* committed batches awaiting their flush, in commit order */
	bool stop;
	int pending;                 /* ck_pr: batches pushed and not yet completed */
	int broken;                  /* ck_pr: a flush failed; cleared at the recovery marker */
} durq_syncer;

int durq_syncer_start(durq_syncer *s, struct durq *db, durq_conn *conn);
/* Committer thread: a batch committed with DURQ_TXN_DEFER_FLUSH; its ops complete after
 * the flush that covers it. */
int durq_syncer_push(durq_syncer *s, durq_pending *const *ops, size_t n, size_t txn_ops,
		     uint64_t t0);
/* Committer thread: flush_recover succeeded; batches pushed after it are judged afresh. */
int durq_syncer_push_marker(durq_syncer *s);
bool durq_syncer_broken(durq_syncer *s);
/* Every batch pushed has been completed (orders those completions before what follows). */
bool durq_syncer_drained(durq_syncer *s);
/* Nothing awaiting a flush and not broken (a direct commit may run). */
bool durq_syncer_idle(durq_syncer *s);
void durq_syncer_stop(durq_syncer *s);

typedef struct durq_committer {
	struct durq *db;
	ck_ring_t ring;
	ck_ring_buffer_t *slots;
	unsigned int ring_size;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;          /* guards the sleep/wake handshake and close */
	pthread_mutex_t enq_mu;      /* serialises producers (see committer.c) */
	pthread_mutex_t conn_mu;     /* the write connection: a batch, or a direct caller */
	pthread_cond_t wake;         /* committer waits here when the ring is empty */
	pthread_cond_t space;        /* producers wait here when the ring is full */
	int sleeping;                /* ck_pr */
	int space_waiters;           /* ck_pr */
	int paused;                  /* test hook: hold ops in the ring */
	int spinners;                /* ck_pr: callers spinning for their completion */
	int max_spinners;            /* online CPUs - 1: one core stays for the committer */
	uint64_t spin_ns;            /* ck_pr: caller spin budget, follows commit time */
	uint64_t started_ns;         /* when it started: tells this committer from an earlier one
				      * at the same address (post_direct's per-thread state) */
	uint64_t commit_ewma_ns;     /* ck_pr: committer and syncer threads */
	unsigned int expect;         /* committer thread only: callers expected back */
	bool stop;                   /* under mu */
	int stopping;                /* ck_pr mirror of stop, for the spin loop */
	durq_conn *conn;             /* the only write connection */
	durq_pending **batch;
	pthread_mutex_t ovf_mu;      /* the overflow list */
	durq_pending *ovf_head;      /* ops callbacks submitted on a write thread (head: ck_pr) */
	durq_pending *ovf_tail;
	bool deferred;               /* commits with DURQ_TXN_DEFER_FLUSH, flushed by syncer */
	bool recovered;              /* committer thread: marker pushed for this broken state */
	durq_syncer syncer;
} durq_committer;

int durq_committer_start(durq_committer *c, struct durq *db);
/* Post op, wait for its result. Group mode only. */
int durq_committer_submit(durq_committer *c, durq_pending *p);
/* Post an async op: on DURQ_OK it is no longer the caller's (the committer's, or already
 * committed, completed and freed on this thread: see post_direct in committer.c). Blocks
 * while the backlog is full, or DURQ_EAGAIN with nowait; never blocks on the committer
 * thread itself. */
int durq_committer_post(durq_committer *c, durq_pending *p, bool nowait);
void durq_committer_stop(durq_committer *c);
/* Test hook: while paused the committer leaves ops in the ring; resume commits them as one
 * batch (up to max_batch). */
void durq_committer_pause(durq *db, int paused);
unsigned int durq_committer_backlog(durq *db);
/* Complete one op (its rc and errmsg set): wake its caller or run its callback. */
void durq_committer_complete(durq_pending *p);
/* Wake the committer if it sleeps (the syncer's last completion while closing). */
void durq_committer_kick(durq_committer *c);
/* Fold one commit's duration into the mean the waits follow (outliers clamped). */
void durq_committer_note_commit(durq_committer *c, uint64_t took_ns);
/* The bounded wait for stragglers after a batch. */
uint64_t durq_committer_straggler_wait_ns(const durq_committer *c);

/* ---- handle.c ---- */
/* Wake channels: a commit wakes only the fetchers that may find something. */
enum { DURQ_WAKE_ORCH = 0, DURQ_WAKE_WORK = 1, DURQ_WAKE__COUNT = 2 };

struct durq {
	durq_options opts;
	durq_provider *provider;
	durq_counters counters;
	durq_pool pool;
	durq_committer committer;
	int closed;                  /* ck_pr */
	int active;                  /* callers inside the API: ck_pr up, down under active_mu */
	pthread_mutex_t active_mu;   /* a leaving caller's last touch of the handle; close */
	pthread_mutex_t wake_mu;     /* fetch wakeups, close handshake */
	pthread_cond_t wake_cv[DURQ_WAKE__COUNT]; /* long-polling fetchers, per channel */
	uint64_t wake_seq[DURQ_WAKE__COUNT];      /* bumped after commits that may make work
						   * of that channel visible */
	/* Wake credits (api.c, await_claim): how many things commits of this process made
	 * fetchable that no claim has taken yet, capped (durq_wake_credit_cap). A
	 * fetcher claims again after finding nothing only by taking credit, so N fetchers do
	 * not each claim once per commit. Under wake_mu, like the rest of the wake state. */
	uint64_t wake_credit[DURQ_WAKE__COUNT];
	unsigned int wake_fetchers[DURQ_WAKE__COUNT]; /* callers inside a fetch's claim loop */
	/* Fetchers of a channel that are not interchangeable (other queues, queue sets,
	 * sessions, version filters) cannot share credit: once one is seen the channel goes
	 * back to claiming on every commit (sticky). wake_sig: the first fetcher's kind. */
	int wake_mixed[DURQ_WAKE__COUNT];
	uint64_t wake_sig[DURQ_WAKE__COUNT];
	pthread_cond_t idle_cv;      /* close waits here for callers to leave */
	pthread_mutex_t watch_mu;    /* guards watch and watch_version (watch.c) */
	durq_conn *watch;            /* sees other connections' commits, or NULL */
	uint64_t watch_version;      /* last data_version seen */
	pthread_t watch_thread;      /* runs change_wait, if the provider has it */
	bool watch_started;
	int watch_stop;              /* ck_pr; set under watch_mu */
	pthread_cond_t watch_cv;     /* wakes the watch thread's retry wait at close */
	int64_t next_due_ms;         /* earliest known future visible_at (clock domain) */
	int due_refreshing;          /* refreshes whose query is running (under wake_mu) */
	int64_t due_since;           /* earliest due committed while one ran (under wake_mu) */
	int close_state;             /* under active_mu: DURQ_CLOSE_* */
	int close_waiters;           /* under active_mu: second closers waiting (test hook) */
	pthread_cond_t closed_cv;    /* a second durq_close waits here for the first */
	struct durq_publisher *publisher; /* publish.c; NULL: this handle publishes no stats */
};

enum { DURQ_CLOSE_OPEN = 0, DURQ_CLOSE_RUNNING = 1, DURQ_CLOSE_DONE = 2 };

/* A write call made from inside durq on the writing thread (a log callback run by the
 * committer or by a per-op transaction) would wait for itself: it fails instead. */
void durq_writer_enter(void);
void durq_writer_leave(void);
bool durq_in_writer(void);

int64_t durq_clock_now(durq *db);
int durq_api_enter(durq *db);
void durq_api_leave(durq *db);
/* Run one write op: group mode via the committer, per-op mode on this thread. */
/* An instance id argument: non-NULL, 1..DURQ_INSTANCE_ID_MAX bytes (api.c). */
int durq_check_id(const char *id, const char *what);
/* Well-formed UTF-8 of n bytes (api.c): ids, names and keys must be. */
bool durq_utf8_valid(const char *s, size_t n);
/* A key/value key (G3): non-NULL, 1..DURQ_KV_KEY_MAX bytes of UTF-8 (api.c). */
int durq_check_kv_key(const char *key);
/* A session or owner id (G1): non-NULL, 1..DURQ_SESSION_ID_MAX bytes (api.c). */
int durq_check_session_id(const char *id, const char *what);
/* DURQ_OK if the provider has activity sessions (DURQ_PROVIDER_SESSIONS), else EINVAL. */
int durq_check_sessions(durq *db);
int durq_exec(durq *db, durq_op *op);
/* Group mode on a provider with DURQ_PROVIDER_CONCURRENT_WRITERS and a batch method: claims
 * run beside the committer, on the caller's pool connection. */
bool durq_claims_beside(const durq *db);
/* ops[0..n) in one flushed transaction on the caller's pool connection, beside the
 * committer (only where durq_claims_beside): durq_work_ack_fetch's acks and claim. Each
 * op's result in res[i]; < 0: the transaction failed, no op took effect. */
int durq_exec_beside(durq *db, durq_op *const *ops, durq_op_result *res, size_t n);
/* Called after a commit: wake fetchers if the ops may have made work visible. */
/* ---- watch.c ---- */
/* Open the watch connection (and thread, for change_wait). Never fails the open: without
 * a watch, fetchers claim again every poll interval. */
int durq_watch_start(durq *db);
void durq_watch_stop(durq *db);
/* Did any other connection commit since the last look? (true if the provider can't tell;
 * false with a watch thread, which wakes fetchers itself) */
bool durq_others_wrote(durq *db);
/* Re-read the earliest future visible_at from the database. */
void durq_next_due_refresh(durq *db);
void durq_notify_commit(durq *db, durq_op *const *ops, size_t n, int64_t now);
/* Run one op in its own transaction on conn (per-op mode). */
int durq_exec_per_op(durq *db, durq_conn *conn, durq_op *op);
/* Free what a claim op allocated when its transaction did not commit. */
void durq_op_discard_outputs(durq_op *op);
/* Claims may commit without a flush (DURQ_TXN_NO_FLUSH), and so may a stats publication
 * made to ride with claims (publish.c): losing one to a crash loses nothing. */
bool durq_op_is_claim(const durq_op *op);

/* ---- publish.c: each handle's counters, published into the database ---- */
#define DURQ_STATS_PUBLISH_MAX_MS 86400000
/* Start publishing (options.stats_publish_ms; a provider with the handle_stats hook; not an
 * in-memory database). Never fails the open: without memory it publishes nothing. */
void durq_publish_init(durq *db);
/* Close: delete this handle's row if it wrote one (one write op, before the committer
 * stops). */
void durq_publish_remove(durq *db);
void durq_publish_free(durq *db);
/* A write call of kind with_claims (a claim) or not is on its way in (group mode): post
 * the publication, if one is due, to the committer ahead of it so both share a batch. */
void durq_publish_post(durq *db, bool with_claims);
/* The same for a write that runs its own transaction (a claim beside the batch): if one
 * is due, *op is filled and true returned; the caller applies it in that transaction and
 * reports the outcome (the commit's, or the op's own failure) with durq_publish_done,
 * exactly once. */
bool durq_publish_take(durq *db, durq_op *op, bool with_claims);
void durq_publish_done(durq *db, int rc, const char *msg);
/* In an open write transaction on conn whose op took effect (per-op mode): apply the
 * publication if one is due, in a savepoint of its own. 1: applied, the caller reports the
 * commit's outcome with durq_publish_done; 0: none, or it failed (already reported). */
int durq_publish_apply(durq *db, durq_conn *conn, const durq_op_ctx *ctx, bool with_claims);
/* The counters text of a publication, and back (admin.c). */
int durq_publish_decode(const char *text, size_t len, durq_handle_stats *out);

/* Under wake_mu: the most credit a channel holds. An orchestration claim takes one turn,
 * so one per fetcher inside a fetch is of use; a work claim takes many items. */
static inline uint64_t durq_wake_credit_cap(const durq *db, int ch)
{
	return (uint64_t)db->wake_fetchers[ch] * (ch == DURQ_WAKE_ORCH ? 1u : 1024u);
}

#endif /* DURQ_INTERNAL_H */
