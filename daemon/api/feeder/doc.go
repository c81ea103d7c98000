// Package feeder is the generated Go code of KubeArmor's log service
// (feeder.proto): alerts, logs and the daemon's messages, streamed to
// clients with KubeArmor's own wire format.
package feeder

//go:generate sh ../protoc.sh feeder.proto
