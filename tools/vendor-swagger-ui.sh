#!/usr/bin/env bash
# Refresh the Swagger UI files that /docs serves from app/static (no CDN at run time).
# Usage: tools/vendor-swagger-ui.sh [VERSION]   (needs npm; the version in use is in
# app/static/vendor/swagger-ui/VERSION)
set -euo pipefail
version="${1:-$(cat "$(dirname "$0")/../app/static/vendor/swagger-ui/VERSION")}"
target="$(cd "$(dirname "$0")/.." && pwd)/app/static/vendor/swagger-ui"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$version" >/dev/null && tar xzf ./*.tgz)
for file in LICENSE NOTICE swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt \
            swagger-ui-standalone-preset.js swagger-ui-standalone-preset.js.LICENSE.txt \
            swagger-ui.css favicon-32x32.png; do
    cp "$work/package/$file" "$target/$file"
done
echo "$version" > "$target/VERSION"
echo "swagger-ui-dist $version copied to $target"
