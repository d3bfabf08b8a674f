//! Gossip announcement decoding never panics, and round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use p2p_proto::Announcement;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = Announcement::decode(data) {
        let bytes = a.encode();
        assert_eq!(Announcement::decode(&bytes).ok(), Some(a));
    }
});
