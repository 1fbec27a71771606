#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Environment blocks: NULL-terminated arrays of `NAME=value` C strings, the shape of the
/// process's `environ` and of the parameters libfcgi hands each request.
public enum Environment {
    /// The process's environment, read now.
    public static var current: [String: String] {
        #if canImport(Darwin)
        // Darwin's libc does not export `environ` to Swift; _NSGetEnviron is its accessor.
        variables(in: _NSGetEnviron().pointee.map { UnsafePointer($0) })
        #else
        variables(in: environ)
        #endif
    }

    /// The variables of `block`, copied; nil is an empty block.
    ///
    /// An entry without `=` is skipped; when a name repeats, the last value wins. `block`
    /// is read during the call only.
    public static func variables(in block: UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> [String: String] {
        guard let block else { return [:] }
        var count = 0
        while block[count] != nil { count += 1 }
        var result: [String: String] = [:]
        result.reserveCapacity(count)
        // Bytes, not Characters: every request's parameters pass here, and a scan of
        // grapheme clusters for `=` cost more than the copies themselves.
        for case let entry? in UnsafeBufferPointer(start: block, count: count) {
            let length = strlen(entry)
            guard let equals = memchr(entry, 0x3D, length) else { continue }
            let nameLength = UnsafeRawPointer(equals) - UnsafeRawPointer(entry)
            entry.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
                let name = String(decoding: UnsafeBufferPointer(start: bytes, count: nameLength), as: UTF8.self)
                result[name] = String(decoding: UnsafeBufferPointer(start: bytes + nameLength + 1, count: length - nameLength - 1),
                                      as: UTF8.self)
            }
        }
        return result
    }
}
