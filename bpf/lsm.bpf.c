//go:build ignore
/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * BPF-LSM enforcement: the kernel decides, and says which rule decided.
 *
 * Each hook first asks whether any rule of its kind is in force (two array
 * lookups; most calls stop there). Then it finds the subject's fromSource
 * identity (cached per task), walks the object through the policy maps
 * (lib/policy.h), denies on Block or posture Block, and reports every
 * Audit, Block and posture decision with its rule ID on the `alerts` ring
 * buffer. A failed reserve is counted, never silent.
 */
#include "lib/common.h"
#include "lib/path.h"
#include "lib/policy.h"

char LICENSE[] SEC("license") = "GPL";

/* Protocols, numbered as policy.Protocol in Go. */
enum ka_proto {
	KA_PROTO_ALL = 1,
	KA_PROTO_TCP,
	KA_PROTO_UDP,
	KA_PROTO_ICMP,
	KA_PROTO_ICMPV6,
	KA_PROTO_RAW,
	KA_PROTO_SCTP,
	KA_PROTO_STREAM,
	KA_PROTO_DGRAM,
	KA_PROTO_RDM,
	KA_PROTO_SEQPACKET,
	KA_PROTO_DCCP,
	KA_PROTO_PACKET,
	KA_PROTO_MAX = KA_PROTO_PACKET,
};

/* Settings user space writes once, at load. */
struct ka_settings {
	__u32 userns; /* enum ka_userns */
	__u32 pad;
};

enum ka_userns {
	KA_USERNS_ALLOW = 0,
	KA_USERNS_AUDIT = 1,
	KA_USERNS_BLOCK = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ka_settings);
} settings SEC(".maps");

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
	__u32 res0; /* capability, or socket family */
	__u32 res1; /* socket type << 16 | protocol */
	__u8 verdict; /* enum ka_verdict */
	__u8 op;      /* enum ka_op */
	__u8 kind;    /* enum ka_kind */
	__u8 flags;   /* enum ka_event_flag */
	__u16 path_len;
	__u16 exe_len;
	__u8 exe_flags; /* the executable path's KA_EV_* flags (KA_EV_NO_HOST) */
	__u8 pad[3];
	__u8 comm[16];
};

/* Emit the types user space needs into BTF, for bpf2go. */
struct ka_btf_types {
	struct trie_key trie_key;
	struct trie_val trie_val;
	struct rule_key rule_key;
	struct rule_val rule_val;
	struct rule_stats rule_stats;
	struct sys_filter sys_filter;
	enum ka_verdict verdict;
	enum ka_op op;
	enum ka_access access;
	enum ka_kind kind;
	enum ka_counter counter;
	enum ka_event_flag event_flag;
	enum ka_key_type key_type;
	enum ka_node_flag node_flag;
	enum ka_proto proto;
	enum ka_userns userns;
	struct ka_settings settings;
	struct alert alert;
};
const struct ka_btf_types *ka_unused_types __attribute__((unused));

struct alert_buf {
	struct alert hdr;
	__u8 data[2 * KA_PATH_MAX];
};

/* 8 MiB: some 40,000 alerts with their paths. A flood outruns the reader
 * for as long as the ring lasts before any is lost (counted); 1 MiB lost
 * 8 % of a 10,000/s flood in the guests (docs/benchmarks.md). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} alerts SEC(".maps");

/* The reader is woken once this much is queued, and polls otherwise (every
 * 10 ms): under a flood a wakeup drains thousands of alerts instead of
 * one, and a lone alert waits at most the poll interval. */
#define KA_ALERT_WAKEUP_BYTES (64 << 10)

static __always_inline __u64 alert_wakeup(void)
{
	return bpf_ringbuf_query(&alerts, BPF_RB_AVAIL_DATA) >= KA_ALERT_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
										     : BPF_RB_NO_WAKEUP;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct alert_buf);
} evbuf SEC(".maps");

/* What a hook knows about the operation besides the paths. */
struct op_info {
	__u8 kind;
	__u8 op;
	__u8 flags;
	__u32 owner;
	__u32 res0;
	__u32 res1;
};

static __always_inline void fill_header(struct alert *a, const struct decision *d, const struct op_info *o)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();

	a->ts = bpf_ktime_get_boot_ns();
	a->gen = d->gen;
	a->tgid = id >> 32;
	a->pid = (__u32)id;
	a->ppid = BPF_CORE_READ(task, real_parent, tgid);
	/* The task's own credentials: an overlay opens its layer's file under
	 * the mounter's. */
	a->uid = BPF_CORE_READ(task, real_cred, uid.val);
	a->owner_uid = o->owner;
	a->rule = d->rule;
	a->res0 = o->res0;
	a->res1 = o->res1;
	a->verdict = d->verdict;
	a->op = o->op;
	a->kind = o->kind;
	a->flags = o->flags | d->flags;
	a->path_len = 0;
	a->exe_len = 0;
	a->exe_flags = 0;
	a->pad[0] = a->pad[1] = a->pad[2] = 0;
	bpf_get_current_comm(a->comm, sizeof(a->comm));
}

static __always_inline void account(const struct decision *d)
{
	if (d->verdict == KA_BLOCK || d->verdict == KA_POSTURE_BLOCK)
		count(KA_CNT_DENIED);
	else if (d->verdict == KA_AUDIT || d->verdict == KA_POSTURE_AUDIT)
		count(KA_CNT_AUDITED);
}

/* subject_exe fills paths[KA_PATH_EXE] with the current task's executable:
 * the program a loader runs, in a process that is it (task_idents), else
 * its executable file. */
__attribute__((noinline)) int ka_subject_exe(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_ident *id = bpf_task_storage_get(&task_idents, task, 0, 0);
	struct path_buf *pb;
	__u32 len, start;

	if (!id) {
		collect_file_here(BPF_CORE_READ(task, mm, exe_file), KA_PATH_EXE);
		return 0;
	}
	pb = bpf_map_lookup_elem(&paths, &(__u32){KA_PATH_EXE});
	if (!pb)
		return 0;
	len = id->len & (KA_PATH_MAX - 1);
	start = (KA_PATH_MAX - 1 - len) & (KA_PATH_MAX - 1);
	bpf_probe_read_kernel(&pb->buf[start], len, id->path);
	split_string(KA_PATH_EXE, start);
	pb->flags = id->flags;
	return 0;
}

static __always_inline void subject_exe(void)
{
	ka_subject_exe();
}

/* emit reports a decision with the object path (if with_path) and the
 * executable's path, building the strings only now. */
static __always_inline void emit(const struct decision *d, const struct op_info *o, int with_path)
{
	__u32 zero = 0, plen = 0, elen = 0;
	struct alert_buf *e = bpf_map_lookup_elem(&evbuf, &zero);
	struct path_buf *obj, *exe;
	__u8 flags = o->flags | d->flags;

	account(d);
	if (!e)
		return;
	fill_header(&e->hdr, d, o);
	if (with_path) {
		obj = path_string(KA_PATH_OBJECT);
		if (obj) {
			flags |= obj->flags;
			plen = path_len(obj);
			barrier_var(plen);
			plen &= KA_PATH_MAX - 1;
			bpf_probe_read_kernel(e->data, plen, &obj->buf[obj->start & (KA_PATH_MAX - 1)]);
		}
	}
	subject_exe();
	exe = path_string(KA_PATH_EXE);
	if (exe) {
		if (exe->flags & KA_EV_PATH_TRUNCATED)
			flags |= KA_EV_EXE_TRUNCATED;
		e->hdr.exe_flags = exe->flags;
		elen = path_len(exe);
		barrier_var(elen);
		elen &= KA_PATH_MAX - 1;
		bpf_probe_read_kernel(&e->data[plen & (KA_PATH_MAX - 1)], elen, &exe->buf[exe->start & (KA_PATH_MAX - 1)]);
	}
	e->hdr.flags = flags;
	e->hdr.path_len = plen;
	e->hdr.exe_len = elen;
	if (bpf_ringbuf_output(&alerts, e, sizeof(e->hdr) + plen + elen, alert_wakeup()))
		count(KA_CNT_ALERT_LOST);
}

/* emit_bare reports a decision made without scratch space: no paths. */
static __always_inline void emit_bare(const struct decision *d, const struct op_info *o)
{
	struct alert *a;

	account(d);
	a = bpf_ringbuf_reserve(&alerts, sizeof(*a), 0);
	if (!a) {
		count(KA_CNT_ALERT_LOST);
		return;
	}
	fill_header(a, d, o);
	a->flags |= KA_EV_SCRATCH_BUSY;
	bpf_ringbuf_submit(a, alert_wakeup());
}

/* decide_busy decides without scratch space, as for an unresolvable path
 * by an unknown subject. */
static __always_inline void decide_busy(struct kind_cfg *cfg, __u8 kind, struct decision *d)
{
	count(KA_CNT_SCRATCH_BUSY);
	unresolvable(cfg, kind, NULL, d);
}

/* subject_source returns the current task's fromSource identity under gen,
 * from its cache if its executable has not changed since. */
static __always_inline void subject_source(__u64 gen, struct task_src *out)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct task_src *ts = bpf_task_storage_get(&task_srcs, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	struct walk_ctx *w;

	if (ts && ts->gen == gen && ts->exe == (__u64)exe) {
		out->source = ts->source;
		out->flags = ts->flags;
		out->unknown = ts->unknown;
		return;
	}
	out->source = 0;
	out->flags = 0;
	out->unknown = 0;
	subject_exe();
	w = start_walk(gen, 0, 0);
	if (!w)
		return;
	walk_source(w, out);
	if (ts) {
		ts->source = out->source;
		ts->flags = out->flags;
		ts->unknown = out->unknown;
		ts->exe = (__u64)exe;
		ts->gen = gen;
	}
}

/* After an exec the cached identity is stale; the new executable's file may
 * even sit where an older one was freed, so the pointer alone cannot tell. */
/*
 * Loaders. A dynamic loader run as a program (ld.so PROGRAM) maps PROGRAM
 * itself: the kernel's exec is the loader's. A loader is a file the kernel
 * has mapped as a program's ELF interpreter (or that user space named one:
 * enforcer/bpflsm seeds the system's), root-owned and not writable by group
 * or others; the mark lives in its inode's storage, so a copy is no loader.
 * A process whose program is a loader and that got no interpreter of its
 * own (a loader has none) takes as its identity the first other file it
 * maps executable: that mapping is decided as its exec, and from then on
 * the process, and what it forks, is that program (task_idents).
 *
 * The phases: bprm_committed_creds (past the point of no return) ->
 * LOADING, in which the kernel maps the program and its interpreter ->
 * sched_process_exec -> RUNNING.
 */
struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32);
} loaders SEC(".maps");

#define KA_FUSE_MAGIC 0x65735546

/* trusted_inode reports whether only root can have made inode what it is:
 * root-owned, not writable by group or others, on a file system the host's
 * user namespace mounted and that reports owners itself (not FUSE, whose
 * daemon says who owns what), not an overlay. What the kernel maps as an
 * interpreter becomes a loader only if it and the program are such files:
 * a program names its interpreter, and its author may be anyone. */
static __always_inline int trusted_inode(struct inode *inode)
{
	struct super_block *sb = inode->i_sb;
	struct host_info *h = host_info();

	return inode->i_uid.val == 0 && !(inode->i_mode & 022) && sb->s_magic != KA_FUSE_MAGIC &&
	       sb->s_magic != KA_OVERLAYFS_MAGIC && h && (__u64)sb->s_user_ns == h->user_ns;
}

/* After an exec the cached identity is stale; the new executable's file may
 * even sit where an older one was freed, so the pointer alone cannot tell. */
SEC("lsm/bprm_committed_creds")
int BPF_PROG(ka_bprm_committed, struct linux_binprm *bprm)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_src *ts = bpf_task_storage_get(&task_srcs, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	struct file *f = bprm->file;

	bpf_task_storage_delete(&task_idents, task);
	if (!ts)
		return 0;
	ts->gen = 0;
	ts->phase = KA_PHASE_LOADING;
	ts->interp = 0;
	ts->ident = KA_IDENT_EXE;
	ts->loader = f && bpf_inode_storage_get(&loaders, f->f_inode, 0, 0) != NULL;
	ts->trusted = f && trusted_inode(f->f_inode);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ka_exec_done, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	struct task_src *ts = bpf_task_storage_get(&task_srcs, bpf_get_current_task_btf(), 0, 0);

	if (!ts || ts->phase != KA_PHASE_LOADING)
		return 0;
	ts->phase = KA_PHASE_RUNNING;
	if (ts->loader && !ts->interp)
		ts->ident = KA_IDENT_PENDING;
	return 0;
}


/* prev passes on the denial of an earlier BPF program on the hook. It
 * returns a constant: the verifier must see the return value within
 * [-MAX_ERRNO, 0] as a 64-bit value, which an int passed through is not.
 * (Nor is -1: clang computes "cond ? -1 : 0" as a 32-bit negation.) */
static __always_inline int prev(int ret)
{
	return ret ? -KA_EACCES : 0;
}

static __always_inline int deny(const struct decision *d, int err)
{
	return (d->verdict == KA_BLOCK || d->verdict == KA_POSTURE_BLOCK) ? -err : 0;
}

/* A child is what its parent is, a program a loader runs included. */
SEC("lsm/task_alloc")
int BPF_PROG(ka_task_alloc, struct task_struct *task, unsigned long clone_flags, int ret)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct task_src *pts = bpf_task_storage_get(&task_srcs, cur, 0, 0), *cts;
	struct task_ident *id;

	if (ret)
		return prev(ret);
	if (!pts || pts->ident == KA_IDENT_EXE)
		return 0;
	id = bpf_task_storage_get(&task_idents, cur, 0, 0);
	if (id)
		bpf_task_storage_get(&task_idents, task, id, BPF_LOCAL_STORAGE_GET_F_CREATE);
	cts = bpf_task_storage_get(&task_srcs, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (cts) {
		cts->gen = 0;
		cts->ident = pts->ident;
		cts->loader = pts->loader;
	}
	return 0;
}

static __always_inline __u32 fsuid(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	/* real_cred: not the mounter's an overlay puts on to open its layer. */
	return BPF_CORE_READ(task, real_cred, fsuid.val);
}

/* subject_known reports whether the current task's fromSource identity is
 * cached under gen and resolved: then it cannot make a decision
 * unresolvable. */
static __always_inline int subject_known(__u64 gen)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_src *ts = bpf_task_storage_get(&task_srcs, task, 0, 0);

	return ts && ts->gen == gen && ts->exe == (__u64)BPF_CORE_READ(task, mm, exe_file) && !ts->unknown;
}

/* remember_file records in the file cache that no rule of kind can decide
 * on inode as (mnt, dentry) under the decision's generation and names
 * epoch nep, keeping the kinds an entry for the same name already has. */
static __always_inline void remember_file(struct inode *inode, __u64 mnt, __u64 dentry,
					  const struct decision *d, __u64 nep, __u8 kind, int sourced)
{
	struct fcache_val *v = bpf_map_lookup_elem(&fcache_scratch, &(__u32){0}), *old;

	if (!v)
		return;
	v->gen = d->gen;
	v->epoch = nep;
	/* Numbers, as the value holds them. */
	v->mnt = mnt; /* canonical, as the directory cache's */
	v->dentry = dentry;
	v->kinds = 1U << kind;
	v->sourced = sourced ? 1U << kind : 0;
	old = bpf_inode_storage_get(&fcache, inode, 0, 0);
	if (old && old->gen == v->gen && old->epoch == v->epoch && old->mnt == v->mnt && old->dentry == v->dentry) {
		if ((old->kinds & v->kinds) == v->kinds)
			return; /* another program made it meanwhile */
		v->kinds |= old->kinds;
		v->sourced |= old->sourced;
	}
	bpf_inode_storage_delete(&fcache, inode);
	bpf_inode_storage_get(&fcache, inode, v, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/*
 * check_any decides op on an object: (mntn, dentn) as numbers, for the walk,
 * and inon, its inode, for the owner; or, where the verifier knows them, the
 * typed (mnt, dentry), from which it makes the numbers once the fast path is
 * passed. The dentry may be negative (a name about to be created), which its
 * creator will own; no dentry at all is an object that cannot be known
 * (decided as unresolvable). Where the verifier knows
 * the pointers (mnt, dentry, finode: the typed ones, else NULL) the caches
 * serve: for an open or an exec, finode is the file's, and the file cache
 * may know that no rule can decide on it. Otherwise the parent directory's
 * cache entry usually spares the walk from the root, and for a name no rule
 * can match (unnamed), everything else too.
 */
static __always_inline int check_any(__u8 kind, __u8 op, __u8 evflags, struct vfsmount *mnt, struct dentry *dentry,
				     struct inode *finode, __u64 mntn, __u64 dentn, __u64 inon)
{
	const struct fcache_val *fe;
	struct op_info o = {.kind = kind, .op = op, .flags = evflags};
	const struct dcache_val *cv = NULL;
	struct dentry *parent = NULL;
	struct kind_cfg *cfg;
	struct decision d;
	struct task_src src;
	__u8 not_owner;
	__u64 *claim, ep, nep = 0;
	__u32 len = 0, uid;
	int cacheable = 0;

	cfg = begin(kind, &d);
	if (!cfg)
		return 0;
	if (finode && (dentn || dentry)) {
		/* Read before the directory cache: a rename meanwhile makes
		 * the file entry made below stale at once. The typed pointers
		 * compare as they are: no number is made on the fast path. */
		nep = read_epoch(KA_EPOCH_NAMES);
		fe = dentry ? cached_file(finode, (__u64)mnt, (__u64)dentry, d.gen, nep, kind)
			    : cached_file(finode, mntn, dentn, d.gen, nep, kind);
		if (fe && (!(fe->sourced & (1U << kind)) || subject_known(d.gen))) {
			count(KA_CNT_FAST);
			return 0;
		}
	}
	ep = read_epoch(KA_EPOCH_NAMESPACE);
	if (mnt && dentry) {
		parent = dentry->d_parent;
		cacheable = !cfg->dfa_start && parent && parent != dentry && dentry != mnt->mnt_root;
	}
	if (cacheable)
		cv = cached_parent(mnt, dentry, parent, d.gen, ep, &len);
	/* The fast path: no rule can match, so no scratch, no owner, no
	 * subject. It reads no setting of the generation but has_rules: the
	 * entry holds what it needs, made from settings that were not
	 * rewritten meanwhile. */
	if (dentry) {
		mntn = to_number(mnt);
		dentn = to_number(dentry);
		inon = to_number(dentry->d_inode);
	}
	if (cv && unnamed(cv, len) && (!cv->sourced || subject_known(d.gen))) {
		count(KA_CNT_FAST);
		if (finode)
			remember_file(finode, cv->mnt, dentn, &d, nep, kind, cv->sourced);
		return 0;
	}
	claim = claim_scratch();
	if (!claim) {
		decide_busy(cfg, kind, &d);
		emit_bare(&d, &o);
		return deny(&d, KA_EACCES);
	}
	uid = fsuid();
	o.owner = inon ? BPF_CORE_READ((struct inode *)inon, i_uid.val) : uid;
	not_owner = o.owner != uid;
	/* A file a local user may have written, mapped executable, is decided
	 * as an exec: an allow-list's posture holds for it (see policy/match). */
	if (op == KA_OP_EXEC_MAP && (o.owner != 0 || !inon || (BPF_CORE_READ((struct inode *)inon, i_mode) & 022)))
		op = KA_OP_EXEC;
	subject_source(d.gen, &src);
	if (!dentn) {
		count(KA_CNT_DECISIONS);
		unresolvable(cfg, kind, NULL, &d);
		o.flags |= KA_EV_PATH_TRUNCATED;
	} else if (cv) {
		decide_cached(cfg, kind, op, not_owner, &src, cv, dentry, &d);
	} else {
		ka_collect_path(mntn, dentn, KA_PATH_OBJECT);
		decide_path(cfg, kind, op, not_owner, &src, &d);
		if (cacheable)
			remember_parent(cfg, mnt, parent, ep, &d);
	}
	if (d.verdict >= KA_AUDIT) {
		if (cv)
			ka_collect_path(mntn, dentn, KA_PATH_OBJECT); /* the alert names the path */
		emit(&d, &o, dentn != 0);
	}
	release_scratch(claim);
	return deny(&d, KA_EACCES);
}

/* check_path decides op on (mnt, dentry), pointers the verifier knows. */
static __always_inline int check_path(__u8 kind, __u8 op, struct vfsmount *mnt, struct dentry *dentry,
				      struct inode *finode, __u8 evflags)
{
	return check_any(kind, op, evflags, mnt, dentry, finode, 0, 0, 0);
}

static __always_inline int is_overlay(struct inode *inode)
{
	return inode->i_sb->s_magic == KA_OVERLAYFS_MAGIC;
}

/*
 * check_file decides op on the file f is. An overlay's file is decided as
 * its layer's, the file that holds the bytes; a layer's file opened under
 * the overlay's path (6.1) as its inode's own dentry. Those pointers are
 * not the verifier's typed ones, so the directory cache does not serve them.
 */
static __always_inline int check_file(__u8 kind, __u8 op, struct file *f, __u8 evflags, int open)
{
	struct inode *inode = f->f_inode, *ti = NULL;
	struct dentry *dentry = f->f_path.dentry, *td = NULL, *d;
	struct vfsmount *tm = NULL, *m;
	__u64 mn = 0, dn = 0, in = 0;
	struct file *real;

	/* An overlay file being opened has no layer file yet (the overlay
	 * opens it next, and that open is decided): it is its own. */
	if (open || !is_overlay(inode)) {
		ti = inode;
		if (dentry->d_inode == inode) {
			tm = f->f_path.mnt;
			td = dentry; /* check_any makes the numbers when it needs them */
		} else {
			file_object(f, &m, &d);
			dn = to_number(d);
			in = to_number(inode);
		}
	} else {
		real = real_file(f);
		if (real) {
			file_object(real, &m, &d);
			mn = to_number(m);
			dn = to_number(d);
			in = (__u64)BPF_CORE_READ(real, f_inode);
		}
	}
	/* One call, not one per case: each is a copy of the decision for the
	 * verifier to walk. */
	return check_any(kind, op, evflags, tm, td, ti, mn, dn, in);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(ka_bprm_check, struct linux_binprm *bprm, int ret)
{
	struct file *f;

	if (ret)
		return prev(ret);
	f = bprm->file;
	return check_file(KA_KIND_PROCESS, KA_OP_EXEC, f, 0, 0);
}

#define KA_S_IFMT 0170000
#define KA_S_IFDIR 0040000
#define KA_S_IFREG 0100000

#define KA_FMODE_WRITE 0x2
#define KA_FMODE_EXEC 0x20
#define KA_O_TRUNC 01000

SEC("lsm/file_open")
int BPF_PROG(ka_file_open, struct file *file, int ret)
{
	__u8 op = KA_OP_OPEN_READ;
	__u32 mode;

	if (ret)
		return prev(ret);
	mode = file->f_mode;
	/* The kernel's own open of a program it is about to run is the exec,
	 * which process rules decide in bprm_check_security. */
	if (mode & KA_FMODE_EXEC)
		return 0;
	/* An overlay's regular file: the overlay opens its layer's file next,
	 * and that open is decided, as the host names that file. */
	if ((file->f_inode->i_mode & KA_S_IFMT) == KA_S_IFREG && is_overlay(file->f_inode))
		return 0;
	if ((mode & KA_FMODE_WRITE) || (file->f_flags & KA_O_TRUNC))
		op = KA_OP_OPEN_WRITE;
	return check_file(KA_KIND_FILE, op, file, 0, 1);
}


static __always_inline int is_dir(struct dentry *d)
{
	struct inode *inode = BPF_CORE_READ(d, d_inode);

	return inode && (BPF_CORE_READ(inode, i_mode) & KA_S_IFMT) == KA_S_IFDIR;
}

/*
 * Executable mappings. mmap or mprotect with PROT_EXEC of a file is decided
 * by the process rules as an exec of that file (KA_OP_EXEC_MAP: no posture,
 * so libraries keep loading under an allow-list), except the program's own
 * mappings (decided at its exec) and, in a process a loader runs, the first
 * other file: that is the program (see loaders). Memory that is not the
 * file's (no file, or private pages a writable mapping may have changed:
 * SELinux's execmem and execmod) is anonymous: KA_OP_EXEC_ANON, which only
 * the anonymousMapExec preset decides.
 */
#define KA_MAP_TYPE 0x3
#define KA_MAP_PRIVATE 0x2
#define KA_VM_WRITE 0x2
#define KA_VM_EXEC 0x4
#define KA_VM_SHARED 0x8
#define KA_S_PRIVATE 0x200 /* inode: the kernel's own (shared anonymous memory, SysV shm) */
#define KA_HOW_MPROTECT 0x80000000 /* in an alert's res1: made executable by mprotect */

/* check_anon decides making anonymous memory executable; prot and how (the
 * mmap flags, or for mprotect KA_HOW_MPROTECT and MAP_SHARED or
 * MAP_PRIVATE as the mapping is) go in the alert. */
__attribute__((noinline)) int ka_check_anon(__u32 prot, __u32 how)
{
	struct op_info o = {.kind = KA_KIND_PROCESS, .op = KA_OP_EXEC_ANON, .res0 = prot, .res1 = how};
	struct kind_cfg *cfg;
	struct decision d;
	__u64 *claim;
	__u32 rule;
	__u8 action;

	cfg = begin(KA_KIND_PROCESS, &d);
	if (!cfg || !cfg->anon_rule)
		return 0;
	rule = cfg->anon_rule;
	action = cfg->anon_action;
	count(KA_CNT_DECISIONS);
	if (torn(&d)) {
		count(KA_CNT_TORN);
		d.flags |= KA_EV_TORN;
		unresolvable(cfg, KA_KIND_PROCESS, NULL, &d);
	} else {
		d.rule = rule;
		d.verdict = action == KA_BLOCK ? KA_BLOCK : KA_AUDIT;
		tally(&d);
	}
	claim = claim_scratch();
	if (!claim) {
		emit_bare(&d, &o);
		return deny(&d, KA_EACCES);
	}
	emit(&d, &o, 0);
	release_scratch(claim);
	return deny(&d, KA_EACCES);
}

/* learn_loader marks f's inode a loader: the kernel mapped it as a
 * program's interpreter. Only a root-owned file nobody else may write. */
static __always_inline void learn_loader(struct file *f, struct task_src *ts)
{
	struct inode *inode = f->f_inode;

	if (ts->trusted && trusted_inode(inode))
		bpf_inode_storage_get(&loaders, inode, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/* become makes the current task the program in f (a loader mapped it). */
__attribute__((noinline)) int ka_become(__u64 file)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_src *ts = bpf_task_storage_get(&task_srcs, task, 0, 0);
	struct file *f = (struct file *)file;
	struct task_ident *id;
	struct path_buf *pb;
	__u64 *claim;
	__u32 len;

	if (!ts)
		return 0;
	ts->ident = KA_IDENT_LOADED;
	ts->gen = 0;
	id = bpf_task_storage_get(&task_idents, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!id)
		return 0;
	id->len = 0;
	id->flags = KA_EV_PATH_TRUNCATED; /* unknown, until the path is in */
	claim = claim_scratch();
	if (!claim)
		return 0;
	collect_file(f, KA_PATH_OBJECT);
	pb = path_string(KA_PATH_OBJECT);
	if (pb) {
		len = path_len(pb);
		barrier_var(len);
		len &= KA_PATH_MAX - 1;
		bpf_probe_read_kernel(id->path, len, &pb->buf[pb->start & (KA_PATH_MAX - 1)]);
		id->len = len;
		id->flags = pb->flags;
	}
	release_scratch(claim);
	return 0;
}

/* private_inode reports whether f is the kernel's own file behind shared
 * anonymous memory or SysV shared memory: anonymous, as SELinux's execmem
 * has it. */
static __always_inline int private_inode(struct file *f)
{
	return f->f_inode->i_flags & KA_S_PRIVATE;
}

static __always_inline struct inode *real_inode(struct file *f)
{
	struct file *r = real_file(f);

	return r ? BPF_CORE_READ(r, f_inode) : NULL;
}

/* check_mapping decides mapping the file f executable. */
static __always_inline int check_mapping(struct file *f)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_src *ts = bpf_task_storage_get(&task_srcs, task, 0, 0);
	struct file *exe = task->mm->exe_file;
	int ret, loaded = 0;

	/* The program's own mappings were decided at its exec. */
	if (exe && real_inode(f) && real_inode(f) == real_inode(exe))
		return 0;
	if (ts && ts->phase == KA_PHASE_LOADING) {
		/* The kernel maps the program's interpreter. */
		ts->interp = 1;
		learn_loader(f, ts);
	} else if (ts && ts->ident == KA_IDENT_PENDING) {
		loaded = 1;
	}
	ret = check_file(KA_KIND_PROCESS, loaded ? KA_OP_EXEC : KA_OP_EXEC_MAP, f, loaded ? KA_EV_LOADED : 0, 0);
	if (loaded && !ret) {
		/* A set-user-ID or set-group-ID program run by the loader runs
		 * without its privileges, and with whatever the user preloads:
		 * the process does not become it. */
		if (f->f_inode->i_mode & 06000)
			ts->ident = KA_IDENT_EXE;
		else
			ka_become(to_number(f));
	}
	return ret;
}

SEC("lsm/mmap_file")
int BPF_PROG(ka_mmap_file, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags, int ret)
{
	if (ret)
		return prev(ret);
	if (!(prot & KA_PROT_EXEC))
		return 0;
	if (file && !private_inode(file)) {
		ret = check_mapping(file);
		if (ret || (flags & KA_MAP_TYPE) != KA_MAP_PRIVATE || !(prot & KA_PROT_WRITE))
			return ret;
	}
	return prev(ka_check_anon(prot, flags));
}

SEC("lsm/file_mprotect")
int BPF_PROG(ka_file_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot, int ret)
{
	unsigned long vmf;
	struct file *file;

	if (ret)
		return prev(ret);
	vmf = vma->vm_flags;
	if (!(prot & KA_PROT_EXEC))
		return 0;
	file = vma->vm_file;
	if (file && !private_inode(file)) {
		/* A mapping executable already was decided when it became so. */
		if (!(vmf & KA_VM_EXEC)) {
			ret = check_mapping(file);
			if (ret)
				return ret;
		}
		/* Its private pages may be the process's own code: written
		 * (anon_vma) or writable from now on. */
		if ((vmf & KA_VM_SHARED) || (!(prot & KA_PROT_WRITE) && !vma->anon_vma))
			return 0;
	}
	/* Anonymous memory executable already is decided again only when it
	 * becomes writable too. */
	if ((vmf & KA_VM_EXEC) && (!(prot & KA_PROT_WRITE) || (vmf & KA_VM_WRITE)))
		return 0;
	return prev(ka_check_anon(prot, KA_HOW_MPROTECT | ((vmf & KA_VM_SHARED) ? 1 : KA_MAP_PRIVATE)));
}


#define KA_CAP_SYS_ADMIN 21
#define KA_EPERM 1

/* User namespaces created by unprivileged processes: not root with
 * CAP_SYS_ADMIN in the host's user namespace. */
SEC("lsm/userns_create")
int BPF_PROG(ka_userns_create, const struct cred *cred, int ret)
{
	struct ka_settings *st = bpf_map_lookup_elem(&settings, &(__u32){0});
	struct op_info o = {.op = KA_OP_USERNS};
	struct active_gen *ag;
	struct host_info *h;
	struct decision d = {};
	__u64 *claim;

	if (ret)
		return prev(ret);
	if (!st || st->userns == KA_USERNS_ALLOW)
		return 0;
	h = host_info();
	if (cred->euid.val == 0 && (cred->cap_effective.val & (1ULL << KA_CAP_SYS_ADMIN)) && h &&
	    (__u64)cred->user_ns == h->user_ns)
		return 0;
	ag = bpf_map_lookup_elem(&active, &(__u32){0});
	d.gen = ag ? ag->gen : 0;
	d.verdict = st->userns == KA_USERNS_BLOCK ? KA_BLOCK : KA_AUDIT;
	claim = claim_scratch();
	if (!claim) {
		emit_bare(&d, &o);
	} else {
		emit(&d, &o, 0);
		release_scratch(claim);
	}
	return d.verdict == KA_BLOCK ? -KA_EPERM : 0;
}

/* Mounts change the paths of everything below them: the directory cache
 * starts over. */
SEC("lsm/sb_mount")
int BPF_PROG(ka_sb_mount, const char *dev_name, const struct path *path, const char *type, __u64 flags, void *data,
	     int ret)
{
	bump_mounts();
	return prev(ret);
}

SEC("lsm/sb_umount")
int BPF_PROG(ka_sb_umount, struct vfsmount *mnt, int flags, int ret)
{
	bump_mounts();
	return prev(ret);
}

SEC("lsm/move_mount")
int BPF_PROG(ka_move_mount, const struct path *from_path, const struct path *to_path, int ret)
{
	bump_mounts();
	return prev(ret);
}

SEC("lsm/sb_pivotroot")
int BPF_PROG(ka_sb_pivotroot, const struct path *old_path, const struct path *new_path, int ret)
{
	bump_mounts();
	return prev(ret);
}

/*
 * The hooks above move the epochs before the change is made: a walk that
 * runs between the hook and the change (d_move, the mount's attach) would
 * cache a path the change then alters. These run once it is done and move
 * the epochs again, so whatever was cached in between is stale. Mount moves
 * and pivot_root are left to their hooks (no function all kernels export
 * and keep out of line covers them; both need CAP_SYS_ADMIN in the mount
 * namespace). Tracing programs, not LSM ones: BPF-LSM has no hook after
 * the fact; the trampoline is the same.
 */
SEC("fexit/vfs_rename")
int BPF_PROG(ka_rename_done, struct renamedata *rd, int ret)
{
	if (ret)
		return 0; /* nothing moved */
	if (is_dir(BPF_CORE_READ(rd, old_dentry)) || is_dir(BPF_CORE_READ(rd, new_dentry)))
		bump_epoch();
	else
		bump_names();
	return 0;
}

SEC("fexit/path_mount")
int BPF_PROG(ka_mount_done, const char *dev_name, struct path *path, const char *type, unsigned long flags, void *data,
	     int ret)
{
	bump_mounts();
	return 0;
}

SEC("fexit/path_umount")
int BPF_PROG(ka_umount_done, struct path *path, int flags, int ret)
{
	bump_mounts();
	return 0;
}

static __always_inline int check_dir_entry(__u8 op, const struct path *dir, struct dentry *dentry)
{
	return check_path(KA_KIND_FILE, op, dir->mnt, dentry, NULL, 0);
}

SEC("lsm/path_unlink")
int BPF_PROG(ka_path_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	return ret ? prev(ret) : check_dir_entry(KA_OP_UNLINK, dir, dentry);
}

SEC("lsm/path_rmdir")
int BPF_PROG(ka_path_rmdir, const struct path *dir, struct dentry *dentry, int ret)
{
	bump_epoch(); /* the directory's dentry may be freed and reused */
	return ret ? prev(ret) : check_dir_entry(KA_OP_RMDIR, dir, dentry);
}

SEC("lsm/path_mkdir")
int BPF_PROG(ka_path_mkdir, const struct path *dir, struct dentry *dentry, __u64 mode, int ret)
{
	return ret ? prev(ret) : check_dir_entry(KA_OP_MKDIR, dir, dentry);
}

SEC("lsm/path_mknod")
int BPF_PROG(ka_path_mknod, const struct path *dir, struct dentry *dentry, __u64 mode, __u64 dev, int ret)
{
	return ret ? prev(ret) : check_dir_entry(KA_OP_CREATE, dir, dentry);
}

SEC("lsm/path_symlink")
int BPF_PROG(ka_path_symlink, const struct path *dir, struct dentry *dentry, const char *old_name, int ret)
{
	return ret ? prev(ret) : check_dir_entry(KA_OP_SYMLINK, dir, dentry);
}

SEC("lsm/path_link")
int BPF_PROG(ka_path_link, struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry, int ret)
{
	bump_names(); /* the file gets another name */
	if (ret)
		return prev(ret);
	/* A hard link must stay within one mount: the old name is on new_dir's. */
	ret = check_dir_entry(KA_OP_LINK, new_dir, old_dentry);
	return ret ? prev(ret) : check_dir_entry(KA_OP_LINK, new_dir, new_dentry);
}

SEC("lsm/path_rename")
int BPF_PROG(ka_path_rename, const struct path *old_dir, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry, __u64 flags, int ret)
{
	/* Renaming a directory moves every path below it; any rename gives
	 * a file another name. */
	if (is_dir(old_dentry) || is_dir(new_dentry))
		bump_epoch();
	else
		bump_names();
	if (ret)
		return prev(ret);
	ret = check_dir_entry(KA_OP_RENAME, old_dir, old_dentry);
	return ret ? prev(ret) : check_dir_entry(KA_OP_RENAME, new_dir, new_dentry);
}

SEC("lsm/path_truncate")
int BPF_PROG(ka_path_truncate, const struct path *path, int ret)
{
	return ret ? prev(ret) : check_path(KA_KIND_FILE, KA_OP_TRUNCATE, path->mnt, path->dentry, NULL, 0);
}

SEC("lsm/path_chmod")
int BPF_PROG(ka_path_chmod, const struct path *path, __u64 mode, int ret)
{
	return ret ? prev(ret) : check_path(KA_KIND_FILE, KA_OP_CHMOD, path->mnt, path->dentry, NULL, 0);
}

SEC("lsm/path_chown")
int BPF_PROG(ka_path_chown, const struct path *path, __u64 uid, __u64 gid, int ret)
{
	return ret ? prev(ret) : check_path(KA_KIND_FILE, KA_OP_CHOWN, path->mnt, path->dentry, NULL, 0);
}

/* Socket classification, as policy.Protocol.Matches in Go. */
#define KA_AF_INET 2
#define KA_AF_INET6 10
#define KA_AF_PACKET 17
#define KA_SOCK_STREAM 1
#define KA_SOCK_DGRAM 2
#define KA_SOCK_RAW 3
#define KA_SOCK_RDM 4
#define KA_SOCK_SEQPACKET 5
#define KA_SOCK_DCCP 6
#define KA_SOCK_PACKET 10

/* proto_mask is a global function, verified once on its own: its callers
 * see an unknown mask and their family, type and protocol unrefined by its
 * comparisons. Inlined, every combination those comparisons tell apart was
 * carried through the whole decision: 330,000-360,000 instructions for each
 * socket hook to verify, half of the enforcer's start-up under emulation. */
__attribute__((noinline)) __u32 proto_mask(__u32 family, __u32 type, __u32 proto)
{
	int inet = family == KA_AF_INET || family == KA_AF_INET6;
	__u32 m = 0;

	if (!inet && family != KA_AF_PACKET)
		return 0;
	m |= 1u << KA_PROTO_ALL;
	if (inet && type == KA_SOCK_STREAM && (proto == 0 || proto == 6 || proto == 262))
		m |= 1u << KA_PROTO_TCP;
	if (inet && type == KA_SOCK_DGRAM && (proto == 0 || proto == 17 || proto == 136))
		m |= 1u << KA_PROTO_UDP;
	if (family == KA_AF_INET && (type == KA_SOCK_DGRAM || type == KA_SOCK_RAW) && proto == 1)
		m |= 1u << KA_PROTO_ICMP;
	if (family == KA_AF_INET6 && (type == KA_SOCK_DGRAM || type == KA_SOCK_RAW) && proto == 58)
		m |= 1u << KA_PROTO_ICMPV6;
	if (type == KA_SOCK_RAW)
		m |= 1u << KA_PROTO_RAW;
	if (inet && proto == 132)
		m |= 1u << KA_PROTO_SCTP;
	if (inet && type == KA_SOCK_STREAM)
		m |= 1u << KA_PROTO_STREAM;
	if (inet && type == KA_SOCK_DGRAM)
		m |= 1u << KA_PROTO_DGRAM;
	if (inet && type == KA_SOCK_RDM)
		m |= 1u << KA_PROTO_RDM;
	if (inet && type == KA_SOCK_SEQPACKET)
		m |= 1u << KA_PROTO_SEQPACKET;
	if (inet && (type == KA_SOCK_DCCP || proto == 33))
		m |= 1u << KA_PROTO_DCCP;
	if (family == KA_AF_PACKET || type == KA_SOCK_PACKET)
		m |= 1u << KA_PROTO_PACKET;
	return m;
}

/* merge_ranked keeps, per action, the candidate of higher rank, then lower
 * rule ID: protocols are several nodes of one rank each ("all" below a
 * named protocol; fromSource above none), unlike a path's chain. */
static __always_inline void merge_ranked(struct walk_ctx *w, struct rule_val *v, __u32 rank)
{
	for (int a = 0; a < 3; a++) {
		__u32 id = v->rule[a][0];

		if (id && (!w->best[a] || rank > w->rank[a] || (rank == w->rank[a] && id < w->best[a]))) {
			w->best[a] = id;
			w->rank[a] = rank;
		}
	}
}

/* decide_net decides a socket operation on a socket matching the
 * protocols in mask. */
static __always_inline void decide_net(struct kind_cfg *cfg, __u8 op, __u32 mask, const struct task_src *src,
				       struct decision *d)
{
	struct walk_ctx *w = start_walk(d->gen, access_of(op), 0);
	struct rule_key k = {.type = KA_KEY_EXACT, .access = KA_ACC_NET};
	struct rule_val *v;

	if (!w)
		return;
	count(KA_CNT_DECISIONS);
	if (subject_unknown(cfg, src)) {
		unresolvable(cfg, KA_KIND_NETWORK, NULL, d);
		return;
	}
	for (__u32 p = KA_PROTO_ALL; p <= KA_PROTO_MAX; p++) {
		__u32 rank = p == KA_PROTO_ALL ? 0 : 2;

		if (!(mask & (1u << p)))
			continue;
		k.node = KA_PSEUDO_PROTO | p;
		k.source = 0;
		v = lookup_rules(w, &k);
		if (v)
			merge_ranked(w, v, rank);
		if (src->source) {
			k.source = src->source;
			v = lookup_rules(w, &k);
			if (v)
				merge_ranked(w, v, rank + 1);
		}
	}
	finish(w, cfg, KA_KIND_NETWORK, src->flags, d);
}

static __always_inline int check_net(__u8 op, __u32 family, __u32 type, __u32 proto)
{
	struct op_info o = {.kind = KA_KIND_NETWORK, .op = op, .res0 = family, .res1 = type << 16 | (proto & 0xffff)};
	__u32 mask = proto_mask(family, type, proto);
	struct kind_cfg *cfg;
	struct decision d;
	struct task_src src;
	__u64 *claim;

	if (!mask)
		return 0;
	cfg = begin(KA_KIND_NETWORK, &d);
	if (!cfg)
		return 0;
	claim = claim_scratch();
	if (!claim) {
		decide_busy(cfg, KA_KIND_NETWORK, &d);
		emit_bare(&d, &o);
		return deny(&d, KA_EACCES);
	}
	subject_source(d.gen, &src);
	decide_net(cfg, op, mask, &src, &d);
	if (d.verdict >= KA_AUDIT)
		emit(&d, &o, 0);
	release_scratch(claim);
	return deny(&d, KA_EACCES);
}

static __always_inline int check_sock(__u8 op, struct socket *sock)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);

	if (!sk)
		return 0;
	return check_net(op, BPF_CORE_READ(sk, __sk_common.skc_family), BPF_CORE_READ(sk, sk_type),
			 BPF_CORE_READ(sk, sk_protocol));
}

SEC("lsm/socket_create")
int BPF_PROG(ka_socket_create, int family, int type, int protocol, int kern, int ret)
{
	/* Sockets the kernel makes for itself are not a process's doing. */
	if (ret || kern)
		return prev(ret);
	return check_net(KA_OP_SOCKET_CREATE, family, type, protocol);
}

SEC("lsm/socket_connect")
int BPF_PROG(ka_socket_connect, struct socket *sock, void *address, int addrlen, int ret)
{
	return ret ? prev(ret) : check_sock(KA_OP_CONNECT, sock);
}

SEC("lsm/socket_bind")
int BPF_PROG(ka_socket_bind, struct socket *sock, void *address, int addrlen, int ret)
{
	return ret ? prev(ret) : check_sock(KA_OP_BIND, sock);
}

SEC("lsm/socket_accept")
int BPF_PROG(ka_socket_accept, struct socket *sock, struct socket *newsock, int ret)
{
	return ret ? prev(ret) : check_sock(KA_OP_ACCEPT, sock);
}

SEC("lsm/capable")
int BPF_PROG(ka_capable, const struct cred *cred, void *ns, int cap, unsigned int opts, int ret)
{
	struct op_info o = {.kind = KA_KIND_CAPABILITIES, .op = KA_OP_CAPABLE, .res0 = cap};
	struct kind_cfg *cfg;
	struct decision d;
	struct task_src src;
	__u64 *claim;

	if (ret)
		return prev(ret);
	cfg = begin(KA_KIND_CAPABILITIES, &d);
	if (!cfg)
		return 0;
	claim = claim_scratch();
	if (!claim) {
		decide_busy(cfg, KA_KIND_CAPABILITIES, &d);
		emit_bare(&d, &o);
		return deny(&d, KA_EACCES);
	}
	subject_source(d.gen, &src);
	decide_node(cfg, KA_KIND_CAPABILITIES, KA_OP_CAPABLE, KA_PSEUDO_CAP | (cap & 0xff), &src, &d);
	if (d.verdict >= KA_AUDIT)
		emit(&d, &o, 0);
	release_scratch(claim);
	/* capable() only asks whether the hook said 0: callers pick the
	 * errno (EPERM), so EACCES here never reaches user space. */
	return deny(&d, KA_EACCES);
}

#define KA_AT_FDCWD -100

static __always_inline unsigned long syscall_arg(struct pt_regs *regs, int n)
{
	switch (n) {
	case 0:
		return BPF_CORE_READ(regs, di);
	case 1:
		return BPF_CORE_READ(regs, si);
	case 2:
		return BPF_CORE_READ(regs, dx);
	case 3:
		return BPF_CORE_READ(regs, r10);
	case 4:
		return BPF_CORE_READ(regs, r8);
	}
	return BPF_CORE_READ(regs, r9);
}

/*
 * syscall_path makes the path argument absolute in paths[KA_PATH_OBJECT]
 * (string mode): a relative path is joined to the directory of dirfd or to
 * the working directory, and "." and ".." are resolved as strings. It
 * returns 0 when the call names no path.
 */
static __always_inline int syscall_path(struct pt_regs *regs, const struct sys_filter *f)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 exe_slot = KA_PATH_EXE, obj_slot = KA_PATH_OBJECT, zero = 0, end, start;
	struct path_buf *tmp = bpf_map_lookup_elem(&paths, &exe_slot);
	struct path_buf *obj = bpf_map_lookup_elem(&paths, &obj_slot);
	struct build_ctx *c = bpf_map_lookup_elem(&build_state, &zero);
	const char *up = (const char *)syscall_arg(regs, f->path_arg);
	long len;

	if (!tmp || !obj || !c || !up)
		return 0;
	len = bpf_probe_read_user_str(tmp->buf, KA_PATH_MAX, up);
	if (len <= 1)
		return 0;
	len = (len - 1) & (KA_PATH_MAX - 1);
	start = (KA_PATH_MAX - 1 - len) & (KA_PATH_MAX - 1);
	if (tmp->buf[0] != '/') {
		/* The base directory: dirfd's file, or the working directory. */
		struct file *base = NULL;
		int fd = f->dirfd_arg >= 0 ? (int)syscall_arg(regs, f->dirfd_arg) : KA_AT_FDCWD;

		if (fd == KA_AT_FDCWD) {
			collect_path(BPF_CORE_READ(task, fs, pwd.mnt), BPF_CORE_READ(task, fs, pwd.dentry), KA_PATH_OBJECT);
		} else {
			struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
			struct file **fds = BPF_CORE_READ(fdt, fd);

			if (fd >= 0 && fd < BPF_CORE_READ(fdt, max_fds))
				bpf_probe_read_kernel(&base, sizeof(base), &fds[fd & 0xffff]);
			collect_file(base, KA_PATH_OBJECT);
		}
		if (obj->flags & KA_EV_PATH_TRUNCATED || start < 2)
			return 1;
		/* The base's string ends where the argument, after a '/', starts. */
		end = start - 1;
		barrier_var(end);
		end &= KA_PATH_MAX - 1;
		obj->buf[end] = '/';
		c->slot = KA_PATH_OBJECT;
		c->k = 0;
		c->pos = start - 1;
		bpf_loop(KA_MAX_DEPTH, build_step, NULL, 0);
		end = c->pos & (KA_PATH_MAX - 1);
		if (obj->n == 0 && end > 0)
			end--; /* the base is "/" itself */
		barrier_var(end); /* keep the mask for older verifiers */
		end &= KA_PATH_MAX - 1;
		obj->buf[end] = '/';
		bpf_probe_read_kernel(&obj->buf[start], len, tmp->buf);
		split_string(KA_PATH_OBJECT, end);
		return 1;
	}
	bpf_probe_read_kernel(&obj->buf[start], len, tmp->buf);
	split_string(KA_PATH_OBJECT, start);
	return 1;
}

/* System call rules: audit-only, raised here for the listed calls. */
SEC("tp_btf/sys_enter")
int BPF_PROG(ka_sys_enter, struct pt_regs *regs, long id)
{
	struct op_info o = {.kind = KA_KIND_SYSCALL, .op = KA_OP_SYSCALL, .res0 = id};
	struct sys_filter *f;
	struct kind_cfg *cfg;
	struct decision d;
	struct task_src src;
	void *filters;
	__u32 nr = id, slot;
	__u64 *claim;
	int with_path = 0;

	cfg = begin(KA_KIND_SYSCALL, &d);
	if (!cfg || id < 0 || id > 0xffff)
		return 0;
	slot = d.gen & 1;
	filters = bpf_map_lookup_elem(&sysfilter_outer, &slot);
	if (!filters)
		return 0;
	f = bpf_map_lookup_elem(filters, &nr);
	if (!f || !f->flags)
		return 0;
	claim = claim_scratch();
	if (!claim) {
		decide_busy(cfg, KA_KIND_SYSCALL, &d);
		emit_bare(&d, &o);
		return 0;
	}
	subject_source(d.gen, &src);
	if ((f->flags & 2) && f->path_arg >= 0)
		with_path = syscall_path(regs, f);
	decide_syscall(cfg, nr, with_path, &src, &d);
	if (d.verdict >= KA_AUDIT)
		emit(&d, &o, with_path);
	release_scratch(claim);
	return 0;
}

/*
 * Test entry point: decides on an operation given in test_in, through the
 * same decision functions the hooks use. It runs with BPF_PROG_TEST_RUN on
 * any kernel with raw tracepoints, so the decision logic is tested without
 * BPF-LSM.
 */
struct test_input {
	__u8 path[KA_PATH_MAX];
	__u8 exe[KA_PATH_MAX];
	__u32 path_len;
	__u32 exe_len;
	__u32 kind;
	__u32 op;
	__u32 not_owner;
	__u32 flags;     /* object path flags */
	__u32 exe_flags; /* executable path flags */
	__u32 family;
	__u32 type;
	__u32 protocol;
	__u32 cap;
	__u32 sysnr;
	__u32 untrusted; /* the object is a file a local user may have written */
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

/* split_input copies a test path into paths[slot] and splits it. */
static __always_inline void split_input(const __u8 *src, __u32 len, __u32 slot)
{
	struct path_buf *pb = bpf_map_lookup_elem(&paths, &slot);
	__u32 start;

	if (!pb)
		return;
	if (len > KA_PATH_MAX - 1)
		len = KA_PATH_MAX - 1;
	start = (KA_PATH_MAX - 1 - len) & (KA_PATH_MAX - 1);
	bpf_probe_read_kernel(&pb->buf[start], len & (KA_PATH_MAX - 1), src);
	split_string(slot, start);
	if (!len)
		pb->n = 0;
}

SEC("raw_tp/ka_test_decide")
int ka_test_decide(void *ctx)
{
	__u32 zero = 0;
	struct test_input *in = bpf_map_lookup_elem(&test_in, &zero);
	struct test_output *out = bpf_map_lookup_elem(&test_out, &zero);
	struct path_buf *obj, *exe;
	struct kind_cfg *cfg;
	struct task_src src = {};
	struct walk_ctx *w;
	__u32 mask;

	if (!in || !out)
		return 0;
	out->d.verdict = KA_NOMATCH;
	out->d.rule = 0;
	split_input(in->path, in->path_len, KA_PATH_OBJECT);
	split_input(in->exe, in->exe_len, KA_PATH_EXE);
	obj = bpf_map_lookup_elem(&paths, &zero);
	exe = bpf_map_lookup_elem(&paths, &(__u32){KA_PATH_EXE});
	if (!obj || !exe)
		return 0;
	obj->flags = in->flags;
	exe->flags = in->exe_flags;
	out->obj_n = obj->n;
	out->exe_n = exe->n;
	cfg = begin(in->kind, &out->d);
	if (!cfg)
		return 0;
	w = start_walk(out->d.gen, 0, 0);
	if (!w)
		return 0;
	walk_source(w, &src);
	switch (in->kind) {
	case KA_KIND_NETWORK:
		mask = proto_mask(in->family, in->type, in->protocol);
		if (mask)
			decide_net(cfg, in->op, mask, &src, &out->d);
		break;
	case KA_KIND_CAPABILITIES:
		decide_node(cfg, in->kind, in->op, KA_PSEUDO_CAP | (in->cap & 0xff), &src, &out->d);
		break;
	case KA_KIND_SYSCALL:
		decide_syscall(cfg, in->sysnr, in->path_len > 0, &src, &out->d);
		break;
	default:
		decide_path(cfg, in->kind, in->op == KA_OP_EXEC_MAP && in->untrusted ? KA_OP_EXEC : in->op, in->not_owner,
			    &src, &out->d);
	}
	return 0;
}
