// swift-tools-version: 6.0
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "vpsgate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vpsgate", targets: ["vpsgate"]),
        .executable(name: "hostinger-sim", targets: ["hostinger-sim"]),
        .executable(name: "vpsgatectl", targets: ["vpsgatectl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
    ],
    targets: [
        // MARK: - C libraries, each behind exactly one Swift module
        .systemLibrary(
            name: "CFastCGI",
            pkgConfig: "fcgi",
            providers: [.apt(["libfcgi-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // What Swift cannot call: libcurl's variadic setopt/getinfo.
        .target(name: "CCurlShim", dependencies: ["CCurl"]),
        // Linux's socket filter structures, for a TCP listener's drain at shutdown.
        .target(name: "CSocketShim"),

        // MARK: - The system: clocks, threads and environment blocks, wrapped once
        .target(name: "Platform", swiftSettings: strict),

        // MARK: - Thin Swift wrappers
        .target(
            name: "FastCGI",
            dependencies: ["CFastCGI", "CSocketShim", "Platform", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(name: "Postgres", dependencies: ["CLibPQ"], swiftSettings: strict),
        .target(name: "HTTPClient", dependencies: ["CCurl", "CCurlShim"], swiftSettings: strict),

        // The Hostinger API client: typed requests, retries, circuit breaker.
        .target(
            name: "Hostinger",
            dependencies: ["HTTPClient", "Platform", "VpsgateCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),

        // MARK: - vpsgate
        // The core knows no C: configuration, correlation ids, problems, rules.
        .target(name: "VpsgateCore", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),
        // The store: every SQL statement, implementing the core's store protocols over PostgreSQL.
        .target(
            name: "VpsgateStore",
            dependencies: ["VpsgateCore", "Postgres", "Platform", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // The service: wires the core and the store to the FastCGI and Hostinger modules.
        .target(
            name: "VpsgateService",
            dependencies: [
                "VpsgateCore", "VpsgateStore", "VpsgateTools", "FastCGI", "Hostinger", "Platform",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The MCP tools, derived from the catalogue, and MCP's JSON-RPC messages: shared by
        // `vpsgatectl mcp` (stdio) and the service's `POST /mcp` (Streamable HTTP).
        .target(
            name: "VpsgateTools",
            dependencies: ["VpsgateCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // A faithful stand-in for Hostinger's VPS API, for tests and local runs.
        .target(name: "HostingerSim", dependencies: ["VpsgateCore"], swiftSettings: strict),
        .executableTarget(
            name: "hostinger-sim",
            dependencies: [
                "HostingerSim", "FastCGI", "Platform",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "vpsgate",
            dependencies: [
                "VpsgateService", "VpsgateStore", "VpsgateCore", "Platform",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // vpsgate's client for people, scripts and AI agents (docs/clients.md): the command
        // line, and an MCP server on stdio. It speaks to vpsgate only, never to Hostinger.
        .target(
            name: "VpsgateClient",
            dependencies: [
                "VpsgateCore", "VpsgateTools", "HTTPClient", "Platform",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "MCP", package: "swift-sdk"),
            ]
        ),
        .executableTarget(name: "vpsgatectl", dependencies: ["VpsgateClient"]),

        // MARK: - Tests
        .testTarget(name: "PlatformTests", dependencies: ["Platform"], swiftSettings: strict),
        .testTarget(name: "VpsgateCoreTests", dependencies: ["VpsgateCore"], swiftSettings: strict),
        .testTarget(name: "FastCGITests", dependencies: ["FastCGI"], swiftSettings: strict),
        // The command path and the reconciler against in-memory stores and Hostinger: no I/O.
        .testTarget(
            name: "VpsgateServiceTests",
            dependencies: ["VpsgateService", "VpsgateCore", "Hostinger", "FastCGI", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // The command line's parsing and the MCP tools, with vpsgate stood in for: no I/O.
        .testTarget(
            name: "VpsgateClientTests",
            dependencies: ["VpsgateClient", "VpsgateCore", "VpsgateTools", "HTTPClient", .product(name: "MCP", package: "swift-sdk")]
        ),
        .testTarget(name: "HTTPClientTests", dependencies: ["HTTPClient"], swiftSettings: strict),
        .testTarget(
            name: "HostingerTests",
            dependencies: ["Hostinger", "HTTPClient", "Platform", "VpsgateCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "PostgresTests",
            dependencies: ["Postgres", "VpsgateStore", "VpsgateCore", "Platform"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
