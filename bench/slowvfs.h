/*
 * slowvfs.h — a wrapper VFS around the default SQLite VFS that adds a fixed delay to every
 * xSync and counts them; it can also fail syncs or writes on demand. Used by the bench
 * (--sync-latency-us) and by the tests of flushing and of commit failures.
 */
#ifndef DURQ_BENCH_SLOWVFS_H
#define DURQ_BENCH_SLOWVFS_H

/* Registers (not as default) a VFS named "durq-bench-slowsync" that adds us microseconds to
 * every xSync; calling again changes the delay. Returns its name, or NULL on failure. */
const char *bench_slowvfs_register(long us);
/* Registers (not as default) "durq-bench-count": the same wrapper without the delay, so
 * that xSync calls of files that must not be slowed (the in-memory rows) are counted too.
 * Returns its name, or NULL on failure. */
const char *bench_countvfs_register(void);
/* xSync calls made through either wrapper since it was registered. */
long bench_slowvfs_syncs(void);
/* Those of them on a main database file (in WAL mode: checkpoints, not commits). */
long bench_slowvfs_db_syncs(void);
/* Those on a WAL file that followed a write of frames: the flushed commits (a checkpoint's
 * WAL sync and a new WAL header's sync follow no frame). */
long bench_slowvfs_commit_syncs(void);
/* Fault injection for tests: the next n xSync calls fail with SQLITE_IOERR_FSYNC, the next
 * n xWrite calls with SQLITE_FULL (0 = none). */
void bench_slowvfs_fail_syncs(long n);
void bench_slowvfs_fail_writes(long n);

#endif
