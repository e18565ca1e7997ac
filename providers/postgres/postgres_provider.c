/*
 * postgres_provider.c — the PostgreSQL provider's plumbing: the factory for
 * "postgresql://" / "postgres://" URLs (handed to libpq as they are; PG* environment
 * variables apply), connections (session settings, the schema at first connect, every
 * statement prepared once per session in one round trip, reconnection of a broken session
 * that holds no transaction; pool connections connect at first use), transactions, the
 * pipelined batch, LISTEN/NOTIFY, stats.
 *
 * Transactions run at READ COMMITTED. BEGIN is deferred: it travels with the first
 * statement, so an op in per-op mode costs two round trips (BEGIN + op, then COMMIT) and a
 * group-commit batch one (BEGIN + all ops + NOTIFY + COMMIT: see pg_op_apply_batch).
 * DURQ_TXN_NO_FLUSH (claims only) sets synchronous_commit off for that transaction (and
 * bitmap scans off: see PG_CLAIM_TXN in postgres_schema.c).
 *
 * A batch is one pipeline of runs: consecutive acks, renews or abandons of distinct work
 * items, or enqueues of one kind, are one statement with array parameters; any other op is
 * one statement (postgres_schema.c). Each refuses without writing (stale token...), so no
 * savepoints are needed. Only an SQL error of a run's own (bad UTF-8, deadlock, lock
 * timeout) aborts the transaction: then the transaction is rolled back and replayed in a new
 * one, in which a run of several ops goes one op at a time and a single op that failed is
 * failed — each replay fails one more op or splits one more run, so it ends. Claims that
 * dead-lettered items and have room left run another round. A session that dies before
 * COMMIT was sent loses only an uncommitted transaction: it is reconnected and the
 * transaction sent again, once; after that the batch fails with EIO. If COMMIT was sent and
 * no answer came back, the outcome is unknown: EIO, and the message says so.
 *
 * NOTIFY: a transaction that made work visible (or took a lease, whose expiry does) sends
 * NOTIFY durq, '<this provider's id>' before COMMIT (delivered at commit); see
 * pg_op_wakes_others for why plain acks and renewals do not. change_wait LISTENs on the
 * watch connection and reports only notifications of other provider instances (other
 * handles or processes): the core already knows about its own commits.
 *
 * Messages name host, port and database, never the URL or a password.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "postgres_internal.h"
#include "postgres_provider.h"

/* ---- messages ---------------------------------------------------------------------------- */

/* "host:port/db" of a session, for messages. */
static void where(const pg_conn *c, char *buf, size_t len)
{
	const char *h = c->pg ? PQhost(c->pg) : NULL, *port = c->pg ? PQport(c->pg) : NULL;
	const char *db = c->pg ? PQdb(c->pg) : NULL;
	snprintf(buf, len, "%s:%s/%s", h && *h ? h : "(default host)",
		 port && *port ? port : "(default port)", db && *db ? db : "(default database)");
}

static int connect_error(pg_conn *c)
{
	char msg[384], at[256];
	if (!c->pg)
		return durq_error_set(DURQ_ENOMEM, "postgresql: out of memory connecting");
	pg_message(c->p, PQerrorMessage(c->pg), msg, sizeof(msg));
	where(c, at, sizeof(at));
	pg_redact(c->p, at, sizeof(at));
	return durq_error_set(DURQ_EIO, "postgresql: cannot connect to %s: %s", at, msg);
}

/* Notices (e.g. "relation already exists, skipping") go to the log, never to stderr. */
static void notice(void *arg, const char *message)
{
	pg_provider *p = arg;
	char msg[384];
	pg_message(p, message, msg, sizeof(msg));
	durq_log_emit(p->opts, DURQ_LOG_DEBUG, "PG", "%s", msg);
}

/* ---- sessions ------------------------------------------------------------------------------ */

static int session_sync_off(const pg_provider *p)
{
	return p->opts->synchronous == DURQ_SYNC_OFF || p->opts->synchronous == DURQ_SYNC_NORMAL;
}

/* Session settings: our lock-wait budget, UTF-8, and synchronous_commit off when the
 * caller asked for OFF or NORMAL (PostgreSQL has no middle level). Numbers only. */
static int session_setup(pg_conn *c)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "SET lock_timeout = %d; SET client_encoding = 'UTF8'%s",
		 c->p->opts->busy_timeout_ms,
		 session_sync_off(c->p) ? "; SET synchronous_commit = off" : "");
	PGresult *r = PQexec(c->pg, sql);
	int rc = pg_ok(r) ? DURQ_OK : pg_error(c, r, "session settings");
	PQclear(r);
	return rc;
}

/* Every statement of the table, in one pipeline. */
static int prepare_all(pg_conn *c)
{
	int rc = pg_pipe_start(c);
	if (rc < 0)
		return rc;
	for (int i = 0; i < PG__COUNT; i++)
		if (!PQsendPrepare(c->pg, pg_stmt_name(i), pg_stmt_sql(i), 0, NULL)) {
			rc = pg_error(c, NULL, "prepare");
			pg_pipe_abandon(c);
			return rc;
		}
	if ((rc = pg_pipe_sync(c)) < 0)
		return rc;
	for (int i = 0; i < PG__COUNT; i++) {
		PGresult *r = pg_pipe_next(c);
		if (!r)
			return DURQ_EIO;
		if (rc == DURQ_OK && !pg_ok(r))
			rc = pg_error(c, r, pg_stmt_name(i));
		PQclear(r);
	}
	int frc = pg_pipe_finish(c);
	return rc < 0 ? rc : frc;
}

static int listen_start(pg_conn *c)
{
	PGresult *r = PQexec(c->pg, "LISTEN " PG_NOTIFY_CHANNEL);
	int rc = pg_ok(r) ? DURQ_OK : pg_error(c, r, "LISTEN");
	PQclear(r);
	c->listening = rc == DURQ_OK;
	return rc;
}

static void refresh_db_bytes(pg_conn *c)
{
	PGresult *r;
	if (pg_exec(c, PG_DB_SIZE, NULL, "database size", &r) < 0)
		return;
	if (PQntuples(r) == 1)
		atomic_store(&c->p->db_bytes, (uint64_t)pg_i64(r, 0, 0));
	atomic_store(&c->p->db_bytes_at_ms, (int64_t)(durq_clock_mono_ns() / 1000000));
	PQclear(r);
}

/* The schema once per provider (the first connection of a handle). */
static int schema_once(pg_conn *c)
{
	int rc = DURQ_OK;
	pthread_mutex_lock(&c->p->schema_mu);
	if (!c->p->schema_ready && (rc = pg_schema_ensure(c)) == DURQ_OK &&
	    (rc = pg_handle_stats_ensure(c)) == DURQ_OK)
		c->p->schema_ready = 1;
	pthread_mutex_unlock(&c->p->schema_mu);
	return rc;
}

static void log_config(pg_conn *c)
{
	char at[256];
	if (atomic_exchange(&c->p->config_logged, 1))
		return;
	where(c, at, sizeof(at));
	pg_redact(c->p, at, sizeof(at));
	durq_log_emit(c->p->opts, DURQ_LOG_INFO, "CONFIG", "postgresql: %s (server %d, protocol "
		      "%d), READ COMMITTED, lock_timeout=%d ms, synchronous_commit=%s, pipelined "
		      "batches, LISTEN/NOTIFY channel '%s'", at, PQserverVersion(c->pg),
		      PQprotocolVersion(c->pg), c->p->opts->busy_timeout_ms,
		      session_sync_off(c->p) ? "off" : "server default", PG_NOTIFY_CHANNEL);
}

static int session_open(pg_conn *c)
{
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {c->p->conninfo, "durq", NULL};
	int rc;
	c->pg = PQconnectdbParams(keys, vals, 1);
	if (!c->pg || PQstatus(c->pg) != CONNECTION_OK)
		return connect_error(c);
	PQsetNoticeProcessor(c->pg, notice, c->p);
	if ((rc = session_setup(c)) < 0 || (rc = schema_once(c)) < 0 ||
	    (rc = prepare_all(c)) < 0)
		return rc;
	if (c->role == DURQ_CONN_WATCH && (rc = listen_start(c)) < 0)
		return rc;
	if (!atomic_load(&c->p->db_bytes_at_ms))
		refresh_db_bytes(c);
	log_config(c);
	return DURQ_OK;
}

static void session_close(pg_conn *c)
{
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	c->in_pipeline = 0;
	c->listening = 0;
	c->n_prefix = 0;
}

int pg_conn_ensure(pg_conn *c)
{
	if (!pg_conn_broken(c))
		return DURQ_OK;
	if (c->txn != PG_TXN_NONE)
		return pg_error(c, NULL, "transaction");
	int had = c->pg != NULL; /* else: a pool connection's first use */
	session_close(c);
	int rc = session_open(c);
	if (rc < 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", durq_error_last());
		session_close(c);
		return durq_error_set(rc, "%s", msg);
	}
	if (had)
		durq_log_emit(c->p->opts, DURQ_LOG_WARN, "POOL", "postgresql: reconnected a "
			      "broken session");
	return DURQ_OK;
}

/* ---- connections ------------------------------------------------------------------------ */

static void conn_free(pg_conn *c)
{
	if (!c)
		return;
	session_close(c);
	if (c->cancel_fd >= 0)
		close(c->cancel_fd);
	free(c);
}

static int pg_conn_open(durq_provider *prov, durq_conn **out, int role)
{
	pg_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	c->base.provider = prov;
	c->p = (pg_provider *)prov;
	c->role = role;
	c->cancel_fd = role == DURQ_CONN_WATCH ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
	if (role == DURQ_CONN_WATCH && c->cancel_fd < 0) {
		free(c);
		return durq_error_set(DURQ_EIO, "postgresql: eventfd: %s", strerror(errno));
	}
	/* pool connections connect at first use (pg_conn_ensure): a handle costs the server
	 * the sessions it uses, and opening one does not fork pool_size backends */
	int rc = role == DURQ_CONN_READ ? DURQ_OK : session_open(c);
	if (rc < 0) {
		conn_free(c);
		return rc;
	}
	*out = &c->base;
	return DURQ_OK;
}

static void pg_conn_close(durq_provider *prov, durq_conn *conn)
{
	(void)prov;
	conn_free(pg_conn_of(conn));
}

/* Pool liveness: PQconsumeInput notices a session the server closed; a connection must
 * come back with no transaction open. */
static int pg_conn_check(durq_conn *conn)
{
	pg_conn *c = pg_conn_of(conn);
	if (!c->pg && c->txn == PG_TXN_NONE)
		return DURQ_OK; /* not connected yet (or dropped): connects at its next use */
	if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
		PQconsumeInput(c->pg);
	if (pg_conn_broken(c))
		return pg_error(c, NULL, "connection check");
	if (c->txn != PG_TXN_NONE || c->in_pipeline ||
	    PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
		session_close(c);
		c->txn = PG_TXN_NONE;
		return durq_error_set(DURQ_EIO, "postgresql: connection returned with an open "
				      "transaction");
	}
	return DURQ_OK;
}

/* ---- transactions --------------------------------------------------------------------------- */

/* BEGIN (and the settings of a claims-only transaction) go with the first statement. */
static int begin_deferred(pg_conn *c, unsigned int flags)
{
	c->n_prefix = 0;
	c->notify = 0;
	c->commit_sent = 0;
	c->committed = 0;
	c->txn_flags = flags;
	c->txn = PG_TXN_PENDING;
	int rc = pg_prefix_add(c, PG_BEGIN);
	if (rc == DURQ_OK && (flags & DURQ_TXN_NO_FLUSH))
		rc = pg_prefix_add(c, PG_CLAIM_TXN);
	else if (rc == DURQ_OK && (flags & DURQ_TXN_DEFER_FLUSH))
		rc = pg_prefix_add(c, PG_DEFER_TXN);
	return rc;
}

/*
 * Deferred flush (DURQ_PROVIDER_DEFERRED_FLUSH). A batch's transaction sets
 * synchronous_commit off for itself (PG_DEFER_TXN rides with BEGIN), so its COMMIT answers
 * as soon as the commit record is in the WAL buffers: the committer sends the next batch
 * while the server flushes. pg_flush runs on the core's flush thread, on a session of its
 * own: PG_FLUSH commits a WAL record with synchronous_commit on, which flushes the WAL up to
 * it and so every commit acknowledged before it was sent (the WAL is one ordered log). A
 * server that crashes loses unflushed commits: the flush fails, and the core reports those
 * ops DURQ_EIO (outcome unknown) until pg_flush_recover, the same flush on a fresh session,
 * succeeded.
 */
static int flush_on(pg_provider *p)
{
	int rc = DURQ_OK;
	if (!p->flusher) {
		durq_conn *d;
		if ((rc = p->base.conn_open(&p->base, &d, DURQ_CONN_READ)) < 0)
			return rc;
		p->flusher = pg_conn_of(d);
	}
	PGresult *r;
	if ((rc = pg_conn_ensure(p->flusher)) == DURQ_OK &&
	    (rc = pg_exec(p->flusher, PG_FLUSH, NULL, "flush", &r)) == DURQ_OK)
		PQclear(r);
	return rc < 0 && rc != DURQ_ENOMEM ? durq_error_set(DURQ_EIO, "%s", durq_error_last()) : rc;
}

static int pg_flush(durq_conn *conn)
{
	pg_provider *p = pg_conn_of(conn)->p;
	pthread_mutex_lock(&p->flush_mu);
	int rc = flush_on(p);
	pthread_mutex_unlock(&p->flush_mu);
	return rc;
}

/* The flush on a new session: a dead one's state tells nothing. */
static int pg_flush_recover(durq_conn *conn)
{
	pg_provider *p = pg_conn_of(conn)->p;
	pthread_mutex_lock(&p->flush_mu);
	if (p->flusher)
		p->base.conn_close(&p->base, &p->flusher->base);
	p->flusher = NULL;
	int rc = flush_on(p);
	pthread_mutex_unlock(&p->flush_mu);
	return rc;
}

static int pg_txn_begin(durq_conn *conn, unsigned int flags)
{
	pg_conn *c = pg_conn_of(conn);
	int rc = pg_conn_ensure(c);
	if (rc < 0)
		return rc;
	return begin_deferred(c, flags);
}

static int commit_lost(pg_conn *c)
{
	char at[256] = "the server"; /* the session may be gone already */
	if (c->pg)
		where(c, at, sizeof(at));
	pg_redact(c->p, at, sizeof(at));
	pg_pipe_abandon(c);
	return durq_error_set(DURQ_EIO, "postgresql: COMMIT was sent to %s but the connection "
			      "failed before the answer: the outcome is unknown (the transaction "
			      "may have committed)", at);
}

/* The answer to COMMIT: "COMMIT", or "ROLLBACK" when the transaction had failed. */
static int commit_result(pg_conn *c)
{
	PGresult *r = pg_pipe_next(c);
	if (!r)
		return commit_lost(c);
	int rc = DURQ_OK;
	if (!pg_ok(r))
		rc = pg_conn_broken(c) ? commit_lost(c) : pg_error(c, r, "COMMIT");
	else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
		rc = durq_error_set(DURQ_EIO, "postgresql: COMMIT: the server rolled the "
				    "transaction back (an earlier statement failed)");
	PQclear(r);
	return rc;
}

static int send_notify(pg_conn *c)
{
	pg_params p;
	pg_params_init(&p);
	pg_param_text(&p, c->p->instance_id);
	return pg_pipe_send(c, PG_NOTIFY, &p);
}

static int pg_txn_commit(durq_conn *conn)
{
	pg_conn *c = pg_conn_of(conn);
	if (c->committed) { /* COMMIT went with the batch (pg_op_apply_batch) */
		c->committed = 0;
		return DURQ_OK;
	}
	if (c->txn == PG_TXN_PENDING) { /* nothing was sent: there is nothing to commit */
		c->txn = PG_TXN_NONE;
		c->n_prefix = 0;
		return DURQ_OK;
	}
	int n = pg_pipe_start(c), rc;
	int notify = c->notify;
	if (n < 0 || (notify && (rc = send_notify(c)) < 0) ||
	    (rc = pg_pipe_send(c, PG_COMMIT, NULL)) < 0 || (rc = pg_pipe_sync(c)) < 0) {
		rc = pg_error(c, NULL, "COMMIT (not sent)");
		if (c->pg && c->in_pipeline)
			pg_pipe_abandon(c); /* the server rolls the transaction back */
		return rc;
	}
	rc = pg_pipe_prefix_results(c, n);
	if (notify) {
		PGresult *r = pg_pipe_next(c);
		if (!r)
			return commit_lost(c);
		if (rc == DURQ_OK && !pg_ok(r))
			rc = pg_error(c, r, "NOTIFY");
		PQclear(r);
	}
	int crc = commit_result(c);
	if (!c->pg)
		return crc;
	int frc = pg_pipe_finish(c);
	if (crc == DURQ_OK && rc == DURQ_OK && frc == DURQ_OK)
		c->txn = PG_TXN_NONE;
	return rc < 0 ? rc : crc < 0 ? crc : frc;
}

static int pg_txn_rollback(durq_conn *conn)
{
	pg_conn *c = pg_conn_of(conn);
	int was = c->txn;
	c->txn = PG_TXN_NONE;
	c->n_prefix = 0;
	c->notify = 0;
	c->committed = 0;
	if (was != PG_TXN_OPEN)
		return DURQ_OK; /* BEGIN was never sent */
	if (c->in_pipeline)
		pg_pipe_abandon(c);
	if (pg_conn_broken(c))
		return DURQ_OK; /* the server rolls back a transaction whose session ends */
	PGresult *r = PQexec(c->pg, "ROLLBACK");
	int rc = pg_ok(r) ? DURQ_OK : pg_error(c, r, "ROLLBACK");
	PQclear(r);
	return rc;
}

static int pg_op_begin(durq_conn *conn)
{
	pg_conn *c = pg_conn_of(conn);
	if (c->txn == PG_TXN_NONE)
		return durq_error_set(DURQ_EINVAL, "postgresql: op_begin outside a transaction");
	return pg_prefix_add(c, PG_SAVEPOINT);
}

static int pg_op_end(durq_conn *conn, int keep)
{
	pg_conn *c = pg_conn_of(conn);
	int rc = keep ? DURQ_OK : pg_prefix_add(c, PG_ROLLBACK_TO);
	return rc < 0 ? rc : pg_prefix_add(c, PG_RELEASE);
}

/* ---- applying ops: one pipeline per round -------------------------------------------------- */

enum { SLOT_SEND = 0, SLOT_DONE, SLOT_FAILED };

typedef struct pg_slot {
	durq_op *op;
	pg_opstate st; /* of the run this slot leads */
	int state;
	int rc;
	int send_rc; /* building or sending the run failed */
	int solo;    /* sent alone from now on: its run failed as a whole */
	int sealed;  /* its result was committed by an earlier transaction of the batch */
	size_t kept; /* a claim's items committed by an earlier transaction of the batch */
	char msg[sizeof(((durq_op_result *)0)->message)];
} pg_slot;

/* A round's view of the slots still to send, in order: runs are ranges of it. */
typedef struct pg_round {
	size_t m;
	size_t *idx;        /* slot of each */
	durq_op **ops;      /* its op */
	size_t *run;        /* at a run's first entry: its length */
	durq_op_result *res;
} pg_round;

enum { ROUND_DONE = 0, ROUND_MORE = 1, ROUND_REBUILD = 2 };

static void slot_result(pg_slot *s, int state, int rc, const char *msg)
{
	s->state = state;
	s->rc = rc;
	snprintf(s->msg, sizeof(s->msg), "%s", rc < 0 && rc != DURQ_EMPTY ? msg : "");
}

static int round_alloc(pg_round *r, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->idx = calloc(n ? n : 1, sizeof(*r->idx));
	r->ops = calloc(n ? n : 1, sizeof(*r->ops));
	r->run = calloc(n ? n : 1, sizeof(*r->run));
	r->res = calloc(n ? n : 1, sizeof(*r->res));
	if (r->idx && r->ops && r->run && r->res)
		return DURQ_OK;
	free(r->idx);
	free(r->ops);
	free(r->run);
	free(r->res);
	return durq_error_set(DURQ_ENOMEM, "out of memory");
}

static void round_free(pg_round *r)
{
	free(r->idx);
	free(r->ops);
	free(r->run);
	free(r->res);
}

/* The slots to send, cut into runs (postgres_ops.c); a solo slot is a run of one. */
static void plan_runs(pg_round *r, pg_slot *s, size_t n)
{
	r->m = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i].state == SLOT_SEND) {
			r->idx[r->m] = i;
			r->ops[r->m++] = s[i].op;
		}
	for (size_t a = 0, len; a < r->m; a += len) {
		len = s[r->idx[a]].solo ? 1 : pg_run_len(r->ops + a, r->m - a);
		for (size_t k = 1; k < len; k++)
			if (s[r->idx[a + k]].solo) { /* it goes alone: the run ends before it */
				len = k;
				break;
			}
		r->run[a] = len;
	}
}

static void send_runs(pg_conn *c, pg_slot *s, pg_round *r, const durq_op_ctx *ctx)
{
	for (size_t a = 0; a < r->m && !pg_conn_broken(c); a += r->run[a]) {
		pg_slot *lead = &s[r->idx[a]];
		lead->send_rc = pg_run_send(c, r->ops + a, r->run[a], ctx, &lead->st);
		if (lead->send_rc < 0)
			snprintf(lead->msg, sizeof(lead->msg), "%s", durq_error_last());
	}
}

static void drain(pg_conn *c, int n)
{
	for (int k = 0; k < n && c->pg; k++) {
		PGresult *r = pg_pipe_next(c);
		PQclear(r);
	}
}

/* The ops of a run that failed as a whole go one by one after the rebuild: which of them
 * failed is then known, and it fails alone. */
static int run_to_solo(pg_slot *s, const pg_round *r, size_t a)
{
	for (size_t k = 0; k < r->run[a]; k++)
		s[r->idx[a + k]].solo = 1;
	return 1;
}

/* A claim that already holds items committed by an earlier transaction of the batch (it
 * was refilling after dead letters) and now failed: it ends with those items. */
static int seal_claim(pg_slot *s)
{
	pg_op_discard_from(s->op, s->kept);
	s->sealed = 1;
	slot_result(s, SLOT_DONE, DURQ_OK, "");
	return 1;
}

/* One run's results. Returns < 0 on a fatal error, 1 if the transaction must be rebuilt. */
static int recv_run(pg_conn *c, pg_slot *s, pg_round *r, size_t a, const durq_op_ctx *ctx)
{
	size_t len = r->run[a];
	pg_slot *lead = &s[r->idx[a]];
	int local = PG_SQL_NONE;
	if (lead->send_rc < 0) { /* what was sent of it runs: a trace to roll back */
		drain(c, lead->st.n_stmts);
		if (len > 1)
			return run_to_solo(s, r, a); /* again in order, after the rebuild */
		if (lead->kept > 0)
			return seal_claim(lead) && lead->st.n_stmts > 0;
		lead->state = SLOT_FAILED;
		lead->rc = lead->send_rc;
		return lead->st.n_stmts > 0;
	}
	int rc = pg_run_recv(c, r->ops + a, len, ctx, &lead->st, r->res + a, &local);
	if (local == PG_SQL_FATAL)
		return rc < 0 ? rc : DURQ_EIO;
	if (local == PG_SQL_LOCAL) {
		if (len > 1)
			return run_to_solo(s, r, a);
		if (lead->kept > 0)
			return seal_claim(lead);
		slot_result(lead, SLOT_FAILED, rc, durq_error_last());
		return 1;
	}
	if (rc == PG_AGAIN)
		return 0; /* stays to send: another round */
	for (size_t k = 0; k < len; k++)
		slot_result(&s[r->idx[a + k]], SLOT_DONE, r->res[a + k].rc, r->res[a + k].message);
	return 0;
}

/* After a failure once the sync was sent: read to its end if the session still works
 * (the transaction stays, for the core to roll back), else drop the session. */
static int bail(pg_conn *c, int rc)
{
	if (c->pg && c->in_pipeline && !pg_conn_broken(c)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", durq_error_last());
		if (pg_pipe_finish(c) == DURQ_OK)
			return durq_error_set(rc, "%s", msg);
	}
	if (c->pg && c->in_pipeline)
		pg_pipe_abandon(c);
	return rc;
}

/* The session died (or went out of step) after COMMIT was sent: whether the transaction
 * committed is unknown. */
static int commit_unknown(pg_conn *c, int rc)
{
	if (!c->commit_sent || (c->pg && !pg_conn_broken(c)))
		return rc;
	c->txn = PG_TXN_NONE;
	return commit_lost(c);
}

/* round_trip's close: whether the pipeline ends the transaction (see pg_op_apply_batch) */
enum { CLOSE_NO = 0, CLOSE_COMMIT = 1, CLOSE_NOTIFY = 2 };

/* The end of a batch's pipeline that carries its COMMIT: NOTIFY if asked, COMMIT. Not after
 * a run that failed to send: what was sent of it must not commit. */
static int send_tail(pg_conn *c, const pg_slot *s, const pg_round *r, int close, int *tail)
{
	int rc;
	*tail = 0;
	for (size_t a = 0; a < r->m; a += r->run[a])
		if (s[r->idx[a]].send_rc < 0)
			return DURQ_OK; /* txn_commit commits, after the rebuild */
	if (close == CLOSE_NOTIFY) {
		if ((rc = send_notify(c)) < 0)
			return rc;
		(*tail)++;
	}
	if ((rc = pg_pipe_send(c, PG_COMMIT, NULL)) < 0)
		return rc;
	c->commit_sent = 1;
	(*tail)++;
	return DURQ_OK;
}

/* The tail's results: the transaction is over, committed or not. */
static int tail_results(pg_conn *c, int tail)
{
	int rc = DURQ_OK;
	if (tail > 1) {
		PGresult *r = pg_pipe_next(c);
		if (!r)
			return commit_lost(c);
		if (!pg_ok(r))
			rc = pg_error(c, r, "NOTIFY");
		PQclear(r);
	}
	int crc = commit_result(c);
	c->txn = PG_TXN_NONE;
	return rc < 0 ? rc : crc;
}

/* Send every slot still to send, in runs, with the deferred prefix, in one pipeline (close:
 * CLOSE_*, with the COMMIT); read back. */
static int round_trip(pg_conn *c, pg_slot *s, size_t n, pg_round *r, const durq_op_ctx *ctx,
		      int close)
{
	int n_prefix = pg_pipe_start(c), rc, rebuild = 0, more = 0, tail = 0;
	if (n_prefix < 0) {
		if (c->pg && c->in_pipeline)
			pg_pipe_abandon(c);
		return n_prefix;
	}
	plan_runs(r, s, n);
	send_runs(c, s, r, ctx);
	if ((close && !pg_conn_broken(c) && (rc = send_tail(c, s, r, close, &tail)) < 0) ||
	    (rc = pg_pipe_sync(c)) < 0) {
		if (c->commit_sent) { /* part of the pipeline may have gone out, COMMIT too */
			c->txn = PG_TXN_NONE;
			return commit_lost(c); /* drops the session */
		}
		if (c->pg)
			pg_pipe_abandon(c); /* the transaction is gone with the session */
		return rc;
	}
	if ((rc = pg_pipe_prefix_results(c, n_prefix)) < 0)
		return commit_unknown(c, bail(c, rc));
	for (size_t a = 0; a < r->m; a += r->run[a]) {
		if (rebuild) { /* aborted by the failed run: replayed after the rebuild */
			drain(c, s[r->idx[a]].st.n_stmts);
			continue;
		}
		if ((rc = recv_run(c, s, r, a, ctx)) < 0)
			return commit_unknown(c, bail(c, rc));
		rebuild = rc;
		more |= s[r->idx[a]].state == SLOT_SEND;
	}
	if (tail && rebuild) {
		drain(c, tail); /* not run: the transaction is aborted */
		c->commit_sent = 0;
	} else if (tail) {
		if ((rc = tail_results(c, tail)) < 0)
			return c->pg ? bail(c, rc) : rc;
		c->committed = 1;
	}
	if ((rc = pg_pipe_finish(c)) < 0)
		return commit_unknown(c, rc);
	return rebuild ? ROUND_REBUILD : more ? ROUND_MORE : ROUND_DONE;
}

/* Every op neither failed nor committed is to be sent afresh (what it filled in this
 * transaction freed). */
static void resend(pg_slot *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i].sealed || s[i].state == SLOT_FAILED)
			continue;
		pg_op_discard_from(s[i].op, s[i].kept);
		s[i].state = SLOT_SEND;
	}
}

/* Roll back and begin again. */
static int rebuild(pg_conn *c, pg_slot *s, size_t n)
{
	resend(s, n);
	unsigned int flags = c->txn_flags;
	int rc = pg_txn_rollback(&c->base);
	if (rc < 0)
		return rc;
	return begin_deferred(c, flags);
}

/* The session died before COMMIT was sent: the server discards the transaction, so it is
 * safe to reconnect and send it all again (once per call). */
static int reconnect_replay(pg_conn *c, pg_slot *s, size_t n)
{
	unsigned int flags = c->txn_flags;
	resend(s, n);
	if (c->pg)
		pg_pipe_abandon(c);
	c->txn = PG_TXN_NONE;
	int rc = pg_txn_begin(&c->base, flags); /* reconnects */
	if (rc == DURQ_OK)
		durq_log_emit(c->p->opts, DURQ_LOG_WARN, "RETRY", "postgresql: the session died "
			      "before COMMIT; reconnected, sending the transaction again");
	return rc;
}

/* The round committed, but claims that dead-lettered items want more (PG_AGAIN): what is
 * done stays done, the claims keep their items, and the next round is a new transaction. */
static int next_txn(pg_conn *c, pg_slot *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i].state != SLOT_SEND)
			s[i].sealed = 1;
		else if (s[i].op->kind == DURQ_OP_WORK_CLAIM)
			s[i].kept = s[i].op->u.work_claim.n;
	}
	return begin_deferred(c, c->txn_flags);
}

/* Rounds until every slot is done or failed. replay: a failed op's own error rolls the
 * transaction back and the others run again (a batch; a run that failed as a whole runs
 * again one op at a time); else the round's result stands. */
static int run_rounds(pg_conn *c, pg_slot *s, size_t n, pg_round *round,
		      const durq_op_ctx *ctx, int replay, int close)
{
	int fresh = c->txn == PG_TXN_PENDING; /* nothing of this transaction sent before */
	for (int i = 0; i < c->n_prefix; i++)
		fresh &= c->prefix[i] == PG_BEGIN || c->prefix[i] == PG_CLAIM_TXN ||
			 c->prefix[i] == PG_DEFER_TXN;
	for (;;) {
		int r = round_trip(c, s, n, round, ctx, close);
		if (r < 0 && fresh && !c->commit_sent && pg_conn_broken(c)) {
			fresh = 0;
			if ((r = reconnect_replay(c, s, n)) == DURQ_OK)
				continue;
		}
		if (r < 0)
			return r;
		if (r == ROUND_DONE)
			return DURQ_OK;
		if (c->committed) { /* claims to refill after dead letters: a new transaction */
			int rc = next_txn(c, s, n);
			if (rc < 0)
				return rc;
			fresh = 0;
			continue;
		}
		if (r == ROUND_REBUILD) {
			if (!replay)
				return DURQ_OK; /* a single op: its failure is its result */
			int rc = rebuild(c, s, n);
			if (rc < 0)
				return rc;
		}
	}
}

static int run_slots(pg_conn *c, pg_slot *s, size_t n, const durq_op_ctx *ctx, int replay,
		     int close)
{
	pg_round round;
	int rc = round_alloc(&round, n);
	if (rc < 0)
		return rc;
	rc = run_rounds(c, s, n, &round, ctx, replay, close);
	round_free(&round);
	return rc;
}

/* Misuse guard: the batch that carried the COMMIT was the whole transaction. */
static int check_open(const pg_conn *c)
{
	if (!c->committed && c->txn != PG_TXN_NONE)
		return DURQ_OK;
	return durq_error_set(DURQ_EINVAL, "postgresql: no open transaction (op_apply_batch "
			      "commits the transaction it is given: it must be its only op call)");
}

/*
 * Whether op's commit NOTIFYs the other provider instances (pg_op_wakes_others says which
 * ops can). A claim can: its lease's expiry makes work claimable again, and a fetcher of
 * another process that sleeps until its next due time learns of the lease this way. But
 * every claim notifying made the server deliver one notification per claim transaction to
 * every listening session (at 256 in flight, 2 workers: the listener's backend and the
 * watch thread took ~1.7 us of CPU per item acked, besides the notifying commits), so a
 * claim notifies at most once per PG_CLAIM_NOTIFY_MS per provider instance. A fetcher
 * that misses a lease because of it sees the lease at its next wakeup or when its wait
 * ends; the item is never lost, only its reclaim after a crash may come that much later.
 */
static int pg_notify_due(pg_conn *c, const durq_op *op)
{
	if (!pg_op_wakes_others(op))
		return 0;
	if (op->kind != DURQ_OP_WORK_CLAIM && op->kind != DURQ_OP_ORCH_CLAIM)
		return 1;
	int64_t now = (int64_t)(durq_clock_mono_ns() / 1000000);
	int64_t last = atomic_load(&c->p->claim_notify_ms);
	return now - last >= PG_CLAIM_NOTIFY_MS &&
	       atomic_compare_exchange_strong(&c->p->claim_notify_ms, &last, now);
}

static int pg_op_apply(durq_conn *conn, durq_op *op, const durq_op_ctx *ctx)
{
	pg_conn *c = pg_conn_of(conn);
	pg_slot s = {.op = op};
	int rc = check_open(c);
	if (rc < 0 || (rc = run_slots(c, &s, 1, ctx, 0, CLOSE_NO)) < 0)
		return rc;
	if (s.rc >= 0)
		pg_op_finish(op);
	if (s.rc >= 0 && pg_notify_due(c, op))
		c->notify = 1;
	return s.rc < 0 && s.rc != DURQ_EMPTY ? durq_error_set(s.rc, "%s", s.msg) : s.rc;
}

/*
 * The core gives op_apply_batch the whole transaction and commits right after it (the
 * committer: txn_begin, op_apply_batch, txn_commit), so the batch sends its COMMIT (and
 * NOTIFY) in its own pipeline: one round trip per transaction instead of two; txn_commit
 * then has nothing left to do (check_open refuses any op call after it). A run that fails
 * with its own SQL error aborts the pipeline before the COMMIT runs: the batch is replayed
 * as before, the COMMIT with it. Claims that dead-lettered items and have room left refill
 * in a new transaction (next_txn): a claim is at least once, its first items committed
 * alone cost nothing but their lease if the rest fails (design 2.9). NOTIFY goes if an op
 * could wake others (a refused one makes it spurious, which change_wait allows).
 */
static int pg_op_apply_batch(durq_conn *conn, durq_op *const *ops, durq_op_result *res,
			     size_t n, const durq_op_ctx *ctx)
{
	pg_conn *c = pg_conn_of(conn);
	int rc = check_open(c), close = CLOSE_COMMIT;
	if (rc < 0)
		return rc;
	pg_slot *s = calloc(n ? n : 1, sizeof(*s));
	if (!s)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		s[i].op = ops[i];
		if (close != CLOSE_NOTIFY && pg_notify_due(c, ops[i]))
			close = CLOSE_NOTIFY;
	}
	rc = run_slots(c, s, n, ctx, 1, close);
	for (size_t i = 0; rc == DURQ_OK && i < n; i++) {
		res[i].rc = s[i].rc;
		memcpy(res[i].message, s[i].msg, sizeof(res[i].message));
		if (s[i].rc >= 0) {
			pg_op_finish(s[i].op);
			if (close == CLOSE_NOTIFY)
				c->notify = 1;
		} else if (s[i].state == SLOT_FAILED) {
			pg_op_discard(s[i].op);
		}
	}
	free(s);
	return rc;
}

/* ---- LISTEN / NOTIFY ----------------------------------------------------------------------- */

/* Take the notifications received; 1 if one came from another provider instance. */
static int drain_notifies(pg_conn *c)
{
	PGnotify *n;
	int other = 0;
	while ((n = PQnotifies(c->pg))) {
		if (!n->extra || strcmp(n->extra, c->p->instance_id) != 0)
			other = 1;
		PQfreemem(n);
	}
	return other;
}

static void maybe_refresh_db_bytes(pg_conn *c)
{
	int64_t now = (int64_t)(durq_clock_mono_ns() / 1000000);
	if (now - atomic_load(&c->p->db_bytes_at_ms) > 10000)
		refresh_db_bytes(c);
}

/* A session that broke (or never listened) is reopened and listens again; what may have
 * been committed meanwhile is reported as a change. */
static int watch_ready(pg_conn *c, int *changed)
{
	*changed = 0;
	if (!pg_conn_broken(c) && c->listening)
		return DURQ_OK;
	int rc = pg_conn_ensure(c);
	if (rc == DURQ_OK && !c->listening)
		rc = listen_start(c);
	*changed = rc == DURQ_OK;
	return rc;
}

/* Wait for the session's socket or a cancel, at most ms; 1 if cancelled. */
static int wait_readable(pg_conn *c, int64_t ms)
{
	struct pollfd pfd[2] = {{.fd = PQsocket(c->pg), .events = POLLIN},
				{.fd = c->cancel_fd, .events = POLLIN}};
	if (poll(pfd, 2, ms > 1000000 ? 1000000 : (int)ms) < 0 && errno != EINTR)
		return durq_error_set(DURQ_EIO, "postgresql: poll: %s", strerror(errno));
	return (pfd[1].revents & POLLIN) ? 1 : 0;
}

static int pg_change_wait(durq_conn *conn, int64_t timeout_ms)
{
	pg_conn *c = pg_conn_of(conn);
	int changed, rc = watch_ready(c, &changed);
	if (rc < 0 || changed)
		return rc;
	uint64_t deadline = durq_clock_mono_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) *
						   1000000ull;
	for (;;) {
		if (!PQconsumeInput(c->pg))
			return pg_error(c, NULL, "wait for notifications");
		if (drain_notifies(c))
			return DURQ_OK;
		uint64_t now = durq_clock_mono_ns();
		if (now >= deadline)
			break;
		if ((rc = wait_readable(c, (int64_t)((deadline - now + 999999) / 1000000))) != 0)
			return rc < 0 ? rc : DURQ_ETIMEDOUT; /* cancelled: the handle is closing */
	}
	maybe_refresh_db_bytes(c);
	return DURQ_ETIMEDOUT;
}

/* From another thread while change_wait may run: the eventfd stays signalled, so this
 * and every later wait on the connection return at once (the handle is closing). */
static void pg_change_cancel(durq_conn *conn)
{
	pg_conn *c = pg_conn_of(conn);
	uint64_t one = 1;
	if (c->cancel_fd >= 0 && write(c->cancel_fd, &one, sizeof(one)) < 0)
		return; /* EAGAIN: already signalled */
}

/* ---- provider ------------------------------------------------------------------------------ */

static int pg_stats(durq_provider *prov, durq_provider_stats *out)
{
	pg_provider *p = (pg_provider *)prov;
	out->db_bytes = atomic_load(&p->db_bytes);
	out->wal_bytes = 0;
	out->busy_waits = 0;
	return DURQ_OK;
}

static void pg_free(durq_provider *prov)
{
	pg_provider *p = (pg_provider *)prov;
	if (!p)
		return;
	free(p->conninfo);
	for (int i = 0; i < 2; i++)
		free(p->secret[i]);
	if (p->flusher)
		conn_free(p->flusher);
	pthread_mutex_destroy(&p->flush_mu);
	pthread_mutex_destroy(&p->schema_mu);
	free(p);
}

static int hexval(int ch)
{
	return ch >= '0' && ch <= '9'   ? ch - '0'
	       : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
	       : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
					: -1;
}

static char *percent_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n + 1 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* The password of "scheme://user:password@host...", as written and decoded: whatever
 * libpq says about the URL is redacted of both. */
static void find_secrets(pg_provider *p, const char *url)
{
	const char *auth = strstr(url, "://");
	if (!auth)
		return;
	auth += 3;
	size_t end = strcspn(auth, "/?");
	const char *at = NULL;
	for (const char *s = auth; s < auth + end; s++)
		if (*s == '@')
			at = s;
	const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (!colon || colon + 1 >= at)
		return;
	p->secret[0] = strndup(colon + 1, (size_t)(at - colon - 1));
	p->secret[1] = percent_decode(colon + 1, (size_t)(at - colon - 1));
}

/* libpq's own parse (no connection): EINVAL for a URL it cannot use. A password given as
 * ?password= becomes a secret too. */
static int check_url(pg_provider *p)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(p->conninfo, &err);
	if (!opts) {
		char msg[384];
		pg_message(p, err ? err : "out of memory", msg, sizeof(msg));
		PQfreemem(err);
		return durq_error_set(DURQ_EINVAL, "postgresql: invalid connection URL: %s", msg);
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (!strcmp(o->keyword, "password") && o->val && *o->val &&
		    (!p->secret[1] || strcmp(p->secret[1], o->val))) {
			free(p->secret[0]);
			p->secret[0] = strdup(o->val);
		}
	PQconninfoFree(opts);
	return DURQ_OK;
}

/* "postgres://..." and "POSTGRESQL://..." as libpq spells it: "postgresql://...". */
static int make_conninfo(pg_provider *p, const durq_provider_config *cfg)
{
	size_t sl = strlen(cfg->scheme);
	const char *rest = cfg->url + sl;
	if (strncasecmp(cfg->url, cfg->scheme, sl) != 0 || strncmp(rest, "://", 3) != 0)
		return durq_error_set(DURQ_EINVAL, "postgresql: expected a URL of the form "
				      "postgresql://[user[:password]@][host][:port][/dbname][?param="
				      "value&...]");
	size_t n = strlen("postgresql") + strlen(rest) + 1;
	if (!(p->conninfo = malloc(n)))
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	snprintf(p->conninfo, n, "postgresql%s", rest);
	find_secrets(p, p->conninfo);
	return check_url(p);
}

/* One turn's parameters travel in one message: it must stay under the server's 1 GiB. */
static int check_max_payload(const pg_provider *p)
{
	size_t cap = (PG_MESSAGE_MAX - ((size_t)64 << 20)) / DURQ_TURN_PAYLOAD_FACTOR;
	if (p->opts->max_payload <= cap)
		return DURQ_OK;
	return durq_error_set(DURQ_EINVAL, "max_payload %zu exceeds what the postgresql provider "
			      "can store: %zu bytes (a turn of %d payloads travels in one message, "
			      "at most 1 GiB)", p->opts->max_payload, cap, DURQ_TURN_PAYLOAD_FACTOR);
}

static void make_instance_id(pg_provider *p)
{
	unsigned char b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		uint64_t x = durq_clock_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)p;
		for (int i = 0; i < 16; i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
			b[i] = (unsigned char)(x >> 56);
	}
	for (int i = 0; i < 16; i++)
		snprintf(p->instance_id + 2 * i, 3, "%02x", b[i]);
}

static void fill_vtable(pg_provider *p)
{
	p->base = (durq_provider){
		.version = DURQ_PROVIDER_VERSION,
		.name = "postgresql",
		.flags = DURQ_PROVIDER_QUEUE_SETS | DURQ_PROVIDER_VERSION_FILTER |
			 DURQ_PROVIDER_CONCURRENT_WRITERS | DURQ_PROVIDER_SESSIONS |
			 DURQ_PROVIDER_DEFERRED_FLUSH,
		.conn_open = pg_conn_open,
		.conn_close = pg_conn_close,
		.conn_check = pg_conn_check,
		.txn_begin = pg_txn_begin,
		.txn_commit = pg_txn_commit,
		.txn_rollback = pg_txn_rollback,
		.op_begin = pg_op_begin,
		.op_end = pg_op_end,
		.op_apply = pg_op_apply,
		.history_read = pg_history_read,
		.instance_get = pg_instance_get,
		.instance_list = pg_instance_list,
		.execution_list = pg_execution_list,
		.dead_list = pg_dead_list,
		.queue_depths = pg_queue_depths,
		.next_due = pg_next_due,
		.pragma_get = pg_pragma_get,
		.stats = pg_stats,
		.free = pg_free,
		.op_apply_batch = pg_op_apply_batch,
		.query = pg_query,
		.change_wait = pg_change_wait,
		.change_cancel = pg_change_cancel,
		.settings = &p->resolved,
		.admin = &durq_postgres_admin,
		.flush = pg_flush,
		.flush_recover = pg_flush_recover,
	};
}

int durq_postgres_factory(durq_provider **out, const durq_provider_config *cfg, void *ctx)
{
	(void)ctx;
	if (!out || !cfg || !cfg->url || !cfg->scheme)
		return durq_error_set(DURQ_EINVAL, "postgresql: no URL");
	if (strcasecmp(cfg->scheme, "postgresql") != 0 && strcasecmp(cfg->scheme, "postgres") != 0)
		return durq_error_set(DURQ_EINVAL, "postgresql: scheme '%.32s' is not postgresql "
				      "or postgres", cfg->scheme);
	pg_provider *p = calloc(1, sizeof(*p));
	if (!p)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	pthread_mutex_init(&p->schema_mu, NULL);
	pthread_mutex_init(&p->flush_mu, NULL);
	int rc = durq_options_resolve(&p->resolved, cfg->opts, 0);
	p->opts = &p->resolved;
	if (rc == DURQ_OK)
		rc = check_max_payload(p);
	if (rc == DURQ_OK)
		rc = make_conninfo(p, cfg);
	if (rc < 0) {
		pg_free(&p->base);
		return rc;
	}
	make_instance_id(p);
	fill_vtable(p);
	*out = &p->base;
	return DURQ_OK;
}
