package apparmor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/kubearmor/kubearmor-host/audit/reader"
	"github.com/kubearmor/kubearmor-host/enforcer/dynloader"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/policy"
)

// TestEnforce loads compiled profiles into a guest's AppArmor and checks
// that processes started afterwards are held to them: a blocked program
// does not run, not in a chroot, not through the dynamic loader (ld.so PROGRAM), a
// blocked file does not open, a readOnly file reads but does not write, a
// blocked capability is refused, no TCP socket is made (where the kernel
// mediates the network rules the parser writes; else the rule must be
// reported as a limitation), and the rest works; each denial reaches the
// audit log (audit/reader, multicast) naming the profile. Then an
// allow-list with the block posture replaces the set: only programs it
// lists run. Removing the profiles lifts it all. The test process itself
// started before the profiles and stays unconfined, as every running
// process does: the shells it starts are the confined ones.
func TestEnforce(t *testing.T) {
	testutils.RequireGuest(t)
	if b, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled"); strings.TrimSpace(string(b)) != "Y" {
		t.Fatal("AppArmor is not enabled in the guest")
	}
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		t.Fatalf("apparmor_parser is not in the guest (the suite adds the host's): %v", err)
	}
	dir := t.TempDir()
	// A copy of busybox named after an applet (busybox picks the applet by
	// name): it runs, and exits 0, unless the profile refuses it.
	prog, free := filepath.Join(dir, "bin", "true"), filepath.Join(dir, "free")
	secret, config := filepath.Join(dir, "secret"), filepath.Join(dir, "config")
	testutils.CopyFile(t, "/bin/busybox", prog, 0o755)
	testutils.CopyFile(t, dynamicProgram, dynamicProgram+"-free", 0o755)
	t.Cleanup(func() { os.Remove(dynamicProgram + "-free") })
	for _, f := range []string{free, secret, config} {
		if err := os.WriteFile(f, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rules := []policy.Rule{
		{Kind: policy.KindProcess, Action: policy.ActionBlock, Match: policy.MatchPath, Path: prog},
		{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: secret},
		{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: config, ReadOnly: true},
		{Kind: policy.KindCapabilities, Action: policy.ActionBlock, Match: policy.MatchCapability, Capability: 0}, // chown
		{Kind: policy.KindNetwork, Action: policy.ActionBlock, Match: policy.MatchProtocol, Protocol: policy.ProtoTCP},
		{Kind: policy.KindProcess, Action: policy.ActionBlock, Match: policy.MatchPath, Path: dynamicProgram},
	}
	features := KernelFeatures()
	loader := dynloader.Interpreter(dynamicProgram)
	if loader == "" {
		t.Fatalf("%s has no loader in the guest", dynamicProgram)
	}
	c, err := Compile(setOf(t, auditPostures, rules...), features)
	if err != nil {
		t.Fatal(err)
	}
	if !features.Network {
		// Debian's kernels: the TCP rule is reported, not half enforced.
		if len(c.Limitations) != 1 || c.Limitations[0].Rule != 5 {
			t.Errorf("limitations %v, want the TCP rule's", c.Limitations)
		}
	}
	// The kernel's audit records of the decisions, as the audit alert
	// path will read them.
	r, err := reader.Open(reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	records := make(chan reader.Event, 1024)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go r.Run(ctx, records)

	l := &Loader{Parser: parser}
	if err := l.Replace(c.Profiles); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.RemoveAll() })

	// sh runs script in a new (so confined) shell and reports its status.
	sh := func(script string) error { return exec.Command("/bin/sh", "-c", script).Run() }
	checks := []struct {
		what   string
		script string
		ok     bool
	}{
		{"a free file opens", "cat " + free, true},
		{"the blocked file does not", "cat " + secret, false},
		{"the readOnly file reads", "cat " + config, true},
		{"but is not written", "echo y >> " + config, false},
		{"the blocked program does not run", prog, false},
		// AppArmor names files from the mount namespace's root, not the
		// process's: a chroot is not another name.
		{"nor in a chroot", "chroot " + dir + " /bin/true", false},
		{"other programs run", "/bin/true", true},
		{"the blocked dynamic program does not run", dynamicProgram + " --version", false},
		{"nor does the loader run it", loader + " " + dynamicProgram + " --version", false},
		{"the loader runs other programs", loader + " " + dynamicProgram + "-free --version", true},
		{"the blocked capability is refused", "chown 65534 " + free, false},
		// Refused at socket creation; the audit record below shows it was
		// the profile and not the closed port.
		{"no TCP socket", "nc 127.0.0.1 9 </dev/null", false},
		{"the shell is confined by the host profile", "grep -q kubearmor-host /proc/self/attr/current", true},
	}
	run := func(phase string, want func(ok bool) bool) {
		for _, c := range checks {
			if err := sh(c.script); want(c.ok) != (err == nil) {
				t.Errorf("%s: %s (%s): error %v", phase, c.what, c.script, err)
			}
		}
	}
	run("with the profiles", func(ok bool) bool { return ok })
	if all, err := os.ReadDir("/sys/kernel/security/apparmor/features"); err == nil {
		var names []string
		for _, f := range all {
			names = append(names, f.Name())
		}
		t.Logf("the kernel's AppArmor features: %v", names)
	}

	// Each Block rule's denial is in the audit log, naming the profile
	// (fields differ in order and number between kernels: 6.12 adds class=).
	want := map[string][]string{
		"open " + secret:        {`operation="open"`, `name="` + secret + `"`},
		"exec " + prog:          {`operation="exec"`, `name="` + prog + `"`},
		"capability chown":      {`operation="capable"`, `capname="chown"`},
		"append " + config:      {`operation="open"`, `name="` + config + `"`, `requested_mask="ac"`},
		"map " + dynamicProgram: {`operation="file_mmap"`, `name="` + dynamicProgram + `"`, `denied_mask="m"`},
	}
	if features.Network {
		want["tcp socket"] = []string{`operation="create"`, `family="inet"`, `sock_type="stream"`}
	}
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case e := <-records:
			for _, m := range e.Messages {
				if m.RecordType != auparse.AUDIT_AVC || !strings.Contains(m.RawData, `apparmor="DENIED"`) ||
					!strings.Contains(m.RawData, `profile="kubearmor-host"`) {
					continue
				}
				for what, fields := range want {
					if containsAll(m.RawData, fields) {
						t.Logf("%s: %s", what, m.RawData)
						delete(want, what)
					}
				}
			}
		case <-deadline:
			t.Fatalf("no AppArmor denial in the audit records for %v (reader %+v)", want, r.Stats())
		}
	}

	// An allow-list with the block posture: only programs under /bin may
	// run; the rest is denied by the posture, with no rule naming it.
	allowList := setOf(t, policy.Postures{File: policy.PostureBlock, Network: policy.PostureAudit, Capabilities: policy.PostureAudit},
		policy.Rule{Kind: policy.KindProcess, Action: policy.ActionAllow, Match: policy.MatchDir, Path: "/bin/", Recursive: true})
	c, err = Compile(allowList, features)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Replace(c.Profiles); err != nil {
		t.Fatal(err)
	}
	if err := sh("/bin/true"); err != nil {
		t.Errorf("allow-list: a program under /bin: %v", err)
	}
	if err := sh(prog); err == nil {
		t.Errorf("allow-list: %s, outside it, ran", prog)
	}
	if err := sh("cat " + secret); err != nil {
		t.Errorf("allow-list: the file rule is gone with the set: %v", err)
	}

	if err := l.RemoveAll(); err != nil {
		t.Fatal(err)
	}
	if err := sh("cat " + secret + " && " + prog + " && chroot " + dir + " /bin/true && echo y >> " + config +
		" && " + loader + " " + dynamicProgram + " --version"); err != nil {
		t.Errorf("after RemoveAll, what was blocked: %v", err)
	}
}

// dynamicProgram is a dynamically linked program the guest carries with its
// loader and libraries (guestFiles in internal/vmtest/suites.go).
const dynamicProgram = "/opt/dyn/head"

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
