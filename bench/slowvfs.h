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
/* xSync calls made through the VFS since it was registered. */
long bench_slowvfs_syncs(void);
/* Fault injection for tests: the next n xSync calls fail with SQLITE_IOERR_FSYNC, the next
 * n xWrite calls with SQLITE_FULL (0 = none). */
void bench_slowvfs_fail_syncs(long n);
void bench_slowvfs_fail_writes(long n);

#endif
