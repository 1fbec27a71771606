/// What a responder answers: status, headers and body, written as a CGI response.
public struct FastCGIResponse: Sendable, Equatable {
    public var status: Int
    /// Header lines in order; names and values must not contain CR or LF (such headers are dropped).
    public var headers: [Header]
    public var body: [UInt8]

    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(status: Int, headers: [Header] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The CGI header block: `Status:` first, then the headers, then an empty line.
    func headerBlock() -> [UInt8] {
        var text = "Status: \(status) \(Self.reason(for: status))\r\n"
        for header in headers where header.isSafe {
            text += header.name
            text += ": "
            text += header.value
            text += "\r\n"
        }
        if !headers.contains(where: { $0.name.lowercased() == "content-length" }) {
            text += "Content-Length: \(body.count)\r\n"
        }
        text += "\r\n"
        return Array(text.utf8)
    }

    /// The standard reason phrase, or `Status` for codes without a common one.
    static func reason(for status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Status"
        }
    }
}

extension FastCGIResponse.Header {
    /// A header is written only if neither part could split the response (no CR, LF or NUL).
    var isSafe: Bool {
        !name.isEmpty && !name.utf8.contains(where: { $0 < 0x21 || $0 == UInt8(ascii: ":") })
            && !value.utf8.contains(where: { $0 == 0x0d || $0 == 0x0a || $0 == 0x00 })
    }
}
