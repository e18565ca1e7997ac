/*
 * conf_sessions.c — activity sessions (issue 10, G1): worker affinity by owner id. Items
 * enqueued with a session go only to a session fetch, for the owner holding the session: an
 * unheld session is claimed by the fetch that takes its items, kept while its owner renews
 * it and is active, taken over after its lock expires, and removed by the cleanup unless
 * items of it are still queued. A plain fetch never takes items with a session.
 * (The behaviours of duroxide's provider-validation sessions.rs, in durq's API.)
 */
#include "conf_factory.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)
#define LONG 600000 /* a lock or lease no test outlives */

/* Enqueue one item of the default queue with a session (NULL: none). */
static void put(conf_ctx *c, const char *session, const char *payload)
{
	durq_work w = conf_w(NULL, payload);
	w.session_id = session;
	if (durq_work_enqueue(c->db, &w, 1) != DURQ_OK)
		fail_msg("enqueue: %s", durq_error_last());
}

/* A session fetch of the default queue (timeout 0): the items, *n of them; NULL if none. */
static durq_work_item *take_on(durq *db, const char *owner, int64_t lock_ms, size_t max,
			       int64_t lease_ms, size_t *n)
{
	durq_session_owner o = DURQ_SESSION_OWNER_INIT;
	o.owner_id = owner;
	o.lock_ms = lock_ms;
	durq_work_item *it = NULL;
	*n = 0;
	int rc = durq_work_fetch_session(db, &it, n, NULL, &o, max, lease_ms, 0);
	if (rc == DURQ_EMPTY)
		return NULL;
	if (rc != DURQ_OK)
		fail_msg("durq_work_fetch_session: %s: %s", durq_error_name(rc), durq_error_last());
	return it;
}

static durq_work_item *take(conf_ctx *c, const char *owner, int64_t lock_ms, size_t max,
			    int64_t lease_ms, size_t *n)
{
	return take_on(c->db, owner, lock_ms, max, lease_ms, n);
}

/* The payloads of items as "p1,p2" ("" if none). */
static void names(const durq_work_item *it, size_t n, char *out)
{
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		sprintf(out + strlen(out), "%s%.*s", i ? "," : "", (int)it[i].payload_len,
			(const char *)it[i].payload);
}

/* Fetch for owner (long lock and lease) and return the payloads, acking them if ack. */
static void fetch_names(conf_ctx *c, const char *owner, size_t max, int ack, char *out)
{
	size_t n;
	durq_work_item *it = take(c, owner, LONG, max, LONG, &n);
	names(it, n, out);
	for (size_t i = 0; ack && i < n; i++)
		assert_int_equal(durq_work_ack(c->db, it[i].id, &it[i].token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
}

/* owner claims the session of one new item (lock_ms) and acks it. */
static void hold(conf_ctx *c, const char *owner, const char *session, int64_t lock_ms)
{
	size_t n;
	put(c, session, "claim");
	durq_work_item *it = take(c, owner, lock_ms, 1, LONG, &n);
	assert_non_null(it);
	assert_int_equal(n, 1);
	assert_string_equal(it->session_id, session);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
}

static size_t renew(conf_ctx *c, const char *owner, int64_t extend_ms, int64_t idle_ms)
{
	const char *ids[] = {owner};
	size_t k = 99;
	assert_int_equal(durq_session_renew(c->db, &k, ids, 1, extend_ms, idle_ms), DURQ_OK);
	return k;
}

static size_t cleanup(conf_ctx *c, int64_t idle_ms)
{
	size_t k = 99;
	assert_int_equal(durq_session_cleanup(c->db, &k, idle_ms), DURQ_OK);
	return k;
}

/* ---- who may take what ---------------------------------------------------------------- */

static void test_plain_fetches_never_take_session_items(void **state)
{
	conf_ctx *c = *state;
	put(c, "s1", "with-session");
	put(c, NULL, "plain");
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, CONF_LEASE), DURQ_OK);
	assert_payload(it->payload, it->payload_len, "plain");
	assert_null(it->session_id);
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, 1);
	conf_assert_no_work(c, NULL); /* the session item is there, but not for a plain fetch */
	durq_queue_set qs = DURQ_QUEUE_SET_INIT;
	qs.select = DURQ_QUEUES_DEFAULT_AND;
	size_t n = 0;
	assert_int_equal(durq_work_fetch_set(c->db, &it, &n, &qs, 10, CONF_LEASE, 0), DURQ_EMPTY);
	qs.select = DURQ_QUEUES_ANY;
	assert_int_equal(durq_work_fetch_set(c->db, &it, &n, &qs, 10, CONF_LEASE, 0), DURQ_EMPTY);
	it = take(c, "A", LONG, 10, CONF_LEASE, &n);
	assert_int_equal(n, 1);
	assert_payload(it->payload, it->payload_len, "with-session");
	assert_string_equal(it->session_id, "s1");
	assert_int_equal(it->attempt, 1);
	durq_work_items_free(it, n);
}

static void test_items_without_a_session_go_to_every_owner(void **state)
{
	conf_ctx *c = *state;
	hold(c, "A", "s1", LONG);
	put(c, "s1", "s1-item");
	put(c, NULL, "plain");
	char got[256];
	fetch_names(c, "B", 10, 1, got);
	assert_string_equal(got, "plain"); /* not s1's item: A holds s1 */
	fetch_names(c, "B", 10, 1, got);
	assert_string_equal(got, "");
	put(c, NULL, "plain2");
	fetch_names(c, "A", 10, 1, got);
	assert_string_equal(got, "s1-item,plain2"); /* the holder gets both kinds */
	/* another queue is another queue */
	durq_work w = conf_w("other", "elsewhere");
	w.session_id = "s1";
	assert_int_equal(durq_work_enqueue(c->db, &w, 1), DURQ_OK);
	fetch_names(c, "A", 10, 0, got);
	assert_string_equal(got, "");
	durq_session_owner o = DURQ_SESSION_OWNER_INIT;
	o.owner_id = "A";
	o.lock_ms = LONG;
	durq_work_item *it = NULL;
	size_t n = 0;
	assert_int_equal(durq_work_fetch_session(c->db, &it, &n, "other", &o, 10, CONF_LEASE, 0),
			 DURQ_OK);
	assert_int_equal(n, 1);
	assert_string_equal(it->queue, "other");
	assert_string_equal(it->session_id, "s1");
	durq_work_items_free(it, n);
}

static void test_an_unheld_session_is_claimed_and_then_kept(void **state)
{
	conf_ctx *c = *state;
	put(c, "s1", "a1");
	size_t n;
	durq_work_item *it = take(c, "A", LONG, 1, CONF_LEASE, &n); /* claims s1 */
	assert_int_equal(n, 1);
	assert_string_equal(it->session_id, "s1");
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	put(c, "s1", "a2");
	assert_null(take(c, "B", LONG, 10, CONF_LEASE, &n)); /* A holds it */
	conf_assert_no_work(c, NULL);
	char got[64];
	fetch_names(c, "A", 10, 1, got);
	assert_string_equal(got, "a2");
}

static void test_different_sessions_go_to_different_owners(void **state)
{
	conf_ctx *c = *state;
	hold(c, "A", "s1", LONG);
	hold(c, "B", "s2", LONG);
	put(c, "s1", "x");
	put(c, "s2", "y");
	put(c, "s1", "x2");
	char got[64];
	fetch_names(c, "B", 10, 1, got);
	assert_string_equal(got, "y");
	fetch_names(c, "A", 10, 1, got);
	assert_string_equal(got, "x,x2");
}

static void test_a_session_fetch_takes_every_claimable_item_in_order(void **state)
{
	conf_ctx *c = *state;
	put(c, "sa", "1");
	put(c, "sb", "2");
	put(c, "sc", "3");
	put(c, NULL, "4");
	put(c, "sa", "5");
	put(c, "sa", "6");
	char got[64], all[512] = "";
	for (int i = 0; i < 6; i++) { /* one at a time: FIFO across sessions and within one */
		fetch_names(c, "proc", 1, 1, got);
		snprintf(all + strlen(all), sizeof all - strlen(all), "%s%.16s", i ? "," : "", got);
	}
	assert_string_equal(all, "1,2,3,4,5,6");
	fetch_names(c, "proc", 10, 1, got);
	assert_string_equal(got, "");
	/* priority first, then FIFO, as for plain items */
	durq_work w = conf_w(NULL, "urgent");
	w.session_id = "sb";
	w.priority = 5;
	put(c, "sa", "7");
	assert_int_equal(durq_work_enqueue(c->db, &w, 1), DURQ_OK);
	fetch_names(c, "proc", 10, 1, got);
	assert_string_equal(got, "urgent,7");
}

static void test_owners_sharing_an_id_share_its_sessions(void **state)
{
	conf_ctx *c = *state;
	durq *other = c->db;
	if (c->durable)
		assert_int_equal(conf_open_second(c, &other), DURQ_OK); /* another process */
	put(c, "shared", "1");
	put(c, "shared", "2");
	size_t n1, n2, n3;
	durq_work_item *a = take_on(c->db, "proc-1", LONG, 1, CONF_LEASE, &n1);
	durq_work_item *b = take_on(other, "proc-1", LONG, 1, CONF_LEASE, &n2);
	assert_non_null(a);
	assert_non_null(b); /* "1" is still leased; the same owner gets "2" */
	assert_payload(a->payload, a->payload_len, "1");
	assert_payload(b->payload, b->payload_len, "2");
	put(c, "shared", "3");
	assert_null(take_on(other, "proc-2", LONG, 10, CONF_LEASE, &n3));
	durq_work_items_free(a, n1);
	durq_work_items_free(b, n2);
	if (other != c->db)
		durq_free(other);
}

/* Two owners race for the items of one new session: every item goes to one of them. */
typedef struct racer {
	durq *db;
	const char *owner;
	_Atomic int *taken;   /* items fetched by both, this round */
	int total;
	int got;              /* items this owner got */
	int rc;
} racer;

static void *race(void *arg)
{
	racer *r = arg;
	durq_session_owner o = DURQ_SESSION_OWNER_INIT;
	o.owner_id = r->owner;
	o.lock_ms = LONG;
	r->rc = DURQ_OK;
	for (long spins = 0; atomic_load(r->taken) < r->total && spins < 1000000; spins++) {
		durq_work_item *it = NULL;
		size_t n = 0;
		int rc = durq_work_fetch_session(r->db, &it, &n, NULL, &o, 1, LONG, 0);
		if (rc == DURQ_EMPTY) {
			sched_yield();
			continue;
		}
		if (rc != DURQ_OK) {
			r->rc = rc;
			return NULL;
		}
		for (size_t i = 0; i < n; i++)
			if ((rc = durq_work_ack(r->db, it[i].id, &it[i].token, NULL)) != DURQ_OK)
				r->rc = rc;
		r->got += (int)n;
		atomic_fetch_add(r->taken, (int)n);
		durq_work_items_free(it, n);
	}
	return NULL;
}

static void test_two_owners_racing_for_a_session_never_share_it(void **state)
{
	conf_ctx *c = *state;
	put(c, "contested", "1");
	put(c, "contested", "2");
	size_t n;
	durq_work_item *a = take(c, "A", LONG, 1, CONF_LEASE, &n); /* holds it, not acked */
	assert_non_null(a);
	assert_null(take(c, "B", LONG, 10, CONF_LEASE, &n)); /* the second item is A's too */
	assert_int_equal(durq_work_ack(c->db, a->id, &a->token, NULL), DURQ_OK);
	durq_work_items_free(a, 1);
	char got[32];
	fetch_names(c, "A", 10, 1, got);
	assert_string_equal(got, "2");
	durq *other = c->db;
	if (c->durable)
		assert_int_equal(conf_open_second(c, &other), DURQ_OK);
	for (int round = 0; round < 5; round++) {
		char sess[32];
		snprintf(sess, sizeof sess, "race-%d", round);
		for (int i = 0; i < 6; i++)
			put(c, sess, "r");
		_Atomic int taken = 0;
		racer ra = {.db = c->db, .owner = "A", .taken = &taken, .total = 6};
		racer rb = {.db = other, .owner = "B", .taken = &taken, .total = 6};
		pthread_t ta, tb;
		assert_int_equal(pthread_create(&ta, NULL, race, &ra), 0);
		assert_int_equal(pthread_create(&tb, NULL, race, &rb), 0);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		assert_int_equal(ra.rc, DURQ_OK);
		assert_int_equal(rb.rc, DURQ_OK);
		assert_int_equal(ra.got + rb.got, 6);
		assert_true(ra.got == 0 || rb.got == 0); /* one owner held the session */
	}
	if (other != c->db)
		durq_free(other);
}

/* ---- locks: expiry, takeover, redelivery ---------------------------------------------- */

static void test_another_owner_takes_over_after_the_lock_expires(void **state)
{
	conf_ctx *c = *state;
	hold(c, "A", "s1", 1000);
	put(c, "s1", "2");
	size_t n;
	assert_null(take(c, "B", 1000, 10, LONG, &n));
	conf_advance(c, 999);
	assert_null(take(c, "B", 1000, 10, LONG, &n));
	conf_advance(c, 1);
	durq_work_item *it = take(c, "B", 1000, 10, LONG, &n); /* A's lock has run out */
	assert_int_equal(n, 1);
	assert_payload(it->payload, it->payload_len, "2");
	assert_int_equal(durq_work_ack(c->db, it->id, &it->token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	put(c, "s1", "3");
	assert_null(take(c, "A", 1000, 10, LONG, &n)); /* B holds it now */
	char got[32];
	fetch_names(c, "B", 10, 1, got);
	assert_string_equal(got, "3");
}

static void test_an_expired_item_lease_comes_back_to_the_holder(void **state)
{
	conf_ctx *c = *state;
	put(c, "s1", "1");
	size_t n;
	durq_work_item *old = take(c, "A", LONG, 1, 1000, &n);
	assert_int_equal(old->attempt, 1);
	conf_advance(c, 1001); /* the item's lease is gone, A's session lock is not */
	assert_null(take(c, "B", LONG, 10, LONG, &n));
	conf_assert_no_work(c, NULL);
	durq_work_item *again = take(c, "A", LONG, 10, LONG, &n);
	assert_int_equal(n, 1);
	assert_int_equal(again->id, old->id);
	assert_int_equal(again->attempt, 2);
	assert_int_equal(durq_work_ack(c->db, old->id, &old->token, NULL), DURQ_ELOCKLOST);
	assert_int_equal(durq_work_ack(c->db, again->id, &again->token, NULL), DURQ_OK);
	durq_work_items_free(old, 1);
	durq_work_items_free(again, 1);
}

static void test_when_the_session_lock_expires_first_a_new_owner_gets_the_redelivery(void **state)
{
	conf_ctx *c = *state;
	put(c, "s1", "1");
	put(c, "s1", "2");
	size_t n;
	durq_work_item *it = take(c, "A", 1000, 2, 5000, &n);
	assert_int_equal(n, 2);
	conf_advance(c, 2000); /* session lock expired, item leases live */
	/* an ack needs the item's lease, not the session's lock */
	assert_int_equal(durq_work_ack(c->db, it[0].id, &it[0].token, NULL), DURQ_OK);
	size_t m;
	assert_null(take(c, "B", 1000, 10, LONG, &m)); /* "2" is still leased to A */
	conf_advance(c, 3001); /* now both ran out */
	durq_work_item *b = take(c, "B", 1000, 10, LONG, &m);
	assert_int_equal(m, 1);
	assert_int_equal(b->id, it[1].id);
	assert_int_equal(b->attempt, 2);
	assert_int_equal(durq_work_ack(c->db, it[1].id, &it[1].token, NULL), DURQ_ELOCKLOST);
	put(c, "s1", "3");
	assert_null(take(c, "A", 1000, 10, LONG, &m)); /* B holds it */
	assert_int_equal(durq_work_ack(c->db, b->id, &b->token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
	durq_work_items_free(b, 1);
}

static void test_an_owner_takes_back_its_own_expired_session(void **state)
{
	conf_ctx *c = *state;
	hold(c, "A", "s1", 1000);
	conf_advance(c, 2000);
	assert_int_equal(renew(c, "A", LONG, LONG), 0); /* an expired lock is never revived */
	put(c, "s1", "2");
	char got[32];
	fetch_names(c, "A", 10, 1, got);
	assert_string_equal(got, "2"); /* re-acquired by the fetch */
	put(c, "s1", "3");
	size_t n;
	assert_null(take(c, "B", 1000, 10, LONG, &n));
	assert_int_equal(renew(c, "A", LONG, LONG), 1);
}

static void test_abandoned_session_items_come_back_to_the_holder(void **state)
{
	conf_ctx *c = *state;
	put(c, "s1", "1");
	size_t n;
	durq_work_item *it = take(c, "A", LONG, 1, LONG, &n);
	assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 0), DURQ_OK);
	durq_work_items_free(it, n);
	assert_null(take(c, "B", LONG, 10, LONG, &n));
	it = take(c, "A", LONG, 1, LONG, &n);
	assert_int_equal(it->attempt, 2);
	assert_int_equal(durq_work_abandon(c->db, it->id, &it->token, 0, 1), DURQ_OK);
	durq_work_items_free(it, n);
	it = take(c, "A", LONG, 1, LONG, &n);
	assert_int_equal(it->attempt, 2); /* ignore_attempt undid the last count */
	assert_string_equal(it->session_id, "s1");
	durq_work_items_free(it, n);
}

/* ---- renew ------------------------------------------------------------------------------ */

static void test_renew_extends_the_sessions_of_an_owner(void **state)
{
	conf_ctx *c = *state;
	hold(c, "A", "s1", 5000);
	assert_int_equal(renew(c, "A", 30000, 300000), 1);
	hold(c, "A", "s2", 5000);
	const char *twice[] = {"A", "A", "nobody"};
	size_t k = 0;
	assert_int_equal(durq_session_renew(c->db, &k, twice, 3, 30000, 300000), DURQ_OK);
	assert_int_equal(k, 2); /* both sessions, once each */
	assert_int_equal(renew(c, "B", 30000, 300000), 0);
	conf_advance(c, 10000); /* past the fetch's 5000, within the renewal */
	put(c, "s1", "3");
	size_t n;
	assert_null(take(c, "B", 1000, 10, LONG, &n));
	char got[32];
	fetch_names(c, "A", 10, 1, got);
	assert_string_equal(got, "3");
}

static void test_renew_skips_idle_sessions(void **state)
{
	conf_ctx *c = *state;
	hold(c, "A", "s1", LONG);
	assert_int_equal(renew(c, "A", LONG, 0), 0); /* idle_timeout 0: every session is idle */
	conf_advance(c, 1000);
	assert_int_equal(renew(c, "A", LONG, 1000), 0); /* no activity for 1000 ms */
	assert_int_equal(renew(c, "A", LONG, 1001), 1);
	/* an idle session's lock runs out, and another owner takes it */
	hold(c, "A", "s2", 2000);
	conf_advance(c, 1500);
	assert_int_equal(renew(c, "A", 2000, 1000), 0);
	conf_advance(c, 500);
	put(c, "s2", "x");
	char got[32];
	fetch_names(c, "B", 10, 1, got);
	assert_string_equal(got, "x");
}

static void test_renew_without_live_sessions_returns_zero(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(renew(c, "A", 30000, 300000), 0);
	hold(c, "A", "s1", 1000);
	conf_advance(c, 1000);
	assert_int_equal(renew(c, "A", 30000, 300000), 0); /* expired: not renewed */
}

static void test_acks_and_item_renewals_are_session_activity(void **state)
{
	conf_ctx *c = *state;
	put(c, "s1", "1");
	put(c, "s1", "2");
	size_t n;
	durq_work_item *it = take(c, "A", LONG, 2, LONG, &n);
	assert_int_equal(n, 2);
	conf_advance(c, 1000);
	assert_int_equal(renew(c, "A", LONG, 500), 0); /* the fetch is 1000 ms old */
	int64_t until = 0;
	assert_int_equal(durq_work_renew(c->db, &until, it[0].id, &it[0].token, LONG), DURQ_OK);
	assert_int_equal(renew(c, "A", LONG, 500), 1); /* the item's renewal was activity */
	conf_advance(c, 1000);
	assert_int_equal(renew(c, "A", LONG, 500), 0);
	assert_int_equal(durq_work_ack(c->db, it[1].id, &it[1].token, NULL), DURQ_OK);
	assert_int_equal(renew(c, "A", LONG, 500), 1); /* so was the ack */
	conf_advance(c, 1000);
	assert_int_equal(durq_work_abandon(c->db, it[0].id, &it[0].token, 0, 0), DURQ_OK);
	assert_int_equal(renew(c, "A", LONG, 500), 0); /* an abandon is not */
	durq_work_items_free(it, n);
}

/* ---- cleanup ---------------------------------------------------------------------------- */

static void test_cleanup_removes_expired_sessions_without_items(void **state)
{
	conf_ctx *c = *state;
	hold(c, "A", "s1", 1000);
	assert_int_equal(cleanup(c, 300000), 0); /* live and active */
	conf_advance(c, 1000);
	assert_int_equal(cleanup(c, 300000), 1);
	assert_int_equal(cleanup(c, 300000), 0);
	assert_int_equal(renew(c, "A", LONG, LONG), 0);
	/* the next item of its id makes a fetch claim it anew */
	put(c, "s1", "again");
	char got[32];
	fetch_names(c, "B", 10, 1, got);
	assert_string_equal(got, "again");
	assert_int_equal(renew(c, "B", LONG, LONG), 1);
}

static void test_cleanup_keeps_sessions_with_items_and_active_ones(void **state)
{
	conf_ctx *c = *state;
	hold(c, "A", "pending", 1000);
	hold(c, "A", "active", 300000);        /* live, no items */
	put(c, "busy", "b");
	size_t n;
	durq_work_item *it = take(c, "A", 300000, 10, LONG, &n); /* "busy", its item leased */
	assert_int_equal(n, 1);
	put(c, "pending", "p");                /* queued: "pending" stays */
	conf_advance(c, 1000);                 /* "pending" expired, with its item queued */
	assert_int_equal(cleanup(c, 300000), 0);
	conf_advance(c, 1000);
	assert_int_equal(cleanup(c, 1500), 1); /* "active" was idle for 2000 ms: removed; "busy"
						* too, but its item is leased: it stays */
	assert_int_equal(renew(c, "A", LONG, LONG), 1); /* "busy" is still A's */
	char got[32];
	fetch_names(c, "B", 10, 1, got);       /* "pending" expired: B takes it over */
	assert_string_equal(got, "p");
	assert_int_equal(durq_work_ack(c->db, it[0].id, &it[0].token, NULL), DURQ_OK);
	durq_work_items_free(it, n);
}

/* ---- sessions written by turns, dead letters ------------------------------------------ */

static void test_turns_schedule_session_activities(void **state)
{
	conf_ctx *c = *state;
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_work w[2] = {conf_w(NULL, "act"), conf_w(NULL, "plain")};
	w[0].session_id = "s1";
	w[0].activity_id = 1;
	w[1].activity_id = 2;
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.work = w;
	r.n_work = 2;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_OK);
	durq_turn_free(t);
	durq_work_item *it = NULL;
	assert_int_equal(conf_fetch1(c, &it, NULL, CONF_LEASE), DURQ_OK);
	assert_payload(it->payload, it->payload_len, "plain");
	durq_work_items_free(it, 1);
	size_t n;
	it = take(c, "A", LONG, 10, LONG, &n);
	assert_int_equal(n, 1);
	assert_payload(it->payload, it->payload_len, "act");
	assert_string_equal(it->session_id, "s1");
	assert_string_equal(it->instance_id, "i1");
	assert_int_equal(it->activity_id, 1);
	durq_work_items_free(it, n);
	/* an asynchronous enqueue copies the session id at submit */
	char sess[8] = "s2";
	durq_work a = conf_w(NULL, "async");
	a.session_id = sess;
	durq_group *g;
	assert_int_equal(durq_group_new(&g), DURQ_OK);
	durq_async how = {.group = g};
	assert_int_equal(durq_work_enqueue_async(c->db, &a, 1, &how), DURQ_OK);
	strcpy(sess, "XX");
	size_t failed = 1;
	assert_int_equal(durq_group_wait(g, -1, &failed), DURQ_OK);
	assert_int_equal(failed, 0);
	durq_group_free(g);
	it = take(c, "A", LONG, 10, LONG, &n);
	assert_int_equal(n, 1);
	assert_string_equal(it->session_id, "s2");
	durq_work_items_free(it, n);
}

static void test_dead_letters_keep_their_session(void **state)
{
	conf_opts o = {.max_attempts = 1};
	conf_ctx *c = conf_use(state, &o);
	put(c, "s1", "doomed");
	size_t n;
	durq_work_item *it = take(c, "A", LONG, 1, 1000, &n);
	durq_work_items_free(it, n);
	conf_advance(c, 1001);
	assert_null(take(c, "A", LONG, 1, 1000, &n)); /* second delivery: dead-lettered */
	durq_dead_letter *d = NULL;
	assert_int_equal(durq_dead_list(c->db, &d, &n, 0), DURQ_OK);
	assert_int_equal(n, 1);
	int64_t id = d[0].id;
	durq_dead_letters_free(d, n);
	assert_int_equal(durq_dead_requeue(c->db, id), DURQ_OK);
	conf_assert_no_work(c, NULL); /* back with its session: not for a plain fetch */
	it = take(c, "A", LONG, 1, LONG, &n);
	assert_int_equal(n, 1);
	assert_string_equal(it->session_id, "s1");
	assert_payload(it->payload, it->payload_len, "doomed");
	durq_work_items_free(it, n);
}

/* ---- waiting ------------------------------------------------------------------------------ */

typedef struct waiter {
	durq *db;
	int rc;
	char payload[32];
} waiter;

static void *wait_session(void *arg)
{
	waiter *w = arg;
	durq_session_owner o = DURQ_SESSION_OWNER_INIT;
	o.owner_id = "B";
	o.lock_ms = LONG;
	durq_work_item *it = NULL;
	size_t n = 0;
	w->rc = durq_work_fetch_session(w->db, &it, &n, NULL, &o, 1, LONG, CONF_NEVER_MS);
	if (w->rc == DURQ_OK)
		snprintf(w->payload, sizeof w->payload, "%.*s", (int)it[0].payload_len,
			 (const char *)it[0].payload);
	durq_work_items_free(it, n);
	return NULL;
}

/* A long poll of another owner ends when the holder's lock runs out: the timer of the lock
 * wakes it (no fallback poll in this test, and nothing commits meanwhile). */
static void test_a_waiting_owner_gets_the_session_when_its_lock_runs_out(void **state)
{
	conf_opts o = {.wall_clock = 1, .poll_interval_ms = CONF_NEVER_MS};
	conf_ctx *c = conf_use(state, &o);
	hold(c, "A", "s1", 300);
	put(c, "s1", "later");
	waiter w = {.db = c->db};
	int64_t t0 = conf_mono_ms();
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, wait_session, &w), 0);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, DURQ_OK);
	assert_string_equal(w.payload, "later");
	assert_true(conf_mono_ms() - t0 < CONF_NEVER_MS);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void test_bad_session_input_is_refused(void **state)
{
	conf_ctx *c = *state;
	char longid[DURQ_SESSION_ID_MAX + 2];
	memset(longid, 's', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	char maxid[DURQ_SESSION_ID_MAX + 1];
	memset(maxid, 'm', sizeof maxid - 1);
	maxid[sizeof maxid - 1] = '\0';
	/* enqueue: a session id too long or empty; the good item of the call is not written */
	durq_work w[2] = {conf_w(NULL, "good"), conf_w(NULL, "bad")};
	w[1].session_id = longid;
	assert_int_equal(durq_work_enqueue(c->db, w, 2), DURQ_EINVAL);
	assert_non_null(strstr(durq_error_last(), "session_id"));
	w[1].session_id = "";
	assert_int_equal(durq_work_enqueue(c->db, w, 2), DURQ_EINVAL);
	assert_int_equal(durq_work_enqueue_async(c->db, w, 2, NULL), DURQ_EINVAL);
	durq_queue_depths d;
	assert_int_equal(durq_queue_depths_get(c->db, &d, NULL), DURQ_OK);
	assert_int_equal(d.work_ready + d.work_delayed + d.work_leased, 0);
	/* the longest id is fine */
	w[1].session_id = maxid;
	assert_int_equal(durq_work_enqueue(c->db, &w[1], 1), DURQ_OK);
	/* a turn: refused, the lease kept */
	assert_int_equal(conf_msg(c, "i1", 1, "start"), DURQ_OK);
	durq_turn *t = conf_turn_for(c, "i1");
	durq_work tw = conf_w(NULL, "act");
	tw.session_id = longid;
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	r.work = &tw;
	r.n_work = 1;
	assert_int_equal(durq_orch_ack(c->db, "i1", &t->token, &r), DURQ_EINVAL);
	assert_int_equal(durq_orch_renew(c->db, NULL, "i1", &t->token, CONF_LEASE), DURQ_OK);
	assert_int_equal(conf_status(c, "i1"), -1);
	durq_turn_free(t);
	/* the fetch's owner */
	durq_work_item *it = NULL;
	size_t n = 0;
	durq_session_owner bad[7];
	for (int i = 0; i < 7; i++)
		bad[i] = (durq_session_owner){.version = DURQ_SESSION_OWNER_VERSION,
					      .owner_id = "A", .lock_ms = 1000};
	bad[0].version = 99;
	bad[1].owner_id = NULL;
	bad[2].owner_id = "";
	bad[3].owner_id = longid;
	bad[4].lock_ms = 0;
	bad[5].lock_ms = -1;
	for (int i = 0; i < 6; i++)
		assert_int_equal(durq_work_fetch_session(c->db, &it, &n, NULL, &bad[i], 1,
							 CONF_LEASE, 0), DURQ_EINVAL);
	assert_int_equal(durq_work_fetch_session(c->db, &it, &n, NULL, NULL, 1, CONF_LEASE, 0),
			 DURQ_EINVAL);
	assert_int_equal(durq_work_fetch_session(c->db, &it, &n, NULL, &bad[6], 0, CONF_LEASE, 0),
			 DURQ_EINVAL);
	assert_int_equal(durq_work_fetch_session(c->db, &it, &n, NULL, &bad[6], 1, 0, 0),
			 DURQ_EINVAL);
	assert_int_equal(durq_work_fetch_session(c->db, &it, &n, longid, &bad[6], 1, CONF_LEASE,
						 0), DURQ_EINVAL); /* a queue name too long */
	bad[6].owner_id = maxid;
	assert_int_equal(durq_work_fetch_session(c->db, &it, &n, NULL, &bad[6], 1, CONF_LEASE, 0),
			 DURQ_OK);
	durq_work_items_free(it, n);
	/* renew and cleanup */
	const char *ids[] = {"A", longid};
	size_t k;
	assert_int_equal(durq_session_renew(c->db, &k, NULL, 1, 1000, 0), DURQ_EINVAL);
	assert_int_equal(durq_session_renew(c->db, &k, ids, 0, 1000, 0), DURQ_EINVAL);
	assert_int_equal(durq_session_renew(c->db, &k, ids, 2, 1000, 0), DURQ_EINVAL);
	assert_int_equal(durq_session_renew(c->db, &k, ids, 1, 0, 0), DURQ_EINVAL);
	assert_int_equal(durq_session_renew(c->db, &k, ids, 1, 1000, -1), DURQ_EINVAL);
	assert_int_equal(durq_session_renew_async(c->db, ids, 2, 1000, 0, NULL), DURQ_EINVAL);
	assert_int_equal(durq_session_cleanup(c->db, &k, -1), DURQ_EINVAL);
	assert_int_equal(durq_session_cleanup_async(c->db, -1, NULL), DURQ_EINVAL);
	size_t many = DURQ_DEFAULT_MAX_TURN_ENTRIES + 1;
	const char **lots = calloc(many, sizeof(*lots));
	assert_non_null(lots);
	for (size_t i = 0; i < many; i++)
		lots[i] = maxid;
	assert_int_equal(durq_session_renew(c->db, &k, lots, many, 1000, 0), DURQ_ETOOBIG);
	assert_int_equal(durq_session_renew(c->db, &k, lots, many - 1, 1000, LONG), DURQ_OK);
	assert_int_equal(k, 1); /* the session the owner maxid took: once */
	free(lots);
}

typedef struct counted {
	_Atomic int calls;
	_Atomic size_t count;
	_Atomic int rc;
	_Atomic int kind;
} counted;

static void on_done(void *ctx, const durq_completion *cm)
{
	counted *k = ctx;
	atomic_store(&k->count, cm->count);
	atomic_store(&k->rc, cm->rc);
	atomic_store(&k->kind, cm->kind);
	atomic_fetch_add(&k->calls, 1);
}

static void test_async_renew_and_cleanup_report_their_counts(void **state)
{
	conf_ctx *c = *state;
	hold(c, "A", "s1", 1000);
	hold(c, "A", "s2", 1000);
	durq_group *g;
	assert_int_equal(durq_group_new(&g), DURQ_OK);
	counted k = {0};
	durq_async how = {.done = on_done, .ctx = &k, .group = g};
	char owner[8] = "A";
	const char *ids[] = {owner};
	assert_int_equal(durq_session_renew_async(c->db, ids, 1, 5000, LONG, &how), DURQ_OK);
	strcpy(owner, "Z"); /* copied at submit */
	size_t failed = 1;
	assert_int_equal(durq_group_wait(g, -1, &failed), DURQ_OK);
	assert_int_equal(failed, 0);
	assert_int_equal(atomic_load(&k.calls), 1);
	assert_int_equal(atomic_load(&k.rc), DURQ_OK);
	assert_int_equal(atomic_load(&k.kind), DURQ_OP_SESSION_RENEW);
	assert_int_equal(atomic_load(&k.count), 2);
	conf_advance(c, 5000);
	assert_int_equal(durq_session_cleanup_async(c->db, LONG, &how), DURQ_OK);
	assert_int_equal(durq_group_wait(g, -1, &failed), DURQ_OK);
	assert_int_equal(atomic_load(&k.calls), 2);
	assert_int_equal(atomic_load(&k.kind), DURQ_OP_SESSION_CLEANUP);
	assert_int_equal(atomic_load(&k.count), 2);
	durq_group_free(g);
	durq_stats s;
	assert_int_equal(durq_stats_get(c->db, &s), DURQ_OK);
	assert_int_equal(s.ops[DURQ_OP_SESSION_RENEW], 1);
	assert_int_equal(s.ops[DURQ_OP_SESSION_CLEANUP], 1);
	assert_string_equal(durq_op_kind_name(DURQ_OP_SESSION_RENEW), "session_renew");
	assert_string_equal(durq_op_kind_name(DURQ_OP_SESSION_CLEANUP), "session_cleanup");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_plain_fetches_never_take_session_items),
		T(test_items_without_a_session_go_to_every_owner),
		T(test_an_unheld_session_is_claimed_and_then_kept),
		T(test_different_sessions_go_to_different_owners),
		T(test_a_session_fetch_takes_every_claimable_item_in_order),
		T(test_owners_sharing_an_id_share_its_sessions),
		T(test_two_owners_racing_for_a_session_never_share_it),
		T(test_another_owner_takes_over_after_the_lock_expires),
		T(test_an_expired_item_lease_comes_back_to_the_holder),
		T(test_when_the_session_lock_expires_first_a_new_owner_gets_the_redelivery),
		T(test_an_owner_takes_back_its_own_expired_session),
		T(test_abandoned_session_items_come_back_to_the_holder),
		T(test_renew_extends_the_sessions_of_an_owner),
		T(test_renew_skips_idle_sessions),
		T(test_renew_without_live_sessions_returns_zero),
		T(test_acks_and_item_renewals_are_session_activity),
		T(test_cleanup_removes_expired_sessions_without_items),
		T(test_cleanup_keeps_sessions_with_items_and_active_ones),
		T(test_turns_schedule_session_activities),
		T(test_dead_letters_keep_their_session),
		T(test_a_waiting_owner_gets_the_session_when_its_lock_runs_out),
		T(test_bad_session_input_is_refused),
		T(test_async_renew_and_cleanup_report_their_counts),
	};
	return cmocka_run_group_tests_name("conf_sessions", tests, conf_group_setup,
					   conf_group_teardown);
}
