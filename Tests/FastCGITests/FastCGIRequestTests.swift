import Testing

@testable import FastCGI

@Suite struct FastCGIRequestTests {
    @Test func pathExcludesTheQueryAndIsNotDecoded() {
        let request = FastCGIRequest(parameters: ["REQUEST_URI": "/v1/vps/10%2F01?page=2", "QUERY_STRING": "page=2"])
        #expect(request.path == "/v1/vps/10%2F01")
        #expect(request.query == "page=2")
    }

    @Test func headersAreReadFromTheirHTTPParameters() {
        let request = FastCGIRequest(parameters: ["HTTP_X_REQUEST_ID": "abc", "HTTP_IDEMPOTENCY_KEY": "k", "REMOTE_USER": "alice"])
        #expect(request.header("X-Request-ID") == "abc")
        #expect(request.header("idempotency-key") == "k")
        #expect(request.header("Remote-User") == nil)
        #expect(request.headers.map(\.name).sorted() == ["IDEMPOTENCY-KEY", "X-REQUEST-ID"])
    }
}

@Suite struct FastCGIResponseTests {
    @Test func writesStatusHeadersAndLength() {
        let response = FastCGIResponse(status: 404, headers: [.init("Content-Type", "application/problem+json")], body: Array("{}".utf8))
        let head = String(decoding: response.headerBlock(), as: UTF8.self)
        #expect(head == "Status: 404 Not Found\r\nContent-Type: application/problem+json\r\nContent-Length: 2\r\n\r\n")
    }

    @Test func dropsHeadersThatWouldSplitTheResponse() {
        let response = FastCGIResponse(status: 200, headers: [
            .init("X-Request-ID", "a\r\nSet-Cookie: evil=1"), .init("Bad Name", "x"), .init("X-Ok", "fine"),
        ])
        let head = String(decoding: response.headerBlock(), as: UTF8.self)
        #expect(!head.contains("evil"))
        #expect(!head.contains("Bad Name"))
        #expect(head.contains("X-Ok: fine\r\n"))
    }
}
