/*
 * test_async.c — asynchronous writes (issue 8): each op completes exactly once with its own
 * result, only after the COMMIT that made it durable; a failing op fails alone in its batch;
 * a failed commit fails every op of the batch; durq_flush covers every earlier op; close
 * completes everything pending; backpressure blocks or returns DURQ_EAGAIN; a callback that
 * submits again does not deadlock; inputs are copied at submit; a lone op on a handle that
 * commits without a flush completes on the submitting thread, and callbacks never nest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>

#include "../bench/slowvfs.h"
#include "durq_internal.h"
#include "unit_util.h"

/* Results recorded by callbacks (committer thread); read on the main thread after a wait. */
typedef struct tally {
	int calls;          /* ck_pr */
	int ok;             /* ck_pr */
	int failed;         /* ck_pr */
	int last_rc;
	int64_t lease_until;
} tally;

static void count_done(void *ctx, const durq_completion *c)
{
	tally *t = ctx;
	if (c->rc == DURQ_OK)
		ck_pr_inc_int(&t->ok);
	else
		ck_pr_inc_int(&t->failed);
	t->last_rc = c->rc;
	t->lease_until = c->lease_until_ms;
	ck_pr_inc_int(&t->calls);
}

/* One slot per op: how many times it completed, with what. */
typedef struct slot {
	int calls;
	int rc;
} slot;

static void slot_done(void *ctx, const durq_completion *c)
{
	slot *s = ctx;
	s->rc = c->rc;
	ck_pr_inc_int(&s->calls);
}

static int setup(void **state)
{
	*state = fx_new("async.db");
	return 0;
}

static durq *open_mode(fx *f, int mode, int backlog)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.commit_mode = mode;
	o.backlog = backlog;
	o.stats_publish_ms = DURQ_STATS_PUBLISH_OFF; /* the ring is counted op by op: none rides */
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	return f->db;
}

static int64_t ready(durq *db)
{
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(db, &d, NULL), DURQ_OK);
	return d.work_ready;
}

static void enqueue_n(durq *db, int n)
{
	for (int i = 0; i < n; i++) {
		char p[16];
		snprintf(p, sizeof(p), "item-%d", i);
		durq_work w = {.payload = p, .payload_len = strlen(p)};
		assert_int_equal(durq_work_enqueue(db, &w, 1), DURQ_OK);
	}
}

/* ---- exactly once, right result, failing op alone ----------------------------------- */

static void acks_complete_once_and_bad_one_fails_alone(fx *f, int mode)
{
	durq *db = open_mode(f, mode, 0);
	enum { N = 200 };
	enqueue_n(db, N);
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, N, 60000, 0), DURQ_OK);
	assert_int_equal(n, N);
	slot slots[N];
	memset(slots, 0, sizeof(slots));
	durq_group *g;
	assert_int_equal(durq_group_new(&g), DURQ_OK);
	if (mode == DURQ_COMMIT_GROUP)
		durq_committer_pause(db, 1); /* all in one batch */
	for (size_t i = 0; i < n; i++) {
		durq_token tok = it[i].token;
		if (i == 7)
			tok.bytes[0] ^= 0xff; /* a stale token: this ack must fail, alone */
		durq_async a = {.done = slot_done, .ctx = &slots[i], .group = g};
		assert_int_equal(durq_work_ack_async(db, it[i].id, &tok, NULL, &a), DURQ_OK);
	}
	uint64_t tx0 = 0;
	if (mode == DURQ_COMMIT_GROUP) {
		durq_stats s;
		assert_int_equal(durq_stats_get(db, &s), DURQ_OK);
		tx0 = s.transactions;
		assert_int_equal(durq_committer_backlog(db), N);
		for (size_t i = 0; i < n; i++) /* nothing completes before its commit */
			assert_int_equal(ck_pr_load_int(&slots[i].calls), 0);
		durq_committer_pause(db, 0);
	}
	size_t failed = 99;
	assert_int_equal(durq_group_wait(g, -1, &failed), DURQ_OK);
	assert_int_equal(failed, 1);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(slots[i].calls, 1);
		assert_int_equal(slots[i].rc, i == 7 ? DURQ_ELOCKLOST : DURQ_OK);
	}
	if (mode == DURQ_COMMIT_GROUP) {
		durq_stats s;
		assert_int_equal(durq_stats_get(db, &s), DURQ_OK);
		assert_int_equal(s.transactions - tx0, 1); /* 200 acks, one transaction */
	}
	assert_int_equal(ready(db), 0);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_leased, 1); /* the failed one keeps its lease */
	durq_group_free(g);
	durq_work_items_free(it, n);
}

static void test_acks_complete_once_group(void **state)
{
	acks_complete_once_and_bad_one_fails_alone(*state, DURQ_COMMIT_GROUP);
}

static void test_acks_complete_once_per_op(void **state)
{
	acks_complete_once_and_bad_one_fails_alone(*state, DURQ_COMMIT_PER_OP);
}

/* ---- inputs copied; every kind has an async form ------------------------------------ */

static void test_inputs_are_copied_at_submit(void **state)
{
	durq *db = open_mode(*state, DURQ_COMMIT_GROUP, 0);
	tally t = {0};
	durq_async a = {.done = count_done, .ctx = &t};
	char buf[32];
	durq_committer_pause(db, 1);
	strcpy(buf, "first");
	durq_work w = {.queue = "q", .payload = buf, .payload_len = 5};
	assert_int_equal(durq_work_enqueue_async(db, &w, 1, &a), DURQ_OK);
	strcpy(buf, "XXXXX"); /* the caller reuses its buffer at once */
	char inst[8] = "inst";
	durq_message m = {.instance_id = inst, .payload = buf, .payload_len = 5};
	assert_int_equal(durq_orch_enqueue_async(db, &m, 1, &a), DURQ_OK);
	strcpy(inst, "zzzz");
	durq_committer_pause(db, 0);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(t.ok, 2);
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(db, &it, &n, "q", 1, 60000, 0), DURQ_OK);
	assert_memory_equal(it[0].payload, "first", 5);
	durq_token tok = it[0].token;
	assert_int_equal(durq_work_renew_async(db, it[0].id, &tok, 90000, &a), DURQ_OK);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(t.last_rc, DURQ_OK);
	assert_true(t.lease_until > durq_now(db) + 60000);
	memset(&tok, 0, sizeof(tok)); /* the token was copied too */
	tok = it[0].token;
	assert_int_equal(durq_work_abandon_async(db, it[0].id, &tok, 0, 1, &a), DURQ_OK);
	durq_work_items_free(it, n);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(t.ok, 4);

	durq_turn *turn;
	assert_int_equal(durq_orch_fetch(db, &turn, 60000, 0), DURQ_OK);
	assert_string_equal(turn->instance_id, "inst");
	assert_memory_equal(turn->messages[0].payload, "XXXXX", 5);
	assert_int_equal(durq_orch_renew_async(db, turn->instance_id, &turn->token, 60000, &a), DURQ_OK);
	char out[8] = "done";
	durq_event ev = {.event_id = 1, .payload = "ev", .payload_len = 2};
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.status = DURQ_STATUS_COMPLETED;
	r.output = out;
	r.output_len = 4;
	r.history = &ev;
	r.n_history = 1;
	assert_int_equal(durq_orch_ack_async(db, turn->instance_id, &turn->token, &r, &a), DURQ_OK);
	strcpy(out, "gone");
	durq_turn_free(turn);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(t.ok, 6);
	durq_instance_info *info;
	assert_int_equal(durq_instance_get(db, &info, "inst"), DURQ_OK);
	assert_int_equal(info->status, DURQ_STATUS_COMPLETED);
	assert_memory_equal(info->output, "done", 4);
	durq_instance_info_free(info);
	assert_int_equal(durq_instance_delete_async(db, "inst", &a), DURQ_OK);
	assert_int_equal(durq_dead_requeue_async(db, 12345, &a), DURQ_OK);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(t.ok, 7);
	assert_int_equal(t.failed, 1);
	assert_int_equal(t.last_rc, DURQ_ENOTFOUND);
	assert_int_equal(ck_pr_load_int(&t.calls), 8);
}

static void test_bad_arguments_fail_at_submit_and_never_complete(void **state)
{
	durq *db = open_mode(*state, DURQ_COMMIT_GROUP, 0);
	tally t = {0};
	durq_async a = {.done = count_done, .ctx = &t};
	assert_int_equal(durq_work_ack_async(db, 1, NULL, NULL, &a), DURQ_EINVAL);
	assert_int_equal(durq_orch_ack_async(db, "", NULL, NULL, &a), DURQ_EINVAL);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(t.calls, 0);
	assert_int_equal(durq_work_ack_async(NULL, 1, NULL, NULL, &a), DURQ_EINVAL);
}

/* ---- completion only after COMMIT: a failed commit fails every op of the batch ------- */

static void test_failed_commit_fails_every_async_op_of_the_batch(void **state)
{
	fx *f = *state;
	durq_options o = DURQ_OPTIONS_INIT;
	o.sqlite_vfs = bench_slowvfs_register(0);
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	enum { N = 50 };
	slot slots[N];
	memset(slots, 0, sizeof(slots));
	durq_group *g;
	assert_int_equal(durq_group_new(&g), DURQ_OK);
	durq_committer_pause(f->db, 1);
	for (int i = 0; i < N; i++) {
		durq_work w = {.payload = "x", .payload_len = 1};
		durq_async a = {.done = slot_done, .ctx = &slots[i], .group = g};
		assert_int_equal(durq_work_enqueue_async(f->db, &w, 1, &a), DURQ_OK);
	}
	bench_slowvfs_fail_syncs(1);
	durq_committer_pause(f->db, 0);
	size_t failed;
	assert_int_equal(durq_group_wait(g, -1, &failed), DURQ_OK);
	bench_slowvfs_fail_syncs(0);
	assert_int_equal(failed, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(slots[i].calls, 1);
		assert_int_equal(slots[i].rc, DURQ_EIO); /* none reports OK */
	}
	/* all or nothing: visible if the COMMIT went through and only the flush after it
	 * failed (deferred flush), absent if the flush at COMMIT failed */
	int64_t r = ready(f->db);
	assert_true(r == 0 || r == N);
	durq_group_free(g);
}

/* ---- durq_flush covers every earlier op, from every thread -------------------------- */

typedef struct producer {
	durq *db;
	tally *t;
	int n;
} producer;

static void *produce(void *arg)
{
	producer *p = arg;
	for (int i = 0; i < p->n; i++) {
		durq_work w = {.payload = "p", .payload_len = 1};
		durq_async a = {.done = count_done, .ctx = p->t};
		if (durq_work_enqueue_async(p->db, &w, 1, &a) != DURQ_OK)
			break;
	}
	return NULL;
}

static void test_flush_covers_every_earlier_op(void **state)
{
	durq *db = open_mode(*state, DURQ_COMMIT_GROUP, 0);
	tally t = {0};
	producer p[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		p[i] = (producer){db, &t, 500};
		pthread_create(&th[i], NULL, produce, &p[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* all 2,000 were submitted before the flush: all are complete when it returns */
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(ck_pr_load_int(&t.calls), 2000);
	assert_int_equal(t.ok, 2000);
	assert_int_equal(ready(db), 2000);
}

static void test_flush_times_out_while_ops_are_held(void **state)
{
	durq *db = open_mode(*state, DURQ_COMMIT_GROUP, 0);
	durq_work w = {.payload = "p", .payload_len = 1};
	assert_int_equal(durq_work_enqueue_async(db, &w, 1, NULL), DURQ_OK);
	durq_committer_pause(db, 1);
	assert_int_equal(durq_work_enqueue_async(db, &w, 1, NULL), DURQ_OK);
	assert_int_equal(durq_flush(db, 0), DURQ_ETIMEDOUT);
	durq_committer_pause(db, 0);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(ready(db), 2);
}

/* ---- close completes every pending op ----------------------------------------------- */

static void test_close_completes_10000_pending_async_ops(void **state)
{
	fx *f = *state;
	durq *db = open_mode(f, DURQ_COMMIT_GROUP, 16384);
	tally t = {0};
	durq_committer_pause(db, 1); /* they pile up in the ring */
	for (int i = 0; i < 10000; i++) {
		durq_work w = {.payload = "p", .payload_len = 1};
		durq_async a = {.done = count_done, .ctx = &t};
		assert_int_equal(durq_work_enqueue_async(db, &w, 1, &a), DURQ_OK);
	}
	assert_int_equal(durq_committer_backlog(db), 10000);
	assert_int_equal(t.calls, 0);
	assert_int_equal(durq_close(db), DURQ_OK);
	assert_int_equal(t.calls, 10000);
	assert_int_equal(t.ok, 10000);
	durq_free(db);
	assert_int_equal(durq_open(&f->db, f->url, NULL), DURQ_OK);
	assert_int_equal(ready(f->db), 10000); /* and they are durable */
}

/* ---- backpressure: DURQ_EAGAIN, or block until there is room ------------------------- */

static void *enqueue_blocking(void *arg)
{
	producer *p = arg;
	durq_work w = {.payload = "b", .payload_len = 1};
	durq_async a = {.done = count_done, .ctx = p->t};
	p->n = durq_work_enqueue_async(p->db, &w, 1, &a);
	return NULL;
}

static void test_backpressure_eagain_or_block(void **state)
{
	durq *db = open_mode(*state, DURQ_COMMIT_GROUP, 8); /* a ring of 8 holds 7 */
	tally t = {0};
	durq_committer_pause(db, 1);
	durq_work w = {.payload = "p", .payload_len = 1};
	durq_async nowait = {.done = count_done, .ctx = &t, .flags = DURQ_SUBMIT_NOWAIT};
	for (int i = 0; i < 7; i++)
		assert_int_equal(durq_work_enqueue_async(db, &w, 1, &nowait), DURQ_OK);
	assert_int_equal(durq_work_enqueue_async(db, &w, 1, &nowait), DURQ_EAGAIN);
	assert_true(durq_error_retryable(DURQ_EAGAIN));
	producer p = {db, &t, 99};
	pthread_t th;
	durq_stats s;
	assert_int_equal(pthread_create(&th, NULL, enqueue_blocking, &p), 0);
	do { /* the blocking submitter waits for room (counted in stats) */
		sched_yield();
		assert_int_equal(durq_stats_get(db, &s), DURQ_OK);
	} while (s.backlog_waits == 0);
	durq_committer_pause(db, 0);
	pthread_join(th, NULL);
	assert_int_equal(p.n, DURQ_OK);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(t.ok, 8); /* the refused one never completes */
	assert_int_equal(ck_pr_load_int(&t.calls), 8);
}

/* ---- a callback that submits again does not deadlock, even with a full ring --------- */

typedef struct chain {
	durq *db;
	int left;      /* committer thread only */
	int done;      /* ck_pr */
	int sync_rc;
	int bad_rc;    /* a completion that was not OK (cmocka asserts on the main thread) */
	int wait_rcs[3]; /* flush, ack_many, group_wait from the callback */
} chain;

static void resubmit(void *ctx, const durq_completion *c)
{
	chain *ch = ctx;
	if (c->rc != DURQ_OK)
		ch->bad_rc = c->rc;
	if (ch->left-- > 0) {
		for (int i = 0; i < 3; i++) { /* more than the ring holds in total: never blocks */
			durq_work w = {.payload = "c", .payload_len = 1};
			durq_async a = {.done = i == 0 ? resubmit : NULL, .ctx = ch};
			durq_work_enqueue_async(ch->db, &w, 1, &a);
		}
		durq_work w = {.payload = "s", .payload_len = 1};
		ch->sync_rc = durq_work_enqueue(ch->db, &w, 1); /* sync from here: EINVAL */
	} else {
		/* waiting for ops from here would wait for this very thread: refused at once */
		durq_work_ack_req req = {1, &(durq_token){{0}}, NULL};
		ch->wait_rcs[0] = durq_flush(ch->db, -1);
		ch->wait_rcs[1] = durq_work_ack_many(ch->db, &req, 1, NULL);
		durq_group *g;
		if (durq_group_new(&g) == DURQ_OK) {
			durq_async a = {.group = g};
			durq_work w = {.payload = "g", .payload_len = 1};
			durq_work_enqueue_async(ch->db, &w, 1, &a);
			ch->wait_rcs[2] = durq_group_wait(g, -1, NULL);
			durq_group_free(g); /* freed once its op completes */
		}
		ck_pr_store_int(&ch->done, 1);
	}
}

static void test_callback_that_submits_again_does_not_deadlock(void **state)
{
	durq *db = open_mode(*state, DURQ_COMMIT_GROUP, 4); /* a ring of 3 */
	chain ch = {db, 20, 0, 0, 0, {0, 0, 0}};
	durq_work w = {.payload = "c", .payload_len = 1};
	durq_async a = {.done = resubmit, .ctx = &ch};
	assert_int_equal(durq_work_enqueue_async(db, &w, 1, &a), DURQ_OK);
	while (!ck_pr_load_int(&ch.done))
		sched_yield();
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(ch.sync_rc, DURQ_EINVAL);
	assert_int_equal(ch.bad_rc, 0);
	for (int i = 0; i < 3; i++) /* before the guard: a hang (the committer waited for itself) */
		assert_int_equal(ch.wait_rcs[i], DURQ_EINVAL);
	assert_int_equal(ready(db), 1 + 20 * 3 + 1);
}

/* ---- a lone async op on a handle that commits without a flush runs inline ----------- */

/* What an inline-path callback saw. */
typedef struct seen {
	durq *db;
	int calls;          /* ck_pr */
	int rc;
	pthread_t thread;
	int64_t leased;     /* work_leased read from the callback: the ack's COMMIT is visible */
	int sync_rc;        /* a synchronous write from the callback */
} seen;

static void seen_done(void *ctx, const durq_completion *c)
{
	seen *s = ctx;
	s->rc = c->rc;
	s->thread = pthread_self();
	durq_queue_depths d;
	s->leased = durq_queue_depths_get(s->db, &d, NULL) == DURQ_OK ? d.work_leased : -1;
	durq_work w = {.queue = "from-callback", .payload = "s", .payload_len = 1};
	s->sync_rc = durq_work_enqueue(s->db, &w, 1);
	ck_pr_inc_int(&s->calls);
}

/* Wait until the committer sleeps for want of work: it holds the write connection only
 * while it drains and runs a batch, so from now on a lone op finds it free. */
static void committer_asleep(durq *db)
{
	while (!ck_pr_load_int(&db->committer.sleeping))
		sched_yield();
}

static durq *open_url(fx *f, const char *url, int synchronous)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.commit_mode = DURQ_COMMIT_GROUP;
	o.synchronous = synchronous;
	o.stats_publish_ms = DURQ_STATS_PUBLISH_OFF; /* no stats op ahead of the one measured */
	assert_int_equal(durq_open(&f->db, url, &o), DURQ_OK);
	return f->db;
}

/* Idle handle, no flush at COMMIT: the ack commits on this thread and its callback has run
 * here, after the COMMIT, before the submit returns; a synchronous write from that callback
 * works as in per-op mode. With the committer held, the next one queues and completes on
 * the committer thread instead. */
static void lone_async_op_completes_inline(fx *f, const char *url, int synchronous)
{
	durq *db = open_url(f, url, synchronous);
	enqueue_n(db, 2);
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, 2, 60000, 0), DURQ_OK);
	assert_int_equal(n, 2);
	durq_stats s0, s1;
	assert_int_equal(durq_stats_get(db, &s0), DURQ_OK);
	seen a = {.db = db, .rc = 99, .leased = 99, .sync_rc = 99};
	durq_async how = {.done = seen_done, .ctx = &a};
	committer_asleep(db);
	assert_int_equal(durq_work_ack_async(db, it[0].id, &it[0].token, NULL, &how), DURQ_OK);
	assert_int_equal(ck_pr_load_int(&a.calls), 1); /* before the submit returned */
	assert_true(pthread_equal(a.thread, pthread_self()));
	assert_int_equal(a.rc, DURQ_OK);
	assert_int_equal(a.leased, 1); /* the acked item's lease is gone: after COMMIT */
	assert_int_equal(a.sync_rc, DURQ_OK);
	assert_int_equal(durq_stats_get(db, &s1), DURQ_OK);
	assert_int_equal(s1.ops[DURQ_OP_WORK_ACK] - s0.ops[DURQ_OP_WORK_ACK], 1);
	assert_int_equal(s1.work_ack_latency.count - s0.work_ack_latency.count, 1);

	/* the committer busy (held): queued, completed on the committer thread */
	seen b = {.db = db, .rc = 99};
	how.ctx = &b;
	durq_committer_pause(db, 1);
	assert_int_equal(durq_work_ack_async(db, it[1].id, &it[1].token, NULL, &how), DURQ_OK);
	assert_int_equal(durq_committer_backlog(db), 1);
	assert_int_equal(ck_pr_load_int(&b.calls), 0);
	durq_committer_pause(db, 0);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(ck_pr_load_int(&b.calls), 1);
	assert_true(pthread_equal(b.thread, db->committer.thread));
	assert_int_equal(b.rc, DURQ_OK);
	assert_int_equal(b.sync_rc, DURQ_EINVAL); /* on the committer: refused, as documented */
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_leased, 0);
	assert_int_equal(d.work_ready, 1); /* the one enqueued from the inline callback */
	durq_work_items_free(it, n);
}

static void test_lone_async_op_completes_inline_in_memory(void **state)
{
	lone_async_op_completes_inline(*state, "sqlite::memory:", DURQ_SYNC_DEFAULT);
}

static void test_lone_async_op_completes_inline_on_a_file_without_full(void **state)
{
	fx *f = *state;
	lone_async_op_completes_inline(f, f->url, DURQ_SYNC_NORMAL);
}

/* Acks submitted back to back (a fetched batch) are a burst: only the first may commit on
 * the submitting thread, the rest go to the committer and share its commits. A
 * synchronous write (the next fetch's claim) ends the burst. The mean commit time is set
 * high so that "back to back" does not depend on this machine's speed. */
static void test_a_burst_of_async_acks_goes_to_the_committer(void **state)
{
	fx *f = *state;
	durq *db = open_url(f, "sqlite::memory:", DURQ_SYNC_DEFAULT);
	enum { N = 100 };
	enqueue_n(db, N + 1);
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, N + 1, 60000, 0), DURQ_OK);
	assert_int_equal(n, N + 1);
	seen s[N + 1];
	memset(s, 0, sizeof(s));
	durq_group *g;
	assert_int_equal(durq_group_new(&g), DURQ_OK);
	ck_pr_store_64(&db->committer.commit_ewma_ns, 10ull * 1000000000ull);
	committer_asleep(db);
	for (int i = 0; i < N; i++) {
		s[i].db = db;
		durq_async a = {.done = seen_done, .ctx = &s[i], .group = g};
		assert_int_equal(durq_work_ack_async(db, it[i].id, &it[i].token, NULL, &a), DURQ_OK);
	}
	assert_int_equal(durq_group_wait(g, -1, NULL), DURQ_OK);
	int here = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(s[i].calls, 1);
		assert_int_equal(s[i].rc, DURQ_OK);
		here += pthread_equal(s[i].thread, pthread_self()) != 0;
	}
	assert_true(pthread_equal(s[0].thread, pthread_self()));
	assert_int_equal(here, 1);
	/* a synchronous write: the next ack is a lone op again */
	durq_work w = {.payload = "x", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(db, &w, 1), DURQ_OK);
	committer_asleep(db);
	s[N].db = db;
	durq_async a = {.done = seen_done, .ctx = &s[N]};
	assert_int_equal(durq_work_ack_async(db, it[N].id, &it[N].token, NULL, &a), DURQ_OK);
	assert_int_equal(ck_pr_load_int(&s[N].calls), 1);
	assert_true(pthread_equal(s[N].thread, pthread_self()));
	assert_int_equal(s[N].rc, DURQ_OK);
	durq_group_free(g);
	durq_work_items_free(it, n);
}

/* A file with synchronous=FULL flushes at every commit: an async op of a thread not yet
 * known to submit one op at a time (its first to this handle, or one of a burst) never
 * blocks its submitter for that, it completes on the committer (lone op) or the flush
 * thread. */
/* The shape of one item in flight on a FULL file: fetch one, ack it asynchronously, wait,
 * fetch the next. Nothing can share the ack's commit, so from the thread's second ack on
 * (its previous burst was one op) the ack commits and flushes on the thread itself, its
 * callback before the submit returns, instead of two thread wake-ups around the commit.
 * The first, and every ack of a burst, go to the write threads (tests around this one). */
static void test_thread_with_one_op_in_flight_commits_its_ack_itself(void **state)
{
	fx *f = *state;
	durq *db = open_url(f, f->url, DURQ_SYNC_FULL);
	enqueue_n(db, 3);
	seen s[3];
	for (int i = 0; i < 3; i++) {
		durq_work_item *it;
		size_t n;
		assert_int_equal(durq_work_fetch(db, &it, &n, NULL, 1, 60000, 0), DURQ_OK);
		committer_asleep(db);
		s[i] = (seen){.db = db, .rc = 99};
		durq_async a = {.done = seen_done, .ctx = &s[i]};
		assert_int_equal(durq_work_ack_async(db, it[0].id, &it[0].token, NULL, &a), DURQ_OK);
		if (i > 0) { /* completed before the submit returned, on this thread */
			assert_int_equal(ck_pr_load_int(&s[i].calls), 1);
			assert_true(pthread_equal(s[i].thread, pthread_self()));
		}
		assert_int_equal(durq_flush(db, -1), DURQ_OK);
		assert_int_equal(ck_pr_load_int(&s[i].calls), 1);
		assert_int_equal(s[i].rc, DURQ_OK);
		durq_work_items_free(it, n);
	}
	assert_false(pthread_equal(s[0].thread, pthread_self()));
}

static void test_async_op_on_a_full_file_completes_on_a_write_thread(void **state)
{
	fx *f = *state;
	durq *db = open_url(f, f->url, DURQ_SYNC_FULL);
	enqueue_n(db, 1);
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, 1, 60000, 0), DURQ_OK);
	seen a = {.db = db, .rc = 99};
	durq_async how = {.done = seen_done, .ctx = &a};
	assert_int_equal(durq_work_ack_async(db, it[0].id, &it[0].token, NULL, &how), DURQ_OK);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(ck_pr_load_int(&a.calls), 1);
	assert_int_equal(a.rc, DURQ_OK);
	assert_false(pthread_equal(a.thread, pthread_self()));
	assert_true(pthread_equal(a.thread, db->committer.thread) ||
		    (db->committer.syncer.started &&
		     pthread_equal(a.thread, db->committer.syncer.thread)));
	assert_int_equal(a.sync_rc, DURQ_EINVAL);
	durq_work_items_free(it, n);
}

/* Each callback submits the next op: 10,000 in a chain, started inline. A submit from an
 * inline callback goes through the ring, so callbacks never nest (depth 1), however long
 * the chain; without that each op would recurse into the next on the submitter's stack. */
enum { CHAIN_N = 10000 };

typedef struct deep {
	durq *db;
	durq_group *g;
	int submitted;      /* callbacks run one at a time (a chain): no lock */
	int max_depth;
	int submit_rc;
} deep;

static _Thread_local int cb_depth;

static void deep_done(void *ctx, const durq_completion *c)
{
	deep *d = ctx;
	if (++cb_depth > d->max_depth)
		d->max_depth = cb_depth;
	if (c->rc != DURQ_OK)
		d->submit_rc = c->rc;
	if (d->submitted < CHAIN_N) {
		d->submitted++;
		durq_work w = {.payload = "d", .payload_len = 1};
		durq_async a = {.done = deep_done, .ctx = d, .group = d->g};
		int rc = durq_work_enqueue_async(d->db, &w, 1, &a);
		if (rc != DURQ_OK)
			d->submit_rc = rc;
	}
	cb_depth--;
}

static void test_inline_callback_that_submits_again_does_not_recurse(void **state)
{
	fx *f = *state;
	durq *db = open_url(f, "sqlite::memory:", DURQ_SYNC_DEFAULT);
	deep d = {.db = db, .submitted = 1};
	assert_int_equal(durq_group_new(&d.g), DURQ_OK);
	durq_work w = {.payload = "d", .payload_len = 1};
	durq_async a = {.done = deep_done, .ctx = &d, .group = d.g};
	committer_asleep(db);
	assert_int_equal(durq_work_enqueue_async(db, &w, 1, &a), DURQ_OK);
	/* the first completed inline and submitted the second, which did not run here */
	assert_int_equal(d.max_depth, 1);
	/* each op of the chain is submitted before its predecessor leaves the group */
	assert_int_equal(durq_group_wait(d.g, -1, NULL), DURQ_OK);
	assert_int_equal(durq_flush(db, -1), DURQ_OK);
	assert_int_equal(d.submitted, CHAIN_N);
	assert_int_equal(d.submit_rc, DURQ_OK);
	assert_int_equal(d.max_depth, 1);
	assert_int_equal(ready(db), CHAIN_N);
	durq_group_free(d.g);
}

/* ---- the batch form ----------------------------------------------------------------- */

static void test_ack_many_each_fails_alone(void **state)
{
	durq *db = open_mode(*state, DURQ_COMMIT_GROUP, 0);
	enqueue_n(db, 10);
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, 10, 60000, 0), DURQ_OK);
	durq_work_ack_req reqs[10];
	durq_token bad = it[3].token;
	bad.bytes[5] ^= 1;
	durq_message done = {.instance_id = "parent", .payload = "r", .payload_len = 1};
	for (size_t i = 0; i < n; i++)
		reqs[i] = (durq_work_ack_req){it[i].id, i == 3 ? &bad : &it[i].token,
					      i == 0 ? &done : NULL};
	int rcs[10];
	assert_int_equal(durq_work_ack_many(db, reqs, n, rcs), DURQ_ELOCKLOST);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rcs[i], i == 3 ? DURQ_ELOCKLOST : DURQ_OK);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_leased, 1);
	assert_int_equal(d.orch_ready, 1); /* the completion went in with its ack */
	reqs[3].token = &it[3].token;
	assert_int_equal(durq_work_ack_many(db, &reqs[3], 1, NULL), DURQ_OK);
	assert_int_equal(durq_work_ack_many(db, NULL, 2, NULL), DURQ_EINVAL);
	durq_work_items_free(it, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fx_teardown)
		T(test_acks_complete_once_group),
		T(test_acks_complete_once_per_op),
		T(test_inputs_are_copied_at_submit),
		T(test_bad_arguments_fail_at_submit_and_never_complete),
		T(test_failed_commit_fails_every_async_op_of_the_batch),
		T(test_flush_covers_every_earlier_op),
		T(test_flush_times_out_while_ops_are_held),
		T(test_close_completes_10000_pending_async_ops),
		T(test_backpressure_eagain_or_block),
		T(test_callback_that_submits_again_does_not_deadlock),
		T(test_ack_many_each_fails_alone),
		T(test_lone_async_op_completes_inline_in_memory),
		T(test_lone_async_op_completes_inline_on_a_file_without_full),
		T(test_a_burst_of_async_acks_goes_to_the_committer),
		T(test_async_op_on_a_full_file_completes_on_a_write_thread),
		T(test_thread_with_one_op_in_flight_commits_its_ack_itself),
		T(test_inline_callback_that_submits_again_does_not_recurse),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
