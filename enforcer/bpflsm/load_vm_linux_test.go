//go:build linux

package bpflsm

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// verifierStats matches the kernel's BPF_LOG_STATS lines: how long the
// verifier took and how many instructions it walked.
var verifierStats = regexp.MustCompile(`verification time (\d+) usec|processed (\d+) insns`)

// programCost is one program's verification, in the kernel's own figures.
type programCost struct {
	name   string
	verify time.Duration
	insns  int
}

func parseVerifierStats(name, log string) programCost {
	c := programCost{name: name}
	for _, m := range verifierStats.FindAllStringSubmatch(log, -1) {
		if m[1] != "" {
			us, _ := strconv.Atoi(m[1])
			c.verify = time.Duration(us) * time.Microsecond
		} else {
			c.insns, _ = strconv.Atoi(m[2])
		}
	}
	return c
}

// BenchmarkLoad says where the enforcer's start-up goes: Load as the
// daemon calls it (wall time), and each program's verification as the
// kernel accounts it (BPF_LOG_STATS), largest first. Under TCG the
// verifier is most of a daemon's start.
func BenchmarkLoad(b *testing.B) {
	testutils.RequireGuest(b)
	var load time.Duration
	var costs []programCost
	for b.Loop() {
		begin := time.Now()
		e, err := Load(Options{})
		if err != nil {
			b.Fatal(err)
		}
		load = time.Since(begin)
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}

		spec, err := loadLsm()
		if err != nil {
			b.Fatal(err)
		}
		coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
			Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
		if err != nil {
			b.Fatal(err)
		}
		costs = costs[:0]
		for name, p := range coll.Programs {
			c := parseVerifierStats(name, p.VerifierLog)
			if c.insns == 0 {
				b.Fatalf("program %s: no statistics in its verifier log %q", name, p.VerifierLog)
			}
			costs = append(costs, c)
		}
		coll.Close()
	}
	slices.SortFunc(costs, func(a, b programCost) int { return int(b.verify - a.verify) })
	var total time.Duration
	var insns int
	var rows strings.Builder
	for _, c := range costs {
		total += c.verify
		insns += c.insns
		fmt.Fprintf(&rows, "| %s | %d | %.0f |\n", c.name, c.insns, c.verify.Seconds()*1000)
	}
	var uts unix.Utsname
	unix.Uname(&uts)
	b.ReportMetric(load.Seconds(), "load-s")
	b.ReportMetric(total.Seconds(), "verify-s")
	b.Logf("%s\nBPF-LSM enforcer Load, kernel %s: %.1f s wall; the verifier's own time for the %d programs: %.1f s, %d instructions walked\n\n"+
		"| program | instructions walked | verification ms |\n|---|---|---|\n%s%s",
		benchBegin, unix.ByteSliceToString(uts.Release[:]), load.Seconds(), len(costs), total.Seconds(), insns, rows.String(), benchEnd)
}
