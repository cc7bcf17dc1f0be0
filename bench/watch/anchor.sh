#!/usr/bin/env bash
# The anchor of bench/watch: the cron-style refresh people run today to keep an allow-list
# set true to DNS. For each name one `dig +short` process (A and AAAA in one invocation,
# the resolver from resolv.conf), and for each address it prints one `nft add element`
# process with a fixed timeout (two TTLs, as fwctl gives). Run inside the sandbox:
#   ip netns exec SANDBOX bash anchor.sh TABLE NAMES_FILE
# TABLE is a scratch inet table holding sets v4 (ipv4_addr) and v6 (ipv6_addr), both with
# flags timeout; adding an element that exists renews its timeout (Linux 6.10 and later).
set -u
table=$1
names=$2
timeout=${ANCHOR_TIMEOUT:-600s}
while read -r name; do
    for a in $(dig +short "$name" A "$name" AAAA); do
        case $a in
            *:*) nft add element inet "$table" v6 "{ $a timeout $timeout }" ;;
            *[0-9].*[0-9].*[0-9].*[0-9]) nft add element inet "$table" v4 "{ $a timeout $timeout }" ;;
        esac
    done
done < "$names"
