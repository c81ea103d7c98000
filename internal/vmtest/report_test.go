package vmtest

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestResultParser(t *testing.T) {
	ini := &Initramfs{nonce: "abc", Commands: []Command{{Name: "uname"}, {Name: "lsm"}, {Name: "t1"}, {Name: "t2"}, {Name: "t3"}}}
	p := newResultParser(ini, time.Now())
	stream := "noise before\n" +
		"\n@@vmtest-abc begin 0\n6.1.0\n\n@@vmtest-abc end 0 0\n" +
		"\n@@vmtest-abc begin 1\ncapability,bpf\n@@vmtest-abc end 1 0\n" + // as if output lacked its newline
		"\n@@vmtest-abc begin 2\nline 1\r\n@@vmtest-other begin 3\n\n@@vmtest-abc end 2 3\n" +
		"\n@@vmtest-abc begin 3\npartial"
	if err := p.read(strings.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		out      string
		code     int
		finished bool
	}{
		{"6.1.0\n", 0, true},
		{"capability,bpf", 0, true},
		{"line 1\n@@vmtest-other begin 3\n", 3, true}, // a foreign marker is output
		{"partial", 0, false},
		{"", 0, false},
	}
	for i, w := range want {
		o := p.outputs[i]
		if string(o.Output) != w.out || o.ExitCode != w.code || o.Finished != w.finished {
			t.Errorf("output %d = %q code %d finished %v, want %q %d %v", i, o.Output, o.ExitCode, o.Finished, w.out, w.code, w.finished)
		}
	}
	if p.done {
		t.Error("done without the done marker")
	}
	if got := p.running(); !strings.Contains(got, "t2") {
		t.Errorf("running() = %q, want t2", got)
	}
	p.line([]byte("@@vmtest-abc done\n"))
	if !p.done {
		t.Error("not done after the done marker")
	}
}

func TestParseEvents(t *testing.T) {
	f, err := os.Open("testdata/events.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := parseEvents(f)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var walk func(prefix string, ts []*guestTest)
	walk = func(prefix string, ts []*guestTest) {
		for _, gt := range ts {
			got = append(got, prefix+gt.name+"="+gt.action+":"+strings.TrimSpace(gt.output.String()))
			walk(prefix+gt.name+" > ", gt.children)
		}
	}
	walk("", rep.Tests)
	want := []string{
		"TestPass=pass:pass_test.go:5: hello",
		"TestSub=fail:",
		"TestSub > ok=pass:",
		"TestSub > a/b=fail:sub_test.go:9: boom",
		"TestSkip=skip:skip_test.go:3: not here",
		"TestCrash=:panic: oops",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.Action != "fail" {
		t.Errorf("package action %q, want fail", rep.Action)
	}
	if ran, notSkipped := rep.count(); ran != 6 || notSkipped != 5 {
		t.Errorf("count() = %d, %d; want 6, 5", ran, notSkipped)
	}
	if out := strings.TrimSpace(rep.Output.String()); out != "exit status 2" {
		t.Errorf("package output %q", out)
	}
}

func TestDedent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"    a.go:1: x\n        more\n", "a.go:1: x\n    more"},
		{"no indent\n  some", "no indent\n  some"},
		{"\n    a\n\n    b\n", "a\n\nb"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := dedent(tt.in); got != tt.want {
			t.Errorf("dedent(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestKernelWarnings(t *testing.T) {
	console := "[    0.1] ok\n[    1.2] WARNING: CPU: 1 PID: 7 at kernel/bpf/x.c:10 f+0x1\n[ 2.0] BUG: KASAN: oops\n[ 3] fine\n"
	got := kernelWarnings([]byte(console))
	if !strings.Contains(got, "WARNING: CPU: 1") || !strings.Contains(got, "BUG: KASAN") || strings.Contains(got, "fine") {
		t.Errorf("kernelWarnings = %q", got)
	}
	if got := kernelWarnings([]byte("[ 0.1] Run /init as init process\n")); got != "" {
		t.Errorf("kernelWarnings of a clean boot = %q", got)
	}
}

func TestTestFlags(t *testing.T) {
	t.Setenv(RunEnv, "TestA/b")
	t.Setenv(ArgsEnv, "-test.count=2")
	args, err := testFlags(Suite{Args: []string{"-test.failfast"}}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, " ")
	for _, want := range []string{"-test.v=test2json", "-test.timeout=4m45s", "-test.run=TestA/b", "-test.count=2", "-test.failfast"} {
		if !strings.Contains(got, want) {
			t.Errorf("flags %q lack %q", got, want)
		}
	}
	if _, err := testFlags(Suite{Args: []string{"-run=x"}}, time.Minute); err == nil {
		t.Error("a flag without the test. prefix: no error")
	}
}

func TestConsoleExcerpt(t *testing.T) {
	raw := "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS\r\nBooting\r\n"
	for i := 0; i < 100; i++ {
		raw += "[ 1.0] boot line\r\n"
	}
	raw += "[ 2.0] sysrq: Trigger a crash\r\n[ 2.1] Kernel panic - not syncing: sysrq triggered crash\r\n"
	for i := 0; i < 60; i++ {
		raw += "[ 2.2]  frame\r\n"
	}
	r := &Result{Console: cleanConsole([]byte(raw))}
	if bytes.ContainsAny(r.Console, "\x1b\r") {
		t.Errorf("console keeps escapes or CRs: %q", r.Console[:40])
	}
	if !strings.HasPrefix(string(r.Console), "SeaBIOS\nBooting\n") {
		t.Errorf("console starts %q", r.Console[:20])
	}
	ex := r.consoleExcerpt()
	if !strings.Contains(ex, "sysrq: Trigger a crash\n[ 2.1] Kernel panic") || strings.Count(ex, "boot line") > 8 {
		t.Errorf("excerpt does not start shortly before the panic:\n%s", ex)
	}
	if r := (&Result{Console: []byte("a\nb\nc\n")}); r.consoleExcerpt() != "a\nb\nc" {
		t.Errorf("excerpt without panic = %q", r.consoleExcerpt())
	}
}

func TestBenchmarked(t *testing.T) {
	tests := []struct {
		out  string
		want bool
	}{
		{"goos: linux\nBenchmarkEnforcement \t       1\t145490874010 ns/op\nPASS", true},
		{"BenchmarkX-2   	     100	      12.5 ns/op", true},
		{"testing: warning: no tests to run\nPASS", false},
		{"bench_test.go:9: Benchmark results follow\nPASS", false},
	}
	for _, tt := range tests {
		if got := benchmarked(tt.out); got != tt.want {
			t.Errorf("benchmarked(%q) = %v, want %v", tt.out, got, tt.want)
		}
	}
}

// TestTest2JSONElapsed checks that a guest test's time survives the
// conversion: the durations report and the shares depend on it.
func TestTest2JSONElapsed(t *testing.T) {
	const v = "\x16"
	out := v + "=== RUN   TestSlow\n    x_test.go:3: hi\n" + v + "--- PASS: TestSlow (1.50s)\n" + v + "PASS\n"
	report, err := test2json(t.Context(), "example/x", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Tests) != 1 || report.Tests[0].action != "pass" || report.Tests[0].elapsed != 1.5 {
		t.Fatalf("tests %+v, want TestSlow passed in 1.5 s", report.Tests)
	}
}
