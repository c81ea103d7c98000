// Package loader turns the policy directory into a policy.Set, one file at a
// time, without ever weakening what is in force.
//
// Each file is checked (owner and mode, like sshd's StrictModes), parsed and
// validated on its own. A file that fails keeps its last good version in
// force until a good one replaces it; only deleting a file withdraws its
// policies. The result is two-phase: the caller applies the new Set to the
// kernel and only then calls Commit, so a set the kernel refused never
// becomes the "last good" one.
package loader

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kubearmor/kubearmor-host/policy"
)

// State is where a file stands after a load.
type State string

// File states.
const (
	Active   State = "active"   // this version is in force
	Stale    State = "stale"    // this version was rejected; the last good one stays in force
	Rejected State = "rejected" // rejected, and no earlier version was ever good
)

// PolicyStatus says whether one policy of a file applies to this host.
type PolicyStatus struct {
	Name    string
	Line    int
	Applied bool
	Reason  string // why not, when a nodeSelector names other hosts
}

// FileStatus is the outcome for one file.
type FileStatus struct {
	Path     string
	State    State
	Err      error          // why this version was refused (Stale, Rejected)
	Policies []PolicyStatus // of the version in force
	Rules    int            // rules of the version in force that apply here
	Since    time.Time      // when the version in force was first loaded
}

// Result is one load of the directory.
type Result struct {
	Set     *policy.Set
	Files   []FileStatus
	Changed bool // the set differs from the last committed one

	versions map[string]*version
	loader   *Loader
}

// Commit records the versions in r.Set as the last good ones. Call it once
// the set is in force.
func (r *Result) Commit() {
	r.loader.good = r.versions
	r.loader.committed = r.Set
}

// version is one parsed version of a file.
type version struct {
	sum  [sha256.Size]byte
	docs []*policy.Document
	at   time.Time
}

// Validator checks a candidate set beyond parsing, for example that an
// enforcer can compile every rule. It returns *policy.Error values (possibly
// inside a policy.ErrorList or joined) that name the file to blame.
type Validator func(*policy.Set) error

// Loader loads one policy directory. It is not safe for concurrent use: the
// daemon's reconcile loop owns it.
type Loader struct {
	dir      string
	host     policy.Host
	postures policy.Postures
	owners   []uint32 // uids allowed to own policy files

	version   uint64
	good      map[string]*version
	committed *policy.Set
	now       func() time.Time
}

// New returns a loader for dir. Policy files must be owned by root or by the
// daemon's own user, and must not be writable by group or others.
func New(dir string, host policy.Host, postures policy.Postures) *Loader {
	owners := []uint32{0}
	if uid := uint32(os.Geteuid()); uid != 0 {
		owners = append(owners, uid)
	}
	return &Loader{dir: dir, host: host, postures: postures, owners: owners, good: map[string]*version{}, now: time.Now}
}

// IsPolicyFile reports whether a directory entry name is a policy file:
// *.yaml or *.yml, not hidden and not an editor's or package manager's
// leftover.
func IsPolicyFile(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") {
		return false
	}
	ext := filepath.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

// Load reads the directory and builds a candidate set. The error is for the
// directory as a whole; problems with single files are in Result.Files.
func (l *Loader) Load(validate Validator) (*Result, error) {
	names, err := l.list()
	if err != nil {
		return nil, err
	}
	cur := make(map[string]*version)
	var statuses []FileStatus
	for _, path := range names {
		st := FileStatus{Path: path}
		v, err := l.read(path)
		switch {
		case err == nil:
			cur[path] = v
			st.State = Active
		case l.good[path] != nil:
			cur[path] = l.good[path]
			st.State, st.Err = Stale, err
		default:
			st.State, st.Err = Rejected, err
		}
		statuses = append(statuses, st)
	}

	// Build; a file blamed for an error falls back to its last good version,
	// or out of the set. Each round takes at least one version out, so this
	// ends; an error that names no file in the directory fails the load.
	for {
		set, blame, err := l.build(names, cur, validate)
		if set != nil {
			return l.result(set, cur, statuses), nil
		}
		progress := false
		for path, perr := range blame {
			i := slices.IndexFunc(statuses, func(s FileStatus) bool { return s.Path == path })
			if i < 0 || cur[path] == nil {
				continue
			}
			progress = true
			if g := l.good[path]; g != nil && g != cur[path] {
				cur[path] = g
				statuses[i].State, statuses[i].Err = Stale, perr
			} else {
				delete(cur, path)
				statuses[i].State, statuses[i].Err = Rejected, perr
			}
		}
		if !progress {
			return nil, fmt.Errorf("check policy set: %w", err)
		}
	}
}

func (l *Loader) list() ([]string, error) {
	fi, err := os.Stat(l.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no directory: no policies, the watcher waits for it
	}
	if err != nil {
		return nil, fmt.Errorf("read policy directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("read policy directory: %s: %w", l.dir, syscall.ENOTDIR)
	}
	// Whoever can write the directory can remove or replace policies.
	if err := l.checkOwner(fi); err != nil {
		return nil, fmt.Errorf("read policy directory: %s: %w", l.dir, err)
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("read policy directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		if IsPolicyFile(e.Name()) {
			names = append(names, filepath.Join(l.dir, e.Name()))
		}
	}
	return names, nil // ReadDir sorts by name: rule IDs follow file order
}

// read checks and parses one file, reusing the last good parse when the
// content has not changed.
func (l *Loader) read(path string) (*version, error) {
	// O_NONBLOCK: a FIFO named *.yaml must not hang the reload; it is then
	// refused as not a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := l.checkMode(fi); err != nil {
		return nil, &policy.Error{File: path, Msg: err.Error()}
	}
	data, err := io.ReadAll(io.LimitReader(f, policy.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > policy.MaxFileSize {
		return nil, &policy.Error{File: path, Msg: fmt.Sprintf("file is larger than %d bytes", policy.MaxFileSize)}
	}
	sum := sha256.Sum256(data)
	if g := l.good[path]; g != nil && g.sum == sum {
		return g, nil
	}
	docs, err := policy.Parse(path, data)
	if err != nil {
		return nil, err
	}
	return &version{sum: sum, docs: docs, at: l.now()}, nil
}

// checkMode refuses files that someone other than root (or the daemon's
// user) could have written: whoever can write a policy file can switch
// enforcement off.
func (l *Loader) checkMode(fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	return l.checkOwner(fi)
}

func (l *Loader) checkOwner(fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("refused: mode %04o lets group or others write it; run chmod go-w", fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && !slices.Contains(l.owners, st.Uid) {
		return fmt.Errorf("refused: owned by uid %d; policy files and their directory must be owned by root", st.Uid)
	}
	return nil
}

// build selects the documents for this host and freezes them into a set.
// On failure it returns which files to blame, and the error.
func (l *Loader) build(names []string, cur map[string]*version, validate Validator) (*policy.Set, map[string]error, error) {
	var docs []*policy.Document
	defined := map[string]*policy.Document{} // by policy name
	blame := map[string]error{}
	for _, path := range names {
		v := cur[path]
		if v == nil {
			continue
		}
		for _, d := range v.docs {
			if ok, _ := d.Selector.Selects(l.host); !ok {
				continue
			}
			if prev, dup := defined[d.Name]; dup {
				// Blame the file that changed, so a new file cannot knock
				// a policy in force out of the set.
				blamed, other := d, prev
				if l.good[path] == v && l.good[prev.File] != cur[prev.File] {
					blamed, other = prev, d
				}
				blame[blamed.File] = &policy.Error{File: blamed.File, Line: blamed.Line, Field: "metadata.name",
					Msg: fmt.Sprintf("policy %q is already defined at %s:%d", d.Name, other.File, other.Line)}
				continue
			}
			defined[d.Name] = d
			docs = append(docs, d)
		}
	}
	if len(blame) > 0 {
		return nil, blame, errors.New("duplicate policy names")
	}
	set, err := policy.NewSet(l.version+1, l.postures, docs)
	if err == nil && validate != nil {
		if err = validate(set); err != nil {
			set = nil
		}
	}
	if err == nil {
		return set, nil, nil
	}
	return nil, blameFiles(err), err
}

// blameFiles groups located errors by file.
func blameFiles(err error) map[string]error {
	out := make(map[string]error)
	var list []*policy.Error
	var walk func(error)
	walk = func(e error) {
		var pe *policy.Error
		if errors.As(e, &pe) && pe == e {
			list = append(list, pe)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	byFile := make(map[string]policy.ErrorList)
	for _, e := range list {
		byFile[e.File] = append(byFile[e.File], e)
	}
	for f, l := range byFile {
		out[f] = l
	}
	return out
}

func (l *Loader) result(set *policy.Set, cur map[string]*version, statuses []FileStatus) *Result {
	l.version = set.Version()
	r := &Result{Set: set, versions: cur, loader: l}
	for _, st := range statuses {
		if v := cur[st.Path]; v != nil {
			st.Since = v.at
			for _, d := range v.docs {
				ok, why := d.Selector.Selects(l.host)
				st.Policies = append(st.Policies, PolicyStatus{Name: d.Name, Line: d.Line, Applied: ok, Reason: why})
				if ok {
					st.Rules += len(d.Rules)
				}
			}
		}
		r.Files = append(r.Files, st)
	}
	r.Changed = !sameRules(l.committed, set)
	return r
}

// sameRules reports whether two sets hold the same rules, so an unchanged
// directory does not cause a kernel update.
func sameRules(a, b *policy.Set) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Len() != b.Len() {
		return false
	}
	for id := uint32(1); id <= uint32(a.Len()); id++ {
		ra, _ := a.Rule(id)
		rb, _ := b.Rule(id)
		if ra.Origin != rb.Origin || ra.Policy != rb.Policy || !sameRule(ra, rb) {
			return false
		}
	}
	return true
}

func sameRule(a, b *policy.Rule) bool {
	return a.Kind == b.Kind && a.Action == b.Action && a.Severity == b.Severity && a.Message == b.Message &&
		slices.Equal(a.Tags, b.Tags) && a.Match == b.Match && a.Path == b.Path && a.Recursive == b.Recursive &&
		a.Pattern.String() == b.Pattern.String() && a.Protocol == b.Protocol && a.Capability == b.Capability &&
		slices.Equal(a.Syscalls, b.Syscalls) && a.ReadOnly == b.ReadOnly && a.OwnerOnly == b.OwnerOnly &&
		slices.Equal(a.Sources, b.Sources)
}

// Summary counts files by state, for log lines.
func (r *Result) Summary() string {
	counts := map[State]int{}
	for _, f := range r.Files {
		counts[f.State]++
	}
	return fmt.Sprintf("%d rules from %d active files (%d stale, %d rejected)",
		r.Set.Len(), counts[Active], counts[Stale], counts[Rejected])
}
