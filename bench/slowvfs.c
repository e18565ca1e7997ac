/*
 * slowvfs.c — a wrapper VFS around the default (unix) VFS that adds a fixed delay to every
 * xSync, to model a slower disk (--sync-latency-us). Registered under its own name, never
 * as the default; durq gets it through options.sqlite_vfs, the ceiling through
 * sqlite3_open_v2.
 *
 * Every method forwards to the real VFS / file; only xSync sleeps first. The io_methods
 * version is the real file's, so WAL (xShm*) and mmap (xFetch) keep working.
 * A second registration, "durq-bench-count", is the same wrapper without the delay: the
 * bench opens the in-memory rows through it so that their xSync calls are counted too.
 * Owns: the registered sqlite3_vfs structs and their counters. Does not own: the real VFS.
 */
#include "slowvfs.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define SLOWVFS_NAME "durq-bench-slowsync"
#define COUNTVFS_NAME "durq-bench-count"
#define WAL_HEADER_BYTES 32 /* frames start after it */

typedef struct slow_file {
	sqlite3_file base;  /* pMethods = &slow_io (or NULL if the real open failed) */
	sqlite3_file *real; /* allocated right after this struct */
	int slow;           /* opened through the slow VFS: xSync sleeps */
	int main_db;        /* the database file (not the WAL or a journal) */
	int wal;            /* a write-ahead log */
	atomic_int frames;  /* WAL: frames written since its last xSync (atomic: durq's flush
			     * thread syncs the WAL while the committer writes the next frames) */
} slow_file;

static sqlite3_vfs slow_vfs, count_vfs;
static sqlite3_vfs *real_vfs;
static long slow_us;    /* read by xSync of every slow file; set before they open */
static atomic_long syncs;
static atomic_long db_syncs;
static atomic_long commit_syncs;
static atomic_long fail_syncs;
static atomic_long fail_writes;

/* Take one injected fault if any are left. */
static int take(atomic_long *left)
{
	long n = atomic_load(left);
	while (n > 0 && !atomic_compare_exchange_weak(left, &n, n - 1))
		;
	return n > 0;
}

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

#define REAL(f) (((slow_file *)(f))->real)

static int s_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int s_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int s_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	if (take(&fail_writes))
		return SQLITE_FULL;
	if (((slow_file *)f)->wal && o >= WAL_HEADER_BYTES)
		atomic_store(&((slow_file *)f)->frames, 1);
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int s_truncate(sqlite3_file *f, sqlite3_int64 sz)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), sz);
}
static int s_sync(sqlite3_file *f, int flags)
{
	atomic_fetch_add(&syncs, 1);
	slow_file *sf = (slow_file *)f;
	if (sf->main_db)
		atomic_fetch_add(&db_syncs, 1);
	if (sf->wal && atomic_exchange(&sf->frames, 0)) { /* a commit's frames, not a
							   * checkpoint or a new header */
		atomic_fetch_add(&commit_syncs, 1);
	}
	if (take(&fail_syncs))
		return SQLITE_IOERR_FSYNC;
	if (slow_us > 0 && ((slow_file *)f)->slow)
		sleep_us(slow_us); /* the simulated device latency */
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int s_filesize(sqlite3_file *f, sqlite3_int64 *sz)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), sz);
}
static int s_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int s_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int s_check(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int s_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int s_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int s_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int s_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int s_shmlock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void s_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int s_shmunmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int s_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp);
}
static int s_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static sqlite3_io_methods slow_io = {
	3,	   s_close,	s_read,	    s_write,	 s_truncate,  s_sync,	   s_filesize,
	s_lock,	   s_unlock,	s_check,    s_fcntl,	 s_sector,    s_devchar,   s_shmmap,
	s_shmlock, s_shmbarrier, s_shmunmap, s_fetch,	 s_unfetch,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	slow_file *sf = (slow_file *)f;
	sf->slow = vfs == &slow_vfs;
	sf->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
	sf->wal = (flags & SQLITE_OPEN_WAL) != 0;
	atomic_init(&sf->frames, 0);
	sf->real = (sqlite3_file *)(sf + 1);
	memset(sf->real, 0, (size_t)real_vfs->szOsFile);
	int rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out);
	/* The unix VFS gives every file version-3 methods; a file with fewer would lack the
	 * xShm and xFetch entries slow_io forwards to, so it is refused rather than crashed. */
	if (!sf->real->pMethods) {
		sf->base.pMethods = NULL;
		return rc;
	}
	if (sf->real->pMethods->iVersion < 3) {
		sf->real->pMethods->xClose(sf->real);
		sf->base.pMethods = NULL;
		return SQLITE_CANTOPEN;
	}
	sf->base.pMethods = &slow_io;
	return rc;
}
static int v_delete(sqlite3_vfs *v, const char *n, int sync)
{
	(void)v;
	return real_vfs->xDelete(real_vfs, n, sync);
}
static int v_access(sqlite3_vfs *v, const char *n, int flags, int *out)
{
	(void)v;
	return real_vfs->xAccess(real_vfs, n, flags, out);
}
static int v_fullpath(sqlite3_vfs *v, const char *n, int len, char *out)
{
	(void)v;
	return real_vfs->xFullPathname(real_vfs, n, len, out);
}
static void *v_dlopen(sqlite3_vfs *v, const char *n)
{
	(void)v;
	return real_vfs->xDlOpen(real_vfs, n);
}
static void v_dlerror(sqlite3_vfs *v, int n, char *msg)
{
	(void)v;
	real_vfs->xDlError(real_vfs, n, msg);
}
static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *s))(void)
{
	(void)v;
	return real_vfs->xDlSym(real_vfs, h, s);
}
static void v_dlclose(sqlite3_vfs *v, void *h)
{
	(void)v;
	real_vfs->xDlClose(real_vfs, h);
}
static int v_random(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return real_vfs->xRandomness(real_vfs, n, out);
}
static int v_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return real_vfs->xSleep(real_vfs, us);
}
static int v_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return real_vfs->xCurrentTime(real_vfs, out);
}
static int v_lasterr(sqlite3_vfs *v, int n, char *msg)
{
	(void)v;
	return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, msg) : 0;
}
static int v_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

/* Fill a wrapper VFS struct around real_vfs. */
static void wrapper_init(sqlite3_vfs *v, const char *name)
{
	memset(v, 0, sizeof(*v));
	v->iVersion = 2;
	v->szOsFile = (int)sizeof(slow_file) + real_vfs->szOsFile;
	v->mxPathname = real_vfs->mxPathname;
	v->zName = name;
	v->xOpen = v_open;
	v->xDelete = v_delete;
	v->xAccess = v_access;
	v->xFullPathname = v_fullpath;
	v->xDlOpen = v_dlopen;
	v->xDlError = v_dlerror;
	v->xDlSym = v_dlsym;
	v->xDlClose = v_dlclose;
	v->xRandomness = v_random;
	v->xSleep = v_sleep;
	v->xCurrentTime = v_time;
	v->xGetLastError = v_lasterr;
	v->xCurrentTimeInt64 = v_time64;
}

/* Register both wrappers once (not as default). Returns 0 or -1. */
static int register_once(void)
{
	if (real_vfs)
		return 0;
	if (sqlite3_initialize() != SQLITE_OK)
		return -1;
	sqlite3_vfs *real = sqlite3_vfs_find(NULL);
	if (!real || real->iVersion < 2)
		return -1;
	real_vfs = real;
	wrapper_init(&slow_vfs, SLOWVFS_NAME);
	wrapper_init(&count_vfs, COUNTVFS_NAME);
	if (sqlite3_vfs_register(&slow_vfs, 0) != SQLITE_OK) {
		real_vfs = NULL;
		return -1;
	}
	if (sqlite3_vfs_register(&count_vfs, 0) != SQLITE_OK) {
		sqlite3_vfs_unregister(&slow_vfs);
		real_vfs = NULL;
		return -1;
	}
	return 0;
}

const char *bench_slowvfs_register(long us)
{
	if (register_once() < 0)
		return NULL;
	slow_us = us;
	return SLOWVFS_NAME;
}

const char *bench_countvfs_register(void)
{
	return register_once() < 0 ? NULL : COUNTVFS_NAME;
}

long bench_slowvfs_syncs(void)
{
	return atomic_load(&syncs);
}

long bench_slowvfs_db_syncs(void)
{
	return atomic_load(&db_syncs);
}

long bench_slowvfs_commit_syncs(void)
{
	return atomic_load(&commit_syncs);
}

void bench_slowvfs_fail_syncs(long n)
{
	atomic_store(&fail_syncs, n);
}

void bench_slowvfs_fail_writes(long n)
{
	atomic_store(&fail_writes, n);
}
