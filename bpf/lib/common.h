/* SPDX-License-Identifier: GPL-2.0-only */
/* Constants and scratch space shared by the BPF programs. Numbers that user
 * space also uses are enums, so bpf2go emits them as Go constants. */
#ifndef KA_COMMON_H
#define KA_COMMON_H

#include "kernel.h"
#include "bpf/bpf_helpers.h"
#include "bpf/bpf_core_read.h"
#include "bpf/bpf_tracing.h"

#define KA_PATH_MAX 4096 /* PATH_MAX: the longest path, with its NUL */
#define KA_NAME_LEN 256  /* NAME_MAX + 1: one component, zero padded */
#define KA_MAX_DEPTH 1024 /* components per path */
#define KA_MAX_MOUNTS 64  /* mount crossings per path */

#define KA_EACCES 13
#define KA_PROT_WRITE 0x2 /* mmap and mprotect protections */
#define KA_PROT_EXEC 0x4

/* Verdicts, numbered as match.Verdict in Go. */
enum ka_verdict {
	KA_NOMATCH = 0,
	KA_ALLOW = 1,
	KA_AUDIT = 2,
	KA_BLOCK = 3,
	KA_POSTURE_AUDIT = 4,
	KA_POSTURE_BLOCK = 5,
};

/* Operations, numbered as match.Op in Go. */
enum ka_op {
	KA_OP_EXEC = 1,
	KA_OP_OPEN_READ = 2,
	KA_OP_OPEN_WRITE = 3,
	KA_OP_CREATE = 4,
	KA_OP_UNLINK = 5,
	KA_OP_RMDIR = 6,
	KA_OP_MKDIR = 7,
	KA_OP_RENAME = 8,
	KA_OP_LINK = 9,
	KA_OP_SYMLINK = 10,
	KA_OP_TRUNCATE = 11,
	KA_OP_CHMOD = 12,
	KA_OP_CHOWN = 13,
	KA_OP_SOCKET_CREATE = 14,
	KA_OP_CONNECT = 15,
	KA_OP_ACCEPT = 16,
	KA_OP_BIND = 17,
	KA_OP_CAPABLE = 18,
	KA_OP_SYSCALL = 19,
	KA_OP_EXEC_MAP = 20,  /* a file mapped executable */
	KA_OP_EXEC_ANON = 21, /* anonymous memory made executable */
	KA_OP_USERNS = 22,    /* an unprivileged process creates a user namespace */
};

/* Access classes: operations that every rule treats alike share rule map
 * entries. Only readOnly tells a read from the other file operations. */
enum ka_access {
	KA_ACC_EXEC = 1,
	KA_ACC_READ = 2,
	KA_ACC_WRITE = 3,
	KA_ACC_NET = 4,
	KA_ACC_CAP = 5,
	KA_ACC_SYSCALL = 6,
};

static __always_inline __u8 access_of(__u8 op)
{
	if (op == KA_OP_EXEC || op == KA_OP_EXEC_MAP || op == KA_OP_EXEC_ANON)
		return KA_ACC_EXEC;
	if (op == KA_OP_OPEN_READ)
		return KA_ACC_READ;
	if (op <= KA_OP_CHOWN)
		return KA_ACC_WRITE;
	if (op <= KA_OP_BIND)
		return KA_ACC_NET;
	if (op == KA_OP_CAPABLE)
		return KA_ACC_CAP;
	return KA_ACC_SYSCALL;
}

/* Rule kinds, numbered as policy.Kind in Go. */
enum ka_kind {
	KA_KIND_PROCESS = 1,
	KA_KIND_FILE = 2,
	KA_KIND_NETWORK = 3,
	KA_KIND_CAPABILITIES = 4,
	KA_KIND_SYSCALL = 5,
	KA_KIND_SLOTS = 8,
};

/* Event flags. */
enum ka_event_flag {
	KA_EV_PATH_TRUNCATED = 1, /* the object path did not fit: decided as unresolvable */
	KA_EV_EXE_TRUNCATED = 2,  /* the subject's executable path did not fit */
	KA_EV_SCRATCH_BUSY = 4,   /* scratch space was in use (preempted program): decided as unresolvable */
	KA_EV_DETACHED = 8,       /* the object is not reachable from a root (memfd, pseudo file): its name alone */
	KA_EV_TORN = 16,          /* the policy generation was replaced during the decision: decided as unresolvable */
	KA_EV_NO_HOST = 32,       /* no host mount shows the object: the path is its own namespace's */
	KA_EV_LOADED = 64,        /* an exec decided where a loader mapped the program */
};

/* Per-CPU counters; user space sums them. Every place that can lose or
 * degrade an event has one. */
enum ka_counter {
	KA_CNT_ALERT_LOST = 0,    /* bpf_ringbuf_output failed: ring buffer full */
	KA_CNT_PATH_TRUNCATED = 1,
	KA_CNT_SCRATCH_BUSY = 2,
	KA_CNT_DECISIONS = 3,     /* hook invocations that consulted a policy */
	KA_CNT_DENIED = 4,
	KA_CNT_AUDITED = 5,
	KA_CNT_EVENT_LOST = 6,    /* monitor: telemetry ring buffer full */
	KA_CNT_TORN = 7,          /* decisions that found their generation rewritten */
	KA_CNT_CACHED = 8,        /* path decisions made from the directory cache, after it */
	KA_CNT_FAST = 9,          /* ... and by it alone: no rule could match (one count, not two: the hot path) */
	KA_CNT_CANON_CUT = 10,    /* a super block had more mounts than the canonical mount search looks at */
	KA_CNT_MAX = 11,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KA_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* bump adds one to entry idx of a per-CPU array of counters. */
static __always_inline void bump(void *map, __u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(map, &idx);

	/* Atomic: a program preempted between load and store would lose the
	 * other's count on a preemptible kernel. */
	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline void count(__u32 idx)
{
	bump(&counters, idx);
}

/* A per-CPU claim on the scratch maps. Programs run with migration disabled
 * but may be preempted on a preemptible kernel; a second program on the same
 * CPU then finds the claim taken and does not clobber the first's buffers. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} busy SEC(".maps");

static __always_inline __u64 *claim_scratch(void)
{
	__u32 zero = 0;
	__u64 *b = bpf_map_lookup_elem(&busy, &zero);

	if (!b || __sync_lock_test_and_set(b, 1))
		return NULL;
	return b;
}

static __always_inline void release_scratch(__u64 *b)
{
	*b = 0;
}

/*
 * A path, as its components. A hook fills dent[] with the dentries from the
 * object up to the root, leaf first, and reads names from them only when the
 * trie walk needs them; the string is built (right to left, ending at
 * buf[KA_PATH_MAX - 1]) only when an alert or a pattern needs it. The test
 * program fills the string and off/len instead (mode KA_PB_STRING). buf is
 * twice PATH_MAX so that the verifier can bound every masked write.
 */
enum ka_pb_mode {
	KA_PB_DENTRY = 0,
	KA_PB_STRING = 1,
};

struct path_buf {
	__u64 dent[KA_MAX_DEPTH]; /* struct dentry *, leaf first */
	__u16 off[KA_MAX_DEPTH];  /* string mode: component offsets in buf, leaf first */
	__u8 len[KA_MAX_DEPTH];   /* string mode: component lengths */
	__u8 buf[2 * KA_PATH_MAX];
	__u32 n;      /* number of components */
	__u32 flags;  /* KA_EV_PATH_TRUNCATED when the path did not fit */
	__u32 mode;   /* enum ka_pb_mode */
	__u32 start;  /* the string starts at buf[start] ... */
	__u32 have_string; /* ... once built */
	__u32 pad;
};

static __always_inline __u32 path_len(const struct path_buf *pb)
{
	return (KA_PATH_MAX - 1) - (pb->start & (KA_PATH_MAX - 1));
}

#endif /* KA_COMMON_H */
