#ifndef FWCTL_CLDNS_SHIM_H
#define FWCTL_CLDNS_SHIM_H
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ldns/ldns.h>
#endif
