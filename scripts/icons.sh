#!/usr/bin/env bash
# scripts/icons.sh renders ui/static/icon.svg as the PNG icons the web app
# manifest names (192 and 512 pixels: what browsers require to offer
# "Install"). It uses the headless Chromium the browser tests use, so no
# image tool is needed. The PNGs are committed; run this after changing
# icon.svg.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$root/ui/static/icon.svg" "$tmp/"
for size in 192 512; do
	printf '<!doctype html><html><body style="margin:0;background:transparent"><img src="icon.svg" width="%s" height="%s" style="display:block"></body></html>' "$size" "$size" >"$tmp/icon.html"
	"$chromium" --headless --disable-gpu --no-sandbox --hide-scrollbars --default-background-color=00000000 \
		--window-size="$size,$size" --screenshot="$root/ui/static/icon-$size.png" "file://$tmp/icon.html" >/dev/null 2>&1
	echo "wrote ui/static/icon-$size.png"
done
