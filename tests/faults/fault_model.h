/*
 * fault_model.h — what the fault sweep's workload should have left in the database, and
 * what is really there: the expected state of each entity (a worker item, or the one
 * orchestration), read back from the file with a plain SQLite connection (default VFS,
 * read-only) and compared on a chosen set of entities.
 */
#ifndef DURQ_TESTS_FAULT_MODEL_H
#define DURQ_TESTS_FAULT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "durq.h"

/* The worker items of the workload (payload = name), then the orchestration "o1". */
enum { FM_W1, FM_W2, FM_W3, FM_W4, FM_A1, FM_W5, FM_ITEMS, FM_ORCH = FM_ITEMS, FM_ENTITIES };
#define FM_BIT(e) (1u << (e))
#define FM_ALL ((1u << FM_ENTITIES) - 1)

/* Who holds a lease: nobody, this run (token known), or a claim whose call failed but that
 * committed anyway (token unknown). */
enum { FM_FREE = 0, FM_OURS = 1, FM_LOST = 2 };

typedef struct fm_item {
	int present;
	int leased;           /* FM_FREE / FM_OURS / FM_LOST (the database: 0 or 1) */
	int attempt;
	int64_t lease_until;  /* compared when the model's lease is FM_OURS */
	int64_t id;
	durq_token token;
} fm_item;

typedef struct fm_orch {
	int start;            /* start message: 0 gone, 1 queued, 2 tagged by a fetch */
	int timer;            /* the timer message the turn schedules: 0 / 1 */
	int instance;         /* instance row: 0 / 1 */
	int history;          /* history events */
	int locked;           /* FM_FREE / FM_OURS / FM_LOST (the database: 0 or 1) */
	durq_token token;
} fm_orch;

typedef struct fm_model {
	fm_item w[FM_ITEMS];
	fm_orch o;
} fm_model;

const char *fm_payload(int item);
#define FM_INSTANCE "o1"
#define FM_START_PAYLOAD "start-o1"
#define FM_TIMER_PAYLOAD "timer-o1"

/* Read the database at path (leases live if they end after now) into out, after PRAGMA
 * integrity_check. A missing file or schema reads as empty. 0; 1 if a read-only connection
 * cannot read it before a writer recovers it (a hot rollback journal); or -1 with why
 * filled (integrity failure, an unknown or duplicated item, an SQLite error). */
int fm_read_db(fm_model *out, const char *path, int64_t now, char *why, size_t len);
/* 1 if the model and the database agree on every entity in mask, else 0 with why filled. */
int fm_agree(const fm_model *model, const fm_model *db, unsigned mask, char *why, size_t len);
/* Copy the entities in mask from src into dst. */
void fm_take(fm_model *dst, const fm_model *src, unsigned mask);

#endif
