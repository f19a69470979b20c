//! `edgechat client`: placeholder, replaced by the line client.

use crate::error::Result;

/// `edgechat client` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Server address.
    pub addr: std::net::SocketAddr,
}

/// Runs the client.
pub fn run(_args: &ClientArgs) -> Result<()> {
    Ok(())
}
