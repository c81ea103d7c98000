package policy

import (
	"fmt"
	"testing"
)

const hdr = "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: a\n"

func TestScratch(t *testing.T) {
	ins := []string{
		hdr + "spec:\n  process:\n    matchPaths:\n    - path: /a\n---\n",
		"---\n" + hdr + "spec:\n  process:\n    matchPaths:\n    - path: /a\n---\n# trailing comment\n",
		hdr + "spec:\n  process:\n    matchPaths:\n    - path: &p /a\n    - path: *p\n",
		hdr + "spec:\n  process:\n    matchPaths:\n    - path: /a\n---\n" + hdr + "spec:\n  process:\n    matchPaths:\n    - path: b\n",
		hdr + "spec:\n  process:\n    matchPaths:\n    - path: /a\n      recursive: true\n",
		hdr + "spec:\n  syscalls:\n    action: Block\n    matchSyscalls:\n    - syscall: [open]\n",
		hdr + "spec:\n  process:\n    matchPaths:\n    - path: /a\n      fromSource:\n      - path: /b\n        dirr: /x/\n",
	}
	for _, in := range ins {
		d, err := Parse("f.yaml", []byte(in))
		fmt.Printf("=== %q\n%v\n%v\n", in, d, err)
	}
	for _, p := range []string{"/a[.-0]b", "/a[\\/]b", "/a[!x]b"} {
		g, err := CompileGlob(p)
		if err != nil { fmt.Println(p, err); continue }
		fmt.Println(p, g.re, g.Match("/a/b"))
	}
}
