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

struct OpenAPI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi", abstract: "Print vpsgate's OpenAPI document (as served at /openapi.json).")
    @Flag(help: "Print the catalogue of commands and reads as Markdown tables instead (docs/catalogue.md).") var markdown = false
    func run() throws {
        if markdown {
            print(CatalogueDocument.markdown(), terminator: "")
        } else {
            print(OpenAPIDocument.generate().text())
        }
    }
}
