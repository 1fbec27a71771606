import HTTPClient
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
}
