/*
 * sqlite_contract.c — the SQLite provider's part of issue 10: the schema migration to
 * version 2 (per-execution name, version and completion time; completion time of
 * instances; the parent index; dead-letter ids never reused), the provider-side poison
 * record (G13), checked and cascading deletes (G8), retention (G9), the reads of G8-G12,
 * and activity sessions (G1: the session claim, holding, renewing, cleaning up). Every
 * write runs inside the op's savepoint of the group-committed transaction, so a refused op
 * leaves nothing behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

#define TRY(expr)                      \
	do {                           \
		int try_rc_ = (expr);  \
		if (try_rc_ < 0)       \
			return try_rc_; \
	} while (0)

/* Descendants deeper than this are not followed (a parent_id cycle stays bounded). */
#define TREE_DEPTH_MAX "1000"
#define TERMINAL "(2, 3, 5)" /* COMPLETED, FAILED, TERMINATED */

/* ---- schema ----------------------------------------------------------------------------- */

static const char migration_v2[] =
	"ALTER TABLE executions ADD COLUMN name TEXT;"
	"ALTER TABLE executions ADD COLUMN version TEXT;"
	"ALTER TABLE executions ADD COLUMN completed_ms INTEGER;"
	"ALTER TABLE instances ADD COLUMN completed_ms INTEGER;"
	"UPDATE executions SET name = (SELECT i.name FROM instances i WHERE i.id = instance_id),"
	" version = (SELECT i.version FROM instances i WHERE i.id = instance_id);"
	"UPDATE executions SET completed_ms = updated_ms WHERE status IN (2, 3, 4, 5);"
	"UPDATE instances SET completed_ms = updated_ms WHERE status IN " TERMINAL ";"
	"CREATE INDEX instances_parent ON instances(parent_id) WHERE parent_id IS NOT NULL;"
	"CREATE INDEX instances_completed ON instances(completed_ms)"
	" WHERE completed_ms IS NOT NULL;"
	/* AUTOINCREMENT: a deleted (requeued) dead letter's id is never handed out again, so a
	 * repeated durq_dead_requeue of it cannot move another item */
	"CREATE TABLE dead_letters_v2("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, source INTEGER NOT NULL, queue TEXT,"
	" instance_id TEXT, execution_id INTEGER, activity_id INTEGER, kind INTEGER,"
	" priority INTEGER, payload BLOB, attempt INTEGER NOT NULL, dead_at INTEGER NOT NULL);"
	"INSERT INTO dead_letters_v2 SELECT * FROM dead_letters;"
	"DROP TABLE dead_letters;"
	"ALTER TABLE dead_letters_v2 RENAME TO dead_letters;"
	"PRAGMA user_version = 2;";

/* Version 3: the per-instance key/value state (G3). */
static const char migration_v3[] =
	"CREATE TABLE kv(instance_id TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
	" PRIMARY KEY(instance_id, key)) WITHOUT ROWID;"
	"PRAGMA user_version = 3;";

/* Version 4: the runtime version an execution is pinned to (G4), mirrored on the instance
 * for its current execution so a filtered claim reads one row per candidate. */
static const char migration_v4[] =
	"ALTER TABLE executions ADD COLUMN runtime_version INTEGER;"
	"ALTER TABLE instances ADD COLUMN runtime_version INTEGER;"
	"PRAGMA user_version = 4;";

/* Version 5: activity sessions (G1). An item's session (NULL: none) and who holds each
 * session. The ready index of plain claims holds only items without a session, so items
 * of sessions never slow them down; session claims read their own ready index. A dead
 * letter keeps its session, so a requeue gives it back. */
static const char migration_v5[] =
	"ALTER TABLE work_queue ADD COLUMN session_id TEXT;"
	"ALTER TABLE dead_letters ADD COLUMN session_id TEXT;"
	"DROP INDEX work_ready;"
	"CREATE INDEX work_ready ON work_queue(queue, priority DESC, id)"
	" WHERE lock_token IS NULL AND session_id IS NULL;"
	"CREATE INDEX work_session_ready ON work_queue(queue, priority DESC, id)"
	" WHERE lock_token IS NULL AND session_id IS NOT NULL;"
	"CREATE INDEX work_by_session ON work_queue(session_id) WHERE session_id IS NOT NULL;"
	"CREATE TABLE sessions(session_id TEXT PRIMARY KEY, owner_id TEXT NOT NULL,"
	" locked_until INTEGER NOT NULL, last_activity_ms INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX sessions_owner ON sessions(owner_id);"
	"CREATE INDEX sessions_until ON sessions(locked_until);"
	"PRAGMA user_version = 5;";

const char *const sq_migrations[] = {migration_v2, migration_v3, migration_v4, migration_v5};
const int sq_n_migrations = 4;

/* The tree of ?1 (it first, then by depth, then id) with each instance's status. */
#define TREE_SQL                                                                           \
	"WITH RECURSIVE t(id, depth) AS (SELECT ?1, 0 UNION ALL SELECT i.id, t.depth + 1 "      \
	"FROM t JOIN instances i ON i.parent_id = t.id WHERE t.depth < " TREE_DEPTH_MAX ") "   \
	"SELECT t.id, i.status, min(t.depth) AS d FROM t JOIN instances i ON i.id = t.id "     \
	"GROUP BY t.id ORDER BY d, t.id"

/* Executions a prune takes: never the current one; ?2 keep_last, ?3 completed_before. */
#define PRUNE_SET                                                                          \
	"SELECT e.instance_id, e.execution_id FROM executions e JOIN instances i ON "          \
	"i.id = e.instance_id WHERE (?1 IS NULL OR e.instance_id = ?1) AND "                   \
	"e.execution_id < i.execution_id AND (?2 = 0 OR e.execution_id + ?2 <= i.execution_id) " \
	"AND (?3 = 0 OR e.completed_ms < ?3)"

/* Work claims over a queue set (G2): per queue, the ready and the expired rows, each bounded
 * by LIMIT on its partial index (as SQ_WORK_CLAIM), merged in priority/FIFO order. The set's
 * names are ?10..?26 (unused slots NULL: their branches find nothing). */
#define SET_BRANCH(k)                                                                       \
	" SELECT * FROM (SELECT id, priority FROM work_queue WHERE queue = ?" #k                \
	" AND lock_token IS NULL AND session_id IS NULL AND visible_at <= ?4"                   \
	" ORDER BY priority DESC, id LIMIT ?5)"                                                 \
	" UNION ALL SELECT * FROM (SELECT id, priority FROM work_queue WHERE queue = ?" #k      \
	" AND lock_token IS NOT NULL AND locked_until <= ?4 AND session_id IS NULL"             \
	" ORDER BY priority DESC, id LIMIT ?5)"
#define CLAIM_HEAD                                                                          \
	"UPDATE work_queue SET lock_token = ?1, locked_until = ?2, attempt = attempt + 1 "     \
	"WHERE id IN (SELECT id FROM ("
#define CLAIM_TAIL                                                                          \
	") ORDER BY priority DESC, id LIMIT ?5) RETURNING id, queue, instance_id, "            \
	"execution_id, activity_id, priority, attempt, payload"

/* G1: no other owner than ?6 holds the session of work row w (or it has none). */
#define SESSION_FREE(w)                                                                     \
	" NOT EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = " w ".session_id AND"       \
	" s.owner_id <> ?6 AND s.locked_until > ?4)"

/* G4: an instance a filtered claim may take: not created yet, unpinned, or in [?2, ?3]. */
#define IN_RANGE(inst)                                                                      \
	" AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = " inst " AND"                  \
	" (i.runtime_version < ?2 OR i.runtime_version > ?3))"

const char *const sq_contract_sql[SQ__COUNT - SQ_CONTRACT_FIRST] = {
	/* SQ_CLAIM_EXPIRED_INSTANCE / SQ_CLAIM_READY_INSTANCE with the range */
	[SQ_CLAIM_EXPIRED_FILTERED - SQ_CONTRACT_FIRST] =
		"SELECT l.instance_id FROM instance_locks l WHERE l.locked_until <= ?1 AND EXISTS "
		"(SELECT 1 FROM orch_queue q WHERE q.instance_id = l.instance_id AND q.visible_at "
		"<= ?1)" IN_RANGE("l.instance_id") " ORDER BY l.locked_until LIMIT 1",
	[SQ_CLAIM_READY_FILTERED - SQ_CONTRACT_FIRST] =
		"SELECT q.instance_id FROM orch_queue q WHERE q.lock_token IS NULL AND q.visible_at "
		"<= ?1 AND NOT EXISTS (SELECT 1 FROM instance_locks l WHERE l.instance_id = "
		"q.instance_id AND l.locked_until > ?1)" IN_RANGE("q.instance_id")
		" ORDER BY q.visible_at, q.id LIMIT 1",
	[SQ_PIN_EXECUTION - SQ_CONTRACT_FIRST] =
		"UPDATE executions SET runtime_version = ?3 WHERE instance_id = ?1 AND "
		"execution_id = ?2 AND runtime_version IS NULL",
	[SQ_PIN_SYNC - SQ_CONTRACT_FIRST] =
		"UPDATE instances SET runtime_version = (SELECT e.runtime_version FROM executions e "
		"WHERE e.instance_id = ?1 AND e.execution_id = ?2) WHERE id = ?1",
	[SQ_WORK_CLAIM_SET - SQ_CONTRACT_FIRST] =
		CLAIM_HEAD SET_BRANCH(10) " UNION ALL" SET_BRANCH(11) " UNION ALL" SET_BRANCH(12)
		" UNION ALL" SET_BRANCH(13) " UNION ALL" SET_BRANCH(14) " UNION ALL" SET_BRANCH(15)
		" UNION ALL" SET_BRANCH(16) " UNION ALL" SET_BRANCH(17) " UNION ALL" SET_BRANCH(18)
		" UNION ALL" SET_BRANCH(19) " UNION ALL" SET_BRANCH(20) " UNION ALL" SET_BRANCH(21)
		" UNION ALL" SET_BRANCH(22) " UNION ALL" SET_BRANCH(23) " UNION ALL" SET_BRANCH(24)
		" UNION ALL" SET_BRANCH(25) " UNION ALL" SET_BRANCH(26) CLAIM_TAIL,
	/* every queue: no index orders all queues' ready rows, so this reads them all */
	[SQ_WORK_CLAIM_ANY - SQ_CONTRACT_FIRST] =
		CLAIM_HEAD " SELECT * FROM (SELECT id, priority FROM work_queue WHERE lock_token IS "
		"NULL AND session_id IS NULL AND visible_at <= ?4 ORDER BY priority DESC, id LIMIT "
		"?5) UNION ALL SELECT * FROM (SELECT id, priority FROM work_queue WHERE lock_token "
		"IS NOT NULL AND locked_until <= ?4 AND session_id IS NULL ORDER BY priority DESC, "
		"id LIMIT ?5)" CLAIM_TAIL,
	/* G1: a claim for owner ?6 (one queue, ?3): the plain claim's two branches, and the
	 * ready and expired items of sessions no other owner holds (the expired branch reads
	 * the leased index, with or without a session), each bounded by LIMIT. */
	[SQ_WORK_CLAIM_SESSION - SQ_CONTRACT_FIRST] =
		CLAIM_HEAD
		" SELECT * FROM (SELECT id, priority FROM work_queue WHERE queue = ?3 AND lock_token"
		" IS NULL AND session_id IS NULL AND visible_at <= ?4 ORDER BY priority DESC, id"
		" LIMIT ?5) UNION ALL"
		" SELECT * FROM (SELECT id, priority FROM work_queue w WHERE queue = ?3 AND"
		" lock_token IS NULL AND session_id IS NOT NULL AND visible_at <= ?4 AND"
		SESSION_FREE("w") " ORDER BY priority DESC, id LIMIT ?5) UNION ALL"
		" SELECT * FROM (SELECT id, priority FROM work_queue w WHERE queue = ?3 AND"
		" lock_token IS NOT NULL AND locked_until <= ?4 AND (session_id IS NULL OR"
		SESSION_FREE("w") ") ORDER BY priority DESC, id LIMIT ?5)"
		CLAIM_TAIL ", session_id",
	/* claim by upsert: the owner holds it until ?3 (the same owner: never earlier than it
	 * already did), active now */
	[SQ_SESSION_HOLD - SQ_CONTRACT_FIRST] =
		"INSERT INTO sessions(session_id, owner_id, locked_until, last_activity_ms) "
		"VALUES(?1, ?2, ?3, ?4) ON CONFLICT(session_id) DO UPDATE SET owner_id = "
		"excluded.owner_id, locked_until = CASE WHEN owner_id = excluded.owner_id THEN "
		"max(locked_until, excluded.locked_until) ELSE excluded.locked_until END, "
		"last_activity_ms = excluded.last_activity_ms",
	[SQ_SESSION_TOUCH - SQ_CONTRACT_FIRST] =
		"UPDATE sessions SET last_activity_ms = ?2 WHERE session_id = ?1",
	/* live and active within ?4 ms: held until at least ?3 */
	[SQ_SESSION_RENEW - SQ_CONTRACT_FIRST] =
		"UPDATE sessions SET locked_until = max(locked_until, ?3) WHERE owner_id = ?1 AND "
		"locked_until > ?2 AND last_activity_ms + ?4 > ?2",
	/* expired or idle, and no item of the session queued */
	[SQ_SESSION_CLEANUP - SQ_CONTRACT_FIRST] =
		"DELETE FROM sessions WHERE (locked_until <= ?1 OR last_activity_ms + ?2 <= ?1) AND "
		"NOT EXISTS (SELECT 1 FROM work_queue w WHERE w.session_id = sessions.session_id)",
	[SQ_POISON_OUTPUT - SQ_CONTRACT_FIRST] =
		"UPDATE instances SET output = ?2 WHERE id = ?1",
	[SQ_POISON_EVENT - SQ_CONTRACT_FIRST] =
		"INSERT INTO history(instance_id, execution_id, event_id, payload) "
		"SELECT ?1, i.execution_id, coalesce((SELECT max(h.event_id) FROM history h "
		"WHERE h.instance_id = ?1 AND h.execution_id = i.execution_id), 0) + 1, ?2 "
		"FROM instances i WHERE i.id = ?1",
	[SQ_POISON_NOTIFY - SQ_CONTRACT_FIRST] =
		"INSERT INTO orch_queue(instance_id, kind, payload, visible_at, attempt, created_ms) "
		"SELECT i.parent_id, ?2, CAST(?1 AS BLOB), ?3, 0, ?3 FROM instances i "
		"WHERE i.id = ?1 AND EXISTS (SELECT 1 FROM instances p WHERE p.id = i.parent_id)",
	[SQ_TREE - SQ_CONTRACT_FIRST] = TREE_SQL,
	[SQ_POISON_EXEC_OUTPUT - SQ_CONTRACT_FIRST] =
		"UPDATE executions SET output = ?2 WHERE instance_id = ?1 AND execution_id = "
		"(SELECT execution_id FROM instances WHERE id = ?1)",
	[SQ_CHILD_CHECK - SQ_CONTRACT_FIRST] =
		"SELECT i.status, i.parent_id IS NOT NULL AND EXISTS (SELECT 1 FROM instances p "
		"WHERE p.id = i.parent_id), i.parent_id FROM instances i WHERE i.id = ?1",
	[SQ_PURGE_PICK - SQ_CONTRACT_FIRST] =
		"SELECT i.id FROM instances i WHERE i.completed_ms < ?1 AND i.status IN " TERMINAL
		" AND (i.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM instances p "
		"WHERE p.id = i.parent_id)) ORDER BY i.completed_ms, i.id LIMIT ?2",
	[SQ_PRUNE_EX_HISTORY - SQ_CONTRACT_FIRST] =
		"DELETE FROM history WHERE (instance_id, execution_id) IN (" PRUNE_SET ")",
	[SQ_PRUNE_EX_EXECUTIONS - SQ_CONTRACT_FIRST] =
		"DELETE FROM executions WHERE (instance_id, execution_id) IN (" PRUNE_SET ")",
	[SQ_CHILDREN - SQ_CONTRACT_FIRST] =
		"SELECT id FROM instances WHERE parent_id = ?1 ORDER BY id",
	[SQ_LIST_FILTER - SQ_CONTRACT_FIRST] =
		"SELECT id FROM instances WHERE id > ?1 AND (?3 = 0 OR status = ?3) AND "
		"(?4 IS NULL OR name = ?4) AND (?5 IS NULL OR version = ?5) AND created_ms >= ?6 AND "
		"(?7 = 0 OR created_ms < ?7) AND (?8 = 0 OR completed_ms >= ?8) AND "
		"(?9 = 0 OR completed_ms < ?9) ORDER BY id LIMIT ?2",
	[SQ_EXECUTION_GET - SQ_CONTRACT_FIRST] =
		"SELECT e.execution_id, e.status, e.created_ms, e.updated_ms, (SELECT count(*) "
		"FROM history h WHERE h.instance_id = e.instance_id AND h.execution_id = "
		"e.execution_id), e.completed_ms, e.name, e.version, e.output, "
		"coalesce(e.runtime_version, 0) FROM executions e "
		"WHERE e.instance_id = ?1 AND e.execution_id = CASE WHEN ?2 = 0 THEN "
		"(SELECT execution_id FROM instances WHERE id = ?1) ELSE ?2 END",
	[SQ_SYSTEM_COUNTS - SQ_CONTRACT_FIRST] =
		"SELECT (SELECT count(*) FROM instances), "
		"(SELECT count(*) FROM instances WHERE status = 1), "
		"(SELECT count(*) FROM instances WHERE status = 2), "
		"(SELECT count(*) FROM instances WHERE status = 3), "
		"(SELECT count(*) FROM instances WHERE status = 5), "
		"(SELECT count(*) FROM executions), (SELECT count(*) FROM history)",
	[SQ_CUSTOM_STATUS - SQ_CONTRACT_FIRST] =
		"SELECT custom_status_version, CASE WHEN custom_status_version > ?2 THEN "
		"custom_status END FROM instances WHERE id = ?1",
	[SQ_EXECUTION_LIST_V2 - SQ_CONTRACT_FIRST] =
		"SELECT e.execution_id, e.status, e.created_ms, e.updated_ms, "
		"(SELECT count(*) FROM history h WHERE h.instance_id = e.instance_id "
		"AND h.execution_id = e.execution_id), coalesce(e.completed_ms, 0), e.name, e.version, "
		"coalesce(e.runtime_version, 0) FROM executions e WHERE e.instance_id = ?1 "
		"ORDER BY e.execution_id",
	[SQ_KV_CLEAR_ALL - SQ_CONTRACT_FIRST] = "DELETE FROM kv WHERE instance_id = ?1",
	[SQ_KV_CLEAR - SQ_CONTRACT_FIRST] = "DELETE FROM kv WHERE instance_id = ?1 AND key = ?2",
	[SQ_KV_SET - SQ_CONTRACT_FIRST] =
		"INSERT INTO kv(instance_id, key, value) VALUES(?1, ?2, ?3) "
		"ON CONFLICT(instance_id, key) DO UPDATE SET value = excluded.value",
	[SQ_KV_COUNT - SQ_CONTRACT_FIRST] = "SELECT count(*) FROM kv WHERE instance_id = ?1",
	[SQ_KV_LIST - SQ_CONTRACT_FIRST] =
		"SELECT key, value FROM kv WHERE instance_id = ?1 ORDER BY key",
	[SQ_KV_GET - SQ_CONTRACT_FIRST] = "SELECT value FROM kv WHERE instance_id = ?1 AND key = ?2",
};

/* ---- small helpers ---------------------------------------------------------------------- */

static int exec_text(sq_conn *c, enum sq_stmt_id id, const char *a, const void *b, size_t blen,
		     const char *what)
{
	sqlite3_stmt *s = sq_stmt(c, id);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, a, -1, SQLITE_STATIC);
	sq_bind_blob(c, s, 2, b, blen);
	return sq_exec(c, s, what);
}

/* A growable list of owned strings. */
typedef struct strlist {
	char **v;
	int *status;
	size_t n, cap;
} strlist;

static void strlist_free(strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	free(l->status);
	memset(l, 0, sizeof(*l));
}

static int strlist_has(const strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return 1;
	return 0;
}

/* Takes s (owned); drops it if already there. */
static int strlist_add(strlist *l, char *s, int status)
{
	if (!s)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	if (strlist_has(l, s)) {
		free(s);
		return DURQ_OK;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **v = realloc(l->v, cap * sizeof(*v));
		int *st = v ? realloc(l->status, cap * sizeof(*st)) : NULL;
		if (v)
			l->v = v;
		if (!v || !st) {
			free(s);
			return durq_error_set(DURQ_ENOMEM, "out of memory");
		}
		l->status = st;
		l->cap = cap;
	}
	l->status[l->n] = status;
	l->v[l->n++] = s;
	return DURQ_OK;
}

/* Append the tree of id (it included) to l. */
static int tree_rows(sq_conn *c, const char *id, strlist *l)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_TREE);
	int rc, out = DURQ_OK;
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	while ((rc = sq_step(c, s)) == SQLITE_ROW)
		if ((out = strlist_add(l, sq_col_text(c, s, 0), sqlite3_column_int(s, 1))) < 0)
			break;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (out < 0)
		return out;
	return rc == SQLITE_DONE ? DURQ_OK : sq_error(c, rc, "read instance tree");
}

static int is_terminal(int status)
{
	return status == DURQ_STATUS_COMPLETED || status == DURQ_STATUS_FAILED ||
	       status == DURQ_STATUS_TERMINATED;
}

/* ---- poison record (G13) ---------------------------------------------------------------- */

int sq_poison_record(sq_conn *c, const char *id, int attempts, int max_attempts, int64_t now)
{
	char text[96];
	int len = snprintf(text, sizeof(text), "durq:poison attempts=%d max_attempts=%d", attempts,
			   max_attempts);
	TRY(exec_text(c, SQ_POISON_OUTPUT, id, text, (size_t)len, "record poison output"));
	TRY(exec_text(c, SQ_POISON_EXEC_OUTPUT, id, text, (size_t)len, "record poison output"));
	TRY(exec_text(c, SQ_POISON_EVENT, id, text, (size_t)len, "record poison event"));
	int kind = c->p->opts->poison_notify_kind;
	if (!kind)
		return DURQ_OK;
	sqlite3_stmt *s = sq_stmt(c, SQ_POISON_NOTIFY);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	sq_bind_int(c, s, 2, kind);
	sq_bind_int64(c, s, 3, now);
	return sq_exec(c, s, "notify parent of poison");
}

/* ---- deletes (G8, G9) ------------------------------------------------------------------- */

static int changes_into(sq_conn *c, enum sq_stmt_id id, const char *inst, uint64_t *counter)
{
	sqlite3_stmt *s = sq_stmt(c, id);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, inst, -1, SQLITE_STATIC);
	TRY(sq_exec(c, s, "delete instance"));
	*counter += (uint64_t)sqlite3_changes(c->db);
	return DURQ_OK;
}

static int delete_one(sq_conn *c, const char *id, durq_delete_counts *k)
{
	uint64_t locks = 0;
	TRY(changes_into(c, SQ_KV_CLEAR_ALL, id, &locks));
	TRY(changes_into(c, SQ_DEL_ORCH, id, &k->messages));
	TRY(changes_into(c, SQ_DEL_WORK, id, &k->messages));
	TRY(changes_into(c, SQ_DEL_LOCK, id, &locks));
	TRY(changes_into(c, SQ_DEL_HISTORY, id, &k->events));
	TRY(changes_into(c, SQ_DEL_EXECUTIONS, id, &k->executions));
	return changes_into(c, SQ_DEL_INSTANCE, id, &k->instances);
}

/* Status and "a sub-orchestration whose parent exists" of one named instance; ENOTFOUND. */
static int named_check(sq_conn *c, const char *id, int *status, int *child, char **parent)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_CHILD_CHECK);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	int rc = sq_step(c, s);
	if (rc == SQLITE_ROW) {
		*status = sqlite3_column_int(s, 0);
		*child = sqlite3_column_int(s, 1);
		*parent = sq_col_text(c, s, 2);
		if (sq_check(c) != SQLITE_OK)
			rc = SQLITE_NOMEM;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_DONE)
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found", id);
	return rc == SQLITE_ROW ? DURQ_OK : sq_error(c, rc, "read instance");
}

static int refuse_running(const strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (!is_terminal(l->status[i]))
			return durq_error_set(DURQ_ECONFLICT, "instance '%s' is not finished (status "
					      "%d); nothing deleted (DURQ_DELETE_FORCE deletes it)",
					      l->v[i], l->status[i]);
	return DURQ_OK;
}

/* Every named instance exists; without force none is a child of a parent that stays. */
static int collect(sq_conn *c, const durq_op *op, strlist *all)
{
	const char *const *ids = op->u.instance_delete_many.ids;
	int force = op->u.instance_delete_many.flags & DURQ_DELETE_FORCE;
	for (size_t i = 0; i < op->u.instance_delete_many.n; i++)
		TRY(tree_rows(c, ids[i], all));
	for (size_t i = 0; i < op->u.instance_delete_many.n; i++) {
		int status = 0, child = 0;
		char *parent = NULL;
		TRY(named_check(c, ids[i], &status, &child, &parent));
		int stays = child && parent && !strlist_has(all, parent);
		free(parent);
		if (stays && !force)
			return durq_error_set(DURQ_ECONFLICT, "instance '%s' is a sub-orchestration "
					      "of an instance that is not deleted with it; nothing "
					      "deleted (DURQ_DELETE_FORCE deletes it)", ids[i]);
	}
	return force ? DURQ_OK : refuse_running(all);
}

int sq_delete_many(sq_conn *c, durq_op *op, const durq_op_ctx *ctx)
{
	strlist all = {0};
	durq_delete_counts *k = &op->u.instance_delete_many.counts;
	(void)ctx;
	memset(k, 0, sizeof(*k));
	int rc = collect(c, op, &all);
	for (size_t i = 0; rc == DURQ_OK && i < all.n; i++)
		rc = delete_one(c, all.v[i], k);
	strlist_free(&all);
	return rc;
}

/* Roots finished before the bound, oldest first. */
static int purge_roots(sq_conn *c, const durq_op *op, strlist *roots)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_PURGE_PICK);
	int rc, out = DURQ_OK;
	if (!s)
		return DURQ_EIO;
	sq_bind_int64(c, s, 1, op->u.instance_delete_many.completed_before);
	sq_bind_int64(c, s, 2, (sqlite3_int64)op->u.instance_delete_many.limit);
	while ((rc = sq_step(c, s)) == SQLITE_ROW)
		if ((out = strlist_add(roots, sq_col_text(c, s, 0), 0)) < 0)
			break;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (out < 0)
		return out;
	return rc == SQLITE_DONE ? DURQ_OK : sq_error(c, rc, "pick instances to purge");
}

int sq_purge(sq_conn *c, durq_op *op, const durq_op_ctx *ctx)
{
	strlist roots = {0};
	durq_delete_counts *k = &op->u.instance_delete_many.counts;
	(void)ctx;
	memset(k, 0, sizeof(*k));
	int rc = purge_roots(c, op, &roots);
	for (size_t i = 0; rc == DURQ_OK && i < roots.n; i++) {
		strlist tree = {0};
		rc = tree_rows(c, roots.v[i], &tree);
		if (rc == DURQ_OK && refuse_running(&tree) == DURQ_OK)
			for (size_t j = 0; rc == DURQ_OK && j < tree.n; j++)
				rc = delete_one(c, tree.v[j], k);
		strlist_free(&tree);
	}
	strlist_free(&roots);
	return rc;
}

static int instance_exists(sq_conn *c, const char *id)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_INSTANCE_HEAD);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	int rc = sq_step(c, s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_ROW)
		return DURQ_OK;
	return rc == SQLITE_DONE ? durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found", id)
				 : sq_error(c, rc, "read instance");
}

int sq_prune_ex(sq_conn *c, durq_op *op)
{
	const char *id = op->u.execution_prune.instance_id;
	uint64_t keep = op->u.execution_prune.keep_last;
	int64_t before = op->u.execution_prune.completed_before;
	if (id)
		TRY(instance_exists(c, id));
	enum sq_stmt_id ids[2] = {SQ_PRUNE_EX_HISTORY, SQ_PRUNE_EX_EXECUTIONS};
	for (int i = 0; i < 2; i++) {
		sqlite3_stmt *s = sq_stmt(c, ids[i]);
		if (!s)
			return DURQ_EIO;
		sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
		sq_bind_int64(c, s, 2, keep > INT64_MAX ? INT64_MAX : (sqlite3_int64)keep);
		sq_bind_int64(c, s, 3, before);
		TRY(sq_exec(c, s, "prune executions"));
	}
	op->u.execution_prune.pruned = (size_t)sqlite3_changes(c->db);
	return DURQ_OK;
}

/* ---- reads (G8-G12) --------------------------------------------------------------------- */

/* Rows of s (bound) as a list of ids in *ids / *n (durq_mem_*). */
static int id_rows(sq_conn *c, sqlite3_stmt *s, char ***ids, size_t *n, const char *what)
{
	size_t cap = 0;
	int rc;
	while ((rc = sq_step(c, s)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			char **v = durq_mem_realloc(*ids, ncap * sizeof(*v));
			if (!v)
				break;
			*ids = v;
			cap = ncap;
		}
		if (!((*ids)[*n] = sq_col_text(c, s, 0)))
			break;
		(*n)++;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_ROW)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	return rc == SQLITE_DONE ? DURQ_OK : sq_error(c, rc, what);
}

static int q_children(sq_conn *c, durq_query *q)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_CHILDREN);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, q->u.ids.instance_id, -1, SQLITE_STATIC);
	return id_rows(c, s, &q->u.ids.ids, &q->u.ids.n, "list children");
}

static int q_tree(sq_conn *c, durq_query *q)
{
	TRY(instance_exists(c, q->u.ids.instance_id));
	sqlite3_stmt *s = sq_stmt(c, SQ_TREE);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, q->u.ids.instance_id, -1, SQLITE_STATIC);
	return id_rows(c, s, &q->u.ids.ids, &q->u.ids.n, "read instance tree");
}

static int q_list(sq_conn *c, durq_query *q)
{
	const durq_instance_filter *f = q->u.list.f;
	sqlite3_stmt *s = sq_stmt(c, SQ_LIST_FILTER);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, q->u.list.after_id ? q->u.list.after_id : "", -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 2, (sqlite3_int64)q->u.list.max);
	sq_bind_int(c, s, 3, f->status);
	sq_bind_text(c, s, 4, f->name, -1, SQLITE_STATIC);
	sq_bind_text(c, s, 5, f->version_tag, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 6, f->created_from_ms);
	sq_bind_int64(c, s, 7, f->created_before_ms);
	sq_bind_int64(c, s, 8, f->completed_from_ms);
	sq_bind_int64(c, s, 9, f->completed_before_ms);
	return id_rows(c, s, &q->u.list.ids, &q->u.list.n, "list instances");
}

static int q_execution(sq_conn *c, durq_query *q)
{
	durq_execution_info *e = q->u.execution.out;
	sqlite3_stmt *s = sq_stmt(c, SQ_EXECUTION_GET);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, q->u.execution.instance_id, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 2, (sqlite3_int64)q->u.execution.execution_id);
	int rc = sq_step(c, s);
	if (rc == SQLITE_ROW) {
		e->execution_id = (uint64_t)sqlite3_column_int64(s, 0);
		e->status = sqlite3_column_int(s, 1);
		e->created_ms = sqlite3_column_int64(s, 2);
		e->updated_ms = sqlite3_column_int64(s, 3);
		e->n_events = (size_t)sqlite3_column_int64(s, 4);
		e->completed_ms = sqlite3_column_int64(s, 5);
		e->name = sq_col_text(c, s, 6);
		e->version = sq_col_text(c, s, 7);
		e->output = sq_col_blob(c, s, 8, &e->output_len);
		e->runtime_version = sqlite3_column_int64(s, 9);
		if (sq_check(c) != SQLITE_OK)
			rc = SQLITE_NOMEM;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_DONE)
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' has no execution %llu",
				      q->u.execution.instance_id,
				      (unsigned long long)q->u.execution.execution_id);
	return rc == SQLITE_ROW ? DURQ_OK : sq_error(c, rc, "read execution");
}

static int q_counts(sq_conn *c, durq_query *q)
{
	durq_system_counts *o = q->u.counts.out;
	sqlite3_stmt *s = sq_stmt(c, SQ_SYSTEM_COUNTS);
	if (!s)
		return DURQ_EIO;
	int rc = sq_step(c, s);
	if (rc == SQLITE_ROW) {
		uint64_t *v[7] = {&o->instances, &o->running, &o->completed, &o->failed,
				  &o->terminated, &o->executions, &o->events};
		for (int i = 0; i < 7; i++)
			*v[i] = (uint64_t)sqlite3_column_int64(s, i);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? DURQ_OK : sq_error(c, rc, "count instances");
}

static int q_custom_status(sq_conn *c, durq_query *q)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_CUSTOM_STATUS);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, q->u.custom_status.instance_id, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 2, (sqlite3_int64)q->u.custom_status.last_seen);
	int rc = sq_step(c, s), newer = 0;
	if (rc == SQLITE_ROW) {
		q->u.custom_status.version = (uint64_t)sqlite3_column_int64(s, 0);
		newer = q->u.custom_status.version > q->u.custom_status.last_seen;
		if (newer)
			q->u.custom_status.value = sq_col_blob(c, s, 1, &q->u.custom_status.len);
		if (sq_check(c) != SQLITE_OK)
			rc = SQLITE_NOMEM;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_DONE)
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' not found",
				      q->u.custom_status.instance_id);
	if (rc != SQLITE_ROW)
		return sq_error(c, rc, "read custom status");
	return newer ? DURQ_OK : durq_error_set(DURQ_EMPTY, "custom status unchanged");
}

/* ---- runtime version pin (G4) ------------------------------------------------------ */

int sq_pin(sq_conn *c, const char *id, uint64_t exec, const durq_turn_result *r)
{
	enum sq_stmt_id ids[2] = {SQ_PIN_EXECUTION, SQ_PIN_SYNC};
	for (int i = r->runtime_version ? 0 : 1; i < 2; i++) {
		sqlite3_stmt *s = sq_stmt(c, ids[i]);
		if (!s)
			return DURQ_EIO;
		sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
		sq_bind_int64(c, s, 2, (sqlite3_int64)exec);
		if (i == 0)
			sq_bind_int64(c, s, 3, r->runtime_version);
		TRY(sq_exec(c, s, "pin runtime version"));
	}
	return DURQ_OK;
}

/* ---- activity sessions (G1) -------------------------------------------------------- */

int sq_session_hold(sq_conn *c, const durq_op *op, int64_t now)
{
	for (size_t i = 0; i < op->u.work_claim.n; i++) {
		const char *sess = op->u.work_claim.items[i].session_id;
		if (!sess)
			continue;
		sqlite3_stmt *s = sq_stmt(c, SQ_SESSION_HOLD);
		if (!s)
			return DURQ_EIO;
		sq_bind_text(c, s, 1, sess, -1, SQLITE_STATIC);
		sq_bind_text(c, s, 2, op->u.work_claim.owner_id, -1, SQLITE_STATIC);
		sq_bind_int64(c, s, 3, now + op->u.work_claim.session_lock_ms);
		sq_bind_int64(c, s, 4, now);
		TRY(sq_exec(c, s, "hold session"));
	}
	return DURQ_OK;
}

int sq_session_touch(sq_conn *c, const char *sess, int64_t now)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_SESSION_TOUCH);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, sess, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 2, now);
	return sq_exec(c, s, "record session activity");
}

int sq_session_renew(sq_conn *c, durq_op *op, int64_t now)
{
	op->u.session.count = 0;
	for (size_t i = 0; i < op->u.session.n; i++) { /* the core gives each owner once */
		sqlite3_stmt *s = sq_stmt(c, SQ_SESSION_RENEW);
		if (!s)
			return DURQ_EIO;
		sq_bind_text(c, s, 1, op->u.session.owners[i], -1, SQLITE_STATIC);
		sq_bind_int64(c, s, 2, now);
		sq_bind_int64(c, s, 3, now + op->u.session.extend_ms);
		sq_bind_int64(c, s, 4, op->u.session.idle_ms);
		TRY(sq_exec(c, s, "renew sessions"));
		op->u.session.count += (size_t)sqlite3_changes(c->db);
	}
	return DURQ_OK;
}

int sq_session_cleanup(sq_conn *c, durq_op *op, int64_t now)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_SESSION_CLEANUP);
	if (!s)
		return DURQ_EIO;
	sq_bind_int64(c, s, 1, now);
	sq_bind_int64(c, s, 2, op->u.session.idle_ms);
	TRY(sq_exec(c, s, "clean up sessions"));
	op->u.session.count = (size_t)sqlite3_changes(c->db);
	return DURQ_OK;
}

/* ---- key/value state (G3) ----------------------------------------------------------- */

static int kv_exec(sq_conn *c, enum sq_stmt_id id, const char *inst, const char *key,
		   const void *v, size_t len)
{
	sqlite3_stmt *s = sq_stmt(c, id);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, inst, -1, SQLITE_STATIC);
	if (key)
		sq_bind_text(c, s, 2, key, -1, SQLITE_STATIC);
	if (id == SQ_KV_SET)
		sq_bind_blob(c, s, 3, v ? v : "", len);
	return sq_exec(c, s, "change key/value state");
}

int sq_kv_apply(sq_conn *c, const char *id, const durq_turn_result *r)
{
	if (!r->kv_clear_all && !r->n_kv_clear && !r->n_kv_set)
		return DURQ_OK;
	if (r->kv_clear_all)
		TRY(kv_exec(c, SQ_KV_CLEAR_ALL, id, NULL, NULL, 0));
	for (size_t i = 0; i < r->n_kv_clear; i++)
		TRY(kv_exec(c, SQ_KV_CLEAR, id, r->kv_clear[i], NULL, 0));
	for (size_t i = 0; i < r->n_kv_set; i++)
		TRY(kv_exec(c, SQ_KV_SET, id, r->kv_set[i].key, r->kv_set[i].value,
			    r->kv_set[i].value_len));
	if (!r->n_kv_set)
		return DURQ_OK;
	sqlite3_stmt *s = sq_stmt(c, SQ_KV_COUNT);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	int rc = sq_step(c, s);
	int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return sq_error(c, rc, "count keys");
	if (n > DURQ_KV_MAX_KEYS) /* the core rolls the op back: nothing of the turn stays */
		return durq_error_set(DURQ_ETOOBIG, "instance '%s' would hold %lld keys, more "
				      "than DURQ_KV_MAX_KEYS %d", id, (long long)n,
				      DURQ_KV_MAX_KEYS);
	return DURQ_OK;
}

int sq_kv_rows(sq_conn *c, const char *id, durq_kv_entry **out, size_t *n)
{
	sqlite3_stmt *s = sq_stmt(c, SQ_KV_LIST);
	size_t cap = 0;
	int rc;
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, id, -1, SQLITE_STATIC);
	while ((rc = sq_step(c, s)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			durq_kv_entry *v = durq_mem_realloc(*out, ncap * sizeof(*v));
			if (!v)
				break;
			*out = v;
			cap = ncap;
		}
		durq_kv_entry *e = &(*out)[(*n)++];
		e->key = sq_col_text(c, s, 0);
		e->value = sq_col_blob(c, s, 1, &e->value_len);
		if (!e->value && sq_check(c) == SQLITE_OK) /* an empty value: a 1-byte buffer */
			e->value = durq_mem_calloc(1, 1);
		if (!e->key || !e->value)
			break;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_ROW) {
		sq_check(c);
		return durq_error_set(DURQ_ENOMEM, "out of memory reading key/values");
	}
	return rc == SQLITE_DONE ? DURQ_OK : sq_error(c, rc, "read key/values");
}

static int q_kv(sq_conn *c, durq_query *q)
{
	TRY(instance_exists(c, q->u.kv.instance_id));
	if (q->kind == DURQ_QUERY_KV_LIST)
		return sq_kv_rows(c, q->u.kv.instance_id, &q->u.kv.entries, &q->u.kv.n);
	sqlite3_stmt *s = sq_stmt(c, SQ_KV_GET);
	if (!s)
		return DURQ_EIO;
	sq_bind_text(c, s, 1, q->u.kv.instance_id, -1, SQLITE_STATIC);
	sq_bind_text(c, s, 2, q->u.kv.key, -1, SQLITE_STATIC);
	int rc = sq_step(c, s);
	if (rc == SQLITE_ROW) {
		q->u.kv.value = sq_col_blob(c, s, 0, &q->u.kv.len);
		if (!q->u.kv.value && sq_check(c) == SQLITE_OK)
			q->u.kv.value = durq_mem_calloc(1, 1);
		if (!q->u.kv.value)
			rc = SQLITE_NOMEM;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_DONE)
		return durq_error_set(DURQ_ENOTFOUND, "instance '%s' has no key '%s'",
				      q->u.kv.instance_id, q->u.kv.key);
	return rc == SQLITE_ROW ? DURQ_OK : sq_error(c, rc, "read key/value");
}

int sq_query(durq_conn *conn, durq_query *q)
{
	sq_conn *c = sq_conn_of(conn);
	switch (q->kind) {
	case DURQ_QUERY_CHILDREN: return q_children(c, q);
	case DURQ_QUERY_TREE: return q_tree(c, q);
	case DURQ_QUERY_LIST_FILTER: return q_list(c, q);
	case DURQ_QUERY_EXECUTION_GET: return q_execution(c, q);
	case DURQ_QUERY_SYSTEM_COUNTS: return q_counts(c, q);
	case DURQ_QUERY_CUSTOM_STATUS: return q_custom_status(c, q);
	case DURQ_QUERY_KV_GET:
	case DURQ_QUERY_KV_LIST: return q_kv(c, q);
	default: return durq_error_set(DURQ_EINVAL, "unknown query kind %d", q->kind);
	}
}
