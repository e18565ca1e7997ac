/*
 * sqlite_provider.c — the SQLite provider's plumbing: the vtable, opening connections with
 * the durq profile (WAL, explicit PRAGMAs, defensive mode, 0600 files never reached through
 * a symbolic link), the schema and the check that a database holds nothing else, the SQL
 * text of every statement, transactions/savepoints, the checkpoint policy, and the
 * in-memory databases on tmpfs (their locks, and the sweep of those whose process died).
 * The ops themselves live in sqlite_ops.c, the reads in sqlite_reads.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <time.h>

#include <ck_pr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <strings.h>
#include "sqlite_internal.h"
#include "sqlite_provider.h"

#define SCHEMA_VERSION 5 /* 1 + sq_n_migrations (sqlite_contract.c) */
#define SQ_ROW_HEADROOM 65536 /* ids, names and numbers beside the payloads of a row */

/* Ready messages: visible, untagged, instance not under a live lease. The partial indexes
 * hold only unleased rows, so claims never re-scan leased ones. */
static const char *const sql_text[SQ__COUNT] = {
	[SQ_BEGIN] = "BEGIN IMMEDIATE",
	[SQ_COMMIT] = "COMMIT",
	[SQ_ROLLBACK] = "ROLLBACK",
	[SQ_SAVEPOINT] = "SAVEPOINT durq_op",
	[SQ_RELEASE] = "RELEASE durq_op",
	[SQ_ROLLBACK_TO] = "ROLLBACK TO durq_op",
	[SQ_ORCH_INSERT] = "INSERT INTO orch_queue(instance_id, kind, payload, visible_at, attempt, "
			   "created_ms) VALUES(?1, ?2, ?3, ?4, 0, ?5)",
	[SQ_WORK_INSERT] = "INSERT INTO work_queue(queue, instance_id, execution_id, activity_id, "
			   "priority, payload, visible_at, attempt, created_ms, session_id) "
			   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9)",
	[SQ_CLAIM_EXPIRED_INSTANCE] =
		"SELECT l.instance_id FROM instance_locks l WHERE l.locked_until <= ?1 AND EXISTS "
		"(SELECT 1 FROM orch_queue q WHERE q.instance_id = l.instance_id AND q.visible_at <= ?1) "
		"ORDER BY l.locked_until LIMIT 1",
	[SQ_CLAIM_READY_INSTANCE] =
		"SELECT q.instance_id FROM orch_queue q WHERE q.lock_token IS NULL AND q.visible_at <= ?1 "
		"AND NOT EXISTS (SELECT 1 FROM instance_locks l WHERE l.instance_id = q.instance_id "
		"AND l.locked_until > ?1) ORDER BY q.visible_at, q.id LIMIT 1",
	[SQ_LOCK_UPSERT] = "INSERT INTO instance_locks(instance_id, token, locked_until) VALUES(?1, ?2, ?3) "
			   "ON CONFLICT(instance_id) DO UPDATE SET token = excluded.token, "
			   "locked_until = excluded.locked_until",
	[SQ_TAG_MESSAGES] = "UPDATE orch_queue SET lock_token = ?2, attempt = attempt + 1 "
			    "WHERE instance_id = ?1 AND visible_at <= ?3 "
			    "RETURNING id, kind, payload, attempt",
	[SQ_INSTANCE_HEAD] = "SELECT execution_id, status, name, version, "
			     "coalesce(runtime_version, 0) FROM instances WHERE id = ?1",
	[SQ_DEAD_FROM_ORCH] = "INSERT INTO dead_letters(source, queue, instance_id, execution_id, "
			      "activity_id, kind, priority, payload, attempt, dead_at) "
			      "SELECT 1, NULL, instance_id, NULL, NULL, kind, 0, payload, attempt - 1, ?3 "
			      "FROM orch_queue WHERE instance_id = ?1 AND lock_token = ?2 ORDER BY id",
	[SQ_DELETE_TAGGED] = "DELETE FROM orch_queue WHERE instance_id = ?1 AND lock_token = ?2",
	[SQ_LOCK_DELETE] = "DELETE FROM instance_locks WHERE instance_id = ?1",
	[SQ_INSTANCE_FAIL] = "UPDATE instances SET status = 3, updated_ms = ?2, "
			     "completed_ms = coalesce(completed_ms, ?2) WHERE id = ?1",
	[SQ_EXECUTION_FAIL] = "UPDATE executions SET status = 3, updated_ms = ?2, "
			      "completed_ms = coalesce(completed_ms, ?2) WHERE instance_id = ?1 "
			      "AND execution_id = (SELECT execution_id FROM instances WHERE id = ?1)",
	[SQ_LOCK_CHECK] = "SELECT 1 FROM instance_locks WHERE instance_id = ?1 AND token = ?2 "
			  "AND locked_until > ?3",
	[SQ_INSTANCE_INSERT] = "INSERT INTO instances(id, name, version, execution_id, status, "
			       "custom_status_version, parent_id, created_ms, updated_ms) "
			       "VALUES(?1, ?2, ?3, 1, 1, 0, ?4, ?5, ?5)",
	/* a new execution's name and version: the turn's, else the instance's (= those of the
	 * execution before it; G5) */
	[SQ_EXECUTION_INSERT] = "INSERT OR IGNORE INTO executions(instance_id, execution_id, status, "
				"created_ms, updated_ms, name, version) VALUES(?1, ?2, 1, ?3, ?3, "
				"coalesce(?4, (SELECT name FROM instances WHERE id = ?1)), "
				"coalesce(?5, (SELECT version FROM instances WHERE id = ?1)))",
	[SQ_EXECUTION_CLOSE] = "UPDATE executions SET status = 4, updated_ms = ?3, completed_ms = ?3 "
			       "WHERE instance_id = ?1 AND execution_id = ?2",
	[SQ_INSTANCE_SET_EXECUTION] = "UPDATE instances SET execution_id = ?2, "
				      "name = coalesce(?3, name), version = coalesce(?4, version), "
				      "completed_ms = NULL WHERE id = ?1",
	[SQ_HISTORY_INSERT] = "INSERT INTO history(instance_id, execution_id, event_id, payload) "
			      "VALUES(?1, ?2, ?3, ?4)",
	/* status 0 and no output: both stay as stored (a late turn of a finished instance) */
	[SQ_INSTANCE_UPDATE] = "UPDATE instances SET status = CASE WHEN ?2 > 0 THEN ?2 ELSE status END, "
			       "output = CASE WHEN ?3 IS NOT NULL THEN ?3 ELSE output END, "
			       "custom_status = CASE WHEN ?4 THEN ?5 ELSE custom_status END, "
			       "custom_status_version = custom_status_version + ?4, "
			       "name = COALESCE(name, ?6), version = COALESCE(version, ?7), "
			       "completed_ms = CASE WHEN ?2 IN (2, 3, 5) THEN coalesce(completed_ms, ?8) "
			       "WHEN ?2 > 0 THEN NULL ELSE completed_ms END, "
			       "updated_ms = ?8 WHERE id = ?1",
	[SQ_EXECUTION_UPDATE] = "UPDATE executions SET status = CASE WHEN ?3 > 0 THEN ?3 ELSE status END, "
				"output = CASE WHEN ?4 IS NOT NULL THEN ?4 ELSE output END, updated_ms = ?5, "
				"name = coalesce(name, ?6), version = coalesce(version, ?7), "
				"completed_ms = CASE WHEN ?3 IN (2, 3, 5) THEN coalesce(completed_ms, ?5) "
				"WHEN ?3 > 0 THEN NULL ELSE completed_ms END "
				"WHERE instance_id = ?1 AND execution_id = ?2",
	[SQ_WORK_CANCEL] = "DELETE FROM work_queue WHERE instance_id = ?1 AND execution_id = ?2 "
			   "AND activity_id = ?3",
	[SQ_ORCH_UNTAG] = "UPDATE orch_queue SET lock_token = NULL, "
			  "visible_at = CASE WHEN ?3 > 0 THEN ?4 + ?3 ELSE visible_at END, "
			  "attempt = CASE WHEN ?5 THEN max(attempt - 1, 0) ELSE attempt END "
			  "WHERE instance_id = ?1 AND lock_token = ?2",
	[SQ_LOCK_RENEW] = "UPDATE instance_locks SET locked_until = ?4 WHERE instance_id = ?1 "
			  "AND token = ?2 AND locked_until > ?3",
	/* Ready rows and rows whose lease expired, merged in priority/FIFO order. Each branch
	 * is bounded by LIMIT on its own partial index, so a claim never walks leased rows.
	 * Items with a session are not for a plain claim (G1): the ready index holds none. */
	[SQ_WORK_CLAIM] =
		"UPDATE work_queue SET lock_token = ?1, locked_until = ?2, attempt = attempt + 1 "
		"WHERE id IN (SELECT id FROM ("
		" SELECT * FROM (SELECT id, priority FROM work_queue WHERE queue = ?3 "
		"  AND lock_token IS NULL AND session_id IS NULL AND visible_at <= ?4 "
		"  ORDER BY priority DESC, id LIMIT ?5) "
		" UNION ALL "
		" SELECT * FROM (SELECT id, priority FROM work_queue WHERE queue = ?3 "
		"  AND lock_token IS NOT NULL AND locked_until <= ?4 AND session_id IS NULL "
		"  ORDER BY priority DESC, id LIMIT ?5)"
		") ORDER BY priority DESC, id LIMIT ?5) "
		"RETURNING id, queue, instance_id, execution_id, activity_id, priority, attempt, payload",
	[SQ_DEAD_FROM_WORK] = "INSERT INTO dead_letters(source, queue, instance_id, execution_id, "
			      "activity_id, kind, priority, payload, attempt, dead_at, session_id) "
			      "SELECT 2, queue, instance_id, execution_id, activity_id, 0, priority, "
			      "payload, attempt - 1, ?2, session_id FROM work_queue WHERE id = ?1",
	[SQ_WORK_DELETE] = "DELETE FROM work_queue WHERE id = ?1",
	/* the item's session (G1): an ack or a renew is activity of it */
	[SQ_WORK_ACK] = "DELETE FROM work_queue WHERE id = ?1 AND lock_token = ?2 AND locked_until > ?3 "
			"RETURNING session_id",
	/* the common case, an item without a session: no RETURNING (which builds an ephemeral
	 * table per statement, ~40% of an ack's time) */
	[SQ_WORK_ACK_PLAIN] = "DELETE FROM work_queue WHERE id = ?1 AND lock_token = ?2 AND "
			      "locked_until > ?3 AND session_id IS NULL",
	[SQ_WORK_ABANDON] = "UPDATE work_queue SET lock_token = NULL, locked_until = NULL, "
			    "visible_at = CASE WHEN ?4 > 0 THEN ?3 + ?4 ELSE visible_at END, "
			    "attempt = CASE WHEN ?5 THEN max(attempt - 1, 0) ELSE attempt END "
			    "WHERE id = ?1 AND lock_token = ?2 AND locked_until > ?3",
	[SQ_WORK_RENEW] = "UPDATE work_queue SET locked_until = ?4 WHERE id = ?1 AND lock_token = ?2 "
			  "AND locked_until > ?3 RETURNING session_id",
	[SQ_DEAD_GET] = "SELECT source, queue, instance_id, execution_id, activity_id, kind, priority, "
			"payload, session_id FROM dead_letters WHERE id = ?1",
	[SQ_DEAD_DELETE] = "DELETE FROM dead_letters WHERE id = ?1",
	[SQ_DEL_ORCH] = "DELETE FROM orch_queue WHERE instance_id = ?1",
	[SQ_DEL_WORK] = "DELETE FROM work_queue WHERE instance_id = ?1",
	[SQ_DEL_LOCK] = "DELETE FROM instance_locks WHERE instance_id = ?1",
	[SQ_DEL_HISTORY] = "DELETE FROM history WHERE instance_id = ?1",
	[SQ_DEL_EXECUTIONS] = "DELETE FROM executions WHERE instance_id = ?1",
	[SQ_DEL_INSTANCE] = "DELETE FROM instances WHERE id = ?1",
	[SQ_PRUNE_HISTORY] = "DELETE FROM history WHERE instance_id = ?1 AND execution_id < ?2",
	[SQ_PRUNE_EXECUTIONS] = "DELETE FROM executions WHERE instance_id = ?1 AND execution_id < ?2",
	[SQ_ORCH_EXISTS] = "SELECT 1 FROM orch_queue WHERE instance_id = ?1 LIMIT 1",
	[SQ_HISTORY_READ] = "SELECT event_id, payload FROM history WHERE instance_id = ?1 "
			    "AND execution_id = ?2 ORDER BY event_id",
	[SQ_INSTANCE_GET] = "SELECT id, name, version, parent_id, execution_id, status, output, "
			    "custom_status, custom_status_version, created_ms, updated_ms "
			    "FROM instances WHERE id = ?1",
	/* keyset pages in id (BINARY) order; ?1 = after_id, '' from the start (ids are never
	 * empty); by status through the (status, id) index */
	[SQ_INSTANCE_LIST] = "SELECT id FROM instances WHERE id > ?1 ORDER BY id LIMIT ?2",
	[SQ_INSTANCE_LIST_STATUS] = "SELECT id FROM instances WHERE status = ?3 AND id > ?1 "
				    "ORDER BY id LIMIT ?2",
	[SQ_EXECUTION_LIST] = "SELECT e.execution_id, e.status, e.created_ms, e.updated_ms, "
			      "(SELECT count(*) FROM history h WHERE h.instance_id = e.instance_id "
			      "AND h.execution_id = e.execution_id) FROM executions e "
			      "WHERE e.instance_id = ?1 ORDER BY e.execution_id",
	[SQ_DEAD_LIST] = "SELECT id, source, queue, instance_id, execution_id, activity_id, kind, "
			 "attempt, payload, dead_at FROM dead_letters ORDER BY id LIMIT ?1",
	[SQ_DEPTHS] =
		"SELECT "
		"(SELECT count(*) FROM orch_queue q WHERE q.visible_at <= ?1 AND NOT EXISTS (SELECT 1 "
		" FROM instance_locks l WHERE l.instance_id = q.instance_id AND l.locked_until > ?1 "
		" AND l.token = q.lock_token)), "
		"(SELECT count(*) FROM orch_queue WHERE visible_at > ?1), "
		"(SELECT count(*) FROM orch_queue q WHERE EXISTS (SELECT 1 FROM instance_locks l "
		" WHERE l.instance_id = q.instance_id AND l.locked_until > ?1 AND l.token = q.lock_token)), "
		"(SELECT count(*) FROM work_queue WHERE (?2 IS NULL OR queue = ?2) AND "
		" ((lock_token IS NULL AND visible_at <= ?1) OR (lock_token IS NOT NULL AND locked_until <= ?1))), "
		"(SELECT count(*) FROM work_queue WHERE (?2 IS NULL OR queue = ?2) AND lock_token IS NULL "
		" AND visible_at > ?1), "
		"(SELECT count(*) FROM work_queue WHERE (?2 IS NULL OR queue = ?2) AND lock_token IS NOT NULL "
		" AND locked_until > ?1), "
		"(SELECT count(*) FROM dead_letters), "
		"(SELECT count(*) FROM instance_locks WHERE locked_until > ?1)",
	[SQ_NEXT_DUE] = "SELECT min(v) FROM ("
			"SELECT min(visible_at) AS v FROM orch_queue WHERE lock_token IS NULL AND visible_at > ?1 "
			"UNION ALL SELECT min(visible_at) FROM work_queue WHERE lock_token IS NULL AND visible_at > ?1 "
			"UNION ALL SELECT min(locked_until) FROM work_queue WHERE lock_token IS NOT NULL AND locked_until > ?1 "
			"UNION ALL SELECT min(locked_until) FROM instance_locks WHERE locked_until > ?1 "
			/* G1: a held session's items become another owner's when its lock expires */
			"UNION ALL SELECT min(s.locked_until) FROM sessions s WHERE s.locked_until > ?1 "
			"AND EXISTS (SELECT 1 FROM work_queue w WHERE w.session_id = s.session_id))",
	[SQ_DATA_VERSION] = "PRAGMA data_version",
	[SQ_SYNC_OFF] = "PRAGMA synchronous=OFF",
	[SQ_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
	[SQ_SYNC_FULL] = "PRAGMA synchronous=FULL",
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS instances("
	" id TEXT PRIMARY KEY, name TEXT, version TEXT, execution_id INTEGER NOT NULL,"
	" status INTEGER NOT NULL, output BLOB, custom_status BLOB,"
	" custom_status_version INTEGER NOT NULL DEFAULT 0, parent_id TEXT,"
	" created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS instances_status ON instances(status);"
	"CREATE TABLE IF NOT EXISTS executions("
	" instance_id TEXT NOT NULL, execution_id INTEGER NOT NULL, status INTEGER NOT NULL,"
	" output BLOB, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
	" PRIMARY KEY(instance_id, execution_id)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS history("
	" instance_id TEXT NOT NULL, execution_id INTEGER NOT NULL, event_id INTEGER NOT NULL,"
	" payload BLOB, PRIMARY KEY(instance_id, execution_id, event_id)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS orch_queue("
	" id INTEGER PRIMARY KEY, instance_id TEXT NOT NULL, kind INTEGER NOT NULL, payload BLOB,"
	" visible_at INTEGER NOT NULL, lock_token BLOB, attempt INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS orch_ready ON orch_queue(visible_at, id) WHERE lock_token IS NULL;"
	"CREATE INDEX IF NOT EXISTS orch_instance ON orch_queue(instance_id, visible_at);"
	"CREATE TABLE IF NOT EXISTS instance_locks("
	" instance_id TEXT PRIMARY KEY, token BLOB NOT NULL, locked_until INTEGER NOT NULL)"
	" WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS instance_locks_until ON instance_locks(locked_until);"
	"CREATE TABLE IF NOT EXISTS work_queue("
	" id INTEGER PRIMARY KEY, queue TEXT NOT NULL, instance_id TEXT, execution_id INTEGER,"
	" activity_id INTEGER, priority INTEGER NOT NULL, payload BLOB, visible_at INTEGER NOT NULL,"
	" lock_token BLOB, locked_until INTEGER, attempt INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS work_ready ON work_queue(queue, priority DESC, id)"
	" WHERE lock_token IS NULL;"
	"CREATE INDEX IF NOT EXISTS work_leased ON work_queue(queue, locked_until)"
	" WHERE lock_token IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS work_activity ON work_queue(instance_id, execution_id, activity_id)"
	" WHERE instance_id IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS dead_letters("
	" id INTEGER PRIMARY KEY, source INTEGER NOT NULL, queue TEXT, instance_id TEXT,"
	" execution_id INTEGER, activity_id INTEGER, kind INTEGER, priority INTEGER, payload BLOB,"
	" attempt INTEGER NOT NULL, dead_at INTEGER NOT NULL);"
	"PRAGMA user_version = 1;";

/* ---- helpers ------------------------------------------------------------------------ */

int sq_error(sq_conn *c, int rc, const char *what)
{
	const char *msg = c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return durq_error_set(DURQ_EBUSY, "%s: database busy: %s", what, msg);
	case SQLITE_FULL:
		return durq_error_set(DURQ_EFULL, "%s: disk full: %s", what, msg);
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return durq_error_set(DURQ_ECORRUPT, "%s: database corrupt: %s", what, msg);
	case SQLITE_NOMEM:
		return durq_error_set(DURQ_ENOMEM, "%s: out of memory", what);
	case SQLITE_CONSTRAINT:
		return durq_error_set(DURQ_EDUP, "%s: duplicate: %s", what, msg);
	case SQLITE_TOOBIG:
		return durq_error_set(DURQ_ETOOBIG, "%s: too big: %s", what, msg);
	default:
		return durq_error_set(DURQ_EIO, "%s: %s (sqlite %d)", what, msg, rc);
	}
}

sqlite3_stmt *sq_stmt(sq_conn *c, enum sq_stmt_id id)
{
	c->sticky_rc = SQLITE_OK;
	if (!c->stmts[id]) {
		const char *sql = id >= SQ_CONTRACT_FIRST ? sq_contract_sql[id - SQ_CONTRACT_FIRST]
							  : sql_text[id];
		int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
					    &c->stmts[id], NULL);
		if (rc != SQLITE_OK) {
			sq_error(c, rc, "prepare");
			return NULL;
		}
	}
	return c->stmts[id];
}

int sq_exec(sq_conn *c, sqlite3_stmt *s, const char *what)
{
	if (!s)
		return DURQ_EIO;
	int rc = sq_step(c, s);
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(s);
	int out = rc == SQLITE_DONE ? DURQ_OK : sq_error(c, rc, what);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return out;
}

/*
 * Binds and column copies never fail silently: a failed bind (SQLITE_TOOBIG: a value over
 * SQLite's length limit would otherwise be stored as NULL) or a failed copy (out of memory)
 * is remembered on the connection and returned by the next sq_step, so the op fails with
 * its code and nothing half-bound is written. sq_stmt starts a statement use afresh.
 */
static int sticky(sq_conn *c, int rc)
{
	if (rc != SQLITE_OK && c->sticky_rc == SQLITE_OK)
		c->sticky_rc = rc;
	return rc;
}

int sq_step(sq_conn *c, sqlite3_stmt *s)
{
	int rc = c->sticky_rc;
	if (rc == SQLITE_OK)
		return sqlite3_step(s);
	c->sticky_rc = SQLITE_OK;
	return rc;
}

int sq_check(sq_conn *c)
{
	int rc = c->sticky_rc;
	c->sticky_rc = SQLITE_OK;
	return rc;
}

int sq_bind_text(sq_conn *c, sqlite3_stmt *s, int i, const char *v, int n, void (*d)(void *))
{
	return sticky(c, sqlite3_bind_text(s, i, v, n, d));
}

int sq_bind_int(sq_conn *c, sqlite3_stmt *s, int i, int v)
{
	return sticky(c, sqlite3_bind_int(s, i, v));
}

int sq_bind_int64(sq_conn *c, sqlite3_stmt *s, int i, sqlite3_int64 v)
{
	return sticky(c, sqlite3_bind_int64(s, i, v));
}

int sq_bind_null(sq_conn *c, sqlite3_stmt *s, int i)
{
	return sticky(c, sqlite3_bind_null(s, i));
}

int sq_bind_token(sq_conn *c, sqlite3_stmt *s, int i, const durq_token *t)
{
	return sticky(c, sqlite3_bind_blob(s, i, t->bytes, sizeof(t->bytes), SQLITE_STATIC));
}

int sq_bind_blob(sq_conn *c, sqlite3_stmt *s, int i, const void *p, size_t n)
{
	if (!p)
		return sq_bind_null(c, s, i);
	return sticky(c, sqlite3_bind_blob64(s, i, n ? p : "", n, SQLITE_STATIC));
}

char *sq_col_text(sq_conn *c, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	if (!t) {
		if (sqlite3_column_type(s, col) != SQLITE_NULL)
			sticky(c, SQLITE_NOMEM); /* the conversion itself ran out of memory */
		return NULL;
	}
	size_t n = strlen((const char *)t) + 1;
	char *out = c->p->alloc(n);
	if (!out)
		sticky(c, SQLITE_NOMEM);
	else
		memcpy(out, t, n);
	return out;
}

void *sq_col_blob(sq_conn *c, sqlite3_stmt *s, int col, size_t *len)
{
	const void *b = sqlite3_column_blob(s, col);
	size_t n = (size_t)sqlite3_column_bytes(s, col);
	*len = 0;
	if (!b && sqlite3_column_type(s, col) == SQLITE_NULL)
		return NULL;
	if (!b && n) {
		sticky(c, SQLITE_NOMEM);
		return NULL;
	}
	void *out = c->p->alloc(n ? n : 1);
	if (!out) {
		sticky(c, SQLITE_NOMEM); /* never an item with payload NULL and a length */
		return NULL;
	}
	if (n)
		memcpy(out, b, n);
	*len = n;
	return out;
}

/* ---- connections -------------------------------------------------------------------- */

static const char *sync_name(int s)
{
	return s == DURQ_SYNC_OFF ? "OFF" : s == DURQ_SYNC_NORMAL ? "NORMAL" : "FULL";
}

/*
 * Checkpoint policy of the connections that commit with SQLite's automatic checkpoints
 * (per-op mode's pool connections, the in-memory database's write connection); a file
 * database's write connection has a checkpointer thread instead (sqlite_ckpt.c), which
 * applies the same tiers. SQLite's wal_autocheckpoint runs PASSIVE checkpoints, which copy only
 * what the oldest reader's snapshot allows and never reset the WAL while readers use it, so
 * under overlapping readers the WAL only grows. Every CHECK_EVERY commits the writer looks at
 * the WAL (a PASSIVE checkpoint reports its frames); past SQ_RESTART_FRAMES it runs a RESTART
 * so the next commit writes from the start (journal_size_limit then truncates the file).
 *
 * RESTART holds the write lock while it waits, in two phases: for readers of snapshots older
 * than the end of the WAL (then it copies everything), then for readers that began during
 * that wait (they read the WAL's last snapshot); readers that begin after the copy read the
 * database file only. So it needs up to twice the longest read, and every writer of every
 * process waits with it. Hence two tiers:
 *  - past SQ_RESTART_FRAMES it waits SQ_RESTART_BUDGET_MS at most (the full busy_timeout made
 *    every writer stall 5 s under the soak's overlapping readers, and some failed with
 *    DURQ_EBUSY; 20 ms never succeeded against 0.5 s snapshots: the WAL passed 300 MB), and
 *    a failed one is tried again RETRY_EVERY commits later;
 *  - past SQ_FORCE_FRAMES (47 MiB at a 4 KiB page, under the 64 MiB journal_size_limit) it
 *    waits SQ_FORCE_BUDGET_MS (or busy_timeout if smaller): reads of up to 1.5 s cannot keep
 *    it from succeeding, at the price of a longer writer stall. The soak
 *    found the one-tier policy unbounded: with 0.5-0.7 s snapshots and a loaded machine the
 *    two waits passed 1 s, restarts failed, and the WAL reached 56-66 MB of its 64 MiB
 *    bound (one run in ~6 passed it).
 */
#define CHECK_EVERY 256
#define RETRY_EVERY 32

static void checkpoint_policy(sq_conn *c)
{
	int log = 0, ckpt = 0;
	if (!c->next_check)
		c->next_check = CHECK_EVERY; /* the first look at commit CHECK_EVERY, not 1 */
	if (++c->commits < c->next_check)
		return;
	c->next_check = c->commits + CHECK_EVERY;
	if (sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt) !=
		    SQLITE_OK ||
	    log <= SQ_RESTART_FRAMES)
		return;
	int force = log > SQ_FORCE_FRAMES;
	if (force)
		durq_log_emit(c->p->opts, DURQ_LOG_WARN, "CHECKPOINT", "the WAL holds %d frames "
			      "(readers kept it from restarting): waiting up to %d ms for them",
			      log, SQ_FORCE_BUDGET_MS);
	c->busy_cap_ms = force ? SQ_FORCE_BUDGET_MS : SQ_RESTART_BUDGET_MS;
	int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &ckpt);
	c->busy_cap_ms = 0;
	if (rc != SQLITE_OK || log != ckpt)
		c->next_check = c->commits + RETRY_EVERY; /* readers won: soon again */
}

/*
 * Busy handler: another connection (another process, or per-op callers) holds the write
 * lock. Same budget as busy_timeout, but exponential backoff with jitter from 100 us (SQLite's
 * own handler sleeps 1, 2, 5 … 100 ms) and every wait counted in stats; RETRY is logged at
 * DEBUG per wait and at WARN when a wait passes 100 ms.
 */
static int busy_handler(void *arg, int count)
{
	sq_conn *c = arg;
	sq_provider *p = c->p;
	uint64_t now = durq_clock_mono_ns();
	if (count == 0)
		c->busy_since = now;
	uint64_t waited = now - c->busy_since;
	int budget = c->busy_cap_ms > 0 && c->busy_cap_ms < p->opts->busy_timeout_ms
			     ? c->busy_cap_ms : p->opts->busy_timeout_ms;
	if (waited > (uint64_t)budget * 1000000ull) {
		if (c->busy_cap_ms > 0)
			return 0; /* the WAL restart gives up quietly; it is tried again later */
		durq_log_emit(p->opts, DURQ_LOG_WARN, "RETRY", "database busy for %d ms: giving up "
			      "(busy_timeout)", p->opts->busy_timeout_ms);
		return 0;
	}
	ck_pr_inc_64(&p->busy_waits);
	long us = 100L << (count < 7 ? count : 7); /* 100 us .. 12.8 ms */
	us += rand_r(&c->rng) % (us / 2 + 1);
	durq_log_emit(p->opts, waited > 100000000ull ? DURQ_LOG_WARN : DURQ_LOG_DEBUG, "RETRY",
		      "database busy (wait %d, %llu ms so far): backing off %ld us", count + 1,
		      (unsigned long long)(waited / 1000000), us);
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
	return 1;
}

static int apply_profile(sq_conn *c)
{
	sq_provider *p = c->p;
	const char *sync_sql = p->opts->synchronous == DURQ_SYNC_OFF      ? "PRAGMA synchronous=OFF"
			       : p->opts->synchronous == DURQ_SYNC_NORMAL ? "PRAGMA synchronous=NORMAL"
									  : "PRAGMA synchronous=FULL";
	const char *pragmas[] = {
		"PRAGMA journal_mode=WAL", sync_sql, "PRAGMA foreign_keys=ON",
		"PRAGMA temp_store=MEMORY", "PRAGMA cache_size=-16384",
		"PRAGMA mmap_size=268435456", "PRAGMA wal_autocheckpoint=1000",
		"PRAGMA journal_size_limit=67108864", "PRAGMA trusted_schema=OFF",
	};
	int rc, on = 0, trusted = 1;
	if (sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on) != SQLITE_OK || on != 1)
		return durq_error_set(DURQ_EIO, "cannot enable SQLITE_DBCONFIG_DEFENSIVE on '%s'",
				      p->path);
	sqlite3_extended_result_codes(c->db, 1);
	c->rng = (unsigned int)durq_clock_mono_ns() ^ (unsigned int)(uintptr_t)c;
	sqlite3_busy_handler(c->db, busy_handler, c);
	c->sync_now = p->opts->synchronous;
	for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++)
		if ((rc = sqlite3_exec(c->db, pragmas[i], NULL, NULL, NULL)) != SQLITE_OK)
			return sq_error(c, rc, pragmas[i]);
	if (sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, -1, &trusted) != SQLITE_OK ||
	    trusted != 0)
		return durq_error_set(DURQ_EIO, "PRAGMA trusted_schema=OFF did not take effect on "
				      "'%s'", p->path);
	if (c->role != SQ_ROLE_CKPT && !p->config_logged) {
		p->config_logged = 1;
		for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++)
			durq_log_emit(p->opts, DURQ_LOG_INFO, "CONFIG", "%s", pragmas[i]);
		durq_log_emit(p->opts, DURQ_LOG_INFO, "CONFIG", "busy handler: backoff 100 us .. "
			      "12.8 ms with jitter, budget busy_timeout=%d ms", p->opts->busy_timeout_ms);
		durq_log_emit(p->opts, DURQ_LOG_INFO, "CONFIG", "SQLITE_DBCONFIG_DEFENSIVE=1 "
			      "synchronous=%s path=%s", sync_name(p->opts->synchronous), p->path);
	}
	return DURQ_OK;
}

static int check_schema_version(sq_conn *c, int *version)
{
	sqlite3_stmt *s;
	int v = 0, rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_error(c, rc, "read schema version");
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (v > SCHEMA_VERSION)
		return durq_error_set(DURQ_ECORRUPT, "database schema version %d is newer than this "
				      "durq (%d)", v, SCHEMA_VERSION);
	if (version)
		*version = v;
	return DURQ_OK;
}

/* Version 1's tables, then each migration the database has not had yet (a new database
 * gets them all): the reference schema of check_schema_objects is built the same way, so a
 * migrated database and a new one hold the same SQL text. */
static int schema_steps(sqlite3 *db, int from)
{
	int rc = SQLITE_OK;
	if (from < 1)
		rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
	for (int i = from < 1 ? 0 : from - 1; rc == SQLITE_OK && i < sq_n_migrations; i++)
		rc = sqlite3_exec(db, sq_migrations[i], NULL, NULL, NULL);
	if (rc == SQLITE_OK) /* not versioned: made if missing (sqlite_admin.c) */
		rc = sqlite3_exec(db, sq_handle_stats_schema, NULL, NULL, NULL);
	return rc;
}

/* 1 if the database holds table name (read without a lock beyond a read transaction). */
static int has_table(sq_conn *c, const char *name)
{
	sqlite3_stmt *s;
	int found = 0;
	if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
			       "name = ?1", -1, &s, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	found = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return found;
}

/* A database whose schema is current is opened without the write lock: taking it would
 * make every open wait for (and, polling, maybe starve behind) another process's writer. */
static int create_schema(sq_conn *c)
{
	int rc, v;
	if ((rc = check_schema_version(c, &v)) < 0)
		return rc;
	if (v == SCHEMA_VERSION && has_table(c, "handle_stats"))
		return DURQ_OK;
	if ((rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK)
		return sq_error(c, rc, "create schema");
	if ((rc = check_schema_version(c, &v)) < 0) { /* again, under the write lock */
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	if ((rc = schema_steps(c->db, v)) != SQLITE_OK) {
		int out = sq_error(c, rc, "create schema");
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return out;
	}
	if (v < SCHEMA_VERSION)
		durq_log_emit(c->p->opts, DURQ_LOG_INFO, "CONFIG", "sqlite: schema version %d (was "
			      "%d)", SCHEMA_VERSION, v);
	if ((rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
		int out = sq_error(c, rc, "create schema");
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return out;
	}
	return DURQ_OK;
}

/* A name SQLite reserves for itself: its autoindexes (no SQL) and tables such as
 * sqlite_sequence or sqlite_stat1. Never a trigger or a view. */
static int is_internal(const char *type, const char *name, const char *sql)
{
	if (strncmp(name, "sqlite_", 7) != 0)
		return 0;
	return !strcmp(type, "table") || (!strcmp(type, "index") && !sql);
}

/* Every object of ref (a scratch database holding exactly durq's schema) has the same type,
 * table and SQL as the one of that name in the database; NULL when none has that name. */
static int object_matches(sqlite3_stmt *ref, sqlite3_stmt *s, int *known)
{
	sqlite3_bind_text(ref, 1, (const char *)sqlite3_column_text(s, 1), -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(ref);
	int same = 0;
	*known = rc == SQLITE_ROW;
	if (*known) {
		const char *t = (const char *)sqlite3_column_text(ref, 0);
		const char *tbl = (const char *)sqlite3_column_text(ref, 1);
		const char *sql = (const char *)sqlite3_column_text(ref, 2);
		const char *t2 = (const char *)sqlite3_column_text(s, 0);
		const char *tbl2 = (const char *)sqlite3_column_text(s, 2);
		const char *sql2 = (const char *)sqlite3_column_text(s, 3);
		same = t && t2 && !strcmp(t, t2) && tbl && tbl2 && !strcmp(tbl, tbl2) &&
		       (sql && sql2 ? !strcmp(sql, sql2) : sql == sql2);
	}
	sqlite3_reset(ref);
	return same;
}

/*
 * A database must hold only what durq creates: a trigger or a view fires or runs code on
 * our statements, an extra or altered table or index is not ours to interpret. Compared
 * with durq's schema built in a scratch in-memory database, so there is no second list.
 */
static int check_schema_objects(sq_conn *c)
{
	sqlite3 *ref = NULL;
	sqlite3_stmt *s = NULL, *r = NULL;
	int rc = sqlite3_open_v2(":memory:", &ref, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK || schema_steps(ref, 0) != SQLITE_OK ||
	    sqlite3_prepare_v2(ref, "SELECT type, tbl_name, sql FROM sqlite_schema WHERE name = ?1",
			       -1, &r, NULL) != SQLITE_OK) {
		rc = durq_error_set(DURQ_ENOMEM, "schema check: cannot build the reference schema");
		goto out;
	}
	if ((rc = sqlite3_prepare_v2(c->db, "SELECT type, name, tbl_name, sql FROM sqlite_schema",
				     -1, &s, NULL)) != SQLITE_OK) {
		rc = sq_error(c, rc, "schema check");
		goto out;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(s, 0);
		const char *name = (const char *)sqlite3_column_text(s, 1);
		const char *sql = (const char *)sqlite3_column_text(s, 3);
		int known = 0;
		if (!type || !name)
			type = "object", name = "(null)";
		else if (is_internal(type, name, sql) || object_matches(r, s, &known))
			continue;
		rc = durq_error_set(DURQ_ECORRUPT, "database '%s' has %s %s '%.64s' %s durq did "
				    "not create; refusing to open", c->p->path,
				    strchr("aeiou", type[0]) ? "an" : "a", type, name,
				    known ? "whose definition" : "that");
		goto out;
	}
	rc = rc == SQLITE_DONE ? DURQ_OK : sq_error(c, rc, "schema check");
out:
	sqlite3_finalize(s);
	sqlite3_finalize(r);
	sqlite3_close(ref);
	return rc;
}

void sq_conn_free(sq_conn *c)
{
	if (!c)
		return;
	sq_ckpt_detach(c); /* its thread and connection go before the write connection */
	for (int i = 0; i < SQ__COUNT; i++)
		sqlite3_finalize(c->stmts[i]);
	sqlite3_close_v2(c->db);
	free(c);
}

static void sq_conn_close(durq_provider *prov, durq_conn *conn)
{
	(void)prov;
	sq_conn_free(sq_conn_of(conn));
}

/*
 * Files are checked and tightened WITHOUT opening them for I/O: closing any descriptor of a
 * file drops every POSIX lock this process holds on it (fcntl semantics), so an open() +
 * close() here, while another handle or connection of this process has the database open,
 * released SQLite's locks: the next process to open thought it was alone, rebuilt the -shm
 * (readers died of SIGBUS) or deleted the -wal under us (OK'd writes lost). lstat and
 * fchmodat(AT_SYMLINK_NOFOLLOW) (glibc: an O_PATH descriptor, whose close drops no lock)
 * touch no lock. Only a file we create ourselves (O_EXCL: nobody can hold a lock on it yet)
 * is opened and closed.
 */

/* A regular file (never a symbolic link), mode 0600; a looser mode is tightened. ENOENT is
 * returned as 1 when missing_ok. */
static int make_0600(sq_provider *p, const char *path, int missing_ok)
{
	struct stat st;
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT && missing_ok)
			return 1;
		return durq_error_set(DURQ_EIO, "cannot open database '%s': %s", path,
				      strerror(errno));
	}
	if (S_ISLNK(st.st_mode))
		return durq_error_set(DURQ_EIO, "'%s' is a symbolic link; refusing to open the "
				      "database through it (give the real path)", path);
	if (!S_ISREG(st.st_mode))
		return durq_error_set(DURQ_EIO, "'%s' is not a regular file; refusing to open it",
				      path);
	if ((st.st_mode & 07777) == 0600)
		return DURQ_OK;
	if (fchmodat(AT_FDCWD, path, 0600, AT_SYMLINK_NOFOLLOW) != 0)
		return durq_error_set(DURQ_EIO, "cannot make '%s' mode 0600 (it is %04o): %s", path,
				      (unsigned int)(st.st_mode & 07777), strerror(errno));
	durq_log_emit(p->opts, DURQ_LOG_WARN, "CONFIG", "'%s' had mode %04o: now 0600", path,
		      (unsigned int)(st.st_mode & 07777));
	return DURQ_OK;
}

/* Create the database file 0600 if it is missing (before SQLite does, never through a
 * symbolic link: one planted at the path would have us chmod and write its target), else
 * check and tighten it. SQLite gives the -wal and -shm it creates the database file's mode. */
static int open_db_file(sq_provider *p)
{
	int fd = open(p->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd); /* a brand new file: no connection can hold a lock on it */
		return make_0600(p, p->path, 0); /* a umask cannot widen 0600, but check */
	}
	if (errno != EEXIST)
		return durq_error_set(DURQ_EIO, "cannot open database '%s': %s", p->path,
				      strerror(errno));
	return make_0600(p, p->path, 0); /* EEXIST also for a symbolic link: refused there */
}

/* -wal and -shm that already exist (an earlier run, another process) keep whatever mode
 * they were created with: tighten them too. */
static int companions_0600(sq_provider *p)
{
	static const char *const suffix[] = {"-wal", "-shm"};
	char name[4096];
	for (size_t i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "%s%s", p->path, suffix[i]);
		int rc = make_0600(p, name, 1);
		if (rc < 0)
			return rc;
	}
	return DURQ_OK;
}

static int open_error(sq_conn *c)
{
	const char *path = c->p->path;
	if (!c->db)
		return durq_error_set(DURQ_ENOMEM, "sqlite3_open_v2: out of memory");
	if (sqlite3_extended_errcode(c->db) == SQLITE_CANTOPEN_SYMLINK)
		return durq_error_set(DURQ_EIO, "'%s' is a symbolic link; refusing to open the "
				      "database through it (give the real path)", path);
	int rc = sq_error(c, sqlite3_errcode(c->db), path);
	if (rc == DURQ_EIO)
		durq_error_set(DURQ_EIO, "cannot open database '%s': %s", path,
			       sqlite3_errmsg(c->db));
	return rc;
}

/* max_payload must fit what SQLite can store: an instance row holds output and custom
 * status, each up to max_payload, and a row is bounded by SQLITE_LIMIT_LENGTH. Without this
 * check a bind over the limit failed (now caught per bind, see sq_step) on every large op. */
static int check_payload_limit(sq_conn *c)
{
	size_t limit = (size_t)sqlite3_limit(c->db, SQLITE_LIMIT_LENGTH, -1);
	size_t cap = limit > 2 * SQ_ROW_HEADROOM ? (limit - SQ_ROW_HEADROOM) / 2 : 0;
	if (c->p->opts->max_payload <= cap)
		return DURQ_OK;
	return durq_error_set(DURQ_EINVAL, "max_payload %zu exceeds what the sqlite provider can "
			      "store: %zu bytes (an instance row holds output and custom status, "
			      "and a row is at most SQLITE_LIMIT_LENGTH = %zu bytes)",
			      c->p->opts->max_payload, cap, limit);
}

int sq_conn_open_role(sq_provider *p, sq_conn **out, int role)
{
	sq_conn *c = calloc(1, sizeof(*c));
	int rc;
	if (!c)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	c->p = p;
	c->role = role == DURQ_CONN_WATCH ? DURQ_CONN_READ : role;
	if (role == DURQ_CONN_WRITE &&
	    ((rc = open_db_file(p)) < 0 || (rc = companions_0600(p)) < 0)) {
		free(c);
		return rc;
	}
	/* NOFOLLOW: no connection, reader or writer, reaches the file through a symbolic link
	 * (the directory part of p->path is resolved once, in durq_sqlite_provider_new) */
	rc = sqlite3_open_v2(p->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
			     SQLITE_OPEN_NOFOLLOW, p->opts->sqlite_vfs);
	if (rc != SQLITE_OK) {
		rc = open_error(c);
		sq_conn_free(c);
		return rc;
	}
	if ((rc = apply_profile(c)) < 0 || (rc = check_payload_limit(c)) < 0 ||
	    (role == DURQ_CONN_WRITE && ((rc = create_schema(c)) < 0 ||
					 (rc = check_schema_objects(c)) < 0 ||
					 (rc = companions_0600(p)) < 0)) ||
	    (role == DURQ_CONN_WRITE && !p->is_memory && (rc = sq_ckpt_attach(c)) < 0)) {
		sq_conn_free(c);
		return rc;
	}
	c->base.provider = &p->base;
	*out = c;
	return DURQ_OK;
}

static int sq_conn_open(durq_provider *prov, durq_conn **out, int role)
{
	sq_conn *c = NULL;
	int rc = sq_conn_open_role((sq_provider *)prov, &c, role);
	if (rc == DURQ_OK)
		*out = &c->base;
	return rc;
}

/* A pool connection must come back with no transaction open. */
static int sq_conn_check(durq_conn *conn)
{
	sq_conn *c = sq_conn_of(conn);
	if (!sqlite3_get_autocommit(c->db)) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return durq_error_set(DURQ_EIO, "connection returned with an open transaction");
	}
	return DURQ_OK;
}

static int run_simple(sq_conn *c, enum sq_stmt_id id, const char *what)
{
	return sq_exec(c, sq_stmt(c, id), what);
}

/* Claims-only transactions commit with synchronous=NORMAL (no WAL flush); the next FULL
 * commit flushes the WAL, their frames included. See DURQ_TXN_NO_FLUSH. */
static int set_sync(sq_conn *c, int level)
{
	static const enum sq_stmt_id ids[] = {[DURQ_SYNC_OFF] = SQ_SYNC_OFF,
					      [DURQ_SYNC_NORMAL] = SQ_SYNC_NORMAL,
					      [DURQ_SYNC_FULL] = SQ_SYNC_FULL};
	if (c->sync_now == level)
		return DURQ_OK;
	int rc = run_simple(c, ids[level], "PRAGMA synchronous");
	if (rc == DURQ_OK)
		c->sync_now = level;
	return rc;
}

static int sq_txn_begin(durq_conn *conn, unsigned int flags)
{
	sq_conn *c = sq_conn_of(conn);
	int want = c->p->opts->synchronous;
	if ((flags & (DURQ_TXN_NO_FLUSH | DURQ_TXN_DEFER_FLUSH)) && want == DURQ_SYNC_FULL)
		want = DURQ_SYNC_NORMAL;
	c->txn_flags = flags;
	if (c->ckpt)
		sq_ckpt_yield(c->ckpt);
	int rc = set_sync(c, want);
	return rc < 0 ? rc : run_simple(c, SQ_BEGIN, "BEGIN IMMEDIATE");
}

/* On some errors (disk full, I/O, out of memory) SQLite rolls the whole transaction back by
 * itself. A SAVEPOINT then would open a new transaction that RELEASE commits on its own:
 * refuse instead, so the rest of the batch fails unapplied and the commit fails them all. */
static int in_txn(sq_conn *c, const char *what)
{
	return sqlite3_get_autocommit(c->db)
		       ? durq_error_set(DURQ_EIO, "%s: the transaction was rolled back by an "
				      "earlier error in this batch", what)
		       : DURQ_OK;
}

static void note_wal(sq_conn *c);

static int sq_txn_commit(durq_conn *conn)
{
	sq_conn *c = sq_conn_of(conn);
	int rc = in_txn(c, "COMMIT");
	if (rc < 0)
		return rc;
	rc = run_simple(c, SQ_COMMIT, "COMMIT");
	if (rc == DURQ_OK && (c->txn_flags & DURQ_TXN_DEFER_FLUSH))
		note_wal(c);
	if (rc == DURQ_OK && !c->ckpt) /* a write connection's checkpoints: sqlite_ckpt.c */
		checkpoint_policy(c);
	return rc;
}

/*
 * Deferred flush (DURQ_PROVIDER_DEFERRED_FLUSH). A deferred commit runs with
 * synchronous=NORMAL, which in WAL mode writes the commit's frames without an fsync (SQLite
 * still syncs the WAL header after a restart, and the WAL before a checkpoint copies it);
 * sq_flush then does the fsync synchronous=FULL would have done at COMMIT, on the core's
 * flush thread, through the same sqlite3_file (so a wrapper VFS sees it). The WAL is only
 * appended to between checkpoints, so one fsync covers every commit before it.
 * The WAL's sqlite3_file lives as long as the connection: its pointer is taken on the
 * committer thread after a commit (SQLITE_FCNTL_JOURNAL_POINTER) and only read here.
 */
static void note_wal(sq_conn *c)
{
	sqlite3_file *f = NULL;
	if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) == SQLITE_OK &&
	    f && f->pMethods && f != ck_pr_load_ptr(&c->wal))
		ck_pr_store_ptr(&c->wal, f);
}

static int sq_flush(durq_conn *conn)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_file *f = ck_pr_load_ptr(&c->wal);
	if (!f) /* the core flushes only after a deferred commit, which notes the WAL */
		return durq_error_set(DURQ_EIO, "flush of '%s': no WAL file known (was the "
				      "transaction committed with DURQ_TXN_DEFER_FLUSH?)", c->p->path);
	int rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
	if (rc == SQLITE_OK)
		return DURQ_OK;
	return durq_error_set((rc & 0xff) == SQLITE_FULL ? DURQ_EFULL : DURQ_EIO,
			      "fsync of the WAL of '%s' failed: %s (%d)", c->p->path,
			      sqlite3_errstr(rc), rc);
}

/* After a failed flush the WAL file's state on disk is unknown (a later fsync may report
 * success for pages the failed one dropped): copy the whole WAL into the database file
 * (read back through the page cache), fsync that, and empty the WAL. */
static int sq_flush_recover(durq_conn *conn)
{
	sq_conn *c = sq_conn_of(conn);
	int log = 0, ckpt = 0;
	if (c->ckpt) /* a second checkpoint at once would fail at once with SQLITE_BUSY */
		sq_ckpt_pause(c->ckpt);
	c->busy_cap_ms = SQ_FORCE_BUDGET_MS;
	int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &ckpt);
	c->busy_cap_ms = 0;
	if (c->ckpt)
		sq_ckpt_resume(c->ckpt);
	if (rc != SQLITE_OK)
		return sq_error(c, rc, "checkpoint(TRUNCATE) after a failed flush");
	return DURQ_OK;
}

static int sq_txn_rollback(durq_conn *conn)
{
	sq_conn *c = sq_conn_of(conn);
	if (sqlite3_get_autocommit(c->db))
		return DURQ_OK; /* SQLite already rolled back (e.g. after an I/O error) */
	return run_simple(c, SQ_ROLLBACK, "ROLLBACK");
}

static int sq_op_begin(durq_conn *conn)
{
	sq_conn *c = sq_conn_of(conn);
	int rc = in_txn(c, "SAVEPOINT");
	return rc < 0 ? rc : run_simple(c, SQ_SAVEPOINT, "SAVEPOINT");
}

static int sq_op_end(durq_conn *conn, int keep)
{
	sq_conn *c = sq_conn_of(conn);
	int rc = in_txn(c, keep ? "RELEASE" : "ROLLBACK TO");
	if (rc < 0)
		return rc;
	rc = keep ? DURQ_OK : run_simple(c, SQ_ROLLBACK_TO, "ROLLBACK TO");
	int rc2 = run_simple(c, SQ_RELEASE, "RELEASE");
	return rc < 0 ? rc : rc2;
}

/* Ops that are one statement need no savepoint: SQLite undoes a statement that fails by
 * itself (statement journal), and one that matched no row (a stale token) changed nothing.
 * That saves two statements (SAVEPOINT, RELEASE) per ack, abandon and renew. */
static bool single_statement(const durq_op *op)
{
	switch (op->kind) {
	case DURQ_OP_WORK_ACK:
		return op->u.work_ack.completion == NULL;
	case DURQ_OP_WORK_ABANDON:
	case DURQ_OP_WORK_RENEW:
	case DURQ_OP_ORCH_RENEW:
		return true;
	case DURQ_OP_ORCH_ENQUEUE:
		return op->u.orch_enqueue.n == 1;
	case DURQ_OP_WORK_ENQUEUE:
		return op->u.work_enqueue.n == 1;
	default:
		return false;
	}
}

static void set_result(durq_op_result *r, int rc, const char *msg)
{
	r->rc = rc;
	if (rc < 0 && rc != DURQ_EMPTY)
		snprintf(r->message, sizeof(r->message), "%s", msg);
	else
		r->message[0] = '\0';
}

/* One op inside its own savepoint, so a failing op rolls back alone. */
static int apply_in_savepoint(sq_conn *c, durq_op *op, durq_op_result *res,
			      const durq_op_ctx *ctx)
{
	int rc = sq_op_begin(&c->base);
	if (rc < 0)
		return rc;
	rc = sq_op_apply(&c->base, op, ctx);
	int keep = rc >= 0 || rc == DURQ_EMPTY;
	char msg[sizeof(res->message)];
	snprintf(msg, sizeof(msg), "%s", keep ? "" : durq_error_last());
	int erc = sq_op_end(&c->base, keep);
	if (erc < 0 && sqlite3_get_autocommit(c->db))
		return erc; /* the transaction is gone: fail the whole batch */
	if (erc < 0 && keep) {
		rc = erc;
		snprintf(msg, sizeof(msg), "%s", durq_error_last());
	}
	set_result(res, rc, msg);
	return DURQ_OK;
}

/* The batch method. If SQLite itself rolled the transaction back (I/O error, disk full),
 * the batch stops with that error and the core fails every op of it. */
static int sq_op_apply_batch(durq_conn *conn, durq_op *const *ops, durq_op_result *res, size_t n,
			     const durq_op_ctx *ctx)
{
	sq_conn *c = sq_conn_of(conn);
	for (size_t i = 0; i < n; i++) {
		int rc;
		if (!single_statement(ops[i])) {
			if ((rc = apply_in_savepoint(c, ops[i], &res[i], ctx)) < 0)
				return rc;
			continue;
		}
		rc = sq_op_apply(&c->base, ops[i], ctx);
		if (rc < 0 && sqlite3_get_autocommit(c->db))
			return rc;
		set_result(&res[i], rc, rc < 0 ? durq_error_last() : "");
	}
	return DURQ_OK;
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int sq_stats(durq_provider *prov, durq_provider_stats *out)
{
	sq_provider *p = (sq_provider *)prov;
	char wal[4096];
	snprintf(wal, sizeof(wal), "%s-wal", p->path);
	out->db_bytes = file_size(p->path);
	out->wal_bytes = file_size(wal);
	out->busy_waits = ck_pr_load_64(&p->busy_waits);
	return DURQ_OK;
}

/* The companions first: while the database file is there no new database takes its name. */
static void remove_files(int dirfd, const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s-wal", path);
	unlinkat(dirfd, buf, 0);
	snprintf(buf, sizeof(buf), "%s-shm", path);
	unlinkat(dirfd, buf, 0);
	unlinkat(dirfd, path, 0);
}

static void sq_free(durq_provider *prov)
{
	sq_provider *p = (sq_provider *)prov;
	if (p->is_memory && p->path) {
		char lock[4096];
		remove_files(AT_FDCWD, p->path);
		snprintf(lock, sizeof(lock), "%s-lock", p->path);
		unlinkat(AT_FDCWD, lock, 0);
	}
	if (p->is_memory && p->lock_fd >= 0)
		close(p->lock_fd); /* after the removal: a sweeper never sees it unlocked */
	free(p->path);
	free(p->vfs);
	free(p);
}

/* ---- in-memory databases ------------------------------------------------------------ */

#define MEM_PREFIX "durq-mem-"

/* The directory, resolved (SQLITE_OPEN_NOFOLLOW refuses any link on the path): the one
 * the caller named in DURQ_MEMORY_DIR, else /dev/shm if it is a tmpfs — never a disk the
 * caller did not name. */
static int memory_dir(sq_provider *p, char **out)
{
	const char *dir = secure_getenv("DURQ_MEMORY_DIR");
	struct statfs fs;
	struct stat st;
	if (dir && dir[0] != '/')
		return durq_error_set(DURQ_EINVAL, "DURQ_MEMORY_DIR='%s': expected an absolute "
				      "directory path", dir);
	if (dir && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
		return durq_error_set(DURQ_EIO, "in-memory provider: DURQ_MEMORY_DIR='%s' is not a "
				      "directory", dir);
	if (!dir) {
		dir = p->shm_dir;
		if (statfs(dir, &fs) != 0)
			return durq_error_set(DURQ_EIO, "in-memory provider: %s is missing (%s); set "
					      "DURQ_MEMORY_DIR to name a directory", dir,
					      strerror(errno));
		if ((unsigned long)fs.f_type != TMPFS_MAGIC)
			return durq_error_set(DURQ_EIO, "in-memory provider: %s is not a tmpfs; "
					      "refusing to put an in-memory database on a disk (set "
					      "DURQ_MEMORY_DIR to name a directory)", dir);
	} else if (statfs(dir, &fs) == 0 && (unsigned long)fs.f_type != TMPFS_MAGIC) {
		durq_log_emit(p->opts, DURQ_LOG_WARN, "CONFIG", "DURQ_MEMORY_DIR='%s' is not a "
			      "tmpfs: in-memory databases are files on that file system", dir);
	}
	if (!(*out = realpath(dir, NULL)))
		return durq_error_set(DURQ_EIO, "in-memory provider: %s: %s", dir, strerror(errno));
	return DURQ_OK;
}

static int same_file(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/*
 * A new database file DB, 0600, and beside it DB-lock, on which we hold flock(LOCK_SH) for
 * the provider's life. Liveness lives on a file of its own because the sweeper must never
 * open a database file: closing any descriptor of a file drops every POSIX lock the process
 * holds on it, so sweeping a live database of another handle of this process would release
 * SQLite's locks on it. A sweeper may lock and remove the files between their creation and
 * our flock: then they are no longer at their paths and we take another name.
 */
static int memory_create(sq_provider *p, const char *dir)
{
	size_t n = strlen(dir) + sizeof("/" MEM_PREFIX "XXXXXX");
	for (int tries = 0; tries < 16; tries++) {
		char *path = malloc(n), lock[4096];
		if (!path)
			return durq_error_set(DURQ_ENOMEM, "out of memory");
		snprintf(path, n, "%s/" MEM_PREFIX "XXXXXX", dir);
		int db = mkostemp(path, O_CLOEXEC); /* mode 0600 */
		int fd = -1;
		if (db >= 0) {
			snprintf(lock, sizeof(lock), "%s-lock", path);
			fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		}
		if (db < 0 || fd < 0) {
			int err = errno;
			if (db >= 0) {
				close(db);
				unlink(path);
			}
			free(path);
			return durq_error_set(DURQ_EIO, "in-memory provider: cannot create a file in "
					      "%s: %s", dir, strerror(err));
		}
		int ok = flock(fd, LOCK_SH) == 0 && same_file(fd, lock) && same_file(db, path);
		close(db); /* brand new: no connection holds a lock on it yet */
		if (ok) {
			p->path = path;
			p->lock_fd = fd;
			return DURQ_OK;
		}
		close(fd);
		free(path);
	}
	return durq_error_set(DURQ_EIO, "in-memory provider: cannot lock a new file in %s", dir);
}

/* A lock file is exactly MEM_PREFIX + the 6 characters mkostemp chose + "-lock". SQLite's
 * files beside a database (-wal, -shm, and the -journal it creates and deletes while it
 * switches a new database to WAL) are never judged live or dead by themselves: a sweep that
 * removed a live -journal made the other process's open fail with
 * SQLITE_IOERR_DELETE_NOENT. */
static int is_companion(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && (!strcmp(name + n - 4, "-wal") || !strcmp(name + n - 4, "-shm"));
}

static int is_lock_name(const char *name)
{
	size_t n = strlen(name);
	return n == strlen(MEM_PREFIX) + 6 + 5 && !strcmp(name + n - 5, "-lock");
}

/* One entry of the sweep: a DB-lock whose lock nobody holds (its process died without
 * closing), with its database, -wal and -shm; or a -wal/-shm whose database file is gone.
 * Only the lock file is ever opened (see memory_create). */
static void sweep_one(sq_provider *p, int dirfd, const char *name)
{
	struct stat st;
	if (is_companion(name)) {
		char base[256];
		snprintf(base, sizeof(base), "%.*s", (int)(strlen(name) - 4), name);
		if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT &&
		    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_uid == geteuid())
			unlinkat(dirfd, name, 0);
		return;
	}
	if (!is_lock_name(name))
		return; /* a database, a -journal or a stranger: judged by its lock file only */
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
	    flock(fd, LOCK_EX | LOCK_NB) == 0) {
		char base[256];
		snprintf(base, sizeof(base), "%.*s", (int)(strlen(name) - 5), name);
		remove_files(dirfd, base);
		unlinkat(dirfd, name, 0);
		durq_log_emit(p->opts, DURQ_LOG_INFO, "CONFIG", "removed the in-memory database "
			      "%s of a process that died without closing it", base);
	}
	close(fd);
}

/* Every open in-memory database holds flock(LOCK_SH) on its file (flock locks are apart
 * from SQLite's fcntl locks on Linux, and per open file, so handles of one process exclude
 * each other too): a file whose exclusive lock we can take has no owner left. */
static void memory_sweep(sq_provider *p, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, MEM_PREFIX, strlen(MEM_PREFIX)))
			sweep_one(p, dirfd(d), e->d_name);
	closedir(d);
}

/* In-memory = a private WAL database on tmpfs: readers never block the writer, unlike
 * shared-cache :memory: (table locks) or memdb (no WAL). Nothing touches a disk. */
static int memory_open(sq_provider *p)
{
	char *dir;
	int rc = memory_dir(p, &dir);
	if (rc < 0)
		return rc;
	if ((rc = memory_create(p, dir)) == DURQ_OK)
		memory_sweep(p, dir);
	free(dir);
	return rc;
}

/* The directory part resolved once (links there are the operator's choice); the file name
 * itself is never followed. Unresolvable paths stay as given: opening them fails and the
 * message names what the caller wrote. */
static char *resolve_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return strdup(path);
	char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
	char *real = dir ? realpath(*dir ? dir : "/", NULL) : NULL;
	free(dir);
	if (!real)
		return strdup(path);
	size_t n = strlen(real) + strlen(base) + 2;
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base);
	free(real);
	return out;
}

/* URL parameters override the options: sqlite:PATH?vfs=NAME&synchronous=full&busy_timeout_ms=N */
static int apply_params(sq_provider *p, const durq_provider_param *prm, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *k = prm[i].key, *v = prm[i].value;
		char *end;
		long ms;
		if (!strcmp(k, "vfs")) {
			free(p->vfs);
			if (!(p->vfs = strdup(v)))
				return durq_error_set(DURQ_ENOMEM, "out of memory");
			p->resolved.sqlite_vfs = *v ? p->vfs : NULL;
		} else if (!strcmp(k, "synchronous")) {
			int lvl = !strcasecmp(v, "off") ? DURQ_SYNC_OFF
				: !strcasecmp(v, "normal") ? DURQ_SYNC_NORMAL
				: !strcasecmp(v, "full") ? DURQ_SYNC_FULL : 0;
			if (!lvl)
				return durq_error_set(DURQ_EINVAL, "sqlite URL: synchronous='%.32s': "
						      "expected off, normal or full", v);
			p->resolved.synchronous = lvl;
		} else if (!strcmp(k, "busy_timeout_ms")) {
			errno = 0;
			ms = strtol(v, &end, 10);
			if (errno || end == v || *end || ms < 1 || ms > 3600000)
				return durq_error_set(DURQ_EINVAL, "sqlite URL: busy_timeout_ms='%.32s': "
						      "expected 1..3600000", v);
			p->resolved.busy_timeout_ms = (int)ms;
		} else {
			return durq_error_set(DURQ_EINVAL, "sqlite URL: unknown parameter '%.64s' "
					      "(known: vfs, synchronous, busy_timeout_ms)", k);
		}
	}
	return DURQ_OK;
}

static int provider_new(durq_provider **out, const char *path, const char *shm_dir,
			const durq_options *opts, const durq_provider_param *prm, size_t nprm)
{
	sq_provider *p = calloc(1, sizeof(*p));
	int rc;
	if (!p)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	p->is_memory = path == NULL;
	/* the handle resolves the same options the same way (flags below) */
	if ((rc = durq_options_resolve(&p->resolved, opts,
				       p->is_memory ? DURQ_PROVIDER_VOLATILE : 0)) < 0 ||
	    (rc = apply_params(p, prm, nprm)) < 0) {
		free(p->vfs);
		free(p);
		return rc;
	}
	p->opts = &p->resolved;
	p->alloc = durq_mem_alloc;
	p->lock_fd = -1;
	p->shm_dir = shm_dir;
	if (p->is_memory) {
		if ((rc = memory_open(p)) < 0) {
			free(p->vfs);
			free(p);
			return rc;
		}
	} else if (!(p->path = resolve_dir(path))) {
		free(p->vfs);
		free(p);
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	}
	p->base = (durq_provider){
		.version = DURQ_PROVIDER_VERSION,
		.name = p->is_memory ? "sqlite-memory" : "sqlite-file",
		.flags = (p->is_memory ? DURQ_PROVIDER_VOLATILE : DURQ_PROVIDER_DEFERRED_FLUSH) |
			 DURQ_PROVIDER_QUEUE_SETS | DURQ_PROVIDER_VERSION_FILTER,
		.settings = &p->resolved,
		.conn_open = sq_conn_open,
		.conn_close = sq_conn_close,
		.conn_check = sq_conn_check,
		.txn_begin = sq_txn_begin,
		.txn_commit = sq_txn_commit,
		.txn_rollback = sq_txn_rollback,
		.op_begin = sq_op_begin,
		.op_end = sq_op_end,
		.op_apply = sq_op_apply,
		.history_read = sq_history_read,
		.instance_get = sq_instance_get,
		.instance_list = sq_instance_list,
		.execution_list = sq_execution_list,
		.dead_list = sq_dead_list,
		.queue_depths = sq_queue_depths,
		.next_due = sq_next_due,
		.pragma_get = sq_pragma_get,
		.data_version = sq_data_version,
		.stats = sq_stats,
		.free = sq_free,
		.op_apply_batch = sq_op_apply_batch,
		.query = sq_query,
		.admin = &durq_sqlite_admin,
		.flush = sq_flush,
		.flush_recover = sq_flush_recover,
	};
	p->base.flags |= DURQ_PROVIDER_SESSIONS; /* G1: activity sessions (sqlite_contract.c) */
	*out = &p->base;
	return DURQ_OK;
}

int durq_sqlite_provider_new(durq_provider **out, const char *path, const durq_options *opts)
{
	return provider_new(out, path, "/dev/shm", opts, NULL, 0);
}

int durq_sqlite_memory_provider_new(durq_provider **out, const char *shm_dir,
				    const durq_options *opts)
{
	return provider_new(out, NULL, shm_dir, opts, NULL, 0);
}

/* "sqlite:PATH[?params]" (a file, created 0600) or "sqlite::memory:[?params]". */
int durq_sqlite_factory(durq_provider **out, const durq_provider_config *cfg, void *ctx)
{
	(void)ctx;
	if (!*cfg->location)
		return durq_error_set(DURQ_EINVAL, "durq_open: empty path in '%s' (expected "
				      "sqlite:path or sqlite::memory:)", cfg->url);
	int mem = !strcmp(cfg->location, ":memory:");
	return provider_new(out, mem ? NULL : cfg->location, "/dev/shm", cfg->opts, cfg->params,
			    cfg->n_params);
}
