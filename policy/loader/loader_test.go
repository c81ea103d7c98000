package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/policy"
)

const hostname = "testhost"

var postures = policy.Postures{File: policy.PostureBlock, Network: policy.PostureAudit, Capabilities: policy.PostureAudit}

// pol is a policy document named name with one file rule per path; the
// first rule is on line 8.
func pol(name string, paths ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: %s\nspec:\n  file:\n    matchPaths:\n", name)
	for _, p := range paths {
		fmt.Fprintf(&b, "    - path: %s\n", p)
	}
	return b.String()
}

// forHost is pol with a nodeSelector naming host.
func forHost(name, host string, paths ...string) string {
	return strings.Replace(pol(name, paths...), "spec:\n", "spec:\n  nodeSelector:\n    matchLabels:\n      kubearmor.io/hostname: "+host+"\n", 1)
}

// broken is a policy whose line 8 has a relative path; errBroken is its
// error for a file at path.
func broken(name string) string { return pol(name, "relative") }

func errBroken(path string) string {
	return path + `:8: spec.file.matchPaths[0].path: must be an absolute path starting with '/', got "relative"`
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

func remove(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// load runs l.Load and fails the test if it errs, panics, or does not return.
// A validator that would be called forever panics with errLoop (see
// counting), which load reports.
func load(t *testing.T, l *Loader, v Validator) *Result {
	t.Helper()
	type out struct {
		r     *Result
		err   error
		panic any
	}
	ch := make(chan out, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- out{panic: p}
			}
		}()
		r, err := l.Load(v)
		ch <- out{r: r, err: err}
	}()
	select {
	case o := <-ch:
		if o.panic != nil {
			t.Fatalf("Load panicked: %v", o.panic)
		}
		if o.err != nil {
			t.Fatalf("Load: %v", o.err)
		}
		return o.r
	case <-time.After(5 * time.Second):
		t.Fatal("Load did not return within 5s")
	}
	return nil
}

var errLoop = errors.New("validator called 1000 times in one Load: it loops")

// counting wraps a validator so that a Load that keeps calling it ends in a
// panic instead of spinning forever.
func counting(v Validator) Validator {
	n := 0
	return func(s *policy.Set) error {
		if n++; n > 1000 {
			panic(errLoop)
		}
		return v(s)
	}
}

func byName(r *Result) map[string]FileStatus {
	m := make(map[string]FileStatus)
	for _, f := range r.Files {
		m[filepath.Base(f.Path)] = f
	}
	return m
}

func states(r *Result) map[string]State {
	m := make(map[string]State)
	for _, f := range r.Files {
		m[filepath.Base(f.Path)] = f.State
	}
	return m
}

func errText(r *Result) map[string]string {
	m := make(map[string]string)
	for _, f := range r.Files {
		if f.Err != nil {
			m[filepath.Base(f.Path)] = f.Err.Error()
		}
	}
	return m
}

func rulePaths(s *policy.Set) []string {
	var out []string
	for r := range s.Rules() {
		out = append(out, r.Path)
	}
	return out
}

func checkResult(t *testing.T, r *Result, wantStates map[string]State, wantErrs map[string]string, wantRules []string) {
	t.Helper()
	if got := states(r); !mapsEqual(got, wantStates) {
		t.Errorf("states %v, want %v", got, wantStates)
	}
	if wantErrs == nil {
		wantErrs = map[string]string{}
	}
	if got := errText(r); !mapsEqual(got, wantErrs) {
		t.Errorf("errors:\n%v\nwant:\n%v", got, wantErrs)
	}
	if got := rulePaths(r.Set); !slices.Equal(got, wantRules) {
		t.Errorf("rules %v, want %v", got, wantRules)
	}
	for id := uint32(1); id <= uint32(r.Set.Len()); id++ {
		if rule, _ := r.Set.Rule(id); rule.ID != id {
			t.Errorf("rule at %d has ID %d", id, rule.ID)
		}
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func newLoader(dir string) *Loader {
	return New(dir, policy.Host{Name: hostname}, postures)
}

// TestLoadFileStates walks one directory through a sequence of edits and
// checks, after each Load, the state of every file and the rules in force.
func TestLoadFileStates(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name    string
		edit    func(t *testing.T)
		states  map[string]State
		errs    map[string]string
		rules   []string
		changed bool
	}{
		{
			name:    "first good file",
			edit:    func(t *testing.T) { write(t, dir, "a.yaml", pol("a", "/a1")) },
			states:  map[string]State{"a.yaml": Active},
			rules:   []string{"/a1"},
			changed: true,
		},
		{
			name:   "nothing changed",
			edit:   func(t *testing.T) {},
			states: map[string]State{"a.yaml": Active},
			rules:  []string{"/a1"},
		},
		{
			name:   "same content rewritten",
			edit:   func(t *testing.T) { write(t, dir, "a.yaml", pol("a", "/a1")) },
			states: map[string]State{"a.yaml": Active},
			rules:  []string{"/a1"},
		},
		{
			name:   "broken edit keeps the last good version",
			edit:   func(t *testing.T) { write(t, dir, "a.yaml", broken("a")) },
			states: map[string]State{"a.yaml": Stale},
			errs:   map[string]string{"a.yaml": errBroken(p("a.yaml"))},
			rules:  []string{"/a1"},
		},
		{
			name:   "still broken",
			edit:   func(t *testing.T) {},
			states: map[string]State{"a.yaml": Stale},
			errs:   map[string]string{"a.yaml": errBroken(p("a.yaml"))},
			rules:  []string{"/a1"},
		},
		{
			name:    "fixed",
			edit:    func(t *testing.T) { write(t, dir, "a.yaml", pol("a", "/a2", "/a3")) },
			states:  map[string]State{"a.yaml": Active},
			rules:   []string{"/a2", "/a3"},
			changed: true,
		},
		{
			name:   "a file that was never good is rejected",
			edit:   func(t *testing.T) { write(t, dir, "b.yaml", broken("b")) },
			states: map[string]State{"a.yaml": Active, "b.yaml": Rejected},
			errs:   map[string]string{"b.yaml": errBroken(p("b.yaml"))},
			rules:  []string{"/a2", "/a3"},
		},
		{
			name:   "an empty file is rejected",
			edit:   func(t *testing.T) { write(t, dir, "c.yaml", "") },
			states: map[string]State{"a.yaml": Active, "b.yaml": Rejected, "c.yaml": Rejected},
			errs:   map[string]string{"b.yaml": errBroken(p("b.yaml")), "c.yaml": p("c.yaml") + ": no policy document in file"},
			rules:  []string{"/a2", "/a3"},
		},
		{
			name:    "rejected file fixed",
			edit:    func(t *testing.T) { write(t, dir, "b.yaml", pol("b", "/b1")); remove(t, dir, "c.yaml") },
			states:  map[string]State{"a.yaml": Active, "b.yaml": Active},
			rules:   []string{"/a2", "/a3", "/b1"},
			changed: true,
		},
		{
			name:    "deleting a file removes its rules",
			edit:    func(t *testing.T) { remove(t, dir, "a.yaml") },
			states:  map[string]State{"b.yaml": Active},
			rules:   []string{"/b1"},
			changed: true,
		},
		{
			name:   "stale file",
			edit:   func(t *testing.T) { write(t, dir, "b.yaml", broken("b")) },
			states: map[string]State{"b.yaml": Stale},
			errs:   map[string]string{"b.yaml": errBroken(p("b.yaml"))},
			rules:  []string{"/b1"},
		},
		{
			name:    "deleting a stale file removes its last good rules",
			edit:    func(t *testing.T) { remove(t, dir, "b.yaml") },
			states:  map[string]State{},
			rules:   nil,
			changed: true,
		},
		{
			name:   "a recreated file starts over: never good",
			edit:   func(t *testing.T) { write(t, dir, "b.yaml", broken("b")) },
			states: map[string]State{"b.yaml": Rejected},
			errs:   map[string]string{"b.yaml": errBroken(p("b.yaml"))},
			rules:  nil,
		},
	}
	l := newLoader(dir)
	var version uint64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.edit(t)
			r := load(t, l, nil)
			checkResult(t, r, tt.states, tt.errs, tt.rules)
			if r.Changed != tt.changed {
				t.Errorf("Changed = %v, want %v", r.Changed, tt.changed)
			}
			if r.Set.Version() <= version {
				t.Errorf("version %d after %d", r.Set.Version(), version)
			}
			version = r.Set.Version()
			if r.Set.Postures() != postures {
				t.Errorf("postures %+v", r.Set.Postures())
			}
			for _, f := range r.Files {
				rules := 0
				for rule := range r.Set.Rules() {
					if rule.Origin.File == f.Path {
						rules++
					}
				}
				if f.Rules != rules {
					t.Errorf("%s: Rules = %d, %d in the set", f.Path, f.Rules, rules)
				}
				if (f.State == Rejected) != (len(f.Policies) == 0) {
					t.Errorf("%s: %s with %d policies", f.Path, f.State, len(f.Policies))
				}
				if (f.State == Active) != (f.Err == nil) {
					t.Errorf("%s: %s with error %v", f.Path, f.State, f.Err)
				}
			}
			r.Commit()
		})
	}
}

// TestLoadCommit: only a committed set's versions are "last good".
func TestLoadCommit(t *testing.T) {
	dir := t.TempDir()
	l := newLoader(dir)

	r := load(t, l, nil)
	if !r.Changed || r.Set.Len() != 0 {
		t.Errorf("first load of an empty directory: Changed %v, %d rules; want a change to an empty set", r.Changed, r.Set.Len())
	}
	r.Commit()
	if r := load(t, l, nil); r.Changed {
		t.Error("empty directory again: Changed")
	}

	write(t, dir, "a.yaml", pol("a", "/v1"))
	r = load(t, l, nil)
	checkResult(t, r, map[string]State{"a.yaml": Active}, nil, []string{"/v1"})
	r.Commit()
	v1 := r.Set.Version()

	// v2 is loaded but never committed (say the kernel refused it).
	write(t, dir, "a.yaml", pol("a", "/v2"))
	r = load(t, l, nil)
	checkResult(t, r, map[string]State{"a.yaml": Active}, nil, []string{"/v2"})
	if !r.Changed || r.Set.Version() <= v1 {
		t.Errorf("v2: Changed %v version %d (v1 %d)", r.Changed, r.Set.Version(), v1)
	}
	// Loading again without Commit still reports the change.
	r = load(t, l, nil)
	if !r.Changed {
		t.Error("v2 loaded twice without Commit: Changed false")
	}

	// A broken v3 falls back to v1, the last committed version, not v2.
	path := write(t, dir, "a.yaml", broken("a"))
	r = load(t, l, nil)
	checkResult(t, r, map[string]State{"a.yaml": Stale}, map[string]string{"a.yaml": errBroken(path)}, []string{"/v1"})
	if r.Changed {
		t.Error("fell back to the committed version: Changed true")
	}

	// Committing v2 late makes it the last good one.
	write(t, dir, "a.yaml", pol("a", "/v2"))
	r = load(t, l, nil)
	r.Commit()
	write(t, dir, "a.yaml", broken("a"))
	r = load(t, l, nil)
	checkResult(t, r, map[string]State{"a.yaml": Stale}, map[string]string{"a.yaml": errBroken(path)}, []string{"/v2"})
	if r.Changed {
		t.Error("Changed after falling back to the committed v2")
	}
}

// TestLoadSince: Since is when the version in force was first loaded.
func TestLoadSince(t *testing.T) {
	dir := t.TempDir()
	l := newLoader(dir)
	clock := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { clock = clock.Add(time.Minute); return clock }

	write(t, dir, "a.yaml", pol("a", "/a"))
	r := load(t, l, nil)
	r.Commit()
	first := byName(r)["a.yaml"].Since
	if first.IsZero() {
		t.Fatal("Since is zero")
	}
	write(t, dir, "a.yaml", pol("a", "/a")) // same content
	r = load(t, l, nil)
	if got := byName(r)["a.yaml"].Since; !got.Equal(first) {
		t.Errorf("unchanged file: Since %v, want %v", got, first)
	}
	write(t, dir, "a.yaml", broken("a"))
	r = load(t, l, nil)
	if got := byName(r)["a.yaml"].Since; !got.Equal(first) {
		t.Errorf("stale file: Since %v, want the good version's %v", got, first)
	}
	write(t, dir, "a.yaml", pol("a", "/b"))
	r = load(t, l, nil)
	if got := byName(r)["a.yaml"].Since; !got.After(first) {
		t.Errorf("new version: Since %v, not after %v", got, first)
	}
}

func TestIsPolicyFile(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"a.yaml", true},
		{"a.yml", true},
		{"10-base.yaml", true},
		{"a.b.yaml", true},
		{"~a.yaml", true},
		{".a.yaml", false},
		{".yaml", false},
		{"a.yaml~", false},
		{"a.yaml.swp", false},
		{".a.yaml.swp", false},
		{".a.yaml.swx", false},
		{"a.yaml.tmp", false},
		{"a.tmp", false},
		{".#a.yaml", false},
		{"#a.yaml#", false},
		{"README.md", false},
		{"README", false},
		{"a.yaml.dpkg-new", false},
		{"a.yaml.dpkg-old", false},
		{"a.yaml.dpkg-dist", false},
		{"a.yaml.ucf-dist", false},
		{"a.yaml.rpmnew", false},
		{"a.yaml.bak", false},
		{"a.yaml.orig", false},
		{"a.json", false},
		{"a.YAML", false},
		{"yaml", false},
		{"4913", false}, // vim's write test
	}
	for _, tt := range tests {
		if got := IsPolicyFile(tt.name); got != tt.want {
			t.Errorf("IsPolicyFile(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestLoadIgnoresOtherFiles: files that are not policy files are not read,
// so a broken one cannot even be reported.
func TestLoadIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{".a.yaml", "a.yaml~", ".a.yaml.swp", "a.yaml.tmp", "README.md", "a.yaml.dpkg-new", "#a.yaml#", "notes.txt"} {
		write(t, dir, name, broken("x"))
	}
	write(t, dir, "a.yaml", pol("a", "/a"))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "sub"), "b.yaml", pol("b", "/b")) // no recursion
	r := load(t, newLoader(dir), nil)
	checkResult(t, r, map[string]State{"a.yaml": Active}, nil, []string{"/a"})
}

func TestLoadModes(t *testing.T) {
	tests := []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o644, true},
		{0o600, true},
		{0o640, true},
		{0o444, true},
		{0o400, true},
		{0o755, true},
		{0o664, false},
		{0o666, false},
		{0o646, false},
		{0o620, false},
		{0o602, false},
		{0o777, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%04o", tt.mode), func(t *testing.T) {
			dir := t.TempDir()
			path := write(t, dir, "a.yaml", pol("a", "/a"))
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			r := load(t, newLoader(dir), nil)
			if tt.ok {
				checkResult(t, r, map[string]State{"a.yaml": Active}, nil, []string{"/a"})
				return
			}
			want := fmt.Sprintf("%s: refused: mode %04o lets group or others write it; run chmod go-w", path, tt.mode)
			checkResult(t, r, map[string]State{"a.yaml": Rejected}, map[string]string{"a.yaml": want}, nil)
			var pe *policy.Error
			if !errors.As(byName(r)["a.yaml"].Err, &pe) || pe.File != path {
				t.Errorf("error %v is not a *policy.Error for %s", byName(r)["a.yaml"].Err, path)
			}
		})
	}

	// A good file made group-writable keeps its last good version in force.
	dir := t.TempDir()
	l := newLoader(dir)
	path := write(t, dir, "a.yaml", pol("a", "/a"))
	load(t, l, nil).Commit()
	if err := os.Chmod(path, 0o664); err != nil {
		t.Fatal(err)
	}
	r := load(t, l, nil)
	checkResult(t, r, map[string]State{"a.yaml": Stale},
		map[string]string{"a.yaml": path + ": refused: mode 0664 lets group or others write it; run chmod go-w"}, []string{"/a"})
}

func TestLoadOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root (CAP_CHOWN); running as uid", os.Geteuid())
	}
	tests := []struct {
		uid  int
		want string // error, "" for accepted
	}{
		{0, ""},
		{12345, "%s: refused: owned by uid 12345; policy files and their directory must be owned by root"},
		{65534, "%s: refused: owned by uid 65534; policy files and their directory must be owned by root"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.uid), func(t *testing.T) {
			dir := t.TempDir()
			path := write(t, dir, "a.yaml", pol("a", "/a"))
			if err := os.Chown(path, tt.uid, 0); err != nil {
				t.Fatal(err)
			}
			r := load(t, newLoader(dir), nil)
			if tt.want == "" {
				checkResult(t, r, map[string]State{"a.yaml": Active}, nil, []string{"/a"})
			} else {
				checkResult(t, r, map[string]State{"a.yaml": Rejected}, map[string]string{"a.yaml": fmt.Sprintf(tt.want, path)}, nil)
			}
		})
	}
}

// TestLoadOwnerIsEUID: without root, files owned by the daemon's own user
// are accepted (every other test relies on it too).
func TestLoadOwnerIsEUID(t *testing.T) {
	l := newLoader(t.TempDir())
	want := []uint32{0}
	if uid := uint32(os.Geteuid()); uid != 0 {
		want = append(want, uid)
	}
	if !slices.Equal(l.owners, want) {
		t.Errorf("owners %v, want %v", l.owners, want)
	}
}

// TestLoadSymlinks: the loader follows symlinks and checks the mode and
// owner of the target (the link's own 0777 does not matter); a link that
// leads nowhere, or to a directory, is rejected.
func TestLoadSymlinks(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir()
	target := write(t, other, "target.yaml", pol("target", "/t"))
	writable := write(t, other, "writable.yaml", pol("writable", "/w"))
	if err := os.Chmod(writable, 0o666); err != nil {
		t.Fatal(err)
	}
	link := func(name, to string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := link("good.yaml", target)
	dangling := link("dangling.yaml", filepath.Join(other, "nonexistent.yaml"))
	todir := link("todir.yaml", other)
	loop := link("loop.yaml", filepath.Join(dir, "loop.yaml"))
	ww := link("writable.yaml", writable)
	link(".hidden.yaml", target)
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}

	r := load(t, newLoader(dir), nil)
	checkResult(t, r,
		map[string]State{"good.yaml": Active, "dangling.yaml": Rejected, "todir.yaml": Rejected, "loop.yaml": Rejected,
			"writable.yaml": Rejected, "sub.yaml": Rejected},
		map[string]string{
			"dangling.yaml": "open " + dangling + ": no such file or directory",
			"todir.yaml":    todir + ": not a regular file (d---------)",
			"loop.yaml":     "open " + loop + ": too many levels of symbolic links",
			"writable.yaml": ww + ": refused: mode 0666 lets group or others write it; run chmod go-w",
			"sub.yaml":      filepath.Join(dir, "sub.yaml") + ": not a regular file (d---------)",
		},
		[]string{"/t"})
	// Rules name the link, the path the administrator sees in the directory.
	if rule, ok := r.Set.Rule(1); !ok || rule.Origin.File != good {
		t.Errorf("rule origin %v, want file %s", rule.Origin, good)
	}
	if !errors.Is(byName(r)["dangling.yaml"].Err, os.ErrNotExist) {
		t.Errorf("dangling link error %v is not ErrNotExist", byName(r)["dangling.yaml"].Err)
	}
}

// TestLoadFIFO: a FIFO named like a policy file must be rejected, not make
// Load block forever in open(2) waiting for a writer.
func TestLoadFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	t.Cleanup(func() {
		// Unblock a Load stuck opening the FIFO for reading.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	write(t, dir, "a.yaml", pol("a", "/a"))
	r := load(t, newLoader(dir), nil)
	checkResult(t, r, map[string]State{"a.yaml": Active, "fifo.yaml": Rejected},
		map[string]string{"fifo.yaml": fifo + ": not a regular file (p---------)"}, []string{"/a"})
}

func TestLoadMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policies.d")
	l := newLoader(dir)
	r := load(t, l, nil)
	checkResult(t, r, map[string]State{}, nil, nil)
	if got, want := r.Summary(), "0 rules from 0 active files (0 stale, 0 rejected)"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	r.Commit()

	// The directory appears later.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "a.yaml", pol("a", "/a"))
	r = load(t, l, nil)
	checkResult(t, r, map[string]State{"a.yaml": Active}, nil, []string{"/a"})
	if !r.Changed {
		t.Error("Changed false after the directory appeared")
	}

	// A file where the directory should be is an error for the whole load.
	notDir := write(t, t.TempDir(), "file", "x")
	_, err := newLoader(notDir).Load(nil)
	if err == nil || !strings.HasPrefix(err.Error(), "read policy directory: ") || !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Load on a file: %v, want a wrapped ENOTDIR", err)
	}
}

func TestLoadSizeLimit(t *testing.T) {
	dir := t.TempDir()
	content := pol("a", "/a")
	content += "#" + strings.Repeat("x", policy.MaxFileSize-len(content)-1) + "\n" // one byte too many
	path := write(t, dir, "a.yaml", content)
	r := load(t, newLoader(dir), nil)
	checkResult(t, r, map[string]State{"a.yaml": Rejected},
		map[string]string{"a.yaml": path + ": file is larger than 4194304 bytes"}, nil)
}

func TestLoadDuplicateNames(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a.yaml", pol("dup", "/a"))
	b := write(t, dir, "b.yaml", pol("dup", "/b"))
	write(t, dir, "c.yaml", pol("c", "/c"))
	r := load(t, newLoader(dir), nil)
	checkResult(t, r, map[string]State{"a.yaml": Active, "b.yaml": Rejected, "c.yaml": Active},
		map[string]string{"b.yaml": fmt.Sprintf(`%s:1: metadata.name: policy "dup" is already defined at %s:1`, b, a)},
		[]string{"/a", "/c"})

	// Within one file: the file is rejected as a whole.
	dir = t.TempDir()
	d := write(t, dir, "d.yaml", pol("x", "/1")+"---\n"+pol("y", "/2")+"---\n"+pol("x", "/3"))
	r = load(t, newLoader(dir), nil)
	checkResult(t, r, map[string]State{"d.yaml": Rejected},
		map[string]string{"d.yaml": fmt.Sprintf(`%s:19: metadata.name: policy "x" is already defined at %s:1`, d, d)}, nil)

	// A policy for another host does not take part.
	dir = t.TempDir()
	write(t, dir, "a.yaml", forHost("dup", "otherhost", "/a"))
	write(t, dir, "b.yaml", pol("dup", "/b"))
	r = load(t, newLoader(dir), nil)
	checkResult(t, r, map[string]State{"a.yaml": Active, "b.yaml": Active}, nil, []string{"/b"})
}

// TestLoadDuplicateNameDoesNotEvictCommittedFile: a new file that reuses the
// name of a policy already in force is the bad change; the policy in force
// must stay ("a bad file never weakens enforcement"), whatever the order of
// the file names.
func TestLoadDuplicateNameDoesNotEvictCommittedFile(t *testing.T) {
	dir := t.TempDir()
	l := newLoader(dir)
	b := write(t, dir, "b.yaml", pol("dup", "/b"))
	load(t, l, nil).Commit()

	a := write(t, dir, "a.yaml", pol("dup", "/a")) // sorts before b.yaml
	r := load(t, l, nil)
	checkResult(t, r, map[string]State{"a.yaml": Rejected, "b.yaml": Active},
		map[string]string{"a.yaml": fmt.Sprintf(`%s:1: metadata.name: policy "dup" is already defined at %s:1`, a, b)},
		[]string{"/b"})
}

// blameBad is a validator that refuses every rule on /bad, naming the rule's
// origin as an enforcer would.
func blameBad(s *policy.Set) error {
	var list policy.ErrorList
	for r := range s.Rules() {
		if strings.HasPrefix(r.Path, "/bad") {
			list = append(list, &policy.Error{File: r.Origin.File, Line: r.Origin.Line, Field: r.Origin.Field, Msg: "cannot compile " + r.Path})
		}
	}
	if list == nil {
		return nil
	}
	return list
}

func TestLoadValidator(t *testing.T) {
	tests := []struct {
		name string
		wrap func(error) error
	}{
		{"ErrorList", func(err error) error { return err }},
		{"wrapped", func(err error) error {
			if err == nil {
				return nil
			}
			return fmt.Errorf("compile: %w", err)
		}},
		{"joined single errors", func(err error) error {
			if err == nil {
				return nil
			}
			var errs []error
			for _, e := range err.(policy.ErrorList) {
				errs = append(errs, e)
			}
			return errors.Join(errs...)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := newLoader(dir)
			validate := counting(func(s *policy.Set) error { return tt.wrap(blameBad(s)) })
			a := filepath.Join(dir, "a.yaml")
			b := filepath.Join(dir, "b.yaml")

			write(t, dir, "a.yaml", pol("a", "/a1"))
			load(t, l, validate).Commit()

			// a: a good version in force, the new one refused: falls back.
			// b: never good: rejected. c: unaffected.
			write(t, dir, "a.yaml", pol("a", "/a2", "/bad-a"))
			write(t, dir, "b.yaml", pol("b", "/bad-b1", "/b", "/bad-b2"))
			write(t, dir, "c.yaml", pol("c", "/c"))
			r := load(t, l, validate)
			checkResult(t, r,
				map[string]State{"a.yaml": Stale, "b.yaml": Rejected, "c.yaml": Active},
				map[string]string{
					"a.yaml": a + ":9: spec.file.matchPaths[1]: cannot compile /bad-a",
					"b.yaml": b + ":8: spec.file.matchPaths[0]: cannot compile /bad-b1\n" +
						b + ":10: spec.file.matchPaths[2]: cannot compile /bad-b2",
				},
				[]string{"/a1", "/c"})
			if !r.Changed {
				t.Error("c.yaml was added: Changed false")
			}
			if f := byName(r)["a.yaml"]; len(f.Policies) != 1 || f.Rules != 1 {
				t.Errorf("stale a.yaml reports %d policies, %d rules of its good version, want 1, 1", len(f.Policies), f.Rules)
			}
			r.Commit()

			// The validator now refuses a file's committed version too: it
			// has nothing to fall back to and leaves the set.
			write(t, dir, "a.yaml", pol("a", "/bad-again"))
			r = load(t, l, validate)
			checkResult(t, r, map[string]State{"a.yaml": Stale, "b.yaml": Rejected, "c.yaml": Active},
				map[string]string{
					"a.yaml": a + ":8: spec.file.matchPaths[0]: cannot compile /bad-again",
					"b.yaml": b + ":8: spec.file.matchPaths[0]: cannot compile /bad-b1\n" +
						b + ":10: spec.file.matchPaths[2]: cannot compile /bad-b2",
				},
				[]string{"/a1", "/c"})
		})
	}
}

// TestLoadValidatorUnlocated: a validator error that names no file (say the
// enforcer is unavailable) must end the Load, with an error or with a set;
// it must not loop. counting turns a loop into a failure.
func TestLoadValidatorUnlocated(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"empty directory", nil},
		{"one good file", map[string]string{"a.yaml": pol("a", "/a")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				write(t, dir, name, content)
			}
			l := newLoader(dir)
			validate := counting(func(*policy.Set) error { return errors.New("enforcer unavailable") })
			done := make(chan any, 1)
			go func() {
				defer func() { done <- recover() }()
				l.Load(validate)
			}()
			select {
			case p := <-done:
				if p != nil {
					t.Fatalf("Load: %v", p)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Load did not return within 5s")
			}
		})
	}
}

// TestLoadValidatorBlamesUnknownFile: a validator naming a file that is not
// in the directory must not crash the daemon.
func TestLoadValidatorBlamesUnknownFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", pol("a", "/a"))
	validate := counting(func(*policy.Set) error {
		return policy.ErrorList{{File: "/elsewhere/x.yaml", Line: 1, Msg: "nope"}}
	})
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		newLoader(dir).Load(validate)
	}()
	select {
	case p := <-done:
		if p != nil {
			t.Fatalf("Load panicked: %v", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load did not return within 5s")
	}
}

func TestLoadNodeSelector(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml",
		forHost("elsewhere", "otherhost", "/other")+ // lines 1-11
			"---\n"+ // 12
			forHost("here", hostname, "/here")+ // 13-23
			"---\n"+ // 24
			strings.Replace(pol("reg", "/reg"), "spec:\n", "spec:\n  nodeSelector:\n    matchLabels:\n      kubearmor.io/hostnamereg: ^test\n", 1)+ // 25-35
			"---\n"+ // 36
			pol("any", "/any")) // 37-
	write(t, dir, "b.yaml", forHost("b", "web1, db2", "/b1", "/b2"))
	r := load(t, newLoader(dir), nil)
	checkResult(t, r, map[string]State{"a.yaml": Active, "b.yaml": Active}, nil, []string{"/here", "/reg", "/any"})

	files := byName(r)
	wantA := []PolicyStatus{
		{Name: "elsewhere", Line: 1, Applied: false, Reason: `nodeSelector kubearmor.io/hostname=otherhost does not name this host "testhost"`},
		{Name: "here", Line: 13, Applied: true},
		{Name: "reg", Line: 25, Applied: true},
		{Name: "any", Line: 37, Applied: true},
	}
	if got := files["a.yaml"].Policies; !slices.Equal(got, wantA) {
		t.Errorf("a.yaml policies:\n%+v\nwant\n%+v", got, wantA)
	}
	if files["a.yaml"].Rules != 3 {
		t.Errorf("a.yaml: %d rules, want 3", files["a.yaml"].Rules)
	}
	wantB := []PolicyStatus{{Name: "b", Line: 1, Applied: false, Reason: `nodeSelector kubearmor.io/hostname=web1, db2 does not name this host "testhost"`}}
	if got := files["b.yaml"].Policies; !slices.Equal(got, wantB) || files["b.yaml"].Rules != 0 {
		t.Errorf("b.yaml policies %+v rules %d, want %+v and 0", got, files["b.yaml"].Rules, wantB)
	}
	var names []string
	for _, p := range r.Set.Policies() {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"here", "reg", "any"}) {
		t.Errorf("set policies %v", names)
	}
	if got, want := r.Summary(), "3 rules from 2 active files (0 stale, 0 rejected)"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}

// TestLoadNodeLabels: labels other than the hostname ones are matched
// against the host's configured labels.
func TestLoadNodeLabels(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", strings.Replace(pol("a", "/a"), "spec:\n", "spec:\n  nodeSelector:\n    matchLabels:\n      env: prod\n", 1))
	tests := []struct {
		labels  map[string]string
		applied bool
		reason  string
	}{
		{map[string]string{"env": "prod"}, true, ""},
		{map[string]string{"env": "dev"}, false, "nodeSelector env=prod does not match this host's env=dev"},
		{nil, false, "nodeSelector label env is not set on this host (see the nodeLabels setting)"},
	}
	for _, tt := range tests {
		l := New(dir, policy.Host{Name: hostname, Labels: tt.labels}, postures)
		r := load(t, l, nil)
		want := []PolicyStatus{{Name: "a", Line: 1, Applied: tt.applied, Reason: tt.reason}}
		if got := byName(r)["a.yaml"].Policies; !slices.Equal(got, want) || (r.Set.Len() == 1) != tt.applied {
			t.Errorf("labels %v: policies %+v, %d rules; want %+v", tt.labels, got, r.Set.Len(), want)
		}
	}
}

func TestLoadRuleOrder(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"b.yaml", "a.yaml", "10-z.yaml", "2-y.yml", "A.yaml"} {
		base := strings.TrimSuffix(strings.TrimSuffix(name, ".yaml"), ".yml")
		n := strings.ToLower(base)
		if name == "A.yaml" {
			n = "upper-a"
		}
		write(t, dir, name, pol(n, "/"+base+"/1", "/"+base+"/2"))
	}
	r := load(t, newLoader(dir), nil)
	// Byte order of the names: digits, then upper case, then lower case.
	want := []string{"/10-z/1", "/10-z/2", "/2-y/1", "/2-y/2", "/A/1", "/A/2", "/a/1", "/a/2", "/b/1", "/b/2"}
	checkResult(t, r, map[string]State{"b.yaml": Active, "a.yaml": Active, "10-z.yaml": Active, "2-y.yml": Active, "A.yaml": Active}, nil, want)
	var files []string
	for _, f := range r.Files {
		files = append(files, filepath.Base(f.Path))
	}
	if want := []string{"10-z.yaml", "2-y.yml", "A.yaml", "a.yaml", "b.yaml"}; !slices.Equal(files, want) {
		t.Errorf("files in order %v, want %v", files, want)
	}
	for i, p := range r.Set.Policies() {
		if p.FirstRule != uint32(2*i+1) || p.NumRules != 2 {
			t.Errorf("policy %s: first rule %d, %d rules", p.Name, p.FirstRule, p.NumRules)
		}
	}

	// Removing the first file renumbers the rest.
	remove(t, dir, "10-z.yaml")
	r = load(t, newLoader(dir), nil)
	if rule, _ := r.Set.Rule(1); rule.Path != "/2-y/1" {
		t.Errorf("rule 1 is %s after removing 10-z.yaml", rule.Path)
	}
}

func TestLoadSummary(t *testing.T) {
	dir := t.TempDir()
	l := newLoader(dir)
	write(t, dir, "a.yaml", pol("a", "/a1", "/a2"))
	write(t, dir, "b.yaml", pol("b", "/b"))
	load(t, l, nil).Commit()
	write(t, dir, "b.yaml", broken("b"))
	write(t, dir, "c.yaml", broken("c"))
	r := load(t, l, nil)
	if got, want := r.Summary(), "3 rules from 1 active files (1 stale, 1 rejected)"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}
