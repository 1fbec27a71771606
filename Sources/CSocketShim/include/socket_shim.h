#ifndef VPSGATE_SOCKET_SHIM_H
#define VPSGATE_SOCKET_SHIM_H

#include <stdint.h>

/// Makes a listening TCP socket ignore new connection attempts (segments with SYN and
/// without ACK) with a classic BPF socket filter, while the connections already queued,
/// or already past their SYN, still complete and can be accepted. Clients see no answer
/// to their SYN; once the listener closes, their retransmission is refused.
/// Returns 0, or -1 with errno set (and on systems without socket filters).
int vpsgate_ignore_new_connections(int descriptor);

/// Makes a listening TCP (IPv4) socket drop every segment whose source address is in none
/// of `count` networks (`networks[i]` under `masks[i]`, both in network byte order as read
/// from the header, i.e. host-order integers of the dotted quad). A peer outside them
/// never completes a connection, so nothing it sends is read. Children accepted from the
/// socket inherit the filter. Returns 0, or -1 with errno set.
int vpsgate_allow_peers(int descriptor, const uint32_t *networks, const uint32_t *masks, int count);

#endif
