/*
 * conf_factory.c — fixture of the conformance suite: provider → URL, fresh handle per test,
 * injectable clock, temp-dir (and, for postgresql, database) cleanup, and the small helpers
 * declared in conf_factory.h. Owns no rule of the contract.
 */
#include "conf_factory.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#ifdef DURQ_WITH_POSTGRES
#include <libpq-fe.h>
#endif

static conf_ctx *g_open; /* contexts not yet closed (a failed test skips its teardown) */

/* ---- postgresql: one fresh schema per context on the fixture's server ---- */

#ifdef DURQ_WITH_POSTGRES
#define CONF_PROVIDERS "sqlite-file sqlite-memory postgresql"

/* The server's URL: the file the CTest fixture "pg" wrote (DURQ_TEST_PG_URL_FILE), else
 * DURQ_TEST_PG_URL (a binary run by hand after eval "$(scripts/pg-server.sh start)"). */
static int pg_server_url(char *out, size_t n)
{
	const char *file = getenv("DURQ_TEST_PG_URL_FILE");
	const char *env = getenv("DURQ_TEST_PG_URL");
	out[0] = '\0';
	if (file && *file) {
		FILE *f = fopen(file, "r");
		if (!f) {
			fprintf(stderr, "conf: postgresql: cannot read the server URL from %s (%s); "
					"did the CTest fixture test pg_server_start pass?\n",
				file, strerror(errno));
			return -1;
		}
		if (!fgets(out, (int)n, f))
			out[0] = '\0';
		fclose(f);
		out[strcspn(out, "\r\n")] = '\0';
	} else if (env && *env) {
		snprintf(out, n, "%s", env);
	} else {
		fprintf(stderr, "conf: postgresql: neither DURQ_TEST_PG_URL_FILE nor DURQ_TEST_PG_URL "
				"is set (run it with ctest, or eval \"$(scripts/pg-server.sh start)\")\n");
		return -1;
	}
	if (strncmp(out, "postgresql://", 13) != 0 && strncmp(out, "postgres://", 11) != 0) {
		fprintf(stderr, "conf: postgresql: the server URL '%s' is not a postgresql:// URL\n",
			out);
		return -1;
	}
	return 0;
}

/* url with the schema as the session's search_path (libpq's options parameter): the provider
 * creates its tables in the first schema of the search path. */
static int pg_url_with_schema(char *out, size_t n, const char *url, const char *schema)
{
	int w = snprintf(out, n, "%s%coptions=-csearch_path%%3D%s", url,
			 strchr(url, '?') ? '&' : '?', schema);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* One statement on the server, on a connection of its own. */
static int pg_exec(const char *url, const char *sql)
{
	PGconn *conn = PQconnectdb(url);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "conf: postgresql: connecting to %s: %s", url, PQerrorMessage(conn));
		PQfinish(conn);
		return -1;
	}
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "conf: postgresql: %s: %s", sql, PQerrorMessage(conn));
	PQclear(r);
	PQfinish(conn);
	return ok ? 0 : -1;
}

/* A fresh schema durq_t_<pid>_<n> in the server's database; the context's URL makes it the
 * search path. A schema costs a few ms where a database cost ~0.6 s to create and drop
 * (fsync on), which made the suite too slow for CI's three builds. The name is made here,
 * never from caller data, so formatting it into the statement is safe (DDL takes no
 * parameters). */
static int pg_provider_url(conf_ctx *c)
{
	static _Atomic unsigned serial;
	char sql[128];
	c->dir[0] = '\0';
	c->durable = 1;
	if (pg_server_url(c->pg_server, sizeof c->pg_server) < 0)
		return -1;
	snprintf(c->pg_db, sizeof c->pg_db, "durq_t_%ld_%u", (long)getpid(),
		 atomic_fetch_add(&serial, 1) + 1);
	if (pg_url_with_schema(c->url, sizeof c->url, c->pg_server, c->pg_db) < 0) {
		fprintf(stderr, "conf: postgresql: URL too long: %s\n", c->pg_server);
		c->pg_db[0] = '\0';
		return -1;
	}
	snprintf(sql, sizeof sql, "CREATE SCHEMA %s", c->pg_db);
	if (pg_exec(c->pg_server, sql) < 0) {
		c->pg_db[0] = '\0';
		return -1;
	}
	return 0;
}

/* Drop the context's schema; a session a failed test left open may hold a lock on it: then
 * the schema stays (the lock timeout bounds the wait) and the message says so. */
static void pg_drop(conf_ctx *c)
{
	char sql[200];
	if (!c->pg_db[0])
		return;
	snprintf(sql, sizeof sql, "SET client_min_messages = warning; SET lock_timeout = '10s'; "
		 "DROP SCHEMA IF EXISTS %s CASCADE", c->pg_db);
	if (pg_exec(c->pg_server, sql) < 0)
		fprintf(stderr, "conf: postgresql: schema %s left on the server\n", c->pg_db);
	c->pg_db[0] = '\0';
}

/* Group setup: the server answers (else every test of the group would fail one by one). */
static int pg_check_server(void)
{
	char url[600];
	if (pg_server_url(url, sizeof url) < 0)
		return -1;
	return pg_exec(url, "SELECT 1");
}
#else
#define CONF_PROVIDERS "sqlite-file sqlite-memory"
#endif

/* ---- provider table: add a provider here and in CMakeLists.txt ---- */

static int provider_url(conf_ctx *c)
{
	if (strcmp(c->provider, "sqlite-file") == 0) {
		const char *tmp = getenv("TMPDIR");
		snprintf(c->dir, sizeof c->dir, "%s/durq-conf-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(c->dir)) {
			fprintf(stderr, "conf: mkdtemp(%s): %s\n", c->dir, strerror(errno));
			return -1;
		}
		snprintf(c->url, sizeof c->url, "sqlite:%s/t.db", c->dir);
		c->durable = 1;
		return 0;
	}
	if (strcmp(c->provider, "sqlite-memory") == 0) {
		c->dir[0] = '\0';
		snprintf(c->url, sizeof c->url, "sqlite::memory:");
		c->durable = 0;
		return 0;
	}
#ifdef DURQ_WITH_POSTGRES
	if (strcmp(c->provider, "postgresql") == 0)
		return pg_provider_url(c);
#endif
	fprintf(stderr, "conf: unknown DURQ_TEST_PROVIDER '%s' (known: " CONF_PROVIDERS ")\n",
		c->provider);
	return -1;
}

static const char *provider_name(void)
{
	return getenv("DURQ_TEST_PROVIDER");
}

/* The commit-mode dimension of the matrix: DURQ_TEST_COMMIT_MODE=group|per-op (unset =
 * group). A test that asks for per-op itself keeps it. */
static int commit_mode_of_run(int *mode)
{
	const char *m = getenv("DURQ_TEST_COMMIT_MODE");
	if (!m || !*m || !strcmp(m, "group"))
		*mode = DURQ_COMMIT_GROUP;
	else if (!strcmp(m, "per-op"))
		*mode = DURQ_COMMIT_PER_OP;
	else
		return -1;
	return 0;
}

int conf_group_setup(void **state)
{
	(void)state;
	const char *p = provider_name();
	if (!p || !*p) {
		fprintf(stderr, "conf: DURQ_TEST_PROVIDER is not set; refusing to run (a skipped "
				"conformance test is a failed one)\n");
		return -1;
	}
#ifdef DURQ_WITH_POSTGRES
	if (strcmp(p, "postgresql") == 0 && pg_check_server() < 0) {
		fprintf(stderr, "conf: postgresql: the test server does not answer (reason above)\n");
		return -1;
	}
	int known = !strcmp(p, "postgresql");
#else
	int known = 0;
#endif
	if (!known && strcmp(p, "sqlite-file") != 0 && strcmp(p, "sqlite-memory") != 0) {
		fprintf(stderr, "conf: unknown DURQ_TEST_PROVIDER '%s' (known: " CONF_PROVIDERS ")\n",
			p);
		return -1;
	}
	int mode;
	if (commit_mode_of_run(&mode) < 0) {
		fprintf(stderr, "conf: unknown DURQ_TEST_COMMIT_MODE '%s' (group or per-op)\n",
			getenv("DURQ_TEST_COMMIT_MODE"));
		return -1;
	}
	return 0;
}

/* ---- the injected clock ---- */

static int64_t conf_clock(void *ctx)
{
	conf_ctx *c = ctx;
	atomic_fetch_add(&c->reads, 1);
	int64_t step = atomic_load(&c->tick);
	if (step > 0)
		return atomic_fetch_add(&c->now, step) + step;
	return atomic_load(&c->now);
}

void conf_advance(conf_ctx *c, int64_t ms)
{
	atomic_fetch_add(&c->now, ms);
	if (c->db)
		durq_wake(c->db);
}

int64_t conf_time(conf_ctx *c)
{
	return atomic_load(&c->now);
}

/* ---- open / close ---- */

static void rm_dir(const char *dir)
{
	if (!dir[0])
		return;
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		char path[1200];
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* What provider_url made for c: its temp dir, its database. */
static void provider_release(conf_ctx *c)
{
	rm_dir(c->dir);
#ifdef DURQ_WITH_POSTGRES
	pg_drop(c);
#endif
}

static void fill_options(conf_ctx *c)
{
	durq_options o = DURQ_OPTIONS_INIT;
	o.max_attempts = c->copts.max_attempts;
	o.poison_policy = c->copts.poison_policy;
	o.poison_notify_kind = c->copts.poison_notify_kind;
	o.commit_mode = c->copts.commit_mode;
	int run_mode;
	if (o.commit_mode == DURQ_COMMIT_GROUP && commit_mode_of_run(&run_mode) == 0)
		o.commit_mode = run_mode;
	o.max_payload = c->copts.max_payload;
	o.pool_size = c->copts.pool_size;
	o.poll_interval_ms = c->copts.poll_interval_ms;
	if (!c->copts.wall_clock) {
		o.clock = conf_clock;
		o.clock_ctx = c;
	}
	c->opts = o;
}

static conf_ctx *ctx_new(const conf_opts *o, int *rc)
{
	conf_ctx *c = calloc(1, sizeof *c);
	if (!c) {
		*rc = DURQ_ENOMEM;
		return NULL;
	}
	c->provider = provider_name();
	if (!c->provider)
		c->provider = "(unset)";
	atomic_store(&c->now, CONF_T0);
	if (o)
		c->copts = *o;
	if (provider_url(c) != 0) {
		free(c);
		*rc = DURQ_EINVAL;
		return NULL;
	}
	fill_options(c);
	*rc = durq_open(&c->db, c->url, &c->opts);
	if (*rc != DURQ_OK) {
		fprintf(stderr, "conf: durq_open(%s) = %d (%s): %s\n", c->url, *rc,
			durq_error_name(*rc), durq_error_last());
		provider_release(c);
		free(c);
		return NULL;
	}
	c->next = g_open;
	g_open = c;
	return c;
}

int conf_open(conf_ctx **out)
{
	int rc;
	*out = ctx_new(NULL, &rc);
	return rc;
}

conf_ctx *conf_open_opts(const conf_opts *o)
{
	int rc;
	conf_ctx *c = ctx_new(o, &rc);
	assert_int_equal(rc, DURQ_OK);
	assert_non_null(c);
	return c;
}

void conf_close(conf_ctx *c)
{
	if (!c)
		return;
	for (conf_ctx **pp = &g_open; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	if (c->db)
		durq_free(c->db);
	c->db = NULL;
	provider_release(c);
	free(c);
}

int conf_reopen(conf_ctx *c)
{
	if (c->db)
		durq_free(c->db);
	c->db = NULL;
	return durq_open(&c->db, c->url, &c->opts);
}

int conf_open_second(conf_ctx *c, durq **out)
{
	return durq_open(out, c->url, &c->opts);
}

int conf_setup(void **state)
{
	conf_ctx *c = NULL;
	int rc = conf_open(&c);
	if (rc != DURQ_OK || !c)
		return -1;
	*state = c;
	return 0;
}

int conf_teardown(void **state)
{
	conf_close(*state);
	*state = NULL;
	return 0;
}

conf_ctx *conf_use(void **state, const conf_opts *o)
{
	conf_close(*state);
	*state = NULL;
	conf_ctx *c = conf_open_opts(o);
	*state = c;
	return c;
}

int conf_group_teardown(void **state)
{
	(void)state;
	while (g_open)
		conf_close(g_open);
	return 0;
}

/* ---- builders ---- */

durq_event conf_ev(uint64_t id, const char *payload)
{
	durq_event e = {id, payload, payload ? strlen(payload) : 0};
	return e;
}

durq_message conf_m(const char *inst, int kind, const char *payload)
{
	durq_message m;
	memset(&m, 0, sizeof m);
	m.instance_id = inst;
	m.kind = kind;
	m.payload = payload;
	m.payload_len = payload ? strlen(payload) : 0;
	return m;
}

durq_work conf_w(const char *queue, const char *payload)
{
	durq_work w;
	memset(&w, 0, sizeof w);
	w.queue = queue;
	w.payload = payload;
	w.payload_len = payload ? strlen(payload) : 0;
	return w;
}

int conf_bytes_eq(const void *p, size_t n, const char *s)
{
	size_t sl = strlen(s);
	if (n != sl)
		return 0;
	return n == 0 || (p && memcmp(p, s, n) == 0);
}

/* ---- helpers ---- */

int conf_msg_at(conf_ctx *c, const char *inst, int kind, const char *payload, int64_t visible_at,
		int64_t delay_ms)
{
	durq_message m = conf_m(inst, kind, payload);
	m.visible_at_ms = visible_at;
	m.delay_ms = delay_ms;
	return durq_orch_enqueue(c->db, &m, 1);
}

int conf_msg(conf_ctx *c, const char *inst, int kind, const char *payload)
{
	return conf_msg_at(c, inst, kind, payload, 0, 0);
}

int conf_work(conf_ctx *c, const char *queue, const char *payload, int priority, int64_t delay_ms)
{
	durq_work w = conf_w(queue, payload);
	w.priority = priority;
	w.delay_ms = delay_ms;
	return durq_work_enqueue(c->db, &w, 1);
}

int conf_activity(conf_ctx *c, const char *inst, uint64_t exec, uint64_t act, const char *payload)
{
	durq_work w = conf_w(NULL, payload);
	w.instance_id = inst;
	w.execution_id = exec;
	w.activity_id = act;
	return durq_work_enqueue(c->db, &w, 1);
}

int conf_fetch1(conf_ctx *c, durq_work_item **it, const char *queue, int64_t lease_ms)
{
	size_t n = 0;
	*it = NULL;
	int rc = durq_work_fetch(c->db, it, &n, queue, 1, lease_ms ? lease_ms : CONF_LEASE, 0);
	if (rc == DURQ_OK && n != 1) {
		durq_work_items_free(*it, n);
		*it = NULL;
		fail_msg("durq_work_fetch(max=1) returned OK with n=%zu", n);
	}
	if (rc != DURQ_OK)
		*it = NULL;
	return rc;
}

int conf_turn(conf_ctx *c, durq_turn **t, int64_t lease_ms)
{
	*t = NULL;
	int rc = durq_orch_fetch(c->db, t, lease_ms ? lease_ms : CONF_LEASE, 0);
	if (rc != DURQ_OK)
		*t = NULL;
	return rc;
}

void conf_assert_no_turn(conf_ctx *c)
{
	durq_turn *t = NULL;
	int rc = conf_turn(c, &t, 0);
	if (rc == DURQ_OK) {
		char id[300];
		snprintf(id, sizeof id, "%s", t->instance_id ? t->instance_id : "(null)");
		durq_turn_free(t);
		fail_msg("expected no fetchable turn, got one for instance '%s'", id);
	}
	assert_int_equal(rc, DURQ_EMPTY);
}

void conf_assert_no_work(conf_ctx *c, const char *queue)
{
	durq_work_item *it = NULL;
	int rc = conf_fetch1(c, &it, queue, 0);
	if (rc == DURQ_OK) {
		int64_t id = it->id;
		durq_work_items_free(it, 1);
		fail_msg("expected no fetchable work item, got item %lld", (long long)id);
	}
	assert_int_equal(rc, DURQ_EMPTY);
}

durq_turn *conf_turn_for(conf_ctx *c, const char *inst)
{
	durq_turn *t = NULL;
	assert_int_equal(conf_turn(c, &t, 0), DURQ_OK);
	assert_non_null(t);
	assert_string_equal(t->instance_id, inst);
	return t;
}

int conf_ack_event(conf_ctx *c, durq_turn *t, uint64_t event_id, const char *payload)
{
	durq_event e = conf_ev(event_id, payload);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "wf";
	r.version_tag = "v1";
	r.history = &e;
	r.n_history = 1;
	return durq_orch_ack(c->db, t->instance_id, &t->token, &r);
}

void conf_create_instance(conf_ctx *c, const char *inst)
{
	assert_int_equal(conf_msg(c, inst, 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, inst);
	assert_int_equal(t->exists, 0);
	assert_int_equal(conf_ack_event(c, t, 1, "start"), DURQ_OK);
	durq_turn_free(t);
	assert_int_equal(conf_status(c, inst), DURQ_STATUS_RUNNING);
}

size_t conf_history(conf_ctx *c, const char *inst, uint64_t exec, durq_event **ev)
{
	size_t n = 0;
	*ev = NULL;
	int rc = durq_history_read(c->db, ev, &n, inst, exec);
	if (rc != DURQ_OK)
		fail_msg("durq_history_read(%s, %llu) = %s: %s", inst, (unsigned long long)exec,
			 durq_error_name(rc), durq_error_last());
	return n;
}

int conf_status(conf_ctx *c, const char *inst)
{
	durq_instance_info *info = NULL;
	int rc = durq_instance_get(c->db, &info, inst);
	if (rc == DURQ_ENOTFOUND)
		return -1;
	if (rc != DURQ_OK)
		fail_msg("durq_instance_get(%s) = %s: %s", inst, durq_error_name(rc),
			 durq_error_last());
	int st = info->status;
	durq_instance_info_free(info);
	return st;
}

size_t conf_dead_count(conf_ctx *c)
{
	durq_dead_letter *dl = NULL;
	size_t n = 0;
	int rc = durq_dead_list(c->db, &dl, &n, 100000);
	assert_int_equal(rc, DURQ_OK);
	durq_dead_letters_free(dl, n);
	return n;
}

int64_t conf_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int conf_wait_ops(durq *db, int kind, uint64_t n, const _Atomic int *stop)
{
	durq_stats s;
	while (!atomic_load(stop)) {
		if (durq_stats_get(db, &s) != DURQ_OK)
			return 0;
		if (s.ops[kind] >= n)
			return 1;
		sched_yield();
	}
	return 0;
}

durq_token conf_forged_token(void)
{
	durq_token t;
	for (int i = 0; i < 16; i++)
		t.bytes[i] = (unsigned char)(0xA5 ^ (i * 37));
	return t;
}
