#ifndef VPSGATE_SOCKET_SHIM_H
#define VPSGATE_SOCKET_SHIM_H

/// Makes a listening TCP socket ignore new connection attempts (segments with SYN and
/// without ACK) with a classic BPF socket filter, while the connections already queued,
/// or already past their SYN, still complete and can be accepted. Clients see no answer
/// to their SYN; once the listener closes, their retransmission is refused.
/// Returns 0, or -1 with errno set (and on systems without socket filters).
int vpsgate_ignore_new_connections(int descriptor);

#endif
