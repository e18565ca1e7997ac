/*
 * postgres_provider.h — the PostgreSQL provider's factory (built in when DURQ_WITH_POSTGRES).
 *
 * durq_open dispatches "postgresql://..." and "postgres://..." here. The URL is a libpq
 * connection URI, passed to libpq as it is (PG* environment variables apply):
 *   postgresql://[user[:password]@][host][:port][/dbname][?param=value&...]
 * The schema (tables durq_*, in the first schema of the search_path) is created or
 * migrated at the first connect. A URL libpq cannot parse: DURQ_EINVAL; a server that
 * cannot be reached, refuses the login or lacks the database: DURQ_EIO at durq_open.
 * Messages name host, port and database, never the URL or a password.
 */
#ifndef DURQ_POSTGRES_PROVIDER_H
#define DURQ_POSTGRES_PROVIDER_H

#include "durq/provider.h"

int durq_postgres_factory(durq_provider **out, const durq_provider_config *cfg, void *ctx);

#endif
