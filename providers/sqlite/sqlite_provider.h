/*
 * sqlite_provider.h — constructor of the SQLite provider (file and private in-memory).
 */
#ifndef DURQ_SQLITE_PROVIDER_H
#define DURQ_SQLITE_PROVIDER_H

#include "durq/provider.h"

/* path NULL = in-memory: a private WAL database on tmpfs, removed on free. opts (may be
 * NULL) is copied with its defaults resolved. */
int durq_sqlite_provider_new(durq_provider **out, const char *path, const durq_options *opts);

/* The in-memory provider with another default directory than "/dev/shm" (used only if it
 * is a tmpfs, and only when DURQ_MEMORY_DIR names none). Not public: tests point it at a
 * disk to see the refusal. */
int durq_sqlite_memory_provider_new(durq_provider **out, const char *shm_dir,
				    const durq_options *opts);

/* The factory of the "sqlite" scheme (registered as a built-in, see providers/builtin.c):
 * location = path or ":memory:"; params vfs, synchronous (off|normal|full),
 * busy_timeout_ms override the options. */
int durq_sqlite_factory(durq_provider **out, const durq_provider_config *cfg, void *ctx);

#endif
