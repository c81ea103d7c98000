// Package usernames names user IDs from the local passwd file, for logs
// and alerts. Names are cached, and the file is read again when it
// changes, checked at most once a second: a busy host logs many events and
// adds users rarely. Only the file is consulted (as Go's os/user does
// without cgo); users that only a directory service knows stay unnamed.
package usernames

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// recheck is how often the file's modification time is looked at.
const recheck = time.Second

// Cache names uids. It is safe for concurrent use.
type Cache struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	names   map[uint32]string
	mtime   time.Time
	size    int64
	checked time.Time
}

// New returns a cache over the passwd file at path ("/etc/passwd").
func New(path string) *Cache {
	return &Cache{path: path, now: time.Now}
}

// Name returns the user name of uid, or "" if the file does not name it.
func (c *Cache) Name(uid uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.names == nil || now.Sub(c.checked) >= recheck {
		c.checked = now
		c.reload()
	}
	return c.names[uid]
}

// reload reads the file if it changed since it was last read.
func (c *Cache) reload() {
	fi, err := os.Stat(c.path)
	if err != nil {
		if c.names == nil {
			c.names = map[uint32]string{}
		}
		return
	}
	if c.names != nil && fi.ModTime().Equal(c.mtime) && fi.Size() == c.size {
		return
	}
	f, err := os.Open(c.path)
	if err != nil {
		return
	}
	defer f.Close()
	names := map[uint32]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name:password:uid:gid:gecos:home:shell
		fields := strings.SplitN(sc.Text(), ":", 4)
		if len(fields) < 4 || strings.HasPrefix(fields[0], "#") || fields[0] == "" {
			continue
		}
		uid, err := strconv.ParseUint(fields[2], 10, 32)
		if err != nil {
			continue
		}
		if _, dup := names[uint32(uid)]; !dup { // the first entry wins, as in getpwuid
			names[uint32(uid)] = fields[0]
		}
	}
	c.names, c.mtime, c.size = names, fi.ModTime(), fi.Size()
}
