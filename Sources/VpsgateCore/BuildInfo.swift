/// What this binary was built from: the one version `vpsgate --version`, `vpsgatectl --version`,
/// the user agents, the MCP server's info and `/healthz` all report (docs/getting-started.md#versions).
///
/// The values checked in are the defaults a plain `swift build` uses. `scripts/stamp-version`
/// writes the real ones (`git describe --tags --always --dirty`, the commit, the UTC build date)
/// for the builds `scripts/run`, `scripts/test` and `scripts/bench` make, and puts these back.
public enum BuildInfo {
    /// The release this tree leads to, or `git describe --tags --always --dirty` when stamped.
    public static let version = "0.3.0-dev"
    /// The full commit hash, or `unknown`.
    public static let commit = "unknown"
    /// The build's date and time (UTC, RFC 3339), or `unknown`.
    public static let date = "unknown"

    /// The line `--version` prints: `vpsgate 0.3.0-dev (commit unknown, built unknown)`.
    public static func versionLine(program: String) -> String {
        "\(program) \(version) (commit \(commit), built \(date))"
    }

    /// `program/version`, for `User-Agent` headers.
    public static func userAgent(_ program: String) -> String { "\(program)/\(version)" }
}
