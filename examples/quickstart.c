/* examples/quickstart.c — the README's quick start, compiled and run by CTest so the
 * docs cannot drift from the code. Usage: quickstart <url> */
#include <stdio.h>

#include <durq.h>

static void acked(void *ctx, const durq_completion *c)
{
	/* runs on the committer thread after COMMIT; c->rc is this ack's own result */
	if (c->rc < 0)
		fprintf(stderr, "ack failed: %s: %s\n", durq_error_name(c->rc), c->message);
	else
		++*(size_t *)ctx; /* read after durq_group_wait: the group orders it */
}

/* Many acks in flight: the asynchronous forms (README, "Many acks in flight"). */
static size_t ack_async_demo(durq *db)
{
	size_t ok = 0;
	for (int i = 0; i < 3; i++) {
		durq_work w = {.queue = "emails", .payload = "bye", .payload_len = 3};
		durq_work_enqueue_async(db, &w, 1, NULL);
	}
	durq_flush(db, -1); /* every op submitted so far is durable */
	durq_work_item *items;
	size_t n;
	if (durq_work_fetch(db, &items, &n, "emails", 256, 30000, 1000) == DURQ_OK) {
		durq_group *g;
		durq_group_new(&g);
		for (size_t i = 0; i < n; i++) { /* do the work, then ack without waiting */
			durq_async a = {.done = acked, .ctx = &ok, .group = g};
			durq_work_ack_async(db, items[i].id, &items[i].token, NULL, &a);
		}
		durq_work_items_free(items, n); /* inputs were copied at submit */
		durq_group_wait(g, -1, NULL);
		durq_group_free(g);
	}
	return ok;
}

int main(int argc, char **argv)
{
	durq *db;
	durq_options opts = DURQ_OPTIONS_INIT; /* zero = default for every field */
	if (durq_open(&db, argc > 1 ? argv[1] : "sqlite::memory:", &opts) < 0) {
		fprintf(stderr, "open: %s\n", durq_error_last());
		return 1;
	}

	/* plain work queue */
	durq_work w = {.queue = "emails", .payload = "hi", .payload_len = 2};
	durq_work_enqueue(db, &w, 1); /* returns once committed (fsync'd) */

	durq_work_item *items;
	size_t n, acked = 0;
	int rc = durq_work_fetch(db, &items, &n, "emails", 16, 30000 /* lease ms */, 1000 /* wait ms */);
	if (rc == DURQ_OK) {
		for (size_t i = 0; i < n; i++)
			acked += durq_work_ack(db, items[i].id, &items[i].token, NULL) == DURQ_OK;
		durq_work_items_free(items, n);
	}

	/* orchestrations: start, then run a turn */
	durq_message start = {.instance_id = "order-42", .kind = 1, .payload = "{}", .payload_len = 2};
	durq_orch_enqueue(db, &start, 1);

	durq_turn *turn;
	int turned = 0;
	if (durq_orch_fetch(db, &turn, 30000, 1000) == DURQ_OK) {
		durq_event ev = {.event_id = 1, .payload = "started", .payload_len = 7};
		durq_work act = {.execution_id = 1, .activity_id = 1, .payload = "charge", .payload_len = 6};
		durq_turn_result r = DURQ_TURN_RESULT_INIT;
		r.name = "order";
		r.history = &ev;
		r.n_history = 1;
		r.work = &act;
		r.n_work = 1;
		turned = durq_orch_ack(db, turn->instance_id, &turn->token, &r) == DURQ_OK; /* one atomic turn */
		durq_turn_free(turn);
	}
	size_t async_acked = ack_async_demo(db);
	durq_free(db); /* drains pending ops, joins the committer */
	printf("acked %zu work item(s), %d turn(s), %zu async ack(s)\n", acked, turned, async_acked);
	return acked == 1 && turned == 1 && async_acked == 3 ? 0 : 1;
}
