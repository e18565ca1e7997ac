/*
 * sqlite_admin.c — the SQLite provider's operator hooks (durq/provider.h, struct
 * durq_provider_admin): checkpoint, integrity, vacuum, per-queue depths, peeks at work items
 * and dead letters, dead-letter purge, the WAL's commit counter, the raw export/import
 * of every table, and the handle-stats table (its schema, its op, its read). Statements
 * here are prepared per call (operator calls are rare); the hot path's cached statements
 * live in sqlite_provider.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ck_pr.h>

#include "sqlite_internal.h"
#include "sqlite_provider.h"

#define MAX_COLS 64
#define MAX_TABLES 32

static int prepare(sq_conn *c, const char *sql, sqlite3_stmt **s)
{
	sq_check(c); /* a column copy's failure is counted from here */
	int rc = sqlite3_prepare_v2(c->db, sql, -1, s, NULL);
	return rc == SQLITE_OK ? DURQ_OK : sq_error(c, rc, "prepare");
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static uint64_t wal_size(sq_conn *c)
{
	char wal[4096];
	snprintf(wal, sizeof(wal), "%s-wal", c->p->path);
	return file_size(wal);
}

/* Step to the end: DURQ_OK, or the error of the step / of a column copy. */
static int finish(sq_conn *c, sqlite3_stmt *s, int rc, const char *what)
{
	int copy = sq_check(c);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sq_error(c, rc, what);
	if (copy != SQLITE_OK)
		return sq_error(c, copy, what);
	return DURQ_OK;
}

static int sq_checkpoint(durq_conn *conn, durq_checkpoint_result *out)
{
	sq_conn *c = sq_conn_of(conn);
	int log = -1, done = -1;
	out->wal_bytes_before = wal_size(c);
	int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
	out->log_frames = log;
	out->checkpointed = done;
	out->wal_bytes_after = wal_size(c);
	if (rc == SQLITE_BUSY)
		return durq_error_set(DURQ_EBUSY, "checkpoint: readers or a writer kept the WAL "
				      "busy for busy_timeout (%d of %d frames copied)", done, log);
	return rc == SQLITE_OK ? DURQ_OK : sq_error(c, rc, "checkpoint");
}

/* Append one line to a report (durq_mem_*). */
static int report_add(char **r, size_t *len, const char *line)
{
	size_t n = strlen(line);
	char *p = durq_mem_realloc(*r, *len + n + 2);
	if (!p)
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	memcpy(p + *len, line, n);
	p[*len + n] = '\n';
	p[*len + n + 1] = '\0';
	*len += n + 1;
	*r = p;
	return DURQ_OK;
}

/* durq's own invariants; each query counts the rows that break one. */
static const char *const checks[][2] = {
	{"SELECT count(*) FROM executions e WHERE NOT EXISTS (SELECT 1 FROM instances i "
	 "WHERE i.id = e.instance_id)", "executions without their instance"},
	{"SELECT count(*) FROM history h WHERE NOT EXISTS (SELECT 1 FROM executions e "
	 "WHERE e.instance_id = h.instance_id AND e.execution_id = h.execution_id)",
	 "history rows without their execution"},
	{"SELECT count(*) FROM instances i WHERE NOT EXISTS (SELECT 1 FROM executions e "
	 "WHERE e.instance_id = i.id AND e.execution_id = i.execution_id)",
	 "instances without their current execution"},
	{"SELECT count(*) FROM work_queue WHERE (lock_token IS NULL) <> (locked_until IS NULL)",
	 "work items with half a lease"},
};

static int count_problems(sq_conn *c, char **r, size_t *len, int *bad)
{
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		sqlite3_stmt *s;
		int rc = prepare(c, checks[i][0], &s);
		if (rc < 0)
			return rc;
		int st = sqlite3_step(s);
		int64_t n = st == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
		sqlite3_finalize(s);
		if (st != SQLITE_ROW)
			return sq_error(c, st, "integrity");
		if (n > 0) {
			char line[160];
			snprintf(line, sizeof(line), "%lld %s", (long long)n, checks[i][1]);
			*bad = 1;
			if ((rc = report_add(r, len, line)) < 0)
				return rc;
		}
	}
	return DURQ_OK;
}

static int sq_integrity(durq_conn *conn, char **report)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_stmt *s;
	char *r = NULL;
	size_t len = 0;
	int bad = 0, st, rc = prepare(c, "PRAGMA integrity_check", &s);
	if (rc < 0)
		return rc;
	while (rc == DURQ_OK && (st = sqlite3_step(s)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(s, 0);
		if (line && strcmp(line, "ok") != 0) {
			bad = 1;
			rc = report_add(&r, &len, line);
		}
	}
	sqlite3_finalize(s);
	if (rc == DURQ_OK && st != SQLITE_DONE)
		rc = sq_error(c, st, "integrity_check");
	if (rc == DURQ_OK)
		rc = count_problems(c, &r, &len, &bad);
	if (rc == DURQ_OK && !bad)
		rc = report_add(&r, &len, "ok");
	if (rc < 0) {
		durq_mem_free(r);
		return rc;
	}
	*report = r;
	return bad ? durq_error_set(DURQ_ECORRUPT, "integrity check of '%s' failed (the report "
				    "lists the problems)", c->p->path) : DURQ_OK;
}

static int sq_vacuum(durq_conn *conn)
{
	sq_conn *c = sq_conn_of(conn);
	int rc = sqlite3_exec(c->db, "VACUUM", NULL, NULL, NULL);
	return rc == SQLITE_OK ? DURQ_OK : sq_error(c, rc, "VACUUM");
}

/* ---- queues, peeks, purge ------------------------------------------------------------ */

#define ORCH_LEASED                                                                         \
	"EXISTS (SELECT 1 FROM instance_locks l WHERE l.instance_id = q.instance_id "          \
	"AND l.locked_until > ?1 AND l.token = q.lock_token)"
#define WORK_READY                                                                          \
	"((lock_token IS NULL AND visible_at <= ?1) OR (lock_token IS NOT NULL AND "           \
	"locked_until <= ?1))"

static const char sql_orch_row[] =
	"SELECT 0, coalesce(sum(visible_at <= ?1 AND NOT " ORCH_LEASED "), 0), "
	"coalesce(sum(visible_at > ?1), 0), coalesce(sum(" ORCH_LEASED "), 0), "
	"min(CASE WHEN visible_at <= ?1 AND NOT " ORCH_LEASED " THEN visible_at END) "
	"FROM orch_queue q";
static const char sql_work_rows[] =
	"SELECT queue, sum(" WORK_READY "), sum(lock_token IS NULL AND visible_at > ?1), "
	"sum(lock_token IS NOT NULL AND locked_until > ?1), "
	"min(CASE WHEN " WORK_READY " THEN visible_at END) "
	"FROM work_queue GROUP BY queue ORDER BY queue";

static int queue_rows(sq_conn *c, const char *sql, int kind, int64_t now, durq_queue_info **out,
		      size_t *n, size_t *cap)
{
	sqlite3_stmt *s;
	int rc = prepare(c, sql, &s), st;
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(s, 1, now);
	while ((st = sqlite3_step(s)) == SQLITE_ROW) {
		if ((rc = sq_grow((void **)out, cap, *n, sizeof(**out))) < 0)
			break;
		durq_queue_info *q = &(*out)[(*n)++];
		q->kind = kind;
		q->name = kind == DURQ_QUEUE_WORK ? sq_col_text(c, s, 0) : NULL;
		q->ready = sqlite3_column_int64(s, 1);
		q->delayed = sqlite3_column_int64(s, 2);
		q->leased = sqlite3_column_int64(s, 3);
		q->oldest_ms = sqlite3_column_int64(s, 4);
	}
	if (rc < 0) {
		sqlite3_finalize(s);
		return rc;
	}
	return finish(c, s, st, "queue list");
}

static int sq_queue_list(durq_conn *conn, durq_queue_info **out, size_t *n, int64_t now)
{
	sq_conn *c = sq_conn_of(conn);
	size_t cap = 0;
	int rc = sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL); /* one snapshot for both */
	if (rc != SQLITE_OK)
		return sq_error(c, rc, "queue list");
	rc = queue_rows(c, sql_orch_row, DURQ_QUEUE_ORCH, now, out, n, &cap);
	if (rc == DURQ_OK)
		rc = queue_rows(c, sql_work_rows, DURQ_QUEUE_WORK, now, out, n, &cap);
	sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	if (rc < 0) {
		durq_queue_infos_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static void work_info_row(sq_conn *c, sqlite3_stmt *s, durq_work_info *w)
{
	w->id = sqlite3_column_int64(s, 0);
	w->queue = sq_col_text(c, s, 1);
	w->instance_id = sq_col_text(c, s, 2);
	w->execution_id = (uint64_t)sqlite3_column_int64(s, 3);
	w->activity_id = (uint64_t)sqlite3_column_int64(s, 4);
	w->priority = sqlite3_column_int(s, 5);
	w->attempt = sqlite3_column_int(s, 6);
	w->payload = sq_col_blob(c, s, 7, &w->payload_len);
	w->visible_at_ms = sqlite3_column_int64(s, 8);
	w->locked_until_ms = sqlite3_column_int64(s, 9);
	w->created_ms = sqlite3_column_int64(s, 10);
}

static int sq_work_peek(durq_conn *conn, durq_work_info **out, size_t *n, const char *queue,
			int64_t after_id, size_t max)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_stmt *s;
	size_t cap = 0;
	int st, rc = prepare(c, "SELECT id, queue, instance_id, execution_id, activity_id, "
			     "priority, attempt, payload, visible_at, "
			     "CASE WHEN lock_token IS NULL THEN 0 ELSE locked_until END, created_ms "
			     "FROM work_queue WHERE id > ?1 AND (?2 IS NULL OR queue = ?2) "
			     "ORDER BY id LIMIT ?3", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(s, 1, after_id);
	if (queue)
		sqlite3_bind_text(s, 2, queue, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)max);
	while ((st = sqlite3_step(s)) == SQLITE_ROW) {
		if ((rc = sq_grow((void **)out, &cap, *n, sizeof(**out))) < 0)
			break;
		work_info_row(c, s, &(*out)[(*n)++]);
	}
	if (rc == DURQ_OK)
		rc = finish(c, s, st, "work peek");
	else
		sqlite3_finalize(s);
	if (rc < 0) {
		durq_work_infos_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int sq_dead_page(durq_conn *conn, durq_dead_letter **out, size_t *n, int64_t after_id,
			size_t max)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_stmt *s;
	size_t cap = 0;
	int st, rc = prepare(c, "SELECT id, source, queue, instance_id, execution_id, activity_id, "
			     "kind, attempt, payload, dead_at FROM dead_letters WHERE id > ?1 "
			     "ORDER BY id LIMIT ?2", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(s, 1, after_id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	while ((st = sqlite3_step(s)) == SQLITE_ROW) {
		if ((rc = sq_grow((void **)out, &cap, *n, sizeof(**out))) < 0)
			break;
		durq_dead_letter *d = &(*out)[(*n)++];
		d->id = sqlite3_column_int64(s, 0);
		d->source = sqlite3_column_int(s, 1);
		d->queue = sq_col_text(c, s, 2);
		d->instance_id = sq_col_text(c, s, 3);
		d->execution_id = (uint64_t)sqlite3_column_int64(s, 4);
		d->activity_id = (uint64_t)sqlite3_column_int64(s, 5);
		d->kind = sqlite3_column_int(s, 6);
		d->attempt = sqlite3_column_int(s, 7);
		d->payload = sq_col_blob(c, s, 8, &d->payload_len);
		d->dead_at_ms = sqlite3_column_int64(s, 9);
	}
	if (rc == DURQ_OK)
		rc = finish(c, s, st, "dead letter page");
	else
		sqlite3_finalize(s);
	if (rc < 0) {
		durq_dead_letters_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int sq_dead_purge(durq_conn *conn, size_t *purged, const durq_dead_filter *f)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_stmt *s;
	int rc = prepare(c, "DELETE FROM dead_letters WHERE (?1 <= 0 OR id = ?1) AND "
			 "(?2 <= 0 OR dead_at < ?2) AND (?3 IS NULL OR (source = 2 AND queue = ?3))",
			 &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(s, 1, f->id);
	sqlite3_bind_int64(s, 2, f->dead_before_ms);
	if (f->queue)
		sqlite3_bind_text(s, 3, f->queue, -1, SQLITE_STATIC);
	/* one statement is its own transaction; the busy handler waits for the writer */
	int st = sqlite3_step(s);
	sqlite3_finalize(s);
	if (st != SQLITE_DONE)
		return sq_error(c, st, "dead letter purge");
	*purged = (size_t)sqlite3_changes64(c->db);
	return DURQ_OK;
}

/*
 * Commits of every process: the WAL index header's change counter (iChange, at byte 8 of
 * the header, native order; SQLite bumps it at every commit). Read through SQLite's own
 * mapping of the -shm (xShmMap of the connection's file): opening the -shm ourselves and
 * closing it would drop this process's POSIX locks on it. The header is stored twice; a
 * read that sees both copies agree is not torn.
 */
static int sq_activity(durq_conn *conn, durq_db_activity *out)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_file *f = NULL;
	volatile void *map = NULL;
	sqlite3_stmt *s;
	int rc = prepare(c, "SELECT count(*) FROM sqlite_schema", &s);
	if (rc < 0)
		return rc;
	sqlite3_step(s); /* a read: the connection maps the wal-index */
	sqlite3_finalize(s);
	if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK ||
	    !f || !f->pMethods || f->pMethods->iVersion < 2 || !f->pMethods->xShmMap)
		return DURQ_OK;
	if (f->pMethods->xShmMap(f, 0, 32768, 0, &map) != SQLITE_OK || !map)
		return DURQ_OK;
	for (int i = 0; i < 100; i++) {
		uint32_t a, b;
		memcpy(&a, (const char *)map + 8, 4);
		ck_pr_fence_load(); /* the two copies of the header, in order */
		memcpy(&b, (const char *)map + 48 + 8, 4);
		if (a == b) {
			out->commits = a;
			break;
		}
	}
	return DURQ_OK;
}

static int sq_schema_version(durq_conn *conn, int *out)
{
	sq_conn *c = sq_conn_of(conn);
	sqlite3_stmt *s;
	int rc = prepare(c, "PRAGMA user_version", &s);
	if (rc < 0)
		return rc;
	int st = sqlite3_step(s);
	*out = st == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_finalize(s);
	return st == SQLITE_ROW ? DURQ_OK : sq_error(c, st, "schema version");
}

/* ---- export / import ----------------------------------------------------------------- */

typedef struct sq_table {
	char name[128];
	char *cols[MAX_COLS];
	size_t ncols;
	char order[512]; /* primary key columns, quoted, for ORDER BY */
} sq_table;

static void tables_free(sq_table *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < t[i].ncols; j++)
			free(t[i].cols[j]);
}

/* "name" with "" doubled, appended to buf. Names come from the database's own schema. */
static void quote(char *buf, size_t cap, const char *name)
{
	size_t n = strlen(buf);
	if (n + 1 < cap)
		buf[n++] = '"';
	for (const char *p = name; *p && n + 3 < cap; p++) {
		buf[n++] = *p;
		if (*p == '"')
			buf[n++] = '"';
	}
	buf[n++] = '"';
	buf[n] = '\0';
}

static int table_columns(sq_conn *c, sq_table *t)
{
	char sql[256] = "SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid";
	sqlite3_stmt *s;
	int rc = prepare(c, sql, &s), st, npk = 0;
	char *pk[MAX_COLS] = {0};
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, t->name, -1, SQLITE_STATIC);
	while ((st = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		int k = sqlite3_column_int(s, 1);
		if (t->ncols == MAX_COLS || !name || !(t->cols[t->ncols] = strdup(name))) {
			sqlite3_finalize(s);
			return durq_error_set(DURQ_ENOMEM, "table %s: too many columns or out of "
					      "memory", t->name);
		}
		if (k > 0 && k <= MAX_COLS)
			pk[k - 1] = t->cols[t->ncols], npk = k > npk ? k : npk;
		t->ncols++;
	}
	sqlite3_finalize(s);
	if (st != SQLITE_DONE)
		return sq_error(c, st, "table columns");
	t->order[0] = '\0';
	for (int i = 0; i < npk; i++) {
		if (i)
			strcat(t->order, ", ");
		if (pk[i])
			quote(t->order, sizeof(t->order), pk[i]);
	}
	if (!npk)
		snprintf(t->order, sizeof(t->order), "rowid");
	return DURQ_OK;
}

/* durq's tables in name order (each one's logical name is its SQLite name), without
 * handle_stats: live counters of running processes, not data to move. */
static int list_tables(sq_conn *c, sq_table *t, size_t *n)
{
	sqlite3_stmt *s;
	int rc = prepare(c, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE "
			 "'sqlite\\_%' ESCAPE '\\' AND name <> 'handle_stats' ORDER BY name", &s), st;
	*n = 0;
	if (rc < 0)
		return rc;
	while ((st = sqlite3_step(s)) == SQLITE_ROW && *n < MAX_TABLES) {
		memset(&t[*n], 0, sizeof(t[*n]));
		snprintf(t[*n].name, sizeof(t[*n].name), "%s", sqlite3_column_text(s, 0));
		(*n)++;
	}
	sqlite3_finalize(s);
	if (st != SQLITE_DONE && st != SQLITE_ROW)
		return sq_error(c, st, "list tables");
	for (size_t i = 0; i < *n; i++)
		if ((rc = table_columns(c, &t[i])) < 0)
			return rc;
	return DURQ_OK;
}

static int cell_of(sqlite3_stmt *s, int i, durq_cell *cell)
{
	switch (sqlite3_column_type(s, i)) {
	case SQLITE_NULL:
		*cell = (durq_cell){.type = DURQ_CELL_NULL};
		return DURQ_OK;
	case SQLITE_INTEGER:
		*cell = (durq_cell){.type = DURQ_CELL_INT, .i = sqlite3_column_int64(s, i)};
		return DURQ_OK;
	case SQLITE_TEXT:
		cell->type = DURQ_CELL_TEXT;
		cell->p = sqlite3_column_text(s, i);
		cell->len = (size_t)sqlite3_column_bytes(s, i);
		return cell->p ? DURQ_OK : durq_error_set(DURQ_ENOMEM, "out of memory");
	case SQLITE_BLOB:
		cell->type = DURQ_CELL_BLOB;
		cell->p = sqlite3_column_blob(s, i);
		cell->len = (size_t)sqlite3_column_bytes(s, i);
		if (!cell->p)
			cell->p = "";
		return DURQ_OK;
	default:
		return durq_error_set(DURQ_ECORRUPT, "export: a floating-point value in column %s "
				      "(durq stores none)", sqlite3_column_name(s, i));
	}
}

static int export_table(sq_conn *c, sq_table *t, durq_export_fn fn, void *ctx)
{
	char sql[1024] = "SELECT * FROM ";
	durq_cell cells[MAX_COLS];
	const char *names[MAX_COLS];
	sqlite3_stmt *s;
	quote(sql, sizeof(sql), t->name);
	snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), " ORDER BY %s", t->order);
	int rc = prepare(c, sql, &s), st;
	if (rc < 0)
		return rc;
	size_t n = (size_t)sqlite3_column_count(s);
	for (size_t i = 0; i < n && i < MAX_COLS; i++)
		names[i] = sqlite3_column_name(s, (int)i);
	durq_row row = {.table = t->name, .columns = names, .n = n > MAX_COLS ? MAX_COLS : n};
	rc = fn(ctx, &row);
	while (rc == DURQ_OK && (st = sqlite3_step(s)) == SQLITE_ROW) {
		for (size_t i = 0; i < row.n && rc == DURQ_OK; i++)
			rc = cell_of(s, (int)i, &cells[i]);
		row.cells = cells;
		if (rc == DURQ_OK)
			rc = fn(ctx, &row);
	}
	sqlite3_finalize(s);
	if (rc == DURQ_OK && st != SQLITE_DONE)
		rc = sq_error(c, st, "export");
	return rc;
}

static int sq_export(durq_conn *conn, durq_export_info *info, durq_export_fn fn, void *ctx)
{
	sq_conn *c = sq_conn_of(conn);
	sq_table t[MAX_TABLES];
	size_t n = 0;
	int rc = sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL); /* one read snapshot */
	if (rc != SQLITE_OK)
		return sq_error(c, rc, "export");
	rc = sq_schema_version(conn, &info->schema_version);
	info->provider = c->p->base.name;
	if (rc == DURQ_OK)
		rc = list_tables(c, t, &n);
	for (size_t i = 0; i < n && rc == DURQ_OK; i++)
		rc = export_table(c, &t[i], fn, ctx);
	tables_free(t, n);
	sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

/* The import's target table for a row, its columns checked: exactly the table's own. */
static sq_table *import_table(sq_table *t, size_t nt, const durq_row *row)
{
	sq_table *tab = NULL;
	for (size_t i = 0; i < nt && !tab; i++)
		if (!strcmp(t[i].name, row->table))
			tab = &t[i];
	if (!tab) {
		durq_error_set(DURQ_EINVAL, "import: no table '%.64s' in this database", row->table);
		return NULL;
	}
	if (row->n != tab->ncols) {
		durq_error_set(DURQ_EINVAL, "import: table %s has %zu columns here, the row has %zu "
			       "(a different schema)", tab->name, tab->ncols, row->n);
		return NULL;
	}
	for (size_t i = 0; i < row->n; i++) {
		size_t j = 0;
		while (j < tab->ncols && strcmp(tab->cols[j], row->columns[i]))
			j++;
		if (j == tab->ncols) {
			durq_error_set(DURQ_EINVAL, "import: table %s has no column '%.64s' here (a "
				       "different schema)", tab->name, row->columns[i]);
			return NULL;
		}
	}
	return tab;
}

static int table_empty(sq_conn *c, sq_table *t)
{
	char sql[256] = "SELECT 1 FROM ";
	sqlite3_stmt *s;
	quote(sql, sizeof(sql), t->name);
	strcat(sql, " LIMIT 1");
	int rc = prepare(c, sql, &s);
	if (rc < 0)
		return rc;
	int st = sqlite3_step(s);
	sqlite3_finalize(s);
	if (st == SQLITE_ROW)
		return durq_error_set(DURQ_EINVAL, "import: table %s already holds rows; import "
				      "needs an empty database (nothing was written)", t->name);
	return st == SQLITE_DONE ? DURQ_OK : sq_error(c, st, "import");
}

/* INSERT INTO "t"("a", "b") VALUES(?1, ?2), columns in the row's order (checked names). */
static int insert_stmt(sq_conn *c, sq_table *t, const durq_row *row, sqlite3_stmt **s)
{
	char sql[4096] = "INSERT INTO ";
	quote(sql, sizeof(sql), t->name);
	strcat(sql, "(");
	for (size_t i = 0; i < row->n; i++) {
		if (i)
			strcat(sql, ", ");
		quote(sql, sizeof(sql) - 16, row->columns[i]);
	}
	strcat(sql, ") VALUES(");
	for (size_t i = 0; i < row->n; i++)
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), "%s?%zu", i ? ", " : "", i + 1);
	strcat(sql, ")");
	return prepare(c, sql, s);
}

static int bind_cell(sq_conn *c, sqlite3_stmt *s, int i, const durq_cell *cell)
{
	int rc;
	switch (cell->type) {
	case DURQ_CELL_NULL:
		rc = sqlite3_bind_null(s, i);
		break;
	case DURQ_CELL_INT:
		rc = sqlite3_bind_int64(s, i, cell->i);
		break;
	case DURQ_CELL_TEXT:
		rc = sqlite3_bind_text64(s, i, cell->p ? cell->p : "", cell->len, SQLITE_TRANSIENT,
					 SQLITE_UTF8);
		break;
	case DURQ_CELL_BLOB:
		rc = sqlite3_bind_blob64(s, i, cell->p ? cell->p : "", cell->len, SQLITE_TRANSIENT);
		break;
	default:
		return durq_error_set(DURQ_EINVAL, "import: cell of unknown type %d", cell->type);
	}
	return rc == SQLITE_OK ? DURQ_OK : sq_error(c, rc, "import: bind");
}

/* Same table and column order as the statement we hold? */
static int same_shape(const sq_table *t, const durq_row *row, const sq_table *last,
		      const char *const *cols)
{
	if (t != last)
		return 0;
	for (size_t i = 0; i < row->n; i++)
		if (strcmp(cols[i], row->columns[i]))
			return 0;
	return 1;
}

static int import_rows(sq_conn *c, sq_table *t, size_t nt, size_t *count, durq_import_fn next,
		       void *ctx)
{
	sqlite3_stmt *ins = NULL;
	sq_table *last = NULL;
	const char *cols[MAX_COLS];
	durq_row row;
	int rc;
	while ((rc = next(ctx, &row)) == DURQ_OK) {
		sq_table *tab = import_table(t, nt, &row);
		if (!tab) {
			rc = DURQ_EINVAL;
			break;
		}
		if (!ins || !same_shape(tab, &row, last, cols)) {
			sqlite3_finalize(ins);
			ins = NULL;
			if ((rc = insert_stmt(c, tab, &row, &ins)) < 0)
				break;
			last = tab;
			for (size_t i = 0; i < row.n; i++) /* tab's own strings outlive the row */
				for (size_t j = 0; j < tab->ncols; j++)
					if (!strcmp(tab->cols[j], row.columns[i]))
						cols[i] = tab->cols[j];
		}
		for (size_t i = 0; i < row.n && rc == DURQ_OK; i++)
			rc = bind_cell(c, ins, (int)i + 1, &row.cells[i]);
		if (rc < 0)
			break;
		int st = sqlite3_step(ins);
		sqlite3_reset(ins);
		if (st != SQLITE_DONE) {
			rc = sq_error(c, st, tab->name);
			break;
		}
		(*count)++;
	}
	sqlite3_finalize(ins);
	return rc == DURQ_EMPTY ? DURQ_OK : rc;
}

static int sq_import(durq_conn *conn, size_t *count, durq_import_fn next, void *ctx)
{
	sq_conn *c = sq_conn_of(conn);
	sq_table t[MAX_TABLES];
	size_t nt = 0;
	int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sq_error(c, rc, "import: BEGIN IMMEDIATE");
	rc = list_tables(c, t, &nt);
	for (size_t i = 0; i < nt && rc == DURQ_OK; i++)
		rc = table_empty(c, &t[i]);
	if (rc == DURQ_OK)
		rc = import_rows(c, t, nt, count, next, ctx);
	tables_free(t, nt);
	if (rc == DURQ_OK && (rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
		rc = sq_error(c, rc, "import: COMMIT");
	if (rc < 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", durq_error_last());
		if (!sqlite3_get_autocommit(c->db))
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		*count = 0;
		durq_error_set(rc, "%s", msg);
	}
	return rc;
}

/* ---- the handle-stats table (src/publish.c writes it, durq_handle_stats_list reads) ---- */

const char sq_handle_stats_schema[] =
	"CREATE TABLE IF NOT EXISTS handle_stats(handle_key TEXT PRIMARY KEY, pid INTEGER NOT NULL,"
	" host TEXT NOT NULL, started_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
	" interval_ms INTEGER NOT NULL, counters TEXT NOT NULL) WITHOUT ROWID;";

/* Run one prepared statement that returns no rows; ?1.. bound by the caller. */
static int step_done(sq_conn *c, sqlite3_stmt *s, const char *what)
{
	int st = sq_step(c, s);
	sqlite3_finalize(s);
	return st == SQLITE_DONE ? DURQ_OK : sq_error(c, st, what);
}

/* A publication: other handles' rows not updated for 3 of their intervals (at least 3 s)
 * go (one writer at a time: nothing to wait for), then this handle's row is upserted. Or,
 * with no counters, this handle's row is deleted (close). Prepared per call: once per
 * interval. */
int sq_handle_stats_apply(sq_conn *c, const durq_op *op)
{
	const char *key = op->u.handle_stats.key;
	sqlite3_stmt *s;
	int rc;
	if (!op->u.handle_stats.counters) {
		if ((rc = prepare(c, "DELETE FROM handle_stats WHERE handle_key = ?1", &s)) < 0)
			return rc;
		sq_bind_text(c, s, 1, key, -1, SQLITE_STATIC);
		return step_done(c, s, "stats publication");
	}
	if ((rc = prepare(c, "DELETE FROM handle_stats WHERE updated_ms < ?1 - max(3 * interval_ms, "
			  "3000) AND handle_key <> ?2", &s)) < 0)
		return rc;
	sq_bind_int64(c, s, 1, op->u.handle_stats.updated_ms);
	sq_bind_text(c, s, 2, key, -1, SQLITE_STATIC);
	if ((rc = step_done(c, s, "stats publication")) < 0)
		return rc;
	if ((rc = prepare(c, "INSERT INTO handle_stats(handle_key, pid, host, started_ms, "
			  "updated_ms, interval_ms, counters) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
			  "ON CONFLICT(handle_key) DO UPDATE SET updated_ms = excluded.updated_ms, "
			  "interval_ms = excluded.interval_ms, counters = excluded.counters", &s)) < 0)
		return rc;
	sq_bind_text(c, s, 1, key, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 2, op->u.handle_stats.pid);
	sq_bind_text(c, s, 3, op->u.handle_stats.host, -1, SQLITE_STATIC);
	sq_bind_int64(c, s, 4, op->u.handle_stats.started_ms);
	sq_bind_int64(c, s, 5, op->u.handle_stats.updated_ms);
	sq_bind_int64(c, s, 6, op->u.handle_stats.interval_ms);
	sq_bind_text(c, s, 7, op->u.handle_stats.counters, -1, SQLITE_STATIC);
	return step_done(c, s, "stats publication");
}

/* Every row, one callback each; a plain read (one statement, one snapshot). */
static int sq_handle_stats(durq_conn *conn, durq_export_fn fn, void *ctx)
{
	sq_conn *c = sq_conn_of(conn);
	static const char *const names[] = {"handle_key", "pid", "host", "started_ms",
					    "updated_ms", "interval_ms", "counters"};
	durq_cell cells[7];
	durq_row row = {.table = "handle_stats", .columns = names, .cells = cells, .n = 7};
	sqlite3_stmt *s;
	int rc = prepare(c, "SELECT handle_key, pid, host, started_ms, updated_ms, interval_ms, "
			 "counters FROM handle_stats ORDER BY handle_key", &s), st = SQLITE_DONE;
	if (rc < 0)
		return rc;
	while (rc == DURQ_OK && (st = sqlite3_step(s)) == SQLITE_ROW) {
		for (int i = 0; i < 7 && rc == DURQ_OK; i++)
			rc = cell_of(s, i, &cells[i]);
		if (rc == DURQ_OK)
			rc = fn(ctx, &row);
	}
	if (rc < 0) {
		sqlite3_finalize(s);
		return rc;
	}
	return finish(c, s, st, "handle stats");
}

const struct durq_provider_admin durq_sqlite_admin = {
	.version = DURQ_PROVIDER_ADMIN_VERSION,
	.checkpoint = sq_checkpoint,
	.integrity = sq_integrity,
	.vacuum = sq_vacuum,
	.queue_list = sq_queue_list,
	.work_peek = sq_work_peek,
	.dead_page = sq_dead_page,
	.dead_purge = sq_dead_purge,
	.activity = sq_activity,
	.schema_version = sq_schema_version,
	.export_rows = sq_export,
	.import_rows = sq_import,
	.handle_stats = sq_handle_stats,
};
