/*
 * handle.c — the durq handle's life: open by URL or by provider, close (drain + join),
 * free; entering/leaving the API; running one write op (committer, per-op, or a claim or
 * ack-and-claim transaction beside the committer); waking fetchers after commits. Does not
 * own: argument checks and reads (api.c).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ck_pr.h>

#include "durq_internal.h"

int durq_provider_check(const durq_provider *p)
{
	if (!p)
		return durq_error_set(DURQ_EINVAL, "provider is NULL");
	if (p->version < DURQ_PROVIDER_VERSION_MIN || p->version > DURQ_PROVIDER_VERSION)
		return durq_error_set(DURQ_EINVAL, "provider '%s' has version %u; this durq speaks "
				      "versions %d to %d (versions 1 and 2 had connections without a "
				      "provider, version 3 ends before admin and query: rebuild "
				      "against durq/provider.h)",
				      p->name ? p->name : "?", p->version, DURQ_PROVIDER_VERSION_MIN,
				      DURQ_PROVIDER_VERSION);
#define REQUIRE(m)                                                                          \
	if (!p->m)                                                                          \
		return durq_error_set(DURQ_EINVAL, "provider '%s' lacks required method " #m, \
				      p->name ? p->name : "?");
	REQUIRE(name) REQUIRE(conn_open) REQUIRE(conn_close) REQUIRE(txn_begin)
	REQUIRE(txn_commit) REQUIRE(txn_rollback) REQUIRE(op_begin) REQUIRE(op_end)
	REQUIRE(op_apply) REQUIRE(history_read) REQUIRE(instance_get) REQUIRE(instance_list)
	REQUIRE(execution_list) REQUIRE(dead_list) REQUIRE(queue_depths) REQUIRE(next_due)
	REQUIRE(free)
#undef REQUIRE
	return DURQ_OK;
}

int64_t durq_clock_now(durq *db)
{
	return db->opts.clock(db->opts.clock_ctx);
}

int64_t durq_now(durq *db)
{
	return db ? durq_clock_now(db) : 0;
}

/* NULL if out of memory or a lock could not be created (Linux never fails these for
 * default attributes, but the codes are checked, not assumed). */
static durq *handle_alloc(void)
{
	durq *db = calloc(1, sizeof(*db));
	if (!db)
		return NULL;
	pthread_condattr_t ca;
	int rc = pthread_condattr_init(&ca);
	if (rc == 0)
		rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (int ch = 0; rc == 0 && ch < DURQ_WAKE__COUNT; ch++)
		rc = pthread_cond_init(&db->wake_cv[ch], &ca);
	if (rc == 0)
		rc = pthread_cond_init(&db->idle_cv, &ca);
	if (rc == 0)
		rc = pthread_cond_init(&db->closed_cv, &ca);
	if (rc == 0)
		rc = pthread_cond_init(&db->watch_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc == 0)
		rc = pthread_mutex_init(&db->wake_mu, NULL);
	if (rc == 0)
		rc = pthread_mutex_init(&db->watch_mu, NULL);
	if (rc == 0)
		rc = pthread_mutex_init(&db->active_mu, NULL);
	if (rc != 0) {
		free(db);
		return NULL;
	}
	db->next_due_ms = INT64_MAX;
	return db;
}

/*
 * Re-read the earliest future due time (timer or lease expiry). The query's snapshot may
 * miss a commit that lands while it runs; such commits record their due time in due_since
 * (see durq_notify_commit), and the refresh stores min(query, due_since), so a timer
 * committed meanwhile is never overwritten with "none". Overlapping refreshes share
 * due_since from the first one's start: that may keep a due time that is already past,
 * which only costs one more refresh, never a missed timer.
 */
void durq_next_due_refresh(durq *db)
{
	durq_conn *c;
	int64_t due = INT64_MAX;
	pthread_mutex_lock(&db->wake_mu);
	if (db->due_refreshing++ == 0)
		db->due_since = INT64_MAX;
	pthread_mutex_unlock(&db->wake_mu);
	int rc = durq_pool_checkout(&db->pool, &c);
	if (rc == DURQ_OK) {
		rc = db->provider->next_due(c, &due, durq_clock_now(db));
		durq_pool_checkin(&db->pool, c, false);
	}
	pthread_mutex_lock(&db->wake_mu);
	if (rc == DURQ_OK)
		db->next_due_ms = due < db->due_since ? due : db->due_since;
	else if (db->due_since < db->next_due_ms)
		db->next_due_ms = db->due_since;
	db->due_refreshing--;
	pthread_mutex_unlock(&db->wake_mu);
}


/* The write connection creates the schema first; then the pool; then the committer. */
static int handle_start(durq *db)
{
	durq_conn *w = NULL;
	int rc = db->provider->conn_open(db->provider, &w, DURQ_CONN_WRITE);
	if (rc < 0)
		return rc;
	if ((rc = durq_pool_init(&db->pool, db->provider, &db->opts, &db->counters)) < 0) {
		db->provider->conn_close(db->provider, w);
		return rc;
	}
	if (db->opts.commit_mode == DURQ_COMMIT_GROUP) {
		db->committer.conn = w;
		if ((rc = durq_committer_start(&db->committer, db)) < 0) {
			db->provider->conn_close(db->provider, w);
			durq_pool_destroy(&db->pool);
			return rc;
		}
	} else {
		db->provider->conn_close(db->provider, w);
	}
	durq_next_due_refresh(db);
	durq_watch_start(db);
	durq_publish_init(db);
	durq_log_emit(&db->opts, DURQ_LOG_INFO, "CONFIG", "provider=%s commit_mode=%s pool_size=%d "
		      "max_batch=%d backlog=%d max_attempts=%d", db->provider->name,
		      db->opts.commit_mode == DURQ_COMMIT_GROUP ? "group" : "per-op",
		      db->opts.pool_size, db->opts.max_batch, db->opts.backlog,
		      db->opts.max_attempts);
	return DURQ_OK;
}

static void handle_release(durq *db)
{
	durq_publish_free(db);
	if (db->provider)
		db->provider->free(db->provider);
	for (int ch = 0; ch < DURQ_WAKE__COUNT; ch++)
		pthread_cond_destroy(&db->wake_cv[ch]);
	pthread_cond_destroy(&db->idle_cv);
	pthread_cond_destroy(&db->closed_cv);
	pthread_cond_destroy(&db->watch_cv);
	pthread_mutex_destroy(&db->watch_mu);
	pthread_mutex_destroy(&db->active_mu);
	pthread_mutex_destroy(&db->wake_mu);
	free(db);
}

int durq_open_provider(durq **out, durq_provider *p, const durq_options *opts)
{
	int rc;
	durq *db;
	if (!out)
		rc = durq_error_set(DURQ_EINVAL, "durq_open_provider: out is NULL");
	else
		rc = durq_provider_check(p);
	if (rc < 0) {
		char msg[DURQ_ERRMSG_MAX];
		durq_error_copy(msg, sizeof(msg));
		if (p && p->version >= DURQ_PROVIDER_VERSION_MIN &&
		    p->version <= DURQ_PROVIDER_VERSION && p->free)
			p->free(p); /* ownership was passed to us, also on failure */
		return durq_error_set(rc, "%s", msg);
	}
	*out = NULL;
	if (!(db = handle_alloc())) {
		p->free(p);
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	}
	db->provider = p;
	if ((rc = durq_options_resolve_logged(&db->opts, opts, p->flags)) == DURQ_OK &&
	    p->settings) { /* the provider's own settings, as its URL set them */
		db->opts.synchronous = p->settings->synchronous;
		db->opts.busy_timeout_ms = p->settings->busy_timeout_ms;
		db->opts.sqlite_vfs = p->settings->sqlite_vfs;
	}
	if (rc < 0 || (rc = handle_start(db)) < 0) {
		handle_release(db);
		return rc;
	}
	*out = db;
	return DURQ_OK;
}

durq_provider *durq_provider_of(durq *db)
{
	return db ? db->provider : NULL;
}

/* The scheme picks the provider (src/registry.c); the provider takes the rest. */
int durq_open(durq **out, const char *url, const durq_options *opts)
{
	durq_provider *p;
	if (!out)
		return durq_error_set(DURQ_EINVAL, "durq_open: out is NULL");
	*out = NULL;
	int rc = durq_provider_new(&p, url, opts);
	return rc < 0 ? rc : durq_open_provider(out, p, opts);
}

int durq_api_enter(durq *db)
{
	if (!db)
		return durq_error_set(DURQ_EINVAL, "durq handle is NULL");
	ck_pr_inc_int(&db->active);
	/* Dekker with durq_close: our increment must be visible before we read closed, and
	 * close's store of closed before it reads active (RMW ops do not order on RMO). */
	ck_pr_fence_atomic_load();
	if (ck_pr_load_int(&db->closed)) {
		durq_api_leave(db);
		return durq_error_set(DURQ_ECLOSED, "durq handle is closed");
	}
	return DURQ_OK;
}

/* The decrement happens under active_mu so that close, which checks active under the same
 * mutex, cannot finish (and durq_free cannot free the handle) while a leaving caller still
 * touches it. */
void durq_api_leave(durq *db)
{
	pthread_mutex_lock(&db->active_mu);
	if (ck_pr_faa_int(&db->active, -1) == 1 && ck_pr_load_int(&db->closed))
		pthread_cond_broadcast(&db->idle_cv);
	pthread_mutex_unlock(&db->active_mu);
}

/* Wake as many fetchers of each channel as things became ready (all for UINT_MAX): one
 * fetcher per item, not a thundering herd of empty claims. A fetcher that was not asleep
 * yet sees the bumped sequence number and claims again instead of sleeping. */
static void wake_channels(durq *db, const unsigned int ready[DURQ_WAKE__COUNT])
{
	pthread_mutex_lock(&db->wake_mu);
	for (int ch = 0; ch < DURQ_WAKE__COUNT; ch++) {
		if (!ready[ch])
			continue;
		db->wake_seq[ch]++;
		uint64_t cap = durq_wake_credit_cap(db, ch);
		uint64_t credit = db->wake_credit[ch] + ready[ch];
		db->wake_credit[ch] = credit < cap ? credit : cap;
		/* worker queues share a channel: a signal could wake a fetcher of another queue,
		 * so work fetchers are all woken; orchestration fetchers are interchangeable */
		if (ch == DURQ_WAKE_WORK || ready[ch] >= 64)
			pthread_cond_broadcast(&db->wake_cv[ch]);
		else
			for (unsigned int i = 0; i < ready[ch]; i++)
				pthread_cond_signal(&db->wake_cv[ch]);
	}
	pthread_mutex_unlock(&db->wake_mu);
}

static void wake_all(durq *db)
{
	const unsigned int all[DURQ_WAKE__COUNT] = {UINT_MAX, UINT_MAX};
	wake_channels(db, all);
}

/* The first caller closes; a concurrent second caller waits until the first is done, so
 * durq_free after any durq_close never frees what the first closer still uses. */
static bool close_claim(durq *db)
{
	pthread_mutex_lock(&db->active_mu);
	bool first = db->close_state == DURQ_CLOSE_OPEN;
	if (first) {
		db->close_state = DURQ_CLOSE_RUNNING;
	} else {
		db->close_waiters++;
		while (db->close_state != DURQ_CLOSE_DONE)
			pthread_cond_wait(&db->closed_cv, &db->active_mu);
		db->close_waiters--;
	}
	pthread_mutex_unlock(&db->active_mu);
	return first;
}

static void close_done(durq *db)
{
	pthread_mutex_lock(&db->active_mu);
	db->close_state = DURQ_CLOSE_DONE;
	pthread_cond_broadcast(&db->closed_cv);
	pthread_mutex_unlock(&db->active_mu);
}

int durq_close(durq *db)
{
	if (!db)
		return durq_error_set(DURQ_EINVAL, "durq_close: handle is NULL");
	if (durq_in_writer())
		return durq_error_set(DURQ_EINVAL, "durq_close called from a durq callback on the "
				      "writing thread; it would wait for itself");
	if (!close_claim(db))
		return DURQ_OK; /* another thread closed it; it is done now */
	ck_pr_store_int(&db->closed, 1);
	ck_pr_fence_memory(); /* see durq_api_enter */
	if (db->committer.started)
		durq_committer_pause(db, 0); /* pending ops must drain, not wait forever */
	wake_all(db);
	pthread_mutex_lock(&db->active_mu); /* long-polling fetchers return ECLOSED */
	while (ck_pr_load_int(&db->active) > 0)
		pthread_cond_wait(&db->idle_cv, &db->active_mu);
	pthread_mutex_unlock(&db->active_mu);
	durq_watch_stop(db); /* before the pool goes: a change refreshes next_due through it */
	durq_publish_remove(db); /* a write: before the committer and the pool go */
	durq_committer_stop(&db->committer); /* drains what is left, joins */
	if (db->committer.conn)
		db->provider->conn_close(db->provider, db->committer.conn);
	db->committer.conn = NULL;
	durq_pool_destroy(&db->pool);
	close_done(db);
	return DURQ_OK;
}

void durq_free(durq *db)
{
	if (!db)
		return;
	durq_close(db);
	handle_release(db);
}

int durq_wake(durq *db)
{
	if (!db)
		return durq_error_set(DURQ_EINVAL, "durq_wake: handle is NULL");
	wake_all(db);
	return DURQ_OK;
}

int64_t durq_message_visible_at(const durq_message *m, int64_t now_ms)
{
	int64_t due = now_ms + (m->delay_ms > 0 ? m->delay_ms : 0);
	return m->visible_at_ms > due ? m->visible_at_ms : due;
}

int64_t durq_work_visible_at(const durq_work *w, int64_t now_ms)
{
	return now_ms + (w->delay_ms > 0 ? w->delay_ms : 0);
}

/* The instances a batch made a turn fetchable for. A fetcher claims a whole instance (all
 * its visible messages), so five activity results for one instance in one batch are one
 * turn to wake a fetcher for, not five. */
typedef struct ready_ids {
	const char *id[256];
	size_t n;
	bool unknown; /* something without an instance id, or more than id[] holds */
} ready_ids;

static void note_id(ready_ids *ids, const char *id)
{
	if (!id || ids->n == sizeof(ids->id) / sizeof(ids->id[0]))
		ids->unknown = true;
	else
		ids->id[ids->n++] = id;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static size_t distinct_ids(ready_ids *ids)
{
	qsort(ids->id, ids->n, sizeof(ids->id[0]), cmp_str);
	size_t distinct = ids->n ? 1 : 0;
	for (size_t i = 1; i < ids->n; i++)
		distinct += strcmp(ids->id[i - 1], ids->id[i]) != 0;
	return distinct;
}

/* Count messages visible now (noting their instances); lower *due for the delayed ones. */
static unsigned int due_msgs(const durq_message *m, size_t n, int64_t now, int64_t *due,
			     ready_ids *ids)
{
	unsigned int vis = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t d = durq_message_visible_at(&m[i], now);
		if (d <= now) {
			vis++;
			note_id(ids, m[i].instance_id);
		} else if (d < *due) {
			*due = d;
		}
	}
	return vis;
}

static unsigned int due_work(const durq_work *w, size_t n, int64_t now, int64_t *due)
{
	unsigned int vis = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t d = durq_work_visible_at(&w[i], now);
		if (d <= now)
			vis++;
		else if (d < *due)
			*due = d;
	}
	return vis;
}

static unsigned int due_abandon(int64_t delay_ms, int64_t now, int64_t *due)
{
	if (delay_ms <= 0)
		return 1;
	if (now + delay_ms < *due)
		*due = now + delay_ms;
	return 0;
}

/* Add to ready[channel] how many things this committed op made fetchable now (each worth
 * waking one fetcher for; ids: the instances of the orchestration ones); later visibility
 * lowers *due. */
static void op_makes_visible(const durq_op *op, int64_t now, int64_t *due,
			     unsigned int ready[DURQ_WAKE__COUNT], ready_ids *ids)
{
	const durq_turn_result *r;
	switch (op->kind) {
	case DURQ_OP_ORCH_ENQUEUE:
		ready[DURQ_WAKE_ORCH] +=
			due_msgs(op->u.orch_enqueue.msgs, op->u.orch_enqueue.n, now, due, ids);
		break;
	case DURQ_OP_WORK_ENQUEUE:
		ready[DURQ_WAKE_WORK] += due_work(op->u.work_enqueue.items, op->u.work_enqueue.n, now, due);
		break;
	case DURQ_OP_ORCH_ACK:
		r = op->u.orch_ack.result;
		ready[DURQ_WAKE_ORCH] += 1; /* lease released: messages that came mid-turn */
		note_id(ids, op->u.orch_ack.instance_id);
		ready[DURQ_WAKE_ORCH] += due_msgs(r->messages, r->n_messages, now, due, ids);
		ready[DURQ_WAKE_WORK] += due_work(r->work, r->n_work, now, due);
		break;
	case DURQ_OP_WORK_ACK:
		if (op->u.work_ack.completion)
			ready[DURQ_WAKE_ORCH] += due_msgs(op->u.work_ack.completion, 1, now, due, ids);
		break;
	case DURQ_OP_ORCH_CLAIM: /* the lease's expiry makes the turn fetchable again */
		if (op->u.orch_claim.out && op->u.orch_claim.out->instance_id &&
		    op->u.orch_claim.out->lease_until_ms < *due)
			*due = op->u.orch_claim.out->lease_until_ms;
		break;
	case DURQ_OP_WORK_CLAIM:
		if (op->u.work_claim.n && op->u.work_claim.items[0].lease_until_ms < *due)
			*due = op->u.work_claim.items[0].lease_until_ms;
		/* G1: when the sessions it holds expire, other owners may take their items */
		if (op->u.work_claim.n && op->u.work_claim.owner_id &&
		    now + op->u.work_claim.session_lock_ms < *due)
			*due = now + op->u.work_claim.session_lock_ms;
		break;
	case DURQ_OP_ORCH_ABANDON:
		if (due_abandon(op->u.orch_abandon.delay_ms, now, due)) {
			ready[DURQ_WAKE_ORCH]++;
			note_id(ids, op->u.orch_abandon.instance_id);
		}
		break;
	case DURQ_OP_WORK_ABANDON:
		ready[DURQ_WAKE_WORK] += due_abandon(op->u.work_abandon.delay_ms, now, due);
		break;
	case DURQ_OP_DEAD_REQUEUE:
		ready[DURQ_WAKE_ORCH]++;
		ids->unknown = true; /* a dead letter's instance, if it is one, is not in the op */
		ready[DURQ_WAKE_WORK]++;
		break;
	default:
		break;
	}
}

bool durq_op_is_claim(const durq_op *op)
{
	return op->kind == DURQ_OP_WORK_CLAIM || op->kind == DURQ_OP_ORCH_CLAIM ||
	       (op->kind == DURQ_OP_HANDLE_STATS && op->u.handle_stats.with_claims);
}

void durq_notify_commit(durq *db, durq_op *const *ops, size_t n, int64_t now)
{
	unsigned int ready[DURQ_WAKE__COUNT] = {0, 0};
	int64_t due = INT64_MAX;
	ready_ids ids = {.n = 0};
	for (size_t i = 0; i < n; i++)
		op_makes_visible(ops[i], now, &due, ready, &ids);
	if (ready[DURQ_WAKE_ORCH] > 1 && !ids.unknown)
		ready[DURQ_WAKE_ORCH] = (unsigned int)distinct_ids(&ids);
	if (due != INT64_MAX) {
		/* a new earliest timer: waiters recompute their deadline (both channels) */
		pthread_mutex_lock(&db->wake_mu);
		if (db->due_refreshing && due < db->due_since)
			db->due_since = due; /* a running refresh's snapshot may miss it */
		if (due < db->next_due_ms) {
			db->next_due_ms = due;
			for (int ch = 0; ch < DURQ_WAKE__COUNT; ch++)
				pthread_cond_broadcast(&db->wake_cv[ch]);
		}
		pthread_mutex_unlock(&db->wake_mu);
	}
	if (ready[DURQ_WAKE_ORCH] || ready[DURQ_WAKE_WORK])
		wake_channels(db, ready);
}

/* One op in its own transaction on conn. */
static int per_op_txn(durq *db, durq_conn *conn, durq_op *op)
{
	uint64_t t0 = durq_clock_mono_ns();
	durq_op *one[1] = {op};
	int rc = db->provider->txn_begin(conn, durq_op_is_claim(op) ? DURQ_TXN_NO_FLUSH : 0);
	if (rc < 0)
		return rc;
	durq_op_ctx ctx = {durq_clock_now(db), db->opts.max_attempts};
	rc = db->provider->op_apply(conn, op, &ctx);
	if (rc >= 0 || rc == DURQ_EMPTY) {
		/* the stats publication, if one is due, rides in this transaction */
		int pub = op->kind < DURQ_OP__COUNT &&
			  durq_publish_apply(db, conn, &ctx, durq_op_is_claim(op));
		int crc = db->provider->txn_commit(conn);
		if (pub)
			durq_publish_done(db, crc, durq_error_last());
		if (crc == DURQ_OK) {
			/* the caller's op: a publication riding along is not counted */
			durq_stats_txn(&db->counters, 1, durq_clock_mono_ns() - t0, 1);
			durq_notify_commit(db, one, 1, ctx.now_ms);
			return rc;
		}
		rc = crc;
	}
	char msg[DURQ_ERRMSG_MAX];
	durq_error_copy(msg, sizeof(msg));
	durq_op_discard_outputs(op);
	db->provider->txn_rollback(conn);
	return durq_error_set(rc, "%s", msg);
}

/* ops[0..n) in one transaction (flags: DURQ_TXN_*) through the batch method; each op's
 * result in res. The first `counted` ops are the caller's: the transaction counts them and
 * wakes fetchers for them; the rest ride along (the stats publication). Returns DURQ_OK once
 * committed (a failed op's outputs dropped), else the transaction's error (no op took
 * effect, every output dropped). */
static int batch_txn(durq *db, durq_conn *conn, durq_op *const *ops, durq_op_result *res,
		     size_t n, size_t counted, unsigned int flags)
{
	uint64_t t0 = durq_clock_mono_ns();
	char msg[DURQ_ERRMSG_MAX];
	int rc = db->provider->txn_begin(conn, flags);
	if (rc < 0)
		return rc;
	durq_op_ctx ctx = {durq_clock_now(db), db->opts.max_attempts};
	durq_error_clear();
	rc = db->provider->op_apply_batch(conn, ops, res, n, &ctx);
	if (rc == DURQ_OK && (rc = db->provider->txn_commit(conn)) == DURQ_OK) {
		durq_stats_txn(&db->counters, counted, durq_clock_mono_ns() - t0, 1);
		durq_op *done[n];
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (res[i].rc >= 0 && i < counted)
				done[k++] = ops[i];
			else if (res[i].rc < 0 && res[i].rc != DURQ_EMPTY)
				durq_op_discard_outputs(ops[i]);
		}
		durq_notify_commit(db, done, k, ctx.now_ms);
		return DURQ_OK;
	}
	durq_error_copy(msg, sizeof(msg));
	for (size_t i = 0; i < n; i++)
		durq_op_discard_outputs(ops[i]);
	db->provider->txn_rollback(conn);
	return durq_error_set(rc, "%s", msg);
}

/* A claim of group mode run beside the batch (see via_committer): one transaction through
 * the provider's batch method when it has one, which may send the COMMIT with the op (one
 * round trip on PostgreSQL instead of two). */
static int claim_txn(durq *db, durq_conn *conn, durq_op *op)
{
	if (!db->provider->op_apply_batch)
		return per_op_txn(db, conn, op);
	durq_op pub, *ops[2] = {op, &pub}; /* the stats publication, if due, rides along */
	durq_op_result res[2] = {{0}};
	size_t n = durq_publish_take(db, &pub, true) ? 2 : 1;
	int rc = batch_txn(db, conn, ops, res, n, 1, DURQ_TXN_NO_FLUSH);
	char msg[DURQ_ERRMSG_MAX];
	durq_error_copy(msg, sizeof(msg));
	if (n > 1)
		durq_publish_done(db, rc == DURQ_OK ? res[1].rc : rc,
				  rc == DURQ_OK ? res[1].message : msg);
	if (rc < 0)
		return durq_error_set(rc, "%s", msg);
	if (res[0].rc >= 0 || res[0].rc == DURQ_EMPTY)
		return res[0].rc;
	return durq_error_set(res[0].rc, "%s", res[0].message);
}

bool durq_claims_beside(const durq *db)
{
	return db->opts.commit_mode == DURQ_COMMIT_GROUP &&
	       (db->provider->flags & DURQ_PROVIDER_CONCURRENT_WRITERS) &&
	       db->provider->op_apply_batch;
}

int durq_exec_beside(durq *db, durq_op *const *ops, durq_op_result *res, size_t n)
{
	durq_conn *conn;
	if (durq_in_writer())
		return durq_error_set(DURQ_EINVAL, "durq write called from a durq callback (log) on "
				      "the writing thread; it would wait for itself");
	int rc = durq_pool_checkout(&db->pool, &conn);
	if (rc < 0)
		return rc;
	durq_writer_enter();
	rc = batch_txn(db, conn, ops, res, n, n, 0);
	durq_writer_leave();
	durq_pool_checkin(&db->pool, conn, rc == DURQ_EIO || rc == DURQ_ECORRUPT);
	for (size_t i = 0; i < n; i++)
		durq_stats_op(&db->counters, ops[i]->kind, rc == DURQ_OK ? res[i].rc : rc);
	return rc;
}

/* The classic approach: one BEGIN IMMEDIATE per op on the caller's thread; waits for the
 * write lock are the provider's busy handler (backoff + jitter, counted). Kept for the
 * bench's side-by-side comparison. The thread is a writer meanwhile (see durq_in_writer). */
int durq_exec_per_op(durq *db, durq_conn *conn, durq_op *op)
{
	durq_writer_enter();
	int rc = per_op_txn(db, conn, op);
	durq_writer_leave();
	return rc;
}

/* Thread-local, like the error message: set while this thread runs a write transaction. */
static _Thread_local int in_writer;

void durq_writer_enter(void)
{
	in_writer++;
}

void durq_writer_leave(void)
{
	in_writer--;
}

bool durq_in_writer(void)
{
	return in_writer > 0;
}

/* Group mode sends every write through the committer, but a provider whose database takes
 * concurrent writers runs claims on the caller's own connection (see
 * DURQ_PROVIDER_CONCURRENT_WRITERS): a claim needs no flush, so group commit buys it
 * nothing, and beside the batch it waits for no one. */
static bool via_committer(const durq *db, const durq_op *op)
{
	if (db->opts.commit_mode != DURQ_COMMIT_GROUP)
		return false;
	return !((db->provider->flags & DURQ_PROVIDER_CONCURRENT_WRITERS) && durq_op_is_claim(op));
}

int durq_exec(durq *db, durq_op *op)
{
	int rc;
	if (durq_in_writer())
		return durq_error_set(DURQ_EINVAL, "durq write called from a durq callback (log) on "
				      "the writing thread; it would wait for itself");
	if (via_committer(db, op)) {
		if (op->kind < DURQ_OP__COUNT) /* a stats publication, if due, goes just ahead */
			durq_publish_post(db, durq_op_is_claim(op));
		durq_pending *p = calloc(1, sizeof(*p));
		if (!p)
			return durq_error_set(DURQ_ENOMEM, "out of memory");
		p->op = *op;
		rc = durq_committer_submit(&db->committer, p);
		*op = p->op;
		free(p);
		return rc;
	}
	durq_conn *conn;
	if ((rc = durq_pool_checkout(&db->pool, &conn)) < 0)
		return rc;
	if (db->opts.commit_mode == DURQ_COMMIT_GROUP) { /* a claim beside the batch */
		durq_writer_enter();
		rc = claim_txn(db, conn, op);
		durq_writer_leave();
	} else {
		rc = durq_exec_per_op(db, conn, op);
	}
	durq_pool_checkin(&db->pool, conn, rc == DURQ_EIO || rc == DURQ_ECORRUPT);
	durq_stats_op(&db->counters, op->kind, rc);
	return rc;
}
