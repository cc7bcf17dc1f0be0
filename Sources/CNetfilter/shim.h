#ifndef FWCTL_CNETFILTER_SHIM_H
#define FWCTL_CNETFILTER_SHIM_H
/* glibc's socket and inet headers first: the linux/netfilter headers included before
   them redefine types and break the Clang module. */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/batch.h>
#include <libnftnl/table.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>

/* setns(2) and CLONE_NEWNET are behind _GNU_SOURCE in glibc, which a Clang module cannot
   turn on for headers already imported elsewhere; declare what fwctl needs here. */
extern int setns(int fd, int nstype);
static inline int fwctl_setns_net(int fd) { return setns(fd, 0x40000000 /* CLONE_NEWNET */); }
#endif
