#!/usr/bin/env bash
# scripts/release.sh builds the release: for each target a stripped,
# cgo-free binary stamped with its version, packed with README.md and
# LICENSE (tar.gz, zip for Windows), and SHA256SUMS over the archives.
#
#   scripts/release.sh VERSION [OUTDIR]     e.g. scripts/release.sh v1.2.0
#
# OUTDIR defaults to artifacts/release/VERSION. The binaries stay in
# OUTDIR/bin/<target>/ for inspection; only the archives and SHA256SUMS
# are published. The build is reproducible: the commit's time is the build
# date and every archive entry's time, so the same commit and Go give the
# same bytes. .ci/run's cross-build step runs this script.
set -euo pipefail

# TARGETS are the release platforms, GOOS/GOARCH[/GOARM], and the name each
# gets in the archive's: Raspberry Pi OS 64-bit (arm64) and 32-bit (armv7
# for the Pi 2 and later, armv6 for the Pi Zero and Pi 1), PCs and servers,
# Windows and Macs.
TARGETS=(
	linux/amd64:linux-amd64
	linux/arm64:linux-arm64
	linux/arm/6:linux-armv6
	linux/arm/7:linux-armv7
	windows/amd64:windows-amd64
	darwin/amd64:darwin-amd64
	darwin/arm64:darwin-arm64
)

# PARALLEL is how many targets build at once. Each compiles the pure-Go
# SQLite driver, one huge package whose compile leaves a core idle, so two
# at a time keeps a 2-core machine busy without thrashing it.
PARALLEL=${RELEASE_PARALLEL:-2}

# MAX_PI_BYTES bounds the Raspberry Pi binaries (linux arm64, armv6, armv7;
# issue 24: at most 25 MB on linux/arm64), for small SD cards and slow links
# to a Pi. They were 23.3 to 24.0 MB when this was set; the amd64 ones are
# about 1.5 MB larger and have no bound.
MAX_PI_BYTES=25000000

# BUILDINFO is the package whose variables -ldflags -X stamps.
BUILDINFO=stompbox/internal/buildinfo

if (($# < 1 || $# > 2)) || [[ ! "$1" =~ ^[0-9A-Za-z][0-9A-Za-z.+_-]*$ ]]; then
	echo "usage: scripts/release.sh VERSION [OUTDIR]   (VERSION like v1.2.0: letters, digits, . + _ -)" >&2
	exit 2
fi
version=$1
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out=${2:-artifacts/release/$version}
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# git runs with safe.directory so a clone owned by another user still works.
git() { command git -c safe.directory="$root" "$@"; }

commit="$(git rev-parse HEAD)"
date="$(TZ=UTC0 git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)"
ldflags="-s -w -X $BUILDINFO.version=$version -X $BUILDINFO.commit=$commit -X $BUILDINFO.date=$date"
if [[ -n "$(git status --porcelain)" ]]; then
	echo "release.sh: the work tree has uncommitted changes; the binaries say so (commit: … (modified))" >&2
	ldflags+=" -X $BUILDINFO.modified=true"
fi

# Inherited GOFLAGS (say -mod=vendor) would change what is built; -X
# stamps the commit, so the toolchain's VCS stamping is off.
export GOFLAGS=-buildvcs=false CGO_ENABLED=0

rm -rf "$out/bin" "$out"/stompbox-* "$out/SHA256SUMS"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

# build compiles one target into $out/bin/NAME/.
build() {
	local target=$1 name=$2 goos goarch goarm exe=""
	IFS=/ read -r goos goarch goarm <<<"$target"
	[[ $goos == windows ]] && exe=.exe
	env GOOS="$goos" GOARCH="$goarch" GOARM="$goarm" \
		go build -trimpath -ldflags "$ldflags" -o "$out/bin/$name/stompbox$exe" .
}

echo "building stompbox $version ($commit, $date) for ${#TARGETS[@]} targets, $PARALLEL at a time"
pids=() names=()
for t in "${TARGETS[@]}"; do
	target=${t%%:*} name=${t##*:}
	echo "+ GOOS/GOARCH[/GOARM]=$target go build -trimpath -ldflags \"$ldflags\" -o bin/$name/ ."
	build "$target" "$name" >"$logs/$name.log" 2>&1 &
	pids+=($!) names+=("$name")
	if ((${#pids[@]} >= PARALLEL)); then
		wait "${pids[0]}" || echo "build failed: ${names[0]}" >>"$logs/failed"
		pids=("${pids[@]:1}") names=("${names[@]:1}")
	fi
done
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || echo "build failed: ${names[$i]}" >>"$logs/failed"
done
cat "$logs"/*.log
if [[ -e "$logs/failed" ]]; then
	cat "$logs/failed" >&2
	exit 1
fi

go build -o "$logs/pack" ./scripts/pack
too_big=0
printf '%-14s %12s %9s  %s\n' target "binary bytes" MiB archive
for t in "${TARGETS[@]}"; do
	name=${t##*:}
	dir="stompbox-$version-$name"
	bin="$out/bin/$name/stompbox"
	archive="$dir.tar.gz"
	if [[ $name == windows-* ]]; then
		bin+=.exe
		archive="$dir.zip"
	fi
	"$logs/pack" -o "$out/$archive" -dir "$dir" -time "$date" "$bin" README.md LICENSE
	size=$(wc -c <"$bin")
	awk -v n="$name" -v s="$size" -v a="$archive" -v as="$(wc -c <"$out/$archive")" \
		'BEGIN { printf "%-14s %12d %9.1f  %s (%d bytes)\n", n, s, s / 1048576, a, as }'
	if [[ $name == linux-arm* ]] && ((size > MAX_PI_BYTES)); then
		echo "release.sh: $name's binary is $size bytes, over the $MAX_PI_BYTES allowed for a Pi" >&2
		too_big=1
	fi
done
((too_big == 0))

if ! command -v sha256sum >/dev/null; then
	sha256sum() { shasum -a 256 "$@"; } # macOS
fi
(
	cd "$out"
	sha256sum stompbox-"$version"-* >SHA256SUMS
	sha256sum -c SHA256SUMS
)
echo "release $version in $out"
