import VpsgateClient

// The command line and the MCP server live in VpsgateClient, where they are tested; this
// is only the process's entry.
await VpsgateCtl.runProcess()
