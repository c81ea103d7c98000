// Package hostpb is the generated Go code of this daemon's own service
// (host.proto): probe and summary; and, in counters.go, helpers to read the
// probe's counters.
package hostpb

//go:generate sh ../protoc.sh host.proto
