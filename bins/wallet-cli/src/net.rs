//! Talking to a node over the network.

use anyhow::{bail, Result};
use chain_core::{Address, Amount};
use wallet::WalletKey;

pub fn balance(_peer: &str, _addr: &Address) -> Result<(Amount, Option<u32>)> {
    bail!("--peer is not available in this build")
}

pub fn send(
    _peer: &str,
    _from: &WalletKey,
    _to: &Address,
    _amount: Amount,
    _fee: Amount,
    _json: bool,
) -> Result<()> {
    bail!("--peer is not available in this build")
}
