/*
 * conf_factory.h — the shared fixture of the durq conformance suite.
 *
 * Owns: mapping DURQ_TEST_PROVIDER to a URL, one fresh isolated handle per test (fresh temp
 * dir for file providers, a fresh database on the fixture's server for postgresql; removed at
 * teardown), the injectable clock, and small helpers that keep the tests short. Does not own: any rule of the contract (those live in conf_<cat>.c).
 *
 * Only include/durq.h is used: the suite is written once against the public API and runs
 * unchanged against every provider (see CMakeLists.txt, DURQ_CONFORMANCE_PROVIDERS).
 *
 * Helpers named conf_* that take a conf_ctx assert with cmocka and so must only be called on
 * the main (test) thread; threaded tests call the durq API directly and assert after joining.
 */
#ifndef CONF_FACTORY_H
#define CONF_FACTORY_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <string.h>

#include <durq.h>

#define CONF_T0 INT64_C(1700000000000) /* injected clock start, ms */
#define CONF_LEASE 30000               /* default lease used by the tests, ms */
/* A timeout no correct run comes near (10 min, above every CTest TIMEOUT): a fetch that must be
 * woken waits this long, so the only way it returns is the wakeup under test, however slow
 * the machine; a missed wakeup fails as a test timeout, never as a flaky latency assert. */
#define CONF_NEVER_MS 600000

typedef struct conf_opts {
	int max_attempts;     /* 0 = library default */
	int commit_mode;      /* enum durq_commit_mode */
	int wall_clock;       /* 1 = no injected clock (long-poll timer tests only) */
	size_t max_payload;   /* 0 = library default */
	int pool_size;        /* 0 = library default */
	int poll_interval_ms; /* 0 = library default; CONF_NEVER_MS: no fallback poll in a test */
	int poison_policy;    /* durq_options.poison_policy (0 = dead-letter) */
	int poison_notify_kind;
} conf_opts;

typedef struct conf_ctx {
	durq *db;
	const char *provider;   /* value of DURQ_TEST_PROVIDER */
	int durable;            /* 1 if data survives close/reopen (sqlite-file, postgresql) */
	char dir[512];          /* temp dir ("" for memory) */
	char url[600];
	char pg_db[64];         /* postgresql: the schema made for this context ("" if none) */
	char pg_server[600];    /* postgresql: URL of the fixture's server (creates/drops pg_db) */
	_Atomic int64_t now;    /* injected clock, ms */
	_Atomic int64_t tick;   /* if > 0, each clock read advances the clock by tick ms */
	_Atomic int64_t reads;  /* number of clock reads */
	conf_opts copts;
	durq_options opts;
	struct conf_ctx *next;  /* registry of open contexts, cleaned at group teardown */
} conf_ctx;

/* cmocka fixtures: *state is a conf_ctx* with default options. */
int conf_setup(void **state);
int conf_teardown(void **state);
int conf_group_setup(void **state);    /* validates DURQ_TEST_PROVIDER, fails loudly */
int conf_group_teardown(void **state); /* closes contexts leaked by failed tests */

/* Open a fresh context (asserting); conf_use replaces the fixture's ctx in *state. */
conf_ctx *conf_open_opts(const conf_opts *o);
int conf_open(conf_ctx **out);
conf_ctx *conf_use(void **state, const conf_opts *o);
void conf_close(conf_ctx *c);
/* Close the handle and open the same URL again (same options and clock). Returns durq_open's
 * code. For sqlite-memory the reopened database is a new, empty one. */
int conf_reopen(conf_ctx *c);
/* A second, independent handle on the same URL with the same options and clock (file
 * providers and postgresql: two "processes" sharing one database). Caller frees it with
 * durq_free. */
int conf_open_second(conf_ctx *c, durq **out);

/* Injected clock. conf_advance also calls durq_wake. */
void conf_advance(conf_ctx *c, int64_t ms);
int64_t conf_time(conf_ctx *c);

/* ---- helpers (main thread only) ---- */

/* Enqueue one orchestrator message with a string payload. */
int conf_msg(conf_ctx *c, const char *inst, int kind, const char *payload);
int conf_msg_at(conf_ctx *c, const char *inst, int kind, const char *payload, int64_t visible_at,
		int64_t delay_ms);
/* Enqueue one work item with a string payload. */
int conf_work(conf_ctx *c, const char *queue, const char *payload, int priority,
	      int64_t delay_ms);
int conf_activity(conf_ctx *c, const char *inst, uint64_t exec, uint64_t act,
		  const char *payload);

/* Fetch with timeout 0; lease CONF_LEASE unless given. */
int conf_fetch1(conf_ctx *c, durq_work_item **it, const char *queue, int64_t lease_ms);
int conf_turn(conf_ctx *c, durq_turn **t, int64_t lease_ms);

/* Assert nothing is fetchable right now. */
void conf_assert_no_turn(conf_ctx *c);
void conf_assert_no_work(conf_ctx *c, const char *queue);

/* Enqueue a start message for inst, fetch its turn and ack it with one history event
 * (event_id 1, payload "start"), name "wf", version "v1": the instance then exists with
 * execution 1 and status RUNNING. Asserts every step. */
void conf_create_instance(conf_ctx *c, const char *inst);

/* Fetch the (only) ready turn and assert it is for inst. */
durq_turn *conf_turn_for(conf_ctx *c, const char *inst);

/* Ack turn t with a result that only appends one history event. */
int conf_ack_event(conf_ctx *c, durq_turn *t, uint64_t event_id, const char *payload);

/* Read history of inst/exec; asserts OK; returns n and the events (free with durq_events_free). */
size_t conf_history(conf_ctx *c, const char *inst, uint64_t exec, durq_event **ev);

/* Instance status, or -1 if durq_instance_get says ENOTFOUND (asserts other codes fail). */
int conf_status(conf_ctx *c, const char *inst);

/* Number of dead letters (asserts OK). */
size_t conf_dead_count(conf_ctx *c);

/* Payload comparisons. */
int conf_bytes_eq(const void *p, size_t n, const char *s);
#define assert_payload(p, n, s) assert_true(conf_bytes_eq((p), (n), (s)))

/* Fill a durq_event / durq_work / durq_message from strings. */
durq_event conf_ev(uint64_t id, const char *payload);
durq_message conf_m(const char *inst, int kind, const char *payload);
durq_work conf_w(const char *queue, const char *payload);

/* Elapsed real time (long-poll tests only: to check a wait lasted at least its timeout). */
int64_t conf_mono_ms(void);

/* Block until db's stats count at least n ops of kind (e.g. DURQ_OP_WORK_CLAIM: a fetcher
 * made its first claim, so it is waiting or about to, and a later commit must wake it), or
 * *stop becomes nonzero. Yields, never sleeps; no cmocka asserts (any thread). Returns 1 if
 * the count was reached. */
int conf_wait_ops(durq *db, int kind, uint64_t n, const _Atomic int *stop);

/* A token nobody issued. */
durq_token conf_forged_token(void);

#endif /* CONF_FACTORY_H */
