import ArgumentParser
import FastCGI
import Foundation
import HTTPClient
import Hostinger
import Logging
import Platform
import Postgres
import VpsgateCore
import VpsgateService
import VpsgateStore

#if canImport(Glibc)
import Glibc
#endif

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "vpsgate's secret keys (VPSGATE_SECRET_KEY_FILE).", subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new key line, `ID HEX`, for the key file.",
            discussion: """
                To rotate: put the new line first in the file and keep the old ones below it \
                (they still verify), then restart the instances.
                """)
        @Option(help: "The key's id (default: k followed by today's date).") var id: String?
        func run() throws {
            var now = time(nil)
            var parts = tm()
            gmtime_r(&now, &parts)
            let date = String(format: "%04d%02d%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
            let line = SecretKeyRing.generateLine(id: id ?? "k\(date)")
            guard case .success = SecretKeyRing.parse(line) else { throw ValidationError("--id takes 1 to 32 letters, digits, - or _") }
            print(line)
        }
    }
}
