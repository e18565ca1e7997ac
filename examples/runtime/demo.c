/*
 * demo.c — durq-runtime-demo, the driver of the runtime example: starts N orders, runs the
 * runtime's orchestrator and worker threads until every order is finished, approves the
 * orders that wait for it (the external event), then verifies each order's output and
 * prints a summary. With --resume it starts nothing and finishes what a killed run left.
 *
 *   durq-runtime-demo URL N [--resume] [--progress-fd FD] [--orchestrators K]
 *                     [--workers W] [--timeout-s S]
 *
 * Exit status: 0 all N orders COMPLETED with the right output; 1 otherwise; 2 bad usage.
 * --progress-fd FD: a line "completed C of N" on FD each time C changes (the kill test
 * waits on it).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <durq.h>

#include "order.h"
#include "runtime.h"

#define SCAN_INTERVAL_MS 50 /* the driver's look at the orders, when no order finishes */
#define START_SPACING_MS 40 /* orders arrive over time: order n is visible after n x this */
#define LEASE_MS 2000       /* short, so a restart gets a killed run's leases back soon */

typedef struct driver {
	durq *db;
	const char *url;
	int n, resume, progress_fd, orchestrators, workers, timeout_s;
	char *approved;          /* approved[n]: this process raised order n's approval */
	uint64_t *status_seen;   /* status_seen[n]: version of order n's custom status seen */
	pthread_mutex_t mu;      /* guards `finished`, signalled by `cv` */
	pthread_cond_t cv;
	int finished;            /* orders finished since the last scan (a hint to scan now) */
	int completed, failed;   /* counts of the last scan */
} driver;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usage(void)
{
	fprintf(stderr, "usage: durq-runtime-demo URL N [--resume] [--progress-fd FD] "
			"[--orchestrators K] [--workers W] [--timeout-s S]\n");
	return 2;
}

static int parse_args(driver *d, int argc, char **argv)
{
	*d = (driver){.progress_fd = -1, .orchestrators = 2, .workers = 4, .timeout_s = 300};
	if (argc < 3)
		return -1;
	d->url = argv[1];
	d->n = atoi(argv[2]);
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--resume") == 0)
			d->resume = 1;
		else if (i + 1 < argc && strcmp(a, "--progress-fd") == 0)
			d->progress_fd = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(a, "--orchestrators") == 0)
			d->orchestrators = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(a, "--workers") == 0)
			d->workers = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(a, "--timeout-s") == 0)
			d->timeout_s = atoi(argv[++i]);
		else
			return -1;
	}
	return d->n >= 1 && d->n <= 9999 && d->orchestrators >= 1 && d->workers >= 1 &&
			       d->timeout_s >= 1
		       ? 0
		       : -1;
}

/* rt hook, on durq's committer thread: wake the main loop to count again. */
static void on_finished(void *ctx, const char *instance_id, int status)
{
	driver *d = ctx;
	(void)instance_id;
	(void)status;
	pthread_mutex_lock(&d->mu);
	d->finished++;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

static void wait_for_news(driver *d, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&d->mu);
	while (d->finished == 0 && pthread_cond_timedwait(&d->cv, &d->mu, &ts) == 0)
		;
	d->finished = 0;
	pthread_mutex_unlock(&d->mu);
}

static int start_orders(driver *d)
{
	rt_start_req *reqs = calloc((size_t)d->n, sizeof *reqs);
	char (*ids)[32] = calloc((size_t)d->n, sizeof *ids);
	char (*inputs)[96] = calloc((size_t)d->n, sizeof *inputs);
	int rc = reqs && ids && inputs ? DURQ_OK : DURQ_ENOMEM;
	for (int i = 0; i < d->n && rc == DURQ_OK; i++) {
		order_id(ids[i], sizeof ids[i], i + 1);
		order_input(inputs[i], sizeof inputs[i], i + 1);
		reqs[i] = (rt_start_req){.instance_id = ids[i], .name = ORDER_ORCHESTRATION,
					 .input = inputs[i], .delay_ms = (int64_t)i * START_SPACING_MS};
	}
	if (rc == DURQ_OK && (rc = rt_start_instances(d->db, reqs, (size_t)d->n)) < 0)
		fprintf(stderr, "start: %s: %s\n", durq_error_name(rc), durq_error_last());
	free(reqs);
	free(ids);
	free(inputs);
	return rc;
}

/* The human in the loop: approve each order that shows it waits for approval. Once per
 * process; a restarted driver may approve again, and the orchestration takes the first. */
static void approve_waiting(driver *d, const char *id)
{
	int n;
	void *status;
	size_t len;
	if (sscanf(id, "order-%d", &n) != 1 || n < 1 || n > d->n || d->approved[n])
		return;
	/* DURQ_EMPTY: no turn set it since the last look; nothing is copied */
	if (durq_custom_status_get(d->db, &status, &len, &d->status_seen[n], id,
				   d->status_seen[n]) != DURQ_OK)
		return;
	int waiting = status && len == strlen(ORDER_AWAITING_APPROVAL) &&
		      memcmp(status, ORDER_AWAITING_APPROVAL, len) == 0;
	free(status);
	if (waiting && rt_raise_event(d->db, id, ORDER_APPROVAL_EVENT, ORDER_APPROVAL_DATA) == 0)
		d->approved[n] = 1;
}

/* How many instances have the status (the database holds the demo's orders only). */
static int count_status(durq *db, int status, int *count)
{
	char **ids;
	size_t n;
	int rc = durq_instance_list(db, &ids, &n, status);
	if (rc < 0)
		return rc;
	*count = (int)n;
	durq_strings_free(ids, n);
	return 0;
}

/* Count the finished orders and approve the running ones that wait. 0, or a durq error. */
static int scan(driver *d)
{
	char **ids;
	size_t n;
	int rc;
	if ((rc = count_status(d->db, DURQ_STATUS_COMPLETED, &d->completed)) < 0 ||
	    (rc = count_status(d->db, DURQ_STATUS_FAILED, &d->failed)) < 0 ||
	    (rc = durq_instance_list(d->db, &ids, &n, DURQ_STATUS_RUNNING)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		approve_waiting(d, ids[i]);
	durq_strings_free(ids, n);
	return 0;
}

static void report_progress(driver *d, int *last)
{
	if (d->progress_fd < 0 || d->completed == *last)
		return;
	char line[64];
	int len = snprintf(line, sizeof line, "completed %d of %d\n", d->completed, d->n);
	if (write(d->progress_fd, line, (size_t)len) != len)
		d->progress_fd = -1; /* the reader went away: run on without it */
	*last = d->completed;
}

/* Run until every order is finished or the timeout. 0 when all finished. */
static int run_until_done(driver *d)
{
	int64_t deadline = mono_ms() + (int64_t)d->timeout_s * 1000;
	int last = -1, rc;
	for (;;) {
		if ((rc = scan(d)) < 0) {
			fprintf(stderr, "scan: %s: %s\n", durq_error_name(rc), durq_error_last());
			return -1;
		}
		report_progress(d, &last);
		if (d->completed + d->failed >= d->n)
			return 0;
		if (mono_ms() > deadline) {
			fprintf(stderr, "timeout: %d of %d orders finished after %d s\n",
				d->completed + d->failed, d->n, d->timeout_s);
			return -1;
		}
		wait_for_news(d, SCAN_INTERVAL_MS);
	}
}

/* Each order COMPLETED with exactly the output its input implies. Returns the count. */
static int verify(driver *d)
{
	int good = 0;
	for (int i = 1; i <= d->n; i++) {
		char id[32], want[512];
		durq_instance_info *info;
		order_id(id, sizeof id, i);
		order_expected_output(want, sizeof want, i);
		if (durq_instance_get(d->db, &info, id) < 0) {
			printf("  %s: %s\n", id, durq_error_last());
			continue;
		}
		int ok = info->status == DURQ_STATUS_COMPLETED && info->output_len == strlen(want) &&
			 memcmp(info->output, want, info->output_len) == 0;
		if (!ok)
			printf("  %s: status %d, output '%.*s', want '%s'\n", id, info->status,
			       (int)info->output_len, info->output ? (const char *)info->output : "",
			       want);
		else if (i == 1)
			printf("  %s -> %s\n", id, want);
		good += ok;
		durq_instance_info_free(info);
	}
	return good;
}

static int run(driver *d)
{
	rt *r;
	rt_config cfg = {.orchestrators = d->orchestrators, .workers = d->workers,
			 .orch_lease_ms = LEASE_MS, .work_lease_ms = LEASE_MS,
			 .hooks = {.finished = on_finished, .ctx = d}};
	int64_t t0 = mono_ms();
	int rc;
	if ((rc = rt_new(&r, d->db, &cfg)) < 0 || (rc = order_register(r)) < 0 ||
	    (rc = rt_start(r)) < 0) {
		fprintf(stderr, "runtime: %s\n", durq_error_name(rc));
		rt_free(r);
		return 1;
	}
	int done = (d->resume || start_orders(d) == DURQ_OK) && run_until_done(d) == 0;
	rt_stop(r);

	rt_counters c;
	rt_counters_get(r, &c);
	/* the scheme only: a postgresql URL may carry a password */
	printf("durq-runtime-demo: %d orders on %.*s%s\n", d->n, (int)strcspn(d->url, ":"), d->url,
	       d->resume ? " (resume)" : "");
	int good = done ? verify(d) : 0;
	printf("  completed %d, failed %d, verified %d of %d in %.2f s\n", d->completed, d->failed,
	       good, d->n, (double)(mono_ms() - t0) / 1000.0);
	printf("  this process: %" PRIu64 " turns, %" PRIu64 " activities run (%" PRIu64
	       " redelivered after a lease expired), %" PRIu64 " reported a failure (the "
	       "gateway fails each order's first charge), %" PRIu64 " acks failed\n",
	       c.turns, c.activities_run, c.redelivered, c.activities_failed, c.acks_failed);
	rt_free(r);
	return done && good == d->n ? 0 : 1;
}

int main(int argc, char **argv)
{
	driver d;
	if (parse_args(&d, argc, argv) < 0)
		return usage();
	signal(SIGPIPE, SIG_IGN); /* a progress reader that went away is not fatal */
	durq_options opts = DURQ_OPTIONS_INIT;
	int rc = durq_open(&d.db, d.url, &opts);
	if (rc < 0) {
		fprintf(stderr, "open: %s: %s\n", durq_error_name(rc), durq_error_last());
		return 1;
	}
	d.approved = calloc((size_t)d.n + 1, 1);
	d.status_seen = calloc((size_t)d.n + 1, sizeof *d.status_seen);
	pthread_mutex_init(&d.mu, NULL);
	pthread_cond_init(&d.cv, NULL);
	int status = d.approved && d.status_seen ? run(&d) : 1;
	durq_free(d.db);
	pthread_cond_destroy(&d.cv);
	pthread_mutex_destroy(&d.mu);
	free(d.approved);
	free(d.status_seen);
	return status;
}
