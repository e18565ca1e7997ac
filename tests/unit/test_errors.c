/* test_errors.c — error names, retryable classification, thread-local last-error message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>

#include "durq.h"
#include "durq/provider.h"

static void test_every_code_has_a_name(void **state)
{
	(void)state;
	int codes[] = {DURQ_OK, DURQ_EMPTY, DURQ_EBUSY, DURQ_ELOCKLOST, DURQ_EDUP, DURQ_ENOTFOUND,
		       DURQ_EINVAL, DURQ_ETOOBIG, DURQ_ECORRUPT, DURQ_ENOMEM, DURQ_EIO, DURQ_EFULL,
		       DURQ_ECLOSED, DURQ_EAGAIN, DURQ_ETIMEDOUT};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		assert_string_not_equal(durq_error_name(codes[i]), "DURQ_E?");
	assert_string_equal(durq_error_name(DURQ_ELOCKLOST), "DURQ_ELOCKLOST");
	assert_string_equal(durq_error_name(-999), "DURQ_E?");
}

static void test_retryable_only_busy_io_full(void **state)
{
	(void)state;
	assert_true(durq_error_retryable(DURQ_EBUSY));
	assert_true(durq_error_retryable(DURQ_EIO));
	assert_true(durq_error_retryable(DURQ_EFULL));
	assert_true(durq_error_retryable(DURQ_EAGAIN));    /* backlog full: retry the submit */
	assert_true(durq_error_retryable(DURQ_ETIMEDOUT)); /* flush/group wait: wait again */
	assert_string_equal(durq_error_name(DURQ_EAGAIN), "DURQ_EAGAIN");
	assert_string_equal(durq_error_name(DURQ_ETIMEDOUT), "DURQ_ETIMEDOUT");
	int permanent[] = {DURQ_OK, DURQ_EMPTY, DURQ_ELOCKLOST, DURQ_EDUP, DURQ_ENOTFOUND,
			   DURQ_EINVAL, DURQ_ETOOBIG, DURQ_ECORRUPT, DURQ_ENOMEM, DURQ_ECLOSED};
	for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++)
		assert_false(durq_error_retryable(permanent[i]));
}

static void test_error_set_returns_code_and_formats(void **state)
{
	(void)state;
	assert_int_equal(durq_error_set(DURQ_EINVAL, "bad %s %d", "thing", 7), DURQ_EINVAL);
	assert_string_equal(durq_error_last(), "bad thing 7");
}

static void *other_thread(void *arg)
{
	(void)arg;
	durq_error_set(DURQ_EIO, "message from the other thread");
	return NULL;
}

static void test_last_error_is_per_thread(void **state)
{
	(void)state;
	pthread_t t;
	durq_error_set(DURQ_EDUP, "mine");
	pthread_create(&t, NULL, other_thread, NULL);
	pthread_join(t, NULL);
	assert_string_equal(durq_error_last(), "mine");
}

static void test_open_failure_sets_message(void **state)
{
	(void)state;
	durq *db = (durq *)0x1;
	assert_int_equal(durq_open(&db, "redis://localhost", NULL), DURQ_EINVAL);
	assert_null(db);
	assert_non_null(strstr(durq_error_last(), "unknown URL scheme"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_code_has_a_name),
		cmocka_unit_test(test_retryable_only_busy_io_full),
		cmocka_unit_test(test_error_set_returns_code_and_formats),
		cmocka_unit_test(test_last_error_is_per_thread),
		cmocka_unit_test(test_open_failure_sets_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
