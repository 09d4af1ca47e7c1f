#!/usr/bin/env bash
# Fetch the jars for the real-Kafka test broker (tests/kafka_broker.py) from Maven Central.
#
#   bash tests/kafka/fetch.sh [DEST]      # DEST defaults to <repo>/build/kafka/libs
#
# Idempotent: DEST gets a marker file holding the sha256 of tests/kafka/pom.xml; when the marker
# matches, nothing is done. When the pom changes the jars are fetched again into a fresh directory
# that then replaces DEST (so no stale jars of an old version stay on the classpath).
# Downloads are cached in ~/.m2. Needs mvn (Maven 3.x) and network access to Maven Central.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
pom="$script_dir/pom.xml"
dest="${1:-$repo_root/build/kafka/libs}"
# Relative DEST is taken relative to the repo root, like the default.
case "$dest" in
  /*) ;;
  *) dest="$repo_root/$dest" ;;
esac
dest="${dest%/}"
marker_name=".driftgate-kafka-libs.sha256"
plugin="org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"

die() {
  echo "fetch.sh: ERROR: $*" >&2
  exit 1
}

[ -f "$pom" ] || die "pom not found: $pom"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found on PATH"

want="$(sha256sum "$pom" | cut -d' ' -f1)"

up_to_date() {
  [ -f "$dest/$marker_name" ] && [ "$(cat "$dest/$marker_name")" = "$want" ]
}

if up_to_date; then
  exit 0
fi

command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH (install Maven 3.x, e.g. apt-get install maven)"
mkdir -p "$(dirname "$dest")"
# Serialise concurrent runs (e.g. two test processes starting at once) when flock is available.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dest.lock"
  flock 9
  if up_to_date; then
    exit 0
  fi
fi

# Only ever replace a directory that is missing, empty, or was written by this script.
if [ -d "$dest" ] && [ ! -f "$dest/$marker_name" ] && [ -n "$(ls -A "$dest")" ]; then
  die "$dest exists, is not empty and has no $marker_name marker; refusing to overwrite it"
fi

tmp="$dest.partial.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "fetch.sh: fetching Kafka test-broker jars into $dest (pom sha256 ${want:0:12})" >&2
if ! mvn -B -q -f "$pom" "$plugin" -DoutputDirectory="$tmp" -DincludeScope=runtime >&2; then
  die "mvn copy-dependencies failed for $pom (is Maven Central reachable? see mvn output above)"
fi
ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "mvn succeeded but no kafka_2.13 jar landed in $tmp"
printf '%s\n' "$want" >"$tmp/$marker_name"

rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "fetch.sh: done: $(ls "$dest" | grep -c '\.jar$') jars in $dest" >&2
