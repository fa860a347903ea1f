#!/usr/bin/env bash
# Re-vendor MapLibre GL JS (the map page's only third-party code) from the npm registry:
# the pinned version's tarball is checked against its registry integrity, then dist/maplibre-gl.js,
# dist/maplibre-gl.css and LICENSE.txt are copied into banet_ops/web/static/ (committed, so the
# page works offline and no CDN is contacted at run time).  Run after changing the pin below.
set -euo pipefail
VERSION=5.24.1
INTEGRITY=sha512-HyiYBwtsbk3L1n1EPLJHWqdoyMiF80n7tEYXFZyu2m1TjvaNx6KMLiFeDdmszt1/mq2zvsR1TJuX/NMu5BonXQ==
cd "$(dirname "$0")/.."
dest=banet_ops/web/static
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "maplibre-gl@$VERSION" >/dev/null)
tarball="$tmp/maplibre-gl-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
    echo "vendor_maplibre: expected integrity $INTEGRITY for maplibre-gl@$VERSION, found $got" >&2
    exit 1
fi
tar xzf "$tarball" -C "$tmp"
# drop the source-map comment: the map file is not vendored
sed '/^\/\/# sourceMappingURL=/d' "$tmp/package/dist/maplibre-gl.js" > "$dest/maplibre-gl.js"
cp "$tmp/package/dist/maplibre-gl.css" "$dest/maplibre-gl.css"
cp "$tmp/package/LICENSE.txt" "$dest/MAPLIBRE-LICENSE.txt"
echo "maplibre-gl $VERSION" > "$dest/MAPLIBRE-VERSION"
echo "vendor_maplibre: maplibre-gl@$VERSION in $dest"
