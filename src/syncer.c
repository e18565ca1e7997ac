/*
 * syncer.c — the flush half of the write path (providers with DURQ_PROVIDER_DEFERRED_FLUSH,
 * synchronous=FULL, group mode). The committer commits a batch without waiting for the disk
 * (DURQ_TXN_DEFER_FLUSH) and hands it here; this thread calls the provider's flush once for
 * every batch committed since its last one (one fsync covers them all: the WAL is written in
 * order), then completes their ops. So the next batch runs while the last one's fsync is on
 * the disk, and a batch's fsync no longer holds back the claims that refill the workers.
 *
 * A failed flush leaves what it covered visible but of unknown durability: every op of
 * those batches, and of every batch committed until the committer ran flush_recover, is
 * completed with DURQ_EIO. The recovery's marker (a batch of no ops) ends that state.
 *
 * Owns: the flush thread, the list of committed batches awaiting their flush, the broken
 * state. Does not own: the write connection (committer.c), what completing an op means.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ck_pr.h>

#include "durq_internal.h"

struct durq_flushing {
	struct durq_flushing *next;
	uint64_t t0;        /* when its transaction began: its commit time ends at the flush */
	size_t n;           /* 0: the recovery marker */
	size_t txn_ops;     /* ops of its transaction (claims, completed at COMMIT, included) */
	durq_pending *ops[];
};

static void *syncer_main(void *arg);

int durq_syncer_start(durq_syncer *s, durq *db, durq_conn *conn)
{
	memset(s, 0, sizeof(*s));
	s->db = db;
	s->conn = conn;
	if (pthread_mutex_init(&s->mu, NULL) != 0)
		return durq_error_set(DURQ_ENOMEM, "syncer: cannot create its lock");
	if (pthread_cond_init(&s->cv, NULL) != 0) {
		pthread_mutex_destroy(&s->mu);
		return durq_error_set(DURQ_ENOMEM, "syncer: cannot create its condition");
	}
	if (pthread_create(&s->thread, NULL, syncer_main, s) != 0) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		return durq_error_set(DURQ_ENOMEM, "syncer: cannot start thread");
	}
	s->started = true;
	return DURQ_OK;
}

static void push(durq_syncer *s, durq_flushing *f)
{
	ck_pr_inc_int(&s->pending);
	pthread_mutex_lock(&s->mu);
	if (s->tail)
		s->tail->next = f;
	else
		s->head = f;
	s->tail = f;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int durq_syncer_push(durq_syncer *s, durq_pending *const *ops, size_t n, size_t txn_ops,
		     uint64_t t0)
{
	durq_flushing *f = malloc(sizeof(*f) + n * sizeof(f->ops[0]));
	if (!f)
		return durq_error_set(DURQ_ENOMEM, "syncer: out of memory");
	f->next = NULL;
	f->t0 = t0;
	f->n = n;
	f->txn_ops = txn_ops;
	if (n) /* the recovery marker has no ops (ops NULL) */
		memcpy(f->ops, ops, n * sizeof(f->ops[0]));
	push(s, f);
	return DURQ_OK;
}

int durq_syncer_push_marker(durq_syncer *s)
{
	return durq_syncer_push(s, NULL, 0, 0, 0);
}

bool durq_syncer_broken(durq_syncer *s)
{
	return s->started && ck_pr_load_int(&s->broken);
}

/* Nothing pushed is still to complete. A true answer orders the completions before the
 * caller's next steps (for ThreadSanitizer too, which does not see ck_pr's atomics). */
bool durq_syncer_drained(durq_syncer *s)
{
	if (ck_pr_load_int(&s->pending) != 0)
		return false;
	DURQ_HB_ACQUIRE(&s->pending);
	return true;
}

bool durq_syncer_idle(durq_syncer *s)
{
	return !s->started || (durq_syncer_drained(s) && !ck_pr_load_int(&s->broken));
}

/* Complete one batch: each op with its own result, or with the flush's error. */
static void complete_ops(durq_syncer *s, durq_pending *const *ops, size_t n, size_t txn_ops,
			 uint64_t t0, int rc, const char *msg)
{
	durq *db = s->db;
	uint64_t took = durq_clock_mono_ns() - t0;
	durq_stats_txn(&db->counters, txn_ops, took, rc == DURQ_OK);
	if (rc == DURQ_OK)
		durq_committer_note_commit(&db->committer, took);
	for (size_t i = 0; i < n; i++) {
		durq_pending *p = ops[i];
		if (rc < 0 && (p->rc >= 0 || p->rc == DURQ_EMPTY)) {
			p->rc = rc;
			snprintf(p->errmsg, sizeof(p->errmsg), "%s", msg);
		}
		durq_stats_op(&db->counters, p->op.kind, p->rc);
		durq_committer_complete(p);
	}
}

/* The flush; on failure the broken state starts and msg says what the ops get. */
static int flush_once(durq_syncer *s, char *msg, size_t len)
{
	durq_error_clear();
	int rc = s->db->provider->flush(s->conn);
	if (rc < 0) {
		snprintf(msg, len, "the flush after COMMIT failed (%s): this op's outcome is unknown "
			 "(it is visible, and may or may not survive a crash)", durq_error_last());
		ck_pr_store_int(&s->broken, 1);
		durq_log_emit(&s->db->opts, DURQ_LOG_ERROR, "COMMIT", "%s", msg);
	}
	return rc;
}

static const char broken_msg[] = "an earlier WAL flush failed and the recovery has not run "
				 "yet: this op's outcome is unknown (it may or may not survive "
				 "a crash)";

/* One round: flush once for everything taken, then complete it in commit order. A list
 * may hold batches of the broken state, the recovery marker, then batches after it. */
static void flush_round(durq_syncer *s, durq_flushing *list)
{
	char msg[DURQ_ERRMSG_MAX] = "";
	int rc = DURQ_OK;
	bool flushed = false;
	int done = 0;
	while (list) {
		durq_flushing *f = list;
		list = f->next;
		if (f->n == 0) { /* the committer recovered: what follows was committed after */
			ck_pr_store_int(&s->broken, 0);
			rc = DURQ_OK;
			flushed = false;
		} else if (ck_pr_load_int(&s->broken)) {
			rc = DURQ_EIO;
			snprintf(msg, sizeof(msg), "%s", broken_msg);
		} else if (!flushed) {
			rc = flush_once(s, msg, sizeof(msg));
			flushed = true;
		}
		complete_ops(s, f->ops, f->n, f->txn_ops, f->t0, rc, msg);
		free(f);
		done++;
	}
	/* what these completions wrote happens before whoever then sees pending at 0 (the
	 * committer flushing a lone op itself, a direct commit, close): see durq_syncer_drained */
	DURQ_HB_RELEASE(&s->pending);
	if (ck_pr_faa_int(&s->pending, -done) == done && ck_pr_load_int(&s->db->committer.stopping))
		durq_committer_kick(&s->db->committer); /* a closing committer waits for this */
}

static void *syncer_main(void *arg)
{
	durq_syncer *s = arg;
	durq_writer_enter(); /* callbacks run here: a synchronous write would wait for itself */
	pthread_setname_np(pthread_self(), "durq-flush");
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->head && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->head)
			break;
		durq_flushing *list = s->head;
		s->head = s->tail = NULL;
		pthread_mutex_unlock(&s->mu);
		flush_round(s, list);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* After the committer stopped: every batch pushed has been completed (the committer waits
 * for pending to reach 0 before it exits), so this only ends the thread. */
void durq_syncer_stop(durq_syncer *s)
{
	if (!s->started)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	s->started = false;
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
}
