#!/usr/bin/env bash
# tests/cli/cli_test.sh — runs the installed `durq` command against real databases, every verb
# with its bad-input cases, checking stdout, stderr (one line, 'durq: VERB: ...') and the
# exit code. Run by CTest (tests/cli/CMakeLists.txt):
#
#   cli_test.sh sqlite  DURQ CLI_SEED WORKDIR      every verb on a sqlite file
#   cli_test.sh pg      DURQ CLI_SEED WORKDIR      every verb on PostgreSQL (fixture "pg")
#   cli_test.sh roundtrip DURQ CLI_SEED WORKDIR    export -> import sqlite->sqlite and
#                                                  sqlite->postgresql->sqlite, row by row
#   cli_test.sh metrics DURQ CLI_SEED WORKDIR      serve-metrics scraped with curl under load
#   cli_test.sh top DURQ CLI_SEED WORKDIR          top and stats --processes show another
#   cli_test.sh top_pg DURQ CLI_SEED WORKDIR       process's published counters (sqlite, pg)
set -uo pipefail
mode=$1 durq=$2 seed=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
pgs="$here/../../scripts/pg-server.sh"
rm -rf "$work"
mkdir -p "$work"
failures=0 checks=0
out="$work/out" err="$work/err"

fail() {
	echo "FAIL: $*" >&2
	echo "  stdout: $(head -c 2000 "$out")" >&2
	echo "  stderr: $(head -c 2000 "$err")" >&2
	failures=$((failures + 1))
}

# ok NAME CMD... — exit 0, nothing on stderr
ok() {
	local name=$1
	shift
	checks=$((checks + 1))
	"$@" >"$out" 2>"$err"
	local rc=$?
	[ $rc -eq 0 ] || { fail "$name: exit $rc, expected 0 ($*)"; return 1; }
	[ ! -s "$err" ] || { fail "$name: stderr not empty"; return 1; }
	return 0
}

# fails NAME CODE CMD... — exit CODE, empty stdout, exactly one stderr line 'durq: ...'
fails() {
	local name=$1 code=$2
	shift 2
	checks=$((checks + 1))
	"$@" >"$out" 2>"$err"
	local rc=$?
	[ $rc -eq "$code" ] || { fail "$name: exit $rc, expected $code ($*)"; return 1; }
	[ ! -s "$out" ] || { fail "$name: a failing verb printed on stdout"; return 1; }
	local lines
	lines=$(grep -vc "^durq: .*: see 'durq .* --help'$" "$err")
	[ "$lines" -eq 1 ] || { fail "$name: expected one error line, got $lines"; return 1; }
	grep -q '^durq: ' "$err" || { fail "$name: error line does not start with 'durq: '"; return 1; }
	[ "$code" -eq 2 ] || grep -Eq 'DURQ_E[A-Z]+' "$err" ||
		{ fail "$name: error line names no DURQ_E code"; return 1; }
	return 0
}

# has NAME REGEX [FILE] — the last stdout (or FILE) matches
has() {
	checks=$((checks + 1))
	grep -Eq -- "$2" "${3:-$out}" || fail "$1: output does not match /$2/"
}
hasnt() {
	checks=$((checks + 1))
	! grep -Eq -- "$2" "${3:-$out}" || fail "$1: output matches /$2/"
}

# jq-free JSON checks: python3 -c on the last stdout
pyjson() {
	checks=$((checks + 1))
	python3 -c "import json,sys; d=json.load(open('$out')); sys.exit(0 if ($2) else 1)" ||
		fail "$1: JSON check failed: $2"
}

pg_server() { cat "${DURQ_TEST_PG_URL_FILE:?the pg tests need the CTest fixture pg}"; }
# pg_schema NAME — a fresh schema; prints the URL using it
pg_schema() {
	local server
	server=$(pg_server)
	bash "$pgs" psql -X -q -v ON_ERROR_STOP=1 -d "$server" \
		-c "DROP SCHEMA IF EXISTS $1 CASCADE; CREATE SCHEMA $1" >/dev/null 2>&1 ||
		{ echo "cannot create schema $1" >&2; exit 1; }
	case "$server" in *\?*) echo "$server&options=-csearch_path%3D$1" ;; *) echo "$server?options=-csearch_path%3D$1" ;; esac
}
pg_drop() {
	bash "$pgs" psql -X -q -d "$(pg_server)" -c "DROP SCHEMA IF EXISTS $1 CASCADE" >/dev/null 2>&1
}

# ---- every verb on one URL -----------------------------------------------------------
verbs() {
	local url=$1 kind=$2
	ok "seed" "$seed" seed "$url"

	# top level
	ok "--help" "$durq" --help && has "--help" "exit codes" && has "--help" "^  6  "
	ok "--version" "$durq" --version && has "--version" "^durq [0-9]"
	fails "no verb" 2 "$durq"
	fails "unknown verb" 2 "$durq" frobnicate "$url"
	fails "unknown subverb" 2 "$durq" dead frob "$url"
	fails "missing subverb" 2 "$durq" instance
	for v in stats queues top checkpoint integrity vacuum config export import bench serve-metrics \
		"dead list" "dead show" "dead requeue" "dead purge" "work list" "instance list" \
		"instance show" "instance history" "instance delete" "instance tree"; do
		# shellcheck disable=SC2086
		ok "$v --help" "$durq" $v --help && has "$v --help" "^usage: durq $v"
	done
	fails "stats: missing URL" 2 "$durq" stats
	fails "stats: unknown option" 2 "$durq" stats "$url" --bogus
	fails "stats: extra arg" 2 "$durq" stats "$url" extra
	fails "stats: bad URL scheme" 5 "$durq" stats "nosuch://x"
	fails "stats: bad URL param" 5 "$durq" stats "sqlite:$work/x.db?bogus=1"
	fails "stats: missing file" 5 "$durq" stats "sqlite:$work/missing.db"
	[ ! -e "$work/missing.db" ] || fail "stats on a missing file created it"

	# stats
	ok "stats" "$durq" stats "$url" && has "stats" "^provider +$kind" &&
		has "stats" "^work +[0-9]+ +1 +1$" && has "stats" "^dead letters +2$"
	ok "stats --json" "$durq" stats "$url" --json &&
		pyjson "stats --json" "d['dead_letters']==2 and d['work']['leased']==1 and d['work']['delayed']==1 and d['orchestrations']['ready']==1"

	# queues
	ok "queues" "$durq" queues "$url" && has "queues" "^\(orchestrations\) +1 +0 +0" &&
		has "queues" "^emails +3 +1 +0" && has "queues" "^reports +1 +0 +1" &&
		has "queues" "^\(default\) +1 +0 +0" && has "queues" "^activities +2 +0 +0"
	ok "queues --json" "$durq" queues "$url" --json &&
		pyjson "queues --json" "d['queues'][0]['kind']=='orchestration' and any(q['name']=='emails' and q['ready']==3 and q['oldest_wait_ms']>=0 for q in d['queues'])"

	# top (non-interactive)
	ok "top" "$durq" top "$url" --interval 50 --count 2 && has "top" "COMMITS/S" &&
		[ "$(wc -l <"$out")" -eq 3 ] || fail "top: expected a header and 2 lines"
	ok "top --json" "$durq" top "$url" --interval 50 --count 1 --json &&
		python3 -c "import json; d=json.loads(open('$out').readline()); assert d['work_leased']==1 and d['commits_per_s'] is not None" ||
		fail "top --json: bad line"
	fails "top: bad interval" 2 "$durq" top "$url" --interval 0
	fails "top: bad count" 2 "$durq" top "$url" --count x

	# work list
	ok "work list" "$durq" work list "$url" emails && has "work list" " ready " &&
		has "work list" " delayed " && has "work list" "hex:00ff1080" && hasnt "work list" "reports"
	ok "work list leased" "$durq" work list "$url" reports && has "work list leased" " leased "
	ok "work list default" "$durq" work list "$url" "" && has "work list default" "default queue item"
	ok "work list --all-queues" "$durq" work list "$url" --all-queues --limit 3 &&
		has "work list page" "^more: --after [0-9]+$"
	local after
	after=$(sed -n 's/^more: --after //p' "$out")
	ok "work list page 2" "$durq" work list "$url" --all-queues --after "$after" --json &&
		pyjson "work list page 2" "all(i['id']>$after for i in d['items']) and len(d['items'])>=5"
	fails "work list: missing queue" 2 "$durq" work list "$url"
	fails "work list: bad limit" 2 "$durq" work list "$url" emails --limit 0
	ok "work list: leases nothing" "$durq" stats "$url" --json &&
		pyjson "work list leases nothing" "d['work']['leased']==1"

	# dead letters
	ok "dead list" "$durq" dead list "$url" && has "dead list" "poison one" && has "dead list" "poison two"
	ok "dead list --json" "$durq" dead list "$url" --json &&
		pyjson "dead list --json" "len(d['dead_letters'])==2 and d['dead_letters'][0]['attempt']==2 and d['dead_letters'][0]['queue']=='poison'"
	local d1 d2
	d1=$(python3 -c "import json; print(json.load(open('$out'))['dead_letters'][0]['id'])")
	d2=$(python3 -c "import json; print(json.load(open('$out'))['dead_letters'][1]['id'])")
	ok "dead list page" "$durq" dead list "$url" --limit 1 && has "dead list page" "^more: --after $d1$"
	ok "dead show" "$durq" dead show "$url" "$d1" && has "dead show" "^payload +poison one$" &&
		has "dead show" "^attempts +2$"
	ok "dead show --json" "$durq" dead show "$url" "$d2" --json &&
		pyjson "dead show --json" "d['payload']['text']=='poison two'"
	fails "dead show: none" 3 "$durq" dead show "$url" 999999
	fails "dead show: bad id" 2 "$durq" dead show "$url" abc
	fails "dead requeue: none" 3 "$durq" dead requeue "$url" 999999
	ok "dead requeue" "$durq" dead requeue "$url" "$d1" && has "dead requeue" "^requeued $d1$"
	ok "dead requeued is work" "$durq" work list "$url" poison && has "dead requeued" "poison one"
	fails "dead purge: no filter" 2 "$durq" dead purge "$url"
	fails "dead purge: all + filter" 2 "$durq" dead purge "$url" --all --id 1
	ok "dead purge --queue other" "$durq" dead purge "$url" --queue nosuch && has "purge none" "^purged 0$"
	ok "dead purge --older-than" "$durq" dead purge "$url" --older-than 3600 && has "purge old" "^purged 0$"
	ok "dead purge --id" "$durq" dead purge "$url" --id "$d2" && has "purge id" "^purged 1$"
	ok "dead list empty" "$durq" dead list "$url" --json && pyjson "dead list empty" "d['dead_letters']==[]"
	ok "dead purge --all" "$durq" dead purge "$url" --all && has "purge all" "^purged 0$"

	# instances
	ok "instance list" "$durq" instance list "$url" && has "instance list" "^done-1$" &&
		has "instance list" "^order-1-child$" && hasnt "instance list" "order-2"
	ok "instance list --status" "$durq" instance list "$url" --status completed &&
		[ "$(cat "$out")" = "done-1" ] || fail "instance list --status completed: $(cat "$out")"
	ok "instance list --prefix" "$durq" instance list "$url" --prefix order-1 --json &&
		pyjson "prefix" "d['instances']==['order-1','order-1-child'] and d['next_after'] is None"
	ok "instance list paging" "$durq" instance list "$url" --limit 2 &&
		has "paging" "^more: --after order-1$"
	ok "instance list page 2" "$durq" instance list "$url" --after order-1 &&
		[ "$(cat "$out")" = "order-1-child" ] || fail "page 2: $(cat "$out")"
	fails "instance list: bad status" 2 "$durq" instance list "$url" --status sleepy
	ok "instance show" "$durq" instance show "$url" done-1 && has "show" "^status +completed$" &&
		has "show" '^output +\{"total":42\}$' && has "show" "^name +order$"
	ok "instance show --json" "$durq" instance show "$url" order-1-child --json &&
		pyjson "show json" "d['parent_id']=='order-1' and d['executions'][0]['events']==2"
	fails "instance show: none" 3 "$durq" instance show "$url" nosuch
	fails "instance show: missing id" 2 "$durq" instance show "$url"
	ok "instance history" "$durq" instance history "$url" order-1 && has "history" "^2 +scheduled charge$"
	ok "instance history --json" "$durq" instance history "$url" order-1 --execution 1 --json &&
		pyjson "history json" "[e['event_id'] for e in d['events']]==[1,2]"
	fails "instance history: none" 3 "$durq" instance history "$url" nosuch
	ok "instance tree" "$durq" instance tree "$url" && has "tree" "^order-1  \[running\]" &&
		has "tree" "^  order-1-child  \[running\]"
	ok "instance tree ID --json" "$durq" instance tree "$url" order-1 --json &&
		pyjson "tree json" "d['trees'][0]['children'][0]['id']=='order-1-child'"
	fails "instance tree: none" 3 "$durq" instance tree "$url" nosuch
	ok "instance delete" "$durq" instance delete "$url" done-1 && has "delete" "^deleted done-1$"
	fails "instance delete: gone" 3 "$durq" instance delete "$url" done-1

	# maintenance
	ok "checkpoint" "$durq" checkpoint "$url"
	ok "integrity" "$durq" integrity "$url" && [ "$(cat "$out")" = "ok" ] || fail "integrity: $(cat "$out")"
	ok "vacuum" "$durq" vacuum "$url" && has "vacuum" "^vacuumed"
	ok "config" "$durq" config "$url" && has "config" "^commit_mode +group +default$" && has "config" "^pool_size +5 +option$"
	ok "config env" env DURQ_MAX_ATTEMPTS=7 "$durq" config "$url" &&
		has "config env" "^max_attempts +7 +environment DURQ_MAX_ATTEMPTS$"
	ok "config --json" "$durq" config "$url" --json &&
		pyjson "config json" "any(s['name']=='pool_size' for s in d['settings'])"
	fails "config: bad env" 5 env DURQ_POOL_SIZE=500 "$durq" config "$url"

	# export / import bad input (on a fresh target)
	ok "export" "$durq" export "$url" -o "$work/verbs.jsonl"
	has "export header" '^\{"format":"durq-export","format_version":1' "$work/verbs.jsonl"
	has "export end" '^\{"end":true' "$work/verbs.jsonl"
	hasnt "export: no locks" '"table":"instance_locks"' "$work/verbs.jsonl"
	fails "import: missing file" 6 "$durq" import "sqlite:$work/imp.db" -i "$work/nosuch.jsonl"
	fails "import: empty" 6 "$durq" import "sqlite:$work/imp.db" -i /dev/null
	echo '{"format":"other"}' >"$work/bad1.jsonl"
	fails "import: not durq" 6 "$durq" import "sqlite:$work/imp.db" -i "$work/bad1.jsonl"
	sed 's/"format_version":1/"format_version":99/' "$work/verbs.jsonl" >"$work/bad2.jsonl"
	fails "import: newer format" 6 "$durq" import "sqlite:$work/imp.db" -i "$work/bad2.jsonl"
	head -n -1 "$work/verbs.jsonl" >"$work/bad3.jsonl"
	fails "import: truncated" 6 "$durq" import "sqlite:$work/imp.db" -i "$work/bad3.jsonl"
	awk 'NR==5{print "{not json"} {print}' "$work/verbs.jsonl" >"$work/bad4.jsonl"
	fails "import: malformed line" 6 "$durq" import "sqlite:$work/imp.db" -i "$work/bad4.jsonl"
	ok "import: nothing written" "$durq" stats "sqlite:$work/imp.db" --json &&
		pyjson "all or nothing" "d['work']['ready']==0 and d['dead_letters']==0"
	ok "instances: nothing written" "$durq" instance list "sqlite:$work/imp.db" &&
		[ ! -s "$out" ] || fail "an import that failed left instances"
	ok "import" "$durq" import "sqlite:$work/imp.db" -i "$work/verbs.jsonl" && has "import" "^imported [0-9]+ rows"
	fails "import: not empty" 6 "$durq" import "sqlite:$work/imp.db" -i "$work/verbs.jsonl"
}

newer_schema() {
	ok "seed newer" "$seed" seed "sqlite:$work/newer.db"
	python3 -c "import sqlite3; c=sqlite3.connect('$work/newer.db'); c.execute('PRAGMA user_version=99'); c.commit()"
	fails "newer schema" 4 "$durq" stats "sqlite:$work/newer.db"
	has "newer schema message" "newer" "$err"
	echo "not a database, just text" >"$work/junk.db"
	fails "not a database" 4 "$durq" stats "sqlite:$work/junk.db"
	ok "memory url" "$durq" stats sqlite::memory: && has "memory" "^provider +sqlite-memory"
	ok "memory export" "$durq" export sqlite::memory:
}

# export A, import into B, export B: every line but the header identical (rows in key
# order, so this is a row-by-row comparison)
same_rows() {
	checks=$((checks + 1))
	if ! diff <(tail -n +2 "$1") <(tail -n +2 "$2") >"$work/diff" 2>&1; then
		fail "$3: exports differ: $(head -c 1500 "$work/diff")"
	fi
}

roundtrip() {
	local a="sqlite:$work/a.db" b="sqlite:$work/b.db" c="sqlite:$work/c.db"
	ok "seed" "$seed" seed "$a"
	ok "export a" "$durq" export "$a" -o "$work/a.jsonl"
	ok "import b" "$durq" import "$b" <"$work/a.jsonl"
	ok "export b" "$durq" export "$b" -o "$work/b.jsonl"
	same_rows "$work/a.jsonl" "$work/b.jsonl" "sqlite->sqlite"
	# the leased item is ready again in the copy, its attempt kept
	ok "b queues" "$durq" queues "$b" --json &&
		pyjson "lease dropped" "any(q['name']=='reports' and q['leased']==0 and q['ready']==2 for q in d['queues'])"
	ok "b work" "$durq" work list "$b" reports --json &&
		pyjson "attempt kept" "sorted(i['attempt'] for i in d['items'])==[0,1]"
	# a copy is a working database: fetch and ack from it
	ok "b works" "$seed" load "$b" 3
	if [ -n "${DURQ_TEST_PG_URL_FILE:-}" ]; then
		local s="durq_cli_rt_$$" pg
		pg=$(pg_schema "$s")
		ok "import pg" "$durq" import "$pg" -i "$work/a.jsonl"
		ok "export pg" "$durq" export "$pg" -o "$work/pg.jsonl"
		has "pg header" '"provider":"postgresql"' "$work/pg.jsonl"
		same_rows "$work/a.jsonl" "$work/pg.jsonl" "sqlite->postgresql"
		ok "pg works" "$seed" load "$pg" 3
		ok "pg integrity" "$durq" integrity "$pg"
		ok "import back" "$durq" import "$c" -i "$work/pg.jsonl"
		ok "export c" "$durq" export "$c" -o "$work/c.jsonl"
		same_rows "$work/a.jsonl" "$work/c.jsonl" "postgresql->sqlite"
		fails "import pg: not empty" 6 "$durq" import "$pg" -i "$work/a.jsonl"
		pg_drop "$s"
	fi
}

metrics() {
	local url="sqlite:$work/m.db" port pid
	ok "seed" "$seed" seed "$url"
	fails "serve-metrics: bad listen" 2 "$durq" serve-metrics "$url" --listen nonsense
	fails "serve-metrics: bad host" 2 "$durq" serve-metrics "$url" --listen 999.1.1.1:80
	"$durq" serve-metrics "$url" --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
	pid=$!
	for _ in $(seq 1 100); do
		grep -q '^listening on' "$work/serve.out" 2>/dev/null && break
		sleep 0.1
	done
	port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/metrics$|\1|p' "$work/serve.out")
	[ -n "$port" ] || { fail "serve-metrics did not say where it listens: $(cat "$work/serve.err")"; kill "$pid"; return; }
	# a second server on the same port fails cleanly
	fails "serve-metrics: port in use" 5 "$durq" serve-metrics "$url" --listen "127.0.0.1:$port"
	ok "scrape 1" curl -sf "http://127.0.0.1:$port/metrics"
	cp "$out" "$work/scrape1"
	has "scrape 1" '^# TYPE durq_ops_total counter$' "$work/scrape1"
	has "scrape 1" '^durq_db_commits_total [0-9]+$' "$work/scrape1"
	checks=$((checks + 1))
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/other")" = 404 ] ||
		fail "a path other than /metrics is not 404"
	ok "load" "$seed" load "$url" 50
	ok "scrape 2" curl -sf "http://127.0.0.1:$port/metrics"
	cp "$out" "$work/scrape2"
	local c1 c2
	c1=$(sed -n 's/^durq_db_commits_total //p' "$work/scrape1")
	c2=$(sed -n 's/^durq_db_commits_total //p' "$work/scrape2")
	checks=$((checks + 1))
	[ "$c2" -ge $((c1 + 100)) ] || fail "commits did not grow by the load's 100+: $c1 -> $c2"
	kill -TERM "$pid"
	wait "$pid"
	local rc=$?
	checks=$((checks + 1))
	[ $rc -eq 0 ] || fail "serve-metrics exited $rc after SIGTERM"
}

# ---- another process's counters: top, stats --processes (stats_publish_ms) ----------
top_procs() {
	local url=$1 stop="$work/stop" pid rc
	ok "seed" "$seed" seed "$url"
	rm -f "$stop"
	DURQ_STATS_PUBLISH_MS=100 "$seed" run "$url" "$stop" >"$work/run.out" 2>"$work/run.err" &
	pid=$!
	# its first publication comes with a write 100 ms after its open
	for _ in $(seq 1 100); do
		"$durq" stats "$url" --processes --json >"$out" 2>"$err" &&
			python3 -c "import json,sys; d=json.load(open('$out')); sys.exit(0 if any(p['pid']==$pid and p['ops']>0 for p in d['processes']) else 1)" &&
			break
		sleep 0.1
	done
	ok "stats --processes --json" "$durq" stats "$url" --processes --json &&
		pyjson "stats --processes: the other process" "any(p['pid']==$pid and p['fresh'] and p['ops']>0 and p['transactions']>0 and p['interval_ms']==100 and p['p99_commit_ms'] is not None for p in d['processes'])"
	ok "stats --processes" "$durq" stats "$url" --processes &&
		has "stats --processes: header" "^PROCESS +STARTED +OPS +COMMITS +OPS/C +P99 COMMIT +P99 ACK +POOL WAITS$" &&
		has "stats --processes: its line" "^$pid@[^ ]+ +[0-9T:.-]+Z +[1-9][0-9]* +[1-9][0-9]* "
	ok "top --json" "$durq" top "$url" --interval 300 --count 4 --json
	checks=$((checks + 1))
	python3 - "$out" "$pid" <<'PY' || fail "top --json: the other process's ops do not show or do not change"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
pid = int(sys.argv[2])
assert len(lines) == 4, len(lines)
mine = [[p for p in l['processes'] if p['pid'] == pid] for l in lines]
assert all(len(m) == 1 and m[0]['ops'] > 0 for m in mine), mine
ops = [m[0]['ops'] for m in mine]
assert ops[-1] > ops[0], ops  # it keeps working: its published ops change
last = mine[-1][0]
assert last['ops_per_s'] > 0 and last['commits_per_s'] > 0, last
assert last['ops_per_commit'] >= 1 and last['pool_waits_per_s'] >= 0, last
t = lines[-1]['totals']
assert t['processes'] >= 1 and t['ops_per_s'] >= last['ops_per_s'], t
PY
	ok "top" "$durq" top "$url" --interval 300 --count 2 &&
		has "top: processes header" "^  PROCESS +OPS/S +COMMITS/S +OPS/C +P99 COMMIT +P99 ACK +POOL WAITS/S$" &&
		has "top: total" "^  all \([1-9][0-9]*\) " && has "top: its line" "^  $pid@"
	touch "$stop"
	wait "$pid"
	rc=$?
	checks=$((checks + 1))
	[ $rc -eq 0 ] || fail "the load process exited $rc: $(cat "$work/run.err")"
	# its durq_close deleted its row
	ok "stats --processes after close" "$durq" stats "$url" --processes --json &&
		pyjson "row gone at close" "not any(p['pid']==$pid for p in d['processes'])"
	ok "config: stats_publish_ms" env DURQ_STATS_PUBLISH_MS=250 "$durq" config "$url" &&
		has "config: stats_publish_ms" "^stats_publish_ms +250 +environment DURQ_STATS_PUBLISH_MS$"
	ok "config: off" env DURQ_STATS_PUBLISH_MS=0 "$durq" config "$url" &&
		has "config: off" "^stats_publish_ms +off +environment"
	fails "config: bad DURQ_STATS_PUBLISH_MS" 5 env DURQ_STATS_PUBLISH_MS=x "$durq" config "$url"
	fails "stats --processes: extra arg" 2 "$durq" stats "$url" --processes extra
}

bench() {
	printf '#!/bin/sh\necho "bench args: $*"\n' >"$work/fake-bench.sh"
	ok "bench runs the script" env DURQ_BENCH_SCRIPT="$work/fake-bench.sh" "$durq" bench --workers 1 &&
		has "bench" "^bench args: --workers 1$"
	fails "bench: no script" 5 env DURQ_BENCH_SCRIPT="$work/nosuch.sh" "$durq" bench
}

case "$mode" in
sqlite)
	verbs "sqlite:$work/v.db" sqlite-file
	newer_schema
	bench
	;;
pg)
	s="durq_cli_v_$$"
	verbs "$(pg_schema "$s")" postgresql
	pg_drop "$s"
	;;
roundtrip) roundtrip ;;
metrics) metrics ;;
top) top_procs "sqlite:$work/t.db" ;;
top_pg)
	s="durq_cli_top_$$"
	top_procs "$(pg_schema "$s")"
	pg_drop "$s"
	;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac
echo "cli_test $mode: $checks checks, $failures failures"
[ "$failures" -eq 0 ]
