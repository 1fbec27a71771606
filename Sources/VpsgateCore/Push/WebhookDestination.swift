/// Where a webhook may be sent (docs/design.md#completion-push): an `https://` URL whose host resolves only
/// to public addresses, unless the operator allow-listed the network
/// (`VPSGATE_WEBHOOK_ALLOW_NETWORKS`). Checked at `webhook add` and again at every delivery,
/// on the addresses the delivery then connects to (so a name that resolves elsewhere later,
/// DNS rebinding, is caught).
public struct WebhookURL: Sendable, Equatable {
    public var text: String
    /// A name, or an IP literal (IPv6 without brackets).
    public var host: String
    public var port: Int

    public static let maxLength = 2000

    /// Parses `text`; the failure says what is wrong.
    public static func parse(_ text: String) -> Result<WebhookURL, DestinationRefusal> {
        guard text.utf8.count <= maxLength else { return .failure(.init("is longer than \(maxLength) bytes")) }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
            return .failure(.init("must be ASCII without spaces or control characters"))
        }
        guard text.hasPrefix("https://") else { return .failure(.init("must start with https://")) }
        guard !text.contains("#") else { return .failure(.init("must not have a fragment")) }
        let rest = text.dropFirst("https://".count)
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        guard !authority.contains("@") else { return .failure(.init("must not carry credentials")) }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return .failure(.init("has an unclosed IPv6 literal")) }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return .failure(.init("has text after the IPv6 literal")) }
                portText = after.dropFirst()
            }
            guard IPNetwork.parseIPv6(host) != nil else { return .failure(.init("has an invalid IPv6 literal")) }
        } else {
            let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            host = parts[0]
            if parts.count == 2 { portText = parts[1] }
            let allowed = host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
            guard !host.isEmpty, host.count <= 253, allowed, !host.hasPrefix("."), !host.contains("..") else {
                return .failure(.init("has an invalid host"))
            }
        }
        var port = 443
        if let portText {
            guard (1...5).contains(portText.count), portText.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(portText),
                (1...65535).contains(value)
            else { return .failure(.init("has an invalid port")) }
            port = value
        }
        return .success(WebhookURL(text: text, host: String(host).lowercased(), port: port))
    }
}

/// Why a destination is refused.
public struct DestinationRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// An IP network, IPv4 or IPv6, as bytes (4 or 16) and a prefix length.
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    public var bytes: [UInt8]
    public var prefixLength: Int

    public init(bytes: [UInt8], prefixLength: Int) {
        self.bytes = bytes
        self.prefixLength = prefixLength
    }

    public var description: String { IPNetwork.format(bytes) + "/\(prefixLength)" }

    /// `a.b.c.d[/n]` or an IPv6 address `[/n]`.
    public init?(_ text: Substring) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = IPNetwork.parseIPv4(parts[0]) ?? IPNetwork.parseIPv6(parts[0]) else { return nil }
        var prefix = bytes.count * 8
        if parts.count == 2 {
            guard (1...3).contains(parts[1].count), parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(parts[1]),
                value <= bytes.count * 8
            else { return nil }
            prefix = value
        }
        self.init(bytes: bytes, prefixLength: prefix)
    }

    /// A comma-separated list; nil if any item is not a network.
    public static func list(_ text: String) -> [IPNetwork]? {
        var networks: [IPNetwork] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let network = IPNetwork(Substring(item.trimmingCharacters(in: " "))) else { return nil }
            networks.append(network)
        }
        return networks
    }

    public func contains(_ address: [UInt8]) -> Bool {
        guard address.count == bytes.count else { return false }
        var remaining = prefixLength
        for (a, b) in zip(address, bytes) where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xff : ~(0xff >> UInt8(bits))
            if a & mask != b & mask { return false }
            remaining -= bits
        }
        return true
    }

    public static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for octet in octets {
            guard (1...3).contains(octet.count), octet.allSatisfy({ $0.isASCII && $0.isNumber }), octet.count == 1 || octet.first != "0",
                let value = UInt8(octet)
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    /// RFC 4291 text: eight groups, `::` once, an IPv4 tail allowed.
    public static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard text.contains(":"), text.utf8.count <= 45 else { return nil }
        let colon = UInt8(ascii: ":")
        let bytes = Array(text.utf8)
        func doubleColon(in part: ArraySlice<UInt8>) -> Int? {
            part.indices.dropLast().first { part[$0] == colon && part[$0 + 1] == colon }
        }
        func groups(_ part: ArraySlice<UInt8>) -> [UInt16]? {
            if part.isEmpty { return [] }
            var values: [UInt16] = []
            let pieces = part.split(separator: colon, omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                let pieceText = Substring(String(decoding: piece, as: UTF8.self))
                if index == pieces.count - 1, pieceText.contains("."), let v4 = parseIPv4(pieceText) {
                    values += [UInt16(v4[0]) << 8 | UInt16(v4[1]), UInt16(v4[2]) << 8 | UInt16(v4[3])]
                    continue
                }
                guard (1...4).contains(piece.count), pieceText.allSatisfy(\.isHexDigit), let value = UInt16(pieceText, radix: 16) else { return nil }
                values.append(value)
            }
            return values
        }
        let all: [UInt16]
        if let gap = doubleColon(in: bytes[...]) {
            let tailPart = bytes[(gap + 2)...]
            guard doubleColon(in: tailPart) == nil, let head = groups(bytes[..<gap]), let tail = groups(tailPart),
                head.count + tail.count <= 7
            else { return nil }
            all = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let full = groups(bytes[...]), full.count == 8 else { return nil }
            all = full
        }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    /// Dotted quad, or IPv6 groups in hex (not compressed).
    public static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: bytes.count, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
}

/// The addresses a webhook must not reach unless allow-listed.
///
/// An IPv6 address that carries an IPv4 address (IPv4-mapped and -translated, the deprecated
/// IPv4-compatible form, NAT64's well-known prefix, 6to4, Teredo, ISATAP) is judged by the
/// IPv4 address it carries: the packet ends up there, through the host's own stack, a
/// translator or a relay. So `2002:808:808::1` (6to4 of 8.8.8.8) may be reached and
/// `2002:7f00:1::1` (6to4 of 127.0.0.1) may not; Teredo is refused when its server or its
/// client (the last 32 bits inverted) is not public. The allow-list opens the carried
/// address only for the IPv4-mapped form (the same socket destination as the IPv4 address);
/// the other forms pass through a tunnel or translator and must be allow-listed as IPv6.
/// Local-use NAT64 (`64:ff9b:1::/48`) is refused whole: where its IPv4 address sits depends
/// on a prefix length only its operator knows.
public enum DestinationPolicy {
    static let refused: [(network: IPNetwork, kind: String)] = [
        ("0.0.0.0/8", "unspecified"), ("10.0.0.0/8", "private"), ("100.64.0.0/10", "shared (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"), ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol"), ("192.168.0.0/16", "private"), ("198.18.0.0/15", "benchmarking"),
        ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("64:ff9b:1::/48", "local-use NAT64"),
        ("fc00::/7", "unique local"), ("fe80::/10", "link-local"), ("fec0::/10", "site-local"), ("ff00::/8", "multicast"),
    ].map { (IPNetwork(Substring($0.0))!, $0.1) }

    /// The IPv6 forms that carry an IPv4 address: where it sits (byte offset), whether it
    /// is stored inverted (Teredo's client), and whether the allow-list opens it.
    struct Embedding {
        var network: IPNetwork
        var kind: String
        var offsets: [(at: Int, inverted: Bool)]
        var allowListed = false
    }

    static let embeddings: [Embedding] = [
        Embedding(network: IPNetwork(Substring("::ffff:0:0/96"))!, kind: "IPv4-mapped", offsets: [(12, false)], allowListed: true),
        Embedding(network: IPNetwork(Substring("::ffff:0:0:0/96"))!, kind: "IPv4-translated", offsets: [(12, false)]),
        Embedding(network: IPNetwork(Substring("::/96"))!, kind: "IPv4-compatible", offsets: [(12, false)]),
        Embedding(network: IPNetwork(Substring("64:ff9b::/96"))!, kind: "NAT64", offsets: [(12, false)]),
        Embedding(network: IPNetwork(Substring("2002::/16"))!, kind: "6to4", offsets: [(2, false)]),
        Embedding(network: IPNetwork(Substring("2001::/32"))!, kind: "Teredo", offsets: [(4, false), (12, true)]),
    ]

    /// The IPv4 addresses `address` carries, with the form's name; nil when it carries none.
    static func embedded(_ address: [UInt8]) -> (kind: String, addresses: [[UInt8]], allowListed: Bool)? {
        guard address.count == 16 else { return nil }
        if let form = embeddings.first(where: { $0.network.contains(address) }) {
            let carried = form.offsets.map { offset in
                address[offset.at..<offset.at + 4].map { offset.inverted ? ~$0 : $0 }
            }
            return (form.kind, carried, form.allowListed)
        }
        // ISATAP (RFC 5214): any prefix, an interface identifier of [02]00:5efe:a.b.c.d
        // (the u and g bits may be set), the IPv4 address of the node behind the router.
        if address[8] & 0xfc == 0, address[9] == 0, address[10] == 0x5e, address[11] == 0xfe {
            return ("ISATAP", [Array(address[12..<16])], false)
        }
        return nil
    }

    /// Why `address` may not be reached (nil: it may), given the allow-list.
    public static func refusal(_ address: [UInt8], allow: [IPNetwork]) -> String? {
        if allow.contains(where: { $0.contains(address) }) { return nil }
        if let hit = refused.first(where: { $0.network.contains(address) }) {
            return "\(IPNetwork.format(address)) is \(article(hit.kind)) \(hit.kind) address"
        }
        guard let form = embedded(address) else { return nil }
        for carried in form.addresses {
            if form.allowListed && allow.contains(where: { $0.contains(carried) }) { continue }
            if let hit = refused.first(where: { $0.network.contains(carried) }) {
                return "\(IPNetwork.format(address)) is \(article(form.kind)) \(form.kind) address of \(IPNetwork.format(carried)), "
                    + "\(article(hit.kind)) \(hit.kind) address"
            }
        }
        return nil
    }

    private static func article(_ kind: String) -> String {
        kind.hasPrefix("I") || kind.hasPrefix("uns") ? "an" : "a"
    }

    /// The addresses to connect to: every resolved one must be allowed (one bad address is
    /// enough for a rebinding attack to pick it).
    public static func check(_ addresses: [[UInt8]], allow: [IPNetwork]) -> Result<[[UInt8]], DestinationRefusal> {
        guard !addresses.isEmpty else { return .failure(.init("the host does not resolve")) }
        for address in addresses {
            if let reason = refusal(address, allow: allow) {
                return .failure(.init("\(reason); only public addresses (or VPSGATE_WEBHOOK_ALLOW_NETWORKS) may receive webhooks"))
            }
        }
        return .success(addresses)
    }
}
