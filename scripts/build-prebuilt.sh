#!/usr/bin/env bash
# Builds a Linux prebuilt binary the way it is published, linked by Zig
# (cargo-zigbuild): the glibc ones against glibc 2.17, so they load on old
# distributions too, which is then checked (no glibc symbol it needs may be
# newer); the binary is placed in npm/<platform>/, its platform package.
# Usage: scripts/build-prebuilt.sh [linux-x64-gnu (default) | linux-arm64-gnu | linux-x64-musl]
# Here only linux-x64-gnu builds (no other Rust target is installed); the
# release workflow (.github/workflows/release.yml) builds the others, and
# macOS and Windows with `napi build` on their own runners.
# cargo-zigbuild and Zig come from PyPI into a virtualenv, pinned below.
# Settings: EVTSTORE_ZIGBUILD_VENV (default ~/.cache/evtstore-rs/zigbuild-venv).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${EVTSTORE_ZIGBUILD_VENV:-$HOME/.cache/evtstore-rs/zigbuild-venv}"
platform="${1:-linux-x64-gnu}"
case "$platform" in
  linux-x64-gnu) triple=x86_64-unknown-linux-gnu glibc=2.17 ;;
  linux-arm64-gnu) triple=aarch64-unknown-linux-gnu glibc=2.17 ;;
  linux-x64-musl) triple=x86_64-unknown-linux-musl glibc= ;;
  *) echo "build-prebuilt.sh: no Zig build for $platform" >&2; exit 2 ;;
esac
binary_name="$(node -p "require('$repo/package.json').napi.binaryName")"
out="$repo/native/$binary_name.$platform.node"

if [ ! -x "$venv/bin/cargo-zigbuild" ] || ! "$venv/bin/python3" -c 'import ziglang' 2>/dev/null; then
  echo "build-prebuilt.sh: installing cargo-zigbuild and Zig from PyPI into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'cargo-zigbuild==0.24.1' 'ziglang==0.14.1'
fi
# cargo-zigbuild runs Zig as `python3 -m ziglang`: the virtualenv's python3 comes first
export PATH="$venv/bin:$PATH"

cd "$repo"
rm -f "$out"
# -x: napi runs `cargo zigbuild`, which hands a .2.17 suffix to `zig cc` as the glibc to link against
npx napi build --release --platform --target "$triple${glibc:+.$glibc}" --cross-compile --output-dir native --no-js --dts native.d.ts
test -f "$out" || { echo "build-prebuilt.sh: napi build did not write $out" >&2; exit 1; }

if [ -n "$glibc" ]; then
  # The dynamic symbols it imports, versioned (memcpy@GLIBC_2.14): objdump -T
  # where the host's objdump reads the binary's architecture, else readelf.
  symbols="$(objdump -T "$out" 2>/dev/null || readelf --dyn-syms -W "$out")"
  newest="$(grep -o 'GLIBC_[0-9][0-9.]*' <<<"$symbols" | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n -u | tail -n 1)"
  echo "build-prebuilt.sh: newest glibc symbol version needed: ${newest:-none} (at most $glibc)" >&2
  if [ -z "$newest" ]; then
    echo "build-prebuilt.sh: no GLIBC_ symbol found in $out: not a glibc binary?" >&2
    exit 1
  fi
  if [ "$(printf '%s\n%s\n' "$newest" "$glibc" | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1)" != "$glibc" ]; then
    echo "build-prebuilt.sh: $out needs glibc $newest, newer than $glibc:" >&2
    grep "GLIBC_$newest" <<<"$symbols" >&2
    exit 1
  fi
fi

# Into its platform package. (`napi artifacts` does this in the release workflow,
# where it wants the binaries of every target, which this machine cannot build.)
mv "$out" "$repo/npm/$platform/"
ls -l "$repo/npm/$platform/"
