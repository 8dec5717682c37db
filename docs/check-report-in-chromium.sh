#!/bin/sh
# Render a harness report in real headless Chromium and check that hostile content stayed inert.
#
#   docs/check-report-in-chromium.sh report.html
#
# Needs Chromium: on Debian/Ubuntu (as root) `apt-get update && apt-get install -y chromium`.
# A fresh machine may not have it; tests/test_report.py then skips its browser test
# (test_report_renders_inert_in_headless_chromium) and says why.
set -eu
page="${1:?usage: $0 REPORT.html}"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
    echo "chromium not found: apt-get update && apt-get install -y chromium" >&2
    exit 3
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
flags="--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking --disable-component-update --disable-sync --disable-quic --user-data-dir=$profile"
url="file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
# shellcheck disable=SC2086 # flags are split on purpose
"$browser" $flags --dump-dom "$url" > "$profile/dom.html" 2>/dev/null
# shellcheck disable=SC2086
"$browser" $flags --window-size=1200,2000 --screenshot="${page%.html}.png" "$url" >/dev/null 2>&1 || true
status=0
if grep -qi '<script' "$profile/dom.html"; then echo "FAIL: a <script> element is in the DOM"; status=1; fi
if grep -Eqi '<[^>]+[[:space:]]on[a-z]+[[:space:]]*=' "$profile/dom.html"; then echo "FAIL: an on* event attribute is in the DOM"; status=1; fi
if grep -Eqi '<a[^>]*href[[:space:]]*=[[:space:]]*"?[[:space:]]*javascript:' "$profile/dom.html"; then echo "FAIL: a javascript: link"; status=1; fi
grep -q '</html>' "$profile/dom.html" || { echo "FAIL: Chromium did not render the page"; status=1; }
[ "$status" = 0 ] && echo "ok: $page rendered in $("$browser" --version 2>/dev/null); no script, handler or javascript: link; screenshot ${page%.html}.png"
exit "$status"
