/*
 * builtin.h — the providers compiled into this library, as a table the core's registry
 * (src/registry.c) searches after the schemes registered at run time. The core includes
 * this header and names no provider itself.
 */
#ifndef DURQ_BUILTIN_H
#define DURQ_BUILTIN_H

#include "durq/provider.h"

typedef struct durq_builtin_provider {
	const char *scheme;
	durq_provider_factory factory;
} durq_builtin_provider;

/* The table (static storage) and its length. */
const durq_builtin_provider *durq_builtin_providers(size_t *n);
/* "sqlite, postgresql, postgres": for error messages. */
const char *durq_builtin_schemes(void);

#endif
