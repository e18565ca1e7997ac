/*
 * test_disk_full.c — a real full disk (issue 11, item 3): a 2 MiB tmpfs mounted on a temp
 * dir (needs root, as CI runs; if the mount fails the test fails, naming why), half taken by
 * a filler file made first. durq enqueues until the file system is full and must then return
 * DURQ_EFULL — never OK for an item that is not stored, never a crash. Then: integrity_check
 * ok, every OK'd item stored once and the refused one not at all; the filler is deleted and
 * the same handle enqueues, fetches and acks again; after close and reopen the file holds
 * exactly the OK'd items minus the acked ones. Three runs: a file in group and in per-op
 * commit mode, and the in-memory provider (DURQ_MEMORY_DIR on the small tmpfs: /dev/shm
 * filling up is its disk-full).
 *
 * The process unshares its mount namespace first, so a mount it leaves behind (killed
 * mid-test) vanishes with it; teardown unmounts in any case, also after a failed test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

#include "unit/unit_util.h"

#define FS_SIZE "2m"
#define FILLER_BYTES (1024 * 1024)
#define PAYLOAD_BYTES 1000
#define MAX_ITEMS 100000 /* far more than fit: the loop must end with DURQ_EFULL */

typedef struct fixture {
	char *dir;         /* the tmpfs mount point */
	int mounted;
	char db_path[600];
	char filler[600];
	durq *db;
	unsigned char *ok; /* ok[i]: item i is stored (its enqueue returned OK, not acked) */
	int n;             /* items tried */
} fixture;

static int teardown(void **state)
{
	fixture *f = *state;
	if (!f)
		return 0;
	durq_free(f->db);
	int rc = 0;
	if (f->mounted && umount2(f->dir, MNT_DETACH) != 0) {
		fprintf(stderr, "cannot unmount %s: %s\n", f->dir, strerror(errno));
		rc = -1;
	}
	unsetenv("DURQ_MEMORY_DIR");
	test_rmdir(f->dir);
	free(f->ok);
	free(f);
	return rc;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	if (!f || !(f->dir = test_tmpdir()) || !(f->ok = calloc(MAX_ITEMS + 16, 1)))
		return -1;
	*state = f;
	if (mount("tmpfs", f->dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=" FS_SIZE ",mode=0700")) {
		fprintf(stderr, "FAIL: cannot mount a %s tmpfs on %s: %s (this test needs root; CI "
			"runs as root)\n", FS_SIZE, f->dir, strerror(errno));
		teardown(state); /* cmocka runs no teardown after a failed setup */
		*state = NULL;
		return -1;
	}
	f->mounted = 1;
	snprintf(f->db_path, sizeof(f->db_path), "%s/q.db", f->dir);
	snprintf(f->filler, sizeof(f->filler), "%s/filler", f->dir);
	return 0;
}

/* A file of real blocks (not sparse) taking half the file system. */
static void make_filler(const fixture *f)
{
	static char block[64 * 1024];
	memset(block, 0x5a, sizeof(block));
	int fd = open(f->filler, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	for (size_t done = 0; done < FILLER_BYTES; done += sizeof(block))
		assert_int_equal(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
	assert_int_equal(fsync(fd), 0);
	close(fd);
}

static void payload_of(int i, char *buf)
{
	memset(buf, 'x', PAYLOAD_BYTES);
	int len = snprintf(buf, PAYLOAD_BYTES, "item-%06d", i);
	buf[len] = '.';
}

static int item_of(const void *p, size_t len)
{
	int i;
	if (len != PAYLOAD_BYTES || sscanf(p, "item-%06d", &i) != 1 || i < 0 || i > MAX_ITEMS)
		return -1;
	return i;
}

static int enqueue(fixture *f, int i)
{
	char p[PAYLOAD_BYTES];
	payload_of(i, p);
	durq_work w = {.queue = "q", .payload = p, .payload_len = PAYLOAD_BYTES};
	int rc = durq_work_enqueue(f->db, &w, 1);
	if (rc == DURQ_OK)
		f->ok[i] = 1;
	return rc;
}

/* Enqueue until the file system is full: the refusal is DURQ_EFULL and stores nothing. */
static void fill(fixture *f)
{
	int rc = DURQ_OK;
	while (rc == DURQ_OK && f->n < MAX_ITEMS)
		rc = enqueue(f, f->n++);
	if (rc != DURQ_EFULL)
		fail_msg("after %d enqueues: %s (%s), want DURQ_EFULL", f->n, durq_error_name(rc),
			 durq_error_last());
	printf("full after %d OK'd enqueues: %s\n", f->n - 1, durq_error_last());
	assert_non_null(strstr(durq_error_last(), "full"));
	assert_int_equal(enqueue(f, f->n++), DURQ_EFULL); /* still full: still refused */
	/* a claim is a write too: refused alike, the items stay unleased */
	durq_work_item *it = NULL;
	size_t n = 0;
	int rc2 = durq_work_fetch(f->db, &it, &n, "q", 4, 60000, 0);
	durq_work_items_free(it, n);
	if (rc2 != DURQ_EFULL)
		fail_msg("fetch on a full disk: %s (%s), want DURQ_EFULL", durq_error_name(rc2),
			 durq_error_last());
}

/* The file's items are exactly the model's, its integrity_check is ok. */
static void check_file(const fixture *f)
{
	sqlite3 *s;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open_v2(f->db_path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	unsigned char *seen = calloc(MAX_ITEMS + 16, 1);
	assert_non_null(seen);
	assert_int_equal(sqlite3_prepare_v2(s, "SELECT payload FROM work_queue", -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int i = item_of(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
		if (i < 0 || seen[i] || !f->ok[i])
			fail_msg("item %d in the file: %s", i, i < 0 ? "never enqueued" : seen[i] ?
				 "stored twice" : "its enqueue was refused (or it was acked)");
		seen[i] = 1;
	}
	sqlite3_finalize(st);
	sqlite3_close(s);
	for (int i = 0; i < f->n; i++)
		if (f->ok[i] && !seen[i])
			fail_msg("item %d: its enqueue returned OK, it is not in the file", i);
	free(seen);
}

/* Through the handle: fetch k items and ack them in one durq_work_ack_many. */
static void fetch_ack(fixture *f, size_t k)
{
	durq_work_item *it;
	durq_work_ack_req req[512];
	int rcs[512];
	size_t n;
	assert_true(k <= 512);
	assert_int_equal(durq_work_fetch(f->db, &it, &n, "q", k, 60000, 0), DURQ_OK);
	assert_int_equal(n, k);
	for (size_t j = 0; j < n; j++) {
		int i = item_of(it[j].payload, it[j].payload_len);
		assert_true(i >= 0 && f->ok[i]);
		req[j] = (durq_work_ack_req){it[j].id, &it[j].token, NULL};
	}
	int rc = durq_work_ack_many(f->db, req, n, rcs);
	if (rc != DURQ_OK)
		fail_msg("ack of %zu items: %s: %s", n, durq_error_name(rc), durq_error_last());
	for (size_t j = 0; j < n; j++)
		f->ok[item_of(it[j].payload, it[j].payload_len)] = 0;
	durq_work_items_free(it, n);
}

static void check_depth(const fixture *f)
{
	durq_queue_depths d;
	int64_t want = 0;
	for (int i = 0; i < f->n; i++)
		want += f->ok[i];
	assert_int_equal(durq_queue_depths_get(f->db, &d, "q"), DURQ_OK);
	assert_int_equal(d.work_ready + d.work_leased, want);
}

/* Free space, then the same handle works: enqueue, fetch, ack. */
static void recover(fixture *f)
{
	assert_int_equal(unlink(f->filler), 0);
	assert_int_equal(enqueue(f, f->n++), DURQ_OK);
	assert_int_equal(enqueue(f, f->n++), DURQ_OK);
	fetch_ack(f, 10);
	check_depth(f);
	printf("after freeing space: 2 enqueues, 10 fetches and acks OK on the same handle\n");
}

static void open_file(fixture *f, int mode)
{
	char url[700];
	durq_options o = DURQ_OPTIONS_INIT;
	o.commit_mode = mode;
	snprintf(url, sizeof(url), "sqlite:%s", f->db_path);
	assert_int_equal(durq_open(&f->db, url, &o), DURQ_OK);
}

static void run_file(void **state, int mode)
{
	fixture *f = *state;
	make_filler(f);
	open_file(f, mode);
	fill(f);
	check_depth(f);
	check_file(f);
	recover(f);
	check_file(f);
	assert_int_equal(durq_close(f->db), DURQ_OK); /* checkpoint into the freed space */
	durq_free(f->db);
	f->db = NULL;
	check_file(f);
	open_file(f, mode);
	check_depth(f);
	fetch_ack(f, 5);
	assert_int_equal(enqueue(f, f->n++), DURQ_OK);
	check_depth(f);
	assert_int_equal(durq_close(f->db), DURQ_OK);
	check_file(f);
}

static void test_file_group(void **state)
{
	run_file(state, DURQ_COMMIT_GROUP);
}

static void test_file_per_op(void **state)
{
	run_file(state, DURQ_COMMIT_PER_OP);
}

/* sqlite::memory: on the small tmpfs: the handle is the only view of its rows. */
static void test_memory(void **state)
{
	fixture *f = *state;
	make_filler(f);
	assert_int_equal(setenv("DURQ_MEMORY_DIR", f->dir, 1), 0);
	assert_int_equal(durq_open(&f->db, "sqlite::memory:", NULL), DURQ_OK);
	fill(f);
	check_depth(f);
	recover(f);
	int left = 0;
	for (int i = 0; i < f->n; i++)
		left += f->ok[i];
	while (left > 0) { /* every OK'd item comes back once, none other */
		size_t k = left > 512 ? 512 : (size_t)left;
		fetch_ack(f, k);
		left -= (int)k;
	}
	check_depth(f);
}

int main(void)
{
	/* A private mount namespace: our mounts cannot outlive the process. Without it (not
	 * root) the mount in setup fails and says why. */
	if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		fprintf(stderr, "note: cannot make / private in the new namespace: %s\n",
			strerror(errno));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_per_op, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
