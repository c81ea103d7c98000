// Package hostpb is the generated Go code of this daemon's own service
// (host.proto): probe and summary.
package hostpb

//go:generate sh ../protoc.sh host.proto
