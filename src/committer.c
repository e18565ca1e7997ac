/*
 * committer.c — the write path: one thread per handle owns the only write connection.
 * Callers post ops into a Concurrency Kit ring (producers serialised, see enqueue()) and
 * wait for their own completion (spin briefly, then a semaphore). The committer drains up to
 * max_batch ops and commits them together: claims first in an unflushed transaction, then
 * the rest in one flushed BEGIN IMMEDIATE … COMMIT, a savepoint per op (an op that fails
 * rolls back alone), every op completed with its own result, fetchers woken. No fixed
 * delay: an idle committer takes the first op at once; only right after a batch of k does
 * it wait (at most half a commit) for those k callers to come back. A lone op, synchronous
 * or (with no flush at COMMIT) async, skips the hand-off and commits on its own thread.
 * Does not own: SQL (the provider), per-op mode (handle.c), fetch waiting (api.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sched.h>
#include <unistd.h>

#include <ck_pr.h>

#include "durq_internal.h"

static int cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rc = pthread_condattr_init(&ca);
	if (rc == 0 && (rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
		rc = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

static bool ring_empty(durq_committer *c)
{
	return ck_ring_size(&c->ring) == 0;
}

/* Ops that callbacks submitted on a write thread (committer or flush thread). */
static bool has_ovf(durq_committer *c)
{
	return ck_pr_load_ptr(&c->ovf_head) != NULL;
}

static size_t drain(durq_committer *c)
{
	size_t n = 0;
	void *p;
	if (ck_pr_load_int(&c->paused))
		return 0;
	if (has_ovf(c)) { /* callbacks' ops first */
		pthread_mutex_lock(&c->ovf_mu);
		while (n < (size_t)c->db->opts.max_batch && c->ovf_head) {
			durq_pending *p = c->ovf_head;
			c->batch[n++] = p;
			ck_pr_store_ptr(&c->ovf_head, p->next);
			if (!p->next)
				c->ovf_tail = NULL;
		}
		pthread_mutex_unlock(&c->ovf_mu);
	}
	while (n < (size_t)c->db->opts.max_batch && ck_ring_dequeue_spsc(&c->ring, c->slots, &p)) {
		DURQ_HB_ACQUIRE(p);
		c->batch[n++] = p;
	}
	return n;
}

void durq_committer_complete(durq_pending *p)
{
	if (p->async) { /* callback and group on this thread; no futex per op */
		durq_async_complete(p);
		return;
	}
	DURQ_HB_RELEASE(p);
	/* rc, errmsg and the op's outputs must be visible before DONE is (the caller reads them
	 * right after it sees DONE): RMW ops do not order earlier stores on RMO machines */
	ck_pr_fence_release();
	if (ck_pr_fas_int(&p->state, DURQ_PENDING_DONE) == DURQ_PENDING_SLEEPING)
		sem_post(&p->done);
}

/*
 * Spin-then-block. A futex wake costs ~45 us on a virtualised 2-core machine, paid twice
 * per op (caller -> committer, committer -> caller): at one worker that made group commit
 * 4x slower than per-op with synchronous=OFF. Both sides therefore first poll for a short,
 * bounded time, yielding the CPU on each round so runnable threads are never starved, then
 * sleep. Spinning callers are capped at online CPUs - 1 so the committer keeps a core.
 */
#define DURQ_COMMITTER_SPIN_NS 50000ull
#define DURQ_CALLER_SPIN_MAX_NS 1000000ull
#define DURQ_STRAGGLER_WAIT_MAX_NS 500000ull

static bool spin_until(bool (*ready)(void *), void *arg, uint64_t budget_ns)
{
	uint64_t start = durq_clock_mono_ns();
	for (unsigned i = 0;; i++) {
		if (ready(arg))
			return true;
		if ((i & 15) == 15) {
			if (durq_clock_mono_ns() - start > budget_ns)
				return false;
			sched_yield();
		} else {
			ck_pr_stall();
		}
	}
}

static bool ring_has_work(void *arg)
{
	durq_committer *c = arg;
	return !ring_empty(c) || has_ovf(c) || ck_pr_load_int(&c->stopping);
}

/* Free what a claim op allocated, after its transaction failed to commit. */
void durq_op_discard_outputs(durq_op *op)
{
	if (op->kind == DURQ_OP_WORK_CLAIM) {
		for (size_t i = 0; i < op->u.work_claim.n; i++)
			durq_work_item_clear(&op->u.work_claim.items[i]);
		op->u.work_claim.n = 0;
	} else if (op->kind == DURQ_OP_ORCH_CLAIM && op->u.orch_claim.out) {
		durq_turn_clear(op->u.orch_claim.out);
	}
}

static void fail_batch(durq_pending **batch, size_t n, int rc)
{
	char msg[DURQ_ERRMSG_MAX];
	durq_error_copy(msg, sizeof(msg));
	for (size_t i = 0; i < n; i++) {
		durq_pending *p = batch[i];
		if (p->rc >= 0 || p->rc == DURQ_EMPTY) {
			durq_op_discard_outputs(&p->op);
			p->rc = rc;
			memcpy(p->errmsg, msg, sizeof(msg));
		}
	}
}

static void apply_one(durq *db, durq_conn *conn, durq_pending *p, const durq_op_ctx *ctx)
{
	durq_error_clear();
	if (p->op.kind == DURQ_OP_FLUSH) { /* a marker: nothing to apply */
		p->rc = DURQ_OK;
		return;
	}
	int rc = db->provider->op_begin(conn);
	if (rc == DURQ_OK) {
		rc = db->provider->op_apply(conn, &p->op, ctx);
		int keep = rc >= 0 || rc == DURQ_EMPTY;
		int erc = db->provider->op_end(conn, keep);
		if (!keep)
			durq_op_discard_outputs(&p->op);
		if (erc < 0 && rc >= 0)
			rc = erc;
	}
	p->rc = rc;
	if (rc < 0)
		durq_error_copy(p->errmsg, sizeof(p->errmsg));
}

/* The provider's batch method (provider version >= 2): one call for the whole batch. */
static int apply_batch(durq *db, durq_conn *conn, durq_pending **batch, size_t n,
		       const durq_op_ctx *ctx)
{
	durq_op *ops[n];
	durq_op_result res[n];
	size_t idx[n], k = 0;
	for (size_t i = 0; i < n; i++) {
		batch[i]->rc = DURQ_OK;
		if (batch[i]->op.kind == DURQ_OP_FLUSH) /* a marker: nothing to apply */
			continue;
		idx[k] = i;
		ops[k++] = &batch[i]->op;
	}
	if (k == 0)
		return DURQ_OK;
	durq_error_clear();
	int rc = db->provider->op_apply_batch(conn, ops, res, k, ctx);
	if (rc < 0)
		return rc;
	for (size_t j = 0; j < k; j++) {
		durq_pending *p = batch[idx[j]];
		p->rc = res[j].rc;
		if (p->rc < 0 && p->rc != DURQ_EMPTY) {
			durq_op_discard_outputs(&p->op);
			snprintf(p->errmsg, sizeof(p->errmsg), "%s", res[j].message);
		}
	}
	return DURQ_OK;
}

static bool has_batch_method(const durq_provider *p)
{
	return p->version >= 2 && p->op_apply_batch;
}

/* A deferred commit went through: the syncer completes the ops after their flush. If it
 * cannot take them (out of memory), flush here. */
static bool hand_to_syncer(durq_committer *c, durq_pending **batch, size_t n, size_t txn_ops,
			   uint64_t t0)
{
	if (durq_syncer_push(&c->syncer, batch, n, txn_ops, t0) == DURQ_OK)
		return true;
	int rc = c->db->provider->flush(c->conn);
	if (rc < 0)
		fail_batch(batch, n, rc);
	return false;
}

/* Complete batch[0..n) here; txn_ops > 0: count their transaction (of txn_ops ops). */
static void complete_now(durq_committer *c, durq_pending **batch, size_t n, uint64_t t0, int rc,
			 size_t txn_ops)
{
	durq *db = c->db;
	if (txn_ops > 0) {
		uint64_t took = durq_clock_mono_ns() - t0;
		durq_stats_txn(&db->counters, txn_ops, took, rc == DURQ_OK);
		durq_committer_note_commit(c, took);
	}
	for (size_t i = 0; i < n; i++) {
		durq_stats_op(&db->counters, batch[i]->op.kind, batch[i]->rc);
		durq_committer_complete(batch[i]);
	}
}

/* One transaction over batch[0..n): a savepoint per op, one commit, then every op is
 * completed with its own result. If the commit deferred its flush, the claims among them
 * (batch[0..claims): a claim needs no flush, see DURQ_TXN_NO_FLUSH) complete now and the
 * rest after the flush (the syncer). */
static void run_txn(durq_committer *c, durq_pending **batch, size_t n, size_t claims,
		    unsigned int flags)
{
	durq *db = c->db;
	uint64_t t0 = durq_clock_mono_ns();
	/* waits for another process's lock happen in the provider's busy handler */
	int rc = db->provider->txn_begin(c->conn, flags);
	if (rc == DURQ_OK) {
		durq_op_ctx ctx = {.now_ms = durq_clock_now(db), .max_attempts = db->opts.max_attempts};
		if (has_batch_method(db->provider))
			rc = apply_batch(db, c->conn, batch, n, &ctx);
		else
			for (size_t i = 0; i < n; i++)
				apply_one(db, c->conn, batch[i], &ctx);
		if (rc == DURQ_OK)
			rc = db->provider->txn_commit(c->conn);
		if (rc < 0) {
			fail_batch(batch, n, rc);
			db->provider->txn_rollback(c->conn);
			durq_log_emit(&db->opts, DURQ_LOG_ERROR, "COMMIT", "commit of %zu ops failed: %s",
				      n, durq_error_last());
		} else {
			durq_op *ops[n];
			size_t ok = 0;
			for (size_t i = 0; i < n; i++) /* only ops that took effect wake anyone */
				if (batch[i]->rc >= 0)
					ops[ok++] = &batch[i]->op;
			durq_notify_commit(db, ops, ok, ctx.now_ms);
			if ((flags & DURQ_TXN_DEFER_FLUSH) && claims < n) {
				/* the transaction is counted when the flush thread completes the rest */
				complete_now(c, batch, claims, t0, DURQ_OK, 0);
				if (hand_to_syncer(c, batch + claims, n - claims, n, t0))
					return;
				batch += claims;
				n -= claims;
			}
		}
	} else {
		fail_batch(batch, n, rc);
	}
	complete_now(c, batch, n, t0, rc, n);
}

/*
 * Claims first. With a deferred flush, one transaction: the claims complete at its COMMIT,
 * the rest after the flush thread's fsync. Otherwise claims go in their own unflushed
 * transaction (DURQ_TXN_NO_FLUSH), then everything else in one flushed transaction. Either
 * way a claimer gets its items ~one fsync sooner and posts its ack while the flush runs, so
 * the next flush carries more acks. Reordering is safe: a claim is a synchronous caller's
 * only op in flight, and a caller's async ops keep their order among themselves.
 */
static void run_batch(durq_committer *c, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) /* stable partition: claims to the front */
		if (durq_op_is_claim(&c->batch[i]->op)) {
			durq_pending *p = c->batch[i];
			memmove(&c->batch[k + 1], &c->batch[k], (i - k) * sizeof(*c->batch));
			c->batch[k++] = p;
		}
	if (c->deferred) {
		/* a lone write (a batch of one, nothing queued behind it, nothing awaiting a
		 * flush, no failed flush unrecovered): its commit flushes as well, one commit
		 * instead of a commit and then a flush (PostgreSQL: one round trip, not two) */
		bool lone = n == 1 && k == 0 && ring_empty(c) && !has_ovf(c) &&
			    durq_syncer_idle(&c->syncer);
		run_txn(c, c->batch, n, k,
			lone ? 0 : k < n ? DURQ_TXN_DEFER_FLUSH : DURQ_TXN_NO_FLUSH);
		return;
	}
	if (k > 0)
		run_txn(c, c->batch, k, k, DURQ_TXN_NO_FLUSH);
	if (k < n)
		run_txn(c, c->batch + k, n - k, 0, 0);
}

/*
 * After a failed flush (the syncer set broken), make everything committed durable by the
 * provider's other path before anything more is reported OK; the marker tells the syncer
 * where the batches it may judge afresh begin. Until then deferred batches fail (DURQ_EIO,
 * outcome unknown); a failed recovery is tried again at the next batch.
 */
static void recover_if_broken(durq_committer *c)
{
	if (!c->deferred)
		return;
	if (!durq_syncer_broken(&c->syncer)) {
		c->recovered = false;
		return;
	}
	if (c->recovered)
		return;
	durq_error_clear();
	int rc = c->db->provider->flush_recover(c->conn);
	if (rc == DURQ_OK && durq_syncer_push_marker(&c->syncer) == DURQ_OK) {
		c->recovered = true;
		durq_log_emit(&c->db->opts, DURQ_LOG_WARN, "COMMIT", "recovered from a failed "
			      "flush: the database file holds every commit; new ops are flushed again");
	} else {
		durq_log_emit(&c->db->opts, DURQ_LOG_ERROR, "COMMIT", "recovery after a failed "
			      "flush failed (%s): ops keep failing with DURQ_EIO until it succeeds",
			      durq_error_last());
	}
}

static void notify_space(durq_committer *c)
{
	ck_pr_fence_memory();
	if (ck_pr_load_int(&c->space_waiters)) {
		pthread_mutex_lock(&c->mu);
		pthread_cond_broadcast(&c->space);
		pthread_mutex_unlock(&c->mu);
	}
}

/* Returns false when the committer should exit. */
static bool sleep_until_work(durq_committer *c)
{
	bool run = true;
	pthread_mutex_lock(&c->mu);
	ck_pr_store_int(&c->sleeping, 1);
	ck_pr_fence_memory();
	if ((ring_empty(c) && !has_ovf(c)) || ck_pr_load_int(&c->paused)) {
		/* batches awaiting their flush may still submit more from their callbacks */
		if (c->stop && ring_empty(c) && !has_ovf(c) && durq_syncer_drained(&c->syncer))
			run = false;
		else
			pthread_cond_wait(&c->wake, &c->mu);
	}
	ck_pr_store_int(&c->sleeping, 0);
	pthread_mutex_unlock(&c->mu);
	return run;
}

/*
 * The commit time the waits follow: an EWMA of commit times, each sample clamped to 4x the
 * current mean, so one outlier (a 400 ms checkpoint) moves it by at most 3/8 of the mean
 * instead of adding 50 ms; a lasting slowdown still lifts it (x1.375 per commit).
 */
void durq_committer_note_commit(durq_committer *c, uint64_t took_ns)
{
	uint64_t mean = ck_pr_load_64(&c->commit_ewma_ns);
	if (mean && took_ns > 4 * mean)
		took_ns = 4 * mean;
	mean = (mean * 7 + took_ns) / 8;
	ck_pr_store_64(&c->commit_ewma_ns, mean);
	/* callers spin for about two commits (theirs may wait behind the one running) */
	uint64_t budget = 2 * mean + DURQ_COMMITTER_SPIN_NS;
	ck_pr_store_64(&c->spin_ns, budget > DURQ_CALLER_SPIN_MAX_NS ? DURQ_CALLER_SPIN_MAX_NS : budget);
}

/* How long to wait for stragglers after a batch: half a mean commit, never more than
 * DURQ_STRAGGLER_WAIT_MAX_NS whatever the mean says. */
uint64_t durq_committer_straggler_wait_ns(const durq_committer *c)
{
	uint64_t w = ck_pr_load_64(&((durq_committer *)c)->commit_ewma_ns) / 2;
	return w > DURQ_STRAGGLER_WAIT_MAX_NS ? DURQ_STRAGGLER_WAIT_MAX_NS : w;
}

/*
 * After completing ops of k synchronous callers, wait a little for them to post their next
 * op before draining: until the ring holds k ops, or half the mean commit time has passed
 * (capped, see durq_committer_straggler_wait_ns), yielding the CPU meanwhile. Without it batches alternate small/large (the first caller
 * back is committed alone while the others arrive during its fsync), which halves ops per
 * flush at 8 threads on 2 cores. The wait is bounded by the commit time it amortises
 * (like jbd2's commit batching), and it never happens after a batch of one.
 */
static bool ring_has_k(void *arg)
{
	durq_committer *c = arg;
	return ck_ring_size(&c->ring) >= c->expect || ck_pr_load_int(&c->stopping);
}

/* Synchronous callers of this batch: each comes back with its next op soon after its
 * completion. Async ops imply no caller waiting to return, so they are not waited for:
 * their batching follows the work in flight (what piles up during a commit). */
static size_t blocked_callers(durq_pending *const *batch, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += !batch[i]->async;
	return k;
}

/*
 * The loop. The write connection is held (conn_mu) only while draining and running a batch,
 * so a lone synchronous caller may commit on its own thread meanwhile (see run_direct).
 */
static void *committer_main(void *arg)
{
	durq_committer *c = arg;
	size_t last = 0;
	uint64_t wait_ns = 0;
	durq_writer_enter(); /* this thread writes: a log callback here must not wait on it */
	pthread_setname_np(pthread_self(), "durq-commit"); /* for top, perf, gdb */
	for (;;) {
		if (last > 1) {
			c->expect = (unsigned int)last;
			spin_until(ring_has_k, c, wait_ns);
		}
		last = 0;
		pthread_mutex_lock(&c->conn_mu);
		recover_if_broken(c);
		size_t n = drain(c);
		if (n > 0) {
			notify_space(c);
			last = blocked_callers(c->batch, n); /* before run_batch frees async ones */
			run_batch(c, n);
			wait_ns = durq_committer_straggler_wait_ns(c);
		}
		pthread_mutex_unlock(&c->conn_mu);
		if (n > 0)
			continue;
		if (!ck_pr_load_int(&c->paused) && spin_until(ring_has_work, c, DURQ_COMMITTER_SPIN_NS) &&
		    (!ring_empty(c) || has_ovf(c)))
			continue;
		if (!sleep_until_work(c))
			break;
	}
	return NULL;
}

/* Split commit and flush when the provider can and a flush is asked for at every commit. */
static bool wants_deferred(const durq *db)
{
	const durq_provider *p = db->provider;
	return p->version >= 5 && (p->flags & DURQ_PROVIDER_DEFERRED_FLUSH) && p->flush &&
	       p->flush_recover && db->opts.synchronous == DURQ_SYNC_FULL &&
	       db->opts.commit_mode == DURQ_COMMIT_GROUP;
}

int durq_committer_start(durq_committer *c, durq *db)
{
	c->db = db;
	c->started_ns = durq_clock_mono_ns();
	c->deferred = wants_deferred(db);
	c->recovered = false;
	memset(&c->syncer, 0, sizeof(c->syncer));

	c->ring_size = (unsigned int)db->opts.backlog;
	c->slots = calloc(c->ring_size, sizeof(*c->slots));
	c->batch = calloc((size_t)db->opts.max_batch, sizeof(*c->batch));
	if (!c->slots || !c->batch) {
		free(c->slots);
		free(c->batch);
		return durq_error_set(DURQ_ENOMEM, "committer: out of memory");
	}
	ck_ring_init(&c->ring, c->ring_size);
	if (pthread_mutex_init(&c->mu, NULL) != 0 || pthread_mutex_init(&c->enq_mu, NULL) != 0 ||
	    pthread_mutex_init(&c->ovf_mu, NULL) != 0 ||
	    pthread_mutex_init(&c->conn_mu, NULL) != 0 ||
	    cond_init_mono(&c->wake) != 0 || cond_init_mono(&c->space) != 0) {
		free(c->slots);
		free(c->batch);
		return durq_error_set(DURQ_ENOMEM, "committer: cannot create its locks");
	}
	c->sleeping = 0;
	c->space_waiters = 0;
	c->paused = 0;
	c->stop = false;
	c->stopping = 0;
	c->spinners = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	c->max_spinners = cpus > 1 ? (int)cpus - 1 : 0;
	c->spin_ns = DURQ_COMMITTER_SPIN_NS;
	c->commit_ewma_ns = 0;
	if (c->deferred && durq_syncer_start(&c->syncer, db, c->conn) < 0) {
		free(c->slots);
		free(c->batch);
		return DURQ_ENOMEM;
	}
	if (pthread_create(&c->thread, NULL, committer_main, c) != 0) {
		durq_syncer_stop(&c->syncer);
		free(c->slots);
		free(c->batch);
		return durq_error_set(DURQ_ENOMEM, "committer: cannot start thread");
	}
	c->started = true;
	return DURQ_OK;
}

static void wait_for_space(durq_committer *c)
{
	ck_pr_inc_64(&c->db->counters.backlog_waits);
	pthread_mutex_lock(&c->mu);
	ck_pr_inc_int(&c->space_waiters);
	while (ck_ring_size(&c->ring) >= c->ring_size - 1)
		pthread_cond_wait(&c->space, &c->mu);
	ck_pr_dec_int(&c->space_waiters);
	pthread_mutex_unlock(&c->mu);
}

/*
 * Producers are serialised by a mutex around ck_ring's single-producer enqueue instead of
 * using ck_ring_enqueue_mpsc: its commit step spins until earlier producers publish, and
 * with more threads than cores a producer preempted between reserve and commit made every
 * other producer spin out its time slice (measured: 86% of CPU in that loop, 8 threads on
 * 2 cores). A mutex sleeps instead; the consumer side stays lock-free.
 */
static bool enqueue(durq_committer *c, durq_pending *p)
{
	pthread_mutex_lock(&c->enq_mu);
	bool ok = ck_ring_enqueue_spsc(&c->ring, c->slots, p);
	pthread_mutex_unlock(&c->enq_mu);
	return ok;
}

void durq_committer_kick(durq_committer *c)
{
	pthread_mutex_lock(&c->mu);
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->mu);
}

static void wake_committer(durq_committer *c)
{
	ck_pr_fence_memory();
	if (ck_pr_load_int(&c->sleeping)) {
		pthread_mutex_lock(&c->mu);
		pthread_cond_signal(&c->wake);
		pthread_mutex_unlock(&c->mu);
	}
}

static bool pending_done(void *arg)
{
	return ck_pr_load_int(&((durq_pending *)arg)->state) == DURQ_PENDING_DONE;
}

static void wait_done(durq_committer *c, durq_pending *p)
{
	int n = ck_pr_load_int(&c->spinners);
	if (n < c->max_spinners && ck_pr_cas_int(&c->spinners, n, n + 1)) {
		bool done = spin_until(pending_done, p, ck_pr_load_64(&c->spin_ns));
		ck_pr_dec_int(&c->spinners);
		if (done) {
			ck_pr_fence_acquire(); /* pairs with complete()'s release */
			return;
		}
	}
	if (ck_pr_cas_int(&p->state, DURQ_PENDING_WAITING, DURQ_PENDING_SLEEPING))
		while (sem_wait(&p->done) != 0 && errno == EINTR)
			;
}

static bool post_direct(durq_committer *c, durq_pending *p);

int durq_committer_post(durq_committer *c, durq_pending *p, bool nowait)
{
	p->rc = DURQ_OK;
	p->errmsg[0] = '\0';
	p->next = NULL;
	if (c->started && (pthread_equal(pthread_self(), c->thread) ||
			   (c->syncer.started && pthread_equal(pthread_self(), c->syncer.thread)))) {
		/* a completion callback submits again: the ring may be full and only the
		 * committer drains it (the flush thread must not wait for it either), so queue
		 * it aside; the next drain takes it first */
		pthread_mutex_lock(&c->ovf_mu);
		if (c->ovf_tail)
			c->ovf_tail->next = p;
		else
			ck_pr_store_ptr(&c->ovf_head, p);
		c->ovf_tail = p;
		pthread_mutex_unlock(&c->ovf_mu);
		if (!pthread_equal(pthread_self(), c->thread))
			wake_committer(c);
		return DURQ_OK;
	}
	if (p->async && post_direct(c, p))
		return DURQ_OK; /* committed and completed on this thread */
	DURQ_HB_RELEASE(p);
	while (!enqueue(c, p)) {
		if (nowait)
			return durq_error_set(DURQ_EAGAIN, "backlog of %u ops full: retry later",
					      c->ring_size - 1);
		wait_for_space(c);
	}
	wake_committer(c);
	return DURQ_OK;
}

/*
 * A lone synchronous caller commits its op on its own thread: when nothing is queued and
 * the committer is not running a batch, the hand-off (two thread switches) would cost more
 * than the op. Callers that arrive meanwhile find the connection taken and queue as usual,
 * so under load the committer still batches them; ops of one thread stay in order because
 * the direct path is taken only when the ring is empty. An async op may take it too (see
 * post_direct).
 */
static bool run_direct(durq_committer *c, durq_pending *p, bool async_op)
{
	if (ck_pr_load_int(&c->paused) || !ring_empty(c) || pthread_mutex_trylock(&c->conn_mu) != 0)
		return false;
	/* with batches awaiting their flush, an op committed and flushed here would complete
	 * before ops committed earlier: it queues behind them instead. An async op also queues
	 * behind callbacks' ops (the overflow list), which the committer takes first. */
	bool alone = ring_empty(c) && !ck_pr_load_int(&c->paused) && !ck_pr_load_int(&c->stopping) &&
		     durq_syncer_idle(&c->syncer) && !(async_op && has_ovf(c));
	if (alone) {
		durq_pending *one[1] = {p};
		durq_writer_enter();
		bool claim = durq_op_is_claim(&p->op);
		run_txn(c, one, 1, claim, claim ? DURQ_TXN_NO_FLUSH : 0);
		durq_writer_leave();
	}
	pthread_mutex_unlock(&c->conn_mu);
	return alone;
}

/* A commit on this handle is cheap: no flush (the in-memory provider, or synchronous below
 * FULL) on a database in this process. A server's COMMIT (DURQ_PROVIDER_CONCURRENT_WRITERS:
 * PostgreSQL) is a network round trip even when it does not flush: not counted as cheap. */
static bool commits_without_flush(const durq *db)
{
	const durq_provider *pr = db->provider;
	if (pr->flags & DURQ_PROVIDER_CONCURRENT_WRITERS)
		return false;
	return (pr->flags & DURQ_PROVIDER_VOLATILE) || db->opts.synchronous != DURQ_SYNC_FULL;
}

/* How many inline completions (post_direct) this thread is inside. */
static _Thread_local unsigned int inline_depth;
/* This thread's last async submit to a handle that may take the direct path: which, and
 * when the submit call ended (see post_direct). A synchronous write clears it. */
static _Thread_local const durq_committer *last_async_c;
static _Thread_local uint64_t last_async_ns;
/* Async ops of this thread to burst_c in its current burst and in its previous one (0: not
 * known yet), see post_direct. */
static _Thread_local const durq_committer *burst_c;
static _Thread_local uint64_t burst_c_started;
static _Thread_local unsigned int burst_ops, last_burst_ops;

/*
 * An async op takes the direct path too when the commit is cheap (commits_without_flush)
 * and run_direct would take it for a synchronous caller: it commits on the submitting
 * thread, and its callback runs there before the submit returns, as in per-op mode: after
 * COMMIT, with the connection released and the thread no longer a writer, so the callback
 * may do what a per-op one may. At one op in flight that saves the two thread wake-ups of
 * the hand-off, which cost more than an unflushed commit. With a flush at COMMIT only for
 * a thread that submits one op at a time (below): any other submitter would block for an
 * fsync instead of submitting its next acks, which the committer batches meanwhile.
 *
 * Only a lone op: an empty ring and an idle committer do not tell one from the first of a
 * burst (the acks of a fetched batch, submitted back to back), and a burst committed op by
 * op on its submitter's thread is per-op mode (memory, 256 in flight: 2.5 ops per commit
 * instead of 46, half the throughput). An async submit that comes within one mean commit
 * time of this thread's previous one is part of a burst and goes to the committer, which
 * batches it; ops spaced wider than a commit could not have shared one anyway. A
 * synchronous write in between (a fetch's claim) ends the burst.
 *
 * A submit from inside an inline callback goes through the ring (inline_depth), or a
 * callback that submits again would recurse once per op without bound. Claims and the
 * core's own ops (flush marker, stats) keep the ring; so does a submit from a writing
 * thread (a log callback inside a direct commit holds the connection).
 */
static bool post_direct(durq_committer *c, durq_pending *p)
{
	if (inline_depth > 0 || durq_in_writer() || p->op.kind >= DURQ_OP__COUNT ||
	    durq_op_is_claim(&p->op))
		return false;
	uint64_t now = durq_clock_mono_ns();
	bool burst = last_async_c == c && now - last_async_ns < ck_pr_load_64(&c->commit_ewma_ns);
	last_async_c = c;
	last_async_ns = now;
	if (burst_c != c || burst_c_started != c->started_ns) {
		/* another handle: how this thread submits to it is not known yet */
		burst_c = c;
		burst_c_started = c->started_ns;
		burst_ops = last_burst_ops = 0;
	}
	if (burst) {
		burst_ops++;
	} else {
		last_burst_ops = burst_ops;
		burst_ops = 1;
	}
	/* A commit that flushes takes the direct path only for a thread whose last burst was a
	 * single op: one that keeps one op in flight (submit, wait for it, submit again), for
	 * which the committer has nothing to batch it with and the hand-off is two thread
	 * wake-ups on top of the commit. A thread that submits bursts (the acks of a fetched
	 * batch) keeps the committer for the first op of each too: blocking it for an fsync
	 * would hold back the rest of its burst. So does any thread while the committer is
	 * awake: other threads keep it busy, and an op that waits on its submitter's thread for
	 * a flush would hold that thread back from work the committer could overlap with it
	 * (a dispatcher's next fetch, a starter's next start). */
	bool lone_thread = last_burst_ops == 1 && ck_pr_load_int(&c->sleeping);
	if (burst || has_ovf(c) || (!commits_without_flush(c->db) && !lone_thread))
		return false;
	p->state = DURQ_PENDING_WAITING;
	p->async = false; /* so run_txn only marks it done: it is completed below */
	bool done = run_direct(c, p, true);
	p->async = true;
	if (!done)
		return false;
	inline_depth++;
	durq_async_complete(p); /* callback, group, free */
	inline_depth--;
	last_async_c = c; /* the gap to the next submit starts here (whatever the callback did) */
	last_async_ns = durq_clock_mono_ns();
	return true;
}

/* A synchronous caller never runs on the committer thread (durq_exec refuses a write from
 * a writing thread), so posting blocks for space like any producer. */
int durq_committer_submit(durq_committer *c, durq_pending *p)
{
	p->rc = DURQ_OK;
	p->state = DURQ_PENDING_WAITING;
	p->errmsg[0] = '\0';
	last_async_c = NULL; /* the next async op of this thread starts afresh (post_direct) */
	if (!run_direct(c, p, false)) {
		if (sem_init(&p->done, 0, 0) != 0)
			return durq_error_set(DURQ_ENOMEM, "committer: sem_init failed: %s",
					      strerror(errno));
		durq_committer_post(c, p, false);
		wait_done(c, p);
		DURQ_HB_ACQUIRE(p);
		sem_destroy(&p->done);
	}
	if (p->rc < 0)
		durq_error_set(p->rc, "%s", p->errmsg);
	return p->rc;
}

void durq_committer_stop(durq_committer *c)
{
	if (!c->started)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	ck_pr_store_int(&c->stopping, 1);
	ck_pr_store_int(&c->paused, 0);
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	durq_syncer_stop(&c->syncer); /* the committer waited until it had nothing pending */
	c->started = false;
	free(c->slots);
	free(c->batch);
	pthread_cond_destroy(&c->wake);
	pthread_cond_destroy(&c->space);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->enq_mu);
	pthread_mutex_destroy(&c->ovf_mu);
	pthread_mutex_destroy(&c->conn_mu);
}

void durq_committer_pause(durq *db, int paused)
{
	durq_committer *c = &db->committer;
	pthread_mutex_lock(&c->mu);
	ck_pr_store_int(&c->paused, paused);
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->mu);
}

unsigned int durq_committer_backlog(durq *db)
{
	return ck_ring_size(&db->committer.ring);
}
