/*
 * test_checkpoint.c — the SQLite file provider's checkpointer (providers/sqlite/sqlite_ckpt.c):
 * WAL checkpoints run on the "durq-ckpt" thread's own connection, never inside the write
 * connection's COMMIT; a WAL that readers keep from restarting is reset by a RESTART on
 * that thread; close stops and joins a checkpoint that is running; a failed flush's
 * recovery (a TRUNCATE checkpoint on the write connection) waits for the checkpointer's
 * run instead of failing with SQLITE_BUSY. Every test reopens the file and finds every
 * OK'd item.
 *
 * A wrapper VFS ("durq-test-ckpt-spy") records which thread writes the database file (in
 * WAL mode only a checkpoint does), can hold the checkpointer inside its first database
 * write, and can fail the next WAL fsync of a thread other than the checkpointer's.
 * Real files under TMPDIR; waits are condition variables with a bound, never sleeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

#include "durq_internal.h"
#include "sqlite/sqlite_internal.h"
#include "unit_util.h"

#define SPY_NAME "durq-test-ckpt-spy"
#define WAIT_MS 60000
#define PAYLOAD 12000 /* three overflow pages per item: the WAL grows fast */
#define BATCH 20

/* ---- the spy VFS ------------------------------------------------------------------- */

typedef struct spy_file {
	sqlite3_file base;
	sqlite3_file *real; /* allocated right after this struct */
	int main_db;
	int wal;
} spy_file;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long db_writes_ckpt;   /* database-file writes on the checkpointer's thread */
	long db_writes_other;  /* ... on any other thread */
	int hold;              /* hold the checkpointer in its next database write */
	int held;              /* it is held now */
	int released;
	int fail_wal_syncs;    /* fail the next N WAL fsyncs not made by the checkpointer */
	int failed;
} spy = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static sqlite3_vfs spy_vfs;
static sqlite3_io_methods spy_io;
static sqlite3_vfs *real_vfs;

#define REAL(f) (((spy_file *)(f))->real)

static int on_ckpt_thread(void)
{
	char name[16] = "";
	pthread_getname_np(pthread_self(), name, sizeof(name));
	return !strcmp(name, "durq-ckpt");
}

static int spy_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int spy_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}

static int spy_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	if (((spy_file *)f)->main_db) {
		int ck = on_ckpt_thread();
		pthread_mutex_lock(&spy.mu);
		if (ck)
			spy.db_writes_ckpt++;
		else
			spy.db_writes_other++;
		if (ck && spy.hold) {
			spy.hold = 0;
			spy.held = 1;
			pthread_cond_broadcast(&spy.cv);
			while (!spy.released)
				pthread_cond_wait(&spy.cv, &spy.mu);
			spy.held = 0;
			pthread_cond_broadcast(&spy.cv);
		}
		pthread_mutex_unlock(&spy.mu);
	}
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}

static int spy_truncate(sqlite3_file *f, sqlite3_int64 sz)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), sz);
}

static int spy_sync(sqlite3_file *f, int flags)
{
	if (((spy_file *)f)->wal && !on_ckpt_thread()) {
		pthread_mutex_lock(&spy.mu);
		int fail = spy.fail_wal_syncs > 0;
		if (fail) {
			spy.fail_wal_syncs--;
			spy.failed++;
			pthread_cond_broadcast(&spy.cv);
		}
		pthread_mutex_unlock(&spy.mu);
		if (fail)
			return SQLITE_IOERR_FSYNC;
	}
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int spy_size(sqlite3_file *f, sqlite3_int64 *sz) { return REAL(f)->pMethods->xFileSize(REAL(f), sz); }
static int spy_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int spy_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int spy_check(sqlite3_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int spy_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int spy_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int spy_caps(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int spy_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int spy_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void spy_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int spy_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int spy_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp);
}
static int spy_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static int spy_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	(void)vfs;
	spy_file *s = (spy_file *)f;
	memset(s, 0, sizeof(*s));
	s->real = (sqlite3_file *)(s + 1);
	int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out);
	if (rc != SQLITE_OK || !s->real->pMethods) {
		s->base.pMethods = NULL;
		return rc;
	}
	s->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
	s->wal = (flags & SQLITE_OPEN_WAL) != 0;
	spy_io.iVersion = s->real->pMethods->iVersion; /* the unix VFS: 3 for every file */
	s->base.pMethods = &spy_io;
	return SQLITE_OK;
}

static int spy_delete(sqlite3_vfs *v, const char *n, int sync) { (void)v; return real_vfs->xDelete(real_vfs, n, sync); }
static int spy_access(sqlite3_vfs *v, const char *n, int flags, int *out)
{
	(void)v;
	return real_vfs->xAccess(real_vfs, n, flags, out);
}
static int spy_fullpath(sqlite3_vfs *v, const char *n, int len, char *out)
{
	(void)v;
	return real_vfs->xFullPathname(real_vfs, n, len, out);
}
static int spy_random(sqlite3_vfs *v, int n, char *out) { (void)v; return real_vfs->xRandomness(real_vfs, n, out); }
static int spy_sleep(sqlite3_vfs *v, int us) { (void)v; return real_vfs->xSleep(real_vfs, us); }
static int spy_time(sqlite3_vfs *v, double *t) { (void)v; return real_vfs->xCurrentTime(real_vfs, t); }
static int spy_lasterr(sqlite3_vfs *v, int n, char *buf) { (void)v; return real_vfs->xGetLastError(real_vfs, n, buf); }
static int spy_time64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; return real_vfs->xCurrentTimeInt64(real_vfs, t); }

static const char *spy_register(void)
{
	if (real_vfs)
		return SPY_NAME;
	real_vfs = sqlite3_vfs_find(NULL);
	spy_io = (sqlite3_io_methods){
		.iVersion = 3, .xClose = spy_close, .xRead = spy_read, .xWrite = spy_write,
		.xTruncate = spy_truncate, .xSync = spy_sync, .xFileSize = spy_size,
		.xLock = spy_lock, .xUnlock = spy_unlock, .xCheckReservedLock = spy_check,
		.xFileControl = spy_fcntl, .xSectorSize = spy_sector,
		.xDeviceCharacteristics = spy_caps, .xShmMap = spy_shm_map, .xShmLock = spy_shm_lock,
		.xShmBarrier = spy_shm_barrier, .xShmUnmap = spy_shm_unmap, .xFetch = spy_fetch,
		.xUnfetch = spy_unfetch,
	};
	spy_vfs = (sqlite3_vfs){
		.iVersion = 2, .szOsFile = (int)sizeof(spy_file) + real_vfs->szOsFile,
		.mxPathname = real_vfs->mxPathname, .zName = SPY_NAME, .xOpen = spy_open,
		.xDelete = spy_delete, .xAccess = spy_access, .xFullPathname = spy_fullpath,
		.xRandomness = spy_random, .xSleep = spy_sleep, .xCurrentTime = spy_time,
		.xGetLastError = spy_lasterr, .xCurrentTimeInt64 = spy_time64,
	};
	return sqlite3_vfs_register(&spy_vfs, 0) == SQLITE_OK ? SPY_NAME : NULL;
}

static void spy_reset(void)
{
	pthread_mutex_lock(&spy.mu);
	spy.db_writes_ckpt = spy.db_writes_other = 0;
	spy.hold = spy.held = spy.released = spy.fail_wal_syncs = spy.failed = 0;
	pthread_mutex_unlock(&spy.mu);
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Wait (bounded) until the checkpointer is held in a database write. */
static void spy_wait_held(void)
{
	struct timespec ts;
	deadline_in(&ts, WAIT_MS);
	pthread_mutex_lock(&spy.mu);
	while (!spy.held && pthread_cond_timedwait(&spy.cv, &spy.mu, &ts) != ETIMEDOUT)
		;
	int held = spy.held;
	pthread_mutex_unlock(&spy.mu);
	assert_true(held);
}

static void spy_release(void)
{
	pthread_mutex_lock(&spy.mu);
	spy.released = 1;
	pthread_cond_broadcast(&spy.cv);
	pthread_mutex_unlock(&spy.mu);
}

static void spy_counts(long *ckpt, long *other)
{
	pthread_mutex_lock(&spy.mu);
	*ckpt = spy.db_writes_ckpt;
	*other = spy.db_writes_other;
	pthread_mutex_unlock(&spy.mu);
}

/* ---- fixture and helpers ----------------------------------------------------------- */

typedef struct tfx {
	fx *f;
	char url[PATH_MAX + 64];
	char path[PATH_MAX];
	char payload[PAYLOAD];
	long enqueued;
} tfx;

static int open_handle(tfx *t)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.stats_publish_ms = DURQ_STATS_PUBLISH_OFF; /* database writes are counted */
	o.synchronous = DURQ_SYNC_FULL;
	return durq_open(&t->f->db, t->url, &o);
}

static int setup(void **state)
{
	tfx *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_non_null(spy_register());
	t->f = fx_new("ckpt.db");
	snprintf(t->path, sizeof(t->path), "%s/ckpt.db", t->f->dir);
	snprintf(t->url, sizeof(t->url), "sqlite:%s?vfs=" SPY_NAME, t->path);
	memset(t->payload, 'p', sizeof(t->payload));
	spy_reset();
	assert_int_equal(open_handle(t), DURQ_OK);
	spy_reset(); /* the switch to WAL mode wrote the new file's header at open */
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	tfx *t = *state;
	spy_release();
	fx *f = t->f;
	free(t);
	*state = f;
	return fx_teardown(state);
}

/* The write connection's checkpointer counts. */
static sq_ckpt_counts counts(durq *db)
{
	sq_ckpt_counts n;
	assert_true(sq_ckpt_counts_get(db->committer.conn, &n));
	return n;
}

/* One synchronous enqueue of BATCH large items (~60 WAL frames). */
static void enqueue_batch(tfx *t)
{
	durq_work w[BATCH];
	for (int i = 0; i < BATCH; i++)
		w[i] = (durq_work){.queue = "q", .payload = t->payload, .payload_len = PAYLOAD};
	assert_int_equal(durq_work_enqueue(t->f->db, w, BATCH), DURQ_OK);
	t->enqueued += BATCH;
}

static unsigned long runs_goal;
static int runs_reach_goal(tfx *t) { return counts(t->f->db).runs >= runs_goal; }
static int frames_past_restart(tfx *t) { return counts(t->f->db).max_frames > SQ_RESTART_FRAMES; }
static int restarted(tfx *t) { return counts(t->f->db).restarts >= 1; }

static int ckpt_held(tfx *t)
{
	(void)t;
	pthread_mutex_lock(&spy.mu);
	int held = spy.held;
	pthread_mutex_unlock(&spy.mu);
	return held;
}

/* Batches until done(t), at most MAX_BATCHES (~60 frames each); between batches, a
 * checkpointer run in progress may finish first when settle is set. */
#define MAX_BATCHES 600
static void enqueue_until(tfx *t, int (*done)(tfx *), int settle, const char *what)
{
	for (int b = 0; b < MAX_BATCHES; b++) {
		enqueue_batch(t);
		if (settle)
			sq_ckpt_wait_runs(t->f->db->committer.conn, 0, WAIT_MS);
		if (done(t))
			return;
	}
	fail_msg("%s: not after %d batches of %d items", what, MAX_BATCHES, BATCH);
}

static int64_t ready(durq *db)
{
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(db, &d, "q"), DURQ_OK);
	return d.work_ready;
}

/* Enqueue until a checkpointer run is held inside a database write (the spy holds it
 * until spy_release). */
static void hold_a_checkpoint(tfx *t)
{
	pthread_mutex_lock(&spy.mu);
	spy.hold = 1;
	pthread_mutex_unlock(&spy.mu);
	enqueue_until(t, ckpt_held, 0, "a checkpoint held in a database write");
	spy_wait_held();
}

/* Close, check SQLite's close-time checkpoint removed the WAL, reopen, count the items. */
static void reopen_and_count(tfx *t)
{
	char wal[PATH_MAX + 8];
	struct stat st;
	assert_int_equal(durq_close(t->f->db), DURQ_OK);
	durq_free(t->f->db);
	t->f->db = NULL;
	snprintf(wal, sizeof(wal), "%s-wal", t->path);
	assert_int_equal(stat(wal, &st), -1); /* the last connection checkpointed and removed it */
	assert_int_equal(errno, ENOENT);
	assert_int_equal(open_handle(t), DURQ_OK);
	assert_int_equal(ready(t->f->db), t->enqueued);
}

/* ---- tests -------------------------------------------------------------------------- */

/* The WAL passes the 1,000-frame threshold several times: every database-file write (= a
 * checkpoint's) is on the checkpointer's thread, none on the committer or a caller. */
static void test_checkpoints_run_on_the_checkpointer_thread(void **state)
{
	tfx *t = *state;
	long ck, other;
	assert_false(counts(t->f->db).started); /* started at the first 1,000-frame WAL */
	runs_goal = 3;
	enqueue_until(t, runs_reach_goal, 1, "three checkpoints");
	sq_ckpt_counts n = counts(t->f->db);
	assert_true(n.started);
	assert_true(n.wakeups >= 3);
	assert_true(n.max_frames >= SQ_CKPT_FRAMES);
	assert_int_equal(n.failures, 0);
	spy_counts(&ck, &other);
	assert_true(ck > 0);          /* checkpoints copied pages into the database file */
	assert_int_equal(other, 0);   /* and nothing else did: no checkpoint inside a COMMIT */
	reopen_and_count(t);
}

/* A reader's snapshot keeps PASSIVE checkpoints from backfilling, so the WAL grows past
 * SQ_RESTART_FRAMES; once the reader ends, a RESTART on the checkpointer's thread resets
 * the WAL (the committer yields the write lock to it) and writes go on. */
static void test_restart_resets_a_wal_readers_kept_growing(void **state)
{
	tfx *t = *state;
	sqlite3 *r = NULL;
	long ck, other;
	assert_int_equal(sqlite3_open_v2(t->path, &r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(r, "BEGIN; SELECT count(*) FROM work_queue;", NULL, NULL,
				      NULL), SQLITE_OK);
	enqueue_until(t, frames_past_restart, 0, "a WAL past SQ_RESTART_FRAMES");
	assert_int_equal(counts(t->f->db).restarts, 0); /* the reader holds the WAL */
	assert_int_equal(sqlite3_exec(r, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(r);
	/* the next wake-up (SQ_CKPT_FRAMES more) backfills everything and restarts */
	enqueue_until(t, restarted, 1, "a RESTART");
	sq_ckpt_counts n = counts(t->f->db);
	print_message("checkpointer: %lu wake-ups, %lu runs, %lu restarts, %lu database fsyncs, "
		      "WAL up to %d frames\n", n.wakeups, n.runs, n.restarts, n.db_syncs,
		      n.max_frames);
	assert_true(n.restarts >= 1);
	assert_true(n.max_frames > SQ_RESTART_FRAMES);
	assert_true(n.db_syncs >= 1); /* each run's pages synced by the checkpointer */
	spy_counts(&ck, &other);
	assert_true(ck > 0);
	assert_int_equal(other, 0);
	reopen_and_count(t);
}

typedef struct closer {
	durq *db;
	int rc;
	int done; /* ck_pr */
} closer;

static void *close_thread(void *arg)
{
	closer *c = arg;
	c->rc = durq_close(c->db);
	ck_pr_store_int(&c->done, 1);
	return NULL;
}

/* close while a checkpoint is inside a database write: close stops the checkpointer and
 * joins it (it cannot return while the run is held), and every item is there after. */
static void test_close_while_a_checkpoint_runs(void **state)
{
	tfx *t = *state;
	hold_a_checkpoint(t);
	durq_conn *w = t->f->db->committer.conn; /* alive until close has joined the thread */
	assert_true(counts(t->f->db).running);
	closer c = {.db = t->f->db};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, close_thread, &c), 0);
	/* close reaches the checkpointer (stop set, run interrupted) and waits for it */
	sq_ckpt_counts n;
	for (int i = 0; i < 100000000; i++) {
		assert_true(sq_ckpt_counts_get(w, &n));
		if (n.stopping)
			break;
		sched_yield();
	}
	assert_true(n.stopping);
	assert_int_equal(ck_pr_load_int(&c.done), 0); /* held: close cannot be done */
	spy_release();
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(c.rc, DURQ_OK);
	pthread_mutex_lock(&spy.mu);
	int still_held = spy.held;
	pthread_mutex_unlock(&spy.mu);
	assert_int_equal(still_held, 0);
	reopen_and_count(t);
}

static void note_done(void *ctx, const durq_completion *c)
{
	pthread_mutex_lock(&spy.mu);
	*(int *)ctx = c->rc;
	pthread_cond_broadcast(&spy.cv);
	pthread_mutex_unlock(&spy.mu);
}

typedef struct writer {
	durq *db;
	const char *payload;
	int rc;
} writer;

static void *enqueue_thread(void *arg)
{
	writer *wr = arg;
	durq_work w = {.queue = "q", .payload = wr->payload, .payload_len = 10};
	wr->rc = durq_work_enqueue(wr->db, &w, 1);
	return NULL;
}

/* A flush fails while the checkpointer is held inside a run: the recovery (a TRUNCATE
 * checkpoint on the write connection) waits for that run instead of failing with
 * SQLITE_BUSY, and the next write succeeds. */
static void test_recovery_waits_for_a_running_checkpoint(void **state)
{
	tfx *t = *state;
	hold_a_checkpoint(t);
	/* two async enqueues in one batch whose flush fails: DURQ_EIO, outcome unknown (a
	 * batch of two: a lone op commits with its flush, and a failed commit applies nothing) */
	pthread_mutex_lock(&spy.mu);
	spy.fail_wal_syncs = 1;
	pthread_mutex_unlock(&spy.mu);
	int arc[2] = {1, 1};
	durq_work w = {.queue = "lost?", .payload = "x", .payload_len = 1};
	durq_committer_pause(t->f->db, 1); /* both in one batch */
	for (int i = 0; i < 2; i++) {
		durq_async a = {.done = note_done, .ctx = &arc[i]};
		assert_int_equal(durq_work_enqueue_async(t->f->db, &w, 1, &a), DURQ_OK);
	}
	durq_committer_pause(t->f->db, 0);
	struct timespec ts; /* not durq_flush: its marker's batch would start the recovery */
	deadline_in(&ts, WAIT_MS);
	pthread_mutex_lock(&spy.mu);
	while ((arc[0] == 1 || arc[1] == 1) &&
	       pthread_cond_timedwait(&spy.cv, &spy.mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&spy.mu);
	assert_int_equal(arc[0], DURQ_EIO);
	assert_int_equal(arc[1], DURQ_EIO);
	/* the next write makes the committer recover first: it waits for the held run */
	writer wr = {.db = t->f->db, .payload = t->payload};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, enqueue_thread, &wr), 0);
	sq_ckpt_counts n;
	for (int i = 0; i < 100000000; i++) {
		n = counts(t->f->db);
		if (n.pausers > 0)
			break;
		sched_yield();
	}
	assert_true(n.pausers > 0);
	assert_true(n.running);
	spy_release();
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(wr.rc, DURQ_OK); /* recovered: not DURQ_EIO */
	t->enqueued++;
	n = counts(t->f->db);
	assert_int_equal(n.pausers, 0);
	/* the checkpointer goes on after the recovery */
	runs_goal = n.runs + 2;
	enqueue_until(t, runs_reach_goal, 1, "checkpoints after the recovery");
	reopen_and_count(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_checkpoints_run_on_the_checkpointer_thread, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restart_resets_a_wal_readers_kept_growing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_close_while_a_checkpoint_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovery_waits_for_a_running_checkpoint, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
