/*
 * sqlite_ckpt.c — the WAL checkpointer of a file database's write connection: a thread
 * ("durq-ckpt") with a connection of its own that runs the checkpoints SQLite's
 * wal_autocheckpoint used to run inside the committer's COMMIT.
 *
 * Why. A checkpoint copies ~1,000 WAL frames into the database file and fsyncs both files
 * (4-7 ms on the bench VM); run inside COMMIT it stalled the committer, and every ack in
 * flight with it, ~15 times a second at 256 in flight (profiling/RESULTS.md, session 6).
 *
 * How. attach() installs sqlite3_wal_hook on the write connection, which replaces SQLite's
 * automatic checkpoints there. After each commit the hook compares the WAL's frames with
 * what the last run covered and, once SQ_CKPT_FRAMES more are there, wakes the thread
 * (started at the first wake-up, so a database that never grows a 1,000-frame WAL never
 * gets one). The thread opens its connection at its first run, through the same VFS, and
 * runs PASSIVE checkpoints, which never take the write lock: the committer keeps
 * committing meanwhile. Durability holds as SQLite's own: a checkpoint first syncs the
 * WAL (through its own descriptor: the same file), so it never copies a frame that is not
 * on disk, and it syncs the database file before it records the frames as backfilled and
 * the next writer may reuse the WAL.
 *
 * A PASSIVE checkpoint that runs beside a writer lets the WAL restart only if no commit
 * lands between its start and the end of its database fsync; under steady load that is
 * rare and the WAL keeps growing. So the thread fsyncs the database file itself after each
 * run (sync_db), and past SQ_RESTART_FRAMES escalates as the writer's policy did
 * (sqlite_provider.c): a RESTART, which takes the write lock, copies the frames written
 * since the last run, fsyncs, and waits for readers to leave the WAL (budgets as the
 * writer's policy: 1 s, 3 s past SQ_FORCE_FRAMES). The committer does not fight for that
 * lock with its busy handler: a pending RESTART sets want_lock, and the write connection's
 * next BEGIN waits for it (sq_ckpt_yield) on a condition variable, which also tells the
 * checkpointer's busy handler that the write lock is free now.
 *
 * Also: flush_recover's TRUNCATE on the write connection pauses the thread (SQLite fails a
 * second checkpoint at once with SQLITE_BUSY); detach stops it (interrupting a run) and
 * joins it before the write connection closes, and SQLite's close-time checkpoint stays
 * as it was. If the thread cannot start, the hook checkpoints inline as SQLite's own did.
 *
 * Owns: the thread, its connection, the wake-up state, its counters. Does not own: the
 * write connection (sqlite_provider.c) or the policy's constants (sqlite_internal.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ck_pr.h>

#include "sqlite_internal.h"

#define YIELD_SLACK_MS 1000 /* the committer's wait beyond the RESTART's own budget */

typedef struct sq_ckpt {
	sq_provider *p;
	sqlite3 *wdb;             /* the write connection's database (the hook's) */
	sq_conn *conn;            /* the thread's connection; mu while a run may use it */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t wake;      /* the thread waits here for work */
	pthread_cond_t idle;      /* a run ended, or want_lock was cleared */
	pthread_cond_t yielded_cv; /* the write connection reached BEGIN with want_lock set */
	bool started, inline_only, requested, running, stop;
	int paused;
	int want_lock;            /* ck_pr: a RESTART wants the write lock */
	bool yielded;             /* mu: the write connection waits for it */
	int budget_ms;            /* the running RESTART's busy budget */
	uint64_t busy_since;
	unsigned int rng;
	/* ck_pr: restarts the hook saw << 32 | the WAL frames the last run covered (0 after a
	 * restart); one word, so a run never raises the base of a WAL that restarted under it */
	uint64_t base;
	int last_frames;          /* ck_pr: the WAL's frames after the last commit (the hook's) */
	sq_ckpt_counts n;         /* mu */
	int open_warned;
} sq_ckpt;

static void *ckpt_main(void *arg);

/* ---- the hook (write connection, inside COMMIT) -------------------------------------- */

/* The checkpoint SQLite's default hook ran: only when the thread cannot run. */
/* Raise the base from what `seen` says to frames, unless the WAL restarted since (or the
 * base is already higher). Returns the state now. */
static uint64_t base_raise(sq_ckpt *k, uint64_t seen, int frames)
{
	uint64_t to = (seen & ~0xffffffffull) | (uint32_t)frames;
	if (frames <= (int)(uint32_t)seen || !ck_pr_cas_64(&k->base, seen, to))
		return ck_pr_load_64(&k->base);
	return to;
}

/* The checkpoint SQLite's default hook ran: only when the thread cannot run. */
static void checkpoint_inline(sq_ckpt *k, sqlite3 *db)
{
	int log = 0, ckpt = 0;
	uint64_t seen = ck_pr_load_64(&k->base);
	if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt) ==
	    SQLITE_OK)
		base_raise(k, seen, log);
}

static void request(sq_ckpt *k, sqlite3 *db)
{
	pthread_mutex_lock(&k->mu);
	k->n.wakeups++;
	if (!k->started && !k->inline_only) {
		if (pthread_create(&k->thread, NULL, ckpt_main, k) == 0) {
			k->started = true;
			k->n.started = 1;
		} else {
			k->inline_only = true;
			durq_log_emit(k->p->opts, DURQ_LOG_WARN, "CHECKPOINT", "cannot start the "
				      "checkpointer thread (%s): checkpoints run on the committer",
				      strerror(errno));
		}
	}
	bool inl = k->inline_only;
	if (!inl && !k->requested) {
		k->requested = true;
		pthread_cond_signal(&k->wake);
	}
	pthread_mutex_unlock(&k->mu);
	if (inl)
		checkpoint_inline(k, db);
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	sq_ckpt *k = arg;
	(void)name;
	uint64_t st = ck_pr_load_64(&k->base);
	if (frames < ck_pr_load_int(&k->last_frames)) { /* the WAL restarted: a new epoch */
		uint64_t to;
		do
			to = ((st >> 32) + 1) << 32;
		while (!ck_pr_cas_64_value(&k->base, st, to, &st));
		st = to;
	}
	int base = (int)(uint32_t)st;
	ck_pr_store_int(&k->last_frames, frames);
	if (frames >= SQ_CKPT_FRAMES && frames - base >= SQ_CKPT_FRAMES)
		request(k, db);
	return SQLITE_OK;
}

/* ---- the thread ------------------------------------------------------------------- */

/*
 * Busy handler of the thread's connection (only a RESTART waits: PASSIVE never does).
 * While the committer has not yet reached its BEGIN it may still hold the write lock for
 * its transaction: wait for its yield signal instead of sleeping blind; after that the
 * waits are for readers (or another process): back off 100 us .. 12.8 ms. Quiet: nothing
 * is logged while the committer may be waiting for this thread.
 */
static int ckpt_busy(void *arg, int count)
{
	sq_ckpt *k = arg;
	uint64_t now = durq_clock_mono_ns();
	if (count == 0)
		k->busy_since = now;
	if (now - k->busy_since > (uint64_t)k->budget_ms * 1000000ull)
		return 0;
	pthread_mutex_lock(&k->mu);
	bool stop = k->stop;
	if (!stop && !k->yielded) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 1000000; /* the committer's transaction, or a reader's */
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&k->yielded_cv, &k->mu, &ts);
		pthread_mutex_unlock(&k->mu);
		return 1;
	}
	pthread_mutex_unlock(&k->mu);
	if (stop)
		return 0;
	ck_pr_inc_64(&k->p->busy_waits);
	long us = 100L << (count < 7 ? count : 7);
	us += rand_r(&k->rng) % (us / 2 + 1);
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
	return 1;
}

static int open_conn(sq_ckpt *k)
{
	sq_conn *c = NULL;
	int rc = sq_conn_open_role(k->p, &c, SQ_ROLE_CKPT);
	if (rc < 0) {
		if (!k->open_warned++)
			durq_log_emit(k->p->opts, DURQ_LOG_WARN, "CHECKPOINT", "the checkpointer "
				      "cannot open its connection (%s): checkpoints wait for the next "
				      "wake-up", durq_error_last());
		return rc;
	}
	sqlite3_busy_handler(c->db, ckpt_busy, k);
	pthread_mutex_lock(&k->mu);
	k->conn = c;
	pthread_mutex_unlock(&k->mu);
	return DURQ_OK;
}

/*
 * The database file's fsync through the thread's own handle, after every run that copied
 * frames. SQLite syncs the database only when a run catches up with the WAL, which a run
 * beside a busy committer rarely does, so the pages of ~8 runs were written back at once
 * before each RESTART: a 10-15 ms fsync that held up the flush thread's WAL fsyncs (the
 * ack p99 then lands on it). A small fsync per run spreads that, and the RESTART's own
 * critical section writes back little.
 */
static void sync_db(sq_ckpt *k)
{
	sqlite3_file *f = NULL;
	if (k->p->opts->synchronous == DURQ_SYNC_OFF)
		return;
	if (sqlite3_file_control(k->conn->db, "main", SQLITE_FCNTL_FILE_POINTER, &f) ==
		    SQLITE_OK && f && f->pMethods && f->pMethods->xSync(f, SQLITE_SYNC_NORMAL) ==
		    SQLITE_OK) {
		pthread_mutex_lock(&k->mu);
		k->n.db_syncs++;
		pthread_mutex_unlock(&k->mu);
	}
}

static void count_failure(sq_ckpt *k, int rc, const char *mode)
{
	if ((rc & 0xff) == SQLITE_BUSY || rc == SQLITE_INTERRUPT)
		return; /* another checkpoint ran (another connection or process), or close */
	pthread_mutex_lock(&k->mu);
	unsigned long n = ++k->n.failures;
	pthread_mutex_unlock(&k->mu);
	if (n == 1 || n % 100 == 0)
		durq_log_emit(k->p->opts, DURQ_LOG_WARN, "CHECKPOINT", "checkpoint(%s) of '%s' "
			      "failed: %s (%d); %lu failures so far, retried at the next wake-up",
			      mode, k->p->path, sqlite3_errstr(rc), rc, n);
}

/* The escalation past SQ_RESTART_FRAMES: the write connection yields at its next BEGIN. */
static void restart(sq_ckpt *k, int frames)
{
	int log = 0, ckpt = 0;
	int force = frames > SQ_FORCE_FRAMES;
	int budget = force ? SQ_FORCE_BUDGET_MS : SQ_RESTART_BUDGET_MS;
	if (budget > k->p->opts->busy_timeout_ms)
		budget = k->p->opts->busy_timeout_ms;
	if (force) /* before want_lock: nothing is logged while the committer waits for us */
		durq_log_emit(k->p->opts, DURQ_LOG_WARN, "CHECKPOINT", "the WAL holds %d frames "
			      "(readers or steady writes kept it from restarting): waiting up to "
			      "%d ms for them", frames, budget);
	pthread_mutex_lock(&k->mu);
	k->budget_ms = budget;
	k->yielded = false;
	ck_pr_store_int(&k->want_lock, 1);
	pthread_mutex_unlock(&k->mu);
	int rc = sqlite3_wal_checkpoint_v2(k->conn->db, NULL, SQLITE_CHECKPOINT_RESTART, &log,
					   &ckpt);
	pthread_mutex_lock(&k->mu);
	ck_pr_store_int(&k->want_lock, 0);
	if (rc == SQLITE_OK && log == ckpt)
		k->n.restarts++;
	pthread_cond_broadcast(&k->idle);
	pthread_mutex_unlock(&k->mu);
	if (rc != SQLITE_OK)
		count_failure(k, rc, "RESTART");
}

static void run_once(sq_ckpt *k)
{
	int log = 0, ckpt = 0;
	/* what this run covers: commits made while it runs wake the next run only once they
	 * add SQ_CKPT_FRAMES more */
	uint64_t seen = ck_pr_load_64(&k->base);
	seen = base_raise(k, seen, ck_pr_load_int(&k->last_frames));
	if (!k->conn && open_conn(k) < 0)
		return;
	int rc = sqlite3_wal_checkpoint_v2(k->conn->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
					   &ckpt);
	pthread_mutex_lock(&k->mu);
	k->n.runs++;
	if (log > k->n.max_frames)
		k->n.max_frames = log;
	pthread_mutex_unlock(&k->mu);
	if (rc != SQLITE_OK) {
		count_failure(k, rc, "PASSIVE");
		return;
	}
	base_raise(k, seen, log); /* the next run after SQ_CKPT_FRAMES more */
	if (ckpt > 0)
		sync_db(k);
	if (log > SQ_RESTART_FRAMES)
		restart(k, log);
}

static void *ckpt_main(void *arg)
{
	sq_ckpt *k = arg;
	pthread_setname_np(pthread_self(), "durq-ckpt"); /* for top, perf, gdb, the tests */
	pthread_mutex_lock(&k->mu);
	for (;;) {
		while (!k->stop && (!k->requested || k->paused))
			pthread_cond_wait(&k->wake, &k->mu);
		if (k->stop)
			break;
		k->requested = false;
		k->running = true;
		pthread_mutex_unlock(&k->mu);
		run_once(k);
		pthread_mutex_lock(&k->mu);
		k->running = false;
		pthread_cond_broadcast(&k->idle);
	}
	sq_conn *c = k->conn;
	k->conn = NULL;
	pthread_mutex_unlock(&k->mu);
	sq_conn_free(c); /* not the last connection: SQLite's close checkpoints nothing here */
	return NULL;
}

/* ---- the write connection's side ---------------------------------------------------- */

int sq_ckpt_attach(sq_conn *w)
{
	sq_ckpt *k = calloc(1, sizeof(*k));
	if (!k)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	k->p = w->p;
	k->wdb = w->db;
	k->rng = (unsigned int)durq_clock_mono_ns() ^ (unsigned int)(uintptr_t)k;
	if (pthread_mutex_init(&k->mu, NULL) != 0) {
		free(k);
		return durq_error_set(DURQ_ENOMEM, "checkpointer: cannot create its lock");
	}
	pthread_cond_init(&k->wake, NULL);
	pthread_cond_init(&k->idle, NULL);
	pthread_cond_init(&k->yielded_cv, NULL);
	w->ckpt = k;
	sqlite3_wal_hook(w->db, wal_hook, k); /* replaces wal_autocheckpoint on this one */
	return DURQ_OK;
}

void sq_ckpt_detach(sq_conn *w)
{
	sq_ckpt *k = w->ckpt;
	if (!k)
		return;
	sqlite3_wal_hook(w->db, NULL, NULL);
	pthread_mutex_lock(&k->mu);
	k->stop = true;
	if (k->running && k->conn) /* a run in progress ends early (nothing half-done: the
				    * WAL keeps what it did not backfill) */
		sqlite3_interrupt(k->conn->db);
	pthread_cond_broadcast(&k->wake);
	pthread_cond_broadcast(&k->yielded_cv);
	bool started = k->started;
	pthread_mutex_unlock(&k->mu);
	if (started)
		pthread_join(k->thread, NULL);
	pthread_cond_destroy(&k->yielded_cv);
	pthread_cond_destroy(&k->idle);
	pthread_cond_destroy(&k->wake);
	pthread_mutex_destroy(&k->mu);
	w->ckpt = NULL;
	free(k);
}

void sq_ckpt_yield(sq_ckpt *k)
{
	if (!ck_pr_load_int(&k->want_lock))
		return;
	struct timespec ts;
	pthread_mutex_lock(&k->mu);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (k->budget_ms + YIELD_SLACK_MS) / 1000;
	ts.tv_nsec += (long)((k->budget_ms + YIELD_SLACK_MS) % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	k->yielded = true;
	pthread_cond_signal(&k->yielded_cv);
	while (ck_pr_load_int(&k->want_lock) &&
	       pthread_cond_timedwait(&k->idle, &k->mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&k->mu);
}

void sq_ckpt_pause(sq_ckpt *k)
{
	pthread_mutex_lock(&k->mu);
	k->paused++;
	while (k->running)
		pthread_cond_wait(&k->idle, &k->mu);
	pthread_mutex_unlock(&k->mu);
}

void sq_ckpt_resume(sq_ckpt *k)
{
	pthread_mutex_lock(&k->mu);
	if (--k->paused == 0 && k->requested)
		pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->mu);
}

bool sq_ckpt_counts_get(durq_conn *w, sq_ckpt_counts *out)
{
	sq_ckpt *k = sq_conn_of(w)->ckpt;
	memset(out, 0, sizeof(*out));
	if (!k)
		return false;
	pthread_mutex_lock(&k->mu);
	*out = k->n;
	out->running = k->running;
	out->pausers = k->paused;
	out->stopping = k->stop;
	pthread_mutex_unlock(&k->mu);
	return true;
}

unsigned long sq_ckpt_wait_runs(durq_conn *w, unsigned long runs, int timeout_ms)
{
	sq_ckpt *k = sq_conn_of(w)->ckpt;
	struct timespec ts;
	if (!k)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&k->mu);
	while ((k->n.runs < runs || k->running || k->requested) &&
	       pthread_cond_timedwait(&k->idle, &k->mu, &ts) != ETIMEDOUT)
		;
	unsigned long n = k->n.runs;
	pthread_mutex_unlock(&k->mu);
	return n;
}
