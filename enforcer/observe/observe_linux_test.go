//go:build linux

package observe

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

func TestMain(m *testing.M) { os.Exit(testutils.RunWithLeakCheck(m)) }

// TestObserveExec runs real programs on this host's kernel and checks that
// the monitor attributes each exec to its caller and that the matcher's
// verdicts come out as observed alerts.
func TestObserveExec(t *testing.T) {
	testutils.RequireRoot(t)
	e, err := Load(nil)
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, os.ErrPermission) {
		testutils.RequireFeature(t, "tp_btf programs", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	dir := t.TempDir()
	// busybox picks its applet by name: keep the base names applets.
	blocked := filepath.Join(dir, "blocked", "true")
	audited := filepath.Join(dir, "audited", "true")
	shell := filepath.Join(dir, "sh")
	for _, p := range []string{blocked, audited, shell} {
		testutils.CopyFile(t, "/bin/busybox", p, 0o755)
	}
	doc := &policy.Document{File: "t.yaml", Line: 1, Name: "t", Rules: []policy.Rule{
		{Policy: "t", Kind: policy.KindProcess, Action: policy.ActionBlock, Match: policy.MatchPath, Path: blocked, Severity: 5},
		{Policy: "t", Kind: policy.KindProcess, Action: policy.ActionAudit, Match: policy.MatchPath, Path: audited,
			Sources: []policy.Source{{Path: shell}}, Severity: 3},
	}}
	set, err := policy.NewSet(7, policy.Postures{File: policy.PostureAudit}, []*policy.Document{doc})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(set); err != nil {
		t.Fatal(err)
	}
	events := make(chan enforcer.Event, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, events) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(100 * time.Millisecond) // let Run seed the process table

	// Observe-only cannot block: the program runs, and the alert says what
	// would have happened.
	run(t, blocked, "true")
	// The Audit rule is scoped to shell: from the test binary nothing fires,
	// from shell it does.
	run(t, audited, "true")
	run(t, shell, "sh", "-c", audited+" true")

	want := []struct {
		path, exe string
		verdict   match.Verdict
		rule      uint32
	}{
		{blocked, mustExe(t), match.Block, 1},
		{audited, shell, match.Audit, 2},
	}
	for _, w := range want {
		select {
		case ev := <-events:
			if ev.Path != w.path || ev.Exe != w.exe || ev.Verdict != w.verdict || ev.RuleID != w.rule || !ev.Observed || ev.Version != 7 {
				t.Errorf("event %+v, want path %s exe %s verdict %v rule %d", ev, w.path, w.exe, w.verdict, w.rule)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event for %s", w.path)
		}
	}
	if st := e.Stats(); st.EventsLost != 0 || st.Malformed != 0 {
		t.Errorf("lost events: %+v", st)
	}
	version, counts := e.RuleStats()
	if version != 7 || len(counts) != 3 || counts[1].Denied != 1 || counts[2].Audited != 1 {
		t.Errorf("rule statistics of version %d: %+v, want one denial by rule 1 and one audit by rule 2", version, counts)
	}
}

func mustExe(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func run(t *testing.T, path string, argv ...string) {
	t.Helper()
	cmd := exec.Command(path)
	cmd.Args = argv
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run %s: %v\n%s", path, err, out)
	}
}
