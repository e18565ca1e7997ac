/*
 * mem.c — the allocator providers use for outputs the core frees (durq_mem_*): the C
 * library's, behind exported functions so a provider built with another allocator (or in
 * another language) allocates from the same heap the core frees into.
 */
#include <stdlib.h>
#include <string.h>

#include "durq/provider.h"

void *durq_mem_alloc(size_t n)
{
	return malloc(n ? n : 1);
}

void *durq_mem_calloc(size_t n, size_t size)
{
	return calloc(n ? n : 1, size ? size : 1);
}

void *durq_mem_realloc(void *p, size_t n)
{
	return realloc(p, n ? n : 1);
}

char *durq_mem_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

void durq_mem_free(void *p)
{
	free(p);
}
