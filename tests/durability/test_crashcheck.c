/*
 * test_crashcheck.c — crash checker: a child process under mixed load is SIGKILLed at a
 * random moment, again and again, on one database file that carries its backlog from cycle
 * to cycle; the parent keeps the history of every OK'd call and checks the file after every
 * kill and at the end.
 *
 * Cycle: fork; the child opens the file (group commit or per-op, alternately), starts a
 * producer (enqueues of 1-4 items, synchronous or async), a synchronous consumer and an
 * async consumer (fetches of 1-8; ack 70%: durq_work_ack, durq_work_ack_many, ack_async +
 * durq_flush or a group; abandon 30%, so max_attempts 3 dead-letters some), says "ready",
 * and the parent kills it 1-20 ms later (seeded; 4x / 10x that under ASan / TSan). Records come
 * over a pipe, one write(2) each, an OK record only after the call returned (an async op:
 * its completion said OK). The producer keeps the backlog near BACKLOG_TARGET. The child's
 * clock runs CYCLE_CLOCK_MS further per cycle, so the leases a killed child held have
 * expired for the next one.
 *
 * After each kill the parent reads the file (SQL on one connection: integrity_check, then
 * every queued and dead-lettered payload) and checks:
 *   - lost = 0: every item whose enqueue returned OK (or that was seen once) is queued or
 *     dead-lettered, unless an ack of it was tried (an ack in doubt at the kill is settled
 *     here: gone = it committed, there = it did not);
 *   - redelivered after an OK'd ack = 0: no fetch that began after an ack of the item
 *     returned OK (tickets order the calls within a child) and no fetch in a later cycle
 *     returns it, and it is never queued or dead-lettered again;
 *   - unknown = 0: every row is the exact payload of an item that was about to be enqueued
 *     and whose enqueue was not settled as never committed; no item twice;
 *   - integrity failures = 0.
 * At the end durq itself reopens the file and must fetch exactly the queued items.
 *
 * DURQ_CRASHCHECK_CYCLES (default 500; 60 under ASan+UBSan, 20 under TSan), DURQ_CRASHCHECK_SEED
 * (default 1), DURQ_CRASHCHECK_DIR (default /dev/shm, else TMPDIR: a kill, unlike a power
 * cut, loses nothing the kernel already has, so the file system does not matter).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "durability_util.h"

enum { LEASE_MS = 60000, CYCLE_CLOCK_MS = 120000, MAX_ATTEMPTS = 3, MAXB = 8 };

/* ---- the child ----------------------------------------------------------------------- */

typedef struct load {
	durq *db;
	int fd;
	atomic_uint next_id;
	atomic_uint ticket;
	unsigned int seed;
	pthread_mutex_t mu;  /* credits: the producer enqueues only while the backlog (as at */
	pthread_cond_t cv;   /* the start, + enqueues - OK'd acks) is under BACKLOG_TARGET */
	int credits;
} load;

enum { BACKLOG_TARGET = 200 }; /* a child's credits: this less the items queued at its start */

static void credit_take(load *l, int n)
{
	pthread_mutex_lock(&l->mu);
	while (l->credits < n)
		pthread_cond_wait(&l->cv, &l->mu);
	l->credits -= n;
	pthread_mutex_unlock(&l->mu);
}

static void credit_give(load *l)
{
	pthread_mutex_lock(&l->mu);
	l->credits++;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

static uint32_t ticket(load *l)
{
	return atomic_fetch_add(&l->ticket, 1) + 1;
}

static void child_fail(const char *what, int rc)
{
	fprintf(stderr, "crashcheck child: %s: %s %s\n", what, durq_error_name(rc), durq_error_last());
	_exit(3);
}

typedef struct op_ctx {
	load *l;
	int kind;             /* DUR_ENQ_OK, DUR_ACK_OK, DUR_ABN_OK, or 0: only set *slot */
	uint32_t ids[4];
	int n;
	atomic_int *slot;     /* 1 = OK, -1 = failed */
} op_ctx;

static void op_done(void *ctx, const durq_completion *c)
{
	op_ctx *o = ctx;
	if (o->slot)
		atomic_store(o->slot, c->rc == DURQ_OK ? 1 : -1);
	if (c->rc == DURQ_OK)
		for (int i = 0; o->kind && i < o->n; i++)
			dur_emit(o->l->fd, o->kind, o->ids[i], 0, ticket(o->l));
	if (c->rc == DURQ_OK && c->kind == DURQ_OP_WORK_ACK)
		credit_give(o->l);
	free(o);
}

static op_ctx *op_new(load *l, int kind, atomic_int *slot)
{
	op_ctx *o = calloc(1, sizeof(*o));
	if (!o)
		_exit(4);
	o->l = l;
	o->kind = kind;
	o->slot = slot;
	return o;
}

static void *producer(void *arg)
{
	load *l = arg;
	unsigned int seed = l->seed;
	unsigned char buf[4][DUR_PAYLOAD_MAX];
	for (;;) {
		durq_work w[4];
		uint32_t ids[4];
		int n = 1 + rand_r(&seed) % 4;
		credit_take(l, n);
		for (int i = 0; i < n; i++) {
			ids[i] = atomic_fetch_add(&l->next_id, 1);
			memset(&w[i], 0, sizeof(w[i]));
			w[i].payload = buf[i];
			w[i].payload_len = dur_payload(buf[i], ids[i]);
			dur_emit(l->fd, DUR_ENQ_TRY, ids[i], 0, 0);
		}
		if (rand_r(&seed) % 10 < 3) {
			op_ctx *o = op_new(l, DUR_ENQ_OK, NULL);
			o->n = n;
			memcpy(o->ids, ids, sizeof(ids));
			durq_async a = {.done = op_done, .ctx = o};
			int rc = durq_work_enqueue_async(l->db, w, (size_t)n, &a);
			if (rc != DURQ_OK)
				child_fail("enqueue_async", rc);
		} else {
			int rc = durq_work_enqueue(l->db, w, (size_t)n);
			if (rc != DURQ_OK)
				child_fail("enqueue", rc);
			for (int i = 0; i < n; i++)
				dur_emit(l->fd, DUR_ENQ_OK, ids[i], 0, ticket(l));
		}
	}
	return NULL;
}

/* Fetch a batch and report each item with the ticket taken before the fetch began. */
static size_t fetch(load *l, durq_work_item **it, uint32_t *ids, unsigned int *seed)
{
	size_t n;
	uint32_t t = ticket(l);
	int rc = durq_work_fetch(l->db, it, &n, NULL, 1 + rand_r(seed) % MAXB, LEASE_MS, 5);
	if (rc == DURQ_EMPTY)
		return 0;
	if (rc != DURQ_OK)
		child_fail("fetch", rc);
	for (size_t k = 0; k < n; k++) {
		ids[k] = dur_payload_id((*it)[k].payload, (*it)[k].payload_len);
		if (!ids[k]) {
			fprintf(stderr, "crashcheck child: fetched a payload of no item\n");
			_exit(3);
		}
		dur_emit(l->fd, DUR_CLAIM, ids[k], (*it)[k].attempt, t);
	}
	return n;
}

/* Synchronous consumer: ack one by one or all acks of the batch with durq_work_ack_many. */
static void *consumer_sync(void *arg)
{
	load *l = arg;
	unsigned int seed = l->seed * 31u + 7u;
	for (;;) {
		durq_work_item *it;
		uint32_t ids[MAXB];
		durq_work_ack_req reqs[MAXB];
		uint32_t req_ids[MAXB];
		size_t n = fetch(l, &it, ids, &seed), nreq = 0;
		int many = rand_r(&seed) % 2;
		for (size_t k = 0; k < n; k++) {
			int rc;
			if (rand_r(&seed) % 10 < 3) {
				dur_emit(l->fd, DUR_ABN_TRY, ids[k], 0, 0);
				if ((rc = durq_work_abandon(l->db, it[k].id, &it[k].token, 0, 0)) != DURQ_OK)
					child_fail("abandon", rc);
				dur_emit(l->fd, DUR_ABN_OK, ids[k], 0, ticket(l));
			} else if (many) {
				reqs[nreq] = (durq_work_ack_req){it[k].id, &it[k].token, NULL};
				req_ids[nreq++] = ids[k];
				dur_emit(l->fd, DUR_ACK_TRY, ids[k], 0, 0);
			} else {
				dur_emit(l->fd, DUR_ACK_TRY, ids[k], 0, 0);
				if ((rc = durq_work_ack(l->db, it[k].id, &it[k].token, NULL)) != DURQ_OK)
					child_fail("ack", rc);
				dur_emit(l->fd, DUR_ACK_OK, ids[k], 0, ticket(l));
				credit_give(l);
			}
		}
		if (nreq) {
			int rcs[MAXB];
			int rc = durq_work_ack_many(l->db, reqs, nreq, rcs);
			if (rc != DURQ_OK)
				child_fail("ack_many", rc);
			for (size_t k = 0; k < nreq; k++) {
				dur_emit(l->fd, DUR_ACK_OK, req_ids[k], 0, ticket(l));
				credit_give(l);
			}
		}
		durq_work_items_free(it, n);
	}
	return NULL;
}

/* Async consumer: every ack and abandon async; the OK recorded by the completion callback,
 * or after durq_flush, or after a group wait. */
static void *consumer_async(void *arg)
{
	load *l = arg;
	unsigned int seed = l->seed * 131u + 3u;
	for (;;) {
		durq_work_item *it;
		uint32_t ids[MAXB];
		int ack[MAXB];
		atomic_int slots[MAXB];
		size_t n = fetch(l, &it, ids, &seed);
		int style = rand_r(&seed) % 3; /* 0 callback, 1 flush, 2 group */
		durq_group *g = NULL;
		if (style == 2 && durq_group_new(&g) != DURQ_OK)
			_exit(4);
		for (size_t k = 0; k < n; k++) {
			ack[k] = rand_r(&seed) % 10 >= 3;
			atomic_init(&slots[k], 0);
			op_ctx *o = op_new(l, style == 0 ? (ack[k] ? DUR_ACK_OK : DUR_ABN_OK) : 0,
					   style == 0 ? NULL : &slots[k]);
			o->n = 1;
			o->ids[0] = ids[k];
			durq_async a = {.done = op_done, .ctx = o, .group = g};
			dur_emit(l->fd, ack[k] ? DUR_ACK_TRY : DUR_ABN_TRY, ids[k], 0, 0);
			int rc = ack[k] ? durq_work_ack_async(l->db, it[k].id, &it[k].token, NULL, &a)
					: durq_work_abandon_async(l->db, it[k].id, &it[k].token, 0, 0, &a);
			if (rc != DURQ_OK)
				child_fail("ack/abandon async", rc);
		}
		if (style && n) {
			size_t failed = 0;
			int rc = style == 1 ? durq_flush(l->db, -1) : durq_group_wait(g, -1, &failed);
			if (rc != DURQ_OK || failed)
				child_fail("flush / group wait", rc);
			for (size_t k = 0; k < n; k++) {
				if (atomic_load(&slots[k]) != 1)
					child_fail("an async op not OK after its flush / group wait", 0);
				dur_emit(l->fd, ack[k] ? DUR_ACK_OK : DUR_ABN_OK, ids[k], 0, ticket(l));
			}
		}
		durq_group_free(g);
		durq_work_items_free(it, n);
	}
	return NULL;
}

/* Runs until killed. */
static void child_main(const char *url, int cycle, uint32_t next_id, long queued,
		       unsigned int seed, int fd)
{
	static int64_t offset; /* the child's clock: CYCLE_CLOCK_MS further per cycle */
	durq_options o = DURQ_OPTIONS_INIT;
	load l = {.fd = fd, .seed = seed, .mu = PTHREAD_MUTEX_INITIALIZER,
		  .cv = PTHREAD_COND_INITIALIZER,
		  .credits = queued < BACKLOG_TARGET ? (int)(BACKLOG_TARGET - queued) : 0};
	pthread_t t[3];
	offset = (int64_t)cycle * CYCLE_CLOCK_MS;
	o.clock = dur_clock_offset;
	o.clock_ctx = &offset;
	o.max_attempts = MAX_ATTEMPTS;
	o.pool_size = 5;
	o.commit_mode = cycle % 2 ? DURQ_COMMIT_PER_OP : DURQ_COMMIT_GROUP;
	atomic_init(&l.next_id, next_id);
	atomic_init(&l.ticket, 0);
	int rc = durq_open(&l.db, url, &o);
	if (rc != DURQ_OK)
		child_fail("open", rc);
	if (pthread_create(&t[0], NULL, producer, &l) || pthread_create(&t[1], NULL, consumer_sync, &l) ||
	    pthread_create(&t[2], NULL, consumer_async, &l))
		_exit(4);
	dur_emit(fd, DUR_READY, 0, 0, 0);
	pthread_join(t[0], NULL); /* never: the parent kills the process */
	_exit(5);
}

/* ---- the parent ---------------------------------------------------------------------- */

enum {
	F_ENQ_TRY = 1, F_ENQ_OK = 2, F_SEEN = 4, F_ENQ_VOID = 8, /* enqueue: never committed */
	F_ACK_TRY = 16, F_ACK_OK = 32, F_GONE = 64, /* an ack in doubt that committed */
	F_REPORTED = 128 /* a violation was reported for the item: counted once */
};

typedef struct item {
	uint8_t flags;
	int ack_cycle;       /* cycle of the OK'd ack, -1 */
	uint32_t ack_ticket;
	int claim_cycle;     /* cycle of the latest claim, -1 */
	uint32_t claim_ticket; /* highest fetch-start ticket in that cycle */
} item;

typedef struct checker {
	char *dir;
	char path[PATH_MAX], url[PATH_MAX + 16];
	item *items;
	uint32_t n, cap;     /* ids 1 .. n-1 used */
	int cycle;
	uint64_t rng;
	/* figures */
	long enq_ok, ack_ok, abn_ok, claims, kills, group_cycles, records;
	long enq_doubt_committed, enq_doubt_void, ack_doubt_committed, ack_doubt_void;
	long queued, dead, max_backlog;
	long lost, redelivered, unknown, integrity;
	double load_ms;
} checker;

/* Report a violation; an item (may be NULL) is counted and reported once. */
static void finding(checker *c, long *counter, item *it, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void finding(checker *c, long *counter, item *it, const char *fmt, ...)
{
	va_list ap;
	if (it && (it->flags & F_REPORTED))
		return;
	if (it)
		it->flags |= F_REPORTED;
	fprintf(stderr, "CRASHCHECK VIOLATION (cycle %d): ", c->cycle);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	(*counter)++;
}

static item *item_at(checker *c, uint32_t id)
{
	if (id >= c->cap) {
		uint32_t cap = c->cap ? c->cap : 4096;
		while (cap <= id)
			cap *= 2;
		c->items = realloc(c->items, cap * sizeof(item));
		assert_non_null(c->items);
		for (uint32_t i = c->cap; i < cap; i++)
			c->items[i] = (item){0, -1, 0, -1, 0};
		c->cap = cap;
	}
	if (id >= c->n)
		c->n = id + 1;
	return &c->items[id];
}

static void on_record(checker *c, const dur_rec *r)
{
	c->records++;
	if (r->kind == DUR_READY)
		return;
	assert_true(r->id > 0 && r->id < (1u << 30));
	item *it = item_at(c, r->id);
	switch (r->kind) {
	case DUR_ENQ_TRY: it->flags |= F_ENQ_TRY; break;
	case DUR_ENQ_OK: it->flags |= F_ENQ_OK; c->enq_ok++; break;
	case DUR_ACK_TRY: it->flags |= F_ACK_TRY; break;
	case DUR_ABN_OK: c->abn_ok++; break;
	case DUR_ACK_OK:
		c->ack_ok++;
		it->flags |= F_ACK_OK;
		it->ack_cycle = c->cycle;
		it->ack_ticket = r->ticket;
		if (it->claim_cycle == c->cycle && it->claim_ticket > r->ticket)
			finding(c, &c->redelivered, it, "item %u: a fetch that began after its ack "
				"returned OK (ticket %u > %u) returned it", r->id, it->claim_ticket,
				r->ticket);
		break;
	case DUR_CLAIM:
		c->claims++;
		if (it->claim_cycle != c->cycle || r->ticket > it->claim_ticket)
			it->claim_ticket = r->ticket;
		it->claim_cycle = c->cycle;
		if (it->flags & F_GONE)
			finding(c, &c->redelivered, it, "item %u fetched again after an ack of it "
				"committed", r->id);
		else if ((it->flags & F_ACK_OK) &&
			 (it->ack_cycle < c->cycle || r->ticket > it->ack_ticket))
			finding(c, &c->redelivered, it, "item %u fetched again (attempt %d) after its "
				"ack returned OK in cycle %d", r->id, r->attempt, it->ack_cycle);
		if ((it->flags & (F_ENQ_TRY | F_ENQ_VOID)) != F_ENQ_TRY)
			finding(c, &c->unknown, it, "item %u fetched but never enqueued", r->id);
		break;
	default: break;
	}
}

/* Read records until EOF, or until READY (ready != NULL), or until deadline_ms passed. */
static void drain(checker *c, int fd, int *ready, double deadline_ms)
{
	static char buf[65536];
	static size_t have;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int timeout = -1;
		if (deadline_ms > 0) {
			struct timespec t1;
			clock_gettime(CLOCK_MONOTONIC, &t1);
			double left = deadline_ms - ((double)(t1.tv_sec - t0.tv_sec) * 1e3 +
						     (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
			if (left <= 0)
				return;
			timeout = (int)left + 1;
		} else if (ready) {
			timeout = 60000;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, timeout);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			if (ready)
				fail_msg("cycle %d: the child did not get ready within 60 s", c->cycle);
			continue; /* the deadline check above ends the loop */
		}
		ssize_t got = read(fd, buf + have, sizeof(buf) - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			have = 0;
			return;
		}
		have += (size_t)got;
		size_t off = 0;
		for (; have - off >= sizeof(dur_rec); off += sizeof(dur_rec)) {
			dur_rec r;
			memcpy(&r, buf + off, sizeof(r));
			on_record(c, &r);
			if (ready && r.kind == DUR_READY)
				*ready = 1;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
		if (ready && *ready)
			return;
	}
}

/* Where each item is now: 1 queued, 2 dead-lettered; 0 if integrity_check fails. */
static int read_file(checker *c, uint8_t *where)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const char *queries[] = {"SELECT payload FROM work_queue", "SELECT payload FROM dead_letters"};
	assert_int_equal(sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	const char *msg = sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0)
							 : sqlite3_errmsg(db);
	if (!msg || strcmp(msg, "ok") != 0) {
		finding(c, &c->integrity, NULL, "integrity_check: %s", msg ? msg : "(null)");
		sqlite3_finalize(st);
		sqlite3_close(db);
		return 0;
	}
	sqlite3_finalize(st);
	for (int q = 0; q < 2; q++) {
		assert_int_equal(sqlite3_prepare_v2(db, queries[q], -1, &st, NULL), SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			size_t len = (size_t)sqlite3_column_bytes(st, 0);
			uint32_t id = dur_payload_id(sqlite3_column_blob(st, 0), len);
			if (!id || id >= c->n)
				finding(c, &c->unknown, NULL, "a row whose payload is no item's (%zu bytes)", len);
			else if (where[id])
				finding(c, &c->unknown, &c->items[id], "item %u is there twice", id);
			else
				where[id] = (uint8_t)(q + 1);
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return 1;
}

/* After a kill (or at the end): settle what was in doubt and check every item. */
static void check_file(checker *c)
{
	uint8_t *where = calloc(c->n + 1, 1);
	assert_non_null(where);
	if (!read_file(c, where)) {
		free(where);
		return;
	}
	long queued = 0, dead = 0;
	for (uint32_t id = 1; id < c->n; id++) {
		item *it = &c->items[id];
		uint8_t f = it->flags;
		queued += where[id] == 1;
		dead += where[id] == 2;
		if (where[id] && (!(f & F_ENQ_TRY) || (f & F_ENQ_VOID)))
			finding(c, &c->unknown, it, "item %u is there but %s", id,
				f & F_ENQ_VOID ? "its enqueue had not committed at an earlier kill"
					       : "was never enqueued");
		if ((f & F_ENQ_TRY) && !(f & (F_ENQ_OK | F_SEEN | F_ENQ_VOID))) { /* in doubt */
			if (where[id])
				c->enq_doubt_committed++;
			else
				c->enq_doubt_void++;
			it->flags |= where[id] ? F_SEEN : F_ENQ_VOID;
		}
		if (where[id])
			it->flags |= F_SEEN;
		f = it->flags;
		if ((f & (F_ACK_OK | F_GONE)) && where[id])
			finding(c, &c->redelivered, it, "item %u: an ack of it %s, but it is %s", id,
				f & F_ACK_OK ? "returned OK" : "committed", where[id] == 1 ? "queued"
											  : "dead-lettered");
		if ((f & F_ACK_TRY) && !(f & (F_ACK_OK | F_GONE))) { /* an ack in doubt */
			if (where[id]) {
				c->ack_doubt_void++;
				it->flags &= (uint8_t)~F_ACK_TRY; /* did not commit: must stay */
			} else {
				c->ack_doubt_committed++;
				it->flags |= F_GONE;
			}
			f = it->flags;
		}
		if ((f & (F_ENQ_OK | F_SEEN)) && !(f & (F_ACK_TRY | F_ACK_OK | F_GONE)) && !where[id])
			finding(c, &c->lost, it, "item %u: enqueued (%s), never acked, and gone", id,
				f & F_ENQ_OK ? "returned OK" : "seen at an earlier check");
	}
	c->queued = queued;
	c->dead = dead;
	if (queued > c->max_backlog)
		c->max_backlog = queued;
	free(where);
}

static void run_cycle(checker *c)
{
	int fds[2];
	uint64_t r = c->rng += 0x9e3779b97f4a7c15ull; /* splitmix64 */
	r = (r ^ (r >> 30)) * 0xbf58476d1ce4e5b9ull;
	r = (r ^ (r >> 27)) * 0x94d049bb133111ebull;
	r ^= r >> 31;
	unsigned int seed = (unsigned int)r;
	/* 1 .. 20 ms of load; sanitizers slow the child (ASan ~4x, TSan ~10x): as much longer */
	double kill_ms = (1 + (double)((r >> 32) % 19000) / 1000.0) * DUR_BY_BUILD(1, 4, 10);
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child_main(c->url, c->cycle, c->n ? c->n : 1, c->queued, seed, fds[1]);
	}
	close(fds[1]);
	int ready = 0, status;
	drain(c, fds[0], &ready, 0);
	if (ready) {
		drain(c, fds[0], NULL, kill_ms);
		kill(pid, SIGKILL);
		c->load_ms += kill_ms;
	}
	drain(c, fds[0], NULL, 0); /* to EOF: everything the child wrote before it died */
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!ready || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("cycle %d: the child ended by itself (status 0x%x): see its message above",
			 c->cycle, status);
	c->kills++;
	c->group_cycles += c->cycle % 2 == 0;
	check_file(c);
}

static int64_t far_later(void *ctx)
{
	(void)ctx;
	static const int64_t later = (int64_t)1 << 40; /* past every child's leases */
	return dur_clock_offset((void *)&later);
}

/* At the end durq itself reopens the file: it must fetch exactly the queued items. */
static void final_reopen(checker *c)
{
	durq_options o = DURQ_OPTIONS_INIT;
	durq *db;
	durq_work_item *it;
	size_t n;
	long fetched = 0;
	int rc;
	o.clock = far_later;
	o.max_attempts = 1000000;
	assert_int_equal(durq_open(&db, c->url, &o), DURQ_OK);
	while ((rc = durq_work_fetch(db, &it, &n, NULL, 1024, LEASE_MS, 0)) == DURQ_OK) {
		for (size_t k = 0; k < n; k++) {
			uint32_t id = dur_payload_id(it[k].payload, it[k].payload_len);
			item *x = id && id < c->n ? &c->items[id] : NULL;
			if (!x || (x->flags & F_ENQ_VOID) || !(x->flags & F_ENQ_TRY))
				finding(c, &c->unknown, x, "final reopen: durq fetched unknown item %u", id);
			else if (x->flags & (F_ACK_OK | F_GONE))
				finding(c, &c->redelivered, x, "final reopen: durq fetched item %u, acked",
					id);
		}
		fetched += (long)n;
		durq_work_items_free(it, n);
	}
	assert_int_equal(rc, DURQ_EMPTY);
	durq_free(db);
	if (fetched != c->queued)
		finding(c, &c->lost, NULL, "final reopen: durq fetched %ld items, %ld are queued", fetched,
			c->queued);
}

static char *check_dir(void)
{
	const char *base = getenv("DURQ_CRASHCHECK_DIR");
	if (!base || !*base)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
	if (!base)
		return test_tmpdir();
	char *dir = malloc(PATH_MAX);
	snprintf(dir, PATH_MAX, "%s/durq-crashcheck-XXXXXX", base);
	if (!mkdtemp(dir)) {
		free(dir);
		return NULL;
	}
	return dir;
}

static void test_kill_cycles(void **state)
{
	(void)state;
	long cycles = dur_env_long("DURQ_CRASHCHECK_CYCLES", DUR_BY_BUILD(500, 60, 20));
	uint64_t seed = (uint64_t)dur_env_long("DURQ_CRASHCHECK_SEED", 1);
	checker c = {.rng = seed};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	c.dir = check_dir();
	assert_non_null(c.dir);
	snprintf(c.path, sizeof(c.path), "%s/q.db", c.dir);
	snprintf(c.url, sizeof(c.url), "sqlite:%s", c.path);
	for (c.cycle = 0; c.cycle < cycles; c.cycle++)
		run_cycle(&c);
	final_reopen(&c);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("crashcheck: seed %llu, %ld SIGKILL cycles in %.1f s (%ld group commit, %ld per-op; "
	       "%.0f ms of load in all), %ld records\n",
	       (unsigned long long)seed, c.kills, secs, c.group_cycles, c.kills - c.group_cycles,
	       c.load_ms, c.records);
	printf("crashcheck: OK'd enqueues %ld, acks %ld, abandons %ld; claims %ld; in doubt at a "
	       "kill: enqueues %ld committed / %ld not, acks %ld committed / %ld not; at the end "
	       "%ld queued (max %ld), %ld dead-lettered\n",
	       c.enq_ok, c.ack_ok, c.abn_ok, c.claims, c.enq_doubt_committed, c.enq_doubt_void,
	       c.ack_doubt_committed, c.ack_doubt_void, c.queued, c.max_backlog, c.dead);
	printf("crashcheck: lost %ld, redelivered after an OK'd ack %ld, unknown %ld (items), "
	       "integrity failures %ld\n",
	       c.lost, c.redelivered, c.unknown, c.integrity);
	fflush(stdout);
	long bad = c.lost + c.redelivered + c.unknown + c.integrity;
	free(c.items);
	if (bad == 0)
		test_rmdir(c.dir);
	else
		fprintf(stderr, "CRASHCHECK: the database is kept in %s\n", c.dir), free(c.dir);
	assert_int_equal(bad, 0);
	assert_true(c.ack_ok > 0 && c.enq_ok > 0 && c.abn_ok > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill_cycles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
