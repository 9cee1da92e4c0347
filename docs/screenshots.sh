#!/usr/bin/env bash
# Screenshots of three built pages (index, an API page, a gallery example) in headless Chromium,
# to show that the site renders: docs/_static/screenshots/*.png. Build the docs first
# (docs/README.md); needs chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")"
html="$PWD/_build/html"
out="$PWD/_static/screenshots"
mkdir -p "$out"
for page in index api/generated/csc.problems.cbpdn.ConvBPDN gallery/notebooks/fig2_dictionaries \
            gallery/worked/plot_quickstart; do
    name=$(basename "$page")
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1600 \
        --screenshot="$out/$name.png" "file://$html/$page.html" >/dev/null 2>&1
    echo "$out/$name.png"
done
