#!/bin/bash
# qflood.sh: issue 22's figures for -queue-mib and the login limits.
# Usage: scripts/qflood.sh flood|guess STOMPBOX-BINARY [server options…]
# Starts the binary on loopback (ports 18090 and 18613) with a fresh data
# folder, runs scripts/qflood/qflood.go against it and stops it. N sets
# the SENDs or guesses (4000), AFTER when RSS is read again (10s).
set -eu
mode=$1 bin=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
d=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$d"' EXIT
if [ "$mode" = guess ]; then
	echo "owner-password-1" | "$bin" user -data "$d" add kim --password-stdin >/dev/null
	set -- "$@"
else
	set -- -send-rate 0 -user-send-rate 0 -max-conns-per-ip 0 "$@"
fi
"$bin" -addr 127.0.0.1:18090 -stomp-addr 127.0.0.1:18613 -data "$d" -no-browser "$@" >"$d/log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:18090/healthz && break; sleep 0.2; done
sleep 1
echo "== $mode $*"
go run "$here/qflood/qflood.go" -addr 127.0.0.1:18613 -pid $pid -mode "$mode" -n "${N:-4000}" -after "${AFTER:-10s}" -user kim -pass owner-password-1
if [ "$mode" = guess ]; then
	for ip in 127.0.0.1 127.0.0.2; do
		echo "HTTP login from $ip: $(curl -s --interface $ip -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
			-d '{"username":"kim","password":"owner-password-1"}' http://127.0.0.1:18090/api/login)"
	done
fi
