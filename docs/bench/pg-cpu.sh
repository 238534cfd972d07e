#!/bin/bash
set -e
# Usage: VT=path/to/veritrail pg-cpu.sh ORGS [CONCURRENCY [DURATION]]
# One `veritrail bench --db` run on a fresh database of a running PostgreSQL
# (PGHOST: its socket directory, PGPORT, user postgres), and the CPU per
# stored event of PostgreSQL (postmaster and its children), the node and the
# load generator, over 12 s of steady load (from the 3,000th event stored).
# CPU is read from /proc (utime+stime), so it counts what each process ran,
# not what it waited for the others: on a loaded machine it is the steadier
# figure, events/s the one that moves.
VT=${VT:-veritrail}
ORGS=${1:-1}; CONC=${2:-8}; DUR=${3:-20s}
: "${PGHOST:?the PostgreSQL socket directory}" "${PGPORT:?the PostgreSQL port}"
DB=cpu_$(date +%s%N | tail -c 9)
psql -U postgres -d postgres -qc "create database $DB"
PM=$(ps -o ppid= -p "$(psql -U postgres -d postgres -qAtc "select pid from pg_stat_activity where backend_type = 'checkpointer'")" | tr -d ' ')
stored() { psql -U postgres -d $DB -qAtc "select coalesce(sum(size), 0) from log_heads" 2>/dev/null || echo 0; }
# snap GROUP PID…: "GROUP PID ticks" of each process still there.
snap() { local g=$1 p; shift; for p in "$@"; do awk -v g=$g -v p=$p '{print g, p, $14 + $15}' /proc/$p/stat 2>/dev/null || true; done; }
pgpids() { echo $PM $(ps -o pid= --ppid $PM); }
"$VT" bench --db "postgres://postgres@localhost:$PGPORT/$DB?host=$PGHOST" --orgs $ORGS --concurrency $CONC --duration $DUR >/tmp/pg-cpu.$DB.out 2>&1 &
B=$!
until [ "$(stored)" -ge 3000 ] 2>/dev/null; do sleep 0.5; kill -0 $B 2>/dev/null || break; done
SRV=$(ps -o pid= --ppid $B | tr '\n' ' ')
n0=$(stored); t0=$(date +%s.%N)
S0=$( (snap postgres $(pgpids); snap node $SRV; snap generator $B) )
sleep 12
n1=$(stored); t1=$(date +%s.%N)
SRV=$(ps -o pid= --ppid $B | tr '\n' ' ')
S1=$( (snap postgres $(pgpids); snap node $SRV; snap generator $B) )
wait $B
grep '^  \(setup\|acknowledged\|latency\|group commit\|server RSS\)' /tmp/pg-cpu.$DB.out
HZ=$(getconf CLK_TCK)
# A process counts for the ticks it ran between the snapshots, one that
# started meanwhile for all its ticks, one that ended meanwhile (none
# should: the pools keep their connections) not at all.
{ echo "$S0" | sed 's/^/A /'; echo "$S1" | sed 's/^/B /'; } | awk -v n=$((n1 - n0)) -v dt="$(echo "$t1 - $t0" | bc)" -v hz=$HZ -v load="$(cut -d' ' -f1-3 /proc/loadavg)" '
	$1 == "A" { a[$3] = $4 }
	$1 == "B" { c[$2] += $4 - a[$3]; procs[$2]++ }
	END {
		us = 1e6 / hz / n
		printf "  steady 12 s: %d events, %.0f events/s; CPU per event: PostgreSQL %.1f us, node %.1f us, load generator %.1f us, together %.1f us (load average %s; %d, %d and %d processes)\n", n, n / dt, c["postgres"] * us, c["node"] * us, c["generator"] * us, (c["postgres"] + c["node"] + c["generator"]) * us, load, procs["postgres"], procs["node"], procs["generator"]
	}'
rm -f /tmp/pg-cpu.$DB.out
