/*
 * test_files.c — what durq does with files and the environment: database files 0600 (their
 * -wal/-shm too, also ones that existed with a looser mode), never opened through a
 * symbolic link; SQLite's hardening (trusted_schema off, defensive mode) really in effect;
 * a database holding objects durq did not create refused; environment overrides that
 * weaken a caller's setting logged; in-memory databases private, only on tmpfs or the
 * directory DURQ_MEMORY_DIR names, and swept once the process that opened them died.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit_util.h"
#include "durq_internal.h"
#include "sqlite/sqlite_internal.h"
#include "sqlite/sqlite_provider.h"

#define TMPFS_MAGIC_ 0x01021994

static const char *const env_vars[] = {"DURQ_SYNCHRONOUS", "DURQ_MAX_ATTEMPTS",
				       "DURQ_BUSY_TIMEOUT_MS", "DURQ_GROUP_COMMIT",
				       "DURQ_MEMORY_DIR", "DURQ_POOL_SIZE", "DURQ_MAX_BATCH"};

static int setup(void **state)
{
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
		unsetenv(env_vars[i]);
	*state = fx_new("files.db");
	return 0;
}

static int teardown(void **state)
{
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
		unsetenv(env_vars[i]);
	return fx_teardown(state);
}

/* ---- helpers ------------------------------------------------------------------------ */

static char *path_in(const char *dir, const char *file)
{
	char *p = malloc(PATH_MAX);
	snprintf(p, PATH_MAX, "%s/%s", dir, file);
	return p;
}

static int file_mode(const char *path)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	return (int)(st.st_mode & 07777);
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void assert_db_files_0600(const char *db)
{
	char p[PATH_MAX];
	assert_int_equal(file_mode(db), 0600);
	snprintf(p, sizeof(p), "%s-wal", db);
	assert_int_equal(file_mode(p), 0600);
	snprintf(p, sizeof(p), "%s-shm", db);
	assert_int_equal(file_mode(p), 0600);
}

static void enqueue_one(durq *db)
{
	durq_work w = {.payload = "x", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(db, &w, 1), DURQ_OK);
}

/* A database durq created, closed again. */
static void make_db(const char *url)
{
	durq *db;
	assert_int_equal(durq_open(&db, url, NULL), DURQ_OK);
	enqueue_one(db);
	durq_free(db);
}

static void plain_exec(const char *path, const char *sql)
{
	sqlite3 *s;
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(sqlite3_exec(s, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(s);
}

/* Log callback that keeps what it is given (called from any thread). */
typedef struct logbuf {
	pthread_mutex_t mu;
	int n;
	int level[128];
	char tag[128][16];
	char msg[128][512];
} logbuf;

static void log_keep(void *ctx, int level, const char *tag, const char *message)
{
	logbuf *b = ctx;
	pthread_mutex_lock(&b->mu);
	if (b->n < 128) {
		b->level[b->n] = level;
		snprintf(b->tag[b->n], sizeof(b->tag[0]), "%s", tag);
		snprintf(b->msg[b->n], sizeof(b->msg[0]), "%s", message);
		b->n++;
	}
	pthread_mutex_unlock(&b->mu);
}

/* WARN/CONFIG messages containing every one of the given strings. */
static int warns_with(logbuf *b, const char *a, const char *c, const char *d)
{
	int count = 0;
	pthread_mutex_lock(&b->mu);
	for (int i = 0; i < b->n; i++)
		if (b->level[i] == DURQ_LOG_WARN && !strcmp(b->tag[i], "CONFIG") &&
		    strstr(b->msg[i], a) && (!c || strstr(b->msg[i], c)) &&
		    (!d || strstr(b->msg[i], d)))
			count++;
	pthread_mutex_unlock(&b->mu);
	return count;
}

static durq_options logged_options(logbuf *b)
{
	durq_options o = DURQ_OPTIONS_INIT;
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->mu, NULL);
	o.log = log_keep;
	o.log_ctx = b;
	o.log_level = DURQ_LOG_DEBUG;
	return o;
}

/* ---- 1. files: 0600, never through a link --------------------------------------------- */

static void test_database_files_are_0600(void **state)
{
	fx *f = *state;
	char *path = path_in(f->dir, "files.db");
	mode_t old = umask(0); /* even with a permissive umask */
	assert_int_equal(durq_open(&f->db, f->url, NULL), DURQ_OK);
	enqueue_one(f->db);
	assert_db_files_0600(path);
	umask(old);
	free(path);
}

/* A database that exists with 0644 (no -wal/-shm yet) is tightened, and the -wal/-shm
 * SQLite creates next get 0600 from it, under umask 0. */
static void test_existing_0644_database_is_tightened(void **state)
{
	fx *f = *state;
	char *path = path_in(f->dir, "files.db");
	logbuf b;
	durq_options o = logged_options(&b);
	make_db(f->url);
	assert_int_equal(chmod(path, 0644), 0);
	mode_t old = umask(0);
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	enqueue_one(f->db);
	umask(old);
	assert_db_files_0600(path);
	assert_int_equal(warns_with(&b, "had mode 0644", path, NULL), 1);
	free(path);
}

/* -wal and -shm that already exist with 0644 (another connection has the database open)
 * are tightened too: SQLite would keep their mode. */
static void test_existing_0644_wal_and_shm_are_tightened(void **state)
{
	fx *f = *state;
	char *path = path_in(f->dir, "files.db");
	char wal[PATH_MAX], shm[PATH_MAX];
	sqlite3 *other;
	make_db(f->url);
	assert_int_equal(chmod(path, 0644), 0);
	mode_t old = umask(0);
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "SELECT count(*) FROM work_queue", NULL, NULL, NULL),
			 SQLITE_OK);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	snprintf(shm, sizeof(shm), "%s-shm", path);
	assert_int_equal(file_mode(wal), 0644); /* the situation this test is about */
	assert_int_equal(file_mode(shm), 0644);
	assert_int_equal(durq_open(&f->db, f->url, NULL), DURQ_OK);
	enqueue_one(f->db);
	umask(old);
	assert_db_files_0600(path);
	sqlite3_close(other);
	free(path);
}

static void test_symlink_at_database_path_is_refused(void **state)
{
	fx *f = *state;
	char *target = path_in(f->dir, "precious");
	char *link = path_in(f->dir, "link.db");
	char *dangling = path_in(f->dir, "dangling.db");
	char *absent = path_in(f->dir, "absent");
	char url[PATH_MAX], buf[64] = {0};
	FILE *t = fopen(target, "w");
	fputs("precious\n", t);
	fclose(t);
	assert_int_equal(chmod(target, 0644), 0);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(symlink(absent, dangling), 0);

	snprintf(url, sizeof(url), "sqlite:%s", link);
	assert_int_equal(durq_open(&f->db, url, NULL), DURQ_EIO);
	assert_null(f->db);
	assert_non_null(strstr(durq_error_last(), "symbolic link"));
	assert_non_null(strstr(durq_error_last(), "link.db"));
	t = fopen(target, "r"); /* the target untouched: content, mode, no -wal/-shm */
	assert_non_null(fgets(buf, sizeof(buf), t));
	fclose(t);
	assert_string_equal(buf, "precious\n");
	assert_int_equal(file_mode(target), 0644);
	snprintf(buf, sizeof(buf), "%s", "precious-wal");
	char *twal = path_in(f->dir, buf);
	assert_false(exists(twal));

	snprintf(url, sizeof(url), "sqlite:%s", dangling);
	assert_int_equal(durq_open(&f->db, url, NULL), DURQ_EIO);
	assert_non_null(strstr(durq_error_last(), "symbolic link"));
	assert_false(exists(absent)); /* O_CREAT did not create the link's target */
	free(twal);
	free(target);
	free(link);
	free(dangling);
	free(absent);
}

/* The file name is never followed, by any connection: a link swapped in after the writer
 * opened is refused to a reader. Links in the directory part are resolved once and fine. */
static void test_reader_refuses_a_link_swapped_in_later(void **state)
{
	fx *f = *state;
	char *path = path_in(f->dir, "files.db");
	char *moved = path_in(f->dir, "moved.db");
	durq_provider *prov;
	durq_conn *w, *r;
	assert_int_equal(durq_sqlite_provider_new(&prov, path, NULL), DURQ_OK);
	assert_int_equal(prov->conn_open(prov, &w, DURQ_CONN_WRITE), DURQ_OK);
	assert_int_equal(prov->conn_open(prov, &r, DURQ_CONN_READ), DURQ_OK);
	prov->conn_close(prov, r);
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(symlink(moved, path), 0);
	assert_int_equal(prov->conn_open(prov, &r, DURQ_CONN_READ), DURQ_EIO);
	assert_non_null(strstr(durq_error_last(), "symbolic link"));
	prov->conn_close(prov, w);
	prov->free(prov);
	free(path);
	free(moved);
}

static void test_linked_directory_is_fine(void **state)
{
	fx *f = *state;
	char *real = path_in(f->dir, "real");
	char *linked = path_in(f->dir, "linked");
	char url[PATH_MAX];
	assert_int_equal(mkdir(real, 0700), 0);
	assert_int_equal(symlink(real, linked), 0);
	snprintf(url, sizeof(url), "sqlite:%s/q.db", linked);
	assert_int_equal(durq_open(&f->db, url, NULL), DURQ_OK);
	enqueue_one(f->db);
	snprintf(url, sizeof(url), "%s/q.db", real);
	assert_db_files_0600(url);
	free(real);
	free(linked);
}

/* ---- 4. SQLite hardening in effect ---------------------------------------------------- */

static void assert_hardened(durq_conn *conn)
{
	sq_conn *c = sq_conn_of(conn);
	int v = -1;
	assert_int_equal(sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, -1, &v), SQLITE_OK);
	assert_int_equal(v, 1);
	v = -1;
	assert_int_equal(sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, -1, &v),
			 SQLITE_OK);
	assert_int_equal(v, 0);
	/* defensive: even with writable_schema the schema table cannot be written */
	assert_int_equal(sqlite3_exec(c->db, "PRAGMA writable_schema=ON", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(c->db, "UPDATE sqlite_schema SET sql = sql",
					  NULL, NULL, NULL), SQLITE_OK);
	sqlite3_exec(c->db, "PRAGMA writable_schema=OFF", NULL, NULL, NULL);
}

static void test_trusted_schema_off_and_defensive_on(void **state)
{
	fx *f = *state;
	char v[16];
	assert_int_equal(durq_open(&f->db, f->url, NULL), DURQ_OK);
	assert_int_equal(durq_pragma_get(f->db, v, sizeof(v), "trusted_schema"), DURQ_OK);
	assert_string_equal(v, "0");
	durq_free(f->db);
	f->db = NULL;

	char *path = path_in(f->dir, "files.db");
	durq_provider *prov;
	durq_conn *w, *r;
	assert_int_equal(durq_sqlite_provider_new(&prov, path, NULL), DURQ_OK);
	assert_int_equal(prov->conn_open(prov, &w, DURQ_CONN_WRITE), DURQ_OK);
	assert_int_equal(prov->conn_open(prov, &r, DURQ_CONN_READ), DURQ_OK);
	assert_hardened(w);
	assert_hardened(r);
	prov->conn_close(prov, r);
	prov->conn_close(prov, w);
	prov->free(prov);
	free(path);
}

/* ---- 5. objects durq did not create ---------------------------------------------------- */

static void assert_refused(fx *f, const char *file, const char *sql, const char *what)
{
	char url[PATH_MAX];
	char *path = path_in(f->dir, file);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	make_db(url);
	plain_exec(path, sql);
	durq *db = NULL;
	assert_int_equal(durq_open(&db, url, NULL), DURQ_ECORRUPT);
	assert_null(db);
	assert_non_null(strstr(durq_error_last(), what));
	assert_non_null(strstr(durq_error_last(), "refusing to open"));
	free(path);
}

static void test_objects_durq_did_not_create_are_refused(void **state)
{
	fx *f = *state;
	assert_refused(f, "trigger.db", "CREATE TRIGGER x AFTER INSERT ON work_queue BEGIN "
		       "DELETE FROM work_queue; END", "has a trigger 'x' that durq did not create");
	assert_refused(f, "table.db", "CREATE TABLE extra(a)",
		       "has a table 'extra' that durq did not create");
	assert_refused(f, "view.db", "CREATE VIEW v AS SELECT 1",
		       "has a view 'v' that durq did not create");
	assert_refused(f, "index.db", "CREATE INDEX extra_idx ON history(payload)",
		       "has an index 'extra_idx' that durq did not create");
	assert_refused(f, "altered.db", "DROP INDEX work_ready; CREATE INDEX work_ready ON "
		       "work_queue(id)", "index 'work_ready' whose definition durq did not create");
	/* a reserved name does not make a trigger SQLite's own (written past its name check) */
	assert_refused(f, "reserved.db", "PRAGMA writable_schema=ON; INSERT INTO sqlite_schema "
		       "VALUES('trigger', 'sqlite_x', 'work_queue', 0, 'CREATE TRIGGER sqlite_x "
		       "AFTER INSERT ON work_queue BEGIN SELECT 1; END')",
		       "has a trigger 'sqlite_x' that durq did not create");
}

static void test_sqlite_internal_tables_are_fine(void **state)
{
	fx *f = *state;
	char *path = path_in(f->dir, "files.db");
	make_db(f->url);
	plain_exec(path, "ANALYZE"); /* sqlite_stat1 */
	assert_int_equal(durq_open(&f->db, f->url, NULL), DURQ_OK);
	durq_free(f->db);
	f->db = NULL;
	assert_int_equal(durq_open(&f->db, f->url, NULL), DURQ_OK); /* and reopens */
	free(path);
}

/* ---- 3. environment overrides that weaken a caller's setting --------------------------- */

static void test_weakening_env_override_is_logged(void **state)
{
	fx *f = *state;
	logbuf b;
	durq_options o = logged_options(&b), got;
	o.synchronous = DURQ_SYNC_FULL;
	o.max_attempts = 5;
	o.busy_timeout_ms = 2000;
	o.commit_mode = DURQ_COMMIT_GROUP;
	setenv("DURQ_SYNCHRONOUS", "OFF", 1);
	setenv("DURQ_MAX_ATTEMPTS", "3", 1);
	setenv("DURQ_BUSY_TIMEOUT_MS", "100", 1);
	setenv("DURQ_GROUP_COMMIT", "0", 1);
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	assert_int_equal(durq_options_get(f->db, &got), DURQ_OK);
	assert_int_equal(got.synchronous, DURQ_SYNC_OFF); /* applied, but not silently */
	assert_int_equal(got.max_attempts, 3);
	/* once each, naming the variable, the caller's value and the new one */
	assert_int_equal(warns_with(&b, "DURQ_SYNCHRONOUS", "FULL (caller)", "to OFF"), 1);
	assert_int_equal(warns_with(&b, "DURQ_MAX_ATTEMPTS", "5 (caller)", "to 3"), 1);
	assert_int_equal(warns_with(&b, "DURQ_BUSY_TIMEOUT_MS", "2000 (caller)", "to 100"), 1);
	assert_int_equal(warns_with(&b, "DURQ_GROUP_COMMIT", "group (caller)", "to per-op"), 1);
	durq_free(f->db);
	f->db = NULL;
	pthread_mutex_destroy(&b.mu);
}

static void test_env_below_file_default_is_logged_raising_is_not(void **state)
{
	fx *f = *state;
	logbuf b;
	durq_options o = logged_options(&b);
	setenv("DURQ_SYNCHRONOUS", "NORMAL", 1); /* caller left the default: FULL for a file */
	setenv("DURQ_MAX_ATTEMPTS", "3", 1);     /* caller left the default: not a caller value */
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	assert_int_equal(warns_with(&b, "DURQ_SYNCHRONOUS", "FULL (default)", "to NORMAL"), 1);
	assert_int_equal(warns_with(&b, "DURQ_MAX_ATTEMPTS", NULL, NULL), 0);
	durq_free(f->db);
	f->db = NULL;
	pthread_mutex_destroy(&b.mu);

	o = logged_options(&b);
	o.synchronous = DURQ_SYNC_NORMAL;
	setenv("DURQ_SYNCHRONOUS", "FULL", 1); /* stronger than asked: nothing to warn about */
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	assert_int_equal(warns_with(&b, "DURQ_SYNCHRONOUS", NULL, NULL), 0);
	durq_free(f->db);
	f->db = NULL;
	pthread_mutex_destroy(&b.mu);
}

/* ---- 6. in-memory databases ------------------------------------------------------------ */

static const char *mem_path(durq *db)
{
	return ((sq_provider *)db->provider)->path;
}

static void test_memory_databases_are_private_wal(void **state)
{
	(void)state;
	durq *db;
	char jm[16];
	assert_int_equal(durq_open(&db, "sqlite::memory:", NULL), DURQ_OK);
	assert_int_equal(durq_pragma_get(db, jm, sizeof(jm), "journal_mode"), DURQ_OK);
	assert_string_equal(jm, "wal"); /* WAL concurrency, not shared-cache table locks */
	durq_free(db);
	/* each :memory: handle is private */
	durq *a, *b;
	assert_int_equal(durq_open(&a, "sqlite::memory:", NULL), DURQ_OK);
	assert_int_equal(durq_open(&b, "sqlite::memory:", NULL), DURQ_OK);
	enqueue_one(a);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(b, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready, 0);
	assert_int_equal(strncmp(mem_path(a), "/dev/shm/durq-mem-", 18), 0);
	assert_db_files_0600(mem_path(a));
	durq_free(a);
	durq_free(b);
}

static int count_mem_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)))
		n += strncmp(e->d_name, "durq-mem-", 9) == 0;
	closedir(d);
	return n;
}

/* With no DURQ_MEMORY_DIR, /dev/shm or nothing: never $TMPDIR or /tmp, never a disk. */
static void test_memory_never_falls_back_to_a_disk(void **state)
{
	fx *f = *state;
	char cwd[PATH_MAX - 32], disk[PATH_MAX];
	struct statfs fs;
	durq *db = NULL;
	assert_non_null(getcwd(cwd, sizeof(cwd))); /* the build tree: a disk */
	snprintf(disk, sizeof(disk), "%s/durq-disk-XXXXXX", cwd);
	assert_non_null(mkdtemp(disk));
	assert_int_equal(statfs(disk, &fs), 0);
	assert_int_not_equal((unsigned long)fs.f_type, TMPFS_MAGIC_);
	const char *old_tmp = getenv("TMPDIR");
	char *saved = old_tmp ? strdup(old_tmp) : NULL;
	setenv("TMPDIR", disk, 1);

	durq_provider *p = NULL;
	/* /dev/shm on a disk: refused */
	assert_int_equal(durq_sqlite_memory_provider_new(&p, disk, NULL), DURQ_EIO);
	assert_null(p);
	assert_non_null(strstr(durq_error_last(), "is not a tmpfs"));
	assert_non_null(strstr(durq_error_last(), "DURQ_MEMORY_DIR"));
	/* missing: refused */
	assert_int_equal(durq_sqlite_memory_provider_new(&p, "/nonexistent-durq-shm", NULL), DURQ_EIO);
	assert_non_null(strstr(durq_error_last(), "/nonexistent-durq-shm is missing"));
	assert_int_equal(count_mem_files(disk), 0);

	/* the caller may name a disk explicitly: then it is used, with a warning */
	logbuf b;
	durq_options o = logged_options(&b);
	setenv("DURQ_MEMORY_DIR", disk, 1);
	assert_int_equal(durq_open(&db, "sqlite::memory:", &o), DURQ_OK);
	assert_int_equal(count_mem_files(disk), 4); /* db, -wal, -shm, -lock */
	assert_int_equal(warns_with(&b, "DURQ_MEMORY_DIR", "is not a tmpfs", NULL), 1);
	durq_free(db);
	assert_int_equal(count_mem_files(disk), 0); /* removed on close */
	pthread_mutex_destroy(&b.mu);

	setenv("DURQ_MEMORY_DIR", "relative/dir", 1);
	assert_int_equal(durq_open(&db, "sqlite::memory:", NULL), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "DURQ_MEMORY_DIR"));
	setenv("DURQ_MEMORY_DIR", "/nonexistent-durq-memdir", 1);
	assert_int_equal(durq_open(&db, "sqlite::memory:", NULL), DURQ_EIO);
	assert_non_null(strstr(durq_error_last(), "/nonexistent-durq-memdir"));

	if (saved)
		setenv("TMPDIR", saved, 1);
	else
		unsetenv("TMPDIR");
	free(saved);
	assert_int_equal(rmdir(disk), 0);
	(void)f;
}

/* Child: wait for the parent's go, open an in-memory database, write to it, report its
 * file name and die without closing anything. */
static void mem_child(int go_fd, int out_fd)
{
	char c;
	durq *db;
	if (read(go_fd, &c, 1) != 1 || durq_open(&db, "sqlite::memory:", NULL) != DURQ_OK)
		_exit(2);
	durq_work w = {.payload = "x", .payload_len = 1};
	if (durq_work_enqueue(db, &w, 1) != DURQ_OK)
		_exit(3);
	const char *p = mem_path(db);
	if (write(out_fd, p, strlen(p) + 1) != (ssize_t)strlen(p) + 1)
		_exit(4);
	_exit(0);
}

static void test_dead_process_memory_files_are_swept(void **state)
{
	(void)state;
	char dir[] = "/dev/shm/durq-files-XXXXXX";
	char child_db[PATH_MAX] = {0}, p[PATH_MAX + 8];
	int go[2], out[2], status;
	durq *live, *fresh;
	assert_non_null(mkdtemp(dir));
	setenv("DURQ_MEMORY_DIR", dir, 1);
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(out), 0);
	pid_t pid = fork(); /* before any handle: the child starts with no threads of ours */
	assert_true(pid >= 0);
	if (pid == 0) {
		close(go[1]);
		close(out[0]);
		mem_child(go[0], out[1]);
	}
	close(go[0]);
	close(out[1]);

	assert_int_equal(durq_open(&live, "sqlite::memory:", NULL), DURQ_OK);
	enqueue_one(live);
	assert_int_equal(write(go[1], "g", 1), 1);
	ssize_t n = 0, r;
	while ((r = read(out[0], child_db + n, sizeof(child_db) - 1 - (size_t)n)) > 0)
		n += r;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(strncmp(child_db, dir, strlen(dir)), 0);
	assert_true(exists(child_db)); /* left behind by the dead child, with -wal and -shm */
	snprintf(p, sizeof(p), "%s-wal", child_db);
	assert_true(exists(p));
	assert_int_equal(count_mem_files(dir), 8);

	assert_int_equal(durq_open(&fresh, "sqlite::memory:", NULL), DURQ_OK);
	assert_false(exists(child_db)); /* swept */
	assert_false(exists(p));
	snprintf(p, sizeof(p), "%s-shm", child_db);
	assert_false(exists(p));
	assert_true(exists(mem_path(live))); /* the live handle's files stay */
	snprintf(p, sizeof(p), "%s-wal", mem_path(live));
	assert_true(exists(p));
	assert_int_equal(count_mem_files(dir), 8); /* live's four and fresh's four */
	/* a -journal beside a live database (SQLite makes one while a new database switches to
	 * WAL) is nobody's lock: the sweep must leave it, or that open fails */
	snprintf(p, sizeof(p), "%s-journal", mem_path(live));
	int jfd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(jfd >= 0);
	close(jfd);
	durq *third;
	assert_int_equal(durq_open(&third, "sqlite::memory:", NULL), DURQ_OK);
	assert_true(exists(p));
	assert_int_equal(unlink(p), 0);
	durq_free(third);
	enqueue_one(live);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(live, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready, 2);
	durq_free(live);
	durq_free(fresh);
	assert_int_equal(count_mem_files(dir), 0);
	close(go[1]);
	close(out[0]);
	assert_int_equal(rmdir(dir), 0);
}

/* ---- 6. no descriptor of a live database is ever closed behind SQLite's back ---------- */

/* Does this process hold a POSIX (fcntl) lock on path? /proc/locks: "1: POSIX ADVISORY READ
 * <pid> <maj>:<min>:<inode> <start> <end>". */
static int holds_posix_lock(const char *path)
{
	struct stat st;
	char line[256];
	int found = 0;
	if (stat(path, &st) != 0)
		return 0;
	FILE *f = fopen("/proc/locks", "r");
	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f)) {
		char kind[16], dev[64];
		long pid;
		unsigned long ino;
		if (sscanf(line, "%*s %15s %*s %*s %ld %63[^ ]", kind, &pid, dev) == 3 &&
		    !strcmp(kind, "POSIX") && pid == (long)getpid() && strrchr(dev, ':') &&
		    sscanf(strrchr(dev, ':') + 1, "%lu", &ino) == 1 && ino == (unsigned long)st.st_ino)
			found = 1;
	}
	fclose(f);
	return found;
}

/* Opening a second handle on a file checked and tightened the file's modes with open() +
 * close(), and closing any descriptor drops every fcntl lock of the process on that file:
 * the first handle lost its -shm lock, and another process's close then deleted the -wal
 * under it (OK'd writes lost; found by the soak test). The first handle keeps its locks,
 * and another process's open and close leaves the -wal in place. */
static void test_second_handle_keeps_the_first_handles_locks(void **state)
{
	fx *f = *state;
	const char *path = strchr(f->url, ':') + 1;
	char shm[PATH_MAX + 8], wal[PATH_MAX + 8];
	snprintf(shm, sizeof(shm), "%s-shm", path);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	durq *a, *b;
	assert_int_equal(durq_open(&a, f->url, NULL), DURQ_OK);
	enqueue_one(a);
	assert_true(holds_posix_lock(shm));
	assert_int_equal(durq_open(&b, f->url, NULL), DURQ_OK);
	assert_true(holds_posix_lock(shm)); /* still ours after the second open */
	assert_true(holds_posix_lock(path));
	/* another process opens, reads and closes: it is not the last one, so its close must
	 * neither checkpoint the WAL away nor delete it. A plain connection: the child of a
	 * threaded process must start no threads (TSan refuses it). */
	pid_t pid = fork();
	if (pid == 0) {
		sqlite3 *c;
		int ok = sqlite3_open_v2(path, &c, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
			 sqlite3_exec(c, "SELECT count(*) FROM work_queue", NULL, NULL, NULL) ==
				 SQLITE_OK;
		_exit(sqlite3_close(c) == SQLITE_OK && ok ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(exists(wal)); /* not checkpointed away and deleted under us */
	enqueue_one(b);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(a, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready, 2);
	durq_free(b);
	durq_free(a);
}

/* The sweep of dead in-memory databases opened each database file to test its lock, and
 * the close dropped the fcntl locks of this process's live handle on it. */
static void test_memory_sweep_keeps_live_handles_locks(void **state)
{
	(void)state;
	char dir[] = "/dev/shm/durq-locks-XXXXXX", shm[PATH_MAX + 8];
	assert_non_null(mkdtemp(dir));
	setenv("DURQ_MEMORY_DIR", dir, 1);
	durq *a, *b;
	assert_int_equal(durq_open(&a, "sqlite::memory:", NULL), DURQ_OK);
	snprintf(shm, sizeof(shm), "%s-shm", mem_path(a));
	assert_true(holds_posix_lock(shm));
	assert_int_equal(durq_open(&b, "sqlite::memory:", NULL), DURQ_OK); /* sweeps the dir */
	assert_true(holds_posix_lock(shm));
	assert_true(holds_posix_lock(mem_path(a)));
	durq_free(b);
	durq_free(a);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_database_files_are_0600, setup, teardown),
		cmocka_unit_test_setup_teardown(test_existing_0644_database_is_tightened, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_existing_0644_wal_and_shm_are_tightened, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_symlink_at_database_path_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reader_refuses_a_link_swapped_in_later, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_linked_directory_is_fine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trusted_schema_off_and_defensive_on, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_objects_durq_did_not_create_are_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_internal_tables_are_fine, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_weakening_env_override_is_logged, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_env_below_file_default_is_logged_raising_is_not,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_databases_are_private_wal, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_memory_never_falls_back_to_a_disk, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_second_handle_keeps_the_first_handles_locks,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_sweep_keeps_live_handles_locks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dead_process_memory_files_are_swept, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
