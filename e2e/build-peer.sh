#!/usr/bin/env bash
# Builds a peer program from its module on the Go module proxy:
#   build-peer.sh <module> <version> <package> <output> [go build flags...]
# `go install module@version` refuses modules whose go.mod has replace directives (Traefik,
# Hydra), so this builds inside a writable copy of the module instead.
set -euo pipefail
module=$1 version=$2 package=$3 output=$4
shift 4

dir=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "build-peer: go mod download $module@$version gave no directory" >&2; exit 1; }
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -R "$dir/." "$work"
chmod -R u+w "$work"
cd "$work"

case "$module" in
github.com/ory/hydra/v2)
  # Hydra's replace points at ./internal/httpclient, which the module zip leaves out; without
  # it, -mod=mod takes the published hydra-client-go from the proxy.
  go mod edit -dropreplace github.com/ory/hydra-client-go/v2
  set -- -mod=mod "$@"
  ;;
esac

mkdir -p "$(dirname "$output")"
go build "$@" -o "$output.tmp" "$package"
mv "$output.tmp" "$output"
