import CCurl
import CCurlShim

/// A blocking HTTPS client on one libcurl easy handle, owned by one thread.
///
/// The handle is reused across calls so connections to the same host stay open
/// (keep-alive). TLS peers are always verified. Clients given the same ``HTTPShare`` resume
/// each other's TLS sessions, so a new connection (``Request/freshConnection``) costs an
/// abbreviated handshake once any of them has talked to the host. Not `Sendable`.
public final class HTTPClient {
    /// One request.
    public struct Request: Sendable {
        public var method: String
        public var url: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]?
        /// Milliseconds allowed to establish the connection (TCP and TLS).
        public var connectTimeoutMilliseconds: Int
        /// Milliseconds allowed for the whole attempt.
        public var timeoutMilliseconds: Int
        /// Send on a new connection. libcurl re-sends a request, by itself, when a kept-alive
        /// connection it reused turns out dead before any answer: harmless for a request that
        /// is safe to repeat, a second mutation for one that is not. On a new connection it
        /// never does, so a request that must reach the server at most once sets this.
        public var freshConnection: Bool
        /// Connect only to these addresses for the URL's host and port (libcurl's
        /// CURLOPT_RESOLVE): the caller resolved and checked them, so libcurl must not
        /// resolve the name again.
        public var pinned: (host: String, port: Int, addresses: [String])?
        /// HTTPS only, and never through a proxy from the environment (for destinations the
        /// caller checked itself).
        public var direct: Bool

        public init(
            method: String, url: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil,
            connectTimeoutMilliseconds: Int = 3000, timeoutMilliseconds: Int = 10000, freshConnection: Bool = false,
            pinned: (host: String, port: Int, addresses: [String])? = nil, direct: Bool = false
        ) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
            self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
            self.timeoutMilliseconds = timeoutMilliseconds
            self.freshConnection = freshConnection
            self.pinned = pinned
            self.direct = direct || pinned != nil
        }
    }

    /// A response with any status: HTTP errors are responses, not failures.
    public struct Response: Sendable {
        public var status: Int
        /// Header names in lower case.
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        /// The first header with this name (any case).
        public func header(_ name: String) -> String? {
            let lowered = name.lowercased()
            return headers.first { $0.name == lowered }?.value
        }
    }

    private let handle: UnsafeMutableRawPointer
    private let caFile: String?
    /// Kept for the handle's life: libcurl uses it on every transfer.
    private let share: HTTPShare?

    /// Initialises libcurl for the process; call once before any thread makes a client.
    public static func initializeLibrary() {
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }

    /// A client verifying TLS peers against `caFile` (PEM), or the system's store when nil;
    /// with `share`, TLS sessions and resolved names are those of every client sharing it.
    public init(caFile: String? = nil, share: HTTPShare? = nil) {
        guard let handle = curl_easy_init() else { fatalError("curl_easy_init failed: out of memory") }
        self.handle = handle
        self.caFile = caFile
        self.share = share
        // Set once: curl_easy_reset keeps a handle's share.
        if let share, CCurlShim_setopt_share(handle, share.pointer) != CURLE_OK {
            fatalError("CURLOPT_SHARE failed")
        }
    }

    deinit {
        curl_easy_cleanup(handle)
    }

    /// Performs `request`; blocks up to its timeout.
    public func perform(_ request: Request) -> Result<Response, HTTPClientError> {
        curl_easy_reset(handle)
        let sink = ResponseSink()
        let context = Unmanaged.passUnretained(sink).toOpaque()
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for header in request.headers {
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        // Without this curl sends "Expect: 100-continue" for larger bodies and waits.
        headerList = curl_slist_append(headerList, "Expect:")

        var setup: [CURLcode] = [
            CCurlShim_setopt_string(handle, CURLOPT_URL, request.url),
            CCurlShim_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method),
            CCurlShim_setopt_pointer(handle, CURLOPT_HTTPHEADER, headerList),
            CCurlShim_setopt_long(handle, CURLOPT_NOSIGNAL, 1),
            CCurlShim_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1),
            CCurlShim_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2),
            CCurlShim_setopt_long(handle, CURLOPT_PROTOCOLS, Int(CURLPROTO_HTTP | CURLPROTO_HTTPS)),
            CCurlShim_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0),
            CCurlShim_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeoutMilliseconds),
            CCurlShim_setopt_long(handle, CURLOPT_TIMEOUT_MS, request.timeoutMilliseconds),
            CCurlShim_setopt_long(handle, CURLOPT_FRESH_CONNECT, request.freshConnection ? 1 : 0),
            CCurlShim_setopt_write_function(handle, { data, size, count, context in
                let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                sink.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length))
                return length
            }),
            CCurlShim_setopt_pointer(handle, CURLOPT_WRITEDATA, context),
            CCurlShim_setopt_header_function(handle, { data, size, count, context in
                let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                sink.addHeaderLine(UnsafeRawBufferPointer(start: data, count: length))
                return length
            }),
            CCurlShim_setopt_pointer(handle, CURLOPT_HEADERDATA, context),
        ]
        if let caFile { setup.append(CCurlShim_setopt_string(handle, CURLOPT_CAINFO, caFile)) }
        var resolveList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(resolveList) }
        if let pinned = request.pinned {
            let addresses = pinned.addresses.map { $0.contains(":") ? "[\($0)]" : $0 }.joined(separator: ",")
            resolveList = curl_slist_append(nil, "\(pinned.host):\(pinned.port):\(addresses)")
            setup.append(CCurlShim_setopt_pointer(handle, CURLOPT_RESOLVE, resolveList))
        }
        if request.direct {
            setup.append(CCurlShim_setopt_long(handle, CURLOPT_PROTOCOLS, Int(CURLPROTO_HTTPS)))
            setup.append(CCurlShim_setopt_string(handle, CURLOPT_PROXY, ""))
        }
        let body = request.body ?? []
        if request.body != nil {
            setup.append(CCurlShim_setopt_long(handle, CURLOPT_POSTFIELDSIZE, body.count))
        }
        if let failed = setup.first(where: { $0 != CURLE_OK }) {
            return .failure(HTTPClientError(code: .setup, curlCode: Int(failed.rawValue), requestMayHaveBeenSent: false, message: Self.text(failed)))
        }
        if request.body != nil {
            // COPYPOSTFIELDS copies (POSTFIELDSIZE bytes), so the buffer need not outlive this
            // call; an empty body still gets a valid pointer and "Content-Length: 0".
            let payload = body.isEmpty ? [0] : body
            let copied = payload.withUnsafeBytes { raw in
                CCurlShim_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress!))
            }
            if copied != CURLE_OK {
                return .failure(HTTPClientError(code: .setup, curlCode: Int(copied.rawValue), requestMayHaveBeenSent: false, message: Self.text(copied)))
            }
        }
        let result = curl_easy_perform(handle)
        guard result == CURLE_OK else { return .failure(failure(for: result)) }
        var status = 0
        _ = CCurlShim_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return .success(Response(status: status, headers: sink.headers, body: sink.body))
    }

    /// The one place a CURLcode becomes an error, with whether the request may have reached the server.
    private func failure(for code: CURLcode) -> HTTPClientError {
        var pretransfer = 0.0
        _ = CCurlShim_getinfo_double(handle, CURLINFO_PRETRANSFER_TIME, &pretransfer)
        let started = pretransfer > 0
        let kind: HTTPClientError.Code
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return HTTPClientError(code: .couldNotConnect, curlCode: Int(code.rawValue), requestMayHaveBeenSent: false, message: Self.text(code))
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE:
            return HTTPClientError(code: .tls, curlCode: Int(code.rawValue), requestMayHaveBeenSent: false, message: Self.text(code))
        case CURLE_OPERATION_TIMEDOUT: kind = started ? .timedOut : .couldNotConnect
        case CURLE_SEND_ERROR: kind = .sendFailed
        case CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE: kind = .receiveFailed
        default: kind = .other
        }
        return HTTPClientError(code: kind, curlCode: Int(code.rawValue), requestMayHaveBeenSent: started, message: Self.text(code))
    }

    private static func text(_ code: CURLcode) -> String {
        String(cString: curl_easy_strerror(code))
    }
}

/// What several ``HTTPClient``s share, each on its own thread: libcurl's TLS session cache
/// and DNS cache (a share handle, locked by a mutex per kind of data, so safe across
/// threads). Connections are not shared: each client keeps its own, so a request on a
/// new connection is still sent at most once. A session is only resumed with the TLS
/// settings it was made with (libcurl matches the CA file and verification), and
/// resumption verifies nothing less: the server proves it holds the session's secret.
///
/// Not for clients that pin addresses (``Request/pinned``): a pinned name would be the
/// answer every sharer gets.
public final class HTTPShare: @unchecked Sendable {
    // @unchecked: libcurl locks the shared data itself, through the shim's mutexes.
    fileprivate let pointer: OpaquePointer

    public init() {
        guard let pointer = CCurlShim_share_new() else { fatalError("curl_share_init failed: out of memory") }
        self.pointer = pointer
    }

    deinit {
        CCurlShim_share_free(pointer)
    }
}

/// Collects the response while curl calls back.
private final class ResponseSink {
    var body: [UInt8] = []
    var headers: [(name: String, value: String)] = []

    func addHeaderLine(_ line: UnsafeRawBufferPointer) {
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix("HTTP/") {
            headers.removeAll()  // a new response (after 100 Continue or a redirect) starts over
            return
        }
        guard let colon = text.firstIndex(of: ":") else { return }
        let name = text[..<colon].lowercased()
        let value = text[text.index(after: colon)...].trimmingCharacters(in: " \t\r\n")
        headers.append((name, value))
    }
}

/// A request that got no HTTP response.
public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// No connection was made: the request was certainly not received.
        public static let couldNotConnect = Code(name: "could not connect")
        /// The TLS handshake failed: the request was not sent.
        public static let tls = Code(name: "TLS failure")
        public static let timedOut = Code(name: "timed out")
        public static let sendFailed = Code(name: "send failed")
        public static let receiveFailed = Code(name: "receive failed")
        public static let setup = Code(name: "setup failed")
        public static let other = Code(name: "transfer failed")
    }

    public var code: Code
    /// libcurl's CURLcode, for the log.
    public var curlCode: Int
    /// False only when the request provably never left this process.
    public var requestMayHaveBeenSent: Bool
    public var message: String

    public var description: String { "\(code) (curl \(curlCode)): \(message)" }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text.removeFirst() }
        while let last = text.last, set.contains(last) { text.removeLast() }
        return String(text)
    }
}
