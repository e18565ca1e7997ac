/*
 * test_multiprocess.c — two processes share one database file, each with its own committer
 * (design §3): 2 processes x 4 threads x 1,500 enqueue -> fetch -> ack cycles. Writers of
 * the two processes contend through busy_timeout + backoff; every item is acked exactly
 * once (by whichever process fetched it), none is lost, no DURQ_EBUSY reaches a caller.
 * Whether the two committers happened to collide is up to the scheduler, so the waits are
 * checked by a second test that makes one certain: another connection holds the write lock
 * (BEGIN IMMEDIATE) until the test has seen the durq write wait for it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit_util.h"

enum { PROCS = 2, THREADS = 4, CYCLES = 1500 };

typedef struct job {
	durq *db;
	int proc, thread;
	FILE *out;             /* "A <proc> <thread> <i>" per OK'd ack */
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

/* One process's share; returns its error count plus 1000 x busy errors surfaced. */
static int run_process(const char *url, int proc, FILE *out)
{
	durq *db;
	durq_options o = DURQ_OPTIONS_INIT;
	o.busy_timeout_ms = 600000; /* a wait, however long on a loaded machine, is not EBUSY */
	if (durq_open(&db, url, &o) != DURQ_OK)
		return 1000000;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_t th[THREADS];
	job jobs[THREADS];
	for (int t = 0; t < THREADS; t++) {
		jobs[t] = (job){db, proc, t, out, &mu, 0};
		pthread_create(&th[t], NULL, cycle, &jobs[t]);
	}
	int errors = 0;
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		errors += jobs[t].errors;
	}
	durq_stats s = {0}; /* never garbage in the exit code */
	if (durq_stats_get(db, &s) != DURQ_OK) {
		fprintf(stderr, "process %d: durq_stats_get: %s\n", proc, durq_error_last());
		errors += 100;
	}
	fprintf(out, "B %llu\n", (unsigned long long)s.busy_retries);
	fprintf(stderr, "process %d: %llu transactions, %llu busy waits (hidden), %llu surfaced\n",
		proc, (unsigned long long)s.transactions, (unsigned long long)s.busy_retries,
		(unsigned long long)s.busy_surfaced);
	durq_free(db);
	return errors + 1000 * (int)s.busy_surfaced;
}

static void test_two_processes_share_a_file_each_item_acked_once(void **state)
{
	(void)state;
	fx *f = fx_new("shared.db");
	durq *init;
	assert_int_equal(durq_open(&init, f->url, NULL), DURQ_OK); /* schema before the race */
	durq_free(init);
	char logs[PROCS][PATH_MAX];
	pid_t pid[PROCS];
	for (int p = 0; p < PROCS; p++) {
		snprintf(logs[p], sizeof(logs[p]), "%s/acks-%d.txt", f->dir, p);
		pid[p] = fork();
		assert_true(pid[p] >= 0);
		if (pid[p] == 0) {
			FILE *out = fopen(logs[p], "w");
			int rc = out ? run_process(f->url, p, out) : 1000000;
			if (out)
				fclose(out);
			_exit(rc > 250 ? 250 : rc);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int status;
		assert_int_equal(waitpid(pid[p], &status, 0), pid[p]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0); /* no errors, no EBUSY surfaced */
	}
	static unsigned char seen[PROCS][THREADS][CYCLES];
	memset(seen, 0, sizeof(seen));
	unsigned long long busy = 0, b1;
	for (int p = 0; p < PROCS; p++) {
		FILE *in = fopen(logs[p], "r");
		int a, b, c;
		assert_non_null(in);
		while (fscanf(in, " A %d %d %d", &a, &b, &c) == 3) {
			assert_true(a >= 0 && a < PROCS && b >= 0 && b < THREADS && c >= 0 && c < CYCLES);
			seen[a][b][c]++;
		}
		assert_int_equal(fscanf(in, " B %llu", &b1), 1);
		busy += b1;
		fclose(in);
	}
	/* waits were counted (how many is the scheduler's business), never surfaced */
	fprintf(stderr, "busy waits, both processes: %llu\n", busy);
	for (int p = 0; p < PROCS; p++)
		for (int t = 0; t < THREADS; t++)
			for (int i = 0; i < CYCLES; i++)
				if (seen[p][t][i] != 1)
					fail_msg("item %d/%d/%d acked %d times", p, t, i, seen[p][t][i]);
	assert_int_equal(durq_open(&f->db, f->url, NULL), DURQ_OK);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(f->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready + d.work_leased + d.work_delayed, 0);
	fx_teardown((void **)&f);
}

typedef struct writer {
	durq *db;
	_Atomic int done;
	int rc;
} writer;

static void *enqueue_one(void *arg)
{
	writer *w = arg;
	durq_work item = {.payload = "after-the-lock", .payload_len = 14};
	w->rc = durq_work_enqueue(w->db, &item, 1);
	atomic_store(&w->done, 1);
	return NULL;
}

/* Another process's writer holds the lock: durq's write waits in the busy handler (counted
 * in busy_retries, not surfaced), cannot finish while the lock is held, and commits once it
 * is released. The lock is released only after the wait was seen in the stats. */
static void test_write_waits_for_another_writers_lock_and_counts_it(void **state)
{
	fx *f = *state;
	durq_options o = DURQ_OPTIONS_INIT;
	o.busy_timeout_ms = 600000;
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	sqlite3 *other;
	assert_int_equal(sqlite3_open_v2(f->url + strlen("sqlite:"), &other, SQLITE_OPEN_READWRITE,
					 NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	durq_stats before, s;
	assert_int_equal(durq_stats_get(f->db, &before), DURQ_OK);
	writer w = {.db = f->db};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, enqueue_one, &w), 0);
	/* a signal, not a timed wait: ends when the busy handler counted a wait (or the write
	 * returned, which with the lock held is the failure asserted next) */
	do
		sched_yield();
	while (durq_stats_get(f->db, &s) == DURQ_OK && s.busy_retries == before.busy_retries &&
	       !atomic_load(&w.done));
	assert_false(atomic_load(&w.done)); /* it could not commit while the lock was held */
	assert_true(s.busy_retries > before.busy_retries);
	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(other), SQLITE_OK);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, DURQ_OK);
	assert_int_equal(durq_stats_get(f->db, &s), DURQ_OK);
	assert_int_equal(s.busy_surfaced, 0);
	durq_work_item *it;
	size_t n;
	assert_int_equal(durq_work_fetch(f->db, &it, &n, NULL, 10, 60000, 0), DURQ_OK);
	assert_int_equal(n, 1);
	assert_memory_equal(it[0].payload, "after-the-lock", 14);
	durq_work_items_free(it, n);
}

/* A database whose schema is current opens while another process holds the write lock
 * for longer than the open's busy_timeout: opening takes no write lock (it did, and `durq
 * top` beside a busy writer failed with DURQ_EBUSY "create schema"). A database that still
 * needs its schema waits for the lock as before. */
static void test_open_of_a_current_database_needs_no_write_lock(void **state)
{
	fx *f = *state;
	durq_options o = DURQ_OPTIONS_INIT;
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK); /* creates the schema */
	durq_free(f->db);
	f->db = NULL;
	sqlite3 *other;
	assert_int_equal(sqlite3_open_v2(f->url + strlen("sqlite:"), &other, SQLITE_OPEN_READWRITE,
					 NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	o.busy_timeout_ms = 50;
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
	durq_stats st;
	assert_int_equal(durq_stats_get(f->db, &st), DURQ_OK);
	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(other), SQLITE_OK);
}

static void test_open_that_creates_the_schema_waits_for_the_write_lock(void **state)
{
	fx *f = *state;
	sqlite3 *other;
	assert_int_equal(sqlite3_open_v2(f->url + strlen("sqlite:"), &other,
					 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "PRAGMA journal_mode=WAL; BEGIN IMMEDIATE", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	durq_options o = DURQ_OPTIONS_INIT;
	o.busy_timeout_ms = 50;
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_EBUSY);
	assert_non_null(strstr(durq_error_last(), "create schema"));
	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(other), SQLITE_OK);
	assert_int_equal(durq_open(&f->db, f->url, &o), DURQ_OK);
}

static int setup_locked(void **state)
{
	*state = fx_new("locked.db");
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_processes_share_a_file_each_item_acked_once),
		cmocka_unit_test_setup_teardown(test_write_waits_for_another_writers_lock_and_counts_it,
						setup_locked, fx_teardown),
		cmocka_unit_test_setup_teardown(test_open_of_a_current_database_needs_no_write_lock,
						setup_locked, fx_teardown),
		cmocka_unit_test_setup_teardown(test_open_that_creates_the_schema_waits_for_the_write_lock,
						setup_locked, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
