use super::*;

#[test]
fn months_get_partitions_within_the_years_kept() {
    // 2026-11-22T10:00:00Z and 2026-12-31T23:59:59.999Z.
    let nov = month_of(1_795_341_600_000).unwrap();
    assert_eq!(nov, 2026 * 12 + 10);
    let ddl = partition_ddl(nov);
    assert!(ddl.contains("events_2026_11"), "{ddl}");
    assert!(
        ddl.contains("FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00')"),
        "{ddl}"
    );
    let dec = partition_ddl(month_of(1_798_761_599_999).unwrap());
    assert!(dec.contains("TO ('2027-01-01 00:00:00+00')"), "{dec}");
    assert_eq!(month_of(0), None, "1970 goes to the default partition");
    assert_eq!(ms(at(-1)), -1);
    assert_eq!(ms(at(i64::MAX)), MAX_MS);
}
