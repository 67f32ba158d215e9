#!/usr/bin/env bash
# compare.sh: the same STOMP-over-WebSocket load against stompbox and against
# RabbitMQ's web-stomp plugin, both on loopback, with `stompbox bench`.
# It prints every figure for both with the ratio and rewrites the results
# section of docs/benchmarks.md.
#
# Usage: scripts/compare.sh            (from the repository root, as root to
#                                       install RabbitMQ; about 12 minutes)
# Sizes can be changed through the environment, e.g. SUBS=100 COUNT=500.
#
# Everything it starts it stops by PID (RabbitMQ with `rabbitmqctl stop
# PIDFILE`, its private epmd with `epmd -kill` on the private port). Nothing
# listens beyond 127.0.0.1.
set -euo pipefail
case "${1:-}" in
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
"") ;;
*)
	echo "compare.sh takes no arguments; sizes come from the environment (see --help)" >&2
	exit 2
	;;
esac
cd "$(dirname "$0")/.."

SUBS=${SUBS:-1000}             # fan-out subscribers
COUNT=${COUNT:-10000}          # fan-out messages: about 10 s over WebSocket, long enough to measure a steady rate
SIZE=${SIZE:-256}              # fan-out body bytes
FANOUT_TIME=${FANOUT_TIME:-90s} # upper bound of one fan-out run (RabbitMQ's end here)
IDLE=${IDLE:-10000}            # idle connections compared
IDLE_MAX=${IDLE_MAX:-50000}    # idle connections attempted on stompbox alone
IDLE_MEMLIMIT=${IDLE_MEMLIMIT:-150} # MiB: stompbox's -memory-limit for the second idle run
ROOMS=${ROOMS:-1000}           # chat rooms
PEOPLE=${PEOPLE:-10}           # people per room
ROOM_USERS=${ROOM_USERS:-500}  # accounts shared by the people: each costs one argon2id hash
TALK_TIME=${TALK_TIME:-30s}    # how long the people talk
INTERVAL=${INTERVAL:-5s}       # time between one person's messages
STEP_LIMIT=${STEP_LIMIT:-240}  # seconds: hard bound on any one step
SB_PORT=${SB_PORT:-18080}
RMQ_WS_PORT=${RMQ_WS_PORT:-15674}
RMQ_STOMP_PORT=${RMQ_STOMP_PORT:-36613}
RMQ_DIST_PORT=${RMQ_DIST_PORT:-35673}
RMQ_EPMD_PORT=${RMQ_EPMD_PORT:-34369}
RMQ_BIN=/usr/lib/rabbitmq/bin # the unwrapped scripts: Debian's /usr/sbin wrappers switch user and drop the environment

WORK=$(mktemp -d)
SB_PID=""
RMQ_PID=""
RMQ_STARTED=""
RESULTS="$WORK/results.txt"
: >"$RESULTS"

log() { printf '%s compare: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
	set +e
	if [ -n "$SB_PID" ]; then
		kill -TERM "$SB_PID" 2>/dev/null && wait "$SB_PID" 2>/dev/null
	fi
	if [ -n "$RMQ_STARTED" ]; then
		rmq_env
		timeout 60 "$RMQ_BIN/rabbitmqctl" stop "$WORK/rmq/pid" >/dev/null 2>&1 ||
			{ [ -n "$RMQ_PID" ] && kill -TERM "$RMQ_PID" 2>/dev/null; }
		ERL_EPMD_PORT=$RMQ_EPMD_PORT epmd -kill >/dev/null 2>&1
	fi
	[ -f "$WORK/bench.err" ] && cp "$WORK/bench.err" "${BENCH_ERR_COPY:-/dev/null}"
	rm -rf "$WORK"
}
trap cleanup EXIT

# The file limit: the servers and the tool inherit the hard limit.
ulimit -n "$(ulimit -Hn)" || true
NOFILE=$(ulimit -n)

# --- machine --------------------------------------------------------------
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
NPROC=$(nproc)
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine: $NPROC × $CPU_MODEL, $MEM, load $LOAD_START, file limit $NOFILE"

# --- RabbitMQ -------------------------------------------------------------
RMQ_NOTE=""
RMQ_GEN=0 # which start this is: each gets its own node name, distribution port and data
rmq_env() {
	export RABBITMQ_NODENAME=stompbench$RMQ_GEN@localhost
	export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 # AMQP listener (5672) on loopback only
	export RABBITMQ_DIST_PORT=$((RMQ_DIST_PORT + RMQ_GEN))
	export ERL_EPMD_ADDRESS=127.0.0.1
	export ERL_EPMD_PORT=$RMQ_EPMD_PORT # a private epmd that we may stop
	export RABBITMQ_CONFIG_FILE=$WORK/rmq/rabbitmq.conf
	export RABBITMQ_ENABLED_PLUGINS_FILE=$WORK/rmq/enabled_plugins
	export RABBITMQ_MNESIA_BASE=$WORK/rmq/mnesia$RMQ_GEN
	export RABBITMQ_LOG_BASE=$WORK/rmq/log
	export RABBITMQ_PID_FILE=$WORK/rmq/pid
	export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
	export HOME=$WORK/rmq # the Erlang cookie lives here
	export ERL_CRASH_DUMP=$WORK/rmq/erl_crash.dump # a crashing rabbitmqctl would otherwise leave it in the repository
}

start_rabbitmq() {
	if [ ! -x "$RMQ_BIN/rabbitmq-server" ]; then
		local cand
		cand=$(apt-cache policy rabbitmq-server 2>/dev/null | awk '/Candidate:/ {print $2}')
		if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
			RMQ_NOTE="rabbitmq-server is not installable here (apt-cache policy shows no candidate): stompbox figures only"
			return 1
		fi
		log "installing rabbitmq-server $cand"
		if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server >"$WORK/apt.log" 2>&1; then
			RMQ_NOTE="apt-get install rabbitmq-server failed: stompbox figures only"
			return 1
		fi
	fi
	mkdir -p "$WORK/rmq"
	cat >"$WORK/rmq/rabbitmq.conf" <<-EOF
		stomp.listeners.tcp.1 = 127.0.0.1:$RMQ_STOMP_PORT
		web_stomp.tcp.ip = 127.0.0.1
		web_stomp.tcp.port = $RMQ_WS_PORT
		# cowboy closes a WebSocket that sent nothing for 60 s by default;
		# idle subscribers are the point of the test.
		web_stomp.ws_opts.idle_timeout = 3600000
	EOF
	echo '[rabbitmq_web_stomp].' >"$WORK/rmq/enabled_plugins" # what `rabbitmq-plugins enable rabbitmq_web_stomp` writes
	rmq_env
	restart_rabbitmq
}

# restart_rabbitmq (re)starts the node, so that each group of runs finds it
# fresh: tearing down 10,000 connections keeps it busy long after the
# clients have gone.
restart_rabbitmq() {
	if [ -n "$RMQ_PID" ]; then
		timeout 60 "$RMQ_BIN/rabbitmqctl" stop "$WORK/rmq/pid" >/dev/null 2>&1 || kill -TERM "$RMQ_PID" 2>/dev/null
		# A new node under the same name fails to start while the old one is
		# still exiting (seen once after 10,000 idle connections).
		for _ in $(seq 600); do
			kill -0 "$RMQ_PID" 2>/dev/null || break
			sleep 0.1
		done
		RMQ_PID=""
	fi
	rm -f "$WORK/rmq/pid"
	# A fresh node each time: a new node under the old name, port and data
	# failed to start within seconds of the old one's exit (seen after 10,000
	# idle connections), which cost a whole run its RabbitMQ fan-out figures.
	RMQ_GEN=$((RMQ_GEN + 1))
	rmq_env
	"$RMQ_BIN/rabbitmq-server" >>"$WORK/rmq/server.out" 2>&1 &
	RMQ_STARTED=1
	if ! timeout 120 "$RMQ_BIN/rabbitmqctl" wait "$WORK/rmq/pid" >/dev/null 2>&1; then
		RMQ_NOTE="RabbitMQ did not start: stompbox figures only"
		log "RabbitMQ did not start; the end of its output:"
		tail -n 20 "$WORK/rmq/server.out" >&2 || true
		return 1
	fi
	RMQ_PID=$(cat "$WORK/rmq/pid")
	RMQ_VERSION=$("$RMQ_BIN/rabbitmqctl" version 2>/dev/null || echo "?")
	log "RabbitMQ $RMQ_VERSION running, beam PID $RMQ_PID, web-stomp on 127.0.0.1:$RMQ_WS_PORT"
}

# --- stompbox -------------------------------------------------------------
log "building stompbox"
go build -o "$WORK/stompbox" .
SB_VERSION=$(git describe --always --dirty 2>/dev/null || echo "?")
SB_RUNS=0
# start_stompbox (re)starts stompbox with fresh data, so that memory left
# over from one scenario does not blur the next one's RSS figures.
# The abuse limits are off: one benchmark publisher sends far past a person's
# 20 messages a second, and every load connection comes from loopback.
start_stompbox() { # start_stompbox [extra stompbox options…]
	if [ -n "$SB_PID" ]; then
		kill -TERM "$SB_PID" 2>/dev/null
		wait "$SB_PID" 2>/dev/null || true
	fi
	SB_RUNS=$((SB_RUNS + 1))
	"$WORK/stompbox" -addr "127.0.0.1:$SB_PORT" -data "$WORK/sb-data-$SB_RUNS" -no-browser -log-level warn \
		-max-connections 100000 -synchronous FULL \
		-send-rate 0 -user-send-rate 0 -max-conns-per-ip 0 -login-rate 0 "$@" >>"$WORK/stompbox.log" 2>&1 &
	SB_PID=$!
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$SB_PORT/healthz" >/dev/null 2>&1 && break
		sleep 0.1
	done
	SB=(-url "http://127.0.0.1:$SB_PORT" -pid "$SB_PID" -label stompbox)
	log "stompbox $SB_VERSION running, PID $SB_PID"
}

RMQ_OK=""
if start_rabbitmq; then RMQ_OK=1; else log "$RMQ_NOTE"; fi

# bench NAME ARGS…: one bounded run; its report line goes to RESULTS as "NAME line".
bench() {
	local name=$1
	shift
	log "run $name: $*"
	local line
	line=$(timeout "$STEP_LIMIT" "$WORK/stompbox" bench "$@" 2>>"$WORK/bench.err" | grep '^bench ' || true)
	[ -n "$line" ] || line="bench error=see_log"
	echo "$name $line" >>"$RESULTS"
	echo "$name $line" >&2
}
field() { # field NAME KEY: KEY's value in run NAME's line
	awk -v n="$1" -v k="$2" '$1 == n { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) { print kv[2]; exit } } }' "$RESULTS"
}

RMQ=(-url "http://127.0.0.1:$RMQ_WS_PORT" -login guest -passcode guest -label rabbitmq)

# Idle connections.
start_stompbox
bench sb-idle idle "${SB[@]}" -conns "$IDLE" -hold 5s -duration 120s
if [ -n "$RMQ_OK" ]; then
	bench rmq-idle idle "${RMQ[@]}" -pid "$RMQ_PID" -conns "$IDLE" -hold 5s -duration 120s
fi
# The same under a soft memory limit, which keeps the heap near what is live.
start_stompbox -memory-limit "$IDLE_MEMLIMIT"
bench sb-idle-lim idle "${SB[@]}" -conns "$IDLE" -hold 5s -duration 120s
# The most idle connections this machine allows: the tool and the server
# each need a descriptor per connection, under the same hard limit.
IDLE_TRY=$IDLE_MAX
if [ "$NOFILE" -lt $((IDLE_MAX + 500)) ]; then
	IDLE_TRY=$((NOFILE - 500))
	IDLE_CAP_NOTE="The file-descriptor hard limit here is $NOFILE and cannot be raised (no CAP_SYS_RESOURCE), so $IDLE_MAX connections cannot be opened; $IDLE_TRY were tried instead."
fi
start_stompbox
bench sb-idle-max idle "${SB[@]}" -conns "$IDLE_TRY" -hold 5s -duration 180s

start_stompbox
if [ -n "$RMQ_OK" ] && ! restart_rabbitmq; then RMQ_OK=""; fi
# Fan-out at full speed, over WebSocket, for both.
bench sb-fanout fanout "${SB[@]}" -subs "$SUBS" -count "$COUNT" -size "$SIZE" -duration "$FANOUT_TIME"
if [ -n "$RMQ_OK" ]; then
	bench rmq-fanout fanout "${RMQ[@]}" -pid "$RMQ_PID" -subs "$SUBS" -count "$COUNT" -size "$SIZE" -duration "$FANOUT_TIME"
fi
# Fan-out at half of stompbox's publish rate: the latency target.
HALF=$(awk -v r="$(field sb-fanout pub_msgs_per_s)" 'BEGIN { h = r / 2; if (h < 1) h = 1; printf "%.0f", h }')
HALF_COUNT=$(awk -v h="$HALF" 'BEGIN { c = h * 20; if (c < 200) c = 200; if (c > 20000) c = 20000; printf "%d", c }')
bench sb-half fanout "${SB[@]}" -subs "$SUBS" -count "$HALF_COUNT" -size "$SIZE" -rate "$HALF" -duration "$FANOUT_TIME"
if [ -n "$RMQ_OK" ]; then
	bench rmq-half fanout "${RMQ[@]}" -pid "$RMQ_PID" -subs "$SUBS" -count "$HALF_COUNT" -size "$SIZE" -rate "$HALF" -duration "$FANOUT_TIME"
fi
# Latency well below saturation: 10 messages/s to every subscriber.
bench sb-slow fanout "${SB[@]}" -subs "$SUBS" -count 150 -size "$SIZE" -rate 10 -duration "$FANOUT_TIME"
# SockJS xhr-streaming fan-out (stompbox only; RabbitMQ's SockJS endpoint is another plugin):
# everybody on xhr (the publisher sends with one xhr_send per message), then
# subscribers on xhr with the publisher on WebSocket.
bench sb-xhr fanout "${SB[@]}" -transport sockjs-xhr -subs "$SUBS" -count "$COUNT" -size "$SIZE" -duration "$FANOUT_TIME"
bench sb-xhr-wspub fanout "${SB[@]}" -transport sockjs-xhr -pub-transport ws -subs "$SUBS" -count "$COUNT" -size "$SIZE" -duration "$FANOUT_TIME"

# Chat rooms through the stored path, synchronous=FULL (stompbox only).
start_stompbox
bench sb-rooms rooms "${SB[@]}" -conns $((ROOMS * PEOPLE)) -rooms "$ROOMS" -users "$ROOM_USERS" \
	-interval "$INTERVAL" -duration "$TALK_TIME"

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
log "done; load $LOAD_END"

# --- report ---------------------------------------------------------------
# exact_ratio A B: a/b unrounded (empty when not measured), for verdicts: a
# ratio of 2.0017 prints as 2.00 but is not within 2×.
exact_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b + 0 != 0) printf "%.9f", a / b }'; }
# shown X [DECIMALS]: an exact ratio rounded for the tables, – when not measured.
shown() { awk -v r="$1" -v d="${2:-2}" 'BEGIN { if (r == "") print "–"; else printf "%." d "f", r }'; }
row() { # row LABEL SB_RUN RMQ_RUN KEY
	local a b
	a=$(field "$2" "$4")
	b=$([ -n "$3" ] && field "$3" "$4" || true)
	printf '| %s | %s | %s | %s |\n' "$1" "${a:-–}" "${b:-–}" "$(shown "$(exact_ratio "$a" "$b")")"
}
yes_no() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { if (v == "") { print "not measured"; exit } ok = (op == "<" ? v + 0 < t + 0 : op == "<=" ? v + 0 <= t + 0 : v + 0 >= t + 0); print (ok ? "met" : "NOT met") }'; }

FAN_X=$(exact_ratio "$(field sb-fanout msgs_per_s)" "$(field rmq-fanout msgs_per_s)")
XHR_X=$(exact_ratio "$(field sb-fanout msgs_per_s)" "$(field sb-xhr msgs_per_s)")
XHR2_X=$(exact_ratio "$(field sb-fanout msgs_per_s)" "$(field sb-xhr-wspub msgs_per_s)")
FAN_RATIO=$(shown "$FAN_X")
XHR_RATIO=$(shown "$XHR_X" 3)
XHR2_RATIO=$(shown "$XHR2_X" 3)
{
	echo "<!-- results:start -->"
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`scripts/compare.sh\` (stompbox $SB_VERSION${RMQ_OK:+, RabbitMQ ${RMQ_VERSION:-?} web-stomp})."
	echo
	echo "**Machine:** $NPROC × $CPU_MODEL, $MEM RAM, Linux $(uname -r). Client and servers share these $NPROC cores,"
	echo "and the machine was shared with other jobs: load average $LOAD_START at the start and $LOAD_END at the end."
	echo "Absolute figures are therefore low and noisy; the ratios between servers run back to back mean more."
	[ -n "$RMQ_NOTE" ] && echo && echo "**Note:** $RMQ_NOTE."
	echo
	echo "| figure | stompbox | RabbitMQ | ratio |"
	echo "|---|---|---|---|"
	row "fan-out 1→$SUBS, ${SIZE} B: delivered msgs/s" sb-fanout "${RMQ_OK:+rmq-fanout}" msgs_per_s
	row "fan-out: publisher msgs/s" sb-fanout "${RMQ_OK:+rmq-fanout}" pub_msgs_per_s
	row "fan-out: p50 ms" sb-fanout "${RMQ_OK:+rmq-fanout}" p50_ms
	row "fan-out: p99 ms" sb-fanout "${RMQ_OK:+rmq-fanout}" p99_ms
	row "fan-out: max ms" sb-fanout "${RMQ_OK:+rmq-fanout}" max_ms
	row "fan-out: lost" sb-fanout "${RMQ_OK:+rmq-fanout}" lost
	row "fan-out: server CPU s" sb-fanout "${RMQ_OK:+rmq-fanout}" server_cpu_s
	row "fan-out: server peak RSS MiB" sb-fanout "${RMQ_OK:+rmq-fanout}" server_rss_peak_mib
	row "fan-out at $HALF msgs/s (half stompbox's): p50 ms" sb-half "${RMQ_OK:+rmq-half}" p50_ms
	row "fan-out at $HALF msgs/s: p99 ms" sb-half "${RMQ_OK:+rmq-half}" p99_ms
	row "fan-out at $HALF msgs/s: max ms" sb-half "${RMQ_OK:+rmq-half}" max_ms
	row "fan-out at $HALF msgs/s: lost" sb-half "${RMQ_OK:+rmq-half}" lost
	row "idle $IDLE: RSS KiB per connection" sb-idle "${RMQ_OK:+rmq-idle}" rss_per_conn_kib
	row "idle $IDLE: held" sb-idle "${RMQ_OK:+rmq-idle}" held
	row "idle $IDLE: connect s" sb-idle "${RMQ_OK:+rmq-idle}" connect_s
	echo
	echo "stompbox alone:"
	echo
	echo "| figure | value |"
	echo "|---|---|"
	echo "| SockJS xhr-streaming fan-out: delivered msgs/s | $(field sb-xhr msgs_per_s) (WebSocket/xhr = $XHR_RATIO) |"
	echo "| SockJS xhr-streaming fan-out: p99 ms, lost | $(field sb-xhr p99_ms), $(field sb-xhr lost) |"
	echo "| xhr-streaming subscribers, WebSocket publisher: delivered msgs/s | $(field sb-xhr-wspub msgs_per_s) (WebSocket/xhr = $XHR2_RATIO) |"
	echo "| xhr-streaming subscribers, WebSocket publisher: p99 ms, lost | $(field sb-xhr-wspub p99_ms), $(field sb-xhr-wspub lost) |"
	echo "| fan-out at 10 msgs/s (10,000 deliveries/s): p50 / p99 / max ms | $(field sb-slow p50_ms) / $(field sb-slow p99_ms) / $(field sb-slow max_ms) |"
	echo "| idle $IDLE with \`-memory-limit $IDLE_MEMLIMIT\`: RSS KiB per connection, held | $(field sb-idle-lim rss_per_conn_kib), $(field sb-idle-lim held) |"
	echo "| idle $IDLE_TRY: held / failed, RSS KiB per connection | $(field sb-idle-max held) / $(field sb-idle-max connect_failed), $(field sb-idle-max rss_per_conn_kib) |"
	echo "| rooms $ROOMS × $PEOPLE, a message every $INTERVAL each, FULL: delivered msgs/s | $(field sb-rooms msgs_per_s) |"
	echo "| rooms: p50 / p99 / max ms | $(field sb-rooms p50_ms) / $(field sb-rooms p99_ms) / $(field sb-rooms max_ms) |"
	echo "| rooms: sent, lost, dup, out-of-order, refused | $(field sb-rooms sent), $(field sb-rooms lost), $(field sb-rooms dup), $(field sb-rooms ooo), $(field sb-rooms refused) |"
	echo "| rooms: setup s (accounts, rooms, joins), connect s, server CPU s | $(field sb-rooms setup_s), $(field sb-rooms connect_s), $(field sb-rooms server_cpu_s) |"
	echo "| rooms, the server's database writer: messages per commit; commit p50 / p99 / max ms (fsync included) | $(field sb-rooms store_writes_per_commit); $(field sb-rooms store_commit_p50_ms) / $(field sb-rooms store_commit_p99_ms) / $(field sb-rooms store_commit_max_ms) |"
	echo "| rooms: a message's wait for its commit (queue + commit), p50 / p99 ms | $(field sb-rooms store_wait_p50_ms) / $(field sb-rooms store_wait_p99_ms) |"
	echo
	echo "Targets of issue 7:"
	echo
	echo "| target | measured | verdict |"
	echo "|---|---|---|"
	echo "| fan-out 1→$SUBS × ${SIZE} B ≥ 3× RabbitMQ's delivered msgs/s | ×$FAN_RATIO | $(yes_no "$FAN_X" ">=" 3) |"
	echo "| p99 < 10 ms at half of stompbox's max rate | $(field sb-half p99_ms) ms | $(yes_no "$(field sb-half p99_ms)" "<" 10) |"
	echo "| idle ≤ 12 KiB RSS per connection at $IDLE | $(field sb-idle rss_per_conn_kib) KiB | $(yes_no "$(field sb-idle rss_per_conn_kib)" "<=" 12) |"
	echo "| the same with \`-memory-limit $IDLE_MEMLIMIT\` | $(field sb-idle-lim rss_per_conn_kib) KiB | $(yes_no "$(field sb-idle-lim rss_per_conn_kib)" "<=" 12) |"
	echo "| $IDLE_MAX idle held without error | $(field sb-idle-max held) of $IDLE_TRY held, $(field sb-idle-max dropped) dropped | $([ "$IDLE_TRY" = "$IDLE_MAX" ] && yes_no "$(field sb-idle-max held)" ">=" "$IDLE_MAX" || echo "not measurable here") |"
	echo "| rooms $ROOMS × $PEOPLE p99 < 5 ms, synchronous=FULL | $(field sb-rooms p99_ms) ms | $(yes_no "$(field sb-rooms p99_ms)" "<" 5) |"
	echo "| SockJS xhr-streaming within 2× of WebSocket (fan-out, all on xhr) | ×$XHR_RATIO | $(yes_no "$XHR_X" "<=" 2) |"
	echo "| the same, publisher on WebSocket | ×$XHR2_RATIO | $(yes_no "$XHR2_X" "<=" 2) |"
	[ -n "${IDLE_CAP_NOTE:-}" ] && echo && echo "$IDLE_CAP_NOTE"
	echo
	echo "Raw report lines (\`stompbox bench\` output, fields described above):"
	echo
	echo '```'
	cat "$RESULTS"
	echo '```'
	echo "<!-- results:end -->"
} >"$WORK/section.md"

cat "$WORK/section.md"
DOC=docs/benchmarks.md
mkdir -p docs
if [ -f "$DOC" ] && grep -q '<!-- results:start -->' "$DOC"; then
	awk -v sect="$WORK/section.md" '
		/<!-- results:start -->/ { while ((getline l < sect) > 0) print l; skip = 1; next }
		/<!-- results:end -->/ { skip = 0; next }
		!skip { print }' "$DOC" >"$WORK/doc.md"
	cp "$WORK/doc.md" "$DOC"
else
	{ echo "# Benchmarks"; echo; cat "$WORK/section.md"; } >"$DOC"
fi
log "wrote $DOC"
