/*
 * cli_seed.c — puts known content in a database for the `durq` command's tests, and
 * generates load from another process for the metrics test.
 *
 *   cli_seed seed URL      queues, a leased and a delayed item, instances (a parent with a
 *                          child, a completed one), history, two dead letters
 *   cli_seed load URL N    N enqueue + fetch + ack cycles on queue "load"
 *   cli_seed run URL STOP  such cycles until the file STOP exists (for `durq top`: another
 *                          process whose published counters it shows)
 *
 * Exits 0 on success, 1 with the failing call on stderr otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <durq.h>

#define CHECK(call)                                                                         \
	do {                                                                                \
		int rc_ = (call);                                                           \
		if (rc_ < 0) {                                                              \
			fprintf(stderr, "cli_seed: %s: %s: %s\n", #call, durq_error_name(rc_),  \
				durq_error_last());                                         \
			exit(1);                                                            \
		}                                                                           \
	} while (0)

static void work(durq *db, const char *queue, const void *p, size_t len, int64_t delay)
{
	durq_work w = {.queue = queue, .payload = p, .payload_len = len, .delay_ms = delay};
	CHECK(durq_work_enqueue(db, &w, 1));
}

/* One turn of instance id: creates it (name, parent) with two events, schedules an
 * activity, sets status and output. */
static void turn(durq *db, const char *id, const char *parent, int status, const char *output)
{
	durq_message start = {.instance_id = id, .kind = 1, .payload = "{}", .payload_len = 2};
	durq_turn *t;
	CHECK(durq_orch_enqueue(db, &start, 1));
	CHECK(durq_orch_fetch(db, &t, 60000, 1000));
	if (strcmp(t->instance_id, id) != 0) {
		fprintf(stderr, "cli_seed: fetched %s, expected %s\n", t->instance_id, id);
		exit(1);
	}
	durq_event ev[2] = {{1, "started", 7}, {2, "scheduled charge", 16}};
	durq_work act = {.queue = "activities", .instance_id = id, .execution_id = 1,
			 .activity_id = 1, .payload = "charge", .payload_len = 6};
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.name = "order";
	r.version_tag = "v1";
	r.parent_id = parent;
	r.status = status;
	r.output = output;
	r.output_len = output ? strlen(output) : 0;
	r.history = ev;
	r.n_history = 2;
	r.work = &act;
	r.n_work = status == DURQ_STATUS_RUNNING ? 1 : 0;
	CHECK(durq_orch_ack(db, t->instance_id, &t->token, &r));
	durq_turn_free(t);
}

/* An item of queue "poison" fetched past max_attempts (2): the next claim dead-letters it. */
static void poison(durq *db, const char *payload)
{
	durq_work_item *it;
	size_t n;
	work(db, "poison", payload, strlen(payload), 0);
	for (int i = 0; i < 2; i++) {
		CHECK(durq_work_fetch(db, &it, &n, "poison", 1, 60000, 0));
		CHECK(durq_work_abandon(db, it[0].id, &it[0].token, 0, 0));
		durq_work_items_free(it, n);
	}
	int rc = durq_work_fetch(db, &it, &n, "poison", 1, 60000, 0);
	if (rc != DURQ_EMPTY) {
		fprintf(stderr, "cli_seed: the poison item was not dead-lettered (%d)\n", rc);
		exit(1);
	}
}

static void seed(durq *db)
{
	static const unsigned char bin[] = {0x00, 0xff, 0x10, 0x80, 'x'};
	durq_work_item *it;
	size_t n;
	work(db, "emails", "hello 1", 7, 0);
	work(db, "emails", "hello 2", 7, 0);
	work(db, "emails", bin, sizeof(bin), 0);
	work(db, "emails", "later", 5, 3600 * 1000); /* delayed an hour */
	work(db, "", "default queue item", 18, 0);
	work(db, "reports", "report A", 8, 0);
	work(db, "reports", "report B", 8, 0);
	CHECK(durq_work_fetch(db, &it, &n, "reports", 1, 3600 * 1000, 0)); /* leased an hour */
	durq_work_items_free(it, n);
	turn(db, "order-1", NULL, DURQ_STATUS_RUNNING, NULL);
	turn(db, "order-1-child", "order-1", DURQ_STATUS_RUNNING, NULL);
	turn(db, "done-1", NULL, DURQ_STATUS_COMPLETED, "{\"total\":42}");
	durq_message m = {.instance_id = "order-2", .kind = 1, .payload = "{}", .payload_len = 2};
	CHECK(durq_orch_enqueue(db, &m, 1));
	poison(db, "poison one");
	poison(db, "poison two");
}

static void load(durq *db, long n)
{
	for (long i = 0; i < n; i++) {
		durq_work_item *it;
		size_t k;
		work(db, "load", "x", 1, 0);
		CHECK(durq_work_fetch(db, &it, &k, "load", 1, 60000, 1000));
		CHECK(durq_work_ack(db, it[0].id, &it[0].token, NULL));
		durq_work_items_free(it, k);
	}
}

/* Cycles until stop exists (checked every 10 cycles). */
static void run(durq *db, const char *stop)
{
	while (access(stop, F_OK) != 0)
		load(db, 10);
}

int main(int argc, char **argv)
{
	if (argc < 3 || (strcmp(argv[1], "seed") && strcmp(argv[1], "load") &&
			 strcmp(argv[1], "run")) ||
	    (strcmp(argv[1], "seed") && argc < 4)) {
		fprintf(stderr, "usage: cli_seed seed URL | cli_seed load URL N | cli_seed run URL "
			"STOPFILE\n");
		return 2;
	}
	durq_options o = DURQ_OPTIONS_INIT;
	o.max_attempts = 2;
	durq *db;
	CHECK(durq_open(&db, argv[2], &o));
	if (!strcmp(argv[1], "seed"))
		seed(db);
	else if (!strcmp(argv[1], "run"))
		run(db, argv[3]);
	else
		load(db, strtol(argv[3], NULL, 10));
	durq_free(db);
	return 0;
}
