//! A stream of frames read the way the node reads a stream: each header is
//! checked against the limit before its body, and each body is decoded as a
//! request. Nothing panics and no length is trusted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use p2p_proto::{frame_len, Request, MAX_REQUEST_SIZE};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while rest.len() >= 4 {
        let header = [rest[0], rest[1], rest[2], rest[3]];
        rest = &rest[4..];
        let Ok(len) = frame_len(header, MAX_REQUEST_SIZE) else {
            return;
        };
        assert!(len <= MAX_REQUEST_SIZE);
        if len > rest.len() {
            return;
        }
        let _ = Request::decode(&rest[..len]);
        rest = &rest[len..];
    }
});
