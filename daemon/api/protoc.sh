#!/bin/sh
# Generates the Go code of the .proto files given, in the current directory,
# with protoc (Debian's protobuf-compiler) and the plugins at the versions
# go.mod pins. Run by go generate; the output is checked in, so a build
# needs neither.
set -eu
command -v protoc >/dev/null || { echo "protoc not installed (apt-get install protobuf-compiler)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
protoc --plugin=protoc-gen-go="$tmp/protoc-gen-go" --plugin=protoc-gen-go-grpc="$tmp/protoc-gen-go-grpc" \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative "$@"
