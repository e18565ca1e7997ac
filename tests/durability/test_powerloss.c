/*
 * test_powerloss.c — power-loss sweep: does every OK'd call survive a power cut, given that
 * claims commit without a flush (docs/DECISIONS.md item 3)?
 *
 * Design. Each cut point is one child process. The child opens a copy of a base database
 * (100 items queued, its WAL 760 frames long, so that every run soon crosses an automatic
 * checkpoint and the WAL restart after it) through the power-loss VFS
 * (tests/durability/powerloss_vfs.c, given as ?vfs=NAME) and runs a load: a producer
 * enqueues items (batches of 1-3), two consumers fetch batches of 1-8 and ack (80%) or
 * abandon (20%) each; max_attempts 3 dead-letters a few. Four configurations: {group commit,
 * per-op} x {synchronous API, async API (completion callbacks, durq_flush, groups)}. The
 * child reports on a pipe each call that returned OK, after it returned (an async op: when
 * its completion reported OK), and "about to" records before enqueues and acks. The VFS
 * counts the xWrite/xTruncate/xSync calls; at the Nth it writes the post-cut image of every
 * file (what was synced + a seeded subset of the unsynced writes: none, a random set of
 * sectors, or an in-order prefix) and _exit()s at once, so nothing the child reported can
 * have happened after the cut. The parent opens the image with the default VFS and checks:
 *   - PRAGMA integrity_check is ok;
 *   - every OK'd enqueue is there (queued or dead-lettered) unless an ack of it was tried;
 *   - no OK'd ack is undone (the item is neither queued nor dead-lettered);
 *   - every item there was about to be enqueued (no unknown item), exactly once, with its
 *     exact payload.
 * It reads the rows with SQL on the integrity-check connection; every 10th image it also
 * reopens with durq, which must fetch exactly those items. It counts claims the cut undid
 * (a stored attempt below an attempt a fetch returned): proof that unflushed claims were
 * really lost, and nothing else with them.
 * Where: one uncut run per configuration counts its calls T and where its checkpoint and WAL
 * restart fell; point i is then stratified over 1..T (3 in 5) or over those windows (2 in
 * 5), with seeded jitter. Point i's plan (configuration, N, mode, VFS seed) follows from
 * the seed and i alone; threads make the exact call sequence vary, so a seed reproduces the
 * plan, not every interleaving. Points run in DURQ_POWERLOSS_JOBS lanes (processes).
 * test_vfs_model checks the VFS's model on a file driven by hand.
 *
 * Environment: DURQ_POWERLOSS_POINTS (default 1000; 60 under ASan+UBSan, 16 under TSan),
 * DURQ_POWERLOSS_SEED (default 1), DURQ_POWERLOSS_ITEMS (items enqueued per run, default
 * 120; 60 / 40 under ASan / TSan: a run still crosses the checkpoint), DURQ_POWERLOSS_JOBS
 * (lanes, default 2), DURQ_POWERLOSS_ONLY (run point i alone), DURQ_POWERLOSS_REOPEN_EVERY
 * (default 10), DURQ_POWERLOSS_DIR (default /dev/shm when writable: the files are scratch,
 * durability is modelled by the VFS).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "durability_util.h"
#include "powerloss_vfs.h"

enum { BASE_ITEMS = 150, BASE_ACKED = 50, N_CONSUMERS = 2, N_CONFIGS = 4 };

/* ---- the child's load ---------------------------------------------------------------- */

typedef struct load {
	durq *db;
	int fd;
	int async;
	unsigned int seed;
	uint32_t first, end; /* ids first .. end-1 */
	atomic_int producing;
	atomic_long settled; /* acks and abandons submitted */
} load;

typedef struct op_ctx {
	int fd;
	int kind;            /* record on success (DUR_ENQ_OK, DUR_ACK_OK, DUR_ABN_OK) or 0 */
	uint32_t ids[3];
	int n;
	atomic_int *slot;    /* or store the rc here */
} op_ctx;

/* ThreadSanitizer builds: a child ends at its power cut with _exit() from inside the VFS,
 * wherever its threads are, so a thread that finished and was not joined yet is the cut
 * itself, not a leak (TSan reported one in ~1 of 16 runs and made the child exit 66). Other
 * reports stay on; TSAN_OPTIONS still overrides. Unused without TSan. Default visibility:
 * the build hides symbols, and the TSan runtime (a shared library) must find this one in
 * the executable (`TSAN_OPTIONS=help=1 test_powerloss` shows report_thread_leaks false). */
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
__attribute__((visibility("default"))) const char *__tsan_default_options(void)
{
	return "report_thread_leaks=0";
}

static void child_fail(const char *what, int rc)
{
	fprintf(stderr, "powerloss child: %s: %s %s\n", what, durq_error_name(rc), durq_error_last());
	_exit(3);
}

static void op_done(void *ctx, const durq_completion *c)
{
	op_ctx *o = ctx;
	if (c->rc != DURQ_OK) {
		fprintf(stderr, "powerloss child: async op failed: %s %s\n", durq_error_name(c->rc),
			c->message);
		_exit(3);
	}
	if (o->slot)
		atomic_store(o->slot, 1);
	for (int i = 0; o->kind && i < o->n; i++)
		dur_emit(o->fd, o->kind, o->ids[i], 0, 0);
	free(o);
}

static op_ctx *op_new(load *l, int kind, atomic_int *slot)
{
	op_ctx *o = calloc(1, sizeof(*o));
	if (!o)
		_exit(4);
	o->fd = l->fd;
	o->kind = kind;
	o->slot = slot;
	return o;
}

static void *producer(void *arg)
{
	load *l = arg;
	unsigned int seed = l->seed;
	unsigned char buf[3][DUR_PAYLOAD_MAX];
	for (uint32_t id = l->first; id < l->end;) {
		durq_work w[3];
		int n = 1 + rand_r(&seed) % 3;
		if ((uint32_t)n > l->end - id)
			n = (int)(l->end - id);
		for (int i = 0; i < n; i++) {
			memset(&w[i], 0, sizeof(w[i]));
			w[i].payload = buf[i];
			w[i].payload_len = dur_payload(buf[i], id + (uint32_t)i);
			dur_emit(l->fd, DUR_ENQ_TRY, id + (uint32_t)i, 0, 0);
		}
		if (l->async && rand_r(&seed) % 2) {
			op_ctx *o = op_new(l, DUR_ENQ_OK, NULL);
			o->n = n;
			for (int i = 0; i < n; i++)
				o->ids[i] = id + (uint32_t)i;
			durq_async a = {.done = op_done, .ctx = o};
			int rc = durq_work_enqueue_async(l->db, w, (size_t)n, &a);
			if (rc != DURQ_OK)
				child_fail("enqueue_async", rc);
		} else {
			int rc = durq_work_enqueue(l->db, w, (size_t)n);
			if (rc != DURQ_OK)
				child_fail("enqueue", rc);
			for (int i = 0; i < n; i++)
				dur_emit(l->fd, DUR_ENQ_OK, id + (uint32_t)i, 0, 0);
		}
		id += (uint32_t)n;
	}
	atomic_store(&l->producing, 0);
	return NULL;
}

enum { WAIT_CALLBACK, WAIT_FLUSH, WAIT_GROUP, WAIT_STYLES };

/* Ack or abandon one leased item, synchronously. */
static void settle_sync(load *l, const durq_work_item *it, uint32_t id, int ack)
{
	dur_emit(l->fd, ack ? DUR_ACK_TRY : DUR_ABN_TRY, id, 0, 0);
	int rc = ack ? durq_work_ack(l->db, it->id, &it->token, NULL)
		     : durq_work_abandon(l->db, it->id, &it->token, 0, 0);
	if (rc != DURQ_OK)
		child_fail(ack ? "ack" : "abandon", rc);
	dur_emit(l->fd, ack ? DUR_ACK_OK : DUR_ABN_OK, id, 0, 0);
}

/* Ack or abandon one item asynchronously; style says who records the OK. */
static void settle_async(load *l, const durq_work_item *it, uint32_t id, int ack, int style,
			 durq_group *g, atomic_int *slot)
{
	int kind = ack ? DUR_ACK_OK : DUR_ABN_OK;
	op_ctx *o = op_new(l, style == WAIT_CALLBACK ? kind : 0, style == WAIT_CALLBACK ? NULL : slot);
	o->n = 1;
	o->ids[0] = id;
	durq_async a = {.done = op_done, .ctx = o, .group = style == WAIT_GROUP ? g : NULL};
	dur_emit(l->fd, ack ? DUR_ACK_TRY : DUR_ABN_TRY, id, 0, 0);
	int rc = ack ? durq_work_ack_async(l->db, it->id, &it->token, NULL, &a)
		     : durq_work_abandon_async(l->db, it->id, &it->token, 0, 0, &a);
	if (rc != DURQ_OK)
		child_fail(ack ? "ack_async" : "abandon_async", rc);
}

static void settle_batch(load *l, durq_work_item *it, size_t n, unsigned int *seed)
{
	enum { MAXB = 8 };
	uint32_t ids[MAXB];
	int ack[MAXB];
	atomic_int slots[MAXB];
	int style = l->async ? rand_r(seed) % WAIT_STYLES : -1;
	durq_group *g = NULL;
	if (style == WAIT_GROUP && durq_group_new(&g) != DURQ_OK)
		_exit(4);
	for (size_t k = 0; k < n; k++) {
		ids[k] = dur_payload_id(it[k].payload, it[k].payload_len);
		if (!ids[k]) {
			fprintf(stderr, "powerloss child: fetched a payload of no item\n");
			_exit(3);
		}
		dur_emit(l->fd, DUR_CLAIM, ids[k], it[k].attempt, 0);
		ack[k] = rand_r(seed) % 5 != 0;
		atomic_init(&slots[k], 0);
		if (style < 0)
			settle_sync(l, &it[k], ids[k], ack[k]);
		else
			settle_async(l, &it[k], ids[k], ack[k], style, g, &slots[k]);
	}
	if (style == WAIT_FLUSH || style == WAIT_GROUP) {
		size_t failed = 0;
		int rc = style == WAIT_FLUSH ? durq_flush(l->db, -1) : durq_group_wait(g, -1, &failed);
		if (rc != DURQ_OK || failed)
			child_fail("flush / group wait", rc);
		for (size_t k = 0; k < n; k++) {
			if (!atomic_load(&slots[k]))
				child_fail("an op not completed after its flush / group wait", 0);
			dur_emit(l->fd, ack[k] ? DUR_ACK_OK : DUR_ABN_OK, ids[k], 0, 0);
		}
	}
	durq_group_free(g);
}

static void *consumer(void *arg)
{
	load *l = arg;
	unsigned int seed = l->seed * 7919u + (unsigned int)(uintptr_t)pthread_self();
	for (;;) {
		durq_work_item *it;
		size_t n;
		int producing = atomic_load(&l->producing);
		int rc = durq_work_fetch(l->db, &it, &n, NULL, 1 + rand_r(&seed) % 8, 600000,
					 producing ? 20 : 0);
		if (rc == DURQ_EMPTY) {
			if (!producing)
				break;
			continue;
		}
		if (!producing && atomic_load(&l->settled) >= (long)(l->end - l->first))
			break; /* the rest of the backlog stays for the check */
		if (rc != DURQ_OK)
			child_fail("fetch", rc);
		settle_batch(l, it, n, &seed);
		atomic_fetch_add(&l->settled, (long)n);
		durq_work_items_free(it, n);
	}
	return NULL;
}

typedef struct config {
	const char *name;
	int commit_mode;
	int async;
} config;

static const config configs[N_CONFIGS] = {
	{"group/sync", DURQ_COMMIT_GROUP, 0},
	{"group/async", DURQ_COMMIT_GROUP, 1},
	{"per-op/sync", DURQ_COMMIT_PER_OP, 0},
	{"per-op/async", DURQ_COMMIT_PER_OP, 1},
};

/* The child: never returns (the VFS ends it at the cut, or at the end of the load). */
static void child_main(const config *cfg, const char *db_path, const powerloss_plan *plan,
		       uint32_t items, int fd)
{
	char url[PATH_MAX + 64];
	durq_options o = DURQ_OPTIONS_INIT;
	o.stats_publish_ms = DURQ_STATS_PUBLISH_OFF; /* I/O counted: none time-driven */
	load l = {.fd = fd, .async = cfg->async, .seed = (unsigned int)plan->seed,
		  .first = BASE_ITEMS + 1, .end = BASE_ITEMS + 1 + items};
	pthread_t prod, cons[N_CONSUMERS];
	if (!powerloss_vfs_register())
		_exit(6);
	powerloss_vfs_arm(plan);
	snprintf(url, sizeof(url), "sqlite:%s?vfs=%s", db_path, POWERLOSS_VFS_NAME);
	o.commit_mode = cfg->commit_mode;
	o.max_attempts = 3;
	o.pool_size = 5;
	int rc = durq_open(&l.db, url, &o);
	if (rc != DURQ_OK)
		child_fail("open", rc);
	atomic_init(&l.producing, 1);
	atomic_init(&l.settled, 0);
	if (pthread_create(&prod, NULL, producer, &l))
		_exit(4);
	for (int i = 0; i < N_CONSUMERS; i++)
		if (pthread_create(&cons[i], NULL, consumer, &l))
			_exit(4);
	pthread_join(prod, NULL);
	for (int i = 0; i < N_CONSUMERS; i++)
		pthread_join(cons[i], NULL);
	if ((rc = durq_flush(l.db, -1)) != DURQ_OK)
		child_fail("final flush", rc);
	powerloss_vfs_cut(); /* the load ended before the planned cut: cut at its end */
}

/* ---- the parent ---------------------------------------------------------------------- */

/* A failure of the harness itself (not a finding): say why and end this process. */
#define NEED(cond, ...)                                                                    \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "powerloss harness: " __VA_ARGS__);                \
			fputc('\n', stderr);                                               \
			_exit(70);                                                         \
		}                                                                          \
	} while (0)

enum { F_ENQ_TRY = 1, F_ENQ_OK = 2, F_ACK_TRY = 4, F_ACK_OK = 8 };

typedef struct history {
	uint32_t n;          /* ids 0 .. n-1 */
	unsigned char *flags;
	int *max_claimed;    /* highest attempt a fetch returned */
} history;

typedef struct totals {
	long points, by_config[N_CONFIGS], by_mode[POWERLOSS_MODES], targeted, reopened;
	long ended_before_cut, in_checkpoint, db_pending, after_restart, wal_pending;
	long pieces_kept, pieces_dropped;
	long claims_lost, ok_enqueues, ok_acks, present;
	long violations;
} totals;

/* What cut.info says about a cut. */
typedef struct cut_info {
	long calls, ckpt_first, ckpt_sync, wal_restart;
	int db_pending, wal_pending; /* unsynced writes to the database file / the WAL */
} cut_info;

typedef struct sweep {
	char *dir;
	char base[PATH_MAX], run[PATH_MAX], cut[PATH_MAX];
	uint32_t items;
	uint64_t seed;
	long points, reopen_every;
	long base_wal_frames;
	cut_info cal[N_CONFIGS];
	history base_hist, hist;
	totals t;
} sweep;

typedef struct point {
	int config, mode;
	long cut_at;
	uint64_t seed;
	long index;          /* -1: a calibration run */
} point;

static void path_in(char *out, const char *dir, const char *file)
{
	NEED(snprintf(out, PATH_MAX, "%s/%s", dir, file) < PATH_MAX, "path too long: %s", dir);
}

static void rm_db_files(const char *dir)
{
	char p[PATH_MAX];
	const char *names[] = {"q.db", "q.db-wal", "q.db-shm", "q.db-journal", POWERLOSS_INFO_FILE};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_in(p, dir, names[i]);
		unlink(p);
	}
}

static void history_alloc(history *h, uint32_t n)
{
	h->n = n;
	h->flags = calloc(n, 1);
	h->max_claimed = calloc(n, sizeof(int));
	NEED(h->flags && h->max_claimed, "out of memory");
}

static void history_free(history *h)
{
	free(h->flags);
	free(h->max_claimed);
}

/* Read a child's records to EOF into h (flags are added to, claims start afresh). */
static void read_records(int fd, history *h)
{
	dur_rec r;
	memset(h->max_claimed, 0, h->n * sizeof(int));
	while (dur_read(fd, &r)) {
		NEED(r.id < h->n, "record of id %u: out of range", r.id);
		unsigned char *f = &h->flags[r.id];
		switch (r.kind) {
		case DUR_ENQ_TRY: *f |= F_ENQ_TRY; break;
		case DUR_ENQ_OK: *f |= F_ENQ_OK; break;
		case DUR_ACK_TRY: *f |= F_ACK_TRY; break;
		case DUR_ACK_OK: *f |= F_ACK_OK; break;
		case DUR_CLAIM:
			if (r.attempt > h->max_claimed[r.id])
				h->max_claimed[r.id] = r.attempt;
			break;
		default: break;
		}
	}
}

/* The base: BASE_ITEMS items enqueued one per call, BASE_ACKED of them acked one per call, by
 * a process that then exits without closing, so the base keeps its WAL (~760 frames): every
 * run starts on a backlog and soon crosses an automatic checkpoint (at 1000 frames) and the
 * WAL restart after it. The base process reports like a load child. */
static void make_base(sweep *s)
{
	int fds[2];
	NEED(pipe(fds) == 0, "pipe");
	pid_t pid = fork();
	NEED(pid >= 0, "fork");
	if (pid == 0) {
		char url[PATH_MAX + 16];
		durq *db;
		durq_options o = DURQ_OPTIONS_INIT;
	o.stats_publish_ms = DURQ_STATS_PUBLISH_OFF; /* I/O counted: none time-driven */
		unsigned char buf[DUR_PAYLOAD_MAX];
		close(fds[0]);
		o.pool_size = 5;
		snprintf(url, sizeof(url), "sqlite:%s/q.db", s->base);
		int rc = durq_open(&db, url, &o);
		if (rc != DURQ_OK)
			child_fail("base open", rc);
		for (uint32_t id = 1; id <= BASE_ITEMS; id++) {
			durq_work w = {.payload = buf, .payload_len = dur_payload(buf, id)};
			dur_emit(fds[1], DUR_ENQ_TRY, id, 0, 0);
			if ((rc = durq_work_enqueue(db, &w, 1)) != DURQ_OK)
				child_fail("base enqueue", rc);
			dur_emit(fds[1], DUR_ENQ_OK, id, 0, 0);
		}
		for (int k = 0; k < BASE_ACKED; k++) {
			durq_work_item *it;
			size_t n;
			if ((rc = durq_work_fetch(db, &it, &n, NULL, 1, 600000, 0)) != DURQ_OK)
				child_fail("base fetch", rc);
			uint32_t id = dur_payload_id(it[0].payload, it[0].payload_len);
			dur_emit(fds[1], DUR_ACK_TRY, id, 0, 0);
			if ((rc = durq_work_ack(db, it[0].id, &it[0].token, NULL)) != DURQ_OK)
				child_fail("base ack", rc);
			dur_emit(fds[1], DUR_ACK_OK, id, 0, 0);
			durq_work_items_free(it, n);
		}
		_exit(0); /* no close: the WAL stays, every commit in it flushed */
	}
	close(fds[1]);
	memset(s->base_hist.flags, 0, s->base_hist.n);
	read_records(fds[0], &s->base_hist);
	close(fds[0]);
	int status;
	NEED(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	     "the base process failed (status 0x%x)", status);
	char wal[PATH_MAX];
	struct stat st;
	path_in(wal, s->base, "q.db-wal");
	s->base_wal_frames = stat(wal, &st) == 0 ? (long)((st.st_size - 32) / (4096 + 24)) : 0;
}

static void read_cut_info(sweep *s, cut_info *ci)
{
	char p[PATH_MAX], name[256];
	long dur, img, kept, dropped;
	size_t ops;
	path_in(p, s->cut, POWERLOSS_INFO_FILE);
	FILE *f = fopen(p, "r");
	NEED(f, "no %s after the cut", p);
	memset(ci, 0, sizeof(*ci));
	NEED(fscanf(f, "calls %ld ckpt_first %ld ckpt_sync %ld wal_restart %ld\n", &ci->calls,
		    &ci->ckpt_first, &ci->ckpt_sync, &ci->wal_restart) == 4,
	     "cut.info: no call count");
	while (fscanf(f, "file %255s durable %ld image %ld pending_ops %zu kept_pieces %ld "
		      "dropped_pieces %ld\n", name, &dur, &img, &ops, &kept, &dropped) == 6) {
		if (!strcmp(name, "q.db") && ops > 0)
			ci->db_pending = 1;
		if (!strcmp(name, "q.db-wal") && ops > 0)
			ci->wal_pending = 1;
		s->t.pieces_kept += kept;
		s->t.pieces_dropped += dropped;
	}
	fclose(f);
}

static void violation(sweep *s, const point *pt, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void violation(sweep *s, const point *pt, const char *fmt, ...)
{
	va_list ap;
	if (pt->index < 0)
		fprintf(stderr, "POWERLOSS VIOLATION (uncut run of %s, cut at its end, mode %d, seed "
			"0x%llx): ", configs[pt->config].name, pt->mode, (unsigned long long)pt->seed);
	else
		fprintf(stderr, "POWERLOSS VIOLATION (point %ld, %s, mode %d, cut at call %ld, seed "
			"0x%llx; DURQ_POWERLOSS_ONLY=%ld runs it alone): ", pt->index,
			configs[pt->config].name, pt->mode, pt->cut_at, (unsigned long long)pt->seed,
			pt->index);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	s->t.violations++;
}

/* Record where id was found: seen[id] = stored attempt + 1 if queued, -1 if dead-lettered. */
static void saw(sweep *s, const point *pt, int *seen, const void *p, size_t len, int value,
		const char *where)
{
	uint32_t id = dur_payload_id(p, len);
	if (!id || id >= s->hist.n)
		violation(s, pt, "%s: a payload that is no item's (%zu bytes)", where, len);
	else if (seen[id])
		violation(s, pt, "%s: item %u is there twice", where, id);
	else
		seen[id] = value;
}

/* integrity_check, then every queued and dead-lettered item, on one connection (default
 * VFS; opening replays the WAL image). 0 if the image could not be read. */
static int read_image_sql(sweep *s, const point *pt, const char *path, int *seen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int ok = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		violation(s, pt, "the image does not open: %s", sqlite3_errmsg(db));
		sqlite3_close(db);
		return 0;
	}
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		violation(s, pt, "integrity_check did not run: %s", sqlite3_errmsg(db));
		goto out;
	}
	const char *msg = (const char *)sqlite3_column_text(st, 0);
	if (!msg || strcmp(msg, "ok") != 0) {
		violation(s, pt, "integrity_check: %s", msg ? msg : "(null)");
		goto out;
	}
	sqlite3_finalize(st);
	NEED(sqlite3_prepare_v2(db, "SELECT payload, attempt FROM work_queue", -1, &st, NULL) ==
		     SQLITE_OK, "read work_queue: %s", sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW)
		saw(s, pt, seen, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
		    sqlite3_column_int(st, 1) + 1, "queued");
	sqlite3_finalize(st);
	NEED(sqlite3_prepare_v2(db, "SELECT payload FROM dead_letters", -1, &st, NULL) ==
		     SQLITE_OK, "read dead_letters: %s", sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW)
		saw(s, pt, seen, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), -1,
		    "dead-lettered");
	ok = 1;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ok;
}

static int64_t an_hour_later(void *ctx)
{
	static const int64_t hour = 3600 * 1000;
	(void)ctx;
	return dur_clock_offset((void *)&hour);
}

/* The same through durq: it opens the image and fetches what the SQL read found. */
static void read_image_durq(sweep *s, const point *pt, const char *path, const int *want)
{
	char url[PATH_MAX + 16];
	durq_options o = DURQ_OPTIONS_INIT;
	o.stats_publish_ms = DURQ_STATS_PUBLISH_OFF; /* I/O counted: none time-driven */
	durq *db;
	durq_work_item *it;
	durq_dead_letter *dl;
	size_t n;
	int *seen = calloc(s->hist.n, sizeof(int)), rc;
	NEED(seen, "out of memory");
	snprintf(url, sizeof(url), "sqlite:%s", path);
	o.clock = an_hour_later; /* every lease the child held has expired */
	o.max_attempts = 1000000;
	o.pool_size = 5;
	if ((rc = durq_open(&db, url, &o)) != DURQ_OK) {
		violation(s, pt, "durq_open of the image: %s %s", durq_error_name(rc),
			  durq_error_last());
		free(seen);
		return;
	}
	while ((rc = durq_work_fetch(db, &it, &n, NULL, 1024, 600000, 0)) == DURQ_OK) {
		for (size_t k = 0; k < n; k++)
			saw(s, pt, seen, it[k].payload, it[k].payload_len, it[k].attempt, "durq fetch");
		durq_work_items_free(it, n);
	}
	if (rc != DURQ_EMPTY)
		violation(s, pt, "durq fetch of the image: %s %s", durq_error_name(rc),
			  durq_error_last());
	if ((rc = durq_dead_list(db, &dl, &n, 1000000)) == DURQ_OK) {
		for (size_t k = 0; k < n; k++)
			saw(s, pt, seen, dl[k].payload, dl[k].payload_len, -1, "durq dead list");
		durq_dead_letters_free(dl, n);
	} else {
		violation(s, pt, "durq_dead_list: %s", durq_error_name(rc));
	}
	durq_free(db);
	for (uint32_t id = 1; id < s->hist.n; id++)
		if (seen[id] != want[id])
			violation(s, pt, "item %u: durq reads %d, SQL read %d (attempt + 1, -1 dead)",
				  id, seen[id], want[id]);
	free(seen);
}

/* Open the post-cut image and compare it with the history. */
static void check_image(sweep *s, const point *pt)
{
	char path[PATH_MAX];
	history *h = &s->hist;
	int *seen = calloc(h->n, sizeof(int));
	NEED(seen, "out of memory");
	path_in(path, s->cut, "q.db");
	long before = s->t.violations;
	if (!read_image_sql(s, pt, path, seen))
		goto out;
	if (s->reopen_every > 0 && (pt->index < 0 || pt->index % s->reopen_every == 0)) {
		read_image_durq(s, pt, path, seen);
		s->t.reopened += pt->index >= 0;
	}
	for (uint32_t id = 1; id < h->n; id++) {
		unsigned char f = h->flags[id];
		s->t.ok_enqueues += (f & F_ENQ_OK) != 0;
		s->t.ok_acks += (f & F_ACK_OK) != 0;
		s->t.present += seen[id] != 0;
		if (seen[id] && !(f & F_ENQ_TRY))
			violation(s, pt, "item %u is there but was never enqueued", id);
		if ((f & F_ENQ_OK) && !(f & F_ACK_TRY) && !seen[id])
			violation(s, pt, "item %u: its enqueue returned OK, no ack was tried, and it "
				  "is gone", id);
		if ((f & F_ACK_OK) && seen[id])
			violation(s, pt, "item %u: its ack returned OK but it is back (%s)", id,
				  seen[id] < 0 ? "dead-lettered" : "queued");
		/* a fetch returned attempt a: a stored attempt below a = that claim was undone */
		if (seen[id] > 0 && seen[id] - 1 < h->max_claimed[id])
			s->t.claims_lost++;
	}
out:
	if (s->t.violations > before) { /* keep the image for a look */
		char keep[PATH_MAX + 32];
		snprintf(keep, sizeof(keep), "%s-failed-%ld", s->cut, pt->index);
		if (rename(s->cut, keep) == 0 && mkdir(s->cut, 0700) == 0)
			fprintf(stderr, "POWERLOSS: the post-cut image is kept in %s\n", keep);
	}
	free(seen);
}

/* Run one child to its cut and check the image; *ci = what the cut found. */
static void run_point(sweep *s, const point *pt, cut_info *ci)
{
	char src[PATH_MAX], dst[PATH_MAX], db_path[PATH_MAX];
	const char *files[] = {"q.db", "q.db-wal"};
	int fds[2];
	rm_db_files(s->run);
	rm_db_files(s->cut);
	for (int i = 0; i < 2; i++) {
		path_in(src, s->base, files[i]);
		path_in(dst, s->run, files[i]);
		NEED(dur_copy(src, dst) == 0, "copy %s", src);
	}
	path_in(db_path, s->run, "q.db");
	powerloss_plan plan = {.cut_at = pt->cut_at, .mode = pt->mode, .seed = pt->seed,
			       .out_dir = s->cut};
	NEED(pipe(fds) == 0, "pipe");
	pid_t pid = fork();
	NEED(pid >= 0, "fork");
	if (pid == 0) {
		close(fds[0]);
		child_main(&configs[pt->config], db_path, &plan, s->items, fds[1]);
	}
	close(fds[1]);
	memcpy(s->hist.flags, s->base_hist.flags, s->hist.n);
	read_records(fds[0], &s->hist);
	close(fds[0]);
	int status;
	NEED(waitpid(pid, &status, 0) == pid, "waitpid");
	NEED(WIFEXITED(status) && WEXITSTATUS(status) == POWERLOSS_EXIT_CUT,
	     "point %ld (%s, cut at %ld): the child did not end at a cut (status 0x%x)", pt->index,
	     configs[pt->config].name, pt->cut_at, status);
	read_cut_info(s, ci);
	if (pt->index >= 0) {
		s->t.points++;
		s->t.by_config[pt->config]++;
		s->t.by_mode[pt->mode]++;
		s->t.in_checkpoint += ci->ckpt_first && !ci->ckpt_sync;
		s->t.db_pending += ci->db_pending;
		s->t.after_restart += ci->wal_restart != 0;
		s->t.wal_pending += ci->wal_pending;
		s->t.ended_before_cut += ci->calls < pt->cut_at;
	}
	check_image(s, pt);
}

static uint64_t mix(uint64_t *x) /* splitmix64 */
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Point i: its configuration, cut, mode and VFS seed follow from (seed, i) alone. Per
 * configuration, k = i / N_CONFIGS of per points: three in five stratified over the whole
 * calibration run, one in five over the checkpoint (its first database write to its
 * database sync, +-20 calls), one in five over the WAL restart (-20 .. +200 calls). */
static point plan_point(sweep *s, long i)
{
	uint64_t rng = s->seed ^ ((uint64_t)i * 0xd1b54a32d192ed03ull);
	point pt = {.config = (int)(i % N_CONFIGS), .index = i};
	const cut_info *cal = &s->cal[pt.config];
	long per = (s->points + N_CONFIGS - 1) / N_CONFIGS, k = i / N_CONFIGS;
	long lo = 1, hi = cal->calls;
	double u = (double)(mix(&rng) >> 11) / 9007199254740992.0;
	if (k % 5 == 3 && cal->ckpt_first && cal->ckpt_sync) {
		lo = cal->ckpt_first - 20, hi = cal->ckpt_sync + 20;
		k /= 5, per = per / 5 + 1;
	} else if (k % 5 == 4 && cal->wal_restart) {
		lo = cal->wal_restart - 20, hi = cal->wal_restart + 200;
		k /= 5, per = per / 5 + 1;
	}
	if (lo < 1)
		lo = 1;
	pt.cut_at = lo + (long)(((double)k + u) * (double)(hi - lo + 1) / (double)per);
	pt.mode = (int)(mix(&rng) % POWERLOSS_MODES);
	pt.seed = mix(&rng);
	return pt;
}

static void lane_dirs(sweep *s, int lane)
{
	char name[32];
	snprintf(name, sizeof(name), "run%d", lane);
	path_in(s->run, s->dir, name);
	snprintf(name, sizeof(name), "cut%d", lane);
	path_in(s->cut, s->dir, name);
	NEED(mkdir(s->run, 0700) == 0 && mkdir(s->cut, 0700) == 0, "mkdir in %s", s->dir);
}

/* One lane: points lane, lane + lanes, ...; its totals go to fd; never returns. */
static void lane_main(sweep *s, int lane, int lanes, long only, int fd)
{
	memset(&s->t, 0, sizeof(s->t));
	lane_dirs(s, lane + 1);
	for (long i = lane; i < s->points && s->t.violations == 0; i += lanes) {
		if (only >= 0 && i != only)
			continue;
		point pt = plan_point(s, i);
		cut_info ci;
		run_point(s, &pt, &ci);
		s->t.targeted += pt.index / N_CONFIGS % 5 >= 3;
	}
	NEED(write(fd, &s->t, sizeof(s->t)) == (ssize_t)sizeof(s->t), "write totals");
	_exit(0);
}

static void totals_add(totals *a, const totals *b)
{
	long *x = (long *)a;
	const long *y = (const long *)b;
	for (size_t i = 0; i < sizeof(*a) / sizeof(long); i++)
		x[i] += y[i];
}

/* The files only need to be scratch (durability is what the VFS models): a tmpfs spares the
 * parent's checks real flushes. DURQ_POWERLOSS_DIR, else /dev/shm, else TMPDIR. */
static char *sweep_dir(void)
{
	const char *base = getenv("DURQ_POWERLOSS_DIR");
	if (!base || !*base)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
	if (!base)
		return test_tmpdir();
	char *dir = malloc(PATH_MAX);
	snprintf(dir, PATH_MAX, "%s/durq-powerloss-XXXXXX", base);
	if (!mkdtemp(dir)) {
		free(dir);
		return NULL;
	}
	return dir;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void print_totals(const sweep *s, const totals *t, int lanes, double secs)
{
	const cut_info *c = s->cal;
	printf("powerloss: seed %llu, %ld cut points in %.1f s (%d lanes): %s %ld, %s %ld, %s %ld, "
	       "%s %ld; counted calls per uncut run %ld/%ld/%ld/%ld; %u items per run on a "
	       "backlog of %d, base WAL %ld frames\n",
	       (unsigned long long)s->seed, t->points, secs, lanes, configs[0].name,
	       t->by_config[0], configs[1].name, t->by_config[1], configs[2].name, t->by_config[2],
	       configs[3].name, t->by_config[3], c[0].calls, c[1].calls, c[2].calls, c[3].calls,
	       s->items, BASE_ITEMS - BASE_ACKED, s->base_wal_frames);
	printf("powerloss: modes drop-all %ld, random sectors %ld, in-order prefix %ld; %ld points "
	       "aimed at a checkpoint or a WAL restart; cuts with unsynced WAL writes %ld, inside "
	       "a checkpoint %ld (unsynced database writes %ld), after a WAL restart %ld; load "
	       "ended before its cut %ld; unsynced pieces kept %ld, dropped %ld\n",
	       t->by_mode[0], t->by_mode[1], t->by_mode[2], t->targeted, t->wal_pending,
	       t->in_checkpoint, t->db_pending, t->after_restart, t->ended_before_cut,
	       t->pieces_kept, t->pieces_dropped);
	printf("powerloss: checked %ld OK'd enqueues, %ld OK'd acks, %ld items present (%ld "
	       "images also reopened with durq); claims undone by the cut %ld; violations %ld\n",
	       t->ok_enqueues, t->ok_acks, t->present, t->reopened, t->claims_lost, t->violations);
	fflush(stdout);
}

static void test_power_cut_sweep(void **state)
{
	(void)state;
	sweep s = {.items = (uint32_t)dur_env_long("DURQ_POWERLOSS_ITEMS", DUR_BY_BUILD(120, 60, 40)),
		   .seed = (uint64_t)dur_env_long("DURQ_POWERLOSS_SEED", 1),
		   .points = dur_env_long("DURQ_POWERLOSS_POINTS", DUR_BY_BUILD(1000, 60, 16)),
		   .reopen_every = dur_env_long("DURQ_POWERLOSS_REOPEN_EVERY", 10)};
	long only = dur_env_long("DURQ_POWERLOSS_ONLY", -1);
	int lanes = (int)dur_env_long("DURQ_POWERLOSS_JOBS", 2);
	struct timespec t0;
	totals all = {0};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(lanes >= 1 && lanes <= 64 && s.items > 0 && s.points >= 0);
	s.dir = sweep_dir();
	assert_non_null(s.dir);
	path_in(s.base, s.dir, "base");
	assert_int_equal(mkdir(s.base, 0700), 0);
	history_alloc(&s.base_hist, BASE_ITEMS + 1 + s.items);
	history_alloc(&s.hist, BASE_ITEMS + 1 + s.items);
	make_base(&s);
	lane_dirs(&s, 0);
	for (int c = 0; c < N_CONFIGS; c++) { /* calibration: an uncut run counts the calls */
		point pt = {.config = c, .mode = POWERLOSS_DROP_ALL, .seed = s.seed + (uint64_t)c,
			    .index = -1};
		run_point(&s, &pt, &s.cal[c]);
		assert_true(s.cal[c].calls > 10);
	}
	all.violations = s.t.violations;
	pid_t pids[64];
	int fds[64];
	for (int l = 0; l < lanes; l++) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		pids[l] = fork();
		assert_true(pids[l] >= 0);
		if (pids[l] == 0) {
			close(p[0]);
			lane_main(&s, l, lanes, only, p[1]);
		}
		close(p[1]);
		fds[l] = p[0];
	}
	for (int l = 0; l < lanes; l++) {
		totals t;
		int status;
		ssize_t got = read(fds[l], &t, sizeof(t));
		close(fds[l]);
		assert_int_equal(waitpid(pids[l], &status, 0), pids[l]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != (ssize_t)sizeof(t))
			fail_msg("lane %d failed (status 0x%x): see its message above", l, status);
		totals_add(&all, &t);
	}
	print_totals(&s, &all, lanes, seconds_since(&t0));
	history_free(&s.base_hist);
	history_free(&s.hist);
	if (all.violations == 0)
		test_rmdir(s.dir);
	else
		free(s.dir);
	assert_int_equal(all.violations, 0);
	assert_true(only >= 0 || all.points == s.points);
}

/* ---- the model itself ------------------------------------------------------------------
 * A child drives the VFS directly: a file of three 4 KiB blocks 'i' is opened, block 0
 * written 'A' and synced; then, unsynced, block 1 written 'B', bytes 100..199 'C', a
 * truncate to 10000, bytes 12288..12987 'D' (two sector pieces). After the cut the size must
 * be one those could leave (10000, 12288, 12800, 12988), every byte the durable one or one
 * an unsynced op could have left there (zeros: truncated, or a hole below a kept piece past
 * the durable end); drop-all must give exactly the durable
 * file; across seeds the random modes must sometimes keep something. */
enum { MB = 4096 };

static void model_child(const char *dir, int mode, uint64_t seed)
{
	char path[PATH_MAX + 8] = {0}, cut[PATH_MAX];
	unsigned char a[MB], b[MB], c[100], d[700];
	int out;
	memset(a, 'A', sizeof(a));
	memset(b, 'B', sizeof(b));
	memset(c, 'C', sizeof(c));
	memset(d, 'D', sizeof(d));
	snprintf(path, PATH_MAX, "%s/m.db", dir);
	snprintf(cut, sizeof(cut), "%s/cut", dir);
	powerloss_plan plan = {.mode = mode, .seed = seed, .out_dir = cut};
	if (!powerloss_vfs_register())
		_exit(6);
	powerloss_vfs_arm(&plan);
	sqlite3_vfs *v = sqlite3_vfs_find(POWERLOSS_VFS_NAME);
	sqlite3_file *f = calloc(1, (size_t)v->szOsFile);
	if (!f || v->xOpen(v, path, f, SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READWRITE, &out) ||
	    f->pMethods->xWrite(f, a, MB, 0) || f->pMethods->xSync(f, SQLITE_SYNC_NORMAL) ||
	    f->pMethods->xWrite(f, b, MB, MB) || f->pMethods->xWrite(f, c, 100, 100) ||
	    f->pMethods->xTruncate(f, 10000) || f->pMethods->xWrite(f, d, 700, 3 * MB))
		_exit(7);
	powerloss_vfs_cut();
}

/* May byte i of the image be x? */
static int model_allows(size_t i, unsigned char x)
{
	unsigned char durable = i < MB ? 'A' : 'i';
	return (i < 3 * MB && x == durable) || (i >= MB && i < 2 * MB && x == 'B') ||
	       (i >= 100 && i < 200 && x == 'C') || (i >= 10000 && x == 0) || /* truncated, hole */
	       (i >= 3 * MB && i < 3 * MB + 700 && x == 'D');
}

static void test_vfs_model(void **state)
{
	(void)state;
	char *dir = test_tmpdir(), path[PATH_MAX], cut[PATH_MAX];
	unsigned char img[4 * MB], init[3 * MB];
	long changed[POWERLOSS_MODES] = {0};
	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/m.db", dir);
	snprintf(cut, sizeof(cut), "%s/cut", dir);
	assert_int_equal(mkdir(cut, 0700), 0);
	memset(init, 'i', sizeof(init));
	for (int mode = 0; mode < POWERLOSS_MODES; mode++) {
		for (uint64_t seed = 1; seed <= DUR_BY_BUILD(16, 8, 6); seed++) {
			FILE *f = fopen(path, "w");
			assert_non_null(f);
			assert_int_equal(fwrite(init, 1, sizeof(init), f), sizeof(init));
			fclose(f);
			pid_t pid = fork();
			assert_true(pid >= 0);
			if (pid == 0)
				model_child(dir, mode, seed);
			int status;
			assert_int_equal(waitpid(pid, &status, 0), pid);
			assert_true(WIFEXITED(status) && WEXITSTATUS(status) == POWERLOSS_EXIT_CUT);
			char out[PATH_MAX + 8];
			snprintf(out, sizeof(out), "%s/m.db", cut);
			f = fopen(out, "r");
			assert_non_null(f);
			size_t n = fread(img, 1, sizeof(img), f);
			fclose(f);
			if (n != 10000 && n != 3 * MB && n != 3 * MB + 512 && n != 3 * MB + 700)
				fail_msg("mode %d seed %llu: %zu bytes", mode, (unsigned long long)seed, n);
			int same = n == 3 * MB;
			for (size_t i = 0; i < n; i++) {
				if (!model_allows(i, img[i]))
					fail_msg("mode %d seed %llu: byte %zu is 0x%02x", mode,
						 (unsigned long long)seed, i, img[i]);
				same = same && img[i] == (i < MB ? 'A' : 'i');
			}
			if (mode == POWERLOSS_DROP_ALL)
				assert_true(same);
			changed[mode] += !same;
		}
	}
	assert_true(changed[POWERLOSS_KEEP_RANDOM] > 0 && changed[POWERLOSS_KEEP_PREFIX] > 0);
	test_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vfs_model),
		cmocka_unit_test(test_power_cut_sweep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
