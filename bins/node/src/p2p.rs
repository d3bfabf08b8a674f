//! `startp2p`.

use crate::chain_cmds::Ctx;
use anyhow::Result;

/// Arguments of `startp2p`.
#[derive(clap::Args, Debug)]
pub struct StartArgs {}

pub fn startp2p(_ctx: &Ctx, _a: StartArgs) -> Result<()> {
    anyhow::bail!("startp2p is not available in this build")
}
