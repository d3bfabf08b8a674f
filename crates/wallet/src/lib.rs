//! Wallets: keys with aliases in one file per node, coin selection, and
//! building and signing transactions.
//!
//! The file is JSON, written atomically (a temporary file in the same
//! directory, synced, then renamed over the old one) with mode 0600. Every
//! change is a read-modify-write under an exclusive lock on a sibling lock
//! file, so two commands run at once cannot lose each other's keys.
//!
//! With a passphrase (the `WALLET_PASSPHRASE` environment variable), the
//! file is encrypted at rest: the key list is sealed with XChaCha20-Poly1305
//! under a key derived from the passphrase with Argon2id and a random salt.
//! A new wallet created while the variable is set is encrypted, and
//! [`Wallet::encrypt`] encrypts an existing one. A wrong passphrase is a
//! clear error, never a half-read file.

mod seal;

use chain_core::keys::{KeyError, PrivateKey};
use chain_core::{Address, AddressError, Amount, OutPoint, PubkeyHash, Transaction, TxIn, TxOut};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The wallet file format this code writes.
const FILE_VERSION: u32 = 1;
/// Longest alias.
pub const MAX_ALIAS_LEN: usize = 32;

/// Why a wallet operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// No wallet file yet.
    #[error("no wallet file {0}")]
    NoWalletFile(PathBuf),
    /// The name is neither an alias in the wallet nor a valid address.
    #[error("'{name}' is not an alias in {file} and not a valid address ({reason})")]
    UnknownAliasOrAddress {
        /// The name given.
        name: String,
        /// The wallet file.
        file: PathBuf,
        /// Why it is not an address.
        reason: AddressError,
    },
    /// The address is valid but its key is not in this wallet.
    #[error("the key of {0} is not in this wallet")]
    NotOurs(Address),
    /// The alias is taken.
    #[error("alias '{0}' is already used in this wallet")]
    AliasTaken(String),
    /// The alias has characters that could be confused or misparsed.
    #[error("alias '{0}' is not allowed: use 1 to {MAX_ALIAS_LEN} letters, digits, '-' or '_', and not a valid address")]
    BadAlias(String),
    /// The key is already in the wallet.
    #[error("the key of {0} is already in this wallet")]
    KeyExists(Address),
    /// A key problem (bad WIF and so on).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Zero amount.
    #[error("the amount must be above zero")]
    ZeroAmount,
    /// Not enough coins.
    #[error("insufficient funds: {address} has {available} spendable, {needed} is needed")]
    InsufficientFunds {
        /// The sender.
        address: Address,
        /// What it has.
        available: Amount,
        /// What is needed (amount plus fee).
        needed: Amount,
    },
    /// Amount plus fee overflows.
    #[error("amount plus fee overflows")]
    Overflow,
    /// The file does not parse.
    #[error("wallet file {path} is unreadable: {reason} (it was not changed)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is encrypted and no passphrase was given.
    #[error("wallet file {0} is encrypted: set WALLET_PASSPHRASE to its passphrase")]
    PassphraseNeeded(PathBuf),
    /// The passphrase does not open the file.
    #[error("wrong passphrase for wallet file {0} (it was not changed)")]
    WrongPassphrase(PathBuf),
    /// Encrypting asked for, but no passphrase was given.
    #[error("no passphrase: set WALLET_PASSPHRASE to the passphrase to encrypt with")]
    NoPassphrase,
    /// File-system failure.
    #[error("wallet file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct FileEntry {
    alias: Option<String>,
    address: String,
    wif: String,
}

#[derive(Serialize, Deserialize)]
struct FileBody {
    version: u32,
    keys: Vec<FileEntry>,
}

/// One key of the wallet.
#[derive(Clone, Debug)]
pub struct WalletKey {
    /// Its alias, if any.
    pub alias: Option<String>,
    /// The key.
    pub key: PrivateKey,
    /// Its address.
    pub address: Address,
}

/// A loaded wallet file.
#[derive(Debug)]
pub struct Wallet {
    path: PathBuf,
    keys: Vec<WalletKey>,
    /// Set when the file is encrypted: what seals it again on save.
    sealer: Option<seal::Sealer>,
}

/// The environment variable holding the wallet passphrase.
pub const PASSPHRASE_ENV: &str = "WALLET_PASSPHRASE";

fn passphrase_from_env() -> Option<String> {
    std::env::var(PASSPHRASE_ENV).ok().filter(|p| !p.is_empty())
}

/// The wallet file of a node: `<data_dir>/wallets_<node_id>.json`.
pub fn wallet_path(data_dir: &Path, node_id: &str) -> PathBuf {
    data_dir.join(format!("wallets_{node_id}.json"))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WalletError + '_ {
    move |source| WalletError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks an alias is usable.
pub fn validate_alias(alias: &str) -> Result<(), WalletError> {
    let ok_chars = alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if alias.is_empty() || alias.len() > MAX_ALIAS_LEN || !ok_chars || Address::parse(alias).is_ok()
    {
        return Err(WalletError::BadAlias(alias.to_string()));
    }
    Ok(())
}

impl Wallet {
    /// Loads the wallet file at `path`.
    pub fn load(path: &Path) -> Result<Wallet, WalletError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(WalletError::NoWalletFile(path.to_path_buf()))
            }
            Err(e) => return Err(io_err(path)(e)),
        };
        Self::parse(path, &text)
    }

    /// Loads the file, or an empty wallet when there is none.
    pub fn load_or_empty(path: &Path) -> Result<Wallet, WalletError> {
        match Self::load(path) {
            Err(WalletError::NoWalletFile(_)) => Ok(Wallet {
                path: path.to_path_buf(),
                keys: vec![],
                // A new wallet is encrypted when a passphrase is given.
                sealer: passphrase_from_env()
                    .map(|p| seal::Sealer::new(&p))
                    .transpose()
                    .map_err(|reason| WalletError::Corrupt {
                        path: path.to_path_buf(),
                        reason,
                    })?,
            }),
            other => other,
        }
    }

    fn parse(path: &Path, text: &str) -> Result<Wallet, WalletError> {
        let corrupt = |reason: String| WalletError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let (body, sealer): (FileBody, _) = if seal::is_sealed(text) {
            let pass =
                passphrase_from_env().ok_or_else(|| WalletError::PassphraseNeeded(path.into()))?;
            let (plain, sealer) = seal::open(text, &pass).map_err(|e| match e {
                seal::OpenError::WrongPassphrase => WalletError::WrongPassphrase(path.into()),
                seal::OpenError::Malformed(reason) => corrupt(reason),
            })?;
            let body = serde_json::from_slice(&plain).map_err(|e| corrupt(e.to_string()))?;
            (body, Some(sealer))
        } else {
            let body = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
            (body, None)
        };
        if body.version != FILE_VERSION {
            return Err(corrupt(format!(
                "format version {} is not understood (this program reads {FILE_VERSION})",
                body.version
            )));
        }
        let mut keys = Vec::with_capacity(body.keys.len());
        for e in body.keys {
            let key = PrivateKey::from_wif(&e.wif)
                .map_err(|err| corrupt(format!("key of {}: {err}", e.address)))?;
            let address = key.public_key().address();
            if address.to_string() != e.address {
                return Err(corrupt(format!(
                    "key recorded for {} belongs to {address}",
                    e.address
                )));
            }
            keys.push(WalletKey {
                alias: e.alias,
                key,
                address,
            });
        }
        Ok(Wallet {
            path: path.to_path_buf(),
            keys,
            sealer,
        })
    }

    /// Whether the file is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.sealer.is_some()
    }

    /// Encrypts the wallet with `passphrase` from its next save on.
    pub fn encrypt(&mut self, passphrase: &str) -> Result<(), WalletError> {
        if passphrase.is_empty() {
            return Err(WalletError::NoPassphrase);
        }
        self.sealer =
            Some(
                seal::Sealer::new(passphrase).map_err(|reason| WalletError::Corrupt {
                    path: self.path.clone(),
                    reason,
                })?,
            );
        Ok(())
    }

    /// Encrypts the wallet file at `path` with the passphrase in
    /// `WALLET_PASSPHRASE`, atomically.
    pub fn encrypt_file(path: &Path) -> Result<(), WalletError> {
        let pass = passphrase_from_env().ok_or(WalletError::NoPassphrase)?;
        if !path.exists() {
            return Err(WalletError::NoWalletFile(path.to_path_buf()));
        }
        Self::update(path, |w| w.encrypt(&pass))
    }

    /// Runs `change` on the current file contents under an exclusive lock and
    /// saves the result atomically. Nothing is written if `change` fails.
    pub fn update<T>(
        path: &Path,
        change: impl FnOnce(&mut Wallet) -> Result<T, WalletError>,
    ) -> Result<T, WalletError> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = path.with_extension("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        let mut w = Self::load_or_empty(path)?;
        let out = change(&mut w)?;
        w.save()?;
        // The lock is released when `lock` is dropped.
        drop(lock);
        Ok(out)
    }

    fn save(&self) -> Result<(), WalletError> {
        let body = FileBody {
            version: FILE_VERSION,
            keys: self
                .keys
                .iter()
                .map(|k| FileEntry {
                    alias: k.alias.clone(),
                    address: k.address.to_string(),
                    wif: k.key.to_wif(),
                })
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&body).map_err(|e| WalletError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if let Some(sealer) = &self.sealer {
            text = sealer.seal(text.as_bytes());
        }
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".wallet-")
            .tempfile_in(dir)
            .map_err(io_err(dir))?;
        set_private(tmp.as_file(), tmp.path())?;
        tmp.write_all(text.as_bytes()).map_err(io_err(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io_err(&self.path))?;
        tmp.persist(&self.path)
            .map_err(|e| io_err(&self.path)(e.error))?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The file this wallet lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All keys, in creation order.
    pub fn keys(&self) -> &[WalletKey] {
        &self.keys
    }

    /// Adds a new random key, with an optional alias. Returns its address.
    pub fn create_key(&mut self, alias: Option<&str>) -> Result<Address, WalletError> {
        self.add_key(PrivateKey::generate(), alias)
    }

    /// Adds an existing key.
    pub fn add_key(
        &mut self,
        key: PrivateKey,
        alias: Option<&str>,
    ) -> Result<Address, WalletError> {
        if let Some(a) = alias {
            validate_alias(a)?;
            if self.keys.iter().any(|k| k.alias.as_deref() == Some(a)) {
                return Err(WalletError::AliasTaken(a.to_string()));
            }
        }
        let address = key.public_key().address();
        if self.keys.iter().any(|k| k.address == address) {
            return Err(WalletError::KeyExists(address));
        }
        self.keys.push(WalletKey {
            alias: alias.map(str::to_string),
            key,
            address,
        });
        Ok(address)
    }

    /// Resolves an alias of this wallet or a raw address.
    pub fn resolve(&self, name: &str) -> Result<Address, WalletError> {
        if let Some(k) = self.keys.iter().find(|k| k.alias.as_deref() == Some(name)) {
            return Ok(k.address);
        }
        Address::parse(name).map_err(|reason| WalletError::UnknownAliasOrAddress {
            name: name.to_string(),
            file: self.path.clone(),
            reason,
        })
    }

    /// The key for an alias or address of this wallet.
    pub fn key_for(&self, name: &str) -> Result<&WalletKey, WalletError> {
        let address = self.resolve(name)?;
        self.keys
            .iter()
            .find(|k| k.address == address)
            .ok_or(WalletError::NotOurs(address))
    }
}

/// Resolves an alias or address: with a wallet file, its aliases count too.
pub fn resolve_name(wallet_file: &Path, name: &str) -> Result<Address, WalletError> {
    match Wallet::load(wallet_file) {
        Ok(w) => w.resolve(name),
        Err(WalletError::NoWalletFile(_)) => {
            Address::parse(name).map_err(|reason| WalletError::UnknownAliasOrAddress {
                name: name.to_string(),
                file: wallet_file.to_path_buf(),
                reason,
            })
        }
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn set_private(f: &File, path: &Path) -> Result<(), WalletError> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(path))
}

#[cfg(not(unix))]
fn set_private(_f: &File, _path: &Path) -> Result<(), WalletError> {
    Ok(())
}

/// A spendable coin offered to coin selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spendable {
    /// Where it is.
    pub outpoint: OutPoint,
    /// What it is.
    pub output: TxOut,
}

/// Picks coins covering `needed`: largest first, so few inputs are used.
/// Returns the chosen coins and their total.
pub fn select_coins(mut coins: Vec<Spendable>, needed: Amount) -> Option<(Vec<Spendable>, Amount)> {
    coins.sort_by(|a, b| {
        b.output
            .value
            .cmp(&a.output.value)
            .then(a.outpoint.cmp(&b.outpoint))
    });
    let mut total = Amount::ZERO;
    let mut chosen = Vec::new();
    for c in coins {
        if total >= needed {
            break;
        }
        total = total.checked_add(c.output.value)?;
        chosen.push(c);
    }
    (total >= needed).then_some((chosen, total))
}

/// Builds and signs a transaction from `from` paying `amount` to `to`, with
/// `fee` left for the miner and the change back to `from`.
pub fn build_transaction(
    from: &WalletKey,
    coins: Vec<Spendable>,
    to: &Address,
    amount: Amount,
    fee: Amount,
) -> Result<Transaction, WalletError> {
    if amount == Amount::ZERO {
        return Err(WalletError::ZeroAmount);
    }
    let needed = amount.checked_add(fee).ok_or(WalletError::Overflow)?;
    let available =
        Amount::checked_sum(coins.iter().map(|c| c.output.value)).unwrap_or(Amount(u64::MAX));
    let (chosen, total) = select_coins(coins, needed).ok_or(WalletError::InsufficientFunds {
        address: from.address,
        available,
        needed,
    })?;
    let mut outputs = vec![TxOut {
        value: amount,
        pubkey_hash: to.pubkey_hash(),
    }];
    let change = total.checked_sub(needed).ok_or(WalletError::Overflow)?;
    if change > Amount::ZERO {
        outputs.push(TxOut {
            value: change,
            pubkey_hash: from.address.pubkey_hash(),
        });
    }
    let mut tx = Transaction {
        version: 1,
        inputs: chosen
            .iter()
            .map(|c| TxIn {
                prevout: c.outpoint,
                signature: vec![],
                pubkey: vec![],
            })
            .collect(),
        outputs,
    };
    let spent: Vec<TxOut> = chosen.iter().map(|c| c.output).collect();
    let keys: Vec<&PrivateKey> = chosen.iter().map(|_| &from.key).collect();
    tx.sign_all(&spent, &keys);
    Ok(tx)
}

/// How a payment's fee is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fee {
    /// This amount.
    Fixed(Amount),
    /// This rate times the transaction's size, rounded up.
    Rate(chain_core::FeeRate),
}

/// Builds and signs a payment like [`build_transaction`], spending
/// `confirmed` coins first and the payer's unconfirmed `change` only when
/// the confirmed ones do not cover it. With [`Fee::Rate`] the fee is the
/// rate times the signed transaction's size. Returns it and its fee.
pub fn build_payment(
    from: &WalletKey,
    confirmed: Vec<Spendable>,
    change: Vec<Spendable>,
    to: &Address,
    amount: Amount,
    fee: Fee,
) -> Result<(Transaction, Amount), WalletError> {
    let build = |coins: Vec<Spendable>| -> Result<(Transaction, Amount), WalletError> {
        let rate = match fee {
            Fee::Fixed(f) => return build_transaction(from, coins, to, amount, f).map(|t| (t, f)),
            Fee::Rate(r) => r,
        };
        // The size depends on the coins the fee makes it take: settle it.
        let mut f = rate.fee_for(200);
        for _ in 0..8 {
            let tx = build_transaction(from, coins.clone(), to, amount, f)?;
            let want = rate.fee_for(tx.size());
            if want <= f {
                return Ok((tx, f));
            }
            f = want;
        }
        build_transaction(from, coins, to, amount, f).map(|t| (t, f))
    };
    match build(confirmed.clone()) {
        Err(WalletError::InsufficientFunds { .. }) if !change.is_empty() => {
            build(confirmed.into_iter().chain(change).collect())
        }
        other => other,
    }
}

/// The public-key hash of an address (a convenience for callers).
pub fn pkh(a: &Address) -> PubkeyHash {
    a.pubkey_hash()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_alias_resolve_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = wallet_path(dir.path(), "3000");
        let a = Wallet::update(&path, |w| w.create_key(Some("w1"))).unwrap();
        let b = Wallet::update(&path, |w| w.create_key(None)).unwrap();
        let w = Wallet::load(&path).unwrap();
        assert_eq!(w.resolve("w1").unwrap(), a);
        assert_eq!(w.resolve(&b.to_string()).unwrap(), b);
        assert!(matches!(
            w.resolve("nope"),
            Err(WalletError::UnknownAliasOrAddress { .. })
        ));
        assert!(matches!(
            Wallet::update(&path, |w| w.create_key(Some("w1"))),
            Err(WalletError::AliasTaken(_))
        ));
        assert!(matches!(
            Wallet::update(&path, |w| w.create_key(Some("a b"))),
            Err(WalletError::BadAlias(_))
        ));
        assert_eq!(
            Wallet::load(&path).unwrap().keys().len(),
            2,
            "failed updates write nothing"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn import_export_wif() {
        let dir = tempfile::tempdir().unwrap();
        let path = wallet_path(dir.path(), "1");
        let k = PrivateKey::generate();
        let wif = k.to_wif();
        let a = Wallet::update(&path, |w| {
            w.add_key(PrivateKey::from_wif(&wif)?, Some("imp"))
        })
        .unwrap();
        assert_eq!(a, k.public_key().address());
        let w = Wallet::load(&path).unwrap();
        assert_eq!(w.key_for("imp").unwrap().key.to_wif(), wif);
        assert!(matches!(
            Wallet::update(&path, |w| w.add_key(PrivateKey::from_wif(&wif)?, None)),
            Err(WalletError::KeyExists(_))
        ));
    }

    #[test]
    fn concurrent_creates_lose_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = wallet_path(dir.path(), "7");
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let p = path.clone();
                std::thread::spawn(move || {
                    Wallet::update(&p, |w| w.create_key(Some(&format!("k{i}")))).unwrap()
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(Wallet::load(&path).unwrap().keys().len(), 8);
    }

    #[test]
    fn a_corrupt_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = wallet_path(dir.path(), "9");
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            Wallet::update(&path, |w| w.create_key(None)),
            Err(WalletError::Corrupt { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ not json");
    }

    #[test]
    fn building_selects_coins_and_returns_change() {
        let k = WalletKey {
            alias: None,
            key: PrivateKey::generate(),
            address: PrivateKey::generate().public_key().address(),
        };
        let k = WalletKey {
            address: k.key.public_key().address(),
            ..k
        };
        let coin = |v: u64, i: u8| Spendable {
            outpoint: OutPoint {
                txid: chain_core::Txid([i; 32]),
                vout: 0,
            },
            output: TxOut {
                value: Amount(v),
                pubkey_hash: k.address.pubkey_hash(),
            },
        };
        let to = PrivateKey::generate().public_key().address();
        let tx = build_transaction(
            &k,
            vec![coin(5, 1), coin(20, 2), coin(3, 3)],
            &to,
            Amount(10),
            Amount(1),
        )
        .unwrap();
        assert_eq!(tx.inputs.len(), 1);
        assert_eq!(tx.outputs[1].value, Amount(9));
        let e = build_transaction(&k, vec![coin(5, 1)], &to, Amount(10), Amount(0)).unwrap_err();
        assert!(matches!(e, WalletError::InsufficientFunds { .. }));
        assert!(e.to_string().contains("insufficient funds"));
        assert!(matches!(
            build_transaction(&k, vec![coin(5, 1)], &to, Amount(0), Amount(0)),
            Err(WalletError::ZeroAmount)
        ));
    }
}
