// Package summary keeps what the host has been doing, as tables an
// operator asks for: ingress connections, egress connections and bind
// points (protocol, command, peer or address, port, count, last seen), and
// per-process process and file activity. The daemon computes them itself
// from the visibility logs; every table is bounded (least recently seen row
// evicted, and counted).
package summary

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/kubearmor/kubearmor-host/daemon/monitor"
	"github.com/kubearmor/kubearmor-host/daemon/record"
	"github.com/kubearmor/kubearmor-host/internal/lru"
)

// Direction says which table a network row is in.
type Direction int

// Directions.
const (
	Ingress Direction = iota + 1 // accepted connections: peer, and our port
	Egress                       // connections made: peer and its port
	Bind                         // bind points: local address and port
)

func (d Direction) String() string {
	switch d {
	case Ingress:
		return "ingress"
	case Egress:
		return "egress"
	case Bind:
		return "bind"
	}
	return "direction(" + strconv.Itoa(int(d)) + ")"
}

// NetKey identifies a network row.
type NetKey struct {
	Direction Direction
	Protocol  string
	Command   string     // the program
	Address   netip.Addr // ingress, egress: the peer; bind: the local address
	Port      uint16     // ingress, bind: the local port; egress: the peer's
}

// NetRow is a network row.
type NetRow struct {
	NetKey
	Count    uint64
	LastSeen time.Time
}

// ActivityKey identifies a process or file row.
type ActivityKey struct {
	Operation string // Process or File
	Source    string // the program doing it
	Resource  string // what it ran or opened
}

// ActivityRow is a process or file row.
type ActivityRow struct {
	ActivityKey
	Count      uint64
	LastResult string
	LastSeen   time.Time
}

// Summary holds the tables. It is not safe for concurrent use: the daemon's
// telemetry consumer adds, and serves snapshots (Network, Activity).
type Summary struct {
	net      *lru.Map[NetKey, NetRow]
	activity *lru.Map[ActivityKey, ActivityRow]
}

// New returns a summary of at most maxRows rows per table.
func New(maxRows int) *Summary {
	return &Summary{net: lru.New[NetKey, NetRow](maxRows), activity: lru.New[ActivityKey, ActivityRow](maxRows)}
}

// Add counts an observed event and the log made of it. Failed network
// calls make no rows: they connected or bound nothing.
func (s *Summary) Add(ev monitor.Event, l record.Log) {
	switch ev.Type {
	case monitor.Exec, monitor.Open:
		k := ActivityKey{Operation: l.Operation, Source: l.Source, Resource: l.Resource}
		r, _ := s.activity.Get(k)
		r.ActivityKey = k
		r.Count++
		r.LastResult, r.LastSeen = l.Result, ev.Time
		s.activity.Put(k, r)
	case monitor.Connect, monitor.Accept, monitor.Bind:
		if l.Result != record.ResultPassed || !ev.Local.IsValid() {
			return // failed, or not an IP socket
		}
		k := NetKey{Protocol: record.ProtocolName(ev.SockType, ev.Protocol), Command: l.Source}
		switch ev.Type {
		case monitor.Connect:
			k.Direction, k.Address, k.Port = Egress, ev.Remote.Addr().Unmap(), ev.Remote.Port()
		case monitor.Accept:
			k.Direction, k.Address, k.Port = Ingress, ev.Remote.Addr().Unmap(), ev.Local.Port()
		default:
			k.Direction, k.Address, k.Port = Bind, ev.Local.Addr().Unmap(), ev.Local.Port()
		}
		r, _ := s.net.Get(k)
		r.NetKey = k
		r.Count++
		r.LastSeen = ev.Time
		s.net.Put(k, r)
	}
}

// Network returns the rows of one direction, most recent first.
func (s *Summary) Network(d Direction) []NetRow {
	var out []NetRow
	for _, r := range s.net.Values() {
		if r.Direction == d {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b NetRow) int { return b.LastSeen.Compare(a.LastSeen) })
	return out
}

// Activity returns the rows of one operation (Process or File), most
// counted first.
func (s *Summary) Activity(operation string) []ActivityRow {
	var out []ActivityRow
	for _, r := range s.activity.Values() {
		if r.Operation == operation {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b ActivityRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Resource, b.Resource))
	})
	return out
}

// Evicted is how many rows were dropped to stay within bounds.
func (s *Summary) Evicted() uint64 { return s.net.Evicted() + s.activity.Evicted() }

func (r NetRow) String() string {
	return fmt.Sprintf("%s %s %s %s:%d x%d", r.Direction, r.Protocol, r.Command, r.Address, r.Port, r.Count)
}
