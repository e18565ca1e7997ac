/*
 * builtin.c — the table of providers built into this library (see builtin.h). Adding a
 * built-in provider = one line here (and its sources in CMakeLists.txt).
 */
#include "builtin.h"
#include "sqlite/sqlite_provider.h"
#ifdef DURQ_WITH_POSTGRES
#include "postgres/postgres_provider.h"
#endif

static const durq_builtin_provider builtins[] = {
	{"sqlite", durq_sqlite_factory},
#ifdef DURQ_WITH_POSTGRES
	{"postgresql", durq_postgres_factory},
	{"postgres", durq_postgres_factory},
#endif
};

const durq_builtin_provider *durq_builtin_providers(size_t *n)
{
	*n = sizeof(builtins) / sizeof(builtins[0]);
	return builtins;
}

const char *durq_builtin_schemes(void)
{
#ifdef DURQ_WITH_POSTGRES
	return "sqlite, postgresql, postgres";
#else
	return "sqlite (this build has no PostgreSQL provider: DURQ_WITH_POSTGRES=OFF)";
#endif
}
