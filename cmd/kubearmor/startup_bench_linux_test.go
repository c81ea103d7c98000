//go:build linux

package main_test

import (
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// startupStep matches the steps the daemon's "ready" log line times.
var startupStep = regexp.MustCompile(`(\w+)_ms=(\d+)`)

// BenchmarkStartup starts the daemon as the packaged unit does (enforcer
// auto, default visibility, one policy) and reports the time from the
// process's start to READY=1, and the daemon's own account of where it
// went (its "ready" log line). Run it in the guests, where BPF-LSM is the
// enforcer chosen; each start is a fresh process.
func BenchmarkStartup(b *testing.B) {
	testutils.RequireGuest(b)
	dir := b.TempDir()
	writePolicy(b, dir, "block.yaml", hostPolicy("startup-block", `  process:
    matchPaths:
    - path: /usr/local/bin/startup-blocked
  action: Block
`))
	const starts = 3
	var rows strings.Builder
	var total time.Duration
	for i := range starts {
		begin := time.Now()
		p := startDaemon(b, dir, "--logLevel=info")
		p.waitNotify(b, "READY=1")
		ready := time.Since(begin)
		total += ready
		line := p.waitLog(b, "msg=ready")
		p.stop(b)
		steps := map[string]string{}
		for _, m := range startupStep.FindAllStringSubmatch(line, -1) {
			steps[m[1]] = m[2]
		}
		fmt.Fprintf(&rows, "| %d | %.1f |", i+1, ready.Seconds())
		for _, k := range []string{"startup", "probe", "enforcer", "monitor", "first_set", "pin"} {
			ms, err := strconv.Atoi(steps[k])
			if err != nil {
				b.Fatalf("the ready line has no %s_ms: %q", k, line)
			}
			fmt.Fprintf(&rows, " %.1f |", float64(ms)/1000)
		}
		rows.WriteString("\n")
	}
	b.ReportMetric(total.Seconds()/starts, "s/start")
	b.Logf("%s\nDaemon start-up, kernel %s, %d CPUs: process start to READY=1, and the daemon's steps (seconds)\n\n"+
		"| start | to READY=1 | in Run | probe | enforcer load | monitor load | first policy set | pin |\n|---|---|---|---|---|---|---|---|\n%s%s",
		benchBegin, kernelRelease(), runtime.NumCPU(), rows.String(), benchEnd)
}
