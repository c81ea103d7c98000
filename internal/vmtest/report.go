package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// packageReport is one guest test binary's result, rebuilt from test2json
// events.
type packageReport struct {
	Tests  []*guestTest // top-level tests, in the order they started
	Output strings.Builder
	Action string // pass, fail or skip; "" if the binary never said
	byName map[string]*guestTest
}

// guestTest is one guest test or subtest.
type guestTest struct {
	name     string // relative to its parent, for t.Run
	output   strings.Builder
	action   string // pass, fail, skip; "" if it never finished
	elapsed  float64
	children []*guestTest
}

// event is a test2json event (go doc test2json).
type event struct {
	Action  string
	Test    string
	Elapsed float64
	Output  string
}

// test2json converts a test binary's -test.v=test2json output with the go
// tool of that name, which knows the framing better than any copy of it.
// -t: without it (Go 1.26) the events carry no Elapsed, and every guest
// test would seem to take no time.
func test2json(ctx context.Context, importPath string, output []byte) (*packageReport, error) {
	cmd := exec.CommandContext(ctx, "go", "tool", "test2json", "-t", "-p", importPath)
	cmd.Stdin = bytes.NewReader(output)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go tool test2json: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return parseEvents(bytes.NewReader(out))
}

func parseEvents(r io.Reader) (*packageReport, error) {
	rep := &packageReport{byName: map[string]*guestTest{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("parse test2json event %q: %w", sc.Text(), err)
		}
		rep.add(ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read test2json events: %w", err)
	}
	return rep, nil
}

func (r *packageReport) add(ev event) {
	if ev.Test == "" {
		switch ev.Action {
		case "output":
			if !isPackageFraming(ev.Output) {
				r.Output.WriteString(ev.Output)
			}
		case "pass", "fail", "skip":
			r.Action = ev.Action
		}
		return
	}
	t := r.test(ev.Test)
	switch ev.Action {
	case "output":
		if !isTestFraming(ev.Output) {
			t.output.WriteString(ev.Output)
		}
		// A benchmark gets no pass event: its result line says it finished.
		if strings.HasPrefix(ev.Test, "Benchmark") && t.action == "" && strings.Contains(ev.Output, " ns/op") {
			t.action = "pass"
		}
	case "pass", "fail", "skip":
		t.action, t.elapsed = ev.Action, ev.Elapsed
	case "bench":
		// test2json's word for a benchmark that logged but did not fail.
		t.action, t.elapsed = "pass", ev.Elapsed
	}
}

// test finds or creates the node of a test by its full name. Its parent is
// the longest known test whose name is a prefix at a "/": a subtest's own
// name may contain "/" too.
func (r *packageReport) test(full string) *guestTest {
	if t, ok := r.byName[full]; ok {
		return t
	}
	t := &guestTest{name: full}
	r.byName[full] = t
	for i := len(full) - 1; i > 0; i-- {
		if full[i] != '/' {
			continue
		}
		if parent, ok := r.byName[full[:i]]; ok {
			t.name = full[i+1:]
			parent.children = append(parent.children, t)
			return t
		}
	}
	r.Tests = append(r.Tests, t)
	return t
}

// count returns how many tests (and subtests) started, and how many of
// those did not skip.
func (r *packageReport) count() (ran, notSkipped int) {
	for _, t := range r.byName {
		ran++
		if t.action != "skip" {
			notSkipped++
		}
	}
	return ran, notSkipped
}

func (r *packageReport) failedTest() bool {
	for _, t := range r.byName {
		if t.action == "fail" || t.action == "" {
			return true
		}
	}
	return false
}

// isTestFraming reports lines the testing package writes around a test;
// the host's own subtests say the same.
func isTestFraming(line string) bool {
	s := strings.TrimSpace(line)
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS:", "--- FAIL:", "--- SKIP:"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func isPackageFraming(line string) bool {
	s := strings.TrimSpace(line)
	return s == "PASS" || s == "FAIL"
}
