#!/usr/bin/env bash
# scripts/pg-server.sh — a throwaway PostgreSQL server for tests: one fresh data directory in a
# temp dir, TCP on 127.0.0.1 only (a free port), Unix socket in the temp dir, trust auth for
# local and 127.0.0.1 only, fsync and synchronous_commit on (durability tests mean something).
#
#   eval "$(scripts/pg-server.sh start)"   # prints: export DURQ_TEST_PG_DIR=... DURQ_TEST_PG_URL=...
#   scripts/pg-server.sh url  DIR          # prints the URL of the server in DIR
#   scripts/pg-server.sh stop DIR          # pg_ctl stop -m fast, then removes DIR
#   scripts/pg-server.sh psql ARGS...      # the psql of the same installation (tests use it)
#   scripts/pg-server.sh start --password PW  # TCP needs PW (scram-sha-256); the URL carries it
#   scripts/pg-server.sh crash DIR         # pg_ctl stop -m immediate (a crash: no checkpoint)
#   scripts/pg-server.sh restart DIR       # start the server in DIR again, same port
#
# The URL names the database "durq_test" (created at start) as superuser "postgres".
# As root the server runs as the unprivileged user postgres (the Debian package creates it):
# PostgreSQL refuses to run as root. Binaries: the highest /usr/lib/postgresql/*/bin (Debian
# keeps the server there, off PATH; pg_config --bindir there names the client's), then PATH.
# Env: DURQ_PG_TMPDIR (else TMPDIR, else /tmp) holds the temp dir (as root: /tmp when the user
# postgres cannot use TMPDIR). Any failure prints its reason (for the server: the tail of its
# log) on stderr and exits non-zero.
set -euo pipefail

DB=durq_test
MARK=durq-pg-server # file in DIR that says DIR is ours (stop removes only such a DIR)

die() {
	echo "pg-server: $*" >&2
	exit 1
}

# find_bindir — the directory holding initdb, pg_ctl and postgres
find_bindir() {
	local d best=""
	# highest major version first (sort -V: 9.6 < 15 < 16)
	for d in $(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			best=$d
			break
		fi
	done
	if [ -z "$best" ] && command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
		best=$(dirname "$(command -v initdb)")
	fi
	[ -n "$best" ] || die "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or PATH; install the Debian package 'postgresql' (scripts/deps.sh does)"
	echo "$best"
}

# as_owner CMD... — run CMD as the server's OS user (postgres when we are root), from DIR
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd "$dir" && runuser -u postgres -- "$@")
	else
		(cd "$dir" && "$@")
	fi
}

log_tail() {
	if [ -f "$dir/log" ]; then
		echo "---- server log ($dir/log), last 30 lines ----" >&2
		tail -n 30 "$dir/log" >&2
		echo "----" >&2
	fi
}

# port_busy PORT — something already accepts on 127.0.0.1:PORT
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

url_of() {
	local port user=postgres
	port=$(cat "$1/port" 2>/dev/null) || die "$1 holds no server started by this script (no $1/port)"
	[ -f "$1/password" ] && user="postgres:$(cat "$1/password")"
	echo "postgresql://$user@127.0.0.1:$port/$DB?sslmode=disable&connect_timeout=10"
}

# try_start PORT — write the port into the config and start; 0 = up, 2 = port taken, 1 = failed
try_start() {
	local port=$1
	echo "port = $port" >"$dir/data/port.conf"
	[ "$(id -u)" -ne 0 ] || chown postgres: "$dir/data/port.conf"
	: >"$dir/log"
	[ "$(id -u)" -ne 0 ] || chown postgres: "$dir/log"
	if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start >"$dir/pg_ctl.out" 2>&1; then
		echo "$port" >"$dir/port"
		return 0
	fi
	if grep -qE "could not bind|Address already in use|could not create any TCP/IP sockets|lock file .* already exists" "$dir/log"; then
		as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
		return 2
	fi
	return 1
}

cmd_start() {
	local password=${1:-}
	bindir=$(find_bindir)
	local base=${DURQ_PG_TMPDIR:-${TMPDIR:-/tmp}}
	# as root, a TMPDIR the user postgres cannot reach (e.g. under /root) falls back to /tmp
	if [ "$(id -u)" -eq 0 ] && [ -z "${DURQ_PG_TMPDIR:-}" ] && id postgres >/dev/null 2>&1 &&
		! runuser -u postgres -- test -w "$base" -a -x "$base" 2>/dev/null; then
		base=/tmp
	fi
	dir=$(mktemp -d "$base/durq-pg.XXXXXX") || die "mktemp -d in $base failed"
	touch "$dir/$MARK"
	# a failed start leaves nothing behind (the log tail is printed first)
	trap 'rc=$?; if [ $rc -ne 0 ]; then log_tail; cmd_stop_dir "$dir" >/dev/null 2>&1 || true; fi' EXIT
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 || die "running as root, but there is no user 'postgres' to run the server as (the Debian package 'postgresql' creates it)"
		chown postgres: "$dir"
		runuser -u postgres -- test -w "$dir" ||
			die "user postgres cannot write $dir (a parent directory is not searchable by it?); set DURQ_PG_TMPDIR to a directory it can reach, e.g. /tmp"
	fi
	# the socket path (DIR/.s.PGSQL.NNNNN) must fit in sun_path (107 bytes)
	[ ${#dir} -le 90 ] || die "temp dir path '$dir' is too long for a Unix socket path; set DURQ_PG_TMPDIR to a shorter directory"

	as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale \
		>"$dir/initdb.out" 2>&1 || { cat "$dir/initdb.out" >&2; die "initdb failed (output above)"; }
	local host_auth=trust
	if [ -n "$password" ]; then
		host_auth=scram-sha-256
		printf '%s' "$password" >"$dir/password"
		chmod 600 "$dir/password"
	fi
	cat >"$dir/data/pg_hba.conf" <<-EOF
		# durq throwaway test server: only over the Unix socket and 127.0.0.1
		local all all trust
		host  all all 127.0.0.1/32 $host_auth
	EOF
	cat >>"$dir/data/postgresql.conf" <<-EOF

		# ---- durq throwaway test server (scripts/pg-server.sh) ----
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$dir'
		fsync = on
		synchronous_commit = on
		full_page_writes = on
		max_connections = 300
		shared_buffers = 32MB
		max_wal_size = 256MB
		log_line_prefix = '%m [%p] %d '
		include_if_exists = 'port.conf'
	EOF
	[ "$(id -u)" -ne 0 ] || chown postgres: "$dir/data/pg_hba.conf" "$dir/data/postgresql.conf"

	# a free port: random candidates, skipping busy ones; a port taken between the check and
	# the bind shows as a bind error in the log, and we move on to the next candidate
	local port rc
	for _ in $(seq 1 30); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		port_busy "$port" && continue
		rc=0
		try_start "$port" || rc=$?
		[ $rc -eq 0 ] && break
		[ $rc -eq 2 ] && { echo "pg-server: port $port taken, trying another" >&2; continue; }
		cat "$dir/pg_ctl.out" >&2
		die "the server did not start (pg_ctl output above, log below)"
	done
	[ -f "$dir/port" ] || die "no free TCP port found on 127.0.0.1 after 30 tries"

	as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres \
		-c "CREATE DATABASE $DB" >"$dir/createdb.out" 2>&1 ||
		{ cat "$dir/createdb.out" >&2; die "CREATE DATABASE $DB failed (output above)"; }
	if [ -n "$password" ]; then
		# over the socket (trust); the value is a psql variable, quoted by psql (variables
		# are interpolated in a script read from stdin, not in -c)
		printf '%s\n' "SET password_encryption = 'scram-sha-256';" \
			"ALTER USER postgres PASSWORD :'pw';" |
			as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres \
				-d postgres -v pw="$password" >"$dir/password.out" 2>&1 ||
			{ cat "$dir/password.out" >&2; die "setting the password failed (output above)"; }
	fi
	trap - EXIT
	echo "export DURQ_TEST_PG_DIR='$dir'"
	echo "export DURQ_TEST_PG_URL='$(url_of "$dir")'"
}

# cmd_stop_dir DIR — stop the server in DIR (if running) and remove DIR
cmd_stop_dir() {
	dir=$1
	[ -d "$dir" ] || die "no such directory: $dir"
	[ -f "$dir/$MARK" ] || die "$dir was not made by this script (no $MARK file); not removing it"
	bindir=${bindir:-$(find_bindir)}
	local rc=0
	if [ -f "$dir/data/postmaster.pid" ]; then
		if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>"$dir/stop.err"; then
			if as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
				cat "$dir/stop.err" >&2
				log_tail
				as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
					{ echo "pg-server: server in $dir does not stop; leaving $dir" >&2; return 1; }
				rc=1
			fi
		fi
	fi
	cd /
	rm -rf -- "$dir"
	return $rc
}

# cmd_crash DIR — stop the server like a power cut would (no shutdown checkpoint)
cmd_crash() {
	dir=$1
	[ -f "$dir/$MARK" ] || die "$dir was not made by this script"
	bindir=$(find_bindir)
	as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null ||
		die "pg_ctl stop -m immediate failed in $dir"
}

# cmd_restart DIR — start the server in DIR again on its port (after crash)
cmd_restart() {
	dir=$1
	[ -f "$dir/$MARK" ] || die "$dir was not made by this script"
	bindir=$(find_bindir)
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 120 start >"$dir/pg_ctl.out" 2>&1 ||
		{ cat "$dir/pg_ctl.out" >&2; log_tail; die "restart failed in $dir"; }
}

case "${1:-}" in
start)
	if [ $# -eq 3 ] && [ "$2" = "--password" ] && [ -n "$3" ]; then
		cmd_start "$3"
	else
		[ $# -eq 1 ] || die "usage: $0 start [--password PW]"
		cmd_start
	fi
	;;
crash)
	[ $# -eq 2 ] || die "usage: $0 crash DIR"
	cmd_crash "$2"
	;;
restart)
	[ $# -eq 2 ] || die "usage: $0 restart DIR"
	cmd_restart "$2"
	;;
stop)
	[ $# -eq 2 ] || die "usage: $0 stop DIR"
	cmd_stop_dir "$2"
	;;
url)
	[ $# -eq 2 ] || die "usage: $0 url DIR"
	url_of "$2"
	;;
psql)
	shift
	exec "$(find_bindir)/psql" "$@"
	;;
*)
	die "usage: $0 start [--password PW] | stop DIR | crash DIR | restart DIR | url DIR | psql ARGS..."
	;;
esac
