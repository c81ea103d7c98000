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
};

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
	KA_CNT_MAX = 8,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KA_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		*c += 1;
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

/* A resolved path. The string is built right to left so it ends at
 * buf[KA_PATH_MAX - 1] (a NUL) and starts at buf[start]; off/len list its
 * components leaf first (index 0 is the last component). The buffer is twice
 * PATH_MAX so that the verifier can bound every masked write. */
struct path_buf {
	__u8 buf[2 * KA_PATH_MAX];
	__u16 off[KA_MAX_DEPTH];
	__u8 len[KA_MAX_DEPTH];
	__u32 n;     /* number of components */
	__u32 start; /* index of the leading '/' */
	__u32 flags; /* KA_EV_PATH_TRUNCATED when the path did not fit */
};

static __always_inline __u32 path_len(const struct path_buf *pb)
{
	return (KA_PATH_MAX - 1) - pb->start;
}

#endif /* KA_COMMON_H */
