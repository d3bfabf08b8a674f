//! External test vectors: Bitcoin Core's base58 and key_io files, Wycheproof's
//! secp256k1 ECDSA (Bitcoin variant) file, and hash known answers.
//! Origins and licences are listed in `tests/data/README.md`.

#![allow(clippy::unwrap_used)]

use chain_core::address::{base58check_decode, Address, AddressError, PubkeyHash};
use chain_core::hash::{hash160, sha256d};
use chain_core::keys::{verify_signature, PrivateKey};
use serde_json::Value;

/// The vector files are compiled in, so the test binary does not depend on
/// the path the crate was built from.
macro_rules! load {
    ($name:literal) => {
        serde_json::from_str::<Value>(include_str!(concat!("data/", $name))).unwrap()
    };
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap()
}

#[test]
fn base58_encode_decode() {
    let cases = load!("base58_encode_decode.json");
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 10);
    for c in cases {
        let (hexs, b58) = (c[0].as_str().unwrap(), c[1].as_str().unwrap());
        let raw = hex::decode(hexs).unwrap();
        assert_eq!(bs58::encode(&raw).into_string(), b58);
        assert_eq!(bs58::decode(b58).into_vec().unwrap(), raw);
    }
}

#[test]
fn mainnet_p2pkh_addresses_round_trip() {
    let cases = load!("key_io_mainnet_p2pkh.json");
    let cases = cases.as_array().unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        let a = Address::parse(s(c, "address")).unwrap();
        assert_eq!(hex::encode(a.pubkey_hash().0), s(c, "pubkey_hash"));
        assert_eq!(a.to_string(), s(c, "address"));
        let mut pkh = [0u8; 20];
        pkh.copy_from_slice(&hex::decode(s(c, "pubkey_hash")).unwrap());
        assert_eq!(
            Address::from_pubkey_hash(PubkeyHash(pkh)).to_string(),
            s(c, "address")
        );
        assert_eq!(
            s(c, "script_pubkey"),
            format!("76a914{}88ac", s(c, "pubkey_hash"))
        );
    }
}

#[test]
fn valid_subset_addresses_and_keys() {
    let cases = load!("key_io_valid_base58_subset.json");
    let (mut addrs, mut refused) = (0, 0);
    for c in cases.as_array().unwrap() {
        let (text, hexs, meta) = (c[0].as_str().unwrap(), c[1].as_str().unwrap(), &c[2]);
        let is_priv = meta["isPrivkey"].as_bool().unwrap();
        let main = meta["chain"] == "main";
        let p2pkh = hexs.starts_with("76a914") && hexs.ends_with("88ac") && hexs.len() == 50;
        if !is_priv && main && p2pkh {
            let a = Address::parse(text).unwrap();
            assert_eq!(hex::encode(a.pubkey_hash().0), &hexs[6..46]);
            addrs += 1;
        } else {
            assert!(
                Address::parse(text).is_err(),
                "{text} must not be an address"
            );
            refused += 1;
        }
        if is_priv && main && meta["isCompressed"].as_bool() == Some(true) {
            let k = PrivateKey::from_wif(text).unwrap();
            assert_eq!(hex::encode(k.to_bytes()), hexs);
            assert_eq!(k.to_wif(), text);
        }
    }
    assert!(addrs > 0 && refused > 0);
}

#[test]
fn mainnet_wif() {
    for c in load!("key_io_mainnet_wif.json").as_array().unwrap() {
        let wif = s(c, "wif");
        if c["compressed"].as_bool().unwrap() {
            let k = PrivateKey::from_wif(wif).unwrap();
            assert_eq!(hex::encode(k.to_bytes()), s(c, "privkey"));
            assert_eq!(k.to_wif(), wif);
        } else {
            // Only compressed keys are used: an uncompressed WIF is refused.
            assert!(PrivateKey::from_wif(wif).is_err());
        }
    }
}

#[test]
fn not_mainnet_p2pkh_is_refused_with_wrong_version_or_length() {
    let cases = load!("key_io_not_mainnet_p2pkh.json");
    let cases = cases.as_array().unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        match Address::parse(s(c, "string")) {
            Err(AddressError::WrongVersion { .. }) | Err(AddressError::WrongLength { .. }) => {}
            other => panic!("{}: {other:?}", s(c, "string")),
        }
    }
}

#[test]
fn invalid_strings_are_never_addresses() {
    let cases = load!("key_io_invalid.json");
    let cases = cases.as_array().unwrap();
    assert!(cases.len() > 10);
    for c in cases {
        assert!(Address::parse(c[0].as_str().unwrap()).is_err());
    }
}

#[test]
fn invalid_base58_each_with_the_right_error() {
    let (mut checksum, mut shape, mut short) = (0, 0, 0);
    for c in load!("key_io_invalid_base58_only.json").as_array().unwrap() {
        let text = s(c, "string");
        let err = Address::parse(text).unwrap_err();
        let decode = s(c, "decode");
        if decode.starts_with("checksum ok") {
            let version =
                u8::from_str_radix(&decode[decode.find("0x").unwrap() + 2..][..2], 16).unwrap();
            let len = base58check_decode(text).unwrap().len();
            if len != 21 {
                assert!(
                    matches!(err, AddressError::WrongLength { .. }),
                    "{text}: {err:?}"
                );
            } else {
                assert_eq!(
                    err,
                    AddressError::WrongVersion {
                        text: text.into(),
                        version
                    }
                );
            }
            shape += 1;
        } else if decode == "checksum" {
            assert!(
                matches!(
                    err,
                    AddressError::BadChecksum(_) | AddressError::InvalidCharacter { .. }
                ),
                "{text}: {err:?}"
            );
            checksum += 1;
        } else {
            assert!(
                matches!(err, AddressError::WrongLength { .. }),
                "{text}: {err:?}"
            );
            short += 1;
        }
    }
    assert_eq!((shape, checksum, short), (21, 12, 1));
}

#[test]
fn alphabet_violation_is_its_own_error() {
    for bad in [
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN0",
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVNI",
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVNl",
    ] {
        assert!(
            matches!(
                Address::parse(bad),
                Err(AddressError::InvalidCharacter { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn wycheproof_secp256k1_bitcoin_every_case_agrees() {
    let file = load!("wycheproof_testvectors_v1_ecdsa_secp256k1_sha256_bitcoin_test.json");
    let (mut n, mut valid, mut invalid) = (0, 0, 0);
    for g in file["testGroups"].as_array().unwrap() {
        let pk = hex::decode(g["publicKey"]["uncompressed"].as_str().unwrap()).unwrap();
        for t in g["tests"].as_array().unwrap() {
            let msg = hex::decode(s(t, "msg")).unwrap();
            let sig = hex::decode(s(t, "sig")).unwrap();
            let ok = verify_signature(&pk, &msg, &sig).is_ok();
            match s(t, "result") {
                "valid" => {
                    assert!(ok, "tcId {} should verify", t["tcId"]);
                    valid += 1
                }
                "invalid" => {
                    assert!(
                        !ok,
                        "tcId {} ({}) should be refused",
                        t["tcId"],
                        s(t, "comment")
                    );
                    invalid += 1
                }
                other => panic!("unexpected result {other}"),
            }
            n += 1;
        }
    }
    assert_eq!((n, valid, invalid), (463, 162, 301));
}

/// The message of a known-answer case: literal text, or a byte repeated.
fn message(c: &Value) -> Vec<u8> {
    match c.get("repeat") {
        Some(r) => {
            vec![r["byte"].as_str().unwrap().as_bytes()[0]; r["count"].as_u64().unwrap() as usize]
        }
        None => s(c, "msg_ascii").as_bytes().to_vec(),
    }
}

#[test]
fn hash_known_answers() {
    let k = load!("hash_kats.json");
    for c in k["ripemd160"].as_array().unwrap() {
        use ripemd::Digest;
        let d = ripemd::Ripemd160::digest(message(c));
        assert_eq!(hex::encode(d), s(c, "digest"));
    }
    for c in k["sha256"].as_array().unwrap() {
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(message(c))),
            s(c, "digest")
        );
    }
    let g = &k["sha256d_bitcoin_genesis_header"];
    let mut h = sha256d(&hex::decode(s(g, "header_hex")).unwrap());
    h.reverse();
    assert_eq!(hex::encode(h), s(g, "hash_display_order"));
    assert_eq!(hash160(b"").len(), 20);
}
