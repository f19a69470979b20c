//! `edgechat bench`: placeholder, replaced by the load generator.

use crate::error::Result;

/// `edgechat bench` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Server address.
    pub addr: std::net::SocketAddr,
}

/// Runs the load generator.
pub fn run(_args: &BenchArgs) -> Result<()> {
    Ok(())
}
