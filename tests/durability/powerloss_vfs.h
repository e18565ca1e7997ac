/*
 * powerloss_vfs.h — a wrapper SQLite VFS that models what survives a power cut.
 *
 * Every xWrite / xTruncate of a database, WAL or journal file is recorded as "pending" until
 * the file's next xSync; at xSync the pending operations become part of the file's durable
 * image, kept in memory. At the cut (the Nth counted call, or powerloss_vfs_cut()) the VFS
 * writes, for every file, its durable image plus a chosen subset of its pending operations
 * (see enum powerloss_mode) into a separate directory, and the process ends at once with
 * _exit(POWERLOSS_EXIT_CUT): the call that met the cut is never performed, and no thread
 * does anything after it. Details and the reasons: the top of powerloss_vfs.c.
 */
#ifndef DURQ_POWERLOSS_VFS_H
#define DURQ_POWERLOSS_VFS_H

#include <stdint.h>

#define POWERLOSS_VFS_NAME "durq-powerloss"
#define POWERLOSS_EXIT_CUT 86     /* exit status of a process whose power was cut */
#define POWERLOSS_SECTOR 512      /* unit in which unsynced writes survive or not */
#define POWERLOSS_INFO_FILE "cut.info"

enum powerloss_mode {
	POWERLOSS_DROP_ALL = 0,    /* every unsynced write and truncate is lost */
	POWERLOSS_KEEP_RANDOM = 1, /* each unsynced sector piece / truncate survives with p = 1/2:
				    * a disk that reorders its cache freely */
	POWERLOSS_KEEP_PREFIX = 2, /* a file's unsynced pieces survive in the order they were
				    * issued, up to a random point: an in-order disk */
	POWERLOSS_MODES = 3
};

typedef struct powerloss_plan {
	long cut_at;         /* the cut replaces the cut_at-th counted call (1-based); 0 = never */
	int mode;            /* enum powerloss_mode */
	uint64_t seed;       /* picks the surviving pieces: the same seed, the same choice */
	const char *out_dir; /* existing directory that receives the images and cut.info */
} powerloss_plan;

/* Register the VFS (not as the default) once per process. Returns its name, NULL on failure. */
const char *powerloss_vfs_register(void);
/* Set the plan (copied) and restart the call count. Call before any file is opened. */
void powerloss_vfs_arm(const powerloss_plan *plan);
/* Cut the power now: write the images and cut.info, then _exit(POWERLOSS_EXIT_CUT). */
void powerloss_vfs_cut(void) __attribute__((noreturn));

/*
 * cut.info (text, one line each): "calls N ckpt_first A ckpt_sync B wal_restart C": N counted
 * calls before the cut; landmarks as call numbers, 0 = not reached: A the first write to a
 * database file (a checkpoint began), B the first xSync of a database file after it (that
 * checkpoint's data made durable), C the first write at offset 0 of a WAL that already had
 * content (the WAL restarted after a checkpoint). Then per file
 * "file NAME durable BYTES image BYTES pending_ops N kept_pieces K dropped_pieces D".
 */

#endif
