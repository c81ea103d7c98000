/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Paths as the kernel's d_path sees them, from any program type
 * (bpf_d_path is limited to sleepable LSM programs and a few hooks): walk the
 * dentries and mounts of a (mount, dentry) pair up to the root of the mount
 * tree. The walk only records dentry pointers and adds up the length; names
 * are read later, one at a time, as the trie walk needs them, so an open that
 * no rule can match pays for a few pointer reads and one lookup, not for a
 * path string. Loops are bpf_loop, so any depth up to KA_MAX_DEPTH costs no
 * verifier complexity.
 */
#ifndef KA_PATH_H
#define KA_PATH_H

#include "common.h"

enum {
	KA_PATH_OBJECT = 0, /* what the operation is done to */
	KA_PATH_EXE = 1,    /* the executable of the process doing it */
	KA_PATH_SLOTS = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KA_PATH_SLOTS);
	__type(key, __u32);
	__type(value, struct path_buf);
} paths SEC(".maps");

/* Loop state lives in a per-CPU map, not on the stack: the verifier tracks
 * stack scalars precisely across bpf_loop iterations and would explore every
 * iteration separately, while map contents are opaque to it. */
struct collect_ctx {
	__u64 dentry;   /* struct dentry *, read only through BPF_CORE_READ */
	__u64 mnt;      /* struct mount * */
	__u64 mnt_root; /* struct dentry * */
	__u32 slot;
	__u32 n;
	__u32 total; /* string length so far */
	__u32 done;
	__u32 truncated;
	__u32 detached;
	__u64 number; /* see as_number */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct collect_ctx);
} collect_state SEC(".maps");

static long collect_step(__u32 i, void *unused)
{
	__u32 zero = 0, len;
	struct collect_ctx *c = bpf_map_lookup_elem(&collect_state, &zero);
	struct path_buf *pb;
	struct dentry *d, *up;

	if (!c)
		return 1;
	pb = bpf_map_lookup_elem(&paths, &c->slot);
	if (!pb)
		return 1;
	d = (struct dentry *)c->dentry;
	if (c->dentry == c->mnt_root) {
		struct mount *mnt = (struct mount *)c->mnt;
		struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);

		if (!parent || parent == mnt) {
			c->done = 1;
			return 1;
		}
		c->dentry = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		c->mnt = (__u64)parent;
		c->mnt_root = (__u64)BPF_CORE_READ(parent, mnt.mnt_root);
		return 0;
	}
	up = BPF_CORE_READ(d, d_parent);
	len = BPF_CORE_READ(d, d_name.len);
	if (!up || up == d) {
		/* Not reachable from the root of its mount: a pseudo file like a
		 * memfd, or a detached tree. Its name alone identifies it, as
		 * d_path does ("memfd:x"), and no path rule can match it. */
		c->done = 1;
		c->detached = 1;
		if (c->n == 0 && len > 0 && len < KA_NAME_LEN) {
			pb->dent[0] = (__u64)d;
			c->n = 1;
		}
		return 1;
	}
	c->total += len + 1;
	if (len == 0 || len >= KA_NAME_LEN || c->total > KA_PATH_MAX - 1 || c->n >= KA_MAX_DEPTH) {
		c->truncated = 1;
		return 1;
	}
	pb->dent[c->n & (KA_MAX_DEPTH - 1)] = (__u64)d;
	c->n++;
	c->dentry = (__u64)up;
	return 0;
}

/* as_number returns p as a plain number. A pointer the verifier types (a
 * hook's argument, or a field read from one) allows no arithmetic, not even
 * hashing; stored in a map and read back, it is only a number. */
static __always_inline __u64 as_number(struct collect_ctx *c, const void *p)
{
	c->number = (__u64)p;
	asm volatile("" ::: "memory");
	return c->number;
}

/* collect_path fills paths[slot] with the components of (vfs, dentry). A
 * NULL dentry gives an empty path. */
static __always_inline struct path_buf *collect_path(struct vfsmount *vfs, struct dentry *dentry, __u32 slot)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&paths, &slot);
	struct collect_ctx *c = bpf_map_lookup_elem(&collect_state, &zero);

	if (!pb || !c)
		return NULL;
	pb->n = 0;
	pb->flags = 0;
	pb->mode = KA_PB_DENTRY;
	pb->have_string = 0;
	if (!vfs || !dentry) {
		pb->buf[KA_PATH_MAX - 1] = 0;
		pb->start = KA_PATH_MAX - 1;
		pb->have_string = 1; /* the empty string: no path at all */
		return pb;
	}
	c->dentry = (__u64)dentry;
	c->mnt = as_number(c, vfs) - bpf_core_field_offset(struct mount, mnt);
	c->mnt_root = (__u64)BPF_CORE_READ(vfs, mnt_root);
	c->slot = slot;
	c->n = 0;
	c->total = 0;
	c->done = 0;
	c->truncated = 0;
	c->detached = 0;
	bpf_loop(KA_MAX_DEPTH + KA_MAX_MOUNTS, collect_step, NULL, 0);
	if (!c->done || c->truncated) {
		pb->flags = KA_EV_PATH_TRUNCATED;
		count(KA_CNT_PATH_TRUNCATED);
	}
	if (c->detached)
		pb->flags |= KA_EV_DETACHED;
	pb->n = c->n;
	return pb;
}

static __always_inline struct path_buf *collect_file(struct file *f, __u32 slot)
{
	if (!f)
		return collect_path(NULL, NULL, slot);
	return collect_path(BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry), slot);
}

/* component_len is the length read_component would return for component
 * k, without reading the name. */
static __always_inline __u32 component_len(struct path_buf *pb, __u32 k)
{
	struct dentry *d;
	__u32 len;

	k &= KA_MAX_DEPTH - 1;
	if (pb->mode == KA_PB_STRING)
		return pb->len[k] & (KA_NAME_LEN - 1);
	d = (struct dentry *)pb->dent[k];
	len = BPF_CORE_READ(d, d_name.len);
	return len < KA_NAME_LEN ? len : 0;
}

/* read_component copies component k (0 is the leaf) into dst, zero padded
 * to KA_NAME_LEN, and returns its length. */
static __always_inline __u32 read_component(struct path_buf *pb, __u32 k, __u8 *dst)
{
	__u32 len;

	__builtin_memset(dst, 0, KA_NAME_LEN);
	k &= KA_MAX_DEPTH - 1;
	if (pb->mode == KA_PB_STRING) {
		len = pb->len[k] & (KA_NAME_LEN - 1);
		bpf_probe_read_kernel(dst, len, &pb->buf[pb->off[k] & (KA_PATH_MAX - 1)]);
		return len;
	}
	struct dentry *d = (struct dentry *)pb->dent[k];

	len = BPF_CORE_READ(d, d_name.len);
	if (len >= KA_NAME_LEN)
		return 0;
	barrier_var(len);
	len &= KA_NAME_LEN - 1;
	bpf_probe_read_kernel(dst, len, BPF_CORE_READ(d, d_name.name));
	return len;
}

struct build_ctx {
	__u32 slot;
	__u32 k;   /* next component, counting up from the leaf */
	__u32 pos; /* the string so far starts at buf[pos] */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct build_ctx);
} build_state SEC(".maps");

static long build_step(__u32 i, void *unused)
{
	__u32 zero = 0, len;
	struct build_ctx *c = bpf_map_lookup_elem(&build_state, &zero);
	struct path_buf *pb;
	struct dentry *d;

	if (!c)
		return 1;
	pb = bpf_map_lookup_elem(&paths, &c->slot);
	if (!pb || c->k >= pb->n)
		return 1;
	d = (struct dentry *)pb->dent[c->k & (KA_MAX_DEPTH - 1)];
	len = BPF_CORE_READ(d, d_name.len);
	if (len >= KA_NAME_LEN || len + 1 > c->pos)
		return 1;
	c->pos -= len;
	barrier_var(len);
	len &= KA_NAME_LEN - 1;
	bpf_probe_read_kernel(&pb->buf[c->pos & (KA_PATH_MAX - 1)], len, BPF_CORE_READ(d, d_name.name));
	c->pos--;
	pb->buf[c->pos & (KA_PATH_MAX - 1)] = '/';
	c->k++;
	return 0;
}

/* path_string builds the path string of paths[slot] if it is not there yet.
 * For a path cut short, it is the part that was collected, leaf side. */
static __always_inline struct path_buf *path_string(__u32 slot)
{
	__u32 zero = 0, pos;
	struct path_buf *pb = bpf_map_lookup_elem(&paths, &slot);
	struct build_ctx *c = bpf_map_lookup_elem(&build_state, &zero);

	if (!pb || !c)
		return NULL;
	if (pb->have_string)
		return pb;
	pb->buf[KA_PATH_MAX - 1] = 0;
	c->slot = slot;
	c->k = 0;
	c->pos = KA_PATH_MAX - 1;
	bpf_loop(KA_MAX_DEPTH, build_step, NULL, 0);
	pos = c->pos & (KA_PATH_MAX - 1);
	if (pb->n == 0 && pos > 0) {
		/* The root directory itself. The barrier keeps clang from
		 * dropping the mask, which older verifiers need to see. */
		pos--;
		barrier_var(pos);
		pos &= KA_PATH_MAX - 1;
		pb->buf[pos] = '/';
	} else if ((pb->flags & KA_EV_DETACHED) && pos < KA_PATH_MAX - 1) {
		pos++; /* a name, not a path: no leading '/' */
	}
	pb->start = pos;
	pb->have_string = 1;
	return pb;
}

/* copy_string copies the string path_string built in pb to dst (at least
 * KA_PATH_MAX bytes) and returns its length, without the NUL. */
static __always_inline __u32 copy_string(__u8 *dst, const struct path_buf *pb)
{
	__u32 len = path_len(pb);

	barrier_var(len);
	len &= KA_PATH_MAX - 1;
	bpf_probe_read_kernel(dst, len, &pb->buf[pb->start & (KA_PATH_MAX - 1)]);
	return len;
}

/*
 * Splitting a path string (string mode): the syscall hook builds one from a
 * user's argument, and the test program from its input. "." components are
 * dropped and ".." removes the component before it, as path lookup would
 * (without following symbolic links, which a string does not know of).
 */
struct split_ctx {
	__u32 slot;
	__u32 lo;   /* index of the leading '/' */
	__u32 i;    /* one past the next character to look at, counting down */
	__u32 end;  /* one past the last character of the current component */
	__u32 n;
	__u32 skip; /* components still to drop for ".." seen to their right */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct split_ctx);
} split_state SEC(".maps");

static long split_step(__u32 unused, void *unused_ctx)
{
	__u32 zero = 0, i, len, start;
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
	start = i + 1;
	len = c->end > start ? c->end - start : 0;
	c->end = i;
	if (len == 0 || (len == 1 && pb->buf[start & (KA_PATH_MAX - 1)] == '.'))
		return 0;
	if (len == 2 && pb->buf[start & (KA_PATH_MAX - 1)] == '.' && pb->buf[(start + 1) & (KA_PATH_MAX - 1)] == '.') {
		c->skip++;
		return 0;
	}
	if (c->skip) {
		c->skip--;
		return 0;
	}
	if (len >= KA_NAME_LEN || c->n >= KA_MAX_DEPTH) {
		pb->flags |= KA_EV_PATH_TRUNCATED;
		return 1;
	}
	pb->off[c->n & (KA_MAX_DEPTH - 1)] = start;
	pb->len[c->n & (KA_MAX_DEPTH - 1)] = len;
	c->n++;
	return 0;
}

/* split_string lays out the string at paths[slot].buf[start..KA_PATH_MAX-1)
 * in string mode. */
static __always_inline void split_string(__u32 slot, __u32 start)
{
	struct path_buf *pb = bpf_map_lookup_elem(&paths, &slot);
	__u32 zero = 0;
	struct split_ctx *c = bpf_map_lookup_elem(&split_state, &zero);

	if (!pb || !c)
		return;
	pb->flags = 0;
	pb->mode = KA_PB_STRING;
	pb->have_string = 1;
	pb->start = start & (KA_PATH_MAX - 1);
	pb->buf[KA_PATH_MAX - 1] = 0;
	c->slot = slot;
	c->n = 0;
	c->skip = 0;
	c->lo = pb->start;
	c->i = KA_PATH_MAX - 1;
	c->end = KA_PATH_MAX - 1;
	bpf_loop(KA_PATH_MAX, split_step, NULL, 0);
	pb->n = c->n;
}

#endif /* KA_PATH_H */
