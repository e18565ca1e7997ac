/*
 * test_multiprocess.c — two processes share one database file, each with its own committer
 * (design §3): 2 processes x 4 threads x 1,500 enqueue -> fetch -> ack cycles. Writers of
 * the two processes contend through busy_timeout + backoff; every item is acked exactly
 * once (by whichever process fetched it), none is lost, no DURQ_EBUSY reaches a caller, and
 * the waits for the other process's lock are counted in stats.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
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
	o.busy_timeout_ms = 30000;
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
	durq_stats s;
	durq_stats_get(db, &s);
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
	/* the two committers did contend, and the waits were counted, never surfaced */
	assert_true(busy > 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_processes_share_a_file_each_item_acked_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
