/*
 * faultvfs.h — a wrapper VFS around the default SQLite VFS that counts every I/O call by
 * type and fails the Nth one (of one type, or of all types together) on demand. Used by the
 * fault sweep (tests/faults/test_fault_sweep.c) to inject one I/O error at every point of a
 * workload. Registered under its own name, never as the default; durq gets it through the
 * URL parameter vfs=NAME or options.sqlite_vfs.
 *
 * State lives in the faultvfs object (the registered sqlite3_vfs's pAppData), counters and
 * the armed fault are atomics: any thread may do I/O through it while another arms it.
 */
#ifndef DURQ_TESTS_FAULTVFS_H
#define DURQ_TESTS_FAULTVFS_H

/* The I/O calls that can fail. FAULTVFS_ANY counts all of them together. */
enum faultvfs_op {
	FAULTVFS_ANY = 0,
	FAULTVFS_OPEN,           /* xOpen: SQLITE_CANTOPEN */
	FAULTVFS_READ,           /* xRead: SQLITE_IOERR_READ */
	FAULTVFS_WRITE,          /* xWrite: SQLITE_IOERR_WRITE (or SQLITE_FULL if asked) */
	FAULTVFS_SYNC,           /* xSync: SQLITE_IOERR_FSYNC */
	FAULTVFS_TRUNCATE,       /* xTruncate: SQLITE_IOERR_TRUNCATE */
	FAULTVFS_FILESIZE,       /* xFileSize: SQLITE_IOERR_FSTAT */
	FAULTVFS_LOCK,           /* xLock: SQLITE_IOERR_LOCK */
	FAULTVFS_UNLOCK,         /* xUnlock: SQLITE_IOERR_UNLOCK (the lock is released anyway) */
	FAULTVFS_CHECK_RESERVED, /* xCheckReservedLock: SQLITE_IOERR_CHECKRESERVEDLOCK */
	FAULTVFS_SHM_MAP,        /* xShmMap: SQLITE_IOERR_SHMMAP */
	FAULTVFS_SHM_LOCK,       /* xShmLock: SQLITE_IOERR_SHMLOCK (an unlock still unlocks) */
	FAULTVFS_FETCH,          /* xFetch (mmap): SQLITE_IOERR_MMAP */
	FAULTVFS_ACCESS,         /* xAccess: SQLITE_IOERR_ACCESS */
	FAULTVFS_DELETE,         /* xDelete: SQLITE_IOERR_DELETE */
	FAULTVFS__COUNT
};

typedef struct faultvfs faultvfs;

/* Register a wrapper named name (copied) around the current default VFS. NULL on failure
 * (no memory, the name taken, no default VFS). */
faultvfs *faultvfs_new(const char *name);
/* Unregister and free. No connection may still use it. */
void faultvfs_free(faultvfs *v);
const char *faultvfs_name(const faultvfs *v);
const char *faultvfs_op_name(int op);

/* Calls of op (FAULTVFS_ANY: all) since the last reset, failed ones included. */
long faultvfs_calls(const faultvfs *v, int op);
/* Zero the counters and disarm. */
void faultvfs_reset(faultvfs *v);

/*
 * Arm one fault: counting calls of op (FAULTVFS_ANY: of every type) from now on, the nth
 * (1-based) fails, and so do the next repeat - 1 calls of op (repeat < 0: every later call
 * of op, until faultvfs_disarm). rc is the SQLite code to return, 0 = the op's default
 * above. Re-arming replaces the previous fault.
 */
void faultvfs_arm(faultvfs *v, int op, long nth, long repeat, int rc);
void faultvfs_disarm(faultvfs *v);
/* Calls failed on purpose since the last arm. */
long faultvfs_injected(const faultvfs *v);
/* The type of the first call failed since the last arm (FAULTVFS_ANY if none), and the
 * kind of file it was on ("db", "wal", "journal", "other", or "vfs" for xAccess/xDelete). */
int faultvfs_first_op(const faultvfs *v);
const char *faultvfs_first_file(const faultvfs *v);

#endif
