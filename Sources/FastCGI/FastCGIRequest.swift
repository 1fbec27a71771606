/// One request as nginx passed it: the CGI parameters and the whole body.
///
/// A value type with no C in it; the worker thread that read it may hand it anywhere.
public struct FastCGIRequest: Sendable {
    /// Every FastCGI parameter nginx sent (`REQUEST_METHOD`, `REMOTE_USER`, `HTTP_*`, …).
    public var parameters: [String: String]
    /// The request body, read fully; empty when `bodyExceededLimit`.
    public var body: [UInt8]
    /// The body was longer than the configured limit and was not kept.
    public var bodyExceededLimit: Bool

    public init(parameters: [String: String], body: [UInt8] = [], bodyExceededLimit: Bool = false) {
        self.parameters = parameters
        self.body = body
        self.bodyExceededLimit = bodyExceededLimit
    }

    /// `REQUEST_METHOD`, e.g. `GET`.
    public var method: String { parameters["REQUEST_METHOD"] ?? "GET" }

    /// The path as the client sent it, without the query and without any decoding.
    public var path: String {
        if let uri = parameters["REQUEST_URI"] {
            if let question = uri.firstIndex(of: "?") { return String(uri[..<question]) }
            return uri
        }
        return parameters["DOCUMENT_URI"] ?? "/"
    }

    /// `QUERY_STRING`, possibly empty.
    public var query: String { parameters["QUERY_STRING"] ?? "" }

    /// An HTTP request header by its usual name (`X-Request-ID`), from its `HTTP_*` parameter.
    public func header(_ name: String) -> String? {
        parameters[Self.parameterName(forHeader: name)]
    }

    /// Every HTTP request header, named as the client spelt it modulo case (`X-REQUEST-ID`).
    public var headers: [(name: String, value: String)] {
        parameters.compactMap { key, value in
            guard key.hasPrefix("HTTP_") else { return nil }
            return (String(key.dropFirst(5)).replacingUnderscores(), value)
        }
    }

    /// `X-Request-ID` ⇒ `HTTP_X_REQUEST_ID`.
    public static func parameterName(forHeader name: String) -> String {
        var result = "HTTP_"
        for scalar in name.unicodeScalars {
            switch scalar {
            case "-": result.append("_")
            case "a"..."z": result.unicodeScalars.append(Unicode.Scalar(scalar.value - 32)!)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String {
        String(map { $0 == "_" ? "-" : $0 })
    }
}
