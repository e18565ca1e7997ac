/*
 * publish.c — each handle's counters, published into the database so that a tool in
 * another process (`durq top`, durq_handle_stats_list) sees every process's ops, commits,
 * pool waits and latency histograms, not only its own handle's.
 *
 * Owns: when a handle publishes (on a write call, at most once per stats_publish_ms, never
 * while it makes no write calls, never the same counters twice), the publication op
 * (DURQ_OP_HANDLE_STATS, applied by the provider like any write) and how it rides with the
 * write that triggered it (posted to the committer just ahead of it, or applied in that
 * write's own transaction), the text the counters are stored as and its decoding, and the
 * row's removal at close. A handle's identity: a random key, pid, host, start time.
 * Does not own: SQL (the providers' handle_stats hooks), the committer, the counters
 * themselves (stats.c).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <ck_pr.h>

#include "durq_internal.h"

#define TEXT_MAX 2048 /* 8 counters and 2 histograms of 17 buckets: ~1 KiB at most */

struct durq_publisher {
	int64_t interval_ms;
	_Atomic uint64_t next_ns;  /* monotonic time of the next publication */
	atomic_int busy;           /* a publication is in flight; it owns text */
	atomic_int published;      /* a row of ours may exist */
	atomic_int warned;         /* a failure was logged */
	int64_t pid;
	int64_t started_ms;
	char key[33];
	char host[256];
	char text[TEXT_MAX];       /* the publication in flight */
	char last[TEXT_MAX];       /* the last one committed */
};

/* A provider that keeps the table, and a database another process can open. */
static bool supported(const durq *db)
{
	const struct durq_provider_admin *a = db->provider->admin;
	if (!a || a->version < 2 || !a->handle_stats)
		return false;
	return !(db->provider->flags & DURQ_PROVIDER_VOLATILE);
}

static void random_key(char out[33])
{
	unsigned char b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		uint64_t x = durq_clock_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)out;
		for (int i = 0; i < 16; i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
			b[i] = (unsigned char)(x >> 56);
	}
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

void durq_publish_init(durq *db)
{
	if (db->opts.stats_publish_ms <= 0 || !supported(db))
		return;
	struct durq_publisher *p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->interval_ms = db->opts.stats_publish_ms;
	p->pid = getpid();
	p->started_ms = durq_clock_wall_ms(NULL);
	if (gethostname(p->host, sizeof(p->host) - 1) != 0 || !p->host[0])
		snprintf(p->host, sizeof(p->host), "?");
	random_key(p->key);
	atomic_store(&p->next_ns, durq_clock_mono_ns() + (uint64_t)p->interval_ms * 1000000u);
	db->publisher = p;
}

void durq_publish_free(durq *db)
{
	free(db->publisher);
	db->publisher = NULL;
}

/* ---- the counters as text ------------------------------------------------------------- */

/* "v=1 ops=N failures=N txns=N txn_ops=N busy_retries=N pool_checkouts=N pool_waits=N
 * pool_wait_ns=N commit=SUM_NS:B0,...,B16 ack=SUM_NS:B0,...,B16": key=value pairs, keys a
 * reader does not know are skipped, a missing one reads 0 (docs/OPERATIONS.md). */
static size_t put(char *out, size_t cap, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static size_t put(char *out, size_t cap, size_t at, const char *fmt, ...)
{
	if (at >= cap)
		return at;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + at, cap - at, fmt, ap);
	va_end(ap);
	return n < 0 ? at : at + (size_t)n;
}

static size_t put_hist(char *out, size_t cap, size_t at, const char *name,
		       const durq_latency *l)
{
	at = put(out, cap, at, " %s=%llu:", name, (unsigned long long)l->sum_ns);
	for (int i = 0; i < DURQ_LATENCY_BUCKETS; i++)
		at = put(out, cap, at, "%s%llu", i ? "," : "", (unsigned long long)l->buckets[i]);
	return at;
}

static void encode(char *out, size_t cap, const durq_stats *st)
{
	uint64_t ops = 0;
	for (int i = 0; i < DURQ_OP__COUNT; i++)
		ops += st->ops[i];
	durq_latency ack = st->work_ack_latency;
	ack.sum_ns += st->orch_ack_latency.sum_ns;
	for (int i = 0; i < DURQ_LATENCY_BUCKETS; i++)
		ack.buckets[i] += st->orch_ack_latency.buckets[i];
	size_t at = put(out, cap, 0,
			"v=1 ops=%llu failures=%llu txns=%llu txn_ops=%llu busy_retries=%llu "
			"pool_checkouts=%llu pool_waits=%llu pool_wait_ns=%llu",
			(unsigned long long)ops, (unsigned long long)st->op_failures,
			(unsigned long long)st->transactions, (unsigned long long)st->txn_ops,
			(unsigned long long)st->busy_retries,
			(unsigned long long)st->pool_checkouts, (unsigned long long)st->pool_waits,
			(unsigned long long)st->pool_wait_ns);
	at = put_hist(out, cap, at, "commit", &st->commit_latency);
	put_hist(out, cap, at, "ack", &ack);
}

static void decode_hist(const char *v, durq_latency *l)
{
	char *end;
	memset(l, 0, sizeof(*l));
	l->sum_ns = strtoull(v, &end, 10);
	for (int i = 0; i < DURQ_LATENCY_BUCKETS && (*end == ':' || *end == ','); i++) {
		l->buckets[i] = strtoull(end + 1, &end, 10);
		l->count += l->buckets[i];
	}
}

int durq_publish_decode(const char *text, size_t len, durq_handle_stats *out)
{
	char buf[TEXT_MAX], *save = NULL;
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	static const struct {
		const char *name;
		size_t off;
	} scalars[] = {
		{"ops", offsetof(durq_handle_stats, ops)},
		{"failures", offsetof(durq_handle_stats, op_failures)},
		{"txns", offsetof(durq_handle_stats, transactions)},
		{"txn_ops", offsetof(durq_handle_stats, txn_ops)},
		{"busy_retries", offsetof(durq_handle_stats, busy_retries)},
		{"pool_checkouts", offsetof(durq_handle_stats, pool_checkouts)},
		{"pool_waits", offsetof(durq_handle_stats, pool_waits)},
		{"pool_wait_ns", offsetof(durq_handle_stats, pool_wait_ns)},
	};
	for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq)
			continue;
		*eq = '\0';
		const char *v = eq + 1;
		if (!strcmp(tok, "commit")) {
			decode_hist(v, &out->commit_latency);
			continue;
		}
		if (!strcmp(tok, "ack")) {
			decode_hist(v, &out->ack_latency);
			continue;
		}
		for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
			if (!strcmp(tok, scalars[i].name))
				*(uint64_t *)((char *)out + scalars[i].off) = strtoull(v, NULL, 10);
	}
	return DURQ_OK;
}

/* ---- when, and how it rides ---------------------------------------------------------- */

bool durq_publish_take(durq *db, durq_op *op, bool with_claims)
{
	struct durq_publisher *p = db->publisher;
	/* closing: its row is deleted, none may come back (a completion callback's write) */
	if (!p || ck_pr_load_int(&db->closed))
		return false;
	uint64_t now = durq_clock_mono_ns(), next = atomic_load(&p->next_ns);
	if (now < next)
		return false;
	/* one caller per interval wins; it publishes unless one is still in flight */
	if (!atomic_compare_exchange_strong(&p->next_ns, &next,
					    now + (uint64_t)p->interval_ms * 1000000u))
		return false;
	int idle = 0;
	if (!atomic_compare_exchange_strong(&p->busy, &idle, 1))
		return false;
	durq_stats st;
	durq_stats_snapshot(&db->counters, &st);
	encode(p->text, sizeof(p->text), &st);
	if (!strcmp(p->text, p->last)) { /* nothing happened since the last one */
		atomic_store(&p->busy, 0);
		return false;
	}
	*op = (durq_op){.kind = DURQ_OP_HANDLE_STATS,
			.u.handle_stats = {.key = p->key,
					   .host = p->host,
					   .pid = p->pid,
					   .started_ms = p->started_ms,
					   .updated_ms = durq_clock_wall_ms(NULL),
					   .interval_ms = p->interval_ms,
					   .counters = p->text,
					   .with_claims = with_claims}};
	return true;
}

void durq_publish_done(durq *db, int rc, const char *msg)
{
	struct durq_publisher *p = db->publisher;
	if (rc == DURQ_OK) {
		memcpy(p->last, p->text, sizeof(p->last));
		atomic_store(&p->published, 1);
	} else if (rc != DURQ_EAGAIN && !atomic_exchange(&p->warned, 1)) {
		durq_log_emit(&db->opts, DURQ_LOG_WARN, "STATS", "stats publication failed: %s: %s "
			      "(tried again every %lld ms; logged once)", durq_error_name(rc),
			      msg ? msg : "", (long long)p->interval_ms);
	}
	atomic_store(&p->busy, 0);
}

static void posted_done(void *ctx, const durq_completion *c)
{
	durq_publish_done(ctx, c->rc, c->message);
}

void durq_publish_post(durq *db, bool with_claims)
{
	durq_op op;
	if (db->opts.commit_mode != DURQ_COMMIT_GROUP || !durq_publish_take(db, &op, with_claims))
		return;
	/* never waits for backlog space: a full backlog skips this interval's publication */
	durq_async how = {.done = posted_done, .ctx = db, .flags = DURQ_SUBMIT_NOWAIT};
	char saved[DURQ_ERRMSG_MAX];
	durq_error_copy(saved, sizeof(saved));
	int rc = durq_exec_async(db, &op, &how);
	if (rc < 0) {
		durq_publish_done(db, rc, durq_error_last());
		durq_error_set(DURQ_OK, "%s", saved); /* the caller's call is not about this */
	}
}

int durq_publish_apply(durq *db, durq_conn *conn, const durq_op_ctx *ctx, bool with_claims)
{
	durq_op op;
	if (!durq_publish_take(db, &op, with_claims))
		return 0;
	int rc = db->provider->op_begin(conn);
	if (rc == DURQ_OK) {
		rc = db->provider->op_apply(conn, &op, ctx);
		int erc = db->provider->op_end(conn, rc >= 0);
		if (rc >= 0)
			rc = erc;
	}
	if (rc < 0) {
		durq_publish_done(db, rc, durq_error_last());
		return 0;
	}
	return 1;
}

void durq_publish_remove(durq *db)
{
	struct durq_publisher *p = db->publisher;
	/* in flight: its upsert is queued ahead of this delete, which undoes it */
	if (!p || (!atomic_load(&p->published) && !atomic_load(&p->busy)))
		return;
	durq_op op = {.kind = DURQ_OP_HANDLE_STATS,
		      .u.handle_stats = {.key = p->key, .host = p->host, .pid = p->pid,
					 .started_ms = p->started_ms,
					 .updated_ms = durq_clock_wall_ms(NULL),
					 .interval_ms = p->interval_ms}};
	int rc = durq_exec(db, &op);
	if (rc < 0)
		durq_log_emit(&db->opts, DURQ_LOG_INFO, "STATS", "could not delete this handle's "
			      "stats row at close (%s: %s); readers ignore it after %lld ms",
			      durq_error_name(rc), durq_error_last(), (long long)(3 * p->interval_ms));
}
