import CSocketShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A listening socket vpsgate opens itself (libfcgi's own opener exits the process on error).
struct ListeningSocket: ~Copyable {
    let descriptor: Int32
    /// The unix socket's path, removed again at shutdown.
    let path: String?

    /// Binds and listens on `address`; a unix socket gets `mode` (and `group`) before anyone can connect.
    init(address: FastCGIServer.Address, backlog: Int32) throws(FastCGIError) {
        switch address {
        case .unix(let path, let mode, let group):
            try self.init(unixPath: path, mode: mode, group: group, backlog: backlog)
        case .tcp(let host, let port):
            try self.init(host: host, port: port, backlog: backlog)
        }
    }

    private init(unixPath: String, mode: Int, group: String?, backlog: Int32) throws(FastCGIError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(unixPath.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else {
            throw FastCGIError(.invalidAddress, "unix socket path is longer than \(capacity - 1) bytes: \(unixPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        try Self.removeStaleSocket(at: unixPath, address: address)

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FastCGIError(.socket, "socket(AF_UNIX)", errno: errno) }
        // Nobody may connect between bind() and chmod(): bind under a umask that leaves only the owner.
        let previousMask = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        let bindErrno = errno
        umask(previousMask)
        guard bound == 0 else {
            close(fd)
            throw FastCGIError(.socket, "bind(\(unixPath))", errno: bindErrno)
        }
        if let group {
            guard let entry = getgrnam(group) else {
                close(fd)
                unlink(unixPath)
                throw FastCGIError(.invalidAddress, "unknown group \(group) for the socket")
            }
            guard chown(unixPath, uid_t.max, entry.pointee.gr_gid) == 0 else {
                let code = errno
                close(fd)
                unlink(unixPath)
                throw FastCGIError(.socket, "chown(\(unixPath), group \(group))", errno: code)
            }
        }
        guard chmod(unixPath, mode_t(mode)) == 0 else {
            let code = errno
            close(fd)
            unlink(unixPath)
            throw FastCGIError(.socket, "chmod(\(unixPath))", errno: code)
        }
        guard listen(fd, backlog) == 0 else {
            let code = errno
            close(fd)
            unlink(unixPath)
            throw FastCGIError(.socket, "listen(\(unixPath))", errno: code)
        }
        descriptor = fd
        path = unixPath
    }

    private init(host: String, port: Int, backlog: Int32) throws(FastCGIError) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw FastCGIError(.invalidAddress, "not an IPv4 address: \(host)")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FastCGIError(.socket, "socket(AF_INET)", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let code = errno
            close(fd)
            throw FastCGIError(.socket, "bind/listen(\(host):\(port))", errno: code)
        }
        descriptor = fd
        path = nil
    }

    /// A socket file left by a process that died is removed; one that still accepts is an error.
    private static func removeStaleSocket(at path: String, address: sockaddr_un) throws(FastCGIError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw FastCGIError(.invalidAddress, "\(path) exists and is not a socket")
        }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(probe) }
        var target = address
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if connected == 0 {
            throw FastCGIError(.addressInUse, "another process is serving on \(path)")
        }
        unlink(path)
    }

    /// Makes a TCP listener drop every segment from outside `networks` (a socket filter),
    /// so such a peer never completes a connection and nothing it sends is read.
    func allowOnly(_ networks: [(network: UInt32, mask: UInt32)]) throws(FastCGIError) {
        guard !networks.isEmpty else {
            throw FastCGIError(.invalidAddress, "a TCP listener needs the networks of the peers that may connect")
        }
        let addresses = networks.map(\.network)
        let masks = networks.map(\.mask)
        guard vpsgate_allow_peers(descriptor, addresses, masks, Int32(networks.count)) == 0 else {
            throw FastCGIError(.socket, "attaching the peer filter", errno: errno)
        }
    }

    /// Receive and send timeouts on the listener (accept() then wakes up empty-handed every
    /// `milliseconds`; accepted TCP connections inherit both).
    func setDeadline(milliseconds: Int) {
        Self.setDeadline(on: descriptor, milliseconds: milliseconds)
    }

    /// Receive and send timeouts on one socket: a silent peer fails the read or write.
    static func setDeadline(on descriptor: Int32, milliseconds: Int) {
        var timeout = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        let size = socklen_t(MemoryLayout<timeval>.size)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, size)
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, size)
    }

    /// Turns new connections away while those already queued can still be accepted: nginx
    /// has written requests on them. A unix socket's file is removed, so a connect() by path
    /// fails at once; a TCP listener ignores new SYNs (a socket filter), so a connect() waits
    /// and is refused on its next try, once the listener is shut down. Either way nginx moves
    /// on to another instance. Returns the errno when the filter could not be attached.
    func closeToNewConnections() -> Int32? {
        if let path {
            unlink(path)
            return nil
        }
        return vpsgate_ignore_new_connections(descriptor) == 0 ? nil : errno
    }

    /// Whether a connection waits in the listen queue.
    var hasQueuedConnection: Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLIN) != 0
    }

    /// Stops accepting: accept() fails in every worker from now on, and whatever is still
    /// queued is dropped.
    func stopAccepting() {
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    deinit {
        close(descriptor)
    }
}
