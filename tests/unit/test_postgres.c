/*
 * test_postgres.c — the PostgreSQL provider beyond the conformance suite, on real servers:
 *  - 4 processes x 4 threads share one database (each with its own committer): every item
 *    is acked exactly once, no error reaches a caller;
 *  - the server crashes (pg_ctl stop -m immediate) under load and comes back: every OK'd
 *    enqueue is there, no OK'd ack is undone, no item appears that nobody enqueued, calls
 *    in flight failed with a retryable code or DURQ_EIO (outcome unknown) — or, for an ack,
 *    DURQ_ELOCKLOST: claims commit without a flush, so the crash may undo one and its item
 *    comes back (at least once) — and the same handle works again after the restart (the
 *    provider reconnects);
 *  - bad URLs (nothing listening, missing database, wrong password) fail with DURQ_EIO or
 *    DURQ_EINVAL and a message that never shows the password;
 *  - one group-commit batch whose acks, renews and abandons the provider merges into array
 *    statements still gives each op the result it would get alone, in submission order: a
 *    second ack of one item, a renew after its ack, an ack after an abandon are refused
 *    (DURQ_ELOCKLOST), a completion the server refuses (a CHECK
 *    constraint the test adds) fails alone, all in one transaction.
 * The shared server comes from the CTest fixture (DURQ_TEST_PG_URL_FILE); the crash and
 * password tests start servers of their own with scripts/pg-server.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "durq_internal.h" /* durq_committer_pause: craft one batch */
#include "unit_util.h"

#ifndef DURQ_SOURCE_DIR
#error "DURQ_SOURCE_DIR must name the source tree (scripts/pg-server.sh)"
#endif
#define PG_SERVER DURQ_SOURCE_DIR "/scripts/pg-server.sh"

/* ---- servers and databases ---------------------------------------------------------- */

/* The fixture's server URL (static storage). */
static const char *fixture_url(void)
{
	static char url[1024];
	const char *file = getenv("DURQ_TEST_PG_URL_FILE");
	FILE *f = file ? fopen(file, "r") : NULL;
	if (!f || !fgets(url, sizeof(url), f))
		fail_msg("DURQ_TEST_PG_URL_FILE is unset or unreadable: run through ctest (fixture pg)");
	fclose(f);
	url[strcspn(url, "\n")] = '\0';
	return url;
}

/* base with its database replaced by name (the query string, if any, is kept). */
static void url_with_db(char *out, size_t len, const char *base, const char *name)
{
	const char *host = strstr(base, "://");
	const char *slash = strchr(host ? host + 3 : base, '/');
	const char *query = strchr(base, '?');
	size_t keep = slash ? (size_t)(slash - base) : strlen(base);
	snprintf(out, len, "%.*s/%s%s", (int)keep, base, name, query ? query : "");
}

static void admin_exec(const char *url, const char *sql)
{
	PGconn *c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* A fresh database on the server of base_url; its URL into out. */
static void db_create(char *out, size_t len, const char *base_url, const char *tag)
{
	char sql[256], name[64];
	snprintf(name, sizeof(name), "durq_u_%s_%d", tag, (int)getpid());
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	admin_exec(base_url, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	admin_exec(base_url, sql);
	url_with_db(out, len, base_url, name);
}

typedef struct server {
	char dir[512];
	char url[1024];
} server;

/* Run scripts/pg-server.sh with args; its stdout into out (may be NULL). 0 = success. */
static int pg_server(char *out, size_t len, const char *args)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "bash '%s' %s", PG_SERVER, args);
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	if (!p)
		return -1;
	if (out) {
		n = fread(out, 1, len - 1, p);
		out[n] = '\0';
	} else {
		char sink[512];
		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	return pclose(p);
}

/* Start an own server (extra: more arguments to "start"); fills dir and url. */
static void server_start(server *s, const char *extra)
{
	char out[4096], args[256];
	snprintf(args, sizeof(args), "start %s", extra ? extra : "");
	assert_int_equal(pg_server(out, sizeof(out), args), 0);
	char *d = strstr(out, "DURQ_TEST_PG_DIR="), *u = strstr(out, "DURQ_TEST_PG_URL=");
	assert_non_null(d);
	assert_non_null(u);
	sscanf(d + strlen("DURQ_TEST_PG_DIR="), "%511s", s->dir);
	sscanf(u + strlen("DURQ_TEST_PG_URL="), "%1023s", s->url);
	/* the exports may be quoted */
	for (char *p = s->dir; *p; p++)
		if (*p == '\'' || *p == '"')
			memmove(p, p + 1, strlen(p));
	for (char *p = s->url; *p; p++)
		if (*p == '\'' || *p == '"')
			memmove(p, p + 1, strlen(p));
}

static void server_cmd(const server *s, const char *verb)
{
	char args[700];
	snprintf(args, sizeof(args), "%s '%s'", verb, s->dir);
	assert_int_equal(pg_server(NULL, 0, args), 0);
}

/* ---- 1. four processes share one database -------------------------------------------- */

enum { PROCS = 4, THREADS = 4, CYCLES = 300 };

typedef struct job {
	durq *db;
	int proc, thread;
	FILE *out;
	pthread_mutex_t *out_mu;
	int errors;
} job;

static void *cycle(void *arg)
{
	job *j = arg;
	for (int i = 0; i < CYCLES; i++) {
		char p[32];
		snprintf(p, sizeof(p), "%d %d %d", j->proc, j->thread, i);
		durq_work w = {.payload = p, .payload_len = strlen(p)};
		durq_work_item *it;
		size_t n;
		if (durq_work_enqueue(j->db, &w, 1) != DURQ_OK ||
		    durq_work_fetch(j->db, &it, &n, NULL, 1, 600000, 5000) != DURQ_OK) {
			j->errors++;
			continue;
		}
		if (durq_work_ack(j->db, it[0].id, &it[0].token, NULL) != DURQ_OK) {
			j->errors++;
		} else {
			pthread_mutex_lock(j->out_mu);
			fprintf(j->out, "A %.*s\n", (int)it[0].payload_len, (char *)it[0].payload);
			pthread_mutex_unlock(j->out_mu);
		}
		durq_work_items_free(it, n);
	}
	return NULL;
}

static int child_run(const char *url, int proc, const char *log)
{
	durq *db;
	if (durq_open(&db, url, NULL) != DURQ_OK)
		return 100;
	FILE *out = fopen(log, "w");
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	job jobs[THREADS];
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++) {
		jobs[t] = (job){.db = db, .proc = proc, .thread = t, .out = out, .out_mu = &mu};
		pthread_create(&th[t], NULL, cycle, &jobs[t]);
	}
	int errors = 0;
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		errors += jobs[t].errors;
	}
	fclose(out);
	durq_free(db);
	return errors > 99 ? 99 : errors;
}

static void test_four_processes_share_one_database_each_item_acked_once(void **state)
{
	(void)state;
	char url[1200], log[PATH_MAX];
	char *dir = test_tmpdir();
	db_create(url, sizeof(url), fixture_url(), "mp");
	pid_t pid[PROCS];
	for (int p = 0; p < PROCS; p++) {
		snprintf(log, sizeof(log), "%s/acks-%d", dir, p);
		if ((pid[p] = fork()) == 0)
			_exit(child_run(url, p, log));
	}
	for (int p = 0; p < PROCS; p++) {
		int st;
		assert_int_equal(waitpid(pid[p], &st, 0), pid[p]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0); /* no error reached any caller */
	}
	static unsigned char seen[PROCS][THREADS][CYCLES];
	memset(seen, 0, sizeof(seen));
	int total = 0;
	for (int p = 0; p < PROCS; p++) {
		snprintf(log, sizeof(log), "%s/acks-%d", dir, p);
		FILE *f = fopen(log, "r");
		assert_non_null(f);
		int a, b, c;
		while (fscanf(f, "A %d %d %d\n", &a, &b, &c) == 3) {
			assert_true(a >= 0 && a < PROCS && b >= 0 && b < THREADS && c >= 0 && c < CYCLES);
			assert_int_equal(seen[a][b][c]++, 0); /* acked once */
			total++;
		}
		fclose(f);
	}
	assert_int_equal(total, PROCS * THREADS * CYCLES); /* every item acked */
	durq *db;
	durq_queue_depths d;
	assert_int_equal(durq_open(&db, url, NULL), DURQ_OK);
	assert_int_equal(durq_queue_depths_get(db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready + d.work_delayed + d.work_leased, 0);
	durq_free(db);
	test_rmdir(dir);
}

/* ---- 2. the server crashes under load ---------------------------------------------------- */

enum { CRASH_ITEMS = 100000 };

typedef struct crash_load {
	durq *db;
	atomic_int stop;
	atomic_int after_restart; /* set once the server is back */
	/* per item i: 1 = enqueue OK'd, 2 = ack OK'd, 3 = an ack failed (it may have committed:
	 * EIO is "outcome unknown"); written by the load thread only */
	unsigned char state[CRASH_ITEMS];
	int attempted;            /* enqueues tried: ids 0..attempted-1 */
	int failed_ok_codes;      /* failures with a code other than retryable/EIO */
	int failures;
	int ok_after_restart;     /* cycles that succeeded after the restart */
	char bad_msg[300];        /* the first failure with an unexpected code */
	int leases_lost;          /* acks refused with ELOCKLOST: their claim died in the crash */
	atomic_int ok_cycles;
} crash_load;

static int payload_id(const durq_work_item *it)
{
	char buf[16];
	size_t n = it->payload_len < sizeof(buf) - 1 ? it->payload_len : sizeof(buf) - 1;
	memcpy(buf, it->payload, n);
	buf[n] = '\0';
	return atoi(buf);
}

static void note_failure(crash_load *l, int rc)
{
	l->failures++;
	if (rc != DURQ_EIO && !durq_error_retryable(rc) && l->failed_ok_codes++ == 0)
		snprintf(l->bad_msg, sizeof(l->bad_msg), "%s: %s", durq_error_name(rc),
			 durq_error_last());
}

static void *crash_cycle(void *arg)
{
	crash_load *l = arg;
	while (!atomic_load(&l->stop) && l->attempted < CRASH_ITEMS) {
		int i = l->attempted++;
		char p[16];
		snprintf(p, sizeof(p), "%d", i);
		durq_work w = {.payload = p, .payload_len = strlen(p)};
		int rc = durq_work_enqueue(l->db, &w, 1);
		if (rc != DURQ_OK) {
			note_failure(l, rc);
			continue;
		}
		l->state[i] = 1;
		durq_work_item *it;
		size_t n;
		rc = durq_work_fetch(l->db, &it, &n, NULL, 1, 600000, 0);
		if (rc != DURQ_OK) {
			if (rc != DURQ_EMPTY)
				note_failure(l, rc);
			continue;
		}
		int id = payload_id(&it[0]);
		rc = durq_work_ack(l->db, it[0].id, &it[0].token, NULL);
		if (rc == DURQ_OK && id >= 0 && id < CRASH_ITEMS) {
			l->state[id] = 2;
			atomic_fetch_add(&l->ok_cycles, 1);
			if (atomic_load(&l->after_restart))
				l->ok_after_restart++;
		} else if (rc == DURQ_ELOCKLOST) {
			l->leases_lost++; /* a claim commits unflushed: the crash may take it back */
		} else if (rc != DURQ_OK) {
			note_failure(l, rc);
			if (id >= 0 && id < CRASH_ITEMS)
				l->state[id] = 3;
		}
		durq_work_items_free(it, n);
	}
	return NULL;
}

static void wait_cycles(crash_load *l, int at_least)
{
	while (atomic_load(&l->ok_cycles) < at_least)
		sched_yield();
}

static void test_server_crash_keeps_every_ok_and_the_handle_reconnects(void **state)
{
	(void)state;
	server s;
	char url[1200];
	server_start(&s, NULL);
	db_create(url, sizeof(url), s.url, "crash");
	crash_load *l = calloc(1, sizeof(*l));
	assert_int_equal(durq_open(&l->db, url, NULL), DURQ_OK);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, crash_cycle, l), 0);
	wait_cycles(l, 200);
	server_cmd(&s, "crash");   /* pg_ctl stop -m immediate: no shutdown checkpoint */
	server_cmd(&s, "restart"); /* same directory, same port */
	int before = atomic_load(&l->ok_cycles);
	atomic_store(&l->after_restart, 1);
	wait_cycles(l, before + 200); /* the same handle works again */
	atomic_store(&l->stop, 1);
	pthread_join(th, NULL);
	assert_true(l->ok_after_restart >= 1);
	if (l->failed_ok_codes)
		fail_msg("%d failures with a code that is neither retryable nor EIO; first: %s",
			 l->failed_ok_codes, l->bad_msg);
	durq_free(l->db);

	/* what the database holds now, against what the callers were told */
	durq *db;
	assert_int_equal(durq_open(&db, url, NULL), DURQ_OK);
	static unsigned char present[CRASH_ITEMS];
	memset(present, 0, sizeof(present));
	for (;;) {
		durq_work_item *it;
		size_t n;
		int rc = durq_work_fetch(db, &it, &n, NULL, 1000, 600000, 0);
		if (rc == DURQ_EMPTY)
			break;
		assert_int_equal(rc, DURQ_OK);
		for (size_t k = 0; k < n; k++) {
			int id = payload_id(&it[k]);
			assert_true(id >= 0 && id < l->attempted); /* no unknown item */
			present[id] = 1;
		}
		durq_work_items_free(it, n);
	}
	int lost = 0, undone = 0;
	for (int i = 0; i < l->attempted; i++) {
		lost += l->state[i] == 1 && !present[i];
		undone += l->state[i] == 2 && present[i];
	}
	assert_int_equal(lost, 0);   /* every OK'd enqueue not acked is still there */
	assert_int_equal(undone, 0); /* no OK'd ack came back */
	durq_free(db);
	free(l);
	server_cmd(&s, "stop");
}

/*
 * The same crash against asynchronous enqueues, which go through the deferred flush: each
 * batch commits with synchronous_commit off and the flush thread's PG_FLUSH makes it
 * durable before any op of it is reported OK. An immediate shutdown drops the WAL buffers
 * (the WAL writer flushes them only every wal_writer_delay), so an OK given before the
 * flush would show up here as a lost enqueue.
 */
enum { ASYNC_ROUND = 256 };

typedef struct async_load {
	durq *db;
	atomic_int stop;
	atomic_int after_restart;
	atomic_uchar state[CRASH_ITEMS]; /* 1 = enqueue OK'd (set by its callback) */
	int attempted;
	atomic_int ok, ok_after_restart, bad_codes;
	atomic_int done;                 /* the load thread ran out of ids */
} async_load;

typedef struct async_slot {
	async_load *l;
	int id;
} async_slot;

static void async_enqueued(void *ctx, const durq_completion *c)
{
	async_slot *s = ctx;
	if (c->rc == DURQ_OK) {
		atomic_store(&s->l->state[s->id], 1);
		atomic_fetch_add(&s->l->ok, 1);
		if (atomic_load(&s->l->after_restart))
			atomic_fetch_add(&s->l->ok_after_restart, 1);
	} else if (c->rc != DURQ_EIO && !durq_error_retryable(c->rc)) {
		atomic_fetch_add(&s->l->bad_codes, 1);
	}
}

static void *async_rounds(void *arg)
{
	async_load *l = arg;
	static async_slot slots[CRASH_ITEMS];
	while (!atomic_load(&l->stop) && l->attempted + ASYNC_ROUND <= CRASH_ITEMS) {
		durq_group *g;
		if (durq_group_new(&g) != DURQ_OK)
			break;
		for (int k = 0; k < ASYNC_ROUND; k++) {
			int i = l->attempted++;
			char p[16];
			snprintf(p, sizeof(p), "%d", i);
			slots[i] = (async_slot){l, i};
			durq_work w = {.payload = p, .payload_len = strlen(p)};
			durq_async a = {.done = async_enqueued, .ctx = &slots[i], .group = g};
			if (durq_work_enqueue_async(l->db, &w, 1, &a) != DURQ_OK)
				atomic_fetch_add(&l->bad_codes, 1);
		}
		size_t failed = 0;
		durq_group_wait(g, -1, &failed);
		durq_group_free(g);
		/* a round that failed whole: the server is down; go on once it is back (else the
		 * load burns every id in failures while it restarts) */
		while (failed == ASYNC_ROUND && !atomic_load(&l->after_restart) &&
		       !atomic_load(&l->stop))
			sched_yield();
	}
	atomic_store(&l->done, 1);
	return NULL;
}

static void test_server_crash_keeps_every_async_ok(void **state)
{
	(void)state;
	server s;
	char url[1200];
	server_start(&s, NULL);
	db_create(url, sizeof(url), s.url, "crash_async");
	async_load *l = calloc(1, sizeof(*l));
	assert_int_equal(durq_open(&l->db, url, NULL), DURQ_OK);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, async_rounds, l), 0);
	while (atomic_load(&l->ok) < 2000)
		sched_yield();
	server_cmd(&s, "crash");
	server_cmd(&s, "restart");
	atomic_store(&l->after_restart, 1);
	while (atomic_load(&l->ok_after_restart) < ASYNC_ROUND && !atomic_load(&l->done))
		sched_yield();
	atomic_store(&l->stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&l->bad_codes), 0);
	assert_true(atomic_load(&l->ok_after_restart) >= 1); /* the flush recovered */
	durq_free(l->db);

	durq *db;
	assert_int_equal(durq_open(&db, url, NULL), DURQ_OK);
	static unsigned char present[CRASH_ITEMS];
	memset(present, 0, sizeof(present));
	for (;;) {
		durq_work_item *it;
		size_t n;
		int rc = durq_work_fetch(db, &it, &n, NULL, 1000, 600000, 0);
		if (rc == DURQ_EMPTY)
			break;
		assert_int_equal(rc, DURQ_OK);
		for (size_t k = 0; k < n; k++) {
			int id = payload_id(&it[k]);
			assert_true(id >= 0 && id < l->attempted);
			present[id] = 1;
		}
		durq_work_items_free(it, n);
	}
	int lost = 0;
	for (int i = 0; i < l->attempted; i++)
		lost += atomic_load(&l->state[i]) == 1 && !present[i];
	assert_int_equal(lost, 0); /* every OK'd async enqueue survived the crash */
	durq_free(db);
	free(l);
	server_cmd(&s, "stop");
}

/* ---- 3. bad URLs ---------------------------------------------------------------------- */

static void assert_open_fails(const char *url, const char *needle)
{
	durq *db = NULL;
	int rc = durq_open(&db, url, NULL);
	assert_null(db);
	assert_true(rc == DURQ_EIO || rc == DURQ_EINVAL);
	const char *msg = durq_error_last();
	if (needle && !strstr(msg, needle))
		fail_msg("message '%s' lacks '%s'", msg, needle);
	assert_null(strstr(msg, "s3cret-pw")); /* never the password */
}

static void test_bad_urls_fail_clearly_without_the_password(void **state)
{
	(void)state;
	char url[1200];
	/* nothing listens on port 1 */
	assert_open_fails("postgresql://postgres:s3cret-pw@127.0.0.1:1/x?connect_timeout=5", NULL);
	/* the server is there, the database is not */
	url_with_db(url, sizeof(url), fixture_url(), "durq_no_such_database");
	assert_open_fails(url, "durq_no_such_database");
	/* unparsable */
	assert_open_fails("postgresql://postgres:s3cret-pw@[::1/x", NULL);
}

static void test_wrong_password_is_refused_without_the_password(void **state)
{
	(void)state;
	server s;
	char url[1200];
	server_start(&s, "--password right-pw");
	/* the same URL with another password */
	const char *at = strchr(strstr(s.url, "://") + 3, '@');
	assert_non_null(at);
	snprintf(url, sizeof(url), "postgresql://postgres:s3cret-pw%s", at);
	assert_open_fails(url, "password");
	server_cmd(&s, "stop");
}

/* ---- 4. merged runs keep each op's own result ----------------------------------------- */

typedef struct slot_rc {
	int rc;
	int done;
} slot_rc;

static void record_rc(void *ctx, const durq_completion *c)
{
	slot_rc *s = ctx;
	s->rc = c->rc;
	s->done++;
}

static void test_one_batch_of_merged_runs_gives_each_op_its_own_result(void **state)
{
	(void)state;
	char url[1200];
	db_create(url, sizeof(url), fixture_url(), "merge");
	durq *db;
	assert_int_equal(durq_open(&db, url, NULL), DURQ_OK);
	enum { ITEMS = 6 };
	durq_work w[ITEMS];
	for (int i = 0; i < ITEMS; i++)
		w[i] = (durq_work){.payload = "m", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(db, w, ITEMS), DURQ_OK);
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, ITEMS, 600000, 0), DURQ_OK);
	assert_int_equal(n, ITEMS);
	durq_token forged = it[5].token;
	forged.bytes[0] ^= 0x5a;
	/* an op the server refuses on its own (durq checks ids itself now, UTF-8 included):
	 * a CHECK constraint the test adds, SQLSTATE 23514 */
	admin_exec(url, "ALTER TABLE durq_orch_queue ADD CONSTRAINT durq_test_refuse "
			"CHECK (instance_id <> 'bad-refused')");
	durq_message bad = {.instance_id = "bad-refused", .kind = 1};
	durq_message good = {.instance_id = "parent-ok", .kind = 1};

	durq_stats before, after;
	assert_int_equal(durq_stats_get(db, &before), DURQ_OK);
	durq_committer_pause(db, 1); /* everything below lands in one batch */
	enum { OPS = 11 };
	slot_rc r[OPS] = {0};
	durq_async a[OPS];
	durq_group *g;
	assert_int_equal(durq_group_new(&g), DURQ_OK);
	for (int i = 0; i < OPS; i++)
		a[i] = (durq_async){.done = record_rc, .ctx = &r[i], .group = g};
	assert_int_equal(durq_work_ack_async(db, it[0].id, &it[0].token, NULL, &a[0]), DURQ_OK);
	assert_int_equal(durq_work_ack_async(db, it[0].id, &it[0].token, NULL, &a[1]), DURQ_OK);
	assert_int_equal(durq_work_renew_async(db, it[1].id, &it[1].token, 1000, &a[2]), DURQ_OK);
	assert_int_equal(durq_work_ack_async(db, it[1].id, &it[1].token, NULL, &a[3]), DURQ_OK);
	assert_int_equal(durq_work_renew_async(db, it[1].id, &it[1].token, 1000, &a[4]), DURQ_OK);
	assert_int_equal(durq_work_abandon_async(db, it[2].id, &it[2].token, 0, 0, &a[5]), DURQ_OK);
	assert_int_equal(durq_work_ack_async(db, it[2].id, &it[2].token, NULL, &a[6]), DURQ_OK);
	assert_int_equal(durq_work_ack_async(db, it[3].id, &it[3].token, &bad, &a[7]), DURQ_OK);
	assert_int_equal(durq_work_ack_async(db, it[4].id, &it[4].token, &good, &a[8]), DURQ_OK);
	assert_int_equal(durq_work_ack_async(db, it[5].id, &forged, NULL, &a[9]), DURQ_OK);
	assert_int_equal(durq_work_renew_async(db, it[3].id, &it[3].token, 1000, &a[10]), DURQ_OK);
	durq_committer_pause(db, 0);
	/* the group, not durq_flush: a flush marker may come in a batch of its own, which
	 * would count as a second transaction */
	assert_int_equal(durq_group_wait(g, -1, NULL), DURQ_OK);
	durq_group_free(g);
	assert_int_equal(durq_stats_get(db, &after), DURQ_OK);

	const int want[OPS] = {DURQ_OK,	      DURQ_ELOCKLOST, DURQ_OK, DURQ_OK,
			       DURQ_ELOCKLOST, DURQ_OK,	      DURQ_ELOCKLOST, DURQ_EINVAL,
			       DURQ_OK,	      DURQ_ELOCKLOST, DURQ_OK};
	for (int i = 0; i < OPS; i++) {
		assert_int_equal(r[i].done, 1);
		if (r[i].rc != want[i])
			fail_msg("op %d: %s, expected %s", i, durq_error_name(r[i].rc),
				 durq_error_name(want[i]));
	}
	/* the crafted batch was one transaction (a replay after the refused insert is internal) */
	assert_int_equal(after.transactions - before.transactions, 1);
	/* item 2 back on the queue; 3 (failed ack, renewed) and 5 (forged) still leased */
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready, 1);
	assert_int_equal(d.work_leased, 2);
	assert_int_equal(d.orch_ready, 1); /* only the good completion */
	assert_int_equal(durq_work_ack(db, it[3].id, &it[3].token, NULL), DURQ_OK);
	assert_int_equal(durq_work_ack(db, it[5].id, &it[5].token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	durq_free(db);
}

/* durq_work_ack_fetch in group mode: the acks and the claim are one transaction on the
 * caller's pool connection (one round trip and one flush); acks through the committer and
 * a claim beside it would be two. */
static void test_ack_fetch_is_one_transaction_with_the_claim(void **state)
{
	(void)state;
	char url[1200];
	db_create(url, sizeof(url), fixture_url(), "ackfetch");
	durq *db;
	assert_int_equal(durq_open(&db, url, NULL), DURQ_OK);
	durq_work w[6];
	for (int i = 0; i < 6; i++)
		w[i] = (durq_work){.payload = "f", .payload_len = 1};
	assert_int_equal(durq_work_enqueue(db, w, 6), DURQ_OK);
	durq_work_item *it, *next;
	size_t n, m;
	assert_int_equal(durq_work_fetch(db, &it, &n, NULL, 3, 600000, 0), DURQ_OK);
	assert_int_equal(n, 3);
	durq_work_ack_req acks[3];
	for (size_t i = 0; i < n; i++)
		acks[i] = (durq_work_ack_req){.id = it[i].id, .token = &it[i].token};
	int rcs[3];
	durq_stats before, after;
	assert_int_equal(durq_stats_get(db, &before), DURQ_OK);
	assert_int_equal(durq_work_ack_fetch(db, acks, 3, rcs, &next, &m, NULL, 3, 600000, 0),
			 DURQ_OK);
	assert_int_equal(durq_stats_get(db, &after), DURQ_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rcs[i], DURQ_OK);
	assert_int_equal(m, 3);
	assert_int_equal(after.transactions - before.transactions, 1);
	assert_int_equal(after.txn_ops - before.txn_ops, 4); /* 3 acks + the claim */
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready + d.work_delayed, 0);
	assert_int_equal(d.work_leased, 3); /* the first three are gone */
	durq_work_items_free(it, n);
	durq_work_items_free(next, m);
	durq_free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_four_processes_share_one_database_each_item_acked_once),
		cmocka_unit_test(test_server_crash_keeps_every_ok_and_the_handle_reconnects),
		cmocka_unit_test(test_server_crash_keeps_every_async_ok),
		cmocka_unit_test(test_bad_urls_fail_clearly_without_the_password),
		cmocka_unit_test(test_wrong_password_is_refused_without_the_password),
		cmocka_unit_test(test_one_batch_of_merged_runs_gives_each_op_its_own_result),
		cmocka_unit_test(test_ack_fetch_is_one_transaction_with_the_claim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
