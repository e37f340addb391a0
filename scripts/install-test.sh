#!/usr/bin/env bash
# The package as a user installs it, through a real npm registry (Verdaccio,
# scripts/verdaccio.sh, with throw-away storage): the main package and the
# linux-x64-gnu platform package are published to it, then, in empty projects:
#  1. without cargo and rustc on PATH: `npm install evtstore-rs` (timed; no
#     warning, no build, two packages), then a JavaScript program on SQLite;
#  2. without cargo: the drop-in alias "evtstore": "npm:evtstore-rs@<version>"
#     (timed), and a TypeScript program on SQLite compiled by tsc --strict;
#  3. without cargo, optional dependencies omitted (no prebuilt binary): the
#     install finishes quietly, the first use throws NATIVE_MISSING, and
#     `npx evtstore-rs-build` fails saying to install Rust;
#  4. with cargo, optional dependencies omitted: `npx evtstore-rs-build` builds
#     the addon from the shipped source and the JavaScript program runs.
# The linux-x64-gnu binary is built by scripts/build-prebuilt.sh (glibc 2.17)
# when npm/linux-x64-gnu/ has none or an older one than the Rust source.
# Runs on linux-x64 with glibc only. Settings: EVTSTORE_REGISTRY_PORT (54873).
# Step 4 builds with CARGO_TARGET_DIR=<repo>/target, where the repository's own
# build has compiled every dependency already (same profile and features), so
# only the crate is compiled again; EVTSTORE_INSTALL_TEST_COLD=1
# leaves CARGO_TARGET_DIR unset, as on a user's machine: a cold build in a
# temporary folder that is deleted (minutes).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
here="$repo/scripts/install-test"
platform=linux-x64-gnu
binary="$repo/npm/$platform/evtstore-rs.$platform.node"
version="$(node -p "require('$repo/package.json').version")"
work="$(mktemp -d /tmp/evtstore-rs-install-test.XXXXXX)"
export EVTSTORE_REGISTRY_DIR="$work/registry"
passed=0

cleanup() {
  bash "$repo/scripts/verdaccio.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "install-test.sh: FAIL: $*" >&2; exit 1; }
ok() { passed=$((passed + 1)); echo "install-test.sh: ok: $*"; }
now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(node -p "require('$repo/lib/native').platformName()")" = "$platform" ] ||
  fail "this test publishes the $platform package and must run on $platform"

# --- the binary of the platform package
newest_source="$(find "$repo/src" "$repo/Cargo.toml" "$repo/Cargo.lock" "$repo/build.rs" -newer "$binary" 2>/dev/null | head -n 1 || true)"
if [ ! -f "$binary" ] || [ -n "$newest_source" ]; then
  echo "== building the $platform binary against glibc 2.17 (scripts/build-prebuilt.sh)"
  bash "$repo/scripts/build-prebuilt.sh" "$platform"
fi

# --- a registry and an npm set-up of our own: throw-away user config and cache
registry="$(bash "$repo/scripts/verdaccio.sh" start)"
cat >"$work/npmrc" <<NPMRC
registry=$registry
$(bash "$repo/scripts/verdaccio.sh" token)
audit=false
fund=false
update-notifier=false
NPMRC
export npm_config_userconfig="$work/npmrc" npm_config_cache="$work/npm-cache"
echo "== registry $registry (storage $EVTSTORE_REGISTRY_DIR)"

echo "== publishing evtstore-rs-$platform@$version and evtstore-rs@$version"
(cd "$repo/npm/$platform" && npm publish --silent)
main_tarball="$(cd "$repo" && npm pack --silent --ignore-scripts --pack-destination "$work" | tail -n 1)"
npm publish --silent --ignore-scripts "$work/$main_tarball"
for name in evtstore-rs evtstore-rs-$platform; do
  [ "$(npm view "$name@$version" version)" = "$version" ] || fail "$name@$version is not in the registry"
done
echo "published: main package $(du -k "$work/$main_tarball" | cut -f1) KB packed, $platform package $(du -k "$binary" | cut -f1) KB binary"

# PATH without the folders that hold cargo or rustc: a machine without Rust
no_rust_path=""
IFS=: read -r -a dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
  [ -e "$dir/cargo" ] || [ -e "$dir/rustc" ] || no_rust_path="${no_rust_path:+$no_rust_path:}$dir"
done
without_rust() { env PATH="$no_rust_path" "$@"; }
without_rust sh -c '! command -v cargo && ! command -v rustc' >/dev/null || fail "cargo is still on PATH"

# new_project NAME: an empty project folder
new_project() {
  mkdir -p "$work/$1"
  echo "{ \"name\": \"$1\", \"version\": \"1.0.0\", \"private\": true }" >"$work/$1/package.json"
  echo "$work/$1"
}
# no_warnings LOG: npm printed no warning and no error
no_warnings() { ! grep -Ei '^npm (warn|error)|WARN|ERR!' "$1" || fail "npm warned: $(cat "$1")"; }
# no_build_left DIR: no cargo target folder anywhere under node_modules
no_build_left() {
  local found
  found="$(find "$1/node_modules" -type d -name target -print -quit)"
  [ -z "$found" ] || fail "a cargo target folder was left in node_modules: $found"
}

echo "== 1. npm install evtstore-rs, no cargo on PATH"
app="$(new_project plain)"
cd "$app"
start="$(now)"
without_rust npm install "evtstore-rs@$version" >"$work/install1.log" 2>&1 || fail "npm install failed: $(cat "$work/install1.log")"
install1="$(seconds "$start" "$(now)")"
no_warnings "$work/install1.log"
installed="$(cd node_modules && find . -mindepth 1 -maxdepth 2 -name package.json -printf '%h\n' | sed 's#^\./##' | sort | tr '\n' ' ')"
[ "$installed" = "evtstore-rs evtstore-rs-$platform " ] || fail "expected evtstore-rs and its $platform package only, got: $installed"
[ ! -e node_modules/evtstore-rs/native ] || fail "the install script built the addon although the prebuilt one loads"
no_build_left "$app"
without_rust node "$here/app.js" evtstore-rs
size1="$(du -sk node_modules | cut -f1)"
ok "npm install evtstore-rs in ${install1} s, node_modules ${size1} KB in 2 packages, no warning; the program ran"

echo "== 2. the drop-in alias \"evtstore\": \"npm:evtstore-rs@$version\" and tsc, no cargo on PATH"
ts="$(new_project typescript)"
cd "$ts"
node -e "
  const p = require('./package.json')
  p.dependencies = { evtstore: 'npm:evtstore-rs@$version' }
  require('fs').writeFileSync('package.json', JSON.stringify(p, null, 2))"
cat >tsconfig.json <<'JSON'
{ "compilerOptions": { "strict": true, "target": "es2020", "module": "commonjs", "outDir": "out", "skipLibCheck": false } }
JSON
cp "$here/app.ts" app.ts
start="$(now)"
without_rust npm install >"$work/install2.log" 2>&1 || fail "npm install of the alias failed: $(cat "$work/install2.log")"
install2="$(seconds "$start" "$(now)")"
no_warnings "$work/install2.log"
[ -f node_modules/evtstore/package.json ] && [ -d "node_modules/evtstore-rs-$platform" ] || fail "the alias did not install evtstore and its $platform package"
no_build_left "$ts"
# the repository's TypeScript (not from this registry, which holds only our packages)
without_rust node "$repo/node_modules/typescript/bin/tsc" -p . || fail "tsc failed"
without_rust node out/app.js
ok "the evtstore alias installed in ${install2} s, node_modules $(du -sk node_modules | cut -f1) KB; tsc --strict compiled the program and it ran"

echo "== 3. no prebuilt binary (--omit=optional) and no cargo: NATIVE_MISSING, and the build command says to install Rust"
bare="$(new_project bare)"
cd "$bare"
without_rust npm install --omit=optional "evtstore-rs@$version" >"$work/install3.log" 2>&1 ||
  fail "the install failed: $(cat "$work/install3.log")"
no_warnings "$work/install3.log"
[ ! -e "node_modules/evtstore-rs-$platform" ] || fail "the platform package was installed despite --omit=optional"
if without_rust node -e "require('evtstore-rs/provider/sqlite').createProvider({ file: ':memory:' })" 2>"$work/use3.log"; then
  fail "the package loaded without any binary"
fi
for needle in NATIVE_MISSING "evtstore-rs-$platform (not installed)" --omit=optional rustup.rs "npx evtstore-rs-build" "pnpm exec evtstore-rs-build"; do
  grep -qF -- "$needle" "$work/use3.log" || fail "NATIVE_MISSING does not say '$needle': $(cat "$work/use3.log")"
done
if without_rust npx evtstore-rs-build >"$work/build3.log" 2>&1; then fail "npx evtstore-rs-build succeeded without cargo"; fi
grep -q "cargo is not on PATH: install it from https://rustup.rs" "$work/build3.log" || fail "npx evtstore-rs-build said: $(cat "$work/build3.log")"
ok "without a binary: a quiet install, NATIVE_MISSING at first use, and npx evtstore-rs-build asks for Rust"

echo "== 4. no prebuilt binary (--omit=optional), cargo on PATH: npx evtstore-rs-build builds from the shipped source"
source_build="$(new_project from-source)"
cd "$source_build"
npm install --omit=optional "evtstore-rs@$version" >"$work/install4.log" 2>&1 || fail "npm install failed: $(cat "$work/install4.log")"
if [ -z "${EVTSTORE_INSTALL_TEST_COLD:-}" ]; then export CARGO_TARGET_DIR="$repo/target"; fi
start="$(now)"
npx evtstore-rs-build >"$work/build4.log" 2>&1 || fail "the build from source failed: $(tail -n 30 "$work/build4.log")"
build4="$(seconds "$start" "$(now)")"
unset CARGO_TARGET_DIR
[ -f node_modules/evtstore-rs/native/evtstore-rs.node ] || fail "no addon was built: $(tail -n 30 "$work/build4.log")"
no_build_left "$source_build"
node "$here/app.js" evtstore-rs
ok "npx evtstore-rs-build built the addon in ${build4} s${EVTSTORE_INSTALL_TEST_COLD:+ (cold)}, node_modules $(du -sk node_modules | cut -f1) KB, no target folder left; the program ran"

echo "install-test.sh: $passed passed, 0 failed (install without Rust: ${install1} s; alias: ${install2} s)"
