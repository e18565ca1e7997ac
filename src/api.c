/*
 * api.c — the public calls of durq.h: argument checks (clear code + message, never a
 * half-written state), building write ops for durq_exec(), fetch long-polling, reads
 * through the pool, stats and config read-back. Does not own: SQL, threads.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ck_pr.h>

#include "durq_internal.h"

#define ENTER(db)                                  \
	do {                                       \
		int enter_rc_ = durq_api_enter(db); \
		if (enter_rc_ < 0)                 \
			return enter_rc_;          \
	} while (0)

/* ---- argument checks ---------------------------------------------------------------- */

/* Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
 * Ids, queue names, session ids and key/value keys must be: PostgreSQL refuses anything
 * else, so every provider refuses it alike, before anything is written. */
bool durq_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned c = *p++;
		int more = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2
			 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
		if (more < 0 || end - p < more)
			return false;
		unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
		else if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
		for (int i = 0; i < more; i++, p++)
			if (*p < (i == 0 ? lo : 0x80) || *p > (i == 0 ? hi : 0xBF))
				return false;
	}
	return true;
}

static int check_utf8(const char *s, size_t len, const char *what)
{
	return durq_utf8_valid(s, len) ? DURQ_OK
				       : durq_error_set(DURQ_EINVAL, "%s is not valid UTF-8", what);
}

int durq_check_id(const char *id, const char *what)
{
	if (!id)
		return durq_error_set(DURQ_EINVAL, "%s is NULL", what);
	size_t len = strnlen(id, DURQ_INSTANCE_ID_MAX + 1);
	if (len == 0)
		return durq_error_set(DURQ_EINVAL, "%s is empty", what);
	if (len > DURQ_INSTANCE_ID_MAX)
		return durq_error_set(DURQ_EINVAL, "%s longer than %d bytes", what,
				      DURQ_INSTANCE_ID_MAX);
	return check_utf8(id, len, what);
}

/* A session or owner id (G1): 1..DURQ_SESSION_ID_MAX bytes. */
int durq_check_session_id(const char *id, const char *what)
{
	if (!id)
		return durq_error_set(DURQ_EINVAL, "%s is NULL", what);
	size_t len = strnlen(id, DURQ_SESSION_ID_MAX + 1);
	if (len == 0)
		return durq_error_set(DURQ_EINVAL, "%s is empty", what);
	if (len > DURQ_SESSION_ID_MAX)
		return durq_error_set(DURQ_EINVAL, "%s longer than DURQ_SESSION_ID_MAX %d bytes",
				      what, DURQ_SESSION_ID_MAX);
	return check_utf8(id, len, what);
}

int durq_check_sessions(durq *db)
{
	if (db->provider->flags & DURQ_PROVIDER_SESSIONS)
		return DURQ_OK;
	return durq_error_set(DURQ_EINVAL, "activity sessions not supported by provider %s",
			      db->provider->name);
}

static int check_queue(const char *q)
{
	size_t len = q ? strnlen(q, DURQ_QUEUE_NAME_MAX + 1) : 0;
	if (len > DURQ_QUEUE_NAME_MAX)
		return durq_error_set(DURQ_EINVAL, "queue name longer than %d bytes",
				      DURQ_QUEUE_NAME_MAX);
	return check_utf8(q ? q : "", len, "queue name");
}

static int check_payload(durq *db, const void *p, size_t len, const char *what)
{
	if (!p && len)
		return durq_error_set(DURQ_EINVAL, "%s is NULL with length %zu", what, len);
	if (len > db->opts.max_payload)
		return durq_error_set(DURQ_ETOOBIG, "%s of %zu bytes exceeds max_payload %zu", what,
				      len, db->opts.max_payload);
	return DURQ_OK;
}

/* Optional name of a turn result (orchestration name, version tag): DURQ_NAME_MAX bytes. */
static int check_name(const char *s, const char *what)
{
	if (s && strnlen(s, DURQ_NAME_MAX + 1) > DURQ_NAME_MAX)
		return durq_error_set(DURQ_EINVAL, "%s longer than %d bytes", what, DURQ_NAME_MAX);
	return DURQ_OK;
}

/* Entries of one array of a call (options.max_turn_entries). */
static int check_count(durq *db, size_t n, const char *what)
{
	if (n > db->opts.max_turn_entries)
		return durq_error_set(DURQ_ETOOBIG, "%zu %s exceed max_turn_entries %zu", n, what,
				      db->opts.max_turn_entries);
	return DURQ_OK;
}

static int check_token(const durq_token *t)
{
	return t ? DURQ_OK : durq_error_set(DURQ_EINVAL, "token is NULL");
}

static int check_array(const void *a, size_t n, const char *what)
{
	return (!a && n) ? durq_error_set(DURQ_EINVAL, "%s is NULL with count %zu", what, n)
			 : DURQ_OK;
}

/* Times stay far from int64 overflow: delays up to 100 years, timers before year 9999. */
#define DURQ_MAX_DELAY_MS (100LL * 366 * 24 * 3600 * 1000)
#define DURQ_MAX_TIME_MS 253402300800000LL

static int check_delay(int64_t delay_ms, const char *what)
{
	if (delay_ms < 0 || delay_ms > DURQ_MAX_DELAY_MS)
		return durq_error_set(DURQ_EINVAL, "%s %lld out of range 0..%lld ms", what,
				      (long long)delay_ms, (long long)DURQ_MAX_DELAY_MS);
	return DURQ_OK;
}

static int check_messages(durq *db, const durq_message *m, size_t n)
{
	int rc;
	if ((rc = check_array(m, n, "messages")) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if ((rc = durq_check_id(m[i].instance_id, "message instance_id")) < 0 ||
		    (rc = check_payload(db, m[i].payload, m[i].payload_len, "message payload")) < 0 ||
		    (rc = check_delay(m[i].delay_ms, "message delay_ms")) < 0)
			return rc;
		if (m[i].visible_at_ms < 0 || m[i].visible_at_ms > DURQ_MAX_TIME_MS)
			return durq_error_set(DURQ_EINVAL, "message visible_at_ms %lld out of range",
					      (long long)m[i].visible_at_ms);
	}
	return DURQ_OK;
}

static int check_work(durq *db, const durq_work *w, size_t n)
{
	int rc;
	if ((rc = check_array(w, n, "work items")) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if ((rc = check_queue(w[i].queue)) < 0 ||
		    (rc = check_payload(db, w[i].payload, w[i].payload_len, "work payload")) < 0 ||
		    (rc = check_delay(w[i].delay_ms, "work delay_ms")) < 0)
			return rc;
		if (w[i].instance_id && (rc = durq_check_id(w[i].instance_id, "work instance_id")) < 0)
			return rc;
		if (w[i].session_id &&
		    ((rc = durq_check_session_id(w[i].session_id, "work session_id")) < 0 ||
		     (rc = durq_check_sessions(db)) < 0))
			return rc;
	}
	return DURQ_OK;
}

/* Payload bytes of one turn result, all arrays together; each part is already checked
 * against max_payload and each count against max_turn_entries, so the sum fits 64 bits. */
static int check_result_size(durq *db, const durq_turn_result *r)
{
	uint64_t total = (uint64_t)r->output_len + r->custom_status_len;
	uint64_t limit = (uint64_t)DURQ_TURN_PAYLOAD_FACTOR * db->opts.max_payload;
	for (size_t i = 0; i < r->n_history; i++)
		total += r->history[i].payload_len;
	for (size_t i = 0; i < r->n_messages; i++)
		total += r->messages[i].payload_len;
	for (size_t i = 0; i < r->n_work; i++)
		total += r->work[i].payload_len;
	for (size_t i = 0; i < r->n_kv_set; i++)
		total += r->kv_set[i].value_len;
	if (total > limit)
		return durq_error_set(DURQ_ETOOBIG, "turn result of %llu payload bytes exceeds %llu "
				      "(%d * max_payload)", (unsigned long long)total,
				      (unsigned long long)limit, DURQ_TURN_PAYLOAD_FACTOR);
	return DURQ_OK;
}

/* A discarding turn (G7) carries nothing but the flag: anything else would be dropped
 * silently, so it is refused. */
static int check_discard(const durq_turn_result *r)
{
	if (r->flags & ~(unsigned int)DURQ_TURN_DISCARD)
		return durq_error_set(DURQ_EINVAL, "turn result flags 0x%x unknown", r->flags);
	if (!(r->flags & DURQ_TURN_DISCARD))
		return DURQ_OK;
	if (r->execution_id || r->name || r->version_tag || r->parent_id || r->status ||
	    r->output || r->set_custom_status || r->n_history || r->n_work || r->n_cancel ||
	    r->n_messages || r->n_kv_set || r->n_kv_clear || r->kv_clear_all || r->runtime_version)
		return durq_error_set(DURQ_EINVAL, "a turn result with DURQ_TURN_DISCARD must "
				      "carry nothing else (no execution id, name, version, parent, "
				      "status, output, custom status, key/values, history, work, cancels or "
				      "messages)");
	return DURQ_OK;
}

int durq_check_kv_key(const char *key)
{
	if (!key)
		return durq_error_set(DURQ_EINVAL, "key/value key is NULL");
	size_t len = strnlen(key, DURQ_KV_KEY_MAX + 1);
	if (len == 0 || len > DURQ_KV_KEY_MAX)
		return durq_error_set(DURQ_EINVAL, "key/value key of %s bytes: must be 1..%d",
				      len ? "more than 256" : "0", DURQ_KV_KEY_MAX);
	return check_utf8(key, len, "key/value key");
}

/* The key/value changes of a turn (G3): counts, keys, values. */
static int check_kv(durq *db, const durq_turn_result *r)
{
	int rc;
	if ((rc = check_count(db, r->n_kv_set, "key/values to set")) < 0 ||
	    (rc = check_count(db, r->n_kv_clear, "key/values to clear")) < 0 ||
	    (rc = check_array(r->kv_set, r->n_kv_set, "kv_set")) < 0 ||
	    (rc = check_array(r->kv_clear, r->n_kv_clear, "kv_clear")) < 0)
		return rc;
	if (r->runtime_version < 0)
		return durq_error_set(DURQ_EINVAL, "turn result runtime_version %lld < 0",
				      (long long)r->runtime_version);
	if (r->kv_clear_all != 0 && r->kv_clear_all != 1)
		return durq_error_set(DURQ_EINVAL, "kv_clear_all %d: must be 0 or 1",
				      r->kv_clear_all);
	if (r->n_kv_set > DURQ_KV_MAX_KEYS)
		return durq_error_set(DURQ_ETOOBIG, "%zu keys to set exceed DURQ_KV_MAX_KEYS %d",
				      r->n_kv_set, DURQ_KV_MAX_KEYS);
	for (size_t i = 0; i < r->n_kv_set; i++)
		if ((rc = durq_check_kv_key(r->kv_set[i].key)) < 0 ||
		    (rc = check_payload(db, r->kv_set[i].value, r->kv_set[i].value_len,
					"key/value value")) < 0)
			return rc;
	for (size_t i = 0; i < r->n_kv_clear; i++)
		if ((rc = durq_check_kv_key(r->kv_clear[i])) < 0)
			return rc;
	return DURQ_OK;
}

static int check_result(durq *db, const durq_turn_result *r)
{
	int rc;
	if (!r)
		return durq_error_set(DURQ_EINVAL, "turn result is NULL");
	if (r->version != DURQ_TURN_RESULT_VERSION)
		return durq_error_set(DURQ_EINVAL, "turn result version %u unsupported (use "
				      "DURQ_TURN_RESULT_INIT)", r->version);
	if (r->status < 0 || r->status > DURQ_STATUS_TERMINATED)
		return durq_error_set(DURQ_EINVAL, "turn result status %d unknown", r->status);
	if ((rc = check_count(db, r->n_history, "history events")) < 0 ||
	    (rc = check_count(db, r->n_messages, "messages")) < 0 ||
	    (rc = check_count(db, r->n_work, "work items")) < 0 ||
	    (rc = check_count(db, r->n_cancel, "cancels")) < 0 ||
	    (rc = check_name(r->name, "name")) < 0 ||
	    (rc = check_name(r->version_tag, "version_tag")) < 0)
		return rc;
	if ((rc = check_payload(db, r->output, r->output_len, "output")) < 0 ||
	    (rc = check_payload(db, r->custom_status, r->custom_status_len, "custom status")) < 0 ||
	    (rc = check_array(r->history, r->n_history, "history")) < 0 ||
	    (rc = check_array(r->cancel, r->n_cancel, "cancel")) < 0 ||
	    (rc = check_messages(db, r->messages, r->n_messages)) < 0 ||
	    (rc = check_work(db, r->work, r->n_work)) < 0)
		return rc;
	if (r->parent_id && (rc = durq_check_id(r->parent_id, "parent_id")) < 0)
		return rc;
	if ((rc = check_discard(r)) < 0)
		return rc;
	for (size_t i = 0; i < r->n_history; i++)
		if ((rc = check_payload(db, r->history[i].payload, r->history[i].payload_len,
					"history payload")) < 0)
			return rc;
	if ((rc = check_kv(db, r)) < 0)
		return rc;
	return check_result_size(db, r);
}

/* Every exit from a public call that entered: leave the API, pass the code on. */
static int leave(durq *db, int rc)
{
	durq_api_leave(db);
	return rc;
}

/* A synchronous ack's latency (call -> durable, as its caller sees it) is counted here; an
 * asynchronous one's when it completes (async.c). */
static int run(durq *db, durq_op *op)
{
	bool ack = op->kind == DURQ_OP_WORK_ACK || op->kind == DURQ_OP_ORCH_ACK;
	uint64_t t0 = ack ? durq_clock_mono_ns() : 0;
	int rc = durq_exec(db, op);
	if (ack && rc == DURQ_OK)
		durq_stats_ack(&db->counters, op->kind, durq_clock_mono_ns() - t0);
	return leave(db, rc);
}

/* ---- enqueue ------------------------------------------------------------------------ */

/* ---- long polling ------------------------------------------------------------------- */

/* Deadline for one wait: the caller's deadline, the fallback poll for other processes'
 * writes, or the earliest known timer, whichever comes first. Under wake_mu. */
static uint64_t wait_until(durq *db, int64_t now, uint64_t deadline_ns)
{
	int64_t due = db->next_due_ms;
	uint64_t mono = durq_clock_mono_ns();
	uint64_t until = mono + (uint64_t)db->opts.poll_interval_ms * 1000000ull;
	if (due != INT64_MAX && due > now && due - now < db->opts.poll_interval_ms)
		until = mono + (uint64_t)(due - now) * 1000000ull;
	return deadline_ns < until ? deadline_ns : until;
}

enum wait_reason { WAIT_WOKEN, WAIT_DEADLINE, WAIT_TIMER, WAIT_POLL };

/* Block until a commit in this process may have made work of this channel visible, the
 * earliest timer is due, the fallback poll interval passes, or the deadline; say which. */
static enum wait_reason wait_for_work(durq *db, int ch, uint64_t seq, uint64_t deadline_ns)
{
	int64_t now = durq_clock_now(db);
	pthread_mutex_lock(&db->wake_mu);
	bool fired = db->next_due_ms <= now;
	pthread_mutex_unlock(&db->wake_mu);
	if (fired) {
		/* The cached timer fired, maybe while the claim that just found nothing ran (a
		 * slow transaction): what it made visible is no longer in the cache after the
		 * refresh (next_due reports only times after now), so claim again now rather than
		 * wait a poll interval. The refresh finds the next timer. */
		durq_next_due_refresh(db);
		return WAIT_TIMER;
	}
	pthread_mutex_lock(&db->wake_mu);
	int64_t due = db->next_due_ms;
	struct timespec ts;
	durq_deadline_to_timespec(&ts, wait_until(db, now, deadline_ns));
	while (db->wake_seq[ch] == seq && !ck_pr_load_int(&db->closed)) {
		if (pthread_cond_timedwait(&db->wake_cv[ch], &db->wake_mu, &ts) == ETIMEDOUT)
			break;
		if (db->next_due_ms < due) { /* a new, earlier timer was committed */
			due = db->next_due_ms;
			durq_deadline_to_timespec(&ts, wait_until(db, durq_clock_now(db), deadline_ns));
		}
	}
	enum wait_reason why = WAIT_POLL;
	if (db->wake_seq[ch] != seq || ck_pr_load_int(&db->closed))
		why = WAIT_WOKEN;
	else if (durq_clock_mono_ns() >= deadline_ns)
		why = WAIT_DEADLINE;
	else if (db->next_due_ms <= durq_clock_now(db))
		why = WAIT_TIMER;
	pthread_mutex_unlock(&db->wake_mu);
	return why;
}

static uint64_t wake_seq(durq *db, int ch)
{
	pthread_mutex_lock(&db->wake_mu);
	uint64_t s = db->wake_seq[ch];
	pthread_mutex_unlock(&db->wake_mu);
	return s;
}

static int check_fetch_args(int64_t lease_ms, int timeout_ms)
{
	if (lease_ms <= 0 || lease_ms > DURQ_MAX_DELAY_MS)
		return durq_error_set(DURQ_EINVAL, "lease_ms must be > 0 (got %lld)",
				      (long long)lease_ms);
	if (timeout_ms < 0)
		return durq_error_set(DURQ_EINVAL, "timeout_ms must be >= 0 (got %d)", timeout_ms);
	return DURQ_OK;
}

/* ---- wake credits (durq.wake_credit) ----------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* What kind of fetcher op is: fetchers of the same kind can take each other's work, so
 * credit one of them took is never wasted on a fetcher that cannot see the thing that was
 * made fetchable. 0: not interchangeable with anything (filters, sets, sessions). */
static uint64_t fetch_signature(const durq_op *op)
{
	if (op->kind == DURQ_OP_ORCH_CLAIM)
		return op->u.orch_claim.filtered ? 0 : 1;
	if (op->u.work_claim.queues || op->u.work_claim.any_queue || op->u.work_claim.owner_id)
		return 0;
	return fnv1a(14695981039346656037ull, op->u.work_claim.queue) | 1;
}

/* A fetch starts: count it (the credit cap) and mark the channel mixed if its fetchers
 * differ. */
static void fetch_enter(durq *db, int ch, const durq_op *op)
{
	uint64_t sig = fetch_signature(op);
	pthread_mutex_lock(&db->wake_mu);
	db->wake_fetchers[ch]++;
	if (!db->wake_sig[ch])
		db->wake_sig[ch] = sig;
	if (!sig || sig != db->wake_sig[ch])
		db->wake_mixed[ch] = 1;
	pthread_mutex_unlock(&db->wake_mu);
}

static void fetch_leave(durq *db, int ch)
{
	pthread_mutex_lock(&db->wake_mu);
	db->wake_fetchers[ch]--;
	if (db->wake_credit[ch] > durq_wake_credit_cap(db, ch))
		db->wake_credit[ch] = durq_wake_credit_cap(db, ch);
	pthread_mutex_unlock(&db->wake_mu);
}

static size_t claimed(const durq_op *op, int rc)
{
	if (rc != DURQ_OK)
		return 0;
	if (op->kind == DURQ_OP_ORCH_CLAIM)
		return op->u.orch_claim.out && op->u.orch_claim.out->instance_id ? 1 : 0;
	return op->u.work_claim.n;
}

/* After a claim that had taken `took` credit got n things: what it got beyond its credit
 * was someone's credit too. Credit it took and did not use is dropped, not given back: it
 * counted things another claim got first (or that were not fetchable yet, like a message
 * for an instance whose turn is running), and given back it would make the next fetcher
 * claim for nothing again. */
static void credit_settle(durq *db, int ch, uint64_t took, size_t n)
{
	if (n <= took)
		return;
	pthread_mutex_lock(&db->wake_mu);
	uint64_t extra = n - took;
	db->wake_credit[ch] -= extra < db->wake_credit[ch] ? extra : db->wake_credit[ch];
	pthread_mutex_unlock(&db->wake_mu);
}

/* Under wake_mu: may this fetcher, whose last claim started at sequence number claim_seq,
 * claim again now? *took = the credit it took for it. */
static bool may_claim(durq *db, int ch, uint64_t claim_seq, size_t max, uint64_t *took)
{
	*took = 0;
	if (db->wake_seq[ch] == claim_seq)
		return false; /* nothing committed since its claim began */
	if (db->wake_mixed[ch] || ck_pr_load_int(&db->closed))
		return true;
	if (!db->wake_credit[ch])
		return false;
	*took = db->wake_credit[ch] < max ? db->wake_credit[ch] : max;
	db->wake_credit[ch] -= *took;
	return true;
}

/*
 * Between two claims of one fetch: wait until this fetcher should claim again, or the
 * deadline. It claims again when a commit of this process made something fetchable and
 * it got credit for it (or, on a mixed channel, on any such commit), when a timer is due,
 * when another process wrote, and at each fallback poll if anything was committed since
 * its last claim (so credit lost to a race costs at most a poll interval, never a wakeup).
 */
static void await_claim(durq *db, int ch, uint64_t claim_seq, uint64_t deadline, size_t max,
			uint64_t *took)
{
	uint64_t seq;
	pthread_mutex_lock(&db->wake_mu);
	bool go = may_claim(db, ch, claim_seq, max, took);
	seq = db->wake_seq[ch];
	pthread_mutex_unlock(&db->wake_mu);
	while (!go) {
		enum wait_reason why = wait_for_work(db, ch, seq, deadline);
		pthread_mutex_lock(&db->wake_mu);
		if (why == WAIT_WOKEN)
			go = may_claim(db, ch, claim_seq, max, took);
		else
			go = why != WAIT_POLL || db->wake_seq[ch] != claim_seq;
		seq = db->wake_seq[ch];
		pthread_mutex_unlock(&db->wake_mu);
		if (!go && why == WAIT_POLL && durq_others_wrote(db))
			go = true;
	}
}

/* Claim with op until it returns something other than EMPTY or the timeout passes. */
static int claim_loop(durq *db, durq_op *op, int timeout_ms)
{
	uint64_t deadline = durq_clock_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	int ch = op->kind == DURQ_OP_ORCH_CLAIM ? DURQ_WAKE_ORCH : DURQ_WAKE_WORK;
	size_t max = op->kind == DURQ_OP_ORCH_CLAIM ? 1 : op->u.work_claim.max;
	uint64_t took = 0;
	int rc;
	fetch_enter(db, ch, op);
	for (;;) {
		uint64_t seq = wake_seq(db, ch);
		rc = durq_token_random(&op->token);
		if (rc == DURQ_OK)
			rc = durq_exec(db, op);
		credit_settle(db, ch, took, claimed(op, rc));
		if (rc != DURQ_EMPTY)
			break;
		if (ck_pr_load_int(&db->closed)) {
			rc = durq_error_set(DURQ_ECLOSED, "durq handle closed while fetching");
			break;
		}
		if (durq_clock_mono_ns() >= deadline) {
			rc = durq_error_set(DURQ_EMPTY, "nothing to fetch");
			break;
		}
		await_claim(db, ch, seq, deadline, max, &took);
	}
	fetch_leave(db, ch);
	return rc;
}

/* ---- worker queue ------------------------------------------------------------------- */

/* The shared half of the work fetches: op is a DURQ_OP_WORK_CLAIM with everything but
 * its item array and max (at most 1024 per fetch); the items go to *items / *n. Called
 * inside the API (ENTER done), it leaves it. */
static int work_claim(durq *db, durq_op *op, size_t max, int timeout_ms, durq_work_item **items,
		      size_t *n)
{
	*items = NULL;
	*n = 0;
	op->u.work_claim.max = max > 1024 ? 1024 : max;
	op->u.work_claim.items = calloc(op->u.work_claim.max, sizeof(durq_work_item));
	if (!op->u.work_claim.items)
		return leave(db, durq_error_set(DURQ_ENOMEM, "out of memory"));
	int rc = claim_loop(db, op, timeout_ms);
	durq_api_leave(db);
	if (rc < 0 || op->u.work_claim.n == 0) {
		free(op->u.work_claim.items);
		return rc < 0 ? rc : durq_error_set(DURQ_EMPTY, "nothing to fetch");
	}
	*items = op->u.work_claim.items;
	*n = op->u.work_claim.n;
	return DURQ_OK;
}

int durq_work_fetch(durq *db, durq_work_item **items, size_t *n, const char *queue, size_t max,
		    int64_t lease_ms, int timeout_ms)
{
	int rc;
	ENTER(db);
	if (!items || !n || max == 0)
		rc = durq_error_set(DURQ_EINVAL, "durq_work_fetch: items/n NULL or max 0");
	else if ((rc = check_queue(queue)) == DURQ_OK)
		rc = check_fetch_args(lease_ms, timeout_ms);
	if (rc < 0)
		return leave(db, rc);
	durq_op op = {.kind = DURQ_OP_WORK_CLAIM,
		      .u.work_claim = {.queue = queue ? queue : "", .lease_ms = lease_ms}};
	return work_claim(db, &op, max, timeout_ms, items, n);
}

/* A queue set's names as the provider gets them (NULL -> "", DEFAULT_AND adds "") into
 * names[DURQ_QUEUE_SET_MAX + 1]; *any = DURQ_QUEUES_ANY. */
static int queue_set_names(const durq_queue_set *qs, const char **names, size_t *n, int *any)
{
	int rc;
	if (!qs || qs->version != DURQ_QUEUE_SET_VERSION)
		return durq_error_set(DURQ_EINVAL, "queue set NULL or version unsupported (use "
				      "DURQ_QUEUE_SET_INIT)");
	if (qs->select < DURQ_QUEUES_ONLY || qs->select > DURQ_QUEUES_ANY)
		return durq_error_set(DURQ_EINVAL, "queue set select %d unknown", qs->select);
	if (qs->n > DURQ_QUEUE_SET_MAX)
		return durq_error_set(DURQ_ETOOBIG, "queue set of %zu names exceeds "
				      "DURQ_QUEUE_SET_MAX %d", qs->n, DURQ_QUEUE_SET_MAX);
	if ((rc = check_array(qs->names, qs->n, "queue set names")) < 0)
		return rc;
	if (qs->select == DURQ_QUEUES_ONLY && qs->n == 0)
		return durq_error_set(DURQ_EINVAL, "queue set DURQ_QUEUES_ONLY names no queue");
	if (qs->select == DURQ_QUEUES_ANY && qs->n != 0)
		return durq_error_set(DURQ_EINVAL, "queue set DURQ_QUEUES_ANY takes no names");
	*n = 0;
	for (size_t i = 0; i <= qs->n; i++) { /* the last round: DEFAULT_AND's "" */
		if (i == qs->n && qs->select != DURQ_QUEUES_DEFAULT_AND)
			break;
		if (i < qs->n && (rc = check_queue(qs->names[i])) < 0)
			return rc;
		const char *name = i < qs->n && qs->names[i] ? qs->names[i] : "";
		size_t k = 0;
		while (k < *n && strcmp(names[k], name) != 0) /* a name given twice counts once */
			k++;
		if (k == *n)
			names[(*n)++] = name;
	}
	*any = qs->select == DURQ_QUEUES_ANY;
	return DURQ_OK;
}

int durq_work_fetch_set(durq *db, durq_work_item **items, size_t *n, const durq_queue_set *qs,
			size_t max, int64_t lease_ms, int timeout_ms)
{
	const char *names[DURQ_QUEUE_SET_MAX + 1];
	size_t n_names = 0;
	int rc, any = 0;
	ENTER(db);
	if (!items || !n || max == 0)
		rc = durq_error_set(DURQ_EINVAL, "durq_work_fetch_set: items/n NULL or max 0");
	else if (!(db->provider->flags & DURQ_PROVIDER_QUEUE_SETS))
		rc = durq_error_set(DURQ_EINVAL, "queue sets not supported by provider %s",
				    db->provider->name);
	else if ((rc = queue_set_names(qs, names, &n_names, &any)) == DURQ_OK)
		rc = check_fetch_args(lease_ms, timeout_ms);
	if (rc < 0)
		return leave(db, rc);
	durq_op op = {.kind = DURQ_OP_WORK_CLAIM,
		      .u.work_claim = {.queue = "", .lease_ms = lease_ms,
				       .queues = any ? NULL : names,
				       .n_queues = any ? 0 : n_names, .any_queue = any}};
	return work_claim(db, &op, max, timeout_ms, items, n);
}

void durq_work_item_clear(durq_work_item *it)
{
	free(it->queue);
	free(it->instance_id);
	free(it->payload);
	free(it->session_id);
	it->queue = it->instance_id = it->payload = it->session_id = NULL;
}

/* G1: a claim for an owner, which also takes items of the sessions it holds or may claim. */
int durq_work_fetch_session(durq *db, durq_work_item **items, size_t *n, const char *queue,
			    const durq_session_owner *owner, size_t max, int64_t lease_ms,
			    int timeout_ms)
{
	int rc;
	ENTER(db);
	if (!items || !n || max == 0)
		rc = durq_error_set(DURQ_EINVAL, "durq_work_fetch_session: items/n NULL or max 0");
	else if (!owner || owner->version != DURQ_SESSION_OWNER_VERSION)
		rc = durq_error_set(DURQ_EINVAL, "session owner NULL or version unsupported (use "
				    "DURQ_SESSION_OWNER_INIT)");
	else if ((rc = durq_check_session_id(owner->owner_id, "session owner_id")) < 0)
		;
	else if (owner->lock_ms <= 0 || owner->lock_ms > DURQ_MAX_DELAY_MS)
		rc = durq_error_set(DURQ_EINVAL, "session lock_ms %lld out of range 1..%lld",
				    (long long)owner->lock_ms, (long long)DURQ_MAX_DELAY_MS);
	else if ((rc = durq_check_sessions(db)) == DURQ_OK && (rc = check_queue(queue)) == DURQ_OK)
		rc = check_fetch_args(lease_ms, timeout_ms);
	if (rc < 0)
		return leave(db, rc);
	durq_op op = {.kind = DURQ_OP_WORK_CLAIM,
		      .u.work_claim = {.queue = queue ? queue : "", .lease_ms = lease_ms,
				       .owner_id = owner->owner_id,
				       .session_lock_ms = owner->lock_ms}};
	return work_claim(db, &op, max, timeout_ms, items, n);
}

void durq_work_items_free(durq_work_item *items, size_t n)
{
	if (!items)
		return;
	for (size_t i = 0; i < n; i++)
		durq_work_item_clear(&items[i]);
	free(items);
}

/* ---- orchestrations ----------------------------------------------------------------- */

static int load_history(durq *db, durq_turn *t)
{
	durq_conn *c;
	int rc;
	if (!t->exists)
		return DURQ_OK;
	if ((rc = durq_pool_checkout(&db->pool, &c)) < 0)
		return rc;
	rc = db->provider->history_read(c, &t->history, &t->n_history, t->instance_id,
					t->execution_id);
	durq_pool_checkin(&db->pool, c, rc == DURQ_EIO || rc == DURQ_ECORRUPT);
	return rc;
}

static int check_turn_filter(durq *db, const durq_turn_filter *f)
{
	if (!f || f->version != DURQ_TURN_FILTER_VERSION)
		return durq_error_set(DURQ_EINVAL, "turn filter NULL or version unsupported (use "
				      "DURQ_TURN_FILTER_INIT)");
	if (f->min_runtime_version < 0 || f->max_runtime_version < f->min_runtime_version)
		return durq_error_set(DURQ_EINVAL, "turn filter range %lld..%lld makes no sense "
				      "(need 0 <= min <= max)", (long long)f->min_runtime_version,
				      (long long)f->max_runtime_version);
	if (!(db->provider->flags & DURQ_PROVIDER_VERSION_FILTER))
		return durq_error_set(DURQ_EINVAL, "runtime version filters not supported by "
				      "provider %s", db->provider->name);
	return DURQ_OK;
}

static int orch_fetch(durq *db, durq_turn **out, int64_t lease_ms, int timeout_ms,
		      const durq_turn_filter *f);

int durq_orch_fetch(durq *db, durq_turn **out, int64_t lease_ms, int timeout_ms)
{
	return orch_fetch(db, out, lease_ms, timeout_ms, NULL);
}

int durq_orch_fetch_filtered(durq *db, durq_turn **out, int64_t lease_ms, int timeout_ms,
			     const durq_turn_filter *filter)
{
	int rc;
	ENTER(db);
	rc = check_turn_filter(db, filter);
	durq_api_leave(db);
	return rc < 0 ? rc : orch_fetch(db, out, lease_ms, timeout_ms, filter);
}

static int orch_fetch(durq *db, durq_turn **out, int64_t lease_ms, int timeout_ms,
		      const durq_turn_filter *f)
{
	int rc;
	ENTER(db);
	if (!out)
		rc = durq_error_set(DURQ_EINVAL, "durq_orch_fetch: out is NULL");
	else
		rc = check_fetch_args(lease_ms, timeout_ms);
	if (rc < 0)
		return leave(db, rc);
	*out = NULL;
	durq_turn *t = calloc(1, sizeof(*t));
	if (!t)
		return leave(db, durq_error_set(DURQ_ENOMEM, "out of memory"));
	durq_op op = {.kind = DURQ_OP_ORCH_CLAIM,
		      .u.orch_claim = {.lease_ms = lease_ms, .out = t, .filtered = f != NULL,
				       .min_version = f ? f->min_runtime_version : 0,
				       .max_version = f ? f->max_runtime_version : 0}};
	rc = claim_loop(db, &op, timeout_ms);
	if (rc == DURQ_OK && !op.u.orch_claim.history_loaded && (rc = load_history(db, t)) < 0) {
		/* give the turn back untouched rather than hold a lease nobody works on */
		durq_op ab = {.kind = DURQ_OP_ORCH_ABANDON,
			      .u.orch_abandon = {t->instance_id, &t->token, 0, 1}};
		char msg[DURQ_ERRMSG_MAX];
		durq_error_copy(msg, sizeof(msg));
		durq_exec(db, &ab);
		durq_error_set(rc, "%s", msg);
	}
	durq_api_leave(db);
	if (rc < 0) {
		durq_turn_free(t);
		return rc;
	}
	*out = t;
	return DURQ_OK;
}

void durq_events_free(durq_event *events, size_t n)
{
	if (!events)
		return;
	for (size_t i = 0; i < n; i++)
		free((void *)events[i].payload);
	free(events);
}

void durq_turn_clear(durq_turn *t)
{
	for (size_t i = 0; i < t->n_messages; i++)
		free(t->messages[i].payload);
	free(t->messages);
	durq_events_free(t->history, t->n_history);
	durq_kv_entries_free(t->kv, t->n_kv);
	free(t->instance_id);
	free(t->name);
	free(t->version);
	memset(t, 0, sizeof(*t));
}

void durq_turn_free(durq_turn *t)
{
	if (!t)
		return;
	durq_turn_clear(t);
	free(t);
}

/* ---- management writes -------------------------------------------------------------- */

/* Each write is built once by a prep_* function (checks, then the op), then run
 * synchronously (durq_exec: returns after COMMIT) or submitted (durq_exec_async). */

static int prep_orch_enqueue(durq *db, durq_op *op, const durq_message *msgs, size_t n)
{
	int rc;
	if ((rc = check_count(db, n, "messages")) < 0 || (rc = check_messages(db, msgs, n)) < 0)
		return rc;
	*op = (durq_op){.kind = DURQ_OP_ORCH_ENQUEUE, .u.orch_enqueue = {msgs, n}};
	return DURQ_OK;
}

static int prep_work_enqueue(durq *db, durq_op *op, const durq_work *items, size_t n)
{
	int rc;
	if ((rc = check_count(db, n, "work items")) < 0 || (rc = check_work(db, items, n)) < 0)
		return rc;
	*op = (durq_op){.kind = DURQ_OP_WORK_ENQUEUE, .u.work_enqueue = {items, n}};
	return DURQ_OK;
}

static int prep_work_ack(durq *db, durq_op *op, int64_t id, const durq_token *token,
			 const durq_message *completion)
{
	int rc;
	if ((rc = check_token(token)) < 0 ||
	    (completion && (rc = check_messages(db, completion, 1)) < 0))
		return rc;
	*op = (durq_op){.kind = DURQ_OP_WORK_ACK, .u.work_ack = {id, token, completion}};
	return DURQ_OK;
}

static int prep_work_abandon(durq_op *op, int64_t id, const durq_token *token, int64_t delay_ms,
			     int ignore_attempt)
{
	int rc;
	if ((rc = check_token(token)) < 0 || (rc = check_delay(delay_ms, "delay_ms")) < 0)
		return rc;
	*op = (durq_op){.kind = DURQ_OP_WORK_ABANDON,
			.u.work_abandon = {id, token, delay_ms, ignore_attempt}};
	return DURQ_OK;
}

static int prep_work_renew(durq_op *op, int64_t id, const durq_token *token, int64_t lease_ms)
{
	int rc;
	if ((rc = check_token(token)) < 0 || (rc = check_fetch_args(lease_ms, 0)) < 0)
		return rc;
	*op = (durq_op){.kind = DURQ_OP_WORK_RENEW, .u.work_renew = {id, token, lease_ms, 0}};
	return DURQ_OK;
}

static int prep_orch_ack(durq *db, durq_op *op, const char *instance_id, const durq_token *token,
			 const durq_turn_result *result)
{
	int rc;
	if ((rc = durq_check_id(instance_id, "instance_id")) < 0 || (rc = check_token(token)) < 0 ||
	    (rc = check_result(db, result)) < 0)
		return rc;
	*op = (durq_op){.kind = DURQ_OP_ORCH_ACK, .u.orch_ack = {instance_id, token, result}};
	return DURQ_OK;
}

static int prep_orch_abandon(durq_op *op, const char *instance_id, const durq_token *token,
			     int64_t delay_ms, int ignore_attempt)
{
	int rc;
	if ((rc = durq_check_id(instance_id, "instance_id")) < 0 || (rc = check_token(token)) < 0 ||
	    (rc = check_delay(delay_ms, "delay_ms")) < 0)
		return rc;
	*op = (durq_op){.kind = DURQ_OP_ORCH_ABANDON,
			.u.orch_abandon = {instance_id, token, delay_ms, ignore_attempt}};
	return DURQ_OK;
}

static int prep_orch_renew(durq_op *op, const char *instance_id, const durq_token *token,
			   int64_t lease_ms)
{
	int rc;
	if ((rc = durq_check_id(instance_id, "instance_id")) < 0 || (rc = check_token(token)) < 0 ||
	    (rc = check_fetch_args(lease_ms, 0)) < 0)
		return rc;
	*op = (durq_op){.kind = DURQ_OP_ORCH_RENEW,
			.u.orch_renew = {instance_id, token, lease_ms, 0}};
	return DURQ_OK;
}

static int prep_instance_delete(durq_op *op, const char *instance_id)
{
	int rc = durq_check_id(instance_id, "instance_id");
	if (rc == DURQ_OK)
		*op = (durq_op){.kind = DURQ_OP_INSTANCE_DELETE, .u.instance_delete = {instance_id}};
	return rc;
}

/* Run a prepared op synchronously; OP is filled by PREP (an expression returning a code). */
#define WRITE_SYNC(db, op, prep)                         \
	do {                                             \
		int wrc_;                                \
		ENTER(db);                               \
		if ((wrc_ = (prep)) < 0)                 \
			return leave(db, wrc_);          \
		return run(db, &(op));                   \
	} while (0)

#define WRITE_ASYNC(db, op, prep, a)                            \
	do {                                                    \
		int wrc_;                                       \
		ENTER(db);                                      \
		if ((wrc_ = (prep)) < 0)                        \
			return leave(db, wrc_);                 \
		return leave(db, durq_exec_async(db, &(op), (a))); \
	} while (0)

/* An enqueue of nothing is checked like any other and commits nothing. */
int durq_orch_enqueue(durq *db, const durq_message *msgs, size_t n)
{
	durq_op op;
	int rc;
	ENTER(db);
	if ((rc = prep_orch_enqueue(db, &op, msgs, n)) < 0 || n == 0)
		return leave(db, rc);
	return run(db, &op);
}

int durq_work_enqueue(durq *db, const durq_work *items, size_t n)
{
	durq_op op;
	int rc;
	ENTER(db);
	if ((rc = prep_work_enqueue(db, &op, items, n)) < 0 || n == 0)
		return leave(db, rc);
	return run(db, &op);
}

int durq_orch_enqueue_async(durq *db, const durq_message *msgs, size_t n, const durq_async *a)
{
	durq_op op;
	WRITE_ASYNC(db, op, prep_orch_enqueue(db, &op, msgs, n), a);
}

int durq_work_enqueue_async(durq *db, const durq_work *items, size_t n, const durq_async *a)
{
	durq_op op;
	WRITE_ASYNC(db, op, prep_work_enqueue(db, &op, items, n), a);
}

int durq_work_ack(durq *db, int64_t id, const durq_token *token, const durq_message *completion)
{
	durq_op op;
	WRITE_SYNC(db, op, prep_work_ack(db, &op, id, token, completion));
}

int durq_work_ack_async(durq *db, int64_t id, const durq_token *token,
			const durq_message *completion, const durq_async *a)
{
	durq_op op;
	WRITE_ASYNC(db, op, prep_work_ack(db, &op, id, token, completion), a);
}

int durq_work_abandon(durq *db, int64_t id, const durq_token *token, int64_t delay_ms,
		      int ignore_attempt)
{
	durq_op op;
	WRITE_SYNC(db, op, prep_work_abandon(&op, id, token, delay_ms, ignore_attempt));
}

int durq_work_abandon_async(durq *db, int64_t id, const durq_token *token, int64_t delay_ms,
			    int ignore_attempt, const durq_async *a)
{
	durq_op op;
	WRITE_ASYNC(db, op, prep_work_abandon(&op, id, token, delay_ms, ignore_attempt), a);
}

int durq_work_renew(durq *db, int64_t *lease_until_ms, int64_t id, const durq_token *token,
		    int64_t lease_ms)
{
	durq_op op;
	int rc;
	ENTER(db);
	if ((rc = prep_work_renew(&op, id, token, lease_ms)) < 0)
		return leave(db, rc);
	rc = run(db, &op);
	if (rc == DURQ_OK && lease_until_ms)
		*lease_until_ms = op.u.work_renew.lease_until;
	return rc;
}

int durq_work_renew_async(durq *db, int64_t id, const durq_token *token, int64_t lease_ms,
			  const durq_async *a)
{
	durq_op op;
	WRITE_ASYNC(db, op, prep_work_renew(&op, id, token, lease_ms), a);
}

int durq_orch_ack(durq *db, const char *instance_id, const durq_token *token,
		  const durq_turn_result *result)
{
	durq_op op;
	WRITE_SYNC(db, op, prep_orch_ack(db, &op, instance_id, token, result));
}

int durq_orch_ack_async(durq *db, const char *instance_id, const durq_token *token,
			const durq_turn_result *result, const durq_async *a)
{
	durq_op op;
	WRITE_ASYNC(db, op, prep_orch_ack(db, &op, instance_id, token, result), a);
}

int durq_orch_abandon(durq *db, const char *instance_id, const durq_token *token,
		      int64_t delay_ms, int ignore_attempt)
{
	durq_op op;
	WRITE_SYNC(db, op, prep_orch_abandon(&op, instance_id, token, delay_ms, ignore_attempt));
}

int durq_orch_abandon_async(durq *db, const char *instance_id, const durq_token *token,
			    int64_t delay_ms, int ignore_attempt, const durq_async *a)
{
	durq_op op;
	WRITE_ASYNC(db, op, prep_orch_abandon(&op, instance_id, token, delay_ms, ignore_attempt), a);
}

int durq_orch_renew(durq *db, int64_t *lease_until_ms, const char *instance_id,
		    const durq_token *token, int64_t lease_ms)
{
	durq_op op;
	int rc;
	ENTER(db);
	if ((rc = prep_orch_renew(&op, instance_id, token, lease_ms)) < 0)
		return leave(db, rc);
	rc = run(db, &op);
	if (rc == DURQ_OK && lease_until_ms)
		*lease_until_ms = op.u.orch_renew.lease_until;
	return rc;
}

int durq_orch_renew_async(durq *db, const char *instance_id, const durq_token *token,
			  int64_t lease_ms, const durq_async *a)
{
	durq_op op;
	WRITE_ASYNC(db, op, prep_orch_renew(&op, instance_id, token, lease_ms), a);
}

int durq_instance_delete(durq *db, const char *instance_id)
{
	durq_op op;
	WRITE_SYNC(db, op, prep_instance_delete(&op, instance_id));
}

int durq_instance_delete_async(durq *db, const char *instance_id, const durq_async *a)
{
	durq_op op;
	WRITE_ASYNC(db, op, prep_instance_delete(&op, instance_id), a);
}

int durq_execution_prune(durq *db, size_t *pruned, const char *instance_id,
			 uint64_t before_execution_id)
{
	int rc;
	ENTER(db);
	if ((rc = durq_check_id(instance_id, "instance_id")) < 0)
		return leave(db, rc);
	durq_op op = {.kind = DURQ_OP_EXECUTION_PRUNE,
		      .u.execution_prune = {.instance_id = instance_id,
					    .before = before_execution_id}};
	rc = run(db, &op);
	if (rc == DURQ_OK && pruned)
		*pruned = op.u.execution_prune.pruned;
	return rc;
}

int durq_dead_requeue(durq *db, int64_t dead_id)
{
	ENTER(db);
	durq_op op = {.kind = DURQ_OP_DEAD_REQUEUE, .u.dead_requeue = {dead_id}};
	return run(db, &op);
}

int durq_dead_requeue_async(durq *db, int64_t dead_id, const durq_async *a)
{
	ENTER(db);
	durq_op op = {.kind = DURQ_OP_DEAD_REQUEUE, .u.dead_requeue = {dead_id}};
	return leave(db, durq_exec_async(db, &op, a));
}

int durq_work_ack_many(durq *db, const durq_work_ack_req *reqs, size_t n, int *rcs)
{
	int rc;
	ENTER(db);
	if ((rc = check_array(reqs, n, "acks")) < 0 || (rc = check_count(db, n, "acks")) < 0)
		return leave(db, rc);
	for (size_t i = 0; i < n; i++) /* all checked before any is submitted */
		if ((rc = prep_work_ack(db, &(durq_op){0}, reqs[i].id, reqs[i].token,
					reqs[i].completion)) < 0)
			return leave(db, rc);
	return leave(db, durq_exec_ack_many(db, reqs, n, rcs));
}

/* durq_work_ack_fetch's first step where claims run beside the committer: the acks and a
 * claim in one flushed transaction. Returns the claim's result (its items in claim); each
 * ack's in rcs. */
static int acks_with_claim(durq *db, durq_op *ops, size_t n_acks, int *rcs, durq_op *claim)
{
	size_t total = n_acks + 1;
	durq_op **all = calloc(total, sizeof(*all));
	durq_op_result *res = calloc(total, sizeof(*res));
	int rc = all && res ? durq_token_random(&claim->token)
			    : durq_error_set(DURQ_ENOMEM, "out of memory");
	bool ran = false; /* the transaction committed: each op has its own result */
	if (rc == DURQ_OK) {
		for (size_t i = 0; i < n_acks; i++)
			all[i] = &ops[i];
		all[n_acks] = claim;
		fetch_enter(db, DURQ_WAKE_WORK, claim);
		uint64_t t0 = durq_clock_mono_ns();
		rc = durq_exec_beside(db, all, res, total);
		uint64_t took = durq_clock_mono_ns() - t0;
		for (size_t i = 0; rc == DURQ_OK && i < n_acks; i++) /* as a synchronous ack's */
			if (res[i].rc == DURQ_OK)
				durq_stats_ack(&db->counters, DURQ_OP_WORK_ACK, took);
		if ((ran = rc == DURQ_OK) && (rc = res[n_acks].rc) < 0 && rc != DURQ_EMPTY)
			durq_error_set(rc, "%s", res[n_acks].message);
		credit_settle(db, DURQ_WAKE_WORK, 0, claimed(claim, rc));
		fetch_leave(db, DURQ_WAKE_WORK);
	}
	for (size_t i = 0; i < n_acks; i++)
		rcs[i] = ran ? res[i].rc : rc;
	free(all);
	free(res);
	return rc;
}

/* The rest of durq_work_ack_fetch once its arguments are checked: inside the API (ENTER
 * done), it leaves it. */
static int ack_fetch(durq *db, const durq_work_ack_req *acks, durq_op *ops, size_t n_acks,
		     int *rcs, durq_op *claim, int timeout_ms, durq_work_item **items, size_t *n)
{
	size_t max = claim->u.work_claim.max;
	if (n_acks == 0 || !durq_claims_beside(db)) {
		for (size_t i = 0; i < n_acks; i++)
			rcs[i] = DURQ_ENOMEM; /* overwritten once each ack is submitted */
		if (n_acks)
			durq_exec_ack_many(db, acks, n_acks, rcs);
		return work_claim(db, claim, max, timeout_ms, items, n);
	}
	claim->u.work_claim.items = calloc(max, sizeof(durq_work_item));
	int rc = claim->u.work_claim.items ? acks_with_claim(db, ops, n_acks, rcs, claim)
					   : durq_error_set(DURQ_ENOMEM, "out of memory");
	if (!claim->u.work_claim.items)
		for (size_t i = 0; i < n_acks; i++)
			rcs[i] = rc;
	if (rc == DURQ_EMPTY && timeout_ms > 0) { /* the acks are in; wait for work */
		free(claim->u.work_claim.items);
		claim->u.work_claim.items = NULL;
		claim->u.work_claim.n = 0;
		return work_claim(db, claim, max, timeout_ms, items, n);
	}
	durq_api_leave(db);
	if (rc < 0 || claim->u.work_claim.n == 0) {
		free(claim->u.work_claim.items);
		return rc < 0 ? rc : durq_error_set(DURQ_EMPTY, "nothing to fetch");
	}
	*items = claim->u.work_claim.items;
	*n = claim->u.work_claim.n;
	return DURQ_OK;
}

int durq_work_ack_fetch(durq *db, const durq_work_ack_req *acks, size_t n_acks, int *rcs,
			durq_work_item **items, size_t *n, const char *queue, size_t max,
			int64_t lease_ms, int timeout_ms)
{
	int rc;
	durq_op *ops = NULL;
	ENTER(db);
	if (!items || !n || max == 0)
		rc = durq_error_set(DURQ_EINVAL, "durq_work_ack_fetch: items/n NULL or max 0");
	else if (n_acks && !rcs)
		rc = durq_error_set(DURQ_EINVAL, "durq_work_ack_fetch: rcs is NULL with %zu acks",
				    n_acks);
	else if (durq_in_writer())
		rc = durq_error_set(DURQ_EINVAL, "durq_work_ack_fetch called from a durq callback "
				    "on the writing thread; it would wait for itself");
	else if ((rc = check_queue(queue)) == DURQ_OK &&
		 (rc = check_fetch_args(lease_ms, timeout_ms)) == DURQ_OK &&
		 (rc = check_array(acks, n_acks, "acks")) == DURQ_OK)
		rc = check_count(db, n_acks, "acks");
	if (rc == DURQ_OK && n_acks && !(ops = calloc(n_acks, sizeof(*ops))))
		rc = durq_error_set(DURQ_ENOMEM, "out of memory");
	for (size_t i = 0; rc == DURQ_OK && i < n_acks; i++) /* all checked before any is sent */
		rc = prep_work_ack(db, &ops[i], acks[i].id, acks[i].token, acks[i].completion);
	if (rc < 0) {
		free(ops);
		return leave(db, rc);
	}
	*items = NULL;
	*n = 0;
	durq_op claim = {.kind = DURQ_OP_WORK_CLAIM,
			 .u.work_claim = {.queue = queue ? queue : "", .lease_ms = lease_ms,
					  .max = max > 1024 ? 1024 : max}};
	rc = ack_fetch(db, acks, ops, n_acks, rcs, &claim, timeout_ms, items, n);
	free(ops);
	return rc;
}

/* ---- reads -------------------------------------------------------------------------- */

#define READ(db, call)                                                                   \
	do {                                                                             \
		durq_conn *c_;                                                           \
		rc = durq_pool_checkout(&(db)->pool, &c_);                               \
		if (rc == DURQ_OK) {                                                     \
			rc = (db)->provider->call;                                       \
			durq_pool_checkin(&(db)->pool, c_, rc == DURQ_EIO || rc == DURQ_ECORRUPT); \
		}                                                                        \
	} while (0)

int durq_instance_get(durq *db, durq_instance_info **out, const char *instance_id)
{
	int rc;
	ENTER(db);
	if (!out)
		rc = durq_error_set(DURQ_EINVAL, "durq_instance_get: out is NULL");
	else
		rc = durq_check_id(instance_id, "instance_id");
	if (rc == DURQ_OK) {
		*out = NULL;
		READ(db, instance_get(c_, out, instance_id));
	}
	return leave(db, rc);
}

void durq_instance_info_free(durq_instance_info *i)
{
	if (!i)
		return;
	free(i->id);
	free(i->name);
	free(i->version);
	free(i->parent_id);
	free(i->output);
	free(i->custom_status);
	free(i);
}

/* One page from the provider. max is already within 1..DURQ_INSTANCE_LIST_MAX + 1. */
static int list_page(durq *db, char ***ids, size_t *n, int status, const char *after_id,
		     size_t max)
{
	int rc;
	*ids = NULL;
	*n = 0;
	READ(db, instance_list(c_, ids, n, status, after_id, max));
	return rc;
}

/* The unpaged call asks for one id more than it may return: getting it means "too many". */
int durq_instance_list(durq *db, char ***ids, size_t *n, int status)
{
	int rc = DURQ_OK;
	ENTER(db);
	if (!ids || !n)
		rc = durq_error_set(DURQ_EINVAL, "durq_instance_list: ids/n is NULL");
	if (rc == DURQ_OK &&
	    (rc = list_page(db, ids, n, status, NULL, DURQ_INSTANCE_LIST_MAX + 1)) == DURQ_OK &&
	    *n > DURQ_INSTANCE_LIST_MAX) {
		durq_strings_free(*ids, *n);
		*ids = NULL;
		*n = 0;
		rc = durq_error_set(DURQ_ETOOBIG, "durq_instance_list: more than %d instances "
				    "match; use durq_instance_list_page", DURQ_INSTANCE_LIST_MAX);
	}
	return leave(db, rc);
}

int durq_instance_list_page(durq *db, char ***ids, size_t *n, int status, const char *after_id,
			    size_t max)
{
	int rc = DURQ_OK;
	ENTER(db);
	if (!ids || !n)
		rc = durq_error_set(DURQ_EINVAL, "durq_instance_list_page: ids/n is NULL");
	else if (after_id)
		rc = durq_check_id(after_id, "after_id");
	if (rc == DURQ_OK) {
		if (max == 0)
			max = DURQ_INSTANCE_PAGE_DEFAULT;
		else if (max > DURQ_INSTANCE_LIST_MAX)
			max = DURQ_INSTANCE_LIST_MAX;
		rc = list_page(db, ids, n, status, after_id, max);
	}
	return leave(db, rc);
}

void durq_strings_free(char **s, size_t n)
{
	if (!s)
		return;
	for (size_t i = 0; i < n; i++)
		free(s[i]);
	free(s);
}

int durq_history_read(durq *db, durq_event **events, size_t *n, const char *instance_id,
		      uint64_t execution_id)
{
	int rc;
	ENTER(db);
	if (!events || !n)
		rc = durq_error_set(DURQ_EINVAL, "durq_history_read: events/n is NULL");
	else
		rc = durq_check_id(instance_id, "instance_id");
	if (rc == DURQ_OK) {
		*events = NULL;
		*n = 0;
		READ(db, history_read(c_, events, n, instance_id, execution_id));
	}
	return leave(db, rc);
}

/* The list ends with an entry of execution id 0 (ids start at 1), so that
 * durq_execution_list_free, which gets no count, finds the strings to free. */
static int terminate_executions(durq_execution_info **list, size_t *n)
{
	durq_execution_info *l = realloc(*list, (*n + 1) * sizeof(*l));
	if (!l) {
		for (size_t i = 0; i < *n; i++) {
			free((*list)[i].name);
			free((*list)[i].version);
			free((*list)[i].output);
		}
		free(*list);
		*list = NULL;
		*n = 0;
		return durq_error_set(DURQ_ENOMEM, "out of memory");
	}
	memset(&l[*n], 0, sizeof(*l));
	*list = l;
	return DURQ_OK;
}

int durq_execution_list(durq *db, durq_execution_info **out, size_t *n, const char *instance_id)
{
	int rc;
	ENTER(db);
	if (!out || !n)
		rc = durq_error_set(DURQ_EINVAL, "durq_execution_list: out/n is NULL");
	else
		rc = durq_check_id(instance_id, "instance_id");
	if (rc == DURQ_OK) {
		*out = NULL;
		*n = 0;
		READ(db, execution_list(c_, out, n, instance_id));
	}
	if (rc == DURQ_OK)
		rc = terminate_executions(out, n);
	return leave(db, rc);
}

void durq_execution_list_free(durq_execution_info *list)
{
	if (!list)
		return;
	for (durq_execution_info *e = list; e->execution_id; e++) {
		free(e->name);
		free(e->version);
		free(e->output);
	}
	free(list);
}

int durq_dead_list(durq *db, durq_dead_letter **out, size_t *n, size_t max)
{
	int rc = DURQ_OK;
	ENTER(db);
	if (!out || !n)
		rc = durq_error_set(DURQ_EINVAL, "durq_dead_list: out/n is NULL");
	if (rc == DURQ_OK) {
		*out = NULL;
		*n = 0;
		READ(db, dead_list(c_, out, n, max ? max : 1000));
	}
	return leave(db, rc);
}

void durq_dead_letters_free(durq_dead_letter *list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++) {
		free(list[i].queue);
		free(list[i].instance_id);
		free(list[i].payload);
	}
	free(list);
}

int durq_queue_depths_get(durq *db, durq_queue_depths *out, const char *queue)
{
	int rc;
	ENTER(db);
	if (!out)
		rc = durq_error_set(DURQ_EINVAL, "durq_queue_depths_get: out is NULL");
	else
		rc = check_queue(queue);
	if (rc == DURQ_OK) {
		memset(out, 0, sizeof(*out));
		READ(db, queue_depths(c_, out, queue, durq_clock_now(db)));
	}
	return leave(db, rc);
}

/* ---- config read-back and stats ----------------------------------------------------- */

int durq_options_get(durq *db, durq_options *out)
{
	ENTER(db);
	int rc = DURQ_OK;
	if (!out)
		rc = durq_error_set(DURQ_EINVAL, "durq_options_get: out is NULL");
	else
		*out = db->opts;
	return leave(db, rc);
}

int durq_pragma_get(durq *db, char *buf, size_t len, const char *name)
{
	int rc = DURQ_OK;
	ENTER(db);
	if (!buf || !len || !name)
		rc = durq_error_set(DURQ_EINVAL, "durq_pragma_get: buf/name NULL or len 0");
	else if (!db->provider->pragma_get)
		rc = durq_error_set(DURQ_EINVAL, "provider %s has no PRAGMAs", db->provider->name);
	if (rc == DURQ_OK)
		READ(db, pragma_get(c_, buf, len, name));
	return leave(db, rc);
}

static const char *const op_names[DURQ_OP__COUNT] = {
	"orch_enqueue", "work_enqueue", "orch_claim", "orch_ack", "orch_abandon",
	"orch_renew", "work_claim", "work_ack", "work_abandon", "work_renew",
	"dead_requeue", "instance_delete", "execution_prune", "instance_delete_many",
	"instance_purge", "session_renew", "session_cleanup"};

const char *durq_op_kind_name(int kind)
{
	return kind >= 0 && kind < DURQ_OP__COUNT ? op_names[kind] : "unknown";
}

int durq_stats_get(durq *db, durq_stats *out)
{
	int rc = DURQ_OK;
	ENTER(db);
	if (!out)
		rc = durq_error_set(DURQ_EINVAL, "durq_stats_get: out is NULL");
	if (rc == DURQ_OK) {
		durq_stats_snapshot(&db->counters, out);
		out->pool_size = (uint64_t)db->opts.pool_size;
		durq_provider_stats ps = {0, 0, 0};
		if (db->provider->stats && db->provider->stats(db->provider, &ps) == DURQ_OK) {
			out->db_bytes = ps.db_bytes;
			out->wal_bytes = ps.wal_bytes;
			out->busy_retries += ps.busy_waits;
		}
		READ(db, queue_depths(c_, &out->depths, NULL, durq_clock_now(db)));
	}
	return leave(db, rc);
}

typedef struct outbuf {
	char *buf;
	size_t len, used;
} outbuf;

static void out_printf(outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(outbuf *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = o->used < o->len ? o->len - o->used : 0;
	int w = vsnprintf(room ? o->buf + o->used : NULL, room, fmt, ap);
	va_end(ap);
	if (w > 0)
		o->used += (size_t)w;
}

/* One metric family's HELP and TYPE lines. */
static void family(outbuf *o, const char *name, const char *type, const char *help)
{
	out_printf(o, "# HELP durq_%s %s\n# TYPE durq_%s %s\n", name, help, name, type);
}

static void counter(outbuf *o, const char *name, const char *help, uint64_t v)
{
	family(o, name, "counter", help);
	out_printf(o, "durq_%s %llu\n", name, (unsigned long long)v);
}

static void gauge(outbuf *o, const char *name, const char *help, double v)
{
	family(o, name, "gauge", help);
	out_printf(o, "durq_%s %.17g\n", name, v);
}

/* One histogram series: cumulative buckets ending with le="+Inf" (= _count), _sum, _count.
 * labels is "" or a label list with a trailing comma, e.g. "op=\"work_ack\",". */
static void histogram(outbuf *o, const char *name, const char *labels, const double *le,
		      const uint64_t *buckets, int nbuckets, double sum)
{
	uint64_t cum = 0;
	for (int i = 0; i < nbuckets; i++) {
		cum += buckets[i];
		if (i < nbuckets - 1)
			out_printf(o, "durq_%s_bucket{%sle=\"%g\"} %llu\n", name, labels, le[i],
				   (unsigned long long)cum);
		else
			out_printf(o, "durq_%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels,
				   (unsigned long long)cum);
	}
	size_t n = strlen(labels); /* the label list without its trailing comma */
	const char *lb = n ? "{" : "", *rb = n ? "}" : "";
	int w = n ? (int)n - 1 : 0;
	out_printf(o, "durq_%s_sum%s%.*s%s %.17g\n", name, lb, w, labels, rb, sum);
	out_printf(o, "durq_%s_count%s%.*s%s %llu\n", name, lb, w, labels, rb,
		   (unsigned long long)cum);
}

static void latency(outbuf *o, const char *name, const char *labels, const durq_latency *h)
{
	static const uint64_t bounds_us[DURQ_LATENCY_BUCKETS - 1] = DURQ_LATENCY_BOUNDS_US;
	double le[DURQ_LATENCY_BUCKETS - 1];
	for (int i = 0; i < DURQ_LATENCY_BUCKETS - 1; i++)
		le[i] = (double)bounds_us[i] / 1e6;
	histogram(o, name, labels, le, h->buckets, DURQ_LATENCY_BUCKETS, (double)h->sum_ns / 1e9);
}

static void ops_metrics(outbuf *o, const durq_stats *s)
{
	family(o, "ops_total", "counter", "Write ops completed (committed or failed), by op.");
	for (int i = 0; i < DURQ_OP__COUNT; i++)
		out_printf(o, "durq_ops_total{op=\"%s\"} %llu\n", op_names[i],
			   (unsigned long long)s->ops[i]);
	counter(o, "op_failures_total", "Ops that returned an error other than DURQ_EMPTY.",
		s->op_failures);
	counter(o, "transactions_total", "Committed write transactions.", s->transactions);
	counter(o, "transaction_failures_total", "Write transactions that failed to commit.",
		s->commit_failures);
	/* ops_per_txn_hist bucket b holds 2^b .. 2^(b+1)-1 ops; the last has no upper bound */
	double le[DURQ_STATS_BUCKETS - 1];
	for (int b = 0; b < DURQ_STATS_BUCKETS - 1; b++)
		le[b] = (double)((2ull << b) - 1);
	family(o, "transaction_ops", "histogram", "Ops carried by each committed write transaction.");
	histogram(o, "transaction_ops", "", le, s->ops_per_txn_hist, DURQ_STATS_BUCKETS,
		  (double)s->txn_ops);
	gauge(o, "transaction_ops_max", "Most ops one transaction carried since the handle opened.",
	      (double)s->max_ops_per_txn);
	family(o, "commit_duration_seconds", "histogram",
	       "Write transaction time, BEGIN to COMMIT, of committed transactions.");
	latency(o, "commit_duration_seconds", "", &s->commit_latency);
	gauge(o, "commit_duration_max_seconds", "Longest commit since the handle opened.",
	      (double)s->commit_ns_max / 1e9);
	family(o, "ack_latency_seconds", "histogram",
	       "Acks that succeeded, submit to durable (synchronous: until the call returned; "
	       "asynchronous: until the commit completed it), by op.");
	latency(o, "ack_latency_seconds", "op=\"work_ack\",", &s->work_ack_latency);
	latency(o, "ack_latency_seconds", "op=\"orch_ack\",", &s->orch_ack_latency);
}

static void wait_metrics(outbuf *o, const durq_stats *s)
{
	counter(o, "busy_retries_total",
		"Waits for another connection's write lock, retried inside durq (hidden from callers).",
		s->busy_retries);
	counter(o, "busy_surfaced_total", "DURQ_EBUSY returned to callers.", s->busy_surfaced);
	counter(o, "backlog_waits_total", "Submits that blocked because the backlog was full.",
		s->backlog_waits);
	counter(o, "pool_checkouts_total", "Read connections checked out of the pool.",
		s->pool_checkouts);
	counter(o, "pool_waits_total", "Pool checkouts that had to wait for a connection.",
		s->pool_waits);
	family(o, "pool_wait_seconds_total", "counter", "Time spent waiting for a pool connection.");
	out_printf(o, "durq_pool_wait_seconds_total %.17g\n", (double)s->pool_wait_ns / 1e9);
	gauge(o, "pool_connections_in_use", "Read connections checked out now.",
	      (double)s->pool_in_use);
	gauge(o, "pool_connections", "Read connections in the pool.", (double)s->pool_size);
}

static void depth_metrics(outbuf *o, const durq_stats *s)
{
	const durq_queue_depths *d = &s->depths;
	const struct {
		const char *kind, *state;
		int64_t v;
	} q[] = {{"orch", "ready", d->orch_ready},   {"orch", "delayed", d->orch_delayed},
		 {"orch", "leased", d->orch_leased}, {"work", "ready", d->work_ready},
		 {"work", "delayed", d->work_delayed}, {"work", "leased", d->work_leased}};
	family(o, "queue_depth", "gauge",
	       "Messages (orch) and worker items (work) by state, read at the scrape.");
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		out_printf(o, "durq_queue_depth{queue_kind=\"%s\",state=\"%s\"} %lld\n", q[i].kind,
			   q[i].state, (long long)q[i].v);
	gauge(o, "dead_letters", "Items and messages in the dead letters.", (double)d->dead_letters);
	gauge(o, "instances_locked", "Orchestration instances leased now.",
	      (double)d->instances_locked);
	gauge(o, "db_bytes", "Database size in bytes (0 if the provider cannot tell).",
	      (double)s->db_bytes);
	gauge(o, "wal_bytes", "Write-ahead log size in bytes (0 if none).", (double)s->wal_bytes);
}

int durq_stats_prometheus(durq *db, char *buf, size_t len, size_t *needed)
{
	durq_stats s;
	int rc = durq_stats_get(db, &s);
	if (rc < 0)
		return rc;
	outbuf o = {buf, len, 0};
	ops_metrics(&o, &s);
	wait_metrics(&o, &s);
	depth_metrics(&o, &s);
	if (needed)
		*needed = o.used;
	if (buf && len && o.used >= len)
		return durq_error_set(DURQ_ETOOBIG, "buffer of %zu bytes too small; need %zu", len,
				      o.used + 1);
	return DURQ_OK;
}
