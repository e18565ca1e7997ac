/*
 * order.c — the order workflow: reserve every item in parallel (fan-out / fan-in), charge the
 * card (the gateway fails the first attempt; the orchestration retries after a durable
 * backoff timer), wait for an approval raised from outside (external event), wait out a
 * cooling-off period (durable timer), ship. Owns the workflow's steps and its expected
 * output; knows nothing of durq (runtime.h is all it uses).
 */
#include "order.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define ORDER_MAX_ITEMS 4
#define CHARGE_MAX_ATTEMPTS 4
#define CHARGE_BACKOFF_MS 50 /* doubled at each retry */
#define COOLING_OFF_MS 100

typedef struct order {
	char id[32];
	int number, n_items, amount_cents;
} order;

/* Order n of the demo: 2 to 4 items, an amount that differs per order. */
static order order_make(int n)
{
	order o = {.number = n, .n_items = 2 + n % 3, .amount_cents = 1000 + 37 * n};
	snprintf(o.id, sizeof o.id, "order-%04d", n);
	return o;
}

void order_id(char *buf, size_t len, int n)
{
	snprintf(buf, len, "%s", order_make(n).id);
}

void order_input(char *buf, size_t len, int n)
{
	order o = order_make(n);
	snprintf(buf, len, "%s %d %d %d", o.id, o.number, o.n_items, o.amount_cents);
}

static int order_parse(const char *input, order *o)
{
	*o = (order){0};
	return sscanf(input, "%31s %d %d %d", o->id, &o->number, &o->n_items, &o->amount_cents) == 4 &&
			       o->n_items >= 1 && o->n_items <= ORDER_MAX_ITEMS
		       ? 0
		       : -1;
}

static void sku(char *buf, size_t len, const order *o, int item)
{
	snprintf(buf, len, "sku-%d-%d", o->number, item + 1);
}

void order_expected_output(char *buf, size_t len, int n)
{
	order o = order_make(n);
	char skus[128] = "", one[32];
	for (int i = 0; i < o.n_items; i++) {
		sku(one, sizeof one, &o, i);
		strcat(i ? strcat(skus, ",") : skus, one);
	}
	snprintf(buf, len, "%s: reserved %s; charged %d cents on attempt 2; %s; shipped TRACK-%04d",
		 o.id, skus, o.amount_cents, ORDER_APPROVAL_DATA, o.number);
}

/* ---- the orchestration ------------------------------------------------------------------ */

/* Re-run from the top on every turn: each `return RT_SUSPEND` ends a turn; the next one
 * finds the finished steps in the history and goes on from where this one stopped. */
static int order_workflow(rt_ctx *ctx, const char *input)
{
	order o;
	rt_result r;
	char in[96], reserved[128] = "", charged[96], approval[64], out[512];
	if (order_parse(input, &o) < 0)
		return rt_fail(ctx, "bad order input");

	/* 1. fan-out: one reservation per item, all scheduled in the same turn; fan-in: wait
	 *    for all of them */
	rt_set_status(ctx, "reserving");
	rt_task reserve[ORDER_MAX_ITEMS];
	for (int i = 0; i < o.n_items; i++) {
		sku(in, sizeof in, &o, i);
		reserve[i] = rt_activity(ctx, "reserve_item", in);
	}
	if (!rt_await_all(ctx, reserve, (size_t)o.n_items))
		return RT_SUSPEND;
	for (int i = 0; i < o.n_items; i++) {
		rt_await(ctx, reserve[i], &r);
		if (!r.ok)
			return rt_fail(ctx, r.value);
		strcat(i ? strcat(reserved, ",") : reserved, r.value);
	}

	/* 2. charge; on failure wait on a durable timer (doubling) and try again */
	rt_set_status(ctx, "charging");
	for (int attempt = 1;; attempt++) {
		snprintf(in, sizeof in, "%s %d %d", o.id, o.amount_cents, attempt);
		if (!rt_await(ctx, rt_activity(ctx, "charge_card", in), &r))
			return RT_SUSPEND;
		if (r.ok)
			break;
		if (attempt == CHARGE_MAX_ATTEMPTS)
			return rt_fail(ctx, r.value);
		if (!rt_await(ctx, rt_timer(ctx, CHARGE_BACKOFF_MS << (attempt - 1)), NULL))
			return RT_SUSPEND;
	}
	snprintf(charged, sizeof charged, "%s", r.value);

	/* 3. an approval raised from outside (the driver plays the human) */
	rt_set_status(ctx, ORDER_AWAITING_APPROVAL);
	if (!rt_await(ctx, rt_event(ctx, ORDER_APPROVAL_EVENT), &r))
		return RT_SUSPEND;
	snprintf(approval, sizeof approval, "%s", r.value);

	/* 4. a cooling-off period on a durable timer: survives restarts */
	rt_set_status(ctx, "cooling off");
	if (!rt_await(ctx, rt_timer(ctx, COOLING_OFF_MS), NULL))
		return RT_SUSPEND;

	/* 5. ship */
	rt_set_status(ctx, "shipping");
	if (!rt_await(ctx, rt_activity(ctx, "ship", o.id), &r))
		return RT_SUSPEND;
	if (!r.ok)
		return rt_fail(ctx, r.value);

	rt_set_status(ctx, "done");
	snprintf(out, sizeof out, "%s: reserved %s; %s; %s; shipped %s", o.id, reserved, charged,
		 approval, r.value);
	return rt_complete(ctx, out);
}

/* ---- the activities: may run more than once (at-least-once), so they are idempotent ---- */

static void simulate_work(int ms)
{
	struct timespec ts = {.tv_nsec = (long)ms * 1000000L};
	nanosleep(&ts, NULL);
}

static int reserve_item(rt_actx *a, const char *input, char *out, size_t len)
{
	(void)a;
	simulate_work(2);
	snprintf(out, len, "%s", input);
	return RT_ACTIVITY_OK;
}

/* The payment gateway times out on the first attempt of every order. A real one would take
 * an idempotency key (instance id + attempt) so that a retried delivery never charges twice. */
static int charge_card(rt_actx *a, const char *input, char *out, size_t len)
{
	char id[32];
	int amount, attempt;
	(void)a;
	simulate_work(3);
	if (sscanf(input, "%31s %d %d", id, &amount, &attempt) != 3) {
		snprintf(out, len, "bad charge input '%s'", input);
		return RT_ACTIVITY_FAILED;
	}
	if (attempt == 1) {
		snprintf(out, len, "gateway timeout");
		return RT_ACTIVITY_FAILED;
	}
	snprintf(out, len, "charged %d cents on attempt %d", amount, attempt);
	return RT_ACTIVITY_OK;
}

/* The slow one: works in steps and heartbeats between them, so its lease never runs out. */
static int ship(rt_actx *a, const char *input, char *out, size_t len)
{
	int number;
	for (int step = 0; step < 4; step++) {
		simulate_work(5);
		rt_heartbeat(a);
	}
	if (sscanf(input, "order-%d", &number) != 1) {
		snprintf(out, len, "bad order id '%s'", input);
		return RT_ACTIVITY_FAILED;
	}
	snprintf(out, len, "TRACK-%04d", number);
	return RT_ACTIVITY_OK;
}

int order_register(rt *r)
{
	int rc;
	if ((rc = rt_register_orchestration(r, ORDER_ORCHESTRATION, order_workflow)) < 0 ||
	    (rc = rt_register_activity(r, "reserve_item", reserve_item)) < 0 ||
	    (rc = rt_register_activity(r, "charge_card", charge_card)) < 0 ||
	    (rc = rt_register_activity(r, "ship", ship)) < 0)
		return rc;
	return 0;
}
