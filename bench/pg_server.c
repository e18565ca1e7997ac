/*
 * pg_server.c — the PostgreSQL server of a durq-bench run and the rows' databases on it.
 *
 * Without --pg-url the bench starts a throwaway server with scripts/pg-server.sh (path from
 * DURQ_PG_SERVER_SCRIPT, else the source tree this binary was built from) and forks a
 * watchdog process that waits on a pipe: when the bench ends in any way (normal exit, error,
 * a signal, a crash) the pipe closes and the watchdog runs `pg-server.sh stop DIR`.
 * bench_pg_stop closes the pipe and waits for that stop. Every row gets a fresh database
 * (CREATE DATABASE durq_bench_<pid>_<n>, dropped WITH (FORCE) after the row) through one
 * admin connection to the server URL's database; ANALYZE after a prefill runs on a connection
 * to the row's database.
 *
 * Owns: the server handle, the watchdog, the admin connection. Does not own: the rows.
 * Built without libpq (DURQ_WITH_POSTGRES=OFF) it only says so.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

#ifdef DURQ_BENCH_PG

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#ifndef DURQ_BENCH_PG_SERVER_SCRIPT
#define DURQ_BENCH_PG_SERVER_SCRIPT "scripts/pg-server.sh"
#endif

struct bench_pg {
	char url[1024];        /* the server's URL (its database: where CREATE DATABASE runs) */
	char dir[1024];        /* own server: its temp dir ("" = --pg-url) */
	char script[1024];
	int version;           /* PQserverVersion */
	pid_t watchdog;        /* own server: runs pg-server.sh stop when wfd closes */
	int wfd;
	PGconn *admin;
	_Atomic unsigned serial;
};

int bench_pg_available(void)
{
	return 1;
}

/* Run argv, stdout into out (NUL-terminated, truncated), stderr passed through. Exit code,
 * or -1 if it could not run. */
static int run_capture(char *const argv[], char *out, size_t len)
{
	int fd[2];
	if (pipe2(fd, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fd[1], STDOUT_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fd[1]);
	size_t n = 0;
	for (;;) {
		char tmp[512];
		ssize_t r = read(fd[0], tmp, sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		size_t k = (size_t)r < len - 1 - n ? (size_t)r : len - 1 - n;
		memcpy(out + n, tmp, k);
		n += k;
	}
	out[n] = 0;
	close(fd[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The value of export NAME='VALUE' in the start script's output. */
static int export_value(const char *text, const char *name, char *out, size_t len)
{
	char key[64];
	snprintf(key, sizeof(key), "export %s='", name);
	const char *p = strstr(text, key);
	if (!p)
		return -1;
	p += strlen(key);
	const char *e = strchr(p, '\'');
	if (!e || (size_t)(e - p) >= len)
		return -1;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = 0;
	return 0;
}

/* The watchdog: a child that outlives us just long enough to stop the server. It ignores
 * the terminal's signals (a Ctrl-C reaches the whole process group) and waits for EOF on
 * the pipe, which comes when every copy of the write end is closed: our exit, however it
 * happens. */
static int watchdog_start(bench_pg *pg)
{
	int fd[2];
	if (pipe2(fd, O_CLOEXEC) != 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if (pid == 0) {
		close(fd[1]);
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		char c;
		while (read(fd[0], &c, 1) < 0 && errno == EINTR)
			;
		execlp("bash", "bash", pg->script, "stop", pg->dir, (char *)NULL);
		_exit(127);
	}
	close(fd[0]);
	pg->watchdog = pid;
	pg->wfd = fd[1];
	return 0;
}

static int start_own(bench_pg *pg, int quiet)
{
	const char *env = getenv("DURQ_PG_SERVER_SCRIPT");
	snprintf(pg->script, sizeof(pg->script), "%s",
		 env && *env ? env : DURQ_BENCH_PG_SERVER_SCRIPT);
	if (access(pg->script, R_OK) != 0) {
		fprintf(stderr, "durq-bench: cannot read the server script %s (%s); set "
				"DURQ_PG_SERVER_SCRIPT to scripts/pg-server.sh, or pass --pg-url\n",
			pg->script, strerror(errno));
		return -1;
	}
	if (!quiet)
		fprintf(stderr, "durq-bench: starting a throwaway PostgreSQL server (%s start)...\n",
			pg->script);
	char out[4096];
	char *argv[] = {"bash", pg->script, "start", NULL};
	int rc = run_capture(argv, out, sizeof(out));
	if (export_value(out, "DURQ_TEST_PG_DIR", pg->dir, sizeof(pg->dir)) < 0)
		pg->dir[0] = 0;
	if (rc != 0 || !pg->dir[0] ||
	    export_value(out, "DURQ_TEST_PG_URL", pg->url, sizeof(pg->url)) < 0) {
		fprintf(stderr, "durq-bench: %s start failed (exit %d; its reason above)%s%s\n",
			pg->script, rc, out[0] ? "; its output: " : "", out);
		if (pg->dir[0]) { /* it said where: do not leave it behind */
			char *stop[] = {"bash", pg->script, "stop", pg->dir, NULL};
			char ignored[256];
			run_capture(stop, ignored, sizeof(ignored));
			pg->dir[0] = 0;
		}
		return -1;
	}
	if (watchdog_start(pg) < 0) {
		fprintf(stderr, "durq-bench: cannot fork the server's watchdog: %s\n",
			strerror(errno));
		char *stop[] = {"bash", pg->script, "stop", pg->dir, NULL};
		char ignored[256];
		run_capture(stop, ignored, sizeof(ignored));
		pg->dir[0] = 0;
		return -1;
	}
	return 0;
}

static int admin_ok(bench_pg *pg)
{
	if (pg->admin && PQstatus(pg->admin) == CONNECTION_OK)
		return 0;
	if (pg->admin)
		PQreset(pg->admin);
	else
		pg->admin = PQconnectdb(pg->url);
	return PQstatus(pg->admin) == CONNECTION_OK ? 0 : -1;
}

int bench_pg_start(bench_pg **out, const char *url, int quiet)
{
	bench_pg *pg = calloc(1, sizeof(*pg));
	*out = NULL;
	if (!pg)
		return -1;
	pg->wfd = -1;
	if (url) {
		if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0) {
			fprintf(stderr, "durq-bench: --pg-url must be a postgresql:// URL\n");
			free(pg);
			return -1;
		}
		snprintf(pg->url, sizeof(pg->url), "%s", url);
	} else if (start_own(pg, quiet) < 0) {
		free(pg);
		return -1;
	}
	if (admin_ok(pg) < 0) {
		fprintf(stderr, "durq-bench: cannot connect to the PostgreSQL server: %s",
			PQerrorMessage(pg->admin));
		bench_pg_stop(pg);
		return -1;
	}
	pg->version = PQserverVersion(pg->admin);
	PQsetNoticeProcessor(pg->admin, NULL, NULL); /* DROP ... IF EXISTS notices */
	*out = pg;
	return 0;
}

void bench_pg_stop(bench_pg *pg)
{
	if (!pg)
		return;
	PQfinish(pg->admin);
	if (pg->wfd >= 0) {
		close(pg->wfd); /* the watchdog sees EOF and stops the server */
		int st;
		while (waitpid(pg->watchdog, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fprintf(stderr, "durq-bench: %s stop %s failed (reason above)\n", pg->script,
				pg->dir);
	}
	free(pg);
}

void bench_pg_describe(const bench_pg *pg, char *buf, size_t len)
{
	snprintf(buf, len, "PostgreSQL %d.%d, %s %s:%s", pg->version / 10000, pg->version % 100,
		 pg->dir[0] ? "throwaway server (scripts/pg-server.sh)" : "--pg-url server",
		 PQhost(pg->admin), PQport(pg->admin));
}

/* url with its database (the path) replaced by db: scheme://authority/db[?params] */
static int url_with_db(char *out, size_t n, const char *url, const char *db)
{
	const char *auth = strstr(url, "://") + 3;
	size_t alen = strcspn(auth, "/?#");
	const char *rest = auth + alen;
	if (*rest == '/')
		rest += strcspn(rest, "?#");
	int w = snprintf(out, n, "%.*s/%s%s", (int)(auth + alen - url), url, db, rest);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

static int admin_exec(bench_pg *pg, const char *sql, char *err, size_t errlen)
{
	if (admin_ok(pg) < 0) {
		snprintf(err, errlen, "connecting: %s", PQerrorMessage(pg->admin));
		return -1;
	}
	PGresult *r = PQexec(pg->admin, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		snprintf(err, errlen, "%s: %s", sql, PQerrorMessage(pg->admin));
	PQclear(r);
	return ok ? 0 : -1;
}

/* The name is made here, never from caller data, so formatting it into the statement is
 * safe (CREATE/DROP DATABASE take no parameters). */
int bench_pg_db_create(bench_pg *pg, char *name, size_t nlen, char *url, size_t ulen,
		       char *err, size_t errlen)
{
	char sql[128];
	snprintf(name, nlen, "durq_bench_%ld_%u", (long)getpid(),
		 atomic_fetch_add(&pg->serial, 1) + 1);
	if (url_with_db(url, ulen, pg->url, name) < 0) {
		snprintf(err, errlen, "server URL too long");
		name[0] = 0;
		return -1;
	}
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	if (admin_exec(pg, sql, err, errlen) < 0) {
		name[0] = 0;
		return -1;
	}
	return 0;
}

void bench_pg_db_drop(bench_pg *pg, const char *name)
{
	char sql[128], err[512];
	if (!name || !name[0])
		return;
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	if (admin_exec(pg, sql, err, sizeof(err)) < 0)
		fprintf(stderr, "durq-bench: database %s left on the server: %s", name, err);
}

int bench_pg_db_analyze(bench_pg *pg, const char *name, char *err, size_t errlen)
{
	char url[1200];
	if (url_with_db(url, sizeof(url), pg->url, name) < 0) {
		snprintf(err, errlen, "server URL too long");
		return -1;
	}
	PGconn *c = PQconnectdb(url);
	PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, "ANALYZE") : NULL;
	int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		snprintf(err, errlen, "ANALYZE in %s: %s", name, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok ? 0 : -1;
}

#else /* built without libpq */

struct bench_pg {
	int unused;
};

int bench_pg_available(void)
{
	return 0;
}

int bench_pg_start(bench_pg **out, const char *url, int quiet)
{
	(void)url;
	(void)quiet;
	*out = NULL;
	fprintf(stderr, "durq-bench: this build has no PostgreSQL support (configured with "
			"DURQ_WITH_POSTGRES=OFF); reconfigure with -DDURQ_WITH_POSTGRES=ON (needs "
			"libpq-dev)\n");
	return -1;
}

void bench_pg_stop(bench_pg *pg)
{
	(void)pg;
}

void bench_pg_describe(const bench_pg *pg, char *buf, size_t len)
{
	(void)pg;
	snprintf(buf, len, "no PostgreSQL support in this build");
}

int bench_pg_db_create(bench_pg *pg, char *name, size_t nlen, char *url, size_t ulen,
		       char *err, size_t errlen)
{
	(void)pg;
	(void)nlen;
	(void)ulen;
	name[0] = url[0] = 0;
	snprintf(err, errlen, "no PostgreSQL support in this build");
	return -1;
}

void bench_pg_db_drop(bench_pg *pg, const char *name)
{
	(void)pg;
	(void)name;
}

int bench_pg_db_analyze(bench_pg *pg, const char *name, char *err, size_t errlen)
{
	(void)pg;
	(void)name;
	snprintf(err, errlen, "no PostgreSQL support in this build");
	return -1;
}

#endif
