//go:build linux

package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

const debounce = 100 * time.Millisecond

// syncBuffer is a log sink safe for the watcher goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs a watcher on dir until the test ends, checking that Run then
// returns nil and closes Triggers.
func start(t *testing.T, dir string, tweak func(w *Watcher)) (*Watcher, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	w := New(dir, debounce, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	w.minRetry, w.maxRetry = 20*time.Millisecond, 100*time.Millisecond
	if tweak != nil {
		tweak(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		if _, ok := <-w.Triggers(); ok {
			t.Error("Triggers not closed after Run returned")
		}
	})
	return w, logs
}

func next(t *testing.T, w *Watcher, wait time.Duration) (Trigger, bool) {
	t.Helper()
	select {
	case tr := <-w.Triggers():
		return tr, true
	case <-time.After(wait):
		return Trigger{}, false
	}
}

func expect(t *testing.T, w *Watcher, want Trigger) {
	t.Helper()
	got, ok := next(t, w, 5*time.Second)
	if !ok {
		t.Fatalf("no trigger, want %+v", want)
	}
	if got.Reason != want.Reason || !reflect.DeepEqual(got.Paths, want.Paths) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func expectNone(t *testing.T, w *Watcher) {
	t.Helper()
	if got, ok := next(t, w, 3*debounce); ok {
		t.Fatalf("unexpected trigger %+v", got)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func TestFileChanges(t *testing.T) {
	started := Trigger{Reason: ReasonStarted}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		act   func(t *testing.T, dir string)
		want  *Trigger // nil: no trigger
	}{
		{
			name: "create",
			act:  func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a.yaml"), "x") },
			want: &Trigger{ReasonChanged, []string{"a.yaml"}},
		},
		{
			name:  "modify",
			setup: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a.yaml"), "x") },
			act: func(t *testing.T, dir string) {
				f, err := os.OpenFile(filepath.Join(dir, "a.yaml"), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintln(f, "more")
				f.Close()
			},
			want: &Trigger{ReasonChanged, []string{"a.yaml"}},
		},
		{
			name:  "editor writes a hidden temp file and renames it over",
			setup: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a.yaml"), "old") },
			act: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, ".a.yaml.tmp1234"), "new")
				rename(t, filepath.Join(dir, ".a.yaml.tmp1234"), filepath.Join(dir, "a.yaml"))
			},
			want: &Trigger{ReasonChanged, []string{"a.yaml"}},
		},
		{
			name:  "vim keeps a backup and a swap file",
			setup: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a.yaml"), "old") },
			act: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, ".a.yaml.swp"), "swap")
				rename(t, filepath.Join(dir, "a.yaml"), filepath.Join(dir, "a.yaml~"))
				write(t, filepath.Join(dir, "a.yaml"), "new")
				os.Remove(filepath.Join(dir, "a.yaml~"))
				os.Remove(filepath.Join(dir, ".a.yaml.swp"))
			},
			want: &Trigger{ReasonChanged, []string{"a.yaml"}},
		},
		{
			name: "dpkg installs a conffile through .dpkg-new",
			act: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, "b.yaml.dpkg-new"), "new")
				rename(t, filepath.Join(dir, "b.yaml.dpkg-new"), filepath.Join(dir, "b.yaml"))
			},
			want: &Trigger{ReasonChanged, []string{"b.yaml"}},
		},
		{
			name:  "delete",
			setup: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a.yaml"), "x") },
			act: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
					t.Fatal(err)
				}
			},
			want: &Trigger{ReasonChanged, []string{"a.yaml"}},
		},
		{
			name:  "permission change (policy files must not be group/world-writable)",
			setup: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "a.yaml"), "x") },
			act: func(t *testing.T, dir string) {
				if err := os.Chmod(filepath.Join(dir, "a.yaml"), 0o666); err != nil {
					t.Fatal(err)
				}
			},
			want: &Trigger{ReasonChanged, []string{"a.yaml"}},
		},
		{
			name: "hidden, temp and backup files are ignored",
			act: func(t *testing.T, dir string) {
				for _, n := range []string{".hidden.yaml", "a.yaml~", "a.yaml.swp", "a.tmp", "#a.yaml#",
					"a.yaml.dpkg-old", "a.yaml.dpkg-dist", "a.yaml.rpmnew", "a.yaml.rpmsave"} {
					write(t, filepath.Join(dir, n), "x")
					os.Remove(filepath.Join(dir, n))
				}
			},
			want: nil,
		},
		{
			name: "a burst is debounced into one trigger",
			act: func(t *testing.T, dir string) {
				for i := range 100 {
					write(t, filepath.Join(dir, fmt.Sprintf("p%d.yaml", i%5)), fmt.Sprint(i))
				}
			},
			want: &Trigger{ReasonChanged, []string{"p0.yaml", "p1.yaml", "p2.yaml", "p3.yaml", "p4.yaml"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			w, _ := start(t, dir, nil)
			expect(t, w, started)
			tt.act(t, dir)
			if tt.want != nil {
				expect(t, w, *tt.want)
			}
			expectNone(t, w)
		})
	}
}

func TestTrickleStillTriggers(t *testing.T) {
	dir := t.TempDir()
	w, _ := start(t, dir, nil)
	expect(t, w, Trigger{Reason: ReasonStarted})
	// Events every half debounce never leave a quiet period; maxWait (1s
	// here) must still produce a trigger while they keep coming.
	stop := time.Now().Add(3 * time.Second)
	got := make(chan Trigger, 10)
	go func() {
		for tr := range w.Triggers() {
			got <- tr
		}
	}()
	for i := 0; time.Now().Before(stop); i++ {
		write(t, filepath.Join(dir, "a.yaml"), fmt.Sprint(i))
		time.Sleep(debounce / 2)
		if len(got) > 0 {
			return
		}
	}
	t.Fatal("no trigger during a steady trickle of events")
}

func TestRescan(t *testing.T) {
	dir := t.TempDir()
	w, _ := start(t, dir, nil)
	expect(t, w, Trigger{Reason: ReasonStarted})

	before := time.Now()
	w.Rescan("SIGHUP")
	expect(t, w, Trigger{Reason: "SIGHUP"})
	if d := time.Since(before); d >= debounce {
		t.Errorf("Rescan took %v, want it to skip the %v debounce", d, debounce)
	}

	// Nobody reads for a while: requests and changes merge into one trigger.
	w.Rescan("SIGHUP")
	w.Rescan("SIGHUP")
	w.Rescan("admin request")
	write(t, filepath.Join(dir, "a.yaml"), "x")
	time.Sleep(3 * debounce)
	got, ok := next(t, w, 5*time.Second)
	// The rescan requests and the file event race into the loop, so their
	// order is not fixed; each appears once.
	reasons := strings.Split(got.Reason, "; ")
	slices.Sort(reasons)
	if want := []string{"SIGHUP", "admin request", ReasonChanged}; !ok || !slices.Equal(reasons, want) || !slices.Equal(got.Paths, []string{"a.yaml"}) {
		t.Fatalf("got %+v (%v), want reasons %q and paths [a.yaml]", got, ok, want)
	}
	expectNone(t, w)
}

func TestDirectoryAppearsLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policies")
	w, logs := start(t, dir, nil)
	expectNone(t, w)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	expect(t, w, Trigger{Reason: ReasonStarted})
	write(t, filepath.Join(dir, "a.yaml"), "x")
	expect(t, w, Trigger{ReasonChanged, []string{"a.yaml"}})
	if c := strings.Count(logs.String(), "level=WARN msg=\"cannot watch policy directory"); c != 1 {
		t.Errorf("warned %d times about the missing directory, want once:\n%s", c, logs)
	}
}

func TestDirectoryRemovedAndRecreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policies")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a.yaml"), "x")
	w, _ := start(t, dir, nil)
	expect(t, w, Trigger{Reason: ReasonStarted})

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	expect(t, w, Trigger{Reason: ReasonChanged + "; " + ReasonRemoved, Paths: []string{"a.yaml"}})
	expectNone(t, w)

	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	expect(t, w, Trigger{Reason: ReasonStarted})
	write(t, filepath.Join(dir, "b.yaml"), "x")
	expect(t, w, Trigger{ReasonChanged, []string{"b.yaml"}})
}

func TestDirectoryMovedAway(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policies")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w, _ := start(t, dir, nil)
	expect(t, w, Trigger{Reason: ReasonStarted})

	rename(t, dir, dir+".old")
	expect(t, w, Trigger{Reason: ReasonRemoved})
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	expect(t, w, Trigger{Reason: ReasonStarted})
	write(t, filepath.Join(dir+".old", "stale.yaml"), "x") // the old inode is no longer watched
	expectNone(t, w)
	write(t, filepath.Join(dir, "new.yaml"), "x")
	expect(t, w, Trigger{ReasonChanged, []string{"new.yaml"}})
}

func TestNotADirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies")
	write(t, path, "a file, not a directory")
	w, logs := start(t, path, nil)
	expectNone(t, w)
	if !strings.Contains(logs.String(), "not a directory") {
		t.Errorf("logs lack the reason:\n%s", logs)
	}
}

// fakeFS stands in for fsnotify where the kernel cannot be made to do
// something on demand, like overflowing the inotify queue.
type fakeFS struct {
	events chan fsnotify.Event
	errors chan error
}

func (f *fakeFS) Add(string) error              { return nil }
func (f *fakeFS) Remove(string) error           { return nil }
func (f *fakeFS) Close() error                  { return nil }
func (f *fakeFS) Events() <-chan fsnotify.Event { return f.events }
func (f *fakeFS) Errors() <-chan error          { return f.errors }
func fakeWith(f *fakeFS) func(w *Watcher) {
	return func(w *Watcher) { w.newFS = func() (fsWatcher, error) { return f, nil } }
}
func newFake() *fakeFS                         { return &fakeFS{make(chan fsnotify.Event), make(chan error)} }
func (f *fakeFS) send(t *testing.T, err error) { t.Helper(); f.errors <- err }
func (f *fakeFS) event(t *testing.T, name string) {
	t.Helper()
	f.events <- fsnotify.Event{Name: name, Op: fsnotify.Write}
}

func TestOverflowTriggersRescan(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	w, logs := start(t, dir, fakeWith(f))
	expect(t, w, Trigger{Reason: ReasonStarted})

	f.send(t, errors.New("some transient error"))
	expectNone(t, w)
	if !strings.Contains(logs.String(), "some transient error") {
		t.Errorf("error not logged:\n%s", logs)
	}

	f.event(t, filepath.Join(dir, "a.yaml"))
	f.send(t, fmt.Errorf("read: %w", fsnotify.ErrEventOverflow))
	expect(t, w, Trigger{Reason: ReasonChanged + "; " + ReasonOverflow, Paths: []string{"a.yaml"}})
}

func TestRunFailsWithoutInotify(t *testing.T) {
	w := New(t.TempDir(), debounce, nil)
	w.newFS = func() (fsWatcher, error) { return nil, errors.New("too many open files") }
	err := w.Run(context.Background())
	if err == nil || !strings.HasSuffix(err.Error(), ": too many open files") || !strings.HasPrefix(err.Error(), "watch ") {
		t.Errorf("got %v", err)
	}
	if _, ok := <-w.Triggers(); ok {
		t.Error("Triggers not closed")
	}
}

func TestIgnored(t *testing.T) {
	tests := map[string]bool{
		"policy.yaml": false, "policy.yml": false, "README": false, "a.yaml.bak": false, "4913": false,
		".policy.yaml": true, ".policy.yaml.swp": true, ".#policy.yaml": true, "..data": true,
		"policy.yaml~": true, "policy.yaml.swp": true, "policy.tmp": true, "#policy.yaml#": true,
		"policy.yaml.dpkg-new": true, "policy.yaml.dpkg-old": true, "policy.yaml.dpkg-dist": true,
		"policy.yaml.rpmnew": true, "policy.yaml.rpmsave": true, "/etc/kubearmor/policies/.x": true,
	}
	for name, want := range tests {
		if got := Ignored(name); got != want {
			t.Errorf("Ignored(%q) = %v, want %v", name, got, want)
		}
	}
}
