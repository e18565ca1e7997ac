/*
 * counting_demo.c — registers the out-of-tree counting provider (counting_provider.c) and
 * runs one enqueue, fetch and ack through "counting:<URL>", then prints what the core
 * asked of the provider. Built against the installed headers by scripts/check-install.sh.
 * Usage: counting_demo [URL]   (default sqlite::memory:). Exit 0 if the counts add up.
 */
#include <stdio.h>
#include <string.h>

#include "counting_provider.h"

static int fail(const char *what, int rc)
{
	fprintf(stderr, "%s: %s: %s\n", what, durq_error_name(rc), durq_error_last());
	return 1;
}

int main(int argc, char **argv)
{
	char url[1024];
	durq *db;
	durq_work_item *items = NULL;
	size_t n = 0;
	snprintf(url, sizeof(url), "counting:%s", argc > 1 ? argv[1] : "sqlite::memory:");
	int rc = counting_provider_register();
	if (rc < 0 || (rc = durq_open(&db, url, NULL)) < 0)
		return fail("open", rc);
	counting_provider *cp = (counting_provider *)durq_provider_of(db);
	durq_work w = {.payload = "hello", .payload_len = 5};
	if ((rc = durq_work_enqueue(db, &w, 1)) < 0 ||
	    (rc = durq_work_fetch(db, &items, &n, NULL, 1, 60000, 0)) < 0 ||
	    (rc = durq_work_ack(db, items[0].id, &items[0].token, NULL)) < 0)
		return fail("enqueue/fetch/ack", rc);
	durq_work_items_free(items, n);
	durq_close(db);
	int ops = cp->applies + cp->batch_ops;
	printf("counting provider: %d connections, %d transactions, %d ops applied, %d reads\n",
	       cp->conns_opened, cp->commits, ops, cp->reads);
	int ok = ops == 3 && cp->commits >= 3 && cp->outside_txn == 0;
	durq_free(db);
	return ok ? 0 : 1;
}
