//! Envelopes as items carry them. DynamoDB bills a write per started KB of the item, and a
//! typical 1 KB event's JSON plus its item's other attributes lands just over one: deflated,
//! it lands under (issue 14). Readers take either form, so items written before keep working.
//!
//! - `S`: the envelope's JSON, as written for small envelopes, for any that do not shrink
//!   (random or already compressed data), and before this existed;
//! - `B`: the same JSON, raw DEFLATE (RFC 1951).

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use relay_core::model::envelope::EventEnvelope;

use super::Item;

/// Below this the DEFLATE framing eats what it would save.
const MIN_PACKED: usize = 200;
/// An inflated envelope larger than any item can hold is not one Relay wrote.
const MAX_INFLATED: usize = 4 << 20;
/// miniz's default level: within a few bytes of the best on 1 KB of JSON, at a fraction of
/// the CPU of level 9.
const LEVEL: u8 = 6;

/// The stored form of an envelope's JSON: deflated when that is smaller.
pub(super) fn pack(json: &str) -> AttributeValue {
    if json.len() >= MIN_PACKED {
        let packed = miniz_oxide::deflate::compress_to_vec(json.as_bytes(), LEVEL);
        if packed.len() < json.len() {
            return AttributeValue::B(Blob::new(packed));
        }
    }
    AttributeValue::S(json.to_string())
}

/// The JSON stored under `name`, in either form; `None` if missing or unreadable.
pub(super) fn unpack(item: &Item, name: &str) -> Option<String> {
    match item.get(name)? {
        AttributeValue::S(json) => Some(json.clone()),
        AttributeValue::B(blob) => {
            let bytes = miniz_oxide::inflate::decompress_to_vec_with_limit(blob.as_ref(), MAX_INFLATED).ok()?;
            String::from_utf8(bytes).ok()
        }
        _ => None,
    }
}

/// The envelope stored under `name`.
pub(super) fn envelope(item: &Item, name: &str) -> Option<EventEnvelope> {
    serde_json::from_str(&unpack(item, name)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: AttributeValue) -> Item {
        Item::from([("envelope".to_string(), v)])
    }

    #[test]
    fn small_json_stays_text_and_noise_never_grows() {
        assert!(matches!(pack(r#"{"a":1}"#), AttributeValue::S(_)));
        // Hex of an xorshift sequence: little for DEFLATE to find. Packed or not, it must
        // never be stored larger than the text, and must read back exactly.
        let mut noise = String::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        while noise.len() < 2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            noise.push_str(&format!("{x:016x}"));
        }
        let json = format!(r#"{{"b":"{noise}"}}"#);
        let packed = pack(&json);
        if let AttributeValue::B(b) = &packed {
            assert!(b.as_ref().len() < json.len());
        }
        assert_eq!(unpack(&item(packed), "envelope").as_deref(), Some(json.as_str()));
    }

    #[test]
    fn json_round_trips_and_shrinks() {
        let json = format!(
            r#"{{"eventId":"0190c7e4-1a2b-7c3d-8e4f-5a6b7c8d9e0f","eventType":"candidate.hired","payload":{{"notes":"{}"}}}}"#,
            "the candidate accepted the offer and starts on the first of the month; ".repeat(12)
        );
        let packed = pack(&json);
        let AttributeValue::B(b) = &packed else { panic!("a repetitive 1 KB document must deflate") };
        assert!(b.as_ref().len() * 3 < json.len(), "{} -> {}", json.len(), b.as_ref().len());
        assert_eq!(unpack(&item(packed), "envelope").as_deref(), Some(json.as_str()));
        assert_eq!(unpack(&item(AttributeValue::S(json.clone())), "envelope").as_deref(), Some(json.as_str()), "old items read");
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        assert_eq!(unpack(&item(AttributeValue::B(Blob::new(vec![0xff, 0x00, 0x13]))), "envelope"), None);
        assert_eq!(unpack(&item(AttributeValue::N("1".into())), "envelope"), None);
        assert_eq!(unpack(&Item::new(), "envelope"), None);
    }
}
