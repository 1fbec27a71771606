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

    /// The POSTs the server read when a client sends one after a kept-alive GET. With
    /// `share`, the clients share TLS sessions and names; with `fromAnotherClient`, the POST
    /// goes through a second client of the share, which has no connection of its own.
    func postsReceived(freshConnection: Bool, share: HTTPShare? = nil, fromAnotherClient: Bool = false) -> Int {
        HTTPClient.initializeLibrary()
        let server = DroppingServer()
        let thread = server.serve(connections: 3)
        let client = HTTPClient(share: share)
        let poster = fromAnotherClient ? HTTPClient(share: share) : client
        let url = "http://127.0.0.1:\(server.port)"
        guard case .success(let first) = client.perform(.init(method: "GET", url: url + "/first", timeoutMilliseconds: 3000)) else {
            Issue.record("the first request failed")
            return -1
        }
        #expect(first.status == 200)
        let second = poster.perform(.init(method: "POST", url: url + "/recreate", body: Array("{}".utf8), timeoutMilliseconds: 3000,
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

    /// The same with clients sharing TLS sessions and names (HTTPShare), as vpsgate's
    /// Hostinger clients do: the POST on a new connection, closed under it, is still sent
    /// once (and libcurl's resend on a reused one is still real); and a share lends no
    /// connection: another client's kept-alive one is never used for a POST.
    @Test func aSharedSessionCacheNeverLeadsToASecondSend() {
        let share = HTTPShare()
        #expect(postsReceived(freshConnection: true, share: share) == 1)
        #expect(postsReceived(freshConnection: false, share: share) == 2)
        #expect(postsReceived(freshConnection: false, share: share, fromAnotherClient: true) == 1)
    }

    /// `openssl s_server -www` on a loopback port with a fresh self-signed certificate for
    /// 127.0.0.1; its page says "Reused" or "New" for each connection's TLS session. Nil when
    /// openssl is missing.
    final class SessionServer {
        let port: Int
        let caFile: String
        private let process: Process
        private let directory: URL

        init?(port: Int) {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("vpsgate-tls-\(UUID().uuidString)")
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let certificate = directory.appendingPathComponent("server.crt").path
            let key = directory.appendingPathComponent("server.key").path
            guard Self.run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate])
            else { return nil }
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = ["s_server", "-www", "-accept", "127.0.0.1:\(port)", "-cert", certificate, "-key", key, "-quiet"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return nil }
            self.port = port
            caFile = certificate
        }

        deinit {
            // SIGKILL: a test runner's child may have SIGTERM blocked.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: directory)
        }

        static func run(_ arguments: [String]) -> Bool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
    }

    /// Whether each of `clients`' GETs, every one on a new connection, resumed a TLS session.
    func sessionsResumed(_ clients: [HTTPClient], server: SessionServer) -> [Bool] {
        clients.map { client in
            let request = HTTPClient.Request(method: "GET", url: "https://127.0.0.1:\(server.port)/", timeoutMilliseconds: 5000,
                                             freshConnection: true)
            // Up to half a second for the server to listen.
            for _ in 0..<50 {
                if case .success(let response) = client.perform(request) {
                    return String(decoding: response.body, as: UTF8.self).contains("Reused, ")
                }
                usleep(10_000)
            }
            Issue.record("no answer from openssl s_server")
            return false
        }
    }

    /// Clients of one share resume each other's TLS sessions on new connections (one full
    /// handshake for all of them); clients without one each start with a full handshake.
    @Test func clientsOfOneShareResumeEachOthersSessions() throws {
        HTTPClient.initializeLibrary()
        guard let server = SessionServer(port: closedPort()) else {
            Issue.record("openssl is needed to run a TLS server")
            return
        }
        let share = HTTPShare()
        let shared = (0..<4).map { _ in HTTPClient(caFile: server.caFile, share: share) }
        #expect(sessionsResumed(shared, server: server) == [false, true, true, true])
        // A client's own later connections resume its sessions; separate clients' first ones do not.
        let separate = (0..<2).map { _ in HTTPClient(caFile: server.caFile) }
        #expect(sessionsResumed(separate, server: server) == [false, false])
        #expect(sessionsResumed([separate[0], separate[0]], server: server) == [true, true])
    }
}
