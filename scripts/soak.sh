#!/usr/bin/env bash
# soak.sh: the soak of docs/benchmarks.md. It builds stompbox, starts it on
# 127.0.0.1 with a fresh data folder and the abuse limits off (as
# compare.sh does), runs `stompbox bench soak` against it, stops the server
# by its PID and prints the summary line.
#
# Usage: scripts/soak.sh [SAMPLES_FILE] [more bench options…]
#          (from the repository root; 30 minutes and a few more for setup)
#   SAMPLES_FILE  where the sample lines go (default: soak-samples.txt)
#   DURATION=30m SAMPLE=30s SB_PORT=18090  through the environment
# e.g. DURATION=3m SAMPLE=10s scripts/soak.sh /tmp/samples.txt -churn-rate 10
set -euo pipefail
cd "$(dirname "$0")/.."

SAMPLES=${1:-soak-samples.txt}
shift || true
DURATION=${DURATION:-30m}
SAMPLE=${SAMPLE:-30s}
SB_PORT=${SB_PORT:-18090}

WORK=$(mktemp -d)
SB_PID=""
log() { printf '%s soak: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
cleanup() {
	set +e
	if [ -n "$SB_PID" ]; then
		kill -TERM "$SB_PID" 2>/dev/null && wait "$SB_PID" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

ulimit -n "$(ulimit -Hn)" || true
log "building stompbox"
go build -o "$WORK/stompbox" .
"$WORK/stompbox" -addr "127.0.0.1:$SB_PORT" -data "$WORK/data" -no-browser -log-level warn \
	-send-rate 0 -user-send-rate 0 -max-conns-per-ip 0 -login-rate 0 >>"$WORK/stompbox.log" 2>&1 &
SB_PID=$!
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$SB_PORT/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
log "stompbox $(git describe --always --dirty 2>/dev/null || echo '?') running, PID $SB_PID; soaking for $DURATION"

status=0
"$WORK/stompbox" bench soak -url "http://127.0.0.1:$SB_PORT" -pid "$SB_PID" -duration "$DURATION" -sample "$SAMPLE" "$@" \
	>"$WORK/out.txt" || status=$?
grep '^soak ' "$WORK/out.txt" >"$SAMPLES" || true
log "$(wc -l <"$SAMPLES") samples in $SAMPLES"
if grep -q 'level=ERROR' "$WORK/stompbox.log"; then
	log "the server logged errors:"
	grep 'level=ERROR' "$WORK/stompbox.log" | head -20 >&2
fi
grep '^bench ' "$WORK/out.txt" || true
exit "$status"
