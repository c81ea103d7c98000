//go:build linux

package testutils

import (
	"os"
	"testing"
)

func TestLeakedFDs(t *testing.T) {
	tests := []struct {
		name   string
		before map[int]string
		after  map[int]string
		want   []int
	}{
		{
			name:   "nothing new",
			before: map[int]string{0: "/dev/null", 1: "pipe:[1]"},
			after:  map[int]string{0: "/dev/null", 1: "pipe:[1]"},
		},
		{
			name:   "closed is fine",
			before: map[int]string{0: "/dev/null", 3: "/tmp/x"},
			after:  map[int]string{0: "/dev/null"},
		},
		{
			name:   "new file and bpf program",
			before: map[int]string{0: "/dev/null"},
			after:  map[int]string{0: "/dev/null", 5: "/tmp/x", 7: "anon_inode:bpf-prog"},
			want:   []int{5, 7},
		},
		{
			name:   "same number reused for something else",
			before: map[int]string{3: "/tmp/a"},
			after:  map[int]string{3: "/tmp/b"},
			want:   []int{3},
		},
		{
			name:   "runtime netpoller ignored",
			before: map[int]string{},
			after:  map[int]string{4: "anon_inode:[eventpoll]", 5: "anon_inode:[eventfd]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := leakedFDs(tt.before, tt.after)
			if len(got) != len(tt.want) {
				t.Fatalf("leakedFDs = %v, want fds %v", got, tt.want)
			}
			for i, l := range got {
				if l.fd != tt.want[i] {
					t.Errorf("leakedFDs[%d] = fd %d, want %d", i, l.fd, tt.want[i])
				}
			}
		})
	}
}

func TestOpenFDsSeesNewFile(t *testing.T) {
	before, err := openFDs()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	after, err := openFDs()
	if err != nil {
		t.Fatal(err)
	}
	leaked := leakedFDs(before, after)
	if len(leaked) != 1 || leaked[0].fd != fd {
		t.Fatalf("leakedFDs after opening %s as fd %d = %v, want exactly that fd", os.Args[0], fd, leaked)
	}
}
