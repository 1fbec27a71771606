import Testing
import VpsgateCore

@Suite struct UpstreamURLTests {
    @Test(arguments: [
        ("https://developers.hostinger.com", "https://developers.hostinger.com"),
        ("https://developers.hostinger.com/", "https://developers.hostinger.com"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"), ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("http://[::1]:9000/api", "http://[::1]:9000/api"), ("http://localhost:1", "http://localhost:1"),
        ("https://10.0.0.1/base/", "https://10.0.0.1/base"),
    ])
    func acceptsHTTPSAndLoopbackHTTP(text: String, expected: String) throws {
        #expect(try UpstreamURL.validate(text).get() == expected)
    }

    /// Each of these would send the bearer token in clear, or somewhere else than it seems.
    @Test(arguments: [
        "http://127.0.0.1.evil.tld", "http://127.0.0.1@evil.tld", "https://user:pass@developers.hostinger.com",
        "http://developers.hostinger.com", "http://10.0.0.1", "ftp://127.0.0.1", "https://", "https://:443",
        "https://host:99999", "https://host:0", "https://host:-1", "https://host:abc", "https://ho st", "https://host/a b",
        "https://host?x=1", "https://host#f", "https://host\\@evil.tld", "https://-host", "https://host..com",
        "https://hôst.com", "https://[::1", "https://[zz]", "HTTPS://host", " https://host", "https://host/%2e%2e",
        "http://127.0.0.1:9000.evil.tld",
    ])
    func refusesEverythingElse(text: String) {
        #expect(throws: ConfigurationProblem.self) { try UpstreamURL.validate(text).get() }
    }
}
