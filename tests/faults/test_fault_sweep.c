/*
 * test_fault_sweep.c — the fault sweep (issue 11, item 3). A counting run of the workload
 * (fault_workload.c) counts its I/O calls by type through the fault VFS; then, for every
 * type T and every N up to T's count, one run fails the Nth call of type T and checks that
 * the failure surfaced as DURQ_EIO/DURQ_EFULL, changed nothing half-way, and that the
 * handle (or a reopened one) works once the fault clears, with integrity_check ok and every
 * OK'd enqueue and ack in the file. Four sweeps: group and per-op commit, a fault of one
 * call and a fault lasting until the step ends; and a fifth, per-op, counting N over calls
 * of every type (so each run fails the Nth I/O call, whatever it is). Write faults
 * alternate SQLITE_IOERR_WRITE (odd N) and SQLITE_FULL (even N).
 *
 * The database lives in /dev/shm when that is a tmpfs (the faults are simulated; a real
 * disk's fsyncs would only slow the sweep), else in TMPDIR.
 * Environment: DURQ_FAULT_SAMPLE=K runs a seeded sample of K injections per sweep (0 = every
 * N; the default is every N, or 100 under sanitizers), DURQ_FAULT_SEED=S picks the sample
 * (default 1), DURQ_FAULT_ONLY=sweep:xCall:N runs that one injection with every step printed.
 * A watchdog aborts, naming the injection, if one run takes over 60 s (a hang).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <time.h>

#include "fault_workload.h"
#include "unit/unit_util.h"

#ifdef DURQ_FAULTS_SANITIZED
#define DEFAULT_SAMPLE 100
#else
#define DEFAULT_SAMPLE 0
#endif
#define WATCHDOG_S 60
#define MAX_PRINTED 20

typedef struct sweep {
	const char *name;
	int commit_mode;
	long repeat;
	int count_all;            /* N counts calls of every type (else: of the type swept) */
} sweep;

static const sweep sweeps[] = {
	{"group-once", DURQ_COMMIT_GROUP, 1, 0},
	{"perop-once", DURQ_COMMIT_PER_OP, 1, 0},
	{"group-step", DURQ_COMMIT_GROUP, -1, 0},
	{"perop-step", DURQ_COMMIT_PER_OP, -1, 0},
	{"perop-all", DURQ_COMMIT_PER_OP, 1, 1},
};

typedef struct injection {
	int op;
	long nth;
} injection;

/* Aborts the process if the run in progress takes longer than WATCHDOG_S. */
typedef struct watchdog {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned long generation;
	int stop;
	char what[160];
} watchdog;

static void *watchdog_main(void *arg)
{
	watchdog *w = arg;
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		unsigned long gen = w->generation;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += WATCHDOG_S;
		int rc = 0;
		while (!w->stop && gen == w->generation && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		if (!w->stop && gen == w->generation) {
			fprintf(stderr, "HANG: %s has run for %d s\n", w->what, WATCHDOG_S);
			abort();
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void watchdog_start(watchdog *w)
{
	*w = (watchdog){.generation = 0};
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	assert_int_equal(pthread_create(&w->thread, NULL, watchdog_main, w), 0);
}

static void watchdog_pet(watchdog *w, const char *sweep, int op, long nth)
{
	pthread_mutex_lock(&w->mu);
	w->generation++;
	snprintf(w->what, sizeof(w->what), "injection %s:%s:%ld", sweep, faultvfs_op_name(op), nth);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void watchdog_stop(watchdog *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
}

static long env_long(const char *name, long dflt)
{
	const char *s = getenv(name);
	return s && *s ? strtol(s, NULL, 10) : dflt;
}

static int op_by_name(const char *name, size_t len)
{
	for (int op = 0; op < FAULTVFS__COUNT; op++)
		if (strlen(faultvfs_op_name(op)) == len && !strncmp(faultvfs_op_name(op), name, len))
			return op;
	return -1;
}

/* DURQ_FAULT_ONLY=sweep:xCall:N, if set and for this sweep: 1 with *out filled. */
static int only_injection(const sweep *sw, injection *out)
{
	const char *s = getenv("DURQ_FAULT_ONLY");
	size_t nl = strlen(sw->name);
	if (!s || strncmp(s, sw->name, nl) || s[nl] != ':')
		return 0;
	const char *op = s + nl + 1, *colon = strchr(op, ':');
	if (!colon || (out->op = op_by_name(op, (size_t)(colon - op))) < 0)
		fail_msg("DURQ_FAULT_ONLY=%s: want sweep:xCall:N", s);
	out->nth = strtol(colon + 1, NULL, 10);
	return 1;
}

/* Write faults alternate an I/O error and a full disk. */
static int fault_rc(const injection *in)
{
	return in->op == FAULTVFS_WRITE && in->nth % 2 == 0 ? SQLITE_FULL : 0;
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Every (type, N) of the counting run (count_all: every (any, N)); a seeded sample of k of
 * them if k > 0. */
static injection *plan(const long counts[FAULTVFS__COUNT], int count_all, long k, long seed,
		       size_t *n)
{
	size_t total = (size_t)counts[FAULTVFS_ANY], i = 0;
	injection *all = calloc(total ? total : 1, sizeof(*all));
	assert_non_null(all);
	for (int op = count_all ? FAULTVFS_ANY : 1; op < (count_all ? 1 : FAULTVFS__COUNT); op++)
		for (long nth = 1; nth <= counts[op]; nth++)
			all[i++] = (injection){op, nth};
	*n = total;
	if (k <= 0 || (size_t)k >= total)
		return all;
	uint64_t s = (uint64_t)seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t j = 0; j < (size_t)k; j++) { /* partial Fisher-Yates */
		size_t pick = j + (size_t)(next_rand(&s) % (total - j));
		injection t = all[j];
		all[j] = all[pick];
		all[pick] = t;
	}
	*n = (size_t)k;
	return all;
}

static void print_counts(const char *sweep, const long counts[FAULTVFS__COUNT])
{
	printf("[%s] I/O calls of one workload run: %ld =", sweep, counts[FAULTVFS_ANY]);
	for (int op = 1; op < FAULTVFS__COUNT; op++)
		if (counts[op])
			printf(" %s %ld", faultvfs_op_name(op), counts[op]);
	printf("\n");
}

typedef struct fixture {
	char *dir;
	faultvfs *vfs;
} fixture;

static void count_calls(const fw_config *cfg, long counts[FAULTVFS__COUNT])
{
	fw_figures fig = {0};
	long budget = MAX_PRINTED;
	assert_int_equal(fw_run(cfg, FAULTVFS_ANY, 0, 0, &fig, &budget, counts), 0);
	assert_true(counts[FAULTVFS_ANY] > 0);
}

static void print_figures(const char *sweep, const fw_figures *f, double secs,
			  const long per_op[FAULTVFS__COUNT])
{
	printf("[%s] %ld injections in %.1f s: not reached %ld; ops failed with DURQ_EIO %ld, "
	       "DURQ_EFULL %ld; durq_open failed, next step reopened %ld; absorbed (step "
	       "succeeded) %ld; applied despite the error %ld; a later call failed, reopened to "
	       "recover %ld; checks deferred to the next open %ld; violations %ld\n", sweep, f->runs, secs, f->not_reached, f->eio, f->efull, f->open_failed,
	       f->absorbed, f->applied_anyway, f->reopened, f->deferred, f->violations);
	printf("[%s] faults injected by call:", sweep);
	for (int op = 1; op < FAULTVFS__COUNT; op++)
		if (per_op[op])
			printf(" %s %ld", faultvfs_op_name(op), per_op[op]);
	printf("\n");
	fflush(stdout);
}

static double seconds(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void run_sweep(void **state, const sweep *sw)
{
	fixture *fx = *state;
	fw_config cfg = {.sweep = sw->name, .commit_mode = sw->commit_mode, .repeat = sw->repeat,
			 .dir = fx->dir, .vfs = fx->vfs};
	injection one;
	if (only_injection(sw, &one)) {
		fw_figures fig = {0};
		long budget = MAX_PRINTED;
		cfg.verbose = 1;
		long per_op[FAULTVFS__COUNT] = {0};
		per_op[one.op] = 1;
		fw_run(&cfg, one.op, one.nth, fault_rc(&one), &fig, &budget, NULL);
		print_figures(sw->name, &fig, 0, per_op);
		assert_int_equal(fig.violations, 0);
		return;
	}
	if (getenv("DURQ_FAULT_ONLY"))
		return; /* a reproducer for another sweep */
	long counts[FAULTVFS__COUNT], again[FAULTVFS__COUNT];
	count_calls(&cfg, counts);
	count_calls(&cfg, again);
	print_counts(sw->name, counts);
	if (memcmp(counts, again, sizeof(counts)))
		print_counts("a second counting run (not deterministic)", again);
	size_t n;
	injection *todo = plan(counts, sw->count_all, env_long("DURQ_FAULT_SAMPLE", DEFAULT_SAMPLE),
			       env_long("DURQ_FAULT_SEED", 1), &n);
	fw_figures fig = {0};
	long per_op[FAULTVFS__COUNT] = {0}, budget = MAX_PRINTED;
	watchdog wd;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	watchdog_start(&wd);
	double slowest = 0;
	injection slow = {0, 0};
	for (size_t i = 0; i < n; i++) {
		struct timespec a, b;
		watchdog_pet(&wd, sw->name, todo[i].op, todo[i].nth);
		clock_gettime(CLOCK_MONOTONIC, &a);
		fw_run(&cfg, todo[i].op, todo[i].nth, fault_rc(&todo[i]), &fig, &budget, NULL);
		clock_gettime(CLOCK_MONOTONIC, &b);
		per_op[faultvfs_first_op(fx->vfs)]++; /* the type of the call that failed */
		if (seconds(&a, &b) > slowest) {
			slowest = seconds(&a, &b);
			slow = todo[i];
		}
	}
	watchdog_stop(&wd);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(todo);
	print_figures(sw->name, &fig, seconds(&t0, &t1), per_op);
	printf("[%s] slowest run: %s:%ld, %.3f s\n", sw->name, faultvfs_op_name(slow.op), slow.nth,
	       slowest);
	assert_int_equal(fig.violations, 0);
	assert_true(fig.eio + fig.efull > 0); /* the sweep did inject faults that surfaced */
}

static void test_group_once(void **state)
{
	run_sweep(state, &sweeps[0]);
}

static void test_perop_once(void **state)
{
	run_sweep(state, &sweeps[1]);
}

static void test_group_step(void **state)
{
	run_sweep(state, &sweeps[2]);
}

static void test_perop_step(void **state)
{
	run_sweep(state, &sweeps[3]);
}

static void test_perop_all(void **state)
{
	run_sweep(state, &sweeps[4]);
}

/* The faults are simulated, the disk's speed only slows the sweep: its files go to
 * /dev/shm when that is a tmpfs (fsync is free there), else to TMPDIR. */
static char *sweep_dir(void)
{
	struct statfs sf;
	if (statfs("/dev/shm", &sf) != 0 || sf.f_type != TMPFS_MAGIC)
		return test_tmpdir();
	char *dir = malloc(PATH_MAX);
	snprintf(dir, PATH_MAX, "/dev/shm/durq-faults-XXXXXX");
	if (!mkdtemp(dir)) {
		free(dir);
		return test_tmpdir();
	}
	return dir;
}

static int setup(void **state)
{
	fixture *fx = calloc(1, sizeof(*fx));
	if (!fx || !(fx->dir = sweep_dir()) || !(fx->vfs = faultvfs_new("durq-faults")))
		return -1;
	printf("sweep files in %s\n", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture *fx = *state;
	faultvfs_free(fx->vfs);
	test_rmdir(fx->dir);
	free(fx);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_once),
		cmocka_unit_test(test_perop_once),
		cmocka_unit_test(test_group_step),
		cmocka_unit_test(test_perop_step),
		cmocka_unit_test(test_perop_all),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
