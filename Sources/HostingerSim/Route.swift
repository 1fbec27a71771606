/// One operation of Hostinger's API: its method, its path template as the OpenAPI document
/// writes it (under `/api/vps/v1`), and what answers it.
struct Route: Sendable {
    let method: String
    let template: String
    let handle: @Sendable (inout Context, Parameters) -> SimResponse
    private let segments: [Segment]

    private enum Segment: Sendable {
        case literal(Substring)
        case parameter(String)
    }

    init(_ method: String, _ template: String, _ handle: @escaping @Sendable (inout Context, Parameters) -> SimResponse) {
        self.method = method
        self.template = template
        self.handle = handle
        segments = template.split(separator: "/").map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? .parameter(String(part.dropFirst().dropLast())) : .literal(part)
        }
    }

    /// The path parameters when `parts` (the path's segments after `/api/vps/v1`) fit the template.
    func match(_ parts: [Substring]) -> Parameters? {
        guard parts.count == segments.count else { return nil }
        var values: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let literal): guard part == literal else { return nil }
            case .parameter(let name):
                guard !part.isEmpty else { return nil }
                values[name] = String(part)
            }
        }
        return Parameters(values: values)
    }
}

/// The path parameters of a request, by the document's names (`virtualMachineId`, …).
struct Parameters: Sendable {
    var values: [String: String]

    subscript(name: String) -> String? { values[name] }

    /// An id parameter as a number; nil when it is not one (Hostinger answers 404 then).
    func id(_ name: String) -> Int? { values[name].flatMap { Int($0) } }
}
