/*
 * fuzz_url_options.c — libFuzzer target: durq_open with a fuzzed URL (sqlite: paths inside
 * one temp dir only, sqlite::memory:, other schemes; fuzzed query strings), fuzzed
 * durq_options and fuzzed DURQ_* environment variables. durq_open must return DURQ_OK or a
 * durq error code with a message, never crash or leak; an open handle must report options
 * inside their documented ranges, run a small workload (enqueue, fetch, ack, a turn) and
 * close with DURQ_OK. Any other outcome aborts (a finding).
 *
 * Safety: a file URL is always "sqlite:" + the temp dir + "/f" + a name without '/', so no
 * path leaves the temp dir; DURQ_MEMORY_DIR is the temp dir, a subdirectory of it, a
 * relative string (refused) or unset (/dev/shm, files removed on close). No postgresql
 * provider is built into the fuzz build: those URLs are refused without any connection.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durq.h"
#include "fuzz_input.h"

static char tmp_dir[256]; /* made once per process (libFuzzer gives no other place) */

static void die(const char *what, int rc, const char *url)
{
	fprintf(stderr, "FINDING: %s: rc %d (%s): %s\n  url: %s\n", what, rc, durq_error_name(rc),
		durq_error_last(), url);
	abort();
}

static void on_log(void *ctx, int level, const char *tag, const char *message)
{
	(void)ctx;
	if (level < DURQ_LOG_ERROR || level > DURQ_LOG_DEBUG || !tag || !message ||
	    strlen(tag) > 64)
		die("log callback got a bad level, tag or message", level, "");
}

/* Remove what the run created in the temp dir (databases, -wal, -shm), so that a long
 * run does not fill the disk. */
static void clean_dir(void)
{
	DIR *d = opendir(tmp_dir);
	struct dirent *e;
	if (!d)
		abort();
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

static void remove_dir(void)
{
	clean_dir();
	rmdir(tmp_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmp_dir, sizeof(tmp_dir), "%s/durq-fuzz-url-XXXXXX", base);
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		abort();
	}
	atexit(remove_dir);
	return 0;
}

/* ---- the URL ------------------------------------------------------------------------ */

static void file_name(fuzz_in *in, char *name, size_t max)
{
	fuzz_str(in, name, max, '_');
	for (char *c = name; *c; c++)
		if (*c == '/')
			*c = '_';
}

static void build_url(fuzz_in *in, char *url, size_t len)
{
	char name[48], query[160], other[96];
	int kind = fuzz_byte(in) % 10;
	file_name(in, name, sizeof(name) - 1);
	int has_query = fuzz_byte(in) & 1;
	fuzz_str(in, query, sizeof(query) - 1, '&');
	const char *q = has_query ? "?" : "";
	if (kind < 6) {
		snprintf(url, len, "sqlite:%s/f%s%s%s", tmp_dir, name, q, has_query ? query : "");
	} else if (kind < 8) {
		snprintf(url, len, "sqlite::memory:%s%s", q, has_query ? query : "");
	} else if (kind == 8) {
		snprintf(url, len, "%s", fuzz_byte(in) & 1 ? "" : "sqlite:"); /* no location */
	} else { /* another scheme: anything not naming sqlite (or a postgres server) */
		fuzz_str(in, other, sizeof(other) - 1, 'x');
		if (!strncmp(other, "sqlite", 6) || !strncmp(other, "postgres", 8))
			other[0] = 'x';
		snprintf(url, len, "%s", other);
	}
}

/* ---- options and environment -------------------------------------------------------- */

static const int64_t ints[] = {0, 0, 0, 1, -1, 2, 3, 4, 5, 8, 16, 20, 21, 64, 100, 1000, 65536,
			       65537, 1 << 20, (1 << 20) + 1, 3600000, INT32_MAX, INT32_MIN};

static int fuzz_int(fuzz_in *in)
{
	uint8_t b = fuzz_byte(in);
	return b < 240 ? (int)ints[b % (sizeof(ints) / sizeof(ints[0]))] : (int)fuzz_u32(in);
}

static int64_t fixed_clock(void *ctx)
{
	return *(int64_t *)ctx;
}

static void build_options(fuzz_in *in, durq_options *o, int64_t *clock_now, char *vfs,
			  size_t vfs_len)
{
	static const char *const vfs_names[] = {NULL, "unix", "unix-none", "unix-dotfile",
						"unix-excl", "no-such-vfs", "memdb"};
	memset(o, 0, sizeof(*o));
	uint8_t b = fuzz_byte(in);
	o->version = b < 250 ? DURQ_OPTIONS_VERSION : b;
	o->pool_size = fuzz_int(in);
	o->pool_timeout_ms = fuzz_int(in);
	o->max_batch = fuzz_int(in);
	o->backlog = fuzz_int(in);
	o->commit_mode = fuzz_int(in);
	o->synchronous = fuzz_int(in);
	o->busy_timeout_ms = fuzz_int(in);
	o->max_payload = (size_t)(uint32_t)fuzz_int(in);
	o->max_attempts = fuzz_int(in);
	o->poll_interval_ms = fuzz_int(in);
	o->log_level = fuzz_int(in);
	o->max_turn_entries = (size_t)(uint32_t)fuzz_int(in);
	if (fuzz_byte(in) & 1) {
		o->clock = fixed_clock;
		o->clock_ctx = clock_now;
	}
	if (fuzz_byte(in) & 1)
		o->log = on_log;
	b = fuzz_byte(in);
	if (b < 200) {
		o->sqlite_vfs = vfs_names[b % (sizeof(vfs_names) / sizeof(vfs_names[0]))];
	} else {
		fuzz_str(in, vfs, vfs_len - 1, 'x');
		o->sqlite_vfs = vfs;
	}
}

static const char *const env_names[] = {"DURQ_POOL_SIZE", "DURQ_SYNCHRONOUS", "DURQ_MAX_BATCH",
					"DURQ_GROUP_COMMIT", "DURQ_BUSY_TIMEOUT_MS",
					"DURQ_MAX_ATTEMPTS", "DURQ_MAX_TURN_ENTRIES"};
#define N_ENV (sizeof(env_names) / sizeof(env_names[0]))

static void set_env(fuzz_in *in)
{
	static const char *const values[] = {"0", "1", "5", "8", "20", "21", "-1", "off", "normal",
					     "FULL", "yes", "", "999999999999", "12abc", " 7"};
	char buf[40], dir[320];
	for (size_t i = 0; i < N_ENV; i++) {
		uint8_t b = fuzz_byte(in);
		if (b < 160)
			continue; /* unset */
		if (b < 240) {
			setenv(env_names[i], values[b % (sizeof(values) / sizeof(values[0]))], 1);
		} else {
			fuzz_str(in, buf, sizeof(buf) - 1, ' ');
			setenv(env_names[i], buf, 1);
		}
	}
	switch (fuzz_byte(in) % 4) {
	case 0: break; /* unset: /dev/shm */
	case 1: setenv("DURQ_MEMORY_DIR", tmp_dir, 1); break;
	case 2:
		snprintf(dir, sizeof(dir), "%s/missing", tmp_dir);
		setenv("DURQ_MEMORY_DIR", dir, 1);
		break;
	default:
		fuzz_str(in, buf, sizeof(buf) - 1, 'x');
		if (buf[0] == '/')
			buf[0] = 'x'; /* relative: refused, never another absolute dir */
		setenv("DURQ_MEMORY_DIR", buf, 1);
	}
}

static void clear_env(void)
{
	for (size_t i = 0; i < N_ENV; i++)
		unsetenv(env_names[i]);
	unsetenv("DURQ_MEMORY_DIR");
}

/* ---- checks ------------------------------------------------------------------------- */

static void check_code(int rc, const char *url)
{
	if (rc > 0 || rc < DURQ_ETIMEDOUT)
		die("durq_open returned no durq code", rc, url);
	if (rc < 0 && !durq_error_last()[0])
		die("an error without a message", rc, url);
}

static void check_ranges(durq *db, const char *url)
{
	durq_options o;
	int rc = durq_options_get(db, &o);
	if (rc != DURQ_OK)
		die("durq_options_get", rc, url);
	if (o.pool_size < 5 || o.pool_size > 20 || o.max_batch < 1 || o.max_batch > 65536 ||
	    o.backlog < 4 || o.backlog > (1 << 20) || (o.backlog & (o.backlog - 1)) ||
	    (o.commit_mode != DURQ_COMMIT_GROUP && o.commit_mode != DURQ_COMMIT_PER_OP) ||
	    o.synchronous < DURQ_SYNC_OFF || o.synchronous > DURQ_SYNC_FULL ||
	    o.max_attempts < 1 || o.poll_interval_ms < 1 || o.max_payload < 1 ||
	    o.max_turn_entries < 1 || o.max_turn_entries > DURQ_MAX_TURN_ENTRIES_LIMIT)
		die("an open handle reports an option out of its documented range", 0, url);
}

/*
 * durq_options_get returns "the effective options"; a URL parameter overrides the option
 * of the same meaning, so the two must agree with what SQLite runs with (this found the
 * handle reporting its options before the URL's overrides; fixed with durq_provider.settings).
 */
static void check_url_overrides(durq *db, const char *url)
{
	durq_options o;
	char sync[32], busy[32];
	if (durq_options_get(db, &o) != DURQ_OK ||
	    durq_pragma_get(db, sync, sizeof(sync), "synchronous") != DURQ_OK ||
	    durq_pragma_get(db, busy, sizeof(busy), "busy_timeout") != DURQ_OK)
		die("options or PRAGMAs unreadable", 0, url);
	if (atoi(sync) + 1 != o.synchronous || atoi(busy) != o.busy_timeout_ms)
		die("durq_options_get disagrees with the PRAGMAs in effect (synchronous, "
		    "busy_timeout)", o.synchronous, url);
}

/* A handle that opened works: enqueue, fetch, ack, a turn, close. */
static void workload(durq *db, const char *url)
{
	durq_options o;
	durq_options_get(db, &o);
	size_t plen = o.max_payload < 4 ? o.max_payload : 4;
	durq_work w = {.queue = "q", .payload = "abcd", .payload_len = plen};
	int rc = durq_work_enqueue(db, &w, 1);
	if (rc != DURQ_OK)
		die("enqueue on a handle that opened", rc, url);
	durq_work_item *it = NULL;
	size_t n = 0;
	if ((rc = durq_work_fetch(db, &it, &n, "q", 4, 60000, 0)) != DURQ_OK || n != 1 ||
	    it[0].payload_len != plen)
		die("fetch of the item just enqueued", rc, url);
	if ((rc = durq_work_ack(db, it[0].id, &it[0].token, NULL)) != DURQ_OK)
		die("ack of the item just fetched", rc, url);
	durq_work_items_free(it, n);
	durq_message m = {.instance_id = "i", .payload = "s", .payload_len = plen ? 1 : 0};
	durq_turn *t = NULL;
	if ((rc = durq_orch_enqueue(db, &m, 1)) != DURQ_OK ||
	    (rc = durq_orch_fetch(db, &t, 60000, 0)) != DURQ_OK)
		die("orchestration enqueue + fetch", rc, url);
	durq_turn_result r = DURQ_TURN_RESULT_INIT;
	if ((rc = durq_orch_ack(db, t->instance_id, &t->token, &r)) != DURQ_OK)
		die("orchestration ack", rc, url);
	durq_turn_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_in in = {data, size};
	char url[512], vfs[64];
	int64_t clock_now = 1700000000000LL;
	durq_options o;
	build_url(&in, url, sizeof(url));
	build_options(&in, &o, &clock_now, vfs, sizeof(vfs));
	set_env(&in);
	int null_opts = fuzz_byte(&in) == 0xff;
	durq *db = NULL;
	int rc = durq_open(&db, url, null_opts ? NULL : &o);
	clear_env();
	if (getenv("DURQ_FUZZ_VERBOSE")) /* to see what an input decodes to */
		fprintf(stderr, "durq_open(\"%s\", %s) = %s %s\n", url, null_opts ? "NULL" : "opts",
			durq_error_name(rc), durq_error_last());
	check_code(rc, url);
	if (rc == DURQ_OK) {
		check_ranges(db, url);
		check_url_overrides(db, url);
		workload(db, url);
		if ((rc = durq_close(db)) != DURQ_OK)
			die("close", rc, url);
	} else if (db) {
		die("a failed durq_open left *out set", rc, url);
	}
	durq_free(db);
	clean_dir();
	return 0;
}
