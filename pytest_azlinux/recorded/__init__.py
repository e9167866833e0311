"""Images replayed from their recordings: AgentBaker release notes, SPDX manifests."""
