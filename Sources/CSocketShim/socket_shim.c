#include "socket_shim.h"

#include <errno.h>

#ifdef __linux__
#include <linux/filter.h>
#include <sys/socket.h>

int vpsgate_ignore_new_connections(int descriptor) {
    // A TCP socket's filter sees the segment from its TCP header: byte 13 holds the flags.
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),          // SYN | ACK
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),    // SYN alone: a new connection
        BPF_STMT(BPF_RET | BPF_K, 0),                       // drop it
        BPF_STMT(BPF_RET | BPF_K, 0xFFFFFFFF),              // keep everything else
    };
    struct sock_fprog program = {.len = sizeof code / sizeof code[0], .filter = code};
    return setsockopt(descriptor, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program);
}
#else
int vpsgate_ignore_new_connections(int descriptor) {
    (void)descriptor;
    errno = ENOTSUP;
    return -1;
}
#endif
