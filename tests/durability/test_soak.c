/*
 * test_soak.c — multi-process soak (issue 11 item 5): 8 processes x 4 load threads share one
 * SQLite file under mixed load while readers hold snapshots; 0 errors reach a caller, every
 * item is acked exactly once, and the -wal file stays under its limit.
 *
 * Each process opens its own handle (processes 0-5 group commit, 6-7 per-op) and runs:
 *   - a producer: enqueues of 1-4 items on queue "soak", synchronous, or async with a
 *     callback or a group wait; durq_flush at the end;
 *   - a synchronous consumer: fetches of 1-16, acks one by one or with durq_work_ack_many,
 *     10% abandoned (delay 0, ignore_attempt alternately) and so delivered again;
 *   - an async consumer: fetches of 1-16, ack_async / abandon_async completed by callbacks,
 *     a group wait or durq_flush;
 *   - an orchestration thread: starts its instances, runs turns of any process's instances
 *     (turn 1 schedules an activity on queue "act", turn 2 completes the instance; 5% of
 *     turns abandoned first, acks sync or async) and runs activities (ack with the
 *     completion message);
 *   - and a reader: in even processes a raw sqlite3 connection that holds a read snapshot
 *     (BEGIN; SELECT over the queue) for HOLD_MS/4..HOLD_MS, releases it, and begins again
 *     within 10 ms, so some snapshot is nearly always open; in odd processes durq reads in a
 *     loop (depths, stats, instance get, history, instance list page).
 * The hold is the load's shape, not synchronisation: nothing waits on it.
 *
 * Every call's result is counted by code in shared memory; any code other than DURQ_OK (and
 * DURQ_EMPTY / DURQ_ENOTFOUND where they mean "nothing yet") stops all processes and fails
 * the test. durq's options are the defaults but busy_timeout, 120 s (DURQ_SOAK_BUSY_MS): with
 * the default 5 s, write-lock contention alone (8 processes x 5 threads on 2 loaded cores,
 * no checkpoint involved) surfaced DURQ_EBUSY in some runs; a wait that long is a stall,
 * which the stall watchdog reports. The test prints the longest gap between two calls of a
 * thread (about the slowest call). The
 * children append OK'd enqueues, acks, turns and activity acks to per-process files (one
 * write(2) per record); the parent checks each item enqueued once and acked exactly once,
 * each instance's two turns and its activity acked exactly once, then opens the file: queues
 * and dead letters empty, every instance COMPLETED with 2 history events, integrity ok.
 * Once every child has its handle open, the parent also checks in /proc/locks that each
 * holds SQLite's own POSIX locks (see check_posix_locks). A stall (no OK'd write anywhere for
 * DURQ_SOAK_STALL_S, default 60 s) fails the test with the lock table printed.
 *
 * WAL bound. The parent samples the -wal file size (and the frame count from the -shm
 * header) every 2 ms and asserts the file stays at most journal_size_limit = 64 MiB. Why
 * that should hold, from durq's checkpoint policy (providers/sqlite/sqlite_provider.c,
 * checkpoint_policy): SQLite's PASSIVE autocheckpoint cannot reset the WAL while a reader
 * uses it, so with snapshots held the WAL grows until a writer connection, at its every
 * 256th commit, sees more than 8000 frames and runs a RESTART checkpoint. RESTART holds the
 * write lock and waits for readers twice: for those of older snapshots (then it copies the
 * WAL), then for those that began during that wait. Readers holding up to HOLD_MS therefore
 * need up to 2 x HOLD_MS. The first tier waits 1 s at most and, if readers win, tries again
 * 32 commits later; past 12,000 frames it waits up to 3 s. At a 4 KiB
 * page a frame is 4120 bytes: 12,000 frames = 47 MiB, and the WAL holds that plus what
 * commits add until the forced RESTART's check (at most 256 commits of one connection of a
 * few pages each). The first commit after a restart truncates the file to
 * journal_size_limit if it is larger, so the file stays under 64 MiB. The default hold,
 * 1000 ms, is chosen so that 2 x HOLD_MS passes the first tier's 1 s: with the one-tier
 * policy (1 s, then 256 commits later) the WAL reached 140 MB in this test (and, at 500 ms
 * holds on a loaded machine, 56-66 MB: the flake of session 3); with two tiers 49-52 MB.
 * Not covered by any bound: a reader that holds a snapshot longer than busy_timeout (it
 * pins every frame after it).
 *
 * Size: DURQ_SOAK_ITEMS items and DURQ_SOAK_ORCH instances per process (defaults 2000 / 20;
 * under ASan+UBSan 300 / 5, under TSan 150 / 3), DURQ_SOAK_HOLD_MS (1000), DURQ_SOAK_DIR
 * (default TMPDIR or /tmp: a real disk, fsyncs included), DURQ_SOAK_LOG=1 prints durq's
 * warnings (RETRY: busy waits past 100 ms).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <execinfo.h>

#include "durability_util.h"

enum {
	PROCS = 8,
	MAXB = 16,                 /* most items per fetch */
	LEASE_MS = 600000,         /* nothing expires during the run */
	MAX_ATTEMPTS = 1000,       /* abandons never dead-letter */
	NCODES = 16,               /* -DURQ_ETIMEDOUT + 2: index = -rc, last = "other" */
	WAL_LIMIT = 64 * 1024 * 1024, /* journal_size_limit: the bound (see the top comment) */
	RESTART_FRAMES = 8000,
	TURN_OK = 'T',             /* record: turn n (attempt field) of instance id acked OK */
	ACT_OK = 'X'               /* record: the activity of instance id acked OK */
};

/* ---- shared between the parent and the children (MAP_SHARED before fork) ------------ */

typedef struct proc_figs {
	long calls, enq, acks, abandons, turns, turn_abandons, activities, reads;
	long holds, hold_ms, max_hold_ms, max_gap_ms;
	unsigned long long transactions, busy_retries, busy_surfaced, op_failures, max_stats_wal;
	int done;
} proc_figs;

typedef struct shared {
	atomic_long enq;             /* OK'd enqueues of "soak" items, all processes */
	atomic_long acked;           /* OK'd acks of those */
	atomic_int producers_done;
	atomic_int orch_done;        /* instances whose second turn was acked OK */
	atomic_int failed;           /* an error anywhere: every process stops */
	atomic_long progress;        /* OK'd writes, all processes: the stall watchdog reads it */
	atomic_int opened;           /* children whose handle is open and has read the database */
	atomic_long errors[PROCS][NCODES];
	atomic_long reader_errors[PROCS]; /* raw sqlite3 snapshot reader */
	atomic_long contract[PROCS];      /* a result the contract rules out (wrong payload, turn) */
	proc_figs figs[PROCS];
} shared;

typedef struct cfg {
	char path[PATH_MAX], url[PATH_MAX + 16];
	long items, orch, hold_ms;
} cfg;

/* ---- the child ----------------------------------------------------------------------- */

typedef struct child {
	const cfg *cf;
	shared *sh;
	int proc;
	int fd;                      /* per-process log of OK'd calls */
	durq *db;
	atomic_int stop;             /* the load threads are done: stop the reader */
	atomic_long calls, acks, abandons, turns, turn_abandons, activities, reads, enq;
	atomic_long max_gap_ms;      /* longest time between two calls of one thread */
} child;

static long mono_ms(void);

static void code_count(child *c, int rc, const char *what, const char *msg)
{
	int i = rc < 0 && rc >= -(NCODES - 2) ? -rc : NCODES - 1;
	if (atomic_fetch_add(&c->sh->errors[c->proc][i], 1) < 3)
		fprintf(stderr, "soak process %d: %s: %s: %s\n", c->proc, what,
			durq_error_name(rc), msg);
	atomic_store(&c->sh->failed, 1);
}

/* Set by the load and reader threads (not the main thread, idle between open and close). */
static _Thread_local int timed_thread;
static _Thread_local long last_call_ms;

/* Count a call; 1 if it returned OK (or an allowed "nothing" code), else counts the error. */
static int ok(child *c, int rc, const char *what, int allowed)
{
	if (timed_thread) { /* a load or reader thread: note the longest gap */
		long now = mono_ms(), gap = last_call_ms ? now - last_call_ms : 0;
		long seen = atomic_load(&c->max_gap_ms);
		while (gap > seen && !atomic_compare_exchange_weak(&c->max_gap_ms, &seen, gap))
			;
		last_call_ms = now;
	}
	atomic_fetch_add(&c->calls, 1);
	if (rc == DURQ_OK || (allowed && rc == allowed))
		return 1;
	code_count(c, rc, what, durq_error_last());
	return 0;
}

static void contract(child *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void contract(child *c, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "soak process %d: CONTRACT: ", c->proc);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	atomic_fetch_add(&c->sh->contract[c->proc], 1);
	atomic_store(&c->sh->failed, 1);
}

static int failed(child *c)
{
	return atomic_load(&c->sh->failed);
}

/* An async op's context: what to record when it completes OK. */
typedef struct op_ctx {
	child *c;
	int kind;                    /* DUR_ENQ_OK, DUR_ACK_OK, DUR_ABN_OK, TURN_OK, ACT_OK */
	uint32_t ids[4];
	int n, turn;
} op_ctx;

static void record_ok(child *c, int kind, const uint32_t *ids, int n, int turn)
{
	atomic_fetch_add(&c->sh->progress, 1);
	for (int i = 0; i < n; i++)
		if (kind != DUR_ABN_OK)
			dur_emit(c->fd, kind, ids[i], turn, 0);
	switch (kind) {
	case DUR_ENQ_OK:
		atomic_fetch_add(&c->enq, n);
		atomic_fetch_add(&c->sh->enq, n);
		break;
	case DUR_ACK_OK:
		atomic_fetch_add(&c->acks, n);
		atomic_fetch_add(&c->sh->acked, n);
		break;
	case DUR_ABN_OK: atomic_fetch_add(&c->abandons, n); break;
	case TURN_OK:
		atomic_fetch_add(&c->turns, 1);
		if (turn == 2)
			atomic_fetch_add(&c->sh->orch_done, 1);
		break;
	case ACT_OK: atomic_fetch_add(&c->activities, 1); break;
	default: break;
	}
}

static void op_done(void *ctx, const durq_completion *comp)
{
	op_ctx *o = ctx;
	if (comp->rc == DURQ_OK)
		record_ok(o->c, o->kind, o->ids, o->n, o->turn);
	else
		code_count(o->c, comp->rc, durq_op_kind_name(comp->kind), comp->message);
	free(o);
}

static durq_async op_async(child *c, int kind, const uint32_t *ids, int n, int turn,
			   durq_group *g)
{
	op_ctx *o = calloc(1, sizeof(*o));
	if (!o)
		_exit(4);
	*o = (op_ctx){.c = c, .kind = kind, .n = n, .turn = turn};
	memcpy(o->ids, ids, (size_t)n * sizeof(*ids));
	return (durq_async){.done = op_done, .ctx = o, .group = g};
}

/* Wait for a group (or flush): each op was recorded or counted by its callback. */
static void settle(child *c, durq_group *g, int flush)
{
	size_t nfailed = 0;
	if (flush)
		ok(c, durq_flush(c->db, -1), "durq_flush", 0);
	else if (g)
		ok(c, durq_group_wait(g, -1, &nfailed), "durq_group_wait", 0);
	durq_group_free(g); /* a failed op was counted by its callback */
}

static uint32_t item_id(int proc, long seq)
{
	return ((uint32_t)proc << 20) + (uint32_t)seq + 1;
}

static void *producer(void *arg)
{
	child *c = arg;
	timed_thread = 1;
	unsigned int seed = 1u + (unsigned int)c->proc * 7919u;
	unsigned char buf[4][DUR_PAYLOAD_MAX];
	for (long seq = 0; seq < c->cf->items && !failed(c);) {
		durq_work w[4];
		uint32_t ids[4];
		int n = 1 + rand_r(&seed) % 4, style = rand_r(&seed) % 10;
		if (seq + n > c->cf->items)
			n = (int)(c->cf->items - seq);
		for (int i = 0; i < n; i++, seq++) {
			ids[i] = item_id(c->proc, seq);
			w[i] = (durq_work){.queue = "soak", .priority = rand_r(&seed) % 3,
					   .payload = buf[i], .payload_len = dur_payload(buf[i], ids[i])};
		}
		if (style < 6) {
			if (ok(c, durq_work_enqueue(c->db, w, (size_t)n), "enqueue", 0))
				record_ok(c, DUR_ENQ_OK, ids, n, 0);
		} else {
			durq_group *g = NULL;
			if (style >= 8 && durq_group_new(&g) != DURQ_OK)
				_exit(4);
			durq_async a = op_async(c, DUR_ENQ_OK, ids, n, 0, g);
			if (!ok(c, durq_work_enqueue_async(c->db, w, (size_t)n, &a), "enqueue_async", 0))
				free(a.ctx);
			settle(c, g, 0);
		}
	}
	ok(c, durq_flush(c->db, -1), "durq_flush", 0); /* every async enqueue counted */
	atomic_fetch_add(&c->sh->producers_done, 1);
	return NULL;
}

static int consumers_done(child *c)
{
	return failed(c) || (atomic_load(&c->sh->producers_done) == PROCS &&
			     atomic_load(&c->sh->acked) >= atomic_load(&c->sh->enq));
}

/* Fetch a batch of "soak" items; check each payload. */
static size_t fetch(child *c, durq_work_item **it, uint32_t *ids, unsigned int *seed)
{
	size_t n = 0;
	int rc = durq_work_fetch(c->db, it, &n, "soak", 1 + rand_r(seed) % MAXB, LEASE_MS, 20);
	if (!ok(c, rc, "fetch", DURQ_EMPTY) || rc == DURQ_EMPTY)
		return 0;
	for (size_t k = 0; k < n; k++)
		if (!(ids[k] = dur_payload_id((*it)[k].payload, (*it)[k].payload_len)))
			contract(c, "fetched a payload that is no item's (id %lld)",
				 (long long)(*it)[k].id);
	return n;
}

static void *consumer_sync(void *arg)
{
	child *c = arg;
	timed_thread = 1;
	unsigned int seed = 2u + (unsigned int)c->proc * 104729u;
	while (!consumers_done(c)) {
		durq_work_item *it = NULL;
		uint32_t ids[MAXB], req_ids[MAXB];
		durq_work_ack_req reqs[MAXB];
		size_t n = fetch(c, &it, ids, &seed), nreq = 0;
		int many = rand_r(&seed) % 2;
		for (size_t k = 0; k < n && !failed(c); k++) {
			if (rand_r(&seed) % 10 == 0) {
				if (ok(c, durq_work_abandon(c->db, it[k].id, &it[k].token, 0, (int)(k % 2)),
				       "abandon", 0))
					record_ok(c, DUR_ABN_OK, &ids[k], 1, 0);
			} else if (many) {
				reqs[nreq] = (durq_work_ack_req){it[k].id, &it[k].token, NULL};
				req_ids[nreq++] = ids[k];
			} else if (ok(c, durq_work_ack(c->db, it[k].id, &it[k].token, NULL), "ack", 0)) {
				record_ok(c, DUR_ACK_OK, &ids[k], 1, 0);
			}
		}
		if (nreq) {
			int rcs[MAXB];
			ok(c, durq_work_ack_many(c->db, reqs, nreq, rcs), "ack_many", 0);
			for (size_t k = 0; k < nreq; k++) /* each ack stands alone */
				if (rcs[k] == DURQ_OK)
					record_ok(c, DUR_ACK_OK, &req_ids[k], 1, 0);
		}
		durq_work_items_free(it, n);
	}
	return NULL;
}

static void *consumer_async(void *arg)
{
	child *c = arg;
	timed_thread = 1;
	unsigned int seed = 3u + (unsigned int)c->proc * 1299709u;
	while (!consumers_done(c)) {
		durq_work_item *it = NULL;
		uint32_t ids[MAXB];
		size_t n = fetch(c, &it, ids, &seed);
		int style = rand_r(&seed) % 3; /* 0 callbacks only, 1 group wait, 2 flush */
		durq_group *g = NULL;
		if (style == 1 && durq_group_new(&g) != DURQ_OK)
			_exit(4);
		for (size_t k = 0; k < n && !failed(c); k++) {
			int abandon = rand_r(&seed) % 10 == 0;
			durq_async a = op_async(c, abandon ? DUR_ABN_OK : DUR_ACK_OK, &ids[k], 1, 0, g);
			int rc = abandon ? durq_work_abandon_async(c->db, it[k].id, &it[k].token, 0, 0, &a)
					 : durq_work_ack_async(c->db, it[k].id, &it[k].token, NULL, &a);
			if (!ok(c, rc, abandon ? "abandon_async" : "ack_async", 0))
				free(a.ctx);
		}
		settle(c, g, style == 2 && n);
		durq_work_items_free(it, n);
	}
	ok(c, durq_flush(c->db, -1), "durq_flush", 0);
	return NULL;
}

/* ---- orchestrations: turn 1 schedules an activity, turn 2 completes ------------------- */

static uint32_t instance_no(const cfg *cf, const char *id)
{
	int p, k;
	if (sscanf(id, "soak-%d-%d", &p, &k) != 2 || p < 0 || p >= PROCS || k < 0 || k >= cf->orch)
		return 0;
	return (uint32_t)(p * cf->orch + k) + 1;
}

static void run_turn(child *c, durq_turn *t, unsigned int *seed)
{
	uint32_t inst = instance_no(c->cf, t->instance_id);
	int has_completion = 0, style = rand_r(seed) % 20;
	for (size_t i = 0; i < t->n_messages; i++)
		has_completion |= t->messages[i].kind == 2;
	if (!inst) {
		contract(c, "turn of an unknown instance '%s'", t->instance_id);
		return;
	}
	if (style == 0) { /* abandon: the same turn comes again */
		if (ok(c, durq_orch_abandon(c->db, t->instance_id, &t->token, 0, 1), "orch_abandon", 0))
			atomic_fetch_add(&c->turn_abandons, 1);
		return;
	}
	durq_event ev;
	durq_work act;
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	int turn;
	if (t->n_history == 0 && !has_completion) {
		turn = 1;
		ev = (durq_event){1, "started", 7};
		act = (durq_work){.queue = "act", .instance_id = t->instance_id, .execution_id = 1,
				  .activity_id = 1, .payload = &inst, .payload_len = sizeof(inst)};
		r.name = "soak";
		r.work = &act;
		r.n_work = 1;
	} else if (t->n_history == 1 && has_completion && t->history[0].event_id == 1) {
		turn = 2;
		ev = (durq_event){2, "done", 4};
		r.status = DURQ_STATUS_COMPLETED;
		r.output = "ok";
		r.output_len = 2;
	} else {
		contract(c, "unexpected turn of %s: %zu events, %zu messages", t->instance_id,
			 t->n_history, t->n_messages);
		return;
	}
	r.history = &ev;
	r.n_history = 1;
	if (style < 12) {
		if (ok(c, durq_orch_ack(c->db, t->instance_id, &t->token, &r), "orch_ack", 0))
			record_ok(c, TURN_OK, &inst, 1, turn);
	} else {
		durq_group *g;
		if (durq_group_new(&g) != DURQ_OK)
			_exit(4);
		durq_async a = op_async(c, TURN_OK, &inst, 1, turn, g);
		if (!ok(c, durq_orch_ack_async(c->db, t->instance_id, &t->token, &r, &a),
			"orch_ack_async", 0))
			free(a.ctx);
		settle(c, g, 0);
	}
}

static void run_activities(child *c)
{
	durq_work_item *it = NULL;
	size_t n = 0;
	int rc = durq_work_fetch(c->db, &it, &n, "act", 4, LEASE_MS, 0);
	if (!ok(c, rc, "fetch act", DURQ_EMPTY) || rc == DURQ_EMPTY)
		return;
	for (size_t k = 0; k < n; k++) {
		uint32_t inst = 0;
		if (it[k].payload_len == sizeof(inst))
			memcpy(&inst, it[k].payload, sizeof(inst));
		if (!it[k].instance_id || inst != instance_no(c->cf, it[k].instance_id)) {
			contract(c, "activity %lld carries a wrong instance", (long long)it[k].id);
			continue;
		}
		durq_message done = {.instance_id = it[k].instance_id, .kind = 2, .payload = "r",
				     .payload_len = 1};
		if (k % 2) {
			durq_async a = op_async(c, ACT_OK, &inst, 1, 0, NULL);
			if (!ok(c, durq_work_ack_async(c->db, it[k].id, &it[k].token, &done, &a),
				"activity ack_async", 0))
				free(a.ctx);
		} else if (ok(c, durq_work_ack(c->db, it[k].id, &it[k].token, &done), "activity ack",
			      0)) {
			record_ok(c, ACT_OK, &inst, 1, 0);
		}
	}
	durq_work_items_free(it, n);
}

static void *orchestrations(void *arg)
{
	child *c = arg;
	timed_thread = 1;
	unsigned int seed = 4u + (unsigned int)c->proc * 15485863u;
	long started = 0, total = PROCS * c->cf->orch;
	while (!failed(c) && atomic_load(&c->sh->orch_done) < total) {
		if (started < c->cf->orch) {
			char id[64];
			snprintf(id, sizeof(id), "soak-%d-%ld", c->proc, started++);
			durq_message m = {.instance_id = id, .kind = 1, .payload = "go", .payload_len = 2};
			ok(c, durq_orch_enqueue(c->db, &m, 1), "orch_enqueue", 0);
		}
		durq_turn *t = NULL;
		int rc = durq_orch_fetch(c->db, &t, LEASE_MS, 10);
		if (ok(c, rc, "orch_fetch", DURQ_EMPTY) && rc == DURQ_OK)
			run_turn(c, t, &seed);
		durq_turn_free(t);
		run_activities(c);
	}
	ok(c, durq_flush(c->db, -1), "durq_flush", 0);
	return NULL;
}

/* ---- readers ------------------------------------------------------------------------- */

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int reader_exec(child *c, sqlite3 *s, const char *sql)
{
	int rc = sqlite3_exec(s, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		if (atomic_fetch_add(&c->sh->reader_errors[c->proc], 1) < 3)
			fprintf(stderr, "soak process %d: snapshot reader: %s: %s\n", c->proc, sql,
				sqlite3_errmsg(s));
		atomic_store(&c->sh->failed, 1);
	}
	return rc == SQLITE_OK;
}

/* Hold a read snapshot HOLD_MS/4..HOLD_MS, release, begin again within 10 ms. */
static void *snapshot_reader(void *arg)
{
	child *c = arg;
	proc_figs *f = &c->sh->figs[c->proc];
	unsigned int seed = 5u + (unsigned int)c->proc;
	sqlite3 *s = NULL;
	if (sqlite3_open_v2(c->cf->path, &s, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		fprintf(stderr, "soak process %d: snapshot reader: open: %s\n", c->proc,
			sqlite3_errmsg(s));
		atomic_fetch_add(&c->sh->reader_errors[c->proc], 1);
		atomic_store(&c->sh->failed, 1);
		sqlite3_close(s);
		return NULL;
	}
	sqlite3_busy_timeout(s, 5000);
	while (!atomic_load(&c->stop) && !failed(c)) {
		long h = c->cf->hold_ms / 4 + rand_r(&seed) % (c->cf->hold_ms - c->cf->hold_ms / 4 + 1);
		long t0 = mono_ms();
		if (!reader_exec(c, s, "BEGIN; SELECT count(*), sum(length(payload)) FROM work_queue"))
			break;
		nap_ms(h);
		int fine = reader_exec(c, s, "SELECT count(*) FROM history; COMMIT");
		long held = mono_ms() - t0;
		f->holds++;
		f->hold_ms += held;
		if (held > f->max_hold_ms)
			f->max_hold_ms = held;
		if (!fine)
			break;
		nap_ms(rand_r(&seed) % 11);
	}
	sqlite3_close(s);
	return NULL;
}

static void *durq_reader(void *arg)
{
	child *c = arg;
	timed_thread = 1;
	proc_figs *f = &c->sh->figs[c->proc];
	unsigned int seed = 6u + (unsigned int)c->proc;
	while (!atomic_load(&c->stop) && !failed(c)) {
		durq_queue_depths d;
		durq_stats s;
		char id[64], **ids = NULL;
		size_t n = 0;
		durq_instance_info *info = NULL;
		durq_event *ev = NULL;
		snprintf(id, sizeof(id), "soak-%d-%ld", (int)(rand_r(&seed) % PROCS),
			 (long)(rand_r(&seed) % c->cf->orch));
		ok(c, durq_queue_depths_get(c->db, &d, NULL), "depths", 0);
		if (ok(c, durq_stats_get(c->db, &s), "stats", 0) && s.wal_bytes > f->max_stats_wal)
			f->max_stats_wal = s.wal_bytes;
		if (ok(c, durq_instance_get(c->db, &info, id), "instance_get", DURQ_ENOTFOUND))
			durq_instance_info_free(info);
		if (ok(c, durq_history_read(c->db, &ev, &n, id, 0), "history_read", DURQ_ENOTFOUND))
			durq_events_free(ev, n);
		n = 0;
		if (ok(c, durq_instance_list_page(c->db, &ids, &n, -1, NULL, 50), "list_page", 0))
			durq_strings_free(ids, n);
		atomic_fetch_add(&c->reads, 5);
		nap_ms(2);
	}
	return NULL;
}

/* A child that crashes says where (cmocka's own handler would go on running the test). */
static void crash_handler(int sig)
{
	void *frames[64];
	int n = backtrace(frames, 64);
	static const char msg[] = "soak child: fatal signal; backtrace:\n";
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(6);
	backtrace_symbols_fd(frames, n, 2);
	_exit(128 + sig);
}

/* DURQ_SOAK_LOG=1: durq's warnings (RETRY: a busy wait past 100 ms, ...) on stderr. */
static void log_warn(void *ctx, int level, const char *tag, const char *message)
{
	(void)level;
	fprintf(stderr, "soak process %d [%.3f s] %s: %s\n", *(int *)ctx,
		(double)(mono_ms() % 1000000) / 1000.0, tag, message);
}

static void child_main(const cfg *cf, shared *sh, int proc, const char *log)
{
	signal(SIGBUS, crash_handler);
	signal(SIGSEGV, crash_handler);
	signal(SIGABRT, crash_handler);
	child c = {.cf = cf, .sh = sh, .proc = proc};
	durq_options o = DURQ_OPTIONS_INIT;
	o.max_attempts = MAX_ATTEMPTS;
	o.busy_timeout_ms = (int)dur_env_long("DURQ_SOAK_BUSY_MS", 120000);
	o.commit_mode = proc >= 6 ? DURQ_COMMIT_PER_OP : DURQ_COMMIT_GROUP;
	if (dur_env_long("DURQ_SOAK_LOG", 0)) {
		o.log = log_warn;
		o.log_ctx = &proc;
		o.log_level = DURQ_LOG_WARN;
	}
	if ((c.fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0600)) < 0)
		_exit(4);
	if (!ok(&c, durq_open(&c.db, cf->url, &o), "open", 0))
		_exit(3);
	durq_queue_depths d; /* a read: this process now uses the WAL and its -shm */
	ok(&c, durq_queue_depths_get(c.db, &d, NULL), "depths", 0);
	atomic_fetch_add(&sh->opened, 1);
	void *(*fn[4])(void *) = {producer, consumer_sync, consumer_async, orchestrations};
	pthread_t th[4], rd;
	for (int i = 0; i < 4; i++)
		if (pthread_create(&th[i], NULL, fn[i], &c))
			_exit(4);
	if (pthread_create(&rd, NULL, proc % 2 ? durq_reader : snapshot_reader, &c))
		_exit(4);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	atomic_store(&c.stop, 1);
	pthread_join(rd, NULL);
	proc_figs *f = &sh->figs[proc];
	durq_stats s = {0};
	if (ok(&c, durq_stats_get(c.db, &s), "stats", 0)) {
		f->transactions = s.transactions;
		f->busy_retries = s.busy_retries;
		f->busy_surfaced = s.busy_surfaced;
		f->op_failures = s.op_failures;
	}
	ok(&c, durq_close(c.db), "close", 0);
	durq_free(c.db);
	f->calls = atomic_load(&c.calls);
	f->enq = atomic_load(&c.enq);
	f->acks = atomic_load(&c.acks);
	f->abandons = atomic_load(&c.abandons);
	f->turns = atomic_load(&c.turns);
	f->turn_abandons = atomic_load(&c.turn_abandons);
	f->activities = atomic_load(&c.activities);
	f->reads = atomic_load(&c.reads);
	f->max_gap_ms = atomic_load(&c.max_gap_ms);
	f->done = 1;
	close(c.fd);
	_exit(failed(&c) ? 1 : 0);
}

/* ---- the parent ---------------------------------------------------------------------- */

typedef struct wal_watch {
	char wal[PATH_MAX + 8], shm[PATH_MAX + 8];
	long long max_bytes;
	unsigned int max_frames, last_frames;
	long samples, resets, over_restart;
} wal_watch;

/* One sample: -wal size, and mxFrame from the first wal-index header in -shm (offset 16,
 * native byte order). */
static void wal_sample(wal_watch *w)
{
	struct stat st;
	if (stat(w->wal, &st) == 0 && st.st_size > w->max_bytes)
		w->max_bytes = st.st_size;
	int fd = open(w->shm, O_RDONLY);
	uint32_t mx;
	if (fd >= 0 && pread(fd, &mx, sizeof(mx), 16) == (ssize_t)sizeof(mx)) {
		if (mx > w->max_frames)
			w->max_frames = mx;
		if (mx < w->last_frames) {
			w->resets++;
			w->over_restart += w->last_frames > RESTART_FRAMES;
		}
		w->last_frames = mx;
	}
	if (fd >= 0)
		close(fd);
	w->samples++;
}

typedef struct tally {
	uint8_t *enq, *ack;          /* by item id */
	uint8_t *t1, *t2, *act;      /* by instance number */
	long bad;
} tally;

static void bad(tally *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(tally *t, const char *fmt, ...)
{
	va_list ap;
	if (t->bad++ < 20) {
		fprintf(stderr, "SOAK VIOLATION: ");
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
}

static void read_log(const cfg *cf, tally *t, const char *log)
{
	int fd = open(log, O_RDONLY);
	dur_rec r;
	uint32_t items = PROCS << 20, insts = (uint32_t)(PROCS * cf->orch) + 1;
	assert_true(fd >= 0);
	while (dur_read(fd, &r)) {
		uint8_t *slot = NULL;
		uint32_t lim = r.kind == DUR_ENQ_OK || r.kind == DUR_ACK_OK ? items : insts;
		if (r.id == 0 || r.id >= lim) {
			bad(t, "record '%c' of an id out of range: %u", (int)r.kind, r.id);
			continue;
		}
		switch (r.kind) {
		case DUR_ENQ_OK: slot = &t->enq[r.id]; break;
		case DUR_ACK_OK: slot = &t->ack[r.id]; break;
		case TURN_OK: slot = r.attempt == 1 ? &t->t1[r.id] : &t->t2[r.id]; break;
		case ACT_OK: slot = &t->act[r.id]; break;
		default: bad(t, "unknown record '%c'", (int)r.kind); continue;
		}
		if (*slot < 255)
			(*slot)++;
	}
	close(fd);
}

/* Each item enqueued once and acked exactly once; each instance's turns and activity once. */
static void check_logs(const cfg *cf, char logs[PROCS][PATH_MAX], long *items_out)
{
	uint32_t items = PROCS << 20, insts = (uint32_t)(PROCS * cf->orch) + 1;
	tally t = {calloc(items, 1), calloc(items, 1), calloc(insts, 1), calloc(insts, 1),
		   calloc(insts, 1), 0};
	assert_true(t.enq && t.ack && t.t1 && t.t2 && t.act);
	for (int p = 0; p < PROCS; p++)
		read_log(cf, &t, logs[p]);
	long n = 0;
	for (int p = 0; p < PROCS; p++)
		for (long s = 0; s < cf->items; s++) {
			uint32_t id = item_id(p, s);
			n += t.enq[id] == 1;
			if (t.enq[id] != 1 || t.ack[id] != 1)
				bad(&t, "item %d/%ld: enqueued OK %d times, acked OK %d times", p, s,
				    t.enq[id], t.ack[id]);
		}
	for (uint32_t i = 1; i < items; i++)
		if ((t.enq[i] || t.ack[i]) && ((i & 0xfffff) > (uint32_t)cf->items))
			bad(&t, "item id %u was never produced", i);
	for (uint32_t i = 1; i < insts; i++)
		if (t.t1[i] != 1 || t.t2[i] != 1 || t.act[i] != 1)
			bad(&t, "instance %u: turn 1 acked %d times, turn 2 %d, activity %d", i, t.t1[i],
			    t.t2[i], t.act[i]);
	*items_out = n;
	if (t.bad)
		fail_msg("%ld violations in the logs of OK'd calls", t.bad);
	free(t.enq), free(t.ack), free(t.t1), free(t.t2), free(t.act);
}

/* The file after the run: queues empty, no dead letters, every instance completed. */
static void check_file(const cfg *cf)
{
	char msg[256];
	durq *db;
	durq_queue_depths d;
	assert_true(dur_integrity_ok(cf->path, msg, sizeof(msg)));
	assert_int_equal(durq_open(&db, cf->url, NULL), DURQ_OK);
	assert_int_equal(durq_queue_depths_get(db, &d, NULL), DURQ_OK);
	if (d.orch_ready + d.orch_delayed + d.orch_leased + d.work_ready + d.work_delayed +
		    d.work_leased + d.dead_letters + d.instances_locked)
		fail_msg("left after the run: orch %lld/%lld/%lld work %lld/%lld/%lld dead %lld locks %lld",
			 (long long)d.orch_ready, (long long)d.orch_delayed, (long long)d.orch_leased,
			 (long long)d.work_ready, (long long)d.work_delayed, (long long)d.work_leased,
			 (long long)d.dead_letters, (long long)d.instances_locked);
	for (int p = 0; p < PROCS; p++)
		for (long k = 0; k < cf->orch; k++) {
			char id[64];
			durq_instance_info *info;
			durq_event *ev;
			size_t n;
			snprintf(id, sizeof(id), "soak-%d-%ld", p, k);
			assert_int_equal(durq_instance_get(db, &info, id), DURQ_OK);
			assert_int_equal(info->status, DURQ_STATUS_COMPLETED);
			durq_instance_info_free(info);
			assert_int_equal(durq_history_read(db, &ev, &n, id, 0), DURQ_OK);
			assert_int_equal(n, 2);
			assert_true(ev[0].event_id == 1 && ev[1].event_id == 2);
			durq_events_free(ev, n);
		}
	durq_free(db);
}

static void print_figures(const cfg *cf, const shared *sh, const wal_watch *w, double secs)
{
	long calls = 0, acks = 0, abn = 0, turns = 0, tab = 0, act = 0, reads = 0, holds = 0,
	     hold_ms = 0, max_hold = 0;
	unsigned long long txns = 0, busy = 0, surfaced = 0, stats_wal = 0;
	for (int p = 0; p < PROCS; p++) {
		const proc_figs *f = &sh->figs[p];
		calls += f->calls, acks += f->acks, abn += f->abandons, turns += f->turns;
		tab += f->turn_abandons, act += f->activities, reads += f->reads;
		holds += f->holds, hold_ms += f->hold_ms;
		max_hold = f->max_hold_ms > max_hold ? f->max_hold_ms : max_hold;
		txns += f->transactions, busy += f->busy_retries, surfaced += f->busy_surfaced;
		stats_wal = f->max_stats_wal > stats_wal ? f->max_stats_wal : stats_wal;
		fprintf(stderr, "  process %d (%s): %ld calls, %llu transactions, %llu busy waits "
			"(hidden), %llu surfaced, longest gap between a thread's calls %ld ms\n", p,
			p >= 6 ? "per-op" : "group", f->calls, f->transactions, f->busy_retries,
			f->busy_surfaced, f->max_gap_ms);
	}
	fprintf(stderr, "soak: %d processes x 4 threads + a reader, %.1f s: %ld items, %ld acks, "
		"%ld abandons, %ld instances (%ld turns, %ld turn abandons, %ld activities), %ld "
		"durq reads, %ld calls (%.0f/s); %llu transactions, %llu busy waits hidden, %llu "
		"surfaced\n", PROCS, secs, PROCS * cf->items, acks, abn, PROCS * cf->orch, turns,
		tab, act, reads, calls, calls / secs, txns, busy, surfaced);
	fprintf(stderr, "soak: snapshots held %ld times, %.0f ms mean, %ld ms max (hold %ld ms); "
		"WAL peak %lld bytes (limit %d), %u frames peak, %ld resets seen (%ld past %d "
		"frames), %ld samples; durq_stats wal_bytes peak %llu\n", holds,
		holds ? (double)hold_ms / holds : 0.0, max_hold, cf->hold_ms, w->max_bytes, WAL_LIMIT,
		w->max_frames, w->resets, w->over_restart, RESTART_FRAMES, w->samples, stats_wal);
}

static void errors_by_code(const shared *sh, long *total)
{
	*total = 0;
	for (int i = 1; i < NCODES; i++) {
		long n = 0;
		for (int p = 0; p < PROCS; p++)
			n += atomic_load(&sh->errors[p][i]);
		if (n)
			fprintf(stderr, "soak: errors %s: %ld\n",
				i == NCODES - 1 ? "(other code)" : durq_error_name(-i), n);
		*total += n;
	}
	for (int p = 0; p < PROCS; p++)
		*total += atomic_load(&sh->reader_errors[p]) + atomic_load(&sh->contract[p]);
	fprintf(stderr, "soak: errors surfaced to callers: %ld\n", *total);
}

/* The POSIX locks held on the database and its -shm (which process holds which byte). */
static void dump_locks(const cfg *cf)
{
	struct stat db, shm;
	char path[PATH_MAX + 8], line[256], k1[64], k2[64];
	snprintf(path, sizeof(path), "%s-shm", cf->path);
	if (stat(cf->path, &db) != 0 || stat(path, &shm) != 0)
		return;
	snprintf(k1, sizeof(k1), ":%lu ", (unsigned long)db.st_ino);
	snprintf(k2, sizeof(k2), ":%lu ", (unsigned long)shm.st_ino);
	FILE *f = fopen("/proc/locks", "r");
	int shm_fd = open(path, O_RDONLY);
	uint32_t hdr[34];
	if (shm_fd >= 0 && pread(shm_fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr))
		fprintf(stderr, "soak: wal-index: mxFrame %u nBackfill %u aReadMark %u %u %u %u %u "
			"(locks: byte 120 write, 121 checkpoint, 123+i read mark i, 128 DMS)\n",
			hdr[4], hdr[24], hdr[25], hdr[26], hdr[27], hdr[28], hdr[29]);
	if (shm_fd >= 0)
		close(shm_fd);
	fprintf(stderr, "soak: POSIX locks on the database (%s) and -shm (%s):\n", k1, k2);
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, k1) || strstr(line, k2))
			fprintf(stderr, "  %s", line);
	if (f)
		fclose(f);
}

/*
 * Every process using the database must hold, as SQLite's unix VFS takes them: a read lock
 * on the -shm's DMS byte (128; "this process uses the wal-index": without it the next
 * process to open the database believes it is alone, truncates the -shm and rebuilds it
 * under the others) and a read lock on the database file's SHARED range (without it another
 * process's last close takes EXCLUSIVE, checkpoints and deletes the -wal under it). POSIX
 * locks belong to the process and go when any descriptor of the file is closed, so a
 * library that opens and closes these files itself can drop them. Read from /proc/locks;
 * returns the number of processes missing one.
 */
/* One pass over /proc/locks: have[p][0] |= DMS lock seen, have[p][1] |= SHARED seen. */
static int scan_locks(const pid_t *pid, ino_t db, ino_t shm, int have[PROCS][2])
{
	char line[256];
	FILE *f = fopen("/proc/locks", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char kind[16], mode[16], end[32];
		int lpid;
		unsigned long ino;
		unsigned long long start;
		/* "1: POSIX  ADVISORY  READ 1234 fe:00:1093 128 128" */
		if (sscanf(line, "%*d: %15s %*s %15s %d %*x:%*x:%lu %llu %31s", kind, mode, &lpid, &ino,
			   &start, end) != 6 || strcmp(kind, "POSIX") != 0)
			continue;
		unsigned long long last = strcmp(end, "EOF") ? strtoull(end, NULL, 10) : ~0ull;
		for (int p = 0; p < PROCS; p++) {
			if (lpid != pid[p])
				continue;
			if (ino == (unsigned long)shm && start <= 128 && 128 <= last)
				have[p][0] = 1;
			if (ino == (unsigned long)db && start <= 1073741826ull && 1073741826ull <= last)
				have[p][1] = 1;
		}
	}
	fclose(f);
	return 0;
}

static int check_posix_locks(const cfg *cf, const pid_t *pid, const int *status)
{
	struct stat db, shm;
	char path[PATH_MAX + 8];
	int have[PROCS][2] = {{0}}, missing = 0;
	snprintf(path, sizeof(path), "%s-shm", cf->path);
	if (stat(cf->path, &db) != 0 || stat(path, &shm) != 0) {
		fprintf(stderr, "soak: cannot stat the database files: lock check skipped\n");
		return 0;
	}
	/* /proc/locks is not read atomically: while locks come and go a pass can skip a line,
	 * so a lock counts as held if any of 20 passes shows it */
	for (int pass = 0; pass < 20; pass++)
		if (scan_locks(pid, db.st_ino, shm.st_ino, have) < 0) {
			fprintf(stderr, "soak: cannot read /proc/locks: lock check skipped\n");
			return 0;
		}
	for (int p = 0; p < PROCS; p++) {
		if (status[p] != -1 || (have[p][0] && have[p][1]))
			continue;
		missing++;
		fprintf(stderr, "SOAK VIOLATION: process %d (pid %d) has the database open but holds %s%s%s\n",
			p, (int)pid[p], have[p][0] ? "" : "no lock on the -shm DMS byte 128",
			!have[p][0] && !have[p][1] ? " and " : "",
			have[p][1] ? "" : "no SHARED lock on the database file");
	}
	return missing;
}

static void stop_children(shared *sh, const pid_t *pid, int *status)
{
	for (int p = 0; p < PROCS; p++)
		if (status[p] == -1)
			kill(pid[p], SIGKILL);
	for (int p = 0; p < PROCS; p++)
		if (status[p] == -1)
			waitpid(pid[p], &status[p], 0);
	fprintf(stderr, "soak: enqueued %ld, acked %ld, producers done %d, instances done %d\n",
		atomic_load(&sh->enq), atomic_load(&sh->acked), atomic_load(&sh->producers_done),
		atomic_load(&sh->orch_done));
}

static void test_soak(void **state)
{
	(void)state;
	cfg cf;
	const char *base = getenv("DURQ_SOAK_DIR");
	char *dir = base ? strdup(base) : test_tmpdir();
	char logs[PROCS][PATH_MAX];
	assert_non_null(dir);
	cf.items = dur_env_long("DURQ_SOAK_ITEMS", DUR_BY_BUILD(2000, 300, 150));
	cf.orch = dur_env_long("DURQ_SOAK_ORCH", DUR_BY_BUILD(20, 5, 3));
	cf.hold_ms = dur_env_long("DURQ_SOAK_HOLD_MS", 1000);
	assert_true(cf.items > 0 && cf.items < (1 << 20) && cf.orch > 0 && cf.hold_ms > 0);
	snprintf(cf.path, sizeof(cf.path), "%s/soak.db", dir);
	snprintf(cf.url, sizeof(cf.url), "sqlite:%s", cf.path);
	wal_watch w = {0};
	snprintf(w.wal, sizeof(w.wal), "%s-wal", cf.path);
	snprintf(w.shm, sizeof(w.shm), "%s-shm", cf.path);
	durq *init;
	assert_int_equal(durq_open(&init, cf.url, NULL), DURQ_OK); /* schema before the race */
	durq_free(init);

	shared *sh = mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			  -1, 0);
	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	pid_t pid[PROCS];
	int status[PROCS], alive = PROCS;
	long t0 = mono_ms(), limit_ms = 1000L * dur_env_long("DURQ_SOAK_WATCHDOG_S", 540);
	long stall_ms = 1000L * dur_env_long("DURQ_SOAK_STALL_S", DUR_BY_BUILD(60, 120, 240));
	long last_progress = -1, progress_at = t0;
	int locks_checked = 0, locks_missing = 0;
	for (int p = 0; p < PROCS; p++) {
		snprintf(logs[p], sizeof(logs[p]), "%s/soak-%d.log", dir, p);
		fflush(NULL);
		pid[p] = fork();
		assert_true(pid[p] >= 0);
		if (pid[p] == 0)
			child_main(&cf, sh, p, logs[p]);
		status[p] = -1;
	}
	/* sample the WAL every 2 ms until every child exited (or the watchdog fires) */
	while (alive) {
		wal_sample(&w);
		for (int p = 0; p < PROCS; p++) {
			int st;
			if (status[p] == -1 && waitpid(pid[p], &st, WNOHANG) == pid[p]) {
				status[p] = st;
				alive--;
				if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
					atomic_store(&sh->failed, 1); /* the others stop too */
			}
		}
		if (!locks_checked && atomic_load(&sh->opened) == PROCS) {
			locks_checked = 1;
			if ((locks_missing = check_posix_locks(&cf, pid, status)))
				atomic_store(&sh->failed, 1); /* stop: the run is unsafe */
		}
		long now = mono_ms(), prog = atomic_load(&sh->progress);
		if (prog != last_progress)
			last_progress = prog, progress_at = now;
		if (alive && (now - t0 > limit_ms || now - progress_at > stall_ms)) {
			fprintf(stderr, "soak: %s after %.1f s (WAL %u frames, %lld bytes peak); killing "
				"the children\n", now - t0 > limit_ms ? "watchdog" : "no progress",
				(double)(now - t0) / 1000.0, w.last_frames, w.max_bytes);
			dump_locks(&cf);
			stop_children(sh, pid, status);
			fail_msg("soak %s", now - t0 > limit_ms ? "did not finish in time" :
				 "stalled: no OK'd write in any process for the stall period");
		}
		if (alive)
			nap_ms(2); /* the sampling period */
	}
	wal_sample(&w);
	double secs = (double)(mono_ms() - t0) / 1000.0;
	long errors = 0, items = 0;
	print_figures(&cf, sh, &w, secs);
	errors_by_code(sh, &errors);
	if (locks_missing)
		fail_msg("%d processes lost SQLite's POSIX locks on the database (see above)",
			 locks_missing);
	for (int p = 0; p < PROCS; p++) {
		if (!WIFEXITED(status[p]) || WEXITSTATUS(status[p]) != 0 || !sh->figs[p].done)
			fail_msg("process %d ended with status 0x%x", p, status[p]);
		assert_int_equal(sh->figs[p].busy_surfaced, 0);
	}
	assert_int_equal(errors, 0);
	check_logs(&cf, logs, &items);
	assert_int_equal(items, PROCS * cf.items);
	assert_int_equal(atomic_load(&sh->acked), PROCS * cf.items);
	if (w.max_bytes > WAL_LIMIT)
		fail_msg("the -wal file reached %lld bytes, over its limit %d (peak %u frames)",
			 w.max_bytes, WAL_LIMIT, w.max_frames);
	check_file(&cf);
	munmap(sh, sizeof(*sh));
	if (base)
		free(dir);
	else
		test_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_soak),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
