package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/daemon/api/client"
	"github.com/kubearmor/kubearmor-host/daemon/record"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// binDir holds the binaries once built; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds kubearmor and karmor once for the end-to-end tests.
var binaries = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "karmor-e2e")
	if err != nil {
		return "", err
	}
	binDir = dir
	for _, pkg := range []string{"../kubearmor", "."} {
		if out, err := exec.Command("go", "build", "-o", dir+"/", pkg).CombinedOutput(); err != nil {
			return "", fmt.Errorf("build %s: %v\n%s", pkg, err, out)
		}
	}
	return dir, nil
})

// daemon is a kubearmor process for karmor to talk to.
type daemon struct {
	cmd    *exec.Cmd
	socket string
	stderr *bytes.Buffer
}

func startDaemon(t *testing.T, bin, policyDir, socket string) *daemon {
	t.Helper()
	d := &daemon{socket: socket, stderr: &bytes.Buffer{}}
	d.cmd = exec.Command(bin+"/kubearmor", "--config=", "--policyDir="+policyDir, "--hostName=e2e-host", "--logTarget=stderr",
		"--alertTarget=stdout", "--apiSocket="+socket, "--hostVisibility=process,file,network", "--hostLogTarget=none")
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop(t) })
	deadline := time.Now().Add(90 * time.Second)
	for {
		if c, err := client.Dial(socket); err == nil {
			_, err = c.Probe(context.Background())
			c.Close()
			if err == nil {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon's API never answered:\n%s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) stop(t *testing.T) {
	if d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(os.Interrupt)
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("daemon exit: %v\n%s", err, d.stderr)
	}
}

// karmor runs the client and returns its output and exit status.
func karmor(t *testing.T, bin string, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin+"/karmor", args...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("karmor %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// TestKarmor runs karmor against a real daemon on this machine (observe-only
// here, BPF-LSM in the guests): logs, summary, probe, policy and profile.
func TestKarmor(t *testing.T) {
	testutils.RequireRoot(t)
	bin, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	prog := filepath.Join(work, "bin", "true") // busybox picks its applet by name
	testutils.CopyFile(t, "/bin/busybox", prog, 0o755)
	policies := filepath.Join(work, "policies")
	if err := os.Mkdir(policies, 0o755); err != nil {
		t.Fatal(err)
	}
	head := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: "
	good := filepath.Join(policies, "good.yaml")
	broken := filepath.Join(policies, "broken.yaml")
	os.WriteFile(good, []byte(head+"audit-prog\nspec:\n  process:\n    matchPaths:\n    - path: "+prog+"\n  action: Audit\n"), 0o644)
	os.WriteFile(broken, []byte(head+"broken\nspec:\n  process:\n    matchPaths:\n    - path: relative\n  action: Audit\n"), 0o644)
	socket := filepath.Join(work, "run", "kubearmor.sock")
	d := startDaemon(t, bin, policies, socket)
	s := "--socket=" + socket

	t.Run("probe", func(t *testing.T) {
		out, _, code := karmor(t, bin, nil, "probe", s)
		if code != 0 || !strings.Contains(out, "Enforcer:") || !strings.Contains(out, "Why:") ||
			!strings.Contains(out, good) || !strings.Contains(out, "rejected: "+broken+":8:") {
			t.Errorf("karmor probe: exit %d\n%s", code, out)
		}
		out, _, code = karmor(t, bin, nil, "probe", s, "-o", "json")
		var p struct{ Enforcer, EnforcerReason string }
		if err := json.Unmarshal([]byte(out), &p); code != 0 || err != nil || p.Enforcer == "" || p.EnforcerReason == "" {
			t.Errorf("karmor probe -o json: exit %d, %v\n%s", code, err, out)
		}
	})

	t.Run("policy", func(t *testing.T) {
		_, errOut, code := karmor(t, bin, nil, "policy", "validate", "--enforcer=none", broken)
		c, err := client.Dial(socket)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		p, err := c.Probe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var daemonErr string
		for _, f := range p.PolicyFiles {
			if f.Path == broken {
				daemonErr = f.Error
			}
		}
		if code != exitFailed || daemonErr == "" || strings.TrimSpace(errOut) != daemonErr {
			t.Errorf("validate: exit %d, stderr %q; the daemon says %q", code, errOut, daemonErr)
		}
		if _, _, code := karmor(t, bin, nil, "policy", "validate", "--enforcer=none", good); code != 0 {
			t.Errorf("validate of a good file: exit %d", code)
		}
		out, _, code := karmor(t, bin, nil, "policy", "status", s)
		if code != exitFailed || !strings.Contains(out, good) || !strings.Contains(out, "active") || !strings.Contains(out, "rejected") {
			t.Errorf("policy status: exit %d\n%s", code, out)
		}
		out, _, code = karmor(t, bin, nil, "policy", "list", s)
		if code != 0 || !strings.Contains(out, "audit-prog") || !strings.Contains(out, good+":1") {
			t.Errorf("policy list: exit %d\n%s", code, out)
		}
	})

	t.Run("logs", func(t *testing.T) {
		cmd := exec.Command(bin+"/karmor", "logs", s, "--logFilter=system", "--json", "--operation=process", "--resource=^"+prog+"$", "--limit=1")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitSubscribers(t, socket, "log_subscribers")
		run := exec.Command(prog)
		if err := run.Run(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("karmor logs: %v\n%s", err, errOut.String())
		}
		var l record.Log
		if err := json.Unmarshal(out.Bytes(), &l); err != nil {
			t.Fatalf("karmor logs --json: %v\n%s", err, out.String())
		}
		if l.Type != record.TypeHostLog || l.Operation != "Process" || l.Resource != prog || l.HostPID != int32(run.Process.Pid) || l.HostName != "e2e-host" {
			t.Errorf("log %+v", l)
		}
	})

	t.Run("summary", func(t *testing.T) {
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		self, _ := os.Executable()
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, _, code := karmor(t, bin, nil, "summary", s, "-t", "network")
			if code == 0 && bindRow(out, self, port) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no bind row for %s on 127.0.0.1:%d in:\n%s", self, port, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("profile", func(t *testing.T) {
		// Keys through a pipe, as a terminal would send them: Tab to the
		// File tab, then q.
		r, w := io.Pipe()
		go func() {
			time.Sleep(time.Second)
			w.Write([]byte("\t"))
			time.Sleep(time.Second)
			w.Write([]byte("q"))
			w.Close()
		}()
		out, errOut, code := karmor(t, bin, r, "profile", s)
		if code != 0 || !strings.Contains(out, "[File (") || !strings.Contains(out, "PROCESS") {
			t.Errorf("karmor profile: exit %d, stderr %q\n%q", code, errOut, out)
		}
	})

	t.Run("logs across a daemon restart", func(t *testing.T) {
		cmd := exec.Command(bin+"/karmor", "logs", s, "--logFilter=all", "--json", "--resource=^"+prog+"$", "--operation=process", "--limit=1")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitSubscribers(t, socket, "log_subscribers")
		d.stop(t)
		d = startDaemon(t, bin, policies, socket)
		waitSubscribers(t, socket, "log_subscribers")
		if err := exec.Command(prog).Run(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || !strings.Contains(line, `"Resource":"`+prog+`"`) {
			t.Errorf("after the restart: %q, %v; stderr:\n%s", line, err, errOut.String())
		}
		cmd.Wait()
		if !strings.Contains(errOut.String(), "lost the daemon") || !strings.Contains(errOut.String(), "the daemon is back") {
			t.Errorf("karmor did not say it lost and found the daemon:\n%s", errOut.String())
		}
	})

	t.Run("no daemon", func(t *testing.T) {
		_, errOut, code := karmor(t, bin, nil, "summary", "--socket="+filepath.Join(work, "none.sock"))
		if code != exitNoDaemon || !strings.Contains(errOut, "not running") {
			t.Errorf("summary without a daemon: exit %d, %q", code, errOut)
		}
	})
}

func bindRow(table, cmd string, port int) bool {
	for _, l := range strings.Split(table, "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && f[0] == "TCP" && f[1] == cmd && f[2] == "127.0.0.1" && f[3] == fmt.Sprint(port) && f[4] == "1" {
			return true
		}
	}
	return false
}

// waitSubscribers waits until the daemon counts a subscriber of a stream.
func waitSubscribers(t *testing.T, socket, counter string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := client.Dial(socket); err == nil {
			p, err := c.Probe(context.Background())
			c.Close()
			if err == nil && p.Counter("api", counter) > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30s", counter)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
