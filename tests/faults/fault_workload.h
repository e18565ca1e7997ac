/*
 * fault_workload.h — the fixed workload of the fault sweep (open, enqueues, an async
 * enqueue, fetch, ack, renew, abandon, an orchestration turn, ack_many, close = checkpoint,
 * reopen, async acks, close), run against the model of fault_model.h. With a fault armed it
 * checks, step by step: before the fault fires every call does what a fault-free run does;
 * the call the fault hits returns DURQ_EIO or DURQ_EFULL (or succeeds having committed) and
 * is applied all or nothing; once it clears every call succeeds again (allowing one close
 * and reopen); at the end the file passes integrity_check and holds exactly what the OK'd
 * calls say, and a fresh handle works.
 */
#ifndef DURQ_TESTS_FAULT_WORKLOAD_H
#define DURQ_TESTS_FAULT_WORKLOAD_H

#include "fault_model.h"
#include "faultvfs.h"

/* Outcome counts, summed over runs. */
typedef struct fw_figures {
	long runs;
	long not_reached;        /* the armed call never came (the run took another path) */
	long eio, efull;         /* ops the fault failed, by the code they returned */
	long absorbed;           /* the fault fired but every call of its step succeeded */
	long applied_anyway;     /* an op returned an error, yet its commit stands */
	long open_failed;        /* the fault failed a durq_open: the next step reopened */
	long reopened;           /* a call failed after the fault cleared: closed and reopened */
	long deferred;           /* checks left to the next open: a failed first open left a
				  * hot rollback journal that a read-only check cannot read */
	long violations;
} fw_figures;

typedef struct fw_config {
	const char *sweep;       /* name, for messages */
	int commit_mode;         /* enum durq_commit_mode */
	long repeat;             /* calls to fail from the nth on (< 0: until the step ends) */
	const char *dir;         /* the database lives here: dir/fault.db */
	faultvfs *vfs;
	int verbose;             /* print every step's result */
} fw_config;

/* One run of the workload. op == FAULTVFS_ANY with nth == 0: no fault (the counting run).
 * Otherwise the nth call of op fails with rc (0 = its default). Violations are printed
 * (at most print_budget of them, counted down) and counted in fig. counts (may be NULL)
 * gets the I/O calls of the workload by type (the final check's not included). Returns the
 * number of violations of this run. */
int fw_run(const fw_config *cfg, int op, long nth, int rc, fw_figures *fig, long *print_budget,
	   long counts[FAULTVFS__COUNT]);

#endif
