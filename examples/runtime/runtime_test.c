/*
 * runtime_test.c — CTest cases of the runtime example: durq-runtime-demo end to end, and
 * killed with SIGKILL mid-run then resumed on the same database. After each run the test
 * opens the database itself (public API) and checks every order: COMPLETED once, the right
 * output, one execution, and a history where each action has exactly one outcome.
 *
 *   runtime_test DEMO CASE    CASE: sqlite | sqlite-kill | pg | pg-kill
 *
 * pg cases read the server URL from the file DURQ_TEST_PG_URL_FILE names (CTest fixture
 * "pg") and run in a fresh schema. The test process starts no thread before its last child
 * has exited: it opens durq only to check. The end-to-end cases then send a late event to a
 * finished order and check that the turn consuming it changes nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <durq.h>

#include "history.h"
#include "order.h"
#include "rt_internal.h" /* RT_EARLY_MESSAGE_ATTEMPTS */

#ifdef RT_TEST_PG
#include <libpq-fe.h>
#endif

#define PROGRESS_WAIT_MS 180000 /* bound on the wait for the child's progress line */

extern char **environ;

static const char *g_demo;
static const char *g_case;

typedef struct fixture {
	char dir[64];   /* sqlite: the temp dir holding the file */
	char url[1024];
	char pg_server[512], pg_schema[64];
} fixture;

/* ---- children ------------------------------------------------------------------------- */

/* Start the demo on url with n orders; extra args; progress_fd >= 0 becomes the child's fd 3. */
static pid_t spawn_demo(const char *url, int n, const char *mode, int progress_fd)
{
	char ns[16];
	snprintf(ns, sizeof ns, "%d", n);
	const char *argv[8] = {g_demo, url, ns};
	int argc = 3;
	if (mode)
		argv[argc++] = mode;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (progress_fd >= 0) {
		argv[argc++] = "--progress-fd";
		argv[argc++] = "3";
		posix_spawn_file_actions_adddup2(&fa, progress_fd, 3);
	}
	pid_t pid;
	int rc = posix_spawn(&pid, g_demo, &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		fail_msg("spawn %s: %s", g_demo, strerror(rc));
	return pid;
}

static int wait_child(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			fail_msg("waitpid: %s", strerror(errno));
	return st;
}

/* Read "completed C of N" lines until C >= want; the last C, or -1 on EOF or after
 * PROGRESS_WAIT_MS. */
static int wait_progress(int fd, int want)
{
	char buf[4096];
	size_t used = 0;
	int c = -1;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = PROGRESS_WAIT_MS - ((t.tv_sec - t0.tv_sec) * 1000 +
						(t.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		ssize_t r = read(fd, buf + used, sizeof buf - 1 - used);
		if (r <= 0)
			return -1;
		used += (size_t)r;
		buf[used] = '\0';
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			sscanf(line, "completed %d", &c);
			line = nl + 1;
		}
		used = strlen(line);
		memmove(buf, line, used + 1);
		if (c >= want)
			return c;
	}
}

/* ---- checking the database ------------------------------------------------------------- */

static int count_type(const rt_history *h, int type)
{
	int n = 0;
	for (size_t i = 0; i < h->n; i++)
		n += h->ev[i].type == type;
	return n;
}

/* Each action of the history (activity, timer) has exactly one outcome; one start, one
 * completion, and the completion is the last event. */
static void check_history(durq *db, const char *id)
{
	durq_event *ev;
	size_t n;
	rt_history h = {0};
	assert_int_equal(durq_history_read(db, &ev, &n, id, 0), DURQ_OK);
	for (size_t i = 0; i < n; i++) {
		rt_hevent e;
		if (rt_hevent_decode(&e, ev[i].payload, ev[i].payload_len) < 0)
			fail_msg("%s: history event %zu is unreadable", id, i);
		assert_int_equal(rt_history_take(&h, &e), 0);
		if (i > 0 && ev[i].event_id <= ev[i - 1].event_id)
			fail_msg("%s: event ids out of order", id);
	}
	durq_events_free(ev, n);
	assert_int_equal(count_type(&h, RT_H_STARTED), 1);
	assert_int_equal(count_type(&h, RT_H_COMPLETED), 1);
	assert_int_equal(count_type(&h, RT_H_FAILED), 0);
	assert_int_equal(h.ev[h.n - 1].type, RT_H_COMPLETED);
	for (size_t i = 0; i < h.n; i++) {
		const rt_hevent *e = &h.ev[i];
		int outcome = e->type == RT_H_SCHEDULED ? RT_H_RESULT
			      : e->type == RT_H_TIMER	? RT_H_FIRED
							: 0;
		if (!outcome)
			continue;
		int seen = 0;
		for (size_t j = 0; j < h.n; j++)
			seen += h.ev[j].type == outcome && h.ev[j].seq == e->seq;
		if (seen != 1)
			fail_msg("%s: action %" PRIu64 " (%s) has %d outcomes", id, e->seq, e->name,
				 seen);
	}
	/* the retry: charge failed once, then a backoff timer, then charged */
	assert_int_equal(count_type(&h, RT_H_TIMER), 2);
	rt_history_clear(&h);
}

/* Every order COMPLETED exactly once with the right output, and nothing else in the db. */
static void check_orders(const char *url, int n)
{
	durq *db;
	durq_options opts = DURQ_OPTIONS_INIT;
	if (durq_open(&db, url, &opts) < 0)
		fail_msg("open: %s", durq_error_last());
	char **ids;
	size_t n_ids;
	assert_int_equal(durq_instance_list(db, &ids, &n_ids, -1), DURQ_OK);
	durq_strings_free(ids, n_ids);
	assert_int_equal(n_ids, (size_t)n);
	for (int i = 1; i <= n; i++) {
		char id[32], want[512];
		durq_instance_info *info;
		order_id(id, sizeof id, i);
		order_expected_output(want, sizeof want, i);
		assert_int_equal(durq_instance_get(db, &info, id), DURQ_OK);
		if (info->status != DURQ_STATUS_COMPLETED || info->output_len != strlen(want) ||
		    memcmp(info->output, want, info->output_len) != 0)
			fail_msg("%s: status %d output '%.*s', want '%s'", id, info->status,
				 (int)info->output_len, (const char *)info->output, want);
		assert_int_equal(info->execution_id, 1);
		durq_instance_info_free(info);
		check_history(db, id);
	}
	durq_queue_depths dq;
	assert_int_equal(durq_queue_depths_get(db, &dq, NULL), DURQ_OK);
	assert_int_equal(dq.work_ready + dq.work_delayed + dq.work_leased, 0);
	assert_int_equal(dq.dead_letters, 0);
	durq_free(db);
}

/* ---- the cases -------------------------------------------------------------------------- */

static size_t history_length(durq *db, const char *id)
{
	durq_event *ev;
	size_t n;
	assert_int_equal(durq_history_read(db, &ev, &n, id, 0), DURQ_OK);
	durq_events_free(ev, n);
	return n;
}

/* A message for a finished order (an approval raised again after the end) is consumed by a
 * turn that changes nothing: status 0 keeps it COMPLETED, the history stays closed. */
static void check_late_message(const char *url)
{
	durq *db;
	rt *r;
	durq_instance_info *before, *after;
	durq_options opts = DURQ_OPTIONS_INIT;
	char id[32];
	order_id(id, sizeof id, 1);
	if (durq_open(&db, url, &opts) < 0)
		fail_msg("open: %s", durq_error_last());
	assert_int_equal(durq_instance_get(db, &before, id), DURQ_OK);
	size_t n_events = history_length(db, id);
	assert_int_equal(rt_raise_event(db, id, ORDER_APPROVAL_EVENT, "late"), DURQ_OK);
	assert_int_equal(rt_new(&r, db, NULL), DURQ_OK);
	assert_int_equal(order_register(r), 0);
	assert_int_equal(rt_turn_once(r, 10000), DURQ_OK);
	assert_int_equal(rt_turn_once(r, 0), DURQ_EMPTY); /* the message is gone */
	assert_int_equal(durq_instance_get(db, &after, id), DURQ_OK);
	assert_int_equal(after->status, DURQ_STATUS_COMPLETED);
	assert_int_equal(after->output_len, before->output_len);
	assert_memory_equal(after->output, before->output, before->output_len);
	assert_int_equal(after->custom_status_version, before->custom_status_version);
	assert_int_equal(history_length(db, id), n_events);
	durq_instance_info_free(before);
	durq_instance_info_free(after);

	/* An event for an instance that never starts: given back (1 s apart), then discarded
	 * (DURQ_TURN_DISCARD): no instance is made of it, nothing stays queued. */
	assert_int_equal(rt_raise_event(db, "order-never", ORDER_APPROVAL_EVENT, "x"), DURQ_OK);
	for (int i = 0; i < RT_EARLY_MESSAGE_ATTEMPTS; i++)
		assert_int_equal(rt_turn_once(r, 10000), DURQ_OK);
	assert_int_equal(rt_turn_once(r, 0), DURQ_EMPTY);
	assert_int_equal(durq_instance_get(db, &after, "order-never"), DURQ_ENOTFOUND);
	durq_queue_depths dq;
	assert_int_equal(durq_queue_depths_get(db, &dq, NULL), DURQ_OK);
	assert_int_equal(dq.orch_ready + dq.orch_delayed + dq.orch_leased, 0);
	assert_int_equal(dq.dead_letters, 0);
	rt_free(r);
	durq_free(db);
}

static void end_to_end(const char *url, int n)
{
	int st = wait_child(spawn_demo(url, n, NULL, -1));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	check_orders(url, n);
	check_late_message(url);
}

/* Kill -9 once a quarter of the orders completed, restart with --resume, check. */
static void kill_and_resume(const char *url, int n)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0); /* fd 3 of the child only */
	pid_t pid = spawn_demo(url, n, NULL, p[1]);
	close(p[1]);
	int c = wait_progress(p[0], n / 4);
	if (c < n / 4) {
		kill(pid, SIGKILL);
		wait_child(pid);
		fail_msg("no progress line 'completed >= %d' from the demo", n / 4);
	}
	kill(pid, SIGKILL);
	int st = wait_child(pid);
	close(p[0]);
	print_message("killed the demo with %d of %d orders completed\n", c, n);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		fail_msg("the demo ended before the kill (status 0x%x): nothing was resumed", st);
	assert_true(c < n);

	st = wait_child(spawn_demo(url, n, "--resume", -1));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	check_orders(url, n);
}

static void test_sqlite(void **state)
{
	fixture *f = *state;
	end_to_end(f->url, 20);
}

static void test_sqlite_kill(void **state)
{
	fixture *f = *state;
	kill_and_resume(f->url, 24);
}

static int sqlite_setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/durq-rt-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->url, sizeof f->url, "sqlite:%s/orders.db", f->dir);
	*state = f;
	return 0;
}

static int sqlite_teardown(void **state)
{
	fixture *f = *state;
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char path[128];
	for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
		snprintf(path, sizeof path, "%s/orders.db%s", f->dir, suffix[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

#ifdef RT_TEST_PG
static int pg_exec(const char *url, const char *sql)
{
	PGconn *conn = PQconnectdb(url);
	int ok = PQstatus(conn) == CONNECTION_OK;
	if (ok) {
		PGresult *r = PQexec(conn, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	if (!ok)
		fprintf(stderr, "runtime_test: %s: %s", sql, PQerrorMessage(conn));
	PQfinish(conn);
	return ok ? 0 : -1;
}

/* A fresh schema on the fixture's server; the URL makes it the search path. */
static int pg_setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	const char *file = getenv("DURQ_TEST_PG_URL_FILE");
	FILE *in = file ? fopen(file, "r") : NULL;
	char sql[128];
	*state = f;
	if (!in || !fgets(f->pg_server, sizeof f->pg_server, in)) {
		fprintf(stderr, "runtime_test: no server URL in DURQ_TEST_PG_URL_FILE (run through "
				"ctest: fixture pg)\n");
		if (in)
			fclose(in);
		return -1;
	}
	fclose(in);
	f->pg_server[strcspn(f->pg_server, "\r\n")] = '\0';
	snprintf(f->pg_schema, sizeof f->pg_schema, "durq_rt_%ld", (long)getpid());
	snprintf(f->url, sizeof f->url, "%s%coptions=-csearch_path%%3D%s", f->pg_server,
		 strchr(f->pg_server, '?') ? '&' : '?', f->pg_schema);
	snprintf(sql, sizeof sql, "CREATE SCHEMA %s", f->pg_schema); /* our name, not input */
	return pg_exec(f->pg_server, sql);
}

static int pg_teardown(void **state)
{
	fixture *f = *state;
	char sql[160];
	snprintf(sql, sizeof sql, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE",
		 f->pg_schema);
	pg_exec(f->pg_server, sql);
	free(f);
	return 0;
}

static void test_pg(void **state)
{
	fixture *f = *state;
	end_to_end(f->url, 12);
}

static void test_pg_kill(void **state)
{
	fixture *f = *state;
	kill_and_resume(f->url, 16);
}
#endif

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: runtime_test DEMO sqlite|sqlite-kill|pg|pg-kill\n");
		return 2;
	}
	g_demo = argv[1];
	g_case = argv[2];
	const struct CMUnitTest sqlite[] = {
		cmocka_unit_test_setup_teardown(test_sqlite, sqlite_setup, sqlite_teardown)};
	const struct CMUnitTest sqlite_kill[] = {
		cmocka_unit_test_setup_teardown(test_sqlite_kill, sqlite_setup, sqlite_teardown)};
	if (strcmp(g_case, "sqlite") == 0)
		return cmocka_run_group_tests_name("runtime_sqlite", sqlite, NULL, NULL);
	if (strcmp(g_case, "sqlite-kill") == 0)
		return cmocka_run_group_tests_name("runtime_sqlite_kill", sqlite_kill, NULL, NULL);
#ifdef RT_TEST_PG
	const struct CMUnitTest pg[] = {
		cmocka_unit_test_setup_teardown(test_pg, pg_setup, pg_teardown)};
	const struct CMUnitTest pg_kill[] = {
		cmocka_unit_test_setup_teardown(test_pg_kill, pg_setup, pg_teardown)};
	if (strcmp(g_case, "pg") == 0)
		return cmocka_run_group_tests_name("runtime_pg", pg, NULL, NULL);
	if (strcmp(g_case, "pg-kill") == 0)
		return cmocka_run_group_tests_name("runtime_pg_kill", pg_kill, NULL, NULL);
#endif
	fprintf(stderr, "runtime_test: unknown case '%s'\n", g_case);
	return 2;
}
