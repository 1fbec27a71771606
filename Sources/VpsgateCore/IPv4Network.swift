/// An IPv4 network, `a.b.c.d` or `a.b.c.d/n`, for `VPSGATE_ALLOWED_PEERS`.
public struct IPv4Network: Sendable, Equatable, CustomStringConvertible {
    /// The address as a host-order integer of its dotted quad (`10.0.0.1` is `0x0A000001`).
    public var address: UInt32
    public var prefixLength: Int

    public var mask: UInt32 { prefixLength == 0 ? 0 : UInt32.max << (32 - prefixLength) }

    public var description: String {
        let octets = (0..<4).reversed().map { String((address >> ($0 * 8)) & 0xff) }
        return octets.joined(separator: ".") + "/\(prefixLength)"
    }

    /// Parses one network; nil for anything else (no leading zeros, no host bits past the prefix).
    public init?(_ text: Substring) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var address: UInt32 = 0
        for octet in octets {
            guard (1...3).contains(octet.count), octet.allSatisfy({ $0.isASCII && $0.isNumber }),
                octet.count == 1 || octet.first != "0", let value = UInt32(octet), value <= 255
            else { return nil }
            address = address << 8 | value
        }
        var prefix = 32
        if parts.count == 2 {
            guard (1...2).contains(parts[1].count), parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(parts[1]), (0...32).contains(value)
            else { return nil }
            prefix = value
        }
        self.address = address
        self.prefixLength = prefix
        guard address & ~mask == 0 else { return nil }
    }

    /// A comma-separated list (spaces after commas allowed); nil if any item is not a network.
    public static func list(_ text: String) -> [IPv4Network]? {
        var networks: [IPv4Network] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let network = IPv4Network(item.drop { $0 == " " }) else { return nil }
            networks.append(network)
        }
        return networks
    }

    public func contains(_ address: UInt32) -> Bool { address & mask == self.address }
}
