//go:build ignore
/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Process monitor on tracepoints (tp_btf: no tracefs needed): exec with the
 * resolved path of the new program, fork of a new process, and exit of the
 * last thread of a process. It runs where BPF-LSM cannot, so the daemon can
 * at least observe and audit; it never decides anything itself.
 */
#include "lib/common.h"
#include "lib/path.h"

char LICENSE[] SEC("license") = "GPL";

enum ka_mon_type {
	KA_MON_EXEC = 1,
	KA_MON_FORK = 2,
	KA_MON_EXIT = 3,
};

/* A monitor record: this header, then for exec the path (no NUL). */
struct mon_event {
	__u64 ts; /* bpf_ktime_get_boot_ns */
	__u32 type; /* enum ka_mon_type */
	__u32 tgid;
	__u32 pid;
	__u32 ppid; /* exec, fork: the parent process */
	__u32 uid;
	__u32 fsuid;
	__u32 owner_uid; /* exec: owner of the program file */
	__u16 path_len;
	__u8 flags; /* enum ka_event_flag */
	__u8 pad;
	__u8 comm[16];
};

struct mon_buf {
	struct mon_event hdr;
	__u8 data[KA_PATH_MAX];
};

struct ka_mon_btf_types {
	enum ka_mon_type type;
	enum ka_counter counter;
	enum ka_event_flag flag;
	struct mon_event event;
};
const struct ka_mon_btf_types *ka_mon_unused __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mon_buf);
} monbuf SEC(".maps");

static __always_inline void fill(struct mon_event *e, __u32 type, struct task_struct *t)
{
	e->ts = bpf_ktime_get_boot_ns();
	e->type = type;
	e->tgid = BPF_CORE_READ(t, tgid);
	e->pid = BPF_CORE_READ(t, pid);
	e->ppid = BPF_CORE_READ(t, real_parent, tgid);
	e->uid = BPF_CORE_READ(t, cred, uid.val);
	e->fsuid = BPF_CORE_READ(t, cred, fsuid.val);
	e->owner_uid = 0;
	e->path_len = 0;
	e->flags = 0;
	BPF_CORE_READ_STR_INTO(&e->comm, t, comm);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ka_mon_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0, len;
	struct mon_buf *b;
	struct path_buf *pb;
	struct file *file;
	__u64 *claim = claim_scratch();

	if (!claim) {
		count(KA_CNT_SCRATCH_BUSY);
		struct mon_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

		if (!e) {
			count(KA_CNT_EVENT_LOST);
			return 0;
		}
		fill(e, KA_MON_EXEC, p);
		e->flags = KA_EV_SCRATCH_BUSY;
		bpf_ringbuf_submit(e, 0);
		return 0;
	}
	b = bpf_map_lookup_elem(&monbuf, &zero);
	if (!b)
		goto out;
	file = BPF_CORE_READ(bprm, file);
	collect_file(file, KA_PATH_OBJECT);
	pb = path_string(KA_PATH_OBJECT);
	if (!pb)
		goto out;
	fill(&b->hdr, KA_MON_EXEC, p);
	b->hdr.owner_uid = BPF_CORE_READ(file, f_inode, i_uid.val);
	b->hdr.flags = pb->flags;
	len = copy_string(b->data, pb);
	b->hdr.path_len = len;
	if (bpf_ringbuf_output(&events, b, sizeof(b->hdr) + len, 0))
		count(KA_CNT_EVENT_LOST);
out:
	release_scratch(claim);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(ka_mon_fork, struct task_struct *parent, struct task_struct *child)
{
	struct mon_event *e;

	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0; /* a new thread, not a new process */
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(KA_CNT_EVENT_LOST);
		return 0;
	}
	fill(e, KA_MON_FORK, child);
	e->ppid = BPF_CORE_READ(parent, tgid);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(ka_mon_exit, struct task_struct *p)
{
	struct mon_event *e;

	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0; /* other threads of the process still run */
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(KA_CNT_EVENT_LOST);
		return 0;
	}
	fill(e, KA_MON_EXIT, p);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
