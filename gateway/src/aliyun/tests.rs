use super::*;

#[test]
fn timestamps_round_trip() {
    let t = parse_timestamp("2018-01-18T10:57:00Z").expect("parses");
    assert_eq!(format_timestamp(t), "2018-01-18T10:57:00Z");
    assert!(parse_timestamp("2018-01-18T10:57:00.123Z").is_some());
    assert!(parse_timestamp("2018-01-18 10:57:00").is_none());
    assert!(parse_timestamp("yesterday").is_none());
}

#[test]
fn request_ids_are_upper_case_uuids() {
    let id = new_request_id();
    assert_eq!(id.len(), 36);
    assert_eq!(id, id.to_ascii_uppercase());
}
