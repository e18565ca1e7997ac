#!/usr/bin/env bash
# tests/pg_fixture.sh — the CTest fixture "pg" (tests/CMakeLists.txt): one PostgreSQL server for
# the tests of one ctest run, its URL in a file the tests read (DURQ_TEST_PG_URL_FILE).
#
#   pg_fixture.sh start STATE_DIR   # setup test pg_server_start: STATE_DIR/url (+ STATE_DIR/dir)
#   pg_fixture.sh stop  STATE_DIR   # cleanup test pg_server_stop: stops the server, removes files
#   pg_fixture.sh smoke             # test pg_harness_smoke: the server in the URL file answers
#
# If DURQ_TEST_PG_URL is set when ctest runs, start uses that server (it must let the URL's user
# create and drop databases: the conformance suite makes one per test) and stop leaves it alone.
# Otherwise start runs scripts/pg-server.sh. Any failure exits non-zero with its reason.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pgs="$here/../scripts/pg-server.sh"

die() {
	echo "pg fixture: $*" >&2
	exit 1
}

# psql_q URL SQL — one statement, unaligned tuples only, stop on error
psql_q() {
	bash "$pgs" psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# stop_owned STATE_DIR — stop the server this fixture started (if any) and forget it
stop_owned() {
	local rc=0
	if [ -f "$1/dir" ]; then
		bash "$pgs" stop "$(cat "$1/dir")" || rc=$?
	fi
	rm -f "$1/url" "$1/dir"
	return $rc
}

cmd_start() {
	local state=$1 out
	mkdir -p "$state"
	# a server left by an aborted run (ctest killed before its cleanup test) goes first
	stop_owned "$state" || echo "pg fixture: could not stop the server of an earlier run" >&2
	if [ -n "${DURQ_TEST_PG_URL:-}" ]; then
		psql_q "$DURQ_TEST_PG_URL" "select 1" >/dev/null ||
			die "DURQ_TEST_PG_URL is set, but its server does not answer 'select 1' (psql error above)"
		echo "$DURQ_TEST_PG_URL" >"$state/url.tmp"
		mv "$state/url.tmp" "$state/url"
		echo "pg fixture: using the server of DURQ_TEST_PG_URL (not started or stopped here)"
		return 0
	fi
	out=$(bash "$pgs" start) || die "scripts/pg-server.sh start failed (reason above)"
	local DURQ_TEST_PG_DIR DURQ_TEST_PG_URL
	eval "$out"
	echo "$DURQ_TEST_PG_DIR" >"$state/dir"
	echo "$DURQ_TEST_PG_URL" >"$state/url.tmp"
	mv "$state/url.tmp" "$state/url"
	echo "pg fixture: server in $DURQ_TEST_PG_DIR at $DURQ_TEST_PG_URL"
}

cmd_smoke() {
	local file=${DURQ_TEST_PG_URL_FILE:-}
	[ -n "$file" ] || die "DURQ_TEST_PG_URL_FILE is not set (the test must require fixture pg)"
	[ -s "$file" ] || die "no URL in $file (did pg_server_start run and pass?)"
	local url one db
	url=$(cat "$file")
	one=$(psql_q "$url" "select 1") || die "'select 1' failed on $url"
	[ "$one" = 1 ] || die "'select 1' on $url returned '$one'"
	echo "select 1 -> $one"
	psql_q "$url" "select 'server ' || version()"
	psql_q "$url" "select name || '=' || setting from pg_settings where name in ('fsync', 'synchronous_commit', 'max_connections') order by name"
	# what the conformance factory does for each test: a fresh database, then drop it
	db="durq_t_smoke_$$"
	psql_q "$url" "CREATE DATABASE $db" || die "CREATE DATABASE failed on $url"
	psql_q "$url" "DROP DATABASE $db WITH (FORCE)" || die "DROP DATABASE failed on $url"
	echo "create/drop database: ok"
}

case "${1:-}" in
start) [ $# -eq 2 ] || die "usage: $0 start STATE_DIR"; cmd_start "$2" ;;
stop) [ $# -eq 2 ] || die "usage: $0 stop STATE_DIR"; stop_owned "$2" ;;
smoke) cmd_smoke ;;
*) die "usage: $0 start STATE_DIR | stop STATE_DIR | smoke" ;;
esac
