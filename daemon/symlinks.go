package daemon

import (
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/kubearmor/kubearmor-host/policy"
)

// warnSymlinks warns about rule paths that go through a symbolic link on
// this host. The kernel matches the path it resolves, so on a merged-/usr
// system a rule on /bin/sleep never matches: the program is /usr/bin/sleep.
// The rule stays as written (the link may change); the warning says what to
// write instead.
func warnSymlinks(log *slog.Logger, set *policy.Set) {
	seen := map[string]bool{}
	check := func(r *policy.Rule, p string) {
		if p == "" || seen[p] {
			return
		}
		seen[p] = true
		dir := strings.HasSuffix(p, "/")
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return // a path that does not exist (yet) resolves to itself
		}
		if dir && real != "/" {
			real += "/"
		}
		if real != p {
			log.Warn("rule path goes through a symbolic link; the kernel matches the resolved path",
				"policy", r.Policy, "file", r.Origin.File, "line", r.Origin.Line, "path", p, "resolved", real)
		}
	}
	for r := range set.Rules() {
		switch r.Match {
		case policy.MatchPath, policy.MatchDir:
			check(r, r.Path)
		}
		for _, s := range r.Sources {
			check(r, s.Path+s.Dir)
		}
	}
}
