#!/usr/bin/env bash
# Fetches the dashboard's front-end libraries, at the pinned versions below,
# from the npm registry and copies only the files the dashboard loads (and
# their licenses) into web/static/vendor/, which is committed: building and
# running citymesh needs nothing but Go. To update a library, change its
# version here, run this script and commit web/static/vendor/.
set -euo pipefail
cd "$(dirname "$0")/.."

UPLOT=1.6.32
LEAFLET=1.9.4
MQTT=5.16.0

command -v npm >/dev/null || { echo "vendor-web: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fetch() { # name version -> directory of the unpacked package
  (cd "$tmp" && npm pack --silent "$1@$2" >/dev/null)
  mkdir -p "$tmp/$1"
  tar -xzf "$tmp/$1-$2.tgz" -C "$tmp/$1"
}
fetch uplot "$UPLOT"
fetch leaflet "$LEAFLET"
fetch mqtt "$MQTT"

out=web/static/vendor
rm -rf "$out"
mkdir -p "$out/uplot" "$out/leaflet" "$out/mqtt"
cp "$tmp/uplot/package/dist/uPlot.esm.js" "$tmp/uplot/package/dist/uPlot.min.css" "$tmp/uplot/package/LICENSE" "$out/uplot/"
cp "$tmp/leaflet/package/dist/leaflet.js" "$tmp/leaflet/package/dist/leaflet.css" "$tmp/leaflet/package/LICENSE" "$out/leaflet/"
cp -r "$tmp/leaflet/package/dist/images" "$out/leaflet/"
cp "$tmp/mqtt/package/dist/mqtt.esm.js" "$tmp/mqtt/package/LICENSE.md" "$out/mqtt/"
cat > "$out/VERSIONS" <<V
uplot $UPLOT (MIT) https://www.npmjs.com/package/uplot
leaflet $LEAFLET (BSD-2-Clause) https://www.npmjs.com/package/leaflet
mqtt $MQTT (MIT) https://www.npmjs.com/package/mqtt
V
du -sh "$out"
