/*
 * watch.c — noticing commits of other connections (other processes, other hosts), so a
 * long-polling fetcher sees work it did not commit itself. Two ways, by what the provider
 * offers:
 *  - change_wait (a server's LISTEN/NOTIFY): one thread "durq-watch" blocks in it on a
 *    DURQ_CONN_WATCH connection and wakes every fetcher when it reports a change;
 *  - data_version (SQLite): a fetcher whose poll interval elapsed reads the counter on the
 *    watch connection and claims again only if it moved.
 * Without either, fetchers claim again every poll interval.
 *
 * Owns: the watch connection, its thread and its version counter (struct durq fields
 * watch*). Does not own: the fetchers' waits (api.c) or the wakeups (handle.c).
 */
#include <time.h>

#include <ck_pr.h>

#include "durq_internal.h"

static void watch_close(durq *db)
{
	if (db->watch)
		db->provider->conn_close(db->provider, db->watch);
	db->watch = NULL;
}

/* A change: the other side may have added timers or leases, and every fetcher looks. */
static void watch_changed(durq *db)
{
	durq_next_due_refresh(db);
	durq_wake(db);
}

/* After an error: wait a poll interval (or until close) and reopen the connection. */
static void watch_recover(durq *db)
{
	struct timespec ts;
	durq_deadline_to_timespec(&ts, durq_clock_mono_ns() +
					       (uint64_t)db->opts.poll_interval_ms * 1000000u);
	pthread_mutex_lock(&db->watch_mu);
	while (!db->watch_stop && pthread_cond_timedwait(&db->watch_cv, &db->watch_mu, &ts) == 0)
		;
	bool stop = db->watch_stop;
	pthread_mutex_unlock(&db->watch_mu);
	if (stop)
		return;
	durq_conn *fresh = NULL;
	if (db->provider->conn_open(db->provider, &fresh, DURQ_CONN_WATCH) < 0)
		return;
	pthread_mutex_lock(&db->watch_mu);
	durq_conn *old = db->watch;
	db->watch = fresh;
	pthread_mutex_unlock(&db->watch_mu);
	if (old)
		db->provider->conn_close(db->provider, old);
	watch_changed(db); /* we may have missed something while it was down */
}

static void *watch_main(void *arg)
{
	durq *db = arg;
	pthread_setname_np(pthread_self(), "durq-watch");
	while (!ck_pr_load_int(&db->watch_stop)) {
		int rc = db->provider->change_wait(db->watch, db->opts.poll_interval_ms);
		if (rc == DURQ_OK)
			watch_changed(db);
		else if (rc != DURQ_ETIMEDOUT)
			watch_recover(db);
	}
	return NULL;
}

static int watch_thread_start(durq *db)
{
	if (pthread_create(&db->watch_thread, NULL, watch_main, db) != 0)
		return durq_error_set(DURQ_ENOMEM, "cannot start the watch thread");
	db->watch_started = true;
	return DURQ_OK;
}

int durq_watch_start(durq *db)
{
	const durq_provider *p = db->provider;
	if (!p->change_wait && !p->data_version)
		return DURQ_OK;
	int rc = p->conn_open(db->provider, &db->watch, DURQ_CONN_WATCH);
	if (rc == DURQ_OK && p->change_wait)
		return watch_thread_start(db);
	if (rc == DURQ_OK)
		rc = p->data_version(db->watch, &db->watch_version);
	if (rc < 0)
		watch_close(db); /* fetchers then claim every poll interval */
	return DURQ_OK;
}

void durq_watch_stop(durq *db)
{
	if (db->watch_started) {
		pthread_mutex_lock(&db->watch_mu);
		ck_pr_store_int(&db->watch_stop, 1);
		pthread_cond_broadcast(&db->watch_cv);
		if (db->provider->change_cancel && db->watch)
			db->provider->change_cancel(db->watch);
		pthread_mutex_unlock(&db->watch_mu);
		pthread_join(db->watch_thread, NULL);
		db->watch_started = false;
	}
	watch_close(db);
}

bool durq_others_wrote(durq *db)
{
	uint64_t v;
	bool changed = true;
	if (db->watch_started)
		return false; /* the watch thread wakes fetchers when something changes */
	pthread_mutex_lock(&db->watch_mu);
	if (db->watch && db->provider->data_version(db->watch, &v) == DURQ_OK) {
		changed = v != db->watch_version;
		db->watch_version = v;
	}
	pthread_mutex_unlock(&db->watch_mu);
	if (changed && db->watch)
		watch_changed(db);
	return changed;
}
