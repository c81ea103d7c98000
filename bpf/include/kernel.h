/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The few kernel types our programs read, declared with
 * preserve_access_index so libbpf relocates every field access against the
 * running kernel's BTF (CO-RE). Only the fields used are declared; their
 * offsets here do not matter. Keeping this small instead of a 3 MB vmlinux.h
 * makes it obvious what kernel internals the programs depend on.
 */
#ifndef KA_KERNEL_H
#define KA_KERNEL_H

#include <linux/types.h>
#include <linux/bpf.h>

#define __ka_core __attribute__((preserve_access_index))

typedef struct {
	int counter;
} atomic_t;

typedef struct {
	__u32 val;
} kuid_t;

struct qstr {
	union {
		struct {
			__u32 hash;
			__u32 len;
		};
		__u64 hash_len;
	};
	const unsigned char *name;
} __ka_core;

struct list_head {
	struct list_head *next;
} __ka_core;

struct hlist_node {
	struct hlist_node *next;
} __ka_core;

struct hlist_head {
	struct hlist_node *first;
} __ka_core;

struct super_block {
	unsigned long s_magic;
	struct dentry *s_root;
	struct user_namespace *s_user_ns; /* the user namespace that mounted it */
	struct list_head s_mounts; /* every mount of it, in any namespace */
} __ka_core;

struct inode {
	unsigned short i_mode;
	kuid_t i_uid;
	unsigned int i_flags;
	unsigned int i_nlink; /* in an anonymous union; CO-RE finds it by name */
	struct super_block *i_sb;
	struct hlist_head i_dentry; /* its dentries (aliases) */
} __ka_core;

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
	struct super_block *d_sb;
	union {
		struct hlist_node d_alias; /* in its inode's i_dentry */
	} d_u;
} __ka_core;

struct vfsmount {
	struct dentry *mnt_root;
	struct super_block *mnt_sb;
} __ka_core;

struct user_namespace;

struct mnt_namespace {
	struct user_namespace *user_ns;
} __ka_core;

/* struct mount is private to fs/, but it is in BTF: it links a vfsmount to
 * its parent mount and mount point, which is how a path crosses mounts, and
 * says which namespace it is in. */
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
	struct list_head mnt_instance; /* in its super_block's s_mounts */
	struct mnt_namespace *mnt_ns;
	int mnt_id;
} __ka_core;

/* Since 6.17 a super block's mounts are a list of their own: s_mounts is
 * its first, mnt_next_for_sb the next (CO-RE flavours: the programs read
 * whichever the running kernel has). */
struct super_block___mountlist {
	struct mount *s_mounts;
} __ka_core;

struct mount___mountlist {
	struct mount *mnt_next_for_sb;
} __ka_core;

struct nsproxy {
	struct mnt_namespace *mnt_ns;
} __ka_core;

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __ka_core;

/* vfs_rename's argument (5.12+). */
struct renamedata {
	struct dentry *old_dentry;
	struct dentry *new_dentry;
} __ka_core;

struct file {
	struct path f_path;
	struct inode *f_inode;
	unsigned int f_flags;
	unsigned int f_mode;
	void *private_data; /* a socket's struct socket */
} __ka_core;

struct mm_struct {
	struct file *exe_file;
} __ka_core;

/* The capability sets: a u64 since 6.3, two u32 before; 64 bits either
 * way, read whole (a composite field relocates whatever its members). */
typedef struct {
	__u64 val;
} kernel_cap_t;

struct cred {
	kuid_t uid;
	kuid_t euid;
	kuid_t fsuid;
	kernel_cap_t cap_effective;
	struct user_namespace *user_ns;
} __ka_core;

struct tty_struct {
	char name[64];
} __ka_core;

struct signal_struct {
	atomic_t live;
	struct tty_struct *tty;
} __ka_core;

struct fs_struct {
	struct path root;
	struct path pwd;
} __ka_core;

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __ka_core;

struct files_struct {
	struct fdtable *fdt;
} __ka_core;

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	const struct cred *real_cred; /* its own, not one a file system put on for it */
	const struct cred *cred;
	struct signal_struct *signal;
	struct fs_struct *fs;
	struct files_struct *files;
	struct nsproxy *nsproxy;
	int exit_code;
	char comm[16];
} __ka_core;

/* The x86-64 register frame a syscall enters with. */
struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long r10;
	unsigned long r8;
	unsigned long r9;
	unsigned long orig_ax; /* the system call number, at exit too */
} __ka_core;

struct linux_binprm {
	struct file *file;
} __ka_core;

/* vm_flags is in an anonymous union since 6.3; CO-RE finds it by name. */
struct anon_vma;

struct vm_area_struct {
	unsigned long vm_flags;
	struct file *vm_file;
	struct anon_vma *anon_vma; /* set once a private page was copied (written) */
} __ka_core;

struct in6_addr {
	__u8 s6_addr[16];
};

/* The address fields sit in anonymous unions in the kernel; CO-RE finds
 * them by name. */
struct sock_common {
	__u32 skc_daddr;     /* IPv4 peer, network order */
	__u32 skc_rcv_saddr; /* IPv4 local */
	__u16 skc_dport;     /* peer port, network order */
	__u16 skc_num;       /* local port, host order */
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __ka_core;

struct sock {
	struct sock_common __sk_common;
	__u16 sk_type;
	__u16 sk_protocol;
} __ka_core;

struct socket {
	struct sock *sk;
} __ka_core;

#endif /* KA_KERNEL_H */
