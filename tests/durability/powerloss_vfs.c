/*
 * powerloss_vfs.c — a wrapper VFS around the default (unix) VFS that models a power cut.
 * Owns: the registered sqlite3_vfs "durq-powerloss", the per-file shadow state, the cut.
 * Does not own: the real VFS, the workload (tests/durability/test_powerloss.c).
 *
 * Model. A file's content after a power cut is what its last completed xSync made durable,
 * plus whatever part of the later (unsynced) writes the disk happened to have written back.
 * So per file (database, WAL, journal; keyed by the name SQLite opens it with, shared by all
 * connections) the VFS keeps in memory:
 *   - the durable image: the file as it was when the VFS first opened it (taken as durable),
 *     updated at every completed xSync by applying the pending operations in order;
 *   - the pending operations: every xWrite (offset + bytes) and xTruncate since that xSync.
 * The real files always receive every operation (SQLite reads them back and maps them), but
 * the real fsync is skipped: the files are scratch, durability is what this VFS decides.
 * The initial content is not read up front (a base WAL of megabytes would be read for every
 * run): a PL_BLOCK block of it is copied into the durable image just before the first write
 * or truncate that changes it. A block never changed still holds its initial content in the
 * real file, so the image is "real file, with the saved blocks and everything past the
 * initial size taken from memory".
 *
 * The cut. Calls to xWrite, xTruncate and xSync of tracked files are counted under one
 * mutex, which is held across the recording and the real operation, so the calls of all
 * threads form one sequence. When the count reaches plan.cut_at, that call is not
 * performed: still holding the mutex (no other thread can write or sync), the VFS writes
 * for each file "durable image + chosen pending pieces" to plan.out_dir under the file's
 * base name, writes cut.info, and _exit()s. The process therefore stops exactly at the cut:
 * no later write reaches even the real file, no thread reports anything afterwards, and
 * anything a thread reported before (an OK'd call) was reported before the power went.
 * The caller reopens the images in out_dir (no -shm there: shared memory does not survive a
 * power cut, and SQLite rebuilds it from the WAL).
 *
 * Which pending pieces survive (enum powerloss_mode, random choices from plan.seed):
 * a write is split at POWERLOSS_SECTOR boundaries into pieces; a truncate is one piece.
 * DROP_ALL keeps none, KEEP_RANDOM keeps each with p = 1/2 (a disk that reorders its write
 * cache), KEEP_PREFIX keeps the first k pieces of the file in issue order, k random (an
 * in-order disk that stopped part way). Surviving pieces are applied in issue order, so a
 * sector ends up with the durable content or one of the versions written to it. A hole left
 * below a surviving piece past the end of the durable file reads as zeros.
 * Not modelled: torn writes inside a sector, directory entries (a created file exists, an
 * xDelete is immediate and durable: SQLite deletes only a WAL or journal it no longer
 * needs), the file-size hint (SQLITE_FCNTL_SIZE_HINT only pre-extends with zeros, which the
 * image does when a later write or truncate needs it).
 */
#include "powerloss_vfs.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct pl_op {
	int trunc;               /* 1: truncate to off; 0: write len bytes at off */
	sqlite3_int64 off;
	int len;
	unsigned char *data;
} pl_op;

typedef struct pl_image {
	unsigned char *b;
	sqlite3_int64 size, cap;
} pl_image;

enum { PL_BLOCK = 4096 };

typedef struct pl_node {
	struct pl_node *next;
	char *name;
	int flags;               /* SQLITE_OPEN_MAIN_DB, _WAL, ... as first opened */
	sqlite3_int64 init_size; /* size when first opened */
	unsigned char *saved;    /* per PL_BLOCK below init_size: its initial content is in
				  * durable (else the real file still holds it) */
	pl_image durable;        /* authoritative for saved blocks and from init_size on */
	pl_op *ops;              /* pending since the last xSync, in issue order */
	size_t n_ops, cap_ops;
} pl_node;

typedef struct pl_state {
	pthread_mutex_t mu;      /* every tracked write/truncate/sync and the node list */
	sqlite3_vfs *real;
	pl_node *nodes;
	long calls;
	long ckpt_first, ckpt_sync, wal_restart; /* landmarks, see cut.info in the header */
	powerloss_plan plan;
	char out_dir[PATH_MAX];
} pl_state;

typedef struct pl_file {
	sqlite3_file base;       /* pMethods = &pl_io (NULL if the real open failed) */
	sqlite3_file *real;      /* allocated right after this struct */
	pl_node *node;           /* NULL: not tracked (temporary files) */
} pl_file;

static pl_state pl = {.mu = PTHREAD_MUTEX_INITIALIZER};
static sqlite3_vfs pl_vfs;

#define REAL(f) (((pl_file *)(f))->real)

static void die(const char *what)
{
	fprintf(stderr, "powerloss_vfs: %s\n", what);
	_exit(99);
}

/* ---- images ------------------------------------------------------------------------- */

/* Set the size; bytes past the old end read as zeros unless the caller fills them. */
static void image_resize_raw(pl_image *im, sqlite3_int64 size, int zero)
{
	if (size > im->cap) {
		sqlite3_int64 cap = im->cap ? im->cap : 65536;
		while (cap < size)
			cap *= 2;
		if (!(im->b = realloc(im->b, (size_t)cap)))
			die("out of memory");
		im->cap = cap;
	}
	if (zero && size > im->size)
		memset(im->b + im->size, 0, (size_t)(size - im->size));
	im->size = size;
}

static void image_resize(pl_image *im, sqlite3_int64 size)
{
	image_resize_raw(im, size, 1);
}

static void image_write(pl_image *im, sqlite3_int64 off, const unsigned char *b, int len)
{
	if (off + len > im->size)
		image_resize(im, off + len);
	memcpy(im->b + off, b, (size_t)len);
}

static void image_apply(pl_image *im, const pl_op *op)
{
	if (op->trunc)
		image_resize(im, op->off);
	else
		image_write(im, op->off, op->data, op->len);
}

/* ---- shadow nodes ------------------------------------------------------------------- */

static pl_node *node_find(const char *name)
{
	for (pl_node *n = pl.nodes; n; n = n->next)
		if (!strcmp(n->name, name))
			return n;
	return NULL;
}

/* A file seen for the first time: its current content is taken as durable. */
static pl_node *node_new(const char *name, int flags, sqlite3_file *real)
{
	pl_node *n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strdup(name)))
		die("out of memory");
	n->flags = flags;
	if (real->pMethods->xFileSize(real, &n->init_size) != SQLITE_OK)
		die("xFileSize failed");
	if (!(n->saved = calloc((size_t)(n->init_size / PL_BLOCK + 1), 1)))
		die("out of memory");
	image_resize_raw(&n->durable, n->init_size, 0); /* blocks filled when first changed */
	n->next = pl.nodes;
	pl.nodes = n;
	return n;
}

/* Before [off, end) of the real file changes: copy the initial content of its blocks that
 * were never changed into the durable image. */
static void node_save(pl_node *n, sqlite3_file *real, sqlite3_int64 off, sqlite3_int64 end)
{
	if (end > n->init_size)
		end = n->init_size;
	for (sqlite3_int64 b = off / PL_BLOCK; b * PL_BLOCK < end; b++) {
		if (n->saved[b])
			continue;
		sqlite3_int64 at = b * PL_BLOCK;
		int len = n->init_size - at < PL_BLOCK ? (int)(n->init_size - at) : PL_BLOCK;
		if (real->pMethods->xRead(real, n->durable.b + at, len, at) != SQLITE_OK)
			die("reading a file's initial content failed");
		n->saved[b] = 1;
	}
}

static void ops_clear(pl_node *n)
{
	for (size_t i = 0; i < n->n_ops; i++)
		free(n->ops[i].data);
	n->n_ops = 0;
}

static void node_free(pl_node *n)
{
	ops_clear(n);
	free(n->ops);
	free(n->saved);
	free(n->durable.b);
	free(n->name);
	free(n);
}

static void op_push(pl_node *n, int trunc, sqlite3_int64 off, const void *b, int len)
{
	if (n->n_ops == n->cap_ops) {
		n->cap_ops = n->cap_ops ? n->cap_ops * 2 : 64;
		if (!(n->ops = realloc(n->ops, n->cap_ops * sizeof(*n->ops))))
			die("out of memory");
	}
	pl_op *op = &n->ops[n->n_ops++];
	op->trunc = trunc;
	op->off = off;
	op->len = len;
	op->data = NULL;
	if (!trunc) {
		if (!(op->data = malloc((size_t)len)))
			die("out of memory");
		memcpy(op->data, b, (size_t)len);
	}
}

/* ---- the cut ------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t op_pieces(const pl_op *op)
{
	if (op->trunc)
		return 1;
	sqlite3_int64 first = op->off / POWERLOSS_SECTOR;
	sqlite3_int64 last = (op->off + op->len - 1) / POWERLOSS_SECTOR;
	return (size_t)(last - first + 1);
}

typedef struct pl_tally {
	size_t kept, dropped;
} pl_tally;

static void write_all(int fd, const void *b, size_t len)
{
	const unsigned char *p = b;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w <= 0)
			die("writing a post-cut image failed");
		p += w;
		len -= (size_t)w;
	}
}

static void pwrite_all(int fd, const void *b, size_t len, sqlite3_int64 off)
{
	if (pwrite(fd, b, len, (off_t)off) != (ssize_t)len)
		die("writing a post-cut image failed");
}

/* Write n's durable image to fd: the real file's blocks never changed, the saved ones and
 * everything from init_size on from memory. */
static void write_durable(pl_node *n, int fd)
{
	int in = open(n->name, O_RDONLY);
	sqlite3_int64 keep = n->durable.size < n->init_size ? n->durable.size : n->init_size;
	char buf[65536];
	if (in < 0)
		die("cannot open a file to cut");
	for (sqlite3_int64 at = 0; at < keep;) {
		ssize_t got = pread(in, buf, sizeof(buf) < (size_t)(keep - at) ? sizeof(buf)
									   : (size_t)(keep - at), (off_t)at);
		if (got <= 0)
			die("reading a file to cut failed");
		pwrite_all(fd, buf, (size_t)got, at);
		at += got;
	}
	close(in);
	for (sqlite3_int64 b = 0; b * PL_BLOCK < keep; b++) {
		sqlite3_int64 at = b * PL_BLOCK;
		if (n->saved[b])
			pwrite_all(fd, n->durable.b + at,
				   (size_t)(keep - at < PL_BLOCK ? keep - at : PL_BLOCK), at);
	}
	if (n->durable.size > keep)
		pwrite_all(fd, n->durable.b + keep, (size_t)(n->durable.size - keep), keep);
	if (ftruncate(fd, (off_t)n->durable.size) != 0)
		die("sizing a post-cut image failed");
}

/* Write n's durable image + the pieces of its pending ops that survive to fd, applying
 * the pieces in issue order (pwrite past the end leaves a hole that reads as zeros). */
static void cut_file(pl_node *n, int fd, uint64_t *rng, pl_tally *t)
{
	size_t total = 0, idx = 0, prefix = 0;
	for (size_t i = 0; i < n->n_ops; i++)
		total += op_pieces(&n->ops[i]);
	if (pl.plan.mode == POWERLOSS_KEEP_PREFIX)
		prefix = (size_t)(rng_next(rng) % (total + 1));
	write_durable(n, fd);
	for (size_t i = 0; i < n->n_ops; i++) {
		const pl_op *op = &n->ops[i];
		sqlite3_int64 pos = op->off, end = op->off + (op->trunc ? 0 : op->len);
		do {
			sqlite3_int64 next = (pos / POWERLOSS_SECTOR + 1) * POWERLOSS_SECTOR;
			if (op->trunc || next > end)
				next = end;
			int keep = pl.plan.mode == POWERLOSS_KEEP_RANDOM   ? (int)(rng_next(rng) & 1)
				   : pl.plan.mode == POWERLOSS_KEEP_PREFIX ? idx < prefix
									   : 0;
			idx++;
			if (!keep) {
				t->dropped++;
			} else if (op->trunc) {
				t->kept++;
				if (ftruncate(fd, (off_t)op->off) != 0)
					die("truncating a post-cut image failed");
			} else {
				t->kept++;
				pwrite_all(fd, op->data + (pos - op->off), (size_t)(next - pos), pos);
			}
			pos = next;
		} while (pos < end);
	}
}

static int out_open(const char *base)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", pl.out_dir, base) >= (int)sizeof(path))
		die("output path too long");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("cannot create a post-cut image");
	return fd;
}

/* Called with pl.mu held (or from powerloss_vfs_cut, which takes it): never returns. */
static void cut_locked(void) __attribute__((noreturn));
static void cut_locked(void)
{
	uint64_t rng = pl.plan.seed;
	char line[PATH_MAX + 200];
	int info = out_open(POWERLOSS_INFO_FILE);
	int len = snprintf(line, sizeof(line), "calls %ld ckpt_first %ld ckpt_sync %ld wal_restart %ld\n",
			   pl.calls, pl.ckpt_first, pl.ckpt_sync, pl.wal_restart);
	write_all(info, line, (size_t)len);
	for (pl_node *n = pl.nodes; n; n = n->next) {
		pl_tally t = {0};
		const char *base = strrchr(n->name, '/') ? strrchr(n->name, '/') + 1 : n->name;
		int fd = out_open(base);
		struct stat st;
		cut_file(n, fd, &rng, &t);
		if (fstat(fd, &st) != 0)
			die("fstat of a post-cut image failed");
		close(fd);
		len = snprintf(line, sizeof(line),
			       "file %s durable %lld image %lld pending_ops %zu kept_pieces %zu "
			       "dropped_pieces %zu\n",
			       base, (long long)n->durable.size, (long long)st.st_size, n->n_ops, t.kept,
			       t.dropped);
		write_all(info, line, (size_t)len);
	}
	close(info);
	_exit(POWERLOSS_EXIT_CUT);
}

void powerloss_vfs_cut(void)
{
	pthread_mutex_lock(&pl.mu);
	cut_locked();
}

/* Count one tracked call; at the planned one, cut instead of performing it. */
static void count_call(void)
{
	pl.calls++;
	if (pl.plan.cut_at > 0 && pl.calls >= pl.plan.cut_at)
		cut_locked();
}

/* ---- io methods --------------------------------------------------------------------- */

static int p_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int p_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int p_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	pl_node *node = ((pl_file *)f)->node;
	if (!node)
		return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
	pthread_mutex_lock(&pl.mu);
	count_call();
	if ((node->flags & SQLITE_OPEN_MAIN_DB) && !pl.ckpt_first)
		pl.ckpt_first = pl.calls;
	if ((node->flags & SQLITE_OPEN_WAL) && o == 0 && node->durable.size > 0 && !pl.wal_restart)
		pl.wal_restart = pl.calls;
	node_save(node, REAL(f), o, o + n);
	int rc = REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
	if (rc == SQLITE_OK)
		op_push(node, 0, o, b, n);
	pthread_mutex_unlock(&pl.mu);
	return rc;
}
static int p_truncate(sqlite3_file *f, sqlite3_int64 sz)
{
	pl_node *node = ((pl_file *)f)->node;
	if (!node)
		return REAL(f)->pMethods->xTruncate(REAL(f), sz);
	pthread_mutex_lock(&pl.mu);
	count_call();
	node_save(node, REAL(f), sz, node->init_size);
	int rc = REAL(f)->pMethods->xTruncate(REAL(f), sz);
	if (rc == SQLITE_OK)
		op_push(node, 1, sz, NULL, 0);
	pthread_mutex_unlock(&pl.mu);
	return rc;
}
static int p_sync(sqlite3_file *f, int flags)
{
	pl_node *node = ((pl_file *)f)->node;
	if (!node)
		return REAL(f)->pMethods->xSync(REAL(f), flags);
	pthread_mutex_lock(&pl.mu);
	count_call();
	if ((node->flags & SQLITE_OPEN_MAIN_DB) && pl.ckpt_first && !pl.ckpt_sync)
		pl.ckpt_sync = pl.calls;
	for (size_t i = 0; i < node->n_ops; i++) /* the real fsync is skipped: see the top */
		image_apply(&node->durable, &node->ops[i]);
	ops_clear(node);
	pthread_mutex_unlock(&pl.mu);
	return SQLITE_OK;
}
static int p_filesize(sqlite3_file *f, sqlite3_int64 *sz)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), sz);
}
static int p_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int p_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int p_check(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int p_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int p_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int p_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int p_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int p_shmlock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void p_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int p_shmunmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int p_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp);
}
static int p_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static const sqlite3_io_methods pl_io = {
	3,	   p_close,	p_read,	    p_write,	 p_truncate, p_sync,   p_filesize,
	p_lock,	   p_unlock,	p_check,    p_fcntl,	 p_sector,   p_devchar, p_shmmap,
	p_shmlock, p_shmbarrier, p_shmunmap, p_fetch,	 p_unfetch,
};

/* ---- vfs methods -------------------------------------------------------------------- */

enum { TRACKED = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL |
		 SQLITE_OPEN_SUPER_JOURNAL };

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	(void)vfs;
	pl_file *pf = (pl_file *)f;
	pf->node = NULL;
	pf->real = (sqlite3_file *)(pf + 1);
	memset(pf->real, 0, (size_t)pl.real->szOsFile);
	int rc = pl.real->xOpen(pl.real, name, pf->real, flags, out);
	if (!pf->real->pMethods) {
		pf->base.pMethods = NULL;
		return rc;
	}
	if (pf->real->pMethods->iVersion < 3) { /* the unix VFS gives version 3 */
		pf->real->pMethods->xClose(pf->real);
		pf->base.pMethods = NULL;
		return SQLITE_CANTOPEN;
	}
	if (rc == SQLITE_OK && name && (flags & TRACKED)) {
		pthread_mutex_lock(&pl.mu);
		pf->node = node_find(name);
		if (!pf->node)
			pf->node = node_new(name, flags, pf->real);
		pthread_mutex_unlock(&pl.mu);
	}
	pf->base.pMethods = &pl_io;
	return rc;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync)
{
	(void)v;
	pthread_mutex_lock(&pl.mu);
	for (pl_node **pp = &pl.nodes; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->name, name)) {
			pl_node *n = *pp;
			*pp = n->next;
			node_free(n);
			break;
		}
	}
	int rc = pl.real->xDelete(pl.real, name, sync);
	pthread_mutex_unlock(&pl.mu);
	return rc;
}
static int v_access(sqlite3_vfs *v, const char *n, int flags, int *out)
{
	(void)v;
	return pl.real->xAccess(pl.real, n, flags, out);
}
static int v_fullpath(sqlite3_vfs *v, const char *n, int len, char *out)
{
	(void)v;
	return pl.real->xFullPathname(pl.real, n, len, out);
}
static void *v_dlopen(sqlite3_vfs *v, const char *n)
{
	(void)v;
	return pl.real->xDlOpen(pl.real, n);
}
static void v_dlerror(sqlite3_vfs *v, int n, char *msg)
{
	(void)v;
	pl.real->xDlError(pl.real, n, msg);
}
static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *s))(void)
{
	(void)v;
	return pl.real->xDlSym(pl.real, h, s);
}
static void v_dlclose(sqlite3_vfs *v, void *h)
{
	(void)v;
	pl.real->xDlClose(pl.real, h);
}
static int v_random(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return pl.real->xRandomness(pl.real, n, out);
}
static int v_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return pl.real->xSleep(pl.real, us);
}
static int v_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return pl.real->xCurrentTime(pl.real, out);
}
static int v_lasterr(sqlite3_vfs *v, int n, char *msg)
{
	(void)v;
	return pl.real->xGetLastError ? pl.real->xGetLastError(pl.real, n, msg) : 0;
}
static int v_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return pl.real->xCurrentTimeInt64(pl.real, out);
}

const char *powerloss_vfs_register(void)
{
	if (pl.real)
		return POWERLOSS_VFS_NAME;
	if (sqlite3_initialize() != SQLITE_OK)
		return NULL;
	sqlite3_vfs *real = sqlite3_vfs_find(NULL);
	if (!real || real->iVersion < 2)
		return NULL;
	pl.real = real;
	pl_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(pl_file) + real->szOsFile,
		.mxPathname = real->mxPathname,
		.zName = POWERLOSS_VFS_NAME,
		.xOpen = v_open,
		.xDelete = v_delete,
		.xAccess = v_access,
		.xFullPathname = v_fullpath,
		.xDlOpen = v_dlopen,
		.xDlError = v_dlerror,
		.xDlSym = v_dlsym,
		.xDlClose = v_dlclose,
		.xRandomness = v_random,
		.xSleep = v_sleep,
		.xCurrentTime = v_time,
		.xGetLastError = v_lasterr,
		.xCurrentTimeInt64 = v_time64,
	};
	if (sqlite3_vfs_register(&pl_vfs, 0) != SQLITE_OK) {
		pl.real = NULL;
		return NULL;
	}
	return POWERLOSS_VFS_NAME;
}

void powerloss_vfs_arm(const powerloss_plan *plan)
{
	pthread_mutex_lock(&pl.mu);
	pl.plan = *plan;
	snprintf(pl.out_dir, sizeof(pl.out_dir), "%s", plan->out_dir ? plan->out_dir : ".");
	pl.plan.out_dir = pl.out_dir;
	pl.calls = pl.ckpt_first = pl.ckpt_sync = pl.wal_restart = 0;
	pthread_mutex_unlock(&pl.mu);
}
