#include "socket_shim.h"

#include <errno.h>

#ifdef __linux__
#include <linux/filter.h>
#include <stdlib.h>
#include <sys/socket.h>

int vpsgate_allow_peers(int descriptor, const uint32_t *networks, const uint32_t *masks, int count) {
    // Four instructions a network (load the source address, mask it, compare, keep), then drop.
    if (count < 1 || count > 1000) {
        errno = EINVAL;
        return -1;
    }
    int length = 4 * count + 1;
    struct sock_filter *code = calloc((size_t)length, sizeof *code);
    if (code == NULL) return -1;
    for (int i = 0; i < count; i++) {
        // A TCP socket's filter sees the segment from its TCP header; the IPv4 header is
        // reached through SKF_NET_OFF, and its source address is at byte 12.
        code[4 * i] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12);
        code[4 * i + 1] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, masks[i]);
        code[4 * i + 2] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, networks[i] & masks[i], 0, 1);
        code[4 * i + 3] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xFFFFFFFF);  // keep
    }
    code[length - 1] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);  // drop
    struct sock_fprog program = {.len = (unsigned short)length, .filter = code};
    int result = setsockopt(descriptor, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program);
    int saved = errno;
    free(code);
    errno = saved;
    return result;
}

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

int vpsgate_allow_peers(int descriptor, const uint32_t *networks, const uint32_t *masks, int count) {
    (void)descriptor, (void)networks, (void)masks, (void)count;
    errno = ENOTSUP;
    return -1;
}
#endif
