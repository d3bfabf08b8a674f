//! The node's persistent identity key and peer store, kept outside the
//! chain directory so that copying a chain never clones an identity.

use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Dial failures in a row after which a peer is forgotten.
pub const MAX_FAILURES: u32 = 5;
/// Most peers kept; past it the store forgets the peers that have failed
/// most, and among those the ones seen longest ago.
pub const MAX_PEERS: usize = 1_000;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Creates `dir` (and its parents) if missing, the last with mode 0700:
/// it holds the node's identity key.
pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Refuses a key file that others than its owner can read or write.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read identity key {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "identity key {} can be read by others (mode {:o}); it is this node's identity: make it private with `chmod 600 {}` and start again",
            path.display(),
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), String> {
    Ok(())
}

/// Loads the identity key at `path`, or creates and saves a new ed25519 one
/// (mode 0600). A key that others can read is refused.
pub fn load_or_create_identity(path: &Path) -> Result<Keypair, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            check_private(path)?;
            Keypair::from_protobuf_encoding(&bytes)
                .map_err(|e| format!("identity key {} is unreadable: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let k = Keypair::generate_ed25519();
            let bytes = k.to_protobuf_encoding().map_err(|e| e.to_string())?;
            write_atomic(path, &bytes, true)
                .map_err(|e| format!("cannot save identity key {}: {e}", path.display()))?;
            Ok(k)
        }
        Err(e) => Err(format!("cannot read identity key {}: {e}", path.display())),
    }
}

/// Reads and removes the anchors saved at the last clean shutdown (none
/// when the file is missing or unreadable): they are dialled once, first.
pub fn take_anchors(path: &Path) -> Vec<(PeerId, Multiaddr)> {
    let list: Vec<(String, String)> = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let _ = std::fs::remove_file(path);
    list.into_iter()
        .take(MAX_ANCHORS)
        .filter_map(|(p, a)| Some((p.parse().ok()?, a.parse().ok()?)))
        .collect()
}

/// Most anchors kept.
pub const MAX_ANCHORS: usize = 2;

/// Saves the anchors (outbound peers that served blocks).
pub fn save_anchors(path: &Path, anchors: &[(PeerId, Multiaddr)]) -> std::io::Result<()> {
    let list: Vec<(String, String)> = anchors
        .iter()
        .take(MAX_ANCHORS)
        .map(|(p, a)| (p.to_string(), a.to_string()))
        .collect();
    let bytes = serde_json::to_vec_pretty(&list).map_err(std::io::Error::other)?;
    write_atomic(path, &bytes, false)
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct PeerRecord {
    addrs: Vec<String>,
    failures: u32,
    /// Unix seconds of the last successful connection (0 in older files).
    #[serde(default)]
    last_seen: u64,
}

/// Peers that served this node's sync, and their addresses, saved as JSON.
#[derive(Debug)]
pub struct PeerStore {
    path: PathBuf,
    peers: BTreeMap<String, PeerRecord>,
    dirty: bool,
}

impl PeerStore {
    /// Loads the store at `path` (empty if missing or unreadable).
    pub fn load(path: &Path) -> PeerStore {
        let peers = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut s = PeerStore {
            path: path.to_path_buf(),
            peers,
            dirty: false,
        };
        s.trim();
        s
    }

    /// Number of peers kept.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is kept.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Forgets peers past [`MAX_PEERS`]: most failures first, then the
    /// ones seen longest ago.
    fn trim(&mut self) {
        let over = self.peers.len().saturating_sub(MAX_PEERS);
        if over == 0 {
            return;
        }
        let mut order: Vec<(u32, u64, String)> = self
            .peers
            .iter()
            .map(|(k, r)| (r.failures, r.last_seen, k.clone()))
            .collect();
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, k) in order.into_iter().take(over) {
            self.peers.remove(&k);
        }
        self.dirty = true;
    }

    /// Every known (peer, address) pair, the peers seen last first.
    pub fn known(&self) -> Vec<(PeerId, Multiaddr)> {
        let mut out = Vec::new();
        let mut order: Vec<(&String, &PeerRecord)> = self.peers.iter().collect();
        order.sort_by_key(|(_, r)| std::cmp::Reverse(r.last_seen));
        for (p, r) in order {
            let Ok(peer) = p.parse::<PeerId>() else {
                continue;
            };
            for a in &r.addrs {
                if let Ok(addr) = a.parse::<Multiaddr>() {
                    out.push((peer, addr));
                }
            }
        }
        out
    }

    /// Records a successful connection to `peer` at `addr`.
    pub fn success(&mut self, peer: &PeerId, addr: &Multiaddr) {
        let r = self.peers.entry(peer.to_string()).or_default();
        let a = addr.to_string();
        if !r.addrs.contains(&a) {
            r.addrs.insert(0, a);
            r.addrs.truncate(4);
            self.dirty = true;
        }
        if r.failures != 0 {
            r.failures = 0;
            self.dirty = true;
        }
        let now = unix_now();
        // Saved at most once a minute for a connection that only refreshes.
        if now.saturating_sub(r.last_seen) >= 60 {
            r.last_seen = now;
            self.dirty = true;
        }
        self.trim();
    }

    /// Forgets `peer` (banned).
    pub fn forget(&mut self, peer: &PeerId) {
        if self.peers.remove(&peer.to_string()).is_some() {
            self.dirty = true;
        }
    }

    /// Records a failed dial; returns true when the peer was forgotten.
    pub fn failure(&mut self, peer: &PeerId) -> bool {
        let key = peer.to_string();
        let Some(r) = self.peers.get_mut(&key) else {
            return false;
        };
        r.failures += 1;
        self.dirty = true;
        if r.failures >= MAX_FAILURES {
            self.peers.remove(&key);
            return true;
        }
        false
    }

    /// Saves if anything changed.
    pub fn save(&mut self) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&self.peers).map_err(std::io::Error::other)?;
        write_atomic(&self.path, &bytes, false)?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_identity_is_private_and_one_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("p2p_1");
        create_private_dir(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        let key = dir.join("identity.key");
        let id = load_or_create_identity(&key).unwrap();
        assert_eq!(mode(&key), 0o600);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_identity(&key).unwrap_err();
        assert!(err.contains("can be read by others (mode 644)"), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
        // Refused, not replaced: the key is still there, and loads once private.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let again = load_or_create_identity(&key).unwrap();
        assert_eq!(again.public().to_peer_id(), id.public().to_peer_id());
    }

    #[test]
    fn identity_survives_and_peers_are_dropped_after_failures() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_identity(&dir.path().join("id.key")).unwrap();
        let b = load_or_create_identity(&dir.path().join("id.key")).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        let mut s = PeerStore::load(&dir.path().join("peers.json"));
        let p = PeerId::random();
        s.success(&p, &"/ip4/127.0.0.1/tcp/1".parse().unwrap());
        s.save().unwrap();
        let mut s = PeerStore::load(&dir.path().join("peers.json"));
        assert_eq!(s.known().len(), 1);
        for i in 0..MAX_FAILURES {
            assert_eq!(s.failure(&p), i + 1 == MAX_FAILURES);
        }
        assert!(s.known().is_empty());
    }

    #[test]
    fn the_store_keeps_at_most_max_peers_and_forgets_the_failing_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = PeerStore::load(&dir.path().join("peers.json"));
        let addr: Multiaddr = "/ip4/10.0.0.1/tcp/1".parse().unwrap();
        let failing = PeerId::random();
        s.success(&failing, &addr);
        s.failure(&failing);
        let keep = PeerId::random();
        s.success(&keep, &addr);
        for _ in 0..MAX_PEERS + 50 {
            s.success(&PeerId::random(), &addr);
            assert!(s.len() <= MAX_PEERS);
        }
        assert_eq!(s.len(), MAX_PEERS);
        let known: Vec<PeerId> = s.known().into_iter().map(|(p, _)| p).collect();
        assert!(!known.contains(&failing), "the failing peer goes first");
        s.save().unwrap();
        assert_eq!(
            PeerStore::load(&dir.path().join("peers.json")).len(),
            MAX_PEERS
        );
    }

    #[test]
    fn anchors_are_at_most_two_taken_once_and_a_bad_file_gives_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anchors.json");
        assert!(take_anchors(&path).is_empty(), "no file, no anchors");
        let three: Vec<(PeerId, Multiaddr)> = (1..=3)
            .map(|i| {
                let addr = format!("/ip4/10.0.0.{i}/tcp/1").parse().unwrap();
                (PeerId::random(), addr)
            })
            .collect();
        save_anchors(&path, &three).unwrap();
        assert_eq!(take_anchors(&path), three[..MAX_ANCHORS].to_vec());
        assert!(!path.exists(), "taken anchors are dialled once");
        std::fs::write(&path, b"[[\"not a peer\", \"/ip4/1.2.3.4/tcp/1\"], 7]").unwrap();
        assert!(take_anchors(&path).is_empty());
    }
}
