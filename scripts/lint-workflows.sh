#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows/*.yml), which cannot run
# here, with actionlint: expressions, job and step fields, action inputs, the
# matrix, and the shell of `run:` steps when shellcheck is on PATH.
# actionlint is built once with `go install` (Go module proxy), pinned below,
# into EVTSTORE_TOOLS_BIN (default ~/.cache/evtstore-rs/bin).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
version=v1.7.12
bin="${EVTSTORE_TOOLS_BIN:-$HOME/.cache/evtstore-rs/bin}"
lint="$bin/actionlint-$version"

if [ ! -x "$lint" ]; then
  go="$(command -v go || echo /usr/local/go/bin/go)"
  [ -x "$go" ] || { echo "lint-workflows.sh: Go is needed to build actionlint (https://go.dev/dl/)" >&2; exit 1; }
  echo "lint-workflows.sh: building actionlint $version" >&2
  mkdir -p "$bin"
  GOBIN="$bin" "$go" install "github.com/rhysd/actionlint/cmd/actionlint@$version"
  mv "$bin/actionlint" "$lint"
fi

cd "$repo"
"$lint" -no-color .github/workflows/*.yml

# actionlint checks a runner label where runs-on names it, not in a matrix
# (runs-on: ${{ matrix.settings.host }}): a workflow with one job per host:
# value of the matrices has each checked against GitHub's current labels.
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
{
  echo 'on: push'
  echo 'jobs:'
  n=0
  for host in $(grep -ho 'host: [A-Za-z0-9._-]*' .github/workflows/*.yml | cut -d' ' -f2 | sort -u); do
    n=$((n + 1))
    printf '  job%s:\n    runs-on: %s\n    steps: [{ run: "true" }]\n' "$n" "$host"
  done
} >"$probe/hosts.yml"
"$lint" -no-color "$probe/hosts.yml"
echo "lint-workflows.sh: $(ls .github/workflows/*.yml | wc -l) workflow file(s) pass actionlint $version"
