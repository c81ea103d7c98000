package vmtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// requireVM skips unless guests can run here, and returns the first kernel.
func requireVM(t *testing.T) Kernel {
	t.Helper()
	if reason := SkipReason(); reason != "" {
		t.Skip("guest tests skipped: " + reason)
	}
	k, err := FetchKernel(t.Context(), CacheDir(), KernelPackages()[0])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestMachine proves the boot harness on a real kernel: outputs and exit
// codes come back, and a panic, a hang or an early power-off fail with the
// console's tail instead of passing or hanging.
func TestMachine(t *testing.T) {
	k := requireVM(t)
	sh := func(name, script string) Command {
		return Command{Name: name, Path: "/bin/sh", Args: []string{"-c", script}}
	}
	tests := []struct {
		name     string
		cmds     []Command
		files    []File
		icount   bool
		timeout  time.Duration
		wantErr  string // "" for success
		wantTail string // in the error's console tail
		check    func(t *testing.T, res *Result)
	}{
		{
			name: "outputs",
			cmds: []Command{
				sh("mixed", "echo out; echo err >&2; printf 'no newline'; exit 3"),
				{Name: "env", Path: "/bin/sh", Args: []string{"-c", `echo "$KUBEARMOR_VMTEST $FOO $(pwd)"`}, Dir: "/work dir", Env: []string{"FOO=bar baz"}},
				sh("links", "stat -c %h /bin/sleep"),
			},
			check: func(t *testing.T, res *Result) {
				if res.Uname != k.Release {
					t.Errorf("uname %q, want %q", res.Uname, k.Release)
				}
				if !strings.Contains(res.LSM, "bpf") {
					t.Errorf("LSM %q lacks bpf", res.LSM)
				}
				want := []struct {
					out  string
					code int
				}{{"out\nerr\nno newline", 3}, {"1 bar baz /work dir\n", 0}}
				for i, w := range want {
					o := res.Outputs[i]
					if string(o.Output) != w.out || o.ExitCode != w.code || !o.Finished {
						t.Errorf("%s: %q code %d finished %v, want %q code %d", o.Command.Name, o.Output, o.ExitCode, o.Finished, w.out, w.code)
					}
				}
				if n := strings.TrimSpace(string(res.Outputs[2].Output)); n == "1" || n == "" {
					t.Errorf("/bin/sleep has %q links, want a hard link to busybox", n)
				}
			},
		},
		{
			name:  "dynamic program",
			cmds:  []Command{{Name: "ls", Path: "/bin/ls2", Args: []string{"--version"}}},
			files: []File{{HostPath: "/bin/ls", GuestPath: "/bin/ls2", Libraries: true}},
			check: func(t *testing.T, res *Result) {
				if o := res.Outputs[len(res.Outputs)-1]; o.ExitCode != 0 || !strings.Contains(string(o.Output), "GNU coreutils") {
					t.Errorf("ls --version in the guest: code %d, output %q", o.ExitCode, o.Output)
				}
			},
		},
		{
			// Guest time is instructions executed: an idle guest's clock
			// jumps to its next timer, so a 20 s sleep passes in much less
			// host time; and the same loop twice takes the same time. The
			// kernel command line tells the guest its clock counts.
			name:   "instruction-counting clock",
			icount: true,
			cmds: []Command{
				sh("cmdline", "grep -qw "+testutils.ICountParam+" /proc/cmdline"),
				sh("sleep", "sleep 20"),
				sh("loops", `for r in 1 2; do read a x < /proc/$$/schedstat; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; read b x < /proc/$$/schedstat; echo $((b-a)); done`),
			},
			check: func(t *testing.T, res *Result) {
				n := len(res.Outputs)
				if c := res.Outputs[n-3].ExitCode; c != 0 {
					t.Errorf("%s is not on the guest's command line (grep: %d)", testutils.ICountParam, c)
				}
				if d := res.Outputs[n-2].Duration; d > 10*time.Second {
					t.Errorf("sleep 20 in the guest took %v of host time: the clock is not virtual", d)
				}
				o := res.Outputs[n-1]
				var d [2]float64
				if n, err := fmt.Sscan(string(o.Output), &d[0], &d[1]); n != 2 || err != nil {
					t.Fatalf("loop times %q: %v", o.Output, err)
				}
				if r := d[1] / d[0]; r < 0.97 || r > 1.03 {
					t.Errorf("the same loop took %v and %v ns of guest time", d[0], d[1])
				}
			},
		},
		{
			name:     "panic",
			cmds:     []Command{sh("crash", "echo c > /proc/sysrq-trigger; sleep 60")},
			wantErr:  "kernel panic (while running crash)",
			wantTail: "Kernel panic",
		},
		{
			name:    "timeout",
			cmds:    []Command{{Name: "hang", Path: "/bin/sleep", Args: []string{"3600"}}},
			timeout: 20 * time.Second,
			wantErr: "timed out after 20s (while running hang)",
		},
		{
			name:    "early power-off",
			cmds:    []Command{sh("off", "poweroff -f"), sh("never", "true")},
			wantErr: "guest stopped before its init finished (while running off)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ini, err := BuildInitramfs(filepath.Join(dir, "initramfs"), Guest{Commands: tt.cmds, Files: tt.files})
			if err != nil {
				t.Fatal(err)
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 2 * time.Minute
			}
			res, err := Machine{Kernel: k, Initramfs: ini, CPUs: 1, Timeout: timeout, WorkDir: dir, CountInstructions: tt.icount}.Run(t.Context())
			t.Logf("boot %v, total %v", res.Boot, res.Duration)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, res)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.wantTail) {
				t.Fatalf("error %v, want one containing %q and %q\nconsole: %q", err, tt.wantErr, tt.wantTail, res.Console)
			}
			if !strings.Contains(err.Error(), "--- console tail ---") || len(res.Console) == 0 {
				t.Errorf("error without the console tail, or no console: %v", err)
			}
		})
	}
}

// fixtureEnv, when set, makes TestFixtureSuite run the fixture package in
// the guest; TestRunTestsVerdicts sets it for a child go test.
const fixtureEnv = "KUBEARMOR_VMTEST_FIXTURE"

// TestFixtureSuite is the child of TestRunTestsVerdicts; it fails on purpose.
func TestFixtureSuite(t *testing.T) {
	if os.Getenv(fixtureEnv) != "1" {
		t.Skip("runs only as the child of TestRunTestsVerdicts")
	}
	RunTests(t, Suite{
		Name:     "fixture",
		Packages: []string{"./internal/vmtest/testdata/fixture"},
		Kernels:  KernelPackages()[:1],
		CPUs:     1,
		Timeout:  2 * time.Minute,
	})
}

// TestRunTestsVerdicts runs TestFixtureSuite in a child go test and checks
// that each guest test's verdict reaches the host: failures fail, skips
// skip, and a filter that matches nothing fails instead of passing.
func TestRunTestsVerdicts(t *testing.T) {
	k := requireVM(t)
	prefix := "TestFixtureSuite/" + k.Release + "/internal/vmtest/testdata/fixture/"
	tests := []struct {
		name string
		run  string // KUBEARMOR_VMTEST_RUN for the child
		want map[string]string
		out  map[string]string // test -> substring of its output
	}{
		{
			name: "mixed",
			want: map[string]string{
				"TestFixtureSuite":              "fail",
				"TestFixtureSuite/" + k.Release: "fail",
				prefix + "TestPass":             "pass",
				prefix + "TestFail":             "fail",
				prefix + "TestSkip":             "skip",
				prefix + "TestSub":              "fail",
				prefix + "TestSub/ok":           "pass",
				prefix + "TestSub/bad":          "fail",
				prefix + "TestGuestLayout":      "pass",
			},
			out: map[string]string{
				prefix + "TestPass":             "hello from the guest",
				prefix + "TestFail":             "this failure is on purpose",
				prefix + "TestSkip":             "this skip is on purpose",
				"TestFixtureSuite/" + k.Release: "guest LSMs: ",
			},
		},
		{
			name: "filter",
			run:  "TestPass",
			want: map[string]string{
				"TestFixtureSuite":  "pass",
				prefix + "TestPass": "pass",
			},
		},
		{
			name: "filter matches nothing",
			run:  "NoSuchTest",
			want: map[string]string{
				"TestFixtureSuite":              "fail",
				"TestFixtureSuite/" + k.Release: "fail",
				strings.TrimSuffix(prefix, "/"): "skip",
			},
			out: map[string]string{"TestFixtureSuite/" + k.Release: "no guest test ran"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), "go", "test", "-json", "-count=1", "-timeout=5m", "-run=^TestFixtureSuite$", ".")
			// Not in make test's durations report: the child fails on purpose.
			cmd.Env = append(os.Environ(), fixtureEnv+"=1", RunEnv+"="+tt.run, PackagesEnv+"=", ArgsEnv+"=",
				DurationsEnv+"=", TimeoutEnv+"=")
			out, _ := cmd.Output() // fails on purpose
			actions, outputs := map[string]string{}, map[string]string{}
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(nil, 16<<20)
			for sc.Scan() {
				var ev struct{ Action, Test, Output string }
				if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Test == "" {
					continue
				}
				switch ev.Action {
				case "pass", "fail", "skip":
					actions[ev.Test] = ev.Action
				case "output":
					outputs[ev.Test] += ev.Output
				}
			}
			for test, want := range tt.want {
				if actions[test] != want {
					t.Errorf("%s: %q, want %q", test, actions[test], want)
				}
			}
			for test, want := range tt.out {
				if !strings.Contains(outputs[test], want) {
					t.Errorf("%s output lacks %q:\n%s", test, want, outputs[test])
				}
			}
			if t.Failed() {
				t.Logf("child output:\n%s", out)
			}
		})
	}
}
