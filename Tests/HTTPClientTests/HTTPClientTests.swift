import Foundation
import HTTPClient
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct HTTPClientTests {
    /// A loopback port with nothing listening: bound, then closed.
    func closedPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                _ = bind(fd, pointer, length)
                return getsockname(fd, pointer, &length)
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func connectionRefusedProvesTheRequestWasNotSent() {
        HTTPClient.initializeLibrary()
        let client = HTTPClient()
        let result = client.perform(.init(method: "POST", url: "https://127.0.0.1:\(closedPort())/x", body: []))
        guard case .failure(let error) = result else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(error.code == .couldNotConnect)
        #expect(error.requestMayHaveBeenSent == false)
    }

    /// A plain-HTTP loopback server that answers the first request of its first connection
    /// with a kept-alive 200, then reads every later request and closes without answering:
    /// a kept-alive connection that dies as the next request arrives. Counts what it read.
    final class DroppingServer: Sendable {
        let port: Int
        private let listener: Int32
        let received = Mutex<[String]>([])

        init() {
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    _ = bind(listener, pointer, length)
                    return getsockname(listener, pointer, &length)
                }
            }
            listen(listener, 8)
            self.listener = listener
            port = Int(UInt16(bigEndian: address.sin_port))
        }

        /// Serves `connections` connections on a thread of its own, then stops.
        func serve(connections: Int) -> Thread {
            let thread = Thread { [self] in
                var answered = false
                for _ in 0..<connections {
                    let connection = accept(listener, nil, nil)
                    guard connection >= 0 else { return }
                    var timeout = timeval(tv_sec: 2, tv_usec: 0)
                    setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    while let line = readRequestLine(connection) {
                        received.withLock { $0.append(line) }
                        guard !answered else { break }
                        answered = true
                        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
                        _ = answer.withCString { send(connection, $0, strlen($0), 0) }
                    }
                    close(connection)
                }
                close(listener)
            }
            thread.start()
            return thread
        }

        /// Reads one request (headers and a Content-Length body); its first line, or nil at EOF.
        private func readRequestLine(_ connection: Int32) -> String? {
            var data: [UInt8] = []
            var byte: UInt8 = 0
            while !(data.count >= 4 && data.suffix(4).elementsEqual(Array("\r\n\r\n".utf8))) {
                guard recv(connection, &byte, 1, 0) == 1 else { return nil }
                data.append(byte)
            }
            let head = String(decoding: data, as: UTF8.self)
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            for _ in 0..<length { guard recv(connection, &byte, 1, 0) == 1 else { return nil } }
            return String(head.split(separator: "\r\n")[0])
        }
    }

    func postsReceived(freshConnection: Bool) -> Int {
        HTTPClient.initializeLibrary()
        let server = DroppingServer()
        let thread = server.serve(connections: 3)
        let client = HTTPClient()
        let url = "http://127.0.0.1:\(server.port)"
        guard case .success(let first) = client.perform(.init(method: "GET", url: url + "/first", timeoutMilliseconds: 3000)) else {
            Issue.record("the first request failed")
            return -1
        }
        #expect(first.status == 200)
        let second = client.perform(.init(method: "POST", url: url + "/recreate", body: Array("{}".utf8), timeoutMilliseconds: 3000,
                                          freshConnection: freshConnection))
        if case .success(let response) = second { Issue.record("expected the dropped request to fail, got \(response.status)") }
        // Unblock the server's last accept, if libcurl made fewer connections than it waits for.
        _ = client.perform(.init(method: "GET", url: url + "/done", timeoutMilliseconds: 500, freshConnection: true))
        _ = client.perform(.init(method: "GET", url: url + "/done", timeoutMilliseconds: 500, freshConnection: true))
        while !thread.isFinished { usleep(10_000) }
        return server.received.withLock { $0.filter { $0.hasPrefix("POST /recreate") }.count }
    }

    /// libcurl's own resend on a dead kept-alive connection: this is why vpsgate asks for a
    /// new connection for requests that are not repeat-safe (the second case shows the
    /// resend is real, so the first can fail).
    @Test func aRequestOnAFreshConnectionIsNeverResentByLibcurl() {
        #expect(postsReceived(freshConnection: true) == 1)
        #expect(postsReceived(freshConnection: false) == 2)
    }
}
