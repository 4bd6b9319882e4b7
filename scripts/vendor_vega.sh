#!/usr/bin/env bash
# Vendor the chart runtime into src/openphm/charts/vendor/: Vega, Vega-Lite and vega-embed (their UMD builds as
# published) and vega-interpreter (the CSP-safe expression evaluator, published only as an ES module, so it is
# bundled here with the vega-util it imports into one classic script defining `vegaInterpreter`).
#
# Reproducible: exact versions, `npm ci`-style install from a generated lock into a temporary directory, and the
# sha256 of every file written to SOURCE.md. Needs node and npm; not run by the tests. Also copies Vega-Lite's
# JSON schema into tests/data/ for the spec-builder tests.
#
#   bash scripts/vendor_vega.sh
set -euo pipefail

VEGA=6.4.0
VEGA_LITE=6.5.0
VEGA_EMBED=7.3.0
VEGA_INTERPRETER=2.3.2
VEGA_UTIL=2.1.3      # the version vega 6.4.0 pins (~2.1.3); the interpreter bundle must use the same
ESBUILD=0.25.12

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/src/openphm/charts/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm init -y >/dev/null
npm install --no-audit --no-fund --save-exact \
  "vega@$VEGA" "vega-lite@$VEGA_LITE" "vega-embed@$VEGA_EMBED" \
  "vega-interpreter@$VEGA_INTERPRETER" "vega-util@$VEGA_UTIL" "esbuild@$ESBUILD" >/dev/null

cat >entry.js <<'EOF'
export { expressionInterpreter } from "vega-interpreter";
EOF
npx --no-install esbuild entry.js --bundle --minify --format=iife --global-name=vegaInterpreter \
  --target=es2020 --legal-comments=none --outfile=vega-interpreter.min.js

mkdir -p "$OUT"
rm -f "$OUT"/*.js "$OUT"/LICENSE.*
cp node_modules/vega/build/vega.min.js "$OUT/vega.min.js"
cp node_modules/vega-lite/build/vega-lite.min.js "$OUT/vega-lite.min.js"
cp node_modules/vega-embed/build/vega-embed.min.js "$OUT/vega-embed.min.js"
cp vega-interpreter.min.js "$OUT/vega-interpreter.min.js"
# A trailing source-map comment would make the browser ask for a file that is not there.
sed -i -e 's|//# sourceMappingURL=.*$||' "$OUT"/*.js
for pkg in vega vega-lite vega-embed vega-interpreter vega-util; do
  cp "node_modules/$pkg/LICENSE" "$OUT/LICENSE.$pkg"
done
mkdir -p "$ROOT/tests/data"
cp node_modules/vega-lite/build/vega-lite-schema.json "$ROOT/tests/data/vega-lite-schema.json"

{
  echo "# Vendored chart runtime"
  echo
  echo "Fetched from the npm registry by \`scripts/vendor_vega.sh\` (re-run it to update; change the versions there)."
  echo "All five packages are BSD-3-Clause, copyright the University of Washington Interactive Data Lab"
  echo "(see the LICENSE.* files beside this one)."
  echo
  echo "| File | Package | Version | Licence | sha256 |"
  echo "|---|---|---|---|---|"
  row() { echo "| $1 | $2 | $3 | BSD-3-Clause | $(sha256sum "$OUT/$1" | cut -d' ' -f1) |"; }
  row vega.min.js vega "$VEGA"
  row vega-lite.min.js vega-lite "$VEGA_LITE"
  row vega-embed.min.js vega-embed "$VEGA_EMBED"
  row vega-interpreter.min.js "vega-interpreter + vega-util (esbuild $ESBUILD IIFE bundle)" \
    "$VEGA_INTERPRETER + $VEGA_UTIL"
  echo
  echo "\`vega-interpreter.min.js\` is built, not copied: vega-interpreter $VEGA_INTERPRETER ships only an ES module,"
  echo "so esbuild bundles \`export { expressionInterpreter } from \"vega-interpreter\"\` with vega-util into an"
  echo "IIFE that sets the global \`vegaInterpreter\`. Source-map comments are stripped from every file."
  echo
  echo "\`tests/data/vega-lite-schema.json\` is \`build/vega-lite-schema.json\` of vega-lite $VEGA_LITE"
  echo "(sha256 $(sha256sum "$ROOT/tests/data/vega-lite-schema.json" | cut -d' ' -f1))."
} >"$OUT/SOURCE.md"
echo "vendored into $OUT"
