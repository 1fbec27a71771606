import VpsgateCore

/// Body validation with Laravel's 422s: `{"message", "errors": {field: [messages]}, "correlation_id"}`.
extension Context {
    /// What is wrong with one field (`FIELD` in a message becomes the field's name); empty when nothing is.
    typealias Rule = (JSONValue?) -> [String]

    /// Runs `then` when the body passes `rules`, else answers the 422.
    mutating func validated(_ rules: [(String, Rule)], then: (inout Context) -> SimResponse) -> SimResponse {
        let errors = Self.errors(rules, in: body)
        guard errors.isEmpty else { return Self.validationError(errors) }
        return then(&self)
    }

    /// The errors of `object` under `rules`, each field named `prefix` + its name (Laravel
    /// names nested fields with dots: `setup.template_id`).
    static func errors(_ rules: [(String, Rule)], in object: JSONValue, prefix: String = "") -> [(String, [String])] {
        var errors: [(String, [String])] = []
        for (field, rule) in rules {
            let name = prefix + field
            let messages = rule(object[field]).map { $0.replacing("FIELD", with: name.replacing("_", with: " ")) }
            if !messages.isEmpty { errors.append((name, messages)) }
        }
        return errors
    }

    /// Laravel's 422: the first message, then how many more there are.
    static func validationError(_ errors: [(String, [String])]) -> SimResponse {
        let total = errors.reduce(0) { $0 + $1.1.count }
        var message = errors[0].1[0]
        if total > 1 { message += " (and \(total - 1) more error\(total > 2 ? "s" : ""))" }
        if errors[0].0 == "hostname", errors[0].1[0].contains("FQDN") { message = "[VPS:2004] Wrong hostname FQDN format" }
        return Simulator.error(422, message, errors: errors)
    }

    /// A 422 that is about the request as a whole rather than a field's value (a VM in the
    /// wrong state); Hostinger's shape, with the reason under `subject` as well.
    static func refusal(_ subject: String, _ message: String) -> SimResponse {
        Simulator.error(422, message, errors: [(subject, [message])])
    }

    // MARK: - Rules

    /// Laravel's `required`: absent, null and the empty string all count as missing.
    private static func missing(_ value: JSONValue?) -> Bool {
        guard let value else { return true }
        return value.isNull || value.stringValue == ""
    }

    static func hostnameRule(required: Bool = true) -> Rule {
        { value in
            guard !missing(value), let value else { return required ? ["The FIELD field is required."] : [] }
            guard let text = value.stringValue else { return ["The FIELD field must be a string."] }
            return Validators.isFQDN(text) ? [] : ["The FIELD must be a valid FQDN."]
        }
    }

    static func ipRule(required: Bool) -> Rule {
        { value in
            guard !missing(value), let value else { return required ? ["The FIELD field is required."] : [] }
            guard let text = value.stringValue else { return ["The FIELD field must be a string."] }
            return Validators.isIPAddress(text) ? [] : ["The FIELD field must be a valid IP address."]
        }
    }

    static func passwordRule(required: Bool) -> Rule {
        { value in
            guard !missing(value), let value else { return required ? ["The FIELD field is required."] : [] }
            guard let text = value.stringValue else { return ["The FIELD field must be a string."] }
            return Validators.passwordProblems(text).map { "The FIELD \($0)." }
        }
    }

    static func integerRule(required: Bool) -> Rule {
        { value in
            guard !missing(value), let value else { return required ? ["The FIELD field is required."] : [] }
            guard let number = value.intValue, number > 0 else { return ["The FIELD field must be an integer."] }
            return []
        }
    }

    /// A positive integer naming one of `ids`.
    static func existsRule(_ ids: some Collection<Int>, required: Bool) -> Rule {
        let known = Set(ids)
        return { value in
            let problems = integerRule(required: required)(value)
            guard problems.isEmpty, let id = value?.intValue else { return problems }
            return known.contains(id) ? [] : ["The selected FIELD is invalid."]
        }
    }

    var templateRule: Rule {
        let known = Set(state.templates.keys)
        return { value in
            guard !Self.missing(value), let value else { return ["The FIELD field is required."] }
            guard let id = value.intValue else { return ["The FIELD field must be an integer."] }
            return known.contains(id) ? [] : ["The selected FIELD is invalid."]
        }
    }

    static func stringRule(required: Bool = true, maxLength: Int = 255) -> Rule {
        { value in
            guard !missing(value), let value else { return required ? ["The FIELD field is required."] : [] }
            guard let text = value.stringValue else { return ["The FIELD field must be a string."] }
            return text.count > maxLength ? ["The FIELD field must not be greater than \(maxLength) characters."] : []
        }
    }

    /// A string of at most `maxBytes` bytes of UTF-8 (Hostinger: "Maximum script size is 48KB").
    static func sizedTextRule(maxBytes: Int) -> Rule {
        { value in
            guard !missing(value), let value else { return ["The FIELD field is required."] }
            guard let text = value.stringValue else { return ["The FIELD field must be a string."] }
            return text.utf8.count > maxBytes ? ["The FIELD field must not be greater than \(maxBytes / 1024) kilobytes."] : []
        }
    }

    static func inRule(_ allowed: [String], required: Bool = true) -> Rule {
        { value in
            guard !missing(value), let value else { return required ? ["The FIELD field is required."] : [] }
            guard let text = value.stringValue, allowed.contains(text) else { return ["The selected FIELD is invalid."] }
            return []
        }
    }

    static var booleanRule: Rule {
        { value in
            guard let value, !value.isNull else { return [] }
            return value.boolValue == nil ? ["The FIELD field must be true or false."] : []
        }
    }

    /// An OpenSSH public key: a known type, then base64.
    static func publicKeyRule(required: Bool = true) -> Rule {
        { value in
            let problems = stringRule(required: required, maxLength: 16_384)(value)
            guard problems.isEmpty, let text = value?.stringValue else { return problems }
            return Validators.isSSHPublicKey(text) ? [] : ["The FIELD must be a valid SSH public key."]
        }
    }
}
