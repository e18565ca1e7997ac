/*
 * faultvfs.c — a wrapper VFS that counts every I/O call by type and fails the Nth one on
 * demand (see faultvfs.h). Every method forwards to the real (default) VFS or file; a call
 * chosen to fail returns its error without reaching the real one, except an unlock (xUnlock,
 * xShmLock with SQLITE_SHM_UNLOCK), which releases the lock and then reports the error: a
 * lock that stayed held after SQLite gave it up would model no real failure, only a hang.
 * The io_methods version is the real file's (3 for unix), so WAL (xShm*) and mmap (xFetch)
 * keep working.
 *
 * Owns: the faultvfs objects (the registered sqlite3_vfs, its counters and armed fault).
 * Does not own: the real VFS.
 */
#include "faultvfs.h"

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum file_kind { KIND_NONE, KIND_DB, KIND_WAL, KIND_JOURNAL, KIND_OTHER, KIND_VFS };

struct faultvfs {
	sqlite3_vfs vfs;          /* registered; pAppData = this */
	sqlite3_vfs *real;
	char *name;
	atomic_long calls[FAULTVFS__COUNT]; /* [FAULTVFS_ANY] = all */
	atomic_int armed;
	atomic_int op;
	atomic_long nth;
	atomic_long repeat;
	atomic_int rc;
	atomic_long matched;      /* calls of op since armed */
	atomic_long injected;
	atomic_int first_op;
	atomic_int first_kind;
};

typedef struct fault_file {
	sqlite3_file base;        /* pMethods = &fault_io (NULL if the open failed) */
	sqlite3_file *real;       /* allocated right after this struct */
	faultvfs *v;
	int kind;                 /* enum file_kind */
} fault_file;

static const int default_rc[FAULTVFS__COUNT] = {
	[FAULTVFS_OPEN] = SQLITE_CANTOPEN,
	[FAULTVFS_READ] = SQLITE_IOERR_READ,
	[FAULTVFS_WRITE] = SQLITE_IOERR_WRITE,
	[FAULTVFS_SYNC] = SQLITE_IOERR_FSYNC,
	[FAULTVFS_TRUNCATE] = SQLITE_IOERR_TRUNCATE,
	[FAULTVFS_FILESIZE] = SQLITE_IOERR_FSTAT,
	[FAULTVFS_LOCK] = SQLITE_IOERR_LOCK,
	[FAULTVFS_UNLOCK] = SQLITE_IOERR_UNLOCK,
	[FAULTVFS_CHECK_RESERVED] = SQLITE_IOERR_CHECKRESERVEDLOCK,
	[FAULTVFS_SHM_MAP] = SQLITE_IOERR_SHMMAP,
	[FAULTVFS_SHM_LOCK] = SQLITE_IOERR_SHMLOCK,
	[FAULTVFS_FETCH] = SQLITE_IOERR_MMAP,
	[FAULTVFS_ACCESS] = SQLITE_IOERR_ACCESS,
	[FAULTVFS_DELETE] = SQLITE_IOERR_DELETE,
};

static const char *const op_names[FAULTVFS__COUNT] = {
	"any",	    "xOpen",	  "xRead",    "xWrite",		  "xSync",
	"xTruncate", "xFileSize", "xLock",    "xUnlock",		  "xCheckReservedLock",
	"xShmMap",  "xShmLock",	  "xFetch",   "xAccess",		  "xDelete",
};

static const char *const kind_names[] = {"none", "db", "wal", "journal", "other", "vfs"};

const char *faultvfs_op_name(int op)
{
	return op >= 0 && op < FAULTVFS__COUNT ? op_names[op] : "?";
}

/* Count one call of op; return 0 to let it through, else the error to fail it with. */
static int fault_take(faultvfs *v, int op, int kind)
{
	atomic_fetch_add(&v->calls[FAULTVFS_ANY], 1);
	atomic_fetch_add(&v->calls[op], 1);
	if (!atomic_load(&v->armed))
		return 0;
	int want = atomic_load(&v->op);
	if (want != FAULTVFS_ANY && want != op)
		return 0;
	long idx = atomic_fetch_add(&v->matched, 1) + 1;
	long nth = atomic_load(&v->nth), repeat = atomic_load(&v->repeat);
	if (idx < nth || (repeat >= 0 && idx >= nth + repeat))
		return 0;
	int none = FAULTVFS_ANY;
	if (atomic_compare_exchange_strong(&v->first_op, &none, op))
		atomic_store(&v->first_kind, kind);
	atomic_fetch_add(&v->injected, 1);
	int rc = atomic_load(&v->rc);
	return rc ? rc : default_rc[op];
}

#define FF(f) ((fault_file *)(f))
#define REAL(f) (FF(f)->real)
#define TAKE(f, op) fault_take(FF(f)->v, op, FF(f)->kind)

static int f_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int f_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	int rc = TAKE(f, FAULTVFS_READ);
	if (rc) {
		memset(b, 0, (size_t)n);
		return rc;
	}
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}

static int f_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	int rc = TAKE(f, FAULTVFS_WRITE);
	return rc ? rc : REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 sz)
{
	int rc = TAKE(f, FAULTVFS_TRUNCATE);
	return rc ? rc : REAL(f)->pMethods->xTruncate(REAL(f), sz);
}

static int f_sync(sqlite3_file *f, int flags)
{
	int rc = TAKE(f, FAULTVFS_SYNC);
	return rc ? rc : REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int f_filesize(sqlite3_file *f, sqlite3_int64 *sz)
{
	int rc = TAKE(f, FAULTVFS_FILESIZE);
	return rc ? rc : REAL(f)->pMethods->xFileSize(REAL(f), sz);
}

static int f_lock(sqlite3_file *f, int l)
{
	int rc = TAKE(f, FAULTVFS_LOCK);
	return rc ? rc : REAL(f)->pMethods->xLock(REAL(f), l);
}

static int f_unlock(sqlite3_file *f, int l)
{
	int rc = TAKE(f, FAULTVFS_UNLOCK);
	int real = REAL(f)->pMethods->xUnlock(REAL(f), l);
	return rc ? rc : real;
}

static int f_check(sqlite3_file *f, int *out)
{
	int rc = TAKE(f, FAULTVFS_CHECK_RESERVED);
	if (rc) {
		*out = 0;
		return rc;
	}
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int f_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int f_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int f_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int f_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
	int rc = TAKE(f, FAULTVFS_SHM_MAP);
	if (rc) {
		*pp = NULL;
		return rc;
	}
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}

static int f_shmlock(sqlite3_file *f, int off, int n, int flags)
{
	int rc = TAKE(f, FAULTVFS_SHM_LOCK);
	if (rc && !(flags & SQLITE_SHM_UNLOCK))
		return rc;
	int real = REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
	return rc ? rc : real;
}

static void f_shmbarrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int f_shmunmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp)
{
	int rc = TAKE(f, FAULTVFS_FETCH);
	if (rc) {
		*pp = NULL;
		return rc;
	}
	return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static const sqlite3_io_methods fault_io = {
	.iVersion = 3,
	.xClose = f_close,
	.xRead = f_read,
	.xWrite = f_write,
	.xTruncate = f_truncate,
	.xSync = f_sync,
	.xFileSize = f_filesize,
	.xLock = f_lock,
	.xUnlock = f_unlock,
	.xCheckReservedLock = f_check,
	.xFileControl = f_fcntl,
	.xSectorSize = f_sector,
	.xDeviceCharacteristics = f_devchar,
	.xShmMap = f_shmmap,
	.xShmLock = f_shmlock,
	.xShmBarrier = f_shmbarrier,
	.xShmUnmap = f_shmunmap,
	.xFetch = f_fetch,
	.xUnfetch = f_unfetch,
};

#define V(vfs) ((faultvfs *)(vfs)->pAppData)

static int kind_of(int flags)
{
	if (flags & SQLITE_OPEN_MAIN_DB)
		return KIND_DB;
	if (flags & SQLITE_OPEN_WAL)
		return KIND_WAL;
	if (flags & (SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_TEMP_JOURNAL |
		     SQLITE_OPEN_SUBJOURNAL | SQLITE_OPEN_SUPER_JOURNAL))
		return KIND_JOURNAL;
	return KIND_OTHER;
}

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	faultvfs *v = V(vfs);
	fault_file *ff = FF(f);
	ff->v = v;
	ff->kind = kind_of(flags);
	ff->real = (sqlite3_file *)(ff + 1);
	ff->base.pMethods = NULL;
	memset(ff->real, 0, (size_t)v->real->szOsFile);
	int rc = fault_take(v, FAULTVFS_OPEN, ff->kind);
	if (rc)
		return rc;
	rc = v->real->xOpen(v->real, name, ff->real, flags, out);
	if (!ff->real->pMethods)
		return rc;
	/* fault_io forwards xShm* and xFetch: a real file without them is refused */
	if (ff->real->pMethods->iVersion < 3) {
		ff->real->pMethods->xClose(ff->real);
		return SQLITE_CANTOPEN;
	}
	ff->base.pMethods = &fault_io;
	return rc;
}

static int v_delete(sqlite3_vfs *vfs, const char *n, int sync)
{
	int rc = fault_take(V(vfs), FAULTVFS_DELETE, KIND_VFS);
	return rc ? rc : V(vfs)->real->xDelete(V(vfs)->real, n, sync);
}

static int v_access(sqlite3_vfs *vfs, const char *n, int flags, int *out)
{
	int rc = fault_take(V(vfs), FAULTVFS_ACCESS, KIND_VFS);
	if (rc) {
		*out = 0;
		return rc;
	}
	return V(vfs)->real->xAccess(V(vfs)->real, n, flags, out);
}

static int v_fullpath(sqlite3_vfs *vfs, const char *n, int len, char *out)
{
	return V(vfs)->real->xFullPathname(V(vfs)->real, n, len, out);
}

static void *v_dlopen(sqlite3_vfs *vfs, const char *n)
{
	return V(vfs)->real->xDlOpen(V(vfs)->real, n);
}

static void v_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
	V(vfs)->real->xDlError(V(vfs)->real, n, msg);
}

static void (*v_dlsym(sqlite3_vfs *vfs, void *h, const char *s))(void)
{
	return V(vfs)->real->xDlSym(V(vfs)->real, h, s);
}

static void v_dlclose(sqlite3_vfs *vfs, void *h)
{
	V(vfs)->real->xDlClose(V(vfs)->real, h);
}

static int v_random(sqlite3_vfs *vfs, int n, char *out)
{
	return V(vfs)->real->xRandomness(V(vfs)->real, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
	return V(vfs)->real->xSleep(V(vfs)->real, us);
}

static int v_time(sqlite3_vfs *vfs, double *out)
{
	return V(vfs)->real->xCurrentTime(V(vfs)->real, out);
}

static int v_lasterr(sqlite3_vfs *vfs, int n, char *msg)
{
	sqlite3_vfs *r = V(vfs)->real;
	return r->xGetLastError ? r->xGetLastError(r, n, msg) : 0;
}

static int v_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	return V(vfs)->real->xCurrentTimeInt64(V(vfs)->real, out);
}

faultvfs *faultvfs_new(const char *name)
{
	if (sqlite3_initialize() != SQLITE_OK)
		return NULL;
	sqlite3_vfs *real = sqlite3_vfs_find(NULL);
	if (!real || real->iVersion < 2 || sqlite3_vfs_find(name))
		return NULL;
	faultvfs *v = calloc(1, sizeof(*v));
	if (!v || !(v->name = strdup(name))) {
		free(v);
		return NULL;
	}
	v->real = real;
	sqlite3_vfs *s = &v->vfs;
	s->iVersion = 2;
	s->szOsFile = (int)sizeof(fault_file) + real->szOsFile;
	s->mxPathname = real->mxPathname;
	s->zName = v->name;
	s->pAppData = v;
	s->xOpen = v_open;
	s->xDelete = v_delete;
	s->xAccess = v_access;
	s->xFullPathname = v_fullpath;
	s->xDlOpen = v_dlopen;
	s->xDlError = v_dlerror;
	s->xDlSym = v_dlsym;
	s->xDlClose = v_dlclose;
	s->xRandomness = v_random;
	s->xSleep = v_sleep;
	s->xCurrentTime = v_time;
	s->xGetLastError = v_lasterr;
	s->xCurrentTimeInt64 = v_time64;
	if (sqlite3_vfs_register(s, 0) != SQLITE_OK) {
		free(v->name);
		free(v);
		return NULL;
	}
	return v;
}

void faultvfs_free(faultvfs *v)
{
	if (!v)
		return;
	sqlite3_vfs_unregister(&v->vfs);
	free(v->name);
	free(v);
}

const char *faultvfs_name(const faultvfs *v)
{
	return v->name;
}

long faultvfs_calls(const faultvfs *v, int op)
{
	return op >= 0 && op < FAULTVFS__COUNT ? atomic_load(&v->calls[op]) : 0;
}

void faultvfs_disarm(faultvfs *v)
{
	atomic_store(&v->armed, 0);
}

void faultvfs_reset(faultvfs *v)
{
	faultvfs_disarm(v);
	for (int i = 0; i < FAULTVFS__COUNT; i++)
		atomic_store(&v->calls[i], 0);
	atomic_store(&v->injected, 0);
	atomic_store(&v->first_op, FAULTVFS_ANY);
	atomic_store(&v->first_kind, KIND_NONE);
}

void faultvfs_arm(faultvfs *v, int op, long nth, long repeat, int rc)
{
	faultvfs_disarm(v);
	atomic_store(&v->op, op);
	atomic_store(&v->nth, nth);
	atomic_store(&v->repeat, repeat);
	atomic_store(&v->rc, rc);
	atomic_store(&v->matched, 0);
	atomic_store(&v->injected, 0);
	atomic_store(&v->first_op, FAULTVFS_ANY);
	atomic_store(&v->first_kind, KIND_NONE);
	atomic_store(&v->armed, 1);
}

long faultvfs_injected(const faultvfs *v)
{
	return atomic_load(&v->injected);
}

int faultvfs_first_op(const faultvfs *v)
{
	return atomic_load(&v->first_op);
}

const char *faultvfs_first_file(const faultvfs *v)
{
	return kind_names[atomic_load(&v->first_kind)];
}
