//go:build linux

package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kubearmor/kubearmor-host/daemon/api/hostpb"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// Markers around the results, which `make bench` copies into
// docs/benchmarks.md.
const (
	benchBegin = "---8<--- benchmark results"
	benchEnd   = "--->8---"
)

// BenchmarkTelemetry floods the real daemon, on this machine's kernel, with
// opens at fixed rates and then as fast as one thread can, and with execs,
// and reports for each step what was generated, what the daemon's monitors
// saw, delivered and counted as lost; its CPU per 10,000 events a second;
// and its peak RSS after a flood of 1,000,000 opens. The in-kernel rate
// limit is set out of the way (telemetryRate): this measures the pipeline.
func BenchmarkTelemetry(b *testing.B) {
	testutils.RequireRoot(b)
	dir := b.TempDir()
	p := startDaemon(b, dir, "--hostVisibility=process,file,network", "--hostLogTarget=none", "--telemetryRate=10000000", "--logLevel=info")
	p.waitNotify(b, "READY=1")
	conn, err := grpc.NewClient("unix://"+p.api, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	host := hostpb.NewHostClient(conn)
	pid := p.cmd.Process.Pid
	file := filepath.Join(dir, "flood")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	prog := filepath.Join(dir, "true")
	testutils.CopyFile(b, "/bin/true", prog, 0o755)

	type step struct {
		name    string
		rate    int // per second, all threads; 0: as fast as they go
		count   int // operations, all threads
		threads int
		exec    bool
		missing bool // open a file that is not there: a cheaper call, so a faster flood
	}
	steps := []step{
		{"open, 50,000/s", 50_000, 100_000, 1, false, false},
		{"open, 100,000/s", 100_000, 200_000, 1, false, false},
		{"open, 200,000/s, 2 threads", 200_000, 400_000, 2, false, false},
		{"open, 300,000/s, 2 threads", 300_000, 600_000, 2, false, false},
		{"open, as fast as one thread goes", 0, 1_000_000, 1, false, false},
		{"open, as fast as two threads go", 0, 1_000_000, 2, false, false},
		{"failed open (no such file), as fast as two threads go", 0, 2_000_000, 2, false, true},
		{"exec, as fast as one thread goes", 0, 2_000, 1, true, false},
	}
	var out strings.Builder
	fmt.Fprintf(&out, "%s\nTelemetry on this machine's kernel (%s, %d CPUs): the daemon with hostVisibility process,file,network, logs to the local API only, the in-kernel rate limit out of the way. "+
		"Generator threads run in the benchmark's process beside the daemon on the same CPUs; \"seen\" counts every event the monitors made on the host meanwhile (the generator's and others'), \"lost\" every one counted as dropped at any stage.\n\n",
		benchBegin, kernelRelease(), runtime.NumCPU())
	out.WriteString("| step | generated | rate reached | seen | delivered | lost (counted, where) | daemon CPU | CPU per 10,000 events/s |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range steps {
		before := probe(b, host)
		cpu0 := cpuTime(b, pid)
		start := time.Now()
		var n int
		if s.exec {
			n = execFlood(b, prog, s.count)
		} else {
			var wg sync.WaitGroup
			target := file
			if s.missing {
				target = filepath.Join(dir, "missing")
			}
			for range s.threads {
				wg.Go(func() { openFlood(b, target, s.rate/s.threads, s.count/s.threads) })
			}
			wg.Wait()
			n = s.count / s.threads * s.threads
		}
		took := time.Since(start)
		after := drained(b, host)
		cpu := (cpuTime(b, pid) - cpu0).Seconds() / took.Seconds()
		grew := func(name string) uint64 { return after.Counter("telemetry", name) - before.Counter("telemetry", name) }
		seen, delivered, lost := grew("seen"), grew("delivered"), grew("lost")
		rate := float64(n) / took.Seconds()
		evRate := float64(seen) / took.Seconds()
		where := ""
		for _, c := range []string{"throttled", "ring_full", "scratch_busy", "queue_full", "malformed"} {
			if d := grew(c); d > 0 {
				where += fmt.Sprintf(", %s %d", c, d)
			}
		}
		fmt.Fprintf(&out, "| %s | %d | %.0f/s | %d | %d | %d%s | %.0f %% | %.1f %% |\n", s.name, n, rate, seen, delivered, lost, where,
			100*cpu, 100*cpu/(evRate/10_000))
	}
	fmt.Fprintf(&out, "\nDaemon peak RSS (VmHWM) after all steps: %s.\n%s\n", peakRSS(b, pid), benchEnd)
	p.stop(b)
	fmt.Println(out.String())
}

func kernelRelease() string {
	var u unix.Utsname
	unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}

// openFlood opens and closes file count times at rate per second (0: as
// fast as it goes), on one thread of its own; a file that is not there is
// only tried.
func openFlood(b *testing.B, file string, rate, count int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	for i := range count {
		if rate > 0 && i%1000 == 0 {
			// Pace in slices of 1,000: never ahead of the schedule.
			if ahead := time.Duration(i)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
}

func execFlood(b *testing.B, prog string, count int) int {
	for range count {
		pid, err := syscall.ForkExec(prog, []string{prog}, &syscall.ProcAttr{})
		if err != nil {
			b.Fatal(err)
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
			b.Fatal(err)
		}
	}
	return count
}

func probe(b *testing.B, host hostpb.HostClient) *hostpb.ProbeReply {
	pr, err := host.Probe(context.Background(), &hostpb.ProbeRequest{})
	if err != nil {
		b.Fatal(err)
	}
	return pr
}

// drained waits until the daemon has handled everything its monitors saw
// (delivered and lost add up to seen, and stay so), and returns the
// probe then.
func drained(b *testing.B, host hostpb.HostClient) *hostpb.ProbeReply {
	deadline := time.Now().Add(time.Minute)
	for {
		pr := probe(b, host)
		if pr.Counter("telemetry", "delivered")+pr.Counter("telemetry", "lost") >= pr.Counter("telemetry", "seen") {
			return pr
		}
		if time.Now().After(deadline) {
			b.Fatalf("the daemon did not catch up within a minute: %v", pr.Counters)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpuTime is the user and system time of process pid so far.
func cpuTime(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command, which is in parentheses and may hold spaces.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz
}

func peakRSS(b *testing.B, pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
