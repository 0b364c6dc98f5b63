//! `update-agent`: the workstation daemon (built by the agent issues).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("update-agent is not built yet; see the project's open issues")
}
