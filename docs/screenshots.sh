#!/usr/bin/env bash
# Screenshots of built pages (the index, an API page, three gallery examples) in headless Chromium,
# to show that the site renders: docs/_static/screenshots/*.png. Build the docs first
# (docs/README.md); needs chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")"
html="${1:-$PWD/_build/html}"   # or the html folder of another build
out="$PWD/_static/screenshots"
mkdir -p "$out"
for page in index api/generated/csc.problems.cbpdn.ConvBPDN gallery/notebooks/fig2_dictionaries \
            gallery/worked/plot_quickstart gallery/sporco/cbpdn_gry; do
    name=$(basename "$page")
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1600 \
        --screenshot="$out/$name.png" "file://$html/$page.html" >/dev/null 2>&1
    echo "$out/$name.png"
done
