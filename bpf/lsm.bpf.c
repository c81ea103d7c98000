//go:build ignore
/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * BPF-LSM enforcement: the kernel decides, and says which rule decided.
 *
 * Each hook resolves the object's path and the caller's executable, runs the
 * decision procedure of lib/policy.h against the current policy generation,
 * denies with -EACCES on Block or posture Block, and reports every Audit,
 * Block and posture decision with its rule ID on the `alerts` ring buffer.
 */
#include "lib/common.h"
#include "lib/path.h"
#include "lib/policy.h"

char LICENSE[] SEC("license") = "GPL";


/* An alert record: this header, then the object path, then the executable
 * path (no NULs; lengths in the header). */
struct alert {
	__u64 ts;  /* bpf_ktime_get_boot_ns */
	__u64 gen; /* policy generation that decided: (version << 1) | slot */
	__u32 tgid;
	__u32 pid;
	__u32 ppid;
	__u32 uid; /* real uid, as in alerts */
	__u32 owner_uid;
	__u32 rule;
	__u8 verdict; /* enum ka_verdict */
	__u8 op;      /* enum ka_op */
	__u8 kind;    /* enum ka_kind */
	__u8 flags;   /* enum ka_event_flag */
	__u16 path_len;
	__u16 exe_len;
	__u8 comm[16];
};

/* Emit the types user space needs into BTF, for bpf2go. */
struct ka_btf_types {
	struct trie_key trie_key;
	struct trie_val trie_val;
	struct rule_key rule_key;
	struct rule_val rule_val;
	enum ka_verdict verdict;
	enum ka_op op;
	enum ka_kind kind;
	enum ka_counter counter;
	enum ka_event_flag event_flag;
	enum ka_key_type key_type;
	enum ka_node_flag node_flag;
	struct alert alert;
};
const struct ka_btf_types *ka_unused_types __attribute__((unused));

struct alert_buf {
	struct alert hdr;
	__u8 data[2 * KA_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} alerts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct alert_buf);
} evbuf SEC(".maps");

static __always_inline void fill_header(struct alert *a, const struct decision *d, __u8 kind, __u8 op,
					__u32 flags, __u32 owner)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();

	a->ts = bpf_ktime_get_boot_ns();
	a->gen = d->gen;
	a->tgid = id >> 32;
	a->pid = (__u32)id;
	a->ppid = BPF_CORE_READ(task, real_parent, tgid);
	a->uid = (__u32)bpf_get_current_uid_gid();
	a->owner_uid = owner;
	a->rule = d->rule;
	a->verdict = d->verdict;
	a->op = op;
	a->kind = kind;
	a->flags = flags;
	bpf_get_current_comm(a->comm, sizeof(a->comm));
}

static __always_inline void emit(const struct decision *d, __u8 kind, __u8 op, __u32 flags, __u32 owner)
{
	__u32 zero = 0, plen = 0, elen = 0, exe_slot = KA_PATH_EXE;
	struct alert_buf *e = bpf_map_lookup_elem(&evbuf, &zero);
	struct path_buf *obj = bpf_map_lookup_elem(&paths, &zero);
	struct path_buf *exe = bpf_map_lookup_elem(&paths, &exe_slot);

	if (!e || !obj || !exe)
		return;
	fill_header(&e->hdr, d, kind, op, flags | obj->flags | (exe->flags ? KA_EV_EXE_TRUNCATED : 0), owner);
	plen = path_len(obj);
	if (plen > KA_PATH_MAX - 1)
		plen = KA_PATH_MAX - 1;
	elen = path_len(exe);
	if (elen > KA_PATH_MAX - 1)
		elen = KA_PATH_MAX - 1;
	bpf_probe_read_kernel(e->data, plen & (KA_PATH_MAX - 1), &obj->buf[obj->start & (KA_PATH_MAX - 1)]);
	bpf_probe_read_kernel(&e->data[plen & (KA_PATH_MAX - 1)], elen & (KA_PATH_MAX - 1),
			      &exe->buf[exe->start & (KA_PATH_MAX - 1)]);
	e->hdr.path_len = plen;
	e->hdr.exe_len = elen;
	if (bpf_ringbuf_output(&alerts, e, sizeof(e->hdr) + plen + elen, 0))
		count(KA_CNT_ALERT_LOST);
}

/* emit_bare reports a decision made without scratch space: no paths. */
static __always_inline void emit_bare(const struct decision *d, __u8 kind, __u8 op, __u32 flags)
{
	struct alert *a = bpf_ringbuf_reserve(&alerts, sizeof(*a), 0);

	if (!a) {
		count(KA_CNT_ALERT_LOST);
		return;
	}
	fill_header(a, d, kind, op, flags, 0);
	a->path_len = 0;
	a->exe_len = 0;
	bpf_ringbuf_submit(a, 0);
}

static __always_inline void account(const struct decision *d)
{
	if (d->verdict == KA_BLOCK || d->verdict == KA_POSTURE_BLOCK)
		count(KA_CNT_DENIED);
	else if (d->verdict == KA_AUDIT || d->verdict == KA_POSTURE_AUDIT)
		count(KA_CNT_AUDITED);
}

static __always_inline int verdict_errno(const struct decision *d)
{
	return (d->verdict == KA_BLOCK || d->verdict == KA_POSTURE_BLOCK) ? -KA_EACCES : 0;
}

/* decide_busy decides without scratch space, as for an unresolvable path. */
static __always_inline void decide_busy(__u8 kind, struct decision *d)
{
	__u32 zero = 0, idx;
	struct active_gen *ag = bpf_map_lookup_elem(&active, &zero);
	struct kind_cfg *cfg;

	d->verdict = KA_NOMATCH;
	d->rule = 0;
	d->gen = ag ? *(volatile __u64 *)&ag->gen : 0;
	if (!d->gen)
		return;
	idx = (d->gen & 1) * KA_KIND_SLOTS + kind;
	cfg = bpf_map_lookup_elem(&kinds, &idx);
	if (!cfg || !cfg->has_rules)
		return;
	/* Without the executable's path source allow-lists are unknown; a
	 * host-wide one or any Block rule is enough to fail closed. */
	d->verdict = (cfg->has_block || (cfg->host_allowlist && cfg->posture == KA_POSTURE_BLOCK)) ?
			     KA_POSTURE_BLOCK :
			     KA_POSTURE_AUDIT;
}

static __always_inline void resolve_exe(struct task_struct *task)
{
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);

	resolve_path(exe ? &exe->f_path : NULL, KA_PATH_EXE);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(ka_bprm_check, struct linux_binprm *bprm, int ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct decision d;
	struct file *file;
	__u64 *claim;
	__u32 owner, fsuid;

	if (ret)
		return ret;
	claim = claim_scratch();
	if (!claim) {
		count(KA_CNT_SCRATCH_BUSY);
		decide_busy(KA_KIND_PROCESS, &d);
		if (d.verdict != KA_NOMATCH) {
			account(&d);
			emit_bare(&d, KA_KIND_PROCESS, KA_OP_EXEC, KA_EV_SCRATCH_BUSY);
		}
		return verdict_errno(&d);
	}
	file = BPF_CORE_READ(bprm, file);
	owner = BPF_CORE_READ(file, f_inode, i_uid.val);
	fsuid = BPF_CORE_READ(task, cred, fsuid.val);
	resolve_path(&file->f_path, KA_PATH_OBJECT);
	resolve_exe(task);
	decide(KA_KIND_PROCESS, KA_OP_EXEC, owner != fsuid, 0, &d);
	if (d.verdict >= KA_AUDIT) {
		account(&d);
		emit(&d, KA_KIND_PROCESS, KA_OP_EXEC, 0, owner);
	}
	release_scratch(claim);
	return verdict_errno(&d);
}

/*
 * Test entry point: decides on paths given in test_in, through the same
 * decide() the hooks use. It runs with BPF_PROG_TEST_RUN on any kernel with
 * raw tracepoints, so the decision logic is tested without BPF-LSM.
 */
struct test_input {
	__u8 path[KA_PATH_MAX];
	__u8 exe[KA_PATH_MAX];
	__u32 path_len;
	__u32 exe_len;
	__u32 kind;
	__u32 op;
	__u32 not_owner;
	__u32 flags;
};

struct test_output {
	struct decision d;
	__u32 obj_n;
	__u32 exe_n;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct test_input);
} test_in SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct test_output);
} test_out SEC(".maps");

struct split_ctx {
	__u32 slot;
	__u32 lo;  /* index of the leading '/' */
	__u32 i;   /* one past the next character to look at, counting down */
	__u32 end; /* one past the last character of the current component */
	__u32 n;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct split_ctx);
} split_state SEC(".maps");

static long split_step(__u32 unused, void *unused_ctx)
{
	__u32 zero = 0, i;
	struct split_ctx *c = bpf_map_lookup_elem(&split_state, &zero);
	struct path_buf *pb;

	if (!c)
		return 1;
	pb = bpf_map_lookup_elem(&paths, &c->slot);
	if (!pb || c->i <= c->lo)
		return 1;
	i = --c->i;
	if (pb->buf[i & (KA_PATH_MAX - 1)] != '/')
		return 0;
	if (c->end > i + 1 && c->n < KA_MAX_DEPTH) {
		pb->off[c->n & (KA_MAX_DEPTH - 1)] = i + 1;
		pb->len[c->n & (KA_MAX_DEPTH - 1)] = c->end - (i + 1);
		c->n++;
	}
	c->end = i;
	return 0;
}

/* split lays out an absolute path as resolve_path would. */
static __always_inline void split(const __u8 *src, __u32 len, __u32 slot)
{
	struct path_buf *pb = bpf_map_lookup_elem(&paths, &slot);
	__u32 zero = 0;
	struct split_ctx *c = bpf_map_lookup_elem(&split_state, &zero);

	if (!pb || !c)
		return;
	c->slot = slot;
	c->n = 0;
	if (len > KA_PATH_MAX - 1)
		len = KA_PATH_MAX - 1;
	pb->flags = 0;
	pb->start = (KA_PATH_MAX - 1 - len) & (KA_PATH_MAX - 1);
	pb->buf[KA_PATH_MAX - 1] = 0;
	bpf_probe_read_kernel(&pb->buf[pb->start & (KA_PATH_MAX - 1)], len & (KA_PATH_MAX - 1), src);
	c->lo = pb->start;
	c->i = KA_PATH_MAX - 1;
	c->end = KA_PATH_MAX - 1;
	bpf_loop(KA_PATH_MAX, split_step, NULL, 0);
	pb->n = 0;
	if (len)
		pb->n = c->n;
}

SEC("raw_tp/ka_test_decide")
int ka_test_decide(void *ctx)
{
	__u32 zero = 0;
	struct test_input *in = bpf_map_lookup_elem(&test_in, &zero);
	struct test_output *out = bpf_map_lookup_elem(&test_out, &zero);
	struct path_buf *obj, *exe;
	__u32 exe_slot = KA_PATH_EXE;

	if (!in || !out)
		return 0;
	split(in->path, in->path_len, KA_PATH_OBJECT);
	split(in->exe, in->exe_len, KA_PATH_EXE);
	obj = bpf_map_lookup_elem(&paths, &zero);
	exe = bpf_map_lookup_elem(&paths, &exe_slot);
	if (!obj || !exe)
		return 0;
	obj->flags = in->flags;
	decide(in->kind, in->op, in->not_owner, 0, &out->d);
	out->obj_n = obj->n;
	out->exe_n = exe->n;
	return 0;
}
